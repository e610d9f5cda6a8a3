/* JSON text: a parser into a tree that keeps each number's text, and the writing pieces. */
#ifndef CULL_JSON_H
#define CULL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"

/* ---- reading ---- */

enum { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

/* A parsed value. A number keeps its text, so a caller decides what it is (an int64, a
 * uint64, a float32 written as one, ...) and nothing is lost on the way. */
typedef struct json_value {
	int type;                  /* JSON_* */
	int is_int;                /* JSON_NUM without fraction or exponent */
	const char *at;            /* where it starts in the text, for messages */
	char *s;                   /* JSON_STR: decoded bytes, NUL-terminated (malloc'd);
	                            * JSON_NUM: its text, in the parsed text (not owned) */
	size_t len;                /* bytes of s (a string may hold NULs) */
	struct json_value *kids;   /* JSON_ARR elements, JSON_OBJ member values */
	char **keys;               /* JSON_OBJ member names, decoded like strings (malloc'd) */
	size_t *klens;
	size_t n, cap;             /* elements or members, in the order of the text */
} json_value;

typedef struct {
	int max_depth;             /* deepest nesting taken (the outer value is 0); 0: 256 */
	int nan;                   /* NaN, Infinity and -Infinity are numbers, as Python's
	                            * json module writes them (not JSON: only cull-json's -r) */
} json_options;

/*
 * Parse one value at the start of text[0, len) (white space before it skipped): 0, with
 * *end (may be NULL) just past it, whatever follows is the caller's. Or -1 with v freed
 * and the reason in e (EXIT_DATA; the message says what was expected and found, without
 * a position) and *at (may be NULL) where in the text it went wrong. Strict JSON (RFC
 * 8259): strings may not hold raw control characters, escapes are checked and \u
 * surrogate pairs decoded to UTF-8; other bytes are taken as they are. opts may be NULL.
 */
int json_parse(json_value *v, const char *text, size_t len, const json_options *opts,
               const char **end, cull_err *e, const char **at);
void json_free(json_value *v);

/* The text of a number as an integer: 0 and *i, or 1 and *u (above INT64_MAX), or -1
 * when it is not an integer in the 64-bit range. */
int json_int(const json_value *v, int64_t *i, uint64_t *u);
/* A number as a double. *f32 says whether its text is exactly how json_put_float writes a
 * float32 (and not also how it writes the double): cull-json reads back what it wrote. */
double json_float(const json_value *v, int *f32);

/* ---- writing ---- */

/* A growable text buffer; { 0 } is an empty one, free(b.p) releases it. */
typedef struct {
	char *p;
	size_t n, cap;
} json_buf;

void json_put(json_buf *b, const void *p, size_t n);
void json_putc(json_buf *b, char c);
void json_printf(json_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Room for `more` bytes and a NUL after b->n. */
void json_reserve(json_buf *b, size_t more);

/* n bytes as a JSON string: '"' and '\' escaped, control characters as \n, \t, \r, \b, \f
 * or \u00XX; with JSON_ESCAPE_U every control character as \u00XX (safetensors' writer
 * has always written them so). Other bytes go as they are. */
enum { JSON_ESCAPE_U = 1 };
void json_put_str(json_buf *b, const char *s, size_t n, int flags);
void json_put_int(json_buf *b, long long v);
/* A float as text that reads back to the same value: %.17g (%.9g for float32), with ".0"
 * added to integral values so they still read as floats; NaN and infinities as Python's
 * json module writes them. */
void json_put_float(json_buf *b, double d, int f32);
/* The same into s (at least 32 bytes); returns its length. */
int json_fmt_float(char *s, double d, int f32);

#endif
