/*
 * check_oneroster.c -- the OneRoster 1.1 CSV source.
 */
#include <sys/stat.h>
#include <sys/time.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sisfeed.h"
#include "tests/testutil.h"

static char top[PATH_MAX];	/* absolute top of the tree */
static char sample[PATH_MAX];	/* etc/examples/oneroster */
static char tdir[PATH_MAX];
static struct config *cfg;
static FILE *rejfp;
static char *rejbuf;
static size_t rejlen;
static struct rejects rj;
static struct roster r;

static void
setup(void)
{
	tu_mkdtemp(tdir, sizeof(tdir));
	/* A relative directory keeps the expected messages short. */
	ck_assert_int_eq(chdir(tdir), 0);
	ck_assert_int_eq(mkdir("or", 0755), 0);
	unsetenv("SOURCE_DATE_EPOCH");
	ck_assert_ptr_nonnull(cfg = calloc(1, sizeof(*cfg)));
	cfg->source.format = SOURCE_ONEROSTER;
	cfg->source.dir = (char *)"or";
	cfg->source.delimiter = ',';
	rejfp = open_memstream(&rejbuf, &rejlen);
	ck_assert_ptr_nonnull(rejfp);
	memset(&rj, 0, sizeof(rj));
	rj.fp = rejfp;
	roster_init(&r);
}

static void
teardown(void)
{
	roster_free(&r);
	if (rejfp != NULL)
		fclose(rejfp);
	free(rejbuf);
	free(cfg);
	ck_assert_int_eq(chdir("/"), 0);
	tu_rmtree(tdir);
}

/* Write s to or/name, or remove or/name when s is NULL. */
static void
put(const char *name, const char *s)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "or/%s", name);
	if (s == NULL) {
		ck_assert(unlink(p) == 0 || errno == ENOENT);
		return;
	}
	tu_write("or", name, s);
}

/* The rejects text so far. */
static const char *
rejects(void)
{
	ck_assert_int_eq(fflush(rejfp), 0);
	return rejbuf ? rejbuf : "";
}

#define UHDR "sourcedId,status,enabledUser,orgSourcedIds,role,username," \
	"givenName,familyName,email\n"
#define OHDR "sourcedId,status,name,type,parentSourcedId\n"
#define CHDR "sourcedId,status,title,classCode,schoolSourcedId," \
	"termSourcedIds\n"
#define EHDR "sourcedId,status,classSourcedId,userSourcedId,role\n"
#define SHDR "sourcedId,status,title\n"

static const char *good_u =
    UHDR
    "u1,,true,sch,student,ann,Ann,Smith,ann@x.org\n"
    "u2,,true,sch,teacher,bob,Bob,Jones,\n";
static const char *good_o =
    OHDR
    "dist,,District,district,\n"
    "sch,,School,school,dist\n";
static const char *good_c =
    CHDR
    "c1,,Class 1,C1,sch,t1\n";
static const char *good_e =
    EHDR
    "e1,,c1,u1,student\n"
    "e2,,c1,u2,teacher\n";
static const char *good_s =
    SHDR
    "t1,,Term 1\n";

/* Write the files (NULL: remove it) and read the export. */
static int
load(const char *u, const char *o, const char *c, const char *e,
    const char *s, const char *m)
{
	int rc;

	roster_free(&r);
	put("users.csv", u);
	put("orgs.csv", o);
	put("classes.csv", c);
	put("enrollments.csv", e);
	put("academicSessions.csv", s);
	put("manifest.csv", m);
	rc = oneroster_read_roster(cfg, &r, &rj);
	ck_assert_int_eq(fflush(rejfp), 0);
	return rc;
}

static const struct person *
person(const char *id)
{
	long i = roster_find_person(&r, id);

	ck_assert_msg(i >= 0, "no person %s", id);
	return &r.persons[i];
}

static const struct group *
group(const char *id)
{
	long i = roster_find_group(&r, id);

	ck_assert_msg(i >= 0, "no group %s", id);
	return &r.groups[i];
}

/* The membership of person p in group g with this role, or NULL. */
static const struct membership *
member(const char *g, const char *p, int role)
{
	long gi = roster_find_group(&r, g), pi = roster_find_person(&r, p);
	size_t i;

	if (gi < 0 || pi < 0)
		return NULL;
	for (i = 0; i < r.nmembers; i++)
		if (r.members[i].group == (uint32_t)gi &&
		    r.members[i].person == (uint32_t)pi &&
		    r.members[i].role == role)
			return &r.members[i];
	return NULL;
}

static void
expect_member(const char *g, const char *p, int role, int active)
{
	const struct membership *m = member(g, p, role);

	ck_assert_msg(m != NULL, "no membership %s in %s as %d", p, g, role);
	ck_assert_int_eq(m->active, active);
}

/* ------------------------------------------------------------------ */
/* The sample export in etc/examples/oneroster.                        */

START_TEST(sample_counts)
{
	cfg->source.dir = sample;
	ck_assert_msg(oneroster_read_roster(cfg, &r, &rj) == 0, "%s",
	    error_last());
	ck_assert_str_eq(rejects(), "");
	ck_assert_uint_eq(rj.count, 0);
	/* users 10, orgs 4, classes 5, enrollments 13, sessions 3 */
	ck_assert_uint_eq(rj.records, 35);
	ck_assert_uint_eq(r.npersons, 9);
	ck_assert_uint_eq(r.ngroups, 3 + 4);
	/* 10 org memberships from users.csv, 12 enrollments */
	ck_assert_uint_eq(r.nmembers, 10 + 12);
}
END_TEST

START_TEST(sample_tobedeleted_absent)
{
	cfg->source.dir = sample;
	ck_assert_msg(oneroster_read_roster(cfg, &r, &rj) == 0, "%s",
	    error_last());
	ck_assert_int_lt(roster_find_person(&r, "U-GONE"), 0);
	ck_assert_int_lt(roster_find_group(&r, "ORG-OLD"), 0);
	ck_assert_int_lt(roster_find_group(&r, "CLS-GONE"), 0);
	/* E13 (U-S1 in CLS-MATH9B) is tobedeleted */
	ck_assert_ptr_null(member("CLS-MATH9B", "U-S1", 1));
	ck_assert_ptr_nonnull(member("CLS-MATH9A", "U-S1", 1));
}
END_TEST

START_TEST(sample_persons)
{
	const struct person *p;

	cfg->source.dir = sample;
	ck_assert_msg(oneroster_read_roster(cfg, &r, &rj) == 0, "%s",
	    error_last());
	p = person("U-T1");
	ck_assert_str_eq(p->userid, "kari.nordmann");
	ck_assert_str_eq(p->given, "Kari");
	ck_assert_str_eq(p->family, "Nordmann");
	ck_assert_str_eq(p->email, "kari.nordmann@example.org");
	ck_assert_str_eq(p->role, "Faculty");
	ck_assert_int_eq(p->active, 1);
	ck_assert_uint_eq(p->line, 2);
	ck_assert_str_eq(person("U-T2")->family, "Hansen, Jr.");
	ck_assert_int_eq(person("U-T2")->active, 1);	/* TRUE */
	ck_assert_str_eq(person("U-S2")->given, "Bj\xc3\xb8rn");
	ck_assert_str_eq(person("U-S2")->family, "\xc3\x85sen");
	p = person("U-S3");
	ck_assert_str_eq(p->given, "Chlo\xc3\xa9 \"Clo\"");
	ck_assert_str_eq(p->family, "O'Brien");
	ck_assert_int_eq(p->active, 0);			/* enabledUser false */
	ck_assert_int_eq(person("U-S4")->active, 1);	/* empty: true */
	ck_assert_str_eq(person("U-S4")->email, "");
	ck_assert_str_eq(person("U-S1")->role, "Student");
	ck_assert_str_eq(person("U-A1")->role, "Staff");
	ck_assert_str_eq(person("U-ADM")->role, "Administrator");
	ck_assert_str_eq(person("U-P1")->role, "Other");
}
END_TEST

START_TEST(sample_groups)
{
	const struct group *g;

	cfg->source.dir = sample;
	ck_assert_msg(oneroster_read_roster(cfg, &r, &rj) == 0, "%s",
	    error_last());
	g = group("ORG-DIST");
	ck_assert_str_eq(g->type, "district");
	ck_assert_str_eq(g->shortname, "Example School District");
	ck_assert_str_eq(g->longname, "");
	ck_assert_str_eq(g->parent, "");
	ck_assert_str_eq(g->term, "");
	g = group("ORG-S");
	ck_assert_str_eq(g->type, "school");
	ck_assert_str_eq(g->shortname,
	    "South Middle School, Campus \"\xc3\x98st\"");
	ck_assert_str_eq(g->parent, "ORG-DIST");
	g = group("CLS-MATH9A");
	ck_assert_str_eq(g->type, "class");
	ck_assert_str_eq(g->shortname,
	    "Mathematics 9A, \"the early group\"");
	ck_assert_str_eq(g->longname, "MATH-9A");
	ck_assert_str_eq(g->parent, "ORG-N");
	/* the title of the first term in termSourcedIds */
	ck_assert_str_eq(g->term, "Autumn term, 2026");
	ck_assert_uint_eq(g->line, 2);
	ck_assert_str_eq(group("CLS-MATH9B")->term, "Spring term 2027");
	/* no title: the class code is the short name, no long name */
	g = group("CLS-NOR8");
	ck_assert_str_eq(g->shortname, "NORSK-8");
	ck_assert_str_eq(g->longname, "");
	ck_assert_str_eq(g->term, "2026/27");
	/* a session not in academicSessions.csv: its id */
	g = group("CLS-HOME");
	ck_assert_str_eq(g->shortname, "Kontaktl\xc3\xa6rergruppe 8\xc3\x98");
	ck_assert_str_eq(g->longname, "");
	ck_assert_str_eq(g->term, "AS-2026");
}
END_TEST

START_TEST(sample_memberships)
{
	cfg->source.dir = sample;
	ck_assert_msg(oneroster_read_roster(cfg, &r, &rj) == 0, "%s",
	    error_last());
	/* org memberships from orgSourcedIds, role by the user's role */
	expect_member("ORG-N", "U-T1", 2, 1);
	expect_member("ORG-N", "U-T2", 2, 1);
	expect_member("ORG-S", "U-T2", 2, 1);
	expect_member("ORG-N", "U-S1", 1, 1);
	expect_member("ORG-S", "U-S3", 1, 1);
	expect_member("ORG-N", "U-A1", 8, 1);
	expect_member("ORG-DIST", "U-ADM", 7, 1);
	expect_member("ORG-S", "U-P1", 4, 1);
	/* enrollments */
	expect_member("CLS-MATH9A", "U-T1", 2, 1);
	expect_member("CLS-MATH9A", "U-S2", 1, 1);
	expect_member("CLS-MATH9A", "U-A1", 8, 1);
	expect_member("CLS-NOR8", "U-ADM", 7, 1);
	expect_member("CLS-HOME", "U-P1", 6, 1);
	/* an inactive user keeps the memberships */
	expect_member("CLS-NOR8", "U-S3", 1, 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Records.                                                            */

START_TEST(good_minimal)
{
	ck_assert_msg(load(good_u, good_o, good_c, good_e, good_s, NULL) == 0,
	    "%s", error_last());
	ck_assert_str_eq(rejects(), "");
	ck_assert_uint_eq(r.npersons, 2);
	ck_assert_uint_eq(r.ngroups, 3);
	ck_assert_uint_eq(r.nmembers, 4);
	ck_assert_str_eq(group("c1")->term, "Term 1");
	ck_assert_str_eq(group("c1")->longname, "C1");
	ck_assert_uint_eq(rj.records, 2 + 2 + 1 + 2 + 1);
}
END_TEST

START_TEST(user_rejects)
{
	ck_assert_msg(load(
	    UHDR
	    "u1,,true,sch,student,ann,Ann,Smith,ann@x.org\n"
	    ",,true,sch,student,x,X,Y,\n"
	    "u3,,true,sch,student,x,,Y,\n"
	    "u4,,true,sch,student,x,X,,\n"
	    "u5,,maybe,sch,student,x,X,Y,\n"
	    "u6,,true,sch,,x,X,Y,\n"
	    "u7,,true,sch,janitor,x,X,Y,\n"
	    "u8,,true,sch,student,x,X\xff,Y,\n"
	    "u9,deleted,true,sch,student,x,X,Y,\n"
	    "u10,,true,sch,student,x,X,Y\n"
	    "u11,,true,sch,student,x,X\"q,Y,\n"
	    "u12,,true,\"sch,nowhere, sch\",student,x,X,Y,\n"
	    "u13,tobedeleted,true,sch,janitor,x,\xff,Y,\n"
	    "u14,,true,c1,student,x,X,Y,\n"
	    "u15,inactive,true,sch,student,x,X,Y,\n"
	    "u16,,FALSE,sch,guardian,x,X,Y,\n",
	    good_o, good_c, EHDR "e1,,c1,u1,student\n", good_s, NULL) == 0,
	    "%s", error_last());
	ck_assert_str_eq(rejects(),
	    "or/users.csv:3: sourcedId: empty key\n"
	    "or/users.csv:4: givenName: missing value\n"
	    "or/users.csv:5: familyName: missing value\n"
	    "or/users.csv:6: enabledUser: unknown status 'maybe'\n"
	    "or/users.csv:7: role: missing value\n"
	    "or/users.csv:8: role: unknown role 'janitor'\n"
	    "or/users.csv:9: givenName: invalid UTF-8"
	    " (it looks like ISO-8859-1: export UTF-8"
	    " or set source.encoding)\n"
	    "or/users.csv:10: status: unknown status 'deleted'\n"
	    "or/users.csv:11: record: 8 fields, header has 9\n"
	    "or/users.csv:12: record: quote inside unquoted field "
	    "(column 7)\n"
	    "or/users.csv:13: orgSourcedIds: unknown org 'nowhere'\n"
	    "or/users.csv:13: orgSourcedIds: duplicate membership of 'u12' "
	    "in 'sch'\n"
	    "or/users.csv:15: orgSourcedIds: unknown org 'c1'\n");
	ck_assert_uint_eq(rj.count, 13);
	ck_assert_uint_eq(r.npersons, 5);
	/* tobedeleted: absent, not rejected */
	ck_assert_int_lt(roster_find_person(&r, "u13"), 0);
	ck_assert_int_eq(person("u15")->active, 0);	/* OneRoster 1.0 */
	ck_assert_int_eq(person("u16")->active, 0);
	ck_assert_str_eq(person("u16")->role, "Other");
	expect_member("sch", "u12", 1, 1);
	expect_member("sch", "u15", 1, 0);
	expect_member("sch", "u16", 4, 1);
	ck_assert_ptr_null(member("c1", "u14", 1));
	ck_assert_uint_eq(r.nmembers, 4 + 1);
}
END_TEST

START_TEST(group_rejects)
{
	ck_assert_msg(load(good_u,
	    OHDR
	    "dist,,District,district,\n"
	    "sch,,School,SCHOOL,dist\n"
	    ",,No key,school,dist\n"
	    "o4,,,school,dist\n"
	    "o5,,Five,,dist\n"
	    "o6,,Six,galaxy,dist\n"
	    "o7,,Seven,ext:campus,nowhere\n"
	    "dup,,Dup,school,dist\n"
	    "o9,,Nine,ext:campus,dist\n",
	    CHDR
	    "c1,,Class 1,C1,sch,t1\n"
	    "dup,,Dup class,,sch,\n"
	    ",,No key,,sch,\n"
	    "c4,,,,sch,\n"
	    "c5,,,CODE5,sch,\n"
	    "c6,,Six,,o7,\n"
	    "c7,,Seven,,c5,\n"
	    "c1,,Again,,sch,\n"
	    "c9,,Nine,,,\n",
	    EHDR "e1,,c5,u1,student\n", good_s, NULL) == 0, "%s",
	    error_last());
	ck_assert_str_eq(rejects(),
	    "or/orgs.csv:4: sourcedId: empty key\n"
	    "or/orgs.csv:5: name: missing value\n"
	    "or/orgs.csv:6: type: missing value\n"
	    "or/orgs.csv:7: type: unknown org type 'galaxy'\n"
	    "or/classes.csv:4: sourcedId: empty key\n"
	    "or/classes.csv:5: title: missing value\n"
	    "or/classes.csv:2: id: duplicate group key 'c1' "
	    "(also on line 9)\n"
	    "or/classes.csv:9: id: duplicate group key 'c1' "
	    "(also on line 2)\n"
	    "or/orgs.csv:9: id: duplicate group key 'dup' "
	    "(also on line 3 of classes.csv)\n"
	    "or/classes.csv:3: id: duplicate group key 'dup' "
	    "(also on line 9 of orgs.csv)\n"
	    "or/orgs.csv:8: parent: note: unknown group 'nowhere': kept as "
	    "a root\n"
	    "or/classes.csv:8: schoolSourcedId: note: unknown org 'c5': "
	    "kept without a school\n");
	ck_assert_uint_eq(rj.count, 10);
	ck_assert_uint_eq(rj.notes, 2);
	/* a dangling parent drops the link, not the org or class */
	ck_assert_uint_eq(r.ngroups, 8);
	ck_assert_str_eq(group("o7")->parent, "");
	ck_assert_str_eq(group("c6")->parent, "o7");
	ck_assert_str_eq(group("c7")->parent, "");
	ck_assert_str_eq(group("sch")->type, "school");
	ck_assert_str_eq(group("o9")->type, "ext:campus");
	ck_assert_str_eq(group("c5")->shortname, "CODE5");
	ck_assert_str_eq(group("c9")->parent, "");
	ck_assert_str_eq(group("c9")->term, "");
	ck_assert_int_lt(roster_find_group(&r, "dup"), 0);
	expect_member("c5", "u1", 1, 1);
}
END_TEST

START_TEST(enrollment_rejects)
{
	ck_assert_msg(load(good_u, good_o, good_c,
	    EHDR
	    "e1,,c1,u1,student\n"
	    "e2,,,u1,student\n"
	    "e3,,c1,,student\n"
	    "e4,,c1,u2,\n"
	    "e5,,c1,u2,janitor\n"
	    "e6,,nowhere,u2,teacher\n"
	    "e7,,sch,u2,teacher\n"
	    "e8,,c1,nobody,teacher\n"
	    "e9,,c1,u1,Student\n"
	    "e10,bogus,c1,u2,teacher\n"
	    "e11,inactive,c1,u2,teacher\n"
	    "e12,tobedeleted,c1,u2,aide\n"
	    "e13,,c1,u2,\"c\xc3\"\n"
	    "e14,,c1,u2,proctor\n",
	    good_s, NULL) == 0, "%s", error_last());
	ck_assert_str_eq(rejects(),
	    "or/enrollments.csv:3: classSourcedId: empty key\n"
	    "or/enrollments.csv:4: userSourcedId: empty key\n"
	    "or/enrollments.csv:5: role: missing value\n"
	    "or/enrollments.csv:6: role: unknown role 'janitor'\n"
	    "or/enrollments.csv:7: classSourcedId: unknown class "
	    "'nowhere'\n"
	    "or/enrollments.csv:8: classSourcedId: unknown class 'sch'\n"
	    "or/enrollments.csv:9: userSourcedId: unknown user 'nobody'\n"
	    "or/enrollments.csv:11: status: unknown status 'bogus'\n"
	    "or/enrollments.csv:14: role: invalid UTF-8"
	    " (it looks like ISO-8859-1: export UTF-8"
	    " or set source.encoding)\n");
	/* e9 is u1 in c1 as a learner again: one membership */
	ck_assert_uint_eq(rj.count, 9);
	expect_member("c1", "u1", 1, 1);
	expect_member("c1", "u2", 2, 0);
	expect_member("c1", "u2", 6, 1);		/* proctor: Mentor */
	ck_assert_ptr_null(member("c1", "u2", 8));	/* tobedeleted */
	ck_assert_uint_eq(r.nmembers, 2 + 3);
}
END_TEST

/*
 * More enrollments than the lookup queue holds, with unknown users,
 * bad roles and a key too long to queue among them: rejects in line
 * order, every good row a membership.
 */
/* beginDate and endDate: the membership's timeframe; rows of one
 * membership merge to the widest (an open end on any row: open); a bad
 * date rejects the row naming file, line and column. */
START_TEST(enrollment_dates)
{
	static const char *e =
	    "sourcedId,status,classSourcedId,userSourcedId,role,beginDate,"
	    "endDate\n"
	    "e1,,c1,u1,student,2025-01-06,2025-06-10\n"
	    "e2,,c1,u1,student,2024-08-15,2024-12-20\n"
	    "e3,,c1,u2,teacher,2024-08-15,\n"
	    "e4,,c1,u2,teacher,2025-01-06,2025-06-10\n"
	    "e5,,c1,u2,student,2024-02-30,\n"
	    "e6,,c1,u1,teacher,,2024-13-01\n"
	    "e7,,c1,u1,aide,2025-01-06,2024-12-20\n";

	ck_assert_int_eq(load(good_u, good_o, good_c, e, good_s, NULL), 0);
	ck_assert_str_eq(rejects(),
	    "or/enrollments.csv:6: beginDate: not a date YYYY-MM-DD from "
	    "1970-01-02 to 2149-06-06 '2024-02-30'\n"
	    "or/enrollments.csv:7: endDate: not a date YYYY-MM-DD from "
	    "1970-01-02 to 2149-06-06 '2024-13-01'\n"
	    "or/enrollments.csv:8: endDate: '2024-12-20' before beginDate "
	    "'2025-01-06'\n");
	ck_assert_uint_eq(rj.count, 3);
	ck_assert_uint_eq(member("c1", "u1", 1)->begin,
	    day_parse("2024-08-15", 10));
	ck_assert_uint_eq(member("c1", "u1", 1)->end,
	    day_parse("2025-06-10", 10));
	ck_assert_uint_eq(member("c1", "u2", 2)->begin,
	    day_parse("2024-08-15", 10));
	ck_assert_uint_eq(member("c1", "u2", 2)->end, 0);
	ck_assert_ptr_null(member("c1", "u2", 1));
	/* without the columns: no timeframe */
	ck_assert_int_eq(load(good_u, good_o, good_c, good_e, good_s, NULL),
	    0);
	ck_assert_uint_eq(member("c1", "u1", 1)->begin +
	    member("c1", "u1", 1)->end, 0);
}
END_TEST

START_TEST(enrollment_rejects_queued)
{
	char *e, *p, want[2048];
	size_t i, n = 0, w = 0;

	ck_assert_ptr_nonnull(e = malloc(8192));
	p = e + sprintf(e, EHDR);
	for (i = 2; i < 60; i++) {
		if (i % 11 == 0)
			p += sprintf(p, "e%zu,,c1,ghost%zu,student\n", i, i);
		else if (i % 13 == 0)
			p += sprintf(p, "e%zu,,c1,u1,janitor\n", i);
		else if (i == 30)
			p += sprintf(p, "e%zu,,c1,%s,student\n", i,
			    "a-user-key-far-too-long-to-wait-in-the-queue-x");
		else {
			p += sprintf(p, "e%zu,,c1,u%zu,%s\n", i, 1 + i % 2,
			    i % 2 ? "teacher" : "student");
			continue;
		}
		if (i % 11 == 0)
			w += (size_t)sprintf(want + w, "or/enrollments.csv:%zu: "
			    "userSourcedId: unknown user 'ghost%zu'\n", i, i);
		else if (i % 13 == 0)
			w += (size_t)sprintf(want + w, "or/enrollments.csv:%zu: "
			    "role: unknown role 'janitor'\n", i);
		else
			w += (size_t)sprintf(want + w, "or/enrollments.csv:%zu: "
			    "userSourcedId: unknown user 'a-user-key-far-too-"
			    "long-to-wait-in-the-queue-x'\n", i);
		n++;
	}
	ck_assert_msg(load(good_u, good_o, good_c, e, good_s, NULL) == 0,
	    "%s", error_last());
	free(e);
	ck_assert_str_eq(rejects(), want);
	ck_assert_uint_eq(rj.count, n);
	expect_member("c1", "u1", 1, 1);
	expect_member("c1", "u2", 2, 1);
	ck_assert_uint_eq(r.nmembers, 2 + 2);	/* and both in sch */
}
END_TEST

START_TEST(roles_config_first)
{
	struct rolemap map[2] = { { (char *)"Lehrer", 2 },
	    { (char *)"STUDENT", 4 } };

	cfg->source.roles = map;
	cfg->source.nroles = 2;
	ck_assert_msg(load(good_u, good_o, good_c,
	    EHDR "e1,,c1,u1,student\ne2,,c1,u2,lehrer\n", good_s, NULL) == 0,
	    "%s", error_last());
	ck_assert_str_eq(rejects(), "");
	expect_member("c1", "u1", 4, 1);
	expect_member("c1", "u2", 2, 1);
	/* the org membership of a student follows the map too */
	expect_member("sch", "u1", 4, 1);
	expect_member("sch", "u2", 2, 1);
	/* the institution role does not */
	ck_assert_str_eq(person("u1")->role, "Student");
}
END_TEST

START_TEST(roles_every_name)
{
	static const struct {
		const char *role, *inst;
		int enrol, org;
	} t[] = {
		{ "student", "Student", 1, 1 },
		{ "Teacher", "Faculty", 2, 2 },
		{ "administrator", "Administrator", 7, 7 },
		{ "aide", "Staff", 8, 8 },
		{ "proctor", "Staff", 6, 4 },
		{ "guardian", "Other", 6, 4 },
		{ "parent", "Other", 6, 4 },
		{ "RELATIVE", "Other", 6, 4 },
	};
	char u[256], e[256];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(u, sizeof(u), UHDR "u1,,true,sch,%s,a,A,B,\n",
		    t[i].role);
		snprintf(e, sizeof(e), EHDR "e1,,c1,u1,%s\n", t[i].role);
		ck_assert_msg(load(u, good_o, good_c, e, good_s, NULL) == 0,
		    "%s", error_last());
		ck_assert_str_eq(rejects(), "");
		ck_assert_str_eq(person("u1")->role, t[i].inst);
		ck_assert_msg(member("c1", "u1", t[i].enrol) != NULL, "%s",
		    t[i].role);
		ck_assert_msg(member("sch", "u1", t[i].org) != NULL, "%s",
		    t[i].role);
		ck_assert_uint_eq(r.nmembers, 2);
	}
}
END_TEST

START_TEST(enabled_spellings)
{
	ck_assert_msg(load(
	    UHDR
	    "a,,true,sch,student,a,A,B,\n"
	    "b,,False,sch,student,b,A,B,\n"
	    "c,,,sch,student,c,A,B,\n"
	    "d,,0,sch,student,d,A,B,\n"
	    "e,active,TRUE,sch,student,e,A,B,\n"
	    "f,inactive,true,sch,student,f,A,B,\n",
	    good_o, good_c, EHDR "e1,,c1,a,student\n", good_s, NULL) == 0,
	    "%s", error_last());
	ck_assert_str_eq(rejects(), "");
	ck_assert_int_eq(person("a")->active, 1);
	ck_assert_int_eq(person("b")->active, 0);
	ck_assert_int_eq(person("c")->active, 1);
	ck_assert_int_eq(person("d")->active, 0);
	ck_assert_int_eq(person("e")->active, 1);
	ck_assert_int_eq(person("f")->active, 0);
}
END_TEST

START_TEST(sessions_terms)
{
	/* A duplicated session id is rejected (both copies): its id. */
	ck_assert_msg(load(good_u, good_o,
	    CHDR
	    "c1,,Class 1,,sch,\" t2 , t1\"\n"
	    "c2,,Class 2,,sch,t3\n"
	    "c3,,Class 3,,sch,t4\n"
	    "c4,,Class 4,,sch,\",t1\"\n",
	    good_e,
	    SHDR
	    "t1,,Term 1\n"
	    "t2,,\"Term 2, spring\"\n"
	    "t3,,T3a\n"
	    "t3,,T3b\n"
	    "t4,tobedeleted,Gone\n"
	    ",,No id\n"
	    "t5,,\n",
	    NULL) == 0, "%s", error_last());
	ck_assert_str_eq(rejects(),
	    "or/academicSessions.csv:7: sourcedId: empty key\n"
	    "or/academicSessions.csv:8: title: missing value\n"
	    "or/academicSessions.csv:4: sourcedId: duplicate session key "
	    "'t3' (also on line 5)\n"
	    "or/academicSessions.csv:5: sourcedId: duplicate session key "
	    "'t3' (also on line 4)\n");
	ck_assert_str_eq(group("c1")->term, "Term 2, spring");
	ck_assert_str_eq(group("c2")->term, "t3");
	ck_assert_str_eq(group("c3")->term, "t4");
	ck_assert_str_eq(group("c4")->term, "Term 1");
	/* Without the file: the ids. */
	ck_assert_msg(load(good_u, good_o, good_c, good_e, NULL, NULL) == 0,
	    "%s", error_last());
	ck_assert_str_eq(group("c1")->term, "t1");
}
END_TEST

START_TEST(header_order_free)
{
	ck_assert_msg(load(
	    "email,familyName,extra,givenName,username,ROLE,orgSourcedIds,"
	    "enabledUser,status,SourcedId\n"
	    "ann@x.org,Smith,x,Ann,ann,student,sch,true,,u1\n"
	    ",Jones,y,Bob,bob,teacher,sch,true,,u2\n",
	    "parentSourcedId,type,name,sourcedId,identifier\n"
	    ",district,District,dist,D\n"
	    "dist,school,School,sch,S\n",
	    "termSourcedIds,schoolSourcedId,classCode,title,sourcedId,grades\n"
	    "t1,sch,C1,Class 1,c1,09\n",
	    "role,userSourcedId,classSourcedId,beginDate,primary\n"
	    "student,u1,c1,2026-08-15,false\n"
	    "teacher,u2,c1,,true\n",
	    "title,sourcedId\nTerm 1,t1\n", NULL) == 0, "%s", error_last());
	ck_assert_str_eq(rejects(), "");
	ck_assert_str_eq(person("u1")->email, "ann@x.org");
	ck_assert_str_eq(person("u1")->userid, "ann");
	ck_assert_str_eq(person("u2")->family, "Jones");
	ck_assert_str_eq(person("u2")->role, "Faculty");
	ck_assert_str_eq(group("sch")->parent, "dist");
	ck_assert_str_eq(group("c1")->shortname, "Class 1");
	ck_assert_str_eq(group("c1")->term, "Term 1");
	expect_member("c1", "u1", 1, 1);
	expect_member("c1", "u2", 2, 1);
	expect_member("sch", "u1", 1, 1);
	ck_assert_uint_eq(r.nmembers, 4);
}
END_TEST

START_TEST(optional_columns)
{
	/* no status, email, parentSourcedId, classCode anywhere */
	ck_assert_msg(load(
	    "sourcedId,enabledUser,orgSourcedIds,role,username,givenName,"
	    "familyName\n"
	    "u1,true,sch,student,ann,Ann,Smith\n",
	    "sourcedId,name,type\nsch,School,school\n",
	    "sourcedId,title,schoolSourcedId,termSourcedIds\n"
	    "c1,Class 1,sch,\n",
	    "classSourcedId,userSourcedId,role\nc1,u1,student\n",
	    NULL, NULL) == 0, "%s", error_last());
	ck_assert_str_eq(rejects(), "");
	ck_assert_str_eq(person("u1")->email, "");
	ck_assert_str_eq(group("c1")->longname, "");
	ck_assert_uint_eq(r.nmembers, 2);
}
END_TEST

START_TEST(bom_crlf)
{
	ck_assert_msg(load(
	    "\xef\xbb\xbf" "sourcedId,status,enabledUser,orgSourcedIds,role,"
	    "username,givenName,familyName,email\r\n"
	    "u1,,true,sch,student,ann,Ann,\"Smith\r\nJr\",\r\n",
	    good_o, good_c, EHDR "e1,,c1,u1,student\r\n", good_s, NULL) == 0,
	    "%s", error_last());
	ck_assert_str_eq(rejects(), "");
	ck_assert_str_eq(person("u1")->family, "Smith\nJr");
	ck_assert_uint_eq(r.nmembers, 2);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Fatal errors.                                                       */

static void
expect_fail(int rc, const char *msg)
{
	ck_assert_int_eq(rc, -1);
	ck_assert_str_eq(error_last(), msg);
}

START_TEST(manifest_delta_refused)
{
	expect_fail(load(good_u, good_o, good_c, good_e, good_s,
	    "propertyName,value\n"
	    "manifest.version,1.0\n"
	    "file.users,bulk\n"
	    "file.enrollments,delta\n"),
	    "or/manifest.csv:4: file.enrollments is delta: delta OneRoster "
	    "exports are not supported; export bulk");
	/* in any case */
	expect_fail(load(good_u, good_o, good_c, good_e, good_s,
	    "propertyName,value\nFILE.USERS,Delta\n"),
	    "or/manifest.csv:2: FILE.USERS is delta: delta OneRoster "
	    "exports are not supported; export bulk");
	/* a manifest that has no value column hides nothing either */
	expect_fail(load(good_u, good_o, good_c, good_e, good_s,
	    "propertyName\nfile.users\n"),
	    "or/manifest.csv:1: column 'value' not in header; the header "
	    "has: propertyName");
	/* bulk and absent are fine */
	ck_assert_msg(load(good_u, good_o, good_c, good_e, good_s,
	    "propertyName,value\n"
	    "manifest.version,1.0\n"
	    "oneroster.version,1.1\n"
	    "file.users,bulk\n"
	    "file.lineItems,absent\n"
	    "source.systemName,\"SIS, Inc.\"\n") == 0, "%s", error_last());
	ck_assert_uint_eq(r.npersons, 2);
	ck_assert_uint_eq(rj.count, 0);
}
END_TEST

START_TEST(missing_column)
{
	expect_fail(load(
	    "sourcedId,status,enabledUser,orgSourcedIds,role,username,"
	    "familyName,email\n"
	    "u1,,true,sch,student,ann,Smith,\n",
	    good_o, good_c, good_e, good_s, NULL),
	    "or/users.csv:1: column 'givenName' not in header; the header "
	    "has: sourcedId, status, enabledUser, orgSourcedIds, role, "
	    "username, familyName, email");
	expect_fail(load(good_u, "sourcedId,name\nsch,School\n", good_c,
	    good_e, good_s, NULL),
	    "or/orgs.csv:1: column 'type' not in header; the header has: "
	    "sourcedId, name");
	expect_fail(load(good_u, good_o,
	    "sourcedId,title,schoolSourcedId\nc1,C,sch\n", good_e, good_s,
	    NULL),
	    "or/classes.csv:1: column 'termSourcedIds' not in header; the "
	    "header has: sourcedId, title, schoolSourcedId");
	expect_fail(load(good_u, good_o, good_c,
	    "classSourcedId,userSourcedId\nc1,u1\n", good_s, NULL),
	    "or/enrollments.csv:1: column 'role' not in header; the header "
	    "has: classSourcedId, userSourcedId");
	expect_fail(load(good_u, good_o, good_c, good_e,
	    "sourcedId,name\nt1,T\n", NULL),
	    "or/academicSessions.csv:1: column 'title' not in header; the "
	    "header has: sourcedId, name");
	/* a blank line before the header moves it */
	expect_fail(load(good_u, good_o, good_c,
	    "\nclassSourcedId,userSourcedId\nc1,u1\n", good_s, NULL),
	    "or/enrollments.csv:2: column 'role' not in header; the header "
	    "has: classSourcedId, userSourcedId");
	expect_fail(load(good_u, good_o, good_c,
	    "classSourcedId,userSourcedId,role,Role\nc1,u1,student,x\n",
	    good_s, NULL),
	    "or/enrollments.csv:1: column 'role' appears twice in header");
}
END_TEST

START_TEST(missing_files)
{
	expect_fail(load(NULL, good_o, good_c, good_e, good_s, NULL),
	    "or/users.csv: No such file or directory");
	expect_fail(load(good_u, NULL, good_c, good_e, good_s, NULL),
	    "or/orgs.csv: No such file or directory");
	expect_fail(load(good_u, good_o, NULL, good_e, good_s, NULL),
	    "or/classes.csv: No such file or directory");
	expect_fail(load(good_u, good_o, good_c, NULL, good_s, NULL),
	    "or/enrollments.csv: No such file or directory");
	/* academicSessions.csv and manifest.csv may be absent */
	ck_assert_msg(load(good_u, good_o, good_c, good_e, NULL, NULL) == 0,
	    "%s", error_last());
	cfg->source.dir = (char *)"nowhere";
	expect_fail(oneroster_read_roster(cfg, &r, &rj),
	    "nowhere/users.csv: No such file or directory");
	cfg->source.dir = NULL;
	expect_fail(oneroster_read_roster(cfg, &r, &rj),
	    "source.dir: no OneRoster directory configured");
}
END_TEST

/* A table cut short (no line end after its last record, or a last
 * record short of the header) fails the read naming file and line:
 * its cut-off records must not become deletes. */
START_TEST(cut_short)
{
	expect_fail(load(good_u, good_o, good_c, EHDR "e1,,c1,u1,student\n"
	    "e2,,c1,u2,tea", good_s, NULL), "or/enrollments.csv:3: no line "
	    "end after the last record: the file is cut short");
	expect_fail(load(UHDR "u1,,true,sch,student,ann,Ann,Smith,ann@x.org\n"
	    "u2,,true,sch\n", good_o, good_c, good_e, good_s, NULL),
	    "or/users.csv:3: the last record has 4 fields, the header 9: "
	    "the file is cut short");
}
END_TEST

START_TEST(empty_and_header_only)
{
	expect_fail(load("", good_o, good_c, good_e, good_s, NULL),
	    "or/users.csv: empty file (no header)");
	expect_fail(load(UHDR, good_o, good_c, good_e, good_s, NULL),
	    "or/users.csv: no data records (header only)");
	expect_fail(load(good_u, good_o, good_c, EHDR, good_s, NULL),
	    "or/enrollments.csv: no data records (header only)");
	expect_fail(load(good_u, good_o, good_c, "\n\n", good_s, NULL),
	    "or/enrollments.csv: empty file (no header)");
	expect_fail(load(good_u, OHDR, good_c, good_e, good_s, NULL),
	    "or/orgs.csv: no data records (header only)");
	expect_fail(load(good_u, good_o, CHDR, good_e, good_s, NULL),
	    "or/classes.csv: no data records (header only)");
	/* a header-only academicSessions.csv is fine */
	ck_assert_msg(load(good_u, good_o, good_c, good_e, SHDR, NULL) == 0,
	    "%s", error_last());
	/* every user tobedeleted: read, none left (the diff decides) */
	ck_assert_msg(load(UHDR "u1,tobedeleted,true,sch,student,a,A,B,\n",
	    good_o, good_c, good_e, good_s, NULL) == 0, "%s", error_last());
	ck_assert_uint_eq(r.npersons, 0);
}
END_TEST

START_TEST(duplicate_users)
{
	ck_assert_msg(load(
	    UHDR
	    "u1,,true,sch,student,ann,Ann,Smith,\n"
	    "u2,,true,sch,teacher,bob,Bob,Jones,\n"
	    "u1,,true,dist,student,ann2,Ann,Smith,\n",
	    good_o, good_c, good_e, good_s, NULL) == 0, "%s", error_last());
	/* both copies go, with their org memberships, without a second
	 * reject for those; the enrollment depends on the rejected user */
	ck_assert_str_eq(rejects(),
	    "or/users.csv:2: id: duplicate person key 'u1' "
	    "(also on line 4)\n"
	    "or/users.csv:4: id: duplicate person key 'u1' "
	    "(also on line 2)\n"
	    "or/enrollments.csv:2: userSourcedId: depends on rejected user "
	    "'u1' (users.csv line 2)\n");
	ck_assert_uint_eq(rj.count, 2);
	ck_assert_uint_eq(rj.dependents, 1);
	ck_assert_uint_eq(r.npersons, 1);
	ck_assert_uint_eq(r.nmembers, 2);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Reading rules on a hand-made v1.1 bulk (tests/data/oneroster).      */

START_TEST(rules_keep_what_can_be_kept)
{
	char dir[PATH_MAX + 64], want[4 * PATH_MAX + 1024];
	const struct group *k1;

	snprintf(dir, sizeof(dir), "%s/tests/data/oneroster/v11-rules", top);
	cfg->source.dir = dir;
	roster_free(&r);
	ck_assert_msg(oneroster_read_roster(cfg, &r, &rj) == 0, "%s",
	    error_last());
	snprintf(want, sizeof(want),
	    "%s/users.csv:5: role: unknown role 'janitor'\n"
	    "%s/orgs.csv:2: parent: note: unknown group 'state-42': kept as "
	    "a root\n"
	    "%s/enrollments.csv:5: userSourcedId: depends on rejected user "
	    "'u4' (users.csv line 5)\n"
	    "%s/enrollments.csv:10: userSourcedId: unknown user 'nobody'\n",
	    dir, dir, dir, dir);
	ck_assert_str_eq(rejects(), want);
	/* only what was really wrong counts for max_rejects */
	ck_assert_uint_eq(rj.count, 2);
	ck_assert_uint_eq(rj.notes, 1);
	ck_assert_uint_eq(rj.dependents, 1);
	/* u2's row has one empty field more than the header: kept */
	ck_assert_uint_eq(r.npersons, 5);
	ck_assert_str_eq(person("u2")->userid, "ben");
	/* the district keeps its place, without its missing parent */
	ck_assert_str_eq(group("d1")->parent, "");
	ck_assert_str_eq(group("s1")->parent, "d1");
	/* k2 is tobedeleted: its enrollments are deletes, not errors */
	ck_assert_int_lt(roster_find_group(&r, "k2"), 0);
	ck_assert_uint_eq(r.ngroups, 3);
	/* Fall and Spring rows of u1 in k1: one membership, from Fall's
	 * beginDate to Spring's endDate */
	expect_member("k1", "u1", 1, 1);
	ck_assert_uint_eq(member("k1", "u1", 1)->begin,
	    day_parse("2024-08-15", 10));
	ck_assert_uint_eq(member("k1", "u1", 1)->end,
	    day_parse("2025-06-10", 10));
	ck_assert_uint_eq(member("k1", "u2", 1)->begin +
	    member("k1", "u2", 1)->end, 0);
	{
		/* written as one <member> with the merged range */
		static const struct ims_options o = { .source = "sis",
		    .datasource = "t" };
		char out[PATH_MAX + 64], *xml;

		snprintf(out, sizeof(out), "%s/rules.xml", tdir);
		ck_assert_msg(ims_write_full(out, &r, &o) == 0, "%s",
		    error_last());
		ck_assert_ptr_nonnull(xml = tu_read(out, NULL));
		ck_assert_ptr_nonnull(strstr(xml, "<id>u1</id>\n"
		    "      </sourcedid>\n"
		    "      <idtype>1</idtype>\n"
		    "      <role roletype=\"01\">\n"
		    "        <status>1</status>\n"
		    "        <timeframe>\n"
		    "          <begin restrict=\"1\">2024-08-15</begin>\n"
		    "          <end restrict=\"1\">2025-06-10</end>\n"
		    "        </timeframe>\n"));
		free(xml);
	}
	expect_member("k1", "u2", 1, 1);
	expect_member("k1", "u3", 1, 1);
	expect_member("k1", "u5", 2, 1);
	ck_assert_uint_eq(r.nmembers, 5 + 4);
	/* the first term's title and dates */
	k1 = group("k1");
	ck_assert_str_eq(k1->term, "Fall 2024");
	ck_assert_str_eq(k1->begin, "2024-08-15");
	ck_assert_str_eq(k1->end, "2024-12-20");
}
END_TEST

/* Copy the fixture file dir/name into the test's or/ directory. */
static void
copy_in(const char *dir, const char *name)
{
	char p[2 * PATH_MAX], buf[8192];
	FILE *fp;
	size_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	ck_assert_ptr_nonnull(fp = fopen(p, "r"));
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	ck_assert(!ferror(fp) && n < sizeof(buf) - 1);
	fclose(fp);
	buf[n] = '\0';
	put(name, buf);
}

/* What the v12 fixture reads to, whichever way its version is found. */
static void
expect_v12(void)
{
	ck_assert_str_eq(rejects(),
	    "or/roles.csv:6: role: unknown role 'janitor'\n"
	    "or/roles.csv:7: userSourcedId: unknown user 'ghost'\n");
	ck_assert_uint_eq(rj.count, 2);
	ck_assert_uint_eq(r.npersons, 4);
	ck_assert_str_eq(person("u1")->role, "Student");
	ck_assert_str_eq(person("u2")->role, "Administrator");
	/* the primary role, though a secondary one comes first */
	ck_assert_str_eq(person("u3")->role, "Faculty");
	ck_assert_int_eq(person("u3")->active, 0);
	ck_assert_str_eq(person("u4")->role, "");
	expect_member("s1", "u1", 1, 1);
	expect_member("d1", "u2", 7, 1);
	expect_member("s1", "u3", 8, 1);
	expect_member("s1", "u3", 2, 1);
	expect_member("k1", "u1", 1, 1);
	expect_member("k1", "u3", 2, 1);
	expect_member("k1", "u4", 1, 1);
	ck_assert_uint_eq(r.nmembers, 7);
	ck_assert_str_eq(group("k1")->term, "Year 2025/26");
}

/* Start the rejects and the roster afresh. */
static void
reread_reset(void)
{
	roster_free(&r);
	ck_assert_int_eq(fflush(rejfp), 0);
	fclose(rejfp);
	free(rejbuf);
	rejbuf = NULL;
	rejfp = open_memstream(&rejbuf, &rejlen);
	ck_assert_ptr_nonnull(rejfp);
	memset(&rj, 0, sizeof(rj));
	rj.fp = rejfp;
}

/* OneRoster 1.2: roles.csv, 1.2 role values, the version found from
 * the manifest or, without one, from users.csv's header. */
START_TEST(v12_bundle)
{
	static const char *const files[] = { "users.csv", "roles.csv",
	    "userProfiles.csv", "orgs.csv", "classes.csv",
	    "enrollments.csv", "academicSessions.csv", "manifest.csv" };
	char dir[PATH_MAX + 64];
	size_t i;

	snprintf(dir, sizeof(dir), "%s/tests/data/oneroster/v12", top);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		copy_in(dir, files[i]);
	ck_assert_msg(oneroster_read_roster(cfg, &r, &rj) == 0, "%s",
	    error_last());
	expect_v12();
	/* no manifest: the header says 1.2 */
	put("manifest.csv", NULL);
	reread_reset();
	ck_assert_msg(oneroster_read_roster(cfg, &r, &rj) == 0, "%s",
	    error_last());
	expect_v12();
	/* 1.2 without roles.csv: refused, naming the version and file */
	put("roles.csv", NULL);
	roster_free(&r);
	ck_assert_int_eq(oneroster_read_roster(cfg, &r, &rj), -1);
	ck_assert_str_eq(error_last(), "or/roles.csv: missing: OneRoster "
	    "1.2 (from the users.csv header) has the users' roles and orgs "
	    "there");
	/* a manifest that says 1.1 over 1.2 users.csv: named */
	put("manifest.csv", "propertyName,value\noneroster.version,1.1\n");
	roster_free(&r);
	ck_assert_int_eq(oneroster_read_roster(cfg, &r, &rj), -1);
	ck_assert_str_eq(error_last(), "or/users.csv:1: column 'role' not "
	    "in header (OneRoster 1.1, from the manifest.csv line 2; 1.2 "
	    "has roles.csv instead)");
	put("manifest.csv", "propertyName,value\noneroster.version,2.0\n");
	roster_free(&r);
	ck_assert_int_eq(oneroster_read_roster(cfg, &r, &rj), -1);
	ck_assert_str_eq(error_last(), "or/manifest.csv:2: "
	    "oneroster.version '2.0' is not supported (1.0, 1.1 or 1.2)");
}
END_TEST


/* ------------------------------------------------------------------ */
/* A bundle shipped as a .zip.                                         */

static const char *const orfiles[] = { "users.csv", "orgs.csv",
	"classes.csv", "enrollments.csv", "academicSessions.csv", NULL };

/* Replace the 4-byte little-endian field at off after every sig in buf. */
static int
patch_u32(unsigned char *buf, size_t len, uint32_t sig, size_t off,
    uint32_t v)
{
	size_t i;
	int n = 0;

	for (i = 0; i + off + 4 <= len; i++) {
		if (buf[i] != (sig & 0xff) || buf[i + 1] != ((sig >> 8) & 0xff) ||
		    buf[i + 2] != ((sig >> 16) & 0xff) ||
		    buf[i + 3] != (sig >> 24))
			continue;
		buf[i + off] = v & 0xff;
		buf[i + off + 1] = (v >> 8) & 0xff;
		buf[i + off + 2] = (v >> 16) & 0xff;
		buf[i + off + 3] = v >> 24;
		n++;
	}
	return n;
}

/* The zip reads as the folder does: at its top or under one folder,
 * rejects named ZIP:FILE:LINE, a missing file named in the zip. */
START_TEST(zip_reads_as_folder)
{
	static const char *const bad_u = UHDR
	    "u1,,true,sch,student,ann,Ann,Smith,ann@x.org\n"
	    "u2,,true,sch,teacher,bob,Bob,Jones,\n"
	    "u3,,true,sch,janitor,cy,Cy,Ray,\n";
	size_t np, ng, nm;

	ck_assert_msg(load(bad_u, good_o, good_c, good_e, good_s,
	    "propertyName,value\noneroster.version,1.1\n") == 0, "%s",
	    error_last());
	ck_assert_str_eq(rejects(), "or/users.csv:4: role: unknown role "
	    "'janitor'\n");
	np = r.npersons;
	ng = r.ngroups;
	nm = r.nmembers;
	tu_zip("top.zip", "or", orfiles, "");
	tu_zip("folder.zip", "or", orfiles, "export/");

	reread_reset();
	cfg->source.dir = (char *)"top.zip";
	ck_assert_msg(oneroster_read_roster(cfg, &r, &rj) == 0, "%s",
	    error_last());
	ck_assert_str_eq(rejects(), "top.zip:users.csv:4: role: unknown "
	    "role 'janitor'\n");
	ck_assert_uint_eq(r.npersons, np);
	ck_assert_uint_eq(r.ngroups, ng);
	ck_assert_uint_eq(r.nmembers, nm);
	ck_assert_str_eq(group("c1")->term, "Term 1");
	expect_member("c1", "u2", 2, 1);

	reread_reset();
	cfg->source.dir = (char *)"folder.zip";
	ck_assert_msg(oneroster_read_roster(cfg, &r, &rj) == 0, "%s",
	    error_last());
	ck_assert_uint_eq(r.npersons, np);
	ck_assert_uint_eq(r.nmembers, nm);

	/* a required file missing, and a file that is no zip */
	put("enrollments.csv", NULL);
	tu_zip("short.zip", "or", (const char *const[]){ "users.csv",
	    "orgs.csv", "classes.csv", NULL }, "");
	reread_reset();
	cfg->source.dir = (char *)"short.zip";
	expect_fail(oneroster_read_roster(cfg, &r, &rj),
	    "short.zip:enrollments.csv: missing");
	tu_write(".", "junk.zip", "users.csv\n");
	cfg->source.dir = (char *)"junk.zip";
	ck_assert_int_eq(oneroster_read_roster(cfg, &r, &rj), -1);
	ck_assert_msg(strncmp(error_last(), "junk.zip: not a readable zip "
	    "file: ", 33) == 0, "%s", error_last());
}
END_TEST

/* The OneRoster 1.2 fixture zipped under a folder reads the same. */
START_TEST(zip_v12)
{
	static const char *const files[] = { "users.csv", "roles.csv",
	    "userProfiles.csv", "orgs.csv", "classes.csv",
	    "enrollments.csv", "academicSessions.csv", "manifest.csv",
	    NULL };
	char dir[PATH_MAX + 64];

	snprintf(dir, sizeof(dir), "%s/tests/data/oneroster/v12", top);
	tu_zip("v12.zip", dir, files, "oneroster-v12/");
	cfg->source.dir = (char *)"v12.zip";
	ck_assert_msg(oneroster_read_roster(cfg, &r, &rj) == 0, "%s",
	    error_last());
	ck_assert_str_eq(rejects(),
	    "v12.zip:roles.csv:6: role: unknown role 'janitor'\n"
	    "v12.zip:roles.csv:7: userSourcedId: unknown user 'ghost'\n");
	ck_assert_uint_eq(r.npersons, 4);
	ck_assert_uint_eq(r.nmembers, 7);
	ck_assert_str_eq(person("u2")->role, "Administrator");
}
END_TEST

/* A member over source.zip_max, or one that inflates past the size it
 * states, is refused: a zip bomb costs at most the cap. */
START_TEST(zip_bomb_refused)
{
	static const char row[] =
	    "u9,,true,sch,student,zed,Zed,Zed,zed@example.org\n";
	unsigned char *buf;
	size_t i, len;
	char *big;
	FILE *fp;

	/* 1.2 MB of users.csv, deflated to a few KiB */
	ck_assert_ptr_nonnull(big = malloc(1300000));
	strcpy(big, UHDR);
	for (i = strlen(big); i + sizeof(row) < 1300000; i += sizeof(row) - 1)
		memcpy(big + i, row, sizeof(row) - 1);
	big[i] = '\0';
	ck_assert_msg(load(big, good_o, good_c, good_e, good_s, NULL) == 0,
	    "%s", error_last());
	free(big);
	tu_zip("big.zip", "or", orfiles, "");
	reread_reset();
	cfg->source.dir = (char *)"big.zip";
	cfg->source.zip_max = 1 << 20;
	ck_assert_int_eq(oneroster_read_roster(cfg, &r, &rj), -1);
	ck_assert_msg(strstr(error_last(), "big.zip:users.csv: states ") !=
	    NULL && strstr(error_last(), "over source.zip_max (1 MiB): "
	    "refused as a zip bomb") != NULL, "%s", error_last());
	/* under the cap it reads */
	reread_reset();
	cfg->source.zip_max = 2 << 20;
	ck_assert_msg(oneroster_read_roster(cfg, &r, &rj) == 0, "%s",
	    error_last());

	/* a member stating 100 bytes that inflates to many more */
	ck_assert_msg(load(good_u, good_o, good_c, good_e, good_s, NULL) ==
	    0, "%s", error_last());
	tu_zip("lie.zip", "or", orfiles, "");
	ck_assert_ptr_nonnull(buf = (unsigned char *)tu_read("lie.zip",
	    &len));
	/* users.csv is the first member: its local header and the
	 * central directory's first entry */
	ck_assert_int_eq(patch_u32(buf, len, 0x04034b50, 22, 100) > 0, 1);
	ck_assert_int_eq(patch_u32(buf, len, 0x02014b50, 24, 100) > 0, 1);
	ck_assert_ptr_nonnull(fp = fopen("lie.zip", "w"));
	ck_assert_uint_eq(fwrite(buf, 1, len, fp), len);
	ck_assert_int_eq(fclose(fp), 0);
	free(buf);
	reread_reset();
	cfg->source.dir = (char *)"lie.zip";
	ck_assert_int_eq(oneroster_read_roster(cfg, &r, &rj), -1);
	ck_assert_msg(strstr(error_last(), "lie.zip:users.csv: inflates past "
	    "the 100 bytes it states: refused as a zip bomb") != NULL, "%s",
	    error_last());
}
END_TEST

/* source.encoding converts a Latin-1 bundle (zipped or not) to UTF-8;
 * a byte Windows-1252 does not have names its file and line. */
START_TEST(encoding_converts)
{
	static const char *const latin_u = UHDR
	    "u1,,true,sch,student,ann,Bj\xf6rk,S\xf8rensen,\n"
	    "u2,,true,sch,teacher,bob,Bob,Jones,\n";

	cfg->source.encoding = (char *)"ISO-8859-1";
	ck_assert_msg(load(latin_u, good_o, good_c, good_e, good_s, NULL) ==
	    0, "%s", error_last());
	ck_assert_str_eq(rejects(), "");
	ck_assert_str_eq(person("u1")->given, "Bj\xc3\xb6rk");
	ck_assert_str_eq(person("u1")->family, "S\xc3\xb8rensen");
	tu_zip("latin.zip", "or", orfiles, "");
	reread_reset();
	cfg->source.dir = (char *)"latin.zip";
	ck_assert_msg(oneroster_read_roster(cfg, &r, &rj) == 0, "%s",
	    error_last());
	ck_assert_str_eq(person("u1")->given, "Bj\xc3\xb6rk");
	/* without the encoding: rejected, naming the likely one */
	reread_reset();
	cfg->source.encoding = NULL;
	ck_assert_msg(oneroster_read_roster(cfg, &r, &rj) == 0, "%s",
	    error_last());
	ck_assert_str_eq(rejects(), "latin.zip:users.csv:2: givenName: "
	    "invalid UTF-8 (it looks like ISO-8859-1: export UTF-8 or set "
	    "source.encoding)\n"
	    "latin.zip:enrollments.csv:2: userSourcedId: depends on "
	    "rejected user 'u1' (users.csv line 2)\n");
	/* 0x81 is not a Windows-1252 character */
	cfg->source.dir = (char *)"or";
	cfg->source.encoding = (char *)"windows-1252";
	expect_fail(load(UHDR "u1,,true,sch,student,ann,Ann,Smith,\n"
	    "u2,,true,sch,teacher,bob,B\x81ob,Jones,\n", good_o, good_c,
	    good_e, good_s, NULL), "or/users.csv:3: byte 0x81 is not "
	    "windows-1252 (source.encoding): is the export in another "
	    "encoding?");
}
END_TEST

/* ------------------------------------------------------------------ */
/* The roster's date.                                                  */

static void
set_mtime(const char *name, time_t t)
{
	struct timeval tv[2];
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "or/%s", name);
	tv[0].tv_sec = tv[1].tv_sec = t;
	tv[0].tv_usec = tv[1].tv_usec = 0;
	ck_assert_int_eq(utimes(p, tv), 0);
}

START_TEST(datetime_newest_file_read)
{
	put("users.csv", good_u);
	put("orgs.csv", good_o);
	put("classes.csv", good_c);
	put("enrollments.csv", good_e);
	put("academicSessions.csv", good_s);
	put("courses.csv", "sourcedId,title\nk1,K\n");
	set_mtime("users.csv", 1700000000);
	set_mtime("orgs.csv", 1700000100);
	set_mtime("classes.csv", 1700000200);
	set_mtime("enrollments.csv", 1700000050);
	set_mtime("academicSessions.csv", 1700000300);
	/* courses.csv is not read */
	set_mtime("courses.csv", 1800000000);
	ck_assert_msg(oneroster_read_roster(cfg, &r, &rj) == 0, "%s",
	    error_last());
	ck_assert_int_eq((long long)r.datetime, 1700000300LL);
}
END_TEST

START_TEST(datetime_sde)
{
	ck_assert_int_eq(setenv("SOURCE_DATE_EPOCH", "1234567890", 1), 0);
	ck_assert_msg(load(good_u, good_o, good_c, good_e, good_s, NULL) == 0,
	    "%s", error_last());
	ck_assert_int_eq((long long)r.datetime, 1234567890LL);
	ck_assert_int_eq(setenv("SOURCE_DATE_EPOCH", "12x", 1), 0);
	expect_fail(load(good_u, good_o, good_c, good_e, good_s, NULL),
	    "SOURCE_DATE_EPOCH: not a decimal number: 12x");
}
END_TEST

/* ------------------------------------------------------------------ */
/* End to end: the binary exports the sample as valid IMS XML.         */

/* tdir/name, in a static buffer. */
static const char *
at_tdir(const char *name)
{
	static char buf[PATH_MAX + 64];

	snprintf(buf, sizeof(buf), "%s/%s", tdir, name);
	return buf;
}

/* In the config at path, the source.dir from becomes to. */
static void
set_dir(const char *path, const char *from, const char *to)
{
	char *conf, *p, *next;
	size_t len;

	ck_assert_ptr_nonnull(conf = tu_read(path, NULL));
	ck_assert_ptr_nonnull(p = strstr(conf, from));
	len = strlen(conf) - strlen(from) + strlen(to) + 1;
	ck_assert_ptr_nonnull(next = malloc(len));
	snprintf(next, len, "%.*s%s%s", (int)(p - conf), conf, to,
	    p + strlen(from));
	ck_assert_int_eq(unlink(path), 0);
	tu_write(tdir, "sisfeed.yaml", next);
	free(next);
	free(conf);
}

/*
 * The sample zipped (under a folder) reads as the folder does: `check`
 * reads it (manifest, every file), and `export` writes the same file as
 * from the folder (at one SOURCE_DATE_EPOCH).
 */
static void
export_zip_same(const char *folderout)
{
	static const char *const files[] = { "users.csv", "orgs.csv",
	    "classes.csv", "enrollments.csv", "academicSessions.csv",
	    "courses.csv", "manifest.csv", NULL };
	char cfgpath[PATH_MAX], zip[PATH_MAX], zout[PATH_MAX];
	char *text = NULL, *a, *b;
	struct timeval tv[2];
	char *argv[8];
	size_t alen, blen;
	int rc;

	ck_assert_int_lt(snprintf(cfgpath, sizeof(cfgpath), "%s/sisfeed.yaml",
	    tdir), (int)sizeof(cfgpath));
	ck_assert_int_lt(snprintf(zip, sizeof(zip), "%s/export.zip", tdir),
	    (int)sizeof(zip));
	ck_assert_int_lt(snprintf(zout, sizeof(zout), "%s/export-zip.xml",
	    tdir), (int)sizeof(zout));
	tu_zip(zip, sample, files, "oneroster/");
	set_dir(cfgpath, sample, zip);
	ck_assert_int_eq(mkdir(at_tdir("outbox"), 0755), 0);
	setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
	argv[0] = (char *)tu_sisfeed();
	argv[1] = (char *)"-c";
	argv[2] = cfgpath;
	argv[3] = (char *)"check";
	argv[4] = NULL;
	rc = tu_run(argv, &text, 60);
	ck_assert_msg(rc == 0, "sisfeed check (zip): exit %d:\n%s", rc, text);
	ck_assert_ptr_nonnull(strstr(text, "ok   source read: 9 persons, "
	    "7 groups, 22 memberships"));
	free(text);
	argv[3] = (char *)"export";
	argv[4] = (char *)"-o";
	argv[5] = zout;
	argv[6] = NULL;
	rc = tu_run(argv, &text, 60);
	ck_assert_msg(rc == 0, "sisfeed export (zip): exit %d:\n%s", rc,
	    text);
	free(text);
	/* the folder again, at the same date */
	set_dir(cfgpath, zip, sample);
	argv[5] = (char *)folderout;
	rc = tu_run(argv, &text, 60);
	unsetenv("SOURCE_DATE_EPOCH");
	ck_assert_msg(rc == 0, "sisfeed export: exit %d:\n%s", rc, text);
	free(text);
	ck_assert_ptr_nonnull(a = tu_read(folderout, &alen));
	ck_assert_ptr_nonnull(b = tu_read(zout, &blen));
	ck_assert_uint_eq(alen, blen);
	ck_assert_int_eq(memcmp(a, b, alen), 0);
	free(a);
	free(b);

	/* source.max_age judges the zip by its own time */
	set_dir(cfgpath, sample, zip);
	set_dir(cfgpath, "format: oneroster", "format: oneroster\n"
	    "  max_age: 26h");
	tv[0].tv_sec = tv[1].tv_sec = time(NULL) - 2 * 86400;
	tv[0].tv_usec = tv[1].tv_usec = 0;
	ck_assert_int_eq(utimes(zip, tv), 0);
	argv[3] = (char *)"run";
	argv[4] = NULL;
	rc = tu_run(argv, &text, 60);
	ck_assert_msg(rc == 1, "sisfeed run (old zip): exit %d:\n%s", rc,
	    text);
	ck_assert_msg(strstr(text, "export.zip was last changed 2d 0h ago, "
	    "over source.max_age (1d 2h)") != NULL, "%s", text);
	free(text);
}

START_TEST(export_end_to_end)
{
	char cfgpath[PATH_MAX], out[PATH_MAX], dtd[PATH_MAX];
	char *yaml, *start, *end, *conf, *text = NULL, *xml;
	char *argv[8];
	size_t need;
	int rc;

	ck_assert_int_lt(snprintf(cfgpath, sizeof(cfgpath),
	    "%s/etc/examples/sisfeed.yaml", top), (int)sizeof(cfgpath));
	ck_assert_ptr_nonnull(yaml = tu_read(cfgpath, NULL));
	/* The source section, up to the next top-level key, replaced;
	 * csv-only keys (persons, columns, ...) go with it. */
	ck_assert_ptr_nonnull(start = strstr(yaml, "\nsource:\n"));
	start++;
	ck_assert_ptr_nonnull(end = strstr(start, "\noutput:"));
	end++;
	need = strlen(yaml) + strlen(sample) + 128;
	ck_assert_ptr_nonnull(conf = malloc(need));
	snprintf(conf, need, "%.*ssource:\n  format: oneroster\n"
	    "  dir: \"%s\"\n%s", (int)(start - yaml), yaml, sample, end);
	tu_write(tdir, "sisfeed.yaml", conf);
	free(conf);
	free(yaml);

	ck_assert_int_lt(snprintf(cfgpath, sizeof(cfgpath), "%s/sisfeed.yaml",
	    tdir), (int)sizeof(cfgpath));
	ck_assert_int_lt(snprintf(out, sizeof(out), "%s/export.xml", tdir),
	    (int)sizeof(out));
	argv[0] = (char *)tu_sisfeed();
	argv[1] = (char *)"-c";
	argv[2] = cfgpath;
	argv[3] = (char *)"export";
	argv[4] = (char *)"-o";
	argv[5] = out;
	argv[6] = NULL;
	rc = tu_run(argv, &text, 60);
	ck_assert_msg(rc == 0, "sisfeed export: exit %d:\n%s", rc, text);
	ck_assert_ptr_nonnull(strstr(text,
	    "9 persons, 7 groups, 22 memberships, 0 rejected"));
	free(text);
	text = NULL;

	ck_assert_ptr_nonnull(xml = tu_read(out, NULL));
	ck_assert_ptr_nonnull(strstr(xml, "Autumn term, 2026"));
	ck_assert_ptr_nonnull(strstr(xml, "Kontaktl\xc3\xa6rergruppe"));
	ck_assert_ptr_null(strstr(xml, "U-GONE"));
	/* enrollments' beginDate and endDate as role timeframes (the
	 * DTD check below covers their place) */
	ck_assert_ptr_nonnull(strstr(xml, "<timeframe>\n"
	    "          <begin restrict=\"1\">2027-01-05</begin>\n"
	    "          <end restrict=\"1\">2027-06-30</end>\n"));
	free(xml);

	ck_assert_int_lt(snprintf(dtd, sizeof(dtd),
	    "%s/tests/data/ims/ims_epv1p1.dtd", top), (int)sizeof(dtd));
	ck_assert_msg(tu_exists("/usr/bin/xmllint"),
	    "xmllint missing (Debian package libxml2-utils)");
	argv[0] = (char *)"/usr/bin/xmllint";
	argv[1] = (char *)"--noout";
	argv[2] = (char *)"--dtdvalid";
	argv[3] = dtd;
	argv[4] = out;
	argv[5] = NULL;
	rc = tu_run(argv, &text, 60);
	ck_assert_msg(rc == 0, "xmllint: exit %d:\n%s", rc, text);
	free(text);
	export_zip_same(out);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The three readers.                                                  */

/* Two sealed rosters hold the same records (dates aside), or fail. */
static void
expect_same_roster(const struct roster *a, const struct roster *b,
    const char *what)
{
	size_t i;

	ck_assert_msg(a->npersons == b->npersons && a->ngroups == b->ngroups &&
	    a->nmembers == b->nmembers, "%s: %zu/%zu/%zu against %zu/%zu/%zu",
	    what, a->npersons, a->ngroups, a->nmembers, b->npersons,
	    b->ngroups, b->nmembers);
	for (i = 0; i < a->npersons; i++)
		ck_assert_msg(strcmp(a->persons[i].id, b->persons[i].id) == 0 &&
		    !person_differs(&a->persons[i], &b->persons[i]),
		    "%s: person %s", what, a->persons[i].id);
	for (i = 0; i < a->ngroups; i++)
		ck_assert_msg(strcmp(a->groups[i].id, b->groups[i].id) == 0 &&
		    !group_differs(&a->groups[i], &b->groups[i]),
		    "%s: group %s", what, a->groups[i].id);
	ck_assert_msg(memcmp(a->members, b->members,
	    a->nmembers * sizeof(*a->members)) == 0, "%s: memberships", what);
}

/*
 * One roster as a generic CSV export, as a OneRoster bundle and as the
 * IMS file written from either: the three readers read the same
 * persons, groups and memberships.
 */
START_TEST(three_readers_one_roster)
{
	static const struct ims_options opts = { "sis.example.org", "x",
	    NULL, 0, 0, 1, PROFILE_GENERIC, 0 };
	struct config *ccfg;
	struct rejects none;
	struct roster rc, ri, ro;

	ck_assert_int_eq(load(UHDR
	    "u1,active,true,,student,ann,Ann,\"Smith, Jr.\",ann@x.org\n"
	    "u2,,TRUE,,teacher,bob,Bob,Jones,\n"
	    "u3,,false,,aide,cy,Cy,Ng,cy@x.org\n"
	    "u4,,true,,administrator,di,D\xc3\xad,\xc3\x98ster,di@x.org\n",
	    OHDR "dist,,District,district,\nsch,,School,school,dist\n",
	    CHDR "c1,,Math 1,M1,sch,t1\nc2,,,ART,sch,\n",
	    EHDR "e1,,c1,u1,student\ne2,,c1,u2,teacher\ne3,,c1,u3,aide\n"
	    "e4,inactive,c2,u1,student\ne5,,c2,u4,administrator\n",
	    SHDR "t1,,Autumn\n", NULL), 0);
	ck_assert_uint_eq(rj.count, 0);
	ck_assert_uint_eq(r.nmembers, 5);

	tu_write(".", "persons.csv",
	    "student_id,username,first_name,last_name,email,active,profile\n"
	    "u1,ann,Ann,\"Smith, Jr.\",ann@x.org,1,Student\n"
	    "u2,bob,Bob,Jones,,yes,Faculty\n"
	    "u3,cy,Cy,Ng,cy@x.org,0,Staff\n"
	    "u4,di,D\xc3\xad,\xc3\x98ster,di@x.org,1,Administrator\n");
	tu_write(".", "groups.csv", "group_id,kind,name,title,parent_id,term\n"
	    "dist,district,District,,,\nsch,school,School,,dist,\n"
	    "c1,class,Math 1,M1,sch,Autumn\nc2,class,ART,,sch,\n");
	tu_write(".", "memberships.csv", "group_id,person_id,role,state\n"
	    "c1,u1,01,active\nc1,u2,02,active\nc1,u3,08,active\n"
	    "c2,u1,01,inactive\nc2,u4,07,active\n");
	ck_assert_ptr_nonnull(ccfg = calloc(1, sizeof(*ccfg)));
	ccfg->source.format = SOURCE_CSV;
	ccfg->source.persons = (char *)"persons.csv";
	ccfg->source.groups = (char *)"groups.csv";
	ccfg->source.memberships = (char *)"memberships.csv";
	ccfg->source.delimiter = ',';
	ccfg->source.pcol[PF_ID] = (char *)"student_id";
	ccfg->source.pcol[PF_USERID] = (char *)"username";
	ccfg->source.pcol[PF_GIVEN] = (char *)"first_name";
	ccfg->source.pcol[PF_FAMILY] = (char *)"last_name";
	ccfg->source.pcol[PF_EMAIL] = (char *)"email";
	ccfg->source.pcol[PF_STATUS] = (char *)"active";
	ccfg->source.pcol[PF_ROLE] = (char *)"profile";
	ccfg->source.gcol[GF_ID] = (char *)"group_id";
	ccfg->source.gcol[GF_TYPE] = (char *)"kind";
	ccfg->source.gcol[GF_SHORT] = (char *)"name";
	ccfg->source.gcol[GF_LONG] = (char *)"title";
	ccfg->source.gcol[GF_PARENT] = (char *)"parent_id";
	ccfg->source.gcol[GF_TERM] = (char *)"term";
	ccfg->source.mcol[MF_GROUP] = (char *)"group_id";
	ccfg->source.mcol[MF_PERSON] = (char *)"person_id";
	ccfg->source.mcol[MF_ROLE] = (char *)"role";
	ccfg->source.mcol[MF_STATUS] = (char *)"state";
	memset(&none, 0, sizeof(none));
	roster_init(&rc);
	ck_assert_msg(csv_read_roster(ccfg, &rc, &none) == 0, "%s",
	    error_last());
	ck_assert_uint_eq(none.count, 0);
	expect_same_roster(&rc, &r, "CSV and OneRoster");

	/* IMS (strict: any reject fails), written from each. */
	ck_assert_int_eq(ims_write_full("c.xml", &rc, &opts), 0);
	ck_assert_int_eq(ims_write_full("o.xml", &r, &opts), 0);
	roster_init(&ri);
	ck_assert_msg(ims_read("c.xml", &ri, NULL) == 0, "%s", error_last());
	expect_same_roster(&rc, &ri, "CSV and IMS");
	roster_init(&ro);
	ck_assert_msg(ims_read("o.xml", &ro, NULL) == 0, "%s", error_last());
	expect_same_roster(&r, &ro, "OneRoster and IMS");
	roster_free(&ro);
	roster_free(&ri);
	roster_free(&rc);
	free(ccfg);
}
END_TEST

static Suite *
oneroster_suite(void)
{
	Suite *s = suite_create("oneroster");
	TCase *tc;

	tc = tcase_create("sample");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, sample_counts);
	tcase_add_test(tc, sample_tobedeleted_absent);
	tcase_add_test(tc, sample_persons);
	tcase_add_test(tc, sample_groups);
	tcase_add_test(tc, sample_memberships);
	suite_add_tcase(s, tc);

	tc = tcase_create("records");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, good_minimal);
	tcase_add_test(tc, user_rejects);
	tcase_add_test(tc, group_rejects);
	tcase_add_test(tc, enrollment_rejects);
	tcase_add_test(tc, enrollment_rejects_queued);
	tcase_add_test(tc, enrollment_dates);
	tcase_add_test(tc, roles_config_first);
	tcase_add_test(tc, roles_every_name);
	tcase_add_test(tc, enabled_spellings);
	tcase_add_test(tc, sessions_terms);
	tcase_add_test(tc, header_order_free);
	tcase_add_test(tc, optional_columns);
	tcase_add_test(tc, bom_crlf);
	tcase_add_test(tc, duplicate_users);
	tcase_add_test(tc, rules_keep_what_can_be_kept);
	tcase_add_test(tc, v12_bundle);
	tcase_add_test(tc, zip_reads_as_folder);
	tcase_add_test(tc, zip_v12);
	tcase_add_test(tc, zip_bomb_refused);
	tcase_add_test(tc, encoding_converts);
	suite_add_tcase(s, tc);

	tc = tcase_create("fatal");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, manifest_delta_refused);
	tcase_add_test(tc, missing_column);
	tcase_add_test(tc, missing_files);
	tcase_add_test(tc, cut_short);
	tcase_add_test(tc, empty_and_header_only);
	tcase_add_test(tc, datetime_newest_file_read);
	tcase_add_test(tc, datetime_sde);
	suite_add_tcase(s, tc);

	tc = tcase_create("readers");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, three_readers_one_roster);
	suite_add_tcase(s, tc);

	tc = tcase_create("binary");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, export_end_to_end);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	if (realpath(tu_top(), top) == NULL) {
		perror(tu_top());
		return 1;
	}
	if (snprintf(sample, sizeof(sample), "%s/etc/examples/oneroster",
	    top) >= (int)sizeof(sample)) {
		fprintf(stderr, "%s: path too long\n", top);
		return 1;
	}
	return tu_run_suite(oneroster_suite()) != 0;
}
