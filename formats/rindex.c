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

/* The blob under construction: every distinct pointer stored once. */
struct blob {
	char		*v;
	size_t		 len, cap;
	int		 overflow;
};

static uint32_t
blob_add(struct blob *b, const char *s)
{
	size_t n = strlen(s) + 1, off = b->len;

	if (s[0] == '\0')
		return 0;
	if (b->len + n > UINT32_MAX) {
		b->overflow = 1;
		return 0;
	}
	if (b->len + n > b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 1 << 20;
		char *nv;

		while (ncap < b->len + n)
			ncap *= 2;
		if ((nv = realloc(b->v, ncap)) == NULL) {
			b->overflow = 1;
			return 0;
		}
		b->v = nv;
		b->cap = ncap;
	}
	memcpy(b->v + b->len, s, n);
	b->len += n;
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

static int
build(const struct roster *r, struct blob *b, struct rperson **pp,
    struct rgroup **gp)
{
	struct rperson *p;
	struct rgroup *g;
	size_t i;

	memset(b, 0, sizeof(*b));
	if ((b->v = malloc(1 << 20)) == NULL)
		return error_sys("rindex");
	b->cap = 1 << 20;
	b->v[0] = '\0';	/* offset 0 is every empty string */
	b->len = 1;
	p = calloc(r->npersons ? r->npersons : 1, sizeof(*p));
	g = calloc(r->ngroups ? r->ngroups : 1, sizeof(*g));
	if (p == NULL || g == NULL) {
		free(p);
		free(g);
		return error_sys("rindex");
	}
	for (i = 0; i < r->npersons; i++) {
		const struct person *s = &r->persons[i];

		p[i].s[0] = blob_add(b, s->id);
		p[i].s[1] = blob_add(b, s->userid);
		p[i].s[2] = blob_add(b, s->given);
		p[i].s[3] = blob_add(b, s->family);
		p[i].s[4] = blob_add(b, s->email);
		p[i].s[5] = blob_add(b, s->role);
		p[i].s[6] = blob_add(b, s->nin);
		p[i].line = s->line;
		p[i].active = s->active;
	}
	for (i = 0; i < r->ngroups; i++) {
		const struct group *s = &r->groups[i];

		g[i].s[0] = blob_add(b, s->id);
		g[i].s[1] = blob_add(b, s->type);
		g[i].s[2] = blob_add(b, s->shortname);
		g[i].s[3] = blob_add(b, s->longname);
		g[i].s[4] = blob_add(b, s->parent);
		g[i].s[5] = blob_add(b, s->term);
		g[i].s[6] = blob_add(b, s->begin);
		g[i].s[7] = blob_add(b, s->end);
		g[i].s[8] = blob_add(b, s->orgname);
		g[i].s[9] = blob_add(b, s->orgunit);
		g[i].line = s->line;
	}
	*pp = p;
	*gp = g;
	if (b->overflow)
		return error_set("rindex: strings exceed 4 GiB");
	return 0;
}

/*
 * Write the roster r (sealed) as the index of the snapshot whose
 * identity is digest, atomically (temporary name, rename; not fsync'd:
 * see below), mode 0600.  Returns 0, or -1 (error set; no file left behind).
 */
int
rindex_write(const char *path, const struct roster *r,
    const unsigned char digest[32])
{
	struct rindex_header h;
	struct blob b;
	struct rperson *p = NULL;
	struct rgroup *g = NULL;
	char tmp[PATH_MAX];
	uint32_t crc = (uint32_t)crc32(0, Z_NULL, 0);
	int fd = -1, rc = -1;

	if (path_fmt(tmp, sizeof(tmp), "%s.tmp", path) == -1)
		return -1;
	if (build(r, &b, &p, &g) == -1)
		goto out;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, RINDEX_MAGIC, sizeof(h.magic));
	memcpy(h.snapshot, digest, sizeof(h.snapshot));
	h.datetime = (int64_t)r->datetime;
	h.npersons = r->npersons;
	h.ngroups = r->ngroups;
	h.nmembers = r->nmembers;
	h.strbytes = b.len;
	h.recsize = sizeof(struct membership);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600))
	    == -1) {
		error_sys("%s", tmp);
		goto out;
	}
	/* header first as a placeholder, then the payload, then the CRC */
	if (write_all(fd, &h, sizeof(h), NULL, tmp) == -1 ||
	    write_all(fd, b.v, b.len, &crc, tmp) == -1 ||
	    write_all(fd, p, r->npersons * sizeof(*p), &crc, tmp) == -1 ||
	    write_all(fd, g, r->ngroups * sizeof(*g), &crc, tmp) == -1 ||
	    write_all(fd, r->members, r->nmembers * sizeof(*r->members),
	    &crc, tmp) == -1)
		goto out;
	h.crc = crc;
	/* No fsync: the index is a cache.  A crash may leave it short or
	 * torn, which the size and CRC checks of rindex_read catch, and
	 * the next run parses the snapshot instead. */
	if (pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		error_sys("%s", tmp);
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		error_sys("%s", tmp);
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		error_sys("%s", path);
		goto out;
	}
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	if (rc == -1)
		unlink(tmp);
	free(b.v);
	free(p);
	free(g);
	return rc;
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
