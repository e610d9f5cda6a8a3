/* cull-train's parts, file by file: the image cache, augmentation, schedules, statistics,
 * self-supervised training, the resume state, the epoch loop, the encoder monitors. */
#ifndef CULL_TRAIN_H
#define CULL_TRAIN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "resnet.h"
#include "ssl.h"

/* ---- data cache (data.c) ---- */

/* Decoded images kept as uint8 HWC (as image_decode gives them), all of one size. */
typedef struct {
	unsigned char *pix;      /* n * h * w * c bytes */
	int *label;
	char **key;
	size_t n, cap;
	int h, w, c;
	uint64_t skipped;        /* samples warned about and left out */
	uint64_t read;           /* samples read */
} dataset;

typedef struct {
	int channels;            /* 0: from the first image (gray stays 1) */
	int size;                /* > 0: resize every image to size x size */
	int classes;             /* > 0: labels must be below it */
	int threads;
	int quiet;
	const char *what;        /* "training" or "validation", for messages */
	int unlabeled_ok;        /* a sample without .cls gets label -1 instead of a warning */
} load_opts;

/* Read shards (npaths 0: standard input) into d; h/w/c of d, when already set, fix the size. */
void data_load(dataset *d, const char *const *paths, size_t npaths, const load_opts *o);
void data_free(dataset *d);
size_t data_bytes(const dataset *d);
/* "WHAT data: N images of WxHxC in memory, M MiB" on standard error, unless quiet. */
void data_report(const char *what, const dataset *d, int quiet);
/* The classes the labels of a and b imply: 1 + the largest (0 when neither has one). */
int data_classes(const dataset *a, const dataset *b);
/* A fingerprint of the keys, labels and pixels, for checking that a resume sees the same data. */
uint64_t data_fingerprint(const dataset *d);
static inline const unsigned char *data_image(const dataset *d, size_t i)
{
	return d->pix + i * (size_t)d->h * (size_t)d->w * (size_t)d->c;
}

/* ---- randomness and augmentation (augment.c) ---- */

/* A counter-based generator (base/rng.h's rng_mix): every random choice is a pure
 * function of its inputs. */
uint64_t hash3(uint64_t a, uint64_t b, uint64_t c);
/* The order of the n training samples in an epoch (a permutation of 0..n-1). */
void epoch_order(size_t *order, size_t n, uint64_t seed, long epoch);

typedef struct {
	int pad;                 /* random crop: pad by this much, crop back to size (0 = none) */
	int flip;                /* random horizontal flip */
	float mean[3], std[3];
} augment;

enum {
	BATCH_PLAIN,             /* the images as they are (evaluation) */
	BATCH_TRAIN,             /* random crop and flip from (seed, epoch, sample index) */
	BATCH_MIRROR             /* every image mirrored left-right (test-time augmentation) */
};
/* Build x[n, c, h, w] from the samples idx[0..n) as mode says. Uses the nn threads. */
void make_batch(float *x, int *labels, const dataset *d, const size_t *idx, int n,
                const augment *a, int mode, uint64_t seed, long epoch);

/* Two-view augmentation for self-supervised training, as torchvision composes SimCLR's:
 * RandomResizedCrop(size, scale) with aspect ratios in [3/4, 4/3], horizontal flip,
 * ColorJitter(brightness, contrast, saturation, hue) with probability jitter_prob (its
 * four parts in a random order), RandomGrayscale(gray_prob), then the augment's mean/std.
 * Gray images get brightness and contrast only. */
typedef struct {
	float scale_min, scale_max;
	float jitter[4];
	float jitter_prob, gray_prob;
	int flip;
} ssl_augment;
/* x[2n, c, h, w]: rows 0..n-1 one view of the samples idx[0..n), rows n..2n-1 another,
 * every draw a function of (seed, epoch, sample, view). Uses the nn threads. */
void make_views(float *x, const dataset *d, const size_t *idx, int n, const augment *a,
                const ssl_augment *s, uint64_t seed, long epoch);

/* ---- learning-rate schedules (schedule.c) ---- */

enum { SCHED_CONST, SCHED_STEP, SCHED_MULTISTEP, SCHED_COSINE, SCHED_ONECYCLE };
typedef struct {
	int kind;
	double lr, min_lr, gamma;
	double warmup;           /* epochs of linear warmup (fractional allowed) */
	double step_size;        /* SCHED_STEP: epochs between decays */
	double milestones[16];   /* SCHED_MULTISTEP: epochs */
	int nmilestones;
	double pct_start, div_factor, final_div;   /* SCHED_ONECYCLE, as torch's OneCycleLR */
	long steps_per_epoch, total_steps;
} schedule;

/* Parse "cosine", "step", "multistep:30,60", "onecycle", "const"; dies on a bad name. */
void schedule_parse(schedule *s, const char *spec);
double schedule_lr(const schedule *s, long step);
const char *schedule_name(const schedule *s, char *buf, size_t len);

/* ---- training-dynamics statistics and score records (scores.c) ---- */

typedef struct {
	size_t n;
	/* over training presentations */
	int32_t *last_correct;   /* -1 never presented, 0 wrong, 1 right at the last one */
	int32_t *forgets;        /* correct -> incorrect transitions */
	int32_t *ever_correct;
	int32_t *presented;
	double *margin_sum;      /* logit margin summed over presentations (AUM) */
	/* at the score epoch, summed over the score runs */
	double *el2n, *grand;
	int32_t score_runs_done;
	/* at the end of training */
	float *loss, *margin;
	int32_t *pred;
} sample_stats;

void stats_init(sample_stats *s, size_t n);
void stats_free(sample_stats *s);
/* Record one training presentation of samples idx[0..n) with their logits [n, k]. */
void stats_presented(sample_stats *s, const size_t *idx, const int *labels, const float *logits,
                     int n, int k);
/* The index of the largest of v[0..k) (the first of equals): a prediction. */
int argmax(const float *v, int k);
/* The logit margin: logit of the label minus the largest other logit. */
float logit_margin(const float *logits, int k, int label);

/* Eval-mode pass over d (no augmentation); for every sample calls back with its logits,
 * probabilities, pooled features and loss. With tta, every image is also run mirrored
 * left-right and the callback gets the mean of the two views' logits and features (and
 * the softmax and loss of those mean logits). */
typedef void (*eval_fn)(void *ctx, size_t i, const float *logits, const float *probs,
                        const float *feat, int label, float loss);
typedef struct {
	double acc, loss;        /* single view: accuracy and mean cross-entropy */
	double tta_acc, tta_loss; /* mean logits of image and mirror image (with tta; else 0) */
} eval_result;
eval_result eval_pass(nn_model *m, const dataset *d, const augment *a, int batch, float *x,
                      int *labels, int tta, eval_fn fn, void *ctx);
/* " (mirror TTA: accuracy A, loss L)" of r into buf, for the summaries; returns buf. */
const char *tta_text(char *buf, size_t len, const eval_result *r);
/* Add EL2N and GraNd of model m on every training sample to s (one score run). */
void stats_score_epoch(sample_stats *s, nn_model *m, const dataset *d, const augment *a,
                       int batch, float *x, int *labels);
/* Final loss, margin and prediction of every training sample. */
void stats_final(sample_stats *s, nn_model *m, const dataset *d, const augment *a, int batch,
                 float *x, int *labels);
/* Write one record per training sample to path. */
void stats_write(const sample_stats *s, const dataset *d, long epochs, const char *path);

/* ---- self-supervised training (pretrain.c) ---- */

enum { SSL_NONE, SSL_SIMCLR, SSL_SWAV };
typedef struct {
	int method;              /* SSL_* */
	float temperature;
	int proj_hidden, proj_dim, prototypes;
	float sinkhorn_eps;
	int sinkhorn_iters;
	int queue_len;           /* SwAV: embeddings of past batches kept per view (0: none) */
	double queue_start;      /* SwAV: epoch from which the queue fills */
	double freeze_protos;    /* SwAV: epochs with the prototypes held fixed */
	ssl_augment aug;
} ssl_opts;

/* The self-supervised part of the training state (saved with a resume state). */
typedef struct {
	const ssl_opts *opts;    /* as given to ssl_state_init */
	nn_head *head;
	float *queue;            /* SwAV: [2, queue_len, proj_dim], newest first */
	int64_t queue_fill;      /* rows of each view's queue filled so far */
	size_t queue_floats;
	/* work buffers for 2 * batch rows */
	float *zn, *norms, *dzn, *dz, *prob, *scores, *dscores, *codes;
} ssl_state;

/* "simclr" or "swav" to SSL_*; 0 for an unknown name. */
int ssl_method(const char *name);
const char *ssl_method_name(int method);
/* What a step's correct counts, as the log names it: "pair_acc" (SimCLR), "swap_acc" (SwAV). */
const char *ssl_acc_name(int method);
void ssl_state_init(ssl_state *ss, const ssl_opts *so, int feat_dim, int batch, uint64_t seed);
void ssl_state_free(ssl_state *ss);

/* ---- model files and the resume state (state.c) ---- */

/* Everything a resume needs, besides the model state itself. */
typedef struct {
	long epoch;              /* epochs completed */
	long step;               /* steps done inside the current epoch (0 at an epoch end) */
	long global_step;
	double loss_sum, elapsed;
	int64_t correct, seen;
	uint64_t data_fp;
	char *config;            /* options that must not change across a resume */
	char *log;               /* the JSON Lines written so far */
	size_t log_len;
	int64_t threads;
} train_state;

/* Write a model file atomically (temp file, fsync, rename): w from nn_save_writer, with
 * whatever the caller added (metadata, a projection head). Frees w. */
void save_model_atomic(st_writer *w, const char *path);
/* Die with EXIT_IO unless path is absent or a regular file: the atomic writes rename a
 * temporary file over it, which would replace a device such as /dev/full (as root). */
void check_replaceable(const char *opt, const char *path);
/* Write model + optimizer + statistics + state (+ the self-supervised state when ss is
 * not NULL) to path atomically. */
void save_state(const char *path, const nn_model *m, const sample_stats *s,
                const train_state *t, const ssl_state *ss);
/* Load a state written by save_state into m, s, t and ss (s sized for the data, ss set up
 * like the saved one or NULL), after checking that it was written with `config` (see
 * check_config). Returns 0, 1 when the file does not exist; dies on a bad file. */
int load_state(const char *path, nn_model *m, sample_stats *s, train_state *t, ssl_state *ss,
               const char *config);
/* Die (usage) naming the first option that differs between two "k=v;k=v" config strings. */
void check_config(const char *path, const char *saved, const char *now);

/* ---- the epoch loop (loop.c) ---- */

typedef struct {
	nn_model *m;
	const dataset *train;
	const augment *aug;
	nn_sgd sgd;
	schedule sched;
	float smoothing;
	int batch;
	long steps_per_epoch;
	uint64_t seed;           /* of the data order and the augmentation */
	float *x;                /* [batch, c, h, w] */
	int *labels;
	float *losses;
	size_t *order;           /* this epoch's order of the training samples */
	int progress;            /* progress bar on standard error */
	long epochs;
} trainer;

/* Steps per epoch: the last partial batch is dropped only when it would hold one sample
 * (batch norm needs two). */
long steps_per_epoch(size_t n, int batch);
/* The progress line of an epoch on standard error (acc_name: what t->correct counts). */
void epoch_progress(const trainer *tr, const train_state *t, double t0, long step0,
                    const char *acc_name);
/* What one step adds to the epoch's counters. */
typedef struct {
	double loss;             /* summed over the rows */
	int64_t correct, rows;
} step_result;

/* A training method: step runs one SGD step on the training samples idx[0..n) at
 * learning rate lr (t: the state before the step), with ctx its own state. */
typedef struct {
	step_result (*step)(void *ctx, trainer *tr, const train_state *t, const size_t *idx,
	                    int n, float lr);
	void *ctx;
	const char *progress_name;   /* what the step's correct counts, in the progress line */
} train_method;

/* Run steps t->step .. end of epoch t->epoch of the method, updating t's counters.
 * Returns 1 when the epoch finished, 0 when *stop was set first. */
int train_epoch(trainer *tr, train_state *t, const train_method *method,
                const volatile sig_atomic_t *stop);
/* Cross-entropy on the labels; correct counts the top-1 hits; ctx: a sample_stats that
 * records every presentation, or NULL. */
step_result supervised_step(void *ctx, trainer *tr, const train_state *t, const size_t *idx,
                            int n, float lr);
/* A self-supervised step (pretrain.c; labels unused; ctx: an ssl_state): correct counts
 * rows whose other view is their best match (SimCLR) or whose predicted prototype is the
 * one their other view was assigned to (SwAV). tr->x holds 2 * batch images. */
step_result ssl_step(void *ctx, trainer *tr, const train_state *t, const size_t *idx, int n,
                     float lr);

/* ---- encoder monitors (monitor.c) ---- */

/* The encoder monitors: --knn-eval, --knn-k, --knn-t, --linear-probe. */
typedef struct {
	int knn, probe;
	int nk, k[8];            /* neighbour counts; the first gives val_acc */
	float t;                 /* vote temperature */
} monitor_opts;

/* Eval-mode pooled features of every sample of d, L2-normalised as cull-embed writes
 * them: out[d->n, feat_dim]. x holds `batch` images. */
void embed_dataset(float *out, nn_model *m, const dataset *d, const augment *a, int batch,
                   float *x, int *labels);
/* Weighted k-NN top-1 accuracy (cosine, exp(sim / t) votes) of the val features against
 * the train features, for each of the nk values ks; acc[nk]. Labels from the datasets. */
void knn_accuracy(double *acc, const float *train_f, const dataset *train, const float *val_f,
                  const dataset *val, int dim, int classes, const int *ks, int nk, float t);
/* A linear classifier trained on frozen, standardised train features (softmax regression,
 * SGD, deterministic); returns its top-1 accuracy on the val features. */
double linear_probe(const float *train_f, const dataset *train, const float *val_f,
                    const dataset *val, int dim, int classes, uint64_t seed);

/* The k-NN monitor and the linear probe need a label on every training and validation
 * image (training itself reads none): die naming the first without one. */
void check_monitor_labels(const monitor_opts *mo, const dataset *d, const dataset *v);
typedef struct {
	double knn[8];           /* top-1 at each --knn-k */
	double probe;            /* the linear probe's accuracy */
} monitor_result;
/* Embed tr's training images and v as cull-embed would (tr->m, tr->aug, tr's batch
 * buffers), then k-NN and the probe as mo asks. */
void monitor_run(monitor_result *r, const monitor_opts *mo, const trainer *tr,
                 const dataset *v, int classes);
/* " knn20 0.9 linear 0.8" for the summaries, "\"val_acc\":..,\"knn_acc_20\":..," for the
 * log: "val_acc" is the k-NN top-1 at the first --knn-k (else the probe's accuracy). */
void monitor_text(char *buf, size_t len, const monitor_opts *mo, const monitor_result *r);
void monitor_json(char *buf, size_t len, const monitor_opts *mo, const monitor_result *r);

#endif
