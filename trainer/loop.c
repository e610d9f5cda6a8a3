/* cull-train's epoch loop, shared by every method (order, batches, counters, progress,
 * interruption), and the supervised step. */
#include "train.h"
#include "io.h"

#include <stdio.h>
#include <string.h>

long steps_per_epoch(size_t n, int batch)
{
	return (long)(n / (size_t)batch) + (n % (size_t)batch >= 2);
}

void epoch_progress(const trainer *tr, const train_state *t, double t0, long step0,
                    const char *acc_name)
{
	double el = now_seconds() - t0;
	long done = t->step - step0;
	double rate = el > 0 ? (double)done * tr->batch / el : 0;
	int fill = (int)(30 * t->step / (tr->steps_per_epoch ? tr->steps_per_epoch : 1));
	char bar[31];

	memset(bar, '#', (size_t)fill);
	memset(bar + fill, '.', (size_t)(30 - fill));
	bar[30] = '\0';
	fprintf(stderr, "\rcull-train: epoch %ld/%ld [%s] loss %.4f %s %.4f %.0f img/s   ",
	        t->epoch + 1, tr->epochs, bar, t->seen ? t->loss_sum / (double)t->seen : 0.0,
	        acc_name, t->seen ? (double)t->correct / (double)t->seen : 0.0, rate);
}

/* The supervised step: cross-entropy on the labels; correct counts the top-1 hits. */
step_result supervised_step(void *ctx, trainer *tr, const train_state *t, const size_t *idx,
                            int n, float lr)
{
	sample_stats *s = ctx;
	nn_model *m = tr->m;
	int k = m->num_classes;
	step_result r = { 0, 0, n };

	make_batch(tr->x, tr->labels, tr->train, idx, n, tr->aug, BATCH_TRAIN, tr->seed, t->epoch);
	nn_zero_grad(m);
	const float *z = nn_forward(m, tr->x, n, 1);
	double loss = nn_xent(m, tr->labels, n, tr->smoothing, tr->losses);
	for (int i = 0; i < n; i++)
		r.correct += argmax(z + (size_t)i * (size_t)k, k) == tr->labels[i];
	if (s)
		stats_presented(s, idx, tr->labels, z, n, k);
	nn_backward(m, n);
	nn_sgd_step(m, &tr->sgd, lr);
	r.loss = loss * n;
	return r;
}

int train_epoch(trainer *tr, train_state *t, const train_method *method,
                const volatile sig_atomic_t *stop)
{
	const dataset *d = tr->train;
	double t0 = now_seconds(), last = t0;
	long step0 = t->step;

	epoch_order(tr->order, d->n, tr->seed, t->epoch);
	while (t->step < tr->steps_per_epoch) {
		size_t at = (size_t)t->step * (size_t)tr->batch;
		int n = d->n - at < (size_t)tr->batch ? (int)(d->n - at) : tr->batch;
		float lr = (float)schedule_lr(&tr->sched, t->global_step);

		if (*stop)
			return 0;
		step_result r = method->step(method->ctx, tr, t, tr->order + at, n, lr);
		t->loss_sum += r.loss;
		t->correct += r.correct;
		t->seen += r.rows;
		t->step++;
		t->global_step++;
		if (tr->progress && now_seconds() - last > 0.25) {
			epoch_progress(tr, t, t0, step0, method->progress_name);
			last = now_seconds();
		}
	}
	if (tr->progress)
		fprintf(stderr, "\r%100s\r", "");
	return 1;
}
