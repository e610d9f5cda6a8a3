/* The convolution backend (nn/onednn.c): convolutions on oneDNN, its blocked layout and
 * bfloat16 settings, and the name of what runs. layers.c calls the convolutions first and
 * falls back to im2col + sgemm when they return 0 (not built with oneDNN, CULL_NN=blas,
 * or a geometry oneDNN refuses). */
#ifndef CULL_ONEDNN_H
#define CULL_ONEDNN_H

#include "conv.h"

int onednn_conv_forward(float *out, const float *in, const float *w, const float *bias,
                        const conv_geom *g, int flags);
int onednn_conv_backward(float *din, float *dw, float *dbias, const float *dout,
                         const float *in, const float *w, const conv_geom *g, int flags);
/* 1 when convolutions run on oneDNN. */
int onednn_active(void);

/* The blocked activation layout (described in layers.h) for this CPU: B = 8 with AVX2,
 * 16 with AVX-512, or 0: activations stay NCHW (no oneDNN, CULL_NN=blas, or
 * CULL_NN_LAYOUT=nchw). */
int nn_layout_block(void);
/* Whether oneDNN runs this geometry with its layouts: the forward pass with a bias or not
 * and flags (NN_RELU) as conv2d_forward will run it; with train, the backward passes too.
 * Where not, a model keeps NCHW. It makes (and caches) the primitives it asks about. */
int conv2d_blocked_ok(const conv_geom *g, int train, int bias, int flags);

/* What runs the convolutions, for --version and logs: oneDNN when built with it (unless
 * CULL_NN=blas), else im2col + OpenBLAS sgemm. */
const char *nn_backend(void);

/* Convolutions in bfloat16: each one rounds what it reads (inputs, weights and, in the
 * backward passes, the output gradient) to bfloat16 and sums in float; outputs, gradients,
 * the weights themselves and every other layer stay float. On oneDNN's AVX512-BF16 / AMX
 * kernels, about 2x the float32 speed; a convolution with no such kernel runs in float.
 * CULL_NN_BF16=emulate rounds the operands the same way but runs the float32 kernels:
 * bfloat16's accuracy without its speed, on any CPU (for measuring it, and the tests).
 * Returns 1 if on, 2 if emulated, 0 without oneDNN, -1 where oneDNN has no bfloat16
 * kernels (a CPU with neither AVX512-BF16 nor AMX, or ONEDNN_MAX_CPU_ISA capped below
 * them; changing nothing); exits 2 on another CULL_NN_BF16 value. */
int nn_set_bf16(int on);
/* What nn_set_bf16 granted: 0 float32, 1 bfloat16 kernels, 2 emulated. */
int nn_bf16(void);
/* A program's --bf16: nn_set_bf16(1), exiting 2 without oneDNN and warning (float32 runs)
 * where oneDNN has no bfloat16 kernels. */
void nn_bf16_option(void);

#endif
