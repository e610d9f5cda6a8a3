/* Pages of cull's HTML reports: one style sheet and script, a nav bar, figures of thumbnails. */
#include "report.h"
#include "html.h"
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char style[] =
	"/* cull reports */\n"
	":root { --kept: #2f855a; --dropped: #c53030; --unknown: #a0aec0; --ink: #1a202c;\n"
	"  --muted: #5a6778; --line: #dde3ea; --bg: #f4f6f9; --cell: %dpx; --box: %dpx; }\n"
	"* { box-sizing: border-box; }\n"
	"body { margin: 0; color: var(--ink); background: var(--bg);\n"
	"  font: 14px/1.45 system-ui, -apple-system, \"Segoe UI\", Roboto, \"DejaVu Sans\", sans-serif; }\n"
	"nav { position: sticky; top: 0; z-index: 1; display: flex; flex-wrap: wrap; gap: 4px;\n"
	"  align-items: center; padding: 8px 24px; background: #1f3a56; }\n"
	"nav .site { color: #fff; font-weight: 600; margin-right: 18px; }\n"
	"nav a { color: #d6e2ee; text-decoration: none; padding: 4px 10px; border-radius: 4px; }\n"
	"nav a:hover { background: #2d5074; }\n"
	"nav a.here { background: #3f6b96; color: #fff; }\n"
	"main { padding: 4px 24px 40px; max-width: 1360px; }\n"
	"h1 { font-size: 22px; margin: 18px 0 6px; }\n"
	"h2 { font-size: 17px; margin: 30px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }\n"
	"h3 { font-size: 14px; margin: 18px 0 8px; color: var(--muted); }\n"
	"a { color: #2b6cb0; }\n"
	".note { color: var(--muted); }\n"
	".cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }\n"
	".card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 118px; }\n"
	".card b { display: block; font-size: 20px; }\n"
	".card span { color: var(--muted); font-size: 12px; }\n"
	".grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(var(--cell), 1fr)); gap: 10px; }\n"
	".row { display: flex; gap: 10px; overflow-x: auto; padding-bottom: 2px; }\n"
	".row figure { flex: 0 0 var(--cell); }\n"
	".group { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; margin-bottom: 12px; }\n"
	".group h3 { margin: 0 0 8px; }\n"
	".group .more { align-self: center; color: var(--muted); padding: 0 8px; }\n"
	"figure { margin: 0; min-width: 0; background: #fff; border: 1px solid var(--line);\n"
	"  border-top: 4px solid var(--unknown); border-radius: 4px; padding: 6px; }\n"
	"figure.kept { border-top-color: var(--kept); }\n"
	"figure.dropped { border-top-color: var(--dropped); }\n"
	"figure .img { display: flex; align-items: center; justify-content: center; height: var(--box); }\n"
	"figure img.px { image-rendering: pixelated; }\n"
	"figure .noimg { font-size: 11px; color: var(--muted); text-align: center; }\n"
	"figcaption { margin-top: 5px; font-size: 11px; line-height: 1.35; }\n"
	"figcaption span { display: block; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }\n"
	"figcaption .key { font-family: ui-monospace, \"DejaVu Sans Mono\", monospace; }\n"
	"figcaption .lab { color: #2c5282; font-weight: 600; }\n"
	"figcaption .num, figcaption .st { color: var(--muted); }\n"
	"figcaption .alt { color: var(--dropped); font-weight: 600; }\n"
	".legend span { display: inline-block; margin-right: 14px; }\n"
	".legend i { display: inline-block; width: 12px; height: 12px; margin-right: 5px; vertical-align: -1px; border-radius: 2px; }\n"
	"i.kept { background: var(--kept); } i.dropped { background: var(--dropped); } i.unknown { background: var(--unknown); }\n"
	"table { border-collapse: collapse; background: #fff; border: 1px solid var(--line); margin-bottom: 8px; }\n"
	"th, td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }\n"
	"th { background: #edf1f6; font-weight: 600; }\n"
	"table.sort th { cursor: pointer; user-select: none; }\n"
	"th[data-dir=asc]::after { content: \" \\25B2\"; } th[data-dir=desc]::after { content: \" \\25BC\"; }\n"
	"th.l, td.l { text-align: left; }\n"
	".share { display: inline-block; width: 64px; height: 10px; background: #f1c6c6; vertical-align: middle; }\n"
	".share b { display: block; height: 100%%; background: var(--kept); }\n"
	".scroll { max-height: 560px; overflow-y: auto; display: inline-block; }\n"
	".side { display: flex; flex-wrap: wrap; gap: 0 40px; align-items: flex-start; }\n"
	".hists { display: flex; flex-wrap: wrap; gap: 12px; }\n"
	".hists svg { flex: 1 1 540px; max-width: 640px; height: auto; background: #fff;\n"
	"  border: 1px solid var(--line); border-radius: 6px; }\n"
	"svg.hist text { font: 11px system-ui, \"DejaVu Sans\", sans-serif; fill: #4a5568; }\n"
	"svg.hist text.head { font-size: 13px; font-weight: 600; fill: var(--ink); }\n"
	"svg.hist .s0 { fill: var(--kept); } svg.hist .s1 { fill: #e07b7b; } svg.hist .s2 { fill: #9fb3c8; }\n"
	"svg.hist line.axis { stroke: #4a5568; } svg.hist line.grid { stroke: #e2e8f0; }\n"
	"svg.hist line.mark { stroke: #9b2c2c; stroke-width: 2; stroke-dasharray: 5 3; }\n"
	"svg.hist line.ticks { stroke: #9b2c2c; stroke-opacity: 0.55; }\n"
	"svg.hist text.mark { fill: #9b2c2c; font-weight: 600; }\n";

static const char script[] =
	"// cull reports: sort a table with class \"sort\" by the column whose header is clicked,\n"
	"// and say on the console which images did not load (where a headless test looks).\n"
	"\"use strict\";\n"
	"function broken(img) {\n"
	"  img.classList.add(\"broken\");\n"
	"  console.error(\"image did not load: \" + img.getAttribute(\"src\"));\n"
	"}\n"
	"document.querySelectorAll(\"img\").forEach(function (img) {\n"
	"  if (!img.complete)\n"
	"    img.addEventListener(\"error\", function () { broken(img); });\n"
	"  else if (img.naturalWidth === 0)\n"
	"    broken(img);\n"
	"});\n"
	"document.querySelectorAll(\"table.sort\").forEach(function (t) {\n"
	"  t.querySelectorAll(\"th\").forEach(function (th) {\n"
	"    th.addEventListener(\"click\", function () {\n"
	"      var i = th.cellIndex, body = t.tBodies[0];\n"
	"      var rows = Array.prototype.slice.call(body.rows);\n"
	"      var asc = th.getAttribute(\"data-dir\") !== \"asc\";\n"
	"      rows.sort(function (a, b) {\n"
	"        var x = a.cells[i].getAttribute(\"data-v\") || a.cells[i].textContent;\n"
	"        var y = b.cells[i].getAttribute(\"data-v\") || b.cells[i].textContent;\n"
	"        var nx = parseFloat(x), ny = parseFloat(y);\n"
	"        var c = !isNaN(nx) && !isNaN(ny) ? nx - ny : x.localeCompare(y);\n"
	"        return asc ? c : -c;\n"
	"      });\n"
	"      t.querySelectorAll(\"th\").forEach(function (h) { h.removeAttribute(\"data-dir\"); });\n"
	"      th.setAttribute(\"data-dir\", asc ? \"asc\" : \"desc\");\n"
	"      rows.forEach(function (r) { body.appendChild(r); });\n"
	"    });\n"
	"  });\n"
	"});\n";

static void write_text(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = xfopen(path, "w");

	xfwrite(text, strlen(text), f, path);
	xfclose(f, path);
	free(path);
}

void report_assets(const char *dir, int box)
{
	char *css = xasprintf(style, box + 26, box);

	write_text(dir, "style.css", css);
	write_text(dir, "report.js", script);
	free(css);
}

FILE *report_page(const char *dir, const char *name, const char *site, const char *heading,
                  const report_link *nav, int nnav)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = xfopen(path, "w");

	free(path);
	fputs("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n"
	      "<meta charset=\"utf-8\"/>\n", f);
	fprintf(f, "<meta name=\"generator\" content=\"%s\"/>\n", progname);
	fputs("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>", f);
	html_puts(f, heading);
	fputs(" - ", f);
	html_puts(f, site);
	fputs("</title>\n<link rel=\"stylesheet\" href=\"style.css\"/>\n"
	      "<script src=\"report.js\" defer=\"defer\"></script>\n</head>\n<body>\n<nav><span "
	      "class=\"site\">", f);
	html_puts(f, site);
	fputs("</span>", f);
	for (int i = 0; i < nnav; i++) {
		fprintf(f, "<a href=\"%s\"%s>", nav[i].href, strcmp(nav[i].href, name) == 0 ?
		        " class=\"here\"" : "");
		html_puts(f, nav[i].text);
		fputs("</a>", f);
	}
	fputs("</nav>\n<main>\n<h1>", f);
	html_puts(f, heading);
	fputs("</h1>\n", f);
	return f;
}

void report_page_end(FILE *f, const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);

	fputs("</main>\n</body>\n</html>\n", f);
	xfclose(f, path);
	free(path);
}

void report_figure(FILE *f, const char *src, int w, int h, int box, const char *cls,
                   const char *key, const char *missing)
{
	fputs(cls ? "<figure class=\"" : "<figure>", f);
	if (cls)
		fprintf(f, "%s\">", cls);
	fputs("<div class=\"img\">", f);
	if (src) {
		/* shown fitted in the box: small images enlarged, without smoothing */
		int big = w > h ? w : h, dw = w, dh = h;

		if (big != box && big > 0) {
			dw = (int)((double)w * box / big + 0.5);
			dh = (int)((double)h * box / big + 0.5);
		}
		fprintf(f, "<img src=\"%s\" width=\"%d\" height=\"%d\"%s alt=\"", src,
		        dw < 1 ? 1 : dw, dh < 1 ? 1 : dh, big < box ? " class=\"px\"" : "");
		html_puts(f, key);
		fputs("\" title=\"", f);
		html_puts(f, key);
		fputs("\"/>", f);
	} else {
		fputs("<span class=\"noimg\">", f);
		html_puts(f, missing ? missing : "no image");
		fputs("</span>", f);
	}
	fputs("</div><figcaption><span class=\"key\" title=\"", f);
	html_puts(f, key);
	fputs("\">", f);
	html_puts(f, key);
	fputs("</span>", f);
}

void report_figure_end(FILE *f)
{
	fputs("</figcaption></figure>\n", f);
}

/* ---- the folder: built beside it, then swapped in whole ---- */

static char *out_dir, *tmp_dir, *old_dir;
static int committed;

/* Remove a folder and what it holds (links removed, not followed). */
static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;

	while (d && (e = readdir(d))) {
		char *p;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		p = xasprintf("%s/%s", dir, e->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rm_tree(p);
		else
			unlink(p);
		free(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

static void cleanup(void)
{
	if (tmp_dir && !committed)
		rm_tree(tmp_dir);
}

/* An empty folder, or one whose index.html this program wrote. */
static int is_report(const char *dir)
{
	char *p = xasprintf("%s/index.html", dir), head[512], *meta;
	FILE *f = fopen(p, "rb");
	size_t n = f ? fread(head, 1, sizeof head - 1, f) : 0;
	DIR *d;
	struct dirent *e;
	int entries = 0;

	free(p);
	if (f) {
		fclose(f);
		head[n] = 0;
		meta = xasprintf("<meta name=\"generator\" content=\"%s\"/>", progname);
		n = strstr(head, meta) != NULL;
		free(meta);
		return (int)n;
	}
	if (!(d = opendir(dir)))
		return 0;
	while ((e = readdir(d)))
		entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return entries == 0;
}

const char *report_begin(const char *dir)
{
	struct stat st;
	char *out = xstrdup(dir), *t;
	size_t n = strlen(out);

	while (n > 1 && out[n - 1] == '/')
		out[--n] = 0;
	out_dir = out;
	if (lstat(out, &st) == 0 && (!S_ISDIR(st.st_mode) || !is_report(out)))
		die(EXIT_USAGE, "%s: not replacing it: it is not a folder %s wrote (no index.html "
		    "of one, and not empty); remove it or write elsewhere", out, progname);
	tmp_dir = xasprintf("%s.%s-new", out, progname);
	old_dir = xasprintf("%s.%s-old", out, progname);
	rm_tree(tmp_dir);              /* what a killed run left */
	rm_tree(old_dir);
	t = xasprintf("%s/thumbs", tmp_dir);
	if (mkdir(tmp_dir, 0777) != 0 || mkdir(t, 0777) != 0)
		die(EXIT_IO, "%s: cannot create the folder: %s", tmp_dir, strerror(errno));
	free(t);
	atexit(cleanup);
	return tmp_dir;
}

const char *report_commit(void)
{
	struct stat st;
	int had = lstat(out_dir, &st) == 0;

	if (had && rename(out_dir, old_dir) != 0)
		die(EXIT_IO, "%s: cannot move the old gallery aside: %s", out_dir, strerror(errno));
	if (rename(tmp_dir, out_dir) != 0) {
		int e = errno;

		if (had)
			rename(old_dir, out_dir);
		die(EXIT_IO, "%s: cannot move the new gallery in place: %s", out_dir, strerror(e));
	}
	committed = 1;
	if (had)
		rm_tree(old_dir);
	return out_dir;
}
