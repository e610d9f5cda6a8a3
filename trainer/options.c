/* cull-train's command line: the usage text, the option table, parsing and checks, and
 * what follows from the options (the default normalisation, the resume config). */
#include "options.h"
#include "io.h"
#include "layers.h"

#include <getopt.h>
#include <math.h>
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
	"  --device D          cpu, cuda, cuda:N or auto (a GPU when one works): training\n"
	"                      steps in cuDNN and cuBLAS, float32; default $CULL_DEVICE, else cpu\n"
	"  --bf16              convolutions read bfloat16 (inputs, weights, gradients) and sum\n"
	"                      in float; weights, optimizer and other layers stay float32.\n"
	"                      Needs AVX512-BF16 or AMX, else a warning and float32;\n"
	"                      CULL_NN_BF16=emulate gives its accuracy on any CPU, slower\n"
	"  -q, --quiet         no progress, log lines or summary on standard error\n"
	"  -h, --help          this help;  --version  the version and the convolution backend\n";

enum { O_ARCH = 256, O_WIDTH, O_CLASSES, O_CHANNELS, O_SIZE, O_VAL, O_EVERY, O_PAD,
       O_NOFLIP, O_MEAN, O_STD, O_EPOCHS, O_BATCH, O_LR, O_SCHED, O_WARMUP, O_GAMMA,
       O_MINLR, O_MOM, O_NEST, O_WD, O_NODECAY, O_SMOOTH, O_OUT, O_RESUME, O_LOG,
       O_SCORES, O_SEPOCH, O_SRUNS, O_EVAL, O_MODEL, O_PRED, O_SEED, O_THREADS, O_SSL,
       O_VERSION, O_TTA, O_TEMP, O_PHID, O_PDIM, O_PROTO, O_QUEUE, O_QSTART, O_FREEZE,
       O_SKEPS, O_CSCALE, O_JITTER, O_JPROB, O_GPROB, O_KNN, O_KNNK, O_KNNT, O_PROBE, O_BF16,
       O_DEVICE };
static const struct option long_opts[] = {
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
	{ "device", required_argument, 0, O_DEVICE },
	{ "quiet", no_argument, 0, 'q' }, { "help", no_argument, 0, 'h' },
	{ "version", no_argument, 0, O_VERSION },
	{ 0, 0, 0, 0 },
};

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

	o->mon.nk = 0;
	for (;;) {
		long v = strtol(p, &e, 10);
		if (e == p || v < 1 || v > 100000 || (*e && *e != ',') || o->mon.nk == 8)
			die(EXIT_USAGE, "--knn-k: want up to 8 neighbour counts K,K,... (1..100000), "
			    "got '%s'", s);
		o->mon.k[o->mon.nk++] = (int)v;
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
		if (o->mon.knn && !o->eval_only)
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
	if ((o->mon.knn || o->mon.probe) && !o->nval)
		die(EXIT_USAGE, "--knn-eval and --linear-probe evaluate on --val SHARD: give one");
	if (o->ssl.method == SSL_SIMCLR && o->swav_only)
		die(EXIT_USAGE, "--%s is an option of --ssl swav", o->swav_only);
	if (o->ssl.temperature == 0)
		o->ssl.temperature = o->ssl.method == SSL_SIMCLR ? 0.5f : 0.1f;
	o->ssl.aug.flip = o->flip;
}

static void set_defaults(options *o)
{
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
	o->mon.k[0] = 200;
	o->mon.k[1] = 20;
	o->mon.nk = 2;
	o->mon.t = 0.1f;
}

/* One option from getopt_long into o: c its code, name its long name. */
static void parse_one(options *o, int c, const char *name)
{
	/* the enum keeps the options of --ssl together, SwAV's inside them */
	if ((c >= O_TEMP && c <= O_GPROB) || c == O_PROBE)
		ssl_opt(o, name);
	if (c >= O_PROTO && c <= O_SKEPS)
		swav_opt(o, name);
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
	case O_THREADS: o->threads = parse_threads(optarg); break;
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
	case O_KNN: o->mon.knn = 1; break;
	case O_KNNK: parse_knn_k(o, optarg); break;
	case O_KNNT: o->mon.t = (float)parse_double("--knn-t", optarg, 1e-3, 100); break;
	case O_PROBE: o->mon.probe = 1; break;
	case O_BF16: o->bf16 = 1; break;
	case O_DEVICE: o->device = optarg; break;
	case 'q': o->quiet = 1; break;
	case 'h': fputs(usage, stdout); xfclose(stdout, "<stdout>"); exit(0);
	case O_VERSION: {
		char nn[1024], gpu[512];
		gpu_probe(gpu, sizeof gpu);
		snprintf(nn, sizeof nn, "nn: %s\n%s", nn_backend(), gpu);
		print_version("cull-train", nn);
	}
	default:
		fprintf(stderr, "Try 'cull-train --help' for the options.\n");
		exit(EXIT_USAGE);
	}
}

/* The options' combinations and paths, after they are all parsed. */
static void check_options(options *o)
{
	if (o->have_std)
		for (int c = 0; c < 3; c++)
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
	const char *dev = o->device ? o->device : getenv("CULL_DEVICE");
	cull_err e;
	if (nn_device_parse(dev && *dev ? dev : "cpu", &o->dev, &e) < 0)
		die(EXIT_USAGE, "%s%s", o->device ? "" : "CULL_DEVICE: ", e.msg);
	if (o->dev.kind != NN_DEV_CPU && o->bf16)
		die(EXIT_USAGE, "--bf16 with --device %s: bfloat16 training on a GPU is not built "
		    "yet; train in float32 there", dev);
}

void parse_options(options *o, int argc, char **argv)
{
	int c, li = 0;

	set_defaults(o);
	while ((c = getopt_long(argc, argv, "qh", long_opts, &li)) != -1)
		parse_one(o, c, long_opts[li].name);
	o->shards = (const char *const *)argv + optind;
	o->nshards = (size_t)(argc - optind);
	check_options(o);
}

void options_default_norm(options *o, int channels)
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

char *options_config(const options *o, const dataset *d, int classes)
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
