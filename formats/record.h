/* Record streams: a concatenation of msgpack maps, one per sample (see cull-records(5)). */
#ifndef CULL_RECORD_H
#define CULL_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "io.h"

typedef enum {
	RV_NIL, RV_BOOL, RV_INT, RV_FLOAT, RV_STR, RV_BIN,
	RV_RAW,                /* array, map or ext: kept as packed msgpack bytes */
} rv_type;

typedef struct {
	char *name;
	rv_type type;
	int64_t i;             /* RV_INT, RV_BOOL */
	double f;              /* RV_FLOAT */
	unsigned char *p;      /* RV_STR (NUL-terminated), RV_BIN, RV_RAW bytes */
	size_t len;            /* length of p (without the NUL for strings) */
	int f32;               /* RV_FLOAT read as / to be written as float32 */
} rec_field;

/* A record owns its fields and their bytes. Field order is kept as read or set. */
typedef struct {
	rec_field *f;
	size_t n, cap;
} record;

void rec_init(record *r);
void rec_clear(record *r);          /* remove all fields, keep capacity */
void rec_free(record *r);
void rec_copy(record *dst, const record *src);

rec_field *rec_get(const record *r, const char *name);
/* The record's key string, or NULL when it has none or it is not a string. */
const char *rec_key(const record *r);
/* Typed getters: 1 when present with a compatible type (ints read as floats too), else 0. */
int rec_get_int(const record *r, const char *name, int64_t *v);
int rec_get_float(const record *r, const char *name, double *v);
/* A bin field as float32 values (little-endian, length a multiple of 4): returns the
 * count and points *v at the bytes (possibly unaligned: use rec_floats_copy), or -1. */
long rec_get_floats(const record *r, const char *name, const unsigned char **v);
void rec_floats_copy(float *dst, const unsigned char *src, size_t n);

/* Setters replace a field of the same name in place, or append. */
void rec_set_int(record *r, const char *name, int64_t v);
void rec_set_float(record *r, const char *name, double v);
void rec_set_str(record *r, const char *name, const char *s);
void rec_set_bin(record *r, const char *name, const void *p, size_t len);
void rec_set_floats(record *r, const char *name, const float *v, size_t n);
void rec_set_nil(record *r, const char *name);
void rec_set_bool(record *r, const char *name, int v);
void rec_set_raw(record *r, const char *name, const void *packed, size_t len);
void rec_del(record *r, const char *name);

typedef struct rec_reader rec_reader;

/* Open a record stream; "-" or NULL is standard input. NULL when it cannot be opened
 * (EXIT_IO in e, naming the path). */
rec_reader *rec_open(const char *path, cull_err *e);
/* Read the next record into r (cleared first): 1, or 0 at a clean end of stream, or -1
 * when the stream is broken, the reason in rec_error() (and every later call -1 again).
 * A stream that is not msgpack maps, a truncated record or a record over the size limit
 * is broken: one line naming the stream, record number and byte offset, EXIT_DATA (a read
 * error: EXIT_IO). Records without a string `key` are too (the schema requires it). */
int rec_next(rec_reader *rd, record *r);
const cull_err *rec_error(const rec_reader *rd);
uint64_t rec_count(const rec_reader *rd);     /* records returned so far */
uint64_t rec_offset(const rec_reader *rd);    /* byte offset of the next record */
const char *rec_source(const rec_reader *rd);
void rec_close(rec_reader *rd);

#define REC_MAX_RECORD ((size_t)1 << 30)

typedef struct rec_writer rec_writer;

/* "-" or NULL: standard output. NULL when it cannot be opened (EXIT_IO in e). */
rec_writer *rec_writer_open(const char *path, cull_err *e);
/* 0, or -1 when the write failed (EXIT_IO, naming the output, in rec_writer_error()). */
int rec_write(rec_writer *w, const record *r);
const cull_err *rec_writer_error(const rec_writer *w);
/* Flush and close the output (standard output is flushed and checked, left open) and
 * free w: 0, or -1 with the write error in e. */
int rec_writer_close(rec_writer *w, cull_err *e);

/* Pack one record into a malloc'd buffer (for tests and for tools that batch output). */
unsigned char *rec_pack(const record *r, size_t *len);

#endif
