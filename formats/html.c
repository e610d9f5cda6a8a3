/* HTML output from untrusted bytes: escaped text and safe file names for keys and labels. */
#include "html.h"
#include "io.h"

#include <stdlib.h>
#include <string.h>

/* The length of the well-formed UTF-8 sequence of a character XML and HTML accept as text
 * at p (at most n bytes), or 0. ASCII is handled by the caller. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0], lo = 0x80, hi = 0xBF;
	size_t len, i;

	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4;
	else
		return 0;
	if (c == 0xE0)
		lo = 0xA0;              /* overlong */
	else if (c == 0xED)
		hi = 0x9F;              /* surrogates */
	else if (c == 0xF0)
		lo = 0x90;              /* overlong */
	else if (c == 0xF4)
		hi = 0x8F;              /* past U+10FFFF */
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	if (c == 0xC2 && p[1] < 0xA0)
		return 0;               /* C1 controls */
	if (c == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF))
		return 0;               /* U+FFFE, U+FFFF: not characters */
	return len;
}

void html_putn(FILE *f, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;

	while (i < n) {
		unsigned c = p[i];

		switch (c) {
		case '&': fputs("&amp;", f); i++; continue;
		case '<': fputs("&lt;", f); i++; continue;
		case '>': fputs("&gt;", f); i++; continue;
		case '"': fputs("&quot;", f); i++; continue;
		case '\'': fputs("&#39;", f); i++; continue;
		}
		if (c >= 0x20 && c < 0x7F) {
			putc((int)c, f);
			i++;
		} else if (c >= 0x80 && (k = utf8_len(p + i, n - i)) > 0) {
			fwrite(p + i, 1, k, f);
			i += k;
		} else {
			fprintf(f, "\\x%02X", c);
			i++;
		}
	}
}

void html_puts(FILE *f, const char *s)
{
	html_putn(f, s, strlen(s));
}

uint64_t html_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ULL;
	return h;
}

char *html_file_name(const char *prefix, const char *key, const char *ext)
{
	size_t np = strlen(prefix), ne = strlen(ext), i, k = 0;
	char *name = xmalloc(np + 40 + 1 + 16 + ne + 1);

	memcpy(name, prefix, np);
	for (i = 0; key[i] && k < 40; i++, k++) {
		unsigned char c = (unsigned char)key[i];

		name[np + k] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		               (c >= '0' && c <= '9') || c == '-' ? (char)c : '_';
	}
	snprintf(name + np + k, 1 + 16 + ne + 1, "-%016llx%s",
	         (unsigned long long)html_hash(key), ext);
	return name;
}
