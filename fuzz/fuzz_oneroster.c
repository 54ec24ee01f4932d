/*
 * fuzz_oneroster.c -- a OneRoster 1.1 bulk export: the input's parts
 * (cut at FUZZ_SEP) are users, orgs, classes, enrollments,
 * academicSessions and manifest.csv, in that order.
 */
#include <stdio.h>
#include <string.h>

#include "sisfeed.h"
#include "fuzz/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *const names[] = {
	"users.csv", "orgs.csv", "classes.csv", "enrollments.csv",
	"academicSessions.csv", "manifest.csv",
};
#define NPART	(sizeof(names) / sizeof(names[0]))

static struct config *cfg;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const uint8_t *part[NPART];
	size_t plen[NPART], i;
	struct roster r;
	struct rejects rj;

	if (cfg == NULL)
		cfg = fuzz_config(
		    "site: Fuzz\nstate_dir: @DIR@/state\n"
		    "source:\n  format: oneroster\n  dir: @DIR@\n"
		    "output:\n  source: fuzz\ndelivery:\n  dir: @DIR@/out\n");
	fuzz_split(data, len, part, plen, NPART);
	for (i = 0; i < NPART; i++)
		fuzz_put((int)i, names[i], part[i], plen[i]);
	memset(&rj, 0, sizeof(rj));
	roster_init(&r);
	(void)oneroster_read_roster(cfg, &r, &rj);
	roster_free(&r);
	return 0;
}
