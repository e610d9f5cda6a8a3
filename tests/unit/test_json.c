/* Unit tests of formats/json (parser, numbers, writer) and the safetensors header on top of it. */
#include "check.h"
#include "io.h"
#include "json.h"
#include "safetensors.h"

#include <stdlib.h>
#include <string.h>

/* Parse s whole: 0, or -1 with the message in e and the error's byte offset in *off. */
static int parse(json_value *v, const char *s, const json_options *o, cull_err *e, long *off)
{
	const char *at = NULL;
	int rc = json_parse(v, s, strlen(s), o, NULL, e, &at);

	*off = rc < 0 ? (long)(at - s) : -1;
	return rc;
}

static void test_parse(void)
{
	static const json_options python = { .nan = 1 }, shallow = { .max_depth = 2 };
	json_value v;
	cull_err e;
	long off;
	int64_t i;
	uint64_t u;
	int f32;

	CHECK(parse(&v, " {\"a\": [1, -2.5e3, \"x\\u00e9\\ud83d\\ude00\", true, null]} tail", NULL, &e,
	            &off) == 0 && v.type == JSON_OBJ && v.n == 1 && strcmp(v.keys[0], "a") == 0 &&
	      v.kids[0].type == JSON_ARR && v.kids[0].n == 5, "an object of an array parses");
	const json_value *a = v.kids[0].kids;
	CHECK(a[0].is_int && json_int(&a[0], &i, &u) == 0 && i == 1, "1 is an int");
	CHECK(!a[1].is_int && a[1].len == 6 && memcmp(a[1].s, "-2.5e3", 6) == 0 &&
	      json_float(&a[1], &f32) == -2500.0 && !f32, "a number keeps its text");
	CHECK(a[2].type == JSON_STR && a[2].len == 7 &&
	      memcmp(a[2].s, "x\xc3\xa9\xf0\x9f\x98\x80", 7) == 0, "\\u escapes decode to UTF-8");
	CHECK(a[3].type == JSON_TRUE && a[4].type == JSON_NULL, "true and null");
	json_free(&v);

	CHECK(parse(&v, "18446744073709551615", NULL, &e, &off) == 0 &&
	      json_int(&v, &i, &u) == 1 && u == UINT64_MAX, "a uint64 above INT64_MAX");
	CHECK(parse(&v, "-9223372036854775809", NULL, &e, &off) == 0 && json_int(&v, &i, &u) == -1,
	      "below INT64_MIN is out of range");
	CHECK(parse(&v, "0.100000001", NULL, &e, &off) == 0 && json_float(&v, &f32) == 0.1f && f32,
	      "%%.9g text of a float32 reads back as float32");

	CHECK(parse(&v, "NaN", NULL, &e, &off) < 0 && off == 0 && e.code == EXIT_DATA,
	      "NaN is not strict JSON: %s", e.msg);
	CHECK(parse(&v, "[NaN, -Infinity]", &python, &e, &off) == 0 && v.n == 2 &&
	      !v.kids[1].is_int, "NaN and -Infinity with the Python option");
	json_free(&v);
	CHECK(parse(&v, "{\"a\":\"b\nc\"}", NULL, &e, &off) < 0 && off == 7 &&
	      strcmp(e.msg, "unterminated string") == 0, "a raw newline ends a string: %s", e.msg);
	CHECK(parse(&v, "[\"\\x\"]", NULL, &e, &off) < 0 && off == 2 &&
	      strcmp(e.msg, "unknown escape \\x") == 0, "unknown escape: %s", e.msg);
	CHECK(parse(&v, "[\"\\udc00\"]", NULL, &e, &off) < 0 && strstr(e.msg, "lone low surrogate"),
	      "a lone low surrogate: %s", e.msg);
	CHECK(parse(&v, "[1,]", NULL, &e, &off) < 0 && off == 3, "a trailing comma: %s", e.msg);
	CHECK(parse(&v, "{\"a\" 1}", NULL, &e, &off) < 0 &&
	      strcmp(e.msg, "expected ':' after a member name, found '1'") == 0, "%s", e.msg);
	CHECK(parse(&v, "[007]", NULL, &e, &off) < 0 && strstr(e.msg, "leading zero"), "%s", e.msg);
	CHECK(parse(&v, "[[[1]]]", &shallow, &e, &off) < 0 &&
	      strcmp(e.msg, "nesting deeper than 2 levels") == 0 && off == 3, "%s", e.msg);
	CHECK(parse(&v, "[[[]]]", &shallow, &e, &off) == 0, "an empty array at the limit");
	json_free(&v);
	CHECK(parse(&v, "{\"a\":[1,{\"b\":\"unterminated", NULL, &e, &off) < 0 && v.n == 0 &&
	      v.kids == NULL, "a failed parse leaves nothing allocated (LeakSanitizer checks)");
}

static void test_write(void)
{
	json_buf b = { 0 };

	json_put_str(&b, "a\"\\\n\x01", 5, 0);
	json_putc(&b, ' ');
	json_put_str(&b, "\n\x1f", 2, JSON_ESCAPE_U);
	json_putc(&b, ' ');
	json_put_float(&b, 1.0, 0);
	json_putc(&b, ' ');
	json_put_float(&b, 0.1f, 1);
	json_putc(&b, ' ');
	json_put_float(&b, -INFINITY, 0);
	json_printf(&b, " %d", 7);
	json_reserve(&b, 0);
	b.p[b.n] = 0;
	CHECK(strcmp(b.p, "\"a\\\"\\\\\\n\\u0001\" \"\\u000a\\u001f\" 1.0 0.100000001 -Infinity 7") == 0,
	      "written: %s", b.p);
	free(b.p);
}

/* A safetensors file of one F32 tensor whose entry has `extra` added, metadata `meta`. */
static int st_header(const char *meta, const char *extra, st_file *f, cull_err *e)
{
	char h[4096];
	int n = snprintf(h, sizeof h, "{\"__metadata__\":{%s},\"t\":{\"dtype\":\"F32\","
	                 "\"shape\":[1],\"data_offsets\":[0,4]%s}}", meta, extra);
	unsigned char *buf = calloc(1, 8 + (size_t)n + 4);

	for (int i = 0; i < 8; i++)
		buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
	memcpy(buf + 8, h, (size_t)n);
	return st_parse(f, buf, 8 + (size_t)n + 4, e);
}

static char *nest(char *s, int d, const char *inner)
{
	s[0] = 0;
	for (int i = 0; i < d; i++)
		strcat(s, "[");
	strcat(s, inner);
	for (int i = 0; i < d; i++)
		strcat(s, "]");
	return s;
}

/* The limits and messages the hand-written reader had, kept by the one on formats/json. */
static void test_safetensors(void)
{
	static const char *const refused[][2] = {   /* an entry field added, the message */
		{ ",\"shape\":[1.5]", "bad header: expected ']'" },
		{ ",\"shape\":[-1]", "tensor t: bad shape" },
		{ ",\"shape\":[1,1,1,1,1,1,1,1,1]", "tensor t: bad shape" },
		{ ",\"shape\":[\"1\"]", "bad header: expected an integer" },
		{ ",\"data_offsets\":[4,0]", "tensor t: bad data_offsets" },
		{ ",\"dtype\":\"Q8\"", "tensor t: unsupported dtype Q8" },
		{ ",\"x\":NaN", "bad header: " },
	};
	char deep[200], extra[256];
	st_file f;
	cull_err e;
	int rc;

	rc = st_header("\"format\":\"pt\",\"n\":[1,{\"x\":2}],\"u\":\"caf\\u00e9\"", "", &f, &e);
	CHECK(rc == 0 && f.n == 1 && strcmp(st_meta_get(&f, "format"), "pt") == 0 &&
	      !st_meta_get(&f, "n") && strcmp(st_meta_get(&f, "u"), "caf\xc3\xa9") == 0,
	      "string metadata kept, other values skipped, \\u decoded");
	st_free(&f);
	snprintf(extra, sizeof extra, ",\"x\":%s", nest(deep, 31, "1"));
	CHECK(st_header("", extra, &f, &e) == 0, "an unknown entry field nested 31 deep");
	st_free(&f);
	snprintf(extra, sizeof extra, ",\"x\":%s", nest(deep, 32, "1"));
	rc = st_header("", extra, &f, &e);
	CHECK(rc < 0 && strcmp(e.msg, "bad header: too deep or truncated") == 0,
	      "32 deep is refused: %s", e.msg);
	st_free(&f);
	snprintf(extra, sizeof extra, "\"x\":%s", nest(deep, 30, "1"));
	CHECK(st_header(extra, "", &f, &e) == 0, "a metadata value nested 30 deep");
	st_free(&f);
	snprintf(extra, sizeof extra, "\"x\":%s", nest(deep, 31, "1"));
	CHECK(st_header(extra, "", &f, &e) < 0 && strstr(e.msg, "too deep"), "31 deep is refused");
	st_free(&f);
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
		rc = st_header("", refused[i][0], &f, &e);
		CHECK(rc < 0 && e.code == EXIT_DATA && strncmp(e.msg, refused[i][1],
		      strlen(refused[i][1])) == 0, "%s refused: %s", refused[i][0], e.msg);
		st_free(&f);
	}
}

int main(int argc, char **argv)
{
	(void)argc;
	cull_init(argv[0]);
	test_parse();
	test_write();
	test_safetensors();
	return CHECK_DONE();
}
