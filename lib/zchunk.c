/*
 * zchunk.c -- raw deflate of independent chunks that join into one
 * deflate stream, for the parallel gzip writer (formats/ims_write.c).
 *
 * Each chunk is compressed on its own (no history from the chunk
 * before, and nothing left of the engine's work on it: the same chunk
 * is the same bytes whichever thread did what before), at the fastest
 * level; every chunk but the last ends with a sync flush (an empty
 * stored block, so it ends on a byte boundary and the next chunk's
 * blocks can follow), the last with the final block.
 * Written one after the other between a gzip header and trailer they
 * are one ordinary gzip member, the bytes depending only on the input
 * and its cuts.
 *
 * Two engines, chosen when sisfeed is built:
 *   - ISA-L's igzip (libisal) when pkg-config finds it: level 0 (its
 *     single-hash match finder) with Huffman codes made for each chunk
 *     from the histogram of its first ZCHUNK_SAMPLE bytes
 *     (isal_update_histogram, isal_create_hufftables: every symbol gets
 *     a code, so the rest of the chunk is always encodable).  Not level
 *     1: ISA-L 2.30's levels 1 and 2 (the "ICF" match finder) now and
 *     then choose a match differently from one process to the next, the
 *     text the same -- 3 of 300 runs over the same 260 chunks differed,
 *     and the bench's check that one thread and two give the same file
 *     failed for 3 of its 8 files (issue 13).  Level 0 with these codes
 *     gave the same bytes in every run tried (see issue 13's note).  On
 *     a night's 2.7 GB of XML, one core: 0.94-0.98 s to 99.5 MB, where
 *     level 1 took 0.91-0.96 s to 99.2 MB and zlib's level 1 12.7 s to
 *     114 MB.  The output is plain deflate: zlib, gzip, Python, Java,
 *     PHP and .NET read it.
 *   - zlib, level 1, everywhere else.
 * tests/check_lib.c runs both (the zlib one compiled from this file
 * without HAVE_ISAL) and inflates what they write with zlib.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#ifdef HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#include "sisfeed.h"

struct zchunk {
#ifdef HAVE_ISAL
	struct isal_zstream		 z;
	struct isal_huff_histogram	 hist;
	struct isal_hufftables		 codes;
#else
	z_stream		 z;
#endif
};

#ifdef HAVE_ISAL
#define ZCHUNK_ENGINE		"isa-l"
#define ZCHUNK_SAMPLE		(256 * 1024)	/* bytes the codes are made from */

/* Set up zc's engine (all of it is in zc).  0. */
static int
zchunk_engine_init(struct zchunk *zc)
{
	(void)zc;
	return 0;
}

/* Release what zchunk_engine_init took: nothing. */
static void
zchunk_engine_end(struct zchunk *zc)
{
	(void)zc;
}

/*
 * One chunk by ISA-L's stateless call at level 0 with codes made from
 * the chunk itself (see the top of the file): the stream is set up
 * afresh for every chunk, the whole chunk in one call, ending in a full
 * flush (a sync flush that also forgets the history), the last one in
 * the final block.  1 when done, 0 when the output needs more room, -1
 * on failure.
 */
static int
zchunk_engine_run(struct zchunk *zc, const unsigned char *in, size_t n,
    int last, unsigned char *out, size_t cap, size_t *outlen)
{
	struct isal_zstream *z = &zc->z;
	int rc;

	if (n > INT_MAX || cap > UINT32_MAX)
		return -1;
	memset(&zc->hist, 0, sizeof(zc->hist));
	isal_update_histogram((uint8_t *)(uintptr_t)in,
	    (int)(n < ZCHUNK_SAMPLE ? n : ZCHUNK_SAMPLE), &zc->hist);
	if (isal_create_hufftables(&zc->codes, &zc->hist) != 0)
		return -1;
	isal_deflate_stateless_init(z);
	if (isal_deflate_set_hufftables(z, &zc->codes,
	    IGZIP_HUFFTABLE_CUSTOM) != COMP_OK)
		return -1;
	z->level = 0;
	z->flush = last ? NO_FLUSH : FULL_FLUSH;
	z->end_of_stream = last;
	z->next_in = (uint8_t *)(uintptr_t)in;
	z->avail_in = (uint32_t)n;
	z->next_out = out;
	z->avail_out = (uint32_t)cap;
	if ((rc = isal_deflate_stateless(z)) == STATELESS_OVERFLOW)
		return 0;
	if (rc != COMP_OK || z->avail_in != 0)
		return -1;
	*outlen = cap - z->avail_out;
	return 1;
}

#else	/* zlib */

#define ZCHUNK_ENGINE		"zlib"

/* Set up zc's engine.  0, or -1 with errno set. */
static int
zchunk_engine_init(struct zchunk *zc)
{
	if (deflateInit2(&zc->z, 1, Z_DEFLATED, -15, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

/* Release what zchunk_engine_init took. */
static void
zchunk_engine_end(struct zchunk *zc)
{
	deflateEnd(&zc->z);
}

/*
 * One chunk by zlib: reset, then deflate with a sync flush (the last:
 * finish) in one call over the whole chunk.  1 when done, 0 when the
 * output needs more room, -1 on failure.
 */
static int
zchunk_engine_run(struct zchunk *zc, const unsigned char *in, size_t n,
    int last, unsigned char *out, size_t cap, size_t *outlen)
{
	z_stream *z = &zc->z;
	int rc;

	if (n > UINT32_MAX || cap > UINT32_MAX || deflateReset(z) != Z_OK)
		return -1;
	z->next_in = (Bytef *)(uintptr_t)in;
	z->avail_in = (uInt)n;
	z->next_out = out;
	z->avail_out = (uInt)cap;
	rc = deflate(z, last ? Z_FINISH : Z_SYNC_FLUSH);
	if (rc == Z_STREAM_ERROR)
		return -1;
	if (last ? rc != Z_STREAM_END : z->avail_in != 0 || z->avail_out == 0)
		return 0;
	*outlen = cap - z->avail_out;
	return 1;
}

#endif

/* The engine's name, for -v and the tests.  Never fails. */
const char *
zchunk_engine(void)
{
	return ZCHUNK_ENGINE;
}

/* A compressor for one thread.  NULL (errno set) when out of memory. */
struct zchunk *
zchunk_new(void)
{
	struct zchunk *zc;

	if ((zc = calloc(1, sizeof(*zc))) == NULL)
		return NULL;
	if (zchunk_engine_init(zc) == -1) {
		free(zc);
		return NULL;
	}
	return zc;
}

/* Free a compressor.  NULL is fine. */
void
zchunk_free(struct zchunk *zc)
{
	if (zc == NULL)
		return;
	zchunk_engine_end(zc);
	free(zc);
}

/* Room for the compressed form of n bytes in one go: stored blocks at
 * worst, 5 bytes per 16 KiB (zlib's bound, which ISA-L's stored blocks
 * stay under too) plus the flush.  Never fails. */
size_t
zchunk_bound(size_t n)
{
	return n + n / 16384 * 5 + 64;
}

/*
 * Compress in[0..n) with zc as one chunk (the last of the stream if
 * last) into *out (capacity *cap, grown with realloc when the data do
 * not shrink); *outlen is its length.  Any thread may run it on its own
 * zc.  Returns 0, or -1 with errno set: ENOMEM, or EPROTO when the
 * engine fails.
 */
int
zchunk_compress(struct zchunk *zc, const void *in, size_t n, int last,
    unsigned char **out, size_t *cap, size_t *outlen)
{
	unsigned char *nb;
	size_t ncap;
	int rc, tries;

	if (*cap < zchunk_bound(n)) {
		ncap = zchunk_bound(n);
		if ((nb = realloc(*out, ncap)) == NULL)
			return -1;
		*out = nb;
		*cap = ncap;
	}
	/* The bound always holds the chunk; more room is a safety net. */
	for (tries = 0; tries < 4; tries++) {
		rc = zchunk_engine_run(zc, in, n, last, *out, *cap, outlen);
		if (rc == 1)
			return 0;
		if (rc == -1)
			break;
		ncap = *cap * 2;
		if ((nb = realloc(*out, ncap)) == NULL)
			return -1;
		*out = nb;
		*cap = ncap;
	}
	errno = EPROTO;
	return -1;
}
