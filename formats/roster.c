/*
 * roster.c -- the model: persons, groups and memberships sorted by key,
 * strings in one arena, and the small parsers every reader shares.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "sisfeed.h"

#define ARENA_BLOCK	(1024 * 1024)
#define ARENA_BLOCK_MAX	(64 * 1024 * 1024)

struct arena_block {
	struct arena_block	*next;
	size_t			 used, cap;
	char			 data[];
};

/*
 * Reserve len bytes, 8-aligned, in the arena.  Returns the space or
 * NULL (error set) when memory runs out.
 */
void *
arena_alloc(struct arena *a, size_t len)
{
	struct arena_block *b = a->head;
	size_t need = (len + 7) & ~(size_t)7;
	void *p;

	if (b == NULL || b->cap - b->used < need) {
		size_t cap = ARENA_BLOCK;

		/* blocks grow with the arena (to ARENA_BLOCK_MAX), so a
		 * national export's strings sit in a few big blocks on
		 * huge pages, not in hundreds of fresh 1 MiB ones */
		while (cap < ARENA_BLOCK_MAX && cap < a->bytes / 8)
			cap *= 2;
		if (cap < need)
			cap = need;
		if ((b = malloc(sizeof(*b) + cap)) == NULL) {
			error_sys("arena");
			return NULL;
		}
		mem_hint_huge(b, sizeof(*b) + cap);
		b->used = 0;
		b->cap = cap;
		b->next = a->head;
		a->head = b;
	}
	p = b->data + b->used;
	b->used += need;
	a->bytes += need;
	return p;
}

/*
 * Copy len bytes of s plus a NUL into the arena.  Returns the copy or
 * NULL (error set).  The empty string costs nothing.
 */
char *
arena_strndup(struct arena *a, const char *s, size_t len)
{
	char *p;

	if (len == 0)
		return (char *)"";
	if ((p = arena_alloc(a, len + 1)) == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/*
 * Free every block of the arena.
 */
void
arena_free(struct arena *a)
{
	struct arena_block *b, *next;

	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	a->head = NULL;
	a->bytes = 0;
}

/*
 * Move every block of src into dst, behind dst's newest block (which
 * stays the one strings are added to); src is left empty.
 */
void
arena_join(struct arena *dst, struct arena *src)
{
	struct arena_block *tail;

	if (src->head == NULL)
		return;
	if (dst->head == NULL) {
		dst->head = src->head;
	} else {
		for (tail = src->head; tail->next != NULL; tail = tail->next)
			;
		tail->next = dst->head->next;
		dst->head->next = src->head;
	}
	dst->bytes += src->bytes;
	src->head = NULL;
	src->bytes = 0;
}

/* Write "file:line: field: PREFIXreason\n" to the rejects file. */
static int
rejects_vput(struct rejects *rj, const char *file, unsigned long line,
    const char *field, const char *prefix, const char *fmt, va_list ap)
{
	if (rj->fp == NULL)
		return 0;
	if (fprintf(rj->fp, "%s:%lu: %s: %s", file, line, field, prefix) < 0)
		return error_sys("rejects");
	if (vfprintf(rj->fp, fmt, ap) < 0)
		return error_sys("rejects");
	if (fputc('\n', rj->fp) == EOF)
		return error_sys("rejects");
	return 0;
}

/* Keep the first real reject's line in rj->first (cut to fit). */
static void
rejects_keep_first(struct rejects *rj, const char *file,
    unsigned long line, const char *field, const char *fmt, va_list ap)
{
	int n;

	n = snprintf(rj->first, sizeof(rj->first), "%s:%lu: %s: ", file,
	    line, field);
	if (n >= 0 && (size_t)n < sizeof(rj->first))
		vsnprintf(rj->first + n, sizeof(rj->first) - (size_t)n, fmt,
		    ap);
}

/*
 * Append one "file:line: field: reason" line to the rejects file and
 * count it.  Returns 0, or -1 (error set) when the write fails.
 */
int
rejects_add(struct rejects *rj, const char *file, unsigned long line,
    const char *field, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (rj->count++ == 0) {
		va_start(ap, fmt);
		rejects_keep_first(rj, file, line, field, fmt, ap);
		va_end(ap);
	}
	va_start(ap, fmt);
	rc = rejects_vput(rj, file, line, field, "", fmt, ap);
	va_end(ap);
	return rc;
}

/*
 * Append "file:line: field: note: reason" for a record kept by a
 * reading rule, counted in notes (not in count).  0 or -1 (error set).
 */
int
rejects_note(struct rejects *rj, const char *file, unsigned long line,
    const char *field, const char *fmt, ...)
{
	va_list ap;
	int rc;

	rj->notes++;
	va_start(ap, fmt);
	rc = rejects_vput(rj, file, line, field, "note: ", fmt, ap);
	va_end(ap);
	return rc;
}

/*
 * Append "file:line: field: depends on rejected ..." for a record lost
 * with one it depends on, counted in dependents.  0 or -1 (error set).
 */
int
rejects_dependent(struct rejects *rj, const char *file, unsigned long line,
    const char *field, const char *fmt, ...)
{
	va_list ap;
	int rc;

	rj->dependents++;
	va_start(ap, fmt);
	rc = rejects_vput(rj, file, line, field, "depends on rejected ",
	    fmt, ap);
	va_end(ap);
	return rc;
}

/*
 * A value made safe to quote on one line of the rejects file: control
 * bytes become '?', long values are cut at a character boundary and
 * end in "...".  Returns buf.
 */
const char *
rejects_quote(const char *s, size_t len, char *buf, size_t bufsz)
{
	size_t i, n = len;
	int cut = 0;

	if (n > bufsz - 4) {
		n = bufsz - 4;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		cut = 1;
	}
	for (i = 0; i < n; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ?
		    '?' : s[i];
	if (cut) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

/*
 * An empty roster.
 */
void
roster_init(struct roster *r)
{
	memset(r, 0, sizeof(*r));
}

/*
 * Free all a roster holds.
 */
void
roster_free(struct roster *r)
{
	arena_free(&r->strings);
	free(r->persons);
	free(r->groups);
	if (r->map != NULL)
		(void)munmap(r->map, r->maplen);	/* holds the members */
	else
		free(r->members);
	free(r->spare);
	roster_init(r);
}

/* Grow an array to hold one more element of size sz. */
static int
grow(void **v, size_t *cap, size_t n, size_t sz)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 1024;
	if ((nv = realloc(*v, ncap * sz)) == NULL)
		return error_sys("roster");
	mem_hint_huge(nv, ncap * sz);
	*v = nv;
	*cap = ncap;
	return 0;
}

/* Make room in *v (capacity *cap elements of size sz) for n elements
 * in all, exactly.  0 or -1 (error set, *v unchanged). */
static int
reserve(void **v, size_t *cap, size_t n, size_t sz)
{
	void *nv;

	if (n <= *cap)
		return 0;
	if ((nv = realloc(*v, n * sz)) == NULL)
		return error_sys("roster");
	mem_hint_huge(nv, n * sz);
	*v = nv;
	*cap = n;
	return 0;
}

/* 1 if s holds a byte the XML output cannot carry as it is. */
static int
needs_cleaning(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t' && c != '\n') || c == 0xef)
			return 1;
	}
	return 0;
}

/* Space, tab, CR or LF: what is trimmed around every value. */
static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Copy s into the arena as the XML output will carry it and consumers
 * read it, so that the snapshot read back equals tonight's roster and
 * no record looks changed every night: white space around the value is
 * trimmed, CR LF and a lone CR become LF (XML parsers do the same),
 * other C0 controls but TAB and LF are dropped, and so are the
 * non-characters U+FFFE and U+FFFF.
 */

static const char *
dupstr(struct roster *r, const char *s)
{
	size_t len, i, o;
	char *d;

	if (s == NULL)
		return "";
	len = strlen(s);
	/* Trimmed, as consumers read values (a reading rule). */
	while (len > 0 && is_blank(s[len - 1]))
		len--;
	while (len > 0 && is_blank(*s)) {
		s++;
		len--;
	}
	if (!needs_cleaning(s, len))
		return arena_strndup(&r->strings, s, len);
	if ((d = arena_alloc(&r->strings, len + 1)) == NULL)
		return NULL;
	for (i = o = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r') {
			if (s[i + 1] != '\n')
				d[o++] = '\n';
			continue;
		}
		if (c < 0x20 && c != '\t' && c != '\n')
			continue;
		if (c == 0xef && i + 2 < len &&
		    (unsigned char)s[i + 1] == 0xbf &&
		    ((unsigned char)s[i + 2] == 0xbe ||
		    (unsigned char)s[i + 2] == 0xbf)) {
			i += 2;
			continue;
		}
		d[o++] = (char)c;
	}
	d[o] = '\0';
	return d;
}

/*
 * Copy *p into the roster: its strings into the arena.  Returns 0 or
 * -1 (error set) when memory runs out.
 */
int
roster_add_person(struct roster *r, const struct person *p)
{
	struct person *d;

	if (grow((void **)&r->persons, &r->cappersons, r->npersons,
	    sizeof(*d)) == -1)
		return -1;
	d = &r->persons[r->npersons];
	*d = *p;
	if ((d->id = dupstr(r, p->id)) == NULL ||
	    (d->userid = dupstr(r, p->userid)) == NULL ||
	    (d->given = dupstr(r, p->given)) == NULL ||
	    (d->family = dupstr(r, p->family)) == NULL ||
	    (d->email = dupstr(r, p->email)) == NULL ||
	    (d->role = dupstr(r, p->role)) == NULL ||
	    (d->nin = dupstr(r, p->nin)) == NULL)
		return -1;
	r->npersons++;
	return 0;
}

/*
 * Move src's persons and their strings after dst's (a part of the
 * persons file read on another thread), each line moved by `lines`.
 * Returns 0, or -1 (error set, nothing moved) when memory runs out.
 */
int
roster_append_persons(struct roster *dst, struct roster *src,
    uint32_t lines)
{
	size_t i, n = dst->npersons;

	if (src->npersons == 0)
		return 0;
	if (reserve((void **)&dst->persons, &dst->cappersons,
	    n + src->npersons, sizeof(*dst->persons)) == -1)
		return -1;
	memcpy(dst->persons + n, src->persons,
	    src->npersons * sizeof(*src->persons));
	for (i = 0; i < src->npersons; i++)
		dst->persons[n + i].line += lines;
	dst->npersons += src->npersons;
	arena_join(&dst->strings, &src->strings);
	free(src->persons);
	src->persons = NULL;
	src->npersons = src->cappersons = 0;
	return 0;
}

/*
 * Move src's memberships after dst's (a part of the memberships file
 * read on another thread); src's array becomes dst's spare when dst
 * has none.  Returns 0, or -1 (error set, nothing moved) when memory
 * runs out.
 */
int
roster_append_members(struct roster *dst, struct roster *src)
{
	size_t n = dst->nmembers;

	if (src->nmembers == 0)
		return 0;
	if (reserve((void **)&dst->members, &dst->capmembers,
	    n + src->nmembers, sizeof(*dst->members)) == -1)
		return -1;
	/* roster_add_member zeroed their padding: the index writes it */
	memcpy(dst->members + n, src->members,
	    src->nmembers * sizeof(*src->members));
	dst->nmembers += src->nmembers;
	if (dst->spare == NULL) {
		dst->spare = src->members;
		dst->sparelen = src->capmembers * sizeof(*src->members);
	} else
		free(src->members);
	src->members = NULL;
	src->nmembers = src->capmembers = 0;
	return 0;
}

/*
 * Copy *g into the roster.  Returns 0 or -1 (error set).
 */
int
roster_add_group(struct roster *r, const struct group *g)
{
	struct group *d;

	if (grow((void **)&r->groups, &r->capgroups, r->ngroups,
	    sizeof(*d)) == -1)
		return -1;
	d = &r->groups[r->ngroups];
	*d = *g;
	if ((d->id = dupstr(r, g->id)) == NULL ||
	    (d->type = dupstr(r, g->type)) == NULL ||
	    (d->shortname = dupstr(r, g->shortname)) == NULL ||
	    (d->longname = dupstr(r, g->longname)) == NULL ||
	    (d->parent = dupstr(r, g->parent)) == NULL ||
	    (d->term = dupstr(r, g->term)) == NULL ||
	    (d->begin = dupstr(r, g->begin)) == NULL ||
	    (d->end = dupstr(r, g->end)) == NULL ||
	    (d->orgname = dupstr(r, g->orgname)) == NULL ||
	    (d->orgunit = dupstr(r, g->orgunit)) == NULL)
		return -1;
	r->ngroups++;
	return 0;
}

/*
 * Append a membership whose indexes are already resolved.  Returns 0
 * or -1 (error set).
 */
int
roster_add_member(struct roster *r, const struct membership *m)
{
	struct membership *d;

	if (grow((void **)&r->members, &r->capmembers, r->nmembers,
	    sizeof(*m)) == -1)
		return -1;
	d = &r->members[r->nmembers++];
	memset(d, 0, sizeof(*d));	/* padding too: the index writes it */
	d->group = m->group;
	d->person = m->person;
	d->role = m->role;
	d->active = m->active;
	d->begin = m->begin;
	d->end = m->end;
	return 0;
}

/*
 * Sorting records by key.  Each record gets an 8-byte big-endian digit
 * of its key, taken after the prefix every key shares (often "S" or
 * "student-"), and these (digit, index) pairs are radix sorted: linear,
 * and the keys themselves are not touched again but where two digits
 * tie.  Ties (equal digits) are ordered by the rest of the key, then by
 * line, so duplicates stay in file order.
 */
struct keyslot {
	uint64_t	 digit;
	uint32_t	 idx;
};

/* The ordering context of a tie run. */
struct tiectx {
	const char	*base;
	size_t		 size, koff, loff, skip;
};

static const char *
key_at(const struct tiectx *t, uint32_t idx)
{
	return *(const char *const *)(t->base + (size_t)idx * t->size +
	    t->koff);
}

static uint32_t
line_at(const struct tiectx *t, uint32_t idx)
{
	uint32_t line;

	memcpy(&line, t->base + (size_t)idx * t->size + t->loff,
	    sizeof(line));
	return line;
}

/*
 * Compare the tails of two keys past skip bytes, then their lines.  A
 * key shorter than skip ends inside the tied digit, so both keys are
 * equal up to its end: compare from there, never past a NUL.
 */
static int
tie_cmp(const struct tiectx *t, uint32_t a, uint32_t b)
{
	const char *x = key_at(t, a), *y = key_at(t, b);
	size_t off = strnlen(x, t->skip);
	int c = strcmp(x + off, y + off);

	if (c != 0)
		return c;
	return (line_at(t, a) > line_at(t, b)) -
	    (line_at(t, a) < line_at(t, b));
}

/* Insertion sort of a tie run (runs are short unless keys are alike
 * far past the shared prefix; then a merge sort takes over). */
static void
sort_ties(const struct tiectx *t, struct keyslot *v, size_t n,
    struct keyslot *tmp)
{
	size_t i, j, h, l, r, k;

	if (n <= 16) {
		for (i = 1; i < n; i++) {
			struct keyslot x = v[i];

			for (j = i; j > 0 && tie_cmp(t, v[j - 1].idx,
			    x.idx) > 0; j--)
				v[j] = v[j - 1];
			v[j] = x;
		}
		return;
	}
	h = n / 2;
	sort_ties(t, v, h, tmp);
	sort_ties(t, v + h, n - h, tmp);
	for (l = 0, r = h, k = 0; l < h || r < n; k++)
		tmp[k] = r >= n || (l < h && tie_cmp(t, v[l].idx,
		    v[r].idx) <= 0) ? v[l++] : v[r++];
	memcpy(v, tmp, n * sizeof(*v));
}

/* Length of the prefix all n keys share. */
static size_t
shared_prefix(const struct tiectx *t, size_t n)
{
	const char *first = key_at(t, 0);
	size_t lcp = strlen(first), i, k;

	for (i = 1; i < n && lcp > 0; i++) {
		const char *s = key_at(t, (uint32_t)i);

		for (k = 0; k < lcp && s[k] == first[k]; k++)
			;
		lcp = k;
	}
	return lcp;
}

static uint64_t
digit_of_key(const char *s, size_t skip)
{
	uint64_t d = 0;
	size_t i, len = strlen(s);
	const unsigned char *p = (const unsigned char *)s + skip;

	for (i = 0; i < 8; i++)
		d = d << 8 | (skip + i < len ? p[i] : 0);
	return d;
}

static void
radix_keyslots(struct keyslot *a, struct keyslot *b, size_t n,
    size_t *count, struct keyslot **out)
{
	struct keyslot *t;
	size_t i, sum;
	int pass;

	for (pass = 0; pass < 4; pass++) {
		int sh = pass * 16;

		memset(count, 0, (1 << 16) * sizeof(*count));
		for (i = 0; i < n; i++)
			count[(a[i].digit >> sh) & 0xffff]++;
		if (count[(a[0].digit >> sh) & 0xffff] == n)
			continue;
		for (i = 0, sum = 0; i < (1 << 16); i++) {
			size_t c = count[i];

			count[i] = sum;
			sum += c;
		}
		for (i = 0; i < n; i++)
			b[count[(a[i].digit >> sh) & 0xffff]++] = a[i];
		t = a;
		a = b;
		b = t;
	}
	*out = a;
}

#define SEAL_SPLIT	(64 * 1024)	/* records worth two threads */
#define GATHER_AHEAD	16		/* records a gather prefetches */

/* What the halves of a sort's loops share. */
struct sortjob {
	const struct tiectx	*t;
	struct keyslot		*a;	/* digits: filled */
	const struct keyslot	*v;	/* gather: the order */
	char			*sorted;
};

/* The digits of records [lo, hi). */
static void
sort_digits(void *arg, size_t lo, size_t hi)
{
	const struct sortjob *j = arg;
	size_t i;

	for (i = lo; i < hi; i++) {
		j->a[i].digit = digit_of_key(key_at(j->t, (uint32_t)i),
		    j->t->skip);
		j->a[i].idx = (uint32_t)i;
	}
}

/* Sorted records [lo, hi) copied from where they lie (anywhere: the
 * next ones are prefetched). */
static void
sort_gather(void *arg, size_t lo, size_t hi)
{
	const struct sortjob *j = arg;
	const struct tiectx *t = j->t;
	size_t i;

	for (i = lo; i < hi; i++) {
		if (i + GATHER_AHEAD < hi)
			mem_prefetch(t->base +
			    (size_t)j->v[i + GATHER_AHEAD].idx * t->size);
		memcpy(j->sorted + i * t->size,
		    t->base + (size_t)j->v[i].idx * t->size, t->size);
	}
}

/*
 * Sort n records of size sz at *basep by their key (a const char * at
 * koff), ties by line (a uint32_t at loff).  The array is replaced by
 * a sorted copy; the digits and the copy run on two threads when there
 * are records enough.  Returns 0 or -1 (error set; *basep unchanged).
 */
static int
sort_by_key(void **basep, size_t n, size_t sz, size_t koff, size_t loff)
{
	struct keyslot *a, *b, *v;
	struct tiectx t;
	struct sortjob job;
	char *sorted;
	size_t i, j, *count;

	if (n < 2)
		return 0;
	t.base = *basep;
	t.size = sz;
	t.koff = koff;
	t.loff = loff;
	/* Already in order with no key twice (a snapshot's persons): as
	 * it is. */
	for (i = 1; i < n; i++)
		if (strcmp(key_at(&t, (uint32_t)(i - 1)),
		    key_at(&t, (uint32_t)i)) >= 0)
			break;
	if (i == n)
		return 0;
	t.skip = shared_prefix(&t, n);
	a = malloc(n * sizeof(*a));
	b = malloc(n * sizeof(*b));
	sorted = malloc(n * sz);
	count = malloc((1 << 16) * sizeof(*count));
	if (a == NULL || b == NULL || sorted == NULL || count == NULL) {
		free(a);
		free(b);
		free(sorted);
		free(count);
		return error_sys("roster");
	}
	mem_hint_huge(a, n * sizeof(*a));
	mem_hint_huge(b, n * sizeof(*b));
	mem_hint_huge(sorted, n * sz);
	job.t = &t;
	job.a = a;
	thread_split(n, SEAL_SPLIT, sort_digits, &job);
	radix_keyslots(a, b, n, count, &v);
	free(count);
	t.skip += 8;
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && v[j].digit == v[i].digit; j++)
			;
		if (j - i > 1)
			sort_ties(&t, v + i, j - i, v == a ? b : a);
	}
	job.v = v;
	job.sorted = sorted;
	thread_split(n, SEAL_SPLIT, sort_gather, &job);
	free(a);
	free(b);
	free(*basep);
	*basep = sorted;
	return 0;
}

/* The search for a sorted array's first key twice, in two halves. */
struct dupscan {
	const char	*v;
	size_t		 n, sz, koff;
	size_t		 first[2];	/* of each half; n if none */
};

#define DUP_KEY(d, i)	(*(const char *const *)(const void *) \
			    ((d)->v + (i) * (d)->sz + (d)->koff))

/* The first i in [lo, hi) whose key is the next one's, into first[]
 * (the keys lie anywhere: the ones ahead are prefetched). */
static void
dup_scan(void *arg, size_t lo, size_t hi)
{
	struct dupscan *d = arg;
	size_t i, *first = &d->first[lo == 0 ? 0 : 1];

	*first = d->n;
	for (i = lo; i < hi && i + 1 < d->n; i++) {
		if (i + 1 + GATHER_AHEAD < d->n)
			mem_prefetch(DUP_KEY(d, i + 1 + GATHER_AHEAD));
		if (strcmp(DUP_KEY(d, i), DUP_KEY(d, i + 1)) == 0) {
			*first = i;
			return;
		}
	}
}

/* The first i of the sorted array whose key is the next one's, or n:
 * the records before it are unique and stay where they are. */
static size_t
first_duplicate(const void *base, size_t n, size_t sz, size_t koff)
{
	struct dupscan d = { base, n, sz, koff, { n, n } };

	thread_split(n, SEAL_SPLIT, dup_scan, &d);
	return d.first[0] < n ? d.first[0] : d.first[1];
}

/*
 * Drop every run of equal keys from a sorted array of n elements of
 * size sz whose key (const char *) is at offset koff and line at loff;
 * each dropped copy is rejected.  Returns the new count or -1.
 */
static long
drop_duplicates(void *base, size_t n, size_t sz, size_t koff, size_t loff,
    struct rejects *rj, const char *file, const char *what)
{
	char *v = base;
	size_t i, out, j, k;

	i = out = first_duplicate(base, n, sz, koff);
	while (i < n) {
		const char *key = *(const char **)(v + i * sz + koff);

		for (j = i + 1; j < n; j++)
			if (strcmp(key,
			    *(const char **)(v + j * sz + koff)) != 0)
				break;
		if (j - i == 1) {
			if (out != i)
				memcpy(v + out * sz, v + i * sz, sz);
			out++;
		} else {
			uint32_t first = *(uint32_t *)(v + i * sz + loff);

			if (rj->dup != NULL &&
			    rj->dup(rj->duparg, what, key, first) == -1)
				return -1;

			for (k = i; k < j; k++) {
				uint32_t line = *(uint32_t *)(v + k * sz + loff);
				uint32_t other = k == i ?
				    *(uint32_t *)(v + (i + 1) * sz + loff) :
				    first;

				if (rejects_add(rj, file, line, "id",
				    "duplicate %s key '%s' (also on line %u)",
				    what, key, other) == -1)
					return -1;
			}
		}
		i = j;
	}
	return (long)out;
}

/*
 * Reject every group on a parent cycle (A -> B -> A); a group that
 * names itself is a root, as itslearning has it.  Their children are
 * then rejected for an unknown parent.  Needs sorted, unique groups.
 * Returns 0 or -1.
 */
static int
reject_cycles(struct roster *r, struct rejects *rj, const char *file)
{
	unsigned char *state;	/* 0 new, 1 on the current walk, 2 done */
	size_t i, out;
	long k, j;

	if (r->ngroups == 0)
		return 0;
	if ((state = calloc(r->ngroups, 1)) == NULL)
		return error_sys("roster");
	for (i = 0; i < r->ngroups; i++) {
		for (k = (long)i; k >= 0 && state[k] == 0; ) {
			const struct group *g = &r->groups[k];

			state[k] = 1;
			if (g->parent[0] == '\0' ||
			    strcmp(g->parent, g->id) == 0)
				break;
			k = roster_find_group(r, g->parent);
		}
		if (k >= 0 && state[k] == 1 && r->groups[k].parent[0] != '\0' &&
		    strcmp(r->groups[k].parent, r->groups[k].id) != 0) {
			/* k is on a cycle: mark the cycle 3 */
			for (j = k; state[j] != 3; j = roster_find_group(r,
			    r->groups[j].parent))
				state[j] = 3;
		}
		for (k = (long)i; k >= 0 && state[k] == 1; ) {
			const struct group *g = &r->groups[k];

			state[k] = 2;
			if (g->parent[0] == '\0')
				break;
			k = roster_find_group(r, g->parent);
		}
	}
	for (i = out = 0; i < r->ngroups; i++) {
		if (state[i] == 3) {
			if (rejects_add(rj, file, r->groups[i].line, "parent",
			    "parent cycle through '%s'",
			    r->groups[i].parent) == -1) {
				free(state);
				return -1;
			}
			continue;
		}
		r->groups[out++] = r->groups[i];
	}
	r->ngroups = out;
	free(state);
	return 0;
}

/*
 * Keep every group whose parent is not a known group as a root: the
 * link is dropped with a note, never the group (a reading rule), so
 * nothing below it is lost.  One lookup per group.  Returns 0 or -1.
 */
static int
drop_dangling_parents(struct roster *r, struct rejects *rj,
    const char *file)
{
	size_t i;

	for (i = 0; i < r->ngroups; i++) {
		struct group *g = &r->groups[i];

		if (g->parent[0] == '\0' || strcmp(g->parent, g->id) == 0 ||
		    roster_find_group(r, g->parent) >= 0)
			continue;
		if (rejects_note(rj, file, g->line, "parent",
		    "unknown group '%s': kept as a root", g->parent) == -1)
			return -1;
		g->parent = "";
	}
	return 0;
}

/*
 * Sort persons and groups by key; reject every copy of a duplicated
 * key, then groups on a parent cycle; a group whose parent is unknown
 * (or was rejected) is kept as a root, with a note.  Returns 0 or -1.
 */
int
roster_seal_entities(struct roster *r, struct rejects *rj,
    const char *personfile, const char *groupfile)
{
	long n;

	if (sort_by_key((void **)&r->persons, r->npersons,
	    sizeof(struct person), offsetof(struct person, id),
	    offsetof(struct person, line)) == -1 ||
	    sort_by_key((void **)&r->groups, r->ngroups,
	    sizeof(struct group), offsetof(struct group, id),
	    offsetof(struct group, line)) == -1)
		return -1;
	r->cappersons = r->npersons > 0 ? r->npersons : r->cappersons;
	r->capgroups = r->ngroups > 0 ? r->ngroups : r->capgroups;
	n = drop_duplicates(r->persons, r->npersons, sizeof(struct person),
	    offsetof(struct person, id), offsetof(struct person, line),
	    rj, personfile, "person");
	if (n < 0)
		return -1;
	r->npersons = (size_t)n;
	n = drop_duplicates(r->groups, r->ngroups, sizeof(struct group),
	    offsetof(struct group, id), offsetof(struct group, line),
	    rj, groupfile, "group");
	if (n < 0)
		return -1;
	r->ngroups = (size_t)n;

	if (reject_cycles(r, rj, groupfile) == -1)
		return -1;
	return drop_dangling_parents(r, rj, groupfile);
}

static long
find(const void *base, size_t n, size_t sz, const char *key)
{
	const char *v = base;
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, *(const char *const *)(v + mid * sz));

		if (c == 0)
			return (long)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

/*
 * Index of the person with this key in a sealed roster, or -1.
 */
long
roster_find_person(const struct roster *r, const char *key)
{
	return find(r->persons, r->npersons, sizeof(struct person), key);
}

/*
 * Index of the group with this key in a sealed roster, or -1.
 */
long
roster_find_group(const struct roster *r, const char *key)
{
	return find(r->groups, r->ngroups, sizeof(struct group), key);
}

/* One more run.  0 or -1. */
static int
linemap_run(struct linemap *lines, uint32_t pos, uint32_t line)
{
	const struct linerun *last = lines->n > 0 ?
	    &lines->v[lines->n - 1] : NULL;

	if (last != NULL && last->line + (pos - last->pos) == line)
		return 0;
	if (grow((void **)&lines->v, &lines->cap, lines->n,
	    sizeof(*lines->v)) == -1)
		return -1;
	lines->v[lines->n].pos = pos;
	lines->v[lines->n].line = line;
	lines->n++;
	return 0;
}

/*
 * Record the next position as on line: a new run only where the line
 * is not the one after the last position's.  0 or -1 (error set).
 */
int
linemap_add(struct linemap *lines, uint32_t line)
{
	if (linemap_run(lines, lines->next, line) == -1)
		return -1;
	lines->next++;
	return 0;
}

/*
 * Append b's positions after a's, each line moved by `by` (b counted
 * its lines from a cut in the file).  0 or -1 (error set).
 */
int
linemap_append(struct linemap *a, const struct linemap *b, uint32_t by)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (linemap_run(a, a->next + b->v[i].pos,
		    b->v[i].line + by) == -1)
			return -1;
	a->next += b->next;
	return 0;
}

/* The line of position pos: the last run at or before it, found by
 * bisection (0 in an empty map).  Never fails. */
uint32_t
linemap_line(const struct linemap *lines, uint32_t pos)
{
	size_t lo = 0, hi = lines->n, mid;

	if (hi == 0)
		return 0;
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (lines->v[mid].pos <= pos)
			lo = mid;
		else
			hi = mid;
	}
	return lines->v[lo].line + (pos - lines->v[lo].pos);
}

/* Free the runs.  Never fails. */
void
linemap_free(struct linemap *lines)
{
	free(lines->v);
	memset(lines, 0, sizeof(*lines));
}

/*
 * A membership as one sort key, (group, person, role) packed into 64
 * bits, with its original position (for reject line numbers) and its
 * state.
 */
struct mkey {
	uint64_t	key;
	uint32_t	pos;
	uint32_t	active;
};
#define MKEY_ROLEBITS	4	/* roles 0..8 */
#define MKEY_DIGIT	11	/* bits a radix pass */
#define MKEY_PASSES	6	/* ceil(64 / MKEY_DIGIT) */

/* Bits needed for the numbers 0..n-1 (at least 1). */
static unsigned
bits_for(size_t n)
{
	unsigned b = 1;

	while (b < 64 && ((size_t)1 << b) < n)
		b++;
	return b;
}

/*
 * A radix sort's digit counts (zeroed) and its second buffer of n
 * elements of size bytes.  0, or -1 (error set, nothing allocated).
 */
static int
radix_alloc(size_t (**count)[1 << MKEY_DIGIT], void **b, size_t n,
    size_t size)
{
	if ((*count = calloc(MKEY_PASSES, sizeof(**count))) == NULL)
		return error_sys("roster");
	if ((*b = malloc(n * size)) == NULL) {
		free(*count);
		return error_sys("roster");
	}
	mem_hint_huge(*b, n * size);
	return 0;
}

/* One digit's counts [0, mask] made into its buckets' start offsets. */
static void
radix_offsets(size_t *count, size_t mask)
{
	size_t i, sum = 0, c;

	for (i = 0; i <= mask; i++) {
		c = count[i];
		count[i] = sum;
		sum += c;
	}
}

/*
 * Sort v[0..n) by key, stable, by LSD radix sort over the low `bits`
 * bits: linear in n, so ten times the memberships cost ten times the
 * time.  Every digit's counts come from one read of v, and a digit
 * every record shares costs no move.  *vp may be swapped for the
 * other buffer.  Returns 0 or -1.
 */
static int
radix_sort(struct mkey **vp, size_t n, unsigned bits)
{
	size_t (*count)[1 << MKEY_DIGIT];
	struct mkey *a = *vp, *b, *t;
	void *buf;
	size_t d, i, passes = (bits + MKEY_DIGIT - 1) / MKEY_DIGIT;
	const size_t mask = ((size_t)1 << MKEY_DIGIT) - 1;

	if (radix_alloc(&count, &buf, n, sizeof(*b)) == -1)
		return -1;
	b = buf;
	for (i = 0; i < n; i++)
		for (d = 0; d < passes; d++)
			count[d][(a[i].key >> (d * MKEY_DIGIT)) & mask]++;
	for (d = 0; d < passes; d++) {
		unsigned shift = (unsigned)(d * MKEY_DIGIT);

		if (count[d][(a[0].key >> shift) & mask] == n)
			continue;
		radix_offsets(count[d], mask);
		for (i = 0; i < n; i++)
			b[count[d][(a[i].key >> shift) & mask]++] = a[i];
		t = a;
		a = b;
		b = t;
	}
	free(b);
	free(count);
	*vp = a;
	return 0;
}

/*
 * The memberships in sort order, in one of two layouts.  Packed, when
 * the (group, person, role) key and the position fit 64 bits: one word
 * each, key above position, and the states in a bitmap by position
 * (small enough to stay in the cache) -- half the memory of the wide
 * layout, struct mkey, which is the fallback.
 */
struct msorted {
	struct mkey	*wide;
	uint64_t	*packed;
	uint64_t	*state;		/* packed: bit pos = active */
	unsigned	 pbits, keybits, posbits;
};

/*
 * The split sort of radix_sort_packed: one pass on the top MSD_BITS of
 * the key scatters the words into buckets (a few thousand words each
 * at ten million), then each bucket is sorted on the rest of its key
 * by LSD passes where it lies in the cache: one pass over the whole
 * array where LSD passes make four.  The count and the scatter cut the
 * words at n/2 and the buckets are shared out by where they start, so
 * each half runs on a thread of its own (thread_split) and the result
 * is the same however the halves ran.  Stable, like the LSD sort.
 */
#define MSD_BITS	11
#define BUCKET_BITS	8	/* bits of a pass inside a bucket */
#define BUCKET_SMALL	24	/* words an insertion sort takes */

struct msdjob {
	uint64_t	*a, *b;		/* the words; scratch */
	size_t		 n, cut;	/* cut: n/2, the halves' border */
	unsigned	 lo, shift;	/* key bits lo..shift below the top
					 * digit, bits shift.. */
	size_t		 count[2][1 << MSD_BITS];  /* of each half */
	size_t		 start[(1 << MSD_BITS) + 1];
};

static size_t
msd_digit(const struct msdjob *j, uint64_t w)
{
	return (size_t)(w >> j->shift) & ((1u << MSD_BITS) - 1);
}

/* Count the top digits of words [lo, hi), each half in its own. */
static void
msd_count(void *arg, size_t lo, size_t hi)
{
	struct msdjob *j = arg;
	size_t h, i, from, to;

	for (h = 0; h < 2; h++) {
		from = h == 0 ? lo : lo > j->cut ? lo : j->cut;
		to = h == 0 ? (hi < j->cut ? hi : j->cut) : hi;
		for (i = from; i < to; i++)
			j->count[h][msd_digit(j, j->a[i])]++;
	}
}

/* Scatter words [lo, hi) of a into their buckets in b; count[] holds
 * each half's next place in every bucket. */
static void
msd_scatter(void *arg, size_t lo, size_t hi)
{
	struct msdjob *j = arg;
	size_t h, i, from, to, *next;

	for (h = 0; h < 2; h++) {
		from = h == 0 ? lo : lo > j->cut ? lo : j->cut;
		to = h == 0 ? (hi < j->cut ? hi : j->cut) : hi;
		next = j->count[h];
		for (i = from; i < to; i++)
			j->b[next[msd_digit(j, j->a[i])]++] = j->a[i];
	}
}

/* Sort the m words of one bucket, at src, on bits lo..hi into dst
 * (src is then scratch).  Equal keys keep their order. */
static void
bucket_sort(uint64_t *src, uint64_t *dst, size_t m, unsigned lo,
    unsigned hi)
{
	size_t count[1 << BUCKET_BITS], i, k, sum, c;
	uint64_t *from = src, *to = dst, *t, x;
	unsigned sh, w;

	if (m <= BUCKET_SMALL) {
		/* the words below lo are the positions: whole words in
		 * order are the keys in order, equal ones by position */
		for (i = 0; i < m; i++) {
			x = src[i];
			for (k = i; k > 0 && dst[k - 1] > x; k--)
				dst[k] = dst[k - 1];
			dst[k] = x;
		}
		return;
	}
	for (sh = lo; sh < hi; sh += BUCKET_BITS) {
		w = hi - sh < BUCKET_BITS ? hi - sh : BUCKET_BITS;
		memset(count, 0, ((size_t)1 << w) * sizeof(count[0]));
		for (i = 0; i < m; i++)
			count[(from[i] >> sh) & ((1u << w) - 1)]++;
		if (count[(from[0] >> sh) & ((1u << w) - 1)] == m)
			continue;
		for (i = 0, sum = 0; i < ((size_t)1 << w); i++) {
			c = count[i];
			count[i] = sum;
			sum += c;
		}
		for (i = 0; i < m; i++)
			to[count[(from[i] >> sh) & ((1u << w) - 1)]++] =
			    from[i];
		t = from;
		from = to;
		to = t;
	}
	if (from != dst)
		memcpy(dst, from, m * sizeof(*dst));
}

/* Sort the buckets that start in [lo, hi): from b back into a. */
static void
msd_buckets(void *arg, size_t lo, size_t hi)
{
	struct msdjob *j = arg;
	size_t d, s, m;

	for (d = 0; d < ((size_t)1 << MSD_BITS); d++) {
		s = j->start[d];
		m = j->start[d + 1] - s;
		if (m == 0 || s < lo || s >= hi)
			continue;
		bucket_sort(j->b + s, j->a + s, m, j->lo, j->shift);
	}
}

/* Sort a[0..n) on bits lo..lo+bits (bits > MSD_BITS) with b as
 * scratch, the result in a.  0 or -1 (error set). */
static int
radix_sort_split(uint64_t *a, uint64_t *b, size_t n, unsigned lo,
    unsigned bits)
{
	struct msdjob *j;
	size_t d, c0, c1;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return error_sys("roster");
	j->a = a;
	j->b = b;
	j->n = n;
	j->cut = n / 2;
	j->lo = lo;
	j->shift = lo + bits - MSD_BITS;
	thread_split(n, SEAL_SPLIT, msd_count, j);
	for (d = 0; d < ((size_t)1 << MSD_BITS); d++) {
		c0 = j->count[0][d];
		c1 = j->count[1][d];
		j->count[0][d] = j->start[d];
		j->count[1][d] = j->start[d] + c0;
		j->start[d + 1] = j->start[d] + c0 + c1;
	}
	thread_split(n, SEAL_SPLIT, msd_scatter, j);
	thread_split(n, SEAL_SPLIT, msd_buckets, j);
	free(j);
	return 0;
}

/*
 * Sort the words v[0..n) stably by bits lo..lo+bits (LSD radix: the
 * lower bits keep the order they had).  The second buffer is scratch
 * (n words, left undefined) when given, else allocated; *vp may be
 * swapped for an allocated one, never for scratch.  With scratch, a key
 * wider than one digit and words enough, radix_sort_split sorts
 * instead, on two threads.  0 or -1.
 */
static int
radix_sort_packed(uint64_t **vp, size_t n, unsigned lo, unsigned bits,
    uint64_t *scratch)
{
	size_t (*count)[1 << MKEY_DIGIT];
	uint64_t *a = *vp, *b, *t;
	void *buf = NULL;
	size_t d, i, passes = (bits + MKEY_DIGIT - 1) / MKEY_DIGIT;
	const size_t mask = ((size_t)1 << MKEY_DIGIT) - 1;
	unsigned shift;

	if (scratch != NULL && bits > MSD_BITS && n >= SEAL_SPLIT)
		return radix_sort_split(a, scratch, n, lo, bits);
	if (scratch != NULL) {
		if ((count = calloc(MKEY_PASSES, sizeof(*count))) == NULL)
			return error_sys("roster");
		b = scratch;
	} else {
		if (radix_alloc(&count, &buf, n, sizeof(*b)) == -1)
			return -1;
		b = buf;
	}
	for (i = 0; i < n; i++)
		for (d = 0; d < passes; d++)
			count[d][(a[i] >> (lo + d * MKEY_DIGIT)) & mask]++;
	for (d = 0; d < passes; d++) {
		shift = lo + (unsigned)(d * MKEY_DIGIT);
		if (count[d][(a[0] >> shift) & mask] == n)
			continue;
		radix_offsets(count[d], mask);
		for (i = 0; i < n; i++)
			b[count[d][(a[i] >> shift) & mask]++] = a[i];
		t = a;
		a = b;
		b = t;
	}
	if (a == scratch) {
		memcpy(b, a, n * sizeof(*a));
		a = b;
	} else if (b != scratch)
		free(b);
	free(count);
	*vp = a;
	return 0;
}

/* The (group, person, role) key of m. */
static uint64_t
member_key(const struct membership *m, unsigned pbits)
{
	return (uint64_t)m->group << (pbits + MKEY_ROLEBITS) |
	    (uint64_t)m->person << MKEY_ROLEBITS | (m->role & 0xf);
}

/*
 * Sort r's memberships into s (keybits and posbits set).  The packed
 * layout sorts with r->members as its second buffer (the sorted copy
 * holds all the sort needs, so the caller rewrites r->members from it;
 * 80 MB of fresh memory fewer at ten million), so r->members is
 * undefined after it.  0 or -1.
 */
_Static_assert(sizeof(struct membership) >= sizeof(uint64_t),
    "a membership holds a sort word");

static int
msorted_sort(struct msorted *s, struct roster *r)
{
	unsigned pbits = s->pbits;
	size_t i, n = r->nmembers;

	if (s->keybits + s->posbits <= 64) {
		if (r->sparelen >= n * sizeof(*s->packed)) {
			s->packed = r->spare;	/* freed as ms.packed */
			r->spare = NULL;
			r->sparelen = 0;
		}
		if ((s->packed == NULL && (s->packed = malloc(n *
		    sizeof(*s->packed))) == NULL) ||
		    (s->state = calloc(n / 64 + 1, sizeof(*s->state))) ==
		    NULL)
			return error_sys("roster");
		mem_hint_huge(s->packed, n * sizeof(*s->packed));
		for (i = 0; i < n; i++) {
			s->packed[i] = member_key(&r->members[i], pbits) <<
			    s->posbits | i;
			s->state[i / 64] |= (uint64_t)(r->members[i].active
			    != 0) << (i % 64);
		}
		return radix_sort_packed(&s->packed, n, s->posbits,
		    s->keybits, (uint64_t *)(void *)r->members);
	}
	if ((s->wide = malloc(n * sizeof(*s->wide))) == NULL)
		return error_sys("roster");
	mem_hint_huge(s->wide, n * sizeof(*s->wide));
	for (i = 0; i < n; i++) {
		s->wide[i].key = member_key(&r->members[i], pbits);
		s->wide[i].pos = (uint32_t)i;
		s->wide[i].active = r->members[i].active;
	}
	return radix_sort(&s->wide, n, s->keybits);
}

/* The i-th membership in sort order: key, position before, state. */
static void
msorted_at(const struct msorted *s, size_t i, uint64_t *key,
    uint32_t *pos, int *active)
{
	if (s->packed != NULL) {
		*key = s->packed[i] >> s->posbits;
		*pos = (uint32_t)(s->packed[i] &
		    (((uint64_t)1 << s->posbits) - 1));
		*active = (int)(s->state[*pos / 64] >> (*pos % 64) & 1);
		return;
	}
	*key = s->wide[i].key;
	*pos = s->wide[i].pos;
	*active = s->wide[i].active != 0;
}

/*
 * 1 if the memberships are already in (group, person, role) order with
 * no two alike (a snapshot written by ims_write_full is): sealing them
 * changes nothing, so the sort is skipped.
 */
static int
members_ascending(const struct roster *r)
{
	const struct membership *a, *b;
	size_t i;

	for (i = 1; i < r->nmembers; i++) {
		a = &r->members[i - 1];
		b = &r->members[i];
		if (a->group != b->group ? a->group > b->group :
		    a->person != b->person ? a->person > b->person :
		    a->role >= b->role)
			return 0;
	}
	return 1;
}

/*
 * The sort keeps (group, person, role), the position and the state, so
 * the timeframes are saved by position first, begin above end, when
 * any membership has one (*range stays NULL, costing nothing, when
 * none has).  0 or -1.
 */
static int
ranges_save(const struct roster *r, uint32_t **range)
{
	size_t i;

	*range = NULL;
	for (i = 0; i < r->nmembers; i++)
		if (r->members[i].begin != 0 || r->members[i].end != 0)
			break;
	if (i == r->nmembers)
		return 0;
	if ((*range = malloc(r->nmembers * sizeof(**range))) == NULL)
		return error_sys("roster");
	for (i = 0; i < r->nmembers; i++)
		(*range)[i] = (uint32_t)r->members[i].begin << 16 |
		    r->members[i].end;
	return 0;
}

/* Widen m's timeframe to take in the range begin << 16 | end: the
 * earlier begin, the later end, 0 (open) on either side winning. */
static void
range_merge(struct membership *m, uint32_t range)
{
	unsigned begin = range >> 16, end = range & 0xffff;

	if (m->begin != 0 && (begin == 0 || begin < m->begin))
		m->begin = (uint16_t)begin;
	if (m->end != 0 && (end == 0 || end > m->end))
		m->end = (uint16_t)end;
}

/*
 * Sort memberships by (group, person, role) and keep one of each:
 * extra copies are merged into the first (active if any copy is, the
 * timeframe widened: range_merge) and, when lines are known, each is
 * noted in rj naming the first's line.  Returns 0 or -1.
 */
int
roster_seal_members(struct roster *r, struct rejects *rj, const char *file,
    const struct linemap *lines)
{
	struct msorted ms;
	unsigned pbits, gbits;
	uint64_t key, last = 0;
	uint32_t pos, firstpos = 0, *range = NULL;
	size_t i, out;
	int active, rc = -1;

	if (r->nmembers == 0 || members_ascending(r))
		return 0;
	pbits = bits_for(r->npersons);
	gbits = bits_for(r->ngroups);
	if (pbits + gbits + MKEY_ROLEBITS > 64)
		return error_set("roster: too many persons and groups");
	memset(&ms, 0, sizeof(ms));
	ms.pbits = pbits;
	ms.keybits = pbits + gbits + MKEY_ROLEBITS;
	ms.posbits = bits_for(r->nmembers);
	if (ranges_save(r, &range) == -1 || msorted_sort(&ms, r) == -1)
		goto out;
	for (i = out = 0; i < r->nmembers; i++) {
		msorted_at(&ms, i, &key, &pos, &active);
		if (out > 0 && key == last) {
			r->members[out - 1].active |= (uint8_t)active;
			if (range != NULL)
				range_merge(&r->members[out - 1], range[pos]);
			if (lines != NULL && rejects_note(rj, file,
			    linemap_line(lines, pos), "person", "repeats the "
			    "membership of '%s' in '%s' (line %lu): read as "
			    "one, active if any row is",
			    r->persons[(key >> MKEY_ROLEBITS) &
			    (((uint64_t)1 << pbits) - 1)].id,
			    r->groups[key >> (pbits + MKEY_ROLEBITS)].id,
			    (unsigned long)linemap_line(lines, firstpos)) ==
			    -1)
				goto out;
			continue;
		}
		firstpos = pos;
		last = key;
		memset(&r->members[out], 0, sizeof(r->members[out]));
		r->members[out].group = (uint32_t)(key >> (pbits +
		    MKEY_ROLEBITS));
		r->members[out].person = (uint32_t)((key >> MKEY_ROLEBITS) &
		    (((uint64_t)1 << pbits) - 1));
		r->members[out].role = (uint8_t)(key & 0xf);
		r->members[out].active = (uint8_t)active;
		if (range != NULL) {
			r->members[out].begin = (uint16_t)(range[pos] >> 16);
			r->members[out].end = (uint16_t)range[pos];
		}
		out++;
	}
	r->nmembers = out;
	rc = 0;
out:
	free(r->spare);		/* not held through the stages after */
	r->spare = NULL;
	r->sparelen = 0;
	free(ms.wide);
	free(ms.packed);
	free(ms.state);
	free(range);
	return rc;
}

static const struct {
	const char	*name;
	int		 role;
} role_names[] = {
	{ "learner", 1 }, { "student", 1 },
	{ "instructor", 2 }, { "teacher", 2 },
	{ "contentdeveloper", 3 }, { "content developer", 3 },
	{ "member", 4 },
	{ "manager", 5 },
	{ "mentor", 6 },
	{ "administrator", 7 },
	{ "teachingassistant", 8 }, { "teaching assistant", 8 },
	{ "ta", 8 },
};

static const char *const role_display[] = {
	"", "Learner", "Instructor", "ContentDeveloper", "Member",
	"Manager", "Mentor", "Administrator", "TeachingAssistant",
};

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar
 * (y >= 1970). */
static long
days_from_civil(long y, unsigned m, unsigned d)
{
	long era, yoe, doy;

	y -= m <= 2;
	era = y / 400;
	yoe = y - era * 400;
	doy = (153 * (long)(m > 2 ? m - 3 : m + 9) + 2) / 5 + (long)d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/*
 * A date YYYY-MM-DD as days since 1970-01-01: 1..65535, or 0 when s is
 * not a date that exists or lies outside 1970-01-02..2149-06-06.
 */
unsigned
day_parse(const char *s, size_t len)
{
	static const unsigned char mdays[12] = { 31, 29, 31, 30, 31, 30,
	    31, 31, 30, 31, 30, 31 };
	unsigned v[3] = { 0, 0, 0 }, i, k;
	long y, days;

	if (len != 10)
		return 0;
	for (i = k = 0; i < 10; i++) {
		if (i == 4 || i == 7) {
			if (s[i] != '-')
				return 0;
			k++;
		} else if (s[i] < '0' || s[i] > '9')
			return 0;
		else
			v[k] = v[k] * 10 + (unsigned)(s[i] - '0');
	}
	y = (long)v[0];
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > mdays[v[1] - 1] ||
	    (v[1] == 2 && v[2] == 29 && (y % 4 != 0 ||
	    (y % 100 == 0 && y % 400 != 0))) || y < 1970)
		return 0;
	days = days_from_civil(y, v[1], v[2]);
	return days >= 1 && days <= 65535 ? (unsigned)days : 0;
}

/*
 * Day number d as YYYY-MM-DD into out (11 bytes).  Returns out.
 */
const char *
day_format(unsigned d, char out[11])
{
	long z = (long)d + 719468, era, doe, yoe, y, doy, mp, dd, m;

	era = z / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	dd = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	out[0] = (char)('0' + y / 1000 % 10);
	out[1] = (char)('0' + y / 100 % 10);
	out[2] = (char)('0' + y / 10 % 10);
	out[3] = (char)('0' + y % 10);
	out[4] = out[7] = '-';
	out[5] = (char)('0' + m / 10);
	out[6] = (char)('0' + m % 10);
	out[8] = (char)('0' + dd / 10);
	out[9] = (char)('0' + dd % 10);
	out[10] = '\0';
	return out;
}

/*
 * An IMS roletype from a code ("01".."08", "1".."8") or a name (any
 * case).  Returns 1..8, or 0 if it is neither.
 */
int
role_parse(const char *s)
{
	size_t i;

	if (s[0] >= '0' && s[0] <= '9') {
		if (s[0] == '0' && s[1] >= '1' && s[1] <= '8' && s[2] == '\0')
			return s[1] - '0';
		if (s[0] >= '1' && s[0] <= '8' && s[1] == '\0')
			return s[0] - '0';
		return 0;
	}
	for (i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (strcasecmp(s, role_names[i].name) == 0)
			return role_names[i].role;
	return 0;
}

/*
 * The IMS name of roletype 1..8, or "" for anything else.
 */
const char *
role_name(int role)
{
	if (role < 1 || role > 8)
		return "";
	return role_display[role];
}

static const char *const instroles[] = {
	"Student", "Faculty", "Staff", "Alumni", "ProspectiveStudent",
	"Guest", "Other", "Administrator", "Observer",
};

/*
 * The IMS institutionroletype spelled as the DTD wants it for s (any
 * case), or NULL if s is not one.
 */
const char *
institution_role_parse(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(instroles) / sizeof(instroles[0]); i++)
		if (strcasecmp(s, instroles[i]) == 0)
			return instroles[i];
	return NULL;
}

/*
 * A status column's value: 1/0, true/false, yes/no, y/n, t/f,
 * active/inactive, any case.  Returns 1, 0, or -1 if not a status.
 */
int
status_parse(const char *s)
{
	static const char *const on[] = { "1", "true", "yes", "y", "t",
	    "active" };
	static const char *const off[] = { "0", "false", "no", "n", "f",
	    "inactive" };
	size_t i;

	for (i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
		if (strcasecmp(s, on[i]) == 0)
			return 1;
		if (strcasecmp(s, off[i]) == 0)
			return 0;
	}
	return -1;
}

/*
 * 1 if s[0..len) is well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF), else 0.
 */
int
utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	const unsigned char *end = s + len;

	while (s < end) {
		unsigned c = *s;
		uint64_t w;

		if (c < 0x80) {
			/* ASCII, eight bytes at a time while it lasts */
			s++;
			while (end - s >= 8) {
				memcpy(&w, s, sizeof(w));
				if (w & 0x8080808080808080ULL)
					break;
				s += 8;
			}
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			if (end - s < 2 || (s[1] & 0xc0) != 0x80)
				return 0;
			s += 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			if (end - s < 3 || (s[1] & 0xc0) != 0x80 ||
			    (s[2] & 0xc0) != 0x80)
				return 0;
			if (c == 0xe0 && s[1] < 0xa0)
				return 0;	/* overlong */
			if (c == 0xed && s[1] >= 0xa0)
				return 0;	/* surrogate */
			s += 3;
		} else if (c >= 0xf0 && c <= 0xf4) {
			if (end - s < 4 || (s[1] & 0xc0) != 0x80 ||
			    (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
				return 0;
			if (c == 0xf0 && s[1] < 0x90)
				return 0;	/* overlong */
			if (c == 0xf4 && s[1] >= 0x90)
				return 0;	/* > U+10FFFF */
			s += 4;
		} else
			return 0;
	}
	return 1;
}

/*
 * Why s[0..len) is not UTF-8, naming the encoding it most likely is:
 * Windows-1252 when it has a byte 0x80..0x9f (letters and quotes there,
 * control codes in ISO-8859-1), else ISO-8859-1.  NULL when it is
 * UTF-8.  The reason is a static string.
 */
const char *
utf8_fault(const char *s, size_t len)
{
	size_t i;

	if (utf8_valid(s, len))
		return NULL;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80 && (unsigned char)s[i] <= 0x9f)
			return "invalid UTF-8 (it looks like Windows-1252: "
			    "export UTF-8 or set source.encoding)";
	return "invalid UTF-8 (it looks like ISO-8859-1: export UTF-8 or "
	    "set source.encoding)";
}

/* ------------------------------------------------------------------ */
/* Removing records from a sealed roster.                              */

/*
 * Mark the groups below a marked group (drop[] of r's groups), each
 * rejected naming its parent.  The groups are in key order, not
 * parents first, so this repeats until nothing changes.  0 or -1.
 */
static int
drop_below(const struct roster *r, uint8_t *drop, struct rejects *rj,
    const char *groupfile)
{
	const struct group *g;
	size_t i;
	long p;
	int changed;

	do {
		changed = 0;
		for (i = 0; i < r->ngroups; i++) {
			g = &r->groups[i];
			if (drop[i] || g->parent[0] == '\0' ||
			    strcmp(g->parent, g->id) == 0)
				continue;
			if ((p = roster_find_group(r, g->parent)) < 0 ||
			    !drop[p])
				continue;
			drop[i] = 1;
			changed = 1;
			if (rejects_dependent(rj, groupfile, g->line, "parent",
			    "parent group '%s'", g->parent) == -1)
				return -1;
		}
	} while (changed);
	return 0;
}

/*
 * Compact n records of size sz in base, keeping those with drop[i]
 * clear; map[i] becomes the new index, or UINT32_MAX.  Returns the new
 * count.
 */
static size_t
compact(void *base, size_t n, size_t sz, const uint8_t *drop,
    uint32_t *map)
{
	char *v = base;
	size_t i, out = 0;

	for (i = 0; i < n; i++) {
		if (drop != NULL && drop[i]) {
			map[i] = UINT32_MAX;
			continue;
		}
		if (out != i)
			memcpy(v + out * sz, v + i * sz, sz);
		map[i] = (uint32_t)out++;
	}
	return out;
}

/* The files of the records a roster_drop reports. */
struct drop_files {
	const char	*person, *group, *member;
};

/*
 * "MEMBERFILE:0: KIND: depends on rejected KIND 'ID' (FILE:LINE): N
 * memberships left out" for the n memberships lost with one rejected
 * record, counted in dependents (the memberships have no line of their
 * own here).  0 or -1.
 */
static int
lost_members(struct rejects *rj, const char *memberfile, const char *kind,
    const char *id, const char *file, uint32_t line, size_t n)
{
	char q[128];

	rejects_quote(id, strlen(id), q, sizeof(q));
	if (rejects_dependent(rj, memberfile, 0, kind, "%s '%s' (%s:%u): "
	    "%zu membership%s left out", kind, q, file, (unsigned)line, n,
	    n == 1 ? "" : "s") == -1)
		return -1;
	rj->dependents += n - 1;
	return 0;
}

/*
 * Report the memberships lost with the removed persons (pd) and groups
 * (gd) of r: one line per removed record that had any, a membership of
 * a removed person and a removed group counted with the person.
 * Returns the number lost, or -1.
 */
static long
report_lost(const struct roster *r, const uint8_t *pd, const uint8_t *gd,
    struct rejects *rj, const struct drop_files *f)
{
	size_t *pn, *gn, i, lost = 0;
	long rc = -1;

	pn = calloc(r->npersons + 1, sizeof(*pn));
	gn = calloc(r->ngroups + 1, sizeof(*gn));
	if (pn == NULL || gn == NULL) {
		error_sys("roster");
		goto out;
	}
	for (i = 0; i < r->nmembers; i++) {
		const struct membership *m = &r->members[i];

		if (pd != NULL && pd[m->person])
			pn[m->person]++;
		else if (gd[m->group])
			gn[m->group]++;
	}
	for (i = 0; i < r->npersons; i++)
		if (pn[i] > 0 && (lost += pn[i], lost_members(rj, f->member,
		    "person", r->persons[i].id, f->person,
		    r->persons[i].line, pn[i])) == -1)
			goto out;
	for (i = 0; i < r->ngroups; i++)
		if (gn[i] > 0 && (lost += gn[i], lost_members(rj, f->member,
		    "group", r->groups[i].id, f->group, r->groups[i].line,
		    gn[i])) == -1)
			goto out;
	rc = (long)lost;
out:
	free(pn);
	free(gn);
	return rc;
}

/*
 * Remove the marked persons and groups of a sealed roster, the groups
 * below a removed group, and every membership of a removed record (both
 * as dependents of the rejected record, "depends on rejected ...", the
 * memberships one line per rejected record);
 * indexes are remapped (order is kept, so the roster stays sorted).
 * Returns 0, or -1 on no memory or I/O error.
 */
int
roster_drop(struct roster *r, const uint8_t *pdrop, const uint8_t *gdrop,
    struct rejects *rj, const char *personfile, const char *groupfile,
    const char *memberfile)
{
	struct drop_files f = { personfile, groupfile, memberfile };
	uint8_t *gd;
	uint32_t *pmap, *gmap;
	size_t i, out;
	long lost;
	int rc = -1;

	gd = calloc(r->ngroups + 1, 1);
	pmap = calloc(r->npersons + 1, sizeof(*pmap));
	gmap = calloc(r->ngroups + 1, sizeof(*gmap));
	if (gd == NULL || pmap == NULL || gmap == NULL) {
		error_sys("roster");
		goto out;
	}
	if (gdrop != NULL)
		memcpy(gd, gdrop, r->ngroups);
	if (drop_below(r, gd, rj, groupfile) == -1 ||
	    (lost = report_lost(r, pdrop, gd, rj, &f)) == -1)
		goto out;
	r->npersons = compact(r->persons, r->npersons, sizeof(struct person),
	    pdrop, pmap);
	r->ngroups = compact(r->groups, r->ngroups, sizeof(struct group), gd,
	    gmap);
	for (i = out = 0; i < r->nmembers; i++) {
		struct membership m = r->members[i];

		if (pmap[m.person] == UINT32_MAX ||
		    gmap[m.group] == UINT32_MAX)
			continue;
		m.person = pmap[m.person];
		m.group = gmap[m.group];
		r->members[out++] = m;
	}
	r->nmembers = out;
	rc = 0;
	if (lost > 0)
		log_warn("%ld memberships left out with their rejected "
		    "persons or groups", lost);
out:
	free(gd);
	free(pmap);
	free(gmap);
	return rc;
}
