/* One pass over score records, keeping what a report shows: counts, histograms, best N, samples. */
#include "survey.h"
#include "html.h"
#include "io.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The record being added, its fields looked up once. */
typedef struct {
	const char *key, *ref_key, *dup_of;
	double by, proto, sim, agree, sep;
	int64_t cls, alt, cluster;
	int dup, ref, label, state, reason;
	double h;                  /* the seeded hash, as the value samples are ordered by */
} cur;

static const char *str_field(const record *r, const char *name)
{
	rec_field *f = rec_get(r, name);

	return f && f->type == RV_STR ? (const char *)f->p : NULL;
}

static double num_field(const record *r, const char *name)
{
	double v;

	return rec_get_float(r, name, &v) ? v : NAN;
}

static int64_t int_field(const record *r, const char *name)
{
	int64_t v;

	return rec_get_int(r, name, &v) ? v : SURVEY_NONE;
}

static int parse(const survey *s, cur *c, const record *r, char *err, size_t errlen)
{
	int k = 1;

	c->key = rec_key(r);
	c->dup_of = str_field(r, "dup_of");
	c->ref_key = str_field(r, "near_ref_key");
	c->by = num_field(r, s->o.by);
	c->proto = num_field(r, "proto");
	c->sim = num_field(r, "near_ref_sim");
	c->agree = num_field(r, "label_agreement");
	c->sep = num_field(r, "cluster_sep");
	c->cls = int_field(r, "cls");
	c->alt = int_field(r, "suggested_cls");
	c->cluster = int_field(r, "cluster");
	c->dup = int_field(r, "dup") > 0;
	c->ref = int_field(r, "near_ref") > 0;
	c->label = int_field(r, "label_issue") > 0;
	if (s->o.cuts && (k = cuts_decide(s->o.cuts, r, err, errlen)) < 0)
		return -1;
	c->state = s->o.cuts ? (k ? ST_KEPT : ST_DROPPED) : !s->o.kept ? ST_UNKNOWN :
	           keyset_find(s->o.kept, c->key) != KEYSET_NONE ? ST_KEPT : ST_DROPPED;
	/* the thresholds say why; with a kept set, the first flag the record carries */
	if (s->o.cuts)
		c->reason = s->o.cuts->drop_dups && c->dup ? R_DUP : R_SELECT;
	else
		c->reason = c->dup ? R_DUP : c->ref ? R_REF : c->label ? R_LABEL : R_SELECT;
	c->h = (double)(rng_mix(s->o.seed ^ html_hash(c->key)) >> 11);
	return 0;
}

/* ---- views ---- */

static void view_init(survey_view *v, size_t cap, int dir)
{
	topn_init(&v->t, cap, dir);
	v->e = xcalloc(cap ? cap : 1, sizeof *v->e);
	v->n = 0;
}

static void entry_free(survey_entry *e)
{
	free(e->key);
	free(e->note);
	memset(e, 0, sizeof *e);
}

static void fill(survey_entry *e, const cur *c, const char *note)
{
	e->key = xstrdup(c->key);
	e->note = note ? xstrdup(note) : NULL;
	e->by = c->by, e->proto = c->proto, e->sim = c->sim, e->agree = c->agree;
	e->cls = c->cls, e->alt = c->alt, e->cluster = c->cluster;
	e->state = c->state;
}

/* The record stays in v if it is among the best by val. */
static void offer(survey_view *v, const cur *c, double val, const char *note)
{
	int evicted;
	long slot = topn_offer(&v->t, val, c->key, &evicted);

	if (slot < 0)
		return;
	if (evicted)
		entry_free(&v->e[slot]);
	fill(&v->e[slot], c, note);
}

/* Put v's entries best first, as e[0..n). */
static void finish(survey_view *v)
{
	size_t n = v->t.n, *slot = xmalloc((n ? n : 1) * sizeof *slot);
	survey_entry *e = xcalloc(n ? n : 1, sizeof *e);

	topn_sorted(&v->t, slot);
	for (size_t i = 0; i < n; i++)
		e[i] = v->e[slot[i]];
	free(v->e);
	free(slot);
	v->e = e;
	v->n = n;
	topn_free(&v->t);
}

void survey_init(survey *s, const survey_opts *o)
{
	memset(s, 0, sizeof *s);
	s->o = *o;
	view_init(&s->hard, o->top, +1);
	view_init(&s->easy, o->top, -1);
	view_init(&s->near_ref, o->top, +1);
	view_init(&s->labels, o->top, -1);
	for (int i = 0; i < 2; i++)
		view_init(&s->samples[i], o->sample, -1);
	for (int i = 0; i < N_REASONS; i++)
		view_init(&s->by_reason[i], o->sample, -1);
}

/* ---- groups: clusters, classes (their ids as decimal keys of a keyset), duplicates ---- */

static size_t id_index(keyset *ids, int64_t id, int *created)
{
	char str[24];
	size_t n = ids->n, i;

	snprintf(str, sizeof str, "%lld", (long long)id);
	i = keyset_add(ids, str);
	*created = i == n;
	return i;
}

static survey_cluster *get_cluster(survey *s, int64_t id)
{
	int created;
	size_t i = id_index(&s->cluster_ids, id, &created);

	if (created) {
		survey_cluster *k;

		s->cl = xreallocarray(s->cl, ++s->ncl, sizeof *s->cl);
		k = &s->cl[i];
		memset(k, 0, sizeof *k);
		k->id = id;
		k->sep = NAN;
		view_init(&k->near, s->o.per_cluster, -1);
		view_init(&k->far, s->o.per_cluster, +1);
		view_init(&k->sample, s->o.per_cluster, -1);
	}
	return &s->cl[i];
}

static survey_class *get_class(survey *s, int64_t id)
{
	int created;
	size_t i = id_index(&s->class_ids, id, &created);

	if (created) {
		s->cs = xreallocarray(s->cs, ++s->ncs, sizeof *s->cs);
		memset(&s->cs[i], 0, sizeof s->cs[i]);
		s->cs[i].id = id;
	}
	return &s->cs[i];
}

/* (ha, a) after (hb, b) in the order of the sample of groups */
static int later(uint64_t ha, const char *a, uint64_t hb, const char *b)
{
	return ha != hb ? ha > hb : strcmp(a, b) > 0;
}

/* The group of orig if it is among the o.groups of smallest seeded hash seen so far; a
 * group that leaves never comes back, as the largest hash kept only falls. */
static survey_dups *dup_group(survey *s, const char *orig)
{
	uint64_t h = rng_mix(s->o.seed ^ html_hash(orig));
	size_t i, worst = 0;
	survey_dups *d;

	for (i = 0; i < s->ndups; i++)
		if (strcmp(s->dups[i].orig, orig) == 0)
			return &s->dups[i];
	if (s->ndups < s->o.groups) {
		s->dups = xreallocarray(s->dups, s->ndups + 1, sizeof *s->dups);
		d = &s->dups[s->ndups++];
	} else {
		for (i = 1; i < s->ndups; i++)
			if (later(s->dups[i].h, s->dups[i].orig, s->dups[worst].h, s->dups[worst].orig))
				worst = i;
		if (s->ndups == 0 || later(h, orig, s->dups[worst].h, s->dups[worst].orig))
			return NULL;
		d = &s->dups[worst];
		free(d->orig);
		for (size_t k = 0; k < d->n && k < SURVEY_DUP_SHOWN; k++)
			entry_free(&d->m[k]);
	}
	memset(d, 0, sizeof *d);
	d->orig = xstrdup(orig);
	d->h = h;
	return d;
}

/* ---- adding a record ---- */

static void per_group(survey *s, const cur *c)
{
	if (c->cluster != SURVEY_NONE) {
		survey_cluster *k = get_cluster(s, c->cluster);

		k->n++;
		k->st[c->state]++;
		if (!isnan(c->proto)) {
			k->sum_proto += c->proto;
			k->nproto++;
			offer(&k->near, c, c->proto, NULL);
			offer(&k->far, c, c->proto, NULL);
		}
		if (!isnan(c->sep))
			k->sep = c->sep;
		offer(&k->sample, c, c->h, NULL);
	}
	if (c->cls != SURVEY_NONE) {
		survey_class *k = get_class(s, c->cls);

		k->n++;
		k->st[c->state]++;
	}
}

/* Every float field, and the --by field when it is an integer. */
static void histograms(survey *s, const record *r, int state)
{
	for (size_t i = 0; i < r->n; i++) {
		const rec_field *f = &r->f[i];
		int is_by = strcmp(f->name, s->o.by) == 0;
		hist *h = NULL;

		if (f->type != RV_FLOAT && !(is_by && (f->type == RV_INT || f->type == RV_BOOL)))
			continue;
		for (int k = 0; k < s->nhists && !h; k++)
			if (strcmp(s->hists[k]->name, f->name) == 0)
				h = s->hists[k];
		if (!h && s->nhists < SURVEY_HISTS)
			h = s->hists[s->nhists++] = hist_new(f->name);
		if (h)
			hist_add(h, f->type == RV_FLOAT ? f->f : (double)f->i, state);
	}
}

int survey_add(survey *s, const record *r, char *err, size_t errlen)
{
	cur c;

	if (parse(s, &c, r, err, errlen) < 0)
		return -1;
	s->records++;
	s->st[c.state]++;
	histograms(s, r, c.state);
	per_group(s, &c);
	if (!isnan(c.by)) {
		s->scored++;
		offer(&s->hard, &c, c.by, NULL);
		offer(&s->easy, &c, c.by, NULL);
	}
	if (c.dup) {
		survey_dups *d = c.dup_of ? dup_group(s, c.dup_of) : NULL;

		s->ndup++;
		if (d && d->n++ < SURVEY_DUP_SHOWN)
			fill(&d->m[d->n - 1], &c, NULL);
	}
	if (c.ref) {
		s->nref++;
		offer(&s->near_ref, &c, isnan(c.sim) ? -INFINITY : c.sim, c.ref_key);
	}
	if (c.label) {
		s->nlabel++;
		offer(&s->labels, &c, isnan(c.agree) ? INFINITY : c.agree, NULL);
	}
	if (c.state != ST_UNKNOWN)
		offer(&s->samples[c.state], &c, c.h, NULL);
	if (c.state == ST_DROPPED) {
		s->reasons[c.reason]++;
		offer(&s->by_reason[c.reason], &c, c.h, NULL);
	}
	return 0;
}

static int cmp_cluster(const void *a, const void *b)
{
	const survey_cluster *p = a, *q = b;

	return p->id < q->id ? -1 : p->id > q->id;
}

static int cmp_class(const void *a, const void *b)
{
	const survey_class *p = a, *q = b;

	return p->id < q->id ? -1 : p->id > q->id;
}

void survey_finish(survey *s)
{
	size_t i;

	finish(&s->hard), finish(&s->easy), finish(&s->near_ref), finish(&s->labels);
	for (i = 0; i < 2; i++)
		finish(&s->samples[i]);
	for (i = 0; i < N_REASONS; i++)
		finish(&s->by_reason[i]);
	for (i = 0; i < s->ncl; i++)
		finish(&s->cl[i].near), finish(&s->cl[i].far), finish(&s->cl[i].sample);
	if (s->ncl)
		qsort(s->cl, s->ncl, sizeof *s->cl, cmp_cluster);
	if (s->ncs)
		qsort(s->cs, s->ncs, sizeof *s->cs, cmp_class);
}
