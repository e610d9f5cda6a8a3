/* ResNet inference on an NVIDIA GPU: the eval plan run with cuDNN and cuBLAS. */
#include "cudalib.h"
#include "plan.h"

#include <stdlib.h>
#include <string.h>

/* ---- the network ---- */

enum { ST_CONV, ST_MAXPOOL, ST_AVGPOOL, ST_FC };
/* Workspace any one convolution may take. */
#define WS_MAX ((size_t)1 << 30)

typedef struct {
	int kind;
	int x, y, z;            /* activations read (x, z: the residual, -1 for none), written */
	int relu;
	int op;                 /* the plan's op */
	/* ST_CONV */
	cudnnFilterDescriptor_t wd;
	cudnnConvolutionDescriptor_t cd;
	cudnnTensorDescriptor_t bd;
	void *w, *b;
	int algo, fused;
	size_t ws;
	int hw;                 /* ST_AVGPOOL: pixels pooled */
} step;

struct gpu_net {
	gpu_device *d;
	int batch, h, w, bf16, es, dt, in_ch, cpad;
	int feat, dim;                  /* pooled features; outputs (logits with an fc) */
	int nacts;
	cudnnTensorDescriptor_t *ad;    /* per activation: NHWC, batch images */
	void **act;                     /* device memory per activation (shared slots) */
	void **slot;
	int nslots;
	step *st;
	int nst;
	void *ws;
	size_t ws_bytes;
	cudnnActivationDescriptor_t relu, ident;
	cudnnPoolingDescriptor_t pool;
	void *ones;                     /* avg pool: HW ones of the data type */
	float *featbuf, *fc_w, *fc_b, *fc_ones, *logits;   /* device, float */
	int fc_k;
	float *out_h;                   /* host, page-locked */
	cudaEvent_t e0, e1;
	double busy;
	char plan[256];
};

static uint16_t to_bf16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	if ((u & 0x7fffffff) > 0x7f800000)
		return (uint16_t)(u >> 16 | 0x40);       /* NaN stays NaN */
	u += 0x7fff + (u >> 16 & 1);
	return (uint16_t)(u >> 16);
}

/* n floats from host src to a new device buffer in the net's data type (or float). */
static void *upload(gpu_net *g, const float *src, size_t n, int as_float, cull_err *e)
{
	size_t es = as_float ? 4 : (size_t)g->es;
	void *tmp = xmalloc(n * es + 1), *p = NULL;
	if (es == 2)
		for (size_t i = 0; i < n; i++)
			((uint16_t *)tmp)[i] = to_bf16(src[i]);
	else
		memcpy(tmp, src, n * 4);
	cudaError_t r = cu.cudaMalloc(&p, n * es + 1);
	if (r == cudaSuccess)
		r = cu.cudaMemcpy(p, tmp, n * es, cudaMemcpyHostToDevice);
	free(tmp);
	if (r != cudaSuccess) {
		rt_fail(e, r, "copying weights to the GPU");
		if (p)
			cu.cudaFree(p);
		return NULL;
	}
	return p;
}

static int tensor(cudnnTensorDescriptor_t *t, int dt, int n, int c, int h, int w, cull_err *e)
{
	DNN(cu.cudnnCreateTensorDescriptor(t));
	DNN(cu.cudnnSetTensor4dDescriptor(*t, CUDNN_TENSOR_NHWC, dt, n, c, h, w));
	return 0;
}

/* The steps: the plan's ops in eval form. A BN is folded into its conv; a conv whose
 * output goes to a residual add runs at the add, with the add and the ReLU after it fused
 * in (its other input, a downsample, is computed by then). */
static int plan_steps(gpu_net *g, const nn_model *m, cull_err *e)
{
	int *defer = xmalloc(sizeof(int) * (size_t)m->nops);

	g->st = xcalloc((size_t)m->nops, sizeof(step));
	for (int i = 0; i < m->nops; i++)
		defer[i] = -1;
	for (int i = 0; i < m->nops; i++) {
		const nn_op *o = &m->ops[i];
		step s = { .kind = -1, .x = o->in, .y = o->out, .z = -1, .op = i };
		switch (o->kind) {
		case OP_CONV: {
			if (o->fold < 0) {
				free(defer);
				return cull_err_set(e, EXIT_DATA, "%s: a convolution without batch norm "
				                    "is not supported on the GPU", m->arch);
			}
			s.kind = ST_CONV;
			s.y = m->ops[o->fold].out;
			s.relu = nn_plan_relu_fused(m, o->fold);
			int j;
			for (j = o->fold + 1; j < m->nops; j++)
				if (m->ops[j].kind == OP_ADD && m->ops[j].in == s.y)
					break;
			if (!s.relu && j < m->nops) {
				defer[j] = g->nst;              /* filled in at the add */
				s.kind = -2;
			}
			break;
		}
		case OP_BN:
		case OP_RELU:
			break;                              /* folded or fused */
		case OP_ADD: {
			if (defer[i] < 0) {
				free(defer);
				return cull_err_set(e, EXIT_DATA, "%s: a residual add the GPU plan cannot "
				                    "fuse", m->arch);
			}
			step *c = &g->st[defer[i]];
			c->kind = ST_CONV;
			c->z = o->in2;
			c->relu = i + 1 < m->nops && m->ops[i + 1].kind == OP_RELU &&
			          m->ops[i + 1].in == o->out;
			/* move it here, after the downsample */
			step moved = *c;
			memmove(c, c + 1, (size_t)(g->nst - defer[i] - 1) * sizeof(step));
			g->st[g->nst - 1] = moved;
			for (int k = i + 1; k < m->nops; k++)
				if (defer[k] > defer[i])
					defer[k]--;
			continue;
		}
		case OP_MAXPOOL:
			s.kind = ST_MAXPOOL;
			break;
		case OP_AVGPOOL:
			s.kind = ST_AVGPOOL;
			break;
		case OP_FC:
			s.kind = ST_FC;
			break;
		}
		if (s.kind != -1)
			g->st[g->nst++] = s;
	}
	free(defer);
	return 0;
}

/* Device memory for the activations: one slot per activation alive at once, each the
 * size of the largest; the input has its own. */
static int plan_memory(gpu_net *g, const nn_model *m, cull_err *e)
{
	int *last = xmalloc(sizeof(int) * (size_t)m->nacts), *owner;
	size_t big = 0;

	for (int a = 0; a < m->nacts; a++) {
		last[a] = -1;
		if (a && m->acts[a].size > big)
			big = m->acts[a].size;
	}
	for (int s = 0; s < g->nst; s++) {
		last[g->st[s].x] = s;
		if (g->st[s].z >= 0)
			last[g->st[s].z] = s;
	}
	owner = xmalloc(sizeof(int) * (size_t)m->nacts);
	g->slot = xcalloc((size_t)m->nacts, sizeof(void *));
	for (int s = 0; s < g->nst; s++) {
		const step *t = &g->st[s];
		if (t->kind != ST_CONV && t->kind != ST_MAXPOOL)
			continue;
		int k;
		for (k = 0; k < g->nslots; k++)   /* free: its owner was last read before s */
			if (owner[k] < 0 || (last[owner[k]] < s && owner[k] != t->y))
				break;
		if (k == g->nslots) {
			cudaError_t r = cu.cudaMalloc(&g->slot[k], big * (size_t)g->batch * (size_t)g->es);
			if (r != cudaSuccess) {
				free(owner);
				free(last);
				return rt_fail(e, r, "cudaMalloc(activations)");
			}
			g->nslots++;
		}
		owner[k] = t->y;
		g->act[t->y] = g->slot[k];
	}
	free(owner);
	free(last);
	size_t in = (size_t)g->batch * (size_t)g->cpad * (size_t)g->h * (size_t)g->w * g->es;
	RT(cu.cudaMalloc(&g->act[0], in));
	RT(cu.cudaMemsetAsync(g->act[0], 0, in, g->d->stream));
	return 0;
}

/* The folded weights of conv op o in KRSC order, input channels padded to cin. */
static float *krsc(const nn_model *m, const nn_op *o, int cin)
{
	const float *w = m->folded + o->fold_off;
	int k = o->k;
	float *r = xcalloc((size_t)o->cout * (size_t)(k * k) * (size_t)cin + 1, sizeof(float));
	for (int oc = 0; oc < o->cout; oc++)
		for (int c = 0; c < o->cin; c++)
			for (int y = 0; y < k; y++)
				for (int x = 0; x < k; x++)
					r[(((size_t)oc * k + y) * k + x) * cin + c] =
						w[(((size_t)oc * o->cin + c) * k + y) * k + x];
	return r;
}

static int conv_run(gpu_net *g, const step *s, int algo, int fused);

/* Descriptors, weights and algorithm of a convolution step. */
static int conv_setup(gpu_net *g, const nn_model *m, step *s, cull_err *e)
{
	const nn_op *o = &m->ops[s->op];
	int cin = s->x == 0 ? g->cpad : o->cin;
	float *w = krsc(m, o, cin);

	s->w = upload(g, w, (size_t)o->cout * (size_t)(o->k * o->k) * (size_t)cin, 0, e);
	free(w);
	if (!s->w)
		return -1;
	s->b = upload(g, m->folded + o->fold_off + m->t[o->t].numel, (size_t)o->cout, 0, e);
	if (!s->b)
		return -1;
	DNN(cu.cudnnCreateFilterDescriptor(&s->wd));
	DNN(cu.cudnnSetFilter4dDescriptor(s->wd, g->dt, CUDNN_TENSOR_NHWC, o->cout, cin, o->k,
	                                 o->k));
	DNN(cu.cudnnCreateConvolutionDescriptor(&s->cd));
	DNN(cu.cudnnSetConvolution2dDescriptor(s->cd, o->pad, o->pad, o->stride, o->stride, 1, 1,
	                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
	/* bfloat16 on the tensor cores; float32 as float32 (no TF32), like the CPU path */
	DNN(cu.cudnnSetConvolutionMathType(s->cd, g->bf16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
	if (tensor(&s->bd, g->dt, 1, o->cout, 1, 1, e) < 0)
		return -1;

	cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
	int got = 0;
	DNN(cu.cudnnFindConvolutionForwardAlgorithm(g->d->dnn, g->ad[s->x], s->wd, s->cd,
	                                           g->ad[s->y], CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
	                                           &got, perf));
	/* the fastest that fits, run with the math type it was timed with (float32: only
	 * true float32, CUDNN_FMA_MATH, never TF32) */
	s->algo = -1;
	for (int i = 0; i < got && s->algo < 0; i++)
		if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= WS_MAX &&
		    (g->bf16 || perf[i].mathType == CUDNN_FMA_MATH)) {
			s->algo = perf[i].algo;
			DNN(cu.cudnnSetConvolutionMathType(s->cd, perf[i].mathType));
			DNN(cu.cudnnGetConvolutionForwardWorkspaceSize(g->d->dnn, g->ad[s->x], s->wd,
			                                               s->cd, g->ad[s->y], s->algo,
			                                               &s->ws));
		}
	if (s->algo < 0)
		return cull_err_set(e, EXIT_DEVICE, "cuDNN has no convolution for %s's op %d "
		                    "(%dx%d, %d -> %d channels)", m->arch, s->op, o->k, o->k, cin,
		                    o->cout);
	return 0;
}

/* Whether cuDNN runs the fused convolution of s with algo: tried once on the buffers. */
static int try_fused(gpu_net *g, step *s, int algo)
{
	size_t ws = 0;
	if (cu.cudnnGetConvolutionForwardWorkspaceSize(g->d->dnn, g->ad[s->x], s->wd, s->cd,
	                                              g->ad[s->y], algo, &ws) !=
	    CUDNN_STATUS_SUCCESS || ws > g->ws_bytes)
		return 0;
	if (conv_run(g, s, algo, 1) != 0)
		return 0;
	s->algo = algo;
	s->fused = 1;
	return 1;
}

static int conv_run(gpu_net *g, const step *s, int algo, int fused)
{
	const float one = 1, zero = 0;
	cudnnHandle_t h = g->d->dnn;
	cudnnTensorDescriptor_t xd = g->ad[s->x], yd = g->ad[s->y];
	void *x = g->act[s->x], *y = g->act[s->y];
	cudnnStatus_t r;

	if (fused) {
		const float a2 = s->z >= 0 ? 1 : 0;
		return cu.cudnnConvolutionBiasActivationForward(h, &one, xd, x, s->wd, s->w, s->cd,
			algo, g->ws, g->ws_bytes, &a2, s->z >= 0 ? g->ad[s->z] : yd,
			s->z >= 0 ? g->act[s->z] : y, s->bd, s->b, s->relu ? g->relu : g->ident, yd, y);
	}
	r = cu.cudnnConvolutionForward(h, &one, xd, x, s->wd, s->w, s->cd, algo, g->ws,
	                              g->ws_bytes, &zero, yd, y);
	if (r == CUDNN_STATUS_SUCCESS)
		r = cu.cudnnAddTensor(h, &one, s->bd, s->b, &one, yd, y);
	if (r == CUDNN_STATUS_SUCCESS && s->z >= 0)
		r = cu.cudnnAddTensor(h, &one, g->ad[s->z], g->act[s->z], &one, yd, y);
	if (r == CUDNN_STATUS_SUCCESS && s->relu)
		r = cu.cudnnActivationForward(h, g->relu, &one, yd, y, &zero, yd, y);
	return r;
}

static int steps_run(gpu_net *g, cull_err *e)
{
	const float one = 1, zero = 0;

	for (int i = 0; i < g->nst; i++) {
		const step *s = &g->st[i];
		switch (s->kind) {
		case ST_CONV: {
			cudnnStatus_t r = conv_run(g, s, s->algo, s->fused);
			if (r != CUDNN_STATUS_SUCCESS)
				return dnn_fail(e, r, "convolution");
			break;
		}
		case ST_MAXPOOL:
			DNN(cu.cudnnPoolingForward(g->d->dnn, g->pool, &one, g->ad[s->x], g->act[s->x],
			                          &zero, g->ad[s->y], g->act[s->y]));
			break;
		case ST_AVGPOOL: {
			/* per image: the [HW, C] activation (column-major C x HW) times ones / HW */
			int c = g->feat, hw = s->hw;
			const float alpha = 1.0f / (float)hw;
			int at = g->bf16 ? CUDA_R_16BF : CUDA_R_32F;
			BLAS(cu.cublasGemmStridedBatchedEx(g->d->blas, CUBLAS_OP_N, CUBLAS_OP_N, c, 1,
				hw, &alpha, g->act[s->x], at, c, (long long)c * hw, g->ones, at, hw, 0,
				&zero, g->featbuf, CUDA_R_32F, c, c, g->batch, CUBLAS_COMPUTE_32F,
				CUBLAS_GEMM_DEFAULT));
			break;
		}
		case ST_FC:
			/* logits (K x batch, column-major) = bias * ones^T, then += W^T feat */
			BLAS(cu.cublasGemmEx(g->d->blas, CUBLAS_OP_N, CUBLAS_OP_N, g->fc_k, g->batch, 1,
				&one, g->fc_b, CUDA_R_32F, g->fc_k, g->fc_ones, CUDA_R_32F, 1, &zero,
				g->logits, CUDA_R_32F, g->fc_k, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
			BLAS(cu.cublasGemmEx(g->d->blas, CUBLAS_OP_T, CUBLAS_OP_N, g->fc_k, g->batch,
				g->feat, &one, g->fc_w, CUDA_R_32F, g->feat, g->featbuf, CUDA_R_32F, g->feat, &one,
				g->logits, CUDA_R_32F, g->fc_k, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
			break;
		}
	}
	return 0;
}

static int net_init(gpu_net *g, nn_model *m, cull_err *e)
{
	nn_plan_shapes(m, g->h, g->w);      /* gpu_net_create restores m's shapes after */
	nn_plan_fold(m);
	m->fold_dirty = 0;
	if (plan_steps(g, m, e) < 0)
		return -1;
	g->nacts = m->nacts;
	g->ad = xcalloc((size_t)m->nacts, sizeof *g->ad);
	g->act = xcalloc((size_t)m->nacts, sizeof *g->act);
	for (int a = 0; a < m->nacts; a++) {
		const nn_act *t = &m->acts[a];
		if (tensor(&g->ad[a], g->dt, g->batch, a ? t->c : g->cpad, t->h, t->w, e) < 0)
			return -1;
	}
	if (plan_memory(g, m, e) < 0)
		return -1;
	DNN(cu.cudnnCreateActivationDescriptor(&g->relu));
	DNN(cu.cudnnSetActivationDescriptor(g->relu, CUDNN_ACTIVATION_RELU,
	                                   CUDNN_NOT_PROPAGATE_NAN, 0));
	DNN(cu.cudnnCreateActivationDescriptor(&g->ident));
	DNN(cu.cudnnSetActivationDescriptor(g->ident, CUDNN_ACTIVATION_IDENTITY,
	                                   CUDNN_NOT_PROPAGATE_NAN, 0));
	DNN(cu.cudnnCreatePoolingDescriptor(&g->pool));
	DNN(cu.cudnnSetPooling2dDescriptor(g->pool, CUDNN_POOLING_MAX, CUDNN_NOT_PROPAGATE_NAN,
	                                  3, 3, 1, 1, 2, 2));
	g->feat = g->dim = m->feat_dim;
	for (int i = 0; i < g->nst; i++) {
		step *s = &g->st[i];
		if (s->kind == ST_CONV && conv_setup(g, m, s, e) < 0)
			return -1;
		if (s->kind == ST_CONV && s->ws > g->ws_bytes)
			g->ws_bytes = s->ws;
		if (s->kind == ST_AVGPOOL) {
			int hw = m->acts[s->x].h * m->acts[s->x].w;
			float *ones = xmalloc(sizeof(float) * (size_t)hw);
			for (int k = 0; k < hw; k++)
				ones[k] = 1;
			g->ones = upload(g, ones, (size_t)hw, 0, e);
			free(ones);
			if (!g->ones)
				return -1;
			s->hw = hw;
		}
		if (s->kind == ST_FC) {
			const nn_op *o = &m->ops[s->op];
			float *ones = xmalloc(sizeof(float) * (size_t)g->batch);
			for (int k = 0; k < g->batch; k++)
				ones[k] = 1;
			g->fc_k = o->cout;
			g->fc_w = upload(g, m->params + m->t[o->t].off, (size_t)o->cout * o->cin, 1, e);
			g->fc_b = g->fc_w ? upload(g, m->params + m->t[o->t + 1].off, (size_t)o->cout,
			                           1, e) : NULL;
			g->fc_ones = g->fc_b ? upload(g, ones, (size_t)g->batch, 1, e) : NULL;
			free(ones);
			if (!g->fc_ones)
				return -1;
			RT(cu.cudaMalloc((void **)&g->logits, sizeof(float) * (size_t)g->batch * o->cout));
		}
	}
	RT(cu.cudaMalloc((void **)&g->featbuf, sizeof(float) * (size_t)g->batch * (size_t)g->feat));
	RT(cu.cudaMalloc(&g->ws, g->ws_bytes ? g->ws_bytes : 1));
	/* fuse what cuDNN fuses: the best algorithm, else the one every fusion has */
	int fused = 0, convs = 0;
	for (int i = 0; i < g->nst; i++) {
		step *s = &g->st[i];
		if (s->kind != ST_CONV)
			continue;
		convs++;
		if (!getenv("CULL_GPU_NO_FUSE") && (try_fused(g, s, s->algo) ||
		    try_fused(g, s, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)))
			fused++;
	}
	/* every call of the plan once, so that what cuDNN refuses shows here, not mid-run */
	if (steps_run(g, e) < 0)
		return -1;
	int out = m->num_classes > 0 ? g->fc_k : g->feat;
	RT(cu.cudaHostAlloc((void **)&g->out_h, sizeof(float) * (size_t)g->batch * out + 1, 0));
	RT(cu.cudaEventCreate(&g->e0));
	RT(cu.cudaEventCreate(&g->e1));
	RT(cu.cudaStreamSynchronize(g->d->stream));
	cu.cudaGetLastError();
	snprintf(g->plan, sizeof g->plan, "%d convolutions in %s: %d fused (bias%s), %d as "
	         "convolution + bias passes; workspace %.0f MiB", convs,
	         g->bf16 ? "bfloat16" : "float32", fused, ", residual add, ReLU", convs - fused,
	         (double)g->ws_bytes / (1 << 20));
	if (m->num_classes > 0)
		g->dim = g->fc_k;
	return 0;
}

gpu_net *gpu_net_create(gpu_device *d, nn_model *m, int batch, int h, int w, int bf16,
                        cull_err *e)
{
	gpu_net *g = xcalloc(1, sizeof *g);
	const char *pad = getenv("CULL_GPU_PAD_IN");

	g->d = d;
	g->batch = batch;
	g->h = h;
	g->w = w;
	g->bf16 = bf16;
	g->es = bf16 ? 2 : 4;
	g->dt = bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
	/* the stem's few input channels padded with zeros: tensor-core kernels want 8 */
	int mult = pad && *pad ? atoi(pad) : bf16 ? 8 : 4;
	if (mult < 1)
		mult = 1;
	g->in_ch = m->in_ch;
	g->cpad = (m->in_ch + mult - 1) / mult * mult;
	nn_act *save = xmalloc(sizeof(nn_act) * (size_t)m->nacts);
	memcpy(save, m->acts, sizeof(nn_act) * (size_t)m->nacts);
	int r = net_init(g, m, e);
	memcpy(m->acts, save, sizeof(nn_act) * (size_t)m->nacts);
	free(save);
	if (r < 0) {
		gpu_net_free(g);
		return NULL;
	}
	return g;
}

void gpu_net_free(gpu_net *g)
{
	if (!g)
		return;
	cu.cudaStreamSynchronize(g->d->stream);
	for (int i = 0; i < g->nst; i++) {
		step *s = &g->st[i];
		if (s->kind != ST_CONV)
			continue;
		if (s->w)
			cu.cudaFree(s->w);
		if (s->b)
			cu.cudaFree(s->b);
		if (s->wd)
			cu.cudnnDestroyFilterDescriptor(s->wd);
		if (s->cd)
			cu.cudnnDestroyConvolutionDescriptor(s->cd);
		if (s->bd)
			cu.cudnnDestroyTensorDescriptor(s->bd);
	}
	for (int a = 0; g->ad && a < g->nacts; a++)
		if (g->ad[a])
			cu.cudnnDestroyTensorDescriptor(g->ad[a]);
	for (int k = 0; k < g->nslots; k++)
		cu.cudaFree(g->slot[k]);
	if (g->act && g->act[0])
		cu.cudaFree(g->act[0]);
	void *bufs[] = { g->ws, g->ones, g->featbuf, g->fc_w, g->fc_b, g->fc_ones, g->logits };
	for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
		if (bufs[i])
			cu.cudaFree(bufs[i]);
	if (g->relu)
		cu.cudnnDestroyActivationDescriptor(g->relu);
	if (g->ident)
		cu.cudnnDestroyActivationDescriptor(g->ident);
	if (g->pool)
		cu.cudnnDestroyPoolingDescriptor(g->pool);
	if (g->out_h)
		cu.cudaFreeHost(g->out_h);
	if (g->e0)
		cu.cudaEventDestroy(g->e0);
	if (g->e1)
		cu.cudaEventDestroy(g->e1);
	free(g->st);
	free(g->ad);
	free(g->act);
	free(g->slot);
	free(g);
}

int gpu_net_channels(const gpu_net *g)
{
	return g->cpad;
}

size_t gpu_net_image_bytes(const gpu_net *g)
{
	return (size_t)g->cpad * (size_t)g->h * (size_t)g->w * (size_t)g->es;
}

int gpu_net_dim(const gpu_net *g)
{
	return g->dim;
}

double gpu_net_busy(const gpu_net *g)
{
	return g->busy;
}

const char *gpu_net_plan(const gpu_net *g)
{
	return g->plan;
}

void gpu_pack_image(const gpu_net *g, void *dst, const float *src)
{
	size_t hw = (size_t)g->h * (size_t)g->w, c = (size_t)g->cpad;

	for (size_t p = 0; p < hw; p++)
		for (size_t k = 0; k < c; k++) {
			float v = k < (size_t)g->in_ch ? src[k * hw + p] : 0;
			if (g->es == 2)
				((uint16_t *)dst)[p * c + k] = to_bf16(v);
			else
				((float *)dst)[p * c + k] = v;
		}
}

const float *gpu_net_forward(gpu_net *g, const void *x, int n, cull_err *e)
{
	cudaError_t r;
	float ms = 0;
	cudaStream_t st = g->d->stream;

	if (n < 1 || n > g->batch) {
		cull_err_set(e, EXIT_USAGE, "gpu_net_forward: batch %d outside 1..%d", n, g->batch);
		return NULL;
	}
	int out = g->dim;
	if ((r = cu.cudaEventRecord(g->e0, st)) != cudaSuccess ||
	    (r = cu.cudaMemcpyAsync(g->act[0], x, (size_t)n * gpu_net_image_bytes(g),
	                           cudaMemcpyHostToDevice, st)) != cudaSuccess) {
		rt_fail(e, r, "copying a batch to the GPU");
		return NULL;
	}
	if (steps_run(g, e) < 0)
		return NULL;
	if ((r = cu.cudaMemcpyAsync(g->out_h, g->logits ? g->logits : g->featbuf,
	                           sizeof(float) * (size_t)n * out, cudaMemcpyDeviceToHost,
	                           st)) != cudaSuccess ||
	    (r = cu.cudaEventRecord(g->e1, st)) != cudaSuccess ||
	    (r = cu.cudaEventSynchronize(g->e1)) != cudaSuccess) {
		rt_fail(e, r, "running the batch on the GPU");
		return NULL;
	}
	if (cu.cudaEventElapsedTime(&ms, g->e0, g->e1) == cudaSuccess)
		g->busy += ms / 1000.0;
	return g->out_h;
}

double gpu_net_bench(gpu_net *g, int iters, cull_err *e)
{
	cudaStream_t st = g->d->stream;
	float ms = 0;

	for (int i = 0; i < 2; i++)
		if (steps_run(g, e) < 0)
			return -1;
	if (cu.cudaEventRecord(g->e0, st) != cudaSuccess)
		return cull_err_set(e, EXIT_DEVICE, "cudaEventRecord failed");
	for (int i = 0; i < iters; i++)
		if (steps_run(g, e) < 0)
			return -1;
	cudaError_t r = cu.cudaEventRecord(g->e1, st);
	if (r == cudaSuccess)
		r = cu.cudaEventSynchronize(g->e1);
	if (r == cudaSuccess)
		r = cu.cudaEventElapsedTime(&ms, g->e0, g->e1);
	if (r != cudaSuccess)
		return rt_fail(e, r, "timing the benchmark");
	return (double)ms / iters;
}
