/*
 * log.c -- the last error message, and messages to stderr, the journal
 * or syslog.
 *
 * Errors travel up as a return value of -1 plus one message kept here
 * (per thread), so the run can put the exact reason into its report.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "sisfeed.h"

static _Thread_local char last_error[1024];

int log_verbosity = 1;

/*
 * Record a formatted error message.  Returns -1.  The message is
 * formatted aside first, so an argument that is the last message
 * itself cannot garble it.
 */
int
error_set(const char *fmt, ...)
{
	char msg[sizeof(last_error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(last_error, msg, sizeof(last_error));
	return -1;
}

/*
 * Record a formatted error message followed by ": " and the text of
 * errno as it was on entry.  Returns -1.
 */
int
error_sys(const char *fmt, ...)
{
	char msg[sizeof(last_error)];
	va_list ap;
	int saved = errno;
	size_t len;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	len = strlen(msg);
	snprintf(msg + len, sizeof(msg) - len, ": %s", strerror(saved));
	memcpy(last_error, msg, sizeof(last_error));
	errno = saved;
	return -1;
}

/*
 * Put a formatted prefix in front of the last error message, cut to
 * fit.  Returns -1.
 */
int
error_prefix(const char *fmt, ...)
{
	char msg[sizeof(last_error)];
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	len = strlen(msg);
	snprintf(msg + len, sizeof(msg) - len, "%s", last_error);
	memcpy(last_error, msg, sizeof(last_error));
	return -1;
}

/*
 * The last error message of this thread, or "".
 */
const char *
error_last(void)
{
	return last_error;
}

/*
 * Forget the last error message.
 */
void
error_clear(void)
{
	last_error[0] = '\0';
}

/* Where messages go, decided at the first one. */
enum log_sink { SINK_UNSET, SINK_TTY, SINK_JOURNAL, SINK_SYSLOG };
static enum log_sink log_sink;
static char log_run[40];

/*
 * The run id that messages to syslog and the journal carry from now on
 * ("" or NULL: none).
 */
void
log_set_run(const char *id)
{
	snprintf(log_run, sizeof(log_run), "%s", id != NULL ? id : "");
}

/* 1 if standard error is the journal's stream (systemd sets
 * JOURNAL_STREAM to its "device:inode"). */
static int
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

static enum log_sink
sink(void)
{
	if (log_sink != SINK_UNSET)
		return log_sink;
	if (isatty(STDERR_FILENO))
		log_sink = SINK_TTY;
	else if (stderr_is_journal())
		log_sink = SINK_JOURNAL;
	else {
		openlog("sisfeed", LOG_PID, LOG_DAEMON);
		log_sink = SINK_SYSLOG;
	}
	return log_sink;
}

/*
 * One message: on a terminal to stderr; under systemd to the journal
 * with its priority; otherwise (cron) to syslog with the run id, and
 * to stderr as well.
 */
static void
log_vprint(int prio, const char *prefix, const char *fmt, va_list ap)
{
	char msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	switch (sink()) {
	case SINK_JOURNAL:
		fprintf(stderr, "<%d>sisfeed: %s%s%s%s%s\n", prio,
		    log_run[0] ? "run " : "", log_run, log_run[0] ? ": " : "",
		    prefix, msg);
		return;
	case SINK_SYSLOG:
		syslog(prio, "%s%s%s%s%s", log_run[0] ? "run " : "", log_run,
		    log_run[0] ? ": " : "", prefix, msg);
		break;
	default:
		break;
	}
	fprintf(stderr, "sisfeed: %s%s\n", prefix, msg);
}

/*
 * An informational message, unless -q.
 */
void
log_info(const char *fmt, ...)
{
	va_list ap;

	if (log_verbosity < 1)
		return;
	va_start(ap, fmt);
	log_vprint(LOG_INFO, "", fmt, ap);
	va_end(ap);
}

/*
 * A message shown only with -v.
 */
void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_verbosity < 2)
		return;
	va_start(ap, fmt);
	log_vprint(LOG_DEBUG, "", fmt, ap);
	va_end(ap);
}

/*
 * A warning: always shown.
 */
void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vprint(LOG_WARNING, "warning: ", fmt, ap);
	va_end(ap);
}

/*
 * An error: always shown.
 */
void
log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vprint(LOG_ERR, "error: ", fmt, ap);
	va_end(ap);
}

/*
 * Fault injection for the crash tests: when SISFEED_CRASH_AFTER names
 * this point, the process is killed with SIGKILL here, as a power cut
 * would.  Points: the run's stages (read, diff, write, deliver,
 * commit) and "copy" (a delivery cut after its first chunk, under its
 * temporary name, in a directory or over SFTP).
 */
void
fault_point(const char *name)
{
	const char *at = getenv("SISFEED_CRASH_AFTER");

	if (at != NULL && strcmp(at, name) == 0)
		raise(SIGKILL);
}
