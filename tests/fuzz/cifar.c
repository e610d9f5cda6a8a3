/* libFuzzer harness: CIFAR-10/100 binary batches, layout detected or given. */
#include "cifar.h"
#include "fuzz.h"

static cifar_file f;
static unsigned char rgb[CIFAR_PIXELS];

static void load(const char *path, int variant)
{
	cifar_load(&f, path, variant);
	cifar_label(&f, 0);
	cifar_coarse(&f, f.count - 1);
	cifar_pixels(&f, f.count - 1, rgb);
	cifar_free(&f);
}

static void run(void *path)
{
	load(path, 0);
}

static void run10(void *path)
{
	load(path, 10);
}

static void cleanup(void *arg)
{
	(void)arg;
	cifar_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	const char *path = fuzz_path(data, n);

	fuzz_call(run, cleanup, (void *)path);
	fuzz_call(run10, cleanup, (void *)path);
	return 0;
}
