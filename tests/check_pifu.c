/*
 * check_pifu.c -- the itslearning profile: PIFU-IMS 1.3 output valid
 * against PIFU-IMS_SAS.xsd (xmllint --schema), its fit (what is cleared,
 * left out or rejected), a national identity number only when mapped,
 * the login as the username userid, full files only, and a PIFU
 * snapshot that reads back to the same roster.
 *
 * tests/data/ims/PIFU-IMS_SAS.xsd is PIFU-IMS 1.3 (2020-04-12) as the
 * Norwegian Directorate for Education publishes it (github.com/
 * iktsenteret/pifu, pifu-ims/PIFU-IMS_SAS.xsd).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sisfeed.h"
#include "tests/testutil.h"

#define WHEN	1725156000	/* 2024-09-01T02:00:00Z */

static char dir[4096];

static void
setup(void)
{
	tu_mkdtemp(dir, sizeof(dir));
}

static void
teardown(void)
{
	tu_rmtree(dir);
}

static struct ims_options
opts(int nin)
{
	struct ims_options o;

	memset(&o, 0, sizeof(o));
	o.source = "sis.example.no";
	o.datasource = "sats@m\xc3\xa5ne.kommune.no";
	o.target = "itslearning";
	o.profile = PROFILE_ITSLEARNING;
	o.nin = nin;
	return o;
}

static void
add_person(struct roster *r, const char *id, const char *userid,
    const char *given, const char *family, const char *email,
    const char *nin, int active)
{
	tu_add_person(r, (struct person){ .id = id, .userid = userid,
	    .given = given, .family = family, .email = email,
	    .role = "Student", .nin = nin, .active = (uint8_t)active,
	    .line = (uint32_t)(r->npersons + 2) });
}

static void
add_group(struct roster *r, const char *id, const char *type,
    const char *shortname, const char *parent, const char *term)
{
	tu_add_group(r, (struct group){ .id = id, .type = type,
	    .shortname = shortname, .longname = "", .parent = parent,
	    .term = term, .line = (uint32_t)(r->ngroups + 2) });
}

static void
add_member(struct roster *r, const char *group, const char *person,
    int role, int active)
{
	tu_add_member(r, group, person, role, active);
}

/*
 * A small school owner: persons with every character to escape, an
 * inactive one, NINs; groups of English and PIFU types, a term PIFU
 * takes and one it does not; an inactive membership.
 */
static void
build(struct roster *r)
{
	struct rejects rj = { 0 };

	roster_init(r);
	r->datetime = WHEN;
	add_person(r, "p1", "ola", "Ola", "Nordmann", "ola@skole.no",
	    "01019912345", 1);
	add_person(r, "p2", "kari", "Kari", "\xc3\x85s & <Co> \"q\"",
	    "kari@skole.no", "02029912345", 0);
	add_person(r, "p3", "", "Per", "Solo", "", "", 1);
	add_group(r, "OWNER", "district", "M\xc3\xa5ne kommune", "", "");
	add_group(r, "SCH", "Skole", "M\xc3\xa5ne skole", "OWNER", "");
	add_group(r, "C1", "class", "Matte 9A & B", "SCH", "2026/2027");
	add_group(r, "H1", "basisgruppe", "9A", "SCH", "H2026");
	ck_assert_int_eq(roster_seal_entities(r, &rj, "p", "g"), 0);
	/* a timeframe PIFU takes, an org it has no element for */
	r->groups[roster_find_group(r, "C1")].begin = "2026-08-17";
	r->groups[roster_find_group(r, "C1")].end = "2027-06-19";
	r->groups[roster_find_group(r, "C1")].orgname = "M\xc3\xa5ne";
	add_member(r, "C1", "p1", 1, 1);
	add_member(r, "C1", "p2", 2, 0);
	add_member(r, "H1", "p1", 1, 1);
	add_member(r, "SCH", "p3", 2, 1);
	ck_assert_int_eq(roster_seal_members(r, &rj, "m", NULL), 0);
	ck_assert_int_eq(rj.count, 0);
	/* a role timeframe: PIFU-IMS's <role> has one too */
	r->members[r->nmembers - 1].begin = (uint16_t)day_parse("2026-08-17",
	    10);
}

/* Screen r for its profile; the rejects file's text into *text if not
 * NULL.  Returns the count of rejects (dependents and notes apart). */
static size_t
fit(struct roster *r, const struct ims_options *o, char **text)
{
	struct rejects rj;
	char path[4200];
	size_t altered;

	memset(&rj, 0, sizeof(rj));
	snprintf(path, sizeof(path), "%s/rejects.txt", dir);
	ck_assert_ptr_nonnull(rj.fp = fopen(path, "w"));
	ck_assert_int_eq(ims_screen(o, r, &rj, "persons.csv", "groups.csv",
	    "memberships.csv", &altered), 0);
	ck_assert_int_eq(fclose(rj.fp), 0);
	if (text != NULL)
		ck_assert_ptr_nonnull(*text = tu_read(path, NULL));
	return rj.count;
}

static const char *
write_full(const struct roster *r, const struct ims_options *o)
{
	static char path[4200];

	snprintf(path, sizeof(path), "%s/pifu.xml", dir);
	ck_assert_msg(ims_write_full(path, r, o) == 0, "%s", error_last());
	return path;
}

/* xmllint --noout --schema PIFU-IMS_SAS.xsd file must pass. */
static void
assert_schema_valid(const char *file)
{
	char xsd[4200], *argv[7], *out = NULL;
	int rc;

	snprintf(xsd, sizeof(xsd), "%s/tests/data/ims/PIFU-IMS_SAS.xsd",
	    tu_top());
	ck_assert_msg(tu_exists("/usr/bin/xmllint"),
	    "xmllint missing (Debian package libxml2-utils)");
	argv[0] = (char *)"/usr/bin/xmllint";
	argv[1] = (char *)"--noout";
	argv[2] = (char *)"--nonet";
	argv[3] = (char *)"--schema";
	argv[4] = xsd;
	argv[5] = (char *)file;
	argv[6] = NULL;
	rc = tu_run(argv, &out, 60);
	ck_assert_msg(rc == 0, "xmllint --schema %s: exit %d:\n%s", file, rc,
	    out);
	free(out);
}

/* 1 if the two rosters hold the same records (no change between). */
static int
same_roster(const struct roster *a, const struct roster *b)
{
	struct changeset cs;
	int same;

	ck_assert_int_eq(diff_compute(a, b, &cs), 0);
	same = cs.n[TYPE_PERSON] + cs.n[TYPE_GROUP] + cs.n[TYPE_MEMBER] == 0;
	changeset_free(&cs);
	return same;
}

/* ------------------------------------------------------------------ */

START_TEST(test_schema_valid)
{
	struct roster r;
	struct ims_options o = opts(1);
	const char *path;
	char *xml;

	build(&r);
	ck_assert_int_eq(fit(&r, &o, NULL), 0);
	path = write_full(&r, &o);
	assert_schema_valid(path);
	xml = tu_read(path, NULL);
	ck_assert_ptr_nonnull(xml);
	ck_assert_ptr_nonnull(strstr(xml, "<enterprise xmlns=\"" PIFU_NS
	    "\">"));
	ck_assert_ptr_nonnull(strstr(xml, "<properties lang=\"no\">"));
	ck_assert_ptr_nonnull(strstr(xml, "<type>full</type>"));
	ck_assert_ptr_nonnull(strstr(xml,
	    "<userid useridtype=\"username\">ola</userid>"));
	ck_assert_ptr_nonnull(strstr(xml,
	    "<userid useridtype=\"personNIN\">01019912345</userid>"));
	ck_assert_ptr_nonnull(strstr(xml, "<pifu_status type=\""
	    "activeInactive\">inaktiv</pifu_status>"));
	ck_assert_ptr_nonnull(strstr(xml, "<scheme>pifu-ims-go-org</scheme>"
	    "\n      <typevalue level=\"1\">skoleeier</typevalue>"));
	ck_assert_ptr_nonnull(strstr(xml, "<typevalue level=\"2\">"
	    "undervisningsgruppe</typevalue>"));
	ck_assert_ptr_nonnull(strstr(xml, "<adminperiod>2026/2027"));
	ck_assert_ptr_nonnull(strstr(xml, "<begin restrict=\"0\">2026-08-17"
	    "</begin>"));
	ck_assert_ptr_nonnull(strstr(xml, "<status>1</status>\n"
	    "        <timeframe>\n"
	    "          <begin restrict=\"1\">2026-08-17</begin>\n"));
	ck_assert_ptr_null(strstr(xml, "<org>"));
	ck_assert_ptr_nonnull(strstr(xml, "<status>0</status>"));
	ck_assert_ptr_null(strstr(xml, "recstatus"));
	ck_assert_ptr_null(strstr(xml, "institutionrole"));
	ck_assert_ptr_null(strstr(xml, "systemrole"));
	free(xml);
	roster_free(&r);
}
END_TEST

/* A PIFU snapshot reads back to the fitted roster: no phantom update. */
START_TEST(test_reads_back)
{
	struct roster r, back;
	struct ims_options o = opts(1);
	long i;

	build(&r);
	fit(&r, &o, NULL);
	roster_init(&back);
	ck_assert_int_eq(ims_read(write_full(&r, &o), &back, NULL), 0);
	ck_assert_msg(same_roster(&r, &back), "the snapshot reads back "
	    "different");
	i = roster_find_person(&back, "p2");
	ck_assert_int_ge(i, 0);
	ck_assert_int_eq(back.persons[i].active, 0);
	ck_assert_str_eq(back.persons[i].nin, "02029912345");
	ck_assert_str_eq(back.persons[i].userid, "kari");
	ck_assert_int_eq(back.datetime, WHEN);
	roster_free(&back);
	roster_free(&r);
}
END_TEST

/* No personNIN unless the config maps one; other profiles never. */
START_TEST(test_nin_only_mapped)
{
	struct roster r, back;
	struct ims_options o = opts(0);
	char *xml;
	size_t i;

	build(&r);
	fit(&r, &o, NULL);
	for (i = 0; i < r.npersons; i++)
		ck_assert_str_eq(r.persons[i].nin, "");
	xml = tu_read(write_full(&r, &o), NULL);
	ck_assert_ptr_nonnull(xml);
	ck_assert_ptr_null(strstr(xml, "personNIN"));
	ck_assert_ptr_nonnull(strstr(xml, "useridtype=\"username\""));
	free(xml);
	roster_free(&r);

	build(&r);
	o.profile = PROFILE_GENERIC;
	o.nin = 1;
	fit(&r, &o, NULL);
	for (i = 0; i < r.npersons; i++)
		ck_assert_str_eq(r.persons[i].nin, "");
	/* the generic reader still reads a personNIN apart, not as login */
	roster_init(&back);
	ck_assert_int_eq(ims_read(tu_write(dir, "in.xml",
	    "<enterprise><properties><datasource>x</datasource>"
	    "<datetime>2024-09-01</datetime></properties>"
	    "<person><sourcedid><source>s</source><id>1</id></sourcedid>"
	    "<userid useridtype=\"personNIN\">01019912345</userid>"
	    "<userid useridtype=\"sisID\">OID1</userid>"
	    "<userid useridtype=\"username\">ola</userid>"
	    "<name><fn>Ola N</fn></name></person></enterprise>"),
	    &back, NULL), 0);
	ck_assert_uint_eq(back.npersons, 1);
	ck_assert_str_eq(back.persons[0].userid, "ola");
	ck_assert_str_eq(back.persons[0].nin, "01019912345");
	roster_free(&back);
	roster_free(&r);
}
END_TEST

/*
 * What PIFU cannot carry: a short name over 60 characters and a type
 * without a PIFU typevalue reject the group (its child and the
 * memberships with it); an email PIFU refuses and a term it cannot
 * carry are left out with a note that is not counted; the institution
 * role is cleared.  The result is schema-valid.
 */
START_TEST(test_fit_rejects)
{
	struct roster r;
	struct ims_options o = opts(1);
	struct rejects rj = { 0 };
	char *text;
	size_t n;

	roster_init(&r);
	r.datetime = WHEN;
	add_person(&r, "p1", "ola", "Ola", "N", "ola@localhost", "", 1);
	add_person(&r, "p2", "kari", "Kari", "N", "kari@skole.no", "", 1);
	add_group(&r, "SCH", "school", "Skole", "", "2026/27");
	add_group(&r, "LONG", "class", "0123456789012345678901234567890123"
	    "456789012345678901234567890", "SCH", "");
	add_group(&r, "KID", "class", "Kid", "LONG", "");
	add_group(&r, "ODD", "department", "Odd", "SCH", "");
	add_group(&r, "OK", "course", "Ok", "SCH", "V2027");
	ck_assert_int_eq(roster_seal_entities(&r, &rj, "p", "g"), 0);
	r.groups[roster_find_group(&r, "OK")].begin = "2026-13-01";
	add_member(&r, "KID", "p1", 1, 1);
	add_member(&r, "LONG", "p2", 1, 1);
	add_member(&r, "ODD", "p1", 1, 1);
	add_member(&r, "OK", "p1", 1, 1);
	add_member(&r, "OK", "p2", 2, 1);
	ck_assert_int_eq(roster_seal_members(&r, &rj, "m", NULL), 0);

	/* LONG and ODD; KID and three memberships depend on them */
	n = fit(&r, &o, &text);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(r.ngroups, 2);
	ck_assert_int_ge(roster_find_group(&r, "SCH"), 0);
	ck_assert_int_ge(roster_find_group(&r, "OK"), 0);
	ck_assert_uint_eq(r.nmembers, 2);
	ck_assert_str_eq(r.groups[roster_find_group(&r, "OK")].type,
	    "undervisningsgruppe");
	ck_assert_str_eq(r.groups[roster_find_group(&r, "OK")].term, "V2027");
	ck_assert_str_eq(r.groups[roster_find_group(&r, "OK")].begin, "");
	ck_assert_ptr_nonnull(strstr(text, "begin: note: group 'OK': "
	    "'2026-13-01' is not a date (YYYY-MM-DD); written without it"));
	ck_assert_str_eq(r.groups[roster_find_group(&r, "SCH")].term, "");
	ck_assert_str_eq(r.persons[0].email, "");
	ck_assert_str_eq(r.persons[1].email, "kari@skole.no");
	ck_assert_str_eq(r.persons[0].role, "");
	ck_assert_ptr_nonnull(strstr(text, "groups.csv:3: short: 'LONG': "
	    "longer than 60 characters"));
	ck_assert_ptr_nonnull(strstr(text, "groups.csv:4: parent: depends on "
	    "rejected parent group 'LONG'"));
	ck_assert_ptr_nonnull(strstr(text, "groups.csv:5: type: group "
	    "'ODD': type 'department' has no PIFU-IMS group type"));
	/* the memberships depend on their groups, as in the moodle screen */
	ck_assert_ptr_nonnull(strstr(text, "memberships.csv:0: group: depends "
	    "on rejected group 'KID' (groups.csv:4): 1 membership left out"));
	ck_assert_ptr_nonnull(strstr(text, "memberships.csv:0: group: depends "
	    "on rejected group 'LONG' (groups.csv:3): 1 membership left out"));
	ck_assert_ptr_nonnull(strstr(text, "memberships.csv:0: group: depends "
	    "on rejected group 'ODD' (groups.csv:5): 1 membership left out"));
	ck_assert_ptr_nonnull(strstr(text, "persons.csv:2: email: note: "
	    "person 'p1': 'ola@localhost' is not an address PIFU-IMS "
	    "accepts"));
	ck_assert_ptr_nonnull(strstr(text, "groups.csv:2: term: note: group "
	    "'SCH': '2026/27' is not a PIFU-IMS adminperiod"));
	assert_schema_valid(write_full(&r, &o));
	free(text);
	roster_free(&r);
}
END_TEST

/* The checks PIFU's patterns need, at their edges. */
START_TEST(test_patterns)
{
	ck_assert_int_eq(pifu_email_ok("a@b.c"), 1);
	ck_assert_int_eq(pifu_email_ok("a@b@c.d"), 1);
	ck_assert_int_eq(pifu_email_ok("a@b"), 0);
	ck_assert_int_eq(pifu_email_ok("a@.b"), 0);
	ck_assert_int_eq(pifu_email_ok("@b.c"), 0);
	ck_assert_int_eq(pifu_email_ok("a@b."), 0);
	ck_assert_int_eq(pifu_email_ok("a@b\n.c"), 0);
	ck_assert_int_eq(pifu_adminperiod_ok("2026"), 1);
	ck_assert_int_eq(pifu_adminperiod_ok("H2026/V2027"), 1);
	ck_assert_int_eq(pifu_adminperiod_ok("VH2026"), 1);
	ck_assert_int_eq(pifu_adminperiod_ok("2026/27"), 0);
	ck_assert_int_eq(pifu_adminperiod_ok("2026-2027"), 0);
	ck_assert_int_eq(pifu_adminperiod_ok("h2026"), 0);
	ck_assert_int_eq(pifu_adminperiod_ok(""), 0);
	ck_assert_str_eq(pifu_typevalue("SCHOOL"), "skole");
	ck_assert_str_eq(pifu_typevalue("Fag"), "fag");
	ck_assert_ptr_null(pifu_typevalue(""));
	ck_assert_uint_eq(utf8_chars("M\xc3\xa5ne"), 4);
}
END_TEST

/* itslearning takes full files only: the writer refuses a delta. */
START_TEST(test_no_delta)
{
	struct roster r;
	struct ims_options o = opts(0);
	struct changeset cs;
	char path[4200];

	build(&r);
	fit(&r, &o, NULL);
	ck_assert_int_eq(diff_compute(&r, &r, &cs), 0);
	snprintf(path, sizeof(path), "%s/delta.xml", dir);
	ck_assert_int_eq(ims_write_delta(path, &r, &r, &cs, &o), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "full files only"));
	ck_assert_int_eq(access(path, F_OK), -1);
	changeset_free(&cs);
	roster_free(&r);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("pifu");
	TCase *tc = tcase_create("itslearning");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_schema_valid);
	tcase_add_test(tc, test_reads_back);
	tcase_add_test(tc, test_nin_only_mapped);
	tcase_add_test(tc, test_fit_rejects);
	tcase_add_test(tc, test_patterns);
	tcase_add_test(tc, test_no_delta);
	suite_add_tcase(s, tc);
	return tu_run_suite(s) == 0 ? 0 : 1;
}
