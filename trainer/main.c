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
	"       cull-train --ssl simclr|swav [options] [SHARD...]\n"
	"       cull-train --eval-only --model FILE --val SHARD [--predictions FILE] [--tta]\n"
	"       cull-train --eval-only --knn-eval --model FILE --val SHARD SHARD...\n"
	"Train a ResNet on WebDataset shards (standard input when none or '-'; images with a\n"
	".cls member), decoded once into memory; log every epoch, checkpoint, write scores.\n"
	"With --ssl, pretrain an encoder without labels (SimCLR or SwAV on two augmented views).\n"
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
	"Self-supervised pretraining (labels are not read, except by the monitors):\n"
	"  --ssl METHOD        simclr (NT-Xent) or swav (prototypes, Sinkhorn codes, swapped\n"
	"                      prediction); the model has no fc, the head is saved beside it\n"
	"  --temperature T     softmax temperature (default 0.5 simclr, 0.1 swav)\n"
	"  --proj-hidden H     projection head: Linear-BN-ReLU-Linear with H hidden units\n"
	"                      (default 512; 0: one Linear)\n"
	"  --proj-dim D        projection output size (default 128)\n"
	"  --prototypes K      swav: number of prototypes (default 300)\n"
	"  --queue N           swav: codes also computed over N past embeddings per view\n"
	"                      (default 0; for small batches)\n"
	"  --queue-start E     swav: epoch from which the queue fills (default 2)\n"
	"  --freeze-prototypes E  swav: prototypes fixed for the first E epochs (default 1)\n"
	"  --sinkhorn-eps X    swav: Sinkhorn entropy (default 0.05; 3 iterations)\n"
	"  --crop-scale A[,B]  random resized crop area fraction range (default 0.2,1)\n"
	"  --jitter B,C,S,H    colour jitter strengths (default 0.4,0.4,0.4,0.1)\n"
	"  --jitter-prob P     probability of colour jitter (default 0.8)\n"
	"  --gray-prob P       probability of grayscale (default 0.2)\n"
	"  --knn-eval          weighted k-NN top-1 of --val against the training images\n"
	"                      (cosine, as cull-embed embeds them; needs .cls in both)\n"
	"  --knn-k K,K,...     neighbours (default 200,20; val_acc is the first)\n"
	"  --knn-t T           k-NN vote temperature (default 0.1)\n"
	"  --linear-probe      also fit a linear classifier on the frozen features at each\n"
	"                      evaluation and log its --val accuracy (linear_acc)\n"
	"Evaluation only:\n"
	"  --eval-only         evaluate --model on --val (and SHARD...) and print accuracy\n"
	"  --model FILE        weights to evaluate\n"
	"  --predictions FILE  per-sample records: key cls pred prob loss margin\n"
	"  --knn-eval          k-NN top-1 of --val against SHARD... for an encoder (any\n"
	"                      ResNet; images take its channels, and the size it records\n"
	"                      or --size)\n"
	"Other:\n"
	"  --seed S            random seed (default 0)\n"
	"  --threads T         threads (default: CPUs)\n"
	"  --bf16              convolutions read bfloat16 (inputs, weights, gradients) and sum\n"
	"                      in float; weights, optimizer and other layers stay float32.\n"
	"                      Needs AVX512-BF16 or AMX, else a warning and float32;\n"
	"                      CULL_NN_BF16=emulate gives its accuracy on any CPU, slower\n"
	"  -q, --quiet         no progress, log lines or summary on standard error\n"
	"  -h, --help          this help;  --version  the version and the convolution backend\n";

typedef struct {
	const char *arch, *out, *log, *scores, *model, *predictions;
	const char **val;
	size_t nval;
	double width, lr, momentum, wd, smoothing;
	int classes, channels, size, eval_every, pad, flip, epochs, batch, nesterov, no_decay_bn;
	int resume, eval_only, threads, quiet, score_epoch, score_runs, tta, bf16;
	int have_mean, have_std, have_sepoch, have_sruns;
	float mean[3], std[3];
	uint64_t seed;
	schedule sched;
	ssl_opts ssl;
	const char *ssl_only;    /* the first self-supervised option given */
	const char *swav_only;   /* the first SwAV option given */
	int knn, probe, nknn;
	int knn_k[8];
	float knn_t;
} options;

static volatile int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* Remember the first option (a long name, without dashes) that needs --ssl (swav). */
static void ssl_opt(options *o, const char *name)
{
	if (!o->ssl_only)
		o->ssl_only = name;
}

static void swav_opt(options *o, const char *name)
{
	if (!o->swav_only)
		o->swav_only = name;
}

static void parse_crop_scale(ssl_augment *a, const char *s)
{
	char *e;
	double lo = strtod(s, &e), hi = 1;

	if (e != s && *e == ',')
		hi = strtod(e + 1, &e);
	if (e == s || *e || !(lo > 0) || !(hi <= 1) || !(lo <= hi))
		die(EXIT_USAGE, "--crop-scale: want MIN[,MAX] with 0 < MIN <= MAX <= 1, got '%s'", s);
	a->scale_min = (float)lo;
	a->scale_max = (float)hi;
}

static void parse_jitter(ssl_augment *a, const char *s)
{
	const char *p = s;
	char *e;

	for (int i = 0; i < 4; i++) {
		double v = strtod(p, &e);
		if (e == p || (i < 3 && *e != ',') || (i == 3 && *e) || v < 0 || (i == 3 && v > 0.5))
			die(EXIT_USAGE, "--jitter: want four strengths B,C,S,H (>= 0, hue <= 0.5), got "
			    "'%s'", s);
		a->jitter[i] = (float)v;
		p = e + 1;
	}
}

static void parse_knn_k(options *o, const char *s)
{
	const char *p = s;
	char *e;

	o->nknn = 0;
	for (;;) {
		long v = strtol(p, &e, 10);
		if (e == p || v < 1 || v > 100000 || (*e && *e != ',') || o->nknn == 8)
			die(EXIT_USAGE, "--knn-k: want up to 8 neighbour counts K,K,... (1..100000), "
			    "got '%s'", s);
		o->knn_k[o->nknn++] = (int)v;
		if (!*e)
			break;
		p = e + 1;
	}
}

/* Options that only make sense with (or without) --ssl. */
static void check_ssl_options(options *o)
{
	if (!o->ssl.method) {
		if (o->ssl_only)
			die(EXIT_USAGE, "--%s goes with --ssl METHOD", o->ssl_only);
		if (o->knn && !o->eval_only)
			die(EXIT_USAGE, "--knn-eval is a monitor of --ssl training, or goes with "
			    "--eval-only");
		return;
	}
	if (o->eval_only)
		die(EXIT_USAGE, "--ssl trains; --eval-only evaluates (with --knn-eval for encoders)");
	if (o->smoothing > 0)
		die(EXIT_USAGE, "--label-smoothing needs labels: not with --ssl");
	if (o->scores || o->have_sepoch || o->have_sruns)
		die(EXIT_USAGE, "--scores, --score-epoch and --score-runs need labels: not with --ssl");
	if (o->tta)
		die(EXIT_USAGE, "--tta evaluates a classifier: not with --ssl (use --knn-eval)");
	if (o->classes)
		die(EXIT_USAGE, "--classes: an --ssl model has no classifier");
	if ((o->knn || o->probe) && !o->nval)
		die(EXIT_USAGE, "--knn-eval and --linear-probe evaluate on --val SHARD: give one");
	if (o->ssl.method == SSL_SIMCLR && o->swav_only)
		die(EXIT_USAGE, "--%s is an option of --ssl swav", o->swav_only);
	if (o->ssl.temperature == 0)
		o->ssl.temperature = o->ssl.method == SSL_SIMCLR ? 0.5f : 0.1f;
	o->ssl.aug.flip = o->flip;
}

static void parse_options(options *o, int argc, char **argv)
{
	enum { O_ARCH = 256, O_WIDTH, O_CLASSES, O_CHANNELS, O_SIZE, O_VAL, O_EVERY, O_PAD,
	       O_NOFLIP, O_MEAN, O_STD, O_EPOCHS, O_BATCH, O_LR, O_SCHED, O_WARMUP, O_GAMMA,
	       O_MINLR, O_MOM, O_NEST, O_WD, O_NODECAY, O_SMOOTH, O_OUT, O_RESUME, O_LOG,
	       O_SCORES, O_SEPOCH, O_SRUNS, O_EVAL, O_MODEL, O_PRED, O_SEED, O_THREADS, O_SSL,
	       O_VERSION, O_TTA, O_TEMP, O_PHID, O_PDIM, O_PROTO, O_QUEUE, O_QSTART, O_FREEZE,
	       O_SKEPS, O_CSCALE, O_JITTER, O_JPROB, O_GPROB, O_KNN, O_KNNK, O_KNNT, O_PROBE, O_BF16 };
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
		{ "temperature", required_argument, 0, O_TEMP },
		{ "proj-hidden", required_argument, 0, O_PHID },
		{ "proj-dim", required_argument, 0, O_PDIM },
		{ "prototypes", required_argument, 0, O_PROTO },
		{ "queue", required_argument, 0, O_QUEUE },
		{ "queue-start", required_argument, 0, O_QSTART },
		{ "freeze-prototypes", required_argument, 0, O_FREEZE },
		{ "sinkhorn-eps", required_argument, 0, O_SKEPS },
		{ "crop-scale", required_argument, 0, O_CSCALE },
		{ "jitter", required_argument, 0, O_JITTER },
		{ "jitter-prob", required_argument, 0, O_JPROB },
		{ "gray-prob", required_argument, 0, O_GPROB },
		{ "knn-eval", no_argument, 0, O_KNN }, { "knn-k", required_argument, 0, O_KNNK },
		{ "knn-t", required_argument, 0, O_KNNT },
		{ "linear-probe", no_argument, 0, O_PROBE }, { "bf16", no_argument, 0, O_BF16 },
		{ "quiet", no_argument, 0, 'q' }, { "help", no_argument, 0, 'h' },
		{ "version", no_argument, 0, O_VERSION },
		{ 0, 0, 0, 0 },
	};
	int c, li = 0;

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
	o->ssl.proj_hidden = 512;
	o->ssl.proj_dim = 128;
	o->ssl.prototypes = 300;
	o->ssl.queue_start = 2;
	o->ssl.freeze_protos = 1;
	o->ssl.sinkhorn_eps = 0.05f;
	o->ssl.sinkhorn_iters = 3;
	o->ssl.aug = (ssl_augment){ 0.2f, 1.0f, { 0.4f, 0.4f, 0.4f, 0.1f }, 0.8f, 0.2f, 1 };
	o->knn_k[0] = 200;
	o->knn_k[1] = 20;
	o->nknn = 2;
	o->knn_t = 0.1f;
	while ((c = getopt_long(argc, argv, "qh", lo, &li)) != -1) {
		/* the enum keeps the options of --ssl together, SwAV's inside them */
		if ((c >= O_TEMP && c <= O_GPROB) || c == O_PROBE)
			ssl_opt(o, lo[li].name);
		if (c >= O_PROTO && c <= O_SKEPS)
			swav_opt(o, lo[li].name);
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
		case O_SEPOCH:
			o->score_epoch = (int)parse_int("--score-epoch", optarg, 1, 1 << 20);
			o->have_sepoch = 1;
			break;
		case O_SRUNS:
			o->score_runs = (int)parse_int("--score-runs", optarg, 1, 1000);
			o->have_sruns = 1;
			break;
		case O_EVAL: o->eval_only = 1; break;
		case O_MODEL: o->model = optarg; break;
		case O_PRED: o->predictions = optarg; break;
		case O_TTA: o->tta = 1; break;
		case O_SEED: o->seed = (uint64_t)parse_int("--seed", optarg, 0, INT64_MAX); break;
		case O_THREADS: o->threads = (int)parse_int("--threads", optarg, 1, 1024); break;
		case O_SSL:
			if (!(o->ssl.method = ssl_method(optarg)))
				die(EXIT_USAGE, "--ssl: unknown method '%s' (simclr, swav)", optarg);
			break;
		case O_TEMP:
			o->ssl.temperature = (float)parse_double("--temperature", optarg, 1e-3, 100);
			break;
		case O_PHID:
			o->ssl.proj_hidden = (int)parse_int("--proj-hidden", optarg, 0, 1 << 16);
			break;
		case O_PDIM:
			o->ssl.proj_dim = (int)parse_int("--proj-dim", optarg, 1, 1 << 16);
			break;
		case O_PROTO:
			o->ssl.prototypes = (int)parse_int("--prototypes", optarg, 2, 1 << 20);
			break;
		case O_QUEUE:
			o->ssl.queue_len = (int)parse_int("--queue", optarg, 0, 1 << 20);
			break;
		case O_QSTART:
			o->ssl.queue_start = parse_double("--queue-start", optarg, 0, 1 << 20);
			break;
		case O_FREEZE:
			o->ssl.freeze_protos = parse_double("--freeze-prototypes", optarg, 0, 1 << 20);
			break;
		case O_SKEPS:
			o->ssl.sinkhorn_eps = (float)parse_double("--sinkhorn-eps", optarg, 1e-3, 10);
			break;
		case O_CSCALE: parse_crop_scale(&o->ssl.aug, optarg); break;
		case O_JITTER: parse_jitter(&o->ssl.aug, optarg); break;
		case O_JPROB:
			o->ssl.aug.jitter_prob = (float)parse_double("--jitter-prob", optarg, 0, 1);
			break;
		case O_GPROB:
			o->ssl.aug.gray_prob = (float)parse_double("--gray-prob", optarg, 0, 1);
			break;
		case O_KNN: o->knn = 1; break;
		case O_KNNK: parse_knn_k(o, optarg); break;
		case O_KNNT: o->knn_t = (float)parse_double("--knn-t", optarg, 1e-3, 100); break;
		case O_PROBE: o->probe = 1; break;
		case O_BF16: o->bf16 = 1; break;
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
	check_ssl_options(o);
	if (!o->eval_only && (o->model || o->predictions))
		die(EXIT_USAGE, "--model and --predictions go with --eval-only");
	if (o->tta && !o->eval_only && !o->nval)
		die(EXIT_USAGE, "--tta is an evaluation option: give --val SHARD");
	if (o->tta && !o->flip)
		die(EXIT_USAGE, "--tta averages each image with its mirror image: not with --no-flip");
	if (o->resume && !o->out)
		die(EXIT_USAGE, "--resume needs --out FILE (the state is FILE.state)");
	if (o->out && !o->eval_only) {
		char *state = xasprintf("%s.state", o->out);
		check_replaceable("--out", o->out);
		check_replaceable("--out", state);
		free(state);
	}
	if (o->log && !o->eval_only)
		check_replaceable("--log", o->log);
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

/* ---- self-supervised monitors ---- */

static const char *ssl_acc_name(const options *o)
{
	return o->ssl.method == SSL_SIMCLR ? "pair_acc" : "swap_acc";
}

/* The k-NN monitor and the linear probe need a label on every training and validation
 * image (training itself reads none). */
static void check_monitor_labels(const options *o, const dataset *d, const dataset *v)
{
	const dataset *sets[2] = { d, v };

	if (!o->knn && !o->probe)
		return;
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < sets[k]->n; i++)
			if (sets[k]->label[i] < 0)
				die(EXIT_DATA, "--knn-eval/--linear-probe: %s sample %s has no .cls member "
				    "(the monitors compare labels; training without them needs neither "
				    "option)", k ? "validation" : "training", sets[k]->key[i]);
}

/* Embed the training and validation images as cull-embed would, then k-NN and probe. */
static void ssl_monitor(const options *o, nn_model *m, const dataset *d, const dataset *v,
                        const augment *a, trainer *tr, int classes, double *knn, double *probe)
{
	int dim = m->feat_dim;
	float *tf = xmalloc(d->n * (size_t)dim * sizeof *tf), *vf = xmalloc(v->n * (size_t)dim * sizeof *vf);

	embed_dataset(tf, m, d, a, o->batch, tr->x, tr->labels);
	embed_dataset(vf, m, v, a, o->batch, tr->x, tr->labels);
	if (o->knn)
		knn_accuracy(knn, tf, d, vf, v, dim, classes, o->knn_k, o->nknn, o->knn_t);
	if (o->probe)
		*probe = linear_probe(tf, d, vf, v, dim, classes, o->seed);
	free(tf);
	free(vf);
}

static void monitor_text(char *buf, size_t len, const options *o, const double *knn,
                         double probe)
{
	size_t k = 0;

	buf[0] = '\0';
	for (int i = 0; o->knn && i < o->nknn && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, " knn%d %.4f", o->knn_k[i], knn[i]);
	if (o->probe && k < len)
		snprintf(buf + k, len - k, " linear %.4f", probe);
}

/* "val_acc" is the k-NN top-1 at the first --knn-k (else the probe's accuracy). */
static void monitor_json(char *buf, size_t len, const options *o, const double *knn,
                         double probe)
{
	size_t k = (size_t)snprintf(buf, len, "\"val_acc\":%.6f,", o->knn ? knn[0] : probe);

	for (int i = 0; o->knn && i < o->nknn && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, "\"knn_acc_%d\":%.6f,", o->knn_k[i], knn[i]);
	if (o->probe && k < len)
		snprintf(buf + k, len - k, "\"linear_acc\":%.6f,", probe);
}

/* ---- eval-only ---- */

/* " (with mirror TTA: accuracy A, loss L)" for the summaries; one static buffer. */
static const char *tta_text(const eval_result *r)
{
	static char buf[64];

	snprintf(buf, sizeof buf, " (mirror TTA: accuracy %.4f, loss %.4f)", r->tta_acc, r->tta_loss);
	return buf;
}

/* The model of an --eval-only file: a classifier (its fc decides the classes) or, with
 * encoder set, the network up to the pooled features (any fc is ignored). The mean and
 * std the file records (cull-train writes them) are used unless given; for an encoder
 * also the image size, unless --size is given (as cull-embed does). */
static nn_model *model_from_file(options *o, const char *path, const char *want, int encoder)
{
	st_file f;
	char arch[32];
	cull_err e;
	const st_entry *c1, *fc;
	const char *ms;
	int in_ch, w, h;
	double width;
	nn_model *m;

	if (st_load(&f, path, &e) != 0)
		die(EXIT_DATA, "%s", e.msg);
	c1 = st_find(&f, "conv1.weight");
	fc = st_find(&f, "fc.weight");
	if (!c1 || c1->ndim != 4 || (!encoder && (!fc || fc->ndim != 2)))
		die(EXIT_DATA, "%s: no conv1.weight or fc.weight: not a torchvision ResNet %s", path,
		    encoder ? "encoder" : "classifier (for an encoder use --knn-eval)");
	if (nn_infer_arch(&f, arch, sizeof arch, &in_ch, &width, &e) != 0 && !want)
		die(EXIT_USAGE, "%s: %s", path, e.msg);
	if (want)
		snprintf(arch, sizeof arch, "%s", want);
	if (!o->have_mean && (ms = st_meta_get(&f, "mean")) &&
	    sscanf(ms, "%f,%f,%f", &o->mean[0], &o->mean[1], &o->mean[2]) == 3)
		o->have_mean = 1;
	if (!o->have_std && (ms = st_meta_get(&f, "std")) &&
	    sscanf(ms, "%f,%f,%f", &o->std[0], &o->std[1], &o->std[2]) == 3 && o->std[0] > 0 &&
	    o->std[1] > 0 && o->std[2] > 0)
		o->have_std = 1;
	if (encoder && !o->size && (ms = st_meta_get(&f, "image_size")) &&
	    sscanf(ms, "%dx%d", &w, &h) == 2 && w == h && w > 0 && w <= 4096)
		o->size = w;       /* as cull-embed resizes for a model that records its size */
	m = nn_create(arch, in_ch, width, encoder ? 0 : (int)fc->shape[0], 0);
	st_free(&f);
	if (!m)
		die(EXIT_USAGE, "--arch: unknown architecture '%s' (known: %s)", arch, nn_arch_names());
	if (nn_load(m, path, encoder ? NN_LOAD_IGNORE_EXTRA : 0, &e) != 0)
		die(EXIT_DATA, "%s", e.msg);
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
	if (rec_write(c->w, &r) < 0)
		die_err(rec_writer_error(c->w));
	rec_free(&r);
}

/* --eval-only --knn-eval: k-NN top-1 of the --val images against the SHARD... images, both
 * embedded by the encoder as cull-embed embeds them. */
static int eval_knn(options *o, int argc, char **argv)
{
	nn_model *m = model_from_file(o, o->model, strcmp(o->arch, "resnet18-cifar") ? o->arch :
	                              NULL, 1);
	dataset d = { 0 }, v = { 0 };
	load_opts lo = { m->in_ch, o->size, 0, o->threads, o->quiet, "reference", 0 };
	augment a = { 0 };
	double t0 = now_seconds(), acc[8];
	int classes, dim = m->feat_dim;

	if (!o->nval || optind >= argc)
		die(EXIT_USAGE, "--eval-only --knn-eval: give the query images with --val and the "
		    "labelled reference images as SHARD...");
	data_load(&d, (const char *const *)argv + optind, (size_t)(argc - optind), &lo);
	print_cache("reference", &d, o->quiet);
	lo.what = "validation";
	v.h = d.h;
	v.w = d.w;
	v.c = d.c;
	data_load(&v, o->val, o->nval, &lo);
	print_cache("validation", &v, o->quiet);
	if (!d.n || !v.n)
		die(EXIT_DATA, "no images to compare");
	classes = 1 + (max_label(&d) > max_label(&v) ? max_label(&d) : max_label(&v));
	default_norm(o, d.c);
	memcpy(a.mean, o->mean, sizeof a.mean);
	memcpy(a.std, o->std, sizeof a.std);
	nn_setup(m, o->batch, d.h, d.w, 0);
	float *x = xmalloc((size_t)o->batch * (size_t)d.h * (size_t)d.w * (size_t)d.c * sizeof *x);
	int *labels = xmalloc((size_t)o->batch * sizeof *labels);
	float *df = xmalloc(d.n * (size_t)dim * sizeof *df), *vf = xmalloc(v.n * (size_t)dim * sizeof *vf);
	embed_dataset(df, m, &d, &a, o->batch, x, labels);
	embed_dataset(vf, m, &v, &a, o->batch, x, labels);
	knn_accuracy(acc, df, &d, vf, &v, dim, classes, o->knn_k, o->nknn, o->knn_t);
	printf("{\"n\":%zu,\"reference\":%zu,\"val_acc\":%.6f", v.n, d.n, acc[0]);
	for (int i = 0; i < o->nknn; i++)
		printf(",\"knn_acc_%d\":%.6f", o->knn_k[i], acc[i]);
	fputs("}\n", stdout);
	xfclose(stdout, "<stdout>");
	if (!o->quiet) {
		char buf[256];
		monitor_text(buf, sizeof buf, o, acc, 0);
		note("%s (%s, %d-d): k-NN top-1 of %zu images against %zu:%s, %.1f s", o->model,
		     m->arch, dim, v.n, d.n, buf, now_seconds() - t0);
	}
	free(x);
	free(labels);
	free(df);
	free(vf);
	data_free(&d);
	data_free(&v);
	nn_free(m);
	return 0;
}

static int eval_only(options *o, int argc, char **argv)
{
	if (o->knn)
		return eval_knn(o, argc, argv);
	nn_model *m = model_from_file(o, o->model, strcmp(o->arch, "resnet18-cifar") ? o->arch :
	                              NULL, 0);
	dataset d = { 0 };
	load_opts lo = { m->in_ch, o->size, m->num_classes, o->threads, o->quiet, "validation", 0 };
	augment a = { 0 };
	pred_ctx pc = { NULL, &d, m->num_classes };
	double t0 = now_seconds();
	eval_result r;
	cull_err e;
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
	if (o->predictions && !(pc.w = rec_writer_open(o->predictions, &e)))
		die_err(&e);
	r = eval_pass(m, &d, &a, o->batch, x, labels, o->tta, pc.w ? write_prediction : NULL, &pc);
	if (pc.w && rec_writer_close(pc.w, &e) < 0)
		die_err(&e);
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
	char sched[256], *base, *all;
	const ssl_opts *q = &o->ssl;

	base = xasprintf("arch=%s;width=%g;classes=%d;image=%dx%dx%d;epochs=%d;batch=%d;lr=%.17g;"
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
	if (!q->method)
		return base;
	all = xasprintf("%s;ssl=%s;temperature=%.9g;proj=%d,%d;prototypes=%d;queue=%d,%.17g;"
	                "freeze=%.17g;sinkhorn=%.9g,%d;crop_scale=%.9g,%.9g;jitter=%.9g,%.9g,%.9g,"
	                "%.9g;jitter_prob=%.9g;gray_prob=%.9g", base, ssl_method_name(q->method),
	                q->temperature, q->proj_hidden, q->proj_dim,
	                q->method == SSL_SWAV ? q->prototypes : 0, q->queue_len, q->queue_start,
	                q->freeze_protos, q->sinkhorn_eps, q->sinkhorn_iters, q->aug.scale_min,
	                q->aug.scale_max, q->aug.jitter[0], q->aug.jitter[1], q->aug.jitter[2],
	                q->aug.jitter[3], q->aug.jitter_prob, q->aug.gray_prob);
	free(base);
	return all;
}

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
	load_opts lo = { o->channels, o->size, o->classes, o->threads, o->quiet, "training",
	                 o->ssl.method != SSL_NONE };
	augment a;
	trainer tr;
	train_state t = { 0 };
	sample_stats s;
	int classes, evaluated = 0, ssl = o->ssl.method != SSL_NONE, views = ssl ? 2 : 1;
	eval_result val = { 0, 0, 0, 0 };
	ssl_state ss = { 0 };
	double knn[8] = { 0 }, probe = 0;
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
	if (ssl)
		check_monitor_labels(o, &d, &v);
	else if (classes < 2)
		die(EXIT_DATA, "the training data has a single class; give --classes");
	default_norm(o, d.c);
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
	tr.x = xmalloc((size_t)views * (size_t)o->batch * (size_t)d.h * (size_t)d.w * (size_t)d.c * sizeof(float));
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

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (t.epoch < o->epochs) {
		double t0 = now_seconds(), tv = 0;
		long seen0 = (long)t.seen;
		int done = ssl ? ssl_epoch(&tr, &t, &ss, &o->ssl, o->seed, &stop_flag) :
		           train_epoch(&tr, &t, &s, o->seed, &stop_flag);
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
			exit(130);
		}
		double ips = dt > 0 ? (double)(t.seen - seen0) / dt : 0;
		evaluated = o->nval && v.n && ((t.epoch + 1) % o->eval_every == 0 ||
		                               t.epoch + 1 == o->epochs);
		if (ssl)
			evaluated = evaluated && (o->knn || o->probe);
		if (evaluated) {
			tv = now_seconds();
			if (ssl)
				ssl_monitor(o, m, &d, &v, &a, &tr, classes, knn, &probe);
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
				monitor_text(vbuf, sizeof vbuf, o, knn, probe);
			else if (evaluated)
				snprintf(vbuf, sizeof vbuf, " val_loss %.4f val_acc %.4f%s", val.loss, val.acc,
				         o->tta ? tta_text(&val) : "");
			note("epoch %ld/%d loss %.4f %s %.4f%s lr %.4g %.0f img/s %s ETA %s",
			     t.epoch + 1, o->epochs, loss, ssl ? ssl_acc_name(o) : "acc", acc, vbuf, lr,
			     ips, el, eta);
		}
		snprintf(line, sizeof line, "{\"epoch\":%ld,\"step\":%ld,\"lr\":%.6g,\"loss\":%.6f,"
		         "\"%s\":%.6f,", t.epoch + 1, t.global_step, lr, loss,
		         ssl ? ssl_acc_name(o) : "train_acc", acc);
		if (evaluated && ssl)
			monitor_json(line + strlen(line), sizeof line - strlen(line), o, knn, probe);
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
		while (s.score_runs_done < o->score_runs && !stop_flag) {
			if (!o->quiet)
				note("score run %d of %d: training a fresh model for %d epochs",
				     s.score_runs_done + 1, o->score_runs, o->score_epoch);
			score_run(o, &tr, &s, s.score_runs_done, classes);
			if (o->out && !stop_flag)
				save_state(state_path, m, &s, &t, NULL);
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
		if (evaluated && ssl) {
			char vbuf[256];
			monitor_text(vbuf, sizeof vbuf, o, knn, probe);
			note("trained %s (%s) on %zu images for %d epochs in %s;%s", o->arch,
			     ssl_method_name(o->ssl.method), d.n, o->epochs, el, vbuf);
		} else if (evaluated)
			note("trained %s on %zu images for %d epochs in %s; val_acc %.4f%s", o->arch, d.n,
			     o->epochs, el, val.acc, o->tta ? tta_text(&val) : "");
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
	rc = o.eval_only ? eval_only(&o, argc, argv) : train(&o, argc, argv);
	free(o.val);
	return rc;
}
