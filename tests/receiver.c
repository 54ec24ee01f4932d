/*
 * receiver.c -- receiver models and a churning export (receiver.h).
 *
 * The models implement what sisfeed.yaml.5 says each profile's receiver
 * does, and nothing more:
 * - generic: IMS Enterprise 1.1.  A file of <type>full</type> is a
 *   snapshot: the receiver then holds exactly its records (what it
 *   leaves out is gone).  A delta applies each record by recstatus:
 *   3 deletes (a person or group with its memberships; a <role> that
 *   one role), anything else adds or replaces the whole record.
 * - itslearning: PIFU-IMS full snapshots, compared with the mirror of
 *   the last import: the receiver then holds exactly the file's records
 *   (delete by absence).  A delta, a file outside the PIFU namespace or
 *   without <type>full</type> is refused.  itslearning's own limit on
 *   the number of changes per import is its business and not modelled.
 * - moodle: Moodle 4.5's enrol_imsenterprise as measured (FORMAT.md
 *   section 9, rx_moodle_import): it reads lines, not XML, so it uses no
 *   parser either.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <sys/stat.h>

#include "sisfeed.h"
#include "tests/receiver.h"
#include "tests/testutil.h"

static void *
xalloc(void *p)
{
	if (p == NULL)
		abort();
	return p;
}

static char *
xstrdup(const char *s)
{
	return xalloc(strdup(s != NULL ? s : ""));
}

static void
grow(void **v, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return;
	*cap = *cap ? *cap * 2 : 16;
	*v = xalloc(realloc(*v, *cap * sz));
}

/* ------------------------------------------------------------------ */
/* State.                                                              */

void
rx_init(struct rx_state *s)
{
	memset(s, 0, sizeof(*s));
}

static void
person_free(struct rx_person *p)
{
	free(p->id);
	free(p->userid);
	free(p->given);
	free(p->family);
	free(p->email);
	free(p->role);
	free(p->nin);
}

static void
group_free(struct rx_group *g)
{
	free(g->id);
	free(g->type);
	free(g->shortname);
	free(g->longname);
	free(g->parent);
	free(g->term);
}

static void
member_free(struct rx_member *m)
{
	free(m->group);
	free(m->person);
}

void
rx_free(struct rx_state *s)
{
	size_t i;

	for (i = 0; i < s->np; i++)
		person_free(&s->p[i]);
	for (i = 0; i < s->ng; i++)
		group_free(&s->g[i]);
	for (i = 0; i < s->nm; i++)
		member_free(&s->m[i]);
	free(s->p);
	free(s->g);
	free(s->m);
	rx_init(s);
}

static long
find_person(const struct rx_state *s, const char *id)
{
	size_t i;

	for (i = 0; i < s->np; i++)
		if (strcmp(s->p[i].id, id) == 0)
			return (long)i;
	return -1;
}

static long
find_group(const struct rx_state *s, const char *id)
{
	size_t i;

	for (i = 0; i < s->ng; i++)
		if (strcmp(s->g[i].id, id) == 0)
			return (long)i;
	return -1;
}

static long
find_member(const struct rx_state *s, const char *group, const char *person,
    int role)
{
	size_t i;

	for (i = 0; i < s->nm; i++)
		if (s->m[i].role == role && strcmp(s->m[i].group, group) == 0 &&
		    strcmp(s->m[i].person, person) == 0)
			return (long)i;
	return -1;
}

void
rx_put_person(struct rx_state *s, const struct rx_person *p)
{
	long i = find_person(s, p->id);
	struct rx_person *d;

	if (i < 0) {
		grow((void **)&s->p, &s->capp, s->np, sizeof(*s->p));
		i = (long)s->np++;
	} else
		person_free(&s->p[i]);
	d = &s->p[i];
	d->id = xstrdup(p->id);
	d->userid = xstrdup(p->userid);
	d->given = xstrdup(p->given);
	d->family = xstrdup(p->family);
	d->email = xstrdup(p->email);
	d->role = xstrdup(p->role);
	d->nin = xstrdup(p->nin);
	d->active = p->active;
}

void
rx_put_group(struct rx_state *s, const struct rx_group *g)
{
	long i = find_group(s, g->id);
	struct rx_group *d;

	if (i < 0) {
		grow((void **)&s->g, &s->capg, s->ng, sizeof(*s->g));
		i = (long)s->ng++;
	} else
		group_free(&s->g[i]);
	d = &s->g[i];
	d->id = xstrdup(g->id);
	d->type = xstrdup(g->type);
	d->shortname = xstrdup(g->shortname);
	d->longname = xstrdup(g->longname);
	d->parent = xstrdup(g->parent);
	d->term = xstrdup(g->term);
}

void
rx_put_member(struct rx_state *s, const struct rx_member *m)
{
	long i = find_member(s, m->group, m->person, m->role);

	if (i >= 0) {
		s->m[i].active = m->active;
		return;
	}
	grow((void **)&s->m, &s->capm, s->nm, sizeof(*s->m));
	s->m[s->nm].group = xstrdup(m->group);
	s->m[s->nm].person = xstrdup(m->person);
	s->m[s->nm].role = m->role;
	s->m[s->nm].active = m->active;
	s->nm++;
}

/* Remove the memberships matching group or person (NULL: any) and
 * role (0: any). */
static void
drop_members(struct rx_state *s, const char *group, const char *person,
    int role)
{
	size_t i, out = 0;

	for (i = 0; i < s->nm; i++) {
		struct rx_member *m = &s->m[i];

		if ((group == NULL || strcmp(m->group, group) == 0) &&
		    (person == NULL || strcmp(m->person, person) == 0) &&
		    (role == 0 || m->role == role)) {
			member_free(m);
			continue;
		}
		s->m[out++] = *m;
	}
	s->nm = out;
}

static void
drop_person(struct rx_state *s, const char *id)
{
	long i = find_person(s, id);

	drop_members(s, NULL, id, 0);
	if (i < 0)
		return;
	person_free(&s->p[i]);
	s->p[i] = s->p[--s->np];
}

static void
drop_group(struct rx_state *s, const char *id)
{
	long i = find_group(s, id);

	drop_members(s, id, NULL, 0);
	if (i < 0)
		return;
	group_free(&s->g[i]);
	s->g[i] = s->g[--s->ng];
}

/* ------------------------------------------------------------------ */
/* Reading a delivered file (libxml2 tree, by local names).            */

static int
is(const xmlNode *n, const char *name)
{
	return n != NULL && n->type == XML_ELEMENT_NODE &&
	    strcmp((const char *)n->name, name) == 0;
}

static xmlNode *
child(const xmlNode *n, const char *name)
{
	xmlNode *c;

	for (c = n != NULL ? n->children : NULL; c != NULL; c = c->next)
		if (is(c, name))
			return c;
	return NULL;
}

/* The text of n, malloc'd ("" when n is NULL). */
static char *
text(const xmlNode *n)
{
	xmlChar *t;
	char *s;

	if (n == NULL)
		return xstrdup("");
	t = xmlNodeGetContent(n);
	s = xstrdup((const char *)t);
	xmlFree(t);
	return s;
}

/* Attribute name of n, malloc'd, or NULL. */
static char *
attr(const xmlNode *n, const char *name)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
	char *s;

	if (v == NULL)
		return NULL;
	s = xstrdup((const char *)v);
	xmlFree(v);
	return s;
}

static int
recstatus(const xmlNode *n)
{
	char *v = attr(n, "recstatus");
	int rs = v != NULL ? atoi(v) : 0;

	free(v);
	return rs;
}

/* The id of n's first <sourcedid>. */
static char *
sourcedid(const xmlNode *n)
{
	return text(child(child(n, "sourcedid"), "id"));
}

static void
read_person(const xmlNode *n, enum rx_kind kind, struct rx_person *p)
{
	xmlNode *c, *ir;
	char *type, *st;

	memset(p, 0, sizeof(*p));
	p->id = sourcedid(n);
	p->active = 1;
	for (c = n->children; c != NULL; c = c->next) {
		if (!is(c, "userid"))
			continue;
		type = attr(c, "useridtype");
		if (kind == RX_ITSLEARNING && type != NULL &&
		    strcmp(type, "personNIN") == 0 && p->nin == NULL)
			p->nin = text(c);
		else if (p->userid == NULL && (kind == RX_GENERIC ||
		    (type != NULL && strcmp(type, "username") == 0)))
			p->userid = text(c);
		free(type);
	}
	if (p->userid == NULL)
		p->userid = xstrdup("");
	if (p->nin == NULL)
		p->nin = xstrdup("");
	p->given = text(child(child(child(n, "name"), "n"), "given"));
	p->family = text(child(child(child(n, "name"), "n"), "family"));
	p->email = text(child(n, "email"));
	if (kind == RX_GENERIC) {
		st = (c = child(n, "systemrole")) != NULL ?
		    attr(c, "systemroletype") : NULL;
		p->active = !(st != NULL && strcmp(st, "None") == 0);
		free(st);
		ir = child(n, "institutionrole");
		p->role = ir != NULL ? attr(ir, "institutionroletype") : NULL;
	} else {
		for (c = child(child(n, "extension"), "pifu_status"); c != NULL;
		    c = c->next) {
			if (!is(c, "pifu_status"))
				continue;
			type = attr(c, "type");
			st = text(c);
			if (type != NULL && strcmp(type, "activeInactive") == 0)
				p->active = strcmp(st, "inaktiv") != 0;
			free(type);
			free(st);
		}
	}
	if (p->role == NULL)
		p->role = xstrdup("");
}

static void
read_group(const xmlNode *n, struct rx_group *g)
{
	xmlNode *c;
	char *rel;

	memset(g, 0, sizeof(*g));
	g->id = sourcedid(n);
	g->type = text(child(child(n, "grouptype"), "typevalue"));
	g->shortname = text(child(child(n, "description"), "short"));
	g->longname = text(child(child(n, "description"), "long"));
	g->term = text(child(child(n, "timeframe"), "adminperiod"));
	for (c = n->children; c != NULL && g->parent == NULL; c = c->next) {
		if (!is(c, "relationship"))
			continue;
		rel = attr(c, "relation");
		if (rel == NULL || strcmp(rel, "1") == 0)
			g->parent = sourcedid(c);
		free(rel);
	}
	if (g->parent != NULL && strcmp(g->parent, g->id) == 0) {
		free(g->parent);
		g->parent = NULL;	/* a root points at itself */
	}
	if (g->parent == NULL)
		g->parent = xstrdup("");
}

/* Apply one <membership> (delta: by recstatus; full: adds). */
static void
apply_membership(struct rx_state *s, const xmlNode *n)
{
	xmlNode *mem, *role;
	struct rx_member m;
	char *rt, *st;

	memset(&m, 0, sizeof(m));
	m.group = sourcedid(n);
	for (mem = n->children; mem != NULL; mem = mem->next) {
		if (!is(mem, "member"))
			continue;
		m.person = sourcedid(mem);
		for (role = mem->children; role != NULL; role = role->next) {
			if (!is(role, "role"))
				continue;
			rt = attr(role, "roletype");
			m.role = rt != NULL ? atoi(rt) : 1;
			free(rt);
			st = text(child(role, "status"));
			m.active = strcmp(st, "1") == 0;
			free(st);
			if (recstatus(role) == 3)
				drop_members(s, m.group, m.person, m.role);
			else
				rx_put_member(s, &m);
		}
		free(m.person);
	}
	free(m.group);
}

/* Apply every record of the document to s. */
static void
apply(struct rx_state *s, const xmlNode *root, enum rx_kind kind)
{
	const xmlNode *n;
	struct rx_person p;
	struct rx_group g;

	for (n = root->children; n != NULL; n = n->next) {
		if (is(n, "person")) {
			read_person(n, kind, &p);
			if (recstatus(n) == 3)
				drop_person(s, p.id);
			else
				rx_put_person(s, &p);
			person_free(&p);
		} else if (is(n, "group")) {
			read_group(n, &g);
			if (recstatus(n) == 3)
				drop_group(s, g.id);
			else
				rx_put_group(s, &g);
			group_free(&g);
		} else if (is(n, "membership"))
			apply_membership(s, n);
	}
}

static int
refuse(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

int
rx_import(struct rx_state *s, enum rx_kind kind, const char *path,
    char *err, size_t errlen)
{
	xmlDoc *doc;
	xmlNode *root;
	struct rx_state fresh;
	char *type;
	int full, rc = 0;

	if ((doc = xmlReadFile(path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR |
	    XML_PARSE_NOWARNING)) == NULL)
		return refuse(err, errlen, "%s: not well-formed", path);
	root = xmlDocGetRootElement(doc);
	if (!is(root, "enterprise")) {
		rc = refuse(err, errlen, "%s: no <enterprise>", path);
		goto out;
	}
	type = text(child(child(root, "properties"), "type"));
	full = strcmp(type, "full") == 0;
	free(type);
	if (kind == RX_ITSLEARNING && (root->ns == NULL ||
	    strcmp((const char *)root->ns->href, PIFU_NS) != 0)) {
		rc = refuse(err, errlen, "%s: not in the PIFU-IMS namespace",
		    path);
		goto out;
	}
	if (kind == RX_ITSLEARNING && !full) {
		rc = refuse(err, errlen, "%s: itslearning imports full files "
		    "only", path);
		goto out;
	}
	if (full) {
		rx_init(&fresh);
		apply(&fresh, root, kind);
		rx_free(s);
		*s = fresh;
	} else
		apply(s, root, kind);
out:
	xmlFreeDoc(doc);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Comparing.                                                          */

static int
differ(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return 0;
}

/* The first field where two persons differ, or NULL. */
static const char *
person_diff(const struct rx_person *a, const struct rx_person *b)
{
	if (strcmp(a->userid, b->userid) != 0)
		return "userid";
	if (strcmp(a->given, b->given) != 0)
		return "given";
	if (strcmp(a->family, b->family) != 0)
		return "family";
	if (strcmp(a->email, b->email) != 0)
		return "email";
	if (strcmp(a->role, b->role) != 0)
		return "role";
	if (strcmp(a->nin, b->nin) != 0)
		return "nin";
	if (a->active != b->active)
		return "active";
	return NULL;
}

static const char *
group_diff(const struct rx_group *a, const struct rx_group *b)
{
	if (strcmp(a->type, b->type) != 0)
		return "type";
	if (strcmp(a->shortname, b->shortname) != 0)
		return "short";
	if (strcmp(a->longname, b->longname) != 0)
		return "long";
	if (strcmp(a->parent, b->parent) != 0)
		return "parent";
	if (strcmp(a->term, b->term) != 0)
		return "term";
	return NULL;
}

/* Every record of a in b, the same.  1, or 0 with why. */
static int
contains(const struct rx_state *a, const struct rx_state *b,
    const char *an, const char *bn, char *why, size_t len)
{
	const char *f;
	size_t i;
	long j;

	for (i = 0; i < a->np; i++) {
		if ((j = find_person(b, a->p[i].id)) < 0)
			return differ(why, len, "person '%s' in %s, not in %s",
			    a->p[i].id, an, bn);
		if ((f = person_diff(&a->p[i], &b->p[j])) != NULL)
			return differ(why, len, "person '%s': %s differs",
			    a->p[i].id, f);
	}
	for (i = 0; i < a->ng; i++) {
		if ((j = find_group(b, a->g[i].id)) < 0)
			return differ(why, len, "group '%s' in %s, not in %s",
			    a->g[i].id, an, bn);
		if ((f = group_diff(&a->g[i], &b->g[j])) != NULL)
			return differ(why, len, "group '%s': %s differs ('%s' "
			    "in %s)", a->g[i].id, f, a->g[i].shortname, an);
	}
	for (i = 0; i < a->nm; i++) {
		const struct rx_member *m = &a->m[i];

		if ((j = find_member(b, m->group, m->person, m->role)) < 0)
			return differ(why, len, "membership %s/%s/%02d in %s, "
			    "not in %s", m->group, m->person, m->role, an, bn);
		if (b->m[j].active != m->active)
			return differ(why, len, "membership %s/%s/%02d: status "
			    "differs", m->group, m->person, m->role);
	}
	return 1;
}

int
rx_equal(const struct rx_state *a, const struct rx_state *b, char *why,
    size_t whylen)
{
	return contains(a, b, "the receiver", "the export", why, whylen) &&
	    contains(b, a, "the export", "the receiver", why, whylen);
}

char *
rx_table(const struct rx_state *s)
{
	size_t cap = 256 + (s->np + s->ng + s->nm) * 256, len = 0, i;
	char *t = xalloc(malloc(cap));

#define ADD(...) (len += (size_t)snprintf(t + len, cap - len, __VA_ARGS__))
	ADD("%-7s %-12s %-14s %-26s %s\n", "type", "key", "login/type",
	    "name", "state");
	for (i = 0; i < s->np && len < cap; i++)
		ADD("%-7s %-12s %-14s %-26.26s %s%s%s\n", "person", s->p[i].id,
		    s->p[i].userid, s->p[i].family, s->p[i].active ? "active" :
		    "inactive", s->p[i].nin[0] ? " nin " : "", s->p[i].nin);
	for (i = 0; i < s->ng && len < cap; i++)
		ADD("%-7s %-12s %-14s %-26.26s parent %s\n", "group",
		    s->g[i].id, s->g[i].type, s->g[i].shortname,
		    s->g[i].parent[0] ? s->g[i].parent : "-");
	for (i = 0; i < s->nm && len < cap; i++)
		ADD("%-7s %-12s %-14s role %02d %s\n", "member", s->m[i].group,
		    s->m[i].person, s->m[i].role, s->m[i].active ? "active" :
		    "inactive");
#undef ADD
	return t;
}

/* ------------------------------------------------------------------ */
/* The model of Moodle (receiver.h, rx_moodle_import).                */

/* Free what the model holds; it is empty afterwards. */
void
rx_moodle_free(struct rx_moodle *m)
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
ml_field(const char *rec, const char *tag, char *buf, size_t len)
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
ml_recstatus(const char *rec)
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
exception(struct rx_moodle *m, const char *why, const char *what)
{
	m->exception = 1;
	snprintf(m->why, sizeof(m->why), "%s: %s", why, what);
	return -1;
}

/* The live user with this idnumber (byid) or username, or -1. */
int
rx_moodle_user(const struct rx_moodle *m, int byid, const char *v)
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

/* The course with this idnumber (byid) or short name, or -1. */
int
rx_moodle_course(const struct rx_moodle *m, int byid, const char *v)
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
user_fits(struct rx_moodle *m, const struct rx_muser *u)
{
	if (chars(u->username) > 100 || chars(u->idnumber) > 255 ||
	    chars(u->first) > 100 || chars(u->last) > 100 ||
	    chars(u->email) > 100)
		return exception(m, "value too long for column", u->idnumber);
	return 0;
}

static void
unenrol_all(struct rx_moodle *m, int course, int user)
{
	int i, o = 0;

	for (i = 0; i < m->ne; i++)
		if (!(m->e[i].user == user && (course < 0 ||
		    m->e[i].course == course)))
			m->e[o++] = m->e[i];
	m->ne = o;
}

static int
person_delete(struct rx_moodle *m, const char *username)
{
	int i = rx_moodle_user(m, 0, username);
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
person_update(struct rx_moodle *m, int i, const char *rec)
{
	struct rx_muser u = m->u[i];
	char v[1024];
	int j;

	if (ml_field(rec, "userid", v, sizeof(v))) {
		if ((j = rx_moodle_user(m, 0, v)) >= 0 && j != i)
			return exception(m, "username already taken", v);
		u.username = v;
	}
	u.first = ml_field(rec, "given", v + 256, 256) ? v + 256 : u.first;
	u.last = ml_field(rec, "family", v + 512, 256) ? v + 512 : u.last;
	u.email = ml_field(rec, "email", v + 768, 256) ? v + 768 : u.email;
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
person_create(struct rx_moodle *m, const char *id, const char *rec)
{
	struct rx_muser u;
	char name[256], given[256], family[256], email[256], auth[64];
	int j;

	if (!ml_field(rec, "userid", name, sizeof(name)) || *name == '\0')
		return exception(m, "no username", id);
	if ((j = rx_moodle_user(m, 0, name)) >= 0) {
		if (*m->u[j].idnumber != '\0')
			return exception(m, "username taken", name);
		set(&m->u[j].idnumber, id);	/* attached */
		return 0;
	}
	if (!ml_field(rec, "given", given, sizeof(given)))
		*given = '\0';
	if (!ml_field(rec, "family", family, sizeof(family)))
		*family = '\0';
	if (!ml_field(rec, "email", email, sizeof(email)))
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
	ck_assert_int_lt(m->nu, RX_MOODLE_USERS);
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
do_person(struct rx_moodle *m, const char *rec)
{
	char id[512], name[256];
	int rs = ml_recstatus(rec), i;

	if (!ml_field(strstr(rec, "<sourcedid>"), "id", id, sizeof(id)))
		return 0;
	if (rs == 3)	/* imsdeleteusers: by username */
		return ml_field(rec, "userid", name, sizeof(name)) ?
		    person_delete(m, name) : 0;
	i = rx_moodle_user(m, 1, id);
	if (rs == 2)	/* imsupdateusers: by idnumber, ignored if none */
		return i >= 0 ? person_update(m, i, rec) : 0;
	if (i >= 0)	/* "User record already exists" */
		return 0;
	return person_create(m, id, rec);
}

static int
do_group(struct rx_moodle *m, const char *rec)
{
	char id[512], sh[1024], full[1024];
	int rs = ml_recstatus(rec), i, j, created = 0;

	if (!ml_field(strstr(rec, "<sourcedid>"), "id", id, sizeof(id)))
		return 0;
	if (!ml_field(rec, "short", sh, sizeof(sh)))
		snprintf(sh, sizeof(sh), "%s", id);
	if (!ml_field(rec, "full", full, sizeof(full)))
		snprintf(full, sizeof(full), "%s", sh);
	if ((i = rx_moodle_course(m, 1, id)) < 0) {	/* createnewcourses */
		if (chars(sh) > 254 || chars(full) > 254 || chars(id) > 100)
			return exception(m, "value too long for column", id);
		if (rx_moodle_course(m, 0, sh) >= 0)
			return exception(m, "Short name is already used for "
			    "another course", sh);
		ck_assert_int_lt(m->nc, RX_MOODLE_COURSES);
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
		if ((j = rx_moodle_course(m, 0, sh)) >= 0 && j != i)
			return exception(m, "Short name is already used for "
			    "another course", sh);
		set(&m->c[i].shortname, sh);
		set(&m->c[i].fullname, full);
	}
	return 0;
}

/* The date of a role timeframe's tag (begin or end) in rec in the one
 * form Moodle reads, restrict="1" (FORMAT.md 9), into d (11 bytes); ""
 * when there is none. */
static void
restricted_date(const char *rec, const char *tag, char *d)
{
	char open[64];

	d[0] = '\0';
	snprintf(open, sizeof(open), "<%s restrict=\"1\">", tag);
	if ((rec = strstr(rec, open)) != NULL && !ml_field(rec, tag, d, 11))
		d[0] = '\0';
}

/* enrol_user() on the user enrolment of u in course: its timestart and
 * timeend set, on every role it holds there. */
static void
enrol_dates(struct rx_moodle *m, int course, int u, const char *rec)
{
	char start[11], end[11];
	int k;

	restricted_date(rec, "begin", start);
	restricted_date(rec, "end", end);
	for (k = 0; k < m->ne; k++)
		if (m->e[k].course == course && m->e[k].user == u) {
			memcpy(m->e[k].start, start, sizeof(start));
			memcpy(m->e[k].end, end, sizeof(end));
		}
}

static int
do_member(struct rx_moodle *m, int course, const char *rec)
{
	char id[512], role[16], status[16];
	int u, r, k;

	if (!ml_field(strstr(rec, "<sourcedid>"), "id", id, sizeof(id)) ||
	    (u = rx_moodle_user(m, 1, id)) < 0)
		return 0;
	if (!first_attr(rec, "role", "roletype", role, sizeof(role)) ||
	    strlen(role) != 2 || role[0] != '0' || role[1] < '1' ||
	    role[1] > '8')
		return 0;	/* SKIPPING role */
	r = role[1] - '0';
	if (!ml_field(rec, "status", status, sizeof(status)))
		snprintf(status, sizeof(status), "1");
	if (ml_recstatus(strstr(rec, "<role")) == 3 ||
	    strcmp(status, "0") == 0) {	/* imsunenrol: every role */
		unenrol_all(m, course, u);
		return 0;
	}
	for (k = 0; k < m->ne; k++)
		if (m->e[k].course == course && m->e[k].user == u &&
		    m->e[k].role == r)
			break;
	if (k == m->ne) {
		ck_assert_int_lt(m->ne, RX_MOODLE_ENROLS);
		memset(&m->e[m->ne], 0, sizeof(m->e[m->ne]));
		m->e[m->ne].course = course;
		m->e[m->ne].user = u;
		m->e[m->ne].role = r;
		m->ne++;
	}
	enrol_dates(m, course, u, rec);
	return 0;
}

static int
do_membership(struct rx_moodle *m, const char *rec)
{
	char id[512];
	const char *p, *end;
	int c;

	if (!ml_field(strstr(rec, "<sourcedid>"), "id", id, sizeof(id)) ||
	    (c = rx_moodle_course(m, 1, id)) < 0)
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
take_record(struct rx_moodle *m, char *buf, int t)
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
int
rx_moodle_import(struct rx_moodle *m, const char *path)
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
/* A churning export.                                                  */

struct wperson {
	char	 id[16], userid[40], given[48], family[64], email[80];
	char	 nin[16];
	const char *role;
	int	 active, alive;
};

struct wgroup {
	char	 id[16], type[24], shortname[64], longname[96];
	char	 parent[16], term[16];
	int	 alive;
};

struct wmember {
	int	 g, p, role, active, alive;
};

struct rx_world {
	uint64_t	 rng;
	struct wperson	*p;
	size_t		 np, capp;
	struct wgroup	*g;
	size_t		 ng, capg;
	struct wmember	*m;
	size_t		 nm, capm;
	unsigned	 next_id;
	/* the last churn */
	unsigned	 n_insert, n_rename, n_leave, n_deact, n_react;
	unsigned	 n_rolechg, n_end, n_course, n_newcourse, n_delcourse;
	/* what rx_world_revert undoes of it */
	int		 new_p[8], toggled_m[8], new_g;
	unsigned	 n_new_p, n_toggled_m;
};

static const char *const givens[] = { "Ola", "Kari", "Ada", "Grace",
	"Bj\xc3\xb8rn", "\xc3\x85se", "Jean-Luc", "Ren\xc3\xa9" };
static const char *const families[] = { "Nordmann", "\xc3\x85sen",
	"O'Brien", "Smith & Sons", "<Lee>", "\xc3\x98" "deg\xc3\xa5rd",
	"Quote \"Q\"", "Lovelace" };
static const char *const subjects[] = { "Math", "Science & Tech",
	"English <B>", "Norsk", "Historie", "Kunst, h\xc3\xa5ndverk" };
static const char *const terms[] = { "2026/2027", "H2026", "",
	"2026/27" };

unsigned
rx_world_rand(struct rx_world *w, unsigned n)
{
	/* xorshift64*: the same seed, the same nights */
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return n == 0 ? 0 :
	    (unsigned)((w->rng * 2685821657736338717ULL) >> 33) % n;
}

static void
person_names(struct rx_world *w, struct wperson *p)
{
	const char *g = givens[rx_world_rand(w, 8)];
	const char *f = families[rx_world_rand(w, 8)];
	unsigned k = rx_world_rand(w, 1000);

	snprintf(p->given, sizeof(p->given), "%s", g);
	snprintf(p->family, sizeof(p->family), "%s", f);
	snprintf(p->userid, sizeof(p->userid), "u%s.%u", p->id, k);
	if (rx_world_rand(w, 5) == 0)
		p->email[0] = '\0';
	else
		snprintf(p->email, sizeof(p->email), "%s.%u@skole.example.no",
		    p->id, k);
}

static int
add_person(struct rx_world *w)
{
	struct wperson *p;

	grow((void **)&w->p, &w->capp, w->np, sizeof(*w->p));
	p = &w->p[w->np];
	memset(p, 0, sizeof(*p));
	snprintf(p->id, sizeof(p->id), "P%04u", w->next_id++);
	person_names(w, p);
	snprintf(p->nin, sizeof(p->nin), "%011u", 10000000u +
	    rx_world_rand(w, 89999999u));
	p->role = rx_world_rand(w, 6) == 0 ? "Faculty" : "Student";
	p->active = p->alive = 1;
	return (int)w->np++;
}

static void
course_names(struct rx_world *w, struct wgroup *g)
{
	const char *s = subjects[rx_world_rand(w, 6)];
	unsigned k = rx_world_rand(w, 100);

	snprintf(g->shortname, sizeof(g->shortname), "%s %u", s, k);
	snprintf(g->longname, sizeof(g->longname), "%s, group %u (%s)", s, k,
	    g->id);
}

static int
add_group(struct rx_world *w, const char *type, const char *parent)
{
	struct wgroup *g;
	char up[sizeof(g->parent)];

	snprintf(up, sizeof(up), "%s", parent);	/* may be in w->g */
	grow((void **)&w->g, &w->capg, w->ng, sizeof(*w->g));
	g = &w->g[w->ng];
	memset(g, 0, sizeof(*g));
	snprintf(g->id, sizeof(g->id), "G%04u", w->next_id++);
	snprintf(g->type, sizeof(g->type), "%s", type);
	snprintf(g->parent, sizeof(g->parent), "%s", up);
	course_names(w, g);
	snprintf(g->term, sizeof(g->term), "%s",
	    terms[rx_world_rand(w, 4)]);
	g->alive = 1;
	return (int)w->ng++;
}

/* A membership (g, p, role) made alive and active. */
static void
add_member(struct rx_world *w, int g, int p, int role)
{
	size_t i;

	for (i = 0; i < w->nm; i++)
		if (w->m[i].g == g && w->m[i].p == p && w->m[i].role == role) {
			w->m[i].alive = w->m[i].active = 1;
			return;
		}
	grow((void **)&w->m, &w->capm, w->nm, sizeof(*w->m));
	w->m[w->nm].g = g;
	w->m[w->nm].p = p;
	w->m[w->nm].role = role;
	w->m[w->nm].active = w->m[w->nm].alive = 1;
	w->nm++;
}

/* A random live course (type class or course), or -1. */
static int
some_course(struct rx_world *w)
{
	int tries, g;

	for (tries = 0; tries < 50; tries++) {
		g = (int)rx_world_rand(w, (unsigned)w->ng);
		if (w->g[g].alive && (strcmp(w->g[g].type, "class") == 0 ||
		    strcmp(w->g[g].type, "course") == 0))
			return g;
	}
	return -1;
}

/* A random live person (active or not as asked, -1 any), or -1. */
static int
some_person(struct rx_world *w, int active)
{
	int tries, p;

	for (tries = 0; tries < 50; tries++) {
		p = (int)rx_world_rand(w, (unsigned)w->np);
		if (w->p[p].alive && (active < 0 || w->p[p].active == active))
			return p;
	}
	return -1;
}

/* A random live membership, or -1. */
static int
some_member(struct rx_world *w)
{
	int tries, m;

	for (tries = 0; tries < 50 && w->nm > 0; tries++) {
		m = (int)rx_world_rand(w, (unsigned)w->nm);
		if (w->m[m].alive && w->p[w->m[m].p].alive &&
		    w->g[w->m[m].g].alive)
			return m;
	}
	return -1;
}

static void
enrol(struct rx_world *w, int p)
{
	int k, g;

	for (k = 0; k < 2; k++)
		if ((g = some_course(w)) >= 0)
			add_member(w, g, p, strcmp(w->p[p].role, "Faculty") ==
			    0 ? 2 : 1);
}

struct rx_world *
rx_world_new(unsigned seed, size_t npersons)
{
	struct rx_world *w = xalloc(calloc(1, sizeof(*w)));
	int dist, s1, s2, i;
	size_t k;

	w->rng = 0x9E3779B97F4A7C15ULL ^ seed;
	w->next_id = 1;
	w->new_g = -1;
	dist = add_group(w, "district", "");
	s1 = add_group(w, "school", w->g[dist].id);
	s2 = add_group(w, "skole", w->g[dist].id);
	add_group(w, "homeroom", w->g[s1].id);
	for (i = 0; i < 6; i++)
		add_group(w, i % 2 ? "class" : "course",
		    w->g[i % 3 ? s1 : s2].id);
	for (k = 0; k < npersons; k++)
		enrol(w, add_person(w));
	return w;
}

void
rx_world_free(struct rx_world *w)
{
	if (w == NULL)
		return;
	free(w->p);
	free(w->g);
	free(w->m);
	free(w);
}

void
rx_world_churn(struct rx_world *w)
{
	unsigned i, n;
	int p, m, g;

	w->n_insert = w->n_rename = w->n_leave = w->n_deact = 0;
	w->n_react = w->n_rolechg = w->n_end = w->n_course = 0;
	w->n_newcourse = w->n_delcourse = 0;
	w->n_new_p = w->n_toggled_m = 0;
	w->new_g = -1;
	for (n = rx_world_rand(w, 4), i = 0; i < n; i++, w->n_insert++) {
		p = add_person(w);
		enrol(w, p);
		w->new_p[w->n_new_p++] = p;
	}
	for (n = rx_world_rand(w, 4), i = 0; i < n; i++)
		if ((p = some_person(w, -1)) >= 0) {
			person_names(w, &w->p[p]);
			w->n_rename++;
		}
	for (n = rx_world_rand(w, 3), i = 0; i < n; i++)
		if ((p = some_person(w, -1)) >= 0) {
			w->p[p].alive = 0;
			w->n_leave++;
		}
	for (n = rx_world_rand(w, 3), i = 0; i < n; i++)
		if ((p = some_person(w, 1)) >= 0) {
			w->p[p].active = 0;
			w->n_deact++;
		}
	for (n = rx_world_rand(w, 3), i = 0; i < n; i++)
		if ((p = some_person(w, 0)) >= 0) {
			w->p[p].active = 1;
			w->n_react++;
		}
	for (n = rx_world_rand(w, 4), i = 0; i < n; i++)
		if ((m = some_member(w)) >= 0) {
			/* another role: swap it, or hold both */
			int role = w->m[m].role == 1 ? 2 : 1;

			if (rx_world_rand(w, 2))
				w->m[m].alive = 0;
			add_member(w, w->m[m].g, w->m[m].p, role);
			w->n_rolechg++;
		}
	for (n = rx_world_rand(w, 4), i = 0; i < n; i++)
		if ((m = some_member(w)) >= 0) {
			if (rx_world_rand(w, 2))
				w->m[m].alive = 0;
			else {
				w->m[m].active = !w->m[m].active;
				w->toggled_m[w->n_toggled_m++] = m;
			}
			w->n_end++;
		}
	for (n = rx_world_rand(w, 3), i = 0; i < n; i++)
		if ((g = some_course(w)) >= 0) {
			course_names(w, &w->g[g]);
			w->n_course++;
		}
	if (rx_world_rand(w, 4) == 0) {
		g = add_group(w, rx_world_rand(w, 2) ? "class" : "course",
		    w->g[1 + rx_world_rand(w, 2)].id);
		for (i = 0; i < 3; i++)
			if ((p = some_person(w, -1)) >= 0)
				add_member(w, g, p, 1);
		w->n_newcourse++;
		w->new_g = g;
	}
	if (rx_world_rand(w, 6) == 0 && (g = some_course(w)) >= 0) {
		w->g[g].alive = 0;
		w->n_delcourse++;
	}
}

void
rx_world_revert(struct rx_world *w)
{
	unsigned i;

	for (i = 0; i < w->n_new_p; i++)
		w->p[w->new_p[i]].alive = 0;
	for (i = 0; i < w->n_toggled_m; i++)
		w->m[w->toggled_m[i]].active = !w->m[w->toggled_m[i]].active;
	if (w->new_g >= 0)
		w->g[w->new_g].alive = 0;
	w->n_new_p = w->n_toggled_m = 0;
	w->new_g = -1;
}

const char *
rx_world_churned(const struct rx_world *w)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "inserts %u, renames %u, leavers %u, "
	    "deactivations %u, reactivations %u, role changes %u, ended or "
	    "toggled memberships %u, course renames %u, new courses %u, "
	    "removed courses %u", w->n_insert, w->n_rename, w->n_leave,
	    w->n_deact, w->n_react, w->n_rolechg, w->n_end, w->n_course,
	    w->n_newcourse, w->n_delcourse);
	return buf;
}

/* One CSV field, quoted, to fp. */
static void
csv_field(FILE *fp, const char *s, int last)
{
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		if (*s == '"')
			fputc('"', fp);
		fputc(*s, fp);
	}
	fputs(last ? "\"\n" : "\",", fp);
}

static FILE *
open_in(const char *dir, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return xalloc(fopen(path, "w"));
}

void
rx_world_write(const struct rx_world *w, const char *dir)
{
	FILE *fp;
	size_t i;
	char role[8];

	fp = open_in(dir, "persons.csv");
	fputs("id,userid,given,family,email,status,role,nin\n", fp);
	for (i = 0; i < w->np; i++) {
		const struct wperson *p = &w->p[i];

		if (!p->alive)
			continue;
		csv_field(fp, p->id, 0);
		csv_field(fp, p->userid, 0);
		csv_field(fp, p->given, 0);
		csv_field(fp, p->family, 0);
		csv_field(fp, p->email, 0);
		csv_field(fp, p->active ? "active" : "inactive", 0);
		csv_field(fp, p->role, 0);
		csv_field(fp, p->nin, 1);
	}
	if (fclose(fp) != 0)
		abort();
	fp = open_in(dir, "groups.csv");
	fputs("id,type,short,long,parent,term\n", fp);
	for (i = 0; i < w->ng; i++) {
		const struct wgroup *g = &w->g[i];

		if (!g->alive)
			continue;
		csv_field(fp, g->id, 0);
		csv_field(fp, g->type, 0);
		csv_field(fp, g->shortname, 0);
		csv_field(fp, g->longname, 0);
		csv_field(fp, g->parent, 0);
		csv_field(fp, g->term, 1);
	}
	if (fclose(fp) != 0)
		abort();
	fp = open_in(dir, "memberships.csv");
	fputs("group,person,role,status\n", fp);
	for (i = 0; i < w->nm; i++) {
		const struct wmember *m = &w->m[i];

		if (!m->alive || !w->p[m->p].alive || !w->g[m->g].alive)
			continue;
		snprintf(role, sizeof(role), "%02d", m->role);
		csv_field(fp, w->g[m->g].id, 0);
		csv_field(fp, w->p[m->p].id, 0);
		csv_field(fp, role, 0);
		csv_field(fp, m->active ? "active" : "inactive", 1);
	}
	if (fclose(fp) != 0)
		abort();
}

const char *
rx_world_columns(int nin)
{
	return nin ?
	    "    persons: {id: id, userid: userid, given: given, family: "
	    "family, email: email, status: status, role: role, nin: nin}\n"
	    "    groups: {id: id, type: type, short: short, long: long, "
	    "parent: parent, term: term}\n"
	    "    memberships: {group: group, person: person, role: role, "
	    "status: status}\n" :
	    "    persons: {id: id, userid: userid, given: given, family: "
	    "family, email: email, status: status, role: role}\n"
	    "    groups: {id: id, type: type, short: short, long: long, "
	    "parent: parent, term: term}\n"
	    "    memberships: {group: group, person: person, role: role, "
	    "status: status}\n";
}

void
rx_world_expect(const struct rx_world *w, enum rx_kind kind, int nin,
    struct rx_state *out)
{
	struct rx_person p;
	struct rx_group g;
	struct rx_member m;
	const char *t;
	size_t i;

	rx_init(out);
	for (i = 0; i < w->np; i++) {
		const struct wperson *s = &w->p[i];

		if (!s->alive)
			continue;
		p.id = (char *)s->id;
		p.userid = (char *)s->userid;
		p.given = (char *)s->given;
		p.family = (char *)s->family;
		p.email = (char *)s->email;
		p.role = kind == RX_ITSLEARNING ? "" : (char *)s->role;
		p.nin = kind == RX_ITSLEARNING && nin ? (char *)s->nin : "";
		p.active = s->active;
		rx_put_person(out, &p);
	}
	for (i = 0; i < w->ng; i++) {
		const struct wgroup *s = &w->g[i];

		if (!s->alive)
			continue;
		g.id = (char *)s->id;
		t = kind == RX_ITSLEARNING ? pifu_typevalue(s->type) : s->type;
		g.type = (char *)(t != NULL ? t : "?");
		g.shortname = (char *)s->shortname;
		g.longname = (char *)s->longname;
		g.parent = (char *)s->parent;
		g.term = kind == RX_ITSLEARNING &&
		    !pifu_adminperiod_ok(s->term) ? "" : (char *)s->term;
		rx_put_group(out, &g);
	}
	for (i = 0; i < w->nm; i++) {
		const struct wmember *s = &w->m[i];

		if (!s->alive || !w->p[s->p].alive || !w->g[s->g].alive)
			continue;
		m.group = (char *)w->g[s->g].id;
		m.person = (char *)w->p[s->p].id;
		m.role = s->role;
		m.active = s->active;
		rx_put_member(out, &m);
	}
}
