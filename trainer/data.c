/* cull-train's data cache: read shards once, decode every image into one uint8 block. */
#include "train.h"
#include "image.h"
#include "io.h"
#include "layers.h"
#include "preprocess.h"
#include "rng.h"
#include "wds.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 256

typedef struct {
	wds_sample s;
	image img;
	int ok;
	int64_t cls;
	char err[200];
} slot;

typedef struct {
	slot *slots;
	int channels;
	int unlabeled_ok;
} chunk;

#define MAX_WARNINGS 10

/* Warn about a skipped sample (the first MAX_WARNINGS of a load) and count it. */
static void skip(dataset *d, const char *what, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (d->skipped < MAX_WARNINGS) {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof buf, fmt, ap);
		va_end(ap);
		warn("%s", buf);
	} else if (d->skipped == MAX_WARNINGS) {
		warn("more %s samples skipped; no further warnings", what);
	}
	d->skipped++;
}

static void decode_one(void *ctx, int i, int tid)
{
	chunk *c = ctx;
	slot *sl = &c->slots[i];
	const wds_member *m = wds_find(&sl->s, "jpg,jpeg,png,ppm,pgm");
	const wds_member *cm = wds_find(&sl->s, "cls");
	image_opts io = { 0 };
	cull_err e;

	(void)tid;
	sl->ok = 0;
	memset(&sl->img, 0, sizeof sl->img);
	if (!m) {
		snprintf(sl->err, sizeof sl->err, "no image member (jpg, jpeg, png, ppm, pgm)");
		return;
	}
	if (!cm && !c->unlabeled_ok) {
		snprintf(sl->err, sizeof sl->err, "no .cls member");
		return;
	}
	sl->cls = -1;
	if (cm && (!wds_parse_cls(cm, &sl->cls) || sl->cls < 0 || sl->cls > 1000000)) {
		snprintf(sl->err, sizeof sl->err, ".cls is not a class index");
		return;
	}
	io.channels = c->channels;
	io.strict = 1;
	if (image_decode(&sl->img, m->data, m->size, &io, &e) != 0) {
		snprintf(sl->err, sizeof sl->err, "%.*s", (int)sizeof sl->err - 1, e.msg);
		return;
	}
	sl->ok = 1;
}

static void append(dataset *d, const slot *sl, const load_opts *o)
{
	const image *img = &sl->img;
	const unsigned char *px = img->pixels;
	unsigned char *tmp = NULL;
	size_t plane;

	if (!d->h) {
		d->h = o->size > 0 ? o->size : img->height;
		d->w = o->size > 0 ? o->size : img->width;
	}
	if (img->width != d->w || img->height != d->h) {
		if (o->size <= 0) {
			skip(d, o->what, "%s: %s: skipped: image is %dx%d, the %s images before it are "
			     "%dx%d (use --size)", sl->s.source, sl->s.key, img->width, img->height,
			     o->what, d->w, d->h);
			return;
		}
		tmp = xmalloc((size_t)d->w * (size_t)d->h * (size_t)d->c);
		resize_bilinear_pil(tmp, d->w, d->h, px, img->width, img->height, d->c);
		px = tmp;
	}
	if (o->classes > 0 && sl->cls >= o->classes) {
		skip(d, o->what, "%s: %s: skipped: class %lld is not below --classes %d",
		     sl->s.source, sl->s.key, (long long)sl->cls, o->classes);
		free(tmp);
		return;
	}
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 1024;
		plane = (size_t)d->h * (size_t)d->w * (size_t)d->c;
		d->pix = xreallocarray(d->pix, d->cap, plane);
		d->label = xreallocarray(d->label, d->cap, sizeof *d->label);
		d->key = xreallocarray(d->key, d->cap, sizeof *d->key);
	}
	plane = (size_t)d->h * (size_t)d->w * (size_t)d->c;
	memcpy(d->pix + d->n * plane, px, plane);
	d->label[d->n] = (int)sl->cls;
	d->key[d->n] = xstrdup(sl->s.key);
	d->n++;
	free(tmp);
}

void data_load(dataset *d, const char *const *paths, size_t npaths, const load_opts *o)
{
	wds_options wo = { 0 };
	wds_reader *r;
	chunk c;
	int n, i, rc = 1, show = !o->quiet && stderr_is_tty();
	double last = now_seconds();
	size_t plane;

	wo.check_keys = 1;
	r = wds_open(paths, npaths, &wo);
	c.slots = xcalloc(CHUNK, sizeof *c.slots);
	c.unlabeled_ok = o->unlabeled_ok;
	if (!d->c)
		d->c = o->channels;
	while (rc > 0) {
		for (n = 0; n < CHUNK && (rc = wds_next(r, &c.slots[n].s)) > 0; n++)
			;
		if (n == 0)
			break;
		if (!d->c) {
			/* the first decodable image fixes the channels */
			for (i = 0; i < n && !d->c; i++) {
				c.channels = 0;
				decode_one(&c, i, 0);
				if (c.slots[i].ok)
					d->c = c.slots[i].img.channels;
				image_free(&c.slots[i].img);
			}
		}
		c.channels = d->c;
		if (d->c)
			nn_parallel(n, decode_one, &c);
		for (i = 0; i < n; i++) {
			slot *sl = &c.slots[i];
			d->read++;
			if (!sl->ok) {
				skip(d, o->what, "%s: %s: skipped: %s", sl->s.source, sl->s.key, sl->err);
			} else {
				append(d, sl, o);
			}
			image_free(&sl->img);
		}
		if (show && now_seconds() - last > 0.5) {
			fprintf(stderr, "\rcull-train: reading %s data: %llu samples   ", o->what,
			        (unsigned long long)d->read);
			last = now_seconds();
		}
	}
	if (show)
		fprintf(stderr, "\r%60s\r", "");
	for (i = 0; i < CHUNK; i++)
		wds_sample_free(&c.slots[i].s);
	free(c.slots);
	if (wds_members_skipped(r) && !o->quiet)
		warn("%s data: %llu tar members are not sample members (see the warnings above)",
		     o->what, (unsigned long long)wds_members_skipped(r));
	wds_close(r);
	/* give back the slack of the doubling */
	if (d->n && d->n < d->cap) {
		plane = (size_t)d->h * (size_t)d->w * (size_t)d->c;
		d->pix = xreallocarray(d->pix, d->n, plane);
		d->cap = d->n;
		d->label = xreallocarray(d->label, d->n, sizeof *d->label);
		d->key = xreallocarray(d->key, d->n, sizeof *d->key);
	}
}

void data_free(dataset *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->key[i]);
	free(d->key);
	free(d->label);
	free(d->pix);
	memset(d, 0, sizeof *d);
}

size_t data_bytes(const dataset *d)
{
	size_t b = d->n * ((size_t)d->h * (size_t)d->w * (size_t)d->c + sizeof(int) + sizeof(char *));

	for (size_t i = 0; i < d->n; i++)
		b += strlen(d->key[i]) + 1;
	return b;
}

void data_report(const char *what, const dataset *d, int quiet)
{
	if (quiet)
		return;
	note("%s data: %zu images of %dx%dx%d in memory, %.1f MiB%s", what, d->n, d->w, d->h,
	     d->c, (double)data_bytes(d) / 1048576.0, d->skipped ? " (samples skipped: see "
	     "the warnings above)" : "");
}

static int max_label(const dataset *d)
{
	int k = -1;

	for (size_t i = 0; i < d->n; i++)
		if (d->label[i] > k)
			k = d->label[i];
	return k;
}

int data_classes(const dataset *a, const dataset *b)
{
	return 1 + (max_label(a) > max_label(b) ? max_label(a) : max_label(b));
}

/* FNV-1a over 64 bits, then mixed. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t data_fingerprint(const dataset *d)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t plane = (size_t)d->h * (size_t)d->w * (size_t)d->c;
	int32_t dims[4] = { d->h, d->w, d->c, 0 };

	h = fnv(h, dims, sizeof dims);
	for (size_t i = 0; i < d->n; i++) {
		int32_t l = d->label[i];
		h = fnv(h, d->key[i], strlen(d->key[i]) + 1);
		h = fnv(h, &l, sizeof l);
	}
	/* pixels: hashed in 64-bit words for speed */
	for (size_t i = 0; i + 8 <= d->n * plane; i += 8) {
		uint64_t v;
		memcpy(&v, d->pix + i, 8);
		h = rng_mix(h ^ v);
	}
	return h;
}
