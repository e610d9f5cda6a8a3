/* cull-train's encoder monitors, for --ssl training and --eval-only --knn-eval: embeddings
 * as cull-embed writes them, weighted k-NN, a linear probe, and their report. */
#include "train.h"
#include "io.h"
#include "layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
		for (int i = 0; i < m; i++)
			hit += argmax(logits + (size_t)i * classes, classes) == val->label[at + i];
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

void check_monitor_labels(const monitor_opts *mo, const dataset *d, const dataset *v)
{
	const dataset *sets[2] = { d, v };

	if (!mo->knn && !mo->probe)
		return;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < sets[k]->n; i++)
			if (sets[k]->label[i] < 0)
				die(EXIT_DATA, "--knn-eval/--linear-probe: %s sample %s has no .cls member "
				    "(the monitors compare labels; training without them needs neither "
				    "option)", k ? "validation" : "training", sets[k]->key[i]);
}

void monitor_run(monitor_result *r, const monitor_opts *mo, const trainer *tr,
                 const dataset *v, int classes)
{
	nn_model *m = tr->m;
	const dataset *d = tr->train;
	int dim = m->feat_dim;
	float *tf = xmalloc(d->n * (size_t)dim * sizeof *tf), *vf = xmalloc(v->n * (size_t)dim * sizeof *vf);

	embed_dataset(tf, m, d, tr->aug, tr->batch, tr->x, tr->labels);
	embed_dataset(vf, m, v, tr->aug, tr->batch, tr->x, tr->labels);
	if (mo->knn)
		knn_accuracy(r->knn, tf, d, vf, v, dim, classes, mo->k, mo->nk, mo->t);
	if (mo->probe)
		r->probe = linear_probe(tf, d, vf, v, dim, classes, tr->seed);
	free(tf);
	free(vf);
}

void monitor_text(char *buf, size_t len, const monitor_opts *mo, const monitor_result *r)
{
	size_t k = 0;

	buf[0] = '\0';
	for (int i = 0; mo->knn && i < mo->nk && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, " knn%d %.4f", mo->k[i], r->knn[i]);
	if (mo->probe && k < len)
		snprintf(buf + k, len - k, " linear %.4f", r->probe);
}

void monitor_json(char *buf, size_t len, const monitor_opts *mo, const monitor_result *r)
{
	size_t k = (size_t)snprintf(buf, len, "\"val_acc\":%.6f,", mo->knn ? r->knn[0] : r->probe);

	for (int i = 0; mo->knn && i < mo->nk && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, "\"knn_acc_%d\":%.6f,", mo->k[i], r->knn[i]);
	if (mo->probe && k < len)
		snprintf(buf + k, len - k, "\"linear_acc\":%.6f,", r->probe);
}
