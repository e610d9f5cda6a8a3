/* safetensors files: read (F32, F16, BF16, F64, I64, I32) and write (F32, I64, any raw dtype). */
#ifndef CULL_SAFETENSORS_H
#define CULL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"

/*
 * Layout: 8-byte little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value"}}
 * then the raw little-endian tensor data; offsets are relative to the end of the header.
 */

enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_U8, ST_I8, ST_BOOL, ST_NDTYPES };

#define ST_MAXDIM 8

typedef struct {
	char *name;
	int dtype;                  /* ST_* */
	int ndim;
	int64_t shape[ST_MAXDIM];
	size_t begin, end;          /* byte range in the data section */
} st_entry;

typedef struct {
	unsigned char *buf;         /* the whole file */
	size_t size;
	const unsigned char *data;  /* start of the data section */
	size_t data_size;
	st_entry *e;                /* in header order */
	size_t n;
	char **meta;                /* "__metadata__": key, value, key, value, ... */
	size_t nmeta;
} st_file;

/* Read and parse a file: 0, or -1 with f empty and a message in e naming the path
 * (EXIT_IO when it cannot be read, EXIT_DATA when it is not safetensors). */
int st_load(st_file *f, const char *path, cull_err *e);
/* Parse a buffer (takes ownership of buf, which must come from malloc): 0, or -1 with a
 * message in e (EXIT_DATA); st_free(f) frees it either way. */
int st_parse(st_file *f, unsigned char *buf, size_t size, cull_err *e);
void st_free(st_file *f);

const st_entry *st_find(const st_file *f, const char *name);
/* A string value of the "__metadata__" map, or NULL. */
const char *st_meta_get(const st_file *f, const char *key);
/* The number of elements, or -1 when the shape overflows 63 bits (st_parse refuses those). */
int64_t st_numel(const st_entry *e);
const char *st_dtype_name(int dtype);
size_t st_dtype_size(int dtype);
/* Convert a tensor of any floating or integer dtype to float32 / int64 (numel elements). */
void st_to_f32(const st_file *f, const st_entry *e, float *dst);
void st_to_i64(const st_file *f, const st_entry *e, int64_t *dst);

/* Writing: collect tensors (the data is referenced, not copied, until st_write), then write. */
typedef struct st_writer st_writer;
st_writer *st_writer_new(void);
/* A tensor of more than ST_MAXDIM dimensions is left out, and st_write reports it. */
void st_add(st_writer *w, const char *name, int dtype, int ndim, const int64_t *shape,
            const void *data);
/* Optional string metadata (the "__metadata__" map). */
void st_meta(st_writer *w, const char *key, const char *value);
/* Write to path ("-" = stdout) and free w: 0, or -1 with the error in e (EXIT_IO naming
 * the path; EXIT_DATA for a tensor st_add could not take). */
int st_write(st_writer *w, const char *path, cull_err *e);

#endif
