/*
 * fuzz_csv.c -- the generic CSV source: persons, groups and memberships
 * (the input's three parts, cut at FUZZ_SEP) read with a column mapping.
 * An input that starts with a UTF-16LE byte order mark is read with
 * source.encoding UTF-16 (instream.c's iconv layer: sequences cut at
 * block ends, unpaired surrogates).
 */
#include <stdio.h>
#include <string.h>

#include "sisfeed.h"
#include "fuzz/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct config *cfg, *cfg16;

#define FUZZ_CSV_CONFIG(enc) \
	"site: Fuzz\nstate_dir: @DIR@/state\n" \
	"source:\n  format: csv\n" enc \
	"  persons: @DIR@/p.csv\n  groups: @DIR@/g.csv\n" \
	"  memberships: @DIR@/m.csv\n" \
	"  roles: {tutor: Mentor}\n" \
	"  columns:\n" \
	"    persons: {id: id, userid: user, given: given, " \
	"family: family, email: email, status: status, " \
	"role: role}\n" \
	"    groups: {id: id, type: type, short: short, " \
	"long: long, parent: parent, term: term}\n" \
	"    memberships: {group: group, person: person, " \
	"role: role, status: status}\n" \
	"output:\n  source: fuzz\ndelivery:\n  dir: @DIR@/out\n"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const uint8_t *part[3];
	size_t plen[3];
	struct roster r;
	struct rejects rj;

	if (cfg == NULL) {
		cfg = fuzz_config(FUZZ_CSV_CONFIG(""));
		cfg16 = fuzz_config(FUZZ_CSV_CONFIG("  encoding: UTF-16\n"));
	}
	fuzz_split(data, len, part, plen, 3);
	fuzz_put(0, "p.csv", part[0], plen[0]);
	fuzz_put(1, "g.csv", part[1], plen[1]);
	fuzz_put(2, "m.csv", part[2], plen[2]);
	memset(&rj, 0, sizeof(rj));
	roster_init(&r);
	(void)csv_read_roster(len >= 2 && data[0] == 0xff && data[1] == 0xfe ?
	    cfg16 : cfg, &r, &rj);
	roster_free(&r);
	return 0;
}
