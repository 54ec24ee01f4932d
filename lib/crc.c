/*
 * crc.c -- CRC-32 (the gzip and zlib one) by carry-less multiplication
 * where the CPU has it.
 *
 * zlib 1.2's crc32() does about 3 GB/s; every gzip chunk of the output
 * and the snapshot index are checksummed, 2.8 GB a night at national
 * scale.  On x86-64 with PCLMULQDQ the buffer is folded 64 bytes at a
 * time (Gopal et al., "Fast CRC Computation for Generic Polynomials
 * Using PCLMULQDQ Instruction", Intel 2009; the constants are the
 * paper's for the bit-reflected polynomial 0xEDB88320), several times
 * faster; the tail and every other CPU go to zlib.  Built with ISA-L
 * (HAVE_ISAL), its crc32_gzip_refl does it all instead: it picks the
 * widest folding the CPU has (VPCLMULQDQ on AVX-512), 53 GB/s against
 * the fold's 12 GB/s on the project's machine (a 1 MiB buffer, one
 * core).  Same results as crc32() for every input (tests/check_lib.c
 * compares them).
 */
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>
#ifdef HAVE_ISAL
#include <isa-l/crc.h>
#endif

#include "sisfeed.h"

#ifndef HAVE_ISAL

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define CRC_FOLD_MIN	64	/* bytes the folding needs at least */

/*
 * The CRC register (not inverted) after len bytes of buf, from crc;
 * len >= 64 and a multiple of 16.
 */
__attribute__((target("pclmul,sse4.1")))
static uint32_t
crc_fold(const unsigned char *buf, size_t len, uint32_t crc)
{
	const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596LL, 0x0154442bd4LL);
	const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009eLL, 0x01751997d0LL);
	const __m128i k5k0 = _mm_set_epi64x(0, 0x0163cd6124LL);
	const __m128i poly = _mm_set_epi64x(0x01f7011641LL, 0x01db710641LL);
	const __m128i mask32 = _mm_setr_epi32(~0, 0, ~0, 0);
	__m128i x0, x1, x2, x3, x4, x5, x6, x7, x8;

	x1 = _mm_loadu_si128((const __m128i *)(const void *)(buf + 0x00));
	x2 = _mm_loadu_si128((const __m128i *)(const void *)(buf + 0x10));
	x3 = _mm_loadu_si128((const __m128i *)(const void *)(buf + 0x20));
	x4 = _mm_loadu_si128((const __m128i *)(const void *)(buf + 0x30));
	x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
	x0 = k1k2;
	buf += 64;
	len -= 64;
	/* four lanes, 64 bytes a step */
	while (len >= 64) {
		x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
		x6 = _mm_clmulepi64_si128(x2, x0, 0x00);
		x7 = _mm_clmulepi64_si128(x3, x0, 0x00);
		x8 = _mm_clmulepi64_si128(x4, x0, 0x00);
		x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
		x2 = _mm_clmulepi64_si128(x2, x0, 0x11);
		x3 = _mm_clmulepi64_si128(x3, x0, 0x11);
		x4 = _mm_clmulepi64_si128(x4, x0, 0x11);
		x1 = _mm_xor_si128(_mm_xor_si128(x1, x5), _mm_loadu_si128(
		    (const __m128i *)(const void *)(buf + 0x00)));
		x2 = _mm_xor_si128(_mm_xor_si128(x2, x6), _mm_loadu_si128(
		    (const __m128i *)(const void *)(buf + 0x10)));
		x3 = _mm_xor_si128(_mm_xor_si128(x3, x7), _mm_loadu_si128(
		    (const __m128i *)(const void *)(buf + 0x20)));
		x4 = _mm_xor_si128(_mm_xor_si128(x4, x8), _mm_loadu_si128(
		    (const __m128i *)(const void *)(buf + 0x30)));
		buf += 64;
		len -= 64;
	}
	/* the four lanes into one */
	x0 = k3k4;
	x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
	x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
	x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
	x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
	x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
	x1 = _mm_xor_si128(_mm_xor_si128(x1, x3), x5);
	x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
	x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
	x1 = _mm_xor_si128(_mm_xor_si128(x1, x4), x5);
	/* 16 bytes a step */
	while (len >= 16) {
		x2 = _mm_loadu_si128((const __m128i *)(const void *)buf);
		x5 = _mm_clmulepi64_si128(x1, x0, 0x00);
		x1 = _mm_clmulepi64_si128(x1, x0, 0x11);
		x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
		buf += 16;
		len -= 16;
	}
	/* 128 bits to 64 */
	x2 = _mm_clmulepi64_si128(x1, x0, 0x10);
	x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
	x0 = k5k0;
	x2 = _mm_srli_si128(x1, 4);
	x1 = _mm_and_si128(x1, mask32);
	x1 = _mm_clmulepi64_si128(x1, x0, 0x00);
	x1 = _mm_xor_si128(x1, x2);
	/* Barrett reduction to 32 bits */
	x0 = poly;
	x2 = _mm_and_si128(x1, mask32);
	x2 = _mm_clmulepi64_si128(x2, x0, 0x10);
	x2 = _mm_and_si128(x2, mask32);
	x2 = _mm_clmulepi64_si128(x2, x0, 0x00);
	x1 = _mm_xor_si128(x1, x2);
	return (uint32_t)_mm_extract_epi32(x1, 1);
}

/* 1 if the CPU folds. */
static int
crc_can_fold(void)
{
	return __builtin_cpu_supports("pclmul") &&
	    __builtin_cpu_supports("sse4.1");
}
#endif

#endif	/* !HAVE_ISAL */

#ifdef HAVE_ISAL
/*
 * The CRC-32 of p[0..n) continuing crc, exactly as zlib's crc32(crc,
 * p, n) (start with 0).  Never fails.
 */
uint32_t
crc_update(uint32_t crc, const void *p, size_t n)
{
	return crc32_gzip_refl(crc, p, n);
}
#else
/*
 * The CRC-32 of p[0..n) continuing crc, exactly as zlib's crc32(crc,
 * p, n) (start with 0).  Never fails.
 */
uint32_t
crc_update(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t fold;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	if (n >= CRC_FOLD_MIN && crc_can_fold()) {
		fold = n & ~(size_t)15;
		crc = ~crc_fold(b, fold, ~crc);
		b += fold;
		n -= fold;
	}
#else
	(void)fold;
#endif
	while (n > 0) {
		/* zlib takes at most UINT_MAX bytes a call */
		uInt part = n > 0x40000000u ? 0x40000000u : (uInt)n;

		crc = (uint32_t)crc32(crc, b, part);
		b += part;
		n -= part;
	}
	return crc;
}
#endif	/* HAVE_ISAL */
