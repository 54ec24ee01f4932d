/*
 * check_ims.c -- the IMS Enterprise 1.1 writer and reader.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "sisfeed.h"
#include "tests/testutil.h"

#define WHEN	1725156000	/* 2024-09-01T02:00:00Z */

static const struct ims_options opts_plain = {
	"sis.example.org", "Example District", "lms", 0, 0, 0, PROFILE_GENERIC, 0
};
static const struct ims_options opts_gzip = {
	"sis.example.org", "Example District", NULL, 1, 0, 0, PROFILE_GENERIC, 0
};

/* ------------------------------------------------------------------ */
/* Helpers.                                                            */

static void
add_person(struct roster *r, const char *id, const char *userid,
    const char *given, const char *family, const char *email,
    const char *role, int active)
{
	tu_add_person(r, (struct person){ .id = id, .userid = userid,
	    .given = given, .family = family, .email = email, .role = role,
	    .active = (uint8_t)active, .line = (uint32_t)(r->npersons + 2) });
}

static void
add_group(struct roster *r, const char *id, const char *type,
    const char *shortname, const char *longname, const char *parent,
    const char *term)
{
	tu_add_group(r, (struct group){ .id = id, .type = type,
	    .shortname = shortname, .longname = longname, .parent = parent,
	    .term = term, .line = (uint32_t)(r->ngroups + 2) });
}

/* After roster_seal_entities: a membership by keys. */
static void
add_member(struct roster *r, const char *group, const char *person,
    int role, int active)
{
	tu_add_member(r, group, person, role, active);
}

static void
seal_entities(struct roster *r)
{
	struct rejects rj = { 0 };

	ck_assert_int_eq(roster_seal_entities(r, &rj, "p", "g"), 0);
	ck_assert_int_eq(rj.count, 0);
}

static void
seal_members(struct roster *r)
{
	struct rejects rj = { 0 };

	ck_assert_int_eq(roster_seal_members(r, &rj, "m", NULL), 0);
	ck_assert_int_eq(rj.count, 0);
}

/*
 * The roster most tests use.  "A-sub" sorts first but is the deepest
 * group; person 1002 is inactive and has every character to escape.
 */
static void
build(struct roster *r)
{
	roster_init(r);
	r->datetime = WHEN;
	add_person(r, "1001", "ola", "Ola", "Nordmann", "ola@example.org",
	    "Student", 1);
	add_person(r, "1002", "kari", "Kari", "\xc3\x85s & <Co> \"q\" 'a'",
	    "", "Faculty", 0);
	add_person(r, "1003", "", "", "Solo", "", "", 1);
	add_group(r, "SCHOOL", "school", "Example School", "", "", "");
	add_group(r, "C1", "class", "1A", "Class 1A", "SCHOOL", "2024/25");
	add_group(r, "A-sub", "", "1A group 1", "", "C1", "");
	seal_entities(r);
	add_member(r, "C1", "1001", 1, 1);
	add_member(r, "C1", "1002", 2, 1);
	add_member(r, "C1", "1002", 8, 0);
	add_member(r, "SCHOOL", "1003", 7, 1);
	add_member(r, "A-sub", "1001", 1, 1);
	seal_members(r);
}


/* A program on $PATH (or the usual places), or NULL. */
static const char *
find_prog(const char *name)
{
	static char buf[4096];
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL;

	if (path == NULL || *path == '\0')
		path = "/usr/bin:/bin:/usr/local/bin";
	if ((copy = strdup(path)) == NULL)
		return NULL;
	for (dir = strtok_r(copy, ":", &save); dir != NULL;
	    dir = strtok_r(NULL, ":", &save)) {
		snprintf(buf, sizeof(buf), "%s/%s", dir, name);
		if (access(buf, X_OK) == 0) {
			free(copy);
			return buf;
		}
	}
	free(copy);
	return NULL;
}

/* The official DTD: beside the repository, else our copy. */
static const char *
dtd_path(void)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), "%s/../shared/ims/ims_epv1p1.dtd",
	    tu_top());
	if (tu_exists(buf))
		return buf;
	snprintf(buf, sizeof(buf), "%s/tests/data/ims/ims_epv1p1.dtd",
	    tu_top());
	ck_assert_msg(tu_exists(buf), "no DTD at %s", buf);
	return buf;
}

/* xmllint --dtdvalid must accept the file. */
static void
assert_dtd_valid(const char *file)
{
	const char *xmllint = find_prog("xmllint");
	char *argv[6], *out = NULL;
	int rc;

	ck_assert_msg(xmllint != NULL, "xmllint not found");
	argv[0] = (char *)xmllint;
	argv[1] = "--noout";
	argv[2] = "--dtdvalid";
	argv[3] = (char *)dtd_path();
	argv[4] = (char *)file;
	argv[5] = NULL;
	rc = tu_run(argv, &out, 60);
	ck_assert_msg(rc == 0, "xmllint %s: exit %d: %s", file, rc, out);
	free(out);
}

static char *
slurp(const char *path, size_t *len)
{
	char *s = tu_read(path, len);

	ck_assert_msg(s != NULL, "cannot read %s", path);
	return s;
}

/* ------------------------------------------------------------------ */
/* The writer.                                                         */

START_TEST(test_full_dtd_valid)
{
	char dir[256];
	const char *f;
	struct roster r;
	struct stat st;
	char *s;

	tu_mkdtemp(dir, sizeof(dir));
	build(&r);
	f = tu_path(dir, "out.xml");
	ck_assert_msg(ims_write_full(f, &r, &opts_plain) == 0, "%s",
	    error_last());
	assert_dtd_valid(f);
	ck_assert_int_eq(stat(f, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	s = slurp(f, NULL);
	/* The profile: declaration first, no BOM, no DOCTYPE, no CR. */
	ck_assert(strncmp(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<enterprise>\n  <properties>\n", 66) == 0);
	ck_assert_ptr_null(strstr(s, "DOCTYPE"));
	ck_assert_ptr_null(strchr(s, '\r'));
	ck_assert_ptr_nonnull(strstr(s,
	    "    <datasource>Example District</datasource>\n"
	    "    <target>lms</target>\n    <type>full</type>\n"
	    "    <datetime>2024-09-01T02:00:00</datetime>\n"));
	ck_assert_ptr_nonnull(strstr(s, "</enterprise>\n"));
	free(s);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_full_records)
{
	char dir[256];
	const char *f;
	struct roster r;
	char *s, *school, *c1, *sub, *mem, *grp;

	tu_mkdtemp(dir, sizeof(dir));
	build(&r);
	f = tu_path(dir, "out.xml");
	ck_assert_int_eq(ims_write_full(f, &r, &opts_plain), 0);
	s = slurp(f, NULL);
	/* A whole person, exactly. */
	ck_assert_ptr_nonnull(strstr(s,
	    "  <person>\n"
	    "    <sourcedid>\n"
	    "      <source>sis.example.org</source>\n"
	    "      <id>1001</id>\n"
	    "    </sourcedid>\n"
	    "    <userid>ola</userid>\n"
	    "    <name>\n"
	    "      <fn>Ola Nordmann</fn>\n"
	    "      <n>\n"
	    "        <family>Nordmann</family>\n"
	    "        <given>Ola</given>\n"
	    "      </n>\n"
	    "    </name>\n"
	    "    <email>ola@example.org</email>\n"
	    "    <institutionrole primaryrole=\"Yes\" "
	    "institutionroletype=\"Student\"/>\n"
	    "  </person>\n"));
	/* No userid for 1003; fn without a leading space. */
	ck_assert_ptr_nonnull(strstr(s, "<id>1003</id>\n    </sourcedid>\n"
	    "    <name>\n      <fn>Solo</fn>\n"));
	/* Inactive person 1002. */
	ck_assert_ptr_nonnull(strstr(s,
	    "    <systemrole systemroletype=\"None\"/>\n"
	    "    <institutionrole primaryrole=\"Yes\" "
	    "institutionroletype=\"Faculty\"/>\n"));
	/* Groups: parents before children, whatever the key order. */
	grp = strstr(s, "<group>");
	ck_assert_ptr_nonnull(grp);
	school = strstr(s, "<id>SCHOOL</id>");
	c1 = strstr(s, "<id>C1</id>");
	sub = strstr(s, "<id>A-sub</id>");
	ck_assert(school != NULL && c1 != NULL && sub != NULL);
	ck_assert(grp < school && school < c1 && c1 < sub);
	/* The root points at itself; level is the depth. */
	ck_assert_ptr_nonnull(strstr(s,
	    "  <group>\n"
	    "    <sourcedid>\n"
	    "      <source>sis.example.org</source>\n"
	    "      <id>SCHOOL</id>\n"
	    "    </sourcedid>\n"
	    "    <grouptype>\n"
	    "      <scheme>sisfeed</scheme>\n"
	    "      <typevalue level=\"0\">school</typevalue>\n"
	    "    </grouptype>\n"
	    "    <description>\n"
	    "      <short>Example School</short>\n"
	    "    </description>\n"
	    "    <relationship relation=\"1\">\n"
	    "      <sourcedid>\n"
	    "        <source>sis.example.org</source>\n"
	    "        <id>SCHOOL</id>\n"
	    "      </sourcedid>\n"
	    "      <label>Parent</label>\n"
	    "    </relationship>\n"
	    "  </group>\n"));
	ck_assert_ptr_nonnull(strstr(s,
	    "      <typevalue level=\"1\">class</typevalue>\n"
	    "    </grouptype>\n"
	    "    <description>\n"
	    "      <short>1A</short>\n"
	    "      <long>Class 1A</long>\n"
	    "    </description>\n"
	    "    <timeframe>\n"
	    "      <adminperiod>2024/25</adminperiod>\n"
	    "    </timeframe>\n"));
	/* A-sub has no type: no grouptype. */
	ck_assert_ptr_nonnull(strstr(s, "<id>A-sub</id>\n    </sourcedid>\n"
	    "    <description>\n"));
	/* One membership per group, one member per person and role. */
	mem = strstr(s,
	    "  <membership>\n"
	    "    <sourcedid>\n"
	    "      <source>sis.example.org</source>\n"
	    "      <id>C1</id>\n"
	    "    </sourcedid>\n"
	    "    <member>\n"
	    "      <sourcedid>\n"
	    "        <source>sis.example.org</source>\n"
	    "        <id>1001</id>\n"
	    "      </sourcedid>\n"
	    "      <idtype>1</idtype>\n"
	    "      <role roletype=\"01\">\n"
	    "        <status>1</status>\n"
	    "      </role>\n"
	    "    </member>\n");
	ck_assert_ptr_nonnull(mem);
	ck_assert_ptr_nonnull(strstr(mem, "<id>1002</id>\n"
	    "      </sourcedid>\n      <idtype>1</idtype>\n"
	    "      <role roletype=\"08\">\n        <status>0</status>\n"));
	ck_assert_ptr_null(strstr(s, "recstatus"));
	free(s);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_escaping)
{
	char dir[256];
	const char *f;
	struct roster r;
	char *s;

	tu_mkdtemp(dir, sizeof(dir));
	roster_init(&r);
	r.datetime = WHEN;
	add_person(&r, "a&b<c>", "u\x01s\x1f" "er\t1", "G\"q\"",
	    "F\x7f\xef\xbf\xbe" "x", "e'@x", "Guest", 1);
	add_group(&r, "G&1", "t<y>pe", "S\x0bhort & \"long\"", "L\r\nx", "",
	    "");
	add_person(&r, "p2", "u2", "G", "F", "", "", 1);
	seal_entities(&r);
	add_member(&r, "G&1", "a&b<c>", 3, 1);
	add_member(&r, "G&1", "p2", 1, 0);
	seal_members(&r);
	f = tu_path(dir, "esc.xml");
	ck_assert_int_eq(ims_write_full(f, &r, &opts_plain), 0);
	assert_dtd_valid(f);
	s = slurp(f, NULL);
	ck_assert_ptr_nonnull(strstr(s, "<id>a&amp;b&lt;c&gt;</id>"));
	/* members name persons by their escaped ids too (from the id
	 * table, escaped and plain ones side by side) */
	ck_assert_ptr_nonnull(strstr(s, "<id>a&amp;b&lt;c&gt;</id>\n"
	    "      </sourcedid>\n      <idtype>1</idtype>\n"
	    "      <role roletype=\"03\">\n        <status>1</status>"));
	ck_assert_ptr_nonnull(strstr(s, "<id>p2</id>\n"
	    "      </sourcedid>\n      <idtype>1</idtype>\n"
	    "      <role roletype=\"01\">\n        <status>0</status>"));
	/* C0 controls dropped, TAB kept. */
	ck_assert_ptr_nonnull(strstr(s, "<userid>user\t1</userid>"));
	/* " and ' are literal in text; U+FFFE dropped, DEL kept. */
	ck_assert_ptr_nonnull(strstr(s, "<given>G\"q\"</given>"));
	ck_assert_ptr_nonnull(strstr(s, "<family>F\x7fx</family>"));
	ck_assert_ptr_nonnull(strstr(s, "<email>e'@x</email>"));
	ck_assert_ptr_nonnull(strstr(s, "<typevalue level=\"0\">"
	    "t&lt;y&gt;pe</typevalue>"));
	ck_assert_ptr_nonnull(strstr(s,
	    "<short>Short &amp; \"long\"</short>"));
	/* the roster stores CR LF as LF, as an XML parser reads it back */
	ck_assert_ptr_nonnull(strstr(s, "<long>L\nx</long>"));
	ck_assert_ptr_nonnull(strstr(s, "<id>G&amp;1</id>"));
	ck_assert_ptr_nonnull(strstr(s, "<role roletype=\"03\">"));
	/* Neither CDATA nor numeric character references. */
	ck_assert_ptr_null(strstr(s, "CDATA"));
	ck_assert_ptr_null(strstr(s, "&#"));
	free(s);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_source_escaped)
{
	char dir[256];
	const char *f;
	struct roster r;
	struct ims_options o = { "a&b", "d<s", NULL, 0, 0, 0,
	    PROFILE_GENERIC, 0 };
	char *s;

	tu_mkdtemp(dir, sizeof(dir));
	build(&r);
	f = tu_path(dir, "src.xml");
	ck_assert_int_eq(ims_write_full(f, &r, &o), 0);
	assert_dtd_valid(f);
	s = slurp(f, NULL);
	ck_assert_ptr_nonnull(strstr(s, "<source>a&amp;b</source>"));
	ck_assert_ptr_nonnull(strstr(s, "<datasource>d&lt;s</datasource>"));
	ck_assert_ptr_null(strstr(s, "<target>"));
	free(s);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_invalid_utf8_fails)
{
	char dir[256];
	const char *f;
	struct roster r;

	tu_mkdtemp(dir, sizeof(dir));
	roster_init(&r);
	add_person(&r, "p1", "", "Bad\xc3(", "X", "", "", 1);
	seal_entities(&r);
	f = tu_path(dir, "bad.xml");
	ck_assert_int_eq(ims_write_full(f, &r, &opts_plain), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "person 'p1'"));
	ck_assert_ptr_nonnull(strstr(error_last(), "given"));
	ck_assert_ptr_nonnull(strstr(error_last(), "invalid UTF-8"));
	/* The partial file is gone. */
	ck_assert_int_eq(tu_exists(f), 0);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_open_fails)
{
	char dir[256];
	struct roster r;

	tu_mkdtemp(dir, sizeof(dir));
	build(&r);
	ck_assert_int_eq(ims_write_full(tu_path(dir, "no/such/dir.xml"), &r,
	    &opts_plain), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "no/such/dir.xml"));
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_cycle_fails)
{
	char dir[256];
	const char *f;
	struct roster r;

	tu_mkdtemp(dir, sizeof(dir));
	roster_init(&r);
	add_group(&r, "A", "", "a", "", "B", "");
	add_group(&r, "B", "", "b", "", "A", "");
	/* Not sealed (already in key order): roster_seal_entities rejects
	 * cycles; the writer must still refuse one on its own. */
	f = tu_path(dir, "cycle.xml");
	ck_assert_int_eq(ims_write_full(f, &r, &opts_plain), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "cycle"));
	ck_assert_int_eq(tu_exists(f), 0);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_role_first_attribute)
{
	char dir[256];
	const char *f;
	struct roster r;
	char *s, *p;
	size_t n = 0;

	tu_mkdtemp(dir, sizeof(dir));
	build(&r);
	f = tu_path(dir, "roles.xml");
	ck_assert_int_eq(ims_write_full(f, &r, &opts_plain), 0);
	s = slurp(f, NULL);
	for (p = s; (p = strstr(p, "<role")) != NULL; p++) {
		ck_assert(strncmp(p, "<role roletype=\"0", 17) == 0);
		n++;
	}
	ck_assert_int_eq(n, r.nmembers);
	free(s);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_deterministic)
{
	char dir[256];
	struct roster r;
	char *a, *b;
	size_t alen, blen;

	tu_mkdtemp(dir, sizeof(dir));
	build(&r);
	ck_assert_int_eq(ims_write_full(tu_path(dir, "a.xml"), &r,
	    &opts_plain), 0);
	ck_assert_int_eq(ims_write_full(tu_path(dir, "b.xml"), &r,
	    &opts_plain), 0);
	a = slurp(tu_path(dir, "a.xml"), &alen);
	b = slurp(tu_path(dir, "b.xml"), &blen);
	ck_assert_uint_eq(alen, blen);
	ck_assert(memcmp(a, b, alen) == 0);
	free(a);
	free(b);
	ck_assert_int_eq(ims_write_full(tu_path(dir, "a.xml.gz"), &r,
	    &opts_gzip), 0);
	ck_assert_int_eq(ims_write_full(tu_path(dir, "b.xml.gz"), &r,
	    &opts_gzip), 0);
	a = slurp(tu_path(dir, "a.xml.gz"), &alen);
	b = slurp(tu_path(dir, "b.xml.gz"), &blen);
	ck_assert_uint_eq(alen, blen);
	ck_assert(memcmp(a, b, alen) == 0);
	free(a);
	free(b);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_gzip)
{
	char dir[256];
	const char *gz, *plain;
	struct roster r, back;
	char *s;
	size_t len;

	tu_mkdtemp(dir, sizeof(dir));
	build(&r);
	gz = tu_path(dir, "out.xml.gz");
	plain = tu_path(dir, "out.xml");
	ck_assert_int_eq(ims_write_full(gz, &r, &opts_gzip), 0);
	s = slurp(gz, &len);
	ck_assert_uint_ge(len, 18);
	ck_assert_int_eq((unsigned char)s[0], 0x1f);
	ck_assert_int_eq((unsigned char)s[1], 0x8b);
	free(s);
	assert_dtd_valid(gz);
	/* The reader takes gzip transparently, and it is the same data. */
	roster_init(&back);
	ck_assert_msg(ims_read(gz, &back, NULL) == 0, "%s", error_last());
	ck_assert_uint_eq(back.npersons, r.npersons);
	ck_assert_uint_eq(back.ngroups, r.ngroups);
	ck_assert_uint_eq(back.nmembers, r.nmembers);
	ck_assert_int_eq(ims_write_full(plain, &back, &opts_plain), 0);
	assert_dtd_valid(plain);
	roster_free(&back);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The reader.                                                         */

/* back, read from the file a that r was written to, holds r's
 * memberships, and written to b gives a's bytes again. */
static void
assert_rewrites_same(const struct roster *r, const struct roster *back,
    const char *a, const char *b)
{
	char *x, *y;
	size_t xl, yl;

	ck_assert_uint_eq(back->nmembers, r->nmembers);
	ck_assert(memcmp(back->members, r->members,
	    r->nmembers * sizeof(*r->members)) == 0);
	ck_assert_int_eq(ims_write_full(b, back, &opts_plain), 0);
	x = slurp(a, &xl);
	y = slurp(b, &yl);
	ck_assert_uint_eq(xl, yl);
	ck_assert(memcmp(x, y, xl) == 0);
	free(x);
	free(y);
}

START_TEST(test_round_trip)
{
	char dir[256];
	const char *a, *b;
	struct roster r, back;
	size_t i;

	tu_mkdtemp(dir, sizeof(dir));
	build(&r);
	a = tu_path(dir, "a.xml");
	b = tu_path(dir, "b.xml");
	ck_assert_int_eq(ims_write_full(a, &r, &opts_plain), 0);
	roster_init(&back);
	ck_assert_msg(ims_read(a, &back, NULL) == 0, "%s", error_last());
	ck_assert_int_eq(back.datetime, WHEN);
	ck_assert_uint_eq(back.npersons, r.npersons);
	for (i = 0; i < r.npersons; i++)
		ck_assert_msg(!person_differs(&r.persons[i], &back.persons[i]),
		    "person %s", r.persons[i].id);
	ck_assert_int_eq(back.persons[1].active, 0);
	ck_assert_str_eq(back.persons[1].family,
	    "\xc3\x85s & <Co> \"q\" 'a'");
	ck_assert_uint_eq(back.ngroups, r.ngroups);
	for (i = 0; i < r.ngroups; i++)
		ck_assert_msg(!group_differs(&r.groups[i], &back.groups[i]),
		    "group %s", r.groups[i].id);
	ck_assert_str_eq(back.groups[roster_find_group(&back,
	    "SCHOOL")].parent, "");
	assert_rewrites_same(&r, &back, a, b);
	roster_free(&back);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

/* Timeframe begin/end and org/orgunit go out DTD-valid and read back. */
START_TEST(test_group_timeframe_org)
{
	char dir[256];
	const char *a;
	struct roster r, back;
	struct group g;
	long gi;

	tu_mkdtemp(dir, sizeof(dir));
	roster_init(&r);
	r.datetime = WHEN;
	add_person(&r, "1001", "ola", "Ola", "Nordmann", "", "", 1);
	memset(&g, 0, sizeof(g));
	g.id = "C9";
	g.type = "class";
	g.shortname = "9A";
	g.term = "Fall";
	g.begin = "2024-08-15";
	g.end = "2024-12-20";
	g.orgname = "Example School";
	g.orgunit = "Science";
	g.line = 2;
	ck_assert_int_eq(roster_add_group(&r, &g), 0);
	seal_entities(&r);
	a = tu_path(dir, "tf.xml");
	ck_assert_int_eq(ims_write_full(a, &r, &opts_plain), 0);
	assert_dtd_valid(a);
	roster_init(&back);
	ck_assert_msg(ims_read(a, &back, NULL) == 0, "%s", error_last());
	ck_assert_int_ge(gi = roster_find_group(&back, "C9"), 0);
	ck_assert_str_eq(back.groups[gi].begin, "2024-08-15");
	ck_assert_str_eq(back.groups[gi].end, "2024-12-20");
	ck_assert_str_eq(back.groups[gi].orgname, "Example School");
	ck_assert_str_eq(back.groups[gi].orgunit, "Science");
	ck_assert_str_eq(back.groups[gi].term, "Fall");
	ck_assert(!group_differs(&r.groups[0], &back.groups[gi]));
	back.groups[gi].end = "2025-01-31";
	ck_assert(group_differs(&r.groups[0], &back.groups[gi]));
	roster_free(&back);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

/* Another producer's file read as consumers read it: trimmed values,
 * the login userid (never the national identity number by default),
 * org and timeframe kept, a datetime that is not ISO 8601. */
START_TEST(test_read_as_consumers_do)
{
	char path[4096];
	struct roster r;
	struct rejects rj = { 0 };
	struct config cfg;
	struct stat st;
	long i;

	snprintf(path, sizeof(path),
	    "%s/tests/data/ims/consumer-reading.xml", tu_top());
	ck_assert_int_eq(stat(path, &st), 0);
	memset(&cfg, 0, sizeof(cfg));
	cfg.source.format = SOURCE_IMS;
	cfg.source.file = path;
	unsetenv("SOURCE_DATE_EPOCH");
	roster_init(&r);
	ck_assert_msg(ims_read_source(&cfg, &r, &rj) == 0, "%s",
	    error_last());
	ck_assert_uint_eq(rj.count, 0);
	/* not a date: the file's time, never 1970 */
	ck_assert_int_eq(r.datetime, st.st_mtime);
	ck_assert_int_ge(i = roster_find_person(&r, "91046433"), 0);
	ck_assert_str_eq(r.persons[i].userid, "chloe.r");
	ck_assert_str_eq(r.persons[i].given, "CHLOE");
	ck_assert_str_eq(r.persons[i].family, "ROBERTS");
	ck_assert_str_eq(r.persons[i].email, "chloe@example.org");
	ck_assert_int_ge(i = roster_find_person(&r, "91046434"), 0);
	ck_assert_str_eq(r.persons[i].userid, "dan.s");	/* untyped */
	ck_assert_int_ge(i = roster_find_person(&r, "91046435"), 0);
	ck_assert_str_eq(r.persons[i].userid, "");	/* NIN only */
	ck_assert_int_ge(i = roster_find_group(&r, "BIO-9"), 0);
	ck_assert_str_eq(r.groups[i].shortname, "Biology 9");
	ck_assert_str_eq(r.groups[i].type, "undervisningsgruppe");
	ck_assert_str_eq(r.groups[i].orgunit, "Science");
	ck_assert_str_eq(r.groups[i].begin, "2024-08-15");
	/* the padded member id finds its person: both enrolments */
	ck_assert_uint_eq(r.nmembers, 2);
	roster_free(&r);

	/* the national identity number only when configured */
	cfg.source.useridtype = (char *)"personnin";
	setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
	roster_init(&r);
	ck_assert_msg(ims_read_source(&cfg, &r, &rj) == 0, "%s",
	    error_last());
	unsetenv("SOURCE_DATE_EPOCH");
	ck_assert_int_eq(r.datetime, 1700000000);
	ck_assert_int_ge(i = roster_find_person(&r, "91046433"), 0);
	ck_assert_str_eq(r.persons[i].userid, "01017012345");
	ck_assert_int_ge(i = roster_find_person(&r, "91046434"), 0);
	ck_assert_str_eq(r.persons[i].userid, "02027012345");
	roster_free(&r);
}
END_TEST

/* The DTD and XSD built into the binary are the repo's (make dtd after
 * a change). */
START_TEST(test_builtin_dtd_current)
{
	char path[4096], *d;
	size_t len;

	snprintf(path, sizeof(path), "%s/tests/data/ims/ims_epv1p1.dtd",
	    tu_top());
	d = slurp(path, &len);
	ck_assert_uint_eq(len, ims_dtd_len);
	ck_assert(memcmp(d, ims_dtd, len) == 0);
	free(d);
	/* and the PIFU-IMS XSD */
	snprintf(path, sizeof(path), "%s/tests/data/ims/PIFU-IMS_SAS.xsd",
	    tu_top());
	d = slurp(path, &len);
	ck_assert_uint_eq(len, pifu_xsd_len);
	ck_assert(memcmp(d, pifu_xsd, len) == 0);
	free(d);
}
END_TEST

/* A file declared ISO-8859-1 but written in UTF-8 fails, naming the
 * line and the fix; a Latin-1 file that declares nothing is named. */
START_TEST(test_read_encoding_mismatch)
{
	char dir[256];
	const char *a;
	struct roster r;
	struct rejects rj = { 0 };

	tu_mkdtemp(dir, sizeof(dir));
	a = tu_path(dir, "latin.xml");
	tu_write(dir, "latin.xml",
	    "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n"
	    "<enterprise>\n<person><sourcedid><source>s</source><id>P1"
	    "</id></sourcedid>\n<name><fn>\xc3\x86se \xc3\x98ster\xc3\xa5s"
	    "</fn></name></person>\n</enterprise>\n");
	roster_init(&r);
	ck_assert_int_eq(ims_read(a, &r, &rj), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "latin.xml:4: declared "
	    "ISO-8859-1 but written in UTF-8"));
	ck_assert_ptr_nonnull(strstr(error_last(), "encoding=\"UTF-8\""));
	roster_free(&r);
	/* really Latin-1, declared: read right */
	tu_write(dir, "latin.xml",
	    "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n"
	    "<enterprise>\n<person><sourcedid><source>s</source><id>P1"
	    "</id></sourcedid>\n<name><fn>\xc6se</fn></name></person>\n"
	    "</enterprise>\n");
	roster_init(&r);
	ck_assert_msg(ims_read(a, &r, &rj) == 0, "%s", error_last());
	ck_assert_str_eq(r.persons[0].family, "\xc3\x86se");
	roster_free(&r);
	/* Latin-1 bytes, nothing declared */
	tu_write(dir, "latin.xml",
	    "<?xml version=\"1.0\"?>\n<enterprise>\n<person><sourcedid>"
	    "<source>s</source><id>P1</id></sourcedid>\n<name><fn>\xc6se"
	    "</fn></name></person>\n</enterprise>\n");
	roster_init(&r);
	ck_assert_int_eq(ims_read(a, &r, &rj), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "latin.xml:4: "));
	ck_assert_ptr_nonnull(strstr(error_last(), "it looks like ISO-8859-1 "
	    "or Windows-1252"));
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_read_thirdparty)
{
	char path[4096];
	struct roster r;
	struct rejects rj = { 0 };
	const struct person *p;
	const struct group *g;
	long i;

	snprintf(path, sizeof(path), "%s/tests/data/ims/thirdparty.xml",
	    tu_top());
	roster_init(&r);
	ck_assert_msg(ims_read(path, &r, &rj) == 0, "%s", error_last());
	ck_assert_int_eq(r.datetime, 1725148800);	/* 2024-09-01 */
	/* P1, P2, P4; P3 is a delete, one person has no key. */
	ck_assert_uint_eq(r.npersons, 3);
	ck_assert_int_ge(i = roster_find_person(&r, "P1"), 0);
	p = &r.persons[i];
	ck_assert_str_eq(p->userid, "ola");		/* the first */
	ck_assert_str_eq(p->given, "Ola");		/* from fn */
	ck_assert_str_eq(p->family, "Nordmann");
	ck_assert_str_eq(p->email, "ola@example.no");
	ck_assert_str_eq(p->role, "Student");		/* the primary */
	ck_assert_int_eq(p->active, 1);
	ck_assert_int_lt(roster_find_person(&r, "OLD-1"), 0);
	ck_assert_int_ge(i = roster_find_person(&r, "P2"), 0);
	p = &r.persons[i];
	ck_assert_str_eq(p->given, "Kari Anne");	/* from n */
	ck_assert_str_eq(p->family, "M\xc3\xb8");	/* Latin-1 file */
	ck_assert_str_eq(p->email, "");		/* not extension's */
	ck_assert_str_eq(p->role, "");
	ck_assert_int_ge(i = roster_find_person(&r, "P4"), 0);
	ck_assert_str_eq(r.persons[i].given, "");
	ck_assert_str_eq(r.persons[i].family, "Cher");
	ck_assert_int_eq(r.persons[i].active, 0);
	ck_assert_int_lt(roster_find_person(&r, "P3"), 0);

	ck_assert_uint_eq(r.ngroups, 2);
	ck_assert_int_ge(i = roster_find_group(&r, "SCHOOL"), 0);
	g = &r.groups[i];
	ck_assert_str_eq(g->parent, "");
	ck_assert_str_eq(g->type, "skole");
	ck_assert_str_eq(g->shortname, "Example & School");
	ck_assert_int_ge(i = roster_find_group(&r, "CLASS1"), 0);
	g = &r.groups[i];
	ck_assert_str_eq(g->parent, "SCHOOL");	/* relation 2 skipped */
	ck_assert_str_eq(g->longname, "Class 1A");	/* CDATA */
	ck_assert_str_eq(g->term, "2024/25");

	/* P1 Learner; P2 02 and 04 (the delete skipped); the group member
	 * skipped; P9 and NOGROUP rejected. */
	ck_assert_uint_eq(r.nmembers, 3);
	ck_assert_int_eq(r.members[0].role, 1);
	ck_assert_str_eq(r.persons[r.members[0].person].id, "P1");
	ck_assert_int_eq(r.members[0].active, 1);
	ck_assert_int_eq(r.members[1].role, 2);
	ck_assert_int_eq(r.members[1].active, 1);
	ck_assert_int_eq(r.members[2].role, 4);
	ck_assert_int_eq(r.members[2].active, 0);
	ck_assert_str_eq(r.persons[r.members[2].person].id, "P2");
	ck_assert_uint_eq(rj.count, 3);
	ck_assert_uint_ge(rj.records, 6);
	roster_free(&r);
}
END_TEST

/* A group's second parent is dropped with a note naming it; the
 * first stays. */
START_TEST(test_read_second_parent)
{
	static const char *const xml =
	    "<?xml version=\"1.0\"?>\n<enterprise>\n"
	    "<group><sourcedid><source>s</source><id>A</id></sourcedid>\n"
	    "<description><short>A</short></description></group>\n"
	    "<group><sourcedid><source>s</source><id>B</id></sourcedid>\n"
	    "<description><short>B</short></description></group>\n"
	    "<group><sourcedid><source>s</source><id>C</id></sourcedid>\n"
	    "<description><short>C</short></description>\n"
	    "<relationship><sourcedid><source>s</source><id>A</id>"
	    "</sourcedid><label>P</label></relationship>\n"
	    "<relationship><sourcedid><source>s</source><id>B</id>"
	    "</sourcedid><label>P</label></relationship>\n"
	    "</group>\n</enterprise>\n";
	char dir[4096], *buf = NULL;
	size_t len = 0;
	struct roster r;
	struct rejects rj = { 0 };
	long i;

	tu_mkdtemp(dir, sizeof(dir));
	ck_assert_ptr_nonnull(rj.fp = open_memstream(&buf, &len));
	roster_init(&r);
	ck_assert_msg(ims_read(tu_write(dir, "two.xml", xml), &r, &rj) == 0,
	    "%s", error_last());
	ck_assert_int_eq(fflush(rj.fp), 0);
	ck_assert_msg(strstr(buf, "two.xml:10: relationship: note: "
	    "group 'C': second parent 'B' dropped (the first is kept)\n") !=
	    NULL, "%s", buf);
	ck_assert_uint_eq(rj.notes, 1);
	ck_assert_uint_eq(rj.count, 0);
	ck_assert_int_ge(i = roster_find_group(&r, "C"), 0);
	ck_assert_str_eq(r.groups[i].parent, "A");
	roster_free(&r);
	fclose(rj.fp);
	free(buf);
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_read_rejects_file)
{
	char dir[256], *s;
	const char *f, *rf;
	struct roster r;
	struct rejects rj = { 0 };

	tu_mkdtemp(dir, sizeof(dir));
	f = tu_write(dir, "in.xml",
	    "<?xml version=\"1.0\"?>\n"
	    "<enterprise>\n"
	    "<properties><datasource>x</datasource>"
	    "<datetime>2024-09-01T02:00:00Z</datetime></properties>\n"
	    "<person><sourcedid><source>s</source><id>P1</id></sourcedid>"
	    "<name><fn>A B</fn></name></person>\n"
	    "<group><sourcedid><source>s</source><id>G1</id></sourcedid>"
	    "<description><short>g</short></description></group>\n"
	    "<group><sourcedid><source>s</source><id>G2</id></sourcedid>"
	    "<description><long>no short</long></description></group>\n"
	    "<membership><sourcedid><source>s</source><id>G1</id>"
	    "</sourcedid>\n"
	    "<member><sourcedid><source>s</source><id>P1</id></sourcedid>"
	    "<idtype>1</idtype>\n"
	    "<role roletype=\"99\"><status>1</status></role>\n"
	    "<role roletype=\"02\"></role>\n"
	    "<role roletype=\"Instructor\"><status>1</status></role>\n"
	    "</member></membership>\n"
	    "</enterprise>\n");
	rf = tu_path(dir, "rejects.txt");
	ck_assert_ptr_nonnull(rj.fp = fopen(rf, "w"));
	roster_init(&r);
	ck_assert_msg(ims_read(f, &r, &rj) == 0, "%s", error_last());
	ck_assert_int_eq(fclose(rj.fp), 0);
	ck_assert_int_eq(r.datetime, WHEN);
	ck_assert_uint_eq(r.ngroups, 1);
	ck_assert_uint_eq(r.nmembers, 1);
	ck_assert_int_eq(r.members[0].role, 2);
	ck_assert_uint_eq(rj.count, 3);
	s = slurp(rf, NULL);
	ck_assert_ptr_nonnull(strstr(s, "in.xml:6: short: "));
	ck_assert_ptr_nonnull(strstr(s, "in.xml:9: roletype: "));
	ck_assert_ptr_nonnull(strstr(s, "in.xml:10: status: "));
	free(s);
	roster_free(&r);

	/* Without a rejects sink the first bad record is the error. */
	roster_init(&r);
	ck_assert_int_eq(ims_read(f, &r, NULL), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "in.xml:6: short:"));
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

/* Read f into r (initialised here) with rejects into dir/rejects.txt;
 * returns the rejects (malloc'd). */
static char *
read_rejecting(const char *dir, const char *f, struct roster *r)
{
	struct rejects rj = { 0 };
	const char *rf = tu_path(dir, "rejects.txt");

	ck_assert_ptr_nonnull(rj.fp = fopen(rf, "w"));
	roster_init(r);
	ck_assert_msg(ims_read(f, r, &rj) == 0, "%s", error_last());
	ck_assert_int_eq(fclose(rj.fp), 0);
	return slurp(rf, NULL);
}

/* The membership of person p in group g with this role, or NULL. */
static const struct membership *
member_of(const struct roster *r, const char *g, const char *p, int role)
{
	long gi = roster_find_group(r, g), pi = roster_find_person(r, p);
	size_t i;

	for (i = 0; gi >= 0 && pi >= 0 && i < r->nmembers; i++)
		if (r->members[i].group == (uint32_t)gi &&
		    r->members[i].person == (uint32_t)pi &&
		    r->members[i].role == role)
			return &r->members[i];
	return NULL;
}

/*
 * A role's timeframe (tests/data/ims/role-timeframe.xml): begin and
 * end with restrict="1" are the membership's dates, without it they
 * are not carried, a bad date or an end before the begin rejects the
 * role.  Written back with restrict="1" after <status>, DTD-valid, and
 * read again to the same roster and the same bytes.
 */
START_TEST(test_role_timeframe)
{
	char dir[256], in[PATH_MAX], *rej, *x;
	const char *a, *b;
	const struct membership *m;
	struct roster r, back;
	size_t xl;

	tu_mkdtemp(dir, sizeof(dir));
	snprintf(in, sizeof(in), "%s/tests/data/ims/role-timeframe.xml",
	    tu_top());
	rej = read_rejecting(dir, in, &r);
	ck_assert_ptr_nonnull(strstr(rej, "role-timeframe.xml:52: begin: "
	    "member 'P1' of 'C1': not a date YYYY-MM-DD from 1970-01-02 to "
	    "2149-06-06 '15/08/2024'\n"));
	ck_assert_ptr_nonnull(strstr(rej, "role-timeframe.xml:63: end: "
	    "member 'P2' of 'C1': end '2024-12-20' before begin "
	    "'2025-01-06'\n"));
	free(rej);
	ck_assert_uint_eq(r.nmembers, 4);
	ck_assert_ptr_nonnull(m = member_of(&r, "C1", "P1", 1));
	ck_assert_uint_eq(m->begin, day_parse("2024-08-15", 10));
	ck_assert_uint_eq(m->end, day_parse("2025-06-10", 10));
	ck_assert_ptr_nonnull(m = member_of(&r, "C1", "P1", 2));
	ck_assert_uint_eq(m->begin + m->end, 0);	/* restrict="0" */
	ck_assert_ptr_nonnull(m = member_of(&r, "C1", "P1", 8));
	ck_assert_uint_eq(m->begin, 0);
	ck_assert_uint_eq(m->end, day_parse("2025-06-10", 10));
	ck_assert_int_eq(m->active, 0);
	ck_assert_ptr_null(member_of(&r, "C1", "P1", 6));
	ck_assert_ptr_null(member_of(&r, "C1", "P2", 1));

	a = tu_path(dir, "a.xml");
	b = tu_path(dir, "b.xml");
	ck_assert_int_eq(ims_write_full(a, &r, &opts_plain), 0);
	assert_dtd_valid(a);
	x = slurp(a, &xl);
	ck_assert_ptr_nonnull(strstr(x, "        <status>1</status>\n"
	    "        <timeframe>\n"
	    "          <begin restrict=\"1\">2024-08-15</begin>\n"
	    "          <end restrict=\"1\">2025-06-10</end>\n"
	    "        </timeframe>\n"
	    "      </role>\n"));
	ck_assert_ptr_nonnull(strstr(x, "        <status>0</status>\n"
	    "        <timeframe>\n"
	    "          <end restrict=\"1\">2025-06-10</end>\n"
	    "        </timeframe>\n"));
	free(x);
	roster_init(&back);
	ck_assert_msg(ims_read(a, &back, NULL) == 0, "%s", error_last());
	assert_rewrites_same(&r, &back, a, b);
	roster_free(&back);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

/* An institutionroletype outside the DTD's list is read in the DTD's
 * spelling when it is one in another case, else rejected: read
 * verbatim it was written otherwise and read back as a change. */
START_TEST(test_read_roles_normalised)
{
	char dir[256], *s;
	const char *f;
	struct roster r;

	tu_mkdtemp(dir, sizeof(dir));
	f = tu_write(dir, "in.xml",
	    "<?xml version=\"1.0\"?>\n"
	    "<enterprise>\n"
	    "<person><sourcedid><source>s</source><id>P1</id></sourcedid>"
	    "<name><fn>A B</fn></name><institutionrole primaryrole=\"Yes\" "
	    "institutionroletype=\"student\"/></person>\n"
	    "<person><sourcedid><source>s</source><id>P2</id></sourcedid>"
	    "<name><fn>A B</fn></name><institutionrole primaryrole=\"Yes\" "
	    "institutionroletype=\"Teacher\"/></person>\n"
	    "</enterprise>\n");
	s = read_rejecting(dir, f, &r);
	ck_assert_uint_eq(r.npersons, 1);
	ck_assert_str_eq(r.persons[0].role, "Student");
	ck_assert_str_eq(strstr(s, "in.xml:"), "in.xml:4: institutionroletype: "
	    "person 'P2': unknown institution role 'Teacher'\n");
	free(s);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

/* A value longer than 8 MiB is not kept: its record is rejected naming
 * the element and line, the others read (a 2 GiB given name took 4 GiB
 * of memory). */
START_TEST(test_read_value_cap)
{
	enum { BIG = 8 * 1024 * 1024 + 1 };
	char dir[256], *x, *s;
	const char *f;
	struct roster r;
	size_t len = 0;

	ck_assert_ptr_nonnull(x = malloc(BIG + 1024));
	len += (size_t)sprintf(x, "<enterprise>\n<person><sourcedid>"
	    "<source>s</source><id>P1</id></sourcedid><name><fn>A B</fn>"
	    "<n><family>B</family><given>");
	memset(x + len, 'a', BIG);
	len += BIG;
	sprintf(x + len, "</given></n></name></person>\n"
	    "<group><sourcedid><source>s</source><id>G1</id></sourcedid>"
	    "<description><short>abc</short></description></group>\n"
	    "<person><sourcedid><source>s</source><id>P2</id></sourcedid>"
	    "<name><fn>A B</fn></name></person>\n</enterprise>\n");
	tu_mkdtemp(dir, sizeof(dir));
	f = tu_write(dir, "big.xml", x);
	free(x);
	s = read_rejecting(dir, f, &r);
	ck_assert_uint_eq(r.npersons, 1);
	ck_assert_str_eq(r.persons[0].id, "P2");
	ck_assert_uint_eq(r.ngroups, 1);
	ck_assert_str_eq(strstr(s, "big.xml:"), "big.xml:2: given: value "
	    "longer than 8388608 bytes\n");
	free(s);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

/* Elements nested past 64 levels fail the file (memory was linear in
 * the depth, a million levels accepted). */
START_TEST(test_read_nesting_limit)
{
	enum { DEPTH = 100000 };
	char dir[256];
	const char *f;
	struct roster r;
	size_t i, len = 0;
	char *x = malloc(DEPTH * 7 + 64);

	ck_assert_ptr_nonnull(x);
	len += (size_t)sprintf(x, "<enterprise>\n");
	for (i = 0; i < DEPTH; i++)
		len += (size_t)sprintf(x + len, "<x>");
	for (i = 0; i < DEPTH; i++)
		len += (size_t)sprintf(x + len, "</x>");
	sprintf(x + len, "</enterprise>\n");
	tu_mkdtemp(dir, sizeof(dir));
	f = tu_write(dir, "deep.xml", x);
	free(x);
	roster_init(&r);
	ck_assert_int_eq(ims_read(f, &r, NULL), -1);
	ck_assert_msg(strstr(error_last(), "deep.xml:2: elements nested "
	    "deeper than 64") != NULL, "%s", error_last());
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_read_not_wellformed)
{
	char dir[256];
	const char *f;
	struct roster r;

	tu_mkdtemp(dir, sizeof(dir));
	f = tu_write(dir, "broken.xml",
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<enterprise>\n"
	    "  <properties><datasource>x</datasource>"
	    "<datetime>2024-09-01</datetime></properties>\n"
	    "  <person><sourcedid><source>s</source><id>P&1</id>"
	    "</sourcedid>\n"
	    "</enterprise>\n");
	roster_init(&r);
	ck_assert_int_eq(ims_read(f, &r, NULL), -1);
	ck_assert_msg(strstr(error_last(), "broken.xml:4:") != NULL, "%s",
	    error_last());
	roster_free(&r);

	/* Truncated upload. */
	f = tu_write(dir, "trunc.xml",
	    "<?xml version=\"1.0\"?>\n<enterprise>\n<properties>\n");
	roster_init(&r);
	ck_assert_int_eq(ims_read(f, &r, NULL), -1);
	ck_assert_msg(strstr(error_last(), "trunc.xml:") != NULL, "%s",
	    error_last());
	roster_free(&r);

	/* Invalid UTF-8. */
	f = tu_write(dir, "utf.xml",
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<enterprise>\n"
	    "<properties><datasource>\xff</datasource>"
	    "<datetime>2024-09-01</datetime></properties>\n</enterprise>\n");
	roster_init(&r);
	ck_assert_int_eq(ims_read(f, &r, NULL), -1);
	ck_assert_msg(strstr(error_last(), "utf.xml:3:") != NULL, "%s",
	    error_last());
	roster_free(&r);

	/* Not IMS at all, and a missing file. */
	f = tu_write(dir, "other.xml", "<?xml version=\"1.0\"?>\n<x/>\n");
	roster_init(&r);
	ck_assert_int_eq(ims_read(f, &r, NULL), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "not an IMS"));
	roster_free(&r);
	roster_init(&r);
	ck_assert_int_eq(ims_read(tu_path(dir, "missing.xml"), &r, NULL), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "missing.xml"));
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

/*
 * An IMS file whose persons and memberships the fast path reads (slow
 * 0), or the same file with an empty comment after each <person> and
 * <membership> tag, which leaves the common shape, so libxml2 reads
 * every block (slow 1); nl is the line end.  Persons with entities,
 * UTF-8, blanks to trim, every optional element, recstatus 3, an
 * unknown role, no id, a key twice, a character reference, text over
 * two lines.  Memberships of several kinds: roles without roletype,
 * recstatus 3, idtype 2, unknown persons and groups, a bad status,
 * blanks around ids, an entity, a comment between blocks, an empty
 * group id, and a block of big members large enough to cross the
 * read buffer several times with rejects deep inside it.
 */
static char *
fast_doc(const char *nl, int slow, size_t *len)
{
	const char *mo = slow ? "<membership><!---->" : "<membership>";
	const char *po = slow ? "<person><!---->" : "<person>";
	char *s = NULL;
	FILE *f = open_memstream(&s, len);
	int i;

	ck_assert_ptr_nonnull(f);
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>%s"
	    "<enterprise>%s<properties><datasource>x</datasource>"
	    "<datetime>2024-09-01T02:00:00Z</datetime></properties>%s",
	    nl, nl, nl);
	fprintf(f, "%s<sourcedid><source>s</source><id>P1</id></sourcedid>"
	    "<name><fn>A B</fn></name></person>%s", po, nl);
	fprintf(f, "  %s%s    <sourcedid>%s      <source>s</source>%s"
	    "      <id>P2</id>%s    </sourcedid>%s    <userid> p2 </userid>%s"
	    "    <name>%s      <fn>Zo\xc3\xab O'Brien</fn>%s      <n>%s"
	    "        <family>O&apos;Brien &amp; &lt;Co&gt; &quot;q&quot;"
	    "</family>%s        <given>Zo\xc3\xab \xc5\xbb\xc3\xb3\xc5"
	    "\x82kiewski</given>%s      </n>%s    </name>%s"
	    "    <email>  p2@example.org </email>%s    <institutionrole "
	    "primaryrole=\"Yes\" institutionroletype=\"student\"/>%s"
	    "  </person>%s", po, nl, nl, nl, nl, nl, nl, nl, nl, nl, nl, nl,
	    nl, nl, nl, nl, nl);
	fprintf(f, "%s<sourcedid><id>P3</id></sourcedid><name><n>"
	    "<given>Only</given></n></name><systemrole systemroletype="
	    "\"None\"/><institutionrole institutionroletype=\"Faculty\" "
	    "primaryrole=\"No\"/></person>%s", po, nl);
	fprintf(f, "<person recstatus=\"3\">%s<sourcedid><id>P4</id>"
	    "</sourcedid></person>%s", slow ? "<!---->" : "", nl);
	fprintf(f, "%s<sourcedid><id>P5</id></sourcedid><institutionrole "
	    "institutionroletype=\"Wizard\"/></person>%s", po, nl);
	fprintf(f, "%s<sourcedid><id></id></sourcedid></person>%s", po, nl);
	for (i = 0; i < 2; i++)
		fprintf(f, "%s<sourcedid><id>P7</id></sourcedid></person>%s",
		    po, nl);
	fprintf(f, "%s<sourcedid><id>P8</id></sourcedid><name><fn>"
	    "Ren&#233;e Roe</fn></name></person>%s", po, nl);
	fprintf(f, "%s<sourcedid><id>P10</id></sourcedid><name><fn>"
	    "Anna Maria%sSvensson</fn></name><email>a@x</email>"
	    "<systemrole systemroletype=\"Other\"/></person>%s", po, nl,
	    nl);
	for (i = 1; i <= 2; i++)
		fprintf(f, "<group><sourcedid><source>s</source><id>G%d</id>"
		    "</sourcedid><description><short>g</short>"
		    "</description></group>%s", i, nl);
	fprintf(f, "  %s%s    <sourcedid>%s      <source>s</source>%s"
	    "      <id>G1</id>%s    </sourcedid>%s", mo, nl, nl, nl, nl, nl);
	fprintf(f, "    <member>%s      <sourcedid><source>s</source>"
	    "<id> P1 </id></sourcedid>%s      <idtype>1</idtype>%s"
	    "      <role roletype=\"01\"><status>1</status></role>%s"
	    "      <role><status> 0 </status></role>%s"
	    "      <role recstatus=\"3\" roletype=\"02\"><status>1</status>"
	    "</role>%s      <role roletype=\"Instructor\" recstatus=\"2\">"
	    "<status>1</status></role>%s    </member>%s",
	    nl, nl, nl, nl, nl, nl, nl, nl);
	fprintf(f, "    <member><sourcedid><id>G2</id></sourcedid>"
	    "<idtype>2</idtype><role><status>1</status></role>"
	    "</member>%s", nl);
	fprintf(f, "    <member><sourcedid><id>P9</id></sourcedid>"
	    "<idtype>1</idtype><role><status>1</status></role>"
	    "</member>%s", nl);
	fprintf(f, "    <member><sourcedid><id>P2</id></sourcedid>"
	    "<idtype>1</idtype>%s<role roletype=\"99\"><status>1</status>"
	    "</role>%s<role roletype=\"03\"><status>x</status></role>%s"
	    "<role roletype=\"05\"><status>1</status></role>%s"
	    "</member>%s  </membership>%s", nl, nl, nl, nl, nl, nl);
	fprintf(f, "  <!-- between -->%s", nl);
	fprintf(f, "  %s<sourcedid><id>G9</id></sourcedid>%s<member>"
	    "<sourcedid><id>P1</id></sourcedid><idtype>1</idtype>"
	    "<role><status>1</status></role></member></membership>%s",
	    mo, nl, nl);
	fprintf(f, "  %s<sourcedid><id></id></sourcedid>%s<member>"
	    "<sourcedid><id>P1</id></sourcedid><idtype>1</idtype>"
	    "<role><status>1</status></role></member></membership>%s",
	    mo, nl, nl);
	fprintf(f, "  %s<sourcedid><id>G2</id></sourcedid>%s<member>"
	    "<sourcedid><id>P&#51;</id></sourcedid><idtype>1</idtype>"
	    "<role><status>1</status></role></member></membership>%s",
	    mo, nl, nl);
	fprintf(f, "  %s<sourcedid><source>s</source><id>G2</id>"
	    "</sourcedid>%s", mo, nl);
	for (i = 0; i < 6000; i++)
		fprintf(f, "    <member>%s      <sourcedid>%s        <source>"
		    "bench.example.org</source>%s        <id>%s%d</id>%s"
		    "      </sourcedid>%s      <idtype>1</idtype>%s"
		    "      <role roletype=\"0%d\">%s        <status>%d</status>"
		    "%s      </role>%s    </member>%s", nl, nl, nl,
		    i % 997 == 0 ? "PX" : "P", i % 997 == 0 ? i : 1 + i % 3,
		    nl, nl, nl, 1 + i % 8, nl, i % 2, nl, nl, nl);
	fprintf(f, "  </membership>%s", nl);
	fprintf(f, "  %s<sourcedid><id>G1</id></sourcedid>%s<member>"
	    "<sourcedid><id>PY</id></sourcedid><idtype>1</idtype>"
	    "<role><status>1</status></role></member></membership>%s",
	    mo, nl, nl);
	/* role timeframes: both dates, an end only, a bad date, an end
	 * before the begin */
	fprintf(f, "  %s<sourcedid><id>G1</id></sourcedid>%s<member>"
	    "<sourcedid><id>P3</id></sourcedid><idtype>1</idtype>%s"
	    "<role roletype=\"04\"><status>1</status>%s<timeframe>%s"
	    "<begin restrict=\"1\"> 2024-08-15 </begin>%s"
	    "<end restrict=\"1\">2025-06-10</end>%s</timeframe></role>%s"
	    "<role roletype=\"06\"><status>0</status><timeframe>"
	    "<end restrict=\"1\">2025-06-10</end></timeframe></role>%s"
	    "<role roletype=\"07\"><status>1</status><timeframe>%s"
	    "<begin restrict=\"1\">2024-02-30</begin></timeframe></role>%s"
	    "<role roletype=\"03\"><status>1</status><timeframe>"
	    "<begin restrict=\"1\">2025-01-06</begin>%s"
	    "<end restrict=\"1\">2024-12-20</end></timeframe></role>%s"
	    "</member></membership>%s", mo, nl, nl, nl, nl, nl, nl, nl, nl,
	    nl, nl, nl, nl, nl);
	fprintf(f, "</enterprise>%s", nl);
	ck_assert_int_eq(fclose(f), 0);
	return s;
}

/* Read file into r, its rejects text into *rejtext.  ims_read's. */
static int
read_with_rejects(const char *file, struct roster *r, char **rejtext)
{
	struct rejects rj;
	size_t len;
	int rc;

	memset(&rj, 0, sizeof(rj));
	ck_assert_ptr_nonnull(rj.fp = open_memstream(rejtext, &len));
	roster_init(r);
	rc = ims_read(file, r, &rj);
	ck_assert_int_eq(fclose(rj.fp), 0);
	return rc;
}

/*
 * The fast path reads what libxml2 reads: the same roster, the same rejects on the same lines, with LF and CRLF line
 * ends, and the same error for a file cut inside a block.
 */
START_TEST(test_read_fast_path_same)
{
	static const char *const nls[] = { "\n", "\r\n" };
	char dir[256], *doc[2], *rej[2], *cut;
	const char *f[2];
	struct roster r[2];
	struct rejects rjcut;
	size_t len[2], n, k;
	gzFile gz;
	int slow;

	memset(&rjcut, 0, sizeof(rjcut));	/* rejects counted only */
	tu_mkdtemp(dir, sizeof(dir));
	for (n = 0; n < 2; n++) {
		for (slow = 0; slow < 2; slow++) {
			doc[slow] = fast_doc(nls[n], slow, &len[slow]);
			ck_assert_uint_gt(len[slow], 3 * 256 * 1024);
			f[slow] = tu_write(dir, slow ? "slow.xml" : "fast.xml",
			    doc[slow]);
			ck_assert_msg(read_with_rejects(f[slow], &r[slow],
			    &rej[slow]) == 0, "%s", error_last());
		}
		ck_assert_uint_eq(r[0].npersons, r[1].npersons);
		ck_assert_uint_eq(r[0].npersons, 5);
		for (k = 0; k < r[0].npersons; k++)
			ck_assert_msg(strcmp(r[0].persons[k].id,
			    r[1].persons[k].id) == 0 && !person_differs(
			    &r[0].persons[k], &r[1].persons[k]), "person %s",
			    r[0].persons[k].id);
		k = (size_t)roster_find_person(&r[0], "P2");
		ck_assert_str_eq(r[0].persons[k].family,
		    "O'Brien & <Co> \"q\"");
		ck_assert_str_eq(r[0].persons[k].userid, "p2");
		ck_assert_str_eq(r[0].persons[k].email, "p2@example.org");
		ck_assert_str_eq(r[0].persons[k].role, "Student");
		ck_assert_uint_eq(r[0].nmembers, r[1].nmembers);
		ck_assert_uint_ge(r[0].nmembers, 8);
		ck_assert(memcmp(r[0].members, r[1].members,
		    r[0].nmembers * sizeof(*r[0].members)) == 0);
		/* the same lines, named by each file's own name */
		ck_assert_ptr_nonnull(strstr(rej[0], "fast.xml:"));
		for (k = 0; rej[0][k] != '\0'; k++)
			if (strncmp(rej[0] + k, "fast", 4) == 0)
				memcpy(rej[0] + k, "slow", 4);
		ck_assert_str_eq(rej[0], rej[1]);
		free(rej[0]);
		/* Gzip: read through zlib, not mapped; the same. */
		f[0] = tu_path(dir, "gzip.xml");
		ck_assert_ptr_nonnull(gz = gzopen(f[0], "wb"));
		ck_assert_int_eq(gzwrite(gz, doc[0], (unsigned)len[0]),
		    (int)len[0]);
		ck_assert_int_eq(gzclose(gz), Z_OK);
		roster_free(&r[0]);
		ck_assert_msg(read_with_rejects(f[0], &r[0], &rej[0]) == 0,
		    "%s", error_last());
		ck_assert_uint_eq(r[0].nmembers, r[1].nmembers);
		ck_assert(memcmp(r[0].members, r[1].members,
		    r[0].nmembers * sizeof(*r[0].members)) == 0);
		for (k = 0; rej[0][k] != '\0'; k++)
			if (strncmp(rej[0] + k, "gzip", 4) == 0)
				memcpy(rej[0] + k, "slow", 4);
		ck_assert_str_eq(rej[0], rej[1]);
		ck_assert_ptr_nonnull(strstr(rej[1], "slow.xml:46: sourcedid: "
		    "member of 'G1': person 'P9' unknown"));
		ck_assert_ptr_nonnull(strstr(rej[1], "slow.xml:59887: "
		    "sourcedid: member of 'G2': person 'PX5982' unknown"));
		ck_assert_ptr_nonnull(strstr(rej[1], "slow.xml:60063: "
		    "sourcedid: member of 'G1': person 'PY' unknown"));
		ck_assert_ptr_nonnull(strstr(rej[1], "slow.xml:60073: begin: "
		    "member 'P3' of 'G1': not a date"));
		ck_assert_ptr_nonnull(strstr(rej[1], "slow.xml:60075: end: "
		    "member 'P3' of 'G1': end '2024-12-20' before begin"));
		ck_assert_ptr_nonnull(member_of(&r[0], "G1", "P3", 4));
		ck_assert_uint_eq(member_of(&r[0], "G1", "P3", 4)->begin,
		    day_parse("2024-08-15", 10));
		ck_assert_uint_eq(member_of(&r[0], "G1", "P3", 6)->end,
		    day_parse("2025-06-10", 10));
		for (slow = 0; slow < 2; slow++) {
			free(rej[slow]);
			roster_free(&r[slow]);
			/* Strict: the first reject is the error. */
			f[slow] = tu_write(dir, "strict.xml", doc[slow]);
			roster_init(&r[slow]);
			ck_assert_int_eq(ims_read(f[slow], &r[slow], NULL), -1);
			ck_assert_msg(strstr(error_last(), "strict.xml:23: "
			    "institutionroletype: person 'P5'") != NULL, "%s",
			    error_last());
			roster_free(&r[slow]);
			/* Cut inside the big block: the same error. */
			ck_assert_ptr_nonnull(cut = strstr(doc[slow],
			    "PX2991"));
			cut[3] = '\0';
			f[slow] = tu_write(dir, "cut.xml", doc[slow]);
			roster_init(&r[slow]);
			ck_assert_int_eq(ims_read(f[slow], &r[slow], &rjcut), -1);
			rej[slow] = strdup(error_last());
			roster_free(&r[slow]);
			free(doc[slow]);
		}
		ck_assert_ptr_nonnull(strstr(rej[0], "cut.xml:"));
		ck_assert_str_eq(rej[0], rej[1]);
		free(rej[0]);
		free(rej[1]);
	}
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_read_order_fault)
{
	char dir[256];
	const char *f;
	struct roster r;

	tu_mkdtemp(dir, sizeof(dir));
	f = tu_write(dir, "order.xml",
	    "<enterprise><properties><datasource>x</datasource>"
	    "<datetime>2024-09-01</datetime></properties>\n"
	    "<membership><sourcedid><source>s</source><id>G</id>"
	    "</sourcedid></membership>\n"
	    "<person><sourcedid><source>s</source><id>P</id></sourcedid>"
	    "<name><fn>x</fn></name></person>\n"
	    "</enterprise>\n");
	roster_init(&r);
	ck_assert_int_eq(ims_read(f, &r, NULL), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "order.xml:3:"));
	ck_assert_ptr_nonnull(strstr(error_last(), "after <membership>"));
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_read_duplicates_strict)
{
	char dir[256];
	const char *f;
	struct roster r;
	struct rejects rj = { 0 };

	tu_mkdtemp(dir, sizeof(dir));
	f = tu_write(dir, "dup.xml",
	    "<enterprise><properties><datasource>x</datasource>"
	    "<datetime>2024-09-01</datetime></properties>\n"
	    "<person><sourcedid><source>s</source><id>P</id></sourcedid>"
	    "<name><fn>x</fn></name></person>\n"
	    "<person><sourcedid><source>s</source><id>P</id></sourcedid>"
	    "<name><fn>y</fn></name></person>\n"
	    "</enterprise>\n");
	roster_init(&r);
	ck_assert_int_eq(ims_read(f, &r, NULL), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "dup.xml"));
	roster_free(&r);
	roster_init(&r);
	ck_assert_int_eq(ims_read(f, &r, &rj), 0);
	ck_assert_uint_eq(rj.count, 2);
	ck_assert_uint_eq(r.npersons, 0);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Deltas.                                                             */

START_TEST(test_delta)
{
	char dir[256];
	const char *f;
	struct roster or, nr;
	struct changeset cs;
	char *s, *p;

	tu_mkdtemp(dir, sizeof(dir));
	/* Old: three persons, three groups, memberships. */
	build(&or);
	/* New: 1003 gone, 1002 active again, 1004 new; A-sub gone, C2 new
	 * under C1, C1 renamed; memberships change accordingly. */
	roster_init(&nr);
	nr.datetime = WHEN + 86400;
	add_person(&nr, "1001", "ola", "Ola", "Nordmann", "ola@example.org",
	    "Student", 1);
	add_person(&nr, "1002", "kari", "Kari", "\xc3\x85s & <Co> \"q\" 'a'",
	    "", "Faculty", 1);
	add_person(&nr, "1004", "per", "Per", "Hansen", "", "Student", 1);
	add_group(&nr, "SCHOOL", "school", "Example School", "", "", "");
	add_group(&nr, "C1", "class", "1A (renamed)", "Class 1A", "SCHOOL",
	    "2024/25");
	add_group(&nr, "C2", "class", "1B", "", "C1", "");
	seal_entities(&nr);
	add_member(&nr, "C1", "1001", 1, 1);
	add_member(&nr, "C1", "1002", 2, 1);
	add_member(&nr, "C1", "1002", 8, 1);	/* status 0 -> 1 */
	add_member(&nr, "C2", "1004", 1, 1);
	seal_members(&nr);

	ck_assert_int_eq(diff_compute(&or, &nr, &cs), 0);
	f = tu_path(dir, "delta.xml");
	ck_assert_msg(ims_write_delta(f, &nr, &or, &cs, &opts_plain) == 0,
	    "%s", error_last());
	assert_dtd_valid(f);
	s = slurp(f, NULL);
	ck_assert_ptr_nonnull(strstr(s, "<type>delta</type>"));
	ck_assert_ptr_nonnull(strstr(s,
	    "<datetime>2024-09-02T02:00:00</datetime>"));
	/* Persons: update (reactivated), delete with the old record, add. */
	ck_assert_ptr_nonnull(strstr(s, "  <person recstatus=\"2\">\n"
	    "    <sourcedid>\n      <source>sis.example.org</source>\n"
	    "      <id>1002</id>\n"));
	ck_assert_ptr_nonnull(strstr(s, "  <person recstatus=\"3\">\n"
	    "    <sourcedid>\n      <source>sis.example.org</source>\n"
	    "      <id>1003</id>\n"));
	ck_assert_ptr_nonnull(strstr(s, "  <person recstatus=\"1\">\n"
	    "    <sourcedid>\n      <source>sis.example.org</source>\n"
	    "      <id>1004</id>\n    </sourcedid>\n"
	    "    <userid>per</userid>\n"));
	ck_assert_ptr_null(strstr(s, "<id>1001</id>\n    </sourcedid>\n"
	    "    <userid>"));
	ck_assert_ptr_null(strstr(s, "systemrole"));
	/* Groups: C1 update before its new child C2, then A-sub delete. */
	p = strstr(s, "  <group recstatus=\"2\">\n    <sourcedid>\n"
	    "      <source>sis.example.org</source>\n      <id>C1</id>\n");
	ck_assert_ptr_nonnull(p);
	p = strstr(p, "  <group recstatus=\"1\">\n    <sourcedid>\n"
	    "      <source>sis.example.org</source>\n      <id>C2</id>\n");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(strstr(p, "<typevalue level=\"2\">class"));
	p = strstr(p, "  <group recstatus=\"3\">\n    <sourcedid>\n"
	    "      <source>sis.example.org</source>\n      <id>A-sub</id>\n");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_null(strstr(s, "<id>SCHOOL</id>\n    </sourcedid>\n"
	    "    <grouptype>"));
	/* Memberships: deletes carry status 0, roletype first. */
	ck_assert_ptr_nonnull(strstr(s, "<id>1001</id>\n      </sourcedid>\n"
	    "      <idtype>1</idtype>\n"
	    "      <role roletype=\"01\" recstatus=\"3\">\n"
	    "        <status>0</status>\n"));
	ck_assert_ptr_nonnull(strstr(s, "<id>1002</id>\n      </sourcedid>\n"
	    "      <idtype>1</idtype>\n"
	    "      <role roletype=\"08\" recstatus=\"2\">\n"
	    "        <status>1</status>\n"));
	ck_assert_ptr_nonnull(strstr(s, "<id>1004</id>\n      </sourcedid>\n"
	    "      <idtype>1</idtype>\n"
	    "      <role roletype=\"01\" recstatus=\"1\">\n"
	    "        <status>1</status>\n"));
	ck_assert_ptr_nonnull(strstr(s, "<id>1003</id>\n      </sourcedid>\n"
	    "      <idtype>1</idtype>\n"
	    "      <role roletype=\"07\" recstatus=\"3\">\n"
	    "        <status>0</status>\n"));
	/* The unchanged membership is not there. */
	ck_assert_ptr_null(strstr(s, "<id>1001</id>\n      </sourcedid>\n"
	    "      <idtype>1</idtype>\n      <role roletype=\"01\">"));
	free(s);

	/* gzip too. */
	f = tu_path(dir, "delta.xml.gz");
	ck_assert_int_eq(ims_write_delta(f, &nr, &or, &cs, &opts_gzip), 0);
	assert_dtd_valid(f);

	changeset_free(&cs);
	roster_free(&nr);
	roster_free(&or);
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_delta_person_delete_userid)
{
	char dir[256];
	const char *f;
	struct roster or, nr;
	struct changeset cs;
	char *s;

	tu_mkdtemp(dir, sizeof(dir));
	roster_init(&or);
	add_person(&or, "9", "gone.user", "G", "U", "", "", 1);
	seal_entities(&or);
	seal_members(&or);
	roster_init(&nr);
	seal_entities(&nr);
	seal_members(&nr);
	ck_assert_int_eq(diff_compute(&or, &nr, &cs), 0);
	f = tu_path(dir, "d.xml");
	ck_assert_int_eq(ims_write_delta(f, &nr, &or, &cs, &opts_plain), 0);
	assert_dtd_valid(f);
	s = slurp(f, NULL);
	ck_assert_ptr_nonnull(strstr(s, "  <person recstatus=\"3\">\n"));
	ck_assert_ptr_nonnull(strstr(s, "    <userid>gone.user</userid>\n"));
	ck_assert_ptr_null(strstr(s, "<group"));
	ck_assert_ptr_null(strstr(s, "<membership"));
	free(s);
	changeset_free(&cs);
	roster_free(&nr);
	roster_free(&or);
	tu_rmtree(dir);
}
END_TEST

START_TEST(test_delta_empty)
{
	char dir[256];
	const char *f;
	struct roster r;
	struct changeset cs;

	tu_mkdtemp(dir, sizeof(dir));
	build(&r);
	memset(&cs, 0, sizeof(cs));
	f = tu_path(dir, "empty.xml");
	ck_assert_int_eq(ims_write_delta(f, &r, &r, &cs, &opts_plain), 0);
	assert_dtd_valid(f);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Parallel gzip.                                                      */

#define GZ_CHUNK	(1024 * 1024)	/* the writer's chunk of XML */

/*
 * A roster of about 11 MiB of XML (over 8 chunks): npersons persons
 * with varied names, a school and nclasses classes of per persons each.
 * The last person's e-mail is pad characters long (0: none).
 */
static void
build_big(struct roster *r, size_t npersons, size_t nclasses, size_t per,
    size_t pad)
{
	static const char *const given[] = { "Ola", "Kari", "\xc3\x85sa",
		"Zo\xc3\xab", "Jos\xc3\xa9", "\xe6\x98\x8e", "Nguy\xe1\xbb\x85n",
		"Per", "Ingrid", "Ali" };
	static const char *const family[] = { "Nordmann", "Hansen",
		"Garc\xc3\xad" "a, Jr.", "O'Brien & Sons", "<Test>", "Berg",
		"\xe7\x94\xb0\xe4\xb8\xad", "Smith", "Olsen", "Dahl" };
	char id[32], uid[32], mail[64], sh[64], lg[96], *padmail = NULL;
	size_t i, j;

	roster_init(r);
	r->datetime = WHEN;
	if (pad > 0) {
		padmail = malloc(pad + 1);
		ck_assert_ptr_nonnull(padmail);
		memset(padmail, 'x', pad);
		padmail[pad] = '\0';
	}
	for (i = 0; i < npersons; i++) {
		snprintf(id, sizeof(id), "P%07zu", (i * 7919) % 10000000);
		snprintf(uid, sizeof(uid), "u%zu", i);
		snprintf(mail, sizeof(mail), "u%zu@example.org", i);
		add_person(r, id, uid, given[i % 10], family[(i / 10) % 10],
		    i + 1 == npersons && padmail != NULL ? padmail : mail,
		    i % 25 == 0 ? "Faculty" : "Student", i % 97 != 0);
	}
	add_group(r, "SCH", "school", "Big School", "", "", "");
	for (i = 0; i < nclasses; i++) {
		snprintf(id, sizeof(id), "CL%05zu", (i * 31) % 100000);
		snprintf(sh, sizeof(sh), "Class %zu", i);
		snprintf(lg, sizeof(lg), "Class %zu & friends <%zu>", i, i % 7);
		add_group(r, id, "class", sh, lg, "SCH", "2026/27");
	}
	seal_entities(r);
	for (i = 0; i < nclasses; i++) {
		snprintf(sh, sizeof(sh), "CL%05zu", (i * 31) % 100000);
		for (j = 0; j < per; j++) {
			snprintf(id, sizeof(id), "P%07zu",
			    (((i * per + j * 13) % npersons) * 7919) %
			    10000000);
			add_member(r, sh, id, j == 0 ? 2 : 1, j % 50 != 1);
		}
	}
	seal_members(r);
	free(padmail);
}

/*
 * Inflate the gzip file at path with zlib, checking that it is exactly
 * one gzip member with nothing after it.  malloc'd; length in *len.
 */
static unsigned char *
gunzip_one_member(const char *path, size_t *len)
{
	z_stream z;
	unsigned char *in, *out;
	size_t inlen, cap = 1 << 20;
	int rc;

	in = (unsigned char *)slurp(path, &inlen);
	out = malloc(cap);
	ck_assert_ptr_nonnull(out);
	memset(&z, 0, sizeof(z));
	ck_assert_int_eq(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = in;
	z.avail_in = (uInt)inlen;
	*len = 0;
	do {
		if (cap - *len < 65536) {
			cap *= 2;
			out = realloc(out, cap);
			ck_assert_ptr_nonnull(out);
		}
		z.next_out = out + *len;
		z.avail_out = (uInt)(cap - *len);
		rc = inflate(&z, Z_NO_FLUSH);
		ck_assert_msg(rc == Z_OK || rc == Z_STREAM_END,
		    "%s: inflate %d", path, rc);
		*len = cap - z.avail_out;
	} while (rc != Z_STREAM_END);
	/* One member: the trailer ends the file. */
	ck_assert_uint_eq(z.avail_in, 0);
	inflateEnd(&z);
	free(in);
	return out;
}

/* /bin/gzip -t must accept the file. */
static void
assert_gzip_t(const char *file)
{
	const char *gzip = tu_exists("/bin/gzip") ? "/bin/gzip" :
	    find_prog("gzip");
	char *argv[4], *out = NULL;
	int rc;

	ck_assert_msg(gzip != NULL, "gzip not found");
	argv[0] = (char *)gzip;
	argv[1] = "-t";
	argv[2] = (char *)file;
	argv[3] = NULL;
	rc = tu_run(argv, &out, 60);
	ck_assert_msg(rc == 0, "gzip -t %s: exit %d: %s", file, rc, out);
	free(out);
}

/* Write r as gzip with each thread count; all the same bytes, the XML
 * of the plain file.  Returns the gzip file (threads 1). */
static const char *
assert_threads_identical(const char *dir, const struct roster *r,
    size_t minlen)
{
	static const int threads[] = { 1, 0, 2, 3, 8 };
	struct ims_options o = opts_gzip;
	const char *plain = tu_path(dir, "plain.xml");
	char name[32], *x, *ref = NULL, *g;
	unsigned char *u;
	size_t xl, refl = 0, gl, ul, i;

	ck_assert_int_eq(ims_write_full(plain, r, &opts_plain), 0);
	x = slurp(plain, &xl);
	ck_assert_uint_ge(xl, minlen);
	for (i = 0; i < sizeof(threads) / sizeof(threads[0]); i++) {
		snprintf(name, sizeof(name), "t%d.xml.gz", threads[i]);
		o.threads = threads[i];
		o.target = opts_plain.target;
		ck_assert_msg(ims_write_full(tu_path(dir, name), r, &o) == 0,
		    "threads %d: %s", threads[i], error_last());
		g = slurp(tu_path(dir, name), &gl);
		if (ref == NULL) {
			ref = g;
			refl = gl;
			continue;
		}
		ck_assert_msg(gl == refl && memcmp(g, ref, gl) == 0,
		    "threads %d differs from threads 1", threads[i]);
		free(g);
	}
	free(ref);
	assert_gzip_t(tu_path(dir, "t1.xml.gz"));
	u = gunzip_one_member(tu_path(dir, "t1.xml.gz"), &ul);
	ck_assert_uint_eq(ul, xl);
	ck_assert(memcmp(u, x, xl) == 0);
	free(u);
	free(x);
	return tu_path(dir, "t1.xml.gz");
}

/* The file gz reads back as r's persons, groups and memberships, and
 * is valid against the DTD. */
static void
assert_reads_back(const char *gz, const struct roster *r)
{
	struct roster back;

	roster_init(&back);
	ck_assert_msg(ims_read(gz, &back, NULL) == 0, "%s", error_last());
	ck_assert_uint_eq(back.npersons, r->npersons);
	ck_assert_uint_eq(back.ngroups, r->ngroups);
	ck_assert_uint_eq(back.nmembers, r->nmembers);
	ck_assert(memcmp(back.members, r->members,
	    r->nmembers * sizeof(*r->members)) == 0);
	roster_free(&back);
	assert_dtd_valid(gz);
}

START_TEST(test_gzip_threads_identical)
{
	char dir[256];
	const char *gz;
	struct roster r;

	tu_mkdtemp(dir, sizeof(dir));
	build_big(&r, 4000, 400, 100, 0);
	ck_assert_uint_eq(r.nmembers, 40000);
	gz = assert_threads_identical(dir, &r, 8 * GZ_CHUNK + 1);
	assert_reads_back(gz, &r);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

/* The XML ends exactly on a chunk boundary, one byte before, one
 * after: the same bytes for any thread count, and valid gzip. */
START_TEST(test_gzip_chunk_boundary)
{
	static const long delta[] = { 0, -1, 1 };
	char dir[256];
	struct roster r;
	struct stat st;
	size_t i;
	off_t base, target;

	tu_mkdtemp(dir, sizeof(dir));
	/* The plain size with a 1-byte pad; the pad adds bytes 1:1. */
	build_big(&r, 800, 80, 50, 1);
	ck_assert_int_eq(ims_write_full(tu_path(dir, "m.xml"), &r,
	    &opts_plain), 0);
	ck_assert_int_eq(stat(tu_path(dir, "m.xml"), &st), 0);
	base = st.st_size - 1;
	roster_free(&r);
	ck_assert_int_lt(base, 2 * GZ_CHUNK - 2);
	for (i = 0; i < sizeof(delta) / sizeof(delta[0]); i++) {
		target = 2 * GZ_CHUNK + delta[i];
		build_big(&r, 800, 80, 50, (size_t)(target - base));
		assert_threads_identical(dir, &r, (size_t)target);
		ck_assert_int_eq(stat(tu_path(dir, "plain.xml"), &st), 0);
		ck_assert_int_eq(st.st_size, target);
		roster_free(&r);
	}
	tu_rmtree(dir);
}
END_TEST

#define MRUN	4096	/* the writer's members a gzip chunk */

/*
 * The members of a gzip file are cut into runs of MRUN, each rendered
 * by the thread that compresses it: a group spanning three runs, runs
 * ending right at a group's end, members with timeframes (written in
 * full, not from the frames) at the cuts, and a member count that is a
 * whole number of runs: the XML is the plain file's, and the bytes are
 * the same for any thread count.
 */
START_TEST(test_gzip_member_runs)
{
	static const size_t cuts[] = { MRUN - 1, MRUN, MRUN + 1,
		2 * MRUN - 1, 2 * MRUN };
	char dir[256];
	struct roster r;
	const char *gz;
	size_t i;

	tu_mkdtemp(dir, sizeof(dir));
	/* one class of 2 runs + 4 members, the second a whole run (the
	 * 4096 members from 2 * MRUN + 4 on), then one of 4 */
	build_big(&r, 10000, 1, 2 * MRUN + 4, 0);
	ck_assert_uint_eq(r.nmembers, 2 * MRUN + 4);
	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		r.members[cuts[i]].begin = (uint16_t)(20000 + i);
		r.members[cuts[i]].end = (uint16_t)(20100 + i);
	}
	gz = assert_threads_identical(dir, &r, 2 * GZ_CHUNK);
	assert_reads_back(gz, &r);
	roster_free(&r);
	/* 3 runs exactly, in groups that end at the cuts */
	build_big(&r, 10000, 3 * MRUN / 64, 64, 0);
	ck_assert_uint_eq(r.nmembers, 3 * MRUN);
	assert_threads_identical(dir, &r, 2 * GZ_CHUNK);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

/* ims_write_full of r to gz fails with a message holding want, for
 * every thread count, and leaves no file. */
static void
expect_gzip_fails(const struct roster *r, const char *gz, const char *want)
{
	static const int threads[] = { 1, 2, 3 };
	struct ims_options o = opts_gzip;
	size_t i;

	for (i = 0; i < sizeof(threads) / sizeof(threads[0]); i++) {
		o.threads = threads[i];
		ck_assert_int_eq(ims_write_full(gz, r, &o), -1);
		ck_assert_msg(strstr(error_last(), gz) != NULL &&
		    strstr(error_last(), want) != NULL,
		    "threads %d: %s", threads[i], error_last());
		ck_assert_int_eq(access(gz, F_OK), -1);
	}
}

/*
 * A record that cannot be written (a member's role out of range, a
 * person's invalid UTF-8) in a run that a compressing thread renders
 * fails the write with the record's error, names the file and removes
 * it, as one thread does.
 */
START_TEST(test_gzip_run_fails)
{
	char dir[256], want[64];
	struct roster r;
	const char *gz;
	uint8_t role;

	tu_mkdtemp(dir, sizeof(dir));
	build_big(&r, 8000, 400, 100, 0);
	gz = tu_path(dir, "bad.xml.gz");
	role = r.members[2 * MRUN + 7].role;
	r.members[2 * MRUN + 7].role = 9;
	expect_gzip_fails(&r, gz, "roletype 9 out of range");
	r.members[2 * MRUN + 7].role = role;
	r.persons[5000].given = "Bad\xc3(";
	snprintf(want, sizeof(want), "person '%s': given: invalid UTF-8",
	    r.persons[5000].id);
	expect_gzip_fails(&r, gz, want);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

/*
 * A write that fails half way (the file size limit: EFBIG) fails the
 * call, names the file, removes it and joins the threads.  In a child,
 * so that the limit stays there.
 */
START_TEST(test_gzip_write_fails)
{
	char dir[256];
	const char *gz;
	struct roster r;
	struct ims_options o = opts_gzip;
	struct rlimit rl;
	struct stat st;
	pid_t pid;
	int status;

	tu_mkdtemp(dir, sizeof(dir));
	build_big(&r, 4000, 400, 100, 0);
	gz = tu_path(dir, "big.xml.gz");
	o.threads = 3;
	ck_assert_int_eq(ims_write_full(gz, &r, &o), 0);
	ck_assert_int_eq(stat(gz, &st), 0);
	ck_assert_int_gt(st.st_size, 128 * 1024);
	ck_assert_int_eq(unlink(gz), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		signal(SIGXFSZ, SIG_IGN);
		rl.rlim_cur = rl.rlim_max = 64 * 1024;
		if (setrlimit(RLIMIT_FSIZE, &rl) == -1)
			_exit(10);
		if (ims_write_full(gz, &r, &o) != -1)
			_exit(11);
		if (strstr(error_last(), gz) == NULL ||
		    strstr(error_last(), "write") == NULL)
			_exit(12);
		if (access(gz, F_OK) == 0 || errno != ENOENT)
			_exit(13);
		roster_free(&r);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child status %d", status);
	roster_free(&r);
	tu_rmtree(dir);
}
END_TEST

static Suite *
ims_suite(void)
{
	Suite *s = suite_create("ims");
	TCase *w = tcase_create("write");
	TCase *r = tcase_create("read");
	TCase *d = tcase_create("delta");
	TCase *z = tcase_create("gzip");

	tcase_set_timeout(w, 120);
	tcase_set_timeout(r, 60);
	tcase_set_timeout(d, 120);
	tcase_set_timeout(z, 120);
	tcase_add_test(w, test_full_dtd_valid);
	tcase_add_test(w, test_full_records);
	tcase_add_test(w, test_escaping);
	tcase_add_test(w, test_source_escaped);
	tcase_add_test(w, test_invalid_utf8_fails);
	tcase_add_test(w, test_open_fails);
	tcase_add_test(w, test_cycle_fails);
	tcase_add_test(w, test_role_first_attribute);
	tcase_add_test(w, test_deterministic);
	tcase_add_test(w, test_gzip);
	tcase_add_test(r, test_round_trip);
	tcase_add_test(r, test_group_timeframe_org);
	tcase_add_test(r, test_read_thirdparty);
	tcase_add_test(r, test_read_second_parent);
	tcase_add_test(r, test_read_encoding_mismatch);
	tcase_add_test(r, test_builtin_dtd_current);
	tcase_add_test(r, test_read_as_consumers_do);
	tcase_add_test(r, test_read_rejects_file);
	tcase_add_test(r, test_read_not_wellformed);
	tcase_add_test(r, test_read_roles_normalised);
	tcase_add_test(r, test_role_timeframe);
	tcase_add_test(r, test_read_nesting_limit);
	tcase_add_test(r, test_read_value_cap);
	tcase_add_test(r, test_read_order_fault);
	tcase_add_test(r, test_read_fast_path_same);
	tcase_add_test(r, test_read_duplicates_strict);
	tcase_add_test(d, test_delta);
	tcase_add_test(d, test_delta_person_delete_userid);
	tcase_add_test(d, test_delta_empty);
	suite_add_tcase(s, w);
	suite_add_tcase(s, r);
	suite_add_tcase(s, d);
	tcase_add_test(z, test_gzip_threads_identical);
	tcase_add_test(z, test_gzip_chunk_boundary);
	tcase_add_test(z, test_gzip_member_runs);
	tcase_add_test(z, test_gzip_run_fails);
	tcase_add_test(z, test_gzip_write_fails);
	suite_add_tcase(s, z);
	return s;
}

int
main(void)
{
	return tu_run_suite(ims_suite()) != 0;
}
