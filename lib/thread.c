/*
 * thread.c -- starting the few helper threads (gzip compressors, the
 * second part of a memberships read, the snapshot and index jobs), and
 * a loop cut in two halves for two cores (thread_split).
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

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

/* The second half of a thread_split: its range and what runs it. */
struct split_half {
	void	(*fn)(void *, size_t, size_t);
	void	 *arg;
	size_t	  lo, hi;
};

static void *
split_main(void *arg)
{
	struct split_half *h = arg;

	h->fn(h->arg, h->lo, h->hi);
	return NULL;
}

/*
 * Run fn(arg, lo, hi) over [0, n): when n is at least min and two CPUs
 * are online, [n/2, n) on a thread of its own while this thread runs
 * [0, n/2), else all of it here (also when no thread starts).  fn may
 * only write what its range owns; the halves are done on return.
 * Never fails.
 */
void
thread_split(size_t n, size_t min, void (*fn)(void *, size_t, size_t),
    void *arg)
{
	struct split_half h = { fn, arg, n / 2, n };
	pthread_t tid;

	if (n < min || n < 2 || sysconf(_SC_NPROCESSORS_ONLN) < 2 ||
	    thread_start(&tid, split_main, &h) != 0) {
		fn(arg, 0, n);
		return;
	}
	fn(arg, 0, n / 2);
	if (pthread_join(tid, NULL) != 0)
		abort();	/* only a corrupt pthread_t fails */
}
