/* A class-folder tree: class directories and their image files, sorted, walked recursively. */
#include "classdir.h"
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const char *const image_exts[] = {
	"jpg", "jpeg", "png", "ppm", "pgm", "pnm", "bmp", "gif", "webp", "tif", "tiff", NULL,
};

const char *image_ext(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (!dot || dot == name)
		return NULL;
	for (int i = 0; image_exts[i]; i++)
		if (strcasecmp(dot + 1, image_exts[i]) == 0)
			return image_exts[i];
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Sorted names in a directory, without dot files; NULL with the reason in err. */
static char **list_dir(const char *path, size_t *n, char *err, size_t errlen)
{
	DIR *d = opendir(path);
	struct dirent *e;
	size_t cap = 64;
	char **v = xmalloc(cap * sizeof *v);

	*n = 0;
	if (!d)
		goto fail;
	while ((errno = 0, e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (*n == cap)
			v = xreallocarray(v, cap *= 2, sizeof *v);
		v[(*n)++] = xstrdup(e->d_name);
	}
	if (errno) {
		int saved = errno;

		closedir(d);
		errno = saved;
		goto fail;
	}
	closedir(d);
	qsort(v, *n, sizeof *v, cmp_str);
	return v;
fail:
	snprintf(err, errlen, "%s: %s", path, strerror(errno));
	free_names(v, *n);
	return NULL;
}

typedef struct {
	const char *root;
	uint64_t max_size;
	classdir *d;
	size_t cap, skipped;
} walker;

/* Adds the images below root/rel to class cls; -1 when a directory cannot be read. */
static int walk(walker *w, const char *rel, int cls, char *err, size_t errlen)
{
	char *dir = xasprintf("%s/%s", w->root, rel);
	size_t n, i;
	char **names = list_dir(dir, &n, err, errlen);
	classdir *d = w->d;
	int rc = 0;

	for (i = 0; names && i < n && rc == 0; i++) {
		char *r = xasprintf("%s/%s", rel, names[i]);
		char *full = xasprintf("%s/%s", w->root, r);
		struct stat st;

		if (stat(full, &st) != 0) {
			warn("%s: %s; skipped", full, strerror(errno));
			w->skipped++;
			free(r);
		} else if (S_ISDIR(st.st_mode)) {
			rc = walk(w, r, cls, err, errlen);
			free(r);
		} else if (S_ISREG(st.st_mode) && image_ext(names[i]) &&
		           (uint64_t)st.st_size > w->max_size) {
			warn("%s: %lld bytes, over the %llu-byte member limit of shard readers; skipped",
			     full, (long long)st.st_size, (unsigned long long)w->max_size);
			free(r);
		} else if (S_ISREG(st.st_mode) && image_ext(names[i])) {
			if (d->n == w->cap) {
				w->cap = w->cap ? 2 * w->cap : 1024;
				d->paths = xreallocarray(d->paths, w->cap, sizeof *d->paths);
				d->labels = xreallocarray(d->labels, w->cap, sizeof *d->labels);
			}
			d->paths[d->n] = r;
			d->labels[d->n++] = cls;
		} else {
			w->skipped++;
			free(r);
		}
		free(full);
	}
	if (names)
		free_names(names, n);
	free(dir);
	return names ? rc : -1;
}

int classdir_open(classdir *d, const char *root, uint64_t max_size, char *err, size_t errlen)
{
	walker w = { .root = root, .max_size = max_size, .d = d };
	size_t n, i;
	char **names = list_dir(root, &n, err, errlen);

	memset(d, 0, sizeof *d);
	if (!names)
		return -1;
	d->classes = names;
	for (i = 0; i < n; i++) {
		char *full = xasprintf("%s/%s", root, names[i]);
		struct stat st;

		if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
			/* class k's name moves to names[k]: the classes stay sorted */
			names[d->nclasses++] = names[i];
			if (walk(&w, names[i], (int)d->nclasses - 1, err, errlen) != 0) {
				for (size_t j = i + 1; j < n; j++)
					free(names[j]);
				free(full);
				classdir_free(d);
				return -1;
			}
		} else {
			warn("%s: not a class directory; skipped", full);
			free(names[i]);
		}
		free(full);
	}
	if (w.skipped)
		warn("%s: skipped %zu files that are not images (by extension)", root, w.skipped);
	return 0;
}

void classdir_free(classdir *d)
{
	for (size_t i = 0; i < d->nclasses; i++)
		free(d->classes[i]);
	free(d->classes);
	for (size_t i = 0; i < d->n; i++)
		free(d->paths[i]);
	free(d->paths);
	free(d->labels);
	memset(d, 0, sizeof *d);
}
