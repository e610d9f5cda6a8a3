/* IDX reader: the big-endian header, then count * item_size bytes of elements. */
#include "idx.h"

#include <stdlib.h>
#include <string.h>

#include "zread.h"

/* Report bad data: the file closed, f emptied. */
#define FAIL(...) do { cull_err_set(e, EXIT_DATA, __VA_ARGS__); goto fail; } while (0)

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

/* zread_read that copies a read error into e. */
static ssize_t get(zread *z, void *buf, size_t n, cull_err *e)
{
	ssize_t r = zread_read(z, buf, n);

	if (r < 0 && e)
		*e = *zread_error(z);
	return r;
}

/* The elements after the header: total bytes, grown as they arrive, so a lying header
 * cannot make us allocate it all. Returns the bytes read (short at the end of the file),
 * or -1 with e set. */
static ssize_t read_data(idx_file *f, zread *z, uint64_t total, cull_err *e)
{
	size_t cap = total < ((size_t)1 << 24) ? (size_t)total : (size_t)1 << 24, n = 0;
	unsigned char *grown;
	ssize_t got;

	f->data = xmalloc(cap ? cap : 1);
	while (n < total) {
		if (n == cap) {
			cap = cap * 2 < total ? cap * 2 : (size_t)total;
			if (!(grown = cull_realloc(f->data, cap, e)))
				return -1;
			f->data = grown;
		}
		if ((got = get(z, f->data + n, cap - n, e)) < 0)
			return -1;
		n += (size_t)got;
		if (got == 0 || (n < cap && n < total))
			break;
	}
	return (ssize_t)n;
}

int idx_load(idx_file *f, const char *path, cull_err *e)
{
	unsigned char hdr[4 + 4 * IDX_MAX_DIMS], extra;
	zread *z;
	uint64_t total;
	ssize_t got;
	int i;

	memset(f, 0, sizeof *f);
	if (!(z = zread_open(path, e)))
		return -1;
	f->name = zread_name(z);
	if ((got = get(z, hdr, 4, e)) < 0)
		goto fail;
	if (got < 4)
		FAIL("%s: not an IDX file: %zu bytes, shorter than the 4-byte magic", f->name,
		     (size_t)got);
	if (hdr[0] != 0 || hdr[1] != 0 || !type_size(hdr[2]) || hdr[3] == 0)
		FAIL("%s: not an IDX file: bad magic %02x %02x %02x %02x at offset 0 "
		    "(want 00 00 TYPE NDIMS)", f->name, hdr[0], hdr[1], hdr[2], hdr[3]);
	if (hdr[3] > IDX_MAX_DIMS)
		FAIL("%s: IDX header at offset 3: %d dimensions (at most %d supported)",
		    f->name, hdr[3], IDX_MAX_DIMS);
	f->type = hdr[2];
	f->ndims = hdr[3];
	f->elem_size = type_size(f->type);
	if ((got = get(z, hdr + 4, 4 * (size_t)f->ndims, e)) < 0)
		goto fail;
	if ((size_t)got < 4 * (size_t)f->ndims)
		FAIL("%s: truncated IDX header: %d dimensions need %d bytes, file ends at offset %zu",
		    f->name, f->ndims, 4 + 4 * f->ndims, 4 + (size_t)got);
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
	if ((got = read_data(f, z, total, e)) < 0)
		goto fail;
	if ((uint64_t)got < total)
		FAIL("%s: truncated IDX data: the header at offset 0 promises %u items of "
		    "%zu bytes (%llu bytes), the file ends at offset %llu after %llu complete items",
		    f->name, f->dims[0], f->item_size, (unsigned long long)total,
		    (unsigned long long)(4 + 4 * (unsigned)f->ndims + (size_t)got),
		    (unsigned long long)(f->item_size ? (size_t)got / f->item_size : 0));
	if ((got = get(z, &extra, 1, e)) < 0)
		goto fail;
	if (got == 1) {
		uint64_t at = zread_offset(z) - 1;

		FAIL("%s: trailing bytes after the IDX data at offset %llu: the header "
		     "promises %u items", f->name, (unsigned long long)at, f->dims[0]);
	}
	zread_close(z);
	return 0;
fail:
	zread_close(z);
	idx_free(f);
	return -1;
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
