/*
 * sftp.c -- delivery over SFTP with libssh2 (Debian 12: libssh2 1.10).
 *
 * One attempt is a straight line: TCP connect with a timeout, the SSH
 * handshake, the server's host key checked against the configured
 * known_hosts file (never trusted on first use, no way to skip it),
 * login with a private key or a password read from a file (by the
 * "password" method, or keyboard-interactive where the server offers
 * only that), then remote_dir/NAME.part written with many requests in
 * flight, its size checked, and NAME.part renamed to NAME.  A refused connection, a
 * timeout or a cut connection retries the whole attempt with
 * exponential backoff; any other failure (host key, login, remote
 * directory, local file) fails at once.
 *
 * libssh2 does TCP, SSH, the host key, login and the channel; the SFTP
 * v3 conversation on the "sftp" subsystem channel is spoken here, for
 * two reasons.  libssh2 1.10 cuts every write into 30000-byte SFTP
 * requests, which costs the server a request (seek, write, reply) per
 * 30 kB: 8 times what OpenSSH's sftp asks of it with the server's
 * limit from limits@openssh.com (255 kB), and far below the 0.9x of
 * OpenSSH's throughput asked for.  And libssh2 does not offer
 * posix-rename@openssh.com, the atomic replace of an existing NAME;
 * without it (other servers) NAME is removed first, so the receiver
 * may see no file for an instant, never a partial one.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libssh2.h>

#include "sisfeed.h"

#define SFTP_PORT		22
#define SFTP_TIMEOUT		60		/* seconds, when unset */
#define RETRY_BASE_MS		1000		/* SISFEED_RETRY_BASE_MS */
#define RETRY_CAP_MS		60000
#define WINDOW_MIN		(512 * 1024)
#define WINDOW_LAN		(1024 * 1024)	/* round trip < 2 ms */
#define WINDOW_MAX		(2 * 1024 * 1024)	/* sshd's channel window */
#define SECRET_MAX		1024

/* SFTP v3 (draft-ietf-secsh-filexfer-02) and OpenSSH's extensions. */
#define FXP_INIT		1
#define FXP_VERSION		2
#define FXP_OPEN		3
#define FXP_CLOSE		4
#define FXP_WRITE		6
#define FXP_FSTAT		8
#define FXP_FSETSTAT		10
#define FXP_REMOVE		13
#define FXP_STAT		17
#define FXP_RENAME		18
#define FXP_STATUS		101
#define FXP_HANDLE		102
#define FXP_ATTRS		105
#define FXP_EXTENDED		200
#define FXP_EXTENDED_REPLY	201

#define FXF_WRITE		0x02
#define FXF_CREAT		0x08
#define FXF_TRUNC		0x10

#define ATTR_SIZE		0x01
#define ATTR_UIDGID		0x02
#define ATTR_PERMISSIONS	0x04
#define ATTR_ACMODTIME		0x08
#define ATTR_EXTENDED		0x80000000u

#define FX_OK			0
#define FX_EOF			1
#define FX_NO_SUCH_FILE		2
#define FX_PERMISSION_DENIED	3
#define FX_FAILURE		4
#define FX_BAD_MESSAGE		5
#define FX_NO_CONNECTION	6
#define FX_CONNECTION_LOST	7
#define FX_OP_UNSUPPORTED	8

#define SFTP_VERSION		3
#define SFTP_REPLY_MAX		(256 * 1024)	/* longest reply taken */
#define WRITE_DEFAULT		32768		/* without limits@ */
#define WRITE_MAX		(256 * 1024)
#define INFLIGHT_MAX		512		/* requests */
#define HANDLE_MAX		256

/* One connection and what the messages need to say about it. */
struct conn {
	const struct config	*cfg;
	const char		*host;
	const char		*user;
	const char		*identity;	/* or NULL */
	const char		*password_file;	/* or NULL */
	const char		*known_hosts;
	const char		*remote_dir;	/* NULL: the login directory */
	int			 port;
	int			 timeout;	/* seconds */
	char			 hostspec[300];	/* name in known_hosts */
	char			 where[400];	/* user@host:port */
	char			 hostkey[160];	/* "ssh-ed25519 SHA256:..." */
	char			 known_types[256]; /* in known_hosts */
	char			 method[600];	/* how we logged in */
	int			 fd;
	LIBSSH2_SESSION		*ssh;
	LIBSSH2_CHANNEL		*ch;		/* the sftp subsystem */
	int			 retry;		/* the failure may pass */

	/* the SFTP conversation */
	unsigned char		*out;		/* request being built */
	size_t			 outlen, outcap;
	unsigned char		*in;		/* replies read */
	size_t			 inlen, inoff, incap;
	uint32_t		 id;		/* of the next request */
	unsigned long		 fx;		/* last status, 0 if none */
	char			 fxmsg[128];	/* and its message */
	int			 oom;		/* building a request failed */
	size_t			 max_write;	/* data per WRITE */
	int			 posix_rename;	/* posix-rename@openssh.com */
	int			 statvfs;	/* statvfs@openssh.com */
	int			 noreplace;	/* delta mode: never replace */
	int			 mode;		/* of the delivered file */
	int64_t			 rtt;		/* ms, of a STAT */
};

/* A progress line on a terminal. */
struct progress {
	const char	*name;
	off_t		 total;
	int64_t		 start, last;	/* ms */
	int		 tty;
	int		 shown;
};

/* Host key types: libssh2's two numberings and the SSH name. */
static const struct {
	int		 hostkey;	/* LIBSSH2_HOSTKEY_TYPE_* */
	int		 known;		/* LIBSSH2_KNOWNHOST_KEY_* */
	const char	*name;
} keytypes[] = {
	{ LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519,
	    "ssh-ed25519" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256,
	    "ecdsa-sha2-nistp256" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384,
	    "ecdsa-sha2-nistp384" },
	{ LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521,
	    "ecdsa-sha2-nistp521" },
	{ LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "ssh-rsa" },
	{ LIBSSH2_HOSTKEY_TYPE_DSS, LIBSSH2_KNOWNHOST_KEY_SSHDSS, "ssh-dss" },
};
#define NKEYTYPES (sizeof(keytypes) / sizeof(keytypes[0]))

/* What a private key file holds, as far as we can tell. */
enum keykind { KEY_UNKNOWN, KEY_RSA, KEY_DSA, KEY_ECDSA, KEY_ED25519 };
struct keyinfo {
	enum keykind	 kind;
	int		 encrypted;	/* 1 yes, 0 no, -1 cannot tell */
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts, rem;
	int i;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	for (i = 0; i < 100 && nanosleep(&ts, &rem) == -1 &&
	    errno == EINTR; i++)
		ts = rem;
}

/* ------------------------------------------------------------------ */
/* base64 and key files                                               */

static size_t
b64_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
	unsigned int acc = 0, v;
	int bits = 0;
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		char ch = s[i];

		if (ch >= 'A' && ch <= 'Z')
			v = (unsigned int)(ch - 'A');
		else if (ch >= 'a' && ch <= 'z')
			v = (unsigned int)(ch - 'a') + 26;
		else if (ch >= '0' && ch <= '9')
			v = (unsigned int)(ch - '0') + 52;
		else if (ch == '+')
			v = 62;
		else if (ch == '/')
			v = 63;
		else if (ch == '=')
			break;
		else
			continue;
		acc = ((acc << 6) | v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n < cap)
				out[n++] = (unsigned char)(acc >> bits);
		}
	}
	return n;
}

static void
b64_encode_nopad(const unsigned char *in, size_t len, char *out,
    size_t cap)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned int acc = 0;
	int bits = 0;
	size_t i, n = 0;

	for (i = 0; i < len && n + 2 < cap; i++) {
		acc = ((acc << 8) | in[i]) & 0xffff;
		bits += 8;
		while (bits >= 6 && n + 1 < cap) {
			bits -= 6;
			out[n++] = tab[(acc >> bits) & 63];
		}
	}
	if (bits > 0 && n + 1 < cap)
		out[n++] = tab[(acc << (6 - bits)) & 63];
	out[n] = '\0';
}

/* Take one SSH "string" (uint32 length, bytes) off the front of a blob. */
static int
blob_string(const unsigned char **p, size_t *left,
    const unsigned char **s, size_t *slen)
{
	uint32_t n;

	if (*left < 4)
		return -1;
	n = (uint32_t)(*p)[0] << 24 | (uint32_t)(*p)[1] << 16 |
	    (uint32_t)(*p)[2] << 8 | (uint32_t)(*p)[3];
	if (n > *left - 4)
		return -1;
	*s = *p + 4;
	*slen = n;
	*p += 4 + n;
	*left -= 4 + n;
	return 0;
}

static int
blob_is(const unsigned char *s, size_t len, const char *str)
{
	return len == strlen(str) && memcmp(s, str, len) == 0;
}

static enum keykind
keykind_of_name(const unsigned char *s, size_t len)
{
	if (blob_is(s, len, "ssh-rsa"))
		return KEY_RSA;
	if (blob_is(s, len, "ssh-dss"))
		return KEY_DSA;
	if (blob_is(s, len, "ssh-ed25519"))
		return KEY_ED25519;
	if (len > 11 && memcmp(s, "ecdsa-sha2-", 11) == 0)
		return KEY_ECDSA;
	return KEY_UNKNOWN;
}

static int
mem_has(const unsigned char *hay, size_t len, const unsigned char *needle,
    size_t nlen)
{
	size_t i;

	for (i = 0; i + nlen <= len; i++)
		if (memcmp(hay + i, needle, nlen) == 0)
			return 1;
	return 0;
}

/* The new OpenSSH format: magic, cipher, kdf, kdf options, count, and
 * the first public key (unencrypted), whose first string is its type. */
static void
key_inspect_openssh(const unsigned char *der, size_t len,
    struct keyinfo *ki)
{
	static const char magic[] = "openssh-key-v1";
	const unsigned char *p = der, *s;
	size_t left = len, slen, pleft;

	if (len < sizeof(magic) || memcmp(der, magic, sizeof(magic)) != 0)
		return;
	p += sizeof(magic);
	left -= sizeof(magic);
	if (blob_string(&p, &left, &s, &slen) == -1)
		return;
	ki->encrypted = !blob_is(s, slen, "none");
	if (blob_string(&p, &left, &s, &slen) == -1 ||	/* kdf */
	    blob_string(&p, &left, &s, &slen) == -1 ||	/* kdf options */
	    left < 4)
		return;
	p += 4;						/* number of keys */
	left -= 4;
	if (blob_string(&p, &left, &s, &slen) == -1)
		return;
	pleft = slen;
	p = s;
	if (blob_string(&p, &pleft, &s, &slen) == -1)
		return;
	ki->kind = keykind_of_name(s, slen);
}

/* PKCS#8 "PRIVATE KEY": look for the algorithm's OID. */
static void
key_inspect_pkcs8(const unsigned char *der, size_t len, struct keyinfo *ki)
{
	static const unsigned char rsa[] = { 0x06, 0x09, 0x2a, 0x86, 0x48,
	    0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01 };
	static const unsigned char ec[] = { 0x06, 0x07, 0x2a, 0x86, 0x48,
	    0xce, 0x3d, 0x02, 0x01 };
	static const unsigned char ed[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };

	ki->encrypted = 0;
	if (mem_has(der, len, rsa, sizeof(rsa)))
		ki->kind = KEY_RSA;
	else if (mem_has(der, len, ec, sizeof(ec)))
		ki->kind = KEY_ECDSA;
	else if (mem_has(der, len, ed, sizeof(ed)))
		ki->kind = KEY_ED25519;
}

/*
 * Find out a private key file's type and whether it is encrypted,
 * without decrypting it: for messages only.  Never fails; what cannot
 * be told stays KEY_UNKNOWN / -1.
 */
static void
key_inspect(const char *path, struct keyinfo *ki)
{
	char text[16384];
	unsigned char der[12288];
	const char *b, *e;
	size_t len = 0, dlen;
	ssize_t n;
	int fd;

	ki->kind = KEY_UNKNOWN;
	ki->encrypted = -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	while (len < sizeof(text) - 1 &&
	    (n = read(fd, text + len, sizeof(text) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	text[len] = '\0';

	if ((b = strstr(text, "-----BEGIN ")) == NULL ||
	    (e = strstr(b + 11, "-----")) == NULL)
		goto out;
	if (strncmp(b, "-----BEGIN RSA PRIVATE KEY-----", 31) == 0) {
		ki->kind = KEY_RSA;
		ki->encrypted = strstr(text, "ENCRYPTED") != NULL;
	} else if (strncmp(b, "-----BEGIN EC PRIVATE KEY-----", 30) == 0) {
		ki->kind = KEY_ECDSA;
		ki->encrypted = strstr(text, "ENCRYPTED") != NULL;
	} else if (strncmp(b, "-----BEGIN DSA PRIVATE KEY-----", 31) == 0) {
		ki->kind = KEY_DSA;
		ki->encrypted = strstr(text, "ENCRYPTED") != NULL;
	} else if (strncmp(b, "-----BEGIN ENCRYPTED PRIVATE KEY-----",
	    37) == 0) {
		ki->encrypted = 1;
	} else {
		b = e + 5;
		if ((e = strstr(b, "-----END")) == NULL)
			goto out;
		dlen = b64_decode(b, (size_t)(e - b), der, sizeof(der));
		if (strstr(text, "BEGIN OPENSSH PRIVATE KEY") != NULL)
			key_inspect_openssh(der, dlen, ki);
		else if (strstr(text, "BEGIN PRIVATE KEY") != NULL)
			key_inspect_pkcs8(der, dlen, ki);
		explicit_bzero(der, sizeof(der));
	}
out:
	explicit_bzero(text, sizeof(text));
}

/* ------------------------------------------------------------------ */
/* secrets                                                            */

/* A key or secret file must be a regular file no one else can read. */
static int
secret_mode_ok(const char *path, const char *what)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return error_sys("sftp: %s %s", what, path);
	if (!S_ISREG(st.st_mode))
		return error_set("sftp: %s %s is not a regular file", what,
		    path);
	if (st.st_mode & 077)
		return error_set("sftp: %s %s is accessible by group or "
		    "others (mode %04o); refusing to use it (chmod 600 %s)",
		    what, path, (unsigned int)(st.st_mode & 07777), path);
	return 0;
}

/* Read the first line of a secret file into buf (NUL-terminated). */
static int
secret_read(const char *path, const char *what, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;
	int fd;

	if (secret_mode_ok(path, what) == -1)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return error_sys("sftp: %s %s", what, path);
	while (len < cap - 1 &&
	    (n = read(fd, buf + len, cap - 1 - len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			error_sys("sftp: %s %s", what, path);
			close(fd);
			explicit_bzero(buf, cap);
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0')
		return error_set("sftp: %s %s is empty", what, path);
	if (strlen(buf) == cap - 1) {
		explicit_bzero(buf, cap);
		return error_set("sftp: %s %s: first line too long", what,
		    path);
	}
	return 0;
}

/* The key's passphrase: passphrase_file, else SISFEED_SFTP_PASSPHRASE.
 * *have is 0 when there is none. */
static int
passphrase_get(const struct conn *c, char *buf, size_t cap, int *have)
{
	const char *pf = c->cfg->delivery.s.passphrase_file, *env;

	*have = 0;
	buf[0] = '\0';
	if (pf != NULL && *pf != '\0') {
		if (secret_read(pf, "passphrase file", buf, cap) == -1)
			return -1;
		*have = 1;
		return 0;
	}
	if ((env = getenv("SISFEED_SFTP_PASSPHRASE")) != NULL &&
	    *env != '\0') {
		if (strlen(env) >= cap)
			return error_set("sftp: SISFEED_SFTP_PASSPHRASE is "
			    "too long");
		memcpy(buf, env, strlen(env) + 1);
		*have = 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* errors                                                             */

/* 1 if a libssh2 error means the connection failed, not the request. */
static int
transient(int rc)
{
	switch (rc) {
	case LIBSSH2_ERROR_SOCKET_NONE:
	case LIBSSH2_ERROR_BANNER_RECV:
	case LIBSSH2_ERROR_BANNER_SEND:
	case LIBSSH2_ERROR_SOCKET_SEND:
	case LIBSSH2_ERROR_TIMEOUT:
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
	case LIBSSH2_ERROR_CHANNEL_CLOSED:
	case LIBSSH2_ERROR_CHANNEL_EOF_SENT:
	case LIBSSH2_ERROR_SOCKET_TIMEOUT:
	case LIBSSH2_ERROR_SOCKET_RECV:
	case LIBSSH2_ERROR_EAGAIN:
		return 1;
	default:
		return 0;
	}
}

/* Record libssh2's error rc for what we were doing (what, path). */
static int
ssh_fail(struct conn *c, int rc, const char *what, const char *path)
{
	char *msg = NULL;
	const char *sep = path != NULL ? " " : "";

	if (path == NULL)
		path = "";
	if (c->ssh != NULL && rc == 0)
		rc = libssh2_session_last_error(c->ssh, &msg, NULL, 0);
	else if (c->ssh != NULL)
		libssh2_session_last_error(c->ssh, &msg, NULL, 0);
	c->retry = transient(rc);
	if (rc == LIBSSH2_ERROR_TIMEOUT || rc == LIBSSH2_ERROR_SOCKET_TIMEOUT)
		return error_set("sftp: %s: %s%s%s: timed out after %d s",
		    c->where, what, sep, path, c->timeout);
	if (c->retry)
		return error_set("sftp: %s: %s%s%s: connection lost (%s)",
		    c->where, what, sep, path,
		    msg != NULL && *msg != '\0' ? msg : "no message");
	return error_set("sftp: %s: %s%s%s: %s", c->where, what, sep, path,
	    msg != NULL && *msg != '\0' ? msg : "unknown error");
}

/* ------------------------------------------------------------------ */
/* connection                                                         */

/* Take the settings from cfg; -1 when something needed is missing. */
static int
conn_setup(struct conn *c, const struct config *cfg)
{
	const char *host = cfg->delivery.s.host;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->cfg = cfg;
	if (!cfg->delivery.sftp)
		return error_set("sftp: delivery.sftp is not configured");
	if (host == NULL || *host == '\0')
		return error_set("sftp: delivery.sftp.host is not set");
	if (cfg->delivery.s.user == NULL || *cfg->delivery.s.user == '\0')
		return error_set("sftp: delivery.sftp.user is not set");
	if (cfg->delivery.s.known_hosts == NULL ||
	    *cfg->delivery.s.known_hosts == '\0')
		return error_set("sftp: delivery.sftp.known_hosts is not set");
	c->host = host;
	c->user = cfg->delivery.s.user;
	c->known_hosts = cfg->delivery.s.known_hosts;
	if (cfg->delivery.s.identity != NULL && *cfg->delivery.s.identity)
		c->identity = cfg->delivery.s.identity;
	if (cfg->delivery.s.password_file != NULL &&
	    *cfg->delivery.s.password_file)
		c->password_file = cfg->delivery.s.password_file;
	if (c->identity == NULL && c->password_file == NULL)
		return error_set("sftp: set delivery.sftp.identity (a private "
		    "key file) or delivery.sftp.password_file");
	if (cfg->delivery.s.remote_dir != NULL && *cfg->delivery.s.remote_dir)
		c->remote_dir = cfg->delivery.s.remote_dir;
	c->port = cfg->delivery.s.port > 0 ? cfg->delivery.s.port : SFTP_PORT;
	if (c->port > 65535)
		return error_set("sftp: delivery.sftp.port %d is out of range",
		    c->port);
	c->timeout = cfg->delivery.s.timeout > 0 ? cfg->delivery.s.timeout :
	    SFTP_TIMEOUT;
	if (c->port == SFTP_PORT)
		snprintf(c->hostspec, sizeof(c->hostspec), "%s", host);
	else
		snprintf(c->hostspec, sizeof(c->hostspec), "[%s]:%d", host,
		    c->port);
	if (strchr(host, ':') != NULL)
		snprintf(c->where, sizeof(c->where), "%s@[%s]:%d", c->user,
		    host, c->port);
	else
		snprintf(c->where, sizeof(c->where), "%s@%s:%d", c->user,
		    host, c->port);
	return 0;
}

/* Connect to one address, giving up at deadline.  fd, or -1 with
 * *err set. */
static int
connect_one(const struct addrinfo *ai, int64_t deadline, int *err)
{
	struct pollfd pfd;
	socklen_t sl = sizeof(int);
	int fd, flags, soerr = 0, rc;
	int64_t left;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
	    ai->ai_protocol);
	if (fd == -1) {
		*err = errno;
		return -1;
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		goto fail;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
		if (errno != EINPROGRESS)
			goto fail;
		for (;;) {
			if ((left = deadline - now_ms()) <= 0) {
				errno = ETIMEDOUT;
				goto fail;
			}
			pfd.fd = fd;
			pfd.events = POLLOUT;
			rc = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX :
			    (int)left);
			if (rc == -1 && errno == EINTR)
				continue;
			if (rc == -1)
				goto fail;
			if (rc == 0) {
				errno = ETIMEDOUT;
				goto fail;
			}
			break;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1)
			goto fail;
		if (soerr != 0) {
			errno = soerr;
			goto fail;
		}
	}
	if (fcntl(fd, F_SETFL, flags) == -1)
		goto fail;
	return fd;
fail:
	*err = errno;
	close(fd);
	return -1;
}

/* TCP connect to host:port within the timeout.  0 or -1. */
static int
tcp_connect(struct conn *c)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[16];
	int rc, err = 0, fd = -1;
	int64_t deadline = now_ms() + (int64_t)c->timeout * 1000;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", c->port);
	if ((rc = getaddrinfo(c->host, port, &hints, &res)) != 0) {
		c->retry = rc == EAI_AGAIN;
		return error_set("sftp: cannot resolve %s: %s", c->host,
		    gai_strerror(rc));
	}
	for (ai = res; ai != NULL && fd == -1; ai = ai->ai_next)
		fd = connect_one(ai, deadline, &err);
	freeaddrinfo(res);
	if (fd == -1) {
		c->retry = 1;
		if (err == ETIMEDOUT)
			return error_set("sftp: connect to %s port %d: timed "
			    "out after %d s", c->host, c->port, c->timeout);
		errno = err;
		return error_sys("sftp: connect to %s port %d", c->host,
		    c->port);
	}
	c->fd = fd;
	return 0;
}

/* Read known_hosts (a missing file is empty; *missing says so). */
static int
known_hosts_load(struct conn *c, LIBSSH2_KNOWNHOSTS **khp, int *missing)
{
	LIBSSH2_KNOWNHOSTS *kh;
	struct stat st;

	*missing = 0;
	if ((kh = libssh2_knownhost_init(c->ssh)) == NULL)
		return ssh_fail(c, 0, "known hosts", NULL);
	if (stat(c->known_hosts, &st) == -1) {
		if (errno != ENOENT) {
			libssh2_knownhost_free(kh);
			return error_sys("sftp: known_hosts %s",
			    c->known_hosts);
		}
		*missing = 1;
	} else if (libssh2_knownhost_readfile(kh, c->known_hosts,
	    LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
		char *msg = NULL;

		libssh2_session_last_error(c->ssh, &msg, NULL, 0);
		libssh2_knownhost_free(kh);
		return error_set("sftp: cannot read known_hosts %s: %s",
		    c->known_hosts, msg != NULL ? msg : "unknown error");
	}
	*khp = kh;
	return 0;
}

/*
 * Ask the server for a host key of a type known_hosts has for this
 * host, so a server with several keys shows one we can check.  A
 * lookup with a dummy key answers MISMATCH exactly when an entry of
 * that type exists (hashed names included).
 */
static void
hostkey_prefer_known(struct conn *c, LIBSSH2_KNOWNHOSTS *kh)
{
	char list[256];
	size_t i, len = 0;
	int rc;

	list[0] = '\0';
	for (i = 0; i < NKEYTYPES; i++) {
		rc = libssh2_knownhost_checkp(kh, c->hostspec, -1, "x", 1,
		    LIBSSH2_KNOWNHOST_TYPE_PLAIN |
		    LIBSSH2_KNOWNHOST_KEYENC_RAW | keytypes[i].known, NULL);
		if (rc != LIBSSH2_KNOWNHOST_CHECK_MISMATCH)
			continue;
		len += (size_t)snprintf(list + len, sizeof(list) - len,
		    "%s%s", len ? "," : "", keytypes[i].name);
	}
	if (len > 0 && len < sizeof(list)) {
		(void)libssh2_session_method_pref(c->ssh,
		    LIBSSH2_METHOD_HOSTKEY, list);
		snprintf(c->known_types, sizeof(c->known_types), "%s", list);
	}
}

/* Describe the server's key: "TYPE SHA256:base64" into c->hostkey. */
static void
hostkey_describe(struct conn *c, const char *key, size_t len)
{
	const unsigned char *p = (const unsigned char *)key, *s;
	const char *hash;
	char type[64] = "unknown-key-type", fp[64] = "?";
	size_t left = len, slen;

	if (blob_string(&p, &left, &s, &slen) == 0 && slen < sizeof(type)) {
		memcpy(type, s, slen);
		type[slen] = '\0';
	}
	hash = libssh2_hostkey_hash(c->ssh, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (hash != NULL)
		b64_encode_nopad((const unsigned char *)hash, 32, fp,
		    sizeof(fp));
	snprintf(c->hostkey, sizeof(c->hostkey), "%s SHA256:%s", type, fp);
}

/* Check the server's key against known_hosts.  0 only on a match. */
static int
hostkey_verify(struct conn *c, LIBSSH2_KNOWNHOSTS *kh, int missing)
{
	const char *key;
	size_t len, i;
	int type, mask = LIBSSH2_KNOWNHOST_KEY_UNKNOWN, rc;

	c->retry = 0;
	if ((key = libssh2_session_hostkey(c->ssh, &len, &type)) == NULL)
		return ssh_fail(c, 0, "host key", NULL);
	hostkey_describe(c, key, len);
	for (i = 0; i < NKEYTYPES; i++)
		if (keytypes[i].hostkey == type)
			mask = keytypes[i].known;
	rc = libssh2_knownhost_checkp(kh, c->hostspec, -1, key, len,
	    LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
	    mask, NULL);
	switch (rc) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		return 0;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		return error_set("sftp: HOST KEY CHANGED for %s: the server "
		    "offers %s, which does not match the key in %s; refusing "
		    "to connect (this can be an attack). Only if the server's "
		    "administrator confirms this fingerprint, replace the "
		    "entry: ssh-keygen -R '%s' -f %s && ssh-keyscan -p %d %s "
		    ">> %s", c->hostspec, c->hostkey, c->known_hosts,
		    c->hostspec, c->known_hosts, c->port, c->host,
		    c->known_hosts);
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		return error_set("sftp: the host key of %s is not in %s%s; "
		    "refusing to connect. The server offers %s. Check this "
		    "fingerprint with the server's administrator, then add "
		    "the key with: ssh-keyscan -p %d %s >> %s", c->hostspec,
		    c->known_hosts, missing ? " (no such file)" : "",
		    c->hostkey, c->port, c->host, c->known_hosts);
	default:
		return error_set("sftp: cannot check the host key of %s (%s) "
		    "against %s", c->hostspec, c->hostkey, c->known_hosts);
	}
}

/* Log in with the private key.  0 or -1. */
static int
auth_key(struct conn *c)
{
	char pass[SECRET_MAX];
	struct keyinfo ki;
	int have, rc;

	if (secret_mode_ok(c->identity, "private key") == -1 ||
	    passphrase_get(c, pass, sizeof(pass), &have) == -1)
		return -1;
	key_inspect(c->identity, &ki);
	if (ki.encrypted == 1 && !have)
		return error_set("sftp: private key %s is encrypted and no "
		    "passphrase is set (delivery.sftp.passphrase_file or "
		    "SISFEED_SFTP_PASSPHRASE)", c->identity);
	rc = libssh2_userauth_publickey_fromfile(c->ssh, c->user, NULL,
	    c->identity, have ? pass : NULL);
	explicit_bzero(pass, sizeof(pass));
	if (rc == 0) {
		snprintf(c->method, sizeof(c->method), "key %s",
		    c->identity);
		return 0;
	}
	if (transient(rc))
		return ssh_fail(c, rc, "login", NULL);
	if (rc == LIBSSH2_ERROR_FILE)
		return error_set("sftp: cannot load private key %s: %s",
		    c->identity, ki.encrypted == 1 ? "wrong passphrase?" :
		    "not a key, or a format libssh2 1.10 cannot read");
	if (ki.kind == KEY_RSA)
		return error_set("sftp: %s refused RSA key %s: Debian 12's "
		    "libssh2 (1.10) cannot sign with rsa-sha2-256/512, which "
		    "OpenSSH servers require for RSA keys by default; use an "
		    "ed25519 key instead (ssh-keygen -t ed25519)", c->where,
		    c->identity);
	return error_set("sftp: %s refused key %s (is the user name right, "
	    "and is the public key in that user's authorized_keys?)",
	    c->where, c->identity);
}

/* Log in with the password from password_file.  0 or -1. */
static int
auth_password(struct conn *c)
{
	char pw[SECRET_MAX];
	int rc;

	if (secret_read(c->password_file, "password file", pw,
	    sizeof(pw)) == -1)
		return -1;
	rc = libssh2_userauth_password(c->ssh, c->user, pw);
	explicit_bzero(pw, sizeof(pw));
	if (rc == 0) {
		snprintf(c->method, sizeof(c->method), "password from %s",
		    c->password_file);
		return 0;
	}
	if (transient(rc))
		return ssh_fail(c, rc, "login", NULL);
	if (rc == LIBSSH2_ERROR_PASSWORD_EXPIRED)
		return error_set("sftp: %s: the password has expired",
		    c->where);
	return error_set("sftp: %s refused the password from %s (is the "
	    "user name right?)", c->where, c->password_file);
}

/* What the keyboard-interactive callback answers with and saw. */
struct kbdint {
	const char	*password;
	int		 rounds;	/* info requests with prompts */
	int		 answered;	/* prompts given the password */
	int		 unanswered;	/* prompts not given it */
	char		 prompt[80];	/* the first unanswered one */
};

/* Copy a server's prompt into buf, printable ASCII only. */
static void
prompt_copy(char *buf, size_t cap, const char *text, unsigned int len)
{
	size_t i, n = 0;

	for (i = 0; i < len && n + 1 < cap; i++)
		buf[n++] = text[i] >= 0x20 && text[i] < 0x7f ? text[i] : '?';
	buf[n] = '\0';
}

/*
 * libssh2's keyboard-interactive callback: the password goes to the
 * prompts of the first request that are not echoed (how a password
 * is asked for); a prompt that is echoed, or any prompt of a later
 * request (a one-time code, a new password), gets an empty answer so
 * that the password never goes where it was not asked for.
 */
static void
kbdint_answer(const char *name, int name_len, const char *instruction,
    int instruction_len, int num_prompts,
    const LIBSSH2_USERAUTH_KBDINT_PROMPT *prompts,
    LIBSSH2_USERAUTH_KBDINT_RESPONSE *responses, void **abstract)
{
	struct kbdint *k = *abstract;
	const char *give;
	int i;

	(void)name;
	(void)name_len;
	(void)instruction;
	(void)instruction_len;
	if (num_prompts > 0)
		k->rounds++;
	for (i = 0; i < num_prompts; i++) {
		give = "";
		if (k->rounds == 1 && !prompts[i].echo)
			give = k->password;
		if (give == k->password)
			k->answered++;
		else if (k->unanswered++ == 0)
			prompt_copy(k->prompt, sizeof(k->prompt),
			    prompts[i].text, prompts[i].length);
		responses[i].text = strdup(give);
		responses[i].length = responses[i].text != NULL ?
		    (unsigned int)strlen(give) : 0;
	}
}

/*
 * Log in by keyboard-interactive with the password from password_file,
 * for servers (SFTP gateways) that take passwords only that way.
 * 0 or -1.
 */
static int
auth_kbdint(struct conn *c)
{
	char pw[SECRET_MAX];
	struct kbdint k;
	void **abstract;
	int rc;

	if (secret_read(c->password_file, "password file", pw,
	    sizeof(pw)) == -1)
		return -1;
	memset(&k, 0, sizeof(k));
	k.password = pw;
	abstract = libssh2_session_abstract(c->ssh);
	*abstract = &k;
	rc = libssh2_userauth_keyboard_interactive(c->ssh, c->user,
	    kbdint_answer);
	*abstract = NULL;
	explicit_bzero(pw, sizeof(pw));
	if (rc == 0) {
		snprintf(c->method, sizeof(c->method), "keyboard-interactive, "
		    "password from %s", c->password_file);
		return 0;
	}
	if (transient(rc))
		return ssh_fail(c, rc, "login", NULL);
	if (k.unanswered > 0)
		return error_set("sftp: %s refused the keyboard-interactive "
		    "login: besides the password it asked \"%s\", which "
		    "sisfeed cannot answer (a one-time code or a new "
		    "password?); ask for a key or a password-only login",
		    c->where, k.prompt);
	if (k.answered == 0)
		return error_set("sftp: %s refused the keyboard-interactive "
		    "login without asking for a password", c->where);
	return error_set("sftp: %s refused the password from %s by "
	    "keyboard-interactive (is the user name right?)", c->where,
	    c->password_file);
}

/* 1 if the comma-separated list methods holds method. */
static int
offers(const char *methods, const char *method)
{
	size_t n = strlen(method);
	const char *p = methods;

	while (*p != '\0') {
		if (strncmp(p, method, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return 1;
		p += strcspn(p, ",");
		p += *p == ',';
	}
	return 0;
}

/*
 * Log in by key, then by password, as configured and offered: the
 * password by the "password" method, or by keyboard-interactive when
 * the server does not offer "password".
 */
static int
auth(struct conn *c)
{
	char methods[256];
	const char *m;
	int rc;

	m = libssh2_userauth_list(c->ssh, c->user,
	    (unsigned int)strlen(c->user));
	if (m == NULL) {
		if (libssh2_userauth_authenticated(c->ssh)) {
			snprintf(c->method, sizeof(c->method), "no "
			    "authentication");
			return 0;
		}
		return ssh_fail(c, 0, "login", NULL);
	}
	snprintf(methods, sizeof(methods), "%s", m);
	if (c->identity != NULL && offers(methods, "publickey")) {
		if ((rc = auth_key(c)) == 0 || c->retry ||
		    c->password_file == NULL)
			return rc;
	} else if (c->identity != NULL && c->password_file == NULL)
		return error_set("sftp: %s does not accept keys (it offers: "
		    "%s)", c->where, methods);
	if (offers(methods, "password"))
		return auth_password(c);
	if (offers(methods, "keyboard-interactive"))
		return auth_kbdint(c);
	return error_set("sftp: %s does not accept passwords (it offers: "
	    "%s)", c->where, methods);
}

/* Print "ok   sftp STEP" or "FAIL sftp STEP: why" to fp, if any (the
 * format of sisfeed check). */
static int
check_line(FILE *fp, int rc, const char *fmt, ...) PRINTF_LIKE(3, 4);

static int
check_line(FILE *fp, int rc, const char *fmt, ...)
{
	const char *e = error_last();
	va_list ap;

	if (fp == NULL)
		return rc;
	if (strncmp(e, "sftp: ", 6) == 0)
		e += 6;
	fputs(rc == 0 ? "ok   sftp " : "FAIL sftp ", fp);
	va_start(ap, fmt);
	vfprintf(fp, fmt, ap);
	va_end(ap);
	if (rc == 0)
		fputc('\n', fp);
	else
		fprintf(fp, ": %s\n", e);
	fflush(fp);
	return rc;
}


/* ------------------------------------------------------------------ */
/* SFTP v3 on the channel                                             */

/* A reply being taken apart. */
struct rd {
	const unsigned char	*p;
	size_t			 left;
};

/* A file's attributes, as far as we use them. */
struct fattr {
	uint32_t	 flags;
	uint64_t	 size;
	uint32_t	 perm;
};

/* A WRITE waiting for its reply. */
struct inflight {
	uint32_t	 id;
	uint32_t	 len;
};

static void
be32enc(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void
be64enc(unsigned char *p, uint64_t v)
{
	be32enc(p, (uint32_t)(v >> 32));
	be32enc(p + 4, (uint32_t)v);
}

static uint32_t
be32dec(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static const char *
fx_text(unsigned long fx)
{
	switch (fx) {
	case FX_EOF:
		return "end of file";
	case FX_NO_SUCH_FILE:
		return "no such file or directory";
	case FX_PERMISSION_DENIED:
		return "permission denied";
	case FX_FAILURE:
		return "failure";
	case FX_BAD_MESSAGE:
		return "bad message";
	case FX_NO_CONNECTION:
		return "no connection";
	case FX_CONNECTION_LOST:
		return "connection lost";
	case FX_OP_UNSUPPORTED:
		return "operation not supported by the server";
	default:
		return "error";
	}
}

/* Append n bytes to the request being built (c->oom on no memory). */
static void
put_bytes(struct conn *c, const void *p, size_t n)
{
	unsigned char *np;
	size_t cap;

	if (c->outcap - c->outlen < n) {
		cap = c->outcap > 0 ? c->outcap : 1024;
		while (cap - c->outlen < n)
			cap *= 2;
		if ((np = realloc(c->out, cap)) == NULL) {
			c->oom = 1;
			return;
		}
		c->out = np;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, p, n);
	c->outlen += n;
}

static void
put_u8(struct conn *c, unsigned int v)
{
	unsigned char b = (unsigned char)v;

	put_bytes(c, &b, 1);
}

static void
put_u32(struct conn *c, uint32_t v)
{
	unsigned char b[4];

	be32enc(b, v);
	put_bytes(c, b, 4);
}

static void
put_u64(struct conn *c, uint64_t v)
{
	unsigned char b[8];

	be64enc(b, v);
	put_bytes(c, b, 8);
}

static void
put_str(struct conn *c, const void *s, size_t n)
{
	put_u32(c, (uint32_t)n);
	put_bytes(c, s, n);
}

static void
put_cstr(struct conn *c, const char *s)
{
	put_str(c, s, strlen(s));
}

static int
get_u32(struct rd *r, uint32_t *v)
{
	if (r->left < 4)
		return -1;
	*v = be32dec(r->p);
	r->p += 4;
	r->left -= 4;
	return 0;
}

static int
get_u64(struct rd *r, uint64_t *v)
{
	uint32_t hi, lo;

	if (get_u32(r, &hi) == -1 || get_u32(r, &lo) == -1)
		return -1;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

static int
get_str(struct rd *r, const unsigned char **s, size_t *n)
{
	return blob_string(&r->p, &r->left, s, n);
}

/* Start a request of this type; returns its id (INIT has none). */
static uint32_t
req_begin(struct conn *c, unsigned int type)
{
	c->outlen = 0;
	c->oom = 0;
	c->fx = FX_OK;
	c->fxmsg[0] = '\0';
	put_u32(c, 0);			/* the length, set by req_send */
	put_u8(c, type);
	if (type == FXP_INIT)
		return 0;
	put_u32(c, c->id);
	return c->id++;
}

/* Send len bytes on the channel. */
static int
sx_send(struct conn *c, const unsigned char *p, size_t len)
{
	ssize_t n;
	int idle = 0;

	while (len > 0) {
		n = libssh2_channel_write(c->ch, (const char *)p, len);
		if (n < 0)
			return ssh_fail(c, (int)n, "SFTP send", NULL);
		if (n == 0 && ++idle > 1000) {
			c->retry = 1;
			return error_set("sftp: %s: the SFTP channel takes no "
			    "data", c->where);
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Send the request built since req_begin. */
static int
req_send(struct conn *c)
{
	if (c->oom) {
		c->retry = 0;
		return error_set("sftp: out of memory");
	}
	be32enc(c->out, (uint32_t)(c->outlen - 4));
	return sx_send(c, c->out, c->outlen);
}

/* Have at least need bytes of replies in c->in. */
static int
sx_fill(struct conn *c, size_t need)
{
	unsigned char *p;
	size_t cap;
	ssize_t n;

	if (c->incap < need) {
		cap = c->incap > 0 ? c->incap : 65536;
		while (cap < need)
			cap *= 2;
		if ((p = realloc(c->in, cap)) == NULL) {
			c->retry = 0;
			return error_set("sftp: out of memory");
		}
		c->in = p;
		c->incap = cap;
	}
	while (c->inlen < need) {
		n = libssh2_channel_read(c->ch, (char *)c->in + c->inlen,
		    c->incap - c->inlen);
		if (n < 0)
			return ssh_fail(c, (int)n, "SFTP receive", NULL);
		if (n == 0) {
			c->retry = 1;
			return error_set("sftp: %s: connection lost (the "
			    "server closed the SFTP channel)", c->where);
		}
		c->inlen += (size_t)n;
	}
	return 0;
}

/* Read the next reply: its type, and the rest of it in r. */
static int
sx_recv(struct conn *c, unsigned int *type, struct rd *r)
{
	uint32_t len;

	if (c->inoff > 0) {
		memmove(c->in, c->in + c->inoff, c->inlen - c->inoff);
		c->inlen -= c->inoff;
		c->inoff = 0;
	}
	if (sx_fill(c, 4) == -1)
		return -1;
	len = be32dec(c->in);
	if (len < 1 || len > SFTP_REPLY_MAX) {
		c->retry = 0;
		return error_set("sftp: %s: bad SFTP reply (length %lu)",
		    c->where, (unsigned long)len);
	}
	if (sx_fill(c, 4 + (size_t)len) == -1)
		return -1;
	*type = c->in[4];
	r->p = c->in + 5;
	r->left = len - 1;
	c->inoff = 4 + (size_t)len;
	return 0;
}

static int
bad_reply(struct conn *c, const char *what)
{
	c->retry = 0;
	return error_set("sftp: %s: %s: malformed SFTP reply", c->where, what);
}

/* Send the request and read its reply, whose id must be id. */
static int
sx_call(struct conn *c, uint32_t id, unsigned int *type, struct rd *r,
    const char *what)
{
	uint32_t rid;

	if (req_send(c) == -1 || sx_recv(c, type, r) == -1)
		return -1;
	if (get_u32(r, &rid) == -1 || rid != id)
		return bad_reply(c, what);
	return 0;
}

/* Take a STATUS body (after the id) into c->fx, c->fxmsg. */
static unsigned long
sx_status(struct conn *c, struct rd *r)
{
	const unsigned char *m;
	size_t n, i, j = 0;
	uint32_t code;

	if (get_u32(r, &code) == -1)
		code = FX_BAD_MESSAGE;
	c->fx = code;
	c->fxmsg[0] = '\0';
	if (get_str(r, &m, &n) == 0)
		for (i = 0; i < n && j < sizeof(c->fxmsg) - 1; i++)
			if (m[i] >= 0x20 && m[i] < 0x7f)
				c->fxmsg[j++] = (char)m[i];
	c->fxmsg[j] = '\0';
	return code;
}

/* Record what the server refused: "what path: reason". */
static int
sx_fail(struct conn *c, const char *what, const char *path)
{
	c->retry = c->fx == FX_NO_CONNECTION || c->fx == FX_CONNECTION_LOST;
	if ((c->fx == FX_FAILURE || c->fx > FX_OP_UNSUPPORTED) &&
	    c->fxmsg[0] != '\0')
		return error_set("sftp: %s: %s %s: %s (SFTP status %lu: %s)",
		    c->where, what, path, fx_text(c->fx), c->fx, c->fxmsg);
	return error_set("sftp: %s: %s %s: %s", c->where, what, path,
	    fx_text(c->fx));
}

/* Send a request whose reply is a STATUS; 0 when it is OK. */
static int
sx_status_call(struct conn *c, uint32_t id, const char *what,
    const char *path)
{
	struct rd r;
	unsigned int type;

	if (sx_call(c, id, &type, &r, what) == -1)
		return -1;
	if (type != FXP_STATUS)
		return bad_reply(c, what);
	if (sx_status(c, &r) != FX_OK)
		return sx_fail(c, what, path);
	return 0;
}

static int
get_attrs(struct rd *r, struct fattr *a)
{
	const unsigned char *s;
	uint32_t skip, n, i;
	size_t sl;

	memset(a, 0, sizeof(*a));
	if (get_u32(r, &a->flags) == -1)
		return -1;
	if ((a->flags & ATTR_SIZE) && get_u64(r, &a->size) == -1)
		return -1;
	if ((a->flags & ATTR_UIDGID) &&
	    (get_u32(r, &skip) == -1 || get_u32(r, &skip) == -1))
		return -1;
	if ((a->flags & ATTR_PERMISSIONS) && get_u32(r, &a->perm) == -1)
		return -1;
	if ((a->flags & ATTR_ACMODTIME) &&
	    (get_u32(r, &skip) == -1 || get_u32(r, &skip) == -1))
		return -1;
	if (a->flags & ATTR_EXTENDED) {
		if (get_u32(r, &n) == -1)
			return -1;
		for (i = 0; i < n; i++)
			if (get_str(r, &s, &sl) == -1 ||
			    get_str(r, &s, &sl) == -1)
				return -1;
	}
	return 0;
}

/* The reply to STAT or FSTAT into a; -1 (c->fx set) if refused. */
static int
sx_attrs_reply(struct conn *c, uint32_t id, const char *path,
    struct fattr *a)
{
	struct rd r;
	unsigned int type;

	if (sx_call(c, id, &type, &r, "stat") == -1)
		return -1;
	if (type == FXP_STATUS) {
		if (sx_status(c, &r) == FX_OK)
			return bad_reply(c, "stat");
		return sx_fail(c, "cannot stat", path);
	}
	if (type != FXP_ATTRS || get_attrs(&r, a) == -1)
		return bad_reply(c, "stat");
	return 0;
}

static int
sx_stat(struct conn *c, const char *path, struct fattr *a)
{
	uint32_t id = req_begin(c, FXP_STAT);

	put_cstr(c, path);
	return sx_attrs_reply(c, id, path, a);
}

static int
sx_fstat(struct conn *c, const unsigned char *h, size_t hlen,
    const char *path, struct fattr *a)
{
	uint32_t id = req_begin(c, FXP_FSTAT);

	put_str(c, h, hlen);
	return sx_attrs_reply(c, id, path, a);
}

/* Open path for writing: created with mode perm, or truncated. */
static int
sx_open(struct conn *c, const char *path, uint32_t perm, unsigned char *h,
    size_t *hlen)
{
	const unsigned char *s;
	struct rd r;
	unsigned int type;
	uint32_t id = req_begin(c, FXP_OPEN);
	size_t n;

	put_cstr(c, path);
	put_u32(c, FXF_WRITE | FXF_CREAT | FXF_TRUNC);
	put_u32(c, ATTR_PERMISSIONS);
	put_u32(c, perm);
	if (sx_call(c, id, &type, &r, "open") == -1)
		return -1;
	if (type == FXP_STATUS) {
		if (sx_status(c, &r) == FX_OK)
			return bad_reply(c, "open");
		return sx_fail(c, "cannot create", path);
	}
	if (type != FXP_HANDLE || get_str(&r, &s, &n) == -1 || n == 0 ||
	    n > HANDLE_MAX)
		return bad_reply(c, "open");
	memcpy(h, s, n);
	*hlen = n;
	return 0;
}

/* Set the mode of an open file (c->fx set when the server says no). */
static int
sx_fchmod(struct conn *c, const unsigned char *h, size_t hlen,
    const char *path, uint32_t perm)
{
	uint32_t id = req_begin(c, FXP_FSETSTAT);

	put_str(c, h, hlen);
	put_u32(c, ATTR_PERMISSIONS);
	put_u32(c, perm);
	return sx_status_call(c, id, "cannot chmod", path);
}

static int
sx_close(struct conn *c, const unsigned char *h, size_t hlen,
    const char *path)
{
	uint32_t id = req_begin(c, FXP_CLOSE);

	put_str(c, h, hlen);
	return sx_status_call(c, id, "cannot close", path);
}

static int
sx_remove(struct conn *c, const char *path)
{
	uint32_t id = req_begin(c, FXP_REMOVE);

	put_cstr(c, path);
	return sx_status_call(c, id, "cannot remove", path);
}

/* Rename from to to; replacing to atomically where the server has
 * posix-rename@openssh.com. */
static int
sx_rename(struct conn *c, const char *from, const char *to)
{
	uint32_t id;

	if (c->posix_rename) {
		id = req_begin(c, FXP_EXTENDED);
		put_cstr(c, "posix-rename@openssh.com");
	} else
		id = req_begin(c, FXP_RENAME);
	put_cstr(c, from);
	put_cstr(c, to);
	return sx_status_call(c, id, "cannot rename to", to);
}

/* One small WRITE of n bytes at off, waiting for its reply (the probe
 * of sisfeed check; uploads use write_file). */
static int
sx_write(struct conn *c, const unsigned char *h, size_t hlen, uint64_t off,
    const void *data, size_t n, const char *path)
{
	uint32_t id = req_begin(c, FXP_WRITE);

	put_str(c, h, hlen);
	put_u64(c, off);
	put_str(c, data, n);
	return sx_status_call(c, id, "cannot write", path);
}

/*
 * The body of a VERSION reply: the version, then the extensions the
 * client uses (posix-rename@openssh.com noted in c, limits@openssh.com
 * in *limits).  0, or -1 if malformed.
 */
static int
hello_parse(struct conn *c, struct rd *r, uint32_t *version, int *limits)
{
	const unsigned char *name, *data;
	size_t nl, dl;

	if (get_u32(r, version) == -1)
		return -1;
	while (r->left > 0) {
		if (get_str(r, &name, &nl) == -1 ||
		    get_str(r, &data, &dl) == -1)
			return -1;
		if (blob_is(name, nl, "posix-rename@openssh.com") &&
		    blob_is(data, dl, "1"))
			c->posix_rename = 1;
		if (blob_is(name, nl, "limits@openssh.com") &&
		    blob_is(data, dl, "1"))
			*limits = 1;
		if (blob_is(name, nl, "statvfs@openssh.com") &&
		    blob_is(data, dl, "2"))
			c->statvfs = 1;
	}
	return 0;
}

/* The body of the limits@openssh.com reply (after the id) into
 * c->max_write.  0, or -1 if malformed. */
static int
limits_parse(struct conn *c, struct rd *r)
{
	uint64_t maxpacket, maxread, maxwrite;

	if (get_u64(r, &maxpacket) == -1 || get_u64(r, &maxread) == -1 ||
	    get_u64(r, &maxwrite) == -1)
		return -1;
	if (maxwrite > 0)
		c->max_write = maxwrite < WRITE_MAX ? (size_t)maxwrite :
		    WRITE_MAX;
	if (maxpacket > 2048 && c->max_write + 1024 > maxpacket)
		c->max_write = (size_t)maxpacket - 1024;
	return 0;
}

/*
 * Parse a stream of SFTP v3 replies as the client reads them from the
 * channel: the length framing (SFTP_REPLY_MAX), then by type the
 * VERSION extensions, STATUS, HANDLE, ATTRS and an EXTENDED_REPLY read
 * as limits@openssh.com's.  For the fuzzer and tests: the parsers the
 * upload uses, without a server.  Returns the number of replies, or -1
 * at the first malformed one (error set).
 */
int
sftp_parse_replies(const unsigned char *p, size_t len)
{
	struct conn c;
	struct fattr a;
	struct rd r;
	const unsigned char *h;
	uint32_t rlen, v;
	size_t hl;
	int n = 0, limits = 0, bad;

	memset(&c, 0, sizeof(c));
	snprintf(c.where, sizeof(c.where), "parse");
	while (len > 0) {
		if (len < 4 || (rlen = be32dec(p)) < 1 ||
		    rlen > SFTP_REPLY_MAX || len - 4 < rlen)
			return error_set("sftp: reply %d: bad length", n + 1);
		r.p = p + 5;
		r.left = rlen - 1;
		switch (p[4]) {
		case FXP_VERSION:
			bad = hello_parse(&c, &r, &v, &limits);
			break;
		case FXP_STATUS:
			bad = get_u32(&r, &v);
			if (!bad)
				(void)sx_status(&c, &r);
			break;
		case FXP_HANDLE:
			bad = get_u32(&r, &v) == -1 ||
			    get_str(&r, &h, &hl) == -1 || hl > HANDLE_MAX;
			break;
		case FXP_ATTRS:
			bad = get_u32(&r, &v) == -1 || get_attrs(&r, &a) == -1;
			break;
		case FXP_EXTENDED_REPLY:
			bad = get_u32(&r, &v) == -1 ||
			    limits_parse(&c, &r) == -1;
			break;
		default:
			bad = 1;
			break;
		}
		if (bad)
			return error_set("sftp: reply %d: malformed", n + 1);
		p += 4 + (size_t)rlen;
		len -= 4 + (size_t)rlen;
		n++;
	}
	return n;
}

/*
 * Open the "sftp" subsystem and say hello (version 3), noting the
 * extensions we use: posix-rename@openssh.com, and the server's write
 * size from limits@openssh.com.
 */
static int
sx_start(struct conn *c)
{
	struct rd r;
	unsigned int type;
	uint32_t version, id;
	int rc, limits = 0;

	c->max_write = WRITE_DEFAULT;
	if ((c->ch = libssh2_channel_open_session(c->ssh)) == NULL)
		return ssh_fail(c, 0, "open an SSH channel", NULL);
	if ((rc = libssh2_channel_subsystem(c->ch, "sftp")) != 0) {
		if (transient(rc))
			return ssh_fail(c, rc, "start SFTP", NULL);
		c->retry = 0;
		return error_set("sftp: %s: the server refused the SFTP "
		    "subsystem", c->where);
	}
	libssh2_channel_handle_extended_data2(c->ch,
	    LIBSSH2_CHANNEL_EXTENDED_DATA_IGNORE);
	req_begin(c, FXP_INIT);
	put_u32(c, SFTP_VERSION);
	if (req_send(c) == -1 || sx_recv(c, &type, &r) == -1)
		return -1;
	if (type != FXP_VERSION || hello_parse(c, &r, &version, &limits) == -1)
		return bad_reply(c, "SFTP hello");
	if (version < SFTP_VERSION) {
		c->retry = 0;
		return error_set("sftp: %s: the server speaks SFTP version "
		    "%lu, not 3", c->where, (unsigned long)version);
	}
	if (!limits)
		goto out;
	id = req_begin(c, FXP_EXTENDED);
	put_cstr(c, "limits@openssh.com");
	if (sx_call(c, id, &type, &r, "SFTP limits") == -1)
		return -1;
	if (type == FXP_STATUS)
		goto out;
	if (type != FXP_EXTENDED_REPLY || limits_parse(c, &r) == -1)
		return bad_reply(c, "SFTP limits");
out:
	log_debug("sftp: %s: SFTP version %lu, writes of %zu bytes, "
	    "posix-rename %s", c->where, (unsigned long)version,
	    c->max_write, c->posix_rename ? "offered" : "not offered");
	return 0;
}

/* ------------------------------------------------------------------ */
/* the connection                                                     */

/*
 * Connect, check the host key, log in and start SFTP.  With fp, print
 * one line per step (sisfeed check).  0 or -1; c->retry says whether
 * trying again may help.
 */
static int
conn_open(struct conn *c, FILE *fp)
{
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	int missing, rc;

	c->retry = 0;
	if (c->identity != NULL &&
	    secret_mode_ok(c->identity, "private key") == -1)
		return check_line(fp, -1, "private key %s", c->identity);
	if (c->password_file != NULL &&
	    secret_mode_ok(c->password_file, "password file") == -1)
		return check_line(fp, -1, "password file %s",
		    c->password_file);
	if (check_line(fp, tcp_connect(c), "connect to %s port %d", c->host,
	    c->port) == -1)
		return -1;
	if ((c->ssh = libssh2_session_init()) == NULL)
		return check_line(fp, error_set("sftp: out of memory"),
		    "ssh session");
	libssh2_session_set_blocking(c->ssh, 1);
	libssh2_session_set_timeout(c->ssh, (long)c->timeout * 1000);
	if (known_hosts_load(c, &kh, &missing) == -1)
		return check_line(fp, -1, "known_hosts %s", c->known_hosts);
	hostkey_prefer_known(c, kh);
	if ((rc = libssh2_session_handshake(c->ssh, c->fd)) != 0) {
		if (rc == LIBSSH2_ERROR_KEX_FAILURE &&
		    c->known_types[0] != '\0')
			error_set("sftp: %s: SSH handshake failed: %s has "
			    "only %s keys for %s, and the server offers none "
			    "of them that libssh2 1.10 can check (it cannot "
			    "use rsa-sha2-256/512 host keys); add the server's "
			    "ed25519 key, checked with its administrator: "
			    "ssh-keyscan -t ed25519 -p %d %s >> %s", c->where,
			    c->known_hosts, c->known_types, c->hostspec,
			    c->port, c->host, c->known_hosts);
		else
			ssh_fail(c, rc, "SSH handshake", NULL);
		libssh2_knownhost_free(kh);
		return check_line(fp, -1, "SSH handshake with %s", c->where);
	}
	rc = hostkey_verify(c, kh, missing);
	libssh2_knownhost_free(kh);
	if (check_line(fp, rc, "host key %s of %s in %s", c->hostkey,
	    c->hostspec, c->known_hosts) == -1)
		return -1;
	rc = auth(c);
	if (check_line(fp, rc, "login as %s%s%s", c->user,
	    c->method[0] ? " with " : "", c->method) == -1)
		return -1;
	if (sx_start(c) == -1)
		return check_line(fp, -1, "start SFTP");
	return 0;
}

/* Close the connection; after a failure, without waiting on the peer. */
static void
conn_close(struct conn *c, int failed)
{
	if (failed && c->fd != -1)
		shutdown(c->fd, SHUT_RDWR);
	if (c->ch != NULL)
		libssh2_channel_free(c->ch);
	c->ch = NULL;
	if (c->ssh != NULL) {
		if (!failed)
			libssh2_session_disconnect(c->ssh, "done");
		libssh2_session_free(c->ssh);
	}
	c->ssh = NULL;
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	free(c->out);
	free(c->in);
	c->out = c->in = NULL;
	c->outlen = c->outcap = c->inlen = c->inoff = c->incap = 0;
	c->posix_rename = 0;
	c->id = 0;
}

/* remote_dir/name (+ suffix) into buf. */
static int
remote_path(const struct conn *c, const char *name, const char *suffix,
    char *buf, size_t len)
{
	const char *dir = c->remote_dir;
	size_t dl = dir != NULL ? strlen(dir) : 0;
	int n;

	if (dir == NULL)
		n = snprintf(buf, len, "%s%s", name, suffix);
	else
		n = snprintf(buf, len, "%s%s%s%s", dir,
		    dl > 0 && dir[dl - 1] == '/' ? "" : "/", name, suffix);
	if (n < 0 || (size_t)n >= len)
		return error_set("sftp: remote path for %s is too long", name);
	return 0;
}

/* remote_dir must exist and be a directory. */
static int
remote_dir_check(struct conn *c)
{
	struct fattr a;
	int64_t t0 = now_ms();
	int rc;

	c->retry = 0;
	rc = sx_stat(c, c->remote_dir != NULL ? c->remote_dir : ".", &a);
	c->rtt = now_ms() - t0;
	if (c->remote_dir == NULL)
		return rc == -1 && c->fx == FX_OK ? -1 : 0;
	if (rc == -1) {
		if (c->fx == FX_NO_SUCH_FILE)
			return error_set("sftp: %s: remote_dir %s does not "
			    "exist", c->where, c->remote_dir);
		return -1;
	}
	if ((a.flags & ATTR_PERMISSIONS) && (a.perm & 0170000) != 0040000)
		return error_set("sftp: %s: remote_dir %s is not a directory",
		    c->where, c->remote_dir);
	return 0;
}

/* ------------------------------------------------------------------ */
/* upload                                                             */

static void
progress_show(struct progress *pg, off_t done, int final)
{
	int64_t t = now_ms();
	double secs, mb = 1000.0 * 1000.0;

	if (!pg->tty || (final && !pg->shown))
		return;
	if (!final && (t - pg->start < 1000 || t - pg->last < 250))
		return;
	pg->last = t;
	pg->shown = 1;
	secs = (double)(t - pg->start) / 1000.0;
	fprintf(stderr, "\rsisfeed: sftp: %s %3d%% %.1f of %.1f MB, "
	    "%.1f MB/s ", pg->name, pg->total > 0 ?
	    (int)(done * 100 / pg->total) : 100, (double)done / mb,
	    (double)pg->total / mb, secs > 0 ? (double)done / mb / secs : 0);
	if (final) {
		fputc('\n', stderr);
		pg->shown = 0;
	}
}

/* End a progress line that was shown, before another message. */
static void
progress_break(struct progress *pg)
{
	if (pg->shown)
		fputc('\n', stderr);
	pg->shown = 0;
}

/*
 * How much to keep in flight: what the link moves in a quarter of the
 * timeout (libssh2's timeout covers a whole blocking call, and the
 * reply to the oldest write comes after the rest was sent), between
 * WINDOW_MIN and WINDOW_MAX, the window OpenSSH's sshd gives a channel:
 * more would only wait in buffers.  On a LAN (a round trip under 2 ms)
 * a megabyte covers the bandwidth-delay product and measures faster
 * than two over loopback (less data queued, warmer caches).
 */
static size_t
window_size(const struct conn *c, off_t done, int64_t started)
{
	int64_t ms = now_ms() - started;
	size_t max = c->rtt < 2 ? WINDOW_LAN : WINDOW_MAX;
	double rate, w;

	if (ms < 50)
		return WINDOW_MIN;
	rate = (double)done * 1000.0 / (double)ms;
	w = rate * c->timeout / 4;
	if (w > max)
		return max;
	if (w < WINDOW_MIN)
		return WINDOW_MIN;
	return (size_t)w;
}

/* Read len bytes at off (fewer only at the end of the file). */
static ssize_t
read_full(int fd, unsigned char *buf, size_t len, off_t off)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = pread(fd, buf + got, len - got, off + (off_t)got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Take the reply to one write in flight off q. */
static int
write_ack(struct conn *c, struct inflight *q, size_t *qn, size_t *len,
    const char *part)
{
	struct rd r;
	unsigned int type;
	uint32_t id;
	size_t i;

	if (sx_recv(c, &type, &r) == -1)
		return -1;
	if (type != FXP_STATUS || get_u32(&r, &id) == -1)
		return bad_reply(c, "write");
	for (i = 0; i < *qn && q[i].id != id; i++)
		;
	if (i == *qn)
		return bad_reply(c, "write");
	*len = q[i].len;
	memmove(q + i, q + i + 1, (*qn - i - 1) * sizeof(*q));
	(*qn)--;
	if (sx_status(c, &r) != FX_OK)
		return sx_fail(c, "cannot write", part);
	return 0;
}

/* Read and drop n replies (writes in flight after one failed); the
 * error message and status stay the failed write's. */
static void
write_drain(struct conn *c, size_t n)
{
	char err[1024];
	struct rd r;
	unsigned int type;

	snprintf(err, sizeof(err), "%s", error_last());
	while (n-- > 0 && sx_recv(c, &type, &r) == 0)
		;
	error_set("%s", err);
}

/*
 * Write the local file (fd, size bytes) to the open handle h: requests
 * of the server's largest write size, read from the file straight into
 * the request, a window of them in flight.  Returns 0 when the server
 * acknowledged every byte, or -1.
 */
static int
write_file(struct conn *c, const unsigned char *h, size_t hlen, int fd,
    off_t size, const char *local, const char *part, struct progress *pg)
{
	const size_t hdr = 4 + 1 + 4 + 4 + hlen + 8 + 4;
	size_t chunk = c->max_write, qn = 0, inflight = 0, len;
	size_t window = WINDOW_MIN;
	struct inflight *q;
	unsigned char *buf;
	off_t off = 0, acked = 0;
	ssize_t n;
	int eof = 0, rc = -1;

	buf = malloc(hdr + chunk);
	q = calloc(INFLIGHT_MAX, sizeof(*q));
	if (buf == NULL || q == NULL) {
		c->retry = 0;
		error_set("sftp: out of memory");
		goto out;
	}
	for (;;) {
		while (!eof && qn < INFLIGHT_MAX &&
		    (qn == 0 || inflight + chunk <= window)) {
			if ((n = read_full(fd, buf + hdr, chunk, off)) == -1) {
				c->retry = 0;
				error_sys("sftp: read %s", local);
				goto out;
			}
			if (n == 0) {
				eof = 1;
				break;
			}
			be32enc(buf, (uint32_t)(hdr - 4 + (size_t)n));
			buf[4] = FXP_WRITE;
			be32enc(buf + 5, c->id);
			be32enc(buf + 9, (uint32_t)hlen);
			memcpy(buf + 13, h, hlen);
			be64enc(buf + 13 + hlen, (uint64_t)off);
			be32enc(buf + 21 + hlen, (uint32_t)n);
			if (sx_send(c, buf, hdr + (size_t)n) == -1)
				goto out;
			q[qn].id = c->id++;
			q[qn].len = (uint32_t)n;
			qn++;
			inflight += (size_t)n;
			off += n;
		}
		if (qn == 0)
			break;
		if (write_ack(c, q, &qn, &len, part) == -1)
			goto out;
		inflight -= len;
		acked += (off_t)len;
		window = window_size(c, acked, pg->start);
		progress_show(pg, acked, 0);
		fault_point("copy");	/* the crash tests: cut mid-file */
	}
	if (off != size) {
		c->retry = 0;
		error_set("sftp: %s changed while it was uploaded (%lld bytes, "
		    "expected %lld)", local, (long long)off, (long long)size);
		goto out;
	}
	rc = 0;
out:
	/* A write the server refused: take the replies still in flight
	 * off the channel, so that the connection can clean up. */
	if (rc == -1 && !c->retry)
		write_drain(c, qn);
	free(buf);
	free(q);
	return rc;
}

/* The server's size for path must be size. */
static int
size_ok(struct conn *c, const struct fattr *a, const char *path, off_t size)
{
	c->retry = 0;
	if (!(a->flags & ATTR_SIZE))
		return error_set("sftp: %s: the server reports no size for %s",
		    c->where, path);
	if (a->size != (uint64_t)size)
		return error_set("sftp: %s: %s has %llu bytes on the server, "
		    "expected %lld", c->where, path,
		    (unsigned long long)a->size, (long long)size);
	return 0;
}

/*
 * Rename part to dst, replacing dst: atomically with
 * posix-rename@openssh.com, else (the server lacks or denies it; plain
 * SFTP v3 rename does not overwrite) by removing dst first.  Then dst
 * must have size bytes.
 */
static int
replace(struct conn *c, const char *part, const char *dst, off_t size)
{
	struct fattr a;

	if (c->posix_rename && sx_rename(c, part, dst) == -1) {
		if (c->fx != FX_OP_UNSUPPORTED &&
		    c->fx != FX_PERMISSION_DENIED)
			return -1;
		log_debug("sftp: the server refused posix-rename (%s); "
		    "removing %s, then renaming", fx_text(c->fx), dst);
		c->posix_rename = 0;
	}
	if (!c->posix_rename) {
		if (sx_stat(c, dst, &a) == 0) {
			if (sx_remove(c, dst) == -1 &&
			    c->fx != FX_NO_SUCH_FILE)
				return -1;
		} else if (c->fx != FX_NO_SUCH_FILE)
			return -1;
		if (sx_rename(c, part, dst) == -1)
			return -1;
	}
	if (sx_stat(c, dst, &a) == -1)
		return -1;
	return size_ok(c, &a, dst, size);
}

/*
 * The free space of the file system holding path, by
 * statvfs@openssh.com: 0 with *avail in bytes, or -1 when the server
 * does not offer it or refuses.
 */
static int
sx_statvfs(struct conn *c, const char *path, uint64_t *avail)
{
	uint64_t bsize, frsize, blocks, bfree, bavail;
	struct rd r;
	unsigned int type;
	uint32_t id;

	if (!c->statvfs)
		return -1;
	id = req_begin(c, FXP_EXTENDED);
	put_cstr(c, "statvfs@openssh.com");
	put_cstr(c, path);
	if (sx_call(c, id, &type, &r, "statvfs") == -1 ||
	    type != FXP_EXTENDED_REPLY || get_u64(&r, &bsize) == -1 ||
	    get_u64(&r, &frsize) == -1 || get_u64(&r, &blocks) == -1 ||
	    get_u64(&r, &bfree) == -1 || get_u64(&r, &bavail) == -1)
		return -1;
	*avail = bavail * (frsize != 0 ? frsize : bsize);
	return 0;
}

/*
 * After a failed upload on a live connection: remove part, and when
 * the server answered a write with a bare failure (what OpenSSH says
 * for a full disk), say how much room there is.  The upload's error
 * stays the message, with that added.
 */
static void
upload_failed(struct conn *c, const char *part, off_t size, int wrote)
{
	char err[1024], hint[160] = "";
	unsigned long fx = c->fx;
	int retry = c->retry;
	uint64_t avail;

	snprintf(err, sizeof(err), "%s", error_last());
	if (wrote && fx == FX_FAILURE) {
		if (sx_statvfs(c, c->remote_dir != NULL ? c->remote_dir : ".",
		    &avail) == 0)
			snprintf(hint, sizeof(hint), "; the server's disk has "
			    "%llu bytes free for a file of %lld%s",
			    (unsigned long long)avail, (long long)size,
			    avail < (uint64_t)size ? ": it is full" : "");
		else
			snprintf(hint, sizeof(hint), "; the server's disk may "
			    "be full");
	}
	if (sx_remove(c, part) == -1 && c->fx != FX_NO_SUCH_FILE)
		log_warn("sftp: %s: cannot remove %s after the failure: %s",
		    c->where, part, fx_text(c->fx));
	error_set("%s%s", err, hint);
	c->fx = fx;
	c->retry = retry;
}

/*
 * The temporary name of name on the server, dir/.sisfeed.NAME.part (no
 * importer's pattern for NAME matches it).  The one an earlier run
 * could not remove is kept in STATE/sftp.part and removed first.
 */
static int
part_path(struct conn *c, const char *name, char *part, size_t len)
{
	char tname[1024];

	if (path_fmt(tname, sizeof(tname), FILE_TEMP_PREFIX "%s", name) == -1)
		return -1;
	return remote_path(c, tname, FILE_TEMP_SUFFIX, part, len);
}

/* Remove the part an earlier run left, named in STATE/sftp.part; note
 * gets that file's path ("" without a state directory). */
static void
part_leftover_remove(struct conn *c, char *note, size_t len)
{
	char old[4096];
	FILE *fp;

	note[0] = '\0';
	if (c->cfg->state_dir == NULL ||
	    path_fmt(note, len, "%s/sftp.part", c->cfg->state_dir) == -1) {
		note[0] = '\0';
		return;
	}
	if ((fp = fopen(note, "r")) == NULL)
		return;
	if (fgets(old, sizeof(old), fp) != NULL) {
		old[strcspn(old, "\n")] = '\0';
		if (old[0] != '\0' && sx_remove(c, old) == 0)
			log_info("sftp: %s: removed %s, left by an earlier run",
			    c->where, old);
	}
	fclose(fp);
}

/* One whole attempt: connect, .sisfeed.NAME.part, size check, rename. */
static int
upload_once(struct conn *c, int fd, off_t size, const char *local,
    const char *name, struct progress *pg)
{
	char dst[4096], part[4096], note[PATH_MAX], line[4200], err[1024];
	unsigned char h[HANDLE_MAX];
	struct fattr a;
	size_t hlen;

	if (remote_path(c, name, "", dst, sizeof(dst)) == -1 ||
	    part_path(c, name, part, sizeof(part)) == -1)
		return -1;
	if (conn_open(c, NULL) == -1 || remote_dir_check(c) == -1)
		return -1;
	part_leftover_remove(c, note, sizeof(note));
	snprintf(line, sizeof(line), "%s\n", part);
	if (note[0] != '\0' && file_write_atomic(note, line, strlen(line)) == -1)
		log_warn("%s", error_last());
	if (c->noreplace && sx_stat(c, dst, &a) == 0) {
		c->retry = 0;
		return error_set("sftp: %s: %s is still there: in delta mode a "
		    "file must not replace one the receiver has not imported "
		    "yet (its changes would be lost); give output.name a "
		    "time, e.g. sisfeed-%%Y%%m%%d-%%H%%M%%S.xml", c->where,
		    dst);
	}
	if (sx_open(c, part, 0600, h, &hlen) == -1)
		return -1;
	/* A leftover part keeps its mode through O_TRUNC: 0600 where the
	 * server allows. */
	if (sx_fchmod(c, h, hlen, part, 0600) == -1 && c->fx == FX_OK)
		return -1;
	pg->start = pg->last = now_ms();
	if (write_file(c, h, hlen, fd, size, local, part, pg) == -1 ||
	    sx_fstat(c, h, hlen, part, &a) == -1 ||
	    size_ok(c, &a, part, size) == -1 ||
	    /* delivery.mode, once the file is whole */
	    (c->mode != 0600 && sx_fchmod(c, h, hlen, part,
	    (uint32_t)c->mode) == -1 && c->fx == FX_OK) ||
	    sx_close(c, h, hlen, part) == -1) {
		if (c->ch != NULL && !c->retry) {
			upload_failed(c, part, size, 1);
			snprintf(err, sizeof(err), "%s", error_last());
			(void)sx_close(c, h, hlen, part);
			error_set("%s", err);
		}
		return -1;
	}
	progress_show(pg, size, 1);
	if (replace(c, part, dst, size) == -1) {
		if (!c->retry)
			upload_failed(c, part, size, 0);
		return -1;
	}
	if (note[0] != '\0')
		(void)unlink(note);
	return 0;
}

/* SISFEED_RETRY_BASE_MS, or one second. */
static int64_t
retry_base_ms(void)
{
	const char *e = getenv("SISFEED_RETRY_BASE_MS");
	char *end;
	long v;

	if (e == NULL || *e == '\0')
		return RETRY_BASE_MS;
	errno = 0;
	v = strtol(e, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > RETRY_CAP_MS)
		return RETRY_BASE_MS;
	return v;
}

/* The wait before retry number n (1, 2, ...): base * 2^(n-1), capped. */
static int64_t
retry_delay(int64_t base, int n)
{
	int64_t d = base;

	while (--n > 0 && d < RETRY_CAP_MS)
		d *= 2;
	return d > RETRY_CAP_MS ? RETRY_CAP_MS : d;
}

/*
 * Upload path as cfg->delivery.s.remote_dir/name: NAME.part written
 * (truncated if left over, mode 0600) and size-checked, then renamed
 * to NAME, replacing it (atomically with posix-rename@openssh.com,
 * else NAME is removed first).  A refused connection, a timeout or a
 * cut connection is tried
 * again up to delivery.sftp.retries times with exponential backoff
 * (1 s, 2 s, 4 s, ... up to a minute; SISFEED_RETRY_BASE_MS changes
 * the first delay).  Returns 0 when the server holds the whole file
 * under its final name, or -1 with the error set (the last attempt's,
 * with the number of attempts).
 */
int
sftp_upload(const struct config *cfg, const char *path, const char *name)
{
	struct conn c;
	struct progress pg;
	struct stat st;
	char err[1024];
	int fd, attempt, attempts, rc = -1;
	int64_t base, delay;

	if (conn_setup(&c, cfg) == -1)
		return -1;
	c.noreplace = cfg->output.mode == MODE_DELTA;
	c.mode = cfg->delivery_mode > 0 ? cfg->delivery_mode : 0600;
	if (name == NULL || *name == '\0' || strchr(name, '/') != NULL)
		return error_set("sftp: bad remote file name \"%s\"",
		    name != NULL ? name : "");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return error_sys("sftp: %s", path);
	if (fstat(fd, &st) == -1) {
		error_sys("sftp: %s", path);
		close(fd);
		return -1;
	}
	memset(&pg, 0, sizeof(pg));
	pg.name = name;
	pg.total = st.st_size;
	pg.tty = isatty(STDERR_FILENO) && log_verbosity >= 1;
	attempts = 1 + (cfg->delivery.s.retries > 0 ?
	    cfg->delivery.s.retries : 0);
	base = retry_base_ms();
	if (libssh2_init(0) != 0) {
		close(fd);
		return error_set("sftp: cannot initialise libssh2");
	}
	log_debug("sftp: uploading %s (%lld bytes) to %s as %s", path,
	    (long long)st.st_size, c.where, name);
	for (attempt = 1; attempt <= attempts; attempt++) {
		rc = upload_once(&c, fd, st.st_size, path, name, &pg);
		conn_close(&c, rc != 0);
		progress_break(&pg);
		if (rc == 0 || !c.retry || attempt == attempts)
			break;
		delay = retry_delay(base, attempt);
		log_warn("%s; retrying in %lld ms (attempt %d of %d)",
		    error_last(), (long long)delay, attempt + 1, attempts);
		sleep_ms(delay);
	}
	libssh2_exit();
	close(fd);
	if (rc != 0 && attempts > 1 && c.retry) {
		snprintf(err, sizeof(err), "%s", error_last());
		return error_set("%s (gave up after %d attempts)", err,
		    attempts);
	}
	if (rc == 0)
		log_debug("sftp: %s delivered to %s", name, c.where);
	return rc;
}

/* Write and remove a small probe file in remote_dir. */
static int
probe_writable(struct conn *c)
{
	static const char text[] = "sisfeed check: remove me\n";
	char probe[4096], pname[64];
	unsigned char h[HANDLE_MAX];
	size_t hlen;

	snprintf(pname, sizeof(pname), ".sisfeed-check-%ld.part",
	    (long)getpid());
	if (remote_path(c, pname, "", probe, sizeof(probe)) == -1 ||
	    sx_open(c, probe, 0600, h, &hlen) == -1)
		return -1;
	if (sx_write(c, h, hlen, 0, text, sizeof(text) - 1, probe) == -1 ||
	    sx_close(c, h, hlen, probe) == -1) {
		if (c->fx != FX_OK) {
			char err[1024];

			snprintf(err, sizeof(err), "%s", error_last());
			(void)sx_remove(c, probe);
			error_set("%s", err);
		}
		return -1;
	}
	return sx_remove(c, probe);
}

/*
 * sisfeed check: connect, verify the host key, log in, and check that
 * remote_dir exists and is writable (a probe file is written and
 * removed).  Prints "ok   sftp STEP" or "FAIL sftp STEP: why" per
 * step to fp.  No retries.  Returns 0 if every check passed, else -1
 * with the error set.
 */
int
sftp_check(const struct config *cfg, FILE *fp)
{
	struct conn c;
	const char *dir;
	int rc;

	if (conn_setup(&c, cfg) == -1)
		return check_line(fp, -1, "settings");
	if (libssh2_init(0) != 0)
		return check_line(fp, error_set("sftp: cannot initialise "
		    "libssh2"), "libssh2");
	rc = conn_open(&c, fp);
	dir = c.remote_dir != NULL ? c.remote_dir : "(login directory)";
	if (rc == 0)
		rc = check_line(fp, remote_dir_check(&c), "remote_dir %s",
		    dir);
	if (rc == 0)
		rc = check_line(fp, probe_writable(&c), "remote_dir %s is "
		    "writable (probe file written and removed)", dir);
	conn_close(&c, rc != 0);
	libssh2_exit();
	return rc;
}
