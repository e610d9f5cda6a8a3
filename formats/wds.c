/* WebDataset shards: group tar members into samples (libarchive) and write deterministic tar. */
#include "wds.h"
#include "io.h"
#include "tar.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- key bookkeeping ----
 * Every run's key is appended as (hash, position, name); at the end of the input the list is
 * sorted and a hash that occurs twice is a key whose members were not contiguous. This
 * costs 24 bytes a sample and sequential writes, where a hash table probed per sample
 * was a cache miss each time (a third of the reading time on small samples). */

typedef struct {
	uint64_t hash;
	uint64_t offset;
	uint64_t name;         /* offset of the key in the names arena */
	uint32_t source;
} key_pos;

typedef struct {
	key_pos *v;
	size_t n, cap;
	char *names;
	size_t names_len, names_cap;
	int unordered;         /* some key was not greater than the one before it */
} key_list;

static uint64_t hash_key(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;     /* FNV-1a, then a final mix */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static void key_list_add(key_list *kl, const char *key, uint32_t source, uint64_t offset)
{
	size_t len = strlen(key) + 1;

	if (kl->n == kl->cap) {
		kl->cap = kl->cap ? 2 * kl->cap : 4096;
		kl->v = xreallocarray(kl->v, kl->cap, sizeof *kl->v);
	}
	if (kl->names_len + len > kl->names_cap) {
		kl->names_cap = kl->names_cap ? 2 * kl->names_cap : 1 << 16;
		if (kl->names_cap < kl->names_len + len)
			kl->names_cap = kl->names_len + len;
		kl->names = xrealloc(kl->names, kl->names_cap);
	}
	/* keys that only ever increase cannot repeat: then no sort is needed at the end */
	if (kl->n && strcmp(key, kl->names + kl->v[kl->n - 1].name) <= 0)
		kl->unordered = 1;
	memcpy(kl->names + kl->names_len, key, len);
	kl->v[kl->n++] = (key_pos){ hash_key(key), offset, kl->names_len, source };
	kl->names_len += len;
}

static int key_pos_cmp(const void *a, const void *b)
{
	const key_pos *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	if (x->source != y->source)
		return x->source < y->source ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* ---- reader ---- */

struct wds_reader {
	const char *const *paths;
	size_t npaths, ipath;
	const char *stdin_path;
	wds_options opt;
	int open;              /* a shard is open */
	int fd;
	struct archive *a;     /* libarchive for compressed shards, NULL when native */
	/* plain tar is parsed here directly (libarchive's per-header cost dominates on
	 * shards of small samples); the buffer also feeds libarchive the bytes sniffed */
	unsigned char *buf;
	size_t cap, lo, hi;    /* valid bytes are buf[lo, hi) */
	uint64_t pos;          /* stream offset of buf[lo] */
	uint64_t pin;          /* borrow: the stream offset from which bytes stay in buf (the
	                          sample's first member data), UINT64_MAX when none */
	int eof;
	tar_entry ent;         /* native: the entry whose header was read last */
	int pax;               /* native: libarchive would take the archive for pax here */
	char *body;            /* native: the body of the last extension header */
	size_t body_cap;
	const char *source;
	int have_pending;      /* a header was read that starts the next sample */
	int pending_kind;      /* TAR_REGULAR, or TAR_HARDLINK with pending_link its target */
	int pending_sparse;    /* native: a GNU sparse file, expanded from r->ent's map */
	char *pending_name, *pending_link;
	size_t pending_name_cap, pending_link_cap, pending_len, pending_keylen, pending_field;
	uint64_t pending_size, pending_offset;
	uint64_t nsamples, bytes_before;
	uint64_t skipped;          /* members not carried (directories, links, devices...) */
	char *strict_name;         /* the member that stopped a strict reader */
	size_t strict_name_cap;
	uint64_t shard_members;    /* headers read from the open shard */
	char *error;               /* a fatal error found while finishing a sample, reported
	                              once that sample has been returned */
	int error_code;
	key_list keys;
	int keys_reported;
};

wds_reader *wds_open(const char *const *paths, size_t npaths, const wds_options *opts)
{
	static const char *const stdin_only[] = { "-" };
	wds_reader *r = xcalloc(1, sizeof *r);

	r->pin = UINT64_MAX;
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

/* Record a fatal stream error (the first one wins); wds_next() raises it once the
 * samples before it have been returned. */
static int failc(wds_reader *r, int code, const char *fmt, va_list ap0)
{
	va_list ap;
	int n;

	if (r->error)
		return -1;
	r->error_code = code;
	va_copy(ap, ap0);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	r->error = xmalloc((size_t)n + 1);
	vsnprintf(r->error, (size_t)n + 1, fmt, ap0);
	return -1;
}

static int fail(wds_reader *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	failc(r, EXIT_DATA, fmt, ap);
	va_end(ap);
	return -1;
}

static int fail_io(wds_reader *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	failc(r, EXIT_IO, fmt, ap);
	va_end(ap);
	return -1;
}

static int fail_skip(wds_reader *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	failc(r, EXIT_SKIP, fmt, ap);
	va_end(ap);
	return -1;
}

static int fail_archive(wds_reader *r, const char *what)
{
	const char *msg = archive_error_string(r->a);

	return fail(r, "%s: %s at byte %lld: %s", r->source, what,
	            (long long)archive_filter_bytes(r->a, 0), msg ? msg : "unknown libarchive error");
}

/* Make at least `need` bytes available at buf[lo] unless the input ends first; returns
 * the number available. */
#define READ_CHUNK ((size_t)128 << 10)

static size_t fill(wds_reader *r, size_t need)
{
	ssize_t n;
	/* bytes before buf[keep] are done with: buf[lo] and on, or from the pin on */
	size_t keep = r->pin == UINT64_MAX ? r->lo : (size_t)(r->pin - (r->pos - r->lo));

	if (r->hi - r->lo >= need || r->eof)
		return r->hi - r->lo;
	if (keep) {
		memmove(r->buf, r->buf + keep, r->hi - keep);
		r->hi -= keep;
		r->lo -= keep;
	}
	if (r->lo + need > r->cap) {
		r->cap = r->lo + need > 2 * r->cap ? r->lo + need : 2 * r->cap;
		r->buf = xrealloc(r->buf, r->cap);
	}
	while (r->hi - r->lo < need) {
		/* reads of 128 KiB, as cat makes: the bytes are parsed while still in the cache */
		size_t chunk = r->cap - r->hi;

		if (chunk > READ_CHUNK && need - (r->hi - r->lo) <= READ_CHUNK)
			chunk = READ_CHUNK;
		n = read(r->fd, r->buf + r->hi, chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fail_io(r, "%s: read error at byte %llu: %s", r->source,
			        (unsigned long long)(r->pos + (r->hi - r->lo)), strerror(errno));
			n = 0;
		}
		if (n == 0) {
			r->eof = 1;
			break;
		}
		r->hi += (size_t)n;
	}
	return r->hi - r->lo;
}

static void consume(wds_reader *r, size_t n)
{
	r->lo += n;
	r->pos += n;
}

/* libarchive's read callback: first the bytes already sniffed, then the descriptor. */
static la_ssize_t la_read(struct archive *a, void *data, const void **out)
{
	wds_reader *r = data;
	ssize_t n;

	(void)a;
	if (r->hi > r->lo) {
		*out = r->buf + r->lo;
		n = (ssize_t)(r->hi - r->lo);
		r->lo = r->hi = 0;
		return n;
	}
	do
		n = read(r->fd, r->buf, r->cap);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		archive_set_error(a, errno, "read error: %s", strerror(errno));
	*out = r->buf;
	return n;
}

static int open_shard(wds_reader *r)
{
	const char *path = r->paths[r->ipath];
	int rc;

	r->source = io_name(path, 0);
	r->shard_members = 0;
	r->fd = strcmp(path, "-") ? open(path, O_RDONLY) : 0;
	if (r->fd < 0)
		return fail_io(r, "%s: %s", r->source, strerror(errno));
	if (!r->buf) {
		r->cap = 2 * READ_CHUNK;
		r->buf = xmalloc(r->cap);
	}
	r->lo = r->hi = 0;
	r->pos = 0;
	r->eof = 0;
	r->pax = 0;
	r->open = 1;
	r->a = NULL;
	fill(r, 512);
	if (r->error)
		return -1;
	if (r->hi == 0 || (r->hi >= 512 && tar_header_ok(r->buf) && !getenv("CULL_TAR_LIBARCHIVE")))
		return 0;             /* plain tar (or nothing at all): parsed natively */
	r->a = archive_read_new();
	if (!r->a)
		die(EXIT_NOMEM, "out of memory (libarchive)");
	archive_read_support_filter_all(r->a);
	archive_read_support_format_tar(r->a);
	archive_read_support_format_empty(r->a);
	/* `cat a.tar b.tar | cull-...` is one stream of two archives */
	archive_read_set_format_option(r->a, "tar", "read_concatenated_archives", "1");
	rc = archive_read_open(r->a, r, NULL, la_read, NULL);
	if (rc != ARCHIVE_OK) {
		const char *msg = archive_error_string(r->a);
		if (msg && strstr(msg, "Unrecognized archive format"))
			return fail(r, "%s: not a tar archive (or an unsupported compression)",
			            r->source);
		return fail(r, "%s: cannot read the first tar header at byte 0: %s", r->source,
		            msg ? msg : "unknown libarchive error");
	}
	return 0;
}

static void close_shard(wds_reader *r)
{
	if (!r->open)
		return;
	if (r->a) {
		r->bytes_before += (uint64_t)archive_filter_bytes(r->a, -1);
		archive_read_free(r->a);
		r->a = NULL;
	} else {
		r->bytes_before += r->pos + (r->hi - r->lo);
	}
	if (r->fd > 0)
		close(r->fd);
	r->open = 0;
}

/* Lower-case copy of the part after the key, into a reusable buffer. */
static void set_str(char **dst, size_t *cap, const char *s, size_t n, int lower)
{
	size_t i;

	if (*cap < n + 1) {
		*cap = n + 1 > 2 * *cap ? n + 1 : 2 * *cap;
		*dst = xrealloc(*dst, *cap);
	}
	if (!lower)
		memcpy(*dst, s, n);
	else
		for (i = 0; i < n; i++)    /* ASCII only, whatever the locale */
			(*dst)[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + ('a' - 'A') : s[i]);
	(*dst)[n] = '\0';
}

size_t wds_split_name(const char *path, const char **field)
{
	const char *p, *dot = NULL;

	/* one pass: the first dot after the last slash (names are short: no library calls) */
	for (p = path; *p; p++)
		if (*p == '/')
			dot = NULL;
		else if (*p == '.' && !dot)
			dot = p;
	if (!dot) {
		*field = p;
		return (size_t)(p - path);
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

#define PADDED(n) (((uint64_t)(n) + 511) & ~(uint64_t)511)

/* Skip exactly n bytes of the stream (member data is skipped as PADDED(size)). */
static int skip_data(wds_reader *r, uint64_t n, uint64_t at)
{
	size_t k;

	while (n) {
		k = fill(r, 1);
		if (!k)
			return fail(r, "%s: truncated tar: the member at byte %llu ends early",
			            r->source, (unsigned long long)at);
		k = k < n ? k : (size_t)n;
		consume(r, k);
		n -= k;
	}
	return 0;
}

/* Read an extension header's body (n bytes, at most 1 MiB as libarchive allows) into r->body. */
static int read_body(wds_reader *r, uint64_t n, uint64_t at)
{
	if (n > (1 << 20))
		return fail(r, "%s: tar extension header at byte %llu is %llu bytes, too large",
		            r->source, (unsigned long long)at, (unsigned long long)n);
	if (fill(r, (size_t)n) < n)
		return fail(r, "%s: truncated tar: header at byte %llu ends early", r->source,
		            (unsigned long long)at);
	set_str(&r->body, &r->body_cap, (const char *)r->buf + r->lo, (size_t)n, 0);
	return skip_data(r, PADDED(n), at);
}

static int bad_map(wds_reader *r, uint64_t at)
{
	return fail(r, "%s: member '%s' at byte %llu has a malformed GNU sparse map", r->source,
	            r->ent.name, (unsigned long long)at);
}

/* GNU sparse 1.0: the map at the start of the data, decimal lines padded to a block. */
static int read_map10(wds_reader *r, uint64_t at)
{
	tar_entry *e = &r->ent;
	uint64_t have = 512, stored = PADDED(e->size);
	size_t n;
	int rc;

	/* the map's lines are parsed as they arrive, in a window that doubles */
	for (;;) {
		if (have > stored)
			return bad_map(r, at);
		if (fill(r, (size_t)have) < have)
			return fail(r, "%s: truncated tar: the member at byte %llu ends early", r->source,
			            (unsigned long long)at);
		rc = tar_entry_map10(e, r->buf + r->lo, (size_t)(have < e->size ? have : e->size));
		if (rc < 0 || (rc == 0 && have == stored))
			return bad_map(r, at);
		if (rc > 0)
			break;
		have = 2 * have < stored ? 2 * have : stored;
	}
	n = (size_t)PADDED(e->map10_pos);
	if (n > e->size)
		return bad_map(r, at);
	consume(r, n);
	e->size -= n;
	return 0;
}

/* The native path of next_header(): 1 with the next entry in r->ent (old GNU and 1.0 sparse
 * maps read), 0 at the end of this shard, -1 on error. *at is where the previous entry
 * ended, extension headers and end-of-archive blocks included, as libarchive counts. */
static int native_header(wds_reader *r, uint64_t *at)
{
	tar_entry *e = &r->ent;
	const unsigned char *h;
	uint64_t size, here;
	size_t n;
	int type, ext = 0;

	tar_entry_reset(e);
	*at = r->pos;
	for (;;) {
		n = fill(r, 512);
		if (n == 0 && !ext)
			return 0;
		if (n < 512)
			return fail(r, n ? "%s: truncated tar at byte %llu (a partial header)" :
			            "%s: truncated tar at byte %llu (an extension header without its member)",
			            r->source, (unsigned long long)r->pos);
		h = r->buf + r->lo;
		if (tar_block_zero(h)) {    /* end-of-archive blocks; another archive may follow */
			consume(r, 512);
			continue;
		}
		if (!tar_header_ok(h))
			return fail(r, r->shard_members ? "%s: bad tar header (checksum) at byte %llu" :
			            "%s: not a tar archive (or an unsupported compression) at byte %llu",
			            r->source, (unsigned long long)r->pos);
		r->shard_members++;
		type = h[156];
		switch (type) {
		case 'V':                   /* a volume label: libarchive ignores its size */
			consume(r, 512);
			continue;
		case 'x': case 'X': case 'g': case 'A': case 'L': case 'K':
			size = tar_number(h + 124, 12);
			here = r->pos;
			consume(r, 512);
			if (read_body(r, size, here) < 0)
				return -1;
			if ((type == 'x' || type == 'X') && tar_entry_pax(e, r->body, (size_t)size) < 0)
				return fail(r, "%s: malformed pax header at byte %llu", r->source,
				            (unsigned long long)here);
			if (type == 'L' || type == 'K')
				tar_entry_longname(e, type, r->body, (size_t)size);
			else
				r->pax = 1;
			ext = 1;
			continue;
		}
		r->pax = tar_entry_header(e, h, r->pax);
		consume(r, 512);
		while (e->extended) {       /* old GNU sparse: more runs in extension blocks */
			if (fill(r, 512) < 512)
				return fail(r, "%s: truncated tar at byte %llu (a sparse extension block)",
				            r->source, (unsigned long long)r->pos);
			e->extended = tar_entry_extension(e, r->buf + r->lo);
			consume(r, 512);
		}
		if (e->map10 && read_map10(r, *at) < 0)
			return -1;
		if (e->sparse && tar_entry_check_map(e) < 0)
			return bad_map(r, *at);
		return 1;
	}
}

/* The libarchive path of next_header(): 1 with the next entry's name, kind, hard link
 * target, size (a sparse file's whole size) and position, 0 at the end of the shard. */
static int la_header(wds_reader *r, const char **name, int *kind, const char **link,
		     uint64_t *size, uint64_t *at)
{
	static const int kinds[][2] = {
		{ AE_IFREG, TAR_REGULAR }, { AE_IFDIR, TAR_DIR }, { AE_IFLNK, TAR_SYMLINK },
		{ AE_IFCHR, TAR_CHAR }, { AE_IFBLK, TAR_BLOCK }, { AE_IFIFO, TAR_FIFO },
		{ AE_IFSOCK, TAR_SOCKET },
	};
	struct archive_entry *e;
	const char *msg;
	int rc, bad_sparse = 0;
	size_t i;

	rc = archive_read_next_header(r->a, &e);
	if (rc == ARCHIVE_EOF)
		return 0;
	if (rc == ARCHIVE_WARN) {
		msg = archive_error_string(r->a);
		msg = msg ? msg : "";
		if (strstr(msg, "Unrecognized GNU sparse file format"))
			bad_sparse = 1;
		else if (!strstr(msg, "can't be converted from"))
			/* (a name not in the locale's charset keeps its bytes, as natively) */
			warn("%s: %s", r->source, msg);
	} else if (rc != ARCHIVE_OK) {
		return fail_archive(r, r->shard_members ? "bad tar header" :
		                    "not a tar archive (or an unsupported compression)");
	}
	r->shard_members++;
	*name = archive_entry_pathname(e);
	if (!*name)
		*name = "";
	*link = archive_entry_hardlink(e);
	*size = archive_entry_size_is_set(e) ? (uint64_t)archive_entry_size(e) : 0;
	*at = (uint64_t)archive_read_header_position(r->a);
	*kind = TAR_UNKNOWN;
	for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if ((int)archive_entry_filetype(e) == kinds[i][0])
			*kind = kinds[i][1];
	if (*link && (*kind == TAR_REGULAR || *kind == TAR_UNKNOWN))
		*kind = *size ? TAR_REGULAR : TAR_HARDLINK;
	if (bad_sparse && *kind == TAR_REGULAR)
		*kind = TAR_BAD_SPARSE;
	return 1;
}

/* A member that is not carried into a sample: a counted warning (the first few shown),
 * or with strict a fatal error. what says what it is: "a symbolic link". 0, or -1. */
#define SHOWN_SKIPS 20

static int skip_member(wds_reader *r, const char *name, uint64_t at, const char *what)
{
	r->skipped++;
	if (r->opt.strict) {
		set_str(&r->strict_name, &r->strict_name_cap, name, strlen(name), 0);
		return fail_skip(r, "%s: '%s' at byte %llu is %s, not a sample member (--strict)",
		                 r->source, name, (unsigned long long)at, what);
	}
	if (r->skipped <= SHOWN_SKIPS)
		warn("%s: skipping '%s' at byte %llu: %s (not a sample member)", r->source, name,
		     (unsigned long long)at, what);
	else if (r->skipped == SHOWN_SKIPS + 1)
		warn("%s: more members skipped; they are counted, not shown", r->source);
	return 0;
}

/* The pending hard link, whose target is not in its sample: skipped. */
static int skip_link(wds_reader *r)
{
	char *what = xasprintf("a hard link to '%s' outside its sample", r->pending_link);
	int rc = skip_member(r, r->pending_name, r->pending_offset, what);

	free(what);
	r->have_pending = 0;
	return rc;
}

/* Make the entry just read pending, or skip it: 1 pending, 0 skipped, -1 on error. */
static int pend(wds_reader *r, const char *name, int kind, const char *link, uint64_t size,
		uint64_t at)
{
	const char *field;
	size_t keylen;

	if (kind == TAR_BAD_SPARSE)
		/* refused, not skipped: libarchive reads every entry after one as such */
		return fail(r, "%s: member '%s' at byte %llu is a GNU sparse file in a format other "
		            "than 0.0, 0.1, 1.0 or old GNU, which cull cannot read", r->source, name,
		            (unsigned long long)at);
	if (kind != TAR_REGULAR && kind != TAR_HARDLINK) {
		if (skip_member(r, name, at, tar_kind_name(kind)) < 0)
			return -1;
		goto skip;
	}
	keylen = wds_split_name(name, &field);
	if (is_metadata(name, keylen))
		goto skip;
	r->pending_len = strlen(name);
	set_str(&r->pending_name, &r->pending_name_cap, name, r->pending_len, 0);
	r->pending_keylen = keylen;
	r->pending_field = (size_t)(field - name);
	r->pending_kind = kind;
	if (kind == TAR_HARDLINK)
		set_str(&r->pending_link, &r->pending_link_cap, link, strlen(link), 0);
	r->pending_sparse = !r->a && r->ent.sparse;
	r->pending_size = size;
	r->pending_offset = at;
	if (size > r->opt.max_member)
		return fail(r, "%s: member '%s' at byte %llu is %llu bytes, over the limit of "
		    "%llu (--max-member)", r->source, name, (unsigned long long)at,
		    (unsigned long long)size, (unsigned long long)r->opt.max_member);
	r->have_pending = 1;
	return 1;
skip:
	if (!r->a && skip_data(r, PADDED(r->ent.size), at) < 0)
		return -1;
	return 0;
}

/* Read the next member header that a sample may carry (a file, or a hard link) into
 * pending: 1, 0 at the end of input, -1 on a fatal error (kept in r->error). */
static int next_header(wds_reader *r)
{
	const char *name = "", *link = NULL;
	int rc, kind = TAR_UNKNOWN;
	uint64_t size = 0, at = 0;

	for (;;) {
		if (!r->open) {
			/* a borrowed sample ends with its shard: the next one is opened (and the
			 * buffer reused) by the next wds_next() */
			if (r->ipath == r->npaths || r->pin != UINT64_MAX)
				return 0;
			if (open_shard(r) < 0)
				return -1;
		}
		if (r->a) {
			rc = la_header(r, &name, &kind, &link, &size, &at);
		} else {
			rc = native_header(r, &at);
			name = r->ent.name;
			kind = r->ent.kind;
			link = r->ent.link;
			size = r->ent.realsize;
		}
		if (rc < 0)
			return rc;
		if (rc == 0) {
			close_shard(r);
			r->ipath++;
			continue;
		}
		rc = pend(r, name, kind, link, size, at);
		if (rc != 0)
			return rc;
	}
}

/* A new member at the end of s, named as the pending header, its data not yet set. */
static wds_member *add_member(wds_reader *r, wds_sample *s)
{
	wds_member *m;

	if (s->nmembers == s->members_cap) {
		size_t cap = s->members_cap ? 2 * s->members_cap : 4;
		s->members = xreallocarray(s->members, cap, sizeof *s->members);
		memset(s->members + s->members_cap, 0, (cap - s->members_cap) * sizeof *s->members);
		s->members_cap = cap;
	}
	m = &s->members[s->nmembers++];
	set_str(&m->name, &m->name_cap, r->pending_name, r->pending_len, 0);
	set_str(&m->field, &m->field_cap, m->name + r->pending_field,
	        r->pending_len - r->pending_field, 1);
	m->borrowed = 0;
	return m;
}

/* The member's own storage, at least n bytes, as its data. */
static void own_store(wds_member *m, uint64_t n)
{
	if (m->data_cap < n || !m->store) {
		m->data_cap = n > 64 ? (size_t)n : 64;
		free(m->store);
		m->store = xmalloc(m->data_cap);
	}
	m->data = m->store;
}

/* Native: copy the pending member's bytes out of the stream (a large one read straight into
 * place); *got is short when the input ends. 0, or -1 on a read error. */
static int copy_plain(wds_reader *r, wds_member *m, size_t *got_)
{
	size_t got = 0;

	*got_ = 0;
	while (got < r->pending_size) {
		size_t k = fill(r, 1), want = (size_t)r->pending_size - got;
		if (k == 0)
			break;
		if (k > want)
			k = want;
		memcpy(m->data + got, r->buf + r->lo, k);
		consume(r, k);
		got += k;
		if (got < r->pending_size && r->pending_size - got > r->cap) {
			/* a large member: read the rest straight into place */
			ssize_t d = read(r->fd, m->data + got, (size_t)r->pending_size - got);
			if (d < 0 && errno != EINTR)
				return fail_io(r, "%s: read error: %s", r->source, strerror(errno));
			if (d > 0) {
				got += (size_t)d;
				r->pos += (uint64_t)d;
			}
		}
	}
	*got_ = got;
	return 0;
}

/* Native: a GNU sparse member, its map's runs read into place and zeros between them. */
static int copy_sparse(wds_reader *r, wds_member *m)
{
	const tar_entry *e = &r->ent;
	uint64_t done = 0;

	memset(m->data, 0, (size_t)e->realsize);
	for (size_t i = 0; i < e->nmap; i++) {
		unsigned char *dst = m->data + e->map[i].offset;
		uint64_t left = e->map[i].size;

		while (left) {
			size_t k = fill(r, 1);
			if (k == 0)
				return fail(r, "%s: truncated tar: member '%s' at byte %llu ends after %llu "
				            "of %llu stored bytes", r->source, m->name,
				            (unsigned long long)r->pending_offset, (unsigned long long)done,
				            (unsigned long long)e->size);
			k = k < left ? k : (size_t)left;
			memcpy(dst, r->buf + r->lo, k);
			consume(r, k);
			dst += k;
			left -= k;
			done += k;
		}
	}
	return skip_data(r, PADDED(e->size) - e->size, r->pending_offset);
}

/* libarchive: the member's bytes (a sparse file's holes as zeros); the number read. */
static int64_t copy_archive(wds_reader *r, wds_member *m)
{
	size_t got = 0;
	int ends = 0;
	la_ssize_t n;

	while (got < r->pending_size) {
		n = archive_read_data(r->a, m->data + got, r->pending_size - got);
		if (n < 0)
			return fail_archive(r, "cannot read member data");
		/* a sparse file's final hole comes on the call after the end of its data */
		if (n == 0 && ++ends == 2)
			break;
		got += (size_t)n;
	}
	return (int64_t)got;
}

/* Append the pending member (header already read) to s, reading its data: 0, or -1 on a
 * fatal error. */
static int take_pending(wds_reader *r, wds_sample *s)
{
	wds_member *m = add_member(r, s);
	size_t got = 0;
	int64_t n;

	if (r->opt.borrow && !r->a && !r->pending_sparse) {
		/* zero-copy: the data stays in buf, pinned until the next wds_next() */
		got = fill(r, (size_t)r->pending_size);
		if (got >= r->pending_size) {
			if (r->pin == UINT64_MAX)
				r->pin = r->pos;
			m->borrowed = 1;
			m->at = r->pos;
			m->size = (size_t)r->pending_size;
			consume(r, m->size);
			r->have_pending = 0;
			return skip_data(r, PADDED(m->size) - m->size, r->pending_offset);
		}
	}
	own_store(m, r->pending_size);
	if (r->pending_sparse) {
		r->have_pending = 0;
		m->size = (size_t)r->pending_size;
		return copy_sparse(r, m);
	}
	if (r->a) {
		if ((n = copy_archive(r, m)) < 0)
			return -1;
		got = (size_t)n;
	} else if (copy_plain(r, m, &got) < 0) {
		return -1;
	}
	if (got < r->pending_size)
		return fail(r, "%s: truncated tar: member '%s' at byte %llu ends after %zu of "
		            "%llu bytes", r->source, m->name, (unsigned long long)r->pending_offset,
		            got, (unsigned long long)r->pending_size);
	if (!r->a && skip_data(r, PADDED(got) - got, r->pending_offset) < 0)
		return -1;
	m->size = got;
	r->have_pending = 0;
	return 0;
}

/* The pending hard link: when its target is a member of s, a member of its own name with
 * the target's bytes (1, the last member of that name, which a link on disk would reach);
 * else it is skipped (0, or -1 with strict). */
static int take_link(wds_reader *r, wds_sample *s)
{
	size_t i = s->nmembers;
	wds_member *m, *t;

	while (i > 0 && strcmp(s->members[i - 1].name, r->pending_link) != 0)
		i--;
	if (i == 0)
		return skip_link(r) < 0 ? -1 : 0;
	m = add_member(r, s);
	t = &s->members[i - 1];
	m->size = t->size;
	if (t->borrowed) {
		m->borrowed = 1;
		m->at = t->at;
	} else {
		own_store(m, t->size);
		memcpy(m->data, t->data, t->size);
	}
	r->have_pending = 0;
	return 1;
}

/* A fatal error: returned as -1 when the caller asked for it, else the process exits. */
static int raise_error(wds_reader *r)
{
	if (r->opt.defer_errors)
		return -1;
	die(r->error_code ? r->error_code : EXIT_DATA, "%s", r->error);
}

const char *wds_error(const wds_reader *r, int *code)
{
	if (code)
		*code = r->error_code;
	return r->error;
}

/* At the end of the input: warn about every key whose run was split, and count the members
 * skipped when not all were shown. */
static void report_end(wds_reader *r)
{
	key_list *kl = &r->keys;
	size_t i, shown = 0, total = 0;

	if (r->keys_reported)
		return;
	r->keys_reported = 1;
	if (r->skipped > SHOWN_SKIPS)
		warn("%llu members skipped in all (not sample members)", (unsigned long long)r->skipped);
	if (!kl->unordered)
		return;
	qsort(kl->v, kl->n, sizeof *kl->v, key_pos_cmp);
	for (i = 1; i < kl->n; i++) {
		if (kl->v[i].hash != kl->v[i - 1].hash ||
		    strcmp(kl->names + kl->v[i].name, kl->names + kl->v[i - 1].name) != 0)
			continue;
		total++;
		if (shown++ < 20)
			warn("%s: key '%s' at byte %llu reappears after its run ended (first seen in "
			     "%s at byte %llu); its members are not contiguous",
			     io_name(r->paths[kl->v[i].source], 0), kl->names + kl->v[i].name,
			     (unsigned long long)kl->v[i].offset,
			     io_name(r->paths[kl->v[i - 1].source], 0),
			     (unsigned long long)kl->v[i - 1].offset);
	}
	if (total > 20)
		warn("%zu keys in all reappear after their runs ended", total);
}

/* Warn when the member just added repeats a field of its sample: readers use the first. */
static void check_repeated_field(const wds_reader *r, const wds_sample *s)
{
	const wds_member *m = &s->members[s->nmembers - 1];
	size_t i;

	for (i = 0; i + 1 < s->nmembers; i++)
		if (strcmp(s->members[i].field, m->field) == 0) {
			warn("%s: key '%s': member '%s' at byte %llu repeats the field '%s' of its "
			     "sample; readers use the first", r->source, s->key, m->name,
			     (unsigned long long)r->pending_offset, m->field);
			return;
		}
}

int wds_next(wds_reader *r, wds_sample *s)
{
	const char *field;
	size_t keylen;
	int rc;

	s->nmembers = 0;
	r->pin = UINT64_MAX;   /* the previous sample's borrowed bytes are released */
	if (r->error)
		return raise_error(r);
	for (;;) {
		if (!r->have_pending) {
			rc = next_header(r);
			if (rc < 0)
				return raise_error(r);
			if (rc == 0) {
				report_end(r);
				return 0;
			}
		}
		if (r->pending_kind != TAR_HARDLINK)
			break;
		/* a hard link cannot start a sample: its target came before it, in another one */
		if (skip_link(r) < 0)
			return raise_error(r);
	}
	keylen = r->pending_keylen;
	set_str(&s->key, &s->key_cap, r->pending_name, keylen, 0);
	s->source = r->source;
	s->offset = r->pending_offset;
	s->index = r->nsamples++;
	if (r->opt.check_keys)
		key_list_add(&r->keys, s->key, (uint32_t)r->ipath, s->offset);
	const char *src = r->source;
	if (take_pending(r, s) < 0)
		return raise_error(r);
	while ((rc = next_header(r)) > 0) {
		/* a new shard always starts a new sample */
		if (r->source != src)
			break;
		if (r->pending_keylen != keylen || memcmp(r->pending_name, s->key, keylen) != 0)
			break;
		if (r->pending_kind != TAR_HARDLINK) {
			if (take_pending(r, s) < 0)
				return raise_error(r);   /* the sample is incomplete: not returned */
		} else if ((rc = take_link(r, s)) < 0) {
			break;
		} else if (rc == 0) {
			continue;
		}
		if (r->opt.check_keys)
			check_repeated_field(r, s);
	}
	/* strict, stopped at a member of this sample: it is incomplete, not returned (a break
	 * elsewhere is raised by the next call, after this sample) */
	if (rc < 0 && r->error_code == EXIT_SKIP && r->source == src &&
	    wds_split_name(r->strict_name, &field) == keylen &&
	    memcmp(r->strict_name, s->key, keylen) == 0)
		return raise_error(r);
	/* the buffer may have moved while the sample was read: point into it now */
	for (size_t i = 0; i < s->nmembers; i++)
		if (s->members[i].borrowed)
			s->members[i].data = r->buf + (s->members[i].at - (r->pos - r->lo));
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

int wds_parse_cls(const wds_member *m, int64_t *v)
{
	char buf[32], *end;
	long long x;

	if (m->size == 0 || m->size >= sizeof buf)
		return 0;
	memcpy(buf, m->data, m->size);
	buf[m->size] = '\0';
	x = strtoll(buf, &end, 10);
	while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t')
		end++;
	if (end == buf || *end)
		return 0;
	*v = x;
	return 1;
}

uint64_t wds_samples_read(const wds_reader *r)
{
	return r->nsamples;
}

uint64_t wds_members_skipped(const wds_reader *r)
{
	return r->skipped;
}

uint64_t wds_bytes_read(const wds_reader *r)
{
	if (!r->open)
		return r->bytes_before;
	return r->bytes_before + (r->a ? (uint64_t)archive_filter_bytes(r->a, -1) : r->pos);
}

void wds_close(wds_reader *r)
{
	if (!r)
		return;
	close_shard(r);
	free(r->buf);
	tar_entry_free(&r->ent);
	free(r->body);
	free(r->pending_name);
	free(r->pending_link);
	free(r->strict_name);
	free(r->error);
	free(r->keys.v);
	free(r->keys.names);
	free(r);
}

void wds_sample_free(wds_sample *s)
{
	size_t i;

	for (i = 0; i < s->members_cap; i++) {
		free(s->members[i].name);
		free(s->members[i].field);
		free(s->members[i].store);
	}
	free(s->members);
	free(s->key);
	memset(s, 0, sizeof *s);
}

/* ---- writer ---- */

#define BLOCK 512
#define RECORD (20 * BLOCK)

/* The writer keeps its own buffer and calls write(2): a sample of small members costs a
 * few memcpy calls, where stdio's fwrite per field was a tenth of a pass-through. */
struct wds_writer {
	FILE *f;               /* kept for closing; never written through */
	int fd;
	const char *name;
	uint64_t bytes;
	unsigned char *buf;
	size_t len, cap;
	wds_writer *next;      /* in the list of open writers */
};

/* A fatal error elsewhere (a broken input stream) exits with die(): what the writers hold
 * is written first, as stdio would at exit, so every sample before the break is out. */
static wds_writer *open_writers;

static void flush_at_exit(void)
{
	for (wds_writer *w = open_writers; w; w = w->next) {
		const unsigned char *p = w->buf;
		size_t n = w->len;
		ssize_t k;

		while (n && ((k = write(w->fd, p, n)) > 0 || (k < 0 && errno == EINTR)))
			if (k > 0)
				p += k, n -= (size_t)k;
		w->len = 0;
	}
}

wds_writer *wds_writer_fdopen(FILE *f, const char *name)
{
	static int registered;
	wds_writer *w = xcalloc(1, sizeof *w);

	if (fflush(f) != 0)
		die_write(name);
	w->f = f;
	w->fd = fileno(f);
	w->name = name;
	w->cap = 256 << 10;
	w->buf = xmalloc(w->cap);
	if (!registered++)
		atexit(flush_at_exit);
	w->next = open_writers;
	open_writers = w;
	return w;
}

wds_writer *wds_writer_open(const char *path)
{
	return wds_writer_fdopen(xfopen(path, "wb"), io_name(path, 1));
}

static void write_all(wds_writer *w, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t k = write(w->fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			die_write(w->name);
		p += k;
		n -= (size_t)k;
	}
}

static void flush(wds_writer *w)
{
	size_t n = w->len;

	w->len = 0;            /* a failed write is fatal: not retried at exit */
	write_all(w, w->buf, n);
}

/* n bytes of room at the end of the buffer (n <= cap) */
static unsigned char *room(wds_writer *w, size_t n)
{
	if (w->cap - w->len < n)
		flush(w);
	return w->buf + w->len;
}

/* Members from this size on are written from where they are (with what the buffer holds,
 * in one writev), not copied into the buffer first. */
#define DIRECT ((size_t)16 << 10)

static void put(wds_writer *w, const void *p, size_t n)
{
	w->bytes += n;
	if (n >= DIRECT) {
		struct iovec iov[2] = { { w->buf, w->len }, { (void *)p, n } };
		int i = w->len ? 0 : 1;

		w->len = 0;
		while (i < 2) {
			ssize_t k = writev(w->fd, iov + i, 2 - i);

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				die_write(w->name);
			for (; i < 2 && (size_t)k >= iov[i].iov_len; i++)
				k -= (ssize_t)iov[i].iov_len;
			if (i < 2) {
				iov[i].iov_base = (char *)iov[i].iov_base + k;
				iov[i].iov_len -= (size_t)k;
			}
		}
		return;
	}
	memcpy(room(w, n), p, n);
	w->len += n;
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

/* The fields every header shares: mode 0644, uid and gid 0, mtime 0, the checksum field
 * blank while summing, and the ustar magic. */
static unsigned char header_template[BLOCK];

static void init_template(void)
{
	char *h = (char *)header_template;

	if (h[257])
		return;
	octal(h + 100, 8, 0644);
	octal(h + 108, 8, 0);
	octal(h + 116, 8, 0);
	octal(h + 124, 12, 0);
	octal(h + 136, 12, 0);
	memset(h + 148, ' ', 8);
	memcpy(h + 257, "ustar\0" "00", 8);
}

/* A header built in the output buffer: the template, then name, prefix, size, type and
 * the checksum ("%06o\0 " as tarfile writes it). */
static void header(wds_writer *w, const char *name, size_t namelen, const char *prefix,
		   size_t prefixlen, uint64_t size, char type)
{
	unsigned char *h;
	unsigned sum;

	init_template();
	h = room(w, BLOCK);
	memcpy(h, header_template, BLOCK);
	memcpy(h, name, namelen);
	octal((char *)h + 124, 12, size < 077777777777ull ? size : 0);
	h[156] = (unsigned char)type;
	memcpy(h + 345, prefix, prefixlen);
	sum = tar_block_sum(h);
	octal((char *)h + 148, 7, sum);
	h[155] = ' ';
	w->len += BLOCK;
	w->bytes += BLOCK;
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
	flush(w);
	for (wds_writer **p = &open_writers; *p; p = &(*p)->next)
		if (*p == w) {
			*p = w->next;
			break;
		}
	xfclose(w->f, w->name);
	free(w->buf);
	free(w);
}
