/*
 * restore.c -- a lost snapshot is never a first run.
 *
 * Without STATE/snapshot a run would load everything as new and delete
 * nothing: the persons removed since the last delivery would stay on
 * the platform for good.  So when the state shows earlier deliveries
 * (snapshots in history/, the snapshot's index, a run log) and the
 * snapshot is gone, the run fails and says how to go on:
 *
 *   sisfeed restore [FILE]   the newest snapshot in history/ that reads
 *                            as a whole (or FILE, e.g. the last full
 *                            file delivered) becomes the snapshot; the
 *                            next run sends the changes since then
 *   sisfeed restore --initial
 *                            the next run is an initial load on purpose
 *                            (STATE/initial, removed by its commit)
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sisfeed.h"

/* The newest n names in STATE/history starting "snapshot.", newest
 * first, into names (each malloc'd).  Returns the count or -1. */
static int
history_list(const char *state_dir, char **names, int max)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int n = 0, i, j;

	if (path_fmt(path, sizeof(path), "%s/history", state_dir) == -1)
		return -1;
	if ((d = opendir(path)) == NULL)
		return errno == ENOENT ? 0 : error_sys("%s", path);
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "snapshot.", 9) != 0)
			continue;
		/* Insertion into a newest-first list of at most max. */
		for (i = 0; i < n && strcmp(names[i], e->d_name) > 0; i++)
			;
		if (i == max)
			continue;
		if (n == max)
			free(names[--n]);
		for (j = n; j > i; j--)
			names[j] = names[j - 1];
		if ((names[i] = strdup(e->d_name)) == NULL) {
			for (j = i + 1; j <= n; j++)
				names[j - 1] = names[j];
			closedir(d);
			for (j = 0; j < n; j++)
				free(names[j]);
			return error_sys("%s", path);
		}
		n++;
	}
	closedir(d);
	return n;
}

/* 1 if the run log at path has a completed run, 0 if not (or there is
 * no log), -1 if it cannot be read. */
static int
log_has_completed(const char *path)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *fp;
	int found = 0;

	if ((fp = fopen(path, "r")) == NULL)
		return errno == ENOENT ? 0 : error_sys("%s", path);
	while (!found && getline(&line, &cap, fp) != -1)
		found = strstr(line, "status=completed") != NULL;
	free(line);
	if (ferror(fp)) {
		fclose(fp);
		return error_sys("%s", path);
	}
	fclose(fp);
	return found;
}

/*
 * 1 and why filled when STATE/snapshot is missing although earlier
 * runs delivered (a snapshot in history/, the index, a completed run
 * in runs.log) and no re-initialisation was asked for; 0 otherwise;
 * -1 on error.
 */
int
state_lost(const char *state_dir, char *why, size_t len)
{
	char path[PATH_MAX], *name = NULL;
	struct stat st;
	int n;

	if (path_fmt(path, sizeof(path), "%s/snapshot", state_dir) == -1)
		return -1;
	if (stat(path, &st) == 0)
		return 0;
	if (path_fmt(path, sizeof(path), "%s/initial", state_dir) == -1)
		return -1;
	if (stat(path, &st) == 0)
		return 0;
	if ((n = history_list(state_dir, &name, 1)) == -1)
		return -1;
	if (n == 1) {
		snprintf(why, len, "history/ holds %s", name);
		free(name);
		return 1;
	}
	if (path_fmt(path, sizeof(path), "%s/snapshot.idx", state_dir) == -1)
		return -1;
	if (stat(path, &st) == 0) {
		snprintf(why, len, "its index snapshot.idx is there");
		return 1;
	}
	if (path_fmt(path, sizeof(path), "%s/runs.log", state_dir) == -1)
		return -1;
	if ((n = log_has_completed(path)) == 1)
		snprintf(why, len, "runs.log shows completed runs");
	return n;
}

/*
 * Forget the request for an initial load once it has been committed
 * (STATE/initial).  Never fails: a marker left is harmless, as the
 * snapshot now exists.
 */
void
state_initial_done(const char *state_dir)
{
	char path[PATH_MAX];

	if (path_fmt(path, sizeof(path), "%s/initial", state_dir) == 0)
		(void)unlink(path);
}

/* Read path strictly (every record valid) into counts.  0 or -1. */
static int
snapshot_verify(const char *path, size_t count[NTYPES])
{
	struct roster r;
	int rc;

	roster_init(&r);
	rc = ims_read(path, &r, NULL);
	count[TYPE_PERSON] = r.npersons;
	count[TYPE_GROUP] = r.ngroups;
	count[TYPE_MEMBER] = r.nmembers;
	roster_free(&r);
	return rc;
}

/* Make src the snapshot: copied into the state directory, committed as
 * a run's would be (the old one, if any, to history/).  0 or -1. */
static int
snapshot_install(const struct config *cfg, const char *src)
{
	char tmp[PATH_MAX], idx[PATH_MAX];

	if (path_fmt(tmp, sizeof(tmp), "%s/snapshot.restore",
	    cfg->state_dir) == -1 ||
	    path_fmt(idx, sizeof(idx), "%s/snapshot.idx", cfg->state_dir) == -1)
		return -1;
	if (file_copy_atomic(src, tmp, 0600, NULL) == -1)
		return -1;
	if (snapshot_commit(cfg->state_dir, tmp, cfg->history) == -1) {
		(void)unlink(tmp);
		return -1;
	}
	if (unlink(idx) == -1 && errno != ENOENT)
		return error_sys("%s", idx);
	state_initial_done(cfg->state_dir);
	return 0;
}

/* Pick the newest snapshot in history/ that reads as a whole into src.
 * 0, or -1 if there is none. */
static int
history_pick(const struct config *cfg, char *src, size_t len,
    size_t count[NTYPES])
{
	enum { MAXTRY = 64 };
	char *names[MAXTRY];
	int n, i, found = -1;

	if ((n = history_list(cfg->state_dir, names, MAXTRY)) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (found == -1 && path_fmt(src, len, "%s/history/%s",
		    cfg->state_dir, names[i]) == 0) {
			if (snapshot_verify(src, count) == 0)
				found = i;
			else
				log_warn("%s", error_last());
		}
		free(names[i]);
	}
	if (found == -1)
		return error_set("%s/history holds no snapshot that reads as "
		    "a whole (%d tried): name a FILE (the last full file "
		    "delivered), or start over with 'sisfeed restore "
		    "--initial'", cfg->state_dir, n);
	return 0;
}

/* restore [FILE]: the body, under the lock.  An exit code. */
static int
restore_from(const struct config *cfg, const char *file)
{
	char cur[PATH_MAX], src[PATH_MAX];
	size_t count[NTYPES] = { 0 };

	if (file == NULL && snapshot_path(cfg->state_dir, cur, sizeof(cur)) &&
	    snapshot_verify(cur, count) == 0) {
		log_error("%s reads as a whole: nothing to restore (name a "
		    "FILE to go back to it)", cur);
		return EXIT_FAILED;
	}
	if (file != NULL) {
		if (path_fmt(src, sizeof(src), "%s", file) == -1 ||
		    snapshot_verify(src, count) == -1) {
			log_error("%s", error_last());
			return EXIT_FAILED;
		}
	} else if (history_pick(cfg, src, sizeof(src), count) == -1) {
		log_error("%s", error_last());
		return EXIT_FAILED;
	}
	if (snapshot_install(cfg, src) == -1) {
		log_error("%s", error_last());
		return EXIT_FAILED;
	}
	printf("restored: %s/snapshot from %s (%zu persons, %zu groups, %zu "
	    "memberships)\nthe next run sends the changes since then\n",
	    cfg->state_dir, src, count[TYPE_PERSON], count[TYPE_GROUP],
	    count[TYPE_MEMBER]);
	return EXIT_OK;
}

/* restore --initial: the body, under the lock.  An exit code. */
static int
restore_initial(const struct config *cfg)
{
	static const char note[] = "the next run is an initial load "
	    "(sisfeed restore --initial)\n";
	char cur[PATH_MAX], path[PATH_MAX];

	if (snapshot_path(cfg->state_dir, cur, sizeof(cur))) {
		log_error("%s exists: --initial is for a state whose snapshot "
		    "is lost", cur);
		return EXIT_FAILED;
	}
	if (path_fmt(path, sizeof(path), "%s/initial", cfg->state_dir) == -1 ||
	    file_write_atomic(path, note, sizeof(note) - 1) == -1) {
		log_error("%s", error_last());
		return EXIT_FAILED;
	}
	printf("the next run is an initial load: it sends every record as "
	    "new and deletes nothing (safety.first_run applies)\n");
	return EXIT_OK;
}

/*
 * The restore command: FILE, or the newest snapshot in history/ that
 * reads as a whole, becomes the snapshot; with initial, the next run is
 * an initial load on purpose.  Returns an exit code.
 */
int
run_restore(const struct config *cfg, const char *file, int initial)
{
	int lock, rc;

	if ((lock = snapshot_lock(cfg->state_dir)) < 0) {
		log_error("%s", error_last());
		return lock == -2 ? EXIT_LOCKED : EXIT_FAILED;
	}
	rc = initial ? restore_initial(cfg) : restore_from(cfg, file);
	snapshot_unlock(lock);
	return rc;
}
