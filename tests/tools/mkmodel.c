/* Test tool: write a randomly initialised ResNet (torchvision names) as safetensors. */
#include "io.h"
#include "resnet.h"

#include <stdlib.h>

int main(int argc, char **argv)
{
	nn_model *m;
	cull_err e;

	cull_init(argv[0]);
	if (argc != 7)
		die(EXIT_USAGE, "usage: mkmodel ARCH IN_CH WIDTH NUM_CLASSES SEED OUT.safetensors");
	m = nn_create(argv[1], atoi(argv[2]), atof(argv[3]), atoi(argv[4]),
	              (uint64_t)strtoull(argv[5], NULL, 10));
	if (!m)
		die(EXIT_USAGE, "unknown architecture '%s' (known: %s)", argv[1], nn_arch_names());
	if (nn_save(m, argv[6], &e) < 0)
		die_err(&e);
	nn_free(m);
	return 0;
}
