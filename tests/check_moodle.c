/*
 * check_moodle.c -- the moodle profile against a model of Moodle 4.5's
 * enrol_imsenterprise (FORMAT.md section 9): a line reader with no XML
 * parser (entities kept literally), the first match of each field,
 * roletype and authenticationtype only as first attributes, persons
 * updated by idnumber (ignored if missing), created only if missing,
 * deleted by username; courses created whatever the recstatus, renamed
 * from <short> and <full>, hidden by recstatus 3; an unenrol drops
 * every role; one exception (a column too long, a taken username or
 * short name) aborts the rest of the file and the file is tried again;
 * a file is skipped when its path is the same and it is not newer with
 * other content; a gzip file imports nothing.
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
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testutil.h"

#define TIMEOUT		60
#define WINDOW		3
#define NIGHTS		32
#define MAXU		1024
#define MAXC		128
#define MAXE		8192

/* ------------------------------------------------------------------ */
/* The model of Moodle.                                                */

struct muser {
	char	*idnumber, *username, *first, *last, *email, *auth;
	int	 deleted;
};

struct mcourse {
	char	*idnumber, *shortname, *fullname;
	int	 visible;
};

struct menrol {
	int	 course, user, role;
};

struct moodle {
	struct muser	 u[MAXU];
	int		 nu;
	struct mcourse	 c[MAXC];
	int		 nc;
	struct menrol	 e[MAXE];
	int		 ne;
	char		 prev_path[PATH_MAX];
	time_t		 prev_time;
	unsigned char	 prev_hash[32];
	int		 deleted_seq;
	int		 exception;	/* the last import aborted */
	char		 why[256];
	int		 records;	/* read by the last import */
};

static void
moodle_free(struct moodle *m)
{
	int i;

	for (i = 0; i < m->nu; i++) {
		free(m->u[i].idnumber);
		free(m->u[i].username);
		free(m->u[i].first);
		free(m->u[i].last);
		free(m->u[i].email);
		free(m->u[i].auth);
	}
	for (i = 0; i < m->nc; i++) {
		free(m->c[i].idnumber);
		free(m->c[i].shortname);
		free(m->c[i].fullname);
	}
	memset(m, 0, sizeof(*m));
}

static char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	ck_assert_ptr_nonnull(d);
	return d;
}

static void
set(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

/* Characters (UTF-8 code points) of s. */
static size_t
chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if ((*s & 0xC0) != 0x80)
			n++;
	return n;
}

/* A field: the text between the first <tag ...> after from and its
 * </tag>, trimmed, into buf; 1 if found. */
static int
field(const char *rec, const char *tag, char *buf, size_t len)
{
	char open[64], close[64];
	const char *p, *q, *e;
	size_t n;

	snprintf(open, sizeof(open), "<%s", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	for (p = rec; (p = strstr(p, open)) != NULL; p++)
		if (p[strlen(open)] == '>' || p[strlen(open)] == ' ')
			break;
	if (p == NULL || (q = strchr(p, '>')) == NULL ||
	    (e = strstr(q, close)) == NULL)
		return 0;
	q++;
	while (q < e && strchr(" \t\r\n", *q) != NULL)
		q++;
	while (e > q && strchr(" \t\r\n", e[-1]) != NULL)
		e--;
	n = (size_t)(e - q) < len - 1 ? (size_t)(e - q) : len - 1;
	memcpy(buf, q, n);
	buf[n] = '\0';
	return 1;
}

/* recstatus="N" in the start tag at rec; 0 if none. */
static int
recstatus(const char *rec)
{
	const char *end = strchr(rec, '>'), *p = strstr(rec, "recstatus");

	if (p == NULL || end == NULL || p > end)
		return 0;
	p += strlen("recstatus");
	while (*p == ' ')
		p++;
	if (*p++ != '=')
		return 0;
	while (*p == ' ')
		p++;
	if (*p != '"' && *p != '\'')
		return 0;
	return p[1] - '0';
}

/* The value of attr when it is the first attribute of the first <tag. */
static int
first_attr(const char *rec, const char *tag, const char *attr, char *buf,
    size_t len)
{
	char pat[128];
	const char *p, *q;

	snprintf(pat, sizeof(pat), "<%s %s=\"", tag, attr);
	if ((p = strstr(rec, pat)) == NULL)
		return 0;
	p += strlen(pat);
	if ((q = strchr(p, '"')) == NULL || (size_t)(q - p) >= len)
		return 0;
	memcpy(buf, p, (size_t)(q - p));
	buf[q - p] = '\0';
	return 1;
}

static int
exception(struct moodle *m, const char *why, const char *what)
{
	m->exception = 1;
	snprintf(m->why, sizeof(m->why), "%s: %s", why, what);
	return -1;
}

static int
user_by(const struct moodle *m, int byid, const char *v)
{
	int i;

	for (i = 0; i < m->nu; i++) {
		if (m->u[i].deleted)
			continue;
		if (byid && *v != '\0' && strcmp(m->u[i].idnumber, v) == 0)
			return i;
		if (!byid && strcmp(m->u[i].username, v) == 0)
			return i;
	}
	return -1;
}

static int
course_by(const struct moodle *m, int byid, const char *v)
{
	int i;

	for (i = 0; i < m->nc; i++) {
		if (byid && strcmp(m->c[i].idnumber, v) == 0)
			return i;
		if (!byid && strcmp(m->c[i].shortname, v) == 0)
			return i;
	}
	return -1;
}

/* Column sizes of user: username 100, idnumber 255, names and email
 * 100. */
static int
user_fits(struct moodle *m, const struct muser *u)
{
	if (chars(u->username) > 100 || chars(u->idnumber) > 255 ||
	    chars(u->first) > 100 || chars(u->last) > 100 ||
	    chars(u->email) > 100)
		return exception(m, "value too long for column", u->idnumber);
	return 0;
}

static void
unenrol_all(struct moodle *m, int course, int user)
{
	int i, o = 0;

	for (i = 0; i < m->ne; i++)
		if (!(m->e[i].user == user && (course < 0 ||
		    m->e[i].course == course)))
			m->e[o++] = m->e[i];
	m->ne = o;
}

static int
person_delete(struct moodle *m, const char *username)
{
	int i = user_by(m, 0, username);
	char name[64];

	if (i < 0)
		return 0;
	m->u[i].deleted = 1;
	set(&m->u[i].idnumber, "");
	snprintf(name, sizeof(name), "deleted.%d", ++m->deleted_seq);
	set(&m->u[i].username, name);
	unenrol_all(m, -1, i);
	return 0;
}

static int
person_update(struct moodle *m, int i, const char *rec)
{
	struct muser u = m->u[i];
	char v[1024];
	int j;

	if (field(rec, "userid", v, sizeof(v))) {
		if ((j = user_by(m, 0, v)) >= 0 && j != i)
			return exception(m, "username already taken", v);
		u.username = v;
	}
	u.first = field(rec, "given", v + 256, 256) ? v + 256 : u.first;
	u.last = field(rec, "family", v + 512, 256) ? v + 512 : u.last;
	u.email = field(rec, "email", v + 768, 256) ? v + 768 : u.email;
	if (user_fits(m, &u) == -1)
		return -1;
	if (u.username != m->u[i].username)
		set(&m->u[i].username, u.username);
	if (u.first != m->u[i].first)
		set(&m->u[i].first, u.first);
	if (u.last != m->u[i].last)
		set(&m->u[i].last, u.last);
	if (u.email != m->u[i].email)
		set(&m->u[i].email, u.email);
	if (first_attr(rec, "userid", "authenticationtype", v, sizeof(v)))
		set(&m->u[i].auth, v);
	return 0;
}

static int
person_create(struct moodle *m, const char *id, const char *rec)
{
	struct muser u;
	char name[256], given[256], family[256], email[256], auth[64];
	int j;

	if (!field(rec, "userid", name, sizeof(name)) || *name == '\0')
		return exception(m, "no username", id);
	if ((j = user_by(m, 0, name)) >= 0) {
		if (*m->u[j].idnumber != '\0')
			return exception(m, "username taken", name);
		set(&m->u[j].idnumber, id);	/* attached */
		return 0;
	}
	if (!field(rec, "given", given, sizeof(given)))
		*given = '\0';
	if (!field(rec, "family", family, sizeof(family)))
		*family = '\0';
	if (!field(rec, "email", email, sizeof(email)))
		*email = '\0';
	if (!first_attr(rec, "userid", "authenticationtype", auth,
	    sizeof(auth)))
		snprintf(auth, sizeof(auth), "manual");
	u.idnumber = (char *)id;
	u.username = name;
	u.first = given;
	u.last = family;
	u.email = email;
	if (user_fits(m, &u) == -1)
		return -1;
	ck_assert_int_lt(m->nu, MAXU);
	m->u[m->nu].idnumber = xstrdup(id);
	m->u[m->nu].username = xstrdup(name);
	m->u[m->nu].first = xstrdup(given);
	m->u[m->nu].last = xstrdup(family);
	m->u[m->nu].email = xstrdup(email);
	m->u[m->nu].auth = xstrdup(auth);
	m->u[m->nu].deleted = 0;
	m->nu++;
	return 0;
}

static int
do_person(struct moodle *m, const char *rec)
{
	char id[512], name[256];
	int rs = recstatus(rec), i;

	if (!field(strstr(rec, "<sourcedid>"), "id", id, sizeof(id)))
		return 0;
	if (rs == 3)	/* imsdeleteusers: by username */
		return field(rec, "userid", name, sizeof(name)) ?
		    person_delete(m, name) : 0;
	i = user_by(m, 1, id);
	if (rs == 2)	/* imsupdateusers: by idnumber, ignored if none */
		return i >= 0 ? person_update(m, i, rec) : 0;
	if (i >= 0)	/* "User record already exists" */
		return 0;
	return person_create(m, id, rec);
}

static int
do_group(struct moodle *m, const char *rec)
{
	char id[512], sh[1024], full[1024];
	int rs = recstatus(rec), i, j, created = 0;

	if (!field(strstr(rec, "<sourcedid>"), "id", id, sizeof(id)))
		return 0;
	if (!field(rec, "short", sh, sizeof(sh)))
		snprintf(sh, sizeof(sh), "%s", id);
	if (!field(rec, "full", full, sizeof(full)))
		snprintf(full, sizeof(full), "%s", sh);
	if ((i = course_by(m, 1, id)) < 0) {	/* createnewcourses */
		if (chars(sh) > 254 || chars(full) > 254 || chars(id) > 100)
			return exception(m, "value too long for column", id);
		if (course_by(m, 0, sh) >= 0)
			return exception(m, "Short name is already used for "
			    "another course", sh);
		ck_assert_int_lt(m->nc, MAXC);
		i = m->nc++;
		m->c[i].idnumber = xstrdup(id);
		m->c[i].shortname = xstrdup(sh);
		m->c[i].fullname = xstrdup(full);
		m->c[i].visible = 1;
		created = 1;
	}
	if (rs == 3) {
		m->c[i].visible = 0;
		return 0;
	}
	if (rs == 2 && !created) {		/* updatecourses */
		if (chars(sh) > 254 || chars(full) > 254)
			return exception(m, "value too long for column", id);
		if ((j = course_by(m, 0, sh)) >= 0 && j != i)
			return exception(m, "Short name is already used for "
			    "another course", sh);
		set(&m->c[i].shortname, sh);
		set(&m->c[i].fullname, full);
	}
	return 0;
}

static int
do_member(struct moodle *m, int course, const char *rec)
{
	char id[512], role[16], status[16];
	int u, r, k;

	if (!field(strstr(rec, "<sourcedid>"), "id", id, sizeof(id)) ||
	    (u = user_by(m, 1, id)) < 0)
		return 0;
	if (!first_attr(rec, "role", "roletype", role, sizeof(role)) ||
	    strlen(role) != 2 || role[0] != '0' || role[1] < '1' ||
	    role[1] > '8')
		return 0;	/* SKIPPING role */
	r = role[1] - '0';
	if (!field(rec, "status", status, sizeof(status)))
		snprintf(status, sizeof(status), "1");
	if (recstatus(strstr(rec, "<role")) == 3 ||
	    strcmp(status, "0") == 0) {	/* imsunenrol: every role */
		unenrol_all(m, course, u);
		return 0;
	}
	for (k = 0; k < m->ne; k++)
		if (m->e[k].course == course && m->e[k].user == u &&
		    m->e[k].role == r)
			return 0;
	ck_assert_int_lt(m->ne, MAXE);
	m->e[m->ne].course = course;
	m->e[m->ne].user = u;
	m->e[m->ne].role = r;
	m->ne++;
	return 0;
}

static int
do_membership(struct moodle *m, const char *rec)
{
	char id[512];
	const char *p, *end;
	int c;

	if (!field(strstr(rec, "<sourcedid>"), "id", id, sizeof(id)) ||
	    (c = course_by(m, 1, id)) < 0)
		return 0;	/* the whole membership is skipped */
	for (p = rec; (p = strstr(p, "<member>")) != NULL; p = end) {
		if ((end = strstr(p, "</member>")) == NULL)
			return 0;
		{
			size_t n = (size_t)(end - p);
			char *one = malloc(n + 1);
			int rc;

			ck_assert_ptr_nonnull(one);
			memcpy(one, p, n);
			one[n] = '\0';
			rc = do_member(m, c, one);
			free(one);
			if (rc == -1)
				return -1;
		}
	}
	return 0;
}

static const char *const tags[] = { "person", "group", "membership" };

/* Process the first complete <tag ...>...</tag> in buf and cut it. */
static int
take_record(struct moodle *m, char *buf, int t)
{
	char open[32], close[32];
	char *p, *e, *rec;
	size_t n;
	int rc;

	snprintf(open, sizeof(open), "<%s", tags[t]);
	snprintf(close, sizeof(close), "</%s>", tags[t]);
	for (p = buf; (p = strstr(p, open)) != NULL; p++)
		if (p[strlen(open)] == '>' || p[strlen(open)] == ' ')
			break;
	if (p == NULL || (e = strstr(p, close)) == NULL)
		return 0;
	e += strlen(close);
	n = (size_t)(e - p);
	ck_assert_ptr_nonnull(rec = malloc(n + 1));
	memcpy(rec, p, n);
	rec[n] = '\0';
	m->records++;
	rc = t == 0 ? do_person(m, rec) : t == 1 ? do_group(m, rec) :
	    do_membership(m, rec);
	free(rec);
	memmove(buf, e, strlen(e) + 1);
	return rc;
}

static void
file_hash(const char *path, unsigned char out[32])
{
	size_t len;
	char *s = tu_read(path, &len);
	struct sha256 h;

	ck_assert_ptr_nonnull(s);
	sha256_init(&h);
	sha256_update(&h, s, len);
	sha256_final(&h, out);
	free(s);
}

/*
 * The cron task: 0 skipped, 1 imported, -1 aborted by an exception
 * (prev_* then stay, and the file is tried again next time).
 */
static int
moodle_import(struct moodle *m, const char *path)
{
	struct stat st;
	unsigned char h[32];
	char line[65536], *buf;
	size_t len = 0, cap = 1 << 20;
	FILE *fp;
	int t, rc = 1;

	ck_assert_int_eq(stat(path, &st), 0);
	file_hash(path, h);
	m->records = 0;
	if (strcmp(path, m->prev_path) == 0 && !(st.st_mtime > m->prev_time &&
	    memcmp(h, m->prev_hash, 32) != 0))
		return 0;
	ck_assert_ptr_nonnull(fp = fopen(path, "r"));
	ck_assert_ptr_nonnull(buf = malloc(cap));
	buf[0] = '\0';
	if (fread(line, 1, 2, fp) == 2 && (unsigned char)line[0] == 0x1f &&
	    (unsigned char)line[1] == 0x8b)
		goto done;	/* "completed", nothing imported */
	rewind(fp);
	while (rc == 1 && fgets(line, sizeof(line), fp) != NULL) {
		size_t n = strlen(line);

		ck_assert_uint_lt(len + n, cap);
		memcpy(buf + len, line, n + 1);
		len += n;
		for (t = 0; t < 3; t++) {
			char close[32];

			snprintf(close, sizeof(close), "</%s>", tags[t]);
			if (strstr(line, close) == NULL)
				continue;
			if (take_record(m, buf, t) == -1)
				rc = -1;
			len = strlen(buf);
		}
	}
done:
	fclose(fp);
	free(buf);
	if (rc == -1)
		return -1;
	snprintf(m->prev_path, sizeof(m->prev_path), "%s", path);
	m->prev_time = st.st_mtime;
	memcpy(m->prev_hash, h, 32);
	return 1;
}

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
compare(const struct moodle *m, const struct export *x)
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
		if ((u = user_by(m, 1, id)) < 0)
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
		if ((c = course_by(m, 1, id)) < 0 || !m->c[c].visible)
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
				u = user_by(m, 1, id);
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
		const struct menrol *e = &m->e[i];
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

/* sisfeed run; crash: killed right after delivery.  Returns the exit
 * status (128 + 9 when killed). */
static int
run_sisfeed(int crash, char **out)
{
	char cfg[PATH_MAX];
	char *argv[] = { (char *)tu_sisfeed(), "-c", cfg, "run", NULL };
	int rc;

	snprintf(cfg, sizeof(cfg), "%s/sisfeed.yaml", dir);
	if (crash)
		ck_assert_int_eq(setenv("SISFEED_CRASH_AFTER", "deliver", 1),
		    0);
	rc = tu_run(argv, out, TIMEOUT);
	unsetenv("SISFEED_CRASH_AFTER");
	return rc;
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
table_line(const struct moodle *m, const struct export *x, int night,
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
	static struct moodle m;
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
			rc = moodle_import(&m, file);
			ck_assert_msg(rc != -1, "night %d: import aborted: %s",
			    night, m.why);
			ck_assert_msg(*compare(&m, &x) == '\0',
			    "night %d: %s", night, compare(&m, &x));
			imports++;
			missed = 0;
			if (rnd(4) == 0) {	/* imported twice */
				ck_assert_int_eq(moodle_import(&m, file), 0);
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
	moodle_free(&m);
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
	static struct moodle m;
	static struct export x;
	char file[PATH_MAX], edir[PATH_MAX], *out;

	install(0);
	snprintf(file, sizeof(file), "%s/outbox/sisfeed.xml", dir);
	snprintf(edir, sizeof(edir), "%s/export", dir);
	export_init(&x);
	export_write(&x, edir);
	ck_assert_int_eq(run_sisfeed(0, &out), 0);
	free(out);
	ck_assert_int_eq(moodle_import(&m, file), 1);
	ck_assert_str_eq(compare(&m, &x), "");
	ck_assert_int_eq(moodle_import(&m, file), 0);	/* seen */
	x.p[3].alive = 0;				/* missed */
	export_write(&x, edir);
	ck_assert_int_eq(run_sisfeed(0, &out), 0);
	free(out);
	snprintf(x.p[4].family, sizeof(x.p[4].family), "Changed");
	export_write(&x, edir);
	ck_assert_int_eq(run_sisfeed(0, &out), 0);
	free(out);
	night_later(file);
	ck_assert_int_eq(moodle_import(&m, file), 1);
	ck_assert_str_ne(compare(&m, &x), "");
	moodle_free(&m);
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
	static struct moodle m;
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
	ck_assert_int_eq(moodle_import(&m, file), 1);
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
	ck_assert_int_eq(moodle_import(&m, file), 1);
	ck_assert_str_eq(compare(&m, &x), "");
	moodle_free(&m);
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
	static struct moodle m;
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
	ck_assert_int_eq(moodle_import(&m, file), 1);
	x.p[0].alive = 0;
	/* G254 went in; x cannot hold its name, so it leaves the compare */
	ck_assert_int_ge(c = course_by(&m, 1, "G254"), 0);
	m.c[c].visible = 0;
	ck_assert_str_eq(compare(&m, &x), "");
	moodle_free(&m);
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
	tcase_add_test(tc, test_rejects_keep_the_import_going);
	tcase_add_test(tc, test_entities_named);
	suite_add_tcase(s, tc);
	return tu_run_suite(s) == 0 ? 0 : 1;
}
