/* Benchmark of nn/: images per second of a ResNet training step or eval forward, GFLOP/s, peak RSS. */
#include "resnet.h"
#include "io.h"
#include "layers.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static void usage(void)
{
	fprintf(stderr, "usage: bench_nn [--arch A] [--train | --eval] [--batch B] [--px P] "
	        "[--iters N] [--threads T] [--classes K]\n       bench_nn --sgemm [--threads T]\n");
	exit(EXIT_USAGE);
}

static double peak_rss_mib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024.0;
}

typedef struct {
	float *a, *b, *c;
	int n;
} gemm_job;

static void one_gemm(void *ctx, int i, int tid)
{
	gemm_job *j = ctx;
	size_t nn = (size_t)j->n * j->n;
	(void)tid;
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, j->n, j->n, j->n, 1.0f, j->a, j->n,
	            j->b, j->n, 0.0f, j->c + (size_t)i * nn, j->n);
}

/* sgemm peak as the layers use it: one single-threaded sgemm per thread at once */
static double sgemm_peak(void)
{
	int t = nn_threads(), n = 1536;
	gemm_job j = { .n = n };
	size_t nn = (size_t)n * n;
	j.a = xcalloc(nn, sizeof(float));
	j.b = xcalloc(nn, sizeof(float));
	j.c = xcalloc(nn * t, sizeof(float));
	nn_parallel(t, one_gemm, &j);
	double best = 0;
	for (int r = 0; r < 3; r++) {
		double t0 = now_seconds();
		nn_parallel(t, one_gemm, &j);
		double g = 2.0 * n * (double)nn * t / (now_seconds() - t0) / 1e9;
		if (g > best)
			best = g;
	}
	free(j.a);
	free(j.b);
	free(j.c);
	return best;
}

int main(int argc, char **argv)
{
	const char *arch = "resnet20";
	int train = 1, batch = 128, px = 32, iters = 5, threads = 0, classes = 10, sgemm = 0;
	int bf16 = 0;

	nn_exec_passive(argv);
	cull_init(argv[0]);
	if (!getenv("BENCH_NN_PLAIN_BLAS"))
		nn_exec_tuned(argv);
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(o, "--train") == 0) train = 1;
		else if (strcmp(o, "--eval") == 0) train = 0;
		else if (strcmp(o, "--sgemm") == 0) sgemm = 1;
		else if (strcmp(o, "--bf16") == 0) bf16 = 1;
		else if (!v) usage();
		else if (strcmp(o, "--arch") == 0) arch = argv[++i];
		else if (strcmp(o, "--batch") == 0) batch = (int)parse_int(o, argv[++i], 1, 1 << 16);
		else if (strcmp(o, "--px") == 0) px = (int)parse_int(o, argv[++i], 8, 4096);
		else if (strcmp(o, "--iters") == 0) iters = (int)parse_int(o, argv[++i], 1, 1 << 20);
		else if (strcmp(o, "--threads") == 0) threads = (int)parse_int(o, argv[++i], 0, 256);
		else if (strcmp(o, "--classes") == 0) classes = (int)parse_int(o, argv[++i], 0, 1 << 20);
		else usage();
	}
	nn_set_threads(threads);
	if (bf16 && nn_set_bf16(1) <= 0)
		die(EXIT_USAGE, "--bf16 needs a oneDNN build and a CPU with AVX512-BF16 or AMX "
		    "(or CULL_NN_BF16=emulate)");
	if (sgemm) {
		printf("sgemm_gflops %.1f threads %d core %s\n", sgemm_peak(), nn_threads(),
		       openblas_get_corename());
		return 0;
	}
	nn_model *m = nn_create(arch, 3, 1.0, classes, 1);
	if (!m)
		die(EXIT_USAGE, "unknown arch %s (%s)", arch, nn_arch_names());
	size_t nx = (size_t)batch * 3 * px * px;
	float *x = xmalloc(sizeof(float) * nx);
	int *y = xmalloc(sizeof(int) * batch);
	for (size_t i = 0; i < nx; i++)
		x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
	for (int i = 0; i < batch; i++)
		y[i] = classes ? i % classes : 0;
	nn_setup(m, batch, px, px, train);
	nn_sgd o = { .momentum = 0.9f, .weight_decay = 5e-4f };
	double best = 1e30, total = 0;
	for (int it = 0; it <= iters; it++) {     /* iteration 0 warms up */
		double t0 = now_seconds();
		if (train)
			nn_train_step(m, x, y, batch, &o, 0.01f, 0, NULL);
		else
			nn_forward(m, x, batch, 0);
		double dt = now_seconds() - t0;
		if (it > 0) {
			total += dt;
			if (dt < best)
				best = dt;
		}
	}
	double flop = 2.0 * nn_forward_macs(m, px, px) * (train ? 3 : 1) * batch;
	printf("img_per_s %.2f best_img_per_s %.2f gflops %.1f peak_rss_mib %.0f threads %d "
	       "core %s\n", batch * iters / total, batch / best, flop * iters / total / 1e9,
	       peak_rss_mib(), nn_threads(), openblas_get_corename());
	free(x);
	free(y);
	nn_free(m);
	return 0;
}
