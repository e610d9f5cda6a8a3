/* cull-train's randomness and augmentation: counter-based draws, epoch order, crop and flip;
 * the mirror view of test-time augmentation. */
#include "train.h"
#include "layers.h"
#include "preprocess.h"

#include <string.h>

/* splitmix64's finalizer: a bijective mix of 64 bits. */
uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint64_t hash3(uint64_t a, uint64_t b, uint64_t c)
{
	return mix64(mix64(mix64(a) ^ b) ^ c);
}

/* Uniform in [0, n) from 64 random bits (Lemire's multiply-shift; bias below 2^-32). */
static uint64_t below(uint64_t r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

void epoch_order(size_t *order, size_t n, uint64_t seed, long epoch)
{
	uint64_t st = hash3(seed, 0x6f72646572ULL, (uint64_t)epoch);

	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)below(st = mix64(st), i);
		size_t t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
}

typedef struct {
	float *x;
	int *labels;
	const dataset *d;
	const size_t *idx;
	const augment *a;
	int mode;
	uint64_t seed;
	long epoch;
} batch_job;

static void one_image(void *ctx, int i, int tid)
{
	batch_job *j = ctx;
	const dataset *d = j->d;
	size_t s = j->idx[i], plane = (size_t)d->h * (size_t)d->w;
	float *dst = j->x + (size_t)i * plane * (size_t)d->c;
	int x0 = 0, y0 = 0, flip = 0;

	(void)tid;
	if (j->mode == BATCH_MIRROR)
		flip = 1;
	if (j->mode == BATCH_TRAIN) {
		uint64_t r = hash3(j->seed, (uint64_t)j->epoch, s);
		int span = 2 * j->a->pad + 1;
		if (j->a->pad > 0) {
			x0 = (int)below(r = mix64(r), (uint64_t)span) - j->a->pad;
			y0 = (int)below(r = mix64(r), (uint64_t)span) - j->a->pad;
		}
		if (j->a->flip)
			flip = (int)((r = mix64(r)) >> 63);
	}
	to_tensor_normalize(dst, data_image(d, s), d->w, d->h, d->c, x0, y0, d->w, d->h,
	                    j->a->mean, j->a->std);
	if (flip)
		for (int c = 0; c < d->c; c++)
			for (int y = 0; y < d->h; y++) {
				float *row = dst + (size_t)c * plane + (size_t)y * (size_t)d->w;
				for (int a = 0, b = d->w - 1; a < b; a++, b--) {
					float t = row[a];
					row[a] = row[b];
					row[b] = t;
				}
			}
	j->labels[i] = d->label[s];
}

void make_batch(float *x, int *labels, const dataset *d, const size_t *idx, int n,
                const augment *a, int mode, uint64_t seed, long epoch)
{
	batch_job j = { x, labels, d, idx, a, mode, seed, epoch };

	nn_parallel(n, one_image, &j);
}
