/*
 * log.c -- the last error message, and messages to stderr.
 *
 * Errors travel up as a return value of -1 plus one message kept here
 * (per thread), so the run can put the exact reason into its report.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sisfeed.h"

static _Thread_local char last_error[1024];

int log_verbosity = 1;

/*
 * Record a formatted error message.  Returns -1.
 */
int
error_set(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Record a formatted error message followed by ": " and the text of
 * errno as it was on entry.  Returns -1.
 */
int
error_sys(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;
	size_t len;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	len = strlen(last_error);
	snprintf(last_error + len, sizeof(last_error) - len, ": %s",
	    strerror(saved));
	errno = saved;
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

static void
log_vprint(const char *prefix, const char *fmt, va_list ap)
{
	fprintf(stderr, "sisfeed: %s", prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
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
	log_vprint("", fmt, ap);
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
	log_vprint("", fmt, ap);
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
	log_vprint("warning: ", fmt, ap);
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
	log_vprint("error: ", fmt, ap);
	va_end(ap);
}
