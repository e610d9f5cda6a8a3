/* Bounded collections for one pass over records: a set of keys, and the best N by a value. */
#ifndef CULL_KEYS_H
#define CULL_KEYS_H

#include <stddef.h>
#include <stdint.h>

/* A set of strings, each with an index from 0 in the order added. The strings live in one
 * arena: about the string's length plus 16 bytes each. */
typedef struct {
	char *arena;
	size_t alen, acap;
	size_t *off;           /* index -> offset of its string in arena */
	size_t n, cap;
	uint32_t *slot;        /* index + 1, 0 = empty; a power of two, at most half full */
	size_t nslot;
} keyset;

#define KEYSET_NONE ((size_t)-1)

/* The index of s, or KEYSET_NONE. */
size_t keyset_find(const keyset *k, const char *s);
/* The index of s, added when new. */
size_t keyset_add(keyset *k, const char *s);
const char *keyset_str(const keyset *k, size_t i);
void keyset_free(keyset *k);

/* The best cap items offered, by value then key: with dir +1 the largest values, with -1
 * the smallest; equal values keep the smaller key (strcmp). What stays does not depend on
 * the order of the offers. Items are slots 0..cap-1 of an array the caller keeps beside
 * it; topn only says which slot an offer goes to. */
typedef struct {
	size_t cap, n;
	int dir;
	double *v;             /* heap, worst at the root: values */
	char **key;            /* and keys (malloc'd) */
	size_t *slot;          /* and the caller's slots */
} topn;

void topn_init(topn *t, size_t cap, int dir);
void topn_free(topn *t);
/* Offer (v, key), v not NaN: the slot to fill when it enters the best, or -1. When the
 * slot held an item that now leaves, *evicted is set to 1 (the caller frees what it holds
 * there); else 0. */
long topn_offer(topn *t, double v, const char *key, int *evicted);
/* The slots, best first, into out (t->n of them). */
void topn_sorted(const topn *t, size_t *out);

#endif
