/* IDX files (MNIST, Fashion-MNIST): header checks and loading, raw or compressed. */
#ifndef CULL_IDX_H
#define CULL_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"

#define IDX_MAX_DIMS 8

/* Element types, the third byte of the magic number. */
enum { IDX_U8 = 0x08, IDX_S8 = 0x09, IDX_I16 = 0x0B, IDX_I32 = 0x0C, IDX_F32 = 0x0D,
       IDX_F64 = 0x0E };

typedef struct {
	const char *name;        /* display name of the file (the path given) */
	int type;                /* IDX_U8, ... */
	int ndims;               /* 1..IDX_MAX_DIMS */
	uint32_t dims[IDX_MAX_DIMS];
	uint64_t count;          /* dims[0]: number of items */
	size_t elem_size;        /* bytes per element */
	size_t item_size;        /* bytes per item: elem_size * dims[1] * ... */
	unsigned char *data;     /* count * item_size bytes, elements big-endian as stored */
} idx_file;

/* Load an IDX file (gzip, bzip2, xz or zstd compressed, or plain): 0, or -1 with f empty
 * and one line in e naming the file and byte offset (EXIT_DATA; EXIT_IO when it cannot
 * be opened): magic that is not 00 00 TYPE NDIMS, an unknown type, zero or too many
 * dimensions, data shorter than the dimensions promise, or bytes after the data. The
 * path is not copied. */
int idx_load(idx_file *f, const char *path, cull_err *e);
void idx_free(idx_file *f);

/* Element i of an item of an integer type (IDX_U8, IDX_S8, IDX_I16, IDX_I32); 0 for floats. */
int64_t idx_get_int(const idx_file *f, uint64_t item, size_t i);

#endif
