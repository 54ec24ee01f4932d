/*
 * check_safety.c -- the diff (merge-join by key) and the safety
 * filter (every threshold at its exact boundary, min_base, caps, the
 * first run, the approval id), and the roster model underneath.
 */
#include <stdlib.h>
#include <string.h>

#include "sisfeed.h"
#include "tests/testutil.h"

static void
add_person(struct roster *r, const char *id, const char *given, int active)
{
	tu_add_person(r, (struct person){ .id = id, .userid = id,
	    .given = given, .family = "Family", .active = (uint8_t)active });
}

static void
add_group(struct roster *r, const char *id, const char *parent)
{
	tu_add_group(r, (struct group){ .id = id, .shortname = id,
	    .parent = parent });
}

static void
add_member(struct roster *r, const char *gid, const char *pid, int role)
{
	tu_add_member(r, gid, pid, role, 1);
}

/* A roster of n persons P0000.., one group, each person a learner. */
static void
make_roster(struct roster *r, size_t n, size_t skip_from, size_t skip_n)
{
	struct rejects rj = { 0 };
	char id[32];
	size_t i;

	roster_init(r);
	for (i = 0; i < n; i++) {
		if (i >= skip_from && i < skip_from + skip_n)
			continue;
		snprintf(id, sizeof(id), "P%04zu", i);
		add_person(r, id, "Given", 1);
	}
	add_group(r, "G", "");
	ck_assert_int_eq(roster_seal_entities(r, &rj, "p", "g"), 0);
	for (i = 0; i < r->npersons; i++)
		add_member(r, "G", r->persons[i].id, 1);
	ck_assert_int_eq(roster_seal_members(r, &rj, "m", NULL), 0);
	ck_assert_uint_eq(rj.count, 0);
}

static void
config_defaults(struct config *cfg)
{
	int t, op;

	memset(cfg, 0, sizeof(*cfg));
	for (t = 0; t < NTYPES; t++)
		for (op = 0; op < NOPS; op++) {
			cfg->safety.t[t][op].percent = -1;
			cfg->safety.t[t][op].cap = -1;
		}
	for (t = 0; t < NTYPES; t++)
		for (op = 0; op < NFLIPS; op++) {
			cfg->nets.flip[t][op].percent = -1;
			cfg->nets.flip[t][op].cap = -1;
		}
	cfg->safety.min_base = 100;
	cfg->safety.first_run = FIRST_RUN_BLOCK;
}

static const unsigned char zero[32];

START_TEST(diff_merge_join)
{
	struct roster a, b;
	struct changeset cs;
	struct rejects rj = { 0 };

	roster_init(&a);
	roster_init(&b);
	add_person(&a, "A", "Ann", 1);
	add_person(&a, "B", "Bob", 1);
	add_person(&a, "C", "Cid", 1);
	add_group(&a, "G", "");
	ck_assert_int_eq(roster_seal_entities(&a, &rj, "p", "g"), 0);
	add_member(&a, "G", "A", 1);
	add_member(&a, "G", "B", 1);
	ck_assert_int_eq(roster_seal_members(&a, &rj, "m", NULL), 0);

	add_person(&b, "D", "Dee", 1);		/* insert */
	add_person(&b, "B", "Bobby", 1);	/* update */
	add_person(&b, "A", "Ann", 0);		/* deactivation */
	add_group(&b, "G", "");
	ck_assert_int_eq(roster_seal_entities(&b, &rj, "p", "g"), 0);
	add_member(&b, "G", "A", 1);
	add_member(&b, "G", "A", 2);		/* a second role: insert */
	ck_assert_int_eq(roster_seal_members(&b, &rj, "m", NULL), 0);

	ck_assert_int_eq(diff_compute(&a, &b, &cs), 0);
	ck_assert_uint_eq(cs.count[TYPE_PERSON][OP_INSERT], 1);
	ck_assert_uint_eq(cs.count[TYPE_PERSON][OP_UPDATE], 2);
	ck_assert_uint_eq(cs.count[TYPE_PERSON][OP_DELETE], 1);
	ck_assert_uint_eq(cs.deactivated, 1);
	ck_assert_uint_eq(cs.reactivated, 0);
	ck_assert_uint_eq(cs.count[TYPE_GROUP][OP_INSERT] +
	    cs.count[TYPE_GROUP][OP_UPDATE] +
	    cs.count[TYPE_GROUP][OP_DELETE], 0);
	ck_assert_uint_eq(cs.count[TYPE_MEMBER][OP_INSERT], 1);
	ck_assert_uint_eq(cs.count[TYPE_MEMBER][OP_DELETE], 1);
	ck_assert_uint_eq(cs.base[TYPE_PERSON], 3);
	/* changes come in key order: A (update), B (update), C, D */
	ck_assert_str_eq(b.persons[cs.c[TYPE_PERSON][0].new].id, "A");
	ck_assert_int_eq(cs.c[TYPE_PERSON][2].op, OP_DELETE);
	ck_assert_str_eq(a.persons[cs.c[TYPE_PERSON][2].old].id, "C");
	changeset_free(&cs);
	roster_free(&a);
	roster_free(&b);
}
END_TEST

START_TEST(diff_same_is_empty_and_digest_stable)
{
	struct roster a, b;
	struct changeset cs1, cs2;

	make_roster(&a, 50, 0, 0);
	make_roster(&b, 50, 0, 0);
	ck_assert_int_eq(diff_compute(&a, &b, &cs1), 0);
	ck_assert_uint_eq(cs1.n[0] + cs1.n[1] + cs1.n[2], 0);
	changeset_free(&cs1);
	roster_free(&b);
	make_roster(&b, 50, 10, 3);
	ck_assert_int_eq(diff_compute(&a, &b, &cs1), 0);
	ck_assert_int_eq(diff_compute(&a, &b, &cs2), 0);
	ck_assert_uint_eq(cs1.count[TYPE_PERSON][OP_DELETE], 3);
	ck_assert_uint_eq(cs1.count[TYPE_MEMBER][OP_DELETE], 3);
	ck_assert_mem_eq(cs1.digest, cs2.digest, 32);
	changeset_free(&cs1);
	changeset_free(&cs2);
	roster_free(&a);
	roster_free(&b);
}
END_TEST

/* deletes of k out of base, against a threshold; returns blocked. */
static int
deletes_blocked(struct config *cfg, size_t base, size_t k)
{
	struct roster a, b;
	struct changeset cs;
	struct verdict v;

	make_roster(&a, base, 0, 0);
	make_roster(&b, base, 0, k);
	ck_assert_int_eq(diff_compute(&a, &b, &cs), 0);
	ck_assert_uint_eq(cs.count[TYPE_PERSON][OP_DELETE], k);
	ck_assert_int_eq(safety_evaluate(cfg, &cs, 0, zero, &v), 0);
	changeset_free(&cs);
	roster_free(&a);
	roster_free(&b);
	verdict_free(&v);
	return v.tripped[TYPE_PERSON][OP_DELETE];
}

START_TEST(percent_boundary)
{
	struct config cfg;

	config_defaults(&cfg);
	cfg.safety.t[TYPE_PERSON][OP_DELETE].percent = 2;
	ck_assert_int_eq(deletes_blocked(&cfg, 1000, 20), 0);	/* = 2% */
	ck_assert_int_eq(deletes_blocked(&cfg, 1000, 21), 1);	/* > 2% */
	cfg.safety.t[TYPE_PERSON][OP_DELETE].percent = 0.3;
	ck_assert_int_eq(deletes_blocked(&cfg, 1000, 3), 0);	/* exact */
	ck_assert_int_eq(deletes_blocked(&cfg, 1000, 4), 1);
	cfg.safety.t[TYPE_PERSON][OP_DELETE].percent = 0;
	ck_assert_int_eq(deletes_blocked(&cfg, 1000, 0), 0);
	ck_assert_int_eq(deletes_blocked(&cfg, 1000, 1), 1);
}
END_TEST

START_TEST(cap_boundary)
{
	struct config cfg;

	config_defaults(&cfg);
	cfg.safety.t[TYPE_PERSON][OP_DELETE].cap = 5;
	ck_assert_int_eq(deletes_blocked(&cfg, 1000, 5), 0);
	ck_assert_int_eq(deletes_blocked(&cfg, 1000, 6), 1);
	/* [2%, 5]: either trips */
	cfg.safety.t[TYPE_PERSON][OP_DELETE].percent = 2;
	ck_assert_int_eq(deletes_blocked(&cfg, 200, 5), 1);	/* 2.5% */
	ck_assert_int_eq(deletes_blocked(&cfg, 1000, 6), 1);	/* cap */
	ck_assert_int_eq(deletes_blocked(&cfg, 1000, 5), 0);
}
END_TEST

START_TEST(min_base)
{
	struct config cfg;

	config_defaults(&cfg);
	cfg.safety.t[TYPE_PERSON][OP_DELETE].percent = 10;
	cfg.safety.min_base = 100;
	/* 1 of 3 is not 33%: judged against min_base 100, 1% */
	ck_assert_int_eq(deletes_blocked(&cfg, 3, 1), 0);
	/* 10 of 50 is 10% of min_base: allowed; 11 trips */
	ck_assert_int_eq(deletes_blocked(&cfg, 50, 10), 0);
	ck_assert_int_eq(deletes_blocked(&cfg, 50, 11), 1);
	/* at or above min_base the real base counts */
	ck_assert_int_eq(deletes_blocked(&cfg, 100, 11), 1);
	ck_assert_int_eq(deletes_blocked(&cfg, 200, 20), 0);
	ck_assert_int_eq(deletes_blocked(&cfg, 200, 21), 1);
	/* a cap still applies below min_base */
	cfg.safety.t[TYPE_PERSON][OP_DELETE].cap = 1;
	ck_assert_int_eq(deletes_blocked(&cfg, 3, 2), 1);
}
END_TEST

START_TEST(each_type_and_op)
{
	struct config cfg;
	struct changeset cs;
	struct verdict v;
	int t, op;

	for (t = 0; t < NTYPES; t++) {
		for (op = 0; op < NOPS; op++) {
			config_defaults(&cfg);
			cfg.safety.min_base = 0;
			cfg.safety.t[t][op].percent = 10;
			memset(&cs, 0, sizeof(cs));
			cs.base[t] = 100;
			cs.count[t][op] = 10;
			safety_evaluate(&cfg, &cs, 0, zero, &v);
			ck_assert_int_eq(v.blocked, 0);
			verdict_free(&v);
			cs.count[t][op] = 11;
			safety_evaluate(&cfg, &cs, 0, zero, &v);
			verdict_free(&v);
			ck_assert_int_eq(v.blocked, 1);
			ck_assert_int_eq(v.tripped[t][op], 1);
			ck_assert_ptr_nonnull(strstr(v.reason, type_name(t)));
			ck_assert_ptr_nonnull(strstr(v.reason, op_name(op)));
			ck_assert_ptr_nonnull(strstr(v.reason, "11.0% > 10%"));
		}
	}
}
END_TEST

START_TEST(first_run)
{
	struct config cfg;
	struct changeset cs;
	struct verdict v;

	config_defaults(&cfg);
	memset(&cs, 0, sizeof(cs));
	cs.count[TYPE_PERSON][OP_INSERT] = 5000;
	safety_evaluate(&cfg, &cs, 1, zero, &v);
	ck_assert_int_eq(v.blocked, 1);
	ck_assert_int_eq(v.first_run, 1);
	ck_assert_ptr_nonnull(strstr(v.reason, "initial load"));
	cfg.safety.first_run = FIRST_RUN_ALLOW;
	safety_evaluate(&cfg, &cs, 1, zero, &v);
	ck_assert_int_eq(v.blocked, 0);
}
END_TEST

START_TEST(approval_id)
{
	struct config cfg;
	struct changeset cs;
	struct verdict v1, v2, v3;
	unsigned char other[32];

	config_defaults(&cfg);
	memset(&cs, 0, sizeof(cs));
	memset(other, 1, sizeof(other));
	cs.digest[0] = 7;
	safety_evaluate(&cfg, &cs, 0, zero, &v1);
	safety_evaluate(&cfg, &cs, 0, zero, &v2);
	ck_assert_str_eq(v1.approval_id, v2.approval_id);
	ck_assert_uint_eq(strlen(v1.approval_id), 16);
	verdict_free(&v2);
	/* another snapshot, same changes: another id */
	safety_evaluate(&cfg, &cs, 0, other, &v3);
	ck_assert_str_ne(v1.approval_id, v3.approval_id);
	verdict_free(&v3);
	/* same snapshot, other changes: another id */
	cs.digest[0] = 8;
	safety_evaluate(&cfg, &cs, 0, zero, &v3);
	ck_assert_str_ne(v1.approval_id, v3.approval_id);
	verdict_free(&v3);
	verdict_free(&v1);
}
END_TEST

START_TEST(roster_duplicates_rejected)
{
	struct roster r;
	struct rejects rj = { 0 };
	char buf[4096] = "";
	struct person p;

	rj.fp = fmemopen(buf, sizeof(buf), "w");
	ck_assert_ptr_nonnull(rj.fp);
	roster_init(&r);
	memset(&p, 0, sizeof(p));
	p.id = "X";
	p.line = 2;
	ck_assert_int_eq(roster_add_person(&r, &p), 0);
	p.id = "Y";
	p.line = 3;
	ck_assert_int_eq(roster_add_person(&r, &p), 0);
	p.id = "X";
	p.line = 4;
	ck_assert_int_eq(roster_add_person(&r, &p), 0);
	add_group(&r, "G", "NOPE");
	ck_assert_int_eq(roster_seal_entities(&r, &rj, "p.csv", "g.csv"), 0);
	fclose(rj.fp);
	ck_assert_uint_eq(r.npersons, 1);
	ck_assert_str_eq(r.persons[0].id, "Y");
	/* a dangling parent drops the link (a note), not the group */
	ck_assert_uint_eq(r.ngroups, 1);
	ck_assert_str_eq(r.groups[0].parent, "");
	ck_assert_uint_eq(rj.count, 2);
	ck_assert_uint_eq(rj.notes, 1);
	ck_assert_ptr_nonnull(strstr(buf,
	    "p.csv:2: id: duplicate person key 'X' (also on line 4)"));
	ck_assert_ptr_nonnull(strstr(buf,
	    "p.csv:4: id: duplicate person key 'X' (also on line 2)"));
	ck_assert_ptr_nonnull(strstr(buf,
	    "g.csv:0: parent: note: unknown group 'NOPE': kept as a root"));
	roster_free(&r);
}
END_TEST

/* A membership with a timeframe (day numbers, 0 open). */
static void
add_member_range(struct roster *r, const char *gid, const char *pid,
    int role, unsigned begin, unsigned end)
{
	add_member(r, gid, pid, role);
	r->members[r->nmembers - 1].begin = (uint16_t)begin;
	r->members[r->nmembers - 1].end = (uint16_t)end;
}

/* Day numbers; terms of one membership merged; a changed range is an
 * update in the digest. */
START_TEST(member_timeframes)
{
	struct roster a, b;
	struct changeset cs;
	struct rejects rj = { 0 };
	unsigned char digest[32];
	char out[11];
	unsigned d;

	ck_assert_uint_eq(day_parse("1970-01-02", 10), 1);
	ck_assert_uint_eq(day_parse("2024-08-26", 10), 19961);
	ck_assert_uint_eq(day_parse("2149-06-06", 10), 65535);
	ck_assert_uint_eq(day_parse("2149-06-07", 10), 0);
	ck_assert_uint_eq(day_parse("1970-01-01", 10), 0);
	ck_assert_uint_eq(day_parse("2023-02-29", 10), 0);
	ck_assert_uint_eq(day_parse("2024-02-29", 10), 19782);
	ck_assert_uint_eq(day_parse("2100-02-29", 10), 0);
	ck_assert_uint_eq(day_parse("2024-13-01", 10), 0);
	ck_assert_uint_eq(day_parse("2024-1-011", 10), 0);
	ck_assert_uint_eq(day_parse("2024-01-01T", 11), 0);
	for (d = 1; d <= 65535; d += 97) {
		day_format(d, out);
		ck_assert_uint_eq(day_parse(out, strlen(out)), d);
	}
	ck_assert_str_eq(day_format(65535, out), "2149-06-06");

	make_roster(&a, 3, 0, 0);
	/* Fall and Spring of P0000: one membership, Fall's begin, Spring's
	 * end; P0001 open-ended in one term: open; P0002 none */
	make_roster(&b, 3, 0, 0);
	b.members[0].begin = 20100;
	b.members[0].end = 20200;
	b.members[1].begin = 19900;
	add_member_range(&b, "G", "P0000", 1, 19966, 20080);
	add_member_range(&b, "G", "P0001", 1, 19800, 19850);
	ck_assert_int_eq(roster_seal_members(&b, &rj, "m", NULL), 0);
	ck_assert_uint_eq(b.nmembers, 3);
	ck_assert_uint_eq(b.members[0].begin, 19966);
	ck_assert_uint_eq(b.members[0].end, 20200);
	ck_assert_uint_eq(b.members[1].begin, 19800);
	ck_assert_uint_eq(b.members[1].end, 0);
	ck_assert_uint_eq(b.members[2].begin + b.members[2].end, 0);

	ck_assert_int_eq(diff_compute(&a, &b, &cs), 0);
	ck_assert_uint_eq(cs.count[TYPE_MEMBER][OP_UPDATE], 2);
	ck_assert_uint_eq(cs.n[TYPE_MEMBER], 2);
	ck_assert_uint_eq(cs.flips[TYPE_MEMBER][FLIP_DEACTIVATE] +
	    cs.flips[TYPE_MEMBER][FLIP_REACTIVATE], 0);
	memcpy(digest, cs.digest, sizeof(digest));
	changeset_free(&cs);
	/* one day later is another change set */
	b.members[0].end++;
	ck_assert_int_eq(diff_compute(&a, &b, &cs), 0);
	ck_assert_uint_eq(cs.count[TYPE_MEMBER][OP_UPDATE], 2);
	ck_assert_int_ne(memcmp(digest, cs.digest, sizeof(digest)), 0);
	changeset_free(&cs);
	roster_free(&a);
	roster_free(&b);
}
END_TEST

START_TEST(parsers)
{
	ck_assert_int_eq(role_parse("01"), 1);
	ck_assert_int_eq(role_parse("8"), 8);
	ck_assert_int_eq(role_parse("09"), 0);
	ck_assert_int_eq(role_parse("Teacher"), 2);
	ck_assert_int_eq(role_parse("TEACHINGASSISTANT"), 8);
	ck_assert_int_eq(role_parse("janitor"), 0);
	ck_assert_str_eq(role_name(6), "Mentor");
	ck_assert_int_eq(status_parse("Y"), 1);
	ck_assert_int_eq(status_parse("InActive"), 0);
	ck_assert_int_eq(status_parse("maybe"), -1);
	ck_assert_int_eq(utf8_valid("Bj\xc3\xb8rn", 6), 1);
	ck_assert_int_eq(utf8_valid("\xc3", 1), 0);
	ck_assert_int_eq(utf8_valid("\xc0\xaf", 2), 0);		/* overlong */
	ck_assert_int_eq(utf8_valid("\xed\xa0\x80", 3), 0);	/* surrogate */
	ck_assert_int_eq(utf8_valid("\xf4\x90\x80\x80", 4), 0);
	/* long ASCII runs (checked eight bytes at a time) around a bad or
	 * a good sequence, at every offset */
	{
		char buf[40];
		size_t at;

		for (at = 0; at < 24; at++) {
			memset(buf, 'a', sizeof(buf));
			buf[at] = '\xff';
			ck_assert_int_eq(utf8_valid(buf, sizeof(buf)), 0);
			buf[at] = '\xc3';
			buf[at + 1] = '\xa5';
			ck_assert_int_eq(utf8_valid(buf, sizeof(buf)), 1);
			ck_assert_int_eq(utf8_valid(buf, at + 1), 0);
		}
	}
}
END_TEST

START_TEST(sha256_vectors)
{
	struct sha256 h;
	unsigned char d[32];
	char hex[65];

	sha256_init(&h);
	sha256_update(&h, "abc", 3);
	sha256_final(&h, d);
	sha256_hex(d, 32, hex);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	sha256_init(&h);
	sha256_update(&h, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomn"
	    "opnopq", 56);
	sha256_final(&h, d);
	sha256_hex(d, 32, hex);
	ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039"
	    "a33ce45964ff2167f6ecedd419db06c1");
}
END_TEST

START_TEST(roster_parent_cycles_rejected)
{
	struct roster r;
	struct rejects rj = { 0 };

	roster_init(&r);
	add_group(&r, "ROOT", "ROOT");		/* a root naming itself */
	add_group(&r, "A", "B");		/* A -> B -> C -> A */
	add_group(&r, "B", "C");
	add_group(&r, "C", "A");
	add_group(&r, "D", "A");		/* hangs off the cycle */
	add_group(&r, "E", "ROOT");
	add_group(&r, "F", "E");
	ck_assert_int_eq(roster_seal_entities(&r, &rj, "p", "g"), 0);
	/* D stays, as a root, with a note */
	ck_assert_uint_eq(r.ngroups, 4);
	ck_assert_str_eq(r.groups[0].id, "D");
	ck_assert_str_eq(r.groups[0].parent, "");
	ck_assert_str_eq(r.groups[1].id, "E");
	ck_assert_str_eq(r.groups[2].id, "F");
	ck_assert_str_eq(r.groups[3].id, "ROOT");
	ck_assert_uint_eq(rj.count, 3);
	ck_assert_uint_eq(rj.notes, 1);
	roster_free(&r);
}
END_TEST

START_TEST(roster_strings_as_xml_carries_them)
{
	struct roster r;
	struct person p;

	roster_init(&r);
	memset(&p, 0, sizeof(p));
	p.id = "X";
	p.given = "A\x01" "b\r\nc\rd\te\xef\xbf\xbe!";
	p.family = "Plain";
	ck_assert_int_eq(roster_add_person(&r, &p), 0);
	ck_assert_str_eq(r.persons[0].given, "Ab\nc\nd\te!");
	ck_assert_str_eq(r.persons[0].family, "Plain");
	ck_assert_str_eq(institution_role_parse("faculty"), "Faculty");
	ck_assert_ptr_null(institution_role_parse("Janitor"));
	roster_free(&r);
}
END_TEST

/* A random roster over a small key space (fixed seed), for diff_random. */
static void
random_roster(struct roster *r, unsigned *seed)
{
	struct rejects rj = { 0 };
	char id[16];
	int i, g, p, role;

	roster_init(r);
	for (i = 0; i < 40; i++)
		if (rand_r(seed) % 3 != 0) {
			snprintf(id, sizeof(id), "p%02d", i);
			add_person(r, id, "G", 1);
		}
	for (i = 0; i < 8; i++)
		if (rand_r(seed) % 4 != 0) {
			snprintf(id, sizeof(id), "g%d", i);
			add_group(r, id, "");
		}
	ck_assert_int_eq(roster_seal_entities(r, &rj, "p", "g"), 0);
	for (i = 0; i < 150 && r->npersons > 0 && r->ngroups > 0; i++) {
		struct membership m;

		g = rand_r(seed) % (int)r->ngroups;
		p = rand_r(seed) % (int)r->npersons;
		role = 1 + rand_r(seed) % 3;
		memset(&m, 0, sizeof(m));
		m.group = (uint32_t)g;
		m.person = (uint32_t)p;
		m.role = (uint8_t)role;
		m.active = (uint8_t)(rand_r(seed) % 5 != 0);
		ck_assert_int_eq(roster_add_member(r, &m), 0);
	}
	rj.fp = NULL;
	ck_assert_int_eq(roster_seal_members(r, &rj, "m", NULL), 0);
}

/* Is membership (gid, pid, role) in r; its active flag in *active. */
static int
has_member(const struct roster *r, const char *gid, const char *pid,
    int role, int *active)
{
	size_t i;

	for (i = 0; i < r->nmembers; i++) {
		const struct membership *m = &r->members[i];

		if (strcmp(r->groups[m->group].id, gid) == 0 &&
		    strcmp(r->persons[m->person].id, pid) == 0 &&
		    m->role == role) {
			*active = m->active;
			return 1;
		}
	}
	return 0;
}

/* The merge-join by ranks agrees with a brute-force comparison. */
START_TEST(diff_random)
{
	unsigned seed = 20261125;
	int round;

	for (round = 0; round < 200; round++) {
		struct roster a, b;
		struct changeset cs;
		size_t i, ins = 0, upd = 0, del = 0;
		int act, act2;

		random_roster(&a, &seed);
		random_roster(&b, &seed);
		ck_assert_int_eq(diff_compute(&a, &b, &cs), 0);
		for (i = 0; i < b.nmembers; i++) {
			const struct membership *m = &b.members[i];

			if (!has_member(&a, b.groups[m->group].id,
			    b.persons[m->person].id, m->role, &act))
				ins++;
			else if (act != m->active)
				upd++;
		}
		for (i = 0; i < a.nmembers; i++) {
			const struct membership *m = &a.members[i];

			if (!has_member(&b, a.groups[m->group].id,
			    a.persons[m->person].id, m->role, &act2))
				del++;
		}
		ck_assert_uint_eq(cs.count[TYPE_MEMBER][OP_INSERT], ins);
		ck_assert_uint_eq(cs.count[TYPE_MEMBER][OP_UPDATE], upd);
		ck_assert_uint_eq(cs.count[TYPE_MEMBER][OP_DELETE], del);
		changeset_free(&cs);
		roster_free(&a);
		roster_free(&b);
	}
}
END_TEST

/* How memberships spread over the groups of night_roster. */
enum spread { SPREAD_EVEN, SPREAD_FIRST, SPREAD_LAST, SPREAD_ONE,
    SPREAD_NONE };

/* The same scrambled number for (a, b, c) every time. */
static unsigned
mix3(unsigned a, unsigned b, unsigned c)
{
	unsigned x = a * 2654435761u ^ b * 40503u ^ c * 2246822519u;

	x ^= x >> 15;
	x *= 2246822519u;
	x ^= x >> 13;
	return x;
}

/* Is universe group u (0..ng+1) in night's roster; its key in id. */
static int
night_group(size_t u, size_t ng, int night, enum spread s, char *id,
    size_t len)
{
	if (u == 0 || u == ng + 1) {	/* gone: sorts first, sorts last */
		snprintf(id, len, "%s", u == 0 ? "a-gone" : "z-gone");
		return night == 0 && s != SPREAD_ONE;
	}
	snprintf(id, len, "g%02zu", u - 1);
	if (s == SPREAD_ONE)
		return u == 1;
	if (u - 1 == 2)			/* gone */
		return night == 0;
	if (u - 1 == ng - 2)		/* new */
		return night == 1;
	return 1;
}

/* Is membership (group u, person i, role) in night's roster. */
static int
night_member(size_t u, size_t ng, size_t i, int role, int night,
    enum spread s)
{
	unsigned x = mix3((unsigned)u, (unsigned)i, (unsigned)role);

	if (mix3((unsigned)u, (unsigned)i, (unsigned)(role + 100 * night)) %
	    16 == 0)
		return 0;		/* inserted or deleted */
	switch (s) {
	case SPREAD_EVEN:
		return x % 3 == 0;
	case SPREAD_FIRST:
		return u == 1 ? x % 4 != 0 : x % 40 == 0;
	case SPREAD_LAST:
		return u == ng ? x % 4 != 0 : x % 40 == 0;
	case SPREAD_ONE:
		return x % 4 != 0;
	default:
		return 0;
	}
}

/*
 * Night `night` (0 the snapshot, 1 tonight) of a roster of np persons
 * and ng groups that changes between the nights: persons gone, new,
 * renamed, deactivated; groups gone (the first, the last, one between)
 * and new; memberships inserted, deleted, deactivated, reactivated and
 * given another timeframe, spread over the groups as s says.
 */
static void
night_roster(struct roster *r, int night, size_t np, size_t ng,
    enum spread s)
{
	struct rejects rj = { 0 };
	char pid[32], gid[32];
	size_t i, u;
	int role;

	roster_init(r);
	for (i = 0; i < np; i++) {
		if ((night == 0 && i % 17 == 3) || (night == 1 && i % 19 == 5))
			continue;
		snprintf(pid, sizeof(pid), "p%04zu", i);
		add_person(r, pid, night == 1 && i % 23 == 0 ? "New" : "G",
		    i % 29 == 0 ? night : 1);
	}
	for (u = 0; u < ng + 2; u++)
		if (night_group(u, ng, night, s, gid, sizeof(gid)))
			add_group(r, gid, "");
	ck_assert_int_eq(roster_seal_entities(r, &rj, "p", "g"), 0);
	for (u = 0; u < ng + 2 && s != SPREAD_NONE; u++) {
		if (!night_group(u, ng, night, s, gid, sizeof(gid)))
			continue;
		for (i = 0; i < np; i++) {
			snprintf(pid, sizeof(pid), "p%04zu", i);
			if (roster_find_person(r, pid) < 0)
				continue;
			for (role = 1; role <= 2; role++) {
				unsigned x = mix3((unsigned)u, (unsigned)i,
				    (unsigned)role + 7);

				if (!night_member(u, ng, i, role, night, s))
					continue;
				add_member(r, gid, pid, role);
				r->members[r->nmembers - 1].active =
				    (uint8_t)(x % 11 == 0 ? night :
				    x % 11 == 1 ? !night : 1);
				if (x % 13 == 0)
					r->members[r->nmembers - 1].begin =
					    (uint16_t)(20000 + night);
			}
		}
	}
	ck_assert_int_eq(roster_seal_members(r, &rj, "m", NULL), 0);
	ck_assert_uint_eq(rj.count, 0);
}

/* Change sets x and y alike in every change, count and the digest. */
static void
expect_same_changes(const struct changeset *x, const struct changeset *y)
{
	size_t k;
	int t;

	for (t = 0; t < NTYPES; t++) {
		ck_assert_uint_eq(x->n[t], y->n[t]);
		for (k = 0; k < x->n[t]; k++) {
			ck_assert_uint_eq(x->c[t][k].old, y->c[t][k].old);
			ck_assert_uint_eq(x->c[t][k].new, y->c[t][k].new);
			ck_assert_uint_eq(x->c[t][k].op, y->c[t][k].op);
			ck_assert_uint_eq(x->c[t][k].flip, y->c[t][k].flip);
		}
		ck_assert_mem_eq(x->count[t], y->count[t], sizeof(x->count[t]));
		ck_assert_mem_eq(x->flips[t], y->flips[t], sizeof(x->flips[t]));
		ck_assert_uint_eq(x->base[t], y->base[t]);
	}
	ck_assert_uint_eq(x->deactivated, y->deactivated);
	ck_assert_uint_eq(x->reactivated, y->reactivated);
	ck_assert_mem_eq(x->digest, y->digest, sizeof(x->digest));
}

/* The diff of a and b with the membership merge in one part into one,
 * and in two (SISFEED_DIFF_SPLIT at 1) alike. */
static void
expect_split_same(const struct roster *a, const struct roster *b,
    struct changeset *one)
{
	struct changeset two;

	ck_assert_int_eq(setenv("SISFEED_DIFF_SPLIT", "999999999999", 1), 0);
	ck_assert_int_eq(diff_compute(a, b, one), 0);
	ck_assert_int_eq(setenv("SISFEED_DIFF_SPLIT", "1", 1), 0);
	ck_assert_int_eq(diff_compute(a, b, &two), 0);
	ck_assert_int_eq(unsetenv("SISFEED_DIFF_SPLIT"), 0);
	expect_same_changes(one, &two);
	changeset_free(&two);
}

/* The hex of a change set's digest, in a static buffer. */
static const char *
digest_hex(const struct changeset *cs)
{
	static char hex[65];

	sha256_hex(cs->digest, sizeof(cs->digest), hex);
	return hex;
}

/* The membership merge in two parts on two threads gives the change
 * set of one part, digest and all, with the parts cut anywhere. */
START_TEST(diff_split_same)
{
	struct roster a, b;
	struct changeset cs;
	size_t ng;
	int op;

	for (ng = 5; ng <= 14; ng++) {
		night_roster(&a, 0, 240, ng, SPREAD_EVEN);
		night_roster(&b, 1, 240, ng, SPREAD_EVEN);
		expect_split_same(&a, &b, &cs);
		for (op = 0; op < NOPS; op++) {
			ck_assert_uint_gt(cs.count[TYPE_PERSON][op], 0);
			ck_assert_uint_gt(cs.count[TYPE_MEMBER][op], 0);
		}
		ck_assert_uint_gt(cs.count[TYPE_GROUP][OP_INSERT], 0);
		ck_assert_uint_eq(cs.count[TYPE_GROUP][OP_DELETE], 3);
		ck_assert_uint_gt(cs.flips[TYPE_MEMBER][FLIP_DEACTIVATE], 0);
		ck_assert_uint_gt(cs.flips[TYPE_MEMBER][FLIP_REACTIVATE], 0);
		ck_assert_uint_gt(cs.deactivated + cs.reactivated, 0);
		if (ng == 10)	/* as the merge on one thread always hashed */
			ck_assert_str_eq(digest_hex(&cs),
			    "d8cba3d0ab1a499bfa86847876848a40"
			    "28f67e3ee22c6c278c167b21691c66fb");
		changeset_free(&cs);
		roster_free(&a);
		roster_free(&b);
	}
}
END_TEST

/* The cut in the first group, the last, none (all in one group), and
 * either roster without memberships. */
START_TEST(diff_split_edges)
{
	static const enum spread night0[] = { SPREAD_FIRST, SPREAD_LAST,
	    SPREAD_ONE, SPREAD_NONE, SPREAD_EVEN, SPREAD_NONE };
	static const enum spread night1[] = { SPREAD_FIRST, SPREAD_LAST,
	    SPREAD_ONE, SPREAD_EVEN, SPREAD_NONE, SPREAD_NONE };
	struct roster a, b;
	struct changeset cs;
	size_t k, ins, del;

	for (k = 0; k < sizeof(night0) / sizeof(night0[0]); k++) {
		night_roster(&a, 0, 240, 8, night0[k]);
		night_roster(&b, 1, 240, 8, night1[k]);
		expect_split_same(&a, &b, &cs);
		ins = cs.count[TYPE_MEMBER][OP_INSERT];
		del = cs.count[TYPE_MEMBER][OP_DELETE];
		if (a.nmembers == 0)
			ck_assert_uint_eq(ins, b.nmembers);
		if (b.nmembers == 0)
			ck_assert_uint_eq(del, a.nmembers);
		if (a.nmembers > 0 && b.nmembers > 0)
			ck_assert_uint_gt(ins * del, 0);
		changeset_free(&cs);
		roster_free(&a);
		roster_free(&b);
	}
}
END_TEST

/*
 * Night `night` of a roster whose membership changes carry more digest
 * bytes than the diff gathers at once (256 KiB) or ahead on its second
 * thread (8 MiB): 200 persons and 140 groups with long keys, tonight
 * nearly every pair in two roles, last night a few, some flipped.
 */
static void
long_roster(struct roster *r, int night)
{
	struct rejects rj = { 0 };
	char id[320];
	size_t i, g;
	int role;

	roster_init(r);
	for (i = 0; i < 200; i++) {
		snprintf(id, sizeof(id), "%0250zu", i);
		add_person(r, id, "G", 1);
	}
	for (g = 0; g < 140; g++) {
		snprintf(id, sizeof(id), "g%0200zu", g);
		add_group(r, id, "");
	}
	ck_assert_int_eq(roster_seal_entities(r, &rj, "p", "g"), 0);
	for (g = 0; g < 140; g++)
		for (i = 0; i < 200; i++)
			for (role = 1; role <= 2; role++) {
				unsigned x = mix3((unsigned)g, (unsigned)i,
				    (unsigned)role);

				if (night == 1 ? x % 8 == 0 : x % 8 != 1)
					continue;
				tu_add_member_at(r, g, i, role, night == 1 ?
				    x % 5 != 0 : x % 3 != 0);
			}
	ck_assert_int_eq(roster_seal_members(r, &rj, "m", NULL), 0);
}

/* Changes whose digest bytes are gathered and hashed in many pieces:
 * the digest as the one pass always hashed it, split or not. */
START_TEST(diff_split_long)
{
	struct roster a, b;
	struct changeset cs;

	long_roster(&a, 0);
	long_roster(&b, 1);
	expect_split_same(&a, &b, &cs);
	/* about 457 bytes a change: over 8 MiB in each part */
	ck_assert_uint_gt(cs.n[TYPE_MEMBER], 40000);
	ck_assert_uint_eq(cs.count[TYPE_MEMBER][OP_INSERT],
	    b.nmembers - a.nmembers);
	ck_assert_uint_gt(cs.flips[TYPE_MEMBER][FLIP_DEACTIVATE], 0);
	ck_assert_uint_gt(cs.flips[TYPE_MEMBER][FLIP_REACTIVATE], 0);
	ck_assert_str_eq(digest_hex(&cs),
	    "024b8336f7149e63143270e28730e3ba7bae2b830bc9129ca76327f620e5d452");
	changeset_free(&cs);
	roster_free(&a);
	roster_free(&b);
}
END_TEST

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The radix key sort agrees with strcmp order on awkward keys: a
 * shared prefix, prefixes of each other, bytes above 0x7f, ties
 * beyond 8 bytes. */
START_TEST(key_sort_random)
{
	static const char *const stems[] = { "student-", "student-0000",
	    "S", "", "\xc3\xa5", "student-00001111222" };
	unsigned seed = 7;
	char *keys[600], buf[64];
	struct roster r;
	struct rejects rj = { 0 };
	size_t i, n = 0;
	int round;

	for (round = 0; round < 6; round++) {
		roster_init(&r);
		n = 0;
		for (i = 0; i < 600; i++) {
			snprintf(buf, sizeof(buf), "%s%u",
			    stems[(round + (int)(i % 2)) % 6],
			    (unsigned)rand_r(&seed) % 100000);
			if (round == 5)	/* all alike past 8 bytes */
				snprintf(buf, sizeof(buf),
				    "student-00001111222%03zu", i % 997);
			add_person(&r, buf, "G", 1);
		}
		ck_assert_int_eq(roster_seal_entities(&r, &rj, "p", "g"), 0);
		for (i = 0; i + 1 < r.npersons; i++)
			ck_assert_msg(strcmp(r.persons[i].id,
			    r.persons[i + 1].id) < 0, "%s !< %s",
			    r.persons[i].id, r.persons[i + 1].id);
		for (i = 0; i < r.npersons; i++)
			keys[n++] = (char *)r.persons[i].id;
		qsort(keys, n, sizeof(keys[0]), str_cmp);
		for (i = 0; i < n; i++)
			ck_assert_str_eq(keys[i], r.persons[i].id);
		roster_free(&r);
	}
}
END_TEST

/* The size check: strictly over the share trips, a file under 16 KiB
 * is taken of 16 KiB, an unknown file is not judged, off never trips;
 * a tripped file is in the approval scope. */
START_TEST(shrink_boundary)
{
	struct export_size was[3] = { { "p.csv", 100000 }, { "g.csv", 4000 },
		{ "gone.csv", 5 } };
	struct export_size now[3] = { { "p.csv", 90000 }, { "g.csv", 3000 },
		{ "new.csv", 1 } };
	struct config cfg;
	struct verdict v;
	char scope[256];

	config_defaults(&cfg);
	cfg.safety.max_shrink = 10;
	memset(&v, 0, sizeof(v));
	safety_judge_sizes(&cfg, was, 3, now, 3, &v);
	ck_assert_uint_eq(v.nshrink, 2);
	ck_assert_int_eq(v.blocked, 0);		/* exactly 10% */
	ck_assert_int_eq(v.shrink[1].tripped, 0);	/* 1000 of 16 KiB */
	now[0].bytes = 89999;
	now[1].bytes = 0;			/* 4000 of 16 KiB: 24% */
	memset(&v, 0, sizeof(v));
	safety_judge_sizes(&cfg, was, 3, now, 3, &v);
	ck_assert_int_eq(v.blocked, 1);
	ck_assert_str_eq(v.reason, "p.csv shrank from 100000 to 89999 bytes "
	    "(10.0% > safety.max_shrink 10%); g.csv shrank from 4000 to 0 "
	    "bytes (24.4% of 16 KiB > safety.max_shrink 10%)");
	ck_assert_int_eq(verdict_scope(&v, scope, sizeof(scope)), 0);
	ck_assert_str_eq(scope, "shrink:p.csv shrink:g.csv");
	cfg.safety.max_shrink = -1;
	memset(&v, 0, sizeof(v));
	safety_judge_sizes(&cfg, was, 3, now, 3, &v);
	ck_assert_int_eq(v.blocked, 0);
	ck_assert_uint_eq(v.nshrink, 2);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("safety");
	TCase *tc = tcase_create("core");

	/* diff_random builds 400 rosters: seconds under the sanitizers */
	tcase_set_timeout(tc, 60);

	tcase_add_test(tc, diff_merge_join);
	tcase_add_test(tc, diff_same_is_empty_and_digest_stable);
	tcase_add_test(tc, diff_random);
	tcase_add_test(tc, diff_split_same);
	tcase_add_test(tc, diff_split_edges);
	tcase_add_test(tc, diff_split_long);
	tcase_add_test(tc, key_sort_random);
	tcase_add_test(tc, percent_boundary);
	tcase_add_test(tc, cap_boundary);
	tcase_add_test(tc, min_base);
	tcase_add_test(tc, shrink_boundary);
	tcase_add_test(tc, each_type_and_op);
	tcase_add_test(tc, first_run);
	tcase_add_test(tc, approval_id);
	tcase_add_test(tc, roster_duplicates_rejected);
	tcase_add_test(tc, parsers);
	tcase_add_test(tc, member_timeframes);
	tcase_add_test(tc, roster_parent_cycles_rejected);
	tcase_add_test(tc, roster_strings_as_xml_carries_them);
	tcase_add_test(tc, sha256_vectors);
	suite_add_tcase(s, tc);
	return tu_run_suite(s) != 0;
}
