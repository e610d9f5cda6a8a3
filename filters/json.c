/* cull-json: record streams (msgpack) to JSON Lines and back, so text tools work on them. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "record.h"

static const char usage_short[] = "usage: cull-json [-r] [FILE...]; see --help\n";
static const char usage[] =
	"usage: cull-json [-r] [FILE...]\n"
	"  records (msgpack) -> JSON Lines, one object per record;\n"
	"  -r, --reverse   JSON Lines -> records\n"
	"  -h, --help      this help\n"
	"      --version   print the version\n"
	"      --threads T accepted for uniformity; cull-json uses one thread\n";

/* ---- a growable output line ---- */

typedef struct {
	char *p;
	size_t n, cap;
} buf;

static void grow(buf *b, size_t more)
{
	if (b->n + more + 1 > b->cap) {
		while (b->n + more + 1 > b->cap)
			b->cap = b->cap ? 2 * b->cap : 4096;
		b->p = xrealloc(b->p, b->cap);
	}
}

static void put(buf *b, const void *p, size_t n)
{
	grow(b, n);
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void putc_(buf *b, char c)
{
	grow(b, 1);
	b->p[b->n++] = c;
}

/* ---- records -> JSON ---- */

/* A float as JSON text that reads back to the same value: %.17g (%.9g for float32), with
 * ".0" added to integral values so they still read as floats; NaN and infinities as
 * Python's json module writes them. Returns the length written into s (>= 32 bytes). */
static int fmt_float(char *s, double d, int f32)
{
	int n;

	if (isnan(d))
		return (int)strlen(strcpy(s, "NaN"));
	if (isinf(d))
		return (int)strlen(strcpy(s, d < 0 ? "-Infinity" : "Infinity"));
	n = snprintf(s, 32, f32 ? "%.9g" : "%.17g", d);
	if (!strpbrk(s, ".e")) {
		strcpy(s + n, ".0");
		n += 2;
	}
	return n;
}

static void put_float(buf *b, double d, int f32)
{
	char s[40];

	put(b, s, (size_t)fmt_float(s, d, f32));
}

static void put_int(buf *b, long long v)
{
	char s[32];

	put(b, s, (size_t)snprintf(s, sizeof s, "%lld", v));
}

static void put_str(buf *b, const char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;

	putc_(b, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(b, p + run, i - run);
		run = i + 1;
		switch (c) {
		case '"': put(b, "\\\"", 2); break;
		case '\\': put(b, "\\\\", 2); break;
		case '\n': put(b, "\\n", 2); break;
		case '\t': put(b, "\\t", 2); break;
		case '\r': put(b, "\\r", 2); break;
		case '\b': put(b, "\\b", 2); break;
		case '\f': put(b, "\\f", 2); break;
		default: {
			char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			put(b, e, 6);
		}
		}
	}
	if (run < n)
		put(b, p + run, n - run);
	putc_(b, '"');
}

static void put_base64(buf *b, const unsigned char *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;
	char *o;

	grow(b, (n + 2) / 3 * 4 + 2);
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

static void put_bin(buf *b, const unsigned char *p, size_t n)
{
	put(b, "{\"base64\":", 10);
	put_base64(b, p, n);
	putc_(b, '}');
}

/* Non-string map keys become JSON text inside JSON text, each level escaped again: more
 * than this many levels would let a small record grow exponentially. */
#define MAX_KEY_NESTING 4

/* A msgpack value (from an array, map or ext field) as JSON, inside `keys` non-string map
 * keys. Returns 0, or -1 when keys nest deeper than MAX_KEY_NESTING. */
static int put_object(buf *b, const msgpack_object *o, int keys)
{
	uint32_t i;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL: put(b, "null", 4); break;
	case MSGPACK_OBJECT_BOOLEAN: o->via.boolean ? put(b, "true", 4) : put(b, "false", 5); break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER: {
		char s[32];
		put(b, s, (size_t)snprintf(s, sizeof s, "%llu", (unsigned long long)o->via.u64));
		break;
	}
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: put_int(b, (long long)o->via.i64); break;
	case MSGPACK_OBJECT_FLOAT32: put_float(b, o->via.f64, 1); break;
	case MSGPACK_OBJECT_FLOAT64: put_float(b, o->via.f64, 0); break;
	case MSGPACK_OBJECT_STR: put_str(b, o->via.str.ptr, o->via.str.size); break;
	case MSGPACK_OBJECT_BIN: put_bin(b, (const unsigned char *)o->via.bin.ptr, o->via.bin.size); break;
	case MSGPACK_OBJECT_EXT:
		put(b, "{\"ext\":", 7);
		put_int(b, o->via.ext.type);
		put(b, ",\"base64\":", 10);
		put_base64(b, (const unsigned char *)o->via.ext.ptr, o->via.ext.size);
		putc_(b, '}');
		break;
	case MSGPACK_OBJECT_ARRAY:
		putc_(b, '[');
		for (i = 0; i < o->via.array.size; i++) {
			if (i)
				putc_(b, ',');
			if (put_object(b, &o->via.array.ptr[i], keys) < 0)
				return -1;
		}
		putc_(b, ']');
		break;
	case MSGPACK_OBJECT_MAP:
		putc_(b, '{');
		for (i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;

			if (i)
				putc_(b, ',');
			if (k->type == MSGPACK_OBJECT_STR) {
				put_str(b, k->via.str.ptr, k->via.str.size);
			} else {   /* JSON keys are strings: a non-string key becomes its JSON text */
				buf kb = { 0 };

				if (keys == MAX_KEY_NESTING || put_object(&kb, k, keys + 1) < 0) {
					free(kb.p);
					return -1;
				}
				put_str(b, kb.p, kb.n);
				free(kb.p);
			}
			putc_(b, ':');
			if (put_object(b, &o->via.map.ptr[i].val, keys) < 0)
				return -1;
		}
		putc_(b, '}');
		break;
	}
	return 0;
}

/* The embedding (n little-endian float32) as an array of %.9g numbers: exact for float32. */
static void put_emb(buf *b, const unsigned char *p, size_t n)
{
	char s[40];
	float v;
	int len;

	putc_(b, '[');
	for (size_t k = 0; k < n; k++) {
		rec_floats_copy(&v, p + 4 * k, 1);
		if (k)
			putc_(b, ',');
		if (isnan(v) || isinf(v) || (v == 0 && signbit(v)))
			len = fmt_float(s, v, 1);   /* -0.0 as "-0.0": Python reads "-0" as 0 */
		else
			len = snprintf(s, sizeof s, "%.9g", (double)v);
		put(b, s, (size_t)len);
	}
	putc_(b, ']');
}

static void put_raw(buf *b, const unsigned char *p, size_t n, const char *src, const char *key,
                    const char *field)
{
	msgpack_unpacked u;
	size_t off = 0;

	msgpack_unpacked_init(&u);
	int ok = msgpack_unpack_next(&u, (const char *)p, n, &off) == MSGPACK_UNPACK_SUCCESS &&
	         off == n;
	int deep = ok && put_object(b, &u.data, 0) < 0;
	msgpack_unpacked_destroy(&u);
	if (!ok)
		die(EXIT_DATA, "%s: key '%s': field '%s' holds malformed msgpack", src, key, field);
	if (deep)
		die(EXIT_DATA, "%s: key '%s': field '%s': map keys that are not strings nest more "
		    "than %d deep", src, key, field, MAX_KEY_NESTING);
}

/* One record as a line of JSON into b (emptied first). */
static void put_record(buf *b, const record *r, const char *src)
{
	b->n = 0;
	putc_(b, '{');
	for (size_t i = 0; i < r->n; i++) {
		const rec_field *f = &r->f[i];

		if (i)
			putc_(b, ',');
		put_str(b, f->name, strlen(f->name));
		putc_(b, ':');
		switch (f->type) {
		case RV_NIL: put(b, "null", 4); break;
		case RV_BOOL: f->i ? put(b, "true", 4) : put(b, "false", 5); break;
		case RV_INT: put_int(b, (long long)f->i); break;
		case RV_FLOAT: put_float(b, f->f, f->f32); break;
		case RV_STR: put_str(b, (const char *)f->p, f->len); break;
		case RV_BIN:
			if (strcmp(f->name, "emb") == 0 && f->len % 4 == 0)
				put_emb(b, f->p, f->len / 4);
			else
				put_bin(b, f->p, f->len);
			break;
		case RV_RAW: put_raw(b, f->p, f->len, src, rec_key(r), f->name); break;
		}
	}
	put(b, "}\n", 2);
}

static void to_json(const char *path)
{
	rec_reader *rd = rec_open(path);
	record r;
	buf b = { 0 };

	rec_init(&r);
	while (rec_next(rd, &r)) {
		put_record(&b, &r, rec_source(rd));
		xfwrite(b.p, b.n, stdout, "<stdout>");
	}
	rec_free(&r);
	rec_close(rd);
	free(b.p);
}

/* ---- JSON -> records ---- */

enum { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };

/* A parsed JSON value. Numbers keep their text (a pointer into the line). */
typedef struct jv {
	int t;
	int is_int;                /* J_NUM without fraction or exponent */
	const char *at;            /* where it starts in the line, for messages */
	char *s;                   /* J_STR: decoded bytes (malloc'd); J_NUM: text (not owned) */
	size_t len;
	struct jv *kids;           /* J_ARR elements, J_OBJ values */
	char **keys;               /* J_OBJ member names (decoded, malloc'd) */
	size_t *klens;
	size_t n, cap;
} jv;

typedef struct {
	const char *p, *start, *end;
	const char *name;
	unsigned long long line;
	/* what a fatal error part-way would leave allocated, kept here for the fuzz harness to
	 * free: the string being decoded, and the msgpack of the value being packed */
	buf str;
	msgpack_sbuffer pack;
} jparser;

static void jerr(const jparser *j, const char *at, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));

static void jerr(const jparser *j, const char *at, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	die(EXIT_DATA, "%s:%llu:%zu: %s", j->name, j->line, (size_t)(at - j->start) + 1, msg);
}

static void jv_free(jv *v)
{
	size_t i;

	if (v->t == J_STR)
		free(v->s);
	for (i = 0; i < v->n && (v->t == J_ARR || v->t == J_OBJ); i++) {
		jv_free(&v->kids[i]);
		if (v->t == J_OBJ)
			free(v->keys[i]);
	}
	free(v->kids);
	free(v->keys);
	free(v->klens);
}

static void skip_ws(jparser *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static const char *what(const jparser *j)
{
	static char s[32];
	unsigned char c;

	if (j->p >= j->end)
		return "the end of the line";
	c = (unsigned char)*j->p;
	if (c >= 0x20 && c < 0x7f)
		snprintf(s, sizeof s, "'%c'", c);
	else
		snprintf(s, sizeof s, "byte 0x%02x", c);
	return s;
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static unsigned read_hex4(jparser *j)
{
	unsigned v = 0;

	for (int k = 0; k < 4; k++) {
		int h = j->p < j->end ? hexval((unsigned char)*j->p) : -1;

		if (h < 0)
			jerr(j, j->p, "bad \\u escape: expected 4 hex digits");
		v = v << 4 | (unsigned)h;
		j->p++;
	}
	return v;
}

/* A JSON string at j->p (at the opening quote), decoded to UTF-8 bytes, NUL-terminated
 * (malloc'd; built in j->str). */
static char *parse_string(jparser *j, size_t *len)
{
	const char *run;

	j->p++;
	run = j->p;
	for (;;) {
		if (j->p >= j->end)
			jerr(j, j->p, "unterminated string");
		unsigned char c = (unsigned char)*j->p;

		if (c == '"')
			break;
		if (c == '\n' || c == '\r')
			jerr(j, j->p, "unterminated string");
		if (c < 0x20)
			jerr(j, j->p, "control character 0x%02x in a string (write it as \\u%04x)", c, c);
		if (c != '\\') {
			j->p++;
			continue;
		}
		put(&j->str, run, (size_t)(j->p - run));
		const char *esc = j->p++;
		if (j->p >= j->end)
			jerr(j, esc, "unterminated string");
		switch (*j->p++) {
		case '"': putc_(&j->str, '"'); break;
		case '\\': putc_(&j->str, '\\'); break;
		case '/': putc_(&j->str, '/'); break;
		case 'b': putc_(&j->str, '\b'); break;
		case 'f': putc_(&j->str, '\f'); break;
		case 'n': putc_(&j->str, '\n'); break;
		case 'r': putc_(&j->str, '\r'); break;
		case 't': putc_(&j->str, '\t'); break;
		case 'u': {
			unsigned u = read_hex4(j);
			char o[4];
			int n;

			if (u >= 0xDC00 && u <= 0xDFFF)
				jerr(j, esc, "lone low surrogate \\u%04x", u);
			if (u >= 0xD800 && u <= 0xDBFF) {
				unsigned lo;

				if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u')
					jerr(j, esc, "high surrogate \\u%04x without its low half", u);
				j->p += 2;
				lo = read_hex4(j);
				if (lo < 0xDC00 || lo > 0xDFFF)
					jerr(j, esc, "high surrogate \\u%04x followed by \\u%04x", u, lo);
				u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
			}
			if (u < 0x80) {
				o[0] = (char)u, n = 1;
			} else if (u < 0x800) {
				o[0] = (char)(0xC0 | u >> 6), o[1] = (char)(0x80 | (u & 63)), n = 2;
			} else if (u < 0x10000) {
				o[0] = (char)(0xE0 | u >> 12), o[1] = (char)(0x80 | (u >> 6 & 63));
				o[2] = (char)(0x80 | (u & 63)), n = 3;
			} else {
				o[0] = (char)(0xF0 | u >> 18), o[1] = (char)(0x80 | (u >> 12 & 63));
				o[2] = (char)(0x80 | (u >> 6 & 63)), o[3] = (char)(0x80 | (u & 63)), n = 4;
			}
			put(&j->str, o, (size_t)n);
			break;
		}
		default:
			jerr(j, esc, "unknown escape \\%c", j->p[-1]);
		}
		run = j->p;
	}
	put(&j->str, run, (size_t)(j->p - run));
	j->p++;
	grow(&j->str, 0);
	j->str.p[j->str.n] = 0;
	*len = j->str.n;
	char *s = j->str.p;
	j->str = (buf){ 0 };
	return s;
}

static int match(jparser *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) >= n && memcmp(j->p, word, n) == 0) {
		j->p += n;
		return 1;
	}
	return 0;
}

static void parse_number(jparser *j, jv *v)
{
	const char *p = j->p;

	v->t = J_NUM;
	v->is_int = 1;
	if (p < j->end && *p == '-')
		p++;
	j->p = p;
	if (match(j, "Infinity") || match(j, "NaN")) {
		v->is_int = 0;
		v->s = (char *)v->at, v->len = (size_t)(j->p - v->at);
		return;
	}
	if (p >= j->end || *p < '0' || *p > '9')
		jerr(j, p, "bad number: expected a digit");
	if (*p == '0' && p + 1 < j->end && p[1] >= '0' && p[1] <= '9')
		jerr(j, p, "bad number: leading zero");
	while (p < j->end && *p >= '0' && *p <= '9')
		p++;
	if (p < j->end && *p == '.') {
		v->is_int = 0;
		if (++p >= j->end || *p < '0' || *p > '9')
			jerr(j, p, "bad number: expected a digit after '.'");
		while (p < j->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < j->end && (*p == 'e' || *p == 'E')) {
		v->is_int = 0;
		p++;
		if (p < j->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= j->end || *p < '0' || *p > '9')
			jerr(j, p, "bad number: expected a digit in the exponent");
		while (p < j->end && *p >= '0' && *p <= '9')
			p++;
	}
	j->p = p;
	v->s = (char *)v->at, v->len = (size_t)(p - v->at);
}

static void add_kid(jv *v)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? 2 * v->cap : 8;
		v->kids = xreallocarray(v->kids, v->cap, sizeof *v->kids);
		if (v->t == J_OBJ) {
			v->keys = xreallocarray(v->keys, v->cap, sizeof *v->keys);
			v->klens = xreallocarray(v->klens, v->cap, sizeof *v->klens);
		}
	}
	memset(&v->kids[v->n], 0, sizeof *v->kids);
}

static void parse_value(jparser *j, jv *v, int depth)
{
	skip_ws(j);
	memset(v, 0, sizeof *v);
	v->at = j->p;
	if (depth > 256)
		jerr(j, j->p, "nesting deeper than 256 levels");
	if (j->p >= j->end)
		jerr(j, j->p, "expected a value, found the end of the line");
	switch (*j->p) {
	case '"':
		v->t = J_STR;
		v->s = parse_string(j, &v->len);
		return;
	case '[':
		v->t = J_ARR;
		j->p++;
		skip_ws(j);
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return;
		}
		for (;;) {
			add_kid(v);
			parse_value(j, &v->kids[v->n++], depth + 1);
			skip_ws(j);
			if (j->p < j->end && *j->p == ',') {
				j->p++;
				continue;
			}
			if (j->p < j->end && *j->p == ']') {
				j->p++;
				return;
			}
			jerr(j, j->p, "expected ',' or ']' in an array, found %s", what(j));
		}
	case '{':
		v->t = J_OBJ;
		j->p++;
		skip_ws(j);
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			return;
		}
		for (;;) {
			skip_ws(j);
			if (j->p >= j->end || *j->p != '"')
				jerr(j, j->p, "expected a member name in quotes, found %s", what(j));
			add_kid(v);
			v->keys[v->n] = parse_string(j, &v->klens[v->n]);
			v->n++;   /* counted now so jv_free releases the key if the value fails */
			skip_ws(j);
			if (j->p >= j->end || *j->p != ':')
				jerr(j, j->p, "expected ':' after a member name, found %s", what(j));
			j->p++;
			parse_value(j, &v->kids[v->n - 1], depth + 1);
			skip_ws(j);
			if (j->p < j->end && *j->p == ',') {
				j->p++;
				continue;
			}
			if (j->p < j->end && *j->p == '}') {
				j->p++;
				return;
			}
			jerr(j, j->p, "expected ',' or '}' in an object, found %s", what(j));
		}
	case 't':
		if (match(j, "true")) { v->t = J_TRUE; return; }
		break;
	case 'f':
		if (match(j, "false")) { v->t = J_FALSE; return; }
		break;
	case 'n':
		if (match(j, "null")) { v->t = J_NULL; return; }
		break;
	default:
		if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9') || *j->p == 'N' || *j->p == 'I') {
			parse_number(j, v);
			return;
		}
	}
	jerr(j, j->p, "expected a value (string, number, object, array, true, false, null)");
}

/* A non-integer number: float32 when its text is exactly how cull-json prints that
 * float32 (%.9g), unless it is also exactly how it prints the float64 (%.17g). */
static double number_float(const jv *v, int *f32)
{
	char text[64], s[40];
	double d;
	float f;

	if (v->len >= sizeof text) {   /* longer than anything cull-json writes: a float64 */
		char *t = xstrndup(v->s, v->len);
		d = strtod(t, NULL);
		free(t);
		*f32 = 0;
		return d;
	}
	memcpy(text, v->s, v->len);
	text[v->len] = 0;
	d = strtod(text, NULL);
	*f32 = 0;
	fmt_float(s, d, 0);
	if (strcmp(s, text) == 0)
		return d;
	f = strtof(text, NULL);
	fmt_float(s, f, 1);
	if (strcmp(s, text) == 0) {
		*f32 = 1;
		return f;
	}
	return d;
}

/* An integer number: 0 and *i set, or 1 and *u set (over INT64_MAX), or -1 out of range. */
static int number_int(const jv *v, int64_t *i, uint64_t *u)
{
	char text[32];

	if (v->len >= sizeof text)
		return -1;
	memcpy(text, v->s, v->len);
	text[v->len] = 0;
	errno = 0;
	*i = strtoll(text, NULL, 10);
	if (errno == 0)
		return 0;
	if (text[0] == '-')
		return -1;
	errno = 0;
	*u = strtoull(text, NULL, 10);
	return errno ? -1 : 1;
}

static int b64val(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 :
	       c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' ? 62 : c == '/' ? 63 : -1;
}

static unsigned char *base64_decode(const jparser *j, const jv *v, size_t *len)
{
	const char *s = v->s;
	size_t n = v->len, i, o = 0;
	unsigned char *out;

	if (n % 4)
		jerr(j, v->at, "base64 text of %zu characters is not a multiple of 4", n);
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
			jerr(j, v->at, "bad base64 text near character %zu", i + 1);
		}
		out[o++] = (unsigned char)(a << 2 | b >> 4);
		out[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
		out[o++] = (unsigned char)((c & 3) << 6 | d);
	}
	*len = o;
	return out;
}

/* {"base64": "..."} is bin, {"ext": N, "base64": "..."} is a msgpack ext. */
static int is_bin(const jv *v)
{
	return v->t == J_OBJ && v->n == 1 && strcmp(v->keys[0], "base64") == 0 &&
	       v->kids[0].t == J_STR;
}

static int is_ext(const jv *v)
{
	return v->t == J_OBJ && v->n == 2 && strcmp(v->keys[0], "ext") == 0 &&
	       v->kids[0].t == J_NUM && v->kids[0].is_int && strcmp(v->keys[1], "base64") == 0 &&
	       v->kids[1].t == J_STR;
}

static void pack_value(const jparser *j, msgpack_packer *pk, const jv *v)
{
	size_t i, len;
	unsigned char *p;
	int64_t iv;
	uint64_t uv;
	int f32, rc;
	double d;

	switch (v->t) {
	case J_NULL: msgpack_pack_nil(pk); break;
	case J_TRUE: msgpack_pack_true(pk); break;
	case J_FALSE: msgpack_pack_false(pk); break;
	case J_NUM:
		if (v->is_int) {
			rc = number_int(v, &iv, &uv);
			if (rc < 0)
				jerr(j, v->at, "integer out of the 64-bit range");
			rc ? msgpack_pack_uint64(pk, uv) : msgpack_pack_int64(pk, iv);
		} else {
			d = number_float(v, &f32);
			f32 ? msgpack_pack_float(pk, (float)d) : msgpack_pack_double(pk, d);
		}
		break;
	case J_STR: msgpack_pack_str_with_body(pk, v->s, v->len); break;
	case J_ARR:
		msgpack_pack_array(pk, v->n);
		for (i = 0; i < v->n; i++)
			pack_value(j, pk, &v->kids[i]);
		break;
	case J_OBJ:
		if (is_bin(v) || is_ext(v)) {
			const jv *b64 = &v->kids[v->n - 1];

			p = base64_decode(j, b64, &len);
			if (is_bin(v)) {
				msgpack_pack_bin_with_body(pk, p, len);
			} else {
				if (number_int(&v->kids[0], &iv, &uv) != 0 || iv < -128 || iv > 127)
					jerr(j, v->kids[0].at, "ext type must be in -128..127");
				msgpack_pack_ext_with_body(pk, p, len, (int8_t)iv);
			}
			free(p);
			break;
		}
		msgpack_pack_map(pk, v->n);
		for (i = 0; i < v->n; i++) {
			msgpack_pack_str_with_body(pk, v->keys[i], v->klens[i]);
			pack_value(j, pk, &v->kids[i]);
		}
		break;
	}
}

static int sbuf_write(void *data, const char *p, size_t n)
{
	return msgpack_sbuffer_write(data, p, n);
}

static void set_field(jparser *j, record *r, const char *name, const jv *v)
{
	size_t len, i;
	unsigned char *p;
	int64_t iv;
	uint64_t uv;
	int f32;

	switch (v->t) {
	case J_NULL: rec_set_nil(r, name); return;
	case J_TRUE: rec_set_bool(r, name, 1); return;
	case J_FALSE: rec_set_bool(r, name, 0); return;
	case J_NUM:
		if (v->is_int) {
			if (number_int(v, &iv, &uv) != 0)
				jerr(j, v->at, "integer field '%s' out of the signed 64-bit range", name);
			rec_set_int(r, name, iv);
		} else {
			double d = number_float(v, &f32);

			rec_set_float(r, name, d);
			rec_get(r, name)->f32 = f32;
		}
		return;
	case J_STR:
		rec_set_bin(r, name, v->s, v->len);
		rec_get(r, name)->type = RV_STR;
		return;
	case J_ARR:
		if (strcmp(name, "emb") == 0) {
			char text[64];

			for (i = 0; i < v->n; i++)   /* checked before x is allocated */
				if (v->kids[i].t != J_NUM || v->kids[i].len >= sizeof text)
					jerr(j, v->kids[i].at, "'emb' must be an array of numbers");
			float *x = xcalloc(v->n ? v->n : 1, sizeof *x);
			for (i = 0; i < v->n; i++) {
				memcpy(text, v->kids[i].s, v->kids[i].len);
				text[v->kids[i].len] = 0;
				x[i] = strtof(text, NULL);
			}
			rec_set_floats(r, name, x, v->n);
			free(x);
			return;
		}
		break;
	case J_OBJ:
		if (is_bin(v)) {
			p = base64_decode(j, &v->kids[0], &len);
			rec_set_bin(r, name, p, len);
			free(p);
			return;
		}
		break;
	}
	/* arrays, maps and ext values are kept as packed msgpack */
	msgpack_packer pk;

	msgpack_sbuffer_init(&j->pack);
	msgpack_packer_init(&pk, &j->pack, sbuf_write);
	pack_value(j, &pk, v);
	rec_set_raw(r, name, j->pack.data, j->pack.size);
	msgpack_sbuffer_destroy(&j->pack);
	msgpack_sbuffer_init(&j->pack);
}

/* The line j holds as record r: 1, or 0 for a blank line. v holds the parse tree while
 * the fields are set, and is freed before returning. */
static int line_to_record(jparser *j, record *r, jv *v)
{
	size_t i;

	skip_ws(j);
	if (j->p == j->end)
		return 0;
	if (*j->p != '{')
		jerr(j, j->p, "expected a JSON object (one record per line)");
	parse_value(j, v, 0);
	skip_ws(j);
	if (j->p != j->end)
		jerr(j, j->p, "text after the record's closing '}'");
	rec_clear(r);
	for (i = 0; i < v->n; i++) {
		const char *name = v->keys[i];

		if (strlen(name) != v->klens[i])
			jerr(j, v->kids[i].at, "a field name contains a NUL character");
		if (v->klens[i] > 255)
			jerr(j, v->kids[i].at, "field name longer than 255 bytes");
		if (rec_get(r, name))
			jerr(j, v->kids[i].at, "field '%s' appears twice", name);
		set_field(j, r, name, &v->kids[i]);
	}
	if (!rec_key(r))
		jerr(j, v->at, "the record has no string field \"key\"");
	jv_free(v);
	return 1;
}

static void from_json(const char *path, rec_writer *w)
{
	FILE *f = xfopen(path, "rb");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	jparser j = { .name = io_name(path, 0) };
	record r;
	jv v;

	rec_init(&r);
	while (errno = 0, (n = getline(&line, &cap, f)) >= 0) {
		j.line++;
		j.start = j.p = line;
		j.end = line + n;
		if (line_to_record(&j, &r, &v))
			rec_write(w, &r);
	}
	if (ferror(f))
		die(EXIT_IO, "%s: read error: %s", j.name, strerror(errno));
	if (f != stdin)
		fclose(f);
	free(line);
	rec_free(&r);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "reverse", no_argument, NULL, 'r' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c, reverse = 0, i;
	rec_writer *w;

	cull_init(argv[0]);
	while ((c = getopt_long(argc, argv, "rh", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': reverse = 1; break;
		case 't': parse_threads(optarg); break;
		case 'h': fputs(usage, stdout); xfclose(stdout, "<stdout>"); return 0;
		case 'V': print_version("cull-json", NULL);
		default: fputs(usage_short, stderr); return EXIT_USAGE;
		}
	}
	if (reverse) {
		w = rec_writer_open(NULL);
		if (optind == argc)
			from_json(NULL, w);
		for (i = optind; i < argc; i++)
			from_json(argv[i], w);
		rec_writer_close(w);
	} else {
		if (optind == argc)
			to_json(NULL);
		for (i = optind; i < argc; i++)
			to_json(argv[i]);
		xfclose(stdout, "<stdout>");
	}
	return 0;
}
