/* Record streams: msgpack maps read with msgpack-c's streaming unpacker and written back. */
#include "record.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/* ---- records ---- */

void rec_init(record *r)
{
	memset(r, 0, sizeof *r);
}

static void field_free(rec_field *f)
{
	free(f->name);
	free(f->p);
	memset(f, 0, sizeof *f);
}

void rec_clear(record *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		field_free(&r->f[i]);
	r->n = 0;
}

void rec_free(record *r)
{
	rec_clear(r);
	free(r->f);
	rec_init(r);
}

rec_field *rec_get(const record *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->f[i].name, name) == 0)
			return &r->f[i];
	return NULL;
}

const char *rec_key(const record *r)
{
	rec_field *f = rec_get(r, "key");

	return f && f->type == RV_STR ? (const char *)f->p : NULL;
}

int rec_get_int(const record *r, const char *name, int64_t *v)
{
	rec_field *f = rec_get(r, name);

	if (!f)
		return 0;
	if (f->type == RV_INT || f->type == RV_BOOL) {
		*v = f->i;
		return 1;
	}
	/* a float that holds an integer exactly (e.g. from JSON tools) counts too */
	if (f->type == RV_FLOAT && f->f >= -0x1p63 && f->f < 0x1p63 &&
	    f->f == (double)(int64_t)f->f) {
		*v = (int64_t)f->f;
		return 1;
	}
	return 0;
}

int rec_get_float(const record *r, const char *name, double *v)
{
	rec_field *f = rec_get(r, name);

	if (!f)
		return 0;
	if (f->type == RV_FLOAT) {
		*v = f->f;
		return 1;
	}
	if (f->type == RV_INT || f->type == RV_BOOL) {
		*v = (double)f->i;
		return 1;
	}
	return 0;
}

long rec_get_floats(const record *r, const char *name, const unsigned char **v)
{
	rec_field *f = rec_get(r, name);

	if (!f || f->type != RV_BIN || f->len % 4)
		return -1;
	*v = f->p;
	return (long)(f->len / 4);
}

void rec_floats_copy(float *dst, const unsigned char *src, size_t n)
{
	size_t i;
	uint32_t u;

	for (i = 0; i < n; i++, src += 4) {
		u = (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 |
		    (uint32_t)src[3] << 24;
		memcpy(&dst[i], &u, 4);
	}
}

/* The field named `name`, emptied, or a new one appended. */
static rec_field *slot(record *r, const char *name)
{
	rec_field *f = rec_get(r, name);

	if (f) {
		free(f->p);
		f->p = NULL;
		f->len = 0;
		f->f32 = 0;
		return f;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 8;
		r->f = xreallocarray(r->f, r->cap, sizeof *r->f);
	}
	f = &r->f[r->n++];
	memset(f, 0, sizeof *f);
	f->name = xstrdup(name);
	return f;
}

static void set_bytes(rec_field *f, rv_type t, const void *p, size_t len)
{
	f->type = t;
	f->p = xmalloc(len + 1);
	if (len && p)
		memcpy(f->p, p, len);
	f->p[len] = '\0';
	f->len = len;
}

void rec_set_int(record *r, const char *name, int64_t v)
{
	rec_field *f = slot(r, name);

	f->type = RV_INT;
	f->i = v;
}

void rec_set_float(record *r, const char *name, double v)
{
	rec_field *f = slot(r, name);

	f->type = RV_FLOAT;
	f->f = v;
}

void rec_set_bool(record *r, const char *name, int v)
{
	rec_field *f = slot(r, name);

	f->type = RV_BOOL;
	f->i = v != 0;
}

void rec_set_nil(record *r, const char *name)
{
	slot(r, name)->type = RV_NIL;
}

void rec_set_str(record *r, const char *name, const char *s)
{
	set_bytes(slot(r, name), RV_STR, s, strlen(s));
}

void rec_set_bin(record *r, const char *name, const void *p, size_t len)
{
	set_bytes(slot(r, name), RV_BIN, p, len);
}

void rec_set_raw(record *r, const char *name, const void *packed, size_t len)
{
	set_bytes(slot(r, name), RV_RAW, packed, len);
}

void rec_set_floats(record *r, const char *name, const float *v, size_t n)
{
	rec_field *f = slot(r, name);
	size_t i;
	uint32_t u;

	set_bytes(f, RV_BIN, NULL, 4 * n);
	for (i = 0; i < n; i++) {
		memcpy(&u, &v[i], 4);
		f->p[4 * i] = (unsigned char)u;
		f->p[4 * i + 1] = (unsigned char)(u >> 8);
		f->p[4 * i + 2] = (unsigned char)(u >> 16);
		f->p[4 * i + 3] = (unsigned char)(u >> 24);
	}
}

void rec_del(record *r, const char *name)
{
	rec_field *f = rec_get(r, name);
	size_t i;

	if (!f)
		return;
	i = (size_t)(f - r->f);
	field_free(f);
	memmove(&r->f[i], &r->f[i + 1], (r->n - i - 1) * sizeof *r->f);
	r->n--;
}

void rec_copy(record *dst, const record *src)
{
	size_t i;
	rec_field *f;

	rec_clear(dst);
	for (i = 0; i < src->n; i++) {
		f = slot(dst, src->f[i].name);
		*f = (rec_field){ .name = f->name, .type = src->f[i].type, .i = src->f[i].i,
		                  .f = src->f[i].f, .f32 = src->f[i].f32 };
		if (src->f[i].p)
			set_bytes(f, src->f[i].type, src->f[i].p, src->f[i].len);
	}
}

/* ---- packing ---- */

static int sbuf_write(void *data, const char *buf, size_t len)
{
	return msgpack_sbuffer_write(data, buf, len);
}

static void pack_record(msgpack_packer *pk, const record *r, msgpack_sbuffer *raw_out)
{
	size_t i;
	const rec_field *f;

	msgpack_pack_map(pk, r->n);
	for (i = 0; i < r->n; i++) {
		f = &r->f[i];
		msgpack_pack_str_with_body(pk, f->name, strlen(f->name));
		switch (f->type) {
		case RV_NIL: msgpack_pack_nil(pk); break;
		case RV_BOOL: f->i ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
		case RV_INT: msgpack_pack_int64(pk, f->i); break;
		case RV_FLOAT:
			if (f->f32)
				msgpack_pack_float(pk, (float)f->f);
			else
				msgpack_pack_double(pk, f->f);
			break;
		case RV_STR: msgpack_pack_str_with_body(pk, f->p, f->len); break;
		case RV_BIN: msgpack_pack_bin_with_body(pk, f->p, f->len); break;
		case RV_RAW: msgpack_sbuffer_write(raw_out, (const char *)f->p, f->len); break;
		}
	}
}

unsigned char *rec_pack(const record *r, size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, sbuf_write);
	pack_record(&pk, r, &sb);
	if (!sb.data && r->n)
		die_nomem("out of memory packing a record");
	*len = sb.size;
	return (unsigned char *)msgpack_sbuffer_release(&sb);
}

/* ---- reader ---- */

struct rec_reader {
	FILE *f;
	const char *name;
	msgpack_unpacker up;
	msgpack_unpacked res;
	uint64_t count, offset, fed;   /* records returned, start of the next, bytes read */
	uint64_t scan, left;           /* record_whole(): bytes walked, values still to come */
	int eof;
	cull_err err;                  /* why the stream broke; err.code 0 until it does */
};

rec_reader *rec_open(const char *path, cull_err *e)
{
	FILE *f = cull_fopen(path, "rb", e);
	rec_reader *rd;

	if (!f)
		return NULL;
	rd = xcalloc(1, sizeof *rd);
	rd->f = f;
	rd->name = io_name(path, 0);
	if (!msgpack_unpacker_init(&rd->up, 1 << 16))
		die_nomem("out of memory (msgpack unpacker)");
	msgpack_unpacked_init(&rd->res);
	return rd;
}

const cull_err *rec_error(const rec_reader *rd)
{
	return &rd->err;
}

/* The stream is broken at the record being read: -1. */
static int bad(rec_reader *rd, const char *what)
{
	return cull_err_set(&rd->err, EXIT_DATA, "%s: record %llu at byte %llu: %s", rd->name,
	                    (unsigned long long)rd->count + 1, (unsigned long long)rd->offset,
	                    what);
}

/* Copy one msgpack value into field f: 0, or -1 (bad()). */
static int take_value(rec_reader *rd, rec_field *f, const msgpack_object *o)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL: f->type = RV_NIL; break;
	case MSGPACK_OBJECT_BOOLEAN: f->type = RV_BOOL; f->i = o->via.boolean; break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX)
			return bad(rd, "integer field over 2^63-1");
		f->type = RV_INT;
		f->i = (int64_t)o->via.u64;
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: f->type = RV_INT; f->i = o->via.i64; break;
	case MSGPACK_OBJECT_FLOAT32: f->type = RV_FLOAT; f->f = o->via.f64; f->f32 = 1; break;
	case MSGPACK_OBJECT_FLOAT64: f->type = RV_FLOAT; f->f = o->via.f64; break;
	case MSGPACK_OBJECT_STR: set_bytes(f, RV_STR, o->via.str.ptr, o->via.str.size); break;
	case MSGPACK_OBJECT_BIN: set_bytes(f, RV_BIN, o->via.bin.ptr, o->via.bin.size); break;
	default:
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, sbuf_write);
		msgpack_pack_object(&pk, *o);
		set_bytes(f, RV_RAW, sb.data, sb.size);
		msgpack_sbuffer_destroy(&sb);
	}
	return 0;
}

/* The map o as record r: 0, or -1 (bad()). */
static int convert(rec_reader *rd, record *r, const msgpack_object *o)
{
	const msgpack_object_kv *kv;
	rec_field *f;
	uint32_t i;
	char name[256];

	if (o->type != MSGPACK_OBJECT_MAP)
		return bad(rd, "not a msgpack map (is this a record stream?)");
	for (i = 0; i < o->via.map.size; i++) {
		kv = &o->via.map.ptr[i];
		if (kv->key.type != MSGPACK_OBJECT_STR)
			return bad(rd, "a field name is not a string");
		if (kv->key.via.str.size >= sizeof name)
			return bad(rd, "a field name is longer than 255 bytes");
		if (kv->key.via.str.size)
			memcpy(name, kv->key.via.str.ptr, kv->key.via.str.size);
		name[kv->key.via.str.size] = '\0';
		if (strlen(name) != kv->key.via.str.size)
			return bad(rd, "a field name contains a NUL byte");
		if (rec_get(r, name)) {
			char msg[320];
			snprintf(msg, sizeof msg, "field '%s' appears twice", name);
			return bad(rd, msg);
		}
		f = slot(r, name);
		if (take_value(rd, f, &kv->val) < 0)
			return -1;
	}
	if (!rec_key(r))
		return bad(rd, "no string field 'key'");
	return 0;
}

static uint64_t big_endian(const unsigned char *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | *p++;
	return v;
}

/* Whether the next record has arrived whole in the unpacker's buffer (1, 0, or -1 when
 * it is over the size limit). msgpack-c reserves the entries of a map or array when it
 * reads its header, so a few bytes that claim billions of them would allocate gigabytes:
 * it is given a record only once all of them are there. The values are walked by their
 * lengths alone, from where the last call stopped. */
static int record_whole(rec_reader *rd)
{
	const unsigned char *p = (const unsigned char *)rd->up.buffer + rd->up.off;
	uint64_t n = rd->up.used - rd->up.off, at, len, items;
	int c, h;

	if (rd->scan == 0 && rd->left == 0)
		rd->left = 1;
	while (rd->left && rd->scan < n) {
		at = rd->scan;
		c = p[at];
		h = 1, len = 0, items = 0;
		if (c >= 0x80 && c <= 0x8f)
			items = 2 * (uint64_t)(c & 0x0f);
		else if (c >= 0x90 && c <= 0x9f)
			items = c & 0x0f;
		else if (c >= 0xa0 && c <= 0xbf)
			len = c & 0x1f;
		else if (c >= 0xc4 && c <= 0xc6)          /* bin 8, 16, 32 */
			h = 1 + (1 << (c - 0xc4));
		else if (c >= 0xc7 && c <= 0xc9)          /* ext 8, 16, 32 */
			h = 2 + (1 << (c - 0xc7));
		else if (c == 0xca || c == 0xcb)
			h = c == 0xca ? 5 : 9;
		else if ((c >= 0xcc && c <= 0xcf) || (c >= 0xd0 && c <= 0xd3))
			h = 1 + (1 << (c & 3));
		else if (c >= 0xd4 && c <= 0xd8)          /* fixext 1 to 16 */
			h = 2 + (1 << (c - 0xd4));
		else if (c >= 0xd9 && c <= 0xdb)          /* str 8, 16, 32 */
			h = 1 + (1 << (c - 0xd9));
		else if (c >= 0xdc && c <= 0xdf)          /* array 16, 32; map 16, 32 */
			h = c & 1 ? 5 : 3;
		if (at + (uint64_t)h > n)
			return 0;
		if ((c >= 0xc4 && c <= 0xc6) || (c >= 0xd9 && c <= 0xdb))
			len = big_endian(p + at + 1, h - 1);
		else if (c >= 0xc7 && c <= 0xc9)
			len = big_endian(p + at + 1, h - 2);
		else if (c >= 0xdc && c <= 0xdf)
			items = big_endian(p + at + 1, h - 1) << (c >= 0xde);
		rd->scan = at + (uint64_t)h + len;
		rd->left = rd->left - 1 + items;
		if (rd->scan > REC_MAX_RECORD)
			return bad(rd, "record larger than 1 GiB");
	}
	return rd->left == 0 && rd->scan <= n;
}

int rec_next(rec_reader *rd, record *r)
{
	msgpack_unpack_return ret;
	size_t n;
	int whole;

	rec_clear(r);
	if (rd->err.code)
		return -1;
	for (;;) {
		if ((whole = record_whole(rd)) < 0)
			return -1;
		if (whole) {
			ret = msgpack_unpacker_next(&rd->up, &rd->res);
			if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
				return bad(rd, "out of memory unpacking the record");
			if (ret != MSGPACK_UNPACK_SUCCESS)
				return bad(rd, "malformed msgpack");
			rd->scan = rd->left = 0;
			if (convert(rd, r, &rd->res.data) < 0)
				return -1;
			rd->offset = rd->fed - (rd->up.used - rd->up.off);
			rd->count++;
			return 1;
		}
		if (rd->eof) {
			if (rd->up.used > rd->up.off)
				return bad(rd, "truncated record at the end of the stream");
			return 0;
		}
		if (!msgpack_unpacker_reserve_buffer(&rd->up, 1 << 16))
			return cull_err_set(&rd->err, EXIT_NOMEM, "out of memory reading %s", rd->name);
		n = fread(msgpack_unpacker_buffer(&rd->up), 1,
		          msgpack_unpacker_buffer_capacity(&rd->up), rd->f);
		if (n == 0) {
			if (ferror(rd->f))
				return cull_err_set(&rd->err, EXIT_IO, "%s: read error: %s", rd->name,
				                    strerror(errno));
			rd->eof = 1;
		}
		msgpack_unpacker_buffer_consumed(&rd->up, n);
		rd->fed += n;
	}
}

uint64_t rec_count(const rec_reader *rd)
{
	return rd->count;
}

uint64_t rec_offset(const rec_reader *rd)
{
	return rd->offset;
}

const char *rec_source(const rec_reader *rd)
{
	return rd->name;
}

void rec_close(rec_reader *rd)
{
	if (!rd)
		return;
	if (rd->f != stdin)
		fclose(rd->f);
	msgpack_unpacked_destroy(&rd->res);
	msgpack_unpacker_destroy(&rd->up);
	free(rd);
}

/* ---- writer ---- */

struct rec_writer {
	FILE *f;
	const char *name;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	cull_err err;
};

rec_writer *rec_writer_open(const char *path, cull_err *e)
{
	FILE *f = cull_fopen(path, "wb", e);
	rec_writer *w;

	if (!f)
		return NULL;
	w = xcalloc(1, sizeof *w);
	w->f = f;
	w->name = io_name(path, 1);
	msgpack_sbuffer_init(&w->sb);
	msgpack_packer_init(&w->pk, &w->sb, sbuf_write);
	return w;
}

int rec_write(rec_writer *w, const record *r)
{
	msgpack_sbuffer_clear(&w->sb);
	pack_record(&w->pk, r, &w->sb);
	return cull_fwrite(w->sb.data, w->sb.size, w->f, w->name, &w->err);
}

const cull_err *rec_writer_error(const rec_writer *w)
{
	return &w->err;
}

int rec_writer_close(rec_writer *w, cull_err *e)
{
	int rc;

	if (!w)
		return 0;
	rc = cull_fclose(w->f, w->name, e);
	msgpack_sbuffer_destroy(&w->sb);
	free(w);
	return rc;
}
