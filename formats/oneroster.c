/*
 * oneroster.c -- OneRoster 1.1 CSV (users.csv, orgs.csv, classes.csv,
 * enrollments.csv in one directory).
 *
 * Not yet implemented: the config accepts the format so that a
 * deployment can name it, and a run fails with a clear message.
 */
#include "sisfeed.h"

/*
 * Read a OneRoster 1.1 CSV directory.  For now always fails (-1) with
 * a message saying that the format is not supported yet.
 */
int
oneroster_read_roster(const struct config *cfg, struct roster *r,
    struct rejects *rj)
{
	(void)r;
	(void)rj;
	return error_set("%s: source.format oneroster is not supported yet; "
	    "use csv with a column mapping", cfg->source.dir ?
	    cfg->source.dir : cfg->path);
}
