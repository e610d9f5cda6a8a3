/* Benchmark helper: spherical k-means on a raw float32 matrix, timed (fit, then one assignment). */
#include "io.h"
#include "kmeans.h"
#include "threads.h"

#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	size_t len, n;
	unsigned char *buf;
	float *x, *c;
	int32_t *a;
	int d, k, iters, threads;
	double t0, t1, t2, obj;
	kmeans_result res;
	cull_err e;

	nn_exec_passive(argv);   /* as cull-score runs k-means: OpenMP threads sleep, not spin */
	cull_init(argv[0]);
	if (argc != 8)
		die(EXIT_USAGE, "usage: kmeans-fit DATA.f32 D K ITERS THREADS SEED CENTROIDS.f32");
	d = (int)parse_int("D", argv[2], 1, 1 << 20);
	k = (int)parse_int("K", argv[3], 1, 1 << 24);
	iters = (int)parse_int("ITERS", argv[4], 0, 1 << 20);
	threads = (int)parse_int("THREADS", argv[5], 1, THREADS_MAX);
	buf = read_file(argv[1], &len);
	n = len / ((size_t)d * 4);
	x = xmalloc(n * (size_t)d * sizeof *x);
	memcpy(x, buf, n * (size_t)d * sizeof *x);
	free(buf);
	kmeans_normalize(x, n, d);
	nn_set_threads(threads);
	c = xmalloc((size_t)k * d * sizeof *c);
	a = xmalloc(n * sizeof *a);
	kmeans_opts o = { .k = k, .iters = iters, .tol = 0,
	                  .seed = (uint64_t)parse_int("SEED", argv[6], 0, INT64_MAX) };
	t0 = now_seconds();
	if (kmeans_fit(c, NULL, NULL, &res, x, n, d, &o, &e) < 0)
		die_err(&e);
	t1 = now_seconds();
	obj = kmeans_assign(a, NULL, x, n, d, c, k) / (double)n;
	t2 = now_seconds();
	FILE *f = xfopen(argv[7], "wb");
	xfwrite(c, (size_t)k * d * sizeof *c, f, argv[7]);
	xfclose(f, argv[7]);
	printf("fit_s %.4f assign_s %.4f iters %d objective %.6f\n", t1 - t0, t2 - t1, res.iters, obj);
	xfclose(stdout, "<stdout>");
	return 0;
}
