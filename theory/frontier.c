/* cull-theory --frontier: the best-f pruning frontier per theta, with exponential and power-law fits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontier.h"
#include "io.h"

struct pt { double ap, err, se; };
struct curve {
	double theta, f;
	char policy[8];
	struct pt *p;
	int n;
};

struct fit { double slope, icpt, r2; int n; };

static int by_ap(const void *a, const void *b)
{
	double x = ((const struct pt *)a)->ap, y = ((const struct pt *)b)->ap;
	return (x > y) - (x < y);
}

/* Least squares y = icpt + slope * x. */
static struct fit linfit(const double *x, const double *y, int n)
{
	struct fit r = { NAN, NAN, NAN, n };
	double mx = 0, my = 0, sxx = 0, sxy = 0, syy = 0;

	if (n < 2)
		return r;
	for (int i = 0; i < n; i++) {
		mx += x[i];
		my += y[i];
	}
	mx /= n;
	my /= n;
	for (int i = 0; i < n; i++) {
		sxx += (x[i] - mx) * (x[i] - mx);
		sxy += (x[i] - mx) * (y[i] - my);
		syy += (y[i] - my) * (y[i] - my);
	}
	r.slope = sxy / sxx;
	r.icpt = my - r.slope * mx;
	r.r2 = syy > 0 ? sxy * sxy / (sxx * syy) : 1;
	return r;
}

/* log err at ap on a curve, linear in log-log between its points; 0 if ap is outside. */
static int interp(const struct curve *c, double ap, double *err, double *se)
{
	const double eps = 1e-9;

	if (c->n == 0 || ap < c->p[0].ap * (1 - eps) || ap > c->p[c->n - 1].ap * (1 + eps))
		return 0;
	for (int i = 0; i < c->n; i++) {
		if (fabs(ap - c->p[i].ap) <= eps * ap) {
			*err = c->p[i].err;
			*se = c->p[i].se;
			return 1;
		}
		if (i + 1 < c->n && ap < c->p[i + 1].ap) {
			double t = (log(ap) - log(c->p[i].ap)) / (log(c->p[i + 1].ap) - log(c->p[i].ap));
			*err = exp((1 - t) * log(c->p[i].err) + t * log(c->p[i + 1].err));
			*se = (1 - t) * c->p[i].se + t * c->p[i + 1].se;
			return 1;
		}
	}
	return 0;
}

static void write_fit(FILE *f, double theta, const char *range, const double *ap, const double *err,
                      int n, double lo, double hi)
{
	double *x = xmalloc((size_t)(n ? n : 1) * sizeof(double)), *lx, *ly;
	int m = 0;
	struct fit e, p;

	lx = xmalloc((size_t)(n ? n : 1) * sizeof(double));
	ly = xmalloc((size_t)(n ? n : 1) * sizeof(double));
	for (int i = 0; i < n; i++)
		if (ap[i] >= lo * (1 - 1e-9) && ap[i] <= hi * (1 + 1e-9) && err[i] > 0) {
			x[m] = ap[i];
			lx[m] = log(ap[i]);
			ly[m] = log(err[i]);
			m++;
		}
	e = linfit(x, ly, m);
	p = linfit(lx, ly, m);
	fprintf(f, "%g\t%s\t%.6g\t%.6g\t%d\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\n", theta, range, lo, hi,
	        m, -e.slope, e.r2, e.icpt, -p.slope, p.r2, p.icpt);
	free(x);
	free(lx);
	free(ly);
}

int frontier_main(const char *tsv, int points, double fit_lo, double fit_hi, const char *fitspath,
                  const char *outpath)
{
	size_t len;
	char *buf = (char *)read_file(tsv, &len), *line, *save = NULL;
	struct curve *cv = NULL;
	double *thetas = NULL;
	int ncv = 0, nth = 0, lineno = 0;
	FILE *out, *fits = NULL;

	buf = xrealloc(buf, len + 1);
	buf[len] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		double th, f, at, ap, err, se;
		char pol[16];
		int k;
		lineno++;
		if (strncmp(line, "theta", 5) == 0 || line[0] == '#')
			continue;
		if (sscanf(line, "%lf %lf %lf %lf %15s %lf %lf", &th, &f, &at, &ap, pol, &err, &se) != 7 ||
		    (strcmp(pol, "hard") && strcmp(pol, "easy")))
			die(EXIT_DATA, "%s: line %d: expected theta f alpha_tot alpha_prune policy err stderr",
			    io_name(tsv, 0), lineno);
		(void)at;
		for (k = 0; k < ncv; k++)
			if (cv[k].theta == th && cv[k].f == f && strcmp(cv[k].policy, pol) == 0)
				break;
		if (k == ncv) {
			cv = xreallocarray(cv, (size_t)ncv + 1, sizeof(*cv));
			memset(&cv[k], 0, sizeof(cv[k]));
			cv[k].theta = th;
			cv[k].f = f;
			strcpy(cv[k].policy, pol);
			ncv++;
			int seen = 0;
			for (int j = 0; j < nth; j++)
				seen |= thetas[j] == th;
			if (!seen) {
				thetas = xreallocarray(thetas, (size_t)nth + 1, sizeof(double));
				thetas[nth++] = th;
			}
		}
		cv[k].p = xreallocarray(cv[k].p, (size_t)cv[k].n + 1, sizeof(struct pt));
		cv[k].p[cv[k].n++] = (struct pt){ ap, err, isnan(se) ? 0 : se };
	}
	if (ncv == 0)
		die(EXIT_DATA, "%s: no rows", io_name(tsv, 0));
	for (int k = 0; k < ncv; k++)
		qsort(cv[k].p, (size_t)cv[k].n, sizeof(struct pt), by_ap);

	out = xfopen(outpath, "w");
	if (fitspath) {
		fits = xfopen(fitspath, "w");
		fprintf(fits, "theta\trange\tlo\thi\tn\texp_rate\texp_r2\texp_icpt\tpow_exponent\tpow_r2\tpow_icpt\n");
	}
	fprintf(out, "theta\talpha_prune\terr\tstderr\tf\tpolicy\terr_full\n");
	for (int it = 0; it < nth; it++) {
		double lo = 0, hi = 0, *ap = xmalloc((size_t)points * sizeof(double));
		double *fe = xmalloc((size_t)points * sizeof(double));
		int m = 0;
		/* from where the largest-f curve starts to where any curve ends */
		double fmax = 0;
		for (int k = 0; k < ncv; k++)
			if (cv[k].theta == thetas[it] && cv[k].f > fmax)
				fmax = cv[k].f;
		for (int k = 0; k < ncv; k++) {
			if (cv[k].theta != thetas[it])
				continue;
			if (cv[k].f == fmax && (lo == 0 || cv[k].p[0].ap < lo))
				lo = cv[k].p[0].ap;
			if (cv[k].p[cv[k].n - 1].ap > hi)
				hi = cv[k].p[cv[k].n - 1].ap;
		}
		for (int i = 0; i < points; i++) {
			double x = points == 1 ? lo : lo * pow(hi / lo, (double)i / (points - 1));
			double best = INFINITY, bse = 0, bf = 0, e, s;
			const char *bp = "";
			for (int k = 0; k < ncv; k++)
				if (cv[k].theta == thetas[it] && interp(&cv[k], x, &e, &s) && e < best) {
					best = e;
					bse = s;
					bf = cv[k].f;
					bp = cv[k].policy;
				}
			if (best == INFINITY)
				continue;
			/* the unpruned (largest-f) curve at the same alpha_prune, for the gain */
			double full = NAN;
			for (int k = 0; k < ncv; k++)
				if (cv[k].theta == thetas[it] && cv[k].f == fmax && interp(&cv[k], x, &e, &s)) {
					full = e;
					break;
				}
			fprintf(out, "%g\t%.6g\t%.6g\t%.3g\t%g\t%s\t%.6g\n", thetas[it], x, best, bse, bf, bp, full);
			ap[m] = x;
			fe[m] = best;
			m++;
		}
		if (fits) {
			double flo = fit_hi > 0 ? fit_lo : lo, fhi = fit_hi > 0 ? fit_hi : hi;
			double mid = sqrt(flo * fhi), fmin = INFINITY, open = 0;
			write_fit(fits, thetas[it], "all", ap, fe, m, flo, fhi);
			write_fit(fits, thetas[it], "low", ap, fe, m, flo, mid);
			write_fit(fits, thetas[it], "high", ap, fe, m, mid, fhi);
			/* "open": up to where the smallest-f curve ends; beyond it the grid's
			 * largest alpha_tot, not the choice of f, limits the frontier */
			for (int k = 0; k < ncv; k++)
				if (cv[k].theta == thetas[it] && cv[k].f < fmin)
					fmin = cv[k].f;
			for (int k = 0; k < ncv; k++)
				if (cv[k].theta == thetas[it] && cv[k].f == fmin && cv[k].p[cv[k].n - 1].ap > open)
					open = cv[k].p[cv[k].n - 1].ap;
			if (open > flo)
				write_fit(fits, thetas[it], "open", ap, fe, m, flo, open < fhi ? open : fhi);
		}
		free(ap);
		free(fe);
	}
	xfclose(out, io_name(outpath, 1));
	if (fits)
		xfclose(fits, fitspath);
	for (int k = 0; k < ncv; k++)
		free(cv[k].p);
	free(cv);
	free(thetas);
	free(buf);
	return EXIT_OK;
}
