/* Exact nearest neighbours by cosine similarity: blocked sgemm over a bank held in memory. */
#ifndef CULL_KNN_H
#define CULL_KNN_H

#include <stddef.h>
#include <stdint.h>

/* One neighbour: its cosine similarity and its row in the bank (-1: none). */
typedef struct {
	float sim;
	int64_t idx;
} knn_hit;

/* For each of the nq rows of query[nq, d], its k most similar rows of bank[nb, d] (both
 * L2-normalised, so the dot product is the cosine) into hits[q * k ...], most similar first;
 * equal similarities in bank order. With nb < k the rest are { -inf, -1 }. skip, if not
 * NULL, gives per query a bank row it must not match (itself, when the bank is searched
 * against itself), or -1. Exact: every pair is scored, the bank in blocks of rows against
 * blocks of queries (one sgemm each), each query's best k kept in a heap; memory beyond
 * the inputs is a block of similarities and nq * k hits. Threads: nn_set_threads. */
void knn_search(knn_hit *hits, const float *query, size_t nq, const float *bank, size_t nb,
                int d, int k, const int64_t *skip);

/* Rows of x[n, d] divided by their L2 norm in place; returns how many rows were all zero
 * (left as they are). */
size_t knn_normalize(float *x, size_t n, int d);

#endif
