/* safetensors files: the header read with formats/json, tensors converted, files written. */
#include "safetensors.h"
#include "json.h"

#include <errno.h>
#include <math.h>
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

/* ---- the JSON header (formats/json.h) ---- */

/* How deep values nest inside v: 0 for a number, a string or an empty array or object. */
static int depth(const json_value *v)
{
	int d = 0, k;

	for (size_t i = 0; i < v->n && (v->type == JSON_ARR || v->type == JSON_OBJ); i++)
		if ((k = 1 + depth(&v->kids[i])) > d)
			d = k;
	return d;
}

/* A value the header does not use: taken if it nests at most `deepest` levels (the limits
 * of the reader this one replaced: 31 inside an entry, 30 in the metadata). */
static int skipped(const json_value *v, int deepest, cull_err *e)
{
	if (depth(v) > deepest)
		return cull_err_set(e, EXIT_DATA, "bad header: too deep or truncated");
	return 0;
}

/* The "__metadata__" map: string values are kept, any other value is skipped. */
static int header_meta(st_file *f, const json_value *m, cull_err *e)
{
	if (m->type != JSON_OBJ)
		return cull_err_set(e, EXIT_DATA, "bad header: expected '{'");
	for (size_t i = 0; i < m->n; i++) {
		if (m->kids[i].type != JSON_STR) {
			if (skipped(&m->kids[i], 30, e) < 0)
				return -1;
			continue;
		}
		f->meta = xreallocarray(f->meta, 2 * (f->nmeta + 1), sizeof *f->meta);
		f->meta[2 * f->nmeta] = xstrdup(m->keys[i]);
		f->meta[2 * f->nmeta + 1] = xstrdup(m->kids[i].s);
		f->nmeta++;
	}
	return 0;
}

const char *st_meta_get(const st_file *f, const char *key)
{
	for (size_t i = 0; i < f->nmeta; i++)
		if (strcmp(f->meta[2 * i], key) == 0)
			return f->meta[2 * i + 1];
	return NULL;
}

/* A "shape" or "data_offsets" array of non-negative integers into x[*k]. The messages
 * say what the reader before this one said: it read each number with strtoll, from at
 * most 31 bytes of its text. */
static int header_ints(const st_entry *t, const json_value *a, const char *what, int64_t *x,
                       int *k, cull_err *e)
{
	char text[32], *end;
	size_t n;

	if (a->type != JSON_ARR)
		return cull_err_set(e, EXIT_DATA, "bad header: expected '['");
	for (*k = 0; (size_t)*k < a->n; (*k)++) {
		const json_value *v = &a->kids[*k];

		if (*k == ST_MAXDIM)
			return cull_err_set(e, EXIT_DATA, "tensor %s: bad %s", t->name, what);
		if (v->type != JSON_NUM)
			return cull_err_set(e, EXIT_DATA, "bad header: expected an integer");
		n = v->len < sizeof text - 1 ? v->len : sizeof text - 1;
		memcpy(text, v->s, n);
		text[n] = 0;
		errno = 0;
		x[*k] = strtoll(text, &end, 10);
		if (end == text || errno)
			return cull_err_set(e, EXIT_DATA, "bad header: expected an integer");
		if (x[*k] < 0)
			return cull_err_set(e, EXIT_DATA, "tensor %s: bad %s", t->name, what);
		if (!v->is_int)      /* a fraction or an exponent after the integer */
			return cull_err_set(e, EXIT_DATA, "bad header: expected ']'");
	}
	return 0;
}

static int header_dtype(st_entry *t, const json_value *v, cull_err *e)
{
	if (v->type != JSON_STR)
		return cull_err_set(e, EXIT_DATA, "bad header: expected '\"'");
	t->dtype = -1;
	for (int i = 0; i < ST_NDTYPES; i++)
		if (strcmp(v->s, dtype_names[i]) == 0)
			t->dtype = i;
	if (t->dtype < 0)
		return cull_err_set(e, EXIT_DATA, "tensor %s: unsupported dtype %s", t->name, v->s);
	return 0;
}

/* One tensor's {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}. */
static int header_entry(st_entry *t, const json_value *v, cull_err *e)
{
	int have_dtype = 0, have_shape = 0, have_off = 0, k;
	int64_t x[ST_MAXDIM];

	if (v->type != JSON_OBJ)
		return cull_err_set(e, EXIT_DATA, "bad header: expected '{'");
	if (v->n == 0)
		return cull_err_set(e, EXIT_DATA, "bad header: expected '\"'");
	for (size_t i = 0; i < v->n; i++) {
		const char *key = v->keys[i];

		if (strcmp(key, "dtype") == 0) {
			if (header_dtype(t, &v->kids[i], e) < 0)
				return -1;
			have_dtype = 1;
		} else if (strcmp(key, "shape") == 0) {
			if (header_ints(t, &v->kids[i], "shape", x, &k, e) < 0)
				return -1;
			t->ndim = k;
			memcpy(t->shape, x, sizeof(int64_t) * k);
			have_shape = 1;
		} else if (strcmp(key, "data_offsets") == 0) {
			if (header_ints(t, &v->kids[i], "data_offsets", x, &k, e) < 0)
				return -1;
			if (k != 2 || x[1] < x[0])
				return cull_err_set(e, EXIT_DATA, "tensor %s: bad data_offsets", t->name);
			t->begin = (size_t)x[0];
			t->end = (size_t)x[1];
			have_off = 1;
		} else if (skipped(&v->kids[i], 31, e) < 0) {
			return -1;
		}
	}
	if (!have_dtype || !have_shape || !have_off)
		return cull_err_set(e, EXIT_DATA, "tensor %s: missing dtype, shape or data_offsets",
		                    t->name);
	return 0;
}

/* The header's members in order: the metadata and the tensors, each checked against the
 * data section. */
static int header_tensors(st_file *f, const json_value *h, cull_err *e)
{
	size_t cap = 0;

	for (size_t i = 0; i < h->n; i++) {
		if (strcmp(h->keys[i], "__metadata__") == 0) {
			if (header_meta(f, &h->kids[i], e) < 0)
				return -1;
			continue;
		}
		if (f->n == cap)
			f->e = xreallocarray(f->e, cap = cap ? 2 * cap : 64, sizeof(st_entry));
		st_entry *t = &f->e[f->n++];
		memset(t, 0, sizeof(*t));
		t->name = xstrdup(h->keys[i]);
		if (header_entry(t, &h->kids[i], e) < 0)
			return -1;
		if (t->end > f->data_size)
			return cull_err_set(e, EXIT_DATA, "tensor %s: data past the end of the file",
			                    t->name);
		int64_t numel = st_numel(t);
		size_t bytes = t->end - t->begin, size = dtype_sizes[t->dtype];
		if (numel < 0)
			return cull_err_set(e, EXIT_DATA, "tensor %s: shape too large", t->name);
		if (bytes % size || bytes / size != (uint64_t)numel)
			return cull_err_set(e, EXIT_DATA, "tensor %s: %zu bytes for %lld %s elements",
			                    t->name, bytes, (long long)numel, dtype_names[t->dtype]);
	}
	return 0;
}

int st_parse(st_file *f, unsigned char *buf, size_t size, cull_err *e)
{
	const char *h;
	uint64_t hlen = 0;
	json_value root;
	cull_err je;
	size_t i;
	int rc;

	memset(f, 0, sizeof(*f));
	f->buf = buf;
	f->size = size;
	if (size < 8)
		return cull_err_set(e, EXIT_DATA, "file too short for a safetensors header");
	for (int b = 7; b >= 0; b--)
		hlen = hlen << 8 | buf[b];
	if (hlen > size - 8)
		return cull_err_set(e, EXIT_DATA, "header length %llu past the end of the file",
		                    (unsigned long long)hlen);
	h = (const char *)buf + 8;
	f->data = buf + 8 + hlen;
	f->data_size = size - 8 - hlen;
	for (i = 0; i < hlen && (h[i] == ' ' || h[i] == '\t' || h[i] == '\n' || h[i] == '\r'); i++)
		;
	if (i == hlen || h[i] != '{')
		return cull_err_set(e, EXIT_DATA, "bad header: expected '{'");
	/* what follows the header's object (padding) is not read */
	if (json_parse(&root, h, hlen, NULL, NULL, &je, NULL) < 0)
		return cull_err_set(e, EXIT_DATA, "bad header: %s", je.msg);
	rc = header_tensors(f, &root, e);
	json_free(&root);
	return rc;
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

/* A name or metadata string, control characters as \u00XX as this writer always did. */
static void put_name(json_buf *h, const char *s)
{
	json_put_str(h, s, strlen(s), JSON_ESCAPE_U);
}

/* The JSON header, padded with spaces to a multiple of 8 bytes. */
static void header(json_buf *h, const st_writer *w)
{
	size_t off = 0;

	json_putc(h, '{');
	if (w->nmeta) {
		json_printf(h, "\"__metadata__\":{");
		for (size_t i = 0; i < w->nmeta; i++) {
			if (i)
				json_putc(h, ',');
			put_name(h, w->meta[2 * i]);
			json_putc(h, ':');
			put_name(h, w->meta[2 * i + 1]);
		}
		json_putc(h, '}');
	}
	for (size_t i = 0; i < w->n; i++) {
		const st_item *t = &w->it[i];
		int64_t numel = 1;
		if (i || w->nmeta)
			json_putc(h, ',');
		put_name(h, t->name);
		json_printf(h, ":{\"dtype\":\"%s\",\"shape\":[", dtype_names[t->dtype]);
		for (int d = 0; d < t->ndim; d++) {
			json_printf(h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
			numel *= t->shape[d];
		}
		size_t bytes = (size_t)numel * dtype_sizes[t->dtype];
		json_printf(h, "],\"data_offsets\":[%zu,%zu]}", off, off + bytes);
		off += bytes;
	}
	json_putc(h, '}');
	while (h->n % 8)          /* pad the header with spaces to keep the data aligned */
		json_putc(h, ' ');
}

/* The 8-byte length, the header and the tensors to f: 0 or -1. */
static int write_all(FILE *f, const char *name, const st_writer *w, const json_buf *h,
                     cull_err *e)
{
	unsigned char len[8];

	for (int i = 0; i < 8; i++)
		len[i] = (unsigned char)((uint64_t)h->n >> (8 * i));
	if (cull_fwrite(len, 8, f, name, e) < 0 || cull_fwrite(h->p, h->n, f, name, e) < 0)
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
	json_buf h = { 0 };
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
	free(h.p);
	return rc;
}
