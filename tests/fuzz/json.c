/* libFuzzer harness: formats/json (the parser, both dialects) and formats/jsonl (cull-json's
 * two directions). An input starting with '{' or white space is text: parsed whole as one
 * JSON value, strict and with Python's NaN, then cut into lines for jsonl_to_record, each
 * record packed; anything else is read as a record stream and written by jsonl_put_record. */
#include <string.h>

#include "fuzz.h"
#include "json.h"
#include "jsonl.h"

static void from_text(const uint8_t *data, size_t n, record *r)
{
	static const json_options strict = { 0 }, python = { .nan = 1, .max_depth = 64 };
	const char *p = (const char *)data, *end = p + n, *nl, *at;
	unsigned long long line = 0;
	json_value v;
	cull_err e;
	int rc;

	if (json_parse(&v, p, n, &strict, NULL, &e, &at) == 0)
		json_free(&v);
	else if (!(at >= p && at <= end))
		abort();
	if (json_parse(&v, p, n, &python, NULL, &e, &at) == 0)
		json_free(&v);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		nl = nl ? nl + 1 : end;
		e.code = 0;
		rc = jsonl_to_record(r, p, (size_t)(nl - p), "<fuzz>", ++line, &e);
		if (rc > 0)
			free(rec_pack(r, &(size_t){ 0 }));
		else if (rc < 0)
			fuzz_reported(&e);
		p = nl;
	}
}

static void from_records(const uint8_t *data, size_t n, record *r)
{
	json_buf b = { 0 };
	cull_err e;
	rec_reader *rd = rec_open(fuzz_path(data, n), &e);
	int rc;

	if (!rd)
		abort();
	while ((rc = rec_next(rd, r)) > 0) {
		e.code = 0;
		if (jsonl_put_record(&b, r, rec_source(rd), &e) < 0) {
			fuzz_reported(&e);
			break;
		}
	}
	if (rc < 0)
		fuzz_reported(rec_error(rd));
	rec_close(rd);
	free(b.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	int text = n > 0 && (data[0] == '{' || data[0] == ' ' || data[0] == '\n' || data[0] == '\t');
	record r;

	rec_init(&r);
	if (text)
		from_text(data, n, &r);
	else
		from_records(data, n, &r);
	rec_free(&r);
	return 0;
}
