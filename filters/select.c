/* cull-select: keep a fraction of the records by a score and a policy; write them or their shards. */
#include "io.h"
#include "kmeans.h"
#include "record.h"
#include "wds.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage_short[] = "usage: cull-select [--by FIELD] (--keep F | --count N | "
	"--threshold T) [--prefer hard|easy] [--random] [--balance class|cluster] "
	"[--strategy ccs|dbp] [--save-thresholds F] [--dropped F] [SHARD...]\n"
	"       cull-select --thresholds F [SHARD...]; see --help\n";
static const char usage[] =
	"usage: cull-select [options] [SHARD...]\n"
	"Reads score records (standard input or --records), keeps some; with SHARD files writes\n"
	"the kept samples as a tar stream, else the kept records.\n"
	"  -b, --by FIELD            the score field (default proto); larger = harder\n"
	"  -k, --keep F              keep the fraction F of the records, 0 < F <= 1\n"
	"  -n, --count N             keep N records\n"
	"  -t, --threshold T         keep score >= T (hard) or <= T (easy)\n"
	"      --print-threshold     print the score cut for --keep/--count and exit\n"
	"      --save-thresholds F   also write F: the last kept record of every group (class,\n"
	"                            cluster, or all) and the policy, which --thresholds applies\n"
	"                            to any part of the records with the same result\n"
	"      --thresholds F        keep the records the selection saved in F would keep\n"
	"                            (one shard at a time); the policy comes from F\n"
	"      --prefer hard|easy    keep the largest (default) or the smallest scores\n"
	"      --random              keep a uniform random subset (with --seed)\n"
	"      --drop-dups           drop records whose dup field is 1 first\n"
	"      --balance class|cluster  keep at least --min-share of an equal share per group\n"
	"      --min-share R         (default 0.5; 0 for dbp)\n"
	"      --strategy ccs|dbp    coverage-centric (CCS) or density-based (DBP) selection\n"
	"      --beta B              CCS: drop the hardest fraction B first (default 0)\n"
	"      --strata S            CCS: score strata (default 50)\n"
	"      --temperature T       DBP: softmax temperature (default 0.5)\n"
	"  -r, --records FILE        read the records from FILE (default standard input)\n"
	"      --dropped FILE        also write what is not kept to FILE, in the output's form:\n"
	"                            the dropped samples as a tar (with SHARD files, samples\n"
	"                            without a record included), else the dropped records\n"
	"      --strict              exit 4 when there are no records (an upstream failure) or\n"
	"                            a shard has a member that is not carried (a directory,\n"
	"                            a link, a device)\n"
	"      --seed S              random seed (default 0)\n"
	"      --threads T           accepted for uniformity (selection is single-threaded)\n"
	"  -h, --help                this help\n"
	"      --version             print the version\n";

enum { S_PLAIN, S_CCS, S_DBP };
enum { B_NONE, B_CLASS, B_CLUSTER };

static struct {
	const char *by, *records, *save_cuts, *cuts, *dropped;
	double keep, threshold, min_share, beta, temp;
	uint64_t count, seed;
	int mode;              /* 'k' keep, 'n' count, 't' threshold, 0 none */
	int easy, random, drop_dups, balance, strategy, strata, print, min_share_set, policy_set;
	int strict;
} o = { .by = "proto", .min_share = 0.5, .temp = 0.5, .strata = 50 };

typedef struct {
	char *key;
	double score, proto, sep;
	int64_t cls, cluster, grp;
	int has_cls;
	uint64_t rnd;          /* hash of (seed, key): the random order */
	size_t off, len;       /* packed record in the arena */
	int keep, written;
} item;

static item *it;
static size_t n_items, cap_items;
static unsigned char *arena;
static size_t arena_len, arena_cap;

/* ---- keys: FNV-1a hash set of item indices ---- */

static uint32_t *slots;        /* index + 1, 0 = empty */
static size_t nslots;

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ULL;
	return h;
}

static size_t find_key(const char *key)
{
	size_t h = (size_t)hash_str(key) & (nslots - 1);

	for (; slots[h]; h = (h + 1) & (nslots - 1))
		if (strcmp(it[slots[h] - 1].key, key) == 0)
			return slots[h] - 1;
	return (size_t)-1;
}

static char *source;           /* the records' file name, for messages */

static void index_keys(void)
{
	nslots = 64;
	while (nslots < 2 * n_items)
		nslots *= 2;
	slots = xcalloc(nslots, sizeof *slots);
	for (size_t i = 0; i < n_items; i++) {
		size_t h = (size_t)hash_str(it[i].key) & (nslots - 1);

		for (; slots[h]; h = (h + 1) & (nslots - 1))
			if (strcmp(it[slots[h] - 1].key, it[i].key) == 0)
				die(EXIT_DATA, "%s: duplicate key '%s' (records %zu and %zu)", source,
				    it[i].key, (size_t)slots[h], i + 1);
		slots[h] = (uint32_t)i + 1;
	}
}

/* ---- reading ---- */

static uint64_t dropped_dups;

static void need(int ok, const record *r, rec_reader *rd, const char *field, const char *why)
{
	if (!ok)
		die(EXIT_DATA, "%s: record %llu (key '%s') has no numeric '%s' field%s",
		    rec_source(rd), (unsigned long long)rec_count(rd), rec_key(r), field, why);
}

static void read_records(void)
{
	rec_reader *rd = rec_open(o.records);
	record r;
	int64_t dup;

	source = xstrdup(rec_source(rd));
	rec_init(&r);
	while (rec_next(rd, &r)) {
		item *p;
		unsigned char *packed;
		uint64_t st;

		if (o.drop_dups && rec_get_int(&r, "dup", &dup) && dup) {
			dropped_dups++;
			continue;
		}
		if (n_items == cap_items) {
			cap_items = cap_items ? 2 * cap_items : 1024;
			it = xreallocarray(it, cap_items, sizeof *it);
		}
		p = &it[n_items];
		memset(p, 0, sizeof *p);
		p->key = xstrdup(rec_key(&r));
		if (!o.random) {
			need(rec_get_float(&r, o.by, &p->score), &r, rd, o.by, "");
			if (isnan(p->score))
				die(EXIT_DATA, "%s: record %llu (key '%s'): '%s' is NaN", rec_source(rd),
				    (unsigned long long)rec_count(rd), p->key, o.by);
		}
		p->has_cls = rec_get_int(&r, "cls", &p->cls);
		if (o.balance == B_CLASS) {
			need(p->has_cls, &r, rd, "cls", " (needed by --balance class)");
			p->grp = p->cls;
		}
		if (o.balance == B_CLUSTER || o.strategy == S_DBP) {
			need(rec_get_int(&r, "cluster", &p->cluster), &r, rd, "cluster",
			     " (needed by --balance cluster and --strategy dbp)");
			p->grp = p->cluster;
		}
		if (o.strategy == S_DBP) {
			need(rec_get_float(&r, "proto", &p->proto), &r, rd, "proto",
			     " (needed by --strategy dbp: run cull-score)");
			need(rec_get_float(&r, "cluster_sep", &p->sep), &r, rd, "cluster_sep",
			     " (needed by --strategy dbp: run cull-score)");
		}
		st = o.seed ^ hash_str(p->key);
		p->rnd = kmeans_rand(&st);
		packed = rec_pack(&r, &p->len);
		if (arena_len + p->len > arena_cap) {
			arena_cap = 2 * (arena_len + p->len) + 4096;
			arena = xrealloc(arena, arena_cap);
		}
		memcpy(arena + arena_len, packed, p->len);
		p->off = arena_len;
		arena_len += p->len;
		free(packed);
		n_items++;
	}
	rec_close(rd);
	rec_free(&r);
}

/* ---- orders ---- */

static int cmp_key(const item *a, const item *b)
{
	return strcmp(a->key, b->key);
}

/* Preference order: the record to keep first comes first; ties broken by key. */
static int pref(const item *a, const item *b)
{
	if (o.random) {
		if (a->rnd != b->rnd)
			return a->rnd < b->rnd ? -1 : 1;
	} else if (a->score != b->score) {
		return (a->score > b->score) == !o.easy ? -1 : 1;
	}
	return cmp_key(a, b);
}

static int cmp_pref(const void *pa, const void *pb)
{
	return pref(&it[*(const size_t *)pa], &it[*(const size_t *)pb]);
}

static int cmp_score_asc(const void *pa, const void *pb)
{
	const item *a = &it[*(const size_t *)pa], *b = &it[*(const size_t *)pb];

	if (a->score != b->score)
		return a->score < b->score ? -1 : 1;
	return cmp_key(a, b);
}

static int cmp_rnd(const void *pa, const void *pb)
{
	const item *a = &it[*(const size_t *)pa], *b = &it[*(const size_t *)pb];

	if (a->rnd != b->rnd)
		return a->rnd < b->rnd ? -1 : 1;
	return cmp_key(a, b);
}

static int cmp_grp(const void *pa, const void *pb)
{
	const item *a = &it[*(const size_t *)pa], *b = &it[*(const size_t *)pb];

	if (a->grp != b->grp)
		return a->grp < b->grp ? -1 : 1;
	return cmp_pref(pa, pb);
}

static size_t *order(int (*cmp)(const void *, const void *))
{
	size_t *ix = xmalloc((n_items ? n_items : 1) * sizeof *ix);

	for (size_t i = 0; i < n_items; i++)
		ix[i] = i;
	qsort(ix, n_items, sizeof *ix, cmp);
	return ix;
}

/* ---- groups (class or cluster), as runs of an index sorted by group then preference ---- */

typedef struct {
	int64_t id;
	size_t start, size, quota;
	double w;
} group;

static group *groups(size_t **ixp, size_t *ng)
{
	size_t *ix = order(cmp_grp), g = 0, i;
	group *gr = xmalloc((n_items ? n_items : 1) * sizeof *gr);

	for (i = 0; i < n_items; i++) {
		if (i == 0 || it[ix[i]].grp != gr[g - 1].id)
			gr[g++] = (group){ .id = it[ix[i]].grp, .start = i };
		gr[g - 1].size++;
	}
	*ixp = ix;
	*ng = g;
	return gr;
}

/* ---- strategies: each sets item.keep on n records ---- */

static void keep_first(const size_t *ix, size_t m, size_t n)
{
	for (size_t i = 0; i < m && n > 0; i++)
		if (!it[ix[i]].keep) {
			it[ix[i]].keep = 1;
			n--;
		}
}

static void plain(size_t n)
{
	size_t *ix = order(cmp_pref);

	keep_first(ix, n_items, n);
	free(ix);
}

/* At least floor(R n / G) of each group (its best), the rest by the global order. */
static void balanced(size_t n)
{
	size_t *gx, ng, g, taken = 0, *ix;
	group *gr = groups(&gx, &ng);
	size_t min = ng ? (size_t)floor(o.min_share * (double)n / (double)ng) : 0;

	for (g = 0; g < ng; g++) {
		size_t q = gr[g].size < min ? gr[g].size : min;

		keep_first(gx + gr[g].start, q, q);
		taken += q;
	}
	ix = order(cmp_pref);
	keep_first(ix, n_items, n - taken);
	free(ix);
	free(gx);
	free(gr);
}

/* CCS (Zheng et al. 2023): drop the hardest beta fraction, cut the remaining score range
 * into equal-width strata, give each stratum min(size, budget left / strata left) from the
 * smallest stratum up, and sample uniformly inside each. */
static int cmp_size(const void *a, const void *b)
{
	const group *p = a, *q = b;

	if (p->size != q->size)
		return p->size < q->size ? -1 : 1;
	return p->id < q->id ? -1 : p->id > q->id;
}

static void ccs(size_t n)
{
	size_t *ix = order(cmp_score_asc), drop = (size_t)floor(o.beta * (double)n_items);
	size_t m = n_items - drop, S = (size_t)o.strata, s, i, left = n;
	group *st = xcalloc(S, sizeof *st);
	size_t **members = xcalloc(S, sizeof *members), *fill = xcalloc(S, sizeof *fill);
	double lo, width;

	if (m == 0)
		goto done;
	if (n > m)
		warn("--strategy ccs: the budget %zu is more than the %zu records left after --beta",
		     n, m);
	lo = it[ix[0]].score;
	width = (it[ix[m - 1]].score - lo) / (double)S;
	for (s = 0; s < S; s++)
		st[s].id = (int64_t)s;
	for (i = 0; i < m; i++) {
		s = width > 0 ? (size_t)((it[ix[i]].score - lo) / width) : 0;
		it[ix[i]].grp = (int64_t)(s >= S ? S - 1 : s);
		st[it[ix[i]].grp].size++;
	}
	for (s = 0; s < S; s++)
		members[s] = xmalloc((st[s].size ? st[s].size : 1) * sizeof **members);
	for (i = 0; i < m; i++)
		members[it[ix[i]].grp][fill[it[ix[i]].grp]++] = ix[i];
	qsort(st, S, sizeof *st, cmp_size);
	for (s = 0; s < S; s++) {
		size_t avg = left / (S - s), q = st[s].size < avg ? st[s].size : avg;
		size_t *mem = members[st[s].id];

		qsort(mem, st[s].size, sizeof *mem, cmp_rnd);
		keep_first(mem, st[s].size, q);
		left -= q;
	}
done:
	for (s = 0; s < S; s++)
		free(members[s]);
	free(members);
	free(fill);
	free(st);
	free(ix);
}

/* DBP (Abbas et al. 2024): cluster complexity = mean distance to the centroid (mean proto)
 * times the distance to the nearest other centroids (cluster_sep); budgets proportional to
 * softmax(complexity / T), capped at the cluster size with the excess handed on; inside a
 * cluster the preferred records first. */
static void dbp(size_t n)
{
	size_t *gx, ng, g, left, given;
	group *gr = groups(&gx, &ng);
	size_t min = ng && o.min_share_set ? (size_t)floor(o.min_share * (double)n / (double)ng) : 0;
	double mx = -INFINITY, total;
	int *active = xcalloc(ng ? ng : 1, sizeof *active), sat;

	left = n;
	for (g = 0; g < ng; g++) {
		double dist = 0;

		for (size_t i = 0; i < gr[g].size; i++)
			dist += it[gx[gr[g].start + i]].proto;
		gr[g].w = dist / (double)gr[g].size * it[gx[gr[g].start]].sep / o.temp;
		if (gr[g].w > mx)
			mx = gr[g].w;
		gr[g].quota = gr[g].size < min ? gr[g].size : min;
		left -= gr[g].quota;
		active[g] = gr[g].quota < gr[g].size;
	}
	for (g = 0; g < ng; g++)
		gr[g].w = exp(gr[g].w - mx);
	do {    /* clusters whose share exceeds their room take all of it */
		sat = 0;
		total = 0;
		for (g = 0; g < ng; g++)
			if (active[g])
				total += gr[g].w;
		for (g = 0; g < ng && total > 0; g++) {
			size_t room = gr[g].size - gr[g].quota;

			if (active[g] && (double)left * gr[g].w / total >= (double)room) {
				gr[g].quota += room;
				left -= room;
				active[g] = 0;
				sat = 1;
			}
		}
	} while (sat);
	/* the rest in proportion: floors, then the largest remainders (ties: lower cluster) */
	given = 0;
	for (g = 0; g < ng; g++)
		if (active[g] && total > 0) {
			double share = (double)left * gr[g].w / total;

			gr[g].quota += (size_t)floor(share);
			given += (size_t)floor(share);
			gr[g].w = share - floor(share);
		}
	while (given < left) {
		size_t best = ng;

		for (g = 0; g < ng; g++)
			if (active[g] && gr[g].quota < gr[g].size && (best == ng || gr[g].w > gr[best].w))
				best = g;
		if (best == ng)
			break;
		gr[best].quota++;
		gr[best].w = -1;
		given++;
	}
	for (g = 0; g < ng; g++)
		keep_first(gx + gr[g].start, gr[g].size, gr[g].quota);
	free(active);
	free(gx);
	free(gr);
}

/* ---- thresholds: a selection as one cut per group, so shards can apply it one by one ---- */

/* Every selection but CCS keeps, in each group (class, cluster, or all the records), a
 * prefix of the group's preference order. Saving the last kept record of each group (its
 * score and key) and the policy lets --thresholds decide every record on its own: kept iff
 * it comes no later than its group's cut. Any split of the records into shards then keeps
 * exactly the same records as the whole. */
static const char *balance_name(void)
{
	return o.balance == B_CLASS ? "class" : o.balance == B_CLUSTER || o.strategy == S_DBP
	       ? "cluster" : "none";
}

static void save_cuts(size_t kept)
{
	size_t *gx, ng, g, i;
	group *gr = groups(&gx, &ng);
	/* atomically: a failed write leaves an older thresholds file whole */
	char *tmp = is_replaceable(o.save_cuts) ? temp_path(o.save_cuts) : NULL;
	rec_writer *w = rec_writer_open(tmp ? tmp : o.save_cuts);
	record r;
	char name[64];

	rec_init(&r);
	rec_set_str(&r, "key", "thresholds");
	rec_set_str(&r, "by", o.by);
	rec_set_str(&r, "prefer", o.easy ? "easy" : "hard");
	rec_set_int(&r, "random", o.random);
	rec_set_str(&r, "balance", balance_name());
	rec_set_int(&r, "seed", (int64_t)o.seed);
	rec_set_int(&r, "drop_dups", o.drop_dups);
	rec_set_int(&r, "kept", (int64_t)kept);
	rec_set_int(&r, "records", (int64_t)n_items);
	rec_write(w, &r);
	for (g = 0; g < ng; g++) {
		const size_t *m = gx + gr[g].start;
		size_t k = 0;

		for (i = 0; i < gr[g].size; i++)
			k += (size_t)it[m[i]].keep;
		for (i = 0; i < k; i++)
			if (!it[m[i]].keep)
				die(EXIT_USAGE, "--save-thresholds: this selection is not a cut per group "
				    "(--strategy ccs samples inside strata)");
		rec_clear(&r);
		if (strcmp(balance_name(), "none") == 0) {
			rec_set_str(&r, "key", "threshold");
		} else {
			snprintf(name, sizeof name, "threshold/%lld", (long long)gr[g].id);
			rec_set_str(&r, "key", name);
			rec_set_int(&r, "group", gr[g].id);
		}
		rec_set_int(&r, "kept", (int64_t)k);
		rec_set_int(&r, "size", (int64_t)gr[g].size);
		if (k) {
			if (!o.random)
				rec_set_float(&r, "score", it[m[k - 1]].score);
			rec_set_str(&r, "last", it[m[k - 1]].key);
		}
		rec_write(w, &r);
	}
	rec_writer_close(w);
	if (tmp)
		commit_file(tmp, o.save_cuts);
	free(tmp);
	rec_free(&r);
	free(gx);
	free(gr);
}

typedef struct {
	int64_t grp;
	int has;               /* the group keeps something: cut is its last kept record */
	item cut;
} cut;

static cut *cuts;
static size_t n_cuts;

static const char *cut_str(const record *r, const char *field, const char *path)
{
	rec_field *f = rec_get(r, field);

	if (!f || f->type != RV_STR)
		die(EXIT_DATA, "%s: record '%s' has no string '%s' (not written by "
		    "--save-thresholds?)", path, rec_key(r), field);
	return (const char *)f->p;
}

static int64_t cut_int(const record *r, const char *field, const char *path)
{
	int64_t v;

	if (!rec_get_int(r, field, &v))
		die(EXIT_DATA, "%s: record '%s' has no integer '%s' (not written by "
		    "--save-thresholds?)", path, rec_key(r), field);
	return v;
}

static int cmp_cut(const void *a, const void *b)
{
	const cut *p = a, *q = b;

	return p->grp < q->grp ? -1 : p->grp > q->grp;
}

/* Reads F: the policy into o, the cuts into cuts[] sorted by group. */
static void load_cuts(const char *path)
{
	rec_reader *rd = rec_open(path);
	record r;
	const char *s;
	int head = 0, grouped = 0;

	rec_init(&r);
	while (rec_next(rd, &r)) {
		cut *c;

		if (!head) {
			if (strcmp(rec_key(&r), "thresholds") != 0)
				die(EXIT_DATA, "%s: not a thresholds file (written by --save-thresholds)",
				    path);
			o.by = xstrdup(cut_str(&r, "by", path));
			o.easy = strcmp(cut_str(&r, "prefer", path), "easy") == 0;
			o.random = cut_int(&r, "random", path) != 0;
			s = cut_str(&r, "balance", path);
			o.balance = strcmp(s, "class") == 0 ? B_CLASS : strcmp(s, "cluster") == 0
			            ? B_CLUSTER : B_NONE;
			grouped = o.balance != B_NONE;
			o.seed = (uint64_t)cut_int(&r, "seed", path);
			o.drop_dups = cut_int(&r, "drop_dups", path) != 0;
			head = 1;
			continue;
		}
		cuts = xreallocarray(cuts, n_cuts + 1, sizeof *cuts);
		c = &cuts[n_cuts++];
		memset(c, 0, sizeof *c);
		c->grp = grouped ? cut_int(&r, "group", path) : 0;
		if (rec_get(&r, "last")) {
			uint64_t st;

			c->has = 1;
			c->cut.key = xstrdup(cut_str(&r, "last", path));
			if (!o.random && !rec_get_float(&r, "score", &c->cut.score))
				die(EXIT_DATA, "%s: record '%s' has no 'score'", path, rec_key(&r));
			st = o.seed ^ hash_str(c->cut.key);
			c->cut.rnd = kmeans_rand(&st);
		}
	}
	rec_close(rd);
	rec_free(&r);
	if (!head || (!grouped && n_cuts != 1))
		die(EXIT_DATA, "%s: not a thresholds file (written by --save-thresholds)", path);
	qsort(cuts, n_cuts, sizeof *cuts, cmp_cut);
	for (size_t i = 1; i < n_cuts; i++)
		if (cuts[i].grp == cuts[i - 1].grp)
			die(EXIT_DATA, "%s: group %lld appears twice", path, (long long)cuts[i].grp);
}

static void apply_cuts(const char *path)
{
	for (size_t i = 0; i < n_items; i++) {
		cut key = { .grp = it[i].grp }, *c = bsearch(&key, cuts, n_cuts, sizeof *cuts, cmp_cut);

		if (!c)
			die(EXIT_DATA, "record '%s': its %s %lld is not in %s (were the thresholds "
			    "saved from these records?)", it[i].key, o.balance == B_CLASS ? "class" :
			    "cluster", (long long)it[i].grp, path);
		it[i].keep = c->has && pref(&it[i], &c->cut) <= 0;
	}
}

/* ---- output and summary ---- */

static void summary(size_t kept, uint64_t written, uint64_t samples, uint64_t missing,
                    uint64_t unscored, uint64_t skipped)
{
	double klo = INFINITY, khi = -INFINITY, lo = INFINITY, hi = -INFINITY;
	size_t i, ng = 0, g;
	size_t *gx;
	group *gr;
	char buf[512];
	int len = 0;

	for (i = 0; i < n_items; i++) {
		double s = it[i].score;

		lo = s < lo ? s : lo;
		hi = s > hi ? s : hi;
		if (it[i].keep) {
			klo = s < klo ? s : klo;
			khi = s > khi ? s : khi;
		}
	}
	if (dropped_dups)
		note("kept %zu/%zu records (%.1f%%), after dropping %llu duplicates", kept, n_items,
		     n_items ? 100.0 * (double)kept / (double)n_items : 0.0,
		     (unsigned long long)dropped_dups);
	else
		note("kept %zu/%zu records (%.1f%%)", kept, n_items,
		     n_items ? 100.0 * (double)kept / (double)n_items : 0.0);
	if (!o.random && kept)
		note("%s kept [%.6g, %.6g] of [%.6g, %.6g]", o.by, klo, khi, lo, hi);
	if (samples)
		note("wrote %llu of %llu samples from the shards", (unsigned long long)written,
		     (unsigned long long)samples);
	if (missing)
		warn("%llu kept records have no sample in the shards", (unsigned long long)missing);
	if (unscored)
		warn("%llu samples in the shards have no record: not kept%s",
		     (unsigned long long)unscored, o.dropped ? " (they are in --dropped)" : "");
	if (skipped)
		warn("%llu tar members of the shards are not sample members: not written "
		     "(--strict makes them an error)", (unsigned long long)skipped);
	/* per class counts */
	for (i = 0; i < n_items; i++)
		it[i].grp = it[i].has_cls ? it[i].cls : INT64_MIN;
	gr = groups(&gx, &ng);
	if (ng && !(ng == 1 && gr[0].id == INT64_MIN)) {
		size_t mink = SIZE_MAX, maxk = 0;
		int64_t minc = 0, maxc = 0;

		for (g = 0; g < ng; g++) {
			size_t k = 0;

			for (i = 0; i < gr[g].size; i++)
				k += (size_t)it[gx[gr[g].start + i]].keep;
			if (ng <= 10 && len < (int)sizeof buf - 64)
				len += snprintf(buf + len, sizeof buf - (size_t)len, " %lld:%zu/%zu",
				                (long long)gr[g].id, k, gr[g].size);
			if (k < mink)
				mink = k, minc = gr[g].id;
			if (k > maxk)
				maxk = k, maxc = gr[g].id;
		}
		if (ng <= 10)
			note("per class kept:%s", buf);
		else
			note("per class kept: %zu classes, fewest %zu (class %lld), most %zu (class %lld)",
			     ng, mink, (long long)minc, maxk, (long long)maxc);
	}
	free(gx);
	free(gr);
}

int main(int argc, char **argv)
{
	enum { O_PRINT = 256, O_PREFER, O_RANDOM, O_DROP, O_BAL, O_MIN, O_STRAT, O_BETA, O_STRATA,
	       O_TEMP, O_SEED, O_THREADS, O_VERSION, O_SAVE_CUTS, O_CUTS, O_STRICT, O_DROPPED };
	static const struct option longopts[] = {
		{ "by", required_argument, NULL, 'b' },
		{ "keep", required_argument, NULL, 'k' },
		{ "count", required_argument, NULL, 'n' },
		{ "threshold", required_argument, NULL, 't' },
		{ "print-threshold", no_argument, NULL, O_PRINT },
		{ "save-thresholds", required_argument, NULL, O_SAVE_CUTS },
		{ "thresholds", required_argument, NULL, O_CUTS },
		{ "strict", no_argument, NULL, O_STRICT },
		{ "dropped", required_argument, NULL, O_DROPPED },
		{ "prefer", required_argument, NULL, O_PREFER },
		{ "random", no_argument, NULL, O_RANDOM },
		{ "drop-dups", no_argument, NULL, O_DROP },
		{ "balance", required_argument, NULL, O_BAL },
		{ "min-share", required_argument, NULL, O_MIN },
		{ "strategy", required_argument, NULL, O_STRAT },
		{ "beta", required_argument, NULL, O_BETA },
		{ "strata", required_argument, NULL, O_STRATA },
		{ "temperature", required_argument, NULL, O_TEMP },
		{ "records", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, O_SEED },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c, modes = 0;
	size_t n = 0, kept = 0, i;
	uint64_t written = 0, samples = 0, missing = 0, unscored = 0, skipped = 0;
	/* --dropped is written beside the output, atomically: whole or not replaced */
	char *dtmp = NULL;

	cull_init(argv[0]);
	while ((c = getopt_long(argc, argv, "b:k:n:t:r:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b': o.by = optarg; break;
		case 'k':
			o.keep = parse_double("--keep", optarg, -INFINITY, INFINITY);
			if (!(o.keep > 0 && o.keep <= 1))
				die(EXIT_USAGE, "--keep %s: the fraction must be in (0, 1]", optarg);
			o.mode = 'k', modes++;
			break;
		case 'n': o.count = (uint64_t)parse_int("--count", optarg, 0, INT64_MAX); o.mode = 'n', modes++; break;
		case 't':
			o.threshold = parse_double("--threshold", optarg, -INFINITY, INFINITY);
			if (isnan(o.threshold))
				die(EXIT_USAGE, "--threshold: not a number");
			o.mode = 't', modes++;
			break;
		case O_PRINT: o.print = 1; break;
		case O_SAVE_CUTS: o.save_cuts = optarg; break;
		case O_CUTS: o.cuts = optarg; break;
		case O_STRICT: o.strict = 1; break;
		case O_DROPPED: o.dropped = optarg; break;
		case O_PREFER:
			if (strcmp(optarg, "hard") && strcmp(optarg, "easy"))
				die(EXIT_USAGE, "--prefer: 'hard' or 'easy', not '%s'", optarg);
			o.easy = strcmp(optarg, "easy") == 0;
			break;
		case O_RANDOM: o.random = 1; break;
		case O_DROP: o.drop_dups = 1; break;
		case O_BAL:
			if (strcmp(optarg, "class") == 0)
				o.balance = B_CLASS;
			else if (strcmp(optarg, "cluster") == 0)
				o.balance = B_CLUSTER;
			else
				die(EXIT_USAGE, "--balance: 'class' or 'cluster', not '%s'", optarg);
			break;
		case O_MIN: o.min_share = parse_double("--min-share", optarg, 0, 1); o.min_share_set = 1; break;
		case O_STRAT:
			if (strcmp(optarg, "ccs") == 0)
				o.strategy = S_CCS;
			else if (strcmp(optarg, "dbp") == 0)
				o.strategy = S_DBP;
			else
				die(EXIT_USAGE, "--strategy: 'ccs' or 'dbp', not '%s'", optarg);
			break;
		case O_BETA: o.beta = parse_double("--beta", optarg, 0, 0.999999); break;
		case O_STRATA: o.strata = (int)parse_int("--strata", optarg, 1, 1 << 20); break;
		case O_TEMP: o.temp = parse_double("--temperature", optarg, 1e-6, 1e6); break;
		case 'r': o.records = optarg; break;
		case O_SEED: o.seed = (uint64_t)parse_int("--seed", optarg, 0, INT64_MAX); break;
		case O_THREADS: parse_int("--threads", optarg, 1, 256); break;
		case 'h': fputs(usage, stdout); xfclose(stdout, "<stdout>"); return 0;
		case O_VERSION: printf("cull-select %s\n", CULL_VERSION); xfclose(stdout, "<stdout>"); return 0;
		default: fputs(usage_short, stderr); return EXIT_USAGE;
		}
		if (c == 'b' || (c >= O_PREFER && c <= O_SEED))
			o.policy_set = 1;
	}
	if (o.cuts && (modes || o.policy_set || o.print || o.save_cuts))
		die(EXIT_USAGE, "--thresholds takes the policy from its file: it excludes --keep, "
		    "--count, --threshold, the policy options and --print-threshold");
	if (!o.cuts && modes != 1)
		die(EXIT_USAGE, "give exactly one of --keep, --count, --threshold and --thresholds");
	if (o.dropped && o.print)
		die(EXIT_USAGE, "--dropped excludes --print-threshold (which writes no selection)");
	if (o.save_cuts && (o.print || o.strategy == S_CCS))
		die(EXIT_USAGE, "--save-thresholds excludes --print-threshold and --strategy ccs");
	if (o.mode == 't' && (o.random || o.balance || o.strategy))
		die(EXIT_USAGE, "--threshold cannot be combined with --random, --balance or --strategy");
	if (o.print && (o.mode == 't' || o.random || o.balance || o.strategy))
		die(EXIT_USAGE, "--print-threshold needs --keep or --count and a plain hard/easy policy");
	if (o.balance && o.strategy)
		die(EXIT_USAGE, "--balance and --strategy cannot be combined");
	if (o.random && o.strategy)
		die(EXIT_USAGE, "--random and --strategy cannot be combined (ccs samples at random itself)");
	for (i = (size_t)optind; i < (size_t)argc; i++)
		if (strcmp(argv[i], "-") == 0 && (!o.records || strcmp(o.records, "-") == 0))
			die(EXIT_USAGE, "shard '-' needs the records from --records FILE");

	if (o.cuts)
		load_cuts(o.cuts);
	read_records();
	/* an empty stream is what a failed upstream stage leaves: never a quiet success */
	if (n_items == 0 && o.strict)
		die(EXIT_SKIP, "%s: no records to select from (--strict; did an upstream stage "
		    "fail?)", source);
	if (n_items == 0)
		warn("%s: no records to select from: nothing is kept (did an upstream stage "
		     "fail? --strict makes this an error)", source);
	index_keys();
	if (o.mode == 'k') {
		n = (size_t)floor(o.keep * (double)n_items + 0.5);
		if (n == 0 && n_items > 0)
			n = 1;
	} else if (o.mode == 'n') {
		n = (size_t)o.count;
		if (n > n_items) {
			warn("--count %zu is more than the %zu records: keeping them all", n, n_items);
			n = n_items;
		}
	}
	if (o.cuts) {
		apply_cuts(o.cuts);
	} else if (o.mode == 't') {
		for (i = 0; i < n_items; i++)
			it[i].keep = o.easy ? it[i].score <= o.threshold : it[i].score >= o.threshold;
	} else if (o.print) {
		size_t *ix = order(cmp_pref);

		if (n == 0)
			die(EXIT_DATA, "no records: no threshold");
		printf("%.17g\n", it[ix[n - 1]].score);
		xfclose(stdout, "<stdout>");
		keep_first(ix, n_items, n);
		free(ix);
		for (i = 0; i < n_items; i++)
			kept += (size_t)it[i].keep;
		summary(kept, 0, 0, 0, 0, 0);
		return 0;
	} else if (o.strategy == S_CCS) {
		ccs(n);
	} else if (o.strategy == S_DBP) {
		dbp(n);
	} else if (o.balance) {
		balanced(n);
	} else {
		plain(n);
	}
	for (i = 0; i < n_items; i++)
		kept += (size_t)it[i].keep;
	if (o.save_cuts)
		save_cuts(kept);

	if (o.dropped && is_replaceable(o.dropped))
		dtmp = temp_path(o.dropped);
	if (optind == argc) {
		FILE *out = stdout, *d = o.dropped ? xfopen(dtmp ? dtmp : o.dropped, "wb") : NULL;
		const char *dname = o.dropped ? io_name(o.dropped, 1) : NULL;

		for (i = 0; i < n_items; i++)
			if (it[i].keep)
				xfwrite(arena + it[i].off, it[i].len, out, "<stdout>");
			else if (d)
				xfwrite(arena + it[i].off, it[i].len, d, dname);
		xfclose(out, "<stdout>");
		if (d)
			xfclose(d, dname);
	} else {
		wds_options wo = { .max_member = WDS_MAX_MEMBER, .check_keys = 1, .borrow = 1,
		                   .strict = o.strict };
		wds_reader *r = wds_open((const char *const *)argv + optind, (size_t)(argc - optind), &wo);
		wds_writer *w = wds_writer_open("-");
		wds_writer *d = o.dropped ? wds_writer_open(dtmp ? dtmp : o.dropped) : NULL;
		wds_sample s = { 0 };

		while (wds_next(r, &s)) {
			size_t j = find_key(s.key);

			samples++;
			unscored += j == (size_t)-1;
			if (j != (size_t)-1 && it[j].keep) {
				wds_write_sample(w, &s);
				it[j].written = 1;
				written++;
			} else if (d) {
				wds_write_sample(d, &s);
			}
		}
		wds_writer_close(w);
		if (d)
			wds_writer_close(d);
		skipped = wds_members_skipped(r);
		wds_close(r);
		wds_sample_free(&s);
		for (i = 0; i < n_items; i++)
			missing += (uint64_t)(it[i].keep && !it[i].written);
	}
	if (dtmp)
		commit_file(dtmp, o.dropped);
	free(dtmp);
	summary(kept, written, samples, missing, unscored, skipped);
	return 0;
}
