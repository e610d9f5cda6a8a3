/* Image encoders beside image.h's JPEG one: PNG, for lossless thumbnails. */
#ifndef CULL_ENCODE_H
#define CULL_ENCODE_H

#include <stddef.h>

/* Encode w x h pixels of 1 (gray) or 3 (RGB) interleaved channels, rows top to bottom, as
 * an 8-bit PNG with libpng (no time or text chunks: identical input gives identical bytes).
 * Returns a malloc'd buffer (free()) and its length in *len, or NULL with a one-line
 * message in err (errlen bytes; err may be NULL). Never exits. */
unsigned char *image_encode_png(const unsigned char *pixels, int w, int h, int channels,
                                size_t *len, char *err, size_t errlen);

#endif
