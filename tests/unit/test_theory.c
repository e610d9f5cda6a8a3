/* Unit tests for bench/theory: the max-margin solver against Wolfe's min-norm-point algorithm, and E = arccos(R)/pi. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "check.h"
#include "io.h"
#include "maxmargin.h"

static uint64_t rs = 88172645463325252ULL;

static double unif(void)   /* in (0, 1) */
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return ((double)(rs >> 11) + 0.5) * 0x1.0p-53;
}

static double gauss(void)
{
	return sqrt(-2 * log(unif())) * cos(2 * M_PI * unif());
}

static double dot(const double *a, const double *b, int d)
{
	double s = 0;

	for (int i = 0; i < d; i++)
		s += a[i] * b[i];
	return s;
}

/* Solve the k x k system a x = b by Gaussian elimination with partial pivoting (a, b clobbered). */
static int gauss_solve(double *a, double *b, int k)
{
	for (int c = 0; c < k; c++) {
		int p = c;
		for (int r = c + 1; r < k; r++)
			if (fabs(a[r * k + c]) > fabs(a[p * k + c]))
				p = r;
		if (fabs(a[p * k + c]) < 1e-300)
			return -1;
		if (p != c) {
			for (int j = 0; j < k; j++) {
				double t = a[c * k + j];
				a[c * k + j] = a[p * k + j];
				a[p * k + j] = t;
			}
			double t = b[c];
			b[c] = b[p];
			b[p] = t;
		}
		for (int r = c + 1; r < k; r++) {
			double f = a[r * k + c] / a[c * k + c];
			for (int j = c; j < k; j++)
				a[r * k + j] -= f * a[c * k + j];
			b[r] -= f * b[c];
		}
	}
	for (int c = k - 1; c >= 0; c--) {
		for (int j = c + 1; j < k; j++)
			b[c] -= a[c * k + j] * b[j];
		b[c] /= a[c * k + c];
	}
	return 0;
}

/*
 * The oracle, a different algorithm: Wolfe's (1976) minimum-norm point of the convex hull
 * of the rows z_i.  The max-margin direction through the origin is that point x*, and the
 * max normalised margin is |x*|.  Writes x* to x; returns |x*|, or -1 on failure.
 */
static double wolfe_mnp(double *x, const double *z, int n, int d)
{
	int *set = malloc(sizeof(int) * (d + 2)), ns = 1, best = 0;
	double *lam = malloc(sizeof(double) * (d + 2)), *mu = malloc(sizeof(double) * (d + 2));
	double *a = malloc(sizeof(double) * (d + 3) * (d + 3)), maxn = 0, r = -1;

	for (int i = 0; i < n; i++) {
		double q = dot(z + (size_t)i * d, z + (size_t)i * d, d);
		if (q > maxn)
			maxn = q;
		if (q < dot(z + (size_t)best * d, z + (size_t)best * d, d))
			best = i;
	}
	set[0] = best;
	lam[0] = 1;
	memcpy(x, z + (size_t)best * d, sizeof(double) * d);
	for (int major = 0; major < 100000; major++) {
		int j = 0, in = 0;
		double xx = dot(x, x, d), mn = INFINITY;
		for (int i = 0; i < n; i++) {
			double v = dot(x, z + (size_t)i * d, d);
			if (v < mn) {
				mn = v;
				j = i;
			}
		}
		if (xx - mn <= 1e-14 * maxn) {
			r = sqrt(xx);
			break;
		}
		for (int s = 0; s < ns; s++)
			in |= set[s] == j;
		if (in || ns > d) {
			r = sqrt(xx);   /* numerically stuck at the optimum */
			break;
		}
		set[ns] = j;
		lam[ns++] = 0;
		for (;;) {   /* minor cycle: the affine min-norm point of the corral */
			int k = ns + 1, neg = 0;
			double theta = 1;
			for (int p = 0; p < ns; p++) {
				for (int q = 0; q < ns; q++)
					a[p * k + q] = dot(z + (size_t)set[p] * d, z + (size_t)set[q] * d, d);
				a[p * k + ns] = 1;
				a[ns * k + p] = 1;
				mu[p] = 0;
			}
			a[ns * k + ns] = 0;
			mu[ns] = 1;
			if (gauss_solve(a, mu, k) != 0)
				goto out;
			for (int p = 0; p < ns; p++)
				if (mu[p] <= 1e-15) {
					double t = lam[p] / (lam[p] - mu[p]);
					neg = 1;
					if (t < theta)
						theta = t;
				}
			if (!neg) {
				memcpy(lam, mu, sizeof(double) * ns);
			} else {
				int o = 0;
				for (int p = 0; p < ns; p++) {
					double v = lam[p] + theta * (mu[p] - lam[p]);
					if (v > 1e-15) {
						set[o] = set[p];
						lam[o++] = v;
					}
				}
				ns = o;
			}
			memset(x, 0, sizeof(double) * d);
			for (int p = 0; p < ns; p++)
				for (int c = 0; c < d; c++)
					x[c] += lam[p] * z[(size_t)set[p] * d + c];
			if (!neg)
				break;
		}
	}
out:
	free(set);
	free(lam);
	free(mu);
	free(a);
	return r;
}

/* n rows z_i = y_i x_i with x ~ N(0, I_d) and y = sign(t.x); keep only |t.x| < band if band > 0
 * (hard examples near the boundary: small margins, a hard case for solvers). */
static void teacher_problem(double *z, double *t, int n, int d, double band)
{
	double nt;

	for (int c = 0; c < d; c++)
		t[c] = gauss();
	nt = sqrt(dot(t, t, d));
	for (int c = 0; c < d; c++)
		t[c] /= nt;
	for (int i = 0; i < n; i++) {
		double *zi = z + (size_t)i * d, m;
		do {
			for (int c = 0; c < d; c++)
				zi[c] = gauss();
			m = dot(zi, t, d);
		} while (band > 0 && fabs(m) >= band);
		if (m < 0)
			for (int c = 0; c < d; c++)
				zi[c] = -zi[c];
	}
}

static void check_solver(int n, int d, double band)
{
	double *z = malloc(sizeof(double) * n * d), *t = malloc(sizeof(double) * d);
	double *w1 = malloc(sizeof(double) * d), *w2 = malloc(sizeof(double) * d);
	double *x = malloc(sizeof(double) * d), kw, cos1, cos2;
	struct mm_opts as = { 1e-10, 1000000, 1 }, cd = { 1e-10, 2000000, 0 };
	struct mm_result r1, r2;
	int rc1, rc2;

	teacher_problem(z, t, n, d, band);
	rc1 = mm_solve(w1, z, n, d, &as, &r1);
	rc2 = mm_solve(w2, z, n, d, &cd, &r2);
	kw = wolfe_mnp(x, z, n, d);
	cos1 = dot(w1, x, d) / sqrt(dot(w1, w1, d) * dot(x, x, d));
	cos2 = dot(w2, x, d) / sqrt(dot(w2, w2, d) * dot(x, x, d));
	CHECK(rc1 == 0 && r1.converged, "active set converges n=%d d=%d band=%g (gap %.2g, %lld steps)",
	      n, d, band, r1.gap, (long long)r1.steps);
	CHECK(rc2 == 0 && r2.converged, "coordinate ascent converges n=%d d=%d band=%g (gap %.2g, %lld sweeps)",
	      n, d, band, r2.gap, (long long)r2.epochs);
	CHECK(kw > 0 && fabs(r1.kappa - kw) <= 1e-3 * kw && fabs(r1.kappa - kw) <= 1e-7 * kw,
	      "active set kappa %.10g = Wolfe min-norm point %.10g (n=%d d=%d)", r1.kappa, kw, n, d);
	CHECK(kw > 0 && fabs(r2.kappa - kw) <= 1e-7 * kw,
	      "coordinate ascent kappa %.10g = Wolfe %.10g (n=%d d=%d)", r2.kappa, kw, n, d);
	CHECK(fabs(mm_kappa(w1, z, n, d) - r1.kappa) <= 1e-12 * kw, "reported kappa is min z.w/|w| (n=%d d=%d)", n, d);
	CHECK(r1.kappa <= kw * (1 + 1e-9) && kw <= r1.kappa_hi * (1 + 1e-9) &&
	      r2.kappa <= kw * (1 + 1e-9) && kw <= r2.kappa_hi * (1 + 1e-9),
	      "certificate brackets the optimum (n=%d d=%d)", n, d);
	CHECK(cos1 > 1 - 1e-8 && cos2 > 1 - 1e-8, "same direction as Wolfe: 1-cos %.2g, %.2g (n=%d d=%d)",
	      1 - cos1, 1 - cos2, n, d);
	free(z); free(t); free(w1); free(w2); free(x);
}

/* Fraction of fresh Gaussian points on which w and t disagree, against arccos(R)/pi. */
static void check_error_formula(int d, double phi, int m)
{
	double *t = malloc(sizeof(double) * d), *u = malloc(sizeof(double) * d);
	double *w = malloc(sizeof(double) * d), *x = malloc(sizeof(double) * d);
	double nt, tu, nu, R, e, mc, sd;
	long wrong = 0;

	for (int c = 0; c < d; c++) {
		t[c] = gauss();
		u[c] = gauss();
	}
	nt = sqrt(dot(t, t, d));
	for (int c = 0; c < d; c++)
		t[c] /= nt;
	tu = dot(t, u, d);
	for (int c = 0; c < d; c++)
		u[c] -= tu * t[c];
	nu = sqrt(dot(u, u, d));
	for (int c = 0; c < d; c++)   /* |w| = 3: the formula must not depend on the norm */
		w[c] = 3 * (cos(phi) * t[c] + sin(phi) * u[c] / nu);
	R = dot(w, t, d) / sqrt(dot(w, w, d));
	e = acos(R) / M_PI;
	for (int i = 0; i < m; i++) {
		for (int c = 0; c < d; c++)
			x[c] = gauss();
		wrong += (dot(w, x, d) >= 0) != (dot(t, x, d) >= 0);
	}
	mc = (double)wrong / m;
	sd = sqrt(e * (1 - e) / m);
	CHECK(fabs(mc - e) < 4 * sd, "error formula: angle %.2f, arccos(R)/pi %.5f, Monte Carlo %.5f (4 sd %.5f)",
	      phi, e, mc, 4 * sd);
	free(t); free(u); free(w); free(x);
}

/* A trained student: its arccos(R)/pi against Monte Carlo on fresh points. */
static void check_student_error(int n, int d, int m)
{
	double *z = malloc(sizeof(double) * n * d), *t = malloc(sizeof(double) * d);
	double *w = malloc(sizeof(double) * d), *x = malloc(sizeof(double) * d);
	struct mm_opts o = { 1e-8, 100000, 1 };
	struct mm_result r;
	double R, e, mc, sd;
	long wrong = 0;

	teacher_problem(z, t, n, d, 0);
	mm_solve(w, z, n, d, &o, &r);
	R = dot(w, t, d) / sqrt(dot(w, w, d));
	e = acos(R) / M_PI;
	for (int i = 0; i < m; i++) {
		for (int c = 0; c < d; c++)
			x[c] = gauss();
		wrong += (dot(w, x, d) >= 0) != (dot(t, x, d) >= 0);
	}
	mc = (double)wrong / m;
	sd = sqrt(e * (1 - e) / m);
	CHECK(r.converged && fabs(mc - e) < 4 * sd,
	      "trained student (alpha %.1f): arccos(R)/pi %.5f, Monte Carlo on %d fresh points %.5f",
	      (double)n / d, e, m, mc);
	free(z); free(t); free(w); free(x);
}

int main(int argc, char **argv)
{
	(void)argc;
	cull_init(argv[0]);
	openblas_set_num_threads(1);

	check_solver(4, 6, 0);        /* fewer examples than dimensions: all are support vectors */
	check_solver(8, 5, 0);
	check_solver(40, 10, 0);
	check_solver(200, 20, 0);     /* alpha 10 */
	check_solver(60, 30, 0.1);    /* hard examples only: tiny margins */
	check_solver(150, 40, 0.05);
	check_solver(300, 50, 0);

	/* not separable through the origin: z and -z both present */
	{
		double z[4 * 3] = { 1, 0, 0, -1, 0, 0, 0, 1, 0, 0, 0, 1 }, w[3];
		struct mm_opts o = { 1e-8, 2000, 1 };
		struct mm_result r;
		int rc = mm_solve(w, z, 4, 3, &o, &r);
		CHECK(rc == 1 && !r.converged && !(r.kappa > 0), "not separable: no convergence claimed (rc %d)", rc);
		double z0[2 * 2] = { 1, 1, 0, 0 };
		CHECK(mm_solve(w, z0, 2, 2, &o, &r) == 2, "a zero example is rejected");
	}
	/* a case with a known answer: z = (1, 0) and (0, 1) give w along (1, 1), kappa 1/sqrt 2 */
	{
		double z[2 * 2] = { 1, 0, 0, 1 }, w[2];
		struct mm_opts o = { 1e-12, 1000, 1 };
		struct mm_result r;
		mm_solve(w, z, 2, 2, &o, &r);
		CHECK(fabs(r.kappa - sqrt(0.5)) < 1e-12 && fabs(w[0] - w[1]) < 1e-12,
		      "two orthogonal examples: kappa %.15f", r.kappa);
	}

	check_error_formula(10, 0.3, 200000);
	check_error_formula(50, 1.2, 200000);
	check_error_formula(3, 2.8, 200000);
	check_student_error(100, 20, 200000);
	return CHECK_DONE();
}
