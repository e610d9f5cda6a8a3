/* Parity of nn/ssl with PyTorch: NT-Xent, Sinkhorn and SwAV, the projection head, against ssl_ref.py fixtures. */
#include "../unit/check.h"
#include "ssl.h"
#include "layers.h"
#include "safetensors.h"
#include "io.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/*
 * Tolerances: cull computes in float32 from the same float32 inputs that torch took to
 * float64. Tensors are compared by nerr, the largest difference over the largest
 * reference value (the error on the tensor's scale); losses by their relative difference.
 * float32 rounding through these few small layers stays under 5e-7 on tensors and 1e-7 on
 * losses (measured); the bars leave 20x room for other BLAS kernels and summation orders.
 */
#define TOL 1e-5
#define TOL_LOSS 1e-6

/* max |a - b| / max |b| */
static double nerr(const float *a, const float *b, size_t n)
{
	double d = 0, s = 0;
	for (size_t i = 0; i < n; i++) {
		double e = fabs((double)a[i] - b[i]);
		if (isnan(e))
			return INFINITY;
		if (e > d) d = e;
		if (fabs(b[i]) > s) s = fabs(b[i]);
	}
	return s > 0 ? d / s : d;
}

static double max_abs(const float *a, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		m = fmax(m, fabs(a[i]));
	return m;
}

static double rel(double a, double b)
{
	double e = fabs(a - b) / fabs(b);
	return isnan(e) ? INFINITY : e;
}

static const char *fixture;

static float *get(const st_file *f, const char *name, size_t want)
{
	const st_entry *e = st_find(f, name);
	if (!e)
		die(EXIT_DATA, "%s lacks %s", fixture, name);
	if (want && (size_t)st_numel(e) != want)
		die(EXIT_DATA, "%s: %s has %lld values, want %zu", fixture, name,
		    (long long)st_numel(e), want);
	float *p = xmalloc(sizeof(float) * (size_t)(st_numel(e) + 1));
	st_to_f32(f, e, p);
	return p;
}

/* get() with a printf-style name */
static float *getf(const st_file *f, size_t want, const char *fmt, ...)
{
	char key[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(key, sizeof key, fmt, ap);
	va_end(ap);
	return get(f, key, want);
}

static void test_ntxent(const st_file *ref)
{
	const st_entry *ze = st_find(ref, "ntxent.z");
	if (!ze || ze->ndim != 2)
		die(EXIT_DATA, "%s lacks a 2-d ntxent.z", fixture);
	int m = (int)ze->shape[0], d = (int)ze->shape[1], n = m / 2;
	size_t N = (size_t)m * d;
	float *z = get(ref, "ntxent.z", N), *temps = get(ref, "ntxent.t", 2);
	float *loss = get(ref, "ntxent.loss", 2), *acc = get(ref, "ntxent.acc", 2);
	float *dz_ref = get(ref, "ntxent.dz", 2 * N);
	float *zn = xmalloc(sizeof(float) * N), *norms = xmalloc(sizeof(float) * m);
	float *prob = xmalloc(sizeof(float) * m * m), *dzn = xmalloc(sizeof(float) * N);
	float *dz = xmalloc(sizeof(float) * N);

	for (int j = 0; j < 2; j++) {
		float t = temps[j];
		l2norm_forward(zn, norms, z, m, d);
		double l = ntxent_forward(prob, zn, n, d, t);
		double a = ntxent_pair_accuracy(prob, n);
		memset(dzn, 0, sizeof(float) * N);
		memset(dz, 0, sizeof(float) * N);
		ntxent_backward(dzn, prob, zn, n, d, t);
		l2norm_backward(dz, dzn, zn, norms, m, d);
		double e = rel(l, loss[j]);
		CHECK(e <= TOL_LOSS, "ntxent t=%g: loss %.7f vs torch %.7f (rel err %.1e)", t, l, loss[j],
		      e);
		CHECK(fabs(a - acc[j]) < 1e-6, "ntxent t=%g: pair accuracy %.4f vs torch %.4f", t, a,
		      acc[j]);
		e = nerr(dz, dz_ref + j * N, N);
		CHECK(e <= TOL, "ntxent t=%g: dloss/dz of raw z through the normalisation (err %.1e)", t,
		      e);
	}
	free(z); free(temps); free(loss); free(acc); free(dz_ref); free(zn); free(norms);
	free(prob); free(dzn); free(dz);
}

/* codes[2n,k] from each view's scores, as SwAV */
static void codes_of(float *codes, const float *scores, int n, int k, float eps, int iters)
{
	sinkhorn(codes, scores, n, k, eps, iters);
	sinkhorn(codes + (size_t)n * k, scores + (size_t)n * k, n, k, eps, iters);
}

static void test_swav(const st_file *ref)
{
	const st_entry *ze = st_find(ref, "swav.z"), *pe = st_find(ref, "swav.proto");
	if (!ze || !pe || ze->ndim != 2 || pe->ndim != 2)
		die(EXIT_DATA, "%s lacks 2-d swav.z and swav.proto", fixture);
	int m = (int)ze->shape[0], d = (int)ze->shape[1], k = (int)pe->shape[0], n = m / 2;
	size_t nz = (size_t)m * d, nw = (size_t)k * d, ns = (size_t)m * k;
	float *z = get(ref, "swav.z", nz), *w = get(ref, "swav.proto", nw);
	float *hyper = get(ref, "swav.hyper", 3), *loss = get(ref, "swav.loss", 1);
	float *scores_ref = get(ref, "swav.scores", ns), *codes_ref = get(ref, "swav.codes", ns);
	float *dz_ref = get(ref, "swav.dz", nz), *dw_ref = get(ref, "swav.dproto", nw);
	float eps = hyper[0], t = hyper[1];
	int iters = (int)hyper[2];
	float *wnorms = xmalloc(sizeof(float) * k), *zn = xmalloc(sizeof(float) * nz);
	float *norms = xmalloc(sizeof(float) * m), *scores = xmalloc(sizeof(float) * ns);
	float *codes = xmalloc(sizeof(float) * ns), *prob = xmalloc(sizeof(float) * ns);
	float *ds = xcalloc(ns, sizeof(float)), *dzn = xmalloc(sizeof(float) * nz);
	float *dz = xcalloc(nz, sizeof(float)), *dw = xcalloc(nw, sizeof(float));

	l2norm_forward(w, wnorms, w, k, d);
	l2norm_forward(zn, norms, z, m, d);
	linear_forward(scores, zn, w, NULL, m, d, k);
	double e = nerr(scores, scores_ref, ns);
	CHECK(e <= TOL, "swav: scores of normalised z and prototypes (err %.1e)", e);
	codes_of(codes, scores, n, k, eps, iters);
	e = nerr(codes, codes_ref, ns);
	CHECK(e <= TOL, "swav: sinkhorn codes (eps %g, %d iterations) vs distributed_sinkhorn "
	      "(err %.1e)", eps, iters, e);
	double l = swav_forward(prob, scores, codes, n, k, t);
	e = rel(l, loss[0]);
	CHECK(e <= TOL_LOSS, "swav t=%g: swapped loss %.7f vs torch %.7f (rel err %.1e)", t, l,
	      loss[0], e);
	swav_backward(ds, prob, codes, n, k, t);
	linear_backward(dzn, dw, NULL, ds, zn, w, m, d, k, NN_OVERWRITE);
	l2norm_backward(dz, dzn, zn, norms, m, d);
	e = nerr(dz, dz_ref, nz);
	CHECK(e <= TOL, "swav: dloss/dz of raw z (err %.1e)", e);
	e = nerr(dw, dw_ref, nw);
	CHECK(e <= TOL, "swav: dloss/dprototypes (err %.1e)", e);
	free(z); free(w); free(hyper); free(loss); free(scores_ref); free(codes_ref); free(dz_ref);
	free(dw_ref); free(wnorms); free(zn); free(norms); free(scores); free(codes); free(prob);
	free(ds); free(dzn); free(dz); free(dw);
}

/* the head of case P, with torch's initial state_dict copied in by name */
static nn_head *load_head(const st_file *ref, const char *P, int64_t *cfg)
{
	char key[256];
	const st_entry *ce;

	snprintf(key, sizeof key, "%s.cfg", P);
	if (!(ce = st_find(ref, key)) || st_numel(ce) != 5)
		die(EXIT_DATA, "%s lacks %s", fixture, key);
	st_to_i64(ref, ce, cfg);
	nn_head *h = nn_head_create((int)cfg[0], (int)cfg[1], (int)cfg[2], (int)cfg[3], 1);
	int found = 0, shapes = 1, extra = 0;
	size_t plen = strlen(P) + strlen(".init.");
	for (int i = 0; i < h->nt; i++) {
		const nn_tensor *t = &h->t[i];
		snprintf(key, sizeof key, "%s.init.%s", P, t->name);
		const st_entry *e = st_find(ref, key);
		if (!e) {
			printf("# %s: torch's state_dict has no %s\n", P, t->name);
			continue;
		}
		found++;
		int same = e->ndim == t->ndim && (size_t)st_numel(e) == t->numel;
		for (int k = 0; same && k < t->ndim; k++)
			same = e->shape[k] == t->shape[k];
		if (!same) {
			printf("# %s: %s has another shape in torch\n", P, t->name);
			shapes = 0;
			continue;
		}
		if (t->kind == NN_COUNTER)
			st_to_i64(ref, e, h->counters + t->off);
		else
			st_to_f32(ref, e, nn_head_data(h, t));
	}
	for (size_t i = 0; i < ref->n; i++) {
		const char *nm = ref->e[i].name;
		if (strncmp(nm, P, strlen(P)) || strncmp(nm + strlen(P), ".init.", 6))
			continue;
		int known = 0;
		for (int j = 0; j < h->nt && !known; j++)
			known = strcmp(nm + plen, h->t[j].name) == 0;
		if (!known) {
			printf("# %s: cull's head has no %s\n", P, nm + plen);
			extra++;
		}
	}
	CHECK(found == h->nt && shapes && !extra, "%s: the head's %d tensors are torch's state_dict "
	      "(names and shapes)", P, h->nt);
	return h;
}

static void test_head(const st_file *ref, const char *P)
{
	int64_t cfg[5];
	nn_head *h = load_head(ref, P, cfg);
	int rows = (int)cfg[4], n = rows / 2;
	size_t nx = (size_t)rows * h->in, nz = (size_t)rows * h->out;
	size_t ns = (size_t)rows * (h->nproto > 0 ? h->nproto : 1);
	float *x = getf(ref, nx, "%s.x", P), *z_ref = getf(ref, nz, "%s.z", P);
	float *dx_ref = getf(ref, nx, "%s.dx", P);
	float *dx = xcalloc(nx, sizeof(float)), *dz = xcalloc(nz, sizeof(float));
	float *zn = xmalloc(sizeof(float) * nz), *norms = xmalloc(sizeof(float) * rows);
	float *scores = xmalloc(sizeof(float) * ns), *codes = xmalloc(sizeof(float) * ns);
	float *prob = xmalloc(sizeof(float) * ns), *ds = xcalloc(ns, sizeof(float));
	float *dzn = xmalloc(sizeof(float) * nz);
	double e;

	nn_head_setup(h, rows);
	nn_head_zero_grad(h);
	if (h->nproto > 0)
		nn_head_normalize_prototypes(h);
	const float *z = nn_head_forward(h, x, rows);
	e = nerr(z, z_ref, nz);
	CHECK(e <= TOL, "%s: training-mode forward%s (err %.1e)", P,
	      h->hidden > 0 ? " (BN batch statistics)" : "", e);
	if (h->nproto > 0) {
		/* SwAV's step on the head's output */
		float *proto = nn_head_data(h, &h->t[h->proto]), *loss = getf(ref, 1, "%s.loss", P);
		float *codes_ref = getf(ref, ns, "%s.codes", P), *hyper = get(ref, "swav.hyper", 3);
		float eps = hyper[0], t = hyper[1];
		int iters = (int)hyper[2];
		l2norm_forward(zn, norms, z, rows, h->out);
		linear_forward(scores, zn, proto, NULL, rows, h->out, h->nproto);
		codes_of(codes, scores, n, h->nproto, eps, iters);
		e = nerr(codes, codes_ref, ns);
		CHECK(e <= TOL, "%s: sinkhorn codes (err %.1e)", P, e);
		double l = swav_forward(prob, scores, codes, n, h->nproto, t);
		e = rel(l, loss[0]);
		CHECK(e <= TOL_LOSS, "%s: SwAV loss %.7f vs torch %.7f (rel err %.1e)", P, l, loss[0], e);
		swav_backward(ds, prob, codes, n, h->nproto, t);
		linear_backward(dzn, h->grads + h->t[h->proto].off, NULL, ds, zn, proto, rows, h->out,
		                h->nproto, NN_OVERWRITE);
		l2norm_backward(dz, dzn, zn, norms, rows, h->out);
		free(loss);
		free(codes_ref);
		free(hyper);
	} else {
		float *r = getf(ref, nz, "%s.r", P);
		memcpy(dz, r, sizeof(float) * nz);
		free(r);
	}
	nn_head_backward(h, dx, dz, x, rows);
	e = nerr(dx, dx_ref, nx);
	CHECK(e <= TOL, "%s: dx (err %.1e)", P, e);

	double worst = 0, worst_stat = 0;
	const char *wname = "", *sname = "";
	int counters_ok = 1;
	float *gw1 = h->w1 >= 0 ? getf(ref, h->t[h->w1].numel, "%s.grad.%s", P, h->t[h->w1].name) : NULL;
	for (int i = 0; i < h->nt; i++) {
		const nn_tensor *t = &h->t[i];
		if (t->kind == NN_COUNTER) {
			char key[256];
			int64_t want;
			snprintf(key, sizeof key, "%s.stat.%s", P, t->name);
			const st_entry *ce = st_find(ref, key);
			if (!ce)
				die(EXIT_DATA, "%s lacks %s", fixture, key);
			st_to_i64(ref, ce, &want);
			counters_ok &= h->counters[t->off] == want;
			continue;
		}
		const char *what = t->kind == NN_PARAM ? "grad" : "stat";
		float *r = getf(ref, t->numel, t->kind == NN_PARAM ? "%s.grad.%s" : "%s.stat.%s", P,
		                t->name);
		const float *got = t->kind == NN_PARAM ? h->grads + t->off : nn_head_data(h, t);
		if (i == h->b1) {
			/* BN subtracts this bias again: its gradient is rounding noise around zero
			 * in both, measured on the scale of the weight's gradient */
			double d = 0;
			for (size_t j = 0; j < t->numel; j++)
				d = fmax(d, fabs((double)got[j] - r[j]));
			e = isnan(d) ? INFINITY : d / max_abs(gw1, h->t[h->w1].numel);
		} else {
			e = nerr(got, r, t->numel);
		}
		if (t->kind == NN_PARAM && e >= worst) {
			worst = e;
			wname = t->name;
		} else if (t->kind != NN_PARAM && e >= worst_stat) {
			worst_stat = e;
			sname = t->name;
		}
		printf("# %s: %s.%s err %.1e\n", P, what, t->name, e);
		free(r);
	}
	CHECK(worst <= TOL, "%s: every parameter gradient, worst err %.1e (%s)", P, worst, wname);
	if (h->hidden > 0) {
		CHECK(worst_stat <= TOL, "%s: BN running stats after the forward, worst err %.1e (%s)",
		      P, worst_stat, sname);
		CHECK(counters_ok, "%s: num_batches_tracked after the forward", P);
	}
	nn_head_free(h);
	free(x); free(z_ref); free(dx_ref); free(dx); free(dz); free(zn); free(norms);
	free(scores); free(codes); free(prob); free(ds); free(dzn); free(gw1);
}

int main(int argc, char **argv)
{
	char path[4096];
	cull_err err;
	st_file ref;

	cull_init(argv[0]);
	if (argc < 2) {   /* run by tests/ssl_parity.test, which makes the fixtures */
		printf("not ok ssl_parity: give the fixtures folder (tests/ssl_parity.test makes it)\n");
		return 2;
	}
	nn_set_threads(2);
	snprintf(path, sizeof path, "%s/ssl.ref.safetensors", argv[1]);
	fixture = path;
	if (st_load(&ref, path, &err) < 0)
		die(EXIT_DATA, "%s", err.msg);
	test_ntxent(&ref);
	test_swav(&ref);
	test_head(&ref, "mlp");
	test_head(&ref, "linear");
	test_head(&ref, "swav-head");
	st_free(&ref);
	return CHECK_DONE();
}
