/* Max-margin linear classifier through the origin (hard-margin SVM without bias) with a certified gap. */
#ifndef CULL_MAXMARGIN_H
#define CULL_MAXMARGIN_H

#include <stdint.h>

/*
 * Problem: given n rows z_i = y_i x_i (row-major n x d), find w maximising the minimum
 * normalised margin kappa(w) = min_i z_i.w / |w|.  Equivalently minimise |w|^2 / 2 subject
 * to z_i.w >= 1, whose dual is max_{a >= 0} D(a) = sum a - |Z^T a|^2 / 2.
 *
 * The solver warms up with a few sweeps of dual coordinate ascent (Hildreth's method, the
 * AdaTron with an exact step), then runs a Lawson-Hanson active-set method on the dual (finite:
 * it ends at a point that satisfies the KKT conditions up to rounding); if that fails it goes
 * on with coordinate ascent, which converges for any convex quadratic over a box.  Either way
 * it stops on a certificate: for any a >= 0, weak duality gives
 *     kappa(w) <= kappa* <= 1 / sqrt(2 D(a)),
 * so gap = kappa_hi / kappa_lo - 1 bounds how far kappa(w) is from the optimum.
 */
struct mm_result {
	double kappa;      /* min_i z_i.w / |w| of the returned w (a lower bound on kappa*) */
	double kappa_hi;   /* 1 / sqrt(2 D(a)): an upper bound on kappa* */
	double gap;        /* kappa_hi / kappa - 1, a bound on the relative error of kappa */
	int64_t epochs;    /* coordinate-ascent sweeps over the data */
	int64_t steps;     /* active-set steps (one solve each) */
	int64_t nsv;       /* support vectors (a_i > 0) */
	int exact;         /* 1 when the active-set method ended at the KKT point */
	int converged;     /* gap <= tol */
};

struct mm_opts {
	double tol;          /* stop when gap <= tol (1e-8 is a good default) */
	int64_t max_epochs;  /* coordinate-ascent sweeps at most */
	int active_set;      /* 0: coordinate ascent only (slow, for checks) */
};

/* Solve; w (length d) receives the weight vector (scaled so that the min margin is about 1).
 * z is not modified.  Returns 0 when converged, 1 when max_epochs ran out (also when the data
 * are not separable through the origin: then kappa stays 0), 2 when some z_i is 0. */
int mm_solve(double *w, const double *z, int64_t n, int d, const struct mm_opts *o,
             struct mm_result *res);

/* min_i z_i.w / |w| (for checks). */
double mm_kappa(const double *w, const double *z, int64_t n, int d);

#endif
