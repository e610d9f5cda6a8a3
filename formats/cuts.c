/* cull-select's saved selection (--save-thresholds) applied to one record at a time. */
#include "cuts.h"
#include "io.h"
#include "rng.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static const char *str(const record *r, const char *field)
{
	rec_field *f = rec_get(r, field);

	return f && f->type == RV_STR ? (const char *)f->p : NULL;
}

static int cmp_cut(const void *a, const void *b)
{
	const struct cut *p = a, *q = b;

	return p->group < q->group ? -1 : p->group > q->group;
}

/* The head record: the policy. */
static int load_head(cuts *c, const record *r, const char *path, char *err, size_t errlen)
{
	const char *by = str(r, "by"), *prefer = str(r, "prefer"), *bal = str(r, "balance");
	int64_t rnd, seed, dd;

	if (strcmp(rec_key(r), "thresholds") != 0 || !by || !prefer || !bal ||
	    !rec_get_int(r, "random", &rnd) || !rec_get_int(r, "seed", &seed) ||
	    !rec_get_int(r, "drop_dups", &dd))
		return fail(err, errlen, "%s: not a thresholds file (written by cull-select "
		            "--save-thresholds)", path);
	c->by = xstrdup(by);
	c->easy = strcmp(prefer, "easy") == 0;
	c->random = rnd != 0;
	c->drop_dups = dd != 0;
	c->seed = (uint64_t)seed;
	c->balance = strcmp(bal, "class") == 0 ? CUTS_CLASS : strcmp(bal, "cluster") == 0 ?
	             CUTS_CLUSTER : CUTS_NONE;
	return 0;
}

int cuts_load(cuts *c, const char *path, char *err, size_t errlen)
{
	cull_err e;
	rec_reader *rd = rec_open(path, &e);
	record r;
	int rc = 0, head = 0, got;

	memset(c, 0, sizeof *c);
	if (!rd) {
		snprintf(err, errlen, "%.*s", (int)errlen - 1, e.msg);
		return -1;
	}
	rec_init(&r);
	while (rc == 0 && (got = rec_next(rd, &r)) != 0) {
		if (got < 0) {
			snprintf(err, errlen, "%.*s", (int)errlen - 1, rec_error(rd)->msg);
			rc = -1;
			break;
		}
		struct cut *k;
		const char *last = str(&r, "last");

		if (!head) {
			rc = load_head(c, &r, path, err, errlen);
			head = 1;
			continue;
		}
		c->cut = xreallocarray(c->cut, c->n + 1, sizeof *c->cut);
		k = &c->cut[c->n++];
		memset(k, 0, sizeof *k);
		if (c->balance != CUTS_NONE && !rec_get_int(&r, "group", &k->group))
			rc = fail(err, errlen, "%s: record '%s' has no integer 'group'", path, rec_key(&r));
		if (last) {
			k->has = 1;
			k->key = xstrdup(last);
			if (!c->random && !rec_get_float(&r, "score", &k->score))
				rc = fail(err, errlen, "%s: record '%s' has no 'score'", path, rec_key(&r));
		}
	}
	rec_close(rd);
	rec_free(&r);
	if (rc == 0 && (!head || (c->balance == CUTS_NONE && c->n != 1)))
		rc = fail(err, errlen, "%s: not a thresholds file (written by cull-select "
		          "--save-thresholds)", path);
	if (rc == 0 && c->n)
		qsort(c->cut, c->n, sizeof *c->cut, cmp_cut);
	for (size_t i = 1; rc == 0 && i < c->n; i++)
		if (c->cut[i].group == c->cut[i - 1].group)
			rc = fail(err, errlen, "%s: group %lld appears twice", path,
			          (long long)c->cut[i].group);
	if (rc)
		cuts_free(c);
	return rc;
}

void cuts_free(cuts *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->cut[i].key);
	free(c->cut);
	free(c->by);
	memset(c, 0, sizeof *c);
}

const struct cut *cuts_find(const cuts *c, int64_t group)
{
	struct cut k = { .group = c->balance == CUTS_NONE ? 0 : group };

	return c->n ? bsearch(&k, c->cut, c->n, sizeof *c->cut, cmp_cut) : NULL;
}

/* The random order of cull-select --random: splitmix64 of (seed ^ FNV-1a(key)). */
static uint64_t rnd(uint64_t seed, const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*key)
		h = (h ^ (unsigned char)*key++) * 0x100000001b3ULL;
	return rng_mix(seed ^ h);
}

int cuts_decide(const cuts *c, const record *r, char *err, size_t errlen)
{
	const char *key = rec_key(r);
	const char *gname = c->balance == CUTS_CLASS ? "cls" : "cluster";
	const struct cut *k;
	int64_t g = 0, dup;
	double s = 0;

	if (c->drop_dups && rec_get_int(r, "dup", &dup) && dup)
		return 0;
	if (c->balance != CUTS_NONE && !rec_get_int(r, gname, &g))
		return fail(err, errlen, "no integer '%s' field (the thresholds are per %s)", gname,
		            c->balance == CUTS_CLASS ? "class" : "cluster");
	if (!c->random && !rec_get_float(r, c->by, &s))
		return fail(err, errlen, "no numeric '%s' field (the thresholds' score)", c->by);
	if (isnan(s))
		return fail(err, errlen, "'%s' is NaN", c->by);
	k = cuts_find(c, g);
	if (!k)
		return fail(err, errlen, "its %s %lld has no cut in the thresholds file (were they "
		            "saved from these records?)", gname, (long long)g);
	if (!k->has)
		return 0;
	if (c->random) {
		uint64_t a = rnd(c->seed, key), b = rnd(c->seed, k->key);

		if (a != b)
			return a < b;
	} else if (s != k->score) {
		return (s > k->score) == !c->easy;
	}
	return strcmp(key, k->key) <= 0;
}
