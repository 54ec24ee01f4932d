/*
 * fuzz_rindex.c -- the snapshot index loader, past its CRC.  The input's
 * first four bytes give the record counts (persons, groups, memberships
 * mod 64); the rest is the payload (strings, then records).  The harness
 * writes the header an intact index of that payload would have (the
 * layout of formats/rindex.c), so the loader's bounds checks are what
 * is fuzzed, not the CRC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "sisfeed.h"
#include "fuzz/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* formats/rindex.c's header and record sizes. */
struct rindex_header {
	char		magic[8];
	unsigned char	snapshot[32];
	int64_t		datetime;
	uint64_t	npersons, ngroups, nmembers;
	uint64_t	strbytes;
	uint32_t	crc;
	uint32_t	recsize;
};
#define RPERSON		32
#define RGROUP		32

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const unsigned char digest[32];
	struct rindex_header h;
	struct roster r;
	size_t recs;
	uint8_t *file;

	if (len < 4)
		return 0;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, "SISFIDX2", 8);
	h.npersons = data[0] % 16;
	h.ngroups = data[1] % 16;
	h.nmembers = (size_t)(data[2] | data[3] << 8) % 64;
	h.recsize = sizeof(struct membership);
	data += 4;
	len -= 4;
	recs = h.npersons * RPERSON + h.ngroups * RGROUP +
	    h.nmembers * sizeof(struct membership);
	if (len < recs)
		return 0;
	h.strbytes = len - recs;
	h.crc = (uint32_t)crc32(crc32(0, Z_NULL, 0), data, (uInt)len);
	if ((file = malloc(sizeof(h) + len)) == NULL)
		abort();
	memcpy(file, &h, sizeof(h));
	memcpy(file + sizeof(h), data, len);
	roster_init(&r);
	(void)rindex_read(fuzz_put(0, "snapshot.idx", file, sizeof(h) + len),
	    &r, digest);
	roster_free(&r);
	free(file);
	return 0;
}
