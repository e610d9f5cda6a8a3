/* The few declarations of NVIDIA's CUDA runtime, cuBLAS and cuDNN (9.x) that nn/gpu.c
 * uses, for loading them at run time with dlopen (as Blender's cuew does): the build
 * needs no CUDA toolkit. Values and signatures are those of the vendor headers
 * (cuda_runtime_api.h, driver_types.h, library_types.h, cublas_api.h, cudnn_ops.h,
 * cudnn_cnn.h, cudnn_graph.h); bench/gpu/check_header.c compares every constant here with
 * the real headers on a machine that has them. Only what cull calls is here. */
#ifndef CULL_CUDA_H
#define CULL_CUDA_H

#include <stddef.h>

/* ---- CUDA runtime (libcudart) ---- */
typedef int cudaError_t;
enum {
	cudaSuccess = 0,
	cudaErrorMemoryAllocation = 2,
	cudaErrorInsufficientDriver = 35,
	cudaErrorNoDevice = 100,
};
typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;
enum {   /* cudaMemcpyKind */
	cudaMemcpyHostToHost = 0,
	cudaMemcpyHostToDevice = 1,
	cudaMemcpyDeviceToHost = 2,
	cudaMemcpyDeviceToDevice = 3,
};
enum {   /* cudaDeviceAttr */
	cudaDevAttrMultiProcessorCount = 16,
	cudaDevAttrComputeCapabilityMajor = 75,
	cudaDevAttrComputeCapabilityMinor = 76,
};
/* cudaGetDeviceProperties(_v2) fills a struct whose first member is char name[256]; the
 * rest changes between CUDA versions, so cull passes a large buffer and reads the name. */
enum { CUDA_DEVICE_PROP_BYTES = 16384 };

/* ---- library_types.h ---- */
typedef int cudaDataType;
enum { CUDA_R_32F = 0, CUDA_R_16BF = 14 };

/* ---- cuBLAS (libcublas, the _v2 API) ---- */
typedef int cublasStatus_t;
enum { CUBLAS_STATUS_SUCCESS = 0 };
typedef struct cublasContext *cublasHandle_t;
typedef int cublasOperation_t;
enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
typedef int cublasComputeType_t;
enum { CUBLAS_COMPUTE_32F = 68 };
typedef int cublasGemmAlgo_t;
enum { CUBLAS_GEMM_DEFAULT = -1 };

/* ---- cuDNN (libcudnn, the legacy API through the libcudnn.so.9 shim) ---- */
typedef int cudnnStatus_t;
enum { CUDNN_STATUS_SUCCESS = 0 };
typedef struct cudnnContext *cudnnHandle_t;
typedef struct cudnnTensorStruct *cudnnTensorDescriptor_t;
typedef struct cudnnFilterStruct *cudnnFilterDescriptor_t;
typedef struct cudnnConvolutionStruct *cudnnConvolutionDescriptor_t;
typedef struct cudnnActivationStruct *cudnnActivationDescriptor_t;
typedef struct cudnnPoolingStruct *cudnnPoolingDescriptor_t;
typedef int cudnnDataType_t;
enum { CUDNN_DATA_FLOAT = 0, CUDNN_DATA_BFLOAT16 = 9 };
typedef int cudnnTensorFormat_t;
enum { CUDNN_TENSOR_NCHW = 0, CUDNN_TENSOR_NHWC = 1 };
typedef int cudnnConvolutionMode_t;
enum { CUDNN_CROSS_CORRELATION = 1 };
typedef int cudnnMathType_t;
enum { CUDNN_DEFAULT_MATH = 0, CUDNN_TENSOR_OP_MATH = 1, CUDNN_FMA_MATH = 3 };
typedef int cudnnConvolutionFwdAlgo_t;
enum { CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM = 1,
       CUDNN_CONVOLUTION_FWD_ALGO_COUNT = 8 };
typedef int cudnnActivationMode_t;
enum { CUDNN_ACTIVATION_RELU = 1, CUDNN_ACTIVATION_IDENTITY = 5 };
typedef int cudnnNanPropagation_t;
enum { CUDNN_NOT_PROPAGATE_NAN = 0, CUDNN_PROPAGATE_NAN = 1 };
typedef int cudnnPoolingMode_t;
enum { CUDNN_POOLING_MAX = 0, CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING = 1 };
typedef int cudnnDeterminism_t;
typedef int cudnnBatchNormMode_t;
enum { CUDNN_BATCHNORM_SPATIAL = 1 };
typedef int cudnnConvolutionBwdDataAlgo_t;
enum { CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 = 1 };
typedef int cudnnConvolutionBwdFilterAlgo_t;
enum { CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 = 1 };
typedef struct {
	cudnnConvolutionFwdAlgo_t algo;
	cudnnStatus_t status;
	float time;
	size_t memory;
	cudnnDeterminism_t determinism;
	cudnnMathType_t mathType;
	int reserved[3];
} cudnnConvolutionFwdAlgoPerf_t;

/* The entry points, as one X-macro list: name, return type, parameters. nn/gpu.c makes a
 * table of pointers from it; tests/fake/fakecuda.c implements the same list on the CPU. */
#define CUDART_FUNCS(X) \
	X(cudaGetDeviceCount, cudaError_t, (int *count)) \
	X(cudaSetDevice, cudaError_t, (int dev)) \
	X(cudaDeviceGetAttribute, cudaError_t, (int *value, int attr, int dev)) \
	X(cudaGetErrorString, const char *, (cudaError_t err)) \
	X(cudaGetLastError, cudaError_t, (void)) \
	X(cudaRuntimeGetVersion, cudaError_t, (int *version)) \
	X(cudaDriverGetVersion, cudaError_t, (int *version)) \
	X(cudaMemGetInfo, cudaError_t, (size_t *free, size_t *total)) \
	X(cudaMalloc, cudaError_t, (void **p, size_t size)) \
	X(cudaFree, cudaError_t, (void *p)) \
	X(cudaHostAlloc, cudaError_t, (void **p, size_t size, unsigned int flags)) \
	X(cudaFreeHost, cudaError_t, (void *p)) \
	X(cudaMemcpy, cudaError_t, (void *dst, const void *src, size_t n, int kind)) \
	X(cudaMemcpyAsync, cudaError_t, (void *dst, const void *src, size_t n, int kind, \
	                                 cudaStream_t s)) \
	X(cudaMemsetAsync, cudaError_t, (void *p, int value, size_t n, cudaStream_t s)) \
	X(cudaStreamCreate, cudaError_t, (cudaStream_t *s)) \
	X(cudaStreamDestroy, cudaError_t, (cudaStream_t s)) \
	X(cudaStreamSynchronize, cudaError_t, (cudaStream_t s)) \
	X(cudaEventCreate, cudaError_t, (cudaEvent_t *e)) \
	X(cudaEventDestroy, cudaError_t, (cudaEvent_t e)) \
	X(cudaEventRecord, cudaError_t, (cudaEvent_t e, cudaStream_t s)) \
	X(cudaEventSynchronize, cudaError_t, (cudaEvent_t e)) \
	X(cudaEventElapsedTime, cudaError_t, (float *ms, cudaEvent_t start, cudaEvent_t end))

#define CUBLAS_FUNCS(X) \
	X(cublasCreate_v2, cublasStatus_t, (cublasHandle_t *h)) \
	X(cublasDestroy_v2, cublasStatus_t, (cublasHandle_t h)) \
	X(cublasSetStream_v2, cublasStatus_t, (cublasHandle_t h, cudaStream_t s)) \
	X(cublasGetVersion_v2, cublasStatus_t, (cublasHandle_t h, int *version)) \
	X(cublasGemmEx, cublasStatus_t, (cublasHandle_t h, cublasOperation_t ta, \
		cublasOperation_t tb, int m, int n, int k, const void *alpha, const void *A, \
		cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb, \
		const void *beta, void *C, cudaDataType ct, int ldc, cublasComputeType_t ctype, \
		cublasGemmAlgo_t algo)) \
	X(cublasGemmStridedBatchedEx, cublasStatus_t, (cublasHandle_t h, cublasOperation_t ta, \
		cublasOperation_t tb, int m, int n, int k, const void *alpha, const void *A, \
		cudaDataType at, int lda, long long sa, const void *B, cudaDataType bt, int ldb, \
		long long sb, const void *beta, void *C, cudaDataType ct, int ldc, long long sc, \
		int count, cublasComputeType_t ctype, cublasGemmAlgo_t algo)) \
	X(cublasSaxpy_v2, cublasStatus_t, (cublasHandle_t h, int n, const float *alpha, \
		const float *x, int incx, float *y, int incy)) \
	X(cublasSscal_v2, cublasStatus_t, (cublasHandle_t h, int n, const float *alpha, float *x, \
		int incx)) \
	X(cublasScopy_v2, cublasStatus_t, (cublasHandle_t h, int n, const float *x, int incx, \
		float *y, int incy))

#define CUDNN_FUNCS(X) \
	X(cudnnGetVersion, size_t, (void)) \
	X(cudnnGetErrorString, const char *, (cudnnStatus_t s)) \
	X(cudnnCreate, cudnnStatus_t, (cudnnHandle_t *h)) \
	X(cudnnDestroy, cudnnStatus_t, (cudnnHandle_t h)) \
	X(cudnnSetStream, cudnnStatus_t, (cudnnHandle_t h, cudaStream_t s)) \
	X(cudnnCreateTensorDescriptor, cudnnStatus_t, (cudnnTensorDescriptor_t *d)) \
	X(cudnnSetTensor4dDescriptor, cudnnStatus_t, (cudnnTensorDescriptor_t d, \
		cudnnTensorFormat_t format, cudnnDataType_t type, int n, int c, int h, int w)) \
	X(cudnnDestroyTensorDescriptor, cudnnStatus_t, (cudnnTensorDescriptor_t d)) \
	X(cudnnCreateFilterDescriptor, cudnnStatus_t, (cudnnFilterDescriptor_t *d)) \
	X(cudnnSetFilter4dDescriptor, cudnnStatus_t, (cudnnFilterDescriptor_t d, \
		cudnnDataType_t type, cudnnTensorFormat_t format, int k, int c, int h, int w)) \
	X(cudnnDestroyFilterDescriptor, cudnnStatus_t, (cudnnFilterDescriptor_t d)) \
	X(cudnnCreateConvolutionDescriptor, cudnnStatus_t, (cudnnConvolutionDescriptor_t *d)) \
	X(cudnnSetConvolution2dDescriptor, cudnnStatus_t, (cudnnConvolutionDescriptor_t d, \
		int pad_h, int pad_w, int u, int v, int dil_h, int dil_w, \
		cudnnConvolutionMode_t mode, cudnnDataType_t compute)) \
	X(cudnnSetConvolutionMathType, cudnnStatus_t, (cudnnConvolutionDescriptor_t d, \
		cudnnMathType_t math)) \
	X(cudnnDestroyConvolutionDescriptor, cudnnStatus_t, (cudnnConvolutionDescriptor_t d)) \
	X(cudnnGetConvolution2dForwardOutputDim, cudnnStatus_t, \
		(const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t xd, \
		 const cudnnFilterDescriptor_t wd, int *n, int *c, int *h, int *w)) \
	X(cudnnFindConvolutionForwardAlgorithm, cudnnStatus_t, (cudnnHandle_t h, \
		const cudnnTensorDescriptor_t xd, const cudnnFilterDescriptor_t wd, \
		const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t yd, \
		int requested, int *returned, cudnnConvolutionFwdAlgoPerf_t *perf)) \
	X(cudnnGetConvolutionForwardWorkspaceSize, cudnnStatus_t, (cudnnHandle_t h, \
		const cudnnTensorDescriptor_t xd, const cudnnFilterDescriptor_t wd, \
		const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t yd, \
		cudnnConvolutionFwdAlgo_t algo, size_t *bytes)) \
	X(cudnnConvolutionForward, cudnnStatus_t, (cudnnHandle_t h, const void *alpha, \
		const cudnnTensorDescriptor_t xd, const void *x, const cudnnFilterDescriptor_t wd, \
		const void *w, const cudnnConvolutionDescriptor_t cd, \
		cudnnConvolutionFwdAlgo_t algo, void *ws, size_t ws_bytes, const void *beta, \
		const cudnnTensorDescriptor_t yd, void *y)) \
	X(cudnnConvolutionBiasActivationForward, cudnnStatus_t, (cudnnHandle_t h, \
		const void *alpha1, const cudnnTensorDescriptor_t xd, const void *x, \
		const cudnnFilterDescriptor_t wd, const void *w, \
		const cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo, void *ws, \
		size_t ws_bytes, const void *alpha2, const cudnnTensorDescriptor_t zd, \
		const void *z, const cudnnTensorDescriptor_t bd, const void *bias, \
		const cudnnActivationDescriptor_t ad, const cudnnTensorDescriptor_t yd, void *y)) \
	X(cudnnCreateActivationDescriptor, cudnnStatus_t, (cudnnActivationDescriptor_t *d)) \
	X(cudnnSetActivationDescriptor, cudnnStatus_t, (cudnnActivationDescriptor_t d, \
		cudnnActivationMode_t mode, cudnnNanPropagation_t nan, double coef)) \
	X(cudnnDestroyActivationDescriptor, cudnnStatus_t, (cudnnActivationDescriptor_t d)) \
	X(cudnnActivationForward, cudnnStatus_t, (cudnnHandle_t h, \
		cudnnActivationDescriptor_t ad, const void *alpha, \
		const cudnnTensorDescriptor_t xd, const void *x, const void *beta, \
		const cudnnTensorDescriptor_t yd, void *y)) \
	X(cudnnAddTensor, cudnnStatus_t, (cudnnHandle_t h, const void *alpha, \
		const cudnnTensorDescriptor_t ad, const void *A, const void *beta, \
		const cudnnTensorDescriptor_t cd, void *C)) \
	X(cudnnCreatePoolingDescriptor, cudnnStatus_t, (cudnnPoolingDescriptor_t *d)) \
	X(cudnnSetPooling2dDescriptor, cudnnStatus_t, (cudnnPoolingDescriptor_t d, \
		cudnnPoolingMode_t mode, cudnnNanPropagation_t nan, int wh, int ww, int ph, \
		int pw, int sh, int sw)) \
	X(cudnnDestroyPoolingDescriptor, cudnnStatus_t, (cudnnPoolingDescriptor_t d)) \
	X(cudnnPoolingForward, cudnnStatus_t, (cudnnHandle_t h, \
		const cudnnPoolingDescriptor_t pd, const void *alpha, \
		const cudnnTensorDescriptor_t xd, const void *x, const void *beta, \
		const cudnnTensorDescriptor_t yd, void *y))

/* What training adds: batch norm with batch statistics, the backward passes. */
#define CUDNN_TRAIN_FUNCS(X) \
	X(cudnnDeriveBNTensorDescriptor, cudnnStatus_t, (cudnnTensorDescriptor_t bnd, \
		const cudnnTensorDescriptor_t xd, cudnnBatchNormMode_t mode)) \
	X(cudnnBatchNormalizationForwardTraining, cudnnStatus_t, (cudnnHandle_t h, \
		cudnnBatchNormMode_t mode, const void *alpha, const void *beta, \
		const cudnnTensorDescriptor_t xd, const void *x, const cudnnTensorDescriptor_t yd, \
		void *y, const cudnnTensorDescriptor_t bnd, const void *scale, const void *bias, \
		double factor, void *run_mean, void *run_var, double eps, void *save_mean, \
		void *save_invvar)) \
	X(cudnnBatchNormalizationBackward, cudnnStatus_t, (cudnnHandle_t h, \
		cudnnBatchNormMode_t mode, const void *alpha_d, const void *beta_d, \
		const void *alpha_p, const void *beta_p, const cudnnTensorDescriptor_t xd, \
		const void *x, const cudnnTensorDescriptor_t dyd, const void *dy, \
		const cudnnTensorDescriptor_t dxd, void *dx, const cudnnTensorDescriptor_t bnd, \
		const void *scale, void *dscale, void *dbias, double eps, const void *save_mean, \
		const void *save_invvar)) \
	X(cudnnGetConvolutionBackwardDataWorkspaceSize, cudnnStatus_t, (cudnnHandle_t h, \
		const cudnnFilterDescriptor_t wd, const cudnnTensorDescriptor_t dyd, \
		const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t dxd, \
		cudnnConvolutionBwdDataAlgo_t algo, size_t *bytes)) \
	X(cudnnConvolutionBackwardData, cudnnStatus_t, (cudnnHandle_t h, const void *alpha, \
		const cudnnFilterDescriptor_t wd, const void *w, const cudnnTensorDescriptor_t dyd, \
		const void *dy, const cudnnConvolutionDescriptor_t cd, \
		cudnnConvolutionBwdDataAlgo_t algo, void *ws, size_t ws_bytes, const void *beta, \
		const cudnnTensorDescriptor_t dxd, void *dx)) \
	X(cudnnGetConvolutionBackwardFilterWorkspaceSize, cudnnStatus_t, (cudnnHandle_t h, \
		const cudnnTensorDescriptor_t xd, const cudnnTensorDescriptor_t dyd, \
		const cudnnConvolutionDescriptor_t cd, const cudnnFilterDescriptor_t dwd, \
		cudnnConvolutionBwdFilterAlgo_t algo, size_t *bytes)) \
	X(cudnnConvolutionBackwardFilter, cudnnStatus_t, (cudnnHandle_t h, const void *alpha, \
		const cudnnTensorDescriptor_t xd, const void *x, const cudnnTensorDescriptor_t dyd, \
		const void *dy, const cudnnConvolutionDescriptor_t cd, \
		cudnnConvolutionBwdFilterAlgo_t algo, void *ws, size_t ws_bytes, const void *beta, \
		const cudnnFilterDescriptor_t dwd, void *dw)) \
	X(cudnnActivationBackward, cudnnStatus_t, (cudnnHandle_t h, \
		cudnnActivationDescriptor_t ad, const void *alpha, const cudnnTensorDescriptor_t yd, \
		const void *y, const cudnnTensorDescriptor_t dyd, const void *dy, \
		const cudnnTensorDescriptor_t xd, const void *x, const void *beta, \
		const cudnnTensorDescriptor_t dxd, void *dx)) \
	X(cudnnPoolingBackward, cudnnStatus_t, (cudnnHandle_t h, \
		const cudnnPoolingDescriptor_t pd, const void *alpha, \
		const cudnnTensorDescriptor_t yd, const void *y, const cudnnTensorDescriptor_t dyd, \
		const void *dy, const cudnnTensorDescriptor_t xd, const void *x, const void *beta, \
		const cudnnTensorDescriptor_t dxd, void *dx))

#endif
