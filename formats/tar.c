/* Tar headers as the shard reader parses them: fields, checksums, pax records, GNU sparse maps. */
#include "tar.h"
#include "io.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

uint64_t tar_number(const unsigned char *f, size_t n)
{
	uint64_t v = 0;
	size_t i = 0;

	if (f[0] & 0x80) {        /* GNU base-256 */
		v = f[0] & 0x3f;
		for (i = 1; i < n; i++)
			v = v << 8 | f[i];
		return v;
	}
	while (i < n && (f[i] == ' ' || f[i] == '\t'))
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++)
		v = v << 3 | (uint64_t)(f[i] - '0');
	return v;
}

unsigned tar_block_sum(const unsigned char *h)
{
	size_t i;
#ifdef __SSE2__
	/* psadbw sums 8 bytes at a time: a block in 32 steps */
	__m128i acc = _mm_setzero_si128(), zero = _mm_setzero_si128();

	for (i = 0; i < 512; i += 16)
		acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_loadu_si128((const __m128i *)(h + i)), zero));
	return (unsigned)(_mm_cvtsi128_si64(acc) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc)));
#else
	uint64_t w, lanes = 0;

	/* eight at a time: 16-bit lanes cannot overflow over 64 words */
	for (i = 0; i < 512; i += 8) {
		memcpy(&w, h + i, 8);
		lanes += (w & 0x00ff00ff00ff00ffull) + ((w >> 8) & 0x00ff00ff00ff00ffull);
	}
	return (unsigned)((lanes & 0xffff) + ((lanes >> 16) & 0xffff) + ((lanes >> 32) & 0xffff) +
	                  (lanes >> 48));
#endif
}

int tar_header_ok(const unsigned char *h)
{
	const uint64_t ones = 0x0101010101010101ull, low7 = 0x7f7f7f7f7f7f7f7full;
	unsigned u, high = 0, chk = 0;
	uint64_t want, w, digit, space, nul;
	size_t i;

	/* the field holds octal digits, spaces and NULs only (libarchive's test); a word at a
	 * time: ZERO(v) marks with 0x80 each byte of v that is zero */
#define ZERO(v) (~((((v) & low7) + low7) | (v)) & ~low7)
	memcpy(&w, h + 148, 8);
	digit = (w ^ 0x30 * ones) & 0xf8 * ones;
	space = w ^ 0x20 * ones;
	nul = w;
	if ((ZERO(digit) | ZERO(space) | ZERO(nul)) != ~low7)
		return 0;
#undef ZERO
	for (i = 148; i < 156; i++)
		chk += h[i];
	u = tar_block_sum(h) - chk + 8 * ' ';
	want = tar_number(h + 148, 8);
	if (want == u)
		return 1;
	/* some old writers summed signed chars: each byte >= 128 counts 256 less */
	for (i = 0; i < 512; i++)
		high += (unsigned)(h[i] >> 7) * (i < 148 || i >= 156);
	return want == (uint64_t)(u - 256 * high);
}

int tar_block_zero(const unsigned char *h)
{
	uint64_t w, any = 0;

	if (h[0])                 /* a header: its name's first byte */
		return 0;
	for (size_t i = 0; i < 512; i += 8) {
		memcpy(&w, h + i, 8);
		any |= w;
	}
	return any == 0;
}

const char *tar_kind_name(int kind)
{
	switch (kind) {
	case TAR_SYMLINK: return "a symbolic link";
	case TAR_CHAR: return "a character device";
	case TAR_BLOCK: return "a block device";
	case TAR_DIR: return "a directory";
	case TAR_FIFO: return "a FIFO";
	case TAR_SOCKET: return "a socket";
	default: return "a member of no known file type";
	}
}

/* ---- the entry: extension headers ---- */

void tar_entry_reset(tar_entry *e)
{
	e->have_path = e->have_link = e->have_sparse_name = 0;
	e->have_size = e->have_realsize = 0;
	e->sparse_major = e->sparse_minor = -1;
	e->map_given = e->map_half = 0;
	e->nmap = 0;
	e->sparse = e->extended = e->map10 = 0;
}

void tar_entry_free(tar_entry *e)
{
	free(e->path);
	free(e->link);
	free(e->sparse_name);
	free(e->hname);
	free(e->map);
	memset(e, 0, sizeof *e);
}

static void set(char **dst, size_t *cap, const char *s, size_t n)
{
	if (*cap < n + 1) {
		*cap = n + 1 > 2 * *cap ? n + 1 : 2 * *cap;
		*dst = xrealloc(*dst, *cap);
	}
	memcpy(*dst, s, n);
	(*dst)[n] = '\0';
}

static void add_chunk(tar_entry *e, uint64_t offset, uint64_t size)
{
	if (e->nmap == e->map_cap) {
		e->map_cap = e->map_cap ? 2 * e->map_cap : 16;
		e->map = xreallocarray(e->map, e->map_cap, sizeof *e->map);
	}
	e->map[e->nmap++] = (tar_chunk){ offset, size };
	e->map_given = 1;
}

void tar_entry_longname(tar_entry *e, int type, const char *p, size_t n)
{
	n = strnlen(p, n);        /* the name ends at its first NUL */
	if (type == 'K') {
		set(&e->link, &e->link_cap, p, n);
		e->have_link = 1;
	} else {
		set(&e->path, &e->path_cap, p, n);
		e->have_path = 1;
	}
}

/* A decimal pax value: leading blanks, then digits up to the first other byte. */
static uint64_t decimal(const char *p, const char *end)
{
	uint64_t v = 0;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	for (; p < end && *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	return v;
}

/* GNU.sparse.map=OFFSET,SIZE,OFFSET,SIZE... (sparse 0.1) */
static int map01(tar_entry *e, const char *p, const char *end)
{
	uint64_t v[2];
	int k = 0;
	const char *q;

	if (p == end)
		return 0;
	for (;;) {
		for (q = p; q < end && *q != ','; q++)
			if (*q < '0' || *q > '9')
				return -1;
		v[k++] = decimal(p, q);
		if (k == 2) {
			add_chunk(e, v[0], v[1]);
			k = 0;
		}
		if (q == end)
			return 0;
		p = q + 1;
	}
}

/* One pax record, key [k, eq) and value (eq, end). */
static int pax_record(tar_entry *e, const char *k, const char *eq, const char *end)
{
	size_t klen = (size_t)(eq - k), vlen = (size_t)(end - eq - 1);
	const char *v = eq + 1;
	uint64_t x;

#define KEY(s) (klen == sizeof(s) - 1 && memcmp(k, s, klen) == 0)
	if (KEY("path") && vlen) {
		set(&e->path, &e->path_cap, v, vlen);
		e->have_path = 1;
	} else if (KEY("linkpath") && vlen) {
		set(&e->link, &e->link_cap, v, vlen);
		e->have_link = 1;
	} else if (KEY("size")) {
		e->pax_size = decimal(v, end);
		e->have_size = 1;
	} else if (klen < 10 || (memcmp(k, "GNU.sparse", 10) != 0 && !KEY("SCHILY.realsize"))) {
		return 0;
	} else if (KEY("GNU.sparse.size") || KEY("GNU.sparse.realsize") || KEY("SCHILY.realsize")) {
		e->realsize = decimal(v, end);
		e->have_realsize = 1;
	} else if (KEY("GNU.sparse.numblocks")) {     /* 0.0: offset/numbytes pairs follow */
		e->map_half = 0;
	} else if (KEY("GNU.sparse.offset") || KEY("GNU.sparse.numbytes")) {
		int half = KEY("GNU.sparse.offset") ? 1 : 2;

		x = decimal(v, end);
		if (e->map_half && e->map_half != half) {
			add_chunk(e, half == 1 ? x : e->map_offset, half == 1 ? e->map_offset : x);
			e->map_half = 0;
		} else {
			e->map_offset = x;
			e->map_half = half;
		}
	} else if (KEY("GNU.sparse.map")) {
		return map01(e, v, end);
	} else if (KEY("GNU.sparse.major")) {
		e->sparse_major = (int)(decimal(v, end) & 0xffff);
	} else if (KEY("GNU.sparse.minor")) {
		e->sparse_minor = (int)(decimal(v, end) & 0xffff);
	} else if (KEY("GNU.sparse.name") && vlen) {
		set(&e->sparse_name, &e->sparse_name_cap, v, vlen);
		e->have_sparse_name = 1;
	}
#undef KEY
	return 0;
}

int tar_entry_pax(tar_entry *e, const char *p, size_t n)
{
	const char *end = p + n, *eq, *rec_end, *q;
	uint64_t len;

	while (p < end && *p) {
		for (len = 0, q = p; q < end && *q >= '0' && *q <= '9' && len < (1u << 20); q++)
			len = len * 10 + (uint64_t)(*q - '0');
		if (q == p || q == end || *q != ' ' || len == 0 || len > (uint64_t)(end - p))
			return -1;
		rec_end = p + len;
		eq = memchr(q, '=', (size_t)(rec_end - q));
		if (!eq || rec_end[-1] != '\n')
			return -1;
		if (pax_record(e, q + 1, eq, rec_end - 1) < 0)
			return -1;
		p = rec_end;
	}
	return 0;
}

/* ---- the entry's own header ---- */

/* The file type in a mode field's high bits, as libarchive takes it when the type flag
 * does not say (a hard link's, a multi-volume continuation's). */
static int kind_of_mode(uint64_t mode)
{
	switch (mode & 0170000) {
	case 0100000: return TAR_REGULAR;
	case 0040000: return TAR_DIR;
	case 0120000: return TAR_SYMLINK;
	case 0020000: return TAR_CHAR;
	case 0060000: return TAR_BLOCK;
	case 0010000: return TAR_FIFO;
	case 0140000: return TAR_SOCKET;
	default: return TAR_UNKNOWN;
	}
}

/* Old GNU sparse runs: up to n pairs of 12-byte octal fields, ending at one that is empty. */
static void old_sparse(tar_entry *e, const unsigned char *p, int n)
{
	for (; n > 0 && p[0] != 0; n--, p += 24)
		add_chunk(e, tar_number(p, 12), tar_number(p + 12, 12));
}

/* The kind and stored size that the type flag gives (libarchive's header_common). */
static void classify(tar_entry *e, const unsigned char *h, int ustar, int pax)
{
	switch (h[156]) {
	case '1':
		/* a hard link's size is data only in a pax archive (libarchive's rule) */
		if (!(ustar && pax))
			e->size = 0;
		e->kind = kind_of_mode(tar_number(h + 100, 8));
		if (!e->have_link)
			set(&e->link, &e->link_cap, (const char *)h + 157, strnlen((const char *)h + 157, 100));
		e->have_link = 1;
		break;
	case '2': e->kind = TAR_SYMLINK; e->size = 0; break;
	case '3': e->kind = TAR_CHAR; e->size = 0; break;
	case '4': e->kind = TAR_BLOCK; e->size = 0; break;
	case '5': e->kind = TAR_DIR; e->size = 0; break;
	case '6': e->kind = TAR_FIFO; e->size = 0; break;
	case 'D': e->kind = TAR_DIR; break;             /* GNU dumpdir: its data is skipped */
	case 'M': e->kind = kind_of_mode(tar_number(h + 100, 8)); break;
	default: e->kind = TAR_REGULAR; break;          /* POSIX: unknown types are files */
	}
}

/* The member's path: GNU.sparse.name, else a long name (pax path or GNU 'L'), else the
 * header's name, after the ustar prefix and a slash when it has one. */
static void entry_name(tar_entry *e, const unsigned char *h, int ustar)
{
	size_t n, pn;

	if (e->have_sparse_name || e->have_path) {
		e->name = e->have_sparse_name ? e->sparse_name : e->path;
		e->name_len = strlen(e->name);
		return;
	}
	n = strnlen((const char *)h, 100);
	pn = ustar && h[345] ? strnlen((const char *)h + 345, 155) : 0;
	if (e->hname_cap < pn + n + 2) {
		e->hname_cap = pn + n + 2 > 512 ? pn + n + 2 : 512;
		e->hname = xrealloc(e->hname, e->hname_cap);
	}
	memcpy(e->hname, h + 345, pn);
	if (pn && h[345 + pn - 1] != '/')
		e->hname[pn++] = '/';
	memcpy(e->hname + pn, h, n);
	e->hname[pn + n] = '\0';
	e->name = e->hname;
	e->name_len = pn + n;
}

int tar_entry_header(tar_entry *e, const unsigned char *h, int pax)
{
	static const unsigned char five[8] = { 255, 255, 255, 255, 255 };
	uint64_t magic, gnu_magic, ustar_magic, first5;
	int gnu, ustar;

	/* GNU's "ustar  \0", else POSIX's "ustar" whatever follows it, a word at a time */
	memcpy(&magic, h + 257, 8);
	memcpy(&gnu_magic, "ustar  \0", 8);
	memcpy(&ustar_magic, "ustar\0\0\0", 8);
	memcpy(&first5, five, 8);
	gnu = magic == gnu_magic;
	ustar = !gnu && ((magic ^ ustar_magic) & first5) == 0;

	if (!ustar)
		pax = 0;              /* a GNU or pre-POSIX header: libarchive's format is no longer pax */
	e->size = tar_number(h + 124, 12);
	classify(e, h, ustar, pax);
	if (e->have_size)
		e->size = e->pax_size;
	/* a hard link with a size (pax) has data of its own: a file (a link name from 'K' or
	 * pax linkpath on another type makes no hard link: libarchive 3.6 ignores it) */
	if (h[156] == '1' && (e->kind == TAR_REGULAR || e->kind == TAR_UNKNOWN))
		e->kind = e->size ? TAR_REGULAR : TAR_HARDLINK;
	entry_name(e, h, ustar);
	if (gnu && h[483] && !e->have_realsize) {    /* old GNU sparse: the file's size */
		e->realsize = tar_number(h + 483, 12);
		e->have_realsize = 1;
	}
	if (gnu && h[386]) {      /* old GNU sparse runs in the header, more in extension blocks */
		old_sparse(e, h + 386, 4);
		e->extended = h[482] != 0;
	}
	if (e->kind == TAR_REGULAR && e->name_len && e->name[e->name_len - 1] == '/') {
		e->kind = TAR_DIR;    /* an old tar's directory */
		e->size = 0;
	}
	if (!e->have_realsize)
		e->realsize = e->size;
	if (e->kind == TAR_REGULAR && (e->sparse_major >= 0 || e->sparse_minor >= 0)) {
		if (e->sparse_major == 1 && e->sparse_minor == 0) {
			e->map10 = 1;
			e->map10_pos = 0;
			e->map10_left = -1;
			e->nmap = 0;
		} else {
			e->kind = TAR_BAD_SPARSE;
		}
	}
	e->sparse = e->kind == TAR_REGULAR && (e->map_given || e->map10 || e->realsize != e->size);
	if (e->sparse && !e->map_given && !e->map10)
		add_chunk(e, 0, e->size);   /* a size without a map: the data, then zeros (libarchive) */
	return pax;
}

int tar_entry_extension(tar_entry *e, const unsigned char *b)
{
	old_sparse(e, b, 21);
	return b[504] != 0;
}

/* ---- GNU sparse 1.0 map and the checks on any map ---- */

int tar_entry_map10(tar_entry *e, const unsigned char *p, size_t n)
{
	const unsigned char *line, *nl;
	uint64_t v;

	while (e->map10_left != 0) {
		line = p + e->map10_pos;
		nl = memchr(line, '\n', n - e->map10_pos < 100 ? n - e->map10_pos : 100);
		if (!nl)
			return n - e->map10_pos < 100 ? 0 : -1;   /* libarchive reads lines of 100 */
		e->map10_pos = (size_t)(nl + 1 - p);
		if (line[0] == '#')
			continue;
		if (nl == line)
			return -1;
		for (v = 0; line < nl; line++) {
			if (*line < '0' || *line > '9' || v > (UINT64_MAX - 9) / 10)
				return -1;
			v = v * 10 + (uint64_t)(*line - '0');
		}
		if (e->map10_left < 0) {
			if (v > INT32_MAX)
				return -1;
			e->map10_left = 2 * (int64_t)v;
		} else if (e->map10_left-- % 2 == 0) {
			e->map10_offset = v;
		} else {
			add_chunk(e, e->map10_offset, v);
		}
	}
	return 1;
}

int tar_entry_check_map(const tar_entry *e)
{
	uint64_t end = 0, total = 0;

	for (size_t i = 0; i < e->nmap; i++) {
		const tar_chunk *c = &e->map[i];

		if (c->offset < end || c->offset > e->realsize || c->size > e->realsize - c->offset)
			return -1;
		end = c->offset + c->size;
		total += c->size;
	}
	return total == e->size ? 0 : -1;
}
