/* libFuzzer harness: cull-json's JSON Lines parser (-r) and its records-to-JSON side.
 * filters/json.c is compiled in whole with its main renamed (-Dmain=cull_json_main): an
 * input starting with '{' or white space is cut into lines for line_to_record, anything
 * else is read as records and written by put_record (two functions factored out of
 * from_json and to_json for this harness). */
#include "fuzz.h"
#include "../../filters/json.c"

static const uint8_t *in;
static size_t in_len;
static record r;
static rec_reader *rd;
static buf b;
static jv v;
static jparser j;

static void run_from(void *arg)
{
	const uint8_t *p = in, *nl;

	(void)arg;
	j = (jparser){ .name = "<fuzz>" };
	while (p < in + in_len) {
		nl = memchr(p, '\n', (size_t)(in + in_len - p));
		j.line++;
		j.start = j.p = (const char *)p;
		j.end = (const char *)(nl ? nl + 1 : in + in_len);
		memset(&v, 0, sizeof v);
		if (line_to_record(&j, &r, &v))
			free(rec_pack(&r, &(size_t){ 0 }));
		p = (const uint8_t *)j.end;
	}
}

static void run_to(void *path)
{
	cull_err e;

	rd = rec_open(path, &e);
	while (rec_next(rd, &r) > 0)
		put_record(&b, &r, rec_source(rd));
	rec_close(rd);
	rd = NULL;
}

static void cleanup_from(void *arg)
{
	(void)arg;
	jv_free(&v);
	free(j.str.p);                   /* a string cut off by the error */
	msgpack_sbuffer_destroy(&j.pack);  /* a value packed part-way */
}

static void cleanup_to(void *arg)
{
	(void)arg;
	rec_close(rd);
	rd = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	int text = n > 0 && (data[0] == '{' || data[0] == ' ' || data[0] == '\n' || data[0] == '\t');

	in = data;
	in_len = n;
	if (text)
		fuzz_call(run_from, cleanup_from, NULL);
	else
		fuzz_call(run_to, cleanup_to, (void *)fuzz_path(data, n));
	rec_free(&r);
	free(b.p);
	b = (buf){ 0 };
	return 0;
}
