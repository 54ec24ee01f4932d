/*
 * check_lib.c -- the ground helpers of lib/: error messages that take
 * the last message as an argument, and file writes that replace only
 * regular files under temporary names no importer matches.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "sisfeed.h"
#include "tests/testutil.h"

static char dir[PATH_MAX];

static void
setup(void)
{
	tu_mkdtemp(dir, sizeof(dir));
}

static void
teardown(void)
{
	tu_rmtree(dir);
}

static const char *
in(const char *name)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *p = bufs[next++ % 4];

	ck_assert_int_lt(snprintf(p, PATH_MAX, "%s/%s", dir, name), PATH_MAX);
	return p;
}

/* The last message as an argument of the next one is formatted aside
 * first: it came out garbled ("snapshot ...: snapshot ...: tra content
 * at the end"). */
START_TEST(t_error_self)
{
	error_set("%s", "Extra content at the end of the document");
	error_set("snapshot %s: %s", "/var/lib/sisfeed/snapshot",
	    error_last());
	ck_assert_str_eq(error_last(), "snapshot /var/lib/sisfeed/snapshot: "
	    "Extra content at the end of the document");
	errno = ENOSPC;
	error_sys("write %s", error_last());
	ck_assert_str_eq(error_last(), "write snapshot /var/lib/sisfeed/"
	    "snapshot: Extra content at the end of the document: No space "
	    "left on device");
}
END_TEST

/* error_prefix puts context in front; a long message is cut, never
 * overrun. */
START_TEST(t_error_prefix)
{
	char big[2000];

	error_set("p.csv:3: no line end");
	ck_assert_int_eq(error_prefix("read %s: ", "persons"), -1);
	ck_assert_str_eq(error_last(), "read persons: p.csv:3: no line end");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	error_set("%s", big);
	error_prefix("stage: ");
	ck_assert_uint_eq(strlen(error_last()), 1023);
	ck_assert_int_eq(strncmp(error_last(), "stage: xxx", 10), 0);
}
END_TEST

/* Only a regular file (or none) is replaced: a symbolic link, a FIFO
 * or a directory at the path is an error, and left as it was. */
START_TEST(t_replace_regular_only)
{
	struct stat st;

	ck_assert_int_eq(file_write_atomic(in("f"), "one\n", 4), 0);
	ck_assert_int_eq(file_write_atomic(in("f"), "two\n", 4), 0);
	ck_assert_int_eq(symlink(in("f"), in("link")), 0);
	ck_assert_int_eq(file_write_atomic(in("link"), "x", 1), -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "link is not a regular "
	    "file (a symbolic link): it is never replaced"));
	ck_assert_int_eq(lstat(in("link"), &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	ck_assert_int_eq(mkfifo(in("fifo"), 0600), 0);
	ck_assert_int_eq(file_copy_atomic(in("f"), in("fifo"), 0600, NULL),
	    -1);
	ck_assert_ptr_nonnull(strstr(error_last(), "a device, FIFO"));
	ck_assert_int_eq(lstat(in("fifo"), &st), 0);
	ck_assert(S_ISFIFO(st.st_mode));
	/* No temporary file is left by the refusals. */
	ck_assert_int_eq(file_clean_temps(dir), 0);
}
END_TEST

/* Temporary names start with a dot and end in .part; file_clean_temps
 * removes exactly those. */
START_TEST(t_clean_temps)
{
	tu_write(dir, ".sisfeed.sisfeed-20261201.xml.Ab12Cd.part", "half");
	tu_write(dir, ".sisfeed.x.part", "half");
	tu_write(dir, "sisfeed-20261201.xml", "whole");
	tu_write(dir, "other.part", "not ours");
	tu_write(dir, ".sisfeed.part", "too short to be ours");
	ck_assert_int_eq(mkdir(in(".sisfeed.d.part"), 0700), 0);
	ck_assert_int_eq(file_clean_temps(dir), 2);
	ck_assert(tu_exists(in("sisfeed-20261201.xml")));
	ck_assert(tu_exists(in("other.part")));
	ck_assert(tu_exists(in(".sisfeed.part")));
	ck_assert(tu_exists(in(".sisfeed.d.part")));
	ck_assert(!tu_exists(in(".sisfeed.x.part")));
	ck_assert_int_eq(file_clean_temps(in("missing")), -1);
}
END_TEST

/* crc_update equals zlib's crc32 for every length, start and
 * continuation: short tails, the folded lengths, splits anywhere. */
START_TEST(t_crc_matches_zlib)
{
	enum { N = 70000 };
	unsigned char *b;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	size_t i, off, len, cut;
	uint32_t z, c;

	ck_assert_ptr_nonnull(b = malloc(N));
	for (i = 0; i < N; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (unsigned char)x;
	}
	ck_assert_uint_eq(crc_update(0, "123456789", 9), 0xcbf43926u);
	for (len = 0; len <= 600; len++)
		for (off = 0; off < 3; off++) {
			z = (uint32_t)crc32(0, b + off, (uInt)len);
			ck_assert_uint_eq(crc_update(0, b + off, len), z);
			cut = len / 3;
			c = crc_update(crc_update(0, b + off, cut), b + off + cut,
			    len - cut);
			ck_assert_uint_eq(c, z);
		}
	z = (uint32_t)crc32(0x12345678u, b + 1, N - 1);
	ck_assert_uint_eq(crc_update(0x12345678u, b + 1, N - 1), z);
	memset(b, 0, N);
	ck_assert_uint_eq(crc_update(0, b, N), (uint32_t)crc32(0, b, N));
	memset(b, 0xff, N);
	ck_assert_uint_eq(crc_update(0, b, N), (uint32_t)crc32(0, b, N));
	free(b);
}
END_TEST

static Suite *
lib_suite(void)
{
	Suite *s = suite_create("lib");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_error_self);
	tcase_add_test(tc, t_error_prefix);
	tcase_add_test(tc, t_replace_regular_only);
	tcase_add_test(tc, t_clean_temps);
	tcase_add_test(tc, t_crc_matches_zlib);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run_suite(lib_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
