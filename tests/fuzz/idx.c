/* libFuzzer harness: IDX files (MNIST layout), plain or compressed. */
#include "fuzz.h"
#include "idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	idx_file f;
	cull_err e;
	size_t i, m;

	if (idx_load(&f, fuzz_path(data, n), &e) < 0) {
		fuzz_reported(&e);
		return 0;
	}
	m = f.item_size / f.elem_size;
	if (f.count > 0)
		for (i = 0; i < m && i < 64; i++) {
			idx_get_int(&f, 0, i);
			idx_get_int(&f, f.count - 1, i);
		}
	idx_free(&f);
	return 0;
}
