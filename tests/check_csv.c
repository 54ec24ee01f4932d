/*
 * check_csv.c -- the RFC 4180 reader and the generic CSV source.
 */
#include <sys/stat.h>
#include <sys/time.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sisfeed.h"
#include "tests/testutil.h"

#define BUFSZ	(256 * 1024)	/* the reader's chunk size */

static char tdir[4096];

static void
setup(void)
{
	tu_mkdtemp(tdir, sizeof(tdir));
	/* Relative file names keep the expected messages short. */
	ck_assert_int_eq(chdir(tdir), 0);
	unsetenv("SOURCE_DATE_EPOCH");
}

static void
teardown(void)
{
	ck_assert_int_eq(chdir("/"), 0);
	tu_rmtree(tdir);
}

/* Write len bytes to name in the test directory. */
static void
put(const char *name, const char *s, size_t len)
{
	FILE *fp = fopen(name, "wb");

	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(s, 1, len, fp), len);
	ck_assert_int_eq(fclose(fp), 0);
}

/* Write a NUL-terminated string to name. */
static void
puts_file(const char *name, const char *s)
{
	put(name, s, strlen(s));
}

/*
 * Read one record and check it: n fields equal to the strings given
 * (joined by '|' in want), starting at line.
 */
static void
expect_rec(struct csv_reader *cr, const char *want, unsigned long line)
{
	char **f, got[8192];
	size_t *l, i, off = 0;
	int n;

	n = csv_next(cr, &f, &l);
	ck_assert_msg(n > 0, "csv_next returned %d: %s", n, error_last());
	got[0] = '\0';
	for (i = 0; i < (size_t)n; i++) {
		ck_assert_uint_eq(strlen(f[i]), l[i]);
		off += (size_t)snprintf(got + off, sizeof(got) - off, "%s%s",
		    i ? "|" : "", f[i]);
	}
	ck_assert_str_eq(got, want);
	ck_assert_uint_eq(csv_line(cr), line);
}

static void
expect_eof(struct csv_reader *cr)
{
	char **f;
	size_t *l;

	ck_assert_int_eq(csv_next(cr, &f, &l), 0);
	ck_assert_int_eq(csv_next(cr, &f, &l), 0);
}

/* Expect a malformed record with exactly this error message. */
static void
expect_bad(struct csv_reader *cr, const char *msg)
{
	char **f;
	size_t *l;

	ck_assert_int_eq(csv_next(cr, &f, &l), -1);
	ck_assert_str_eq(error_last(), msg);
	ck_assert_int_eq(csv_fatal(cr), 0);
}

static struct csv_reader *
open_str(const char *s, char delim)
{
	struct csv_reader *cr;

	puts_file("t.csv", s);
	cr = csv_open("t.csv", delim);
	ck_assert_msg(cr != NULL, "%s", error_last());
	return cr;
}

/* ------------------------------------------------------------------ */
/* The reader.                                                         */

START_TEST(reader_plain)
{
	struct csv_reader *cr = open_str("a,b,c\n1,2,3\n", 0);

	ck_assert_uint_eq(csv_line(cr), 0);
	expect_rec(cr, "a|b|c", 1);
	expect_rec(cr, "1|2|3", 2);
	expect_eof(cr);
	csv_close(cr);
}
END_TEST

START_TEST(reader_quotes)
{
	struct csv_reader *cr = open_str(
	    "\"a\",\"b c\",d\n"
	    "\"say \"\"hi\"\"\",\"\"\"\",\"\"\n"
	    "\"\"\n", 0);

	expect_rec(cr, "a|b c|d", 1);
	expect_rec(cr, "say \"hi\"|\"|", 2);
	/* A quoted empty field is a record, not a blank line. */
	expect_rec(cr, "", 3);
	expect_eof(cr);
	csv_close(cr);
}
END_TEST

START_TEST(reader_embedded)
{
	struct csv_reader *cr = open_str(
	    "\"x,y\",\"line1\nline2\",z\n"
	    "next,\"a\r\nb\"\n"
	    "last,1\n", 0);
	char **f;
	size_t *l;

	expect_rec(cr, "x,y|line1\nline2|z", 1);
	ck_assert_int_eq(csv_next(cr, &f, &l), 2);
	ck_assert_str_eq(f[1], "a\r\nb");	/* kept byte-exact */
	ck_assert_uint_eq(l[1], 4);
	ck_assert_uint_eq(csv_line(cr), 3);
	expect_rec(cr, "last|1", 5);
	expect_eof(cr);
	csv_close(cr);
}
END_TEST

START_TEST(reader_crlf)
{
	struct csv_reader *cr = open_str("a,b\r\nc,\"d\"\r\n\r\ne,f\r\n",
	    0);

	expect_rec(cr, "a|b", 1);
	expect_rec(cr, "c|d", 2);
	expect_rec(cr, "e|f", 4);
	expect_eof(cr);
	csv_close(cr);
}
END_TEST

START_TEST(reader_bom)
{
	struct csv_reader *cr = open_str("\xef\xbb\xbfid,name\n1,x\n", 0);
	char **f;
	size_t *l;

	ck_assert_int_eq(csv_next(cr, &f, &l), 2);
	ck_assert_str_eq(f[0], "id");
	ck_assert_uint_eq(l[0], 2);
	expect_rec(cr, "1|x", 2);
	expect_eof(cr);
	csv_close(cr);

	/* A BOM alone is an empty file; a BOM later is data. */
	cr = open_str("\xef\xbb\xbf", 0);
	expect_eof(cr);
	csv_close(cr);
	cr = open_str("a\n\xef\xbb\xbf" "b\n", 0);
	expect_rec(cr, "a", 1);
	expect_rec(cr, "\xef\xbb\xbf" "b", 2);
	csv_close(cr);
}
END_TEST

/* Expect the reader to fail for good with exactly this message. */
static void
expect_fatal(struct csv_reader *cr, const char *msg)
{
	char **f;
	size_t *l;

	ck_assert_int_eq(csv_next(cr, &f, &l), -1);
	ck_assert_str_eq(error_last(), msg);
	ck_assert_int_eq(csv_fatal(cr), 1);
}

/* A file that does not end with a line end was cut short: it fails at
 * its end, naming the last record's line. */
START_TEST(reader_no_final_newline)
{
	static const char *const cut[] = {
		"a,b\nc,d", "a,b\nb,", "a,b\n\"q\"\"\"", "a,b\n\"open",
		"a,b\n\"x\",", "a,b\nx\"y",
	};
	struct csv_reader *cr;
	size_t i;

	for (i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		cr = open_str(cut[i], 0);
		expect_rec(cr, "a|b", 1);
		expect_fatal(cr, "t.csv:2: no line end after the last record: "
		    "the file is cut short");
		csv_close(cr);
	}
	cr = open_str("x\r", 0);
	expect_rec(cr, "x", 1);
	expect_eof(cr);
	csv_close(cr);
}
END_TEST

/* After csv_next_header, a short last record means the file was cut
 * at a line end inside a record: it is returned, then the file fails. */
START_TEST(reader_short_last_record)
{
	struct csv_reader *cr = open_str("h1,h2,h3\na,b,c\nd,e\nf,g,h\n"
	    "i,j\n", 0);
	char **f;
	size_t *l;

	ck_assert_int_eq(csv_next_header(cr, &f, &l), 3);
	expect_rec(cr, "a|b|c", 2);
	expect_rec(cr, "d|e", 3);	/* short inside: a reject, no more */
	expect_rec(cr, "f|g|h", 4);
	expect_rec(cr, "i|j", 5);
	expect_fatal(cr, "t.csv:5: the last record has 2 fields, the "
	    "header 3: the file is cut short");
	csv_close(cr);
}
END_TEST

/* A header name with a NUL, invalid UTF-8 or a BOM is an error: "id\0x"
 * would otherwise match the column "id". */
START_TEST(reader_header_faults)
{
	struct csv_reader *cr;
	char **f;
	size_t *l;

	put("t.csv", "a,id\0x\n1,2\n", 12);
	ck_assert_ptr_nonnull(cr = csv_open("t.csv", 0));
	ck_assert_int_eq(csv_next_header(cr, &f, &l), -1);
	ck_assert_str_eq(error_last(), "t.csv:1: header column 2: NUL byte "
	    "in value");
	csv_close(cr);
	cr = open_str("a,\xef\xbb\xbf" "b\n1,2\n", 0);
	ck_assert_int_eq(csv_next_header(cr, &f, &l), -1);
	ck_assert_str_eq(error_last(), "t.csv:1: header column 2: byte order "
	    "mark inside the file");
	csv_close(cr);
	/* At the file's start a BOM is skipped. */
	cr = open_str("\xef\xbb\xbf" "a,b\n1,2\n", 0);
	ck_assert_int_eq(csv_next_header(cr, &f, &l), 2);
	ck_assert_str_eq(f[0], "a");
	csv_close(cr);
}
END_TEST

/* A record over 1 MiB is malformed and skipped; memory stays bounded
 * and reading goes on after it. */
START_TEST(reader_record_cap)
{
	size_t big = 3 * 1024 * 1024, len = 0, i;
	char *s = malloc(big + 2 * 1024 * 1024);

	ck_assert_ptr_nonnull(s);
	len += (size_t)sprintf(s, "a,b\nx,");
	for (i = 0; i < big; i++)
		s[len++] = 'g';
	len += (size_t)sprintf(s + len, "\nc,d\n\"");
	for (i = 0; i < 1024 * 1024; i++)
		s[len++] = (i % 80 == 79) ? '\n' : 'q';
	len += (size_t)sprintf(s + len, "\",e\nf,g\n");
	put("t.csv", s, len);
	free(s);

	struct csv_reader *cr = csv_open("t.csv", 0);

	ck_assert_ptr_nonnull(cr);
	expect_rec(cr, "a|b", 1);
	expect_bad(cr, "t.csv:2: field 1: record longer than 1048576 bytes");
	expect_rec(cr, "c|d", 3);
	expect_bad(cr, "t.csv:4: field 1: record longer than 1048576 bytes");
	expect_rec(cr, "f|g", 5 + 1024 * 1024 / 80);
	expect_eof(cr);
	csv_close(cr);
}
END_TEST

START_TEST(reader_blank_lines)
{
	struct csv_reader *cr = open_str("\n\na\n\r\n\nb\n\n", 0);

	expect_rec(cr, "a", 3);
	expect_rec(cr, "b", 6);
	expect_eof(cr);
	csv_close(cr);

	cr = open_str("", 0);
	expect_eof(cr);
	csv_close(cr);
}
END_TEST

START_TEST(reader_malformed)
{
	struct csv_reader *cr = open_str(
	    "ok,1\n"
	    "a,b\"c,d\n"
	    "x,y\n"
	    "\"ab\"c,d\n"
	    "\"multi\nline\"x,1\n"
	    "z,2\n"
	    "\"open\nnever closed\n", 0);

	expect_rec(cr, "ok|1", 1);
	expect_bad(cr, "t.csv:2: field 2: quote inside unquoted field");
	ck_assert_uint_eq(csv_line(cr), 2);
	expect_rec(cr, "x|y", 3);
	expect_bad(cr, "t.csv:4: field 1: text after closing quote");
	/* The record's first line is named, reading goes on after it. */
	expect_bad(cr, "t.csv:5: field 1: text after closing quote");
	expect_rec(cr, "z|2", 7);
	/* A quote open at the end: the file was cut short. */
	expect_fatal(cr, "t.csv:8: no line end after the last record: the "
	    "file is cut short");
	csv_close(cr);
}
END_TEST

START_TEST(reader_delimiters)
{
	struct csv_reader *cr = open_str("a;\"b;c\";d,e\n", ';');

	expect_rec(cr, "a|b;c|d,e", 1);
	csv_close(cr);
	cr = open_str("a\tb,c\t\"\"\n", '\t');
	expect_rec(cr, "a|b,c|", 1);
	csv_close(cr);
	ck_assert_ptr_null(csv_open("t.csv", '"'));
	ck_assert_ptr_nonnull(strstr(error_last(), "delimiter"));
}
END_TEST

START_TEST(reader_utf8_exact)
{
	const char *s = "Zo\xc3\xab,\xc5\x81ukasz,\xe6\x9d\x8e,\xf0\x9f\x98\x80,"
	    "\xff\xfe\n";
	struct csv_reader *cr = open_str(s, 0);
	char **f;
	size_t *l;

	ck_assert_int_eq(csv_next(cr, &f, &l), 5);
	ck_assert_str_eq(f[0], "Zo\xc3\xab");
	ck_assert_str_eq(f[1], "\xc5\x81ukasz");
	ck_assert_str_eq(f[2], "\xe6\x9d\x8e");
	ck_assert_str_eq(f[3], "\xf0\x9f\x98\x80");
	/* The reader passes bytes through; validation is the caller's. */
	ck_assert_str_eq(f[4], "\xff\xfe");
	csv_close(cr);
}
END_TEST

START_TEST(reader_nul_byte)
{
	struct csv_reader *cr;
	char **f;
	size_t *l;

	put("t.csv", "a\0b,\"c\0\"\n", 9);
	ck_assert_ptr_nonnull(cr = csv_open("t.csv", 0));
	ck_assert_int_eq(csv_next(cr, &f, &l), 2);
	ck_assert_uint_eq(l[0], 3);
	ck_assert_int_eq(memcmp(f[0], "a\0b", 4), 0);
	ck_assert_uint_eq(l[1], 2);
	ck_assert_int_eq(memcmp(f[1], "c\0", 3), 0);
	expect_eof(cr);
	csv_close(cr);
	put("t.csv", "\"a\"\0,b\n", 7);
	ck_assert_ptr_nonnull(cr = csv_open("t.csv", 0));
	expect_bad(cr, "t.csv:1: field 1: text after closing quote");
	csv_close(cr);
}
END_TEST

START_TEST(reader_missing_file)
{
	ck_assert_ptr_null(csv_open("nonexistent.csv", 0));
	ck_assert_ptr_nonnull(strstr(error_last(), "nonexistent.csv"));
	ck_assert_ptr_nonnull(strstr(error_last(), "No such file"));
	ck_assert_ptr_null(csv_open(".", 0));
}
END_TEST

/* Records, CR/LF pairs and "" escapes split across chunk boundaries. */
START_TEST(reader_boundaries)
{
	size_t cap = 4 * BUFSZ, len = 0, i, pad;
	char *s = malloc(cap), *big;
	struct csv_reader *cr;
	char **f;
	size_t *l;

	ck_assert_ptr_nonnull(s);
	/* Record 1: "a" then padding so its CR is the last byte of the
	 * first chunk and its LF the first of the second. */
	pad = BUFSZ - 1 - 2;
	s[len++] = 'a';
	s[len++] = ',';
	memset(s + len, 'p', pad - 2);
	len += pad - 2;
	ck_assert_uint_eq(len, BUFSZ - 3);
	s[len++] = 'q';
	s[len++] = 'r';
	s[len++] = '\r';
	s[len++] = '\n';
	/* Record 2: a "" escape split across the next boundary. */
	s[len++] = '"';
	while (len < 2 * BUFSZ - 1)
		s[len++] = 'x';
	s[len++] = '"';			/* last byte of chunk 2 */
	s[len++] = '"';			/* first byte of chunk 3 */
	s[len++] = 'y';
	s[len++] = '"';
	s[len++] = '\n';
	/* Record 3: a field bigger than a chunk, with newlines. */
	s[len++] = '"';
	big = s + len;
	for (i = 0; i < BUFSZ + 1000; i++)
		s[len++] = (i % 100 == 99) ? '\n' : 'b';
	s[len++] = '"';
	s[len++] = ',';
	s[len++] = 'e';
	s[len++] = '\n';
	put("b.csv", s, len);

	cr = csv_open("b.csv", 0);
	ck_assert_ptr_nonnull(cr);
	ck_assert_int_eq(csv_next(cr, &f, &l), 2);
	ck_assert_str_eq(f[0], "a");
	ck_assert_uint_eq(l[1], pad);
	ck_assert_int_eq(f[1][pad - 1], 'r');
	ck_assert_uint_eq(csv_line(cr), 1);

	ck_assert_int_eq(csv_next(cr, &f, &l), 1);
	ck_assert_uint_eq(csv_line(cr), 2);
	ck_assert_uint_eq(l[0], BUFSZ - 1);
	ck_assert_int_eq(f[0][l[0] - 2], '"');
	ck_assert_int_eq(f[0][l[0] - 1], 'y');

	ck_assert_int_eq(csv_next(cr, &f, &l), 2);
	ck_assert_uint_eq(csv_line(cr), 3);
	ck_assert_uint_eq(l[0], BUFSZ + 1000);
	ck_assert_int_eq(memcmp(f[0], big, l[0]), 0);
	ck_assert_str_eq(f[1], "e");
	expect_eof(cr);
	csv_close(cr);
	free(s);
}
END_TEST

/* Many records: every line number and field survives the chunking. */
START_TEST(reader_many)
{
	FILE *fp = fopen("m.csv", "w");
	struct csv_reader *cr;
	char **f, want[64];
	size_t *l;
	long i, n = 60000;

	ck_assert_ptr_nonnull(fp);
	for (i = 0; i < n; i++)
		fprintf(fp, i % 3 ? "g%ld,p%ld,\"r \"\"%ld\"\"\"\r\n" :
		    "g%ld,p%ld,r%ld\n", i, i * 7, i);
	ck_assert_int_eq(fclose(fp), 0);
	cr = csv_open("m.csv", 0);
	ck_assert_ptr_nonnull(cr);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(csv_next(cr, &f, &l), 3);
		ck_assert_uint_eq(csv_line(cr), (unsigned long)i + 1);
		snprintf(want, sizeof(want), "g%ld", i);
		ck_assert_str_eq(f[0], want);
		snprintf(want, sizeof(want), "p%ld", i * 7);
		ck_assert_str_eq(f[1], want);
		snprintf(want, sizeof(want), i % 3 ? "r \"%ld\"" : "r%ld", i);
		ck_assert_str_eq(f[2], want);
	}
	expect_eof(cr);
	csv_close(cr);
}
END_TEST

/* ------------------------------------------------------------------ */
/* csv_read_roster.                                                    */

static struct config *cfg;
static FILE *rejfp;
static char *rejbuf;
static size_t rejlen;
static struct rejects rj;
static struct roster r;

static void
rsetup(void)
{
	setup();
	ck_assert_ptr_nonnull(cfg = calloc(1, sizeof(*cfg)));
	cfg->source.format = SOURCE_CSV;
	cfg->source.persons = (char *)"persons.csv";
	cfg->source.groups = (char *)"groups.csv";
	cfg->source.memberships = (char *)"memberships.csv";
	cfg->source.pcol[PF_ID] = (char *)"student_id";
	cfg->source.pcol[PF_USERID] = (char *)"username";
	cfg->source.pcol[PF_GIVEN] = (char *)"first_name";
	cfg->source.pcol[PF_FAMILY] = (char *)"last_name";
	cfg->source.pcol[PF_EMAIL] = (char *)"email";
	cfg->source.pcol[PF_STATUS] = (char *)"active";
	cfg->source.pcol[PF_ROLE] = (char *)"kind";
	cfg->source.gcol[GF_ID] = (char *)"group_id";
	cfg->source.gcol[GF_TYPE] = (char *)"type";
	cfg->source.gcol[GF_SHORT] = (char *)"name";
	cfg->source.gcol[GF_LONG] = (char *)"title";
	cfg->source.gcol[GF_PARENT] = (char *)"parent_id";
	cfg->source.gcol[GF_TERM] = (char *)"term";
	cfg->source.mcol[MF_GROUP] = (char *)"group_id";
	cfg->source.mcol[MF_PERSON] = (char *)"person_id";
	cfg->source.mcol[MF_ROLE] = (char *)"role";
	cfg->source.mcol[MF_STATUS] = (char *)"state";
	rejfp = open_memstream(&rejbuf, &rejlen);
	ck_assert_ptr_nonnull(rejfp);
	memset(&rj, 0, sizeof(rj));
	rj.fp = rejfp;
	roster_init(&r);
}

static void
rteardown(void)
{
	roster_free(&r);
	if (rejfp != NULL)
		fclose(rejfp);
	free(rejbuf);
	free(cfg);
	teardown();
}

#define PHDR "student_id,username,first_name,last_name,email,active,kind\n"
#define GHDR "group_id,type,name,title,parent_id,term\n"
#define MHDR "group_id,person_id,role,state\n"

static const char *good_p =
    PHDR
    "s1,ann,Ann,Smith,ann@x.org,1,Student\n"
    "s3,zoe,Zo\xc3\xab,\xc5\x81ukasz,,0,Student\n"
    "s2,bob,Bob,\"O'Brien, Jr.\",bob@x.org,yes,Faculty\n";
static const char *good_g =
    GHDR
    "sch,school,School,The School,,\n"
    "c1,class,Class 1,\"Class \"\"one\"\"\",sch,2024\n";
static const char *good_m =
    MHDR
    "c1,s1,Learner,active\n"
    "c1,s2,02,1\n"
    "sch,s3,Member,inactive\n";

/* Write the three files and read them; returns csv_read_roster's. */
static int
load(const char *p, const char *g, const char *m)
{
	int rc;

	roster_free(&r);	/* each load starts empty */
	if (p != NULL)
		puts_file("persons.csv", p);
	if (g != NULL)
		puts_file("groups.csv", g);
	if (m != NULL)
		puts_file("memberships.csv", m);
	rc = csv_read_roster(cfg, &r, &rj);
	ck_assert_int_eq(fflush(rejfp), 0);
	return rc;
}

/* The rejects text so far. */
static const char *
rejects(void)
{
	ck_assert_int_eq(fflush(rejfp), 0);
	return rejbuf ? rejbuf : "";
}

static void
expect_fail(const char *msg)
{
	ck_assert_str_eq(error_last(), msg);
}

START_TEST(roster_good)
{
	const struct person *p;
	const struct group *g;

	ck_assert_msg(load(good_p, good_g, good_m) == 0, "%s",
	    error_last());
	ck_assert_str_eq(rejects(), "");
	ck_assert_uint_eq(rj.count, 0);
	ck_assert_uint_eq(rj.records, 8);
	ck_assert_uint_eq(r.npersons, 3);
	ck_assert_uint_eq(r.ngroups, 2);
	ck_assert_uint_eq(r.nmembers, 3);

	p = &r.persons[0];
	ck_assert_str_eq(p->id, "s1");
	ck_assert_str_eq(p->userid, "ann");
	ck_assert_str_eq(p->given, "Ann");
	ck_assert_str_eq(p->family, "Smith");
	ck_assert_str_eq(p->email, "ann@x.org");
	ck_assert_str_eq(p->role, "Student");
	ck_assert_int_eq(p->active, 1);
	ck_assert_uint_eq(p->line, 2);
	p = &r.persons[1];
	ck_assert_str_eq(p->id, "s2");
	ck_assert_str_eq(p->family, "O'Brien, Jr.");
	ck_assert_str_eq(p->role, "Faculty");
	ck_assert_uint_eq(p->line, 4);
	p = &r.persons[2];
	ck_assert_str_eq(p->id, "s3");
	ck_assert_str_eq(p->given, "Zo\xc3\xab");
	ck_assert_str_eq(p->family, "\xc5\x81ukasz");
	ck_assert_str_eq(p->email, "");
	ck_assert_int_eq(p->active, 0);

	g = &r.groups[0];
	ck_assert_str_eq(g->id, "c1");
	ck_assert_str_eq(g->type, "class");
	ck_assert_str_eq(g->shortname, "Class 1");
	ck_assert_str_eq(g->longname, "Class \"one\"");
	ck_assert_str_eq(g->parent, "sch");
	ck_assert_str_eq(g->term, "2024");
	ck_assert_uint_eq(g->line, 3);
	g = &r.groups[1];
	ck_assert_str_eq(g->id, "sch");
	ck_assert_str_eq(g->parent, "");
	ck_assert_str_eq(g->term, "");

	/* Sorted by (group, person): c1/s1, c1/s2, sch/s3. */
	ck_assert_str_eq(r.groups[r.members[0].group].id, "c1");
	ck_assert_str_eq(r.persons[r.members[0].person].id, "s1");
	ck_assert_int_eq(r.members[0].role, 1);
	ck_assert_int_eq(r.members[0].active, 1);
	ck_assert_str_eq(r.persons[r.members[1].person].id, "s2");
	ck_assert_int_eq(r.members[1].role, 2);
	ck_assert_str_eq(r.groups[r.members[2].group].id, "sch");
	ck_assert_str_eq(r.persons[r.members[2].person].id, "s3");
	ck_assert_int_eq(r.members[2].role, 4);
	ck_assert_int_eq(r.members[2].active, 0);
}
END_TEST

START_TEST(roster_person_rejects)
{
	ck_assert_msg(load(
	    PHDR
	    "s1,ann,Ann,Smith,a@x,1,Student\n"
	    ",nokey,No,Key,,1,\n"
	    "s2,u,,Family,,1,\n"
	    "s3,u,Given,,,1,\n"
	    "s4,u,G,F,,maybe,\n"
	    "s5,u,G,F,,,\n"
	    "s6,u,G\xff,F,,1,\n"
	    "s7,u,G,F,,1\n"
	    "s8,u,G,F\"x,,1,\n"
	    "s9,u,G,F,,1,Student,extra\n"
	    "s10,\"bad\xc3\",G,F,,1,\n"
	    "s11,u,G,F,,1,\"ok\xe2\x82\xac\"\n"
	    "s12,u,G,F,,1,faculty\n",
	    good_g, MHDR "c1,s1,1,1\n") == 0, "%s", error_last());
	ck_assert_str_eq(rejects(),
	    "persons.csv:3: id: empty key\n"
	    "persons.csv:4: given: missing value\n"
	    "persons.csv:5: family: missing value\n"
	    "persons.csv:6: status: unknown status 'maybe'\n"
	    "persons.csv:7: status: missing value\n"
	    "persons.csv:8: given: invalid UTF-8"
	    " (it looks like ISO-8859-1: export UTF-8"
	    " or set source.encoding)\n"
	    "persons.csv:9: record: 6 fields, header has 7\n"
	    "persons.csv:10: record: quote inside unquoted field (column 4)\n"
	    "persons.csv:11: record: 8 fields, header has 7\n"
	    "persons.csv:12: userid: invalid UTF-8"
	    " (it looks like ISO-8859-1: export UTF-8"
	    " or set source.encoding)\n"
	    "persons.csv:13: role: unknown institution role "
	    "'ok\xe2\x82\xac'\n");
	ck_assert_uint_eq(rj.count, 11);
	ck_assert_uint_eq(rj.records, 13 + 2 + 1);
	ck_assert_uint_eq(r.npersons, 2);
	ck_assert_str_eq(r.persons[0].id, "s1");
	/* the DTD's spelling, whatever the export's case */
	ck_assert_str_eq(r.persons[1].id, "s12");
	ck_assert_str_eq(r.persons[1].role, "Faculty");
}
END_TEST

START_TEST(roster_group_rejects)
{
	ck_assert_msg(load(good_p,
	    GHDR
	    "sch,school,School,,,\n"
	    ",class,No key,,sch,\n"
	    "c2,class,,Long only,sch,\n"
	    "c3,class,C3,,nowhere,\n"
	    "c4,class,\"C\x80\",,sch,\n"
	    "c5,class,\"un\"terminated,,sch,\n",
	    MHDR "sch,s1,1,1\n") == 0, "%s", error_last());
	ck_assert_str_eq(rejects(),
	    "groups.csv:3: id: empty key\n"
	    "groups.csv:4: short: missing value\n"
	    "groups.csv:6: short: invalid UTF-8"
	    " (it looks like Windows-1252: export UTF-8"
	    " or set source.encoding)\n"
	    "groups.csv:7: record: text after closing quote (column 3)\n"
	    "groups.csv:5: parent: note: unknown group 'nowhere': kept as "
	    "a root\n");
	ck_assert_uint_eq(rj.count, 4);
	ck_assert_uint_eq(rj.notes, 1);
	ck_assert_uint_eq(r.ngroups, 2);
	ck_assert_str_eq(r.groups[0].id, "c3");
	ck_assert_str_eq(r.groups[0].parent, "");
	ck_assert_str_eq(r.groups[1].id, "sch");
}
END_TEST

START_TEST(roster_member_rejects)
{
	ck_assert_msg(load(good_p, good_g,
	    MHDR
	    "c1,s1,Learner,1\n"
	    ",s1,1,1\n"
	    "c1,,1,1\n"
	    "nogroup,s1,1,1\n"
	    "c1,nobody,1,1\n"
	    "c1,s2,Janitor,1\n"
	    "c1,s2,,1\n"
	    "c1,s2,1,perhaps\n"
	    "c1,s2,1,\n"
	    "c1,s2,1\n"
	    "c1,\"s2\xed\xa0\x80\",1,1\n"
	    "c1,s1,01,true\n"
	    "sch,s2,1,1\n") == 0, "%s", error_last());
	ck_assert_str_eq(rejects(),
	    "memberships.csv:3: group: empty key\n"
	    "memberships.csv:4: person: empty key\n"
	    "memberships.csv:5: group: unknown group 'nogroup'\n"
	    "memberships.csv:6: person: unknown person 'nobody'\n"
	    "memberships.csv:7: role: unknown role 'Janitor'\n"
	    "memberships.csv:8: role: missing value\n"
	    "memberships.csv:9: status: unknown status 'perhaps'\n"
	    "memberships.csv:10: status: missing value\n"
	    "memberships.csv:11: record: 3 fields, header has 4\n"
	    "memberships.csv:12: person: invalid UTF-8"
	    " (it looks like Windows-1252: export UTF-8"
	    " or set source.encoding)\n"
	    "memberships.csv:13: person: note: repeats the membership of "
	    "'s1' in 'c1' (line 2): read as one, active if any row is\n");
	ck_assert_uint_eq(rj.count, 10);
	ck_assert_uint_eq(rj.notes, 1);
	ck_assert_uint_eq(r.nmembers, 2);
}
END_TEST

/* source.encoding: a Windows-1252 export is converted to UTF-8 while
 * read, across the converter's blocks; a byte it does not have fails
 * the read naming the file and line. */
START_TEST(roster_encoding)
{
	static const char row[] = "sNNNNN,u,Bj\xf6rk,\x93Quote\x94,,1,Student\n";
	char *p, *o;
	size_t i, n = 6000;

	ck_assert_ptr_nonnull(p = malloc(sizeof(PHDR) + n * sizeof(row)));
	o = p + sprintf(p, PHDR);
	for (i = 0; i < n; i++) {
		memcpy(o, row, sizeof(row) - 1);
		snprintf(o + 1, 6, "%05zu", i);
		o[6] = ',';
		o[7] = (char)('a' + i % 26);
		o += sizeof(row) - 1;
	}
	*o = '\0';
	cfg->source.encoding = (char *)"WINDOWS-1252";
	cfg->source.mcol[MF_GROUP] = (char *)"group_id";
	ck_assert_msg(load(p, good_g, MHDR "c1,s05999,Learner,1\n") == 0,
	    "%s", error_last());
	ck_assert_str_eq(rejects(), "");
	ck_assert_uint_eq(r.npersons, n);
	ck_assert_str_eq(r.persons[roster_find_person(&r, "s05999")].given,
	    "Bj\xc3\xb6rk");
	ck_assert_str_eq(r.persons[roster_find_person(&r, "s05999")].family,
	    "\xe2\x80\x9cQuote\xe2\x80\x9d");
	/* 0x81 is not in Windows-1252: line 4001 of the file */
	p[strlen(PHDR) + 3999 * (sizeof(row) - 1) + 10] = '\x81';
	ck_assert_int_eq(load(p, good_g, good_m), -1);
	ck_assert_str_eq(error_last(), "persons.csv:4001: byte 0x81 is not "
	    "WINDOWS-1252 (source.encoding): is the export in another "
	    "encoding?");
	free(p);
}
END_TEST

START_TEST(roster_duplicates)
{
	ck_assert_msg(load(
	    PHDR
	    "s1,a,A,A,,1,\n"
	    "s2,b,B,B,,1,\n"
	    "s1,c,C,C,,1,\n",
	    GHDR
	    "g,school,G,,,\n"
	    "g,school,G again,,,\n"
	    "h,school,H,,,\n",
	    MHDR "h,s2,1,1\nh,s1,1,1\ng,s2,1,1\n") == 0, "%s", error_last());
	/* Every copy of a duplicate key goes; memberships naming them
	 * then name an unknown person or group. */
	ck_assert_ptr_nonnull(strstr(rejects(), "persons.csv:2: id: "));
	ck_assert_ptr_nonnull(strstr(rejects(), "persons.csv:4: id: "));
	ck_assert_ptr_nonnull(strstr(rejects(), "groups.csv:2: id: "));
	ck_assert_ptr_nonnull(strstr(rejects(), "groups.csv:3: id: "));
	ck_assert_ptr_nonnull(strstr(rejects(),
	    "memberships.csv:3: person: unknown person 's1'\n"
	    "memberships.csv:4: group: unknown group 'g'\n"));
	ck_assert_uint_eq(rj.count, 6);
	ck_assert_uint_eq(r.npersons, 1);
	ck_assert_uint_eq(r.ngroups, 1);
	ck_assert_uint_eq(r.nmembers, 1);
}
END_TEST

/* Keys short, longer than a hash slot holds, and too long to queue;
 * rejects still come out in line order. */
#define K30 "k23456789012345678901234567890"
#define K60 "K2345678901234567890123456789012345678901234567890123456789X"
START_TEST(roster_lookup_paths)
{
	ck_assert_uint_eq(strlen(K30), 30);
	ck_assert_uint_eq(strlen(K60), 60);
	ck_assert_msg(load(
	    PHDR
	    "s1,a,A,A,,1,\n"
	    K30 ",b,B,B,,1,\n"
	    K60 ",c,C,C,,1,\n",
	    good_g,
	    MHDR
	    "c1,s1,1,1\n"				/* 2 */
	    "c1,s9,1,1\n"				/* 3 unknown */
	    "c1," K30 ",1,1\n"			/* 4 */
	    "c1," K30 "x,1,1\n"			/* 5 unknown */
	    "c1,s1,Janitor,1\n"			/* 6 bad role */
	    "c1," K60 ",1,1\n"			/* 7 */
	    "c1," K60 "Y,1,1\n"			/* 8 unknown */
	    "c1,k2345678901234567890123,1,1\n"	/* 9 unknown, 23 */
	    "c1,s1\"x,1,1\n"				/* 10 malformed */
	    "sch," K60 ",2,1\n"			/* 11 */
	    "sch,s,1,1\n"				/* 12 unknown */
	    "sch," K30 ",2,0\n") == 0, "%s",		/* 13 */
	    error_last());
	ck_assert_str_eq(rejects(),
	    "memberships.csv:3: person: unknown person 's9'\n"
	    "memberships.csv:5: person: unknown person '" K30 "x'\n"
	    "memberships.csv:6: role: unknown role 'Janitor'\n"
	    "memberships.csv:8: person: unknown person '" K60 "...'\n"
	    "memberships.csv:9: person: unknown person "
	    "'k2345678901234567890123'\n"
	    "memberships.csv:10: record: quote inside unquoted field "
	    "(column 2)\n"
	    "memberships.csv:12: person: unknown person 's'\n");
	ck_assert_uint_eq(r.nmembers, 5);
	ck_assert_str_eq(r.persons[r.members[0].person].id, K60);
	ck_assert_str_eq(r.persons[r.members[1].person].id, K30);
	ck_assert_str_eq(r.persons[r.members[2].person].id, "s1");
	ck_assert_str_eq(r.groups[r.members[3].group].id, "sch");
	ck_assert_str_eq(r.persons[r.members[3].person].id, K60);
	ck_assert_int_eq(r.members[3].role, 2);
	ck_assert_str_eq(r.persons[r.members[4].person].id, K30);
	ck_assert_int_eq(r.members[4].active, 0);
}
END_TEST

/* Rows in person order (a person's classes together) and in group
 * order: a key the row before had is not looked up again, and an
 * unknown key repeated is rejected on every row that names it. */
START_TEST(roster_repeated_keys)
{
	ck_assert_msg(load(good_p, good_g,
	    MHDR
	    "c1,s1,1,1\n"			/* 2 */
	    "sch,s1,1,0\n"			/* 3 */
	    "nog,s1,1,1\n"			/* 4 unknown group */
	    "nog,s1,2,1\n"			/* 5 the same again */
	    "c1,s1,2,1\n"			/* 6 */
	    "c1,s9,1,1\n"			/* 7 unknown person */
	    "sch,s9,1,1\n"			/* 8 the same person */
	    "sch,s3,1,1\n"			/* 9 */
	    "sch," K60 ",1,1\n"		/* 10 too long to queue */
	    "sch,s3,1,1\n"			/* 11 duplicate of 9 */
	    "c1,s3,Janitor,1\n"		/* 12 bad role */
	    "c1,s3,1,1\n"			/* 13 */
	    K60 ",s3,1,1\n"			/* 14 group too long */
	    "c1,s2,2,1\n") == 0, "%s",	/* 15 */
	    error_last());
	ck_assert_str_eq(rejects(),
	    "memberships.csv:4: group: unknown group 'nog'\n"
	    "memberships.csv:5: group: unknown group 'nog'\n"
	    "memberships.csv:7: person: unknown person 's9'\n"
	    "memberships.csv:8: person: unknown person 's9'\n"
	    "memberships.csv:10: person: unknown person '" K60 "'\n"
	    "memberships.csv:12: role: unknown role 'Janitor'\n"
	    "memberships.csv:14: group: unknown group '" K60 "'\n"
	    "memberships.csv:11: person: note: repeats the membership of "
	    "'s3' in 'sch' (line 9): read as one, active if any row is\n");
	ck_assert_uint_eq(r.nmembers, 6);
	/* sorted by (group, person, role): c1 before sch, s1 < s2 < s3 */
	ck_assert_str_eq(r.groups[r.members[0].group].id, "c1");
	ck_assert_str_eq(r.persons[r.members[0].person].id, "s1");
	ck_assert_int_eq(r.members[0].role, 1);
	ck_assert_int_eq(r.members[1].role, 2);
	ck_assert_str_eq(r.persons[r.members[2].person].id, "s2");
	ck_assert_str_eq(r.persons[r.members[3].person].id, "s3");
	ck_assert_str_eq(r.groups[r.members[4].group].id, "sch");
	ck_assert_str_eq(r.persons[r.members[4].person].id, "s1");
	ck_assert_int_eq(r.members[4].active, 0);
	ck_assert_str_eq(r.persons[r.members[5].person].id, "s3");
}
END_TEST

START_TEST(roster_nul_byte)
{
	static const char p[] =
	    PHDR
	    "s1,a,A\0x,A,,1,\n"
	    "s2,b,B,B,,1,\n"
	    "s3,c,C,\"C\0\",,1,\n";
	static const char m[] =
	    "group_id,person_id,role,state,note\n"
	    "c1,s2,1,1,un\0mapped\n";

	put("persons.csv", p, sizeof(p) - 1);
	put("memberships.csv", m, sizeof(m) - 1);
	ck_assert_msg(load(NULL, good_g, NULL) == 0, "%s", error_last());
	ck_assert_str_eq(rejects(),
	    "persons.csv:2: given: NUL byte in value\n"
	    "persons.csv:4: family: NUL byte in value\n");
	ck_assert_uint_eq(r.npersons, 1);
	ck_assert_uint_eq(r.nmembers, 1);
}
END_TEST

START_TEST(roster_reject_value_shown_safely)
{
	char want[256];

	ck_assert_msg(load(good_p, good_g,
	    MHDR
	    "c1,\"multi\nline\",1,1\n"
	    "c1,s1,\"" "0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789\",1\n") == 0, "%s",
	    error_last());
	snprintf(want, sizeof(want),
	    "memberships.csv:2: person: unknown person 'multi?line'\n"
	    "memberships.csv:4: role: unknown role '%.60s...'\n",
	    "0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789");
	ck_assert_str_eq(rejects(), want);
}
END_TEST

START_TEST(roster_empty_file)
{
	ck_assert_int_eq(load("", good_g, good_m), -1);
	expect_fail("persons.csv: empty file (no header)");
}
END_TEST

START_TEST(roster_blank_file)
{
	ck_assert_int_eq(load(good_p, "\xef\xbb\xbf\n\r\n", good_m), -1);
	expect_fail("groups.csv: empty file (no header)");
}
END_TEST

START_TEST(roster_header_only)
{
	ck_assert_int_eq(load(good_p, good_g, MHDR "\n\n"), -1);
	expect_fail("memberships.csv: no data records (header only)");
	ck_assert_int_eq(load(PHDR, good_g, good_m), -1);
	expect_fail("persons.csv: no data records (header only)");
}
END_TEST

START_TEST(roster_missing_file)
{
	ck_assert_int_eq(unlink("persons.csv") == 0 || errno == ENOENT, 1);
	ck_assert_int_eq(load(NULL, good_g, good_m), -1);
	expect_fail("persons.csv: No such file or directory");
	cfg->source.groups = NULL;
	ck_assert_int_eq(load(good_p, NULL, good_m), -1);
	expect_fail("source.groups: no file configured");
}
END_TEST

START_TEST(roster_missing_column)
{
	ck_assert_int_eq(load(
	    "id,username,first_name,last_name,email,active,kind\n"
	    "s1,a,A,A,,1,\n", good_g, good_m), -1);
	expect_fail("persons.csv:1: column 'student_id' (field id) not in "
	    "header; the header has: id, username, first_name, last_name, "
	    "email, active, kind");
	ck_assert_int_eq(load(good_p, "group_id,type,name\nx,y,z\n", good_m),
	    -1);
	expect_fail("groups.csv:1: column 'title' (field long) not in "
	    "header; the header has: group_id, type, name");
	ck_assert_int_eq(load(good_p, good_g,
	    "\n" "group_id,person_id,role\n" "c1,s1,1\n"), -1);
	expect_fail("memberships.csv:2: column 'state' (field status) not "
	    "in header; the header has: group_id, person_id, role");
	ck_assert_int_eq(load(good_p, good_g,
	    "group_id,person_id,role,state,role\nc1,s1,1,1,1\n"), -1);
	expect_fail("memberships.csv:1: column 'role' (field role) appears "
	    "twice in header");
}
END_TEST

/* Values are trimmed as consumers read them; keys still meet. */
START_TEST(roster_values_trimmed)
{
	ck_assert_msg(load(PHDR "\" s1 \",ann, Ann ,Smith\t,,1,Student\n",
	    GHDR "c1 ,class, Class 1,,,\n",
	    MHDR " c1,s1 ,1,1\n") == 0, "%s", error_last());
	ck_assert_str_eq(rejects(), "");
	ck_assert_str_eq(r.persons[0].id, "s1");
	ck_assert_str_eq(r.persons[0].given, "Ann");
	ck_assert_str_eq(r.persons[0].family, "Smith");
	ck_assert_str_eq(r.groups[0].id, "c1");
	ck_assert_str_eq(r.groups[0].shortname, "Class 1");
	ck_assert_uint_eq(r.nmembers, 1);
}
END_TEST

/* Headers in any case and spacing; a wrong delimiter is named. */
START_TEST(roster_header_matching)
{
	ck_assert_msg(load(
	    "Student_ID, UserName ,First_Name,LAST_NAME,Email,Active,Kind\n"
	    "s1,ann,Ann,Smith,,1,Student\n",
	    "Group_Id,TYPE,Name,Title,Parent_Id,Term\n" "c1,class,C1,,,\n",
	    "group_id,person_id,Role,State\n" "c1,s1,1,1\n") == 0, "%s",
	    error_last());
	ck_assert_uint_eq(r.npersons, 1);
	ck_assert_str_eq(r.persons[0].userid, "ann");
	ck_assert_uint_eq(r.nmembers, 1);
	ck_assert(csv_header_match("First Name", "firstname"));
	ck_assert(!csv_header_match("First Name", "first_name"));
	/* a semicolon-separated export read with ',' */
	ck_assert_int_eq(load(
	    "student_id;username;first_name;last_name;email;active;kind\n"
	    "s1;ann;Ann;Smith;;1;Student\n", good_g, good_m), -1);
	expect_fail("persons.csv:1: column 'student_id' (field id) not in "
	    "header; the header has: student_id;username;first_name;"
	    "last_name;email;active;kind (it looks ';'-separated: set "
	    "source.delimiter)");
}
END_TEST

START_TEST(roster_required_unmapped)
{
	cfg->source.pcol[PF_FAMILY] = NULL;
	ck_assert_int_eq(load(good_p, good_g, good_m), -1);
	expect_fail("source.columns.persons.family: not mapped (required)");
}
END_TEST

START_TEST(roster_optional_unmapped)
{
	size_t i;

	/* Only the required columns: role Learner, status active. */
	for (i = 0; i < NPF; i++)
		if (i != PF_ID && i != PF_GIVEN && i != PF_FAMILY)
			cfg->source.pcol[i] = NULL;
	for (i = 0; i < NGF; i++)
		if (i != GF_ID && i != GF_SHORT)
			cfg->source.gcol[i] = NULL;
	cfg->source.mcol[MF_ROLE] = NULL;
	cfg->source.mcol[MF_STATUS] = NULL;
	ck_assert_msg(load(good_p, good_g, good_m) == 0, "%s",
	    error_last());
	ck_assert_str_eq(rejects(), "");
	ck_assert_uint_eq(r.npersons, 3);
	for (i = 0; i < r.npersons; i++) {
		ck_assert_int_eq(r.persons[i].active, 1);
		ck_assert_str_eq(r.persons[i].userid, "");
		ck_assert_str_eq(r.persons[i].role, "");
	}
	ck_assert_str_eq(r.groups[0].parent, "");
	ck_assert_uint_eq(r.nmembers, 3);
	for (i = 0; i < r.nmembers; i++) {
		ck_assert_int_eq(r.members[i].role, 1);
		ck_assert_int_eq(r.members[i].active, 1);
	}
}
END_TEST

START_TEST(roster_status_spellings)
{
	static const struct {
		const char	*v;
		int		 active;
	} t[] = {
		{ "1", 1 }, { "0", 0 }, { "true", 1 }, { "FALSE", 0 },
		{ "Yes", 1 }, { "no", 0 }, { "Y", 1 }, { "n", 0 },
		{ "Active", 1 }, { "INACTIVE", 0 }, { "tRuE", 1 },
	};
	char p[4096], id[16];
	size_t i, off;
	long k;

	off = (size_t)snprintf(p, sizeof(p), "%s", PHDR);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		off += (size_t)snprintf(p + off, sizeof(p) - off,
		    "p%02zu,u,G,F,,%s,\n", i, t[i].v);
	ck_assert_msg(load(p, good_g, MHDR "c1,p00,1,1\n") == 0, "%s",
	    error_last());
	ck_assert_str_eq(rejects(), "");
	ck_assert_uint_eq(r.npersons, sizeof(t) / sizeof(t[0]));
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(id, sizeof(id), "p%02zu", i);
		ck_assert_int_ge(k = roster_find_person(&r, id), 0);
		ck_assert_msg(r.persons[k].active == t[i].active,
		    "status '%s'", t[i].v);
	}
}
END_TEST

START_TEST(roster_roles)
{
	static const struct {
		const char	*v;
		int		 role;
	} t[] = {
		{ "Learner", 1 }, { "01", 1 }, { "1", 1 },
		{ "teacher", 2 }, { "INSTRUCTOR", 2 }, { "08", 8 },
		{ "Administrator", 7 },
		{ "Lehrer", 2 }, { "LEHRER", 2 },	/* config map */
		{ "student", 4 },	/* the map is checked first */
		{ "Tutor", 6 },
	};
	struct rolemap map[3] = {
		{ (char *)"lehrer", 2 }, { (char *)"Student", 4 },
		{ (char *)"tutor", 6 },
	};
	char m[4096], gid[16];
	size_t i, off;
	long gi, pi;

	cfg->source.roles = map;
	cfg->source.nroles = 3;
	off = (size_t)snprintf(m, sizeof(m), "%s", MHDR);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		off += (size_t)snprintf(m + off, sizeof(m) - off,
		    "g%02zu,s1,%s,1\n", i, t[i].v);
	snprintf(m + off, sizeof(m) - off, "g00,s2,Lehrerin,1\n");
	{
		char g[4096];

		off = (size_t)snprintf(g, sizeof(g), "%s", GHDR);
		for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
			off += (size_t)snprintf(g + off, sizeof(g) - off,
			    "g%02zu,class,G,,,\n", i);
		ck_assert_msg(load(good_p, g, m) == 0, "%s", error_last());
	}
	ck_assert_str_eq(rejects(),
	    "memberships.csv:13: role: unknown role 'Lehrerin'\n");
	ck_assert_uint_eq(r.nmembers, sizeof(t) / sizeof(t[0]));
	pi = roster_find_person(&r, "s1");
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(gid, sizeof(gid), "g%02zu", i);
		gi = roster_find_group(&r, gid);
		ck_assert_int_ge(gi, 0);
		ck_assert_uint_eq(r.members[i].group, (uint32_t)gi);
		ck_assert_uint_eq(r.members[i].person, (uint32_t)pi);
		ck_assert_msg(r.members[i].role == t[i].role,
		    "role '%s' gave %d", t[i].v, r.members[i].role);
	}
}
END_TEST

START_TEST(roster_delimiter)
{
	cfg->source.delimiter = ';';
	ck_assert_msg(load(
	    "student_id;username;first_name;last_name;email;active;kind\n"
	    "s1;a;A;\"Smith, Jr; III\";;1;\n",
	    "group_id;type;name;title;parent_id;term\ng;school;G;;;\n",
	    "group_id;person_id;role;state\ng;s1;1;1\n") == 0, "%s",
	    error_last());
	ck_assert_str_eq(r.persons[0].family, "Smith, Jr; III");
	ck_assert_uint_eq(r.nmembers, 1);
}
END_TEST

START_TEST(roster_bom_crlf)
{
	ck_assert_msg(load(
	    "\xef\xbb\xbf" "student_id,username,first_name,last_name,email,"
	    "active,kind\r\n" "s1,a,A,B,,1,\r\n",
	    "\xef\xbb\xbf" "group_id,type,name,title,parent_id,term\r\n"
	    "g,school,G,,,\r\n",
	    "\xef\xbb\xbf" "group_id,person_id,role,state\r\ng,s1,1,1\r\n") == 0,
	    "%s", error_last());
	ck_assert_str_eq(rejects(), "");
	ck_assert_uint_eq(r.npersons, 1);
	ck_assert_str_eq(r.persons[0].id, "s1");
	ck_assert_str_eq(r.persons[0].family, "B");
	ck_assert_str_eq(r.persons[0].role, "");
	ck_assert_str_eq(r.groups[0].term, "");
	ck_assert_uint_eq(r.nmembers, 1);
}
END_TEST

/* Two exports glued together: the second one's BOM would become part
 * of a key ("Z11" and "U+FEFF Z11" both delivered); it is rejected. */
START_TEST(roster_bom_inside)
{
	ck_assert_msg(load(PHDR
	    "s1,a,A,B,,1,\n"
	    "\xef\xbb\xbf" "s2,b,A,B,,1,\n"
	    "s3,c,A,\"B\xef\xbb\xbf\",,1,\n", good_g, MHDR "c1,s1,1,1\n") == 0,
	    "%s", error_last());
	ck_assert_str_eq(rejects(),
	    "persons.csv:3: id: byte order mark inside the file\n"
	    "persons.csv:4: family: byte order mark inside the file\n");
	ck_assert_uint_eq(r.npersons, 1);
}
END_TEST

/* A file cut mid-line, or at a line end inside its last record, fails
 * the run naming file and line: its missing records must not become
 * deletes. */
START_TEST(roster_truncated)
{
	ck_assert_int_eq(load(good_p, good_g, MHDR "c1,s1,1,1\nc1,s3,1"),
	    -1);
	ck_assert_str_eq(error_last(), "memberships.csv:3: no line end after "
	    "the last record: the file is cut short");
	ck_assert_int_eq(load(PHDR "s1,a,A,B,,1,\ns2,b,A\n", good_g,
	    MHDR "c1,s1,1,1\n"), -1);
	ck_assert_str_eq(error_last(), "persons.csv:3: the last record has 3 "
	    "fields, the header 7: the file is cut short");
}
END_TEST

/* A chain of 20,000 groups whose top names an unknown parent: the top
 * loses the link (one note), the chain stays, in one pass (rejecting
 * the chain link by link took minutes). */
START_TEST(roster_orphan_chain)
{
	enum { N = 20000 };
	char id[16], parent[16];
	struct group g;
	size_t i;

	memset(&g, 0, sizeof(g));
	g.type = g.longname = g.term = "";
	g.shortname = "G";
	for (i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "g%zu", i);
		snprintf(parent, sizeof(parent), "g%zu", i + 1);
		g.id = id;
		g.parent = i + 1 == N ? "nowhere" : parent;
		g.line = (uint32_t)i + 2;
		ck_assert_int_eq(roster_add_group(&r, &g), 0);
	}
	g.id = "root";
	g.parent = "";
	ck_assert_int_eq(roster_add_group(&r, &g), 0);
	g.id = "leaf";
	g.parent = "root";
	ck_assert_int_eq(roster_add_group(&r, &g), 0);
	ck_assert_int_eq(roster_seal_entities(&r, &rj, "p.csv", "g.csv"), 0);
	ck_assert_uint_eq(rj.count, 0);
	ck_assert_uint_eq(rj.notes, 1);
	ck_assert_uint_eq(r.ngroups, N + 2);
	ck_assert_str_eq(r.groups[roster_find_group(&r, "g19999")].parent, "");
	ck_assert_str_eq(r.groups[roster_find_group(&r, "g0")].parent, "g1");
}
END_TEST

static void
set_mtime(const char *path, time_t t)
{
	struct timeval tv[2] = { { t, 0 }, { t, 0 } };

	ck_assert_int_eq(utimes(path, tv), 0);
}

START_TEST(roster_datetime_mtime)
{
	puts_file("persons.csv", good_p);
	puts_file("groups.csv", good_g);
	puts_file("memberships.csv", good_m);
	set_mtime("persons.csv", 1000000);
	set_mtime("groups.csv", 3000000);
	set_mtime("memberships.csv", 2000000);
	ck_assert_msg(load(NULL, NULL, NULL) == 0, "%s", error_last());
	ck_assert_int_eq((long long)r.datetime, 3000000);
}
END_TEST

START_TEST(roster_datetime_sde)
{
	ck_assert_int_eq(setenv("SOURCE_DATE_EPOCH", "1234567890", 1), 0);
	ck_assert_msg(load(good_p, good_g, good_m) == 0, "%s", error_last());
	ck_assert_int_eq((long long)r.datetime, 1234567890);
	roster_free(&r);
	ck_assert_int_eq(setenv("SOURCE_DATE_EPOCH", "12x", 1), 0);
	ck_assert_int_eq(load(NULL, NULL, NULL), -1);
	expect_fail("SOURCE_DATE_EPOCH: not a decimal number: 12x");
	ck_assert_int_eq(setenv("SOURCE_DATE_EPOCH", "-5", 1), 0);
	ck_assert_int_eq(load(NULL, NULL, NULL), -1);
}
END_TEST

/* Every membership resolves to the same index as the binary search. */
START_TEST(roster_many)
{
	FILE *fp;
	long i, np = 20000, ng = 300, nm = 100000, n = 0;
	char key[32];

	ck_assert_ptr_nonnull(fp = fopen("persons.csv", "w"));
	fputs(PHDR, fp);
	for (i = np - 1; i >= 0; i--)
		fprintf(fp, "p%ld,u%ld,G%ld,F,,1,Student\n", i, i, i);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_ptr_nonnull(fp = fopen("groups.csv", "w"));
	fputs(GHDR, fp);
	for (i = 0; i < ng; i++)
		fprintf(fp, "g%ld,class,Group %ld,,,\n", i, i);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_ptr_nonnull(fp = fopen("memberships.csv", "w"));
	fputs(MHDR, fp);
	for (i = 0; i < nm; i++)
		fprintf(fp, "g%ld,p%ld,%d,1\n", i / (nm / ng + 1),
		    (i * 7919) % np, i % 13 == 0 ? 2 : 1);
	ck_assert_int_eq(fclose(fp), 0);

	ck_assert_msg(load(NULL, NULL, NULL) == 0, "%s", error_last());
	ck_assert_str_eq(rejects(), "");
	ck_assert_uint_eq(r.npersons, (size_t)np);
	ck_assert_uint_eq(r.ngroups, (size_t)ng);
	ck_assert_uint_eq(rj.records, (size_t)(np + ng + nm));
	ck_assert_uint_eq(r.nmembers, (size_t)nm);
	/* Spot-check memberships against the file's generator. */
	for (i = 0; i < nm; i += 997) {
		struct membership *m;
		long gi, pi;

		snprintf(key, sizeof(key), "g%ld", i / (nm / ng + 1));
		gi = roster_find_group(&r, key);
		snprintf(key, sizeof(key), "p%ld", (i * 7919) % np);
		pi = roster_find_person(&r, key);
		ck_assert_int_ge(gi, 0);
		ck_assert_int_ge(pi, 0);
		for (m = r.members; m < r.members + r.nmembers; m++)
			if (m->group == (uint32_t)gi &&
			    m->person == (uint32_t)pi)
				break;
		ck_assert_msg(m < r.members + r.nmembers, "member %ld", i);
		n++;
	}
	ck_assert_int_gt(n, 0);
}
END_TEST

/* A pseudo-random number for the big sorts' data. */
static uint64_t
big_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/*
 * Sealing as many records as take two threads (the persons' digits,
 * copy and duplicate search; the memberships' split sort) gives what a
 * plain sort gives: persons in key order, each record whole, every
 * duplicated key dropped; memberships in (group, person, role) order,
 * one of each, active if any copy is.
 */
START_TEST(roster_seal_big)
{
	enum { NP = 150000, NG = 1000, NM = 300000, DUP = 10007 };
	char **keys, **want, buf[32];
	uint64_t x = 88172645463325252ULL, *mk, *sk;
	struct person p;
	struct group g;
	struct membership m;
	size_t i, k, nwant, ndup = 0;

	ck_assert_ptr_nonnull(keys = calloc(NP, sizeof(*keys)));
	ck_assert_ptr_nonnull(want = calloc(NP, sizeof(*want)));
	memset(&p, 0, sizeof(p));
	p.userid = p.family = p.email = p.role = p.nin = "";
	p.active = 1;
	for (i = 0; i < NP; i++) {
		/* every DUP-th person repeats an earlier key */
		if (i % DUP == DUP - 1) {
			keys[i] = keys[i / 2];
			ndup++;
		} else {
			snprintf(buf, sizeof(buf), "s-%08llu",
			    (unsigned long long)(big_next(&x) % 100000000));
			ck_assert_ptr_nonnull(keys[i] = strdup(buf));
		}
		p.id = p.given = keys[i];
		p.line = (uint32_t)i + 2;
		ck_assert_int_eq(roster_add_person(&r, &p), 0);
	}
	/* the expected persons: keys seen once */
	memcpy(want, keys, NP * sizeof(*want));
	qsort(want, NP, sizeof(*want), cmp_str);
	for (i = nwant = 0; i < NP; i = k) {
		for (k = i + 1; k < NP && strcmp(want[i], want[k]) == 0; k++)
			;
		if (k - i == 1)
			want[nwant++] = want[i];
	}
	ck_assert_uint_lt(nwant, NP - ndup);	/* random keys repeat too */
	ck_assert_int_eq(roster_seal_entities(&r, &rj, "p.csv", "g.csv"), 0);
	ck_assert_uint_eq(r.npersons, nwant);
	ck_assert_uint_eq(rj.count, NP - nwant);
	for (i = 0; i < nwant; i++) {
		ck_assert_str_eq(r.persons[i].id, want[i]);
		ck_assert_str_eq(r.persons[i].given, want[i]);
		ck_assert_str_eq(keys[r.persons[i].line - 2], want[i]);
	}

	memset(&g, 0, sizeof(g));
	g.type = g.longname = g.parent = g.term = "";
	g.shortname = "G";
	for (i = 0; i < NG; i++) {
		snprintf(buf, sizeof(buf), "g%04zu", i);
		g.id = buf;
		g.line = (uint32_t)i + 2;
		ck_assert_int_eq(roster_add_group(&r, &g), 0);
	}
	ck_assert_int_eq(roster_seal_entities(&r, &rj, "p.csv", "g.csv"), 0);
	ck_assert_uint_eq(r.ngroups, NG);
	ck_assert_uint_eq(r.npersons, nwant);

	/* memberships: random, a share of them twice */
	ck_assert_ptr_nonnull(mk = calloc(NM, sizeof(*mk)));
	ck_assert_ptr_nonnull(sk = calloc(NM, sizeof(*sk)));
	memset(&m, 0, sizeof(m));
	for (i = 0; i < NM; i++) {
		if (i % 5 == 4) {
			m = r.members[big_next(&x) % r.nmembers];
		} else {
			m.group = (uint32_t)(big_next(&x) % NG);
			m.person = (uint32_t)(big_next(&x) % nwant);
			m.role = (uint8_t)(1 + big_next(&x) % 8);
		}
		m.active = (uint8_t)(big_next(&x) % 3 == 0);
		/* the key, and whether this copy is active in bit 63 */
		sk[i] = (uint64_t)m.group << 40 | (uint64_t)m.person << 8 |
		    m.role;
		mk[i] = sk[i] | (uint64_t)m.active << 63;
		ck_assert_int_eq(roster_add_member(&r, &m), 0);
	}
	/* the expected: the keys sorted, one of each */
	qsort(sk, NM, sizeof(*sk), cmp_u64);
	ck_assert_int_eq(roster_seal_members(&r, &rj, "m.csv", NULL), 0);
	for (i = nwant = 0; i < NM; i = k) {
		for (k = i + 1; k < NM && sk[k] == sk[i]; k++)
			;
		nwant++;
	}
	ck_assert_uint_eq(r.nmembers, nwant);
	for (i = k = 0; i < NM; i++) {
		uint64_t key = sk[i];
		const struct membership *o;

		if (i > 0 && key == sk[i - 1])
			continue;
		o = &r.members[k++];
		ck_assert_uint_eq(o->group, key >> 40);
		ck_assert_uint_eq(o->person, (key >> 8) & 0xffffffff);
		ck_assert_uint_eq(o->role, key & 0xff);
	}
	/* each kept membership active exactly when some copy was */
	for (i = 0; i < NM; i++)
		if (mk[i] >> 63) {
			uint64_t key = mk[i] & ~(1ULL << 63);
			size_t lo = 0, hi = r.nmembers;

			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;
				const struct membership *o = &r.members[mid];
				uint64_t ok = (uint64_t)o->group << 40 |
				    (uint64_t)o->person << 8 | o->role;

				if (ok < key)
					lo = mid + 1;
				else
					hi = mid;
			}
			ck_assert_uint_lt(lo, r.nmembers);
			ck_assert_uint_eq(r.members[lo].active, 1);
		}
	for (i = k = 0; i < r.nmembers; i++)
		k += r.members[i].active;
	ck_assert_uint_gt(k, 0);
	ck_assert_uint_lt(k, r.nmembers);
	for (i = 0; i < NP; i++)
		if (i % DUP != DUP - 1)
			free(keys[i]);
	free(keys);
	free(want);
	free(mk);
	free(sk);
}
END_TEST

/* Big enough for two threads, with the one key twice in the second
 * half of the sorted persons: both copies go, the rest stay. */
START_TEST(roster_seal_late_duplicate)
{
	enum { NP = 100000 };
	struct roster big;
	struct person p;
	char buf[32];
	size_t i;

	roster_init(&big);
	memset(&p, 0, sizeof(p));
	p.userid = p.given = p.family = p.email = p.role = p.nin = "";
	for (i = 0; i <= NP; i++) {
		snprintf(buf, sizeof(buf), "k%06zu", i == NP ? NP - 10 :
		    NP - 1 - i);
		p.id = buf;
		p.line = (uint32_t)i + 2;
		ck_assert_int_eq(roster_add_person(&big, &p), 0);
	}
	ck_assert_int_eq(roster_seal_entities(&big, &rj, "p.csv", "g.csv"),
	    0);
	ck_assert_uint_eq(rj.count, 2);
	ck_assert_uint_eq(big.npersons, NP - 1);
	ck_assert_int_lt(roster_find_person(&big, "k099990"), 0);
	ck_assert_str_eq(big.persons[NP - 2].id, "k099999");
	ck_assert_uint_eq(big.persons[NP - 2].line, 2);
	roster_free(&big);
}
END_TEST

/* Lines by position: one run for lines in a row, a new one where a
 * line is skipped (a rejected record, a record over several lines),
 * and a second part's lines moved after the first's. */
START_TEST(roster_linemap)
{
	static const uint32_t first[] = { 2, 3, 4, 10, 11, 20 };
	static const uint32_t second[] = { 2, 3, 7 };
	static const uint32_t want[] = { 2, 3, 4, 10, 11, 20, 102, 103, 107 };
	struct linemap a = { 0 }, b = { 0 };
	size_t i;

	for (i = 0; i < sizeof(first) / sizeof(first[0]); i++)
		ck_assert_int_eq(linemap_add(&a, first[i]), 0);
	for (i = 0; i < sizeof(second) / sizeof(second[0]); i++)
		ck_assert_int_eq(linemap_add(&b, second[i]), 0);
	ck_assert_uint_eq(a.n, 3);
	ck_assert_int_eq(linemap_append(&a, &b, 100), 0);
	ck_assert_uint_eq(a.next, 9);
	ck_assert_uint_eq(a.n, 5);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_uint_eq(linemap_line(&a, (uint32_t)i), want[i]);
	linemap_free(&a);
	linemap_free(&b);
	ck_assert_uint_eq(linemap_line(&a, 0), 0);
}
END_TEST

/* One read of the files as they are, by the rules of the environment
 * (SISFEED_CSV_SPLIT), into what a comparison needs. */
struct readout {
	int		 rc;
	char		 err[1024];
	char		*rejects;
	size_t		 count, notes, records;
	char		 first[256];
	struct membership *m;
	size_t		 nm;
	char		*persons;	/* every field of every person */
};

/* Every field of r's persons, a line each, into a malloc'd string. */
static char *
persons_text(void)
{
	char *buf = NULL;
	size_t len = 0, i;
	FILE *fp;

	ck_assert_ptr_nonnull(fp = open_memstream(&buf, &len));
	for (i = 0; i < r.npersons; i++) {
		const struct person *p = &r.persons[i];

		fprintf(fp, "%s|%s|%s|%s|%s|%s|%s|%u|%u\n", p->id, p->userid,
		    p->given, p->family, p->email, p->role, p->nin,
		    (unsigned)p->line, (unsigned)p->active);
	}
	ck_assert_int_eq(fclose(fp), 0);
	return buf;
}

static void
read_out(struct readout *o)
{
	const char *text;
	size_t before;

	ck_assert_int_eq(fflush(rejfp), 0);
	before = rejlen;
	memset(&rj, 0, sizeof(rj));
	rj.fp = rejfp;
	memset(o, 0, sizeof(*o));
	o->rc = load(NULL, NULL, NULL);
	snprintf(o->err, sizeof(o->err), "%s", o->rc == -1 ?
	    error_last() : "");
	text = rejects();	/* flushed: rejlen is the length */
	ck_assert_uint_ge(rejlen, before);
	ck_assert_ptr_nonnull(o->rejects = strndup(text + before,
	    rejlen - before));
	o->count = rj.count;
	o->notes = rj.notes;
	o->records = rj.records;
	memcpy(o->first, rj.first, sizeof(o->first));
	o->nm = r.nmembers;
	ck_assert_ptr_nonnull(o->m = calloc(o->nm + 1, sizeof(*o->m)));
	if (o->nm > 0)
		memcpy(o->m, r.members, o->nm * sizeof(*o->m));
	o->persons = persons_text();
}

/* Where strings a and b first differ. */
static size_t
first_diff(const char *a, const char *b)
{
	size_t i;

	for (i = 0; a[i] != '\0' && a[i] == b[i]; i++)
		;
	return i;
}

/* The persons and memberships files read in two parts each give what
 * one part gives. */
static void
expect_split_same(void)
{
	struct readout one, two;

	ck_assert_int_eq(unsetenv("SISFEED_CSV_SPLIT"), 0);
	read_out(&one);
	ck_assert_int_eq(setenv("SISFEED_CSV_SPLIT", "1", 1), 0);
	read_out(&two);
	ck_assert_int_eq(unsetenv("SISFEED_CSV_SPLIT"), 0);
	ck_assert_int_eq(two.rc, one.rc);
	ck_assert_str_eq(two.err, one.err);
	ck_assert_msg(strcmp(two.rejects, one.rejects) == 0,
	    "rejects differ at byte %zu: '%.120s' against '%.120s'",
	    first_diff(two.rejects, one.rejects),
	    two.rejects + first_diff(two.rejects, one.rejects),
	    one.rejects + first_diff(two.rejects, one.rejects));
	ck_assert_uint_eq(two.count, one.count);
	ck_assert_uint_eq(two.notes, one.notes);
	ck_assert_uint_eq(two.records, one.records);
	ck_assert_str_eq(two.first, one.first);
	if (one.rc == 0) {	/* a failed read's roster is only freed */
		ck_assert_uint_eq(two.nm, one.nm);
		ck_assert(memcmp(two.m, one.m, one.nm * sizeof(*one.m)) == 0);
		ck_assert_msg(strcmp(two.persons, one.persons) == 0,
		    "persons differ at byte %zu: '%.120s' against '%.120s'",
		    first_diff(two.persons, one.persons),
		    two.persons + first_diff(two.persons, one.persons),
		    one.persons + first_diff(two.persons, one.persons));
	}
	free(one.persons);
	free(two.persons);
	free(one.rejects);
	free(two.rejects);
	free(one.m);
	free(two.m);
}

/* Write memberships.csv: n rows with rejects, repeats, quoted keys,
 * CRLF and blank lines spread through it, and, if straddle, one record
 * whose quoted value runs over many lines across the middle. */
static void
write_members(long n, int straddle, int cut_short)
{
	FILE *fp;
	long i, k;

	ck_assert_ptr_nonnull(fp = fopen("memberships.csv", "w"));
	fputs(MHDR, fp);
	for (i = 0; i < n; i++) {
		if (straddle && i == n / 2 - 5) {
			fputs("g1,p1,1,\"1", fp);
			for (k = 0; k < 400; k++)
				fputs("\nyes", fp);
			fputs("\"\n", fp);
		}
		if (i % 97 == 0)
			fprintf(fp, "g%ld,nobody%ld,1,1\n", i % 40, i);
		else if (i % 89 == 0)
			fputs("g2,p2,1,1\n", fp);
		else if (i % 101 == 0)
			fprintf(fp, "\"g%ld\",p%ld,1,1\r\n", i % 40, i % 500);
		else if (i % 113 == 0)
			fputs("\n", fp);
		else
			fprintf(fp, "g%ld,p%ld,%ld,%s\n", i % 40,
			    (i * 7919) % 500, 1 + i % 2, i % 7 ? "1" : "0");
	}
	if (cut_short)
		fputs("g1,p3,1", fp);
	ck_assert_int_eq(fclose(fp), 0);
}

/* Write persons.csv: p0..p(n-1) with rejects, duplicate keys (one copy
 * in each half), quoted names, CRLF and blank lines spread through it;
 * if straddle, one record whose quoted name runs over many lines across
 * the middle; if cut_short, a last record with too few fields. */
static void
write_persons(long n, int straddle, int cut_short)
{
	FILE *fp;
	long i, k;

	ck_assert_ptr_nonnull(fp = fopen("persons.csv", "w"));
	fputs(PHDR, fp);
	for (i = 0; i < n; i++) {
		if (straddle && i == n / 2 - 3) {
			fputs("px,ux,\"Long", fp);
			for (k = 0; k < 400; k++)
				fputs("\nname", fp);
			fputs("\",F,,1,Student\n", fp);
		}
		if (i % 97 == 0)
			fprintf(fp, "p%ld,u%ld,,F,,1,Student\n", i, i);
		else if (i % 89 == 0)
			fprintf(fp, "p%ld,u%ld,G,F,,maybe,Student\n", i, i);
		else if (i % 83 == 0)
			fprintf(fp, "p%ld,u%ld,G,F,,1,Wizard\n", i, i);
		else if (i % 101 == 0)
			fprintf(fp, "\"p%ld\",u%ld,\"G, \"\"Q\"\"\",F,,0,"
			    "Faculty\r\n", i, i);
		else if (i % 113 == 0)
			fprintf(fp, "\np%ld,u%ld,G,F,,1,\n", i, i);
		else
			fprintf(fp, "p%ld,u%ld,G%ld,F%ld,p%ld@example.org,%s,"
			    "Student\n", i, i, i % 7, i % 11, i,
			    i % 5 ? "1" : "0");
		if (i == 10 || i == n - 10)	/* duplicates across */
			fprintf(fp, "dup,u%ld,G,F,,1,Student\n", i);
	}
	if (cut_short)
		fputs("p999999,u", fp);
	ck_assert_int_eq(fclose(fp), 0);
}

START_TEST(roster_split_persons)
{
	FILE *fp;
	long i;

	ck_assert_ptr_nonnull(fp = fopen("groups.csv", "w"));
	fputs(GHDR, fp);
	for (i = 0; i < 40; i++)
		fprintf(fp, "g%ld,class,Group %ld,,,\n", i, i);
	ck_assert_int_eq(fclose(fp), 0);
	write_members(2000, 0, 0);
	write_persons(3000, 0, 0);	/* cut between two records */
	expect_split_same();
	write_persons(3000, 1, 0);	/* a record over the cut */
	expect_split_same();
	write_persons(3000, 0, 1);	/* the second part cut short */
	expect_split_same();
	write_persons(2, 0, 0);		/* too small to find a cut */
	expect_split_same();
}
END_TEST

START_TEST(roster_split_matches_one_part)
{
	FILE *fp;
	long i;

	ck_assert_ptr_nonnull(fp = fopen("persons.csv", "w"));
	fputs(PHDR, fp);
	for (i = 0; i < 500; i++)
		fprintf(fp, "p%ld,u%ld,G,F,,1,Student\n", i, i);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_ptr_nonnull(fp = fopen("groups.csv", "w"));
	fputs(GHDR, fp);
	for (i = 0; i < 40; i++)
		fprintf(fp, "g%ld,class,Group %ld,,,\n", i, i);
	ck_assert_int_eq(fclose(fp), 0);

	write_members(20000, 0, 0);	/* cut between two records */
	expect_split_same();
	write_members(20000, 1, 0);	/* a record over the cut */
	expect_split_same();
	write_members(20000, 0, 1);	/* the second part cut short */
	expect_split_same();
	write_members(3, 0, 0);		/* too small to find a cut */
	expect_split_same();
}
END_TEST

static Suite *
csv_suite(void)
{
	Suite *s = suite_create("csv");
	TCase *tc;

	tc = tcase_create("reader");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, reader_plain);
	tcase_add_test(tc, reader_quotes);
	tcase_add_test(tc, reader_embedded);
	tcase_add_test(tc, reader_crlf);
	tcase_add_test(tc, reader_bom);
	tcase_add_test(tc, reader_no_final_newline);
	tcase_add_test(tc, reader_short_last_record);
	tcase_add_test(tc, reader_header_faults);
	tcase_add_test(tc, reader_record_cap);
	tcase_add_test(tc, reader_blank_lines);
	tcase_add_test(tc, reader_malformed);
	tcase_add_test(tc, reader_delimiters);
	tcase_add_test(tc, reader_utf8_exact);
	tcase_add_test(tc, reader_nul_byte);
	tcase_add_test(tc, reader_missing_file);
	tcase_add_test(tc, reader_boundaries);
	tcase_add_test(tc, reader_many);
	suite_add_tcase(s, tc);

	tc = tcase_create("roster");
	tcase_add_checked_fixture(tc, rsetup, rteardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, roster_good);
	tcase_add_test(tc, roster_person_rejects);
	tcase_add_test(tc, roster_group_rejects);
	tcase_add_test(tc, roster_member_rejects);
	tcase_add_test(tc, roster_encoding);
	tcase_add_test(tc, roster_duplicates);
	tcase_add_test(tc, roster_lookup_paths);
	tcase_add_test(tc, roster_repeated_keys);
	tcase_add_test(tc, roster_nul_byte);
	tcase_add_test(tc, roster_reject_value_shown_safely);
	tcase_add_test(tc, roster_empty_file);
	tcase_add_test(tc, roster_blank_file);
	tcase_add_test(tc, roster_header_only);
	tcase_add_test(tc, roster_missing_file);
	tcase_add_test(tc, roster_missing_column);
	tcase_add_test(tc, roster_header_matching);
	tcase_add_test(tc, roster_values_trimmed);
	tcase_add_test(tc, roster_required_unmapped);
	tcase_add_test(tc, roster_optional_unmapped);
	tcase_add_test(tc, roster_status_spellings);
	tcase_add_test(tc, roster_roles);
	tcase_add_test(tc, roster_delimiter);
	tcase_add_test(tc, roster_bom_crlf);
	tcase_add_test(tc, roster_bom_inside);
	tcase_add_test(tc, roster_truncated);
	tcase_add_test(tc, roster_orphan_chain);
	tcase_add_test(tc, roster_datetime_mtime);
	tcase_add_test(tc, roster_datetime_sde);
	tcase_add_test(tc, roster_many);
	tcase_add_test(tc, roster_linemap);
	tcase_add_test(tc, roster_seal_big);
	tcase_add_test(tc, roster_seal_late_duplicate);
	tcase_add_test(tc, roster_split_matches_one_part);
	tcase_add_test(tc, roster_split_persons);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run_suite(csv_suite()) != 0;
}
