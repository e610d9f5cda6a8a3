/* ResNet training on an NVIDIA GPU: the training forward (batch statistics), backward and
 * SGD of nn_model in cuDNN and cuBLAS, float32 NCHW, so that the device's parameters,
 * gradients, momentum and running statistics are the host's arrays copied as they are.
 * The loss stays on the host: the outputs come back after each forward and their gradient
 * goes out before each backward (a few KB). */
#include "cudalib.h"
#include "layers.h"
#include "plan.h"

#include <stdlib.h>
#include <string.h>

struct gpu_trainer {
	gpu_device *d;
	nn_model *m;
	int batch, n;                       /* allocated for; descriptors set for */
	cudnnTensorDescriptor_t *ad;        /* per activation, n images */
	cudnnTensorDescriptor_t *bnd;       /* per op: a BN's [1,C,1,1] */
	cudnnFilterDescriptor_t *fd;        /* per op: a conv's weights */
	cudnnConvolutionDescriptor_t *cd;
	float **act, **grad;                /* per activation, device */
	float *block;                       /* every activation and gradient */
	size_t block_floats;
	float *params, *grads, *mom, *bufs, *stats, *tmp;
	float *ones;
	void *ws;
	size_t ws_bytes;
	cudnnActivationDescriptor_t relu;
	cudnnPoolingDescriptor_t pool;
	int host_stale;                     /* the device has newer parameters than m */
};

enum { FWD_ALGO = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
       BWD_DATA_ALGO = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
       BWD_FILTER_ALGO = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 };

static int dev_alloc(float **p, size_t floats, cull_err *e)
{
	RT(cu.cudaMalloc((void **)p, floats * sizeof(float) + 4));
	return 0;
}

static int copy(void *dst, const void *src, size_t floats, int kind, cull_err *e)
{
	RT(cu.cudaMemcpy(dst, src, floats * sizeof(float), kind));
	return 0;
}

/* Descriptors for batches of n (set again when a batch of another size comes). */
static int set_batch(gpu_trainer *t, int n, cull_err *e)
{
	nn_model *m = t->m;

	if (t->n == n)
		return 0;
	for (int a = 0; a < m->nacts; a++)
		DNN(cu.cudnnSetTensor4dDescriptor(t->ad[a], CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n,
		                                  m->acts[a].c, m->acts[a].h, m->acts[a].w));
	for (int i = 0; i < m->nops; i++) {
		const nn_op *o = &m->ops[i];
		size_t b[3] = { 0, 0, 0 };
		if (o->kind == OP_BN)
			DNN(cu.cudnnDeriveBNTensorDescriptor(t->bnd[i], t->ad[o->in],
			                                     CUDNN_BATCHNORM_SPATIAL));
		if (o->kind != OP_CONV)
			continue;
		cudnnTensorDescriptor_t x = t->ad[o->in], y = t->ad[o->out];
		DNN(cu.cudnnGetConvolutionForwardWorkspaceSize(t->d->dnn, x, t->fd[i], t->cd[i], y,
		                                               FWD_ALGO, &b[0]));
		DNN(cu.cudnnGetConvolutionBackwardDataWorkspaceSize(t->d->dnn, t->fd[i], y,
		                                                    t->cd[i], x, BWD_DATA_ALGO,
		                                                    &b[1]));
		DNN(cu.cudnnGetConvolutionBackwardFilterWorkspaceSize(t->d->dnn, x, y, t->cd[i],
		                                                      t->fd[i], BWD_FILTER_ALGO,
		                                                      &b[2]));
		for (int k = 0; k < 3; k++)
			if (b[k] > t->ws_bytes) {
				if (t->ws)
					cu.cudaFree(t->ws);
				t->ws = NULL;
				t->ws_bytes = b[k];
				RT(cu.cudaMalloc(&t->ws, t->ws_bytes));
			}
	}
	t->n = n;
	return 0;
}

static int setup(gpu_trainer *t, cull_err *e)
{
	nn_model *m = t->m;
	size_t hwmax = (size_t)t->batch;

	t->ad = xcalloc((size_t)m->nacts, sizeof *t->ad);
	t->act = xcalloc((size_t)m->nacts, sizeof *t->act);
	t->grad = xcalloc((size_t)m->nacts, sizeof *t->grad);
	t->bnd = xcalloc((size_t)m->nops, sizeof *t->bnd);
	t->fd = xcalloc((size_t)m->nops, sizeof *t->fd);
	t->cd = xcalloc((size_t)m->nops, sizeof *t->cd);
	for (int a = 0; a < m->nacts; a++) {
		DNN(cu.cudnnCreateTensorDescriptor(&t->ad[a]));
		t->block_floats += 2 * m->acts[a].size * (size_t)t->batch;
		if ((size_t)m->acts[a].h * m->acts[a].w > hwmax)
			hwmax = (size_t)m->acts[a].h * m->acts[a].w;
	}
	if (dev_alloc(&t->block, t->block_floats, e) < 0)
		return -1;
	for (size_t a = 0, off = 0; a < (size_t)m->nacts; a++) {
		t->act[a] = t->block + off;
		off += m->acts[a].size * (size_t)t->batch;
		t->grad[a] = t->block + off;
		off += m->acts[a].size * (size_t)t->batch;
	}
	size_t nstats = 0;
	for (int i = 0; i < m->nops; i++) {
		const nn_op *o = &m->ops[i];
		if (o->kind == OP_BN) {
			DNN(cu.cudnnCreateTensorDescriptor(&t->bnd[i]));
			nstats += 2 * (size_t)o->cout;
		}
		if (o->kind != OP_CONV)
			continue;
		DNN(cu.cudnnCreateFilterDescriptor(&t->fd[i]));
		DNN(cu.cudnnSetFilter4dDescriptor(t->fd[i], CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
		                                  o->cout, o->cin, o->k, o->k));
		DNN(cu.cudnnCreateConvolutionDescriptor(&t->cd[i]));
		DNN(cu.cudnnSetConvolution2dDescriptor(t->cd[i], o->pad, o->pad, o->stride,
		                                       o->stride, 1, 1, CUDNN_CROSS_CORRELATION,
		                                       CUDNN_DATA_FLOAT));
		DNN(cu.cudnnSetConvolutionMathType(t->cd[i], CUDNN_FMA_MATH));
	}
	if (dev_alloc(&t->params, m->nparams, e) < 0 || dev_alloc(&t->grads, m->nparams, e) < 0 ||
	    dev_alloc(&t->mom, m->nparams, e) < 0 || dev_alloc(&t->tmp, m->nparams, e) < 0 ||
	    dev_alloc(&t->bufs, m->nbuffers, e) < 0 || dev_alloc(&t->stats, nstats, e) < 0 ||
	    dev_alloc(&t->ones, hwmax, e) < 0)
		return -1;
	float *ones = xmalloc(hwmax * sizeof(float));
	for (size_t i = 0; i < hwmax; i++)
		ones[i] = 1;
	int r = copy(t->ones, ones, hwmax, cudaMemcpyHostToDevice, e);
	free(ones);
	if (r < 0)
		return -1;
	DNN(cu.cudnnCreateActivationDescriptor(&t->relu));
	DNN(cu.cudnnSetActivationDescriptor(t->relu, CUDNN_ACTIVATION_RELU,
	                                    CUDNN_NOT_PROPAGATE_NAN, 0));
	DNN(cu.cudnnCreatePoolingDescriptor(&t->pool));
	DNN(cu.cudnnSetPooling2dDescriptor(t->pool, CUDNN_POOLING_MAX, CUDNN_NOT_PROPAGATE_NAN,
	                                   3, 3, 1, 1, 2, 2));
	if (set_batch(t, t->batch, e) < 0)
		return -1;
	return gpu_train_upload(t, e);
}

gpu_trainer *gpu_train_create(gpu_device *d, nn_model *m, cull_err *e)
{
	if (!m->act_block || !m->train) {
		cull_err_set(e, EXIT_USAGE, "gpu_train_create before nn_setup(..., train = 1)");
		return NULL;
	}
	gpu_trainer *t = xcalloc(1, sizeof *t);
	t->d = d;
	t->m = m;
	t->batch = m->batch;
	if (setup(t, e) < 0) {
		gpu_train_free(t);
		return NULL;
	}
	m->gpu = t;
	return t;
}

void gpu_train_free(gpu_trainer *t)
{
	if (!t)
		return;
	nn_model *m = t->m;
	cu.cudaStreamSynchronize(t->d->stream);
	if (m->gpu == t)
		m->gpu = NULL;
	for (int a = 0; t->ad && a < m->nacts; a++)
		if (t->ad[a])
			cu.cudnnDestroyTensorDescriptor(t->ad[a]);
	for (int i = 0; i < m->nops; i++) {
		if (t->bnd && t->bnd[i])
			cu.cudnnDestroyTensorDescriptor(t->bnd[i]);
		if (t->fd && t->fd[i])
			cu.cudnnDestroyFilterDescriptor(t->fd[i]);
		if (t->cd && t->cd[i])
			cu.cudnnDestroyConvolutionDescriptor(t->cd[i]);
	}
	float *bufs[] = { t->block, t->params, t->grads, t->mom, t->tmp, t->bufs, t->stats,
	                  t->ones };
	for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
		if (bufs[i])
			cu.cudaFree(bufs[i]);
	if (t->ws)
		cu.cudaFree(t->ws);
	if (t->relu)
		cu.cudnnDestroyActivationDescriptor(t->relu);
	if (t->pool)
		cu.cudnnDestroyPoolingDescriptor(t->pool);
	free(t->ad);
	free(t->act);
	free(t->grad);
	free(t->bnd);
	free(t->fd);
	free(t->cd);
	free(t);
}

int gpu_train_upload(gpu_trainer *t, cull_err *e)
{
	nn_model *m = t->m;

	if (copy(t->params, m->params, m->nparams, cudaMemcpyHostToDevice, e) < 0 ||
	    copy(t->mom, m->momentum, m->nparams, cudaMemcpyHostToDevice, e) < 0 ||
	    copy(t->bufs, m->buffers, m->nbuffers, cudaMemcpyHostToDevice, e) < 0)
		return -1;
	t->host_stale = 0;
	return 0;
}

int gpu_train_download(gpu_trainer *t, cull_err *e)
{
	nn_model *m = t->m;

	if (!t->host_stale)
		return 0;
	if (copy(m->params, t->params, m->nparams, cudaMemcpyDeviceToHost, e) < 0 ||
	    copy(m->momentum, t->mom, m->nparams, cudaMemcpyDeviceToHost, e) < 0 ||
	    copy(m->buffers, t->bufs, m->nbuffers, cudaMemcpyDeviceToHost, e) < 0)
		return -1;
	t->host_stale = 0;
	nn_params_changed(m);
	return 0;
}

/* The pooled features [n, C] of the NCHW activation x: per image, the column-major
 * HW x C matrix times ones / HW (beta 1 accumulates, for the backward's use below). */
static int avgpool(gpu_trainer *t, float *out, const float *x, int n, int c, int hw,
                   cull_err *e)
{
	const float alpha = 1.0f / (float)hw, zero = 0;
	BLAS(cu.cublasGemmStridedBatchedEx(t->d->blas, CUBLAS_OP_T, CUBLAS_OP_N, c, 1, hw, &alpha,
		x, CUDA_R_32F, hw, (long long)c * hw, t->ones, CUDA_R_32F, hw, 0, &zero, out,
		CUDA_R_32F, c, c, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
	return 0;
}

static int forward_op(gpu_trainer *t, int i, int n, cull_err *e)
{
	nn_model *m = t->m;
	const nn_op *o = &m->ops[i];
	const nn_tensor *tt = o->t >= 0 ? &m->t[o->t] : NULL;
	const float one = 1, zero = 0;
	cudnnHandle_t h = t->d->dnn;
	float *x = t->act[o->in], *y = t->act[o->out];

	switch (o->kind) {
	case OP_CONV:
		DNN(cu.cudnnConvolutionForward(h, &one, t->ad[o->in], x, t->fd[i], t->params + tt->off,
		                               t->cd[i], FWD_ALGO, t->ws, t->ws_bytes, &zero,
		                               t->ad[o->out], y));
		break;
	case OP_BN:
		DNN(cu.cudnnBatchNormalizationForwardTraining(h, CUDNN_BATCHNORM_SPATIAL, &one, &zero,
			t->ad[o->in], x, t->ad[o->out], y, t->bnd[i], t->params + tt[0].off,
			t->params + tt[1].off, m->bn_momentum, t->bufs + tt[2].off, t->bufs + tt[3].off,
			m->bn_eps, t->stats + o->stat_off, t->stats + o->stat_off + o->cout));
		m->counters[tt[4].off]++;
		break;
	case OP_RELU:
		DNN(cu.cudnnActivationForward(h, t->relu, &one, t->ad[o->in], x, &zero,
		                              t->ad[o->out], y));
		break;
	case OP_ADD:
		DNN(cu.cudnnAddTensor(h, &one, t->ad[o->in2], t->act[o->in2], &one, t->ad[o->out],
		                      y));
		break;
	case OP_MAXPOOL:
		DNN(cu.cudnnPoolingForward(h, t->pool, &one, t->ad[o->in], x, &zero, t->ad[o->out],
		                           y));
		break;
	case OP_AVGPOOL:
		return avgpool(t, y, x, n, o->cin, m->acts[o->in].h * m->acts[o->in].w, e);
	case OP_FC:
		/* logits (K x n, column-major) = bias ones^T + W^T-as-stored feat */
		BLAS(cu.cublasGemmEx(t->d->blas, CUBLAS_OP_N, CUBLAS_OP_N, o->cout, n, 1, &one,
			t->params + tt[1].off, CUDA_R_32F, o->cout, t->ones, CUDA_R_32F, 1, &zero, y,
			CUDA_R_32F, o->cout, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
		BLAS(cu.cublasGemmEx(t->d->blas, CUBLAS_OP_T, CUBLAS_OP_N, o->cout, n, o->cin, &one,
			t->params + tt[0].off, CUDA_R_32F, o->cin, x, CUDA_R_32F, o->cin, &one, y,
			CUDA_R_32F, o->cout, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
		break;
	}
	return 0;
}

int gpu_train_forward(gpu_trainer *t, const float *x, int n, cull_err *e)
{
	nn_model *m = t->m;

	if (set_batch(t, n, e) < 0 ||
	    copy(t->act[0], x, m->acts[0].size * (size_t)n, cudaMemcpyHostToDevice, e) < 0)
		return -1;
	for (int i = 0; i < m->nops; i++)
		if (forward_op(t, i, n, e) < 0)
			return -1;
	/* the host's output and pooled features, where nn_output and nn_features read them */
	int feat = m->num_classes > 0 ? m->ops[m->nops - 1].in : m->out_act;
	if (copy(m->acts[m->out_act].data, t->act[m->out_act],
	         m->acts[m->out_act].size * (size_t)n, cudaMemcpyDeviceToHost, e) < 0 ||
	    (feat != m->out_act && copy(m->acts[feat].data, t->act[feat],
	                                m->acts[feat].size * (size_t)n, cudaMemcpyDeviceToHost,
	                                e) < 0))
		return -1;
	t->host_stale = 1;                 /* the running statistics moved */
	return 0;
}

static int backward_op(gpu_trainer *t, int i, int n, cull_err *e)
{
	nn_model *m = t->m;
	const nn_op *o = &m->ops[i];
	const nn_tensor *tt = o->t >= 0 ? &m->t[o->t] : NULL;
	const float one = 1;
	cudnnHandle_t h = t->d->dnn;
	float *x = t->act[o->in], *dy = t->grad[o->out], *dx = t->grad[o->in];

	switch (o->kind) {
	case OP_CONV:
		DNN(cu.cudnnConvolutionBackwardFilter(h, &one, t->ad[o->in], x, t->ad[o->out], dy,
			t->cd[i], BWD_FILTER_ALGO, t->ws, t->ws_bytes, &one, t->fd[i],
			t->grads + tt->off));
		if (o->in != 0)
			DNN(cu.cudnnConvolutionBackwardData(h, &one, t->fd[i], t->params + tt->off,
				t->ad[o->out], dy, t->cd[i], BWD_DATA_ALGO, t->ws, t->ws_bytes, &one,
				t->ad[o->in], dx));
		break;
	case OP_BN:
		DNN(cu.cudnnBatchNormalizationBackward(h, CUDNN_BATCHNORM_SPATIAL, &one, &one, &one,
			&one, t->ad[o->in], x, t->ad[o->out], dy, t->ad[o->in], dx, t->bnd[i],
			t->params + tt[0].off, t->grads + tt[0].off, t->grads + tt[1].off, m->bn_eps,
			t->stats + o->stat_off, t->stats + o->stat_off + o->cout));
		break;
	case OP_RELU:          /* in place: dy becomes the input's gradient */
		DNN(cu.cudnnActivationBackward(h, t->relu, &one, t->ad[o->out], t->act[o->out],
			t->ad[o->out], dy, t->ad[o->out], t->act[o->out], &(float){ 0 },
			t->ad[o->out], dy));
		break;
	case OP_ADD:           /* in place: the gradient of `in` is dy itself */
		DNN(cu.cudnnAddTensor(h, &one, t->ad[o->out], dy, &one, t->ad[o->in2],
		                      t->grad[o->in2]));
		break;
	case OP_MAXPOOL:
		DNN(cu.cudnnPoolingBackward(h, t->pool, &one, t->ad[o->out], t->act[o->out],
			t->ad[o->out], dy, t->ad[o->in], x, &one, t->ad[o->in], dx));
		break;
	case OP_AVGPOOL: {
		/* per image: dx (column-major HW x C) += ones (HW x 1) dy^T (1 x C) / HW */
		int hw = m->acts[o->in].h * m->acts[o->in].w;
		const float alpha = 1.0f / (float)hw;
		BLAS(cu.cublasGemmStridedBatchedEx(t->d->blas, CUBLAS_OP_N, CUBLAS_OP_N, hw, o->cin,
			1, &alpha, t->ones, CUDA_R_32F, hw, 0, dy, CUDA_R_32F, 1, o->cin, &one, dx,
			CUDA_R_32F, hw, (long long)hw * o->cin, n, CUBLAS_COMPUTE_32F,
			CUBLAS_GEMM_DEFAULT));
		break;
	}
	case OP_FC:
		/* dW (C x K) += feat dy^T; db += dy ones; dfeat (C x n) += W dy */
		BLAS(cu.cublasGemmEx(t->d->blas, CUBLAS_OP_N, CUBLAS_OP_T, o->cin, o->cout, n, &one,
			x, CUDA_R_32F, o->cin, dy, CUDA_R_32F, o->cout, &one, t->grads + tt[0].off,
			CUDA_R_32F, o->cin, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
		BLAS(cu.cublasGemmEx(t->d->blas, CUBLAS_OP_N, CUBLAS_OP_N, o->cout, 1, n, &one, dy,
			CUDA_R_32F, o->cout, t->ones, CUDA_R_32F, n, &one, t->grads + tt[1].off,
			CUDA_R_32F, o->cout, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
		BLAS(cu.cublasGemmEx(t->d->blas, CUBLAS_OP_N, CUBLAS_OP_N, o->cin, n, o->cout, &one,
			t->params + tt[0].off, CUDA_R_32F, o->cin, dy, CUDA_R_32F, o->cout, &one, dx,
			CUDA_R_32F, o->cin, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
		break;
	}
	return 0;
}

int gpu_train_backward(gpu_trainer *t, int n, cull_err *e)
{
	nn_model *m = t->m;

	if (set_batch(t, n, e) < 0)
		return -1;
	/* every activation's gradient accumulates from zero (one pass over the block) */
	for (int a = 1; a < m->nacts; a++)
		RT(cu.cudaMemsetAsync(t->grad[a], 0, m->acts[a].size * (size_t)n * sizeof(float),
		                      t->d->stream));
	if (copy(t->grad[m->out_act], m->acts[m->out_act].grad,
	         m->acts[m->out_act].size * (size_t)n, cudaMemcpyHostToDevice, e) < 0)
		return -1;
	for (int i = m->nops - 1; i >= 0; i--)
		if (backward_op(t, i, n, e) < 0)
			return -1;
	return 0;
}

int gpu_train_zero_grad(gpu_trainer *t, cull_err *e)
{
	RT(cu.cudaMemsetAsync(t->grads, 0, t->m->nparams * sizeof(float), t->d->stream));
	return 0;
}

/* SGD exactly as nn_sgd_tensors, one tensor at a time in cuBLAS level-1 calls. */
int gpu_train_sgd(gpu_trainer *t, const nn_sgd *o, float lr, cull_err *e)
{
	nn_model *m = t->m;
	cublasHandle_t h = t->d->blas;
	int first = m->sgd_steps == 0;

	for (int i = 0; i < m->nt; i++) {
		const nn_tensor *tt = &m->t[i];
		if (tt->kind != NN_PARAM)
			continue;
		int n = (int)tt->numel;
		float *p = t->params + tt->off, *buf = t->mom + tt->off, *d = t->tmp + tt->off;
		float wd = o->no_decay_bn && tt->ndim == 1 ? 0.0f : o->weight_decay;
		float l2 = o->decoupled ? 0.0f : wd, shrink = o->decoupled ? 1.0f - lr * wd : 1.0f;
		float damp = 1.0f - o->dampening, neg = -lr;
		BLAS(cu.cublasScopy_v2(h, n, t->grads + tt->off, 1, d, 1));      /* d = g */
		if (l2 != 0.0f)
			BLAS(cu.cublasSaxpy_v2(h, n, &l2, p, 1, d, 1));            /* d += l2 p */
		if (o->momentum != 0.0f) {
			if (first) {
				BLAS(cu.cublasScopy_v2(h, n, d, 1, buf, 1));            /* buf = d */
			} else {
				BLAS(cu.cublasSscal_v2(h, n, &o->momentum, buf, 1));
				BLAS(cu.cublasSaxpy_v2(h, n, &damp, d, 1, buf, 1));
			}
			if (o->nesterov)
				BLAS(cu.cublasSaxpy_v2(h, n, &o->momentum, buf, 1, d, 1));
			else
				BLAS(cu.cublasScopy_v2(h, n, buf, 1, d, 1));
		}
		if (shrink != 1.0f)
			BLAS(cu.cublasSscal_v2(h, n, &shrink, p, 1));
		BLAS(cu.cublasSaxpy_v2(h, n, &neg, d, 1, p, 1));                  /* p -= lr d */
	}
	m->sgd_steps++;
	t->host_stale = 1;
	return 0;
}
