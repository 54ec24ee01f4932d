/*
 * report.c -- the run's summary: plain text (plan, mail), HTML (mail),
 * JSON (runs/ID.json, monitoring) and the mail subject.
 *
 * Every renderer reads one struct run_report and says the same facts:
 * status and reason, the change table against the thresholds, rejects,
 * samples (capped), the approve command, the error, the delivered file
 * and the durations.  Nothing secret is in a run_report, and person
 * data only arrives through the samples, which are capped here.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sisfeed.h"

/*
 * Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if
 * the bytes there are not one.
 */
static size_t
utf8_seq(const char *s, size_t n)
{
	unsigned char c = (unsigned char)s[0];
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n || !utf8_valid(s, len))
		return 0;
	return len;
}

/* Plain text: control characters become '?', bad UTF-8 U+FFFD. */
static void
sb_text(struct sbuf *b, const char *s)
{
	size_t n = strlen(s), i = 0, k;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f) {
			sbuf_putn(b, c == '\t' ? " " : "?", 1);
			i++;
		} else if ((k = utf8_seq(s + i, n - i)) == 0) {
			sbuf_puts(b, "\xef\xbf\xbd");
			i++;
		} else {
			sbuf_putn(b, s + i, k);
			i += k;
		}
	}
}

/* HTML text or attribute value, escaped. */
static void
sb_html(struct sbuf *b, const char *s)
{
	size_t n = strlen(s), i = 0, k;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '&':
			sbuf_puts(b, "&amp;");
			break;
		case '<':
			sbuf_puts(b, "&lt;");
			break;
		case '>':
			sbuf_puts(b, "&gt;");
			break;
		case '"':
			sbuf_puts(b, "&quot;");
			break;
		case '\'':
			sbuf_puts(b, "&#39;");
			break;
		default:
			if (c < 0x20 || c == 0x7f) {
				sbuf_puts(b, c == '\n' || c == '\t' ? " " : "?");
				break;
			}
			if ((k = utf8_seq(s + i, n - i)) == 0) {
				sbuf_puts(b, "&#xfffd;");
				break;
			}
			sbuf_putn(b, s + i, k);
			i += k;
			continue;
		}
		i++;
	}
}

/*
 * What the text and HTML renderers differ in where they show the same
 * facts: how a value is escaped, a paragraph, a code span, a titled
 * list of sample records.
 */
struct markup {
	void	 (*esc)(struct sbuf *, const char *);
	const char *para_open, *para_close;
	const char *code_open, *code_close;
	const char *head_open, *head_close;	/* a section's heading */
	const char *title_open, *title_close;	/* a list's title */
	const char *list_open, *list_close;
	const char *item_open, *item_close;
};

static const struct markup text_markup = {
	sb_text, "\n", "\n", "", "", "\n", ":\n", "\n  ", ":\n",
	"", "", "    ", "\n",
};

static const struct markup html_markup = {
	sb_html, "<p>", "</p>\n", "<code>", "</code>", "<h3>", "</h3>\n",
	"<p>", ":</p>\n",
	"<ul>\n", "</ul>\n", "<li>", "</li>\n",
};

/* Items [0, n) as a list, each after label; NULL items are left out. */
static void
put_items(struct sbuf *b, const struct markup *m, char *const *items,
    size_t n, const char *label)
{
	size_t i;

	sbuf_puts(b, m->list_open);
	for (i = 0; i < n; i++) {
		if (items[i] == NULL)
			continue;
		sbuf_puts(b, m->item_open);
		sbuf_puts(b, label);
		m->esc(b, items[i]);
		sbuf_puts(b, m->item_close);
	}
	sbuf_puts(b, m->list_close);
}

/* A value in a code span. */
static void
put_code(struct sbuf *b, const struct markup *m, const char *s)
{
	sbuf_puts(b, m->code_open);
	m->esc(b, s);
	sbuf_puts(b, m->code_close);
}

/* A JSON string (with the quotes), or null for NULL. */
static void
sb_json(struct sbuf *b, const char *s)
{
	size_t n, i = 0, k;

	if (s == NULL) {
		sbuf_puts(b, "null");
		return;
	}
	n = strlen(s);
	sbuf_putn(b, "\"", 1);
	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			sbuf_putn(b, "\\", 1);
			sbuf_putn(b, s + i, 1);
		} else if (c == '\n')
			sbuf_puts(b, "\\n");
		else if (c == '\t')
			sbuf_puts(b, "\\t");
		else if (c == '\r')
			sbuf_puts(b, "\\r");
		else if (c < 0x20 || c == 0x7f)
			sbuf_printf(b, "\\u%04x", c);
		else if ((k = utf8_seq(s + i, n - i)) == 0)
			sbuf_puts(b, "\\ufffd");
		else {
			sbuf_putn(b, s + i, k);
			i += k;
			continue;
		}
		i++;
	}
	sbuf_putn(b, "\"", 1);
}

/*
 * Append s as a JSON string: quoted, escaped, bad UTF-8 as U+FFFD;
 * null for NULL.
 */
void
report_json_str(struct sbuf *b, const char *s)
{
	sb_json(b, s);
}

/* A JSON string, or null when s is empty. */
static void
sb_json_opt(struct sbuf *b, const char *s)
{
	sb_json(b, s == NULL || *s == '\0' ? NULL : s);
}

/* A JSON number, or null when not finite or negative (= none). */
static void
sb_json_num(struct sbuf *b, double d)
{
	if (!isfinite(d) || d < 0)
		sbuf_puts(b, "null");
	else
		sbuf_printf(b, "%.4g", d);
}

static const char *stage_names[NSTAGES] = {
	"read", "diff", "write", "safety", "deliver", "commit", "mail"
};

/*
 * The name of a stage index ("read", "diff", ...), or "unknown".
 */
const char *
stage_name(int st)
{
	if (st < 0 || st >= NSTAGES)
		return "unknown";
	return stage_names[st];
}

static const char *
status_word(const struct run_report *r)
{
	switch (r->status) {
	case RUN_COMPLETED:
		return "completed";
	case RUN_BLOCKED:
		return "BLOCKED";
	case RUN_FAILED:
		return "FAILED";
	default:
		return "unknown";
	}
}

static const char *
status_json(const struct run_report *r)
{
	switch (r->status) {
	case RUN_COMPLETED:
		return "completed";
	case RUN_BLOCKED:
		return "blocked";
	case RUN_FAILED:
		return "failed";
	default:
		return "unknown";
	}
}

static const char *
site_of(const struct run_report *r)
{
	if (r->cfg != NULL && r->cfg->site != NULL && *r->cfg->site != '\0')
		return r->cfg->site;
	return "sisfeed";
}

static const char *
reason_of(const struct run_report *r)
{
	if (r->reason[0] != '\0')
		return r->reason;
	if (r->v != NULL)
		return r->v->reason;
	return "";
}

static const char *
approval_of(const struct run_report *r)
{
	if (r->approval_id[0] != '\0')
		return r->approval_id;
	if (r->v != NULL)
		return r->v->approval_id;
	return "";
}

/* The threshold configured for (t, o); none when there is no config. */
static struct threshold
threshold_of(const struct run_report *r, int t, int o)
{
	struct threshold none = { -1, -1 };

	if (r->cfg == NULL)
		return none;
	return r->cfg->safety.t[t][o];
}

/* Percent of the base, from the verdict or computed; -1 if none. */
static double
percent_of(const struct run_report *r, int t, int o)
{
	if (r->v != NULL)
		return r->v->percent[t][o];
	if (r->cs == NULL || r->cs->base[t] == 0)
		return -1;
	return 100.0 * (double)r->cs->count[t][o] / (double)r->cs->base[t];
}

static int
tripped(const struct run_report *r, int t, int o)
{
	return r->v != NULL && r->v->tripped[t][o];
}

/* "8.2%", "0.06%", "0%", or "-" when there is no base. */
static void
fmt_pct(double p, char *buf, size_t len)
{
	if (!isfinite(p) || p < 0)
		snprintf(buf, len, "-");
	else if (p == 0)
		snprintf(buf, len, "0%%");
	else if (p < 0.1)
		snprintf(buf, len, "%.2f%%", p);
	else
		snprintf(buf, len, "%.1f%%", p);
}

/* "2%", "500", "2% or 500", "none". */
static void
fmt_threshold(struct threshold th, char *buf, size_t len)
{
	if (th.percent >= 0 && th.cap >= 0)
		snprintf(buf, len, "%g%% or %ld", th.percent, th.cap);
	else if (th.percent >= 0)
		snprintf(buf, len, "%g%%", th.percent);
	else if (th.cap >= 0)
		snprintf(buf, len, "%ld", th.cap);
	else
		snprintf(buf, len, "none");
}

/* "2024-05-01 02:00:00 UTC" (iso=0) or "2024-05-01T02:00:00Z". */
static void
fmt_time(time_t t, int iso, char *buf, size_t len)
{
	struct tm tm;

	if (t == 0 || gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "-");
		return;
	}
	strftime(buf, len, iso ? "%Y-%m-%dT%H:%M:%SZ" :
	    "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* How many samples of (t, o) a renderer shows. */
static size_t
samples_shown(const struct run_report *r, int t, int o)
{
	size_t n = r->nsamples[t][o];
	int lim;

	if (n > REPORT_SAMPLES)
		n = REPORT_SAMPLES;
	if (r->max_samples < 0)
		return n;
	lim = r->cfg != NULL ? r->cfg->mail.samples : 0;
	if (lim <= 0)
		return 0;
	if ((size_t)lim < n)
		n = (size_t)lim;
	return n;
}

static int
any_samples(const struct run_report *r)
{
	int t, o;

	for (t = 0; t < NTYPES; t++)
		for (o = 0; o < NOPS; o++)
			if (samples_shown(r, t, o) > 0 &&
			    r->samples[t][o][0] != NULL)
				return 1;
	return 0;
}

/* The exact approve command into b (plain, not escaped). */
static void
sb_approve(struct sbuf *b, const struct run_report *r)
{
	const char *path = r->cfg != NULL ? r->cfg->path : NULL;

	if (r->owner[0] != '\0' && strcmp(r->owner, "root") != 0) {
		sbuf_puts(b, "sudo -u ");
		sbuf_shell_word(b, r->owner);
		sbuf_putn(b, " ", 1);
	}
	sbuf_puts(b, "sisfeed ");
	if (path != NULL && *path != '\0') {
		sbuf_puts(b, "-c ");
		sbuf_shell_word(b, path);
		sbuf_putn(b, " ", 1);
	}
	sbuf_printf(b, "run --approve %s", approval_of(r));
}

/*
 * The exact approve command, with "sudo -u OWNER" in front unless the
 * owner is root or unknown.  malloc'd, or NULL (error set).
 */
char *
report_approve_command(const struct run_report *r)
{
	struct sbuf b = { 0 };

	sb_approve(&b, r);
	return sbuf_done(&b, "report");
}

static double
total_seconds(const struct run_report *r)
{
	if (r->started == 0 || r->finished < r->started)
		return -1;
	return difftime(r->finished, r->started);
}

static void	text_checks(struct sbuf *, const struct run_report *);
static void	text_approval(struct sbuf *, const struct run_report *);
static void	text_held(struct sbuf *, const struct run_report *);
static void	html_held(struct sbuf *, const struct run_report *);
static void	json_held(struct sbuf *, const struct run_report *);
static void	html_approval(struct sbuf *, const struct run_report *);
static void	json_approval(struct sbuf *, const struct run_report *);
static void	html_checks(struct sbuf *, const struct run_report *);
static void	json_checks(struct sbuf *, const struct run_report *);

/* ------------------------------------------------------------------ */
/* Plain text.                                                         */

/* The verdict in one line, as the mail's first words say it. */
static const char *
verdict_line(const struct run_report *r)
{
	switch (r->status) {
	case RUN_COMPLETED:
		return r->nothing_to_do ? "NOTHING TO DO: the export matches "
		    "the last delivered snapshot." : "DELIVERED.";
	case RUN_BLOCKED:
		return "BLOCKED: nothing was delivered; an approval is needed.";
	default:
		return "FAILED: the snapshot did not advance; the next run "
		    "tries the same change set again.";
	}
}

/* Where to approve: "on HOST" (or "" when unknown). */
static void
sb_where(struct sbuf *b, const struct run_report *r, int html)
{
	if (r->host[0] == '\0')
		return;
	sbuf_puts(b, " on ");
	if (html) {
		sbuf_puts(b, "<b>");
		sb_html(b, r->host);
		sbuf_puts(b, "</b>");
	} else
		sb_text(b, r->host);
}

/* The verdict first, and for a blocked run the approve command. */
static void
text_verdict(struct sbuf *b, const struct run_report *r)
{
	sbuf_printf(b, "%s\n", verdict_line(r));
	if (r->status == RUN_BLOCKED && *approval_of(r) != '\0') {
		sbuf_puts(b, "To deliver exactly this change set, run");
		sb_where(b, r, 0);
		sbuf_puts(b, ":\n\n    ");
		sb_approve(b, r);
		sbuf_puts(b, "\n\nIf the export changes meanwhile, the run "
		    "blocks again with a new id.\n");
	}
	sbuf_putn(b, "\n", 1);
}

static void
text_head(struct sbuf *b, const struct run_report *r)
{
	char t1[64], t2[64];

	sbuf_puts(b, "sisfeed ");
	sb_text(b, site_of(r));
	sbuf_printf(b, ": %s\n\n", status_word(r));
	text_verdict(b, r);
	fmt_time(r->started, 0, t1, sizeof(t1));
	fmt_time(r->finished, 0, t2, sizeof(t2));
	sbuf_printf(b, "Run:       %s\n", r->run_id[0] ? r->run_id : "-");
	sbuf_printf(b, "Started:   %s\nFinished:  %s\n", t1, t2);
	sbuf_printf(b, "Status:    %s\n", status_word(r));
	if (r->status == RUN_COMPLETED && r->nothing_to_do)
		sbuf_puts(b, "Nothing to do: the export matches the last "
		    "delivered snapshot.\n");
	if (r->v != NULL && r->v->first_run)
		sbuf_puts(b, "First run: no snapshot yet, this is an initial "
		    "load.\n");
	if (r->status == RUN_BLOCKED || *reason_of(r) != '\0') {
		sbuf_puts(b, "Reason:    ");
		sb_text(b, *reason_of(r) ? reason_of(r) : "-");
		sbuf_putn(b, "\n", 1);
	}
	if (r->approved_by[0] != '\0') {
		sbuf_puts(b, "Approved:  by ");
		sb_text(b, r->approved_by);
		if (*approval_of(r) != '\0')
			sbuf_printf(b, " (approval id %s)", approval_of(r));
		sbuf_putn(b, "\n", 1);
	}
	if (r->status == RUN_FAILED) {
		sbuf_puts(b, "Stage:     ");
		sb_text(b, r->stage[0] ? r->stage : "unknown");
		sbuf_puts(b, "\nError:     ");
		sb_text(b, r->error[0] ? r->error : "unknown");
		sbuf_putn(b, "\n", 1);
	}
}

static void
text_table(struct sbuf *b, const struct run_report *r)
{
	const struct changeset *cs = r->cs;
	char pct[32], thr[64];
	int t, o, small = 0;
	long min_base = r->cfg != NULL ? r->cfg->safety.min_base : 0;

	sbuf_puts(b, "\nChanges against the last delivered snapshot:\n\n");
	sbuf_printf(b, "  %-12s %-8s %9s %9s  %-14s %s\n", "type", "change",
	    "count", "of base", "threshold", "tripped");
	for (t = 0; t < NTYPES; t++) {
		for (o = 0; o < NOPS; o++) {
			fmt_pct(percent_of(r, t, o), pct, sizeof(pct));
			fmt_threshold(threshold_of(r, t, o), thr, sizeof(thr));
			sbuf_printf(b, "  %-12s %-8s %9zu %9s  %-14s %s\n",
			    type_name(t), op_name(o), cs->count[t][o], pct,
			    thr, tripped(r, t, o) ? "YES" : "no");
		}
		if ((long)cs->base[t] < min_base)
			small = 1;
	}
	sbuf_puts(b, "\n");
	sbuf_printf(b, "Base (snapshot): persons %zu, groups %zu, "
	    "memberships %zu\n", cs->base[TYPE_PERSON], cs->base[TYPE_GROUP],
	    cs->base[TYPE_MEMBER]);
	sbuf_printf(b, "Now (export):    persons %zu, groups %zu, "
	    "memberships %zu\n", r->count[TYPE_PERSON], r->count[TYPE_GROUP],
	    r->count[TYPE_MEMBER]);
	sbuf_printf(b, "Persons deactivated: %zu, reactivated: %zu\n",
	    cs->deactivated, cs->reactivated);
	if (small)
		sbuf_printf(b, "A base below min_base (%ld) is judged as if it "
		    "were min_base.\n", min_base);
}

/*
 * Samples of the records the tripped thresholds would touch, a titled
 * list per type and operation.
 */
static void
put_samples(struct sbuf *b, const struct run_report *r,
    const struct markup *m)
{
	size_t n;
	int t, o;

	if (!any_samples(r))
		return;
	sbuf_puts(b, m->head_open);
	sbuf_puts(b, "Samples of the records the tripped thresholds would "
	    "touch");
	sbuf_puts(b, m->head_close);
	for (t = 0; t < NTYPES; t++) {
		for (o = 0; o < NOPS; o++) {
			n = samples_shown(r, t, o);
			if (n == 0 || r->samples[t][o][0] == NULL)
				continue;
			sbuf_puts(b, m->title_open);
			sbuf_printf(b, "%s %s", type_name(t), op_name(o));
			if (r->cs != NULL)
				sbuf_printf(b, " (%zu in all, %zu shown)",
				    r->cs->count[t][o], n);
			sbuf_puts(b, m->title_close);
			put_items(b, m, r->samples[t][o], n, "");
		}
	}
}

/* How many records were rejected, and where they are. */
static void
put_rejects(struct sbuf *b, const struct run_report *r,
    const struct markup *m)
{
	if (r->rejects == 0 && r->rejects_path[0] == '\0')
		return;
	sbuf_printf(b, "%sRejected records: %zu", m->para_open, r->rejects);
	if (r->rejects > 0 && r->rejects_path[0] != '\0') {
		sbuf_puts(b, " (see ");
		put_code(b, m, r->rejects_path);
		sbuf_puts(b, ")");
	}
	sbuf_puts(b, m->para_close);
}

/* The delivered file, its size and remote name: completed runs only. */
static void
put_delivered(struct sbuf *b, const struct run_report *r,
    const struct markup *m)
{
	if (r->file_name[0] == '\0' || r->status != RUN_COMPLETED)
		return;
	sbuf_printf(b, "%sDelivered: ", m->para_open);
	put_code(b, m, r->file_name);
	sbuf_printf(b, " (%lld bytes)", (long long)r->file_size);
	if (r->remote_path[0] != '\0') {
		sbuf_puts(b, " as ");
		put_code(b, m, r->remote_path);
	}
	sbuf_puts(b, m->para_close);
}

static void
text_tail(struct sbuf *b, const struct run_report *r)
{
	double tot;
	int i, any = 0;

	put_rejects(b, r, &text_markup);
	if (r->altered > 0)
		sbuf_printf(b, "\nStored differently by the receiver: %zu "
		    "records hold '&', '<' or '>', which it keeps as &amp;, "
		    "&lt;, &gt; (each named in the log)\n", r->altered);
	put_delivered(b, r, &text_markup);
	for (i = 0; i < NSTAGES; i++) {
		if (r->seconds[i] <= 0)
			continue;
		sbuf_printf(b, "%s%s %.2f s", any ? ", " : "\nDurations: ",
		    stage_name(i), r->seconds[i]);
		any = 1;
	}
	if ((tot = total_seconds(r)) >= 0) {
		sbuf_printf(b, "%stotal %.0f s", any ? ", " : "\nDurations: ",
		    tot);
		any = 1;
	}
	if (any)
		sbuf_putn(b, "\n", 1);
}

/*
 * The plain text summary: status and reason, the change table, persons
 * deactivated and reactivated, rejects, samples (capped as max_samples
 * says), the approve command, the error and stage, the delivered file
 * and durations.  Returns a malloc'd string, or NULL (error set).
 */
char *
report_text(const struct run_report *r)
{
	struct sbuf b = { 0 };

	text_head(&b, r);
	text_approval(&b, r);
	if (r->cs != NULL)
		text_table(&b, r);
	text_checks(&b, r);
	text_held(&b, r);
	put_samples(&b, r, &text_markup);
	text_tail(&b, r);
	return sbuf_done(&b, "report");
}

/* ------------------------------------------------------------------ */
/* HTML.                                                               */

/*
 * A bar of the change against its threshold: the black mark is the
 * threshold (60px); below it the bar grows in proportion, above it on
 * a log scale up to 10 times (120px), and the label says how far:
 * "40%" of the threshold or "9.4x".
 */
static void
html_bar(struct sbuf *b, const struct run_report *r, int t, int o)
{
	struct threshold th = threshold_of(r, t, o);
	double pct = percent_of(r, t, o), ratio = -1, x;
	size_t count = r->cs->count[t][o];
	const char *colour;
	char label[32];
	int width;

	if (th.percent >= 0 && pct >= 0)
		ratio = th.percent > 0 ? pct / th.percent : (pct > 0 ? 10 : 0);
	if (th.cap >= 0) {
		x = th.cap > 0 ? (double)count / (double)th.cap :
		    (count > 0 ? 10 : 0);
		if (x > ratio)
			ratio = x;
	}
	if (ratio < 0) {
		sbuf_puts(b, "<td></td>");
		return;
	}
	if (ratio <= 1)
		width = (int)(ratio * 60 + 0.5);
	else
		width = 60 + (int)(60 * (ratio >= 10 ? 1 : log10(ratio)) + 0.5);
	if (tripped(r, t, o))
		colour = "#c62828";
	else if (ratio >= 0.75)
		colour = "#ef6c00";
	else
		colour = "#2e7d32";
	if (ratio > 1)
		snprintf(label, sizeof(label), "%.1fx", ratio);
	else
		snprintf(label, sizeof(label), "%.0f%%", ratio * 100);
	sbuf_printf(b, "<td style=\"white-space:nowrap\" title=\"%.0f%% of "
	    "the threshold\"><div style=\"display:inline-block;"
	    "position:relative;width:120px;height:10px;background:#e0e0e0\">"
	    "<div style=\"width:%dpx;height:10px;background:%s\"></div>"
	    "<div style=\"position:absolute;left:60px;top:-2px;width:2px;"
	    "height:14px;background:#000\"></div></div> %s</td>",
	    ratio * 100, width, colour, label);
}

static void
html_table(struct sbuf *b, const struct run_report *r)
{
	const struct changeset *cs = r->cs;
	char pct[32], thr[64];
	int t, o;

	sbuf_puts(b, "<h3>Changes against the last delivered snapshot</h3>\n"
	    "<div style=\"overflow-x:auto\">\n"
	    "<table style=\"border-collapse:collapse\" cellpadding=\"4\">\n"
	    "<tr style=\"text-align:left\"><th>type</th><th>change</th>"
	    "<th style=\"text-align:right\">count</th>"
	    "<th style=\"text-align:right\">of base</th><th>threshold</th>"
	    "<th>tripped</th><th>against threshold</th></tr>\n");
	for (t = 0; t < NTYPES; t++) {
		for (o = 0; o < NOPS; o++) {
			fmt_pct(percent_of(r, t, o), pct, sizeof(pct));
			fmt_threshold(threshold_of(r, t, o), thr, sizeof(thr));
			sbuf_printf(b, "<tr%s><td>%s</td><td>%s</td>"
			    "<td style=\"text-align:right\">%zu</td>"
			    "<td style=\"text-align:right\">%s</td>"
			    "<td>%s</td><td>%s</td>",
			    tripped(r, t, o) ?
			    " style=\"background:#ffebee\"" : "",
			    type_name(t), op_name(o), cs->count[t][o], pct,
			    thr, tripped(r, t, o) ? "<b>YES</b>" : "no");
			html_bar(b, r, t, o);
			sbuf_puts(b, "</tr>\n");
		}
	}
	sbuf_puts(b, "</table>\n</div>\n");
	sbuf_printf(b, "<p>Base (snapshot): persons %zu, groups %zu, "
	    "memberships %zu<br>\nNow (export): persons %zu, groups %zu, "
	    "memberships %zu<br>\nPersons deactivated: %zu, reactivated: "
	    "%zu</p>\n", cs->base[TYPE_PERSON], cs->base[TYPE_GROUP],
	    cs->base[TYPE_MEMBER], r->count[TYPE_PERSON],
	    r->count[TYPE_GROUP], r->count[TYPE_MEMBER], cs->deactivated,
	    cs->reactivated);
}

static void
html_tail(struct sbuf *b, const struct run_report *r)
{
	double tot;
	int i;

	put_rejects(b, r, &html_markup);
	if (r->altered > 0)
		sbuf_printf(b, "<p>Stored differently by the receiver: %zu "
		    "records hold '&amp;', '&lt;' or '&gt;', which it keeps as "
		    "entities (each named in the log)</p>\n", r->altered);
	put_delivered(b, r, &html_markup);
	sbuf_puts(b, "<p>Durations:");
	for (i = 0; i < NSTAGES; i++)
		if (r->seconds[i] > 0)
			sbuf_printf(b, " %s %.2f&nbsp;s;", stage_name(i),
			    r->seconds[i]);
	if ((tot = total_seconds(r)) >= 0)
		sbuf_printf(b, " total %.0f&nbsp;s", tot);
	sbuf_puts(b, "</p>\n");
}

/*
 * The verdict in a coloured box at the top, and for a blocked run the
 * approve command (wrapped, never wider than a phone) with where to
 * run it and the id.  0, or -1 on no memory.
 */
static int
html_verdict(struct sbuf *b, const struct run_report *r)
{
	static const char *const colour[NSTATUS][2] = {
		{ "#2e7d32", "#e8f5e9" }, { "#ef6c00", "#fff3e0" },
		{ "#c62828", "#ffebee" },
	};
	int s = r->status < NSTATUS ? (int)r->status : RUN_FAILED;
	char *cmd;

	sbuf_printf(b, "<div id=\"verdict\" style=\"border-left:6px solid "
	    "%s;background:%s;padding:8px 12px;margin:0 0 12px\">\n"
	    "<p style=\"font-size:1.2em;margin:0 0 6px\"><b>%s</b></p>\n",
	    colour[s][0], colour[s][1], verdict_line(r));
	if (r->status == RUN_BLOCKED && *approval_of(r) != '\0') {
		if ((cmd = report_approve_command(r)) == NULL)
			return -1;
		sbuf_puts(b, "<p style=\"margin:0\">To deliver exactly this "
		    "change set, run");
		sb_where(b, r, 1);
		sbuf_puts(b, ":</p>\n<pre id=\"approve\" style=\"white-space:"
		    "pre-wrap;overflow-wrap:anywhere;word-break:break-all;"
		    "background:#fff;border:1px solid #ccc;padding:6px;"
		    "margin:6px 0\">");
		sb_html(b, cmd);
		sbuf_puts(b, "</pre>\n<p style=\"margin:0\">Approval id: "
		    "<code id=\"approval-id\">");
		sb_html(b, approval_of(r));
		sbuf_puts(b, "</code>.  If the export changes meanwhile, the "
		    "run blocks again with a new id.</p>\n");
		free(cmd);
	}
	sbuf_puts(b, "</div>\n");
	return 0;
}

/*
 * The summary as an HTML fragment (a <div>): the same facts as
 * report_text, every datum escaped, a bar per table row showing the
 * actual change against its threshold.  malloc'd, or NULL (error set).
 */
char *
report_html(const struct run_report *r)
{
	struct sbuf b = { 0 };
	char t1[64], t2[64];

	sbuf_puts(&b, "<div style=\"font-family:sans-serif;max-width:760px;"
	    "overflow-wrap:anywhere\">\n<h2 style=\"margin:0 0 8px\">");
	sb_html(&b, site_of(r));
	sbuf_printf(&b, ": %s</h2>\n", status_word(r));
	if (html_verdict(&b, r) == -1)
		b.err = 1;
	sbuf_printf(&b, "<p>Run: %s<br>\n", r->run_id[0] ? r->run_id : "-");
	fmt_time(r->started, 0, t1, sizeof(t1));
	fmt_time(r->finished, 0, t2, sizeof(t2));
	sbuf_printf(&b, "Started: %s<br>\nFinished: %s<br>\n"
	    "Status: <b>%s</b></p>\n", t1, t2, status_word(r));
	if (r->status == RUN_COMPLETED && r->nothing_to_do)
		sbuf_puts(&b, "<p>Nothing to do: the export matches the last "
		    "delivered snapshot.</p>\n");
	if (r->v != NULL && r->v->first_run)
		sbuf_puts(&b, "<p>First run: no snapshot yet, this is an "
		    "initial load.</p>\n");
	if (*reason_of(r) != '\0') {
		sbuf_puts(&b, "<p>Reason: ");
		sb_html(&b, reason_of(r));
		sbuf_puts(&b, "</p>\n");
	}
	if (r->approved_by[0] != '\0') {
		sbuf_puts(&b, "<p>Approved by ");
		sb_html(&b, r->approved_by);
		sbuf_puts(&b, " (approval id ");
		sb_html(&b, approval_of(r));
		sbuf_puts(&b, ")</p>\n");
	}
	if (r->status == RUN_FAILED) {
		sbuf_puts(&b, "<p>Failed in stage <b>");
		sb_html(&b, r->stage[0] ? r->stage : "unknown");
		sbuf_puts(&b, "</b>:</p>\n<pre style=\"white-space:pre-wrap;"
		    "overflow-wrap:anywhere\">");
		sb_html(&b, r->error[0] ? r->error : "unknown");
		sbuf_puts(&b, "</pre>\n");
	}
	html_approval(&b, r);
	if (r->cs != NULL)
		html_table(&b, r);
	html_checks(&b, r);
	html_held(&b, r);
	put_samples(&b, r, &html_markup);
	html_tail(&b, r);
	sbuf_puts(&b, "</div>\n");
	return sbuf_done(&b, "report");
}

/* ------------------------------------------------------------------ */
/* JSON.                                                               */

static void
json_changes(struct sbuf *b, const struct run_report *r)
{
	const struct changeset *cs = r->cs;
	struct threshold th;
	int t, o;

	sbuf_puts(b, ",\n  \"changes\": {");
	for (t = 0; t < NTYPES; t++) {
		sbuf_printf(b, "%s\n    \"%s\": {\"base\": %zu, \"now\": %zu",
		    t ? "," : "", type_name(t), cs->base[t], r->count[t]);
		if (t == TYPE_PERSON)
			sbuf_printf(b, ", \"deactivated\": %zu, "
			    "\"reactivated\": %zu", cs->deactivated,
			    cs->reactivated);
		for (o = 0; o < NOPS; o++) {
			th = threshold_of(r, t, o);
			sbuf_printf(b, ",\n      \"%s\": {\"count\": %zu, "
			    "\"percent\": ", op_name(o), cs->count[t][o]);
			sb_json_num(b, percent_of(r, t, o));
			sbuf_puts(b, ", \"threshold_percent\": ");
			sb_json_num(b, th.percent);
			if (th.cap >= 0)
				sbuf_printf(b, ", \"threshold_cap\": %ld",
				    th.cap);
			else
				sbuf_puts(b, ", \"threshold_cap\": null");
			sbuf_printf(b, ", \"tripped\": %s}",
			    tripped(r, t, o) ? "true" : "false");
		}
		sbuf_puts(b, "}");
	}
	sbuf_puts(b, "\n  }");
}

static void
json_samples(struct sbuf *b, const struct run_report *r)
{
	size_t i, n;
	int t, o, first = 1;

	sbuf_puts(b, ",\n  \"samples\": {");
	for (t = 0; t < NTYPES; t++) {
		for (o = 0; o < NOPS; o++) {
			n = samples_shown(r, t, o);
			if (n == 0 || r->samples[t][o][0] == NULL)
				continue;
			sbuf_printf(b, "%s\n    \"%s %s\": [", first ? "" : ",",
			    type_name(t), op_name(o));
			first = 0;
			for (i = 0; i < n && r->samples[t][o][i] != NULL;
			    i++) {
				sbuf_puts(b, i ? ", " : "");
				sb_json(b, r->samples[t][o][i]);
			}
			sbuf_puts(b, "]");
		}
	}
	sbuf_puts(b, first ? "}" : "\n  }");
}

static void
json_tail(struct sbuf *b, const struct run_report *r)
{
	char *cmd;
	int i;

	sbuf_printf(b, ",\n  \"rejects\": {\"count\": %zu, \"path\": ",
	    r->rejects);
	sb_json_opt(b, r->rejects_path);
	sbuf_puts(b, "}");
	if (r->altered > 0)
		sbuf_printf(b, ",\n  \"stored_differently\": %zu",
		    r->altered);
	sbuf_puts(b, ",\n  \"delivery\": ");
	if (r->file_name[0] != '\0') {
		sbuf_puts(b, "{\"file\": ");
		sb_json(b, r->file_name);
		sbuf_printf(b, ", \"size\": %lld, \"remote_path\": ",
		    (long long)r->file_size);
		sb_json_opt(b, r->remote_path);
		sbuf_puts(b, "}");
	} else
		sbuf_puts(b, "null");
	sbuf_puts(b, ",\n  \"approve_command\": ");
	if (r->status == RUN_BLOCKED && *approval_of(r) != '\0') {
		if ((cmd = report_approve_command(r)) == NULL) {
			b->err = 1;
			return;
		}
		sb_json(b, cmd);
		free(cmd);
	} else
		sbuf_puts(b, "null");
	sbuf_puts(b, ",\n  \"seconds\": {");
	for (i = 0; i < NSTAGES; i++) {
		sbuf_printf(b, "%s\"%s\": ", i ? ", " : "", stage_name(i));
		sb_json_num(b, r->seconds[i]);
	}
	sbuf_puts(b, ", \"total\": ");
	sb_json_num(b, total_seconds(r));
	sbuf_puts(b, "}");
}

/*
 * The summary as one JSON object, for monitoring: the same facts as
 * report_text, strings escaped (bad UTF-8 becomes U+FFFD).  Returns a
 * malloc'd string, or NULL (error set).
 */
char *
report_json(const struct run_report *r)
{
	struct sbuf b = { 0 };
	char t1[64], t2[64];

	fmt_time(r->started, 1, t1, sizeof(t1));
	fmt_time(r->finished, 1, t2, sizeof(t2));
	sbuf_puts(&b, "{\n  \"run_id\": ");
	sb_json_opt(&b, r->run_id);
	sbuf_puts(&b, ",\n  \"site\": ");
	sb_json(&b, site_of(r));
	sbuf_printf(&b, ",\n  \"status\": \"%s\",\n  \"nothing_to_do\": %s,\n"
	    "  \"first_run\": %s,\n  \"started\": ", status_json(r),
	    r->nothing_to_do ? "true" : "false",
	    r->v != NULL && r->v->first_run ? "true" : "false");
	sb_json(&b, r->started ? t1 : NULL);
	sbuf_puts(&b, ",\n  \"finished\": ");
	sb_json(&b, r->finished ? t2 : NULL);
	sbuf_puts(&b, ",\n  \"reason\": ");
	sb_json_opt(&b, reason_of(r));
	sbuf_puts(&b, ",\n  \"stage\": ");
	sb_json_opt(&b, r->status == RUN_FAILED ? r->stage : NULL);
	sbuf_puts(&b, ",\n  \"error\": ");
	sb_json_opt(&b, r->status == RUN_FAILED ? r->error : NULL);
	sbuf_puts(&b, ",\n  \"approval_id\": ");
	sb_json_opt(&b, approval_of(r));
	sbuf_puts(&b, ",\n  \"approved_by\": ");
	sb_json_opt(&b, r->approved_by);
	json_approval(&b, r);
	if (r->cs != NULL)
		json_changes(&b, r);
	else
		sbuf_puts(&b, ",\n  \"changes\": null");
	json_checks(&b, r);
	json_held(&b, r);
	json_samples(&b, r);
	json_tail(&b, r);
	sbuf_puts(&b, "\n}\n");
	return sbuf_done(&b, "report");
}

/* ------------------------------------------------------------------ */
/* Subject.                                                            */

static const char op_sign[NOPS] = { '+', '~', '-' };

/* "persons -412 (8.2% > 2%)" for each tripped threshold. */
static void
subject_tripped(struct sbuf *b, const struct run_report *r)
{
	struct threshold th;
	char pct[32], lim[32];
	double p;
	size_t count;
	int t, o, n = 0;

	for (t = 0; t < NTYPES; t++) {
		for (o = 0; o < NOPS; o++) {
			if (!tripped(r, t, o) || r->cs == NULL)
				continue;
			th = threshold_of(r, t, o);
			p = percent_of(r, t, o);
			count = r->cs->count[t][o];
			sbuf_printf(b, "%s%s %c%zu", n++ ? ", " : "",
			    type_name(t), op_sign[o], count);
			fmt_pct(p, pct, sizeof(pct));
			if (th.percent >= 0 && p >= 0 && p > th.percent) {
				snprintf(lim, sizeof(lim), "%g%%", th.percent);
				sbuf_printf(b, " (%s > %s)", pct, lim);
			} else if (th.cap >= 0 && (long)count > th.cap)
				sbuf_printf(b, " (%zu > %ld)", count, th.cap);
			else if (p >= 0)
				sbuf_printf(b, " (%s)", pct);
		}
	}
	if (n > 0)
		return;
	if (r->v != NULL && r->v->first_run)
		sbuf_puts(b, "first run");
	else if (*reason_of(r) != '\0')
		sb_text(b, reason_of(r));
	else
		sbuf_puts(b, "held");
}

/* "persons +3 ~5 -1, groups +0 ~0 -0, memberships +2 ~0 -0" */
static void
subject_counts(struct sbuf *b, const struct run_report *r)
{
	int t;

	if (r->nothing_to_do) {
		sbuf_puts(b, "no changes");
		return;
	}
	for (t = 0; t < NTYPES; t++)
		sbuf_printf(b, "%s%s +%zu ~%zu -%zu", t ? ", " : "",
		    type_name(t), r->cs->count[t][OP_INSERT],
		    r->cs->count[t][OP_UPDATE], r->cs->count[t][OP_DELETE]);
}

/*
 * The mail subject (UTF-8, one line): "[sisfeed] SITE: BLOCKED —
 * persons -412 (8.2% > 2%)", "[sisfeed] SITE: completed — persons +3
 * ~5 -1, ...", "[sisfeed] SITE: FAILED in STAGE".  malloc'd or NULL.
 */
char *
report_subject(const struct run_report *r)
{
	struct sbuf b = { 0 };

	sbuf_puts(&b, "[sisfeed] ");
	sb_text(&b, site_of(r));
	sbuf_printf(&b, ": %s", status_word(r));
	switch (r->status) {
	case RUN_BLOCKED:
		sbuf_puts(&b, " \xe2\x80\x94 ");
		subject_tripped(&b, r);
		break;
	case RUN_FAILED:
		if (r->stage[0] != '\0') {
			sbuf_puts(&b, " in ");
			sb_text(&b, r->stage);
		}
		break;
	default:
		if (r->cs != NULL || r->nothing_to_do) {
			sbuf_puts(&b, " \xe2\x80\x94 ");
			subject_counts(&b, r);
		}
		if (r->approved_by[0] != '\0')
			sbuf_puts(&b, " (approved)");
		break;
	}
	return sbuf_done(&b, "report");
}

/*
 * Free the samples a report holds; the report stays usable.
 */
void
report_free(struct run_report *r)
{
	size_t i;
	int t, o;

	for (t = 0; t < NTYPES; t++) {
		for (o = 0; o < NOPS; o++) {
			for (i = 0; i < REPORT_SAMPLES; i++) {
				free(r->samples[t][o][i]);
				r->samples[t][o][i] = NULL;
			}
			r->nsamples[t][o] = 0;
		}
	}
	for (i = 0; i < REPORT_SAMPLES; i++) {
		free(r->held_samples[i]);
		r->held_samples[i] = NULL;
	}
}

/*
 * Write report_json(r) to STATE_DIR/runs/RUN_ID.json atomically with
 * mode 0600, creating runs/ (0700) when missing.  Returns 0, or -1
 * with the error set.
 */
int
report_write_json(const struct run_report *r)
{
	char dir[4096], path[4200];
	char *json;
	int rc;

	if (r->cfg == NULL || r->cfg->state_dir == NULL)
		return error_set("report: no state directory");
	if (r->run_id[0] == '\0' || strchr(r->run_id, '/') != NULL ||
	    r->run_id[0] == '.')
		return error_set("report: bad run id \"%s\"", r->run_id);
	if ((size_t)snprintf(dir, sizeof(dir), "%s/runs",
	    r->cfg->state_dir) >= sizeof(dir))
		return error_set("%s: path too long", r->cfg->state_dir);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return error_sys("%s", dir);
	snprintf(path, sizeof(path), "%s/%s.json", dir, r->run_id);
	if ((json = report_json(r)) == NULL)
		return -1;
	rc = file_write_atomic(path, json, strlen(json));
	free(json);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Checks beyond the nine cells: flips, orgs, windows.                 */

/* "site", "org SCH1" or "7 days" for a check. */
static void
fmt_scope(const struct check *c, char *buf, size_t len)
{
	if (c->scope == SCOPE_ORG)
		snprintf(buf, len, "org %s", c->org);
	else if (c->scope == SCOPE_WINDOW)
		snprintf(buf, len, "%d days", c->days);
	else
		snprintf(buf, len, "site");
}

/*
 * 1 if the text and HTML show check c: the site's flip cells always,
 * an org or window cell when tripped, or (plan) when it counts any.
 */
static int
check_shown(const struct run_report *r, const struct check *c)
{
	if (c->scope == SCOPE_SITE || c->tripped)
		return 1;
	return r->max_samples < 0 && c->count > 0;
}

/* How many sample texts of check c a renderer shows. */
static size_t
check_samples_shown(const struct run_report *r, const struct check *c)
{
	size_t n = c->nsample;
	int lim;

	if (!c->tripped && r->max_samples >= 0)
		return 0;
	if (r->max_samples < 0)
		return n;
	lim = r->cfg != NULL ? r->cfg->mail.samples : 0;
	return lim <= 0 ? 0 : (size_t)lim < n ? (size_t)lim : n;
}

/* The samples of each check shown, a titled list per check. */
static void
check_samples(struct sbuf *b, const struct run_report *r,
    const struct markup *m)
{
	char scope[96];
	size_t i, n;

	for (i = 0; i < r->v->nchecks; i++) {
		const struct check *c = &r->v->checks[i];

		if ((n = check_samples_shown(r, c)) == 0)
			continue;
		fmt_scope(c, scope, sizeof(scope));
		sbuf_puts(b, m->title_open);
		m->esc(b, scope);
		sbuf_printf(b, ": %s %s (%zu in all, %zu shown)",
		    type_name(c->type), kind_name(c->kind), c->count, n);
		sbuf_puts(b, m->title_close);
		put_items(b, m, c->sample_text, n, "");
	}
}

static void
text_checks(struct sbuf *b, const struct run_report *r)
{
	const struct verdict *v = r->v;
	char scope[96], pct[32], thr[64];
	size_t i, hidden = 0;

	if (v == NULL || v->nchecks == 0)
		return;
	sbuf_puts(b, "\nFurther checks (status flips, orgs, windows of "
	    "days):\n\n");
	sbuf_printf(b, "  %-16s %-12s %-13s %7s %9s  %-14s %s\n", "scope",
	    "type", "change", "count", "of base", "threshold", "tripped");
	for (i = 0; i < v->nchecks; i++) {
		const struct check *c = &v->checks[i];

		if (!check_shown(r, c)) {
			hidden++;
			continue;
		}
		fmt_scope(c, scope, sizeof(scope));
		fmt_pct(c->percent, pct, sizeof(pct));
		fmt_threshold(c->th, thr, sizeof(thr));
		sbuf_puts(b, "  ");
		sb_text(b, scope);
		sbuf_printf(b, "%*s %-12s %-13s %7zu %9s  %-14s %s\n",
		    strlen(scope) < 16 ? (int)(16 - strlen(scope)) : 0, "",
		    type_name(c->type), kind_name(c->kind), c->count, pct,
		    thr, c->tripped ? "YES" : "no");
	}
	if (hidden > 0)
		sbuf_printf(b, "  (%zu more not tripped: sisfeed plan shows "
		    "them)\n", hidden);
	check_samples(b, r, &text_markup);
}

static void
html_checks(struct sbuf *b, const struct run_report *r)
{
	const struct verdict *v = r->v;
	char scope[96], pct[32], thr[64];
	size_t i;

	if (v == NULL || v->nchecks == 0)
		return;
	sbuf_puts(b, "<h3>Further checks (status flips, orgs, windows of "
	    "days)</h3>\n<table style=\"border-collapse:collapse\" "
	    "cellpadding=\"4\">\n<tr style=\"text-align:left\"><th>scope</th>"
	    "<th>type</th><th>change</th><th style=\"text-align:right\">"
	    "count</th><th style=\"text-align:right\">of base</th>"
	    "<th>threshold</th><th>tripped</th></tr>\n");
	for (i = 0; i < v->nchecks; i++) {
		const struct check *c = &v->checks[i];

		if (!check_shown(r, c))
			continue;
		fmt_scope(c, scope, sizeof(scope));
		fmt_pct(c->percent, pct, sizeof(pct));
		fmt_threshold(c->th, thr, sizeof(thr));
		sbuf_printf(b, "<tr%s><td>", c->tripped ?
		    " style=\"background:#ffebee\"" : "");
		sb_html(b, scope);
		sbuf_printf(b, "</td><td>%s</td><td>%s</td>"
		    "<td style=\"text-align:right\">%zu</td>"
		    "<td style=\"text-align:right\">%s</td><td>%s</td>"
		    "<td>%s</td></tr>\n", type_name(c->type),
		    kind_name(c->kind), c->count, pct, thr,
		    c->tripped ? "<b>YES</b>" : "no");
	}
	sbuf_puts(b, "</table>\n");
	check_samples(b, r, &html_markup);
}

static void
json_checks(struct sbuf *b, const struct run_report *r)
{
	const struct verdict *v = r->v;
	static const char *const scopes[] = { "site", "org", "window" };
	size_t i, j, n;

	sbuf_puts(b, ",\n  \"checks\": [");
	for (i = 0; v != NULL && i < v->nchecks; i++) {
		const struct check *c = &v->checks[i];

		sbuf_printf(b, "%s\n    {\"scope\": \"%s\", \"org\": ",
		    i ? "," : "", scopes[c->scope]);
		sb_json_opt(b, c->scope == SCOPE_ORG ? c->org : NULL);
		sbuf_puts(b, ", \"days\": ");
		if (c->scope == SCOPE_WINDOW)
			sbuf_printf(b, "%d", c->days);
		else
			sbuf_puts(b, "null");
		sbuf_printf(b, ", \"type\": \"%s\", \"change\": \"%s\", "
		    "\"count\": %zu, \"base\": %zu, \"percent\": ",
		    type_name(c->type), kind_name(c->kind), c->count,
		    c->base);
		sb_json_num(b, c->percent);
		sbuf_puts(b, ", \"threshold_percent\": ");
		sb_json_num(b, c->th.percent);
		if (c->th.cap >= 0)
			sbuf_printf(b, ", \"threshold_cap\": %ld", c->th.cap);
		else
			sbuf_puts(b, ", \"threshold_cap\": null");
		sbuf_printf(b, ", \"tripped\": %s, \"samples\": [",
		    c->tripped ? "true" : "false");
		n = check_samples_shown(r, c);
		for (j = 0; j < n; j++) {
			if (c->sample_text[j] == NULL)
				continue;
			sbuf_puts(b, j ? ", " : "");
			sb_json(b, c->sample_text[j]);
		}
		sbuf_puts(b, "]}");
	}
	sbuf_puts(b, v != NULL && v->nchecks > 0 ? "\n  ]" : "]");
	/* The export's files against the last delivery's sizes. */
	sbuf_puts(b, ",\n  \"export_files\": [");
	for (i = 0; v != NULL && i < v->nshrink; i++) {
		const struct shrink_check *c = &v->shrink[i];

		sbuf_printf(b, "%s\n    {\"file\": ", i ? "," : "");
		sb_json(b, c->now.file);
		sbuf_printf(b, ", \"bytes\": %lld, \"last_bytes\": %lld, "
		    "\"shrink_percent\": ", c->now.bytes, c->was);
		sb_json_num(b, c->percent > 0 ? c->percent : 0);
		sbuf_printf(b, ", \"tripped\": %s}", c->tripped ? "true" :
		    "false");
	}
	sbuf_puts(b, v != NULL && v->nshrink > 0 ? "\n  ]" : "]");
}

/* ------------------------------------------------------------------ */
/* The approval: why, when, until when.                                */

static void
text_approval(struct sbuf *b, const struct run_report *r)
{
	char t[64];

	if (r->approved_by[0] == '\0')
		return;
	if (r->approval_reason[0] != '\0') {
		sbuf_puts(b, "Why:       ");
		sb_text(b, r->approval_reason);
		sbuf_putn(b, "\n", 1);
	}
	if (r->approved_at != 0) {
		fmt_time(r->approved_at, 0, t, sizeof(t));
		sbuf_printf(b, "Given:     %s", t);
		if (r->approval_expires != 0) {
			fmt_time(r->approval_expires, 0, t, sizeof(t));
			sbuf_printf(b, ", runs out %s", t);
		}
		sbuf_putn(b, "\n", 1);
	}
}

static void
html_approval(struct sbuf *b, const struct run_report *r)
{
	char t[64];

	if (r->approved_by[0] == '\0')
		return;
	sbuf_puts(b, "<p>");
	if (r->approval_reason[0] != '\0') {
		sbuf_puts(b, "Why: ");
		sb_html(b, r->approval_reason);
		sbuf_puts(b, "<br>\n");
	}
	if (r->approved_at != 0) {
		fmt_time(r->approved_at, 0, t, sizeof(t));
		sbuf_printf(b, "Given: %s", t);
		if (r->approval_expires != 0) {
			fmt_time(r->approval_expires, 0, t, sizeof(t));
			sbuf_printf(b, ", runs out %s", t);
		}
	}
	sbuf_puts(b, "</p>\n");
}

static void
json_approval(struct sbuf *b, const struct run_report *r)
{
	char t[64];

	sbuf_puts(b, ",\n  \"approval_reason\": ");
	sb_json_opt(b, r->approval_reason);
	fmt_time(r->approved_at, 1, t, sizeof(t));
	sbuf_puts(b, ",\n  \"approved_at\": ");
	sb_json(b, r->approved_at != 0 ? t : NULL);
	fmt_time(r->approval_expires, 1, t, sizeof(t));
	sbuf_puts(b, ",\n  \"approval_expires\": ");
	sb_json(b, r->approval_expires != 0 ? t : NULL);
}

/* ------------------------------------------------------------------ */
/* A pause: what was held out of the file.                             */

/* "persons 3 deletes, 1 deactivations; memberships 3 deletes" */
static void
held_counts(struct sbuf *b, const struct run_report *r)
{
	int t, k, any = 0, in_type;

	for (t = 0; t < NTYPES; t++) {
		in_type = 0;
		for (k = 0; k < NKINDS; k++) {
			if (r->held[t][k] == 0)
				continue;
			if (!in_type)
				sbuf_printf(b, "%s%s ", any ? "; " : "",
				    type_name(t));
			sbuf_printf(b, "%s%zu %s", in_type ? ", " : "",
			    r->held[t][k], kind_name(k));
			in_type = any = 1;
		}
	}
	if (!any)
		sbuf_puts(b, "nothing");
}

/* How many held samples there are (they fill the array from the start). */
static size_t
held_shown(const struct run_report *r)
{
	size_t n = 0;

	while (n < REPORT_SAMPLES && r->held_samples[n] != NULL)
		n++;
	return n;
}

static void
text_held(struct sbuf *b, const struct run_report *r)
{
	char t[64];

	if (r->held_mask == 0)
		return;
	fmt_time(r->held_until, 0, t, sizeof(t));
	sbuf_printf(b, "\nPaused until %s: %s held out of the file.\n"
	    "Held: ", t, pause_hold_name(r->held_mask));
	held_counts(b, r);
	sbuf_puts(b, "\nThe snapshot keeps them; the first run after the "
	    "pause judges them by the thresholds.\n");
	put_items(b, &text_markup, r->held_samples, held_shown(r), "held: ");
}

static void
html_held(struct sbuf *b, const struct run_report *r)
{
	char t[64];

	if (r->held_mask == 0)
		return;
	fmt_time(r->held_until, 0, t, sizeof(t));
	sbuf_printf(b, "<p>Paused until %s: %s held out of the file.<br>\n"
	    "Held: ", t, pause_hold_name(r->held_mask));
	held_counts(b, r);
	sbuf_puts(b, "</p>\n");
	put_items(b, &html_markup, r->held_samples, held_shown(r), "held: ");
}

static void
json_held(struct sbuf *b, const struct run_report *r)
{
	char t[64];
	size_t i;
	int ty, k;

	sbuf_puts(b, ",\n  \"paused\": ");
	if (r->held_mask == 0) {
		sbuf_puts(b, "null");
		return;
	}
	fmt_time(r->held_until, 1, t, sizeof(t));
	sbuf_printf(b, "{\"until\": \"%s\", \"hold\": \"%s\", "
	    "\"held\": {", t, pause_hold_name(r->held_mask));
	for (ty = 0; ty < NTYPES; ty++) {
		sbuf_printf(b, "%s\"%s\": {", ty ? ", " : "", type_name(ty));
		for (k = 0; k < NKINDS; k++)
			sbuf_printf(b, "%s\"%s\": %zu", k ? ", " : "",
			    kind_name(k), r->held[ty][k]);
		sbuf_puts(b, "}");
	}
	sbuf_puts(b, "}, \"samples\": [");
	for (i = 0; i < REPORT_SAMPLES && r->held_samples[i] != NULL; i++) {
		sbuf_puts(b, i ? ", " : "");
		sb_json(b, r->held_samples[i]);
	}
	sbuf_puts(b, "]}");
}
