/* Tar headers as the shard reader parses them: fields, checksums. */
#include "tar.h"
#include "io.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <string.h>

uint64_t tar_number(const unsigned char *f, size_t n)
{
	uint64_t v = 0;
	size_t i = 0;

	if (f[0] & 0x80) {        /* GNU base-256 */
		v = f[0] & 0x3f;
		for (i = 1; i < n; i++)
			v = v << 8 | f[i];
		return v;
	}
	while (i < n && (f[i] == ' ' || f[i] == '\t'))
		i++;
	for (; i < n && f[i] >= '0' && f[i] <= '7'; i++)
		v = v << 3 | (uint64_t)(f[i] - '0');
	return v;
}

unsigned tar_block_sum(const unsigned char *h)
{
	size_t i;
#ifdef __SSE2__
	/* psadbw sums 8 bytes at a time: a block in 32 steps */
	__m128i acc = _mm_setzero_si128(), zero = _mm_setzero_si128();

	for (i = 0; i < 512; i += 16)
		acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_loadu_si128((const __m128i *)(h + i)), zero));
	return (unsigned)(_mm_cvtsi128_si64(acc) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc)));
#else
	uint64_t w, lanes = 0;

	/* eight at a time: 16-bit lanes cannot overflow over 64 words */
	for (i = 0; i < 512; i += 8) {
		memcpy(&w, h + i, 8);
		lanes += (w & 0x00ff00ff00ff00ffull) + ((w >> 8) & 0x00ff00ff00ff00ffull);
	}
	return (unsigned)((lanes & 0xffff) + ((lanes >> 16) & 0xffff) + ((lanes >> 32) & 0xffff) +
	                  (lanes >> 48));
#endif
}

int tar_header_ok(const unsigned char *h)
{
	const uint64_t ones = 0x0101010101010101ull, low7 = 0x7f7f7f7f7f7f7f7full;
	unsigned u, high = 0, chk = 0;
	uint64_t want, w, digit, space, nul;
	size_t i;

	/* the field holds octal digits, spaces and NULs only (libarchive's test); a word at a
	 * time: ZERO(v) marks with 0x80 each byte of v that is zero */
#define ZERO(v) (~((((v) & low7) + low7) | (v)) & ~low7)
	memcpy(&w, h + 148, 8);
	digit = (w ^ 0x30 * ones) & 0xf8 * ones;
	space = w ^ 0x20 * ones;
	nul = w;
	if ((ZERO(digit) | ZERO(space) | ZERO(nul)) != ~low7)
		return 0;
#undef ZERO
	for (i = 148; i < 156; i++)
		chk += h[i];
	u = tar_block_sum(h) - chk + 8 * ' ';
	want = tar_number(h + 148, 8);
	if (want == u)
		return 1;
	/* some old writers summed signed chars: each byte >= 128 counts 256 less */
	for (i = 0; i < 512; i++)
		high += (unsigned)(h[i] >> 7) * (i < 148 || i >= 156);
	return want == (uint64_t)(u - 256 * high);
}

int tar_block_zero(const unsigned char *h)
{
	uint64_t w, any = 0;

	for (size_t i = 0; i < 512; i += 8) {
		memcpy(&w, h + i, 8);
		any |= w;
	}
	return any == 0;
}
