/*
 * deliver.c -- hand the outgoing file to the receiver: a directory
 * (copy to .sisfeed.NAME.XXXXXX.part, fsync, rename; the partial files
 * of a crashed run removed first) or SFTP (agent/sftp.c).
 * Success means the whole file stands under its final name.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sisfeed.h"

/*
 * Deliver the local file `path` under `name` by the configured method.
 * remote gets where it landed.  In delta mode an existing file of that
 * name is never replaced (the receiver has not imported it yet, and its
 * changes would be lost): that is an error.  Returns 0 only when the
 * receiver holds the complete file under its final name; -1 (error
 * set) otherwise.
 */
int
deliver_file(const struct config *cfg, const char *path, const char *name,
    char *remote, size_t remotelen)
{
	char dst[PATH_MAX];
	int n;

	if (strchr(name, '/') != NULL || strcmp(name, "..") == 0 ||
	    strcmp(name, ".") == 0 || name[0] == '\0')
		return error_set("output.name: '%s' is not a plain file name",
		    name);
	if (cfg->delivery.dir != NULL) {
		if (path_fmt(dst, sizeof(dst), "%s/%s", cfg->delivery.dir,
		    name) == -1)
			return -1;
		if (cfg->output.mode == MODE_DELTA && access(dst, F_OK) == 0)
			return error_set("%s is still there: in delta mode a "
			    "file must not replace one the receiver has not "
			    "imported yet (its changes would be lost); give "
			    "output.name a time, e.g. "
			    "sisfeed-%%Y%%m%%d-%%H%%M%%S.xml", dst);
		/* What a crashed copy left: .sisfeed.NAME.XXXXXX.part. */
		if ((n = file_clean_temps(cfg->delivery.dir)) > 0)
			log_info("removed %d partial file%s left in %s", n,
			    n == 1 ? "" : "s", cfg->delivery.dir);
		/* 0640 unless delivery.mode says: an importer in the
		 * directory's group may read it */
		if (file_copy_atomic(path, dst, cfg->delivery_mode > 0 ?
		    (mode_t)cfg->delivery_mode : 0640, NULL) == -1)
			return -1;
		snprintf(remote, remotelen, "%s", dst);
		return 0;
	}
	if (cfg->delivery.sftp) {
		if (sftp_upload(cfg, path, name) == -1)
			return -1;
		snprintf(remote, remotelen, "sftp://%s@%s:%d/%s/%s",
		    cfg->delivery.s.user, cfg->delivery.s.host,
		    cfg->delivery.s.port, cfg->delivery.s.remote_dir, name);
		return 0;
	}
	return error_set("no delivery method configured");
}
