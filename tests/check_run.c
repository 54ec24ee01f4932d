/*
 * check_run.c -- the sisfeed binary end to end: the first run, approval
 * and override (with a stale id), plan, nothing to do, a threshold at
 * its exact boundary, the lock, kill -9 at each stage, config errors,
 * bad input, DTD validity of full, delta and gzip output, determinism,
 * validate and diff, status, and file modes.
 *
 * Every test works in its own directory: a copy of the example config
 * (etc/examples/sisfeed.yaml, edited per test), export/ with a night's
 * CSV files, outbox/ as the delivery directory, and state/.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tests/testutil.h"

#define TIMEOUT		60	/* seconds, per binary run */
#define MAXARGS		16

static char dir[PATH_MAX];

static void
setup(void)
{
	tu_mkdtemp(dir, sizeof(dir));
}

static void
teardown(void)
{
	char path[PATH_MAX + 16];

	/* What a failed disk test may have left mounted. */
	snprintf(path, sizeof(path), "%s/outbox", dir);
	(void)umount2(path, MNT_DETACH);
	snprintf(path, sizeof(path), "%s/state/history", dir);
	(void)umount2(path, MNT_DETACH);
	snprintf(path, sizeof(path), "%s/state", dir);
	(void)umount2(path, MNT_DETACH);
	snprintf(path, sizeof(path), "%s/state2", dir);
	(void)umount2(path, MNT_DETACH);
	tu_rmtree(dir);
}

/* ------------------------------------------------------------------ */
/* helpers                                                             */

/* "dir/sub" into a static rotating buffer. */
static const char *
at(const char *root, const char *sub)
{
	static char bufs[8][PATH_MAX];
	static int next;
	char *p = bufs[next++ % 8];

	ck_assert_int_lt(snprintf(p, PATH_MAX, "%s/%s", root, sub),
	    PATH_MAX);
	return p;
}

static char *
read_or_die(const char *path, size_t *len)
{
	char *s = tu_read(path, len);

	ck_assert_msg(s != NULL, "cannot read %s", path);
	return s;
}

/*
 * A root directory for one installation: root/export, root/outbox and
 * root/sisfeed.yaml, the example config with edits: pairs of (old,
 * new) strings, NULL-terminated; each old string must occur in the
 * config and its first occurrence is replaced.
 */
static void
make_root(const char *root, ...)
{
	char *cfg, *p, *next;
	const char *from, *to;
	size_t len;
	va_list ap;

	mkdir(root, 0755);
	ck_assert_int_eq(mkdir(at(root, "export"), 0755), 0);
	ck_assert_int_eq(mkdir(at(root, "outbox"), 0755), 0);
	cfg = read_or_die(at(tu_top(), "etc/examples/sisfeed.yaml"), NULL);
	va_start(ap, root);
	while ((from = va_arg(ap, const char *)) != NULL) {
		to = va_arg(ap, const char *);
		p = strstr(cfg, from);
		ck_assert_msg(p != NULL, "'%s' not in the example config",
		    from);
		len = strlen(cfg) - strlen(from) + strlen(to) + 1;
		next = malloc(len);
		ck_assert_ptr_nonnull(next);
		snprintf(next, len, "%.*s%s%s", (int)(p - cfg), cfg, to,
		    p + strlen(from));
		free(cfg);
		cfg = next;
	}
	va_end(ap);
	tu_write(root, "sisfeed.yaml", cfg);
	free(cfg);
}

/* Copy etc/examples/nightN/ *.csv into root/export. */
static void
night(const char *root, int n)
{
	static const char *const files[] = {
		"persons.csv", "groups.csv", "memberships.csv",
	};
	char src[PATH_MAX], *s;
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(src, sizeof(src), "%s/etc/examples/night%d/%s",
		    tu_top(), n, files[i]);
		s = read_or_die(src, NULL);
		tu_write(at(root, "export"), files[i], s);
		free(s);
	}
}

/* 1 if line (up to its newline) names person id in column col
 * (0: persons.csv, 1: memberships.csv). */
static int
line_names(const char *line, size_t len, int col, const char *id)
{
	size_t idlen = strlen(id);
	const char *p = line;
	int c;

	for (c = 0; c < col; c++) {
		const char *comma = memchr(p, ',', len - (size_t)(p - line));

		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
	return (size_t)(line + len - p) > idlen &&
	    strncmp(p, id, idlen) == 0 && p[idlen] == ',';
}

/*
 * Rewrite root/export/name without the lines naming any of the person
 * ids in drop (NULL-terminated) in column col, then append extra.
 */
static void
filter_export(const char *root, const char *name, int col,
    const char *const *drop, const char *extra)
{
	const char *path = at(at(root, "export"), name);
	char *in, *out, *line, *nl;
	size_t len, olen = 0, n, i;
	int keep;

	in = read_or_die(path, &len);
	out = malloc(len + strlen(extra) + 1);
	ck_assert_ptr_nonnull(out);
	for (line = in; *line != '\0'; line = nl) {
		nl = strchr(line, '\n');
		nl = nl != NULL ? nl + 1 : line + strlen(line);
		n = (size_t)(nl - line);
		keep = 1;
		for (i = 0; drop != NULL && drop[i] != NULL; i++)
			if (line_names(line, n, col, drop[i]))
				keep = 0;
		if (keep) {
			memcpy(out + olen, line, n);
			olen += n;
		}
	}
	memcpy(out + olen, extra, strlen(extra) + 1);
	tu_write(at(root, "export"), name, out);
	free(in);
	free(out);
}

/* Drop persons (and their memberships) from root's export. */
static void
drop_persons(const char *root, const char *const *ids)
{
	filter_export(root, "persons.csv", 0, ids, "");
	filter_export(root, "memberships.csv", 1, ids, "");
}

/*
 * Run argv[0..npre) followed by the NULL-terminated arguments in ap,
 * capturing stdout and stderr into *out.  Returns the exit status,
 * 128+signal when killed.
 */
static int
vrun(const char *const *pre, int npre, va_list ap, char **out)
{
	char *argv[MAXARGS];
	const char *a;
	int argc;

	for (argc = 0; argc < npre; argc++)
		argv[argc] = (char *)pre[argc];
	while ((a = va_arg(ap, const char *)) != NULL) {
		ck_assert_int_lt(argc, MAXARGS - 1);
		argv[argc++] = (char *)a;
	}
	argv[argc] = NULL;
	return tu_run(argv, out, TIMEOUT);
}

/*
 * Run sisfeed -c root/sisfeed.yaml with NULL-terminated arguments,
 * output into *out.  Returns the exit status, 128+signal when killed.
 */
static int
sisfeed(const char *root, char **out, ...)
{
	char cfg[PATH_MAX];
	const char *pre[3];
	va_list ap;
	int rc;

	snprintf(cfg, sizeof(cfg), "%s", at(root, "sisfeed.yaml"));
	pre[0] = tu_sisfeed();
	pre[1] = "-c";
	pre[2] = cfg;
	va_start(ap, out);
	rc = vrun(pre, 3, ap, out);
	va_end(ap);
	return rc;
}

/* Run a program with NULL-terminated arguments, no config. */
static int
prog(const char *path, char **out, ...)
{
	va_list ap;
	int rc;

	va_start(ap, out);
	rc = vrun(&path, 1, ap, out);
	va_end(ap);
	return rc;
}

/* Run sisfeed on root's config and expect exit code want; returns the
 * output (to free). */
static char *
expect_run(int want, const char *root, ...)
{
	char cfg[PATH_MAX], *out = NULL;
	const char *pre[3], *first;
	va_list ap;
	int rc;

	snprintf(cfg, sizeof(cfg), "%s", at(root, "sisfeed.yaml"));
	pre[0] = tu_sisfeed();
	pre[1] = "-c";
	pre[2] = cfg;
	va_start(ap, root);
	first = va_arg(ap, const char *);
	va_end(ap);
	va_start(ap, root);
	rc = vrun(pre, 3, ap, &out);
	va_end(ap);
	ck_assert_msg(rc == want, "%s: exit %d, want %d; output:\n%s",
	    first != NULL ? first : "", rc, want, out);
	return out;
}

/* Assert that hay holds needle, showing hay if not. */
static void
has(const char *hay, const char *needle)
{
	ck_assert_msg(strstr(hay, needle) != NULL,
	    "want '%s' in:\n%s", needle, hay);
}

static void
hasnt(const char *hay, const char *needle)
{
	ck_assert_msg(strstr(hay, needle) == NULL,
	    "do not want '%s' in:\n%s", needle, hay);
}

/*
 * The run's error line says "failed in STAGE: MESSAGE" once, and the
 * message does not repeat itself (a prefix doubled, a buffer formatted
 * into itself): its first part, up to ": ", occurs in it once.
 */
static void
one_clean_error(const char *out, const char *stage)
{
	char pre[64], line[2048], head[256];
	const char *p, *msg;
	size_t n;

	snprintf(pre, sizeof(pre), "error: failed in %s: ", stage);
	ck_assert_msg((p = strstr(out, pre)) != NULL, "no '%s' in:\n%s", pre,
	    out);
	ck_assert_msg(strstr(p + strlen(pre), "failed in ") == NULL,
	    "failed twice:\n%s", out);
	n = strcspn(p, "\n");
	ck_assert_uint_lt(n, sizeof(line));
	memcpy(line, p, n);
	line[n] = '\0';
	msg = line + strlen(pre);
	n = strstr(msg, ": ") != NULL ? (size_t)(strstr(msg, ": ") - msg) :
	    strlen(msg);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_lt(n, sizeof(head));
	memcpy(head, msg, n);
	head[n] = '\0';
	ck_assert_msg(strstr(strstr(msg, head) + n, head) == NULL,
	    "'%s' repeats in: %s", head, line);
}

/* The value after "prefix" up to the end of its line, into buf. */
static void
line_value(const char *out, const char *prefix, char *buf, size_t len)
{
	const char *p = strstr(out, prefix);
	size_t n;

	ck_assert_msg(p != NULL, "no '%s' in:\n%s", prefix, out);
	p += strlen(prefix);
	n = strcspn(p, "\n");
	ck_assert_uint_lt(n, len);
	memcpy(buf, p, n);
	buf[n] = '\0';
}

/* The approval id a blocked run printed. */
static void
approval_id(const char *out, char id[17])
{
	line_value(out, "approval id: ", id, 17);
	ck_assert_uint_eq(strlen(id), 16);
	ck_assert_uint_eq(strspn(id, "0123456789abcdef"), 16);
}

/* Entries in a directory (0 if it does not exist). */
static int
count_dir(const char *path)
{
	DIR *d;
	struct dirent *e;
	int n = 0;

	if ((d = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* The only entry of a directory, as a path into buf. */
static void
only_entry(const char *path, char *buf, size_t len)
{
	DIR *d;
	struct dirent *e;
	int n = 0;

	d = opendir(path);
	ck_assert_msg(d != NULL, "cannot open %s", path);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		n++;
		snprintf(buf, len, "%s/%s", path, e->d_name);
	}
	closedir(d);
	ck_assert_msg(n == 1, "%d entries in %s, want 1", n, path);
}

/*
 * The file a run delivered (its "delivered: " line), checked to be in
 * root/outbox, then moved to root/outbox/keep so the next delivery in
 * the same second cannot overwrite it.  Path of the kept copy in buf.
 */
static void
keep_delivered(const char *root, const char *out, const char *keep,
    char *buf, size_t len)
{
	char path[PATH_MAX];

	line_value(out, "delivered: ", path, sizeof(path));
	ck_assert_msg(tu_exists(path), "delivered file %s missing", path);
	ck_assert_msg(strncmp(path, at(root, "outbox/"),
	    strlen(at(root, "outbox/"))) == 0, "%s not in the outbox", path);
	snprintf(buf, len, "%s", at(at(root, "outbox"), keep));
	ck_assert_int_eq(rename(path, buf), 0);
}

/* 1 if the two files hold the same bytes. */
static int
same_file(const char *a, const char *b)
{
	size_t la, lb;
	char *sa = read_or_die(a, &la), *sb = read_or_die(b, &lb);
	int same = la == lb && memcmp(sa, sb, la) == 0;

	free(sa);
	free(sb);
	return same;
}

/* 1 if the file holds exactly len bytes of s. */
static int
file_is(const char *path, const char *s, size_t len)
{
	size_t l;
	char *got = tu_read(path, &l);
	int same = got != NULL && l == len && memcmp(got, s, len) == 0;

	free(got);
	return same;
}

/* The last line of a file, malloc'd. */
static char *
last_line(const char *path)
{
	char *s = read_or_die(path, NULL), *p, *r;
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '\n')
		s[--n] = '\0';
	p = strrchr(s, '\n');
	r = strdup(p != NULL ? p + 1 : s);
	ck_assert_ptr_nonnull(r);
	free(s);
	return r;
}

/* The DTD of IMS Enterprise 1.1. */
static const char *
dtd_path(void)
{
	static char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/tests/data/ims/ims_epv1p1.dtd", tu_top());
	if (!tu_exists(p))
		snprintf(p, sizeof(p), "%s/../shared/ims/ims_epv1p1.dtd",
		    tu_top());
	ck_assert_msg(tu_exists(p), "no DTD at %s", p);
	return p;
}

/* Assert that xmllint finds file valid against the DTD. */
static void
dtd_valid(const char *file)
{
	char *out = NULL;
	int rc;

	ck_assert_msg(tu_exists("/usr/bin/xmllint"),
	    "xmllint missing (Debian package libxml2-utils)");
	rc = prog("/usr/bin/xmllint", &out, "--noout", "--dtdvalid",
	    dtd_path(), file, (char *)NULL);
	ck_assert_msg(rc == 0, "xmllint %s: exit %d:\n%s", file, rc, out);
	free(out);
}

/* The file mode bits of path. */
static unsigned
mode_of(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "cannot stat %s", path);
	return (unsigned)(st.st_mode & 07777);
}

/* A root with night 1 delivered (first_run: allow); kept as
 * outbox/night1.xml. */
static void
delivered_night1(const char *root, const char *keep)
{
	char *out, path[PATH_MAX];

	night(root, 1);
	out = expect_run(0, root, "run", (char *)NULL);
	keep_delivered(root, out, keep, path, sizeof(path));
	free(out);
}

/* ------------------------------------------------------------------ */
/* first run, approve, override                                        */

START_TEST(test_first_run_blocked_then_approve)
{
	char *out, *s, id[17], file[PATH_MAX];

	make_root(dir, (char *)NULL);
	night(dir, 1);
	out = expect_run(3, dir, "run", (char *)NULL);
	has(out, "blocked: initial load");
	has(out, "safety.first_run");
	approval_id(out, id);
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 0);
	ck_assert(!tu_exists(at(dir, "state/snapshot")));
	s = read_or_die(at(dir, "state/pending"), NULL);
	has(s, id);
	free(s);
	s = last_line(at(dir, "state/runs.log"));
	has(s, "status=blocked");
	has(s, id);
	free(s);
	free(out);

	out = expect_run(0, dir, "run", "--approve", id, (char *)NULL);
	keep_delivered(dir, out, "night1.xml", file, sizeof(file));
	has(out, "snapshot: ");
	ck_assert(tu_exists(at(dir, "state/snapshot")));
	ck_assert(same_file(file, at(dir, "state/snapshot")));
	ck_assert(!tu_exists(at(dir, "state/pending")));
	s = last_line(at(dir, "state/runs.log"));
	has(s, "status=completed");
	has(s, "approved_by=");
	has(s, id);
	free(s);
	free(out);
}
END_TEST

START_TEST(test_first_run_override)
{
	char *out, *s;

	make_root(dir, (char *)NULL);
	night(dir, 1);
	out = expect_run(0, dir, "run", "--override", (char *)NULL);
	has(out, "delivered: ");
	has(out, "--override");
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 1);
	ck_assert(tu_exists(at(dir, "state/snapshot")));
	s = last_line(at(dir, "state/runs.log"));
	has(s, "status=completed");
	has(s, "approved_by=");
	free(s);
	free(out);
}
END_TEST

START_TEST(test_first_run_allow)
{
	char *out, *s;

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	night(dir, 1);
	out = expect_run(0, dir, "run", (char *)NULL);
	has(out, "delivered: ");
	hasnt(out, "blocked");
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 1);
	ck_assert(tu_exists(at(dir, "state/snapshot")));
	s = last_line(at(dir, "state/runs.log"));
	has(s, "status=completed");
	hasnt(s, "approved_by=");
	free(s);
	free(out);
}
END_TEST

START_TEST(test_usage)
{
	char *out;

	make_root(dir, (char *)NULL);
	night(dir, 1);
	/* --override and --approve together, plan with --approve, an
	 * unknown command: usage errors, and nothing happened. */
	free(expect_run(2, dir, "run", "--override", "--approve", "x",
	    (char *)NULL));
	free(expect_run(2, dir, "plan", "--approve", "x", (char *)NULL));
	out = expect_run(2, dir, "frobnicate", (char *)NULL);
	has(out, "usage:");
	free(out);
	ck_assert(!tu_exists(at(dir, "state/snapshot")));
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 0);
	ck_assert_int_eq(prog(tu_sisfeed(), &out, "--version", (char *)NULL),
	    0);
	has(out, "sisfeed ");
	free(out);
	ck_assert_int_eq(prog(tu_sisfeed(), &out, "--help", (char *)NULL),
	    0);
	has(out, "usage:");
	free(out);
}
END_TEST

/* ------------------------------------------------------------------ */
/* night 2: blocked, plan, a stale approval id, the right one          */

START_TEST(test_night2_plan_and_approve)
{
	char *out, *plan, *snap, *s, id1[17], id2[17], file[PATH_MAX];
	size_t snaplen;

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	delivered_night1(dir, "night1.xml");
	snap = read_or_die(at(dir, "state/snapshot"), &snaplen);

	night(dir, 2);
	out = expect_run(3, dir, "run", (char *)NULL);
	has(out, "persons deletes 3");
	approval_id(out, id1);
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 1);
	ck_assert(file_is(at(dir, "state/snapshot"), snap, snaplen));
	free(out);

	/* plan: the samples of what would be deleted, nothing delivered. */
	plan = expect_run(3, dir, "plan", (char *)NULL);
	has(plan, "S1013 (Mia Wilson)");
	has(plan, "S1014 (Ethan Moore)");
	has(plan, "S1015 (Sofia Taylor)");
	has(plan, "S1013 in ENG-7B");
	has(plan, "S1016 (Chlo");
	has(plan, id1);
	hasnt(plan, "delivered: ");
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 1);
	ck_assert(file_is(at(dir, "state/snapshot"), snap, snaplen));
	free(plan);

	/* The export changes: the old id no longer matches. */
	filter_export(dir, "persons.csv", 0, (const char *const[]){ "S1012",
	    NULL }, "S1012,lucas.miller,Lucas,Millerson,"
	    "lucas.miller@students.example.org,1,Student\n");
	out = expect_run(3, dir, "run", "--approve", id1, (char *)NULL);
	has(out, "does not match");
	approval_id(out, id2);
	ck_assert_str_ne(id1, id2);
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 1);
	ck_assert(file_is(at(dir, "state/snapshot"), snap, snaplen));
	s = read_or_die(at(dir, "state/pending"), NULL);
	has(s, id2);
	hasnt(s, id1);
	free(s);
	free(out);

	/* The new id delivers exactly this change set. */
	out = expect_run(0, dir, "run", "--approve", id2, (char *)NULL);
	keep_delivered(dir, out, "night2.xml", file, sizeof(file));
	s = read_or_die(file, NULL);
	hasnt(s, "S1013");
	hasnt(s, "S1014");
	has(s, "S1016");
	has(s, "Millerson");
	free(s);
	ck_assert(!file_is(at(dir, "state/snapshot"), snap, snaplen));
	ck_assert(same_file(file, at(dir, "state/snapshot")));
	s = last_line(at(dir, "state/runs.log"));
	has(s, "status=completed");
	has(s, "persons=+1/~3/-3");
	has(s, "approved_by=");
	has(s, id2);
	free(s);
	free(out);
	free(snap);
}
END_TEST

/* ------------------------------------------------------------------ */
/* nothing to do                                                       */

START_TEST(test_nothing_to_do)
{
	char *out, *s, *snap;
	size_t snaplen;

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	delivered_night1(dir, "night1.xml");
	snap = read_or_die(at(dir, "state/snapshot"), &snaplen);
	out = expect_run(0, dir, "run", (char *)NULL);
	has(out, "nothing to do");
	hasnt(out, "delivered: ");
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 1);
	ck_assert(file_is(at(dir, "state/snapshot"), snap, snaplen));
	s = last_line(at(dir, "state/runs.log"));
	has(s, "status=unchanged");
	hasnt(s, "file=");
	free(s);
	free(out);
	free(snap);
}
END_TEST

/* ------------------------------------------------------------------ */
/* a threshold at its exact boundary, through the binary               */

/*
 * The base: night 1 plus S1099 (no memberships): 20 persons.  Persons
 * deletes at 10% allow 2 of 20 and trip at 3.
 */
static void
boundary_root(const char *persons_deletes)
{
	make_root(dir, "first_run: block", "first_run: allow",
	    "deletes: [5%, 500]", persons_deletes,
	    "memberships: {inserts: 25%, updates: 25%, deletes: 5%}",
	    "memberships: {inserts: 25%, updates: 25%, deletes: 50%}",
	    (char *)NULL);
	night(dir, 1);
	filter_export(dir, "persons.csv", 0, NULL,
	    "S1099,x.extra,Xavier,Extra,x.extra@example.org,1,Student\n");
	free(expect_run(0, dir, "run", (char *)NULL));
	ck_assert(tu_exists(at(dir, "state/snapshot")));
}

START_TEST(test_threshold_percent_boundary)
{
	static const char *const three[] = { "S1099", "S1013", "S1014",
	    NULL };
	static const char *const two[] = { "S1013", "S1014", NULL };
	char *out, *plan;

	boundary_root("deletes: 10%");
	/* 3 of 20 = 15% > 10%: blocked. */
	drop_persons(dir, three);
	out = expect_run(3, dir, "run", (char *)NULL);
	has(out, "persons deletes 3 (15.0% > 10%): the export holds 17 of "
	    "the snapshot's 20");
	hasnt(out, "memberships deletes");
	free(out);
	ck_assert(tu_exists(at(dir, "state/pending")));

	/* 2 of 20 = 10% exactly: passes. */
	night(dir, 1);
	filter_export(dir, "persons.csv", 0, NULL,
	    "S1099,x.extra,Xavier,Extra,x.extra@example.org,1,Student\n");
	drop_persons(dir, two);
	plan = expect_run(0, dir, "plan", (char *)NULL);
	hasnt(plan, "YES");
	free(plan);
	out = expect_run(0, dir, "run", (char *)NULL);
	has(out, "delivered: ");
	hasnt(out, "blocked");
	free(out);
	ck_assert(!tu_exists(at(dir, "state/pending")));
}
END_TEST

START_TEST(test_threshold_cap_boundary)
{
	static const char *const three[] = { "S1099", "S1013", "S1014",
	    NULL };
	static const char *const two[] = { "S1013", "S1014", NULL };
	char *out;

	/* The cap allows 2; 50% would allow 10. */
	boundary_root("deletes: [50%, 2]");
	drop_persons(dir, three);
	out = expect_run(3, dir, "run", (char *)NULL);
	has(out, "persons deletes 3 > 2");
	free(out);

	night(dir, 1);
	filter_export(dir, "persons.csv", 0, NULL,
	    "S1099,x.extra,Xavier,Extra,x.extra@example.org,1,Student\n");
	drop_persons(dir, two);
	out = expect_run(0, dir, "run", (char *)NULL);
	has(out, "delivered: ");
	free(out);
}
END_TEST

START_TEST(test_threshold_min_base)
{
	static const char *const five[] = { "S1099", "S1013", "S1014",
	    "S1015", "S1012", NULL };
	static const char *const four[] = { "S1013", "S1014", "S1015",
	    "S1012", NULL };
	char *out;

	/*
	 * min_base 40 above the base of 20: 10% is taken of 40, so 4
	 * deletes pass (20% of the base) and 5 trip.
	 */
	make_root(dir, "first_run: block", "first_run: allow",
	    "deletes: [5%, 500]", "deletes: 10%",
	    "memberships: {inserts: 25%, updates: 25%, deletes: 5%}",
	    "memberships: {inserts: 25%, updates: 25%, deletes: 50%}",
	    "min_base: 10", "min_base: 40", (char *)NULL);
	night(dir, 1);
	filter_export(dir, "persons.csv", 0, NULL,
	    "S1099,x.extra,Xavier,Extra,x.extra@example.org,1,Student\n");
	free(expect_run(0, dir, "run", (char *)NULL));

	drop_persons(dir, five);
	out = expect_run(3, dir, "run", (char *)NULL);
	has(out, "persons deletes 5");
	has(out, "min_base");
	free(out);

	night(dir, 1);
	filter_export(dir, "persons.csv", 0, NULL,
	    "S1099,x.extra,Xavier,Extra,x.extra@example.org,1,Student\n");
	drop_persons(dir, four);
	free(expect_run(0, dir, "run", (char *)NULL));
}
END_TEST

/* ------------------------------------------------------------------ */
/* the lock                                                            */

START_TEST(test_lock_held)
{
	char *out;
	int fd;

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	night(dir, 1);
	ck_assert_int_eq(mkdir(at(dir, "state"), 0700), 0);
	fd = open(at(dir, "state/lock"), O_RDWR | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(flock(fd, LOCK_EX), 0);
	ck_assert_int_eq(write(fd, "4242\n", 5), 5);

	out = expect_run(4, dir, "run", (char *)NULL);
	has(out, "4242");
	free(out);
	ck_assert(!tu_exists(at(dir, "state/snapshot")));
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 0);

	/* Released: the next run goes. */
	close(fd);
	free(expect_run(0, dir, "run", (char *)NULL));
	ck_assert(tu_exists(at(dir, "state/snapshot")));
}
END_TEST

/* ------------------------------------------------------------------ */
/* kill -9 after a stage                                               */

/* Every crash point of a run (lib/log.c fault_point), in each output
 * mode: "copy" is a delivery cut half-way under its temporary name. */
static const char *const crash_stages[] = { "read", "diff", "write",
	"copy", "deliver", "commit" };
#define NCRASH	(sizeof(crash_stages) / sizeof(crash_stages[0]))
static const char *const crash_modes[] = { "mode: full", "mode: delta" };

/*
 * Give what a crashed run left in out/ the names of a run of 1999: the
 * next run, if it starts in the same second, would otherwise write
 * over the same names, and the test would not see whether leftovers
 * are removed.
 */
static void
age_leftovers(const char *out)
{
	DIR *d;
	struct dirent *e;
	char from[PATH_MAX], to[PATH_MAX];
	int n = 0;

	d = opendir(out);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || strncmp(e->d_name, "1999", 4) == 0)
			continue;
		snprintf(from, sizeof(from), "%s/%s", out, e->d_name);
		snprintf(to, sizeof(to), "%s/19990101T000000Z-%d.%s", out,
		    n++, strrchr(e->d_name, '.') != NULL ?
		    strrchr(e->d_name, '.') + 1 : "x");
		ck_assert_int_eq(rename(from, to), 0);
		rewinddir(d);
	}
	closedir(d);
	ck_assert_int_gt(n, 0);
}

/* Rename the files delivered by a crashed run in the outbox (all but
 * keep): in delta mode the next run, in the same second, would find its
 * name taken. */
static void
set_aside_delivered(const char *outbox, const char *keep)
{
	DIR *d;
	struct dirent *e;
	char from[PATH_MAX], to[PATH_MAX];
	int n = 0;

	ck_assert_ptr_nonnull(d = opendir(outbox));
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, keep) == 0 ||
		    strncmp(e->d_name, "crashed-", 8) == 0)
			continue;
		snprintf(from, sizeof(from), "%s/%s", outbox, e->d_name);
		snprintf(to, sizeof(to), "%s/crashed-%d.xml", outbox, n++);
		ck_assert_int_eq(rename(from, to), 0);
		rewinddir(d);
	}
	closedir(d);
}

/* No temporary file at the receiver or in the state directory. */
static void
no_partial_files(const char *root)
{
	static const char *const dirs[] = { "outbox", "state", "state/out" };
	struct dirent *e;
	size_t i;
	DIR *d;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		ck_assert_ptr_nonnull(d = opendir(at(root, dirs[i])));
		while ((e = readdir(d)) != NULL)
			ck_assert_msg(strstr(e->d_name, ".part") == NULL,
			    "%s/%s left", dirs[i], e->d_name);
		closedir(d);
	}
}

START_TEST(test_crash)
{
	const char *stage = crash_stages[_i % NCRASH];
	const char *mode = crash_modes[_i / NCRASH];
	int delta = _i / (int)NCRASH == 1;
	char ctl[PATH_MAX], a[PATH_MAX], delivered[PATH_MAX], *snap;
	char *out = NULL;
	size_t snaplen;
	int rc;

	/* The control: night 1, then night 2 uncrashed. */
	snprintf(ctl, sizeof(ctl), "%s", at(dir, "ctl"));
	make_root(ctl, "first_run: block", "first_run: allow", "mode: full",
	    mode, (char *)NULL);
	delivered_night1(ctl, "night1.xml");
	night(ctl, 2);
	free(expect_run(0, ctl, "run", "--override", (char *)NULL));

	snprintf(a, sizeof(a), "%s", at(dir, "a"));
	make_root(a, "first_run: block", "first_run: allow", "mode: full",
	    mode, (char *)NULL);
	delivered_night1(a, "night1.xml");
	snap = read_or_die(at(a, "state/snapshot"), &snaplen);
	night(a, 2);

	ck_assert_int_eq(setenv("SISFEED_CRASH_AFTER", stage, 1), 0);
	rc = sisfeed(a, &out, "run", "--override", (char *)NULL);
	unsetenv("SISFEED_CRASH_AFTER");
	ck_assert_msg(rc == 128 + 9, "crash after %s (%s): exit %d:\n%s",
	    stage, mode, rc, out);
	free(out);
	if (strcmp(stage, "commit") != 0) {
		ck_assert_msg(file_is(at(a, "state/snapshot"), snap, snaplen),
		    "crash after %s (%s) changed the snapshot", stage, mode);
		ck_assert_int_eq(count_dir(at(a, "state/history")), 0);
	}
	if (strcmp(stage, "write") == 0 || strcmp(stage, "copy") == 0 ||
	    strcmp(stage, "deliver") == 0) {
		ck_assert_msg(count_dir(at(a, "state/out")) > 0,
		    "crash after %s left nothing in state/out", stage);
		age_leftovers(at(a, "state/out"));
	}
	/* Delivered: only after "deliver"; "copy" leaves a partial file
	 * under a name no importer matches. */
	ck_assert_int_eq(count_dir(at(a, "outbox")),
	    strcmp(stage, "deliver") == 0 || strcmp(stage, "commit") == 0 ||
	    strcmp(stage, "copy") == 0 ? 2 : 1);
	if (delta)
		set_aside_delivered(at(a, "outbox"), "night1.xml");

	/* The next run cleans up and ends where the control did. */
	out = expect_run(0, a, "run", "--override", (char *)NULL);
	if (strcmp(stage, "commit") == 0)
		has(out, "nothing to do");
	else {
		has(out, "delivered: ");
		line_value(out, "delivered: ", delivered, sizeof(delivered));
	}
	free(out);
	ck_assert_int_eq(count_dir(at(a, "state/out")), 0);
	no_partial_files(a);
	ck_assert_msg(same_file(at(a, "state/snapshot"),
	    at(ctl, "state/snapshot")), "after a crash in %s (%s) the "
	    "snapshot differs from an uncrashed run's", stage, mode);
	ck_assert(!file_is(at(a, "state/snapshot"), snap, snaplen));
	/* A full-mode receiver holds exactly tonight's export. */
	if (!delta && strcmp(stage, "commit") != 0) {
		free(expect_run(0, a, "export", "-o", at(a, "export.xml"),
		    (char *)NULL));
		ck_assert(same_file(delivered, at(a, "export.xml")));
	}

	/* And the one after has nothing to do. */
	out = expect_run(0, a, "run", (char *)NULL);
	has(out, "nothing to do");
	free(out);
	free(snap);
}
END_TEST

/* ------------------------------------------------------------------ */
/* a lost or damaged snapshot                                          */

/* A root with night 1 delivered and night 2 delivered over it: the
 * night 1 snapshot is in history/, night 1's file in the outbox. */
static void
two_nights(const char *root)
{
	make_root(root, "first_run: block", "first_run: allow", (char *)NULL);
	delivered_night1(root, "night1.xml");
	night(root, 2);
	free(expect_run(0, root, "run", "--override", (char *)NULL));
	ck_assert_int_eq(count_dir(at(root, "state/history")), 1);
}

/* The snapshot gone while the state shows deliveries: the run fails
 * and delivers nothing (it was a first run: +all, no deletes). */
START_TEST(test_snapshot_lost)
{
	char *out;

	two_nights(dir);
	ck_assert_int_eq(unlink(at(dir, "state/snapshot")), 0);
	ck_assert_int_eq(unlink(at(dir, "state/snapshot.idx")), 0);
	out = expect_run(1, dir, "run", (char *)NULL);
	has(out, "/state/snapshot is missing, but history/ holds snapshot.");
	has(out, "'sisfeed restore'");
	free(out);
	out = expect_run(1, dir, "plan", (char *)NULL);
	has(out, "is missing");
	free(out);
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 2);

	/* Restore takes the newest snapshot in history/ (night 1): the
	 * next run sends night 2's changes again. */
	out = expect_run(0, dir, "restore", (char *)NULL);
	has(out, "restored: ");
	has(out, "/state/history/snapshot.");
	free(out);
	ck_assert(same_file(at(dir, "state/snapshot"),
	    at(dir, "outbox/night1.xml")));
	out = expect_run(0, dir, "run", "--override", (char *)NULL);
	has(out, "delivered: ");
	free(out);
	out = expect_run(0, dir, "run", (char *)NULL);
	has(out, "nothing to do");
	free(out);

	/* Only the index left (history pruned): still not a first run. */
	ck_assert_int_eq(unlink(at(dir, "state/snapshot")), 0);
	tu_rmtree(at(dir, "state/history"));
	out = expect_run(1, dir, "run", (char *)NULL);
	has(out, "but its index snapshot.idx is there");
	free(out);
	/* Nothing good in history: restore says what else to do. */
	out = expect_run(1, dir, "restore", (char *)NULL);
	has(out, "holds no snapshot that reads as a whole");
	has(out, "--initial");
	free(out);
	/* A file delivered in full is a snapshot too. */
	out = expect_run(0, dir, "restore", at(dir, "outbox/night1.xml"),
	    (char *)NULL);
	has(out, "restored: ");
	free(out);
	ck_assert(!tu_exists(at(dir, "state/snapshot.idx")));
}
END_TEST

/* A damaged snapshot fails the run with the reader's message, and
 * restore puts back the newest good one. */
START_TEST(test_snapshot_damaged)
{
	char *out;

	two_nights(dir);
	tu_write(at(dir, "state"), "snapshot", "<enterprise><person>");
	out = expect_run(1, dir, "run", (char *)NULL);
	one_clean_error(out, "diff");
	has(out, "failed in diff: the snapshot cannot be read ('sisfeed "
	    "restore' puts back the newest good one from history/): ");
	has(out, "/state/snapshot");
	free(out);
	out = expect_run(0, dir, "restore", (char *)NULL);
	has(out, "restored: ");
	free(out);
	out = expect_run(0, dir, "run", "--override", (char *)NULL);
	has(out, "delivered: ");
	free(out);
	/* An intact snapshot is not replaced without a FILE. */
	out = expect_run(1, dir, "restore", (char *)NULL);
	has(out, "nothing to restore");
	free(out);
}
END_TEST

/* A copy cut by a crash leaves .sisfeed.NAME.XXXXXX.part in the
 * delivery directory (no importer's sisfeed-* or *.xml matches it) and
 * the state directory; the next run removes them. */
START_TEST(test_partial_files_removed)
{
	char *out;

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	night(dir, 1);
	tu_write(at(dir, "outbox"), ".sisfeed.sisfeed-20261201-020000.xml."
	    "Ab12Cd.part", "<enterprise>half");
	mkdir(at(dir, "state"), 0700);
	tu_write(at(dir, "state"), ".sisfeed.snapshot.Zz99Yy.part", "half");
	out = expect_run(0, dir, "run", (char *)NULL);
	has(out, "removed 1 partial file left in ");
	free(out);
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 1);
	ck_assert(!tu_exists(at(dir, "state/.sisfeed.snapshot.Zz99Yy.part")));
}
END_TEST

/* Mount a tmpfs of size bytes on path (root only); 0, or -1 when the
 * system does not let us (the test then skips). */
static int
tmpfs_mount(const char *path, const char *size, unsigned long flags)
{
	char opt[64];

	snprintf(opt, sizeof(opt), "size=%s,mode=0700", size);
	if (geteuid() != 0 || mount("tmpfs", path, "tmpfs", flags, opt) == -1)
		return -1;
	return 0;
}

/* A full disk at the receiver, then in the state directory: the run
 * fails saying so, leaves no partial file, and the next run with room
 * delivers the export. */
START_TEST(test_disk_full)
{
	char *out, delivered[PATH_MAX];

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	night(dir, 1);
	if (tmpfs_mount(at(dir, "outbox"), "4k", 0) == -1) {
		fprintf(stderr, "test_disk_full: skipped (needs root and "
		    "mount)\n");
		return;
	}
	out = expect_run(1, dir, "run", (char *)NULL);
	one_clean_error(out, "deliver");
	has(out, "No space left on device\n");
	free(out);
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 0);
	ck_assert(!tu_exists(at(dir, "state/snapshot")));
	ck_assert_int_eq(umount(at(dir, "outbox")), 0);

	/* The state directory's disk full: tonight's file cannot be
	 * written; nothing half-written stays. */
	ck_assert_int_eq(mkdir(at(dir, "state2"), 0700), 0);
	make_root(at(dir, "b"), "first_run: block", "first_run: allow",
	    "state_dir: state", "state_dir: ../state2", (char *)NULL);
	night(at(dir, "b"), 1);
	ck_assert_int_eq(tmpfs_mount(at(dir, "state2"), "4k", 0), 0);
	out = expect_run(1, at(dir, "b"), "run", (char *)NULL);
	one_clean_error(out, "write");
	has(out, "No space left on device");
	free(out);
	ck_assert(!tu_exists(at(dir, "state2/snapshot")));
	ck_assert_int_eq(umount(at(dir, "state2")), 0);

	/* With room again: delivered, and the receiver holds the export. */
	out = expect_run(0, dir, "run", (char *)NULL);
	line_value(out, "delivered: ", delivered, sizeof(delivered));
	free(out);
	free(expect_run(0, dir, "export", "-o", at(dir, "export.xml"),
	    (char *)NULL));
	ck_assert(same_file(delivered, at(dir, "export.xml")));
	no_partial_files(dir);
}
END_TEST

/* A read-only state directory fails the run at once, and changes
 * nothing; writable again, the run goes on. */
START_TEST(test_state_readonly)
{
	char *out;

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	night(dir, 1);
	ck_assert_int_eq(mkdir(at(dir, "state"), 0700), 0);
	if (tmpfs_mount(at(dir, "state"), "1m", 0) == -1) {
		fprintf(stderr, "test_state_readonly: skipped (needs root "
		    "and mount)\n");
		return;
	}
	free(expect_run(0, dir, "run", (char *)NULL));
	night(dir, 2);
	ck_assert_int_eq(mount("tmpfs", at(dir, "state"), "tmpfs",
	    MS_REMOUNT | MS_RDONLY, NULL), 0);
	out = expect_run(1, dir, "run", "--override", (char *)NULL);
	has(out, "Read-only file system");
	free(out);
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 1);
	ck_assert_int_eq(mount("tmpfs", at(dir, "state"), "tmpfs",
	    MS_REMOUNT, NULL), 0);
	out = expect_run(0, dir, "run", "--override", (char *)NULL);
	has(out, "delivered: ");
	free(out);
	ck_assert_int_eq(umount(at(dir, "state")), 0);
}
END_TEST

/*
 * The commit fails (history/ is read-only, so the old snapshot cannot
 * be kept there): the run fails in commit with the file system's
 * message once, as printed and in its JSON summary; the file it
 * delivered stays in out/, and the next run, history/ writable again,
 * makes it the snapshot and has nothing more to do.
 */
START_TEST(test_commit_fails)
{
	char *out, *s, want[PATH_MAX + 128], old[PATH_MAX], json[PATH_MAX];
	char stamp[32], delivered[PATH_MAX];
	struct stat st;
	struct tm tm;

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	delivered_night1(dir, "night1.xml");
	night(dir, 2);
	if (tmpfs_mount(at(dir, "state/history"), "1m", MS_RDONLY) == -1) {
		fprintf(stderr, "test_commit_fails: skipped (needs root and "
		    "mount)\n");
		return;
	}
	ck_assert_int_eq(stat(at(dir, "state/snapshot"), &st), 0);
	gmtime_r(&st.st_mtim.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(old, sizeof(old), "%s/snapshot.%s", at(dir, "state/history"),
	    stamp);
	out = expect_run(1, dir, "run", "--override", (char *)NULL);
	snprintf(want, sizeof(want), "error: failed in commit: %s: "
	    "Read-only file system\n", old);
	has(out, want);
	one_clean_error(out, "commit");
	line_value(out, "delivered ", delivered, sizeof(delivered));
	free(out);
	s = last_line(at(dir, "state/runs.log"));
	has(s, "status=failed");
	has(s, "stage=commit");
	snprintf(json, sizeof(json), "state/runs/%.*s.json",
	    (int)strcspn(strstr(s, " run=") + 5, " "), strstr(s, " run=") + 5);
	free(s);
	s = read_or_die(at(dir, json), NULL);
	snprintf(want, sizeof(want), "\"error\": \"%s: Read-only file "
	    "system\"", old);
	has(s, want);
	has(s, "\"stage\": \"commit\"");
	free(s);
	ck_assert_int_eq(count_dir(at(dir, "state/out")), 1);
	ck_assert(tu_exists(at(dir, "state/delivered")));

	/* Still read-only: the next run fails in commit too, saying what
	 * it could not do, logged like any failed run. */
	out = expect_run(1, dir, "run", (char *)NULL);
	snprintf(want, sizeof(want), "error: failed in commit: committing the "
	    "file the last run delivered: %s: Read-only file system\n", old);
	has(out, want);
	one_clean_error(out, "commit");
	free(out);
	s = last_line(at(dir, "state/runs.log"));
	has(s, "status=failed");
	has(s, "stage=commit");
	free(s);
	ck_assert_int_eq(count_dir(at(dir, "state/out")), 1);

	/* Writable again: what was delivered becomes the snapshot. */
	ck_assert_int_eq(umount(at(dir, "state/history")), 0);
	out = expect_run(0, dir, "run", (char *)NULL);
	has(out, "the file it delivered is now the snapshot");
	has(out, "nothing to do");
	free(out);
	ck_assert_int_eq(count_dir(at(dir, "state/out")), 0);
	ck_assert(!tu_exists(at(dir, "state/delivered")));
	ck_assert(tu_exists(old));
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 2);
	no_partial_files(dir);
}
END_TEST

/* history/ that cannot be pruned after the snapshot moved: the run
 * is committed (a warning), not failed. */
START_TEST(test_history_prune_fails)
{
	char *out;

	make_root(dir, "first_run: block", "first_run: allow", "history: 7",
	    "history: 1", (char *)NULL);
	delivered_night1(dir, "night1.xml");
	ck_assert_int_eq(mkdir(at(dir, "state/history/snapshot.0"), 0700), 0);
	night(dir, 2);
	out = expect_run(0, dir, "run", "--override", (char *)NULL);
	has(out, "delivered: ");
	has(out, "/state/history/snapshot.0: ");
	has(out, "(history/ keeps more than 1 snapshots)");
	free(out);
	out = expect_run(0, dir, "run", (char *)NULL);
	has(out, "nothing to do");
	free(out);
}
END_TEST

/* restore --initial: the next run is an initial load, on purpose. */
START_TEST(test_restore_initial)
{
	char *out;

	two_nights(dir);
	out = expect_run(1, dir, "restore", "--initial", (char *)NULL);
	has(out, "exists: --initial is for a state whose snapshot is lost");
	free(out);
	ck_assert_int_eq(unlink(at(dir, "state/snapshot")), 0);
	out = expect_run(0, dir, "restore", "--initial", (char *)NULL);
	has(out, "initial load");
	free(out);
	out = expect_run(0, dir, "run", (char *)NULL);
	has(out, "delivered: ");
	free(out);
	ck_assert(!tu_exists(at(dir, "state/initial")));
	ck_assert(tu_exists(at(dir, "state/snapshot")));
}
END_TEST

/* ------------------------------------------------------------------ */
/* config errors                                                       */

/* The 1-based line of the first line of text holding needle. */
static int
line_of(const char *text, const char *needle)
{
	const char *p = strstr(text, needle), *q;
	int line = 1;

	ck_assert_ptr_nonnull(p);
	for (q = text; q < p; q++)
		if (*q == '\n')
			line++;
	return line;
}

START_TEST(test_config_unknown_key)
{
	char *cfg, *out, want[64];

	make_root(dir, "history: 7\n", "history: 7\nhistroy: 8\n",
	    (char *)NULL);
	night(dir, 1);
	cfg = read_or_die(at(dir, "sisfeed.yaml"), NULL);
	snprintf(want, sizeof(want), "sisfeed.yaml:%d:",
	    line_of(cfg, "histroy"));
	free(cfg);
	out = expect_run(2, dir, "run", (char *)NULL);
	has(out, want);
	has(out, "histroy");
	free(out);
	ck_assert(!tu_exists(at(dir, "state")));
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 0);
}
END_TEST

START_TEST(test_config_bad_threshold)
{
	char *cfg, *out, want[64];

	make_root(dir, "[5%, 500]", "[lots, 500]", (char *)NULL);
	night(dir, 1);
	cfg = read_or_die(at(dir, "sisfeed.yaml"), NULL);
	snprintf(want, sizeof(want), "sisfeed.yaml:%d:",
	    line_of(cfg, "lots"));
	free(cfg);
	out = expect_run(2, dir, "plan", (char *)NULL);
	has(out, want);
	free(out);
}
END_TEST

START_TEST(test_config_missing)
{
	char *out;

	/* No sisfeed.yaml in dir at all. */
	out = expect_run(2, dir, "run", (char *)NULL);
	has(out, "sisfeed.yaml");
	free(out);
	ck_assert(!tu_exists(at(dir, "state")));
}
END_TEST

/* ------------------------------------------------------------------ */
/* bad input                                                           */

static const char DUPS[] =
	"S1099,x.one,Xavier,One,x.one@example.org,1,Student\n"	/* 21 */
	"S1099,x.two,Xavier,Two,x.two@example.org,1,Student\n"	/* 22 */
	",no.key,No,Key,no.key@example.org,1,Student\n";	/* 23 */

START_TEST(test_rejects)
{
	char *out, *s, path[PATH_MAX], file[PATH_MAX];

	make_root(dir, "first_run: block", "first_run: allow",
	    "max_rejects: 5%", "max_rejects: 10%", (char *)NULL);
	night(dir, 1);
	filter_export(dir, "persons.csv", 0, NULL, DUPS);
	out = expect_run(0, dir, "run", (char *)NULL);
	has(out, "3 records rejected");
	keep_delivered(dir, out, "night1.xml", file, sizeof(file));
	free(out);

	only_entry(at(dir, "state/rejects"), path, sizeof(path));
	s = read_or_die(path, NULL);
	has(s, "persons.csv:21: id: ");
	has(s, "persons.csv:22: id: ");
	has(s, "persons.csv:23: id: ");
	has(s, "S1099");
	free(s);
	ck_assert_uint_eq(mode_of(path), 0600);

	/* Rejected, never guessed: neither copy of S1099 goes out. */
	s = read_or_die(file, NULL);
	hasnt(s, "S1099");
	has(s, "S1001");
	free(s);
}
END_TEST

START_TEST(test_max_rejects)
{
	char *out, *s;

	/* 3 of 51 records = 5.9% > 5%. */
	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	night(dir, 1);
	filter_export(dir, "persons.csv", 0, NULL, DUPS);
	out = expect_run(1, dir, "run", (char *)NULL);
	has(out, "max_rejects");
	/* the first reject, so the cause is in the message */
	has(out, "the export looks broken; the first: ");
	has(out, "persons.csv:23: id: empty key");
	hasnt(out, "delivered: ");
	free(out);
	ck_assert(!tu_exists(at(dir, "state/snapshot")));
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 0);
	ck_assert_int_eq(count_dir(at(dir, "state/rejects")), 1);
	s = last_line(at(dir, "state/runs.log"));
	has(s, "status=failed");
	has(s, "stage=read");
	free(s);
}
END_TEST

/*
 * The export cut short, as the issue found it delivered: memberships.csv
 * cut mid-line 0.5% before its end, persons.csv 1% before.  The run
 * fails in read naming the file and line; nothing is delivered and the
 * snapshot stays; the whole export then goes through.
 */
START_TEST(test_export_truncated)
{
	static const char *const files[] = { "memberships.csv",
		"persons.csv" };
	static const double cut[] = { 0.005, 0.01 };
	char *out, *s, *snap, want[PATH_MAX + 96];
	size_t len, snaplen, keep, i, line;

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	delivered_night1(dir, "night1.xml");
	snap = read_or_die(at(dir, "state/snapshot"), &snaplen);
	for (i = 0; i < 2; i++) {
		night(dir, 1);
		s = read_or_die(at(at(dir, "export"), files[i]), &len);
		/* mid-line: the cut-off record is the last one's line */
		keep = len - (size_t)((double)len * cut[i]);
		if (s[keep - 1] == '\n')
			keep--;
		s[keep] = '\0';
		for (line = 1, len = 0; len < keep; len++)
			line += s[len] == '\n';
		tu_write(at(dir, "export"), files[i], s);
		free(s);
		out = expect_run(1, dir, "run", (char *)NULL);
		snprintf(want, sizeof(want), "failed in read: %s:%zu: no line "
		    "end after the last record: the file is cut short\n",
		    at(at(dir, "export"), files[i]), line);
		has(out, want);
		one_clean_error(out, "read");
		free(out);
		ck_assert_int_eq(count_dir(at(dir, "outbox")), 1);
		ck_assert(file_is(at(dir, "state/snapshot"), snap, snaplen));
	}
	night(dir, 1);
	out = expect_run(0, dir, "run", (char *)NULL);
	has(out, "nothing to do");
	free(out);
	free(snap);
}
END_TEST

/* root/export/persons.csv: night 1's persons and n more, from the
 * first extra person on (a cut file loses the last ones). */
static void
persons_and(const char *root, int from, int n)
{
	char src[PATH_MAX], *base, line[160];
	struct sbuf sb;
	int i;

	snprintf(src, sizeof(src), "%s/etc/examples/night1/persons.csv",
	    tu_top());
	base = read_or_die(src, NULL);
	memset(&sb, 0, sizeof(sb));
	sbuf_puts(&sb, base);
	for (i = from; i < from + n; i++) {
		snprintf(line, sizeof(line), "X%05d,extra.%05d,Given%d,"
		    "Family%d,extra.%05d@students.example.org,1,Student\n",
		    i, i, i, i, i);
		sbuf_puts(&sb, line);
	}
	free(base);
	ck_assert_ptr_nonnull(base = sbuf_done(&sb, "persons"));
	tu_write(at(root, "export"), "persons.csv", base);
	free(base);
}

/* The size of a file in bytes. */
static long long
size_of(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "cannot stat %s", path);
	return (long long)st.st_size;
}

/*
 * A file much smaller than the last delivery's by bytes blocks the run
 * like a threshold, even with the record thresholds off, and the
 * reason (printed, in the plan, the run's JSON) names the file and both
 * sizes; normal churn passes, and an approval delivers it.
 */
START_TEST(test_export_shrinks)
{
	char *out, *s, want[PATH_MAX + 128], id[17], json[PATH_MAX];
	long long was, now;

	make_root(dir, "first_run: block", "first_run: allow",
	    "persons:     {inserts: 10%, updates: 20%, deletes: [5%, 500]}",
	    "persons:     {inserts: off, updates: off, deletes: off}",
	    (char *)NULL);
	night(dir, 1);
	persons_and(dir, 0, 400);
	free(expect_run(0, dir, "run", (char *)NULL));
	ck_assert(tu_exists(at(dir, "state/export.sizes")));
	was = size_of(at(dir, "export/persons.csv"));
	ck_assert_int_gt(was, 3 * 16384 / 2);

	/* 2% churn: 8 leave, 8 come. */
	persons_and(dir, 8, 400);
	out = expect_run(0, dir, "run", (char *)NULL);
	has(out, "delivered: ");
	free(out);

	/* Cut by 30%: blocked, the file and both sizes named. */
	was = size_of(at(dir, "export/persons.csv"));
	persons_and(dir, 8, 400 - 130);
	now = size_of(at(dir, "export/persons.csv"));
	ck_assert_int_lt(now, was * 3 / 4);
	snprintf(want, sizeof(want), "%s shrank from %lld to %lld bytes "
	    "(%.1f%% > safety.max_shrink 10%%)", at(dir, "export/persons.csv"),
	    was, now, 100.0 * (double)(was - now) / (double)was);
	out = expect_run(3, dir, "run", (char *)NULL);
	has(out, want);
	approval_id(out, id);
	free(out);
	out = expect_run(3, dir, "plan", (char *)NULL);
	has(out, want);
	free(out);
	s = last_line(at(dir, "state/runs.log"));
	ck_assert_ptr_nonnull(strstr(s, " run="));
	snprintf(json, sizeof(json), "state/runs/%.*s.json",
	    (int)strcspn(strstr(s, " run=") + 5, " "), strstr(s, " run=") + 5);
	free(s);
	s = read_or_die(at(dir, json), NULL);
	has(s, want);
	has(s, "\"export_files\": [");
	has(s, "\"tripped\": true}");
	free(s);
	s = read_or_die(at(dir, "state/pending"), NULL);
	line_value(s, "approval_id ", id, sizeof(id));
	has(s, want);
	free(s);

	/* Approved by its id: delivered, and the new size is the base. */
	out = expect_run(0, dir, "run", "--approve", id, (char *)NULL);
	has(out, "delivered: ");
	free(out);
	s = read_or_die(at(dir, "state/export.sizes"), NULL);
	snprintf(want, sizeof(want), "%lld %s\n", now,
	    at(dir, "export/persons.csv"));
	has(s, want);
	free(s);

	/* safety.max_shrink: off lets the same cut pass. */
	make_root(at(dir, "off"), "max_rejects: 5%",
	    "max_rejects: 5%\n  max_shrink: off", "first_run: block",
	    "first_run: allow", (char *)NULL);
	night(at(dir, "off"), 1);
	persons_and(at(dir, "off"), 0, 400);
	free(expect_run(0, at(dir, "off"), "run", (char *)NULL));
	persons_and(at(dir, "off"), 0, 270);
	out = expect_run(0, at(dir, "off"), "run", "--override",
	    (char *)NULL);
	hasnt(out, "shrank");
	free(out);
}
END_TEST

START_TEST(test_header_only)
{
	char *out, *snap;
	size_t snaplen;

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	delivered_night1(dir, "night1.xml");
	snap = read_or_die(at(dir, "state/snapshot"), &snaplen);
	tu_write(at(dir, "export"), "memberships.csv",
	    "group_id,person_id,role,state\n");
	out = expect_run(1, dir, "run", (char *)NULL);
	has(out, "memberships.csv");
	has(out, "header");
	hasnt(out, "delivered: ");
	free(out);
	ck_assert(file_is(at(dir, "state/snapshot"), snap, snaplen));
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 1);
	free(snap);
}
END_TEST

START_TEST(test_missing_column)
{
	char *out, *s;

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	night(dir, 1);
	s = read_or_die(at(dir, "export/groups.csv"), NULL);
	memcpy(s, "grp_code", 8);	/* was group_id */
	tu_write(at(dir, "export"), "groups.csv", s);
	free(s);
	out = expect_run(1, dir, "run", (char *)NULL);
	has(out, "groups.csv");
	has(out, "group_id");
	free(out);
	ck_assert(!tu_exists(at(dir, "state/snapshot")));
}
END_TEST

/* ------------------------------------------------------------------ */
/* DTD validity                                                        */

START_TEST(test_dtd_full)
{
	char file[PATH_MAX];

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	delivered_night1(dir, "night1.xml");
	snprintf(file, sizeof(file), "%s", at(dir, "outbox/night1.xml"));
	dtd_valid(file);
	dtd_valid(at(dir, "state/snapshot"));
}
END_TEST

START_TEST(test_dtd_delta)
{
	char *out, *s, file[PATH_MAX];

	make_root(dir, "first_run: block", "first_run: allow",
	    "mode: full", "mode: delta", (char *)NULL);
	delivered_night1(dir, "night1.xml");
	dtd_valid(at(dir, "outbox/night1.xml"));
	night(dir, 2);
	out = expect_run(0, dir, "run", "--override", (char *)NULL);
	keep_delivered(dir, out, "night2.xml", file, sizeof(file));
	free(out);
	dtd_valid(file);
	s = read_or_die(file, NULL);
	has(s, "<type>delta</type>");
	has(s, "recstatus=\"3\"");
	has(s, "<id>S1013</id>");
	has(s, "<userid>mia.wilson</userid>");
	has(s, "recstatus=\"1\"");
	has(s, "<id>S1016</id>");
	hasnt(s, "<id>S1001</id>");	/* unchanged: not in a delta */
	free(s);
	/* The snapshot stays a full file. */
	s = read_or_die(at(dir, "state/snapshot"), NULL);
	has(s, "<id>S1001</id>");
	hasnt(s, "<id>S1013</id>");
	hasnt(s, "recstatus");
	free(s);
	dtd_valid(at(dir, "state/snapshot"));
}
END_TEST

START_TEST(test_delta_never_replaces)
{
	char *out, *before, *after;
	size_t n1, n2;

	make_root(dir, "first_run: block", "first_run: allow",
	    "mode: full", "mode: delta",
	    "name: \"sisfeed-%Y%m%d-%H%M%S.xml\"", "name: feed.xml",
	    (char *)NULL);
	night(dir, 1);
	free(expect_run(0, dir, "run", (char *)NULL));
	ck_assert_int_eq(tu_exists(at(dir, "outbox/feed.xml")), 1);
	/* The receiver has not taken night 1's delta yet: night 2's must
	 * not replace it, and the snapshot must stay. */
	before = read_or_die(at(dir, "state/snapshot"), &n1);
	night(dir, 2);
	out = expect_run(1, dir, "run", "--override", (char *)NULL);
	has(out, "still there");
	free(out);
	after = read_or_die(at(dir, "state/snapshot"), &n2);
	ck_assert_uint_eq(n1, n2);
	ck_assert_mem_eq(before, after, n1);
	free(after);
	/* Once it is imported (gone), the next run delivers night 2. */
	ck_assert_int_eq(unlink(at(dir, "outbox/feed.xml")), 0);
	free(expect_run(0, dir, "run", "--override", (char *)NULL));
	after = read_or_die(at(dir, "outbox/feed.xml"), NULL);
	has(after, "<type>delta</type>");
	has(after, "<id>S1016</id>");
	free(after);
	free(before);
}
END_TEST

/* An IMS file as the source: a night-1 export read back, then fed
 * as tonight's export, gives the same records (nothing to do). */
START_TEST(test_source_ims)
{
	char *cfg, *src, *out;
	const char *start, *end;
	size_t len;

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	night(dir, 1);
	free(expect_run(0, dir, "run", (char *)NULL));
	free(expect_run(0, dir, "export", "-o", at(dir, "export/feed.xml"),
	    (char *)NULL));
	/* the same installation, its source now the IMS file */
	cfg = read_or_die(at(dir, "sisfeed.yaml"), &len);
	start = strstr(cfg, "source:\n");
	end = strstr(cfg, "output:\n");
	ck_assert_ptr_nonnull(start);
	ck_assert_ptr_nonnull(end);
	len = (size_t)(start - cfg) + 64 + strlen(end);
	src = malloc(len);
	ck_assert_ptr_nonnull(src);
	snprintf(src, len, "%.*ssource:\n  format: ims\n  file: "
	    "export/feed.xml\n%s", (int)(start - cfg), cfg, end);
	tu_write(dir, "sisfeed.yaml", src);
	out = expect_run(0, dir, "run", (char *)NULL);
	has(out, "nothing to do");
	free(out);
	free(src);
	free(cfg);
}
END_TEST

/* A damaged or missing snapshot index only costs a parse: the plan
 * of night 2 is the same. */
START_TEST(test_index_damaged)
{
	char *good, *out;

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	night(dir, 1);
	free(expect_run(0, dir, "run", (char *)NULL));
	ck_assert_int_eq(tu_exists(at(dir, "state/snapshot.idx")), 1);
	night(dir, 2);
	good = expect_run(3, dir, "plan", (char *)NULL);
	has(good, "persons      deletes          3");
	ck_assert_int_eq(truncate(at(dir, "state/snapshot.idx"), 100), 0);
	out = expect_run(3, dir, "plan", (char *)NULL);
	has(out, "persons      deletes          3");
	has(out, "memberships  deletes          3");
	free(out);
	ck_assert_int_eq(unlink(at(dir, "state/snapshot.idx")), 0);
	out = expect_run(3, dir, "plan", (char *)NULL);
	has(out, "persons      deletes          3");
	free(out);
	free(good);
}
END_TEST

/* An approval stands until delivered: the approved run fails in
 * delivery, and the next run with the same change set goes on without
 * a new approval; a changed export needs one again. */
START_TEST(test_approval_survives_failed_delivery)
{
	char *out, id[17];

	make_root(dir, "dir: outbox", "dir: missing-outbox", (char *)NULL);
	night(dir, 1);
	out = expect_run(3, dir, "run", (char *)NULL);
	approval_id(out, id);
	free(out);
	out = expect_run(1, dir, "run", "--approve", id, (char *)NULL);
	has(out, "deliver");
	free(out);
	ck_assert_int_eq(tu_exists(at(dir, "state/snapshot")), 0);
	ck_assert_int_eq(mkdir(at(dir, "missing-outbox"), 0755), 0);
	out = expect_run(0, dir, "run", (char *)NULL);
	has(out, "approved earlier");
	free(out);
	ck_assert_int_eq(tu_exists(at(dir, "state/snapshot")), 1);
	ck_assert_int_eq(tu_exists(at(dir, "state/approved")), 0);
	out = last_line(at(dir, "state/runs.log"));
	has(out, "approved_by=");
	free(out);
	/* the approval was used up: night 2 blocks again */
	night(dir, 2);
	free(expect_run(3, dir, "run", (char *)NULL));
}
END_TEST

/* A state directory restored from a backup (cp -a keeps mtimes) keeps
 * its snapshot's identity: the index is used, the approval id holds. */
START_TEST(test_state_restored)
{
	char *out, *argv[5], id1[17], id2[17];

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	night(dir, 1);
	free(expect_run(0, dir, "run", (char *)NULL));
	night(dir, 2);
	out = expect_run(3, dir, "run", (char *)NULL);
	approval_id(out, id1);
	free(out);
	ck_assert_int_eq(rename(at(dir, "state"), at(dir, "state.old")), 0);
	argv[0] = (char *)"/bin/cp";
	argv[1] = (char *)"-a";
	argv[2] = (char *)at(dir, "state.old");
	argv[3] = (char *)at(dir, "state");
	argv[4] = NULL;
	ck_assert_int_eq(tu_run(argv, NULL, 30), 0);
	out = expect_run(3, dir, "-v", "run", (char *)NULL);
	has(out, "snapshot read from its index");
	approval_id(out, id2);
	ck_assert_str_eq(id1, id2);
	free(out);
}
END_TEST

START_TEST(test_dtd_gzip)
{
	char *out, *s, file[PATH_MAX];
	size_t len;

	make_root(dir, "first_run: block", "first_run: allow",
	    "compress: none", "compress: gzip",
	    "%S.xml\"", "%S.xml.gz\"", (char *)NULL);
	night(dir, 1);
	out = expect_run(0, dir, "run", (char *)NULL);
	has(out, ".xml.gz");
	keep_delivered(dir, out, "night1.xml.gz", file, sizeof(file));
	free(out);
	s = read_or_die(file, &len);
	ck_assert_uint_gt(len, 2);
	ck_assert_msg((unsigned char)s[0] == 0x1f &&
	    (unsigned char)s[1] == 0x8b, "%s is not gzip", file);
	free(s);
	dtd_valid(file);
	out = NULL;
	ck_assert_int_eq(prog(tu_sisfeed(), &out, "validate", file,
	    (char *)NULL), 0);
	has(out, "19 persons");
	free(out);
}
END_TEST

/* ------------------------------------------------------------------ */
/* determinism, validate, diff                                         */

START_TEST(test_export_deterministic)
{
	char a[PATH_MAX], b[PATH_MAX], *out, *s;

	make_root(dir, (char *)NULL);
	night(dir, 1);
	snprintf(a, sizeof(a), "%s", at(dir, "a.xml"));
	snprintf(b, sizeof(b), "%s", at(dir, "b.xml"));
	free(expect_run(0, dir, "export", "-o", a, (char *)NULL));
	free(expect_run(0, dir, "export", "-o", b, (char *)NULL));
	ck_assert_msg(same_file(a, b), "two exports differ");
	/* export touches no state. */
	ck_assert(!tu_exists(at(dir, "state/snapshot")));
	ck_assert_int_eq(count_dir(at(dir, "outbox")), 0);
	dtd_valid(a);
	/* To stdout: the same bytes. */
	s = read_or_die(a, NULL);
	out = expect_run(0, dir, "export", (char *)NULL);
	ck_assert_str_eq(out, s);
	free(out);
	free(s);
}
END_TEST

/* export -o writes straight to a FIFO or device, follows a symbolic
 * link to a file, and refuses one to nothing: it replaced whatever was
 * at the path by a rename (as root, /dev/null became a file). */
START_TEST(test_export_targets)
{
	char a[PATH_MAX], *want, *got, *out;
	size_t wlen, glen;
	struct stat st;
	ssize_t n;
	int fd;

	make_root(dir, (char *)NULL);
	night(dir, 1);
	snprintf(a, sizeof(a), "%s", at(dir, "a.xml"));
	free(expect_run(0, dir, "export", "-o", a, (char *)NULL));
	want = read_or_die(a, &wlen);
	ck_assert_uint_lt(wlen, 60000);		/* fits in a pipe */

	/* A FIFO: open for both ends here, so the export never waits. */
	ck_assert_int_eq(mkfifo(at(dir, "fifo"), 0600), 0);
	ck_assert_int_ge(fd = open(at(dir, "fifo"), O_RDWR | O_NONBLOCK), 0);
	free(expect_run(0, dir, "export", "-o", at(dir, "fifo"),
	    (char *)NULL));
	got = calloc(1, wlen + 16);
	ck_assert_ptr_nonnull(got);
	for (glen = 0; glen < wlen + 16; glen += (size_t)n)
		if ((n = read(fd, got + glen, wlen + 16 - glen)) <= 0)
			break;
	close(fd);
	ck_assert_uint_eq(glen, wlen);
	ck_assert_int_eq(memcmp(got, want, wlen), 0);
	free(got);
	ck_assert_int_eq(lstat(at(dir, "fifo"), &st), 0);
	ck_assert(S_ISFIFO(st.st_mode));

	/* A character device (root only: the null device, made here). */
	if (geteuid() == 0 && mknod(at(dir, "null"), S_IFCHR | 0666,
	    makedev(1, 3)) == 0) {
		free(expect_run(0, dir, "export", "-o", at(dir, "null"),
		    (char *)NULL));
		ck_assert_int_eq(lstat(at(dir, "null"), &st), 0);
		ck_assert(S_ISCHR(st.st_mode));
	}

	/* A symbolic link is followed: the file it names is replaced. */
	tu_write(dir, "target.xml", "old");
	ck_assert_int_eq(symlink("target.xml", at(dir, "link.xml")), 0);
	free(expect_run(0, dir, "export", "-o", at(dir, "link.xml"),
	    (char *)NULL));
	ck_assert_int_eq(lstat(at(dir, "link.xml"), &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	ck_assert(same_file(at(dir, "target.xml"), a));
	/* ... and one that names nothing is refused. */
	ck_assert_int_eq(symlink("nowhere.xml", at(dir, "dangling.xml")), 0);
	out = expect_run(1, dir, "export", "-o", at(dir, "dangling.xml"),
	    (char *)NULL);
	has(out, "a symbolic link to nothing is refused");
	free(out);
	ck_assert(!tu_exists(at(dir, "nowhere.xml")));
	free(want);
}
END_TEST

/* Write dir/name: the file at src with tf inserted after its first
 * member's <status>.  Returns the new file's path (static). */
static const char *
with_timeframe(const char *src, const char *name, const char *tf)
{
	static char path[PATH_MAX];
	char *x, *p, *t;
	size_t need;

	ck_assert_ptr_nonnull(x = tu_read(src, NULL));
	ck_assert_ptr_nonnull(p = strstr(x, "<status>1</status>\n"));
	p += strlen("<status>1</status>\n");
	need = strlen(x) + strlen(tf) + 1;
	ck_assert_ptr_nonnull(t = malloc(need));
	snprintf(t, need, "%.*s%s%s", (int)(p - x), x, tf, p);
	snprintf(path, sizeof(path), "%s", tu_write(dir, name, t));
	free(t);
	free(x);
	return path;
}

/* sisfeed diff a b: its exit (0 no change, 1 changes) and its
 * memberships line "memberships: want". */
static void
diff_members(const char *a, const char *b, const char *want)
{
	char line[128], *out = NULL;
	int rc;

	rc = prog(tu_sisfeed(), &out, "diff", a, b, (char *)NULL);
	ck_assert_msg(rc == (strncmp(want, "0 inserts, 0 updates", 20) != 0),
	    "diff: exit %d:\n%s", rc, out);
	snprintf(line, sizeof(line), "memberships: %s", want);
	has(out, line);
	free(out);
}

/*
 * A role timeframe in the diff (issue 10): a snapshot without dates
 * (as every snapshot before them) against the same export is no change;
 * dates set, or one moved by a day, are a membership update.
 */
START_TEST(test_diff_role_timeframes)
{
	char f1[PATH_MAX], f2[PATH_MAX], f3[PATH_MAX], *out = NULL;
	int rc;

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	delivered_night1(dir, "night1.xml");
	snprintf(f1, sizeof(f1), "%s", at(dir, "outbox/night1.xml"));
	snprintf(f2, sizeof(f2), "%s", with_timeframe(f1, "dated.xml",
	    "        <timeframe>\n"
	    "          <begin restrict=\"1\">2026-08-15</begin>\n"
	    "          <end restrict=\"1\">2027-06-30</end>\n"
	    "        </timeframe>\n"));
	snprintf(f3, sizeof(f3), "%s", with_timeframe(f1, "moved.xml",
	    "        <timeframe>\n"
	    "          <begin restrict=\"1\">2026-08-15</begin>\n"
	    "          <end restrict=\"1\">2027-07-01</end>\n"
	    "        </timeframe>\n"));
	rc = prog(tu_sisfeed(), &out, "validate", f2, (char *)NULL);
	ck_assert_msg(rc == 0, "validate: exit %d:\n%s", rc, out);
	has(out, " 0 problems");
	free(out);
	diff_members(f1, f1, "0 inserts, 0 updates, 0 deletes");
	diff_members(f1, f2, "0 inserts, 1 updates, 0 deletes");
	diff_members(f2, f3, "0 inserts, 1 updates, 0 deletes");
}
END_TEST

START_TEST(test_validate_and_diff)
{
	char f1[PATH_MAX], f2[PATH_MAX], *out = NULL;
	int rc;

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	delivered_night1(dir, "night1.xml");
	snprintf(f1, sizeof(f1), "%s", at(dir, "outbox/night1.xml"));
	night(dir, 2);
	out = expect_run(0, dir, "run", "--override", (char *)NULL);
	keep_delivered(dir, out, "night2.xml", f2, sizeof(f2));
	free(out);

	rc = prog(tu_sisfeed(), &out, "validate", f1, (char *)NULL);
	ck_assert_msg(rc == 0, "validate: exit %d:\n%s", rc, out);
	has(out, "19 persons, 6 groups, 23 memberships, 0 problems");
	free(out);

	rc = prog(tu_sisfeed(), &out, "diff", f1, f2, (char *)NULL);
	ck_assert_msg(rc == 1, "diff: exit %d:\n%s", rc, out);
	has(out, "- person S1013\n");
	has(out, "- person S1014\n");
	has(out, "- person S1015\n");
	has(out, "+ person S1016\n");
	has(out, "~ person S1002\n");
	has(out, "- membership ENG-7B S1013 01\n");
	has(out, "persons: 1 inserts, 2 updates, 3 deletes");
	free(out);

	rc = prog(tu_sisfeed(), &out, "diff", f1, f1, (char *)NULL);
	ck_assert_msg(rc == 0, "diff X X: exit %d:\n%s", rc, out);
	hasnt(out, "person S");
	free(out);

	/* A file that is not IMS Enterprise. */
	tu_write(dir, "junk.xml", "<enterprise><person>\n");
	rc = prog(tu_sisfeed(), &out, "validate", at(dir, "junk.xml"),
	    (char *)NULL);
	ck_assert_int_eq(rc, 1);
	free(out);
}
END_TEST

/* validate --profile: the profile's receiver rules on top of the DTD;
 * a PIFU-IMS file is checked against the PIFU-IMS XSD, not the DTD. */
START_TEST(test_validate_profile)
{
	static const char *const dup =
	    "<?xml version=\"1.0\"?>\n<enterprise>\n"
	    "<properties><datasource>d</datasource><datetime>2026-01-01"
	    "</datetime></properties>\n"
	    "<person><sourcedid><source>s</source><id>P1</id></sourcedid>\n"
	    "<userid>ann</userid><name><fn>Ann A</fn><n><family>A</family>"
	    "<given>Ann</given></n></name></person>\n"
	    "<person><sourcedid><source>s</source><id>P2</id></sourcedid>\n"
	    "<userid>ANN</userid><name><fn>Ann B</fn><n><family>B</family>"
	    "<given>Ann</given></n></name></person>\n"
	    "<group><sourcedid><source>s</source><id>G1</id></sourcedid>\n"
	    "<description><short>Math</short></description></group>\n"
	    "<group><sourcedid><source>s</source><id>G2</id></sourcedid>\n"
	    "<description><short>Math</short></description></group>\n"
	    "</enterprise>\n";
	static const char *const pifu =
	    "<?xml version=\"1.0\"?>\n<enterprise xmlns=\"" PIFU_NS "\">\n"
	    "<properties><datasource>d</datasource><type>full</type>"
	    "<datetime>2026-01-01</datetime></properties>\n"
	    "<person><sourcedid><source>s</source><id>P1</id></sourcedid>\n"
	    "<userid useridtype=\"personNIN\">01010112345</userid>\n"
	    "<userid useridtype=\"username\">ann</userid>\n"
	    "<name><fn>Ann A</fn><n><family>A</family><given>Ann</given></n>"
	    "</name></person>\n"
	    "</enterprise>\n";
	char *out = NULL;
	int rc;

	make_root(dir, (char *)NULL);
	tu_write(dir, "dup.xml", dup);
	rc = prog(tu_sisfeed(), &out, "validate", at(dir, "dup.xml"),
	    (char *)NULL);
	ck_assert_msg(rc == 0, "validate: exit %d:\n%s", rc, out);
	has(out, "2 persons, 2 groups, 0 memberships, 0 problems, "
	    "0 DTD violations");
	free(out);
	rc = prog(tu_sisfeed(), &out, "validate", "--profile", "moodle",
	    at(dir, "dup.xml"), (char *)NULL);
	ck_assert_msg(rc == 1, "validate --profile moodle: exit %d:\n%s", rc,
	    out);
	has(out, "dup.xml:4: userid: person 'P1': the same login as another "
	    "person");
	has(out, "dup.xml:6: userid: person 'P2': the same login");
	has(out, "group 'G1': the same short name as another group");
	has(out, "4 problems (4 by the moodle profile's rules), "
	    "0 DTD violations");
	free(out);
	rc = prog(tu_sisfeed(), &out, "validate", "--profile", "blackboard",
	    at(dir, "dup.xml"), (char *)NULL);
	ck_assert_int_eq(rc, 2);
	has(out, "'blackboard' is not a profile");
	free(out);

	/* PIFU-IMS: the XSD, not the DTD (<properties lang> is missing) */
	tu_write(dir, "pifu.xml", pifu);
	rc = prog(tu_sisfeed(), &out, "validate", "--profile", "itslearning",
	    at(dir, "pifu.xml"), (char *)NULL);
	ck_assert_msg(rc == 1, "validate pifu: exit %d:\n%s", rc, out);
	has(out, "pifu.xml:3: XSD: Element '{" PIFU_NS "}properties': The "
	    "attribute 'lang' is required but missing.");
	has(out, "1 persons, 0 groups, 0 memberships, 0 problems (0 by the "
	    "itslearning profile's rules), 1 XSD violations");
	hasnt(out, "DTD");
	free(out);
}
END_TEST

/* export writes what a run would deliver: the profile's screen first
 * (itslearning: district is skoleeier), and validate --profile passes
 * on it against the PIFU-IMS XSD. */
START_TEST(test_export_profile)
{
	char *out = NULL;
	int rc;

	make_root(dir, "mode: full", "profile: itslearning", (char *)NULL);
	night(dir, 1);
	out = expect_run(0, dir, "export", "-o", at(dir, "pifu.xml"),
	    (char *)NULL);
	has(out, "is not a PIFU-IMS adminperiod");
	free(out);
	rc = prog(tu_sisfeed(), &out, "validate", "--profile", "itslearning",
	    at(dir, "pifu.xml"), (char *)NULL);
	ck_assert_msg(rc == 0, "validate: exit %d:\n%s", rc, out);
	has(out, "19 persons, 6 groups, 23 memberships, 0 problems (0 by the "
	    "itslearning profile's rules), 0 XSD violations");
	free(out);
}
END_TEST

/* check reads the export: a mapping that does not fit the header fails
 * at install time, naming the header found. */
START_TEST(test_check_reads_export)
{
	char *out;

	make_root(dir, (char *)NULL);
	night(dir, 1);
	out = expect_run(0, dir, "check", (char *)NULL);
	has(out, "ok   source read: 19 persons, 6 groups, 23 memberships");
	free(out);
	tu_write(at(dir, "export"), "persons.csv",
	    "StudentID;username;first_name;last_name;email;active;profile\n"
	    "S1;a;A;B;;1;Student\n");
	out = expect_run(1, dir, "check", (char *)NULL);
	has(out, "FAIL source read: ");
	has(out, "persons.csv:1: column 'student_id' (field id) not in "
	    "header; the header has: StudentID;username;first_name;"
	    "last_name;email;active;profile (it looks ';'-separated: set "
	    "source.delimiter)");
	free(out);
}
END_TEST

/* validate checks the built-in DTD (no DTD file around); diff counts
 * dangling references instead of refusing the file. */
START_TEST(test_validate_dtd_diff_dangling)
{
	static const char *const bad =
	    "<?xml version=\"1.0\"?>\n<enterprise>\n"
	    "<person><sourcedid><source>s</source><id>P1</id></sourcedid>\n"
	    "<name><n><family>F</family></n></name></person>\n"
	    "<group><sourcedid><source>s</source><id>G1</id></sourcedid>\n"
	    "<description><short>G</short></description>\n"
	    "<relationship relation=\"1\"><sourcedid><source>s</source>"
	    "<id>GONE</id></sourcedid><label>Parent</label></relationship>"
	    "</group>\n"
	    "<membership><sourcedid><source>s</source><id>G1</id>"
	    "</sourcedid>\n<member><sourcedid><source>s</source><id>P1</id>"
	    "</sourcedid><idtype>1</idtype><role roletype=\"01\">"
	    "<status>1</status></role></member>\n<member><sourcedid>"
	    "<source>s</source><id>NOBODY</id></sourcedid><idtype>1</idtype>"
	    "<role roletype=\"01\"><status>1</status></role></member>"
	    "</membership>\n</enterprise>\n";
	char *out = NULL;
	int rc;

	make_root(dir, (char *)NULL);
	tu_write(dir, "bad.xml", bad);
	rc = prog(tu_sisfeed(), &out, "validate", at(dir, "bad.xml"),
	    (char *)NULL);
	ck_assert_msg(rc == 1, "validate: exit %d:\n%s", rc, out);
	/* no <properties>, <name> without <fn>: the DTD says no */
	has(out, "bad.xml:4: DTD: Element name content does not follow");
	has(out, "parent: note: unknown group 'GONE'");
	has(out, "person 'NOBODY' unknown");
	has(out, "bad.xml:2: DTD: Element enterprise content does not follow");
	has(out, "1 persons, 1 groups, 1 memberships, 2 problems, "
	    "2 DTD violations");
	free(out);
	out = NULL;
	rc = prog(tu_sisfeed(), &out, "diff", at(dir, "bad.xml"),
	    at(dir, "bad.xml"), (char *)NULL);
	ck_assert_msg(rc == 0, "diff: exit %d:\n%s", rc, out);
	has(out, "2 dangling or bad records");
	free(out);
}
END_TEST

/* ------------------------------------------------------------------ */
/* status, file modes                                                  */

START_TEST(test_status)
{
	char *out, id[17], host[256] = "", line[400];
	int rc;

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	out = expect_run(3, dir, "status", (char *)NULL);
	has(out, "SISFEED UNKNOWN - last_run: no run recorded yet");
	has(out, "snapshot: none");
	free(out);
	delivered_night1(dir, "night1.xml");
	out = expect_run(0, dir, "status", (char *)NULL);
	has(out, "SISFEED OK - ");
	free(out);
	night(dir, 2);
	out = expect_run(3, dir, "run", (char *)NULL);
	approval_id(out, id);
	free(out);

	/* A block waits: WARNING, with the id and the approve line. */
	out = expect_run(1, dir, "status", (char *)NULL);
	has(out, "SISFEED WARNING - pending: a blocked run waits for "
	    "approval, id ");
	has(out, id);
	has(out, "with: sisfeed -c ");
	ck_assert_int_eq(gethostname(host, sizeof(host) - 1), 0);
	snprintf(line, sizeof(line), "\npending: id %s; approve on %s with: "
	    "sisfeed -c ", id, host);
	has(out, line);
	hasnt(out, "snapshot: none");
	has(out, "last run: ");
	has(out, "status=blocked");
	free(out);
	out = expect_run(1, dir, "status", "--json", (char *)NULL);
	has(out, "\"schema_version\": 1,");
	has(out, "\"status\": \"WARNING\",");
	has(out, "\"exit_code\": 1,");
	has(out, "{\"name\": \"pending\", \"status\": \"WARNING\"");
	has(out, "\"approval_id\": \"");
	has(out, "\"last_success\": \"20");
	free(out);
	free(expect_run(3, dir, "status", "--xml", (char *)NULL));

	/* Approved: OK again; spooled mail is a WARNING. */
	free(expect_run(0, dir, "run", "--approve", id, (char *)NULL));
	out = expect_run(0, dir, "status", (char *)NULL);
	hasnt(out, "pending: ");
	has(out, "approved_by=");
	free(out);
	mkdir(at(dir, "state/spool"), 0700);
	tu_write(at(dir, "state/spool"), "1.mail", "Subject: x\n\nx\n");
	out = expect_run(1, dir, "status", (char *)NULL);
	has(out, "WARNING  mail_spool   1 message not sent yet");
	free(out);
	unlink(at(dir, "state/spool/1.mail"));

	/* A failed run: CRITICAL. */
	unlink(at(dir, "export/groups.csv"));
	free(expect_run(1, dir, "run", (char *)NULL));
	rc = sisfeed(dir, &out, "status", (char *)NULL);
	ck_assert_msg(rc == 2, "status: exit %d:\n%s", rc, out);
	has(out, "SISFEED CRITICAL - last_run: run ");
	free(out);
}
END_TEST

/*
 * The dead export and the dead job: source.max_age fails a run on an
 * export older than that; monitor.max_age makes status CRITICAL when
 * the last success is older; the metrics file after each run.
 */
START_TEST(test_max_age_and_metrics)
{
	char *out, *s, old[PATH_MAX];
	struct stat st, st2;
	struct timeval tv[2];
	int i;

	make_root(dir, "first_run: block", "first_run: allow",
	    "dir: outbox", "dir: outbox\n  mode: 0604",
	    "format: csv", "format: csv\n  max_age: 26h",
	    "history: 7\n", "history: 7\nmonitor: {max_age: 26h, metrics: "
	    "sisfeed.prom}\n", (char *)NULL);
	night(dir, 1);
	out = expect_run(0, dir, "run", (char *)NULL);
	line_value(out, "delivered: ", old, sizeof(old));
	ck_assert_int_eq(stat(old, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0604);	/* delivery.mode */
	free(out);
	ck_assert_int_eq(stat(at(dir, "sisfeed.prom"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	s = read_or_die(at(dir, "sisfeed.prom"), NULL);
	has(s, "# TYPE sisfeed_last_success_timestamp_seconds gauge\n");
	has(s, "sisfeed_last_run_status{status=\"completed\"} 1\n");
	has(s, "sisfeed_last_run_status{status=\"failed\"} 0\n");
	has(s, "sisfeed_changes{type=\"persons\",op=\"inserts\"} 19\n");
	free(s);

	/* Two days old: the run fails, status says why. */
	tv[0].tv_sec = tv[1].tv_sec = time(NULL) - 2 * 86400;
	tv[0].tv_usec = tv[1].tv_usec = 0;
	for (i = 0; i < 3; i++) {
		static const char *const f[] = { "export/persons.csv",
		    "export/groups.csv", "export/memberships.csv" };

		ck_assert_int_eq(utimes(at(dir, f[i]), tv), 0);
	}
	out = expect_run(1, dir, "run", (char *)NULL);
	has(out, "was last changed 2d 0h ago, over source.max_age (1d 2h)");
	free(out);
	s = read_or_die(at(dir, "sisfeed.prom"), NULL);
	has(s, "sisfeed_last_run_status{status=\"failed\"} 1\n");
	free(s);
	ck_assert_int_eq(stat(at(dir, "sisfeed.prom"), &st), 0);
	s = read_or_die(at(dir, "sisfeed.prom"), NULL);
	out = expect_run(2, dir, "status", (char *)NULL);
	has(out, "CRITICAL export_age   2d 0h ago (limit 1d 2h)");
	free(out);
	/* status leaves the metrics file as the last run wrote it. */
	ck_assert_msg(file_is(at(dir, "sisfeed.prom"), s, strlen(s)),
	    "status rewrote the metrics file");
	ck_assert_int_eq(stat(at(dir, "sisfeed.prom"), &st2), 0);
	ck_assert_int_eq(st2.st_ino, st.st_ino);
	ck_assert_int_eq(st2.st_mtim.tv_nsec, st.st_mtim.tv_nsec);
	free(s);

	/* The last success two days ago: CRITICAL. */
	strftime(old, sizeof(old), "%Y-%m-%dT%H:%M:%SZ run=X status=completed"
	    "\n", gmtime(&tv[0].tv_sec));
	tu_write(at(dir, "state"), "runs.log", old);
	out = expect_run(2, dir, "status", (char *)NULL);
	has(out, "CRITICAL last_success 2d 0h ago (limit 1d 2h)");
	free(out);
}
END_TEST

START_TEST(test_file_modes)
{
	char *out;

	make_root(dir, (char *)NULL);
	night(dir, 1);
	free(expect_run(3, dir, "run", (char *)NULL));
	ck_assert_uint_eq(mode_of(at(dir, "state")), 0700);
	ck_assert_uint_eq(mode_of(at(dir, "state/pending")), 0600);
	ck_assert_uint_eq(mode_of(at(dir, "state/runs.log")), 0600);
	ck_assert_uint_eq(mode_of(at(dir, "state/lock")), 0600);
	out = expect_run(0, dir, "run", "--override", (char *)NULL);
	free(out);
	ck_assert_uint_eq(mode_of(at(dir, "state")), 0700);
	ck_assert_uint_eq(mode_of(at(dir, "state/snapshot")), 0600);
	ck_assert_uint_eq(mode_of(at(dir, "state/runs.log")), 0600);
	ck_assert_uint_eq(mode_of(at(dir, "state/runs")), 0700);
	ck_assert_uint_eq(mode_of(at(dir, "state/rejects")), 0700);
}
END_TEST

/* ------------------------------------------------------------------ */
/* the command line: help, version, --config=, usage, diff's trouble    */

START_TEST(test_cli)
{
	char *out, *s, arg[PATH_MAX + 16], mailcfg[8192];
	int rc;

	make_root(dir, "history: 7\n", "history: 7\n", (char *)NULL);
	night(dir, 1);
	/* Help needs no config. */
	rc = prog(tu_sisfeed(), &out, "-c", at(dir, "none.yaml"), "run",
	    "--help", (char *)NULL);
	ck_assert_int_eq(rc, 0);
	has(out, "usage:");
	free(out);
	ck_assert_int_eq(prog(tu_sisfeed(), &out, "-V", (char *)NULL), 0);
	has(out, "sisfeed ");
	free(out);
	snprintf(arg, sizeof(arg), "--config=%s", at(dir, "sisfeed.yaml"));
	rc = prog(tu_sisfeed(), &out, arg, "status", (char *)NULL);
	ck_assert_msg(rc == 3, "--config=: exit %d:\n%s", rc, out);
	has(out, "SISFEED UNKNOWN - last_run: no run recorded yet");
	free(out);
	out = expect_run(3, dir, "status", "extra", (char *)NULL);
	has(out, "usage:");
	free(out);
	/* diff(1): 2 is trouble, never "they differ". */
	rc = prog(tu_sisfeed(), &out, "diff", at(dir, "no.xml"),
	    at(dir, "no.xml"), (char *)NULL);
	ck_assert_int_eq(rc, 2);
	has(out, "no.xml");
	free(out);
	/* A mistyped approval id: exit 2 at once, no run, no mail. */
	free(expect_run(3, dir, "run", (char *)NULL));
	out = expect_run(2, dir, "run", "--approve", "0123456789abcdef",
	    (char *)NULL);
	has(out, "the run waiting for approval has id ");
	free(out);
	ck_assert_int_eq(count_dir(at(dir, "state/runs")), 1);
	/* A tab in the YAML: said plainly, with line and column. */
	tu_write(dir, "tab.yaml", "site: x\n\tstate_dir: /tmp\n");
	rc = prog(tu_sisfeed(), &out, "-c", at(dir, "tab.yaml"), "status",
	    (char *)NULL);
	ck_assert_int_eq(rc, 2);
	has(out, "tab.yaml:2: a tab at column 1: YAML indents with spaces");
	free(out);
	/* One "mail: " in front of a mail error, not two. */
	s = read_or_die(at(dir, "sisfeed.yaml"), NULL);
	ck_assert_int_lt(snprintf(mailcfg, sizeof(mailcfg), "%smail:\n  smtp: "
	    "smtp://127.0.0.1:%d\n  starttls: off\n  from: "
	    "sisfeed@example.org\n  to: [admins@example.org]\n", s,
	    tu_free_port()), (int)sizeof(mailcfg));
	free(s);
	tu_write(dir, "mail.yaml", mailcfg);
	rc = prog(tu_sisfeed(), &out, "-c", at(dir, "mail.yaml"), "check",
	    "--mail", (char *)NULL);
	ck_assert_msg(rc == 1, "check --mail: exit %d:\n%s", rc, out);
	has(out, "\nFAIL mail: smtp://127.0.0.1:");
	hasnt(out, "mail: mail:");
	free(out);
}
END_TEST

/*
 * monitor.heartbeat: fetched after a run that delivered or had nothing
 * to do, never after a failed or blocked one; a heartbeat that cannot
 * be fetched is a warning and the run's outcome stays.  The server is
 * tests/http-recorder.py on 127.0.0.1, which logs each request line
 * before it answers.
 */
START_TEST(test_heartbeat)
{
	char *argv[5], port[16], script[PATH_MAX], mon[200], log[PATH_MAX];
	char *out, *got, id[17];
	pid_t pid;
	int p = tu_free_port();

	snprintf(port, sizeof(port), "%d", p);
	snprintf(script, sizeof(script), "%s/tests/http-recorder.py",
	    tu_top());
	snprintf(log, sizeof(log), "%s", at(dir, "requests.log"));
	argv[0] = "/usr/bin/python3";
	argv[1] = script;
	argv[2] = port;
	argv[3] = log;
	argv[4] = NULL;
	pid = tu_server_start(argv, at(dir, "http.log"), p);
	snprintf(mon, sizeof(mon), "history: 7\nmonitor: {heartbeat: "
	    "\"http://127.0.0.1:%d/ping/sisfeed-test\"}\n", p);
	make_root(dir, "first_run: block", "first_run: allow", "history: 7\n",
	    mon, (char *)NULL);
	night(dir, 1);

	free(expect_run(0, dir, "run", (char *)NULL));	/* delivered */
	got = read_or_die(log, NULL);
	ck_assert_str_eq(got, "GET /ping/sisfeed-test HTTP/1.1\n");
	free(got);
	out = expect_run(0, dir, "run", (char *)NULL);	/* nothing to do */
	hasnt(out, "heartbeat");
	free(out);
	got = read_or_die(log, NULL);
	ck_assert_str_eq(got, "GET /ping/sisfeed-test HTTP/1.1\n"
	    "GET /ping/sisfeed-test HTTP/1.1\n");
	free(got);

	unlink(at(dir, "export/groups.csv"));		/* failed */
	free(expect_run(1, dir, "run", (char *)NULL));
	night(dir, 2);					/* blocked */
	out = expect_run(3, dir, "run", (char *)NULL);
	approval_id(out, id);
	free(out);
	got = read_or_die(log, NULL);
	ck_assert_uint_eq(strlen(got), 2 * strlen("GET /ping/sisfeed-test "
	    "HTTP/1.1\n"));
	free(got);

	/* Nobody listens: a warning; the approved run still delivers. */
	tu_server_stop(pid, SIGTERM);
	out = expect_run(0, dir, "run", "--approve", id, (char *)NULL);
	has(out, "warning: heartbeat http://127.0.0.1:");
	has(out, "delivered: ");
	free(out);
}
END_TEST

/*
 * One owner of the state: root drops to the state directory's owner
 * (nobody here), so every file it writes belongs to that owner; any
 * other user is refused with the sudo line.  Needs root.
 */
START_TEST(test_run_as_owner)
{
	char *out, id[17], cfg[PATH_MAX];
	const char *state = at(dir, "state");
	struct stat st;
	int rc;

	if (geteuid() != 0) {
		fprintf(stderr, "test_run_as_owner: skipped, needs root\n");
		return;
	}
	ck_assert_int_eq(chmod(dir, 0755), 0);
	make_root(dir, (char *)NULL);
	night(dir, 1);
	ck_assert_int_eq(mkdir(state, 0700), 0);
	ck_assert_int_eq(chown(state, 65534, 65534), 0);
	ck_assert_int_eq(chown(at(dir, "outbox"), 65534, 65534), 0);
	out = expect_run(3, dir, "run", (char *)NULL);
	has(out, "with: sudo -u nobody sisfeed -c ");
	approval_id(out, id);
	free(out);
	free(expect_run(0, dir, "run", "--approve", id, (char *)NULL));
	ck_assert_int_eq(stat(at(dir, "state/snapshot"), &st), 0);
	ck_assert_uint_eq(st.st_uid, 65534);
	ck_assert_int_eq(stat(at(dir, "state/snapshot.idx"), &st), 0);
	ck_assert_uint_eq(st.st_uid, 65534);
	ck_assert_int_eq(stat(at(dir, "state/runs.log"), &st), 0);
	ck_assert_uint_eq(st.st_uid, 65534);
	/* Another user: refused, told the exact line, nothing touched. */
	snprintf(cfg, sizeof(cfg), "%s", at(dir, "sisfeed.yaml"));
	rc = prog("/usr/bin/setpriv", &out, "--reuid=12345", "--regid=12345",
	    "--clear-groups", tu_sisfeed(), "-c", cfg, "run", (char *)NULL);
	ck_assert_msg(rc == 2, "run as uid 12345: exit %d:\n%s", rc, out);
	has(out, "belongs to nobody, not to uid 12345");
	has(out, "sudo -u nobody ");
	has(out, " run\n");
	free(out);
	/* status as another user: UNKNOWN, with the line that works. */
	rc = prog("/usr/bin/setpriv", &out, "--reuid=12345", "--regid=12345",
	    "--clear-groups", tu_sisfeed(), "-c", cfg, "status", (char *)NULL);
	ck_assert_msg(rc == 3, "status as uid 12345: exit %d:\n%s", rc, out);
	has(out, "SISFEED UNKNOWN - state: ");
	has(out, "; run status as the state directory's owner: sudo -u "
	    "nobody ");
	has(out, " status\n");
	free(out);
	rc = prog("/usr/bin/setpriv", &out, "--reuid=12345", "--regid=12345",
	    "--clear-groups", tu_sisfeed(), "-c", cfg, "status", "--json",
	    (char *)NULL);
	ck_assert_msg(rc == 3, "status --json as uid 12345: exit %d:\n%s", rc,
	    out);
	has(out, "{\"name\": \"state\", \"status\": \"UNKNOWN\"");
	has(out, " status --json\"}");
	free(out);
}
END_TEST

/* ------------------------------------------------------------------ */
/* safety nets: approvals with a reason and an expiry                  */

/* Rewrite the "at" line of STATE/approved to ago seconds before now. */
static void
approval_backdate(const char *root, long ago)
{
	char *s = read_or_die(at(root, "state/approved"), NULL), *p, *nl;
	char buf[8192];

	p = strstr(s, "\nat ");
	ck_assert_ptr_nonnull(p);
	nl = strchr(p + 1, '\n');
	ck_assert_ptr_nonnull(nl);
	snprintf(buf, sizeof(buf), "%.*s\nat %lld%s", (int)(p - s), s,
	    (long long)time(NULL) - ago, nl);
	tu_write(at(root, "state"), "approved", buf);
	free(s);
}

START_TEST(test_approval_reason_and_expiry)
{
	char *out, *s, id[17];

	make_root(dir, "dir: outbox", "dir: missing-outbox",
	    "first_run: block", "first_run: block\n  approval_ttl: 2d\n"
	    "  approval_reason: required", (char *)NULL);
	night(dir, 1);
	out = expect_run(3, dir, "run", (char *)NULL);
	approval_id(out, id);
	free(out);
	/* the config wants a reason */
	out = expect_run(2, dir, "run", "--approve", id, (char *)NULL);
	has(out, "--reason");
	free(out);
	setenv("SUDO_USER", "alice", 1);
	out = expect_run(1, dir, "run", "--approve", id, "--reason",
	    "term starts monday", (char *)NULL);
	unsetenv("SUDO_USER");
	free(out);
	s = read_or_die(at(dir, "state/approved"), NULL);
	has(s, "alice (sudo as ");
	has(s, "reason term starts monday");
	has(s, "scope first_run");
	free(s);
	ck_assert_int_eq(mkdir(at(dir, "missing-outbox"), 0755), 0);
	/* a minute short of two days: it still stands ... */
	approval_backdate(dir, 2 * 86400 - 60);
	ck_assert_int_eq(rmdir(at(dir, "missing-outbox")), 0);
	out = expect_run(1, dir, "run", (char *)NULL);
	has(out, "approved earlier");
	free(out);
	ck_assert_int_eq(mkdir(at(dir, "missing-outbox"), 0755), 0);
	/* ... and at two days it has run out: blocked again */
	approval_backdate(dir, 2 * 86400);
	out = expect_run(3, dir, "run", (char *)NULL);
	has(out, "ran out");
	free(out);
	out = expect_run(0, dir, "run", "--approve", id, "--reason",
	    "checked \"again\"", (char *)NULL);
	free(out);
	s = read_or_die(at(dir, "state/runs.log"), NULL);
	has(s, "reason=\"checked ?again?\"");
	has(s, "expires=");
	free(s);
}
END_TEST

/* One school loses 3 students: only its own limit trips; plan shows
 * the org with samples; an approval of it delivers. */
START_TEST(test_org_limit)
{
	char *out, id[17];

	make_root(dir,
	    "deletes: [5%, 500]}", "deletes: 50%, deactivations: off}",
	    "memberships: {inserts: 25%, updates: 25%, deletes: 5%}",
	    "memberships: {inserts: 25%, updates: 25%, deletes: 50%}",
	    "first_run: block", "first_run: allow\n"
	    "  orgs: {persons: {deletes: 20%}, min_base: 0}", (char *)NULL);
	night(dir, 1);
	free(expect_run(0, dir, "run", (char *)NULL));
	night(dir, 2);
	out = expect_run(3, dir, "plan", (char *)NULL);
	has(out, "org SCH-S: persons deletes 3 (");
	has(out, "  org SCH-S        persons      deletes             3");
	has(out, "org SCH-S: persons deletes (3 in all, 3 shown):\n"
	    "    S1013 (Mia Wilson)");
	hasnt(out, "org SCH-N        persons      deletes");
	free(out);
	out = expect_run(3, dir, "run", (char *)NULL);
	approval_id(out, id);
	free(out);
	free(expect_run(0, dir, "run", "--approve", id, (char *)NULL));
}
END_TEST

/* state.keep: runs.log, runs/ and rejects/ keep the last runs; a run
 * without rejects leaves no rejects file. */
START_TEST(test_retention)
{
	char *s, h[PATH_MAX];
	int i;

	make_root(dir, "first_run: block", "first_run: allow",
	    "history: 7\n", "history: 7\nstate: {keep: 2}\n", (char *)NULL);
	night(dir, 1);
	for (i = 0; i < 4; i++)
		free(expect_run(0, dir, "run", (char *)NULL));
	ck_assert_int_eq(count_dir(at(dir, "state/runs")), 2);
	ck_assert_int_eq(count_dir(at(dir, "state/rejects")), 0);
	s = read_or_die(at(dir, "state/runs.log"), NULL);
	ck_assert_ptr_nonnull(strchr(s, '\n'));
	ck_assert_ptr_nonnull(strchr(strchr(s, '\n') + 1, '\n'));
	ck_assert_str_eq(strchr(strchr(s, '\n') + 1, '\n') + 1, "");
	hasnt(s, "status=completed");		/* the first run is gone */
	has(s, "status=unchanged");
	free(s);

	/* history: earlier snapshots, the newest `history` of them. Each
	 * is named by its time, so the snapshot is dated back an hour a
	 * run: four delivering runs in one second still make four names. */
	snprintf(h, sizeof(h), "%s", at(dir, "h"));
	make_root(h, "first_run: block", "first_run: allow",
	    "history: 7\n", "history: 2\n", (char *)NULL);
	night(h, 1);
	free(expect_run(0, h, "run", (char *)NULL));
	for (i = 0; i < 4; i++) {
		struct timeval tv[2] = { { time(NULL) - 3600 * (10 - i), 0 },
		    { time(NULL) - 3600 * (10 - i), 0 } };

		ck_assert_int_eq(utimes(at(h, "state/snapshot"), tv), 0);
		night(h, i % 2 == 0 ? 2 : 1);
		free(expect_run(0, h, "run", "--override",
		    (char *)NULL));
	}
	ck_assert_int_eq(count_dir(at(h, "state/history")), 2);
}
END_TEST

/* Append a delivered.log line: persons deleted pd, ago seconds back. */
static void
history_line(const char *root, const char *id, long ago, int pd)
{
	char *old = tu_read(at(root, "state/delivered.log"), NULL);
	char buf[8192];

	snprintf(buf, sizeof(buf), "%sv1 %lld %s persons=0/0/%d/0/0 "
	    "groups=0/0/0/0/0 memberships=0/0/0/0/0\n", old ? old : "",
	    (long long)time(NULL) - ago, id, pd);
	tu_write(at(root, "state"), "delivered.log", buf);
	free(old);
}

/* persons deletes_7d: 5 -- the sum over seven days at and one over. */
START_TEST(test_window_limit)
{
	char *out, *s;

	make_root(dir,
	    "deletes: [5%, 500]}", "deletes: 50%, deactivations: off, "
	    "deletes_7d: 5}",
	    "memberships: {inserts: 25%, updates: 25%, deletes: 5%}",
	    "memberships: {inserts: 25%, updates: 25%, deletes: 50%}",
	    "first_run: block", "first_run: allow", (char *)NULL);
	night(dir, 1);
	free(expect_run(0, dir, "run", (char *)NULL));
	s = read_or_die(at(dir, "state/delivered.log"), NULL);
	has(s, " persons=19/0/0/0/0 groups=6/0/0/0/0 memberships=23/0/0/0/0");
	free(s);
	night(dir, 2);			/* 3 persons leave tonight */
	history_line(dir, "00000000000000a1", 8 * 86400, 9);	/* too old */
	history_line(dir, "00000000000000a2", 2 * 86400, 2);
	history_line(dir, "00000000000000a2", 2 * 86400, 2);	/* again */
	s = read_or_die(at(dir, "state/delivered.log"), NULL);
	s[strlen(s) - 1] = '\0';
	{
		char buf[8192];

		snprintf(buf, sizeof(buf), "%s\nv1 17\n", s);
		tu_write(at(dir, "state"), "delivered.log", buf);
	}
	free(s);
	/* 2 + 3 = 5: at the limit */
	out = expect_run(0, dir, "plan", (char *)NULL);
	has(out, "  7 days           persons      deletes             5");
	has(out, "not a whole line, skipped");
	free(out);
	/* one more a day ago: 6, one over */
	history_line(dir, "00000000000000a3", 86400, 1);
	out = expect_run(3, dir, "plan", (char *)NULL);
	has(out, "7 days: persons deletes 6 > 5");
	has(out, "7 days: persons deletes (6 in all, 3 shown):\n"
	    "    S1013 (Mia Wilson)");
	free(out);
}
END_TEST

/*
 * Where messages go: -q is silent on success; under systemd (stderr is
 * JOURNAL_STREAM) lines carry their priority and the run id; elsewhere
 * without a terminal they go to syslog too (a socket bound at /dev/log
 * here, when root and no syslog daemon holds it).
 */
START_TEST(test_logging)
{
	char *out, cfg[PATH_MAX], buf[2048];
	struct sockaddr_un sun;
	int fd = -1, rc, found = 0;
	ssize_t n;

	make_root(dir, "first_run: block", "first_run: allow", (char *)NULL);
	night(dir, 1);
	unsetenv("JOURNAL_STREAM");
	out = expect_run(0, dir, "-q", "run", (char *)NULL);
	ck_assert_str_eq(out, "");
	free(out);

	snprintf(cfg, sizeof(cfg), "%s", at(dir, "sisfeed.yaml"));
	rc = prog("/bin/sh", &out, "-c", "JOURNAL_STREAM=$(stat -L -c %d:%i "
	    "/proc/self/fd/2) exec \"$0\" -c \"$1\" run", tu_sisfeed(), cfg,
	    (char *)NULL);
	ck_assert_msg(rc == 0, "journal: exit %d:\n%s", rc, out);
	has(out, "<6>sisfeed: run 20");
	has(out, ": nothing to do: the export matches the snapshot\n");
	free(out);

	if (geteuid() != 0 || access("/dev/log", F_OK) == 0) {
		fprintf(stderr, "test_logging: syslog part skipped (needs "
		    "root and no syslog daemon on /dev/log)\n");
		return;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "/dev/log");
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	rc = sisfeed(dir, &out, "run", (char *)NULL);
	free(out);
	while ((n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
		buf[n] = '\0';
		if (strncmp(buf, "<30>", 4) == 0 &&
		    strstr(buf, " sisfeed[") != NULL &&
		    strstr(buf, "]: run 20") != NULL &&
		    strstr(buf, ": nothing to do") != NULL)
			found = 1;
	}
	close(fd);
	unlink("/dev/log");
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(found, "no daemon.info line for the run in syslog");
}
END_TEST

/*
 * A pause holds night 2's leavers and its deactivation out of the file
 * (mode: full or delta) while the newcomer and the rename go through;
 * the snapshot keeps what was held; after resume the held changes are
 * delivered only when judged (blocked by the delete thresholds, then
 * approved).
 */
static void
pause_nights(const char *mode)
{
	char *out, *s, id[17], file[PATH_MAX], today[16];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(today, sizeof(today), "%Y-%m-%d", &tm);
	make_root(dir, "first_run: block", "first_run: allow",
	    "mode: full", mode, (char *)NULL);
	night(dir, 1);
	/* Kept aside: in delta mode a run in the same second would find
	 * its timed name still taken. */
	out = expect_run(0, dir, "run", (char *)NULL);
	keep_delivered(dir, out, "night1.xml", file, sizeof(file));
	free(out);
	out = expect_run(0, dir, "pause", "--until", today, (char *)NULL);
	has(out, "paused: deletes and deactivations held");
	free(out);
	night(dir, 2);
	out = expect_run(0, dir, "plan", (char *)NULL);
	has(out, "deletes and deactivations held out of the file.\n"
	    "Held: persons 3 deletes, 1 deactivations; memberships 3 deletes");
	has(out, "    held: S1008 (Noah Smith, inactive)\n");
	has(out, "    held: S1013 (Mia Wilson)\n");
	free(out);
	out = expect_run(0, dir, "run", (char *)NULL);
	keep_delivered(dir, out, "night2.xml", file, sizeof(file));
	free(out);
	s = read_or_die(file, NULL);
	has(s, "S1016");				/* the newcomer */
	has(s, "Alan Mathison");			/* the rename */
	if (strcmp(mode, "mode: full") == 0)
		has(s, "S1013");			/* held: still in */
	else
		hasnt(s, "S1013");			/* held: not sent */
	hasnt(s, "recstatus=\"3\"");
	free(s);
	s = read_or_die(at(dir, "state/snapshot"), NULL);
	has(s, "S1013");
	free(s);
	out = expect_run(0, dir, "resume", (char *)NULL);
	free(out);
	/* released: judged like any other change, so blocked */
	out = expect_run(3, dir, "run", (char *)NULL);
	has(out, "persons deletes 3");
	approval_id(out, id);
	free(out);
	out = expect_run(0, dir, "run", "--approve", id, (char *)NULL);
	keep_delivered(dir, out, "night2b.xml", file, sizeof(file));
	free(out);
	s = read_or_die(file, NULL);
	hasnt(s, "S1013</id></sourcedid><userid");
	if (strcmp(mode, "mode: full") != 0)
		has(s, "<person recstatus=\"3\">");
	free(s);
	s = read_or_die(at(dir, "state/snapshot"), NULL);
	hasnt(s, "S1013");
	free(s);
}

START_TEST(test_pause_full)
{
	pause_nights("mode: full");
}
END_TEST

START_TEST(test_pause_delta)
{
	pause_nights("mode: delta");
}
END_TEST

static Suite *
run_suite(void)
{
	Suite *s = suite_create("run");
	TCase *tc;

	tc = tcase_create("approve");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_first_run_blocked_then_approve);
	tcase_add_test(tc, test_first_run_override);
	tcase_add_test(tc, test_first_run_allow);
	tcase_add_test(tc, test_usage);
	tcase_add_test(tc, test_night2_plan_and_approve);
	tcase_add_test(tc, test_nothing_to_do);
	suite_add_tcase(s, tc);

	tc = tcase_create("thresholds");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_threshold_percent_boundary);
	tcase_add_test(tc, test_threshold_cap_boundary);
	tcase_add_test(tc, test_threshold_min_base);
	suite_add_tcase(s, tc);

	tc = tcase_create("lock_crash");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_lock_held);
	tcase_add_loop_test(tc, test_crash, 0, (int)(2 * NCRASH));
	suite_add_tcase(s, tc);

	tc = tcase_create("state");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_snapshot_lost);
	tcase_add_test(tc, test_snapshot_damaged);
	tcase_add_test(tc, test_restore_initial);
	tcase_add_test(tc, test_partial_files_removed);
	tcase_add_test(tc, test_disk_full);
	tcase_add_test(tc, test_state_readonly);
	tcase_add_test(tc, test_commit_fails);
	tcase_add_test(tc, test_history_prune_fails);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_config_unknown_key);
	tcase_add_test(tc, test_config_bad_threshold);
	tcase_add_test(tc, test_config_missing);
	tcase_add_test(tc, test_rejects);
	tcase_add_test(tc, test_max_rejects);
	tcase_add_test(tc, test_export_shrinks);
	tcase_add_test(tc, test_export_truncated);
	tcase_add_test(tc, test_header_only);
	tcase_add_test(tc, test_missing_column);
	suite_add_tcase(s, tc);

	tc = tcase_create("output");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_dtd_full);
	tcase_add_test(tc, test_dtd_delta);
	tcase_add_test(tc, test_delta_never_replaces);
	tcase_add_test(tc, test_source_ims);
	tcase_add_test(tc, test_index_damaged);
	tcase_add_test(tc, test_approval_survives_failed_delivery);
	tcase_add_test(tc, test_state_restored);
	tcase_add_test(tc, test_dtd_gzip);
	tcase_add_test(tc, test_export_deterministic);
	tcase_add_test(tc, test_export_targets);
	tcase_add_test(tc, test_validate_and_diff);
	tcase_add_test(tc, test_diff_role_timeframes);
	tcase_add_test(tc, test_validate_profile);
	tcase_add_test(tc, test_export_profile);
	tcase_add_test(tc, test_validate_dtd_diff_dangling);
	tcase_add_test(tc, test_check_reads_export);
	tcase_add_test(tc, test_status);
	tcase_add_test(tc, test_file_modes);
	suite_add_tcase(s, tc);

	tc = tcase_create("ops");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_cli);
	tcase_add_test(tc, test_run_as_owner);
	tcase_add_test(tc, test_max_age_and_metrics);
	tcase_add_test(tc, test_heartbeat);
	tcase_add_test(tc, test_retention);
	tcase_add_test(tc, test_logging);
	suite_add_tcase(s, tc);

	tc = tcase_create("nets");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_approval_reason_and_expiry);
	tcase_add_test(tc, test_org_limit);
	tcase_add_test(tc, test_window_limit);
	tcase_add_test(tc, test_pause_full);
	tcase_add_test(tc, test_pause_delta);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	/* A fixed <datetime>, so files of two runs compare by bytes. */
	setenv("SOURCE_DATE_EPOCH", "1790000000", 1);
	unsetenv("SISFEED_CRASH_AFTER");
	return tu_run_suite(run_suite()) != 0;
}
