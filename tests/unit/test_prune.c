/* Unit tests for nn/prune: the preference order and what each policy keeps on small sets. */
#include "check.h"
#include "io.h"
#include "prune.h"
#include "rng.h"

#include <stdlib.h>
#include <string.h>

enum { N = 40 };

static char keys[N][8];

/* N items: key "kNN", score (i * 7) % N / N (all distinct), group i % 4, DBP fields. */
static void make(prune_item *it)
{
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "k%02d", i);
		it[i] = (prune_item){ .key = keys[i], .score = (double)(i * 7 % N) / N,
		                      .rnd = rng_mix((uint64_t)i), .grp = i % 4,
		                      .proto = 0.1 * (i % 4 + 1), .sep = 0.5 };
	}
}

static size_t kept(const prune_item *it, int64_t grp)
{
	size_t k = 0;

	for (int i = 0; i < N; i++)
		k += it[i].keep && (grp < 0 || it[i].grp == grp);
	return k;
}

int main(void)
{
	prune_item it[N], a = { .key = "a", .score = 1 }, b = { .key = "b", .score = 1 };
	prune_policy hard = { .min_share = 0.5, .strata = 5, .temp = 0.5 }, easy = hard, rnd = hard;
	size_t *ix, *gx, ng, m;
	prune_group *gr;
	double lowest = 2;
	int ok = 1;

	cull_init("test_prune");
	easy.easy = 1;
	rnd.random = 1;
	CHECK(prune_cmp(&a, &b, &hard) < 0 && prune_cmp(&b, &a, &easy) > 0, "equal scores: by key");
	b.score = 2;
	CHECK(prune_cmp(&b, &a, &hard) < 0 && prune_cmp(&a, &b, &easy) < 0,
	      "hard prefers the larger score, easy the smaller");
	a.rnd = 1, b.rnd = 2;
	CHECK(prune_cmp(&a, &b, &rnd) < 0, "random: by rnd, not by score");

	make(it);
	ix = prune_order(it, N, &hard);
	for (int i = 1; i < N; i++)
		ok &= it[ix[i - 1]].score > it[ix[i]].score;
	CHECK(ok, "prune_order: scores descending");
	free(ix);

	prune_plain(it, N, 10, &hard);
	for (int i = 0; i < N; i++)
		if (it[i].keep && it[i].score < lowest)
			lowest = it[i].score;
	CHECK(kept(it, -1) == 10 && lowest == 30.0 / N, "plain keeps the 10 largest scores");

	make(it);
	gr = prune_groups(it, N, &hard, &gx, &ng);
	CHECK(ng == 4 && gr[0].id == 0 && gr[3].id == 3 && gr[2].size == 10 && gr[2].start == 20,
	      "prune_groups: 4 groups of 10, ascending");
	free(gx);
	free(gr);

	hard.min_share = 1;
	prune_balanced(it, N, 8, &hard);
	CHECK(kept(it, 0) == 2 && kept(it, 1) == 2 && kept(it, 2) == 2 && kept(it, 3) == 2,
	      "balanced with min_share 1: an equal share per group");
	hard.min_share = 0.5;

	make(it);
	hard.beta = 0.25;
	m = prune_ccs(it, N, 12, &hard);
	CHECK(m == 30 && kept(it, -1) == 12, "ccs: 30 left after beta 0.25, 12 kept");
	make(it);
	m = prune_ccs(it, N, 35, &hard);
	CHECK(m == 30 && kept(it, -1) == 30, "ccs: a budget over what is left keeps all that is left");
	hard.beta = 0;

	make(it);
	prune_dbp(it, N, 20, &hard);
	CHECK(kept(it, -1) == 20 && kept(it, 3) >= kept(it, 0),
	      "dbp keeps the budget, more of the more complex cluster");
	make(it);
	prune_dbp(it, N, 40, &hard);
	CHECK(kept(it, -1) == 40, "dbp with the whole budget keeps everything");
	return CHECK_DONE();
}
