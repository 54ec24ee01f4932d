/*
 * testutil.c -- helpers shared by the Check suites.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zip.h>

#include "tests/testutil.h"

void
tu_mkdtemp(char *buf, size_t len)
{
	const char *t = getenv("TMPDIR");

	if (t == NULL || *t == '\0')
		t = "/tmp";
	ck_assert_int_lt(snprintf(buf, len, "%s/sisfeed-test.XXXXXX", t),
	    (int)len);
	ck_assert_ptr_nonnull(mkdtemp(buf));
}

void
tu_rmtree(const char *path)
{
	DIR *d;
	struct dirent *e;
	char sub[4096];
	struct stat st;

	if (lstat(path, &st) == -1)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	if ((d = opendir(path)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			tu_rmtree(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

const char *
tu_write(const char *dir, const char *name, const char *s)
{
	const char *p = tu_path(dir, name);
	FILE *fp;

	fp = fopen(p, "w");
	ck_assert_msg(fp != NULL, "cannot write %s", p);
	ck_assert_int_eq(fputs(s, fp) >= 0, 1);
	ck_assert_int_eq(fclose(fp), 0);
	return p;
}

char *
tu_read(const char *path, size_t *lenp)
{
	FILE *fp;
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if ((fp = fopen(path, "rb")) == NULL)
		return NULL;
	for (;;) {
		if (cap - len < 65536) {
			char *nb = realloc(buf, cap + 65536 + 1);
			if (nb == NULL) {
				free(buf);
				fclose(fp);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
		if (n == 0)
			break;
	}
	fclose(fp);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
}

int
tu_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

int
tu_run(char *const argv[], char **out, int timeout_s)
{
	int fd[2], status = 0;
	pid_t pid;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	time_t deadline = time(NULL) + timeout_s;

	ck_assert_int_eq(pipe(fd), 0);
	/* The child must not reach ck_assert (it allocates: with a thread
	 * holding the sanitizer's allocator lock at fork, it spins). */
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		if (null != -1)
			dup2(null, 0);
		dup2(fd[1], 1);
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fd[1]);
	for (;;) {
		struct pollfd pfd = { .fd = fd[0], .events = POLLIN };
		int left = (int)(deadline - time(NULL));
		ssize_t n;

		if (left <= 0) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&pfd, 1, left * 1000) <= 0)
			continue;
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536 + 1);
			ck_assert_ptr_nonnull(nb);
			buf = nb;
			cap += 65536;
		}
		n = read(fd[0], buf + len, cap - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (buf == NULL)
		buf = calloc(1, 1);
	else
		buf[len] = '\0';
	if (out != NULL)
		*out = buf;
	else
		free(buf);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

const char *
tu_sisfeed(void)
{
	const char *p = getenv("SISFEED_BIN");

	return p != NULL ? p : "./build/test/sisfeed";
}

const char *
tu_top(void)
{
	const char *p = getenv("SISFEED_TOP");

	return p != NULL ? p : ".";
}

int
tu_free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int s, port;

	s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(s);
	return port;
}

int
tu_wait_port(int port, int timeout_ms)
{
	int i, tries = timeout_ms / 20;
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	for (i = 0; i < tries; i++) {
		struct sockaddr_in sin;
		int s = socket(AF_INET, SOCK_STREAM, 0);

		if (s == -1)
			return -1;
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((unsigned short)port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(s, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
			close(s);
			return 0;
		}
		close(s);
		nanosleep(&ts, NULL);
	}
	return -1;
}

const char *
tu_log_tail(const char *path)
{
	static char buf[3000];
	size_t len = 0;
	char *s;

	if ((s = tu_read(path, &len)) == NULL)
		return "(no log)";
	snprintf(buf, sizeof(buf), "%s", len > sizeof(buf) - 1 ?
	    s + len - (sizeof(buf) - 1) : s);
	free(s);
	return buf;
}

pid_t
tu_server_start(char *const argv[], const char *log, int port)
{
	int i, status, up = 0, fd, null;
	pid_t pid;

	/* Opened here: the child of a process with threads (a test's
	 * upload) calls only dup2, prctl and execv, nothing that takes a
	 * lock another thread may have held at fork. */
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd != -1 && null != -1, "%s: %s", log, strerror(errno));
	/* The child must not reach ck_assert (it allocates: with a thread
	 * holding the sanitizer's allocator lock at fork, it spins). */
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(null, 0) == -1 || dup2(fd, 1) == -1 ||
		    dup2(fd, 2) == -1)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	ck_assert_int_ne(pid, -1);
	close(fd);
	close(null);
	for (i = 0; i < 500 && !up; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			ck_abort_msg("%s exited: %s", argv[0], tu_log_tail(log));
		up = tu_wait_port(port, 40) == 0;
	}
	if (!up) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		ck_abort_msg("%s does not listen on port %d: %s", argv[0],
		    port, tu_log_tail(log));
	}
	return pid;
}

void
tu_server_stop(pid_t pid, int sig)
{
	int status;

	if (pid <= 0)
		return;
	kill(pid, sig);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}

int
tu_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed;
}

/* ------------------------------------------------------------------ */
/* Reports built by hand, for the report and mail suites.              */

/* Counts against a base of 5000 persons, 120 groups, 9000 members. */
static void
set_counts(struct changeset *cs, struct verdict *vd, size_t pi, size_t pu, size_t pd, size_t gi, size_t gu,
    size_t gd, size_t mi, size_t mu, size_t md)
{
	size_t c[NTYPES][NOPS] = { { pi, pu, pd }, { gi, gu, gd },
	    { mi, mu, md } };
	int t, o;

	memset(cs, 0, sizeof(*cs));
	memset(vd, 0, sizeof(*vd));
	cs->base[TYPE_PERSON] = 5000;
	cs->base[TYPE_GROUP] = 120;
	cs->base[TYPE_MEMBER] = 9000;
	for (t = 0; t < NTYPES; t++)
		for (o = 0; o < NOPS; o++) {
			cs->count[t][o] = c[t][o];
			vd->percent[t][o] = 100.0 * (double)c[t][o] /
			    (double)cs->base[t];
		}
}

void
tu_report_completed(struct run_report *r, const struct config *c,
    struct changeset *cs, struct verdict *vd)
{
	memset(r, 0, sizeof(*r));
	set_counts(cs, vd, 3, 5, 1, 0, 1, 0, 10, 0, 2);
	cs->deactivated = 2;
	cs->reactivated = 1;
	r->cfg = c;
	r->status = RUN_COMPLETED;
	snprintf(r->run_id, sizeof(r->run_id), "20240501T020000Z");
	r->started = 1714528800;
	r->finished = 1714528812;
	r->cs = cs;
	r->v = vd;
	r->count[TYPE_PERSON] = 5002;
	r->count[TYPE_GROUP] = 120;
	r->count[TYPE_MEMBER] = 9008;
	snprintf(r->file_name, sizeof(r->file_name),
	    "sisfeed-20240501.xml.gz");
	snprintf(r->remote_path, sizeof(r->remote_path),
	    "/incoming/sisfeed-20240501.xml.gz");
	r->file_size = 123456;
	r->seconds[ST_READ] = 1.25;
	r->seconds[ST_DELIVER] = 3.5;
}

void
tu_report_blocked(struct run_report *r, const struct config *c,
    struct changeset *cs, struct verdict *vd)
{
	static const char *names[] = { "s1001 Doe, Jane",
	    "s1002 \xc3\x96lz, J\xc3\xbcrgen", "s1003 <script>x</script>",
	    "s1004 Roe, Richard", "s1005 Poe, Edgar" };
	size_t i;

	memset(r, 0, sizeof(*r));
	set_counts(cs, vd, 3, 5, 412, 0, 1, 0, 10, 0, 300);
	vd->blocked = 1;
	vd->tripped[TYPE_PERSON][OP_DELETE] = 1;
	snprintf(vd->approval_id, sizeof(vd->approval_id), "0123456789abcdef");
	snprintf(vd->reason, sizeof(vd->reason),
	    "persons deletes 412 (8.2%%) exceed 2%% of 5000");
	r->cfg = c;
	r->status = RUN_BLOCKED;
	snprintf(r->reason, sizeof(r->reason), "%s", vd->reason);
	snprintf(r->run_id, sizeof(r->run_id), "20240502T020000Z");
	r->started = 1714615200;
	r->finished = 1714615203;
	r->cs = cs;
	r->v = vd;
	r->count[TYPE_PERSON] = 4591;
	r->count[TYPE_GROUP] = 120;
	r->count[TYPE_MEMBER] = 8710;
	r->rejects = 7;
	snprintf(r->rejects_path, sizeof(r->rejects_path),
	    "/var/lib/sisfeed/rejects/20240502T020000Z.txt");
	for (i = 0; i < 5; i++) {
		r->samples[TYPE_PERSON][OP_DELETE][i] = strdup(names[i]);
		ck_assert_ptr_nonnull(r->samples[TYPE_PERSON][OP_DELETE][i]);
	}
	r->nsamples[TYPE_PERSON][OP_DELETE] = 5;
}

void
tu_report_failed(struct run_report *r, const struct config *c,
    struct changeset *cs, struct verdict *vd)
{
	memset(r, 0, sizeof(*r));
	memset(cs, 0, sizeof(*cs));
	memset(vd, 0, sizeof(*vd));
	r->cfg = c;
	r->status = RUN_FAILED;
	snprintf(r->run_id, sizeof(r->run_id), "20240503T020000Z");
	r->started = 1714701600;
	r->finished = 1714701660;
	snprintf(r->stage, sizeof(r->stage), "%s", stage_name(ST_DELIVER));
	snprintf(r->error, sizeof(r->error),
	    "sftp.lms.example.com:22: connect: Connection refused");
}

/*
 * Write a .zip at path holding the files names[] (NULL-terminated) of
 * dir, each as prefix + name, deflated.  Aborts the test on failure.
 */
void
tu_zip(const char *path, const char *dir, const char *const *names,
    const char *prefix)
{
	char src[4096], member[1024];
	zip_source_t *zs;
	zip_t *za;
	int err = 0;
	zip_int64_t idx;

	za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
	ck_assert_msg(za != NULL, "zip_open %s: %d", path, err);
	for (; *names != NULL; names++) {
		snprintf(src, sizeof(src), "%s/%s", dir, *names);
		snprintf(member, sizeof(member), "%s%s", prefix, *names);
		zs = zip_source_file(za, src, 0, -1);
		ck_assert_msg(zs != NULL, "zip %s: %s", src, zip_strerror(za));
		idx = zip_file_add(za, member, zs, ZIP_FL_ENC_UTF_8);
		if (idx == -1)
			zip_source_free(zs);
		ck_assert_msg(idx >= 0, "zip %s: %s", src, zip_strerror(za));
		ck_assert_int_eq(zip_set_file_compression(za,
		    (zip_uint64_t)idx, ZIP_CM_DEFLATE, 0), 0);
	}
	ck_assert_msg(zip_close(za) == 0, "zip_close %s: %s", path,
	    zip_strerror(za));
}

/* Roster builders: see testutil.h. */
void
tu_add_person(struct roster *r, struct person p)
{
	ck_assert_int_eq(roster_add_person(r, &p), 0);
}

void
tu_add_group(struct roster *r, struct group g)
{
	ck_assert_int_eq(roster_add_group(r, &g), 0);
}

void
tu_add_member_at(struct roster *r, size_t g, size_t p, int role, int active)
{
	struct membership m;

	memset(&m, 0, sizeof(m));
	m.group = (uint32_t)g;
	m.person = (uint32_t)p;
	m.role = (uint8_t)role;
	m.active = (uint8_t)active;
	ck_assert_int_eq(roster_add_member(r, &m), 0);
}

void
tu_add_member(struct roster *r, const char *group, const char *person,
    int role, int active)
{
	long g = roster_find_group(r, group), p = roster_find_person(r, person);

	ck_assert_msg(g >= 0 && p >= 0, "unknown %s/%s", group, person);
	tu_add_member_at(r, (size_t)g, (size_t)p, role, active);
}

/* dir/name in one of 8 static buffers used in turn. */
const char *
tu_path(const char *dir, const char *name)
{
	static char bufs[8][4096];
	static int next;
	char *p = bufs[next++ % 8];
	int n = snprintf(p, 4096, "%s/%s", dir, name);

	ck_assert_msg(n >= 0 && n < 4096, "path too long: %s/%s", dir, name);
	return p;
}
