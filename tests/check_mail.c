/*
 * check_mail.c -- agent/mail.c against a real SMTP server on 127.0.0.1
 * (Debian's aiosmtpd, a Maildir per test), and against a fake sendmail.
 * Every delivered message is parsed by Python's email package: subject,
 * envelope and header recipients, the decoded text and HTML parts.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sisfeed.h"
#include "tests/testutil.h"

#define PYTHON	"/usr/bin/python3"
#define OPENSSL	"/usr/bin/openssl"
#define PASSWORD "s3cret-Pa55"

/* Prints the facts of one message; the test greps them. */
static const char parse_py[] =
    "import sys, email, email.policy\n"
    "m = email.message_from_binary_file(open(sys.argv[1], 'rb'),\n"
    "    policy=email.policy.default)\n"
    "print('SUBJECT:', m['subject'])\n"
    "print('FROM:', m['from'])\n"
    "print('TO:', m['to'])\n"
    "print('RCPT:', m.get('x-rcptto', ''))\n"
    "print('DATE:', m['date'].datetime is not None)\n"
    "print('MSGID:', m['message-id'])\n"
    "print('MIME:', m['mime-version'])\n"
    "print('TYPE:', m.get_content_type())\n"
    "parts = list(m.iter_parts())\n"
    "print('PARTS:', ' '.join('%s;%s' % (p.get_content_type(),\n"
    "    p.get_content_charset()) for p in parts))\n"
    "print('DEFECTS:', len(m.defects) + sum(len(p.defects) for p in parts))\n"
    "print('--TEXT--')\n"
    "print(m.get_body(('plain',)).get_content())\n"
    "print('--HTML--')\n"
    "print(m.get_body(('html',)).get_content())\n";

struct sink {
	pid_t	 pid;
	int	 port;
	char	 maildir[1200];
};

struct fixture {
	char			 tmp[1024];
	char			 state[1100];
	struct config		 cfg;
};

static char a_admin[] = "admins@example.org";
static char a_dpo[] = "dpo@example.org";
static char a_ops[] = "ops@example.org";
static char *to_all[] = { a_admin };
static char *to_blocked[] = { a_dpo };
static char *to_failed[] = { a_ops };
static char site[] = "Example District";
static char cfgpath[] = "/etc/sisfeed/sisfeed.yaml";
static char from[] = "sisfeed@example.org";
static char smtp_url[64];

/* A config as config_load would leave it, mail by SMTP on port. */
static void
fixture_init(struct fixture *f, int port)
{
	static const double pct[NTYPES][NOPS] = {
		{ 10, 20, 2 }, { 25, 25, 5 }, { 25, 25, 5 } };
	int t, o;

	memset(f, 0, sizeof(*f));
	tu_mkdtemp(f->tmp, sizeof(f->tmp));
	snprintf(f->state, sizeof(f->state), "%s/state", f->tmp);
	ck_assert_int_eq(mkdir(f->state, 0700), 0);
	f->cfg.path = cfgpath;
	f->cfg.site = site;
	f->cfg.state_dir = f->state;
	for (t = 0; t < NTYPES; t++)
		for (o = 0; o < NOPS; o++) {
			f->cfg.safety.t[t][o].percent = pct[t][o];
			f->cfg.safety.t[t][o].cap = -1;
		}
	f->cfg.safety.t[TYPE_PERSON][OP_DELETE].cap = 500;
	f->cfg.safety.min_base = 100;
	f->cfg.mail.enabled = 1;
	snprintf(smtp_url, sizeof(smtp_url), "smtp://127.0.0.1:%d", port);
	f->cfg.mail.smtp = smtp_url;
	f->cfg.mail.starttls = STARTTLS_OFF;
	f->cfg.mail.from = from;
	f->cfg.mail.to.v = to_all;
	f->cfg.mail.to.n = 1;
	f->cfg.mail.to_status[RUN_BLOCKED].v = to_blocked;
	f->cfg.mail.to_status[RUN_BLOCKED].n = 1;
	f->cfg.mail.to_status[RUN_FAILED].v = to_failed;
	f->cfg.mail.to_status[RUN_FAILED].n = 1;
	f->cfg.mail.on = 1u << RUN_COMPLETED | 1u << RUN_BLOCKED |
	    1u << RUN_FAILED;
	f->cfg.mail.samples = 3;
	f->cfg.mail.timeout = 10;
}

/* Point the config at an SMTP server on this port. */
static void
set_port(struct fixture *f, int port)
{
	snprintf(smtp_url, sizeof(smtp_url), "smtp://127.0.0.1:%d", port);
	f->cfg.mail.smtp = smtp_url;
}

static void
fixture_done(struct fixture *f)
{
	tu_rmtree(f->tmp);
}

/* Start aiosmtpd: the CLI with extra options, or the AUTH sink. */
static void
sink_start(struct sink *s, const struct fixture *f, const char *name,
    int auth, const char *const *extra)
{
	char port[32], listen[64], log[4200], script[4200];
	const char *argv[24];
	int n = 0;

	s->port = tu_free_port();
	snprintf(port, sizeof(port), "%d", s->port);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", s->port);
	snprintf(s->maildir, sizeof(s->maildir), "%s/%s", f->tmp, name);
	snprintf(log, sizeof(log), "%s/%s.log", f->tmp, name);
	snprintf(script, sizeof(script), "%s/tests/smtp-auth-sink.py",
	    tu_top());
	argv[n++] = PYTHON;
	if (auth) {
		argv[n++] = script;
		argv[n++] = port;
		argv[n++] = s->maildir;
		argv[n++] = "sisfeed";
		argv[n++] = PASSWORD;
	} else {
		argv[n++] = "-m";
		argv[n++] = "aiosmtpd";
		argv[n++] = "-n";
		argv[n++] = "-l";
		argv[n++] = listen;
		while (extra != NULL && *extra != NULL)
			argv[n++] = *extra++;
		argv[n++] = "-c";
		argv[n++] = "aiosmtpd.handlers.Mailbox";
		argv[n++] = s->maildir;
	}
	argv[n] = NULL;
	s->pid = tu_server_start((char *const *)argv, log, s->port);
}

static void
sink_stop(struct sink *s)
{
	tu_server_stop(s->pid, SIGKILL);
	s->pid = 0;
}

/* Number of files in dir (not . or ..); the last one's path in path. */
static int
dir_files(const char *dir, char *path, size_t len)
{
	DIR *d;
	struct dirent *e;
	int n = 0;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (path != NULL)
			snprintf(path, len, "%s/%s", dir, e->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/* Messages in the sink's Maildir; the path of one in path. */
static int
sink_count(const struct sink *s, char *path, size_t len)
{
	char dir[4200];

	snprintf(dir, sizeof(dir), "%s/new", s->maildir);
	return dir_files(dir, path, len);
}

static int
spool_count(const struct fixture *f, char *path, size_t len)
{
	char dir[4300];

	snprintf(dir, sizeof(dir), "%s/spool", f->state);
	return dir_files(dir, path, len);
}

/* The parsed facts of the message file at path (malloc'd). */
static char *
parse_message(const char *path)
{
	char *argv[] = { (char *)PYTHON, (char *)"-c", (char *)parse_py,
	    (char *)path, NULL };
	char *out = NULL;
	int rc;

	rc = tu_run(argv, &out, 30);
	ck_assert_msg(rc == 0, "parsing %s failed: %s", path, out);
	ck_assert_msg(strstr(out, "DEFECTS: 0\n") != NULL,
	    "message has defects: %s", out);
	ck_assert_msg(strstr(out, "MIME: 1.0\n") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "DATE: True\n") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "TYPE: multipart/alternative\n") != NULL,
	    "%s", out);
	ck_assert_msg(strstr(out, "PARTS: text/plain;utf-8 text/html;utf-8\n")
	    != NULL, "%s", out);
	ck_assert_msg(strstr(out, "FROM: sisfeed@example.org\n") != NULL,
	    "%s", out);
	ck_assert_msg(strstr(out, "MSGID: <") != NULL, "%s", out);
	return out;
}

/* The text part of parsed facts (between the markers), in place. */
static const char *
text_part(char *facts)
{
	char *t = strstr(facts, "--TEXT--\n"), *h;

	ck_assert_ptr_nonnull(t);
	if ((h = strstr(t, "--HTML--\n")) != NULL)
		*h = '\0';
	return t + 9;
}

#define HAS(s, x)	ck_assert_msg(strstr((s), (x)) != NULL, \
	"missing \"%s\" in:\n%s", (x), (s))
#define HASNT(s, x)	ck_assert_msg(strstr((s), (x)) == NULL, \
	"unexpected \"%s\" in:\n%s", (x), (s))

/* --- reports built by hand -------------------------------------------- */

static struct changeset cs;
static struct verdict vd;

static void
report_completed(struct run_report *r, const struct config *c)
{
	tu_report_completed(r, c, &cs, &vd);
}

static void
report_blocked(struct run_report *r, const struct config *c)
{
	tu_report_blocked(r, c, &cs, &vd);
}

static void
report_failed(struct run_report *r, const struct config *c)
{
	tu_report_failed(r, c, &cs, &vd);
}

/* --- tests ----------------------------------------------------------- */

START_TEST(smtp_completed)
{
	struct fixture f;
	struct sink s = { 0 };
	struct run_report r;
	char path[4400], *facts;
	const char *text;

	fixture_init(&f, 0);
	sink_start(&s, &f, "mbox", 0, NULL);
	set_port(&f, s.port);
	report_completed(&r, &f.cfg);
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	ck_assert_int_eq(sink_count(&s, path, sizeof(path)), 1);
	sink_stop(&s);
	facts = parse_message(path);
	HAS(facts, "SUBJECT: [sisfeed] Example District: completed \xe2\x80\x94"
	    " persons +3 ~5 -1, groups +0 ~1 -0, memberships +10 ~0 -2\n");
	HAS(facts, "RCPT: admins@example.org\n");
	HAS(facts, "TO: admins@example.org\n");
	text = text_part(facts);
	HAS(text, "Status:    completed");
	HAS(text, "Delivered: sisfeed-20240501.xml.gz (123456 bytes) as "
	    "/incoming/sisfeed-20240501.xml.gz");
	HAS(text, "  persons      deletes          1     0.02%  2% or 500"
	    "      no\n");
	HAS(text, "Persons deactivated: 2, reactivated: 1");
	HAS(text, "read 1.25 s");
	HASNT(text, "--approve");
	free(facts);
	report_free(&r);
	fixture_done(&f);
}
END_TEST

START_TEST(smtp_blocked)
{
	struct fixture f;
	struct sink s = { 0 };
	struct run_report r;
	char path[4400], *facts, *html;
	const char *text;

	fixture_init(&f, 0);
	sink_start(&s, &f, "mbox", 0, NULL);
	set_port(&f, s.port);
	report_blocked(&r, &f.cfg);
	r.max_samples = -1;	/* the mail caps at mail.samples anyway */
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	ck_assert_int_eq(sink_count(&s, path, sizeof(path)), 1);
	sink_stop(&s);
	facts = parse_message(path);
	HAS(facts, "SUBJECT: [sisfeed] Example District: BLOCKED \xe2\x80\x94"
	    " persons -412 (8.2% > 2%)\n");
	HAS(facts, "RCPT: admins@example.org, dpo@example.org\n");
	HAS(facts, "TO: admins@example.org, dpo@example.org\n");
	HASNT(facts, "ops@example.org");
	html = strstr(facts, "--HTML--\n");
	ck_assert_ptr_nonnull(html);
	html = strdup(html);
	ck_assert_ptr_nonnull(html);
	text = text_part(facts);
	HAS(text, "    sisfeed -c /etc/sisfeed/sisfeed.yaml run --approve "
	    "0123456789abcdef\n");
	HAS(text, "  persons      deletes        412      8.2%  2% or 500"
	    "      YES\n");
	HAS(text, "Reason:    persons deletes 412 (8.2%) exceed 2% of 5000");
	HAS(text, "Rejected records: 7 (see "
	    "/var/lib/sisfeed/rejects/20240502T020000Z.txt)");
	HAS(text, "persons deletes (412 in all, 3 shown):");
	HAS(text, "    s1001 Doe, Jane\n");
	HAS(text, "    s1002 \xc3\x96lz, J\xc3\xbcrgen\n");
	HAS(text, "    s1003 <script>x</script>\n");
	HASNT(text, "s1004");
	HAS(html, "s1003 &lt;script&gt;x&lt;/script&gt;");
	HASNT(html, "<script>");
	HAS(html, "width:97px;height:10px;background:#c62828");
	HAS(html, "<meta name=\"viewport\" content=\"width=device-width, "
	    "initial-scale=1\">");
	HAS(html, "run --approve 0123456789abcdef");
	HASNT(html, "s1004");
	free(html);
	free(facts);
	report_free(&r);
	ck_assert_ptr_null(r.samples[TYPE_PERSON][OP_DELETE][0]);
	fixture_done(&f);
}
END_TEST

START_TEST(smtp_failed)
{
	struct fixture f;
	struct sink s = { 0 };
	struct run_report r;
	char path[4400], *facts;
	const char *text;

	fixture_init(&f, 0);
	sink_start(&s, &f, "mbox", 0, NULL);
	set_port(&f, s.port);
	report_failed(&r, &f.cfg);
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	ck_assert_int_eq(sink_count(&s, path, sizeof(path)), 1);
	sink_stop(&s);
	facts = parse_message(path);
	HAS(facts, "SUBJECT: [sisfeed] Example District: FAILED in deliver\n");
	HAS(facts, "RCPT: admins@example.org, ops@example.org\n");
	HASNT(facts, "dpo@example.org");
	text = text_part(facts);
	HAS(text, "Stage:     deliver\n");
	HAS(text, "Error:     sftp.lms.example.com:22: connect: Connection "
	    "refused\n");
	HASNT(text, "Changes against");
	free(facts);
	fixture_done(&f);
}
END_TEST

START_TEST(on_excludes_completed)
{
	struct fixture f;
	struct sink s = { 0 };
	struct run_report r;

	fixture_init(&f, 0);
	sink_start(&s, &f, "mbox", 0, NULL);
	set_port(&f, s.port);
	f.cfg.mail.on = 1u << RUN_BLOCKED | 1u << RUN_FAILED;
	report_completed(&r, &f.cfg);
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	report_failed(&r, &f.cfg);
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	/* Only the failed run mailed; nothing waits in the spool. */
	ck_assert_int_eq(sink_count(&s, NULL, 0), 1);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 0);
	sink_stop(&s);
	fixture_done(&f);
}
END_TEST

/* A throwaway certificate for 127.0.0.1 in f->tmp. */
static void
make_cert(const struct fixture *f, char *cert, char *key, size_t len)
{
	char san[] = "subjectAltName=IP:127.0.0.1,DNS:localhost";
	char *out = NULL;
	int rc;

	snprintf(cert, len, "%s/cert.pem", f->tmp);
	snprintf(key, len, "%s/key.pem", f->tmp);
	{
		char *argv[] = { (char *)OPENSSL, (char *)"req", (char *)"-x509",
		    (char *)"-newkey", (char *)"ec", (char *)"-pkeyopt",
		    (char *)"ec_paramgen_curve:prime256v1", (char *)"-nodes",
		    (char *)"-keyout", key, (char *)"-out", cert,
		    (char *)"-days", (char *)"2", (char *)"-subj",
		    (char *)"/CN=localhost", (char *)"-addext", san, NULL };

		rc = tu_run(argv, &out, 60);
	}
	ck_assert_msg(rc == 0, "openssl: %s", out);
	free(out);
}

START_TEST(starttls_required)
{
	struct fixture f;
	struct sink s = { 0 };
	struct run_report r;
	char cert[4200], key[4200], path[4400], *facts;
	const char *extra[5];

	fixture_init(&f, 0);
	make_cert(&f, cert, key, sizeof(cert));
	extra[0] = "--tlscert";
	extra[1] = cert;
	extra[2] = "--tlskey";
	extra[3] = key;
	extra[4] = NULL;
	sink_start(&s, &f, "tls", 0, extra);
	set_port(&f, s.port);
	f.cfg.mail.starttls = STARTTLS_REQUIRED;
	f.cfg.mail.cafile = cert;
	report_completed(&r, &f.cfg);
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 0);
	ck_assert_int_eq(sink_count(&s, path, sizeof(path)), 1);

	/* Without the CA file the certificate is not trusted: spooled. */
	f.cfg.mail.cafile = NULL;
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 1);
	ck_assert_int_eq(sink_count(&s, NULL, 0), 1);
	sink_stop(&s);
	facts = parse_message(path);
	HAS(facts, "SUBJECT: [sisfeed] Example District: completed");
	free(facts);
	report_free(&r);
	fixture_done(&f);
}
END_TEST

START_TEST(starttls_required_plain_server)
{
	struct fixture f;
	struct sink s = { 0 };
	struct run_report r;

	fixture_init(&f, 0);
	sink_start(&s, &f, "mbox", 0, NULL);
	set_port(&f, s.port);
	f.cfg.mail.starttls = STARTTLS_REQUIRED;
	report_completed(&r, &f.cfg);
	/* The server offers no STARTTLS: nothing goes in clear text. */
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	ck_assert_int_eq(sink_count(&s, NULL, 0), 0);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 1);
	/* starttls: try falls back to plain. */
	f.cfg.mail.starttls = STARTTLS_TRY;
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	ck_assert_int_eq(sink_count(&s, NULL, 0), 1);
	sink_stop(&s);
	fixture_done(&f);
}
END_TEST

START_TEST(smtps)
{
	struct fixture f;
	struct sink s = { 0 };
	struct run_report r;
	char cert[4200], key[4200], path[4400], *facts;
	const char *extra[5];

	fixture_init(&f, 0);
	make_cert(&f, cert, key, sizeof(cert));
	extra[0] = "--smtpscert";
	extra[1] = cert;
	extra[2] = "--smtpskey";
	extra[3] = key;
	extra[4] = NULL;
	sink_start(&s, &f, "smtps", 0, extra);
	snprintf(smtp_url, sizeof(smtp_url), "smtps://127.0.0.1:%d", s.port);
	f.cfg.mail.cafile = cert;
	f.cfg.mail.starttls = STARTTLS_OFF;	/* ignored for smtps */
	report_failed(&r, &f.cfg);
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 0);
	ck_assert_int_eq(sink_count(&s, path, sizeof(path)), 1);
	sink_stop(&s);
	facts = parse_message(path);
	HAS(facts, "SUBJECT: [sisfeed] Example District: FAILED in deliver\n");
	free(facts);
	fixture_done(&f);
}
END_TEST

START_TEST(auth)
{
	struct fixture f;
	struct sink s = { 0 };
	struct run_report r;
	char pwfile[4200], path[4400], *facts, *raw;

	fixture_init(&f, 0);
	sink_start(&s, &f, "auth", 1, NULL);
	set_port(&f, s.port);
	f.cfg.mail.user = (char *)"sisfeed";
	report_blocked(&r, &f.cfg);

	/* Without credentials the server refuses the mail: spooled. */
	f.cfg.mail.user = NULL;
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 1);
	ck_assert_int_eq(sink_count(&s, NULL, 0), 0);

	/* A password file readable by others is refused by name. */
	f.cfg.mail.user = (char *)"sisfeed";
	snprintf(pwfile, sizeof(pwfile), "%s",
	    tu_write(f.tmp, "smtp-password", PASSWORD "\n"));
	ck_assert_int_eq(chmod(pwfile, 0644), 0);
	f.cfg.mail.password_file = pwfile;
	ck_assert_int_eq(mail_test(&f.cfg), -1);
	HAS(error_last(), pwfile);
	HAS(error_last(), "0644");

	/* A wrong password: refused, and not in the error. */
	ck_assert_int_eq(chmod(pwfile, 0600), 0);
	tu_write(f.tmp, "smtp-password", "wrong-password\n");
	ck_assert_int_eq(chmod(pwfile, 0600), 0);
	ck_assert_int_eq(mail_test(&f.cfg), -1);
	HASNT(error_last(), "wrong-password");
	ck_assert_int_eq(sink_count(&s, NULL, 0), 0);

	/* The right password from the file. */
	tu_write(f.tmp, "smtp-password", PASSWORD "\n");
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	ck_assert_int_eq(sink_count(&s, path, sizeof(path)), 1);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 1);
	raw = tu_read(path, NULL);
	ck_assert_ptr_nonnull(raw);
	HASNT(raw, PASSWORD);
	free(raw);
	facts = parse_message(path);
	HAS(facts, "SUBJECT: [sisfeed] Example District: BLOCKED");
	free(facts);

	/* From the environment; this also flushes the spooled one. */
	f.cfg.mail.password_file = NULL;
	setenv("SISFEED_SMTP_PASSWORD", PASSWORD, 1);
	ck_assert_int_eq(mail_flush_spool(&f.cfg), 0);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 0);
	ck_assert_int_eq(sink_count(&s, NULL, 0), 2);
	ck_assert_int_eq(mail_test(&f.cfg), 0);
	ck_assert_int_eq(sink_count(&s, NULL, 0), 3);
	sink_stop(&s);
	report_free(&r);
	fixture_done(&f);
}
END_TEST

START_TEST(spool_then_flush)
{
	struct fixture f;
	struct sink s = { 0 };
	struct run_report r;
	struct stat st;
	char path[4400], *facts, *spooled;
	int port;

	port = tu_free_port();		/* nothing listens there yet */
	fixture_init(&f, port);
	report_blocked(&r, &f.cfg);
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	ck_assert_int_eq(spool_count(&f, path, sizeof(path)), 1);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	spooled = tu_read(path, NULL);
	ck_assert_ptr_nonnull(spooled);
	HAS(spooled, "rcpt admins@example.org\n");
	HAS(spooled, "rcpt dpo@example.org\n");
	free(spooled);
	/* Still down: flushing fails and keeps it. */
	ck_assert_int_eq(mail_flush_spool(&f.cfg), -1);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 1);

	/* The next run: the server is up; the spool is sent and empty. */
	sink_start(&s, &f, "mbox", 0, NULL);
	set_port(&f, s.port);
	ck_assert_int_eq(mail_flush_spool(&f.cfg), 0);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 0);
	ck_assert_int_eq(sink_count(&s, path, sizeof(path)), 1);
	sink_stop(&s);
	facts = parse_message(path);
	HAS(facts, "SUBJECT: [sisfeed] Example District: BLOCKED \xe2\x80\x94"
	    " persons -412 (8.2% > 2%)\n");
	HAS(facts, "RCPT: admins@example.org, dpo@example.org\n");
	HAS(text_part(facts), "run --approve 0123456789abcdef");
	free(facts);
	/* An empty spool is fine. */
	ck_assert_int_eq(mail_flush_spool(&f.cfg), 0);
	report_free(&r);
	fixture_done(&f);
}
END_TEST

static char fake_sendmail[4200];

static void
use_sendmail(struct fixture *f, const char *exitcode)
{
	char dir[4300];

	snprintf(fake_sendmail, sizeof(fake_sendmail), "%s/tests/fake-sendmail",
	    tu_top());
	ck_assert_msg(access(fake_sendmail, X_OK) == 0, "%s not executable",
	    fake_sendmail);
	snprintf(dir, sizeof(dir), "%s/sendmail", f->tmp);
	if (mkdir(dir, 0700) == -1)
		ck_assert_int_eq(access(dir, F_OK), 0);
	setenv("FAKE_SENDMAIL_DIR", dir, 1);
	setenv("FAKE_SENDMAIL_EXIT", exitcode, 1);
	f->cfg.mail.smtp = NULL;
	f->cfg.mail.sendmail = fake_sendmail;
}

/* Lines of a raw message: LF ends, 7-bit, at most 998 octets. */
static void
check_raw(const char *raw)
{
	const char *p;
	size_t col = 0;

	for (p = raw; *p != '\0'; p++) {
		ck_assert_msg((unsigned char)*p < 0x80, "8-bit byte in message");
		ck_assert_msg(*p != '\r', "CR in a sendmail message");
		if (*p == '\n')
			col = 0;
		else
			ck_assert_msg(++col <= 998, "line over 998 octets");
	}
}

START_TEST(sendmail)
{
	struct fixture f;
	struct run_report r;
	char path[4400], argvpath[4400], *argvtxt, *raw, *facts;

	fixture_init(&f, 0);
	use_sendmail(&f, "0");
	report_blocked(&r, &f.cfg);
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 0);
	snprintf(argvpath, sizeof(argvpath), "%s/sendmail/argv.1", f.tmp);
	snprintf(path, sizeof(path), "%s/sendmail/stdin.1", f.tmp);
	argvtxt = tu_read(argvpath, NULL);
	ck_assert_ptr_nonnull(argvtxt);
	{
		char want[4400];

		snprintf(want, sizeof(want), "%s\n-t\n-i\n", fake_sendmail);
		ck_assert_str_eq(argvtxt, want);
	}
	free(argvtxt);
	raw = tu_read(path, NULL);
	ck_assert_ptr_nonnull(raw);
	check_raw(raw);
	ck_assert_msg(strncmp(raw, "Date: ", 6) == 0, "%.200s", raw);
	HAS(raw, "\nTo: admins@example.org, dpo@example.org\n");
	HAS(raw, "\nSubject: =?UTF-8?B?");
	HAS(raw, "\nMIME-Version: 1.0\n");
	free(raw);
	facts = parse_message(path);
	HAS(facts, "SUBJECT: [sisfeed] Example District: BLOCKED \xe2\x80\x94"
	    " persons -412 (8.2% > 2%)\n");
	HAS(text_part(facts), "sisfeed -c /etc/sisfeed/sisfeed.yaml run "
	    "--approve 0123456789abcdef");
	free(facts);

	/* sendmail failing (EX_TEMPFAIL): spooled, then flushed in order. */
	report_free(&r);
	report_failed(&r, &f.cfg);
	setenv("FAKE_SENDMAIL_EXIT", "75", 1);
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	report_free(&r);
	report_completed(&r, &f.cfg);
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 2);
	setenv("FAKE_SENDMAIL_EXIT", "0", 1);
	ck_assert_int_eq(mail_flush_spool(&f.cfg), 0);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 0);
	snprintf(path, sizeof(path), "%s/sendmail/stdin.4", f.tmp);
	facts = parse_message(path);
	HAS(facts, "FAILED in deliver");
	free(facts);
	snprintf(path, sizeof(path), "%s/sendmail/stdin.5", f.tmp);
	facts = parse_message(path);
	HAS(facts, "completed \xe2\x80\x94 persons +3");
	free(facts);
	report_free(&r);
	fixture_done(&f);
}
END_TEST

START_TEST(sendmail_missing)
{
	struct fixture f;
	struct run_report r;

	fixture_init(&f, 0);
	use_sendmail(&f, "0");
	f.cfg.mail.sendmail = (char *)"/nonexistent/sendmail";
	report_failed(&r, &f.cfg);
	ck_assert_int_eq(mail_test(&f.cfg), -1);
	HAS(error_last(), "/nonexistent/sendmail");
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 1);
	fixture_done(&f);
}
END_TEST

START_TEST(test_message)
{
	struct fixture f;
	struct sink s = { 0 };
	char path[4400], *facts;

	fixture_init(&f, 0);
	sink_start(&s, &f, "mbox", 0, NULL);
	set_port(&f, s.port);
	ck_assert_int_eq(mail_test(&f.cfg), 0);
	ck_assert_int_eq(sink_count(&s, path, sizeof(path)), 1);
	sink_stop(&s);
	facts = parse_message(path);
	HAS(facts, "SUBJECT: [sisfeed] Example District: test message\n");
	HAS(facts, "RCPT: admins@example.org, dpo@example.org, "
	    "ops@example.org\n");
	HAS(text_part(facts), "This is a test message from sisfeed");
	free(facts);
	/* Server gone: the test fails and nothing is spooled. */
	ck_assert_int_eq(mail_test(&f.cfg), -1);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 0);
	fixture_done(&f);
}
END_TEST

START_TEST(mail_disabled)
{
	struct fixture f;
	struct run_report r;

	fixture_init(&f, tu_free_port());
	f.cfg.mail.enabled = 0;
	report_failed(&r, &f.cfg);
	ck_assert_int_eq(mail_report(&f.cfg, &r), 0);
	ck_assert_int_eq(mail_flush_spool(&f.cfg), 0);
	ck_assert_int_eq(mail_test(&f.cfg), -1);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 0);
	fixture_done(&f);
}
END_TEST

/* --- sisfeed run with the relay down ---------------------------------- */

/* f->tmp as an installation: the example config delivering night 1 to
 * outbox/, mailing by SMTP to port (nothing need listen there). */
static void
install_at(const struct fixture *f, int port)
{
	static const char *const files[] = { "persons.csv", "groups.csv",
		"memberships.csv" };
	char path[4400], *cfgtext, *p, mail[256];
	size_t i;

	snprintf(path, sizeof(path), "%s/export", f->tmp);
	if (mkdir(path, 0755) == -1 && errno != EEXIST)
		ck_abort_msg("mkdir %s", path);
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/etc/examples/night1/%s",
		    tu_top(), files[i]);
		ck_assert_ptr_nonnull(p = tu_read(path, NULL));
		snprintf(path, sizeof(path), "%s/export", f->tmp);
		tu_write(path, files[i], p);
		free(p);
	}
	snprintf(path, sizeof(path), "%s/outbox", f->tmp);
	if (mkdir(path, 0755) == -1 && errno != EEXIST)
		ck_abort_msg("mkdir %s", path);
	snprintf(path, sizeof(path), "%s/etc/examples/sisfeed.yaml", tu_top());
	ck_assert_ptr_nonnull(cfgtext = tu_read(path, NULL));
	ck_assert_ptr_nonnull(p = strstr(cfgtext, "first_run: block"));
	memcpy(p, "first_run: allow", 16);
	snprintf(mail, sizeof(mail), "mail:\n  smtp: smtp://127.0.0.1:%d\n"
	    "  starttls: off\n  from: sisfeed@example.org\n"
	    "  to: [admins@example.org]\n  timeout: 5\n", port);
	ck_assert_ptr_nonnull(p = malloc(strlen(cfgtext) + strlen(mail) + 1));
	snprintf(p, strlen(cfgtext) + strlen(mail) + 1, "%s%s", cfgtext,
	    mail);
	tu_write(f->tmp, "sisfeed.yaml", p);
	free(p);
	free(cfgtext);
}

/* sisfeed -c f->tmp/sisfeed.yaml CMD; exit status, output in *out. */
static int
run_cmd(const struct fixture *f, const char *cmd, char **out)
{
	char conf[1100];
	char *argv[] = { (char *)tu_sisfeed(), (char *)"-c", conf,
	    (char *)cmd, NULL };

	snprintf(conf, sizeof(conf), "%s/sisfeed.yaml", f->tmp);
	return tu_run(argv, out, 60);
}

/* 1 if a message in the sink's Maildir has needle in its parsed facts
 * (parse_message); its path into path. */
static int
mail_in(const struct sink *s, const char *needle, char *path, size_t len)
{
	char dir[4200], *facts;
	struct dirent *e;
	DIR *d;
	int found = 0;

	snprintf(dir, sizeof(dir), "%s/new", s->maildir);
	ck_assert_ptr_nonnull(d = opendir(dir));
	while (!found && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, len, "%s/%s", dir, e->d_name) >=
		    len)
			continue;
		facts = parse_message(path);
		found = strstr(facts, needle) != NULL;
		free(facts);
	}
	closedir(d);
	return found;
}

/*
 * The relay refuses connections: the run still delivers and commits
 * and exits 0, its mail waits in the spool and status warns of it;
 * the next run, with the relay up, sends the spooled mail first.
 */
START_TEST(run_relay_down)
{
	struct fixture f;
	struct sink s = { 0 };
	char path[4400], *out, *facts;

	fixture_init(&f, 0);
	install_at(&f, tu_free_port());		/* nothing listens there */
	ck_assert_msg(run_cmd(&f, "run", &out) == EXIT_OK, "%s", out);
	HAS(out, "delivered: ");
	HAS(out, "warning: mail: smtp://127.0.0.1:");
	HAS(out, "the mail waits in");
	HASNT(out, "mail: mail: ");
	free(out);
	snprintf(path, sizeof(path), "%s/snapshot", f.state);
	ck_assert(tu_exists(path));
	ck_assert_int_eq(spool_count(&f, NULL, 0), 1);
	ck_assert_int_eq(run_cmd(&f, "status", &out), 1);	/* WARNING */
	HAS(out, "  WARNING  mail_spool   1 message not sent yet\n");
	free(out);

	sink_start(&s, &f, "mbox", 0, NULL);
	install_at(&f, s.port);
	ck_assert_msg(run_cmd(&f, "run", &out) == EXIT_OK, "%s", out);
	HAS(out, "nothing to do");
	free(out);
	ck_assert_int_eq(spool_count(&f, NULL, 0), 0);
	ck_assert_int_eq(sink_count(&s, NULL, 0), 2);	/* and tonight's */
	ck_assert_int_eq(run_cmd(&f, "status", &out), 0);
	HAS(out, "  OK       mail_spool   0 messages not sent yet\n");
	free(out);
	sink_stop(&s);
	/* The spooled one is night 1's summary. */
	ck_assert_int_eq(spool_count(&f, NULL, 0), 0);
	ck_assert(mail_in(&s, "SUBJECT: [sisfeed] Example School District: "
	    "completed", path, sizeof(path)));
	facts = parse_message(path);
	HAS(facts, "RCPT: admins@example.org\n");
	HAS(text_part(facts), "persons");
	free(facts);
	fixture_done(&f);
}
END_TEST

static Suite *
mail_suite(void)
{
	Suite *s = suite_create("mail");
	TCase *tc = tcase_create("mail");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, smtp_completed);
	tcase_add_test(tc, smtp_blocked);
	tcase_add_test(tc, smtp_failed);
	tcase_add_test(tc, on_excludes_completed);
	tcase_add_test(tc, starttls_required);
	tcase_add_test(tc, starttls_required_plain_server);
	tcase_add_test(tc, smtps);
	tcase_add_test(tc, auth);
	tcase_add_test(tc, spool_then_flush);
	tcase_add_test(tc, sendmail);
	tcase_add_test(tc, sendmail_missing);
	tcase_add_test(tc, test_message);
	tcase_add_test(tc, mail_disabled);
	tcase_add_test(tc, run_relay_down);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run_suite(mail_suite()) != 0;
}
