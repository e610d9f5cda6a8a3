/* cull-train's checkpoints: atomic model files and the resume state (one safetensors file). */
#include "train.h"
#include "io.h"
#include "safetensors.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void check_replaceable(const char *opt, const char *path)
{
	if (!is_replaceable(path))
		die(EXIT_IO, "%s %s: not a regular file (it is replaced by rename)", opt, path);
}

void save_model_atomic(st_writer *w, const char *path)
{
	char *tmp = temp_path(path);
	cull_err e;

	if (st_write(w, tmp, &e) < 0)
		die_err(&e);
	commit_file(tmp, path);
	free(tmp);
}

enum { S_EPOCH, S_STEP, S_GSTEP, S_CORRECT, S_SEEN, S_FP, S_SGD, S_THREADS, S_RUNS, S_N,
       S_COUNT };
enum { F_LOSS, F_ELAPSED, F_COUNT };

void save_state(const char *path, const nn_model *m, const sample_stats *s,
                const train_state *t, const ssl_state *ss)
{
	char *tmp = temp_path(path);
	st_writer *w = st_writer_new();
	int64_t iv[S_COUNT], sh[1], ssl_iv[2];
	double fv[F_COUNT];
	cull_err e;

	iv[S_EPOCH] = t->epoch;
	iv[S_STEP] = t->step;
	iv[S_GSTEP] = t->global_step;
	iv[S_CORRECT] = t->correct;
	iv[S_SEEN] = t->seen;
	memcpy(&iv[S_FP], &t->data_fp, sizeof t->data_fp);
	iv[S_SGD] = m->sgd_steps;
	iv[S_THREADS] = t->threads;
	iv[S_RUNS] = s->score_runs_done;
	iv[S_N] = (int64_t)s->n;
	fv[F_LOSS] = t->loss_sum;
	fv[F_ELAPSED] = t->elapsed;
	st_meta(w, "format", "cull-train state");
#define ADD(name, dt, cnt, ptr) do { sh[0] = (int64_t)(cnt); st_add(w, name, dt, 1, sh, ptr); } while (0)
	ADD("state.int", ST_I64, S_COUNT, iv);
	ADD("state.float", ST_F64, F_COUNT, fv);
	ADD("config", ST_U8, strlen(t->config), t->config);
	ADD("log", ST_U8, t->log_len, t->log);
	ADD("model.params", ST_F32, m->nparams, m->params);
	ADD("model.momentum", ST_F32, m->nparams, m->momentum);
	ADD("model.buffers", ST_F32, m->nbuffers, m->buffers);
	ADD("model.counters", ST_I64, m->ncounters, m->counters);
	ADD("stats.last_correct", ST_I32, s->n, s->last_correct);
	ADD("stats.forgets", ST_I32, s->n, s->forgets);
	ADD("stats.ever_correct", ST_I32, s->n, s->ever_correct);
	ADD("stats.presented", ST_I32, s->n, s->presented);
	ADD("stats.margin_sum", ST_F64, s->n, s->margin_sum);
	ADD("stats.el2n", ST_F64, s->n, s->el2n);
	ADD("stats.grand", ST_F64, s->n, s->grand);
	if (ss) {
		const nn_head *h = ss->head;
		ssl_iv[0] = h->sgd_steps;
		ssl_iv[1] = ss->queue_fill;
		ADD("ssl.int", ST_I64, 2, ssl_iv);
		ADD("head.params", ST_F32, h->nparams, h->params);
		ADD("head.momentum", ST_F32, h->nparams, h->momentum);
		ADD("head.buffers", ST_F32, h->nbuffers, h->buffers);
		ADD("head.counters", ST_I64, h->ncounters, h->counters);
		ADD("ssl.queue", ST_F32, ss->queue_floats, ss->queue);
	}
#undef ADD
	if (st_write(w, tmp, &e) < 0)
		die_err(&e);
	commit_file(tmp, path);
	free(tmp);
}

/* Die naming the first option that differs between two config strings. */
void check_config(const char *path, const char *saved, const char *now)
{
	const char *a = saved, *b = now;

	while (*a || *b) {
		size_t la = strcspn(a, ";"), lb = strcspn(b, ";");
		if (la != lb || memcmp(a, b, la) != 0)
			die(EXIT_USAGE, "--resume: %s was written with %.*s, this run has %.*s", path,
			    (int)la, a, (int)lb, b);
		a += la + (a[la] == ';');
		b += lb + (b[lb] == ';');
	}
}

/* Copy tensor `name` (dtype dt, count elements) out of f, or die naming the file. */
static void get(const st_file *f, const char *path, const char *name, int dt, size_t count,
                void *dst)
{
	const st_entry *e = st_find(f, name);

	if (!e || e->dtype != dt || e->ndim != 1 || (size_t)e->shape[0] != count ||
	    e->end - e->begin != count * st_dtype_size(dt))
		die(EXIT_DATA, "%s: tensor %s is missing or has another size (written for "
		    "another model or data?)", path, name);
	if (count)
		memcpy(dst, f->data + e->begin, count * st_dtype_size(dt));
}

static char *get_text(const st_file *f, const char *path, const char *name, size_t *len)
{
	const st_entry *e = st_find(f, name);
	char *s;

	if (!e || e->dtype != ST_U8 || e->ndim != 1)
		die(EXIT_DATA, "%s: tensor %s is missing: not a cull-train state", path, name);
	*len = e->end - e->begin;
	s = xmalloc(*len + 1);
	memcpy(s, f->data + e->begin, *len);
	s[*len] = '\0';
	return s;
}

int load_state(const char *path, nn_model *m, sample_stats *s, train_state *t, ssl_state *ss,
               const char *config)
{
	st_file f;
	cull_err e;
	int64_t iv[S_COUNT];
	double fv[F_COUNT];
	struct stat sb;
	size_t len;

	if (stat(path, &sb) != 0 && errno == ENOENT)
		return 1;
	if (st_load(&f, path, &e) != 0)
		die(EXIT_DATA, "%s", e.msg);
	get(&f, path, "state.int", ST_I64, S_COUNT, iv);
	get(&f, path, "state.float", ST_F64, F_COUNT, fv);
	t->epoch = (long)iv[S_EPOCH];
	t->step = (long)iv[S_STEP];
	t->global_step = (long)iv[S_GSTEP];
	t->correct = iv[S_CORRECT];
	t->seen = iv[S_SEEN];
	memcpy(&t->data_fp, &iv[S_FP], sizeof t->data_fp);
	t->threads = iv[S_THREADS];
	t->loss_sum = fv[F_LOSS];
	t->elapsed = fv[F_ELAPSED];
	free(t->config);
	free(t->log);
	t->config = get_text(&f, path, "config", &len);
	t->log = get_text(&f, path, "log", &t->log_len);
	check_config(path, t->config, config);
	if ((size_t)iv[S_N] != s->n)
		die(EXIT_USAGE, "--resume: %s was written for %lld training samples, this run has %zu",
		    path, (long long)iv[S_N], s->n);
	get(&f, path, "model.params", ST_F32, m->nparams, m->params);
	get(&f, path, "model.momentum", ST_F32, m->nparams, m->momentum);
	get(&f, path, "model.buffers", ST_F32, m->nbuffers, m->buffers);
	get(&f, path, "model.counters", ST_I64, (size_t)m->ncounters, m->counters);
	get(&f, path, "stats.last_correct", ST_I32, s->n, s->last_correct);
	get(&f, path, "stats.forgets", ST_I32, s->n, s->forgets);
	get(&f, path, "stats.ever_correct", ST_I32, s->n, s->ever_correct);
	get(&f, path, "stats.presented", ST_I32, s->n, s->presented);
	get(&f, path, "stats.margin_sum", ST_F64, s->n, s->margin_sum);
	get(&f, path, "stats.el2n", ST_F64, s->n, s->el2n);
	get(&f, path, "stats.grand", ST_F64, s->n, s->grand);
	if (ss) {
		nn_head *h = ss->head;
		int64_t ssl_iv[2];
		get(&f, path, "ssl.int", ST_I64, 2, ssl_iv);
		get(&f, path, "head.params", ST_F32, h->nparams, h->params);
		get(&f, path, "head.momentum", ST_F32, h->nparams, h->momentum);
		get(&f, path, "head.buffers", ST_F32, h->nbuffers, h->buffers);
		get(&f, path, "head.counters", ST_I64, (size_t)h->ncounters, h->counters);
		get(&f, path, "ssl.queue", ST_F32, ss->queue_floats, ss->queue);
		h->sgd_steps = (long)ssl_iv[0];
		ss->queue_fill = ssl_iv[1];
	}
	m->sgd_steps = (long)iv[S_SGD];
	s->score_runs_done = (int32_t)iv[S_RUNS];
	nn_params_changed(m);
	st_free(&f);
	return 0;
}
