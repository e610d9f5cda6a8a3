/* cull-score: prototype scores from embedding records (spherical k-means), fit or apply, SemDeDup. */
#include "io.h"
#include "kmeans.h"
#include "record.h"
#include "rng.h"
#include "threads.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage_short[] = "usage: cull-score [--k K] [--iters I] [--fit-sample N] "
	"[--save-centroids F [--fit-only]] [--centroids F] [--dedup EPS] [FILE]; see --help\n";
static const char usage[] =
	"usage: cull-score [options] [FILE]\n"
	"Reads embedding records (FILE or standard input), writes them with prototype scores.\n"
	"  -k, --k K               clusters (default 100)\n"
	"  -i, --iters I           Lloyd iterations at most (default 20)\n"
	"      --tol T             stop when the objective improves by less than T (default 1e-4)\n"
	"      --fit-sample N      fit on a reservoir sample of N records, then score them all\n"
	"      --save-centroids F  write the centroids (and class means) to F (safetensors)\n"
	"      --fit-only          with --save-centroids: fit and save, score nothing, write\n"
	"                          no records (the global step of a per-shard workflow)\n"
	"      --centroids F       apply saved centroids only: one streaming pass\n"
	"      --dedup EPS         mark near-duplicates: cosine > 1 - EPS to an earlier kept\n"
	"                          record of the same cluster (fields dup, dup_of)\n"
	"      --stats F           write per-cluster records (size, mean_dist, sep) to F\n"
	"      --sep-neighbors M   centroids averaged for cluster_sep (default 20)\n"
	"      --field NAME        the embedding field (default emb)\n"
	"      --keep-emb          keep the embedding field in the output\n"
	"      --seed S            random seed (default 0)\n"
	"      --threads T         threads (default: all CPUs or $CULL_THREADS)\n"
	"  -v, --verbose           objective per iteration\n"
	"  -h, --help              this help\n"
	"      --version           print the version\n";

typedef struct {
	int k, iters, keep_emb, verbose, sep_m, threads, fit_only;
	double tol, dedup;     /* dedup < 0: no --dedup */
	uint64_t seed, fit_sample;
	const char *save, *centroids, *field, *stats, *input;
} options;

/* Fills o from the command line; a usage error exits 2, --help and --version exit 0. */
static void parse_options(options *o, int argc, char **argv)
{
	enum { O_TOL = 256, O_FIT, O_SAVE, O_CENT, O_DEDUP, O_STATS, O_SEP, O_FIELD, O_KEEP,
	       O_SEED, O_THREADS, O_VERSION, O_FITONLY };
	static const struct option longopts[] = {
		{ "k", required_argument, NULL, 'k' },
		{ "iters", required_argument, NULL, 'i' },
		{ "tol", required_argument, NULL, O_TOL },
		{ "fit-sample", required_argument, NULL, O_FIT },
		{ "save-centroids", required_argument, NULL, O_SAVE },
		{ "fit-only", no_argument, NULL, O_FITONLY },
		{ "centroids", required_argument, NULL, O_CENT },
		{ "dedup", required_argument, NULL, O_DEDUP },
		{ "stats", required_argument, NULL, O_STATS },
		{ "sep-neighbors", required_argument, NULL, O_SEP },
		{ "field", required_argument, NULL, O_FIELD },
		{ "keep-emb", no_argument, NULL, O_KEEP },
		{ "seed", required_argument, NULL, O_SEED },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c, k_set = 0;

	*o = (options){ .k = 100, .iters = 20, .tol = 1e-4, .sep_m = 20, .dedup = -1, .field = "emb" };
	while ((c = getopt_long(argc, argv, "k:i:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': o->k = (int)parse_int("--k", optarg, 1, 1 << 24); k_set = 1; break;
		case 'i': o->iters = (int)parse_int("--iters", optarg, 0, 1 << 20); break;
		case O_TOL: o->tol = parse_double("--tol", optarg, 0, 1); break;
		case O_FIT: o->fit_sample = (uint64_t)parse_int("--fit-sample", optarg, 1, 1LL << 40); break;
		case O_SAVE: o->save = optarg; break;
		case O_FITONLY: o->fit_only = 1; break;
		case O_CENT: o->centroids = optarg; break;
		case O_DEDUP: o->dedup = parse_double("--dedup", optarg, 0, 2); break;
		case O_STATS: o->stats = optarg; break;
		case O_SEP: o->sep_m = (int)parse_int("--sep-neighbors", optarg, 1, 1 << 24); break;
		case O_FIELD: o->field = optarg; break;
		case O_KEEP: o->keep_emb = 1; break;
		case O_SEED: o->seed = (uint64_t)parse_int("--seed", optarg, 0, INT64_MAX); break;
		case O_THREADS: o->threads = parse_threads(optarg); break;
		case 'v': o->verbose = 1; break;
		case 'h': fputs(usage, stdout); xfclose(stdout, "<stdout>"); exit(0);
		case O_VERSION: print_version("cull-score", NULL);
		default: fputs(usage_short, stderr); exit(EXIT_USAGE);
		}
	}
	if (argc - optind > 1) {
		fputs(usage_short, stderr);
		exit(EXIT_USAGE);
	}
	o->input = optind < argc ? argv[optind] : "-";
	if (o->centroids && (k_set || o->fit_sample || o->save))
		die(EXIT_USAGE, "--centroids applies saved centroids: it excludes --k, --fit-sample "
		    "and --save-centroids");
	if (o->fit_only && (!o->save || o->centroids || o->dedup >= 0 || o->stats || o->keep_emb))
		die(EXIT_USAGE, "--fit-only needs --save-centroids and excludes --centroids, --dedup, "
		    "--stats and --keep-emb");
}

/* ---- classes: label -> row of the class sums / means (open addressing) ---- */

typedef struct {
	int64_t *label;
	int32_t *slot;         /* hash slots: index + 1, 0 = empty */
	size_t n, cap, nslots;
	double *sum;           /* [cap, d] while fitting */
	float *mean;           /* [n, d] unit rows */
} classes;

static size_t cls_find(const classes *c, int64_t label)
{
	size_t h;

	if (!c->nslots)
		return (size_t)-1;
	h = (size_t)((uint64_t)label * 0x9e3779b97f4a7c15ULL) & (c->nslots - 1);
	for (; c->slot[h]; h = (h + 1) & (c->nslots - 1))
		if (c->label[c->slot[h] - 1] == label)
			return (size_t)c->slot[h] - 1;
	return (size_t)-1;
}

static size_t cls_add(classes *c, int64_t label, int d)
{
	size_t i = cls_find(c, label), h;

	if (i != (size_t)-1)
		return i;
	if (2 * (c->n + 1) > c->nslots) {
		size_t ns = c->nslots ? 2 * c->nslots : 64;

		free(c->slot);
		c->slot = xcalloc(ns, sizeof *c->slot);
		c->nslots = ns;
		for (i = 0; i < c->n; i++) {
			h = (size_t)((uint64_t)c->label[i] * 0x9e3779b97f4a7c15ULL) & (ns - 1);
			while (c->slot[h])
				h = (h + 1) & (ns - 1);
			c->slot[h] = (int32_t)i + 1;
		}
	}
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 16;
		c->label = xreallocarray(c->label, c->cap, sizeof *c->label);
		c->sum = xreallocarray(c->sum, c->cap * (size_t)d, sizeof *c->sum);
	}
	memset(c->sum + c->n * (size_t)d, 0, (size_t)d * sizeof *c->sum);
	c->label[c->n] = label;
	h = (size_t)((uint64_t)label * 0x9e3779b97f4a7c15ULL) & (c->nslots - 1);
	while (c->slot[h])
		h = (h + 1) & (c->nslots - 1);
	c->slot[h] = (int32_t)c->n + 1;
	return c->n++;
}

static void cls_free(classes *c)
{
	free(c->label);
	free(c->slot);
	free(c->sum);
}

/* ---- reading embeddings ---- */

/* The record's embedding, normalised, into row[dim]; returns 1 if it is all zero (left
 * zero). Dies on a missing or bad one. */
static size_t get_emb(float *row, int dim, const char *field, const record *r, rec_reader *rd)
{
	const unsigned char *p;
	long n = rec_get_floats(r, field, &p);
	int j;

	if (n < 0)
		die(EXIT_DATA, "%s: record %llu (key '%s') has no float32 '%s' field",
		    rec_source(rd), (unsigned long long)rec_count(rd), rec_key(r), field);
	if (n != dim)
		die(EXIT_DATA, "%s: record %llu (key '%s'): '%s' has %ld values, expected %d",
		    rec_source(rd), (unsigned long long)rec_count(rd), rec_key(r), field, n, dim);
	rec_floats_copy(row, p, (size_t)n);
	for (j = 0; j < dim; j++)
		if (!isfinite(row[j]))
			die(EXIT_DATA, "%s: record %llu (key '%s'): '%s' holds NaN or infinity",
			    rec_source(rd), (unsigned long long)rec_count(rd), rec_key(r), field);
	return kmeans_normalize(row, 1, dim);
}

static int first_dim(const char *field, const record *r, rec_reader *rd)
{
	const unsigned char *p;
	long n = rec_get_floats(r, field, &p);

	if (n <= 0 || n > (1L << 20))
		die(EXIT_DATA, "%s: record %llu (key '%s') has no float32 '%s' field",
		    rec_source(rd), (unsigned long long)rec_count(rd), rec_key(r), field);
	return (int)n;
}

/* ---- pass 1: fit ---- */

/* The spool of standard input, removed at exit: file scope for the atexit handler. */
static char *spool_path;

static void remove_spool(void)
{
	if (spool_path)
		unlink(spool_path);
}

/* Reads the input, fits the centroids; returns the path pass 2 reads (the input again, or
 * a spool of standard input). */
static const char *fit(kmeans_file *kf, classes *cl, const options *o)
{
	struct stat st;
	int regular = o->input && strcmp(o->input, "-") != 0 && stat(o->input, &st) == 0 &&
	              S_ISREG(st.st_mode);
	cull_err e;
	rec_reader *rd = rec_open(o->input, &e);
	rec_writer *sp = NULL;
	uint64_t rng = o->seed ^ 0x73636f7265ULL, seen = 0;
	size_t cap = 0, nx = 0, i;
	float *x = NULL, *row = NULL;
	kmeans_opts ko = { .k = o->k, .iters = o->iters, .tol = o->tol, .seed = o->seed,
	                   .verbose = o->verbose };
	kmeans_result res;
	record r;
	int64_t c;
	int dim = 0;           /* embedding length, 0 until the first record */
	double t0 = now_seconds();
	int rc;

	if (!rd)
		die_err(&e);
	if (!regular && !o->fit_only) {
		const char *tmp = getenv("TMPDIR");
		int fd;

		spool_path = xasprintf("%s/cull-score.XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if ((fd = mkstemp(spool_path)) < 0)
			die(EXIT_IO, "cannot create a spool file in %s", tmp && *tmp ? tmp : "/tmp");
		close(fd);
		atexit(remove_spool);
		if (!(sp = rec_writer_open(spool_path, &e)))
			die_err(&e);
	}
	rec_init(&r);
	while ((rc = rec_next(rd, &r)) > 0) {
		if (!dim) {
			dim = first_dim(o->field, &r, rd);
			row = xmalloc((size_t)dim * sizeof *row);
		}
		get_emb(row, dim, o->field, &r, rd);
		if (sp && rec_write(sp, &r) < 0)
			die_err(rec_writer_error(sp));
		if (rec_get_int(&r, "cls", &c)) {
			size_t ci = cls_add(cl, c, dim);
			double *s = cl->sum + ci * (size_t)dim;

			for (int j = 0; j < dim; j++)
				s[j] += row[j];
		}
		/* reservoir sample (all of them without --fit-sample) */
		i = (size_t)-1;
		if (!o->fit_sample || seen < o->fit_sample)
			i = nx++;
		else if ((i = (size_t)(rng_next(&rng) % (seen + 1))) >= o->fit_sample)
			i = (size_t)-1;
		seen++;
		if (i == (size_t)-1)
			continue;
		if (i >= cap) {
			cap = cap ? 2 * cap : 1024;
			x = xreallocarray(x, cap, (size_t)dim * sizeof *x);
		}
		memcpy(x + i * (size_t)dim, row, (size_t)dim * sizeof *x);
	}
	if (rc < 0)
		die_err(rec_error(rd));
	rec_close(rd);
	rec_free(&r);
	if (sp && rec_writer_close(sp, &e) < 0)
		die_err(&e);
	if (seen == 0)
		die(EXIT_DATA, "%s: no records to fit", io_name(o->input, 0));
	if ((size_t)o->k > nx)
		die(EXIT_USAGE, "--k %d is more than the %zu records to fit", o->k, nx);
	kf->k = o->k;
	kf->d = dim;
	kf->c = xmalloc((size_t)o->k * dim * sizeof *kf->c);
	if (kmeans_fit(kf->c, NULL, NULL, &res, x, nx, dim, &ko, &e) < 0)
		die_err(&e);
	note("fit k=%d on %zu of %llu records (d=%d) in %d iterations, %.2fs: objective %.6f "
	     "(mean 1 - cos)%s", o->k, nx, (unsigned long long)seen, dim, res.iters,
	     now_seconds() - t0, res.objective, res.reseeded ? ", empty clusters re-seeded" : "");
	free(res.history);
	free(x);
	free(row);
	/* class means over all records */
	kf->nclasses = cl->n;
	kf->classes = xmalloc((cl->n ? cl->n : 1) * sizeof *kf->classes);
	kf->class_means = xmalloc((cl->n ? cl->n : 1) * (size_t)dim * sizeof(float));
	for (i = 0; i < cl->n; i++) {
		kf->classes[i] = cl->label[i];
		for (int j = 0; j < dim; j++)
			kf->class_means[i * dim + j] = (float)cl->sum[i * dim + j];
	}
	kmeans_normalize(kf->class_means, cl->n, dim);
	if (o->save && kmeans_save(o->save, kf, &e) < 0)
		die_err(&e);
	return regular ? o->input : spool_path;
}

/* ---- pass 2: score, streaming ---- */

typedef struct {
	float *v;              /* kept unit vectors [n, dim] */
	char **key;
	size_t n, cap;
} kept;

/* Pass 2: what scoring a record needs, and what it counts. */
typedef struct {
	const options *o;
	const kmeans_file *kf;
	const classes *cl;
	int dim;
	float *sep;            /* [k] mean distance to the nearest other centroids */
	kept *kept;            /* [k] the records kept so far, with --dedup */
	uint64_t *size;        /* [k] records per cluster */
	double *dist;          /* [k] the sum of their proto */
	uint64_t total, ndup, unknown_cls, zero_rows;
	rec_writer *w;
} scorer;

static void dedup(scorer *sc, record *r, const float *row, int32_t cluster)
{
	kept *kp = &sc->kept[cluster];
	int dim = sc->dim;
	double best = -2;
	size_t bi = 0;

	for (size_t i = 0; i < kp->n; i++) {
		const float *v = kp->v + i * (size_t)dim;
		double s = 0;

		for (int j = 0; j < dim; j++)
			s += (double)v[j] * row[j];
		if (s > best) {
			best = s;
			bi = i;
		}
	}
	if (kp->n && best > 1 - sc->o->dedup) {
		rec_set_int(r, "dup", 1);
		rec_set_str(r, "dup_of", kp->key[bi]);
		sc->ndup++;
		return;
	}
	rec_set_int(r, "dup", 0);
	if (kp->n == kp->cap) {
		kp->cap = kp->cap ? 2 * kp->cap : 16;
		kp->v = xreallocarray(kp->v, kp->cap, (size_t)dim * sizeof *kp->v);
		kp->key = xreallocarray(kp->key, kp->cap, sizeof *kp->key);
	}
	memcpy(kp->v + kp->n * (size_t)dim, row, (size_t)dim * sizeof *kp->v);
	kp->key[kp->n++] = xstrdup(rec_key(r));
}

static void flush(scorer *sc, record *batch, float *x, size_t m)
{
	int32_t *a = xmalloc(m * sizeof *a);
	float *sim = xmalloc(m * sizeof *sim);
	int dim = sc->dim;
	int64_t c;

	kmeans_assign(a, sim, x, m, dim, sc->kf->c, sc->kf->k);
	for (size_t i = 0; i < m; i++) {
		record *r = &batch[i];
		const float *row = x + i * (size_t)dim;
		double proto = 1 - (double)sim[i];

		if (proto < 0)
			proto = 0;
		rec_set_int(r, "cluster", a[i]);
		rec_set_float(r, "proto", proto);
		if (rec_get_int(r, "cls", &c)) {
			size_t ci = cls_find(sc->cl, c);

			if (ci != (size_t)-1) {
				const float *mu = sc->kf->class_means + ci * (size_t)dim;
				double s = 0;

				for (int j = 0; j < dim; j++)
					s += (double)mu[j] * row[j];
				rec_set_float(r, "sup_proto", 1 - s < 0 ? 0 : 1 - s);
			} else {
				sc->unknown_cls++;
			}
		}
		rec_set_float(r, "cluster_sep", sc->sep[a[i]]);
		if (sc->o->dedup >= 0)
			dedup(sc, r, row, a[i]);
		if (!sc->o->keep_emb)
			rec_del(r, sc->o->field);
		sc->size[a[i]]++;
		sc->dist[a[i]] += proto;
		if (rec_write(sc->w, r) < 0)
			die_err(rec_writer_error(sc->w));
	}
	free(a);
	free(sim);
}

/* Scores the records of path with kf's centroids onto standard output. */
static void score(scorer *sc, const char *path, const kmeans_file *kf, const classes *cl)
{
	cull_err e;
	rec_reader *rd = rec_open(path, &e);
	/* records scored at once: enough sgemm blocks of 1024 rows for every thread */
	size_t nb = (size_t)nn_threads() * 1024 < 4096 ? 4096 : (size_t)nn_threads() * 1024;
	record *batch = xmalloc(nb * sizeof *batch);
	float *x = NULL;
	size_t m = 0;
	int dim = kf->d;

	sc->kf = kf;
	sc->cl = cl;
	sc->dim = dim;
	sc->sep = xmalloc((size_t)kf->k * sizeof *sc->sep);
	kmeans_separation(sc->sep, kf->c, kf->k, kf->d, sc->o->sep_m);
	sc->size = xcalloc((size_t)kf->k, sizeof *sc->size);
	sc->dist = xcalloc((size_t)kf->k, sizeof *sc->dist);
	if (sc->o->dedup >= 0)
		sc->kept = xcalloc((size_t)kf->k, sizeof *sc->kept);
	int rc;

	if (!rd)
		die_err(&e);
	if (!(sc->w = rec_writer_open("-", &e)))
		die_err(&e);
	x = xmalloc(nb * dim * sizeof *x);
	for (size_t i = 0; i < nb; i++)
		rec_init(&batch[i]);
	while ((rc = rec_next(rd, &batch[m])) > 0) {
		sc->zero_rows += get_emb(x + m * (size_t)dim, dim, sc->o->field, &batch[m], rd);
		sc->total++;
		if (++m == nb) {
			flush(sc, batch, x, m);
			m = 0;
		}
	}
	if (rc < 0)
		die_err(rec_error(rd));
	if (m)
		flush(sc, batch, x, m);
	rec_close(rd);
	if (rec_writer_close(sc->w, &e) < 0)
		die_err(&e);
	for (size_t i = 0; i < nb; i++)
		rec_free(&batch[i]);
	free(batch);
	free(x);
}

static void scorer_free(scorer *sc)
{
	for (int j = 0; sc->kept && j < sc->kf->k; j++) {
		for (size_t i = 0; i < sc->kept[j].n; i++)
			free(sc->kept[j].key[i]);
		free(sc->kept[j].key);
		free(sc->kept[j].v);
	}
	free(sc->kept);
	free(sc->sep);
	free(sc->size);
	free(sc->dist);
}

static void write_stats(const scorer *sc)
{
	cull_err e;
	rec_writer *w = rec_writer_open(sc->o->stats, &e);
	record r;
	char key[32];

	if (!w)
		die_err(&e);
	rec_init(&r);
	for (int j = 0; j < sc->kf->k; j++) {
		rec_clear(&r);
		snprintf(key, sizeof key, "cluster/%06d", j);
		rec_set_str(&r, "key", key);
		rec_set_int(&r, "cluster", j);
		rec_set_int(&r, "size", (int64_t)sc->size[j]);
		rec_set_float(&r, "mean_dist", sc->size[j] ? sc->dist[j] / (double)sc->size[j] : 0);
		rec_set_float(&r, "sep", sc->sep[j]);
		if (rec_write(w, &r) < 0)
			die_err(rec_writer_error(w));
	}
	if (rec_writer_close(w, &e) < 0)
		die_err(&e);
	rec_free(&r);
}

/* ---- main ---- */

/* Fit (or load) the centroids, then score every record; or, with --fit-only, fit and save. */
static int run(const options *o)
{
	kmeans_file kf = { 0 };
	classes cl = { 0 };
	scorer sc = { .o = o };
	const char *path;
	double t0 = now_seconds();
	cull_err e;

	nn_set_threads(o->threads);
	if (o->fit_only) {
		fit(&kf, &cl, o);
		note("saved %d centroids to %s in %.2fs", kf.k, o->save, now_seconds() - t0);
		kmeans_file_free(&kf);
		cls_free(&cl);
		return 0;
	}
	if (o->centroids) {
		if (kmeans_load(&kf, o->centroids, &e) < 0)
			die_err(&e);
		for (size_t i = 0; i < kf.nclasses; i++)
			cls_add(&cl, kf.classes[i], kf.d);
		path = o->input;
	} else {
		path = fit(&kf, &cl, o);
	}
	score(&sc, path, &kf, &cl);
	if (o->stats)
		write_stats(&sc);
	if (sc.zero_rows)
		warn("%llu records have an all-zero embedding (proto 1, cluster 0)",
		     (unsigned long long)sc.zero_rows);
	if (sc.unknown_cls)
		warn("%llu records have a class missing from %s: no sup_proto",
		     (unsigned long long)sc.unknown_cls, o->centroids);
	if (o->dedup >= 0)
		note("scored %llu records with k=%d, %llu near-duplicates, in %.2fs",
		     (unsigned long long)sc.total, kf.k, (unsigned long long)sc.ndup, now_seconds() - t0);
	else
		note("scored %llu records with k=%d in %.2fs", (unsigned long long)sc.total, kf.k,
		     now_seconds() - t0);
	scorer_free(&sc);
	kmeans_file_free(&kf);
	cls_free(&cl);
	return 0;
}

int main(int argc, char **argv)
{
	options o;

	nn_exec_passive(argv);
	cull_init(argv[0]);
	parse_options(&o, argc, argv);
	return run(&o);
}
