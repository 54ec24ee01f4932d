/*
 * fuzz_ims.c -- the IMS Enterprise reader (the snapshot's and another
 * producer's file), rejects counted, then again strict.
 */
#include <stdio.h>
#include <string.h>

#include "sisfeed.h"
#include "fuzz/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const char *path = fuzz_put(0, "in.xml", data, len);
	struct roster r;
	struct rejects rj;

	memset(&rj, 0, sizeof(rj));
	roster_init(&r);
	(void)ims_read(path, &r, &rj);
	roster_free(&r);
	roster_init(&r);
	(void)ims_read(path, &r, NULL);
	roster_free(&r);
	return 0;
}
