/*
 * pause.c -- when kinds of change are held out of the file: the
 * calendar of safety.pause, and STATE/pause written by
 * `sisfeed pause --until DATE` and removed by `sisfeed resume`.
 *
 * STATE/pause holds "until EPOCH", "hold MASK" and "by WHO", a line
 * each.  A pause ends at the start of the day after its last day.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sisfeed.h"

/*
 * "YYYY-MM-DD" as local midnight of that day (plus days) into *t.
 * 0, or -1 (error set) if it is not a date.
 */
int
pause_date(const char *s, int days, time_t *t)
{
	struct tm tm;
	int y, m, d;
	size_t i;

	for (i = 0; i < 10; i++)
		if (s[i] == '\0' || ((i == 4 || i == 7) ? s[i] != '-' :
		    (s[i] < '0' || s[i] > '9')))
			break;
	if (i != 10 || s[10] != '\0' || sscanf(s, "%4d-%2d-%2d", &y, &m,
	    &d) != 3 || m < 1 || m > 12 || d < 1 || d > 31)
		return error_set("'%.32s' is not a date (YYYY-MM-DD)", s);
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	tm.tm_mday += days;
	tm.tm_isdst = -1;
	if ((*t = mktime(&tm)) == (time_t)-1)
		return error_set("'%.32s' is out of range", s);
	return 0;
}

/*
 * "deletes", "deactivations" (a list, comma-separated) into a mask of
 * HOLD_*.  0, or -1 (error set).
 */
int
pause_hold_parse(const char *s, unsigned *mask)
{
	char buf[128], *tok, *save = NULL;

	*mask = 0;
	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save)) {
		if (strcmp(tok, "deletes") == 0)
			*mask |= HOLD_DELETES;
		else if (strcmp(tok, "deactivations") == 0)
			*mask |= HOLD_DEACTIVATIONS;
		else
			return error_set("'%.32s' cannot be held (deletes, "
			    "deactivations)", tok);
	}
	if (*mask == 0)
		return error_set("nothing to hold");
	return 0;
}

/* "deletes and deactivations", "deletes", ... for a mask. */
const char *
pause_hold_name(unsigned mask)
{
	if (mask == (HOLD_DELETES | HOLD_DEACTIVATIONS))
		return "deletes and deactivations";
	if (mask == HOLD_DELETES)
		return "deletes";
	if (mask == HOLD_DEACTIVATIONS)
		return "deactivations";
	return "nothing";
}

static int
pause_path(const struct config *cfg, char *buf, size_t len)
{
	return path_fmt(buf, len, "%s/pause", cfg->state_dir);
}

/*
 * The kinds held at now: the union of every calendar window holding
 * now and of STATE/pause until its end.  *until gets the latest end
 * of what holds (0 when nothing does).  Returns the mask (0: none).
 */
unsigned
pause_active(const struct config *cfg, time_t now, time_t *until)
{
	char path[PATH_MAX], line[256];
	unsigned mask = 0, m;
	long long v;
	time_t end = 0;
	size_t i;
	FILE *fp;

	*until = 0;
	for (i = 0; i < cfg->nets.npause; i++) {
		const struct pause_window *w = &cfg->nets.pause[i];

		if (now >= w->from && now < w->to) {
			mask |= w->hold;
			if (w->to > *until)
				*until = w->to;
		}
	}
	if (pause_path(cfg, path, sizeof(path)) == -1 ||
	    (fp = fopen(path, "r")) == NULL)
		return mask;
	m = 0;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "until %lld", &v) == 1)
			end = (time_t)v;
		else if (sscanf(line, "hold %u", &m) == 1)
			m &= HOLD_DELETES | HOLD_DEACTIVATIONS;
	}
	fclose(fp);
	if (now < end && m != 0) {
		mask |= m;
		if (end > *until)
			*until = end;
	}
	return mask;
}

/*
 * The pause command: hold the kinds in mask until the end of the day
 * `until` (YYYY-MM-DD) by writing STATE/pause.  Returns an exit code.
 */
int
pause_command(const struct config *cfg, const char *until, unsigned mask)
{
	char path[PATH_MAX], who[128], buf[512];
	time_t end;
	int n, lock;

	if (pause_date(until, 1, &end) == -1) {
		log_error("pause --until: %s", error_last());
		return EXIT_USAGE;
	}
	if (end <= time(NULL)) {
		log_error("pause --until %s: that day is over", until);
		return EXIT_USAGE;
	}
	if ((lock = snapshot_lock(cfg->state_dir)) < 0) {
		log_error("%s", error_last());
		return lock == -2 ? EXIT_LOCKED : EXIT_FAILED;
	}
	approval_identity(who, sizeof(who));
	n = snprintf(buf, sizeof(buf), "until %lld\nhold %u\nby %s\n",
	    (long long)end, mask, who);
	if (pause_path(cfg, path, sizeof(path)) == -1 ||
	    file_write_atomic(path, buf, (size_t)n) == -1) {
		log_error("%s", error_last());
		snapshot_unlock(lock);
		return EXIT_FAILED;
	}
	snapshot_unlock(lock);
	printf("paused: %s held out of the file until the end of %s\n",
	    pause_hold_name(mask), until);
	return EXIT_OK;
}

/*
 * The resume command: remove STATE/pause (the calendar of
 * safety.pause still holds).  Returns an exit code.
 */
int
pause_resume(const struct config *cfg)
{
	char path[PATH_MAX];
	int lock;

	if ((lock = snapshot_lock(cfg->state_dir)) < 0) {
		log_error("%s", error_last());
		return lock == -2 ? EXIT_LOCKED : EXIT_FAILED;
	}
	if (pause_path(cfg, path, sizeof(path)) == -1 ||
	    (unlink(path) == -1 && errno != ENOENT)) {
		log_error("%s: %s", path, strerror(errno));
		snapshot_unlock(lock);
		return EXIT_FAILED;
	}
	snapshot_unlock(lock);
	printf("resumed: the next run delivers what was held, judged by the "
	    "thresholds\n");
	return EXIT_OK;
}
