/* Test tool: resize raw 8-bit interleaved pixels from stdin with resize_bilinear_pil. */
#include "io.h"
#include "preprocess.h"

#include <stdlib.h>

int main(int argc, char **argv)
{
	int w, h, c, ow, oh;
	size_t len;
	unsigned char *src, *dst;

	cull_init(argv[0]);
	if (argc != 6)
		die(EXIT_USAGE, "usage: resize W H CHANNELS OW OH < raw > raw");
	w = atoi(argv[1]); h = atoi(argv[2]); c = atoi(argv[3]); ow = atoi(argv[4]); oh = atoi(argv[5]);
	src = read_file("-", &len);
	if (len != (size_t)w * h * c)
		die(EXIT_DATA, "expected %d bytes, got %zu", w * h * c, len);
	dst = xmalloc((size_t)ow * oh * c);
	resize_bilinear_pil(dst, ow, oh, src, w, h, c);
	xfwrite(dst, (size_t)ow * oh * c, stdout, "<stdout>");
	xfclose(stdout, "<stdout>");
	free(src);
	free(dst);
	return 0;
}
