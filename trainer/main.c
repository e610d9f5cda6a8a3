/* cull-train: train or evaluate a ResNet on WebDataset shards; write training-dynamics scores. */
#include "train.h"
#include "io.h"
#include "layers.h"
#include "record.h"
#include "safetensors.h"

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"usage: cull-train [options] [SHARD...]\n"
	"       cull-train --eval-only --model FILE --val SHARD [--predictions FILE] [--tta]\n"
	"Train a ResNet on WebDataset shards (standard input when none or '-'; images with a\n"
	".cls member), decoded once into memory; log every epoch, checkpoint, write scores.\n"
	"Model and data:\n"
	"  --arch NAME         resnet18-cifar (default) resnet20 resnet32 resnet56 resnet18\n"
	"                      resnet34 resnet50\n"
	"  --width W           channel width multiplier (default 1)\n"
	"  --classes N         number of classes (default: the largest .cls + 1)\n"
	"  --channels C        1 or 3: convert images (default: as stored)\n"
	"  --size S            resize every image to S x S (default: keep; all of one size)\n"
	"  --val SHARD         validation shard (repeatable)\n"
	"  --eval-every N      evaluate on --val every N epochs (default 1)\n"
	"  --tta               also evaluate with test-time augmentation: the mean logits of\n"
	"                      each image and its mirror image (val_acc_tta, val_loss_tta)\n"
	"Augmentation (all randomness from --seed):\n"
	"  --pad P             random crop after padding by P pixels (default 4; 0: none)\n"
	"  --no-flip           no random horizontal flip (e.g. for digits)\n"
	"  --mean M,M,M        normalisation mean (default ImageNet's, as cull-embed)\n"
	"  --std S,S,S         normalisation std (default ImageNet's; 0.449/0.226 for gray)\n"
	"Optimisation:\n"
	"  --epochs E          epochs (default 30)\n"
	"  --batch B           batch size (default 128)\n"
	"  --lr LR             peak learning rate (default 0.1)\n"
	"  --schedule S        cosine (default), const, step[:E], multistep:E,E,..,\n"
	"                      onecycle[:PCT] (torch's OneCycleLR, lr only)\n"
	"  --warmup E          linear warmup over E epochs (fractions allowed; default 0)\n"
	"  --gamma G           decay factor of step and multistep (default 0.1)\n"
	"  --min-lr LR         final learning rate of cosine (default 0)\n"
	"  --momentum M        SGD momentum (default 0.9)\n"
	"  --nesterov          Nesterov momentum\n"
	"  --wd WD             weight decay (default 5e-4)\n"
	"  --no-decay-bn       no weight decay on batch-norm parameters and biases\n"
	"  --label-smoothing X label smoothing (default 0)\n"
	"Output:\n"
	"  --out FILE          model checkpoint (safetensors, torchvision names), saved\n"
	"                      atomically every epoch; resume state in FILE.state\n"
	"  --resume            continue from FILE.state (exactly; starts afresh without one)\n"
	"  --log FILE          one JSON object per epoch (JSON Lines)\n"
	"  --scores FILE       one record per training sample: el2n grand forget aum loss\n"
	"                      margin (larger = harder), key and cls\n"
	"  --score-epoch E     epoch of el2n and grand (default epochs/10, at least 1)\n"
	"  --score-runs R      average el2n and grand over R initialisations (default 1)\n"
	"Evaluation only:\n"
	"  --eval-only         evaluate --model on --val (and SHARD...) and print accuracy\n"
	"  --model FILE        weights to evaluate\n"
	"  --predictions FILE  per-sample records: key cls pred prob loss margin\n"
	"Other:\n"
	"  --seed S            random seed (default 0)\n"
	"  --threads T         threads (default: CPUs)\n"
	"  -q, --quiet         no progress, log lines or summary on standard error\n"
	"  -h, --help          this help;  --version  the version and the convolution backend\n";

typedef struct {
	const char *arch, *out, *log, *scores, *model, *predictions;
	const char **val;
	size_t nval;
	double width, lr, momentum, wd, smoothing;
	int classes, channels, size, eval_every, pad, flip, epochs, batch, nesterov, no_decay_bn;
	int resume, eval_only, threads, quiet, score_epoch, score_runs, tta;
	int have_mean, have_std;
	float mean[3], std[3];
	uint64_t seed;
	schedule sched;
} options;

static volatile int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void parse_options(options *o, int argc, char **argv)
{
	enum { O_ARCH = 256, O_WIDTH, O_CLASSES, O_CHANNELS, O_SIZE, O_VAL, O_EVERY, O_PAD,
	       O_NOFLIP, O_MEAN, O_STD, O_EPOCHS, O_BATCH, O_LR, O_SCHED, O_WARMUP, O_GAMMA,
	       O_MINLR, O_MOM, O_NEST, O_WD, O_NODECAY, O_SMOOTH, O_OUT, O_RESUME, O_LOG,
	       O_SCORES, O_SEPOCH, O_SRUNS, O_EVAL, O_MODEL, O_PRED, O_SEED, O_THREADS, O_SSL,
	       O_VERSION, O_TTA };
	static const struct option lo[] = {
		{ "arch", required_argument, 0, O_ARCH }, { "width", required_argument, 0, O_WIDTH },
		{ "classes", required_argument, 0, O_CLASSES },
		{ "channels", required_argument, 0, O_CHANNELS },
		{ "size", required_argument, 0, O_SIZE }, { "val", required_argument, 0, O_VAL },
		{ "eval-every", required_argument, 0, O_EVERY },
		{ "pad", required_argument, 0, O_PAD }, { "no-flip", no_argument, 0, O_NOFLIP },
		{ "mean", required_argument, 0, O_MEAN }, { "std", required_argument, 0, O_STD },
		{ "epochs", required_argument, 0, O_EPOCHS },
		{ "batch", required_argument, 0, O_BATCH }, { "lr", required_argument, 0, O_LR },
		{ "schedule", required_argument, 0, O_SCHED },
		{ "warmup", required_argument, 0, O_WARMUP },
		{ "gamma", required_argument, 0, O_GAMMA },
		{ "min-lr", required_argument, 0, O_MINLR },
		{ "momentum", required_argument, 0, O_MOM }, { "nesterov", no_argument, 0, O_NEST },
		{ "wd", required_argument, 0, O_WD }, { "weight-decay", required_argument, 0, O_WD },
		{ "no-decay-bn", no_argument, 0, O_NODECAY },
		{ "label-smoothing", required_argument, 0, O_SMOOTH },
		{ "out", required_argument, 0, O_OUT }, { "resume", no_argument, 0, O_RESUME },
		{ "log", required_argument, 0, O_LOG }, { "scores", required_argument, 0, O_SCORES },
		{ "score-epoch", required_argument, 0, O_SEPOCH },
		{ "score-runs", required_argument, 0, O_SRUNS },
		{ "eval-only", no_argument, 0, O_EVAL }, { "model", required_argument, 0, O_MODEL },
		{ "predictions", required_argument, 0, O_PRED }, { "tta", no_argument, 0, O_TTA },
		{ "seed", required_argument, 0, O_SEED },
		{ "threads", required_argument, 0, O_THREADS },
		{ "ssl", required_argument, 0, O_SSL },
		{ "quiet", no_argument, 0, 'q' }, { "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, O_VERSION },
		{ 0, 0, 0, 0 },
	};
	int c;

	memset(o, 0, sizeof *o);
	o->arch = "resnet18-cifar";
	o->width = 1;
	o->eval_every = 1;
	o->pad = 4;
	o->flip = 1;
	o->epochs = 30;
	o->batch = 128;
	o->lr = 0.1;
	o->momentum = 0.9;
	o->wd = 5e-4;
	o->score_runs = 1;
	o->sched.kind = SCHED_COSINE;
	o->sched.gamma = 0.1;
	o->sched.pct_start = 0.3;
	o->sched.div_factor = 25;
	o->sched.final_div = 1e4;
	while ((c = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
		switch (c) {
		case O_ARCH: o->arch = optarg; break;
		case O_WIDTH: o->width = parse_double("--width", optarg, 1e-3, 64); break;
		case O_CLASSES: o->classes = (int)parse_int("--classes", optarg, 1, 1000000); break;
		case O_CHANNELS:
			o->channels = (int)parse_int("--channels", optarg, 1, 3);
			if (o->channels == 2)
				die(EXIT_USAGE, "--channels: 1 or 3");
			break;
		case O_SIZE: o->size = (int)parse_int("--size", optarg, 1, 4096); break;
		case O_VAL:
			o->val = xreallocarray(o->val, o->nval + 1, sizeof *o->val);
			o->val[o->nval++] = optarg;
			break;
		case O_EVERY: o->eval_every = (int)parse_int("--eval-every", optarg, 1, 1 << 30); break;
		case O_PAD: o->pad = (int)parse_int("--pad", optarg, 0, 1024); break;
		case O_NOFLIP: o->flip = 0; break;
		case O_MEAN: parse_floats3("--mean", optarg, o->mean); o->have_mean = 1; break;
		case O_STD: parse_floats3("--std", optarg, o->std); o->have_std = 1; break;
		case O_EPOCHS: o->epochs = (int)parse_int("--epochs", optarg, 1, 1 << 20); break;
		case O_BATCH: o->batch = (int)parse_int("--batch", optarg, 2, 1 << 16); break;
		case O_LR: o->lr = parse_double("--lr", optarg, 0, 1e6); break;
		case O_SCHED: schedule_parse(&o->sched, optarg); break;
		case O_WARMUP: o->sched.warmup = parse_double("--warmup", optarg, 0, 1e6); break;
		case O_GAMMA: o->sched.gamma = parse_double("--gamma", optarg, 0, 1e6); break;
		case O_MINLR: o->sched.min_lr = parse_double("--min-lr", optarg, 0, 1e6); break;
		case O_MOM: o->momentum = parse_double("--momentum", optarg, 0, 1); break;
		case O_NEST: o->nesterov = 1; break;
		case O_WD: o->wd = parse_double("--wd", optarg, 0, 1e3); break;
		case O_NODECAY: o->no_decay_bn = 1; break;
		case O_SMOOTH: o->smoothing = parse_double("--label-smoothing", optarg, 0, 1); break;
		case O_OUT: o->out = optarg; break;
		case O_RESUME: o->resume = 1; break;
		case O_LOG: o->log = optarg; break;
		case O_SCORES: o->scores = optarg; break;
		case O_SEPOCH: o->score_epoch = (int)parse_int("--score-epoch", optarg, 1, 1 << 20); break;
		case O_SRUNS: o->score_runs = (int)parse_int("--score-runs", optarg, 1, 1000); break;
		case O_EVAL: o->eval_only = 1; break;
		case O_MODEL: o->model = optarg; break;
		case O_PRED: o->predictions = optarg; break;
		case O_TTA: o->tta = 1; break;
		case O_SEED: o->seed = (uint64_t)parse_int("--seed", optarg, 0, INT64_MAX); break;
		case O_THREADS: o->threads = (int)parse_int("--threads", optarg, 1, 1024); break;
		case O_SSL:
			die(EXIT_USAGE, "--ssl %s: self-supervised pretraining is not implemented yet",
			    optarg);
		case 'q': o->quiet = 1; break;
		case 'h': fputs(usage, stdout); xfclose(stdout, "<stdout>"); exit(0);
		case O_VERSION:
			printf("cull-train %s\nnn: %s\n", CULL_VERSION, nn_backend());
			xfclose(stdout, "<stdout>");
			exit(0);
		default:
			fprintf(stderr, "Try 'cull-train --help' for the options.\n");
			exit(EXIT_USAGE);
		}
	}
	if (o->have_std)
		for (c = 0; c < 3; c++)
			if (!(o->std[c] > 0))
				die(EXIT_USAGE, "--std: values must be positive");
	if (o->eval_only && !o->model)
		die(EXIT_USAGE, "--eval-only needs --model FILE");
	if (!o->eval_only && (o->model || o->predictions))
		die(EXIT_USAGE, "--model and --predictions go with --eval-only");
	if (o->tta && !o->eval_only && !o->nval)
		die(EXIT_USAGE, "--tta is an evaluation option: give --val SHARD");
	if (o->tta && !o->flip)
		die(EXIT_USAGE, "--tta averages each image with its mirror image: not with --no-flip");
	if (o->resume && !o->out)
		die(EXIT_USAGE, "--resume needs --out FILE (the state is FILE.state)");
	if (o->score_epoch > o->epochs)
		die(EXIT_USAGE, "--score-epoch %d is after the last epoch (%d)", o->score_epoch,
		    o->epochs);
	if (!o->score_epoch)
		o->score_epoch = o->epochs / 10 > 1 ? (int)lround(o->epochs / 10.0) : 1;
	if (!o->threads)
		o->threads = default_threads();
}

static void default_norm(options *o, int channels)
{
	static const float im[3] = { 0.485f, 0.456f, 0.406f }, is[3] = { 0.229f, 0.224f, 0.225f };

	if (!o->have_mean) {
		memcpy(o->mean, im, sizeof im);
		if (channels == 1)
			o->mean[0] = 0.449f;
	}
	if (!o->have_std) {
		memcpy(o->std, is, sizeof is);
		if (channels == 1)
			o->std[0] = 0.226f;
	}
}

static void print_cache(const char *what, const dataset *d, int quiet)
{
	if (quiet)
		return;
	note("%s data: %zu images of %dx%dx%d in memory, %.1f MiB%s", what, d->n, d->w, d->h,
	     d->c, (double)data_bytes(d) / 1048576.0, d->skipped ? " (samples skipped: see "
	     "the warnings above)" : "");
}

static int max_label(const dataset *d)
{
	int k = -1;

	for (size_t i = 0; i < d->n; i++)
		if (d->label[i] > k)
			k = d->label[i];
	return k;
}

/* ---- eval-only ---- */

/* " (with mirror TTA: accuracy A, loss L)" for the summaries; one static buffer. */
static const char *tta_text(const eval_result *r)
{
	static char buf[64];

	snprintf(buf, sizeof buf, " (mirror TTA: accuracy %.4f, loss %.4f)", r->tta_acc, r->tta_loss);
	return buf;
}

static nn_model *model_from_file(const char *path, const char *want)
{
	st_file f;
	char err[512], arch[32];
	const st_entry *c1, *fc;
	int in_ch;
	double width;
	nn_model *m;

	if (st_load(&f, path, err, sizeof err) != 0)
		die(EXIT_DATA, "%s", err);
	c1 = st_find(&f, "conv1.weight");
	fc = st_find(&f, "fc.weight");
	if (!c1 || c1->ndim != 4 || !fc || fc->ndim != 2)
		die(EXIT_DATA, "%s: no conv1.weight or fc.weight: not a torchvision ResNet classifier",
		    path);
	if (nn_infer_arch(&f, arch, sizeof arch, &in_ch, &width, err, sizeof err) != 0 && !want)
		die(EXIT_USAGE, "%s: %s", path, err);
	if (want)
		snprintf(arch, sizeof arch, "%s", want);
	m = nn_create(arch, in_ch, width, (int)fc->shape[0], 0);
	st_free(&f);
	if (!m)
		die(EXIT_USAGE, "--arch: unknown architecture '%s' (known: %s)", arch, nn_arch_names());
	if (nn_load(m, path, 0, err, sizeof err) != 0)
		die(EXIT_DATA, "%s", err);
	return m;
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
	int best = 0;

	(void)feat;
	for (int j = 1; j < c->k; j++)
		if (logits[j] > logits[best])
			best = j;
	rec_init(&r);
	rec_set_str(&r, "key", c->d->key[i]);
	rec_set_int(&r, "cls", label);
	rec_set_int(&r, "pred", best);
	rec_set_float(&r, "prob", probs[best]);
	rec_set_float(&r, "loss", loss);
	rec_set_float(&r, "margin", -(double)logit_margin(logits, c->k, label));
	rec_write(c->w, &r);
	rec_free(&r);
}

static int eval_only(options *o, int argc, char **argv)
{
	nn_model *m = model_from_file(o->model, strcmp(o->arch, "resnet18-cifar") ? o->arch : NULL);
	dataset d = { 0 };
	load_opts lo = { m->in_ch, o->size, m->num_classes, o->threads, o->quiet, "validation" };
	augment a = { 0 };
	pred_ctx pc = { NULL, &d, m->num_classes };
	double t0 = now_seconds();
	eval_result r;
	const char **paths = xcalloc(o->nval + (size_t)(argc - optind) + 1, sizeof *paths);
	size_t np = 0;

	for (size_t i = 0; i < o->nval; i++)
		paths[np++] = o->val[i];
	for (int i = optind; i < argc; i++)
		paths[np++] = argv[i];
	if (!np)
		die(EXIT_USAGE, "--eval-only: give the shards to evaluate with --val");
	data_load(&d, paths, np, &lo);
	print_cache("validation", &d, o->quiet);
	if (!d.n)
		die(EXIT_DATA, "no images to evaluate");
	default_norm(o, d.c);
	memcpy(a.mean, o->mean, sizeof a.mean);
	memcpy(a.std, o->std, sizeof a.std);
	nn_setup(m, o->batch, d.h, d.w, 0);
	float *x = xmalloc((size_t)o->batch * (size_t)d.h * (size_t)d.w * (size_t)d.c * sizeof *x);
	int *labels = xmalloc((size_t)o->batch * sizeof *labels);
	if (o->predictions)
		pc.w = rec_writer_open(o->predictions);
	r = eval_pass(m, &d, &a, o->batch, x, labels, o->tta, pc.w ? write_prediction : NULL, &pc);
	if (pc.w)
		rec_writer_close(pc.w);
	/* the result is data: on standard output, unless the predictions took it */
	FILE *f = o->predictions && strcmp(o->predictions, "-") == 0 ? stderr : stdout;
	fprintf(f, "{\"n\":%zu,\"val_loss\":%.6f,\"val_acc\":%.6f", d.n, r.loss, r.acc);
	if (o->tta)
		fprintf(f, ",\"val_loss_tta\":%.6f,\"val_acc_tta\":%.6f", r.tta_loss, r.tta_acc);
	fputs("}\n", f);
	if (f == stdout)
		xfclose(stdout, "<stdout>");
	if (!o->quiet)
		note("%s (%s): accuracy %.4f on %zu images, loss %.4f%s, %.1f s", o->model, m->arch,
		     r.acc, d.n, r.loss, o->tta ? tta_text(&r) : "", now_seconds() - t0);
	free(x);
	free(labels);
	free(paths);
	data_free(&d);
	nn_free(m);
	return 0;
}

/* ---- training ---- */

/* The options that decide the result: a resume must use the same ones. */
static char *config_string(const options *o, const dataset *d, int classes)
{
	char sched[256];

	return xasprintf("arch=%s;width=%g;classes=%d;image=%dx%dx%d;epochs=%d;batch=%d;lr=%.17g;"
	                 "schedule=%s;warmup=%.17g;gamma=%.17g;min_lr=%.17g;momentum=%.17g;"
	                 "nesterov=%d;wd=%.17g;no_decay_bn=%d;label_smoothing=%.17g;pad=%d;flip=%d;"
	                 "mean=%.9g,%.9g,%.9g;std=%.9g,%.9g,%.9g;seed=%llu;score_epoch=%d;"
	                 "score_runs=%d;scores=%d", o->arch, o->width, classes, d->w, d->h, d->c, o->epochs,
	                 o->batch, o->lr, schedule_name(&o->sched, sched, sizeof sched),
	                 o->sched.warmup, o->sched.gamma, o->sched.min_lr, o->momentum, o->nesterov,
	                 o->wd, o->no_decay_bn, o->smoothing, o->pad, o->flip, o->mean[0],
	                 o->mean[1], o->mean[2], o->std[0], o->std[1], o->std[2],
	                 (unsigned long long)o->seed, o->score_epoch, o->score_runs,
	                 o->scores != NULL);
}

/* Die naming the first option that differs between two config strings. */
static void check_config(const char *path, const char *saved, const char *now)
{
	const char *a = saved, *b = now;

	while (*a || *b) {
		size_t la = strcspn(a, ";"), lb = strcspn(b, ";");
		if (la != lb || memcmp(a, b, la) != 0)
			die(EXIT_USAGE, "--resume: %s was written with %.*s, this run has %.*s", path,
			    (int)la, a, (int)lb, b);
		a += la + (a[la] == ';');
		b += lb + (b[lb] == ';');
	}
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
	char *tmp = xasprintf("%s.tmp", path);
	FILE *f = xfopen(tmp, "w");

	xfwrite(t->log, t->log_len, f, tmp);
	xfclose(f, tmp);
	if (rename(tmp, path) != 0)
		die(EXIT_IO, "cannot rename %s to %s", tmp, path);
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
	volatile int never = 0;

	tr.m = nn_create(o->arch, base->train->c, o->width, classes, seed);
	tr.progress = 0;
	nn_setup(tr.m, o->batch, base->train->h, base->train->w, 1);
	for (t.epoch = 0; t.epoch < o->score_epoch; t.epoch++) {
		t.step = 0;
		train_epoch(&tr, &t, NULL, seed, &never);
		if (stop_flag)
			break;
	}
	if (!stop_flag)
		stats_score_epoch(s, tr.m, base->train, base->aug, o->batch, base->x, base->labels);
	nn_free(tr.m);
}

static int train(options *o, int argc, char **argv)
{
	dataset d = { 0 }, v = { 0 };
	load_opts lo = { o->channels, o->size, o->classes, o->threads, o->quiet, "training" };
	augment a;
	trainer tr;
	train_state t = { 0 };
	sample_stats s;
	int classes, evaluated = 0;
	eval_result val = { 0, 0, 0, 0 };
	char *state_path = NULL, *cfg, line[1024], eta[32], el[32];
	nn_model *m;

	data_load(&d, (const char *const *)argv + optind, (size_t)(argc - optind), &lo);
	print_cache("training", &d, o->quiet);
	if (d.n < 2)
		die(EXIT_DATA, "need at least 2 training images, got %zu", d.n);
	if (o->nval) {
		lo.what = "validation";
		lo.channels = d.c;
		v.h = d.h;
		v.w = d.w;
		v.c = d.c;
		data_load(&v, o->val, o->nval, &lo);
		print_cache("validation", &v, o->quiet);
	}
	classes = o->classes ? o->classes : 1 + (max_label(&d) > max_label(&v) ? max_label(&d) :
	                                         max_label(&v));
	if (classes < 2)
		die(EXIT_DATA, "the training data has a single class; give --classes");
	default_norm(o, d.c);
	memset(&a, 0, sizeof a);
	a.pad = o->pad;
	a.flip = o->flip;
	memcpy(a.mean, o->mean, sizeof a.mean);
	memcpy(a.std, o->std, sizeof a.std);

	m = nn_create(o->arch, d.c, o->width, classes, hash3(o->seed, 0x696e6974ULL, 0));
	if (!m)
		die(EXIT_USAGE, "--arch: unknown architecture '%s' (known: %s)", o->arch,
		    nn_arch_names());
	nn_setup(m, o->batch, d.h, d.w, 1);

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
	tr.x = xmalloc((size_t)o->batch * (size_t)d.h * (size_t)d.w * (size_t)d.c * sizeof(float));
	tr.labels = xmalloc((size_t)o->batch * sizeof *tr.labels);
	tr.losses = xmalloc((size_t)o->batch * sizeof *tr.losses);
	tr.order = xmalloc(d.n * sizeof *tr.order);
	tr.progress = !o->quiet && stderr_is_tty();
	stats_init(&s, d.n);

	cfg = config_string(o, &d, classes);
	t.config = xstrdup(cfg);
	t.log = xstrdup("");
	t.threads = o->threads;
	t.data_fp = data_fingerprint(&d);
	if (o->out)
		state_path = xasprintf("%s.state", o->out);
	if (o->resume) {
		uint64_t fp = t.data_fp;
		if (load_state(state_path, m, &s, &t) == 1) {
			if (!o->quiet)
				note("--resume: no %s yet; starting from the beginning", state_path);
		} else {
			check_config(state_path, t.config, cfg);
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
	if (!o->quiet)
		note("%s width %g (%zu parameters), %d classes, %d epochs of %ld steps, batch %d, "
		     "%d threads", o->arch, o->width, m->nparams, classes, o->epochs,
		     tr.steps_per_epoch, o->batch, o->threads);

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (t.epoch < o->epochs) {
		double t0 = now_seconds(), tv = 0;
		long seen0 = (long)t.seen;
		int done = train_epoch(&tr, &t, &s, o->seed, &stop_flag);
		double dt = now_seconds() - t0;
		t.elapsed += dt;
		if (!done) {
			if (o->out) {
				save_model_atomic(m, o->out);
				save_state(state_path, m, &s, &t);
				note("interrupted at epoch %ld, step %ld; saved %s and %s (continue with "
				     "--resume)", t.epoch + 1, t.step, o->out, state_path);
			} else {
				note("interrupted at epoch %ld, step %ld; nothing saved (no --out)",
				     t.epoch + 1, t.step);
			}
			exit(130);
		}
		double ips = dt > 0 ? (double)(t.seen - seen0) / dt : 0;
		evaluated = o->nval && v.n && ((t.epoch + 1) % o->eval_every == 0 ||
		                               t.epoch + 1 == o->epochs);
		if (evaluated) {
			tv = now_seconds();
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
			char vbuf[128] = "";
			if (evaluated)
				snprintf(vbuf, sizeof vbuf, " val_loss %.4f val_acc %.4f%s", val.loss, val.acc,
				         o->tta ? tta_text(&val) : "");
			note("epoch %ld/%d loss %.4f acc %.4f%s lr %.4g %.0f img/s %s ETA %s",
			     t.epoch + 1, o->epochs, loss, acc, vbuf, lr, ips, el, eta);
		}
		snprintf(line, sizeof line, "{\"epoch\":%ld,\"step\":%ld,\"lr\":%.6g,\"loss\":%.6f,"
		         "\"train_acc\":%.6f,", t.epoch + 1, t.global_step, lr, loss, acc);
		if (evaluated)
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
			save_model_atomic(m, o->out);
			save_state(state_path, m, &s, &t);
		}
	}

	if (o->scores) {
		stats_final(&s, m, &d, &a, o->batch, tr.x, tr.labels);
		while (s.score_runs_done < o->score_runs && !stop_flag) {
			if (!o->quiet)
				note("score run %d of %d: training a fresh model for %d epochs",
				     s.score_runs_done + 1, o->score_runs, o->score_epoch);
			score_run(o, &tr, &s, s.score_runs_done, classes);
			if (o->out && !stop_flag)
				save_state(state_path, m, &s, &t);
		}
		if (stop_flag) {
			note("interrupted during the score runs; %s", o->out ? "continue with --resume" :
			     "nothing saved (no --out)");
			exit(130);
		}
		stats_write(&s, &d, o->epochs, o->scores);
	}
	if (!o->quiet) {
		fmt_time(el, sizeof el, t.elapsed);
		if (evaluated)
			note("trained %s on %zu images for %d epochs in %s; val_acc %.4f%s", o->arch, d.n,
			     o->epochs, el, val.acc, o->tta ? tta_text(&val) : "");
		else
			note("trained %s on %zu images for %d epochs in %s", o->arch, d.n, o->epochs, el);
	}
	stats_free(&s);
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
	rc = o.eval_only ? eval_only(&o, argc, argv) : train(&o, argc, argv);
	free(o.val);
	return rc;
}
