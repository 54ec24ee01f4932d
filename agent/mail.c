/*
 * mail.c -- the run report by mail: libcurl SMTP (smtp:// with
 * STARTTLS, smtps://, AUTH) or a sendmail program fed by a pipe.
 *
 * A message is built once (RFC 5322 headers, multipart/alternative,
 * text/plain and text/html in UTF-8, quoted-printable bodies) with LF
 * line ends; SMTP gets it with CRLF.  A message that cannot be sent is
 * written to STATE_DIR/spool/ together with its envelope and sent by
 * mail_flush_spool on the next run.  Passwords never reach a message.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "sisfeed.h"

#define SPOOL_MAGIC	"sisfeed-spool 1\n"
#define SPOOL_SUFFIX	".mail"
#define QP_WIDTH	76

/* Envelope recipients: pointers into the config or a spool file. */
struct rlist {
	const char	**v;
	size_t		  n;
};

/* ------------------------------------------------------------------ */
/* Encodings.                                                          */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void
sb_base64(struct sbuf *b, const unsigned char *s, size_t n)
{
	char q[4];
	size_t i;
	unsigned v;

	for (i = 0; i < n; i += 3) {
		v = (unsigned)s[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		q[0] = b64chars[(v >> 18) & 63];
		q[1] = b64chars[(v >> 12) & 63];
		q[2] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
		q[3] = i + 2 < n ? b64chars[v & 63] : '=';
		sbuf_putn(b, q, 4);
	}
}

/*
 * Quoted-printable (RFC 2045) of text with LF line ends: lines of at
 * most QP_WIDTH characters, soft breaks "=\n", trailing blanks and
 * every byte outside printable ASCII encoded, "From " at a line start
 * guarded.
 */
static void
sb_qp(struct sbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0, tl;
	char tok[3];
	unsigned char c;
	int enc;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (c == '\n') {
			sbuf_putn(b, "\n", 1);
			col = 0;
			continue;
		}
		enc = c == '=' || c >= 0x7f || (c < 0x20 && c != '\t') ||
		    ((c == ' ' || c == '\t') && (s[1] == '\n' ||
		    s[1] == '\0')) ||
		    (col == 0 && c == 'F' && strncmp(s, "From ", 5) == 0) ||
		    (col == 0 && c == '.');
		if (enc) {
			tok[0] = '=';
			tok[1] = hex[c >> 4];
			tok[2] = hex[c & 15];
			tl = 3;
		} else {
			tok[0] = (char)c;
			tl = 1;
		}
		if (col + tl > QP_WIDTH - 1) {
			sbuf_puts(b, "=\n");
			col = 0;
		}
		sbuf_putn(b, tok, tl);
		col += tl;
	}
	if (col > 0)
		sbuf_putn(b, "\n", 1);
}

/* Length of the UTF-8 character starting with byte c (1 if invalid). */
static size_t
utf8_len(unsigned char c)
{
	if (c >= 0xf0 && c <= 0xf4)
		return 4;
	if (c >= 0xe0)
		return 3;
	if (c >= 0xc2 && c <= 0xdf)
		return 2;
	return 1;
}

/*
 * A Subject header value: printable ASCII as is, anything else as
 * RFC 2047 "=?UTF-8?B?...?=" words of at most 39 bytes each (split at
 * character boundaries), folded onto continuation lines.  Control
 * characters become spaces, so the header cannot be split.
 */
static void
sb_subject(struct sbuf *b, const char *s)
{
	char clean[1024];
	size_t i, n, start, k;
	int ascii = 1;

	for (n = 0; s[n] != '\0' && n < sizeof(clean) - 1; n++) {
		unsigned char c = (unsigned char)s[n];

		clean[n] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
		if (c >= 0x80)
			ascii = 0;
	}
	/* Do not cut a UTF-8 character in half. */
	for (i = n; i > 0 && ((unsigned char)clean[i - 1] & 0xc0) == 0x80;)
		i--;
	if (i > 0 && (unsigned char)clean[i - 1] >= 0xc0 &&
	    i - 1 + utf8_len((unsigned char)clean[i - 1]) > n)
		n = i - 1;
	clean[n] = '\0';
	if (ascii && n <= 900) {
		sbuf_puts(b, clean);
		return;
	}
	for (start = 0; start < n; start = i) {
		for (i = start; i < n; i += k) {
			k = utf8_len((unsigned char)clean[i]);
			if (i + k > n || i + k - start > 39)
				break;
		}
		if (i == start)
			i = n;
		if (start > 0)
			sbuf_puts(b, "\n ");
		sbuf_puts(b, "=?UTF-8?B?");
		sb_base64(b, (const unsigned char *)clean + start, i - start);
		sbuf_puts(b, "?=");
	}
}

/* ------------------------------------------------------------------ */
/* Recipients.                                                         */

static int
rlist_add(struct rlist *rl, const char *a)
{
	const char **nv;
	size_t i;

	for (i = 0; i < rl->n; i++)
		if (strcasecmp(rl->v[i], a) == 0)
			return 0;
	if ((nv = reallocarray(rl->v, rl->n + 1, sizeof(*nv))) == NULL)
		return error_set("mail: out of memory");
	rl->v = nv;
	rl->v[rl->n++] = a;
	return 0;
}

/* mail.to plus mail.to_status[s] for every status bit in mask. */
static int
rlist_collect(const struct config *c, unsigned mask, struct rlist *rl)
{
	size_t i;
	int s;

	for (i = 0; i < c->mail.to.n; i++)
		if (rlist_add(rl, c->mail.to.v[i]) == -1)
			return -1;
	for (s = 0; s < NSTATUS; s++) {
		if (!(mask & (1u << s)))
			continue;
		for (i = 0; i < c->mail.to_status[s].n; i++)
			if (rlist_add(rl, c->mail.to_status[s].v[i]) == -1)
				return -1;
	}
	return 0;
}

/* 1 if a is a bare address that cannot break a header or a command. */
static int
addr_safe(const char *a)
{
	const char *p;

	if (a == NULL || *a == '\0' || strchr(a, '@') == NULL)
		return 0;
	for (p = a; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f ||
		    strchr("<>,;\"()\\", *p) != NULL)
			return 0;
	return 1;
}

/* ------------------------------------------------------------------ */
/* The message.                                                        */

static void
random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[32];
	size_t i;

	if (nbytes > sizeof(r))
		nbytes = sizeof(r);
	if (getentropy(r, nbytes) == -1) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		for (i = 0; i < nbytes; i++)
			r[i] = (unsigned char)((unsigned long)ts.tv_nsec >>
			    (i % 4 * 8) ^ (unsigned long)getpid() >> (i % 2));
	}
	for (i = 0; i < nbytes; i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[2 * nbytes] = '\0';
}

/* This host's name, reduced to letters, digits, '.' and '-'. */
static void
host_name(char *buf, size_t len)
{
	char *p;

	if (gethostname(buf, len) == -1 || buf[0] == '\0')
		snprintf(buf, len, "localhost");
	buf[len - 1] = '\0';
	for (p = buf; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
			*p = '-';
}

/* "Thu, 02 May 2024 02:00:00 +0000" for now. */
static void
rfc5322_date(char *buf, size_t len)
{
	static const char *days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char *months[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t now = time(NULL);
	struct tm tm;

	if (gmtime_r(&now, &tm) == NULL) {
		snprintf(buf, len, "Thu, 01 Jan 1970 00:00:00 +0000");
		return;
	}
	snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static const char *
from_of(const struct config *c)
{
	return c->mail.from;
}

/*
 * The whole message with LF line ends: headers (Date, From, To,
 * Subject, Message-ID, MIME-Version, ...) and a multipart/alternative
 * body of text and html.  malloc'd, or NULL (error set).
 */
static char *
message_build(const struct config *c, const struct rlist *rl,
    const char *idpart, const char *subject, const char *text,
    const char *html)
{
	struct sbuf b = { 0 };
	char date[64], host[256], rnd[33], bnd[33];
	size_t i, col;

	rfc5322_date(date, sizeof(date));
	host_name(host, sizeof(host));
	random_hex(rnd, 8);
	random_hex(bnd, 12);
	sbuf_printf(&b, "Date: %s\nFrom: %s\nTo: ", date, from_of(c));
	for (i = 0, col = 4; i < rl->n; i++) {
		if (i > 0) {
			sbuf_puts(&b, ",");
			if (col + strlen(rl->v[i]) + 2 > 78) {
				sbuf_puts(&b, "\n ");
				col = 1;
			} else {
				sbuf_puts(&b, " ");
				col += 2;
			}
		}
		sbuf_puts(&b, rl->v[i]);
		col += strlen(rl->v[i]);
	}
	sbuf_puts(&b, "\nSubject: ");
	sb_subject(&b, subject);
	sbuf_printf(&b, "\nMessage-ID: <%s.%ld.%s@%s>\n", idpart,
	    (long)getpid(), rnd, host);
	sbuf_printf(&b, "MIME-Version: 1.0\n"
	    "Content-Type: multipart/alternative;\n"
	    " boundary=\"=_sisfeed_%s\"\n"
	    "Auto-Submitted: auto-generated\n"
	    "X-Mailer: sisfeed %s\n\n"
	    "This is a MIME message: text and HTML.\n\n", bnd,
	    SISFEED_VERSION);
	sbuf_printf(&b, "--=_sisfeed_%s\n"
	    "Content-Type: text/plain; charset=UTF-8\n"
	    "Content-Transfer-Encoding: quoted-printable\n\n", bnd);
	sb_qp(&b, text);
	sbuf_printf(&b, "\n--=_sisfeed_%s\n"
	    "Content-Type: text/html; charset=UTF-8\n"
	    "Content-Transfer-Encoding: quoted-printable\n\n", bnd);
	sb_qp(&b, html);
	sbuf_printf(&b, "\n--=_sisfeed_%s--\n", bnd);
	return sbuf_done(&b, "mail");
}

/* An HTML document around a fragment. */
static char *
html_document(const char *fragment)
{
	struct sbuf b = { 0 };

	sbuf_puts(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width, "
	    "initial-scale=1\"><title>sisfeed</title></head>\n"
	    "<body style=\"margin:8px\">\n");
	sbuf_puts(&b, fragment);
	sbuf_puts(&b, "</body></html>\n");
	return sbuf_done(&b, "mail");
}

/* ------------------------------------------------------------------ */
/* SMTP with libcurl.                                                  */

struct upload {
	const char	*p;
	size_t		 len, off;
};

static size_t
upload_read(char *dst, size_t size, size_t nmemb, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nmemb;

	if (n > u->len - u->off)
		n = u->len - u->off;
	memcpy(dst, u->p + u->off, n);
	u->off += n;
	return n;
}

/* msg with every LF turned into CRLF.  malloc'd or NULL. */
static char *
to_crlf(const char *msg, size_t *len)
{
	struct sbuf b = { 0 };
	const char *p, *nl;

	for (p = msg; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL) {
			sbuf_puts(&b, p);
			sbuf_puts(&b, "\r\n");
			break;
		}
		sbuf_putn(&b, p, (size_t)(nl - p));
		sbuf_putn(&b, "\r\n", 2);
	}
	if (sbuf_done(&b, "mail") == NULL)
		return NULL;
	*len = b.len;
	return b.p;
}

/*
 * The SMTP password into pw: from mail.password_file (which must not
 * be accessible by group or others), else $SISFEED_SMTP_PASSWORD.
 * Returns 0 or -1 (error set; never contains the password).
 */
static int
smtp_password(const struct config *c, char *pw, size_t len)
{
	const char *path = c->mail.password_file, *env;
	struct stat st;
	ssize_t n;
	int fd;

	if (path == NULL) {
		if ((env = getenv("SISFEED_SMTP_PASSWORD")) == NULL ||
		    *env == '\0')
			return error_set("mail: mail.user is set but there "
			    "is no password (mail.password_file or "
			    "SISFEED_SMTP_PASSWORD)");
		if (strlen(env) >= len)
			return error_set("mail: SISFEED_SMTP_PASSWORD is too "
			    "long");
		memcpy(pw, env, strlen(env) + 1);
		return 0;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return error_sys("%s", path);
	if (fstat(fd, &st) == -1) {
		error_sys("%s", path);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
		close(fd);
		return error_set("%s: the password file must be a regular "
		    "file accessible by its owner only (mode %04o); "
		    "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
	}
	n = read(fd, pw, len - 1);
	close(fd);
	if (n < 0)
		return error_sys("%s", path);
	pw[n] = '\0';
	if (strchr(pw, '\n') != NULL)
		*strchr(pw, '\n') = '\0';
	if (n > 0 && strchr(pw, '\r') != NULL)
		*strchr(pw, '\r') = '\0';
	if (pw[0] == '\0')
		return error_set("%s: empty password", path);
	if ((size_t)n == len - 1)
		return error_set("%s: password too long", path);
	return 0;
}

#define SETOPT(h, o, v) do {					\
	if (ce == CURLE_OK)					\
		ce = curl_easy_setopt((h), (o), (v));		\
} while (0)

static long
starttls_level(const struct config *c)
{
	switch (c->mail.starttls) {
	case STARTTLS_TRY:
		return (long)CURLUSESSL_TRY;
	case STARTTLS_OFF:
		return (long)CURLUSESSL_NONE;
	default:
		return (long)CURLUSESSL_ALL;
	}
}

/* Set every option of one SMTP transfer.  CURLE_OK or the failure. */
static CURLcode
smtp_options(CURL *h, const struct config *c, struct curl_slist *rcpt,
    const char *from, const char *pw, struct upload *u, char *errbuf)
{
	CURLcode ce = CURLE_OK;
	long timeout = c->mail.timeout > 0 ? c->mail.timeout : 30;
	int smtps = strncasecmp(c->mail.smtp, "smtps://", 8) == 0;

	SETOPT(h, CURLOPT_ERRORBUFFER, errbuf);
	SETOPT(h, CURLOPT_URL, c->mail.smtp);
#if LIBCURL_VERSION_NUM >= 0x075500
	SETOPT(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#else
	SETOPT(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_SMTP | CURLPROTO_SMTPS));
#endif
	SETOPT(h, CURLOPT_USE_SSL, smtps ? (long)CURLUSESSL_ALL :
	    starttls_level(c));
	SETOPT(h, CURLOPT_MAIL_FROM, from);
	SETOPT(h, CURLOPT_MAIL_RCPT, rcpt);
	if (c->mail.user != NULL) {
		SETOPT(h, CURLOPT_USERNAME, c->mail.user);
		SETOPT(h, CURLOPT_PASSWORD, pw);
	}
	if (c->mail.cafile != NULL)
		SETOPT(h, CURLOPT_CAINFO, c->mail.cafile);
	SETOPT(h, CURLOPT_CONNECTTIMEOUT, timeout);
	SETOPT(h, CURLOPT_TIMEOUT, timeout);
	SETOPT(h, CURLOPT_NOSIGNAL, 1L);
	SETOPT(h, CURLOPT_UPLOAD, 1L);
	SETOPT(h, CURLOPT_READFUNCTION, upload_read);
	SETOPT(h, CURLOPT_READDATA, u);
	SETOPT(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)u->len);
	return ce;
}

/* The transfer itself, with the password already read. */
static int
smtp_perform(const struct config *c, const struct rlist *rl,
    const char *from, const char *pw, struct upload *u)
{
	char errbuf[CURL_ERROR_SIZE], env[512];
	struct curl_slist *rcpt = NULL, *nr;
	CURLcode ce;
	CURL *h;
	long code = 0;
	size_t i;
	int rc = -1;

	errbuf[0] = '\0';
	for (i = 0; i < rl->n; i++) {
		snprintf(env, sizeof(env), "<%s>", rl->v[i]);
		if ((nr = curl_slist_append(rcpt, env)) == NULL) {
			curl_slist_free_all(rcpt);
			return error_set("mail: out of memory");
		}
		rcpt = nr;
	}
	if ((h = curl_easy_init()) == NULL) {
		curl_slist_free_all(rcpt);
		return error_set("mail: cannot start libcurl");
	}
	snprintf(env, sizeof(env), "<%s>", from);
	ce = smtp_options(h, c, rcpt, env, pw, u, errbuf);
	if (ce != CURLE_OK)
		error_set("mail: libcurl option: %s", curl_easy_strerror(ce));
	else if ((ce = curl_easy_perform(h)) != CURLE_OK) {
		if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) !=
		    CURLE_OK || code < 400)
			code = 0;
		if (errbuf[0] == '\0')
			snprintf(errbuf, CURL_ERROR_SIZE, "%s",
			    curl_easy_strerror(ce));
		snprintf(env, sizeof(env), "%ld", code);
		if (code == 0 || strstr(errbuf, env) != NULL)
			error_set("mail: %s: %s", c->mail.smtp, errbuf);
		else
			error_set("mail: %s: %s (server said %ld)",
			    c->mail.smtp, errbuf, code);
	} else
		rc = 0;
	curl_easy_cleanup(h);
	curl_slist_free_all(rcpt);
	return rc;
}

/*
 * Send msg (LF line ends) over SMTP to the envelope recipients rl,
 * envelope sender from.  Returns 0 when the server took it, else -1.
 */
static int
smtp_send(const struct config *c, const struct rlist *rl, const char *from,
    const char *msg)
{
	struct upload u = { 0 };
	char pw[1024], *crlf;
	size_t len = 0;
	int rc;

	pw[0] = '\0';
	if (c->mail.user != NULL && smtp_password(c, pw, sizeof(pw)) == -1) {
		explicit_bzero(pw, sizeof(pw));
		return -1;
	}
	if ((crlf = to_crlf(msg, &len)) == NULL) {
		explicit_bzero(pw, sizeof(pw));
		return -1;
	}
	u.p = crlf;
	u.len = len;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		explicit_bzero(pw, sizeof(pw));
		free(crlf);
		return error_set("mail: cannot initialise libcurl");
	}
	rc = smtp_perform(c, rl, from, pw, &u);
	curl_global_cleanup();
	explicit_bzero(pw, sizeof(pw));
	free(crlf);
	return rc;
}

/* ------------------------------------------------------------------ */
/* sendmail.                                                           */

static long
ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(deadline->tv_sec - now.tv_sec) * 1000 +
	    (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Write all of msg to fd before the deadline.  0 or -1 (error set). */
static int
pipe_feed(int fd, const char *prog, const char *msg, size_t len,
    const struct timespec *deadline)
{
	struct pollfd pfd;
	size_t off = 0;
	ssize_t n;
	long left;

	while (off < len) {
		if ((left = ms_left(deadline)) <= 0)
			return error_set("mail: %s: timed out", prog);
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR)
			return error_sys("mail: %s: poll", prog);
		n = write(fd, msg + off, len - off);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n == -1)
			return error_sys("mail: %s: writing the message", prog);
		off += (size_t)n;
	}
	return 0;
}

/* Wait for pid until the deadline, then kill it.  Its status or -1. */
static int
child_wait(pid_t pid, const char *prog, const struct timespec *deadline)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int status;
	pid_t w;

	for (;;) {
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			return status;
		if (w == -1 && errno != EINTR)
			return error_sys("mail: %s: waitpid", prog);
		if (ms_left(deadline) <= 0)
			break;
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		continue;
	return error_set("mail: %s: timed out; killed", prog);
}

/*
 * Run `sendmail -t -i` (argv, no shell) and feed it msg on a pipe;
 * the recipients come from the To header.  0 when it exited 0.
 */
static int
sendmail_send(const struct config *c, const char *msg)
{
	const char *prog = c->mail.sendmail;
	char *const argv[] = { (char *)prog, (char *)"-t", (char *)"-i",
	    NULL };
	struct sigaction ign, old;
	struct timespec deadline;
	int fd[2], status, rc;
	pid_t pid;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += c->mail.timeout > 0 ? c->mail.timeout : 30;
	if (pipe(fd) == -1)
		return error_sys("mail: pipe");
	if (fcntl(fd[1], F_SETFD, FD_CLOEXEC) == -1 ||
	    fcntl(fd[0], F_SETFD, FD_CLOEXEC) == -1) {
		error_sys("mail: fcntl");
		close(fd[0]);
		close(fd[1]);
		return -1;
	}
	if ((pid = fork()) == -1) {
		error_sys("mail: fork");
		close(fd[0]);
		close(fd[1]);
		return -1;
	}
	if (pid == 0) {
		if (dup2(fd[0], STDIN_FILENO) == -1)
			_exit(127);
		execv(prog, argv);
		_exit(127);
	}
	close(fd[0]);
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, &old);
	rc = pipe_feed(fd[1], prog, msg, strlen(msg), &deadline);
	close(fd[1]);
	sigaction(SIGPIPE, &old, NULL);
	status = child_wait(pid, prog, &deadline);
	if (status == -1)
		return -1;
	if (WIFSIGNALED(status))
		return error_set("mail: %s: killed by signal %d", prog,
		    WTERMSIG(status));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return error_set("mail: %s: exited %d%s", prog,
		    WEXITSTATUS(status), WEXITSTATUS(status) == 127 ?
		    " (cannot run it?)" : "");
	return rc;
}

/* Send by the configured transport.  0 or -1 (error set). */
static int
transport_send(const struct config *c, const struct rlist *rl,
    const char *from, const char *msg)
{
	if (c->mail.sendmail != NULL)
		return sendmail_send(c, msg);
	if (c->mail.smtp != NULL)
		return smtp_send(c, rl, from, msg);
	return error_set("mail: neither mail.smtp nor mail.sendmail is set");
}

/* ------------------------------------------------------------------ */
/* The spool.                                                          */

/* STATE_DIR/spool into buf, created (0700) when missing. */
static int
spool_dir(const struct config *c, char *buf, size_t len, int create)
{
	if (c->state_dir == NULL)
		return error_set("mail: no state directory for the spool");
	if ((size_t)snprintf(buf, len, "%s/spool", c->state_dir) >= len)
		return error_set("%s: path too long", c->state_dir);
	if (!create)
		return 0;
	if (mkdir(c->state_dir, 0700) == -1 && errno != EEXIST)
		return error_sys("%s", c->state_dir);
	if (mkdir(buf, 0700) == -1 && errno != EEXIST)
		return error_sys("%s", buf);
	return 0;
}

/*
 * Write the envelope and message to a new file in the spool: named by
 * the time, so names sort oldest first.  The path goes to out.
 */
static int
spool_write(const struct config *c, const struct rlist *rl,
    const char *from, const char *msg, char *out, size_t outlen)
{
	static unsigned seq;
	struct sbuf b = { 0 };
	struct timespec ts;
	struct tm tm;
	char dir[4096], stamp[32];
	size_t i;
	int rc;

	if (spool_dir(c, dir, sizeof(dir), 1) == -1)
		return -1;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (gmtime_r(&ts.tv_sec, &tm) == NULL)
		return error_set("mail: gmtime failed");
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	if ((size_t)snprintf(out, outlen, "%s/%s-%09ld-%ld-%u%s", dir, stamp,
	    (long)ts.tv_nsec, (long)getpid(), seq++, SPOOL_SUFFIX) >= outlen)
		return error_set("%s: path too long", dir);
	sbuf_puts(&b, SPOOL_MAGIC);
	sbuf_printf(&b, "from %s\n", from);
	for (i = 0; i < rl->n; i++)
		sbuf_printf(&b, "rcpt %s\n", rl->v[i]);
	sbuf_puts(&b, "\n");
	sbuf_puts(&b, msg);
	if (sbuf_done(&b, "mail") == NULL)
		return -1;
	rc = file_write_atomic(out, b.p, b.len);
	free(b.p);
	return rc;
}

/*
 * Parse a spool file in place: envelope sender, recipients (pointers
 * into buf) and the message.  0, or -1 when it is not a spool file.
 */
static int
spool_parse(char *buf, const char **from, struct rlist *rl,
    const char **msg)
{
	char *p = buf, *nl;

	*from = NULL;
	if (strncmp(p, SPOOL_MAGIC, strlen(SPOOL_MAGIC)) != 0)
		return -1;
	p += strlen(SPOOL_MAGIC);
	for (;;) {
		if ((nl = strchr(p, '\n')) == NULL)
			return -1;
		*nl = '\0';
		if (*p == '\0')
			break;
		if (strncmp(p, "from ", 5) == 0 && addr_safe(p + 5))
			*from = p + 5;
		else if (strncmp(p, "rcpt ", 5) == 0 && addr_safe(p + 5)) {
			if (rlist_add(rl, p + 5) == -1)
				return -1;
		} else
			return -1;
		p = nl + 1;
	}
	*msg = nl + 1;
	if (*from == NULL || rl->n == 0 || **msg == '\0')
		return -1;
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
spool_name_ok(const char *n)
{
	size_t len = strlen(n), sl = strlen(SPOOL_SUFFIX);

	return len > sl && isdigit((unsigned char)n[0]) &&
	    strcmp(n + len - sl, SPOOL_SUFFIX) == 0;
}

/* The spool's file names, sorted (oldest first).  *n set; 0 or -1. */
static int
spool_list(const char *dir, char ***names, size_t *n)
{
	struct dirent *e;
	char **v = NULL, **nv;
	DIR *d;

	*n = 0;
	*names = NULL;
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : error_sys("%s", dir);
	while ((e = readdir(d)) != NULL) {
		if (!spool_name_ok(e->d_name))
			continue;
		if ((nv = reallocarray(v, *n + 1, sizeof(*v))) == NULL ||
		    (nv[*n] = strdup(e->d_name)) == NULL) {
			if (nv != NULL)
				v = nv;
			while (*n > 0)
				free(v[--*n]);
			free(v);
			closedir(d);
			return error_set("mail: out of memory");
		}
		v = nv;
		(*n)++;
	}
	closedir(d);
	if (*n > 0)
		qsort(v, *n, sizeof(*v), name_cmp);
	*names = v;
	return 0;
}

/* Send one spool file; remove it once sent.  0, -1 (not sent). */
static int
spool_send_one(const struct config *c, const char *dir, const char *name)
{
	struct rlist rl = { 0 };
	const char *from, *msg;
	char path[4500], bad[4600], *buf = NULL;
	FILE *fp;
	long sz;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "rb")) == NULL)
		return error_sys("%s", path);
	if (fseek(fp, 0, SEEK_END) == 0 && (sz = ftell(fp)) >= 0 &&
	    fseek(fp, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)sz + 1)) != NULL &&
	    fread(buf, 1, (size_t)sz, fp) == (size_t)sz) {
		buf[sz] = '\0';
		rc = 0;
	}
	fclose(fp);
	if (rc == -1) {
		free(buf);
		return error_sys("%s", path);
	}
	if (spool_parse(buf, &from, &rl, &msg) == -1) {
		snprintf(bad, sizeof(bad), "%s.bad", path);
		log_warn("%s: not a spooled mail; renamed to %s", path, bad);
		if (rename(path, bad) == -1)
			log_warn("%s: rename: %s", path, strerror(errno));
		free(rl.v);
		free(buf);
		return 0;
	}
	if ((rc = transport_send(c, &rl, from, msg)) == 0) {
		if (unlink(path) == -1)
			rc = error_sys("%s: sent, but cannot remove it", path);
		else
			log_info("mail: sent the spooled %s", name);
	}
	free(rl.v);
	free(buf);
	return rc;
}

/*
 * Send what STATE_DIR/spool holds, oldest first; each message sent
 * leaves the spool.  Stops at the first that cannot be sent.  Returns
 * 0 (also when the spool is empty or mail is off), or -1 (error set).
 */
int
mail_flush_spool(const struct config *c)
{
	char dir[4096], **names;
	size_t i, n;
	int rc = 0;

	if (!c->mail.enabled)
		return 0;
	if (spool_dir(c, dir, sizeof(dir), 0) == -1 ||
	    spool_list(dir, &names, &n) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (rc == 0 && spool_send_one(c, dir, names[i]) == -1)
			rc = -1;
		free(names[i]);
	}
	free(names);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The entry points.                                                   */

/* Build and send one message; spool it when spool is set and sending
 * fails.  0 sent (or spooled), -1 (error set). */
static int
mail_send(const struct config *c, const struct rlist *rl, const char *idpart,
    const char *subject, const char *text, const char *htmlfrag, int spool)
{
	char *html, *msg, path[4600], why[1024];
	size_t i;
	int rc;

	if (!addr_safe(from_of(c)))
		return error_set("mail: mail.from is not a plain address");
	for (i = 0; i < rl->n; i++)
		if (!addr_safe(rl->v[i]))
			return error_set("mail: '%.64s' is not a plain address",
			    rl->v[i]);
	if ((html = html_document(htmlfrag)) == NULL)
		return -1;
	msg = message_build(c, rl, idpart, subject, text, html);
	free(html);
	if (msg == NULL)
		return -1;
	if ((rc = transport_send(c, rl, from_of(c), msg)) == -1 && spool) {
		snprintf(why, sizeof(why), "%s", error_last());
		if (spool_write(c, rl, from_of(c), msg, path,
		    sizeof(path)) == 0) {
			log_warn("%s; the mail waits in %s", why, path);
			rc = 0;
		} else {
			snprintf(path, sizeof(path), "%s", error_last());
			error_set("%s; cannot spool it either: %s", why, path);
		}
	}
	free(msg);
	return rc;
}

/*
 * Mail the report to mail.to plus mail.to_status[status], when
 * mail.on includes its status.  Samples are capped at mail.samples.
 * A message that cannot be sent is spooled with a warning.  Returns 0
 * if sent, spooled or not to be sent, -1 if neither (error set).
 */
int
mail_report(const struct config *c, const struct run_report *r)
{
	struct run_report m;
	struct rlist rl = { 0 };
	char *subject = NULL, *text = NULL, *html = NULL;
	int rc = -1;

	if (!c->mail.enabled)
		return 0;
	if ((int)r->status < 0 || r->status >= NSTATUS)
		return error_set("mail: bad run status %d", (int)r->status);
	if (!(c->mail.on & (1u << r->status))) {
		log_debug("mail: mail.on does not include this run's status");
		return 0;
	}
	if (rlist_collect(c, 1u << r->status, &rl) == -1)
		goto out;
	if (rl.n == 0) {
		log_warn("mail: no recipients for this run's status");
		rc = 0;
		goto out;
	}
	m = *r;
	m.cfg = c;
	m.max_samples = 0;
	if ((subject = report_subject(&m)) == NULL ||
	    (text = report_text(&m)) == NULL ||
	    (html = report_html(&m)) == NULL)
		goto out;
	rc = mail_send(c, &rl, r->run_id[0] ? r->run_id : "run", subject,
	    text, html, 1);
out:
	free(subject);
	free(text);
	free(html);
	free(rl.v);
	return rc;
}

/*
 * Send a short test message to every recipient the config names (not
 * spooled).  Returns 0 when it was handed over, else -1 (error set).
 */
int
mail_test(const struct config *c)
{
	struct rlist rl = { 0 };
	struct sbuf t = { 0 }, h = { 0 }, s = { 0 };
	char host[256];
	int rc = -1;

	if (!c->mail.enabled)
		return error_set("mail: the config has no mail: section");
	if (rlist_collect(c, ~0u, &rl) == -1)
		return -1;
	if (rl.n == 0) {
		free(rl.v);
		return error_set("mail: no recipients (mail.to, "
		    "mail.to_status)");
	}
	host_name(host, sizeof(host));
	sbuf_printf(&s, "[sisfeed] %s: test message",
	    c->site != NULL ? c->site : "sisfeed");
	sbuf_printf(&t, "This is a test message from sisfeed %s on %s.\n\n"
	    "If you can read it, sisfeed can mail its run reports to you.\n",
	    SISFEED_VERSION, host);
	sbuf_printf(&h, "<p>This is a test message from sisfeed %s on %s.</p>"
	    "\n<p>If you can read it, sisfeed can mail its run reports to "
	    "you.</p>\n", SISFEED_VERSION, host);
	if (sbuf_done(&s, "mail") != NULL && sbuf_done(&t, "mail") != NULL &&
	    sbuf_done(&h, "mail") != NULL)
		rc = mail_send(c, &rl, "test", s.p, t.p, h.p, 0);
	free(s.p);
	free(t.p);
	free(h.p);
	free(rl.v);
	return rc;
}

/*
 * The mail's HTML part for rep as the whole document it is sent as.
 * malloc'd, or NULL (error set).
 */
char *
mail_html(const struct run_report *rep)
{
	char *fragment, *doc;

	if ((fragment = report_html(rep)) == NULL)
		return NULL;
	doc = html_document(fragment);
	free(fragment);
	return doc;
}
