/*
 * orgs.c -- per-org limits: the safety cells judged for each school or
 * org on its own, so that one school losing 40% of its students is
 * seen inside a district of fifty.
 *
 * An org is a group whose type is safety.orgs.type.  A group belongs
 * to the nearest org up its parent chain (itself included); a
 * membership to the org of its group; a person to the orgs of their
 * memberships (the snapshot's for a delete, tonight's otherwise).  The
 * base of an org is what the snapshot holds in it.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sisfeed.h"

/* One org, known by its id in either roster. */
struct org {
	const char	*id;
	size_t		 base[NTYPES];
	size_t		 count[NTYPES][NKINDS];
	uint32_t	 sample[NTYPES][NKINDS][CHECK_SAMPLES];
};

/* What one roster says about orgs. */
struct side {
	long		*gorg;		/* per group: slot of its org, -1 */
	size_t		*poff;		/* per person: start in pslot */
	uint32_t	*pslot;		/* orgs of each person, by person */
};

struct orgset {
	struct org	*v;
	size_t		 n, cap;
};

static long
slot_of(struct orgset *os, const char *id)
{
	size_t i;

	for (i = 0; i < os->n; i++)
		if (strcmp(os->v[i].id, id) == 0)
			return (long)i;
	if (os->n == os->cap) {
		size_t cap = os->cap ? os->cap * 2 : 16;
		struct org *nv = reallocarray(os->v, cap, sizeof(*nv));

		if (nv == NULL)
			return error_sys("orgs");
		os->v = nv;
		os->cap = cap;
	}
	memset(&os->v[os->n], 0, sizeof(os->v[0]));
	os->v[os->n].id = id;
	return (long)os->n++;
}

/*
 * The org slot of every group of r: the nearest group of type otype up
 * its parent chain (the chain is bounded by the number of groups, and
 * the roster has no cycles).  0 or -1.
 */
static int
group_orgs(const struct roster *r, const char *otype, struct orgset *os,
    struct side *sd)
{
	size_t i, hops;
	long g, s;

	if ((sd->gorg = calloc(r->ngroups + 1, sizeof(long))) == NULL)
		return error_sys("orgs");
	for (i = 0; i < r->ngroups; i++)
		sd->gorg[i] = -2;		/* not known yet */
	for (i = 0; i < r->ngroups; i++) {
		s = -1;
		for (g = (long)i, hops = 0; g >= 0 && hops <= r->ngroups;
		    hops++) {
			if (sd->gorg[g] != -2) {
				s = sd->gorg[g];
				break;
			}
			if (strcasecmp(r->groups[g].type, otype) == 0) {
				if ((s = slot_of(os, r->groups[g].id)) == -1)
					return -1;
				break;
			}
			g = r->groups[g].parent[0] == '\0' ? -1 :
			    roster_find_group(r, r->groups[g].parent);
		}
		sd->gorg[i] = s;
	}
	return 0;
}

static int
pair_cmp(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return (*x > *y) - (*x < *y);
}

/*
 * The orgs of every person of r, from their memberships: pslot[poff[p]
 * .. poff[p + 1]) without repeats.  0 or -1.
 */
static int
person_orgs(const struct roster *r, struct side *sd)
{
	uint64_t *pairs;
	size_t i, n = 0, k = 0;

	if ((pairs = malloc((r->nmembers + 1) * sizeof(*pairs))) == NULL ||
	    (sd->poff = calloc(r->npersons + 1, sizeof(size_t))) == NULL ||
	    (sd->pslot = malloc((r->nmembers + 1) * sizeof(uint32_t))) ==
	    NULL) {
		free(pairs);
		return error_sys("orgs");
	}
	for (i = 0; i < r->nmembers; i++) {
		long s = sd->gorg[r->members[i].group];

		if (s >= 0)
			pairs[n++] = (uint64_t)r->members[i].person << 32 |
			    (uint64_t)s;
	}
	qsort(pairs, n, sizeof(*pairs), pair_cmp);
	for (i = 0; i < n; i++) {
		if (i > 0 && pairs[i] == pairs[i - 1])
			continue;
		sd->pslot[k++] = (uint32_t)(pairs[i] & 0xffffffffu);
		sd->poff[(pairs[i] >> 32) + 1]++;
	}
	for (i = 0; i < r->npersons; i++)
		sd->poff[i + 1] += sd->poff[i];
	free(pairs);
	return 0;
}

static void
side_free(struct side *sd)
{
	free(sd->gorg);
	free(sd->poff);
	free(sd->pslot);
}

/* Count change i of type t (kind k) in org slot s. */
static void
tally(struct orgset *os, long s, int t, int k, size_t i)
{
	struct org *o;
	size_t *n;

	if (s < 0)
		return;
	o = &os->v[s];
	n = &o->count[t][k];
	if (*n < CHECK_SAMPLES)
		o->sample[t][k][*n] = (uint32_t)i;
	(*n)++;
}

/* Count change c (index i) of type t in every org it belongs to. */
static void
tally_change(struct orgset *os, const struct side *so,
    const struct side *sn, const struct roster *or, const struct roster *nr,
    int t, const struct change *c, size_t i)
{
	const struct side *sd = c->op == OP_DELETE ? so : sn;
	const struct roster *r = c->op == OP_DELETE ? or : nr;
	size_t at = c->op == OP_DELETE ? c->old : c->new, j;

	for (j = 0; j < 2; j++) {
		int k = j == 0 ? c->op : NOPS + c->flip - 1;
		size_t p;

		if (j == 1 && c->flip == 0)
			break;
		if (t == TYPE_GROUP)
			tally(os, sd->gorg[at], t, k, i);
		else if (t == TYPE_MEMBER)
			tally(os, sd->gorg[r->members[at].group], t, k, i);
		else
			for (p = sd->poff[at]; p < sd->poff[at + 1]; p++)
				tally(os, sd->pslot[p], t, k, i);
	}
}

/* The snapshot's records in each org: the bases. */
static void
org_bases(struct orgset *os, const struct roster *or, const struct side *so)
{
	size_t i, p;

	for (i = 0; i < or->ngroups; i++)
		if (so->gorg[i] >= 0)
			os->v[so->gorg[i]].base[TYPE_GROUP]++;
	for (i = 0; i < or->nmembers; i++)
		if (so->gorg[or->members[i].group] >= 0)
			os->v[so->gorg[or->members[i].group]]
			    .base[TYPE_MEMBER]++;
	for (i = 0; i < or->npersons; i++)
		for (p = so->poff[i]; p < so->poff[i + 1]; p++)
			os->v[so->pslot[p]].base[TYPE_PERSON]++;
}

/* The limits that hold for org id: its override, else those of all. */
static const struct org_limits *
limits_of(const struct safety_nets *n, const char *id)
{
	size_t i;

	for (i = 0; i < n->norg_over; i++)
		if (strcmp(n->org_over[i].org, id) == 0)
			return &n->org_over[i];
	return &n->org_all;
}

/* Add a check for every cell of every org that counts a change. */
static int
org_checks(const struct config *cfg, const struct orgset *os,
    struct verdict *v)
{
	size_t i;
	int t, k;

	for (i = 0; i < os->n; i++) {
		const struct org *o = &os->v[i];
		const struct org_limits *l = limits_of(&cfg->nets, o->id);

		for (t = 0; t < NTYPES; t++)
			for (k = 0; k < NKINDS; k++) {
				struct check *c;

				if (o->count[t][k] == 0 ||
				    (l->t[t][k].percent < 0 &&
				    l->t[t][k].cap < 0))
					continue;
				if ((c = verdict_add_check(v, SCOPE_ORG, o->id,
				    0, t, k, o->count[t][k], o->base[t],
				    l->min_base, &l->t[t][k])) == NULL)
					return -1;
				c->nsample = o->count[t][k] < CHECK_SAMPLES ?
				    o->count[t][k] : CHECK_SAMPLES;
				memcpy(c->sample, o->sample[t][k],
				    c->nsample * sizeof(c->sample[0]));
			}
	}
	return 0;
}

/*
 * Judge cs (snapshot or, tonight nr) for each org against
 * cfg->nets.orgs: one check per org and cell that counts a change, a
 * tripped one blocking v.  Does nothing unless safety.orgs is set.
 * Returns 0, or -1 (error set) when memory runs out.
 */
int
safety_evaluate_orgs(const struct config *cfg, const struct roster *or,
    const struct roster *nr, const struct changeset *cs, struct verdict *v)
{
	struct orgset os = { 0 };
	struct side so = { 0 }, sn = { 0 };
	size_t i;
	int t, rc = -1;

	if (!cfg->nets.orgs_enabled)
		return 0;
	if (group_orgs(or, cfg->nets.org_type, &os, &so) == -1 ||
	    group_orgs(nr, cfg->nets.org_type, &os, &sn) == -1 ||
	    person_orgs(or, &so) == -1 || person_orgs(nr, &sn) == -1)
		goto out;
	org_bases(&os, or, &so);
	for (t = 0; t < NTYPES; t++)
		for (i = 0; i < cs->n[t]; i++)
			tally_change(&os, &so, &sn, or, nr, t, &cs->c[t][i],
			    i);
	rc = org_checks(cfg, &os, v);
out:
	side_free(&so);
	side_free(&sn);
	free(os.v);
	return rc;
}
