/* Convolutions on oneDNN (nn/onednn.c); layers.c calls these first and falls back to
 * im2col + sgemm when they return 0 (not built with oneDNN, CULL_NN=blas, or a geometry
 * oneDNN refuses). */
#ifndef CULL_ONEDNN_H
#define CULL_ONEDNN_H

#include "layers.h"

int onednn_conv_forward(float *out, const float *in, const float *w, const float *bias,
                        const conv_geom *g, int flags);
int onednn_conv_backward(float *din, float *dw, float *dbias, const float *dout,
                         const float *in, const float *w, const conv_geom *g, int flags);
/* 1 when convolutions run on oneDNN. */
int onednn_active(void);

#endif
