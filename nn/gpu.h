/* ResNet inference on an NVIDIA GPU: cuDNN and cuBLAS, loaded at run time (nn/cuda.h). */
#ifndef CULL_GPU_H
#define CULL_GPU_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"
#include "resnet.h"

/* --device (and $CULL_DEVICE): cpu, auto, cuda or cuda:N. */
enum { NN_DEV_CPU, NN_DEV_AUTO, NN_DEV_CUDA };
typedef struct {
	int kind;               /* NN_DEV_* */
	int index;              /* cuda:N (0 for cuda and auto) */
} nn_device;
/* Parse s; returns 0, or -1 with an EXIT_USAGE message in e. */
int nn_device_parse(const char *s, nn_device *d, cull_err *e);

typedef struct gpu_device gpu_device;
/* Load libcudart, libcublas and libcudnn (9.x) and take GPU `index`. Returns NULL with a
 * message naming what is missing (a library, the driver, a GPU) and EXIT_DEVICE in e.
 * CULL_CUDA_LIBDIR, when set, is the one folder searched (else the loader's path, then
 * /usr/local/cuda/lib64). */
gpu_device *gpu_open(int index, cull_err *e);
void gpu_close(gpu_device *d);
/* "NVIDIA H200 (cuda:0, sm_90, 132 SMs, 139.8 GiB); CUDA runtime 13.0, driver 13.0,
 * cuDNN 9.19.0, cuBLAS 13.0.0" */
const char *gpu_describe(const gpu_device *d);
/* For --version: the GPU backend and what the loader finds, without taking a device:
 * "GPU: cuDNN 9.19.0, cuBLAS 13.0.0, CUDA runtime 13.0 loaded at run time" or "GPU: none
 * (libcudart.so.13 not found)". */
void gpu_probe(char *buf, size_t len);

/* Page-locked host memory for inputs (faster copies); freed with gpu_host_free. NULL with
 * EXIT_NOMEM in e. */
void *gpu_host_alloc(gpu_device *d, size_t bytes, cull_err *e);
void gpu_host_free(gpu_device *d, void *p);

/* A model's eval forward (BN folded into the convolutions, ReLU and the residual add fused
 * into them where cuDNN can) for up to `batch` images of h x w, in bfloat16 (bf16 = 1:
 * tensor cores, float sums) or float32 (no TF32). Weights are copied at creation; a later
 * change to m is not seen. Activations are NHWC. */
typedef struct gpu_net gpu_net;
gpu_net *gpu_net_create(gpu_device *d, nn_model *m, int batch, int h, int w, int bf16,
                        cull_err *e);
void gpu_net_free(gpu_net *g);
/* The input layout gpu_net_forward takes: NHWC with gpu_net_channels(g) channels (the
 * model's, padded with zeros to a multiple the tensor cores like), bf16 or float32. */
int gpu_net_channels(const gpu_net *g);
size_t gpu_net_image_bytes(const gpu_net *g);
/* One image: src [c][h][w] float (as preprocess_eval writes it) into dst, the layout
 * above (bf16: rounded to nearest even). */
void gpu_pack_image(const gpu_net *g, void *dst, const float *src);
/* Forward n <= batch packed images (n * gpu_net_image_bytes(g) bytes at x, best in
 * gpu_host_alloc memory); returns the outputs [n, dim] (embeddings, or logits with an fc),
 * valid until the next call, or NULL with a message in e. */
const float *gpu_net_forward(gpu_net *g, const void *x, int n, cull_err *e);
int gpu_net_dim(const gpu_net *g);
/* Time spent on the device by the forwards so far (copies included), in seconds. */
double gpu_net_busy(const gpu_net *g);
/* Benchmark: `iters` forwards of a full batch already on the device (no copies); the mean
 * milliseconds per batch, or -1 with a message in e. */
double gpu_net_bench(gpu_net *g, int iters, cull_err *e);
/* How the convolutions run: "53 convolutions: 49 fused (bias+add+ReLU in cuDNN), 4 as
 * convolution + bias passes; workspace 123 MiB". */
const char *gpu_net_plan(const gpu_net *g);

/* Training on the GPU: nn_forward(m, x, n, 1), nn_backward, nn_zero_grad and
 * nn_sgd_step of m run there once this is made (after nn_setup(m, batch, h, w, 1) and
 * any change of m's parameters on the host, which it copies); float32, NCHW, cuDNN's
 * deterministic algorithms. nn_sync copies the state back. gpu_train_free (or nn_free)
 * ends it. */
typedef struct gpu_trainer gpu_trainer;
gpu_trainer *gpu_train_create(gpu_device *d, nn_model *m, cull_err *e);
void gpu_train_free(gpu_trainer *t);
/* Parameters, momentum and running statistics: host to device, device to host. */
int gpu_train_upload(gpu_trainer *t, cull_err *e);
int gpu_train_download(gpu_trainer *t, cull_err *e);
/* The steps behind nn_forward (train), nn_backward, nn_zero_grad and nn_sgd_step. */
int gpu_train_forward(gpu_trainer *t, const float *x, int n, cull_err *e);
int gpu_train_backward(gpu_trainer *t, int n, cull_err *e);
int gpu_train_zero_grad(gpu_trainer *t, cull_err *e);
int gpu_train_sgd(gpu_trainer *t, const nn_sgd *o, float lr, cull_err *e);

#endif
