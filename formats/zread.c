/* Plain or compressed input files, decompressed by libarchive's raw format and filters. */
#include "zread.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct zread {
	struct archive *a;
	const char *name;
	uint64_t offset;
	int eof;
	int fd;
	cull_err err;
};

zread *zread_open(const char *path, cull_err *e)
{
	zread *z = xcalloc(1, sizeof *z);
	struct archive_entry *ent;
	int rc;

	z->name = io_name(path, 0);
	z->a = archive_read_new();
	if (!z->a)
		die_nomem("out of memory");
	/* only real compressors: a program-based or uu filter could misread raw bytes */
	archive_read_support_filter_gzip(z->a);
	archive_read_support_filter_bzip2(z->a);
	archive_read_support_filter_xz(z->a);
	archive_read_support_filter_zstd(z->a);
	archive_read_support_format_raw(z->a);
	archive_read_support_format_empty(z->a);
	/* open it ourselves so that a missing file (EXIT_IO) differs from bad data (EXIT_DATA) */
	z->fd = !path || strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY);
	if (z->fd < 0) {
		cull_err_set(e, EXIT_IO, "%s: %s", z->name, strerror(errno));
		goto fail;
	}
	rc = archive_read_open_fd(z->a, z->fd, 1 << 16);
	if (rc == ARCHIVE_OK)
		rc = archive_read_next_header(z->a, &ent);
	if (rc == ARCHIVE_EOF) {
		z->eof = 1;
	} else if (rc != ARCHIVE_OK) {
		cull_err_set(e, EXIT_DATA, "%s: %s", z->name, archive_error_string(z->a));
		goto fail;
	}
	return z;
fail:
	zread_close(z);
	return NULL;
}

ssize_t zread_read(zread *z, void *buf, size_t n)
{
	size_t got = 0;
	la_ssize_t r;

	if (z->err.code)
		return -1;
	while (got < n && !z->eof) {
		r = archive_read_data(z->a, (char *)buf + got, n - got);
		if (r < 0)
			return cull_err_set(&z->err, EXIT_DATA, "%s: read error at offset %llu: %s",
			                    z->name, (unsigned long long)(z->offset + got),
			                    archive_error_string(z->a));
		if (r == 0)
			z->eof = 1;
		got += (size_t)r;
	}
	z->offset += got;
	return (ssize_t)got;
}

const cull_err *zread_error(const zread *z)
{
	return &z->err;
}

uint64_t zread_offset(const zread *z)
{
	return z->offset;
}

const char *zread_name(const zread *z)
{
	return z->name;
}

void zread_close(zread *z)
{
	if (!z)
		return;
	archive_read_free(z->a);
	if (z->fd > 0)
		close(z->fd);
	free(z);
}

unsigned char *zread_all(const char *path, size_t *len, cull_err *e)
{
	size_t cap = 1 << 16, n = 0;
	zread *z = zread_open(path, e);
	unsigned char *out, *grown;
	ssize_t r;

	if (!z)
		return NULL;
	out = xmalloc(cap);
	for (;;) {
		if (n == cap) {    /* the input decides the size: report instead of dying */
			if (!(grown = cull_realloc(out, cap *= 2, e)))
				goto fail;
			out = grown;
		}
		r = zread_read(z, out + n, cap - n);
		if (r < 0) {
			if (e)
				*e = *zread_error(z);
			goto fail;
		}
		n += (size_t)r;
		if (n < cap)
			break;
	}
	zread_close(z);
	*len = n;
	return out;
fail:
	free(out);
	zread_close(z);
	return NULL;
}
