/*
 * approval.c -- an administrator's approval of a blocked change set:
 * who gave it (the login behind sudo, not only the Unix user), why,
 * when, what it covers, and when it runs out.
 *
 * STATE/approved holds one approval, line by line:
 *   ID APPROVER
 *   at EPOCH
 *   reason TEXT
 *   scope KEY KEY ...
 * The first line alone is how older versions wrote it; such a file
 * covers whatever trips and never runs out (at 0).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sisfeed.h"

/*
 * Who approves: SUDO_USER when set ("alice (sudo as root)"), else the
 * login name of the session ("bob (as root)" when it is not the Unix
 * user who started the process), else that user (owner_invoker: the
 * real user, before a drop to the state directory's owner).
 */
void
approval_identity(char *buf, size_t len)
{
	const char *sudo = getenv("SUDO_USER"), *login;
	const char *unix_user = owner_invoker();

	if (sudo != NULL && *sudo != '\0') {
		snprintf(buf, len, "%.60s (sudo as %s)", sudo, unix_user);
		return;
	}
	login = getlogin();
	if (login != NULL && *login != '\0' && strcmp(login, unix_user) != 0)
		snprintf(buf, len, "%.60s (as %s)", login, unix_user);
	else
		snprintf(buf, len, "%s", unix_user);
}

/* s with control characters as '?' (one line). */
static void
one_line(char *dst, size_t len, const char *s)
{
	size_t i;

	snprintf(dst, len, "%s", s != NULL ? s : "");
	for (i = 0; dst[i] != '\0'; i++)
		if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
			dst[i] = '?';
}

/*
 * Write a to STATE/approved atomically (mode 0600).  0 or -1.
 */
int
approval_save(const struct config *cfg, const struct approval *a)
{
	char path[PATH_MAX], by[sizeof(a->by)], why[sizeof(a->reason)];
	char buf[8192];
	int n;

	if (path_fmt(path, sizeof(path), "%s/approved", cfg->state_dir)
	    == -1)
		return -1;
	one_line(by, sizeof(by), a->by);
	one_line(why, sizeof(why), a->reason);
	n = snprintf(buf, sizeof(buf), "%s %s\nat %lld\nreason %s\n"
	    "scope %s\n", a->id, by, (long long)a->at, why, a->scope);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return error_set("%s: approval too long", path);
	return file_write_atomic(path, buf, (size_t)n);
}

/*
 * Read STATE/approved into a.  Returns 1 when read, 0 when there is
 * none or it is not an approval (a torn or foreign file is ignored).
 */
int
approval_load(const struct config *cfg, struct approval *a)
{
	char path[PATH_MAX], line[4096 + 16], *sp;
	FILE *fp;
	int first = 1;

	memset(a, 0, sizeof(*a));
	snprintf(a->scope, sizeof(a->scope), "*");
	if (path_fmt(path, sizeof(path), "%s/approved", cfg->state_dir)
	    == -1 || (fp = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if ((sp = strchr(line, ' ')) == NULL)
			continue;
		*sp++ = '\0';
		if (first) {
			if (strlen(line) != 16)
				break;
			memcpy(a->id, line, 17);
			snprintf(a->by, sizeof(a->by), "%.127s", sp);
			first = 0;
		} else if (strcmp(line, "at") == 0)
			a->at = (time_t)strtoll(sp, NULL, 10);
		else if (strcmp(line, "reason") == 0)
			snprintf(a->reason, sizeof(a->reason), "%.255s", sp);
		else if (strcmp(line, "scope") == 0)
			snprintf(a->scope, sizeof(a->scope), "%.3999s", sp);
	}
	fclose(fp);
	return a->id[0] != '\0';
}

/*
 * When a runs out under cfg's safety.approval_ttl: 0 if never (no ttl,
 * or an approval written without its time).
 */
time_t
approval_expires(const struct config *cfg, const struct approval *a)
{
	if (cfg->nets.approval_ttl <= 0 || a->at == 0)
		return 0;
	return a->at + (time_t)cfg->nets.approval_ttl;
}
