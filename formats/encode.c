/* Image encoders beside image.c's JPEG one: PNG through libpng's simplified API. */
#include "encode.h"

#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static unsigned char *fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return NULL;
}

unsigned char *image_encode_png(const unsigned char *pixels, int w, int h, int channels,
                                size_t *len, char *err, size_t errlen)
{
	png_image pi;
	png_alloc_size_t n = 0;
	unsigned char *out;

	*len = 0;
	if (channels != 1 && channels != 3)
		return fail(err, errlen, "png: cannot encode %d channels", channels);
	if (w <= 0 || h <= 0 || w > 1000000 || h > 1000000)
		return fail(err, errlen, "png: cannot encode a %dx%d image", w, h);
	memset(&pi, 0, sizeof pi);
	pi.version = PNG_IMAGE_VERSION;
	pi.width = (png_uint_32)w;
	pi.height = (png_uint_32)h;
	pi.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
	/* the first call measures, the second writes */
	if (!png_image_write_to_memory(&pi, NULL, &n, 0, pixels, 0, NULL))
		return fail(err, errlen, "png: %s", pi.message);
	out = malloc(n ? n : 1);
	if (!out)
		return fail(err, errlen, "png: out of memory for %dx%d pixels", w, h);
	if (!png_image_write_to_memory(&pi, out, &n, 0, pixels, 0, NULL)) {
		free(out);
		return fail(err, errlen, "png: %s", pi.message);
	}
	*len = n;
	return out;
}
