/*
 * hold.c -- a pause: kinds of change held out of tonight's file.
 *
 * The delivered roster is tonight's export with the held changes
 * undone: a held delete keeps the snapshot's record, a held
 * deactivation keeps the snapshot's (active) version.  It is what the
 * receiver holds after tonight, so it is what is written, judged and
 * committed as the snapshot: the held records stay in the snapshot
 * (and, in full mode, in the file), and the first run after the pause
 * sees them again as changes, judged like any other.
 */
#include <stdlib.h>
#include <string.h>

#include "sisfeed.h"

/*
 * 1 if change c is held under mask (HOLD_*): a delete when deletes
 * are held, a deactivation when deactivations are.
 */
int
hold_change(const struct change *c, unsigned mask)
{
	if (c->op == OP_DELETE)
		return (mask & HOLD_DELETES) != 0;
	return c->op == OP_UPDATE && c->flip == 1 + FLIP_DEACTIVATE &&
	    (mask & HOLD_DEACTIVATIONS) != 0;
}

static void
count_held(const struct change *c, int t, size_t n[NTYPES][NKINDS])
{
	n[t][c->op == OP_DELETE ? OP_DELETE : KIND_DEACTIVATE]++;
}

static int
hold_persons(const struct roster *or, const struct roster *nr,
    const struct changeset *cs, unsigned mask, struct roster *dr,
    size_t n[NTYPES][NKINDS])
{
	uint32_t *keep_old;
	size_t i;
	int rc = 0;

	if ((keep_old = calloc(nr->npersons + 1, sizeof(*keep_old))) == NULL)
		return error_sys("hold");
	for (i = 0; i < cs->n[TYPE_PERSON] && rc == 0; i++) {
		const struct change *c = &cs->c[TYPE_PERSON][i];

		if (!hold_change(c, mask))
			continue;
		count_held(c, TYPE_PERSON, n);
		if (c->op == OP_DELETE)
			rc = roster_add_person(dr, &or->persons[c->old]);
		else
			keep_old[c->new] = c->old + 1;
	}
	for (i = 0; i < nr->npersons && rc == 0; i++)
		rc = roster_add_person(dr, keep_old[i] ?
		    &or->persons[keep_old[i] - 1] : &nr->persons[i]);
	free(keep_old);
	return rc;
}

static int
hold_groups(const struct roster *or, const struct roster *nr,
    const struct changeset *cs, unsigned mask, struct roster *dr,
    size_t n[NTYPES][NKINDS])
{
	size_t i;

	for (i = 0; i < cs->n[TYPE_GROUP]; i++) {
		const struct change *c = &cs->c[TYPE_GROUP][i];

		if (!hold_change(c, mask))
			continue;
		count_held(c, TYPE_GROUP, n);
		if (roster_add_group(dr, &or->groups[c->old]) == -1)
			return -1;
	}
	for (i = 0; i < nr->ngroups; i++)
		if (roster_add_group(dr, &nr->groups[i]) == -1)
			return -1;
	return 0;
}

/* Add membership m of roster r to dr, its keys found again in dr. */
static int
add_member_of(struct roster *dr, const struct roster *r,
    const struct membership *m, int active)
{
	struct membership x = *m;
	long g = roster_find_group(dr, r->groups[m->group].id);
	long p = roster_find_person(dr, r->persons[m->person].id);

	if (g < 0 || p < 0)
		return error_set("hold: membership of %s in %s has no record",
		    r->persons[m->person].id, r->groups[m->group].id);
	x.group = (uint32_t)g;
	x.person = (uint32_t)p;
	x.active = (uint8_t)active;
	return roster_add_member(dr, &x);
}

static int
hold_members(const struct roster *or, const struct roster *nr,
    const struct changeset *cs, unsigned mask, struct roster *dr,
    size_t n[NTYPES][NKINDS])
{
	uint8_t *keep_active;
	size_t i;
	int rc = 0;

	if ((keep_active = calloc(nr->nmembers + 1, 1)) == NULL)
		return error_sys("hold");
	for (i = 0; i < cs->n[TYPE_MEMBER] && rc == 0; i++) {
		const struct change *c = &cs->c[TYPE_MEMBER][i];

		if (!hold_change(c, mask))
			continue;
		count_held(c, TYPE_MEMBER, n);
		if (c->op == OP_DELETE)
			rc = add_member_of(dr, or, &or->members[c->old],
			    or->members[c->old].active);
		else
			keep_active[c->new] = 1;
	}
	for (i = 0; i < nr->nmembers && rc == 0; i++)
		rc = add_member_of(dr, nr, &nr->members[i], keep_active[i] ?
		    1 : nr->members[i].active);
	free(keep_active);
	return rc;
}

/*
 * Build into the empty roster dr what the receiver holds after tonight
 * when the kinds in mask (HOLD_*) are held: nr with the held changes
 * of cs (from or to nr) undone, sealed; n counts what was held per
 * type and kind.  Returns 0, or -1 (error set; dr to be freed).
 */
int
hold_apply(const struct roster *or, const struct roster *nr,
    const struct changeset *cs, unsigned mask, struct roster *dr,
    size_t n[NTYPES][NKINDS])
{
	struct rejects rj = { 0 };

	memset(n, 0, sizeof(size_t) * NTYPES * NKINDS);
	dr->datetime = nr->datetime;
	if (hold_persons(or, nr, cs, mask, dr, n) == -1 ||
	    hold_groups(or, nr, cs, mask, dr, n) == -1 ||
	    roster_seal_entities(dr, &rj, "held", "held") == -1)
		return -1;
	if (rj.count > 0)
		return error_set("hold: %zu records clash", rj.count);
	if (hold_members(or, nr, cs, mask, dr, n) == -1 ||
	    roster_seal_members(dr, &rj, "held", NULL) == -1)
		return -1;
	return 0;
}
