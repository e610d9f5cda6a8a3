/* libFuzzer harness: msgpack record streams through rec_next, packed back with rec_pack. */
#include "fuzz.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	static record r, c;
	const unsigned char *v;
	unsigned char *p;
	float x[16];
	long k;
	size_t len;
	int64_t i;
	double d;
	cull_err e;
	rec_reader *rd = rec_open(fuzz_path(data, n), &e);
	int rc;

	if (!rd)
		abort();
	while ((rc = rec_next(rd, &r)) > 0) {
		rec_get_int(&r, "cls", &i);
		rec_get_float(&r, "proto", &d);
		k = rec_get_floats(&r, "emb", &v);
		if (k > 0)
			rec_floats_copy(x, v, k < 16 ? (size_t)k : 16);
		rec_copy(&c, &r);
		rec_set_float(&c, "proto", 0.5);
		rec_del(&c, "emb");
		p = rec_pack(&c, &len);
		free(p);
	}
	if (rc < 0)
		fuzz_reported(rec_error(rd));
	rec_close(rd);
	rec_free(&r);
	rec_free(&c);
	return 0;
}
