/* Data-pruning policies: which of n scored items to keep (plain, balanced, CCS, DBP). */
#ifndef CULL_PRUNE_H
#define CULL_PRUNE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Every policy keeps items in a preference order (prune_cmp): by score, largest first
 * ("hard", the default) or smallest first ("easy"), or by a random order; ties by key.
 * Keys are unique, so the order is total and the same on every machine. A policy sets
 * keep on the items it keeps (and never clears it), n of them unless there are fewer.
 */
typedef struct {
	const char *key;       /* unique */
	double score;          /* larger = harder; not NaN */
	uint64_t rnd;          /* the random order (rng_mix of the seed and a hash of the key) */
	int64_t grp;           /* the group: class or cluster (balanced, DBP, cuts per group) */
	double proto, sep;     /* DBP: distance to the centroid; the cluster's separation */
	int keep;              /* set by the policies */
} prune_item;

typedef struct {
	int random;            /* order by rnd instead of score */
	int easy;              /* smallest scores first (default: largest) */
	double min_share;      /* balanced, DBP: each group keeps at least floor(min_share *
	                          n / groups) of its best (0: no floor) */
	double beta;           /* CCS: the hardest fraction dropped first */
	int strata;            /* CCS: score strata */
	double temp;           /* DBP: softmax temperature */
} prune_policy;

/* < 0 when a comes before b in the preference order, > 0 after (never 0 for two items). */
int prune_cmp(const prune_item *a, const prune_item *b, const prune_policy *p);
/* The indices of it[0..n) in preference order (malloc'd). */
size_t *prune_order(const prune_item *it, size_t n, const prune_policy *p);
/* Keep the first n items of ix[0..m) that are not kept yet. */
void prune_keep_first(prune_item *it, const size_t *ix, size_t m, size_t n);

/* A group of items: the run ix[start .. start + size) of prune_groups' index. */
typedef struct {
	int64_t id;
	size_t start, size, quota;
	double w;
} prune_group;

/* The groups of it[0..n) by grp, ascending, as runs of *ix (malloc'd), an index sorted by
 * group, then preference; returns the groups (malloc'd) and sets *ng to their number. */
prune_group *prune_groups(const prune_item *it, size_t n, const prune_policy *p, size_t **ix,
                          size_t *ng);

/* The first n of the preference order. */
void prune_plain(prune_item *it, size_t n_items, size_t n, const prune_policy *p);
/* At least floor(min_share n / groups) of each group (its best), the rest by the global
 * order. */
void prune_balanced(prune_item *it, size_t n_items, size_t n, const prune_policy *p);
/* CCS (Zheng et al. 2023): drop the hardest beta fraction, cut the remaining score range
 * into equal-width strata, give each stratum min(size, budget left / strata left) from the
 * smallest stratum up, and sample uniformly (by rnd) inside each. It uses grp for the
 * stratum. Returns the number of items left after beta (fewer than n: all are kept). */
size_t prune_ccs(prune_item *it, size_t n_items, size_t n, const prune_policy *p);
/* DBP (Abbas et al. 2024): cluster complexity = mean distance to the centroid (mean proto)
 * times the distance to the nearest other centroids (sep); budgets proportional to
 * softmax(complexity / temp), capped at the cluster size with the excess handed on, after
 * the min_share floor; inside a cluster (grp) the preferred items first. */
void prune_dbp(prune_item *it, size_t n_items, size_t n, const prune_policy *p);

#endif
