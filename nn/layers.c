/* ResNet layers, forward and backward: conv (im2col + sgemm), batchnorm, ReLU, pools, linear, loss. */
#include "layers.h"
#include "io.h"
#include "onednn.h"
#include "simd.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

/* ---- convolution ---- */

static int is_pointwise(const conv_geom *g)
{
	return g->kh == 1 && g->kw == 1 && g->stride == 1 && g->pad == 0;
}

/* col[c*kh*kw, oh*ow] from one image im[c, h, w]; rows ld floats apart. */
static void im2col(float *col, size_t ld, const float *im, const conv_geom *g)
{
	for (int c = 0; c < g->c; c++)
		for (int ki = 0; ki < g->kh; ki++)
			for (int kj = 0; kj < g->kw; kj++) {
				float *dst = col + ((size_t)(c * g->kh + ki) * g->kw + kj) * ld;
				const float *src = im + (size_t)c * g->h * g->w;
				for (int oy = 0; oy < g->oh; oy++, dst += g->ow) {
					int iy = oy * g->stride - g->pad + ki;
					if (iy < 0 || iy >= g->h) {
						memset(dst, 0, sizeof(float) * g->ow);
						continue;
					}
					const float *row = src + (size_t)iy * g->w;
					if (g->stride == 1) {
						/* ix = ox - pad + kj: zero the edges, copy the middle */
						int lo = g->pad - kj, hi = g->w + g->pad - kj;
						if (lo < 0) lo = 0;
						if (hi > g->ow) hi = g->ow;
						if (hi < lo) hi = lo;
						memset(dst, 0, sizeof(float) * lo);
						memcpy(dst + lo, row + lo - g->pad + kj, sizeof(float) * (hi - lo));
						memset(dst + hi, 0, sizeof(float) * (g->ow - hi));
					} else {
						for (int ox = 0; ox < g->ow; ox++) {
							int ix = ox * g->stride - g->pad + kj;
							dst[ox] = ix >= 0 && ix < g->w ? row[ix] : 0.0f;
						}
					}
				}
			}
}

/* im[c, h, w] += col2im(col[c*kh*kw, oh*ow]); rows ld floats apart. */
NN_CLONES
static void col2im_add(float *im, const float *col, size_t ld, const conv_geom *g)
{
	for (int c = 0; c < g->c; c++)
		for (int ki = 0; ki < g->kh; ki++)
			for (int kj = 0; kj < g->kw; kj++) {
				const float *src = col + ((size_t)(c * g->kh + ki) * g->kw + kj) * ld;
				float *dst = im + (size_t)c * g->h * g->w;
				for (int oy = 0; oy < g->oh; oy++, src += g->ow) {
					int iy = oy * g->stride - g->pad + ki;
					if (iy < 0 || iy >= g->h)
						continue;
					float *row = dst + (size_t)iy * g->w;
					if (g->stride == 1) {
						int lo = g->pad - kj, hi = g->w + g->pad - kj;
						if (lo < 0) lo = 0;
						if (hi > g->ow) hi = g->ow;
						float *r = row - g->pad + kj;
						for (int ox = lo; ox < hi; ox++)
							r[ox] += src[ox];
					} else {
						for (int ox = 0; ox < g->ow; ox++) {
							int ix = ox * g->stride - g->pad + kj;
							if (ix >= 0 && ix < g->w)
								row[ix] += src[ox];
						}
					}
				}
			}
}

/*
 * Work is split over groups of images. A group of one image multiplies straight into
 * NCHW (1x1 stride-1 convs need no im2col at all). Small feature maps gather several
 * images side by side into one wider matrix, [k, group * oh*ow], so that one sgemm has
 * enough columns to run near peak; the results are scattered back to NCHW.
 */
typedef struct {
	float *out, *din, *dw, *dbias;
	const float *in, *w, *bias, *dout;
	const conv_geom *g;
	float *scratch;
	size_t per_thread;
	int flags, group;
} conv_job;

#define GROUP_COLS 256          /* aim for at least this many sgemm columns */

static int conv_group(const conv_geom *g)
{
	size_t ohw = (size_t)g->oh * g->ow;

	int G = ohw >= GROUP_COLS ? 1 : (int)((GROUP_COLS + ohw - 1) / ohw);

	/* Not a function of the thread count: sgemm's rounding depends on its shape, so a
	 * grouping that followed the threads would make results depend on them. */
	return G < g->n ? G : g->n;
}

/* floats of im2col buffer per thread */
static size_t conv_col_floats(const conv_geom *g, int group)
{
	size_t cols = (size_t)group * g->oh * g->ow;

	if (group == 1 && is_pointwise(g))
		return 0;
	return (size_t)g->c * g->kh * g->kw * cols;
}

static int group_size(const conv_job *j, int q)
{
	int left = j->g->n - q * j->group;
	return left < j->group ? left : j->group;
}

/* y[x] = y[x] + b, and ReLU with NN_RELU, over count floats */
NN_CLONES
static void bias_relu(float *dst, const float *src, size_t count, float b, int relu)
{
	if (relu)
		for (size_t x = 0; x < count; x++)
			dst[x] = src[x] + b > 0.0f ? src[x] + b : 0.0f;
	else
		for (size_t x = 0; x < count; x++)
			dst[x] = src[x] + b;
}

static void conv_fwd_group(void *ctx, int q, int tid)
{
	conv_job *j = ctx;
	const conv_geom *g = j->g;
	size_t ohw = (size_t)g->oh * g->ow, k = (size_t)g->c * g->kh * g->kw;
	size_t isz = (size_t)g->c * g->h * g->w, osz = (size_t)g->oc * ohw;
	int gn = group_size(j, q), i0 = q * j->group, relu = j->flags & NN_RELU;
	size_t ld = (size_t)gn * ohw;
	float *col = j->scratch + (size_t)tid * j->per_thread;

	if (j->group == 1) {
		const float *in = j->in + (size_t)i0 * isz, *b = in;
		float *out = j->out + (size_t)i0 * osz;
		if (!is_pointwise(g)) {
			im2col(col, ohw, in, g);
			b = col;
		}
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->oc, (int)ohw, (int)k,
		            1.0f, j->w, (int)k, b, (int)ohw, 0.0f, out, (int)ohw);
		if (j->bias || relu)
			for (int o = 0; o < g->oc; o++)
				bias_relu(out + o * ohw, out + o * ohw, ohw, j->bias ? j->bias[o] : 0.0f, relu);
		return;
	}
	float *tmp = col + k * ld;
	for (int i = 0; i < gn; i++)
		im2col(col + i * ohw, ld, j->in + (size_t)(i0 + i) * isz, g);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->oc, (int)ld, (int)k, 1.0f,
	            j->w, (int)k, col, (int)ld, 0.0f, tmp, (int)ld);
	for (int i = 0; i < gn; i++) {
		float *out = j->out + (size_t)(i0 + i) * osz;
		for (int o = 0; o < g->oc; o++)
			bias_relu(out + o * ohw, tmp + o * ld + i * ohw, ohw, j->bias ? j->bias[o] : 0.0f,
			          relu);
	}
}

/* Groups run on the layer threads, each sgemm single-threaded: a threaded sgemm splits
 * its columns by the thread count and rounds differently, and the forward pass must give
 * the same bits whatever --threads is. */
static void run_groups(int count, void (*fn)(void *, int, int), void *ctx)
{
	nn_parallel(count, fn, ctx);
}

void conv2d_forward(float *out, const float *in, const float *w, const float *bias,
                    const conv_geom *g, int flags)
{
	conv_job j = { .out = out, .in = in, .w = w, .bias = bias, .g = g, .flags = flags };
	int groups;

	if (onednn_conv_forward(out, in, w, bias, g, flags))
		return;
	if (g->blk_in || g->blk_out)
		die(EXIT_USAGE, "conv2d_forward: a blocked layout without oneDNN (conv2d_blocked_ok)");

	j.group = conv_group(g);
	groups = (g->n + j.group - 1) / j.group;
	j.per_thread = conv_col_floats(g, j.group) +
	               (j.group > 1 ? (size_t)g->oc * j.group * g->oh * g->ow : 0);
	j.scratch = nn_scratch(j.per_thread * nn_threads() + 1);
	run_groups(groups, conv_fwd_group, &j);
}

static void conv_bwd_group(void *ctx, int q, int tid)
{
	conv_job *j = ctx;
	const conv_geom *g = j->g;
	size_t ohw = (size_t)g->oh * g->ow, k = (size_t)g->c * g->kh * g->kw;
	size_t isz = (size_t)g->c * g->h * g->w, osz = (size_t)g->oc * ohw;
	int gn = group_size(j, q), i0 = q * j->group, over = j->flags & NN_OVERWRITE;
	size_t ld = (size_t)gn * ohw, col_n = conv_col_floats(g, j->group);
	size_t dg_n = j->group > 1 ? (size_t)g->oc * j->group * ohw : 0;
	float *mine = j->scratch + (size_t)tid * j->per_thread;
	float *col = mine, *dg = mine + col_n, *dw = j->dw, *db = j->dbias;
	const float *dout = j->dout + (size_t)i0 * osz, *b;

	if (tid > 0) {           /* threads other than 0 sum into private gradients */
		dw = mine + col_n + dg_n;
		db = dw + (size_t)g->oc * k;
	}
	if (j->dbias)
		for (int i = 0; i < gn; i++)
			for (int o = 0; o < g->oc; o++) {
				const float *p = dout + i * osz + (size_t)o * ohw;
				float s = 0;
				for (size_t x = 0; x < ohw; x++)
					s += p[x];
				db[o] += s;
			}
	if (j->group > 1) {      /* gather dout side by side: dg[oc, gn * ohw] */
		for (int i = 0; i < gn; i++)
			for (int o = 0; o < g->oc; o++)
				memcpy(dg + o * ld + i * ohw, dout + i * osz + o * ohw, sizeof(float) * ohw);
		dout = dg;
	}
	if (j->dw) {
		b = j->in + (size_t)i0 * isz;
		if (col_n) {
			for (int i = 0; i < gn; i++)
				im2col(col + i * ohw, ld, j->in + (size_t)(i0 + i) * isz, g);
			b = col;
		}
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->oc, (int)k, (int)ld,
		            1.0f, dout, (int)ld, b, (int)ld, 1.0f, dw, (int)k);
	}
	if (j->din) {
		float *din = j->din + (size_t)i0 * isz;
		if (!col_n) {        /* one image, 1x1 stride 1: straight into din */
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)ohw, g->oc,
			            1.0f, j->w, (int)k, dout, (int)ohw, over ? 0.0f : 1.0f, din, (int)ohw);
			return;
		}
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)ld, g->oc,
		            1.0f, j->w, (int)k, dout, (int)ld, 0.0f, col, (int)ld);
		for (int i = 0; i < gn; i++) {
			if (over)       /* zero this image's slice while it is about to be hot */
				memset(din + i * isz, 0, sizeof(float) * isz);
			col2im_add(din + i * isz, col + i * ohw, ld, g);
		}
	}
}

void conv2d_backward(float *din, float *dw, float *dbias, const float *dout,
                     const float *in, const float *w, const conv_geom *g, int flags)
{
	conv_job j = { .din = din, .dw = dw, .dbias = dbias, .in = in, .w = w, .dout = dout, .g = g,
		.flags = flags };
	size_t wn = (size_t)g->oc * g->c * g->kh * g->kw, priv;
	int t = nn_threads(), groups, used;

	if (onednn_conv_backward(din, dw, dbias, dout, in, w, g, flags))
		return;
	if (g->blk_in || g->blk_out)
		die(EXIT_USAGE, "conv2d_backward: a blocked layout without oneDNN (conv2d_blocked_ok)");

	j.group = conv_group(g);
	groups = (g->n + j.group - 1) / j.group;
	used = groups < t ? 1 : t;
	priv = conv_col_floats(g, j.group) +
	       (j.group > 1 ? (size_t)g->oc * j.group * g->oh * g->ow : 0);
	j.per_thread = priv + wn + g->oc;
	j.scratch = nn_scratch(j.per_thread * t + 1);
	for (int k = 1; k < used; k++)
		memset(j.scratch + k * j.per_thread + priv, 0, sizeof(float) * (wn + g->oc));
	run_groups(groups, conv_bwd_group, &j);
	for (int k = 1; k < used; k++) {
		const float *p = j.scratch + k * j.per_thread + priv;
		if (dw)
			for (size_t x = 0; x < wn; x++)
				dw[x] += p[x];
		if (dbias)
			for (int o = 0; o < g->oc; o++)
				dbias[o] += p[wn + o];
	}
}

void conv2d_naive_forward(float *out, const float *in, const float *w, const float *bias,
                          const conv_geom *g)
{
	for (int n = 0; n < g->n; n++)
		for (int o = 0; o < g->oc; o++)
			for (int oy = 0; oy < g->oh; oy++)
				for (int ox = 0; ox < g->ow; ox++) {
					double s = bias ? bias[o] : 0.0;
					for (int c = 0; c < g->c; c++)
						for (int ki = 0; ki < g->kh; ki++)
							for (int kj = 0; kj < g->kw; kj++) {
								int iy = oy * g->stride - g->pad + ki;
								int ix = ox * g->stride - g->pad + kj;
								if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
									continue;
								s += (double)in[(((size_t)n * g->c + c) * g->h + iy) * g->w + ix] *
								     w[(((size_t)o * g->c + c) * g->kh + ki) * g->kw + kj];
							}
					out[(((size_t)n * g->oc + o) * g->oh + oy) * g->ow + ox] = (float)s;
				}
}

/* ---- batch normalization ---- */

/* Sums of d = x - shift and d * d over n floats: 16 float lanes (so the compiler can
 * vectorize without reassociating), added into double per call. */
NN_CLONES
static void sum2(const float *x, size_t n, float shift, double *s, double *ss)
{
	float a[16] = { 0 }, b[16] = { 0 };
	double sa = 0, sb = 0;
	size_t i = 0;

	for (; i + 16 <= n; i += 16)
		for (int k = 0; k < 16; k++) {
			float d = x[i + k] - shift;
			a[k] += d;
			b[k] += d * d;
		}
	for (; i < n; i++) {
		double d = (double)x[i] - shift;
		sa += d;
		sb += d * d;
	}
	for (int k = 0; k < 16; k++) {
		sa += a[k];
		sb += b[k];
	}
	*s += sa;
	*ss += sb;
}

/* Sums of g and g * (x - m) where g = dy, masked by r > 0 when r is not NULL. */
NN_CLONES
static void sum_dy(const float *dy, const float *x, const float *r, size_t n, float m,
                   double *s, double *sx)
{
	float a[16] = { 0 }, b[16] = { 0 };
	double sa = 0, sb = 0;
	size_t i = 0;

	for (; i + 16 <= n; i += 16)
		for (int k = 0; k < 16; k++) {
			float g = r && !(r[i + k] > 0.0f) ? 0.0f : dy[i + k];
			a[k] += g;
			b[k] += g * (x[i + k] - m);
		}
	for (; i < n; i++) {
		double g = r && !(r[i] > 0.0f) ? 0.0 : dy[i];
		sa += g;
		sb += g * ((double)x[i] - m);
	}
	for (int k = 0; k < 16; k++) {
		sa += a[k];
		sb += b[k];
	}
	*s += sa;
	*sx += sb;
}

typedef struct {
	float *out, *mean, *rstd, *run_mean, *run_var, *din, *dgamma, *dbeta;
	const float *in, *gamma, *beta, *dout, *cmean, *crstd, *relu_out;
	int n, c, hw, flags;
	float momentum, eps;
} bn_job;

/* y = x * a + b over one channel of every image, ReLU with NN_RELU */
NN_CLONES
static void bn_apply(bn_job *j, int ch, float a, float b)
{
	size_t hw = j->hw, cs = (size_t)j->c * hw;

	for (int n = 0; n < j->n; n++) {
		const float *x = j->in + n * cs + ch * hw;
		float *y = j->out + n * cs + ch * hw;
		if (j->flags & NN_RELU)
			for (size_t i = 0; i < hw; i++) {
				float v = x[i] * a + b;
				y[i] = v > 0.0f ? v : 0.0f;
			}
		else
			for (size_t i = 0; i < hw; i++)
				y[i] = x[i] * a + b;
	}
}

static void bn_train_channel(void *ctx, int ch, int tid)
{
	bn_job *j = ctx;
	size_t hw = j->hw, cs = (size_t)j->c * hw;
	double s = 0, ss = 0, cnt = (double)j->n * hw;
	(void)tid;

	/* one pass: sums in double, shifted by the first value against cancellation */
	float shift = j->in[ch * hw];
	for (int n = 0; n < j->n; n++)
		sum2(j->in + n * cs + ch * hw, hw, shift, &s, &ss);
	double dm = s / cnt, mean = shift + dm;
	ss = ss - s * dm;           /* sum of squared deviations from the mean */
	if (ss < 0)
		ss = 0;
	double var = ss / cnt;
	float rstd = (float)(1.0 / sqrt(var + j->eps));
	float m = (float)mean, a = rstd * j->gamma[ch], b = j->beta[ch] - m * a;
	bn_apply(j, ch, a, b);
	j->mean[ch] = m;
	j->rstd[ch] = rstd;
	if (j->run_mean) {
		double unbiased = cnt > 1 ? ss / (cnt - 1) : var;
		j->run_mean[ch] = (1 - j->momentum) * j->run_mean[ch] + j->momentum * (float)mean;
		j->run_var[ch] = (1 - j->momentum) * j->run_var[ch] + j->momentum * (float)unbiased;
	}
}

void batchnorm_forward_train(float *out, float *mean, float *rstd, float *run_mean,
                             float *run_var, const float *in, const float *gamma,
                             const float *beta, int n, int c, int hw, float momentum, float eps,
                             int flags)
{
	bn_job j = { .out = out, .mean = mean, .rstd = rstd, .run_mean = run_mean,
		.run_var = run_var, .in = in, .gamma = gamma, .beta = beta, .n = n, .c = c,
		.hw = hw, .momentum = momentum, .eps = eps, .flags = flags };
	nn_parallel(c, bn_train_channel, &j);
}

static void bn_eval_channel(void *ctx, int ch, int tid)
{
	bn_job *j = ctx;
	float a = j->gamma[ch] / sqrtf(j->run_var[ch] + j->eps);
	float b = j->beta[ch] - j->run_mean[ch] * a;
	(void)tid;

	bn_apply(j, ch, a, b);
}

void batchnorm_forward_eval(float *out, const float *in, const float *gamma, const float *beta,
                            const float *run_mean, const float *run_var, int n, int c, int hw,
                            float eps, int flags)
{
	bn_job j = { .out = out, .in = in, .gamma = gamma, .beta = beta,
		.run_mean = (float *)run_mean, .run_var = (float *)run_var, .n = n, .c = c,
		.hw = hw, .eps = eps, .flags = flags };
	nn_parallel(c, bn_eval_channel, &j);
}

NN_CLONES
static void bn_bwd_channel(void *ctx, int ch, int tid)
{
	bn_job *j = ctx;
	size_t hw = j->hw, cs = (size_t)j->c * hw;
	float m = j->cmean[ch], r = j->crstd[ch];
	double sdy = 0, sdyx = 0, cnt = (double)j->n * hw;
	(void)tid;

	for (int n = 0; n < j->n; n++)
		sum_dy(j->dout + n * cs + ch * hw, j->in + n * cs + ch * hw,
		       j->relu_out ? j->relu_out + n * cs + ch * hw : NULL, hw, m, &sdy, &sdyx);
	sdyx *= r;              /* sum dy * xhat */
	if (j->dgamma)
		j->dgamma[ch] += (float)sdyx;
	if (j->dbeta)
		j->dbeta[ch] += (float)sdy;
	if (!j->din)
		return;
	/* dx = a * (dy - mdy - (x - m) * r * mdyx) = a * dy + c1 * x + c0 */
	float a = r * j->gamma[ch], mdy = (float)(sdy / cnt), mdyx = (float)(sdyx / cnt);
	float c1 = -a * r * mdyx, c0 = -a * mdy - c1 * m;
	int over = j->flags & NN_OVERWRITE;
	for (int n = 0; n < j->n; n++) {
		const float *x = j->in + n * cs + ch * hw, *dy = j->dout + n * cs + ch * hw;
		const float *ro = j->relu_out ? j->relu_out + n * cs + ch * hw : NULL;
		float *dx = j->din + n * cs + ch * hw;
		if (ro && over)
			for (size_t i = 0; i < hw; i++)
				dx[i] = a * (ro[i] > 0.0f ? dy[i] : 0.0f) + c1 * x[i] + c0;
		else if (ro)
			for (size_t i = 0; i < hw; i++)
				dx[i] += a * (ro[i] > 0.0f ? dy[i] : 0.0f) + c1 * x[i] + c0;
		else if (over)
			for (size_t i = 0; i < hw; i++)
				dx[i] = a * dy[i] + c1 * x[i] + c0;
		else
			for (size_t i = 0; i < hw; i++)
				dx[i] += a * dy[i] + c1 * x[i] + c0;
	}
}

void batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                        const float *in, const float *mean, const float *rstd,
                        const float *gamma, const float *relu_out, int n, int c, int hw,
                        int flags)
{
	bn_job j = { .din = din, .dgamma = dgamma, .dbeta = dbeta, .dout = dout, .in = in,
		.cmean = mean, .crstd = rstd, .gamma = gamma, .relu_out = relu_out, .n = n, .c = c,
		.hw = hw, .flags = flags };
	nn_parallel(c, bn_bwd_channel, &j);
}

void batchnorm_fold(float *wf, float *bf, const float *w, const float *bias, const float *gamma,
                    const float *beta, const float *run_mean, const float *run_var,
                    int oc, size_t k, float eps)
{
	for (int o = 0; o < oc; o++) {
		float s = gamma[o] / sqrtf(run_var[o] + eps);
		for (size_t x = 0; x < k; x++)
			wf[o * k + x] = w[o * k + x] * s;
		bf[o] = beta[o] - run_mean[o] * s + (bias ? bias[o] * s : 0.0f);
	}
}

/* ---- elementwise ---- */

#define CHUNK 65536

typedef struct {
	float *out;
	const float *a, *b;
	size_t count;
} ew_job;

NN_CLONES
static void relu_chunk(void *ctx, int i, int tid)
{
	ew_job *j = ctx;
	size_t lo = (size_t)i * CHUNK, hi = lo + CHUNK < j->count ? lo + CHUNK : j->count;
	(void)tid;
	for (size_t x = lo; x < hi; x++)
		j->out[x] = j->a[x] > 0.0f ? j->a[x] : 0.0f;
}

void relu_forward(float *out, const float *in, size_t count)
{
	ew_job j = { out, in, NULL, count };
	nn_parallel((int)((count + CHUNK - 1) / CHUNK), relu_chunk, &j);
}

NN_CLONES
static void relu_bwd_chunk(void *ctx, int i, int tid)
{
	ew_job *j = ctx;
	size_t lo = (size_t)i * CHUNK, hi = lo + CHUNK < j->count ? lo + CHUNK : j->count;
	(void)tid;
	if (j->out == j->a) {
		for (size_t x = lo; x < hi; x++)
			if (!(j->b[x] > 0.0f))
				j->out[x] = 0.0f;
	} else {
		for (size_t x = lo; x < hi; x++)
			if (j->b[x] > 0.0f)
				j->out[x] += j->a[x];
	}
}

void relu_backward(float *din, const float *dout, const float *out, size_t count)
{
	ew_job j = { din, dout, out, count };
	nn_parallel((int)((count + CHUNK - 1) / CHUNK), relu_bwd_chunk, &j);
}

NN_CLONES
static void add_chunk(void *ctx, int i, int tid)
{
	ew_job *j = ctx;
	size_t lo = (size_t)i * CHUNK, hi = lo + CHUNK < j->count ? lo + CHUNK : j->count;
	(void)tid;
	for (size_t x = lo; x < hi; x++)
		j->out[x] = j->a[x] + j->b[x];
}

void add_forward(float *out, const float *a, const float *b, size_t count)
{
	ew_job j = { out, a, b, count };
	nn_parallel((int)((count + CHUNK - 1) / CHUNK), add_chunk, &j);
}

void add_backward(float *da, float *db, const float *dout, size_t count)
{
	if (da && da != dout)
		add_forward(da, da, dout, count);
	if (db && db != dout)
		add_forward(db, db, dout, count);
}

/* ---- pooling ---- */

int maxpool_out(int h)
{
	return (h + 2 - 3) / 2 + 1;
}

/* NCHW is the blocked layout with blocks of one channel (nn/blocked.c). */
void maxpool_forward(float *out, int32_t *argmax, const float *in, int n, int c, int h, int w,
                     int oh, int ow)
{
	maxpool_forward_blk(out, argmax, in, n, c, h, w, oh, ow, 1);
}

void maxpool_backward(float *din, const float *dout, const int32_t *argmax, int n, int c,
                      int h, int w, int oh, int ow, int flags)
{
	maxpool_backward_blk(din, dout, argmax, n, c, h, w, oh, ow, flags, 1);
}

void avgpool_forward(float *out, const float *in, int n, int c, int hw)
{
	avgpool_forward_blk(out, in, n, c, hw, 1);
}

void avgpool_backward(float *din, const float *dout, int n, int c, int hw, int flags)
{
	avgpool_backward_blk(din, dout, n, c, hw, flags, 1);
}

/* ---- linear and loss ---- */

void linear_forward(float *out, const float *in, const float *w, const float *b,
                    int n, int in_f, int out_f)
{
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out_f, in_f, 1.0f, in, in_f,
	            w, in_f, 0.0f, out, out_f);
	if (b)
		for (int i = 0; i < n; i++)
			for (int o = 0; o < out_f; o++)
				out[(size_t)i * out_f + o] += b[o];
}

void linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, int n, int in_f, int out_f, int flags)
{
	if (dw)
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_f, in_f, n, 1.0f, dout,
		            out_f, in, in_f, 1.0f, dw, in_f);
	if (db)
		for (int i = 0; i < n; i++)
			for (int o = 0; o < out_f; o++)
				db[o] += dout[(size_t)i * out_f + o];
	if (din)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in_f, out_f, 1.0f, dout,
		            out_f, w, in_f, flags & NN_OVERWRITE ? 0.0f : 1.0f, din, in_f);
}

double softmax_xent_forward(float *probs, float *losses, const float *logits, const int *labels,
                            int n, int k, float smoothing)
{
	double total = 0;

	for (int i = 0; i < n; i++) {
		const float *z = logits + (size_t)i * k;
		float *p = probs + (size_t)i * k;
		double mx = -INFINITY, s = 0, sumz = 0;
		for (int c = 0; c < k; c++)
			if (z[c] > mx)
				mx = z[c];
		for (int c = 0; c < k; c++) {
			double e = exp(z[c] - mx);
			p[c] = (float)e;
			s += e;
			sumz += z[c];
		}
		double lse = mx + log(s);
		for (int c = 0; c < k; c++)
			p[c] = (float)(p[c] / s);
		double nll = lse - z[labels[i]];
		double smooth = lse - sumz / k;     /* mean_c -log p[c] */
		double l = (1.0 - smoothing) * nll + smoothing * smooth;
		if (losses)
			losses[i] = (float)l;
		total += l;
	}
	return total / n;
}

void softmax_xent_backward(float *dlogits, const float *probs, const int *labels, int n, int k,
                           float smoothing)
{
	float inv = 1.0f / n, off = smoothing / k;

	for (int i = 0; i < n; i++)
		for (int c = 0; c < k; c++) {
			float t = off + (c == labels[i] ? 1.0f - smoothing : 0.0f);
			dlogits[(size_t)i * k + c] += (probs[(size_t)i * k + c] - t) * inv;
		}
}
