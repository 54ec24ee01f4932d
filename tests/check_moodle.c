/*
 * check_moodle.c -- the moodle profile against the model of Moodle 4.5's
 * enrol_imsenterprise in tests/receiver.c (rx_moodle_import, FORMAT.md
 * section 9).
 *
 * The randomized test runs 32 nights of churn through the real
 * `sisfeed run`, kills some runs between delivery and commit, lets the
 * model import a random subset of the files (some twice, never more
 * than output.window in a row missed), and after every import compares
 * the model with the export.  SISFEED_MODEL_TABLE=1 prints the state
 * table (per night: the run, the file, the import, the model's users,
 * courses and enrolments beside the export's, equal or not),
 * SISFEED_MODEL_SEED=N churns differently.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/receiver.h"
#include "tests/testutil.h"

#define TIMEOUT		60
#define WINDOW		3
#define NIGHTS		32

/* ------------------------------------------------------------------ */
/* The export and its churn.                                           */

struct xperson {
	char	 userid[32], given[32], family[32], email[64];
	int	 active, alive;
};

struct xgroup {
	char	 shortname[32], longname[48];
	int	 alive;
};

#define XP	80
#define XG	24
#define XR	3

struct export {
	struct xperson	 p[XP];
	int		 np;
	struct xgroup	 g[XG];
	int		 ng;
	/* member[g][p][role-1]: 0 none, 1 active, 2 inactive */
	unsigned char	 m[XG][XP][XR];
	int		 seq;
};

static unsigned long rng = 88172645463325252UL;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static const char *const givens[] = { "Ada", "Alan", "Grace", "Edsger",
	"Barbara", "Donald", "Frances", "Ken" };
static const char *const families[] = { "Lovelace", "Turing", "Hopper",
	"Dijkstra", "Liskov", "Knuth", "Allen", "Thompson" };

static void
new_person(struct export *x, int i)
{
	struct xperson *p = &x->p[i];

	snprintf(p->userid, sizeof(p->userid), "User.%d", ++x->seq);
	snprintf(p->given, sizeof(p->given), "%s", givens[rnd(8)]);
	snprintf(p->family, sizeof(p->family), "%s", families[rnd(8)]);
	snprintf(p->email, sizeof(p->email), "u%d@example.org", x->seq);
	p->active = 1;
	p->alive = 1;
}

static void
new_group(struct export *x, int i)
{
	snprintf(x->g[i].shortname, sizeof(x->g[i].shortname), "C-%d",
	    ++x->seq);
	if (rnd(2))
		snprintf(x->g[i].longname, sizeof(x->g[i].longname),
		    "Course %d", x->seq);
	else
		x->g[i].longname[0] = '\0';
	x->g[i].alive = 1;
}

static int
alive_person(struct export *x)
{
	int i, tries;

	for (tries = 0; tries < 100; tries++)
		if (x->p[i = (int)rnd((unsigned)x->np)].alive)
			return i;
	return -1;
}

static int
alive_group(struct export *x)
{
	int i, tries;

	for (tries = 0; tries < 100; tries++)
		if (x->g[i = (int)rnd((unsigned)x->ng)].alive)
			return i;
	return -1;
}

static void
export_init(struct export *x)
{
	int i, g, r;

	memset(x, 0, sizeof(*x));
	x->np = 30;
	x->ng = 6;
	for (i = 0; i < x->np; i++)
		new_person(x, i);
	for (g = 0; g < x->ng; g++) {
		new_group(x, g);
		for (i = 0; i < x->np; i++)
			if (rnd(3) == 0)
				x->m[g][i][rnd(2)] = 1;
	}
	for (r = 0; r < 4; r++)
		x->m[0][r][2] = 1;
}

/* One night of churn: a few of every kind of change. */
static void
export_churn(struct export *x)
{
	int k, a, b, g;
	char tmp[32];

	for (k = 0; k < 3; k++) {
		switch (rnd(14)) {
		case 0:		/* a new person */
			if (x->np < XP)
				new_person(x, x->np++);
			break;
		case 1:		/* a leaver */
			if ((a = alive_person(x)) >= 0)
				x->p[a].alive = 0;
			break;
		case 2:		/* a rename of login and name */
			if ((a = alive_person(x)) >= 0) {
				snprintf(x->p[a].userid,
				    sizeof(x->p[a].userid), "user.%d",
				    ++x->seq);
				snprintf(x->p[a].family,
				    sizeof(x->p[a].family), "%s",
				    families[rnd(8)]);
			}
			break;
		case 3:		/* two persons swap logins */
			if ((a = alive_person(x)) >= 0 &&
			    (b = alive_person(x)) >= 0 && a != b) {
				memcpy(tmp, x->p[a].userid, sizeof(tmp));
				memcpy(x->p[a].userid, x->p[b].userid,
				    sizeof(tmp));
				memcpy(x->p[b].userid, tmp, sizeof(tmp));
			}
			break;
		case 4:		/* deactivated or reactivated */
			if ((a = alive_person(x)) >= 0)
				x->p[a].active = !x->p[a].active;
			break;
		case 5:		/* a leaver comes back */
			a = (int)rnd((unsigned)x->np);
			if (!x->p[a].alive) {
				x->p[a].alive = 1;
				snprintf(x->p[a].email, sizeof(x->p[a].email),
				    "back%d@example.org", ++x->seq);
			}
			break;
		case 6:		/* a new course */
		case 13:
			if (x->ng < XG)
				new_group(x, x->ng++);
			break;
		case 7:		/* a course ends */
			for (a = b = 0; a < x->ng; a++)
				b += x->g[a].alive;
			if (b > 4 && (g = alive_group(x)) > 0)
				x->g[g].alive = 0;
			break;
		case 8:		/* a course renamed */
			if ((g = alive_group(x)) >= 0) {
				snprintf(x->g[g].shortname,
				    sizeof(x->g[g].shortname), "R-%d",
				    ++x->seq);
				snprintf(x->g[g].longname,
				    sizeof(x->g[g].longname), "Renamed %d",
				    x->seq);
			}
			break;
		case 9:		/* two courses swap short names */
			if ((a = alive_group(x)) >= 0 &&
			    (b = alive_group(x)) >= 0 && a != b) {
				memcpy(tmp, x->g[a].shortname, sizeof(tmp));
				memcpy(x->g[a].shortname, x->g[b].shortname,
				    sizeof(tmp));
				memcpy(x->g[b].shortname, tmp, sizeof(tmp));
			}
			break;
		default:	/* memberships: add, end, change, toggle */
			if ((g = alive_group(x)) < 0 ||
			    (a = alive_person(x)) < 0)
				break;
			b = (int)rnd(XR);
			if (x->m[g][a][b] == 0)
				x->m[g][a][b] = 1;
			else if (rnd(3) == 0)
				x->m[g][a][b] = x->m[g][a][b] == 1 ? 2 : 1;
			else {
				x->m[g][a][b] = 0;
				if (rnd(2))	/* a role change */
					x->m[g][a][(b + 1) % XR] = 1;
			}
			break;
		}
	}
}

static void
export_write(const struct export *x, const char *dir)
{
	char path[PATH_MAX];
	FILE *fp;
	int i, g, r;

	snprintf(path, sizeof(path), "%s/persons.csv", dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fprintf(fp, "id,login,given,family,email,active\n");
	for (i = 0; i < x->np; i++)
		if (x->p[i].alive)
			fprintf(fp, "P%d,%s,%s,%s,%s,%d\n", i, x->p[i].userid,
			    x->p[i].given, x->p[i].family, x->p[i].email,
			    x->p[i].active);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/groups.csv", dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fprintf(fp, "id,short,long\n");
	for (g = 0; g < x->ng; g++)
		if (x->g[g].alive)
			fprintf(fp, "G%d,%s,%s\n", g, x->g[g].shortname,
			    x->g[g].longname);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/memberships.csv", dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fprintf(fp, "group,person,role,status\n");
	for (g = 0; g < x->ng; g++)
		for (i = 0; i < x->np; i++)
			for (r = 0; r < XR; r++)
				if (x->g[g].alive && x->p[i].alive &&
				    x->m[g][i][r] != 0)
					fprintf(fp, "G%d,P%d,%d,%d\n", g, i,
					    r + 1, x->m[g][i][r] == 1);
	fclose(fp);
}

static void
lower(char *d, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len && s[i] != '\0'; i++)
		d[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
	d[i] = '\0';
}

/*
 * "" if the model holds exactly the export, else what differs first.
 */
static const char *
compare(const struct rx_moodle *m, const struct export *x)
{
	static char why[512];
	char id[16], login[32];
	int i, g, r, u, c, live = 0, courses = 0, enrols = 0;

	for (i = 0; i < x->np; i++) {
		const struct xperson *p = &x->p[i];

		if (!p->alive)
			continue;
		live++;
		snprintf(id, sizeof(id), "P%d", i);
		lower(login, p->userid, sizeof(login));
		if ((u = rx_moodle_user(m, 1, id)) < 0)
			return snprintf(why, sizeof(why), "person %s missing",
			    id), why;
		if (strcmp(m->u[u].username, login) != 0 ||
		    strcmp(m->u[u].first, p->given) != 0 ||
		    strcmp(m->u[u].last, p->family) != 0 ||
		    strcmp(m->u[u].email, p->email) != 0 ||
		    strcmp(m->u[u].auth, p->active ? "manual" : "nologin"))
			return snprintf(why, sizeof(why), "person %s is %s %s "
			    "%s %s %s, export %s %s %s %s %d", id,
			    m->u[u].username, m->u[u].first, m->u[u].last,
			    m->u[u].email, m->u[u].auth, login, p->given,
			    p->family, p->email, p->active), why;
	}
	for (u = 0; u < m->nu; u++)
		if (!m->u[u].deleted)
			live--;
	if (live != 0)
		return snprintf(why, sizeof(why), "%d users too many or few",
		    -live), why;
	for (g = 0; g < x->ng; g++) {
		if (!x->g[g].alive)
			continue;
		courses++;
		snprintf(id, sizeof(id), "G%d", g);
		if ((c = rx_moodle_course(m, 1, id)) < 0 || !m->c[c].visible)
			return snprintf(why, sizeof(why), "course %s missing "
			    "or hidden", id), why;
		if (strcmp(m->c[c].shortname, x->g[g].shortname) != 0 ||
		    strcmp(m->c[c].fullname, *x->g[g].longname ?
		    x->g[g].longname : x->g[g].shortname) != 0)
			return snprintf(why, sizeof(why), "course %s is %s/%s",
			    id, m->c[c].shortname, m->c[c].fullname), why;
		for (i = 0; i < x->np; i++)
			for (r = 0; r < XR; r++) {
				int k, have = 0;

				if (!x->p[i].alive || x->m[g][i][r] != 1)
					continue;
				enrols++;
				snprintf(id, sizeof(id), "P%d", i);
				u = rx_moodle_user(m, 1, id);
				for (k = 0; k < m->ne; k++)
					have |= m->e[k].course == c &&
					    m->e[k].user == u &&
					    m->e[k].role == r + 1;
				if (!have)
					return snprintf(why, sizeof(why),
					    "G%d P%d role %d not enrolled", g,
					    i, r + 1), why;
			}
	}
	for (c = 0; c < m->nc; c++)
		courses -= m->c[c].visible;
	if (courses != 0)
		return snprintf(why, sizeof(why), "%d visible courses too "
		    "many or few", -courses), why;
	for (i = 0; i < m->ne; i++) {
		const struct rx_menrol *e = &m->e[i];
		int xg = -1, xp = -1;

		sscanf(m->c[e->course].idnumber, "G%d", &xg);
		sscanf(m->u[e->user].idnumber, "P%d", &xp);
		if (xg < 0 || xp < 0 || !x->g[xg].alive || !x->p[xp].alive ||
		    x->m[xg][xp][e->role - 1] != 1)
			return snprintf(why, sizeof(why), "%s %s role %d "
			    "enrolled, not in the export (%d enrolments, "
			    "export %d)", m->c[e->course].idnumber,
			    m->u[e->user].idnumber, e->role, m->ne, enrols),
			    why;
	}
	if (m->ne != enrols)
		return snprintf(why, sizeof(why), "%d enrolments, export %d",
		    m->ne, enrols), why;
	return "";
}

/* ------------------------------------------------------------------ */
/* The installation.                                                   */

static char dir[1024];

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

static const char CONFIG[] =
	"site: Model School\n"
	"state_dir: state\n"
	"source:\n"
	"  format: csv\n"
	"  persons: export/persons.csv\n"
	"  groups: export/groups.csv\n"
	"  memberships: export/memberships.csv\n"
	"  columns:\n"
	"    persons: {id: id, userid: login, given: given, family: family,\n"
	"              email: email, status: active}\n"
	"    groups: {id: id, short: short, long: long}\n"
	"    memberships: {group: group, person: person, role: role,\n"
	"                  status: status}\n"
	"output:\n"
	"  source: sis.example.org\n"
	"  profile: moodle\n"
	"  window: %d\n"
	"safety:\n"
	"  persons: {inserts: 100%%, updates: 100%%, deletes: 100%%}\n"
	"  groups: {inserts: 100%%, updates: 100%%, deletes: 100%%}\n"
	"  memberships: {inserts: 100%%, updates: 100%%, deletes: 100%%}\n"
	"  first_run: allow\n"
	"  max_rejects: 50%%\n"
	"delivery:\n"
	"  dir: outbox\n";

static void
install(int window)
{
	char cfg[4096], sub[PATH_MAX];

	snprintf(cfg, sizeof(cfg), CONFIG, window);
	tu_write(dir, "sisfeed.yaml", cfg);
	snprintf(sub, sizeof(sub), "%s/export", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	snprintf(sub, sizeof(sub), "%s/outbox", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
}

/* sisfeed run, killed at the crash point point (lib/log.c fault_point)
 * unless it is NULL.  Returns the exit status (128 + 9 when killed). */
static int
run_crashing(const char *point, char **out)
{
	char cfg[PATH_MAX];
	char *argv[] = { (char *)tu_sisfeed(), "-c", cfg, "run", NULL };
	int rc;

	snprintf(cfg, sizeof(cfg), "%s/sisfeed.yaml", dir);
	if (point != NULL)
		ck_assert_int_eq(setenv("SISFEED_CRASH_AFTER", point, 1), 0);
	rc = tu_run(argv, out, TIMEOUT);
	unsetenv("SISFEED_CRASH_AFTER");
	return rc;
}

/* sisfeed run; crash: killed right after delivery. */
static int
run_sisfeed(int crash, char **out)
{
	return run_crashing(crash ? "deliver" : NULL, out);
}

static int
count_records(const char *path)
{
	char *s = tu_read(path, NULL), *p;
	int n = 0;

	if (s == NULL)
		return 0;
	for (p = s; (p = strstr(p, "recstatus=")) != NULL; p++)
		n++;
	free(s);
	return n;
}

/* What the export holds: live persons, courses, active enrolments. */
static void
export_counts(const struct export *x, int *users, int *courses, int *enrols)
{
	int i, g, r;

	*users = *courses = *enrols = 0;
	for (i = 0; i < x->np; i++)
		*users += x->p[i].alive;
	for (g = 0; g < x->ng; g++) {
		if (!x->g[g].alive)
			continue;
		(*courses)++;
		for (i = 0; i < x->np; i++)
			for (r = 0; r < XR; r++)
				*enrols += x->p[i].alive && x->m[g][i][r] == 1;
	}
}

/* One line of the state table (SISFEED_MODEL_TABLE). */
static void
table_line(const struct rx_moodle *m, const struct export *x, int night,
    const char *run, const char *import, const char *file)
{
	struct stat st;
	int c, hidden = 0, users = 0, xu, xc, xe;

	for (c = 0; c < m->nc; c++)
		hidden += !m->c[c].visible;
	for (c = 0; c < m->nu; c++)
		users += !m->u[c].deleted;
	export_counts(x, &xu, &xc, &xe);
	printf("%5d %-9s %6lld %7d %-6s | %5d %7d %6d %7d | %5d %7d %7d | %s\n",
	    night, run, stat(file, &st) == 0 ? (long long)st.st_size : 0LL,
	    count_records(file), import, users, m->nc - hidden, hidden, m->ne,
	    xu, xc, xe, *compare(m, x) == '\0' ? "yes" : "no");
}

/* Nights of churn, runs (some killed after delivery), imports of a
 * random subset; the model must equal the export after each import. */
START_TEST(test_random_nights)
{
	static struct rx_moodle m;
	static struct export x;
	char file[PATH_MAX], edir[PATH_MAX], *out;
	int night, crash, rc, imp, missed = 0, table;
	int crashes = 0, imports = 0, skipped = 0, twice = 0;
	time_t when = 1790000000;

	table = getenv("SISFEED_MODEL_TABLE") != NULL;
	if (getenv("SISFEED_MODEL_SEED") != NULL)	/* other churn */
		rng = strtoul(getenv("SISFEED_MODEL_SEED"), NULL, 10) | 1;
	install(WINDOW);
	snprintf(file, sizeof(file), "%s/outbox/sisfeed.xml", dir);
	snprintf(edir, sizeof(edir), "%s/export", dir);
	export_init(&x);
	if (table)
		printf("night run        bytes records import | model: users "
		    "courses hidden enrols | export: users courses enrols | "
		    "equal\n");
	for (night = 0; night < NIGHTS; night++) {
		struct timespec ts[2];
		int delivered = 0, dbl = 0;

		if (night > 0)
			export_churn(&x);
		export_write(&x, edir);
		crash = night > 0 && rnd(5) == 0;
		rc = run_sisfeed(crash, &out);
		ck_assert_msg(rc == 0 || (crash && rc == 128 + 9),
		    "night %d: exit %d: %s", night, rc, out);
		delivered = strstr(out, "nothing to do") == NULL;
		free(out);
		crashes += crash;
		if (delivered) {
			/* a night later, as Moodle's filemtime sees it */
			when += 86400;
			ts[0].tv_sec = ts[1].tv_sec = when;
			ts[0].tv_nsec = ts[1].tv_nsec = 0;
			ck_assert_int_eq(utimensat(AT_FDCWD, file, ts, 0), 0);
		}
		/* Moodle may miss at most WINDOW files in a row. */
		imp = missed >= WINDOW || rnd(3) != 0 || night == NIGHTS - 1;
		if (delivered && !imp) {
			missed++;
			skipped++;
		}
		if (imp) {
			rc = rx_moodle_import(&m, file);
			ck_assert_msg(rc != -1, "night %d: import aborted: %s",
			    night, m.why);
			ck_assert_msg(*compare(&m, &x) == '\0',
			    "night %d: %s", night, compare(&m, &x));
			imports++;
			missed = 0;
			if (rnd(4) == 0) {	/* imported twice */
				ck_assert_int_eq(rx_moodle_import(&m, file), 0);
				ck_assert_str_eq(compare(&m, &x), "");
				twice++;
				dbl = 1;
			}
		}
		if (table)
			table_line(&m, &x, night, crash ? "killed" :
			    delivered ? "delivered" : "nothing", imp ? (rc == 1 ?
			    (dbl ? "twice" : "yes") : "seen") : delivered ? "missed" :
			    "-", file);
	}
	ck_assert_int_gt(crashes, 0);
	ck_assert_int_gt(skipped, 0);
	ck_assert_int_gt(twice, 0);
	ck_assert_int_gt(imports, NIGHTS / 2);
	rx_moodle_free(&m);
}
END_TEST

/*
 * The model is honest: tonight's file alone (window 0) after a missed
 * night leaves Moodle wrong, and an unchanged file is skipped.
 */
/* Date file a night after its mtime, as Moodle's filemtime would see a
 * file delivered the next night (runs in one second share a time). */
static void
night_later(const char *file)
{
	struct stat st;
	struct timespec ts[2];

	ck_assert_int_eq(stat(file, &st), 0);
	ts[0].tv_sec = ts[1].tv_sec = st.st_mtime + 86400;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	ck_assert_int_eq(utimensat(AT_FDCWD, file, ts, 0), 0);
}

START_TEST(test_model_catches_a_missed_night)
{
	static struct rx_moodle m;
	static struct export x;
	char file[PATH_MAX], edir[PATH_MAX], *out;

	install(0);
	snprintf(file, sizeof(file), "%s/outbox/sisfeed.xml", dir);
	snprintf(edir, sizeof(edir), "%s/export", dir);
	export_init(&x);
	export_write(&x, edir);
	ck_assert_int_eq(run_sisfeed(0, &out), 0);
	free(out);
	ck_assert_int_eq(rx_moodle_import(&m, file), 1);
	ck_assert_str_eq(compare(&m, &x), "");
	ck_assert_int_eq(rx_moodle_import(&m, file), 0);	/* seen */
	x.p[3].alive = 0;				/* missed */
	export_write(&x, edir);
	ck_assert_int_eq(run_sisfeed(0, &out), 0);
	free(out);
	snprintf(x.p[4].family, sizeof(x.p[4].family), "Changed");
	export_write(&x, edir);
	ck_assert_int_eq(run_sisfeed(0, &out), 0);
	free(out);
	night_later(file);
	ck_assert_int_eq(rx_moodle_import(&m, file), 1);
	ck_assert_str_ne(compare(&m, &x), "");
	rx_moodle_free(&m);
}
END_TEST

/* Every crash point of a run (lib/log.c fault_point): "copy" cuts the
 * copy into the delivery directory under its temporary name. */
static const char *const crash_points[] = { "read", "diff", "write",
	"copy", "deliver", "commit" };
#define NCRASH	(sizeof(crash_points) / sizeof(crash_points[0]))

/* No temporary file in dir/sub. */
static void
no_part_in(const char *sub)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	ck_assert_ptr_nonnull(d = opendir(path));
	while ((e = readdir(d)) != NULL)
		ck_assert_msg(strstr(e->d_name, ".part") == NULL, "%s/%s left",
		    sub, e->d_name);
	closedir(d);
}

/*
 * kill -9 at each crash point of a run in the cumulative mode (the
 * moodle profile), Moodle importing whatever file is there after the
 * crash: the next run's file brings Moodle to tonight's export, and
 * nothing half-written is left in the outbox or the state.
 */
START_TEST(test_crash_points)
{
	static struct rx_moodle m;
	static struct export x;
	const char *point = crash_points[_i];
	char file[PATH_MAX], edir[PATH_MAX], *out;
	int rc;

	install(WINDOW);
	snprintf(file, sizeof(file), "%s/outbox/sisfeed.xml", dir);
	snprintf(edir, sizeof(edir), "%s/export", dir);
	export_init(&x);
	export_write(&x, edir);
	ck_assert_int_eq(run_crashing(NULL, &out), 0);
	free(out);
	ck_assert_int_eq(rx_moodle_import(&m, file), 1);
	export_churn(&x);
	export_write(&x, edir);
	rc = run_crashing(point, &out);
	ck_assert_msg(rc == 128 + 9, "crash after %s: exit %d: %s", point, rc,
	    out);
	free(out);
	night_later(file);
	ck_assert_msg(rx_moodle_import(&m, file) != -1, "%s", m.why);

	ck_assert_int_eq(run_crashing(NULL, &out), 0);
	free(out);
	night_later(file);
	night_later(file);
	ck_assert_msg(rx_moodle_import(&m, file) != -1, "%s", m.why);
	ck_assert_msg(*compare(&m, &x) == '\0', "after a crash in %s: %s",
	    point, compare(&m, &x));
	no_part_in("outbox");
	no_part_in("state");
	no_part_in("state/out");
	rx_moodle_free(&m);
}
END_TEST

/* Lines of the journal STATE/window starting with prefix ("p ": the
 * key lines, persons, groups and pairs). */
static int
journal_lines(const char *prefix)
{
	char path[PATH_MAX], *s, *p, *nl;
	int n = 0, keys = strcmp(prefix, "p ") == 0;

	snprintf(path, sizeof(path), "%s/state/window", dir);
	ck_assert_ptr_nonnull(s = tu_read(path, NULL));
	for (p = s; *p != '\0'; p = nl + 1) {
		n += keys ? (p[0] == 'p' || p[0] == 'g' || p[0] == 'm') &&
		    p[1] == ' ' : strncmp(p, prefix, strlen(prefix)) == 0;
		if ((nl = strchr(p, '\n')) == NULL)
			break;
	}
	free(s);
	return n;
}

/*
 * A night whose runs never commit (the delivery fails, or the run is
 * killed after it) is tried again: each retry replaces the uncommitted
 * entry of the journal instead of adding to it, and the file that
 * finally goes out converges.
 */
START_TEST(test_retries_replace_the_tried_night)
{
	static struct rx_moodle m;
	static struct export x;
	char file[PATH_MAX], edir[PATH_MAX], box[PATH_MAX], *out;
	int i, keys;

	install(2);
	snprintf(file, sizeof(file), "%s/outbox/sisfeed.xml", dir);
	snprintf(edir, sizeof(edir), "%s/export", dir);
	snprintf(box, sizeof(box), "%s/outbox", dir);
	export_init(&x);
	export_write(&x, edir);
	ck_assert_int_eq(run_sisfeed(0, &out), 0);
	free(out);
	ck_assert_int_eq(rx_moodle_import(&m, file), 1);
	/* tonight: a rename, a leaver, a role change */
	snprintf(x.p[2].userid, sizeof(x.p[2].userid), "renamed.2");
	x.p[3].alive = 0;
	memset(x.m[1][4], 0, XR);
	x.m[1][4][1] = 1;
	export_write(&x, edir);
	tu_rmtree(box);			/* the delivery fails */
	ck_assert_int_eq(run_sisfeed(0, &out), 1);
	free(out);
	ck_assert_int_eq(journal_lines("tried "), 1);
	keys = journal_lines("p ");
	ck_assert_int_gt(keys, 3);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(run_sisfeed(0, &out), 1);
		free(out);
		ck_assert_int_eq(journal_lines("tried "), 1);
		ck_assert_int_eq(journal_lines("p "), keys);
	}
	ck_assert_int_eq(mkdir(box, 0700), 0);
	for (i = 0; i < 2; i++) {	/* killed after delivery */
		ck_assert_int_eq(run_sisfeed(1, &out), 128 + 9);
		free(out);
		ck_assert_int_eq(journal_lines("tried "), 1);
		ck_assert_int_eq(journal_lines("p "), keys);
	}
	ck_assert_int_eq(run_sisfeed(0, &out), 0);
	free(out);
	ck_assert_int_eq(journal_lines("tried "), 0);
	ck_assert_int_eq(journal_lines("night "), 2);
	ck_assert_int_eq(journal_lines("p "), keys);
	night_later(file);
	ck_assert_int_eq(rx_moodle_import(&m, file), 1);
	ck_assert_str_eq(compare(&m, &x), "");
	rx_moodle_free(&m);
}
END_TEST

/* Append text to export/name. */
static void
append(const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/export/%s", dir, name);
	ck_assert_ptr_nonnull(fp = fopen(path, "a"));
	ck_assert_int_ge(fputs(text, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
}

/* The rejects file a run's output names ("..., see PATH"). */
static char *
rejects_of(const char *out)
{
	char path[PATH_MAX];
	const char *p = strstr(out, "rejected, see ");

	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(sscanf(p + strlen("rejected, see "), "%4095s",
	    path), 1);
	return tu_read(path, NULL);
}

/* Values Moodle would choke on go to the rejects file; the rest of the
 * file imports. */
START_TEST(test_rejects_keep_the_import_going)
{
	static struct rx_moodle m;
	static struct export x;
	char file[PATH_MAX], edir[PATH_MAX], *out, *rej;
	char line[400];
	int c;

	install(2);
	snprintf(file, sizeof(file), "%s/outbox/sisfeed.xml", dir);
	snprintf(edir, sizeof(edir), "%s/export", dir);
	export_init(&x);
	export_write(&x, edir);
	snprintf(line, sizeof(line), "GLONG,%0260d,\n", 7);
	append("groups.csv", line);
	/* Moodle aborts on a short name of 255 and takes one of 254 */
	snprintf(line, sizeof(line), "G255,%0255d,\n", 8);
	append("groups.csv", line);
	snprintf(line, sizeof(line), "G254,%0254d,\n", 9);
	append("groups.csv", line);
	append("groups.csv", "GDUP1,Same,\nGDUP2,Same,\n");
	append("persons.csv", "PDUP,USER.1,A,B,a@b.c,1\n");
	append("memberships.csv", "G1,PDUP,1,1\nG1,PDUP,2,1\n");
	ck_assert_int_eq(run_sisfeed(0, &out), 0);
	ck_assert_ptr_nonnull(rej = rejects_of(out));
	free(out);
	ck_assert_ptr_nonnull(strstr(rej, "too long for Moodle's "
	    "course.shortname (260 characters"));
	ck_assert_ptr_nonnull(strstr(rej, "group 'G255': too long for "
	    "Moodle's course.shortname (255 characters as Moodle stores it, "
	    "at most 254)"));
	ck_assert_ptr_null(strstr(rej, "group 'G254'"));
	ck_assert_ptr_nonnull(strstr(rej, "group 'GDUP1': the same short "
	    "name"));
	ck_assert_ptr_nonnull(strstr(rej, "group 'GDUP2': the same short "
	    "name"));
	ck_assert_ptr_nonnull(strstr(rej, "person 'PDUP': the same login"));
	ck_assert_ptr_nonnull(strstr(rej, "person 'P0': the same login"));
	/* their memberships depend on them, as on every path */
	ck_assert_ptr_nonnull(strstr(rej, "/export/memberships.csv:0: person: "
	    "depends on rejected person 'PDUP' (" ));
	ck_assert_ptr_nonnull(strstr(rej, "/export/persons.csv:32): 2 "
	    "memberships left out"));
	free(rej);
	/* P0 (user.1) is rejected with its twin: it is not in Moodle */
	ck_assert_int_eq(rx_moodle_import(&m, file), 1);
	x.p[0].alive = 0;
	/* G254 went in; x cannot hold its name, so it leaves the compare */
	ck_assert_int_ge(c = rx_moodle_course(&m, 1, "G254"), 0);
	m.c[c].visible = 0;
	ck_assert_str_eq(compare(&m, &x), "");
	rx_moodle_free(&m);
}
END_TEST

/* Copy top/from into dir/to. */
static void
copy_in(const char *from, const char *to)
{
	char src[PATH_MAX], *s;

	snprintf(src, sizeof(src), "%s/%s", tu_top(), from);
	ck_assert_ptr_nonnull(s = tu_read(src, NULL));
	tu_write(dir, to, s);
	free(s);
}

/* The roles (bit r for role r) user idnumber pid holds in course cid. */
static unsigned
roles_of(const struct rx_moodle *m, const char *cid, const char *pid)
{
	int c = rx_moodle_course(m, 1, cid), u = rx_moodle_user(m, 1, pid), k;
	unsigned roles = 0;

	for (k = 0; k < m->ne; k++)
		if (m->e[k].course == c && m->e[k].user == u)
			roles |= 1u << m->e[k].role;
	return roles;
}

/*
 * The demo's Moodle nights (etc/examples/moodle.yaml, nights 1-3), each
 * imported by the model: what the README says Moodle then holds.
 */
START_TEST(test_example_nights)
{
	static struct rx_moodle m;
	static const char *const csv[] = { "persons.csv", "groups.csv",
	    "memberships.csv" };
	char file[PATH_MAX], from[64], to[64], *out;
	int n, i, u;

	copy_in("etc/examples/moodle.yaml", "sisfeed.yaml");
	snprintf(file, sizeof(file), "%s/export", dir);
	ck_assert_int_eq(mkdir(file, 0700), 0);
	snprintf(file, sizeof(file), "%s/moodledata", dir);
	ck_assert_int_eq(mkdir(file, 0700), 0);
	snprintf(file, sizeof(file), "%s/moodledata/sisfeed", dir);
	ck_assert_int_eq(mkdir(file, 0700), 0);
	snprintf(file, sizeof(file), "%s/moodledata/sisfeed/sisfeed.xml", dir);
	for (n = 1; n <= 3; n++) {
		for (i = 0; i < 3; i++) {
			snprintf(from, sizeof(from), "etc/examples/night%d/%s",
			    n, csv[i]);
			snprintf(to, sizeof(to), "export/%s", csv[i]);
			copy_in(from, to);
		}
		ck_assert_int_eq(run_sisfeed(0, &out), 0);
		free(out);
		for (i = 1; i < n; i++)		/* n - 1 nights on */
			night_later(file);
		ck_assert_msg(rx_moodle_import(&m, file) == 1, "night %d: %s",
		    n, m.why);
		if (n == 2) {	/* leavers deleted, a deactivation */
			ck_assert_int_lt(rx_moodle_user(&m, 1, "S1013"), 0);
			ck_assert_int_ge(u = rx_moodle_user(&m, 1, "S1008"), 0);
			ck_assert_str_eq(m.u[u].auth, "nologin");
			ck_assert_uint_eq(roles_of(&m, "SCI-9A", "T2001"),
			    1u << 8);
		}
	}
	/* night 3: a login renamed, a reactivation, a role changed, a
	 * course renamed, the newcomer in */
	ck_assert_int_ge(u = rx_moodle_user(&m, 1, "S1002"), 0);
	ck_assert_str_eq(m.u[u].username, "alan.m.turing");
	ck_assert_str_eq(m.u[u].first, "Alan Mathison");
	ck_assert_int_ge(u = rx_moodle_user(&m, 1, "S1008"), 0);
	ck_assert_str_eq(m.u[u].auth, "manual");
	ck_assert_uint_eq(roles_of(&m, "SCI-9A", "T2001"), 1u << 2);
	ck_assert_uint_eq(roles_of(&m, "MATH-9A", "T2001"), 1u << 2);
	ck_assert_uint_eq(roles_of(&m, "ENG-7B", "S1016"), 1u << 1);
	ck_assert_str_eq(m.c[rx_moodle_course(&m, 1, "MATH-9A")].fullname,
	    "Mathematics, grade 9 (A), honours");
	ck_assert_int_lt(rx_moodle_user(&m, 1, "S1015"), 0);
	ck_assert_int_lt(rx_moodle_user(&m, 0, "sofia.taylor"), 0);
	rx_moodle_free(&m);
}
END_TEST

/* The OneRoster bundle of test_role_timeframes: u1 in c1 over two
 * terms, the second ending on spring_end; u2 without dates. */
static void
dated_bundle(const char *spring_end)
{
	char e[1024];

	tu_write(dir, "export/users.csv", "sourcedId,status,enabledUser,"
	    "orgSourcedIds,role,username,givenName,familyName,email\n"
	    "u1,,true,sch,student,ann,Ann,Smith,ann@x.org\n"
	    "u2,,true,sch,teacher,bob,Bob,Jones,bob@x.org\n");
	tu_write(dir, "export/orgs.csv", "sourcedId,status,name,type,"
	    "parentSourcedId\nsch,,School,school,\n");
	tu_write(dir, "export/classes.csv", "sourcedId,status,title,"
	    "classCode,schoolSourcedId,termSourcedIds\nc1,,Class 1,C1,sch,\n");
	snprintf(e, sizeof(e), "sourcedId,status,classSourcedId,"
	    "userSourcedId,role,beginDate,endDate\n"
	    "e1,,c1,u1,student,2024-08-15,2024-12-20\n"
	    "e2,,c1,u1,student,2025-01-06,%s\n"
	    "e3,,c1,u2,teacher,,\n", spring_end);
	tu_write(dir, "export/enrollments.csv", e);
}

/* The timestart and timeend Moodle holds for user pid in course cid. */
static void
expect_dates(const struct rx_moodle *m, const char *cid, const char *pid,
    const char *start, const char *end)
{
	int c = rx_moodle_course(m, 1, cid), u = rx_moodle_user(m, 1, pid), k;

	for (k = 0; k < m->ne; k++)
		if (m->e[k].course == c && m->e[k].user == u)
			break;
	ck_assert_msg(k < m->ne, "%s not enrolled in %s", pid, cid);
	ck_assert_str_eq(m->e[k].start, start);
	ck_assert_str_eq(m->e[k].end, end);
}

/*
 * OneRoster enrollment dates reach Moodle as the enrolment's start and
 * end (a role timeframe with restrict="1"); the Fall and Spring rows
 * are one enrolment from Fall's begin to Spring's end; a moved end date
 * is sent again and Moodle's end moves with it.
 */
START_TEST(test_role_timeframes)
{
	static struct rx_moodle m;
	char cfg[2048], file[PATH_MAX], *out;

	install(1);
	snprintf(cfg, sizeof(cfg), "%s/sisfeed.yaml", dir);
	ck_assert_ptr_nonnull(out = tu_read(cfg, NULL));
	ck_assert_ptr_nonnull(strstr(out, "  format: csv\n"));
	snprintf(cfg, sizeof(cfg), "%.*s  format: oneroster\n  dir: export\n"
	    "output:%s", (int)(strstr(out, "  format: csv\n") - out), out,
	    strstr(out, "output:") + strlen("output:"));
	free(out);
	tu_write(dir, "sisfeed.yaml", cfg);
	snprintf(file, sizeof(file), "%s/outbox/sisfeed.xml", dir);

	dated_bundle("2025-06-10");
	ck_assert_int_eq(run_sisfeed(0, &out), 0);
	free(out);
	ck_assert_msg(rx_moodle_import(&m, file) == 1, "%s", m.why);
	expect_dates(&m, "c1", "u1", "2024-08-15", "2025-06-10");
	expect_dates(&m, "c1", "u2", "", "");

	dated_bundle("2025-06-20");
	ck_assert_int_eq(run_sisfeed(0, &out), 0);
	free(out);
	night_later(file);
	ck_assert_msg(rx_moodle_import(&m, file) == 1, "%s", m.why);
	expect_dates(&m, "c1", "u1", "2024-08-15", "2025-06-20");
	expect_dates(&m, "c1", "u2", "", "");
	rx_moodle_free(&m);
}
END_TEST

/* '&' reaches Moodle as "&amp;": the run names the record. */
START_TEST(test_entities_named)
{
	static struct export x;
	char edir[PATH_MAX], *out;

	install(1);
	snprintf(edir, sizeof(edir), "%s/export", dir);
	export_init(&x);
	snprintf(x.g[1].longname, sizeof(x.g[1].longname), "R&D");
	export_write(&x, edir);
	ck_assert_int_eq(run_sisfeed(0, &out), 0);
	ck_assert_ptr_nonnull(strstr(out, "group 'G1': Moodle will store "
	    "'&'"));
	ck_assert_ptr_nonnull(strstr(out, "1 records hold '&'"));
	free(out);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("moodle");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_random_nights);
	tcase_add_test(tc, test_model_catches_a_missed_night);
	tcase_add_test(tc, test_retries_replace_the_tried_night);
	tcase_add_loop_test(tc, test_crash_points, 0, (int)NCRASH);
	tcase_add_test(tc, test_rejects_keep_the_import_going);
	tcase_add_test(tc, test_entities_named);
	tcase_add_test(tc, test_example_nights);
	tcase_add_test(tc, test_role_timeframes);
	suite_add_tcase(s, tc);
	return tu_run_suite(s) == 0 ? 0 : 1;
}
