/*
 * testutil.h -- helpers shared by the Check suites.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <sys/types.h>

#include "sisfeed.h"

/* A fresh private directory under $TMPDIR (or /tmp); path in buf.
 * Aborts the test on failure. */
void	 tu_mkdtemp(char *buf, size_t len);
/* Remove a directory tree (best effort, no shell). */
void	 tu_rmtree(const char *path);
/* dir/name in a static buffer, one of 8 used in turn.  Aborts the
 * test when it does not fit. */
const char *tu_path(const char *dir, const char *name);
/* Write s to dir/name (creating it), mode 0644; returns the path in a
 * static rotating buffer. */
const char *tu_write(const char *dir, const char *name, const char *s);
/* Write a .zip at path holding the files names[] (NULL-terminated) of
 * dir, each as prefix + name.  Aborts the test on failure. */
void	 tu_zip(const char *path, const char *dir, const char *const *names,
	    const char *prefix);
/* Read a whole file; malloc'd, NUL-terminated, *len set if non-NULL.
 * NULL if it cannot be read. */
char	*tu_read(const char *path, size_t *len);
/* 1 if path exists. */
int	 tu_exists(const char *path);
/* Run argv (argv[0] a path, no shell) with stdout+stderr captured into
 * *out (malloc'd); returns the exit status, or 128+signal.  Killed
 * after timeout_s seconds. */
int	 tu_run(char *const argv[], char **out, int timeout_s);
/* Path of the sisfeed binary under test ($SISFEED_BIN). */
const char *tu_sisfeed(void);
/* Top of the source tree ($SISFEED_TOP, default "."). */
const char *tu_top(void);
/* A free TCP port on 127.0.0.1. */
int	 tu_free_port(void);
/* Wait until something accepts on 127.0.0.1:port; 0 if it did within
 * timeout_ms (polls at most timeout_ms/20 times), -1 if not. */
int	 tu_wait_port(int port, int timeout_ms);
/*
 * Hand-built run reports of a 5000-person district (completed, blocked
 * on 412 person deletes with five samples, failed in deliver), filling
 * r and the change set and verdict it points to.
 */
void	 tu_report_completed(struct run_report *, const struct config *,
	    struct changeset *, struct verdict *);
void	 tu_report_blocked(struct run_report *, const struct config *,
	    struct changeset *, struct verdict *);
void	 tu_report_failed(struct run_report *, const struct config *,
	    struct changeset *, struct verdict *);
/*
 * Roster builders: add a copy of p, g, or a membership (by indices, or
 * by keys after roster_seal_entities) to r.  Fields left out of a
 * compound literal are NULL or 0.  Fail the test on error or an
 * unknown key.
 */
void	 tu_add_person(struct roster *, struct person);
void	 tu_add_group(struct roster *, struct group);
void	 tu_add_member_at(struct roster *, size_t group, size_t person,
	    int role, int active);
void	 tu_add_member(struct roster *, const char *group,
	    const char *person, int role, int active);
/* The last 3000 bytes of a log file, for failure messages, in a static
 * buffer; "(no log)" if it cannot be read. */
const char *tu_log_tail(const char *path);
/*
 * Start a server, argv[0] a path (no shell), stdin /dev/null, stdout
 * and stderr appended to log, killed if the test process dies; wait
 * until it accepts on 127.0.0.1:port (20 s at most).  Returns its pid;
 * aborts the test, with the log's tail, if it exits or never listens.
 */
pid_t	 tu_server_start(char *const argv[], const char *log, int port);
/* Send sig to a server tu_server_start started and reap it. */
void	 tu_server_stop(pid_t pid, int sig);
/* Run a Check suite; returns the number failed. */
int	 tu_run_suite(Suite *);

#endif
