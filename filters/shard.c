/* cull-shard: make WebDataset shards from IDX files, CIFAR batches or a class-folder tree. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cifar.h"
#include "classdir.h"
#include "idx.h"
#include "image.h"
#include "io.h"
#include "record.h"
#include "rng.h"
#include "wds.h"

static const char usage_short[] = "usage: cull-shard idx IMAGES LABELS | cifar FILE... | dir ROOT [options]; see --help\n";
static const char usage[] =
	"usage: cull-shard idx IMAGES LABELS [options]\n"
	"       cull-shard cifar FILE... [options]\n"
	"       cull-shard dir ROOT [options]\n"
	"  -o, --output PATTERN   shard names, a printf pattern such as train-%06d.tar\n"
	"                         (default: one tar on standard output)\n"
	"  -n, --per-shard N      samples per shard (default 10000 with a %d pattern)\n"
	"  -q, --quality Q        JPEG quality 1..100 for pixel arrays (default 95)\n"
	"  -k, --key FORMAT       sample key from the sample's index, a printf pattern\n"
	"                         (default %06d); for dir also 'path' (class/file name)\n"
	"      --shuffle          write samples in a random order (keys keep their index)\n"
	"      --seed S           seed of --shuffle (default 0)\n"
	"      --classes-out FILE write the class names, one a line (default with -o:\n"
	"                         classes.txt beside the shards)\n"
	"      --class-names FILE names for classes.txt, one a line in class order\n"
	"      --records FILE     also write an index record per sample (key, cls, shard)\n"
	"      --cifar 10|100     the CIFAR layout (default: detected from the file size)\n"
	"      --threads T        JPEG encoding threads (default: all CPUs)\n"
	"  -h, --help             this help\n"
	"      --version          print the version\n";

enum { MODE_IDX, MODE_CIFAR, MODE_DIR };

#define MAX_CLASSES (1 << 24)   /* labels beyond this are not class indices */

/* What each sample is made from, by source index. */
typedef struct {
	int mode;
	int quality;
	/* idx */
	idx_file images, labels;
	int channels;
	/* cifar */
	cifar_file *batches;
	size_t nbatches;
	size_t *batch_start;       /* first source index of each batch */
	/* dir */
	char **paths;              /* relative to root */
	int *classes;
	const char *root;
	size_t count;
	int key_path;
	char *key_fmt;             /* validated, with an ll length modifier */
} source;

/* A prepared sample, made by a worker and written in order by the main thread. */
typedef struct {
	char *key;
	unsigned char *img;
	size_t len;
	const char *field;         /* "jpg" or the file's lower-cased extension */
	char field_buf[16];
	int cls, coarse;
	int bad;                   /* 1: skipped with the warning in err */
	char err[256];
} prepared;

/* A printf pattern with exactly one integer conversion (or none when allowed), returned
 * with an "ll" length modifier inserted so it takes a long long. NULL if unusable. */
static char *int_pattern(const char *pat, int allow_none, int *nconv)
{
	size_t n = strlen(pat), i, o = 0;
	char *out = xmalloc(n + 3);

	*nconv = 0;
	for (i = 0; i < n; i++) {
		out[o++] = pat[i];
		if (pat[i] != '%')
			continue;
		if (pat[i + 1] == '%') {
			out[o++] = pat[++i];
			continue;
		}
		while (pat[i + 1] && strchr("-+ 0#", pat[i + 1]))
			out[o++] = pat[++i];
		while (pat[i + 1] >= '0' && pat[i + 1] <= '9')
			out[o++] = pat[++i];
		if (!pat[i + 1] || !strchr("diuxXo", pat[i + 1]) || ++*nconv > 1) {
			free(out);
			return NULL;
		}
		out[o++] = 'l', out[o++] = 'l';
		out[o++] = pat[++i];
	}
	out[o] = 0;
	if (*nconv == 0 && !allow_none) {
		free(out);
		return NULL;
	}
	return out;
}

static char *format_index(const char *fmt, long long v)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	return xasprintf(fmt, v);
#pragma GCC diagnostic pop
}

/* ---- sources ---- */

static void open_idx(source *s, const char *images, const char *labels)
{
	idx_file *im = &s->images, *lb = &s->labels;
	cull_err e;

	if (idx_load(im, images, &e) < 0)
		die_err(&e);
	if (im->type != IDX_U8)
		die(EXIT_DATA, "%s: IDX element type 0x%02x; images must be unsigned bytes (0x08)",
		    im->name, im->type);
	if (im->ndims == 3)
		s->channels = 1;
	else if (im->ndims == 4 && (im->dims[3] == 1 || im->dims[3] == 3))
		s->channels = (int)im->dims[3];
	else
		die(EXIT_DATA, "%s: IDX images must have 3 dimensions (N, H, W) or 4 (N, H, W, C "
		    "with C 1 or 3); this has %d", im->name, im->ndims);
	if (im->dims[1] == 0 || im->dims[2] == 0 || im->dims[1] > 65500 || im->dims[2] > 65500)
		die(EXIT_DATA, "%s: IDX images of %ux%u pixels cannot be JPEG-encoded", im->name,
		    im->dims[2], im->dims[1]);
	if (idx_load(lb, labels, &e) < 0)
		die_err(&e);
	if (lb->ndims != 1 || lb->type == IDX_F32 || lb->type == IDX_F64)
		die(EXIT_DATA, "%s: IDX labels must be one dimension of integers (type 0x%02x, %d "
		    "dimensions)", lb->name, lb->type, lb->ndims);
	if (lb->count != im->count)
		die(EXIT_DATA, "%s has %llu images but %s has %llu labels", im->name,
		    (unsigned long long)im->count, lb->name, (unsigned long long)lb->count);
	for (uint64_t i = 0; i < lb->count; i++)
		if (idx_get_int(lb, i, 0) < 0 || idx_get_int(lb, i, 0) >= MAX_CLASSES)
			die(EXIT_DATA, "%s: label %llu at offset %llu is %lld, not a class index in "
			    "0..%d", lb->name, (unsigned long long)i,
			    (unsigned long long)(4 + 4 * (unsigned)lb->ndims + i * lb->item_size),
			    (long long)idx_get_int(lb, i, 0), MAX_CLASSES - 1);
	s->count = (size_t)im->count;
}

static void open_cifar(source *s, char **files, size_t n, int variant)
{
	cull_err e;

	s->nbatches = n;
	s->batches = xcalloc(n, sizeof *s->batches);
	s->batch_start = xcalloc(n + 1, sizeof *s->batch_start);
	for (size_t i = 0; i < n; i++) {
		if (cifar_load(&s->batches[i], files[i], variant, &e) < 0)
			die_err(&e);
		if (i > 0 && s->batches[i].variant != s->batches[0].variant)
			die(EXIT_DATA, "%s is a CIFAR-%d batch but %s is CIFAR-%d (use --cifar to choose)",
			    files[i], s->batches[i].variant, files[0], s->batches[0].variant);
		s->batch_start[i + 1] = s->batch_start[i] + s->batches[i].count;
	}
	s->count = s->batch_start[n];
}

static char **open_dir(source *s, const char *root, size_t *nclasses)
{
	classdir d;
	char err[512];

	if (classdir_open(&d, root, WDS_MAX_MEMBER, err, sizeof err) != 0)
		die(EXIT_IO, "%s", err);
	s->root = root;
	s->paths = d.paths;
	s->classes = d.labels;
	s->count = d.n;
	*nclasses = d.nclasses;
	return d.classes;
}

/* ---- making samples ---- */

static char *make_key(const source *s, size_t idx)
{
	char *k, *base, *p;

	if (!s->key_path)
		return format_index(s->key_fmt, (long long)idx);
	/* the relative path without its extension, dots in the file name made '_' */
	k = xstrdup(s->paths[idx]);
	*strrchr(k, '.') = 0;
	base = strrchr(k, '/');
	for (p = base ? base + 1 : k; *p; p++)
		if (*p == '.')
			*p = '_';
	return k;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* --key path: two files that differ only in extension (or dots) would share a key, and a
 * reader would merge them into one sample. Refuse that. */
static void check_path_keys(const source *s)
{
	char **keys = xcalloc(s->count ? s->count : 1, sizeof *keys);

	for (size_t i = 0; i < s->count; i++)
		keys[i] = make_key(s, i);
	qsort(keys, s->count, sizeof *keys, cmp_str);
	for (size_t i = 1; i < s->count; i++)
		if (strcmp(keys[i - 1], keys[i]) == 0)
			die(EXIT_DATA, "%s: two files make the key '%s' with --key path; use index keys",
			    s->root, keys[i]);
	for (size_t i = 0; i < s->count; i++)
		free(keys[i]);
	free(keys);
}

static void prepare(const source *s, size_t idx, prepared *p)
{
	unsigned char buf[CIFAR_PIXELS];
	const unsigned char *pix;
	int w, h, ch;
	cull_err e;

	memset(p, 0, sizeof *p);
	p->key = make_key(s, idx);
	p->coarse = -1;
	if (s->mode == MODE_DIR) {
		char *full = xasprintf("%s/%s", s->root, s->paths[idx]);
		FILE *f = fopen(full, "rb");

		p->cls = s->classes[idx];
		snprintf(p->field_buf, sizeof p->field_buf, "%s", image_ext(s->paths[idx]));
		p->field = p->field_buf;
		if (!f) {
			snprintf(p->err, sizeof p->err, "%s: %s; skipped", full, strerror(errno));
			p->bad = 1;
		} else {
			size_t cap = 1 << 16, r;

			p->img = xmalloc(cap);
			while ((r = fread(p->img + p->len, 1, cap - p->len, f)) > 0)
				if ((p->len += r) == cap)
					p->img = xrealloc(p->img, cap *= 2);
			if (ferror(f)) {
				snprintf(p->err, sizeof p->err, "%s: read error: %s; skipped", full,
				         strerror(errno));
				p->bad = 1;
			}
			fclose(f);
		}
		free(full);
		return;
	}
	p->field = "jpg";
	if (s->mode == MODE_IDX) {
		pix = s->images.data + idx * s->images.item_size;
		h = (int)s->images.dims[1], w = (int)s->images.dims[2], ch = s->channels;
		p->cls = (int)idx_get_int(&s->labels, idx, 0);
	} else {
		size_t b = 0;

		while (idx >= s->batch_start[b + 1])
			b++;
		cifar_pixels(&s->batches[b], idx - s->batch_start[b], buf);
		pix = buf;
		w = h = CIFAR_SIDE, ch = 3;
		p->cls = cifar_label(&s->batches[b], idx - s->batch_start[b]);
		p->coarse = cifar_coarse(&s->batches[b], idx - s->batch_start[b]);
	}
	p->img = image_encode_jpeg(pix, w, h, ch, s->quality, &p->len, &e);
	if (!p->img)
		die(EXIT_DATA, "sample %zu: %s", idx, e.msg);
}

typedef struct {
	const source *s;
	const size_t *order;
	prepared *out;
	size_t n, nthreads, t;
} job;

static void *worker(void *arg)
{
	job *j = arg;

	for (size_t i = j->t; i < j->n; i += j->nthreads)
		prepare(j->s, j->order[i], &j->out[i]);
	return NULL;
}

/* Prepare n samples (order[0..n)) into out with up to nthreads threads. */
static void prepare_batch(const source *s, const size_t *order, prepared *out, size_t n,
                          int nthreads)
{
	pthread_t tid[64];
	job jobs[64];
	size_t t, nt = (size_t)(nthreads < 1 ? 1 : nthreads > 64 ? 64 : nthreads);

	if (nt > n)
		nt = n ? n : 1;
	for (t = 0; t < nt; t++) {
		jobs[t] = (job){ s, order, out, n, nt, t };
		if (t > 0 && pthread_create(&tid[t], NULL, worker, &jobs[t]) != 0)
			die(EXIT_NOMEM, "cannot start a thread");
	}
	worker(&jobs[0]);
	for (t = 1; t < nt; t++)
		pthread_join(tid[t], NULL);
}

/* ---- output ---- */

typedef struct {
	const char *pattern;       /* NULL: standard output */
	char *fmt;                 /* pattern with ll, when it has a conversion */
	uint64_t per_shard;        /* 0: unlimited */
	wds_writer *w;
	char *path;                /* the open shard's name ("-": standard output) */
	rec_writer *index;         /* --records, or NULL */
	record rec;
	uint64_t in_shard, shards, samples, bytes;
} output;

static void emit(output *o, const prepared *p)
{
	char *name, num[32];

	if (o->w && o->per_shard && o->in_shard == o->per_shard) {
		o->bytes += wds_writer_bytes(o->w);
		wds_writer_close(o->w);
		o->w = NULL;
	}
	if (!o->w) {
		char *path = o->pattern ? (o->fmt ? format_index(o->fmt, (long long)o->shards)
		                                  : xstrdup(o->pattern)) : NULL;

		o->w = wds_writer_open(path);
		free(o->path);
		o->path = path ? path : xstrdup("-");
		o->shards++;
		o->in_shard = 0;
	}
	name = xasprintf("%s.cls", p->key);
	snprintf(num, sizeof num, "%d", p->cls);
	wds_write_member(o->w, name, num, strlen(num));
	free(name);
	if (p->coarse >= 0) {
		name = xasprintf("%s.coarse.cls", p->key);
		snprintf(num, sizeof num, "%d", p->coarse);
		wds_write_member(o->w, name, num, strlen(num));
		free(name);
	}
	name = xasprintf("%s.%s", p->key, p->field);
	wds_write_member(o->w, name, p->img, p->len);
	free(name);
	if (o->index) {
		rec_clear(&o->rec);
		rec_set_str(&o->rec, "key", p->key);
		rec_set_int(&o->rec, "cls", p->cls);
		if (p->coarse >= 0)
			rec_set_int(&o->rec, "coarse_cls", p->coarse);
		rec_set_str(&o->rec, "shard", o->path);
		if (rec_write(o->index, &o->rec) < 0)
			die_err(rec_writer_error(o->index));
	}
	o->in_shard++;
	o->samples++;
}

/* Writes the class names, one a line. */
static void write_classes(const char *path, char **names, size_t n)
{
	FILE *f = xfopen(path, "w");

	for (size_t i = 0; i < n; i++)
		if (fprintf(f, "%s\n", names[i]) < 0)
			die_write(path);
	xfclose(f, path);
}

/* Class names from a file, one a line (blank lines ignored), replacing old (n of them). A file
 * with fewer names than there are classes is an error; extra names are kept (classes that no
 * sample of this split has). */
static char **read_names(const char *path, char **old, size_t *n)
{
	FILE *f = xfopen(path, "r");
	char **v = NULL, *line = NULL;
	size_t cap = 0, k = 0, vcap = 0;
	ssize_t len;

	while ((len = getline(&line, &cap, f)) > 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (len == 0)
			continue;
		if (k == vcap)
			v = xreallocarray(v, vcap = vcap ? 2 * vcap : 64, sizeof *v);
		v[k++] = xstrdup(line);
	}
	if (ferror(f))
		die(EXIT_IO, "%s: read error: %s", path, strerror(errno));
	free(line);
	fclose(f);
	if (k < *n)
		die(EXIT_USAGE, "--class-names: %s has %zu names for %zu classes", path, k, *n);
	for (size_t i = 0; old && i < *n; i++)
		free(old[i]);
	free(old);
	*n = k;
	return v;
}

/* Fisher-Yates with unbiased bounded draws: the same seed gives the same order everywhere. */
static void shuffle(size_t *v, size_t n, uint64_t seed)
{
	uint64_t st = seed;

	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)rng_below(&st, i), t;

		t = v[i - 1], v[i - 1] = v[j], v[j] = t;
	}
}

/* ---- options ---- */

typedef struct {
	int mode;
	char **files;              /* IMAGES LABELS, the CIFAR batches, or ROOT */
	size_t nfiles;
	const char *pattern;       /* -o, or NULL: one tar on standard output */
	char *out_fmt;             /* the pattern with ll, when it has a conversion */
	uint64_t per_shard;        /* 0: unlimited */
	int quality, key_path, shuffle, variant, threads;
	char *key_fmt;             /* --key with ll (NULL with --key path) */
	uint64_t seed;
	const char *classes_out, *names_in, *records;
} options;

/* The mode word and the files after it. */
static void parse_source(options *o, int argc, char **argv)
{
	const char *mode;

	if (optind >= argc) {
		fputs(usage_short, stderr);
		exit(EXIT_USAGE);
	}
	mode = argv[optind++];
	o->files = argv + optind;
	o->nfiles = (size_t)(argc - optind);
	if (strcmp(mode, "idx") == 0) {
		o->mode = MODE_IDX;
		if (o->nfiles != 2)
			die(EXIT_USAGE, "idx takes two files: IMAGES LABELS");
	} else if (strcmp(mode, "cifar") == 0) {
		o->mode = MODE_CIFAR;
		if (o->nfiles < 1)
			die(EXIT_USAGE, "cifar takes one or more batch files");
	} else if (strcmp(mode, "dir") == 0) {
		o->mode = MODE_DIR;
		if (o->nfiles != 1)
			die(EXIT_USAGE, "dir takes one directory: ROOT");
	} else {
		die(EXIT_USAGE, "unknown source '%s' (want idx, cifar or dir)", mode);
	}
}

/* --key and -o/-n: the key pattern checked and made to take a long long, the shard pattern
 * likewise (or none). */
static void parse_patterns(options *o, const char *key, int n_set)
{
	int conv;

	if (strcmp(key, "path") == 0) {
		if (o->mode != MODE_DIR)
			die(EXIT_USAGE, "--key path works only with dir");
		o->key_path = 1;
	} else {
		char *k0;

		o->key_fmt = int_pattern(key, 0, &conv);
		if (!o->key_fmt)
			die(EXIT_USAGE, "--key: '%s' needs exactly one integer conversion such as %%06d", key);
		k0 = format_index(o->key_fmt, 0);
		if (!*k0 || strchr(strrchr(k0, '/') ? strrchr(k0, '/') : k0, '.') || k0[strlen(k0) - 1] == '/')
			die(EXIT_USAGE, "--key: '%s' makes keys like '%s': no dots in the file name part", key, k0);
		free(k0);
	}
	if (o->pattern) {
		o->out_fmt = int_pattern(o->pattern, 1, &conv);
		if (!o->out_fmt)
			die(EXIT_USAGE, "-o: '%s' takes at most one integer conversion such as %%06d", o->pattern);
		if (conv == 0) {
			if (n_set)
				die(EXIT_USAGE, "-n needs a pattern with a number in it, such as out-%%06d.tar");
			free(o->out_fmt);
			o->out_fmt = NULL;
			o->per_shard = 0;
		}
	} else {
		if (n_set)
			die(EXIT_USAGE, "-n needs -o PATTERN: standard output is one tar");
		o->per_shard = 0;
	}
}

/* Fills o from the command line; a usage error exits 2, --help and --version exit 0. */
static void parse_options(options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "per-shard", required_argument, NULL, 'n' },
		{ "quality", required_argument, NULL, 'q' },
		{ "key", required_argument, NULL, 'k' },
		{ "shuffle", no_argument, NULL, 'S' },
		{ "seed", required_argument, NULL, 's' },
		{ "classes-out", required_argument, NULL, 'c' },
		{ "cifar", required_argument, NULL, 'C' },
		{ "class-names", required_argument, NULL, 'N' },
		{ "records", required_argument, NULL, 'R' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *key = "%06d";
	int c, n_set = 0;

	*o = (options){ .quality = 95, .per_shard = 10000 };
	while ((c = getopt_long(argc, argv, "o:n:q:k:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': o->pattern = optarg; break;
		case 'n': o->per_shard = (uint64_t)parse_int("-n", optarg, 1, 1LL << 40); n_set = 1; break;
		case 'q': o->quality = (int)parse_int("--quality", optarg, 1, 100); break;
		case 'k': key = optarg; break;
		case 'S': o->shuffle = 1; break;
		case 's': o->seed = (uint64_t)parse_int("--seed", optarg, 0, INT64_MAX); break;
		case 'c': o->classes_out = optarg; break;
		case 'N': o->names_in = optarg; break;
		case 'R': o->records = optarg; break;
		case 'C': o->variant = (int)parse_int("--cifar", optarg, 10, 100);
			if (o->variant != 10 && o->variant != 100)
				die(EXIT_USAGE, "--cifar: expected 10 or 100");
			break;
		case 't': o->threads = parse_threads(optarg); break;
		case 'h': fputs(usage, stdout); xfclose(stdout, "<stdout>"); exit(0);
		case 'V': print_version("cull-shard", NULL);
		default: fputs(usage_short, stderr); exit(EXIT_USAGE);
		}
	}
	parse_source(o, argc, argv);
	parse_patterns(o, key, n_set);
}

/* ---- main ---- */

/* Opens the source o names into s; returns the class names, *nclasses of them: from the
 * source (directory names, a CIFAR meta file, CIFAR-10's), --class-names, or numbers. */
static char **open_source(source *s, const options *o, size_t *nclasses)
{
	char **class_names = NULL;
	size_t i;

	*nclasses = 0;
	if (s->mode == MODE_IDX) {
		open_idx(s, o->files[0], o->files[1]);
		int64_t max = -1;

		for (i = 0; i < s->count; i++)
			if (idx_get_int(&s->labels, i, 0) > max)
				max = idx_get_int(&s->labels, i, 0);
		*nclasses = (size_t)(max + 1);
	} else if (s->mode == MODE_CIFAR) {
		open_cifar(s, o->files, o->nfiles, o->variant);
		*nclasses = s->batches[0].variant == 10 ? 10 : 100;
		class_names = cifar_class_names(s->batches[0].variant, o->files[0]);
	} else {
		class_names = open_dir(s, o->files[0], nclasses);
		if (s->key_path)
			check_path_keys(s);
	}
	if (o->names_in)
		class_names = read_names(o->names_in, class_names, nclasses);
	if (!class_names) {
		class_names = xcalloc(*nclasses ? *nclasses : 1, sizeof *class_names);
		for (i = 0; i < *nclasses; i++)
			class_names[i] = xasprintf("%zu", i);
	}
	return class_names;
}

/* Prepares the samples in order, batch by batch on the threads, and writes them to out;
 * returns how many were skipped. */
static uint64_t write_samples(const source *s, const size_t *order, const options *o,
                              output *out)
{
	int threads = o->threads ? o->threads : default_threads();
	size_t batch = s->mode == MODE_DIR ? 256 : 1024;   /* dir: whole files are held per batch */
	prepared *prep = xcalloc(batch, sizeof *prep);
	uint64_t skipped = 0;
	int progress;

	if (o->records) {
		if (!o->pattern && strcmp(o->records, "-") == 0)
			die(EXIT_USAGE, "--records -: standard output already carries the shard; use -o");
		cull_err e;
		if (!(out->index = rec_writer_open(o->records, &e)))
			die_err(&e);
		rec_init(&out->rec);
	}
	progress = stderr_is_tty() && s->count > 20 * batch;
	for (size_t start = 0; start < s->count; start += batch) {
		size_t n = s->count - start < batch ? s->count - start : batch;

		if (progress)
			fprintf(stderr, "\r%s: %zu/%zu samples", progname, start, s->count);

		prepare_batch(s, order + start, prep, n, threads);
		for (size_t i = 0; i < n; i++) {
			if (prep[i].bad) {
				warn("%s", prep[i].err);
				skipped++;
			} else {
				emit(out, &prep[i]);
			}
			free(prep[i].key);
			free(prep[i].img);
		}
	}
	if (progress)
		fprintf(stderr, "\r%s: %zu/%zu samples\n", progname, s->count, s->count);
	free(prep);
	return skipped;
}

/* The last shard (an empty archive on standard output when there was no sample) and the
 * --records index, closed. */
static void close_output(output *out)
{
	if (!out->w && !out->pattern)
		out->w = wds_writer_open(NULL);   /* an empty archive on standard output */
	if (out->w) {
		out->bytes += wds_writer_bytes(out->w);
		wds_writer_close(out->w);
	}
	if (out->index) {
		cull_err e;
		if (rec_writer_close(out->index, &e) < 0)
			die_err(&e);
		rec_free(&out->rec);
	}
	free(out->path);
}

static void source_free(source *s)
{
	idx_free(&s->images);
	idx_free(&s->labels);
	for (size_t i = 0; i < s->nbatches; i++)
		cifar_free(&s->batches[i]);
	free(s->batches);
	free(s->batch_start);
	for (size_t i = 0; i < (s->mode == MODE_DIR ? s->count : 0); i++)
		free(s->paths[i]);
	free(s->paths);
	free(s->classes);
}

static int run(const options *o)
{
	source s = { .mode = o->mode, .quality = o->quality, .key_path = o->key_path,
	             .key_fmt = o->key_fmt };
	output out = { .pattern = o->pattern, .fmt = o->out_fmt, .per_shard = o->per_shard };
	size_t nclasses, *order, i;
	char **class_names = open_source(&s, o, &nclasses);
	uint64_t skipped;

	order = xcalloc(s.count ? s.count : 1, sizeof *order);
	for (i = 0; i < s.count; i++)
		order[i] = i;
	if (o->shuffle)
		shuffle(order, s.count, o->seed);
	skipped = write_samples(&s, order, o, &out);
	close_output(&out);
	if (!o->classes_out && o->pattern) {
		const char *slash = strrchr(o->pattern, '/');
		char *path = slash ? xasprintf("%.*s/classes.txt", (int)(slash - o->pattern), o->pattern)
		                   : xstrdup("classes.txt");

		write_classes(path, class_names, nclasses);
		free(path);
	} else if (o->classes_out) {
		write_classes(o->classes_out, class_names, nclasses);
	}
	if (s.count == 0)
		warn("no samples found");
	if (o->pattern)
		note("%llu samples in %llu shards, %llu bytes", (unsigned long long)out.samples,
		     (unsigned long long)out.shards, (unsigned long long)out.bytes);
	if (skipped)
		warn("%llu samples skipped", (unsigned long long)skipped);

	for (i = 0; i < nclasses; i++)
		free(class_names[i]);
	free(class_names);
	free(order);
	source_free(&s);
	return 0;
}

int main(int argc, char **argv)
{
	options o;
	int rc;

	cull_init(argv[0]);
	parse_options(&o, argc, argv);
	rc = run(&o);
	free(o.key_fmt);
	free(o.out_fmt);
	return rc;
}
