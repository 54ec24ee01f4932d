/*
 * check_lib.c -- the ground helpers of lib/: error messages that take
 * the last message as an argument, file writes that replace only
 * regular files under temporary names no importer matches, CRC-32, and
 * the chunk compressor in both of its engines.
 */
#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
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

/* n bytes of xorshift64 from seed x (the same every run), malloc'd. */
static unsigned char *
random_bytes(size_t n, uint64_t x)
{
	unsigned char *b;
	size_t i;

	ck_assert_ptr_nonnull(b = malloc(n ? n : 1));
	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (unsigned char)x;
	}
	return b;
}

/* file_copy_atomic of src to dst gives src's bytes, with the mode and
 * size asked for. */
static void
expect_copy(const char *src, const char *dst)
{
	char *a, *b;
	size_t al, bl;
	off_t size = -1;
	struct stat st;

	ck_assert_msg(file_copy_atomic(src, dst, 0640, &size) == 0, "%s",
	    error_last());
	a = tu_read(src, &al);
	b = tu_read(dst, &bl);
	ck_assert_uint_eq(bl, al);
	ck_assert(memcmp(a, b, al) == 0);
	ck_assert_int_eq(size, (off_t)al);
	ck_assert_int_eq(stat(dst, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	free(a);
	free(b);
}

/* What a thread_split test's halves record. */
struct split_seen {
	unsigned char	*hit;		/* times each element was run */
	pthread_t	 who[2];	/* the thread of each call */
	size_t		 lo[2], calls;
	pthread_mutex_t	 lock;
};

static void
split_mark(void *arg, size_t lo, size_t hi)
{
	struct split_seen *s = arg;
	size_t i;

	for (i = lo; i < hi; i++)
		s->hit[i]++;
	ck_assert_int_eq(pthread_mutex_lock(&s->lock), 0);
	if (s->calls < 2) {
		s->who[s->calls] = pthread_self();
		s->lo[s->calls] = lo;
	}
	s->calls++;
	ck_assert_int_eq(pthread_mutex_unlock(&s->lock), 0);
}

/* Every element is run once, however the loop is cut: in one call
 * below min (or for 0 and 1 elements), else in two halves on two
 * threads, the first half on the caller's. */
START_TEST(t_thread_split)
{
	static const size_t ns[] = { 0, 1, 2, 3, 99, 100, 1001 };
	struct split_seen s;
	size_t k, i, c, n;
	int two = sysconf(_SC_NPROCESSORS_ONLN) >= 2;

	for (k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
		n = ns[k];
		memset(&s, 0, sizeof(s));
		ck_assert_int_eq(pthread_mutex_init(&s.lock, NULL), 0);
		ck_assert_ptr_nonnull(s.hit = calloc(n + 1, 1));
		thread_split(n, 100, split_mark, &s);
		for (i = 0; i < n; i++)
			ck_assert_uint_eq(s.hit[i], 1);
		ck_assert_uint_eq(s.hit[n], 0);
		if (n < 100 || !two) {
			ck_assert_uint_eq(s.calls, 1);
			ck_assert(pthread_equal(s.who[0], pthread_self()));
		} else {
			ck_assert_uint_eq(s.calls, 2);
			ck_assert_uint_eq(s.lo[0] + s.lo[1], n / 2);
			for (c = 0; c < 2; c++)
				ck_assert_int_eq(pthread_equal(s.who[c],
				    pthread_self()) != 0, s.lo[c] == 0);
		}
		free(s.hit);
		ck_assert_int_eq(pthread_mutex_destroy(&s.lock), 0);
	}
}
END_TEST

/* A copy is the source's bytes whichever way it goes: in the kernel
 * (the same file system), by read and write (from another one, where
 * the kernel refuses, or a file that states no size, as /proc's do),
 * and empty. */
START_TEST(t_copy_exact)
{
	char shm[] = "/dev/shm/sisfeed-copy.XXXXXX";
	unsigned char *big;
	size_t n = 3 * 1024 * 1024 + 7;
	char *got;
	size_t gl;
	int fd;

	big = random_bytes(n, 0x2545f4914f6cdd1dULL);
	ck_assert_int_eq(file_write_atomic(in("big"), big, n), 0);
	expect_copy(in("big"), in("big.copy"));
	ck_assert_int_eq(file_write_atomic(in("empty"), "", 0), 0);
	expect_copy(in("empty"), in("empty.copy"));
	/* another file system, when the machine has one at hand */
	if ((fd = mkstemp(shm)) != -1) {
		ck_assert_int_eq(fd_write(fd, big, n), 0);
		ck_assert_int_eq(close(fd), 0);
		expect_copy(shm, in("shm.copy"));
		ck_assert_int_eq(unlink(shm), 0);
	}
	/* a size of 0 that holds bytes */
	ck_assert_int_eq(file_copy_atomic("/proc/self/status", in("status"),
	    0600, NULL), 0);
	got = tu_read(in("status"), &gl);
	ck_assert_uint_gt(gl, 5);
	ck_assert_int_eq(strncmp(got, "Name:", 5), 0);
	free(got);
	free(big);
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

/* lib/crc.c without HAVE_ISAL (the PCLMULQDQ fold, then zlib), built
 * beside the one sisfeed uses under this name (see the Makefile). */
uint32_t foldcrc_update(uint32_t, const void *, size_t);

/* crc equals zlib's crc32 for every length, start and continuation:
 * short tails, the folded lengths, splits anywhere. */
static void
crc_check(uint32_t (*crc)(uint32_t, const void *, size_t))
{
	enum { N = 70000 };
	unsigned char *b;
	size_t off, len, cut;
	uint32_t z, c;

	b = random_bytes(N, 0x9e3779b97f4a7c15ULL);
	ck_assert_uint_eq(crc(0, "123456789", 9), 0xcbf43926u);
	for (len = 0; len <= 600; len++)
		for (off = 0; off < 3; off++) {
			z = (uint32_t)crc32(0, b + off, (uInt)len);
			ck_assert_uint_eq(crc(0, b + off, len), z);
			cut = len / 3;
			c = crc(crc(0, b + off, cut), b + off + cut, len - cut);
			ck_assert_uint_eq(c, z);
		}
	z = (uint32_t)crc32(0x12345678u, b + 1, N - 1);
	ck_assert_uint_eq(crc(0x12345678u, b + 1, N - 1), z);
	memset(b, 0, N);
	ck_assert_uint_eq(crc(0, b, N), (uint32_t)crc32(0, b, N));
	memset(b, 0xff, N);
	ck_assert_uint_eq(crc(0, b, N), (uint32_t)crc32(0, b, N));
	free(b);
}

/* crc_update (ISA-L's when sisfeed is built with it) and the fold both
 * equal zlib's crc32. */
START_TEST(t_crc_matches_zlib)
{
	crc_check(crc_update);
	crc_check(foldcrc_update);
}
END_TEST

/* The zlib engine of lib/zchunk.c, built beside the one sisfeed uses
 * (the Makefile compiles it with these names and without HAVE_ISAL). */
struct zchunk *zlibchunk_new(void);
void zlibchunk_free(struct zchunk *);
int zlibchunk_compress(struct zchunk *, const void *, size_t, int,
    unsigned char **, size_t *, size_t *);
const char *zlibchunk_engine(void);

struct zengine {
	struct zchunk	*(*make)(void);
	void		 (*drop)(struct zchunk *);
	int		 (*run)(struct zchunk *, const void *, size_t, int,
			    unsigned char **, size_t *, size_t *);
};

/*
 * Compress in[0..n) cut every `cut` bytes with engine e (one chunk, or
 * several with the last flagged), and inflate the chunks joined with
 * zlib: it must give in back and end the stream exactly at the end.
 */
static void
zchunk_roundtrip(const struct zengine *e, const unsigned char *in,
    size_t n, size_t cut)
{
	struct zchunk *zc;
	unsigned char *all = NULL, *out = NULL, *back;
	size_t alllen = 0, cap = 0, olen, off, len;
	z_stream z;

	ck_assert_ptr_nonnull(zc = e->make());
	for (off = 0; off < n || (n == 0 && off == 0); off += len) {
		len = n - off < cut ? n - off : cut;
		ck_assert_int_eq(e->run(zc, in + off, len, off + len == n,
		    &out, &cap, &olen), 0);
		ck_assert_uint_ge(cap, olen);
		ck_assert_ptr_nonnull(all = realloc(all, alllen + olen + 1));
		memcpy(all + alllen, out, olen);
		alllen += olen;
		if (n == 0)
			break;
	}
	e->drop(zc);
	free(out);
	ck_assert_ptr_nonnull(back = malloc(n + 1));
	memset(&z, 0, sizeof(z));
	ck_assert_int_eq(inflateInit2(&z, -15), Z_OK);
	z.next_in = all;
	z.avail_in = (uInt)alllen;
	z.next_out = back;
	z.avail_out = (uInt)n + 1;
	ck_assert_int_eq(inflate(&z, Z_FINISH), Z_STREAM_END);
	ck_assert_uint_eq(z.total_out, n);
	ck_assert_uint_eq(z.avail_in, 0);
	ck_assert(memcmp(back, in, n) == 0);
	inflateEnd(&z);
	free(back);
	free(all);
}

/* Both engines write chunks that zlib inflates as one stream: XML-like
 * text, random bytes (stored blocks, output larger than the input),
 * one byte, nothing; chunk sizes that do and do not divide the input. */
START_TEST(t_zchunk_engines_inflate)
{
	static const struct zengine engines[] = {
		{ zchunk_new, zchunk_free, zchunk_compress },
		{ zlibchunk_new, zlibchunk_free, zlibchunk_compress },
	};
	enum { N = 3 * 1024 * 1024 + 17 };
	const struct zengine *e = &engines[_i];
	unsigned char *text, *noise;
	uint64_t x = 0x2545f4914f6cdd1dULL;
	size_t i, k;

	ck_assert_str_eq(zlibchunk_engine(), "zlib");
	ck_assert_ptr_nonnull(text = malloc(N));
	ck_assert_ptr_nonnull(noise = malloc(N));
	for (i = 0, k = 0; i < N; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		noise[i] = (unsigned char)x;
		if (k == 0)
			k = (size_t)snprintf((char *)text + i, N - i,
			    "<member><id>S%07u</id><role>%u</role></member>\n",
			    (unsigned)(x % 10000000), (unsigned)(x % 8)) ;
		if (k > 0 && i + k >= N)
			k = 0, text[i] = '\n';
		if (k > 0)
			k--;
	}
	zchunk_roundtrip(e, text, N, 1024 * 1024);
	zchunk_roundtrip(e, text, N, N);
	zchunk_roundtrip(e, noise, N, 1024 * 1024);
	zchunk_roundtrip(e, noise, 100000, 65536);
	zchunk_roundtrip(e, text, 1, 1024);
	zchunk_roundtrip(e, text, 0, 1024);
	free(text);
	free(noise);
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
	tcase_add_test(tc, t_copy_exact);
	tcase_add_test(tc, t_thread_split);
	tcase_add_loop_test(tc, t_zchunk_engines_inflate, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run_suite(lib_suite()) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
