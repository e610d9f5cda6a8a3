/* Unit tests of formats/image.c: JPEG round trips, DCT scaling, limits, PNG, PNM, bad input. */
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "check.h"
#include "image.h"

/* A smooth test pattern (JPEG-friendly) of w x h x ch. */
static unsigned char *pattern(int w, int h, int ch)
{
	unsigned char *p = malloc((size_t)w * h * ch);

	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int c = 0; c < ch; c++)
				p[((size_t)y * w + x) * ch + c] =
					(unsigned char)(128 + 100 * sin(0.11 * x + 0.07 * y + 2.0 * c) *
					                cos(0.05 * y - 0.3 * c));
	return p;
}

static double mean_abs(const unsigned char *a, const unsigned char *b, size_t n)
{
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += abs((int)a[i] - (int)b[i]);
	return n ? s / (double)n : 0;
}

static void test_jpeg(void)
{
	cull_err e = { 0 };
	size_t len, len2;
	image img;
	int rc;

	/* gray stays one channel, bytes are deterministic, decoding is close */
	unsigned char *g = pattern(28, 28, 1);
	unsigned char *j1 = image_encode_jpeg(g, 28, 28, 1, 95, &len, &e);
	unsigned char *j2 = image_encode_jpeg(g, 28, 28, 1, 95, &len2, &e);
	CHECK(j1 && j2 && len == len2 && memcmp(j1, j2, len) == 0, "jpeg encode is deterministic");
	CHECK(image_detect(j1, len) == IMG_JPEG, "detect jpeg");
	rc = image_decode(&img, j1, len, NULL, &e);
	CHECK(rc == 0 && img.channels == 1 && img.width == 28 && img.height == 28,
	      "gray jpeg decodes as one channel 28x28 (%s)", rc ? e.msg : "ok");
	CHECK(rc == 0 && mean_abs(img.pixels, g, 28 * 28) < 2.0, "gray q95 mean error %.3f < 2",
	      rc ? 99.0 : mean_abs(img.pixels, g, 28 * 28));
	image_free(&img);
	image_opts o3 = { .channels = 3 };
	rc = image_decode(&img, j1, len, &o3, &e);
	CHECK(rc == 0 && img.channels == 3 && img.pixels[0] == img.pixels[1] &&
	      img.pixels[1] == img.pixels[2], "gray jpeg decodes to RGB on request");
	image_free(&img);
	free(j1), free(j2), free(g);

	/* colour, and lower quality gives a smaller file with a larger error */
	unsigned char *c = pattern(64, 48, 3);
	unsigned char *hq = image_encode_jpeg(c, 64, 48, 3, 95, &len, &e);
	unsigned char *lq = image_encode_jpeg(c, 64, 48, 3, 30, &len2, &e);
	CHECK(hq && lq && len2 < len, "quality 30 (%zu bytes) smaller than 95 (%zu)", len2, len);
	rc = image_decode(&img, hq, len, NULL, &e);
	CHECK(rc == 0 && img.channels == 3 && img.width == 64 && img.height == 48, "rgb jpeg decodes");
	double ehq = rc ? 99 : mean_abs(img.pixels, c, 64 * 48 * 3);
	image_free(&img);
	rc = image_decode(&img, lq, len2, NULL, &e);
	double elq = rc ? 0 : mean_abs(img.pixels, c, 64 * 48 * 3);
	image_free(&img);
	CHECK(ehq < 2.0 && elq > ehq, "rgb errors q95 %.3f < 2, q30 %.3f larger", ehq, elq);
	image_opts o1 = { .channels = 1 };
	rc = image_decode(&img, hq, len, &o1, &e);
	CHECK(rc == 0 && img.channels == 1, "rgb jpeg decodes to gray on request");
	image_free(&img);

	/* strict mode rejects a truncated file; lenient mode recovers it */
	image_opts strict = { .strict = 1 };
	rc = image_decode(&img, hq, len * 2 / 3, &strict, &e);
	CHECK(rc == -1 && e.msg[0] && img.pixels == NULL, "strict: truncated jpeg fails (%s)",
	      e.msg);
	rc = image_decode(&img, hq, len * 2 / 3, NULL, &e);
	CHECK(rc == 0 && img.width == 64, "lenient: truncated jpeg is recovered");
	image_free(&img);
	rc = image_decode(&img, hq, 20, NULL, &e);
	CHECK(rc == -1 && e.msg[0], "jpeg cut inside the header fails (%s)", e.msg);
	free(hq), free(lq), free(c);

	CHECK(image_encode_jpeg((unsigned char *)"x", 1, 1, 2, 95, &len, &e) == NULL,
	      "encoding 2 channels fails (%s)", e.msg);
	CHECK(image_encode_jpeg((unsigned char *)"x", 1, 1, 1, 0, &len, &e) == NULL,
	      "quality 0 fails (%s)", e.msg);
}

static void test_scaling(void)
{
	static const struct { int min, w, h; } cases[] = {
		{ 0, 256, 192 }, { 1, 32, 24 }, { 24, 32, 24 }, { 25, 64, 48 }, { 40, 64, 48 },
		{ 48, 64, 48 }, { 49, 128, 96 }, { 96, 128, 96 }, { 97, 256, 192 }, { 500, 256, 192 },
	};
	cull_err e;
	size_t len;
	unsigned char *c = pattern(256, 192, 3);
	unsigned char *j = image_encode_jpeg(c, 256, 192, 3, 90, &len, &e);
	image img;

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		image_opts o = { .min_size = cases[i].min };
		int rc = image_decode(&img, j, len, &o, &e);

		CHECK(rc == 0 && img.width == cases[i].w && img.height == cases[i].h,
		      "min_size %d: 256x192 decodes as %dx%d (want %dx%d)", cases[i].min,
		      img.width, img.height, cases[i].w, cases[i].h);
		image_free(&img);
	}
	/* the limit is checked from the header */
	image_opts lim = { .max_pixels = 256 * 192 - 1 };
	int rc = image_decode(&img, j, len, &lim, &e);
	CHECK(rc == -1 && e.code == EXIT_DATA && strstr(e.msg, "limit"),
	      "max_pixels rejects a larger image (%s)", e.msg);
	lim.max_pixels = 256 * 192;
	rc = image_decode(&img, j, len, &lim, &e);
	CHECK(rc == 0, "max_pixels admits an image of exactly that size");
	image_free(&img);
	free(j), free(c);
}

static void test_cmyk(void)
{
	/* a CMYK JPEG (stored as Photoshop's inverted values) decodes to R = C*K/255 */
	unsigned char cmyk[16 * 16 * 4], *jb = NULL;
	unsigned long jlen = 0;
	cull_err e;
	image img;
	tjhandle tj = tjInitCompress();

	for (int i = 0; i < 16 * 16; i++) {
		cmyk[4 * i] = 200, cmyk[4 * i + 1] = 100, cmyk[4 * i + 2] = 50, cmyk[4 * i + 3] = 255;
	}
	int rc = tjCompress2(tj, cmyk, 16, 0, 16, TJPF_CMYK, &jb, &jlen, TJSAMP_444, 100, 0);
	tjDestroy(tj);
	CHECK(rc == 0, "make a CMYK jpeg");
	rc = image_decode(&img, jb, jlen, NULL, &e);
	CHECK(rc == 0 && img.channels == 3 && abs(img.pixels[0] - 200) <= 3 &&
	      abs(img.pixels[1] - 100) <= 3 && abs(img.pixels[2] - 50) <= 3,
	      "CMYK jpeg decodes to RGB %d %d %d (want about 200 100 50) %s",
	      img.pixels ? img.pixels[0] : -1, img.pixels ? img.pixels[1] : -1,
	      img.pixels ? img.pixels[2] : -1, rc ? e.msg : "");
	image_free(&img);
	tjFree(jb);
}

static unsigned char *make_png(const unsigned char *pix, int w, int h, png_uint_32 format,
                               size_t *len)
{
	png_image pi;
	png_alloc_size_t n = 0;
	unsigned char *out;

	memset(&pi, 0, sizeof pi);
	pi.version = PNG_IMAGE_VERSION;
	pi.width = (png_uint_32)w, pi.height = (png_uint_32)h, pi.format = format;
	if (!png_image_write_to_memory(&pi, NULL, &n, 0, pix, 0, NULL))
		return NULL;
	out = malloc(n);
	if (!png_image_write_to_memory(&pi, out, &n, 0, pix, 0, NULL)) {
		free(out);
		return NULL;
	}
	*len = n;
	return out;
}

static void test_png(void)
{
	cull_err e;
	size_t len;
	image img;
	unsigned char *rgb = pattern(20, 10, 3), *gray = pattern(20, 10, 1), *rgba = pattern(20, 10, 4);
	unsigned char *p;
	int rc, same;

	p = make_png(rgb, 20, 10, PNG_FORMAT_RGB, &len);
	CHECK(p && image_detect(p, len) == IMG_PNG, "detect png");
	rc = image_decode(&img, p, len, NULL, &e);
	CHECK(rc == 0 && img.channels == 3 && img.width == 20 && img.height == 10 &&
	      memcmp(img.pixels, rgb, 600) == 0, "rgb png decodes exactly");
	image_free(&img);
	rc = image_decode(&img, p, len - 30, NULL, &e);
	CHECK(rc == -1 && e.msg[0], "truncated png fails (%s)", e.msg);
	free(p);

	p = make_png(gray, 20, 10, PNG_FORMAT_GRAY, &len);
	rc = image_decode(&img, p, len, NULL, &e);
	CHECK(rc == 0 && img.channels == 1 && memcmp(img.pixels, gray, 200) == 0,
	      "gray png decodes exactly as one channel");
	image_free(&img);
	free(p);

	p = make_png(rgba, 20, 10, PNG_FORMAT_RGBA, &len);
	rc = image_decode(&img, p, len, NULL, &e);
	same = rc == 0 && img.channels == 3;
	for (int i = 0; same && i < 200; i++)
		same = memcmp(img.pixels + 3 * i, rgba + 4 * i, 3) == 0;
	CHECK(same, "rgba png decodes with alpha dropped");
	image_free(&img);
	free(p);
	free(rgb), free(gray), free(rgba);
}

static void test_pnm(void)
{
	cull_err e;
	image img;
	static const unsigned char p5[] = "P5\n# a comment\n3 2\n255\n\x01\x02\x03\x04\x05\x06";
	static const unsigned char p6[] = "P6 2 1 255 \xff\x00\x00\x00\xff\x00";
	static const unsigned char p16[] = "P5 2 1 65535\n\xff\xff\x80\x00";
	static const unsigned char p15[] = "P5 1 1 15\n\x0f";
	int rc;

	rc = image_decode(&img, p5, sizeof p5 - 1, NULL, &e);
	CHECK(rc == 0 && img.channels == 1 && img.width == 3 && img.height == 2 &&
	      memcmp(img.pixels, "\x01\x02\x03\x04\x05\x06", 6) == 0, "P5 with a comment decodes");
	image_free(&img);
	rc = image_decode(&img, p6, sizeof p6 - 1, NULL, &e);
	CHECK(rc == 0 && img.channels == 3 && memcmp(img.pixels, "\xff\x00\x00\x00\xff\x00", 6) == 0,
	      "P6 decodes");
	image_free(&img);
	rc = image_decode(&img, p16, sizeof p16 - 1, NULL, &e);
	CHECK(rc == 0 && img.pixels[0] == 255 && img.pixels[1] == 128, "16-bit P5 scales to 8 bits");
	image_free(&img);
	rc = image_decode(&img, p15, sizeof p15 - 1, NULL, &e);
	CHECK(rc == 0 && img.pixels[0] == 255, "maxval 15 scales to 255");
	image_free(&img);
	rc = image_decode(&img, p6, sizeof p6 - 2, NULL, &e);
	CHECK(rc == -1 && strstr(e.msg, "truncated"), "truncated P6 fails (%s)", e.msg);
	rc = image_decode(&img, "P5 0 1 255\n", 11, NULL, &e);
	CHECK(rc == -1, "zero-width P5 fails (%s)", e.msg);
	rc = image_decode(&img, "P5 99999999 99999999 255\n", 25, NULL, &e);
	CHECK(rc == -1 && strstr(e.msg, "limit"), "huge P5 header fails before allocating (%s)",
	      e.msg);
}

static void test_bad(void)
{
	cull_err e;
	image img;
	int rc;

	rc = image_decode(&img, "GIF89a\x01\x00\x01\x00", 10, NULL, &e);
	CHECK(rc == -1 && strstr(e.msg, "GIF"), "gif is named as unsupported (%s)", e.msg);
	rc = image_decode(&img, "", 0, NULL, &e);
	CHECK(rc == -1 && strstr(e.msg, "empty"), "empty data fails (%s)", e.msg);
	rc = image_decode(&img, "hello world", 11, NULL, &e);
	CHECK(rc == -1 && strstr(e.msg, "not a JPEG"), "text fails (%s)", e.msg);
	rc = image_decode(&img, "\xff\xd8\xff\xe0garbagegarbage", 17, NULL, &e);
	CHECK(rc == -1 && e.msg[0], "garbage after the jpeg magic fails (%s)", e.msg);
	rc = image_decode(&img, "\x89PNG\r\n\x1a\ngarbage", 15, NULL, &e);
	CHECK(rc == -1 && e.msg[0], "garbage after the png magic fails (%s)", e.msg);
	CHECK(image_decode(&img, "P5 1 1 255\n\x01", 12, NULL, NULL) == 0 && img.pixels[0] == 1,
	      "e may be NULL");
	image_free(&img);
	CHECK(strcmp(image_format_name(image_detect("P6\n", 3)), "pnm") == 0, "pnm named");
}

/* Random byte flips and cuts of valid files: every call returns 0 or -1 with a message
 * (run under ASan by make check SAN=1 to catch memory errors in the decoders). */
static void test_fuzz(void)
{
	cull_err e;
	size_t len[3], n;
	unsigned char *c = pattern(40, 30, 3), *src[3], *buf;
	unsigned seed = 12345;
	int bad = 0, decoded = 0, failed = 0;
	image img;

	src[0] = image_encode_jpeg(c, 40, 30, 3, 80, &len[0], &e);
	src[1] = make_png(c, 40, 30, PNG_FORMAT_RGB, &len[1]);
	src[2] = malloc(14 + 3600);
	memcpy(src[2], "P6\n40 30\n255\n", 14);
	memcpy(src[2] + 14, c, 3600);
	len[2] = 14 + 3600;
	for (int k = 0; k < 3; k++) {
		for (int it = 0; it < 300; it++) {
			buf = malloc(len[k]);
			memcpy(buf, src[k], len[k]);
			n = len[k];
			for (int flips = 1 + it % 8; flips > 0; flips--) {
				seed = seed * 1103515245u + 12345u;
				buf[(seed >> 8) % n] ^= (unsigned char)(1u << (seed >> 4) % 8);
			}
			if (it % 3 == 0) {
				seed = seed * 1103515245u + 12345u;
				n = (seed >> 8) % n;
			}
			e.msg[0] = 0;
			int rc = image_decode(&img, buf, n, NULL, &e);
			if (rc == 0 && img.pixels && img.width > 0)
				decoded++;
			else if (rc == -1 && e.msg[0] && !img.pixels)
				failed++;
			else
				bad++;
			image_free(&img);
			free(buf);
		}
		free(src[k]);
	}
	free(c);
	CHECK(bad == 0 && decoded + failed == 900, "900 damaged images: %d decoded, %d failed "
	      "with a message, %d otherwise", decoded, failed, bad);
}

int main(void)
{
	test_jpeg();
	test_scaling();
	test_cmyk();
	test_png();
	test_pnm();
	test_bad();
	test_fuzz();
	return CHECK_DONE();
}
