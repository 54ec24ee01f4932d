/*
 * sftp.c -- delivery over SFTP (stub; being written).
 */
#include <stdio.h>

#include "sisfeed.h"

/*
 * Upload path as remote_dir/name.  Returns 0 or -1.
 */
int
sftp_upload(const struct config *cfg, const char *path, const char *name)
{
	(void)cfg;
	(void)path;
	(void)name;
	return error_set("sftp: not implemented yet");
}

/*
 * Check the SFTP settings, a line per check to fp.  Returns 0 or -1.
 */
int
sftp_check(const struct config *cfg, FILE *fp)
{
	(void)cfg;
	(void)fp;
	return error_set("sftp: not implemented yet");
}
