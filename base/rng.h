/* The one random number generator of cull: splitmix64 (Steele, Lea and Flood 2014), seeded
 * by the programs' --seed, so a seed gives the same draws in every program and on every CPU. */
#ifndef CULL_RNG_H
#define CULL_RNG_H

#include <stdint.h>

/* splitmix64's output function: a bijective mix of 64 bits (x + the golden gamma). */
static inline uint64_t rng_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The next 64 random bits of the stream whose state is *s (advanced). */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	*s += 0x9e3779b97f4a7c15ULL;
	return rng_mix(x);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double rng_uniform(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n > 0, without modulo bias (rejection). */
static inline uint64_t rng_below(uint64_t *s, uint64_t n)
{
	uint64_t lim = UINT64_MAX - UINT64_MAX % n, r;

	do
		r = rng_next(s);
	while (r >= lim);
	return r % n;
}

#endif
