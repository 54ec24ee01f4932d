/*
 * fuzz_snap.c -- the snapshot's own reader (formats/ims_snap.c) against
 * the general one: whatever it accepts, ims_read must read strictly to
 * the same roster; whatever it gives up on leaves the roster empty.
 */
#include <stdlib.h>
#include <string.h>

#include "sisfeed.h"
#include "fuzz/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Abort unless a and b hold the same records. */
static void
same(const struct roster *a, const struct roster *b)
{
	size_t i;

	if (a->npersons != b->npersons || a->ngroups != b->ngroups ||
	    a->nmembers != b->nmembers || a->datetime != b->datetime)
		abort();
	for (i = 0; i < a->npersons; i++)
		if (person_differs(&a->persons[i], &b->persons[i]) ||
		    a->persons[i].line != b->persons[i].line)
			abort();
	for (i = 0; i < a->ngroups; i++)
		if (group_differs(&a->groups[i], &b->groups[i]) ||
		    a->groups[i].line != b->groups[i].line)
			abort();
	if (a->nmembers > 0 && memcmp(a->members, b->members,
	    a->nmembers * sizeof(*a->members)) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const char *path = fuzz_put(0, "snapshot", data, len);
	struct roster a, b;
	int rc;

	roster_init(&a);
	roster_init(&b);
	rc = ims_read_snapshot(path, &a);
	if (rc == 1 && (a.npersons != 0 || a.ngroups != 0 || a.nmembers != 0))
		abort();
	if (rc == 0) {
		if (ims_read(path, &b, NULL) != 0)
			abort();
		same(&a, &b);
	}
	roster_free(&a);
	roster_free(&b);
	return 0;
}
