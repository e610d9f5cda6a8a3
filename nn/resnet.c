/* ResNet definitions, the state dict table, and the forward/backward passes over the op plan. */
#include "resnet.h"
#include "plan.h"
#include "gpu.h"
#include "io.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* ---- building the state dict and the plan ---- */

static int add_tensor(nn_model *m, const char *prefix, const char *name, int kind, int ndim,
                      int64_t s0, int64_t s1, int64_t s2, int64_t s3)
{
	nn_tensor *t;
	int64_t sh[4] = { s0, s1, s2, s3 };

	m->t = xreallocarray(m->t, (size_t)m->nt + 1, sizeof(nn_tensor));
	t = &m->t[m->nt];
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s%s%s", prefix, *prefix ? "." : "", name);
	t->kind = kind;
	t->ndim = ndim;
	t->numel = 1;
	for (int i = 0; i < ndim; i++) {
		t->shape[i] = sh[i];
		t->numel *= (size_t)sh[i];
	}
	if (kind == NN_PARAM) {
		t->off = m->nparams;
		m->nparams += t->numel;
	} else if (kind == NN_BUFFER) {
		t->off = m->nbuffers;
		m->nbuffers += t->numel;
	} else {
		t->off = (size_t)m->ncounters++;
	}
	return m->nt++;
}

static int add_act(nn_model *m)
{
	m->acts = xreallocarray(m->acts, (size_t)m->nacts + 1, sizeof(nn_act));
	memset(&m->acts[m->nacts], 0, sizeof(nn_act));
	return m->nacts++;
}

static nn_op *add_op(nn_model *m, int kind, int in)
{
	nn_op *o;

	m->ops = xreallocarray(m->ops, (size_t)m->nops + 1, sizeof(nn_op));
	o = &m->ops[m->nops++];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->in = in;
	o->in2 = -1;
	o->t = -1;
	o->fold = -1;
	o->out = kind == OP_RELU || kind == OP_ADD ? in : add_act(m);
	return o;
}

static int conv(nn_model *m, const char *prefix, int in, int cin, int cout, int k, int stride)
{
	nn_op *o = add_op(m, OP_CONV, in);

	o->t = add_tensor(m, prefix, "weight", NN_PARAM, 4, cout, cin, k, k);
	o->cin = cin;
	o->cout = cout;
	o->k = k;
	o->stride = stride;
	o->pad = k / 2;
	return o->out;
}

static int bn(nn_model *m, const char *prefix, int in, int c)
{
	nn_op *o = add_op(m, OP_BN, in);
	int idx = m->nops - 1;

	o->t = add_tensor(m, prefix, "weight", NN_PARAM, 1, c, 0, 0, 0);
	add_tensor(m, prefix, "bias", NN_PARAM, 1, c, 0, 0, 0);
	add_tensor(m, prefix, "running_mean", NN_BUFFER, 1, c, 0, 0, 0);
	add_tensor(m, prefix, "running_var", NN_BUFFER, 1, c, 0, 0, 0);
	add_tensor(m, prefix, "num_batches_tracked", NN_COUNTER, 0, 0, 0, 0, 0);
	o->cin = o->cout = c;
	if (idx > 0 && m->ops[idx - 1].kind == OP_CONV && m->ops[idx - 1].out == in)
		m->ops[idx - 1].fold = idx;
	return o->out;
}

static int relu(nn_model *m, int in)
{
	return add_op(m, OP_RELU, in)->out;
}

/* conv (k, stride) + bn [+ relu] named prefix.convN / prefix.bnN */
static int conv_bn(nn_model *m, const char *cname, const char *bname, int in, int cin,
                   int cout, int k, int stride, int do_relu)
{
	int a = bn(m, bname, conv(m, cname, in, cin, cout, k, stride), cout);
	return do_relu ? relu(m, a) : a;
}

static int block(nn_model *m, const char *pre, int in, int cin, int planes, int stride,
                 int bottleneck)
{
	char c1[48], c2[48], c3[48], b1[48], b2[48], b3[48], d0[48], d1[48];
	int out_c = bottleneck ? planes * 4 : planes, a, id = in;

	snprintf(c1, sizeof c1, "%s.conv1", pre); snprintf(b1, sizeof b1, "%s.bn1", pre);
	snprintf(c2, sizeof c2, "%s.conv2", pre); snprintf(b2, sizeof b2, "%s.bn2", pre);
	snprintf(c3, sizeof c3, "%s.conv3", pre); snprintf(b3, sizeof b3, "%s.bn3", pre);
	snprintf(d0, sizeof d0, "%s.downsample.0", pre);
	snprintf(d1, sizeof d1, "%s.downsample.1", pre);
	if (bottleneck) {
		a = conv_bn(m, c1, b1, in, cin, planes, 1, 1, 1);
		a = conv_bn(m, c2, b2, a, planes, planes, 3, stride, 1);
		a = conv_bn(m, c3, b3, a, planes, out_c, 1, 1, 0);
	} else {
		a = conv_bn(m, c1, b1, in, cin, planes, 3, stride, 1);
		a = conv_bn(m, c2, b2, a, planes, planes, 3, 1, 0);
	}
	if (stride != 1 || cin != out_c)
		id = conv_bn(m, d0, d1, in, cin, out_c, 1, stride, 0);
	nn_op *o = add_op(m, OP_ADD, a);
	o->in2 = id;
	return relu(m, a);
}

static const struct {
	const char *name;
	int cifar_stem, classic, bottleneck, nstages, blocks[4];
} archs[] = {
	{ "resnet18", 0, 0, 0, 4, { 2, 2, 2, 2 } },
	{ "resnet34", 0, 0, 0, 4, { 3, 4, 6, 3 } },
	{ "resnet50", 0, 0, 1, 4, { 3, 4, 6, 3 } },
	{ "resnet18-cifar", 1, 0, 0, 4, { 2, 2, 2, 2 } },
	{ "resnet20", 1, 1, 0, 3, { 3, 3, 3 } },
	{ "resnet32", 1, 1, 0, 3, { 5, 5, 5 } },
	{ "resnet56", 1, 1, 0, 3, { 9, 9, 9 } },
};

const char *nn_arch_names(void)
{
	return "resnet18 resnet34 resnet50 resnet18-cifar resnet20 resnet32 resnet56";
}

static int scaled(int base, double width)
{
	int c = (int)lround(base * width);
	return c < 1 ? 1 : c;
}

nn_model *nn_create(const char *arch, int in_ch, double width, int num_classes, uint64_t seed)
{
	int ai = -1;

	for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
		if (strcmp(arch, archs[i].name) == 0)
			ai = (int)i;
	if (ai < 0 || in_ch < 1 || width <= 0 || num_classes < 0)
		return NULL;

	nn_model *m = xcalloc(1, sizeof(nn_model));
	snprintf(m->arch, sizeof m->arch, "%s", arch);
	m->in_ch = in_ch;
	m->width = width;
	m->num_classes = num_classes;
	m->bn_momentum = 0.1f;
	m->bn_eps = 1e-5f;

	int base = archs[ai].classic ? 16 : 64, exp = archs[ai].bottleneck ? 4 : 1;
	int a = add_act(m);       /* 0: the input */
	int c = scaled(base, width);
	if (archs[ai].cifar_stem) {
		a = conv_bn(m, "conv1", "bn1", a, in_ch, c, 3, 1, 1);
	} else {
		a = conv_bn(m, "conv1", "bn1", a, in_ch, c, 7, 2, 1);
		a = add_op(m, OP_MAXPOOL, a)->out;
	}
	int cin = c;
	for (int s = 0; s < archs[ai].nstages; s++) {
		int planes = scaled(base << s, width);
		for (int b = 0; b < archs[ai].blocks[s]; b++) {
			char pre[32];
			snprintf(pre, sizeof pre, "layer%d.%d", s + 1, b);
			a = block(m, pre, a, cin, planes, b == 0 && s > 0 ? 2 : 1, archs[ai].bottleneck);
			cin = planes * exp;
		}
	}
	nn_op *o = add_op(m, OP_AVGPOOL, a);
	o->cin = o->cout = cin;
	a = o->out;
	m->feat_dim = cin;
	if (num_classes > 0) {
		o = add_op(m, OP_FC, a);
		o->t = add_tensor(m, "fc", "weight", NN_PARAM, 2, num_classes, cin, 0, 0);
		add_tensor(m, "fc", "bias", NN_PARAM, 1, num_classes, 0, 0, 0);
		o->cin = cin;
		o->cout = num_classes;
		a = o->out;
	}
	m->out_act = a;

	m->params = xcalloc(m->nparams, sizeof(float));
	m->grads = xcalloc(m->nparams, sizeof(float));
	m->momentum = xcalloc(m->nparams, sizeof(float));
	m->buffers = xcalloc(m->nbuffers, sizeof(float));
	m->counters = xcalloc((size_t)m->ncounters, sizeof(int64_t));
	size_t stats = 0, folded = 0;
	for (int i = 0; i < m->nops; i++) {
		nn_op *p = &m->ops[i];
		if (p->kind == OP_BN) {
			p->stat_off = stats;
			stats += 2 * (size_t)p->cout;
		}
		if (p->kind == OP_CONV && p->fold >= 0) {
			p->fold_off = folded;
			folded += m->t[p->t].numel + (size_t)p->cout;
		}
	}
	m->stats = xcalloc(stats, sizeof(float));
	m->folded = xcalloc(folded, sizeof(float));
	nn_init(m, seed);
	return m;
}

void nn_free(nn_model *m)
{
	if (!m)
		return;
	gpu_train_free(m->gpu);
	free(m->t);
	free(m->params);
	free(m->grads);
	free(m->momentum);
	free(m->buffers);
	free(m->counters);
	free(m->ops);
	free(m->acts);
	free(m->act_block);
	free(m->grad_block);
	free(m->stats);
	free(m->folded);
	free(m->probs);
	free(m->argmax);
	free(m->grad_live);
	free(m);
}

/* ---- initialization ---- */

static double rng_normal(uint64_t *s)
{
	double u = rng_uniform(s), v = rng_uniform(s);
	return sqrt(-2.0 * log(u + 1e-300)) * cos(2.0 * M_PI * v);
}

void nn_init(nn_model *m, uint64_t seed)
{
	uint64_t s = seed ^ 0x5eed5eedULL;

	for (int i = 0; i < m->nt; i++) {
		nn_tensor *t = &m->t[i];
		float *d = nn_tensor_data(m, t);
		size_t len = strlen(t->name);
		int is_bias = len >= 4 && strcmp(t->name + len - 4, "bias") == 0;
		if (t->kind == NN_COUNTER) {
			m->counters[t->off] = 0;
		} else if (t->ndim == 4) {            /* conv: kaiming normal, fan_out, relu */
			double std = sqrt(2.0 / (double)(t->shape[0] * t->shape[2] * t->shape[3]));
			for (size_t k = 0; k < t->numel; k++)
				d[k] = (float)(std * rng_normal(&s));
		} else if (t->ndim == 2 || (is_bias && strncmp(t->name, "fc.", 3) == 0)) {
			double bound = 1.0 / sqrt((double)m->feat_dim);   /* torch Linear default */
			for (size_t k = 0; k < t->numel; k++)
				d[k] = (float)((2 * rng_uniform(&s) - 1) * bound);
		} else {
			int one = strstr(t->name, "running_var") || (!is_bias && !strstr(t->name, "running_mean"));
			for (size_t k = 0; k < t->numel; k++)
				d[k] = one ? 1.0f : 0.0f;
		}
	}
	memset(m->momentum, 0, sizeof(float) * m->nparams);
	m->sgd_steps = 0;
	m->fold_dirty = 1;
}

const nn_tensor *nn_find(const nn_model *m, const char *name)
{
	for (int i = 0; i < m->nt; i++)
		if (strcmp(m->t[i].name, name) == 0)
			return &m->t[i];
	return NULL;
}

float *nn_tensor_data(const nn_model *m, const nn_tensor *t)
{
	if (t->kind == NN_PARAM)
		return m->params + t->off;
	if (t->kind == NN_BUFFER)
		return m->buffers + t->off;
	return NULL;
}

void nn_params_changed(nn_model *m)
{
	m->fold_dirty = 1;
}

void nn_sync(nn_model *m)
{
	cull_err e;

	if (m->gpu && gpu_train_download(m->gpu, &e) < 0)
		die_err(&e);
}

/* ---- setup: shapes and buffers ---- */

void nn_plan_shapes(nn_model *m, int h, int w)
{
	m->acts[0] = (nn_act){ .c = m->in_ch, .h = h, .w = w };
	for (int i = 0; i < m->nops; i++) {
		nn_op *o = &m->ops[i];
		nn_act *in = &m->acts[o->in], *out = &m->acts[o->out];
		switch (o->kind) {
		case OP_CONV:
			out->c = o->cout;
			out->h = (in->h + 2 * o->pad - o->k) / o->stride + 1;
			out->w = (in->w + 2 * o->pad - o->k) / o->stride + 1;
			break;
		case OP_MAXPOOL:
			out->c = in->c;
			out->h = maxpool_out(in->h);
			out->w = maxpool_out(in->w);
			break;
		case OP_AVGPOOL:
			*out = (nn_act){ .c = in->c, .h = 1, .w = 1 };
			break;
		case OP_FC:
			*out = (nn_act){ .c = o->cout, .h = 1, .w = 1 };
			break;
		default:
			if (o->out != o->in) {
				out->c = in->c;
				out->h = in->h;
				out->w = in->w;
			}
		}
		if (out->h < 1 || out->w < 1)
			die(EXIT_USAGE, "%s: input %dx%d is too small", m->arch, h, w);
	}
	for (int a = 0; a < m->nacts; a++)
		m->acts[a].size = (size_t)m->acts[a].c * m->acts[a].h * m->acts[a].w;
}

static conv_geom geom(const nn_model *m, const nn_op *o, int n);

/* Whether op i is a BN whose output goes through a ReLU (not after a residual add) that
 * runs fused into it (and into its conv when folded). */
int nn_plan_relu_fused(const nn_model *m, int i)
{
	return m->ops[i].kind == OP_BN && i + 1 < m->nops && m->ops[i + 1].kind == OP_RELU &&
	       m->ops[i + 1].in == m->ops[i].out;
}

/* Layouts: with oneDNN, every activation from a convolution on (to the pooling) is kept
 * in the convolutions' blocked layout where its channels fill whole blocks, so that no
 * convolution reorders its operands; BN, ReLU, the residual add and the pools work on it
 * in place. The input image and the pooled features stay NCHW. If oneDNN refuses any
 * convolution in those layouts, everything stays NCHW. */
static void layouts(nn_model *m, int batch, int train)
{
	int blk = nn_layout_block(), ok = 1;

	for (int a = 0; a < m->nacts; a++)
		m->acts[a].blk = 0;
	if (!blk)
		return;
	for (int i = 0; i < m->nops; i++) {
		const nn_op *o = &m->ops[i];
		nn_act *in = &m->acts[o->in], *out = &m->acts[o->out];
		if (o->kind == OP_CONV)
			out->blk = out->c % blk == 0 ? blk : 0;
		else if (o->kind != OP_AVGPOOL && o->kind != OP_FC)
			out->blk = in->blk;
		if (o->kind == OP_ADD && m->acts[o->in2].blk != in->blk)
			die(EXIT_USAGE, "%s: the residual add joins two layouts", m->arch);
	}
	for (int i = 0; i < m->nops && ok; i++)
		if (m->ops[i].kind == OP_CONV) {   /* the variant forward() will run */
			const nn_op *o = &m->ops[i];
			conv_geom g = geom(m, o, batch);
			int folded = !train && !m->no_fold && o->fold >= 0;
			ok = !(g.blk_in || g.blk_out) ||
			     conv2d_blocked_ok(&g, train, folded,
			                       folded && nn_plan_relu_fused(m, o->fold) ? NN_RELU : 0);
		}
	for (int a = 0; !ok && a < m->nacts; a++)
		m->acts[a].blk = 0;
}

/* Eval: the act an op writes, with a folded BN's output taking the conv's place. */
static int eval_out(const nn_model *m, int i)
{
	const nn_op *o = &m->ops[i];
	return o->kind == OP_CONV && o->fold >= 0 && !m->no_fold ? m->ops[o->fold].out : o->out;
}

static int eval_skipped(const nn_model *m, int i)
{
	return !m->no_fold && m->ops[i].kind == OP_BN && i > 0 && m->ops[i - 1].fold == i;
}

void nn_setup(nn_model *m, int batch, int h, int w, int train)
{
	if (m->act_block && m->batch == batch && m->h == h && m->w == w && m->train == train)
		return;
	free(m->act_block);
	free(m->grad_block);
	free(m->argmax);
	free(m->probs);
	free(m->grad_live);
	m->act_block = m->grad_block = m->probs = NULL;
	m->argmax = NULL;
	m->batch = batch;
	m->h = h;
	m->w = w;
	m->train = train;
	nn_plan_shapes(m, h, w);
	layouts(m, batch, train);

	size_t total = 0, idx = 0;
	for (int i = 0; i < m->nops; i++)
		if (m->ops[i].kind == OP_MAXPOOL) {
			m->ops[i].idx_off = idx;
			idx += m->acts[m->ops[i].out].size;
		}
	m->argmax = xcalloc(idx * batch + 1, sizeof(int32_t));
	m->probs = xcalloc((size_t)batch * (m->num_classes + 1), sizeof(float));
	m->grad_live = xcalloc((size_t)m->nacts, 1);
	for (int a = 0; a < m->nacts; a++)
		m->acts[a].data = m->acts[a].grad = NULL;

	if (train) {
		/* every activation and its gradient kept: one block each */
		for (int a = 1; a < m->nacts; a++)
			total += m->acts[a].size * batch;
		/* no zeroing: every activation and gradient is written before it is read */
		m->act_block = xmalloc(sizeof(float) * (total + 1));
		m->grad_block = xmalloc(sizeof(float) * (total + 1));
		size_t off = 0;
		for (int a = 1; a < m->nacts; a++) {
			m->acts[a].data = m->act_block + off;
			m->acts[a].grad = m->grad_block + off;
			off += m->acts[a].size * batch;
		}
		m->act_floats = m->grad_floats = total;
		return;
	}

	/* eval: give each activation a slot free between its write and its last read */
	int *last = xmalloc(sizeof(int) * m->nacts), *slot = xmalloc(sizeof(int) * m->nacts);
	int nslots = 0, slot_owner[64];
	size_t maxsize = 0;
	for (int a = 0; a < m->nacts; a++) {
		last[a] = -1;
		slot[a] = -1;
		if (m->acts[a].size > maxsize)
			maxsize = m->acts[a].size;
	}
	for (int i = 0; i < m->nops; i++) {
		if (eval_skipped(m, i))
			continue;
		last[m->ops[i].in] = i;
		if (m->ops[i].in2 >= 0)
			last[m->ops[i].in2] = i;
		last[eval_out(m, i)] = i > last[eval_out(m, i)] ? i : last[eval_out(m, i)];
	}
	last[m->out_act] = m->nops;
	if (m->num_classes > 0)
		last[m->ops[m->nops - 1].in] = m->nops;   /* keep the features readable */
	for (int i = 0; i < m->nops; i++) {
		if (eval_skipped(m, i))
			continue;
		int out = eval_out(m, i);
		if (out != 0 && slot[out] < 0) {
			int s;
			for (s = 0; s < nslots; s++)
				if (slot_owner[s] < 0)
					break;
			if (s == nslots) {
				if (nslots == 64)
					die(EXIT_NOMEM, "%s: too many live activations", m->arch);
				nslots++;
			}
			slot_owner[s] = out;
			slot[out] = s;
		}
		for (int s = 0; s < nslots; s++)
			if (slot_owner[s] >= 0 && last[slot_owner[s]] <= i && slot_owner[s] != out)
				slot_owner[s] = -1;
	}
	m->act_block = xcalloc((size_t)nslots * maxsize * batch + 1, sizeof(float));
	m->act_floats = (size_t)nslots * maxsize * batch;
	m->grad_floats = 0;
	for (int a = 1; a < m->nacts; a++)
		if (slot[a] >= 0)
			m->acts[a].data = m->act_block + (size_t)slot[a] * maxsize * batch;
	free(last);
	free(slot);
}

/* ---- forward ---- */

void nn_plan_fold(nn_model *m)
{
	for (int i = 0; i < m->nops; i++) {
		nn_op *o = &m->ops[i];
		if (o->kind != OP_CONV || o->fold < 0)
			continue;
		nn_op *b = &m->ops[o->fold];
		const nn_tensor *wt = &m->t[o->t], *g = &m->t[b->t];
		float *wf = m->folded + o->fold_off;
		batchnorm_fold(wf, wf + wt->numel, m->params + wt->off, NULL, m->params + g->off,
		               m->params + g[1].off, m->buffers + g[2].off, m->buffers + g[3].off,
		               o->cout, wt->numel / (size_t)o->cout, m->bn_eps);
	}
	m->fold_dirty = 0;
}

static conv_geom geom(const nn_model *m, const nn_op *o, int n)
{
	const nn_act *in = &m->acts[o->in];
	conv_geom g = { .n = n, .c = in->c, .h = in->h, .w = in->w, .oc = o->cout, .kh = o->k,
		.kw = o->k, .stride = o->stride, .pad = o->pad, .blk_in = in->blk,
		.blk_out = m->acts[o->out].blk };
	conv2d_shape(&g);
	return g;
}

const float *nn_forward(nn_model *m, const float *x, int n, int train)
{
	if (!m->act_block)
		die(EXIT_USAGE, "nn_forward before nn_setup");
	if (n > m->batch || n < 1)
		die(EXIT_USAGE, "nn_forward: batch %d outside 1..%d", n, m->batch);
	if (train && !m->train)
		die(EXIT_USAGE, "nn_forward: training forward on an eval-only setup");
	if (m->gpu && train) {
		cull_err e;
		if (gpu_train_forward(m->gpu, x, n, &e) < 0)
			die_err(&e);
		m->fwd_train = 1;
		memset(m->acts[m->out_act].grad, 0, sizeof(float) * m->acts[m->out_act].size * n);
		return m->acts[m->out_act].data;
	}
	nn_sync(m);                 /* an eval forward of a model trained on a GPU */
	int fold = !train && !m->no_fold;
	if (fold && m->fold_dirty)
		nn_plan_fold(m);
	m->acts[0].data = (float *)x;

	for (int i = 0; i < m->nops; i++) {
		nn_op *o = &m->ops[i];
		nn_act *in = &m->acts[o->in], *out = &m->acts[o->out];
		const nn_tensor *t = o->t >= 0 ? &m->t[o->t] : NULL;
		switch (o->kind) {
		case OP_CONV: {
			conv_geom g = geom(m, o, n);
			if (fold && o->fold >= 0) {
				const float *wf = m->folded + o->fold_off;
				conv2d_forward(m->acts[m->ops[o->fold].out].data, in->data, wf,
				               wf + t->numel, &g, nn_plan_relu_fused(m, o->fold) ? NN_RELU : 0);
			} else {
				conv2d_forward(out->data, in->data, m->params + t->off, NULL, &g, 0);
			}
			break;
		}
		case OP_BN: {
			if (fold && eval_skipped(m, i))
				break;
			int hw = in->h * in->w;
			float *gam = m->params + t[0].off, *bet = m->params + t[1].off;
			float *rm = m->buffers + t[2].off, *rv = m->buffers + t[3].off;
			int fl = nn_plan_relu_fused(m, i) ? NN_RELU : 0;
			float *mean = m->stats + o->stat_off, *rstd = mean + o->cout;
			if (train && in->blk) {
				batchnorm_forward_train_blk(out->data, mean, rstd, rm, rv, in->data, gam, bet,
				                            n, o->cout, hw, m->bn_momentum, m->bn_eps, fl,
				                            in->blk);
			} else if (train) {
				batchnorm_forward_train(out->data, mean, rstd, rm, rv, in->data, gam, bet, n,
				                        o->cout, hw, m->bn_momentum, m->bn_eps, fl);
			} else if (in->blk) {
				batchnorm_forward_eval_blk(out->data, in->data, gam, bet, rm, rv, n, o->cout,
				                           hw, m->bn_eps, fl, in->blk);
			} else {
				batchnorm_forward_eval(out->data, in->data, gam, bet, rm, rv, n, o->cout, hw,
				                       m->bn_eps, fl);
			}
			if (train)
				m->counters[t[4].off]++;
			break;
		}
		case OP_RELU:
			if (i == 0 || !nn_plan_relu_fused(m, i - 1))
				relu_forward(out->data, in->data, in->size * n);
			break;
		case OP_ADD:
			add_forward(out->data, in->data, m->acts[o->in2].data, in->size * n);
			break;
		case OP_MAXPOOL:
			if (in->blk)
				maxpool_forward_blk(out->data, m->argmax + o->idx_off * n, in->data, n, in->c,
				                    in->h, in->w, out->h, out->w, in->blk);
			else
				maxpool_forward(out->data, m->argmax + o->idx_off * n, in->data, n, in->c,
				                in->h, in->w, out->h, out->w);
			break;
		case OP_AVGPOOL:
			if (in->blk)
				avgpool_forward_blk(out->data, in->data, n, in->c, in->h * in->w, in->blk);
			else
				avgpool_forward(out->data, in->data, n, in->c, in->h * in->w);
			break;
		case OP_FC:
			linear_forward(out->data, in->data, m->params + t[0].off, m->params + t[1].off, n,
			               o->cin, o->cout);
			break;
		}
	}
	m->fwd_train = train;
	if (train) {
		memset(m->grad_live, 0, (size_t)m->nacts);
		nn_act *o = &m->acts[m->out_act];
		memset(o->grad, 0, sizeof(float) * o->size * n);
		m->grad_live[m->out_act] = 1;
	}
	return m->acts[m->out_act].data;
}

const float *nn_output(const nn_model *m)
{
	return m->acts[m->out_act].data;
}

const float *nn_features(const nn_model *m)
{
	int a = m->num_classes > 0 ? m->ops[m->nops - 1].in : m->out_act;
	return m->acts[a].data;
}

float *nn_output_grad(nn_model *m)
{
	return m->acts[m->out_act].grad;
}

const float *nn_probs(const nn_model *m)
{
	return m->probs;
}

double nn_xent(nn_model *m, const int *labels, int n, float smoothing, float *losses)
{
	int k = m->num_classes;

	if (k <= 0)
		die(EXIT_USAGE, "nn_xent: model %s has no classifier", m->arch);
	for (int i = 0; i < n; i++)
		if (labels[i] < 0 || labels[i] >= k)
			die(EXIT_DATA, "label %d outside 0..%d", labels[i], k - 1);
	double loss = softmax_xent_forward(m->probs, losses, m->acts[m->out_act].data, labels, n,
	                                   k, smoothing);
	if (m->fwd_train)
		softmax_xent_backward(nn_output_grad(m), m->probs, labels, n, k, smoothing);
	return loss;
}

/* ---- backward ---- */

/* The gradient buffer of activation a; *flags is NN_OVERWRITE for its first consumer
 * (which then writes instead of accumulating: no zeroing pass). */
static float *grad(nn_model *m, int a, int *flags)
{
	*flags = 0;
	if (a == 0)
		return NULL;          /* no gradient for the input image */
	if (!m->grad_live[a]) {
		m->grad_live[a] = 1;
		*flags = NN_OVERWRITE;
	}
	return m->acts[a].grad;
}

void nn_backward(nn_model *m, int n)
{
	if (m->gpu) {
		cull_err e;
		if (gpu_train_backward(m->gpu, n, &e) < 0)
			die_err(&e);
		return;
	}
	for (int i = m->nops - 1; i >= 0; i--) {
		nn_op *o = &m->ops[i];
		nn_act *in = &m->acts[o->in], *out = &m->acts[o->out];
		const nn_tensor *t = o->t >= 0 ? &m->t[o->t] : NULL;
		if (!m->grad_live[o->out])
			continue;
		float *dout = out->grad, *din;
		int fl;
		switch (o->kind) {
		case OP_CONV: {
			conv_geom g = geom(m, o, n);
			din = grad(m, o->in, &fl);
			conv2d_backward(din, m->grads + t->off, NULL, dout, in->data, m->params + t->off,
			                &g, fl);
			break;
		}
		case OP_BN:
			din = grad(m, o->in, &fl);
			if (in->blk)
				batchnorm_backward_blk(din, m->grads + t[0].off, m->grads + t[1].off, dout,
				                       in->data, m->stats + o->stat_off,
				                       m->stats + o->stat_off + o->cout, m->params + t[0].off,
				                       nn_plan_relu_fused(m, i) ? out->data : NULL, n, o->cout,
				                       in->h * in->w, fl, in->blk);
			else
				batchnorm_backward(din, m->grads + t[0].off, m->grads + t[1].off, dout,
				                   in->data, m->stats + o->stat_off,
				                   m->stats + o->stat_off + o->cout, m->params + t[0].off,
				                   nn_plan_relu_fused(m, i) ? out->data : NULL, n, o->cout,
				                   in->h * in->w, fl);
			break;
		case OP_RELU:         /* in place: mask the gradient by the output */
			if (i == 0 || !nn_plan_relu_fused(m, i - 1))
				relu_backward(dout, dout, out->data, out->size * n);
			break;
		case OP_ADD:          /* in place: the gradient of `in` is dout itself */
			din = grad(m, o->in2, &fl);
			if (fl & NN_OVERWRITE)
				memcpy(din, dout, sizeof(float) * out->size * n);
			else
				add_backward(NULL, din, dout, out->size * n);
			break;
		case OP_MAXPOOL:
			din = grad(m, o->in, &fl);
			if (in->blk)
				maxpool_backward_blk(din, dout, m->argmax + o->idx_off * n, n, in->c, in->h,
				                     in->w, out->h, out->w, fl, in->blk);
			else
				maxpool_backward(din, dout, m->argmax + o->idx_off * n, n, in->c, in->h,
				                 in->w, out->h, out->w, fl);
			break;
		case OP_AVGPOOL:
			din = grad(m, o->in, &fl);
			if (in->blk)
				avgpool_backward_blk(din, dout, n, in->c, in->h * in->w, fl, in->blk);
			else
				avgpool_backward(din, dout, n, in->c, in->h * in->w, fl);
			break;
		case OP_FC:
			din = grad(m, o->in, &fl);
			linear_backward(din, m->grads + t[0].off, m->grads + t[1].off, dout, in->data,
			                m->params + t[0].off, n, o->cin, o->cout, fl);
			break;
		}
	}
}

void nn_zero_grad(nn_model *m)
{
	cull_err e;

	if (m->gpu && gpu_train_zero_grad(m->gpu, &e) < 0)
		die_err(&e);
	memset(m->grads, 0, sizeof(float) * m->nparams);
}

double nn_forward_macs(const nn_model *m, int h, int w)
{
	double macs = 0;
	nn_model *mm = (nn_model *)m;
	nn_act *save = xmalloc(sizeof(nn_act) * m->nacts);

	memcpy(save, m->acts, sizeof(nn_act) * m->nacts);
	nn_plan_shapes(mm, h, w);
	for (int i = 0; i < m->nops; i++) {
		const nn_op *o = &m->ops[i];
		if (o->kind == OP_CONV)
			macs += (double)m->t[o->t].numel * m->acts[o->out].h * m->acts[o->out].w;
		else if (o->kind == OP_FC)
			macs += (double)o->cin * o->cout;
	}
	memcpy(mm->acts, save, sizeof(nn_act) * m->nacts);
	free(save);
	return macs;
}

static int count_blocks(const st_file *f, int layer)
{
	char name[64];
	int n = 0;

	for (;; n++) {
		snprintf(name, sizeof name, "layer%d.%d.conv1.weight", layer, n);
		if (!st_find(f, name))
			return n;
	}
}

int nn_infer_arch(const st_file *f, char *arch, size_t archlen, int *in_ch, double *width,
                  cull_err *e)
{
	const st_entry *c1 = st_find(f, "conv1.weight");
	int n3, bottleneck, cifar_stem, stages4;

	*in_ch = 0;
	if (!c1 || c1->ndim != 4)
		return cull_err_set(e, EXIT_DATA, "no 4-d tensor 'conv1.weight': not a torchvision "
		                    "ResNet state dict");
	cifar_stem = c1->shape[2] == 3;
	bottleneck = st_find(f, "layer1.0.conv3.weight") != NULL;
	stages4 = st_find(f, "layer4.0.conv1.weight") != NULL;
	*in_ch = (int)c1->shape[1];
	*width = (double)c1->shape[0] / (stages4 ? 64.0 : 16.0);
	n3 = count_blocks(f, 3);
	if (!stages4 && (n3 == 3 || n3 == 5 || n3 == 9))
		snprintf(arch, archlen, "resnet%d", 6 * n3 + 2);
	else if (stages4 && bottleneck && n3 == 6 && !cifar_stem)
		snprintf(arch, archlen, "resnet50");
	else if (stages4 && !bottleneck && n3 == 2)
		snprintf(arch, archlen, cifar_stem ? "resnet18-cifar" : "resnet18");
	else if (stages4 && !bottleneck && n3 == 6 && !cifar_stem)
		snprintf(arch, archlen, "resnet34");
	else
		return cull_err_set(e, EXIT_DATA, "cannot infer the architecture from its tensors; "
		                    "give --arch");
	return 0;
}
