/* cull-train: train or evaluate a ResNet on WebDataset shards; write training-dynamics scores. */
#include "options.h"
#include "io.h"
#include "layers.h"

#include <stdlib.h>

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
