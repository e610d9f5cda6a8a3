/* Checks tests/fake/fakecuda.c's stand-in CUDA libraries against naive loops. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda.h"

enum { BAD_PARAM = 2000, NOT_SUPPORTED = 3000, BLAS_INVALID = 7 };

/* The entry points, loaded as nn/gpu.c loads them. */
#define MEMBER(name, ret, args) ret (*name) args;
static struct {
	CUDART_FUNCS(MEMBER)
	CUBLAS_FUNCS(MEMBER)
	CUDNN_FUNCS(MEMBER)
	cudaError_t (*props)(void *prop, int dev);
} F;
#undef MEMBER

static int tests, failures;

static int check(int ok, const char *what)
{
	printf("%sok %d - %s\n", ok ? "" : "not ", ++tests, what);
	failures += !ok;
	return ok;
}

static double absd(double v)
{
	return v < 0 ? -v : v;
}

/* Random numbers in [-1, 1). */
static uint64_t seed = 88172645463325252ull;

static float rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return (float)((double)(seed >> 11) / 9007199254740992.0 * 2 - 1);
}

static uint16_t to_bf16(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	u += 0x7fffu + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

static float from_bf16(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;

	memcpy(&f, &u, 4);
	return f;
}

/* n random values (representable in bf16 when bf16 is set) */
static float *random_values(size_t n, int bf16)
{
	float *v = malloc(n * sizeof(float));

	for (size_t i = 0; i < n; i++)
		v[i] = bf16 ? from_bf16(to_bf16(rnd())) : rnd();
	return v;
}

/* got within tol (relative) of want */
static int near(const float *got, const double *want, size_t n, double tol)
{
	for (size_t i = 0; i < n; i++)
		if (!(absd(got[i] - want[i]) <= tol * absd(want[i]) + 1e-6)) {
			printf("# element %zu: got %.9g, want %.9g\n", i, got[i], want[i]);
			return 0;
		}
	return 1;
}

/* ---- tensors: logical NCHW floats <-> device memory in a format and type ---- */
struct tensor { int n, c, h, w, fmt, bf16; cudnnTensorDescriptor_t d; void *p; };

static size_t tcount(const struct tensor *t)
{
	return (size_t)t->n * t->c * t->h * t->w;
}

static size_t tindex(const struct tensor *t, int n, int c, int h, int w)
{
	if (t->fmt == CUDNN_TENSOR_NCHW)
		return (((size_t)n * t->c + c) * t->h + h) * t->w + w;
	return (((size_t)n * t->h + h) * t->w + w) * t->c + c;
}

/* A device tensor holding v (logical NCHW), or uninitialised when v is NULL. */
static struct tensor tensor(int n, int c, int h, int w, int fmt, int bf16, const float *v)
{
	struct tensor t = { n, c, h, w, fmt, bf16, NULL, NULL };
	size_t es = bf16 ? 2 : 4, i = 0;
	char *buf = malloc(tcount(&t) * es);

	F.cudnnCreateTensorDescriptor(&t.d);
	F.cudnnSetTensor4dDescriptor(t.d, fmt, bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT,
	                             n, c, h, w);
	F.cudaMalloc(&t.p, tcount(&t) * es);
	for (int a = 0; v && a < n; a++)
		for (int b = 0; b < c; b++)
			for (int y = 0; y < h; y++)
				for (int x = 0; x < w; x++, i++) {
					size_t j = tindex(&t, a, b, y, x);
					uint16_t hv = to_bf16(v[i]);
					const void *e = bf16 ? (void *)&hv : (void *)&v[i];

					memcpy(buf + j * es, e, es);
				}
	if (v)
		F.cudaMemcpy(t.p, buf, tcount(&t) * es, cudaMemcpyHostToDevice);
	free(buf);
	return t;
}

/* The tensor's values in logical NCHW order (malloc'd) */
static float *fetch(const struct tensor *t)
{
	size_t es = t->bf16 ? 2 : 4, i = 0;
	char *buf = malloc(tcount(t) * es);
	float *v = malloc(tcount(t) * sizeof(float));

	F.cudaMemcpy(buf, t->p, tcount(t) * es, cudaMemcpyDeviceToHost);
	for (int a = 0; a < t->n; a++)
		for (int b = 0; b < t->c; b++)
			for (int y = 0; y < t->h; y++)
				for (int x = 0; x < t->w; x++, i++) {
					size_t j = tindex(t, a, b, y, x);
					uint16_t hv;

					if (t->bf16) {
						memcpy(&hv, buf + j * 2, 2);
						v[i] = from_bf16(hv);
					} else {
						memcpy(&v[i], buf + j * 4, 4);
					}
				}
	free(buf);
	return v;
}

static void drop(struct tensor *t)
{
	F.cudnnDestroyTensorDescriptor(t->d);
	F.cudaFree(t->p);
}

/* ---- the convolution of the checks: 2x5x9x7 input, 6 3x3 filters, pad 1, stride 2 ---- */
enum { N = 2, C = 5, H = 9, W = 7, K = 6, R = 3, S = 3, PAD = 1, STRIDE = 2,
       OH = (H + 2 * PAD - R) / STRIDE + 1, OW = (W + 2 * PAD - S) / STRIDE + 1 };

static void naive_conv(const float *x, const float *w, double *y)
{
	for (int n = 0; n < N; n++)
	for (int k = 0; k < K; k++)
	for (int oh = 0; oh < OH; oh++)
	for (int ow = 0; ow < OW; ow++) {
		double acc = 0;

		for (int c = 0; c < C; c++)
			for (int r = 0; r < R; r++)
				for (int s = 0; s < S; s++) {
					int ih = oh * STRIDE - PAD + r, iw = ow * STRIDE - PAD + s;

					if (ih >= 0 && ih < H && iw >= 0 && iw < W)
						acc += (double)x[((n * C + c) * H + ih) * W + iw] *
						       w[((k * C + c) * R + r) * S + s];
				}
		y[((n * K + k) * OH + oh) * OW + ow] = acc;
	}
}

struct conv {
	cudnnHandle_t h;
	cudnnFilterDescriptor_t wd;
	cudnnConvolutionDescriptor_t cd;
	void *w, *ws;
	float *xv, *wv;
	struct tensor x;
};

/* x and w (random, logical NCHW and KCRS) on the device in a format and type */
static struct conv conv_setup(cudnnHandle_t h, int fmt, int bf16)
{
	struct conv v = { .h = h };
	struct tensor wt;

	v.xv = random_values(N * C * H * W, bf16);
	v.wv = random_values(K * C * R * S, bf16);
	v.x = tensor(N, C, H, W, fmt, bf16, v.xv);
	wt = tensor(K, C, R, S, fmt, bf16, v.wv);    /* a filter is laid out as a tensor */
	F.cudnnDestroyTensorDescriptor(wt.d);
	v.w = wt.p;
	F.cudnnCreateFilterDescriptor(&v.wd);
	F.cudnnSetFilter4dDescriptor(v.wd, bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT, fmt,
	                             K, C, R, S);
	F.cudnnCreateConvolutionDescriptor(&v.cd);
	F.cudnnSetConvolution2dDescriptor(v.cd, PAD, PAD, STRIDE, STRIDE, 1, 1,
	                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
	F.cudaMalloc(&v.ws, 4096);
	return v;
}

static void conv_drop(struct conv *v)
{
	drop(&v->x);
	F.cudaFree(v->w);
	F.cudaFree(v->ws);
	F.cudnnDestroyFilterDescriptor(v->wd);
	F.cudnnDestroyConvolutionDescriptor(v->cd);
	free(v->xv);
	free(v->wv);
}

/* y = alpha conv + beta y in a format and type, against the naive loop */
static void check_conv(cudnnHandle_t h, int fmt, int bf16, float alpha, float beta,
                       const char *what)
{
	struct conv v = conv_setup(h, fmt, bf16);
	float *old = random_values(N * K * OH * OW, bf16), *got;
	double want[N * K * OH * OW];
	struct tensor y = tensor(N, K, OH, OW, fmt, bf16, beta != 0 ? old : NULL);
	cudnnConvolutionFwdAlgoPerf_t perf[4];
	int dims[4], n = 0, ok;

	ok = !F.cudnnGetConvolution2dForwardOutputDim(v.cd, v.x.d, v.wd, &dims[0], &dims[1],
	                                              &dims[2], &dims[3]) &&
	     dims[0] == N && dims[1] == K && dims[2] == OH && dims[3] == OW;
	ok = ok && !F.cudnnFindConvolutionForwardAlgorithm(h, v.x.d, v.wd, v.cd, y.d, 4, &n,
	                                                   perf) &&
	     n == 2 && perf[0].algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM &&
	     perf[0].memory == 4096 && perf[1].algo == 0 && perf[1].memory == 0;
	if (beta == 0)    /* NaN: beta 0 must not read y */
		F.cudaMemsetAsync(y.p, 0xff, tcount(&y) * (bf16 ? 2 : 4), NULL);
	ok = ok && !F.cudnnConvolutionForward(h, &alpha, v.x.d, v.x.p, v.wd, v.w, v.cd,
	                                      perf[0].algo, v.ws, 4096, &beta, y.d, y.p);
	naive_conv(v.xv, v.wv, want);
	for (int i = 0; i < N * K * OH * OW; i++)
		want[i] = alpha * want[i] + (beta != 0 ? beta * old[i] : 0);
	got = fetch(&y);
	check(ok && near(got, want, tcount(&y), bf16 ? 1e-2 : 1e-5), what);
	free(got);
	free(old);
	drop(&y);
	conv_drop(&v);
}

/* the fused call: relu(conv + 0.5 z + bias), then identity with z = y in place */
static void check_fused(cudnnHandle_t h)
{
	struct conv v = conv_setup(h, CUDNN_TENSOR_NHWC, 0);
	float *zv = random_values(N * K * OH * OW, 0), *bv = random_values(K, 0), *got;
	struct tensor z = tensor(N, K, OH, OW, CUDNN_TENSOR_NHWC, 0, zv);
	struct tensor b = tensor(1, K, 1, 1, CUDNN_TENSOR_NCHW, 0, bv);
	struct tensor y = tensor(N, K, OH, OW, CUDNN_TENSOR_NHWC, 0, zv);
	double want[N * K * OH * OW], conv[N * K * OH * OW];
	const float one = 1, half = 0.5f;
	cudnnActivationDescriptor_t relu, ident;
	int r1, r2, r3;

	F.cudnnCreateActivationDescriptor(&relu);
	F.cudnnSetActivationDescriptor(relu, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0);
	F.cudnnCreateActivationDescriptor(&ident);
	F.cudnnSetActivationDescriptor(ident, CUDNN_ACTIVATION_IDENTITY, CUDNN_NOT_PROPAGATE_NAN,
	                               0);
	naive_conv(v.xv, v.wv, conv);
	r1 = F.cudnnConvolutionBiasActivationForward(h, &one, v.x.d, v.x.p, v.wd, v.w, v.cd, 0,
		NULL, 0, &half, z.d, z.p, b.d, b.p, relu, y.d, y.p);
	for (int i = 0; i < N * K * OH * OW; i++) {
		double s = conv[i] + 0.5 * zv[i] + bv[i / (OH * OW) % K];
		want[i] = s > 0 ? s : 0;
	}
	got = fetch(&y);
	check(!r1 && near(got, want, tcount(&y), 1e-5), "fused conv + z + bias, ReLU");
	free(got);
	/* z is y: y = conv + 0.5 y + bias */
	r2 = F.cudnnConvolutionBiasActivationForward(h, &one, v.x.d, v.x.p, v.wd, v.w, v.cd,
		CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, v.ws, 4096, &half, y.d, y.p, b.d,
		b.p, ident, y.d, y.p);
	for (int i = 0; i < N * K * OH * OW; i++)
		want[i] = conv[i] + 0.5 * want[i] + bv[i / (OH * OW) % K];
	got = fetch(&y);
	check(!r2 && near(got, want, tcount(&y), 1e-5), "fused identity in place (z = y)");
	free(got);
	r3 = F.cudnnConvolutionBiasActivationForward(h, &one, v.x.d, v.x.p, v.wd, v.w, v.cd, 0,
		NULL, 0, &half, z.d, z.p, b.d, b.p, ident, y.d, y.p);
	check(r3 == NOT_SUPPORTED, "fused identity needs IMPLICIT_PRECOMP_GEMM");
	setenv("FAKECUDA_NO_FUSED", "1", 1);
	r3 = F.cudnnConvolutionBiasActivationForward(h, &one, v.x.d, v.x.p, v.wd, v.w, v.cd, 0,
		NULL, 0, &half, z.d, z.p, b.d, b.p, relu, y.d, y.p);
	unsetenv("FAKECUDA_NO_FUSED");
	check(r3 == NOT_SUPPORTED, "FAKECUDA_NO_FUSED=1: fused call not supported");
	r3 = F.cudnnActivationForward(h, relu, &one, z.d, z.p, &(float){ 0 }, z.d, z.p);
	got = fetch(&z);
	for (int i = 0; i < N * K * OH * OW; i++)
		want[i] = zv[i] > 0 ? zv[i] : 0;
	check(!r3 && near(got, want, tcount(&z), 0), "ReLU activation in place");
	free(got);
	F.cudnnDestroyActivationDescriptor(relu);
	F.cudnnDestroyActivationDescriptor(ident);
	drop(&z);
	drop(&b);
	drop(&y);
	free(zv);
	free(bv);
	conv_drop(&v);
}

/* max and average (padding included) 3x3 pooling, pad 1, stride 2; bias broadcast */
static void check_pool_add(cudnnHandle_t h)
{
	float *xv = random_values(N * C * H * W, 0), *bv = random_values(C, 0), *got;
	struct tensor x = tensor(N, C, H, W, CUDNN_TENSOR_NHWC, 0, xv);
	struct tensor y = tensor(N, C, OH, OW, CUDNN_TENSOR_NHWC, 0, NULL);
	struct tensor b = tensor(1, C, 1, 1, CUDNN_TENSOR_NCHW, 0, bv);
	double want[N * C * H * W];
	const float one = 1, zero = 0;
	cudnnPoolingDescriptor_t pd;
	int r;

	F.cudnnCreatePoolingDescriptor(&pd);
	for (int mode = CUDNN_POOLING_MAX; mode <= CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING;
	     mode++) {
		F.cudnnSetPooling2dDescriptor(pd, mode, CUDNN_NOT_PROPAGATE_NAN, 3, 3, 1, 1, 2, 2);
		r = F.cudnnPoolingForward(h, pd, &one, x.d, x.p, &zero, y.d, y.p);
		for (int i = 0; i < N * C * OH * OW; i++) {
			int nc = i / (OH * OW), oh = i / OW % OH, ow = i % OW;
			double sum = 0, max = -1e30;

			for (int ih = oh * 2 - 1; ih < oh * 2 + 2; ih++)
				for (int iw = ow * 2 - 1; iw < ow * 2 + 2; iw++) {
					double e;

					if (ih < 0 || ih >= H || iw < 0 || iw >= W)
						continue;
					e = xv[(nc * H + ih) * W + iw];
					sum += e;
					max = e > max ? e : max;
				}
			want[i] = mode == CUDNN_POOLING_MAX ? max : sum / 9;
		}
		got = fetch(&y);
		check(!r && near(got, want, tcount(&y), 1e-6), mode == CUDNN_POOLING_MAX ?
		      "max pooling 3x3 pad 1 stride 2" : "average pooling, padding included");
		free(got);
	}
	r = F.cudnnAddTensor(h, &one, b.d, b.p, &one, x.d, x.p);
	for (int i = 0; i < N * C * H * W; i++)
		want[i] = (double)xv[i] + bv[i / (H * W) % C];
	got = fetch(&x);
	check(!r && near(got, want, tcount(&x), 1e-6), "AddTensor broadcasts a [1,C,1,1] bias");
	free(got);
	F.cudnnDestroyPoolingDescriptor(pd);
	drop(&x);
	drop(&y);
	drop(&b);
	free(xv);
	free(bv);
}

/* ---- GEMM, column-major: C = alpha op(A) op(B) + beta C ---- */
static void naive_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *A,
                       int lda, const float *B, int ldb, float beta, const float *C0, int ldc,
                       double *want)
{
	for (int j = 0; j < n; j++)
		for (int i = 0; i < m; i++) {
			double acc = 0;

			for (int l = 0; l < k; l++)
				acc += (double)(ta ? A[i * lda + l] : A[l * lda + i]) *
				       (tb ? B[l * ldb + j] : B[j * ldb + l]);
			want[j * ldc + i] = alpha * acc + (beta != 0 ? beta * C0[j * ldc + i] : 0);
		}
}

static void *upload(const void *host, size_t bytes)
{
	void *p = NULL;

	F.cudaMalloc(&p, bytes);
	F.cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice);
	return p;
}

static void check_gemm(cublasHandle_t h)
{
	enum { M = 5, NN = 4, KK = 3, LDA = 7, LDB = 6, LDC = 6, BATCH = 3 };
	float *a = random_values(LDA * 8, 1), *b = random_values(LDB * 8, 1);
	float *c0 = random_values(LDC * NN * BATCH, 0), got[LDC * NN * BATCH];
	double want[LDC * NN * BATCH];
	const float alpha = 1.5f, beta = 0.5f, zero = 0;
	void *dA = upload(a, LDA * 8 * 4), *dB = upload(b, LDB * 8 * 4), *dC;
	uint16_t ah[LDA * KK * BATCH], bh[LDB * NN];
	int r, ok;

	for (int t = 0; t < 2; t++) {    /* op(A) = A (5x3), then A^T (A 3x5) */
		dC = upload(c0, LDC * NN * 4);
		r = F.cublasGemmEx(h, t, CUBLAS_OP_N, M, NN, KK, &alpha, dA, CUDA_R_32F, LDA, dB,
		                   CUDA_R_32F, LDB, &beta, dC, CUDA_R_32F, LDC, CUBLAS_COMPUTE_32F,
		                   CUBLAS_GEMM_DEFAULT);
		naive_gemm(t, 0, M, NN, KK, alpha, a, LDA, b, LDB, beta, c0, LDC, want);
		F.cudaMemcpy(got, dC, LDC * NN * 4, cudaMemcpyDeviceToHost);
		ok = !r;
		for (int j = 0; j < NN; j++)    /* the m rows of each column */
			ok = ok && near(got + j * LDC, want + j * LDC, M, 1e-5);
		check(ok, t ? "GemmEx T/N" : "GemmEx N/N");
		F.cudaFree(dC);
	}
	/* bf16 A (3 batches) times one bf16 B (stride 0), into float C, beta 0 */
	for (int i = 0; i < LDA * KK * BATCH; i++)
		ah[i] = to_bf16(a[i % (LDA * 8)] * (float)(1 + i / (LDA * KK)));
	for (int i = 0; i < LDB * NN; i++)
		bh[i] = to_bf16(b[i]);
	F.cudaFree(dA);
	F.cudaFree(dB);
	dA = upload(ah, sizeof(ah));
	dB = upload(bh, sizeof(bh));
	dC = upload(c0, LDC * NN * BATCH * 4);
	F.cudaMemsetAsync(dC, 0xff, LDC * NN * BATCH * 4, NULL);    /* NaN: beta 0 must not read */
	r = F.cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, M, NN, KK, &alpha, dA,
		CUDA_R_16BF, LDA, LDA * KK, dB, CUDA_R_16BF, LDB, 0, &zero, dC, CUDA_R_32F, LDC,
		LDC * NN, BATCH, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
	F.cudaMemcpy(got, dC, sizeof(got), cudaMemcpyDeviceToHost);
	ok = !r;
	for (int i = 0; i < BATCH; i++) {
		float av[LDA * KK], bv[LDB * NN];

		for (int e = 0; e < LDA * KK; e++)
			av[e] = from_bf16(ah[i * LDA * KK + e]);
		for (int e = 0; e < LDB * NN; e++)
			bv[e] = from_bf16(bh[e]);
		naive_gemm(0, 0, M, NN, KK, alpha, av, LDA, bv, LDB, 0, NULL, LDC,
		           want + i * LDC * NN);
		for (int j = 0; j < NN; j++)
			ok = ok && near(got + i * LDC * NN + j * LDC, want + i * LDC * NN + j * LDC,
			                M, 1e-5);
	}
	check(ok, "GemmStridedBatchedEx, bf16 inputs, B stride 0");
	r = F.cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, M, NN, KK, &alpha, dA, CUDA_R_32F, M - 1,
	                   dB, CUDA_R_32F, LDB, &beta, dC, CUDA_R_32F, LDC, CUBLAS_COMPUTE_32F,
	                   CUBLAS_GEMM_DEFAULT);
	check(r == BLAS_INVALID, "GemmEx refuses lda < m");
	/* 1 + 2^-8 and 1 + 3 2^-8 lie halfway between bf16 values: to even, 1 and 1 + 2^-6 */
	ah[0] = ah[1] = bh[0] = bh[1] = to_bf16(1);
	ah[2] = to_bf16(1.0f / 256);
	ah[3] = to_bf16(3.0f / 256);
	F.cudaMemcpy(dA, ah, 8, cudaMemcpyHostToDevice);
	F.cudaMemcpy(dB, bh, 4, cudaMemcpyHostToDevice);
	r = F.cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 1, 2, &(float){ 1 }, dA, CUDA_R_16BF,
	                   2, dB, CUDA_R_16BF, 2, &zero, dC, CUDA_R_16BF, 2, CUBLAS_COMPUTE_32F,
	                   CUBLAS_GEMM_DEFAULT);
	F.cudaMemcpy(bh, dC, 4, cudaMemcpyDeviceToHost);
	check(!r && bh[0] == 0x3f80 && bh[1] == 0x3f82, "bf16 results round to nearest even");
	F.cudaFree(dA);
	F.cudaFree(dB);
	F.cudaFree(dC);
	free(a);
	free(b);
	free(c0);
}

/* ---- the runtime: memcheck, memory limit, knobs ---- */
static void check_runtime(cudnnHandle_t h)
{
	char host[64] = { 0 }, name[CUDA_DEVICE_PROP_BYTES];
	size_t fr = 0, total = 0;
	int n = -1, v = 0, ok;
	void *p = NULL, *q = NULL;
	cudaEvent_t e0, e1;
	float ms = -1;

	ok = !F.props(name, 0) && !strcmp(name, "cull fake GPU (CPU stand-in)");
	check(ok && !F.cudaGetDeviceCount(&n) && n == 1, "one device, named");
	ok = !F.cudaDeviceGetAttribute(&v, cudaDevAttrComputeCapabilityMajor, 0) && v == 9;
	ok = ok && !F.cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, 0) && v == 132;
	check(ok && F.cudaSetDevice(1) == 101 && F.cudaGetLastError() == 101 &&
	      F.cudaGetLastError() == cudaSuccess, "attributes, cudaSetDevice(1), GetLastError");
	F.cudaMalloc(&p, 64);
	check(F.cudaMemcpy((char *)p + 8, host, 64, cudaMemcpyHostToDevice) == 1,
	      "a copy past the end of an allocation fails");
	check(F.cudaMemcpy(p, p, 64, cudaMemcpyHostToDevice) == 1,
	      "a device pointer as the host side of a copy fails");
	check(F.cudaFree((char *)p + 1) == 1 && !F.cudaFree(p),
	      "cudaFree of an unknown pointer fails");
	setenv("FAKECUDA_MEM", "1048576", 1);
	ok = F.cudaMalloc(&p, 2 << 20) == cudaErrorMemoryAllocation && !F.cudaMalloc(&p, 600000);
	ok = ok && F.cudaMalloc(&q, 600000) == cudaErrorMemoryAllocation;
	ok = ok && !F.cudaMemGetInfo(&fr, &total) && total == 1048576 && fr == 1048576 - 600000;
	check(ok && !F.cudaFree(p), "FAKECUDA_MEM limits cudaMalloc and cudaMemGetInfo");
	unsetenv("FAKECUDA_MEM");
	setenv("FAKECUDA_DEVICES", "0", 1);
	check(F.cudaGetDeviceCount(&n) == cudaErrorNoDevice && n == 0, "FAKECUDA_DEVICES=0");
	unsetenv("FAKECUDA_DEVICES");
	setenv("FAKECUDA_DRIVER", "old", 1);
	check(F.cudaGetDeviceCount(&n) == cudaErrorInsufficientDriver, "FAKECUDA_DRIVER=old");
	unsetenv("FAKECUDA_DRIVER");
	ok = F.cudnnGetVersion() == 91900;
	setenv("FAKECUDA_CUDNN_VERSION", "90100", 1);
	check(ok && F.cudnnGetVersion() == 90100, "cudnnGetVersion, FAKECUDA_CUDNN_VERSION");
	unsetenv("FAKECUDA_CUDNN_VERSION");
	ok = !strcmp(F.cudaGetErrorString(cudaErrorMemoryAllocation), "out of memory") &&
	     !strcmp(F.cudnnGetErrorString(NOT_SUPPORTED), "CUDNN_STATUS_NOT_SUPPORTED") &&
	     !strcmp(F.cudaGetErrorString(12345), "unknown error");
	check(ok, "error strings");
	F.cudaEventCreate(&e0);
	F.cudaEventCreate(&e1);
	F.cudaEventRecord(e0, NULL);
	F.cudaEventRecord(e1, NULL);
	check(!F.cudaEventElapsedTime(&ms, e0, e1) && ms >= 0 && ms < 1000, "event timing");
	F.cudaEventDestroy(e0);
	F.cudaEventDestroy(e1);
	{    /* a convolution whose y allocation is too short */
		struct conv c = conv_setup(h, CUDNN_TENSOR_NCHW, 0);
		struct tensor y = tensor(N, K, OH, OW, CUDNN_TENSOR_NCHW, 0, NULL);
		const float one = 1, zero = 0;

		F.cudaFree(y.p);
		F.cudaMalloc(&y.p, tcount(&y) * 4 - 4);
		check(F.cudnnConvolutionForward(h, &one, c.x.d, c.x.p, c.wd, c.w, c.cd, 0, NULL, 0,
		      &zero, y.d, y.p) == BAD_PARAM, "a convolution into a short y fails");
		drop(&y);
		conv_drop(&c);
	}
}

static void *open_lib(const char *dir, const char *name)
{
	char path[4096];
	void *h;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(h = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
		printf("# %s\n", dlerror());
	return h;
}

int main(int argc, char **argv)
{
	void *rt, *blas, *dnn;
	cudnnHandle_t h = NULL;
	cublasHandle_t bh = NULL;
	int ok;

	if (argc != 2) {
		fprintf(stderr, "usage: fakecuda_check DIR (holding libcudart.so.13 etc.)\n");
		return 2;
	}
	rt = open_lib(argv[1], "libcudart.so.13");
	blas = open_lib(argv[1], "libcublas.so.13");
	dnn = open_lib(argv[1], "libcudnn.so.9");
	ok = rt && blas && dnn;
#define LOAD(name, ret, args) ok = ok && (*(void **)&F.name = dlsym(LIB, #name));
#define LIB rt
	CUDART_FUNCS(LOAD)
#undef LIB
#define LIB blas
	CUBLAS_FUNCS(LOAD)
#undef LIB
#define LIB dnn
	CUDNN_FUNCS(LOAD)
#undef LIB
	ok = ok && (*(void **)&F.props = dlsym(rt, "cudaGetDeviceProperties_v2"));
	if (!check(ok, "the three libraries and every entry point load"))
		return 1;
	check(!F.cudnnCreate(&h) && !F.cublasCreate_v2(&bh), "cudnnCreate, cublasCreate");
	check_runtime(h);
	check_conv(h, CUDNN_TENSOR_NCHW, 0, 1, 0, "conv NCHW float, beta 0");
	check_conv(h, CUDNN_TENSOR_NHWC, 0, 1.5f, 0.5f, "conv NHWC float, alpha 1.5 beta 0.5");
	check_conv(h, CUDNN_TENSOR_NHWC, 1, 1, 0, "conv NHWC bf16");
	check_fused(h);
	check_pool_add(h);
	check_gemm(bh);
	F.cublasDestroy_v2(bh);
	F.cudnnDestroy(h);
	printf("# %d checks, %d failed\n", tests, failures);
	return failures != 0;
}
