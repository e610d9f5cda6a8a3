/* cull-select's saved selection (--save-thresholds) applied to one record at a time. */
#ifndef CULL_CUTS_H
#define CULL_CUTS_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

/* The policy and one cut per group (class, cluster, or all the records): the score and
 * key of the group's last kept record. cull-select(1) "Per shard" describes the file. */
typedef struct {
	char *by;              /* the score field */
	int easy, random, drop_dups;
	int balance;           /* CUTS_NONE, CUTS_CLASS or CUTS_CLUSTER: the group field */
	uint64_t seed;
	struct cut {
		int64_t group;
		int has;           /* the group keeps something */
		double score;
		char *key;
	} *cut;
	size_t n;              /* sorted by group */
} cuts;

enum { CUTS_NONE, CUTS_CLASS, CUTS_CLUSTER };

/* Read a thresholds file. 0, or -1 with a one-line message naming the file in err when it
 * is not one (a malformed record stream is fatal, as for every record reader). */
int cuts_load(cuts *c, const char *path, char *err, size_t errlen);
void cuts_free(cuts *c);

/* Whether the selection keeps r: 1 kept, 0 dropped (a duplicate under drop_dups, or after
 * its group's cut), or -1 with a message in err when r lacks the score or group field,
 * its score is NaN, or its group has no cut in the file. The decision is cull-select's
 * --thresholds: kept iff r comes no later than the cut in the order score (or, random,
 * the seeded hash of the key), then key. */
int cuts_decide(const cuts *c, const record *r, char *err, size_t errlen);

/* The cut of r's group, or NULL (as cuts_decide finds it). */
const struct cut *cuts_find(const cuts *c, int64_t group);

#endif
