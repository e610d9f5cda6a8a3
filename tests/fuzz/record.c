/* libFuzzer harness: msgpack record streams through rec_next, packed back with rec_pack. */
#include "fuzz.h"
#include "record.h"

static rec_reader *rd;
static record r, c;

static void run(void *path)
{
	const unsigned char *v;
	unsigned char *p;
	float x[16];
	long n;
	size_t len;
	int64_t i;
	double d;

	rd = rec_open(path);
	while (rec_next(rd, &r)) {
		rec_get_int(&r, "cls", &i);
		rec_get_float(&r, "proto", &d);
		n = rec_get_floats(&r, "emb", &v);
		if (n > 0)
			rec_floats_copy(x, v, n < 16 ? (size_t)n : 16);
		rec_copy(&c, &r);
		rec_set_float(&c, "proto", 0.5);
		rec_del(&c, "emb");
		p = rec_pack(&c, &len);
		free(p);
	}
	rec_close(rd);
	rd = NULL;
}

static void cleanup(void *arg)
{
	(void)arg;
	rec_close(rd);
	rd = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	fuzz_call(run, cleanup, (void *)fuzz_path(data, n));
	rec_free(&r);
	rec_free(&c);
	return 0;
}
