/* cull-json: record streams (msgpack) to JSON Lines and back, so text tools work on them. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "jsonl.h"
#include "record.h"

static const char usage_short[] = "usage: cull-json [-r] [FILE...]; see --help\n";
static const char usage[] =
	"usage: cull-json [-r] [FILE...]\n"
	"  records (msgpack) -> JSON Lines, one object per record;\n"
	"  -r, --reverse   JSON Lines -> records\n"
	"  -h, --help      this help\n"
	"      --version   print the version\n"
	"      --threads T accepted for uniformity; cull-json uses one thread\n";

/* Records -> JSON Lines on standard output. */
static void to_json(const char *path)
{
	cull_err e;
	rec_reader *rd = rec_open(path, &e);
	record r;
	json_buf b = { 0 };
	int rc;

	if (!rd)
		die_err(&e);
	rec_init(&r);
	while ((rc = rec_next(rd, &r)) > 0) {
		if (jsonl_put_record(&b, &r, rec_source(rd), &e) < 0)
			die_err(&e);
		xfwrite(b.p, b.n, stdout, "<stdout>");
	}
	if (rc < 0)
		die_err(rec_error(rd));
	rec_free(&r);
	rec_close(rd);
	free(b.p);
}

/* JSON Lines -> records to w. */
static void from_json(const char *path, rec_writer *w)
{
	FILE *f = xfopen(path, "rb");
	const char *name = io_name(path, 0);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned long long lineno = 0;
	record r;
	cull_err e;
	int rc;

	rec_init(&r);
	while (errno = 0, (n = getline(&line, &cap, f)) >= 0) {
		if ((rc = jsonl_to_record(&r, line, (size_t)n, name, ++lineno, &e)) < 0)
			die_err(&e);
		if (rc && rec_write(w, &r) < 0)
			die_err(rec_writer_error(w));
	}
	if (ferror(f))
		die(EXIT_IO, "%s: read error: %s", name, strerror(errno));
	if (f != stdin)
		fclose(f);
	free(line);
	rec_free(&r);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "reverse", no_argument, NULL, 'r' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c, reverse = 0, i;
	rec_writer *w;
	cull_err e;

	cull_init(argv[0]);
	while ((c = getopt_long(argc, argv, "rh", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': reverse = 1; break;
		case 't': parse_threads(optarg); break;
		case 'h': fputs(usage, stdout); xfclose(stdout, "<stdout>"); return 0;
		case 'V': print_version("cull-json", NULL);
		default: fputs(usage_short, stderr); return EXIT_USAGE;
		}
	}
	if (reverse) {
		if (!(w = rec_writer_open(NULL, &e)))
			die_err(&e);
		if (optind == argc)
			from_json(NULL, w);
		for (i = optind; i < argc; i++)
			from_json(argv[i], w);
		if (rec_writer_close(w, &e) < 0)
			die_err(&e);
	} else {
		if (optind == argc)
			to_json(NULL);
		for (i = optind; i < argc; i++)
			to_json(argv[i]);
		xfclose(stdout, "<stdout>");
	}
	return 0;
}
