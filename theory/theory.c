/* cull-theory: the perceptron teacher-student simulation of data pruning (Sorscher et al. 2022). */
#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "frontier.h"
#include "io.h"
#include "maxmargin.h"
#include "rng.h"

enum { HARD, EASY, NPOL };
static const char *polname[NPOL] = { "hard", "easy" };

struct cfg {
	int N, reps, nth, nf, na, quiet, verbose;
	int pol[NPOL];            /* which policies to write */
	double *theta, *f, *alpha;
	uint64_t seed;
	struct mm_opts mm;
};

struct stats {
	int64_t fits, unconverged, exact, epochs;
	double max_gap;
};

static void usage(FILE *out, int code)
{
	fprintf(out,
	    "usage: cull-theory [-N DIM] [--reps R] [--thetas LIST] [--fractions LIST]\n"
	    "                   [--alphas LO:HI:K | --alphas LIST] [--policies hard,easy]\n"
	    "                   [--seed S] [--threads T] [--tol TOL] [--max-epochs E] [-q] [-v] [-o FILE]\n"
	    "       cull-theory --solve FILE [--tol TOL] [--max-epochs E]\n"
	    "       cull-theory --frontier TSV [--points K] [--fit-range LO:HI] [--fits FILE] [-o FILE]\n"
	    "Simulates data pruning for a perceptron: x ~ N(0, I_N), labels from a random teacher,\n"
	    "a probe at angle theta (degrees) ranks examples by |margin|; keep the fraction f with\n"
	    "the smallest (hard) or largest (easy) margins, train a max-margin student, and write\n"
	    "the mean generalisation error arccos(R)/pi and its standard error over R draws as TSV\n"
	    "columns: theta f alpha_tot alpha_prune policy err stderr.\n"
	    "Defaults: -N 200 --reps 40 --thetas 0,10,20 --fractions 1,0.8,0.6,0.4,0.2,0.1\n"
	    "          --alphas 0.5:20:16 (log grid) --seed 1 --tol 1e-8 --max-epochs 200000\n"
	    "--solve reads lines 'y x1 ... xd' and prints the max-margin solution (kappa, bounds, w).\n"
	    "--frontier reads this program's TSV and writes, per theta, the minimum error over f and\n"
	    "policy at each alpha_prune (log-log interpolation), plus exponential and power-law fits.\n");
	exit(code);
}

/* Comma-separated numbers in [lo, hi]. */
static double *parse_list(const char *opt, const char *s, int *n, double lo, double hi)
{
	char *buf = xstrdup(s), *save = NULL, *tok;
	double *v = NULL;

	*n = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		v = xreallocarray(v, (size_t)*n + 1, sizeof(double));
		v[(*n)++] = parse_double(opt, tok, lo, hi);
	}
	if (*n == 0)
		die(EXIT_USAGE, "%s: empty list", opt);
	free(buf);
	return v;
}

/* LO:HI:K as a log grid, or a comma list. */
static double *parse_alphas(const char *s, int *n)
{
	const char *c1 = strchr(s, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	double lo, hi, *v;
	int k;

	if (!c1)
		return parse_list("--alphas", s, n, 1e-3, 1e4);
	if (!c2)
		die(EXIT_USAGE, "--alphas: expected LO:HI:K or a comma list, got '%s'", s);
	{
		char *a = xstrndup(s, (size_t)(c1 - s)), *b = xstrndup(c1 + 1, (size_t)(c2 - c1 - 1));
		lo = parse_double("--alphas", a, 1e-3, 1e4);
		hi = parse_double("--alphas", b, lo, 1e4);
		k = (int)parse_int("--alphas", c2 + 1, 1, 1000);
		free(a);
		free(b);
	}
	v = xmalloc((size_t)k * sizeof(double));
	for (int i = 0; i < k; i++)
		v[i] = k == 1 ? lo : lo * pow(hi / lo, (double)i / (k - 1));
	*n = k;
	return v;
}

/* ---- random numbers: xoshiro256** seeded by splitmix64 (rng.h), Marsaglia's polar normals ---- */
struct xoshiro { uint64_t s[4]; int have; double spare; };

static void xoshiro_seed(struct xoshiro *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = rng_next(&seed);
	r->have = 0;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(struct xoshiro *r)
{
	uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

static double xoshiro_symmetric(struct xoshiro *r) /* in (-1, 1) */
{
	return ((double)(xoshiro_next(r) >> 11) + 0.5) * 0x1.0p-52 - 1;
}

static double xoshiro_normal(struct xoshiro *r)
{
	double u, v, s;

	if (r->have) {
		r->have = 0;
		return r->spare;
	}
	do {
		u = xoshiro_symmetric(r);
		v = xoshiro_symmetric(r);
		s = u * u + v * v;
	} while (s >= 1 || s == 0);
	s = sqrt(-2 * log(s) / s);
	r->spare = v * s;
	r->have = 1;
	return u * s;
}

/* ---- one draw: data, probe, pruning, max-margin students ---- */
struct scratch {
	double *x, *z, *u, *w, *t, *v, *j;
	double *y;
	int64_t *idx, cap;
};

/* Stable merge sort of indices by |key| (ties by index), so every thread count gives one order. */
static void sort_idx(int64_t *idx, int64_t *tmp, int64_t n, const double *key)
{
	if (n < 16) {
		for (int64_t i = 1; i < n; i++) {
			int64_t v = idx[i], j = i;
			while (j > 0 && (fabs(key[idx[j - 1]]) > fabs(key[v]) ||
			                 (fabs(key[idx[j - 1]]) == fabs(key[v]) && idx[j - 1] > v))) {
				idx[j] = idx[j - 1];
				j--;
			}
			idx[j] = v;
		}
		return;
	}
	int64_t h = n / 2, i = 0, j = h, o = 0;
	sort_idx(idx, tmp, h, key);
	sort_idx(idx + h, tmp, n - h, key);
	while (i < h && j < n) {
		double a = fabs(key[idx[i]]), b = fabs(key[idx[j]]);
		tmp[o++] = (a < b || (a == b && idx[i] < idx[j])) ? idx[i++] : idx[j++];
	}
	while (i < h)
		tmp[o++] = idx[i++];
	while (j < n)
		tmp[o++] = idx[j++];
	memcpy(idx, tmp, (size_t)n * sizeof(int64_t));
}

/* Train a max-margin student on the rows `keep` (k of them) and return its error. */
static double student_error(const struct cfg *c, struct scratch *s, const int64_t *keep, int64_t k,
                            struct stats *st)
{
	int N = c->N;
	struct mm_result r;
	double R;

	for (int64_t i = 0; i < k; i++) {
		const double *xi = s->x + (size_t)keep[i] * N;
		double *zi = s->z + (size_t)i * N;
		for (int d = 0; d < N; d++)
			zi[d] = s->y[keep[i]] * xi[d];
	}
	mm_solve(s->w, s->z, k, N, &c->mm, &r);
	if (c->verbose) {
		flockfile(stderr);   /* one whole line per student, whatever the threads do */
		note("student: %lld examples, %lld sweeps, %lld active-set steps, %lld support vectors, "
		     "kappa %.6g, gap %.2g", (long long)k, (long long)r.epochs, (long long)r.steps,
		     (long long)r.nsv, r.kappa, r.gap);
		funlockfile(stderr);
	}
	st->fits++;
	st->epochs += r.epochs;
	st->exact += r.exact;
	if (!r.converged)
		st->unconverged++;
	if (r.gap > st->max_gap)
		st->max_gap = r.gap;
	R = cblas_ddot(N, s->w, 1, s->t, 1) / cblas_dnrm2(N, s->w, 1);
	if (R > 1)
		R = 1;
	if (R < -1)
		R = -1;
	return acos(R) / M_PI;
}

static int64_t kept_count(double f, int64_t P)
{
	int64_t k = llround(f * (double)P);
	return k < 1 ? 1 : k > P ? P : k;
}

/* out[(it * nf + jf) * NPOL + pol] for one (alpha, rep) draw, shared by all thetas. */
static void run_draw(const struct cfg *c, int ia, int rep, double *out, struct scratch *s,
                     struct stats *st)
{
	int N = c->N;
	int64_t P = llround(c->alpha[ia] * N);
	uint64_t sd = c->seed;
	struct xoshiro r;
	double full = -1, nt, tv;

	if (P < 1)
		P = 1;
	if (P > s->cap) {
		s->cap = P;
		s->x = xreallocarray(s->x, (size_t)P * N, sizeof(double));
		s->z = xreallocarray(s->z, (size_t)P * N, sizeof(double));
		s->u = xreallocarray(s->u, (size_t)P, sizeof(double));
		s->y = xreallocarray(s->y, (size_t)P, sizeof(double));
		s->idx = xreallocarray(s->idx, (size_t)P * 2, sizeof(int64_t));
	}
	/* the seed depends on (seed, N, P, rep) only, so a point does not change with the grid;
	 * N < 2^17, P < 2^32 and the low 8 bits of rep occupy separate bits, and higher draw
	 * numbers go through one more mixing step */
	sd = rng_next(&sd) ^ ((uint64_t)N << 40) ^ ((uint64_t)P << 8) ^ (uint64_t)(rep & 255);
	if (rep >> 8) {
		uint64_t t = sd ^ ((uint64_t)(rep >> 8) << 1);
		sd = rng_next(&t);
	}
	xoshiro_seed(&r, sd);
	for (int d = 0; d < N; d++)
		s->t[d] = xoshiro_normal(&r);
	cblas_dscal(N, 1 / cblas_dnrm2(N, s->t, 1), s->t, 1);
	for (size_t i = 0; i < (size_t)P * N; i++)
		s->x[i] = xoshiro_normal(&r);
	for (int d = 0; d < N; d++)
		s->v[d] = xoshiro_normal(&r);
	tv = cblas_ddot(N, s->t, 1, s->v, 1);
	cblas_daxpy(N, -tv, s->t, 1, s->v, 1);
	nt = cblas_dnrm2(N, s->v, 1);
	cblas_dscal(N, 1 / nt, s->v, 1);
	cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)P, N, 1.0, s->x, N, s->t, 1, 0.0, s->y, 1);
	for (int64_t i = 0; i < P; i++)
		s->y[i] = s->y[i] >= 0 ? 1 : -1;

	for (int it = 0; it < c->nth; it++) {
		double th = c->theta[it] * M_PI / 180;
		for (int d = 0; d < N; d++)
			s->j[d] = cos(th) * s->t[d] + sin(th) * s->v[d];
		cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)P, N, 1.0, s->x, N, s->j, 1, 0.0, s->u, 1);
		for (int64_t i = 0; i < P; i++)
			s->idx[i] = i;
		sort_idx(s->idx, s->idx + P, P, s->u);
		for (int jf = 0; jf < c->nf; jf++) {
			int64_t k = kept_count(c->f[jf], P);
			double *o = out + ((size_t)it * c->nf + jf) * NPOL;
			if (k == P) {   /* nothing pruned: the same student for every theta and policy */
				if (full < 0)
					full = student_error(c, s, s->idx, P, st);
				o[HARD] = o[EASY] = full;
				continue;
			}
			if (c->pol[HARD])
				o[HARD] = student_error(c, s, s->idx, k, st);
			if (c->pol[EASY])
				o[EASY] = student_error(c, s, s->idx + (P - k), k, st);
		}
	}
}

struct pool {
	const struct cfg *c;
	double *res;          /* [ia][rep][it][jf][pol] */
	int *order, ntask, next, done;
	struct stats st;
	pthread_mutex_t mu;
	double t0;
};

static void *worker(void *arg)
{
	struct pool *p = arg;
	const struct cfg *c = p->c;
	struct scratch s = { 0 };
	struct stats st = { 0 };
	size_t per = (size_t)c->nth * c->nf * NPOL;

	s.t = xmalloc((size_t)c->N * sizeof(double));
	s.v = xmalloc((size_t)c->N * sizeof(double));
	s.j = xmalloc((size_t)c->N * sizeof(double));
	s.w = xmalloc((size_t)c->N * sizeof(double));
	for (;;) {
		int t, ia, rep;
		pthread_mutex_lock(&p->mu);
		t = p->next < p->ntask ? p->order[p->next++] : -1;
		pthread_mutex_unlock(&p->mu);
		if (t < 0)
			break;
		ia = t / c->reps;
		rep = t % c->reps;
		run_draw(c, ia, rep, p->res + (size_t)t * per, &s, &st);
		pthread_mutex_lock(&p->mu);
		p->done++;
		if (!c->quiet && (p->done * 10 / p->ntask != (p->done - 1) * 10 / p->ntask))
			note("%d/%d draws done, %.0f s", p->done, p->ntask, now_seconds() - p->t0);
		pthread_mutex_unlock(&p->mu);
	}
	pthread_mutex_lock(&p->mu);
	p->st.fits += st.fits;
	p->st.unconverged += st.unconverged;
	p->st.exact += st.exact;
	p->st.epochs += st.epochs;
	if (st.max_gap > p->st.max_gap)
		p->st.max_gap = st.max_gap;
	pthread_mutex_unlock(&p->mu);
	free(s.x); free(s.z); free(s.u); free(s.y); free(s.idx);
	free(s.t); free(s.v); free(s.j); free(s.w);
	return NULL;
}

static int simulate(const struct cfg *c, int threads, const char *outpath)
{
	struct pool p = { .c = c };
	size_t per = (size_t)c->nth * c->nf * NPOL;
	pthread_t *th;
	FILE *out;

	p.ntask = c->na * c->reps;
	p.res = xcalloc((size_t)p.ntask * per, sizeof(double));
	p.order = xmalloc((size_t)p.ntask * sizeof(int));
	/* biggest draws first, for load balance */
	for (int i = 0; i < p.ntask; i++)
		p.order[i] = i;
	for (int i = 1; i < p.ntask; i++) {
		int v = p.order[i], j = i;
		while (j > 0 && c->alpha[p.order[j - 1] / c->reps] < c->alpha[v / c->reps]) {
			p.order[j] = p.order[j - 1];
			j--;
		}
		p.order[j] = v;
	}
	pthread_mutex_init(&p.mu, NULL);
	p.t0 = now_seconds();
	if (threads > p.ntask)
		threads = p.ntask;
	th = xmalloc((size_t)threads * sizeof(pthread_t));
	for (int i = 0; i < threads; i++)
		if (pthread_create(&th[i], NULL, worker, &p) != 0)
			die(EXIT_NOMEM, "cannot start a thread");
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);

	out = xfopen(outpath, "w");
	fprintf(out, "theta\tf\talpha_tot\talpha_prune\tpolicy\terr\tstderr\n");
	for (int it = 0; it < c->nth; it++)
		for (int pol = 0; pol < NPOL; pol++) {
			if (!c->pol[pol])
				continue;
			for (int jf = 0; jf < c->nf; jf++)
				for (int ia = 0; ia < c->na; ia++) {
					double sum = 0, sq = 0, mean, se;
					for (int rep = 0; rep < c->reps; rep++) {
						size_t t = (size_t)ia * c->reps + rep;
						double e = p.res[t * per + ((size_t)it * c->nf + jf) * NPOL + pol];
						sum += e;
					}
					mean = sum / c->reps;
					for (int rep = 0; rep < c->reps; rep++) {
						size_t t = (size_t)ia * c->reps + rep;
						double e = p.res[t * per + ((size_t)it * c->nf + jf) * NPOL + pol];
						sq += (e - mean) * (e - mean);
					}
					se = c->reps > 1 ? sqrt(sq / (c->reps - 1) / c->reps) : NAN;
					fprintf(out, "%g\t%g\t%.6g\t%.6g\t%s\t%.6g\t%.3g\n", c->theta[it], c->f[jf],
					        c->alpha[ia], c->f[jf] * c->alpha[ia], polname[pol], mean, se);
				}
		}
	xfclose(out, io_name(outpath, 1));
	if (!c->quiet)
		note("%lld fits in %.1f s with %d threads: %lld ended by the active set, "
		     "mean %.1f sweeps, largest certified gap %.2g, %lld not converged",
		     (long long)p.st.fits, now_seconds() - p.t0, threads, (long long)p.st.exact,
		     p.st.fits ? (double)p.st.epochs / p.st.fits : 0.0, p.st.max_gap,
		     (long long)p.st.unconverged);
	if (p.st.unconverged)
		warn("%lld of %lld students did not reach the gap %g within %lld sweeps",
		     (long long)p.st.unconverged, (long long)p.st.fits, c->mm.tol, (long long)c->mm.max_epochs);
	free(p.res);
	free(p.order);
	free(th);
	return EXIT_OK;
}

/* ---- --solve: max margin of a text problem ---- */
static int solve_file(const char *path, const struct cfg *c, const char *outpath)
{
	size_t len;
	char *buf = (char *)read_file(path, &len), *line, *save = NULL;
	double *z = NULL, *w;
	int64_t n = 0, cap = 0;
	int d = -1;
	struct mm_result r;
	int rc;
	FILE *out;

	buf = xrealloc(buf, len + 1);
	buf[len] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *p = line, *end;
		double y, v;
		int k = 0;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\0' || *p == '\r')
			continue;
		y = strtod(p, &end);
		if (end == p || y == 0)
			die(EXIT_DATA, "%s: line %lld: expected a label +1 or -1 first", path, (long long)n + 1);
		p = end;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			if (d > 0)
				z = xreallocarray(z, (size_t)cap * d, sizeof(double));
		}
		for (;;) {
			v = strtod(p, &end);
			if (end == p)
				break;
			p = end;
			if (d < 0) {
				z = xreallocarray(z, (size_t)cap * (k + 1), sizeof(double));
			} else if (k >= d) {
				die(EXIT_DATA, "%s: line %lld: more than %d features", path, (long long)n + 1, d);
			}
			z[(size_t)n * (d < 0 ? 0 : d) + k] = (y > 0 ? 1 : -1) * v;
			k++;
		}
		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		if (*p)
			die(EXIT_DATA, "%s: line %lld: not a number: '%.20s'", path, (long long)n + 1, p);
		if (d < 0) {
			if (k == 0)
				die(EXIT_DATA, "%s: line 1: no features", path);
			d = k;
			z = xreallocarray(z, (size_t)cap * d, sizeof(double));
		} else if (k != d) {
			die(EXIT_DATA, "%s: line %lld: %d features, want %d", path, (long long)n + 1, k, d);
		}
		n++;
	}
	if (n == 0)
		die(EXIT_DATA, "%s: no examples", io_name(path, 0));
	w = xmalloc((size_t)d * sizeof(double));
	rc = mm_solve(w, z, n, d, &c->mm, &r);
	if (rc == 2)
		die(EXIT_DATA, "%s: an example is all zeros: no margin through the origin", io_name(path, 0));
	out = xfopen(outpath, "w");
	fprintf(out, "kappa\t%.12g\nkappa_hi\t%.12g\ngap\t%.3g\nsupport\t%lld\nsweeps\t%lld\nw",
	        r.kappa, r.kappa_hi, r.gap, (long long)r.nsv, (long long)r.epochs);
	{
		double nw = cblas_dnrm2(d, w, 1);
		for (int k = 0; k < d; k++)
			fprintf(out, "\t%.12g", nw > 0 ? w[k] / nw : 0.0);
	}
	fprintf(out, "\n");
	xfclose(out, io_name(outpath, 1));
	free(buf);
	free(z);
	free(w);
	if (rc != 0 || !(r.kappa > 0))
		die(EXIT_DATA, "%s: %s (gap %.3g after %lld sweeps)", io_name(path, 0),
		    r.kappa > 0 ? "did not converge" : "not separable through the origin",
		    r.gap, (long long)r.epochs);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dim", required_argument, NULL, 'N' },
		{ "reps", required_argument, NULL, 'r' },
		{ "thetas", required_argument, NULL, 'T' },
		{ "fractions", required_argument, NULL, 'f' },
		{ "alphas", required_argument, NULL, 'a' },
		{ "policies", required_argument, NULL, 'p' },
		{ "seed", required_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 't' },
		{ "tol", required_argument, NULL, 'e' },
		{ "max-epochs", required_argument, NULL, 'm' },
		{ "output", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "solve", required_argument, NULL, 'S' },
		{ "frontier", required_argument, NULL, 'F' },
		{ "points", required_argument, NULL, 'k' },
		{ "fit-range", required_argument, NULL, 'R' },
		{ "fits", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct cfg c = { .N = 200, .reps = 40, .seed = 1,
	                 .mm = { .tol = 1e-8, .max_epochs = 200000, .active_set = 1 },
	                 .pol = { 1, 1 } };
	const char *outpath = NULL, *solve = NULL, *frontier = NULL, *fits = NULL;
	int threads, opt, points = 40, version = 0, rc;
	double fit_lo = 0, fit_hi = 0;

	cull_init(argv[0]);
	threads = default_threads();
	c.theta = parse_list("--thetas", "0,10,20", &c.nth, 0, 90);
	c.f = parse_list("--fractions", "1,0.8,0.6,0.4,0.2,0.1", &c.nf, 0, 1);
	c.alpha = parse_alphas("0.5:20:16", &c.na);
	while ((opt = getopt_long(argc, argv, "N:o:qvhV", lo, NULL)) != -1) {
		switch (opt) {
		case 'N': c.N = (int)parse_int("--dim", optarg, 2, 100000); break;
		case 'r': c.reps = (int)parse_int("--reps", optarg, 1, 1000000); break;
		case 'T': free(c.theta); c.theta = parse_list("--thetas", optarg, &c.nth, 0, 90); break;
		case 'f':
			free(c.f);
			c.f = parse_list("--fractions", optarg, &c.nf, 0, 1);
			for (int i = 0; i < c.nf; i++)
				if (!(c.f[i] > 0))
					die(EXIT_USAGE, "--fractions: a kept fraction must be above 0");
			break;
		case 'a': free(c.alpha); c.alpha = parse_alphas(optarg, &c.na); break;
		case 'p': {
			char *buf = xstrdup(optarg), *save = NULL, *tok;
			c.pol[HARD] = c.pol[EASY] = 0;
			for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				if (strcmp(tok, "hard") == 0)
					c.pol[HARD] = 1;
				else if (strcmp(tok, "easy") == 0)
					c.pol[EASY] = 1;
				else
					die(EXIT_USAGE, "--policies: expected hard and/or easy, got '%s'", tok);
			}
			free(buf);
			if (!c.pol[HARD] && !c.pol[EASY])
				die(EXIT_USAGE, "--policies: empty list");
			break;
		}
		case 's': c.seed = (uint64_t)parse_int("--seed", optarg, 0, INT64_MAX); break;
		case 't': threads = parse_threads(optarg); break;
		case 'e': c.mm.tol = parse_double("--tol", optarg, 1e-14, 1); break;
		case 'm': c.mm.max_epochs = parse_int("--max-epochs", optarg, 1, INT64_MAX); break;
		case 'o': outpath = optarg; break;
		case 'q': c.quiet = 1; break;
		case 'v': c.verbose = 1; break;
		case 'S': solve = optarg; break;
		case 'F': frontier = optarg; break;
		case 'k': points = (int)parse_int("--points", optarg, 2, 100000); break;
		case 'R': {
			char *colon = strchr(optarg, ':'), *a;
			if (!colon)
				die(EXIT_USAGE, "--fit-range: expected LO:HI, got '%s'", optarg);
			a = xstrndup(optarg, (size_t)(colon - optarg));
			fit_lo = parse_double("--fit-range", a, 0, 1e6);
			fit_hi = parse_double("--fit-range", colon + 1, fit_lo, 1e6);
			free(a);
			break;
		}
		case 'P': fits = optarg; break;
		case 'h': usage(stdout, EXIT_OK); break;
		case 'V': version = 1; break;
		default:
			fprintf(stderr, "usage: see %s --help\n", progname);
			exit(EXIT_USAGE);
		}
	}
	if (version)
		print_version("cull-theory", NULL);
	if (optind != argc)
		die(EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[optind]);
	if (solve && frontier)
		die(EXIT_USAGE, "--solve and --frontier do not go together");
	/* one BLAS thread per worker: parallelism is over independent draws */
	openblas_set_num_threads(1);
	if (solve)
		rc = solve_file(solve, &c, outpath);
	else if (frontier)
		rc = frontier_main(frontier, points, fit_lo, fit_hi, fits, outpath);
	else
		rc = simulate(&c, threads, outpath);
	free(c.theta);
	free(c.f);
	free(c.alpha);
	return rc;
}
