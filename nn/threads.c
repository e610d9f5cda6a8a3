/* The layer threads (nn_parallel: OpenMP when built with it, else a pthread pool), the
 * thread-count setting and the shared scratch buffer. */
#include "threads.h"
#include "io.h"

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 256

#ifdef _OPENMP
/* With OpenMP (the oneDNN build) the layers share oneDNN's OpenMP threads: a second pool
 * would compete with OpenMP's spinning workers for the same cores. */
static int nthreads;

void nn_set_threads(int threads)
{
	if (threads <= 0)
		threads = default_threads();
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	nthreads = threads;
	omp_set_num_threads(threads);
	openblas_set_num_threads(1);
}

int nn_threads(void)
{
	if (nthreads == 0)
		nn_set_threads(0);
	return nthreads;
}

void nn_parallel(int count, void (*fn)(void *ctx, int i, int tid), void *ctx)
{
	int n = nn_threads();

	if (n == 1 || count <= 1 || omp_in_parallel()) {
		for (int i = 0; i < count; i++)
			fn(ctx, i, 0);
		return;
	}
#pragma omp parallel num_threads(n)
	{
		/* static contiguous chunks, so that results do not depend on timing */
		int t = omp_get_thread_num(), m = omp_get_num_threads();
		int lo = (int)((int64_t)count * t / m), hi = (int)((int64_t)count * (t + 1) / m);
		for (int i = lo; i < hi; i++)
			fn(ctx, i, t);
	}
}

#else

static struct {
	int n;                      /* threads including the caller; 0 = not set up */
	pthread_t th[MAX_THREADS];
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	unsigned gen;
	int pending, quit;
	void (*fn)(void *, int, int);
	void *ctx;
	int count;
} P = { .mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER };

static _Thread_local int in_pool;
static unsigned born_gen;           /* P.gen when the workers were started */

/* Static contiguous chunks, so that results do not depend on timing. */
static void run_items(int tid)
{
	int n = P.n, lo = (int)((int64_t)P.count * tid / n), hi = (int)((int64_t)P.count * (tid + 1) / n);

	for (int i = lo; i < hi; i++)
		P.fn(P.ctx, i, tid);
}

static void *worker(void *arg)
{
	int tid = (int)(intptr_t)arg;
	unsigned seen;

	in_pool = 1;
	pthread_mutex_lock(&P.mu);
	seen = born_gen;
	for (;;) {
		while (P.gen == seen && !P.quit)
			pthread_cond_wait(&P.go, &P.mu);
		if (P.quit)
			break;
		seen = P.gen;
		pthread_mutex_unlock(&P.mu);
		run_items(tid);
		pthread_mutex_lock(&P.mu);
		if (--P.pending == 0)
			pthread_cond_signal(&P.done);
	}
	pthread_mutex_unlock(&P.mu);
	return NULL;
}

static void stop_pool(void)
{
	pthread_mutex_lock(&P.mu);
	P.quit = 1;
	pthread_cond_broadcast(&P.go);
	pthread_mutex_unlock(&P.mu);
	for (int t = 1; t < P.n; t++)
		pthread_join(P.th[t], NULL);
	P.quit = 0;
	P.n = 0;
}

void nn_set_threads(int threads)
{
	if (threads <= 0)
		threads = default_threads();
	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	if (threads == P.n)
		return;
	if (P.n > 1)
		stop_pool();
	P.n = threads;
	born_gen = P.gen;
	for (int t = 1; t < threads; t++)
		if (pthread_create(&P.th[t], NULL, worker, (void *)(intptr_t)t) != 0)
			die(EXIT_NOMEM, "cannot start thread %d", t);
	/* Layers split work over images themselves and call sgemm single-threaded. */
	openblas_set_num_threads(1);
}

int nn_threads(void)
{
	if (P.n == 0)
		nn_set_threads(0);
	return P.n;
}

void nn_parallel(int count, void (*fn)(void *ctx, int i, int tid), void *ctx)
{
	int n = nn_threads();

	if (n == 1 || count <= 1 || in_pool) {
		for (int i = 0; i < count; i++)
			fn(ctx, i, 0);
		return;
	}
	pthread_mutex_lock(&P.mu);
	P.fn = fn;
	P.ctx = ctx;
	P.count = count;
	P.pending = n - 1;
	P.gen++;
	pthread_cond_broadcast(&P.go);
	pthread_mutex_unlock(&P.mu);
	in_pool = 1;
	run_items(0);
	in_pool = 0;
	pthread_mutex_lock(&P.mu);
	while (P.pending > 0)
		pthread_cond_wait(&P.done, &P.mu);
	pthread_mutex_unlock(&P.mu);
}

#endif

char *openblas_get_corename(void);

/* Whether re-executing /proc/self/exe runs this program again: under valgrind it names
 * valgrind's tool, which refuses to start that way. */
static int can_reexec(void)
{
	const char *pre = getenv("LD_PRELOAD");

	return !(pre && strstr(pre, "vgpreload"));
}

void nn_exec_tuned(char **argv)
{
	const char *core = openblas_get_corename();

	if (getenv("OPENBLAS_CORETYPE") || !core || strcmp(core, "Haswell") != 0 ||
	    !__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
	    !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl") ||
	    !__builtin_cpu_supports("avx512cd"))
		return;
	if (!can_reexec() || setenv("OPENBLAS_CORETYPE", "SkylakeX", 1) != 0)
		return;
	execv("/proc/self/exe", argv);
	/* could not re-execute: carry on with the kernels we have */
}

void nn_exec_passive(char **argv)
{
#ifdef _OPENMP
	if (getenv("OMP_WAIT_POLICY") || !can_reexec() ||
	    setenv("OMP_WAIT_POLICY", "passive", 1) != 0)
		return;
	execv("/proc/self/exe", argv);
	/* could not re-execute: carry on spinning */
#else
	(void)argv;
#endif
}

static float *scratch;
static size_t scratch_n;

float *nn_scratch(size_t floats)
{
	if (floats > scratch_n) {
		free(scratch);
		scratch = NULL;
		if (posix_memalign((void **)&scratch, 64, floats * sizeof(float)) != 0)
			die(EXIT_NOMEM, "out of memory allocating %zu floats of scratch", floats);
		scratch_n = floats;
	}
	return scratch;
}
