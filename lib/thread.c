/*
 * thread.c -- starting the few helper threads (gzip compressors, the
 * second part of a memberships read, the snapshot and index jobs).
 */
#include <pthread.h>
#include <signal.h>

#include "sisfeed.h"

/*
 * Start fn(arg) on a new thread, *tid set, with every signal blocked in
 * it: signals (a stop, a terminal's ^C) stay with the main thread,
 * which handles them.  Returns 0, or pthread_create's error number (no
 * thread: the caller does the work itself).
 */
int
thread_start(pthread_t *tid, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int masked, rc;

	sigfillset(&all);
	masked = pthread_sigmask(SIG_SETMASK, &all, &old) == 0;
	rc = pthread_create(tid, NULL, fn, arg);
	if (masked)
		(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}
