/* Thumbnails of the samples a report shows: found by key in shards, fitted in a box, written as files. */
#include "thumb.h"
#include "encode.h"
#include "html.h"
#include "image.h"
#include "io.h"
#include "preprocess.h"
#include "wds.h"

#include <stdlib.h>
#include <string.h>

void thumbs_want(thumbs *t, const char *key)
{
	size_t i = keyset_add(&t->keys, key);

	if (i >= t->cap) {
		size_t old = t->cap;

		t->cap = 2 * i + 64;
		t->t = xreallocarray(t->t, t->cap, sizeof *t->t);
		memset(t->t + old, 0, (t->cap - old) * sizeof *t->t);
	}
}

const thumb *thumbs_get(const thumbs *t, const char *key)
{
	size_t i = keyset_find(&t->keys, key);

	return i == KEYSET_NONE ? NULL : &t->t[i];
}

/* The image fitted in the box, encoded: a malloc'd buffer, or NULL with err. */
static unsigned char *encode(const image *img, const thumb_opts *o, int *w, int *h,
                             size_t *len, char *err, size_t errlen)
{
	const unsigned char *px = img->pixels;
	unsigned char *small = NULL, *out;
	int big = img->width > img->height ? img->width : img->height;

	*w = img->width, *h = img->height;
	if (big > o->box) {
		*w = (int)((double)img->width * o->box / big + 0.5);
		*h = (int)((double)img->height * o->box / big + 0.5);
		*w = *w < 1 ? 1 : *w;
		*h = *h < 1 ? 1 : *h;
		small = xmalloc((size_t)*w * (size_t)*h * (size_t)img->channels);
		resize_bilinear_pil(small, *w, *h, img->pixels, img->width, img->height,
		                    img->channels);
		px = small;
	}
	if (o->jpeg) {
		cull_err e;
		out = image_encode_jpeg(px, *w, *h, img->channels, 90, len, &e);
		if (!out)
			snprintf(err, errlen, "%.*s", (int)errlen - 1, e.msg);
	} else {
		out = image_encode_png(px, *w, *h, img->channels, len, err, errlen);
	}
	free(small);
	return out;
}

static uint64_t warned;

static void fail(thumbs *t, const wds_sample *s, const char *what)
{
	t->failed++;
	if (++warned <= 20)
		warn("%s: %s: no thumbnail: %s", s->source, s->key, what);
	else if (warned == 21)
		warn("more samples without a thumbnail: counted, not shown");
}

static void make_one(thumbs *t, thumb *th, const wds_sample *s, const thumb_opts *o,
                     const char *dir, const char *prefix)
{
	const wds_member *m = wds_find(s, o->image_field), *c = wds_find(s, "cls");
	image_opts io = { .min_size = o->box };
	image img = { 0 };
	char err[256], *name, *path;
	unsigned char *bytes;
	size_t len;
	FILE *f;

	th->found = 1;
	if (c && wds_parse_cls(c, &th->cls))
		th->has_cls = 1;
	if (!m || m->size == 0) {
		snprintf(err, sizeof err, "no image member (looked for %s)", o->image_field);
		fail(t, s, err);
		return;
	}
	cull_err de;
	if (image_decode(&img, m->data, m->size, &io, &de) != 0) {
		snprintf(err, sizeof err, "%.*s", (int)sizeof err - 1, de.msg);
		fail(t, s, err);
		return;
	}
	bytes = encode(&img, o, &th->w, &th->h, &len, err, sizeof err);
	image_free(&img);
	if (!bytes) {
		fail(t, s, err);
		return;
	}
	name = html_file_name(prefix, s->key, o->jpeg ? ".jpg" : ".png");
	path = xasprintf("%s/%s", dir, name);
	f = xfopen(path, "wb");
	xfwrite(bytes, len, f, path);
	xfclose(f, path);
	free(path);
	free(bytes);
	th->file = name;
	t->made++;
}

void thumbs_make(thumbs *t, const char *const *paths, size_t npaths, const thumb_opts *o,
                 const char *dir, const char *prefix)
{
	/* no check_keys: it would hold every key of the shards */
	wds_options wo = { .max_member = WDS_MAX_MEMBER, .borrow = 1 };
	wds_reader *r;
	wds_sample s = { 0 };
	size_t i;

	if (npaths > 0 && t->keys.n > 0) {
		t->reader = r = wds_open(paths, npaths, &wo);
		while (wds_next(r, &s)) {
			i = keyset_find(&t->keys, s.key);
			if (i != KEYSET_NONE && !t->t[i].found)
				make_one(t, &t->t[i], &s, o, dir, prefix);
		}
		wds_close(r);
		t->reader = NULL;
		wds_sample_free(&s);
	}
	for (i = 0; i < t->keys.n; i++)
		t->missing += !t->t[i].found;
}

void thumbs_free(thumbs *t)
{
	for (size_t i = 0; i < t->keys.n; i++)
		free(t->t[i].file);
	free(t->t);
	keyset_free(&t->keys);
	memset(t, 0, sizeof *t);
}
