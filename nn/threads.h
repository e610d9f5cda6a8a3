/* The layer threads (nn/threads.c): the thread-count setting, nn_parallel, re-execution
 * for faster kernels or a passive OpenMP, and the shared scratch buffer. */
#ifndef CULL_THREADS_H
#define CULL_THREADS_H

#include <stddef.h>

/* Threads used by the layers (and OpenBLAS); 0 = default_threads(). */
void nn_set_threads(int threads);
int nn_threads(void);
/* Run fn(ctx, i, tid) for i in [0, count) on the layer threads, thread tid < nn_threads()
 * taking one contiguous chunk of i (so results do not depend on timing). */
void nn_parallel(int count, void (*fn)(void *ctx, int i, int tid), void *ctx);
/* Debian's OpenBLAS 0.3.21 picks its AVX2 (Haswell) kernels on AVX-512 CPUs it does not
 * know (AMD Zen 4); its AVX-512 (SkylakeX) kernels run up to 2x faster there, but the
 * choice is made when the library loads. If OPENBLAS_CORETYPE is unset, OpenBLAS chose
 * Haswell and the CPU has AVX-512, this sets OPENBLAS_CORETYPE=SkylakeX and re-executes
 * the program with the same argv (call it first thing in main); otherwise it returns. */
void nn_exec_tuned(char **argv);
/* OpenMP's default wait policy spins at every barrier, which is fastest alone but makes
 * processes that share cores (GNU parallel over shards, training beside other work) each
 * run at a fraction of their fair share. If cull was built with OpenMP and
 * OMP_WAIT_POLICY is unset, this sets it to passive and re-executes the program (OpenMP
 * reads it when the library loads); call it first thing in main. Otherwise it returns. */
void nn_exec_passive(char **argv);
/* Shared scratch of at least `floats` floats, 64-byte aligned; grows, never shrinks.
 * Valid until the next call; not for use by two layers at once. */
float *nn_scratch(size_t floats);

#endif
