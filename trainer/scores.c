/* cull-train's per-sample training dynamics: forgetting, AUM, EL2N, GraNd, final loss/margin. */
#include "train.h"
#include "io.h"
#include "layers.h"
#include "record.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void stats_init(sample_stats *s, size_t n)
{
	memset(s, 0, sizeof *s);
	s->n = n;
	s->last_correct = xcalloc(n ? n : 1, sizeof *s->last_correct);
	s->forgets = xcalloc(n ? n : 1, sizeof *s->forgets);
	s->ever_correct = xcalloc(n ? n : 1, sizeof *s->ever_correct);
	s->presented = xcalloc(n ? n : 1, sizeof *s->presented);
	s->margin_sum = xcalloc(n ? n : 1, sizeof *s->margin_sum);
	s->el2n = xcalloc(n ? n : 1, sizeof *s->el2n);
	s->grand = xcalloc(n ? n : 1, sizeof *s->grand);
	s->loss = xcalloc(n ? n : 1, sizeof *s->loss);
	s->margin = xcalloc(n ? n : 1, sizeof *s->margin);
	s->pred = xcalloc(n ? n : 1, sizeof *s->pred);
	for (size_t i = 0; i < n; i++)
		s->last_correct[i] = -1;
}

void stats_free(sample_stats *s)
{
	free(s->last_correct);
	free(s->forgets);
	free(s->ever_correct);
	free(s->presented);
	free(s->margin_sum);
	free(s->el2n);
	free(s->grand);
	free(s->loss);
	free(s->margin);
	free(s->pred);
	memset(s, 0, sizeof *s);
}

int argmax(const float *v, int k)
{
	int b = 0;

	for (int j = 1; j < k; j++)
		if (v[j] > v[b])
			b = j;
	return b;
}

float logit_margin(const float *logits, int k, int label)
{
	float other = -INFINITY;

	for (int j = 0; j < k; j++)
		if (j != label && logits[j] > other)
			other = logits[j];
	return k > 1 ? logits[label] - other : logits[label];
}

void stats_presented(sample_stats *s, const size_t *idx, const int *labels, const float *logits,
                     int n, int k)
{
	for (int i = 0; i < n; i++) {
		const float *z = logits + (size_t)i * (size_t)k;
		size_t j = idx[i];
		int correct = argmax(z, k) == labels[i];
		if (s->last_correct[j] == 1 && !correct)
			s->forgets[j]++;
		s->last_correct[j] = correct;
		s->ever_correct[j] |= correct;
		s->presented[j]++;
		s->margin_sum[j] += logit_margin(z, k, labels[i]);
	}
}

eval_result eval_pass(nn_model *m, const dataset *d, const augment *a, int batch, float *x,
                      int *labels, int tta, eval_fn fn, void *ctx)
{
	size_t *idx = xmalloc((size_t)batch * sizeof *idx), correct = 0, tta_correct = 0;
	float *losses = xmalloc((size_t)batch * sizeof *losses);
	int k = m->num_classes, fd = m->feat_dim;
	float *zb = NULL, *fb = NULL, *pb = NULL;
	double lsum = 0, tta_lsum = 0;
	eval_result r = { 0, 0, 0, 0 };

	if (tta) {
		zb = xmalloc((size_t)batch * (size_t)k * sizeof *zb);
		pb = xmalloc((size_t)batch * (size_t)k * sizeof *pb);
		fb = xmalloc((size_t)batch * (size_t)fd * sizeof *fb);
	}
	for (size_t b = 0; b < d->n; b += (size_t)batch) {
		int n = d->n - b < (size_t)batch ? (int)(d->n - b) : batch;
		for (int i = 0; i < n; i++)
			idx[i] = b + (size_t)i;
		make_batch(x, labels, d, idx, n, a, BATCH_PLAIN, 0, 0);
		const float *z = nn_forward(m, x, n, 0);
		lsum += nn_xent(m, labels, n, 0.0f, losses) * n;
		const float *p = nn_probs(m), *f = nn_features(m);
		for (int i = 0; i < n; i++)
			correct += argmax(z + (size_t)i * (size_t)k, k) == labels[i];
		if (tta) {
			memcpy(zb, z, (size_t)n * (size_t)k * sizeof *zb);
			memcpy(fb, f, (size_t)n * (size_t)fd * sizeof *fb);
			make_batch(x, labels, d, idx, n, a, BATCH_MIRROR, 0, 0);
			z = nn_forward(m, x, n, 0);
			f = nn_features(m);
			for (size_t j = 0; j < (size_t)n * (size_t)k; j++)
				zb[j] = 0.5f * (zb[j] + z[j]);
			for (size_t j = 0; j < (size_t)n * (size_t)fd; j++)
				fb[j] = 0.5f * (fb[j] + f[j]);
			tta_lsum += softmax_xent_forward(pb, losses, zb, labels, n, k, 0.0f) * n;
			for (int i = 0; i < n; i++)
				tta_correct += argmax(zb + (size_t)i * (size_t)k, k) == labels[i];
			z = zb, p = pb, f = fb;
		}
		if (fn)
			for (int i = 0; i < n; i++)
				fn(ctx, idx[i], z + (size_t)i * (size_t)k, p + (size_t)i * (size_t)k,
				   f + (size_t)i * (size_t)fd, labels[i], losses[i]);
	}
	free(idx);
	free(losses);
	free(zb);
	free(pb);
	free(fb);
	if (d->n) {
		r.acc = (double)correct / (double)d->n;
		r.loss = lsum / (double)d->n;
		if (tta) {
			r.tta_acc = (double)tta_correct / (double)d->n;
			r.tta_loss = tta_lsum / (double)d->n;
		}
	}
	return r;
}

const char *tta_text(char *buf, size_t len, const eval_result *r)
{
	snprintf(buf, len, " (mirror TTA: accuracy %.4f, loss %.4f)", r->tta_acc, r->tta_loss);
	return buf;
}

typedef struct {
	sample_stats *s;
	const nn_model *m;
	const float *w;          /* fc.weight [k, feat] */
} score_ctx;

/* EL2N = |p - onehot(y)|. GraNd = the norm of the loss gradient with respect to the fc
 * layer's input h, weight W and bias b: with g = p - onehot(y), dW = g h^T, db = g,
 * dh = W^T g, so GraNd = sqrt(|g|^2 (|h|^2 + 1) + |W^T g|^2). */
static void score_one(void *ctx, size_t i, const float *logits, const float *probs,
                      const float *feat, int label, float loss)
{
	score_ctx *c = ctx;
	int k = c->m->num_classes, fd = c->m->feat_dim;
	double g2 = 0, h2 = 0, wg2 = 0;

	(void)logits;
	(void)loss;
	for (int j = 0; j < k; j++) {
		double g = probs[j] - (j == label);
		g2 += g * g;
	}
	for (int f = 0; f < fd; f++) {
		double wg = 0;
		h2 += (double)feat[f] * feat[f];
		for (int j = 0; j < k; j++)
			wg += (double)c->w[(size_t)j * (size_t)fd + (size_t)f] * (probs[j] - (j == label));
		wg2 += wg * wg;
	}
	c->s->el2n[i] += sqrt(g2);
	c->s->grand[i] += sqrt(g2 * (h2 + 1) + wg2);
}

void stats_score_epoch(sample_stats *s, nn_model *m, const dataset *d, const augment *a,
                       int batch, float *x, int *labels)
{
	const nn_tensor *t = nn_find(m, "fc.weight");
	score_ctx c = { s, m, t ? nn_tensor_data(m, t) : NULL };

	if (!c.w)
		die(EXIT_USAGE, "model %s has no fc layer", m->arch);
	eval_pass(m, d, a, batch, x, labels, 0, score_one, &c);
	s->score_runs_done++;
}

typedef struct {
	sample_stats *s;
	int k;
} final_ctx;

static void final_one(void *ctx, size_t i, const float *logits, const float *probs,
                      const float *feat, int label, float loss)
{
	final_ctx *c = ctx;

	(void)probs;
	(void)feat;
	c->s->loss[i] = loss;
	c->s->margin[i] = logit_margin(logits, c->k, label);
	c->s->pred[i] = argmax(logits, c->k);
}

void stats_final(sample_stats *s, nn_model *m, const dataset *d, const augment *a, int batch,
                 float *x, int *labels)
{
	final_ctx c = { s, m->num_classes };

	eval_pass(m, d, a, batch, x, labels, 0, final_one, &c);
}

void stats_write(const sample_stats *s, const dataset *d, long epochs, const char *path)
{
	/* atomically, as the checkpoints: a failed write leaves an older scores file whole */
	char *tmp = is_replaceable(path) ? temp_path(path) : NULL;
	cull_err e;
	rec_writer *w = rec_writer_open(tmp ? tmp : path, &e);
	record r;
	double runs = s->score_runs_done > 0 ? s->score_runs_done : 1;

	if (!w)
		die_err(&e);
	rec_init(&r);
	for (size_t i = 0; i < s->n; i++) {
		rec_clear(&r);
		rec_set_str(&r, "key", d->key[i]);
		rec_set_int(&r, "cls", d->label[i]);
		rec_set_float(&r, "el2n", s->el2n[i] / runs);
		rec_set_float(&r, "grand", s->grand[i] / runs);
		rec_set_float(&r, "forget", s->ever_correct[i] ? s->forgets[i] : (double)epochs);
		rec_set_float(&r, "aum", s->presented[i] ? -s->margin_sum[i] / s->presented[i] : 0.0);
		rec_set_float(&r, "loss", s->loss[i]);
		rec_set_float(&r, "margin", -(double)s->margin[i]);
		rec_set_int(&r, "pred", s->pred[i]);
		if (rec_write(w, &r) < 0)
			die_err(rec_writer_error(w));
	}
	rec_free(&r);
	if (rec_writer_close(w, &e) < 0)
		die_err(&e);
	if (tmp)
		commit_file(tmp, path);
	free(tmp);
}
