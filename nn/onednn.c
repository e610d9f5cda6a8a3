/*
 * Convolutions on oneDNN, behind conv2d_forward / conv2d_backward (layers.c).
 *
 * Built when the oneDNN headers are present (the Makefile defines CULL_DNNL); otherwise
 * every function here reports "not handled" and the layers use im2col + sgemm, which is
 * also what CULL_NN=blas selects at run time. An operand in another layout than the one
 * oneDNN's kernel wants (NCHW, usually) is reordered into it before the call and the
 * result back after (a memory pass each); a ResNet avoids that by keeping its activations
 * in the kernels' own blocked layout (conv_geom.blk_in/blk_out, nn_layout_block).
 *
 * One primitive per (direction, geometry, fusion, thread count), made on first use and
 * kept; the blocked copies live in grow-only buffers shared by all convolutions (one
 * layer runs at a time), so the steady state reuses everything.
 */
#include "onednn.h"
#include "io.h"
#include "simd.h"
#include "threads.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *openblas_get_corename(void);

#ifdef CULL_DNNL
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <omp.h>
#ifdef __SSE2__
#include <xmmintrin.h>
#endif

enum { FWD, BWD_DATA, BWD_WEIGHTS };
enum { PORTS = 3 };

typedef struct {
	dnnl_memory_desc_t user, prim;  /* plain layout; the primitive's */
	int c16;                        /* prim is nChw16c of an nchw user: own transpose back */
	dnnl_memory_t user_mem, prim_mem;
	dnnl_primitive_t to_prim;       /* user -> prim (inputs), NULL if the layouts agree */
	dnnl_primitive_t to_user;       /* prim -> user, overwriting (outputs) */
	dnnl_primitive_t add_user;      /* prim -> user, accumulating (outputs) */
	int out;                        /* written by the primitive */
} port;

typedef struct {
	int kind, bias, relu, threads;
	int want_bf16, bf16;            /* asked for; granted (the CPU has bf16 kernels) */
	conv_geom g;
	int ok;                         /* 0: oneDNN refused; use the sgemm path */
	dnnl_primitive_t prim;
	port p[PORTS];
	dnnl_memory_t bias_mem;
} entry;

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static int state;                   /* 0 unknown, 1 on, -1 off */
static int bf16;                    /* convolutions in bfloat16 (nn_set_bf16) */
static int emulate;                 /* bfloat16 emulated: float kernels, rounded operands */
static entry **cache;               /* entries stay put while the table grows */
static int ncache, capcache;
static struct { void *p; size_t n; } buf[PORTS + 1];

static void check(dnnl_status_t s, const char *what)
{
	if (s != dnnl_success)
		die(EXIT_NOMEM, "oneDNN: %s failed: %s", what, dnnl_status2str(s));
}

static int enabled(void)
{
	if (state == 0) {
		const char *e = getenv("CULL_NN");
		nn_threads();            /* sets the OpenMP thread count too */
		state = e && strcmp(e, "blas") == 0 ? -1 : 1;
		if (state > 0) {
			check(dnnl_engine_create(&engine, dnnl_cpu, 0), "engine");
			check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags), "stream");
		}
	}
	return state > 0;
}

static void *grow(int slot, size_t bytes)
{
	if (bytes > buf[slot].n) {
		free(buf[slot].p);
		buf[slot].p = NULL;
		if (posix_memalign(&buf[slot].p, 64, bytes) != 0)
			die(EXIT_NOMEM, "out of memory allocating %zu bytes for oneDNN", bytes);
		buf[slot].n = bytes;
	}
	return buf[slot].p;
}

static dnnl_primitive_t reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                int accumulate)
{
	dnnl_primitive_attr_t attr = NULL;
	dnnl_primitive_desc_t pd;
	dnnl_primitive_t r;

	if (accumulate) {
		dnnl_post_ops_t po;
		check(dnnl_primitive_attr_create(&attr), "attr");
		check(dnnl_post_ops_create(&po), "post-ops");
		check(dnnl_post_ops_append_sum(po, 1.0f), "sum post-op");
		check(dnnl_primitive_attr_set_post_ops(attr, po), "post-ops");
		dnnl_post_ops_destroy(po);
	}
	check(dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, attr), "reorder");
	check(dnnl_primitive_create(&r, pd), "reorder primitive");
	dnnl_primitive_desc_destroy(pd);
	if (attr)
		dnnl_primitive_attr_destroy(attr);
	return r;
}

static void plain(dnnl_memory_desc_t *md, int n, int c, int h, int w, dnnl_format_tag_t tag)
{
	dnnl_dims_t d = { n, c, h, w };
	check(dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, tag), "memory descriptor");
}

/* The memory format of an activation of layout blk (conv_geom.blk_in/blk_out). */
static dnnl_format_tag_t act_tag(int blk)
{
	return blk == 16 ? dnnl_nChw16c : blk == 8 ? dnnl_nChw8c : dnnl_nchw;
}

static int is_nchw(const dnnl_memory_desc_t *md)
{
	dnnl_memory_desc_t p;

	if (md->ndims != 4)
		return 0;
	plain(&p, (int)md->dims[0], (int)md->dims[1], (int)md->dims[2], (int)md->dims[3], dnnl_nchw);
	return dnnl_memory_desc_equal(md, &p);
}

static void make_port(port *p, const_dnnl_primitive_desc_t pd, dnnl_query_t q, int out)
{
	p->prim = *dnnl_primitive_desc_query_md(pd, q, 0);
	p->out = out;
	check(dnnl_memory_create(&p->user_mem, &p->user, engine, DNNL_MEMORY_NONE), "memory");
	check(dnnl_memory_create(&p->prim_mem, &p->prim, engine, DNNL_MEMORY_NONE), "memory");
	if (!out) {
		if (!dnnl_memory_desc_equal(&p->user, &p->prim))
			p->to_prim = reorder(&p->user, &p->prim, 0);
		return;
	}
	dnnl_memory_desc_t c16;
	const dnnl_dims_t *d = &p->user.dims;
	plain(&c16, (int)(*d)[0], (int)(*d)[1], (int)(*d)[2], (int)(*d)[3], dnnl_aBcd16b);
	p->c16 = dnnl_memory_desc_equal(&p->prim, &c16) && p->user.dims[1] > 1 && is_nchw(&p->user);
	if (p->c16)
		return;
	if (!dnnl_memory_desc_equal(&p->user, &p->prim))
		p->to_user = reorder(&p->prim, &p->user, 0);
	p->add_user = reorder(&p->prim, &p->user, 1);
}

/* Make the primitive for e (kind, g, bias, relu, bf16 set); e->ok = 0 if oneDNN refuses.
 * In bfloat16 the operands a convolution reads (source, weights, output gradient) are
 * rounded to bfloat16 by the reorders into its layout; what it writes and its sums stay
 * float. Where oneDNN has only its slow reference kernel for that, it is built in float. */
static void build(entry *e)
{
	const conv_geom *g = &e->g;
	dnnl_memory_desc_t src, wei, dst, bias, any_src, any_wei, any_dst;
	dnnl_dims_t strides = { g->stride, g->stride }, pad = { g->pad, g->pad };
	dnnl_dims_t padr = {
		(g->oh - 1) * g->stride + g->kh - g->h - g->pad,
		(g->ow - 1) * g->stride + g->kw - g->w - g->pad,
	};
	dnnl_dims_t bd = { g->oc };
	dnnl_data_type_t lo = e->bf16 ? dnnl_bf16 : dnnl_f32;
	dnnl_convolution_desc_t cd, fd;
	dnnl_primitive_desc_t pd = NULL, hint = NULL;
	dnnl_primitive_attr_t attr = NULL;

	plain(&src, g->n, g->c, g->h, g->w, act_tag(g->blk_in));
	plain(&wei, g->oc, g->c, g->kh, g->kw, dnnl_oihw);
	plain(&dst, g->n, g->oc, g->oh, g->ow, act_tag(g->blk_out));
	plain(&any_src, g->n, g->c, g->h, g->w, dnnl_format_tag_any);
	plain(&any_wei, g->oc, g->c, g->kh, g->kw, dnnl_format_tag_any);
	plain(&any_dst, g->n, g->oc, g->oh, g->ow, dnnl_format_tag_any);
	any_src.data_type = any_wei.data_type = lo;
	any_dst.data_type = e->kind == FWD ? dnnl_f32 : lo;   /* the backward passes read it */
	check(dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_x), "memory descriptor");

	check(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
	                                         &any_src, &any_wei, e->bias ? &bias : NULL,
	                                         &any_dst, strides, pad, padr), "convolution");
	if (e->relu) {
		dnnl_post_ops_t po;
		check(dnnl_primitive_attr_create(&attr), "attr");
		check(dnnl_post_ops_create(&po), "post-ops");
		check(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f), "relu");
		check(dnnl_primitive_attr_set_post_ops(attr, po), "post-ops");
		dnnl_post_ops_destroy(po);
	}
	if (dnnl_primitive_desc_create(e->kind == FWD ? &pd : &hint, &fd, attr, engine, NULL)
	    != dnnl_success)
		goto out;
	if (e->kind == BWD_DATA) {
		any_src.data_type = dnnl_f32;           /* the input gradient it writes */
		check(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &any_src,
		                                               &any_wei, &any_dst, strides, pad, padr),
		      "convolution backward data");
		if (dnnl_primitive_desc_create(&pd, &cd, NULL, engine, hint) != dnnl_success)
			goto out;
	} else if (e->kind == BWD_WEIGHTS) {
		any_wei.data_type = dnnl_f32;           /* the weight gradient it writes */
		check(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct,
		                                                  &any_src, &any_wei,
		                                                  e->bias ? &bias : NULL, &any_dst,
		                                                  strides, pad, padr),
		      "convolution backward weights");
		if (dnnl_primitive_desc_create(&pd, &cd, NULL, engine, hint) != dnnl_success)
			goto out;
	}
	if (e->bf16) {      /* a CPU without bfloat16 kernels gets oneDNN's slow reference */
		const char *impl = NULL;
		if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) !=
		    dnnl_success || !impl || strncmp(impl, "ref", 3) == 0)
			goto out;
	}
	e->p[0].user = src;
	e->p[1].user = wei;
	e->p[2].user = dst;
	if (e->kind == FWD) {
		make_port(&e->p[0], pd, dnnl_query_src_md, 0);
		make_port(&e->p[1], pd, dnnl_query_weights_md, 0);
		make_port(&e->p[2], pd, dnnl_query_dst_md, 1);
	} else if (e->kind == BWD_DATA) {
		make_port(&e->p[0], pd, dnnl_query_diff_src_md, 1);
		make_port(&e->p[1], pd, dnnl_query_weights_md, 0);
		make_port(&e->p[2], pd, dnnl_query_diff_dst_md, 0);
	} else {
		make_port(&e->p[0], pd, dnnl_query_src_md, 0);
		make_port(&e->p[1], pd, dnnl_query_diff_weights_md, 1);
		make_port(&e->p[2], pd, dnnl_query_diff_dst_md, 0);
	}
	if (e->bias)
		check(dnnl_memory_create(&e->bias_mem, &bias, engine, DNNL_MEMORY_NONE), "memory");
	check(dnnl_primitive_create(&e->prim, pd), "convolution primitive");
	e->ok = 1;
out:
	if (pd)
		dnnl_primitive_desc_destroy(pd);
	if (hint)
		dnnl_primitive_desc_destroy(hint);
	if (attr)
		dnnl_primitive_attr_destroy(attr);
	if (!e->ok && e->bf16) {   /* refused or reference-only in bfloat16: float */
		e->bf16 = 0;
		build(e);
	}
}

static entry *lookup(int kind, const conv_geom *g, int bias, int relu)
{
	int threads = omp_get_max_threads();

	for (int i = 0; i < ncache; i++) {
		entry *e = cache[i];
		if (e->kind == kind && e->bias == bias && e->relu == relu && e->threads == threads &&
		    e->want_bf16 == bf16 &&
		    memcmp(&e->g, g, sizeof *g) == 0)
			return e;
	}
	if (ncache == capcache) {
		capcache = capcache ? 2 * capcache : 64;
		cache = xrealloc(cache, sizeof *cache * (size_t)capcache);
	}
	entry *e = xcalloc(1, sizeof *e);
	cache[ncache++] = e;
	e->kind = kind;
	e->g = *g;
	e->bias = bias;
	e->relu = relu;
	e->threads = threads;
	e->bf16 = e->want_bf16 = bf16;
	build(e);
	return e;
}

static void run(dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args)
{
	check(dnnl_primitive_execute(prim, stream, nargs, args), "execute");
}

static void run_reorder(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to)
{
	dnnl_exec_arg_t a[2] = { { DNNL_ARG_FROM, from }, { DNNL_ARG_TO, to } };
	run(r, 2, a);
}

/* Round to the nearest bfloat16, ties to even, keeping the float format (NaN stays NaN):
 * what a bfloat16 kernel reads, for the emulation (CULL_NN_BF16=emulate). */
static void round_bf16(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t v;
		memcpy(&v, &x[i], sizeof v);
		v = (v & 0x7fffffffu) > 0x7f800000u ? v | 0x00400000u : v + 0x7fffu + ((v >> 16) & 1);
		v &= 0xffff0000u;
		memcpy(&x[i], &v, sizeof v);
	}
}

/* Point port p at user data; inputs are reordered into the blocked buffer now (and, when
 * bfloat16 is emulated, copied and rounded even where the layouts agree). With `direct`,
 * an output whose layout is the user's is written in place. */
static void bind(port *p, int slot, void *data, int direct)
{
	check(dnnl_memory_set_data_handle(p->user_mem, data), "data handle");
	if (p->out ? direct && !p->to_user && !p->c16 : !p->to_prim && !emulate) {
		check(dnnl_memory_set_data_handle(p->prim_mem, data), "data handle");
		return;
	}
	size_t bytes = dnnl_memory_desc_get_size(&p->prim);
	void *b = grow(slot, bytes);
	check(dnnl_memory_set_data_handle(p->prim_mem, b), "data handle");
	if (p->out)
		return;
	if (p->to_prim)
		run_reorder(p->to_prim, p->user_mem, p->prim_mem);
	else
		memcpy(b, data, bytes);
	if (emulate)
		round_bf16(b, bytes / sizeof(float));
}

typedef struct {
	float *dst;
	const float *src;
	int c, hw, acc;
} unblock_job;

/* One 16-channel block of one image: src[hw][16] -> dst[c][hw] (= or +=). oneDNN's own
 * reorder for this direction runs at a fraction of memory bandwidth on some CPUs; this
 * one moves 4x4 tiles through SSE registers, reading src once, in order. */
static void unblock_one(void *ctx, int i, int tid)
{
	const unblock_job *j = ctx;
	int cb = (j->c + 15) / 16, n = i / cb, b = i % cb, lanes = j->c - 16 * b, acc = j->acc;
	size_t hw = (size_t)j->hw, x0 = 0;
	const float *s = j->src + ((size_t)n * cb + b) * hw * 16;
	float *d = j->dst + ((size_t)n * j->c + 16 * b) * hw;

	(void)tid;
	if (lanes > 16)
		lanes = 16;
#ifdef __SSE2__
	if (lanes == 16)
		for (; x0 + 4 <= hw; x0 += 4)
			for (int l = 0; l < 16; l += 4) {
				const float *p = s + x0 * 16 + l;
				__m128 r0 = _mm_loadu_ps(p), r1 = _mm_loadu_ps(p + 16);
				__m128 r2 = _mm_loadu_ps(p + 32), r3 = _mm_loadu_ps(p + 48);
				_MM_TRANSPOSE4_PS(r0, r1, r2, r3);
				float *q = d + l * hw + x0;
				if (acc) {
					r0 = _mm_add_ps(r0, _mm_loadu_ps(q));
					r1 = _mm_add_ps(r1, _mm_loadu_ps(q + hw));
					r2 = _mm_add_ps(r2, _mm_loadu_ps(q + 2 * hw));
					r3 = _mm_add_ps(r3, _mm_loadu_ps(q + 3 * hw));
				}
				_mm_storeu_ps(q, r0);
				_mm_storeu_ps(q + hw, r1);
				_mm_storeu_ps(q + 2 * hw, r2);
				_mm_storeu_ps(q + 3 * hw, r3);
			}
#endif
	for (int l = 0; l < lanes; l++) {
		float *dl = d + l * hw;
		if (acc)
			for (size_t x = x0; x < hw; x++)
				dl[x] += s[x * 16 + l];
		else
			for (size_t x = x0; x < hw; x++)
				dl[x] = s[x * 16 + l];
	}
}

/* After the primitive ran: bring output port p back to the user's layout. */
static void finish(port *p, int accumulate)
{
	if (p->c16 && p->prim_mem) {
		void *src, *dst;
		check(dnnl_memory_get_data_handle(p->prim_mem, &src), "data handle");
		check(dnnl_memory_get_data_handle(p->user_mem, &dst), "data handle");
		unblock_job j = { dst, src, (int)p->user.dims[1],
		                  (int)(p->user.dims[2] * p->user.dims[3]), accumulate };
		nn_parallel((int)(p->user.dims[0] * ((j.c + 15) / 16)), unblock_one, &j);
		return;
	}
	if (accumulate)
		run_reorder(p->add_user, p->prim_mem, p->user_mem);
	else if (p->to_user)
		run_reorder(p->to_user, p->prim_mem, p->user_mem);
}

int onednn_conv_forward(float *out, const float *in, const float *w, const float *bias,
                      const conv_geom *g, int flags)
{
	if (!enabled())
		return 0;
	entry *e = lookup(FWD, g, bias != NULL, (flags & NN_RELU) != 0);
	if (!e->ok)
		return 0;
	bind(&e->p[0], 0, (void *)in, 0);
	bind(&e->p[1], 1, (void *)w, 0);
	bind(&e->p[2], 2, out, 1);
	dnnl_exec_arg_t a[4] = {
		{ DNNL_ARG_SRC, e->p[0].prim_mem }, { DNNL_ARG_WEIGHTS, e->p[1].prim_mem },
		{ DNNL_ARG_DST, e->p[2].prim_mem }, { DNNL_ARG_BIAS, e->bias_mem },
	};
	if (bias)
		check(dnnl_memory_set_data_handle(e->bias_mem, (void *)bias), "data handle");
	run(e->prim, bias ? 4 : 3, a);
	finish(&e->p[2], 0);
	return 1;
}

int onednn_conv_backward(float *din, float *dw, float *dbias, const float *dout,
                       const float *in, const float *w, const conv_geom *g, int flags)
{
	if (!enabled())
		return 0;
	entry *d = din ? lookup(BWD_DATA, g, 0, 0) : NULL;
	entry *k = dw ? lookup(BWD_WEIGHTS, g, dbias != NULL, 0) : NULL;
	if ((d && !d->ok) || (k && !k->ok) || (dbias && !dw))
		return 0;
	if (k) {
		bind(&k->p[0], 0, (void *)in, 0);
		bind(&k->p[2], 2, (void *)dout, 0);
		bind(&k->p[1], 1, dw, 0);
		float *db = dbias ? grow(PORTS, sizeof(float) * (size_t)g->oc) : NULL;
		dnnl_exec_arg_t a[4] = {
			{ DNNL_ARG_SRC, k->p[0].prim_mem }, { DNNL_ARG_DIFF_DST, k->p[2].prim_mem },
			{ DNNL_ARG_DIFF_WEIGHTS, k->p[1].prim_mem }, { DNNL_ARG_DIFF_BIAS, k->bias_mem },
		};
		if (db)
			check(dnnl_memory_set_data_handle(k->bias_mem, db), "data handle");
		run(k->prim, db ? 4 : 3, a);
		finish(&k->p[1], 1);
		for (int o = 0; db && o < g->oc; o++)
			dbias[o] += db[o];
	}
	if (d) {
		int over = (flags & NN_OVERWRITE) != 0;
		/* diff_dst: reuse the blocked copy the weight gradient just made */
		if (k && dnnl_memory_desc_equal(&k->p[2].prim, &d->p[2].prim) && k->p[2].to_prim) {
			check(dnnl_memory_set_data_handle(d->p[2].user_mem, (void *)dout), "data handle");
			check(dnnl_memory_set_data_handle(d->p[2].prim_mem, buf[2].p), "data handle");
		} else {
			bind(&d->p[2], 2, (void *)dout, 0);
		}
		bind(&d->p[1], 1, (void *)w, 0);
		bind(&d->p[0], 0, din, over);
		dnnl_exec_arg_t a[3] = {
			{ DNNL_ARG_DIFF_DST, d->p[2].prim_mem }, { DNNL_ARG_WEIGHTS, d->p[1].prim_mem },
			{ DNNL_ARG_DIFF_SRC, d->p[0].prim_mem },
		};
		run(d->prim, 3, a);
		finish(&d->p[0], !over);
	}
	return 1;
}

int conv2d_blocked_ok(const conv_geom *g, int train, int bias, int flags)
{
	if (!enabled())
		return !g->blk_in && !g->blk_out;
	return lookup(FWD, g, bias, (flags & NN_RELU) != 0)->ok &&
	       (!train || (lookup(BWD_DATA, g, 0, 0)->ok && lookup(BWD_WEIGHTS, g, bias, 0)->ok));
}

/* The layout oneDNN's forward kernel picks for the output of a 3x3 convolution of 16
 * channels: nChw16c on AVX-512, nChw8c on AVX2 and SSE4.1. */
int nn_layout_block(void)
{
	static int blk = -1;

	if (blk < 0) {
		const char *e = getenv("CULL_NN_LAYOUT");
		blk = 0;
		if (e && strcmp(e, "nchw") != 0 && strcmp(e, "blocked") != 0)
			die(EXIT_USAGE, "CULL_NN_LAYOUT=%s: not nchw or blocked", e);
		if (enabled() && !(e && strcmp(e, "nchw") == 0)) {
			conv_geom g = { .n = 2, .c = 16, .h = 8, .w = 8, .oc = 16, .kh = 3, .kw = 3,
				.stride = 1, .pad = 1 };
			conv2d_shape(&g);
			entry *x = lookup(FWD, &g, 0, 0);
			dnnl_memory_desc_t b;
			for (int k = 16; x->ok && k >= 8 && !blk; k -= 8) {
				plain(&b, g.n, g.oc, g.oh, g.ow, act_tag(k));
				if (dnnl_memory_desc_equal(&x->p[2].prim, &b))
					blk = k;
			}
		}
	}
	return blk;
}

/* The instruction set oneDNN's kernels use, by the name ONEDNN_MAX_CPU_ISA takes. */
static const char *isa_name(void)
{
	switch (dnnl_get_effective_cpu_isa()) {
	case dnnl_cpu_isa_sse41: return "SSE41";
	case dnnl_cpu_isa_avx: return "AVX";
	case dnnl_cpu_isa_avx2: return "AVX2";
	case dnnl_cpu_isa_avx2_vnni: return "AVX2_VNNI";
	case dnnl_cpu_isa_avx512_core: return "AVX512_CORE";
	case dnnl_cpu_isa_avx512_core_vnni: return "AVX512_CORE_VNNI";
	case dnnl_cpu_isa_avx512_core_bf16: return "AVX512_CORE_BF16";
	case dnnl_cpu_isa_avx512_core_amx: return "AVX512_CORE_AMX";
	default: return "other ISA";
	}
}

/* Whether oneDNN runs bfloat16 convolutions on this CPU: asked of oneDNN, not of the CPU,
 * since ONEDNN_MAX_CPU_ISA may cap it below what the CPU has (AVX512-BF16 or AMX). */
static int bf16_kernels(void)
{
	dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
	return ((unsigned)isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

int nn_set_bf16(int on)
{
	if (!enabled())
		return 0;
	const char *e = getenv("CULL_NN_BF16");
	if (e && strcmp(e, "emulate") != 0)
		die(EXIT_USAGE, "CULL_NN_BF16=%s: the only value is 'emulate'", e);
	if (on && e) {
		emulate = 1;
		bf16 = 0;
		return 2;
	}
	emulate = 0;
	if (on && !bf16_kernels())
		return -1;
	bf16 = on;
	return 1;
}

int nn_bf16(void)
{
	return emulate ? 2 : bf16;
}

int onednn_active(void)
{
	return enabled();
}

const char *nn_backend(void)
{
	static char s[192];
	const dnnl_version_t *v = dnnl_version();

	if (!enabled()) {
		const char *core = openblas_get_corename();
		snprintf(s, sizeof s, "OpenBLAS im2col + sgemm (CULL_NN=blas) on %s kernels",
		         core ? core : "?");
		return s;
	}
	const char *wait = getenv("OMP_WAIT_POLICY");
	int blk = nn_layout_block();
	char layout[32] = "NCHW";
	if (blk)
		snprintf(layout, sizeof layout, "nChw%dc", blk);
	const char *core = openblas_get_corename();
	snprintf(s, sizeof s, "oneDNN %d.%d.%d (%s) convolutions on %s activations, OpenBLAS (%s); "
	         "OpenMP wait policy %s; bfloat16 kernels %s", v->major, v->minor, v->patch,
	         isa_name(), layout, core ? core : "?", wait ? wait : "default",
	         bf16_kernels() ? "yes" : "no");
	return s;
}

#else

int onednn_conv_forward(float *out, const float *in, const float *w, const float *bias,
                      const conv_geom *g, int flags)
{
	(void)out, (void)in, (void)w, (void)bias, (void)g, (void)flags;
	return 0;
}

int onednn_conv_backward(float *din, float *dw, float *dbias, const float *dout,
                       const float *in, const float *w, const conv_geom *g, int flags)
{
	(void)din, (void)dw, (void)dbias, (void)dout, (void)in, (void)w, (void)g, (void)flags;
	return 0;
}

int nn_set_bf16(int on)
{
	(void)on;
	return 0;
}

int nn_bf16(void)
{
	return 0;
}

int onednn_active(void)
{
	return 0;
}

int conv2d_blocked_ok(const conv_geom *g, int train, int bias, int flags)
{
	(void)train, (void)bias, (void)flags;
	return !g->blk_in && !g->blk_out;
}

int nn_layout_block(void)
{
	return 0;
}

const char *nn_backend(void)
{
	static char s[128];
	const char *core = openblas_get_corename();

	snprintf(s, sizeof s, "OpenBLAS im2col + sgemm (built without oneDNN) on %s kernels",
	         core ? core : "?");
	return s;
}

#endif

void nn_bf16_option(void)
{
	int r = nn_set_bf16(1);

	if (r == 0)
		die(EXIT_USAGE, "--bf16 needs the oneDNN backend; this one is %s", nn_backend());
	if (r < 0)
		warn("--bf16: oneDNN has no bfloat16 kernels here (they need AVX512-BF16 or AMX, "
		     "and ONEDNN_MAX_CPU_ISA not below them); running in float32 "
		     "(CULL_NN_BF16=emulate measures bfloat16's accuracy without them)");
}
