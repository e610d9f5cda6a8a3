/* SGD exactly as torch.optim.SGD and the one-call training step. */
#include "gpu.h"
#include "resnet.h"

void nn_sgd_tensors(const nn_tensor *ts, int nt, float *params, const float *grads,
                    float *momentum, long *steps, const nn_sgd *o, float lr)
{
	int first = *steps == 0;

	for (int i = 0; i < nt; i++) {
		const nn_tensor *t = &ts[i];
		if (t->kind != NN_PARAM)
			continue;
		float *p = params + t->off, *buf = momentum + t->off;
		const float *g = grads + t->off;
		float wd = o->no_decay_bn && t->ndim == 1 ? 0.0f : o->weight_decay;
		float l2 = o->decoupled ? 0.0f : wd, shrink = o->decoupled ? 1.0f - lr * wd : 1.0f;
		for (size_t k = 0; k < t->numel; k++) {
			float d = g[k];
			if (l2 != 0.0f)
				d += l2 * p[k];
			if (o->momentum != 0.0f) {
				buf[k] = first ? d : buf[k] * o->momentum + (1.0f - o->dampening) * d;
				d = o->nesterov ? d + o->momentum * buf[k] : buf[k];
			}
			if (shrink != 1.0f)
				p[k] *= shrink;
			p[k] += -lr * d;
		}
	}
	(*steps)++;
}

void nn_sgd_step(nn_model *m, const nn_sgd *o, float lr)
{
	if (m->gpu) {
		cull_err e;
		if (gpu_train_sgd(m->gpu, o, lr, &e) < 0)
			die_err(&e);
		return;
	}
	nn_sgd_tensors(m->t, m->nt, m->params, m->grads, m->momentum, &m->sgd_steps, o, lr);
	nn_params_changed(m);
}

double nn_train_step(nn_model *m, const float *x, const int *labels, int n, const nn_sgd *o,
                     float lr, float smoothing, float *losses)
{
	nn_zero_grad(m);
	nn_forward(m, x, n, 1);
	double loss = nn_xent(m, labels, n, smoothing, losses);
	nn_backward(m, n);
	nn_sgd_step(m, o, lr);
	return loss;
}
