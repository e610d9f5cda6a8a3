/* Unit tests of nn/ssl: finite-difference gradients of the SSL losses and the head, Sinkhorn, k-NN against brute force. */
#include "check.h"
#include "ssl.h"
#include "layers.h"
#include "io.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rs = 20240607;

/* uniform in [-1, 1) on a grid of 2^-12, so that x +- h and x +- 2h are exact floats for
 * the power-of-two steps h used below */
static float frand(void)
{
	rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
	return (float)((int)(rs >> 51) - 4096) / 4096.0f;
}

static float *rnd(size_t n)
{
	float *p = xmalloc(sizeof(float) * (n ? n : 1));
	for (size_t i = 0; i < n; i++)
		p[i] = frand();
	return p;
}

static float *zeros(size_t n)
{
	return xcalloc(n ? n : 1, sizeof(float));
}

static double dot(const float *a, const float *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

/* ---- finite differences ---- */

typedef double (*lossfn)(void *ctx);

/* Set by a loss whose ReLU mask differs from the unperturbed one: that coordinate's
 * difference straddles a kink (see gradcheck). */
static int kinked;

/* dloss/dx[i] by the fourth-order central difference, in double */
static double numgrad(lossfn f, void *ctx, float *x, size_t i, float h)
{
	static const float off[4] = { -2, -1, 1, 2 };
	float keep = x[i];
	double v[4];

	for (int k = 0; k < 4; k++) {
		x[i] = keep + off[k] * h;
		v[k] = f(ctx);
	}
	x[i] = keep;
	return (8 * (v[2] - v[1]) - (v[3] - v[0])) / (12.0 * h);
}

/* Every coordinate of x: the worst |num - ana| / max(|num|, |ana|, 1e-2 * max|ana|).
 * A coordinate whose differences cross a ReLU kink is retried with steps h/4 and h/16,
 * its error scaled down by the step ratio (the rounding noise grows as 1/h); *skipped (if
 * not NULL) counts those still at a kink, left out. */
static double gradcheck(lossfn f, void *ctx, float *x, const float *ana, size_t n, float h,
                        int *skipped)
{
	double worst = 0, scale = 0;

	for (size_t i = 0; i < n; i++)
		if (fabs(ana[i]) > scale)
			scale = fabs(ana[i]);
	if (skipped)
		*skipped = 0;
	for (size_t i = 0; i < n; i++) {
		double num = 0, a = ana[i], hs = h;
		for (int try = 0; try < 3; try++, hs /= 4) {
			kinked = 0;
			num = numgrad(f, ctx, x, i, (float)hs);
			if (!kinked)
				break;
		}
		if (kinked) {
			if (skipped)
				++*skipped;
			continue;
		}
		double s = fmax(fmax(fabs(num), fabs(a)), 1e-2 * scale);
		double e = s > 0 ? fabs(num - a) / s * (hs / h) : 0;
		if (isnan(num - a))
			e = INFINITY;
		if (e > worst)
			worst = e;
	}
	return scale > 0 ? worst : INFINITY;   /* an all-zero gradient is a failure too */
}

/* The forwards are float32, so the differences carry rounding noise of about 1e-7 / h of the
 * loss' scale and the stencil a truncation error of h^4: 1/32 balances them (measured worst
 * 5e-4 over the checks below, at 1/128 it is 4x that). */
#define FD_H (1.0f / 32)
#define FD_TOL 2e-3

/* the largest |dloss/dx[i]| by finite differences, for gradients that should be zero */
static double fd_max(lossfn f, void *ctx, float *x, size_t n, float h)
{
	double m = 0;
	for (size_t i = 0; i < n; i++) {
		kinked = 0;
		double g = numgrad(f, ctx, x, i, h);
		if (!kinked)
			m = fmax(m, isnan(g) ? INFINITY : fabs(g));
	}
	return m;
}

static double max_abs(const float *a, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		m = fmax(m, isnan(a[i]) ? INFINITY : fabs(a[i]));
	return m;
}

/* ---- L2 normalisation ---- */

typedef struct {
	int n, d;
	float *x, *out, *norms, *r;
} l2_ctx;

static double l2_loss(void *p)
{
	l2_ctx *c = p;
	l2norm_forward(c->out, c->norms, c->x, c->n, c->d);
	return dot(c->out, c->r, (size_t)c->n * c->d);
}

static void test_l2norm(void)
{
	l2_ctx c = { .n = 6, .d = 5 };
	size_t N = (size_t)c.n * c.d;
	c.x = rnd(N);
	c.r = rnd(N);
	c.out = zeros(N);
	c.norms = zeros(c.n);
	l2_loss(&c);
	double worst = 0;
	for (int i = 0; i < c.n; i++) {
		double ss = 0, nx = sqrt(dot(c.x + i * c.d, c.x + i * c.d, c.d));
		for (int j = 0; j < c.d; j++)
			ss += (double)c.out[i * c.d + j] * c.out[i * c.d + j];
		worst = fmax(worst, fmax(fabs(ss - 1), fabs(c.norms[i] - nx) / nx));
	}
	CHECK(worst < 1e-6, "l2norm_forward: unit rows, norms saved (err %.1e)", worst);

	/* backward accumulates: din starts at 1 */
	float *din = zeros(N);
	for (size_t i = 0; i < N; i++)
		din[i] = 1;
	l2norm_backward(din, c.r, c.out, c.norms, c.n, c.d);
	for (size_t i = 0; i < N; i++)
		din[i] -= 1;
	double e = gradcheck(l2_loss, &c, c.x, din, N, FD_H, NULL);
	CHECK(e < FD_TOL, "l2norm_backward vs finite differences (rel err %.1e)", e);

	/* a zero row: out 0, norm clamped, finite gradient */
	memset(c.x, 0, sizeof(float) * c.d);
	l2_loss(&c);
	memset(din, 0, sizeof(float) * N);
	l2norm_backward(din, c.r, c.out, c.norms, c.n, c.d);
	int finite = 1;
	for (size_t i = 0; i < N; i++)
		finite &= isfinite(din[i]) && (i >= (size_t)c.d || c.out[i] == 0);
	CHECK(finite && c.norms[0] == 1e-12f, "l2norm of a zero row: zero output, norm 1e-12");
	free(c.x); free(c.r); free(c.out); free(c.norms); free(din);
}

/* ---- NT-Xent ---- */

typedef struct {
	int n, d;
	float t;
	float *z, *zn, *norms, *prob;
} nt_ctx;

static double nt_loss(void *p)
{
	nt_ctx *c = p;
	l2norm_forward(c->zn, c->norms, c->z, 2 * c->n, c->d);
	return ntxent_forward(c->prob, c->zn, c->n, c->d, c->t);
}

/* the loss in double from the definition */
static double nt_ref(const float *zn, int n, int d, double t)
{
	int m = 2 * n;
	double loss = 0;
	for (int i = 0; i < m; i++) {
		double sum = 0, pos = 0;
		for (int j = 0; j < m; j++) {
			double s = dot(zn + i * d, zn + j * d, d) / t;
			if (j != i)
				sum += exp(s);
			if (j == (i + n) % m)
				pos = s;
		}
		loss += log(sum) - pos;
	}
	return loss / m;
}

static void test_ntxent(float t)
{
	nt_ctx c = { .n = 3, .d = 5, .t = t };
	int m = 2 * c.n;
	size_t N = (size_t)m * c.d;
	c.z = rnd(N);
	c.zn = zeros(N);
	c.norms = zeros(m);
	c.prob = zeros((size_t)m * m);
	double loss = nt_loss(&c), ref = nt_ref(c.zn, c.n, c.d, t);
	double worst = 0;
	for (int i = 0; i < m; i++) {
		double s = 0;
		for (int j = 0; j < m; j++)
			s += c.prob[i * m + j];
		worst = fmax(worst, fabs(s - 1) + fabs(c.prob[i * m + i]));
	}
	CHECK(fabs(loss - ref) < 1e-5 * fabs(ref) && worst < 1e-5,
	      "ntxent_forward t=%g: loss %.7f vs double %.7f, prob rows sum to 1, diagonal 0", t,
	      loss, ref);

	/* the loss of the raw z: ntxent_backward then l2norm_backward */
	float *dzn = zeros(N), *dz = zeros(N);
	ntxent_backward(dzn, c.prob, c.zn, c.n, c.d, t);
	l2norm_backward(dz, dzn, c.zn, c.norms, m, c.d);
	double e = gradcheck(nt_loss, &c, c.z, dz, N, FD_H, NULL);
	CHECK(e < FD_TOL, "ntxent_backward through l2norm t=%g vs finite differences (rel err %.1e)",
	      t, e);
	/* accumulates (the differences left perturbed activations behind) */
	nt_loss(&c);
	float *dzn2 = zeros(N);
	memcpy(dzn2, dzn, sizeof(float) * N);
	ntxent_backward(dzn2, c.prob, c.zn, c.n, c.d, t);
	worst = 0;
	for (size_t i = 0; i < N; i++)
		worst = fmax(worst, fabs(dzn2[i] - 2 * dzn[i]));
	CHECK(worst < 1e-6 * max_abs(dzn, N), "ntxent_backward accumulates");
	free(c.z); free(c.zn); free(c.norms); free(c.prob); free(dzn); free(dz); free(dzn2);
}

static void test_pair_accuracy(void)
{
	/* n = 3: 0/3 and 1/4 are each other's nearest (hits); 2 is nearest to 3, the row after
	 * it, and 5 to 1 (misses): 4 of 6 */
	const float s = 0.8944272f, w = 0.4472136f;   /* 2/sqrt(5), 1/sqrt(5) */
	const float a = 0.9950372f, e = 0.0995037f;   /* (1, 0.1) / |(1, 0.1)| */
	float zn[6 * 4] = {
		1, 0, 0, 0,
		0, 1, 0, 0,
		w, 0, s, 0,
		a, 0, e, 0,
		0, 1, 0, 0,
		0, w, 0, s,
	};
	float prob[36];
	ntxent_forward(prob, zn, 3, 4, 0.5f);
	double acc = ntxent_pair_accuracy(prob, 3);
	CHECK(fabs(acc - 4.0 / 6) < 1e-12, "ntxent_pair_accuracy of a constructed case: %.4f, want "
	      "0.6667", acc);
	/* make 2 and 5 each other's nearest: all hits */
	zn[3 * 4 + 0] = 1, zn[3 * 4 + 2] = 0;
	zn[5 * 4 + 0] = w, zn[5 * 4 + 1] = 0, zn[5 * 4 + 2] = s, zn[5 * 4 + 3] = 0;
	ntxent_forward(prob, zn, 3, 4, 0.5f);
	acc = ntxent_pair_accuracy(prob, 3);
	CHECK(acc == 1.0, "ntxent_pair_accuracy when every pair is nearest: %.4f", acc);
}

/* ---- Sinkhorn ---- */

/* SwAV's distributed_sinkhorn in double, without the max shift */
static void sinkhorn_ref(double *codes, const float *scores, int b, int k, double eps, int iters)
{
	double *q = xmalloc(sizeof(double) * (size_t)b * k), sum = 0;
	for (int i = 0; i < b * k; i++)
		sum += q[i] = exp(scores[i] / eps);
	for (int i = 0; i < b * k; i++)
		q[i] /= sum;
	for (int it = 0; it < iters; it++) {
		for (int c = 0; c < k; c++) {
			double r = 0;
			for (int i = 0; i < b; i++)
				r += q[i * k + c];
			for (int i = 0; i < b; i++)
				q[i * k + c] /= r * k;
		}
		for (int i = 0; i < b; i++) {
			double r = 0;
			for (int c = 0; c < k; c++)
				r += q[i * k + c];
			for (int c = 0; c < k; c++)
				q[i * k + c] /= r * b;
		}
	}
	for (int i = 0; i < b * k; i++)
		codes[i] = q[i] * b;
	free(q);
}

static void test_sinkhorn(void)
{
	enum { b = 6, k = 4 };
	float *scores = rnd(b * k), codes[b * k], shifted[b * k], codes2[b * k];
	double ref[b * k];

	sinkhorn(codes, scores, b, k, 0.05f, 3);
	sinkhorn_ref(ref, scores, b, k, 0.05, 3);
	double e = 0, rows = 0;
	for (int i = 0; i < b * k; i++)
		e = fmax(e, fabs(codes[i] - ref[i]));
	for (int i = 0; i < b; i++) {
		double s = 0;
		for (int c = 0; c < k; c++)
			s += codes[i * k + c];
		rows = fmax(rows, fabs(s - 1));
	}
	CHECK(e < 1e-6, "sinkhorn eps 0.05, 3 iterations == SwAV's algorithm in double (err %.1e)", e);
	CHECK(rows < 1e-6, "sinkhorn: each sample's code sums to 1 (err %.1e)", rows);
	for (int i = 0; i < b * k; i++)
		shifted[i] = scores[i] + 0.75f;
	sinkhorn(codes2, shifted, b, k, 0.05f, 3);
	CHECK(max_rel_err(codes2, codes, b * k, 1e-3) < 1e-5, "sinkhorn: invariant to a shift of "
	      "the scores");

	/* converged: the prototypes share the batch equally, b/k each */
	sinkhorn(codes, scores, b, k, 0.05f, 2000);
	double cols = 0;
	rows = 0;
	for (int c = 0; c < k; c++) {
		double s = 0;
		for (int i = 0; i < b; i++)
			s += codes[i * k + c];
		cols = fmax(cols, fabs(s - (double)b / k));
	}
	for (int i = 0; i < b; i++) {
		double s = 0;
		for (int c = 0; c < k; c++)
			s += codes[i * k + c];
		rows = fmax(rows, fabs(s - 1));
	}
	CHECK(rows < 1e-6 && cols < 1e-4, "sinkhorn, 2000 iterations: rows sum to 1 (err %.1e), "
	      "columns to b/k = %.2f (err %.1e)", rows, (double)b / k, cols);
	free(scores);
}

/* ---- SwAV ---- */

typedef struct {
	int n, d, k;
	float t;
	float *z, *zn, *norms, *w, *scores, *codes, *prob;
} sw_ctx;

/* the swapped loss of raw z[2n,d] and prototypes w[k,d] with the codes held fixed */
static double sw_loss(void *p)
{
	sw_ctx *c = p;
	int m = 2 * c->n;
	l2norm_forward(c->zn, c->norms, c->z, m, c->d);
	linear_forward(c->scores, c->zn, c->w, NULL, m, c->d, c->k);
	return swav_forward(c->prob, c->scores, c->codes, c->n, c->k, c->t);
}

static double sw_scores_loss(void *p)
{
	sw_ctx *c = p;
	return swav_forward(c->prob, c->scores, c->codes, c->n, c->k, c->t);
}

static void test_swav(float t)
{
	sw_ctx c = { .n = 3, .d = 5, .k = 4, .t = t };
	int m = 2 * c.n;
	size_t nz = (size_t)m * c.d, nw = (size_t)c.k * c.d, ns = (size_t)m * c.k;
	float *wn = zeros(c.k);
	c.z = rnd(nz);
	c.w = rnd(nw);
	l2norm_forward(c.w, wn, c.w, c.k, c.d);        /* SwAV's normalised prototypes */
	c.zn = zeros(nz);
	c.norms = zeros(m);
	c.scores = zeros(ns);
	c.codes = zeros(ns);
	c.prob = zeros(ns);
	sw_loss(&c);
	sinkhorn(c.codes, c.scores, c.n, c.k, 0.05f, 3);
	sinkhorn(c.codes + (size_t)c.n * c.k, c.scores + (size_t)c.n * c.k, c.n, c.k, 0.05f, 3);
	double loss = sw_loss(&c), ref = 0;
	for (int i = 0; i < m; i++) {
		const float *s = c.scores + (size_t)i * c.k;
		const float *q = c.codes + (size_t)((i + c.n) % m) * c.k;
		double lse = 0;
		for (int j = 0; j < c.k; j++)
			lse += exp(s[j] / (double)t);
		for (int j = 0; j < c.k; j++)
			ref -= q[j] * (s[j] / (double)t - log(lse));
	}
	ref /= m;
	CHECK(fabs(loss - ref) < 1e-6 * fabs(ref), "swav_forward t=%g: loss %.7f vs double %.7f", t,
	      loss, ref);

	/* the scores alone */
	float *ds = zeros(ns), *dzn = zeros(nz), *dz = zeros(nz), *dw = zeros(nw);
	swav_backward(ds, c.prob, c.codes, c.n, c.k, t);
	double e = gradcheck(sw_scores_loss, &c, c.scores, ds, ns, FD_H, NULL);
	CHECK(e < FD_TOL, "swav_backward (codes fixed) vs finite differences t=%g (rel err %.1e)", t,
	      e);
	/* through the prototypes and the normalisation: scores = zn w^T */
	linear_backward(dzn, dw, NULL, ds, c.zn, c.w, m, c.d, c.k, NN_OVERWRITE);
	l2norm_backward(dz, dzn, c.zn, c.norms, m, c.d);
	e = gradcheck(sw_loss, &c, c.z, dz, nz, FD_H, NULL);
	CHECK(e < FD_TOL, "swav loss of raw z through prototypes and l2norm, t=%g (rel err %.1e)", t,
	      e);
	e = gradcheck(sw_loss, &c, c.w, dw, nw, FD_H, NULL);
	CHECK(e < FD_TOL, "swav loss: prototype gradient via linear_backward, t=%g (rel err %.1e)", t,
	      e);
	free(c.z); free(c.zn); free(c.norms); free(c.w); free(c.scores); free(c.codes);
	free(c.prob); free(wn); free(ds); free(dzn); free(dz); free(dw);
}

/* ---- the projection head ---- */

typedef struct {
	nn_head *h;
	int n;
	float *x, *r;                /* r: dloss/dz for the plain head loss sum(z * r) */
	unsigned char *mask;         /* ReLU mask of the unperturbed forward */
	/* the SwAV pipeline: z -> l2norm -> prototypes -> swapped loss, codes fixed */
	float *zn, *norms, *scores, *codes, *prob;
	float t;
} head_ctx;

static void note_mask(head_ctx *c, int save)
{
	size_t nh = (size_t)c->n * (size_t)c->h->hidden;
	for (size_t i = 0; i < nh; i++) {
		unsigned char on = c->h->hr[i] > 0;
		if (save)
			c->mask[i] = on;
		else if (on != c->mask[i])
			kinked = 1;
	}
}

static double head_loss(void *p)
{
	head_ctx *c = p;
	const float *z = nn_head_forward(c->h, c->x, c->n);
	note_mask(c, 0);
	return dot(z, c->r, (size_t)c->n * c->h->out);
}

static double head_swav_loss(void *p)
{
	head_ctx *c = p;
	nn_head *h = c->h;
	const float *z = nn_head_forward(h, c->x, c->n);
	note_mask(c, 0);
	l2norm_forward(c->zn, c->norms, z, c->n, h->out);
	linear_forward(c->scores, c->zn, nn_head_data(h, &h->t[h->proto]), NULL, c->n, h->out,
	               h->nproto);
	return swav_forward(c->prob, c->scores, c->codes, c->n / 2, h->nproto, c->t);
}

/* Random parameters (BN gamma around 1, beta and running stats random), as the test of
 * every parameter's gradient wants them all to matter. */
static void randomize_head(nn_head *h)
{
	for (int i = 0; i < h->nt; i++) {
		const nn_tensor *t = &h->t[i];
		if (t->kind == NN_COUNTER)
			continue;
		float *d = nn_head_data(h, t);
		for (size_t j = 0; j < t->numel; j++) {
			d[j] = frand();
			if (i == h->gamma || i == h->run_var)
				d[j] = 1.0f + 0.5f * d[j];
		}
	}
	nn_head_normalize_prototypes(h);
}

static void test_head_layout(void)
{
	nn_head *h = nn_head_create(6, 10, 5, 7, 42), *h0 = nn_head_create(6, 0, 5, 0, 42);
	nn_head *same = nn_head_create(6, 10, 5, 7, 42), *other = nn_head_create(6, 10, 5, 7, 43);
	static const char *want[] = {
		"projection_head.0.weight", "projection_head.0.bias", "projection_head.1.weight",
		"projection_head.1.bias", "projection_head.1.running_mean",
		"projection_head.1.running_var", "projection_head.1.num_batches_tracked",
		"projection_head.3.weight", "projection_head.3.bias", "prototypes.weight",
	};
	int ok = h->nt == 10;
	for (int i = 0; ok && i < h->nt; i++)
		ok = strcmp(h->t[i].name, want[i]) == 0;
	ok = ok && h->t[h->w1].shape[0] == 10 && h->t[h->w1].shape[1] == 6 &&
	     h->t[h->w2].shape[0] == 5 && h->t[h->w2].shape[1] == 10 &&
	     h->t[h->proto].shape[0] == 7 && h->t[h->proto].shape[1] == 5 &&
	     h->nparams == 60 + 10 + 10 + 10 + 50 + 5 + 35 && h->nbuffers == 20;
	CHECK(ok, "nn_head tensors named and shaped as torch's projection_head + prototypes");
	ok = h0->nt == 2 && !strcmp(h0->t[0].name, "projection_head.0.weight") &&
	     !strcmp(h0->t[1].name, "projection_head.0.bias") && h0->t[0].shape[0] == 5 &&
	     h0->t[0].shape[1] == 6 && h0->proto < 0 && h0->nparams == 35;
	CHECK(ok, "nn_head hidden 0: one Linear named projection_head.0");

	/* init: Linear within +-1/sqrt(fan_in), BN 1/0 and 0/1, unit prototypes, seeded */
	double b1 = 1 / sqrt(6.0), b2 = 1 / sqrt(10.0), worst = 0;
	const float *p;
	ok = 1;
	/* uniform in +-bound: every value inside, the largest of 50-60 near it */
	p = nn_head_data(h, &h->t[h->w1]);
	ok &= max_abs(p, 60) <= b1 && max_abs(p, 60) > 0.9 * b1;
	p = nn_head_data(h, &h->t[h->w2]);
	ok &= max_abs(p, 50) <= b2 && max_abs(p, 50) > 0.9 * b2;
	for (int i = 0; i < 10; i++)
		ok &= nn_head_data(h, &h->t[h->gamma])[i] == 1 && nn_head_data(h, &h->t[h->beta])[i] == 0 &&
		      nn_head_data(h, &h->t[h->run_mean])[i] == 0 &&
		      nn_head_data(h, &h->t[h->run_var])[i] == 1;
	p = nn_head_data(h, &h->t[h->proto]);
	for (int i = 0; i < 7; i++)
		worst = fmax(worst, fabs(dot(p + i * 5, p + i * 5, 5) - 1));
	CHECK(ok && worst < 1e-6, "nn_head init: Linear bounds 1/sqrt(fan_in), BN 1/0, unit "
	      "prototypes");
	CHECK(memcmp(h->params, same->params, sizeof(float) * h->nparams) == 0 &&
	      memcmp(h->params, other->params, sizeof(float) * h->nparams) != 0,
	      "nn_head init is deterministic in the seed");
	nn_head_free(h); nn_head_free(h0); nn_head_free(same); nn_head_free(other);
}

/* The first Linear's bias feeds batch norm, which subtracts it again: its true gradient is
 * zero, so a relative check means nothing. Both the analytic and the numerical gradient
 * must be zero next to the weight's. */
static void zero_bias_check(lossfn f, head_ctx *c, const char *what)
{
	nn_head *h = c->h;
	const nn_tensor *tb = &h->t[h->b1], *tw = &h->t[h->w1];
	double gw = max_abs(h->grads + tw->off, tw->numel), ga = max_abs(h->grads + tb->off, tb->numel);
	double gn = fd_max(f, c, nn_head_data(h, tb), tb->numel, FD_H);
	CHECK(ga <= 1e-5 * gw && gn <= 1e-3 * gw, "%s: d %s is zero before BN (analytic %.1e, "
	      "numerical %.1e, d weight %.1e)", what, tb->name, ga, gn, gw);
}

/* The training forward in double from the definitions: Linear, BatchNorm1d on the batch's
 * mean and biased variance (eps 1e-5), ReLU, Linear; and the running stats torch keeps
 * (momentum 0.1, unbiased variance). rm, rv: the running stats before the forward. */
static void test_head_forward(nn_head *h, const float *x, int n, const float *rm, const float *rv)
{
	int H = h->hidden, O = h->out, I = h->in;
	const float *w1 = nn_head_data(h, &h->t[h->w1]), *b1 = nn_head_data(h, &h->t[h->b1]);
	const float *g = nn_head_data(h, &h->t[h->gamma]), *be = nn_head_data(h, &h->t[h->beta]);
	const float *w2 = nn_head_data(h, &h->t[h->w2]), *b2 = nn_head_data(h, &h->t[h->b2]);
	const float *nrm = nn_head_data(h, &h->t[h->run_mean]), *nrv = nn_head_data(h, &h->t[h->run_var]);
	double *a = xmalloc(sizeof(double) * n * H), ez = 0, es = 0, sz = 0;
	for (int i = 0; i < n; i++)
		for (int o = 0; o < H; o++) {
			a[i * H + o] = b1[o];
			for (int k = 0; k < I; k++)
				a[i * H + o] += (double)x[i * I + k] * w1[o * I + k];
		}
	for (int o = 0; o < H; o++) {
		double m = 0, v = 0;
		for (int i = 0; i < n; i++)
			m += a[i * H + o] / n;
		for (int i = 0; i < n; i++)
			v += (a[i * H + o] - m) * (a[i * H + o] - m) / n;
		for (int i = 0; i < n; i++)
			a[i * H + o] = fmax(0, g[o] * (a[i * H + o] - m) / sqrt(v + 1e-5) + be[o]);
		es = fmax(es, fabs(nrm[o] - (0.9 * rm[o] + 0.1 * m)));
		es = fmax(es, fabs(nrv[o] - (0.9 * rv[o] + 0.1 * v * n / (n - 1))));
	}
	for (int i = 0; i < n; i++)
		for (int o = 0; o < O; o++) {
			double z = b2[o];
			for (int k = 0; k < H; k++)
				z += a[i * H + k] * w2[o * H + k];
			ez = fmax(ez, fabs(h->z[i * O + o] - z));
			sz = fmax(sz, fabs(z));
		}
	CHECK(ez < 1e-5 * sz, "nn_head_forward == Linear-BN-ReLU-Linear in double (err %.1e)",
	      ez / sz);
	CHECK(es < 1e-6, "nn_head_forward: BN running stats, momentum 0.1, unbiased var (err %.1e)",
	      es);
	free(a);
}

/* dx and every parameter gradient of sum(z * r) */
static void test_head_grad(int hidden)
{
	head_ctx c = { .n = 8 };
	nn_head *h = c.h = nn_head_create(6, hidden, 5, 0, 7);
	size_t nx = (size_t)c.n * h->in, nz = (size_t)c.n * h->out;
	nn_head_setup(h, c.n);
	randomize_head(h);
	c.x = rnd(nx);
	c.r = rnd(nz);
	c.mask = xcalloc((size_t)c.n * (hidden ? hidden : 1), 1);
	int64_t nbt0 = hidden ? h->counters[0] : 0;
	float rm[16], rv[16];
	if (hidden) {
		memcpy(rm, nn_head_data(h, &h->t[h->run_mean]), sizeof(float) * hidden);
		memcpy(rv, nn_head_data(h, &h->t[h->run_var]), sizeof(float) * hidden);
	}
	nn_head_forward(h, c.x, c.n);
	note_mask(&c, 1);
	if (hidden) {
		CHECK(h->counters[0] == nbt0 + 1, "nn_head_forward counts num_batches_tracked");
		test_head_forward(h, c.x, c.n, rm, rv);
	}
	float *dx = zeros(nx);
	nn_head_zero_grad(h);
	nn_head_backward(h, dx, c.r, c.x, c.n);

	double e;
	int skipped, total_skipped = 0;
	e = gradcheck(head_loss, &c, c.x, dx, nx, FD_H, &skipped);
	total_skipped += skipped;
	CHECK(e < FD_TOL, "nn_head hidden %d: dx vs finite differences (rel err %.1e)", hidden, e);
	for (int i = 0; i < h->nt; i++) {
		const nn_tensor *t = &h->t[i];
		if (t->kind != NN_PARAM)
			continue;
		if (i == h->b1) {
			zero_bias_check(head_loss, &c, "nn_head");
			continue;
		}
		e = gradcheck(head_loss, &c, nn_head_data(h, t), h->grads + t->off, t->numel, FD_H,
		              &skipped);
		total_skipped += skipped;
		CHECK(e < FD_TOL, "nn_head hidden %d: d %s (rel err %.1e%s)", hidden, t->name, e,
		      skipped ? ", some coordinates at a ReLU kink skipped" : "");
	}
	if (total_skipped)
		printf("# hidden %d: %d coordinates skipped at ReLU kinks\n", hidden, total_skipped);

	/* accumulation: a second backward doubles every gradient and dx; dx NULL is allowed */
	float *g1 = xmalloc(sizeof(float) * h->nparams), *dx1 = xmalloc(sizeof(float) * nx);
	memcpy(g1, h->grads, sizeof(float) * h->nparams);
	memcpy(dx1, dx, sizeof(float) * nx);
	nn_head_forward(h, c.x, c.n);
	nn_head_backward(h, dx, c.r, c.x, c.n);
	nn_head_backward(h, NULL, c.r, c.x, c.n);
	double worst = 0;
	for (int i = 0; i < h->nt; i++) {
		const nn_tensor *t = &h->t[i];
		if (t->kind != NN_PARAM)
			continue;
		/* (the bias before BN is rounding noise around zero: on the scale of all) */
		double s = fmax(max_abs(g1 + t->off, t->numel), 1e-3 * max_abs(g1, h->nparams));
		for (size_t j = 0; j < t->numel; j++)
			worst = fmax(worst, fabs(h->grads[t->off + j] - 3 * g1[t->off + j]) / s);
	}
	for (size_t i = 0; i < nx; i++)
		worst = fmax(worst, fabs(dx[i] - 2 * dx1[i]) / max_abs(dx1, nx));
	CHECK(worst < 1e-4, "nn_head_backward accumulates gradients and dx (hidden %d, err %.1e)",
	      hidden, worst);
	nn_head_zero_grad(h);
	worst = 0;
	for (size_t i = 0; i < h->nparams; i++)
		worst = fmax(worst, fabs(h->grads[i]));
	CHECK(worst == 0, "nn_head_zero_grad");
	nn_head_free(h);
	free(c.x); free(c.r); free(c.mask); free(dx); free(g1); free(dx1);
}

/* the whole SwAV step: x -> head -> l2norm -> prototypes -> swapped loss */
static void test_head_swav(void)
{
	head_ctx c = { .n = 8, .t = 0.1f };
	nn_head *h = c.h = nn_head_create(6, 10, 5, 4, 9);
	size_t nx = (size_t)c.n * h->in, nz = (size_t)c.n * h->out, ns = (size_t)c.n * h->nproto;
	nn_head_setup(h, c.n);
	randomize_head(h);
	c.x = rnd(nx);
	c.mask = xcalloc((size_t)c.n * h->hidden, 1);
	c.zn = zeros(nz);
	c.norms = zeros(c.n);
	c.scores = zeros(ns);
	c.codes = zeros(ns);
	c.prob = zeros(ns);
	head_swav_loss(&c);
	note_mask(&c, 1);
	int half = c.n / 2;
	sinkhorn(c.codes, c.scores, half, h->nproto, 0.05f, 3);
	sinkhorn(c.codes + (size_t)half * h->nproto, c.scores + (size_t)half * h->nproto, half,
	         h->nproto, 0.05f, 3);
	head_swav_loss(&c);

	float *ds = zeros(ns), *dzn = zeros(nz), *dz = zeros(nz), *dx = zeros(nx);
	const float *proto = nn_head_data(h, &h->t[h->proto]);
	nn_head_zero_grad(h);
	swav_backward(ds, c.prob, c.codes, half, h->nproto, c.t);
	linear_backward(dzn, h->grads + h->t[h->proto].off, NULL, ds, c.zn, proto, c.n, h->out,
	                h->nproto, NN_OVERWRITE);
	l2norm_backward(dz, dzn, c.zn, c.norms, c.n, h->out);
	nn_head_backward(h, dx, dz, c.x, c.n);

	int skipped;
	double e = gradcheck(head_swav_loss, &c, c.x, dx, nx, FD_H, &skipped);
	CHECK(e < FD_TOL, "head + SwAV loss: dx (rel err %.1e)", e);
	for (int i = 0; i < h->nt; i++) {
		const nn_tensor *t = &h->t[i];
		if (t->kind != NN_PARAM)
			continue;
		if (i == h->b1) {
			zero_bias_check(head_swav_loss, &c, "head + SwAV loss");
			continue;
		}
		e = gradcheck(head_swav_loss, &c, nn_head_data(h, t), h->grads + t->off, t->numel,
		              FD_H, &skipped);
		CHECK(e < FD_TOL, "head + SwAV loss: d %s (rel err %.1e%s)", t->name, e,
		      skipped ? ", some coordinates at a ReLU kink skipped" : "");
	}
	nn_head_free(h);
	free(c.x); free(c.mask); free(c.zn); free(c.norms); free(c.scores); free(c.codes);
	free(c.prob); free(ds); free(dzn); free(dz); free(dx);
}

/* ---- weighted k-NN ---- */

typedef struct {
	double sim;
	int idx;
} ranked;

static int by_sim(const void *a, const void *b)
{
	const ranked *x = a, *y = b;
	if (x->sim != y->sim)
		return x->sim > y->sim ? -1 : 1;
	return x->idx - y->idx;
}

/* Brute force in double: sort the whole bank, vote. *ambiguous is set when the k-th and
 * (k+1)-th similarities or the two best votes are too close for float32 to be sure. */
static int knn_ref(const float *q, const float *bank, const int *labels, int nb, int d,
                   int classes, int k, double t, ranked *r, double *votes, int *ambiguous)
{
	for (int i = 0; i < nb; i++) {
		r[i].sim = dot(q, bank + (size_t)i * d, d);
		r[i].idx = i;
	}
	qsort(r, nb, sizeof *r, by_sim);
	*ambiguous = k < nb && r[k - 1].sim - r[k].sim < 1e-5;
	memset(votes, 0, sizeof(double) * classes);
	for (int i = 0; i < k; i++)
		votes[labels[r[i].idx]] += exp(r[i].sim / t);
	int best = 0;
	for (int c = 1; c < classes; c++)
		if (votes[c] > votes[best])
			best = c;
	for (int c = 0; c < classes; c++)
		if (c != best && votes[best] - votes[c] < 1e-5 * votes[best])
			*ambiguous = 1;
	return best;
}

static void knn_against_ref(const int *pred, const float *query, int nq, const float *bank,
                            const int *labels, int nb, int d, int classes, const int *ks, int nk,
                            float t, ranked *r, double *votes)
{
	int bad = 0, amb = 0, shown = 0;
	char kl[64] = "";
	for (int j = 0; j < nk; j++) {
		snprintf(kl + strlen(kl), sizeof kl - strlen(kl), "%s%d", j ? "," : "", ks[j]);
		for (int q = 0; q < nq; q++) {
			int a, want = knn_ref(query + (size_t)q * d, bank, labels, nb, d, classes, ks[j],
			                      t, r, votes, &a);
			if (a) {
				amb++;
				continue;
			}
			if (pred[j * nq + q] != want) {
				bad++;
				if (shown++ < 5)
					printf("# knn k=%d query %d: cull %d, brute force %d\n", ks[j], q,
					       pred[j * nq + q], want);
			}
		}
	}
	CHECK(bad == 0, "knn_classify == brute force in double, k in {%s} of %d, %d queries (%d "
	      "mismatches, %d too close to call skipped)", kl, nb, nq, bad, amb);
}

static void test_knn(void)
{
	enum { nq = 150, nb = 300, d = 16, classes = 7, nk = 5 };
	/* unsorted, so the vote restarts; the second set keeps every k below nb, so that the
	 * top k come from the heap rather than a sort of the whole bank */
	const int sets[2][nk] = { { 20, 1, 5, nb, 200 }, { 10, 3, 1, 7, 3 } };
	const float t = 0.07f;
	float *query = rnd((size_t)nq * d), *bank = rnd((size_t)nb * d), *nrm = zeros(nb);
	int *labels = xmalloc(sizeof(int) * nb), *p1 = xmalloc(sizeof(int) * nq * nk);
	int *p2 = xmalloc(sizeof(int) * nq * nk);
	ranked *r = xmalloc(sizeof *r * nb);
	double votes[classes];

	/* labels follow the first coordinate a little, so the votes are not all noise */
	for (int i = 0; i < nb; i++)
		labels[i] = (int)((bank[(size_t)i * d] + 1) * 3.49f) % classes;
	l2norm_forward(query, nrm, query, nq, d);
	l2norm_forward(bank, nrm, bank, nb, d);
	for (int s = 0; s < 2; s++) {
		const int *ks = sets[s];
		nn_set_threads(1);
		knn_classify(p1, query, nq, bank, labels, nb, d, classes, ks, nk, t);
		nn_set_threads(2);
		for (int i = 0; i < nq * nk; i++)
			p2[i] = -1;
		knn_classify(p2, query, nq, bank, labels, nb, d, classes, ks, nk, t);
		CHECK(memcmp(p1, p2, sizeof(int) * nq * nk) == 0, "knn_classify: 1 and 2 threads agree "
		      "(k up to %d)", s ? 10 : nb);
		knn_against_ref(p1, query, nq, bank, labels, nb, d, classes, ks, nk, t, r, votes);
	}
	nn_set_threads(1);

	/* exact ties: two copies of the nearest row labelled 5 and 2, and two of the third
	 * nearest labelled 5 and 2, vote equally for 5 and 2 at k = 2, 5, 6 (the second nearest
	 * row votes for 6, the last for 0): the smaller label wins */
	float tb[6 * 3] = {
		0, 0.6f, 0.8f,
		0.6f, 0.8f, 0,
		0.6f, 0.8f, 0,
		0, 0.6f, 0.8f,
		0, 0, 1,
		1, 0, 0,
	};
	float tq[3] = { 0.6f, 0.8f, 0 };
	int tl[6] = { 5, 5, 2, 2, 0, 6 }, tk[3] = { 2, 5, 6 }, tp[3];
	knn_classify(tp, tq, 1, tb, tl, 6, 3, 7, tk, 3, 0.1f);
	CHECK(tp[0] == 2 && tp[1] == 2 && tp[2] == 2, "knn_classify: equal votes go to the smaller "
	      "label (got %d %d %d, want 2 2 2)", tp[0], tp[1], tp[2]);
	free(query); free(bank); free(nrm); free(labels); free(p1); free(p2); free(r);
}

int main(void)
{
	nn_set_threads(1);
	test_l2norm();
	test_ntxent(0.5f);
	test_ntxent(0.1f);
	test_pair_accuracy();
	test_sinkhorn();
	test_swav(0.1f);
	test_swav(1.0f);
	test_head_layout();
	test_head_grad(10);
	test_head_grad(0);
	test_head_swav();
	test_knn();
	return CHECK_DONE();
}
