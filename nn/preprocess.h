/* Image preprocessing as torchvision's eval transforms do it on PIL images. */
#ifndef CULL_PREPROCESS_H
#define CULL_PREPROCESS_H

#include <stddef.h>

#include "image.h"

/* torchvision Resize(S) on a w x h image: the shorter side becomes S and the longer one
 * int(S * long / short); S <= 0 keeps the size. */
void resize_shorter_size(int w, int h, int s, int *ow, int *oh);

/* Resize 8-bit interleaved pixels to ow x oh with PIL's bilinear filter exactly as Pillow's
 * Image.resize(..., BILINEAR) computes it (support scaled by the reduction factor, so a
 * downscale is antialiased; 22-bit fixed-point weights; a horizontal then a vertical pass,
 * each rounded to 8 bits). dst holds ow * oh * channels bytes. An image already of the
 * target size is copied unchanged, as PIL does. */
void resize_bilinear_pil(unsigned char *dst, int ow, int oh, const unsigned char *src, int w,
                         int h, int channels);

/* torchvision CenterCrop(c): the offsets of a c x c crop (Python's round half to even);
 * when the image is smaller than c it is padded with zeros (torchvision pads first):
 * negative offsets mean padding. */
void center_crop_offsets(int w, int h, int cw, int ch, int *x0, int *y0);

/* Crop (cw x ch at x0, y0, zero outside the image), scale to [0, 1], subtract mean and
 * divide by std per channel, and write planar float CHW: dst[c][y][x]. */
void to_tensor_normalize(float *dst, const unsigned char *src, int w, int h, int channels,
                         int x0, int y0, int cw, int ch, const float *mean, const float *std);

/* The whole eval transform: Resize(resize) (skipped when resize <= 0), CenterCrop(crop)
 * (skipped when crop <= 0), ToTensor, Normalize. The output is out_w x out_h, which the
 * caller sizes with preprocess_size(); scratch is grown as needed (free() it at the end). */
void preprocess_size(int w, int h, int resize, int crop, int *out_w, int *out_h);
void preprocess_eval(float *dst, const image *img, int resize, int crop, const float *mean,
                     const float *std, unsigned char **scratch, size_t *scratch_cap);

#endif
