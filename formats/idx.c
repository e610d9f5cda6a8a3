/* IDX reader: the big-endian header, then count * item_size bytes of elements. */
#include "idx.h"

#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "zread.h"

/* Close the file and free the data before dying, so no allocation outlives the message. */
#define FAIL(...) do { zread_close(z); free(f->data); f->data = NULL; \
	die(EXIT_DATA, __VA_ARGS__); } while (0)

static size_t type_size(int type)
{
	switch (type) {
	case IDX_U8: case IDX_S8: return 1;
	case IDX_I16: return 2;
	case IDX_I32: case IDX_F32: return 4;
	case IDX_F64: return 8;
	default: return 0;
	}
}

void idx_load(idx_file *f, const char *path)
{
	unsigned char hdr[4 + 4 * IDX_MAX_DIMS], extra;
	zread *z;
	uint64_t total;
	size_t got, cap, n;
	int i;

	memset(f, 0, sizeof *f);
	z = zread_open(path);
	f->name = zread_name(z);
	got = zread_read(z, hdr, 4);
	if (got < 4)
		FAIL("%s: not an IDX file: %zu bytes, shorter than the 4-byte magic", f->name, got);
	if (hdr[0] != 0 || hdr[1] != 0 || !type_size(hdr[2]) || hdr[3] == 0)
		FAIL("%s: not an IDX file: bad magic %02x %02x %02x %02x at offset 0 "
		    "(want 00 00 TYPE NDIMS)", f->name, hdr[0], hdr[1], hdr[2], hdr[3]);
	if (hdr[3] > IDX_MAX_DIMS)
		FAIL("%s: IDX header at offset 3: %d dimensions (at most %d supported)",
		    f->name, hdr[3], IDX_MAX_DIMS);
	f->type = hdr[2];
	f->ndims = hdr[3];
	f->elem_size = type_size(f->type);
	got = zread_read(z, hdr + 4, 4 * (size_t)f->ndims);
	if (got < 4 * (size_t)f->ndims)
		FAIL("%s: truncated IDX header: %d dimensions need %d bytes, file ends at offset %zu",
		    f->name, f->ndims, 4 + 4 * f->ndims, 4 + got);
	total = f->elem_size;
	for (i = 0; i < f->ndims; i++) {
		const unsigned char *p = hdr + 4 + 4 * i;

		f->dims[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
		if (i > 0)
			total *= f->dims[i];
		if (total > (uint64_t)1 << 40)
			FAIL("%s: IDX header: items of over 1 TiB", f->name);
	}
	f->item_size = (size_t)total;
	f->count = f->dims[0];
	if (f->count && total > ((uint64_t)1 << 46) / f->count)
		FAIL("%s: IDX header: %u items of %llu bytes is too large", f->name, f->dims[0],
		    (unsigned long long)total);
	total *= f->count;
	if (total > SIZE_MAX / 2)
		FAIL("%s: IDX header: %llu bytes of data is too large", f->name,
		    (unsigned long long)total);
	/* grow as the data arrives, so a lying header cannot make us allocate it all */
	cap = total < ((size_t)1 << 24) ? (size_t)total : (size_t)1 << 24;
	f->data = xmalloc(cap ? cap : 1);
	n = 0;
	while (n < total) {
		if (n == cap) {
			cap = cap * 2 < total ? cap * 2 : (size_t)total;
			f->data = xrealloc(f->data, cap);
		}
		got = zread_read(z, f->data + n, cap - n);
		n += got;
		if (got == 0 || (n < cap && n < total))
			break;
	}
	if (n < total)
		FAIL("%s: truncated IDX data: the header at offset 0 promises %u items of "
		    "%zu bytes (%llu bytes), the file ends at offset %llu after %llu complete items",
		    f->name, f->dims[0], f->item_size, (unsigned long long)total,
		    (unsigned long long)(4 + 4 * (unsigned)f->ndims + n),
		    (unsigned long long)(f->item_size ? n / f->item_size : 0));
	if (zread_read(z, &extra, 1) == 1) {
		uint64_t at = zread_offset(z) - 1;

		FAIL("%s: trailing bytes after the IDX data at offset %llu: the header "
		     "promises %u items", f->name, (unsigned long long)at, f->dims[0]);
	}
	zread_close(z);
}

void idx_free(idx_file *f)
{
	free(f->data);
	memset(f, 0, sizeof *f);
}

int64_t idx_get_int(const idx_file *f, uint64_t item, size_t i)
{
	const unsigned char *p = f->data + item * f->item_size + i * f->elem_size;

	switch (f->type) {
	case IDX_U8: return p[0];
	case IDX_S8: return (int8_t)p[0];
	case IDX_I16: return (int16_t)((uint16_t)p[0] << 8 | p[1]);
	case IDX_I32: return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	                               (uint32_t)p[2] << 8 | p[3]);
	default: return 0;
	}
}
