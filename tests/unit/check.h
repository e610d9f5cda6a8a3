/* Tiny assertion helpers for C unit tests: each check prints "ok NAME" or "not ok NAME". */
#ifndef CULL_CHECK_H
#define CULL_CHECK_H
#include <math.h>
#include <stdio.h>

static int check_failures;

#define CHECK(cond, ...) do { \
	if (cond) { printf("ok "); printf(__VA_ARGS__); printf("\n"); } \
	else { check_failures++; printf("not ok "); printf(__VA_ARGS__); \
	       printf("  (%s:%d: %s)\n", __FILE__, __LINE__, #cond); } \
	fflush(stdout); } while (0)

/* max |a-b| / max(|b|, floor) over n floats */
static inline double max_rel_err(const float *a, const float *b, size_t n, double floor)
{
	double m = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - (double)b[i]);
		double s = fabs((double)b[i]) > floor ? fabs((double)b[i]) : floor;
		if (isnan(d)) return INFINITY;
		if (d / s > m) m = d / s;
	}
	return m;
}

#define CHECK_DONE() (check_failures ? 1 : 0)
#endif
