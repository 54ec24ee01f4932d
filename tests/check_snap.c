/*
 * check_snap.c -- the snapshot's own reader (formats/ims_snap.c): the
 * same roster as the general reader for every file ims_write_full
 * writes, and a clean "not mine" for anything else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "sisfeed.h"
#include "tests/testutil.h"

#define WHEN	1725156000	/* 2024-09-01T02:00:00Z */


static void
person(struct roster *r, const char *id, const char *userid,
    const char *given, const char *family, const char *email,
    const char *role, int active)
{
	tu_add_person(r, (struct person){ .id = id, .userid = userid,
	    .given = given, .family = family, .email = email, .role = role,
	    .active = (uint8_t)active });
}

static void
group(struct roster *r, const char *id, const char *type,
    const char *shortname, const char *parent, const char *extra)
{
	tu_add_group(r, (struct group){ .id = id, .type = type,
	    .shortname = shortname, .longname = extra, .parent = parent,
	    .term = extra, .begin = *extra ? "2024-08-15" : "",
	    .end = *extra ? "2025-06-20" : "",
	    .orgname = *extra ? "Example & Co" : "", .orgunit = extra });
}

static void
member(struct roster *r, size_t g, size_t p, int role, int active)
{
	tu_add_member_at(r, g, p, role, active);
}

/*
 * A roster with every field the writer knows, every escape, UTF-8,
 * keys longer than the key index holds inline, and n generated persons
 * (to cross the reader's buffer) each in a few groups.  big: one value
 * larger than the reader's buffer.
 */
static void
build(struct roster *r, size_t n, const char *big)
{
	struct rejects rj = { 0 };
	char id[64], uid[64], mail[96];
	size_t i, k;

	roster_init(r);
	r->datetime = WHEN;
	person(r, "1001", "ola", "Ola", "Nordmann", "ola@example.org",
	    "Student", 1);
	person(r, "1002", "kari", "Kari", "\xc3\x85s & <Co> \"q\" 'a' >",
	    "", "Faculty", 0);
	person(r, "1003", "", "", "Solo", "", "", 1);
	person(r, "a-very-long-person-key-of-forty-bytes-0001", "long",
	    "L\xc3\xa9" "a", "M\xc3\xbc" "ller-L\xc3\xbc" "denscheidt",
	    "lea@example.org", "staff", 1);
	person(r, "AT&T<1>", "amp", "Tab\there", "Line\nbreak", "", "", 1);
	person(r, "big", "big", "", big, "", "", 1);
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "S%08zu", (i * 61803399) % 100000000);
		snprintf(uid, sizeof(uid), "user%zu", i);
		snprintf(mail, sizeof(mail), "user%zu@students.example.org",
		    i);
		person(r, id, uid, "Anna-Lena", "\xc3\x93" " Briain", mail,
		    "Student", i % 97 != 0);
	}
	group(r, "DIST", "district", "District", "", "");
	group(r, "SCH & 1", "school", "School <1>", "DIST", "2024/25");
	group(r, "C-1", "class", "1A", "SCH & 1", "");
	group(r, "C-2", "", "2B", "", "H2024");
	group(r, "a-very-long-group-key-of-forty-bytes-00001", "class",
	    "Long", "C-1", "");
	ck_assert_int_eq(roster_seal_entities(r, &rj, "p", "g"), 0);
	ck_assert_int_eq(rj.count, 0);
	for (i = 0; i < r->npersons; i++)
		for (k = 0; k < r->ngroups; k++)
			if ((i + k) % 3 == 0 || i < 6)
				member(r, k, i, (int)(1 + (i + k) % 8),
				    (i + k) % 11 != 0);
	ck_assert_int_eq(roster_seal_members(r, &rj, "m", NULL), 0);
	/* role timeframes: both dates, an open end, an open begin */
	for (i = 0; i < r->nmembers; i++) {
		if (i % 5 == 0)
			r->members[i].begin = (uint16_t)(19900 + i % 300);
		if (i % 5 == 0 && i % 10 != 0)
			r->members[i].end = (uint16_t)(20300 + i % 300);
		if (i % 7 == 3)
			r->members[i].end = 65535;
	}
}

/* Read path with ims_read_snapshot (must take it) and with ims_read,
 * and compare every field, lines included. */
static void
assert_same_as_ims_read(const char *path)
{
	struct roster a, b;
	size_t i;

	roster_init(&a);
	roster_init(&b);
	ck_assert_msg(ims_read_snapshot(path, &a) == 0, "%s", error_last());
	ck_assert_msg(ims_read(path, &b, NULL) == 0, "%s", error_last());
	ck_assert_int_eq(a.datetime, b.datetime);
	ck_assert_uint_eq(a.npersons, b.npersons);
	ck_assert_uint_eq(a.ngroups, b.ngroups);
	ck_assert_uint_eq(a.nmembers, b.nmembers);
	for (i = 0; i < a.npersons; i++) {
		ck_assert_msg(!person_differs(&a.persons[i], &b.persons[i]),
		    "person %s", b.persons[i].id);
		ck_assert_uint_eq(a.persons[i].line, b.persons[i].line);
	}
	for (i = 0; i < a.ngroups; i++) {
		ck_assert_msg(!group_differs(&a.groups[i], &b.groups[i]),
		    "group %s", b.groups[i].id);
		ck_assert_uint_eq(a.groups[i].line, b.groups[i].line);
	}
	ck_assert(a.nmembers == 0 || memcmp(a.members, b.members,
	    a.nmembers * sizeof(*a.members)) == 0);
	roster_free(&a);
	roster_free(&b);
}

/* ims_read_snapshot must leave path to the general reader. */
static void
assert_not_mine(const char *path)
{
	struct roster r;

	roster_init(&r);
	ck_assert_int_eq(ims_read_snapshot(path, &r), 1);
	ck_assert_uint_eq(r.npersons, 0);
	ck_assert_uint_eq(r.ngroups, 0);
	ck_assert_uint_eq(r.nmembers, 0);
	roster_free(&r);
}

START_TEST(test_same_as_ims_read)
{
	struct ims_options o = { "sis.example.org & co", "District", "lms",
		0, 0, 0, PROFILE_GENERIC, 0 };
	char dir[256], *big;
	struct roster r;

	tu_mkdtemp(dir, sizeof(dir));
	/* a value longer than the reader's 4 MiB buffer */
	ck_assert_ptr_nonnull(big = malloc(5 * 1024 * 1024 + 1));
	memset(big, 'x', 5 * 1024 * 1024);
	big[5 * 1024 * 1024] = '\0';
	build(&r, 20000, big);
	free(big);
	ck_assert_msg(ims_write_full(tu_path(dir, "plain.xml"), &r, &o) == 0,
	    "%s", error_last());
	assert_same_as_ims_read(tu_path(dir, "plain.xml"));
	o.gzip = 1;
	o.threads = 2;
	o.target = NULL;
	ck_assert_int_eq(ims_write_full(tu_path(dir, "full.xml.gz"), &r,
	    &o), 0);
	assert_same_as_ims_read(tu_path(dir, "full.xml.gz"));
	o.profile = PROFILE_MOODLE;
	ck_assert_int_eq(ims_write_full(tu_path(dir, "moodle.xml.gz"), &r,
	    &o), 0);
	assert_same_as_ims_read(tu_path(dir, "moodle.xml.gz"));
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_empty_roster)
{
	struct ims_options o = { "sis", "District", NULL, 0, 0, 0,
		PROFILE_GENERIC, 0 };
	char dir[256];
	struct roster r;

	tu_mkdtemp(dir, sizeof(dir));
	roster_init(&r);
	r.datetime = WHEN;
	ck_assert_int_eq(ims_write_full(tu_path(dir, "e.xml"), &r, &o), 0);
	assert_same_as_ims_read(tu_path(dir, "e.xml"));
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

/* Replace the first `from` in the file at src by `to`, into dst. */
static const char *
edit(const char *dir, const char *src, const char *name, const char *from,
    const char *to)
{
	size_t len;
	char *s = tu_read(src, &len), *at, *out;
	const char *path;

	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(at = strstr(s, from));
	ck_assert_ptr_nonnull(out = malloc(len + strlen(to) + 1));
	memcpy(out, s, (size_t)(at - s));
	strcpy(out + (at - s), to);
	strcat(out, at + strlen(from));
	path = tu_write(dir, name, out);
	free(s);
	free(out);
	return path;
}

START_TEST(test_other_files_not_mine)
{
	struct ims_options o = { "sis", "District", NULL, 0, 0, 0,
		PROFILE_GENERIC, 0 };
	char dir[256];
	const char *f = NULL;
	struct roster r;
	struct rejects rj = { 0 };

	tu_mkdtemp(dir, sizeof(dir));
	build(&r, 50, "");
	ck_assert_int_eq(ims_write_full(tu_path(dir, "a.xml"), &r, &o), 0);
	roster_free(&r);
	/* shapes ims_write never writes, each judged by ims_read */
	assert_not_mine(edit(dir, tu_path(dir, "a.xml"), "cr.xml",
	    "<given>Ola<", "<given>O\rla<"));
	assert_not_mine(edit(dir, tu_path(dir, "a.xml"), "ref.xml",
	    "<given>Ola<", "<given>&#79;la<"));
	assert_not_mine(edit(dir, tu_path(dir, "a.xml"), "blank.xml",
	    "<given>Ola<", "<given> Ola<"));
	assert_not_mine(edit(dir, tu_path(dir, "a.xml"), "attr.xml",
	    "  <person>", "  <person recstatus=\"1\">"));
	assert_not_mine(edit(dir, tu_path(dir, "a.xml"), "unknown.xml",
	    "<id>1001</id>\n      </sourcedid>\n      <idtype>",
	    "<id>1009</id>\n      </sourcedid>\n      <idtype>"));
	assert_not_mine(edit(dir, tu_path(dir, "a.xml"), "tail.xml",
	    "</enterprise>\n", "</enterprise>\n<!-- -->\n"));
	assert_not_mine(edit(dir, tu_path(dir, "a.xml"), "cut.xml",
	    "</enterprise>\n", ""));
	assert_not_mine(edit(dir, tu_path(dir, "a.xml"), "dup.xml",
	    "<id>1003</id>", "<id>1002</id>"));
	/* the dup is ims_read's error, as before */
	roster_init(&r);
	ck_assert_int_eq(ims_read(tu_path(dir, "dup.xml"), &r, NULL), -1);
	roster_free(&r);
	/* the itslearning profile and another producer's file */
	build(&r, 5, "");
	o.profile = PROFILE_ITSLEARNING;
	ck_assert_int_eq(pifu_fit(&r, &rj, "p", "g", "m"), 0);
	f = tu_path(dir, "pifu.xml");
	ck_assert_int_eq(ims_write_full(f, &r, &o), 0);
	assert_not_mine(f);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

/*
 * Sealing memberships: the packed layout (key and position in one
 * word) and the wide one (counts too large to pack; faked here, as no
 * record past the first few is read) sort, merge and reject alike.
 */
START_TEST(test_seal_members_layouts)
{
	static struct linerun run = { 0, 10 };	/* lines 10, 11, ... */
	static const struct linemap lines = { &run, 1, 1, 5 };
	struct rejects rj = { 0 };
	struct roster r;
	size_t i, big, n;
	int wide, strict;

	for (wide = 0; wide <= 1; wide++)
		for (strict = 0; strict <= 1; strict++) {
			roster_init(&r);
			person(&r, "p0", "", "", "A", "", "", 1);
			person(&r, "p1", "", "", "B", "", "", 1);
			group(&r, "g0", "", "G0", "", "");
			group(&r, "g1", "", "G1", "", "");
			/* out of order, one copy twice (inactive, then
			 * active) */
			member(&r, 1, 0, 2, 1);
			member(&r, 0, 1, 1, 0);
			member(&r, 0, 0, 8, 1);
			member(&r, 0, 1, 1, 1);
			member(&r, 0, 0, 1, 0);
			n = r.npersons;
			/* 2^30 persons and groups: 64 key bits, no room */
			big = (size_t)1 << 30;
			if (wide)
				r.npersons = r.ngroups = big;
			memset(&rj, 0, sizeof(rj));
			ck_assert_int_eq(roster_seal_members(&r, &rj, "m",
			    strict ? &lines : NULL), 0);
			r.npersons = r.ngroups = n;
			ck_assert_uint_eq(r.nmembers, 4);
			/* with lines, the repeat is a note, not a reject */
			ck_assert_uint_eq(rj.count, 0);
			ck_assert_uint_eq(rj.notes, strict ? 1 : 0);
			for (i = 1; i < r.nmembers; i++)
				ck_assert(r.members[i - 1].group <
				    r.members[i].group ||
				    r.members[i - 1].person <
				    r.members[i].person ||
				    r.members[i - 1].role < r.members[i].role);
			ck_assert_uint_eq(r.members[0].role, 1);
			ck_assert_uint_eq(r.members[0].active, 0);
			/* g0/p1/1: the two copies merged (active when
			 * either is) */
			ck_assert_uint_eq(r.members[2].person, 1);
			ck_assert_uint_eq(r.members[2].active, 1);
			ck_assert_uint_eq(r.members[3].group, 1);
			roster_free(&r);
		}
}
END_TEST

START_TEST(test_missing_file)
{
	struct roster r;

	roster_init(&r);
	ck_assert_int_eq(ims_read_snapshot("/nonexistent/snapshot", &r), -1);
	roster_free(&r);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("snap");
	TCase *tc = tcase_create("reader");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_same_as_ims_read);
	tcase_add_test(tc, test_empty_roster);
	tcase_add_test(tc, test_other_files_not_mine);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_seal_members_layouts);
	suite_add_tcase(s, tc);
	return tu_run_suite(s) == 0 ? 0 : 1;
}
