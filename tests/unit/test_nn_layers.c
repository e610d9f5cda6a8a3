/* Unit tests of the nn layers: im2col conv against the naive oracle and finite-difference gradients. */
#include "check.h"
#include "layers.h"
#include "io.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rs = 12345;

static float frand(void)   /* uniform in [-1, 1) */
{
	rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
	return (float)((rs >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

static float *rnd(size_t n)
{
	float *p = xmalloc(sizeof(float) * (n ? n : 1));
	for (size_t i = 0; i < n; i++)
		p[i] = frand();
	return p;
}

static double dot(const float *a, const float *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

/*
 * A layer under test as a scalar function: loss(x) = sum(forward(x) * r). Numerical
 * derivatives by central differences over a sample of coordinates of one input tensor,
 * compared with the analytic gradient from backward(dout = r).
 */
typedef double (*lossfn)(void *ctx);

static double numgrad(lossfn f, void *ctx, float *x, size_t i, float h)
{
	float keep = x[i];
	x[i] = keep + h;
	double a = f(ctx);
	x[i] = keep - h;
	double b = f(ctx);
	x[i] = keep;
	return (a - b) / (2.0 * h);
}

/* max over sampled i of |num - ana| / max(|num|, |ana|, floor) */
static double gradcheck(lossfn f, void *ctx, float *x, const float *ana, size_t n, float h,
                        double floor)
{
	double worst = 0;
	size_t step = n > 40 ? n / 40 : 1;
	for (size_t i = 0; i < n; i += step) {
		double num = numgrad(f, ctx, x, i, h), a = ana[i];
		double s = fabs(num) > fabs(a) ? fabs(num) : fabs(a);
		if (s < floor)
			s = floor;
		double e = fabs(num - a) / s;
		if (e > worst)
			worst = e;
	}
	return worst;
}

/* ---- conv ---- */

typedef struct {
	conv_geom g;
	float *in, *w, *b, *out, *r;
} conv_ctx;

static double conv_loss(void *p)
{
	conv_ctx *c = p;
	conv2d_naive_forward(c->out, c->in, c->w, c->b, &c->g);
	return dot(c->out, c->r, (size_t)c->g.n * c->g.oc * c->g.oh * c->g.ow);
}

static void test_conv(int n, int ch, int h, int w, int oc, int k, int stride, int pad, int bias)
{
	conv_ctx c = { .g = { .n = n, .c = ch, .h = h, .w = w, .oc = oc, .kh = k, .kw = k,
		.stride = stride, .pad = pad } };
	conv2d_shape(&c.g);
	size_t ni = (size_t)n * ch * h * w, nw = (size_t)oc * ch * k * k;
	size_t no = (size_t)n * oc * c.g.oh * c.g.ow;
	c.in = rnd(ni);
	c.w = rnd(nw);
	c.b = bias ? rnd(oc) : NULL;
	c.out = xmalloc(sizeof(float) * no);
	c.r = rnd(no);
	float *fast = xmalloc(sizeof(float) * no);
	conv2d_forward(fast, c.in, c.w, c.b, &c.g, 0);
	conv2d_naive_forward(c.out, c.in, c.w, c.b, &c.g);
	CHECK(max_rel_err(fast, c.out, no, 1.0) < 1e-5,
	      "conv2d im2col == naive n%d c%d %dx%d oc%d k%d s%d p%d bias%d", n, ch, h, w, oc, k,
	      stride, pad, bias);

	float *din = calloc(ni, sizeof(float)), *dw = calloc(nw, sizeof(float));
	float *db = calloc(oc, sizeof(float));
	/* accumulate: run backward twice from half the gradient */
	for (size_t i = 0; i < no; i++)
		c.r[i] *= 0.5f;
	for (size_t i = 0; i < ni; i++)
		din[i] = NAN;               /* overwritten by the first, accumulated by the second */
	conv2d_backward(din, dw, bias ? db : NULL, c.r, c.in, c.w, &c.g, NN_OVERWRITE);
	conv2d_backward(din, dw, bias ? db : NULL, c.r, c.in, c.w, &c.g, 0);
	for (size_t i = 0; i < no; i++)
		c.r[i] *= 2.0f;
	CHECK(gradcheck(conv_loss, &c, c.in, din, ni, 1e-2f, 1e-2) < 2e-3,
	      "conv2d dinput k%d s%d p%d", k, stride, pad);
	CHECK(gradcheck(conv_loss, &c, c.w, dw, nw, 1e-2f, 1e-2) < 2e-3,
	      "conv2d dweight k%d s%d p%d", k, stride, pad);
	if (bias)
		CHECK(gradcheck(conv_loss, &c, c.b, db, oc, 1e-2f, 1e-2) < 2e-3, "conv2d dbias");
	free(c.in); free(c.w); free(c.b); free(c.out); free(c.r); free(fast);
	free(din); free(dw); free(db);
}

/* ---- batchnorm ---- */

typedef struct {
	int n, c, hw, relu;
	float *in, *g, *b, *out, *r, *mean, *rstd;
} bn_ctx;

static double bn_loss(void *p)
{
	bn_ctx *c = p;
	batchnorm_forward_train(c->out, c->mean, c->rstd, NULL, NULL, c->in, c->g, c->b, c->n,
	                        c->c, c->hw, 0.1f, 1e-5f, c->relu ? NN_RELU : 0);
	return dot(c->out, c->r, (size_t)c->n * c->c * c->hw);
}

static void test_bn(void)
{
	bn_ctx c = { .n = 4, .c = 3, .hw = 5 };
	size_t N = (size_t)c.n * c.c * c.hw;
	c.in = rnd(N);
	c.g = rnd(c.c);
	c.b = rnd(c.c);
	c.out = xmalloc(sizeof(float) * N);
	c.r = rnd(N);
	c.mean = xmalloc(sizeof(float) * c.c);
	c.rstd = xmalloc(sizeof(float) * c.c);
	float rm[3] = { 0.5f, -1, 2 }, rv[3] = { 1, 2, 0.5f };
	batchnorm_forward_train(c.out, c.mean, c.rstd, rm, rv, c.in, c.g, c.b, c.n, c.c, c.hw,
	                        0.1f, 1e-5f, 0);
	/* running stats: momentum 0.1 with the unbiased variance, as torch */
	double s = 0, ss = 0, cnt = c.n * c.hw;
	for (int n = 0; n < c.n; n++)
		for (int i = 0; i < c.hw; i++)
			s += c.in[(size_t)n * c.c * c.hw + i];
	double mean = s / cnt;
	for (int n = 0; n < c.n; n++)
		for (int i = 0; i < c.hw; i++) {
			double d = c.in[(size_t)n * c.c * c.hw + i] - mean;
			ss += d * d;
		}
	CHECK(fabs(rm[0] - (0.9 * 0.5 + 0.1 * mean)) < 1e-6, "batchnorm running_mean update");
	CHECK(fabs(rv[0] - (0.9 * 1.0 + 0.1 * ss / (cnt - 1))) < 1e-6,
	      "batchnorm running_var update (unbiased)");
	float *din = calloc(N, sizeof(float)), *dg = calloc(c.c, sizeof(float));
	float *db = calloc(c.c, sizeof(float));
	for (c.relu = 0; c.relu <= 1; c.relu++) {
		for (size_t i = 0; i < N; i++)
			din[i] = NAN;
		memset(dg, 0, sizeof(float) * c.c);
		memset(db, 0, sizeof(float) * c.c);
		bn_loss(&c);
		batchnorm_backward(din, dg, db, c.r, c.in, c.mean, c.rstd, c.g, c.relu ? c.out : NULL,
		                   c.n, c.c, c.hw, NN_OVERWRITE);
		const char *nm = c.relu ? "batchnorm+relu" : "batchnorm";
		/* float32 differences: a step large enough to beat rounding, small enough for
		 * the ReLU kinks of this input */
		double ge = gradcheck(bn_loss, &c, c.in, din, N, 4e-3f, 1e-2);
		CHECK(ge < 1e-2, "%s dinput (rel err %.1e)", nm, ge);
		CHECK(gradcheck(bn_loss, &c, c.g, dg, c.c, 1e-3f, 1e-2) < 5e-3, "%s dgamma", nm);
		CHECK(gradcheck(bn_loss, &c, c.b, db, c.c, 1e-3f, 1e-2) < 5e-3, "%s dbeta", nm);
	}
	c.relu = 0;

	/* eval, and eval folded into a 1x1 conv, agree */
	float *ev = xmalloc(sizeof(float) * N), *fo = xmalloc(sizeof(float) * N);
	batchnorm_forward_eval(ev, c.in, c.g, c.b, rm, rv, c.n, c.c, c.hw, 1e-5f, 0);
	float eye[9] = { 1, 0, 0, 0, 1, 0, 0, 0, 1 }, wf[9], bf[3];
	batchnorm_fold(wf, bf, eye, NULL, c.g, c.b, rm, rv, 3, 3, 1e-5f);
	conv_geom g = { .n = c.n, .c = 3, .h = 1, .w = c.hw, .oc = 3, .kh = 1, .kw = 1,
		.stride = 1, .pad = 0 };
	conv2d_shape(&g);
	conv2d_forward(fo, c.in, wf, bf, &g, 0);
	CHECK(max_rel_err(fo, ev, N, 1.0) < 1e-5, "batchnorm folded into conv == eval");
	free(c.in); free(c.g); free(c.b); free(c.out); free(c.r); free(c.mean); free(c.rstd);
	free(din); free(dg); free(db); free(ev); free(fo);
}

/* ---- relu, pools, add ---- */

typedef struct {
	int kind, n, c, h, w;
	float *in, *in2, *out, *r;
	int32_t *idx;
} ew_ctx;

static size_t ew_outn(ew_ctx *c)
{
	if (c->kind == 1)
		return (size_t)c->n * c->c * maxpool_out(c->h) * maxpool_out(c->w);
	if (c->kind == 2)
		return (size_t)c->n * c->c;
	return (size_t)c->n * c->c * c->h * c->w;
}

static double ew_loss(void *p)
{
	ew_ctx *c = p;
	size_t N = (size_t)c->n * c->c * c->h * c->w;
	if (c->kind == 0)
		relu_forward(c->out, c->in, N);
	else if (c->kind == 1)
		maxpool_forward(c->out, c->idx, c->in, c->n, c->c, c->h, c->w, maxpool_out(c->h),
		                maxpool_out(c->w));
	else if (c->kind == 2)
		avgpool_forward(c->out, c->in, c->n, c->c, c->h * c->w);
	else
		add_forward(c->out, c->in, c->in2, N);
	return dot(c->out, c->r, ew_outn(c));
}

static void test_ew(int kind, const char *name)
{
	ew_ctx c = { .kind = kind, .n = 2, .c = 3, .h = 7, .w = 6 };
	size_t N = (size_t)c.n * c.c * c.h * c.w, no = ew_outn(&c);
	c.in = rnd(N);
	c.in2 = rnd(N);
	c.out = xmalloc(sizeof(float) * N);
	c.r = rnd(no);
	c.idx = xmalloc(sizeof(int32_t) * N);
	float *din = calloc(N, sizeof(float)), *din2 = calloc(N, sizeof(float));
	ew_loss(&c);
	if (kind == 0)
		relu_backward(din, c.r, c.out, N);
	else if (kind == 1)
		maxpool_backward(din, c.r, c.idx, c.n, c.c, c.h, c.w, maxpool_out(c.h), maxpool_out(c.w), 0);
	else if (kind == 2)
		avgpool_backward(din, c.r, c.n, c.c, c.h * c.w, 0);
	else
		add_backward(din, din2, c.r, N);
	/* h small enough not to cross a kink or swap a max */
	CHECK(gradcheck(ew_loss, &c, c.in, din, N, 1e-3f, 1e-2) < 5e-3, "%s dinput", name);
	if (kind == 3)
		CHECK(gradcheck(ew_loss, &c, c.in2, din2, N, 1e-3f, 1e-2) < 5e-3, "%s dinput2", name);
	free(c.in); free(c.in2); free(c.out); free(c.r); free(c.idx); free(din); free(din2);
}

static void test_relu_inplace(void)
{
	float x[4] = { -1, 2, 0, 3 }, g[4] = { 1, 1, 1, 1 };
	relu_forward(x, x, 4);
	relu_backward(g, g, x, 4);
	CHECK(x[0] == 0 && x[1] == 2 && g[0] == 0 && g[1] == 1 && g[2] == 0 && g[3] == 1,
	      "relu in place, gradient 0 at 0 as torch");
}

static void test_maxpool_ties(void)
{
	float x[16] = { 0 }, out[4];
	int32_t idx[4];
	maxpool_forward(out, idx, x, 1, 1, 4, 4, 2, 2);
	CHECK(idx[0] == 0 && idx[1] == 1 && idx[2] == 4 && idx[3] == 5,
	      "maxpool ties go to the first element in scan order");
}

/* ---- linear and loss ---- */

typedef struct {
	int n, i, o;
	float *in, *w, *b, *out, *r;
} lin_ctx;

static double lin_loss(void *p)
{
	lin_ctx *c = p;
	linear_forward(c->out, c->in, c->w, c->b, c->n, c->i, c->o);
	return dot(c->out, c->r, (size_t)c->n * c->o);
}

static void test_linear(void)
{
	lin_ctx c = { .n = 3, .i = 5, .o = 4 };
	c.in = rnd(15);
	c.w = rnd(20);
	c.b = rnd(4);
	c.out = xmalloc(sizeof(float) * 12);
	c.r = rnd(12);
	float din[15] = { 0 }, dw[20] = { 0 }, db[4] = { 0 };
	lin_loss(&c);
	linear_backward(din, dw, db, c.r, c.in, c.w, c.n, c.i, c.o, 0);
	CHECK(gradcheck(lin_loss, &c, c.in, din, 15, 1e-2f, 1e-2) < 2e-3, "linear dinput");
	CHECK(gradcheck(lin_loss, &c, c.w, dw, 20, 1e-2f, 1e-2) < 2e-3, "linear dweight");
	CHECK(gradcheck(lin_loss, &c, c.b, db, 4, 1e-2f, 1e-2) < 2e-3, "linear dbias");
	free(c.in); free(c.w); free(c.b); free(c.out); free(c.r);
}

typedef struct {
	int n, k;
	float sm;
	float *z, *p;
	int *y;
} xent_ctx;

static double xent_loss(void *p)
{
	xent_ctx *c = p;
	return softmax_xent_forward(c->p, NULL, c->z, c->y, c->n, c->k, c->sm);
}

static void test_xent(float sm)
{
	int y[3] = { 0, 4, 2 };
	xent_ctx c = { .n = 3, .k = 5, .sm = sm, .y = y };
	c.z = rnd(15);
	c.p = xmalloc(sizeof(float) * 15);
	float dz[15] = { 0 }, losses[3];
	double l = softmax_xent_forward(c.p, losses, c.z, y, 3, 5, sm);
	softmax_xent_backward(dz, c.p, y, 3, 5, sm);
	CHECK(fabs(l - (losses[0] + losses[1] + losses[2]) / 3) < 1e-6,
	      "softmax xent mean of per-example losses (smoothing %g)", sm);
	CHECK(gradcheck(xent_loss, &c, c.z, dz, 15, 1e-2f, 1e-3) < 2e-3,
	      "softmax xent dlogits (smoothing %g)", sm);
	free(c.z); free(c.p);
}

/* ---- the blocked layout: each layer against its NCHW version ---- */

static float *blocked(const float *x, int n, int c, int hw, int blk)
{
	float *b = xmalloc(sizeof(float) * (size_t)n * c * hw);
	nn_to_blocked(b, x, n, c, hw, blk);
	return b;
}

/* max difference between NCHW a and blocked b, relative to max(|a|, 1) */
static double blk_err(const float *a, const float *b, int n, int c, int hw, int blk)
{
	size_t k = (size_t)n * c * hw;
	float *u = xmalloc(sizeof(float) * k);
	nn_from_blocked(u, b, n, c, hw, blk);
	double e = max_rel_err(u, a, k, 1.0);
	free(u);
	return e;
}

static void test_blocked(int blk, int n, int h, int w)
{
	int c = 2 * blk, hw = h * w, oh = maxpool_out(h), ow = maxpool_out(w);
	size_t k = (size_t)n * c * hw, ko = (size_t)n * c * oh * ow;
	float *x = rnd(k), *dy = rnd(k), *g = rnd(c), *be = rnd(c), *rm = rnd(c), *rv = rnd(c);
	float *xb = blocked(x, n, c, hw, blk), *dyb = blocked(dy, n, c, hw, blk);
	float *y = rnd(k), *yb = rnd(k), *dx = rnd(k), *dxb = xmalloc(sizeof(float) * k);
	float st[4][64], run[4][64], dg[2][64] = { { 0 } }, db[2][64] = { { 0 } };

	for (int i = 0; i < c; i++)
		rv[i] = rv[i] * rv[i] + 0.1f;
	{   /* round trip */
		float *u = xmalloc(sizeof(float) * k);
		nn_from_blocked(u, xb, n, c, hw, blk);
		CHECK(memcmp(u, x, sizeof(float) * k) == 0, "blocked %d: layout round trip", blk);
		CHECK(xb[1] == x[hw], "blocked %d: channel lanes are innermost", blk);
		free(u);
	}
	for (int relu = 0; relu <= 1; relu++) {
		int fl = relu ? NN_RELU : 0;
		memcpy(run[0], rm, sizeof(float) * c);
		memcpy(run[1], rv, sizeof(float) * c);
		memcpy(run[2], rm, sizeof(float) * c);
		memcpy(run[3], rv, sizeof(float) * c);
		batchnorm_forward_train(y, st[0], st[1], run[0], run[1], x, g, be, n, c, hw, 0.1f,
		                        1e-5f, fl);
		batchnorm_forward_train_blk(yb, st[2], st[3], run[2], run[3], xb, g, be, n, c, hw,
		                            0.1f, 1e-5f, fl, blk);
		CHECK(blk_err(y, yb, n, c, hw, blk) < 1e-6 && max_rel_err(st[2], st[0], c, 1.0) < 1e-6 &&
		      max_rel_err(st[3], st[1], c, 1.0) < 1e-6 &&
		      max_rel_err(run[2], run[0], c, 1.0) < 1e-6 &&
		      max_rel_err(run[3], run[1], c, 1.0) < 1e-6,
		      "blocked %d: BN train forward%s (%dx%d)", blk, relu ? " + ReLU" : "", h, w);
		const float *ro = relu ? y : NULL, *rob = relu ? yb : NULL;
		for (int over = 1; over >= 0; over--) {
			nn_to_blocked(dxb, dx, n, c, hw, blk);
			float *dx0 = xmalloc(sizeof(float) * k);
			memcpy(dx0, dx, sizeof(float) * k);
			batchnorm_backward(dx0, dg[0], db[0], dy, x, st[0], st[1], g, ro, n, c, hw,
			                   over ? NN_OVERWRITE : 0);
			batchnorm_backward_blk(dxb, dg[1], db[1], dyb, xb, st[2], st[3], g, rob, n, c, hw,
			                       over ? NN_OVERWRITE : 0, blk);
			CHECK(blk_err(dx0, dxb, n, c, hw, blk) < 1e-6 &&
			      max_rel_err(dg[1], dg[0], c, 1.0) < 1e-5 &&
			      max_rel_err(db[1], db[0], c, 1.0) < 1e-5,
			      "blocked %d: BN backward%s, %s", blk, relu ? " through ReLU" : "",
			      over ? "overwriting" : "accumulating");
			free(dx0);
		}
		batchnorm_forward_eval(y, x, g, be, rm, rv, n, c, hw, 1e-5f, fl);
		batchnorm_forward_eval_blk(yb, xb, g, be, rm, rv, n, c, hw, 1e-5f, fl, blk);
		CHECK(blk_err(y, yb, n, c, hw, blk) == 0, "blocked %d: BN eval%s, same bits", blk,
		      relu ? " + ReLU" : "");
	}
	{   /* pools */
		int32_t *am = xmalloc(sizeof(int32_t) * ko), *amb = xmalloc(sizeof(int32_t) * ko);
		float *po = xmalloc(sizeof(float) * ko), *pob = xmalloc(sizeof(float) * ko);
		float *gy = rnd(ko), *gyb = blocked(gy, n, c, oh * ow, blk);
		x[5] = x[6];     /* a tie */
		free(xb);
		xb = blocked(x, n, c, hw, blk);
		maxpool_forward(po, am, x, n, c, h, w, oh, ow);
		maxpool_forward_blk(pob, amb, xb, n, c, h, w, oh, ow, blk);
		float *af = xmalloc(sizeof(float) * ko), *afb = xmalloc(sizeof(float) * ko);
		for (size_t i = 0; i < ko; i++) {
			af[i] = (float)am[i];
			afb[i] = (float)amb[i];
		}
		CHECK(blk_err(po, pob, n, c, oh * ow, blk) == 0 && blk_err(af, afb, n, c, oh * ow, blk) == 0,
		      "blocked %d: maxpool forward and argmax", blk);
		for (int over = 1; over >= 0; over--) {
			float *d0 = xmalloc(sizeof(float) * k), *d1 = blocked(dx, n, c, hw, blk);
			memcpy(d0, dx, sizeof(float) * k);
			maxpool_backward(d0, gy, am, n, c, h, w, oh, ow, over ? NN_OVERWRITE : 0);
			maxpool_backward_blk(d1, gyb, amb, n, c, h, w, oh, ow, over ? NN_OVERWRITE : 0, blk);
			CHECK(blk_err(d0, d1, n, c, hw, blk) == 0, "blocked %d: maxpool backward, %s", blk,
			      over ? "overwriting" : "accumulating");
			free(d0);
			free(d1);
		}
		float a0[256], a1[256], *ga = rnd((size_t)n * c);
		avgpool_forward(a0, x, n, c, hw);
		avgpool_forward_blk(a1, xb, n, c, hw, blk);
		CHECK(max_rel_err(a1, a0, (size_t)n * c, 1e-3) == 0, "blocked %d: avgpool forward", blk);
		for (int over = 1; over >= 0; over--) {
			float *d0 = xmalloc(sizeof(float) * k), *d1 = blocked(dx, n, c, hw, blk);
			memcpy(d0, dx, sizeof(float) * k);
			avgpool_backward(d0, ga, n, c, hw, over ? NN_OVERWRITE : 0);
			avgpool_backward_blk(d1, ga, n, c, hw, over ? NN_OVERWRITE : 0, blk);
			CHECK(blk_err(d0, d1, n, c, hw, blk) == 0, "blocked %d: avgpool backward, %s", blk,
			      over ? "overwriting" : "accumulating");
			free(d0);
			free(d1);
		}
		free(am), free(amb), free(po), free(pob), free(gy), free(gyb), free(af), free(afb);
		free(ga);
	}
	free(x), free(dy), free(g), free(be), free(rm), free(rv), free(xb), free(dyb);
	free(y), free(yb), free(dx), free(dxb);
}

/* A convolution between blocked activations, where oneDNN runs it, against NCHW. */
static void test_conv_blocked(int blk, int n, int c, int h, int w, int oc, int k, int stride)
{
	conv_geom g = { .n = n, .c = c, .h = h, .w = w, .oc = oc, .kh = k, .kw = k,
		.stride = stride, .pad = k / 2 };
	conv2d_shape(&g);
	conv_geom gb = g;
	gb.blk_in = c % blk ? 0 : blk;
	gb.blk_out = blk;
	if (!conv2d_blocked_ok(&gb, 1, 0, NN_RELU)) {
		printf("skip blocked %d conv: oneDNN does not run it here\n", blk);
		return;
	}
	int hw = h * w, ohw = g.oh * g.ow;
	size_t ki = (size_t)n * c * hw, ko = (size_t)n * oc * ohw, kw = (size_t)oc * c * k * k;
	float *x = rnd(ki), *wt = rnd(kw), *dy = rnd(ko);
	float *xb = gb.blk_in ? blocked(x, n, c, hw, blk) : x, *dyb = blocked(dy, n, oc, ohw, blk);
	float *y = xmalloc(sizeof(float) * ko), *yb = xmalloc(sizeof(float) * ko);
	float *dx = rnd(ki), *dxb = gb.blk_in ? blocked(dx, n, c, hw, blk) : xmalloc(sizeof(float) * ki);
	float *dw0 = xcalloc(kw, sizeof(float)), *dw1 = xcalloc(kw, sizeof(float));

	if (!gb.blk_in)
		memcpy(dxb, dx, sizeof(float) * ki);
	conv2d_forward(y, x, wt, NULL, &g, NN_RELU);
	conv2d_forward(yb, xb, wt, NULL, &gb, NN_RELU);
	CHECK(blk_err(y, yb, n, oc, ohw, blk) < 1e-5, "blocked %d conv %dx%d/%d, %s in: forward + ReLU",
	      blk, k, k, stride, gb.blk_in ? "blocked" : "NCHW");
	conv2d_backward(dx, dw0, NULL, dy, x, wt, &g, 0);
	conv2d_backward(dxb, dw1, NULL, dyb, xb, wt, &gb, 0);
	double e = gb.blk_in ? blk_err(dx, dxb, n, c, hw, blk) : max_rel_err(dxb, dx, ki, 1e-3);
	CHECK(e < 1e-5 && max_rel_err(dw1, dw0, kw, 1e-3) < 1e-5,
	      "blocked %d conv %dx%d/%d: backward (accumulating)", blk, k, k, stride);
	conv2d_backward(dx, NULL, NULL, dy, x, wt, &g, NN_OVERWRITE);
	conv2d_backward(dxb, NULL, NULL, dyb, xb, wt, &gb, NN_OVERWRITE);
	e = gb.blk_in ? blk_err(dx, dxb, n, c, hw, blk) : max_rel_err(dxb, dx, ki, 1e-3);
	CHECK(e < 1e-5, "blocked %d conv %dx%d/%d: backward data (overwriting)", blk, k, k, stride);
	free(x), free(wt), free(dy), free(dyb), free(y), free(yb), free(dx), free(dw0), free(dw1);
	free(dxb);
	if (gb.blk_in)
		free(xb);
}

/* x rounded to bfloat16's 8 significant bits, ties to even: frexp and rint, not the bit
 * trick nn/onednn.c uses. */
static float bf16_of(float x)
{
	int e;
	if (!isfinite(x) || x == 0)
		return x;
	double m = frexp((double)x, &e);
	return (float)ldexp(nearbyint(ldexp(m, 8)), e - 8);
}

/* CULL_NN_BF16=emulate: every convolution pass equals the float32 one on operands rounded
 * to bfloat16 (the same kernels, so the same bits), in NCHW and in blocked layouts. */
static void test_conv_bf16(int blk, int n, int c, int h, int w, int oc, int k, int stride)
{
	conv_geom g = { .n = n, .c = c, .h = h, .w = w, .oc = oc, .kh = k, .kw = k,
		.stride = stride, .pad = k / 2, .blk_in = blk, .blk_out = blk };
	conv2d_shape(&g);
	if (!conv2d_blocked_ok(&g, 1, 1, 0))
		return;
	int hw = h * w, ohw = g.oh * g.ow;
	size_t ki = (size_t)n * c * hw, ko = (size_t)n * oc * ohw, kw = (size_t)oc * c * k * k;
	float *x = rnd(ki), *wt = rnd(kw), *dy = rnd(ko), *b = rnd((size_t)oc);
	float *xr = xmalloc(sizeof(float) * ki), *wr = xmalloc(sizeof(float) * kw);
	float *dyr = xmalloc(sizeof(float) * ko);
	float *y[3], *dx[3], *dw[3];
	for (size_t i = 0; i < ki; i++)
		xr[i] = bf16_of(x[i]);
	for (size_t i = 0; i < kw; i++)
		wr[i] = bf16_of(wt[i]);
	for (size_t i = 0; i < ko; i++)
		dyr[i] = bf16_of(dy[i]);
	for (int v = 0; v < 3; v++) {   /* 0: float32; 1: emulated; 2: float32 on rounded */
		y[v] = xmalloc(sizeof(float) * ko);
		dx[v] = xmalloc(sizeof(float) * ki);
		dw[v] = xcalloc(kw, sizeof(float));
		CHECK(nn_set_bf16(v == 1) == (v == 1 ? 2 : 1) && nn_bf16() == (v == 1 ? 2 : 0),
		      "nn_set_bf16(%d) under CULL_NN_BF16=emulate", v == 1);
		conv2d_forward(y[v], v == 2 ? xr : x, v == 2 ? wr : wt, b, &g, 0);
		conv2d_backward(dx[v], dw[v], NULL, v == 2 ? dyr : dy, v == 2 ? xr : x,
		                v == 2 ? wr : wt, &g, NN_OVERWRITE);
	}
	const char *lay = blk ? "blocked" : "NCHW";
	CHECK(memcmp(y[1], y[2], sizeof(float) * ko) == 0 &&
	      memcmp(dx[1], dx[2], sizeof(float) * ki) == 0 &&
	      memcmp(dw[1], dw[2], sizeof(float) * kw) == 0,
	      "bf16 emulated conv %dx%d/%d, %s: forward, backward data and weights equal float32 "
	      "on rounded operands", k, k, stride, lay);
	double ey = max_rel_err(y[1], y[0], ko, 1.0), ew = max_rel_err(dw[1], dw[0], kw, 1.0);
	CHECK(ey > 1e-5 && ey < 0.1 && ew > 1e-5 && ew < 0.1,
	      "bf16 emulated conv %dx%d/%d, %s: off float32 by a bfloat16 rounding (%.1e, %.1e)",
	      k, k, stride, lay, ey, ew);
	nn_set_bf16(0);
	for (int v = 0; v < 3; v++)
		free(y[v]), free(dx[v]), free(dw[v]);
	free(x), free(wt), free(dy), free(b), free(xr), free(wr), free(dyr);
}

/* The emulation's rounding, through a 1x1 convolution by 1: ties go to even, NaN stays
 * NaN, infinity stays, and a tie above bfloat16's largest value overflows to infinity. */
static void test_bf16_rounding(void)
{
	conv_geom g = { .n = 1, .c = 1, .h = 1, .w = 8, .oc = 1, .kh = 1, .kw = 1, .stride = 1 };
	conv2d_shape(&g);
	float one = 1, x[8] = { 1 + 0x1p-8f, 1 + 3 * 0x1p-8f, 1 + 0x1p-8f + 0x1p-20f, -2.75f,
		INFINITY, NAN, 0x1.fep127f, 0x1.ffp127f };
	float want[8] = { 1, 1 + 0x1p-6f, 1 + 0x1p-7f, -2.75f, INFINITY, NAN, 0x1.fep127f, INFINITY };
	float y[8];
	nn_set_bf16(1);
	conv2d_forward(y, x, &one, NULL, &g, 0);
	nn_set_bf16(0);
	int ok = 1;
	for (int i = 0; i < 8; i++)
		ok &= isnan(want[i]) ? isnan(y[i]) : y[i] == want[i];
	CHECK(ok, "bf16 emulation rounds to nearest, ties to even (%a %a %a %a %a)", y[0], y[1],
	      y[2], y[6], y[7]);
}

int main(void)
{
	for (int t = 1; t <= 2; t++) {
		nn_set_threads(t);
		test_conv(3, 2, 5, 6, 4, 3, 1, 1, 0);
		test_conv(2, 3, 9, 8, 2, 7, 2, 3, 1);
		test_conv(3, 4, 6, 6, 5, 1, 1, 0, 0);
		test_conv(2, 4, 7, 7, 3, 1, 2, 0, 0);
		test_conv(1, 2, 6, 5, 3, 3, 2, 1, 1);
	}
	test_bn();
	test_ew(0, "relu");
	test_ew(1, "maxpool 3x3/2");
	test_ew(2, "avgpool");
	test_ew(3, "residual add");
	test_relu_inplace();
	test_maxpool_ties();
	test_linear();
	test_xent(0.0f);
	test_xent(0.1f);
	for (int t = 1; t <= 2; t++) {
		nn_set_threads(t);
		test_blocked(8, 3, 7, 5);
		test_blocked(16, 2, 9, 11);
		test_blocked(8, 2, 13, 12);    /* h * w > the 64-position flush span */
	}
	if (nn_layout_block()) {
		int b = nn_layout_block();
		test_conv_blocked(b, 2, 3, 9, 9, 2 * b, 3, 1);    /* the stem: NCHW in */
		test_conv_blocked(b, 2, b, 8, 8, b, 3, 1);
		test_conv_blocked(b, 2, b, 8, 8, 2 * b, 3, 2);
		test_conv_blocked(b, 2, 2 * b, 8, 8, b, 1, 1);
		test_conv_blocked(b, 2, b, 9, 9, 2 * b, 1, 2);
	} else {
		printf("skip blocked convolutions: activations stay NCHW here (%s)\n", nn_backend());
	}
	setenv("CULL_NN_BF16", "emulate", 1);
	if (nn_set_bf16(0) > 0) {
		int b = nn_layout_block();
		test_bf16_rounding();
		for (int t = 1; t <= 2; t++) {
			nn_set_threads(t);
			test_conv_bf16(0, 2, 3, 9, 9, 8, 3, 1);
			test_conv_bf16(0, 2, 8, 8, 8, 16, 1, 2);
			if (b) {
				test_conv_bf16(b, 2, b, 8, 8, 2 * b, 3, 1);
				test_conv_bf16(b, 2, 2 * b, 8, 8, b, 3, 2);
			}
		}
	} else {
		printf("skip bfloat16 emulation: %s\n", nn_backend());
	}
	unsetenv("CULL_NN_BF16");
	return CHECK_DONE();
}
