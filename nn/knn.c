/* Exact k nearest neighbours by cosine similarity, for k-NN votes and near-copy search. */
#include "knn.h"
#include "layers.h"
#include "io.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { QB = 64, BB = 4096 };   /* queries and bank rows scored at once: 1 MiB of floats */

/* a ranks below b: less similar, or as similar with a larger bank index */
static int below(const knn_hit *a, const knn_hit *b)
{
	return a->sim < b->sim || (a->sim == b->sim && a->idx > b->idx);
}

static void sift_down(knn_hit *h, int n, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && below(&h[l], &h[m]))
			m = l;
		if (r < n && below(&h[r], &h[m]))
			m = r;
		if (m == i)
			return;
		knn_hit t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static int by_rank(const void *a, const void *b)
{
	const knn_hit *x = a, *y = b;
	return below(y, x) ? -1 : below(x, y) ? 1 : 0;
}

typedef struct {
	knn_hit *heaps;        /* QB heaps of k: a min-heap (the worst kept on top) per query */
	int *fill;             /* hits in each heap */
	const float *sims;     /* [qn, bn] */
	size_t q0, b0, bn;
	int k;
	const int64_t *skip;
} block_job;

static void score_row(void *ctx, int r, int tid)
{
	block_job *j = ctx;
	const float *s = j->sims + (size_t)r * j->bn;
	knn_hit *h = j->heaps + (size_t)r * (size_t)j->k;
	int64_t skip = j->skip ? j->skip[j->q0 + (size_t)r] : -1;
	int n = j->fill[r];

	(void)tid;
	for (size_t i = 0; i < j->bn; i++) {
		knn_hit c = { s[i], (int64_t)(j->b0 + i) };
		if (c.idx == skip)
			continue;
		if (n < j->k) {
			h[n++] = c;
			if (n == j->k)
				for (int m = n / 2 - 1; m >= 0; m--)
					sift_down(h, n, m);
		} else if (below(&h[0], &c)) {
			h[0] = c;
			sift_down(h, n, 0);
		}
	}
	j->fill[r] = n;
}

void knn_search(knn_hit *hits, const float *query, size_t nq, const float *bank, size_t nb,
                int d, int k, const int64_t *skip)
{
	if (k < 1 || nq == 0)
		return;
	float *sims = xmalloc((size_t)QB * BB * sizeof *sims);
	block_job j = { .heaps = xmalloc((size_t)QB * (size_t)k * sizeof(knn_hit)),
	                .fill = xmalloc(QB * sizeof(int)), .sims = sims, .k = k, .skip = skip };

	for (size_t q0 = 0; q0 < nq; q0 += QB) {
		size_t qn = nq - q0 < QB ? nq - q0 : QB;
		memset(j.fill, 0, QB * sizeof(int));
		j.q0 = q0;
		for (size_t b0 = 0; b0 < nb; b0 += BB) {
			j.b0 = b0;
			j.bn = nb - b0 < BB ? nb - b0 : BB;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)qn, (int)j.bn, d, 1.0f,
			            query + q0 * (size_t)d, d, bank + b0 * (size_t)d, d, 0.0f, sims,
			            (int)j.bn);
			nn_parallel((int)qn, score_row, &j);
		}
		for (size_t r = 0; r < qn; r++) {
			knn_hit *h = j.heaps + r * (size_t)k, *out = hits + (q0 + r) * (size_t)k;
			qsort(h, (size_t)j.fill[r], sizeof *h, by_rank);
			memcpy(out, h, (size_t)j.fill[r] * sizeof *h);
			for (int m = j.fill[r]; m < k; m++)
				out[m] = (knn_hit){ -INFINITY, -1 };
		}
	}
	free(sims);
	free(j.heaps);
	free(j.fill);
}

size_t knn_normalize(float *x, size_t n, int d)
{
	size_t zero = 0;

	for (size_t i = 0; i < n; i++) {
		float *r = x + i * (size_t)d;
		double s = 0;
		for (int c = 0; c < d; c++)
			s += (double)r[c] * r[c];
		if (s == 0) {
			zero++;
			continue;
		}
		float inv = (float)(1 / sqrt(s));
		for (int c = 0; c < d; c++)
			r[c] *= inv;
	}
	return zero;
}
