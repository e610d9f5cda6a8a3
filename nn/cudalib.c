/* The GPU backend's foundation: --device, the CUDA runtime, cuBLAS and cuDNN loaded with
 * dlopen into one table of entry points (cudalib.h), the device and its handles. */
#include "cudalib.h"

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the device option ---- */

int nn_device_parse(const char *s, nn_device *d, cull_err *e)
{
	char *end;

	d->index = 0;
	if (!strcmp(s, "cpu")) {
		d->kind = NN_DEV_CPU;
	} else if (!strcmp(s, "auto")) {
		d->kind = NN_DEV_AUTO;
	} else if (!strcmp(s, "cuda")) {
		d->kind = NN_DEV_CUDA;
	} else if (!strncmp(s, "cuda:", 5) && s[5] >= '0' && s[5] <= '9') {
		long v = strtol(s + 5, &end, 10);
		if (*end || v > 1023)
			return cull_err_set(e, EXIT_USAGE, "--device: '%s' is not cuda:N", s);
		d->kind = NN_DEV_CUDA;
		d->index = (int)v;
	} else {
		return cull_err_set(e, EXIT_USAGE, "--device: '%s' is not one of cpu, cuda, "
		                    "cuda:N, auto", s);
	}
	return 0;
}

/* ---- the loader: one table of entry points, filled once ---- */

cuda_api cu;

static const char *const rt_names[] = { "libcudart.so.13", "libcudart.so.12", "libcudart.so",
	NULL };
static const char *const blas_names[] = { "libcublas.so.13", "libcublas.so.12",
	"libcublas.so", NULL };
static const char *const dnn_names[] = { "libcudnn.so.9", "libcudnn.so", NULL };
/* Where CUDA's installers put the libraries when ld.so.cache does not list them. */
static const char *const lib_dirs[] = { "/usr/local/cuda/lib64",
	"/usr/local/cuda/targets/x86_64-linux/lib", "/usr/local/cuda-13.0/targets/x86_64-linux/lib",
	"/usr/local/cuda-12/targets/x86_64-linux/lib", NULL };

/* dlopen the first of names found, each name looked for in turn: only in $CULL_CUDA_LIBDIR
 * when it is set, else on the loader's path, then in lib_dirs (so a .13 anywhere wins over
 * a .12); its name into got. NULL with dlerror's words in why. */
static void *open_lib(const char *const *names, char *got, size_t gotlen, char *why,
                      size_t whylen)
{
	const char *env = getenv("CULL_CUDA_LIBDIR");
	char path[4096];

	*why = 0;
	for (const char *const *n = names; *n; n++)
		for (int pass = env && *env ? 0 : 1; pass < 3; pass++) {
			for (int k = 0; k == 0 || (pass == 2 && lib_dirs[k]); k++) {
				if (pass == 0)
					snprintf(path, sizeof path, "%s/%s", env, *n);
				else if (pass == 1)
					snprintf(path, sizeof path, "%s", *n);
				else
					snprintf(path, sizeof path, "%s/%s", lib_dirs[k], *n);
				void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
				if (h) {
					snprintf(got, gotlen, "%s", *n);
					return h;
				}
				if (!*why)
					snprintf(why, whylen, "%s", dlerror());
			}
			if (pass == 0)
				break;
		}
	return NULL;
}

static int load(cull_err *e)
{
	char why[512];

	if (cu.loaded)
		return 0;
	struct { void **h; const char *const *names; char *got; const char *what; } libs[] = {
		{ &cu.rt, rt_names, cu.rt_name, "the CUDA runtime (libcudart.so.13 or .12)" },
		{ &cu.blas, blas_names, cu.blas_name, "cuBLAS (libcublas.so.13 or .12)" },
		{ &cu.dnn, dnn_names, cu.dnn_name, "cuDNN 9 (libcudnn.so.9)" },
	};
	for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
		/* cuBLAS of the runtime's major version first */
		static const char *const blas12[] = { "libcublas.so.12", "libcublas.so.13",
			"libcublas.so", NULL };
		if (libs[i].names == blas_names && strstr(cu.rt_name, ".so.12"))
			libs[i].names = blas12;
		*libs[i].h = open_lib(libs[i].names, libs[i].got, 64, why, sizeof why);
		if (!*libs[i].h)
			return cull_err_set(e, EXIT_DEVICE, "cannot load %s: %s; install it or name "
			                    "its folder in CULL_CUDA_LIBDIR", libs[i].what, why);
	}
#define X(name, ret, args) \
	if (!(*(void **)&cu.name = dlsym(lib, #name))) \
		return cull_err_set(e, EXIT_DEVICE, "%s has no %s: too old a version", \
		                    libname, #name);
	{
		void *lib = cu.rt;
		const char *libname = cu.rt_name;
		CUDART_FUNCS(X)
		lib = cu.blas;
		libname = cu.blas_name;
		CUBLAS_FUNCS(X)
		lib = cu.dnn;
		libname = cu.dnn_name;
		CUDNN_FUNCS(X)
		CUDNN_TRAIN_FUNCS(X)
	}
#undef X
	*(void **)&cu.getprop = dlsym(cu.rt, "cudaGetDeviceProperties_v2");
	if (!cu.getprop)
		*(void **)&cu.getprop = dlsym(cu.rt, "cudaGetDeviceProperties");
	size_t v = cu.cudnnGetVersion();
	if (v < 90000)
		return cull_err_set(e, EXIT_DEVICE, "%s is cuDNN %zu.%zu; cull needs 9.0 or newer",
		                    cu.dnn_name, v / 10000 ? v / 10000 : v / 1000,
		                    v / 10000 ? v / 100 % 100 : v / 100 % 10);
	cu.loaded = 1;
	return 0;
}

void gpu_probe(char *buf, size_t len)
{
	cull_err e;

	if (load(&e) < 0) {
		snprintf(buf, len, "GPU: none usable (%s)", e.msg);
		return;
	}
	size_t v = cu.cudnnGetVersion();
	int rt = 0;
	cu.cudaRuntimeGetVersion(&rt);
	snprintf(buf, len, "GPU: cuDNN %zu.%zu.%zu, CUDA runtime %d.%d, %s, loaded at run time",
	         v / 10000, v / 100 % 100, v % 100, rt / 1000, rt % 1000 / 10, cu.blas_name);
}

/* ---- the device ---- */

/* The function a check's stringified call names: "cu.cudnnFoo(h, ...)" -> "cudnnFoo". */
static int fname(const char *what)
{
	const char *p = strchr(what, '(');
	return p ? (int)(p - what) : (int)strlen(what);
}

static const char *skip_table(const char *what)
{
	return strncmp(what, "cu.", 3) ? what : what + 3;
}

int rt_fail(cull_err *e, cudaError_t r, const char *what)
{
	what = skip_table(what);
	int code = r == cudaErrorMemoryAllocation ? EXIT_NOMEM : EXIT_DEVICE;
	return cull_err_set(e, code, "%.*s: %s%s", fname(what), what, cu.cudaGetErrorString(r),
	                    code == EXIT_NOMEM ? " (out of GPU memory: try a smaller --batch)" : "");
}

int dnn_fail(cull_err *e, cudnnStatus_t s, const char *what)
{
	what = skip_table(what);
	return cull_err_set(e, EXIT_DEVICE, "%.*s: %s", fname(what), what,
	                    cu.cudnnGetErrorString(s));
}

static int device_init(gpu_device *d, int index, cull_err *e)
{
	int count = 0, major = 0, minor = 0, sms = 0, rt = 0, drv = 0, bv = 0;
	size_t fre = 0, total = 0;
	char name[256] = "unnamed GPU";
	cudaError_t r = cu.cudaGetDeviceCount(&count);

	if (r == cudaErrorNoDevice || (r == cudaSuccess && count == 0))
		return cull_err_set(e, EXIT_DEVICE, "no CUDA GPU found (%s)",
		                    cu.cudaGetErrorString(cudaErrorNoDevice));
	if (r == cudaErrorInsufficientDriver)
		return cull_err_set(e, EXIT_DEVICE, "the NVIDIA driver is missing or older than "
		                    "%s needs (%s)", cu.rt_name, cu.cudaGetErrorString(r));
	if (r != cudaSuccess)
		return rt_fail(e, r, "cudaGetDeviceCount");
	if (index >= count)
		return cull_err_set(e, EXIT_DEVICE, "cuda:%d asked for, but %d GPU%s found", index,
		                    count, count == 1 ? " is" : "s are");
	RT(cu.cudaSetDevice(index));
	cu.cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, index);
	cu.cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, index);
	cu.cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, index);
	cu.cudaRuntimeGetVersion(&rt);
	cu.cudaDriverGetVersion(&drv);
	RT(cu.cudaMemGetInfo(&fre, &total));
	if (cu.getprop) {
		char *prop = calloc(1, CUDA_DEVICE_PROP_BYTES);
		if (prop && cu.getprop(prop, index) == cudaSuccess && prop[0])
			snprintf(name, sizeof name, "%.255s", prop);
		free(prop);
	}
	RT(cu.cudaStreamCreate(&d->stream));
	DNN(cu.cudnnCreate(&d->dnn));
	DNN(cu.cudnnSetStream(d->dnn, d->stream));
	BLAS(cu.cublasCreate_v2(&d->blas));
	BLAS(cu.cublasSetStream_v2(d->blas, d->stream));
	cu.cublasGetVersion_v2(d->blas, &bv);
	size_t v = cu.cudnnGetVersion();
	d->index = index;
	snprintf(d->desc, sizeof d->desc, "%s (cuda:%d, sm_%d%d, %d SMs, %.1f GiB); CUDA "
	         "runtime %d.%d, driver %d.%d, cuDNN %zu.%zu.%zu, cuBLAS %d.%d.%d", name, index,
	         major, minor, sms, (double)total / (1 << 30), rt / 1000, rt % 1000 / 10,
	         drv / 1000, drv % 1000 / 10, v / 10000, v / 100 % 100, v % 100, bv / 10000,
	         bv / 100 % 100, bv % 100);
	return 0;
}

int blas_fail(cull_err *e, cublasStatus_t s, const char *what)
{
	what = skip_table(what);
	return cull_err_set(e, s == 3 ? EXIT_NOMEM : EXIT_DEVICE, "%.*s: cuBLAS status %d%s",
	                    fname(what), what, s, s == 3 ? " (out of GPU memory)" : "");
}

gpu_device *gpu_open(int index, cull_err *e)
{
	if (load(e) < 0)
		return NULL;
	gpu_device *d = xcalloc(1, sizeof *d);
	if (device_init(d, index, e) < 0) {
		gpu_close(d);
		return NULL;
	}
	return d;
}

void gpu_close(gpu_device *d)
{
	if (!d)
		return;
	if (d->blas)
		cu.cublasDestroy_v2(d->blas);
	if (d->dnn)
		cu.cudnnDestroy(d->dnn);
	if (d->stream)
		cu.cudaStreamDestroy(d->stream);
	free(d);
}

const char *gpu_describe(const gpu_device *d)
{
	return d->desc;
}

void *gpu_host_alloc(gpu_device *d, size_t bytes, cull_err *e)
{
	void *p = NULL;

	(void)d;
	if (cu.cudaHostAlloc(&p, bytes ? bytes : 1, 0) == cudaSuccess)
		return p;
	cu.cudaGetLastError();
	cull_err_set(e, EXIT_NOMEM, "cannot allocate %zu bytes of page-locked host memory",
	             bytes);
	return NULL;
}

void gpu_host_free(gpu_device *d, void *p)
{
	(void)d;
	if (p)
		cu.cudaFreeHost(p);
}

