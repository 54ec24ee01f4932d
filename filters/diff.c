/*
 * diff.c -- the change set between the snapshot and tonight's roster.
 *
 * Both rosters are sorted by key, so the diff is a merge-join: one pass
 * per type, no hashing, no per-record allocation; memberships compare
 * integers (ranks from the person and group passes), not strings.  The
 * digest of the change set covers every change and the new values it
 * carries, so an approval names exactly one set of changes.
 */
#include <stdlib.h>
#include <string.h>

#include "sisfeed.h"

#define DIFF_AHEAD	16	/* records a prefetch runs ahead */

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

static void
hash_member(struct sha256 *h, int op, const struct roster *r,
    const struct membership *m)
{
	unsigned char tag[4] = { 'M', (unsigned char)op, m->role, m->active };

	sha256_update(h, tag, sizeof(tag));
	hash_str(h, r->groups[m->group].id);
	hash_str(h, r->persons[m->person].id);
	/* Only when set, so approval ids of exports without them stay. */
	if (op != OP_DELETE && (m->begin != 0 || m->end != 0)) {
		unsigned char range[5] = { 'T', (unsigned char)(m->begin >> 8),
		    (unsigned char)m->begin, (unsigned char)(m->end >> 8),
		    (unsigned char)m->end };

		sha256_update(h, range, sizeof(range));
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

static int
diff_members(const struct roster *or, const struct roster *nr,
    struct changeset *cs, struct clist *l, struct sha256 *h,
    const uint64_t *grank, const uint64_t *prank)
{
	size_t i = 0, j = 0;

	while (i < or->nmembers || j < nr->nmembers) {
		const struct membership *a = i < or->nmembers ?
		    &or->members[i] : NULL;

		/* the old members' persons are in random order */
		if (i + DIFF_AHEAD < or->nmembers)
			mem_prefetch(&prank[or->members[i + DIFF_AHEAD].person]);
		const struct membership *b = j < nr->nmembers ?
		    &nr->members[j] : NULL;
		int c = a == NULL ? 1 : b == NULL ? -1 :
		    member_rankcmp(a, grank, prank, b);

		if (c < 0) {
			if (add(cs, l, TYPE_MEMBER, OP_DELETE, i, 0) == -1)
				return -1;
			hash_member(h, OP_DELETE, or, a);
			i++;
		} else if (c > 0) {
			if (add(cs, l, TYPE_MEMBER, OP_INSERT, 0, j) == -1)
				return -1;
			hash_member(h, OP_INSERT, nr, b);
			j++;
		} else {
			if (a->active != b->active || a->begin != b->begin ||
			    a->end != b->end) {
				if (add(cs, l, TYPE_MEMBER, OP_UPDATE, i, j)
				    == -1)
					return -1;
				hash_member(h, OP_UPDATE, nr, b);
				flip(cs, l, TYPE_MEMBER, a->active, b->active);
			}
			i++;
			j++;
		}
	}
	return 0;
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
		rc = diff_members(or, nr, cs, &l[TYPE_MEMBER], &h, grank,
		    prank);
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
