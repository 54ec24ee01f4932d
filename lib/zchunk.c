/*
 * zchunk.c -- raw deflate of independent chunks that join into one
 * deflate stream, for the parallel gzip writer (formats/ims_write.c).
 *
 * Each chunk is compressed on its own (no history from the chunk
 * before), at the fastest level; every chunk but the last ends with a
 * sync flush (an empty stored block, so it ends on a byte boundary and
 * the next chunk's blocks can follow), the last with the final block.
 * Written one after the other between a gzip header and trailer they
 * are one ordinary gzip member, the bytes depending only on the input
 * and its cuts.
 *
 * Two engines, chosen when sisfeed is built:
 *   - ISA-L's igzip (libisal), level 1, when pkg-config finds it.  On
 *     a night's 2.7 GB of XML it compresses about 5 times as fast as
 *     zlib's level 1 and to a smaller file (101 MB against 115 MB);
 *     measured in the note of issue 13.  The output is plain deflate:
 *     zlib, gzip, Python, Java, PHP and .NET read it.
 *   - zlib, level 1, everywhere else.
 * tests/check_lib.c runs both (the zlib one compiled from this file
 * without HAVE_ISAL) and inflates what they write with zlib.
 */
#include <errno.h>
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
	struct isal_zstream	 z;
	uint8_t			*level_buf;
#else
	z_stream		 z;
#endif
};

#ifdef HAVE_ISAL
#define ZCHUNK_LEVEL_BUF	ISAL_DEF_LVL1_DEFAULT

/* The engine's name, for -v and the tests.  Never fails. */
const char *
zchunk_engine(void)
{
	return "isa-l";
}

/* A compressor for one thread.  NULL (errno set) when out of memory. */
struct zchunk *
zchunk_new(void)
{
	struct zchunk *zc;

	if ((zc = calloc(1, sizeof(*zc))) == NULL)
		return NULL;
	if ((zc->level_buf = malloc(ZCHUNK_LEVEL_BUF)) == NULL) {
		free(zc);
		return NULL;
	}
	isal_deflate_init(&zc->z);
	zc->z.level = 1;
	zc->z.level_buf = zc->level_buf;
	zc->z.level_buf_size = ZCHUNK_LEVEL_BUF;
	zc->z.flush = SYNC_FLUSH;
	return zc;
}

/* Free a compressor.  NULL is fine. */
void
zchunk_free(struct zchunk *zc)
{
	if (zc == NULL)
		return;
	free(zc->level_buf);
	free(zc);
}

/* One pass of the engine over what is left of the chunk: 1 when the
 * chunk is all out, 0 when the output is full, -1 on failure. */
static int
zchunk_step(struct zchunk *zc, const unsigned char **in, size_t *inlen,
    unsigned char **out, size_t *outlen, int last)
{
	struct isal_zstream *z = &zc->z;
	uint32_t take = *inlen > UINT32_MAX ? UINT32_MAX : (uint32_t)*inlen;
	uint32_t room = *outlen > UINT32_MAX ? UINT32_MAX : (uint32_t)*outlen;

	z->next_in = (uint8_t *)(uintptr_t)*in;
	z->avail_in = take;
	z->next_out = *out;
	z->avail_out = room;
	z->end_of_stream = last && take == *inlen;
	if (isal_deflate(z) != COMP_OK)
		return -1;
	*in += take - z->avail_in;
	*inlen -= take - z->avail_in;
	*out += room - z->avail_out;
	*outlen -= room - z->avail_out;
	if (*inlen > 0 || z->avail_out == 0)
		return 0;
	if (last)
		return z->internal_state.state == ZSTATE_END ? 1 : 0;
	return 1;
}

static void
zchunk_reset(struct zchunk *zc)
{
	isal_deflate_reset(&zc->z);
}

#else	/* zlib */

/* The engine's name, for -v and the tests.  Never fails. */
const char *
zchunk_engine(void)
{
	return "zlib";
}

/* A compressor for one thread.  NULL (errno set) when out of memory. */
struct zchunk *
zchunk_new(void)
{
	struct zchunk *zc;

	if ((zc = calloc(1, sizeof(*zc))) == NULL)
		return NULL;
	if (deflateInit2(&zc->z, 1, Z_DEFLATED, -15, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		free(zc);
		errno = ENOMEM;
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
	deflateEnd(&zc->z);
	free(zc);
}

/* One pass of the engine over what is left of the chunk: 1 when the
 * chunk is all out, 0 when the output is full, -1 on failure. */
static int
zchunk_step(struct zchunk *zc, const unsigned char **in, size_t *inlen,
    unsigned char **out, size_t *outlen, int last)
{
	z_stream *z = &zc->z;
	uInt take = *inlen > UINT32_MAX ? UINT32_MAX : (uInt)*inlen;
	uInt room = *outlen > UINT32_MAX ? UINT32_MAX : (uInt)*outlen;
	int rc, fin = last && take == *inlen;

	z->next_in = (Bytef *)(uintptr_t)*in;
	z->avail_in = take;
	z->next_out = *out;
	z->avail_out = room;
	rc = deflate(z, fin ? Z_FINISH : take == *inlen ? Z_SYNC_FLUSH :
	    Z_NO_FLUSH);
	if (rc == Z_STREAM_ERROR)
		return -1;
	*in += take - z->avail_in;
	*inlen -= take - z->avail_in;
	*out += room - z->avail_out;
	*outlen -= room - z->avail_out;
	if (fin)
		return rc == Z_STREAM_END ? 1 : 0;
	return *inlen == 0 && z->avail_out > 0 ? 1 : 0;
}

static void
zchunk_reset(struct zchunk *zc)
{
	deflateReset(&zc->z);
}

#endif

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
	const unsigned char *ip = in, *ip0;
	unsigned char *op, *op0, *nb;
	size_t left = n, room, used, ncap;
	int rc;

	zchunk_reset(zc);
	if (*cap < zchunk_bound(n)) {
		ncap = zchunk_bound(n);
		if ((nb = realloc(*out, ncap)) == NULL)
			return -1;
		*out = nb;
		*cap = ncap;
	}
	op = *out;
	room = *cap;
	for (;;) {
		ip0 = ip;
		op0 = op;
		rc = zchunk_step(zc, &ip, &left, &op, &room, last);
		if (rc == 1)
			break;
		if (rc == -1 || (room > 0 && ip == ip0 && op == op0)) {
			errno = EPROTO;	/* failed, or no progress */
			return -1;
		}
		if (room > 0)
			continue;
		used = (size_t)(op - *out);
		ncap = *cap + *cap / 2;
		if ((nb = realloc(*out, ncap)) == NULL)
			return -1;
		*out = nb;
		*cap = ncap;
		op = nb + used;
		room = ncap - used;
	}
	*outlen = (size_t)(op - *out);
	return 0;
}
