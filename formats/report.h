/* Pages of cull's HTML reports: one style sheet and script, a nav bar, figures of thumbnails. */
#ifndef CULL_REPORT_H
#define CULL_REPORT_H

#include <stdio.h>

/* The pages are polyglot XHTML: well-formed XML (void elements closed, attributes
 * quoted, no entity but the five of XML and numeric ones) and valid HTML5, with no
 * external resource but the folder's own files. Text from data goes through html_puts. */

typedef struct {
	const char *href, *text;
} report_link;

/* The report's folder is built beside dir (dir.PROG-new, with a thumbs/ folder in it) and
 * moved into place whole by report_commit, so a failed run leaves dir as it was (the
 * half-built folder is removed at exit). report_begin dies with EXIT_USAGE when dir exists
 * and is neither empty nor a report this program wrote (its index.html names it as the
 * generator), and with EXIT_IO when the folder cannot be made; it returns the folder to
 * write into. report_commit moves it in place of dir (an older report there is removed)
 * and returns dir as given, without trailing slashes. */
const char *report_begin(const char *dir);
const char *report_commit(void);

/* Write style.css (thumbnails shown in box x box pixels) and report.js into dir (dies with
 * EXIT_IO naming the file). */
void report_assets(const char *dir, int box);

/* Create dir/name and write the head (the title "heading - site"), the nav bar (the link
 * whose href is name is marked as the current page) and the heading as h1. */
FILE *report_page(const char *dir, const char *name, const char *site, const char *heading,
                  const report_link *nav, int nnav);
/* Close the page, checking every write (dies with EXIT_IO naming dir/name). */
void report_page_end(FILE *f, const char *dir, const char *name);

/* A figure: the thumbnail src (NULL: a box saying why there is none, in missing) of w x h
 * pixels shown in the box, a CSS class for its frame ("kept", "dropped" or NULL), and the
 * key as the first caption line and as alt and title text. Write more caption lines
 * (<span> elements) before report_figure_end. */
void report_figure(FILE *f, const char *src, int w, int h, int box, const char *cls,
                   const char *key, const char *missing);
void report_figure_end(FILE *f);

#endif
