/* CIFAR binary batch reader: layout detection, label checks, planar to interleaved pixels, class names. */
#include "cifar.h"

#include <stdlib.h>
#include <string.h>

#include "zread.h"

const char *const cifar10_classes[10] = {
	"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
};

/* Index of the first record whose labels are out of range for the variant, or count. */
static size_t first_bad(const unsigned char *d, size_t n, int variant, size_t *off)
{
	size_t rs = variant == 10 ? CIFAR_PIXELS + 1 : CIFAR_PIXELS + 2, i;

	for (i = 0; i < n; i++) {
		const unsigned char *r = d + i * rs;

		if (variant == 10 ? r[0] >= 10 : r[0] >= 20 || r[1] >= 100) {
			*off = i * rs + (variant == 100 && r[0] < 20);
			return i;
		}
	}
	return n;
}

int cifar_load(cifar_file *f, const char *path, int variant, cull_err *e)
{
	size_t len, bad, off = 0;
	int fits10, fits100;

	memset(f, 0, sizeof *f);
	f->name = io_name(path, 0);
	if (!(f->data = zread_all(path, &len, e)))
		return -1;
	if (len == 0) {
		cull_err_set(e, EXIT_DATA, "%s: empty file, not a CIFAR batch", f->name);
		goto fail;
	}
	fits10 = len % (CIFAR_PIXELS + 1) == 0;
	fits100 = len % (CIFAR_PIXELS + 2) == 0;
	if (variant == 0) {
		if (fits10 && fits100)   /* both sizes fit: let the labels decide */
			fits100 = first_bad(f->data, len / (CIFAR_PIXELS + 1), 10, &off) !=
			          len / (CIFAR_PIXELS + 1);
		if (!fits10 && !fits100) {
			cull_err_set(e, EXIT_DATA, "%s: not a CIFAR batch: %zu bytes is not a whole "
			             "number of 3073-byte (CIFAR-10) or 3074-byte (CIFAR-100) records; "
			             "the last record starts at offset %zu", f->name, len,
			             len - len % (CIFAR_PIXELS + 1));
			goto fail;
		}
		variant = fits100 ? 100 : 10;
	} else if (variant == 10 ? !fits10 : !fits100) {
		size_t rs = variant == 10 ? CIFAR_PIXELS + 1 : CIFAR_PIXELS + 2;

		cull_err_set(e, EXIT_DATA, "%s: truncated CIFAR-%d batch: %zu bytes is not a whole "
		             "number of %zu-byte records; the partial record starts at offset %zu",
		             f->name, variant, len, rs, len - len % rs);
		goto fail;
	}
	f->variant = variant;
	f->record_size = variant == 10 ? CIFAR_PIXELS + 1 : CIFAR_PIXELS + 2;
	f->count = len / f->record_size;
	bad = first_bad(f->data, f->count, variant, &off);
	if (bad < f->count) {
		cull_err_set(e, EXIT_DATA, "%s: record %zu at offset %zu: label %d out of range for "
		             "CIFAR-%d", f->name, bad, off, f->data[off], variant);
		goto fail;
	}
	return 0;
fail:
	cifar_free(f);
	return -1;
}

void cifar_free(cifar_file *f)
{
	free(f->data);
	memset(f, 0, sizeof *f);
}

int cifar_label(const cifar_file *f, size_t i)
{
	const unsigned char *r = f->data + i * f->record_size;

	return f->variant == 10 ? r[0] : r[1];
}

int cifar_coarse(const cifar_file *f, size_t i)
{
	return f->variant == 10 ? -1 : f->data[i * f->record_size];
}

void cifar_pixels(const cifar_file *f, size_t i, unsigned char *rgb)
{
	const unsigned char *p = f->data + i * f->record_size + (f->variant == 10 ? 1 : 2);
	size_t k, n = CIFAR_SIDE * CIFAR_SIDE;

	for (k = 0; k < n; k++) {
		rgb[3 * k] = p[k];
		rgb[3 * k + 1] = p[n + k];
		rgb[3 * k + 2] = p[2 * n + k];
	}
}

/* Names from the label-names file `file` beside a batch, if it exists and has exactly n
 * non-empty lines (trailing blanks cut). */
static char **meta_names(const char *batch, const char *file, size_t n)
{
	const char *slash = strrchr(batch, '/');
	char *path, **v, *line = NULL;
	size_t cap = 0, k = 0;
	ssize_t len = 0;
	FILE *f;

	if (strcmp(batch, "-") == 0)
		return NULL;
	path = slash ? xasprintf("%.*s/%s", (int)(slash - batch), batch, file) : xstrdup(file);
	f = fopen(path, "r");
	v = xcalloc(n, sizeof *v);
	free(path);
	if (!f)
		goto none;
	while ((len = getline(&line, &cap, f)) > 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
			line[--len] = 0;
		if (len == 0)
			continue;
		if (k == n)
			break;
		v[k++] = xstrdup(line);
	}
	free(line);
	fclose(f);
	if (k == n && len <= 0)
		return v;
none:
	for (size_t i = 0; i < k; i++)
		free(v[i]);
	free(v);
	return NULL;
}

char **cifar_class_names(int variant, const char *batch)
{
	char **v;

	if (variant != 10)
		return meta_names(batch, "fine_label_names.txt", 100);
	v = meta_names(batch, "batches.meta.txt", 10);
	if (!v) {
		v = xcalloc(10, sizeof *v);
		for (int i = 0; i < 10; i++)
			v[i] = xstrdup(cifar10_classes[i]);
	}
	return v;
}
