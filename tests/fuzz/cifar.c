/* libFuzzer harness: CIFAR-10/100 binary batches, layout detected or given. */
#include "cifar.h"
#include "fuzz.h"

static void load(const char *path, int variant)
{
	static unsigned char rgb[CIFAR_PIXELS];
	cifar_file f;
	cull_err e;

	if (cifar_load(&f, path, variant, &e) < 0) {
		fuzz_reported(&e);
		return;
	}
	cifar_label(&f, 0);
	cifar_coarse(&f, f.count - 1);
	cifar_pixels(&f, f.count - 1, rgb);
	cifar_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	const char *path = fuzz_path(data, n);

	load(path, 0);
	load(path, 10);
	return 0;
}
