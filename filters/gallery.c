/* cull-gallery: an HTML report of a pruning run: clusters, hard and easy, copies, flags, kept, dropped. */
#include "cuts.h"
#include "histogram.h"
#include "html.h"
#include "io.h"
#include "keys.h"
#include "record.h"
#include "report.h"
#include "survey.h"
#include "thumb.h"
#include "wds.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage_short[] = "usage: cull-gallery [-o DIR] [-r RECORDS] [--by FIELD] "
	"[--thresholds F | --kept FILE...] [--class-names F] [--ref SHARD]... [SHARD...]; "
	"see --help\n";
static const char usage[] =
	"usage: cull-gallery [options] [SHARD...]\n"
	"Reads score records (standard input or --records) once, and the SHARD files for the\n"
	"images it shows, and writes a folder of HTML pages and thumbnails that opens from\n"
	"disk: an overview with histograms, clusters, hardest and easiest, duplicates, flagged\n"
	"samples, kept and dropped. Nothing goes to standard output.\n"
	"  -o, --output DIR       the folder (default gallery); replaced if it holds a gallery\n"
	"  -r, --records FILE     read the records from FILE (default standard input)\n"
	"  -b, --by FIELD         the score for hardest and easiest (default proto)\n"
	"      --thresholds F     kept or dropped as cull-select --save-thresholds F decided\n"
	"      --kept FILE        kept: the keys in FILE (records, or shards such as cull-select\n"
	"                         wrote); the others dropped; may be repeated\n"
	"      --class-names F    class names, one a line in class order (cull-shard's\n"
	"                         classes.txt)\n"
	"      --ref SHARD        shards of the reference set, for the images of near_ref_key\n"
	"                         (may be repeated)\n"
	"      --title TEXT       the title of every page (default: cull gallery)\n"
	"  -n, --top N            hardest, easiest and flagged images shown (default 24)\n"
	"      --per-cluster N    nearest, farthest and sampled images per cluster (default 8)\n"
	"      --sample N         kept, dropped and per-reason samples (default 48)\n"
	"      --groups G         duplicate groups shown (default 40)\n"
	"      --thumb PX         thumbnails fit a PX x PX box (default 96; never enlarged)\n"
	"      --format png|jpeg  thumbnail files (default png)\n"
	"      --image-field LIST member fields that hold the image (default jpg,jpeg,png,ppm,pgm)\n"
	"      --seed S           seed of the samples (default 0)\n"
	"      --threads T        accepted for uniformity (one thread)\n"
	"  -h, --help             this help\n"
	"      --version          print the version\n";

static struct {
	const char *out, *records, *by, *thresholds, *names, *title;
	const char **kept, **refs;
	size_t nkept, nrefs;
	int top, per_cluster, sample, groups;
	uint64_t seed;
	thumb_opts thumb;
} o = { .out = "gallery", .by = "proto", .title = "cull gallery", .top = 24, .per_cluster = 8,
        .sample = 48, .groups = 40,
        .thumb = { .box = 96, .image_field = "jpg,jpeg,png,ppm,pgm" } };

#define PREVIEW 8             /* hardest and easiest on the overview */

static survey g;               /* what the pages show (survey.h) */
static thumbs pool, refs;      /* their images, by key; refs: the reference set's */
static cuts cut;
static keyset kept_keys;
static char *source, **names;  /* the records' name; --class-names */
static size_t nnames;

/* readers at file scope: what a fatal error leaves stays reachable (LeakSanitizer) */
static rec_reader *rd;
static record r;
static wds_reader *kept_shards;
static wds_sample sample;

static void read_records(void)
{
	char err[256];

	cull_err e;
	int got;

	if (!(rd = rec_open(o.records, &e)))
		die_err(&e);
	source = xstrdup(rec_source(rd));
	rec_init(&r);
	while ((got = rec_next(rd, &r)) > 0)
		if (survey_add(&g, &r, err, sizeof err) < 0)
			die(EXIT_DATA, "%s: record %llu (key '%s'): %s", source,
			    (unsigned long long)rec_count(rd), rec_key(&r), err);
	if (got < 0)
		die_err(rec_error(rd));
	rec_close(rd);
	rec_free(&r);
	survey_finish(&g);
	if (g.records == 0)
		warn("%s: no records: the gallery is empty (did an upstream stage fail?)", source);
	else if (g.scored == 0)
		warn("%s: no record has a numeric '%s' field: no hardest or easiest (see --by)",
		     source, o.by);
}

static void want(thumbs *t, const survey_view *v)
{
	for (size_t i = 0; i < v->n; i++)
		thumbs_want(t, v->e[i].key);
}

/* The keys whose images the pages show. */
static void want_all(void)
{
	size_t i, k;

	want(&pool, &g.hard), want(&pool, &g.easy), want(&pool, &g.near_ref);
	want(&pool, &g.labels);
	for (i = 0; i < 2; i++)
		want(&pool, &g.samples[i]);
	for (i = 0; i < N_REASONS; i++)
		want(&pool, &g.by_reason[i]);
	for (i = 0; i < g.ncl; i++)
		want(&pool, &g.cl[i].near), want(&pool, &g.cl[i].far), want(&pool, &g.cl[i].sample);
	for (i = 0; i < g.ndups; i++) {
		thumbs_want(&pool, g.dups[i].orig);
		for (k = 0; k < g.dups[i].n && k < SURVEY_DUP_SHOWN; k++)
			thumbs_want(&pool, g.dups[i].m[k].key);
	}
	for (i = 0; i < g.near_ref.n; i++)
		if (g.near_ref.e[i].note)
			thumbs_want(&refs, g.near_ref.e[i].note);
}

/* ---- inputs beside the records ---- */

/* --kept FILE: a record stream (its first byte a msgpack map) or shards. */
static void read_kept(const char *path)
{
	FILE *f = xfopen(path, "rb");
	int c = getc(f);

	fclose(f);
	if (c == EOF || (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf) {
		cull_err e;
		int got;

		if (!(rd = rec_open(path, &e)))
			die_err(&e);
		rec_init(&r);
		while ((got = rec_next(rd, &r)) > 0)
			keyset_add(&kept_keys, rec_key(&r));
		if (got < 0)
			die_err(rec_error(rd));
		rec_close(rd);
		rec_free(&r);
	} else {
		wds_options wo = { .max_member = WDS_MAX_MEMBER, .borrow = 1 };

		kept_shards = wds_open(&path, 1, &wo);
		while (wds_next(kept_shards, &sample))
			keyset_add(&kept_keys, sample.key);
		wds_close(kept_shards);
		wds_sample_free(&sample);
	}
}

/* --class-names: one a line, blank lines skipped (as cull-shard reads them). */
static void read_names(const char *path)
{
	FILE *f = xfopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	while ((len = getline(&line, &cap, f)) > 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (len == 0)
			continue;
		names = xreallocarray(names, nnames + 1, sizeof *names);
		names[nnames++] = xstrdup(line);
	}
	if (ferror(f))
		die(EXIT_IO, "%s: read error: %s", path, strerror(errno));
	free(line);
	fclose(f);
}

/* ---- pages ---- */

static const char *dir;           /* the folder being written */
static report_link nav[8];
static int nnav;
static const char *const state_css[3] = { "kept", "dropped", NULL };
static const char *const state_name[3] = { "kept", "dropped", "undecided" };

static const char *reason_text(int r)
{
	switch (r) {
	case R_DUP: return "a duplicate (dup)";
	case R_REF: return "a near copy of the reference set (near_ref)";
	case R_LABEL: return "a label issue (label_issue)";
	}
	return o.nkept ? "not among the kept keys" : cut.random ? "not drawn (random)" :
	       "after its group's cut";
}

static void label(FILE *f, const char *cls, const char *pre, int64_t c)
{
	fprintf(f, "<span class=\"%s\">%s", cls, pre);
	if (c >= 0 && (uint64_t)c < nnames)
		html_puts(f, names[c]);
	else
		fprintf(f, "class %lld", (long long)c);
	fputs("</span>", f);
}

/* A figure of e with the value v of the score named num (not shown when NaN). */
static void fig(FILE *f, const thumbs *t, const char *key, const survey_entry *e, const char *num,
                double v)
{
	const thumb *th = thumbs_get(t, key);
	int64_t cls = e && e->cls != SURVEY_NONE ? e->cls : th && th->has_cls ? th->cls : SURVEY_NONE;

	report_figure(f, th && th->file ? th->file : NULL, th ? th->w : 0, th ? th->h : 0,
	              o.thumb.box, e ? state_css[e->state] : NULL, key,
	              th && th->found ? "no thumbnail" : "not in the shards");
	if (e && e->alt != SURVEY_NONE) {
		label(f, "lab", "given ", cls);
		label(f, "alt", "suggested ", e->alt);
	} else if (cls != SURVEY_NONE) {
		label(f, "lab", "", cls);
	}
	if (num && !isnan(v)) {
		fputs("<span class=\"num\">", f);
		html_puts(f, num);
		fprintf(f, " %.4g</span>", v);
	}
	if (e && e->state != ST_UNKNOWN)
		fprintf(f, "<span class=\"st\">%s</span>", state_name[e->state]);
	report_figure_end(f);
}

enum { V_BY, V_PROTO, V_SIM, V_AGREE };

static void grid(FILE *f, const survey_view *v, size_t max, int which)
{
	static const char *const names[] = { NULL, "proto", "similarity", "agreement" };

	fputs("<div class=\"grid\">\n", f);
	for (size_t i = 0; i < v->n && i < max; i++) {
		const survey_entry *e = &v->e[i];
		double x = which == V_BY ? e->by : which == V_PROTO ? e->proto : which == V_SIM ?
		           e->sim : e->agree;

		fig(f, &pool, e->key, e, which == V_BY ? o.by : names[which], x);
	}
	fputs("</div>\n", f);
	if (v->n == 0)
		fputs("<p class=\"note\">none</p>\n", f);
}

static void card(FILE *f, uint64_t n, const char *what, uint64_t of)
{
	fprintf(f, "<div class=\"card\"><b>%llu</b><span>%s", (unsigned long long)n, what);
	if (of)
		fprintf(f, " (%.1f%%)", 100.0 * (double)n / (double)of);
	fputs("</span></div>", f);
}

static void share(FILE *f, const uint64_t *st)
{
	uint64_t d = st[ST_KEPT] + st[ST_DROPPED];

	fprintf(f, "<td>%llu</td><td>%llu</td><td data-v=\"%.4f\"><span class=\"share\"><b style="
	        "\"width:%.1f%%\"></b></span> %.0f%%</td>", (unsigned long long)st[ST_KEPT],
	        (unsigned long long)st[ST_DROPPED], d ? (double)st[ST_KEPT] / (double)d : 0,
	        d ? 100.0 * (double)st[ST_KEPT] / (double)d : 0,
	        d ? 100.0 * (double)st[ST_KEPT] / (double)d : 0);
}

/* The frame colours in use. */
static void legend(FILE *f)
{
	fputs("<p class=\"legend\">", f);
	if (g.st[ST_KEPT] + g.st[ST_DROPPED])
		fputs("<span><i class=\"kept\"></i>kept</span><span><i class=\"dropped\"></i>dropped"
		      "</span>", f);
	if (g.st[ST_UNKNOWN] || g.ndups)
		fputs("<span><i class=\"unknown\"></i>undecided or unknown</span>", f);
	fputs("</p>\n", f);
}

static void selection(FILE *f)
{
	fputs("<p class=\"note\">", f);
	if (o.thresholds) {
		fputs("Kept and dropped as cull-select decided, from its thresholds ", f);
		html_puts(f, o.thresholds);
		fputs(": by ", f);
		html_puts(f, cut.random ? "a seeded random draw" : cut.by);
		fprintf(f, ", %s first, balanced by %s%s.", cut.easy ? "easiest" : "hardest",
		        cut.balance == CUTS_CLASS ? "class" : cut.balance == CUTS_CLUSTER ?
		        "cluster" : "nothing", cut.drop_dups ? ", duplicates dropped" : "");
	} else if (o.nkept) {
		fprintf(f, "Kept: the %zu keys of ", kept_keys.n);
		html_puts(f, o.kept[0]);
		if (o.nkept > 1)
			fprintf(f, " and %zu more files", o.nkept - 1);
		fputs("; every other record dropped.", f);
	} else {
		fputs("Nothing says what was kept (give --thresholds or --kept).", f);
	}
	fputs("</p>\n", f);
}

static void histograms_svg(FILE *f)
{
	static const char *const series[HIST_SERIES] = { "kept", "dropped", "undecided" };
	double *marks = xmalloc((cut.n ? cut.n : 1) * sizeof *marks);

	fputs("<div class=\"hists\">\n", f);
	for (int k = 0; k < g.nhists; k++) {
		int nm = 0;

		if (o.thresholds && !cut.random && strcmp(cut.by, g.hists[k]->name) == 0)
			for (size_t i = 0; i < cut.n; i++)
				if (cut.cut[i].has)
					marks[nm++] = cut.cut[i].score;
		hist_svg(f, g.hists[k], series, marks, nm, cut.balance == CUTS_NONE ? "cut" :
		         cut.balance == CUTS_CLASS ? "cuts per class" : "cuts per cluster");
	}
	fputs("</div>\n", f);
	if (g.nhists == 0)
		fputs("<p class=\"note\">no score fields</p>\n", f);
	free(marks);
}

static void class_table(FILE *f)
{
	int decided = o.thresholds || o.nkept;

	fprintf(f, "<div><h2>Per class</h2>\n<table class=\"sort\"><thead><tr><th>class</th>"
	        "<th class=\"l\">name</th><th>records</th>%s</tr></thead><tbody>\n", decided ?
	        "<th>kept</th><th>dropped</th><th>kept share</th>" : "");
	for (size_t i = 0; i < g.ncs; i++) {
		const survey_class *k = &g.cs[i];

		fprintf(f, "<tr><td>%lld</td><td class=\"l\">", (long long)k->id);
		label(f, "name", "", k->id);
		fprintf(f, "</td><td>%llu</td>", (unsigned long long)k->n);
		if (decided)
			share(f, k->st);
		fputs("</tr>\n", f);
	}
	fputs("</tbody></table></div>\n", f);
}

static void cluster_table(FILE *f)
{
	int decided = o.thresholds || o.nkept;

	fprintf(f, "<div><h2>Per cluster</h2>\n<div class=\"scroll\"><table class=\"sort\"><thead><tr>"
	        "<th>cluster</th><th>size</th><th>mean proto</th><th>separation</th>%s</tr>"
	        "</thead><tbody>\n", decided ? "<th>kept</th><th>dropped</th><th>kept share</th>"
	        : "");
	for (size_t i = 0; i < g.ncl; i++) {
		const survey_cluster *k = &g.cl[i];

		fprintf(f, "<tr><td data-v=\"%lld\"><a href=\"cluster-%lld.html\">%lld</a></td><td>"
		        "%llu</td><td>%.4g</td><td>%.4g</td>", (long long)k->id, (long long)k->id,
		        (long long)k->id, (unsigned long long)k->n, k->nproto ? k->sum_proto /
		        (double)k->nproto : NAN, k->sep);
		if (decided)
			share(f, k->st);
		fputs("</tr>\n", f);
	}
	fputs("</tbody></table></div></div>\n", f);
}

static void page_index(void)
{
	FILE *f = report_page(dir, "index.html", o.title, "Overview", nav, nnav);

	fputs("<p class=\"note\">Records from ", f);
	html_puts(f, source);
	fputs(".</p>\n<div class=\"cards\">", f);
	card(f, g.records, "records", 0);
	if (o.thresholds || o.nkept) {
		card(f, g.st[ST_KEPT], "kept", g.records);
		card(f, g.st[ST_DROPPED], "dropped", g.records);
	}
	if (g.ncs)
		card(f, g.ncs, "classes", 0);
	if (g.ncl)
		card(f, g.ncl, "clusters", 0);
	if (g.ndup)
		card(f, g.ndup, "duplicates", g.records);
	if (g.nref)
		card(f, g.nref, "near copies", g.records);
	if (g.nlabel)
		card(f, g.nlabel, "label issues", g.records);
	card(f, pool.made, "thumbnails", 0);
	fputs("</div>\n", f);
	selection(f);
	fputs("<h2>Score histograms</h2>\n", f);
	histograms_svg(f);
	if (g.scored) {
		fputs("<h2>Hardest by ", f);
		html_puts(f, o.by);
		fputs(" <a href=\"ranked.html\">(more)</a></h2>\n", f);
		legend(f);
		grid(f, &g.hard, PREVIEW, V_BY);
		fputs("<h2>Easiest by ", f);
		html_puts(f, o.by);
		fputs(" <a href=\"ranked.html\">(more)</a></h2>\n", f);
		grid(f, &g.easy, PREVIEW, V_BY);
	}
	fputs("<div class=\"side\">\n", f);
	if (g.ncs)
		class_table(f);
	if (g.ncl)
		cluster_table(f);
	fputs("</div>\n", f);
	report_page_end(f, dir, "index.html");
}

static void cluster_head(FILE *f, const survey_cluster *k)
{
	fprintf(f, "%llu images, mean proto %.4g", (unsigned long long)k->n, k->nproto ?
	        k->sum_proto / (double)k->nproto : NAN);
	if (!isnan(k->sep))
		fprintf(f, ", separation %.4g", k->sep);
	if (k->st[ST_KEPT] + k->st[ST_DROPPED])
		fprintf(f, ", %llu kept, %llu dropped", (unsigned long long)k->st[ST_KEPT],
		        (unsigned long long)k->st[ST_DROPPED]);
}

static void page_cluster(size_t i)
{
	const survey_cluster *k = &g.cl[i];
	char *name = xasprintf("cluster-%lld.html", (long long)k->id);
	char *title = xasprintf("Cluster %lld", (long long)k->id);
	FILE *f = report_page(dir, name, o.title, title, nav, nnav);

	fputs("<p>", f);
	cluster_head(f, k);
	fputs(". <a href=\"clusters.html\">All clusters</a>", f);
	if (i > 0)
		fprintf(f, " | <a href=\"cluster-%lld.html\">previous</a>", (long long)g.cl[i - 1].id);
	if (i + 1 < g.ncl)
		fprintf(f, " | <a href=\"cluster-%lld.html\">next</a>", (long long)g.cl[i + 1].id);
	fputs("</p>\n", f);
	legend(f);
	if (k->n <= k->near.n) {      /* a small cluster: all of it once */
		fputs("<h2>All its images, nearest the centroid first</h2>\n", f);
		grid(f, &k->near, SIZE_MAX, V_PROTO);
	} else {
		fputs("<h2>Nearest the centroid: the easiest</h2>\n", f);
		grid(f, &k->near, SIZE_MAX, V_PROTO);
		fputs("<h2>Farthest from the centroid: the hardest</h2>\n", f);
		grid(f, &k->far, SIZE_MAX, V_PROTO);
		fputs("<h2>A seeded sample</h2>\n", f);
		grid(f, &k->sample, SIZE_MAX, V_PROTO);
	}
	report_page_end(f, dir, name);
	free(name);
	free(title);
}

static void page_clusters(void)
{
	FILE *f = report_page(dir, "clusters.html", o.title, "Clusters", nav, nnav);

	fprintf(f, "<p class=\"note\">%zu k-means clusters. Each row: the images nearest the "
	        "centroid (smallest proto), then the farthest.</p>\n", g.ncl);
	legend(f);
	for (size_t i = 0; i < g.ncl; i++) {
		const survey_cluster *k = &g.cl[i];
		int all;

		fprintf(f, "<div class=\"group\"><h3><a href=\"cluster-%lld.html\">Cluster %lld</a>: ",
		        (long long)k->id, (long long)k->id);
		cluster_head(f, k);
		fputs("</h3><div class=\"row\">\n", f);
		/* the 4 nearest, then the 4 farthest (all of a cluster of 8 or fewer) */
		all = k->n <= k->near.n && k->near.n <= 8;
		for (size_t j = 0; j < k->near.n && j < (all ? 8 : 4); j++)
			fig(f, &pool, k->near.e[j].key, &k->near.e[j], "proto", k->near.e[j].proto);
		if (!all)
			fputs("<span class=\"more\">...</span>\n", f);
		for (size_t j = all ? 0 : k->far.n < 4 ? k->far.n : 4; j-- > 0;)
			fig(f, &pool, k->far.e[j].key, &k->far.e[j], "proto", k->far.e[j].proto);
		fputs("</div></div>\n", f);
		page_cluster(i);
	}
	report_page_end(f, dir, "clusters.html");
}

static void page_ranked(void)
{
	FILE *f = report_page(dir, "ranked.html", o.title, "Hardest and easiest", nav, nnav);

	fprintf(f, "<p class=\"note\">%llu records with a numeric '", (unsigned long long)g.scored);
	html_puts(f, o.by);
	fputs("'; larger is harder.</p>\n", f);
	legend(f);
	fprintf(f, "<h2>The %zu hardest</h2>\n", g.hard.n);
	grid(f, &g.hard, SIZE_MAX, V_BY);
	fprintf(f, "<h2>The %zu easiest</h2>\n", g.easy.n);
	grid(f, &g.easy, SIZE_MAX, V_BY);
	report_page_end(f, dir, "ranked.html");
}

static void page_dups(void)
{
	FILE *f = report_page(dir, "duplicates.html", o.title, "Duplicates", nav, nnav);

	fprintf(f, "<p class=\"note\">%llu records are marked dup (cull-score --dedup): each "
	        "beside the earlier record it copies (dup_of). %zu groups, a seeded sample; the "
	        "original first.</p>\n", (unsigned long long)g.ndup, g.ndups);
	legend(f);
	for (size_t i = 0; i < g.ndups; i++) {
		const survey_dups *d = &g.dups[i];

		fputs("<div class=\"group\"><h3>", f);
		html_puts(f, d->orig);
		fprintf(f, " and %llu %s</h3><div class=\"row\">\n", (unsigned long long)d->n,
		        d->n == 1 ? "copy" : "copies");
		fig(f, &pool, d->orig, NULL, NULL, NAN);
		for (size_t k = 0; k < d->n && k < SURVEY_DUP_SHOWN; k++)
			fig(f, &pool, d->m[k].key, &d->m[k], NULL, NAN);
		if (d->n > SURVEY_DUP_SHOWN)
			fprintf(f, "<span class=\"more\">and %llu more</span>\n",
			        (unsigned long long)(d->n - SURVEY_DUP_SHOWN));
		fputs("</div></div>\n", f);
	}
	report_page_end(f, dir, "duplicates.html");
}

static void page_flags(void)
{
	FILE *f = report_page(dir, "flags.html", o.title, "Flagged samples", nav, nnav);

	legend(f);
	fprintf(f, "<h2>Near copies of the reference set</h2>\n<p class=\"note\">%llu records "
	        "have near_ref set; the %zu most similar, each beside the reference sample "
	        "(near_ref_key).</p>\n", (unsigned long long)g.nref, g.near_ref.n);
	for (size_t i = 0; i < g.near_ref.n; i++) {
		const survey_entry *e = &g.near_ref.e[i];

		fputs("<div class=\"group\"><div class=\"row\">\n", f);
		fig(f, &pool, e->key, e, "similarity", e->sim);
		if (e->note)
			fig(f, &refs, e->note, NULL, "reference", NAN);
		fputs("</div></div>\n", f);
	}
	fprintf(f, "<h2>Label issues</h2>\n<p class=\"note\">%llu records have label_issue "
	        "set; the %zu of lowest label_agreement, with the given and the suggested "
	        "class.</p>\n", (unsigned long long)g.nlabel, g.labels.n);
	grid(f, &g.labels, SIZE_MAX, V_AGREE);
	report_page_end(f, dir, "flags.html");
}

static void page_kept(void)
{
	FILE *f = report_page(dir, "kept.html", o.title, "Kept and dropped", nav, nnav);

	selection(f);
	legend(f);
	fprintf(f, "<h2>Kept: %zu of %llu, a seeded sample</h2>\n", g.samples[ST_KEPT].n,
	        (unsigned long long)g.st[ST_KEPT]);
	grid(f, &g.samples[ST_KEPT], SIZE_MAX, V_BY);
	fprintf(f, "<h2>Dropped: %zu of %llu, a seeded sample</h2>\n", g.samples[ST_DROPPED].n,
	        (unsigned long long)g.st[ST_DROPPED]);
	grid(f, &g.samples[ST_DROPPED], SIZE_MAX, V_BY);
	fprintf(f, "<h2>Dropped, by reason</h2>\n<p class=\"note\">%s</p>\n", o.nkept ?
	        "With --kept the reason is the first flag a dropped record carries (dup, "
	        "near_ref, label_issue), else the selection." : "As the thresholds decided.");
	for (int r = 0; r < N_REASONS; r++) {
		if (!g.reasons[r])
			continue;
		fprintf(f, "<h3>%s: %llu%s</h3>\n", reason_text(r), (unsigned long long)g.reasons[r],
		        g.reasons[r] == g.st[ST_DROPPED] ? ", all of them (the sample above)" : "");
		if (g.reasons[r] < g.st[ST_DROPPED])
			grid(f, &g.by_reason[r], SIZE_MAX, V_BY);
	}
	report_page_end(f, dir, "kept.html");
}

static void add_nav(int on, const char *href, const char *text)
{
	if (on)
		nav[nnav++] = (report_link){ href, text };
}

static void write_pages(void)
{
	add_nav(1, "index.html", "Overview");
	add_nav(g.ncl > 0, "clusters.html", "Clusters");
	add_nav(g.scored > 0, "ranked.html", "Hardest and easiest");
	add_nav(g.ndup > 0, "duplicates.html", "Duplicates");
	add_nav(g.nref + g.nlabel > 0, "flags.html", "Flagged");
	add_nav(g.st[ST_UNKNOWN] < g.records, "kept.html", "Kept and dropped");
	report_assets(dir, o.thumb.box);
	page_index();
	if (g.ncl)
		page_clusters();
	if (g.scored)
		page_ranked();
	if (g.ndup)
		page_dups();
	if (g.nref + g.nlabel)
		page_flags();
	if (g.st[ST_UNKNOWN] < g.records)
		page_kept();
}

/* ---- main ---- */

static const char **push(const char **v, size_t *n, const char *s)
{
	v = xreallocarray(v, *n + 1, sizeof *v);
	v[(*n)++] = s;
	return v;
}

static void options(int argc, char **argv)
{
	enum { O_CUTS = 256, O_KEPT, O_NAMES, O_REF, O_TITLE, O_PER, O_SAMPLE, O_GROUPS, O_THUMB,
	       O_FORMAT, O_FIELD, O_SEED, O_THREADS, O_VERSION };
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "records", required_argument, NULL, 'r' },
		{ "by", required_argument, NULL, 'b' },
		{ "thresholds", required_argument, NULL, O_CUTS },
		{ "kept", required_argument, NULL, O_KEPT },
		{ "class-names", required_argument, NULL, O_NAMES },
		{ "ref", required_argument, NULL, O_REF },
		{ "title", required_argument, NULL, O_TITLE },
		{ "top", required_argument, NULL, 'n' },
		{ "per-cluster", required_argument, NULL, O_PER },
		{ "sample", required_argument, NULL, O_SAMPLE },
		{ "groups", required_argument, NULL, O_GROUPS },
		{ "thumb", required_argument, NULL, O_THUMB },
		{ "format", required_argument, NULL, O_FORMAT },
		{ "image-field", required_argument, NULL, O_FIELD },
		{ "seed", required_argument, NULL, O_SEED },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "o:r:b:n:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': o.out = optarg; break;
		case 'r': o.records = optarg; break;
		case 'b': o.by = optarg; break;
		case O_CUTS: o.thresholds = optarg; break;
		case O_KEPT: o.kept = push(o.kept, &o.nkept, optarg); break;
		case O_NAMES: o.names = optarg; break;
		case O_REF: o.refs = push(o.refs, &o.nrefs, optarg); break;
		case O_TITLE: o.title = optarg; break;
		case 'n': o.top = (int)parse_int("--top", optarg, 0, 100000); break;
		case O_PER: o.per_cluster = (int)parse_int("--per-cluster", optarg, 0, 10000); break;
		case O_SAMPLE: o.sample = (int)parse_int("--sample", optarg, 0, 100000); break;
		case O_GROUPS: o.groups = (int)parse_int("--groups", optarg, 0, 100000); break;
		case O_THUMB: o.thumb.box = (int)parse_int("--thumb", optarg, 8, 1024); break;
		case O_FORMAT:
			if (strcmp(optarg, "png") && strcmp(optarg, "jpeg"))
				die(EXIT_USAGE, "--format: 'png' or 'jpeg', not '%s'", optarg);
			o.thumb.jpeg = strcmp(optarg, "jpeg") == 0;
			break;
		case O_FIELD: o.thumb.image_field = optarg; break;
		case O_SEED: o.seed = (uint64_t)parse_int("--seed", optarg, 0, INT64_MAX); break;
		case O_THREADS: parse_threads(optarg); break;
		case 'h': fputs(usage, stdout); xfclose(stdout, "<stdout>"); exit(0);
		case O_VERSION: print_version("cull-gallery", NULL);
		default: fputs(usage_short, stderr); exit(EXIT_USAGE);
		}
	}
	if (o.thresholds && o.nkept)
		die(EXIT_USAGE, "--thresholds and --kept are two ways to say what was kept: give one");
	for (int i = optind; i < argc; i++)
		if (strcmp(argv[i], "-") == 0 && (!o.records || strcmp(o.records, "-") == 0))
			die(EXIT_USAGE, "shard '-' needs the records from --records FILE");
	for (size_t i = 0; i < o.nkept; i++)
		if (strcmp(o.kept[i], "-") == 0)
			die(EXIT_USAGE, "--kept -: standard input carries the records; give a file");
}

int main(int argc, char **argv)
{
	survey_opts so;
	char err[256];

	cull_init(argv[0]);
	options(argc, argv);
	dir = report_begin(o.out);     /* early: refuses a folder it must not replace */
	if (o.names)
		read_names(o.names);
	if (o.thresholds && cuts_load(&cut, o.thresholds, err, sizeof err) < 0)
		die(EXIT_DATA, "%s", err);
	for (size_t i = 0; i < o.nkept; i++)
		read_kept(o.kept[i]);
	so = (survey_opts){ .by = o.by, .top = (size_t)o.top, .per_cluster = (size_t)o.per_cluster,
	                    .sample = (size_t)o.sample, .groups = (size_t)o.groups, .seed = o.seed,
	                    .cuts = o.thresholds ? &cut : NULL, .kept = o.nkept ? &kept_keys : NULL };
	survey_init(&g, &so);
	read_records();
	want_all();
	thumbs_make(&pool, (const char *const *)argv + optind, (size_t)(argc - optind), &o.thumb,
	            dir, "thumbs/");
	thumbs_make(&refs, o.refs, o.nrefs, &o.thumb, dir, "thumbs/ref-");
	write_pages();
	if (optind == argc && pool.keys.n)
		note("no SHARD given: the pages show no images");
	else if (pool.missing)
		warn("%llu of the %zu samples shown are not in the shards", (unsigned long long)
		     pool.missing, pool.keys.n);
	if (o.nrefs && refs.missing)
		warn("%llu of the %zu reference samples shown are not in the --ref shards",
		     (unsigned long long)refs.missing, refs.keys.n);
	note("wrote %s/index.html: %llu records, %llu thumbnails", report_commit(),
	     (unsigned long long)g.records, (unsigned long long)(pool.made + refs.made));
	return 0;
}
