/* libFuzzer harness: tar shards read as WebDataset samples (grouping, pax, compression). */
#include "fuzz.h"
#include "wds.h"

static void run(void *path)
{
	const char *paths[1] = { path };
	wds_options o = { .max_member = 1 << 20, .check_keys = 1, .defer_errors = 1 };
	wds_reader *r = wds_open(paths, 1, &o);
	wds_writer *w = wds_writer_open("/dev/null");
	wds_sample s = { 0 };
	const wds_member *m;
	int64_t cls;
	int code;

	while (wds_next(r, &s) == 1) {
		m = wds_find(&s, "cls,jpg,png");
		if (m)
			wds_parse_cls(m, &cls);
		wds_write_sample(w, &s);
	}
	wds_error(r, &code);
	wds_sample_free(&s);
	wds_close(r);
	wds_writer_close(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	fuzz_call(run, NULL, (void *)fuzz_path(data, n));
	return 0;
}
