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
 *   string blob: every string NUL-terminated, "" at offset 0, padded
 *     with NULs to a multiple of 8 bytes
 *   persons: struct rperson[npersons]
 *   groups:  struct rgroup[ngroups]
 *   members: struct membership[nmembers]
 *
 * The reader maps the file rather than reading it into fresh memory:
 * the strings and the members are used where they lie in the page
 * cache (the padding keeps every record aligned), and only the person
 * and group arrays, which hold pointers, are built.  Reading 290 MB
 * into new memory cost about 1 s of CPU at 1M persons / 10M
 * memberships, most of it the kernel clearing the pages (issue 13).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdalign.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "sisfeed.h"

#define RINDEX_MAGIC	"SISFIDX6"	/* 4: persons carry nin; 5: members
					 * a timeframe (16 bytes); 6: blob
					 * padded, records aligned */
#define RINDEX_ALIGN	8		/* the blob's size is a multiple */

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

/* The header and the padded blob leave every record 4-aligned, enough
 * for all three record types: the reader uses them where they lie. */
_Static_assert(sizeof(struct rindex_header) % RINDEX_ALIGN == 0,
    "rindex header size");
_Static_assert(alignof(struct rperson) <= 4 && alignof(struct rgroup) <= 4 &&
    alignof(struct membership) <= 4 && sizeof(struct rperson) % 4 == 0 &&
    sizeof(struct rgroup) % 4 == 0, "rindex record alignment");

/*
 * The payload on its way to the file through a 1 MiB buffer, checksummed
 * as it goes; the strings are written as they are met (no copy of them
 * all in memory), each string's offset being the bytes written since
 * the blob began.
 */
#define WBUF_SIZE	(1024 * 1024)
#define PERSON_AHEAD	8	/* persons whose strings are prefetched */
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

		/* a person's strings lie together, in the export's order,
		 * not the key's: fetched a few persons ahead */
		if (i + PERSON_AHEAD < r->npersons) {
			mem_prefetch(r->persons[i + PERSON_AHEAD].id);
			mem_prefetch(r->persons[i + PERSON_AHEAD].email);
		}
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
	while (!err && w->blob % RINDEX_ALIGN != 0) {	/* see Layout */
		if (wbuf_put(w, "", 1) == -1)
			err = 1;
		w->blob++;
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
 * snapshot_digest) and put it in place under its path (the old index
 * removed, then rename; not fsync'd: the index is a cache, and a crash
 * that leaves it short, torn or missing fails the size and CRC checks
 * of rindex_read, so the next run parses the snapshot instead).  Frees
 * pi.  0, or -1 with the error set and no temporary file left behind.
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
	/* The old index goes first: ext4 (auto_da_alloc) starts writing
	 * out a file renamed over another at once, and the next fsync of
	 * anything on that file system (the run log's) then waited for
	 * the whole index, 0.12 s at 1M persons / 10M memberships, for a
	 * file that needs no durability.  A crash in between leaves no
	 * index: the next run parses the snapshot. */
	if (unlink(pi->path) == -1 && errno != ENOENT) {
		error_sys("%s", pi->path);
		goto out;
	}
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

/*
 * 1 if every offset of n records of k strings lies inside the blob,
 * whose last byte is a NUL: every string read from it then ends inside
 * it.  (The CRC has already shown the index is the one written; this
 * keeps even a forged one from reading out of bounds.)
 */
static int
offsets_ok(const uint32_t *s, size_t stride, size_t n, size_t k,
    size_t len)
{
	size_t i, j;

	for (i = 0; i < n; i++)
		for (j = 0; j < k; j++)
			if (s[i * stride + j] >= len)
				return 0;
	return 1;
}

/* The person and group records are read once, into the roster's
 * arrays: let the pages wholly inside p[0..len) go from the process
 * (they stay in the page cache; peak RSS 35 MB less at 1M persons).
 * A hint: never fails. */
static void
drop_pages(const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p, e = a + len, pg;
	long sz = sysconf(_SC_PAGESIZE);

	if (sz <= 0)
		return;
	pg = (uintptr_t)sz;
	a = (a + pg - 1) & ~(pg - 1);
	e &= ~(pg - 1);
	if (e > a)
		(void)madvise((void *)a, e - a, MADV_DONTNEED);
}

/* Map the whole index file fd of size bytes, its pages in place (read
 * only while they are faulted in, so nothing is copied; then writable,
 * copy on write, like any roster's memory).  NULL on failure. */
static unsigned char *
map_file(int fd, size_t size)
{
	void *m;

	m = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	if (m == MAP_FAILED)
		return NULL;
	if (mprotect(m, size, PROT_READ | PROT_WRITE) == -1) {
		(void)munmap(m, size);
		return NULL;
	}
	return m;
}

/*
 * Fill the empty roster r from the index file fd (size bytes, header h
 * already checked against the size): map it, check the CRC and every
 * offset and index, build the person and group arrays.  0, 1 when the
 * payload is damaged, -1 on an error such as no memory.
 */
static int
load(int fd, size_t size, const struct rindex_header *h, struct roster *r)
{
	const struct rperson *p;
	const struct rgroup *g;
	const unsigned char *pay;
	const char *blob;
	size_t i, np = h->npersons, ng = h->ngroups, nm = h->nmembers;

	if ((r->map = map_file(fd, size)) == NULL)
		return error_sys("rindex");
	r->maplen = size;
	pay = (const unsigned char *)r->map + sizeof(*h);
	blob = (const char *)pay;
	p = (const struct rperson *)(pay + h->strbytes);
	g = (const struct rgroup *)(pay + h->strbytes + np * sizeof(*p));
	r->members = (struct membership *)(void *)(pay + h->strbytes +
	    np * sizeof(*p) + ng * sizeof(*g));
	if (crc_update((uint32_t)crc32(0, Z_NULL, 0), pay, size -
	    sizeof(*h)) != h->crc || h->strbytes == 0 || blob[0] != '\0' ||
	    blob[h->strbytes - 1] != '\0')
		return 1;
	if (!offsets_ok(&p[0].s[0], sizeof(*p) / 4, np, 7, h->strbytes) ||
	    !offsets_ok(&g[0].s[0], sizeof(*g) / 4, ng, 10, h->strbytes))
		return 1;
	for (i = 0; i < nm; i++)
		if (r->members[i].group >= ng || r->members[i].person >= np)
			return 1;
	r->persons = malloc((np ? np : 1) * sizeof(*r->persons));
	r->groups = malloc((ng ? ng : 1) * sizeof(*r->groups));
	if (r->persons == NULL || r->groups == NULL)
		return error_sys("rindex");
	mem_hint_huge(r->persons, np * sizeof(*r->persons));
	r->cappersons = np ? np : 1;
	r->capgroups = ng ? ng : 1;
	r->capmembers = nm;
	for (i = 0; i < np; i++) {
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
	for (i = 0; i < ng; i++) {
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
	drop_pages(p, np * sizeof(*p) + ng * sizeof(*g));
	r->npersons = np;
	r->ngroups = ng;
	r->nmembers = nm;
	r->datetime = (time_t)h->datetime;
	return 0;
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
	    h.nmembers > UINT32_MAX || h.strbytes > UINT32_MAX ||
	    h.strbytes % RINDEX_ALIGN != 0) {
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
	rc = load(fd, (size_t)want, &h, r);
	close(fd);
	if (rc != 0) {
		roster_free(r);
		roster_init(r);
	}
	return rc;
}
