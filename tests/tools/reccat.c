/* Test tool: read record streams through formats/record and write them back unchanged. */
#include "io.h"
#include "record.h"

int main(int argc, char **argv)
{
	record r;
	rec_reader *rd;
	rec_writer *w;
	cull_err e;
	int i, rc;

	cull_init(argv[0]);
	rec_init(&r);
	if (!(w = rec_writer_open("-", &e)))
		die_err(&e);
	for (i = 1; i < argc || i == 1; i++) {
		if (!(rd = rec_open(i < argc ? argv[i] : "-", &e)))
			die_err(&e);
		while ((rc = rec_next(rd, &r)) > 0)
			if (rec_write(w, &r) < 0)
				die_err(rec_writer_error(w));
		if (rc < 0)
			die_err(rec_error(rd));
		rec_close(rd);
	}
	if (rec_writer_close(w, &e) < 0)
		die_err(&e);
	rec_free(&r);
	return 0;
}
