/*
 * rindex.c -- a compact companion of the snapshot: the roster it holds,
 * in the form it has in memory, so that the next run loads it in one
 * read instead of parsing the XML again.
 *
 * The index is a cache, never the truth.  It names the snapshot it was
 * made from (the digest of snapshot_digest) and carries a CRC-32 of its
 * payload; any mismatch, short read or unknown version and the caller
 * parses the snapshot itself.
 *
 * Layout (host byte order; the file never leaves the machine):
 *   struct rindex_header
 *   string blob: every string NUL-terminated, "" at offset 0
 *   persons: struct rperson[npersons]
 *   groups:  struct rgroup[ngroups]
 *   members: struct membership[nmembers]
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "sisfeed.h"

#define RINDEX_MAGIC	"SISFIDX5"	/* 4: persons carry nin; 5: members
					 * a timeframe (16 bytes) */

struct rindex_header {
	char		magic[8];
	unsigned char	snapshot[32];
	int64_t		datetime;
	uint64_t	npersons, ngroups, nmembers;
	uint64_t	strbytes;
	uint32_t	crc;		/* of everything after the header */
	uint32_t	recsize;	/* sizeof(struct membership), a check */
};

struct rperson {
	uint32_t	s[7];		/* id userid given family email role nin */
	uint32_t	line;
	uint32_t	active;
};

struct rgroup {
	uint32_t	s[10];		/* id type short long parent term
					 * begin end orgname orgunit */
	uint32_t	line;
	uint32_t	pad;
};

/*
 * The payload on its way to the file through a 1 MiB buffer, checksummed
 * as it goes; the strings are written as they are met (no copy of them
 * all in memory), each string's offset being the bytes written since
 * the blob began.
 */
#define WBUF_SIZE	(1024 * 1024)
struct wbuf {
	int		 fd;
	const char	*path;
	char		*v;
	size_t		 len;
	uint64_t	 blob;		/* strings written so far */
	uint32_t	 crc;
	int		 overflow;	/* a string past 4 GiB */
};

/* Write out the buffer.  0 or -1. */
static int
wbuf_flush(struct wbuf *w)
{
	w->crc = crc_update(w->crc, w->v, w->len);
	if (fd_write(w->fd, w->v, w->len) == -1)
		return error_sys("%s", w->path);
	w->len = 0;
	return 0;
}

/* Write n bytes of p.  0 or -1. */
static int
wbuf_put(struct wbuf *w, const void *p, size_t n)
{
	if (w->len + n > WBUF_SIZE) {
		if (wbuf_flush(w) == -1)
			return -1;
		if (n > WBUF_SIZE) {
			w->crc = crc_update(w->crc, p, n);
			if (fd_write(w->fd, p, n) == -1)
				return error_sys("%s", w->path);
			return 0;
		}
	}
	memcpy(w->v + w->len, p, n);
	w->len += n;
	return 0;
}

/* Add s to the blob: its offset (0, the blob's first byte, for "").
 * Out of room sets overflow; a write error sets *err. */
static uint32_t
wbuf_str(struct wbuf *w, const char *s, int *err)
{
	size_t n;
	uint64_t off = w->blob;

	if (s[0] == '\0')
		return 0;
	n = strlen(s) + 1;
	if (off + n > UINT32_MAX) {
		w->overflow = 1;
		return 0;
	}
	if (wbuf_put(w, s, n) == -1)
		*err = 1;
	w->blob += n;
	return (uint32_t)off;
}

static int
write_all(int fd, const void *p, size_t n, uint32_t *crc, const char *path)
{
	const char *c = p;

	if (crc != NULL)
		*crc = crc_update(*crc, c, n);
	if (fd_write(fd, c, n) == -1)
		return error_sys("%s", path);
	return 0;
}

/*
 * Write r's strings as the blob through w, and the person and group
 * records that point into it into *pp and *gp (allocated here).  0 or
 * -1.
 */
static int
build(const struct roster *r, struct wbuf *w, struct rperson **pp,
    struct rgroup **gp)
{
	struct rperson *p;
	struct rgroup *g;
	size_t i;
	int err = 0;

	p = calloc(r->npersons ? r->npersons : 1, sizeof(*p));
	g = calloc(r->ngroups ? r->ngroups : 1, sizeof(*g));
	*pp = p;
	*gp = g;
	if (p == NULL || g == NULL)
		return error_sys("rindex");
	if (wbuf_put(w, "", 1) == -1)	/* offset 0 is every empty string */
		return -1;
	w->blob = 1;
	for (i = 0; i < r->npersons && !err; i++) {
		const struct person *s = &r->persons[i];

		p[i].s[0] = wbuf_str(w, s->id, &err);
		p[i].s[1] = wbuf_str(w, s->userid, &err);
		p[i].s[2] = wbuf_str(w, s->given, &err);
		p[i].s[3] = wbuf_str(w, s->family, &err);
		p[i].s[4] = wbuf_str(w, s->email, &err);
		p[i].s[5] = wbuf_str(w, s->role, &err);
		p[i].s[6] = wbuf_str(w, s->nin, &err);
		p[i].line = s->line;
		p[i].active = s->active;
	}
	for (i = 0; i < r->ngroups && !err; i++) {
		const struct group *s = &r->groups[i];

		g[i].s[0] = wbuf_str(w, s->id, &err);
		g[i].s[1] = wbuf_str(w, s->type, &err);
		g[i].s[2] = wbuf_str(w, s->shortname, &err);
		g[i].s[3] = wbuf_str(w, s->longname, &err);
		g[i].s[4] = wbuf_str(w, s->parent, &err);
		g[i].s[5] = wbuf_str(w, s->term, &err);
		g[i].s[6] = wbuf_str(w, s->begin, &err);
		g[i].s[7] = wbuf_str(w, s->end, &err);
		g[i].s[8] = wbuf_str(w, s->orgname, &err);
		g[i].s[9] = wbuf_str(w, s->orgunit, &err);
		g[i].line = s->line;
	}
	if (err)
		return -1;
	if (w->overflow)
		return error_set("rindex: strings exceed 4 GiB");
	return 0;
}

/* An index whose payload is written and whose header waits for the
 * identity of the snapshot it will belong to. */
struct rindex_pending {
	char			 path[PATH_MAX];
	char			 tmp[PATH_MAX];
	int			 fd;
	struct rindex_header	 h;
};

/*
 * Write the payload of the sealed roster r's index to path's temporary
 * name (path.tmp, mode 0600), with a placeholder header.  r is only
 * read, so another thread may write the roster out meanwhile.  Returns
 * the pending index for rindex_finish or rindex_discard, or NULL with
 * the error set and no file left behind.
 */
struct rindex_pending *
rindex_prepare(const char *path, const struct roster *r)
{
	struct rindex_pending *pi;
	struct wbuf w;
	struct rperson *p = NULL;
	struct rgroup *g = NULL;
	int ok = 0;

	memset(&w, 0, sizeof(w));
	if ((pi = calloc(1, sizeof(*pi))) == NULL) {
		error_sys("rindex");
		return NULL;
	}
	pi->fd = -1;
	if (path_fmt(pi->path, sizeof(pi->path), "%s", path) == -1 ||
	    path_fmt(pi->tmp, sizeof(pi->tmp), "%s.tmp", path) == -1)
		goto out;
	if ((w.v = malloc(WBUF_SIZE)) == NULL) {
		error_sys("rindex");
		goto out;
	}
	if ((pi->fd = open(pi->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1) {
		error_sys("%s", pi->tmp);
		goto out;
	}
	w.fd = pi->fd;
	w.path = pi->tmp;
	w.crc = (uint32_t)crc32(0, Z_NULL, 0);
	memcpy(pi->h.magic, RINDEX_MAGIC, sizeof(pi->h.magic));
	pi->h.datetime = (int64_t)r->datetime;
	pi->h.npersons = r->npersons;
	pi->h.ngroups = r->ngroups;
	pi->h.nmembers = r->nmembers;
	pi->h.recsize = sizeof(struct membership);
	/* header first as a placeholder, then the payload; the CRC and the
	 * snapshot's identity go into the header at the end */
	if (write_all(pi->fd, &pi->h, sizeof(pi->h), NULL, pi->tmp) == -1 ||
	    build(r, &w, &p, &g) == -1)
		goto out;
	pi->h.strbytes = w.blob;
	if (wbuf_put(&w, p, r->npersons * sizeof(*p)) == -1 ||
	    wbuf_put(&w, g, r->ngroups * sizeof(*g)) == -1 ||
	    wbuf_put(&w, r->members, r->nmembers * sizeof(*r->members))
	    == -1 || wbuf_flush(&w) == -1)
		goto out;
	pi->h.crc = w.crc;
	ok = 1;
out:
	free(w.v);
	free(p);
	free(g);
	if (!ok) {
		rindex_discard(pi);
		return NULL;
	}
	return pi;
}

/*
 * Give the pending index pi the identity of its snapshot (digest, see
 * snapshot_digest) and put it in place under its path (rename; not
 * fsync'd: the index is a cache, and a crash that leaves it short or
 * torn fails the size and CRC checks of rindex_read, so the next run
 * parses the snapshot instead).  Frees pi.  0, or -1 with the error set
 * and no file left behind.
 */
int
rindex_finish(struct rindex_pending *pi, const unsigned char digest[32])
{
	int rc = -1;

	memcpy(pi->h.snapshot, digest, sizeof(pi->h.snapshot));
	if (pwrite(pi->fd, &pi->h, sizeof(pi->h), 0) !=
	    (ssize_t)sizeof(pi->h)) {
		error_sys("%s", pi->tmp);
		goto out;
	}
	if (close(pi->fd) == -1) {
		pi->fd = -1;
		error_sys("%s", pi->tmp);
		goto out;
	}
	pi->fd = -1;
	if (rename(pi->tmp, pi->path) == -1) {
		error_sys("%s", pi->path);
		goto out;
	}
	pi->tmp[0] = '\0';
	rc = 0;
out:
	rindex_discard(pi);
	return rc;
}

/* Drop a pending index: its temporary file removed, pi freed.  NULL is
 * fine. */
void
rindex_discard(struct rindex_pending *pi)
{
	if (pi == NULL)
		return;
	if (pi->fd != -1)
		close(pi->fd);
	if (pi->tmp[0] != '\0')
		unlink(pi->tmp);
	free(pi);
}

/*
 * Write the roster r (sealed) as the index of the snapshot whose
 * identity is digest: rindex_prepare, then rindex_finish.  Returns 0,
 * or -1 (error set; no file left behind).
 */
int
rindex_write(const char *path, const struct roster *r,
    const unsigned char digest[32])
{
	struct rindex_pending *pi;

	if ((pi = rindex_prepare(path, r)) == NULL)
		return -1;
	return rindex_finish(pi, digest);
}

static int
read_all(int fd, void *p, size_t n, uint32_t *crc)
{
	char *c = p;
	size_t done = 0;

	while (done < n) {
		ssize_t got = read(fd, c + done, n - done > (1u << 30) ?
		    (1u << 30) : n - done);

		if (got == -1 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		done += (size_t)got;
	}
	*crc = crc_update(*crc, c, n);
	return 0;
}

/*
 * 1 if every offset of n records of k strings lies inside the blob,
 * whose last byte is a NUL: every string read from it then ends inside
 * it.  (The CRC has already shown the index is the one written; this
 * keeps even a forged one from reading out of bounds.)
 */
static int
offsets_ok(const uint32_t *s, size_t stride, size_t n, size_t k,
    const char *blob, size_t len)
{
	size_t i, j;

	(void)blob;
	for (i = 0; i < n; i++)
		for (j = 0; j < k; j++)
			if (s[i * stride + j] >= len)
				return 0;
	return 1;
}

static int
load(int fd, const struct rindex_header *h, struct roster *r)
{
	struct rperson *p = NULL;
	struct rgroup *g = NULL;
	char *blob;
	uint32_t crc = (uint32_t)crc32(0, Z_NULL, 0);
	size_t i;
	int rc = 1;

	if ((blob = arena_alloc(&r->strings, h->strbytes)) == NULL)
		return -1;
	p = malloc((h->npersons ? h->npersons : 1) * sizeof(*p));
	g = malloc((h->ngroups ? h->ngroups : 1) * sizeof(*g));
	r->persons = malloc((h->npersons ? h->npersons : 1) *
	    sizeof(*r->persons));
	r->groups = malloc((h->ngroups ? h->ngroups : 1) * sizeof(*r->groups));
	r->members = malloc((h->nmembers ? h->nmembers : 1) *
	    sizeof(*r->members));
	if (p == NULL || g == NULL || r->persons == NULL ||
	    r->groups == NULL || r->members == NULL) {
		rc = error_sys("rindex");
		goto out;
	}
	mem_hint_huge(p, h->npersons * sizeof(*p));
	mem_hint_huge(r->persons, h->npersons * sizeof(*r->persons));
	mem_hint_huge(r->members, h->nmembers * sizeof(*r->members));
	r->cappersons = h->npersons ? h->npersons : 1;
	r->capgroups = h->ngroups ? h->ngroups : 1;
	r->capmembers = h->nmembers ? h->nmembers : 1;
	if (read_all(fd, blob, h->strbytes, &crc) == -1 ||
	    read_all(fd, p, h->npersons * sizeof(*p), &crc) == -1 ||
	    read_all(fd, g, h->ngroups * sizeof(*g), &crc) == -1 ||
	    read_all(fd, r->members, h->nmembers * sizeof(*r->members),
	    &crc) == -1 || crc != h->crc || h->strbytes == 0 ||
	    blob[h->strbytes - 1] != '\0' || blob[0] != '\0')
		goto out;
	if (!offsets_ok(&p[0].s[0], sizeof(*p) / 4, h->npersons, 7, blob,
	    h->strbytes) || !offsets_ok(&g[0].s[0], sizeof(*g) / 4,
	    h->ngroups, 10, blob, h->strbytes))
		goto out;
	for (i = 0; i < h->nmembers; i++)
		if (r->members[i].group >= h->ngroups ||
		    r->members[i].person >= h->npersons)
			goto out;
	for (i = 0; i < h->npersons; i++) {
		struct person *d = &r->persons[i];

		d->id = blob + p[i].s[0];
		d->userid = blob + p[i].s[1];
		d->given = blob + p[i].s[2];
		d->family = blob + p[i].s[3];
		d->email = blob + p[i].s[4];
		d->role = blob + p[i].s[5];
		d->nin = blob + p[i].s[6];
		d->line = p[i].line;
		d->active = (uint8_t)p[i].active;
	}
	for (i = 0; i < h->ngroups; i++) {
		struct group *d = &r->groups[i];

		d->id = blob + g[i].s[0];
		d->type = blob + g[i].s[1];
		d->shortname = blob + g[i].s[2];
		d->longname = blob + g[i].s[3];
		d->parent = blob + g[i].s[4];
		d->term = blob + g[i].s[5];
		d->begin = blob + g[i].s[6];
		d->end = blob + g[i].s[7];
		d->orgname = blob + g[i].s[8];
		d->orgunit = blob + g[i].s[9];
		d->line = g[i].line;
	}
	r->npersons = h->npersons;
	r->ngroups = h->ngroups;
	r->nmembers = h->nmembers;
	r->datetime = (time_t)h->datetime;
	rc = 0;
out:
	free(p);
	free(g);
	return rc;
}

/*
 * Load the index at path into the empty roster r if it was made from
 * the snapshot whose identity is digest and is intact.  Returns 0 when
 * loaded, 1 when it is missing, stale or damaged (r left empty: parse
 * the snapshot instead), -1 on an error such as no memory.
 */
int
rindex_read(const char *path, struct roster *r,
    const unsigned char digest[32])
{
	struct rindex_header h;
	struct stat st;
	int fd, rc;
	uint64_t want;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 1;
	if (fstat(fd, &st) == -1 || read(fd, &h, sizeof(h)) !=
	    (ssize_t)sizeof(h) || memcmp(h.magic, RINDEX_MAGIC, 8) != 0 ||
	    memcmp(h.snapshot, digest, 32) != 0 ||
	    h.recsize != sizeof(struct membership) ||
	    h.npersons > UINT32_MAX || h.ngroups > UINT32_MAX ||
	    h.nmembers > UINT32_MAX || h.strbytes > UINT32_MAX) {
		close(fd);
		return 1;
	}
	want = sizeof(h) + h.strbytes + h.npersons * sizeof(struct rperson) +
	    h.ngroups * sizeof(struct rgroup) +
	    h.nmembers * sizeof(struct membership);
	if ((uint64_t)st.st_size != want) {
		close(fd);
		return 1;
	}
	rc = load(fd, &h, r);
	close(fd);
	if (rc != 0) {
		roster_free(r);
		roster_init(r);
	}
	return rc;
}
