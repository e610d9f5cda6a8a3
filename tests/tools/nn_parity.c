/* Parity of nn/ with PyTorch: eval outputs, one training step and 5 SGD steps against torch_ref.py fixtures. */
#include "../unit/check.h"
#include "resnet.h"
#include "safetensors.h"
#include "io.h"

#include <stdlib.h>
#include <string.h>

/* max |a - b| / max |b|: the error relative to the tensor's scale */
static double nerr(const float *a, const float *b, size_t n)
{
	double d = 0, s = 0;
	for (size_t i = 0; i < n; i++) {
		double e = fabs((double)a[i] - b[i]);
		if (isnan(e))
			return INFINITY;
		if (e > d) d = e;
		if (fabs(b[i]) > s) s = fabs(b[i]);
	}
	return s > 0 ? d / s : d;
}

static float *get(const st_file *f, const char *name, size_t *n)
{
	const st_entry *e = st_find(f, name);
	if (!e)
		die(EXIT_DATA, "fixture lacks %s", name);
	float *p = xmalloc(sizeof(float) * (size_t)(st_numel(e) + 1));
	st_to_f32(f, e, p);
	if (n)
		*n = (size_t)st_numel(e);
	return p;
}

static void run_case(const char *dir, const char *name, const char *arch)
{
	char path[4096];
	cull_err err;
	st_file ref;
	int64_t cfg[7];

	snprintf(path, sizeof path, "%s/%s.ref.safetensors", dir, name);
	if (st_load(&ref, path, &err) < 0)
		die(EXIT_DATA, "%s", err.msg);
	st_to_i64(&ref, st_find(&ref, "cfg"), cfg);
	float *hyper = get(&ref, "hyper", NULL);
	int in_ch = (int)cfg[0], classes = (int)cfg[1], en = (int)cfg[2], epx = (int)cfg[3];
	int tn = (int)cfg[4], tpx = (int)cfg[5];

	/* eval: BN folded into the convs */
	nn_model *m = nn_create(arch, in_ch, 1.0, classes, 0);
	snprintf(path, sizeof path, "%s/%s.model.safetensors", dir, name);
	int rc = nn_load(m, path, 0, &err);
	CHECK(rc == 0, "%s: loads torch's state_dict%s%s", name, rc ? ": " : "", rc ? err.msg : "");
	if (rc) {
		nn_free(m);
		st_free(&ref);
		free(hyper);
		return;
	}
	snprintf(path, sizeof path, "%s/%s.cull.safetensors", dir, name);
	if (nn_save(m, path, &err) < 0)
		die_err(&err);
	size_t no, nf;
	float *x = get(&ref, "eval.x", NULL), *want = get(&ref, "eval.out", &no);
	float *feat = get(&ref, "eval.feat", &nf);
	double t0 = now_seconds();
	nn_setup(m, en, epx, epx, 0);
	const float *out = nn_forward(m, x, en, 0);
	double e = nerr(out, want, no);
	CHECK(e <= 1e-4, "%s: eval output (%d x %dpx, BN folded) rel err %.2e (%.2fs)", name, en,
	      epx, e, now_seconds() - t0);
	e = nerr(nn_features(m), feat, nf);
	CHECK(e <= 1e-4, "%s: eval pooled features rel err %.2e", name, e);

	/* the same through an embedding model (no fc) that ignores the file's fc */
	nn_model *emb = nn_create(arch, in_ch, 1.0, 0, 0);
	snprintf(path, sizeof path, "%s/%s.model.safetensors", dir, name);
	rc = nn_load(emb, path, NN_LOAD_IGNORE_EXTRA, &err);
	nn_setup(emb, en, epx, epx, 0);
	e = rc ? INFINITY : nerr(nn_forward(emb, x, en, 0), feat, nf);
	CHECK(e <= 1e-4, "%s: embedding model (num_classes 0) rel err %.2e", name, e);
	nn_free(emb);

	/* eval with unfolded BN on a training setup */
	nn_setup(m, en, epx, epx, 1);
	m->no_fold = 1;
	e = nerr(nn_forward(m, x, en, 0), want, no);
	m->no_fold = 0;
	CHECK(e <= 1e-4, "%s: eval output, plain BN, rel err %.2e", name, e);
	free(x);
	free(want);
	free(feat);

	if (!st_find(&ref, "train.x")) {
		printf("skip %s: training parity (tests/torch_ref.py make --slow)\n", name);
		nn_free(m);
		st_free(&ref);
		free(hyper);
		return;
	}
	/* one training step */
	size_t nx;
	float *xs = get(&ref, "train.x", &nx), *losses = get(&ref, "train.losses", NULL);
	const st_entry *ye = st_find(&ref, "train.y");
	int64_t *y64 = xmalloc(sizeof(int64_t) * (size_t)st_numel(ye));
	int *y = xmalloc(sizeof(int) * (size_t)st_numel(ye));
	st_to_i64(&ref, ye, y64);
	for (int64_t i = 0; i < st_numel(ye); i++)
		y[i] = (int)y64[i];
	size_t per = nx / 5;
	nn_sgd opt = { .momentum = hyper[1], .weight_decay = hyper[2], .nesterov = (int)cfg[6] };
	float lr = hyper[0], smooth = hyper[3];

	/* The training reference is torch in float64; torch's own float32 error against it
	 * (t32: output, worst gradient, losses) sets the bar where it is above 1e-3. */
	float *t32 = get(&ref, "torch32.err", NULL);
	double tol_out = fmax(1e-3, 2 * t32[0]), tol_grad = fmax(1e-3, 2 * t32[1]);
	/* Five SGD steps of the deep ImageNet-stem models at 32-64 px diverge chaotically from
	 * float64 (ReLU masks and batch statistics over a few values flip as weights move):
	 * torch float32's own distance is one draw from that spread, so the losses get 4x it
	 * where it is large; the first step's gradients above keep the 2x bar. */
	double tol_loss = fmax(1e-3, (t32[2] > 1e-3 ? 4 : 2) * t32[2]);
	nn_setup(m, tn, tpx, tpx, 1);
	t0 = now_seconds();
	nn_zero_grad(m);
	out = nn_forward(m, xs, tn, 1);
	want = get(&ref, "train.out", &no);
	e = nerr(out, want, no);
	CHECK(e <= tol_out, "%s: training forward (%d x %dpx) rel err %.2e (torch f32 %.1e)", name,
	      tn, tpx, e, t32[0]);
	free(want);
	double loss = nn_xent(m, y, tn, smooth, NULL);
	e = fabs(loss - losses[0]) / fabs(losses[0]);
	CHECK(e <= tol_loss, "%s: loss %.6f vs torch %.6f", name, loss, losses[0]);
	nn_backward(m, tn);
	double worst = 0, worst_stat = 0;
	const char *wname = "", *sname = "";
	for (int i = 0; i < m->nt; i++) {
		const nn_tensor *t = &m->t[i];
		char key[128];
		if (t->kind == NN_COUNTER)
			continue;
		snprintf(key, sizeof key, "%s.%s", t->kind == NN_PARAM ? "grad" : "stat", t->name);
		float *r = get(&ref, key, NULL);
		if (t->kind == NN_PARAM) {
			e = nerr(m->grads + t->off, r, t->numel);
			if (e > worst) { worst = e; wname = t->name; }
		} else {
			e = nerr(m->buffers + t->off, r, t->numel);
			if (e > worst_stat) { worst_stat = e; sname = t->name; }
		}
		free(r);
	}
	CHECK(worst <= tol_grad, "%s: every parameter gradient, worst rel err %.2e (%s; torch f32 "
	      "%.1e)", name, worst, wname, t32[1]);
	CHECK(worst_stat <= 1e-3, "%s: BN running stats after the step, worst rel err %.2e (%s)",
	      name, worst_stat, sname);
	nn_sgd_step(m, &opt, lr);
	worst = 0;
	for (int i = 0; st_find(&ref, "step1.conv1.weight") && i < m->nt; i++) {
		const nn_tensor *t = &m->t[i];
		char key[128];
		if (t->kind != NN_PARAM)
			continue;
		snprintf(key, sizeof key, "step1.%s", t->name);
		float *r = get(&ref, key, NULL);
		e = nerr(m->params + t->off, r, t->numel);
		if (e > worst) { worst = e; wname = t->name; }
		free(r);
	}
	if (st_find(&ref, "step1.conv1.weight"))
		CHECK(worst <= 1e-4, "%s: parameters after one SGD step%s, worst rel err %.2e (%s)",
		      name, opt.nesterov ? " (nesterov)" : "", worst, wname);
	double worst_loss = 0;
	for (int s = 1; s < 5; s++) {
		loss = nn_train_step(m, xs + s * per, y + s * tn, tn, &opt, lr, smooth, NULL);
		e = fabs(loss - losses[s]) / fabs(losses[s]);
		if (e > worst_loss)
			worst_loss = e;
	}
	/* After the first step a ReLU input near zero may flip in one float32 run and not in
	 * another (the kernels of each ISA round differently): measured on AVX-512, AVX2, AVX,
	 * SSE4.1, NCHW and sgemm, the 5-step loss error is either ~1e-7 or, after such a flip,
	 * 2e-4 to 1.24e-3. A real fault is far larger: without momentum it is 5e-2 to 1.1e-1.
	 * So the trajectory is held to 5e-3, every first-step quantity above to its tight bound. */
	double tol_steps = fmax(tol_loss, 5e-3);
	CHECK(worst_loss <= tol_steps, "%s: losses of 5 SGD steps (momentum%s, weight decay) rel err "
	      "%.2e (torch f32 %.1e; last %.5f vs %.5f, %.2fs)", name, opt.nesterov ? ", nesterov" : "",
	      worst_loss, t32[2], loss, losses[4], now_seconds() - t0);
	free(xs);
	free(losses);
	free(y64);
	free(y);
	free(hyper);
	free(t32);
	nn_free(m);
	st_free(&ref);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : getenv("CULL_NN_FIXTURES");
	char path[4096], line[256], name[128], arch[64];
	FILE *f;

	cull_init(argv[0]);
	if (!dir) {   /* run by tests/nn_parity.test, which makes the fixtures */
		printf("not ok nn_parity: give the fixtures folder (tests/nn_parity.test makes it)\n");
		return 2;
	}
	/* Two threads whatever the machine: oneDNN splits its weight-gradient sums over the
	 * threads, and the 5-step loss curves should not change with the core count. */
	nn_set_threads(2);
	snprintf(path, sizeof path, "%s/cases.txt", dir);
	f = xfopen(path, "r");
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "%127s %63s", name, arch) == 2 && (argc < 3 || strstr(argv[2], name)))
			run_case(dir, name, arch);
	fclose(f);
	return CHECK_DONE();
}
