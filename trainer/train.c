/* cull-train: train or evaluate a ResNet on WebDataset shards; write training-dynamics scores. */
#include "options.h"
#include "io.h"
#include "layers.h"
#include "record.h"
#include "safetensors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- training ---- */

/* The model file: the network, the normalisation and image size it was trained with (for
 * cull-embed), and with --ssl the projection head and prototypes. */
static void save_model(const options *o, const nn_model *m, const ssl_state *ss,
                       const dataset *d)
{
	st_writer *w = nn_save_writer(m);
	char buf[128];

	snprintf(buf, sizeof buf, "%.9g,%.9g,%.9g", o->mean[0], o->mean[1], o->mean[2]);
	st_meta(w, "mean", buf);
	snprintf(buf, sizeof buf, "%.9g,%.9g,%.9g", o->std[0], o->std[1], o->std[2]);
	st_meta(w, "std", buf);
	snprintf(buf, sizeof buf, "%dx%d", d->w, d->h);
	st_meta(w, "image_size", buf);
	if (ss) {
		const nn_head *h = ss->head;
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

/* One extra initialisation for --score-runs: train to the score epoch, add el2n/grand. */
static void score_run(const options *o, trainer *base, sample_stats *s, int run, int classes)
{
	trainer tr = *base;
	train_state t = { 0 };
	uint64_t seed = hash3(o->seed, 0x72756e73ULL, (uint64_t)run);
	train_method plain = { supervised_step, NULL, "acc" };
	volatile sig_atomic_t never = 0;

	tr.m = nn_create(o->arch, base->train->c, o->width, classes, seed);
	tr.seed = seed;
	tr.progress = 0;
	nn_setup(tr.m, o->batch, base->train->h, base->train->w, 1);
	for (t.epoch = 0; t.epoch < o->score_epoch; t.epoch++) {
		t.step = 0;
		train_epoch(&tr, &t, &plain, &never);
		if (cull_interrupted)
			break;
	}
	if (!cull_interrupted)
		stats_score_epoch(s, tr.m, base->train, base->aug, o->batch, base->x, base->labels);
	nn_free(tr.m);
}

int train(options *o)
{
	dataset d = { 0 }, v = { 0 };
	load_opts lo = { o->channels, o->size, o->classes, o->threads, o->quiet, "training",
	                 o->ssl.method != SSL_NONE };
	augment a;
	trainer tr;
	train_state t = { 0 };
	sample_stats s;
	int classes, evaluated = 0, ssl = o->ssl.method != SSL_NONE, views = ssl ? 2 : 1;
	eval_result val = { 0, 0, 0, 0 };
	ssl_state ss = { 0 };
	monitor_result mr = { { 0 }, 0 };
	char *state_path = NULL, *cfg, line[1024], eta[32], el[32], tb[64];
	nn_model *m;

	data_load(&d, o->shards, o->nshards, &lo);
	data_report("training", &d, o->quiet);
	if (d.n < 2)
		die(EXIT_DATA, "need at least 2 training images, got %zu", d.n);
	if (o->nval) {
		lo.what = "validation";
		lo.channels = d.c;
		v.h = d.h;
		v.w = d.w;
		v.c = d.c;
		data_load(&v, o->val, o->nval, &lo);
		data_report("validation", &v, o->quiet);
	}
	classes = o->classes ? o->classes : data_classes(&d, &v);
	if (ssl)
		check_monitor_labels(&o->mon, &d, &v);
	else if (classes < 2)
		die(EXIT_DATA, "the training data has a single class; give --classes");
	options_default_norm(o, d.c);
	memset(&a, 0, sizeof a);
	a.pad = o->pad;
	a.flip = o->flip;
	memcpy(a.mean, o->mean, sizeof a.mean);
	memcpy(a.std, o->std, sizeof a.std);

	m = nn_create(o->arch, d.c, o->width, ssl ? 0 : classes, hash3(o->seed, 0x696e6974ULL, 0));
	if (!m)
		die(EXIT_USAGE, "--arch: unknown architecture '%s' (known: %s)", o->arch,
		    nn_arch_names());
	nn_setup(m, views * o->batch, d.h, d.w, 1);
	if (ssl)
		ssl_state_init(&ss, &o->ssl, m->feat_dim, o->batch, hash3(o->seed, 0x68656164ULL, 0));

	memset(&tr, 0, sizeof tr);
	tr.m = m;
	tr.train = &d;
	tr.aug = &a;
	tr.sgd.momentum = (float)o->momentum;
	tr.sgd.weight_decay = (float)o->wd;
	tr.sgd.nesterov = o->nesterov;
	tr.sgd.no_decay_bn = o->no_decay_bn;
	tr.sched = o->sched;
	tr.sched.lr = o->lr;
	tr.batch = o->batch;
	tr.smoothing = (float)o->smoothing;
	tr.steps_per_epoch = steps_per_epoch(d.n, o->batch);
	tr.sched.steps_per_epoch = tr.steps_per_epoch;
	tr.sched.total_steps = tr.steps_per_epoch * o->epochs;
	tr.epochs = o->epochs;
	tr.seed = o->seed;
	tr.x = xmalloc((size_t)views * (size_t)o->batch * (size_t)d.h * (size_t)d.w * (size_t)d.c * sizeof(float));
	tr.labels = xmalloc((size_t)o->batch * sizeof *tr.labels);
	tr.losses = xmalloc((size_t)o->batch * sizeof *tr.losses);
	tr.order = xmalloc(d.n * sizeof *tr.order);
	tr.progress = !o->quiet && stderr_is_tty();
	stats_init(&s, d.n);

	cfg = options_config(o, &d, classes);
	t.config = xstrdup(cfg);
	t.log = xstrdup("");
	t.threads = o->threads;
	t.data_fp = data_fingerprint(&d);
	if (o->out)
		state_path = xasprintf("%s.state", o->out);
	if (o->resume) {
		uint64_t fp = t.data_fp;
		if (load_state(state_path, m, &s, &t, ssl ? &ss : NULL, cfg) == 1) {
			if (!o->quiet)
				note("--resume: no %s yet; starting from the beginning", state_path);
		} else {
			if (t.data_fp != fp)
				die(EXIT_USAGE, "--resume: the training data differs from the data %s was "
				    "trained on (same count, other keys, labels or pixels)", state_path);
			if (t.threads != o->threads)
				warn("--resume: the state was written with --threads %lld, this run uses "
				     "%d: the result may differ from an uninterrupted run in the last bits",
				     (long long)t.threads, o->threads);
			t.threads = o->threads;
			if (!o->quiet)
				note("resuming %s at epoch %ld, step %ld", state_path, t.epoch + 1, t.step);
			if (o->log)
				write_log(o->log, &t);
		}
	} else if (o->log) {
		write_log(o->log, &t);     /* start it empty */
	}
	const char *prec = nn_bf16() == 1 ? ", bfloat16 convolutions" :
	                   nn_bf16() == 2 ? ", bfloat16 emulated (CULL_NN_BF16)" : "";
	if (!o->quiet && ssl)
		note("%s width %g (%zu parameters, %d-d features), %s with a %d-%d-%d head "
		     "(%zu parameters), %d epochs of %ld steps, batch %d (x2 views), %d threads%s",
		     o->arch, o->width, m->nparams, m->feat_dim, ssl_method_name(o->ssl.method),
		     m->feat_dim, o->ssl.proj_hidden, o->ssl.proj_dim, ss.head->nparams, o->epochs,
		     tr.steps_per_epoch, o->batch, o->threads, prec);
	else if (!o->quiet)
		note("%s width %g (%zu parameters), %d classes, %d epochs of %ld steps, batch %d, "
		     "%d threads%s", o->arch, o->width, m->nparams, classes, o->epochs,
		     tr.steps_per_epoch, o->batch, o->threads, prec);

	train_method method = ssl ? (train_method){ ssl_step, &ss, "pair" } :
	                      (train_method){ supervised_step, &s, "acc" };
	catch_interrupts();
	while (t.epoch < o->epochs) {
		double t0 = now_seconds(), tv = 0;
		long seen0 = (long)t.seen;
		int done = train_epoch(&tr, &t, &method, &cull_interrupted);
		double dt = now_seconds() - t0;
		t.elapsed += dt;
		if (!done) {
			if (o->out) {
				save_model(o, m, ssl ? &ss : NULL, &d);
				save_state(state_path, m, &s, &t, ssl ? &ss : NULL);
				note("interrupted at epoch %ld, step %ld; saved %s and %s (continue with "
				     "--resume)", t.epoch + 1, t.step, o->out, state_path);
			} else {
				note("interrupted at epoch %ld, step %ld; nothing saved (no --out)",
				     t.epoch + 1, t.step);
			}
			exit(EXIT_INTERRUPTED);
		}
		double ips = dt > 0 ? (double)(t.seen - seen0) / dt : 0;
		evaluated = o->nval && v.n && ((t.epoch + 1) % o->eval_every == 0 ||
		                               t.epoch + 1 == o->epochs);
		if (ssl)
			evaluated = evaluated && (o->mon.knn || o->mon.probe);
		if (evaluated) {
			tv = now_seconds();
			if (ssl)
				monitor_run(&mr, &o->mon, &tr, &v, classes);
			else
				val = eval_pass(m, &v, &a, o->batch, tr.x, tr.labels, o->tta, NULL, NULL);
			tv = now_seconds() - tv;
			t.elapsed += tv;
		}
		if (o->scores && t.epoch + 1 == o->score_epoch && s.score_runs_done == 0)
			stats_score_epoch(&s, m, &d, &a, o->batch, tr.x, tr.labels);
		double lr = schedule_lr(&tr.sched, t.global_step - 1);
		double loss = t.seen ? t.loss_sum / (double)t.seen : 0;
		double acc = t.seen ? (double)t.correct / (double)t.seen : 0;
		double left = (t.elapsed / (double)(t.epoch + 1)) * (double)(o->epochs - t.epoch - 1);
		fmt_time(eta, sizeof eta, left);
		fmt_time(el, sizeof el, t.elapsed);
		if (!o->quiet) {
			char vbuf[256] = "";
			if (evaluated && ssl)
				monitor_text(vbuf, sizeof vbuf, &o->mon, &mr);
			else if (evaluated)
				snprintf(vbuf, sizeof vbuf, " val_loss %.4f val_acc %.4f%s", val.loss, val.acc,
				         o->tta ? tta_text(tb, sizeof tb, &val) : "");
			note("epoch %ld/%d loss %.4f %s %.4f%s lr %.4g %.0f img/s %s ETA %s",
			     t.epoch + 1, o->epochs, loss, ssl ? ssl_acc_name(o->ssl.method) : "acc", acc, vbuf, lr,
			     ips, el, eta);
		}
		snprintf(line, sizeof line, "{\"epoch\":%ld,\"step\":%ld,\"lr\":%.6g,\"loss\":%.6f,"
		         "\"%s\":%.6f,", t.epoch + 1, t.global_step, lr, loss,
		         ssl ? ssl_acc_name(o->ssl.method) : "train_acc", acc);
		if (evaluated && ssl)
			monitor_json(line + strlen(line), sizeof line - strlen(line), &o->mon, &mr);
		else if (evaluated)
			snprintf(line + strlen(line), sizeof line - strlen(line),
			         "\"val_loss\":%.6f,\"val_acc\":%.6f,", val.loss, val.acc);
		if (evaluated && o->tta)
			snprintf(line + strlen(line), sizeof line - strlen(line),
			         "\"val_loss_tta\":%.6f,\"val_acc_tta\":%.6f,", val.tta_loss, val.tta_acc);
		snprintf(line + strlen(line), sizeof line - strlen(line),
		         "\"img_s\":%.1f,\"epoch_time\":%.3f,\"elapsed\":%.3f}\n", ips, dt + tv,
		         t.elapsed);
		log_append(&t, line);
		t.epoch++;
		t.step = 0;
		t.loss_sum = 0;
		t.correct = t.seen = 0;
		if (o->log)
			write_log(o->log, &t);
		if (o->out) {
			save_model(o, m, ssl ? &ss : NULL, &d);
			save_state(state_path, m, &s, &t, ssl ? &ss : NULL);
		}
	}

	if (o->scores) {
		stats_final(&s, m, &d, &a, o->batch, tr.x, tr.labels);
		while (s.score_runs_done < o->score_runs && !cull_interrupted) {
			if (!o->quiet)
				note("score run %d of %d: training a fresh model for %d epochs",
				     s.score_runs_done + 1, o->score_runs, o->score_epoch);
			score_run(o, &tr, &s, s.score_runs_done, classes);
			if (o->out && !cull_interrupted)
				save_state(state_path, m, &s, &t, NULL);
		}
		if (cull_interrupted) {
			note("interrupted during the score runs; %s", o->out ? "continue with --resume" :
			     "nothing saved (no --out)");
			exit(EXIT_INTERRUPTED);
		}
		stats_write(&s, &d, o->epochs, o->scores);
	}
	if (!o->quiet) {
		fmt_time(el, sizeof el, t.elapsed);
		if (evaluated && ssl) {
			char vbuf[256];
			monitor_text(vbuf, sizeof vbuf, &o->mon, &mr);
			note("trained %s (%s) on %zu images for %d epochs in %s;%s", o->arch,
			     ssl_method_name(o->ssl.method), d.n, o->epochs, el, vbuf);
		} else if (evaluated)
			note("trained %s on %zu images for %d epochs in %s; val_acc %.4f%s", o->arch, d.n,
			     o->epochs, el, val.acc, o->tta ? tta_text(tb, sizeof tb, &val) : "");
		else
			note("trained %s on %zu images for %d epochs in %s", o->arch, d.n, o->epochs, el);
	}
	stats_free(&s);
	if (ssl)
		ssl_state_free(&ss);
	free(tr.x);
	free(tr.labels);
	free(tr.losses);
	free(tr.order);
	free(cfg);
	free(t.config);
	free(t.log);
	free(state_path);
	data_free(&d);
	data_free(&v);
	nn_free(m);
	return 0;
}

int main(int argc, char **argv)
{
	options o;
	int rc;

	nn_exec_passive(argv);
	cull_init(argv[0]);
	parse_options(&o, argc, argv);
	nn_set_threads(o.threads);
	if (o.bf16)
		nn_bf16_option();
	rc = o.eval_only ? eval_only(&o) : train(&o);
	free(o.val);
	return rc;
}
