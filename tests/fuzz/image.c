/* libFuzzer harness: JPEG, PNG and PPM/PGM decoding, as stored and converted, under a pixel limit. */
#include "fuzz.h"
#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	static const image_opts opts[2] = {
		{ .max_pixels = 1 << 20 },
		{ .channels = 1, .min_size = 4, .max_pixels = 1 << 12, .strict = 1 },
	};
	cull_err e;
	image img;

	image_detect(data, n);
	for (int i = 0; i < 2; i++) {
		e.code = 0;
		if (image_decode(&img, data, n, &opts[i], &e) == 0)
			image_free(&img);
		else
			fuzz_reported(&e);
	}
	return 0;
}
