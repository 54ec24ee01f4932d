/*
 * oneroster.c -- a OneRoster 1.0, 1.1 or 1.2 CSV bulk export as the
 * source: the files of one directory (cfg->source.dir), or of the .zip
 * it names (members streamed by instream.c, named "ZIP:FILE"), read
 * with the RFC 4180 reader of csv.c, converted from source.encoding.
 *
 * Version.  The manifest's oneroster.version (1.0, 1.1, 1.2; anything
 * else is a fatal error), else 1.2 when users.csv has neither role nor
 * orgSourcedIds, else 1.1 (which reads 1.0).  1.2 moved a user's roles
 * and orgs to roles.csv (required then): each row is a membership of
 * the user in its org, and the primary row's role (else the first's)
 * the user's institution role.  userProfiles.csv is not read.
 *
 * Files.  users.csv, orgs.csv, classes.csv and enrollments.csv (and
 * roles.csv with 1.2) are required: a missing one, an empty one or one with a header and no
 * record is a fatal error naming it.  academicSessions.csv is read when
 * present, for term titles.  manifest.csv is read when present: a
 * "file.*" property whose value is "delta" is a fatal error, since a
 * delta export lists changes only and the diff needs the whole roster.
 * courses.csv and every other file are not read.
 *
 * Columns are found by header name, in any order and any case; other
 * columns are ignored.  Every column the specification requires and
 * this reader uses must be there (a fatal error names file:1 and the
 * column); status, email, parentSourcedId and classCode may be left
 * out.  In every file a record whose status is "tobedeleted" is absent
 * (not read, so the diff makes it a delete, as bulk semantics have it);
 * "active" or empty is active, "inactive" (OneRoster 1.0) inactive, any
 * other status rejects the record.
 *
 * users.csv -> persons: id sourcedId, userid username, given givenName,
 * family familyName, email email; active if enabledUser is true (any
 * case; empty is true; 1/0, yes/no also work) and the status is not
 * inactive.  The institution role follows role: student Student,
 * teacher Faculty, administrator Administrator, aide and proctor Staff,
 * guardian, parent and relative Other; any other role rejects the user.
 * Each org in orgSourcedIds (a comma-separated list in one field) makes
 * a membership of the user in that org, its role by the user's role:
 * student Learner, teacher Instructor, administrator Administrator,
 * aide TeachingAssistant, any other Member.  An org that is not there
 * rejects that one membership (field orgSourcedIds); one that was
 * rejected makes it a dependent, one that is tobedeleted a delete.
 *
 * orgs.csv -> groups: id sourcedId, type type (district, school,
 * department, local, state, national in any case, or an "ext:" value),
 * short name, no long, parent parentSourcedId.  A parent that is not
 * an org is dropped with a note (the org stays, as a root).
 *
 * classes.csv -> groups of type "class": short title (classCode when
 * the title is empty), long classCode when both are set, parent
 * schoolSourcedId (an org), term the title of the first session of
 * termSourcedIds in academicSessions.csv (and its startDate and
 * endDate as the timeframe's begin and end), or that id itself when
 * the file or the session is not there.
 *
 * enrollments.csv -> memberships of userSourcedId in classSourcedId
 * (which must be a class, not an org; a user or class that was
 * rejected makes the enrollment a dependent, one that is tobedeleted
 * a delete).  The role: source.roles first
 * (names compared in any case), then student Learner, teacher
 * Instructor, aide TeachingAssistant, administrator Administrator,
 * proctor, guardian, parent and relative Mentor; any other role
 * rejects the enrollment.  source.roles applies to the org memberships
 * of users.csv too.  Active unless the status is inactive.  Rows of
 * one user in one class in one role (several terms) merge into one
 * membership, active if any row is.  beginDate and endDate (optional
 * columns; a value that is not a date YYYY-MM-DD, or an end before the
 * begin, rejects the row) are the membership's timeframe, the merged
 * one from the earliest begin to the latest end, an empty one on any
 * row leaving that side open.  primary is not read.  A record with more fields than its header, the extra
 * ones empty, is read as if they were not there.
 *
 * Rejects are "file:line: column: reason", with the wording of csv.c
 * ("empty key", "missing value", "invalid UTF-8", "unknown ...").
 *
 * Sealing.  roster_seal_entities names one group file, and a group
 * carries no file of its own, so groups are sealed in two steps that
 * keep every reject's file and line true.  First an id used twice, in
 * one file or by an org and a class, is rejected here (every copy,
 * under its own file; field "id").  Then the orgs are added and sealed
 * with users.csv and orgs.csv: duplicate users ("id") and orgs on a
 * cycle ("parent") are rejected there, orgs whose parent is unknown
 * lose it with a note.  Then each class's school is checked against
 * the sealed orgs (a note, field schoolSourcedId, and the class stays
 * without one), the classes are added and the roster is sealed again
 * naming classes.csv, with nothing left for it to reject.  Repeated
 * memberships merge (roster_seal_members without lines); a user
 * listing one org twice is rejected here.
 *
 * r->datetime is SOURCE_DATE_EPOCH when set, else the newest
 * modification time of the files read.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sisfeed.h"

#define OR_MAXCOLS	8

/* One file of the export with its header's columns found by name. */
struct orfile {
	char			 path[PATH_MAX];
	const char *const	*cols;		/* the columns read */
	size_t			 ncols;
	long			 col[OR_MAXCOLS];	/* header index, -1 */
	long			 scol;		/* "status", or -1 */
	size_t			 nhdr;
	struct csv_reader	*cr;
	char			**f;		/* the current record */
	size_t			*l;
	size_t			 records;
	int			 active;	/* the record's status */
	int			 fields;	/* f holds the record's fields */
	struct rejects		*rj;
	/* Called before every reject, to keep rejects in line order. */
	int			(*flush)(void *);
	void			*flusharg;
};

/* of_next's results besides 0 (end) and -1 (fatal). */
enum { REC_OK = 1, REC_REJECTED = 2, REC_DELETED = 3 };

/* A session of academicSessions.csv. */
struct session {
	const char		*id;
	const char		*title;
	const char		*begin, *end;	/* startDate, endDate */
	uint32_t		 line;
};

/*
 * A user, org or class that is not in the roster because it was
 * rejected or is tobedeleted: what depends on it is a dependent or a
 * delete, not an error of its own.
 */
enum { G_USER, G_ORG, G_CLASS };
struct gone {
	const char		*key;		/* in the context's arena */
	uint32_t		 line;
	uint8_t			 kind;		/* G_* */
	uint8_t			 deleted;	/* tobedeleted, not rejected */
};

/* A row of OneRoster 1.2 roles.csv, applied once the roster is sealed. */
struct rolerow {
	const char		*user;		/* in the context's arena */
	const char		*org;
	const struct orrole	*ro;
	uint32_t		 line;
	uint8_t			 primary;	/* roleType primary */
	uint8_t			 role;		/* IMS roletype in the org */
	uint8_t			 active;
};

/* The orgs of one user, made memberships once the roster is sealed. */
struct orgpend {
	const char		*user;		/* in the roster's arena */
	const char		*orgs;		/* in the context's arena */
	uint32_t		 line;
	uint8_t			 role;
	uint8_t			 active;
};

struct orctx {
	const struct config	*cfg;
	struct roster		*r;
	struct rejects		*rj;
	time_t			 newest;
	struct arena		 tmp;
	struct session		*sess;
	size_t			 nsess, capsess;
	struct orgpend		*pend;
	size_t			 npend, cappend;
	struct roster		 og, cg;	/* orgs, classes unsealed */
	uint8_t			*odrop, *cdrop;
	struct gone		*gone;
	size_t			 ngone, capgone;
	int			 version;	/* 10, 11, 12; 0 not stated */
	char			 vline[64];	/* where the version came from */
	struct rolerow		*roles;		/* 1.2 roles.csv */
	size_t			 nroles, caproles;
	char			 rpath[PATH_MAX];
	char			*tok;
	size_t			 tokcap;
	struct keyindex		 pk, gk;	/* the sealed persons, groups */
	char			 upath[PATH_MAX], opath[PATH_MAX];
	char			 cpath[PATH_MAX], epath[PATH_MAX];
	struct zipbundle	*zb;		/* source.dir is a .zip */
};

/* A OneRoster role: what it means for a user and in a membership. */
static const struct orrole {
	const char	*name;
	const char	*inst;		/* IMS institution role of a user */
	uint8_t		 enrol;		/* IMS roletype in a class */
	uint8_t		 org;		/* IMS roletype in the user's orgs */
} orroles[] = {
	{ "student",		"Student",	 1, 1 },
	{ "teacher",		"Faculty",	 2, 2 },
	{ "administrator",	"Administrator", 7, 7 },
	{ "aide",		"Staff",	 8, 8 },
	{ "proctor",		"Staff",	 6, 4 },
	{ "guardian",		"Other",	 6, 4 },
	{ "parent",		"Other",	 6, 4 },
	{ "relative",		"Other",	 6, 4 },
	/* OneRoster 1.2 */
	{ "districtAdministrator", "Administrator", 7, 7 },
	{ "siteAdministrator",	"Administrator", 7, 7 },
	{ "systemAdministrator", "Administrator", 7, 7 },
	{ "principal",		"Administrator", 7, 7 },
	{ "counselor",		"Staff",	 6, 4 },
};

static const char *const orgtypes[] = {
	"district", "school", "department", "local", "state", "national",
};

/* Grow *v to hold n + 1 elements of size sz.  0 or -1. */
static int
grow(void **v, size_t *cap, size_t n, size_t sz)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	if ((nv = reallocarray(*v, ncap, sz)) == NULL)
		return error_sys("oneroster");
	*v = nv;
	*cap = ncap;
	return 0;
}


/* ------------------------------------------------------------------ */
/* One file.                                                           */

static void
of_close(struct orfile *f)
{
	csv_close(f->cr);
	f->cr = NULL;
}

/*
 * Open the member name of the zip bundle as f's reader (f->path
 * "ZIP:NAME").  0, 1 if it is optional and absent, or -1.
 */
static int
of_open_zip(struct orfile *f, struct orctx *x, const char *name,
    int optional)
{
	struct instream *in;
	int absent;

	if ((in = instream_open_zip(x->zb, name, &absent)) == NULL) {
		if (absent && optional)
			return 1;
		if (absent)
			return error_set("%s:%s: missing", x->cfg->source.dir,
			    name);
		return -1;
	}
	if (instream_set_encoding(in, x->cfg->source.encoding) == -1) {
		instream_close(in);
		return -1;
	}
	if (path_fmt(f->path, sizeof(f->path), "%s:%s", x->cfg->source.dir,
	    name) == -1) {
		instream_close(in);
		return -1;
	}
	if ((f->cr = csv_open_stream(in, f->path, ',')) == NULL)
		return -1;
	return 0;
}

/*
 * Open dir/name (or the member name of the zip) and find the columns cols[0..ncols) in its header (and
 * "status" when status is set); a column whose bit is in required must
 * be there.  Returns 0, 1 if the file is optional and absent, or -1
 * (error set: no file, empty file, a column missing or twice).  The
 * file's mtime updates *newest.  of_close it in every case.
 */
static int
of_open(struct orfile *f, struct orctx *x, const char *name,
    const char *const *cols, size_t ncols, unsigned required, int status,
    int optional)
{
	const char *dir = x->cfg->source.dir;
	size_t dlen = strlen(dir), i, j;
	struct stat st;
	char **h, hint[512];
	size_t *hl;
	int n, rc;

	memset(f, 0, sizeof(*f));
	f->cols = cols;
	f->ncols = ncols;
	f->rj = x->rj;
	f->scol = -1;
	for (i = 0; i < OR_MAXCOLS; i++)
		f->col[i] = -1;
	if (x->zb != NULL) {
		if ((rc = of_open_zip(f, x, name, optional)) != 0)
			return rc;
	} else {
		if (path_fmt(f->path, sizeof(f->path), "%s%s%s", dir,
		    dlen > 0 && dir[dlen - 1] == '/' ? "" : "/", name) == -1)
			return -1;
		if (stat(f->path, &st) == -1) {
			if (errno == ENOENT && optional)
				return 1;
			return error_sys("%s", f->path);
		}
		if (st.st_mtime > x->newest)
			x->newest = st.st_mtime;
		if ((f->cr = csv_open(f->path, ',')) == NULL ||
		    csv_set_encoding(f->cr, x->cfg->source.encoding) == -1)
			return -1;
	}
	if ((n = csv_next_header(f->cr, &h, &hl)) == -1)
		return -1;
	if (n == 0)
		return error_set("%s: empty file (no header)", f->path);
	f->nhdr = (size_t)n;
	for (j = 0; j < f->nhdr; j++) {
		if (status && csv_header_match(h[j], "status")) {
			if (f->scol != -1)
				return error_set("%s:%lu: column 'status' "
				    "appears twice in header", f->path,
				    csv_line(f->cr));
			f->scol = (long)j;
		}
		for (i = 0; i < ncols; i++) {
			if (!csv_header_match(h[j], cols[i]))
				continue;
			if (f->col[i] != -1)
				return error_set("%s:%lu: column '%s' appears "
				    "twice in header", f->path,
				    csv_line(f->cr), cols[i]);
			f->col[i] = (long)j;
		}
	}
	for (i = 0; i < ncols; i++)
		if ((required & (1u << i)) && f->col[i] == -1)
			return error_set("%s:%lu: column '%s' not in header%s",
			    f->path, csv_line(f->cr), cols[i],
			    csv_header_hint(h, f->nhdr, ',', hint,
			    sizeof(hint)));
	return 0;
}

/* The value of column i in the current record ("" if not there). */
static const char *
of_val(const struct orfile *f, size_t i)
{
	return f->col[i] == -1 ? "" : f->f[f->col[i]];
}

static size_t
of_len(const struct orfile *f, size_t i)
{
	return f->col[i] == -1 ? 0 : f->l[f->col[i]];
}

/*
 * Reject the current record: "file:line: field: reason".  Returns
 * REC_REJECTED, or -1 on an I/O error.
 */
static int
of_reject(struct orfile *f, const char *field, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

static int
of_reject(struct orfile *f, const char *field, const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	if (f->flush != NULL && f->flush(f->flusharg) == -1)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return rejects_add(f->rj, f->path, csv_line(f->cr), field, "%s",
	    msg) == -1 ? -1 : REC_REJECTED;
}

/* Reject for column i, quoting its value when there is one. */
static int
of_reject_col(struct orfile *f, size_t i, const char *reason)
{
	char sb[64];

	if (of_len(f, i) == 0)
		return of_reject(f, f->cols[i], "%s", reason);
	return of_reject(f, f->cols[i], "%s '%s'", reason,
	    rejects_quote(of_val(f, i), of_len(f, i), sb, sizeof(sb)));
}

/*
 * Reject a malformed record with the reader's reason, worded as csv.c
 * does: "record: quote inside unquoted field (column 4)".
 */
static int
of_malformed(struct orfile *f)
{
	char pre[PATH_MAX + 32], msg[512];
	const char *e = error_last();
	unsigned long col;
	size_t n;
	int off = 0;

	snprintf(pre, sizeof(pre), "%s:%lu: ", f->path, csv_line(f->cr));
	n = strlen(pre);
	if (strncmp(e, pre, n) == 0)
		e += n;
	if (sscanf(e, "field %lu: %n", &col, &off) == 1 && off > 0)
		snprintf(msg, sizeof(msg), "%s (column %lu)", e + off, col);
	else
		snprintf(msg, sizeof(msg), "%s", e);
	return of_reject(f, "record", "%s", msg);
}

/* 1 if field c of the current record can be stored (csv_field_fault). */
static int
of_clean(const struct orfile *f, size_t c, const char **why)
{
	return (*why = csv_field_fault(f->f[c], f->l[c])) == NULL;
}

/*
 * Read the next record and do the common checks: well formed, as many
 * fields as the header, a known status, valid UTF-8 and no NUL byte in
 * every column read.  Returns REC_OK (record in f->f, status in
 * f->active), REC_REJECTED, REC_DELETED (status tobedeleted: skip it),
 * 0 at the end, or -1 (fatal; also at the end when need_data and there
 * was no record at all).
 */
static int
of_next(struct orfile *f, int need_data)
{
	const char *v, *why;
	size_t i, len;
	char sb[64];
	int n;

	if ((n = csv_next(f->cr, &f->f, &f->l)) == 0) {
		if (need_data && f->records == 0)
			return error_set("%s: no data records (header only)",
			    f->path);
		return 0;
	}
	if (n == -1 && csv_fatal(f->cr))
		return -1;
	f->records++;
	f->rj->records++;
	f->fields = n > 0;
	if (n == -1)
		return of_malformed(f);
	if ((size_t)n != f->nhdr && !csv_extra_empty(f->l, (size_t)n, f->nhdr))
		return of_reject(f, "record", "%d fields, header has %zu", n,
		    f->nhdr);
	f->active = 1;
	for (i = 0; i < f->ncols; i++)
		if (f->col[i] != -1)
			csv_trim_field(f->f, f->l, (size_t)f->col[i]);
	if (f->scol != -1) {
		csv_trim_field(f->f, f->l, (size_t)f->scol);
		v = f->f[f->scol];
		len = f->l[f->scol];
		if (!of_clean(f, (size_t)f->scol, &why))
			return of_reject(f, "status", "%s", why);
		if (strcasecmp(v, "tobedeleted") == 0)
			return REC_DELETED;
		if (strcasecmp(v, "inactive") == 0)
			f->active = 0;
		else if (len != 0 && strcasecmp(v, "active") != 0)
			return of_reject(f, "status", "unknown status '%s'",
			    rejects_quote(v, len, sb, sizeof(sb)));
	}
	for (i = 0; i < f->ncols; i++)
		if (f->col[i] != -1 && !of_clean(f, (size_t)f->col[i], &why))
			return of_reject(f, f->cols[i], "%s", why);
	return REC_OK;
}

/* ------------------------------------------------------------------ */
/* Small helpers.                                                      */

/*
 * The next item of a comma-separated list at *sp, blanks around it
 * trimmed: its start, length in *len, *sp moved past it.  NULL when
 * the list is done.  Empty items are skipped.
 */
static const char *
list_next(const char **sp, size_t *len)
{
	const char *s = *sp, *b, *e;

	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0') {
			*sp = s;
			return NULL;
		}
		b = s;
		while (*s != '\0' && *s != ',')
			s++;
		e = s;
		if (*s == ',')
			s++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > b)
			break;
	}
	*sp = s;
	*len = (size_t)(e - b);
	return b;
}

/* Copy s[0..len) into the context's token buffer.  NULL on no memory. */
static const char *
tok_set(struct orctx *x, const char *s, size_t len)
{
	char *p;

	if (len + 1 > x->tokcap) {
		if ((p = realloc(x->tok, len + 1)) == NULL) {
			error_sys("oneroster");
			return NULL;
		}
		x->tok = p;
		x->tokcap = len + 1;
	}
	memcpy(x->tok, s, len);
	x->tok[len] = '\0';
	return x->tok;
}

static const struct orrole *
orrole_find(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(orroles) / sizeof(orroles[0]); i++)
		if (strcasecmp(s, orroles[i].name) == 0)
			return &orroles[i];
	return NULL;
}

/* The IMS roletype source.roles gives a role name, or 0. */
static int
config_role(const struct config *cfg, const char *s)
{
	size_t i;

	for (i = 0; i < cfg->source.nroles; i++)
		if (cfg->source.roles[i].name != NULL &&
		    strcasecmp(cfg->source.roles[i].name, s) == 0)
			return cfg->source.roles[i].role >= 1 &&
			    cfg->source.roles[i].role <= 8 ?
			    cfg->source.roles[i].role : 0;
	return 0;
}

/* Append a membership, its timeframe begin..end (day numbers, 0
 * open).  0 or -1. */
static int
member_add(struct orctx *x, long gi, long pi, int role, int active,
    unsigned begin, unsigned end)
{
	struct membership m;

	memset(&m, 0, sizeof(m));
	m.group = (uint32_t)gi;
	m.person = (uint32_t)pi;
	m.role = (uint8_t)role;
	m.active = (uint8_t)(active != 0);
	m.begin = (uint16_t)begin;
	m.end = (uint16_t)end;
	return roster_add_member(x->r, &m);
}

/*
 * Remember the current record of f (rc REC_REJECTED or REC_DELETED) as
 * gone, by its sourcedId (column 0 of every entity file).  0 or -1.
 */
static int gone_key(struct orctx *, int, const char *, size_t, uint32_t,
    int);

static int
gone_add(struct orctx *x, const struct orfile *f, int kind, int rc)
{
	if ((rc != REC_REJECTED && rc != REC_DELETED) || !f->fields ||
	    f->col[0] == -1 || of_len(f, 0) == 0)
		return 0;
	return gone_key(x, kind, of_val(f, 0), of_len(f, 0),
	    (uint32_t)csv_line(f->cr), rc == REC_DELETED);
}

/* Remember key[0..len) of kind, from line, as gone.  0 or -1. */
static int
gone_key(struct orctx *x, int kind, const char *key, size_t len,
    uint32_t line, int deleted)
{
	struct gone *g;

	if (grow((void **)&x->gone, &x->capgone, x->ngone,
	    sizeof(*x->gone)) == -1)
		return -1;
	g = &x->gone[x->ngone];
	if ((g->key = arena_strndup(&x->tmp, key, len)) == NULL)
		return -1;
	g->line = line;
	g->kind = (uint8_t)kind;
	g->deleted = (uint8_t)(deleted != 0);
	x->ngone++;
	return 0;
}

/* roster_seal_entities' duplicate key (rj->dup): a user whose every
 * copy was rejected is gone, so what names it is a dependent. */
static int
gone_dup(void *arg, const char *what, const char *key, uint32_t line)
{
	if (strcmp(what, "person") != 0)
		return 0;
	return gone_key(arg, G_USER, key, strlen(key), line, 0);
}

static int
gone_cmp(const void *a, const void *b)
{
	const struct gone *p = a, *q = b;
	int c = strcmp(p->key, q->key);

	if (c != 0)
		return c;
	return p->kind != q->kind ? (p->kind < q->kind ? -1 : 1) : 0;
}

/* The gone record of this kind and key, or NULL.  Needs gone sorted. */
static const struct gone *
gone_find(const struct orctx *x, int kind, const char *key)
{
	struct gone k;

	if (x->ngone == 0)
		return NULL;
	memset(&k, 0, sizeof(k));
	k.key = key;
	k.kind = (uint8_t)kind;
	return bsearch(&k, x->gone, x->ngone, sizeof(*x->gone), gone_cmp);
}

/*
 * A reference from the record at file:line (field) to a missing key of
 * kind: a tobedeleted one makes the record a delete (skipped, 0), a
 * rejected one a dependent, anything else a reject "unknown WHAT".
 * Returns REC_DELETED or REC_REJECTED, or -1 on I/O error.
 */
static int
ref_missing(struct orctx *x, const char *file, unsigned long line,
    const char *field, int kind, const char *key)
{
	static const char *const what[] = { "user", "org", "class" };
	static const char *const from[] = { "users.csv", "orgs.csv",
		"classes.csv" };
	const struct gone *g = gone_find(x, kind, key);
	char sb[64];

	rejects_quote(key, strlen(key), sb, sizeof(sb));
	if (g != NULL && g->deleted)
		return REC_DELETED;
	if (g != NULL)
		return rejects_dependent(x->rj, file, line, field,
		    "%s '%s' (%s line %u)", what[kind], sb, from[kind],
		    g->line) == -1 ? -1 : REC_REJECTED;
	return rejects_add(x->rj, file, line, field, "unknown %s '%s'",
	    what[kind], sb) == -1 ? -1 : REC_REJECTED;
}

/* ------------------------------------------------------------------ */
/* manifest.csv                                                        */

enum { M_NAME, M_VALUE, NMCOLS };
static const char *const mcols[NMCOLS] = { "propertyName", "value" };

/*
 * The manifest's oneroster.version into x->version: "1.0", "1.1" or
 * "1.2" (a patch level such as "1.1.1" is its minor version).  0, or -1
 * for another version.
 */
static int
manifest_version(struct orctx *x, const struct orfile *f)
{
	const char *v = of_val(f, M_VALUE);
	char sb[64];

	if (strncmp(v, "1.0", 3) == 0 && (v[3] == '\0' || v[3] == '.'))
		x->version = 10;
	else if (strncmp(v, "1.1", 3) == 0 && (v[3] == '\0' || v[3] == '.'))
		x->version = 11;
	else if (strncmp(v, "1.2", 3) == 0 && (v[3] == '\0' || v[3] == '.'))
		x->version = 12;
	else
		return error_set("%s:%lu: oneroster.version '%s' is not "
		    "supported (1.0, 1.1 or 1.2)", f->path, csv_line(f->cr),
		    rejects_quote(v, of_len(f, M_VALUE), sb, sizeof(sb)));
	snprintf(x->vline, sizeof(x->vline), "manifest.csv line %lu",
	    csv_line(f->cr));
	return 0;
}

/*
 * Refuse a delta export and note the OneRoster version.  The manifest
 * is optional; a malformed one is a fatal error (it could hide a
 * delta).  0 or -1.
 */
static int
read_manifest(struct orctx *x)
{
	struct orfile f;
	int rc, n;

	if ((rc = of_open(&f, x, "manifest.csv", mcols, NMCOLS,
	    1u << M_NAME | 1u << M_VALUE, 0, 1)) != 0) {
		of_close(&f);
		return rc == 1 ? 0 : -1;
	}
	while ((n = csv_next(f.cr, &f.f, &f.l)) > 0) {
		if ((size_t)n != f.nhdr) {
			error_set("%s:%lu: %d fields, header has %zu", f.path,
			    csv_line(f.cr), n, f.nhdr);
			break;
		}
		if (strncasecmp(of_val(&f, M_NAME), "file.", 5) == 0 &&
		    strcasecmp(of_val(&f, M_VALUE), "delta") == 0) {
			error_set("%s:%lu: %.64s is delta: delta OneRoster "
			    "exports are not supported; export bulk", f.path,
			    csv_line(f.cr), of_val(&f, M_NAME));
			break;
		}
		if (strcasecmp(of_val(&f, M_NAME), "oneroster.version") == 0 &&
		    manifest_version(x, &f) == -1) {
			n = -1;
			break;
		}
	}
	of_close(&f);
	return n == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* academicSessions.csv                                                */

enum { S_ID, S_TITLE, S_START, S_END, NSCOLS };
static const char *const scols[NSCOLS] = { "sourcedId", "title",
	"startDate", "endDate" };

static int
session_cmp(const void *a, const void *b)
{
	const struct session *p = a, *q = b;
	int c = strcmp(p->id, q->id);

	if (c != 0)
		return c;
	return p->line < q->line ? -1 : p->line > q->line;
}

/*
 * Sort the sessions and drop every copy of a duplicated id, each
 * rejected (a term title is never guessed).  0 or -1.
 */
static int
sessions_seal(struct orctx *x, const char *path)
{
	size_t i = 0, j, k, out = 0;

	if (x->nsess > 1)
		qsort(x->sess, x->nsess, sizeof(*x->sess), session_cmp);
	while (i < x->nsess) {
		for (j = i + 1; j < x->nsess &&
		    strcmp(x->sess[j].id, x->sess[i].id) == 0; j++)
			;
		if (j - i == 1)
			x->sess[out++] = x->sess[i];
		else
			for (k = i; k < j; k++)
				if (rejects_add(x->rj, path, x->sess[k].line,
				    "sourcedId", "duplicate session key '%s' "
				    "(also on line %u)", x->sess[k].id,
				    x->sess[k == i ? i + 1 : i].line) == -1)
					return -1;
		i = j;
	}
	x->nsess = out;
	return 0;
}

/* The session with this id, or NULL. */
static const struct session *
session_find(const struct orctx *x, const char *id)
{
	size_t lo = 0, hi = x->nsess, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(id, x->sess[mid].id)) == 0)
			return &x->sess[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Read the optional academicSessions.csv.  0 or -1. */
static int
read_sessions(struct orctx *x)
{
	struct orfile f;
	struct session *s;
	int rc;

	if ((rc = of_open(&f, x, "academicSessions.csv", scols, NSCOLS,
	    1u << S_ID | 1u << S_TITLE, 1, 1)) != 0) {
		of_close(&f);
		return rc == 1 ? 0 : -1;
	}
	while ((rc = of_next(&f, 0)) > 0) {
		if (rc != REC_OK)
			continue;
		if (of_len(&f, S_ID) == 0)
			rc = of_reject_col(&f, S_ID, "empty key");
		else if (of_len(&f, S_TITLE) == 0)
			rc = of_reject_col(&f, S_TITLE, "missing value");
		if (rc == -1)
			break;
		if (rc != REC_OK)
			continue;
		if ((rc = grow((void **)&x->sess, &x->capsess, x->nsess,
		    sizeof(*x->sess))) == -1)
			break;
		s = &x->sess[x->nsess];
		if ((s->id = arena_strndup(&x->tmp, of_val(&f, S_ID),
		    of_len(&f, S_ID))) == NULL ||
		    (s->title = arena_strndup(&x->tmp, of_val(&f, S_TITLE),
		    of_len(&f, S_TITLE))) == NULL ||
		    (s->begin = arena_strndup(&x->tmp, of_val(&f, S_START),
		    of_len(&f, S_START))) == NULL ||
		    (s->end = arena_strndup(&x->tmp, of_val(&f, S_END),
		    of_len(&f, S_END))) == NULL) {
			rc = -1;
			break;
		}
		s->line = (uint32_t)csv_line(f.cr);
		x->nsess++;
	}
	if (rc == 0)
		rc = sessions_seal(x, f.path);
	of_close(&f);
	return rc;
}

/* ------------------------------------------------------------------ */
/* users.csv                                                           */

enum { U_ID, U_ENABLED, U_ORGS, U_ROLE, U_USERNAME, U_GIVEN, U_FAMILY,
	U_EMAIL, NUCOLS };
static const char *const ucols[NUCOLS] = { "sourcedId", "enabledUser",
	"orgSourcedIds", "role", "username", "givenName", "familyName",
	"email" };

/* Keep the orgs of the user just added, for org memberships. */
static int
pend_add(struct orctx *x, const struct orfile *f, int role)
{
	struct orgpend *p;

	if (grow((void **)&x->pend, &x->cappend, x->npend,
	    sizeof(*x->pend)) == -1)
		return -1;
	p = &x->pend[x->npend];
	p->user = x->r->persons[x->r->npersons - 1].id;
	if ((p->orgs = arena_strndup(&x->tmp, of_val(f, U_ORGS),
	    of_len(f, U_ORGS))) == NULL)
		return -1;
	p->line = (uint32_t)csv_line(f->cr);
	p->role = (uint8_t)role;
	p->active = (uint8_t)f->active;
	x->npend++;
	return 0;
}

/*
 * Check the current user record and add it.  REC_OK, REC_REJECTED or
 * -1.
 */
static int
user_add(struct orctx *x, struct orfile *f)
{
	const struct orrole *ro = NULL;
	struct person p;
	int enabled = 1, role;

	if (of_len(f, U_ID) == 0)
		return of_reject_col(f, U_ID, "empty key");
	if (of_len(f, U_GIVEN) == 0)
		return of_reject_col(f, U_GIVEN, "missing value");
	if (of_len(f, U_FAMILY) == 0)
		return of_reject_col(f, U_FAMILY, "missing value");
	if (of_len(f, U_ENABLED) > 0 &&
	    (enabled = status_parse(of_val(f, U_ENABLED))) == -1)
		return of_reject_col(f, U_ENABLED, "unknown status");
	if (x->version == 12)
		;	/* roles come from roles.csv */
	else if (of_len(f, U_ROLE) == 0)
		return of_reject_col(f, U_ROLE, "missing value");
	else if ((ro = orrole_find(of_val(f, U_ROLE))) == NULL)
		return of_reject_col(f, U_ROLE, "unknown role");
	memset(&p, 0, sizeof(p));
	p.id = of_val(f, U_ID);
	p.userid = of_val(f, U_USERNAME);
	p.given = of_val(f, U_GIVEN);
	p.family = of_val(f, U_FAMILY);
	p.email = of_val(f, U_EMAIL);
	p.role = ro != NULL ? ro->inst : "";
	p.line = (uint32_t)csv_line(f->cr);
	p.active = (uint8_t)(enabled && f->active);
	if (roster_add_person(x->r, &p) == -1)
		return -1;
	if (ro == NULL || of_len(f, U_ORGS) == 0)
		return REC_OK;
	if ((role = config_role(x->cfg, of_val(f, U_ROLE))) == 0)
		role = ro->org;
	return pend_add(x, f, role) == -1 ? -1 : REC_OK;
}

/*
 * The version from users.csv's header when the manifest does not state
 * one (1.2 moved role and orgSourcedIds to roles.csv), and the columns
 * that version needs.  0 or -1.
 */
static int
users_version(struct orctx *x, const struct orfile *f)
{
	static const int need[] = { U_ROLE, U_ORGS };
	size_t i;

	if (x->version == 0) {
		x->version = f->col[U_ROLE] == -1 && f->col[U_ORGS] == -1 ?
		    12 : 11;
		snprintf(x->vline, sizeof(x->vline), "users.csv header");
	}
	if (x->version == 12)
		return 0;
	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (f->col[need[i]] == -1)
			return error_set("%s:%lu: column '%s' not in header "
			    "(OneRoster 1.%d, from the %s; 1.2 has roles.csv "
			    "instead)", f->path, csv_line(f->cr),
			    ucols[need[i]], x->version % 10, x->vline);
	return 0;
}

static int
read_users(struct orctx *x)
{
	struct orfile f;
	int rc;

	if (of_open(&f, x, "users.csv", ucols, NUCOLS,
	    ((1u << NUCOLS) - 1) & ~(1u << U_EMAIL | 1u << U_ROLE |
	    1u << U_ORGS), 1, 0) == -1 || users_version(x, &f) == -1) {
		of_close(&f);
		return -1;
	}
	memcpy(x->upath, f.path, sizeof(x->upath));
	while ((rc = of_next(&f, 1)) > 0) {
		if (rc == REC_OK && (rc = user_add(x, &f)) == -1)
			break;
		if ((rc = gone_add(x, &f, G_USER, rc)) == -1)
			break;
		rc = 1;
	}
	of_close(&f);
	return rc;
}

/* ------------------------------------------------------------------ */
/* roles.csv (OneRoster 1.2)                                           */

enum { R_USER, R_TYPE, R_ROLE, R_ORG, NRCOLS };
static const char *const rcols[NRCOLS] = { "userSourcedId", "roleType",
	"role", "orgSourcedId" };

/* Check the current roles.csv row and keep it.  REC_* or -1. */
static int
role_row_add(struct orctx *x, struct orfile *f)
{
	const struct orrole *ro;
	struct rolerow *rr;
	int role;

	if (of_len(f, R_USER) == 0)
		return of_reject_col(f, R_USER, "empty key");
	if (of_len(f, R_ORG) == 0)
		return of_reject_col(f, R_ORG, "empty key");
	if (of_len(f, R_ROLE) == 0)
		return of_reject_col(f, R_ROLE, "missing value");
	if ((ro = orrole_find(of_val(f, R_ROLE))) == NULL)
		return of_reject_col(f, R_ROLE, "unknown role");
	if ((role = config_role(x->cfg, of_val(f, R_ROLE))) == 0)
		role = ro->org;
	if (grow((void **)&x->roles, &x->caproles, x->nroles,
	    sizeof(*x->roles)) == -1)
		return -1;
	rr = &x->roles[x->nroles];
	if ((rr->user = arena_strndup(&x->tmp, of_val(f, R_USER),
	    of_len(f, R_USER))) == NULL ||
	    (rr->org = arena_strndup(&x->tmp, of_val(f, R_ORG),
	    of_len(f, R_ORG))) == NULL)
		return -1;
	rr->ro = ro;
	rr->line = (uint32_t)csv_line(f->cr);
	rr->primary = strcasecmp(of_val(f, R_TYPE), "primary") == 0;
	rr->role = (uint8_t)role;
	rr->active = (uint8_t)f->active;
	x->nroles++;
	return REC_OK;
}

/* Read roles.csv, required with OneRoster 1.2.  0 or -1. */
static int
read_roles(struct orctx *x)
{
	struct orfile f;
	int rc;

	if (x->version != 12)
		return 0;
	if ((rc = of_open(&f, x, "roles.csv", rcols, NRCOLS,
	    (1u << NRCOLS) - 1, 1, 1)) != 0) {
		of_close(&f);
		if (rc == 1)
			error_set("%s: missing: OneRoster 1.2 (from the %s) "
			    "has the users' roles and orgs there", f.path,
			    x->vline);
		return -1;
	}
	memcpy(x->rpath, f.path, sizeof(x->rpath));
	while ((rc = of_next(&f, 0)) > 0)
		if (rc == REC_OK && (rc = role_row_add(x, &f)) == -1)
			break;
	of_close(&f);
	return rc;
}

static long find_person(const struct orctx *, const char *);
static long find_org(const struct orctx *, const char *);

/*
 * Apply the 1.2 role rows to the sealed roster: each a membership of
 * the user in the org, and the institution role of the user from the
 * primary row (else the first).  0 or -1.
 */
static int
roles_apply(struct orctx *x)
{
	const struct rolerow *rr;
	struct person *p;
	size_t i;
	long pi, gi;
	int rc;

	for (i = 0; i < x->nroles; i++) {
		rr = &x->roles[i];
		if ((pi = find_person(x, rr->user)) < 0) {
			rc = ref_missing(x, x->rpath, rr->line,
			    "userSourcedId", G_USER, rr->user);
			if (rc == -1)
				return -1;
			continue;
		}
		p = &x->r->persons[pi];
		if (*p->role == '\0' || rr->primary)
			p->role = rr->ro->inst;
		if ((gi = find_org(x, rr->org)) < 0) {
			if (ref_missing(x, x->rpath, rr->line, "orgSourcedId",
			    G_ORG, rr->org) == -1)
				return -1;
			continue;
		}
		if (member_add(x, gi, pi, rr->role, rr->active, 0, 0) == -1)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* orgs.csv, classes.csv                                               */

enum { O_ID, O_NAME, O_TYPE, O_PARENT, NOCOLS };
static const char *const ocols[NOCOLS] = { "sourcedId", "name", "type",
	"parentSourcedId" };

/* An org type as written to the output, or NULL if unknown. */
static const char *
orgtype(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(orgtypes) / sizeof(orgtypes[0]); i++)
		if (strcasecmp(s, orgtypes[i]) == 0)
			return orgtypes[i];
	if (strncasecmp(s, "ext:", 4) == 0 && s[4] != '\0')
		return s;
	return NULL;
}

static int
org_add(struct orctx *x, struct orfile *f)
{
	struct group g;
	const char *type;

	if (of_len(f, O_ID) == 0)
		return of_reject_col(f, O_ID, "empty key");
	if (of_len(f, O_NAME) == 0)
		return of_reject_col(f, O_NAME, "missing value");
	if (of_len(f, O_TYPE) == 0)
		return of_reject_col(f, O_TYPE, "missing value");
	if ((type = orgtype(of_val(f, O_TYPE))) == NULL)
		return of_reject_col(f, O_TYPE, "unknown org type");
	memset(&g, 0, sizeof(g));
	g.id = of_val(f, O_ID);
	g.type = type;
	g.shortname = of_val(f, O_NAME);
	g.longname = "";
	g.parent = of_val(f, O_PARENT);
	g.term = "";
	g.line = (uint32_t)csv_line(f->cr);
	return roster_add_group(&x->og, &g) == -1 ? -1 : REC_OK;
}

static int
read_orgs(struct orctx *x)
{
	struct orfile f;
	int rc;

	if (of_open(&f, x, "orgs.csv", ocols, NOCOLS,
	    1u << O_ID | 1u << O_NAME | 1u << O_TYPE, 1, 0) == -1) {
		of_close(&f);
		return -1;
	}
	memcpy(x->opath, f.path, sizeof(x->opath));
	while ((rc = of_next(&f, 1)) > 0) {
		if (rc == REC_OK && (rc = org_add(x, &f)) == -1)
			break;
		if ((rc = gone_add(x, &f, G_ORG, rc)) == -1)
			break;
		rc = 1;
	}
	of_close(&f);
	return rc;
}

enum { C_ID, C_TITLE, C_CODE, C_SCHOOL, C_TERMS, NCCOLS };
static const char *const ccols[NCCOLS] = { "sourcedId", "title",
	"classCode", "schoolSourcedId", "termSourcedIds" };

static int
class_add(struct orctx *x, struct orfile *f)
{
	struct group g;
	const char *terms = of_val(f, C_TERMS), *t;
	const struct session *se;
	size_t len;

	if (of_len(f, C_ID) == 0)
		return of_reject_col(f, C_ID, "empty key");
	if (of_len(f, C_TITLE) == 0 && of_len(f, C_CODE) == 0)
		return of_reject_col(f, C_TITLE, "missing value");
	memset(&g, 0, sizeof(g));
	g.id = of_val(f, C_ID);
	g.type = "class";
	if (of_len(f, C_TITLE) > 0) {
		g.shortname = of_val(f, C_TITLE);
		g.longname = of_val(f, C_CODE);
	} else {
		g.shortname = of_val(f, C_CODE);
		g.longname = "";
	}
	g.parent = of_val(f, C_SCHOOL);
	g.term = "";
	if ((t = list_next(&terms, &len)) != NULL) {
		if ((t = tok_set(x, t, len)) == NULL)
			return -1;
		if ((se = session_find(x, t)) != NULL) {
			g.term = se->title;
			g.begin = se->begin;
			g.end = se->end;
		} else
			g.term = t;
	}
	g.line = (uint32_t)csv_line(f->cr);
	return roster_add_group(&x->cg, &g) == -1 ? -1 : REC_OK;
}

static int
read_classes(struct orctx *x)
{
	struct orfile f;
	int rc;

	if (of_open(&f, x, "classes.csv", ccols, NCCOLS,
	    ((1u << NCCOLS) - 1) & ~(1u << C_CODE), 1, 0) == -1) {
		of_close(&f);
		return -1;
	}
	memcpy(x->cpath, f.path, sizeof(x->cpath));
	while ((rc = of_next(&f, 1)) > 0) {
		if (rc == REC_OK && (rc = class_add(x, &f)) == -1)
			break;
		if ((rc = gone_add(x, &f, G_CLASS, rc)) == -1)
			break;
		rc = 1;
	}
	of_close(&f);
	return rc;
}

/* A group's key and where it came from, to find ids used twice. */
struct gref {
	const char	*id;
	uint32_t	 line;
	uint32_t	 idx;
	uint8_t		 cls;		/* 0 orgs.csv, 1 classes.csv */
};

static int
gref_cmp(const void *a, const void *b)
{
	const struct gref *p = a, *q = b;
	int c = strcmp(p->id, q->id);

	if (c != 0)
		return c;
	if (p->cls != q->cls)
		return p->cls < q->cls ? -1 : 1;
	return p->line < q->line ? -1 : p->line > q->line;
}

/*
 * Mark every org and class whose id occurs more than once in the two
 * files, rejecting each copy under its own file and line.  0 or -1.
 */
static int
groups_dedupe(struct orctx *x)
{
	static const char *const base[2] = { "orgs.csv", "classes.csv" };
	const char *path[2] = { x->opath, x->cpath };
	size_t n = x->og.ngroups + x->cg.ngroups, i, j, k;
	const struct gref *o;
	struct gref *v;
	int rc = 0;

	if ((x->odrop = calloc(x->og.ngroups + 1, 1)) == NULL ||
	    (x->cdrop = calloc(x->cg.ngroups + 1, 1)) == NULL)
		return error_sys("oneroster");
	if (n < 2)
		return 0;
	if ((v = calloc(n, sizeof(*v))) == NULL)
		return error_sys("oneroster");
	for (i = 0; i < x->og.ngroups; i++) {
		v[i].id = x->og.groups[i].id;
		v[i].line = x->og.groups[i].line;
		v[i].idx = (uint32_t)i;
	}
	for (i = 0; i < x->cg.ngroups; i++) {
		k = x->og.ngroups + i;
		v[k].id = x->cg.groups[i].id;
		v[k].line = x->cg.groups[i].line;
		v[k].idx = (uint32_t)i;
		v[k].cls = 1;
	}
	qsort(v, n, sizeof(*v), gref_cmp);
	for (i = 0; i < n && rc == 0; i = j) {
		for (j = i + 1; j < n && strcmp(v[j].id, v[i].id) == 0; j++)
			;
		for (k = i; j - i > 1 && k < j && rc == 0; k++) {
			o = &v[k == i ? i + 1 : i];
			(v[k].cls ? x->cdrop : x->odrop)[v[k].idx] = 1;
			if (o->cls == v[k].cls)
				rc = rejects_add(x->rj, path[v[k].cls],
				    v[k].line, "id", "duplicate group key "
				    "'%s' (also on line %u)", v[k].id,
				    o->line);
			else
				rc = rejects_add(x->rj, path[v[k].cls],
				    v[k].line, "id", "duplicate group key "
				    "'%s' (also on line %u of %s)", v[k].id,
				    o->line, base[o->cls]);
		}
	}
	free(v);
	return rc;
}

/*
 * Put orgs and classes into the roster and seal it: orgs first (their
 * duplicate and parent rejects name orgs.csv), then the classes whose
 * school is a sealed org.  0 or -1.
 */
static int
groups_seal(struct orctx *x)
{
	struct group *g;
	size_t i;
	int rc;

	if (groups_dedupe(x) == -1)
		return -1;
	for (i = 0; i < x->og.ngroups; i++)
		if (!x->odrop[i] &&
		    roster_add_group(x->r, &x->og.groups[i]) == -1)
			return -1;
	x->rj->dup = gone_dup;
	x->rj->duparg = x;
	rc = roster_seal_entities(x->r, x->rj, x->upath, x->opath);
	x->rj->dup = NULL;
	x->rj->duparg = NULL;
	if (rc == -1)
		return -1;
	/* A dangling school drops the link, never the class. */
	for (i = 0; i < x->cg.ngroups; i++) {
		g = &x->cg.groups[i];
		if (x->cdrop[i] || g->parent[0] == '\0' ||
		    roster_find_group(x->r, g->parent) >= 0)
			continue;
		if (rejects_note(x->rj, x->cpath, g->line, "schoolSourcedId",
		    "unknown org '%s': kept without a school",
		    g->parent) == -1)
			return -1;
		g->parent = "";
	}
	if (x->ngone > 1)
		qsort(x->gone, x->ngone, sizeof(*x->gone), gone_cmp);
	for (i = 0; i < x->cg.ngroups; i++)
		if (!x->cdrop[i] &&
		    roster_add_group(x->r, &x->cg.groups[i]) == -1)
			return -1;
	return roster_seal_entities(x->r, x->rj, x->upath, x->cpath);
}

/* ------------------------------------------------------------------ */
/* Memberships: users' orgs, enrollments.csv                           */

/*
 * Index the sealed persons and groups: the enrollments' ten million
 * lookups hash (csv.c's key index) rather than search.  0 or -1.
 */
static int
index_build(struct orctx *x)
{
	const struct roster *r = x->r;

	if (keyindex_build(&x->pk, r->npersons ? &r->persons[0].id : NULL,
	    sizeof(struct person), r->npersons) == -1)
		return -1;
	return keyindex_build(&x->gk, r->ngroups ? &r->groups[0].id : NULL,
	    sizeof(struct group), r->ngroups);
}

/* The index of the person with this key, or -1. */
static long
find_person(const struct orctx *x, const char *key)
{
	size_t len = strlen(key);

	return keyindex_find(&x->pk, key, len, keyindex_hash(key, len));
}

/* The index of the group (org or class) with this key, or -1. */
static long
find_group(const struct orctx *x, const char *key)
{
	size_t len = strlen(key);

	return keyindex_find(&x->gk, key, len, keyindex_hash(key, len));
}

/* The index of the org (not class) with this key, or -1. */
static long
find_org(const struct orctx *x, const char *key)
{
	long gi = find_group(x, key);

	if (gi >= 0 && strcmp(x->r->groups[gi].type, "class") == 0)
		return -1;
	return gi;
}

/* The memberships of one user in the orgs of orgSourcedIds.  0 or -1. */
static int
user_orgs(struct orctx *x, const struct orgpend *p)
{
	const char *s = p->orgs, *t;
	size_t len, first = x->r->nmembers, k;
	long pi, gi;
	int dup;

	/* A user rejected as a duplicate key: already in the rejects. */
	if ((pi = find_person(x, p->user)) < 0)
		return 0;
	while ((t = list_next(&s, &len)) != NULL) {
		if ((t = tok_set(x, t, len)) == NULL)
			return -1;
		if ((gi = find_org(x, t)) < 0) {
			if (ref_missing(x, x->upath, p->line, "orgSourcedIds",
			    G_ORG, t) == -1)
				return -1;
			continue;
		}
		for (dup = 0, k = first; k < x->r->nmembers && !dup; k++)
			dup = x->r->members[k].group == (uint32_t)gi;
		if (dup) {
			if (rejects_add(x->rj, x->upath, p->line,
			    "orgSourcedIds", "duplicate membership of '%s' "
			    "in '%s'", p->user, t) == -1)
				return -1;
			continue;
		}
		if (member_add(x, gi, pi, p->role, p->active, 0, 0) == -1)
			return -1;
	}
	return 0;
}

enum { E_CLASS, E_USER, E_ROLE, E_BEGIN, E_END, NECOLS };
static const char *const ecols[NECOLS] = { "classSourcedId",
	"userSourcedId", "role", "beginDate", "endDate" };
#define ECOLS_REQUIRED	((1u << E_BEGIN) - 1)	/* the dates may be absent */

/*
 * Enrollments wait in a short queue between parsing and the class and
 * user lookups, so each user's index slot is loaded while the next
 * rows are parsed: ten million rows are bound by memory latency
 * otherwise (csv.c does the same for its memberships).  A class the
 * row before had is not looked up again.  Every reject of
 * enrollments.csv drains the queue first (of_reject), so rejects keep
 * line order; keys too long to queue are looked up at once after a
 * drain.
 */
#define ENROL_PIPE		16
#define ENROL_KEY	48
struct epend {
	uint64_t	 uhash;		/* of user */
	uint32_t	 line;
	uint8_t		 role;
	uint8_t		 active;
	uint16_t	 begin, end;	/* beginDate, endDate: day numbers */
	size_t		 clen, ulen;
	char		 cls[ENROL_KEY], user[ENROL_KEY];
};
struct equeue {
	struct orctx	*x;
	struct epend	 q[ENROL_PIPE];
	size_t		 head, n;
	char		 lastcls[ENROL_KEY];	/* the class looked up last */
	size_t		 lastclen;		/* > ENROL_KEY: none */
	long		 lastg;
	char		 role[32];		/* the role read last */
	size_t		 rolelen;		/* > sizeof(role): none */
	int		 roleval;
};

/*
 * Look up the class and the user of one enrollment (NUL-terminated
 * keys) and add it, or reject it naming the missing class, else the
 * missing user.  0 or -1.
 */
static int
enrol_finish(struct equeue *eq, const char *cls, size_t clen,
    const char *user, size_t ulen, uint64_t uhash, const struct epend *e)
{
	struct orctx *x = eq->x;
	long gi, pi;

	if (clen == eq->lastclen && memcmp(cls, eq->lastcls, clen) == 0)
		gi = eq->lastg;
	else {
		gi = keyindex_find(&x->gk, cls, clen,
		    keyindex_hash(cls, clen));
		if (gi >= 0 && strcmp(x->r->groups[gi].type, "class") != 0)
			gi = -1;
		eq->lastclen = SIZE_MAX;
		if (clen < ENROL_KEY) {
			memcpy(eq->lastcls, cls, clen);
			eq->lastclen = clen;
			eq->lastg = gi;
		}
	}
	if (gi < 0)
		return ref_missing(x, x->epath, e->line, "classSourcedId",
		    G_CLASS, cls) == -1 ? -1 : 0;
	if ((pi = keyindex_find(&x->pk, user, ulen, uhash)) < 0)
		return ref_missing(x, x->epath, e->line, "userSourcedId",
		    G_USER, user) == -1 ? -1 : 0;
	return member_add(x, gi, pi, e->role, e->active, e->begin, e->end);
}

/* Finish the oldest queued enrollment (there is one).  0 or -1. */
static int
enrol_pop(struct equeue *eq)
{
	const struct epend *e = &eq->q[eq->head];

	eq->head = (eq->head + 1) % ENROL_PIPE;
	eq->n--;
	return enrol_finish(eq, e->cls, e->clen, e->user, e->ulen, e->uhash,
	    e);
}

/* Finish every queued enrollment, in order.  0 or -1. */
static int
enrol_drain(void *arg)
{
	struct equeue *eq = arg;

	while (eq->n > 0)
		if (enrol_pop(eq) == -1)
			return -1;
	return 0;
}

/* The IMS roletype of an enrollment's role, source.roles first: 1..8,
 * or 0 when unknown.  The last answer is kept: a role repeats. */
static int
enrol_role(struct equeue *eq, const char *v, size_t len)
{
	const struct orrole *ro;
	int role;

	if (len == eq->rolelen && memcmp(v, eq->role, len) == 0)
		return eq->roleval;
	if ((role = config_role(eq->x->cfg, v)) == 0 &&
	    (ro = orrole_find(v)) != NULL)
		role = ro->enrol;
	eq->rolelen = SIZE_MAX;
	if (len < sizeof(eq->role)) {
		memcpy(eq->role, v, len);
		eq->rolelen = len;
		eq->roleval = role;
	}
	return role;
}

/*
 * The day number of the date in column i of the current enrollment
 * into *day (0 when empty), or its reject: REC_OK, REC_REJECTED or -1.
 */
static int
enrol_date(struct orfile *f, size_t i, unsigned *day)
{
	*day = 0;
	if (of_len(f, i) == 0)
		return REC_OK;
	if ((*day = day_parse(of_val(f, i), of_len(f, i))) == 0)
		return of_reject_col(f, i, "not a date YYYY-MM-DD from "
		    "1970-01-02 to 2149-06-06");
	return REC_OK;
}

/* Check the current enrollment and queue it.  REC_* or -1. */
static int
enrollment_add(struct equeue *eq, struct orfile *f)
{
	const char *cls = of_val(f, E_CLASS), *user = of_val(f, E_USER);
	size_t clen = of_len(f, E_CLASS), ulen = of_len(f, E_USER);
	struct epend *e, now;
	unsigned begin, end;
	int role, rc;

	if (clen == 0)
		return of_reject_col(f, E_CLASS, "empty key");
	if (ulen == 0)
		return of_reject_col(f, E_USER, "empty key");
	if (of_len(f, E_ROLE) == 0)
		return of_reject_col(f, E_ROLE, "missing value");
	if ((role = enrol_role(eq, of_val(f, E_ROLE), of_len(f, E_ROLE))) == 0)
		return of_reject_col(f, E_ROLE, "unknown role");
	if ((rc = enrol_date(f, E_BEGIN, &begin)) != REC_OK ||
	    (rc = enrol_date(f, E_END, &end)) != REC_OK)
		return rc;
	if (begin != 0 && end != 0 && end < begin)
		return of_reject(f, ecols[E_END], "'%.10s' before beginDate "
		    "'%.10s'", of_val(f, E_END), of_val(f, E_BEGIN));
	if (clen >= ENROL_KEY || ulen >= ENROL_KEY) {
		if (enrol_drain(eq) == -1)
			return -1;
		memset(&now, 0, sizeof(now));
		now.line = (uint32_t)csv_line(f->cr);
		now.role = (uint8_t)role;
		now.active = (uint8_t)f->active;
		now.begin = (uint16_t)begin;
		now.end = (uint16_t)end;
		return enrol_finish(eq, cls, clen, user, ulen,
		    keyindex_hash(user, ulen), &now) == -1 ? -1 : REC_OK;
	}
	if (eq->n == ENROL_PIPE && enrol_pop(eq) == -1)
		return -1;
	e = &eq->q[(eq->head + eq->n) % ENROL_PIPE];
	eq->n++;
	e->line = (uint32_t)csv_line(f->cr);
	e->role = (uint8_t)role;
	e->active = (uint8_t)f->active;
	e->begin = (uint16_t)begin;
	e->end = (uint16_t)end;
	memcpy(e->cls, cls, clen);
	e->cls[clen] = '\0';
	e->clen = clen;
	memcpy(e->user, user, ulen);
	e->user[ulen] = '\0';
	e->ulen = ulen;
	e->uhash = keyindex_hash(user, ulen);
	keyindex_prefetch(&eq->x->pk, e->uhash);
	return REC_OK;
}

static int
read_members(struct orctx *x)
{
	struct orfile f;
	struct equeue eq;
	size_t i;
	int rc;

	if (index_build(x) == -1)
		return -1;
	for (i = 0; i < x->npend; i++)
		if (user_orgs(x, &x->pend[i]) == -1)
			return -1;
	if (roles_apply(x) == -1)
		return -1;
	if (of_open(&f, x, "enrollments.csv", ecols, NECOLS,
	    ECOLS_REQUIRED, 1, 0) == -1) {
		of_close(&f);
		return -1;
	}
	memcpy(x->epath, f.path, sizeof(x->epath));
	memset(&eq, 0, sizeof(eq));
	eq.x = x;
	eq.lastclen = eq.rolelen = SIZE_MAX;
	f.flush = enrol_drain;
	f.flusharg = &eq;
	while ((rc = of_next(&f, 1)) > 0)
		if (rc == REC_OK && (rc = enrollment_add(&eq, &f)) == -1)
			break;
	of_close(&f);
	if (rc == -1 || enrol_drain(&eq) == -1)
		return -1;
	/* One user in one class in one role, in several rows (terms,
	 * sourcedIds): one membership, active if any row is, from the
	 * earliest beginDate to the latest endDate (open if any is). */
	return roster_seal_members(x->r, x->rj, x->epath, NULL);
}

/*
 * When source.dir is a file, open it as the .zip the export was shipped
 * as; its modification time is the files'.  0 or -1.
 */
static int
open_bundle(struct orctx *x)
{
	const char *path = x->cfg->source.dir;
	struct stat st;

	/* A folder, or nothing there (named by the first file read). */
	if (stat(path, &st) == -1 || S_ISDIR(st.st_mode))
		return 0;
	if ((x->zb = zipbundle_open(path, x->cfg->source.zip_max ?
	    x->cfg->source.zip_max : SOURCE_ZIP_MAX)) == NULL)
		return -1;
	x->newest = st.st_mtime;
	return 0;
}

static void
ctx_free(struct orctx *x)
{
	arena_free(&x->tmp);
	free(x->sess);
	free(x->pend);
	roster_free(&x->og);
	roster_free(&x->cg);
	free(x->odrop);
	free(x->cdrop);
	free(x->gone);
	free(x->roles);
	free(x->tok);
	keyindex_free(&x->pk);
	keyindex_free(&x->gk);
	zipbundle_close(x->zb);
}

/*
 * Read the OneRoster 1.1 CSV bulk export in cfg->source.dir into r
 * (empty on entry), rejecting bad records into rj (NULL: count
 * nothing); the mapping is at the top of this file.  r->datetime is
 * SOURCE_DATE_EPOCH when set, else the newest modification time of the
 * files read.  Returns 0 with r sealed, or -1 with the error set (a
 * required file missing, empty or header-only, a required column
 * missing, a delta manifest, I/O error); r must be freed either way.
 */
int
oneroster_read_roster(const struct config *cfg, struct roster *r,
    struct rejects *rj)
{
	struct rejects none = { 0 };
	struct orctx x;
	time_t sde = 0;
	int rc, ret = -1;

	if (rj == NULL)
		rj = &none;
	if (cfg->source.dir == NULL || *cfg->source.dir == '\0')
		return error_set("source.dir: no OneRoster directory "
		    "configured");
	if ((rc = csv_source_date_epoch(&sde)) == -1)
		return -1;
	memset(&x, 0, sizeof(x));
	x.cfg = cfg;
	x.r = r;
	x.rj = rj;
	roster_init(&x.og);
	roster_init(&x.cg);
	if (open_bundle(&x) == -1 || read_manifest(&x) == -1 || read_sessions(&x) == -1 ||
	    read_users(&x) == -1 || read_roles(&x) == -1 ||
	    read_orgs(&x) == -1 ||
	    read_classes(&x) == -1 || groups_seal(&x) == -1 ||
	    read_members(&x) == -1)
		goto out;
	r->datetime = rc == 1 ? sde : x.newest;
	ret = 0;
out:
	ctx_free(&x);
	return ret;
}
