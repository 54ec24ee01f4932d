/*
 * diff.c -- the change set between the snapshot and tonight's roster.
 *
 * Both rosters are sorted by key, so the diff is a merge-join: one pass
 * per type, no hashing, no per-record allocation; memberships compare
 * integers (ranks from the person and group passes), not strings.  The
 * digest of the change set covers every change and the new values it
 * carries, so an approval names exactly one set of changes.
 *
 * What runs where: persons and groups on the calling thread, hashed as
 * they merge.  Memberships, most of the work at scale, merge first and
 * are hashed after, from the bytes the digest always took of each
 * change, gathered a chunk at a time with the persons' keys prefetched
 * (gathering them, cache misses, cost more than SHA-256).  With two
 * cores and memberships enough (SPLIT_MIN, SISFEED_DIFF_SPLIT) the
 * merge is cut in two between two groups: a thread of its own merges
 * the second part and gathers its first BYTES_AHEAD bytes, while the
 * calling thread merges and hashes the first part; it then joins the
 * thread and hashes the second part after.  The parts' changes one
 * after the other are the one merge's, so the change set and its
 * digest are the same either way.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sisfeed.h"

#define DIFF_AHEAD	16	/* records a prefetch runs ahead */
#define SPLIT_MIN	(256 * 1024)	/* memberships worth a second thread */
#define BYTES_CHUNK	(256 * 1024)	/* digest bytes gathered, then hashed */
#define BYTES_AHEAD	(8 * 1024 * 1024) /* ... at most by the second part */

/*
 * 1 if two persons differ in any field the output carries.
 */
int
person_differs(const struct person *a, const struct person *b)
{
	return a->active != b->active ||
	    strcmp(a->userid, b->userid) != 0 ||
	    strcmp(a->given, b->given) != 0 ||
	    strcmp(a->family, b->family) != 0 ||
	    strcmp(a->email, b->email) != 0 ||
	    strcmp(a->role, b->role) != 0 ||
	    strcmp(a->nin, b->nin) != 0;
}

/*
 * 1 if two groups differ in any field the output carries.
 */
int
group_differs(const struct group *a, const struct group *b)
{
	return strcmp(a->type, b->type) != 0 ||
	    strcmp(a->shortname, b->shortname) != 0 ||
	    strcmp(a->longname, b->longname) != 0 ||
	    strcmp(a->parent, b->parent) != 0 ||
	    strcmp(a->term, b->term) != 0 ||
	    strcmp(a->begin, b->begin) != 0 ||
	    strcmp(a->end, b->end) != 0 ||
	    strcmp(a->orgname, b->orgname) != 0 ||
	    strcmp(a->orgunit, b->orgunit) != 0;
}

struct clist {
	struct change	*v;
	size_t		 n, cap;
};

static int
add(struct changeset *cs, struct clist *l, int type, int op, size_t old,
    size_t new)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 256;
		struct change *nv = realloc(l->v, ncap * sizeof(*nv));

		if (nv == NULL)
			return error_sys("diff");
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n].old = (uint32_t)old;
	l->v[l->n].new = (uint32_t)new;
	l->v[l->n].op = (uint8_t)op;
	l->v[l->n].flip = 0;
	l->n++;
	cs->count[type][op]++;
	return 0;
}

/* Mark the update just added as a status flip, if it is one. */
static void
flip(struct changeset *cs, struct clist *l, int type, int was, int is)
{
	int f;

	if (was == is)
		return;
	f = was ? FLIP_DEACTIVATE : FLIP_REACTIVATE;
	l->v[l->n - 1].flip = (uint8_t)(1 + f);
	cs->flips[type][f]++;
	if (type == TYPE_PERSON && f == FLIP_DEACTIVATE)
		cs->deactivated++;
	else if (type == TYPE_PERSON)
		cs->reactivated++;
}

static void
hash_str(struct sha256 *h, const char *s)
{
	sha256_update(h, s, strlen(s) + 1);
}

static void
hash_person(struct sha256 *h, int op, const struct person *p)
{
	unsigned char tag[3] = { 'P', (unsigned char)op, p->active };

	sha256_update(h, tag, sizeof(tag));
	hash_str(h, p->id);
	if (op == OP_DELETE)
		return;
	hash_str(h, p->userid);
	hash_str(h, p->given);
	hash_str(h, p->family);
	hash_str(h, p->email);
	hash_str(h, p->role);
	if (p->nin[0] != '\0')	/* approval ids stay as they were without */
		hash_str(h, p->nin);
}

static void
hash_group(struct sha256 *h, int op, const struct group *g)
{
	unsigned char tag[2] = { 'G', (unsigned char)op };

	sha256_update(h, tag, sizeof(tag));
	hash_str(h, g->id);
	if (op == OP_DELETE)
		return;
	hash_str(h, g->type);
	hash_str(h, g->shortname);
	hash_str(h, g->longname);
	hash_str(h, g->parent);
	hash_str(h, g->term);
	/* Only when set, so approval ids of exports without them stay. */
	if (*g->begin != '\0' || *g->end != '\0' || *g->orgname != '\0' ||
	    *g->orgunit != '\0') {
		hash_str(h, g->begin);
		hash_str(h, g->end);
		hash_str(h, g->orgname);
		hash_str(h, g->orgunit);
	}
}

/* The membership change c is of: the old record for a delete, else
 * the new; *r set to its roster. */
static const struct membership *
change_member(const struct roster *or, const struct roster *nr,
    const struct change *c, const struct roster **r)
{
	*r = c->op == OP_DELETE ? or : nr;
	return &(*r)->members[c->op == OP_DELETE ? c->old : c->new];
}

/* Append to b what the digest takes of membership change c, exactly
 * the bytes it was always hashed by (approval ids stay). */
static void
member_bytes(struct sbuf *b, const struct roster *or,
    const struct roster *nr, const struct change *c)
{
	const struct roster *r;
	const struct membership *m = change_member(or, nr, c, &r);
	unsigned char tag[4] = { 'M', c->op, m->role, m->active };
	const char *gid = r->groups[m->group].id;
	const char *pid = r->persons[m->person].id;

	sbuf_putn(b, (const char *)tag, sizeof(tag));
	sbuf_putn(b, gid, strlen(gid) + 1);
	sbuf_putn(b, pid, strlen(pid) + 1);
	/* Only when set, so approval ids of exports without them stay. */
	if (c->op != OP_DELETE && (m->begin != 0 || m->end != 0)) {
		unsigned char range[5] = { 'T', (unsigned char)(m->begin >> 8),
		    (unsigned char)m->begin, (unsigned char)(m->end >> 8),
		    (unsigned char)m->end };

		sbuf_putn(b, (const char *)range, sizeof(range));
	}
}

/*
 * The merge-joins of persons and groups also rank every old record
 * among the new ones: 2j+1 when it is new record j, 2j when it sorts
 * just before new record j (gone tonight).  Memberships then compare
 * ranks, integers, instead of key strings.
 */
static int
diff_persons(const struct roster *or, const struct roster *nr,
    struct changeset *cs, struct clist *l, struct sha256 *h,
    uint64_t *rank)
{
	size_t i = 0, j = 0;

	while (i < or->npersons || j < nr->npersons) {
		const struct person *a = i < or->npersons ?
		    &or->persons[i] : NULL;

		/* tonight's strings lie in the export's order, not the key's */
		if (j + DIFF_AHEAD < nr->npersons)
			mem_prefetch(nr->persons[j + DIFF_AHEAD].id);
		const struct person *b = j < nr->npersons ?
		    &nr->persons[j] : NULL;
		int c = a == NULL ? 1 : b == NULL ? -1 : strcmp(a->id, b->id);

		if (c < 0) {
			if (add(cs, l, TYPE_PERSON, OP_DELETE, i, 0) == -1)
				return -1;
			hash_person(h, OP_DELETE, a);
			rank[i] = 2 * (uint64_t)j;
			i++;
		} else if (c > 0) {
			if (add(cs, l, TYPE_PERSON, OP_INSERT, 0, j) == -1)
				return -1;
			hash_person(h, OP_INSERT, b);
			j++;
		} else {
			if (person_differs(a, b)) {
				if (add(cs, l, TYPE_PERSON, OP_UPDATE, i, j)
				    == -1)
					return -1;
				hash_person(h, OP_UPDATE, b);
				flip(cs, l, TYPE_PERSON, a->active, b->active);
			}
			rank[i] = 2 * (uint64_t)j + 1;
			i++;
			j++;
		}
	}
	return 0;
}

static int
diff_groups(const struct roster *or, const struct roster *nr,
    struct changeset *cs, struct clist *l, struct sha256 *h,
    uint64_t *rank)
{
	size_t i = 0, j = 0;

	while (i < or->ngroups || j < nr->ngroups) {
		const struct group *a = i < or->ngroups ? &or->groups[i] : NULL;
		const struct group *b = j < nr->ngroups ? &nr->groups[j] : NULL;
		int c = a == NULL ? 1 : b == NULL ? -1 : strcmp(a->id, b->id);

		if (c < 0) {
			if (add(cs, l, TYPE_GROUP, OP_DELETE, i, 0) == -1)
				return -1;
			hash_group(h, OP_DELETE, a);
			rank[i] = 2 * (uint64_t)j;
			i++;
		} else if (c > 0) {
			if (add(cs, l, TYPE_GROUP, OP_INSERT, 0, j) == -1)
				return -1;
			hash_group(h, OP_INSERT, b);
			j++;
		} else {
			if (group_differs(a, b)) {
				if (add(cs, l, TYPE_GROUP, OP_UPDATE, i, j)
				    == -1)
					return -1;
				hash_group(h, OP_UPDATE, b);
			}
			rank[i] = 2 * (uint64_t)j + 1;
			i++;
			j++;
		}
	}
	return 0;
}

/*
 * Order an old membership against a new one by (group key, person
 * key, role), through the ranks of the old records among the new.
 */
static int
member_rankcmp(const struct membership *a, const uint64_t *grank,
    const uint64_t *prank, const struct membership *b)
{
	uint64_t x, y;

	x = grank[a->group];
	y = 2 * (uint64_t)b->group + 1;
	if (x != y)
		return x < y ? -1 : 1;
	x = prank[a->person];
	y = 2 * (uint64_t)b->person + 1;
	if (x != y)
		return x < y ? -1 : 1;
	return (a->role > b->role) - (a->role < b->role);
}

/* One part of the membership merge: or's members [i, iend) against
 * nr's [j, jend), into a change list and counts of its own; bytes, the
 * digest's of its changes gathered (up to `hashed`), not yet hashed. */
struct mpart {
	const struct roster	*or, *nr;
	const uint64_t		*grank, *prank;
	size_t			 i, iend, j, jend;
	struct changeset	 cs;	/* the counts only */
	struct clist		 l;
	struct sbuf		 bytes;	/* gathered, not yet hashed */
	size_t			 hashed;
	pthread_t		 tid;
	int			 rc;
	char			 err[256];
};

static int
diff_members(struct mpart *p)
{
	const struct roster *or = p->or, *nr = p->nr;
	size_t i = p->i, j = p->j;

	while (i < p->iend || j < p->jend) {
		const struct membership *a = i < p->iend ?
		    &or->members[i] : NULL;

		/* the old members' persons are in random order */
		if (i + DIFF_AHEAD < p->iend)
			mem_prefetch(&p->prank[
			    or->members[i + DIFF_AHEAD].person]);
		const struct membership *b = j < p->jend ?
		    &nr->members[j] : NULL;
		int c = a == NULL ? 1 : b == NULL ? -1 :
		    member_rankcmp(a, p->grank, p->prank, b);

		if (c < 0) {
			if (add(&p->cs, &p->l, TYPE_MEMBER, OP_DELETE, i, 0)
			    == -1)
				return -1;
			i++;
		} else if (c > 0) {
			if (add(&p->cs, &p->l, TYPE_MEMBER, OP_INSERT, 0, j)
			    == -1)
				return -1;
			j++;
		} else {
			if (a->active != b->active || a->begin != b->begin ||
			    a->end != b->end) {
				if (add(&p->cs, &p->l, TYPE_MEMBER, OP_UPDATE,
				    i, j) == -1)
					return -1;
				flip(&p->cs, &p->l, TYPE_MEMBER, a->active,
				    b->active);
			}
			i++;
			j++;
		}
	}
	return 0;
}

/*
 * The bytes the digest takes of part p's changes from p->hashed on, in
 * order, into p->bytes (emptied first) until it holds `most` or the
 * changes end; p->hashed moves past them.  The records are cache misses
 * (persons in random order), so a change's person record is fetched
 * DIFF_AHEAD changes before and its key half as many.  0, or -1 (error
 * set) when memory runs out.
 */
static int
members_bytes(struct mpart *p, size_t most)
{
	const struct change *v = p->l.v;
	const struct roster *r;
	const struct membership *m;
	size_t k, n = p->l.n;

	p->bytes.len = 0;
	for (k = p->hashed; k < n && p->bytes.len < most; k++) {
		if (k + DIFF_AHEAD < n) {
			m = change_member(p->or, p->nr, &v[k + DIFF_AHEAD], &r);
			mem_prefetch(&r->persons[m->person]);
		}
		if (k + DIFF_AHEAD / 2 < n) {
			m = change_member(p->or, p->nr, &v[k + DIFF_AHEAD / 2],
			    &r);
			mem_prefetch(r->persons[m->person].id);
		}
		member_bytes(&p->bytes, p->or, p->nr, &v[k]);
	}
	p->hashed = k;
	return sbuf_done(&p->bytes, "diff") == NULL ? -1 : 0;
}

/* Hash into h the bytes part p holds, then those of its changes from
 * p->hashed on, BYTES_CHUNK at a time.  0, or -1 (error set). */
static int
members_hash(struct mpart *p, struct sha256 *h)
{
	for (;;) {
		if (p->bytes.len > 0)
			sha256_update(h, p->bytes.p, p->bytes.len);
		p->bytes.len = 0;
		if (p->hashed == p->l.n)
			return 0;
		if (members_bytes(p, BYTES_CHUNK) == -1)
			return -1;
	}
}

/* The second part's thread: merge, then gather BYTES_AHEAD. */
static void *
mpart_main(void *arg)
{
	struct mpart *p = arg;

	if ((p->rc = diff_members(p)) == 0)
		p->rc = members_bytes(p, BYTES_AHEAD);
	if (p->rc == -1)
		snprintf(p->err, sizeof(p->err), "%s", error_last());
	return NULL;
}

/* The least memberships (old and new together) worth a second thread:
 * SISFEED_DIFF_SPLIT (the tests set it low), else SPLIT_MIN. */
static size_t
split_min(void)
{
	const char *v = getenv("SISFEED_DIFF_SPLIT");
	char *end;
	unsigned long long n;

	if (v == NULL || *v < '0' || *v > '9')
		return SPLIT_MIN;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > SIZE_MAX)
		return SPLIT_MIN;
	return (size_t)n;
}

/* The group rank of membership m: old (grank set) or new (NULL). */
static uint64_t
member_grank(const struct membership *m, const uint64_t *grank)
{
	return grank != NULL ? grank[m->group] : 2 * (uint64_t)m->group + 1;
}

/* The first of the n members m[] (sorted by group) whose group ranks
 * at least k; n if none does. */
static size_t
members_from(const struct membership *m, size_t n, const uint64_t *grank,
    uint64_t k)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (member_grank(&m[mid], grank) < k)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Where to cut the membership merge in two: at a group's rank k, old
 * and new members below k in the first part, the rest in the second.
 * Every pair of equal keys then lies in one part, and every member of
 * the first sorts before every member of the second, so the parts'
 * changes one after the other are the whole merge's.  k is the rank of
 * the group holding the middle new membership (or old, when there are
 * none), or the next one, whichever leaves the parts closer to even.
 * 1 and the cut in *ci, *cj; 0 when every membership is in one part.
 */
static int
members_cut(const struct roster *or, const struct roster *nr,
    const uint64_t *grank, size_t *ci, size_t *cj)
{
	size_t total = or->nmembers + nr->nmembers, best = total, i, j, d;
	uint64_t k;
	int found = 0, step;

	if (nr->nmembers > 0)
		k = member_grank(&nr->members[nr->nmembers / 2], NULL);
	else if (or->nmembers > 0)
		k = member_grank(&or->members[or->nmembers / 2], grank);
	else
		return 0;
	for (step = 0; step < 2; step++) {
		i = members_from(or->members, or->nmembers, grank, k + step);
		j = members_from(nr->members, nr->nmembers, NULL, k + step);
		if (i + j == 0 || i + j == total)
			continue;
		d = i + j > total / 2 ? i + j - total / 2 : total / 2 - i - j;
		if (d < best) {
			best = d;
			*ci = i;
			*cj = j;
			found = 1;
		}
	}
	return found;
}

/*
 * The second part of the merge on a thread of its own, when there are
 * two cores and memberships enough and a cut between groups: p[0] then
 * holds the first part, p[1] the second (started).  0 when p[0] holds
 * the whole merge (nothing to report: that is always right).
 */
static int
mpart_start(struct mpart p[2])
{
	size_t i, j;

	if (p[0].iend + p[0].jend < split_min() ||
	    sysconf(_SC_NPROCESSORS_ONLN) < 2 ||
	    !members_cut(p[0].or, p[0].nr, p[0].grank, &i, &j))
		return 0;
	p[1] = p[0];
	p[1].i = i;
	p[1].j = j;
	if (thread_start(&p[1].tid, mpart_main, &p[1]) != 0)
		return 0;
	p[0].iend = i;
	p[0].jend = j;
	return 1;
}

/* Add the member counts of part p to cs. */
static void
mpart_counts(struct changeset *cs, const struct mpart *p)
{
	int k;

	for (k = 0; k < NOPS; k++)
		cs->count[TYPE_MEMBER][k] += p->cs.count[TYPE_MEMBER][k];
	for (k = 0; k < NFLIPS; k++)
		cs->flips[TYPE_MEMBER][k] += p->cs.flips[TYPE_MEMBER][k];
}

/* Append list b to list a (b left as it was).  0, or -1 (error set). */
static int
clist_append(struct clist *a, const struct clist *b)
{
	struct change *nv;

	if (b->n == 0)
		return 0;
	if (a->cap - a->n < b->n) {
		if ((nv = realloc(a->v, (a->n + b->n) * sizeof(*nv))) == NULL)
			return error_sys("diff");
		a->v = nv;
		a->cap = a->n + b->n;
	}
	memcpy(a->v + a->n, b->v, b->n * sizeof(*nv));
	a->n += b->n;
	return 0;
}

/* Free what part p holds. */
static void
mpart_free(struct mpart *p)
{
	free(p->l.v);
	free(p->bytes.p);
	memset(&p->l, 0, sizeof(p->l));
	memset(&p->bytes, 0, sizeof(p->bytes));
}

/*
 * Wait for the second part q, then hash its bytes into h after the
 * first part p's and append its changes and counts to p's; rc is how
 * p went.  q is freed.  0, or -1 (error set).
 */
static int
mpart_join(struct mpart *p, struct mpart *q, struct sha256 *h, int rc)
{
	if (pthread_join(q->tid, NULL) != 0)
		abort();	/* only a corrupt pthread_t fails */
	if (rc == 0 && q->rc == -1)
		rc = error_set("%s", q->err);
	if (rc == 0 && (rc = members_hash(q, h)) == 0)
		rc = clist_append(&p->l, &q->l);
	mpart_counts(&p->cs, q);
	mpart_free(q);
	return rc;
}

/*
 * The membership merge, in two parts on two threads when it is worth
 * it (mpart_start), else in one: its changes into l in key order, their
 * counts into cs, hashed into h in that order (the first part's while
 * the second merges).  0, or -1 (error set, l left empty) when memory
 * runs out.
 */
static int
diff_members_all(const struct roster *or, const struct roster *nr,
    struct changeset *cs, struct clist *l, struct sha256 *h,
    const uint64_t *grank, const uint64_t *prank)
{
	struct mpart p[2];
	int two, rc;

	memset(p, 0, sizeof(p));
	p[0].or = or;
	p[0].nr = nr;
	p[0].grank = grank;
	p[0].prank = prank;
	p[0].iend = or->nmembers;
	p[0].jend = nr->nmembers;
	two = mpart_start(p);
	if ((rc = diff_members(&p[0])) == 0)
		rc = members_hash(&p[0], h);
	if (two)
		rc = mpart_join(&p[0], &p[1], h, rc);
	if (rc == 0) {
		mpart_counts(cs, &p[0]);
		*l = p[0].l;
		memset(&p[0].l, 0, sizeof(p[0].l));
	}
	mpart_free(&p[0]);
	return rc;
}

/*
 * Compare nr (tonight) with or (the snapshot), both sealed.  Fills cs
 * with the changes per type in key order, their counts, the old
 * roster's counts as the base and a digest of it all.  Returns 0, or
 * -1 (error set, cs emptied) when memory runs out.
 */
int
diff_compute(const struct roster *or, const struct roster *nr,
    struct changeset *cs)
{
	struct clist l[NTYPES];
	struct sha256 h;
	uint64_t *prank, *grank;
	int t, rc;

	memset(cs, 0, sizeof(*cs));
	memset(l, 0, sizeof(l));
	sha256_init(&h);
	prank = malloc((or->npersons ? or->npersons : 1) * sizeof(*prank));
	grank = malloc((or->ngroups ? or->ngroups : 1) * sizeof(*grank));
	rc = prank == NULL || grank == NULL ? error_sys("diff") : 0;
	if (rc == 0)
		rc = diff_persons(or, nr, cs, &l[TYPE_PERSON], &h, prank);
	if (rc == 0)
		rc = diff_groups(or, nr, cs, &l[TYPE_GROUP], &h, grank);
	if (rc == 0)
		rc = diff_members_all(or, nr, cs, &l[TYPE_MEMBER], &h,
		    grank, prank);
	free(prank);
	free(grank);
	if (rc == -1) {
		for (t = 0; t < NTYPES; t++)
			free(l[t].v);
		memset(cs, 0, sizeof(*cs));
		return -1;
	}
	for (t = 0; t < NTYPES; t++) {
		cs->c[t] = l[t].v;
		cs->n[t] = l[t].n;
	}
	cs->base[TYPE_PERSON] = or->npersons;
	cs->base[TYPE_GROUP] = or->ngroups;
	cs->base[TYPE_MEMBER] = or->nmembers;
	sha256_final(&h, cs->digest);
	return 0;
}

/*
 * Free the change arrays of a change set.
 */
void
changeset_free(struct changeset *cs)
{
	int t;

	for (t = 0; t < NTYPES; t++) {
		free(cs->c[t]);
		cs->c[t] = NULL;
		cs->n[t] = 0;
	}
}
