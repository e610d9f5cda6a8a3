/* WebDataset shards: group tar members into samples (libarchive) and write deterministic tar. */
#include "wds.h"
#include "io.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- key bookkeeping: where each key's run was first seen, by 64-bit hash ---- */

typedef struct {
	uint64_t hash;         /* 0 = empty slot */
	uint64_t offset;
	uint32_t source;
} key_slot;

typedef struct {
	key_slot *slot;
	size_t cap, n;
} key_set;

static uint64_t hash_key(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;     /* FNV-1a, then a final mix */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h ? h : 1;
}

/* Insert; if the hash was already present return its slot, else NULL. */
static key_slot *key_set_add(key_set *ks, uint64_t h, uint32_t source, uint64_t offset)
{
	size_t i;

	if (2 * (ks->n + 1) > ks->cap) {
		key_set old = *ks;
		ks->cap = old.cap ? 2 * old.cap : 1024;
		ks->slot = xcalloc(ks->cap, sizeof *ks->slot);
		ks->n = 0;
		for (i = 0; i < old.cap; i++)
			if (old.slot[i].hash)
				key_set_add(ks, old.slot[i].hash, old.slot[i].source, old.slot[i].offset);
		free(old.slot);
	}
	for (i = h & (ks->cap - 1); ks->slot[i].hash; i = (i + 1) & (ks->cap - 1))
		if (ks->slot[i].hash == h)
			return &ks->slot[i];
	ks->slot[i] = (key_slot){ h, offset, source };
	ks->n++;
	return NULL;
}

/* ---- reader ---- */

struct wds_reader {
	const char *const *paths;
	size_t npaths, ipath;
	const char *stdin_path;
	wds_options opt;
	struct archive *a;     /* the open shard, or NULL between shards */
	const char *source;
	int have_pending;      /* a header was read that starts the next sample */
	char *pending_name;
	size_t pending_name_cap;
	uint64_t pending_size, pending_offset;
	uint64_t nsamples, bytes_before;
	uint64_t shard_members;    /* headers read from the open shard */
	char *error;               /* a fatal error found while finishing a sample, reported
	                              once that sample has been returned */
	key_set keys;
};

wds_reader *wds_open(const char *const *paths, size_t npaths, const wds_options *opts)
{
	static const char *const stdin_only[] = { "-" };
	wds_reader *r = xcalloc(1, sizeof *r);

	r->paths = npaths ? paths : stdin_only;
	r->npaths = npaths ? npaths : 1;
	r->opt.max_member = WDS_MAX_MEMBER;
	r->opt.check_keys = 1;
	if (opts)
		r->opt = *opts;
	if (!r->opt.max_member)
		r->opt.max_member = WDS_MAX_MEMBER;
	return r;
}

/* Record a fatal stream error; it is raised at the start of the next wds_next(). */
static int fail(wds_reader *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	free(r->error);
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	r->error = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(r->error, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return -1;
}

static int fail_archive(wds_reader *r, const char *what)
{
	const char *msg = archive_error_string(r->a);

	return fail(r, "%s: %s at byte %lld: %s", r->source, what,
	            (long long)archive_filter_bytes(r->a, 0), msg ? msg : "unknown libarchive error");
}

static void open_shard(wds_reader *r)
{
	const char *path = r->paths[r->ipath];
	int rc;

	r->source = io_name(path, 0);
	r->shard_members = 0;
	r->a = archive_read_new();
	if (!r->a)
		die(EXIT_NOMEM, "out of memory (libarchive)");
	archive_read_support_filter_all(r->a);
	archive_read_support_format_tar(r->a);
	archive_read_support_format_empty(r->a);
	/* `cat a.tar b.tar | cull-...` is one stream of two archives */
	archive_read_set_format_option(r->a, "tar", "read_concatenated_archives", "1");
	if (strcmp(path, "-") == 0)
		rc = archive_read_open_fd(r->a, 0, 1 << 20);
	else
		rc = archive_read_open_filename(r->a, path, 1 << 20);
	if (rc != ARCHIVE_OK) {
		const char *msg = archive_error_string(r->a);
		if (strcmp(path, "-") && access(path, R_OK))
			die(EXIT_IO, "%s: %s", r->source, strerror(errno));
		if (msg && strstr(msg, "Unrecognized archive format"))
			die(EXIT_DATA, "%s: not a tar archive (or an unsupported compression)",
			    r->source);
		die(EXIT_DATA, "%s: %s", r->source, msg ? msg : "unknown libarchive error");
	}
}

static void close_shard(wds_reader *r)
{
	if (!r->a)
		return;
	r->bytes_before += (uint64_t)archive_filter_bytes(r->a, -1);
	archive_read_free(r->a);
	r->a = NULL;
}

/* Lower-case copy of the part after the key, into a reusable buffer. */
static void set_str(char **dst, size_t *cap, const char *s, size_t n, int lower)
{
	size_t i;

	if (*cap < n + 1) {
		*cap = n + 1 > 2 * *cap ? n + 1 : 2 * *cap;
		*dst = xrealloc(*dst, *cap);
	}
	for (i = 0; i < n; i++)
		(*dst)[i] = lower ? (char)tolower((unsigned char)s[i]) : s[i];
	(*dst)[n] = '\0';
}

size_t wds_split_name(const char *path, const char **field)
{
	const char *base = strrchr(path, '/');
	const char *dot;

	base = base ? base + 1 : path;
	dot = strchr(base, '.');
	if (!dot) {
		*field = path + strlen(path);
		return strlen(path);
	}
	*field = dot + 1;
	return (size_t)(dot - path);
}

/* Metadata members such as __meta__.json or dir/__key__.txt. */
static int is_metadata(const char *path, size_t keylen)
{
	const char *base = path;
	size_t i, blen;

	for (i = 0; i < keylen; i++)
		if (path[i] == '/')
			base = path + i + 1;
	blen = keylen - (size_t)(base - path);
	return blen >= 4 && base[0] == '_' && base[1] == '_' && base[blen - 1] == '_' &&
	       base[blen - 2] == '_';
}

/* Read the next regular, non-metadata member header into pending: 1, 0 at the end of
 * input, -1 on a fatal error (kept in r->error). */
static int next_header(wds_reader *r)
{
	struct archive_entry *e;
	const char *name, *field;
	size_t keylen;
	int rc;

	for (;;) {
		if (!r->a) {
			if (r->ipath == r->npaths)
				return 0;
			open_shard(r);
		}
		rc = archive_read_next_header(r->a, &e);
		if (rc == ARCHIVE_EOF) {
			close_shard(r);
			r->ipath++;
			continue;
		}
		if (rc == ARCHIVE_WARN) {
			warn("%s: %s", r->source, archive_error_string(r->a));
		} else if (rc != ARCHIVE_OK) {
			return fail_archive(r, r->shard_members ? "bad tar header" :
			                    "not a tar archive (or an unsupported compression)");
		}
		r->shard_members++;
		name = archive_entry_pathname(e);
		if (!name)
			name = "";
		if (archive_entry_filetype(e) != AE_IFREG) {
			if (archive_entry_filetype(e) != AE_IFDIR)
				warn("%s: skipping non-regular member '%s' at byte %lld", r->source, name,
				     (long long)archive_read_header_position(r->a));
			continue;
		}
		if (archive_entry_hardlink(e)) {
			warn("%s: skipping hard link '%s' at byte %lld", r->source, name,
			     (long long)archive_read_header_position(r->a));
			continue;
		}
		keylen = wds_split_name(name, &field);
		if (is_metadata(name, keylen))
			continue;
		set_str(&r->pending_name, &r->pending_name_cap, name, strlen(name), 0);
		r->pending_size = archive_entry_size_is_set(e) ? (uint64_t)archive_entry_size(e) : 0;
		r->pending_offset = (uint64_t)archive_read_header_position(r->a);
		if (r->pending_size > r->opt.max_member)
			return fail(r, "%s: member '%s' at byte %llu is %llu bytes, over the limit of "
			    "%llu (--max-member)", r->source, name,
			    (unsigned long long)r->pending_offset, (unsigned long long)r->pending_size,
			    (unsigned long long)r->opt.max_member);
		r->have_pending = 1;
		return 1;
	}
}

/* Append the pending member (header already read) to s, reading its data. */
static void take_pending(wds_reader *r, wds_sample *s)
{
	wds_member *m;
	const char *field;
	size_t got = 0;
	la_ssize_t n;

	if (s->nmembers == s->members_cap) {
		size_t cap = s->members_cap ? 2 * s->members_cap : 4;
		s->members = xreallocarray(s->members, cap, sizeof *s->members);
		memset(s->members + s->members_cap, 0, (cap - s->members_cap) * sizeof *s->members);
		s->members_cap = cap;
	}
	m = &s->members[s->nmembers++];
	set_str(&m->name, &m->name_cap, r->pending_name, strlen(r->pending_name), 0);
	wds_split_name(m->name, &field);
	set_str(&m->field, &m->field_cap, field, strlen(field), 1);
	if (m->data_cap < r->pending_size || !m->data) {
		m->data_cap = r->pending_size > 64 ? r->pending_size : 64;
		free(m->data);
		m->data = xmalloc(m->data_cap);
	}
	while (got < r->pending_size) {
		n = archive_read_data(r->a, m->data + got, r->pending_size - got);
		if (n < 0) {
			fail_archive(r, "cannot read member data");
			die(EXIT_DATA, "%s", r->error);
		}
		if (n == 0)
			die(EXIT_DATA, "%s: truncated tar: member '%s' at byte %llu ends after %zu of "
			    "%llu bytes", r->source, m->name, (unsigned long long)r->pending_offset,
			    got, (unsigned long long)r->pending_size);
		got += (size_t)n;
	}
	m->size = got;
	r->have_pending = 0;
}

int wds_next(wds_reader *r, wds_sample *s)
{
	const char *field;
	size_t keylen;
	key_slot *seen;

	int rc;

	s->nmembers = 0;
	if (r->error)
		die(EXIT_DATA, "%s", r->error);
	if (!r->have_pending) {
		rc = next_header(r);
		if (rc < 0)
			die(EXIT_DATA, "%s", r->error);
		if (rc == 0)
			return 0;
	}
	keylen = wds_split_name(r->pending_name, &field);
	set_str(&s->key, &s->key_cap, r->pending_name, keylen, 0);
	s->source = r->source;
	s->offset = r->pending_offset;
	s->index = r->nsamples++;
	if (r->opt.check_keys) {
		seen = key_set_add(&r->keys, hash_key(s->key), (uint32_t)r->ipath, s->offset);
		if (seen)
			warn("%s: key '%s' at byte %llu reappears after its run ended (first seen in "
			     "%s at byte %llu); its members are not contiguous", r->source, s->key,
			     (unsigned long long)s->offset,
			     io_name(r->paths[seen->source], 0), (unsigned long long)seen->offset);
	}
	const char *src = r->source;
	take_pending(r, s);
	while (next_header(r) > 0) {
		/* a new shard always starts a new sample */
		if (r->source != src)
			break;
		keylen = wds_split_name(r->pending_name, &field);
		if (strncmp(r->pending_name, s->key, keylen) != 0 || s->key[keylen] != '\0')
			break;
		take_pending(r, s);
	}
	return 1;
}

const wds_member *wds_find(const wds_sample *s, const char *fields)
{
	const char *p, *end;
	size_t i, n;

	for (p = fields; *p; p = *end ? end + 1 : end) {
		end = strchr(p, ',');
		if (!end)
			end = p + strlen(p);
		n = (size_t)(end - p);
		for (i = 0; i < s->nmembers; i++)
			if (strlen(s->members[i].field) == n && strncasecmp(s->members[i].field, p, n) == 0)
				return &s->members[i];
	}
	return NULL;
}

uint64_t wds_samples_read(const wds_reader *r)
{
	return r->nsamples;
}

uint64_t wds_bytes_read(const wds_reader *r)
{
	return r->bytes_before + (r->a ? (uint64_t)archive_filter_bytes(r->a, -1) : 0);
}

void wds_close(wds_reader *r)
{
	if (!r)
		return;
	close_shard(r);
	free(r->pending_name);
	free(r->error);
	free(r->keys.slot);
	free(r);
}

void wds_sample_free(wds_sample *s)
{
	size_t i;

	for (i = 0; i < s->members_cap; i++) {
		free(s->members[i].name);
		free(s->members[i].field);
		free(s->members[i].data);
	}
	free(s->members);
	free(s->key);
	memset(s, 0, sizeof *s);
}

/* ---- writer ---- */

#define BLOCK 512
#define RECORD (20 * BLOCK)

struct wds_writer {
	FILE *f;
	const char *name;
	uint64_t bytes;
	char *iobuf;
};

wds_writer *wds_writer_fdopen(FILE *f, const char *name)
{
	wds_writer *w = xcalloc(1, sizeof *w);

	w->f = f;
	w->name = name;
	w->iobuf = xmalloc(1 << 20);
	setvbuf(f, w->iobuf, _IOFBF, 1 << 20);
	return w;
}

wds_writer *wds_writer_open(const char *path)
{
	return wds_writer_fdopen(xfopen(path, "wb"), io_name(path, 1));
}

static void put(wds_writer *w, const void *p, size_t n)
{
	xfwrite(p, n, w->f, w->name);
	w->bytes += n;
}

static void pad(wds_writer *w, uint64_t n)
{
	static const char zero[BLOCK];

	if (n % BLOCK)
		put(w, zero, BLOCK - n % BLOCK);
}

/* Octal field of width n: n-1 digits and a NUL, as tarfile's itn() writes them. */
static void octal(char *dst, size_t n, uint64_t v)
{
	size_t i;

	dst[n - 1] = '\0';
	for (i = n - 1; i-- > 0; v >>= 3)
		dst[i] = (char)('0' + (v & 7));
}

static void header(wds_writer *w, const char *name, size_t namelen, const char *prefix,
		   size_t prefixlen, uint64_t size, char type)
{
	unsigned char h[BLOCK];
	unsigned sum = 0;
	size_t i;

	memset(h, 0, sizeof h);
	memcpy(h, name, namelen);
	octal((char *)h + 100, 8, 0644);
	octal((char *)h + 108, 8, 0);
	octal((char *)h + 116, 8, 0);
	octal((char *)h + 124, 12, size < 077777777777ull ? size : 0);
	octal((char *)h + 136, 12, 0);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar\0" "00", 8);
	memcpy(h + 345, prefix, prefixlen);
	memset(h + 148, ' ', 8);
	for (i = 0; i < BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	put(w, h, BLOCK);
}

/* A pax record "LEN key=value\n" where LEN counts the whole record. */
static char *pax_record(const char *key, const char *value, size_t *len)
{
	size_t body = strlen(key) + strlen(value) + 3, n = body + 1, d;

	for (;;) {    /* find the fixed point of n = digits(n) + body */
		d = (size_t)snprintf(NULL, 0, "%zu", n);
		if (d + body == n)
			break;
		n = d + body;
	}
	*len = n;
	return xasprintf("%zu %s=%s\n", n, key, value);
}

void wds_write_member(wds_writer *w, const char *name, const void *data, size_t size)
{
	size_t len = strlen(name), i, plen = 0;
	const char *prefix = "";

	if (len > 100) {
		/* USTAR prefix/name split at the first '/' that makes both fit (tarfile's rule) */
		for (i = 0; i < len; i++) {
			if (name[i] == '/' && i <= 155 && len - i - 1 <= 100 && len - i - 1 > 0) {
				prefix = name;
				plen = i;
				break;
			}
		}
	}
	if ((len > 100 && !plen) || size >= 077777777777ull) {
		char *rec = NULL, *rec2 = NULL, *all;
		size_t n1 = 0, n2 = 0;
		if (len > 100 && !plen)
			rec = pax_record("path", name, &n1);
		if (size >= 077777777777ull) {
			char num[32];
			snprintf(num, sizeof num, "%llu", (unsigned long long)size);
			rec2 = pax_record("size", num, &n2);
		}
		all = xasprintf("%s%s", rec ? rec : "", rec2 ? rec2 : "");
		header(w, "././@PaxHeader", 14, "", 0, n1 + n2, 'x');
		put(w, all, n1 + n2);
		pad(w, n1 + n2);
		free(rec);
		free(rec2);
		free(all);
		header(w, name, len > 100 ? 100 : len, "", 0, size, '0');
	} else if (plen) {
		header(w, name + plen + 1, len - plen - 1, prefix, plen, size, '0');
	} else {
		header(w, name, len, "", 0, size, '0');
	}
	put(w, data, size);
	pad(w, size);
}

void wds_write_sample(wds_writer *w, const wds_sample *s)
{
	size_t i;

	for (i = 0; i < s->nmembers; i++)
		wds_write_member(w, s->members[i].name, s->members[i].data, s->members[i].size);
}

uint64_t wds_writer_bytes(const wds_writer *w)
{
	return w->bytes;
}

void wds_writer_close(wds_writer *w)
{
	static const char zero[RECORD];
	uint64_t n;

	put(w, zero, 2 * BLOCK);
	n = w->bytes % RECORD;
	if (n)
		put(w, zero, RECORD - n);
	xfclose(w->f, w->name);
	free(w->iobuf);
	free(w);
}
