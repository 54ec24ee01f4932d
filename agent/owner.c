/*
 * owner.c -- the state directory has one owner, as a mail spool has:
 * every command that touches state runs as that user.  Root drops to
 * the owner before touching anything; anyone else is told the sudo(8)
 * line to use.  A state file written by the wrong user (root's 0600
 * snapshot) would stop every later nightly run.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sisfeed.h"

/* <grp.h> declares these, and a struct group that is not ours. */
int	 initgroups(const char *, gid_t);
int	 setgroups(size_t, const gid_t *);

static char invoker[64];

static void
name_of_uid(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw;

	if ((pw = getpwuid(uid)) != NULL)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "uid %ld", (long)uid);
}

/*
 * The user who started this process (before any drop), as a name or
 * "uid N".  Never NULL.
 */
const char *
owner_invoker(void)
{
	if (invoker[0] == '\0')
		name_of_uid(getuid(), invoker, sizeof(invoker));
	return invoker;
}

/*
 * The name of the state directory's owner, or of this process's user
 * when the directory does not exist yet, into buf.
 */
void
owner_name(const struct config *cfg, char *buf, size_t len)
{
	struct stat st;

	if (stat(cfg->state_dir, &st) == 0)
		name_of_uid(st.st_uid, buf, len);
	else
		name_of_uid(geteuid(), buf, len);
}

/*
 * This host's name into buf, "localhost" when it has none.
 */
void
owner_host(char *buf, size_t len)
{
	if (gethostname(buf, len) == -1 || buf[0] == '\0')
		snprintf(buf, len, "localhost");
	buf[len - 1] = '\0';
}

/* Root becomes uid (with its groups); 0 or -1. */
static int
drop_to(uid_t uid, gid_t dirgid)
{
	struct passwd *pw = getpwuid(uid);
	gid_t gid = pw != NULL ? pw->pw_gid : dirgid;

	if (pw != NULL ? initgroups(pw->pw_name, gid) == -1 :
	    setgroups(0, NULL) == -1)
		return error_sys("dropping to the state directory's owner: "
		    "groups");
	if (setgid(gid) == -1 || setuid(uid) == -1)
		return error_sys("dropping to the state directory's owner "
		    "(uid %ld)", (long)uid);
	if (setuid(0) == 0)
		return error_set("dropping to uid %ld: root came back",
		    (long)uid);
	return 0;
}

/*
 * The line that runs argv as the owner of cfg->state_dir: "sudo -u
 * OWNER ARGV..." with every word quoted for a shell where it needs it.
 * Allocated; NULL (error set) when out of memory.
 */
char *
owner_sudo_line(const struct config *cfg, int argc, char *argv[])
{
	struct sbuf b = { 0 };
	char owner[64];
	int i;

	owner_name(cfg, owner, sizeof(owner));
	sbuf_puts(&b, "sudo -u ");
	sbuf_shell_word(&b, owner);
	for (i = 0; i < argc; i++) {
		sbuf_putn(&b, " ", 1);
		sbuf_shell_word(&b, argv[i]);
	}
	return sbuf_done(&b, "owner");
}

/*
 * Run as the owner of cfg->state_dir: 0 when this process is (or
 * became, as root) that owner or the directory does not exist yet; -1
 * with the error naming the owner and the sudo line for argv otherwise.
 */
int
owner_become(const struct config *cfg, int argc, char *argv[])
{
	struct stat st;
	char owner[64], *line;

	owner_invoker();
	if (stat(cfg->state_dir, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		return error_sys("%s", cfg->state_dir);
	}
	if (st.st_uid == geteuid())
		return 0;
	name_of_uid(st.st_uid, owner, sizeof(owner));
	if (geteuid() == 0) {
		if (drop_to(st.st_uid, st.st_gid) == -1)
			return -1;
		log_debug("running as %s, the owner of %s", owner,
		    cfg->state_dir);
		return 0;
	}
	if ((line = owner_sudo_line(cfg, argc, argv)) == NULL)
		return -1;
	error_set("%s belongs to %s, not to %s: state written by another "
	    "user would stop the nightly run; run it as %s:\n    %s",
	    cfg->state_dir, owner, owner_invoker(), owner, line);
	free(line);
	return -1;
}
