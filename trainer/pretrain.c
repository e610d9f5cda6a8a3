/* cull-train's self-supervised training: SimCLR and SwAV steps on two augmented views, and
 * the monitors that need no training labels to train: weighted k-NN and a linear probe. */
#include "train.h"
#include "io.h"
#include "layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ssl_method(const char *name)
{
	if (strcmp(name, "simclr") == 0)
		return SSL_SIMCLR;
	if (strcmp(name, "swav") == 0)
		return SSL_SWAV;
	return 0;
}

const char *ssl_method_name(int method)
{
	return method == SSL_SIMCLR ? "simclr" : method == SSL_SWAV ? "swav" : "none";
}

void ssl_state_init(ssl_state *ss, const ssl_opts *so, int feat_dim, int batch, uint64_t seed)
{
	size_t rows = 2 * (size_t)batch, dim = (size_t)so->proj_dim;
	size_t k = so->method == SSL_SWAV ? (size_t)so->prototypes : 0;

	memset(ss, 0, sizeof *ss);
	ss->opts = so;
	ss->head = nn_head_create(feat_dim, so->proj_hidden, so->proj_dim, (int)k, seed);
	nn_head_setup(ss->head, 2 * batch);
	ss->queue_floats = so->method == SSL_SWAV ? 2 * (size_t)so->queue_len * dim : 0;
	ss->queue = xcalloc(ss->queue_floats ? ss->queue_floats : 1, sizeof *ss->queue);
	ss->zn = xmalloc(rows * dim * sizeof(float));
	ss->dzn = xmalloc(rows * dim * sizeof(float));
	ss->dz = xmalloc(rows * dim * sizeof(float));
	ss->norms = xmalloc(rows * sizeof(float));
	if (so->method == SSL_SIMCLR) {
		ss->prob = xmalloc(rows * rows * sizeof(float));
	} else {
		size_t qrows = (size_t)so->queue_len + (size_t)batch;
		ss->prob = xmalloc(rows * k * sizeof(float));
		ss->scores = xmalloc((qrows > rows ? qrows : rows) * k * sizeof(float));
		ss->dscores = xmalloc(rows * k * sizeof(float));
		ss->codes = xmalloc((rows + qrows) * k * sizeof(float));
	}
}

void ssl_state_free(ssl_state *ss)
{
	nn_head_free(ss->head);
	free(ss->queue);
	free(ss->zn);
	free(ss->dzn);
	free(ss->dz);
	free(ss->norms);
	free(ss->prob);
	free(ss->scores);
	free(ss->dscores);
	free(ss->codes);
	memset(ss, 0, sizeof *ss);
}

/* SwAV's codes of one view (rows zn[n, dim]) into codes[n, k], through the queue once it
 * is full; then the view's embeddings enter the queue (newest first). */
static void swav_codes(ssl_state *ss, const ssl_opts *so, int view, const float *zn, int n,
                       float *codes, int use_queue, int fill_queue)
{
	nn_head *h = ss->head;
	const float *proto = nn_head_data(h, &h->t[h->proto]);
	int k = so->prototypes, dim = so->proj_dim, q = so->queue_len;
	float *queue = ss->queue + (size_t)view * (size_t)q * (size_t)dim;

	if (use_queue) {
		/* scores of [queue; batch], Sinkhorn over all of them, the batch's codes kept */
		float *all = ss->scores, *allc = ss->codes + (size_t)2 * n * k;
		linear_forward(all, queue, proto, NULL, q, dim, k);
		linear_forward(all + (size_t)q * k, zn, proto, NULL, n, dim, k);
		sinkhorn(allc, all, q + n, k, so->sinkhorn_eps, so->sinkhorn_iters);
		memcpy(codes, allc + (size_t)q * k, (size_t)n * k * sizeof *codes);
	} else {
		linear_forward(ss->scores, zn, proto, NULL, n, dim, k);
		sinkhorn(codes, ss->scores, n, k, so->sinkhorn_eps, so->sinkhorn_iters);
	}
	if (fill_queue && q > 0) {
		int keep = q - n > 0 ? q - n : 0, in = n < q ? n : q;
		memmove(queue + (size_t)in * dim, queue, (size_t)keep * dim * sizeof *queue);
		memcpy(queue, zn, (size_t)in * dim * sizeof *queue);
	}
}

/* The loss of one step on z = head output [2n, dim]; dloss/dz into ss->dz. Returns the
 * loss, the share of rows "right" in *acc. */
static double ssl_loss(ssl_state *ss, const ssl_opts *so, const float *z, int n, double epoch,
                       double *acc)
{
	nn_head *h = ss->head;
	int m = 2 * n, dim = so->proj_dim, k = so->prototypes;
	size_t zsz = (size_t)m * (size_t)dim * sizeof(float);
	double loss;

	l2norm_forward(ss->zn, ss->norms, z, m, dim);
	memset(ss->dzn, 0, zsz);
	if (so->method == SSL_SIMCLR) {
		loss = ntxent_forward(ss->prob, ss->zn, n, dim, so->temperature);
		ntxent_backward(ss->dzn, ss->prob, ss->zn, n, dim, so->temperature);
		*acc = ntxent_pair_accuracy(ss->prob, n);
	} else {
		float *proto = nn_head_data(h, &h->t[h->proto]);
		float *dproto = h->grads + h->t[h->proto].off;
		int use_queue = so->queue_len > 0 && ss->queue_fill >= so->queue_len;
		int fill = so->queue_len > 0 && epoch >= so->queue_start;
		size_t hit = 0;
		for (int v = 0; v < 2; v++)
			swav_codes(ss, so, v, ss->zn + (size_t)v * n * dim, n,
			           ss->codes + (size_t)v * n * k, use_queue, fill);
		if (fill && ss->queue_fill < so->queue_len)
			ss->queue_fill += n;
		linear_forward(ss->scores, ss->zn, proto, NULL, m, dim, k);
		loss = swav_forward(ss->prob, ss->scores, ss->codes, n, k, so->temperature);
		memset(ss->dscores, 0, (size_t)m * k * sizeof(float));
		swav_backward(ss->dscores, ss->prob, ss->codes, n, k, so->temperature);
		linear_backward(ss->dzn, epoch < so->freeze_protos ? NULL : dproto, NULL, ss->dscores,
		                ss->zn, proto, m, dim, k, 0);
		for (int i = 0; i < m; i++) {
			const float *p = ss->prob + (size_t)i * k;
			const float *c = ss->codes + (size_t)(i < n ? i + n : i - n) * k;
			int bp = 0, bc = 0;
			for (int j = 1; j < k; j++) {
				if (p[j] > p[bp])
					bp = j;
				if (c[j] > c[bc])
					bc = j;
			}
			hit += bp == bc;
		}
		*acc = (double)hit / m;
	}
	memset(ss->dz, 0, zsz);
	l2norm_backward(ss->dz, ss->dzn, ss->zn, ss->norms, m, dim);
	return loss;
}

step_result ssl_step(void *ctx, trainer *tr, const train_state *t, const size_t *idx, int n,
                     float lr)
{
	ssl_state *ss = ctx;
	const ssl_opts *so = ss->opts;
	nn_model *m = tr->m;
	nn_head *h = ss->head;
	double acc, epoch = (double)t->epoch + (double)t->step / (double)tr->steps_per_epoch;
	step_result r;

	make_views(tr->x, tr->train, idx, n, tr->aug, &so->aug, tr->seed, t->epoch);
	if (so->method == SSL_SWAV)
		nn_head_normalize_prototypes(h);
	nn_zero_grad(m);
	nn_head_zero_grad(h);
	const float *f = nn_forward(m, tr->x, 2 * n, 1);
	const float *z = nn_head_forward(h, f, 2 * n);
	double loss = ssl_loss(ss, so, z, n, epoch, &acc);
	nn_head_backward(h, nn_output_grad(m), ss->dz, f, 2 * n);
	nn_backward(m, 2 * n);
	nn_sgd_step(m, &tr->sgd, lr);
	nn_head_sgd_step(h, &tr->sgd, lr);
	r.loss = loss * 2 * n;
	r.correct = (int64_t)lround(acc * 2 * n);
	r.rows = 2 * n;
	return r;
}

/* ---- monitors ---- */

void embed_dataset(float *out, nn_model *m, const dataset *d, const augment *a, int batch,
                   float *x, int *labels)
{
	size_t *idx = xmalloc((size_t)batch * sizeof *idx);
	int dim = m->feat_dim;
	float *norms = xmalloc((size_t)batch * sizeof *norms);

	for (size_t at = 0; at < d->n; at += (size_t)batch) {
		int n = d->n - at < (size_t)batch ? (int)(d->n - at) : batch;
		for (int i = 0; i < n; i++)
			idx[i] = at + (size_t)i;
		make_batch(x, labels, d, idx, n, a, BATCH_PLAIN, 0, 0);
		const float *f = nn_forward(m, x, n, 0);
		l2norm_forward(out + at * (size_t)dim, norms, f, n, dim);
	}
	free(idx);
	free(norms);
}

void knn_accuracy(double *acc, const float *train_f, const dataset *train, const float *val_f,
                  const dataset *val, int dim, int classes, const int *ks, int nk, float t)
{
	int *pred = xmalloc((size_t)nk * val->n * sizeof *pred);

	knn_classify(pred, val_f, (int)val->n, train_f, train->label, (int)train->n, dim, classes,
	             ks, nk, t);
	for (int j = 0; j < nk; j++) {
		size_t hit = 0;
		for (size_t i = 0; i < val->n; i++)
			hit += pred[(size_t)j * val->n + i] == val->label[i];
		acc[j] = val->n ? (double)hit / (double)val->n : 0;
	}
	free(pred);
}

double linear_probe(const float *train_f, const dataset *train, const float *val_f,
                    const dataset *val, int dim, int classes, uint64_t seed)
{
	enum { EPOCHS = 30, BATCH = 256 };
	size_t n = train->n, wsz = (size_t)classes * (size_t)dim;
	double *mu = xcalloc((size_t)dim, sizeof *mu), *sd = xcalloc((size_t)dim, sizeof *sd);
	float *w = xcalloc(wsz, sizeof *w), *b = xcalloc((size_t)classes, sizeof *b);
	float *gw = xmalloc(wsz * sizeof *gw), *gb = xmalloc((size_t)classes * sizeof *gb);
	float *vw = xcalloc(wsz, sizeof *vw), *vb = xcalloc((size_t)classes, sizeof *vb);
	float *x = xmalloc((size_t)BATCH * dim * sizeof *x), *logits = xmalloc((size_t)BATCH * classes * sizeof *logits);
	float *probs = xmalloc((size_t)BATCH * classes * sizeof *probs);
	int *y = xmalloc(BATCH * sizeof *y);
	size_t *order = xmalloc(n * sizeof *order), hit = 0;
	long steps = (long)((n + BATCH - 1) / BATCH) * EPOCHS, step = 0;

	/* standardise each feature with the training mean and std */
	for (size_t i = 0; i < n; i++)
		for (int j = 0; j < dim; j++)
			mu[j] += train_f[i * dim + j];
	for (int j = 0; j < dim; j++)
		mu[j] /= (double)n;
	for (size_t i = 0; i < n; i++)
		for (int j = 0; j < dim; j++) {
			double v = train_f[i * dim + j] - mu[j];
			sd[j] += v * v;
		}
	for (int j = 0; j < dim; j++)
		sd[j] = 1.0 / (sqrt(sd[j] / (double)n) + 1e-6);
	/* softmax regression: SGD with momentum 0.9, lr 0.1 on a cosine, weight decay 1e-4 */
	for (int e = 0; e < EPOCHS; e++) {
		epoch_order(order, n, seed ^ 0x70726f6265ULL, e);
		for (size_t at = 0; at < n; at += BATCH, step++) {
			int m = n - at < BATCH ? (int)(n - at) : BATCH;
			float lr = (float)(0.05 * (1 + cos(M_PI * (double)step / (double)steps)));
			for (int i = 0; i < m; i++) {
				const float *f = train_f + order[at + i] * dim;
				for (int j = 0; j < dim; j++)
					x[(size_t)i * dim + j] = (float)((f[j] - mu[j]) * sd[j]);
				y[i] = train->label[order[at + i]];
			}
			linear_forward(logits, x, w, b, m, dim, classes);
			softmax_xent_forward(probs, NULL, logits, y, m, classes, 0);
			memset(gw, 0, wsz * sizeof *gw);
			memset(gb, 0, (size_t)classes * sizeof *gb);
			memset(logits, 0, (size_t)m * classes * sizeof *logits);
			softmax_xent_backward(logits, probs, y, m, classes, 0);
			linear_backward(NULL, gw, gb, logits, x, w, m, dim, classes, 0);
			for (size_t k = 0; k < wsz; k++) {
				vw[k] = 0.9f * vw[k] + gw[k] + 1e-4f * w[k];
				w[k] -= lr * vw[k];
			}
			for (int k = 0; k < classes; k++) {
				vb[k] = 0.9f * vb[k] + gb[k];
				b[k] -= lr * vb[k];
			}
		}
	}
	for (size_t at = 0; at < val->n; at += BATCH) {
		int m = val->n - at < BATCH ? (int)(val->n - at) : BATCH;
		for (int i = 0; i < m; i++)
			for (int j = 0; j < dim; j++)
				x[(size_t)i * dim + j] = (float)((val_f[(at + i) * dim + j] - mu[j]) * sd[j]);
		linear_forward(logits, x, w, b, m, dim, classes);
		for (int i = 0; i < m; i++) {
			const float *l = logits + (size_t)i * classes;
			int best = 0;
			for (int k = 1; k < classes; k++)
				if (l[k] > l[best])
					best = k;
			hit += best == val->label[at + i];
		}
	}
	free(mu);
	free(sd);
	free(w);
	free(b);
	free(gw);
	free(gb);
	free(vw);
	free(vb);
	free(x);
	free(logits);
	free(probs);
	free(y);
	free(order);
	return val->n ? (double)hit / (double)val->n : 0;
}
