/*
 * monitor.c -- how a monitoring system learns that the feed stopped
 * doing useful work: the export's age (source.max_age), the status
 * command in the Nagios plugin convention (text or JSON), a Prometheus
 * textfile written after every run, and a heartbeat URL fetched after
 * every successful one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sisfeed.h"

/* Nagios plugin exit codes. */
enum { MON_OK, MON_WARNING, MON_CRITICAL, MON_UNKNOWN };
static const char *const mon_word[] = { "OK", "WARNING", "CRITICAL",
	"UNKNOWN" };

#define MAXCHECKS	8

/* What status knows of the state directory. */
struct facts {
	int		 readable;	/* the state directory could be read */
	char		 why[512];	/* when not readable */
	int		 have_snapshot;
	char		 snapshot[PATH_MAX];
	struct stat	 snap;
	int		 have_run;	/* runs.log holds a run */
	char		 last_line[1024];
	time_t		 last_time;
	char		 last_run[32];
	char		 last_status[16];
	time_t		 last_success;	/* 0: none */
	long		 runs;
	int		 have_pending;
	char		 pending_id[17];
	char		 approve[1024];	/* "approve on HOST with: ..." */
	long		 spooled;
	time_t		 export_time;	/* oldest source file; 0 unknown */
	char		 export_file[PATH_MAX];
};

struct mon_check {
	const char	*name;
	int		 state;
	char		 detail[1600];
};

/* ------------------------------------------------------------------ */
/* the export's age                                                    */

/*
 * The oldest modification time of the export's files, and which file,
 * or -1 (error set) when one cannot be read.
 */
static int
export_oldest(const struct config *cfg, time_t *when, char *which,
    size_t len)
{
	const char *files[3];
	char path[PATH_MAX];
	struct stat st;
	size_t i, n = 0;

	if (cfg->source.format == SOURCE_CSV) {
		files[n++] = cfg->source.persons;
		files[n++] = cfg->source.groups;
		files[n++] = cfg->source.memberships;
	} else if (cfg->source.format == SOURCE_ONEROSTER) {
		/* The folder's users.csv, or the .zip itself. */
		if (stat(cfg->source.dir, &st) == 0 && !S_ISDIR(st.st_mode))
			files[n++] = cfg->source.dir;
		else if (path_fmt(path, sizeof(path), "%s/users.csv",
		    cfg->source.dir) == -1)
			return -1;
		else
			files[n++] = path;
	} else
		files[n++] = cfg->source.file;
	*when = 0;
	for (i = 0; i < n; i++) {
		if (files[i] == NULL)
			continue;
		if (stat(files[i], &st) == -1)
			return error_sys("%s", files[i]);
		if (*when == 0 || st.st_mtime < *when) {
			*when = st.st_mtime;
			snprintf(which, len, "%s", files[i]);
		}
	}
	return 0;
}

/* "3d 4h", "5h 12m", "40 s": a span for people. */
static void
fmt_span(long s, char *buf, size_t len)
{
	if (s >= 86400)
		snprintf(buf, len, "%ldd %ldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%ldh %ldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%ldm", s / 60);
	else
		snprintf(buf, len, "%ld s", s);
}

/*
 * With source.max_age set, fail (-1, error set) when the oldest file of
 * the export is older than that: a dead export must not look like
 * "nothing to do".  0 when fresh enough or no limit is set.
 */
int
monitor_export_fresh(const struct config *cfg, time_t now)
{
	char file[PATH_MAX], age[32], lim[32];
	time_t when;

	if (cfg->source_max_age <= 0)
		return 0;
	if (export_oldest(cfg, &when, file, sizeof(file)) == -1)
		return -1;
	if (when == 0 || now - when <= cfg->source_max_age)
		return 0;
	fmt_span((long)(now - when), age, sizeof(age));
	fmt_span(cfg->source_max_age, lim, sizeof(lim));
	return error_set("%s was last changed %s ago, over source.max_age "
	    "(%s): the export has stopped", file, age, lim);
}

/* ------------------------------------------------------------------ */
/* reading the state                                                   */

static time_t
parse_utc(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ", &tm.tm_year, &tm.tm_mon,
	    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

/* The value of " key=" in a runs.log line into buf ("" if none). */
static void
field_of(const char *line, const char *key, char *buf, size_t len)
{
	char pat[32];
	const char *p;
	size_t n;

	snprintf(pat, sizeof(pat), " %s=", key);
	buf[0] = '\0';
	if ((p = strstr(line, pat)) == NULL)
		return;
	p += strlen(pat);
	n = strcspn(p, " \n");
	snprintf(buf, len, "%.*s", (int)n, p);
}

static int
success_word(const char *status)
{
	return strcmp(status, "completed") == 0 ||
	    strcmp(status, "unchanged") == 0;
}

/* The last run and the last success from STATE/runs.log. */
static void
read_runs(const struct config *cfg, struct facts *f)
{
	char path[PATH_MAX], line[2048], status[16];
	FILE *fp;

	if (path_fmt(path, sizeof(path), "%s/runs.log", cfg->state_dir) == -1 ||
	    (fp = fopen(path, "r")) == NULL) {
		if (errno != ENOENT) {
			f->readable = 0;
			error_sys("%s", path);
			snprintf(f->why, sizeof(f->why), "%s", error_last());
		}
		return;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		time_t t = parse_utc(line);

		if (t == 0)
			continue;
		f->runs++;
		f->have_run = 1;
		f->last_time = t;
		line[strcspn(line, "\n")] = '\0';
		snprintf(f->last_line, sizeof(f->last_line), "%.1000s", line);
		field_of(line, "run", f->last_run, sizeof(f->last_run));
		field_of(line, "status", status, sizeof(status));
		snprintf(f->last_status, sizeof(f->last_status), "%s",
		    status);
		if (success_word(status))
			f->last_success = t;
	}
	fclose(fp);
}

static void
read_pending(const struct config *cfg, struct facts *f)
{
	char path[PATH_MAX], line[1200];
	FILE *fp;

	if (path_fmt(path, sizeof(path), "%s/pending", cfg->state_dir) == -1 ||
	    (fp = fopen(path, "r")) == NULL)
		return;
	f->have_pending = 1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "approval_id ", 12) == 0)
			snprintf(f->pending_id, sizeof(f->pending_id), "%.16s",
			    line + 12);
		else if (strncmp(line, "approve ", 8) == 0)
			snprintf(f->approve, sizeof(f->approve), "%.1000s", line);
	}
	fclose(fp);
}

static void
count_spool(const struct config *cfg, struct facts *f)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	if (path_fmt(path, sizeof(path), "%s/spool", cfg->state_dir) == -1 ||
	    (d = opendir(path)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);

		if (n > 5 && strcmp(e->d_name + n - 5, ".mail") == 0)
			f->spooled++;
	}
	closedir(d);
}

static void
gather(const struct config *cfg, struct facts *f)
{
	memset(f, 0, sizeof(*f));
	f->readable = 1;
	if (access(cfg->state_dir, R_OK | X_OK) == -1 && errno != ENOENT) {
		f->readable = 0;
		error_sys("%s", cfg->state_dir);
		snprintf(f->why, sizeof(f->why), "%s", error_last());
		return;
	}
	f->have_snapshot = snapshot_path(cfg->state_dir, f->snapshot,
	    sizeof(f->snapshot)) && stat(f->snapshot, &f->snap) == 0;
	read_runs(cfg, f);
	read_pending(cfg, f);
	count_spool(cfg, f);
	if (export_oldest(cfg, &f->export_time, f->export_file,
	    sizeof(f->export_file)) == -1)
		f->export_time = 0;
}

/* ------------------------------------------------------------------ */
/* judging                                                             */

static struct mon_check *
add_check(struct mon_check *c, size_t *n, const char *name, int state)
{
	struct mon_check *k = &c[(*n)++];

	k->name = name;
	k->state = state;
	k->detail[0] = '\0';
	return k;
}

/* The checks, worst first in importance; returns how many. */
static size_t
judge(const struct config *cfg, const struct facts *f, time_t now,
    const char *as_owner, struct mon_check *c)
{
	struct mon_check *k;
	char age[32], lim[32];
	size_t n = 0;

	if (!f->readable) {
		k = add_check(c, &n, "state", MON_UNKNOWN);
		if (as_owner != NULL)
			snprintf(k->detail, sizeof(k->detail), "%s; run status "
			    "as the state directory's owner: %.1000s", f->why,
			    as_owner);
		else
			snprintf(k->detail, sizeof(k->detail), "%s (run status "
			    "as the state directory's owner)", f->why);
		return n;
	}
	k = add_check(c, &n, "last_run", MON_OK);
	if (!f->have_run) {
		k->state = MON_UNKNOWN;
		snprintf(k->detail, sizeof(k->detail), "no run recorded yet");
	} else {
		k->state = strcmp(f->last_status, "failed") == 0 ?
		    MON_CRITICAL : MON_OK;
		snprintf(k->detail, sizeof(k->detail), "run %s %s",
		    f->last_run, f->last_status);
	}
	k = add_check(c, &n, "last_success", MON_OK);
	fmt_span(cfg->monitor.max_age, lim, sizeof(lim));
	if (f->last_success == 0) {
		k->state = f->have_run ? MON_WARNING : MON_UNKNOWN;
		snprintf(k->detail, sizeof(k->detail), "no successful run "
		    "yet");
	} else {
		fmt_span((long)(now - f->last_success), age, sizeof(age));
		if (cfg->monitor.max_age > 0 &&
		    now - f->last_success > cfg->monitor.max_age)
			k->state = MON_CRITICAL;
		snprintf(k->detail, sizeof(k->detail), "%s ago (limit %s)",
		    age, cfg->monitor.max_age > 0 ? lim : "none");
	}
	k = add_check(c, &n, "pending", f->have_pending ? MON_WARNING :
	    MON_OK);
	if (f->have_pending)
		snprintf(k->detail, sizeof(k->detail), "a blocked run waits "
		    "for approval, id %s", f->pending_id);
	else
		snprintf(k->detail, sizeof(k->detail), "none");
	k = add_check(c, &n, "mail_spool", f->spooled > 0 ? MON_WARNING :
	    MON_OK);
	snprintf(k->detail, sizeof(k->detail), "%ld message%s not sent yet",
	    f->spooled, f->spooled == 1 ? "" : "s");
	k = add_check(c, &n, "export_age", MON_OK);
	if (f->export_time == 0)
		snprintf(k->detail, sizeof(k->detail), "unknown (a source "
		    "file cannot be read)");
	else {
		fmt_span((long)(now - f->export_time), age, sizeof(age));
		fmt_span(cfg->source_max_age, lim, sizeof(lim));
		if (cfg->source_max_age > 0 &&
		    now - f->export_time > cfg->source_max_age)
			k->state = MON_CRITICAL;
		snprintf(k->detail, sizeof(k->detail), "%s ago (limit %s)",
		    age, cfg->source_max_age > 0 ? lim : "none");
	}
	if (cfg->source_max_age > 0 && f->export_time == 0)
		k->state = MON_CRITICAL;
	return n;
}

static int
worst(const struct mon_check *c, size_t n)
{
	size_t i;
	int w = MON_OK;

	/* CRITICAL outranks UNKNOWN, which outranks WARNING. */
	for (i = 0; i < n; i++) {
		if (c[i].state == MON_CRITICAL)
			return MON_CRITICAL;
		if (c[i].state == MON_UNKNOWN)
			w = MON_UNKNOWN;
		else if (c[i].state == MON_WARNING && w == MON_OK)
			w = MON_WARNING;
	}
	return w;
}

/* The first check in the worst state: the summary line's reason. */
static const struct mon_check *
summary_of(const struct mon_check *c, size_t n, int state)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (c[i].state == state)
			return &c[i];
	return &c[0];
}

/* ------------------------------------------------------------------ */
/* printing                                                            */

static void
print_text(const struct config *cfg, const struct facts *f,
    const struct mon_check *c, size_t n, int state)
{
	const struct mon_check *s = summary_of(c, n, state);
	char when[64];
	struct tm tm;
	size_t i;

	printf("SISFEED %s - %s: %s\n", mon_word[state], s->name, s->detail);
	for (i = 0; i < n; i++)
		printf("  %-8s %-12s %s\n", mon_word[c[i].state], c[i].name,
		    c[i].detail);
	if (!f->readable)
		return;
	if (f->have_snapshot) {
		localtime_r(&f->snap.st_mtime, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
		printf("snapshot: %s (%lld bytes, %s)\n", f->snapshot,
		    (long long)f->snap.st_size, when);
	} else
		printf("snapshot: none (the next run is an initial load)\n");
	if (f->have_pending && f->approve[0] != '\0')
		printf("pending: id %s; %s\n", f->pending_id, f->approve);
	if (f->have_run)
		printf("last run: %s\n", f->last_line);
	printf("state: %s\n", cfg->state_dir);
}

static void
json_time(struct sbuf *b, time_t t)
{
	char buf[32];
	struct tm tm;

	if (t == 0) {
		sbuf_puts(b, "null");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
	sbuf_puts(b, buf);
}

static char *
status_json(const struct config *cfg, const struct facts *f,
    const struct mon_check *c, size_t n, int state)
{
	struct sbuf b = { 0 };
	size_t i;

	sbuf_printf(&b, "{\n  \"schema_version\": %d,\n  \"status\": \"%s\""
	    ",\n  \"exit_code\": %d,\n  \"site\": ", MONITOR_SCHEMA,
	    mon_word[state], state);
	report_json_str(&b, cfg->site);
	sbuf_puts(&b, ",\n  \"state_dir\": ");
	report_json_str(&b, cfg->state_dir);
	sbuf_puts(&b, ",\n  \"checks\": [");
	for (i = 0; i < n; i++) {
		sbuf_printf(&b, "%s\n    {\"name\": \"%s\", \"status\": \"%s\","
		    " \"detail\": ", i ? "," : "", c[i].name,
		    mon_word[c[i].state]);
		report_json_str(&b, c[i].detail);
		sbuf_puts(&b, "}");
	}
	sbuf_puts(&b, "\n  ],\n  \"last_run\": ");
	if (f->have_run) {
		sbuf_puts(&b, "{\"run\": ");
		report_json_str(&b, f->last_run);
		sbuf_puts(&b, ", \"status\": ");
		report_json_str(&b, f->last_status);
		sbuf_puts(&b, ", \"time\": ");
		json_time(&b, f->last_time);
		sbuf_puts(&b, "}");
	} else
		sbuf_puts(&b, "null");
	sbuf_puts(&b, ",\n  \"last_success\": ");
	json_time(&b, f->last_success);
	sbuf_puts(&b, ",\n  \"snapshot\": ");
	if (f->have_snapshot) {
		sbuf_puts(&b, "{\"path\": ");
		report_json_str(&b, f->snapshot);
		sbuf_printf(&b, ", \"bytes\": %lld, \"time\": ",
		    (long long)f->snap.st_size);
		json_time(&b, f->snap.st_mtime);
		sbuf_puts(&b, "}");
	} else
		sbuf_puts(&b, "null");
	sbuf_puts(&b, ",\n  \"pending\": ");
	if (f->have_pending) {
		sbuf_puts(&b, "{\"approval_id\": ");
		report_json_str(&b, f->pending_id);
		sbuf_puts(&b, ", \"approve\": ");
		report_json_str(&b, f->approve);
		sbuf_puts(&b, "}");
	} else
		sbuf_puts(&b, "null");
	sbuf_printf(&b, ",\n  \"spooled_mail\": %ld,\n  \"export_time\": ",
	    f->spooled);
	json_time(&b, f->export_time);
	sbuf_puts(&b, "\n}\n");
	return sbuf_done(&b, "status");
}

/*
 * The status command: the state judged as a Nagios plugin would (the
 * last run, the age of the last success against monitor.max_age, a
 * pending block, spooled mail, the export's age against
 * source.max_age), as text or JSON.  When the state cannot be read,
 * UNKNOWN with as_owner (the sudo line), if given.  Returns 0 OK,
 * 1 WARNING, 2 CRITICAL or 3 UNKNOWN.
 */
int
monitor_status(const struct config *cfg, int json, const char *as_owner)
{
	struct facts f;
	struct mon_check c[MAXCHECKS];
	time_t now = time(NULL);
	size_t n;
	int state;
	char *s;

	gather(cfg, &f);
	n = judge(cfg, &f, now, as_owner, c);
	state = worst(c, n);
	if (!json) {
		print_text(cfg, &f, c, n, state);
		return state;
	}
	if ((s = status_json(cfg, &f, c, n, state)) == NULL) {
		log_error("%s", error_last());
		return MON_UNKNOWN;
	}
	fputs(s, stdout);
	free(s);
	return state;
}

/* ------------------------------------------------------------------ */
/* the metrics file                                                    */

static void
gauge(struct sbuf *b, const char *name, const char *help)
{
	sbuf_printf(b, "# HELP sisfeed_%s %s\n# TYPE sisfeed_%s gauge\n",
	    name, help, name);
}

static char *
metrics_text(const struct run_report *rep, const struct facts *f)
{
	static const char *const words[] = { "completed", "unchanged",
	    "blocked", "failed" };
	struct sbuf b = { 0 };
	const char *now_word = rep->status == RUN_COMPLETED ?
	    (rep->nothing_to_do ? "unchanged" : "completed") :
	    rep->status == RUN_BLOCKED ? "blocked" : "failed";
	size_t i;
	int t, o;

	gauge(&b, "last_run_timestamp_seconds", "When the last run started.");
	sbuf_printf(&b, "sisfeed_last_run_timestamp_seconds %lld\n",
	    (long long)rep->started);
	gauge(&b, "last_success_timestamp_seconds", "When the last run that "
	    "delivered or had nothing to do started (0: never).");
	sbuf_printf(&b, "sisfeed_last_success_timestamp_seconds %lld\n",
	    (long long)f->last_success);
	gauge(&b, "last_run_status", "1 for the last run's status.");
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		sbuf_printf(&b, "sisfeed_last_run_status{status=\"%s\"} %d\n",
		    words[i], strcmp(words[i], now_word) == 0);
	gauge(&b, "last_run_duration_seconds", "How long the last run took.");
	sbuf_printf(&b, "sisfeed_last_run_duration_seconds %lld\n",
	    (long long)(rep->finished - rep->started));
	gauge(&b, "pending_approval", "1 while a blocked run waits.");
	sbuf_printf(&b, "sisfeed_pending_approval %d\n", f->have_pending);
	gauge(&b, "mail_spooled", "Mail not sent yet.");
	sbuf_printf(&b, "sisfeed_mail_spooled %ld\n", f->spooled);
	gauge(&b, "rejected_records", "Records the last run rejected.");
	sbuf_printf(&b, "sisfeed_rejected_records %zu\n", rep->rejects);
	gauge(&b, "records", "Records in the last run's export.");
	for (t = 0; t < NTYPES; t++)
		sbuf_printf(&b, "sisfeed_records{type=\"%s\"} %zu\n",
		    type_name(t), rep->count[t]);
	gauge(&b, "changes", "Changes the last run found.");
	for (t = 0; t < NTYPES; t++)
		for (o = 0; o < NOPS; o++)
			sbuf_printf(&b, "sisfeed_changes{type=\"%s\",op=\"%s\"}"
			    " %zu\n", type_name(t), op_name(o),
			    rep->cs != NULL ? rep->cs->count[t][o] : 0);
	return sbuf_done(&b, "metrics");
}

/*
 * Write monitor.metrics (when set) after a run: a Prometheus textfile,
 * written beside it and renamed, mode 0640 so that the group of its
 * directory (setgid, the monitoring group) can read it.  0 or -1.
 */
int
monitor_write_metrics(const struct config *cfg, const struct run_report *rep)
{
	char tmp[PATH_MAX], *text;
	struct facts f;
	int fd, rc = 0;

	if (cfg->monitor.metrics == NULL)
		return 0;
	gather(cfg, &f);
	if ((text = metrics_text(rep, &f)) == NULL)
		return -1;
	if (path_fmt(tmp, sizeof(tmp), "%s.tmp", cfg->monitor.metrics) == -1) {
		free(text);
		return -1;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640))
	    == -1) {
		free(text);
		return error_sys("%s", tmp);
	}
	if (fchmod(fd, 0640) == -1 || fd_write(fd, text, strlen(text)) == -1)
		rc = error_sys("%s", tmp);
	if (close(fd) == -1 && rc == 0)
		rc = error_sys("%s", tmp);
	if (rc == 0 && rename(tmp, cfg->monitor.metrics) == -1)
		rc = error_sys("%s", cfg->monitor.metrics);
	if (rc == -1)
		unlink(tmp);
	free(text);
	return rc;
}

/*
 * Fetch monitor.heartbeat (when set), for a dead man's switch that
 * alerts when the pings stop.  At most 10 seconds.  0 or -1.
 */
int
monitor_heartbeat(const struct config *cfg)
{
	char errbuf[CURL_ERROR_SIZE];
	CURL *h;
	CURLcode ce;
	long code = 0;

	if (cfg->monitor.heartbeat == NULL)
		return 0;
	if ((h = curl_easy_init()) == NULL)
		return error_set("heartbeat: cannot start libcurl");
	errbuf[0] = '\0';
	if ((ce = curl_easy_setopt(h, CURLOPT_URL, cfg->monitor.heartbeat))
	    != CURLE_OK ||
	    (ce = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf))
	    != CURLE_OK ||
	    (ce = curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L)) != CURLE_OK ||
	    (ce = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L)) != CURLE_OK ||
	    (ce = curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L)) != CURLE_OK ||
	    (ce = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https"))
	    != CURLE_OK ||
	    (ce = curl_easy_perform(h)) != CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		error_set("heartbeat %s: %s", cfg->monitor.heartbeat,
		    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(ce));
		curl_easy_cleanup(h);
		return -1;
	}
	curl_easy_cleanup(h);
	return 0;
}
