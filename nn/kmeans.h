/* Spherical k-means (cosine geometry): k-means++ init, Lloyd with sgemm, centroid files. */
#ifndef CULL_KMEANS_H
#define CULL_KMEANS_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"

/*
 * Vectors are rows of a row-major float matrix x[n, d], normalised to unit length
 * (kmeans_normalize). Centroids c[k, d] are unit vectors too. A point belongs to the
 * centroid with the largest dot product (ties: the lowest index). The objective is the
 * mean cosine distance of the points to their centroids, mean(1 - max_j x.c_j), which
 * Lloyd's iterations never increase.
 *
 * Threads: the work is split over the layer threads (threads.h: nn_set_threads,
 * nn_parallel) in fixed blocks of rows, each block calling cblas_sgemm single-threaded,
 * and partial sums are added in block order, so the results depend on the seed only, not
 * on the thread count.
 */
typedef struct {
	int k;
	int iters;             /* maximum number of centroid updates */
	double tol;            /* stop when the objective improves by less than tol (relative) */
	uint64_t seed;
	size_t init_sample;    /* k-means++ runs on this many points (0: max(4096, 8k)) */
	int verbose;           /* objective per iteration on stderr */
} kmeans_opts;

typedef struct {
	int iters;             /* centroid updates done */
	int reseeded;          /* empty clusters re-seeded, all iterations */
	double objective;      /* final objective (after the last update) */
	double *history;       /* objective before each update and the final one: iters + 1 values (malloc'd) */
} kmeans_result;

/* Scale every row of x[n, d] to unit length; returns the number of zero rows (left zero). */
size_t kmeans_normalize(float *x, size_t n, int d);

/* Fit: c[k, d] out, x[n, d] unit rows in. assign[n] and sim[n] (may be NULL) get the
 * final assignment and the similarity to it. res may be NULL. Returns 0, or -1 with
 * EXIT_USAGE in e when k is not in 1..n. */
int kmeans_fit(float *c, int32_t *assign, float *sim, kmeans_result *res, const float *x,
               size_t n, int d, const kmeans_opts *o, cull_err *e);

/* Assignment: assign[n] = argmax_j x_i.c_j, sim[n] = that dot product; returns the sum of
 * (1 - sim). The same blocks and arithmetic as the fitting loop. More than 2^31 blocks of
 * rows (over 5 * 10^11 rows) is fatal, as running out of memory is. */
double kmeans_assign(int32_t *assign, float *sim, const float *x, size_t n, int d,
                     const float *c, int k);

/* Mean cosine distance from each centroid to its `m` nearest other centroids: sep[k]. */
void kmeans_separation(float *sep, const float *c, int k, int d, int m);

/*
 * Centroid files are safetensors: an 8-byte little-endian header length, a JSON header
 * naming the tensors, then the raw little-endian data. Tensors: "centroids" F32 [k, d];
 * optionally "class_means" F32 [m, d] (unit rows) and "classes" I64 [m] (their labels).
 * Metadata: "format": "cull-kmeans".
 */
typedef struct {
	int k, d;
	float *c;              /* [k, d] */
	size_t nclasses;
	int64_t *classes;      /* [nclasses] */
	float *class_means;    /* [nclasses, d] */
} kmeans_file;

/* Written atomically where path is a regular file: 0, or -1 with the I/O error in e. */
int kmeans_save(const char *path, const kmeans_file *f, cull_err *e);
/* 0, or -1 with f empty and EXIT_DATA in e naming the file when it is not a valid
 * centroid file (or cannot be read). */
int kmeans_load(kmeans_file *f, const char *path, cull_err *e);
void kmeans_file_free(kmeans_file *f);

#endif
