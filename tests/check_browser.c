/*
 * check_browser.c -- the blocked-run mail as a real browser lays it
 * out: Debian's headless Chromium loads a page holding the mail's HTML
 * in two frames, 390 px (a phone) and 1024 px wide; a script measures
 * in each whether the verdict, the approve command and the approval id
 * lie inside the width with nothing overflowing them, and whether the
 * page scrolls sideways, and
 * writes that into the DOM, which --dump-dom prints.
 *
 * Without chromium the suite says so and passes, except in CI (CI set
 * in the environment), where chromium is in etc/debian-packages.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testutil.h"

#define CHROMIUM	"/usr/bin/chromium"

static char dir[PATH_MAX];

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

/* Append s escaped for an attribute value ("&" and '"'). */
static void
attr_escape(struct sbuf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '&')
			sbuf_puts(b, "&amp;");
		else if (*s == '"')
			sbuf_puts(b, "&quot;");
		else
			sbuf_putn(b, s, 1);
	}
}

/* The measuring page: the mail in two frames of the given widths. */
static char *
harness(const char *mail)
{
	static const int widths[] = { 390, 1024 };
	struct sbuf b = { 0 };
	size_t i;

	sbuf_puts(&b, "<!DOCTYPE html>\n<html><body style=\"margin:0\">\n");
	for (i = 0; i < 2; i++) {
		sbuf_printf(&b, "<iframe id=\"f%d\" width=\"%d\" height=\"900\" "
		    "style=\"border:0;display:block\" srcdoc=\"", widths[i],
		    widths[i]);
		attr_escape(&b, mail);
		sbuf_puts(&b, "\"></iframe>\n");
	}
	sbuf_puts(&b, "<script>\n"
	    "function inside(d, id) {\n"
	    "  var e = d.getElementById(id), w = d.defaultView.innerWidth;\n"
	    "  if (!e) return 'missing';\n"
	    "  if (e.scrollWidth > e.clientWidth + 1)\n"
	    "    return 'overflows(' + e.scrollWidth + ' in ' +\n"
	    "      e.clientWidth + ')';\n"
	    "  var r = e.getBoundingClientRect();\n"
	    "  return r.width > 0 && r.left >= 0 && r.right <= w + 0.5 ?\n"
	    "    'ok' : 'cut(' + r.left + '..' + r.right + ' of ' + w + ')';\n"
	    "}\n"
	    "window.addEventListener('load', function () {\n"
	    "  var out = '';\n"
	    "  [390, 1024].forEach(function (w) {\n"
	    "    var d = document.getElementById('f' + w).contentDocument;\n"
	    "    var sw = d.documentElement.scrollWidth;\n"
	    "    out += 'width=' + w + ' inner=' + d.defaultView.innerWidth +\n"
	    "      ' verdict=' + inside(d, 'verdict') +\n"
	    "      ' approve=' + inside(d, 'approve') +\n"
	    "      ' id=' + inside(d, 'approval-id') +\n"
	    "      ' sideways=' + (sw <= d.defaultView.innerWidth ? 'no' :\n"
	    "      sw) + ';';\n"
	    "  });\n"
	    "  var p = document.createElement('pre');\n"
	    "  p.id = 'measured';\n"
	    "  p.textContent = 'MEASURED ' + out + ' END';\n"
	    "  document.body.appendChild(p);\n"
	    "});\n"
	    "</script>\n</body></html>\n");
	return sbuf_done(&b, "harness");
}

START_TEST(test_mail_layout)
{
	static char site[] = "Example School District";
	static char path[] = "/etc/sisfeed/sisfeed.yaml";
	struct config cfg;
	struct changeset cs;
	struct verdict vd;
	struct run_report r;
	char *mail, *page, *out = NULL, url[PATH_MAX + 16];
	char profile[PATH_MAX + 32];
	const char *file, *m;
	int rc;

	if (access(CHROMIUM, X_OK) == -1) {
		ck_assert_msg(getenv("CI") == NULL, "CI without chromium: "
		    "it is in etc/debian-packages");
		fprintf(stderr, "check_browser: skipped, no %s here "
		    "(apt-get install chromium)\n", CHROMIUM);
		return;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.site = site;
	cfg.path = path;
	cfg.safety.min_base = 100;
	cfg.mail.samples = 3;
	tu_report_blocked(&r, &cfg, &cs, &vd);
	snprintf(r.owner, sizeof(r.owner), "sisfeed");
	snprintf(r.host, sizeof(r.host), "lms-feed.district.example.org");
	mail = mail_html(&r);
	ck_assert_ptr_nonnull(mail);
	page = harness(mail);
	ck_assert_ptr_nonnull(page);
	file = tu_write(dir, "page.html", page);
	snprintf(url, sizeof(url), "file://%s", file);
	snprintf(profile, sizeof(profile), "--user-data-dir=%s/profile", dir);
	{
		char *argv[] = { (char *)CHROMIUM, (char *)"--headless",
		    (char *)"--no-sandbox", (char *)"--disable-gpu",
		    (char *)"--no-first-run",
		    (char *)"--disable-background-networking",
		    (char *)"--disable-component-update",
		    (char *)"--disable-sync", profile,
		    (char *)"--window-size=1100,1900", (char *)"--dump-dom",
		    url, NULL };

		rc = tu_run(argv, &out, 120);
	}
	ck_assert_msg(rc == 0, "chromium: exit %d:\n%s", rc, out);
	m = strstr(out, "MEASURED ");
	ck_assert_msg(m != NULL, "no measurement in:\n%s", out);
	ck_assert_msg(strstr(m, "width=390 inner=390 verdict=ok approve=ok "
	    "id=ok sideways=no;") != NULL, "at 390 px: %.300s", m);
	ck_assert_msg(strstr(m, "width=1024 inner=1024 verdict=ok approve=ok "
	    "id=ok sideways=no;") != NULL, "at 1024 px: %.300s", m);
	free(out);
	free(page);
	free(mail);
	report_free(&r);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("browser");
	TCase *tc = tcase_create("mail");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_mail_layout);
	suite_add_tcase(s, tc);
	return tu_run_suite(s) != 0;
}
