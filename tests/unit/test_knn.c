/* Unit tests of nn/knn: exact k nearest neighbours against brute force in double. */
#include "check.h"
#include "knn.h"
#include "layers.h"
#include "io.h"
#include "rng.h"

#include <stdlib.h>
#include <string.h>

static float *random_rows(size_t n, int d, uint64_t seed)
{
	float *x = xmalloc(n * (size_t)d * sizeof *x);
	uint64_t s = seed;
	for (size_t i = 0; i < n * (size_t)d; i++)
		x[i] = (float)(rng_uniform(&s) * 2 - 1);
	knn_normalize(x, n, d);
	return x;
}

/* brute force: the rank of every bank row for query q, in double; returns how many of the
 * k hits differ from the double ranking beyond float rounding */
static int check_query(const knn_hit *h, const float *q, const float *bank, size_t nb, int d,
                       int k, int64_t skip)
{
	int bad = 0;
	double *sim = xmalloc(nb * sizeof *sim);
	for (size_t b = 0; b < nb; b++) {
		double s = 0;
		for (int c = 0; c < d; c++)
			s += (double)q[c] * bank[b * (size_t)d + c];
		sim[b] = (int64_t)b == skip ? -2 : s;
	}
	for (int m = 0; m < k; m++) {
		/* the m-th best in double */
		size_t best = 0;
		for (size_t b = 1; b < nb; b++)
			if (sim[b] > sim[best])
				best = b;
		if (h[m].idx != (int64_t)best && fabs(sim[h[m].idx] - sim[best]) > 1e-5)
			bad++;
		if (fabs(h[m].sim - sim[best]) > 1e-5)
			bad++;
		sim[best] = -3;
	}
	free(sim);
	return bad;
}

static void test_exact(size_t nq, size_t nb, int d, int k)
{
	float *q = random_rows(nq, d, 1 + nq), *bank = random_rows(nb, d, 2 + nb);
	knn_hit *h = xmalloc(nq * (size_t)k * sizeof *h);
	int bad = 0;
	knn_search(h, q, nq, bank, nb, d, k, NULL);
	for (size_t i = 0; i < nq; i++)
		bad += check_query(h + i * (size_t)k, q + i * (size_t)d, bank, nb, d, k, -1);
	CHECK(bad == 0, "knn_search == brute force: %zu queries, bank %zu (blocks of 4096), d %d, "
	      "k %d (%d mismatches)", nq, nb, d, k, bad);
	free(q);
	free(bank);
	free(h);
}

int main(void)
{
	cull_init("test_knn");
	nn_set_threads(2);
	test_exact(5, 7, 3, 3);
	test_exact(70, 9000, 16, 5);     /* more queries than a block, bank over two blocks */
	test_exact(3, 4096, 8, 1);

	/* the bank against itself, each row skipping itself: its nearest is another row */
	size_t n = 300;
	int d = 8, k = 4, bad = 0;
	float *x = random_rows(n, d, 9);
	memcpy(x + 7 * d, x + 3 * d, sizeof(float) * (size_t)d);    /* row 7 copies row 3 */
	int64_t *self = xmalloc(n * sizeof *self);
	for (size_t i = 0; i < n; i++)
		self[i] = (int64_t)i;
	knn_hit *h = xmalloc(n * (size_t)k * sizeof *h);
	knn_search(h, x, n, x, n, d, k, self);
	for (size_t i = 0; i < n; i++) {
		bad += check_query(h + i * (size_t)k, x + i * (size_t)d, x, n, d, k, (int64_t)i);
		for (int m = 0; m < k; m++)
			bad += h[i * (size_t)k + m].idx == (int64_t)i;
	}
	CHECK(bad == 0, "skip: a row searched against its own bank never finds itself");
	CHECK(h[3 * k].idx == 7 && h[7 * k].idx == 3 && h[3 * k].sim > 0.9999f,
	      "skip: an exact copy is the nearest other row (sim %.6f)", h[3 * k].sim);

	/* fewer bank rows than k; ties in bank order */
	float tb[] = { 1, 0, 1, 0, 0, 1 }, tq[] = { 1, 0 };
	knn_hit th[5];
	knn_search(th, tq, 1, tb, 3, 2, 5, NULL);
	CHECK(th[0].idx == 0 && th[1].idx == 1 && th[2].idx == 2 && th[3].idx == -1 &&
	      th[4].idx == -1, "k > bank rows: the rows there are, ties in bank order, then -1");

	/* one and two threads agree bit for bit */
	knn_hit *h1 = xmalloc(n * (size_t)k * sizeof *h1);
	nn_set_threads(1);
	knn_search(h1, x, n, x, n, d, k, self);
	int same = 1;
	for (size_t i = 0; i < n * (size_t)k; i++)
		same &= h[i].idx == h1[i].idx && memcmp(&h[i].sim, &h1[i].sim, sizeof(float)) == 0;
	CHECK(same, "1 and 2 threads give the same hits, bit for bit");

	float z[] = { 0, 0, 3, 4 };
	CHECK(knn_normalize(z, 2, 2) == 1 && z[0] == 0 && z[2] == 0.6f && z[3] == 0.8f,
	      "knn_normalize: unit rows, an all-zero row counted and left");
	free(x);
	free(self);
	free(h);
	free(h1);
	return CHECK_DONE();
}
