/* cull-train's self-supervised training: SimCLR and SwAV steps on two augmented views. */
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

const char *ssl_acc_name(int method)
{
	return method == SSL_SIMCLR ? "pair_acc" : "swap_acc";
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
		for (int i = 0; i < m; i++)      /* row i's prediction against the other view's code */
			hit += argmax(ss->prob + (size_t)i * k, k) ==
			       argmax(ss->codes + (size_t)(i < n ? i + n : i - n) * k, k);
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
