/* Test and benchmark tool: read shards through formats/wds and write them back, or list samples. */
#include "io.h"
#include "wds.h"

#include <string.h>

int main(int argc, char **argv)
{
	wds_options opt = { .max_member = WDS_MAX_MEMBER, .check_keys = 1, .borrow = 1 };
	wds_sample s = { 0 };
	wds_reader *r;
	wds_writer *w = NULL;
	int list = 0;
	size_t m;

	cull_init(argv[0]);
	while (argc > 1 && argv[1][0] == '-' && argv[1][1]) {
		if (strcmp(argv[1], "-l") == 0)
			list = 1;
		else if (strcmp(argv[1], "--strict") == 0)
			opt.strict = 1;
		else if (strcmp(argv[1], "--max-member") == 0 && argc > 2) {
			opt.max_member = parse_size("--max-member", argv[2]);
			argc--, argv++;
		} else
			die(EXIT_USAGE, "usage: wdscat [-l] [--strict] [--max-member N] [SHARD...]");
		argc--, argv++;
	}
	r = wds_open((const char *const *)argv + 1, (size_t)argc - 1, &opt);
	if (!list)
		w = wds_writer_open("-");
	while (wds_next(r, &s)) {
		if (w) {
			wds_write_sample(w, &s);
			continue;
		}
		printf("%s\t", s.key);
		for (m = 0; m < s.nmembers; m++)
			printf("%s%s:%zu", m ? "," : "", s.members[m].field, s.members[m].size);
		printf("\t%s\t%llu\n", s.source, (unsigned long long)s.offset);
	}
	if (w)
		wds_writer_close(w);
	else
		xfclose(stdout, "<stdout>");
	if (wds_members_skipped(r))
		note("%llu samples, %llu members skipped", (unsigned long long)wds_samples_read(r),
		     (unsigned long long)wds_members_skipped(r));
	else
		note("%llu samples", (unsigned long long)wds_samples_read(r));
	wds_close(r);
	wds_sample_free(&s);
	return 0;
}
