/* train-step: the pure nn training step (random data, no loading) in images/s, for bench/train. */
#include "io.h"
#include "layers.h"
#include "resnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	const char *arch = "resnet20";
	double width = 1;
	int batch = 128, size = 32, ch = 3, classes = 10, steps = 20, threads = 0;
	nn_sgd o = { .momentum = 0.9f, .weight_decay = 5e-4f };

	nn_exec_passive(argv);
	cull_init(argv[0]);
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--arch")) arch = argv[i + 1];
		else if (!strcmp(argv[i], "--width")) width = parse_double("--width", argv[i + 1], 1e-3, 64);
		else if (!strcmp(argv[i], "--batch")) batch = (int)parse_int("--batch", argv[i + 1], 1, 1 << 16);
		else if (!strcmp(argv[i], "--size")) size = (int)parse_int("--size", argv[i + 1], 1, 4096);
		else if (!strcmp(argv[i], "--channels")) ch = (int)parse_int("--channels", argv[i + 1], 1, 3);
		else if (!strcmp(argv[i], "--steps")) steps = (int)parse_int("--steps", argv[i + 1], 1, 1 << 20);
		else if (!strcmp(argv[i], "--threads")) threads = parse_threads(argv[i + 1]);
		else die(EXIT_USAGE, "usage: train-step [--arch A] [--width W] [--batch B] [--size S] "
		         "[--channels C] [--steps N] [--threads T]");
	}
	nn_set_threads(threads);
	nn_model *m = nn_create(arch, ch, width, classes, 1);
	if (!m)
		die(EXIT_USAGE, "unknown arch %s", arch);
	nn_setup(m, batch, size, size, 1);
	size_t nx = (size_t)batch * (size_t)ch * (size_t)size * (size_t)size;
	float *x = xmalloc(nx * sizeof *x);
	int *y = xmalloc((size_t)batch * sizeof *y);
	uint64_t s = 1;
	for (size_t i = 0; i < nx; i++) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		x[i] = (float)((s >> 40) & 0xffff) / 32768.0f - 1.0f;
	}
	for (int i = 0; i < batch; i++)
		y[i] = i % classes;
	nn_train_step(m, x, y, batch, &o, 0.01f, 0, NULL);   /* warm up */
	double t0 = now_seconds();
	for (int i = 0; i < steps; i++)
		nn_train_step(m, x, y, batch, &o, 0.01f, 0, NULL);
	double dt = now_seconds() - t0;
	printf("%s width %g batch %d %dx%dx%d threads %d: %.1f img/s\n", arch, width, batch, size,
	       size, ch, nn_threads(), (double)steps * batch / dt);
	free(x);
	free(y);
	nn_free(m);
	return 0;
}
