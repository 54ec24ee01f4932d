/*
 * ims_snap.c -- read back a full file sisfeed wrote itself (the
 * snapshot) without a general XML parser, for the nights whose snapshot
 * index is missing or stale.
 *
 * ims_write_full() writes one fixed shape (ims_write.c: one element a
 * line, two-space indents, pre-rendered <sourcedid> frames, the same
 * order of children in every record, &amp; &lt; &gt; &quot; the only
 * references).  This reader matches that shape byte for byte with
 * memcmp and memchr and builds the roster straight from the text: no
 * SAX events, no per-element callbacks, no per-field copies but the
 * roster's own.  Members are resolved through a key index a few
 * records behind the parser, their slots prefetched, and arrive in the
 * roster's order, so sealing them sorts nothing.
 *
 * Anything else -- another producer's file, a hand-edited snapshot, the
 * itslearning profile, a value holding a CR or a control character, a
 * record the general reader would reject -- makes it give up (1) with
 * the roster emptied, and the caller parses the file with ims_read(),
 * whose result and errors stay the reference.  Reading a file this
 * reader accepts gives the roster ims_read(path, r, NULL) gives
 * (tests/check_ims.c compares them).
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "sisfeed.h"

#define SNAP_CHUNK	(4u * 1024 * 1024)	/* inflated per read */
#define SNAP_PIPE	16			/* members in flight */
/* ims_read's IMS_VALUE_MAX: a longer value is its to reject. */
#define SNAP_VALUE_MAX	(8u * 1024 * 1024)

/* How a unit (a record, or one <member>) parsed. */
enum { U_OK, U_SHAPE, U_MORE };

/* A cursor over the bytes read so far. */
struct cur {
	char		*p, *end;
	int		 st;		/* U_OK until a check fails */
};

/* A value: bytes between a start tag and the next '<'. */
struct val {
	char		*s;
	size_t		 n;
};

/* A member waiting for its person lookup. */
struct pend {
	const char	*key;
	size_t		 len;
	uint64_t	 hash;
	uint32_t	 group;
	uint8_t		 role, active;
	uint16_t	 begin, end;	/* the role's timeframe, 0 open */
};

struct snap {
	const char	*path;
	struct roster	*r;
	gzFile		 gz;
	char		*buf;
	size_t		 cap, len, pos;	/* buf[pos..len) unparsed */
	int		 eof;
	unsigned long	 line;		/* of buf[pos], until memberships */
	/* the <sourcedid> frames at indent levels 2 and 3 */
	char		*pre[4], *post[4];
	size_t		 prelen[4], postlen[4];
	struct keyindex	 pk;
	struct pend	 q[SNAP_PIPE];
	size_t		 qhead, qlen;
	int		 giveup;	/* a member's person is unknown */
};

/* ------------------------------------------------------------------ */
/* Matching.                                                           */

/* Match the n bytes of s; U_MORE when the buffer ends first. */
static int
lit(struct cur *c, const char *s, size_t n)
{
	if (c->st != U_OK)
		return 0;
	if ((size_t)(c->end - c->p) < n) {
		c->st = U_MORE;
		return 0;
	}
	if (memcmp(c->p, s, n) != 0) {
		c->st = U_SHAPE;
		return 0;
	}
	c->p += n;
	return 1;
}
#define LIT(c, s)	lit((c), (s), sizeof(s) - 1)

/* 1 and past it if the next bytes are s (an optional element), 0 if
 * not (or the buffer ends first: U_MORE). */
static int
opt(struct cur *c, const char *s, size_t n)
{
	size_t have;

	if (c->st != U_OK)
		return 0;
	have = (size_t)(c->end - c->p);
	if (have < n) {
		if (memcmp(c->p, s, have) == 0)
			c->st = U_MORE;
		return 0;
	}
	if (memcmp(c->p, s, n) != 0)
		return 0;
	c->p += n;
	return 1;
}
#define OPT(c, s)	opt((c), (s), sizeof(s) - 1)

/* The text up to the next '<' into v. */
static int
text(struct cur *c, struct val *v)
{
	char *q;

	if (c->st != U_OK)
		return 0;
	if ((q = memchr(c->p, '<', (size_t)(c->end - c->p))) == NULL) {
		c->st = U_MORE;
		return 0;
	}
	v->s = c->p;
	v->n = (size_t)(q - c->p);
	c->p = q;
	return 1;
}

/* open, text, close: <tag>text</tag>\n at its indent. */
static int
elem(struct cur *c, const char *open, size_t on, const char *close,
    size_t cn, struct val *v)
{
	return lit(c, open, on) && text(c, v) && lit(c, close, cn);
}
#define ELEM(c, o, cl, v)	elem((c), (o), sizeof(o) - 1, (cl), \
	    sizeof(cl) - 1, (v))

/* A <sourcedid> at level lv (2 or 3) with its frame; the key into v. */
static int
sourcedid(struct snap *s, struct cur *c, int lv, struct val *v)
{
	if (s->pre[lv] == NULL && c->st == U_OK)
		c->st = U_SHAPE;	/* no person or group came first */
	return lit(c, s->pre[lv], s->prelen[lv]) && text(c, v) &&
	    lit(c, s->post[lv], s->postlen[lv]);
}

/*
 * The value v as the XML parser gives it, in place and NUL-terminated
 * (the '<' after it is consumed): references replaced.  0, or -1 when
 * the general reader must judge it (a CR, a control character, invalid
 * UTF-8, a reference ims_write never writes).
 */
static int
finish(struct val *v)
{
	static const struct {
		const char	*ref;
		size_t		 n;
		char		 c;
	} refs[] = {
		{ "&amp;", 5, '&' }, { "&lt;", 4, '<' }, { "&gt;", 4, '>' },
		{ "&quot;", 6, '"' }, { "&apos;", 6, '\'' },
	};
	unsigned char *p, *e, *o;
	int high = 0, amp = 0;
	size_t i;

	if (v->s == NULL)
		return 0;	/* an optional element that is not there */
	p = (unsigned char *)v->s;
	e = p + v->n;
	/* ims_write trims every value and escapes every '>' */
	if (p < e && (*p == ' ' || *p == '\t' || *p == '\n' ||
	    e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'))
		return -1;
	for (; p < e; p++) {
		if ((*p < 0x20 && *p != '\t' && *p != '\n') || *p == '>')
			return -1;
		high |= *p >= 0x80;
		amp |= *p == '&';
	}
	if (high && !utf8_valid(v->s, v->n))
		return -1;
	if (amp) {
		p = o = (unsigned char *)v->s;
		while (p < e) {
			if (*p != '&') {
				*o++ = *p++;
				continue;
			}
			for (i = 0; i < sizeof(refs) / sizeof(refs[0]); i++)
				if ((size_t)(e - p) >= refs[i].n &&
				    memcmp(p, refs[i].ref, refs[i].n) == 0)
					break;
			if (i == sizeof(refs) / sizeof(refs[0]))
				return -1;
			*o++ = (unsigned char)refs[i].c;
			p += refs[i].n;
		}
		v->n = (size_t)(o - (unsigned char *)v->s);
	}
	if (v->n > SNAP_VALUE_MAX)
		return -1;
	v->s[v->n] = '\0';
	return 0;
}

/* finish() for each of n values; 0 or -1. */
static int
finish_all(struct val *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (finish(&v[i]) == -1)
			return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Input.                                                              */

/*
 * Keep buf[from..len) and read more after it (the buffer grows when a
 * unit fills it).  0, or -1 on a read error.
 */
static int
refill(struct snap *s, size_t from)
{
	size_t keep = s->len - from, ncap;
	char *nb;
	int n;

	if (from > 0)
		memmove(s->buf, s->buf + from, keep);
	s->len = keep;
	s->pos = 0;
	if (s->cap - s->len < SNAP_CHUNK / 2) {
		ncap = s->cap * 2;
		if ((nb = realloc(s->buf, ncap + 1)) == NULL)
			return error_sys("%s: read buffer", s->path);
		s->buf = nb;
		s->cap = ncap;
	}
	if ((n = gzread(s->gz, s->buf + s->len,
	    (unsigned)(s->cap - s->len))) < 0) {
		int zerr;
		const char *msg = gzerror(s->gz, &zerr);

		if (zerr == Z_ERRNO)
			return error_sys("%s: read", s->path);
		return error_set("%s: read: %s", s->path, msg);
	}
	if (n == 0)
		s->eof = 1;
	s->len += (size_t)n;
	return 0;
}

/* Newlines in [a, b): lines of a unit, for person and group lines. */
static unsigned long
count_lines(const char *a, const char *b)
{
	unsigned long n = 0;

	while (a < b && (a = memchr(a, '\n', (size_t)(b - a))) != NULL) {
		n++;
		a++;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* Records.                                                            */

/* The number in the n digits at s, or -1 if one is not a digit. */
static int
digits(const char *s, size_t n)
{
	int v = 0;

	for (; n > 0; s++, n--) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

/* The header up to </properties>: the datetime, strictly as written
 * (YYYY-MM-DDTHH:MM:SS, UTC). */
static int
unit_header(struct snap *s, struct cur *c)
{
	struct val v, text3[3];
	struct tm tm;
	const char *t;

	memset(text3, 0, sizeof(text3));
	LIT(c, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<enterprise>\n"
	    "  <properties>\n");
	ELEM(c, "    <datasource>", "</datasource>\n", &text3[0]);
	if (OPT(c, "    <target>")) {
		text(c, &text3[1]);
		LIT(c, "</target>\n");
	}
	ELEM(c, "    <type>", "</type>\n", &text3[2]);
	ELEM(c, "    <datetime>", "</datetime>\n", &v);
	LIT(c, "  </properties>\n");
	if (c->st != U_OK)
		return c->st;
	/* not kept, but what the general reader would refuse (invalid
	 * UTF-8, a control character) is its to judge */
	if (finish_all(text3, 3) == -1)
		return U_SHAPE;
	t = v.s;
	if (v.n != 19 || t[4] != '-' || t[7] != '-' || t[10] != 'T' ||
	    t[13] != ':' || t[16] != ':')
		return U_SHAPE;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = digits(t, 4) - 1900;
	tm.tm_mon = digits(t + 5, 2) - 1;
	tm.tm_mday = digits(t + 8, 2);
	tm.tm_hour = digits(t + 11, 2);
	tm.tm_min = digits(t + 14, 2);
	tm.tm_sec = digits(t + 17, 2);
	if (tm.tm_year < -1900 || tm.tm_mon < 0 || tm.tm_mon > 11 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour < 0 ||
	    tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 ||
	    tm.tm_sec < 0 || tm.tm_sec > 60)
		return U_SHAPE;
	s->r->datetime = timegm(&tm);
	return U_OK;
}

/*
 * The <sourcedid> frames from the first record's: ims_write renders
 * every one from the same <source>.  U_OK, U_MORE, U_SHAPE; -1 on no
 * memory.
 */
static int
learn_frames(struct snap *s, struct cur *c)
{
	static const char ind[] = "        ";
	struct cur t = *c;
	struct val src;
	int lv;

	if (s->pre[2] != NULL)
		return U_OK;
	if (!(OPT(&t, "  <person>\n") || OPT(&t, "  <group>\n")))
		return t.st == U_MORE ? U_MORE : U_OK;
	LIT(&t, "    <sourcedid>\n      <source>");
	text(&t, &src);
	if (t.st != U_OK)
		return t.st;
	for (lv = 2; lv <= 3; lv++) {
		s->prelen[lv] = src.n + 128;
		s->postlen[lv] = 64;
		if ((s->pre[lv] = malloc(s->prelen[lv] + 1)) == NULL ||
		    (s->post[lv] = malloc(s->postlen[lv] + 1)) == NULL)
			return error_sys("%s", s->path);
		snprintf(s->pre[lv], s->prelen[lv] + 1,
		    "%.*s<sourcedid>\n%.*s<source>%.*s</source>\n%.*s<id>",
		    lv * 2, ind, lv * 2 + 2, ind, (int)src.n, src.s,
		    lv * 2 + 2, ind);
		snprintf(s->post[lv], s->postlen[lv] + 1,
		    "</id>\n%.*s</sourcedid>\n", lv * 2, ind);
		s->prelen[lv] = strlen(s->pre[lv]);
		s->postlen[lv] = strlen(s->post[lv]);
	}
	return U_OK;
}

/* One <person> as put_person writes it (no recstatus). */
static int
unit_person(struct snap *s, struct cur *c)
{
	/* id, userid, fn, family, given, email, role */
	struct val v[7];
	struct person p;
	const char *role = "";
	char *start = c->p;
	int active = 1;

	memset(v, 0, sizeof(v));
	LIT(c, "  <person>\n");
	sourcedid(s, c, 2, &v[0]);
	if (OPT(c, "    <userid>")) {
		text(c, &v[1]);
		LIT(c, "</userid>\n");
	}
	ELEM(c, "    <name>\n      <fn>", "</fn>\n      <n>\n", &v[2]);
	ELEM(c, "        <family>", "</family>\n", &v[3]);
	ELEM(c, "        <given>", "</given>\n      </n>\n    </name>\n",
	    &v[4]);
	if (OPT(c, "    <email>")) {
		text(c, &v[5]);
		LIT(c, "</email>\n");
	}
	if (OPT(c, "    <systemrole systemroletype=\"None\"/>\n"))
		active = 0;
	if (OPT(c, "    <institutionrole primaryrole=\"Yes\" "
	    "institutionroletype=\"")) {
		if (c->st == U_OK) {
			char *q = memchr(c->p, '"', (size_t)(c->end - c->p));

			if (q == NULL)
				c->st = U_MORE;
			else {
				v[6].s = c->p;
				v[6].n = (size_t)(q - c->p);
				c->p = q;
			}
		}
		LIT(c, "\"/>\n");
	}
	LIT(c, "  </person>\n");
	if (c->st != U_OK)
		return c->st;
	if (v[0].n == 0 || finish_all(v, 7) == -1)
		return U_SHAPE;
	if (v[6].s != NULL && (role = institution_role_parse(v[6].s)) ==
	    NULL)
		return U_SHAPE;
	memset(&p, 0, sizeof(p));
	p.id = v[0].s;
	p.userid = v[1].s != NULL ? v[1].s : "";
	p.family = v[3].s;
	p.given = v[4].s;
	p.email = v[5].s != NULL ? v[5].s : "";
	p.role = role;
	p.nin = "";
	p.line = (uint32_t)s->line;
	p.active = (uint8_t)active;
	s->line += count_lines(start, c->p);
	if (roster_add_person(s->r, &p) == -1)
		return -1;
	return U_OK;
}

/* <begin restrict="0">, <end restrict="0"> or <adminperiod> in a
 * <timeframe>, each optional. */
static void
group_timeframe(struct cur *c, struct val *b, struct val *e,
    struct val *term)
{
	if (!OPT(c, "    <timeframe>\n"))
		return;
	if (OPT(c, "      <begin restrict=\"0\">")) {
		text(c, b);
		LIT(c, "</begin>\n");
	}
	if (OPT(c, "      <end restrict=\"0\">")) {
		text(c, e);
		LIT(c, "</end>\n");
	}
	if (OPT(c, "      <adminperiod>")) {
		text(c, term);
		LIT(c, "</adminperiod>\n");
	}
	LIT(c, "    </timeframe>\n");
}

/* One <group> as put_group writes it (no recstatus). */
static int
unit_group(struct snap *s, struct cur *c)
{
	/* id, type, short, long, orgname, orgunit, begin, end, term,
	 * parent */
	struct val v[10];
	struct group g;
	char *start = c->p;

	memset(v, 0, sizeof(v));
	LIT(c, "  <group>\n");
	sourcedid(s, c, 2, &v[0]);
	if (OPT(c, "    <grouptype>\n      <scheme>sisfeed</scheme>\n"
	    "      <typevalue level=\"")) {
		if (c->st == U_OK) {
			while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
				c->p++;
			if (c->p == c->end)
				c->st = U_MORE;
		}
		LIT(c, "\">");
		text(c, &v[1]);
		LIT(c, "</typevalue>\n    </grouptype>\n");
	}
	ELEM(c, "    <description>\n      <short>", "</short>\n", &v[2]);
	if (OPT(c, "      <long>")) {
		text(c, &v[3]);
		LIT(c, "</long>\n");
	}
	LIT(c, "    </description>\n");
	if (OPT(c, "    <org>\n")) {
		if (OPT(c, "      <orgname>")) {
			text(c, &v[4]);
			LIT(c, "</orgname>\n");
		}
		if (OPT(c, "      <orgunit>")) {
			text(c, &v[5]);
			LIT(c, "</orgunit>\n");
		}
		LIT(c, "    </org>\n");
	}
	group_timeframe(c, &v[6], &v[7], &v[8]);
	LIT(c, "    <relationship relation=\"1\">\n");
	sourcedid(s, c, 3, &v[9]);
	LIT(c, "      <label>Parent</label>\n    </relationship>\n"
	    "  </group>\n");
	if (c->st != U_OK)
		return c->st;
	if (v[0].n == 0 || v[2].n == 0 || finish_all(v, 10) == -1)
		return U_SHAPE;
	memset(&g, 0, sizeof(g));
	g.id = v[0].s;
	g.type = v[1].s != NULL ? v[1].s : "";
	g.shortname = v[2].s;
	g.longname = v[3].s != NULL ? v[3].s : "";
	g.orgname = v[4].s != NULL ? v[4].s : "";
	g.orgunit = v[5].s != NULL ? v[5].s : "";
	g.begin = v[6].s != NULL ? v[6].s : "";
	g.end = v[7].s != NULL ? v[7].s : "";
	g.term = v[8].s != NULL ? v[8].s : "";
	/* A root points at itself. */
	g.parent = strcmp(v[9].s, v[0].s) == 0 ? "" : v[9].s;
	g.line = (uint32_t)s->line;
	s->line += count_lines(start, c->p);
	if (roster_add_group(s->r, &g) == -1)
		return -1;
	return U_OK;
}

/* ------------------------------------------------------------------ */
/* Memberships.                                                        */

/* Resolve the oldest waiting member and add it.  0 or -1. */
static int
pend_finish(struct snap *s)
{
	struct pend *e = &s->q[s->qhead];
	struct membership m;
	long pi;

	s->qhead = (s->qhead + 1) % SNAP_PIPE;
	s->qlen--;
	if (s->giveup)
		return 0;
	if ((pi = keyindex_find(&s->pk, e->key, e->len, e->hash)) < 0) {
		s->giveup = 1;	/* ims_read names it */
		return 0;
	}
	memset(&m, 0, sizeof(m));
	m.group = e->group;
	m.person = (uint32_t)pi;
	m.role = e->role;
	m.active = e->active;
	m.begin = e->begin;
	m.end = e->end;
	return roster_add_member(s->r, &m);
}

/* Resolve every waiting member: before the buffer moves.  0 or -1. */
static int
pend_drain(struct snap *s)
{
	while (s->qlen > 0)
		if (pend_finish(s) == -1)
			return -1;
	return 0;
}

/* A date of a role's timeframe, open (tag, a date, close) when
 * present: its day number into *day, or 0 with *ok cleared when it is
 * not a date day_parse takes. */
static void
role_day(struct cur *c, const char *open, size_t olen, const char *close,
    size_t clen, unsigned *day, int *ok)
{
	struct val v;

	*day = 0;
	if (!opt(c, open, olen))
		return;
	text(c, &v);
	lit(c, close, clen);
	if (c->st == U_OK && (*day = day_parse(v.s, v.n)) == 0)
		*ok = 0;
}

/* The role's timeframe as put_role_timeframe writes it, optional:
 * begin and end into *begin, *end (0 open).  0 when a date is not
 * one. */
static int
role_timeframe(struct cur *c, unsigned *begin, unsigned *end)
{
	static const char bo[] = "          <begin restrict=\"1\">",
	    bc[] = "</begin>\n", eo[] = "          <end restrict=\"1\">",
	    ec[] = "</end>\n";
	int ok = 1;

	*begin = *end = 0;
	if (!OPT(c, "        <timeframe>\n"))
		return 1;
	role_day(c, bo, sizeof(bo) - 1, bc, sizeof(bc) - 1, begin, &ok);
	role_day(c, eo, sizeof(eo) - 1, ec, sizeof(ec) - 1, end, &ok);
	LIT(c, "        </timeframe>\n");
	return ok && (*begin != 0 || *end != 0) &&
	    (*begin == 0 || *end == 0 || *begin <= *end);
}

/* One <member> as put_member writes it, queued for its lookup. */
static int
unit_member(struct snap *s, struct cur *c, uint32_t group)
{
	struct val key;
	struct pend *e;
	unsigned begin, end;
	char role, st;
	int tf_ok;

	LIT(c, "    <member>\n");
	sourcedid(s, c, 3, &key);
	LIT(c, "      <idtype>1</idtype>\n      <role roletype=\"0");
	if (c->st == U_OK && c->end - c->p < 1)
		c->st = U_MORE;
	role = c->st == U_OK ? *c->p++ : 0;
	LIT(c, "\">\n        <status>");
	if (c->st == U_OK && c->end - c->p < 1)
		c->st = U_MORE;
	st = c->st == U_OK ? *c->p++ : 0;
	LIT(c, "</status>\n");
	tf_ok = role_timeframe(c, &begin, &end);
	LIT(c, "      </role>\n    </member>\n");
	if (c->st != U_OK)
		return c->st;
	if (!tf_ok || role < '1' || role > '8' || (st != '0' && st != '1') ||
	    (memchr(key.s, '&', key.n) != NULL && finish(&key) == -1))
		return U_SHAPE;
	if (s->qlen == SNAP_PIPE && pend_finish(s) == -1)
		return -1;
	e = &s->q[(s->qhead + s->qlen) % SNAP_PIPE];
	s->qlen++;
	e->key = key.s;
	e->len = key.n;
	e->hash = keyindex_hash(key.s, key.n);
	e->group = group;
	e->role = (uint8_t)(role - '0');
	e->active = (uint8_t)(st - '0');
	e->begin = (uint16_t)begin;
	e->end = (uint16_t)end;
	keyindex_prefetch(&s->pk, e->hash);
	return U_OK;
}

/* The start of a <membership>: its group's index into *group. */
static int
unit_membership(struct snap *s, struct cur *c, long *group)
{
	struct val key;

	LIT(c, "  <membership>\n");
	sourcedid(s, c, 2, &key);
	if (c->st != U_OK)
		return c->st;
	if (finish(&key) == -1 ||
	    (*group = roster_find_group(s->r, key.s)) < 0)
		return U_SHAPE;
	return U_OK;
}

/* ------------------------------------------------------------------ */
/* The file.                                                           */

/*
 * Parse one unit at s->pos with fn, reading more while it is cut by the
 * buffer's end.  Returns U_OK (pos past it), U_SHAPE, or -1.
 */
static int
unit(struct snap *s, int (*fn)(struct snap *, struct cur *, void *),
    void *arg)
{
	struct cur c;
	int rc;

	for (;;) {
		c.p = s->buf + s->pos;
		c.end = s->buf + s->len;
		c.st = U_OK;
		if ((rc = fn(s, &c, arg)) == -1)
			return -1;
		if (rc == U_OK) {
			s->pos = (size_t)(c.p - s->buf);
			return U_OK;
		}
		if (rc == U_SHAPE || s->eof)
			return U_SHAPE;
		/* cut short: members queued point into the buffer */
		if (pend_drain(s) == -1 || refill(s, s->pos) == -1)
			return -1;
	}
}

/* What comes next: 'p' person, 'g' group, 'm' membership, 'e' the end,
 * 0 anything else. */
static int
peek_fn(struct snap *s, struct cur *c, void *arg)
{
	int *what = arg;

	if (OPT(c, "  <person>\n"))
		*what = 'p';
	else if (OPT(c, "  <group>\n"))
		*what = 'g';
	else if (OPT(c, "  <membership>\n"))
		*what = 'm';
	else if (OPT(c, "    <member>\n"))
		*what = 'M';
	else if (OPT(c, "  </membership>\n"))
		*what = '/';
	else if (OPT(c, "</enterprise>\n"))
		*what = 'e';
	else
		*what = 0;
	if (c->st == U_OK)
		c->p = s->buf + s->pos;	/* a look, not a step */
	return c->st;
}

static int
header_fn(struct snap *s, struct cur *c, void *arg)
{
	int rc;

	(void)arg;
	if ((rc = unit_header(s, c)) != U_OK)
		return rc;
	s->line = 1 + count_lines(s->buf + s->pos, c->p);
	return learn_frames(s, c);
}

static int
person_fn(struct snap *s, struct cur *c, void *arg)
{
	(void)arg;
	return unit_person(s, c);
}

static int
group_fn(struct snap *s, struct cur *c, void *arg)
{
	(void)arg;
	return unit_group(s, c);
}

static int
membership_fn(struct snap *s, struct cur *c, void *arg)
{
	return unit_membership(s, c, arg);
}

static int
member_fn(struct snap *s, struct cur *c, void *arg)
{
	return unit_member(s, c, (uint32_t)*(long *)arg);
}

static int
close_fn(struct snap *s, struct cur *c, void *arg)
{
	(void)s;
	(void)arg;
	LIT(c, "  </membership>\n");
	return c->st;
}

/* Persons and groups, up to the first membership.  U_OK, U_SHAPE, -1. */
static int
read_entities(struct snap *s, int *what)
{
	int rc;

	for (;;) {
		if ((rc = unit(s, peek_fn, what)) != U_OK)
			return rc;
		if (*what == 'p')
			rc = unit(s, person_fn, NULL);
		else if (*what == 'g')
			rc = unit(s, group_fn, NULL);
		else
			return U_OK;
		if (rc != U_OK)
			return rc;
	}
}

/* The memberships to </enterprise> and the end of the file.  U_OK,
 * U_SHAPE, -1. */
static int
read_memberships(struct snap *s, int what)
{
	long group = -1;
	int rc;

	for (;;) {
		switch (what) {
		case 'm':
			rc = unit(s, membership_fn, &group);
			break;
		case 'M':
			rc = group < 0 ? U_SHAPE : unit(s, member_fn, &group);
			break;
		case '/':
			rc = group < 0 ? U_SHAPE : unit(s, close_fn, NULL);
			group = -1;
			break;
		case 'e':
			if (group >= 0)
				return U_SHAPE;
			s->pos += sizeof("</enterprise>\n") - 1;
			if (pend_drain(s) == -1 || refill(s, s->pos) == -1)
				return -1;
			/* nothing after the root */
			return s->len == 0 && s->eof ? U_OK : U_SHAPE;
		default:
			return U_SHAPE;
		}
		if (rc != U_OK)
			return rc;
		if (s->giveup)
			return U_SHAPE;
		if ((rc = unit(s, peek_fn, &what)) != U_OK)
			return rc;
	}
}

/* The whole file into s->r.  U_OK, U_SHAPE or -1. */
static int
snap_parse(struct snap *s)
{
	struct rejects none = { 0 };
	int rc, what = 0;

	if ((rc = unit(s, header_fn, NULL)) != U_OK ||
	    (rc = read_entities(s, &what)) != U_OK)
		return rc;
	if (roster_seal_entities(s->r, &none, s->path, s->path) == -1)
		return -1;
	/* ims_read(..., NULL) fails on these: let it say so */
	if (none.count > 0)
		return U_SHAPE;
	if (keyindex_build(&s->pk, s->r->npersons ? &s->r->persons[0].id :
	    NULL, sizeof(struct person), s->r->npersons) == -1)
		return -1;
	if ((rc = read_memberships(s, what)) != U_OK)
		return rc;
	if (s->giveup)
		return U_SHAPE;
	return roster_seal_members(s->r, &none, s->path, NULL) == -1 ? -1 :
	    U_OK;
}

/*
 * Read the full file at path, as ims_write_full wrote it for the
 * generic or moodle profile (plain or gzip), into the empty roster r.
 * Returns 0 with r sealed and equal to what ims_read(path, r, NULL)
 * gives; 1 when the file is not in that exact shape (r emptied: read
 * it with ims_read, which judges it); -1 on an error such as no memory
 * or an unreadable file (error set; r must still be freed).
 */
int
ims_read_snapshot(const char *path, struct roster *r)
{
	struct snap s;
	int fd, rc = -1, i;

	memset(&s, 0, sizeof(s));
	s.path = path;
	s.r = r;
	r->datetime = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return error_sys("%s", path);
	if ((s.gz = gzdopen(fd, "rb")) == NULL) {
		close(fd);
		return error_sys("%s: gzdopen", path);
	}
	gzbuffer(s.gz, 1024 * 1024);
	s.cap = SNAP_CHUNK;
	if ((s.buf = malloc(s.cap + 1)) == NULL) {
		error_sys("%s: read buffer", path);
		goto out;
	}
	if (refill(&s, 0) == -1)
		goto out;
	rc = snap_parse(&s);
	if (rc == U_SHAPE) {
		roster_free(r);
		rc = 1;
	}
out:
	keyindex_free(&s.pk);
	for (i = 0; i < 4; i++) {
		free(s.pre[i]);
		free(s.post[i]);
	}
	free(s.buf);
	gzclose(s.gz);
	return rc;
}
