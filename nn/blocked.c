/*
 * Batch normalization and pooling on the blocked activation layout [n][c/B][h][w][B]
 * (layers.h), so that a ResNet's activations stay in the layout of oneDNN's convolution
 * kernels from the stem to the pooling.
 *
 * Work is split by (image, channel block): each item is a contiguous run of h*w*B
 * floats whose B lanes are B channels, so the inner loops are B-wide vector operations.
 * Per-channel sums are taken per item (float lanes flushed to double every SPAN
 * positions) and then added over the images in order, so results do not depend on the
 * thread count. The arithmetic follows the NCHW functions in layers.c (the same shift
 * against cancellation, the same formulas); only the order of the sums differs.
 */
#include "layers.h"
#include "io.h"
#include "simd.h"

#include <math.h>
#include <string.h>

enum { SPAN = 64, MAXB = 16 };

typedef struct {
	float *out, *din;
	const float *in, *dout, *relu_out;
	const float *shift;       /* stats: per channel; backward: the saved mean */
	const float *a, *b, *c1;  /* per channel: y = x * a + b; dx = a * dy + c1 * x + b */
	double *s, *ss;           /* per (image, channel) partial sums */
	const int32_t *argmax;
	int32_t *amax;
	int n, c, h, w, oh, ow, blk, flags;
} bk_job;

static void check_blk(int c, int blk, const char *what)
{
	if ((blk != 8 && blk != 16) || c % blk)
		die(EXIT_USAGE, "%s: %d channels in blocks of %d", what, c, blk);
}

/* The pools also take blocks of 1, which is NCHW: layers.c's maxpool and avgpool. */
static void check_pool(int c, int blk, const char *what)
{
	if (blk != 1)
		check_blk(c, blk, what);
}

/* Per lane over one item, with d = x - shift: the sums of u and u * d, where u = d (the
 * statistics of the forward pass) or, given dout, u = dy masked by relu_out > 0 (those of
 * the backward pass: shift is then the saved mean). */
NN_CLONES
static void sums_item(void *ctx, int i, int tid)
{
	const bk_job *j = ctx;
	int B = j->blk, cb = j->c / B, c0 = (i % cb) * B;
	size_t hw = (size_t)j->h * j->w, base = (size_t)i * hw * B;
	const float *x = j->in + base, *sh = j->shift + c0;
	const float *dy = j->dout ? j->dout + base : NULL;
	const float *r = j->relu_out ? j->relu_out + base : NULL;
	double ds[MAXB] = { 0 }, dss[MAXB] = { 0 };
	(void)tid;

	for (size_t p0 = 0; p0 < hw; p0 += SPAN) {
		float a[MAXB] = { 0 }, q[MAXB] = { 0 };
		size_t p1 = p0 + SPAN < hw ? p0 + SPAN : hw;
		for (size_t p = p0; p < p1; p++)
			for (int l = 0; l < B; l++) {
				size_t k = p * B + l;
				float d = x[k] - sh[l];
				float u = !dy ? d : r && !(r[k] > 0.0f) ? 0.0f : dy[k];
				a[l] += u;
				q[l] += u * d;
			}
		for (int l = 0; l < B; l++) {
			ds[l] += a[l];
			dss[l] += q[l];
		}
	}
	size_t at = (size_t)(i / cb) * j->c + c0;
	for (int l = 0; l < B; l++) {
		j->s[at + l] = ds[l];
		j->ss[at + l] = dss[l];
	}
}

/* y = x * a + b over one item, ReLU with NN_RELU. */
NN_CLONES
static void apply_item(void *ctx, int i, int tid)
{
	const bk_job *j = ctx;
	int B = j->blk, c0 = (i % (j->c / B)) * B;
	size_t len = (size_t)j->h * j->w * B;
	const float *x = j->in + (size_t)i * len, *a = j->a + c0, *b = j->b + c0;
	float *y = j->out + (size_t)i * len;
	(void)tid;

	if (j->flags & NN_RELU)
		for (size_t p = 0; p < len; p += B)
			for (int l = 0; l < B; l++) {
				float v = x[p + l] * a[l] + b[l];
				y[p + l] = v > 0.0f ? v : 0.0f;
			}
	else
		for (size_t p = 0; p < len; p += B)
			for (int l = 0; l < B; l++)
				y[p + l] = x[p + l] * a[l] + b[l];
}

/* Per-image, per-channel partial sums: 2 * n * c doubles from the shared scratch. */
static void partials(bk_job *j)
{
	j->s = (double *)nn_scratch((size_t)4 * j->n * j->c);
	j->ss = j->s + (size_t)j->n * j->c;
}

/* Channel ch's total of partial sums p over the images, in image order. */
static double total(const double *p, int n, int c, int ch)
{
	double t = 0;
	for (int i = 0; i < n; i++)
		t += p[(size_t)i * c + ch];
	return t;
}

void batchnorm_forward_train_blk(float *out, float *mean, float *rstd, float *run_mean,
                                 float *run_var, const float *in, const float *gamma,
                                 const float *beta, int n, int c, int hw, float momentum,
                                 float eps, int flags, int blk)
{
	float shift[c], a[c], b[c];
	bk_job j = { .out = out, .in = in, .shift = shift, .a = a, .b = b, .n = n, .c = c,
		.h = hw, .w = 1, .blk = blk, .flags = flags };
	double cnt = (double)n * hw;

	check_blk(c, blk, "batchnorm");
	for (int ch = 0; ch < c; ch++)   /* the first value of each channel, as layers.c */
		shift[ch] = in[ch / blk * (size_t)hw * blk + ch % blk];
	partials(&j);
	nn_parallel(n * (c / blk), sums_item, &j);
	for (int ch = 0; ch < c; ch++) {
		double s = total(j.s, n, c, ch), ss = total(j.ss, n, c, ch);
		double dm = s / cnt, mu = shift[ch] + dm;
		ss = ss - s * dm;
		if (ss < 0)
			ss = 0;
		double var = ss / cnt;
		float r = (float)(1.0 / sqrt(var + eps)), m = (float)mu;
		a[ch] = r * gamma[ch];
		b[ch] = beta[ch] - m * a[ch];
		mean[ch] = m;
		rstd[ch] = r;
		if (run_mean) {
			double unbiased = cnt > 1 ? ss / (cnt - 1) : var;
			run_mean[ch] = (1 - momentum) * run_mean[ch] + momentum * (float)mu;
			run_var[ch] = (1 - momentum) * run_var[ch] + momentum * (float)unbiased;
		}
	}
	nn_parallel(n * (c / blk), apply_item, &j);
}

void batchnorm_forward_eval_blk(float *out, const float *in, const float *gamma,
                                const float *beta, const float *run_mean, const float *run_var,
                                int n, int c, int hw, float eps, int flags, int blk)
{
	float a[c], b[c];
	bk_job j = { .out = out, .in = in, .a = a, .b = b, .n = n, .c = c, .h = hw, .w = 1,
		.blk = blk, .flags = flags };

	check_blk(c, blk, "batchnorm");
	for (int ch = 0; ch < c; ch++) {
		a[ch] = gamma[ch] / sqrtf(run_var[ch] + eps);
		b[ch] = beta[ch] - run_mean[ch] * a[ch];
	}
	nn_parallel(n * (c / blk), apply_item, &j);
}

/* dx (=, or += without NN_OVERWRITE) a * g + c1 * x + c0 over one item. */
NN_CLONES
static void dx_item(void *ctx, int i, int tid)
{
	const bk_job *j = ctx;
	int B = j->blk, c0 = (i % (j->c / B)) * B, over = j->flags & NN_OVERWRITE;
	size_t len = (size_t)j->h * j->w * B, base = (size_t)i * len;
	const float *x = j->in + base, *dy = j->dout + base;
	const float *r = j->relu_out ? j->relu_out + base : NULL;
	const float *a = j->a + c0, *k1 = j->c1 + c0, *k0 = j->b + c0;
	float *dx = j->din + base;
	(void)tid;

	for (size_t p = 0; p < len; p += B)
		for (int l = 0; l < B; l++) {
			float g = r && !(r[p + l] > 0.0f) ? 0.0f : dy[p + l];
			float v = a[l] * g + k1[l] * x[p + l] + k0[l];
			dx[p + l] = over ? v : dx[p + l] + v;
		}
}

void batchnorm_backward_blk(float *din, float *dgamma, float *dbeta, const float *dout,
                            const float *in, const float *mean, const float *rstd,
                            const float *gamma, const float *relu_out, int n, int c, int hw,
                            int flags, int blk)
{
	float a[c], c1[c], c0[c];
	bk_job j = { .din = din, .in = in, .dout = dout, .relu_out = relu_out, .shift = mean,
		.a = a, .b = c0, .c1 = c1, .n = n, .c = c, .h = hw, .w = 1, .blk = blk,
		.flags = flags };
	double cnt = (double)n * hw;

	check_blk(c, blk, "batchnorm");
	partials(&j);
	nn_parallel(n * (c / blk), sums_item, &j);
	for (int ch = 0; ch < c; ch++) {
		double sdy = total(j.s, n, c, ch), sdyx = total(j.ss, n, c, ch) * rstd[ch];
		if (dgamma)
			dgamma[ch] += (float)sdyx;
		if (dbeta)
			dbeta[ch] += (float)sdy;
		float r = rstd[ch], mdy = (float)(sdy / cnt), mdyx = (float)(sdyx / cnt);
		a[ch] = r * gamma[ch];
		c1[ch] = -a[ch] * r * mdyx;
		c0[ch] = -a[ch] * mdy - c1[ch] * mean[ch];
	}
	if (din)
		nn_parallel(n * (c / blk), dx_item, &j);
}

/* ---- pooling ---- */

NN_CLONES
static void maxpool_item(void *ctx, int i, int tid)
{
	const bk_job *j = ctx;
	int B = j->blk, h = j->h, w = j->w, oh = j->oh, ow = j->ow;
	const float *x = j->in + (size_t)i * h * w * B;
	float *y = j->out + (size_t)i * oh * ow * B;
	int32_t *am = j->amax + (size_t)i * oh * ow * B;
	(void)tid;

	for (int oy = 0; oy < oh; oy++)
		for (int ox = 0; ox < ow; ox++) {
			float best[MAXB];
			int32_t bi[MAXB];
			for (int l = 0; l < B; l++) {
				best[l] = -INFINITY;
				bi[l] = -1;
			}
			for (int ki = 0; ki < 3; ki++) {
				int iy = oy * 2 - 1 + ki;
				if (iy < 0 || iy >= h)
					continue;
				for (int kj = 0; kj < 3; kj++) {
					int ix = ox * 2 - 1 + kj;
					if (ix < 0 || ix >= w)
						continue;
					const float *v = x + ((size_t)iy * w + ix) * B;
					for (int l = 0; l < B; l++)
						if (v[l] > best[l] || isnan(v[l]) || bi[l] < 0) {
							best[l] = v[l];
							bi[l] = iy * w + ix;
						}
				}
			}
			size_t o = ((size_t)oy * ow + ox) * B;
			for (int l = 0; l < B; l++) {
				y[o + l] = best[l];
				am[o + l] = bi[l];
			}
		}
}

void maxpool_forward_blk(float *out, int32_t *argmax, const float *in, int n, int c, int h,
                         int w, int oh, int ow, int blk)
{
	bk_job j = { .out = out, .amax = argmax, .in = in, .n = n, .c = c, .h = h, .w = w,
		.oh = oh, .ow = ow, .blk = blk };

	check_pool(c, blk, "maxpool");
	nn_parallel(n * (c / blk), maxpool_item, &j);
}

static void maxpool_bwd_item(void *ctx, int i, int tid)
{
	const bk_job *j = ctx;
	int B = j->blk;
	size_t in_len = (size_t)j->h * j->w * B, out_len = (size_t)j->oh * j->ow * B;
	float *dx = j->din + (size_t)i * in_len;
	const float *dy = j->dout + (size_t)i * out_len;
	const int32_t *am = j->argmax + (size_t)i * out_len;
	(void)tid;

	if (j->flags & NN_OVERWRITE)
		memset(dx, 0, sizeof(float) * in_len);
	for (size_t o = 0; o < out_len; o += B)
		for (int l = 0; l < B; l++)
			dx[(size_t)am[o + l] * B + l] += dy[o + l];
}

void maxpool_backward_blk(float *din, const float *dout, const int32_t *argmax, int n, int c,
                          int h, int w, int oh, int ow, int flags, int blk)
{
	bk_job j = { .din = din, .dout = dout, .argmax = argmax, .n = n, .c = c, .h = h, .w = w,
		.oh = oh, .ow = ow, .blk = blk, .flags = flags };

	check_pool(c, blk, "maxpool");
	nn_parallel(n * (c / blk), maxpool_bwd_item, &j);
}

static void avgpool_item(void *ctx, int i, int tid)
{
	const bk_job *j = ctx;
	int B = j->blk, cb = j->c / B;
	size_t hw = (size_t)j->h;
	const float *x = j->in + (size_t)i * hw * B;
	double s[MAXB] = { 0 };
	(void)tid;

	for (size_t p = 0; p < hw; p++)
		for (int l = 0; l < B; l++)
			s[l] += x[p * B + l];
	for (int l = 0; l < B; l++)
		j->out[(size_t)(i / cb) * j->c + (i % cb) * B + l] = (float)(s[l] / (double)hw);
}

void avgpool_forward_blk(float *out, const float *in, int n, int c, int hw, int blk)
{
	bk_job j = { .out = out, .in = in, .n = n, .c = c, .h = hw, .w = 1, .blk = blk };

	check_pool(c, blk, "avgpool");
	nn_parallel(n * (c / blk), avgpool_item, &j);
}

static void avgpool_bwd_item(void *ctx, int i, int tid)
{
	const bk_job *j = ctx;
	int B = j->blk, cb = j->c / B;
	size_t hw = (size_t)j->h;
	float g[MAXB], *dx = j->din + (size_t)i * hw * B;
	(void)tid;

	for (int l = 0; l < B; l++)
		g[l] = j->dout[(size_t)(i / cb) * j->c + (i % cb) * B + l] / (float)hw;
	for (size_t p = 0; p < hw; p++)
		for (int l = 0; l < B; l++)
			dx[p * B + l] = (j->flags & NN_OVERWRITE ? 0.0f : dx[p * B + l]) + g[l];
}

void avgpool_backward_blk(float *din, const float *dout, int n, int c, int hw, int flags,
                          int blk)
{
	bk_job j = { .din = din, .dout = dout, .n = n, .c = c, .h = hw, .w = 1, .blk = blk,
		.flags = flags };

	check_pool(c, blk, "avgpool");
	nn_parallel(n * (c / blk), avgpool_bwd_item, &j);
}

/* ---- layout copies ---- */

void nn_to_blocked(float *dst, const float *src, int n, int c, int hw, int blk)
{
	check_blk(c, blk, "nn_to_blocked");
	for (int i = 0; i < n; i++)
		for (int ch = 0; ch < c; ch++)
			for (int p = 0; p < hw; p++)
				dst[(((size_t)i * (c / blk) + ch / blk) * hw + p) * blk + ch % blk] =
					src[((size_t)i * c + ch) * hw + p];
}

void nn_from_blocked(float *dst, const float *src, int n, int c, int hw, int blk)
{
	check_blk(c, blk, "nn_from_blocked");
	for (int i = 0; i < n; i++)
		for (int ch = 0; ch < c; ch++)
			for (int p = 0; p < hw; p++)
				dst[((size_t)i * c + ch) * hw + p] =
					src[(((size_t)i * (c / blk) + ch / blk) * hw + p) * blk + ch % blk];
}
