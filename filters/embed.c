/* cull-embed: stream WebDataset shards through a ResNet encoder and write embedding records. */
#include "image.h"
#include "gpu.h"
#include "io.h"
#include "layers.h"
#include "preprocess.h"
#include "record.h"
#include "resnet.h"
#include "safetensors.h"
#include "ssl.h"
#include "wds.h"

#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MODEL "cifar10-simclr-r18w025.safetensors"
#ifndef CULL_MODELDIR
#define CULL_MODELDIR "/usr/local/share/cull/models"
#endif

static const char usage[] =
	"usage: cull-embed [--model FILE] [options] [SHARD...]\n"
	"Decode the images of WebDataset shards (standard input when none or '-'), run a\n"
	"ResNet encoder and write one record per sample: key, emb (float32), cls.\n"
	"  --model FILE       encoder weights (safetensors, torchvision names); default: the\n"
	"                     shipped encoder, " DEFAULT_MODEL "\n"
	"                     (self-supervised on CIFAR-10; for small natural images)\n"
	"  --arch NAME        architecture (default: inferred from the tensor shapes):\n"
	"                     resnet18 resnet34 resnet50 resnet18-cifar resnet20 resnet32 resnet56\n"
	"  --resize S         resize the shorter side to S (default: the training size a\n"
	"                     cull-train model records, else 256 for ImageNet models and none\n"
	"                     for CIFAR models); 0 = no resize\n"
	"  --crop C           center crop C x C (default: as --resize, 224 for ImageNet models)\n"
	"  --mean M,M,M       normalisation mean (default: the one a cull-train model records,\n"
	"                     else ImageNet's 0.485,0.456,0.406)\n"
	"  --std S,S,S        normalisation std (default: as --mean; ImageNet 0.229,0.224,0.225)\n"
	"  --exact            decode JPEGs at full size, as PIL does (default: DCT scaling to\n"
	"                     1/2, 1/4 or 1/8 while the shorter side stays >= the resize)\n"
	"  --image-field LIST member fields that hold the image (default jpg,jpeg,png,ppm,pgm)\n"
	"  --carry LIST       copy these member fields into the records (text as str, else bin)\n"
	"  --no-normalize     write the raw pooled features instead of L2-normalised ones\n"
	"  --device D         cpu, cuda, cuda:N or auto (a GPU when one works, else the CPU);\n"
	"                     default $CULL_DEVICE, else cpu\n"
	"  --bf16             convolutions in bfloat16 (the default on a GPU; about 2x faster on\n"
	"                     CPUs with AVX512-BF16 or AMX; embeddings agree to ~1e-2)\n"
	"  --fp32             convolutions in float32 (the default on the CPU)\n"
	"  --batch B          images per forward pass (default 32 on the CPU, 256 on a GPU)\n"
	"  --threads T        threads for decoding and for the forward pass (default: CPUs)\n"
	"  --max-pixels N     refuse images larger than N pixels, from the header (default 268M)\n"
	"  --max-member SIZE  refuse tar members larger than SIZE (default 256M)\n"
	"  --strict           exit with status 4 at the first sample that cannot be embedded\n"
	"                     or tar member that is not carried (a directory, link, device)\n"
	"  -q, --quiet        no progress and no summary on standard error\n"
	"  -h, --help         this help;  --version  the version and the convolution backend\n";

enum { SK_OK, SK_NOIMAGE, SK_EMPTY, SK_DECODE, SK_TOOBIG, SK_SIZE, SK_N };
static const char *const skip_name[SK_N] = {
	"", "no image member", "empty image", "undecodable image", "image over the pixel limit",
	"image of another size",
};

typedef struct {
	const char *model, *arch, *image_field, *carry;
	int resize, crop, batch, threads, strict, normalize, exact, quiet, bf16, fp32;
	nn_device dev;
	float mean[3], std[3];
	int have_mean, have_std;
	uint64_t max_pixels, max_member;
	const char *const *shards;      /* SHARD... (none: standard input) */
	size_t nshards;
} options;

/* One sample of a batch: the sample as read, then what decoding made of it. */
typedef struct {
	wds_sample s;
	int status;
	char err[200];
	unsigned char *scratch;
	size_t scratch_cap;
	float *plane;           /* GPU: the preprocessed image before packing */
} slot;

typedef struct {
	slot *slots;
	int n;                  /* samples in this batch */
	float *x;               /* [batch, C, H, W], slot i at image i (CPU) */
	unsigned char *xg;      /* GPU: the packed images (gpu_pack_image), page-locked */
} batch;

/* ---- the decode pool: workers take slots of a batch while the main thread runs the
 * forward pass of the previous one ---- */

typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	batch *job;
	int next, end;          /* slots next..end-1 of job are still to claim */
	int pending;            /* slots not yet finished */
	int quit;
	int nthreads;
	pthread_t *tid;
	/* what decoding needs */
	const options *o;
	int channels, h, w;
	gpu_net *gpu;           /* when set, images are packed for it into batch.xg */
} pool;

static void decode_slot(pool *p, batch *b, int i)
{
	slot *sl = &b->slots[i];
	const options *o = p->o;
	const wds_member *m = wds_find(&sl->s, o->image_field);
	image img = { 0 };
	image_opts io = { 0 };
	int ow, oh;
	size_t plane = (size_t)p->channels * (size_t)p->h * (size_t)p->w;
	cull_err e;

	sl->status = SK_OK;
	if (!m) {
		sl->status = SK_NOIMAGE;
		snprintf(sl->err, sizeof sl->err, "no image member (looked for %s)", o->image_field);
		return;
	}
	if (m->size == 0) {
		sl->status = SK_EMPTY;
		snprintf(sl->err, sizeof sl->err, "%s member is empty", m->field);
		return;
	}
	io.channels = p->channels;
	io.max_pixels = o->max_pixels;
	io.strict = 1;
	io.min_size = o->exact ? 0 : (o->resize > 0 ? o->resize : o->crop);
	if (image_decode(&img, m->data, m->size, &io, &e) != 0) {
		snprintf(sl->err, sizeof sl->err, "%.*s", (int)sizeof sl->err - 1, e.msg);
		sl->status = strstr(sl->err, "over the limit") ? SK_TOOBIG : SK_DECODE;
		return;
	}
	preprocess_size(img.width, img.height, o->resize, o->crop, &ow, &oh);
	if (ow != p->w || oh != p->h) {
		sl->status = SK_SIZE;
		snprintf(sl->err, sizeof sl->err, "image is %dx%d after preprocessing, the model "
		         "input is %dx%d (use --resize/--crop)", ow, oh, p->w, p->h);
	} else {
		float *x = p->gpu ? sl->plane : b->x + (size_t)i * plane;
		preprocess_eval(x, &img, o->resize, o->crop, o->mean, o->std, &sl->scratch,
		                &sl->scratch_cap);
		if (p->gpu)
			gpu_pack_image(p->gpu, b->xg + (size_t)i * gpu_net_image_bytes(p->gpu), x);
	}
	image_free(&img);
}

/* A slot is claimed under the mutex together with the batch it belongs to, so a worker
 * finishing one batch can never take a slot of the next one as its own. */
static void *worker(void *arg)
{
	pool *p = arg;
	batch *b;
	int i;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->quit && p->next >= p->end)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->quit)
			break;
		i = p->next++;
		b = p->job;
		pthread_mutex_unlock(&p->mu);
		decode_slot(p, b, i);
		pthread_mutex_lock(&p->mu);
		if (--p->pending == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void pool_start(pool *p, int nthreads)
{
	int i;

	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->nthreads = nthreads;
	p->tid = xcalloc((size_t)nthreads, sizeof *p->tid);
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&p->tid[i], NULL, worker, p) != 0)
			die(EXIT_NOMEM, "cannot start a decode thread");
}

static void pool_submit(pool *p, batch *b)
{
	pthread_mutex_lock(&p->mu);
	p->job = b;
	p->next = 0;
	p->end = b->n;
	p->pending = b->n;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
}

static void pool_wait(pool *p)
{
	pthread_mutex_lock(&p->mu);
	while (p->pending > 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

static void pool_stop(pool *p)
{
	int i;

	pthread_mutex_lock(&p->mu);
	p->quit = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->tid[i], NULL);
	free(p->tid);
}

/* ---- model ---- */

/* The shipped encoder: in $CULL_MODELS, beside an installed binary
 * (PREFIX/bin/../share/cull/models), in the source tree of a built one
 * (build/rel/bin/../../../models), or in the configured data directory. */
static char *default_model(void)
{
	char exe[4096], *dir, *p;
	const char *env = getenv("CULL_MODELS");
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	struct stat sb;
	char *cand[4] = { NULL, NULL, NULL, NULL };
	char *found = NULL;

	if (env && *env)
		cand[0] = xasprintf("%s/%s", env, DEFAULT_MODEL);
	if (n > 0) {
		exe[n] = '\0';
		dir = exe;
		if ((p = strrchr(dir, '/')))
			*p = '\0';
		cand[1] = xasprintf("%s/../share/cull/models/%s", dir, DEFAULT_MODEL);
		cand[2] = xasprintf("%s/../../../models/%s", dir, DEFAULT_MODEL);
	}
	cand[3] = xasprintf("%s/%s", CULL_MODELDIR, DEFAULT_MODEL);
	for (int i = 0; i < 4; i++) {
		if (!found && cand[i] && stat(cand[i], &sb) == 0 && S_ISREG(sb.st_mode))
			found = cand[i];
		else
			free(cand[i]);
	}
	if (!found)
		die(EXIT_USAGE, "no --model given and the default encoder %s is not in $CULL_MODELS, "
		    "beside the program or in %s; give --model FILE", DEFAULT_MODEL, CULL_MODELDIR);
	return found;
}

/* What a model file says about itself: the architecture, input channels and width of a
 * torchvision-named state dict (--arch, when given, names the architecture; channels and
 * width still come from conv1), and the normalisation and image size cull-train records. */
typedef struct {
	char arch[32];
	int in_ch, image_size;
	double width;
	float mean[3], std[3];
	int have_mean, have_std;
} model_info;

static int meta_floats3(const st_file *f, const char *key, float *v)
{
	const char *s = st_meta_get(f, key);

	return s && sscanf(s, "%f,%f,%f", &v[0], &v[1], &v[2]) == 3;
}

static void model_info_read(model_info *mi, const char *path, const char *want)
{
	st_file f;
	cull_err e;
	const char *sz;
	int w, h;

	memset(mi, 0, sizeof *mi);
	if (st_load(&f, path, &e) != 0)
		die(access(path, R_OK) == 0 ? EXIT_DATA : EXIT_IO, "%s", e.msg);
	/* with --arch the shapes need not fit a known model: conv1 still gives the rest */
	if (nn_infer_arch(&f, mi->arch, sizeof mi->arch, &mi->in_ch, &mi->width, &e) != 0 &&
	    (!want || !mi->in_ch))
		die(mi->in_ch ? EXIT_USAGE : EXIT_DATA, "%s: %s", path, e.msg);
	if (want)
		snprintf(mi->arch, sizeof mi->arch, "%s", want);
	mi->have_mean = meta_floats3(&f, "mean", mi->mean);
	mi->have_std = meta_floats3(&f, "std", mi->std);
	for (int c = 0; c < 3; c++)
		if (mi->have_std && !(mi->std[c] > 0))
			mi->have_std = 0;
	sz = st_meta_get(&f, "image_size");
	if (sz && sscanf(sz, "%dx%d", &w, &h) == 2 && w == h && w > 0 && w <= 4096)
		mi->image_size = w;
	st_free(&f);
}

/* ---- records ---- */

static int utf8_text(const unsigned char *p, size_t n)
{
	size_t i = 0;
	int k;

	while (i < n) {
		unsigned char c = p[i];
		if (c == 0)
			return 0;
		k = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 :
		    (c & 0xf8) == 0xf0 ? 3 : -1;
		if (k < 0 || i + (size_t)k >= n + (k == 0))
			return 0;
		for (i++; k > 0; k--, i++)
			if (i >= n || (p[i] & 0xc0) != 0x80)
				return 0;
	}
	return 1;
}

static void carry_fields(record *r, const wds_sample *s, const char *list)
{
	const char *p = list, *end;
	char name[64];
	size_t i, n;

	while (*p) {
		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		n = (size_t)(end - p);
		if (n && n < sizeof name) {
			memcpy(name, p, n);
			name[n] = '\0';
			for (i = 0; i < s->nmembers; i++) {
				const wds_member *m = &s->members[i];
				if (strcmp(m->field, name) != 0)
					continue;
				if (utf8_text(m->data, m->size)) {
					char *t = xstrndup((const char *)m->data, m->size);
					rec_set_str(r, name, t);
					free(t);
				} else {
					rec_set_bin(r, name, m->data, m->size);
				}
				break;
			}
		}
		p = *end ? end + 1 : end;
	}
}

/* ---- options ---- */

static void parse_options(options *o, int argc, char **argv)
{
	enum { O_MODEL = 256, O_ARCH, O_RESIZE, O_CROP, O_MEAN, O_STD, O_EXACT, O_FIELD,
	       O_CARRY, O_NONORM, O_BATCH, O_THREADS, O_MAXPIX, O_MAXMEM, O_STRICT, O_VERSION, O_BF16,
	       O_FP32, O_DEVICE };
	static const struct option lo[] = {
		{ "model", required_argument, 0, O_MODEL }, { "arch", required_argument, 0, O_ARCH },
		{ "resize", required_argument, 0, O_RESIZE }, { "crop", required_argument, 0, O_CROP },
		{ "mean", required_argument, 0, O_MEAN }, { "std", required_argument, 0, O_STD },
		{ "exact", no_argument, 0, O_EXACT }, { "bf16", no_argument, 0, O_BF16 },
		{ "fp32", no_argument, 0, O_FP32 }, { "device", required_argument, 0, O_DEVICE },
		{ "image-field", required_argument, 0, O_FIELD },
		{ "carry", required_argument, 0, O_CARRY },
		{ "no-normalize", no_argument, 0, O_NONORM },
		{ "batch", required_argument, 0, O_BATCH },
		{ "threads", required_argument, 0, O_THREADS },
		{ "max-pixels", required_argument, 0, O_MAXPIX },
		{ "max-member", required_argument, 0, O_MAXMEM },
		{ "strict", no_argument, 0, O_STRICT }, { "quiet", no_argument, 0, 'q' },
		{ "help", no_argument, 0, 'h' }, { "version", no_argument, 0, O_VERSION },
		{ 0, 0, 0, 0 },
	};
	int c;
	const char *device = getenv("CULL_DEVICE");
	int from_env = 1;
	char gpu[512];
	cull_err e;

	memset(o, 0, sizeof *o);
	o->resize = o->crop = -1;
	o->batch = 0;
	o->normalize = 1;
	o->image_field = "jpg,jpeg,png,ppm,pgm";
	o->carry = "";
	while ((c = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
		switch (c) {
		case O_MODEL: o->model = optarg; break;
		case O_ARCH: o->arch = optarg; break;
		case O_RESIZE: o->resize = (int)parse_int("--resize", optarg, 0, 1 << 16); break;
		case O_CROP: o->crop = (int)parse_int("--crop", optarg, 0, 1 << 16); break;
		case O_MEAN: parse_floats3("--mean", optarg, o->mean); o->have_mean = 1; break;
		case O_STD: parse_floats3("--std", optarg, o->std); o->have_std = 1; break;
		case O_EXACT: o->exact = 1; break;
		case O_FIELD: o->image_field = optarg; break;
		case O_CARRY: o->carry = optarg; break;
		case O_NONORM: o->normalize = 0; break;
		case O_BATCH: o->batch = (int)parse_int("--batch", optarg, 1, 4096); break;
		case O_THREADS: o->threads = parse_threads(optarg); break;
		case O_MAXPIX: o->max_pixels = parse_size("--max-pixels", optarg); break;
		case O_MAXMEM: o->max_member = parse_size("--max-member", optarg); break;
		case O_STRICT: o->strict = 1; break;
		case O_BF16: o->bf16 = 1; o->fp32 = 0; break;
		case O_FP32: o->fp32 = 1; o->bf16 = 0; break;
		case O_DEVICE: device = optarg; from_env = 0; break;
		case 'q': o->quiet = 1; break;
		case 'h': fputs(usage, stdout); xfclose(stdout, "<stdout>"); exit(0);
		case O_VERSION:
			gpu_probe(gpu, sizeof gpu);
			print_version("cull-embed", xasprintf("nn: %s\n%s", nn_backend(), gpu));
		default:
			fprintf(stderr, "usage: cull-embed [--model FILE] [options] [SHARD...]; "
			        "see cull-embed --help\n");
			exit(EXIT_USAGE);
		}
	}
	if (o->have_std)
		for (c = 0; c < 3; c++)
			if (!(o->std[c] > 0))
				die(EXIT_USAGE, "--std: values must be positive");
	if (!o->threads)
		o->threads = default_threads();
	if (nn_device_parse(device && *device ? device : "cpu", &o->dev, &e) < 0)
		die(EXIT_USAGE, "%s%s", from_env ? "CULL_DEVICE: " : "", e.msg);
	o->shards = (const char *const *)argv + optind;
	o->nshards = (size_t)(argc - optind);
}

/* ---- the encoder ---- */

/* The encoder o names (or the shipped one), loaded, on o->threads layer threads; *mi is
 * what its file says. */
static nn_model *open_model(const options *o, char **model_path, model_info *mi)
{
	cull_err err;
	nn_model *m;

	*model_path = o->model ? xstrdup(o->model) : default_model();
	if (!o->model && !o->quiet)
		note("no --model: using the default encoder %s", *model_path);
	model_info_read(mi, *model_path, o->arch);
	m = nn_create(mi->arch, mi->in_ch, mi->width, 0, 0);
	if (!m)
		die(EXIT_USAGE, "--arch: unknown architecture '%s' (known: %s)", mi->arch, nn_arch_names());
	if (nn_load(m, *model_path, NN_LOAD_IGNORE_EXTRA, &err) != 0)
		die(EXIT_DATA, "%s", err.msg);
	return m;
}

/* The preprocessing o leaves open, from the model: its recorded size and normalisation,
 * else the architecture's habit (ImageNet models 256/224) and ImageNet's statistics. */
static void model_defaults(options *o, const model_info *mi)
{
	const char *arch = mi->arch;
	int in_ch = mi->in_ch;
	int imagenet = strcmp(arch, "resnet18") == 0 || strcmp(arch, "resnet34") == 0 ||
	               strcmp(arch, "resnet50") == 0;

	/* a size the model file records (cull-train's) wins over the architecture's habit */
	if (o->resize < 0)
		o->resize = mi->image_size ? mi->image_size : imagenet ? 256 : 0;
	if (o->crop < 0)
		o->crop = mi->image_size ? mi->image_size : imagenet ? 224 : 0;
	if (!o->have_mean && mi->have_mean) {
		memcpy(o->mean, mi->mean, sizeof o->mean);
		o->have_mean = 1;
	}
	if (!o->have_std && mi->have_std) {
		memcpy(o->std, mi->std, sizeof o->std);
		o->have_std = 1;
	}
	if (!o->have_mean) {
		const float im[3] = { 0.485f, 0.456f, 0.406f };
		memcpy(o->mean, im, sizeof im);
		if (in_ch == 1)
			o->mean[0] = 0.449f;
	}
	if (!o->have_std) {
		const float is[3] = { 0.229f, 0.224f, 0.225f };
		memcpy(o->std, is, sizeof is);
		if (in_ch == 1)
			o->std[0] = 0.226f;
	}
}

/* ---- the stream: read a batch, decode it in the pool while the previous one runs
 * forward, write its records ---- */

/* Read up to max samples into b; a broken stream sets *broken and ends the input. */
static int read_batch(wds_reader *r, batch *b, int max, int *broken)
{
	int rc;

	b->n = 0;
	while (!*broken && b->n < max) {
		rc = wds_next(r, &b->slots[b->n].s);
		if (rc < 0)
			*broken = 1;
		if (rc <= 0)
			break;
		b->n++;
	}
	return b->n;
}

typedef struct {
	uint64_t read, embedded, skipped[SK_N];
	uint64_t total_bytes;
	double t0, last, forward;   /* forward: seconds spent in the encoder */
} stats;

static void progress(const stats *st, const wds_reader *r, int final)
{
	double t = now_seconds(), el = t - st->t0, rate = el > 0 ? (double)st->read / el : 0;
	uint64_t done = wds_bytes_read(r);

	if (!final && st->total_bytes && done > 0 && done < st->total_bytes) {
		double eta = el * (double)(st->total_bytes - done) / (double)done;
		fprintf(stderr, "\rcull-embed: %llu samples, %.0f img/s, ETA %d:%02d   ",
		        (unsigned long long)st->read, rate, (int)(eta / 60), (int)eta % 60);
	} else {
		fprintf(stderr, "\rcull-embed: %llu samples, %.0f img/s   ",
		        (unsigned long long)st->read, rate);
	}
	if (final)
		fputc('\n', stderr);
}

/* A run: the encoder, the decode pool and its two batches, the input and the output. */
typedef struct {
	const options *o;
	nn_model *m;
	gpu_device *dev;        /* NULL: the CPU */
	gpu_net *gpu;
	int in_ch, dim, show, broken;
	pool p;
	batch b[2];
	wds_reader *r;
	rec_writer *w;
	cull_err e;
	record rec;
	float *emb;            /* [dim] */
	stats st;
} embedder;

static size_t plane_floats(const embedder *e)
{
	return (size_t)e->in_ch * (size_t)e->p.h * (size_t)e->p.w;
}

/* Without --crop: the size of cb's first image that decodes, after --resize (1x1 when
 * none does: every sample is then skipped). */
static void first_size(embedder *e, const batch *cb)
{
	const options *o = e->o;
	int i;

	for (i = 0; i < cb->n && !e->p.h; i++) {
		image img = { 0 };
		image_opts io = { .channels = e->in_ch, .max_pixels = o->max_pixels,
		                  .strict = 1 };
		const wds_member *mm = wds_find(&cb->slots[i].s, o->image_field);
		io.min_size = o->exact ? 0 : o->resize;
		if (mm && mm->size && image_decode(&img, mm->data, mm->size, &io,
		                                   NULL) == 0) {
			preprocess_size(img.width, img.height, o->resize, 0, &e->p.w, &e->p.h);
			image_free(&img);
		}
	}
	if (!e->p.h)
		e->p.h = e->p.w = 1;   /* nothing decodes: every sample is skipped */
}

/* Reads and decodes the first batch into cb, fixing the input size, the buffers and the
 * pool; 0 when there is no input. */
static int first_batch(embedder *e, batch *cb)
{
	const options *o = e->o;

	if (read_batch(e->r, cb, o->batch, &e->broken) == 0)
		return 0;
	if (!e->p.h)
		first_size(e, cb);
	if (e->dev) {
		cull_err err;
		e->gpu = gpu_net_create(e->dev, e->m, o->batch, e->p.h, e->p.w, o->bf16, &err);
		if (!e->gpu)
			die_err(&err);
		if (!o->quiet)
			note("%s", gpu_net_plan(e->gpu));
		e->p.gpu = e->gpu;
		for (int k = 0; k < 2; k++) {
			e->b[k].xg = gpu_host_alloc(e->dev, (size_t)o->batch *
			                            gpu_net_image_bytes(e->gpu), &err);
			if (!e->b[k].xg)
				die_err(&err);
			for (int i = 0; i < o->batch; i++)
				e->b[k].slots[i].plane = xmalloc(plane_floats(e) * sizeof(float));
		}
	} else {
		for (int k = 0; k < 2; k++)
			e->b[k].x = xmalloc((size_t)o->batch * plane_floats(e) * sizeof(float));
		nn_setup(e->m, o->batch, e->p.h, e->p.w, 0);
	}
	if (!e->p.tid)
		pool_start(&e->p, o->threads);
	pool_submit(&e->p, cb);
	pool_wait(&e->p);
	return 1;
}

/* Packs the good images of cb densely and runs the encoder: their outputs [n, dim], or
 * NULL when there is none. */
static const float *encode(embedder *e, batch *cb)
{
	size_t plane = e->gpu ? gpu_net_image_bytes(e->gpu) : plane_floats(e) * sizeof(float);
	unsigned char *x = e->gpu ? cb->xg : (unsigned char *)cb->x;
	int n_ok = 0;
	const float *out = NULL;
	cull_err err;

	for (int i = 0; i < cb->n; i++) {
		if (cb->slots[i].status != SK_OK)
			continue;
		if (n_ok != i)
			memcpy(x + (size_t)n_ok * plane, x + (size_t)i * plane, plane);
		n_ok++;
	}
	double tf = now_seconds();
	if (n_ok && e->gpu && !(out = gpu_net_forward(e->gpu, x, n_ok, &err)))
		die_err(&err);
	else if (n_ok && !e->gpu)
		out = nn_forward(e->m, cb->x, n_ok, 0);
	e->st.forward += now_seconds() - tf;
	return out;
}

/* One record per good sample of cb, in input order, with its row of out; a warning per
 * skipped one (the end with --strict). */
static void write_records(embedder *e, const batch *cb, const float *out)
{
	const options *o = e->o;
	int i, k;
	float norm;

	for (i = 0, k = 0; i < cb->n; i++) {
		const slot *sl = &cb->slots[i];
		const wds_member *cls;
		int64_t cv;
		e->st.read++;
		if (sl->status != SK_OK) {
			e->st.skipped[sl->status]++;
			warn("%s: %s: skipped: %s", sl->s.source, sl->s.key, sl->err);
			if (o->strict) {
				cull_err err;
				if (rec_writer_close(e->w, &err) < 0)
					die_err(&err);
				die(EXIT_SKIP, "--strict: stopping at the first skipped sample");
			}
			continue;
		}
		memcpy(e->emb, out + (size_t)k * (size_t)e->dim, (size_t)e->dim * sizeof *e->emb);
		k++;
		if (o->normalize)
			l2norm_forward(e->emb, &norm, e->emb, 1, e->dim);
		rec_clear(&e->rec);
		rec_set_str(&e->rec, "key", sl->s.key);
		cls = wds_find(&sl->s, "cls");
		if (cls) {
			if (wds_parse_cls(cls, &cv))
				rec_set_int(&e->rec, "cls", cv);
			else
				warn("%s: %s: .cls is not a decimal integer; cls left out",
				     sl->s.source, sl->s.key);
		}
		rec_set_floats(&e->rec, "emb", e->emb, (size_t)e->dim);
		if (*o->carry)
			carry_fields(&e->rec, &sl->s, o->carry);
		if (rec_write(e->w, &e->rec) < 0)
			die_err(rec_writer_error(e->w));
		e->st.embedded++;
	}
}

/* Every batch of the input: the next one decodes while this one runs forward. */
static void embed_all(embedder *e)
{
	int cur = 0;

	if (!first_batch(e, &e->b[cur]))
		return;
	for (;;) {
		batch *cb = &e->b[cur], *nb = &e->b[1 - cur];
		const float *out;

		read_batch(e->r, nb, e->o->batch, &e->broken);
		if (nb->n)
			pool_submit(&e->p, nb);
		out = encode(e, cb);
		write_records(e, cb, out);
		if (e->show && now_seconds() - e->st.last > 0.5) {
			progress(&e->st, e->r, 0);
			e->st.last = now_seconds();
		}
		if (nb->n)
			pool_wait(&e->p);
		cur = 1 - cur;
		if (e->b[cur].n == 0)
			break;
	}
}

/* ---- main ---- */

static void summary(const embedder *e, const char *arch)
{
	const stats *st = &e->st;
	uint64_t sk = 0;
	char why[512] = "";
	size_t len = 0;
	double el = now_seconds() - st->t0;

	for (int i = 1; i < SK_N; i++) {
		if (!st->skipped[i])
			continue;
		sk += st->skipped[i];
		len += (size_t)snprintf(why + len, len < sizeof why ? sizeof why - len : 0,
		                        "%s%llu %s", len ? ", " : "",
		                        (unsigned long long)st->skipped[i], skip_name[i]);
	}
	uint64_t members = wds_members_skipped(e->r);
	char more[80] = "";
	if (members)
		snprintf(more, sizeof more, "; %llu tar members are not sample members",
		         (unsigned long long)members);
	note("embedded %llu of %llu samples with %s (%d-d) in %.1f s, %.0f img/s, "
	     "%.0f%% of it in the encoder; skipped %llu%s%s%s%s", (unsigned long long)st->embedded,
	     (unsigned long long)st->read, arch, e->dim, el, el > 0 ? (double)st->read / el : 0.0,
	     el > 0 ? 100.0 * st->forward / el : 0.0,
	     (unsigned long long)sk, sk ? " (" : "", why, sk ? ")" : "", more);
	if (e->gpu && el > 0)
		note("GPU: busy %.1f s of %.1f s (%.0f%%): it waited %.1f s for decoding with %d "
		     "threads; %.0f img/s while busy", gpu_net_busy(e->gpu), el,
		     100.0 * gpu_net_busy(e->gpu) / el, el - gpu_net_busy(e->gpu), e->o->threads,
		     gpu_net_busy(e->gpu) > 0 ? (double)st->embedded / gpu_net_busy(e->gpu) : 0.0);
}

static int run(options *o)
{
	embedder e = { .o = o };
	wds_options wo = { 0 };
	char *model_path;
	model_info mi;
	struct stat sb;
	int code;
	cull_err err;

	e.m = open_model(o, &model_path, &mi);
	model_defaults(o, &mi);
	if (o->dev.kind != NN_DEV_CPU) {
		e.dev = gpu_open(o->dev.index, &err);
		if (!e.dev && o->dev.kind == NN_DEV_CUDA)
			die_err(&err);
		if (!e.dev && !o->quiet)
			note("--device auto: no usable GPU (%s); running on the CPU", err.msg);
		if (e.dev && !o->quiet)
			note("running on %s", gpu_describe(e.dev));
	}
	if (!o->batch)
		o->batch = e.dev ? 256 : 32;
	if (e.dev && !o->fp32)
		o->bf16 = 1;
	if (!e.dev) {
		nn_set_threads(o->threads);
		if (o->bf16)
			nn_bf16_option();
	}
	e.in_ch = mi.in_ch;
	e.dim = e.m->feat_dim;
	e.emb = xmalloc((size_t)e.dim * sizeof *e.emb);

	wo.max_member = o->max_member;
	wo.check_keys = 1;
	wo.defer_errors = 1;      /* a broken stream ends the input; what came before is written */
	wo.strict = o->strict;    /* a member that is not carried ends it too, with status 4 */
	e.r = wds_open(o->shards, o->nshards, &wo);
	for (size_t i = 0; i < o->nshards; i++)
		if (strcmp(o->shards[i], "-") && stat(o->shards[i], &sb) == 0)
			e.st.total_bytes += (uint64_t)sb.st_size;
	if (!(e.w = rec_writer_open("-", &err)))
		die_err(&err);
	rec_init(&e.rec);
	e.show = !o->quiet && stderr_is_tty();
	e.st.t0 = e.st.last = now_seconds();

	e.p.o = o;
	e.p.channels = e.in_ch;
	e.p.h = e.p.w = o->crop;     /* 0 until the first image fixes it when there is no crop */
	for (int k = 0; k < 2; k++)
		e.b[k].slots = xcalloc((size_t)o->batch, sizeof *e.b[k].slots);

	embed_all(&e);
	if (rec_writer_close(e.w, &err) < 0)
		die_err(&err);
	if (e.show)
		progress(&e.st, e.r, 1);
	if (e.broken) {
		const char *msg = wds_error(e.r, &code);
		die(code, "%s (after %llu samples, whose records were written)", msg,
		    (unsigned long long)e.st.read);
	}
	if (!o->quiet)
		summary(&e, mi.arch);
	if (e.p.tid)
		pool_stop(&e.p);
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < o->batch; i++) {
			wds_sample_free(&e.b[k].slots[i].s);
			free(e.b[k].slots[i].scratch);
			free(e.b[k].slots[i].plane);
		}
		free(e.b[k].slots);
		free(e.b[k].x);
		if (e.dev)
			gpu_host_free(e.dev, e.b[k].xg);
	}
	gpu_net_free(e.gpu);
	gpu_close(e.dev);
	wds_close(e.r);
	rec_free(&e.rec);
	free(e.emb);
	free(model_path);
	nn_free(e.m);
	return 0;
}

int main(int argc, char **argv)
{
	options o;

	nn_exec_passive(argv);
	cull_init(argv[0]);
	parse_options(&o, argc, argv);
	return run(&o);
}
