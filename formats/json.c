/* JSON text: a strict parser into json_value trees, number helpers, and a text writer. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ---- */

void json_reserve(json_buf *b, size_t more)
{
	if (b->n + more + 1 > b->cap) {
		while (b->n + more + 1 > b->cap)
			b->cap = b->cap ? 2 * b->cap : 64;
		b->p = xrealloc(b->p, b->cap);
	}
}

void json_put(json_buf *b, const void *p, size_t n)
{
	json_reserve(b, n);
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

void json_putc(json_buf *b, char c)
{
	json_reserve(b, 1);
	b->p[b->n++] = c;
}

void json_printf(json_buf *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (k < 0)
		die_nomem("bad format");
	json_reserve(b, (size_t)k);
	va_start(ap, fmt);
	vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)k;
}

void json_put_str(json_buf *b, const char *s, size_t n, int flags)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;

	json_putc(b, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		json_put(b, s + run, i - run);
		run = i + 1;
		if (!(flags & JSON_ESCAPE_U))
			switch (c) {
			case '\n': esc = "\\n"; break;
			case '\t': esc = "\\t"; break;
			case '\r': esc = "\\r"; break;
			case '\b': esc = "\\b"; break;
			case '\f': esc = "\\f"; break;
			}
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			json_put(b, e, 2);
		} else if (esc) {
			json_put(b, esc, 2);
		} else {
			char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			json_put(b, e, 6);
		}
	}
	if (run < n)
		json_put(b, s + run, n - run);
	json_putc(b, '"');
}

void json_put_int(json_buf *b, long long v)
{
	char s[32];

	json_put(b, s, (size_t)snprintf(s, sizeof s, "%lld", v));
}

int json_fmt_float(char *s, double d, int f32)
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

void json_put_float(json_buf *b, double d, int f32)
{
	char s[40];

	json_put(b, s, (size_t)json_fmt_float(s, d, f32));
}

/* ---- numbers ---- */

int json_int(const json_value *v, int64_t *i, uint64_t *u)
{
	char text[32];

	if (v->type != JSON_NUM || !v->is_int || v->len >= sizeof text)
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

double json_float(const json_value *v, int *f32)
{
	char text[64], s[40];
	double d;
	float f;

	*f32 = 0;
	if (v->len >= sizeof text) {   /* longer than anything json_put_float writes: a double */
		char *t = xstrndup(v->s, v->len);
		d = strtod(t, NULL);
		free(t);
		return d;
	}
	memcpy(text, v->s, v->len);
	text[v->len] = 0;
	d = strtod(text, NULL);
	json_fmt_float(s, d, 0);
	if (strcmp(s, text) == 0)
		return d;
	f = strtof(text, NULL);
	json_fmt_float(s, f, 1);
	if (strcmp(s, text) == 0) {
		*f32 = 1;
		return f;
	}
	return d;
}

/* ---- parsing ---- */

typedef struct {
	const char *p, *end;
	int max_depth, nan;
	cull_err *e;
	const char *at;            /* where the error is */
} parser;

static int fail(parser *j, const char *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(parser *j, const char *at, const char *fmt, ...)
{
	va_list ap;

	j->at = at;
	if (j->e) {
		j->e->code = EXIT_DATA;
		va_start(ap, fmt);
		vsnprintf(j->e->msg, sizeof j->e->msg, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static void skip_ws(parser *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/* What is at j->p, for a message: "'x'", "byte 0x01" or "the end of the line". */
static const char *what(const parser *j, char s[32])
{
	unsigned char c;

	if (j->p >= j->end)
		return "the end of the line";
	c = (unsigned char)*j->p;
	if (c >= 0x20 && c < 0x7f)
		snprintf(s, 32, "'%c'", c);
	else
		snprintf(s, 32, "byte 0x%02x", c);
	return s;
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int read_hex4(parser *j, unsigned *v)
{
	*v = 0;
	for (int k = 0; k < 4; k++) {
		int h = j->p < j->end ? hexval((unsigned char)*j->p) : -1;

		if (h < 0)
			return fail(j, j->p, "bad \\u escape: expected 4 hex digits");
		*v = *v << 4 | (unsigned)h;
		j->p++;
	}
	return 0;
}

/* A \u escape at esc (j->p past the 'u'), a surrogate pair joined, as UTF-8 into out. */
static int unicode_escape(parser *j, const char *esc, json_buf *out)
{
	unsigned u, lo;
	char o[4];
	int n;

	if (read_hex4(j, &u) < 0)
		return -1;
	if (u >= 0xDC00 && u <= 0xDFFF)
		return fail(j, esc, "lone low surrogate \\u%04x", u);
	if (u >= 0xD800 && u <= 0xDBFF) {
		if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u')
			return fail(j, esc, "high surrogate \\u%04x without its low half", u);
		j->p += 2;
		if (read_hex4(j, &lo) < 0)
			return -1;
		if (lo < 0xDC00 || lo > 0xDFFF)
			return fail(j, esc, "high surrogate \\u%04x followed by \\u%04x", u, lo);
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
	json_put(out, o, (size_t)n);
	return 0;
}

/* One escape at j->p (the backslash) into out. */
static int escape(parser *j, json_buf *out)
{
	const char *esc = j->p++;
	char c;

	if (j->p >= j->end)
		return fail(j, esc, "unterminated string");
	switch (*j->p++) {
	case '"': c = '"'; break;
	case '\\': c = '\\'; break;
	case '/': c = '/'; break;
	case 'b': c = '\b'; break;
	case 'f': c = '\f'; break;
	case 'n': c = '\n'; break;
	case 'r': c = '\r'; break;
	case 't': c = '\t'; break;
	case 'u': return unicode_escape(j, esc, out);
	default: return fail(j, esc, "unknown escape \\%c", j->p[-1]);
	}
	json_putc(out, c);
	return 0;
}

/* A string at j->p (the opening quote), decoded: *s malloc'd and NUL-terminated. */
static int parse_string(parser *j, char **s, size_t *len)
{
	json_buf str = { 0 };
	const char *run = ++j->p;

	for (;;) {
		if (j->p >= j->end) {
			fail(j, j->p, "unterminated string");
			goto fail;
		}
		unsigned char c = (unsigned char)*j->p;

		if (c == '"')
			break;
		if (c == '\n' || c == '\r') {
			fail(j, j->p, "unterminated string");
			goto fail;
		}
		if (c < 0x20) {
			fail(j, j->p, "control character 0x%02x in a string (write it as \\u%04x)", c, c);
			goto fail;
		}
		if (c != '\\') {
			j->p++;
			continue;
		}
		json_put(&str, run, (size_t)(j->p - run));
		if (escape(j, &str) < 0)
			goto fail;
		run = j->p;
	}
	json_put(&str, run, (size_t)(j->p - run));
	j->p++;
	json_reserve(&str, 0);
	str.p[str.n] = 0;
	*len = str.n;
	*s = str.p;
	return 0;
fail:
	free(str.p);
	return -1;
}

static int match(parser *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) >= n && memcmp(j->p, word, n) == 0) {
		j->p += n;
		return 1;
	}
	return 0;
}

static int digits(parser *j, const char **p, const char *what)
{
	if (*p >= j->end || **p < '0' || **p > '9')
		return fail(j, *p, "bad number: expected a digit%s", what);
	while (*p < j->end && **p >= '0' && **p <= '9')
		(*p)++;
	return 0;
}

static int parse_number(parser *j, json_value *v)
{
	const char *p = j->p;

	v->type = JSON_NUM;
	v->is_int = 1;
	if (p < j->end && *p == '-')
		p++;
	j->p = p;
	if (j->nan && (match(j, "Infinity") || match(j, "NaN"))) {
		v->is_int = 0;
		v->s = (char *)v->at, v->len = (size_t)(j->p - v->at);
		return 0;
	}
	if (p < j->end && *p == '0' && p + 1 < j->end && p[1] >= '0' && p[1] <= '9')
		return fail(j, p, "bad number: leading zero");
	if (digits(j, &p, "") < 0)
		return -1;
	if (p < j->end && *p == '.') {
		v->is_int = 0;
		p++;
		if (digits(j, &p, " after '.'") < 0)
			return -1;
	}
	if (p < j->end && (*p == 'e' || *p == 'E')) {
		v->is_int = 0;
		p++;
		if (p < j->end && (*p == '+' || *p == '-'))
			p++;
		if (digits(j, &p, " in the exponent") < 0)
			return -1;
	}
	j->p = p;
	v->s = (char *)v->at, v->len = (size_t)(p - v->at);
	return 0;
}

/* Room for one more element or member, zeroed. */
static void add_kid(json_value *v)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? 2 * v->cap : 8;
		v->kids = xreallocarray(v->kids, v->cap, sizeof *v->kids);
		if (v->type == JSON_OBJ) {
			v->keys = xreallocarray(v->keys, v->cap, sizeof *v->keys);
			v->klens = xreallocarray(v->klens, v->cap, sizeof *v->klens);
		}
	}
	memset(&v->kids[v->n], 0, sizeof *v->kids);
}

static int parse_value(parser *j, json_value *v, int depth);

/* The elements of an array, j->p past its '['. */
static int parse_array(parser *j, json_value *v, int depth)
{
	char s[32];

	skip_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return 0;
	}
	for (;;) {
		add_kid(v);
		if (parse_value(j, &v->kids[v->n++], depth + 1) < 0)
			return -1;
		skip_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return 0;
		}
		return fail(j, j->p, "expected ',' or ']' in an array, found %s", what(j, s));
	}
}

/* The members of an object, j->p past its '{'. */
static int parse_object(parser *j, json_value *v, int depth)
{
	char s[32];

	skip_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		skip_ws(j);
		if (j->p >= j->end || *j->p != '"')
			return fail(j, j->p, "expected a member name in quotes, found %s", what(j, s));
		add_kid(v);
		v->keys[v->n] = NULL;
		if (parse_string(j, &v->keys[v->n], &v->klens[v->n]) < 0)
			return -1;
		v->n++;   /* counted now so json_free releases the key if the value fails */
		skip_ws(j);
		if (j->p >= j->end || *j->p != ':')
			return fail(j, j->p, "expected ':' after a member name, found %s", what(j, s));
		j->p++;
		if (parse_value(j, &v->kids[v->n - 1], depth + 1) < 0)
			return -1;
		skip_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			return 0;
		}
		return fail(j, j->p, "expected ',' or '}' in an object, found %s", what(j, s));
	}
}

static int parse_value(parser *j, json_value *v, int depth)
{
	skip_ws(j);
	memset(v, 0, sizeof *v);
	v->at = j->p;
	if (depth > j->max_depth)
		return fail(j, j->p, "nesting deeper than %d levels", j->max_depth);
	if (j->p >= j->end)
		return fail(j, j->p, "expected a value, found the end of the line");
	switch (*j->p) {
	case '"':
		v->type = JSON_STR;
		return parse_string(j, &v->s, &v->len);
	case '[':
		v->type = JSON_ARR;
		j->p++;
		return parse_array(j, v, depth);
	case '{':
		v->type = JSON_OBJ;
		j->p++;
		return parse_object(j, v, depth);
	case 't':
		if (match(j, "true")) { v->type = JSON_TRUE; return 0; }
		break;
	case 'f':
		if (match(j, "false")) { v->type = JSON_FALSE; return 0; }
		break;
	case 'n':
		if (match(j, "null")) { v->type = JSON_NULL; return 0; }
		break;
	default:
		if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9') ||
		    (j->nan && (*j->p == 'N' || *j->p == 'I')))
			return parse_number(j, v);
	}
	return fail(j, j->p, "expected a value (string, number, object, array, true, false, null)");
}

int json_parse(json_value *v, const char *text, size_t len, const json_options *opts,
               const char **end, cull_err *e, const char **at)
{
	parser j = { .p = text, .end = text + len, .max_depth = 256, .e = e };

	if (opts && opts->max_depth > 0)
		j.max_depth = opts->max_depth;
	j.nan = opts && opts->nan;
	if (parse_value(&j, v, 0) < 0) {
		json_free(v);
		if (at)
			*at = j.at;
		return -1;
	}
	if (end)
		*end = j.p;
	return 0;
}

void json_free(json_value *v)
{
	size_t i;

	if (v->type == JSON_STR)
		free(v->s);
	for (i = 0; i < v->n && (v->type == JSON_ARR || v->type == JSON_OBJ); i++) {
		json_free(&v->kids[i]);
		if (v->type == JSON_OBJ)
			free(v->keys[i]);
	}
	free(v->kids);
	free(v->keys);
	free(v->klens);
	memset(v, 0, sizeof *v);
}
