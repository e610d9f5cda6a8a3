/* libFuzzer harness: IDX files (MNIST layout), plain or compressed. */
#include "fuzz.h"
#include "idx.h"

static void run(void *path)
{
	idx_file f;
	size_t i, n;

	idx_load(&f, path);
	n = f.item_size / f.elem_size;
	if (f.count > 0)
		for (i = 0; i < n && i < 64; i++) {
			idx_get_int(&f, 0, i);
			idx_get_int(&f, f.count - 1, i);
		}
	idx_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	fuzz_call(run, NULL, (void *)fuzz_path(data, n));
	return 0;
}
