/* cull-train's training run, supervised or --ssl: load the data, set up or resume, train
 * epoch by epoch (evaluate, log, checkpoint), then the score runs and the summary. */
#include "options.h"
#include "io.h"
#include "layers.h"
#include "safetensors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* What a training run holds, from setup to the summary. */
typedef struct {
	options *o;
	int ssl, classes;
	dataset d, v;            /* training and validation images */
	augment a;
	nn_model *m;
	gpu_device *dev;         /* --device cuda: the steps run there (NULL: the CPU) */
	trainer tr;
	train_method method;     /* supervised_step on s, or ssl_step on ss */
	sample_stats s;
	ssl_state ss;
	train_state t;
	char *cfg;               /* options_config: what a resume must match */
	char *state_path;        /* FILE.state of --out, or NULL */
	int evaluated;           /* whether the last epoch was evaluated: */
	eval_result val;         /* a classifier on --val */
	monitor_result mon;      /* an encoder's monitors */
} run;

/* ---- files: the model, the state, the log ---- */

/* The model file: the network, the normalisation and image size it was trained with (for
 * cull-embed), and with --ssl the projection head and prototypes. */
static void save_model(const run *r)
{
	const options *o = r->o;
	nn_sync(r->m);
	st_writer *w = nn_save_writer(r->m);
	char buf[128];

	snprintf(buf, sizeof buf, "%.9g,%.9g,%.9g", o->mean[0], o->mean[1], o->mean[2]);
	st_meta(w, "mean", buf);
	snprintf(buf, sizeof buf, "%.9g,%.9g,%.9g", o->std[0], o->std[1], o->std[2]);
	st_meta(w, "std", buf);
	snprintf(buf, sizeof buf, "%dx%d", r->d.w, r->d.h);
	st_meta(w, "image_size", buf);
	if (r->ssl) {
		const nn_head *h = r->ss.head;
		st_meta(w, "ssl", ssl_method_name(o->ssl.method));
		for (int i = 0; i < h->nt; i++) {
			const nn_tensor *t = &h->t[i];
			if (t->kind == NN_COUNTER)
				st_add(w, t->name, ST_I64, 0, t->shape, &h->counters[t->off]);
			else
				st_add(w, t->name, ST_F32, t->ndim, t->shape, nn_head_data(h, t));
		}
	}
	save_model_atomic(w, o->out);
}

/* --out: the model file and the resume state. */
static void save(const run *r)
{
	save_model(r);
	nn_sync(r->m);
	save_state(r->state_path, r->m, &r->s, &r->t, r->ssl ? &r->ss : NULL);
}

static void log_append(train_state *t, const char *line)
{
	size_t n = strlen(line);

	t->log = xrealloc(t->log, t->log_len + n + 1);
	memcpy(t->log + t->log_len, line, n + 1);
	t->log_len += n;
}

static void write_log(const char *path, const train_state *t)
{
	char *tmp = temp_path(path);
	FILE *f = xfopen(tmp, "w");

	xfwrite(t->log, t->log_len, f, tmp);
	xfclose(f, tmp);
	commit_file(tmp, path);
	free(tmp);
}

static void fmt_time(char *buf, size_t len, double s)
{
	long t = lround(s);

	if (t >= 3600)
		snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

/* ---- setup ---- */

/* The training images (SHARD...), the --val images at their size, the classes. */
static void load_data(run *r)
{
	const options *o = r->o;
	load_opts lo = { o->channels, o->size, o->classes, o->threads, o->quiet, "training",
	                 r->ssl };

	data_load(&r->d, o->shards, o->nshards, &lo);
	data_report("training", &r->d, o->quiet);
	if (r->d.n < 2)
		die(EXIT_DATA, "need at least 2 training images, got %zu", r->d.n);
	if (o->nval) {
		lo.what = "validation";
		lo.channels = r->d.c;
		r->v.h = r->d.h;
		r->v.w = r->d.w;
		r->v.c = r->d.c;
		data_load(&r->v, o->val, o->nval, &lo);
		data_report("validation", &r->v, o->quiet);
	}
	r->classes = o->classes ? o->classes : data_classes(&r->d, &r->v);
	if (r->ssl)
		check_monitor_labels(&o->mon, &r->d, &r->v);
	else if (r->classes < 2)
		die(EXIT_DATA, "the training data has a single class; give --classes");
}

/* The optimiser, the schedule and the batch buffers (views images a sample). */
static void trainer_setup(run *r, int views)
{
	const options *o = r->o;
	const dataset *d = &r->d;
	trainer *tr = &r->tr;

	memset(tr, 0, sizeof *tr);
	tr->m = r->m;
	tr->train = d;
	tr->aug = &r->a;
	tr->sgd.momentum = (float)o->momentum;
	tr->sgd.weight_decay = (float)o->wd;
	tr->sgd.nesterov = o->nesterov;
	tr->sgd.no_decay_bn = o->no_decay_bn;
	tr->sched = o->sched;
	tr->sched.lr = o->lr;
	tr->batch = o->batch;
	tr->smoothing = (float)o->smoothing;
	tr->steps_per_epoch = steps_per_epoch(d->n, o->batch);
	tr->sched.steps_per_epoch = tr->steps_per_epoch;
	tr->sched.total_steps = tr->steps_per_epoch * o->epochs;
	tr->epochs = o->epochs;
	tr->seed = o->seed;
	tr->x = xmalloc((size_t)views * (size_t)o->batch * (size_t)d->h * (size_t)d->w *
	                (size_t)d->c * sizeof(float));
	tr->labels = xmalloc((size_t)o->batch * sizeof *tr->labels);
	tr->losses = xmalloc((size_t)o->batch * sizeof *tr->losses);
	tr->order = xmalloc(d->n * sizeof *tr->order);
	tr->progress = !o->quiet && stderr_is_tty();
}

/* The augmentation, the model (and with --ssl its head), the trainer, the statistics. */
static void setup(run *r)
{
	options *o = r->o;
	const dataset *d = &r->d;
	int views = r->ssl ? 2 : 1;

	options_default_norm(o, d->c);
	memset(&r->a, 0, sizeof r->a);
	r->a.pad = o->pad;
	r->a.flip = o->flip;
	memcpy(r->a.mean, o->mean, sizeof r->a.mean);
	memcpy(r->a.std, o->std, sizeof r->a.std);

	r->m = nn_create(o->arch, d->c, o->width, r->ssl ? 0 : r->classes,
	                 hash3(o->seed, 0x696e6974ULL, 0));
	if (!r->m)
		die(EXIT_USAGE, "--arch: unknown architecture '%s' (known: %s)", o->arch,
		    nn_arch_names());
	nn_setup(r->m, views * o->batch, d->h, d->w, 1);
	if (r->ssl)
		ssl_state_init(&r->ss, &o->ssl, r->m->feat_dim, o->batch,
		               hash3(o->seed, 0x68656164ULL, 0));
	trainer_setup(r, views);
	stats_init(&r->s, d->n);
	r->method = r->ssl ? (train_method){ ssl_step, &r->ss, "pair" } :
	            (train_method){ supervised_step, &r->s, "acc" };
}

/* --device: the GPU, taken once (auto: or the CPU, saying why). */
static void open_device(run *r)
{
	const options *o = r->o;
	cull_err e;

	if (o->dev.kind == NN_DEV_CPU)
		return;
	r->dev = gpu_open(o->dev.index, &e);
	if (!r->dev && o->dev.kind == NN_DEV_CUDA)
		die_err(&e);
	if (!o->quiet)
		note(r->dev ? "training on %s" : "--device auto: no usable GPU (%s); training on "
		     "the CPU", r->dev ? gpu_describe(r->dev) : e.msg);
}

/* m's training steps on the GPU, from its parameters now. */
static void on_device(run *r, nn_model *m)
{
	cull_err e;

	if (r->dev && !gpu_train_create(r->dev, m, &e))
		die_err(&e);
}

/* A fresh state (and an empty --log), or with --resume the saved one when there is one. */
static void start_or_resume(run *r)
{
	const options *o = r->o;
	train_state *t = &r->t;
	uint64_t fp;

	r->cfg = options_config(o, &r->d, r->classes);
	t->config = xstrdup(r->cfg);
	t->log = xstrdup("");
	t->threads = o->threads;
	t->data_fp = fp = data_fingerprint(&r->d);
	if (o->out)
		r->state_path = xasprintf("%s.state", o->out);
	if (!o->resume) {
		if (o->log)
			write_log(o->log, t);     /* start it empty */
		return;
	}
	if (load_state(r->state_path, r->m, &r->s, t, r->ssl ? &r->ss : NULL, r->cfg) == 1) {
		if (!o->quiet)
			note("--resume: no %s yet; starting from the beginning", r->state_path);
		return;
	}
	if (t->data_fp != fp)
		die(EXIT_USAGE, "--resume: the training data differs from the data %s was "
		    "trained on (same count, other keys, labels or pixels)", r->state_path);
	if (t->threads != o->threads)
		warn("--resume: the state was written with --threads %lld, this run uses "
		     "%d: the result may differ from an uninterrupted run in the last bits",
		     (long long)t->threads, o->threads);
	t->threads = o->threads;
	if (!o->quiet)
		note("resuming %s at epoch %ld, step %ld", r->state_path, t->epoch + 1, t->step);
	if (o->log)
		write_log(o->log, t);
}

/* What is about to be trained, on standard error. */
static void announce(const run *r)
{
	const options *o = r->o;
	const nn_model *m = r->m;
	const char *prec = nn_bf16() == 1 ? ", bfloat16 convolutions" :
	                   nn_bf16() == 2 ? ", bfloat16 emulated (CULL_NN_BF16)" : "";

	if (!o->quiet && r->ssl)
		note("%s width %g (%zu parameters, %d-d features), %s with a %d-%d-%d head "
		     "(%zu parameters), %d epochs of %ld steps, batch %d (x2 views), %d threads%s",
		     o->arch, o->width, m->nparams, m->feat_dim, ssl_method_name(o->ssl.method),
		     m->feat_dim, o->ssl.proj_hidden, o->ssl.proj_dim, r->ss.head->nparams, o->epochs,
		     r->tr.steps_per_epoch, o->batch, o->threads, prec);
	else if (!o->quiet)
		note("%s width %g (%zu parameters), %d classes, %d epochs of %ld steps, batch %d, "
		     "%d threads%s", o->arch, o->width, m->nparams, r->classes, o->epochs,
		     r->tr.steps_per_epoch, o->batch, o->threads, prec);
}

/* ---- the epochs ---- */

/* An epoch stopped by SIGINT or SIGTERM: save what --resume needs and exit. */
static void stop_interrupted(const run *r) __attribute__((noreturn));
static void stop_interrupted(const run *r)
{
	const train_state *t = &r->t;

	if (r->o->out) {
		save(r);
		note("interrupted at epoch %ld, step %ld; saved %s and %s (continue with "
		     "--resume)", t->epoch + 1, t->step, r->o->out, r->state_path);
	} else {
		note("interrupted at epoch %ld, step %ld; nothing saved (no --out)", t->epoch + 1,
		     t->step);
	}
	exit(EXIT_INTERRUPTED);
}

/* Evaluate on --val if this epoch is one to: the classifier, or an encoder's monitors.
 * Returns the seconds it took (0 when not evaluated). */
static double evaluate(run *r)
{
	const options *o = r->o;
	const train_state *t = &r->t;
	double tv;

	r->evaluated = o->nval && r->v.n && ((t->epoch + 1) % o->eval_every == 0 ||
	                                     t->epoch + 1 == o->epochs);
	if (r->ssl)
		r->evaluated = r->evaluated && (o->mon.knn || o->mon.probe);
	if (!r->evaluated)
		return 0;
	tv = now_seconds();
	if (r->ssl)
		monitor_run(&r->mon, &o->mon, &r->tr, &r->v, r->classes);
	else
		r->val = eval_pass(r->m, &r->v, &r->a, o->batch, r->tr.x, r->tr.labels, o->tta,
		                   NULL, NULL);
	tv = now_seconds() - tv;
	r->t.elapsed += tv;
	return tv;
}

/* The epoch's line on standard error and in the log (JSON Lines): loss, accuracy, the
 * evaluation, learning rate, speed (ips images a second) and times (dt training, tv
 * evaluating). */
static void report_epoch(run *r, double dt, double tv, double ips)
{
	const options *o = r->o;
	train_state *t = &r->t;
	double lr = schedule_lr(&r->tr.sched, t->global_step - 1);
	double loss = t->seen ? t->loss_sum / (double)t->seen : 0;
	double acc = t->seen ? (double)t->correct / (double)t->seen : 0;
	double left = (t->elapsed / (double)(t->epoch + 1)) * (double)(o->epochs - t->epoch - 1);
	char line[1024], eta[32], el[32], tb[64];

	fmt_time(eta, sizeof eta, left);
	fmt_time(el, sizeof el, t->elapsed);
	if (!o->quiet) {
		char vbuf[256] = "";
		if (r->evaluated && r->ssl)
			monitor_text(vbuf, sizeof vbuf, &o->mon, &r->mon);
		else if (r->evaluated)
			snprintf(vbuf, sizeof vbuf, " val_loss %.4f val_acc %.4f%s", r->val.loss,
			         r->val.acc, o->tta ? tta_text(tb, sizeof tb, &r->val) : "");
		note("epoch %ld/%d loss %.4f %s %.4f%s lr %.4g %.0f img/s %s ETA %s",
		     t->epoch + 1, o->epochs, loss, r->ssl ? ssl_acc_name(o->ssl.method) : "acc", acc,
		     vbuf, lr, ips, el, eta);
	}
	snprintf(line, sizeof line, "{\"epoch\":%ld,\"step\":%ld,\"lr\":%.6g,\"loss\":%.6f,"
	         "\"%s\":%.6f,", t->epoch + 1, t->global_step, lr, loss,
	         r->ssl ? ssl_acc_name(o->ssl.method) : "train_acc", acc);
	if (r->evaluated && r->ssl)
		monitor_json(line + strlen(line), sizeof line - strlen(line), &o->mon, &r->mon);
	else if (r->evaluated)
		snprintf(line + strlen(line), sizeof line - strlen(line),
		         "\"val_loss\":%.6f,\"val_acc\":%.6f,", r->val.loss, r->val.acc);
	if (r->evaluated && o->tta)
		snprintf(line + strlen(line), sizeof line - strlen(line),
		         "\"val_loss_tta\":%.6f,\"val_acc_tta\":%.6f,", r->val.tta_loss,
		         r->val.tta_acc);
	snprintf(line + strlen(line), sizeof line - strlen(line),
	         "\"img_s\":%.1f,\"epoch_time\":%.3f,\"elapsed\":%.3f}\n", ips, dt + tv,
	         t->elapsed);
	log_append(t, line);
}

/* One epoch (or the rest of a resumed one): its steps, evaluation, scores at the score
 * epoch, report, then the log and checkpoint written. */
static void run_epoch(run *r)
{
	const options *o = r->o;
	train_state *t = &r->t;
	double t0 = now_seconds(), tv;
	long seen0 = (long)t->seen;
	int done = train_epoch(&r->tr, t, &r->method, &cull_interrupted);
	double dt = now_seconds() - t0;

	t->elapsed += dt;
	if (!done)
		stop_interrupted(r);
	double ips = dt > 0 ? (double)(t->seen - seen0) / dt : 0;
	tv = evaluate(r);
	if (o->scores && t->epoch + 1 == o->score_epoch && r->s.score_runs_done == 0)
		stats_score_epoch(&r->s, r->m, &r->d, &r->a, o->batch, r->tr.x, r->tr.labels);
	report_epoch(r, dt, tv, ips);
	t->epoch++;
	t->step = 0;
	t->loss_sum = 0;
	t->correct = t->seen = 0;
	if (o->log)
		write_log(o->log, t);
	if (o->out)
		save(r);
}

/* ---- after the epochs ---- */

/* One extra initialisation for --score-runs: train to the score epoch, add el2n/grand. */
static void score_run(run *r, int n)
{
	const options *o = r->o;
	trainer tr = r->tr;
	train_state t = { 0 };
	uint64_t seed = hash3(o->seed, 0x72756e73ULL, (uint64_t)n);
	train_method plain = { supervised_step, NULL, "acc" };
	volatile sig_atomic_t never = 0;

	tr.m = nn_create(o->arch, r->d.c, o->width, r->classes, seed);
	tr.seed = seed;
	tr.progress = 0;
	nn_setup(tr.m, o->batch, r->d.h, r->d.w, 1);
	on_device(r, tr.m);
	for (t.epoch = 0; t.epoch < o->score_epoch; t.epoch++) {
		t.step = 0;
		train_epoch(&tr, &t, &plain, &never);
		if (cull_interrupted)
			break;
	}
	if (!cull_interrupted)
		stats_score_epoch(&r->s, tr.m, &r->d, &r->a, o->batch, r->tr.x, r->tr.labels);
	nn_free(tr.m);
}

/* --scores: the final loss and margin of every sample, the further score runs (each
 * saved for --resume), then the records. */
static void write_scores(run *r)
{
	const options *o = r->o;
	sample_stats *s = &r->s;

	stats_final(s, r->m, &r->d, &r->a, o->batch, r->tr.x, r->tr.labels);
	while (s->score_runs_done < o->score_runs && !cull_interrupted) {
		if (!o->quiet)
			note("score run %d of %d: training a fresh model for %d epochs",
			     s->score_runs_done + 1, o->score_runs, o->score_epoch);
		score_run(r, s->score_runs_done);
		if (o->out && !cull_interrupted)
			save_state(r->state_path, r->m, s, &r->t, NULL);
	}
	if (cull_interrupted) {
		note("interrupted during the score runs; %s", o->out ? "continue with --resume" :
		     "nothing saved (no --out)");
		exit(EXIT_INTERRUPTED);
	}
	stats_write(s, &r->d, o->epochs, o->scores);
}

static void summary(const run *r)
{
	const options *o = r->o;
	char el[32], tb[64];

	if (o->quiet)
		return;
	fmt_time(el, sizeof el, r->t.elapsed);
	if (r->evaluated && r->ssl) {
		char vbuf[256];
		monitor_text(vbuf, sizeof vbuf, &o->mon, &r->mon);
		note("trained %s (%s) on %zu images for %d epochs in %s;%s", o->arch,
		     ssl_method_name(o->ssl.method), r->d.n, o->epochs, el, vbuf);
	} else if (r->evaluated) {
		note("trained %s on %zu images for %d epochs in %s; val_acc %.4f%s", o->arch, r->d.n,
		     o->epochs, el, r->val.acc, o->tta ? tta_text(tb, sizeof tb, &r->val) : "");
	} else {
		note("trained %s on %zu images for %d epochs in %s", o->arch, r->d.n, o->epochs, el);
	}
}

static void run_free(run *r)
{
	stats_free(&r->s);
	if (r->ssl)
		ssl_state_free(&r->ss);
	free(r->tr.x);
	free(r->tr.labels);
	free(r->tr.losses);
	free(r->tr.order);
	free(r->cfg);
	free(r->t.config);
	free(r->t.log);
	free(r->state_path);
	data_free(&r->d);
	data_free(&r->v);
	nn_free(r->m);
	gpu_close(r->dev);
}

int train(options *o)
{
	run r;

	memset(&r, 0, sizeof r);
	r.o = o;
	r.ssl = o->ssl.method != SSL_NONE;
	load_data(&r);
	setup(&r);
	open_device(&r);
	start_or_resume(&r);
	on_device(&r, r.m);
	announce(&r);
	catch_interrupts();
	while (r.t.epoch < o->epochs)
		run_epoch(&r);
	if (o->scores)
		write_scores(&r);
	summary(&r);
	run_free(&r);
	return 0;
}
