/* Unit tests of the record API: setters, getters, copy, delete, pack and read back. */
#include "check.h"
#include "io.h"
#include "record.h"

#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	record r, c;
	int64_t i;
	double d;
	const unsigned char *p;
	float emb[5] = { 0.1f, -1e-30f, 3.4e38f, -0.0f, 1.0f }, back[5];
	unsigned char *buf;
	size_t len;
	FILE *f;
	rec_reader *rd;
	cull_err e;
	char path[] = "/tmp/cull-test-recXXXXXX";

	(void)argc;
	cull_init(argv[0]);
	rec_init(&r);
	rec_init(&c);
	rec_set_str(&r, "key", "x/1");
	rec_set_int(&r, "cls", -3);
	rec_set_float(&r, "proto", 0.5);
	rec_set_floats(&r, "emb", emb, 5);
	CHECK(rec_key(&r) && strcmp(rec_key(&r), "x/1") == 0, "rec_key");
	CHECK(rec_get_int(&r, "cls", &i) && i == -3, "rec_get_int");
	CHECK(rec_get_float(&r, "cls", &d) && d == -3.0, "an int reads as a float");
	CHECK(rec_get_float(&r, "proto", &d) && d == 0.5, "rec_get_float");
	CHECK(!rec_get_int(&r, "proto", &i), "0.5 does not read as an int");
	CHECK(!rec_get_float(&r, "key", &d), "a string does not read as a float");
	CHECK(!rec_get_float(&r, "nope", &d), "a missing field is absent");
	CHECK(rec_get_floats(&r, "emb", &p) == 5, "rec_get_floats count");
	rec_floats_copy(back, p, 5);
	CHECK(memcmp(back, emb, sizeof emb) == 0, "float32 bits round-trip");
	CHECK(p[0] == 0xcd && p[3] == 0x3d, "emb is little-endian (0.1f = cd cc cc 3d)");
	CHECK(rec_get_floats(&r, "key", &p) == -1, "a string is not a float vector");

	rec_copy(&c, &r);
	rec_set_int(&r, "cls", 9);
	CHECK(rec_get_int(&c, "cls", &i) && i == -3, "rec_copy is deep");
	CHECK(r.n == 4 && strcmp(r.f[1].name, "cls") == 0, "set replaces in place");
	rec_del(&r, "cls");
	CHECK(r.n == 3 && !rec_get(&r, "cls") && strcmp(r.f[1].name, "proto") == 0, "rec_del keeps order");

	buf = rec_pack(&c, &len);
	f = fdopen(mkstemp(path), "wb");
	fwrite(buf, 1, len, f);
	fwrite(buf, 1, len, f);
	fclose(f);
	free(buf);
	if (!(rd = rec_open(path, &e)))
		die_err(&e);
	CHECK(rec_next(rd, &r) == 1 && rec_offset(rd) == len, "read back: first record, offset");
	CHECK(rec_get_int(&r, "cls", &i) && i == -3 && rec_get_floats(&r, "emb", &p) == 5,
	      "read back: fields");
	CHECK(rec_next(rd, &r) == 1 && rec_count(rd) == 2, "read back: second record");
	CHECK(rec_next(rd, &r) == 0 && rec_error(rd)->code == 0, "read back: clean end");
	rec_close(rd);

	/* errors are reported, not fatal: a truncated record, then a missing file */
	f = fopen(path, "wb");
	fwrite(buf = rec_pack(&c, &len), 1, len - 1, f);
	fclose(f);
	free(buf);
	rd = rec_open(path, &e);
	CHECK(rd && rec_next(rd, &r) == -1 && rec_error(rd)->code == EXIT_DATA &&
	      strstr(rec_error(rd)->msg, "record 1 at byte 0: truncated record"),
	      "a truncated record is reported: %s", rd ? rec_error(rd)->msg : "");
	CHECK(rd && rec_next(rd, &r) == -1, "and stays reported");
	rec_close(rd);
	remove(path);
	CHECK(rec_open(path, &e) == NULL && e.code == EXIT_IO && strstr(e.msg, path),
	      "a missing file is reported: %s", e.msg);
	rec_free(&r);
	rec_free(&c);
	return CHECK_DONE();
}
