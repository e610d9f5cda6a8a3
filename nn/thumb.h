/* Thumbnails of the samples a report shows: found by key in shards, fitted in a box, written as files. */
#ifndef CULL_THUMB_H
#define CULL_THUMB_H

#include <stddef.h>
#include <stdint.h>

#include "keys.h"

typedef struct {
	int box;                  /* fit in box x box pixels; smaller images keep their size */
	int jpeg;                 /* JPEG (quality 90) instead of PNG */
	const char *image_field;  /* member fields that hold the image, e.g. "jpg,png,ppm" */
} thumb_opts;

typedef struct {
	char *file;               /* relative to the folder, when made */
	int w, h;
	int64_t cls;              /* from the sample's .cls member */
	int has_cls, found;       /* found: the key was in the shards */
} thumb;

/* The keys wanted and, after thumbs_make, their thumbnails. Zero it before use. */
typedef struct {
	keyset keys;
	thumb *t;
	size_t cap;
	uint64_t made, failed, missing;
	void *reader;             /* the shards being read (reachable if a fatal error exits) */
} thumbs;

void thumbs_want(thumbs *t, const char *key);
/* The thumbnail of key, or NULL when it was not wanted. */
const thumb *thumbs_get(const thumbs *t, const char *key);

/* Read the shards (none: nothing), and for the first sample of each wanted key decode its
 * image, fit it in the box (Pillow's bilinear filter, antialiased), and write it to
 * dir/prefix + html_file_name(key). An image that does not decode, or a sample without
 * one, is a warning naming the shard and key (the first 20 shown), counted in failed;
 * wanted keys not found are counted in missing. A broken shard is fatal as for every
 * shard reader (wds.h); a file that cannot be written is fatal with EXIT_IO. */
void thumbs_make(thumbs *t, const char *const *paths, size_t npaths, const thumb_opts *o,
                 const char *dir, const char *prefix);
void thumbs_free(thumbs *t);

#endif
