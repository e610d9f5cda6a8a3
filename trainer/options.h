/* cull-train's command line: the options of its three modes, and the modes that run them. */
#ifndef CULL_TRAIN_OPTIONS_H
#define CULL_TRAIN_OPTIONS_H

#include "gpu.h"
#include "train.h"

typedef struct {
	const char *arch, *out, *log, *scores, *model, *predictions;
	const char **val;
	size_t nval;
	const char *const *shards;   /* the SHARD... operands (none: standard input) */
	size_t nshards;
	double width, lr, momentum, wd, smoothing;
	int classes, channels, size, eval_every, pad, flip, epochs, batch, nesterov, no_decay_bn;
	int resume, eval_only, threads, quiet, score_epoch, score_runs, tta, bf16;
	int have_mean, have_std, have_sepoch, have_sruns;
	float mean[3], std[3];
	uint64_t seed;
	schedule sched;
	ssl_opts ssl;
	const char *device;      /* --device as given (else $CULL_DEVICE) */
	nn_device dev;
	const char *ssl_only;    /* the first self-supervised option given */
	const char *swav_only;   /* the first SwAV option given */
	monitor_opts mon;
} options;

/* Parse and check the command line into o; --help and --version print and exit 0, a bad
 * option dies with EXIT_USAGE. o->val is allocated (free it). */
void parse_options(options *o, int argc, char **argv);
/* The mean and std not given (nor read from a model): ImageNet's, for gray images their
 * luma average. */
void options_default_norm(options *o, int channels);
/* The options that decide the result, as "k=v;k=v" for the resume state: a resume must
 * use the same ones. */
char *options_config(const options *o, const dataset *d, int classes);

/* The modes: train (train.c; --ssl too) and --eval-only (eval.c). Return the exit status. */
int train(options *o);
int eval_only(options *o);

#endif
