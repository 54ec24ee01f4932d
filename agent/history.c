/*
 * history.c -- what was delivered, night by night, for the limits over
 * a window of days (safety.TYPE.KIND_Nd).
 *
 * STATE/delivered.log holds one line per delivered change set,
 *   v1 EPOCH ID persons=I/U/D/X/R groups=I/U/D/X/R memberships=I/U/D/X/R
 * (inserts, updates, deletes, deactivations, reactivations), appended
 * and fsync'd after the receiver holds the file and before the
 * snapshot advances.  A crash before the line is written leaves the
 * old snapshot, so the next run delivers (and writes) the same change
 * set again; a crash after it but before the commit writes the same
 * ID twice, and a sum counts each ID once.  A torn or unreadable line
 * is skipped with a warning: the sums are then short by that night,
 * so the file is never the only guard (the nightly cells stand); the
 * next append starts on a new line, so one torn line costs one night.
 *
 * STATE/export.sizes holds the size in bytes of each file of the export
 * the last delivering run read (safety.max_shrink), "v1" then one
 * "BYTES PATH" line per file; the commit writes it atomically.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sisfeed.h"

#define HISTORY_MAXIDS	4096	/* distinct runs one sum looks at */

/* 1 if the file ends in a torn line (no newline), else 0. */
static size_t
torn_tail(int fd)
{
	struct stat st;
	char ch;

	if (fstat(fd, &st) == -1 || st.st_size == 0)
		return 0;
	return pread(fd, &ch, 1, st.st_size - 1) == 1 && ch != '\n';
}

/*
 * Append the delivered change set cs (approval id id) at time now to
 * STATE/delivered.log, fsync'd.  0 or -1.
 */
int
history_append(const struct config *cfg, const char *id,
    const struct changeset *cs, time_t now)
{
	char path[PATH_MAX], line[512];
	size_t off;
	int fd, t, n;

	if (path_fmt(path, sizeof(path), "%s/delivered.log", cfg->state_dir)
	    == -1)
		return -1;
	n = snprintf(line, sizeof(line), "v1 %lld %s", (long long)now, id);
	off = (size_t)n;
	for (t = 0; t < NTYPES; t++) {
		n = snprintf(line + off, sizeof(line) - off,
		    " %s=%zu/%zu/%zu/%zu/%zu", type_name(t),
		    cs->count[t][OP_INSERT], cs->count[t][OP_UPDATE],
		    cs->count[t][OP_DELETE], cs->flips[t][FLIP_DEACTIVATE],
		    cs->flips[t][FLIP_REACTIVATE]);
		off += (size_t)n;
	}
	line[off++] = '\n';
	if ((fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC,
	    0600)) == -1)
		return error_sys("%s", path);
	if (fd_write(fd, "\n", torn_tail(fd)) == -1 ||
	    fd_write(fd, line, off) == -1 || fsync(fd) == -1) {
		error_sys("%s", path);
		close(fd);
		return -1;
	}
	return close(fd) == -1 ? error_sys("%s", path) : 0;
}

/* Parse one line; 0 and the fields set, or -1 if it is not whole. */
static int
parse_line(char *line, long long *when, char id[17],
    size_t n[NTYPES][NKINDS])
{
	char *tok, *save = NULL, *p;
	int t, k;

	if ((tok = strtok_r(line, " ", &save)) == NULL ||
	    strcmp(tok, "v1") != 0 ||
	    (tok = strtok_r(NULL, " ", &save)) == NULL)
		return -1;
	*when = strtoll(tok, &p, 10);
	if (*p != '\0' || (tok = strtok_r(NULL, " ", &save)) == NULL ||
	    strlen(tok) != 16)
		return -1;
	memcpy(id, tok, 17);
	for (t = 0; t < NTYPES; t++) {
		size_t len = strlen(type_name(t));

		if ((tok = strtok_r(NULL, " ", &save)) == NULL ||
		    strncmp(tok, type_name(t), len) != 0 || tok[len] != '=')
			return -1;
		p = tok + len + 1;
		for (k = 0; k < NKINDS; k++) {
			char *end;

			n[t][k] = (size_t)strtoull(p, &end, 10);
			if (end == p || *end != (k + 1 < NKINDS ? '/' : '\0'))
				return -1;
			p = end + 1;
		}
	}
	return strtok_r(NULL, " ", &save) == NULL ? 0 : -1;
}

/*
 * Sum the delivered counts of the runs after since (each id once, the
 * id skip left out: tonight's own change set) into sum.  A missing
 * file sums to zero.  Returns 0, or -1 when the file cannot be read.
 */
int
history_sum(const struct config *cfg, time_t since, const char *skip,
    size_t sum[NTYPES][NKINDS])
{
	char path[PATH_MAX], line[1024], id[17];
	char (*seen)[17] = NULL;
	size_t n[NTYPES][NKINDS], nseen = 0, i, lineno = 0;
	long long when;
	FILE *fp;
	int t, k;

	memset(sum, 0, sizeof(size_t) * NTYPES * NKINDS);
	if (path_fmt(path, sizeof(path), "%s/delivered.log", cfg->state_dir)
	    == -1)
		return -1;
	if ((fp = fopen(path, "r")) == NULL)
		return errno == ENOENT ? 0 : error_sys("%s", path);
	if ((seen = calloc(HISTORY_MAXIDS, sizeof(*seen))) == NULL) {
		fclose(fp);
		return error_sys("history");
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			log_warn("%s:%zu: line too long, skipped", path,
			    lineno);
			continue;
		}
		line[strcspn(line, "\n")] = '\0';
		if (parse_line(line, &when, id, n) == -1) {
			log_warn("%s:%zu: not a whole line, skipped", path,
			    lineno);
			continue;
		}
		if (when <= (long long)since || strcmp(id, skip) == 0)
			continue;
		for (i = 0; i < nseen && strcmp(seen[i], id) != 0; i++)
			;
		if (i < nseen)
			continue;
		if (nseen < HISTORY_MAXIDS)
			memcpy(seen[nseen++], id, 17);
		for (t = 0; t < NTYPES; t++)
			for (k = 0; k < NKINDS; k++)
				sum[t][k] += n[t][k];
	}
	free(seen);
	if (ferror(fp)) {
		fclose(fp);
		return error_sys("%s", path);
	}
	fclose(fp);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The sizes of the export's files (safety.max_shrink).                */

/* The OneRoster tables that hold records. */
static const char *const oneroster_tables[EXPORT_FILES] = {
	"users.csv", "orgs.csv", "classes.csv", "enrollments.csv",
};

/* The paths of the export's files into out; *n of them.  0 or -1. */
static int
export_paths(const struct config *cfg, struct export_size *out, size_t *n)
{
	const char *csv[3] = { cfg->source.persons, cfg->source.groups,
		cfg->source.memberships };
	struct stat st;
	size_t i;

	*n = 0;
	switch (cfg->source.format) {
	case SOURCE_CSV:
		for (i = 0; i < 3; i++)
			if (csv[i] != NULL && path_fmt(out[(*n)++].file,
			    sizeof(out->file), "%s", csv[i]) == -1)
				return -1;
		return 0;
	case SOURCE_ONEROSTER:
		/* shipped as a .zip: the zip itself */
		if (stat(cfg->source.dir, &st) == 0 && S_ISREG(st.st_mode))
			return path_fmt(out[(*n)++].file, sizeof(out->file),
			    "%s", cfg->source.dir);
		for (i = 0; i < EXPORT_FILES; i++)
			if (path_fmt(out[(*n)++].file, sizeof(out->file),
			    "%s/%s", cfg->source.dir, oneroster_tables[i]) ==
			    -1)
				return -1;
		return 0;
	case SOURCE_IMS:
		return path_fmt(out[(*n)++].file, sizeof(out->file), "%s",
		    cfg->source.file);
	}
	return 0;
}

/*
 * The size of each file of the export now, into out (*n of them); a
 * file that is not there is left out (its reader says so).  Returns 0,
 * or -1 (error set) when one cannot be examined.
 */
int
history_sizes_measure(const struct config *cfg,
    struct export_size out[EXPORT_FILES], size_t *n)
{
	struct stat st;
	size_t i, kept = 0, all;

	if (export_paths(cfg, out, &all) == -1)
		return -1;
	for (i = 0; i < all; i++) {
		if (stat(out[i].file, &st) == -1) {
			if (errno == ENOENT)
				continue;
			return error_sys("%s", out[i].file);
		}
		if (kept != i)
			out[kept] = out[i];
		out[kept++].bytes = (long long)st.st_size;
	}
	*n = kept;
	return 0;
}

/*
 * Keep the n sizes as STATE/export.sizes, "v1" then one "BYTES PATH"
 * line per file (a path holding a line end is left out), written
 * atomically.  Returns 0 or -1 (error set).
 */
int
history_sizes_save(const struct config *cfg, const struct export_size *s,
    size_t n)
{
	struct sbuf sb;
	char path[PATH_MAX], *text;
	size_t i;
	int rc;

	if (path_fmt(path, sizeof(path), "%s/export.sizes", cfg->state_dir)
	    == -1)
		return -1;
	memset(&sb, 0, sizeof(sb));
	sbuf_puts(&sb, "v1\n");
	for (i = 0; i < n; i++)
		if (strchr(s[i].file, '\n') == NULL)
			sbuf_printf(&sb, "%lld %s\n", s[i].bytes, s[i].file);
	if ((text = sbuf_done(&sb, path)) == NULL)
		return -1;
	rc = file_write_atomic(path, text, strlen(text));
	free(text);
	return rc;
}

/*
 * Read STATE/export.sizes into out; *n is 0 when there is none (or it
 * is not one this version wrote).  A line that does not parse is
 * skipped.  Returns 0, or -1 (error set) when it cannot be read.
 */
int
history_sizes_load(const struct config *cfg,
    struct export_size out[EXPORT_FILES], size_t *n)
{
	char path[PATH_MAX], line[1100], *end;
	FILE *fp;
	long long v;

	*n = 0;
	if (path_fmt(path, sizeof(path), "%s/export.sizes", cfg->state_dir)
	    == -1)
		return -1;
	if ((fp = fopen(path, "r")) == NULL)
		return errno == ENOENT ? 0 : error_sys("%s", path);
	if (fgets(line, sizeof(line), fp) == NULL ||
	    strcmp(line, "v1\n") != 0) {
		fclose(fp);
		return 0;
	}
	while (*n < EXPORT_FILES && fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		errno = 0;
		v = strtoll(line, &end, 10);
		if (errno != 0 || end == line || *end != ' ' || v < 0 ||
		    path_fmt(out[*n].file, sizeof(out->file), "%s", end + 1)
		    == -1)
			continue;
		out[(*n)++].bytes = v;
	}
	if (ferror(fp)) {
		fclose(fp);
		return error_sys("%s", path);
	}
	fclose(fp);
	return 0;
}
