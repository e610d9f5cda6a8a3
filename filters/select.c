/* cull-select: keep a fraction of the records by a score and a policy; write them or their shards. */
#include "io.h"
#include "prune.h"
#include "record.h"
#include "rng.h"
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

typedef struct {
	const char *by, *records, *save_cuts, *cuts, *dropped;
	double keep, threshold;
	uint64_t count, seed;
	int mode;              /* 'k' keep, 'n' count, 't' threshold, 0 none */
	int drop_dups, balance, strategy, print, min_share_set, policy_set, strict;
	prune_policy pol;      /* --random, --prefer, and the strategies' parameters */
	char **shards;         /* SHARD... */
	size_t nshards;
} options;

/* Fills o from the command line; a usage error exits 2, --help and --version exit 0. */
static void parse_options(options *o, int argc, char **argv)
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

	*o = (options){ .by = "proto", .pol = { .min_share = 0.5, .temp = 0.5, .strata = 50 } };
	while ((c = getopt_long(argc, argv, "b:k:n:t:r:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b': o->by = optarg; break;
		case 'k':
			o->keep = parse_double("--keep", optarg, -INFINITY, INFINITY);
			if (!(o->keep > 0 && o->keep <= 1))
				die(EXIT_USAGE, "--keep %s: the fraction must be in (0, 1]", optarg);
			o->mode = 'k', modes++;
			break;
		case 'n': o->count = (uint64_t)parse_int("--count", optarg, 0, INT64_MAX); o->mode = 'n', modes++; break;
		case 't':
			o->threshold = parse_double("--threshold", optarg, -INFINITY, INFINITY);
			if (isnan(o->threshold))
				die(EXIT_USAGE, "--threshold: not a number");
			o->mode = 't', modes++;
			break;
		case O_PRINT: o->print = 1; break;
		case O_SAVE_CUTS: o->save_cuts = optarg; break;
		case O_CUTS: o->cuts = optarg; break;
		case O_STRICT: o->strict = 1; break;
		case O_DROPPED: o->dropped = optarg; break;
		case O_PREFER:
			if (strcmp(optarg, "hard") && strcmp(optarg, "easy"))
				die(EXIT_USAGE, "--prefer: 'hard' or 'easy', not '%s'", optarg);
			o->pol.easy = strcmp(optarg, "easy") == 0;
			break;
		case O_RANDOM: o->pol.random = 1; break;
		case O_DROP: o->drop_dups = 1; break;
		case O_BAL:
			if (strcmp(optarg, "class") == 0)
				o->balance = B_CLASS;
			else if (strcmp(optarg, "cluster") == 0)
				o->balance = B_CLUSTER;
			else
				die(EXIT_USAGE, "--balance: 'class' or 'cluster', not '%s'", optarg);
			break;
		case O_MIN: o->pol.min_share = parse_double("--min-share", optarg, 0, 1); o->min_share_set = 1; break;
		case O_STRAT:
			if (strcmp(optarg, "ccs") == 0)
				o->strategy = S_CCS;
			else if (strcmp(optarg, "dbp") == 0)
				o->strategy = S_DBP;
			else
				die(EXIT_USAGE, "--strategy: 'ccs' or 'dbp', not '%s'", optarg);
			break;
		case O_BETA: o->pol.beta = parse_double("--beta", optarg, 0, 0.999999); break;
		case O_STRATA: o->pol.strata = (int)parse_int("--strata", optarg, 1, 1 << 20); break;
		case O_TEMP: o->pol.temp = parse_double("--temperature", optarg, 1e-6, 1e6); break;
		case 'r': o->records = optarg; break;
		case O_SEED: o->seed = (uint64_t)parse_int("--seed", optarg, 0, INT64_MAX); break;
		case O_THREADS: parse_threads(optarg); break;
		case 'h': fputs(usage, stdout); xfclose(stdout, "<stdout>"); exit(0);
		case O_VERSION: print_version("cull-select", NULL);
		default: fputs(usage_short, stderr); exit(EXIT_USAGE);
		}
		if (c == 'b' || (c >= O_PREFER && c <= O_SEED))
			o->policy_set = 1;
	}
	if (o->cuts && (modes || o->policy_set || o->print || o->save_cuts))
		die(EXIT_USAGE, "--thresholds takes the policy from its file: it excludes --keep, "
		    "--count, --threshold, the policy options and --print-threshold");
	if (!o->cuts && modes != 1)
		die(EXIT_USAGE, "give exactly one of --keep, --count, --threshold and --thresholds");
	if (o->dropped && o->print)
		die(EXIT_USAGE, "--dropped excludes --print-threshold (which writes no selection)");
	if (o->save_cuts && (o->print || o->strategy == S_CCS))
		die(EXIT_USAGE, "--save-thresholds excludes --print-threshold and --strategy ccs");
	if (o->mode == 't' && (o->pol.random || o->balance || o->strategy))
		die(EXIT_USAGE, "--threshold cannot be combined with --random, --balance or --strategy");
	if (o->print && (o->mode == 't' || o->pol.random || o->balance || o->strategy))
		die(EXIT_USAGE, "--print-threshold needs --keep or --count and a plain hard/easy policy");
	if (o->balance && o->strategy)
		die(EXIT_USAGE, "--balance and --strategy cannot be combined");
	if (o->pol.random && o->strategy)
		die(EXIT_USAGE, "--random and --strategy cannot be combined (ccs samples at random itself)");
	o->shards = argv + optind;
	o->nshards = (size_t)(argc - optind);
	for (size_t i = 0; i < o->nshards; i++)
		if (strcmp(o->shards[i], "-") == 0 && (!o->records || strcmp(o->records, "-") == 0))
			die(EXIT_USAGE, "shard '-' needs the records from --records FILE");
}

/* ---- the records: what the policies see, and where each one's bytes are ---- */

typedef struct {
	char *key;             /* what it[i].key points to */
	size_t off, len;       /* the packed record in the arena */
	int64_t cls;
	int has_cls;
	int written;           /* its sample was written from the shards */
} stored;

typedef struct {
	prune_item *it;        /* [n], in input order */
	stored *st;            /* [n] */
	size_t n, cap;
	unsigned char *arena;
	size_t arena_len, arena_cap;
	uint32_t *slots;       /* FNV-1a hash set of the keys: index + 1, 0 = empty */
	size_t nslots;
	char *source;          /* the records' file name, for messages */
	uint64_t dropped_dups;
} records;

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ULL;
	return h;
}

static size_t find_key(const records *R, const char *key)
{
	size_t h = (size_t)hash_str(key) & (R->nslots - 1);

	for (; R->slots[h]; h = (h + 1) & (R->nslots - 1))
		if (strcmp(R->it[R->slots[h] - 1].key, key) == 0)
			return R->slots[h] - 1;
	return (size_t)-1;
}

static void index_keys(records *R)
{
	R->nslots = 64;
	while (R->nslots < 2 * R->n)
		R->nslots *= 2;
	R->slots = xcalloc(R->nslots, sizeof *R->slots);
	for (size_t i = 0; i < R->n; i++) {
		size_t h = (size_t)hash_str(R->it[i].key) & (R->nslots - 1);

		for (; R->slots[h]; h = (h + 1) & (R->nslots - 1))
			if (strcmp(R->it[R->slots[h] - 1].key, R->it[i].key) == 0)
				die(EXIT_DATA, "%s: duplicate key '%s' (records %zu and %zu)", R->source,
				    R->it[i].key, (size_t)R->slots[h], i + 1);
		R->slots[h] = (uint32_t)i + 1;
	}
}

static void need(int ok, const record *r, rec_reader *rd, const char *field, const char *why)
{
	if (!ok)
		die(EXIT_DATA, "%s: record %llu (key '%s') has no numeric '%s' field%s",
		    rec_source(rd), (unsigned long long)rec_count(rd), rec_key(r), field, why);
}

/* The fields the policy needs from r into p and s; dies naming the record if one is missing. */
static void take_fields(prune_item *p, stored *s, const record *r, rec_reader *rd,
                        const options *o)
{
	int64_t cluster;

	if (!o->pol.random) {
		need(rec_get_float(r, o->by, &p->score), r, rd, o->by, "");
		if (isnan(p->score))
			die(EXIT_DATA, "%s: record %llu (key '%s'): '%s' is NaN", rec_source(rd),
			    (unsigned long long)rec_count(rd), p->key, o->by);
	}
	s->has_cls = rec_get_int(r, "cls", &s->cls);
	if (o->balance == B_CLASS) {
		need(s->has_cls, r, rd, "cls", " (needed by --balance class)");
		p->grp = s->cls;
	}
	if (o->balance == B_CLUSTER || o->strategy == S_DBP) {
		need(rec_get_int(r, "cluster", &cluster), r, rd, "cluster",
		     " (needed by --balance cluster and --strategy dbp)");
		p->grp = cluster;
	}
	if (o->strategy == S_DBP) {
		need(rec_get_float(r, "proto", &p->proto), r, rd, "proto",
		     " (needed by --strategy dbp: run cull-score)");
		need(rec_get_float(r, "cluster_sep", &p->sep), r, rd, "cluster_sep",
		     " (needed by --strategy dbp: run cull-score)");
	}
	p->rnd = rng_mix(o->seed ^ hash_str(p->key));
}

static void read_records(records *R, const options *o)
{
	cull_err e;
	rec_reader *rd = rec_open(o->records, &e);
	record r;
	int64_t dup;
	int rc;

	if (!rd)
		die_err(&e);
	R->source = xstrdup(rec_source(rd));
	rec_init(&r);
	while ((rc = rec_next(rd, &r)) > 0) {
		unsigned char *packed;
		stored *s;

		if (o->drop_dups && rec_get_int(&r, "dup", &dup) && dup) {
			R->dropped_dups++;
			continue;
		}
		if (R->n == R->cap) {
			R->cap = R->cap ? 2 * R->cap : 1024;
			R->it = xreallocarray(R->it, R->cap, sizeof *R->it);
			R->st = xreallocarray(R->st, R->cap, sizeof *R->st);
		}
		s = &R->st[R->n];
		*s = (stored){ .key = xstrdup(rec_key(&r)) };
		R->it[R->n] = (prune_item){ .key = s->key };
		take_fields(&R->it[R->n], s, &r, rd, o);
		packed = rec_pack(&r, &s->len);
		if (R->arena_len + s->len > R->arena_cap) {
			R->arena_cap = 2 * (R->arena_len + s->len) + 4096;
			R->arena = xrealloc(R->arena, R->arena_cap);
		}
		memcpy(R->arena + R->arena_len, packed, s->len);
		s->off = R->arena_len;
		R->arena_len += s->len;
		free(packed);
		R->n++;
	}
	if (rc < 0)
		die_err(rec_error(rd));
	rec_close(rd);
	rec_free(&r);
}

static void records_free(records *R)
{
	for (size_t i = 0; i < R->n; i++)
		free(R->st[i].key);
	free(R->it);
	free(R->st);
	free(R->arena);
	free(R->slots);
	free(R->source);
}

/* ---- thresholds: a selection as one cut per group, so shards can apply it one by one ---- */

/* Every selection but CCS keeps, in each group (class, cluster, or all the records), a
 * prefix of the group's preference order. Saving the last kept record of each group (its
 * score and key) and the policy lets --thresholds decide every record on its own: kept iff
 * it comes no later than its group's cut. Any split of the records into shards then keeps
 * exactly the same records as the whole. */
static const char *balance_name(const options *o)
{
	return o->balance == B_CLASS ? "class" : o->balance == B_CLUSTER || o->strategy == S_DBP
	       ? "cluster" : "none";
}

static void save_cuts(const records *R, const options *o, size_t kept)
{
	size_t *gx, ng, g, i;
	prune_group *gr = prune_groups(R->it, R->n, &o->pol, &gx, &ng);
	/* atomically: a failed write leaves an older thresholds file whole */
	char *tmp = is_replaceable(o->save_cuts) ? temp_path(o->save_cuts) : NULL;
	cull_err e;
	rec_writer *w = rec_writer_open(tmp ? tmp : o->save_cuts, &e);
	record r;
	char name[64];

	if (!w)
		die_err(&e);

	rec_init(&r);
	rec_set_str(&r, "key", "thresholds");
	rec_set_str(&r, "by", o->by);
	rec_set_str(&r, "prefer", o->pol.easy ? "easy" : "hard");
	rec_set_int(&r, "random", o->pol.random);
	rec_set_str(&r, "balance", balance_name(o));
	rec_set_int(&r, "seed", (int64_t)o->seed);
	rec_set_int(&r, "drop_dups", o->drop_dups);
	rec_set_int(&r, "kept", (int64_t)kept);
	rec_set_int(&r, "records", (int64_t)R->n);
	if (rec_write(w, &r) < 0)
		die_err(rec_writer_error(w));
	for (g = 0; g < ng; g++) {
		const size_t *m = gx + gr[g].start;
		size_t k = 0;

		for (i = 0; i < gr[g].size; i++)
			k += (size_t)R->it[m[i]].keep;
		for (i = 0; i < k; i++)
			if (!R->it[m[i]].keep)
				die(EXIT_USAGE, "--save-thresholds: this selection is not a cut per group "
				    "(--strategy ccs samples inside strata)");
		rec_clear(&r);
		if (strcmp(balance_name(o), "none") == 0) {
			rec_set_str(&r, "key", "threshold");
		} else {
			snprintf(name, sizeof name, "threshold/%lld", (long long)gr[g].id);
			rec_set_str(&r, "key", name);
			rec_set_int(&r, "group", gr[g].id);
		}
		rec_set_int(&r, "kept", (int64_t)k);
		rec_set_int(&r, "size", (int64_t)gr[g].size);
		if (k) {
			if (!o->pol.random)
				rec_set_float(&r, "score", R->it[m[k - 1]].score);
			rec_set_str(&r, "last", R->it[m[k - 1]].key);
		}
		if (rec_write(w, &r) < 0)
			die_err(rec_writer_error(w));
	}
	if (rec_writer_close(w, &e) < 0)
		die_err(&e);
	if (tmp)
		commit_file(tmp, o->save_cuts);
	free(tmp);
	rec_free(&r);
	free(gx);
	free(gr);
}

typedef struct {
	int64_t grp;
	int has;               /* the group keeps something: cut is its last kept record */
	prune_item cut;
	char *key;             /* what cut.key points to */
} cut;

typedef struct {
	cut *v;                /* sorted by group */
	size_t n;
	char *by;              /* the score field the file names (o->by points to it) */
} cuts;

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

/* The policy saved in the header record r of path, into o. */
static void load_policy(options *o, cuts *c, const record *r, const char *path)
{
	const char *s;

	if (strcmp(rec_key(r), "thresholds") != 0)
		die(EXIT_DATA, "%s: not a thresholds file (written by --save-thresholds)", path);
	o->by = c->by = xstrdup(cut_str(r, "by", path));
	o->pol.easy = strcmp(cut_str(r, "prefer", path), "easy") == 0;
	o->pol.random = cut_int(r, "random", path) != 0;
	s = cut_str(r, "balance", path);
	o->balance = strcmp(s, "class") == 0 ? B_CLASS : strcmp(s, "cluster") == 0
	             ? B_CLUSTER : B_NONE;
	o->seed = (uint64_t)cut_int(r, "seed", path);
	o->drop_dups = cut_int(r, "drop_dups", path) != 0;
}

/* Reads the thresholds file o->cuts: the policy into o, the cuts into c sorted by group. */
static void load_cuts(cuts *c, options *o)
{
	const char *path = o->cuts;
	cull_err e;
	rec_reader *rd = rec_open(path, &e);
	record r;
	int head = 0, grouped = 0, rc;

	if (!rd)
		die_err(&e);
	rec_init(&r);
	while ((rc = rec_next(rd, &r)) > 0) {
		cut *p;

		if (!head) {
			load_policy(o, c, &r, path);
			grouped = o->balance != B_NONE;
			head = 1;
			continue;
		}
		c->v = xreallocarray(c->v, c->n + 1, sizeof *c->v);
		p = &c->v[c->n++];
		memset(p, 0, sizeof *p);
		p->grp = grouped ? cut_int(&r, "group", path) : 0;
		if (rec_get(&r, "last")) {
			p->has = 1;
			p->cut.key = p->key = xstrdup(cut_str(&r, "last", path));
			if (!o->pol.random && !rec_get_float(&r, "score", &p->cut.score))
				die(EXIT_DATA, "%s: record '%s' has no 'score'", path, rec_key(&r));
			p->cut.rnd = rng_mix(o->seed ^ hash_str(p->cut.key));
		}
	}
	if (rc < 0)
		die_err(rec_error(rd));
	rec_close(rd);
	rec_free(&r);
	if (!head || (!grouped && c->n != 1))
		die(EXIT_DATA, "%s: not a thresholds file (written by --save-thresholds)", path);
	qsort(c->v, c->n, sizeof *c->v, cmp_cut);
	for (size_t i = 1; i < c->n; i++)
		if (c->v[i].grp == c->v[i - 1].grp)
			die(EXIT_DATA, "%s: group %lld appears twice", path, (long long)c->v[i].grp);
}

static void cuts_free(cuts *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].key);
	free(c->v);
	free(c->by);
}

static void apply_cuts(records *R, const options *o, const cuts *c)
{
	for (size_t i = 0; i < R->n; i++) {
		prune_item *it = &R->it[i];
		cut key = { .grp = it->grp }, *p = bsearch(&key, c->v, c->n, sizeof *c->v, cmp_cut);

		if (!p)
			die(EXIT_DATA, "record '%s': its %s %lld is not in %s (were the thresholds "
			    "saved from these records?)", it->key, o->balance == B_CLASS ? "class" :
			    "cluster", (long long)it->grp, o->cuts);
		it->keep = p->has && prune_cmp(it, &p->cut, &o->pol) <= 0;
	}
}

/* ---- output and summary ---- */

typedef struct {
	uint64_t written, samples, missing, unscored;
	uint64_t skipped;      /* tar members that are not sample members */
} shard_counts;

/* Without SHARD files: the kept records on standard output, the others in --dropped (or
 * its temporary file dtmp). */
static void write_records(const records *R, const options *o, const char *dtmp)
{
	FILE *out = stdout, *d = o->dropped ? xfopen(dtmp ? dtmp : o->dropped, "wb") : NULL;
	const char *dname = o->dropped ? io_name(o->dropped, 1) : NULL;

	for (size_t i = 0; i < R->n; i++)
		if (R->it[i].keep)
			xfwrite(R->arena + R->st[i].off, R->st[i].len, out, "<stdout>");
		else if (d)
			xfwrite(R->arena + R->st[i].off, R->st[i].len, d, dname);
	xfclose(out, "<stdout>");
	if (d)
		xfclose(d, dname);
}

/* With SHARD files: the samples of the kept records as a tar on standard output, the
 * others (and samples without a record) in --dropped (or dtmp). */
static void write_shards(records *R, const options *o, const char *dtmp, shard_counts *n)
{
	wds_options wo = { .max_member = WDS_MAX_MEMBER, .check_keys = 1, .borrow = 1,
	                   .strict = o->strict };
	wds_reader *r = wds_open((const char *const *)o->shards, o->nshards, &wo);
	wds_writer *w = wds_writer_open("-");
	wds_writer *d = o->dropped ? wds_writer_open(dtmp ? dtmp : o->dropped) : NULL;
	wds_sample s = { 0 };

	while (wds_next(r, &s)) {
		size_t j = find_key(R, s.key);

		n->samples++;
		n->unscored += j == (size_t)-1;
		if (j != (size_t)-1 && R->it[j].keep) {
			wds_write_sample(w, &s);
			R->st[j].written = 1;
			n->written++;
		} else if (d) {
			wds_write_sample(d, &s);
		}
	}
	wds_writer_close(w);
	if (d)
		wds_writer_close(d);
	n->skipped = wds_members_skipped(r);
	wds_close(r);
	wds_sample_free(&s);
	for (size_t i = 0; i < R->n; i++)
		n->missing += (uint64_t)(R->it[i].keep && !R->st[i].written);
}

/* "per class kept": counts of the kept records by class (it regroups the items by cls). */
static void class_summary(records *R, const prune_policy *pol)
{
	size_t i, ng = 0, g, *gx;
	prune_group *gr;
	char buf[512];
	int len = 0;

	for (i = 0; i < R->n; i++)
		R->it[i].grp = R->st[i].has_cls ? R->st[i].cls : INT64_MIN;
	gr = prune_groups(R->it, R->n, pol, &gx, &ng);
	if (ng && !(ng == 1 && gr[0].id == INT64_MIN)) {
		size_t mink = SIZE_MAX, maxk = 0;
		int64_t minc = 0, maxc = 0;

		for (g = 0; g < ng; g++) {
			size_t k = 0;

			for (i = 0; i < gr[g].size; i++)
				k += (size_t)R->it[gx[gr[g].start + i]].keep;
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

static void summary(records *R, const options *o, size_t kept, const shard_counts *n)
{
	double klo = INFINITY, khi = -INFINITY, lo = INFINITY, hi = -INFINITY;

	for (size_t i = 0; i < R->n; i++) {
		double s = R->it[i].score;

		lo = s < lo ? s : lo;
		hi = s > hi ? s : hi;
		if (R->it[i].keep) {
			klo = s < klo ? s : klo;
			khi = s > khi ? s : khi;
		}
	}
	if (R->dropped_dups)
		note("kept %zu/%zu records (%.1f%%), after dropping %llu duplicates", kept, R->n,
		     R->n ? 100.0 * (double)kept / (double)R->n : 0.0,
		     (unsigned long long)R->dropped_dups);
	else
		note("kept %zu/%zu records (%.1f%%)", kept, R->n,
		     R->n ? 100.0 * (double)kept / (double)R->n : 0.0);
	if (!o->pol.random && kept)
		note("%s kept [%.6g, %.6g] of [%.6g, %.6g]", o->by, klo, khi, lo, hi);
	if (n->samples)
		note("wrote %llu of %llu samples from the shards", (unsigned long long)n->written,
		     (unsigned long long)n->samples);
	if (n->missing)
		warn("%llu kept records have no sample in the shards", (unsigned long long)n->missing);
	if (n->unscored)
		warn("%llu samples in the shards have no record: not kept%s",
		     (unsigned long long)n->unscored, o->dropped ? " (they are in --dropped)" : "");
	if (n->skipped)
		warn("%llu tar members of the shards are not sample members: not written "
		     "(--strict makes them an error)", (unsigned long long)n->skipped);
	class_summary(R, &o->pol);
}

/* ---- main ---- */

/* How many records --keep or --count asks for (0 with --threshold and --thresholds). */
static size_t budget(const options *o, size_t n_items)
{
	size_t n = 0;

	if (o->mode == 'k') {
		n = (size_t)floor(o->keep * (double)n_items + 0.5);
		if (n == 0 && n_items > 0)
			n = 1;
	} else if (o->mode == 'n') {
		n = (size_t)o->count;
		if (n > n_items) {
			warn("--count %zu is more than the %zu records: keeping them all", n, n_items);
			n = n_items;
		}
	}
	return n;
}

/* Sets keep on the records the selection keeps, n of them for --keep and --count. */
static void choose(records *R, const options *o, const cuts *c, size_t n)
{
	prune_policy pol = o->pol;

	if (o->cuts) {
		apply_cuts(R, o, c);
	} else if (o->mode == 't') {
		for (size_t i = 0; i < R->n; i++)
			R->it[i].keep = o->pol.easy ? R->it[i].score <= o->threshold
			                            : R->it[i].score >= o->threshold;
	} else if (o->strategy == S_CCS) {
		size_t m = prune_ccs(R->it, R->n, n, &pol);

		if (m && n > m)
			warn("--strategy ccs: the budget %zu is more than the %zu records left after --beta",
			     n, m);
	} else if (o->strategy == S_DBP) {
		if (!o->min_share_set)
			pol.min_share = 0;       /* DBP has a floor only when asked for one */
		prune_dbp(R->it, R->n, n, &pol);
	} else if (o->balance) {
		prune_balanced(R->it, R->n, n, &pol);
	} else {
		prune_plain(R->it, R->n, n, &pol);
	}
}

/* --print-threshold: the score of the n-th preferred record on standard output. */
static void print_threshold(records *R, const options *o, size_t n)
{
	size_t *ix = prune_order(R->it, R->n, &o->pol), kept = 0;
	shard_counts none = { 0 };

	if (n == 0)
		die(EXIT_DATA, "no records: no threshold");
	printf("%.17g\n", R->it[ix[n - 1]].score);
	xfclose(stdout, "<stdout>");
	prune_keep_first(R->it, ix, R->n, n);
	free(ix);
	for (size_t i = 0; i < R->n; i++)
		kept += (size_t)R->it[i].keep;
	summary(R, o, kept, &none);
}

/* Keeps n records (or what --threshold or --thresholds keeps), writes them (or their
 * samples), and says what was kept. */
static void keep_and_write(records *R, const options *o, const cuts *c, size_t n)
{
	shard_counts counts = { 0 };
	size_t kept = 0;
	/* --dropped is written beside the output, atomically: whole or not replaced */
	char *dtmp = NULL;

	choose(R, o, c, n);
	for (size_t i = 0; i < R->n; i++)
		kept += (size_t)R->it[i].keep;
	if (o->save_cuts)
		save_cuts(R, o, kept);
	if (o->dropped && is_replaceable(o->dropped))
		dtmp = temp_path(o->dropped);
	if (o->nshards == 0)
		write_records(R, o, dtmp);
	else
		write_shards(R, o, dtmp, &counts);
	if (dtmp)
		commit_file(dtmp, o->dropped);
	free(dtmp);
	summary(R, o, kept, &counts);
}

static int run(options *o)
{
	records R = { 0 };
	cuts c = { 0 };
	size_t want;

	if (o->cuts)
		load_cuts(&c, o);
	read_records(&R, o);
	/* an empty stream is what a failed upstream stage leaves: never a quiet success */
	if (R.n == 0 && o->strict)
		die(EXIT_SKIP, "%s: no records to select from (--strict; did an upstream stage "
		    "fail?)", R.source);
	if (R.n == 0)
		warn("%s: no records to select from: nothing is kept (did an upstream stage "
		     "fail? --strict makes this an error)", R.source);
	index_keys(&R);
	want = budget(o, R.n);
	if (o->print)
		print_threshold(&R, o, want);
	else
		keep_and_write(&R, o, &c, want);
	records_free(&R);
	cuts_free(&c);
	return 0;
}

int main(int argc, char **argv)
{
	options o;

	cull_init(argv[0]);
	parse_options(&o, argc, argv);
	return run(&o);
}
