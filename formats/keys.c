/* Bounded collections for one pass over records: a set of keys, and the best N by a value. */
#include "keys.h"
#include "html.h"
#include "io.h"

#include <stdlib.h>
#include <string.h>

/* ---- keyset: open addressing over indices, strings in an arena ---- */

static size_t probe(const keyset *k, const char *s)
{
	size_t h = (size_t)html_hash(s) & (k->nslot - 1);

	while (k->slot[h] && strcmp(k->arena + k->off[k->slot[h] - 1], s) != 0)
		h = (h + 1) & (k->nslot - 1);
	return h;
}

size_t keyset_find(const keyset *k, const char *s)
{
	size_t h;

	if (!k->nslot)
		return KEYSET_NONE;
	h = probe(k, s);
	return k->slot[h] ? k->slot[h] - 1 : KEYSET_NONE;
}

static void grow_slots(keyset *k)
{
	size_t i;

	free(k->slot);
	k->nslot = k->nslot ? 2 * k->nslot : 64;
	k->slot = xcalloc(k->nslot, sizeof *k->slot);
	for (i = 0; i < k->n; i++)
		k->slot[probe(k, k->arena + k->off[i])] = (uint32_t)(i + 1);
}

size_t keyset_add(keyset *k, const char *s)
{
	size_t len = strlen(s) + 1, h;

	if (k->nslot) {
		h = probe(k, s);
		if (k->slot[h])
			return k->slot[h] - 1;
	}
	if (k->n >= UINT32_MAX - 1)
		die(EXIT_NOMEM, "more than %u keys in a set", UINT32_MAX - 1);
	if (k->alen + len > k->acap) {
		k->acap = 2 * (k->alen + len) + 4096;
		k->arena = xrealloc(k->arena, k->acap);
	}
	if (k->n == k->cap) {
		k->cap = k->cap ? 2 * k->cap : 64;
		k->off = xreallocarray(k->off, k->cap, sizeof *k->off);
	}
	memcpy(k->arena + k->alen, s, len);
	k->off[k->n++] = k->alen;
	k->alen += len;
	if (2 * k->n > k->nslot)
		grow_slots(k);
	else
		k->slot[probe(k, s)] = (uint32_t)k->n;
	return k->n - 1;
}

const char *keyset_str(const keyset *k, size_t i)
{
	return k->arena + k->off[i];
}

void keyset_free(keyset *k)
{
	free(k->arena);
	free(k->off);
	free(k->slot);
	memset(k, 0, sizeof *k);
}

/* ---- topn: a binary heap with the worst item at the root ---- */

void topn_init(topn *t, size_t cap, int dir)
{
	memset(t, 0, sizeof *t);
	t->cap = cap;
	t->dir = dir;
	t->v = xmalloc((cap ? cap : 1) * sizeof *t->v);
	t->key = xmalloc((cap ? cap : 1) * sizeof *t->key);
	t->slot = xmalloc((cap ? cap : 1) * sizeof *t->slot);
}

void topn_free(topn *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->key[i]);
	free(t->v);
	free(t->key);
	free(t->slot);
	memset(t, 0, sizeof *t);
}

/* Whether (va, ka) is better than (vb, kb). */
static int better(const topn *t, double va, const char *ka, double vb, const char *kb)
{
	if (va != vb)
		return t->dir > 0 ? va > vb : va < vb;
	return strcmp(ka, kb) < 0;
}

static int better_at(const topn *t, size_t a, size_t b)
{
	return better(t, t->v[a], t->key[a], t->v[b], t->key[b]);
}

static void swap(topn *t, size_t a, size_t b)
{
	double v = t->v[a];
	char *k = t->key[a];
	size_t s = t->slot[a];

	t->v[a] = t->v[b], t->key[a] = t->key[b], t->slot[a] = t->slot[b];
	t->v[b] = v, t->key[b] = k, t->slot[b] = s;
}

static void sift_down(topn *t, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, w = i;

		if (l < t->n && better_at(t, w, l))
			w = l;
		if (r < t->n && better_at(t, w, r))
			w = r;
		if (w == i)
			return;
		swap(t, i, w);
		i = w;
	}
}

long topn_offer(topn *t, double v, const char *key, int *evicted)
{
	size_t i, slot;

	*evicted = 0;
	if (t->cap == 0)
		return -1;
	if (t->n < t->cap) {
		i = t->n++;
		t->v[i] = v, t->key[i] = xstrdup(key), t->slot[i] = slot = i;
		while (i > 0 && better_at(t, (i - 1) / 2, i)) {
			swap(t, i, (i - 1) / 2);
			i = (i - 1) / 2;
		}
		return (long)slot;
	}
	if (!better(t, v, key, t->v[0], t->key[0]))
		return -1;
	*evicted = 1;
	free(t->key[0]);
	t->v[0] = v, t->key[0] = xstrdup(key);
	slot = t->slot[0];
	sift_down(t, 0);
	return (long)slot;
}

static const topn *sorting;

static int cmp_best(const void *a, const void *b)
{
	size_t i = *(const size_t *)a, j = *(const size_t *)b;

	return better_at(sorting, i, j) ? -1 : better_at(sorting, j, i) ? 1 : 0;
}

void topn_sorted(const topn *t, size_t *out)
{
	size_t *ix = xmalloc((t->n ? t->n : 1) * sizeof *ix);

	for (size_t i = 0; i < t->n; i++)
		ix[i] = i;
	sorting = t;
	qsort(ix, t->n, sizeof *ix, cmp_best);
	for (size_t i = 0; i < t->n; i++)
		out[i] = t->slot[ix[i]];
	free(ix);
}
