/*
 * check_report.c -- agent/report.c: the text, HTML and JSON summaries,
 * the subject, the sample caps and runs/ID.json.  JSON is checked by
 * Python's json module, which flattens it into "path=value" lines.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sisfeed.h"
#include "tests/testutil.h"

#define PYTHON	"/usr/bin/python3"

static const char flatten_py[] =
    "import json, sys\n"
    "def walk(p, v):\n"
    "    if isinstance(v, dict):\n"
    "        for k in v: walk(p + '.' + k if p else k, v[k])\n"
    "    elif isinstance(v, list):\n"
    "        print('%s#=%d' % (p, len(v)))\n"
    "        for i, x in enumerate(v): walk('%s[%d]' % (p, i), x)\n"
    "    else:\n"
    "        print('%s=%s' % (p, json.dumps(v)))\n"
    "walk('', json.load(open(sys.argv[1], encoding='utf-8')))\n";

#define HAS(s, x)	ck_assert_msg(strstr((s), (x)) != NULL, \
	"missing \"%s\" in:\n%s", (x), (s))
#define HASNT(s, x)	ck_assert_msg(strstr((s), (x)) == NULL, \
	"unexpected \"%s\" in:\n%s", (x), (s))

static char site[] = "Example District";
static char cfgpath[] = "/etc/sisfeed/sisfeed.yaml";
static struct config cfg;
static struct changeset cs;
static struct verdict vd;

static void
config_init(void)
{
	static const double pct[NTYPES][NOPS] = {
		{ 10, 20, 2 }, { 25, 25, 5 }, { 25, 25, 5 } };
	int t, o;

	memset(&cfg, 0, sizeof(cfg));
	cfg.path = cfgpath;
	cfg.site = site;
	for (t = 0; t < NTYPES; t++)
		for (o = 0; o < NOPS; o++) {
			cfg.safety.t[t][o].percent = pct[t][o];
			cfg.safety.t[t][o].cap = -1;
		}
	cfg.safety.t[TYPE_PERSON][OP_DELETE].cap = 500;
	cfg.safety.min_base = 100;
	cfg.mail.samples = 3;
}

static void
report_completed(struct run_report *r)
{
	tu_report_completed(r, &cfg, &cs, &vd);
}

static void
report_blocked(struct run_report *r)
{
	tu_report_blocked(r, &cfg, &cs, &vd);
}

static void
report_failed(struct run_report *r)
{
	tu_report_failed(r, &cfg, &cs, &vd);
}

/* The JSON s flattened by Python ("a.b.c=value" lines); malloc'd. */
static char *
flatten(const char *s)
{
	char dir[1024], path[1100], *out = NULL;
	char *argv[] = { (char *)PYTHON, (char *)"-c", (char *)flatten_py,
	    path, NULL };
	int rc;

	tu_mkdtemp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s", tu_write(dir, "r.json", s));
	rc = tu_run(argv, &out, 30);
	ck_assert_msg(rc == 0, "not valid JSON (%s):\n%s", out, s);
	tu_rmtree(dir);
	return out;
}

START_TEST(stage_names)
{
	ck_assert_str_eq(stage_name(ST_READ), "read");
	ck_assert_str_eq(stage_name(ST_DIFF), "diff");
	ck_assert_str_eq(stage_name(ST_WRITE), "write");
	ck_assert_str_eq(stage_name(ST_SAFETY), "safety");
	ck_assert_str_eq(stage_name(ST_DELIVER), "deliver");
	ck_assert_str_eq(stage_name(ST_COMMIT), "commit");
	ck_assert_str_eq(stage_name(ST_MAIL), "mail");
	ck_assert_str_eq(stage_name(NSTAGES), "unknown");
	ck_assert_str_eq(stage_name(-1), "unknown");
}
END_TEST

START_TEST(subjects)
{
	struct run_report r;
	char *s;

	config_init();
	report_completed(&r);
	s = report_subject(&r);
	ck_assert_str_eq(s, "[sisfeed] Example District: completed \xe2\x80\x94"
	    " persons +3 ~5 -1, groups +0 ~1 -0, memberships +10 ~0 -2");
	free(s);
	r.nothing_to_do = 1;
	s = report_subject(&r);
	ck_assert_str_eq(s, "[sisfeed] Example District: completed \xe2\x80\x94"
	    " no changes");
	free(s);

	report_blocked(&r);
	s = report_subject(&r);
	ck_assert_str_eq(s, "[sisfeed] Example District: BLOCKED \xe2\x80\x94"
	    " persons -412 (8.2% > 2%)");
	free(s);
	/* Two tripped, one by its cap on a big base. */
	cs.base[TYPE_PERSON] = 50000;
	cs.count[TYPE_PERSON][OP_DELETE] = 600;
	vd.percent[TYPE_PERSON][OP_DELETE] = 1.2;
	cs.count[TYPE_MEMBER][OP_INSERT] = 2700;
	vd.percent[TYPE_MEMBER][OP_INSERT] = 30;
	vd.tripped[TYPE_MEMBER][OP_INSERT] = 1;
	s = report_subject(&r);
	ck_assert_str_eq(s, "[sisfeed] Example District: BLOCKED \xe2\x80\x94"
	    " persons -600 (600 > 500), memberships +2700 (30.0% > 25%)");
	free(s);
	/* The first run: nothing tripped, held as an initial load. */
	memset(vd.tripped, 0, sizeof(vd.tripped));
	vd.first_run = 1;
	s = report_subject(&r);
	ck_assert_str_eq(s, "[sisfeed] Example District: BLOCKED \xe2\x80\x94"
	    " first run");
	free(s);
	report_free(&r);

	report_failed(&r);
	s = report_subject(&r);
	ck_assert_str_eq(s, "[sisfeed] Example District: FAILED in deliver");
	free(s);
	/* A site with a newline cannot break the header. */
	cfg.site = (char *)"Evil\r\nBcc: x@example.org";
	s = report_subject(&r);
	ck_assert_str_eq(s, "[sisfeed] Evil??Bcc: x@example.org: FAILED in "
	    "deliver");
	free(s);
}
END_TEST

START_TEST(text_blocked)
{
	struct run_report r;
	char *s;

	config_init();
	report_blocked(&r);
	s = report_text(&r);
	ck_assert_ptr_nonnull(s);
	HAS(s, "sisfeed Example District: BLOCKED\n");
	HAS(s, "Run:       20240502T020000Z\n");
	HAS(s, "Started:   2024-05-02 02:00:00 UTC\n");
	HAS(s, "Reason:    persons deletes 412 (8.2%) exceed 2% of 5000\n");
	HAS(s, "  type         change       count   of base  threshold"
	    "      tripped\n");
	HAS(s, "  persons      inserts          3     0.06%  10%"
	    "            no\n");
	HAS(s, "  persons      deletes        412      8.2%  2% or 500"
	    "      YES\n");
	HAS(s, "  memberships  deletes        300      3.3%  5%"
	    "             no\n");
	HAS(s, "Base (snapshot): persons 5000, groups 120, memberships 9000\n");
	HAS(s, "Now (export):    persons 4591, groups 120, memberships 8710\n");
	HAS(s, "Rejected records: 7 (see "
	    "/var/lib/sisfeed/rejects/20240502T020000Z.txt)\n");
	/* Samples default to mail.samples (3). */
	HAS(s, "  persons deletes (412 in all, 3 shown):\n"
	    "    s1001 Doe, Jane\n    s1002 \xc3\x96lz, J\xc3\xbcrgen\n"
	    "    s1003 <script>x</script>\n");
	HASNT(s, "s1004");
	HAS(s, "\n    sisfeed -c /etc/sisfeed/sisfeed.yaml run --approve "
	    "0123456789abcdef\n");
	HAS(s, "Durations: total 3 s\n");
	HASNT(s, "Delivered:");
	free(s);

	/* plan: every sample held. */
	r.max_samples = -1;
	s = report_text(&r);
	HAS(s, "(412 in all, 5 shown)");
	HAS(s, "    s1005 Poe, Edgar\n");
	free(s);

	/* mail.samples: 0 -- no person data at all. */
	r.max_samples = 0;
	cfg.mail.samples = 0;
	s = report_text(&r);
	HASNT(s, "Samples");
	HASNT(s, "s100");
	free(s);

	/* A config path that needs quoting for the shell. */
	cfg.path = (char *)"/etc/my sisfeed/it's.yaml";
	s = report_text(&r);
	HAS(s, "sisfeed -c '/etc/my sisfeed/it'\\''s.yaml' run --approve "
	    "0123456789abcdef\n");
	free(s);
	report_free(&r);
}
END_TEST

START_TEST(text_completed_failed)
{
	struct run_report r;
	char *s;

	config_init();
	report_completed(&r);
	snprintf(r.approved_by, sizeof(r.approved_by), "alice");
	snprintf(r.approval_id, sizeof(r.approval_id), "fedcba9876543210");
	s = report_text(&r);
	HAS(s, "Status:    completed\n");
	HAS(s, "Approved:  by alice (approval id fedcba9876543210)\n");
	HAS(s, "Delivered: sisfeed-20240501.xml.gz (123456 bytes) as "
	    "/incoming/sisfeed-20240501.xml.gz\n");
	HAS(s, "Persons deactivated: 2, reactivated: 1\n");
	HAS(s, "Durations: read 1.25 s, deliver 3.50 s, total 12 s\n");
	HASNT(s, "--approve");
	HASNT(s, "Reason:");
	free(s);

	/* A small base is judged by the cap only: the text says so. */
	cs.base[TYPE_GROUP] = 12;
	s = report_text(&r);
	HAS(s, "below min_base (100)");
	free(s);

	report_failed(&r);
	s = report_text(&r);
	HAS(s, "sisfeed Example District: FAILED\n");
	HAS(s, "Stage:     deliver\n");
	HAS(s, "Error:     sftp.lms.example.com:22: connect: Connection "
	    "refused\n");
	HASNT(s, "Changes against");
	HASNT(s, "type ");
	free(s);
}
END_TEST

START_TEST(html_escaped)
{
	struct run_report r;
	char *s;

	config_init();
	cfg.site = (char *)"A & B <School>";
	report_blocked(&r);
	cfg.safety.t[TYPE_GROUP][OP_UPDATE].percent = -1;	/* none */
	s = report_html(&r);
	ck_assert_ptr_nonnull(s);
	HAS(s, "<h2 style=\"margin:0 0 8px\">A &amp; B &lt;School&gt;: "
	    "BLOCKED</h2>");
	/* The verdict and the approve command first, before the table. */
	ck_assert_ptr_nonnull(strstr(s, "id=\"approve\""));
	ck_assert(strstr(s, "id=\"approve\"") < strstr(s, "<table"));
	HAS(s, "<b>BLOCKED: nothing was delivered; an approval is needed."
	    "</b>");
	HAS(s, "<li>s1003 &lt;script&gt;x&lt;/script&gt;</li>");
	HASNT(s, "<script>");
	HASNT(s, "s1004");
	/* The tripped row: red, 4.1 times the threshold on the log
	 * scale past the mark at 60px. */
	HAS(s, "<tr style=\"background:#ffebee\"><td>persons</td>"
	    "<td>deletes</td><td style=\"text-align:right\">412</td>");
	HAS(s, "<div style=\"width:97px;height:10px;background:#c62828\">");
	HAS(s, "</div></div> 4.1x</td>");
	/* Memberships deletes at 3.3% of 5%: 40px, amber is from 75%. */
	HAS(s, "<div style=\"width:40px;height:10px;background:#2e7d32\">");
	HAS(s, "</div></div> 67%</td>");
	/* No threshold, no bar. */
	HAS(s, "<td>groups</td><td>updates</td><td style=\"text-align:right\">"
	    "1</td><td style=\"text-align:right\">0.8%</td><td>none</td>"
	    "<td>no</td><td></td></tr>");
	HAS(s, "\">sisfeed -c /etc/sisfeed/sisfeed.yaml run --approve "
	    "0123456789abcdef</pre>");
	HAS(s, "<code id=\"approval-id\">0123456789abcdef</code>");
	HAS(s, "Rejected records: 7");
	free(s);
	report_free(&r);

	report_failed(&r);
	snprintf(r.error, sizeof(r.error), "bad <b>\"thing\"</b> & 'more'");
	s = report_html(&r);
	HAS(s, "Failed in stage <b>deliver</b>");
	HAS(s, "\">bad &lt;b&gt;&quot;thing&quot;&lt;/b&gt; &amp; "
	    "&#39;more&#39;</pre>");
	HASNT(s, "<table");
	free(s);
}
END_TEST

/*
 * The verdict first: a blocked report says so and gives the approve
 * command (sudo -u OWNER, on HOST) before the table; a failed one
 * never says delivered, even when a name was set.
 */
START_TEST(verdict_first)
{
	struct run_report r;
	char *s, *h;

	config_init();
	report_blocked(&r);
	snprintf(r.owner, sizeof(r.owner), "sisfeed");
	snprintf(r.host, sizeof(r.host), "feed1.example.org");
	s = report_text(&r);
	ck_assert_ptr_nonnull(s);
	HAS(s, ": BLOCKED\n\nBLOCKED: nothing was delivered; an approval is "
	    "needed.\nTo deliver exactly this change set, run on "
	    "feed1.example.org:\n\n    sudo -u sisfeed sisfeed -c "
	    "/etc/sisfeed/sisfeed.yaml run --approve 0123456789abcdef\n");
	ck_assert(strstr(s, "--approve") < strstr(s, "Changes against"));
	h = report_html(&r);
	ck_assert_ptr_nonnull(h);
	HAS(h, "run on <b>feed1.example.org</b>:</p>");
	HAS(h, ">sudo -u sisfeed sisfeed -c /etc/sisfeed/sisfeed.yaml run "
	    "--approve 0123456789abcdef</pre>");
	free(s);
	free(h);
	report_free(&r);

	report_failed(&r);
	snprintf(r.file_name, sizeof(r.file_name), "sisfeed-20240502.xml");
	snprintf(r.remote_path, sizeof(r.remote_path), "/in/sisfeed.xml");
	s = report_text(&r);
	h = report_html(&r);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(h);
	HAS(s, "FAILED: the snapshot did not advance");
	HASNT(s, "Delivered");
	HASNT(h, "Delivered");
	free(s);
	free(h);
	report_free(&r);
}
END_TEST

START_TEST(json_reports)
{
	struct run_report r;
	char *s, *f;

	config_init();
	report_blocked(&r);
	s = report_json(&r);
	f = flatten(s);
	HAS(f, "run_id=\"20240502T020000Z\"\n");
	HAS(f, "site=\"Example District\"\n");
	HAS(f, "status=\"blocked\"\n");
	HAS(f, "started=\"2024-05-02T02:00:00Z\"\n");
	HAS(f, "approval_id=\"0123456789abcdef\"\n");
	HAS(f, "approve_command=\"sisfeed -c /etc/sisfeed/sisfeed.yaml run "
	    "--approve 0123456789abcdef\"\n");
	HAS(f, "changes.persons.base=5000\n");
	HAS(f, "changes.persons.now=4591\n");
	HAS(f, "changes.persons.deletes.count=412\n");
	HAS(f, "changes.persons.deletes.percent=8.24\n");
	HAS(f, "changes.persons.deletes.threshold_percent=2\n");
	HAS(f, "changes.persons.deletes.threshold_cap=500\n");
	HAS(f, "changes.persons.deletes.tripped=true\n");
	HAS(f, "changes.persons.inserts.tripped=false\n");
	HAS(f, "changes.persons.inserts.threshold_cap=null\n");
	HAS(f, "changes.memberships.deletes.count=300\n");
	HAS(f, "rejects.count=7\n");
	HAS(f, "samples.persons deletes#=3\n");
	HAS(f, "samples.persons deletes[1]=\"s1002 \\u00d6lz, J\\u00fcrgen\"\n");
	HAS(f, "delivery=null\n");
	HAS(f, "seconds.total=3\n");
	free(f);
	free(s);
	report_free(&r);

	report_completed(&r);
	s = report_json(&r);
	f = flatten(s);
	HAS(f, "status=\"completed\"\n");
	HAS(f, "changes.persons.deactivated=2\n");
	HAS(f, "changes.persons.reactivated=1\n");
	HAS(f, "delivery.file=\"sisfeed-20240501.xml.gz\"\n");
	HAS(f, "delivery.size=123456\n");
	HAS(f, "seconds.read=1.25\n");
	HAS(f, "seconds.diff=0\n");
	HAS(f, "approve_command=null\n");
	free(f);
	free(s);

	/* Failed early: no change set; every awkward byte escaped. */
	report_failed(&r);
	snprintf(r.error, sizeof(r.error),
	    "q\" b\\ n\n c\x01 bad\xff u\xc3\xbc end");
	s = report_json(&r);
	f = flatten(s);
	HAS(f, "status=\"failed\"\n");
	HAS(f, "stage=\"deliver\"\n");
	HAS(f, "error=\"q\\\" b\\\\ n\\n c\\u0001 bad\\ufffd u\\u00fc end\"\n");
	HAS(f, "changes=null\n");
	free(f);
	free(s);
}
END_TEST

START_TEST(json_file)
{
	struct run_report r;
	struct stat st;
	char dir[1024], path[1200], *s, *f;

	config_init();
	tu_mkdtemp(dir, sizeof(dir));
	cfg.state_dir = dir;
	report_blocked(&r);
	ck_assert_int_eq(report_write_json(&r), 0);
	snprintf(path, sizeof(path), "%s/runs", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/runs/20240502T020000Z.json", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	s = tu_read(path, NULL);
	ck_assert_ptr_nonnull(s);
	f = flatten(s);
	HAS(f, "changes.persons.deletes.count=412\n");
	HAS(f, "samples.persons deletes#=3\n");
	free(f);
	free(s);
	/* Written again: replaced, still one file. */
	cs.count[TYPE_PERSON][OP_DELETE] = 413;
	ck_assert_int_eq(report_write_json(&r), 0);
	s = tu_read(path, NULL);
	HAS(s, "\"count\": 413");
	free(s);
	/* A run id that is not a file name. */
	snprintf(r.run_id, sizeof(r.run_id), "../x");
	ck_assert_int_eq(report_write_json(&r), -1);
	report_free(&r);
	tu_rmtree(dir);
}
END_TEST

START_TEST(free_samples)
{
	struct run_report r;

	config_init();
	report_blocked(&r);
	report_free(&r);
	ck_assert_ptr_null(r.samples[TYPE_PERSON][OP_DELETE][0]);
	ck_assert_uint_eq(r.nsamples[TYPE_PERSON][OP_DELETE], 0);
	report_free(&r);	/* twice is fine */
}
END_TEST

static Suite *
report_suite(void)
{
	Suite *s = suite_create("report");
	TCase *tc = tcase_create("report");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, stage_names);
	tcase_add_test(tc, subjects);
	tcase_add_test(tc, text_blocked);
	tcase_add_test(tc, text_completed_failed);
	tcase_add_test(tc, html_escaped);
	tcase_add_test(tc, verdict_first);
	tcase_add_test(tc, json_reports);
	tcase_add_test(tc, json_file);
	tcase_add_test(tc, free_samples);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run_suite(report_suite()) != 0;
}
