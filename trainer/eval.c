/* cull-train --eval-only: a classifier's accuracy and per-sample predictions, or an
 * encoder's k-NN accuracy (--knn-eval). */
#include "options.h"
#include "io.h"
#include "record.h"
#include "safetensors.h"

#include <stdlib.h>
#include <string.h>

/* The model of an --eval-only file: a classifier (its fc decides the classes) or, with
 * encoder set, the network up to the pooled features (any fc is ignored). The mean and
 * std the file records (cull-train writes them) are used unless given; for an encoder
 * also the image size, unless --size is given (as cull-embed does). */
static nn_model *model_from_file(options *o, const char *path, const char *want, int encoder)
{
	st_file f;
	char arch[32];
	cull_err err;
	const st_entry *c1, *fc;
	nn_meta meta;
	int in_ch;
	double width;
	nn_model *m;

	if (st_load(&f, path, &err) != 0)
		die(EXIT_DATA, "%s", err.msg);
	c1 = st_find(&f, "conv1.weight");
	fc = st_find(&f, "fc.weight");
	if (!c1 || c1->ndim != 4 || (!encoder && (!fc || fc->ndim != 2)))
		die(EXIT_DATA, "%s: no conv1.weight or fc.weight: not a torchvision ResNet %s", path,
		    encoder ? "encoder" : "classifier (for an encoder use --knn-eval)");
	if (nn_infer_arch(&f, arch, sizeof arch, &in_ch, &width, &err) != 0 && !want)
		die(EXIT_USAGE, "%s: %s", path, err.msg);
	if (want)
		snprintf(arch, sizeof arch, "%s", want);
	nn_read_meta(&meta, &f);
	if (!o->have_mean && meta.have_mean) {
		memcpy(o->mean, meta.mean, sizeof o->mean);
		o->have_mean = 1;
	}
	if (!o->have_std && meta.have_std) {
		memcpy(o->std, meta.std, sizeof o->std);
		o->have_std = 1;
	}
	if (encoder && !o->size && meta.image_size)
		o->size = meta.image_size;   /* as cull-embed resizes for a model that records its size */
	m = nn_create(arch, in_ch, width, encoder ? 0 : (int)fc->shape[0], 0);
	st_free(&f);
	if (!m)
		die(EXIT_USAGE, "--arch: unknown architecture '%s' (known: %s)", arch, nn_arch_names());
	if (nn_load(m, path, encoder ? NN_LOAD_IGNORE_EXTRA : 0, &err) != 0)
		die(EXIT_DATA, "%s", err.msg);
	return m;
}

/* A model set up to evaluate a dataset: the normalisation and the batch buffers. */
typedef struct {
	nn_model *m;
	augment a;
	float *x;
	int *labels;
} evaluator;

/* Set e->m up for d in batches of --batch, normalised as the options say (the model's
 * record unless given, else the default for d's channels). */
static void eval_setup(evaluator *e, options *o, const dataset *d)
{
	options_default_norm(o, d->c);
	memset(&e->a, 0, sizeof e->a);
	memcpy(e->a.mean, o->mean, sizeof e->a.mean);
	memcpy(e->a.std, o->std, sizeof e->a.std);
	nn_setup(e->m, o->batch, d->h, d->w, 0);
	e->x = xmalloc((size_t)o->batch * (size_t)d->h * (size_t)d->w * (size_t)d->c * sizeof *e->x);
	e->labels = xmalloc((size_t)o->batch * sizeof *e->labels);
}

static void eval_free(evaluator *e)
{
	free(e->x);
	free(e->labels);
	nn_free(e->m);
}

typedef struct {
	rec_writer *w;
	const dataset *d;
	int k;
} pred_ctx;

static void write_prediction(void *ctx, size_t i, const float *logits, const float *probs,
                             const float *feat, int label, float loss)
{
	pred_ctx *c = ctx;
	record r;
	int best = argmax(logits, c->k);

	(void)feat;
	rec_init(&r);
	rec_set_str(&r, "key", c->d->key[i]);
	rec_set_int(&r, "cls", label);
	rec_set_int(&r, "pred", best);
	rec_set_float(&r, "prob", probs[best]);
	rec_set_float(&r, "loss", loss);
	rec_set_float(&r, "margin", -(double)logit_margin(logits, c->k, label));
	if (rec_write(c->w, &r) < 0)
		die_err(rec_writer_error(c->w));
	rec_free(&r);
}

/* --eval-only --knn-eval: k-NN top-1 of the --val images against the SHARD... images, both
 * embedded by the encoder as cull-embed embeds them. */
static int eval_knn(options *o)
{
	evaluator e = { model_from_file(o, o->model, strcmp(o->arch, "resnet18-cifar") ?
	                                o->arch : NULL, 1), { 0 }, NULL, NULL };
	dataset d = { 0 }, v = { 0 };
	load_opts lo = { e.m->in_ch, o->size, 0, o->threads, o->quiet, "reference", 0 };
	trainer ref = { 0 };
	monitor_result r = { { 0 }, 0 };
	double t0 = now_seconds();

	if (!o->nval || !o->nshards)
		die(EXIT_USAGE, "--eval-only --knn-eval: give the query images with --val and the "
		    "labelled reference images as SHARD...");
	data_load(&d, o->shards, o->nshards, &lo);
	data_report("reference", &d, o->quiet);
	lo.what = "validation";
	v.h = d.h;
	v.w = d.w;
	v.c = d.c;
	data_load(&v, o->val, o->nval, &lo);
	data_report("validation", &v, o->quiet);
	if (!d.n || !v.n)
		die(EXIT_DATA, "no images to compare");
	eval_setup(&e, o, &d);
	ref.m = e.m;
	ref.train = &d;
	ref.aug = &e.a;
	ref.batch = o->batch;
	ref.x = e.x;
	ref.labels = e.labels;
	monitor_run(&r, &o->mon, &ref, &v, data_classes(&d, &v));
	printf("{\"n\":%zu,\"reference\":%zu,\"val_acc\":%.6f", v.n, d.n, r.knn[0]);
	for (int i = 0; i < o->mon.nk; i++)
		printf(",\"knn_acc_%d\":%.6f", o->mon.k[i], r.knn[i]);
	fputs("}\n", stdout);
	xfclose(stdout, "<stdout>");
	if (!o->quiet) {
		char buf[256];
		monitor_text(buf, sizeof buf, &o->mon, &r);
		note("%s (%s, %d-d): k-NN top-1 of %zu images against %zu:%s, %.1f s", o->model,
		     e.m->arch, e.m->feat_dim, v.n, d.n, buf, now_seconds() - t0);
	}
	data_free(&d);
	data_free(&v);
	eval_free(&e);
	return 0;
}

int eval_only(options *o)
{
	if (o->mon.knn)
		return eval_knn(o);
	evaluator e = { model_from_file(o, o->model, strcmp(o->arch, "resnet18-cifar") ?
	                                o->arch : NULL, 0), { 0 }, NULL, NULL };
	dataset d = { 0 };
	load_opts lo = { e.m->in_ch, o->size, e.m->num_classes, o->threads, o->quiet, "validation",
	                 0 };
	pred_ctx pc = { NULL, &d, e.m->num_classes };
	double t0 = now_seconds();
	eval_result r;
	cull_err err;
	const char **paths = xcalloc(o->nval + o->nshards + 1, sizeof *paths);
	size_t np = 0;
	char tta[64];

	for (size_t i = 0; i < o->nval; i++)
		paths[np++] = o->val[i];
	for (size_t i = 0; i < o->nshards; i++)
		paths[np++] = o->shards[i];
	if (!np)
		die(EXIT_USAGE, "--eval-only: give the shards to evaluate with --val");
	data_load(&d, paths, np, &lo);
	data_report("validation", &d, o->quiet);
	if (!d.n)
		die(EXIT_DATA, "no images to evaluate");
	eval_setup(&e, o, &d);
	if (o->predictions && !(pc.w = rec_writer_open(o->predictions, &err)))
		die_err(&err);
	r = eval_pass(e.m, &d, &e.a, o->batch, e.x, e.labels, o->tta,
	              pc.w ? write_prediction : NULL, &pc);
	if (pc.w && rec_writer_close(pc.w, &err) < 0)
		die_err(&err);
	/* the result is data: on standard output, unless the predictions took it */
	FILE *f = o->predictions && strcmp(o->predictions, "-") == 0 ? stderr : stdout;
	fprintf(f, "{\"n\":%zu,\"val_loss\":%.6f,\"val_acc\":%.6f", d.n, r.loss, r.acc);
	if (o->tta)
		fprintf(f, ",\"val_loss_tta\":%.6f,\"val_acc_tta\":%.6f", r.tta_loss, r.tta_acc);
	fputs("}\n", f);
	if (f == stdout)
		xfclose(stdout, "<stdout>");
	if (!o->quiet)
		note("%s (%s): accuracy %.4f on %zu images, loss %.4f%s, %.1f s", o->model, e.m->arch,
		     r.acc, d.n, r.loss, o->tta ? tta_text(tta, sizeof tta, &r) : "",
		     now_seconds() - t0);
	free(paths);
	data_free(&d);
	eval_free(&e);
	return 0;
}
