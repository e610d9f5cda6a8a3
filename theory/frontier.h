/* The best-f pruning frontier of a cull-theory table, with exponential and power-law fits. */
#ifndef CULL_FRONTIER_H
#define CULL_FRONTIER_H

/* Read a cull-theory TSV, write the frontier (theta alpha_prune err stderr f policy err_full,
 * the last being the largest-f curve at the same alpha_prune) on `points` log-spaced
 * alpha_prune values per theta to outpath, and, when fitspath is set,
 * least-squares fits of log err against alpha_prune and against log alpha_prune over
 * [fit_lo, fit_hi] (the whole frontier when fit_hi is 0) and its lower and upper halves. */
int frontier_main(const char *tsv, int points, double fit_lo, double fit_hi, const char *fitspath,
                  const char *outpath);

#endif
