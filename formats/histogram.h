/* Histograms of score fields in bounded memory, streamed once, and their SVG plots. */
#ifndef CULL_HISTOGRAM_H
#define CULL_HISTOGRAM_H

#include <stdint.h>
#include <stdio.h>

#define HIST_BINS 1024     /* fine bins held, whatever the number of values */
#define HIST_SERIES 3      /* counts kept apart per bin and stacked in the plot */

/* Fine bins of width 2^exp aligned at multiples of it. The width starts at 2^-30 and
 * doubles (merging neighbouring bins) only when the values seen so far do not fit in
 * HIST_BINS bins, so the state after a set of values does not depend on their order. */
typedef struct {
	char *name;                           /* the field (malloc'd) */
	int exp;
	int64_t base, lo, hi;                 /* bins[0]'s index; the lowest and highest used */
	uint64_t bins[HIST_SERIES][HIST_BINS];
	uint64_t n, nonfinite;                /* values counted; NaN and infinities skipped */
	double min, max, sum;
} hist;

hist *hist_new(const char *name);
void hist_free(hist *h);
/* Count v in series s (0 <= s < HIST_SERIES). */
void hist_add(hist *h, double v, int s);

/* Draw h as an inline SVG element of about 40 stacked bars into f: the series bottom to
 * top in the colours of the CSS classes s0, s1, s2 (a legend names them, series with no
 * count left out), the axes with their values, and a dashed line at each of the nmarks
 * values in marks (a line labelled mark_label when there is one; with several, thin ticks
 * along the top, labelled with their number and range). Text from data is escaped. */
void hist_svg(FILE *f, const hist *h, const char *const names[HIST_SERIES],
              const double *marks, int nmarks, const char *mark_label);

#endif
