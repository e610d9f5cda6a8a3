/* Plain or compressed input files, decompressed by libarchive's raw format and filters. */
#include "zread.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

#include <stdarg.h>

struct zread {
	struct archive *a;
	const char *name;
	uint64_t offset;
	int eof;
	int fd;
	unsigned char *all;   /* zread_all()'s buffer until it returns: freed if reading dies */
};

/* Free the reader, then die: nothing stays allocated behind the message. */
static void zfail(zread *z, int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));

static void zfail(zread *z, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	zread_close(z);
	die(code, "%s", msg);
}

zread *zread_open(const char *path)
{
	zread *z = xcalloc(1, sizeof *z);
	struct archive_entry *e;
	int rc;

	z->name = io_name(path, 0);
	z->a = archive_read_new();
	if (!z->a)
		die(EXIT_NOMEM, "out of memory");
	/* only real compressors: a program-based or uu filter could misread raw bytes */
	archive_read_support_filter_gzip(z->a);
	archive_read_support_filter_bzip2(z->a);
	archive_read_support_filter_xz(z->a);
	archive_read_support_filter_zstd(z->a);
	archive_read_support_format_raw(z->a);
	archive_read_support_format_empty(z->a);
	/* open it ourselves so that a missing file (EXIT_IO) differs from bad data (EXIT_DATA) */
	z->fd = !path || strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY);
	if (z->fd < 0)
		zfail(z, EXIT_IO, "%s: %s", z->name, strerror(errno));
	rc = archive_read_open_fd(z->a, z->fd, 1 << 16);
	if (rc != ARCHIVE_OK)
		zfail(z, EXIT_DATA, "%s: %s", z->name, archive_error_string(z->a));
	rc = archive_read_next_header(z->a, &e);
	if (rc == ARCHIVE_EOF)
		z->eof = 1;
	else if (rc != ARCHIVE_OK)
		zfail(z, EXIT_DATA, "%s: %s", z->name, archive_error_string(z->a));
	return z;
}

size_t zread_read(zread *z, void *buf, size_t n)
{
	size_t got = 0;
	la_ssize_t r;

	while (got < n && !z->eof) {
		r = archive_read_data(z->a, (char *)buf + got, n - got);
		if (r < 0)
			zfail(z, EXIT_DATA, "%s: read error at offset %llu: %s", z->name,
			    (unsigned long long)(z->offset + got), archive_error_string(z->a));
		if (r == 0)
			z->eof = 1;
		got += (size_t)r;
	}
	z->offset += got;
	return got;
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
	free(z->all);
	free(z);
}

unsigned char *zread_all(const char *path, size_t *len)
{
	size_t cap = 1 << 16, n = 0, r;
	zread *z = zread_open(path);
	unsigned char *out;

	z->all = xmalloc(cap);
	for (;;) {
		if (n == cap)
			z->all = xrealloc(z->all, cap *= 2);
		r = zread_read(z, z->all + n, cap - n);
		n += r;
		if (n < cap)
			break;
	}
	out = z->all;
	z->all = NULL;
	zread_close(z);
	*len = n;
	return out;
}
