/*
 * window.c -- the journal of the last nights' touched keys, for the
 * cumulative files of the moodle profile.
 *
 * The journal is text, one night after another:
 *
 *	night RUN_ID [all]	(or "tried": see below)
 *	p F KEY			a person
 *	g F KEY			a group
 *	m F GROUP<TAB>PERSON	a (group, person) pair
 *
 * F is 1 when the writer must first free the old value (a person whose
 * login changed or who is gone, a group whose short name changed or
 * that is gone, a pair that lost a role), else 0.  "all" marks a night
 * that touched every record (the first run): its records are not
 * listed ("all free": and every value is freed first, after a first
 * run that delivered and did not commit).  A run writes its night as
 * "tried" before it delivers, and the commit makes it a "night": a run
 * that delivered and then crashed or failed leaves its keys in the
 * journal, and the next run (which always delivers while a tried night
 * is there) takes them into its own night, each key once
 * (window_merge), so that runs tried again and again replace the tried
 * night rather than grow it.  Only committed nights count in the
 * window.  In keys '%', TAB, LF and CR are written %25, %09, %0A, %0D.
 * It holds keys only; what each key is tonight comes from the export.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sisfeed.h"

/* Append key with '%', TAB, LF and CR escaped. */
static void
put_key(struct sbuf *sb, const char *key)
{
	const char *p;

	for (p = key; *p != '\0'; p++) {
		switch (*p) {
		case '%':
			sbuf_puts(sb, "%25");
			break;
		case '\t':
			sbuf_puts(sb, "%09");
			break;
		case '\n':
			sbuf_puts(sb, "%0A");
			break;
		case '\r':
			sbuf_puts(sb, "%0D");
			break;
		default:
			sbuf_putn(sb, p, 1);
		}
	}
}

static void
put_line(struct sbuf *sb, char type, int flag, const char *key,
    const char *person)
{
	char head[4] = { type, ' ', flag ? '1' : '0', ' ' };

	sbuf_putn(sb, head, sizeof(head));
	put_key(sb, key);
	if (person != NULL) {
		sbuf_putn(sb, "\t", 1);
		put_key(sb, person);
	}
	sbuf_putn(sb, "\n", 1);
}

static void
night_persons(struct sbuf *sb, const struct roster *or,
    const struct roster *nr, const struct changeset *cs)
{
	size_t i;

	for (i = 0; i < cs->n[TYPE_PERSON]; i++) {
		const struct change *c = &cs->c[TYPE_PERSON][i];

		if (c->op == OP_DELETE)
			put_line(sb, 'p', 1, or->persons[c->old].id, NULL);
		else
			put_line(sb, 'p', c->op == OP_UPDATE &&
			    strcmp(or->persons[c->old].userid,
			    nr->persons[c->new].userid) != 0,
			    nr->persons[c->new].id, NULL);
	}
}

static void
night_groups(struct sbuf *sb, const struct roster *or,
    const struct roster *nr, const struct changeset *cs)
{
	size_t i;

	for (i = 0; i < cs->n[TYPE_GROUP]; i++) {
		const struct change *c = &cs->c[TYPE_GROUP][i];

		if (c->op == OP_DELETE)
			put_line(sb, 'g', 1, or->groups[c->old].id, NULL);
		else
			put_line(sb, 'g', c->op == OP_UPDATE &&
			    strcmp(or->groups[c->old].shortname,
			    nr->groups[c->new].shortname) != 0,
			    nr->groups[c->new].id, NULL);
	}
}

static void
night_members(struct sbuf *sb, const struct roster *or,
    const struct roster *nr, const struct changeset *cs)
{
	size_t i;

	for (i = 0; i < cs->n[TYPE_MEMBER]; i++) {
		const struct change *c = &cs->c[TYPE_MEMBER][i];
		const struct roster *r = c->op == OP_DELETE ? or : nr;
		const struct membership *m = c->op == OP_DELETE ?
		    &or->members[c->old] : &nr->members[c->new];
		int lost = c->op == OP_DELETE || (c->op == OP_UPDATE &&
		    or->members[c->old].active && !m->active);

		put_line(sb, 'm', lost, r->groups[m->group].id,
		    r->persons[m->person].id);
	}
}

/*
 * Append to sb the lines of the keys cs touched between the old roster
 * or and the new one nr.  Errors show in sb->err.
 */
void
window_keys(struct sbuf *sb, const struct roster *or,
    const struct roster *nr, const struct changeset *cs)
{
	night_persons(sb, or, nr, cs);
	night_groups(sb, or, nr, cs);
	night_members(sb, or, nr, cs);
}

/* One line of a night's block, without its LF. */
struct key_line {
	const char	*p;
	size_t		 len;
};

/* A key line is "T F KEY"; it is compared by T and KEY, F apart. */
static int
is_key_line(const struct key_line *l)
{
	return l->len >= 4 && l->p[1] == ' ' && l->p[3] == ' ';
}

static int
key_line_cmp(const void *a, const void *b)
{
	const struct key_line *x = a, *y = b;
	size_t xo = is_key_line(x) ? 4 : 1, yo = is_key_line(y) ? 4 : 1;
	size_t xn = x->len - xo, yn = y->len - yo;
	int c;

	if (x->len == 0 || y->len == 0)
		return (x->len > 0) - (y->len > 0);
	if (x->p[0] != y->p[0])
		return (unsigned char)x->p[0] - (unsigned char)y->p[0];
	if (xo != yo)
		return (int)xo - (int)yo;
	if ((c = memcmp(x->p + xo, y->p + yo, xn < yn ? xn : yn)) != 0)
		return c;
	return (xn > yn) - (xn < yn);
}

/* Split sb->p[from..len) into lines; NULL on no memory. */
static struct key_line *
key_lines(const struct sbuf *sb, size_t from, size_t *n)
{
	struct key_line *v;
	const char *p = sb->p + from, *end = sb->p + sb->len, *nl;
	size_t cap = 0;

	for (nl = p; nl < end; nl++)
		cap += *nl == '\n';
	if ((v = calloc(cap + 1, sizeof(*v))) == NULL)
		return NULL;
	for (*n = 0; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		v[*n].p = p;
		v[(*n)++].len = (size_t)(nl - p);
	}
	return v;
}

/*
 * Keep one line per key in the night block sb->p[from..len): a run
 * tried again (its delivery failed or it stopped before its commit)
 * adds the same keys as the tried run before it.  A key keeps flag 1
 * if any of its lines has it.  Lines are sorted (their order carries
 * no meaning).  Errors (no memory) show in sb->err.
 */
void
window_merge(struct sbuf *sb, size_t from)
{
	struct key_line *v;
	struct sbuf out;
	size_t n, i, j;
	char flag;

	if (sb->err || from >= sb->len)
		return;
	if ((v = key_lines(sb, from, &n)) == NULL) {
		sb->err = 1;
		return;
	}
	qsort(v, n, sizeof(*v), key_line_cmp);
	memset(&out, 0, sizeof(out));
	for (i = 0; i < n; i = j) {
		flag = is_key_line(&v[i]) ? v[i].p[2] : 0;
		for (j = i + 1; j < n && key_line_cmp(&v[i], &v[j]) == 0; j++)
			if (flag != 0 && v[j].p[2] == '1')
				flag = '1';
		if (v[i].len == 0)
			continue;
		sbuf_putn(&out, v[i].p, flag != 0 ? 2 : v[i].len);
		if (flag != 0) {
			sbuf_putn(&out, &flag, 1);
			sbuf_putn(&out, v[i].p + 3, v[i].len - 3);
		}
		sbuf_putn(&out, "\n", 1);
	}
	free(v);
	sb->len = from;
	if (out.err)
		sb->err = 1;
	else if (out.len > 0)
		sbuf_putn(sb, out.p, out.len);
	free(out.p);
}

/* 1 if the line at p (of end) starts a night of kind ("night ",
 * "tried "). */
static int
starts(const char *p, const char *end, const char *kind)
{
	return (size_t)(end - p) >= 6 && memcmp(p, kind, 6) == 0;
}

/*
 * The start of the last keep committed nights of text[0..len) (len
 * when keep is 0 or there are none).
 */
size_t
window_tail(const char *text, size_t len, int keep)
{
	size_t i = len;
	int n = 0;

	if (keep <= 0)
		return len;
	while (i > 0) {
		i--;
		if ((i == 0 || text[i - 1] == '\n') &&
		    starts(text + i, text + len, "night ") && ++n == keep)
			return i;
	}
	return 0;
}

/*
 * Split the journal text[0..len): its committed nights go to nights,
 * the key lines of its tried nights (written before a delivery whose
 * run did not commit) to tried, flagged 1 (the values that run sent
 * may be in no snapshot, so they are freed first); *tried_all is set if one of those
 * touched everything, *any_tried if there was one.
 */
void
window_split(const char *text, size_t len, struct sbuf *nights,
    struct sbuf *tried, int *tried_all, int *any_tried)
{
	const char *p = text, *end = text + len, *nl;
	int in_tried = 0;

	*tried_all = *any_tried = 0;
	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end - 1;
		if (starts(p, end, "night "))
			in_tried = 0;
		else if (starts(p, end, "tried ")) {
			in_tried = 1;
			*any_tried = 1;
			if ((nl - p >= 4 && memcmp(nl - 4, " all", 4) == 0) ||
			    (nl - p >= 9 && memcmp(nl - 9, " all free", 9) == 0))
				*tried_all = 1;
			p = nl + 1;
			continue;
		}
		if (in_tried && nl - p >= 4 && p[1] == ' ' && p[3] == ' ') {
			/* what that run sent may differ from every
			 * snapshot: free its values first */
			sbuf_putn(tried, p, 2);
			sbuf_putn(tried, "1", 1);
			sbuf_putn(tried, p + 3, (size_t)(nl - p - 2));
		} else
			sbuf_putn(in_tried ? tried : nights, p,
			    (size_t)(nl + 1 - p));
		p = nl + 1;
	}
}

/*
 * Read the journal at path into sb (nothing if it does not exist).
 * Returns 0 or -1 (error set).
 */
int
window_load(const char *path, struct sbuf *sb)
{
	FILE *fp;
	char buf[65536];
	size_t n;

	if ((fp = fopen(path, "r")) == NULL) {
		if (errno == ENOENT)
			return 0;
		return error_sys("%s", path);
	}
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		sbuf_putn(sb, buf, n);
	if (ferror(fp)) {
		fclose(fp);
		return error_sys("%s", path);
	}
	fclose(fp);
	if (sb->len > 0 && !starts(sb->p, sb->p + sb->len, "night ") &&
	    !starts(sb->p, sb->p + sb->len, "tried "))
		return error_set("%s: not a sisfeed journal", path);
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Undo the key escapes of s[0..len) in place and NUL-terminate it;
 * returns the new length. */
size_t
window_unescape(char *s, size_t len)
{
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < len; i++) {
		if (s[i] == '%' && len - i >= 3 &&
		    (hi = hexval(s[i + 1])) >= 0 &&
		    (lo = hexval(s[i + 2])) >= 0) {
			s[o++] = (char)(hi << 4 | lo);
			i += 2;
			continue;
		}
		s[o++] = s[i];
	}
	s[o] = '\0';
	return o;
}
