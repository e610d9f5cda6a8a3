/* Test tool: writes two records with cull's setters to stdout, for tests/records.test to read in Python. */
#include "io.h"
#include "record.h"

int main(int argc, char **argv)
{
	record r;
	rec_writer *w;
	cull_err e;
	const float emb[3] = { 1.0f, -0.5f, 0.1f };

	(void)argc;
	cull_init(argv[0]);
	rec_init(&r);
	if (!(w = rec_writer_open("-", &e)))
		die_err(&e);
	rec_set_str(&r, "key", "k0");
	rec_set_int(&r, "cls", 3);
	rec_set_floats(&r, "emb", emb, 3);
	rec_set_float(&r, "proto", 0.25);
	rec_set_int(&r, "cls", 7);              /* replaces in place, order kept */
	if (rec_write(w, &r) < 0)
		die_err(rec_writer_error(w));
	rec_clear(&r);
	rec_set_str(&r, "key", "k1");
	rec_set_int(&r, "neg", -5);
	rec_set_str(&r, "s", "\xc3\xbc");
	rec_set_bin(&r, "bin", "\x00\xff", 2);
	rec_set_nil(&r, "nil");
	rec_set_bool(&r, "t", 1);
	rec_set_int(&r, "gone", 1);
	rec_del(&r, "gone");
	if (rec_write(w, &r) < 0)
		die_err(rec_writer_error(w));
	if (rec_writer_close(w, &e) < 0)
		die_err(&e);
	rec_free(&r);
	return 0;
}
