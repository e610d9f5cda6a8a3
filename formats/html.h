/* HTML output from untrusted bytes: escaped text and safe file names for keys and labels. */
#ifndef CULL_HTML_H
#define CULL_HTML_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Write the n bytes at s as HTML text, safe inside elements and quoted attribute values:
 * & < > " ' become character references; printable ASCII and well-formed UTF-8 (no
 * surrogates, no U+FFFE/U+FFFF, no C1 controls) pass through; every other byte (controls,
 * DEL, a byte that is not part of well-formed UTF-8) becomes the visible text \xNN. The
 * result is well-formed XML text as well, whatever the input. Errors show in ferror(f). */
void html_putn(FILE *f, const char *s, size_t n);
void html_puts(FILE *f, const char *s);

/* 64-bit FNV-1a of a NUL-terminated string. */
uint64_t html_hash(const char *s);

/* A file name for a key (malloc'd): prefix, then the key's bytes in [A-Za-z0-9_-] (others
 * become '_'; at most 40 of them), '-', the 16 hex digits of html_hash(key), and ext. Safe
 * in a URL, on any file system and in HTML without escaping; distinct keys get distinct
 * names unless their 64-bit hashes collide. */
char *html_file_name(const char *prefix, const char *key, const char *ext);

#endif
