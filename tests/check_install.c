/*
 * check_install.c -- make install and make uninstall into a DESTDIR:
 * every file where a Debian admin looks for it, the units with the
 * real paths of this install, the modes, and an uninstall that leaves
 * nothing behind but a config the admin wrote; and the build flags a
 * packager sets.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testutil.h"

static char dir[PATH_MAX];

static void
setup(void)
{
	tu_mkdtemp(dir, sizeof(dir));
}

static void
teardown(void)
{
	tu_rmtree(dir);
}

/* Run make in the source tree with target and DESTDIR=dir, PREFIX=/usr
 * and the extra VAR=value; returns the exit status. */
static int
make(const char *target, const char *extra, char **out)
{
	char destdir[PATH_MAX + 16], prog[PATH_MAX + 16];
	char *argv[] = { (char *)"/usr/bin/make", (char *)"-s", (char *)"-C",
	    (char *)tu_top(), (char *)target, destdir, (char *)"PREFIX=/usr",
	    (char *)"SYSTEMD_UNITDIR=/usr/lib/systemd/system", prog,
	    (char *)extra, NULL };

	snprintf(destdir, sizeof(destdir), "DESTDIR=%s", dir);
	snprintf(prog, sizeof(prog), "PROG=%s", tu_sisfeed());
	return tu_run(argv, out, 120);
}

static const char *
in(const char *sub)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *p = bufs[next++ % 4];

	snprintf(p, PATH_MAX, "%s%s", dir, sub);
	return p;
}

static unsigned
mode_of(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "%s is missing", path);
	return st.st_mode & 07777;
}

/* Regular files under path, recursively. */
static int
count_files(const char *path)
{
	char sub[PATH_MAX];
	struct dirent *e;
	struct stat st;
	DIR *d;
	int n = 0;

	if ((d = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (lstat(sub, &st) == -1)
			continue;
		if (S_ISDIR(st.st_mode))
			n += count_files(sub);
		else
			n++;
	}
	closedir(d);
	return n;
}

static void
has(const char *hay, const char *needle)
{
	ck_assert_msg(strstr(hay, needle) != NULL, "want '%s' in:\n%s",
	    needle, hay);
}

START_TEST(test_install_uninstall)
{
	char *out = NULL, *s;
	int rc;

	rc = make("install", "SYSCONFDIR=/etc", &out);
	ck_assert_msg(rc == 0, "make install: exit %d:\n%s", rc, out);
	free(out);
	ck_assert_uint_eq(mode_of(in("/usr/bin/sisfeed")), 0755);
	ck_assert_uint_eq(mode_of(in("/usr/share/man/man8/sisfeed.8")), 0644);
	ck_assert_uint_eq(mode_of(in("/usr/share/man/man5/sisfeed.yaml.5")),
	    0644);
	ck_assert_uint_eq(mode_of(in("/etc/sisfeed")), 0750);
	ck_assert_uint_eq(mode_of(in("/etc/sisfeed/sisfeed.yaml.example")),
	    0640);
	mode_of(in("/usr/lib/systemd/system/sisfeed.timer"));
	mode_of(in("/usr/lib/systemd/system/sisfeed@.timer"));
	mode_of(in("/usr/lib/systemd/system/sisfeed-failed@.service"));
	mode_of(in("/usr/share/sisfeed/sisfeed.cron"));
	s = tu_read(in("/usr/lib/systemd/system/sisfeed.service"), NULL);
	ck_assert_ptr_nonnull(s);
	has(s, "\nExecStart=/usr/bin/sisfeed -q -c /etc/sisfeed/sisfeed.yaml "
	    "run\n");
	has(s, "\nOnFailure=sisfeed-failed@%n.service\n");
	has(s, "\nReadWritePaths=-/srv/sisfeed ");
	ck_assert_ptr_null(strstr(s, "@BINDIR@"));
	ck_assert_ptr_null(strstr(s, "@ETCDIR@"));
	ck_assert_ptr_null(strstr(s, "SuccessExitStatus"));
	free(s);
	s = tu_read(in("/usr/lib/systemd/system/sisfeed@.service"), NULL);
	ck_assert_ptr_nonnull(s);
	has(s, "\nExecStart=/usr/bin/sisfeed -q -c /etc/sisfeed/%i.yaml run\n");
	has(s, "\nStateDirectory=sisfeed/%i\n");
	free(s);
	s = tu_read(in("/usr/lib/sysusers.d/sisfeed.conf"), NULL);
	ck_assert_ptr_nonnull(s);
	has(s, "u sisfeed ");
	free(s);
	s = tu_read(in("/usr/lib/tmpfiles.d/sisfeed.conf"), NULL);
	ck_assert_ptr_nonnull(s);
	has(s, "d /var/lib/sisfeed 0700 sisfeed sisfeed");
	free(s);
	s = tu_read(in("/usr/share/sisfeed/sisfeed.cron"), NULL);
	ck_assert_ptr_nonnull(s);
	has(s, " sisfeed /usr/bin/sisfeed -q -c /etc/sisfeed/sisfeed.yaml "
	    "run\n");
	free(s);

	/* The admin's config stays; everything else goes. */
	tu_write(in("/etc/sisfeed"), "sisfeed.yaml", "site: x\n");
	rc = make("uninstall", "SYSCONFDIR=/etc", &out);
	ck_assert_msg(rc == 0, "make uninstall: exit %d:\n%s", rc, out);
	free(out);
	ck_assert_int_eq(count_files(dir), 1);
	ck_assert_int_eq(tu_exists(in("/etc/sisfeed/sisfeed.yaml")), 1);
}
END_TEST

/* SYSCONFDIR moves the config, and the units follow. */
START_TEST(test_install_sysconfdir)
{
	char *out = NULL, *s;
	int rc;

	rc = make("install", "SYSCONFDIR=/opt/etc", &out);
	ck_assert_msg(rc == 0, "make install: exit %d:\n%s", rc, out);
	free(out);
	mode_of(in("/opt/etc/sisfeed/sisfeed.yaml.example"));
	s = tu_read(in("/usr/lib/systemd/system/sisfeed.service"), NULL);
	ck_assert_ptr_nonnull(s);
	has(s, "\nExecStart=/usr/bin/sisfeed -q -c /opt/etc/sisfeed/"
	    "sisfeed.yaml run\n");
	free(s);
	rc = make("uninstall", "SYSCONFDIR=/opt/etc", &out);
	ck_assert_msg(rc == 0, "make uninstall: exit %d:\n%s", rc, out);
	free(out);
	ck_assert_int_eq(count_files(dir), 0);
}
END_TEST

/*
 * The build takes the packager's CPPFLAGS, LDFLAGS and $(PKG_CONFIG)
 * (here an echo, so its arguments show in the commands, systemd's
 * directories included), and -Werror only in the test build: make -n
 * prints the commands without running them.
 */
START_TEST(test_build_flags)
{
	char b[PATH_MAX + 8], tobj[PATH_MAX + 32], destdir[PATH_MAX + 16];
	char *out;
	char *argv[] = { (char *)"/usr/bin/make", (char *)"-n", (char *)"-B",
	    (char *)"-C", (char *)tu_top(), b,
	    (char *)"CPPFLAGS=-DSISFEED_PACKAGER_CPP",
	    (char *)"LDFLAGS=-Wl,-z,relro", (char *)"CFLAGS=",
	    (char *)"PKG_CONFIG=/bin/echo PKGCONFIG_WAS_ASKED",
	    (char *)"sisfeed", NULL, NULL };
	int rc;

	snprintf(b, sizeof(b), "B=%s/b", dir);
	rc = tu_run(argv, &out, 120);
	ck_assert_msg(rc == 0, "make -n sisfeed: exit %d:\n%s", rc, out);
	has(out, " -DSISFEED_PACKAGER_CPP ");
	has(out, "PKGCONFIG_WAS_ASKED --cflags libxml-2.0");
	has(out, "PKGCONFIG_WAS_ASKED --libs libxml-2.0");
	has(out, " -Wl,-z,relro");
	ck_assert_msg(strstr(out, "-Werror") == NULL, "-Werror in the "
	    "release build:\n%s", out);
	free(out);

	snprintf(tobj, sizeof(tobj), "%s/b/test/agent/main.o", dir);
	argv[10] = tobj;
	rc = tu_run(argv, &out, 120);
	ck_assert_msg(rc == 0, "make -n test build: exit %d:\n%s", rc, out);
	has(out, " -DSISFEED_PACKAGER_CPP ");
	has(out, " -Werror ");
	free(out);

	/* systemd's directories come from $(PKG_CONFIG) too. */
	snprintf(destdir, sizeof(destdir), "DESTDIR=%s/d", dir);
	argv[10] = (char *)"install";
	argv[11] = destdir;
	rc = tu_run(argv, &out, 120);
	ck_assert_msg(rc == 0, "make -n install: exit %d:\n%s", rc, out);
	has(out, "PKGCONFIG_WAS_ASKED --variable=systemdsystemunitdir systemd");
	has(out, "PKGCONFIG_WAS_ASKED --variable=sysusersdir systemd");
	has(out, "PKGCONFIG_WAS_ASKED --variable=tmpfilesdir systemd");
	free(out);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("install");
	TCase *tc = tcase_create("install");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_install_uninstall);
	tcase_add_test(tc, test_install_sysconfdir);
	tcase_add_test(tc, test_build_flags);
	suite_add_tcase(s, tc);
	return tu_run_suite(s) != 0;
}
