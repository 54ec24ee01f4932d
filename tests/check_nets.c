/*
 * check_nets.c -- the safety nets beyond the nine cells: status flips
 * as cells of their own, and the config keys that set them.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sisfeed.h"
#include "tests/testutil.h"

static const unsigned char zero[32];

/*
 * A district D with schools S1 and S2, a class in each (C1, C2), and n
 * persons P000.. of whom the first n1 are learners in C1, the rest in
 * C2.  Persons in [off_from, off_from + off_n) are inactive, persons
 * in [gone_from, gone_from + gone_n) are left out.
 */
struct spec {
	size_t	n, n1;
	size_t	off_from, off_n;
	size_t	gone_from, gone_n;
};

static void
group(struct roster *r, const char *id, const char *type,
    const char *parent)
{
	tu_add_group(r, (struct group){ .id = id, .type = type,
	    .shortname = id, .longname = "", .parent = parent, .term = "" });
}

static void
build(struct roster *r, const struct spec *s)
{
	struct rejects rj = { 0 };
	struct person p;
	struct membership m;
	char id[32];
	size_t i;

	roster_init(r);
	for (i = 0; i < s->n; i++) {
		if (i >= s->gone_from && i < s->gone_from + s->gone_n)
			continue;
		snprintf(id, sizeof(id), "P%03zu", i);
		memset(&p, 0, sizeof(p));
		p.id = p.userid = id;
		p.given = p.family = p.email = p.role = "";
		p.active = !(i >= s->off_from && i < s->off_from + s->off_n);
		ck_assert_int_eq(roster_add_person(r, &p), 0);
	}
	group(r, "D", "district", "");
	group(r, "S1", "school", "D");
	group(r, "S2", "school", "D");
	group(r, "C1", "class", "S1");
	group(r, "C2", "class", "S2");
	ck_assert_int_eq(roster_seal_entities(r, &rj, "p", "g"), 0);
	for (i = 0; i < r->npersons; i++) {
		size_t num = strtoul(r->persons[i].id + 1, NULL, 10);

		memset(&m, 0, sizeof(m));
		m.group = (uint32_t)roster_find_group(r, num < s->n1 ?
		    "C1" : "C2");
		m.person = (uint32_t)i;
		m.role = 1;
		m.active = 1;
		ck_assert_int_eq(roster_add_member(r, &m), 0);
	}
	ck_assert_int_eq(roster_seal_members(r, &rj, "m", NULL), 0);
	ck_assert_uint_eq(rj.count, 0);
}

/* Thresholds all off, min_base 100. */
static void
cfg_none(struct config *cfg)
{
	int t, k;

	memset(cfg, 0, sizeof(*cfg));
	for (t = 0; t < NTYPES; t++) {
		for (k = 0; k < NOPS; k++)
			cfg->safety.t[t][k].percent = cfg->safety.t[t][k].cap
			    = -1;
		for (k = 0; k < NFLIPS; k++)
			cfg->nets.flip[t][k].percent =
			    cfg->nets.flip[t][k].cap = -1;
	}
	cfg->safety.min_base = 100;
}

/* The check of scope/org/type/kind in v, or NULL. */
static const struct check *
find_check(const struct verdict *v, enum check_scope scope,
    const char *org, int type, int kind)
{
	size_t i;

	for (i = 0; i < v->nchecks; i++) {
		const struct check *c = &v->checks[i];

		if (c->scope == scope && c->type == type && c->kind == kind &&
		    (org == NULL || strcmp(c->org, org) == 0))
			return c;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Status flips.                                                       */

/* old: n persons all active; new: k of them inactive.  Blocked? */
static int
flips_blocked(const struct config *cfg, size_t n, size_t k,
    struct verdict *v)
{
	struct spec a = { n, n, 0, 0, 0, 0 }, b = { n, n, 0, k, 0, 0 };
	struct roster or, nr;
	struct changeset cs;

	build(&or, &a);
	build(&nr, &b);
	ck_assert_int_eq(diff_compute(&or, &nr, &cs), 0);
	ck_assert_uint_eq(cs.flips[TYPE_PERSON][FLIP_DEACTIVATE], k);
	ck_assert_uint_eq(cs.deactivated, k);
	ck_assert_int_eq(safety_evaluate(cfg, &cs, 0, zero, v), 0);
	changeset_free(&cs);
	roster_free(&or);
	roster_free(&nr);
	return v->blocked;
}

START_TEST(flip_cells)
{
	struct config cfg;
	struct verdict v;
	const struct check *c;

	cfg_none(&cfg);
	/* 15 of 46 set inactive pass updates: 20% (of min_base 100) ... */
	cfg.safety.t[TYPE_PERSON][OP_UPDATE].percent = 20;
	cfg.safety.t[TYPE_PERSON][OP_DELETE].percent = 2;
	ck_assert_int_eq(flips_blocked(&cfg, 46, 15, &v), 0);
	verdict_free(&v);
	/* ... but not deactivations judged like deletes (2%) */
	cfg.nets.flip[TYPE_PERSON][FLIP_DEACTIVATE].percent = 2;
	ck_assert_int_eq(flips_blocked(&cfg, 46, 15, &v), 1);
	ck_assert_int_eq(v.tripped[TYPE_PERSON][OP_UPDATE], 0);
	c = find_check(&v, SCOPE_SITE, NULL, TYPE_PERSON, KIND_DEACTIVATE);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->tripped, 1);
	ck_assert_uint_eq(c->count, 15);
	ck_assert_uint_eq(c->nsample, CHECK_SAMPLES);
	ck_assert_ptr_nonnull(strstr(v.reason, "persons deactivations 15"));
	verdict_free(&v);
	/* the boundary: 2 of min_base 100 is 2%, allowed; 3 trips */
	ck_assert_int_eq(flips_blocked(&cfg, 46, 2, &v), 0);
	verdict_free(&v);
	ck_assert_int_eq(flips_blocked(&cfg, 46, 3, &v), 1);
	verdict_free(&v);
}
END_TEST

/* A config file with the given safety section, loaded. */
static struct config *
load_safety(const char *dir, const char *safety)
{
	char buf[4096];

	snprintf(buf, sizeof(buf),
	    "site: Test\n"
	    "source: {format: ims, file: in.xml}\n"
	    "output: {source: sis.example.org}\n"
	    "delivery: {dir: out}\n"
	    "%s", safety);
	return config_load(tu_write(dir, "sisfeed.yaml", buf));
}

START_TEST(flip_config)
{
	char dir[PATH_MAX];
	struct config *c;

	tu_mkdtemp(dir, sizeof(dir));
	/* unset: deactivations take deletes, reactivations inserts */
	c = load_safety(dir, "safety:\n"
	    "  persons: {deletes: [3%, 40], inserts: 7%}\n");
	ck_assert_ptr_nonnull(c);
	ck_assert(c->nets.flip[TYPE_PERSON][FLIP_DEACTIVATE].percent == 3);
	ck_assert_int_eq(c->nets.flip[TYPE_PERSON][FLIP_DEACTIVATE].cap, 40);
	ck_assert(c->nets.flip[TYPE_PERSON][FLIP_REACTIVATE].percent == 7);
	ck_assert(c->nets.flip[TYPE_MEMBER][FLIP_DEACTIVATE].percent == 5);
	config_free(c);
	/* set, including off */
	c = load_safety(dir, "safety:\n"
	    "  persons: {deactivations: 1%, reactivations: off}\n"
	    "  memberships: {deactivations: 30}\n");
	ck_assert_ptr_nonnull(c);
	ck_assert(c->nets.flip[TYPE_PERSON][FLIP_DEACTIVATE].percent == 1);
	ck_assert(c->nets.flip[TYPE_PERSON][FLIP_REACTIVATE].percent < 0);
	ck_assert_int_lt(c->nets.flip[TYPE_PERSON][FLIP_REACTIVATE].cap, 0);
	ck_assert_int_eq(c->nets.flip[TYPE_MEMBER][FLIP_DEACTIVATE].cap, 30);
	ck_assert(c->nets.flip[TYPE_MEMBER][FLIP_DEACTIVATE].percent < 0);
	config_free(c);
	/* groups have no status */
	c = load_safety(dir, "safety:\n  groups: {deactivations: 1%}\n");
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(error_last(), "sisfeed.yaml:6: key "
	    "'safety.groups.deactivations': unknown key"));
	tu_rmtree(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Per-org limits.                                                     */

/* Thresholds off; per org: persons deletes 10%, min_base 0. */
static void
cfg_orgs(struct config *cfg, char *type)
{
	int t, k;

	cfg_none(cfg);
	cfg->nets.orgs_enabled = 1;
	cfg->nets.org_type = type;
	for (t = 0; t < NTYPES; t++)
		for (k = 0; k < NKINDS; k++)
			cfg->nets.org_all.t[t][k].percent =
			    cfg->nets.org_all.t[t][k].cap = -1;
	cfg->nets.org_all.t[TYPE_PERSON][OP_DELETE].percent = 10;
	cfg->nets.org_all.min_base = 0;
}

/* 100 persons in S1 and 100 in S2; k leave S1.  Judged per org. */
static void
org_verdict(const struct config *cfg, size_t k, struct verdict *v)
{
	struct spec a = { 200, 100, 0, 0, 0, 0 }, b = { 200, 100, 0, 0, 0, k };
	struct roster or, nr;
	struct changeset cs;

	build(&or, &a);
	build(&nr, &b);
	ck_assert_int_eq(diff_compute(&or, &nr, &cs), 0);
	ck_assert_int_eq(safety_evaluate(cfg, &cs, 0, zero, v), 0);
	ck_assert_int_eq(safety_evaluate_orgs(cfg, &or, &nr, &cs, v), 0);
	changeset_free(&cs);
	roster_free(&or);
	roster_free(&nr);
}

START_TEST(org_boundary)
{
	char school[] = "school", s1[] = "S1";
	struct config cfg;
	struct verdict v;
	struct org_limits over;
	const struct check *c;

	cfg_orgs(&cfg, school);
	/* 10 of S1's 100 is 10%: at the limit, allowed */
	org_verdict(&cfg, 10, &v);
	ck_assert_int_eq(v.blocked, 0);
	c = find_check(&v, SCOPE_ORG, "S1", TYPE_PERSON, OP_DELETE);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->count, 10);
	ck_assert_uint_eq(c->base, 100);
	ck_assert_int_eq(c->tripped, 0);
	ck_assert_ptr_null(find_check(&v, SCOPE_ORG, "S2", TYPE_PERSON,
	    OP_DELETE));
	verdict_free(&v);
	/* 11 is one over: blocked, naming the org and its counts; the
	 * district (5.5% of 200) would not have seen it */
	org_verdict(&cfg, 11, &v);
	ck_assert_int_eq(v.blocked, 1);
	c = find_check(&v, SCOPE_ORG, "S1", TYPE_PERSON, OP_DELETE);
	ck_assert_int_eq(c->tripped, 1);
	ck_assert_uint_eq(c->nsample, CHECK_SAMPLES);
	ck_assert_ptr_nonnull(strstr(v.reason,
	    "org S1: persons deletes 11 (11.0% > 10%)"));
	verdict_free(&v);
	/* an override for S1 allows more */
	memset(&over, 0, sizeof(over));
	over = cfg.nets.org_all;
	over.org = s1;
	over.t[TYPE_PERSON][OP_DELETE].percent = 20;
	cfg.nets.org_over = &over;
	cfg.nets.norg_over = 1;
	org_verdict(&cfg, 11, &v);
	ck_assert_int_eq(v.blocked, 0);
	verdict_free(&v);
	/* min_base per org: 21 of 100 over 20%, but not of min_base 200 */
	org_verdict(&cfg, 21, &v);
	ck_assert_int_eq(v.blocked, 1);
	verdict_free(&v);
	over.min_base = 200;
	org_verdict(&cfg, 21, &v);
	ck_assert_int_eq(v.blocked, 0);
	verdict_free(&v);
	org_verdict(&cfg, 41, &v);
	ck_assert_int_eq(v.blocked, 1);
	ck_assert_ptr_nonnull(strstr(v.reason, "of min_base 200"));
	verdict_free(&v);
}
END_TEST

/* Memberships count in the org of their group's ancestry. */
START_TEST(org_memberships_and_scope)
{
	char school[] = "school";
	struct config cfg;
	struct verdict v;
	const struct check *c;
	char scope[4000];

	cfg_orgs(&cfg, school);
	cfg.nets.org_all.t[TYPE_MEMBER][OP_DELETE].percent = 5;
	org_verdict(&cfg, 6, &v);
	c = find_check(&v, SCOPE_ORG, "S1", TYPE_MEMBER, OP_DELETE);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->count, 6);
	ck_assert_uint_eq(c->base, 100);
	ck_assert_int_eq(c->tripped, 1);
	ck_assert_int_eq(verdict_scope(&v, scope, sizeof(scope)), 0);
	ck_assert_str_eq(scope, "org:S1:memberships.deletes");
	verdict_free(&v);
	/* an approval of the org's block does not unlock the district */
	cfg.safety.t[TYPE_PERSON][OP_DELETE].percent = 2;
	org_verdict(&cfg, 6, &v);
	ck_assert_int_eq(v.tripped[TYPE_PERSON][OP_DELETE], 1);
	ck_assert_int_eq(verdict_covered(&v, scope), 0);
	ck_assert_int_eq(verdict_covered(&v, "*"), 1);
	ck_assert_int_eq(verdict_covered(&v, "persons.deletes "
	    "org:S1:memberships.deletes"), 1);
	ck_assert_int_eq(verdict_covered(&v, "persons.deletes"), 0);
	verdict_free(&v);
	/* no org of that type: no org checks */
	cfg.nets.org_type = "campus";
	org_verdict(&cfg, 6, &v);
	ck_assert_ptr_null(find_check(&v, SCOPE_ORG, NULL, TYPE_MEMBER,
	    OP_DELETE));
	verdict_free(&v);
}
END_TEST

START_TEST(org_config)
{
	char dir[PATH_MAX];
	struct config *c;

	tu_mkdtemp(dir, sizeof(dir));
	c = load_safety(dir, "safety:\n"
	    "  min_base: 50\n"
	    "  orgs:\n"
	    "    persons: {deletes: 10%}\n"
	    "    override:\n"
	    "      SCH-N: {min_base: 5, memberships: {deletes: 30}}\n");
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->nets.orgs_enabled, 1);
	ck_assert_str_eq(c->nets.org_type, "school");
	ck_assert_int_eq(c->nets.org_all.min_base, 50);
	ck_assert(c->nets.org_all.t[TYPE_PERSON][OP_DELETE].percent == 10);
	ck_assert(c->nets.org_all.t[TYPE_PERSON][KIND_DEACTIVATE].percent
	    == 10);
	ck_assert(c->nets.org_all.t[TYPE_PERSON][OP_INSERT].percent < 0);
	ck_assert_uint_eq(c->nets.norg_over, 1);
	ck_assert_str_eq(c->nets.org_over[0].org, "SCH-N");
	ck_assert_int_eq(c->nets.org_over[0].min_base, 5);
	ck_assert(c->nets.org_over[0].t[TYPE_PERSON][OP_DELETE].percent
	    == 10);
	ck_assert_int_eq(c->nets.org_over[0].t[TYPE_MEMBER][OP_DELETE].cap,
	    30);
	config_free(c);
	c = load_safety(dir, "safety:\n  orgs:\n    override: [a]\n");
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(error_last(), "sisfeed.yaml:7: key "
	    "'safety.orgs.override': expected a mapping"));
	tu_rmtree(dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Pause.                                                              */

/* A calendar window holds from its first second to its last. */
START_TEST(pause_window_bounds)
{
	char dir[PATH_MAX];
	struct config cfg;
	struct pause_window w;
	time_t until;

	tu_mkdtemp(dir, sizeof(dir));
	cfg_none(&cfg);
	cfg.state_dir = dir;
	ck_assert_int_eq(pause_date("2026-07-01", 0, &w.from), 0);
	ck_assert_int_eq(pause_date("2026-08-15", 1, &w.to), 0);
	w.hold = HOLD_DELETES;
	cfg.nets.pause = &w;
	cfg.nets.npause = 1;
	ck_assert_uint_eq(pause_active(&cfg, w.from - 1, &until), 0);
	ck_assert_uint_eq(until, 0);
	ck_assert_uint_eq(pause_active(&cfg, w.from, &until), HOLD_DELETES);
	ck_assert_int_eq(until, w.to);
	ck_assert_uint_eq(pause_active(&cfg, w.to - 1, &until),
	    HOLD_DELETES);
	ck_assert_uint_eq(pause_active(&cfg, w.to, &until), 0);
	/* to is the end of the last day, local time */
	ck_assert_int_eq(pause_date("2026-08-16", 0, &until), 0);
	ck_assert_int_eq(until, w.to);
	/* STATE/pause adds its kinds until its end */
	tu_write(dir, "pause", "until 1790000000\nhold 2\nby x\n");
	ck_assert_uint_eq(pause_active(&cfg, 1789999999, &until),
	    HOLD_DEACTIVATIONS);
	ck_assert_int_eq(until, 1790000000);
	ck_assert_uint_eq(pause_active(&cfg, 1790000000, &until), 0);
	ck_assert_int_eq(pause_date("2026-13-01", 0, &until), -1);
	ck_assert_int_eq(pause_date("2026-07-01x", 0, &until), -1);
	tu_rmtree(dir);
}
END_TEST

/* Held changes undone: the delivered roster keeps the old records. */
START_TEST(hold_roster)
{
	struct spec a = { 20, 10, 0, 0, 0, 0 }, b = { 20, 10, 3, 2, 10, 4 };
	struct roster or, nr, dr;
	struct changeset cs, cs2;
	size_t held[NTYPES][NKINDS];

	build(&or, &a);
	build(&nr, &b);
	ck_assert_int_eq(diff_compute(&or, &nr, &cs), 0);
	ck_assert_uint_eq(cs.count[TYPE_PERSON][OP_DELETE], 4);
	ck_assert_uint_eq(cs.flips[TYPE_PERSON][FLIP_DEACTIVATE], 2);
	roster_init(&dr);
	ck_assert_int_eq(hold_apply(&or, &nr, &cs, HOLD_DELETES, &dr, held),
	    0);
	ck_assert_uint_eq(held[TYPE_PERSON][OP_DELETE], 4);
	ck_assert_uint_eq(held[TYPE_MEMBER][OP_DELETE], 4);
	ck_assert_int_eq(diff_compute(&or, &dr, &cs2), 0);
	ck_assert_uint_eq(cs2.count[TYPE_PERSON][OP_DELETE], 0);
	ck_assert_uint_eq(cs2.count[TYPE_MEMBER][OP_DELETE], 0);
	ck_assert_uint_eq(cs2.flips[TYPE_PERSON][FLIP_DEACTIVATE], 2);
	changeset_free(&cs2);
	roster_free(&dr);
	roster_init(&dr);
	ck_assert_int_eq(hold_apply(&or, &nr, &cs, HOLD_DELETES |
	    HOLD_DEACTIVATIONS, &dr, held), 0);
	ck_assert_uint_eq(held[TYPE_PERSON][KIND_DEACTIVATE], 2);
	ck_assert_int_eq(diff_compute(&or, &dr, &cs2), 0);
	ck_assert_uint_eq(cs2.n[TYPE_PERSON] + cs2.n[TYPE_GROUP] +
	    cs2.n[TYPE_MEMBER], 0);
	/* and released: tonight's export against what was delivered */
	changeset_free(&cs2);
	ck_assert_int_eq(diff_compute(&dr, &nr, &cs2), 0);
	ck_assert_uint_eq(cs2.count[TYPE_PERSON][OP_DELETE], 4);
	ck_assert_uint_eq(cs2.flips[TYPE_PERSON][FLIP_DEACTIVATE], 2);
	changeset_free(&cs2);
	changeset_free(&cs);
	roster_free(&dr);
	roster_free(&or);
	roster_free(&nr);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("nets");
	TCase *tc = tcase_create("flips");

	tcase_add_test(tc, flip_cells);
	tcase_add_test(tc, flip_config);
	suite_add_tcase(s, tc);
	tc = tcase_create("orgs");
	tcase_add_test(tc, org_boundary);
	tcase_add_test(tc, org_memberships_and_scope);
	tcase_add_test(tc, org_config);
	suite_add_tcase(s, tc);
	tc = tcase_create("pause");
	tcase_add_test(tc, pause_window_bounds);
	tcase_add_test(tc, hold_roster);
	suite_add_tcase(s, tc);
	return tu_run_suite(s) == 0 ? 0 : 1;
}
