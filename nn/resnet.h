/* ResNet models (torchvision and classic CIFAR): state, forward, backward, SGD, checkpoints. */
#ifndef CULL_RESNET_H
#define CULL_RESNET_H

#include <stddef.h>
#include <stdint.h>

#include "layers.h"
#include "safetensors.h"

/* One entry of the state dict, in torchvision's state_dict() order. */
enum { NN_PARAM, NN_BUFFER, NN_COUNTER };
typedef struct {
	char name[64];
	int kind;               /* NN_PARAM: in params/grads/momentum; NN_BUFFER: running stats
	                           in buffers; NN_COUNTER: num_batches_tracked (int64) */
	int ndim;
	int64_t shape[4];
	size_t numel;
	size_t off;             /* into params, buffers or counters by kind */
} nn_tensor;

typedef struct nn_op nn_op;
typedef struct nn_act nn_act;

typedef struct nn_model {
	char arch[32];
	int in_ch, num_classes, feat_dim;   /* feat_dim: pooled embedding size */
	double width;

	nn_tensor *t;            /* the state dict */
	int nt;
	/* One allocation per kind of state, laid out alike (see nn_tensor.off). */
	float *params, *grads, *momentum;
	size_t nparams;
	float *buffers;          /* running_mean / running_var */
	size_t nbuffers;
	int64_t *counters;       /* num_batches_tracked, one per BN */
	int ncounters;
	long sgd_steps;          /* SGD steps taken (momentum starts at the first) */
	float bn_momentum, bn_eps;

	/* The plan: ops in execution order over numbered activations. */
	nn_op *ops;
	int nops;
	nn_act *acts;
	int nacts, out_act;

	/* Set by nn_setup. */
	int batch, h, w, train;
	float *act_block, *grad_block, *stats, *folded, *probs;
	int32_t *argmax;
	unsigned char *grad_live;
	int fold_dirty, fwd_train;
	int no_fold;             /* eval with plain BN instead of folding (set before nn_setup) */
	size_t act_floats, grad_floats;
	/* Training on a GPU (nn/gpu.h, gpu_train_create): training forwards, backward, zeroing
	 * and SGD run there; outputs, features and the output gradient stay on the host. */
	struct gpu_trainer *gpu;
} nn_model;

/* Architectures: resnet18 resnet34 resnet50 resnet18-cifar resnet20 resnet32 resnet56.
 * in_ch 1 or 3, width multiplier (1 = standard), num_classes (0 = no fc: the output is
 * the pooled embedding). Returns NULL for an unknown arch. Parameters are initialized as
 * torchvision does, from seed. */
nn_model *nn_create(const char *arch, int in_ch, double width, int num_classes, uint64_t seed);
void nn_free(nn_model *m);
/* Space-separated list of architecture names. */
const char *nn_arch_names(void);
/* Re-initialize parameters (kaiming normal fan_out for convs, BN 1/0, torch Linear
 * default for fc) and buffers; deterministic in seed. */
void nn_init(nn_model *m, uint64_t seed);

/* Allocate activations for up to `batch` images of h x w. train = 1 keeps every
 * activation and its gradient for backward (training and eval both work); train = 0
 * allocates for eval only, reusing a few buffers. Calling again with the same sizes does
 * nothing; no allocation happens after this in forward, backward or SGD. */
void nn_setup(nn_model *m, int batch, int h, int w, int train);

/* Forward n <= batch images x[n, in_ch, h, w]. train = 1: BN uses batch statistics and
 * updates the running ones; train = 0: eval mode with BN folded into the convs.
 * Returns the output [n, num_classes] logits, or [n, feat_dim] embeddings when
 * num_classes is 0; valid until the next forward. */
const float *nn_forward(nn_model *m, const float *x, int n, int train);
/* The output of the last forward (logits or embeddings), e.g. after nn_train_step. */
const float *nn_output(const nn_model *m);
/* The pooled embedding [n, feat_dim] of the last forward. */
const float *nn_features(const nn_model *m);
/* After a training forward: the gradient of the loss with respect to the output,
 * zeroed by the forward; a custom loss accumulates into it before nn_backward. */
float *nn_output_grad(nn_model *m);
/* Softmax cross-entropy on the logits of the last forward: accumulates dloss/dlogits
 * into nn_output_grad, writes per-example losses (if not NULL) and softmax
 * probabilities (nn_probs), returns the batch mean. */
double nn_xent(nn_model *m, const int *labels, int n, float smoothing, float *losses);
const float *nn_probs(const nn_model *m);
/* Backpropagate nn_output_grad; accumulates into m->grads. */
void nn_backward(nn_model *m, int n);
void nn_zero_grad(nn_model *m);
/* Mark parameters as changed (refolds BN before the next eval forward). */
void nn_params_changed(nn_model *m);
/* Bring params, momentum and buffers on the host up to date with a GPU that trains m (a
 * no-op otherwise): before reading them (checkpoints); eval forwards do it themselves.
 * A failure of the device is fatal (EXIT_DEVICE). */
void nn_sync(nn_model *m);

/* SGD exactly as torch.optim.SGD(lr, momentum, dampening, weight_decay, nesterov);
 * decoupled = 1 applies weight decay as p -= lr * wd * p instead (SGDW). no_decay_bn = 1
 * skips weight decay on BN parameters and biases. */
typedef struct {
	float momentum, dampening, weight_decay;
	int nesterov, decoupled, no_decay_bn;
} nn_sgd;
void nn_sgd_step(nn_model *m, const nn_sgd *o, float lr);
/* The same update on any tensor table (a projection head): the NN_PARAM entries of ts
 * index params, grads and momentum alike; *steps counts the steps taken. */
void nn_sgd_tensors(const nn_tensor *ts, int nt, float *params, const float *grads,
                    float *momentum, long *steps, const nn_sgd *o, float lr);

/* One training step: zero grads, forward, cross-entropy, backward, SGD. Returns the
 * mean loss; per-example losses into `losses` if not NULL. */
double nn_train_step(nn_model *m, const float *x, const int *labels, int n, const nn_sgd *o,
                     float lr, float smoothing, float *losses);

/* Checkpoints (safetensors, torchvision names; loads torch/timm state dicts).
 * Load: F32/F16/BF16 accepted; a missing, extra or mis-shaped tensor is an error naming
 * it, unless flags has NN_LOAD_IGNORE_EXTRA (extra tensors are then ignored, e.g. an fc
 * when num_classes is 0). Returns 0, or -1 with the model unchanged and a message in e
 * (EXIT_DATA; st_load's EXIT_IO when the file cannot be read). */
enum { NN_LOAD_IGNORE_EXTRA = 1 };
int nn_load(nn_model *m, const char *path, int flags, cull_err *e);
/* Save F32 params and buffers, I64 num_batches_tracked; metadata arch etc. Returns 0, or
 * -1 with the I/O error in e. */
int nn_save(const nn_model *m, const char *path, cull_err *e);
/* The writer nn_save fills (metadata and every tensor), for callers that add more tensors
 * (a projection head) or metadata before st_write. */
st_writer *nn_save_writer(const nn_model *m);
/* Optimizer state for --resume: the momentum buffers ("momentum.<param name>") and the
 * step count ("sgd_steps"), in a separate safetensors file. Both return 0, or -1 with a
 * message in e. */
int nn_save_optim(const nn_model *m, const char *path, cull_err *e);
int nn_load_optim(nn_model *m, const char *path, cull_err *e);
/* Find a state-dict entry by name, or NULL; its data is nn_tensor_data(). */
const nn_tensor *nn_find(const nn_model *m, const char *name);
float *nn_tensor_data(const nn_model *m, const nn_tensor *t);

/* The architecture of a torchvision-named ResNet state dict from its tensor shapes:
 * name (resnet18/34/50, resnet18-cifar, resnet20/32/56), input channels and width
 * multiplier (conv1's output channels over 64, or 16 for the CIFAR ResNets). Returns 0,
 * or -1 with a message in e (EXIT_DATA) when conv1.weight is missing (*in_ch is then 0)
 * or the shapes fit no model (in_ch and width are still set from conv1). */
int nn_infer_arch(const st_file *f, char *arch, size_t archlen, int *in_ch,
                  double *width, cull_err *e);

/* What a model file's __metadata__ says about its input (cull-train writes it): the
 * normalisation it was trained with and its image size. A key that is absent or malformed
 * reads as not there. */
typedef struct {
	float mean[3], std[3];
	int have_mean, have_std;  /* "M,M,M" found (std: every value positive) */
	int image_size;           /* "SxS" (square, 1..4096), else 0 */
} nn_meta;
/* Read the metadata of the model file f (st_load) into meta. */
void nn_read_meta(nn_meta *meta, const st_file *f);

/* Multiply-adds per image of a forward pass at h x w (for GFLOP/s figures). */
double nn_forward_macs(const nn_model *m, int h, int w);

#endif
