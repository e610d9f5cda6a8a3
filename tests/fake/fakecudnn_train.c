/* The stand-in's cuDNN training entry points (CUDNN_TRAIN_FUNCS of nn/cuda.h): batch norm
 * with batch statistics and the backward passes, as NVIDIA documents them. Included by
 * fakecuda.c in its cuDNN part, whose helpers (shapes, load, finish) it uses. */

/* [1,C,1,1] float for a spatial batch norm over x's channels. */
cudnnStatus_t cudnnDeriveBNTensorDescriptor(cudnnTensorDescriptor_t bnd,
	const cudnnTensorDescriptor_t xd, cudnnBatchNormMode_t mode)
{
	COUNT(cudnnDeriveBNTensorDescriptor);
	if (!bnd || !SET(xd) || mode != CUDNN_BATCHNORM_SPATIAL)
		return D_BAD_PARAM;
	bnd->s = (struct shape){ 1, T_F32, CUDNN_TENSOR_NCHW, 1, xd->s.c, 1, 1 };
	return CUDNN_STATUS_SUCCESS;
}

/* The per-channel float vectors of a batch norm call, bounds-checked. */
static int bn_vec(const char *fn, const char *what, const cudnnTensorDescriptor_t bnd,
                  const struct shape *xs, const void *p)
{
	return !SET(bnd) || bnd->s.c != xs->c || bnd->s.n != 1 || bnd->s.h != 1 ||
	       bnd->s.w != 1 || bnd->s.type != T_F32 ||
	       fakecuda_dev_range(fn, what, p, (size_t)xs->c * sizeof(float));
}

static float fget(const void *p, int i)
{
	float v;
	memcpy(&v, (const char *)p + (size_t)i * 4, 4);
	return v;
}

static void fput(void *p, int i, double v)
{
	float f = (float)v;
	memcpy((char *)p + (size_t)i * 4, &f, 4);
}

/* y = alpha BN(x) + beta y with the batch's mean and biased variance; the running
 * statistics move by factor (the variance's unbiased); the mean and 1/sqrt(var + eps)
 * are saved for the backward pass. */
cudnnStatus_t cudnnBatchNormalizationForwardTraining(cudnnHandle_t h,
	cudnnBatchNormMode_t mode, const void *alpha, const void *beta,
	const cudnnTensorDescriptor_t xd, const void *x, const cudnnTensorDescriptor_t yd,
	void *y, const cudnnTensorDescriptor_t bnd, const void *scale, const void *bias,
	double factor, void *run_mean, void *run_var, double eps, void *save_mean,
	void *save_invvar)
{
	const char *fn = __func__;
	double al, be;

	COUNT(cudnnBatchNormalizationForwardTraining);
	if (!h || mode != CUDNN_BATCHNORM_SPATIAL || !SET(xd) || !SET(yd) ||
	    !same_dims(&xd->s, &yd->s) || eps < 0 ||
	    xy_args(fn, alpha, beta, &al, &be, &xd->s, x, &yd->s, y) ||
	    bn_vec(fn, "scale", bnd, &xd->s, scale) || bn_vec(fn, "bias", bnd, &xd->s, bias) ||
	    (run_mean && bn_vec(fn, "running mean", bnd, &xd->s, run_mean)) ||
	    (run_var && bn_vec(fn, "running var", bnd, &xd->s, run_var)) ||
	    (save_mean && bn_vec(fn, "saved mean", bnd, &xd->s, save_mean)) ||
	    (save_invvar && bn_vec(fn, "saved inverse", bnd, &xd->s, save_invvar)))
		return D_BAD_PARAM;
	const struct shape *s = &xd->s;
	size_t hw = (size_t)s->h * s->w, m = (size_t)s->n * hw;
	double *v = load(s, x);
	if (!v)
		return D_ALLOC_FAILED;
	for (int c = 0; c < s->c; c++) {
		double sum = 0, sq = 0;
		for (int n = 0; n < s->n; n++)
			for (size_t i = 0; i < hw; i++)
				sum += v[((size_t)n * s->c + c) * hw + i];
		double mean = sum / (double)m;
		for (int n = 0; n < s->n; n++)
			for (size_t i = 0; i < hw; i++) {
				double d = v[((size_t)n * s->c + c) * hw + i] - mean;
				sq += d * d;
			}
		double var = sq / (double)m, inv = 1 / sqrt(var + eps);
		for (int n = 0; n < s->n; n++)
			for (size_t i = 0; i < hw; i++) {
				double *p = &v[((size_t)n * s->c + c) * hw + i];
				*p = al * (fget(scale, c) * (*p - mean) * inv + fget(bias, c));
			}
		if (run_mean)
			fput(run_mean, c, (1 - factor) * fget(run_mean, c) + factor * mean);
		if (run_var)
			fput(run_var, c, (1 - factor) * fget(run_var, c) +
			     factor * (m > 1 ? sq / (double)(m - 1) : var));
		if (save_mean)
			fput(save_mean, c, mean);
		if (save_invvar)
			fput(save_invvar, c, inv);
	}
	return finish(&yd->s, y, v, be);
}

/* dx = alpha_d dBN + beta_d dx; dscale, dbias = alpha_p (their gradients) + beta_p (old). */
cudnnStatus_t cudnnBatchNormalizationBackward(cudnnHandle_t h, cudnnBatchNormMode_t mode,
	const void *alpha_d, const void *beta_d, const void *alpha_p, const void *beta_p,
	const cudnnTensorDescriptor_t xd, const void *x, const cudnnTensorDescriptor_t dyd,
	const void *dy, const cudnnTensorDescriptor_t dxd, void *dx,
	const cudnnTensorDescriptor_t bnd, const void *scale, void *dscale, void *dbias,
	double eps, const void *save_mean, const void *save_invvar)
{
	const char *fn = __func__;
	double ad, bd, ap, bp;

	COUNT(cudnnBatchNormalizationBackward);
	if (!h || mode != CUDNN_BATCHNORM_SPATIAL || !SET(xd) || !SET(dyd) || !SET(dxd) ||
	    !same_dims(&xd->s, &dyd->s) || !same_dims(&xd->s, &dxd->s) || eps < 0 ||
	    xy_args(fn, alpha_d, beta_d, &ad, &bd, &dyd->s, dy, &dxd->s, dx) ||
	    xy_args(fn, alpha_p, beta_p, &ap, &bp, &xd->s, x, &dxd->s, dx) ||
	    bn_vec(fn, "scale", bnd, &xd->s, scale) || bn_vec(fn, "dscale", bnd, &xd->s, dscale) ||
	    bn_vec(fn, "dbias", bnd, &xd->s, dbias) || !save_mean || !save_invvar ||
	    bn_vec(fn, "saved mean", bnd, &xd->s, save_mean) ||
	    bn_vec(fn, "saved inverse", bnd, &xd->s, save_invvar))
		return D_BAD_PARAM;
	const struct shape *s = &xd->s;
	size_t hw = (size_t)s->h * s->w, m = (size_t)s->n * hw;
	double *xv = load(s, x), *g = load(&dyd->s, dy);
	if (!xv || !g) {
		free(xv);
		free(g);
		return D_ALLOC_FAILED;
	}
	for (int c = 0; c < s->c; c++) {
		double mean = fget(save_mean, c), inv = fget(save_invvar, c), sg = 0, sgx = 0;
		for (int n = 0; n < s->n; n++)
			for (size_t i = 0; i < hw; i++) {
				size_t k = ((size_t)n * s->c + c) * hw + i;
				sg += g[k];
				sgx += g[k] * (xv[k] - mean) * inv;
			}
		for (int n = 0; n < s->n; n++)
			for (size_t i = 0; i < hw; i++) {
				size_t k = ((size_t)n * s->c + c) * hw + i;
				double xh = (xv[k] - mean) * inv;
				g[k] = ad * fget(scale, c) * inv / (double)m *
				       ((double)m * g[k] - sg - xh * sgx);
			}
		fput(dscale, c, ap * sgx + (bp != 0 ? bp * fget(dscale, c) : 0));
		fput(dbias, c, ap * sg + (bp != 0 ? bp * fget(dbias, c) : 0));
	}
	free(xv);
	return finish(&dxd->s, dx, g, bd);
}

static size_t bwd_workspace(int algo)
{
	return algo == 1 ? 4096 : 0;
}

/* The descriptors of a backward convolution: dy has the forward output's shape. */
static int bwd_check(cudnnHandle_t h, cudnnTensorDescriptor_t xd, cudnnFilterDescriptor_t wd,
                     cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t dyd, int algo,
                     int nalgo)
{
	return conv_check(h, xd, wd, cd, dyd) || algo < 0 || algo >= nalgo;
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t h,
	const cudnnFilterDescriptor_t wd, const cudnnTensorDescriptor_t dyd,
	const cudnnConvolutionDescriptor_t cd, const cudnnTensorDescriptor_t dxd,
	cudnnConvolutionBwdDataAlgo_t algo, size_t *bytes)
{
	COUNT(cudnnGetConvolutionBackwardDataWorkspaceSize);
	if (bwd_check(h, dxd, wd, cd, dyd, algo, 6) || !bytes)
		return D_BAD_PARAM;
	*bytes = bwd_workspace(algo);
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t h,
	const cudnnTensorDescriptor_t xd, const cudnnTensorDescriptor_t dyd,
	const cudnnConvolutionDescriptor_t cd, const cudnnFilterDescriptor_t dwd,
	cudnnConvolutionBwdFilterAlgo_t algo, size_t *bytes)
{
	COUNT(cudnnGetConvolutionBackwardFilterWorkspaceSize);
	if (bwd_check(h, xd, dwd, cd, dyd, algo, 7) || !bytes)
		return D_BAD_PARAM;
	*bytes = bwd_workspace(algo);
	return CUDNN_STATUS_SUCCESS;
}

/* The workspace (clobbered) of a backward convolution. */
static int bwd_ws(const char *fn, int algo, void *ws, size_t ws_bytes)
{
	if (ws_bytes < bwd_workspace(algo) || fakecuda_dev_range(fn, "workspace", ws, ws_bytes))
		return D_BAD_PARAM;
	if (ws_bytes)
		memset(ws, 0xff, ws_bytes);
	return CUDNN_STATUS_SUCCESS;
}

/* Every (x index, w index, dy index) of the convolution, in NCHW / KCRS order, to f. */
#define CONV_PAIRS(xs, fs, ys, cd, body)                                                   \
	for (int n = 0; n < (ys)->n; n++)                                                  \
	for (int k = 0; k < (ys)->c; k++)                                                  \
	for (int oh = 0; oh < (ys)->h; oh++)                                               \
	for (int ow = 0; ow < (ys)->w; ow++)                                               \
	for (int c = 0; c < (xs)->c; c++)                                                  \
	for (int r = 0; r < (fs)->h; r++)                                                  \
	for (int q = 0; q < (fs)->w; q++) {                                                \
		int ih = oh * (cd)->u - (cd)->ph + r * (cd)->dh;                           \
		int iw = ow * (cd)->v - (cd)->pw + q * (cd)->dw;                           \
		if (ih < 0 || ih >= (xs)->h || iw < 0 || iw >= (xs)->w)                    \
			continue;                                                          \
		size_t xi = (((size_t)n * (xs)->c + c) * (xs)->h + ih) * (xs)->w + iw;     \
		size_t wi = (((size_t)k * (fs)->c + c) * (fs)->h + r) * (fs)->w + q;       \
		size_t yi = (((size_t)n * (ys)->c + k) * (ys)->h + oh) * (ys)->w + ow;     \
		body;                                                                      \
	}

/* dx = alpha conv^T(dy, w) + beta dx */
cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha,
	const cudnnFilterDescriptor_t wd, const void *w, const cudnnTensorDescriptor_t dyd,
	const void *dy, const cudnnConvolutionDescriptor_t cd,
	cudnnConvolutionBwdDataAlgo_t algo, void *ws, size_t ws_bytes, const void *beta,
	const cudnnTensorDescriptor_t dxd, void *dx)
{
	double al, be;

	COUNT(cudnnConvolutionBackwardData);
	if (bwd_check(h, dxd, wd, cd, dyd, algo, 6) ||
	    xy_args(__func__, alpha, beta, &al, &be, &dyd->s, dy, &dxd->s, dx) ||
	    !in_bounds(__func__, "w", &wd->s, w) || bwd_ws(__func__, algo, ws, ws_bytes))
		return D_BAD_PARAM;
	const struct shape *xs = &dxd->s, *fs = &wd->s, *ys = &dyd->s;
	double *wv = load(fs, w), *g = load(ys, dy), *out = calloc(count_of(xs), sizeof(double));
	if (wv && g && out)
		CONV_PAIRS(xs, fs, ys, cd, out[xi] += al * g[yi] * wv[wi]);
	free(wv);
	free(g);
	return finish(xs, dx, wv && g ? out : (free(out), NULL), be);
}

/* dw = alpha sum(dy x) + beta dw */
cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void *alpha,
	const cudnnTensorDescriptor_t xd, const void *x, const cudnnTensorDescriptor_t dyd,
	const void *dy, const cudnnConvolutionDescriptor_t cd,
	cudnnConvolutionBwdFilterAlgo_t algo, void *ws, size_t ws_bytes, const void *beta,
	const cudnnFilterDescriptor_t dwd, void *dw)
{
	double al, be;

	COUNT(cudnnConvolutionBackwardFilter);
	if (bwd_check(h, xd, dwd, cd, dyd, algo, 7) ||
	    xy_args(__func__, alpha, beta, &al, &be, &xd->s, x, &dyd->s, dy) ||
	    !in_bounds(__func__, "dw", &dwd->s, dw) || bwd_ws(__func__, algo, ws, ws_bytes))
		return D_BAD_PARAM;
	const struct shape *xs = &xd->s, *fs = &dwd->s, *ys = &dyd->s;
	double *xv = load(xs, x), *g = load(ys, dy), *out = calloc(count_of(fs), sizeof(double));
	if (xv && g && out)
		CONV_PAIRS(xs, fs, ys, cd, out[wi] += al * g[yi] * xv[xi]);
	free(xv);
	free(g);
	return finish(fs, dw, xv && g ? out : (free(out), NULL), be);
}

/* dx = alpha (dy where y > 0) + beta dx, for RELU (dx may be dy) */
cudnnStatus_t cudnnActivationBackward(cudnnHandle_t h, cudnnActivationDescriptor_t ad,
	const void *alpha, const cudnnTensorDescriptor_t yd, const void *y,
	const cudnnTensorDescriptor_t dyd, const void *dy, const cudnnTensorDescriptor_t xd,
	const void *x, const void *beta, const cudnnTensorDescriptor_t dxd, void *dx)
{
	double al, be;

	COUNT(cudnnActivationBackward);
	if (!h || !ad || !ad->set || !SET(yd) || !SET(dyd) || !SET(xd) || !SET(dxd) ||
	    !same_dims(&yd->s, &dyd->s) || !same_dims(&yd->s, &xd->s) ||
	    !same_dims(&yd->s, &dxd->s) || !in_bounds(__func__, "y", &yd->s, y) ||
	    !in_bounds(__func__, "x", &xd->s, x) ||
	    xy_args(__func__, alpha, beta, &al, &be, &dyd->s, dy, &dxd->s, dx))
		return D_BAD_PARAM;
	if (ad->mode != CUDNN_ACTIVATION_RELU)
		return D_NOT_SUPPORTED;
	double *yv = load(&yd->s, y), *g = load(&dyd->s, dy);
	for (size_t i = 0; yv && g && i < count_of(&yd->s); i++)
		g[i] = yv[i] > 0 ? al * g[i] : 0;
	free(yv);
	return finish(&dxd->s, dx, yv ? g : (free(g), NULL), be);
}

/* dx = alpha (dy routed back through the pooling) + beta dx: MAX to the first maximum of
 * each window, AVERAGE_COUNT_INCLUDE_PADDING spread over the window. */
cudnnStatus_t cudnnPoolingBackward(cudnnHandle_t h, const cudnnPoolingDescriptor_t pd,
	const void *alpha, const cudnnTensorDescriptor_t yd, const void *y,
	const cudnnTensorDescriptor_t dyd, const void *dy, const cudnnTensorDescriptor_t xd,
	const void *x, const void *beta, const cudnnTensorDescriptor_t dxd, void *dx)
{
	double al, be;

	COUNT(cudnnPoolingBackward);
	if (!h || !pd || !pd->set || !SET(yd) || !SET(dyd) || !SET(xd) || !SET(dxd) ||
	    !same_dims(&yd->s, &dyd->s) || !same_dims(&xd->s, &dxd->s) ||
	    !in_bounds(__func__, "y", &yd->s, y) || !in_bounds(__func__, "x", &xd->s, x) ||
	    xy_args(__func__, alpha, beta, &al, &be, &dyd->s, dy, &dxd->s, dx))
		return D_BAD_PARAM;
	const struct shape *xs = &xd->s, *ys = &yd->s;
	double *xv = load(xs, x), *g = load(&dyd->s, dy), *out = calloc(count_of(xs), sizeof(double));
	for (int n = 0; xv && g && out && n < ys->n; n++)
	for (int c = 0; c < ys->c; c++)
	for (int oh = 0; oh < ys->h; oh++)
	for (int ow = 0; ow < ys->w; ow++) {
		size_t base = ((size_t)n * xs->c + c) * xs->h * xs->w, best = (size_t)-1;
		double gv = g[(((size_t)n * ys->c + c) * ys->h + oh) * ys->w + ow], max = -INFINITY;
		int h0 = oh * pd->sh - pd->ph, w0 = ow * pd->sw - pd->pw;
		for (int ih = h0 > 0 ? h0 : 0; ih < h0 + pd->wh && ih < xs->h; ih++)
			for (int iw = w0 > 0 ? w0 : 0; iw < w0 + pd->ww && iw < xs->w; iw++) {
				size_t i = base + (size_t)ih * xs->w + iw;
				if (pd->mode != CUDNN_POOLING_MAX)
					out[i] += al * gv / (pd->wh * pd->ww);
				else if (xv[i] > max) {
					max = xv[i];
					best = i;
				}
			}
		if (pd->mode == CUDNN_POOLING_MAX && best != (size_t)-1)
			out[best] += al * gv;
	}
	int ok = xv && g;
	free(xv);
	free(g);
	return finish(&dxd->s, dx, ok ? out : (free(out), NULL), be);
}
