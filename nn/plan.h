/* The op plan of a ResNet (nn/resnet.c builds it): ops over numbered activations. Internal
 * to nn/: resnet.c runs it on the CPU, gpu.c on the GPU. */
#ifndef CULL_PLAN_H
#define CULL_PLAN_H

#include "resnet.h"

enum { OP_CONV, OP_BN, OP_RELU, OP_MAXPOOL, OP_AVGPOOL, OP_FC, OP_ADD };

struct nn_op {
	int kind;
	int in, in2, out;        /* activations; RELU and ADD work in place (out == in) */
	int t;                   /* first state-dict entry: conv/fc weight, BN weight */
	int cin, cout, k, stride, pad;
	int fold;                /* CONV: the op index of the BN that follows, or -1 */
	size_t stat_off;         /* BN: offset of mean[c], rstd[c] in stats */
	size_t fold_off;         /* CONV with fold: offset of weights then bias in folded */
	size_t idx_off;          /* MAXPOOL: offset in argmax (per image) */
};

struct nn_act {
	int c, h, w;
	int blk;                 /* 0: NCHW; else blocked, blk channels a block (layers.h) */
	size_t size;             /* per image */
	float *data, *grad;
};

/* The shapes of every activation for an h x w input (dies with EXIT_USAGE when the input
 * is too small for the network). */
void nn_plan_shapes(nn_model *m, int h, int w);
/* Whether op i is a BN whose output goes through a ReLU (not after a residual add). */
int nn_plan_relu_fused(const nn_model *m, int i);
/* Fold every BN into the convolution before it (m->folded: weights then bias, at each
 * conv's fold_off), from the current parameters and running statistics. */
void nn_plan_fold(nn_model *m);

#endif
