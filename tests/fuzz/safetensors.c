/* libFuzzer harness: safetensors headers parsed by st_parse, tensors converted to f32 and i64. */
#include <string.h>

#include "fuzz.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	unsigned char *buf = malloc(n ? n : 1);
	cull_err e = { 0 };
	st_file f;

	if (!buf)
		return 0;
	memcpy(buf, data, n);
	if (st_parse(&f, buf, n, &e) == 0) {
		st_meta_get(&f, "format");
		st_find(&f, "fc.weight");
		for (size_t i = 0; i < f.n; i++) {
			int64_t k = st_numel(&f.e[i]);
			void *dst;

			if (k < 0 || k > 1 << 20)
				continue;
			dst = malloc((size_t)(k ? k : 1) * 8);
			st_to_f32(&f, &f.e[i], dst);
			st_to_i64(&f, &f.e[i], dst);
			free(dst);
		}
	} else {
		fuzz_reported(&e);
	}
	st_free(&f);
	return 0;
}
