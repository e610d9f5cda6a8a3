/* Model checkpoints as safetensors with torchvision state-dict names (nn_load, nn_save). */
#include "resnet.h"
#include "safetensors.h"
#include "io.h"

#include <stdlib.h>
#include <string.h>

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
	size_t k = 0;

	k += (size_t)snprintf(buf + k, len - k, "[");
	for (int i = 0; i < ndim && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, i ? ", %lld" : "%lld", (long long)shape[i]);
	if (k < len)
		snprintf(buf + k, len - k, "]");
}

int nn_load(nn_model *m, const char *path, int flags, cull_err *e)
{
	st_file f;
	char a[80], b[80];

	if (st_load(&f, path, e) < 0)
		return -1;
	/* check everything first, so a failed load leaves the model unchanged */
	for (int i = 0; i < m->nt; i++) {
		const nn_tensor *t = &m->t[i];
		const st_entry *st = st_find(&f, t->name);
		if (!st) {
			if (t->kind == NN_COUNTER)
				continue;     /* old checkpoints lack num_batches_tracked */
			cull_err_set(e, EXIT_DATA, "%s: missing tensor %s (model %s)", path, t->name,
			             m->arch);
			goto fail;
		}
		int same = st->ndim == t->ndim;
		for (int d = 0; same && d < t->ndim; d++)
			same = st->shape[d] == t->shape[d];
		if (!same) {
			shape_str(a, sizeof a, st->ndim, st->shape);
			shape_str(b, sizeof b, t->ndim, t->shape);
			cull_err_set(e, EXIT_DATA, "%s: tensor %s has shape %s, model %s wants %s", path,
			             t->name, a, m->arch, b);
			goto fail;
		}
		if (t->kind != NN_COUNTER && st->dtype != ST_F32 && st->dtype != ST_F16 &&
		    st->dtype != ST_BF16 && st->dtype != ST_F64) {
			cull_err_set(e, EXIT_DATA, "%s: tensor %s has dtype %s, not a float", path,
			             t->name, st_dtype_name(st->dtype));
			goto fail;
		}
	}
	if (!(flags & NN_LOAD_IGNORE_EXTRA))
		for (size_t i = 0; i < f.n; i++)
			if (!nn_find(m, f.e[i].name)) {
				cull_err_set(e, EXIT_DATA, "%s: unexpected tensor %s (model %s)", path,
				             f.e[i].name, m->arch);
				goto fail;
			}
	for (int i = 0; i < m->nt; i++) {
		const nn_tensor *t = &m->t[i];
		const st_entry *st = st_find(&f, t->name);
		if (!st)
			m->counters[t->off] = 0;
		else if (t->kind == NN_COUNTER)
			st_to_i64(&f, st, &m->counters[t->off]);
		else
			st_to_f32(&f, st, nn_tensor_data(m, t));
	}
	st_free(&f);
	m->sgd_steps = 0;
	nn_params_changed(m);
	return 0;
fail:
	st_free(&f);
	return -1;
}

st_writer *nn_save_writer(const nn_model *m)
{
	st_writer *w = st_writer_new();
	char buf[64];

	st_meta(w, "format", "pt");
	st_meta(w, "arch", m->arch);
	snprintf(buf, sizeof buf, "%d", m->in_ch);
	st_meta(w, "in_channels", buf);
	snprintf(buf, sizeof buf, "%g", m->width);
	st_meta(w, "width", buf);
	snprintf(buf, sizeof buf, "%d", m->num_classes);
	st_meta(w, "num_classes", buf);
	for (int i = 0; i < m->nt; i++) {
		const nn_tensor *t = &m->t[i];
		if (t->kind == NN_COUNTER)
			st_add(w, t->name, ST_I64, 0, t->shape, &m->counters[t->off]);
		else
			st_add(w, t->name, ST_F32, t->ndim, t->shape, nn_tensor_data(m, t));
	}
	return w;
}

int nn_save(const nn_model *m, const char *path, cull_err *e)
{
	return st_write(nn_save_writer(m), path, e);
}

int nn_save_optim(const nn_model *m, const char *path, cull_err *e)
{
	st_writer *w = st_writer_new();
	int64_t one[1] = { 1 }, steps = m->sgd_steps;
	char name[96];

	st_meta(w, "arch", m->arch);
	st_add(w, "sgd_steps", ST_I64, 1, one, &steps);
	for (int i = 0; i < m->nt; i++) {
		const nn_tensor *t = &m->t[i];
		if (t->kind != NN_PARAM)
			continue;
		snprintf(name, sizeof name, "momentum.%s", t->name);
		st_add(w, name, ST_F32, t->ndim, t->shape, m->momentum + t->off);
	}
	return st_write(w, path, e);
}

int nn_load_optim(nn_model *m, const char *path, cull_err *e)
{
	st_file f;
	char name[96];
	const st_entry *st;

	if (st_load(&f, path, e) < 0)
		return -1;
	for (int i = 0; i < m->nt; i++) {
		const nn_tensor *t = &m->t[i];
		if (t->kind != NN_PARAM)
			continue;
		snprintf(name, sizeof name, "momentum.%s", t->name);
		st = st_find(&f, name);
		if (!st || (size_t)st_numel(st) != t->numel) {
			cull_err_set(e, EXIT_DATA, "%s: %s tensor %s", path,
			             st ? "mis-shaped" : "missing", name);
			st_free(&f);
			return -1;
		}
	}
	st = st_find(&f, "sgd_steps");
	if (!st || st_numel(st) != 1) {
		cull_err_set(e, EXIT_DATA, "%s: missing tensor sgd_steps", path);
		st_free(&f);
		return -1;
	}
	int64_t steps;
	st_to_i64(&f, st, &steps);
	m->sgd_steps = steps;
	for (int i = 0; i < m->nt; i++) {
		const nn_tensor *t = &m->t[i];
		if (t->kind != NN_PARAM)
			continue;
		snprintf(name, sizeof name, "momentum.%s", t->name);
		st_to_f32(&f, st_find(&f, name), m->momentum + t->off);
	}
	st_free(&f);
	return 0;
}

/* ---- model metadata: what cull-train records for the programs that use a model ---- */

void nn_read_meta(nn_meta *meta, const st_file *f)
{
	const char *s;
	float v[3];
	int w, h;

	memset(meta, 0, sizeof *meta);
	if ((s = st_meta_get(f, "mean")) && sscanf(s, "%f,%f,%f", &v[0], &v[1], &v[2]) == 3) {
		memcpy(meta->mean, v, sizeof v);
		meta->have_mean = 1;
	}
	if ((s = st_meta_get(f, "std")) && sscanf(s, "%f,%f,%f", &v[0], &v[1], &v[2]) == 3 &&
	    v[0] > 0 && v[1] > 0 && v[2] > 0) {
		memcpy(meta->std, v, sizeof v);
		meta->have_std = 1;
	}
	if ((s = st_meta_get(f, "image_size")) && sscanf(s, "%dx%d", &w, &h) == 2 && w == h &&
	    w > 0 && w <= 4096)
		meta->image_size = w;
}
