/* Image preprocessing as torchvision's eval transforms do it on PIL images (Pillow's
 * fixed-point bilinear resampling reproduced exactly, center crop, normalization). */
#include "preprocess.h"
#include "io.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

void resize_shorter_size(int w, int h, int s, int *ow, int *oh)
{
	if (s <= 0) {
		*ow = w;
		*oh = h;
	} else if (w <= h) {
		*ow = s;
		*oh = (int)((double)s * h / w);
	} else {
		*oh = s;
		*ow = (int)((double)s * w / h);
	}
}

/* Pillow's precompute_coeffs() for the bilinear filter (support 1), then its
 * normalize_coeffs_8bpc(): bounds[2 * o] = first input index, bounds[2 * o + 1] = count;
 * kk[o * ksize + i] = fixed-point weights. Returns ksize. */
static int coeffs(int in_size, int out_size, int **bounds_out, int32_t **kk_out)
{
	double scale, filterscale, support, center, ww, ss, *k;
	int ksize, o, x, xmin, xmax, *bounds;
	int32_t *kk;

	filterscale = scale = (double)(float)in_size / out_size;
	if (filterscale < 1.0)
		filterscale = 1.0;
	support = 1.0 * filterscale;
	ksize = (int)ceil(support) * 2 + 1;
	k = xcalloc((size_t)ksize, sizeof *k);
	kk = xcalloc((size_t)out_size * (size_t)ksize, sizeof *kk);
	bounds = xmalloc((size_t)out_size * 2 * sizeof *bounds);
	for (o = 0; o < out_size; o++) {
		center = (o + 0.5) * scale;
		ww = 0.0;
		ss = 1.0 / filterscale;
		xmin = (int)(center - support + 0.5);
		if (xmin < 0)
			xmin = 0;
		xmax = (int)(center + support + 0.5);
		if (xmax > in_size)
			xmax = in_size;
		xmax -= xmin;
		for (x = 0; x < xmax; x++) {
			double t = fabs((x + xmin - center + 0.5) * ss);
			k[x] = t < 1.0 ? 1.0 - t : 0.0;
			ww += k[x];
		}
		for (x = 0; x < xmax; x++) {
			double v = ww != 0.0 ? k[x] / ww : k[x];
			kk[(size_t)o * (size_t)ksize + (size_t)x] =
				(int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) :
				                  0.5 + v * (1 << PRECISION_BITS));
		}
		bounds[2 * o] = xmin;
		bounds[2 * o + 1] = xmax;
	}
	free(k);
	*bounds_out = bounds;
	*kk_out = kk;
	return ksize;
}

static unsigned char clip8(int64_t v)
{
	v >>= PRECISION_BITS;
	return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void resize_bilinear_pil(unsigned char *dst, int ow, int oh, const unsigned char *src, int w,
                         int h, int channels)
{
	int need_h = ow != w, need_v = oh != h;
	int *bh, *bv, kh, kv, y_first, y_last, tw, th, x, y, i, c;
	int32_t *kkh, *kkv;
	unsigned char *tmp = NULL;
	const unsigned char *in = src;
	size_t cs = (size_t)channels;

	if (!need_h && !need_v) {
		memcpy(dst, src, (size_t)w * (size_t)h * cs);
		return;
	}
	kh = coeffs(w, ow, &bh, &kkh);
	kv = coeffs(h, oh, &bv, &kkv);
	y_first = bv[0];
	y_last = bv[2 * oh - 2] + bv[2 * oh - 1];
	tw = w;
	th = h;
	if (need_h) {
		/* horizontal pass over the rows the vertical pass will use */
		th = y_last - y_first;
		for (i = 0; i < oh; i++)
			bv[2 * i] -= y_first;
		tmp = xmalloc((size_t)ow * (size_t)th * cs);
		for (y = 0; y < th; y++) {
			const unsigned char *row = src + (size_t)(y + y_first) * (size_t)w * cs;
			for (x = 0; x < ow; x++) {
				const int32_t *k = kkh + (size_t)x * (size_t)kh;
				int xmin = bh[2 * x], xn = bh[2 * x + 1];
				for (c = 0; c < channels; c++) {
					int64_t ss = 1 << (PRECISION_BITS - 1);
					for (i = 0; i < xn; i++)
						ss += (int64_t)row[(size_t)(xmin + i) * cs + (size_t)c] * k[i];
					tmp[((size_t)y * (size_t)ow + (size_t)x) * cs + (size_t)c] = clip8(ss);
				}
			}
		}
		in = tmp;
		tw = ow;
	}
	if (need_v) {
		for (y = 0; y < oh; y++) {
			const int32_t *k = kkv + (size_t)y * (size_t)kv;
			int ymin = bv[2 * y], yn = bv[2 * y + 1];
			for (x = 0; x < tw; x++)
				for (c = 0; c < channels; c++) {
					int64_t ss = 1 << (PRECISION_BITS - 1);
					for (i = 0; i < yn; i++)
						ss += (int64_t)in[((size_t)(ymin + i) * (size_t)tw + (size_t)x) * cs +
						                  (size_t)c] * k[i];
					dst[((size_t)y * (size_t)ow + (size_t)x) * cs + (size_t)c] = clip8(ss);
				}
		}
	} else {
		memcpy(dst, in, (size_t)ow * (size_t)oh * cs);
	}
	(void)th;
	free(tmp);
	free(bh);
	free(bv);
	free(kkh);
	free(kkv);
}

/* Python's round((size - c) / 2.0): half to even. */
static int half_even(int d)
{
	int k = d / 2;

	if (d % 2 == 0)
		return k;
	return k % 2 == 0 ? k : k + 1;
}

void center_crop_offsets(int w, int h, int cw, int ch, int *x0, int *y0)
{
	*x0 = cw > w ? -((cw - w) / 2) : half_even(w - cw);
	*y0 = ch > h ? -((ch - h) / 2) : half_even(h - ch);
}

void to_tensor_normalize(float *dst, const unsigned char *src, int w, int h, int channels,
                         int x0, int y0, int cw, int ch, const float *mean, const float *std)
{
	int c, x, y, sx, sy;
	size_t plane = (size_t)cw * (size_t)ch;
	float v;

	for (c = 0; c < channels; c++)
		for (y = 0; y < ch; y++) {
			sy = y + y0;
			for (x = 0; x < cw; x++) {
				sx = x + x0;
				v = 0.0f;
				if (sx >= 0 && sx < w && sy >= 0 && sy < h)
					v = (float)src[((size_t)sy * (size_t)w + (size_t)sx) * (size_t)channels +
					               (size_t)c] / 255.0f;
				dst[(size_t)c * plane + (size_t)y * (size_t)cw + (size_t)x] =
					(v - mean[c]) / std[c];
			}
		}
}

void preprocess_size(int w, int h, int resize, int crop, int *out_w, int *out_h)
{
	resize_shorter_size(w, h, resize, out_w, out_h);
	if (crop > 0)
		*out_w = *out_h = crop;
}

void preprocess_eval(float *dst, const image *img, int resize, int crop, const float *mean,
                     const float *std, unsigned char **scratch, size_t *scratch_cap)
{
	int rw, rh, x0 = 0, y0 = 0, cw, ch;
	const unsigned char *px = img->pixels;
	size_t need;

	resize_shorter_size(img->width, img->height, resize, &rw, &rh);
	if (rw != img->width || rh != img->height) {
		need = (size_t)rw * (size_t)rh * (size_t)img->channels;
		if (*scratch_cap < need) {
			free(*scratch);
			*scratch = xmalloc(need);
			*scratch_cap = need;
		}
		resize_bilinear_pil(*scratch, rw, rh, img->pixels, img->width, img->height,
		                    img->channels);
		px = *scratch;
	}
	cw = rw;
	ch = rh;
	if (crop > 0) {
		cw = ch = crop;
		center_crop_offsets(rw, rh, cw, ch, &x0, &y0);
	}
	to_tensor_normalize(dst, px, rw, rh, img->channels, x0, y0, cw, ch, mean, std);
}
