/* The GPU path against the CPU path on the same model and inputs (cosine per image), and
 * its speed on a batch already on the device. */
#include "gpu.h"
#include "io.h"
#include "layers.h"
#include "resnet.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
	fprintf(stderr, "usage: bench_gpu [--arch A] [--width W] [--in-ch C] [--model FILE] "
	        "[--classes K] [--train STEPS] [--px P] [--batch B] [--bf16] [--iters N] [--check N] [--threads T] "
	        "[--device cuda:N]\n");
	exit(EXIT_USAGE);
}

/* Normal(0, 1) inputs: what normalized images look like to the first layer. */
static void fill(float *x, size_t n, uint64_t *s)
{
	for (size_t i = 0; i + 1 < n; i += 2) {
		double u = rng_uniform(s) + 0x1.0p-54;
		double v = rng_uniform(s);
		double r = sqrt(-2 * log(u));
		x[i] = (float)(r * cos(2 * M_PI * v));
		x[i + 1] = (float)(r * sin(2 * M_PI * v));
	}
	if (n % 2)
		x[n - 1] = 0;
}

/* The largest |a - b| over the largest |a|. */
static double rel_diff(const float *a, const float *b, size_t n)
{
	double d = 0, big = 0;
	for (size_t i = 0; i < n; i++) {
		d = fmax(d, fabs((double)a[i] - b[i]));
		big = fmax(big, fabs((double)a[i]));
	}
	return big > 0 ? d / big : d;
}

/* --train: steps of SGD on the CPU and on the GPU from the same start and batches (the
 * last batch one image short, as an epoch's end), then their losses and states compared,
 * then the GPU's training speed. */
static int train(gpu_device *dev, const char *arch, int in_ch, double width, int classes,
                 int px, int batch, int steps, int iters)
{
	nn_model *c = nn_create(arch, in_ch, width, classes, 1), *g = nn_create(arch, in_ch,
	                                                                       width, classes, 1);
	nn_sgd o = { .momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = 1 };
	size_t plane = (size_t)in_ch * px * px;
	float *x = xmalloc(sizeof(float) * plane * (size_t)batch);
	int *labels = xmalloc(sizeof(int) * (size_t)batch);
	uint64_t seed = 11;
	double worst = 0;
	cull_err e;

	nn_setup(c, batch, px, px, 1);
	nn_setup(g, batch, px, px, 1);
	if (!gpu_train_create(dev, g, &e))
		die_err(&e);
	for (int s = 0; s < steps; s++) {
		int n = s == steps - 1 && batch > 2 ? batch - 1 : batch;
		fill(x, plane * (size_t)n, &seed);
		for (int i = 0; i < n; i++)
			labels[i] = (int)(rng_next(&seed) % (uint64_t)classes);
		double lc = nn_train_step(c, x, labels, n, &o, 0.05f, 0.1f, NULL);
		double lg = nn_train_step(g, x, labels, n, &o, 0.05f, 0.1f, NULL);
		worst = fmax(worst, fabs(lc - lg) / fmax(fabs(lc), 1e-12));
		printf("step %d batch %d: loss cpu %.7f gpu %.7f\n", s + 1, n, lc, lg);
	}
	nn_sync(g);
	printf("train %s %dpx: %d steps, loss rel diff max %.3g, params %.3g, momentum %.3g, "
	       "running stats %.3g\n", arch, px, steps, worst,
	       rel_diff(c->params, g->params, c->nparams),
	       rel_diff(c->momentum, g->momentum, c->nparams),
	       rel_diff(c->buffers, g->buffers, c->nbuffers));
	/* eval on the host from the synced state: the same logits */
	nn_setup(c, batch, px, px, 1);
	const float *zc = nn_forward(c, x, batch, 0);
	float *keep = xmalloc(sizeof(float) * (size_t)batch * classes);
	memcpy(keep, zc, sizeof(float) * (size_t)batch * classes);
	const float *zg = nn_forward(g, x, batch, 0);
	printf("eval after training: logits rel diff %.3g\n",
	       rel_diff(keep, zg, (size_t)batch * classes));
	if (iters) {
		double t0 = now_seconds();
		for (int i = 0; i < iters; i++)
			nn_train_step(g, x, labels, batch, &o, 0.05f, 0.1f, NULL);
		double dt = now_seconds() - t0;
		printf("speed train %s %dpx batch %d fp32: %.3f ms/step, img_per_s %.0f\n", arch, px,
		       batch, dt * 1000 / iters, batch * iters / dt);
	}
	free(keep);
	free(x);
	free(labels);
	nn_free(c);
	nn_free(g);
	return 0;
}

/* The GPU --device names, announced. */
static gpu_device *open_gpu(const char *device)
{
	nn_device d;
	cull_err e;

	if (nn_device_parse(device, &d, &e) < 0)
		die_err(&e);
	gpu_device *dev = gpu_open(d.index, &e);
	if (!dev)
		die_err(&e);
	printf("device %s\n", gpu_describe(dev));
	return dev;
}

int main(int argc, char **argv)
{
	const char *arch = "resnet50", *model = NULL, *device = "cuda";
	double width = 1;
	int in_ch = 3, classes = 0, steps = 0, px = 224, batch = 256, bf16 = 0, iters = 20, check = 32, threads = 0;
	cull_err e;

	cull_init(argv[0]);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--bf16")) { bf16 = 1; continue; }
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--arch")) arch = v;
		else if (!strcmp(a, "--width")) width = atof(v);
		else if (!strcmp(a, "--in-ch")) in_ch = atoi(v);
		else if (!strcmp(a, "--classes")) classes = atoi(v);
		else if (!strcmp(a, "--train")) steps = atoi(v);
		else if (!strcmp(a, "--model")) model = v;
		else if (!strcmp(a, "--px")) px = atoi(v);
		else if (!strcmp(a, "--batch")) batch = atoi(v);
		else if (!strcmp(a, "--iters")) iters = atoi(v);
		else if (!strcmp(a, "--check")) check = atoi(v);
		else if (!strcmp(a, "--threads")) threads = atoi(v);
		else if (!strcmp(a, "--device")) device = v;
		else usage();
	}
	if (batch < 1 || px < 1 || check < 0 || iters < 0)
		usage();
	if (check > batch)
		check = batch;
	nn_set_threads(threads);
	if (steps > 0) {
		gpu_device *dev = open_gpu(device);
		train(dev, arch, in_ch, width, classes ? classes : 10, px, batch, steps, iters);
		gpu_close(dev);
		return 0;
	}
	nn_model *m = nn_create(arch, in_ch, width, classes, 1);
	if (!m)
		die(EXIT_USAGE, "unknown arch %s", arch);
	if (model && nn_load(m, model, NN_LOAD_IGNORE_EXTRA, &e) < 0)
		die_err(&e);

	uint64_t seed = 7;
	size_t plane = (size_t)in_ch * px * px;
	int ncal = check > 8 ? check : 8;
	float *x = xmalloc(sizeof(float) * plane * (size_t)ncal);
	fill(x, plane * (size_t)ncal, &seed);
	if (!model) {
		/* running statistics from one training-mode batch, as a trained net has them */
		nn_setup(m, ncal, px, px, 1);
		m->bn_momentum = 1;
		nn_forward(m, x, ncal, 1);
		nn_params_changed(m);
	}

	gpu_device *dev = open_gpu(device);
	gpu_net *g = gpu_net_create(dev, m, batch, px, px, bf16, &e);
	if (!g)
		die_err(&e);
	printf("plan %s\n", gpu_net_plan(g));

	if (check) {
		size_t ib = gpu_net_image_bytes(g);
		unsigned char *xg = gpu_host_alloc(dev, ib * (size_t)check, &e);
		if (!xg)
			die_err(&e);
		for (int i = 0; i < check; i++)
			gpu_pack_image(g, xg + ib * (size_t)i, x + plane * (size_t)i);
		const float *gy = gpu_net_forward(g, xg, check, &e);
		if (!gy)
			die_err(&e);
		int dim = gpu_net_dim(g);
		float *gout = xmalloc(sizeof(float) * (size_t)dim * check);
		memcpy(gout, gy, sizeof(float) * (size_t)dim * check);
		nn_setup(m, check, px, px, 0);
		const float *cy = nn_forward(m, x, check, 0);
		double cmin = 1, csum = 0, rel = 0;
		for (int i = 0; i < check; i++) {
			const float *a = cy + (size_t)i * dim, *b = gout + (size_t)i * dim;
			double ab = 0, aa = 0, bb = 0, dmax = 0, amax = 0;
			for (int k = 0; k < dim; k++) {
				ab += (double)a[k] * b[k];
				aa += (double)a[k] * a[k];
				bb += (double)b[k] * b[k];
				dmax = fmax(dmax, fabs((double)a[k] - b[k]));
				amax = fmax(amax, fabs((double)a[k]));
			}
			double c = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : (aa == bb ? 1 : 0);
			cmin = fmin(cmin, c);
			csum += c;
			rel = fmax(rel, amax > 0 ? dmax / amax : dmax);
		}
		printf("parity %s %dpx %s: %d images, cosine min %.7f mean %.7f, max |diff|/max|cpu| "
		       "%.3g\n", arch, px, bf16 ? "bf16" : "fp32", check, cmin, csum / check, rel);
		free(gout);
		gpu_host_free(dev, xg);
	}
	if (iters) {
		double ms = gpu_net_bench(g, iters, &e);
		if (ms < 0)
			die_err(&e);
		printf("speed %s %dpx batch %d %s: %.3f ms/batch, img_per_s %.0f\n", arch, px, batch,
		       bf16 ? "bf16" : "fp32", ms, batch / ms * 1000);
	}
	gpu_net_free(g);
	gpu_close(dev);
	nn_free(m);
	free(x);
	return 0;
}
