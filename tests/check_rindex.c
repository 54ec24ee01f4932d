/*
 * check_rindex.c -- the snapshot's companion index: it must load back
 * exactly the roster that parsing the snapshot gives, and refuse
 * itself (return 1) when stale, truncated or damaged.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sisfeed.h"
#include "tests/testutil.h"

static void
person(struct roster *r, const char *id, const char *given,
    const char *family, const char *role, int active)
{
	tu_add_person(r, (struct person){ .id = id, .userid = id,
	    .given = given, .family = family, .email = "x@example.org",
	    .role = role, .active = (uint8_t)active });
}

static void
group(struct roster *r, const char *id, const char *parent,
    const char *term)
{
	tu_add_group(r, (struct group){ .id = id,
	    .type = parent[0] ? "class" : "school", .shortname = id,
	    .longname = "Science & Technology <grade 9>\tlab\nB",
	    .parent = parent, .term = term });
}

static void
member(struct roster *r, const char *gid, const char *pid, int role,
    int active)
{
	tu_add_member(r, gid, pid, role, active);
}

static void
build(struct roster *r)
{
	struct rejects rj = { 0 };

	roster_init(r);
	r->datetime = 1700000000;
	person(r, "S2", "Zo\xc3\xab", "O'Connor \"Jr\"", "Student", 1);
	person(r, "S1", "  Bj\xc3\xb8rn  ", "\xc3\x85sen\tx", "", 0);
	person(r, "T1", "Kenji", "Nakamura & Co <x>", "Faculty", 1);
	group(r, "DIST", "", "");
	group(r, "C1", "DIST", "2026/27");
	ck_assert_int_eq(roster_seal_entities(r, &rj, "p", "g"), 0);
	member(r, "C1", "S1", 1, 1);
	member(r, "C1", "S2", 1, 0);
	member(r, "C1", "T1", 2, 1);
	member(r, "C1", "T1", 8, 1);
	member(r, "DIST", "T1", 7, 1);
	ck_assert_int_eq(roster_seal_members(r, &rj, "m", NULL), 0);
	ck_assert_uint_eq(rj.count, 0);
	/* role timeframes (issue 10): both dates, an open begin */
	r->members[0].begin = (uint16_t)day_parse("2024-08-15", 10);
	r->members[0].end = (uint16_t)day_parse("2025-06-10", 10);
	r->members[2].end = (uint16_t)day_parse("2025-06-10", 10);
}

/* Every field the diff looks at is equal, and so is the datetime. */
static void
assert_same(const struct roster *a, const struct roster *b)
{
	size_t i;

	ck_assert_uint_eq(a->npersons, b->npersons);
	ck_assert_uint_eq(a->ngroups, b->ngroups);
	ck_assert_uint_eq(a->nmembers, b->nmembers);
	for (i = 0; i < a->npersons; i++) {
		ck_assert_str_eq(a->persons[i].id, b->persons[i].id);
		ck_assert_int_eq(person_differs(&a->persons[i],
		    &b->persons[i]), 0);
	}
	for (i = 0; i < a->ngroups; i++) {
		ck_assert_str_eq(a->groups[i].id, b->groups[i].id);
		ck_assert_int_eq(group_differs(&a->groups[i], &b->groups[i]),
		    0);
	}
	ck_assert_mem_eq(a->members, b->members,
	    a->nmembers * sizeof(*a->members));
}

static const struct ims_options opts = {
	.source = "sis.example.org", .datasource = "Test",
};

START_TEST(index_equals_parsed_snapshot)
{
	char dir[256], xml[512], idx[512];
	struct roster a, parsed, loaded;
	unsigned char digest[32];

	tu_mkdtemp(dir, sizeof(dir));
	snprintf(xml, sizeof(xml), "%s/snapshot", dir);
	snprintf(idx, sizeof(idx), "%s/snapshot.idx", dir);
	build(&a);
	ck_assert_int_eq(ims_write_full(xml, &a, &opts), 0);
	roster_init(&parsed);
	ck_assert_int_eq(ims_read(xml, &parsed, NULL), 0);
	assert_same(&a, &parsed);

	memset(digest, 0x5a, sizeof(digest));
	ck_assert_int_eq(rindex_write(idx, &a, digest), 0);
	roster_init(&loaded);
	ck_assert_int_eq(rindex_read(idx, &loaded, digest), 0);
	assert_same(&parsed, &loaded);
	ck_assert_int_eq((long)loaded.datetime, 1700000000);
	/* stored trimmed, as consumers read it */
	ck_assert_str_eq(loaded.persons[0].given, "Bj\xc3\xb8rn");
	ck_assert_int_eq(loaded.persons[0].active, 0);
	roster_free(&loaded);

	/* a national identity number (itslearning) is kept too */
	a.persons[1].nin = "01019912345";
	ck_assert_int_eq(rindex_write(idx, &a, digest), 0);
	roster_init(&loaded);
	ck_assert_int_eq(rindex_read(idx, &loaded, digest), 0);
	assert_same(&a, &loaded);
	ck_assert_str_eq(loaded.persons[1].nin, "01019912345");
	ck_assert_str_eq(loaded.persons[0].nin, "");
	roster_free(&loaded);
	roster_free(&parsed);
	roster_free(&a);
	tu_rmtree(dir);
}
END_TEST

/* Replace the file at path with buf[0..len). */
static void
put_file(const char *path, const char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

START_TEST(index_refuses_itself)
{
	char dir[256], idx[512];
	struct roster a, b;
	unsigned char digest[32], other[32];
	uint64_t strbytes;
	size_t len;
	char *buf;

	tu_mkdtemp(dir, sizeof(dir));
	snprintf(idx, sizeof(idx), "%s/snapshot.idx", dir);
	build(&a);
	memset(digest, 1, sizeof(digest));
	memset(other, 2, sizeof(other));
	roster_init(&b);
	ck_assert_int_eq(rindex_read(idx, &b, digest), 1);	/* missing */
	ck_assert_int_eq(rindex_write(idx, &a, digest), 0);
	ck_assert_int_eq(rindex_read(idx, &b, other), 1);	/* stale */
	ck_assert_uint_eq(b.npersons, 0);

	/* one flipped byte in the payload: the CRC catches it */
	buf = tu_read(idx, &len);
	ck_assert_ptr_nonnull(buf);
	buf[len - 3] ^= 0x40;
	put_file(idx, buf, len);
	ck_assert_int_eq(rindex_read(idx, &b, digest), 1);
	ck_assert_uint_eq(b.npersons, 0);

	/* an index of format 5 (string blob not padded, records maybe
	 * unaligned) is not misread: the snapshot is parsed instead */
	ck_assert_int_eq(rindex_write(idx, &a, digest), 0);
	free(buf);
	buf = tu_read(idx, &len);
	ck_assert_ptr_nonnull(buf);
	ck_assert(memcmp(buf, "SISFIDX6", 8) == 0);
	memcpy(&strbytes, buf + 72, sizeof(strbytes));	/* the layout */
	ck_assert_uint_eq(strbytes % 8, 0);		/* padded */
	buf[7] = '5';
	put_file(idx, buf, len);
	ck_assert_int_eq(rindex_read(idx, &b, digest), 1);
	ck_assert_uint_eq(b.nmembers, 0);

	/* nor one whose blob size leaves the records unaligned */
	buf[7] = '6';
	strbytes -= 4;
	memcpy(buf + 72, &strbytes, sizeof(strbytes));
	put_file(idx, buf, len);
	ck_assert_int_eq(rindex_read(idx, &b, digest), 1);
	ck_assert_uint_eq(b.nmembers, 0);

	/* truncated */
	ck_assert_int_eq(truncate(idx, (off_t)(len - 1)), 0);
	ck_assert_int_eq(rindex_read(idx, &b, digest), 1);
	free(buf);
	roster_free(&b);
	roster_free(&a);
	tu_rmtree(dir);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("rindex");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, index_equals_parsed_snapshot);
	tcase_add_test(tc, index_refuses_itself);
	suite_add_tcase(s, tc);
	return tu_run_suite(s) != 0;
}
