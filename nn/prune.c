/* Data-pruning policies over scored items: preference order, groups, plain, balanced, CCS and DBP. */
#define _GNU_SOURCE            /* qsort_r: the orders need the items and the policy */
#include "prune.h"
#include "io.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- orders ---- */

typedef struct {
	const prune_item *it;
	const prune_policy *p;
} order_ctx;

int prune_cmp(const prune_item *a, const prune_item *b, const prune_policy *p)
{
	if (p->random) {
		if (a->rnd != b->rnd)
			return a->rnd < b->rnd ? -1 : 1;
	} else if (a->score != b->score) {
		return (a->score > b->score) == !p->easy ? -1 : 1;
	}
	return strcmp(a->key, b->key);
}

static int cmp_pref(const void *pa, const void *pb, void *arg)
{
	const order_ctx *c = arg;

	return prune_cmp(&c->it[*(const size_t *)pa], &c->it[*(const size_t *)pb], c->p);
}

static int cmp_score_asc(const void *pa, const void *pb, void *arg)
{
	const order_ctx *c = arg;
	const prune_item *a = &c->it[*(const size_t *)pa], *b = &c->it[*(const size_t *)pb];

	if (a->score != b->score)
		return a->score < b->score ? -1 : 1;
	return strcmp(a->key, b->key);
}

static int cmp_rnd(const void *pa, const void *pb, void *arg)
{
	const order_ctx *c = arg;
	const prune_item *a = &c->it[*(const size_t *)pa], *b = &c->it[*(const size_t *)pb];

	if (a->rnd != b->rnd)
		return a->rnd < b->rnd ? -1 : 1;
	return strcmp(a->key, b->key);
}

static int cmp_grp(const void *pa, const void *pb, void *arg)
{
	const order_ctx *c = arg;
	const prune_item *a = &c->it[*(const size_t *)pa], *b = &c->it[*(const size_t *)pb];

	if (a->grp != b->grp)
		return a->grp < b->grp ? -1 : 1;
	return cmp_pref(pa, pb, arg);
}

static size_t *order(const prune_item *it, size_t n, const prune_policy *p,
                     int (*cmp)(const void *, const void *, void *))
{
	order_ctx c = { it, p };
	size_t *ix = xmalloc((n ? n : 1) * sizeof *ix);

	for (size_t i = 0; i < n; i++)
		ix[i] = i;
	qsort_r(ix, n, sizeof *ix, cmp, &c);
	return ix;
}

size_t *prune_order(const prune_item *it, size_t n, const prune_policy *p)
{
	return order(it, n, p, cmp_pref);
}

void prune_keep_first(prune_item *it, const size_t *ix, size_t m, size_t n)
{
	for (size_t i = 0; i < m && n > 0; i++)
		if (!it[ix[i]].keep) {
			it[ix[i]].keep = 1;
			n--;
		}
}

prune_group *prune_groups(const prune_item *it, size_t n, const prune_policy *p, size_t **ixp,
                          size_t *ng)
{
	size_t *ix = order(it, n, p, cmp_grp), g = 0, i;
	prune_group *gr = xmalloc((n ? n : 1) * sizeof *gr);

	for (i = 0; i < n; i++) {
		if (i == 0 || it[ix[i]].grp != gr[g - 1].id)
			gr[g++] = (prune_group){ .id = it[ix[i]].grp, .start = i };
		gr[g - 1].size++;
	}
	*ixp = ix;
	*ng = g;
	return gr;
}

/* ---- policies ---- */

void prune_plain(prune_item *it, size_t n_items, size_t n, const prune_policy *p)
{
	size_t *ix = prune_order(it, n_items, p);

	prune_keep_first(it, ix, n_items, n);
	free(ix);
}

void prune_balanced(prune_item *it, size_t n_items, size_t n, const prune_policy *p)
{
	size_t *gx, ng, g, taken = 0, *ix;
	prune_group *gr = prune_groups(it, n_items, p, &gx, &ng);
	size_t min = ng ? (size_t)floor(p->min_share * (double)n / (double)ng) : 0;

	for (g = 0; g < ng; g++) {
		size_t q = gr[g].size < min ? gr[g].size : min;

		prune_keep_first(it, gx + gr[g].start, q, q);
		taken += q;
	}
	ix = prune_order(it, n_items, p);
	prune_keep_first(it, ix, n_items, n - taken);
	free(ix);
	free(gx);
	free(gr);
}

static int cmp_size(const void *a, const void *b)
{
	const prune_group *p = a, *q = b;

	if (p->size != q->size)
		return p->size < q->size ? -1 : 1;
	return p->id < q->id ? -1 : p->id > q->id;
}

size_t prune_ccs(prune_item *it, size_t n_items, size_t n, const prune_policy *p)
{
	size_t *ix = order(it, n_items, p, cmp_score_asc), drop = (size_t)floor(p->beta * (double)n_items);
	size_t m = n_items - drop, S = (size_t)p->strata, s, i, left = n;
	prune_group *st = xcalloc(S, sizeof *st);
	size_t **members = xcalloc(S, sizeof *members), *fill = xcalloc(S, sizeof *fill);
	order_ctx c = { it, p };
	double lo, width;

	if (m == 0)
		goto done;
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

		qsort_r(mem, st[s].size, sizeof *mem, cmp_rnd, &c);
		prune_keep_first(it, mem, st[s].size, q);
		left -= q;
	}
done:
	for (s = 0; s < S; s++)
		free(members[s]);
	free(members);
	free(fill);
	free(st);
	free(ix);
	return m;
}

/* DBP's budgets: gr[].quota for n items over ng groups whose softmax weights are gr[].w;
 * the floor quota is set already, left is what remains of n. */
static void dbp_quotas(prune_group *gr, size_t ng, int *active, size_t left)
{
	size_t g, given;
	double total;
	int sat;

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
}

void prune_dbp(prune_item *it, size_t n_items, size_t n, const prune_policy *p)
{
	size_t *gx, ng, g, left;
	prune_group *gr = prune_groups(it, n_items, p, &gx, &ng);
	size_t min = ng ? (size_t)floor(p->min_share * (double)n / (double)ng) : 0;
	double mx = -INFINITY;
	int *active = xcalloc(ng ? ng : 1, sizeof *active);

	left = n;
	for (g = 0; g < ng; g++) {
		double dist = 0;

		for (size_t i = 0; i < gr[g].size; i++)
			dist += it[gx[gr[g].start + i]].proto;
		gr[g].w = dist / (double)gr[g].size * it[gx[gr[g].start]].sep / p->temp;
		if (gr[g].w > mx)
			mx = gr[g].w;
		gr[g].quota = gr[g].size < min ? gr[g].size : min;
		left -= gr[g].quota;
		active[g] = gr[g].quota < gr[g].size;
	}
	for (g = 0; g < ng; g++)
		gr[g].w = exp(gr[g].w - mx);
	dbp_quotas(gr, ng, active, left);
	for (g = 0; g < ng; g++)
		prune_keep_first(it, gx + gr[g].start, gr[g].size, gr[g].quota);
	free(active);
	free(gx);
	free(gr);
}
