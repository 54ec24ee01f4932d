/*
 * fileio.c -- ground file helpers for every layer: path formatting,
 * full writes, fsync, and atomic replacement (temporary name beside the
 * target, fsync, rename, fsync of the directory).
 */
#define _GNU_SOURCE	/* copy_file_range */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sisfeed.h"

/*
 * snprintf into a path buffer; a path that does not fit is an error
 * (set) rather than silently cut.  Returns 0 or -1.
 */
int
path_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return error_set("path too long: %.64s...", buf);
	return 0;
}

/*
 * fsync the directory that holds path, so a rename in it is durable.
 * Returns 0 or -1 (error set).
 */
int
fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return error_sys("%s", dir);
	if (fsync(fd) == -1 && errno != EINVAL) {
		error_sys("%s: fsync", dir);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * fsync the file at path and then its directory.  Returns 0 or -1.
 */
int
fsync_path(const char *path)
{
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return error_sys("%s", path);
	if (fsync(fd) == -1) {
		error_sys("%s: fsync", path);
		close(fd);
		return -1;
	}
	close(fd);
	return fsync_dir_of(path);
}

/*
 * Write all len bytes of buf to fd, going on after short writes and
 * EINTR, at most 1 GiB a call.  Returns 0, or -1 with errno set (no
 * error message: the caller names the file).
 */
int
fd_write(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len > (1u << 30) ? (1u << 30) : len);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * A temporary file beside dst: DIR/.sisfeed.NAME.XXXXXX.part, a name no
 * importer pattern for NAME (sisfeed-*, *.xml, *.gz) matches, which
 * file_clean_temps removes after a crash.
 */
static int
open_temp(const char *dst, char *tmp, size_t len, mode_t mode)
{
	const char *base = strrchr(dst, '/');
	int dlen = base == NULL ? 0 : (int)(base - dst + 1);
	int fd;

	base = base == NULL ? dst : base + 1;
	if ((size_t)snprintf(tmp, len, "%.*s" FILE_TEMP_PREFIX "%s.XXXXXX"
	    FILE_TEMP_SUFFIX, dlen, dst, base) >= len)
		return error_set("%s: path too long", dst);
	if ((fd = mkstemps(tmp, (int)strlen(FILE_TEMP_SUFFIX))) == -1)
		return error_sys("%s", tmp);
	if (fchmod(fd, mode) == -1) {
		error_sys("%s", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	return fd;
}

/* 0 if dst is missing or a regular file (it may be replaced by a
 * rename); -1 (error set) for a symbolic link, device, FIFO, ... */
static int
replaceable(const char *dst)
{
	struct stat st;

	if (lstat(dst, &st) == -1)
		return errno == ENOENT ? 0 : error_sys("%s", dst);
	if (!S_ISREG(st.st_mode))
		return error_set("%s is not a regular file (%s): it is never "
		    "replaced", dst, S_ISLNK(st.st_mode) ? "a symbolic link" :
		    S_ISDIR(st.st_mode) ? "a directory" : "a device, FIFO or "
		    "socket");
	return 0;
}

static int
finish_temp(int fd, const char *tmp, const char *dst)
{
	if (fsync(fd) == -1) {
		error_sys("%s: fsync", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) == -1) {
		error_sys("%s", tmp);
		unlink(tmp);
		return -1;
	}
	if (replaceable(dst) == -1) {
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, dst) == -1) {
		error_sys("%s: rename to %s", tmp, dst);
		unlink(tmp);
		return -1;
	}
	return fsync_dir_of(dst);
}

/*
 * Write len bytes to path atomically: a temporary file in the same
 * directory, mode 0600, fsync, rename, fsync of the directory.
 * Returns 0, or -1 (error set; no temporary file left).
 */
int
file_write_atomic(const char *path, const void *buf, size_t len)
{
	char tmp[PATH_MAX];
	int fd;

	if ((fd = open_temp(path, tmp, sizeof(tmp), 0600)) < 0)
		return -1;
	if (fd_write(fd, buf, len) == -1) {
		error_sys("%s", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	return finish_temp(fd, tmp, path);
}

/*
 * Copy the `want` bytes of in to out in the kernel (copy_file_range: no
 * pass through this process's memory, and no copy at all where the file
 * system shares extents, as XFS and Btrfs do), adding the bytes to
 * *total.  0 when all are copied; 1 when the kernel cannot do it here
 * (another file system, an old kernel, a filter) or stops short before
 * anything was copied: the caller then reads and writes; -1 (errno
 * set) on an error.
 */
static int
copy_in_kernel(int in, int out, off_t want, off_t *total)
{
	ssize_t n;

	while (*total < want) {
		n = copy_file_range(in, NULL, out, NULL, 64 << 20, 0);
		if (n > 0) {
			*total += n;
			fault_point("copy");
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (*total == 0 && (n == 0 || errno == ENOSYS ||
		    errno == EXDEV || errno == EINVAL ||
		    errno == EOPNOTSUPP || errno == EPERM))
			return 1;
		if (n == 0)
			errno = EIO;	/* the file shrank under us */
		return -1;
	}
	return 0;
}

/*
 * Copy src to dst atomically (temporary name beside dst, given mode,
 * fsync, rename); *size gets the bytes copied if non-NULL.  Returns 0,
 * or -1 (error set; dst untouched, no temporary file left).
 */
int
file_copy_atomic(const char *src, const char *dst, mode_t mode,
    off_t *size)
{
	char tmp[PATH_MAX];
	static char buf[1 << 20];
	struct stat st;
	int in, out, rc;
	off_t total = 0;
	ssize_t n;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1)
		return error_sys("%s", src);
	if (fstat(in, &st) == -1) {
		error_sys("%s", src);
		close(in);
		return -1;
	}
	if ((out = open_temp(dst, tmp, sizeof(tmp), mode)) < 0) {
		close(in);
		return -1;
	}
	/* a size the file states (not /proc's 0) is copied in the kernel */
	rc = S_ISREG(st.st_mode) && st.st_size > 0 ?
	    copy_in_kernel(in, out, st.st_size, &total) : 1;
	if (rc == -1) {
		error_sys("%s: copy to %s", src, tmp);
		close(in);
		close(out);
		unlink(tmp);
		return -1;
	}
	while (rc == 1 && (n = read(in, buf, sizeof(buf))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 || fd_write(out, buf, (size_t)n) == -1) {
			error_sys("%s", n == -1 ? src : tmp);
			close(in);
			close(out);
			unlink(tmp);
			return -1;
		}
		total += n;
		fault_point("copy");
	}
	close(in);
	if (finish_temp(out, tmp, dst) == -1)
		return -1;
	if (size != NULL)
		*size = total;
	return 0;
}

/*
 * Remove the temporary files a crashed write left in dir (regular
 * files named .sisfeed.*.part).  Returns how many were removed, or -1
 * (error set) when dir cannot be read.
 */
int
file_clean_temps(const char *dir)
{
	size_t pl = strlen(FILE_TEMP_PREFIX), sl = strlen(FILE_TEMP_SUFFIX);
	char path[PATH_MAX];
	struct dirent *e;
	struct stat st;
	size_t nl;
	DIR *d;
	int n = 0;

	if ((d = opendir(dir)) == NULL)
		return error_sys("%s", dir);
	while ((e = readdir(d)) != NULL) {
		nl = strlen(e->d_name);
		if (nl <= pl + sl ||
		    strncmp(e->d_name, FILE_TEMP_PREFIX, pl) != 0 ||
		    strcmp(e->d_name + nl - sl, FILE_TEMP_SUFFIX) != 0 ||
		    path_fmt(path, sizeof(path), "%s/%s", dir, e->d_name) == -1)
			continue;
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    unlink(path) == 0)
			n++;
	}
	closedir(d);
	return n;
}
