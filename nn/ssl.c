/* Self-supervised learning pieces: L2 normalisation, NT-Xent, Sinkhorn-Knopp and SwAV's
 * swapped prediction, the MLP projection head, weighted k-NN. */
#include "ssl.h"
#include "knn.h"
#include "io.h"
#include "layers.h"
#include "rng.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- L2 normalisation ---- */

void l2norm_forward(float *out, float *norms, const float *in, int n, int d)
{
	for (int i = 0; i < n; i++) {
		const float *x = in + (size_t)i * d;
		double ss = 0;
		for (int j = 0; j < d; j++)
			ss += (double)x[j] * x[j];
		double nr = sqrt(ss), inv;
		if (nr < 1e-12)
			nr = 1e-12;
		inv = 1.0 / nr;
		norms[i] = (float)nr;
		for (int j = 0; j < d; j++)
			out[(size_t)i * d + j] = (float)(x[j] * inv);
	}
}

void l2norm_backward(float *din, const float *dout, const float *out, const float *norms,
                     int n, int d)
{
	for (int i = 0; i < n; i++) {
		const float *g = dout + (size_t)i * d, *y = out + (size_t)i * d;
		double dot = 0;
		for (int j = 0; j < d; j++)
			dot += (double)g[j] * y[j];
		for (int j = 0; j < d; j++)
			din[(size_t)i * d + j] += (float)((g[j] - dot * y[j]) / norms[i]);
	}
}

/* ---- NT-Xent ---- */

static int pair_of(int i, int n)
{
	return i < n ? i + n : i - n;
}

double ntxent_forward(float *prob, const float *zn, int n, int d, float t)
{
	int m = 2 * n;
	double loss = 0;

	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, d, 1.0f / t, zn, d, zn, d,
	            0.0f, prob, m);
	for (int i = 0; i < m; i++) {
		float *row = prob + (size_t)i * m;
		double mx = -INFINITY, sum = 0;
		for (int j = 0; j < m; j++)
			if (j != i && row[j] > mx)
				mx = row[j];
		for (int j = 0; j < m; j++)
			if (j != i)
				sum += exp(row[j] - mx);
		loss += mx + log(sum) - row[pair_of(i, n)];
		for (int j = 0; j < m; j++)
			row[j] = j == i ? 0.0f : (float)(exp(row[j] - mx) / sum);
	}
	return loss / m;
}

void ntxent_backward(float *dzn, const float *prob, const float *zn, int n, int d, float t)
{
	int m = 2 * n;
	float *g = nn_scratch((size_t)m * (size_t)m);
	float s = 1.0f / (float)m;

	/* g = G + G^T with G = dloss/ds = (prob - onehot(pair)) / m */
	for (int i = 0; i < m; i++)
		for (int j = 0; j < m; j++) {
			float a = prob[(size_t)i * m + j] - (j == pair_of(i, n));
			float b = prob[(size_t)j * m + i] - (i == pair_of(j, n));
			g[(size_t)i * m + j] = (a + b) * s;
		}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, d, m, 1.0f / t, g, m, zn, d,
	            1.0f, dzn, d);
}

double ntxent_pair_accuracy(const float *prob, int n)
{
	int m = 2 * n, hit = 0;

	for (int i = 0; i < m; i++) {
		const float *row = prob + (size_t)i * m;
		int best = i == 0 ? 1 : 0;
		for (int j = 0; j < m; j++)
			if (j != i && row[j] > row[best])
				best = j;
		hit += best == pair_of(i, n);
	}
	return m ? (double)hit / m : 0;
}

/* ---- SwAV ---- */

void sinkhorn(float *codes, const float *scores, int b, int k, float eps, int iters)
{
	size_t bk = (size_t)b * (size_t)k;
	double *q = xmalloc(bk * sizeof *q), *row = xcalloc((size_t)k, sizeof *row);
	double mx = -INFINITY, sum = 0;

	/* q is Q^T: q[i*k + c] = Q[c][i]; subtracting the max changes nothing after scaling */
	for (size_t i = 0; i < bk; i++)
		if (scores[i] > mx)
			mx = scores[i];
	for (size_t i = 0; i < bk; i++)
		sum += q[i] = exp((scores[i] - mx) / eps);
	for (size_t i = 0; i < bk; i++)
		q[i] /= sum;
	for (int it = 0; it < iters; it++) {
		/* each prototype (row of Q) to total 1/k */
		memset(row, 0, (size_t)k * sizeof *row);
		for (int i = 0; i < b; i++)
			for (int c = 0; c < k; c++)
				row[c] += q[(size_t)i * k + c];
		for (int i = 0; i < b; i++)
			for (int c = 0; c < k; c++)
				q[(size_t)i * k + c] /= row[c] * k;
		/* each sample (column of Q) to total 1/b */
		for (int i = 0; i < b; i++) {
			double *qi = q + (size_t)i * k, s = 0;
			for (int c = 0; c < k; c++)
				s += qi[c];
			for (int c = 0; c < k; c++)
				qi[c] /= s * b;
		}
	}
	for (size_t i = 0; i < bk; i++)
		codes[i] = (float)(q[i] * b);
	free(q);
	free(row);
}

double swav_forward(float *prob, const float *scores, const float *codes, int n, int k, float t)
{
	int m = 2 * n;
	double loss = 0;

	for (int i = 0; i < m; i++) {
		const float *s = scores + (size_t)i * k, *q = codes + (size_t)pair_of(i, n) * k;
		float *p = prob + (size_t)i * k;
		double mx = -INFINITY, sum = 0, lse;
		for (int c = 0; c < k; c++)
			if (s[c] / t > mx)
				mx = s[c] / t;
		for (int c = 0; c < k; c++)
			sum += exp(s[c] / t - mx);
		lse = mx + log(sum);
		for (int c = 0; c < k; c++) {
			double lp = s[c] / t - lse;
			loss -= q[c] * lp;
			p[c] = (float)exp(lp);
		}
	}
	return loss / m;
}

void swav_backward(float *dscores, const float *prob, const float *codes, int n, int k, float t)
{
	int m = 2 * n;
	float s = 1.0f / (t * (float)m);

	for (int i = 0; i < m; i++) {
		const float *p = prob + (size_t)i * k, *q = codes + (size_t)pair_of(i, n) * k;
		float *g = dscores + (size_t)i * k;
		for (int c = 0; c < k; c++)
			g[c] += (p[c] - q[c]) * s;
	}
}

/* ---- the projection head ---- */

static int add_tensor(nn_head *h, const char *name, int kind, int ndim, int64_t d0, int64_t d1)
{
	nn_tensor *t = &h->t[h->nt];

	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->kind = kind;
	t->ndim = ndim;
	t->shape[0] = d0;
	t->shape[1] = d1;
	t->numel = ndim == 0 ? 1 : ndim == 1 ? (size_t)d0 : (size_t)d0 * (size_t)d1;
	if (kind == NN_PARAM) {
		t->off = h->nparams;
		h->nparams += t->numel;
	} else if (kind == NN_BUFFER) {
		t->off = h->nbuffers;
		h->nbuffers += t->numel;
	} else {
		t->off = (size_t)h->ncounters++;
	}
	return h->nt++;
}

float *nn_head_data(const nn_head *h, const nn_tensor *t)
{
	return t->kind == NN_PARAM ? h->params + t->off : h->buffers + t->off;
}

/* torch.nn.Linear's default: weight and bias uniform in +-1/sqrt(fan_in). */
static void init_linear(nn_head *h, int w, int b, int fan_in, uint64_t *s)
{
	double bound = 1.0 / sqrt((double)fan_in);
	int idx[2] = { w, b };

	for (int k = 0; k < 2; k++) {
		if (idx[k] < 0)
			continue;
		const nn_tensor *t = &h->t[idx[k]];
		float *d = nn_head_data(h, t);
		for (size_t i = 0; i < t->numel; i++)
			d[i] = (float)((2.0 * rng_uniform(s) - 1) * bound);
	}
}

nn_head *nn_head_create(int in, int hidden, int out, int nproto, uint64_t seed)
{
	nn_head *h = xcalloc(1, sizeof *h);
	uint64_t s = seed ^ 0x68656164ULL;
	const char *p = "projection_head";
	char name[64];

	h->in = in;
	h->hidden = hidden;
	h->out = out;
	h->nproto = nproto;
	h->t = xcalloc(12, sizeof *h->t);
	h->w1 = h->b1 = h->gamma = h->beta = h->w2 = h->b2 = h->proto = -1;
	h->run_mean = h->run_var = h->nbt = -1;
	if (hidden > 0) {
		snprintf(name, sizeof name, "%s.0.weight", p);
		h->w1 = add_tensor(h, name, NN_PARAM, 2, hidden, in);
		snprintf(name, sizeof name, "%s.0.bias", p);
		h->b1 = add_tensor(h, name, NN_PARAM, 1, hidden, 0);
		snprintf(name, sizeof name, "%s.1.weight", p);
		h->gamma = add_tensor(h, name, NN_PARAM, 1, hidden, 0);
		snprintf(name, sizeof name, "%s.1.bias", p);
		h->beta = add_tensor(h, name, NN_PARAM, 1, hidden, 0);
		snprintf(name, sizeof name, "%s.1.running_mean", p);
		h->run_mean = add_tensor(h, name, NN_BUFFER, 1, hidden, 0);
		snprintf(name, sizeof name, "%s.1.running_var", p);
		h->run_var = add_tensor(h, name, NN_BUFFER, 1, hidden, 0);
		snprintf(name, sizeof name, "%s.1.num_batches_tracked", p);
		h->nbt = add_tensor(h, name, NN_COUNTER, 0, 0, 0);
		snprintf(name, sizeof name, "%s.3.weight", p);
		h->w2 = add_tensor(h, name, NN_PARAM, 2, out, hidden);
		snprintf(name, sizeof name, "%s.3.bias", p);
		h->b2 = add_tensor(h, name, NN_PARAM, 1, out, 0);
	} else {
		snprintf(name, sizeof name, "%s.0.weight", p);
		h->w2 = add_tensor(h, name, NN_PARAM, 2, out, in);
		snprintf(name, sizeof name, "%s.0.bias", p);
		h->b2 = add_tensor(h, name, NN_PARAM, 1, out, 0);
	}
	if (nproto > 0)
		h->proto = add_tensor(h, "prototypes.weight", NN_PARAM, 2, nproto, out);
	h->params = xcalloc(h->nparams, sizeof *h->params);
	h->grads = xcalloc(h->nparams, sizeof *h->grads);
	h->momentum = xcalloc(h->nparams, sizeof *h->momentum);
	h->buffers = xcalloc(h->nbuffers ? h->nbuffers : 1, sizeof *h->buffers);
	h->counters = xcalloc(h->ncounters ? (size_t)h->ncounters : 1, sizeof *h->counters);
	if (hidden > 0) {
		init_linear(h, h->w1, h->b1, in, &s);
		float *g = nn_head_data(h, &h->t[h->gamma]), *v = nn_head_data(h, &h->t[h->run_var]);
		for (int i = 0; i < hidden; i++)
			g[i] = v[i] = 1.0f;
	}
	init_linear(h, h->w2, h->b2, hidden > 0 ? hidden : in, &s);
	if (nproto > 0) {
		init_linear(h, h->proto, -1, out, &s);
		nn_head_normalize_prototypes(h);
	}
	return h;
}

void nn_head_free(nn_head *h)
{
	if (!h)
		return;
	free(h->t);
	free(h->params);
	free(h->grads);
	free(h->momentum);
	free(h->buffers);
	free(h->counters);
	free(h->h);
	free(h->hr);
	free(h->mean);
	free(h->rstd);
	free(h->z);
	free(h->dh);
	free(h->dhr);
	free(h);
}

void nn_head_setup(nn_head *h, int batch)
{
	size_t hid = (size_t)(h->hidden > 0 ? h->hidden : 1);

	if (batch <= h->batch)
		return;
	h->batch = batch;
	h->h = xreallocarray(h->h, (size_t)batch * hid, sizeof(float));
	h->hr = xreallocarray(h->hr, (size_t)batch * hid, sizeof(float));
	h->dh = xreallocarray(h->dh, (size_t)batch * hid, sizeof(float));
	h->dhr = xreallocarray(h->dhr, (size_t)batch * hid, sizeof(float));
	h->mean = xreallocarray(h->mean, hid, sizeof(float));
	h->rstd = xreallocarray(h->rstd, hid, sizeof(float));
	h->z = xreallocarray(h->z, (size_t)batch * (size_t)h->out, sizeof(float));
}

#define P(i) (h->params + h->t[i].off)
#define G(i) (h->grads + h->t[i].off)
#define B(i) (h->buffers + h->t[i].off)

const float *nn_head_forward(nn_head *h, const float *x, int n)
{
	const float *in = x;
	int fan = h->in;

	if (h->hidden > 0) {
		linear_forward(h->h, x, P(h->w1), P(h->b1), n, h->in, h->hidden);
		batchnorm_forward_train(h->hr, h->mean, h->rstd, B(h->run_mean), B(h->run_var), h->h,
		                        P(h->gamma), P(h->beta), n, h->hidden, 1, 0.1f, 1e-5f, NN_RELU);
		h->counters[h->t[h->nbt].off]++;
		in = h->hr;
		fan = h->hidden;
	}
	linear_forward(h->z, in, P(h->w2), P(h->b2), n, fan, h->out);
	return h->z;
}

void nn_head_backward(nn_head *h, float *dx, const float *dz, const float *x, int n)
{
	if (h->hidden == 0) {
		linear_backward(dx, G(h->w2), G(h->b2), dz, x, P(h->w2), n, h->in, h->out, 0);
		return;
	}
	linear_backward(h->dhr, G(h->w2), G(h->b2), dz, h->hr, P(h->w2), n, h->hidden, h->out,
	                NN_OVERWRITE);
	batchnorm_backward(h->dh, G(h->gamma), G(h->beta), h->dhr, h->h, h->mean, h->rstd,
	                   P(h->gamma), h->hr, n, h->hidden, 1, NN_OVERWRITE);
	linear_backward(dx, G(h->w1), G(h->b1), h->dh, x, P(h->w1), n, h->in, h->hidden, 0);
}

void nn_head_zero_grad(nn_head *h)
{
	memset(h->grads, 0, h->nparams * sizeof *h->grads);
}

void nn_head_sgd_step(nn_head *h, const nn_sgd *o, float lr)
{
	nn_sgd_tensors(h->t, h->nt, h->params, h->grads, h->momentum, &h->sgd_steps, o, lr);
}

void nn_head_normalize_prototypes(nn_head *h)
{
	if (h->proto < 0)
		return;
	float *w = P(h->proto), *norms = xmalloc((size_t)h->nproto * sizeof *norms);
	l2norm_forward(w, norms, w, h->nproto, h->out);
	free(norms);
}

#undef P
#undef G
#undef B

/* ---- weighted k-NN ---- */

void knn_classify(int *pred, const float *query, int nq, const float *bank,
                  const int *bank_labels, int nb, int d, int classes, const int *ks, int nk,
                  float t)
{
	int kmax = 0;

	for (int i = 0; i < nk; i++)
		if (ks[i] > kmax)
			kmax = ks[i];
	if (kmax > nb)
		kmax = nb;
	if (kmax < 1 || nq < 1)
		return;
	knn_hit *hits = xmalloc((size_t)nq * (size_t)kmax * sizeof *hits);
	double *v = xmalloc((size_t)classes * sizeof *v);
	knn_search(hits, query, (size_t)nq, bank, (size_t)nb, d, kmax, NULL);
	for (int q = 0; q < nq; q++) {
		const knn_hit *h = hits + (size_t)q * (size_t)kmax;
		int done = 0;
		memset(v, 0, (size_t)classes * sizeof *v);
		/* ks need not be sorted: vote incrementally in order of k */
		for (int pass = 0; pass < nk; pass++) {
			int k = ks[pass] < kmax ? ks[pass] : kmax;
			if (k < done) {
				memset(v, 0, (size_t)classes * sizeof *v);
				done = 0;
			}
			for (; done < k; done++)
				v[bank_labels[h[done].idx]] += exp((double)h[done].sim / t);
			int best = 0;
			for (int c = 1; c < classes; c++)
				if (v[c] > v[best])
					best = c;
			pred[(size_t)pass * (size_t)nq + (size_t)q] = best;
		}
	}
	free(hits);
	free(v);
}
