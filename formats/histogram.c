/* Histograms of score fields in bounded memory, streamed once, and their SVG plots. */
#include "histogram.h"
#include "html.h"
#include "io.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

hist *hist_new(const char *name)
{
	hist *h = xcalloc(1, sizeof *h);

	h->name = xstrdup(name);
	h->exp = -30;
	return h;
}

void hist_free(hist *h)
{
	if (h)
		free(h->name);
	free(h);
}

static int64_t floor_half(int64_t a)
{
	return a >= 0 ? a / 2 : -((-a + 1) / 2);
}

/* Double the bin width: fine bin a becomes floor(a / 2). */
static void coarsen(hist *h)
{
	uint64_t old[HIST_SERIES][HIST_BINS];
	int64_t nb = floor_half(h->base);

	memcpy(old, h->bins, sizeof old);
	memset(h->bins, 0, sizeof h->bins);
	for (int s = 0; s < HIST_SERIES; s++)
		for (int64_t i = 0; i < HIST_BINS; i++)
			h->bins[s][floor_half(h->base + i) - nb] += old[s][i];
	h->exp++;
	h->base = nb;
	h->lo = floor_half(h->lo);
	h->hi = floor_half(h->hi);
}

/* Move the window so that it starts at bin nb (the used bins stay inside it). */
static void shift(hist *h, int64_t nb)
{
	int64_t d = nb - h->base;

	for (int s = 0; s < HIST_SERIES; s++) {
		uint64_t *b = h->bins[s];

		if (d > 0) {
			memmove(b, b + d, (size_t)(HIST_BINS - d) * sizeof *b);
			memset(b + HIST_BINS - d, 0, (size_t)d * sizeof *b);
		} else {
			memmove(b - d, b, (size_t)(HIST_BINS + d) * sizeof *b);
			memset(b, 0, (size_t)-d * sizeof *b);
		}
	}
	h->base = nb;
}

void hist_add(hist *h, double v, int s)
{
	int64_t i;

	if (!isfinite(v)) {
		h->nonfinite++;
		return;
	}
	for (;;) {
		double a = floor(ldexp(v, -h->exp));

		if (fabs(a) >= 0x1p60) {
			coarsen(h);
			continue;
		}
		i = (int64_t)a;
		if (h->n == 0) {
			h->base = h->lo = h->hi = i;
			break;
		}
		int64_t lo = i < h->lo ? i : h->lo, hi = i > h->hi ? i : h->hi;
		if (hi - lo >= HIST_BINS) {
			coarsen(h);
			continue;
		}
		if (i < h->base)
			shift(h, lo);
		else if (i >= h->base + HIST_BINS)
			shift(h, hi - HIST_BINS + 1);
		h->lo = lo, h->hi = hi;
		break;
	}
	h->bins[s][i - h->base]++;
	if (h->n == 0 || v < h->min)
		h->min = v;
	if (h->n == 0 || v > h->max)
		h->max = v;
	h->sum += v;
	h->n++;
}

/* ---- the plot ---- */

enum { W = 640, H = 236, X0 = 60, X1 = 624, Y0 = 40, Y1 = 196, NBARS = 40 };

static double xpos(double v, double vlo, double vhi)
{
	double t = vhi > vlo ? (v - vlo) / (vhi - vlo) : 0.5;

	return X0 + (t < 0 ? 0 : t > 1 ? 1 : t) * (X1 - X0);
}

static void legend(FILE *f, const uint64_t *tot, const char *const names[HIST_SERIES])
{
	double x = X1;

	for (int s = HIST_SERIES - 1; s >= 0; s--) {
		char num[32];

		if (!tot[s])
			continue;
		snprintf(num, sizeof num, " %llu", (unsigned long long)tot[s]);
		x -= 14 + 7.0 * (double)(strlen(names[s]) + strlen(num));
		fprintf(f, "<rect class=\"s%d\" x=\"%.1f\" y=\"8\" width=\"10\" height=\"10\"/>"
		        "<text x=\"%.1f\" y=\"17\">", s, x, x + 13);
		html_puts(f, names[s]);
		fprintf(f, "%s</text>", num);
	}
}

static void marks_svg(FILE *f, const double *marks, int nmarks, const char *label, double vlo,
                      double vhi)
{
	double mlo = INFINITY, mhi = -INFINITY;

	for (int m = 0; m < nmarks; m++) {
		double x = xpos(marks[m], vlo, vhi);

		mlo = marks[m] < mlo ? marks[m] : mlo;
		mhi = marks[m] > mhi ? marks[m] : mhi;
		if (nmarks == 1)
			fprintf(f, "<line class=\"mark\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>",
			        x, Y0 - 6, x, Y1);
		else
			fprintf(f, "<line class=\"ticks\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>",
			        x, Y0 - 6, x, Y0 + 6);
	}
	if (nmarks == 1) {
		double x = xpos(marks[0], vlo, vhi);
		int right = x > (X0 + X1) / 2;

		fprintf(f, "<text class=\"mark\" x=\"%.1f\" y=\"%d\" text-anchor=\"%s\">", right ?
		        x - 4 : x + 4, Y0 + 8, right ? "end" : "start");
		html_puts(f, label ? label : "");
		fprintf(f, " %.4g</text>", marks[0]);
	} else if (nmarks > 1) {
		fprintf(f, "<text class=\"mark\" x=\"%d\" y=\"%d\">", X0, Y0 - 10);
		html_puts(f, label ? label : "");
		fprintf(f, " (%d, from %.4g to %.4g)</text>", nmarks, mlo, mhi);
	}
}

void hist_svg(FILE *f, const hist *h, const char *const names[HIST_SERIES],
              const double *marks, int nmarks, const char *mark_label)
{
	int64_t span = h->hi - h->lo + 1, g = (span + NBARS - 1) / NBARS, nbars, j, a;
	uint64_t bar[HIST_SERIES], tot[HIST_SERIES] = { 0 }, maxc = 1;
	double vlo, vhi, bw;

	if (h->n == 0) {
		fputs("<p class=\"note\">no finite values</p>\n", f);
		return;
	}
	nbars = (span + g - 1) / g;
	for (j = 0; j < nbars; j++) {
		uint64_t t = 0;

		for (a = h->lo + j * g; a < h->lo + (j + 1) * g && a <= h->hi; a++)
			for (int s = 0; s < HIST_SERIES; s++) {
				t += h->bins[s][a - h->base];
				tot[s] += h->bins[s][a - h->base];
			}
		maxc = t > maxc ? t : maxc;
	}
	vlo = ldexp((double)h->lo, h->exp);
	vhi = ldexp((double)(h->lo + nbars * g), h->exp);
	bw = (double)(X1 - X0) / (double)nbars;
	fprintf(f, "<svg class=\"hist\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	        "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\"><title>", W, H, W, H);
	html_puts(f, h->name);
	fprintf(f, "</title><text class=\"head\" x=\"%d\" y=\"17\">", X0);
	html_puts(f, h->name);
	fputs("</text>", f);
	legend(f, tot, names);
	fprintf(f, "<line class=\"grid\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>", X0, Y0, X1, Y0);
	for (j = 0; j < nbars; j++) {
		double y = Y1;

		memset(bar, 0, sizeof bar);
		for (a = h->lo + j * g; a < h->lo + (j + 1) * g && a <= h->hi; a++)
			for (int s = 0; s < HIST_SERIES; s++)
				bar[s] += h->bins[s][a - h->base];
		for (int s = 0; s < HIST_SERIES; s++) {
			double ht = (double)bar[s] * (Y1 - Y0) / (double)maxc;

			if (!bar[s])
				continue;
			y -= ht;
			fprintf(f, "<rect class=\"s%d\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			        "height=\"%.1f\"><title>%.4g to %.4g: %llu</title></rect>", s,
			        X0 + (double)j * bw + 0.5, y, bw > 2 ? bw - 1 : bw, ht,
			        ldexp((double)(h->lo + j * g), h->exp),
			        ldexp((double)(h->lo + (j + 1) * g), h->exp),
			        (unsigned long long)bar[s]);
		}
	}
	fprintf(f, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>", X0, Y1, X1, Y1);
	for (int t = 0; t <= 4; t++) {
		double x = X0 + t * (X1 - X0) / 4.0;

		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.3g</text>", x, Y1 + 16,
		        vlo + t * (vhi - vlo) / 4);
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%llu</text>"
	        "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>", X0 - 6, Y0 + 4,
	        (unsigned long long)maxc, X0 - 6, Y1);
	fprintf(f, "<text class=\"note\" x=\"%d\" y=\"%d\">%llu values, mean %.4g, from %.4g to "
	        "%.4g%s</text>", X0, H - 4, (unsigned long long)h->n, h->sum / (double)h->n, h->min,
	        h->max, h->nonfinite ? " (and non-finite ones, not drawn)" : "");
	marks_svg(f, marks, nmarks, mark_label, vlo, vhi);
	fputs("</svg>\n", f);
}
