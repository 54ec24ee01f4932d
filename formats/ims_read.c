/*
 * ims_read.c -- read an IMS Enterprise 1.1 file (plain or gzip) into a
 * roster, streaming: libxml2's SAX2 push parser is fed from a mapping
 * of a plain file (dropped behind the read) or from zlib's gzread, no
 * tree is built, so a 2.7 GB file is read in constant memory besides
 * the roster itself.  Persons and memberships in the common shape are
 * read from the raw bytes by a fast path that hands them to the same
 * record logic ("The fast path" below): libxml2 spent most of a
 * national-scale read on their markup.  Hashed key lookups (csv.c's
 * key index) resolve the members.
 *
 * Why SAX2 and not xmlTextReader: the reader is built on the same
 * parser but creates, links and frees a node per element and text, and
 * classifies every text node (blank, space-preserve) on each
 * NodeType() call.  On a 500 MB file (100k persons, 2M memberships)
 * the xmlTextReader version of this file took 3.7 s, the bare SAX2
 * parse 1.6 s.  The element logic below is the same either way.
 *
 * What is read:
 * - person: the first <sourcedid> that is not sourcedidtype Old or
 *   Duplicate (its id is the key), the <userid> userid_rank ranks
 *   first (the login: useridtype "username", else the first without a
 *   type; never a national identity number such as personNIN unless
 *   source.useridtype names it; the first personNIN is kept apart as
 *   the nin, for itslearning), n/given and
 *   n/family (when <n> has neither: <fn>, split at its last space into
 *   given and family; a single word is the family name), <email>,
 *   <systemrole systemroletype="None"> as inactive (see ims_write.c),
 *   as is PIFU-IMS's <extension><pifu_status type="activeInactive">
 *   inaktiv (aktiv: active),
 *   and the institutionroletype of the primary <institutionrole> (else
 *   of the first one) in the DTD's spelling (any case; another value
 *   rejects the person).  Elements nest at most 64 deep.
 * - group: key, the first grouptype/typevalue, description short and
 *   long, timeframe/adminperiod, begin and end, org/orgname and the
 *   first org/orgunit, and the first relationship relation 1
 *   (the default) that does not point at the group itself: the parent
 *   (another one is dropped with a note).  A person's <fn> is used only
 *   when <n> has no names: every profile writes fn as "given family".
 * - membership: the group key, then per <member> with idtype 1 (idtype
 *   2 members are skipped) one membership per <role>: roletype as code
 *   or name (role_parse; "01" when absent, as the DTD says), status,
 *   and the timeframe's begin and end that have restrict="1" (dates
 *   YYYY-MM-DD; a bad one, or an end before the begin, rejects the
 *   role).
 * Records with recstatus 3 (delete) are skipped: a roster holds what
 * exists.  Text is trimmed of white space around it, as consumers
 * read it (Moodle, itslearning); the model stores values trimmed too
 * (roster.c), so reading a file ims_write_full() wrote gives back the
 * roster it was written from.  A <datetime> in the basic ISO 8601 form
 * or with slashes is read; with none, or one that is not a date, the
 * roster's date is the file's modification time.
 *
 * Bad records (no key, no short name, an unknown group or person, an
 * unknown roletype, a missing status) are rejected into rj naming the
 * file, line and element; with rj NULL each is an error.  A file that is
 * not well-formed fails with libxml2's message and line.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <libxml/parser.h>
#include <libxml/SAX2.h>

#include "sisfeed.h"

#define MAXDEPTH	64
/* A value longer is not kept: its record is rejected, so a 2 GiB name
 * cannot take the memory.  Above the CSV reader's bound on a record
 * (1 MiB), so that whatever a source gave the snapshot reads back. */
#define IMS_VALUE_MAX	(8 * 1024 * 1024)
#define IMS_VALUE_MAX_S	"8388608"

/* The elements we look at; everything else is E_OTHER.  The most
 * frequent come first: they are compared in this order. */
enum el {
	E_OTHER, E_MEMBER, E_SOURCEDID, E_SOURCE, E_ID, E_IDTYPE, E_ROLE,
	E_STATUS, E_MEMBERSHIP, E_PERSON, E_USERID, E_NAME, E_FN, E_N,
	E_FAMILY, E_GIVEN, E_EMAIL, E_SYSTEMROLE, E_INSTITUTIONROLE,
	E_GROUP, E_GROUPTYPE, E_TYPEVALUE, E_DESCRIPTION, E_SHORT, E_LONG,
	E_TIMEFRAME, E_ADMINPERIOD, E_RELATIONSHIP, E_ENTERPRISE,
	E_PROPERTIES, E_DATETIME, E_BEGIN, E_END, E_ORG, E_ORGNAME,
	E_ORGUNIT, E_EXTENSION, E_PIFU_STATUS, NEL
};

static const char *const el_names[NEL] = {
	"", "member", "sourcedid", "source", "id", "idtype", "role",
	"status", "membership", "person", "userid", "name", "fn", "n",
	"family", "given", "email", "systemrole", "institutionrole",
	"group", "grouptype", "typevalue", "description", "short", "long",
	"timeframe", "adminperiod", "relationship", "enterprise",
	"properties", "datetime", "begin", "end", "org", "orgname",
	"orgunit", "extension",
	"pifu_status"
};

/* A growable string. */
struct tbuf {
	char	*p;
	size_t	 len, cap;
};

struct person_rec {
	struct tbuf	 id, userid, fn, family, given, email, role, nin;
	int		 have_nin;	/* a PIFU-IMS personNIN taken */
	int		 cur_is_nin;	/* the <userid> being read is one */
	int		 status_typed;	/* pifu_status activeInactive */
	int		 have_id, have_userid, have_email;
	int		 uid_rank;	/* of the <userid> taken (userid_rank) */
	int		 cur_uid_rank;	/* of the <userid> being read */
	int		 have_n;	/* n/family or n/given seen */
	int		 have_role, role_primary;
	int		 active, recstatus;
	unsigned long	 line;
};

struct group_rec {
	struct tbuf	 id, type, shortname, longname, term, parent, relid;
	struct tbuf	 begin, end, orgname, orgunit;
	int		 have_id, have_type, have_short, have_long;
	int		 have_term, have_parent, have_relid;
	int		 have_begin, have_end, have_orgname, have_orgunit;
	int		 relation, recstatus;
	unsigned long	 line;
};

struct member_rec {
	struct tbuf	 group;		/* the <membership>'s key */
	int		 have_group;
	long		 gidx;		/* -1 unknown */
	struct tbuf	 person;	/* the <member>'s key */
	int		 have_person;
	long		 pidx;		/* -2 not looked up yet, -1 unknown */
	struct tbuf	 idtype;
	int		 have_idtype;
	unsigned long	 mline;		/* of <member> */
	int		 roletype;	/* 1..8, 0 unknown */
	struct tbuf	 roleraw;
	int		 rstatus;	/* recstatus of <role> */
	struct tbuf	 status;
	int		 have_status;
	unsigned long	 rline;		/* of <role> */
	/* The role's timeframe: begin and end with restrict="1". */
	struct tbuf	 begin, end;
	int		 have_begin, have_end;
	int		 cur_restrict;	/* the <begin>/<end> being read has it */
	unsigned long	 bline, eline;	/* of </begin>, </end> */
};

/*
 * What the raw bytes say about the declared encoding: a file declared
 * ISO-8859-1 (or Windows-1252) whose every non-ASCII byte is part of a
 * UTF-8 sequence was written in UTF-8, and would be read wrong (every
 * key with an accented letter changed) without a word from libxml2.
 */
struct encsniff {
	int		 decl_seen;	/* the XML declaration looked at */
	int		 latin;		/* it declares a Latin encoding */
	char		 name[32];	/* as declared */
	size_t		 utf8;		/* UTF-8 multibyte sequences */
	size_t		 other;		/* high bytes that are not UTF-8 */
	unsigned long	 line;		/* raw lines so far, from 1 */
	unsigned long	 first;		/* line of the first sequence */
};

struct reader {
	const char	*path;
	struct encsniff	 enc;
	xmlParserCtxtPtr ctxt;
	gzFile		 gz;
	char		*map;		/* a plain file mapped, or NULL */
	size_t		 mapsize;
	int		 failed;	/* our error is set; parsing stopped */
	char		 err[1024];	/* first parser error */
	/* The attributes of the start tag being handled (SAX2 layout:
	 * localname, prefix, URI, value, end per attribute). */
	const xmlChar	**attrs;
	int		 nattrs;
	struct tbuf	 abuf;		/* the attribute value asked for */
	int		 want;		/* collect text: a leaf we read */
	struct roster	*r;
	struct rejects	*rj;		/* never NULL: local when no caller's */
	int		 strict;	/* rejects are errors */
	const char	*useridtype;	/* the <userid> to take; NULL default */
	int		 have_datetime;	/* <properties><datetime> parsed */
	const xmlChar	*names[NEL];
	uint8_t		 stack[MAXDEPTH];
	int		 depth;		/* elements open */
	int		 sdskip;	/* this <sourcedid> is Old/Duplicate */
	int		 sealed;	/* persons and groups sealed */
	struct keyindex	 pk, gk;	/* of the sealed persons, groups */
	int		 seen_root;
	struct tbuf	 text;
	int		 textover;	/* text went past IMS_VALUE_MAX */
	const char	*over;		/* the record's first such element */
	unsigned long	 overline;	/* and its line */
	struct person_rec p;
	struct group_rec g;
	struct member_rec m;
};

/* ------------------------------------------------------------------ */
/* Small helpers.                                                      */

static int
sb_append(struct tbuf *b, const char *s, size_t n)
{
	char *np;
	size_t nc;

	if (b->cap - b->len <= n) {
		nc = b->cap ? b->cap : 64;
		while (nc - b->len <= n)
			nc *= 2;
		if ((np = realloc(b->p, nc)) == NULL)
			return error_sys("read buffer");
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int
sb_set(struct tbuf *b, const struct tbuf *from)
{
	b->len = 0;
	return sb_append(b, from->p ? from->p : "", from->len);
}

static void
sb_clear(struct tbuf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

/* The contents, "" when never set. */
static const char *
sb_str(const struct tbuf *b)
{
	return b->p != NULL ? b->p : "";
}

static void
sb_free(struct tbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/*
 * A reject at line: into the rejects file, or (strict) as the error.
 * Returns 0 to go on, -1 to stop.
 */
static int
reject(struct reader *rd, unsigned long line, const char *field,
    const char *fmt, ...) PRINTF_LIKE(4, 5);

static int
reject(struct reader *rd, unsigned long line, const char *field,
    const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (rd->strict)
		return error_set("%s:%lu: %s: %s", rd->path, line, field, msg);
	return rejects_add(rd->rj, rd->path, line, field, "%s", msg);
}

/* The line the parser is on: in a start tag callback, the line where
 * that tag ends. */
static unsigned long
cur_line(struct reader *rd)
{
	int l = xmlSAX2GetLineNumber(rd->ctxt);

	return l > 0 ? (unsigned long)l : 0;
}

/*
 * The value of attribute name of the start tag being handled, or NULL.
 * It stays valid until the next call.
 */
static const char *
attr(struct reader *rd, const char *name)
{
	const xmlChar **a;
	int i;

	for (i = 0; i < rd->nattrs; i++) {
		a = rd->attrs + i * 5;
		if (strcmp((const char *)a[0], name) != 0)
			continue;
		rd->abuf.len = 0;
		if (sb_append(&rd->abuf, (const char *)a[3],
		    (size_t)(a[4] - a[3])) == -1)
			return NULL;
		return rd->abuf.p;
	}
	return NULL;
}

/* A recstatus value of n bytes: 1..3, or 0 for another value. */
static int
recstatus_of(const char *v, size_t n)
{
	while (n > 0 && *v == ' ') {
		v++;
		n--;
	}
	if (n >= 1 && (v[0] == '1' || v[0] == '2' || v[0] == '3') &&
	    (n == 1 || v[1] == ' '))
		return v[0] - '0';
	return 0;
}

/* recstatus attribute: 1..3, or 0 when absent or another value. */
static int
attr_recstatus(struct reader *rd)
{
	const char *v = attr(rd, "recstatus");

	return v == NULL ? 0 : recstatus_of(v, strlen(v));
}

/*
 * The basic ISO 8601 forms ("20240901", "20240901T020000") and slashes
 * ("2024/09/01") in the extended form, into buf.  Returns buf, or s as
 * it is.
 */
static const char *
datetime_extended(const char *s, char *buf, size_t len)
{
	size_t n = strspn(s, "0123456789");

	if (n == 8 && (s[8] == '\0' || s[8] == 'T') && (s[8] == '\0' ||
	    strspn(s + 9, "0123456789") == 6)) {
		snprintf(buf, len, "%.4s-%.2s-%.2s", s, s + 4, s + 6);
		if (s[8] == 'T')
			snprintf(buf + 10, len - 10, "T%.2s:%.2s:%.2s%.16s",
			    s + 9, s + 11, s + 13, s + 15);
		return buf;
	}
	if (n == 4 && s[4] == '/' && strlen(s) < len) {
		snprintf(buf, len, "%s", s);
		if (buf[7] == '/')
			buf[4] = buf[7] = '-';
		return buf;
	}
	return s;
}

/*
 * Parse an ISO 8601 date or date-time ("2024-09-01",
 * "2024-09-01T02:00:00", with "Z" or "+hh:mm"; local times are taken as
 * UTC; the basic form and slashes as datetime_extended has them).
 * Returns 0 and *t, or -1.
 */
static int
parse_datetime(const char *s, time_t *t)
{
	char ext[64];

	struct tm tm;
	int y, mo, d, h = 0, mi = 0, se = 0, n = 0, oh = 0, om = 0, sign;
	const char *p;

	memset(&tm, 0, sizeof(tm));
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	s = datetime_extended(s, ext, sizeof(ext));
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return -1;
	p = s + n;
	if (*p == 'T' || *p == ' ') {
		n = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &n) != 2 || n != 5)
			return -1;
		p += 1 + n;
		if (*p == ':') {
			n = 0;
			if (sscanf(p + 1, "%2d%n", &se, &n) != 1 || n != 2)
				return -1;
			p += 1 + n;
			if (*p == '.')
				for (p++; *p >= '0' && *p <= '9'; p++)
					;
		}
	}
	if (*p == 'Z')
		p++;
	else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		n = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5)
			return -1;
		p += 1 + n;
		oh *= sign;
		om *= sign;
	}
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || se > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	*t = timegm(&tm) - (time_t)oh * 3600 - (time_t)om * 60;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Records.                                                            */

/*
 * How much a <userid> with this useridtype (NULL: none) is the login:
 * with source.useridtype set, 3 for that type (any case) and 0 for any
 * other; by default 3 for "username", 2 for no type, 1 for another
 * type, 0 for a national identity number, never taken.
 */
static int
userid_rank(const struct reader *rd, const char *type)
{
	static const char *const nin[] = { "personNIN", "NIN", "SSN",
	    "nationalIdentityNumber", "fnr", "personnummer" };
	size_t i;

	if (rd->useridtype != NULL)
		return type != NULL && strcasecmp(type, rd->useridtype) == 0 ?
		    3 : 0;
	if (type == NULL)
		return 2;
	if (strcasecmp(type, "username") == 0)
		return 3;
	for (i = 0; i < sizeof(nin) / sizeof(nin[0]); i++)
		if (strcasecmp(type, nin[i]) == 0)
			return 0;
	return 1;
}

/* Strip XML white space (space, tab, CR, LF) around the text: values are
 * read as consumers read them. */
static void
text_trim(struct tbuf *b)
{
	size_t lo = 0, hi = b->len;

	while (lo < hi && (b->p[lo] == ' ' || b->p[lo] == '\t' ||
	    b->p[lo] == '\n' || b->p[lo] == '\r'))
		lo++;
	while (hi > lo && (b->p[hi - 1] == ' ' || b->p[hi - 1] == '\t' ||
	    b->p[hi - 1] == '\n' || b->p[hi - 1] == '\r'))
		hi--;
	if (lo > 0)
		memmove(b->p, b->p + lo, hi - lo);
	b->len = hi - lo;
	if (b->p != NULL)
		b->p[b->len] = '\0';
}

/* When a value of the record was longer than IMS_VALUE_MAX: reject
 * the record naming that element and return 1 (-1 to stop); 0 when
 * none was. */
static int
value_too_long(struct reader *rd)
{
	if (rd->over == NULL)
		return 0;
	return reject(rd, rd->overline, rd->over, "value longer than "
	    IMS_VALUE_MAX_S " bytes") == -1 ? -1 : 1;
}

/* Forget the person read before. */
static void
person_clear(struct person_rec *p)
{
	sb_clear(&p->id);
	sb_clear(&p->userid);
	sb_clear(&p->fn);
	sb_clear(&p->family);
	sb_clear(&p->given);
	sb_clear(&p->email);
	sb_clear(&p->role);
	sb_clear(&p->nin);
	p->have_nin = 0;
	p->have_id = p->have_userid = p->have_n = p->have_email = 0;
	p->uid_rank = p->cur_uid_rank = 0;
	p->have_role = p->role_primary = 0;
	p->active = 1;
}

static void
person_begin(struct reader *rd)
{
	rd->over = NULL;
	person_clear(&rd->p);
	rd->p.recstatus = attr_recstatus(rd);
	rd->p.line = cur_line(rd);
}

/* Split "Given Names Family" at its last space (no <n> in the file). */
static int
person_split_fn(struct person_rec *p)
{
	const char *fn = sb_str(&p->fn), *sp = strrchr(fn, ' ');

	sb_clear(&p->given);
	sb_clear(&p->family);
	if (sp == NULL)
		return sb_append(&p->family, fn, strlen(fn));
	if (sb_append(&p->given, fn, (size_t)(sp - fn)) == -1)
		return -1;
	return sb_append(&p->family, sp + 1, strlen(sp + 1));
}

static int
person_end(struct reader *rd)
{
	struct person_rec *p = &rd->p;
	struct person rec;
	const char *role = "";
	int rc;

	if (p->recstatus == REC_DELETE)
		return 0;
	rd->rj->records++;
	if ((rc = value_too_long(rd)) != 0)
		return rc == -1 ? -1 : 0;
	if (!p->have_id || p->id.len == 0)
		return reject(rd, p->line, "sourcedid",
		    "person without <sourcedid><id>");
	if (!p->have_n && person_split_fn(p) == -1)
		return -1;
	/* The DTD's spelling, as the CSV reader has it: a role read
	 * verbatim would be written otherwise and read back as a change. */
	if (p->role.len > 0 &&
	    (role = institution_role_parse(sb_str(&p->role))) == NULL)
		return reject(rd, p->line, "institutionroletype",
		    "person '%s': unknown institution role '%s'",
		    sb_str(&p->id), sb_str(&p->role));
	memset(&rec, 0, sizeof(rec));
	rec.id = sb_str(&p->id);
	rec.userid = sb_str(&p->userid);
	rec.given = sb_str(&p->given);
	rec.family = sb_str(&p->family);
	rec.email = sb_str(&p->email);
	rec.role = role;
	rec.nin = sb_str(&p->nin);
	rec.line = (uint32_t)p->line;
	rec.active = (uint8_t)p->active;
	return roster_add_person(rd->r, &rec);
}

static void
group_begin(struct reader *rd)
{
	struct group_rec *g = &rd->g;

	rd->over = NULL;
	sb_clear(&g->id);
	sb_clear(&g->type);
	sb_clear(&g->shortname);
	sb_clear(&g->longname);
	sb_clear(&g->term);
	sb_clear(&g->parent);
	sb_clear(&g->begin);
	sb_clear(&g->end);
	sb_clear(&g->orgname);
	sb_clear(&g->orgunit);
	g->have_id = g->have_type = g->have_short = g->have_long = 0;
	g->have_term = g->have_parent = 0;
	g->have_begin = g->have_end = g->have_orgname = g->have_orgunit = 0;
	g->recstatus = attr_recstatus(rd);
	g->line = cur_line(rd);
}

static int
group_end(struct reader *rd)
{
	struct group_rec *g = &rd->g;
	struct group rec;
	int rc;

	if (g->recstatus == REC_DELETE)
		return 0;
	rd->rj->records++;
	if ((rc = value_too_long(rd)) != 0)
		return rc == -1 ? -1 : 0;
	if (!g->have_id || g->id.len == 0)
		return reject(rd, g->line, "sourcedid",
		    "group without <sourcedid><id>");
	if (g->shortname.len == 0)
		return reject(rd, g->line, "short",
		    "group '%s' without <description><short>", sb_str(&g->id));
	/* A parent that is the group itself marks a root. */
	if (g->have_parent && strcmp(sb_str(&g->parent), sb_str(&g->id)) == 0)
		sb_clear(&g->parent);
	memset(&rec, 0, sizeof(rec));
	rec.id = sb_str(&g->id);
	rec.type = sb_str(&g->type);
	rec.shortname = sb_str(&g->shortname);
	rec.longname = sb_str(&g->longname);
	rec.parent = sb_str(&g->parent);
	rec.term = sb_str(&g->term);
	rec.begin = sb_str(&g->begin);
	rec.end = sb_str(&g->end);
	rec.orgname = sb_str(&g->orgname);
	rec.orgunit = sb_str(&g->orgunit);
	rec.line = (uint32_t)g->line;
	return roster_add_group(rd->r, &rec);
}

static void
relationship_begin(struct reader *rd)
{
	const char *v = attr(rd, "relation");

	rd->g.relation = v == NULL ? 1 : atoi(v);
	rd->g.have_relid = 0;
	sb_clear(&rd->g.relid);
}

static int
relationship_end(struct reader *rd)
{
	struct group_rec *g = &rd->g;

	char sb[64], sb2[64];

	if (g->relation != 1 || !g->have_relid)
		return 0;
	/* Skip a self-reference when a real parent may follow. */
	if (g->have_id && strcmp(sb_str(&g->relid), sb_str(&g->id)) == 0)
		return 0;
	/* One parent: a second is dropped, said in a note. */
	if (g->have_parent) {
		if (strcmp(sb_str(&g->parent), sb_str(&g->relid)) == 0)
			return 0;
		rejects_quote(sb_str(&g->id), strlen(sb_str(&g->id)), sb,
		    sizeof(sb));
		rejects_quote(sb_str(&g->relid), strlen(sb_str(&g->relid)),
		    sb2, sizeof(sb2));
		return rejects_note(rd->rj, rd->path, cur_line(rd),
		    "relationship", "group '%s': second parent '%s' dropped "
		    "(the first is kept)", sb, sb2);
	}
	g->have_parent = 1;
	return sb_set(&g->parent, &g->relid);
}

/*
 * Persons and groups are complete once memberships start: seal them
 * and index their keys (csv.c's key index: millions of members are
 * looked up by hash, not searched).  0 or -1.
 */
static int
seal_entities(struct reader *rd)
{
	const struct roster *r = rd->r;

	if (rd->sealed)
		return 0;
	rd->sealed = 1;
	if (roster_seal_entities(rd->r, rd->rj, rd->path, rd->path) == -1)
		return -1;
	if (keyindex_build(&rd->pk, r->npersons ? &r->persons[0].id : NULL,
	    sizeof(struct person), r->npersons) == -1)
		return -1;
	return keyindex_build(&rd->gk, r->ngroups ? &r->groups[0].id : NULL,
	    sizeof(struct group), r->ngroups);
}

/* The index of the key in b among the sealed persons or groups, or -1. */
static long
find_key(const struct keyindex *ki, const struct tbuf *b)
{
	const char *key = sb_str(b);

	return keyindex_find(ki, key, b->len, keyindex_hash(key, b->len));
}

static int
membership_begin(struct reader *rd)
{
	if (seal_entities(rd) == -1)
		return -1;
	rd->over = NULL;
	rd->m.have_group = 0;
	rd->m.gidx = -1;
	sb_clear(&rd->m.group);
	return 0;
}

static void
member_begin(struct reader *rd)
{
	struct member_rec *m = &rd->m;

	m->have_person = 0;
	m->pidx = -2;
	m->have_idtype = 0;
	sb_clear(&m->person);
	sb_clear(&m->idtype);
	m->mline = cur_line(rd);
}

static int
role_begin(struct reader *rd)
{
	struct member_rec *m = &rd->m;
	const char *v = attr(rd, "roletype");

	sb_clear(&m->roleraw);
	if (v == NULL)
		m->roletype = 1;	/* the DTD's default '01' */
	else {
		m->roletype = role_parse(v);
		if (sb_append(&m->roleraw, v, strlen(v)) == -1)
			return -1;
	}
	m->rstatus = attr_recstatus(rd);
	m->have_status = 0;
	sb_clear(&m->status);
	m->have_begin = m->have_end = 0;
	m->rline = cur_line(rd);
	return 0;
}

/*
 * The day number of a role's timeframe date b (read at line, element
 * what) into *day, 0 when absent.  0, 1 when rejected, or -1.
 */
static int
role_day(struct reader *rd, const struct tbuf *b, int have,
    unsigned long line, const char *what, unsigned *day)
{
	const struct member_rec *m = &rd->m;
	char q[64];

	*day = 0;
	if (!have)
		return 0;
	if ((*day = day_parse(sb_str(b), b->len)) != 0)
		return 0;
	return reject(rd, line, what, "member '%s' of '%s': not a date "
	    "YYYY-MM-DD from 1970-01-02 to 2149-06-06 '%s'",
	    sb_str(&m->person), sb_str(&m->group),
	    rejects_quote(sb_str(b), b->len, q, sizeof(q))) == -1 ? -1 : 1;
}

/* The role's timeframe into rec, or its reject: 0, 1 (rejected) or
 * -1. */
static int
role_timeframe(struct reader *rd, struct membership *rec)
{
	struct member_rec *m = &rd->m;
	unsigned begin, end;
	int rc;

	if ((rc = role_day(rd, &m->begin, m->have_begin, m->bline, "begin",
	    &begin)) != 0 || (rc = role_day(rd, &m->end, m->have_end,
	    m->eline, "end", &end)) != 0)
		return rc;
	if (begin != 0 && end != 0 && end < begin)
		return reject(rd, m->eline, "end", "member '%s' of '%s': end "
		    "'%s' before begin '%s'", sb_str(&m->person),
		    sb_str(&m->group), sb_str(&m->end), sb_str(&m->begin)) ==
		    -1 ? -1 : 1;
	rec->begin = (uint16_t)begin;
	rec->end = (uint16_t)end;
	return 0;
}

static int
role_end(struct reader *rd)
{
	struct member_rec *m = &rd->m;
	struct membership rec;
	int st;

	if (m->rstatus == REC_DELETE)
		return 0;
	if (m->have_idtype && strcmp(sb_str(&m->idtype), "2") == 0)
		return 0;	/* a group as member: not in the model */
	rd->rj->records++;
	if ((st = value_too_long(rd)) != 0)
		return st == -1 ? -1 : 0;
	if (!m->have_group || m->group.len == 0)
		return reject(rd, m->rline, "sourcedid",
		    "membership without <sourcedid><id>");
	if (m->gidx < 0)
		return reject(rd, m->rline, "sourcedid",
		    "membership: group '%s' unknown", sb_str(&m->group));
	if (!m->have_person || m->person.len == 0)
		return reject(rd, m->rline, "sourcedid",
		    "member of '%s' without <sourcedid><id>",
		    sb_str(&m->group));
	if (m->pidx == -2)
		m->pidx = find_key(&rd->pk, &m->person);
	if (m->pidx < 0)
		return reject(rd, m->rline, "sourcedid",
		    "member of '%s': person '%s' unknown", sb_str(&m->group),
		    sb_str(&m->person));
	if (m->roletype < 1 || m->roletype > 8)
		return reject(rd, m->rline, "roletype",
		    "member '%s' of '%s': unknown roletype '%s'",
		    sb_str(&m->person), sb_str(&m->group), sb_str(&m->roleraw));
	if (!m->have_status)
		return reject(rd, m->rline, "status",
		    "member '%s' of '%s': <role> without <status>",
		    sb_str(&m->person), sb_str(&m->group));
	/* "1" and "0" nearly always: status_parse's answer, sooner */
	if (m->status.len == 1 && (m->status.p[0] == '0' ||
	    m->status.p[0] == '1'))
		st = m->status.p[0] - '0';
	else if ((st = status_parse(sb_str(&m->status))) == -1)
		return reject(rd, m->rline, "status",
		    "member '%s' of '%s': bad status '%s'",
		    sb_str(&m->person), sb_str(&m->group), sb_str(&m->status));
	memset(&rec, 0, sizeof(rec));
	rec.group = (uint32_t)m->gidx;
	rec.person = (uint32_t)m->pidx;
	rec.role = (uint8_t)m->roletype;
	rec.active = (uint8_t)st;
	if ((m->have_begin || m->have_end) &&
	    (st = role_timeframe(rd, &rec)) != 0)
		return st == -1 ? -1 : 0;
	return roster_add_member(rd->r, &rec);
}

/* ------------------------------------------------------------------ */
/* Element events.                                                     */

static enum el
el_lookup(struct reader *rd, const xmlChar *name)
{
	int i;

	for (i = 1; i < NEL; i++)
		if (name == rd->names[i])
			return (enum el)i;
	return E_OTHER;
}

/* The element at depth d (1 = the root), E_OTHER past the stack. */
static enum el
at(const struct reader *rd, int d)
{
	if (d < 1 || d > rd->depth || d > MAXDEPTH)
		return E_OTHER;
	return (enum el)rd->stack[d - 1];
}

/* Elements whose text the records use. */
static int
is_leaf(enum el e)
{
	switch (e) {
	case E_ID:
	case E_IDTYPE:
	case E_STATUS:
	case E_USERID:
	case E_FN:
	case E_FAMILY:
	case E_GIVEN:
	case E_EMAIL:
	case E_TYPEVALUE:
	case E_SHORT:
	case E_LONG:
	case E_ADMINPERIOD:
	case E_DATETIME:
	case E_PIFU_STATUS:
	case E_BEGIN:
	case E_END:
	case E_ORGNAME:
	case E_ORGUNIT:
		return 1;
	default:
		return 0;
	}
}

static int
start_element(struct reader *rd, enum el e)
{
	const char *v;
	enum el rec;

	/* IMS nests a handful deep; a deeper file is hostile or broken,
	 * and libxml2's push parser would follow it as far as it goes. */
	if (rd->depth == MAXDEPTH)
		return error_set("%s:%lu: elements nested deeper than %d",
		    rd->path, cur_line(rd), MAXDEPTH);
	rd->depth++;
	rd->stack[rd->depth - 1] = (uint8_t)e;
	sb_clear(&rd->text);
	rd->want = is_leaf(e);
	if (rd->depth == 1) {
		rd->seen_root = 1;
		if (e != E_ENTERPRISE)
			return error_set("%s:%lu: not an IMS Enterprise file: "
			    "the root is not <enterprise>", rd->path,
			    cur_line(rd));
		return 0;
	}
	if (rd->depth == 2) {
		switch (e) {
		case E_PERSON:
		case E_GROUP:
			if (rd->sealed)
				return error_set("%s:%lu: <%s> after "
				    "<membership>", rd->path, cur_line(rd),
				    el_names[e]);
			if (e == E_PERSON)
				person_begin(rd);
			else
				group_begin(rd);
			return 0;
		case E_MEMBERSHIP:
			return membership_begin(rd);
		default:
			return 0;
		}
	}
	rec = at(rd, 2);
	switch (e) {
	case E_SOURCEDID:
		v = attr(rd, "sourcedidtype");
		rd->sdskip = v != NULL && (strcmp(v, "Old") == 0 ||
		    strcmp(v, "Duplicate") == 0);
		break;
	case E_MEMBER:
		if (rec == E_MEMBERSHIP && rd->depth == 3)
			member_begin(rd);
		break;
	case E_ROLE:
		if (rec == E_MEMBERSHIP && rd->depth == 4 &&
		    at(rd, 3) == E_MEMBER)
			return role_begin(rd);
		break;
	case E_BEGIN:
	case E_END:
		if (rec == E_MEMBERSHIP && rd->depth == 6) {
			v = attr(rd, "restrict");
			rd->m.cur_restrict = v != NULL && strcmp(v, "1") == 0;
		}
		break;
	case E_RELATIONSHIP:
		if (rec == E_GROUP && rd->depth == 3)
			relationship_begin(rd);
		break;
	case E_USERID:
		if (rec == E_PERSON && rd->depth == 3)
		{
			const char *t = attr(rd, "useridtype");

			rd->p.cur_is_nin = t != NULL &&
			    strcmp(t, "personNIN") == 0;
			rd->p.cur_uid_rank = userid_rank(rd, t);
		}
		break;
	case E_PIFU_STATUS:
		if (rec == E_PERSON && rd->depth == 4 &&
		    at(rd, 3) == E_EXTENSION) {
			v = attr(rd, "type");
			rd->p.status_typed = v != NULL &&
			    strcmp(v, "activeInactive") == 0;
		}
		break;
	case E_SYSTEMROLE:
		if (rec == E_PERSON && rd->depth == 3) {
			v = attr(rd, "systemroletype");
			rd->p.active = !(v != NULL && strcmp(v, "None") == 0);
		}
		break;
	case E_INSTITUTIONROLE:
		if (rec == E_PERSON && rd->depth == 3) {
			int primary;

			v = attr(rd, "primaryrole");
			primary = v != NULL && strcmp(v, "Yes") == 0;
			if (rd->p.have_role && (rd->p.role_primary || !primary))
				break;
			v = attr(rd, "institutionroletype");
			if (v == NULL)
				break;
			sb_clear(&rd->p.role);
			if (sb_append(&rd->p.role, v, strlen(v)) == -1)
				return -1;
			rd->p.have_role = 1;
			rd->p.role_primary = primary;
		}
		break;
	default:
		break;
	}
	return 0;
}

/* Keep the text of the element just closed in dst, once (first wins). */
static int
take(struct reader *rd, struct tbuf *dst, int *have)
{
	if (*have)
		return 0;
	*have = 1;
	return sb_set(dst, &rd->text);
}

static int
end_person(struct reader *rd, enum el e)
{
	struct person_rec *p = &rd->p;
	int d = rd->depth;

	if (d == 2)
		return person_end(rd);
	if (d == 3 && e == E_USERID && p->cur_is_nin && !p->have_nin &&
	    sb_set(&p->nin, &rd->text) == -1)
		return -1;
	if (d == 3 && e == E_USERID && p->cur_is_nin)
		p->have_nin = 1;
	if (d == 4 && e == E_PIFU_STATUS && at(rd, 3) == E_EXTENSION &&
	    p->status_typed) {
		if (strcmp(sb_str(&rd->text), "inaktiv") == 0)
			p->active = 0;
		else if (strcmp(sb_str(&rd->text), "aktiv") == 0)
			p->active = 1;
		return 0;
	}
	if (d == 3 && e == E_USERID) {
		/* the best rank wins; the first of equal ranks */
		if (p->cur_uid_rank == 0 || p->cur_uid_rank <= p->uid_rank)
			return 0;
		p->uid_rank = p->cur_uid_rank;
		p->have_userid = 1;
		return sb_set(&p->userid, &rd->text);
	}
	if (d == 3 && e == E_EMAIL)
		return take(rd, &p->email, &p->have_email);
	if (d == 4 && e == E_ID && at(rd, 3) == E_SOURCEDID && !rd->sdskip)
		return take(rd, &p->id, &p->have_id);
	if (d == 4 && e == E_FN && at(rd, 3) == E_NAME)
		return sb_set(&p->fn, &rd->text);
	if (d == 5 && at(rd, 4) == E_N && at(rd, 3) == E_NAME) {
		if (e == E_FAMILY) {
			p->have_n = 1;
			return sb_set(&p->family, &rd->text);
		}
		if (e == E_GIVEN) {
			p->have_n = 1;
			return sb_set(&p->given, &rd->text);
		}
	}
	return 0;
}

static int
end_group(struct reader *rd, enum el e)
{
	struct group_rec *g = &rd->g;
	int d = rd->depth;
	enum el up = at(rd, 3);

	if (d == 2)
		return group_end(rd);
	if (d == 3 && e == E_RELATIONSHIP)
		return relationship_end(rd);
	if (d == 4 && e == E_ID && up == E_SOURCEDID && !rd->sdskip)
		return take(rd, &g->id, &g->have_id);
	if (d == 4 && e == E_TYPEVALUE && up == E_GROUPTYPE)
		return take(rd, &g->type, &g->have_type);
	if (d == 4 && e == E_SHORT && up == E_DESCRIPTION)
		return take(rd, &g->shortname, &g->have_short);
	if (d == 4 && e == E_LONG && up == E_DESCRIPTION)
		return take(rd, &g->longname, &g->have_long);
	if (d == 4 && e == E_ADMINPERIOD && up == E_TIMEFRAME)
		return take(rd, &g->term, &g->have_term);
	if (d == 4 && e == E_BEGIN && up == E_TIMEFRAME)
		return take(rd, &g->begin, &g->have_begin);
	if (d == 4 && e == E_END && up == E_TIMEFRAME)
		return take(rd, &g->end, &g->have_end);
	if (d == 4 && e == E_ORGNAME && up == E_ORG)
		return take(rd, &g->orgname, &g->have_orgname);
	if (d == 4 && e == E_ORGUNIT && up == E_ORG)
		return take(rd, &g->orgunit, &g->have_orgunit);
	if (d == 5 && e == E_ID && at(rd, 4) == E_SOURCEDID &&
	    up == E_RELATIONSHIP)
		return take(rd, &g->relid, &g->have_relid);
	return 0;
}

static int
end_membership(struct reader *rd, enum el e)
{
	struct member_rec *m = &rd->m;
	int d = rd->depth;
	enum el up = at(rd, 3);

	if (d == 4 && e == E_ID && up == E_SOURCEDID && !m->have_group) {
		if (take(rd, &m->group, &m->have_group) == -1)
			return -1;
		m->gidx = find_key(&rd->gk, &m->group);
		return 0;
	}
	if (up != E_MEMBER)
		return 0;
	if (d == 4 && e == E_ROLE)
		return role_end(rd);
	if (d == 4 && e == E_IDTYPE)
		return take(rd, &m->idtype, &m->have_idtype);
	if (d == 5 && e == E_ID && at(rd, 4) == E_SOURCEDID && !rd->sdskip)
		return take(rd, &m->person, &m->have_person);
	if (d == 5 && e == E_STATUS && at(rd, 4) == E_ROLE)
		return take(rd, &m->status, &m->have_status);
	/* a role timeframe's dates count with restrict="1" only: without
	 * it they restrict nothing (Moodle ignores them too) */
	if (d == 6 && at(rd, 5) == E_TIMEFRAME && at(rd, 4) == E_ROLE &&
	    m->cur_restrict) {
		if (e == E_BEGIN) {
			m->bline = cur_line(rd);
			return take(rd, &m->begin, &m->have_begin);
		}
		if (e == E_END) {
			m->eline = cur_line(rd);
			return take(rd, &m->end, &m->have_end);
		}
	}
	return 0;
}

static int
end_element(struct reader *rd)
{
	enum el e = at(rd, rd->depth);
	int rc = 0;

	/* An overlong value is not kept: its record is rejected. */
	if (rd->want && rd->textover) {
		if (rd->over == NULL) {
			rd->over = el_names[e];
			rd->overline = cur_line(rd);
		}
		rd->textover = 0;
		sb_clear(&rd->text);
	}
	if (rd->want)
		text_trim(&rd->text);
	switch (at(rd, 2)) {
	case E_PERSON:
		rc = end_person(rd, e);
		break;
	case E_GROUP:
		rc = end_group(rd, e);
		break;
	case E_MEMBERSHIP:
		rc = end_membership(rd, e);
		break;
	case E_PROPERTIES:
		if (rd->depth == 3 && e == E_DATETIME)
			rd->have_datetime = parse_datetime(sb_str(&rd->text),
			    &rd->r->datetime) == 0;
		break;
	default:
		break;
	}
	if (e == E_SOURCEDID)
		rd->sdskip = 0;
	rd->depth--;
	sb_clear(&rd->text);
	rd->want = 0;
	return rc;
}

/* ------------------------------------------------------------------ */
/* libxml2 glue.                                                       */

/* Stop the parser after our own error (already set). */
static void
fail(struct reader *rd)
{
	rd->failed = 1;
	xmlStopParser(rd->ctxt);
}

static void
sax_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
    const xmlChar *uri, int nns, const xmlChar **ns, int nattrs,
    int ndefaulted, const xmlChar **attrs)
{
	struct reader *rd = ctx;

	(void)prefix;
	(void)uri;
	(void)nns;
	(void)ns;
	(void)ndefaulted;
	if (rd->failed)
		return;
	rd->attrs = attrs;
	rd->nattrs = nattrs;
	if (start_element(rd, el_lookup(rd, localname)) == -1)
		fail(rd);
	rd->attrs = NULL;
	rd->nattrs = 0;
}

static void
sax_end(void *ctx, const xmlChar *localname, const xmlChar *prefix,
    const xmlChar *uri)
{
	struct reader *rd = ctx;

	(void)localname;
	(void)prefix;
	(void)uri;
	if (rd->failed)
		return;
	if (end_element(rd) == -1)
		fail(rd);
}

static void
sax_text(void *ctx, const xmlChar *ch, int len)
{
	struct reader *rd = ctx;

	if (rd->failed || !rd->want || len <= 0 || rd->textover)
		return;
	if (rd->text.len + (size_t)len > IMS_VALUE_MAX) {
		rd->textover = 1;
		return;
	}
	if (sb_append(&rd->text, (const char *)ch, (size_t)len) == -1)
		fail(rd);
}

#if LIBXML_VERSION >= 21200
static void
sax_error(void *ctx, const xmlError *err)
#else
static void
sax_error(void *ctx, xmlErrorPtr err)
#endif
{
	struct reader *rd = ctx;
	size_t n;

	if (err == NULL || err->level < XML_ERR_ERROR || rd->err[0] != '\0')
		return;
	snprintf(rd->err, sizeof(rd->err), "%s:%d: %s", rd->path, err->line,
	    err->message ? err->message : "not well-formed");
	n = strlen(rd->err);
	while (n > 0 && (rd->err[n - 1] == '\n' || rd->err[n - 1] == ' '))
		rd->err[--n] = '\0';
	/* libxml2 dumps the bytes on following lines: keep the first */
	if (strchr(rd->err, '\n') != NULL)
		*strchr(rd->err, '\n') = '\0';
	if (strstr(rd->err, "not proper UTF-8") != NULL)
		snprintf(rd->err + strlen(rd->err),
		    sizeof(rd->err) - strlen(rd->err), ": the file is not "
		    "UTF-8 and declares no other encoding; it looks like "
		    "ISO-8859-1 or Windows-1252: export UTF-8, or declare "
		    "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>");
}

static void
reader_free(struct reader *rd)
{
	struct tbuf *p[] = { &rd->text, &rd->abuf, &rd->p.id, &rd->p.userid,
		&rd->p.fn, &rd->p.family, &rd->p.given, &rd->p.email,
		&rd->p.role, &rd->p.nin, &rd->g.id, &rd->g.type, &rd->g.shortname,
		&rd->g.longname, &rd->g.term, &rd->g.parent, &rd->g.relid,
		&rd->g.begin, &rd->g.end, &rd->g.orgname, &rd->g.orgunit,
		&rd->m.group, &rd->m.person, &rd->m.idtype, &rd->m.roleraw,
		&rd->m.status, &rd->m.begin, &rd->m.end };
	size_t i;

	for (i = 0; i < sizeof(p) / sizeof(p[0]); i++)
		sb_free(p[i]);
	if (rd->ctxt != NULL) {
		if (rd->ctxt->myDoc != NULL)
			xmlFreeDoc(rd->ctxt->myDoc);
		xmlFreeParserCtxt(rd->ctxt);
	}
	if (rd->gz != NULL)
		gzclose(rd->gz);
	if (rd->map != NULL)
		munmap(rd->map, rd->mapsize);
	keyindex_free(&rd->pk);
	keyindex_free(&rd->gk);
}

/* A gzread that names the file on failure.  Returns bytes, 0 at the
 * end, or -1 (error set). */
static int
read_chunk(struct reader *rd, char *buf, unsigned len)
{
	int n, zerr;
	const char *msg;

	if ((n = gzread(rd->gz, buf, len)) >= 0)
		return n;
	msg = gzerror(rd->gz, &zerr);
	if (zerr == Z_ERRNO)
		return error_sys("%s: read", rd->path);
	return error_set("%s: read: %s", rd->path, msg);
}

/* The parser's verdict after the last chunk.  0 or -1. */
static int
parse_result(struct reader *rd)
{
	if (rd->failed)
		return -1;
	if (rd->err[0] != '\0')
		return error_set("%s", rd->err);
	if (!rd->ctxt->wellFormed)
		return error_set("%s: not well-formed", rd->path);
	if (!rd->seen_root || rd->depth != 0)
		return error_set("%s: no <enterprise> document", rd->path);
	return 0;
}

/* The first n-byte needle in b[0..len), or NULL. */
static const char *
find_bytes(const char *b, size_t len, const char *needle, size_t n)
{
	size_t i;

	for (i = 0; i + n <= len; i++)
		if (b[i] == needle[0] && memcmp(b + i, needle, n) == 0)
			return b + i;
	return NULL;
}

/* The encoding the XML declaration at the start of b names, if any. */
static void
sniff_decl(struct encsniff *e, const char *b, size_t n)
{
	static const char *const latin[] = { "ISO-8859-1", "ISO8859-1",
	    "latin1", "latin-1", "ISO-8859-15", "windows-1252", "cp1252" };
	const char *end, *p;
	size_t i, k;

	e->decl_seen = 1;
	e->line = 1;
	if (n > 256)
		n = 256;	/* the declaration is at the start */
	if ((end = find_bytes(b, n, "?>", 2)) == NULL ||
	    (p = find_bytes(b, (size_t)(end - b), "encoding", 8)) == NULL)
		return;
	for (p += 8; p < end && (*p == ' ' || *p == '=' || *p == '\t'); p++)
		;
	if (p >= end || (*p != '"' && *p != '\''))
		return;
	for (p++, k = 0; p < end && *p != '"' && *p != '\'' &&
	    k + 1 < sizeof(e->name); p++)
		e->name[k++] = *p;
	e->name[k] = '\0';
	for (i = 0; i < sizeof(latin) / sizeof(latin[0]); i++)
		if (strcasecmp(e->name, latin[i]) == 0)
			e->latin = 1;
}

/* Count UTF-8 sequences and other high bytes of a chunk (Latin only). */
static void
sniff_bytes(struct encsniff *e, const unsigned char *b, size_t n)
{
	size_t i, k, len;

	for (i = 0; i < n && e->latin && e->other == 0; i++) {
		if (b[i] == '\n')
			e->line++;
		if (b[i] < 0x80)
			continue;
		len = b[i] >= 0xc2 && b[i] <= 0xdf ? 2 : b[i] >= 0xe0 &&
		    b[i] <= 0xef ? 3 : b[i] >= 0xf0 && b[i] <= 0xf4 ? 4 : 0;
		if (len == 0 || i + len > n) {
			/* a sequence cut by the chunk's end is not judged */
			if (len == 0)
				e->other++;
			i = n;
			break;
		}
		for (k = 1; k < len && (b[i + k] & 0xc0) == 0x80; k++)
			;
		if (k < len) {
			e->other++;
			break;
		}
		if (e->utf8++ == 0)
			e->first = e->line;
		i += len - 1;
	}
}

/* A declared Latin encoding over UTF-8 bytes: an error.  0 or -1. */
static int
sniff_verdict(const struct reader *rd)
{
	const struct encsniff *e = &rd->enc;

	if (!e->latin || e->utf8 == 0 || e->other > 0)
		return 0;
	return error_set("%s:%lu: declared %s but written in UTF-8 (every "
	    "non-ASCII character is a UTF-8 sequence, the first on this "
	    "line): declare encoding=\"UTF-8\" in the first line, or "
	    "export %s", rd->path, e->first, e->name, e->name);
}

/* ------------------------------------------------------------------ */
/* The fast path.                                                      */

/*
 * Memberships are most of a large file (ten million <member>s of some
 * 250 bytes each), and libxml2 spends most of the read on their
 * markup.  Once the parser stands between two top-level elements, a
 * <membership> in the common shape (the one sisfeed and most producers
 * write: plain tags, no attributes but roletype and recstatus on
 * <role> and restrict="1" on a role timeframe's <begin> and <end>, no
 * comments, entities or CDATA, printable ASCII text) is
 * read here from the raw bytes and handed to the same record logic
 * (membership_begin, role_end); so is a <person> before the first
 * membership (sc_person says its shape; UTF-8 text and the five
 * predefined entities are read, person_end makes the record).
 * Whatever else (another shape, another
 * encoding than UTF-8, a block larger than FAST_MAX) goes to libxml2
 * from the start of that block, with the parser's line number moved on
 * by the lines read here, so rejects and errors name the same lines.
 * The shape is strict enough that a block it accepts is well-formed.
 */
#define FAST_MAX	(16 * 1024 * 1024)

/* One <role> read by the fast path: pointers into the read buffer. */
struct fastrole {
	const char	*pkey, *idtype, *rt, *st;	/* text, trimmed */
	const char	*tb, *te;	/* timeframe begin, end, or NULL */
	uint64_t	 phash;		/* of pkey */
	size_t		 plen, idlen, rtlen, stlen, tblen, telen;
	unsigned long	 mline, rline;	/* of <member>, of <role> */
	unsigned long	 bline, eline;	/* of </begin>, </end> */
	int		 have_rt;	/* roletype given */
	int		 rstatus;	/* recstatus, 0 when absent */
};

/* A <membership> read by the fast path. */
struct fastblock {
	const char	*gkey;
	size_t		 glen;
	struct fastrole	*v;
	size_t		 n, cap;
};

/* A cursor over the raw bytes of one block. */
struct scan {
	const char	*p, *end;
	unsigned long	 line;
	int		 more;	/* stopped at the end of the bytes */
	int		 no;	/* stopped at bytes not in the shape */
};

/* Not in the shape: stop.  Returns 0. */
static inline int
sc_no(struct scan *sc)
{
	sc->no = 1;
	return 0;
}

/*
 * How many of the eight bytes read into a word (in memory order) come
 * before the first nonzero one, w != 0: the spaces before the first
 * other byte once the word is XORed with eight spaces.
 */
static inline size_t
spaces_before(uint64_t w)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (size_t)__builtin_ctzll(w) / 8;
#else
	unsigned char b[8];
	size_t i;

	memcpy(b, &w, 8);
	for (i = 0; i < 8 && b[i] == 0; i++)
		;
	return i;
#endif
}

/* Skip white space between tags.  1, or 0 (stopped). */
static inline int
sc_ws(struct scan *sc)
{
	const char *p = sc->p, *end = sc->end;
	uint64_t w;

	for (;;) {
		/* indentation: the spaces of eight bytes at once */
		while (end - p >= 8) {
			memcpy(&w, p, 8);
			if ((w ^= 0x2020202020202020ULL) != 0) {
				p += spaces_before(w);
				break;
			}
			p += 8;
		}
		if (p == end)
			break;
		if (*p == ' ' || *p == '\t')
			p++;
		else if (*p == '\n') {
			sc->line++;
			p++;
		} else if (*p == '\r') {
			if (p + 1 == end)
				break;
			if (p[1] != '\n') {
				sc->p = p;
				return sc_no(sc);	/* a lone CR */
			}
			p++;
		} else {
			sc->p = p;
			return 1;
		}
	}
	sc->p = p;
	sc->more = 1;
	return 0;
}

/* A literal and its length, for the scanner's calls: no strlen. */
#define LIT(s)	(s), (sizeof(s) - 1)

/* 1 if p[0..n) is lit[0..n): words, not bytes, where it can. */
static inline int
lit_eq(const char *p, const char *lit, size_t n)
{
	uint64_t a, b;
	uint32_t c, d;

	for (; n >= 8; p += 8, lit += 8, n -= 8) {
		memcpy(&a, p, 8);
		memcpy(&b, lit, 8);
		if (a != b)
			return 0;
	}
	if (n >= 4) {
		memcpy(&c, p, 4);
		memcpy(&d, lit, 4);
		if (c != d)
			return 0;
		p += 4;
		lit += 4;
		n -= 4;
	}
	for (; n > 0; p++, lit++, n--)
		if (*p != *lit)
			return 0;
	return 1;
}

/* 1 if the bytes at the cursor are lit (not consumed); 0 if not, with
 * more set when they might be once more bytes come. */
static inline int
sc_peek(struct scan *sc, const char *lit, size_t n)
{
	size_t have = (size_t)(sc->end - sc->p);

	if (have >= n)
		return lit_eq(sc->p, lit, n);
	if (memcmp(sc->p, lit, have) == 0)
		sc->more = 1;
	return 0;
}

/* Consume the literal tag lit.  1, or 0 (stopped). */
static inline int
sc_lit(struct scan *sc, const char *lit, size_t n)
{
	if (sc->no || sc->more)
		return 0;
	if (!sc_peek(sc, lit, n))
		return sc->more ? 0 : sc_no(sc);
	sc->p += n;
	return 1;
}

/*
 * The text up to the next '<', trimmed as text_trim does: printable
 * ASCII, blanks and line ends; '&' (an entity), ']' (maybe "]]>"),
 * a CR inside the text, a value over IMS_VALUE_MAX and anything else
 * leave the shape.  1, or 0.
 */
static inline int
sc_text(struct scan *sc, const char **s, size_t *len)
{
	const char *b = sc->p, *p = sc->p, *end = sc->end, *e;
	unsigned char c;
	int cr = 0;

	if (sc->no || sc->more)
		return 0;
	for (; p < end && (c = (unsigned char)*p) != '<'; p++) {
		if (c >= 0x20 && c < 0x7f && c != '&' && c != ']')
			continue;
		if (c == '\n')
			sc->line++;
		else if (c == '\r')
			cr = 1;
		else if (c != '\t') {
			sc->p = p;
			return sc_no(sc);
		}
	}
	sc->p = p;
	if (p == end) {
		sc->more = 1;
		return 0;
	}
	if ((size_t)(p - b) > IMS_VALUE_MAX)
		return sc_no(sc);	/* libxml2's path rejects it */
	for (e = p; b < e && (*b == ' ' || *b == '\t' || *b == '\n' ||
	    *b == '\r'); b++)
		;
	while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
	    e[-1] == '\r'))
		e--;
	if (cr && memchr(b, '\r', (size_t)(e - b)) != NULL)
		return sc_no(sc);	/* libxml2 would make it a LF */
	*s = b;
	*len = (size_t)(e - b);
	return 1;
}

/* <name>text</name>, the text into *s, *len.  1, or 0. */
static inline int
sc_leaf(struct scan *sc, const char *open, size_t olen, const char *close,
    size_t clen, const char **s, size_t *len)
{
	return sc_lit(sc, open, olen) && sc_text(sc, s, len) &&
	    sc_lit(sc, close, clen);
}

/* <sourcedid>[<source>..</source>]<id>..</id></sourcedid>.  1, or 0. */
static int
sc_sourcedid(struct scan *sc, const char **id, size_t *len)
{
	const char *src;
	size_t srclen;

	if (!sc_lit(sc, LIT("<sourcedid>")) || !sc_ws(sc))
		return 0;
	if (sc_peek(sc, LIT("<source>")) && (!sc_leaf(sc, LIT("<source>"),
	    LIT("</source>"), &src, &srclen) || !sc_ws(sc)))
		return 0;
	return sc_leaf(sc, LIT("<id>"), LIT("</id>"), id, len) && sc_ws(sc) &&
	    sc_lit(sc, LIT("</sourcedid>"));
}

/*
 * The attributes of a start tag up to its '>' (*empty 0) or "/>" (1):
 * only the n names given, each once, double-quoted, the value
 * printable ASCII without '&' and '<' (what libxml2 gives back as it
 * is).  val[i] is NULL for one not there.  1, or 0 (stopped).
 */
static int
sc_attrs(struct scan *sc, const char *const *names, size_t n,
    const char **val, size_t *vlen, int *empty)
{
	const char *v;
	size_t i, k;

	for (i = 0; i < n; i++)
		val[i] = NULL;
	for (;;) {
		if (sc->p + 1 >= sc->end) {
			sc->more = 1;
			return 0;
		}
		if (*sc->p == '>' || (sc->p[0] == '/' && sc->p[1] == '>')) {
			*empty = *sc->p == '/';
			sc->p += *empty ? 2 : 1;
			return 1;
		}
		if (*sc->p != ' ')
			return sc_no(sc);
		for (i = 0; i < n; i++) {
			k = strlen(names[i]);
			if ((size_t)(sc->end - sc->p) < k + 3) {
				sc->more = 1;
				return 0;
			}
			if (memcmp(sc->p + 1, names[i], k) == 0 &&
			    sc->p[1 + k] == '=' && sc->p[2 + k] == '"')
				break;
		}
		if (i == n)
			return sc_no(sc);
		if (val[i] != NULL)
			return sc_no(sc);	/* twice: not well-formed */
		sc->p += 1 + k + 2;
		for (v = sc->p; sc->p < sc->end && *sc->p != '"'; sc->p++)
			if ((unsigned char)*sc->p < 0x20 ||
			    (unsigned char)*sc->p >= 0x7f || *sc->p == '&' ||
			    *sc->p == '<')
				return sc_no(sc);
		if (sc->p == sc->end) {
			sc->more = 1;
			return 0;
		}
		val[i] = v;
		vlen[i] = (size_t)(sc->p - v);
		sc->p++;
	}
}

/* The attributes of <role ...>: roletype and recstatus.  1, or 0. */
static int
sc_role_attrs(struct scan *sc, struct fastrole *fr)
{
	static const char *const names[] = { "roletype", "recstatus" };
	const char *v[2];
	size_t l[2];
	int empty;

	if (!sc_attrs(sc, names, 2, v, l, &empty))
		return 0;
	if (empty)
		return sc_no(sc);
	fr->have_rt = v[0] != NULL;
	fr->rt = v[0];
	fr->rtlen = v[0] != NULL ? l[0] : 0;
	fr->rstatus = v[1] != NULL ? recstatus_of(v[1], l[1]) : 0;
	return 1;
}

/* 1 if s[0..n) holds U+FFFE or U+FFFF (UTF-8), not XML characters. */
static int
has_nonchar(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i;

	for (i = 0; i + 2 < n; i++)
		if (u[i] == 0xef && u[i + 1] == 0xbf &&
		    (u[i + 2] == 0xbe || u[i + 2] == 0xbf))
			return 1;
	return 0;
}

/*
 * Text up to the next '<' decoded into dst and trimmed, as the SAX
 * path has it: UTF-8 (checked; U+FFFE and U+FFFF leave the shape),
 * the five predefined entities; a character reference, another
 * entity, "]]>", a control, a CR inside the text or a value over
 * IMS_VALUE_MAX leave the shape.
 * 1, 0 (stopped), or -1 (no memory).
 */
static int
sc_dtext(struct scan *sc, struct tbuf *dst)
{
	static const struct { const char *name; size_t len; char c; } ent[] = {
		{ "&amp;", 5, '&' }, { "&lt;", 4, '<' }, { "&gt;", 4, '>' },
		{ "&quot;", 6, '"' }, { "&apos;", 6, '\'' } };
	const char *b = sc->p, *seg = sc->p;
	unsigned char c;
	int high = 0;
	size_t i;

	if (sc->no || sc->more)
		return 0;
	sb_clear(dst);
	for (; sc->p < sc->end && *sc->p != '<'; sc->p++) {
		c = (unsigned char)*sc->p;
		if (c == '\n')
			sc->line++;
		else if (c >= 0x80)
			high = 1;
		else if (c == 0x7f || (c < 0x20 && c != '\t' && c != '\r'))
			return sc_no(sc);
		else if (c == ']' && sc->end - sc->p >= 3 &&
		    sc->p[1] == ']' && sc->p[2] == '>')
			return sc_no(sc);
		else if (c == '&') {
			for (i = 0; i < sizeof(ent) / sizeof(ent[0]); i++)
				if ((size_t)(sc->end - sc->p) >= ent[i].len &&
				    memcmp(sc->p, ent[i].name,
				    ent[i].len) == 0)
					break;
			if (i == sizeof(ent) / sizeof(ent[0]) &&
			    sc->end - sc->p < 6) {
				sc->more = 1;	/* maybe cut by the end */
				return 0;
			}
			if (i == sizeof(ent) / sizeof(ent[0]))
				return sc_no(sc);
			if (sb_append(dst, seg, (size_t)(sc->p - seg)) == -1 ||
			    sb_append(dst, &ent[i].c, 1) == -1)
				return -1;
			sc->p += ent[i].len - 1;
			seg = sc->p + 1;
		}
	}
	if (sc->p == sc->end) {
		sc->more = 1;
		return 0;
	}
	if ((size_t)(sc->p - b) > IMS_VALUE_MAX)
		return sc_no(sc);	/* libxml2's path rejects it */
	if (high && (!utf8_valid(b, (size_t)(sc->p - b)) ||
	    has_nonchar(b, (size_t)(sc->p - b))))
		return sc_no(sc);
	if (sb_append(dst, seg, (size_t)(sc->p - seg)) == -1)
		return -1;
	text_trim(dst);
	if (dst->len > 0 && memchr(dst->p, '\r', dst->len) != NULL)
		return sc_no(sc);	/* libxml2 would make it a LF */
	return 1;
}

/* <name>text</name> decoded into dst.  1, 0 (stopped) or -1. */
static int
sc_dleaf(struct scan *sc, const char *open, size_t olen, const char *close,
    size_t clen, struct tbuf *dst)
{
	int rc;

	if (!sc_lit(sc, open, olen))
		return 0;
	if ((rc = sc_dtext(sc, dst)) != 1)
		return rc;
	return sc_lit(sc, close, clen);
}

/* sc_dleaf, then white space. */
static int
sc_dleaf_ws(struct scan *sc, const char *open, size_t olen,
    const char *close, size_t clen, struct tbuf *dst)
{
	int rc = sc_dleaf(sc, open, olen, close, clen, dst);

	return rc == 1 ? sc_ws(sc) : rc;
}

/* <name>[<fn>..</fn>][<n>(<family>..</family>|<given>..</given>)*</n>]
 * </name> into p.  1, 0 (stopped) or -1. */
static int
sc_pname(struct scan *sc, struct person_rec *p)
{
	int rc;

	if (!sc_lit(sc, LIT("<name>")) || !sc_ws(sc))
		return 0;
	if (sc_peek(sc, LIT("<fn>")) &&
	    (rc = sc_dleaf_ws(sc, LIT("<fn>"), LIT("</fn>"), &p->fn)) != 1)
		return rc;
	if (sc_peek(sc, LIT("<n>"))) {
		if (!sc_lit(sc, LIT("<n>")) || !sc_ws(sc))
			return 0;
		for (;;) {
			if (sc_peek(sc, LIT("<family>")))
				rc = sc_dleaf_ws(sc, LIT("<family>"),
				    LIT("</family>"), &p->family);
			else if (sc_peek(sc, LIT("<given>")))
				rc = sc_dleaf_ws(sc, LIT("<given>"),
				    LIT("</given>"), &p->given);
			else
				break;
			if (rc != 1)
				return rc;
			p->have_n = 1;
		}
		if (!sc_lit(sc, LIT("</n>")) || !sc_ws(sc))
			return 0;
	}
	return sc_lit(sc, LIT("</name>")) && sc_ws(sc);
}

/* <systemrole .../> and <institutionrole .../> into p.  1, or 0. */
static int
sc_proles(struct scan *sc, struct person_rec *p)
{
	static const char *const sys[] = { "systemroletype" };
	static const char *const inst[] = { "primaryrole",
	    "institutionroletype" };
	const char *v[2];
	size_t l[2];
	int empty;

	if (sc_peek(sc, LIT("<systemrole "))) {
		sc->p += 11;
		if (!sc_attrs(sc, sys, 1, v, l, &empty))
			return 0;
		if (!empty)
			return sc_no(sc);
		p->active = !(v[0] != NULL && l[0] == 4 &&
		    memcmp(v[0], "None", 4) == 0);
		if (!sc_ws(sc))
			return 0;
	}
	if (sc_peek(sc, LIT("<institutionrole "))) {
		sc->p += 16;
		if (!sc_attrs(sc, inst, 2, v, l, &empty))
			return 0;
		if (!empty)
			return sc_no(sc);
		if (v[1] != NULL) {
			sb_clear(&p->role);
			if (sb_append(&p->role, v[1], l[1]) == -1)
				return -1;
			p->have_role = 1;
			p->role_primary = v[0] != NULL && l[0] == 3 &&
			    memcmp(v[0], "Yes", 3) == 0;
		}
		if (!sc_ws(sc))
			return 0;
	}
	return 1;
}

/*
 * White space and one whole <person> in the common shape (sourcedid,
 * then userid without a type, name, email, systemrole and
 * institutionrole, each optional, in that order) into rd->p, as the
 * SAX events would leave it.  1, 0 (sc->more: not all there yet; else
 * not in the shape), or -1 (no memory).
 */
static int
sc_person(struct scan *sc, struct reader *rd)
{
	static const char *const attrs[] = { "recstatus" };
	struct person_rec *p = &rd->p;
	const char *v[1];
	size_t l[1];
	int empty, rank, rc;

	if (!sc_ws(sc) || !sc_lit(sc, LIT("<person")) ||
	    !sc_attrs(sc, attrs, 1, v, l, &empty))
		return 0;
	if (empty)
		return sc_no(sc);
	rd->over = NULL;
	person_clear(p);
	p->recstatus = v[0] != NULL ? recstatus_of(v[0], l[0]) : 0;
	p->line = sc->line;
	if (!sc_ws(sc) || !sc_lit(sc, LIT("<sourcedid>")) || !sc_ws(sc))
		return 0;
	if (sc_peek(sc, LIT("<source>")) &&
	    (rc = sc_dleaf_ws(sc, LIT("<source>"), LIT("</source>"),
	    &rd->text)) != 1)
		return rc;
	if ((rc = sc_dleaf_ws(sc, LIT("<id>"), LIT("</id>"), &p->id)) != 1)
		return rc;
	p->have_id = 1;
	if (!sc_lit(sc, LIT("</sourcedid>")) || !sc_ws(sc))
		return 0;
	if (sc_peek(sc, LIT("<userid>"))) {
		if ((rc = sc_dleaf_ws(sc, LIT("<userid>"), LIT("</userid>"),
		    &rd->text)) != 1)
			return rc;
		/* one untyped <userid>: taken when its rank is not 0 */
		if ((rank = userid_rank(rd, NULL)) > 0) {
			p->uid_rank = rank;
			p->have_userid = 1;
			if (sb_set(&p->userid, &rd->text) == -1)
				return -1;
		}
	}
	if (sc_peek(sc, LIT("<name>")) && (rc = sc_pname(sc, p)) != 1)
		return rc;
	if (sc_peek(sc, LIT("<email>"))) {
		if ((rc = sc_dleaf_ws(sc, LIT("<email>"), LIT("</email>"),
		    &p->email)) != 1)
			return rc;
		p->have_email = 1;
	}
	if ((rc = sc_proles(sc, p)) != 1)
		return rc;
	return sc_lit(sc, LIT("</person>"));
}

/* Room for one more role in fb.  0 or -1. */
static int
fast_grow(struct fastblock *fb)
{
	struct fastrole *nv;
	size_t ncap;

	if (fb->n < fb->cap)
		return 0;
	ncap = fb->cap ? fb->cap * 2 : 256;
	if ((nv = reallocarray(fb->v, ncap, sizeof(*nv))) == NULL)
		return error_sys("memberships");
	fb->v = nv;
	fb->cap = ncap;
	return 0;
}

/*
 * A role's <timeframe> at the cursor in the shape sisfeed writes:
 * <begin restrict="1"> and <end restrict="1">, each optional, into fr.
 * 1, or 0 (stopped; another timeframe goes to libxml2).
 */
static int
sc_role_timeframe(struct scan *sc, struct fastrole *fr)
{
	if (!sc_lit(sc, LIT("<timeframe>")) || !sc_ws(sc))
		return 0;
	if (sc_peek(sc, LIT("<begin restrict=\"1\">"))) {
		if (!sc_leaf(sc, LIT("<begin restrict=\"1\">"),
		    LIT("</begin>"), &fr->tb, &fr->tblen) || !sc_ws(sc))
			return 0;
		fr->bline = sc->line;
	}
	if (sc_peek(sc, LIT("<end restrict=\"1\">"))) {
		if (!sc_leaf(sc, LIT("<end restrict=\"1\">"), LIT("</end>"),
		    &fr->te, &fr->telen) || !sc_ws(sc))
			return 0;
		fr->eline = sc->line;
	}
	return sc_lit(sc, LIT("</timeframe>")) && sc_ws(sc);
}

/*
 * One <member> at the cursor into fb: one entry per <role>.  1, 0
 * (stopped), or -1 (no memory).
 */
static int
sc_member(struct scan *sc, struct fastblock *fb)
{
	struct fastrole base, *fr;

	memset(&base, 0, sizeof(base));
	if (!sc_lit(sc, LIT("<member>")))
		return 0;
	base.mline = sc->line;
	if (!sc_ws(sc) || !sc_sourcedid(sc, &base.pkey, &base.plen) ||
	    !sc_ws(sc) || !sc_leaf(sc, LIT("<idtype>"), LIT("</idtype>"),
	    &base.idtype, &base.idlen) || !sc_ws(sc))
		return 0;
	while (sc_peek(sc, LIT("<role"))) {
		sc->p += 5;
		if (fast_grow(fb) == -1)
			return -1;
		fr = &fb->v[fb->n];
		*fr = base;
		if (!sc_role_attrs(sc, fr))
			return 0;
		fr->rline = sc->line;
		if (!sc_ws(sc) || !sc_leaf(sc, LIT("<status>"),
		    LIT("</status>"), &fr->st, &fr->stlen) || !sc_ws(sc))
			return 0;
		if (sc_peek(sc, LIT("<timeframe>")) &&
		    !sc_role_timeframe(sc, fr))
			return 0;
		if (!sc_lit(sc, LIT("</role>")) || !sc_ws(sc))
			return 0;
		fb->n++;
	}
	return sc_lit(sc, LIT("</member>"));
}

/*
 * White space and one whole <membership> in the common shape at the
 * cursor, into fb.  1 (sc->p past it), 0 (sc->more: not all there
 * yet; else not in the shape), or -1 (no memory).
 */
static int
sc_membership(struct scan *sc, struct fastblock *fb)
{
	int rc;

	fb->n = 0;
	if (!sc_ws(sc) || !sc_lit(sc, LIT("<membership>")) || !sc_ws(sc) ||
	    !sc_sourcedid(sc, &fb->gkey, &fb->glen) || !sc_ws(sc))
		return 0;
	while (!sc_peek(sc, LIT("</membership>"))) {
		if (sc->more)
			return 0;
		if ((rc = sc_member(sc, fb)) != 1)
			return rc;
		if (!sc_ws(sc))
			return 0;
	}
	sc->p += 13;
	return 1;
}

/* Set b to s[0..len).  0 or -1. */
static int
sb_setn(struct tbuf *b, const char *s, size_t len)
{
	b->len = 0;
	return sb_append(b, s, len);
}

#define FAST_AHEAD	8

/* Hash the person key of fr and start loading its index slot. */
static void
fast_prefetch(const struct reader *rd, struct fastrole *fr)
{
	fr->phash = keyindex_hash(fr->pkey, fr->plen);
	keyindex_prefetch(&rd->pk, fr->phash);
}

/*
 * The records of a block the fast path read, as the SAX events of the
 * same bytes would make them.  0 or -1.
 */
static int
fast_apply(struct reader *rd, struct fastblock *fb)
{
	struct member_rec *m = &rd->m;
	const struct fastrole *fr, *prev = NULL;
	size_t i;

	if (membership_begin(rd) == -1)
		return -1;
	m->have_group = 1;
	if (sb_setn(&m->group, fb->gkey, fb->glen) == -1)
		return -1;
	m->gidx = find_key(&rd->gk, &m->group);
	/* The persons' slots are loaded a few members ahead: a group's
	 * members are spread over the index, and each lookup would
	 * wait for memory otherwise. */
	for (i = 0; i < fb->n && i < FAST_AHEAD; i++)
		fast_prefetch(rd, &fb->v[i]);
	for (i = 0; i < fb->n; i++, prev = fr) {
		fr = &fb->v[i];
		if (i + FAST_AHEAD < fb->n)
			fast_prefetch(rd, &fb->v[i + FAST_AHEAD]);
		if (prev == NULL || prev->pkey != fr->pkey) {
			m->have_person = m->have_idtype = 1;
			m->pidx = keyindex_find(&rd->pk, fr->pkey, fr->plen,
			    fr->phash);
			m->mline = fr->mline;
			if (sb_setn(&m->person, fr->pkey, fr->plen) == -1 ||
			    sb_setn(&m->idtype, fr->idtype, fr->idlen) == -1)
				return -1;
		}
		if (sb_setn(&m->roleraw, fr->have_rt ? fr->rt : "",
		    fr->have_rt ? fr->rtlen : 0) == -1 ||
		    sb_setn(&m->status, fr->st, fr->stlen) == -1)
			return -1;
		m->roletype = fr->have_rt ?
		    role_parse(sb_str(&m->roleraw)) : 1;
		m->rstatus = fr->rstatus;
		m->have_status = 1;
		m->have_begin = fr->tb != NULL;
		m->have_end = fr->te != NULL;
		m->bline = fr->bline;
		m->eline = fr->eline;
		if ((m->have_begin && sb_setn(&m->begin, fr->tb, fr->tblen) ==
		    -1) || (m->have_end && sb_setn(&m->end, fr->te,
		    fr->telen) == -1))
			return -1;
		m->rline = fr->rline;
		if (role_end(rd) == -1)
			return -1;
	}
	return 0;
}

/*
 * White space and one block in the common shape at the cursor, read
 * and its records made: a <person> (before any membership), else a
 * <membership>.  1, 0 (stopped: sc->more or not in the shape; nothing
 * made), or -1 (error set).
 */
static int
fast_block(struct reader *rd, struct scan *sc, struct fastblock *fb)
{
	int rc;

	if (!sc_ws(sc))
		return 0;
	if (!rd->sealed && sc_peek(sc, LIT("<person"))) {
		if ((rc = sc_person(sc, rd)) != 1)
			return rc;
		return person_end(rd) == -1 ? -1 : 1;
	}
	if ((rc = sc_membership(sc, fb)) != 1)
		return rc;
	return fast_apply(rd, fb) == -1 ? -1 : 1;
}

/* The read buffer: unread bytes buf[pos..len). */
struct feed {
	char		*buf;
	size_t		 cap, pos, len;
	int		 eof;
	/* A plain file is mapped, not read: buf is the whole file, len
	 * the end of the window read so far; the part read is dropped
	 * from memory every FEED_DROP bytes. */
	int		 mapped;
	size_t		 size, dropped;
};
#define FEED_DROP	(32 * 1024 * 1024)

/* Sniff the encoding of the n new bytes at b. */
static void
feed_sniff(struct reader *rd, const char *b, size_t n)
{
	if (!rd->enc.decl_seen)
		sniff_decl(&rd->enc, b, n);
	sniff_bytes(&rd->enc, (const unsigned char *)b, n);
}

/* A mapped file's next window: as feed_fill, without a copy.  0. */
static int
feed_slide(struct reader *rd, struct feed *f)
{
	size_t end, cut;

	if (f->len - f->pos > f->cap / 2 && f->cap < FAST_MAX)
		f->cap *= 2;
	end = f->size - f->pos < f->cap ? f->size : f->pos + f->cap;
	if (end > f->len) {
		feed_sniff(rd, f->buf + f->len, end - f->len);
		f->len = end;
	}
	f->eof = f->len == f->size;
	cut = f->pos & ~(size_t)(FEED_DROP - 1);
	if (cut > f->dropped) {
		/* best effort: it only keeps the peak RSS down */
		(void)madvise(f->buf + f->dropped, cut - f->dropped,
		    MADV_DONTNEED);
		f->dropped = cut;
	}
	return 0;
}

/*
 * Keep the unread bytes and read more after them, the buffer doubled
 * first when they fill half of it (up to FAST_MAX).  0 or -1.
 */
static int
feed_fill(struct reader *rd, struct feed *f)
{
	char *nb;
	int n;

	if (f->mapped)
		return feed_slide(rd, f);
	if (f->pos > 0) {
		memmove(f->buf, f->buf + f->pos, f->len - f->pos);
		f->len -= f->pos;
		f->pos = 0;
	}
	if (f->len > f->cap / 2 && f->cap < FAST_MAX) {
		if ((nb = realloc(f->buf, f->cap * 2)) == NULL)
			return error_sys("%s: read buffer", rd->path);
		f->buf = nb;
		f->cap *= 2;
	}
	if (f->len == f->cap || f->eof)
		return 0;
	if ((n = read_chunk(rd, f->buf + f->len,
	    (unsigned)(f->cap - f->len))) == -1)
		return -1;
	if (n == 0)
		f->eof = 1;
	feed_sniff(rd, f->buf + f->len, (size_t)n);
	f->len += (size_t)n;
	return 0;
}

/* Feed n bytes to libxml2.  0, or -1 (error set: the parser's own). */
static int
feed_xml(struct reader *rd, const char *b, size_t n)
{
	int rc;

	if (n == 0)
		return 0;
	if (xmlParseChunk(rd->ctxt, b, (int)n, 0) == 0 && !rd->failed)
		return 0;
	if ((rc = parse_result(rd)) == 0)
		rc = error_set("%s: not well-formed", rd->path);
	return rc;
}

/*
 * 1 if libxml2 stands between two children of <enterprise> with only
 * white space unparsed, reading UTF-8 as it is: the next bytes may be
 * read by the fast path.  *line is then the line they start on.
 */
static int
xml_between(struct reader *rd, unsigned long *line)
{
	xmlParserCtxtPtr c = rd->ctxt;
	const xmlChar *p;
	unsigned long l;

	if (rd->failed || rd->depth != 1 || !rd->seen_root ||
	    c->instate != XML_PARSER_CONTENT || c->input == NULL ||
	    c->input->buf == NULL || c->input->buf->encoder != NULL ||
	    c->input->line < 1)
		return 0;
	l = (unsigned long)c->input->line;
	for (p = c->input->cur; p < c->input->end; p++) {
		if (*p == '\n')
			l++;
		else if (*p != ' ' && *p != '\t' && *p != '\r')
			return 0;
	}
	*line = l;
	return 1;
}

/* The first "<person" or "<membership" in b[0..n), or NULL. */
static const char *
find_block(const char *b, size_t n)
{
	const char *p = b, *end = b + n;

	while (end - p >= 11 && (p = memchr(p, '<', (size_t)(end - p - 10))) !=
	    NULL) {
		if (memcmp(p + 1, "person", 6) == 0 ||
		    memcmp(p + 1, "membership", 10) == 0)
			return p;
		p++;
	}
	return NULL;
}

/* Feed the whole file: libxml2, and the fast path where it can.  0 or
 * -1. */
static int
reader_parse(struct reader *rd)
{
	xmlSAXHandler sax;	/* copied into the parser context */
	enum { CHUNK = 1024 * 1024, TAIL = 10 };
	struct feed f;
	struct fastblock fb;
	struct scan sc;
	const char *hit;
	unsigned long line0 = 0, line = 0;
	size_t from;
	int n = 0, i, got, rc = -1, fast = 0, left = 0;

	memset(&sax, 0, sizeof(sax));
	memset(&f, 0, sizeof(f));
	memset(&fb, 0, sizeof(fb));
	sax.initialized = XML_SAX2_MAGIC;
	sax.startElementNs = sax_start;
	sax.endElementNs = sax_end;
	sax.characters = sax_text;
	sax.cdataBlock = sax_text;
	sax.serror = sax_error;
	f.cap = CHUNK;
	if (rd->map != NULL) {
		f.mapped = 1;
		f.buf = rd->map;
		f.size = rd->mapsize;
		f.pos = f.len = n = f.size < 4 ? (int)f.size : 4;
	} else if ((f.buf = malloc(f.cap)) == NULL)
		return error_sys("%s: read buffer", rd->path);
	/* The first bytes let libxml2 detect the encoding. */
	if (!f.mapped && (n = read_chunk(rd, f.buf, 4)) == -1)
		goto out;
	rd->ctxt = xmlCreatePushParserCtxt(&sax, rd, f.buf, n, rd->path);
	if (rd->ctxt == NULL) {
		error_set("%s: cannot create an XML parser", rd->path);
		goto out;
	}
	xmlCtxtUseOptions(rd->ctxt, XML_PARSE_NONET | XML_PARSE_BIG_LINES);
	for (i = 1; i < NEL; i++)
		if ((rd->names[i] = xmlDictLookup(rd->ctxt->dict,
		    (const xmlChar *)el_names[i], -1)) == NULL) {
			error_set("%s: out of memory", rd->path);
			goto out;
		}
	for (;;) {
		if (fast) {
			memset(&sc, 0, sizeof(sc));
			sc.p = f.buf + f.pos;
			sc.end = f.buf + f.len;
			sc.line = line;
			if ((got = fast_block(rd, &sc, &fb)) == -1)
				goto out;
			if (got == 1) {
				f.pos = (size_t)(sc.p - f.buf);
				line = sc.line;
				continue;
			}
			if (sc.more && !f.eof && (f.len - f.pos < f.cap ||
			    f.cap < FAST_MAX)) {
				if (feed_fill(rd, &f) == -1)
					goto out;
				continue;
			}
			/* libxml2 reads on from here, lines counted. */
			rd->ctxt->input->line += (int)(line - line0);
			fast = 0;
			left = 1;
			continue;
		}
		if (f.pos == f.len) {
			if (f.eof)
				break;
			if (feed_fill(rd, &f) == -1)
				goto out;
			continue;
		}
		from = f.pos + (size_t)left;
		hit = find_block(f.buf + from, f.len - from);
		if (hit != NULL) {
			/* Up to it; then the fast path if libxml2 is
			 * between elements, else past its '<'. */
			if (feed_xml(rd, f.buf + f.pos,
			    (size_t)(hit - f.buf) - f.pos) == -1)
				goto out;
			f.pos = (size_t)(hit - f.buf);
			left = 0;
			if (xml_between(rd, &line0)) {
				line = line0;
				fast = 1;
			} else
				left = 1;
			continue;
		}
		/* Keep a tail that may be the start of "<membership". */
		n = f.eof || f.len - f.pos <= TAIL ? 0 : TAIL;
		if (f.eof || n > 0) {
			if (feed_xml(rd, f.buf + f.pos,
			    f.len - f.pos - (size_t)n) == -1)
				goto out;
			f.pos = f.len - (size_t)n;
			left = 0;
		}
		if (!f.eof && feed_fill(rd, &f) == -1)
			goto out;
	}
	xmlParseChunk(rd->ctxt, NULL, 0, 1);
	if ((rc = parse_result(rd)) == 0)
		rc = sniff_verdict(rd);
out:
	if (!f.mapped)
		free(f.buf);
	free(fb.v);
	return rc;
}

/*
 * Map a plain (not gzip) regular file of fd: reading it through the
 * mapping spares the kernel's copy of every byte, a sixth of the read
 * at national scale.  1 when mapped, 0 when it is to be read (gzip, not
 * a regular file, too small, or the mapping failed).
 */
static int
map_plain(struct reader *rd, int fd, const struct stat *st)
{
	unsigned char magic[2];
	void *m;

	if (!S_ISREG(st->st_mode) || st->st_size < 4 ||
	    (uintmax_t)st->st_size > SIZE_MAX ||
	    pread(fd, magic, 2, 0) != 2 ||
	    (magic[0] == 0x1f && magic[1] == 0x8b))
		return 0;
	m = mmap(NULL, (size_t)st->st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		return 0;
	(void)madvise(m, (size_t)st->st_size, MADV_SEQUENTIAL);
	rd->map = m;
	rd->mapsize = (size_t)st->st_size;
	return 1;
}

/* ims_read with the <userid> chosen by useridtype (NULL: default). */
static int
read_file(const char *path, struct roster *r, struct rejects *rj,
    const char *useridtype)
{
	struct reader rd;
	struct rejects local = { 0 };
	struct stat st;
	int fd, rc = -1;

	memset(&rd, 0, sizeof(rd));
	rd.path = path;
	rd.r = r;
	rd.rj = rj != NULL ? rj : &local;
	rd.strict = rj == NULL;
	rd.useridtype = useridtype;
	r->datetime = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return error_sys("%s", path);
	if (fstat(fd, &st) == -1) {
		close(fd);
		return error_sys("%s", path);
	}
	if (map_plain(&rd, fd, &st) == 1) {
		close(fd);
	} else if ((rd.gz = gzdopen(fd, "rb")) == NULL) {
		close(fd);
		return error_sys("%s: gzdopen", path);
	}
	/* zlib reads straight into a request of twice its buffer or more
	 * (the read buffer is 1 MiB), else copies through its own. */
	gzbuffer(rd.gz, 128 * 1024);
	if (reader_parse(&rd) == -1)
		goto out;
	/* No <datetime>, or not a date: the file's modification time. */
	if (!rd.have_datetime)
		r->datetime = st.st_mtime;
	if (seal_entities(&rd) == -1)
		goto out;
	if (roster_seal_members(r, rd.rj, path, NULL) == -1)
		goto out;
	if (rd.strict && local.count > 0) {
		error_set("%s: %zu duplicate or dangling records", path,
		    local.count);
		goto out;
	}
	rc = 0;
out:
	reader_free(&rd);
	return rc;
}

/*
 * Read the IMS Enterprise file at path (plain or gzip) into r, which
 * the caller has initialised (roster_init) and frees; r is sealed
 * (entities, then memberships) on success.  Bad records go to rj, or
 * are errors when rj is NULL.  Returns 0, or -1 when the file cannot be
 * read, is not well-formed (the error names file:line) or has a
 * structural fault (persons or groups after memberships).
 */
int
ims_read(const char *path, struct roster *r, struct rejects *rj)
{
	return read_file(path, r, rj, NULL);
}

/*
 * Read cfg->source.file as the export: the <userid> chosen by
 * cfg->source.useridtype, r->datetime SOURCE_DATE_EPOCH when set.
 * Returns 0, or -1 as ims_read.
 */
int
ims_read_source(const struct config *cfg, struct roster *r,
    struct rejects *rj)
{
	time_t sde;
	int rc;

	if ((rc = csv_source_date_epoch(&sde)) == -1)
		return -1;
	if (read_file(cfg->source.file, r, rj, cfg->source.useridtype) == -1)
		return -1;
	if (rc == 1)
		r->datetime = sde;
	return 0;
}
