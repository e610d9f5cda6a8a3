/* WebDataset shards: read tar streams as samples, write them back as tar. */
#ifndef CULL_WDS_H
#define CULL_WDS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One tar member of a sample, with its exact bytes. */
typedef struct {
	char *name;            /* full member path as stored in the archive */
	char *field;           /* lower-cased: the part of the basename after the key's dot */
	unsigned char *data;   /* its own storage, or with wds_options.borrow the reader's buffer */
	size_t size;
	size_t name_cap, field_cap, data_cap;   /* storage, reused across wds_next() calls */
	unsigned char *store;  /* the storage (data_cap bytes) */
	uint64_t at;           /* borrowed: stream offset of the data */
	int borrowed;
} wds_member;

/* A sample: the run of consecutive members that share a key. Its storage belongs to the
 * struct (zero it before first use, wds_sample_free() at the end) and is reused by the next
 * wds_next() on the same struct, so a caller that keeps several samples alive passes
 * different structs. */
typedef struct {
	char *key;             /* member path up to the first dot of the basename */
	wds_member *members;
	size_t nmembers;
	const char *source;    /* display name of the shard it came from (owned by the reader) */
	uint64_t offset;       /* byte offset of its first header in the (decompressed) shard */
	uint64_t index;        /* ordinal of the sample in the whole input, from 0 */
	size_t key_cap, members_cap;
} wds_sample;

typedef struct {
	uint64_t max_member;   /* largest member accepted, bytes (default WDS_MAX_MEMBER) */
	int check_keys;        /* warn when a key reappears after its run ended, or a member
	                        * repeats a field of its sample (default on) */
	int defer_errors;      /* wds_next() returns -1 on a broken stream instead of exiting */
	int borrow;            /* zero-copy: members of a plain (uncompressed) tar point into the
	                        * reader's buffer, valid until the next wds_next() or
	                        * wds_close(); the buffer grows to the largest sample */
	int strict;            /* a member that is not carried is a fatal error (EXIT_SKIP)
	                        * instead of a warning */
} wds_options;

#define WDS_MAX_MEMBER ((uint64_t)256 << 20)

typedef struct wds_reader wds_reader;

/* Read the given shards in order; npaths == 0 or a path of "-" reads standard input.
 * opts may be NULL for defaults. Paths are not copied: keep them alive. */
wds_reader *wds_open(const char *const *paths, size_t npaths, const wds_options *opts);
/* Next sample: 1 and *s filled, or 0 at the end of all input. A broken stream (not a
 * tar, truncated, corrupt compression, member over the limit, unreadable file) is fatal:
 * it prints one line naming the shard and byte offset and exits EXIT_DATA (EXIT_IO for a
 * file that cannot be opened or read) -- or, with defer_errors, returns -1 and the line is
 * wds_error(). Every complete sample before the break is returned first. Empty shards
 * are fine.
 *
 * Members are files. GNU sparse files (old GNU, pax 0.0, 0.1 and 1.0) are expanded to the
 * file they stand for, holes as zeros, under their real name. A hard link whose target is
 * a member of the same sample is a member of its own name with the target's bytes. Every
 * other member (a directory, symbolic link, device, FIFO, a hard link to outside its
 * sample) is skipped with a counted warning, "SHARD: skipping 'NAME' at byte N: a symbolic
 * link (not a sample member)" (the first 20 shown), or with strict is a fatal error with
 * EXIT_SKIP (the sample it would belong to is not returned). A sparse file in another GNU
 * format is a broken stream. Members named __*__ (metadata) are skipped silently. Plain
 * and compressed shards give the same samples and warnings. */
int wds_next(wds_reader *r, wds_sample *s);
/* The message of the fatal error, and its exit status in *code (may be NULL). */
const char *wds_error(const wds_reader *r, int *code);
/* The member of s whose field equals one of the comma-separated names (case-insensitive
 * on the list), or NULL. Example: wds_find(s, "jpg,jpeg,png"). */
const wds_member *wds_find(const wds_sample *s, const char *fields);
/* The class index in a .cls member: ASCII decimal, surrounding white space allowed.
 * Returns 1 and *v, or 0 when the bytes are not such a number. */
int wds_parse_cls(const wds_member *m, int64_t *v);
/* Counters for summaries. */
uint64_t wds_samples_read(const wds_reader *r);
uint64_t wds_bytes_read(const wds_reader *r);   /* compressed bytes consumed */
uint64_t wds_members_skipped(const wds_reader *r);   /* members not carried, warned about */
void wds_close(wds_reader *r);
void wds_sample_free(wds_sample *s);

/* Split a member path into its key length and field start: key = path up to the first dot
 * of its basename (directories kept); returns the length of the key, and *field points
 * after that dot (or at the terminating NUL when there is none). A leading "./" is kept
 * as part of the key. */
size_t wds_split_name(const char *path, const char **field);

/* Tar output, deterministic: USTAR headers as Python's tarfile writes them (mode 0644,
 * uid/gid 0, empty owner names, mtime 0), a pax 'x' header for a path that does not fit
 * USTAR's name/prefix fields, the archive padded to a 10240-byte record. */
typedef struct wds_writer wds_writer;

wds_writer *wds_writer_open(const char *path);      /* "-" or NULL: standard output */
wds_writer *wds_writer_fdopen(FILE *f, const char *name);
void wds_write_member(wds_writer *w, const char *name, const void *data, size_t size);
void wds_write_sample(wds_writer *w, const wds_sample *s);
uint64_t wds_writer_bytes(const wds_writer *w);
/* Write the end-of-archive blocks and close (stdout is flushed and checked). */
void wds_writer_close(wds_writer *w);

#endif
