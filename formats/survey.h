/* One pass over score records, keeping what a report shows: counts, histograms, best N, samples. */
#ifndef CULL_SURVEY_H
#define CULL_SURVEY_H

#include <stddef.h>
#include <stdint.h>

#include "cuts.h"
#include "histogram.h"
#include "keys.h"
#include "record.h"

#define SURVEY_NONE INT64_MIN      /* an integer field that is absent */
#define SURVEY_HISTS 16            /* histograms of float fields, in order of appearance */
#define SURVEY_DUP_SHOWN 7         /* members kept per duplicate group */

enum { ST_KEPT, ST_DROPPED, ST_UNKNOWN };            /* a record's state, and hist series */
enum { R_DUP, R_REF, R_LABEL, R_SELECT, N_REASONS };  /* why a record was dropped */

typedef struct {
	const char *by;            /* the score of hardest and easiest */
	size_t top, per_cluster, sample, groups;
	uint64_t seed;             /* orders the samples: splitmix64(seed ^ FNV-1a(key)) */
	const cuts *cuts;          /* kept or dropped as these thresholds decide, or */
	const keyset *kept;        /* kept iff the key is in this set; neither: undecided */
} survey_opts;

typedef struct {               /* a record as a report shows it */
	char *key, *note;          /* note: near_ref_key */
	double by, proto, sim, agree;          /* NAN when absent */
	int64_t cls, alt, cluster;             /* SURVEY_NONE when absent; alt: suggested_cls */
	int state;
} survey_entry;

typedef struct {               /* the best entries by a value; after survey_finish, e[0..n) */
	topn t;
	survey_entry *e;
	size_t n;
} survey_view;

typedef struct {
	int64_t id;
	uint64_t n, st[3], nproto;
	double sum_proto, sep;     /* sep: its records' cluster_sep, NAN when absent */
	survey_view near, far, sample;          /* by proto, and by the seeded hash */
} survey_cluster;

typedef struct {
	int64_t id;
	uint64_t n, st[3];
} survey_class;

typedef struct {               /* records marked dup of the same original */
	char *orig;
	uint64_t h, n;
	survey_entry m[SURVEY_DUP_SHOWN];       /* the first ones, in stream order */
} survey_dups;

/* Memory: the views' entries, one survey_cluster per cluster (three views of per_cluster
 * entries) and one survey_class per class; nothing per record. */
typedef struct {
	survey_opts o;
	uint64_t records, scored, st[3], ndup, nref, nlabel, reasons[N_REASONS];
	survey_view hard, easy, near_ref, labels, samples[2], by_reason[N_REASONS];
	survey_cluster *cl;        /* sorted by id after survey_finish */
	size_t ncl;
	survey_class *cs;
	size_t ncs;
	survey_dups *dups;         /* the groups of the o.groups smallest seeded hashes */
	size_t ndups;
	hist *hists[SURVEY_HISTS];
	int nhists;
	keyset cluster_ids, class_ids;
} survey;

void survey_init(survey *s, const survey_opts *o);
/* Count r (fields as in cull-records(5)). 0, or -1 with a message in err when the
 * thresholds cannot decide it (cuts_decide). */
int survey_add(survey *s, const record *r, char *err, size_t errlen);
/* Sort the views best first, the clusters and classes by id. */
void survey_finish(survey *s);

#endif
