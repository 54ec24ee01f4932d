/*
 * fuzz_oneroster.c -- a OneRoster 1.1 bulk export: the input's parts
 * (cut at FUZZ_SEP) are users, orgs, classes, enrollments,
 * academicSessions and manifest.csv, in that order.  An input that
 * starts as a zip does ("PK\3\4") is the bundle as a .zip, whole.
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

static struct config *cfg, *zcfg;

/* The input as a zipped bundle (libzip, instream.c). */
static void
read_zip(const uint8_t *data, size_t len)
{
	struct roster r;
	struct rejects rj;

	if (zcfg == NULL)
		zcfg = fuzz_config(
		    "site: Fuzz\nstate_dir: @DIR@/state\n"
		    "source:\n  format: oneroster\n  dir: @DIR@/bundle.zip\n"
		    "  zip_max: 16\n"
		    "output:\n  source: fuzz\ndelivery:\n  dir: @DIR@/out\n");
	fuzz_put(6, "bundle.zip", data, len);
	memset(&rj, 0, sizeof(rj));
	roster_init(&r);
	(void)oneroster_read_roster(zcfg, &r, &rj);
	roster_free(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const uint8_t *part[NPART];
	size_t plen[NPART], i;
	struct roster r;
	struct rejects rj;

	if (len >= 4 && memcmp(data, "PK\3\4", 4) == 0) {
		read_zip(data, len);
		return 0;
	}
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
