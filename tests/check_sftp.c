/*
 * check_sftp.c -- agent/sftp.c against a real OpenSSH sshd.
 *
 * Every test starts its own sshd on 127.0.0.1 on a free port, with
 * throwaway host keys (ed25519 and ECDSA), a generated client key and
 * `Subsystem sftp internal-sftp`, and stops it by pid.  The server
 * serves this machine's file system, so the test reads what arrived
 * directly.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sisfeed.h"
#include "tests/testutil.h"

#define SSHD		"/usr/sbin/sshd"
#define SSH_KEYGEN	"/usr/bin/ssh-keygen"
#define BIG		(96u * 1024 * 1024)

/* The server of the running test (each test runs in its own process). */
static struct {
	char	 dir[256];
	char	 remote[512];		/* dir/remote: remote_dir */
	char	 config[512];
	char	 log[512];
	char	 hk_ed[512], hk_ec[512];	/* host keys */
	char	 key[512];		/* client key (ed25519) */
	char	 authkeys[512];
	char	 known[512];		/* known_hosts: ed25519 entry */
	char	 user[64];
	char	 host[16];
	int	 port;
	pid_t	 pid;
} srv;

static struct config *cfg;

/*
 * libssh2 1.10 (Debian 12) leaks the private exponent (two BIGNUMs,
 * 56 bytes) each time it loads an OpenSSH-format ECDSA private key
 * (gen_publickey_from_ecdsa_openssh_priv_data never frees it; fixed in
 * 1.11).  Not ours to fix: suppress exactly that, nothing else.
 */
const char *__lsan_default_suppressions(void);
const char *__asan_default_options(void);

/* Full stacks through libcrypto (no frame pointers) so that the
 * suppression below can see libssh2's frame. */
const char *
__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}

const char *
__lsan_default_suppressions(void)
{
	return "leak:libssh2_userauth_publickey_fromfile_ex\n";
}

/* ------------------------------------------------------------------ */
/* helpers                                                            */

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The last part of the sshd log, for failure messages. */
static const char *
sshd_log(void)
{
	static char buf[3000];
	char *s;
	size_t len = 0;

	if ((s = tu_read(srv.log, &len)) == NULL)
		return "(no sshd log)";
	snprintf(buf, sizeof(buf), "%s", len > sizeof(buf) - 1 ?
	    s + len - (sizeof(buf) - 1) : s);
	free(s);
	return buf;
}

static void
keygen(const char *type, const char *bits, const char *pass,
    const char *path)
{
	char *argv[16], *out = NULL;
	int i = 0, rc;

	argv[i++] = SSH_KEYGEN;
	argv[i++] = "-q";
	argv[i++] = "-t";
	argv[i++] = (char *)type;
	if (bits != NULL) {
		argv[i++] = "-b";
		argv[i++] = (char *)bits;
	}
	argv[i++] = "-N";
	argv[i++] = (char *)pass;
	argv[i++] = "-C";
	argv[i++] = "sisfeed-test";
	argv[i++] = "-f";
	argv[i++] = (char *)path;
	argv[i] = NULL;
	rc = tu_run(argv, &out, 60);
	ck_assert_msg(rc == 0, "ssh-keygen -t %s: %s", type, out);
	free(out);
}

/* "SHA256:..." of a public key file, as OpenSSH prints it. */
static void
fingerprint(const char *pub, char *buf, size_t len)
{
	char *argv[] = { SSH_KEYGEN, "-l", "-E", "sha256", "-f",
	    (char *)pub, NULL };
	char *out = NULL, *p, *e;

	ck_assert_int_eq(tu_run(argv, &out, 30), 0);
	p = strstr(out, "SHA256:");
	ck_assert_ptr_nonnull(p);
	e = strchr(p, ' ');
	ck_assert_ptr_nonnull(e);
	*e = '\0';
	snprintf(buf, len, "%s", p);
	free(out);
}

/* Write "[127.0.0.1]:PORT <public key>" for each pub into path. */
static void
known_hosts_write(const char *path, const char *pub1, const char *pub2)
{
	const char *pubs[2] = { pub1, pub2 };
	FILE *fp;
	char *k;
	int i;

	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	for (i = 0; i < 2; i++) {
		if (pubs[i] == NULL)
			continue;
		k = tu_read(pubs[i], NULL);
		ck_assert_ptr_nonnull(k);
		fprintf(fp, "[%s]:%d %s", srv.host, srv.port, k);
		free(k);
	}
	ck_assert_int_eq(fclose(fp), 0);
}

/* Append a public key file to authorized_keys. */
static void
authorize(const char *pub)
{
	char *k = tu_read(pub, NULL);
	FILE *fp;

	ck_assert_ptr_nonnull(k);
	fp = fopen(srv.authkeys, "a");
	ck_assert_ptr_nonnull(fp);
	fputs(k, fp);
	ck_assert_int_eq(fclose(fp), 0);
	free(k);
}

static void
file_make(const char *path, size_t size, uint32_t seed)
{
	static unsigned char buf[1 << 20];
	uint32_t x = seed | 1;
	size_t i, n;
	FILE *fp = fopen(path, "wb");

	ck_assert_ptr_nonnull(fp);
	while (size > 0) {
		n = size < sizeof(buf) ? size : sizeof(buf);
		for (i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			buf[i] = (unsigned char)x;
		}
		ck_assert_uint_eq(fwrite(buf, 1, n, fp), n);
		size -= n;
	}
	ck_assert_int_eq(fclose(fp), 0);
}

/* 1 if two files have the same bytes. */
static int
files_equal(const char *a, const char *b)
{
	static char ba[1 << 20], bb[1 << 20];
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	size_t na, nb;
	int eq = fa != NULL && fb != NULL;

	while (eq) {
		na = fread(ba, 1, sizeof(ba), fa);
		nb = fread(bb, 1, sizeof(bb), fb);
		if (na != nb || memcmp(ba, bb, na) != 0)
			eq = 0;
		if (na == 0)
			break;
	}
	if (fa != NULL)
		fclose(fa);
	if (fb != NULL)
		fclose(fb);
	return eq;
}

static off_t
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* The processes under pid (by /proc parent links), at most max. */
static int
descendants(pid_t root, pid_t *out, int max)
{
	int n = 0, pass, added;

	for (pass = 0; pass < 6; pass++) {
		DIR *d = opendir("/proc");
		struct dirent *e;

		if (d == NULL)
			break;
		added = 0;
		while ((e = readdir(d)) != NULL && n < max) {
			char path[300], buf[512], *p;
			pid_t pid, ppid;
			FILE *fp;
			int i, known = 0, parent = 0;

			if ((pid = (pid_t)atol(e->d_name)) <= 0)
				continue;
			snprintf(path, sizeof(path), "/proc/%s/stat",
			    e->d_name);
			if ((fp = fopen(path, "r")) == NULL)
				continue;
			p = fgets(buf, sizeof(buf), fp);
			fclose(fp);
			if (p == NULL || (p = strrchr(buf, ')')) == NULL ||
			    sscanf(p + 1, " %*c %d", &ppid) != 1)
				continue;
			for (i = 0; i < n; i++) {
				if (out[i] == pid)
					known = 1;
				if (out[i] == ppid)
					parent = 1;
			}
			if (!known && (ppid == root || parent)) {
				out[n++] = pid;
				added = 1;
			}
		}
		closedir(d);
		if (!added)
			break;
	}
	return n;
}

/* Stop sshd (and, with SIGKILL, every session it runs) by pid. */
static void
sshd_stop(int sig)
{
	pid_t kids[64];
	int i, n, status;

	if (srv.pid <= 0)
		return;
	n = sig == SIGKILL ? descendants(srv.pid, kids, 64) : 0;
	for (i = 0; i < n; i++)
		kill(kids[i], SIGKILL);
	kill(srv.pid, sig);
	waitpid(srv.pid, &status, 0);
	srv.pid = -1;
}

/* A failed assertion exits the test's process without the teardown. */
static void
cleanup_at_exit(void)
{
	sshd_stop(SIGKILL);
	if (srv.dir[0] != '\0')
		tu_rmtree(srv.dir);
}

/* Start sshd -D -e -f CONFIG and wait until it accepts. */
static void
sshd_start(void)
{
	int i, status, up = 0;
	pid_t pid;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		int fd = open(srv.log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int null = open("/dev/null", O_RDONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd == -1 || null == -1)
			_exit(126);
		dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(SSHD, SSHD, "-D", "-e", "-f", srv.config, (char *)NULL);
		_exit(127);
	}
	srv.pid = pid;
	for (i = 0; i < 500 && !up; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			srv.pid = -1;
			ck_abort_msg("sshd exited: %s", sshd_log());
		}
		up = tu_wait_port(srv.port, 40) == 0;
	}
	ck_assert_msg(up, "sshd does not listen: %s", sshd_log());
}

static void
sshd_config_write(void)
{
	FILE *fp = fopen(srv.config, "w");

	ck_assert_ptr_nonnull(fp);
	fprintf(fp,
	    "Port %d\n"
	    "ListenAddress %s\n"
	    "HostKey %s\n"
	    "HostKey %s\n"
	    "PidFile none\n"
	    "UsePAM no\n"
	    "StrictModes no\n"
	    "PermitRootLogin prohibit-password\n"
	    "AuthorizedKeysFile %s\n"
	    "PasswordAuthentication yes\n"
	    "KbdInteractiveAuthentication no\n"
	    "MaxAuthTries 20\n"
	    "Subsystem sftp internal-sftp\n"
	    "LogLevel VERBOSE\n",
	    srv.port, srv.host, srv.hk_ed, srv.hk_ec, srv.authkeys);
	ck_assert_int_eq(fclose(fp), 0);
}

static void
setup(void)
{
	struct passwd *pw = getpwuid(getuid());
	char pub[600];

	memset(&srv, 0, sizeof(srv));
	srv.pid = -1;
	atexit(cleanup_at_exit);
	if (mkdir("/run/sshd", 0755) == -1 && errno != EEXIST)
		ck_abort_msg("mkdir /run/sshd: %s", strerror(errno));
	ck_assert_ptr_nonnull(pw);
	snprintf(srv.user, sizeof(srv.user), "%s", pw->pw_name);
	snprintf(srv.host, sizeof(srv.host), "127.0.0.1");
	tu_mkdtemp(srv.dir, sizeof(srv.dir));
	ck_assert_int_eq(chmod(srv.dir, 0755), 0);
	snprintf(srv.remote, sizeof(srv.remote), "%s/remote", srv.dir);
	ck_assert_int_eq(mkdir(srv.remote, 0755), 0);
	snprintf(srv.config, sizeof(srv.config), "%s/sshd_config", srv.dir);
	snprintf(srv.log, sizeof(srv.log), "%s/sshd.log", srv.dir);
	snprintf(srv.hk_ed, sizeof(srv.hk_ed), "%s/hostkey_ed25519",
	    srv.dir);
	snprintf(srv.hk_ec, sizeof(srv.hk_ec), "%s/hostkey_ecdsa", srv.dir);
	snprintf(srv.key, sizeof(srv.key), "%s/id_ed25519", srv.dir);
	snprintf(srv.authkeys, sizeof(srv.authkeys), "%s/authorized_keys",
	    srv.dir);
	snprintf(srv.known, sizeof(srv.known), "%s/known_hosts", srv.dir);
	keygen("ed25519", NULL, "", srv.hk_ed);
	keygen("ecdsa", "256", "", srv.hk_ec);
	keygen("ed25519", NULL, "", srv.key);
	snprintf(pub, sizeof(pub), "%s.pub", srv.key);
	authorize(pub);
	srv.port = tu_free_port();
	/* Only the ed25519 host key is known: libssh2 would pick ECDSA
	 * first, so this also tests the host key preference. */
	snprintf(pub, sizeof(pub), "%s.pub", srv.hk_ed);
	known_hosts_write(srv.known, pub, NULL);
	sshd_config_write();
	sshd_start();

	cfg = calloc(1, sizeof(*cfg));
	ck_assert_ptr_nonnull(cfg);
	cfg->delivery.sftp = 1;
	cfg->delivery.s.host = srv.host;
	cfg->delivery.s.port = srv.port;
	cfg->delivery.s.user = srv.user;
	cfg->delivery.s.identity = srv.key;
	cfg->delivery.s.known_hosts = srv.known;
	cfg->delivery.s.remote_dir = srv.remote;
	cfg->delivery.s.retries = 0;
	cfg->delivery.s.timeout = 20;
	unsetenv("SISFEED_SFTP_PASSPHRASE");
	setenv("SISFEED_RETRY_BASE_MS", "10", 1);
}

static void
teardown(void)
{
	sshd_stop(SIGTERM);
	free(cfg);
	cfg = NULL;
	tu_rmtree(srv.dir);
}

/* dir/name into a static rotating buffer. */
static const char *
in(const char *dir, const char *name)
{
	static char bufs[8][600];
	static int next;
	char *p = bufs[next++ % 8];

	snprintf(p, 600, "%s/%s", dir, name);
	return p;
}

/* ------------------------------------------------------------------ */
/* delivery                                                           */

START_TEST(t_delivers)
{
	const char *local = in(srv.dir, "local.xml");
	struct stat st;

	file_make(local, 3 * 1024 * 1024 + 17, 1);
	ck_assert_msg(sftp_upload(cfg, local, "feed.xml") == 0, "%s\n%s",
	    error_last(), sshd_log());
	ck_assert(files_equal(local, in(srv.remote, "feed.xml")));
	ck_assert(!tu_exists(in(srv.remote, "feed.xml.part")));
	ck_assert_int_eq(stat(in(srv.remote, "feed.xml"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
}
END_TEST

START_TEST(t_empty_file)
{
	const char *local = tu_write(srv.dir, "empty.xml", "");

	ck_assert_msg(sftp_upload(cfg, local, "empty.xml") == 0, "%s",
	    error_last());
	ck_assert_int_eq(file_size(in(srv.remote, "empty.xml")), 0);
}
END_TEST

START_TEST(t_replaces_existing_and_leftover_part)
{
	const char *local = in(srv.dir, "local.xml");
	const char *dst = in(srv.remote, "feed.xml");
	const char *part = in(srv.remote, "feed.xml.part");
	struct stat st;

	tu_write(srv.remote, "feed.xml", "yesterday's file\n");
	file_make(part, 2 * 1024 * 1024, 7);	/* longer than the new one */
	ck_assert_int_eq(chmod(part, 0644), 0);
	file_make(local, 100 * 1000, 2);
	ck_assert_msg(sftp_upload(cfg, local, "feed.xml") == 0, "%s",
	    error_last());
	ck_assert(files_equal(local, dst));
	ck_assert(!tu_exists(part));
	ck_assert_int_eq(stat(dst, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
}
END_TEST

START_TEST(t_remote_dir_trailing_slash)
{
	const char *local = tu_write(srv.dir, "l.xml", "<enterprise/>\n");
	char dir[600];

	snprintf(dir, sizeof(dir), "%s/", srv.remote);
	cfg->delivery.s.remote_dir = dir;
	ck_assert_msg(sftp_upload(cfg, local, "a.xml") == 0, "%s",
	    error_last());
	ck_assert(files_equal(local, in(srv.remote, "a.xml")));
}
END_TEST

START_TEST(t_ecdsa_client_key)
{
	const char *local = tu_write(srv.dir, "l.xml", "<enterprise/>\n");
	char key[600], pub[640];

	snprintf(key, sizeof(key), "%s/id_ecdsa", srv.dir);
	snprintf(pub, sizeof(pub), "%s.pub", key);
	keygen("ecdsa", "256", "", key);
	authorize(pub);
	cfg->delivery.s.identity = key;
	ck_assert_msg(sftp_upload(cfg, local, "e.xml") == 0, "%s",
	    error_last());
	ck_assert(files_equal(local, in(srv.remote, "e.xml")));
}
END_TEST

START_TEST(t_hashed_known_hosts_both_types)
{
	const char *local = tu_write(srv.dir, "l.xml", "<enterprise/>\n");
	char ed[600], ec[600];
	char *argv[] = { SSH_KEYGEN, "-H", "-f", srv.known, NULL };
	char *k;

	snprintf(ed, sizeof(ed), "%s.pub", srv.hk_ed);
	snprintf(ec, sizeof(ec), "%s.pub", srv.hk_ec);
	known_hosts_write(srv.known, ec, ed);
	ck_assert_int_eq(tu_run(argv, NULL, 30), 0);
	k = tu_read(srv.known, NULL);
	ck_assert_ptr_nonnull(k);
	ck_assert_ptr_null(strstr(k, "127.0.0.1"));	/* really hashed */
	free(k);
	ck_assert_msg(sftp_upload(cfg, local, "h.xml") == 0, "%s",
	    error_last());
	ck_assert(files_equal(local, in(srv.remote, "h.xml")));
}
END_TEST

START_TEST(t_encrypted_key)
{
	const char *local = tu_write(srv.dir, "l.xml", "<enterprise/>\n");
	char key[600], pub[640];
	const char *pf;

	snprintf(key, sizeof(key), "%s/id_enc", srv.dir);
	snprintf(pub, sizeof(pub), "%s.pub", key);
	keygen("ed25519", NULL, "correct horse", key);
	authorize(pub);
	cfg->delivery.s.identity = key;

	/* no passphrase */
	ck_assert_int_eq(sftp_upload(cfg, local, "p.xml"), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "encrypted"));
	ck_assert_ptr_nonnull(strstr(error_last(), key));

	/* from the environment */
	setenv("SISFEED_SFTP_PASSPHRASE", "correct horse", 1);
	ck_assert_msg(sftp_upload(cfg, local, "p.xml") == 0, "%s",
	    error_last());
	ck_assert(files_equal(local, in(srv.remote, "p.xml")));

	/* a wrong one */
	setenv("SISFEED_SFTP_PASSPHRASE", "battery staple", 1);
	ck_assert_int_eq(sftp_upload(cfg, local, "p.xml"), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), key));
	ck_assert_ptr_null(strstr(error_last(), "battery"));
	unsetenv("SISFEED_SFTP_PASSPHRASE");

	/* from a file, which must be private */
	pf = tu_write(srv.dir, "passphrase", "correct horse\n");
	cfg->delivery.s.passphrase_file = (char *)pf;
	ck_assert_int_eq(sftp_upload(cfg, local, "p2.xml"), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), pf));
	ck_assert_ptr_nonnull(strstr(error_last(), "0644"));
	ck_assert_int_eq(chmod(pf, 0600), 0);
	ck_assert_msg(sftp_upload(cfg, local, "p2.xml") == 0, "%s",
	    error_last());
	ck_assert(files_equal(local, in(srv.remote, "p2.xml")));
}
END_TEST

/* ------------------------------------------------------------------ */
/* refusals                                                           */

/* The message names type and fingerprint of the key the server showed. */
static void
assert_names_fingerprint(const char *err)
{
	char fp[128], pub[600];

	if (strstr(err, "ssh-ed25519 SHA256:") != NULL)
		snprintf(pub, sizeof(pub), "%s.pub", srv.hk_ed);
	else if (strstr(err, "ecdsa-sha2-nistp256 SHA256:") != NULL)
		snprintf(pub, sizeof(pub), "%s.pub", srv.hk_ec);
	else
		ck_abort_msg("no key type and fingerprint in: %s", err);
	fingerprint(pub, fp, sizeof(fp));
	ck_assert_msg(strstr(err, fp) != NULL, "%s not in: %s", fp, err);
}

START_TEST(t_unknown_host_key)
{
	const char *local = tu_write(srv.dir, "l.xml", "<enterprise/>\n");
	char want[1200], pub[600], line[2000];
	char *k;

	/* the file holds the right keys, but for another port */
	snprintf(pub, sizeof(pub), "%s.pub", srv.hk_ed);
	k = tu_read(pub, NULL);
	ck_assert_ptr_nonnull(k);
	snprintf(line, sizeof(line), "127.0.0.1 %s[127.0.0.1]:%d %s", k,
	    srv.port + 1, k);
	free(k);
	tu_write(srv.dir, "known_hosts", line);
	cfg->delivery.s.retries = 3;
	ck_assert_int_eq(sftp_upload(cfg, local, "u.xml"), -1);
	assert_names_fingerprint(error_last());
	ck_assert_ptr_nonnull(strstr(error_last(), "not in"));
	snprintf(want, sizeof(want), "ssh-keyscan -p %d 127.0.0.1 >> %s",
	    srv.port, srv.known);
	ck_assert_msg(strstr(error_last(), want) != NULL, "%s",
	    error_last());
	ck_assert_ptr_null(strstr(error_last(), "attempts"));	/* no retry */
	ck_assert(!tu_exists(in(srv.remote, "u.xml")));
	ck_assert(!tu_exists(in(srv.remote, "u.xml.part")));

	/* no known_hosts file at all */
	ck_assert_int_eq(unlink(srv.known), 0);
	ck_assert_int_eq(sftp_upload(cfg, local, "u.xml"), -1);
	assert_names_fingerprint(error_last());
	ck_assert_ptr_nonnull(strstr(error_last(), "no such file"));
	ck_assert(!tu_exists(in(srv.remote, "u.xml")));
}
END_TEST

START_TEST(t_changed_host_key)
{
	const char *local = tu_write(srv.dir, "l.xml", "<enterprise/>\n");
	char other[600], pub[640];

	snprintf(other, sizeof(other), "%s/other_hostkey", srv.dir);
	snprintf(pub, sizeof(pub), "%s.pub", other);
	keygen("ed25519", NULL, "", other);
	known_hosts_write(srv.known, pub, NULL);
	ck_assert_int_eq(sftp_upload(cfg, local, "c.xml"), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "HOST KEY CHANGED"));
	ck_assert_ptr_nonnull(strstr(error_last(), "ssh-ed25519 SHA256:"));
	assert_names_fingerprint(error_last());
	ck_assert(!tu_exists(in(srv.remote, "c.xml")));
	ck_assert(!tu_exists(in(srv.remote, "c.xml.part")));
}
END_TEST

START_TEST(t_wrong_key)
{
	const char *local = tu_write(srv.dir, "l.xml", "<enterprise/>\n");
	char key[600];

	snprintf(key, sizeof(key), "%s/id_stranger", srv.dir);
	keygen("ed25519", NULL, "", key);
	cfg->delivery.s.identity = key;
	cfg->delivery.s.retries = 3;
	ck_assert_int_eq(sftp_upload(cfg, local, "w.xml"), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "refused key"));
	ck_assert_ptr_nonnull(strstr(error_last(), key));
	ck_assert_ptr_nonnull(strstr(error_last(), "authorized_keys"));
	ck_assert_ptr_null(strstr(error_last(), "attempts"));
	ck_assert(!tu_exists(in(srv.remote, "w.xml")));
}
END_TEST

START_TEST(t_wrong_user)
{
	const char *local = tu_write(srv.dir, "l.xml", "<enterprise/>\n");

	cfg->delivery.s.user = "sisfeed-no-such-user";
	ck_assert_int_eq(sftp_upload(cfg, local, "w.xml"), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "sisfeed-no-such-user@"));
	ck_assert_ptr_nonnull(strstr(error_last(), "refused key"));
	ck_assert_ptr_nonnull(strstr(error_last(), "user name"));
}
END_TEST

START_TEST(t_rsa_key)
{
	const char *local = tu_write(srv.dir, "l.xml", "<enterprise/>\n");
	char key[600], pub[640];

	snprintf(key, sizeof(key), "%s/id_rsa", srv.dir);
	snprintf(pub, sizeof(pub), "%s.pub", key);
	keygen("rsa", "2048", "", key);
	authorize(pub);
	cfg->delivery.s.identity = key;
	ck_assert_int_eq(sftp_upload(cfg, local, "r.xml"), -1);
	ck_assert_msg(strstr(error_last(), "rsa-sha2-256/512") != NULL, "%s",
	    error_last());
	ck_assert_ptr_nonnull(strstr(error_last(), "ed25519"));
	ck_assert_ptr_nonnull(strstr(error_last(), key));
}
END_TEST

START_TEST(t_missing_remote_dir)
{
	const char *local = tu_write(srv.dir, "l.xml", "<enterprise/>\n");
	char dir[600];

	snprintf(dir, sizeof(dir), "%s/nope", srv.dir);
	cfg->delivery.s.remote_dir = dir;
	cfg->delivery.s.retries = 3;
	ck_assert_int_eq(sftp_upload(cfg, local, "m.xml"), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), dir));
	ck_assert_ptr_nonnull(strstr(error_last(), "does not exist"));
	ck_assert_ptr_null(strstr(error_last(), "attempts"));
}
END_TEST

START_TEST(t_key_mode_0644)
{
	const char *local = tu_write(srv.dir, "l.xml", "<enterprise/>\n");

	ck_assert_int_eq(chmod(srv.key, 0644), 0);
	ck_assert_int_eq(sftp_upload(cfg, local, "k.xml"), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), srv.key));
	ck_assert_ptr_nonnull(strstr(error_last(), "0644"));
	ck_assert_ptr_nonnull(strstr(error_last(), "group or others"));
	ck_assert(!tu_exists(in(srv.remote, "k.xml")));
	ck_assert_int_eq(chmod(srv.key, 0640), 0);
	ck_assert_int_eq(sftp_upload(cfg, local, "k.xml"), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "0640"));
}
END_TEST

START_TEST(t_wrong_password)
{
	const char *local = tu_write(srv.dir, "l.xml", "<enterprise/>\n");
	const char *pf = tu_write(srv.dir, "password", "hunter2-wrong\n");

	cfg->delivery.s.identity = NULL;
	cfg->delivery.s.password_file = (char *)pf;
	ck_assert_int_eq(sftp_upload(cfg, local, "pw.xml"), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), pf));
	ck_assert_ptr_nonnull(strstr(error_last(), "0644"));
	ck_assert_int_eq(chmod(pf, 0600), 0);
	ck_assert_int_eq(sftp_upload(cfg, local, "pw.xml"), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "refused the password"));
	ck_assert_ptr_nonnull(strstr(error_last(), pf));
	ck_assert_ptr_null(strstr(error_last(), "hunter2"));
}
END_TEST

START_TEST(t_bad_settings)
{
	const char *local = tu_write(srv.dir, "l.xml", "<enterprise/>\n");

	cfg->delivery.s.known_hosts = NULL;
	ck_assert_int_eq(sftp_upload(cfg, local, "b.xml"), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "known_hosts"));
	cfg->delivery.s.known_hosts = srv.known;
	ck_assert_int_eq(sftp_upload(cfg, local, "../b.xml"), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "bad remote file name"));
	ck_assert_int_eq(sftp_upload(cfg, in(srv.dir, "missing"), "b.xml"),
	    -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "missing"));
}
END_TEST

/* ------------------------------------------------------------------ */
/* retries                                                            */

START_TEST(t_nothing_listens)
{
	const char *local = tu_write(srv.dir, "l.xml", "<enterprise/>\n");
	time_t t0 = time(NULL);

	sshd_stop(SIGTERM);
	cfg->delivery.s.retries = 3;
	ck_assert_int_eq(sftp_upload(cfg, local, "n.xml"), -1);
	ck_assert_msg(strstr(error_last(), "Connection refused") != NULL,
	    "%s", error_last());
	ck_assert_ptr_nonnull(strstr(error_last(), "gave up after 4 "
	    "attempts"));
	ck_assert_int_lt(time(NULL) - t0, 30);
}
END_TEST

START_TEST(t_server_silent_times_out)
{
	const char *local = tu_write(srv.dir, "l.xml", "<enterprise/>\n");
	struct sockaddr_in sin;
	int s, one = 1;

	/* a listener that never says a word, on a port of its own */
	sshd_stop(SIGTERM);
	srv.port = tu_free_port();
	cfg->delivery.s.port = srv.port;
	s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)srv.port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(bind(s, (struct sockaddr *)&sin, sizeof(sin)) == 0,
	    "bind: %s", strerror(errno));
	ck_assert_int_eq(listen(s, 8), 0);
	cfg->delivery.s.timeout = 1;
	cfg->delivery.s.retries = 1;
	ck_assert_int_eq(sftp_upload(cfg, local, "t.xml"), -1);
	ck_assert_msg(strstr(error_last(), "timed out") != NULL, "%s",
	    error_last());
	ck_assert_ptr_nonnull(strstr(error_last(), "2 attempts"));
	close(s);
}
END_TEST

/* An upload running in a thread, so the test can kill the server. */
struct job {
	pthread_t	 t;
	const char	*local, *name;
	int		 rc;
	atomic_int	 done;
	char		 err[1024];
};

static void *
job_run(void *arg)
{
	struct job *j = arg;

	j->rc = sftp_upload(cfg, j->local, j->name);
	snprintf(j->err, sizeof(j->err), "%s", error_last());
	atomic_store(&j->done, 1);
	return NULL;
}

/* Start the upload; SIGKILL sshd and its sessions once NAME.part has
 * grown past 1 MiB.  Returns 1 if it killed before the upload ended. */
static int
kill_mid_upload(struct job *j)
{
	const char *part = in(srv.remote, "big.xml.part");
	int i, killed = 0;

	atomic_store(&j->done, 0);
	ck_assert_int_eq(pthread_create(&j->t, NULL, job_run, j), 0);
	for (i = 0; i < 60000 && !atomic_load(&j->done); i++) {
		if (file_size(part) >= 1024 * 1024) {
			sshd_stop(SIGKILL);
			killed = 1;
			break;
		}
		sleep_ms(1);
	}
	return killed;
}

START_TEST(t_killed_mid_upload)
{
	const char *local = in(srv.dir, "big.xml");
	struct job j;
	int killed;

	file_make(local, BIG, 3);
	memset(&j, 0, sizeof(j));
	j.local = local;
	j.name = "big.xml";
	cfg->delivery.s.retries = 1;
	killed = kill_mid_upload(&j);
	ck_assert_int_eq(pthread_join(j.t, NULL), 0);
	ck_assert_msg(killed, "the upload ended before the kill: %s", j.err);
	ck_assert_int_eq(j.rc, -1);
	ck_assert_ptr_nonnull(strstr(j.err, "2 attempts"));
	ck_assert(!tu_exists(in(srv.remote, "big.xml")));

	/* the next run: a fresh server, the leftover .part overwritten */
	sshd_start();
	ck_assert_msg(sftp_upload(cfg, local, "big.xml") == 0, "%s",
	    error_last());
	ck_assert(files_equal(local, in(srv.remote, "big.xml")));
	ck_assert(!tu_exists(in(srv.remote, "big.xml.part")));
}
END_TEST

START_TEST(t_killed_then_retry_succeeds)
{
	const char *local = in(srv.dir, "big.xml");
	struct job j;
	int killed;

	file_make(local, BIG, 4);
	memset(&j, 0, sizeof(j));
	j.local = local;
	j.name = "big.xml";
	cfg->delivery.s.retries = 8;
	setenv("SISFEED_RETRY_BASE_MS", "100", 1);
	killed = kill_mid_upload(&j);
	if (killed)
		sshd_start();		/* back while the upload backs off */
	ck_assert_int_eq(pthread_join(j.t, NULL), 0);
	ck_assert_msg(killed, "the upload ended before the kill: %s", j.err);
	ck_assert_msg(j.rc == 0, "%s", j.err);
	ck_assert(files_equal(local, in(srv.remote, "big.xml")));
	ck_assert(!tu_exists(in(srv.remote, "big.xml.part")));
}
END_TEST

/* ------------------------------------------------------------------ */
/* sftp_check                                                         */

static char *
check_output(int *rc)
{
	FILE *fp = tmpfile();
	char *buf;
	long len;

	ck_assert_ptr_nonnull(fp);
	*rc = sftp_check(cfg, fp);
	len = ftell(fp);
	ck_assert_int_ge(len, 0);
	buf = calloc(1, (size_t)len + 1);
	ck_assert_ptr_nonnull(buf);
	rewind(fp);
	ck_assert_uint_eq(fread(buf, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	return buf;
}

static int
count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

START_TEST(t_check_ok)
{
	char want[700], fp[128], pub[600];
	char *out;
	int rc;
	DIR *d;
	struct dirent *e;

	out = check_output(&rc);
	ck_assert_msg(rc == 0, "%s", out);
	ck_assert_int_eq(count_lines(out), 5);
	snprintf(want, sizeof(want), "sftp: connect to 127.0.0.1 port %d: "
	    "ok\n", srv.port);
	ck_assert_ptr_nonnull(strstr(out, want));
	snprintf(pub, sizeof(pub), "%s.pub", srv.hk_ed);
	fingerprint(pub, fp, sizeof(fp));
	snprintf(want, sizeof(want), "sftp: host key ssh-ed25519 %s of "
	    "[127.0.0.1]:%d in %s: ok\n", fp, srv.port, srv.known);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	snprintf(want, sizeof(want), "sftp: login as %s with key %s: ok\n",
	    srv.user, srv.key);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	snprintf(want, sizeof(want), "sftp: remote_dir %s exists: ok\n",
	    srv.remote);
	ck_assert_msg(strstr(out, want) != NULL, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "writable (probe written and "
	    "removed): ok\n"));
	free(out);
	d = opendir(srv.remote);		/* the probe is gone */
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		ck_assert_msg(e->d_name[0] == '.' && (e->d_name[1] == '\0' ||
		    (e->d_name[1] == '.' && e->d_name[2] == '\0')),
		    "left behind: %s", e->d_name);
	closedir(d);
}
END_TEST

START_TEST(t_check_failures)
{
	char dir[600];
	char *out;
	int rc;

	snprintf(dir, sizeof(dir), "%s/nope", srv.dir);
	cfg->delivery.s.remote_dir = dir;
	out = check_output(&rc);
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(count_lines(out), 4);
	ck_assert_msg(strstr(out, "exists: FAILED: ") != NULL, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "does not exist"));
	free(out);

	cfg->delivery.s.remote_dir = srv.remote;
	tu_write(srv.dir, "known_hosts", "");
	out = check_output(&rc);
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(count_lines(out), 2);
	ck_assert_msg(strstr(out, ": FAILED: the host key of") != NULL, "%s",
	    out);
	assert_names_fingerprint(out);
	free(out);

	sshd_stop(SIGTERM);
	out = check_output(&rc);
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(count_lines(out), 1);
	ck_assert_msg(strstr(out, "FAILED") != NULL &&
	    strstr(out, "refused") != NULL, "%s", out);
	free(out);
}
END_TEST

static Suite *
sftp_suite(void)
{
	Suite *s = suite_create("sftp");
	TCase *tc;

	tc = tcase_create("deliver");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t_delivers);
	tcase_add_test(tc, t_empty_file);
	tcase_add_test(tc, t_replaces_existing_and_leftover_part);
	tcase_add_test(tc, t_remote_dir_trailing_slash);
	tcase_add_test(tc, t_ecdsa_client_key);
	tcase_add_test(tc, t_hashed_known_hosts_both_types);
	tcase_add_test(tc, t_encrypted_key);
	suite_add_tcase(s, tc);

	tc = tcase_create("refuse");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t_unknown_host_key);
	tcase_add_test(tc, t_changed_host_key);
	tcase_add_test(tc, t_wrong_key);
	tcase_add_test(tc, t_wrong_user);
	tcase_add_test(tc, t_rsa_key);
	tcase_add_test(tc, t_missing_remote_dir);
	tcase_add_test(tc, t_key_mode_0644);
	tcase_add_test(tc, t_wrong_password);
	tcase_add_test(tc, t_bad_settings);
	suite_add_tcase(s, tc);

	tc = tcase_create("retry");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, t_nothing_listens);
	tcase_add_test(tc, t_server_silent_times_out);
	tcase_add_test(tc, t_killed_mid_upload);
	tcase_add_test(tc, t_killed_then_retry_succeeds);
	suite_add_tcase(s, tc);

	tc = tcase_create("check");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t_check_ok);
	tcase_add_test(tc, t_check_failures);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run_suite(sftp_suite()) != 0;
}
