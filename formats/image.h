/* Image codecs: JPEG encode, and JPEG/PNG/PPM/PGM decode detected by magic bytes. */
#ifndef CULL_IMAGE_H
#define CULL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"

/* Decoded pixels: 8 bits per channel, rows top to bottom, channels interleaved
 * (gray, or R G B), no padding: byte (y * width + x) * channels + c. */
typedef struct {
	unsigned char *pixels;   /* malloc'd; image_free() releases it */
	int width, height;
	int channels;            /* 1 or 3 */
} image;

typedef enum { IMG_UNKNOWN, IMG_JPEG, IMG_PNG, IMG_PNM } image_format;

/* The format of an encoded image from its first bytes (never from a file name). */
image_format image_detect(const void *data, size_t len);
/* "jpeg", "png", "pnm" or "unknown". */
const char *image_format_name(image_format f);

/* Decoding options. Zero all fields for the defaults. */
typedef struct {
	int channels;         /* 0: as stored (gray stays 1, everything else 3); 1 or 3: convert */
	int min_size;         /* > 0: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (DCT scaling,
	                       * much faster) as long as its shorter side stays >= min_size */
	uint64_t max_pixels;  /* width * height limit checked from the header before any pixel
	                       * buffer is allocated; 0 means IMAGE_MAX_PIXELS */
	int strict;           /* 1: libjpeg warnings (truncated or corrupt data) are errors;
	                       * 0: the image libjpeg recovers is accepted, as PIL does not */
} image_opts;

#define IMAGE_MAX_PIXELS ((uint64_t)1 << 28)   /* 268 Mpixel */

/* Decode JPEG, PNG, or binary PPM/PGM (P6/P5) bytes into img. Returns 0, or -1 with img
 * zeroed and the reason in e (may be NULL): EXIT_DATA, or EXIT_NOMEM for an image that
 * does not fit in memory; a caller can treat a bad image as a per-sample warning. opts
 * may be NULL.
 * CMYK/YCCK JPEGs are converted to RGB (Adobe inverted convention, as Photoshop and PIL);
 * PNG alpha is dropped (as PIL's convert("RGB")); 16-bit PNG/PNM samples are scaled to 8.
 * Thread-safe: every call uses its own decoder state. */
int image_decode(image *img, const void *data, size_t len, const image_opts *opts,
                 cull_err *e);
void image_free(image *img);

/* Encode w x h pixels of 1 (gray) or 3 (RGB) interleaved channels as a baseline JPEG with
 * libjpeg-turbo at quality 1..100. Gray stays one channel; colour uses 4:4:4 chroma at
 * quality >= 90 and 4:2:0 below. Identical input gives identical bytes. Returns a malloc'd
 * buffer (free()) and its length in *len, or NULL with the reason in e. */
unsigned char *image_encode_jpeg(const unsigned char *pixels, int w, int h, int channels,
                                 int quality, size_t *len, cull_err *e);

#endif
