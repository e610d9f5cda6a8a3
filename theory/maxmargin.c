/* Max-margin solver: coordinate-ascent warm start, Lawson-Hanson active set on the dual, duality-gap stop. */
#include "maxmargin.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"

enum { CHECK_EVERY = 4, WARM_SWEEPS = 8 };
#define SHRINK_MARGIN 0.25   /* coordinate ascent sweeps examples with z.w < 1 + this */
#define KKT_SLACK 1e-11      /* margins >= 1 - this count as satisfied */

double mm_kappa(const double *w, const double *z, int64_t n, int d)
{
	double nw = cblas_dnrm2(d, w, 1), k = INFINITY;

	for (int64_t i = 0; i < n; i++) {
		double m = cblas_ddot(d, z + (size_t)i * (size_t)d, 1, w, 1);
		if (m < k)
			k = m;
	}
	return nw > 0 ? k / nw : 0;
}

static uint64_t xs_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

struct work {
	const double *z;
	int64_t n;
	int d;
	double *a, *m, *w, *q;      /* dual variables, margins Z w, weights, |z_i|^2 */
	int64_t *ord, nact;         /* coordinate-ascent order and active count */
	uint64_t rs;
	/* active set: rows in `set` (np of them), copies of their z in zs, Cholesky factor
	 * of their Gram matrix in l (stride d), their dual values ap, the subproblem solution s */
	int64_t *set;
	int np;
	double *zs, *l, *ap, *s, *g;
	char *in;
};

/* Certificate for the current a, w and margins m: returns the gap and sets the bounds. */
static double certificate(const struct work *k, double *klo, double *khi)
{
	double suma = 0, mmin = INFINITY, nw = cblas_dnrm2(k->d, k->w, 1), dual;

	for (int64_t i = 0; i < k->n; i++) {
		suma += k->a[i];
		if (k->m[i] < mmin)
			mmin = k->m[i];
	}
	dual = suma - 0.5 * nw * nw;
	*klo = nw > 0 && mmin > 0 ? mmin / nw : 0;
	*khi = dual > 0 ? 1 / sqrt(2 * dual) : INFINITY;
	if (!(*klo > 0))
		return INFINITY;
	return *khi / *klo - 1;
}

/* w = Z^T a and m = Z w, from scratch. */
static void refresh(struct work *k)
{
	cblas_dgemv(CblasRowMajor, CblasTrans, (int)k->n, k->d, 1.0, k->z, k->d, k->a, 1, 0.0, k->w, 1);
	cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)k->n, k->d, 1.0, k->z, k->d, k->w, 1, 0.0, k->m, 1);
}

/* One sweep of coordinate ascent, in a fresh random order, over the active examples. */
static void sweep(struct work *k)
{
	int d = k->d;

	for (int64_t j = k->nact - 1; j > 0; j--) {
		int64_t r = (int64_t)(xs_next(&k->rs) % (uint64_t)(j + 1)), t = k->ord[j];
		k->ord[j] = k->ord[r];
		k->ord[r] = t;
	}
	for (int64_t j = 0; j < k->nact; j++) {
		int64_t i = k->ord[j];
		const double *zi = k->z + (size_t)i * d;
		double g = cblas_ddot(d, zi, 1, k->w, 1) - 1, na = k->a[i] - g / k->q[i];
		if (na < 0)
			na = 0;
		if (na != k->a[i]) {
			cblas_daxpy(d, na - k->a[i], zi, 1, k->w, 1);
			k->a[i] = na;
		}
	}
}

/* Shrinking: sweep only support vectors and examples near the margin (needs fresh m). */
static void shrink(struct work *k, int all)
{
	k->nact = 0;
	for (int64_t i = 0; i < k->n; i++)
		if (all || k->a[i] > 0 || k->m[i] < 1 + SHRINK_MARGIN)
			k->ord[k->nact++] = i;
}

/* Cholesky factor of the Gram matrix of the np rows in zs, into l (stride d). 0 on success. */
static int chol_build(struct work *k)
{
	int np = k->np, d = k->d;
	double *l = k->l;

	if (np == 0)
		return 0;
	cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, np, d, 1.0, k->zs, d, 0.0, l, d);
	for (int j = 0; j < np; j++) {
		double s = l[(size_t)j * d + j], s0 = s;
		for (int p = 0; p < j; p++)
			s -= l[(size_t)j * d + p] * l[(size_t)j * d + p];
		if (!(s > 1e-12 * s0))
			return -1;
		s = sqrt(s);
		l[(size_t)j * d + j] = s;
		for (int i = j + 1; i < np; i++) {
			double t = l[(size_t)i * d + j];
			for (int p = 0; p < j; p++)
				t -= l[(size_t)i * d + p] * l[(size_t)j * d + p];
			l[(size_t)i * d + j] = t / s;
		}
	}
	return 0;
}

/* Append row i to the active set, extending the factor by one row. 0 on success. */
static int chol_add(struct work *k, int64_t i)
{
	int np = k->np, d = k->d;
	const double *zi = k->z + (size_t)i * d;
	double *row = k->l + (size_t)np * d, s;

	if (np >= d)
		return -1;
	if (np > 0)
		cblas_dgemv(CblasRowMajor, CblasNoTrans, np, d, 1.0, k->zs, d, zi, 1, 0.0, k->g, 1);
	for (int r = 0; r < np; r++) {
		double t = k->g[r];
		for (int p = 0; p < r; p++)
			t -= k->l[(size_t)r * d + p] * row[p];
		row[r] = t / k->l[(size_t)r * d + r];
	}
	s = k->q[i];
	for (int p = 0; p < np; p++)
		s -= row[p] * row[p];
	if (!(s > 1e-12 * k->q[i]))
		return -1;
	row[np] = sqrt(s);
	memcpy(k->zs + (size_t)np * d, zi, (size_t)d * sizeof(double));
	k->set[np] = i;
	k->ap[np] = 0;
	k->in[i] = 1;
	k->np++;
	return 0;
}

/* b = G^{-1} r on the active set, from the factor (r == NULL means all ones). */
static void chol_solve(struct work *k, const double *r, double *b)
{
	int np = k->np, d = k->d;
	const double *l = k->l;

	for (int i = 0; i < np; i++) {
		double t = r ? r[i] : 1;
		for (int p = 0; p < i; p++)
			t -= l[(size_t)i * d + p] * b[p];
		b[i] = t / l[(size_t)i * d + i];
	}
	for (int i = np - 1; i >= 0; i--) {
		double t = b[i];
		for (int p = i + 1; p < np; p++)
			t -= l[(size_t)p * d + i] * b[p];
		b[i] = t / l[(size_t)i * d + i];
	}
}

/*
 * The active set already has d rows (w is pinned by z_j.w = 1 on them) and row i violates
 * its margin.  Then z_i = sum_j c_j z_j with sum_j c_j = z_i.w < 1, and the direction
 * a_i += t, a_P -= t c leaves w alone and lowers the dual objective at rate 1 - sum c:
 * follow it until some a_j reaches 0 and swap i in for that j.  0 on success; -1 when no
 * a_j blocks (the data are not separable through the origin) or on rounding trouble.
 */
static int swap_in(struct work *k, int64_t i)
{
	int np = k->np, d = k->d, jb = -1;
	const double *zi = k->z + (size_t)i * d;
	double t = INFINITY;

	cblas_dgemv(CblasRowMajor, CblasNoTrans, np, d, 1.0, k->zs, d, zi, 1, 0.0, k->g, 1);
	chol_solve(k, k->g, k->s);        /* s = c */
	for (int j = 0; j < np; j++)
		if (k->s[j] > 0 && k->ap[j] / k->s[j] < t) {
			t = k->ap[j] / k->s[j];
			jb = j;
		}
	if (jb < 0)
		return -1;
	for (int j = 0; j < np; j++)
		k->ap[j] -= t * k->s[j];
	k->in[k->set[jb]] = 0;
	k->set[jb] = i;
	k->ap[jb] = t;
	k->in[i] = 1;
	memcpy(k->zs + (size_t)jb * d, zi, (size_t)d * sizeof(double));
	for (int j = 0; j < np; j++)
		if (j != jb && !(k->ap[j] > 0))
			k->ap[j] = 0;   /* rounding: the inner loop drops it */
	return chol_build(k);
}

static _Thread_local const double *sort_margins;
static int by_margin(const void *a, const void *b)
{
	int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
	double x = sort_margins[i], y = sort_margins[j];

	if (x != y)
		return x < y ? -1 : 1;
	return (i > j) - (i < j);
}

/*
 * Lawson-Hanson on the dual min a'Ga/2 - 1'a, a >= 0, started from the current a (which
 * is feasible).  The passive set's subproblem G_PP a_P = 1 is solved exactly; a step that
 * would make some a_j negative stops at the boundary and drops j; when the subproblem
 * solution is positive the most violated margin joins.  Ends at a KKT point (returns 0,
 * with a, w and m updated) or gives up on a numerical failure (returns -1, a unchanged).
 */
static int active_set(struct work *k, int64_t *steps)
{
	int64_t n = k->n, maxit = 20 * (int64_t)k->d + 100, it = 0;
	int d = k->d;

	if (n < 1)
		return -1;
	/* start from the coordinate-ascent point, keeping at most d - 1 of its support
	 * vectors (those with the smallest margins) so the Gram matrix stays invertible */
	{
		int64_t npos = 0;
		for (int64_t i = 0; i < n; i++)
			if (k->a[i] > 0)
				k->ord[npos++] = i;
		if (npos > d - 1) {
			sort_margins = k->m;
			qsort(k->ord, (size_t)npos, sizeof(int64_t), by_margin);
			npos = d - 1;
		}
		memset(k->in, 0, (size_t)n);
		for (int64_t j = 0; j < npos; j++) {
			int64_t i = k->ord[j];
			k->set[j] = i;
			k->ap[j] = k->a[i];
			memcpy(k->zs + (size_t)j * d, k->z + (size_t)i * d, (size_t)d * sizeof(double));
			k->in[i] = 1;
		}
		k->np = (int)npos;
		for (int64_t i = 0; i < n; i++)   /* ord is the sweep order: restore it */
			k->ord[i] = i;
		k->nact = n;
	}
	if (chol_build(k) != 0)
		return -1;
	for (;;) {
		int64_t worst = -1;
		double mmin;
		/* inner loop: reach the subproblem optimum without leaving a >= 0 */
		for (;;) {
			double step = 1;
			int jmin = -1, o = 0;
			if (++it > maxit)
				return -1;
			chol_solve(k, NULL, k->s);
			for (int j = 0; j < k->np; j++)
				if (!(k->s[j] > 0)) {
					double t = k->ap[j] / (k->ap[j] - k->s[j]);
					if (jmin < 0 || t < step) {
						step = t;
						jmin = j;
					}
				}
			if (jmin < 0) {
				memcpy(k->ap, k->s, (size_t)k->np * sizeof(double));
				break;
			}
			/* move to the boundary; the blocking index (and any that hit 0) leave */
			for (int j = 0; j < k->np; j++) {
				double v = k->ap[j] + step * (k->s[j] - k->ap[j]);
				if (j != jmin && v > 0) {
					k->set[o] = k->set[j];
					k->ap[o] = v;
					if (o != j)
						memcpy(k->zs + (size_t)o * d, k->zs + (size_t)j * d,
						       (size_t)d * sizeof(double));
					o++;
				} else {
					k->in[k->set[j]] = 0;
				}
			}
			k->np = o;
			if (chol_build(k) != 0)
				return -1;
		}
		/* margins of the subproblem solution; the most violated outsider joins */
		if (k->np > 0)
			cblas_dgemv(CblasRowMajor, CblasTrans, k->np, d, 1.0, k->zs, d, k->ap, 1, 0.0, k->w, 1);
		else
			memset(k->w, 0, (size_t)d * sizeof(double));
		cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)n, d, 1.0, k->z, d, k->w, 1, 0.0, k->m, 1);
		mmin = 1 - KKT_SLACK;
		for (int64_t i = 0; i < n; i++)
			if (!k->in[i] && k->m[i] < mmin) {
				mmin = k->m[i];
				worst = i;
			}
		(*steps)++;
		if (worst < 0)
			break;
		if (k->np < d ? chol_add(k, worst) : swap_in(k, worst))
			return -1;
	}
	memset(k->a, 0, (size_t)n * sizeof(double));
	for (int j = 0; j < k->np; j++)
		k->a[k->set[j]] = k->ap[j];
	return 0;
}

int mm_solve(double *w, const double *z, int64_t n, int d, const struct mm_opts *o,
             struct mm_result *res)
{
	struct work k = { .z = z, .n = n, .d = d, .nact = n };
	double klo = 0, khi = INFINITY, gap = INFINITY;
	int rc = 1, tried = !o->active_set;
	int64_t ep = 0;

	memset(res, 0, sizeof(*res));
	k.rs = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
	k.a = xcalloc((size_t)n, sizeof(double));
	k.m = xcalloc((size_t)n, sizeof(double));
	k.w = xcalloc((size_t)d, sizeof(double));
	k.q = xmalloc((size_t)n * sizeof(double));
	k.ord = xmalloc((size_t)n * sizeof(int64_t));
	k.set = xmalloc((size_t)n * sizeof(int64_t));
	k.in = xcalloc((size_t)n, 1);
	k.zs = xmalloc((size_t)d * (size_t)d * sizeof(double));
	k.l = xmalloc((size_t)d * (size_t)d * sizeof(double));
	k.ap = xmalloc((size_t)d * sizeof(double));
	k.s = xmalloc((size_t)d * sizeof(double));
	k.g = xmalloc((size_t)d * sizeof(double));

	for (int64_t i = 0; i < n; i++) {
		const double *zi = z + (size_t)i * d;
		k.q[i] = cblas_ddot(d, zi, 1, zi, 1);
		k.ord[i] = i;
		if (!(k.q[i] > 0)) {
			rc = 2;
			goto out;
		}
	}
	while (ep < o->max_epochs) {
		sweep(&k);
		ep++;
		if (ep % CHECK_EVERY && ep < o->max_epochs && (tried || ep < WARM_SWEEPS))
			continue;
		/* recompute w and the margins from a, so the certificate is honest */
		refresh(&k);
		gap = certificate(&k, &klo, &khi);
		if (gap <= o->tol) {
			rc = 0;
			break;
		}
		if (!tried && ep >= WARM_SWEEPS) {
			tried = 1;
			if (active_set(&k, &res->steps) == 0) {
				gap = certificate(&k, &klo, &khi);
				if (gap <= o->tol) {
					res->exact = 1;
					gap = gap < 0 ? 0 : gap;
					rc = 0;
					break;
				}
			}
			/* failed (rounding): go on with coordinate ascent from the best point */
			refresh(&k);
		}
		/* in the second half of the budget, sweep everything (plain coordinate ascent) */
		shrink(&k, 2 * ep >= o->max_epochs);
	}
out:
	memcpy(w, k.w, (size_t)d * sizeof(double));
	res->kappa = klo;
	res->kappa_hi = khi;
	res->gap = gap;
	res->epochs = ep;
	res->converged = rc == 0;
	for (int64_t i = 0; i < n; i++)
		res->nsv += k.a[i] > 0;
	free(k.a);
	free(k.m);
	free(k.w);
	free(k.q);
	free(k.ord);
	free(k.set);
	free(k.in);
	free(k.zs);
	free(k.l);
	free(k.ap);
	free(k.s);
	free(k.g);
	return rc;
}
