/* libFuzzer harness: tar shards read as WebDataset samples (grouping, pax, compression),
 * once copying the members and once borrowing them (zero-copy): both must read the same
 * samples, bytes and error. */
#include "fuzz.h"
#include "wds.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
	uint64_t hash, samples;
	int code;
	char error[512];
} outcome;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static void read_all(const char *path, int borrow, outcome *out)
{
	const char *paths[1] = { path };
	wds_options o = { .max_member = 1 << 20, .check_keys = 1, .defer_errors = 1,
	                  .borrow = borrow };
	wds_reader *r = wds_open(paths, 1, &o);
	wds_writer *w = wds_writer_open("/dev/null");
	wds_sample s = { 0 };
	const wds_member *m;
	const char *e;
	int64_t cls;

	out->hash = 0xcbf29ce484222325ull;
	while (wds_next(r, &s) == 1) {
		out->samples++;
		out->hash = fnv(out->hash, s.key, strlen(s.key) + 1);
		for (size_t i = 0; i < s.nmembers; i++) {
			out->hash = fnv(out->hash, s.members[i].name, strlen(s.members[i].name) + 1);
			out->hash = fnv(out->hash, s.members[i].data, s.members[i].size);
		}
		m = wds_find(&s, "cls,jpg,png");
		if (m)
			wds_parse_cls(m, &cls);
		wds_write_sample(w, &s);
	}
	e = wds_error(r, &out->code);
	snprintf(out->error, sizeof out->error, "%s", e ? e : "");
	wds_sample_free(&s);
	wds_close(r);
	wds_writer_close(w);
}

static void run(const char *path)
{
	outcome a = { 0 }, b = { 0 };

	read_all(path, 0, &a);
	read_all(path, 1, &b);
	if (a.hash != b.hash || a.samples != b.samples || a.code != b.code ||
	    strcmp(a.error, b.error) != 0) {
		fprintf(stderr, "copying and borrowing readers differ: %llu vs %llu samples, "
		        "error '%s' vs '%s'\n", (unsigned long long)a.samples,
		        (unsigned long long)b.samples, a.error, b.error);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	run(fuzz_path(data, n));
	return 0;
}
