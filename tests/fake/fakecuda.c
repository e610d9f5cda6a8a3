/* A CPU stand-in for libcudart, libcublas and libcudnn (nn/cuda.h's API), for the tests. */
/*
 * Built once per library with -DFAKE_LIB=FAKE_CUDART, FAKE_CUBLAS or FAKE_CUDNN (see
 * mk/fakecuda.mk). libcudart holds the state (live allocations, call counters) and the other
 * two link to it, so all three share one device however they are loaded. Device memory is
 * host memory; a call that touches a device range outside every live allocation fails and
 * says "fakecuda: FUNCTION: WHAT out of bounds" on stderr. Work runs in the call, in double.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda.h"

#define FAKE_CUDART 1
#define FAKE_CUBLAS 2
#define FAKE_CUDNN 3

/* The declared prototypes, so that the compiler checks each definition against them. */
#define X(name, ret, args) ret name args;
CUDART_FUNCS(X)
CUBLAS_FUNCS(X)
CUDNN_FUNCS(X)
CUDNN_TRAIN_FUNCS(X)
#undef X
cudaError_t cudaGetDeviceProperties(void *prop, int dev);
cudaError_t cudaGetDeviceProperties_v2(void *prop, int dev);

/* Every entry point's index, for the call counters (FAKECUDA_STATS). */
enum {
#define X(name, ret, args) I_##name,
	CUDART_FUNCS(X) CUBLAS_FUNCS(X) CUDNN_FUNCS(X) CUDNN_TRAIN_FUNCS(X)
#undef X
	I_cudaGetDeviceProperties, I_cudaGetDeviceProperties_v2, N_ENTRY
};

/* What libcudart exports to the other two. */
void fakecuda_count(int entry);
int fakecuda_devices(void);
int fakecuda_dev_range(const char *fn, const char *what, const void *p, size_t n);
int fakecuda_host_range(const char *fn, const char *what, const void *p, size_t n);

#define COUNT(name) fakecuda_count(I_##name)

struct CUstream_st { char unused; };
struct CUevent_st { int recorded; struct timespec t; };

#if FAKE_LIB != FAKE_CUDART
/* Elements: float, or bfloat16 (a float's upper half: widened exactly, rounded to nearest
 * even, NaN kept NaN). */
enum { T_F32, T_BF16 };

static inline size_t esize(int t)
{
	return t == T_BF16 ? 2 : 4;
}

static inline double get(const void *p, int t, size_t i)
{
	uint32_t u;
	float f;

	if (t == T_F32)
		return ((const float *)p)[i];
	u = (uint32_t)((const uint16_t *)p)[i] << 16;
	memcpy(&f, &u, sizeof(f));
	return f;
}

static inline void put(void *p, int t, size_t i, double v)
{
	float f = (float)v;
	uint32_t u;

	if (t == T_F32) {
		((float *)p)[i] = f;
		return;
	}
	memcpy(&u, &f, sizeof(u));
	if ((u & 0x7fffffffu) > 0x7f800000u)
		u |= 0x400000u;    /* a quiet NaN, still one in the upper half */
	else
		u += 0x7fffu + ((u >> 16) & 1);
	((uint16_t *)p)[i] = (uint16_t)(u >> 16);
}
#endif

#if FAKE_LIB == FAKE_CUDART
/* ---- libcudart: the state, the knobs, memory, streams, events ---- */
enum { E_INVALID = 1, E_DIRECTION = 21, E_DEVICE = 101, E_HANDLE = 400 };

static const char *const entry_names[N_ENTRY] = {
#define X(name, ret, args) #name,
	CUDART_FUNCS(X) CUBLAS_FUNCS(X) CUDNN_FUNCS(X) CUDNN_TRAIN_FUNCS(X)
#undef X
	"cudaGetDeviceProperties", "cudaGetDeviceProperties_v2",
};
static atomic_ulong calls[N_ENTRY];

struct alloc { uintptr_t p; size_t n; int host; };
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct alloc *allocs;    /* live cudaMalloc (host 0) and cudaHostAlloc (host 1) */
static size_t nalloc, cap_alloc, live_bytes;
static _Thread_local cudaError_t last_err;

void fakecuda_count(int entry)
{
	atomic_fetch_add(&calls[entry], 1);
}

/* FAKECUDA_DEVICES (default 1), or -1 for FAKECUDA_DRIVER=old */
int fakecuda_devices(void)
{
	const char *drv = getenv("FAKECUDA_DRIVER"), *n = getenv("FAKECUDA_DEVICES");

	if (drv && !strcmp(drv, "old"))
		return -1;
	return n && *n ? atoi(n) : 1;
}

static cudaError_t no_device(void)
{
	int n = fakecuda_devices();

	return n < 0 ? cudaErrorInsufficientDriver : n == 0 ? cudaErrorNoDevice : cudaSuccess;
}

static cudaError_t bad_device(int dev)
{
	cudaError_t e = no_device();

	return e ? e : dev < 0 || dev >= fakecuda_devices() ? E_DEVICE : cudaSuccess;
}

/* FAKECUDA_MEM, the device memory in bytes (default 8 GiB) */
static size_t mem_limit(void)
{
	const char *s = getenv("FAKECUDA_MEM");
	char *end;
	unsigned long long v = s && *s ? strtoull(s, &end, 10) : 0;

	return s && *s && !*end ? (size_t)v : (size_t)8 << 30;
}

/* Every call's error is kept for cudaGetLastError. */
static cudaError_t rt(cudaError_t e)
{
	if (e)
		last_err = e;
	return e;
}

static cudaError_t put_int(int *p, int v)
{
	if (!p)
		return rt(E_INVALID);
	*p = v;
	return cudaSuccess;
}

int fakecuda_dev_range(const char *fn, const char *what, const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p;
	int ok = 0;

	if (!n)
		return 0;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nalloc && !ok; i++)
		ok = !allocs[i].host && a >= allocs[i].p && n <= allocs[i].n &&
		     a - allocs[i].p <= allocs[i].n - n;
	pthread_mutex_unlock(&lock);
	if (!ok)
		fprintf(stderr, "fakecuda: %s: %s out of bounds (%zu bytes at %p: in no live "
		        "device allocation)\n", fn, what, n, p);
	return ok ? 0 : -1;
}

/* A host range: not NULL, not overlapping device memory. */
int fakecuda_host_range(const char *fn, const char *what, const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p;
	int ok = p != NULL;

	if (!n)
		return 0;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nalloc && ok; i++)
		ok = allocs[i].host || a >= allocs[i].p + allocs[i].n || allocs[i].p >= a + n;
	pthread_mutex_unlock(&lock);
	if (!ok)
		fprintf(stderr, "fakecuda: %s: %s out of bounds (%zu bytes at %p: host memory "
		        "expected)\n", fn, what, n, p);
	return ok ? 0 : -1;
}

static cudaError_t add_alloc(void **p, size_t size, int host)
{
	size_t limit = mem_limit();
	cudaError_t e = cudaErrorMemoryAllocation;
	struct alloc *a;

	if (!p || no_device())
		return rt(p ? no_device() : E_INVALID);
	*p = NULL;
	if (!size)
		return cudaSuccess;
	pthread_mutex_lock(&lock);
	if (!host && (size > limit || live_bytes > limit - size))
		goto out;
	if (nalloc == cap_alloc) {
		if (!(a = realloc(allocs, (2 * cap_alloc + 64) * sizeof(*a))))
			goto out;
		allocs = a;
		cap_alloc = 2 * cap_alloc + 64;
	}
	if (!(*p = malloc(size)))
		goto out;
	memset(*p, 0xff, size);    /* like device memory, never zeros (and NaN as floats) */
	allocs[nalloc++] = (struct alloc){ (uintptr_t)*p, size, host };
	live_bytes += host ? 0 : size;
	e = cudaSuccess;
out:
	pthread_mutex_unlock(&lock);
	return rt(e);
}

static cudaError_t drop_alloc(const char *fn, void *p, int host)
{
	int found = 0;

	if (!p)
		return cudaSuccess;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nalloc && !found; i++)
		if (allocs[i].p == (uintptr_t)p && allocs[i].host == host) {
			live_bytes -= host ? 0 : allocs[i].n;
			allocs[i] = allocs[--nalloc];
			free(p);
			found = 1;
		}
	pthread_mutex_unlock(&lock);
	if (found)
		return cudaSuccess;
	fprintf(stderr, "fakecuda: %s: %p is not a live %s allocation\n", fn, p,
	        host ? "cudaHostAlloc" : "device");
	return rt(E_INVALID);
}

/* At exit or dlclose: the counters to $FAKECUDA_STATS; the device memory goes. */
__attribute__((destructor)) static void fini(void)
{
	const char *path = getenv("FAKECUDA_STATS");
	FILE *f;

	if (path && *path && (f = fopen(path, "a"))) {
		for (int i = 0; i < N_ENTRY; i++)
			if (atomic_load(&calls[i]))
				fprintf(f, "%s %lu\n", entry_names[i], atomic_load(&calls[i]));
		fclose(f);
	}
	for (size_t i = 0; i < nalloc; i++)
		free((void *)allocs[i].p);
	free(allocs);
	allocs = NULL;
	nalloc = cap_alloc = live_bytes = 0;
}

cudaError_t cudaGetDeviceCount(int *count)
{
	COUNT(cudaGetDeviceCount);
	if (put_int(count, fakecuda_devices() > 0 ? fakecuda_devices() : 0))
		return E_INVALID;
	return rt(no_device());
}

cudaError_t cudaSetDevice(int dev)
{
	COUNT(cudaSetDevice);
	return rt(bad_device(dev));
}

cudaError_t cudaDeviceGetAttribute(int *value, int attr, int dev)
{
	COUNT(cudaDeviceGetAttribute);
	if (bad_device(dev))
		return rt(bad_device(dev));
	switch (attr) {
	case cudaDevAttrMultiProcessorCount: return put_int(value, 132);
	case cudaDevAttrComputeCapabilityMajor: return put_int(value, 9);
	case cudaDevAttrComputeCapabilityMinor: return put_int(value, 0);
	default: return rt(E_INVALID);
	}
}

static cudaError_t props(void *prop, int dev)
{
	static const char name[] = "cull fake GPU (CPU stand-in)";

	if (bad_device(dev) || !prop)
		return rt(prop ? bad_device(dev) : E_INVALID);
	memcpy(prop, name, sizeof(name));    /* into the struct's char name[256] */
	return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(void *prop, int dev)
{
	COUNT(cudaGetDeviceProperties);
	return props(prop, dev);
}

cudaError_t cudaGetDeviceProperties_v2(void *prop, int dev)
{
	COUNT(cudaGetDeviceProperties_v2);
	return props(prop, dev);
}

const char *cudaGetErrorString(cudaError_t err)
{
	COUNT(cudaGetErrorString);
	switch (err) {
	case cudaSuccess: return "no error";
	case E_INVALID: return "invalid argument";
	case cudaErrorMemoryAllocation: return "out of memory";
	case E_DIRECTION: return "invalid copy direction for memcpy";
	case cudaErrorInsufficientDriver:
		return "CUDA driver version is insufficient for CUDA runtime version";
	case cudaErrorNoDevice: return "no CUDA-capable device is detected";
	case E_DEVICE: return "invalid device ordinal";
	case E_HANDLE: return "invalid resource handle";
	default: return "unknown error";
	}
}

cudaError_t cudaGetLastError(void)
{
	cudaError_t e = last_err;

	COUNT(cudaGetLastError);
	last_err = cudaSuccess;
	return e;
}

cudaError_t cudaRuntimeGetVersion(int *version)
{
	COUNT(cudaRuntimeGetVersion);
	return put_int(version, 13000);
}

cudaError_t cudaDriverGetVersion(int *version)
{
	COUNT(cudaDriverGetVersion);
	return put_int(version, fakecuda_devices() < 0 ? 11080 : 13000);
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total)
{
	COUNT(cudaMemGetInfo);
	if (no_device() || !free_bytes || !total)
		return rt(no_device() ? no_device() : E_INVALID);
	*total = mem_limit();
	pthread_mutex_lock(&lock);
	*free_bytes = *total > live_bytes ? *total - live_bytes : 0;
	pthread_mutex_unlock(&lock);
	return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t size)
{
	COUNT(cudaMalloc);
	return add_alloc(p, size, 0);
}

cudaError_t cudaFree(void *p)
{
	COUNT(cudaFree);
	return drop_alloc(__func__, p, 0);
}

cudaError_t cudaHostAlloc(void **p, size_t size, unsigned int flags)
{
	COUNT(cudaHostAlloc);
	(void)flags;    /* portable, mapped, write-combined: all plain host memory here */
	return add_alloc(p, size, 1);
}

cudaError_t cudaFreeHost(void *p)
{
	COUNT(cudaFreeHost);
	return drop_alloc(__func__, p, 1);
}

/* Each side of a copy lies, by kind, in one live device allocation or in host memory. */
static cudaError_t copy(const char *fn, void *dst, const void *src, size_t n, int kind)
{
	int dev_dst = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
	int dev_src = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;

	if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDeviceToDevice)
		return rt(E_DIRECTION);
	if ((dev_dst ? fakecuda_dev_range : fakecuda_host_range)(fn, "dst", dst, n) ||
	    (dev_src ? fakecuda_dev_range : fakecuda_host_range)(fn, "src", src, n))
		return rt(E_INVALID);
	if (n)
		memmove(dst, src, n);
	return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, int kind)
{
	COUNT(cudaMemcpy);
	return copy(__func__, dst, src, n, kind);
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, int kind, cudaStream_t s)
{
	COUNT(cudaMemcpyAsync);
	(void)s;    /* streams are dummies: the work is done in the call */
	return copy(__func__, dst, src, n, kind);
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t s)
{
	COUNT(cudaMemsetAsync);
	(void)s;
	if (fakecuda_dev_range(__func__, "p", p, n))
		return rt(E_INVALID);
	if (n)
		memset(p, value, n);
	return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *s)
{
	COUNT(cudaStreamCreate);
	if (no_device() || !s)
		return rt(s ? no_device() : E_INVALID);
	return (*s = malloc(sizeof(**s))) ? cudaSuccess : rt(cudaErrorMemoryAllocation);
}

cudaError_t cudaStreamDestroy(cudaStream_t s)
{
	COUNT(cudaStreamDestroy);
	free(s);
	return s ? cudaSuccess : rt(E_HANDLE);
}

cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
	COUNT(cudaStreamSynchronize);
	(void)s;
	return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *e)
{
	COUNT(cudaEventCreate);
	if (no_device() || !e)
		return rt(e ? no_device() : E_INVALID);
	return (*e = calloc(1, sizeof(**e))) ? cudaSuccess : rt(cudaErrorMemoryAllocation);
}

cudaError_t cudaEventDestroy(cudaEvent_t e)
{
	COUNT(cudaEventDestroy);
	free(e);
	return e ? cudaSuccess : rt(E_HANDLE);
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
	COUNT(cudaEventRecord);
	(void)s;
	if (!e)
		return rt(E_HANDLE);
	clock_gettime(CLOCK_MONOTONIC, &e->t);
	e->recorded = 1;
	return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e)
{
	COUNT(cudaEventSynchronize);
	return e ? cudaSuccess : rt(E_HANDLE);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
	COUNT(cudaEventElapsedTime);
	if (!ms)
		return rt(E_INVALID);
	if (!start || !end || !start->recorded || !end->recorded)
		return rt(E_HANDLE);
	*ms = (float)((double)(end->t.tv_sec - start->t.tv_sec) * 1e3 +
	              (double)(end->t.tv_nsec - start->t.tv_nsec) / 1e6);
	return cudaSuccess;
}

#elif FAKE_LIB == FAKE_CUBLAS
/* ---- libcublas: column-major GEMM ---- */
enum { B_NOT_INITIALIZED = 1, B_ALLOC_FAILED = 3, B_INVALID = 7, B_NOT_SUPPORTED = 15 };

struct cublasContext { cudaStream_t s; };

cublasStatus_t cublasCreate_v2(cublasHandle_t *h)
{
	COUNT(cublasCreate_v2);
	if (!h || fakecuda_devices() <= 0)
		return h ? B_NOT_INITIALIZED : B_INVALID;
	return (*h = calloc(1, sizeof(**h))) ? CUBLAS_STATUS_SUCCESS : B_ALLOC_FAILED;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t h)
{
	COUNT(cublasDestroy_v2);
	free(h);
	return h ? CUBLAS_STATUS_SUCCESS : B_NOT_INITIALIZED;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s)
{
	COUNT(cublasSetStream_v2);
	if (!h)
		return B_NOT_INITIALIZED;
	h->s = s;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetVersion_v2(cublasHandle_t h, int *version)
{
	COUNT(cublasGetVersion_v2);
	if (!h || !version)
		return h ? B_INVALID : B_NOT_INITIALIZED;
	*version = 130000;
	return CUBLAS_STATUS_SUCCESS;
}

/* Level 1, float: n elements inc apart in device memory. */
static int vec(const char *fn, const char *what, const float *p, int n, int inc)
{
	return n < 0 || inc <= 0 ||
	       (n > 0 && fakecuda_dev_range(fn, what, p, ((size_t)(n - 1) * inc + 1) * 4));
}

/* y += alpha x */
cublasStatus_t cublasSaxpy_v2(cublasHandle_t h, int n, const float *alpha, const float *x,
                              int incx, float *y, int incy)
{
	COUNT(cublasSaxpy_v2);
	if (!h)
		return B_NOT_INITIALIZED;
	if (!alpha || fakecuda_host_range(__func__, "alpha", alpha, 4) ||
	    vec(__func__, "x", x, n, incx) || vec(__func__, "y", y, n, incy))
		return B_INVALID;
	for (int i = 0; i < n; i++)
		y[(size_t)i * incy] += *alpha * x[(size_t)i * incx];
	return CUBLAS_STATUS_SUCCESS;
}

/* x *= alpha */
cublasStatus_t cublasSscal_v2(cublasHandle_t h, int n, const float *alpha, float *x, int incx)
{
	COUNT(cublasSscal_v2);
	if (!h)
		return B_NOT_INITIALIZED;
	if (!alpha || fakecuda_host_range(__func__, "alpha", alpha, 4) ||
	    vec(__func__, "x", x, n, incx))
		return B_INVALID;
	for (int i = 0; i < n; i++)
		x[(size_t)i * incx] *= *alpha;
	return CUBLAS_STATUS_SUCCESS;
}

/* y = x */
cublasStatus_t cublasScopy_v2(cublasHandle_t h, int n, const float *x, int incx, float *y,
                              int incy)
{
	COUNT(cublasScopy_v2);
	if (!h)
		return B_NOT_INITIALIZED;
	if (vec(__func__, "x", x, n, incx) || vec(__func__, "y", y, n, incy))
		return B_INVALID;
	for (int i = 0; i < n; i++)
		y[(size_t)i * incy] = x[(size_t)i * incx];
	return CUBLAS_STATUS_SUCCESS;
}

static int blas_type(cudaDataType t)
{
	return t == CUDA_R_32F ? T_F32 : t == CUDA_R_16BF ? T_BF16 : -1;
}

/* The device bytes of count rows x cols matrices (leading dimension ld), stride apart. */
static int batch_range(const char *fn, const char *what, const void *p, int rows, int cols,
                       int ld, long long stride, int count, int t)
{
	long long last = (long long)(count - 1) * stride, span = (long long)(cols - 1) * ld + rows;
	long long lo = last < 0 ? last : 0, hi = (last > 0 ? last : 0) + span;
	uintptr_t start = (uintptr_t)p + (uintptr_t)(lo * (long long)esize(t));

	return fakecuda_dev_range(fn, what, (const void *)start, (size_t)(hi - lo) * esize(t));
}

/* The index of element (r, c) of op(M) in column-major M with leading dimension ld */
static size_t op_index(cublasOperation_t op, int r, int c, int ld)
{
	return op == CUBLAS_OP_N ? (size_t)c * ld + r : (size_t)r * ld + c;
}

/* C[i] = alpha op(A[i]) op(B[i]) + beta C[i] for i < count; C is not read when beta is 0. */
static cublasStatus_t gemm(const char *fn, cublasHandle_t h, cublasOperation_t ta,
	cublasOperation_t tb, int m, int n, int k, const void *alpha, const void *A,
	cudaDataType at, int lda, long long sa, const void *B, cudaDataType bt, int ldb,
	long long sb, const void *beta, void *C, cudaDataType ct, int ldc, long long sc,
	int count, cublasComputeType_t ctype)
{
	int tA = blas_type(at), tB = blas_type(bt), tC = blas_type(ct);
	int ar = ta == CUBLAS_OP_N ? m : k, br = tb == CUBLAS_OP_N ? k : n;
	float al, be;

	if (!h)
		return B_NOT_INITIALIZED;
	if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T) ||
	    m < 0 || n < 0 || k < 0 || count < 0 || !alpha || !beta ||
	    lda < (ar > 1 ? ar : 1) || ldb < (br > 1 ? br : 1) || ldc < (m > 1 ? m : 1))
		return B_INVALID;
	/* COMPUTE_32F: A = B = C = 32F, or A = B = 16BF with C 16BF or 32F */
	if (ctype != CUBLAS_COMPUTE_32F || tA < 0 || tA != tB || tC < 0 ||
	    (tA == T_F32 && tC != T_F32))
		return B_NOT_SUPPORTED;
	if (!m || !n || !count)
		return CUBLAS_STATUS_SUCCESS;
	if (fakecuda_host_range(fn, "alpha", alpha, 4) ||
	    fakecuda_host_range(fn, "beta", beta, 4) ||
	    (k && batch_range(fn, "A", A, ar, ta == CUBLAS_OP_N ? k : m, lda, sa, count, tA)) ||
	    (k && batch_range(fn, "B", B, br, tb == CUBLAS_OP_N ? n : k, ldb, sb, count, tB)) ||
	    batch_range(fn, "C", C, m, n, ldc, sc, count, tC))
		return B_INVALID;
	memcpy(&al, alpha, sizeof(al));
	memcpy(&be, beta, sizeof(be));
	for (int i = 0; i < count; i++) {
		const char *Ai = (const char *)A + i * sa * (long long)esize(tA);
		const char *Bi = (const char *)B + i * sb * (long long)esize(tB);
		char *Ci = (char *)C + i * sc * (long long)esize(tC);

		for (int c = 0; c < n; c++)
			for (int r = 0; r < m; r++) {
				size_t ci = (size_t)c * ldc + r;
				double acc = 0;

				for (int l = 0; l < k; l++)
					acc += get(Ai, tA, op_index(ta, r, l, lda)) *
					       get(Bi, tB, op_index(tb, l, c, ldb));
				put(Ci, tC, ci, al * acc + (be != 0 ? be * get(Ci, tC, ci) : 0));
			}
	}
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
	int m, int n, int k, const void *alpha, const void *A, cudaDataType at, int lda,
	const void *B, cudaDataType bt, int ldb, const void *beta, void *C, cudaDataType ct,
	int ldc, cublasComputeType_t ctype, cublasGemmAlgo_t algo)
{
	COUNT(cublasGemmEx);
	(void)algo;    /* all give the same result here */
	return gemm(__func__, h, ta, tb, m, n, k, alpha, A, at, lda, 0, B, bt, ldb, 0, beta,
	            C, ct, ldc, 0, 1, ctype);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta,
	cublasOperation_t tb, int m, int n, int k, const void *alpha, const void *A,
	cudaDataType at, int lda, long long sa, const void *B, cudaDataType bt, int ldb,
	long long sb, const void *beta, void *C, cudaDataType ct, int ldc, long long sc,
	int count, cublasComputeType_t ctype, cublasGemmAlgo_t algo)
{
	COUNT(cublasGemmStridedBatchedEx);
	(void)algo;
	return gemm(__func__, h, ta, tb, m, n, k, alpha, A, at, lda, sa, B, bt, ldb, sb, beta,
	            C, ct, ldc, sc, count, ctype);
}

#elif FAKE_LIB == FAKE_CUDNN
/* ---- libcudnn: 4-d tensors; convolution, activation, bias, pooling ---- */
enum {
	D_NOT_INITIALIZED = 1001,
	D_BAD_PARAM = 2000,
	D_NOT_SUPPORTED = 3000,
	D_ALLOC_FAILED = 4003,    /* CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED */
	PRECOMP = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
};

/* A tensor n,c,h,w, or a filter k,c,r,s (NCHW: KCRS in memory, NHWC: KRSC). */
struct shape { int set, type, fmt, n, c, h, w; };
struct cudnnContext { cudaStream_t s; };
struct cudnnTensorStruct { struct shape s; };
struct cudnnFilterStruct { struct shape s; };
struct cudnnConvolutionStruct { int set, ph, pw, u, v, dh, dw, math; };
struct cudnnActivationStruct { int set, mode, nan; double coef; };
struct cudnnPoolingStruct { int set, mode, nan, wh, ww, ph, pw, sh, sw; };

#define SET(d) ((d) && (d)->s.set)

static size_t count_of(const struct shape *s)
{
	return (size_t)s->n * s->c * s->h * s->w;
}

static size_t index_of(const struct shape *s, int n, int c, int h, int w)
{
	if (s->fmt == CUDNN_TENSOR_NCHW)
		return (((size_t)n * s->c + c) * s->h + h) * s->w + w;
	return (((size_t)n * s->h + h) * s->w + w) * s->c + c;
}

static int same_dims(const struct shape *a, const struct shape *b)
{
	return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w;
}

/* The device tensor p of shape s lies in one allocation. */
static int in_bounds(const char *fn, const char *what, const struct shape *s, const void *p)
{
	return !fakecuda_dev_range(fn, what, p, count_of(s) * esize(s->type));
}

/* A tensor's elements as doubles in NCHW order (malloc'd; NULL when out of memory). */
static double *load(const struct shape *s, const void *p)
{
	double *v = malloc(count_of(s) * sizeof(double)), *o = v;

	for (int n = 0; v && n < s->n; n++)
		for (int c = 0; c < s->c; c++)
			for (int h = 0; h < s->h; h++)
				for (int w = 0; w < s->w; w++)
					*o++ = get(p, s->type, index_of(s, n, c, h, w));
	return v;
}

/* y = out + beta y (y is not read when beta is 0), out in NCHW order; frees out. */
static int finish(const struct shape *ys, void *y, double *out, double beta)
{
	double *old = beta != 0 && out ? load(ys, y) : NULL, *o = out;

	if (!out || (beta != 0 && !old)) {
		free(out);
		return D_ALLOC_FAILED;
	}
	for (int n = 0; n < ys->n; n++)
		for (int c = 0; c < ys->c; c++)
			for (int h = 0; h < ys->h; h++)
				for (int w = 0; w < ys->w; w++, o++)
					put(y, ys->type, index_of(ys, n, c, h, w),
					    *o + (beta != 0 ? beta * old[o - out] : 0));
	free(out);
	free(old);
	return CUDNN_STATUS_SUCCESS;
}

/* alpha and beta (floats in host memory), then x and y in device memory */
static int xy_args(const char *fn, const void *alpha, const void *beta, double *al, double *be,
                   const struct shape *xs, const void *x, const struct shape *ys, const void *y)
{
	float a, b;

	if (!alpha || !beta || fakecuda_host_range(fn, "alpha", alpha, 4) ||
	    fakecuda_host_range(fn, "beta", beta, 4) || !in_bounds(fn, "x", xs, x) ||
	    !in_bounds(fn, "y", ys, y))
		return D_BAD_PARAM;
	memcpy(&a, alpha, sizeof(a));
	memcpy(&b, beta, sizeof(b));
	*al = a;
	*be = b;
	return CUDNN_STATUS_SUCCESS;
}

static double relu(double v, int nan)
{
	return v > 0 || (isnan(v) && nan == CUDNN_PROPAGATE_NAN) ? v : 0;
}

/* Handles and descriptors are calloc'd; a descriptor is not set until its Set call. */
#define CREATE_DESTROY(create, destroy, type)                             \
	cudnnStatus_t create(type *d)                                     \
	{                                                                 \
		COUNT(create);                                            \
		if (!d)                                                   \
			return D_BAD_PARAM;                               \
		return (*d = calloc(1, sizeof(**d))) ? 0 : D_ALLOC_FAILED; \
	}                                                                 \
	cudnnStatus_t destroy(type d)                                     \
	{                                                                 \
		COUNT(destroy);                                           \
		free(d);                                                  \
		return CUDNN_STATUS_SUCCESS;                              \
	}
CREATE_DESTROY(cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor, cudnnTensorDescriptor_t)
CREATE_DESTROY(cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor, cudnnFilterDescriptor_t)
CREATE_DESTROY(cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor,
               cudnnConvolutionDescriptor_t)
CREATE_DESTROY(cudnnCreateActivationDescriptor, cudnnDestroyActivationDescriptor,
               cudnnActivationDescriptor_t)
CREATE_DESTROY(cudnnCreatePoolingDescriptor, cudnnDestroyPoolingDescriptor,
               cudnnPoolingDescriptor_t)

cudnnStatus_t cudnnCreate(cudnnHandle_t *h)
{
	COUNT(cudnnCreate);
	if (!h || fakecuda_devices() <= 0)
		return h ? D_NOT_INITIALIZED : D_BAD_PARAM;
	return (*h = calloc(1, sizeof(**h))) ? CUDNN_STATUS_SUCCESS : D_ALLOC_FAILED;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t h)
{
	COUNT(cudnnDestroy);
	free(h);
	return h ? CUDNN_STATUS_SUCCESS : D_BAD_PARAM;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s)
{
	COUNT(cudnnSetStream);
	if (!h)
		return D_BAD_PARAM;
	h->s = s;
	return CUDNN_STATUS_SUCCESS;
}

size_t cudnnGetVersion(void)
{
	const char *s = getenv("FAKECUDA_CUDNN_VERSION");

	COUNT(cudnnGetVersion);
	return s && *s ? strtoul(s, NULL, 10) : 91900;
}

const char *cudnnGetErrorString(cudnnStatus_t s)
{
	COUNT(cudnnGetErrorString);
	switch (s) {
	case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
	case D_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
	case D_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
	case D_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
	case D_ALLOC_FAILED: return "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED";
	default: return "unknown error";
	}
}

static int set_shape(struct shape *s, int fmt, int type, int n, int c, int h, int w)
{
	if (!s || (fmt != CUDNN_TENSOR_NCHW && fmt != CUDNN_TENSOR_NHWC) ||
	    (type != CUDNN_DATA_FLOAT && type != CUDNN_DATA_BFLOAT16) ||
	    n <= 0 || c <= 0 || h <= 0 || w <= 0)
		return D_BAD_PARAM;
	if ((double)n * c * h * w > 2147483647.0)    /* cuDNN's limit, 2 G elements */
		return D_NOT_SUPPORTED;
	*s = (struct shape){ 1, type == CUDNN_DATA_BFLOAT16 ? T_BF16 : T_F32, fmt, n, c, h, w };
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format,
	cudnnDataType_t type, int n, int c, int h, int w)
{
	COUNT(cudnnSetTensor4dDescriptor);
	return set_shape(d ? &d->s : NULL, format, type, n, c, h, w);
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type,
	cudnnTensorFormat_t format, int k, int c, int h, int w)
{
	COUNT(cudnnSetFilter4dDescriptor);
	return set_shape(d ? &d->s : NULL, format, type, k, c, h, w);
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h,
	int pad_w, int u, int v, int dil_h, int dil_w, cudnnConvolutionMode_t mode,
	cudnnDataType_t compute)
{
	COUNT(cudnnSetConvolution2dDescriptor);
	if (!d || pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dil_h <= 0 || dil_w <= 0 ||
	    mode != CUDNN_CROSS_CORRELATION || compute != CUDNN_DATA_FLOAT)
		return D_BAD_PARAM;
	*d = (struct cudnnConvolutionStruct){ 1, pad_h, pad_w, u, v, dil_h, dil_w, d->math };
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math)
{
	COUNT(cudnnSetConvolutionMathType);
	if (!d || math < CUDNN_DEFAULT_MATH || math > CUDNN_FMA_MATH)
		return D_BAD_PARAM;
	d->math = math;
	return CUDNN_STATUS_SUCCESS;
}

/* out = (in + 2 pad - dil (k - 1) - 1) / stride + 1; n is x's, c is K. */
cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t cd,
	const cudnnTensorDescriptor_t xd, const cudnnFilterDescriptor_t wd, int *n, int *c,
	int *h, int *w)
{
	long long oh, ow;

	COUNT(cudnnGetConvolution2dForwardOutputDim);
	if (!cd || !cd->set || !SET(xd) || !SET(wd) || !n || !c || !h || !w)
		return D_BAD_PARAM;
	oh = (long long)xd->s.h + 2LL * cd->ph - (long long)cd->dh * (wd->s.h - 1) - 1;
	ow = (long long)xd->s.w + 2LL * cd->pw - (long long)cd->dw * (wd->s.w - 1) - 1;
	if (wd->s.c != xd->s.c || oh < 0 || ow < 0)
		return D_BAD_PARAM;
	*n = xd->s.n;
	*c = wd->s.n;
	*h = (int)(oh / cd->u + 1);
	*w = (int)(ow / cd->v + 1);
	return CUDNN_STATUS_SUCCESS;
}

/* What every forward-convolution call checks of its descriptors. */
static int conv_check(cudnnHandle_t h, cudnnTensorDescriptor_t xd, cudnnFilterDescriptor_t wd,
                      cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t yd)
{
	int n, c, oh, ow;

	if (!h || cudnnGetConvolution2dForwardOutputDim(cd, xd, wd, &n, &c, &oh, &ow) ||
	    !SET(yd) || yd->s.n != n || yd->s.c != c || yd->s.h != oh || yd->s.w != ow ||
	    xd->s.type != wd->s.type || xd->s.type != yd->s.type)
		return D_BAD_PARAM;
	return CUDNN_STATUS_SUCCESS;
}

static size_t workspace_for(int algo)
{
	return algo == PRECOMP ? 4096 : 0;
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(cudnnHandle_t h,
	const cudnnTensorDescriptor_t xd, const cudnnFilterDescriptor_t wd,
	const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t yd, int requested,
	int *returned, cudnnConvolutionFwdAlgoPerf_t *perf)
{
	COUNT(cudnnFindConvolutionForwardAlgorithm);
	if (conv_check(h, xd, wd, cd, yd) || requested <= 0 || !returned || !perf)
		return D_BAD_PARAM;
	*returned = requested < 2 ? requested : 2;
	for (int i = 0; i < *returned; i++)    /* PRECOMP in 1 ms, then algo 0 in 2 ms */
		perf[i] = (cudnnConvolutionFwdAlgoPerf_t){ .algo = i ? 0 : PRECOMP,
			.time = i + 1.0f, .memory = workspace_for(i ? 0 : PRECOMP),
			.determinism = 1, .mathType = cd->math };
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t h,
	const cudnnTensorDescriptor_t xd, const cudnnFilterDescriptor_t wd,
	const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t yd,
	cudnnConvolutionFwdAlgo_t algo, size_t *bytes)
{
	COUNT(cudnnGetConvolutionForwardWorkspaceSize);
	if (conv_check(h, xd, wd, cd, yd) || algo < 0 ||
	    algo >= CUDNN_CONVOLUTION_FWD_ALGO_COUNT || !bytes)
		return D_BAD_PARAM;
	*bytes = workspace_for(algo);
	return CUDNN_STATUS_SUCCESS;
}

/* The algorithm and its workspace (which the call clobbers), and w in device memory. */
static int conv_args(const char *fn, int algo, void *ws, size_t ws_bytes,
                     cudnnFilterDescriptor_t wd, const void *w)
{
	if (algo < 0 || algo >= CUDNN_CONVOLUTION_FWD_ALGO_COUNT ||
	    ws_bytes < workspace_for(algo) || fakecuda_dev_range(fn, "workspace", ws, ws_bytes) ||
	    !in_bounds(fn, "w", &wd->s, w))
		return D_BAD_PARAM;
	if (ws_bytes)
		memset(ws, 0xff, ws_bytes);
	return CUDNN_STATUS_SUCCESS;
}

/* alpha conv(x, w) in NCHW order of y (malloc'd; NULL when out of memory) */
static double *convolve(double alpha, cudnnTensorDescriptor_t xd, const void *x,
                        cudnnFilterDescriptor_t wd, const void *w,
                        cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t yd)
{
	const struct shape *xs = &xd->s, *fs = &wd->s, *ys = &yd->s;
	double *xv = load(xs, x), *wv = load(fs, w), *out = malloc(count_of(ys) * sizeof(double));
	double *o = out;

	for (int n = 0; xv && wv && out && n < ys->n; n++)
	for (int k = 0; k < ys->c; k++)
	for (int oh = 0; oh < ys->h; oh++)
	for (int ow = 0; ow < ys->w; ow++) {
		double acc = 0;

		for (int c = 0; c < xs->c; c++)
			for (int r = 0; r < fs->h; r++) {
				int ih = oh * cd->u - cd->ph + r * cd->dh;
				const double *xr, *wr;

				if (ih < 0 || ih >= xs->h)
					continue;
				xr = xv + (((size_t)n * xs->c + c) * xs->h + ih) * xs->w;
				wr = wv + (((size_t)k * fs->c + c) * fs->h + r) * fs->w;
				for (int s = 0; s < fs->w; s++) {
					int iw = ow * cd->v - cd->pw + s * cd->dw;

					if (iw >= 0 && iw < xs->w)
						acc += xr[iw] * wr[s];
				}
			}
		*o++ = alpha * acc;
	}
	if (!xv || !wv) {
		free(out);
		out = NULL;
	}
	free(xv);
	free(wv);
	return out;
}

/* y = alpha conv(x, w) + beta y */
cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha,
	const cudnnTensorDescriptor_t xd, const void *x, const cudnnFilterDescriptor_t wd,
	const void *w, const cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo,
	void *ws, size_t ws_bytes, const void *beta, const cudnnTensorDescriptor_t yd, void *y)
{
	double al, be;

	COUNT(cudnnConvolutionForward);
	if (conv_check(h, xd, wd, cd, yd) ||
	    xy_args(__func__, alpha, beta, &al, &be, &xd->s, x, &yd->s, y) ||
	    conv_args(__func__, algo, ws, ws_bytes, wd, w))
		return D_BAD_PARAM;
	return finish(&yd->s, y, convolve(al, xd, x, wd, w, cd, yd), be);
}

/* y = act(alpha1 conv(x, w) + alpha2 z + bias); z (y's shape, maybe y itself) is not read
 * when alpha2 is 0; bias [1,K,1,1] float or y's type; act RELU, or IDENTITY with PRECOMP. */
cudnnStatus_t cudnnConvolutionBiasActivationForward(cudnnHandle_t h, const void *alpha1,
	const cudnnTensorDescriptor_t xd, const void *x, const cudnnFilterDescriptor_t wd,
	const void *w, const cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo,
	void *ws, size_t ws_bytes, const void *alpha2, const cudnnTensorDescriptor_t zd,
	const void *z, const cudnnTensorDescriptor_t bd, const void *bias,
	const cudnnActivationDescriptor_t ad, const cudnnTensorDescriptor_t yd, void *y)
{
	const char *no_fused = getenv("FAKECUDA_NO_FUSED");
	double a1, a2, *out, *zv = NULL, *bv;
	size_t i = 0;

	COUNT(cudnnConvolutionBiasActivationForward);
	if (no_fused && !strcmp(no_fused, "1"))
		return D_NOT_SUPPORTED;
	if (conv_check(h, xd, wd, cd, yd) || !SET(zd) || !same_dims(&zd->s, &yd->s) ||
	    zd->s.type != yd->s.type || !SET(bd) || bd->s.n != 1 || bd->s.c != yd->s.c ||
	    bd->s.h != 1 || bd->s.w != 1 || (bd->s.type != T_F32 && bd->s.type != yd->s.type) ||
	    !ad || !ad->set)
		return D_BAD_PARAM;
	if (ad->mode != CUDNN_ACTIVATION_RELU &&
	    (ad->mode != CUDNN_ACTIVATION_IDENTITY || algo != PRECOMP))
		return D_NOT_SUPPORTED;
	if (xy_args(__func__, alpha1, alpha2, &a1, &a2, &xd->s, x, &yd->s, y) ||
	    conv_args(__func__, algo, ws, ws_bytes, wd, w) ||
	    !in_bounds(__func__, "bias", &bd->s, bias) ||
	    (a2 != 0 && !in_bounds(__func__, "z", &zd->s, z)))
		return D_BAD_PARAM;
	out = convolve(a1, xd, x, wd, w, cd, yd);
	bv = load(&bd->s, bias);
	if (out && bv && (a2 == 0 || (zv = load(&zd->s, z)))) {
		for (int n = 0; n < yd->s.n; n++)
			for (int c = 0; c < yd->s.c; c++)
				for (int hw = 0; hw < yd->s.h * yd->s.w; hw++, i++) {
					double v = out[i] + (a2 != 0 ? a2 * zv[i] : 0) + bv[c];
					int act = ad->mode == CUDNN_ACTIVATION_RELU;

					out[i] = act ? relu(v, ad->nan) : v;
				}
	} else {
		free(out);
		out = NULL;
	}
	free(bv);
	free(zv);
	return finish(&yd->s, y, out, 0);
}

cudnnStatus_t cudnnSetActivationDescriptor(cudnnActivationDescriptor_t d,
	cudnnActivationMode_t mode, cudnnNanPropagation_t nan, double coef)
{
	COUNT(cudnnSetActivationDescriptor);
	if (!d || mode < 0 || mode > 6 || (nan != CUDNN_NOT_PROPAGATE_NAN &&
	    nan != CUDNN_PROPAGATE_NAN))
		return D_BAD_PARAM;
	*d = (struct cudnnActivationStruct){ 1, mode, nan, coef };
	return CUDNN_STATUS_SUCCESS;
}

/* y = alpha relu(x) + beta y (x may be y). IDENTITY "does not work with
 * cudnnActivationForward()", as NVIDIA documents: it is for the fused call only. */
cudnnStatus_t cudnnActivationForward(cudnnHandle_t h, cudnnActivationDescriptor_t ad,
	const void *alpha, const cudnnTensorDescriptor_t xd, const void *x, const void *beta,
	const cudnnTensorDescriptor_t yd, void *y)
{
	double al, be, *v;

	COUNT(cudnnActivationForward);
	if (!h || !ad || !ad->set || ad->mode == CUDNN_ACTIVATION_IDENTITY || !SET(xd) ||
	    !SET(yd) || !same_dims(&xd->s, &yd->s) || xd->s.type != yd->s.type)
		return D_BAD_PARAM;
	if (ad->mode != CUDNN_ACTIVATION_RELU)
		return D_NOT_SUPPORTED;
	if (xy_args(__func__, alpha, beta, &al, &be, &xd->s, x, &yd->s, y))
		return D_BAD_PARAM;
	v = load(&xd->s, x);
	for (size_t i = 0; v && i < count_of(&xd->s); i++)
		v[i] = al * relu(v[i], ad->nan);
	return finish(&yd->s, y, v, be);
}

/* C = alpha A + beta C; each dim of A is C's or 1 (broadcast); the same data type. */
cudnnStatus_t cudnnAddTensor(cudnnHandle_t h, const void *alpha,
	const cudnnTensorDescriptor_t ad, const void *A, const void *beta,
	const cudnnTensorDescriptor_t cd, void *C)
{
	const struct shape *as = SET(ad) ? &ad->s : NULL, *cs = SET(cd) ? &cd->s : NULL;
	double al, be, *av, *out, *o;

	COUNT(cudnnAddTensor);
	if (!h || !as || !cs || (as->n != cs->n && as->n != 1) || (as->c != cs->c && as->c != 1) ||
	    (as->h != cs->h && as->h != 1) || (as->w != cs->w && as->w != 1) ||
	    as->type != cs->type || xy_args(__func__, alpha, beta, &al, &be, as, A, cs, C))
		return D_BAD_PARAM;
	av = load(as, A);
	o = out = av ? malloc(count_of(cs) * sizeof(double)) : NULL;
	for (int n = 0; out && n < cs->n; n++)
	for (int c = 0; c < cs->c; c++)
	for (int y = 0; y < cs->h; y++)
	for (int x = 0; x < cs->w; x++) {
		size_t a = (((size_t)(as->n > 1 ? n : 0) * as->c + (as->c > 1 ? c : 0)) * as->h +
		            (as->h > 1 ? y : 0)) * as->w + (as->w > 1 ? x : 0);

		*o++ = al * av[a];
	}
	free(av);
	return finish(cs, C, out, be);
}

cudnnStatus_t cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor_t d, cudnnPoolingMode_t mode,
	cudnnNanPropagation_t nan, int wh, int ww, int ph, int pw, int sh, int sw)
{
	COUNT(cudnnSetPooling2dDescriptor);
	if (!d || mode < 0 || mode > 3 || wh <= 0 || ww <= 0 || ph < 0 || pw < 0 || sh <= 0 ||
	    sw <= 0 || (nan != CUDNN_NOT_PROPAGATE_NAN && nan != CUDNN_PROPAGATE_NAN))
		return D_BAD_PARAM;
	*d = (struct cudnnPoolingStruct){ 1, mode, nan, wh, ww, ph, pw, sh, sw };
	return CUDNN_STATUS_SUCCESS;
}

/* y = alpha pool(x) + beta y: MAX over the window's elements inside x (padding never wins),
 * or AVERAGE_COUNT_INCLUDE_PADDING (their sum over the window's size). */
cudnnStatus_t cudnnPoolingForward(cudnnHandle_t h, const cudnnPoolingDescriptor_t pd,
	const void *alpha, const cudnnTensorDescriptor_t xd, const void *x, const void *beta,
	const cudnnTensorDescriptor_t yd, void *y)
{
	const struct shape *xs = SET(xd) ? &xd->s : NULL, *ys = SET(yd) ? &yd->s : NULL;
	double al, be, *xv, *out, *o;

	COUNT(cudnnPoolingForward);
	if (!h || !pd || !pd->set || !xs || !ys)
		return D_BAD_PARAM;
	if (pd->mode != CUDNN_POOLING_MAX &&
	    pd->mode != CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING)
		return D_NOT_SUPPORTED;
	if (ys->n != xs->n || ys->c != xs->c || ys->type != xs->type ||
	    xs->h + 2 * pd->ph < pd->wh || xs->w + 2 * pd->pw < pd->ww ||
	    ys->h != (xs->h + 2 * pd->ph - pd->wh) / pd->sh + 1 ||
	    ys->w != (xs->w + 2 * pd->pw - pd->ww) / pd->sw + 1 ||
	    xy_args(__func__, alpha, beta, &al, &be, xs, x, ys, y))
		return D_BAD_PARAM;
	xv = load(xs, x);
	o = out = xv ? malloc(count_of(ys) * sizeof(double)) : NULL;
	for (int n = 0; out && n < ys->n; n++)
	for (int c = 0; c < ys->c; c++)
	for (int oh = 0; oh < ys->h; oh++)
	for (int ow = 0; ow < ys->w; ow++) {
		const double *xc = xv + ((size_t)n * xs->c + c) * xs->h * xs->w;
		int h0 = oh * pd->sh - pd->ph, w0 = ow * pd->sw - pd->pw;
		double sum = 0, max = -INFINITY;

		for (int ih = h0 > 0 ? h0 : 0; ih < h0 + pd->wh && ih < xs->h; ih++)
			for (int iw = w0 > 0 ? w0 : 0; iw < w0 + pd->ww && iw < xs->w; iw++) {
				double v = xc[(size_t)ih * xs->w + iw];

				sum += v;
				if (!isnan(max) && (v > max || (isnan(v) && pd->nan)))
					max = v;
			}
		*o++ = al * (pd->mode == CUDNN_POOLING_MAX ? max : sum / (pd->wh * pd->ww));
	}
	free(xv);
	return finish(ys, y, out, be);
}

#include "fakecudnn_train.c"

#else
#error "build with -DFAKE_LIB=FAKE_CUDART, FAKE_CUBLAS or FAKE_CUDNN"
#endif
