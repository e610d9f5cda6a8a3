/* cull-train's randomness and augmentation: counter-based draws, epoch order, crop and flip;
 * the mirror view of test-time augmentation. */
#include "train.h"
#include "layers.h"
#include "io.h"
#include "preprocess.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

uint64_t hash3(uint64_t a, uint64_t b, uint64_t c)
{
	return rng_mix(rng_mix(rng_mix(a) ^ b) ^ c);
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
		size_t j = (size_t)below(st = rng_mix(st), i);
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
			x0 = (int)below(r = rng_mix(r), (uint64_t)span) - j->a->pad;
			y0 = (int)below(r = rng_mix(r), (uint64_t)span) - j->a->pad;
		}
		if (j->a->flip)
			flip = (int)((r = rng_mix(r)) >> 63);
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

/* ---- self-supervised views ---- */

static double unit(uint64_t *r)
{
	return (double)((*r = rng_mix(*r)) >> 11) * (1.0 / 9007199254740992.0);
}

static double uniform(uint64_t *r, double lo, double hi)
{
	return lo + (hi - lo) * unit(r);
}

/* torchvision RandomResizedCrop.get_params: a box of area scale * W*H and aspect ratio in
 * [3/4, 4/3] (log-uniform), ten tries, then the whole image clamped to that ratio. */
static void resized_crop_box(uint64_t *r, int W, int H, float smin, float smax, int *x0,
                             int *y0, int *cw, int *ch)
{
	double area = (double)W * H, lr0 = log(3.0 / 4.0), lr1 = log(4.0 / 3.0), in_ratio;

	for (int i = 0; i < 10; i++) {
		double ta = area * uniform(r, smin, smax), ar = exp(uniform(r, lr0, lr1));
		int w = (int)lround(sqrt(ta * ar)), h = (int)lround(sqrt(ta / ar));
		if (w > 0 && w <= W && h > 0 && h <= H) {
			*y0 = (int)below(*r = rng_mix(*r), (uint64_t)(H - h + 1));
			*x0 = (int)below(*r = rng_mix(*r), (uint64_t)(W - w + 1));
			*cw = w;
			*ch = h;
			return;
		}
	}
	in_ratio = (double)W / H;
	if (in_ratio < 3.0 / 4.0) {
		*cw = W;
		*ch = (int)lround(W / (3.0 / 4.0));
	} else if (in_ratio > 4.0 / 3.0) {
		*ch = H;
		*cw = (int)lround(H * (4.0 / 3.0));
	} else {
		*cw = W;
		*ch = H;
	}
	*x0 = (W - *cw) / 2;
	*y0 = (H - *ch) / 2;
}

static float clamp01(float v)
{
	return v < 0 ? 0 : v > 1 ? 1 : v;
}

static float luma(const float *p)
{
	return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
}

/* torchvision's adjust_hue on one RGB pixel: to HSV, rotate the hue, back. */
static void hue_shift(float *p, float shift)
{
	float r = p[0], g = p[1], b = p[2];
	float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), c = mx - mn;
	float h = 0, s = mx > 0 ? c / mx : 0, v = mx;

	if (c > 0) {
		if (mx == r)
			h = fmodf((g - b) / c, 6.0f);
		else if (mx == g)
			h = (b - r) / c + 2.0f;
		else
			h = (r - g) / c + 4.0f;
		h /= 6.0f;
	}
	h += shift;
	h -= floorf(h);
	float hh = h * 6.0f, f = hh - floorf(hh);
	int i = (int)floorf(hh) % 6;
	float pp = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
	switch (i) {
	case 0: p[0] = v; p[1] = t; p[2] = pp; break;
	case 1: p[0] = q; p[1] = v; p[2] = pp; break;
	case 2: p[0] = pp; p[1] = v; p[2] = t; break;
	case 3: p[0] = pp; p[1] = q; p[2] = v; break;
	case 4: p[0] = t; p[1] = pp; p[2] = v; break;
	default: p[0] = v; p[1] = pp; p[2] = q; break;
	}
}

/* ColorJitter in a random order of its four parts, on HWC floats in [0, 1]. */
static void color_jitter(float *px, int npix, int c, const ssl_augment *s, uint64_t *r)
{
	int order[4] = { 0, 1, 2, 3 };
	float f[4];

	for (int i = 3; i > 0; i--) {
		int j = (int)below(*r = rng_mix(*r), (uint64_t)(i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (int k = 0; k < 3; k++)
		f[k] = (float)uniform(r, fmax(0.0, 1.0 - s->jitter[k]), 1.0 + s->jitter[k]);
	f[3] = (float)uniform(r, -s->jitter[3], s->jitter[3]);
	for (int o = 0; o < 4; o++) {
		int k = order[o];
		if (k == 0) {                       /* brightness */
			for (int i = 0; i < npix * c; i++)
				px[i] = clamp01(px[i] * f[0]);
		} else if (k == 1) {                /* contrast: blend with the mean gray */
			double m = 0;
			for (int i = 0; i < npix; i++)
				m += c == 3 ? luma(px + 3 * i) : px[i];
			m /= npix;
			for (int i = 0; i < npix * c; i++)
				px[i] = clamp01(f[1] * px[i] + (1 - f[1]) * (float)m);
		} else if (c == 3 && k == 2) {      /* saturation: blend with the pixel's gray */
			for (int i = 0; i < npix; i++) {
				float *p = px + 3 * i, g = luma(p);
				for (int ch = 0; ch < 3; ch++)
					p[ch] = clamp01(f[2] * p[ch] + (1 - f[2]) * g);
			}
		} else if (c == 3 && k == 3 && f[3] != 0) {
			for (int i = 0; i < npix; i++)
				hue_shift(px + 3 * i, f[3]);
		}
	}
}

typedef struct {
	float *x;
	const dataset *d;
	const size_t *idx;
	int n;
	const augment *a;
	const ssl_augment *s;
	uint64_t seed;
	long epoch;
} view_job;

static void one_view(void *ctx, int i, int tid)
{
	view_job *j = ctx;
	const dataset *d = j->d;
	int W = d->w, H = d->h, C = d->c, view = i / j->n;
	size_t s = j->idx[i % j->n], plane = (size_t)H * (size_t)W;
	const unsigned char *src = data_image(d, s);
	float *dst = j->x + (size_t)i * plane * (size_t)C;
	float px[64 * 64 * 3], *buf = (size_t)W * H <= 64 * 64 ? px : xmalloc(plane * 3 * sizeof *buf);
	uint64_t r = hash3(j->seed ^ 0x7373ULL, (uint64_t)j->epoch, 2 * (uint64_t)s + (uint64_t)view);
	int x0, y0, cw, ch, flip;

	(void)tid;
	resized_crop_box(&r, W, H, j->s->scale_min, j->s->scale_max, &x0, &y0, &cw, &ch);
	flip = j->s->flip && ((r = rng_mix(r)) >> 63);
	/* bilinear resize of the box to W x H (align_corners=False, edges clamped) */
	for (int y = 0; y < H; y++) {
		double sy = ((double)y + 0.5) * ch / H - 0.5;
		if (sy < 0)
			sy = 0;
		int ya = (int)sy, yb = ya + 1 < ch ? ya + 1 : ya;
		float fy = (float)(sy - ya);
		for (int x = 0; x < W; x++) {
			double sx = ((double)(flip ? W - 1 - x : x) + 0.5) * cw / W - 0.5;
			if (sx < 0)
				sx = 0;
			int xa = (int)sx, xb = xa + 1 < cw ? xa + 1 : xa;
			float fx = (float)(sx - xa);
			const unsigned char *r0 = src + ((size_t)(y0 + ya) * W + x0) * C;
			const unsigned char *r1 = src + ((size_t)(y0 + yb) * W + x0) * C;
			for (int c = 0; c < C; c++) {
				float top = r0[xa * C + c] + fx * (r0[xb * C + c] - r0[xa * C + c]);
				float bot = r1[xa * C + c] + fx * (r1[xb * C + c] - r1[xa * C + c]);
				buf[((size_t)y * W + x) * C + c] = (top + fy * (bot - top)) * (1.0f / 255.0f);
			}
		}
	}
	if (unit(&r) < j->s->jitter_prob)
		color_jitter(buf, W * H, C, j->s, &r);
	if (C == 3 && unit(&r) < j->s->gray_prob)
		for (size_t p = 0; p < plane; p++) {
			float g = luma(buf + 3 * p);
			buf[3 * p] = buf[3 * p + 1] = buf[3 * p + 2] = g;
		}
	for (int c = 0; c < C; c++) {
		float m = j->a->mean[c], sd = 1.0f / j->a->std[c];
		for (size_t p = 0; p < plane; p++)
			dst[(size_t)c * plane + p] = (buf[p * C + c] - m) * sd;
	}
	if (buf != px)
		free(buf);
}

void make_views(float *x, const dataset *d, const size_t *idx, int n, const augment *a,
                const ssl_augment *s, uint64_t seed, long epoch)
{
	view_job j = { x, d, idx, n, a, s, seed, epoch };

	nn_parallel(2 * n, one_view, &j);
}
