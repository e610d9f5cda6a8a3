/* safetensors reading and writing with a minimal JSON header parser and writer. */
#include "safetensors.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *dtype_names[ST_NDTYPES] = {
	"F32", "F16", "BF16", "F64", "I64", "I32", "U8", "I8", "BOOL"
};
static const size_t dtype_sizes[ST_NDTYPES] = { 4, 2, 2, 8, 8, 4, 1, 1, 1 };

const char *st_dtype_name(int dtype)
{
	return dtype >= 0 && dtype < ST_NDTYPES ? dtype_names[dtype] : "?";
}

size_t st_dtype_size(int dtype)
{
	return dtype >= 0 && dtype < ST_NDTYPES ? dtype_sizes[dtype] : 0;
}

int64_t st_numel(const st_entry *e)
{
	int64_t n = 1;

	for (int i = 0; i < e->ndim; i++) {
		if (e->shape[i] && n > INT64_MAX / e->shape[i])
			return -1;
		n *= e->shape[i];
	}
	return n;
}

/* ---- JSON header parsing ---- */

typedef struct {
	const char *s, *end;
	cull_err *e;
	int failed;
} parser;

static int fail(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(parser *p, const char *fmt, ...)
{
	va_list ap;

	if (!p->failed && p->e) {
		p->e->code = EXIT_DATA;
		va_start(ap, fmt);
		vsnprintf(p->e->msg, sizeof p->e->msg, fmt, ap);
		va_end(ap);
	}
	p->failed = 1;
	return -1;
}

static void ws(parser *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
		p->s++;
}

static int expect(parser *p, char c)
{
	ws(p);
	if (p->s >= p->end || *p->s != c)
		return fail(p, "bad header: expected '%c'", c);
	p->s++;
	return 0;
}

/* A JSON string into a malloc'd buffer (escapes decoded; \u kept to ASCII or '?'). */
static char *str(parser *p)
{
	size_t cap = 16, n = 0;
	char *out;

	if (expect(p, '"') < 0)
		return NULL;
	out = xmalloc(cap);
	while (p->s < p->end && *p->s != '"') {
		char c = *p->s++;
		if (c == '\\') {
			if (p->s >= p->end)
				break;
			c = *p->s++;
			switch (c) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u': {
				unsigned v = 0;
				for (int i = 0; i < 4 && p->s < p->end; i++, p->s++) {
					char h = *p->s;
					v = v * 16 + (unsigned)(h >= 'a' ? h - 'a' + 10 : h >= 'A' ? h - 'A' + 10 : h - '0');
				}
				c = v < 128 ? (char)v : '?';
				break;
			}
			default: break;   /* \" \\ \/ */
			}
		}
		if (n + 1 >= cap)
			out = xrealloc(out, cap *= 2);
		out[n++] = c;
	}
	if (p->s >= p->end) {
		free(out);
		fail(p, "bad header: unterminated string");
		return NULL;
	}
	p->s++;
	out[n] = '\0';
	return out;
}

static int num(parser *p, int64_t *v)
{
	char buf[32], *e;
	size_t n;

	ws(p);
	n = (size_t)(p->end - p->s) < sizeof buf - 1 ? (size_t)(p->end - p->s) : sizeof buf - 1;
	memcpy(buf, p->s, n);
	buf[n] = '\0';
	errno = 0;
	long long x = strtoll(buf, &e, 10);
	if (e == buf || errno)
		return fail(p, "bad header: expected an integer");
	p->s += e - buf;
	*v = x;
	return 0;
}

/* Skip any JSON value (used for __metadata__ and unknown keys). */
static int skip_value(parser *p, int depth)
{
	ws(p);
	if (depth > 32 || p->s >= p->end)
		return fail(p, "bad header: too deep or truncated");
	if (*p->s == '"') {
		free(str(p));
		return p->failed ? -1 : 0;
	}
	if (*p->s == '{' || *p->s == '[') {
		char close = *p->s == '{' ? '}' : ']';
		int obj = *p->s == '{';
		p->s++;
		ws(p);
		if (p->s < p->end && *p->s == close) {
			p->s++;
			return 0;
		}
		for (;;) {
			if (obj) {
				free(str(p));
				if (p->failed || expect(p, ':') < 0)
					return -1;
			}
			if (skip_value(p, depth + 1) < 0)
				return -1;
			ws(p);
			if (p->s < p->end && *p->s == ',') {
				p->s++;
				continue;
			}
			return expect(p, close);
		}
	}
	while (p->s < p->end && strchr("-+.eE0123456789truefalsn", *p->s))
		p->s++;
	return 0;
}

/* The "__metadata__" map: string values are kept, any other value is skipped. */
static int parse_meta(parser *p, st_file *f)
{
	if (expect(p, '{') < 0)
		return -1;
	ws(p);
	if (p->s < p->end && *p->s == '}') {
		p->s++;
		return 0;
	}
	for (;;) {
		char *key = str(p);
		if (!key || expect(p, ':') < 0) {
			free(key);
			return -1;
		}
		ws(p);
		if (p->s < p->end && *p->s == '"') {
			char *v = str(p);
			if (!v) {
				free(key);
				return -1;
			}
			f->meta = xreallocarray(f->meta, 2 * (f->nmeta + 1), sizeof *f->meta);
			f->meta[2 * f->nmeta] = key;
			f->meta[2 * f->nmeta + 1] = v;
			f->nmeta++;
		} else {
			free(key);
			if (skip_value(p, 2) < 0)
				return -1;
		}
		ws(p);
		if (p->s < p->end && *p->s == ',') {
			p->s++;
			continue;
		}
		return expect(p, '}');
	}
}

const char *st_meta_get(const st_file *f, const char *key)
{
	for (size_t i = 0; i < f->nmeta; i++)
		if (strcmp(f->meta[2 * i], key) == 0)
			return f->meta[2 * i + 1];
	return NULL;
}

static int parse_entry(parser *p, st_entry *e)
{
	int have_dtype = 0, have_shape = 0, have_off = 0;

	if (expect(p, '{') < 0)
		return -1;
	for (;;) {
		char *key = str(p);
		if (!key || expect(p, ':') < 0) {
			free(key);
			return -1;
		}
		if (strcmp(key, "dtype") == 0) {
			char *d = str(p);
			if (!d) {
				free(key);
				return -1;
			}
			e->dtype = -1;
			for (int i = 0; i < ST_NDTYPES; i++)
				if (strcmp(d, dtype_names[i]) == 0)
					e->dtype = i;
			if (e->dtype < 0) {
				fail(p, "tensor %s: unsupported dtype %s", e->name, d);
				free(d);
				free(key);
				return -1;
			}
			free(d);
			have_dtype = 1;
		} else if (strcmp(key, "shape") == 0 || strcmp(key, "data_offsets") == 0) {
			int shape = key[0] == 's', k = 0;
			int64_t v[ST_MAXDIM];
			if (expect(p, '[') < 0) {
				free(key);
				return -1;
			}
			ws(p);
			if (p->s < p->end && *p->s == ']') {
				p->s++;
			} else {
				for (;;) {
					if (k == ST_MAXDIM || num(p, &v[k]) < 0 || v[k] < 0) {
						free(key);
						return fail(p, "tensor %s: bad %s", e->name, shape ? "shape" : "data_offsets");
					}
					k++;
					ws(p);
					if (p->s < p->end && *p->s == ',') {
						p->s++;
						continue;
					}
					if (expect(p, ']') < 0) {
						free(key);
						return -1;
					}
					break;
				}
			}
			if (shape) {
				e->ndim = k;
				memcpy(e->shape, v, sizeof(int64_t) * k);
				have_shape = 1;
			} else {
				if (k != 2 || v[1] < v[0]) {
					free(key);
					return fail(p, "tensor %s: bad data_offsets", e->name);
				}
				e->begin = (size_t)v[0];
				e->end = (size_t)v[1];
				have_off = 1;
			}
		} else if (skip_value(p, 1) < 0) {
			free(key);
			return -1;
		}
		free(key);
		ws(p);
		if (p->s < p->end && *p->s == ',') {
			p->s++;
			continue;
		}
		if (expect(p, '}') < 0)
			return -1;
		break;
	}
	if (!have_dtype || !have_shape || !have_off)
		return fail(p, "tensor %s: missing dtype, shape or data_offsets", e->name);
	return 0;
}

int st_parse(st_file *f, unsigned char *buf, size_t size, cull_err *e)
{
	parser p = { .e = e };
	uint64_t hlen = 0;
	size_t cap = 0;

	memset(f, 0, sizeof(*f));
	f->buf = buf;
	f->size = size;
	if (size < 8)
		return cull_err_set(e, EXIT_DATA, "file too short for a safetensors header");
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | buf[i];
	if (hlen > size - 8)
		return cull_err_set(e, EXIT_DATA, "header length %llu past the end of the file",
		                    (unsigned long long)hlen);
	p.s = (const char *)buf + 8;
	p.end = p.s + hlen;
	f->data = buf + 8 + hlen;
	f->data_size = size - 8 - hlen;
	if (expect(&p, '{') < 0)
		return -1;
	ws(&p);
	if (p.s < p.end && *p.s == '}')
		return 0;
	for (;;) {
		char *name = str(&p);
		if (!name || expect(&p, ':') < 0) {
			free(name);
			return -1;
		}
		if (strcmp(name, "__metadata__") == 0) {
			free(name);
			if (parse_meta(&p, f) < 0)
				return -1;
		} else {
			if (f->n == cap)
				f->e = xreallocarray(f->e, cap = cap ? 2 * cap : 64, sizeof(st_entry));
			st_entry *e = &f->e[f->n++];
			memset(e, 0, sizeof(*e));
			e->name = name;
			if (parse_entry(&p, e) < 0)
				return -1;
			if (e->end > f->data_size)
				return fail(&p, "tensor %s: data past the end of the file", name);
			int64_t numel = st_numel(e);
			size_t bytes = e->end - e->begin, size = dtype_sizes[e->dtype];
			if (numel < 0)
				return fail(&p, "tensor %s: shape too large", name);
			if (bytes % size || bytes / size != (uint64_t)numel)
				return fail(&p, "tensor %s: %zu bytes for %lld %s elements", name,
				            bytes, (long long)numel, dtype_names[e->dtype]);
		}
		ws(&p);
		if (p.s < p.end && *p.s == ',') {
			p.s++;
			continue;
		}
		return expect(&p, '}');
	}
}

int st_load(st_file *f, const char *path, cull_err *e)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t n = 0, cap = 0, r;
	cull_err sub;

	memset(f, 0, sizeof(*f));
	if (!fp)
		return cull_err_set(e, EXIT_IO, "%s: %s", path, strerror(errno));
	do {
		if (cap - n < 1 << 20)
			buf = xrealloc(buf, cap = cap ? 2 * cap : 1 << 22);
		r = fread(buf + n, 1, cap - n, fp);
		n += r;
	} while (r > 0);
	if (ferror(fp)) {
		cull_err_set(e, EXIT_IO, "%s: read error: %s", path, strerror(errno));
		fclose(fp);
		free(buf);
		return -1;
	}
	fclose(fp);
	if (st_parse(f, buf, n, &sub) < 0) {
		/* the reason is cut at 199 bytes, as it always was */
		cull_err_set(e, EXIT_DATA, "%s: %.199s", path, sub.msg);
		st_free(f);
		return -1;
	}
	return 0;
}

void st_free(st_file *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->e[i].name);
	for (size_t i = 0; i < 2 * f->nmeta; i++)
		free(f->meta[i]);
	free(f->meta);
	free(f->e);
	free(f->buf);
	memset(f, 0, sizeof(*f));
}

const st_entry *st_find(const st_file *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->e[i].name, name) == 0)
			return &f->e[i];
	return NULL;
}

static float half_to_float(uint16_t h)
{
	int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
	float v;

	if (e == 0)
		v = ldexpf((float)m, -24);
	else if (e == 31)
		v = m ? NAN : INFINITY;
	else
		v = ldexpf((float)(m | 1024), e - 25);
	return s ? -v : v;
}

void st_to_f32(const st_file *f, const st_entry *e, float *dst)
{
	const unsigned char *p = f->data + e->begin;
	int64_t n = st_numel(e);

	for (int64_t i = 0; i < n; i++) {
		switch (e->dtype) {
		case ST_F32: { memcpy(&dst[i], p + 4 * i, 4); break; }
		case ST_F16: { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = half_to_float(h); break; }
		case ST_BF16: {
			uint16_t h; uint32_t u; memcpy(&h, p + 2 * i, 2); u = (uint32_t)h << 16;
			memcpy(&dst[i], &u, 4); break;
		}
		case ST_F64: { double d; memcpy(&d, p + 8 * i, 8); dst[i] = (float)d; break; }
		case ST_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); dst[i] = (float)v; break; }
		case ST_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); dst[i] = (float)v; break; }
		case ST_U8: dst[i] = p[i]; break;
		case ST_I8: dst[i] = (int8_t)p[i]; break;
		default: dst[i] = p[i] ? 1.0f : 0.0f; break;
		}
	}
}

void st_to_i64(const st_file *f, const st_entry *e, int64_t *dst)
{
	const unsigned char *p = f->data + e->begin;
	int64_t n = st_numel(e);

	if (e->dtype == ST_I64) {
		memcpy(dst, p, 8 * (size_t)n);
		return;
	}
	if (e->dtype == ST_I32 || e->dtype == ST_U8 || e->dtype == ST_I8 || e->dtype == ST_BOOL) {
		for (int64_t i = 0; i < n; i++) {
			int32_t v;
			if (e->dtype == ST_I32)
				memcpy(&v, p + 4 * i, 4);
			else
				v = e->dtype == ST_I8 ? (int8_t)p[i] : p[i];
			dst[i] = v;
		}
		return;
	}
	float *tmp = xmalloc(sizeof(float) * (size_t)(n ? n : 1));
	st_to_f32(f, e, tmp);
	for (int64_t i = 0; i < n; i++)
		dst[i] = (int64_t)llrintf(tmp[i]);
	free(tmp);
}

/* ---- writing ---- */

typedef struct {
	char *name;
	int dtype, ndim;
	int64_t shape[ST_MAXDIM];
	const void *data;
} st_item;

struct st_writer {
	st_item *it;
	size_t n, cap;
	char **meta;      /* key, value pairs */
	size_t nmeta;
	cull_err err;     /* a tensor st_add could not take; st_write reports it */
};

st_writer *st_writer_new(void)
{
	return xcalloc(1, sizeof(st_writer));
}

void st_add(st_writer *w, const char *name, int dtype, int ndim, const int64_t *shape,
            const void *data)
{
	if (ndim > ST_MAXDIM) {
		if (!w->err.code)
			cull_err_set(&w->err, EXIT_DATA, "tensor %s: %d dimensions (at most %d)", name,
			             ndim, ST_MAXDIM);
		return;
	}
	if (w->n == w->cap)
		w->it = xreallocarray(w->it, w->cap = w->cap ? 2 * w->cap : 64, sizeof(st_item));
	st_item *t = &w->it[w->n++];
	t->name = xstrdup(name);
	t->dtype = dtype;
	t->ndim = ndim;
	memcpy(t->shape, shape, sizeof(int64_t) * ndim);
	t->data = data;
}

void st_meta(st_writer *w, const char *key, const char *value)
{
	w->meta = xreallocarray(w->meta, 2 * (w->nmeta + 1), sizeof(char *));
	w->meta[2 * w->nmeta] = xstrdup(key);
	w->meta[2 * w->nmeta + 1] = xstrdup(value);
	w->nmeta++;
}

typedef struct {
	char *s;
	size_t n, cap;
} sbuf;

static void put(sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (b->n + (size_t)k + 1 > b->cap)
		b->s = xrealloc(b->s, b->cap = 2 * (b->n + (size_t)k + 1));
	va_start(ap, fmt);
	vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)k;
}

static void put_str(sbuf *b, const char *s)
{
	put(b, "\"");
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			put(b, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			put(b, "\\u%04x", *s);
		else
			put(b, "%c", *s);
	}
	put(b, "\"");
}

static void writer_free(st_writer *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->it[i].name);
	for (size_t i = 0; i < 2 * w->nmeta; i++)
		free(w->meta[i]);
	free(w->meta);
	free(w->it);
	free(w);
}

/* The JSON header, padded with spaces to a multiple of 8 bytes. */
static void header(sbuf *h, const st_writer *w)
{
	size_t off = 0;

	put(h, "{");
	if (w->nmeta) {
		put(h, "\"__metadata__\":{");
		for (size_t i = 0; i < w->nmeta; i++) {
			put(h, i ? "," : "");
			put_str(h, w->meta[2 * i]);
			put(h, ":");
			put_str(h, w->meta[2 * i + 1]);
		}
		put(h, "}");
	}
	for (size_t i = 0; i < w->n; i++) {
		const st_item *t = &w->it[i];
		int64_t numel = 1;
		put(h, i || w->nmeta ? "," : "");
		put_str(h, t->name);
		put(h, ":{\"dtype\":\"%s\",\"shape\":[", dtype_names[t->dtype]);
		for (int d = 0; d < t->ndim; d++) {
			put(h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
			numel *= t->shape[d];
		}
		size_t bytes = (size_t)numel * dtype_sizes[t->dtype];
		put(h, "],\"data_offsets\":[%zu,%zu]}", off, off + bytes);
		off += bytes;
	}
	put(h, "}");
	while (h->n % 8)          /* pad the header with spaces to keep the data aligned */
		put(h, " ");
}

/* The 8-byte length, the header and the tensors to f: 0 or -1. */
static int write_all(FILE *f, const char *name, const st_writer *w, const sbuf *h, cull_err *e)
{
	unsigned char len[8];

	for (int i = 0; i < 8; i++)
		len[i] = (unsigned char)((uint64_t)h->n >> (8 * i));
	if (cull_fwrite(len, 8, f, name, e) < 0 || cull_fwrite(h->s, h->n, f, name, e) < 0)
		return -1;
	for (size_t i = 0; i < w->n; i++) {
		const st_item *t = &w->it[i];
		int64_t numel = 1;
		for (int d = 0; d < t->ndim; d++)
			numel *= t->shape[d];
		if (numel && cull_fwrite(t->data, (size_t)numel * dtype_sizes[t->dtype], f, name,
		                         e) < 0)
			return -1;
	}
	return 0;
}

int st_write(st_writer *w, const char *path, cull_err *e)
{
	const char *name = io_name(path, 1);
	sbuf h = { 0 };
	FILE *f;
	int rc = -1;

	if (w->err.code) {
		if (e)
			*e = w->err;
		writer_free(w);
		return -1;
	}
	header(&h, w);
	if ((f = cull_fopen(path, "wb", e))) {
		rc = write_all(f, name, w, &h, e);
		if (rc < 0) {
			if (f != stdout)
				fclose(f);
		} else {
			rc = cull_fclose(f, name, e);
		}
	}
	writer_free(w);
	free(h.s);
	return rc;
}
