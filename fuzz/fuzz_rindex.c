/*
 * fuzz_rindex.c -- the snapshot index loader, past its CRC.  The input's
 * first four bytes give the record counts (persons, groups, memberships
 * mod 64); the rest is the payload (strings, then records).  The harness
 * pads the strings with NULs to a multiple of 8 bytes and writes the
 * header an intact index of that payload would have (the layout of
 * formats/rindex.c), so the loader's bounds checks are what is fuzzed,
 * not the CRC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "sisfeed.h"
#include "fuzz/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* formats/rindex.c's header and record sizes.  The harness checks
 * them against a real index at start (layout_check): an index format
 * change the harness does not follow aborts it, never fuzzes nothing. */
struct rindex_header {
	char		magic[8];
	unsigned char	snapshot[32];
	int64_t		datetime;
	uint64_t	npersons, ngroups, nmembers;
	uint64_t	strbytes;
	uint32_t	crc;
	uint32_t	recsize;
};
#define RPERSON		36
#define RGROUP		48

static char magic[8];
static const unsigned char digest[32];

/* Load data (counts, then payload) as an index.  rindex_read's result,
 * or 2 when the input does not make one. */
static int
load_input(const uint8_t *data, size_t len)
{
	struct rindex_header h;
	struct roster r;
	size_t recs, pad;
	uint8_t *file;
	int rc;

	if (len < 4)
		return 2;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, magic, 8);
	h.npersons = data[0] % 16;
	h.ngroups = data[1] % 16;
	h.nmembers = (size_t)(data[2] | data[3] << 8) % 64;
	h.recsize = sizeof(struct membership);
	data += 4;
	len -= 4;
	recs = h.npersons * RPERSON + h.ngroups * RGROUP +
	    h.nmembers * sizeof(struct membership);
	if (len < recs)
		return 2;
	pad = (8 - (len - recs) % 8) % 8;
	h.strbytes = len - recs + pad;
	if ((file = calloc(1, sizeof(h) + len + pad)) == NULL)
		abort();
	memcpy(file + sizeof(h), data, len - recs);
	memcpy(file + sizeof(h) + h.strbytes, data + len - recs, recs);
	h.crc = (uint32_t)crc32(crc32(0, Z_NULL, 0), file + sizeof(h),
	    (uInt)(len + pad));
	memcpy(file, &h, sizeof(h));
	roster_init(&r);
	rc = rindex_read(fuzz_put(0, "snapshot.idx", file,
	    sizeof(h) + len + pad), &r, digest);
	roster_free(&r);
	free(file);
	return rc;
}

/* Write a real index of one person, group and membership, take its
 * magic, and check that its payload loads through load_input. */
static void
layout_check(void)
{
	struct person p = { .id = "P1", .userid = "u", .given = "G",
	    .family = "F", .email = "e", .role = "Student", .line = 2,
	    .active = 1 };
	struct group g = { .id = "G1", .type = "school", .shortname = "S",
	    .longname = "", .parent = "", .term = "", .begin = "", .end = "",
	    .orgname = "", .orgunit = "", .line = 2 };
	struct membership m = { .group = 0, .person = 0, .role = 1,
	    .active = 1, .begin = 19966, .end = 20270 };
	struct rejects rj;
	struct roster r;
	char *path = NULL;
	uint8_t *buf;
	FILE *fp;
	long n;

	memset(&rj, 0, sizeof(rj));
	roster_init(&r);
	if (roster_add_person(&r, &p) == -1 || roster_add_group(&r, &g) == -1 ||
	    roster_seal_entities(&r, &rj, "p", "g") == -1 ||
	    roster_add_member(&r, &m) == -1 ||
	    (path = strdup(fuzz_put(1, "real.idx", NULL, 0))) == NULL ||
	    rindex_write(path, &r, digest) == -1 ||
	    (fp = fopen(path, "rb")) == NULL)
		abort();
	roster_free(&r);
	if (fseek(fp, 0, SEEK_END) == -1 || (n = ftell(fp)) < 88 ||
	    (buf = malloc((size_t)n)) == NULL || fseek(fp, 0, SEEK_SET) == -1 ||
	    fread(buf, 1, (size_t)n, fp) != (size_t)n)
		abort();
	fclose(fp);
	free(path);
	memcpy(magic, buf, 8);
	/* counts 1, 1, 1, then the real payload */
	memmove(buf + 4, buf + 88, (size_t)n - 88);
	buf[0] = buf[1] = buf[2] = 1;
	buf[3] = 0;
	if (load_input(buf, (size_t)n - 84) != 0) {
		fprintf(stderr, "fuzz_rindex: the harness's layout no longer "
		    "matches formats/rindex.c: update it\n");
		abort();
	}
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (magic[0] == '\0')
		layout_check();
	(void)load_input(data, len);
	return 0;
}
