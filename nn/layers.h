/* ResNet layers as forward/backward pairs on float32 NCHW tensors (llm.c style). */
#ifndef CULL_LAYERS_H
#define CULL_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "conv.h"
#include "onednn.h"
#include "threads.h"

/*
 * Conventions: outputs first, then inputs, then sizes. Shapes are in the comments.
 * Backward functions ACCUMULATE into every gradient they are given (din, dw, db);
 * the caller zeroes gradients explicitly. A NULL gradient pointer means "not needed".
 * flags (conv.h): NN_OVERWRITE makes a backward WRITE din instead; NN_RELU makes a
 * forward apply ReLU to its output. The convolution geometry (conv_geom, conv2d_shape)
 * is in conv.h, the backend's settings (nn_layout_block, conv2d_blocked_ok, nn_backend,
 * bfloat16) in onednn.h and the layer threads in threads.h; this header brings them in.
 */

/*
 * The blocked activation layout: [n][c/B][h][w][B], channel c of image n at plane
 * position p stored at ((n * c/B + c / B) * h * w + p) * B + c % B, for c a multiple of B.
 * It is oneDNN's nChw8c / nChw16c, the layout its convolution kernels work in; a ResNet
 * keeps its activations in it from the stem to the pooling so that no convolution
 * reorders them (resnet.c). Only the oneDNN backend takes blocked convolution operands;
 * nn_layout_block() (onednn.h) gives B for this CPU.
 */
/* NCHW <-> blocked copies of [n, c, hw]. */
void nn_to_blocked(float *dst, const float *src, int n, int c, int hw, int blk);
void nn_from_blocked(float *dst, const float *src, int n, int c, int hw, int blk);

/* out[n,oc,oh,ow] = conv(in[n,c,h,w], w[oc,c,kh,kw]) + bias[oc] (bias may be NULL),
 * then ReLU with NN_RELU. im2col + cblas_sgemm (1x1 stride-1 convs skip im2col), images
 * split over the layer threads. Scratch space comes from nn_scratch(), which grows to
 * the largest layer once and is then reused. */
void conv2d_forward(float *out, const float *in, const float *w, const float *bias,
                    const conv_geom *g, int flags);
/* din[n,c,h,w] += ..., dw[oc,c,kh,kw] += ..., dbias[oc] += ... from dout[n,oc,oh,ow]. */
void conv2d_backward(float *din, float *dw, float *dbias, const float *dout,
                     const float *in, const float *w, const conv_geom *g, int flags);
/* The test oracle: direct seven-loop convolution in double precision. */
void conv2d_naive_forward(float *out, const float *in, const float *w, const float *bias,
                          const conv_geom *g);

/* Batch normalization over [n, c, hw]; eps 1e-5 in torch.
 * Training: normalizes with the batch mean and biased variance, saves mean[c] and
 * rstd[c] for backward, and updates running_mean/var (if not NULL) exactly like torch:
 * r = (1 - momentum) * r + momentum * batch_stat, with the unbiased variance. */
void batchnorm_forward_train(float *out, float *mean, float *rstd, float *run_mean,
                             float *run_var, const float *in, const float *gamma,
                             const float *beta, int n, int c, int hw, float momentum, float eps,
                             int flags);
void batchnorm_forward_eval(float *out, const float *in, const float *gamma, const float *beta,
                            const float *run_mean, const float *run_var, int n, int c, int hw,
                            float eps, int flags);
/* din, dgamma[c], dbeta[c] += from dout; in, mean, rstd as saved by the training forward.
 * relu_out (or NULL): the output of a fused NN_RELU forward; dout is masked by it. */
void batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                        const float *in, const float *mean, const float *rstd,
                        const float *gamma, const float *relu_out, int n, int c, int hw,
                        int flags);
/* The same three on the blocked layout (c a multiple of blk); the sums run in another
 * order, so results agree with the NCHW functions to rounding. */
void batchnorm_forward_train_blk(float *out, float *mean, float *rstd, float *run_mean,
                                 float *run_var, const float *in, const float *gamma,
                                 const float *beta, int n, int c, int hw, float momentum,
                                 float eps, int flags, int blk);
void batchnorm_forward_eval_blk(float *out, const float *in, const float *gamma,
                                const float *beta, const float *run_mean, const float *run_var,
                                int n, int c, int hw, float eps, int flags, int blk);
void batchnorm_backward_blk(float *din, float *dgamma, float *dbeta, const float *dout,
                            const float *in, const float *mean, const float *rstd,
                            const float *gamma, const float *relu_out, int n, int c, int hw,
                            int flags, int blk);
/* Fold eval-mode BN into the preceding conv: wf[oc,k] = w * s, bf[oc] = beta - mean * s
 * (+ conv bias * s), s = gamma / sqrt(var + eps). */
void batchnorm_fold(float *wf, float *bf, const float *w, const float *bias, const float *gamma,
                    const float *beta, const float *run_mean, const float *run_var,
                    int oc, size_t k, float eps);

/* out = max(in, 0) over count floats (out may equal in). */
void relu_forward(float *out, const float *in, size_t count);
/* din += dout where out > 0. With din == dout (in place): dout is masked. */
void relu_backward(float *din, const float *dout, const float *out, size_t count);

/* Max pool kernel 3, stride 2, pad 1 (ties: first in scan order, as torch).
 * out[n,c,oh,ow], argmax[n,c,oh,ow] (index into the h*w plane). */
void maxpool_forward(float *out, int32_t *argmax, const float *in, int n, int c, int h, int w,
                     int oh, int ow);
void maxpool_backward(float *din, const float *dout, const int32_t *argmax, int n, int c,
                      int h, int w, int oh, int ow, int flags);
int maxpool_out(int h);     /* output size for input size h */
/* On the blocked layout: out and argmax [n][c/blk][oh][ow][blk], argmax as above (blk is
 * 8 or 16, or 1: NCHW, what maxpool_forward runs). */
void maxpool_forward_blk(float *out, int32_t *argmax, const float *in, int n, int c, int h,
                         int w, int oh, int ow, int blk);
void maxpool_backward_blk(float *din, const float *dout, const int32_t *argmax, int n, int c,
                          int h, int w, int oh, int ow, int flags, int blk);

/* Global average pool: out[n,c] = mean(in[n,c,hw]). */
void avgpool_forward(float *out, const float *in, int n, int c, int hw);
void avgpool_backward(float *din, const float *dout, int n, int c, int hw, int flags);
/* From a blocked input (blk 1: NCHW); out and dout stay [n, c]. */
void avgpool_forward_blk(float *out, const float *in, int n, int c, int hw, int blk);
void avgpool_backward_blk(float *din, const float *dout, int n, int c, int hw, int flags,
                          int blk);

/* Linear: out[n,o] = in[n,i] w[o,i]^T + b[o] (b may be NULL). */
void linear_forward(float *out, const float *in, const float *w, const float *b,
                    int n, int in_f, int out_f);
void linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, int n, int in_f, int out_f, int flags);

/* Softmax cross-entropy with label smoothing eps (0 = none), mean over the batch as torch:
 * loss_i = (1-eps) * -log p[y] + eps * mean_k -log p[k]. Writes probs[n,k] and the
 * per-example losses (if not NULL); returns the mean. */
double softmax_xent_forward(float *probs, float *losses, const float *logits, const int *labels,
                            int n, int k, float smoothing);
/* dlogits[n,k] += (probs - target) / n. */
void softmax_xent_backward(float *dlogits, const float *probs, const int *labels, int n, int k,
                           float smoothing);

/* Residual add: out = a + b (out may equal a). Backward: da += dout, db += dout. */
void add_forward(float *out, const float *a, const float *b, size_t count);
void add_backward(float *da, float *db, const float *dout, size_t count);

#endif
