/*
 * check_receiver.c -- the proof of the itslearning and generic
 * profiles: 32 nights of random churn through the real `sisfeed run`,
 * each night's file imported by a receiver model (tests/receiver.c)
 * zero, one or two times (a full-file receiver may miss files; a delta
 * receiver must import every one, in order, and may read one twice),
 * with runs killed between delivery and commit, followed by the same
 * night again or by the next one.  After every import the receiver
 * holds exactly the export its file was made from.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/receiver.h"
#include "tests/testutil.h"

#define NIGHTS		32
#define PERSONS		40
#define MAXFILES	8

struct pcase {
	const char	*name;
	const char	*profile;
	const char	*mode;
	enum rx_kind	 kind;
	int		 nin;		/* map the NIN column */
	int		 may_skip;	/* the receiver may miss a file */
	unsigned	 seed;
};

static const struct pcase cases[] = {
	{ "itslearning", "itslearning", "full", RX_ITSLEARNING, 1, 1, 8 },
	{ "generic full", "generic", "full", RX_GENERIC, 0, 1, 9 },
	{ "generic delta", "generic", "delta", RX_GENERIC, 0, 0, 10 },
};

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
at(const char *sub)
{
	static char bufs[4][PATH_MAX + 64];
	static int next;
	char *p = bufs[next++ % 4];

	snprintf(p, PATH_MAX + 64, "%s/%s", dir, sub);
	return p;
}

static void
write_config(const struct pcase *c)
{
	char cfg[4096];

	snprintf(cfg, sizeof(cfg),
	    "site: Receiver model\n"
	    "state_dir: state\n"
	    "history: 2\n"
	    "source:\n"
	    "  format: csv\n"
	    "  persons: export/persons.csv\n"
	    "  groups: export/groups.csv\n"
	    "  memberships: export/memberships.csv\n"
	    "  columns:\n%s"
	    "output:\n"
	    "  source: sis.example.no\n"
	    "  mode: %s\n"
	    "  profile: %s\n"
	    "safety:\n"
	    "  first_run: allow\n"
	    "delivery:\n"
	    "  dir: outbox\n", rx_world_columns(c->nin), c->mode, c->profile);
	tu_write(dir, "sisfeed.yaml", cfg);
}

/* sisfeed -q -c CONFIG run --override; the exit status. */
static int
run(char **out)
{
	char *argv[] = { (char *)tu_sisfeed(), (char *)"-q", (char *)"-c",
	    (char *)at("sisfeed.yaml"), (char *)"run", (char *)"--override",
	    NULL };

	return tu_run(argv, out, 60);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files waiting in the outbox, in name order; returns how many. */
static size_t
waiting(char names[MAXFILES][256])
{
	char *v[MAXFILES];
	DIR *d;
	struct dirent *e;
	size_t n = 0, i;

	ck_assert_ptr_nonnull(d = opendir(at("outbox")));
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		ck_assert_uint_lt(n, MAXFILES);
		ck_assert_ptr_nonnull(v[n] = strdup(e->d_name));
		n++;
	}
	closedir(d);
	qsort(v, n, sizeof(*v), name_cmp);
	for (i = 0; i < n; i++) {
		snprintf(names[i], 256, "%s", v[i]);
		free(v[i]);
	}
	return n;
}

/*
 * The receiver takes what waits in the outbox (a drop folder: each
 * file is removed once taken), importing each file 0 (a miss, when
 * allowed), 1 or 2 times; every file was made from tonight's export.
 * After every import the model must equal that export.  Returns the
 * number of imports.
 */
static int
receive(struct rx_world *w, const struct pcase *c, struct rx_state *model,
    const struct rx_state *expect, int night)
{
	char names[MAXFILES][256], err[512], why[512];
	char path[PATH_MAX + 512];
	size_t n, i;
	unsigned times, k;
	int imports = 0;

	n = waiting(names);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/outbox/%s", dir, names[i]);
		times = c->may_skip ? rx_world_rand(w, 3) :
		    1 + rx_world_rand(w, 2);
		for (k = 0; k < times; k++) {
			ck_assert_msg(rx_import(model, c->kind, path, err,
			    sizeof(err)) == 0, "%s night %d: %s", c->name,
			    night, err);
			imports++;
			if (!rx_equal(model, expect, why, sizeof(why))) {
				char *t = rx_table(model);

				fprintf(stderr, "the receiver holds:\n%s", t);
				free(t);
				ck_abort_msg("%s night %d, %s import %u: %s",
				    c->name, night, names[i], k + 1, why);
			}
		}
		ck_assert_int_eq(unlink(path), 0);
	}
	return imports;
}

START_TEST(test_nights)
{
	const struct pcase *c = &cases[_i];
	struct rx_world *w = rx_world_new(c->seed, PERSONS);
	struct rx_state model, expect, held;
	char *out = NULL, why[512];
	int night, rc, crash = 0, imports = 0, crashes = 0, skipped = 0;
	int files;
	int reruns = 0, rounds;

	write_config(c);
	ck_assert_int_eq(mkdir(at("export"), 0755), 0);
	ck_assert_int_eq(mkdir(at("outbox"), 0755), 0);
	rx_init(&model);
	rx_init(&held);		/* the export the model last converged to */
	for (night = 1; night <= NIGHTS; night++) {
		/* after a crash, take back some of that night's changes:
		 * a delta from the stale snapshot would not */
		if (crash)
			rx_world_revert(w);
		if (night > 1)
			rx_world_churn(w);
		rx_world_write(w, at("export"));
		rx_world_expect(w, c->kind, c->nin, &expect);
		crash = night > 1 && rx_world_rand(w, 4) == 0;
		for (;;) {
			if (crash)
				ck_assert_int_eq(setenv("SISFEED_CRASH_AFTER",
				    "deliver", 1), 0);
			rc = run(&out);
			unsetenv("SISFEED_CRASH_AFTER");
			if (crash && rc == 0)
				crash = 0;	/* no change: no delivery */
			ck_assert_msg(rc == (crash ? 128 + 9 : 0), "%s night "
			    "%d: exit %d:\n%s", c->name, night, rc, out);
			free(out);
			out = NULL;
			files = receive(w, c, &model, &expect, night);
			imports += files;
			if (files > 0) {
				rx_free(&held);
				rx_world_expect(w, c->kind, c->nin, &held);
			} else if (c->may_skip)
				skipped++;
			if (!crash)
				break;
			crashes++;
			/* then the same night again, or the next one */
			if (rx_world_rand(w, 2))
				break;
			reruns++;
			crash = 0;
		}
		/* Whatever it missed, it holds an export it was sent. */
		ck_assert_msg(rx_equal(&model, &held, why, sizeof(why)),
		    "%s night %d: %s", c->name, night, why);
		rx_free(&expect);
	}
	/* The last night converges: one more run sends what it missed. */
	rx_world_expect(w, c->kind, c->nin, &expect);
	if (!rx_equal(&model, &expect, why, sizeof(why))) {
		ck_assert_int_eq(run(&out), 0);
		free(out);
		out = NULL;
		for (rounds = 0; receive(w, c, &model, &expect,
		    NIGHTS + 1) == 0; rounds++) {
			ck_assert_int_lt(rounds, 20);
			/* missed again: a no-change run delivers nothing,
			 * so touch the export and run again */
			rx_world_churn(w);
			rx_world_write(w, at("export"));
			rx_free(&expect);
			rx_world_expect(w, c->kind, c->nin, &expect);
			ck_assert_int_eq(run(&out), 0);
			free(out);
			out = NULL;
		}
	}
	ck_assert_msg(rx_equal(&model, &expect, why, sizeof(why)), "%s: %s",
	    c->name, why);
	ck_assert_int_gt(crashes, 0);
	ck_assert_int_gt(imports, NIGHTS / 2);
	if (c->may_skip)
		ck_assert_int_gt(skipped, 0);
	if (getenv("SISFEED_RX_TABLE") != NULL) {
		char *t = rx_table(&model);

		printf("%s: %d nights, %d imports, %d missed, %d crashes "
		    "(%d rerun the same night); last churn: %s\n%s\n",
		    c->name, NIGHTS, imports, skipped, crashes, reruns,
		    rx_world_churned(w), t);
		free(t);
	}
	rx_free(&expect);
	rx_free(&held);
	rx_free(&model);
	rx_world_free(w);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("receiver");
	TCase *tc = tcase_create("nights");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_nights, 0,
	    (int)(sizeof(cases) / sizeof(cases[0])));
	suite_add_tcase(s, tc);
	return tu_run_suite(s) == 0 ? 0 : 1;
}
