/* Spherical k-means: k-means++ seeding, Lloyd iterations over sgemm blocks, safetensors centroid files. */
#include "kmeans.h"
#include "safetensors.h"
#include "io.h"
#include "rng.h"
#include "threads.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE__
#include <xmmintrin.h>
#endif

size_t kmeans_normalize(float *x, size_t n, int d)
{
	size_t i, zero = 0;
	int j;

	for (i = 0; i < n; i++) {
		float *r = x + i * (size_t)d;
		double s = 0;

		for (j = 0; j < d; j++)
			s += (double)r[j] * r[j];
		if (s == 0) {
			zero++;
			continue;
		}
		s = 1 / sqrt(s);
		for (j = 0; j < d; j++)
			r[j] = (float)(r[j] * s);
	}
	return zero;
}

/* ---- assignment: x blocks times c^T with sgemm, argmax per row ---- */

typedef struct {
	const float *x, *c;
	size_t n;
	int d, k;
	size_t block;
	int32_t *assign;
	float *sim;
	double *part;          /* per block: sum of (1 - sim) */
	float **scratch;       /* per thread: [block, k] */
} assign_ctx;

static size_t block_rows(int k)
{
	size_t b = ((size_t)1 << 20) / (size_t)k;

	return b < 256 ? 256 : b > 1024 ? 1024 : b;
}

/* The largest of n finite floats. */
static float row_max(const float *v, int n)
{
	float best = v[0];
	int j = 0;
#ifdef __SSE__
	if (n >= 16) {
		__m128 m0 = _mm_loadu_ps(v), m1 = m0, m2 = m0, m3 = m0;
		float t[4];

		for (; j + 16 <= n; j += 16) {
			m0 = _mm_max_ps(m0, _mm_loadu_ps(v + j));
			m1 = _mm_max_ps(m1, _mm_loadu_ps(v + j + 4));
			m2 = _mm_max_ps(m2, _mm_loadu_ps(v + j + 8));
			m3 = _mm_max_ps(m3, _mm_loadu_ps(v + j + 12));
		}
		_mm_storeu_ps(t, _mm_max_ps(_mm_max_ps(m0, m1), _mm_max_ps(m2, m3)));
		best = t[0];
		for (int q = 1; q < 4; q++)
			best = t[q] > best ? t[q] : best;
	}
#endif
	for (; j < n; j++)
		best = v[j] > best ? v[j] : best;
	return best;
}

static void assign_block(void *arg, int bi, int tid)
{
	assign_ctx *a = arg;
	size_t lo = (size_t)bi * a->block, m = a->n - lo < a->block ? a->n - lo : a->block, i;
	float *s = a->scratch[tid];
	double part = 0;
	int j;

	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, a->k, a->d, 1.0f,
	            a->x + lo * (size_t)a->d, a->d, a->c, a->d, 0.0f, s, a->k);
	for (i = 0; i < m; i++) {
		const float *row = s + i * (size_t)a->k;
		float best = row_max(row, a->k);
		int32_t arg_best = 0;

		for (j = 0; j < a->k; j++)   /* the first index holding the maximum */
			if (row[j] == best) {
				arg_best = j;
				break;
			}
		if (a->assign)
			a->assign[lo + i] = arg_best;
		if (a->sim)
			a->sim[lo + i] = best;
		part += 1.0 - (double)best;
	}
	a->part[bi] = part;
}

double kmeans_assign(int32_t *assign, float *sim, const float *x, size_t n, int d,
                     const float *c, int k)
{
	int nt = nn_threads(), t;
	assign_ctx a = { .x = x, .c = c, .n = n, .d = d, .k = k, .block = block_rows(k),
	                 .assign = assign, .sim = sim };
	size_t nb = (n + a.block - 1) / a.block, b;
	double sum = 0;

	if (n == 0)
		return 0;
	if (nb > (size_t)INT32_MAX)
		die_nomem("k-means: too many rows (%zu)", n);
	a.part = xcalloc(nb, sizeof *a.part);
	a.scratch = xcalloc((size_t)nt, sizeof *a.scratch);
	for (t = 0; t < nt; t++)
		a.scratch[t] = xmalloc((n < a.block ? n : a.block) * (size_t)k * sizeof(float));
	nn_parallel((int)nb, assign_block, &a);
	for (b = 0; b < nb; b++)      /* in block order: independent of the thread count */
		sum += a.part[b];
	for (t = 0; t < nt; t++)
		free(a.scratch[t]);
	free(a.scratch);
	free(a.part);
	return sum;
}

/* ---- centroid update: per-cluster sums in point order (thread-count independent) ---- */

typedef struct {
	const float *x;
	int d;
	const size_t *start, *members;   /* CSR: points of cluster j are members[start[j] .. start[j+1]) */
	float *c;
	int *empty;
} update_ctx;

static void update_cluster(void *arg, int j, int tid)
{
	update_ctx *u = arg;
	double *acc = xcalloc((size_t)u->d, sizeof *acc), s = 0;
	float *blk = xcalloc((size_t)u->d, sizeof *blk);
	size_t p, cnt = 0;
	int q;

	(void)tid;
	/* float sums of up to 256 rows (vectorised saxpy), folded into double */
	for (p = u->start[j]; p < u->start[j + 1]; p++) {
		cblas_saxpy(u->d, 1.0f, u->x + u->members[p] * (size_t)u->d, 1, blk, 1);
		if (++cnt == 256 || p + 1 == u->start[j + 1]) {
			for (q = 0; q < u->d; q++) {
				acc[q] += blk[q];
				blk[q] = 0;
			}
			cnt = 0;
		}
	}
	free(blk);
	for (q = 0; q < u->d; q++)
		s += acc[q] * acc[q];
	u->empty[j] = s == 0;
	if (s > 0) {
		s = 1 / sqrt(s);
		for (q = 0; q < u->d; q++)
			u->c[(size_t)j * u->d + q] = (float)(acc[q] * s);
	}
	free(acc);
}

typedef struct {
	float sim;
	size_t i;
} far_pt;

static int far_cmp(const void *a, const void *b)
{
	const far_pt *p = a, *q = b;

	if (p->sim != q->sim)
		return p->sim < q->sim ? -1 : 1;
	return p->i < q->i ? -1 : p->i > q->i;
}

/* New centroids from the assignment; empty clusters take the points farthest from their
 * own centroids (lowest similarity first, then lowest index), never emptying a cluster.
 * Returns the number re-seeded. */
static int update(float *c, int32_t *assign, float *sim, const float *x, size_t n, int d, int k)
{
	size_t *start = xcalloc((size_t)k + 1, sizeof *start), *fill, *members, i, nf = 0, next = 0;
	int *empty = xcalloc((size_t)k, sizeof *empty), j, reseeded = 0, any = 0;
	update_ctx u;

	for (i = 0; i < n; i++)
		start[assign[i] + 1]++;
	for (j = 0; j < k; j++)
		start[j + 1] += start[j];
	fill = xmalloc((size_t)k * sizeof *fill);
	memcpy(fill, start, (size_t)k * sizeof *fill);
	members = xmalloc((n ? n : 1) * sizeof *members);
	for (i = 0; i < n; i++)
		members[fill[assign[i]]++] = i;
	u = (update_ctx){ .x = x, .d = d, .start = start, .members = members, .c = c, .empty = empty };
	nn_parallel(k, update_cluster, &u);
	for (j = 0; j < k; j++)
		any |= empty[j];
	if (any) {
		far_pt *fp = xmalloc((n ? n : 1) * sizeof *fp);
		size_t *count = fill;   /* reuse: live cluster sizes */

		for (j = 0; j < k; j++)
			count[j] = start[j + 1] - start[j];
		for (i = 0; i < n; i++)
			fp[nf++] = (far_pt){ sim[i], i };
		qsort(fp, nf, sizeof *fp, far_cmp);
		for (j = 0; j < k; j++) {
			if (!empty[j])
				continue;
			while (next < nf && count[assign[fp[next].i]] <= 1)
				next++;
			if (next == nf)
				break;   /* fewer distinct points than clusters: leave it */
			i = fp[next++].i;
			count[assign[i]]--;
			count[j] = 1;
			assign[i] = j;
			sim[i] = 1;
			memcpy(c + (size_t)j * d, x + i * (size_t)d, (size_t)d * sizeof *c);
			reseeded++;
		}
		free(fp);
	}
	free(start);
	free(fill);
	free(members);
	free(empty);
	return reseeded;
}

/* ---- k-means++ seeding on a sample ---- */

#define PP_CHUNK 1024
#define PP_TRIALS 16

/* Greedy k-means++ (as scikit-learn): each step draws `trials` candidates with probability
 * proportional to 1 - best similarity (the squared distance on the sphere, halved) and keeps
 * the one that lowers the total the most. */
typedef struct {
	const float *s;        /* sample [ns, d] */
	size_t ns;
	int d, trials;
	const float *cand;     /* candidates [trials, d] */
	float *best;           /* [ns] best similarity so far */
	float *sims;           /* [ns, trials] */
	double *part;          /* [nchunks, trials]: potential with each candidate added */
	double *wpart;         /* [nchunks]: current weights */
	int pick;              /* chosen candidate for the update pass, -1: evaluate */
} pp_ctx;

static double weight(float best)
{
	return best < 1 ? 1 - (double)best : 0;
}

static void pp_chunk(void *arg, int ci, int tid)
{
	pp_ctx *p = arg;
	size_t lo = (size_t)ci * PP_CHUNK, m = p->ns - lo < PP_CHUNK ? p->ns - lo : PP_CHUNK, i;
	int t, nt = p->trials;
	double *part = p->part + (size_t)ci * nt, w = 0;

	(void)tid;
	if (p->pick >= 0) {     /* take candidate `pick` */
		for (i = lo; i < lo + m; i++) {
			float v = p->sims[i * nt + p->pick];

			if (v > p->best[i])
				p->best[i] = v;
			w += weight(p->best[i]);
		}
		p->wpart[ci] = w;
		return;
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, nt, p->d, 1.0f,
	            p->s + lo * (size_t)p->d, p->d, p->cand, p->d, 0.0f, p->sims + lo * nt, nt);
	for (t = 0; t < nt; t++)
		part[t] = 0;
	for (i = lo; i < lo + m; i++)
		for (t = 0; t < nt; t++) {
			float v = p->sims[i * nt + t];

			part[t] += weight(v > p->best[i] ? v : p->best[i]);
		}
}

/* Draw a sample index with probability proportional to its weight. */
static size_t draw(const pp_ctx *p, size_t nchunks, double total, uint64_t *rng)
{
	double u = rng_uniform(rng) * total, acc = 0;
	size_t ch, i, pick;

	for (ch = 0; ch + 1 < nchunks && acc + p->wpart[ch] <= u; ch++)
		acc += p->wpart[ch];
	pick = ch * PP_CHUNK;
	for (i = ch * PP_CHUNK; i < p->ns && i < (ch + 1) * PP_CHUNK; i++) {
		double w = weight(p->best[i]);

		if (w > 0)
			pick = i;
		if (w > 0 && (acc += w) > u)
			break;
	}
	return pick;
}

static void seed_pp(float *c, const float *x, size_t n, int d, const kmeans_opts *o, uint64_t *rng)
{
	int k = o->k, t, l, nt;
	size_t ns = o->init_sample ? o->init_sample : (size_t)k * 8 > 4096 ? (size_t)k * 8 : 4096;
	size_t i, nchunks;
	float *s, *cand;
	pp_ctx p;

	if (ns > n)
		ns = n;
	if (ns < (size_t)k)
		ns = (size_t)k < n ? (size_t)k : n;
	if (ns == n) {
		s = (float *)x;
	} else {
		/* a partial Fisher-Yates shuffle picks ns distinct points; keep them in input order */
		size_t *idx = xmalloc(n * sizeof *idx), q = 0;
		unsigned char *mark = xcalloc(n, 1);

		for (i = 0; i < n; i++)
			idx[i] = i;
		for (i = 0; i < ns; i++) {
			size_t r = i + (size_t)(rng_next(rng) % (n - i)), tmp = idx[i];

			idx[i] = idx[r];
			idx[r] = tmp;
			mark[idx[i]] = 1;
		}
		for (i = 0; i < n; i++)
			if (mark[i])
				idx[q++] = i;
		free(mark);
		s = xmalloc(ns * (size_t)d * sizeof *s);
		for (i = 0; i < ns; i++)
			memcpy(s + i * (size_t)d, x + idx[i] * (size_t)d, (size_t)d * sizeof *s);
		free(idx);
	}
	nt = 2 + (int)log((double)k);
	if (nt > PP_TRIALS)
		nt = PP_TRIALS;
	nchunks = (ns + PP_CHUNK - 1) / PP_CHUNK;
	cand = xmalloc((size_t)nt * d * sizeof *cand);
	p = (pp_ctx){ .s = s, .ns = ns, .d = d, .trials = 1, .cand = cand,
	              .best = xmalloc(ns * sizeof(float)), .sims = xmalloc(ns * (size_t)nt * sizeof(float)),
	              .part = xmalloc(nchunks * (size_t)nt * sizeof(double)),
	              .wpart = xmalloc(nchunks * sizeof(double)) };
	for (i = 0; i < ns; i++)
		p.best[i] = -2;
	/* the first centre uniformly, then greedy steps */
	memcpy(cand, s + (size_t)(rng_next(rng) % ns) * d, (size_t)d * sizeof *cand);
	p.pick = -1;
	nn_parallel((int)nchunks, pp_chunk, &p);
	p.pick = 0;
	nn_parallel((int)nchunks, pp_chunk, &p);
	memcpy(c, cand, (size_t)d * sizeof *c);
	for (t = 1; t < k; t++) {
		double total = 0, bestpot = INFINITY;
		int bl = 0;
		size_t ch;

		for (ch = 0; ch < nchunks; ch++)
			total += p.wpart[ch];
		p.trials = total > 0 ? nt : 1;
		for (l = 0; l < p.trials; l++) {
			size_t pick = total > 0 ? draw(&p, nchunks, total, rng) : (size_t)(rng_next(rng) % ns);

			memcpy(cand + (size_t)l * d, s + pick * (size_t)d, (size_t)d * sizeof *cand);
		}
		p.pick = -1;
		nn_parallel((int)nchunks, pp_chunk, &p);
		for (l = 0; l < p.trials; l++) {
			double pot = 0;

			for (ch = 0; ch < nchunks; ch++)
				pot += p.part[ch * p.trials + l];
			if (pot < bestpot) {
				bestpot = pot;
				bl = l;
			}
		}
		memcpy(c + (size_t)t * d, cand + (size_t)bl * d, (size_t)d * sizeof *c);
		p.pick = bl;
		nn_parallel((int)nchunks, pp_chunk, &p);
	}
	free(p.best);
	free(p.sims);
	free(p.part);
	free(p.wpart);
	free(cand);
	if (s != x)
		free(s);
}

int kmeans_fit(float *c, int32_t *assign, float *sim, kmeans_result *res, const float *x,
               size_t n, int d, const kmeans_opts *o, cull_err *e)
{
	uint64_t rng = o->seed ^ 0x636f6c6c6b6d6e73ULL;   /* "collkmns" */
	int32_t *as;
	float *sm;
	double obj, prev, *hist;
	int it, done = 0, reseeded = 0;

	if (o->k < 1 || (size_t)o->k > n)
		return cull_err_set(e, EXIT_USAGE, "k-means: k = %d needs 1 <= k <= n = %zu", o->k,
		                    n);
	as = assign ? assign : xmalloc((n ? n : 1) * sizeof *as);
	sm = sim ? sim : xmalloc((n ? n : 1) * sizeof *sm);
	hist = xcalloc((size_t)o->iters + 1, sizeof *hist);
	seed_pp(c, x, n, d, o, &rng);
	obj = kmeans_assign(as, sm, x, n, d, c, o->k) / (double)n;
	hist[0] = obj;
	if (o->verbose)
		note("k-means: init objective %.6f", obj);
	for (it = 0; it < o->iters; it++) {
		int r = update(c, as, sm, x, n, d, o->k);

		reseeded += r;
		prev = obj;
		obj = kmeans_assign(as, sm, x, n, d, c, o->k) / (double)n;
		hist[++done] = obj;
		if (o->verbose)
			note("k-means: iteration %d objective %.6f%s", done, obj,
			     r ? " (empty clusters re-seeded)" : "");
		if (prev - obj < o->tol * prev)
			break;
	}
	if (res) {
		res->iters = done;
		res->reseeded = reseeded;
		res->objective = obj;
		res->history = hist;
	} else {
		free(hist);
	}
	if (!assign)
		free(as);
	if (!sim)
		free(sm);
	return 0;
}

/* ---- cluster separation ---- */

static int desc_float(const void *a, const void *b)
{
	float p = *(const float *)a, q = *(const float *)b;

	return p > q ? -1 : p < q;
}

void kmeans_separation(float *sep, const float *c, int k, int d, int m)
{
	float *g = xmalloc((size_t)k * k * sizeof *g), *row = xmalloc((size_t)k * sizeof *row);
	int i, j, q;

	if (m > k - 1)
		m = k - 1;
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, k, k, d, 1.0f, c, d, c, d, 0.0f, g, k);
	for (i = 0; i < k; i++) {
		double s = 0;

		for (j = 0, q = 0; j < k; j++)
			if (j != i)
				row[q++] = g[(size_t)i * k + j];
		qsort(row, (size_t)q, sizeof *row, desc_float);
		for (j = 0; j < m; j++)
			s += 1 - (double)row[j];
		sep[i] = m > 0 ? (float)(s / m) : 0;
	}
	free(g);
	free(row);
}

/* ---- centroid files (safetensors, formats/safetensors.h) ---- */

int kmeans_save(const char *path, const kmeans_file *kf, cull_err *e)
{
	st_writer *w = st_writer_new();
	int64_t cs[2] = { kf->k, kf->d }, ls[1] = { (int64_t)kf->nclasses };
	int64_t ms[2] = { (int64_t)kf->nclasses, kf->d };
	char *tmp;
	int rc;

	st_meta(w, "format", "cull-kmeans");
	st_add(w, "centroids", ST_F32, 2, cs, kf->c);
	if (kf->nclasses) {
		st_add(w, "classes", ST_I64, 1, ls, kf->classes);
		st_add(w, "class_means", ST_F32, 2, ms, kf->class_means);
	}
	if (!is_replaceable(path))
		return st_write(w, path, e);
	/* atomically: an old file survives a failed write */
	tmp = temp_path(path);
	rc = st_write(w, tmp, e);
	if (rc == 0)
		rc = cull_commit_file(tmp, path, e);
	free(tmp);
	return rc;
}

/* Normalise rows that are not unit already, so saved centroids load bit for bit. */
static void renormalize(float *v, size_t n, int d)
{
	for (size_t i = 0; i < n; i++) {
		double s = 0;

		for (int j = 0; j < d; j++)
			s += (double)v[i * d + j] * v[i * d + j];
		if (fabs(s - 1) > 1e-5)
			kmeans_normalize(v + i * d, 1, d);
	}
}

/* A tensor of ndim dimensions, each in [1, 2^31]: 0, or -1 with e naming the file. */
static int check_shape(const st_entry *t, int ndim, const char *path, cull_err *e)
{
	if (t->ndim != ndim)
		return cull_err_set(e, EXIT_DATA, "%s: tensor '%s' must have %d dimension%s", path,
		                    t->name, ndim, ndim > 1 ? "s" : "");
	for (int i = 0; i < ndim; i++)
		if (t->shape[i] < 1 || t->shape[i] > ((int64_t)1 << 31))
			return cull_err_set(e, EXIT_DATA, "%s: tensor '%s' has a bad shape", path,
			                    t->name);
	return 0;
}

/* The optional class means: 0, or -1 with e set. */
static int load_classes(kmeans_file *kf, const st_file *f, const char *path, cull_err *e)
{
	const st_entry *cl = st_find(f, "classes"), *cm = st_find(f, "class_means");

	if (!cl != !cm)
		return cull_err_set(e, EXIT_DATA, "%s: 'classes' and 'class_means' do not match",
		                    path);
	if (!cl)
		return 0;
	if (check_shape(cl, 1, path, e) < 0 || check_shape(cm, 2, path, e) < 0)
		return -1;
	if (cm->shape[0] != cl->shape[0] || cm->shape[1] != kf->d)
		return cull_err_set(e, EXIT_DATA, "%s: 'classes' and 'class_means' do not match",
		                    path);
	kf->nclasses = (size_t)cl->shape[0];
	kf->classes = xmalloc(kf->nclasses * sizeof *kf->classes);
	st_to_i64(f, cl, kf->classes);
	kf->class_means = xmalloc(kf->nclasses * kf->d * sizeof(float));
	st_to_f32(f, cm, kf->class_means);
	renormalize(kf->class_means, kf->nclasses, kf->d);
	return 0;
}

int kmeans_load(kmeans_file *kf, const char *path, cull_err *e)
{
	st_file f;
	cull_err sub;
	const st_entry *c;

	memset(kf, 0, sizeof *kf);
	if (st_load(&f, path, &sub) < 0)
		/* the reason is cut at 511 bytes, as it always was */
		return cull_err_set(e, EXIT_DATA, "%s: not a safetensors centroid file (%.511s)",
		                    path, sub.msg);
	if (!(c = st_find(&f, "centroids"))) {
		cull_err_set(e, EXIT_DATA, "%s: no 'centroids' tensor", path);
		goto fail;
	}
	if (check_shape(c, 2, path, e) < 0)
		goto fail;
	kf->k = (int)c->shape[0];
	kf->d = (int)c->shape[1];
	kf->c = xmalloc((size_t)kf->k * kf->d * sizeof(float));
	st_to_f32(&f, c, kf->c);
	renormalize(kf->c, (size_t)kf->k, kf->d);
	if (load_classes(kf, &f, path, e) < 0)
		goto fail;
	st_free(&f);
	return 0;
fail:
	st_free(&f);
	kmeans_file_free(kf);
	return -1;
}

void kmeans_file_free(kmeans_file *kf)
{
	free(kf->c);
	free(kf->classes);
	free(kf->class_means);
	memset(kf, 0, sizeof *kf);
}
