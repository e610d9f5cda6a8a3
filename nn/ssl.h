/* Self-supervised learning pieces: L2 normalisation, NT-Xent (SimCLR), Sinkhorn-Knopp and
 * SwAV's swapped prediction, the MLP projection head, weighted k-NN classification. */
#ifndef CULL_SSL_H
#define CULL_SSL_H

#include <stddef.h>
#include <stdint.h>

#include "resnet.h"

/*
 * Two views of a batch of n images are stacked as 2n rows: row i and row i + n are the
 * two views of image i (the "pair" of row i is (i + n) mod 2n). Losses are means over the
 * 2n rows. Backward functions accumulate, as in layers.h.
 */

/* torch.nn.functional.normalize: out[n,d] = in / max(||in||, 1e-12); norms[n] saved. */
void l2norm_forward(float *out, float *norms, const float *in, int n, int d);
/* din[n,d] += (dout - (dout . out) out) / max(norm, 1e-12). */
void l2norm_backward(float *din, const float *dout, const float *out, const float *norms,
                     int n, int d);

/* NT-Xent (SimCLR) on L2-normalised rows zn[2n,d] at temperature t:
 * loss = mean_i [ -s(i, pair i) + log sum_{j != i} exp s(i, j) ], s = zn zn^T / t.
 * Writes prob[2n,2n] (softmax of row i over j != i, 0 on the diagonal) for backward and
 * returns the loss. */
double ntxent_forward(float *prob, const float *zn, int n, int d, float t);
/* dzn[2n,d] += dloss/dzn. */
void ntxent_backward(float *dzn, const float *prob, const float *zn, int n, int d, float t);
/* The share of rows whose most similar other row is their pair (from prob). */
double ntxent_pair_accuracy(const float *prob, int n);

/* SwAV's Sinkhorn-Knopp (Caron et al. 2020, distributed_sinkhorn on one process):
 * Q = exp(scores / eps)^T [k, b], scaled to total 1, then `iters` rounds of normalising
 * the k prototype rows to 1/k and the b sample columns to 1/b; codes[b,k] = b * Q^T (each
 * row sums to 1). scores[b,k]. Computed in double; no gradient flows through codes. */
void sinkhorn(float *codes, const float *scores, int b, int k, float eps, int iters);

/* SwAV's swapped prediction for two views: scores[2n,k] (zn times the normalised
 * prototypes), codes[2n,k] from sinkhorn of each view's scores; row i is predicted from
 * its pair's code: loss = mean_i -sum_c codes[pair i, c] log softmax(scores[i] / t)_c.
 * Writes prob[2n,k] (the softmax) for backward; returns the loss. */
double swav_forward(float *prob, const float *scores, const float *codes, int n, int k, float t);
/* dscores[2n,k] += (prob[i] - codes[pair i]) / (t * 2n). */
void swav_backward(float *dscores, const float *prob, const float *codes, int n, int k, float t);

/* The projection head, torch's nn.Sequential(Linear(in, hidden), BatchNorm1d(hidden),
 * ReLU(), Linear(hidden, out)) named "<prefix>.0", ".1", ".3" (SwAV's projection_head);
 * hidden = 0 makes it a single Linear(in, out) named "<prefix>.0". Optionally followed by
 * SwAV's prototypes, Linear(out, nproto, bias=False) named "prototypes". Parameters,
 * gradients and momentum are one block each, described by a tensor table like nn_model's,
 * so SGD and checkpoints are the same loops. */
typedef struct {
	int in, hidden, out, nproto;
	nn_tensor *t;
	int nt;
	float *params, *grads, *momentum;
	size_t nparams;
	float *buffers;          /* BN running mean and var */
	size_t nbuffers;
	int64_t *counters;       /* BN num_batches_tracked */
	int ncounters;
	long sgd_steps;
	/* indices into t */
	int w1, b1, gamma, beta, w2, b2, proto;
	int run_mean, run_var, nbt;
	/* activations for up to `batch` rows (nn_head_setup) */
	int batch;
	float *h, *hr, *mean, *rstd, *z, *dh, *dhr;
} nn_head;

/* nproto 0: no prototypes. Initialised as torch does (Linear: kaiming-uniform a=sqrt(5)
 * weights and uniform(+-1/sqrt(fan_in)) biases; BN 1/0), deterministic in seed. */
nn_head *nn_head_create(int in, int hidden, int out, int nproto, uint64_t seed);
void nn_head_free(nn_head *h);
void nn_head_setup(nn_head *h, int batch);
float *nn_head_data(const nn_head *h, const nn_tensor *t);
/* Training-mode forward of x[n,in]: returns z[n,out] (BN on batch statistics, running
 * statistics updated with momentum 0.1). */
const float *nn_head_forward(nn_head *h, const float *x, int n);
/* From dz[n,out]: accumulate parameter gradients and dx[n,in] += ... (dx may be NULL). */
void nn_head_backward(nn_head *h, float *dx, const float *dz, const float *x, int n);
void nn_head_zero_grad(nn_head *h);
/* SGD on the head's parameters with the same rule as nn_sgd_step. */
void nn_head_sgd_step(nn_head *h, const nn_sgd *o, float lr);
/* L2-normalise the rows of the prototype matrix in place (SwAV does it before each step). */
void nn_head_normalize_prototypes(nn_head *h);

/* Weighted k-NN classification (Wu et al. 2018, the usual SSL monitor): each query row
 * takes the k most cosine-similar bank rows, which vote for their labels with weight
 * exp(similarity / t); the prediction is the label with the largest vote (ties: the
 * smaller label). query[nq,d] and bank[nb,d] are L2-normalised; bank labels in
 * [0, classes). For each of the nk values ks[j] (each <= nb), pred[j*nq + q]. */
void knn_classify(int *pred, const float *query, int nq, const float *bank,
                  const int *bank_labels, int nb, int d, int classes, const int *ks, int nk,
                  float t);

#endif
