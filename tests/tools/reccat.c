/* Test tool: read record streams through formats/record and write them back unchanged. */
#include "io.h"
#include "record.h"

int main(int argc, char **argv)
{
	record r;
	rec_reader *rd;
	rec_writer *w;
	int i;

	cull_init(argv[0]);
	rec_init(&r);
	w = rec_writer_open("-");
	for (i = 1; i < argc || i == 1; i++) {
		rd = rec_open(i < argc ? argv[i] : "-");
		while (rec_next(rd, &r))
			rec_write(w, &r);
		rec_close(rd);
	}
	rec_writer_close(w);
	rec_free(&r);
	return 0;
}
