/* The geometry of a 2-D convolution and the layers' flags: what layers.c and its oneDNN backend share. */
#ifndef CULL_CONV_H
#define CULL_CONV_H

/*
 * flags: NN_OVERWRITE makes a backward WRITE din instead of accumulating into it (no
 * zeroing pass needed for the first consumer of an activation); NN_RELU makes a forward
 * apply ReLU to its output.
 */
enum { NN_OVERWRITE = 1, NN_RELU = 2 };

/* Geometry of a 2-D convolution; fill the first nine fields and call conv2d_shape(). */
typedef struct {
	int n, c, h, w;        /* input  [n, c, h, w] */
	int oc, kh, kw;        /* weight [oc, c, kh, kw] */
	int stride, pad;
	int oh, ow;            /* output [n, oc, oh, ow], set by conv2d_shape() */
	int blk_in, blk_out;   /* layouts of in (and din) and out (and dout): 0 = NCHW, else
	                          blocked with that many channels a block (nn_layout_block) */
} conv_geom;

/* Sets g->oh and g->ow from the input size, kernel, stride and padding. */
static inline void conv2d_shape(conv_geom *g)
{
	g->oh = (g->h + 2 * g->pad - g->kh) / g->stride + 1;
	g->ow = (g->w + 2 * g->pad - g->kw) / g->stride + 1;
}

#endif
