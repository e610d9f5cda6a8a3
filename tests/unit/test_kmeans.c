/* Unit tests for nn/kmeans: planted clusters, monotone objective, determinism, files. */
#include "check.h"
#include "io.h"
#include "kmeans.h"
#include "rng.h"
#include "threads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static double gauss(uint64_t *s)
{
	double u = ((rng_next(s) >> 11) + 0.5) * 0x1.0p-53, v = (rng_next(s) >> 11) * 0x1.0p-53;

	return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

/* n points around g planted unit centres in d dimensions, noise sigma; label[i] = i % g. */
static float *planted(size_t n, int d, int g, double sigma, int *label, uint64_t seed)
{
	float *cen = xmalloc((size_t)g * d * sizeof *cen), *x = xmalloc(n * d * sizeof *x);
	uint64_t s = seed;

	for (size_t i = 0; i < (size_t)g * d; i++)
		cen[i] = (float)gauss(&s);
	kmeans_normalize(cen, (size_t)g, d);
	for (size_t i = 0; i < n; i++) {
		label[i] = (int)(i % (size_t)g);
		for (int j = 0; j < d; j++)
			x[i * d + j] = cen[(size_t)label[i] * d + j] + (float)(sigma * gauss(&s));
	}
	kmeans_normalize(x, n, d);
	free(cen);
	return x;
}

int main(void)
{
	enum { N = 1600, D = 16, G = 8 };
	int label[N], map[G], ok, i, j;
	int32_t a1[N], a2[N], a3[N];
	float s1[N], s3[N], c1[G * D], c2[G * D], c3[G * D];
	kmeans_opts o = { .k = G, .iters = 30, .tol = 0, .seed = 7 };
	kmeans_result r1, r2;
	float *x = planted(N, D, G, 0.08, label, 42);

	cull_init("test_kmeans");
	nn_set_threads(2);
	kmeans_fit(c1, a1, s1, &r1, x, N, D, &o, NULL);

	/* planted clusters recovered: each planted group maps to one cluster, bijectively */
	for (i = 0; i < G; i++)
		map[i] = -1;
	ok = 1;
	for (i = 0; i < N; i++) {
		if (map[label[i]] < 0)
			map[label[i]] = a1[i];
		ok &= map[label[i]] == a1[i];
	}
	for (i = 0; i < G; i++)
		for (j = 0; j < i; j++)
			ok &= map[i] != map[j];
	CHECK(ok, "planted clusters recovered (n=%d, d=%d, k=%d)", N, D, G);

	ok = 1;
	for (i = 0; i < r1.iters; i++)
		ok &= r1.history[i + 1] <= r1.history[i] + 1e-7;
	CHECK(ok && r1.iters >= 1, "objective never increases over %d iterations (%.6f -> %.6f)",
	      r1.iters, r1.history[0], r1.objective);

	/* same seed, same output; and the same with another thread count */
	kmeans_fit(c2, a2, NULL, &r2, x, N, D, &o, NULL);
	CHECK(memcmp(c1, c2, sizeof c1) == 0 && memcmp(a1, a2, sizeof a1) == 0,
	      "same seed -> identical centroids and assignment");
	free(r2.history);
	nn_set_threads(1);
	kmeans_fit(c2, a2, NULL, &r2, x, N, D, &o, NULL);
	CHECK(memcmp(c1, c2, sizeof c1) == 0, "1 thread gives the same centroids as 2");
	free(r2.history);
	nn_set_threads(2);

	/* tolerance stops early; seeds differ */
	o.tol = 1e-3;
	kmeans_fit(c3, a3, NULL, &r2, x, N, D, &o, NULL);
	CHECK(r2.iters < 30, "tolerance stops early (%d iterations)", r2.iters);
	free(r2.history);
	o.tol = 0;

	/* assignment with the fitted centroids reproduces the fit's own */
	{
		double sum = kmeans_assign(a3, s3, x, N, D, c1, G);

		CHECK(memcmp(a1, a3, sizeof a1) == 0 && memcmp(s1, s3, sizeof s1) == 0,
		      "kmeans_assign reproduces the fit's assignment");
		CHECK(fabs(sum / N - r1.objective) < 1e-12, "objective = mean(1 - sim)");
	}

	/* centroid files round-trip bit for bit, class means included */
	{
		char path[] = "/tmp/test_kmeans.XXXXXX";
		int fd = mkstemp(path);
		int64_t cls[2] = { 3, -1 };
		kmeans_file f = { .k = G, .d = D, .c = c1, .nclasses = 2, .classes = cls,
		                  .class_means = c1 + D }, g;

		close(fd);
		CHECK(kmeans_save(path, &f, NULL) == 0 && kmeans_load(&g, path, NULL) == 0,
		      "centroid file saved and loaded");
		CHECK(g.k == G && g.d == D && memcmp(g.c, c1, sizeof c1) == 0,
		      "centroid file round-trip");
		CHECK(g.nclasses == 2 && g.classes[0] == 3 && g.classes[1] == -1 &&
		      memcmp(g.class_means, c1 + D, 2 * D * sizeof(float)) == 0,
		      "class means round-trip");
		kmeans_file_free(&g);
		unlink(path);
	}

	/* bad arguments and files are reported, not fatal */
	{
		cull_err err;
		kmeans_file g;

		o.k = N + 1;
		CHECK(kmeans_fit(c3, a3, NULL, &r2, x, N, D, &o, &err) == -1 &&
		      err.code == EXIT_USAGE, "k > n is reported: %s", err.msg);
		o.k = G;
		CHECK(kmeans_load(&g, "/nonexistent/c.st", &err) == -1 && err.code == EXIT_DATA &&
		      strstr(err.msg, "not a safetensors centroid file") && !g.c,
		      "a missing centroid file is reported: %s", err.msg);
	}

	/* fewer distinct points than clusters: re-seeding, no NaN */
	{
		float y[6 * 2] = { 1, 0, 1, 0, 1, 0, 0, 1, 0, 1, -1, 0 }, cy[4 * 2];
		int32_t ay[6];
		kmeans_opts oy = { .k = 4, .iters = 5, .seed = 1 };

		kmeans_fit(cy, ay, NULL, &r2, y, 6, 2, &oy, NULL);
		ok = 1;
		for (i = 0; i < 8; i++)
			ok &= isfinite(cy[i]);
		CHECK(ok && r2.objective < 1e-6, "duplicates: finite centroids, objective %.3g, %d re-seeded",
		      r2.objective, r2.reseeded);
		free(r2.history);
	}

	/* separation of orthogonal centroids is 1 */
	{
		float e[3 * 3] = { 1, 0, 0, 0, 1, 0, 0, 0, 1 }, sep[3];

		kmeans_separation(sep, e, 3, 3, 2);
		CHECK(fabs(sep[0] - 1) < 1e-6 && fabs(sep[2] - 1) < 1e-6, "separation of orthogonal centroids");
	}

	/* k-means++ with a subsampled init still finds the planted clusters */
	o.init_sample = 64;
	kmeans_fit(c3, a3, NULL, &r2, x, N, D, &o, NULL);
	CHECK(r2.objective <= r1.objective * 1.01, "subsampled k-means++ init: objective %.5f vs %.5f",
	      r2.objective, r1.objective);
	free(r2.history);
	free(r1.history);
	free(x);
	return CHECK_DONE();
}
