/*
 * snapshot.c -- the state directory: the lock, the last delivered
 * snapshot and its history (atomic writes: lib/fileio.c).
 *
 * Layout (all 0700 directories, 0600 files):
 *   lock            flock(2)ed by the running sisfeed; holds its pid
 *   snapshot        the last delivered full IMS file (gzip if so configured)
 *   history/        earlier snapshots, snapshot.YYYYmmddTHHMMSSZ
 *   out/            tonight's outgoing files before delivery
 *   pending         the blocked change set awaiting approval
 *   rejects/        RUNID.txt: the records each run rejected
 *   runs.log        one line per run; runs/RUNID.json the summary
 *   spool/          mail that could not be sent yet
 * Every file is written to a temporary name, fsync'd, then renamed, and
 * the directory fsync'd: a crash leaves the old file or the new one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sisfeed.h"

static const char *const subdirs[] = {
	"history", "out", "rejects", "runs", "spool",
};

static int
ensure_dir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		return error_sys("%s", path);
	if (stat(path, &st) == -1)
		return error_sys("%s", path);
	if (!S_ISDIR(st.st_mode))
		return error_set("%s: not a directory", path);
	if ((st.st_mode & 077) != 0 && chmod(path, 0700) == -1)
		return error_sys("%s: chmod 0700", path);
	return 0;
}

/*
 * Create state_dir and its subdirectories (0700) if needed, then take
 * the run lock.  Returns the lock's fd; -2 when another process holds
 * it (the error names its pid); -1 on any other error.
 */
int
snapshot_lock(const char *state_dir)
{
	char path[PATH_MAX], buf[32];
	size_t i;
	int fd;
	ssize_t n;

	if (ensure_dir(state_dir) == -1)
		return -1;
	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", state_dir, subdirs[i]);
		if (ensure_dir(path) == -1)
			return -1;
	}
	snprintf(path, sizeof(path), "%s/lock", state_dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		return error_sys("%s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		int saved = errno;

		if (saved == EWOULDBLOCK) {
			n = pread(fd, buf, sizeof(buf) - 1, 0);
			buf[n > 0 ? n : 0] = '\0';
			buf[strcspn(buf, "\n")] = '\0';
			close(fd);
			error_set("%s: another sisfeed run holds the lock "
			    "(pid %s)", path, buf[0] ? buf : "unknown");
			return -2;
		}
		close(fd);
		errno = saved;
		return error_sys("%s: lock", path);
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, buf, (size_t)n, 0) != n) {
		error_sys("%s", path);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Release the run lock (the pid stays in the file as a hint).
 */
void
snapshot_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

/*
 * Put the path of the current snapshot into buf.  Returns 1 if it
 * exists, 0 if there is none yet (a first run).
 */
int
snapshot_path(const char *state_dir, char *buf, size_t len)
{
	struct stat st;

	snprintf(buf, len, "%s/snapshot", state_dir);
	return stat(buf, &st) == 0;
}

/*
 * The identity of the current snapshot: a digest of its size and its
 * modification time to the nanosecond, which every commit renews (the
 * snapshot is a file written just before).  Not the inode: a state
 * directory restored from a backup (cp -a, tar, rsync -a keep mtimes)
 * keeps its identity, and so its index and a pending approval id.
 * Zeros when there is no snapshot.  Returns 0, or -1 when it cannot be
 * examined.
 */
int
snapshot_digest(const char *state_dir, unsigned char out[32])
{
	char path[PATH_MAX];
	struct stat st;
	struct sha256 h;
	unsigned long long v[3];

	memset(out, 0, 32);
	snprintf(path, sizeof(path), "%s/snapshot", state_dir);
	if (stat(path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		return error_sys("%s", path);
	}
	v[0] = (unsigned long long)st.st_size;
	v[1] = (unsigned long long)st.st_mtim.tv_sec;
	v[2] = (unsigned long long)st.st_mtim.tv_nsec;
	sha256_init(&h);
	sha256_update(&h, v, sizeof(v));
	sha256_final(&h, out);
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Keep the newest `keep` files of dir whose names start with prefix
 * (names sort by time); remove the rest.  Returns 0 or -1.
 */
static int
prune(const char *dir, const char *prefix, int keep)
{
	DIR *d;
	struct dirent *e;
	char **names = NULL, path[PATH_MAX];
	size_t n = 0, cap = 0, i;
	int rc = 0;

	if ((d = opendir(dir)) == NULL)
		return error_sys("%s", dir);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' ||
		    strncmp(e->d_name, prefix, strlen(prefix)) != 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nv = realloc(names, ncap * sizeof(*nv));

			if (nv == NULL) {
				rc = error_sys("%s", dir);
				break;
			}
			names = nv;
			cap = ncap;
		}
		if ((names[n] = strdup(e->d_name)) == NULL) {
			rc = error_sys("%s", dir);
			break;
		}
		n++;
	}
	closedir(d);
	if (rc == 0 && n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		if (rc == 0 && keep >= 0 && i + (size_t)keep < n) {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
			if (unlink(path) == -1 && errno != ENOENT)
				rc = error_sys("%s", path);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

/*
 * Make tmp, a complete file in state_dir, the new snapshot.  The old
 * snapshot is kept in history/ (hard link, then the rename replaces
 * it), and history is pruned to `keep` files.  The rename is the
 * moment of truth: before it the old snapshot stands, after it the
 * new one (a history that cannot be pruned is then a warning).  Returns
 * 0, or -1 (error set).
 */
int
snapshot_commit(const char *state_dir, const char *tmp, int keep)
{
	char cur[PATH_MAX], old[PATH_MAX], hist[PATH_MAX], stamp[32];
	struct stat st;
	struct tm tm;

	snprintf(cur, sizeof(cur), "%s/snapshot", state_dir);
	snprintf(hist, sizeof(hist), "%s/history", state_dir);
	if (fsync_path(tmp) == -1)
		return -1;
	if (stat(cur, &st) == 0 && keep > 0) {
		gmtime_r(&st.st_mtim.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
		if (path_fmt(old, sizeof(old), "%s/snapshot.%s", hist,
		    stamp) == -1)
			return -1;
		if (link(cur, old) == -1 && errno != EEXIST)
			return error_sys("%s", old);
	}
	if (rename(tmp, cur) == -1)
		return error_sys("%s: rename to %s", tmp, cur);
	if (fsync_dir_of(cur) == -1)
		return -1;
	/* Committed: a history that cannot be pruned is a warning. */
	if (prune(hist, "snapshot.", keep) == -1)
		log_warn("%s (history/ keeps more than %d snapshots)",
		    error_last(), keep);
	return 0;
}

/*
 * Record that the full file tmp (in state_dir/out) was delivered and
 * is about to become the snapshot.  Returns 0 or -1.
 */
int
snapshot_mark_delivered(const char *state_dir, const char *tmp)
{
	char path[PATH_MAX];

	if (path_fmt(path, sizeof(path), "%s/delivered", state_dir) == -1)
		return -1;
	return file_write_atomic(path, tmp, strlen(tmp));
}

/* Forget the mark (the commit is done). */
void
snapshot_clear_delivered(const char *state_dir)
{
	char path[PATH_MAX];

	if (path_fmt(path, sizeof(path), "%s/delivered", state_dir) == 0)
		unlink(path);
}

/*
 * A run that stopped after its delivery and before its commit: commit
 * the file it delivered, if it is still in state_dir/out.  Returns 1
 * when rolled forward, 0 when there was nothing to roll forward, -1 on
 * error.
 */
int
snapshot_roll_forward(const char *state_dir, int keep)
{
	char mark[PATH_MAX], tmp[PATH_MAX], out[PATH_MAX];
	FILE *fp;
	size_t n;
	int rc = 0;

	if (path_fmt(mark, sizeof(mark), "%s/delivered", state_dir) == -1 ||
	    path_fmt(out, sizeof(out), "%s/out/", state_dir) == -1)
		return -1;
	if ((fp = fopen(mark, "r")) == NULL) {
		if (errno == ENOENT)
			return 0;
		return error_sys("%s", mark);
	}
	n = fread(tmp, 1, sizeof(tmp) - 1, fp);
	fclose(fp);
	tmp[n] = '\0';
	/* only a file of our own out/, and only if it is still there */
	if (strncmp(tmp, out, strlen(out)) == 0 &&
	    strchr(tmp + strlen(out), '/') == NULL &&
	    access(tmp, F_OK) == 0) {
		if (snapshot_commit(state_dir, tmp, keep) == -1)
			return -1;
		rc = 1;
	}
	if (unlink(mark) == -1 && errno != ENOENT)
		return error_sys("%s", mark);
	return rc;
}

/*
 * Keep the newest `keep` files of state_dir/sub; remove the others.
 * Returns 0 or -1.
 */
int
snapshot_prune(const char *state_dir, const char *sub, int keep)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/%s", state_dir, sub);
	return prune(dir, "", keep);
}
