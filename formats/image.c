/* Image codecs: JPEG through libjpeg-turbo, PNG through libpng, binary PNM by hand. */
#include "image.h"

#include <limits.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

image_format image_detect(const void *data, size_t len)
{
	const unsigned char *p = data;

	if (len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
		return IMG_JPEG;
	if (len >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
		return IMG_PNG;
	if (len >= 3 && p[0] == 'P' && (p[1] == '5' || p[1] == '6') &&
	    (p[2] == ' ' || p[2] == '\t' || p[2] == '\n' || p[2] == '\r' || p[2] == '#'))
		return IMG_PNM;
	return IMG_UNKNOWN;
}

const char *image_format_name(image_format f)
{
	switch (f) {
	case IMG_JPEG: return "jpeg";
	case IMG_PNG: return "png";
	case IMG_PNM: return "pnm";
	default: return "unknown";
	}
}

/* A name for formats we recognise but do not decode, for a clearer message. */
static const char *other_format(const unsigned char *p, size_t len)
{
	if (len >= 4 && memcmp(p, "GIF8", 4) == 0) return "GIF";
	if (len >= 2 && memcmp(p, "BM", 2) == 0) return "BMP";
	if (len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) return "WebP";
	if (len >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0)) return "TIFF";
	if (len >= 2 && p[0] == 'P' && p[1] >= '1' && p[1] <= '7') return "ASCII or bitmap PNM";
	if (len >= 12 && memcmp(p + 4, "ftyp", 4) == 0) return "HEIF/AVIF";
	return NULL;
}

/* Checks w x h against the limit and that a buffer of w*h*ch bytes is addressable. */
static int size_ok(uint64_t w, uint64_t h, int ch, const image_opts *o, cull_err *e)
{
	uint64_t max = o && o->max_pixels ? o->max_pixels : IMAGE_MAX_PIXELS;

	if (w == 0 || h == 0)
		return cull_err_set(e, EXIT_DATA, "empty image (%llux%llu)", (unsigned long long)w,
		                    (unsigned long long)h);
	if (w > INT_MAX || h > INT_MAX || w * h > max)
		return cull_err_set(e, EXIT_DATA, "image of %llux%llu pixels is over the limit of "
		                    "%llu pixels", (unsigned long long)w, (unsigned long long)h,
		                    (unsigned long long)max);
	if (w * h > SIZE_MAX / 4 / (uint64_t)ch)
		return cull_err_set(e, EXIT_NOMEM, "image too large for memory");
	return 0;
}

static unsigned char *alloc_pixels(int w, int h, int ch, cull_err *e)
{
	unsigned char *p = malloc((size_t)w * (size_t)h * (size_t)ch);

	if (!p)
		cull_err_set(e, EXIT_NOMEM, "out of memory for %dx%d pixels", w, h);
	return p;
}

/* In-place or copying channel conversion of n pixels from cin to cout (1 or 3 or 4 CMYK). */
static void convert(unsigned char *dst, int cout, const unsigned char *src, int cin, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const unsigned char *s = src + i * (size_t)cin;
		unsigned char r, g, b;

		if (cin == 1) {
			r = g = b = s[0];
		} else if (cin == 4) {   /* inverted (Adobe) CMYK as stored */
			r = (unsigned char)((s[0] * s[3] + 127) / 255);
			g = (unsigned char)((s[1] * s[3] + 127) / 255);
			b = (unsigned char)((s[2] * s[3] + 127) / 255);
		} else {
			r = s[0], g = s[1], b = s[2];
		}
		if (cout == 1) {
			dst[i] = cin == 1 ? r :
			         (unsigned char)((19595u * r + 38470u * g + 7471u * b + 32768u) >> 16);
		} else {
			dst[i * 3] = r, dst[i * 3 + 1] = g, dst[i * 3 + 2] = b;
		}
	}
}

static int decode_jpeg(image *img, const unsigned char *data, size_t len, const image_opts *o,
                       cull_err *e)
{
	tjhandle tj = tjInitDecompress();
	int w, h, subsamp, cs, sw, sh, pf, denom, ch, flags = TJFLAG_LIMITSCANS;
	unsigned char *buf = NULL;

	if (!tj)
		return cull_err_set(e, EXIT_DATA, "jpeg: %s", tjGetErrorStr2(NULL));
	w = h = 0, cs = -1;
	if (len > ULONG_MAX || tjDecompressHeader3(tj, data, (unsigned long)len, &w, &h, &subsamp, &cs) < 0) {
		cull_err_set(e, EXIT_DATA, "jpeg: %s", tjGetErrorStr2(tj));
		goto bad;
	}
	if (w <= 0 || h <= 0 || cs < 0) {   /* a cut header can "succeed" with a warning */
		cull_err_set(e, EXIT_DATA, "jpeg: no complete frame header (%s)", tjGetErrorStr2(tj));
		goto bad;
	}
	ch = o && o->channels ? o->channels : (cs == TJCS_GRAY ? 1 : 3);
	if (size_ok((uint64_t)w, (uint64_t)h, 4, o, e) < 0)
		goto bad;
	sw = w, sh = h;
	if (o && o->min_size > 0) {
		for (denom = 8; denom >= 2; denom /= 2) {
			tjscalingfactor sf = { 1, denom };
			int x = TJSCALED(w, sf), y = TJSCALED(h, sf);

			if ((x < y ? x : y) >= o->min_size) {
				sw = x, sh = y;
				break;
			}
		}
	}
	if (cs == TJCS_CMYK || cs == TJCS_YCCK)
		pf = TJPF_CMYK;
	else if (ch == 1 && cs != TJCS_GRAY)
		pf = TJPF_RGB;    /* as PIL: decode RGB, then convert("L"), not the JPEG's Y */
	else
		pf = ch == 1 ? TJPF_GRAY : TJPF_RGB;
	buf = malloc((size_t)sw * (size_t)sh * (size_t)tjPixelSize[pf]);
	if (!buf) {
		cull_err_set(e, EXIT_NOMEM, "jpeg: out of memory for %dx%d pixels", sw, sh);
		goto bad;
	}
	if (o && o->strict)
		flags |= TJFLAG_STOPONWARNING;
	if (tjDecompress2(tj, data, (unsigned long)len, buf, sw, 0, sh, pf, flags) < 0 &&
	    (tjGetErrorCode(tj) != TJERR_WARNING || (o && o->strict))) {
		cull_err_set(e, EXIT_DATA, "jpeg: %s", tjGetErrorStr2(tj));
		goto bad;
	}
	tjDestroy(tj);
	if (pf == TJPF_CMYK || (pf == TJPF_RGB && ch == 1)) {
		/* convert in place: the output is never larger than the input */
		convert(buf, ch, buf, tjPixelSize[pf], (size_t)sw * (size_t)sh);
	}
	img->pixels = buf;
	img->width = sw, img->height = sh, img->channels = ch;
	return 0;
bad:
	free(buf);
	tjDestroy(tj);
	return -1;
}

static int decode_png(image *img, const unsigned char *data, size_t len, const image_opts *o,
                      cull_err *e)
{
	png_image pi;
	unsigned char *buf = NULL;
	int stored, ch, alpha;

	memset(&pi, 0, sizeof pi);
	pi.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_memory(&pi, data, len))
		return cull_err_set(e, EXIT_DATA, "png: %s", pi.message);
	if (size_ok(pi.width, pi.height, 4, o, e) < 0) {
		png_image_free(&pi);
		return -1;
	}
	stored = pi.format & PNG_FORMAT_FLAG_COLOR ? 3 : 1;
	alpha = (pi.format & PNG_FORMAT_FLAG_ALPHA) != 0;
	ch = o && o->channels ? o->channels : stored;
	/* read the stored channels (plus alpha, so none is composited), convert after */
	pi.format = stored == 3 ? (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB) :
	                          (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
	buf = malloc(PNG_IMAGE_SIZE(pi));
	if (!buf) {
		png_image_free(&pi);
		return cull_err_set(e, EXIT_NOMEM, "png: out of memory for %ux%u pixels", pi.width,
		                    pi.height);
	}
	if (!png_image_finish_read(&pi, NULL, buf, 0, NULL)) {
		free(buf);
		cull_err_set(e, EXIT_DATA, "png: %s", pi.message);
		png_image_free(&pi);
		return -1;
	}
	img->width = (int)pi.width, img->height = (int)pi.height, img->channels = ch;
	if (alpha || ch != stored) {
		size_t n = (size_t)img->width * (size_t)img->height, i;
		int in = stored + alpha;

		/* drop alpha first (in place, front to back), then convert */
		for (i = 0; alpha && i < n; i++)
			memmove(buf + i * (size_t)stored, buf + i * (size_t)in, (size_t)stored);
		if (ch != stored) {
			unsigned char *out = alloc_pixels(img->width, img->height, ch, e);

			if (!out) {
				free(buf);
				memset(img, 0, sizeof *img);
				return -1;
			}
			convert(out, ch, buf, stored, n);
			free(buf);
			buf = out;
		}
	}
	img->pixels = buf;
	return 0;
}

/* PNM header token: skip whitespace and # comments, parse a decimal number. */
static int pnm_num(const unsigned char *p, size_t len, size_t *pos, uint64_t *v)
{
	size_t i = *pos;

	for (;;) {
		while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
			i++;
		if (i < len && p[i] == '#') {
			while (i < len && p[i] != '\n')
				i++;
			continue;
		}
		break;
	}
	if (i >= len || p[i] < '0' || p[i] > '9')
		return -1;
	*v = 0;
	while (i < len && p[i] >= '0' && p[i] <= '9') {
		*v = *v * 10 + (uint64_t)(p[i] - '0');
		if (*v > (uint64_t)1 << 40)
			return -1;
		i++;
	}
	*pos = i;
	return 0;
}

static int decode_pnm(image *img, const unsigned char *data, size_t len, const image_opts *o,
                      cull_err *e)
{
	uint64_t w, h, maxval, need;
	size_t pos = 2, n, i;
	int stored = data[1] == '6' ? 3 : 1, bytes, ch;
	unsigned char *buf;

	if (pnm_num(data, len, &pos, &w) < 0 || pnm_num(data, len, &pos, &h) < 0 ||
	    pnm_num(data, len, &pos, &maxval) < 0 || pos >= len)
		return cull_err_set(e, EXIT_DATA, "pnm: bad header");
	if (maxval == 0 || maxval > 65535)
		return cull_err_set(e, EXIT_DATA, "pnm: bad maxval %llu", (unsigned long long)maxval);
	pos++;   /* the single whitespace byte after maxval */
	if (size_ok(w, h, 4, o, e) < 0)
		return -1;
	bytes = maxval > 255 ? 2 : 1;
	n = (size_t)w * (size_t)h;
	need = (uint64_t)n * (uint64_t)stored * (uint64_t)bytes;
	if (len - pos < need)
		return cull_err_set(e, EXIT_DATA, "pnm: truncated: %llux%llu needs %llu bytes of "
		                    "pixels, found %zu", (unsigned long long)w, (unsigned long long)h,
		                    (unsigned long long)need, len - pos);
	ch = o && o->channels ? o->channels : stored;
	buf = alloc_pixels((int)w, (int)h, stored, e);
	if (!buf)
		return -1;
	for (i = 0; i < n * (size_t)stored; i++) {
		const unsigned char *s = data + pos + i * (size_t)bytes;
		unsigned v = bytes == 2 ? (unsigned)s[0] << 8 | s[1] : s[0];

		if (v > maxval)
			v = (unsigned)maxval;
		buf[i] = maxval == 255 ? (unsigned char)v : (unsigned char)((v * 255u + maxval / 2) / maxval);
	}
	if (ch != stored) {
		unsigned char *out = alloc_pixels((int)w, (int)h, ch, e);

		if (!out) {
			free(buf);
			return -1;
		}
		convert(out, ch, buf, stored, n);
		free(buf);
		buf = out;
	}
	img->pixels = buf;
	img->width = (int)w, img->height = (int)h, img->channels = ch;
	return 0;
}

int image_decode(image *img, const void *data, size_t len, const image_opts *opts,
                 cull_err *e)
{
	const unsigned char *p = data;
	const char *other;
	int rc;

	memset(img, 0, sizeof *img);
	if (opts && opts->channels != 0 && opts->channels != 1 && opts->channels != 3)
		return cull_err_set(e, EXIT_DATA, "bad channel count %d (want 1 or 3)", opts->channels);
	switch (image_detect(p, len)) {
	case IMG_JPEG: rc = decode_jpeg(img, p, len, opts, e); break;
	case IMG_PNG: rc = decode_png(img, p, len, opts, e); break;
	case IMG_PNM: rc = decode_pnm(img, p, len, opts, e); break;
	default:
		if (len == 0)
			return cull_err_set(e, EXIT_DATA, "empty image data");
		other = other_format(p, len);
		if (other)
			return cull_err_set(e, EXIT_DATA, "unsupported image format %s", other);
		return cull_err_set(e, EXIT_DATA, "not a JPEG, PNG or PPM/PGM image (first bytes "
		                    "%02x %02x %02x %02x)", p[0], len > 1 ? p[1] : 0,
		                    len > 2 ? p[2] : 0, len > 3 ? p[3] : 0);
	}
	if (rc < 0)
		memset(img, 0, sizeof *img);
	return rc;
}

void image_free(image *img)
{
	free(img->pixels);
	memset(img, 0, sizeof *img);
}

unsigned char *image_encode_jpeg(const unsigned char *pixels, int w, int h, int channels,
                                 int quality, size_t *len, cull_err *e)
{
	tjhandle tj;
	unsigned char *jb = NULL, *out;
	unsigned long jlen = 0;
	int pf, ss;

	*len = 0;
	if (channels != 1 && channels != 3) {
		cull_err_set(e, EXIT_DATA, "jpeg: cannot encode %d channels", channels);
		return NULL;
	}
	if (w <= 0 || h <= 0 || w > 65500 || h > 65500) {
		cull_err_set(e, EXIT_DATA, "jpeg: cannot encode a %dx%d image", w, h);
		return NULL;
	}
	if (quality < 1 || quality > 100) {
		cull_err_set(e, EXIT_DATA, "jpeg: quality %d is not in 1..100", quality);
		return NULL;
	}
	pf = channels == 1 ? TJPF_GRAY : TJPF_RGB;
	ss = channels == 1 ? TJSAMP_GRAY : quality >= 90 ? TJSAMP_444 : TJSAMP_420;
	tj = tjInitCompress();
	if (!tj) {
		cull_err_set(e, EXIT_DATA, "jpeg: %s", tjGetErrorStr2(NULL));
		return NULL;
	}
	if (tjCompress2(tj, pixels, w, 0, h, pf, &jb, &jlen, ss, quality, 0) < 0) {
		cull_err_set(e, EXIT_DATA, "jpeg: %s", tjGetErrorStr2(tj));
		tjFree(jb);
		tjDestroy(tj);
		return NULL;
	}
	tjDestroy(tj);
	out = malloc(jlen ? jlen : 1);
	if (!out) {
		tjFree(jb);
		cull_err_set(e, EXIT_NOMEM, "jpeg: out of memory");
		return NULL;
	}
	memcpy(out, jb, jlen);
	tjFree(jb);
	*len = jlen;
	return out;
}
