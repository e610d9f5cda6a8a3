/* Records as JSON Lines: msgpack values to JSON text and JSON values back to msgpack. */
#include "jsonl.h"

#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- records -> JSON ---- */

static void put_base64(json_buf *b, const unsigned char *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;
	char *o;

	json_reserve(b, (n + 2) / 3 * 4 + 2);
	o = b->p + b->n;
	*o++ = '"';
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = tab[v >> 18], *o++ = tab[v >> 12 & 63], *o++ = tab[v >> 6 & 63], *o++ = tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
		*o++ = tab[v >> 18], *o++ = tab[v >> 12 & 63];
		*o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
		*o++ = '=';
	}
	*o++ = '"';
	b->n = (size_t)(o - b->p);
}

static void put_bin(json_buf *b, const unsigned char *p, size_t n)
{
	json_put(b, "{\"base64\":", 10);
	put_base64(b, p, n);
	json_putc(b, '}');
}

/* Non-string map keys become JSON text inside JSON text, each level escaped again: more
 * than this many levels would let a small record grow exponentially. */
#define MAX_KEY_NESTING 4

static int put_object(json_buf *b, const msgpack_object *o, int keys);

/* A map whose keys may be any value; -1 when they nest deeper than MAX_KEY_NESTING. */
static int put_map(json_buf *b, const msgpack_object *o, int keys)
{
	json_putc(b, '{');
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;

		if (i)
			json_putc(b, ',');
		if (k->type == MSGPACK_OBJECT_STR) {
			json_put_str(b, k->via.str.ptr, k->via.str.size, 0);
		} else {   /* JSON keys are strings: a non-string key becomes its JSON text */
			json_buf kb = { 0 };

			if (keys == MAX_KEY_NESTING || put_object(&kb, k, keys + 1) < 0) {
				free(kb.p);
				return -1;
			}
			json_put_str(b, kb.p, kb.n, 0);
			free(kb.p);
		}
		json_putc(b, ':');
		if (put_object(b, &o->via.map.ptr[i].val, keys) < 0)
			return -1;
	}
	json_putc(b, '}');
	return 0;
}

/* A msgpack value (from an array, map or ext field) as JSON, inside `keys` non-string map
 * keys. Returns 0, or -1 when keys nest deeper than MAX_KEY_NESTING. */
static int put_object(json_buf *b, const msgpack_object *o, int keys)
{
	uint32_t i;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL: json_put(b, "null", 4); break;
	case MSGPACK_OBJECT_BOOLEAN:
		o->via.boolean ? json_put(b, "true", 4) : json_put(b, "false", 5);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		json_printf(b, "%llu", (unsigned long long)o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: json_put_int(b, (long long)o->via.i64); break;
	case MSGPACK_OBJECT_FLOAT32: json_put_float(b, o->via.f64, 1); break;
	case MSGPACK_OBJECT_FLOAT64: json_put_float(b, o->via.f64, 0); break;
	case MSGPACK_OBJECT_STR: json_put_str(b, o->via.str.ptr, o->via.str.size, 0); break;
	case MSGPACK_OBJECT_BIN:
		put_bin(b, (const unsigned char *)o->via.bin.ptr, o->via.bin.size);
		break;
	case MSGPACK_OBJECT_EXT:
		json_put(b, "{\"ext\":", 7);
		json_put_int(b, o->via.ext.type);
		json_put(b, ",\"base64\":", 10);
		put_base64(b, (const unsigned char *)o->via.ext.ptr, o->via.ext.size);
		json_putc(b, '}');
		break;
	case MSGPACK_OBJECT_ARRAY:
		json_putc(b, '[');
		for (i = 0; i < o->via.array.size; i++) {
			if (i)
				json_putc(b, ',');
			if (put_object(b, &o->via.array.ptr[i], keys) < 0)
				return -1;
		}
		json_putc(b, ']');
		break;
	case MSGPACK_OBJECT_MAP:
		return put_map(b, o, keys);
	}
	return 0;
}

/* The embedding (n little-endian float32) as an array of %.9g numbers: exact for float32. */
static void put_emb(json_buf *b, const unsigned char *p, size_t n)
{
	char s[40];
	float v;
	int len;

	json_putc(b, '[');
	for (size_t k = 0; k < n; k++) {
		rec_floats_copy(&v, p + 4 * k, 1);
		if (k)
			json_putc(b, ',');
		if (isnan(v) || isinf(v) || (v == 0 && signbit(v)))
			len = json_fmt_float(s, v, 1);   /* -0.0 as "-0.0": Python reads "-0" as 0 */
		else
			len = snprintf(s, sizeof s, "%.9g", (double)v);
		json_put(b, s, (size_t)len);
	}
	json_putc(b, ']');
}

static int put_raw(json_buf *b, const rec_field *f, const char *src, const char *key,
                   cull_err *e)
{
	msgpack_unpacked u;
	size_t off = 0;

	msgpack_unpacked_init(&u);
	int ok = msgpack_unpack_next(&u, (const char *)f->p, f->len, &off) ==
	         MSGPACK_UNPACK_SUCCESS && off == f->len;
	int deep = ok && put_object(b, &u.data, 0) < 0;
	msgpack_unpacked_destroy(&u);
	if (!ok)
		return cull_err_set(e, EXIT_DATA, "%s: key '%s': field '%s' holds malformed msgpack",
		                    src, key, f->name);
	if (deep)
		return cull_err_set(e, EXIT_DATA, "%s: key '%s': field '%s': map keys that are not "
		                    "strings nest more than %d deep", src, key, f->name,
		                    MAX_KEY_NESTING);
	return 0;
}

int jsonl_put_record(json_buf *b, const record *r, const char *src, cull_err *e)
{
	b->n = 0;
	json_putc(b, '{');
	for (size_t i = 0; i < r->n; i++) {
		const rec_field *f = &r->f[i];

		if (i)
			json_putc(b, ',');
		json_put_str(b, f->name, strlen(f->name), 0);
		json_putc(b, ':');
		switch (f->type) {
		case RV_NIL: json_put(b, "null", 4); break;
		case RV_BOOL: f->i ? json_put(b, "true", 4) : json_put(b, "false", 5); break;
		case RV_INT: json_put_int(b, (long long)f->i); break;
		case RV_FLOAT: json_put_float(b, f->f, f->f32); break;
		case RV_STR: json_put_str(b, (const char *)f->p, f->len, 0); break;
		case RV_BIN:
			if (strcmp(f->name, "emb") == 0 && f->len % 4 == 0)
				put_emb(b, f->p, f->len / 4);
			else
				put_bin(b, f->p, f->len);
			break;
		case RV_RAW:
			if (put_raw(b, f, src, rec_key(r), e) < 0)
				return -1;
			break;
		}
	}
	json_put(b, "}\n", 2);
	return 0;
}

/* ---- JSON -> records ---- */

/* Where a line is, for messages: "NAME:LINE:COLUMN: what". */
typedef struct {
	const char *name, *start;
	unsigned long long line;
	cull_err *e;
} line_pos;

static int bad(const line_pos *l, const char *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(const line_pos *l, const char *at, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return cull_err_set(l->e, EXIT_DATA, "%s:%llu:%zu: %s", l->name, l->line,
	                    (size_t)(at - l->start) + 1, msg);
}

static int b64val(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 :
	       c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* The base64 text of string v, decoded (malloc'd), or NULL with the error set. */
static unsigned char *base64_decode(const line_pos *l, const json_value *v, size_t *len)
{
	const char *s = v->s;
	size_t n = v->len, i, o = 0;
	unsigned char *out;

	if (n % 4) {
		bad(l, v->at, "base64 text of %zu characters is not a multiple of 4", n);
		return NULL;
	}
	out = xmalloc(n / 4 * 3 + 1);
	for (i = 0; i < n; i += 4) {
		int a = b64val(s[i]), b = b64val(s[i + 1]), c = b64val(s[i + 2]), d = b64val(s[i + 3]);
		int last = i + 4 == n;

		if (last && s[i + 3] == '=' && a >= 0 && b >= 0) {
			if (s[i + 2] == '=') {
				out[o++] = (unsigned char)(a << 2 | b >> 4);
				break;
			}
			if (c >= 0) {
				out[o++] = (unsigned char)(a << 2 | b >> 4);
				out[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
				break;
			}
		}
		if (a < 0 || b < 0 || c < 0 || d < 0) {
			free(out);
			bad(l, v->at, "bad base64 text near character %zu", i + 1);
			return NULL;
		}
		out[o++] = (unsigned char)(a << 2 | b >> 4);
		out[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
		out[o++] = (unsigned char)((c & 3) << 6 | d);
	}
	*len = o;
	return out;
}

/* {"base64": "..."} is bin, {"ext": N, "base64": "..."} is a msgpack ext. */
static int is_bin(const json_value *v)
{
	return v->type == JSON_OBJ && v->n == 1 && strcmp(v->keys[0], "base64") == 0 &&
	       v->kids[0].type == JSON_STR;
}

static int is_ext(const json_value *v)
{
	return v->type == JSON_OBJ && v->n == 2 && strcmp(v->keys[0], "ext") == 0 &&
	       v->kids[0].type == JSON_NUM && v->kids[0].is_int &&
	       strcmp(v->keys[1], "base64") == 0 && v->kids[1].type == JSON_STR;
}

static int pack_value(const line_pos *l, msgpack_packer *pk, const json_value *v);

/* A bin or ext object as msgpack. */
static int pack_bytes(const line_pos *l, msgpack_packer *pk, const json_value *v)
{
	size_t len;
	unsigned char *p = base64_decode(l, &v->kids[v->n - 1], &len);
	int64_t iv;
	uint64_t uv;

	if (!p)
		return -1;
	if (is_bin(v)) {
		msgpack_pack_bin_with_body(pk, p, len);
	} else {
		if (json_int(&v->kids[0], &iv, &uv) != 0 || iv < -128 || iv > 127) {
			free(p);
			return bad(l, v->kids[0].at, "ext type must be in -128..127");
		}
		msgpack_pack_ext_with_body(pk, p, len, (int8_t)iv);
	}
	free(p);
	return 0;
}

static int pack_value(const line_pos *l, msgpack_packer *pk, const json_value *v)
{
	size_t i;
	int64_t iv;
	uint64_t uv;
	int f32, rc;
	double d;

	switch (v->type) {
	case JSON_NULL: msgpack_pack_nil(pk); break;
	case JSON_TRUE: msgpack_pack_true(pk); break;
	case JSON_FALSE: msgpack_pack_false(pk); break;
	case JSON_NUM:
		if (v->is_int) {
			rc = json_int(v, &iv, &uv);
			if (rc < 0)
				return bad(l, v->at, "integer out of the 64-bit range");
			rc ? msgpack_pack_uint64(pk, uv) : msgpack_pack_int64(pk, iv);
		} else {
			d = json_float(v, &f32);
			f32 ? msgpack_pack_float(pk, (float)d) : msgpack_pack_double(pk, d);
		}
		break;
	case JSON_STR: msgpack_pack_str_with_body(pk, v->s, v->len); break;
	case JSON_ARR:
		msgpack_pack_array(pk, v->n);
		for (i = 0; i < v->n; i++)
			if (pack_value(l, pk, &v->kids[i]) < 0)
				return -1;
		break;
	case JSON_OBJ:
		if (is_bin(v) || is_ext(v))
			return pack_bytes(l, pk, v);
		msgpack_pack_map(pk, v->n);
		for (i = 0; i < v->n; i++) {
			msgpack_pack_str_with_body(pk, v->keys[i], v->klens[i]);
			if (pack_value(l, pk, &v->kids[i]) < 0)
				return -1;
		}
		break;
	}
	return 0;
}

static int sbuf_write(void *data, const char *p, size_t n)
{
	return msgpack_sbuffer_write(data, p, n);
}

/* Arrays, maps and ext values are kept as packed msgpack. */
static int set_raw(const line_pos *l, record *r, const char *name, const json_value *v)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, sbuf_write);
	rc = pack_value(l, &pk, v);
	if (rc == 0)
		rec_set_raw(r, name, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* "emb": an array of numbers, stored as float32 bin. */
static int set_emb(const line_pos *l, record *r, const char *name, const json_value *v)
{
	char text[64];
	size_t i;
	float *x;

	for (i = 0; i < v->n; i++)   /* checked before x is allocated */
		if (v->kids[i].type != JSON_NUM || v->kids[i].len >= sizeof text)
			return bad(l, v->kids[i].at, "'emb' must be an array of numbers");
	x = xcalloc(v->n ? v->n : 1, sizeof *x);
	for (i = 0; i < v->n; i++) {
		memcpy(text, v->kids[i].s, v->kids[i].len);
		text[v->kids[i].len] = 0;
		x[i] = strtof(text, NULL);
	}
	rec_set_floats(r, name, x, v->n);
	free(x);
	return 0;
}

static int set_field(const line_pos *l, record *r, const char *name, const json_value *v)
{
	size_t len;
	unsigned char *p;
	int64_t iv;
	uint64_t uv;
	int f32;

	switch (v->type) {
	case JSON_NULL: rec_set_nil(r, name); return 0;
	case JSON_TRUE: rec_set_bool(r, name, 1); return 0;
	case JSON_FALSE: rec_set_bool(r, name, 0); return 0;
	case JSON_NUM:
		if (v->is_int) {
			if (json_int(v, &iv, &uv) != 0)
				return bad(l, v->at, "integer field '%s' out of the signed 64-bit range",
				           name);
			rec_set_int(r, name, iv);
		} else {
			double d = json_float(v, &f32);

			rec_set_float(r, name, d);
			rec_get(r, name)->f32 = f32;
		}
		return 0;
	case JSON_STR:
		rec_set_bin(r, name, v->s, v->len);
		rec_get(r, name)->type = RV_STR;
		return 0;
	case JSON_ARR:
		if (strcmp(name, "emb") == 0)
			return set_emb(l, r, name, v);
		break;
	case JSON_OBJ:
		if (is_bin(v)) {
			if (!(p = base64_decode(l, &v->kids[0], &len)))
				return -1;
			rec_set_bin(r, name, p, len);
			free(p);
			return 0;
		}
		break;
	}
	return set_raw(l, r, name, v);
}

/* The members of object v as the fields of r. */
static int set_fields(const line_pos *l, record *r, const json_value *v)
{
	rec_clear(r);
	for (size_t i = 0; i < v->n; i++) {
		const char *name = v->keys[i];

		if (strlen(name) != v->klens[i])
			return bad(l, v->kids[i].at, "a field name contains a NUL character");
		if (v->klens[i] > 255)
			return bad(l, v->kids[i].at, "field name longer than 255 bytes");
		if (rec_get(r, name))
			return bad(l, v->kids[i].at, "field '%s' appears twice", name);
		if (set_field(l, r, name, &v->kids[i]) < 0)
			return -1;
	}
	if (!rec_key(r))
		return bad(l, v->at, "the record has no string field \"key\"");
	return 0;
}

int jsonl_to_record(record *r, const char *text, size_t len, const char *name,
                    unsigned long long line, cull_err *e)
{
	static const json_options opts = { .nan = 1 };
	line_pos l = { name, text, line, e };
	const char *p = text, *end = text + len, *at;
	json_value v;
	cull_err je;
	int rc;

	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	if (p == end)
		return 0;
	if (*p != '{')
		return bad(&l, p, "expected a JSON object (one record per line)");
	if (json_parse(&v, p, (size_t)(end - p), &opts, &p, &je, &at) < 0)
		return bad(&l, at, "%s", je.msg);
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	if (p != end)
		rc = bad(&l, p, "text after the record's closing '}'");
	else
		rc = set_fields(&l, r, &v);
	json_free(&v);
	return rc < 0 ? -1 : 1;
}
