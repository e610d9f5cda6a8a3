/* Internal to nn/: the CUDA entry points loaded by nn/cudalib.c, the device, and the checks
 * that turn a failed call into a cull_err. */
#ifndef CULL_CUDALIB_H
#define CULL_CUDALIB_H

#include "cuda.h"
#include "gpu.h"

#define X(name, ret, args) ret (*name) args;
typedef struct {
	int loaded;
	void *rt, *blas, *dnn;
	CUDART_FUNCS(X)
	CUBLAS_FUNCS(X)
	CUDNN_FUNCS(X)
	CUDNN_TRAIN_FUNCS(X)
	cudaError_t (*getprop)(void *prop, int dev);
	char rt_name[64], blas_name[64], dnn_name[64];
} cuda_api;
#undef X
/* Filled by gpu_open (or gpu_probe); valid once either succeeded. */
extern cuda_api cu;

struct gpu_device {
	int index;
	cudaStream_t stream;
	cudnnHandle_t dnn;
	cublasHandle_t blas;
	char desc[512];
};

/* A failed runtime or cuDNN call as a cull_err: EXIT_NOMEM for out of device memory, else
 * EXIT_DEVICE, naming the call. Return -1. */
int rt_fail(cull_err *e, cudaError_t r, const char *what);
int dnn_fail(cull_err *e, cudnnStatus_t s, const char *what);
int blas_fail(cull_err *e, cublasStatus_t s, const char *what);

/* The checks: each sets e and returns -1 from the calling function. */
#define RT(call) do { cudaError_t r_ = (call); \
	if (r_ != cudaSuccess) return rt_fail(e, r_, #call); } while (0)
#define DNN(call) do { cudnnStatus_t s_ = (call); \
	if (s_ != CUDNN_STATUS_SUCCESS) return dnn_fail(e, s_, #call); } while (0)
#define BLAS(call) do { cublasStatus_t b_ = (call); \
	if (b_ != CUBLAS_STATUS_SUCCESS) \
		return blas_fail(e, b_, #call); } while (0)

#endif
