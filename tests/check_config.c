/*
 * check_config.c -- the YAML config: every key, defaults, errors with
 * their line numbers, thresholds, relative paths.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sisfeed.h"
#include "tests/testutil.h"

static char dir[PATH_MAX];
static char cfgpath[PATH_MAX];
static char realdir[PATH_MAX];

static void
setup(void)
{
	tu_mkdtemp(dir, sizeof(dir));
	ck_assert_ptr_nonnull(realpath(dir, realdir));
}

static void
teardown(void)
{
	tu_rmtree(dir);
}

/* The smallest valid config: 14 lines. */
static const char MIN[] =
	"site: Test School\n"				/*  1 */
	"source:\n"					/*  2 */
	"  format: csv\n"				/*  3 */
	"  persons: p.csv\n"				/*  4 */
	"  groups: g.csv\n"				/*  5 */
	"  memberships: m.csv\n"			/*  6 */
	"  columns:\n"					/*  7 */
	"    persons: {id: pid, given: first, family: last}\n" /* 8 */
	"    groups: {id: gid, short: name}\n"		/*  9 */
	"    memberships: {group: gid, person: pid}\n"	/* 10 */
	"output:\n"					/* 11 */
	"  source: sis.example.org\n"			/* 12 */
	"delivery:\n"					/* 13 */
	"  dir: out\n";					/* 14 */

static struct config *
load(const char *text)
{
	snprintf(cfgpath, sizeof(cfgpath), "%s",
	    tu_write(dir, "sisfeed.yaml", text));
	return config_load(cfgpath);
}

/* MIN followed by extra lines (starting at line 15). */
static struct config *
load_min(const char *extra)
{
	char buf[8192];

	snprintf(buf, sizeof(buf), "%s%s", MIN, extra);
	return load(buf);
}

/* The load must fail with "FILE:LINE: " and a message holding needle. */
static void
expect_error(struct config *c, unsigned line, const char *needle)
{
	char want[PATH_MAX + 32];
	const char *got = error_last();

	config_free(c);
	ck_assert_msg(c == NULL, "loaded, expected an error at line %u",
	    line);
	snprintf(want, sizeof(want), "%s:%u: ", cfgpath, line);
	ck_assert_msg(strncmp(got, want, strlen(want)) == 0,
	    "want prefix '%s', got '%s'", want, got);
	ck_assert_msg(strstr(got, needle) != NULL,
	    "want '%s' in '%s'", needle, got);
}

static char *
under(const char *rel)
{
	static char buf[4][PATH_MAX + 64];
	static int next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", realdir, rel);
	return p;
}

/* ------------------------------------------------------------------ */

static const char FULL[] =
	"# a full config\n"
	"site: Example District\n"
	"state_dir: /var/lib/sf-test\n"
	"history: 14\n"
	"source:\n"
	"  format: csv\n"
	"  persons: /srv/export/persons.csv\n"
	"  groups: /srv/export/groups.csv\n"
	"  memberships: /srv/export/memberships.csv\n"
	"  delimiter: \";\"\n"
	"  columns:\n"
	"    persons: {id: student_id, userid: username, given: first_name,\n"
	"              family: last_name, email: email, status: active,\n"
	"              role: kind}\n"
	"    groups: {id: group_id, type: kind, short: name, long: title,\n"
	"             parent: parent_id, term: term}\n"
	"    memberships: {group: group_id, person: person_id, role: role,\n"
	"                  status: state}\n"
	"  roles:\n"
	"    Schueler: learner\n"
	"    Lehrer: \"02\"\n"
	"    Hilfe: 08\n"
	"output:\n"
	"  source: sis.example.org\n"
	"  datasource: SIS Prod\n"
	"  target: moodle\n"
	"  mode: delta\n"
	"  compress: gzip\n"
	"  name: \"feed-%Y%m%d.xml.gz\"\n"
	"  threads: 3\n"
	"safety:\n"
	"  persons:     {inserts: 11%, updates: 2.5%, deletes: [2%, 500]}\n"
	"  groups:      {inserts: off, updates: 40, deletes: [7, 3%]}\n"
	"  memberships: {inserts: 0%, updates: 100%, deletes: none}\n"
	"  min_base: 50\n"
	"  first_run: allow\n"
	"  max_rejects: 0.5%\n"
	"  max_shrink: off\n"
	"delivery:\n"
	"  sftp:\n"
	"    host: sftp.lms.example.com\n"
	"    port: 2222\n"
	"    user: district42\n"
	"    identity: /etc/sisfeed/id_ed25519\n"
	"    passphrase_file: /etc/sisfeed/passphrase\n"
	"    known_hosts: /etc/sisfeed/known_hosts\n"
	"    remote_dir: /incoming\n"
	"    retries: 5\n"
	"    timeout: 90\n"
	"mail:\n"
	"  smtp: smtp://mail.example.org:587\n"
	"  starttls: try\n"
	"  user: sisfeed\n"
	"  password_file: /etc/sisfeed/smtp-password\n"
	"  cafile: /etc/ssl/ca.pem\n"
	"  from: sisfeed@example.org\n"
	"  to: [lms-admins@example.org, it@example.org]\n"
	"  to_status:\n"
	"    blocked: principal@example.org\n"
	"    failed: [oncall@example.org, ops@example.org]\n"
	"  on: [blocked, failed]\n"
	"  samples: 5\n"
	"  timeout: 45\n";

START_TEST(test_full)
{
	struct config *c = load(FULL);
	struct threshold (*t)[NOPS];

	ck_assert_msg(c != NULL, "%s", error_last());
	ck_assert_str_eq(c->path, cfgpath);
	ck_assert_str_eq(c->site, "Example District");
	ck_assert_str_eq(c->state_dir, "/var/lib/sf-test");
	ck_assert_int_eq(c->history, 14);

	ck_assert_int_eq(c->source.format, SOURCE_CSV);
	ck_assert_str_eq(c->source.persons, "/srv/export/persons.csv");
	ck_assert_str_eq(c->source.groups, "/srv/export/groups.csv");
	ck_assert_str_eq(c->source.memberships,
	    "/srv/export/memberships.csv");
	ck_assert_ptr_null(c->source.dir);
	ck_assert_ptr_null(c->source.file);
	ck_assert_int_eq(c->source.delimiter, ';');
	ck_assert_str_eq(c->source.pcol[PF_ID], "student_id");
	ck_assert_str_eq(c->source.pcol[PF_USERID], "username");
	ck_assert_str_eq(c->source.pcol[PF_GIVEN], "first_name");
	ck_assert_str_eq(c->source.pcol[PF_FAMILY], "last_name");
	ck_assert_str_eq(c->source.pcol[PF_EMAIL], "email");
	ck_assert_str_eq(c->source.pcol[PF_STATUS], "active");
	ck_assert_str_eq(c->source.pcol[PF_ROLE], "kind");
	ck_assert_str_eq(c->source.gcol[GF_ID], "group_id");
	ck_assert_str_eq(c->source.gcol[GF_TYPE], "kind");
	ck_assert_str_eq(c->source.gcol[GF_SHORT], "name");
	ck_assert_str_eq(c->source.gcol[GF_LONG], "title");
	ck_assert_str_eq(c->source.gcol[GF_PARENT], "parent_id");
	ck_assert_str_eq(c->source.gcol[GF_TERM], "term");
	ck_assert_str_eq(c->source.mcol[MF_GROUP], "group_id");
	ck_assert_str_eq(c->source.mcol[MF_PERSON], "person_id");
	ck_assert_str_eq(c->source.mcol[MF_ROLE], "role");
	ck_assert_str_eq(c->source.mcol[MF_STATUS], "state");
	ck_assert_uint_eq(c->source.nroles, 3);
	ck_assert_str_eq(c->source.roles[0].name, "Schueler");
	ck_assert_int_eq(c->source.roles[0].role, 1);
	ck_assert_str_eq(c->source.roles[1].name, "Lehrer");
	ck_assert_int_eq(c->source.roles[1].role, 2);
	ck_assert_str_eq(c->source.roles[2].name, "Hilfe");
	ck_assert_int_eq(c->source.roles[2].role, 8);

	ck_assert_str_eq(c->output.source, "sis.example.org");
	ck_assert_str_eq(c->output.datasource, "SIS Prod");
	ck_assert_str_eq(c->output.target, "moodle");
	ck_assert_int_eq(c->output.mode, MODE_DELTA);
	ck_assert_int_eq(c->output.compress, COMPRESS_GZIP);
	ck_assert_str_eq(c->output.name, "feed-%Y%m%d.xml.gz");
	ck_assert_int_eq(c->output.threads, 3);

	t = c->safety.t;
	ck_assert_double_eq(t[TYPE_PERSON][OP_INSERT].percent, 11);
	ck_assert_int_eq(t[TYPE_PERSON][OP_INSERT].cap, -1);
	ck_assert_double_eq(t[TYPE_PERSON][OP_UPDATE].percent, 2.5);
	ck_assert_double_eq(t[TYPE_PERSON][OP_DELETE].percent, 2);
	ck_assert_int_eq(t[TYPE_PERSON][OP_DELETE].cap, 500);
	ck_assert_double_lt(t[TYPE_GROUP][OP_INSERT].percent, 0);
	ck_assert_int_lt(t[TYPE_GROUP][OP_INSERT].cap, 0);
	ck_assert_double_lt(t[TYPE_GROUP][OP_UPDATE].percent, 0);
	ck_assert_int_eq(t[TYPE_GROUP][OP_UPDATE].cap, 40);
	ck_assert_double_eq(t[TYPE_GROUP][OP_DELETE].percent, 3);
	ck_assert_int_eq(t[TYPE_GROUP][OP_DELETE].cap, 7);
	ck_assert_double_eq(t[TYPE_MEMBER][OP_INSERT].percent, 0);
	ck_assert_double_eq(t[TYPE_MEMBER][OP_UPDATE].percent, 100);
	ck_assert_double_lt(t[TYPE_MEMBER][OP_DELETE].percent, 0);
	ck_assert_int_lt(t[TYPE_MEMBER][OP_DELETE].cap, 0);
	ck_assert_int_eq(c->safety.min_base, 50);
	ck_assert_int_eq(c->safety.first_run, FIRST_RUN_ALLOW);
	ck_assert_double_eq(c->safety.max_rejects, 0.5);
	ck_assert_double_lt(c->safety.max_shrink, 0);

	ck_assert_ptr_null(c->delivery.dir);
	ck_assert_int_eq(c->delivery.sftp, 1);
	ck_assert_str_eq(c->delivery.s.host, "sftp.lms.example.com");
	ck_assert_int_eq(c->delivery.s.port, 2222);
	ck_assert_str_eq(c->delivery.s.user, "district42");
	ck_assert_str_eq(c->delivery.s.identity, "/etc/sisfeed/id_ed25519");
	ck_assert_str_eq(c->delivery.s.passphrase_file,
	    "/etc/sisfeed/passphrase");
	ck_assert_ptr_null(c->delivery.s.password_file);
	ck_assert_str_eq(c->delivery.s.known_hosts,
	    "/etc/sisfeed/known_hosts");
	ck_assert_str_eq(c->delivery.s.remote_dir, "/incoming");
	ck_assert_int_eq(c->delivery.s.retries, 5);
	ck_assert_int_eq(c->delivery.s.timeout, 90);

	ck_assert_int_eq(c->mail.enabled, 1);
	ck_assert_str_eq(c->mail.smtp, "smtp://mail.example.org:587");
	ck_assert_ptr_null(c->mail.sendmail);
	ck_assert_int_eq(c->mail.starttls, STARTTLS_TRY);
	ck_assert_str_eq(c->mail.user, "sisfeed");
	ck_assert_str_eq(c->mail.password_file, "/etc/sisfeed/smtp-password");
	ck_assert_str_eq(c->mail.cafile, "/etc/ssl/ca.pem");
	ck_assert_str_eq(c->mail.from, "sisfeed@example.org");
	ck_assert_uint_eq(c->mail.to.n, 2);
	ck_assert_str_eq(c->mail.to.v[0], "lms-admins@example.org");
	ck_assert_str_eq(c->mail.to.v[1], "it@example.org");
	ck_assert_uint_eq(c->mail.to_status[RUN_COMPLETED].n, 0);
	ck_assert_uint_eq(c->mail.to_status[RUN_BLOCKED].n, 1);
	ck_assert_str_eq(c->mail.to_status[RUN_BLOCKED].v[0],
	    "principal@example.org");
	ck_assert_uint_eq(c->mail.to_status[RUN_FAILED].n, 2);
	ck_assert_str_eq(c->mail.to_status[RUN_FAILED].v[1],
	    "ops@example.org");
	ck_assert_uint_eq(c->mail.on, 1u << RUN_BLOCKED | 1u << RUN_FAILED);
	ck_assert_int_eq(c->mail.samples, 5);
	ck_assert_int_eq(c->mail.timeout, 45);
	config_free(c);
}
END_TEST

START_TEST(test_defaults)
{
	struct config *c = load(MIN);
	static const double pct[NTYPES][NOPS] = {
		{ 10, 20, 2 }, { 25, 25, 5 }, { 25, 25, 5 } };
	int t, o;

	ck_assert_msg(c != NULL, "%s", error_last());
	ck_assert_str_eq(c->site, "Test School");
	ck_assert_str_eq(c->state_dir, "/var/lib/sisfeed");
	ck_assert_int_eq(c->history, 7);
	ck_assert_int_eq(c->source.delimiter, ',');
	ck_assert_ptr_null(c->source.pcol[PF_USERID]);
	ck_assert_ptr_null(c->source.pcol[PF_EMAIL]);
	ck_assert_ptr_null(c->source.gcol[GF_PARENT]);
	ck_assert_ptr_null(c->source.mcol[MF_ROLE]);
	ck_assert_uint_eq(c->source.nroles, 0);
	ck_assert_str_eq(c->output.datasource, "Test School");
	ck_assert_ptr_null(c->output.target);
	ck_assert_int_eq(c->output.mode, MODE_FULL);
	ck_assert_int_eq(c->output.compress, COMPRESS_NONE);
	ck_assert_str_eq(c->output.name, "sisfeed-%Y%m%d.xml");
	ck_assert_int_eq(c->output.threads, 0);
	ck_assert_int_eq(c->output.profile, PROFILE_GENERIC);
	for (t = 0; t < NTYPES; t++)
		for (o = 0; o < NOPS; o++) {
			ck_assert_double_eq(c->safety.t[t][o].percent,
			    pct[t][o]);
			ck_assert_int_lt(c->safety.t[t][o].cap, 0);
		}
	ck_assert_int_eq(c->safety.min_base, 100);
	ck_assert_int_eq(c->safety.first_run, FIRST_RUN_BLOCK);
	ck_assert_double_eq(c->safety.max_rejects, 1);
	ck_assert_double_eq(c->safety.max_shrink, 10);
	ck_assert_int_eq(c->delivery.sftp, 0);
	ck_assert_str_eq(c->delivery.dir, under("out"));
	ck_assert_int_eq(c->mail.enabled, 0);
	config_free(c);
}
END_TEST

/* source.useridtype: with ims only. */
START_TEST(test_source_useridtype)
{
	struct config *c = load(
	    "site: S\n"
	    "source: {format: ims, file: f, useridtype: personNIN}\n"
	    "output: {source: s}\n"
	    "delivery: {dir: out}\n");

	ck_assert_msg(c != NULL, "%s", error_last());
	ck_assert_str_eq(c->source.useridtype, "personNIN");
	config_free(c);
	c = load(
	    "site: S\n"
	    "source: {format: oneroster, dir: d, useridtype: username}\n"
	    "output: {source: s}\n"
	    "delivery: {dir: out}\n");
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(error_last(), "source.useridtype"));
}
END_TEST

/* source.encoding (csv, oneroster; one iconv knows) and source.zip_max
 * (oneroster, MiB; default 4 GiB). */
START_TEST(test_source_encoding_zip_max)
{
	struct config *c = load(
	    "site: S\n"
	    "source: {format: oneroster, dir: d.zip, encoding: windows-1252,\n"
	    "         zip_max: 100}\n"
	    "output: {source: s}\n"
	    "delivery: {dir: out}\n");

	ck_assert_msg(c != NULL, "%s", error_last());
	ck_assert_str_eq(c->source.encoding, "windows-1252");
	ck_assert_uint_eq(c->source.zip_max, 100u << 20);
	config_free(c);
	c = load(
	    "site: S\n"
	    "source: {format: oneroster, dir: d}\n"
	    "output: {source: s}\n"
	    "delivery: {dir: out}\n");
	ck_assert_msg(c != NULL, "%s", error_last());
	ck_assert_ptr_null(c->source.encoding);
	ck_assert_uint_eq(c->source.zip_max, SOURCE_ZIP_MAX);
	config_free(c);
	c = load(
	    "site: S\n"
	    "source: {format: oneroster, dir: d, encoding: klingon-8}\n"
	    "output: {source: s}\n"
	    "delivery: {dir: out}\n");
	expect_error(c, 2, "'source.encoding': 'klingon-8' is not an encoding "
	    "iconv knows");
	c = load(
	    "site: S\n"
	    "source: {format: ims, file: f, encoding: utf-8}\n"
	    "output: {source: s}\n"
	    "delivery: {dir: out}\n");
	expect_error(c, 2, "'source.encoding': not used with format ims");
}
END_TEST

START_TEST(test_defaults_sftp_mail)
{
	struct config *c = load(
	    "site: S\n"
	    "source: {format: ims, file: feed.xml}\n"
	    "output: {source: s, compress: gzip}\n"
	    "safety:\n"
	    "  persons: {deletes: 3%}\n"
	    "delivery:\n"
	    "  sftp: {host: h, user: u, password_file: pw,\n"
	    "         known_hosts: kh}\n"
	    "mail:\n"
	    "  smtp: smtp://localhost\n"
	    "  from: a@b.example\n"
	    "  to: c@d.example\n");

	ck_assert_msg(c != NULL, "%s", error_last());
	ck_assert_int_eq(c->source.format, SOURCE_IMS);
	ck_assert_str_eq(c->source.file, under("feed.xml"));
	ck_assert_ptr_null(c->source.useridtype);
	ck_assert_str_eq(c->output.name, "sisfeed-%Y%m%d.xml.gz");
	/* a cell given leaves the others at their defaults */
	ck_assert_double_eq(c->safety.t[TYPE_PERSON][OP_DELETE].percent, 3);
	ck_assert_double_eq(c->safety.t[TYPE_PERSON][OP_INSERT].percent, 10);
	ck_assert_double_eq(c->safety.t[TYPE_GROUP][OP_DELETE].percent, 5);
	ck_assert_int_eq(c->delivery.s.port, 22);
	ck_assert_str_eq(c->delivery.s.remote_dir, ".");
	ck_assert_int_eq(c->delivery.s.retries, 3);
	ck_assert_int_eq(c->delivery.s.timeout, 60);
	ck_assert_ptr_null(c->delivery.s.identity);
	ck_assert_str_eq(c->delivery.s.password_file, under("pw"));
	ck_assert_int_eq(c->mail.enabled, 1);
	ck_assert_int_eq(c->mail.starttls, STARTTLS_REQUIRED);
	ck_assert_uint_eq(c->mail.on, 7);
	ck_assert_int_eq(c->mail.samples, 10);
	ck_assert_int_eq(c->mail.timeout, 30);
	ck_assert_uint_eq(c->mail.to.n, 1);
	ck_assert_str_eq(c->mail.to.v[0], "c@d.example");
	config_free(c);
}
END_TEST

START_TEST(test_oneroster_sendmail)
{
	struct config *c = load(
	    "site: S\n"
	    "source:\n"
	    "  format: OneRoster\n"
	    "  dir: export/\n"
	    "  roles: {aide: TeachingAssistant}\n"
	    "output: {source: s}\n"
	    "delivery: {dir: /srv/out}\n"
	    "mail:\n"
	    "  sendmail: /usr/sbin/sendmail\n"
	    "  from: a@b.example\n"
	    "  to: [c@d.example]\n"
	    "  on: failed\n");

	ck_assert_msg(c != NULL, "%s", error_last());
	ck_assert_int_eq(c->source.format, SOURCE_ONEROSTER);
	ck_assert_str_eq(c->source.dir, under("export/"));
	ck_assert_uint_eq(c->source.nroles, 1);
	ck_assert_int_eq(c->source.roles[0].role, 8);
	ck_assert_str_eq(c->delivery.dir, "/srv/out");
	ck_assert_str_eq(c->mail.sendmail, "/usr/sbin/sendmail");
	ck_assert_ptr_null(c->mail.smtp);
	ck_assert_uint_eq(c->mail.on, 1u << RUN_FAILED);
	config_free(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Errors, each with its line.                                         */

START_TEST(test_err_unknown_key)
{
	expect_error(load_min("colour: blue\n"), 15,
	    "key 'colour': unknown key");
	expect_error(load_min("safety:\n  persons:\n    delete: 2%\n"), 17,
	    "key 'safety.persons.delete': unknown key");
	expect_error(load_min("safety:\n  groups: {inserts: 2%, frobs: 1}\n"),
	    16, "key 'safety.groups.frobs': unknown key");
}
END_TEST

START_TEST(test_err_wrong_type)
{
	expect_error(load(
	    "site:\n"
	    "  - one\n"
	    "  - two\n"), 2, "key 'site': expected a string, not a list");
	expect_error(load_min("history: [1]\n"), 15,
	    "key 'history': expected a number, not a list");
	expect_error(load_min("history: seven\n"), 15,
	    "key 'history': 'seven' is not a whole number");
	expect_error(load_min("safety: 5%\n"), 15,
	    "key 'safety': expected a mapping, not a string");
	expect_error(load_min("safety:\n  persons: {deletes: {a: 1}}\n"), 16,
	    "key 'safety.persons.deletes': expected a threshold");
	expect_error(load_min("mail:\n  smtp: smtp://h\n  from: a@b.c\n"
	    "  to: {x: y}\n"), 18, "key 'mail.to': expected");
	expect_error(load_min("state_dir:\n"), 15,
	    "key 'state_dir': has no value");
}
END_TEST

START_TEST(test_err_threshold)
{
	expect_error(load_min("safety:\n  persons:\n    deletes: 2x%\n"), 17,
	    "key 'safety.persons.deletes': '2x%' is not a threshold");
	expect_error(load_min("safety:\n  persons: {updates: 101%}\n"), 16,
	    "key 'safety.persons.updates': '101%' is above 100%");
	expect_error(load_min("safety:\n  memberships:\n    deletes:\n"
	    "      - 2%\n      - 3%\n"), 19, "two percentages");
	expect_error(load_min("safety:\n  groups: {deletes: [2%, off]}\n"),
	    16, "cannot be part of a list");
	expect_error(load_min("safety:\n  groups: {deletes: []}\n"), 16,
	    "a list holds");
	expect_error(load_min("safety:\n  groups: {deletes: -5}\n"), 16,
	    "is not a threshold");
	expect_error(load_min("safety:\n  max_rejects: 3\n"), 16,
	    "key 'safety.max_rejects': '3' is not a percentage");
	expect_error(load_min("safety:\n  max_shrink: 30\n"), 16,
	    "key 'safety.max_shrink': '30' is not a percentage");
	expect_error(load_min("safety:\n  min_base: -1\n"), 16,
	    "key 'safety.min_base'");
}
END_TEST

START_TEST(test_err_enum_range)
{
	expect_error(load_min("safety:\n  first_run: maybe\n"), 16,
	    "key 'safety.first_run': 'maybe' is not one of: block, allow");
	expect_error(load(
	    "site: s\n"
	    "source:\n"
	    "  format: xls\n"), 3,
	    "key 'source.format': 'xls' is not one of: csv, oneroster, ims");
	expect_error(load(
	    "site: s\n"
	    "source: {format: ims, file: f}\n"
	    "output: {source: s}\n"
	    "delivery:\n"
	    "  sftp:\n"
	    "    host: h\n"
	    "    user: u\n"
	    "    identity: id\n"
	    "    known_hosts: kh\n"
	    "    port: 70000\n"), 10,
	    "key 'delivery.sftp.port': 70000 is out of range (1..65535)");
	expect_error(load_min("mail:\n  smtp: smtp://h\n  from: a@b.c\n"
	    "  to: d@e.f\n  samples: 500\n"), 19, "key 'mail.samples'");
	expect_error(load(
	    "site: s\n"
	    "source: {format: ims, file: f}\n"
	    "output:\n"
	    "  source: s\n"
	    "  threads: 0\n"), 5,
	    "key 'output.threads': 0 is out of range (1..64)");
	expect_error(load(
	    "site: s\n"
	    "source: {format: ims, file: f}\n"
	    "output: {source: s, threads: 65}\n"), 3,
	    "key 'output.threads': 65 is out of range (1..64)");
	expect_error(load(
	    "site: s\n"
	    "source: {format: ims, file: f}\n"
	    "output: {source: s, threads: two}\n"), 3,
	    "key 'output.threads': 'two' is not a whole number");
	expect_error(load_min("mail:\n  smtp: smtp://h\n  from: a@b.c\n"
	    "  to: d@e.f\n  on: [completed, sometimes]\n"), 19,
	    "'sometimes' is not completed, blocked or failed");
}
END_TEST

/* output.profile: each name, a wrong one, and moodle with gzip. */
START_TEST(test_profile)
{
	static const char *const names[] = { "generic", "moodle",
	    "itslearning" };
	static const enum output_profile want[] = { PROFILE_GENERIC,
	    PROFILE_MOODLE, PROFILE_ITSLEARNING };
	char text[256];
	struct config *c;
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(text, sizeof(text), "site: s\n"
		    "source: {format: ims, file: f}\n"
		    "output: {source: s, profile: %s}\n"
		    "delivery: {dir: out}\n", names[i]);
		c = load(text);
		ck_assert_msg(c != NULL, "%s", error_last());
		ck_assert_int_eq(c->output.profile, want[i]);
		config_free(c);
	}
	expect_error(load(
	    "site: s\n"
	    "source: {format: ims, file: f}\n"
	    "output: {source: s, profile: blackboard}\n"), 3,
	    "key 'output.profile': 'blackboard' is not one of: generic, "
	    "moodle, itslearning");
	expect_error(load(
	    "site: s\n"
	    "source: {format: ims, file: f}\n"
	    "output:\n"
	    "  source: s\n"
	    "  compress: gzip\n"
	    "  profile: moodle\n"), 6,
	    "key 'output.profile': moodle cannot go with output.compress "
	    "gzip");
	c = load("site: s\n"
	    "source: {format: ims, file: f}\n"
	    "output: {source: s, profile: moodle}\n"
	    "delivery: {dir: out}\n");
	ck_assert_msg(c != NULL, "%s", error_last());
	ck_assert_int_eq(c->output.cumulative, 1);
	ck_assert_int_eq(c->output.window, 7);
	ck_assert_str_eq(c->output.moodle_auth, "manual");
	ck_assert_str_eq(c->output.name, "sisfeed.xml");
	config_free(c);
	c = load("site: s\n"
	    "source: {format: ims, file: f}\n"
	    "output:\n"
	    "  source: s\n"
	    "  profile: moodle\n"
	    "  window: 3\n"
	    "  name: moodle.xml\n"
	    "  moodle: {auth: ldap}\n"
	    "delivery: {dir: out}\n");
	ck_assert_msg(c != NULL, "%s", error_last());
	ck_assert_int_eq(c->output.window, 3);
	ck_assert_str_eq(c->output.moodle_auth, "ldap");
	ck_assert_str_eq(c->output.name, "moodle.xml");
	config_free(c);
	expect_error(load("site: s\n"
	    "source: {format: ims, file: f}\n"
	    "output: {source: s, profile: moodle, mode: delta}\n"), 3,
	    "key 'output.mode': not with profile moodle");
	expect_error(load("site: s\n"
	    "source: {format: ims, file: f}\n"
	    "output: {source: s, profile: moodle, name: \"a-%Y.xml\"}\n"),
	    3, "key 'output.name': with profile moodle the name is fixed");
	expect_error(load("site: s\n"
	    "source: {format: ims, file: f}\n"
	    "output: {source: s, window: 3}\n"), 3,
	    "key 'output.window': only with profile moodle");
	expect_error(load("site: s\n"
	    "source: {format: ims, file: f}\n"
	    "output: {source: s, profile: moodle, window: 400}\n"), 3,
	    "key 'output.window': 400 is out of range (0..366)");
	expect_error(load("site: s\n"
	    "source: {format: ims, file: f}\n"
	    "output:\n"
	    "  source: s\n"
	    "  profile: moodle\n"
	    "  moodle: {auth: nologin}\n"), 6,
	    "key 'output.moodle.auth': 'nologin' is not");
}
END_TEST

/*
 * Profile itslearning: full files only, <source> within PIFU's 32
 * characters; a national identity number mapped only for it.
 */
START_TEST(test_itslearning)
{
	static const char head[] =
	    "site: s\n"						/* 1 */
	    "source:\n"						/* 2 */
	    "  format: csv\n"					/* 3 */
	    "  persons: p.csv\n"					/* 4 */
	    "  groups: g.csv\n"					/* 5 */
	    "  memberships: m.csv\n"				/* 6 */
	    "  columns:\n"						/* 7 */
	    "    persons: {id: pid, given: first, family: last, "
	    "nin: fnr}\n"						/* 8 */
	    "    groups: {id: gid, short: name}\n"		/* 9 */
	    "    memberships: {group: gid, person: pid}\n"	/* 10 */
	    "output:\n";						/* 11 */
	char text[2048];
	struct config *c;

	snprintf(text, sizeof(text), "%s  source: sis.example.no\n"
	    "  profile: itslearning\ndelivery: {dir: out}\n", head);
	c = load(text);
	ck_assert_msg(c != NULL, "%s", error_last());
	ck_assert_int_eq(c->output.profile, PROFILE_ITSLEARNING);
	ck_assert_str_eq(c->source.pcol[PF_NIN], "fnr");
	config_free(c);

	snprintf(text, sizeof(text), "%s  source: sis.example.no\n"
	    "  mode: delta\n  profile: itslearning\ndelivery: {dir: out}\n",
	    head);
	expect_error(load(text), 14, "key 'output.profile': itslearning "
	    "cannot go with output.mode delta: itslearning compares each "
	    "file with its own mirror and deletes every record the file "
	    "leaves out");
	snprintf(text, sizeof(text), "%s  source: "
	    "sis.example.no.with.a.long.name.x\n"
	    "  profile: itslearning\ndelivery: {dir: out}\n", head);
	expect_error(load(text), 12, "key 'output.source': longer than 32 "
	    "characters");
	snprintf(text, sizeof(text), "%s  source: sis.example.no\n"
	    "  profile: generic\ndelivery: {dir: out}\n", head);
	expect_error(load(text), 13, "key 'source.columns.persons.nin': a "
	    "national identity number is written only with output.profile "
	    "itslearning");
	snprintf(text, sizeof(text), "%s  source: sis.example.no\n"
	    "delivery: {dir: out}\n", head);
	expect_error(load(text), 11, "key 'source.columns.persons.nin'");
}
END_TEST

/* MIN without its delivery section (12 lines), then extra. */
static struct config *
load_nodelivery(const char *extra)
{
	char buf[8192];

	snprintf(buf, sizeof(buf), "%.*s%s",
	    (int)(strstr(MIN, "delivery:") - MIN), MIN, extra);
	return load(buf);
}

START_TEST(test_err_delivery)
{
	expect_error(load_nodelivery("delivery:\n"
	    "  dir: /srv/out\n"
	    "  sftp: {host: h, user: u, identity: i, known_hosts: k}\n"), 15,
	    "key 'delivery': give either dir or sftp, not both");
	expect_error(load_nodelivery("delivery: {}\n"), 13,
	    "key 'delivery': give either dir");
	expect_error(load_nodelivery("delivery:\n  sftp:\n    host: h\n"
	    "    user: u\n    known_hosts: k\n"), 14,
	    "key 'delivery.sftp': needs identity");
	expect_error(load_nodelivery("delivery:\n  sftp:\n    host: h\n"
	    "    identity: i\n    known_hosts: k\n"), 14,
	    "key 'delivery.sftp.user': missing");
	expect_error(load_nodelivery("delivery:\n  sftp:\n    host: h\n"
	    "    user: u\n    password_file: p\n    passphrase_file: pp\n"
	    "    known_hosts: k\n"), 18,
	    "key 'delivery.sftp.passphrase_file': needs identity");
	expect_error(load_nodelivery(""), 1,
	    "key 'delivery': missing (required)");
}
END_TEST

START_TEST(test_err_missing)
{
	expect_error(load(
	    "# no site\n"
	    "state_dir: /tmp\n"
	    "source: {format: ims, file: f}\n"), 2,
	    "key 'site': missing (required)");
	expect_error(load(
	    "site: s\n"
	    "source:\n"
	    "  format: csv\n"
	    "  persons: p\n"
	    "  memberships: m\n"), 2,
	    "key 'source.groups': missing (required)");
	expect_error(load(
	    "site: s\n"
	    "source:\n"
	    "  format: csv\n"
	    "  persons: p\n"
	    "  groups: g\n"
	    "  memberships: m\n"
	    "  columns:\n"
	    "    persons: {id: a, given: b}\n"
	    "    groups: {id: a, short: b}\n"
	    "    memberships: {group: a, person: b}\n"), 8,
	    "key 'source.columns.persons.family': missing (required)");
	expect_error(load_min("mail:\n  smtp: smtp://h\n  to: x@y.z\n"), 15,
	    "key 'mail.from': missing (required)");
}
END_TEST

START_TEST(test_err_duplicate)
{
	expect_error(load_min("site: again\n"), 15,
	    "key 'site': duplicate key (first at line 1)");
	expect_error(load_min("safety:\n  persons:\n    deletes: 2%\n"
	    "    inserts: 5%\n    deletes: 3%\n"), 19,
	    "key 'safety.persons.deletes': duplicate key (first at line 17)");
	expect_error(load(
	    "site: s\n"
	    "source:\n"
	    "  format: oneroster\n"
	    "  dir: d\n"
	    "  roles:\n"
	    "    Aide: 08\n"
	    "    aide: 02\n"), 7,
	    "key 'source.roles.aide': duplicate role name");
}
END_TEST

START_TEST(test_err_secret)
{
	expect_error(load_min("mail:\n  smtp: smtp://h\n  from: a@b.c\n"
	    "  to: d@e.f\n  user: u\n  password: hunter2\n"), 20,
	    "key 'mail.password': a password does not belong in the config: "
	    "use password_file, or set SISFEED_SMTP_PASSWORD");
	ck_assert_ptr_null(strstr(error_last(), "hunter2"));
	expect_error(load(
	    "site: s\n"
	    "source: {format: ims, file: f}\n"
	    "output: {source: s}\n"
	    "delivery:\n"
	    "  sftp:\n"
	    "    host: h\n"
	    "    user: u\n"
	    "    password: hunter2\n"), 8,
	    "key 'delivery.sftp.password': a secret does not belong in the "
	    "config: put it in a file and name it with password_file");
	expect_error(load_min("api_token: abc\n"), 15,
	    "key 'api_token': a secret does not belong in the config");
	expect_error(load_min("mail:\n  smtp: smtp://u:pw@h\n  from: a@b.c\n"
	    "  to: d@e.f\n"), 16, "credentials do not belong in the URL");
}
END_TEST

START_TEST(test_err_yaml_syntax)
{
	char deep[256];

	expect_error(load(
	    "site: s\n"
	    "source:\n"
	    "  format: csv\n"
	    "  persons: [a, b\n"
	    "output: x\n"), 5, "YAML syntax error");
	expect_error(load(
	    "site: s\n"
	    "state_dir: /a\n"
	    "  history: 3\n"), 3, "YAML syntax error");
	expect_error(load(
	    "site: &a s\n"
	    "state_dir: *a\n"), 2, "aliases are not supported");
	expect_error(load("site: s\n---\nsite: t\n"), 2,
	    "only one YAML document");
	expect_error(load("- a\n- b\n"), 1, "top level must be a mapping");
	/* not UTF-8: the reader's byte offset becomes a line */
	expect_error(load("site: s\nstate_dir: /tmp\nhistory: \xff\n"), 3,
	    "UTF-8");
	/* deep nesting is bounded */
	memcpy(deep, "site: ", 6);
	memset(deep + 6, '[', 100);
	memset(deep + 106, ']', 100);
	deep[206] = '\n';
	deep[207] = '\0';
	expect_error(load(deep), 1, "nested too deeply");
}
END_TEST

START_TEST(test_err_file)
{
	char path[PATH_MAX + 32];
	struct config *c;

	snprintf(path, sizeof(path), "%s/nope.yaml", dir);
	c = config_load(path);
	ck_assert_ptr_null(c);
	snprintf(path + strlen(path), sizeof(path) - strlen(path),
	    ": No such file or directory");
	ck_assert_str_eq(error_last(), path);

	ck_assert_ptr_null(config_load(dir));
	ck_assert_ptr_nonnull(strstr(error_last(), "Is a directory"));

	ck_assert_ptr_null(load(""));
	ck_assert_ptr_nonnull(strstr(error_last(), "empty"));
	ck_assert_ptr_null(load("# only a comment\n"));
	ck_assert_ptr_nonnull(strstr(error_last(), "empty"));
}
END_TEST

START_TEST(test_err_source_format_keys)
{
	expect_error(load(
	    "site: s\n"
	    "source:\n"
	    "  format: ims\n"
	    "  file: f.xml\n"
	    "  persons: p.csv\n"), 5,
	    "key 'source.persons': not used with format ims");
	expect_error(load(
	    "site: s\n"
	    "source:\n"
	    "  format: oneroster\n"
	    "  dir: d\n"
	    "  delimiter: \";\"\n"), 5,
	    "key 'source.delimiter': not used with format oneroster");
	expect_error(load_min("source: {}\n"), 15, "duplicate key");
	expect_error(load(
	    "site: s\n"
	    "source:\n"
	    "  format: oneroster\n"
	    "  dir: d\n"
	    "  roles: {aide: janitor}\n"), 5,
	    "key 'source.roles.aide': 'janitor' is not an IMS role");
}
END_TEST

START_TEST(test_err_mail)
{
	expect_error(load_min("mail:\n  smtp: smtp://h\n  sendmail: /x\n"
	    "  from: a@b.c\n  to: d@e.f\n"), 17, "not both");
	expect_error(load_min("mail:\n  from: a@b.c\n  to: d@e.f\n"), 15,
	    "give either smtp");
	expect_error(load_min("mail:\n  smtp: smtps://h\n  starttls: try\n"
	    "  from: a@b.c\n  to: d@e.f\n"), 17, "smtps:// is always TLS");
	expect_error(load_min("mail:\n  smtp: http://h\n  from: a@b.c\n"
	    "  to: d@e.f\n"), 16, "not an smtp:// or smtps:// URL");
	expect_error(load_min("mail:\n  smtp: smtp://h\n  from: a@b.c\n"
	    "  to: [d@e.f, 'x <y@z>']\n"), 18, "is not a mail address");
	expect_error(load_min("mail:\n  smtp: smtp://h\n  from: a@b.c\n"
	    "  to: d@e.f\n  on: [failed]\n  to_status:\n"
	    "    blocked: x@y.z\n"), 21, "not in mail.on");
	expect_error(load_min("mail:\n  sendmail: /usr/sbin/sendmail\n"
	    "  cafile: /x\n  from: a@b.c\n  to: d@e.f\n"), 17,
	    "only used with smtp");
	expect_error(load_min("mail:\n  smtp: smtp://h\n  from: a@b.c\n"
	    "  to: d@e.f\n  password_file: pw\n"), 19, "needs mail.user");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Thresholds.                                                         */

/* Durations, state.keep, the monitor section, delivery.mode. */
START_TEST(test_ops_keys)
{
	struct config *c;

	c = load_min("state: {keep: 30}\nmonitor:\n  max_age: 2d\n"
	    "  metrics: m.prom\n  heartbeat: https://hc.example.org/x\n");
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->state.keep, 30);
	ck_assert_int_eq(c->monitor.max_age, 2 * 86400);
	ck_assert_str_eq(c->monitor.metrics, under("m.prom"));
	ck_assert_str_eq(c->monitor.heartbeat, "https://hc.example.org/x");
	ck_assert_int_eq(c->source_max_age, 0);
	config_free(c);
	c = load_min("");
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->state.keep, 400);
	ck_assert_int_eq(c->monitor.max_age, 26 * 3600);
	ck_assert_ptr_null(c->monitor.metrics);
	config_free(c);
	expect_error(load_min("monitor: {max_age: soon}\n"), 15,
	    "key 'monitor.max_age': 'soon' is not a duration");
	expect_error(load_min("monitor: {heartbeat: ftp://x}\n"), 15,
	    "not an http:// or https:// URL");
	expect_error(load_min("state: {keep: 0}\n"), 15, "state.keep");
	c = load_min("");
	ck_assert_int_eq(c->delivery_mode, 0);
	config_free(c);
	c = load_min("  mode: 0640\n");
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->delivery_mode, 0640);
	config_free(c);
	expect_error(load_min("  mode: 0755\n"), 15, "is not a file mode");
	expect_error(load_min("  mode: 0646\n"), 15, "is not a file mode");
	expect_error(load_min("  mode: rw\n"), 15, "is not a file mode");
}
END_TEST

START_TEST(test_threshold_parse)
{
	struct threshold t;

	t.percent = -1;
	t.cap = 77;
	ck_assert_int_eq(threshold_parse("2%", &t), 0);
	ck_assert_double_eq(t.percent, 2);
	ck_assert_int_eq(t.cap, 77);		/* other half untouched */

	t.percent = 9;
	t.cap = -1;
	ck_assert_int_eq(threshold_parse("500", &t), 0);
	ck_assert_int_eq(t.cap, 500);
	ck_assert_double_eq(t.percent, 9);

	ck_assert_int_eq(threshold_parse("2.5%", &t), 0);
	ck_assert_double_eq(t.percent, 2.5);
	ck_assert_int_eq(threshold_parse("100%", &t), 0);
	ck_assert_double_eq(t.percent, 100);
	ck_assert_int_eq(threshold_parse("0%", &t), 0);
	ck_assert_double_eq(t.percent, 0);
	ck_assert_int_eq(threshold_parse("0", &t), 0);
	ck_assert_int_eq(t.cap, 0);

	ck_assert_int_eq(threshold_parse("off", &t), 0);
	ck_assert_double_lt(t.percent, 0);
	ck_assert_int_lt(t.cap, 0);
	t.percent = 1;
	t.cap = 1;
	ck_assert_int_eq(threshold_parse("None", &t), 0);
	ck_assert_double_lt(t.percent, 0);
	ck_assert_int_lt(t.cap, 0);

	t.percent = 4;
	t.cap = 4;
	ck_assert_int_eq(threshold_parse("2x%", &t), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "'2x%' is not a threshold"));
	ck_assert_int_eq(threshold_parse("100.5%", &t), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "above 100%"));
	ck_assert_int_eq(threshold_parse("", &t), -1);
	ck_assert_int_eq(threshold_parse("%", &t), -1);
	ck_assert_int_eq(threshold_parse("-1", &t), -1);
	ck_assert_int_eq(threshold_parse("-1%", &t), -1);
	ck_assert_int_eq(threshold_parse("2.%", &t), -1);
	ck_assert_int_eq(threshold_parse(".5%", &t), -1);
	ck_assert_int_eq(threshold_parse("1.2.3%", &t), -1);
	ck_assert_int_eq(threshold_parse("1e2%", &t), -1);
	ck_assert_int_eq(threshold_parse("nan%", &t), -1);
	ck_assert_int_eq(threshold_parse("2 %", &t), -1);
	ck_assert_int_eq(threshold_parse("1.5", &t), -1);
	ck_assert_int_eq(threshold_parse("99999999999999999999999", &t), -1);
	/* failures leave the threshold alone */
	ck_assert_double_eq(t.percent, 4);
	ck_assert_int_eq(t.cap, 4);
}
END_TEST

START_TEST(test_threshold_forms)
{
	struct config *c = load_min(
	    "safety:\n"
	    "  persons:     {inserts: 2%, updates: 500, deletes: [2%, 500]}\n"
	    "  groups:      {inserts: off, updates: [7], deletes: [9%]}\n"
	    "  memberships: {inserts: '1.25%', updates: [500, 3%]}\n");
	struct threshold (*t)[NOPS];

	ck_assert_msg(c != NULL, "%s", error_last());
	t = c->safety.t;
	ck_assert_double_eq(t[TYPE_PERSON][OP_INSERT].percent, 2);
	ck_assert_int_lt(t[TYPE_PERSON][OP_INSERT].cap, 0);
	ck_assert_double_lt(t[TYPE_PERSON][OP_UPDATE].percent, 0);
	ck_assert_int_eq(t[TYPE_PERSON][OP_UPDATE].cap, 500);
	ck_assert_double_eq(t[TYPE_PERSON][OP_DELETE].percent, 2);
	ck_assert_int_eq(t[TYPE_PERSON][OP_DELETE].cap, 500);
	ck_assert_double_lt(t[TYPE_GROUP][OP_INSERT].percent, 0);
	ck_assert_int_lt(t[TYPE_GROUP][OP_INSERT].cap, 0);
	ck_assert_double_lt(t[TYPE_GROUP][OP_UPDATE].percent, 0);
	ck_assert_int_eq(t[TYPE_GROUP][OP_UPDATE].cap, 7);
	ck_assert_double_eq(t[TYPE_GROUP][OP_DELETE].percent, 9);
	ck_assert_int_lt(t[TYPE_GROUP][OP_DELETE].cap, 0);
	ck_assert_double_eq(t[TYPE_MEMBER][OP_INSERT].percent, 1.25);
	ck_assert_double_eq(t[TYPE_MEMBER][OP_UPDATE].percent, 3);
	ck_assert_int_eq(t[TYPE_MEMBER][OP_UPDATE].cap, 500);
	/* not given: the default */
	ck_assert_double_eq(t[TYPE_MEMBER][OP_DELETE].percent, 5);
	config_free(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Paths.                                                              */

START_TEST(test_relative_paths)
{
	char sub[PATH_MAX + 16], path[PATH_MAX + 64], want[PATH_MAX + 64];
	struct config *c;

	snprintf(sub, sizeof(sub), "%s/etc", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	tu_write(sub, "sisfeed.yaml",
	    "site: s\n"
	    "state_dir: state\n"
	    "source:\n"
	    "  format: csv\n"
	    "  persons: data/persons.csv\n"
	    "  groups: ./groups.csv\n"
	    "  memberships: ../m.csv\n"
	    "  columns:\n"
	    "    persons: {id: a, given: b, family: c}\n"
	    "    groups: {id: a, short: b}\n"
	    "    memberships: {group: a, person: b}\n"
	    "output: {source: s}\n"
	    "delivery:\n"
	    "  sftp: {host: h, user: u, identity: keys/id, known_hosts: kh,\n"
	    "         passphrase_file: /abs/pp, password_file: pw}\n"
	    "mail:\n"
	    "  smtp: smtp://h\n"
	    "  user: u\n"
	    "  password_file: smtp.pw\n"
	    "  cafile: ca.pem\n"
	    "  from: a@b.c\n"
	    "  to: d@e.f\n");
	/* a config path with a ".." in it still resolves to its directory */
	snprintf(path, sizeof(path), "%s/etc/../etc/sisfeed.yaml", dir);
	c = config_load(path);
	ck_assert_msg(c != NULL, "%s", error_last());
	ck_assert_str_eq(c->path, path);
#define CHECK(field, rel) do {						\
	snprintf(want, sizeof(want), "%s/etc/%s", realdir, rel);	\
	ck_assert_str_eq(field, want);					\
} while (0)
	CHECK(c->state_dir, "state");
	CHECK(c->source.persons, "data/persons.csv");
	CHECK(c->source.groups, "./groups.csv");
	CHECK(c->source.memberships, "../m.csv");
	CHECK(c->delivery.s.identity, "keys/id");
	CHECK(c->delivery.s.known_hosts, "kh");
	CHECK(c->delivery.s.password_file, "pw");
	CHECK(c->mail.password_file, "smtp.pw");
	CHECK(c->mail.cafile, "ca.pem");
#undef CHECK
	ck_assert_str_eq(c->delivery.s.passphrase_file, "/abs/pp");
	/* remote_dir is a path on the server: kept as given */
	ck_assert_str_eq(c->delivery.s.remote_dir, ".");
	config_free(c);
}
END_TEST

/* The shipped example must load. */
START_TEST(test_example)
{
	char path[PATH_MAX];
	struct config *c;

	snprintf(path, sizeof(path), "%s/etc/sisfeed.yaml.example", tu_top());
	c = config_load(path);
	ck_assert_msg(c != NULL, "%s", error_last());
	ck_assert_int_eq(c->delivery.sftp, 1);
	ck_assert_int_eq(c->mail.enabled, 1);
	ck_assert_ptr_nonnull(c->mail.smtp);
	config_free(c);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("load");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_defaults_sftp_mail);
	tcase_add_test(tc, test_source_useridtype);
	tcase_add_test(tc, test_source_encoding_zip_max);
	tcase_add_test(tc, test_oneroster_sendmail);
	tcase_add_test(tc, test_relative_paths);
	tcase_add_test(tc, test_example);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_err_unknown_key);
	tcase_add_test(tc, test_err_wrong_type);
	tcase_add_test(tc, test_err_threshold);
	tcase_add_test(tc, test_err_enum_range);
	tcase_add_test(tc, test_profile);
	tcase_add_test(tc, test_itslearning);
	tcase_add_test(tc, test_err_delivery);
	tcase_add_test(tc, test_err_missing);
	tcase_add_test(tc, test_err_duplicate);
	tcase_add_test(tc, test_err_secret);
	tcase_add_test(tc, test_err_yaml_syntax);
	tcase_add_test(tc, test_err_file);
	tcase_add_test(tc, test_err_source_format_keys);
	tcase_add_test(tc, test_err_mail);
	suite_add_tcase(s, tc);

	tc = tcase_create("threshold");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_threshold_parse);
	tcase_add_test(tc, test_threshold_forms);
	tcase_add_test(tc, test_ops_keys);
	suite_add_tcase(s, tc);

	return tu_run_suite(s) != 0;
}
