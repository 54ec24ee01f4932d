/*
 * config.c -- the YAML config: read it, check it against the schema.
 *
 * libyaml's events become a small tree of nodes that remember their
 * line; a hand-written walker then checks that tree key by key, so
 * every complaint reads "FILE:LINE: key 'a.b.c': reason".  Unknown
 * keys, duplicate keys, wrong types and bad values are all errors;
 * nothing is guessed.  Aliases are refused and nesting is bounded, so
 * a hostile file cannot blow up memory or the stack.
 *
 * Every path in the file is made absolute against the directory of
 * the config file.  No secret is ever read from the file itself: keys
 * that look like one are refused with a hint to the *_file key.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <yaml.h>

#include "sisfeed.h"

#define MAXDEPTH	32
#define MAXKEY		256

enum nkind { N_SCALAR, N_MAP, N_SEQ };

/* One YAML node.  A map holds key, value, key, value, ... in v. */
struct node {
	enum nkind	  kind;
	unsigned long	  line;
	char		 *s;		/* scalar text, NUL-terminated */
	size_t		  len;		/* scalar length (may hold a NUL) */
	int		  null;		/* plain "", "~" or "null" */
	struct node	**v;
	size_t		  n, cap;
};

/* A key of a schema map as found: key node and value node. */
struct ent {
	const struct node *k, *v;
};

struct ctx {
	const char	*file;		/* as given, for messages */
	FILE		*fp;		/* the file, for reader errors */
	char		*dir;		/* absolute directory of file */
	struct config	*c;
};

static const char *const status_names[] = { "completed", "blocked",
	"failed", NULL };

/* ------------------------------------------------------------------ */
/* Messages.                                                           */

/* "FILE:LINE: key 'KEY': reason" (no key part when key is NULL). */
static int PRINTF_LIKE(4, 5)
cerr(const struct ctx *x, unsigned long line, const char *key,
    const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (key == NULL || *key == '\0')
		return error_set("%s:%lu: %s", x->file, line, msg);
	return error_set("%s:%lu: key '%s': %s", x->file, line, key, msg);
}

static const char *
cfg_node_kind(const struct node *n)
{
	switch (n->kind) {
	case N_MAP:
		return "a mapping";
	case N_SEQ:
		return "a list";
	default:
		return n->null ? "nothing" : "a string";
	}
}

/* prefix.name into buf (just name at the top). */
static const char *
kjoin(char *buf, size_t len, const char *prefix, const char *name)
{
	int r;

	if (prefix == NULL || *prefix == '\0')
		r = snprintf(buf, len, "%s", name);
	else
		r = snprintf(buf, len, "%s.%s", prefix, name);
	if (r < 0 || (size_t)r >= len)
		buf[len - 1] = '\0';	/* truncated: still a string */
	return buf;
}

/* ------------------------------------------------------------------ */
/* The node tree.                                                      */

static void
node_free(struct node *n)
{
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; i < n->n; i++)
		node_free(n->v[i]);
	free(n->v);
	free(n->s);
	free(n);
}

static int
node_push(struct node *n, struct node *kid)
{
	struct node **v;
	size_t cap;

	if (n->n == n->cap) {
		cap = n->cap ? n->cap * 2 : 8;
		if ((v = reallocarray(n->v, cap, sizeof(*v))) == NULL)
			return error_sys("config");
		n->v = v;
		n->cap = cap;
	}
	n->v[n->n++] = kid;
	return 0;
}

/* The line of byte offset off in fp (1 if it cannot be read again). */
static unsigned long
offset_line(FILE *fp, size_t off)
{
	unsigned long line = 1;
	size_t i;
	int ch;

	if (fp == NULL || fseek(fp, 0, SEEK_SET) == -1)
		return 1;
	for (i = 0; i < off && (ch = getc(fp)) != EOF; i++)
		if (ch == '\n')
			line++;
	return line;
}

/* The parser's complaint as "FILE:LINE: ...". */
static int
yaml_fail(const struct ctx *x, const yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "cannot parse";

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		return error_set("%s: out of memory", x->file);
	case YAML_READER_ERROR:
		return cerr(x, offset_line(x->fp, p->problem_offset), NULL,
		    "%s (at byte %zu)", problem, p->problem_offset);
	default:
		break;
	}
	if (strstr(problem, "tab character") != NULL)
		return cerr(x, p->problem_mark.line + 1, NULL,
		    "a tab at column %lu: YAML indents with spaces only",
		    (unsigned long)p->problem_mark.column + 1);
	if (p->context != NULL)
		return cerr(x, p->problem_mark.line + 1, NULL,
		    "YAML syntax error: %s (%s at line %lu)", problem,
		    p->context, (unsigned long)p->context_mark.line + 1);
	return cerr(x, p->problem_mark.line + 1, NULL,
	    "YAML syntax error: %s", problem);
}

static int
next_event(const struct ctx *x, yaml_parser_t *p, yaml_event_t *ev)
{
	if (yaml_parser_parse(p, ev))
		return 0;
	return yaml_fail(x, p);
}

static int
is_null_word(const char *s)
{
	return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/*
 * Build the node that starts with event ev (scalar, mapping or
 * sequence start), reading events up to its end.  0 or -1.
 */
static int
build(const struct ctx *x, yaml_parser_t *p, const yaml_event_t *ev,
    int depth, struct node **out)
{
	struct node *n, *kid;
	yaml_event_t sub;
	yaml_event_type_t end;
	unsigned long line = ev->start_mark.line + 1;
	int rc;

	*out = NULL;
	if (ev->type == YAML_ALIAS_EVENT)
		return cerr(x, line, NULL, "YAML aliases are not supported");
	if (depth > MAXDEPTH)
		return cerr(x, line, NULL, "nested too deeply");
	if ((n = calloc(1, sizeof(*n))) == NULL)
		return error_sys("config");
	n->line = line;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		n->kind = N_SCALAR;
		n->len = ev->data.scalar.length;
		if ((n->s = malloc(n->len + 1)) == NULL) {
			free(n);
			return error_sys("config");
		}
		memcpy(n->s, ev->data.scalar.value, n->len);
		n->s[n->len] = '\0';
		n->null = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    is_null_word(n->s);
		*out = n;
		return 0;
	case YAML_MAPPING_START_EVENT:
		n->kind = N_MAP;
		end = YAML_MAPPING_END_EVENT;
		break;
	case YAML_SEQUENCE_START_EVENT:
		n->kind = N_SEQ;
		end = YAML_SEQUENCE_END_EVENT;
		break;
	default:
		free(n);
		return cerr(x, line, NULL, "unexpected YAML event");
	}
	for (;;) {
		if (next_event(x, p, &sub) == -1)
			goto fail;
		if (sub.type == end) {
			yaml_event_delete(&sub);
			break;
		}
		rc = build(x, p, &sub, depth + 1, &kid);
		yaml_event_delete(&sub);
		if (rc == -1)
			goto fail;
		if (node_push(n, kid) == -1) {
			node_free(kid);
			goto fail;
		}
	}
	*out = n;
	return 0;
fail:
	node_free(n);
	return -1;
}

/*
 * Parse the whole stream from fp into *root (NULL for an empty file).
 * Exactly one document is allowed.  0 or -1.
 */
static int
load_tree(const struct ctx *x, FILE *fp, struct node **root)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int docs = 0, rc = -1, done = 0;

	*root = NULL;
	if (!yaml_parser_initialize(&p))
		return error_set("%s: out of memory", x->file);
	yaml_parser_set_input_file(&p, fp);
	while (!done) {
		if (next_event(x, &p, &ev) == -1)
			goto out;
		switch (ev.type) {
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			break;
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (docs++ > 0) {
				cerr(x, ev.start_mark.line + 1, NULL,
				    "only one YAML document is allowed");
				yaml_event_delete(&ev);
				goto out;
			}
			break;
		default:
			if (build(x, &p, &ev, 0, root) == -1) {
				yaml_event_delete(&ev);
				goto out;
			}
			break;
		}
		yaml_event_delete(&ev);
	}
	rc = 0;
out:
	if (rc == -1) {
		node_free(*root);
		*root = NULL;
	}
	yaml_parser_delete(&p);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Maps against a list of known keys.                                  */

static int
contains_caseless(const char *s, const char *w)
{
	size_t n = strlen(w);

	for (; *s != '\0'; s++)
		if (strncasecmp(s, w, n) == 0)
			return 1;
	return 0;
}

/* 1 if a key name looks like it would hold a secret. */
static int
secret_name(const char *k)
{
	static const char *const words[] = { "password", "passwd",
	    "passphrase", "secret", "token" };
	size_t i, len = strlen(k);

	if (len >= 5 && strcasecmp(k + len - 5, "_file") == 0)
		return 0;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (contains_caseless(k, words[i]))
			return 1;
	return 0;
}

static int
known(const char *const *names, const char *k)
{
	size_t i;

	for (i = 0; names[i] != NULL; i++)
		if (strcmp(names[i], k) == 0)
			return (int)i;
	return -1;
}

/* Refuse a secret-looking key with a hint where the secret goes. */
static int
secret_fail(const struct ctx *x, const struct node *k, const char *key,
    const char *prefix, const char *const *names)
{
	char alt[MAXKEY];

	if (strcmp(prefix, "mail") == 0 && strcasecmp(k->s, "password") == 0)
		return cerr(x, k->line, key, "a password does not belong in "
		    "the config: use password_file, or set "
		    "SISFEED_SMTP_PASSWORD in the environment");
	snprintf(alt, sizeof(alt), "%s_file", k->s);
	if (known(names, alt) >= 0)
		return cerr(x, k->line, key, "a secret does not belong in "
		    "the config: put it in a file and name it with %s", alt);
	return cerr(x, k->line, key, "a secret does not belong in the "
	    "config: secrets come only from files (the *_file keys) or "
	    "the environment");
}

static int
unknown_fail(const struct ctx *x, const struct node *k, const char *key,
    const char *const *names)
{
	char list[512];
	size_t i, off = 0;
	int r;

	list[0] = '\0';
	for (i = 0; names[i] != NULL; i++) {
		r = snprintf(list + off, sizeof(list) - off, "%s%s",
		    i ? ", " : "", names[i]);
		if (r < 0 || (size_t)r >= sizeof(list) - off)
			break;
		off += (size_t)r;
	}
	return cerr(x, k->line, key, "unknown key (known here: %s)", list);
}

/*
 * Check that m is a mapping whose keys are all in names (NULL
 * terminated), each at most once; e[i] gets key i's nodes (zero when
 * absent).  prefix names m itself ("" at the top).  0 or -1.
 */
static int
map_get(const struct ctx *x, const struct node *m, const char *prefix,
    const char *const *names, struct ent *e)
{
	char key[MAXKEY];
	const struct node *k;
	size_t i, nn;
	int idx;

	for (nn = 0; names[nn] != NULL; nn++)
		e[nn].k = e[nn].v = NULL;
	if (m->kind != N_MAP) {
		if (*prefix == '\0')
			return cerr(x, m->line, NULL,
			    "the top level must be a mapping of keys");
		return cerr(x, m->line, prefix, "expected a mapping, not %s",
		    cfg_node_kind(m));
	}
	for (i = 0; i + 1 < m->n; i += 2) {
		k = m->v[i];
		if (k->kind != N_SCALAR || k->null || strlen(k->s) != k->len)
			return cerr(x, k->line, *prefix ? prefix : NULL,
			    "a key must be a plain name, not %s",
			    cfg_node_kind(k));
		kjoin(key, sizeof(key), prefix, k->s);
		if ((idx = known(names, k->s)) < 0) {
			if (secret_name(k->s))
				return secret_fail(x, k, key, prefix, names);
			return unknown_fail(x, k, key, names);
		}
		if (e[idx].k != NULL)
			return cerr(x, k->line, key, "duplicate key (first "
			    "at line %lu)", e[idx].k->line);
		e[idx].k = k;
		e[idx].v = m->v[i + 1];
	}
	return 0;
}

static int
missing(const struct ctx *x, unsigned long line, const char *prefix,
    const char *name)
{
	char key[MAXKEY];

	return cerr(x, line, kjoin(key, sizeof(key), prefix, name),
	    "missing (required)");
}

/* ------------------------------------------------------------------ */
/* Scalars.                                                            */

/* The text of a scalar, checked; NULL (error set) if n is not one. */
static const char *
scalar(const struct ctx *x, const struct node *n, const char *key,
    const char *what)
{
	size_t i;
	unsigned char ch;

	if (n->kind != N_SCALAR) {
		cerr(x, n->line, key, "expected %s, not %s", what,
		    cfg_node_kind(n));
		return NULL;
	}
	if (n->null || n->len == 0) {
		cerr(x, n->line, key, "has no value (expected %s)", what);
		return NULL;
	}
	for (i = 0; i < n->len; i++) {
		ch = (unsigned char)n->s[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			cerr(x, n->line, key, "contains a control character");
			return NULL;
		}
	}
	return n->s;
}

static int
get_str(const struct ctx *x, const struct node *n, const char *key,
    char **out)
{
	const char *s;

	if ((s = scalar(x, n, key, "a string")) == NULL)
		return -1;
	if ((*out = strdup(s)) == NULL)
		return error_sys("config");
	return 0;
}

/* A path, made absolute against the config file's directory. */
static int
get_path(const struct ctx *x, const struct node *n, const char *key,
    char **out)
{
	const char *s;
	size_t len;

	if ((s = scalar(x, n, key, "a path")) == NULL)
		return -1;
	if (s[0] == '/') {
		if ((*out = strdup(s)) == NULL)
			return error_sys("config");
		return 0;
	}
	len = strlen(x->dir) + 1 + strlen(s) + 1;
	if ((*out = malloc(len)) == NULL)
		return error_sys("config");
	snprintf(*out, len, "%s%s%s", x->dir,
	    strcmp(x->dir, "/") == 0 ? "" : "/", s);
	return 0;
}

static int
get_long(const struct ctx *x, const struct node *n, const char *key,
    long lo, long hi, long *out)
{
	const char *s, *p;
	long v;

	if ((s = scalar(x, n, key, "a number")) == NULL)
		return -1;
	for (p = s; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			return cerr(x, n->line, key, "'%.64s' is not a whole "
			    "number", s);
	errno = 0;
	v = strtol(s, NULL, 10);
	if (errno == ERANGE || v < lo || v > hi)
		return cerr(x, n->line, key, "%.64s is out of range "
		    "(%ld..%ld)", s, lo, hi);
	*out = v;
	return 0;
}

static int
get_int(const struct ctx *x, const struct node *n, const char *key,
    int lo, int hi, int *out)
{
	long v;

	if (get_long(x, n, key, lo, hi, &v) == -1)
		return -1;
	*out = (int)v;
	return 0;
}

/* One of names (any case) into *out as its index. */
static int
get_enum(const struct ctx *x, const struct node *n, const char *key,
    const char *const *names, int *out)
{
	const char *s;
	char list[256];
	size_t i, off = 0;

	if ((s = scalar(x, n, key, "a word")) == NULL)
		return -1;
	list[0] = '\0';
	for (i = 0; names[i] != NULL; i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
		off += snprintf(list + off, sizeof(list) - off, "%s%s",
		    i ? ", " : "", names[i]);
		if (off >= sizeof(list))
			off = sizeof(list) - 1;
	}
	return cerr(x, n->line, key, "'%.64s' is not one of: %s", s, list);
}

static int	get_duration(const struct ctx *, const struct node *,
		    const char *, long *);

/* A percentage such as "1%" or "0.5%" into *out. */
static int
get_percent(const struct ctx *x, const struct node *n, const char *key,
    double *out)
{
	struct threshold t = { -1, -1 };
	const char *s;
	size_t len;

	if ((s = scalar(x, n, key, "a percentage")) == NULL)
		return -1;
	len = strlen(s);
	if (len == 0 || s[len - 1] != '%')
		return cerr(x, n->line, key, "'%.64s' is not a percentage "
		    "(write it like 1%%)", s);
	if (threshold_parse(s, &t) == -1)
		return cerr(x, n->line, key, "%s", error_last());
	*out = t.percent;
	return 0;
}

/* A percentage, or off/none (-1). */
static int
get_percent_off(const struct ctx *x, const struct node *n, const char *key,
    double *out)
{
	const char *s;

	if ((s = scalar(x, n, key, "a percentage or off")) == NULL)
		return -1;
	if (strcasecmp(s, "off") == 0 || strcasecmp(s, "none") == 0) {
		*out = -1;
		return 0;
	}
	return get_percent(x, n, key, out);
}

/* A list of strings from a string or a list; each checked by ok. */
static int
get_strlist(const struct ctx *x, const struct node *n, const char *key,
    int (*ok)(const char *), const char *what, struct strlist *l)
{
	const struct node *const *items = &n;
	const char *s;
	char **v;
	size_t i, count = 1;

	if (n->kind == N_SEQ) {
		items = (const struct node *const *)n->v;
		count = n->n;
		if (count == 0)
			return cerr(x, n->line, key, "the list is empty");
	} else if (n->kind != N_SCALAR)
		return cerr(x, n->line, key, "expected %s or a list, not %s",
		    what, cfg_node_kind(n));
	if ((v = calloc(count, sizeof(*v))) == NULL)
		return error_sys("config");
	l->v = v;
	for (i = 0; i < count; i++) {
		if ((s = scalar(x, items[i], key, what)) == NULL)
			return -1;
		if (ok != NULL && !ok(s))
			return cerr(x, items[i]->line, key, "'%.64s' is not "
			    "%s", s, what);
		if ((v[i] = strdup(s)) == NULL)
			return error_sys("config");
		l->n = i + 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Thresholds.                                                         */

/*
 * Parse one threshold scalar: "N%" or "N.N%" (0..100) sets
 * t->percent, "N" (a whole number >= 0) sets t->cap; the other half
 * is left alone.  "off" and "none" (any case) set both to -1 (no
 * limit).  Returns 0, or -1 with the reason in the error.
 */
int
threshold_parse(const char *s, struct threshold *t)
{
	const char *p;
	size_t len, digits = 0, dots = 0;
	char *end;
	double d;
	long v;

	if (s == NULL || *s == '\0')
		return error_set("empty threshold");
	if (strcasecmp(s, "off") == 0 || strcasecmp(s, "none") == 0) {
		t->percent = -1;
		t->cap = -1;
		return 0;
	}
	len = strlen(s);
	if (s[len - 1] == '%') {
		for (p = s; p < s + len - 1; p++) {
			if (*p == '.' && digits > 0)
				dots++;
			else if (*p >= '0' && *p <= '9')
				digits++;
			else
				break;
		}
		if (p != s + len - 1 || digits == 0 || dots > 1 ||
		    s[len - 2] == '.')
			return error_set("'%.64s' is not a threshold (a "
			    "percentage like 2%% or 2.5%%, or a count like "
			    "500)", s);
		errno = 0;
		d = strtod(s, &end);
		if (errno != 0 || end != s + len - 1)
			return error_set("'%.64s' is not a threshold", s);
		if (d > 100)
			return error_set("'%.64s' is above 100%%", s);
		t->percent = d;
		return 0;
	}
	for (p = s; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			return error_set("'%.64s' is not a threshold (a "
			    "percentage like 2%% or 2.5%%, or a count like "
			    "500)", s);
	errno = 0;
	v = strtol(s, NULL, 10);
	if (errno == ERANGE)
		return error_set("'%.64s' is too large", s);
	t->cap = v;
	return 0;
}

/* A threshold not given in the file (to be inherited). */
#define UNSET	(-2)

/* One safety cell: a scalar, or a list of a percentage and a count. */
static int
get_threshold(const struct ctx *x, const struct node *n, const char *key,
    struct threshold *out)
{
	struct threshold r = { -1, -1 }, one;
	const char *s;
	size_t i;

	if (n->kind == N_SCALAR) {
		if ((s = scalar(x, n, key, "a threshold")) == NULL)
			return -1;
		if (threshold_parse(s, &r) == -1)
			return cerr(x, n->line, key, "%s", error_last());
		*out = r;
		return 0;
	}
	if (n->kind != N_SEQ)
		return cerr(x, n->line, key, "expected a threshold (2%%, "
		    "500 or [2%%, 500]), not %s", cfg_node_kind(n));
	if (n->n == 0 || n->n > 2)
		return cerr(x, n->line, key, "a list holds a percentage, a "
		    "count, or both: [2%%, 500]");
	for (i = 0; i < n->n; i++) {
		if ((s = scalar(x, n->v[i], key, "a threshold")) == NULL)
			return -1;
		if (strcasecmp(s, "off") == 0 || strcasecmp(s, "none") == 0)
			return cerr(x, n->v[i]->line, key, "'%s' cannot be "
			    "part of a list", s);
		one.percent = -1;
		one.cap = -1;
		if (threshold_parse(s, &one) == -1)
			return cerr(x, n->v[i]->line, key, "%s",
			    error_last());
		if (one.percent >= 0) {
			if (r.percent >= 0)
				return cerr(x, n->v[i]->line, key,
				    "two percentages in one list");
			r.percent = one.percent;
		}
		if (one.cap >= 0) {
			if (r.cap >= 0)
				return cerr(x, n->v[i]->line, key,
				    "two counts in one list");
			r.cap = one.cap;
		}
	}
	*out = r;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Sections.                                                           */

enum { FMT_CSV = 1 << SOURCE_CSV, FMT_OR = 1 << SOURCE_ONEROSTER,
	FMT_IMS = 1 << SOURCE_IMS, FMT_ALL = 7 };

static const char *const format_names[] = { "csv", "oneroster", "ims",
	NULL };

static const char *const source_keys[] = { "format", "persons", "groups",
	"memberships", "dir", "file", "delimiter", "columns", "roles",
	"max_age", "useridtype", "encoding", "zip_max", NULL };
enum { S_FORMAT, S_PERSONS, S_GROUPS, S_MEMBERSHIPS, S_DIR, S_FILE,
	S_DELIMITER, S_COLUMNS, S_ROLES, S_MAX_AGE, S_USERIDTYPE, S_ENCODING,
	S_ZIP_MAX, NS };
/* Formats where each source key may appear, and where it must. */
static const int source_allowed[NS] = { FMT_ALL, FMT_CSV, FMT_CSV,
	FMT_CSV, FMT_OR, FMT_IMS, FMT_CSV, FMT_CSV, FMT_CSV | FMT_OR,
	FMT_ALL, FMT_IMS, FMT_CSV | FMT_OR, FMT_OR };
static const int source_required[NS] = { FMT_ALL, FMT_CSV, FMT_CSV,
	FMT_CSV, FMT_OR, FMT_IMS, 0, FMT_CSV, 0, 0, 0, 0, 0 };

static const char *const pcol_keys[] = { "id", "userid", "given",
	"family", "email", "status", "role", "nin", NULL };
static const char *const gcol_keys[] = { "id", "type", "short", "long",
	"parent", "term", NULL };
static const char *const mcol_keys[] = { "group", "person", "role",
	"status", NULL };
static const char *const columns_keys[] = { "persons", "groups",
	"memberships", NULL };

/* One column map (e.g. source.columns.persons) into cols. */
static int
walk_cols(const struct ctx *x, const struct ent *pe, const char *prefix,
    const char *const *names, unsigned required, char **cols)
{
	struct ent e[NPF];
	char key[MAXKEY];
	size_t i;

	if (map_get(x, pe->v, prefix, names, e) == -1)
		return -1;
	for (i = 0; names[i] != NULL; i++) {
		if (e[i].v == NULL) {
			if (required & (1u << i))
				return missing(x, pe->k->line, prefix,
				    names[i]);
			continue;
		}
		if (get_str(x, e[i].v, kjoin(key, sizeof(key), prefix,
		    names[i]), &cols[i]) == -1)
			return -1;
	}
	return 0;
}

static int
walk_columns(const struct ctx *x, const struct ent *ce)
{
	struct config *c = x->c;
	struct ent e[3];

	if (map_get(x, ce->v, "source.columns", columns_keys, e) == -1)
		return -1;
	if (e[0].v == NULL)
		return missing(x, ce->k->line, "source.columns", "persons");
	if (e[1].v == NULL)
		return missing(x, ce->k->line, "source.columns", "groups");
	if (e[2].v == NULL)
		return missing(x, ce->k->line, "source.columns",
		    "memberships");
	if (walk_cols(x, &e[0], "source.columns.persons", pcol_keys,
	    1u << PF_ID | 1u << PF_GIVEN | 1u << PF_FAMILY,
	    c->source.pcol) == -1)
		return -1;
	if (walk_cols(x, &e[1], "source.columns.groups", gcol_keys,
	    1u << GF_ID | 1u << GF_SHORT, c->source.gcol) == -1)
		return -1;
	return walk_cols(x, &e[2], "source.columns.memberships", mcol_keys,
	    1u << MF_GROUP | 1u << MF_PERSON, c->source.mcol);
}

/* source.roles: export role name -> IMS roletype. */
static int
walk_roles(const struct ctx *x, const struct node *m)
{
	struct config *c = x->c;
	const struct node *k, *v;
	const char *s;
	char key[MAXKEY];
	size_t i, j;
	int role;

	if (m->kind != N_MAP)
		return cerr(x, m->line, "source.roles", "expected a mapping "
		    "(export name: IMS role), not %s", cfg_node_kind(m));
	if (m->n == 0)
		return 0;
	if ((c->source.roles = calloc(m->n / 2, sizeof(struct rolemap))) ==
	    NULL)
		return error_sys("config");
	for (i = 0; i + 1 < m->n; i += 2) {
		k = m->v[i];
		v = m->v[i + 1];
		if ((s = scalar(x, k, "source.roles", "a role name")) == NULL)
			return -1;
		kjoin(key, sizeof(key), "source.roles", s);
		for (j = 0; j < c->source.nroles; j++)
			if (strcasecmp(c->source.roles[j].name, s) == 0)
				return cerr(x, k->line, key, "duplicate role "
				    "name (names are compared in any case)");
		if ((s = scalar(x, v, key, "an IMS role")) == NULL)
			return -1;
		if ((role = role_parse(s)) < 1 || role > 8)
			return cerr(x, v->line, key, "'%.64s' is not an IMS "
			    "role (01..08, or a name such as Learner or "
			    "Instructor)", s);
		if ((c->source.roles[c->source.nroles].name = strdup(k->s)) ==
		    NULL)
			return error_sys("config");
		c->source.roles[c->source.nroles++].role = role;
	}
	return 0;
}

/* source.encoding (one iconv knows) and source.zip_max (MiB). */
static int
walk_source_bytes(const struct ctx *x, const struct ent *e)
{
	struct config *c = x->c;
	long mib;

	if (e[S_ENCODING].v != NULL) {
		if (get_str(x, e[S_ENCODING].v, "source.encoding",
		    &c->source.encoding) == -1)
			return -1;
		if (!instream_encoding_known(c->source.encoding))
			return cerr(x, e[S_ENCODING].v->line,
			    "source.encoding", "'%.64s' is not an encoding "
			    "iconv knows (e.g. UTF-8, WINDOWS-1252, "
			    "ISO-8859-1; iconv -l lists them)",
			    c->source.encoding);
	}
	if (e[S_ZIP_MAX].v != NULL) {
		if (get_long(x, e[S_ZIP_MAX].v, "source.zip_max", 1,
		    1L << 30, &mib) == -1)
			return -1;
		c->source.zip_max = (uint64_t)mib << 20;
	}
	return 0;
}

static int
walk_source(const struct ctx *x, const struct ent *se)
{
	struct config *c = x->c;
	struct ent e[NS];
	char key[MAXKEY];
	const char *s;
	int fmt, bit;
	size_t i;

	if (map_get(x, se->v, "source", source_keys, e) == -1)
		return -1;
	if (e[S_FORMAT].v == NULL)
		return missing(x, se->k->line, "source", "format");
	if (get_enum(x, e[S_FORMAT].v, "source.format", format_names,
	    &fmt) == -1)
		return -1;
	c->source.format = (enum source_format)fmt;
	bit = 1 << fmt;
	for (i = 0; i < NS; i++) {
		kjoin(key, sizeof(key), "source", source_keys[i]);
		if (e[i].v == NULL && (source_required[i] & bit))
			return missing(x, se->k->line, "source",
			    source_keys[i]);
		if (e[i].v != NULL && !(source_allowed[i] & bit))
			return cerr(x, e[i].k->line, key, "not used with "
			    "format %s", format_names[fmt]);
	}
	if (e[S_PERSONS].v != NULL && get_path(x, e[S_PERSONS].v,
	    "source.persons", &c->source.persons) == -1)
		return -1;
	if (e[S_GROUPS].v != NULL && get_path(x, e[S_GROUPS].v,
	    "source.groups", &c->source.groups) == -1)
		return -1;
	if (e[S_MEMBERSHIPS].v != NULL && get_path(x, e[S_MEMBERSHIPS].v,
	    "source.memberships", &c->source.memberships) == -1)
		return -1;
	if (e[S_DIR].v != NULL && get_path(x, e[S_DIR].v, "source.dir",
	    &c->source.dir) == -1)
		return -1;
	if (e[S_FILE].v != NULL && get_path(x, e[S_FILE].v, "source.file",
	    &c->source.file) == -1)
		return -1;
	if (e[S_DELIMITER].v != NULL) {
		if ((s = scalar(x, e[S_DELIMITER].v, "source.delimiter",
		    "one character")) == NULL)
			return -1;
		if (strlen(s) != 1 || (unsigned char)s[0] >= 0x80 ||
		    s[0] == '"')
			return cerr(x, e[S_DELIMITER].v->line,
			    "source.delimiter", "'%.64s' is not one ASCII "
			    "character other than '\"'", s);
		c->source.delimiter = s[0];
	}
	if (e[S_COLUMNS].v != NULL && walk_columns(x, &e[S_COLUMNS]) == -1)
		return -1;
	if (e[S_ROLES].v != NULL && walk_roles(x, e[S_ROLES].v) == -1)
		return -1;
	if (e[S_MAX_AGE].v != NULL && get_duration(x, e[S_MAX_AGE].v,
	    "source.max_age", &c->source_max_age) == -1)
		return -1;
	if (e[S_USERIDTYPE].v != NULL && get_str(x, e[S_USERIDTYPE].v,
	    "source.useridtype", &c->source.useridtype) == -1)
		return -1;
	return walk_source_bytes(x, e);
}

static const char *const output_keys[] = { "source", "datasource",
	"target", "mode", "compress", "name", "threads",
	"profile", "window", "moodle", NULL };
enum { O_SOURCE, O_DATASOURCE, O_TARGET, O_MODE, O_COMPRESS, O_NAME,
	O_THREADS,
	O_PROFILE, O_WINDOW, O_MOODLE, NO };
static const char *const mode_names[] = { "full", "delta", NULL };
static const char *const compress_names[] = { "none", "gzip", NULL };
static const char *const profile_names[] = { "generic", "moodle",
	"itslearning", NULL };

/*
 * output.profile, and what a profile cannot go with.  Moodle imports
 * nothing from a gzip file (and says it completed).
 */
static const char *const moodle_keys[] = { "auth", NULL };

/* output.moodle: what only the moodle profile reads. */
static int
walk_moodle(const struct ctx *x, const struct ent *me)
{
	struct config *c = x->c;
	struct ent e[1];
	const char *p;

	if (map_get(x, me->v, "output.moodle", moodle_keys, e) == -1)
		return -1;
	if (e[0].v == NULL)
		return 0;
	if (get_str(x, e[0].v, "output.moodle.auth", &c->output.moodle_auth)
	    == -1)
		return -1;
	for (p = c->output.moodle_auth; *p != '\0'; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9') &&
		    *p != '_')
			break;
	if (*p != '\0' || *c->output.moodle_auth == '\0' ||
	    strcmp(c->output.moodle_auth, "nologin") == 0)
		return cerr(x, e[0].v->line, "output.moodle.auth", "'%.64s' "
		    "is not a Moodle authentication plugin name (lower-case "
		    "letters, digits, _; not nologin, which marks inactive "
		    "persons)", c->output.moodle_auth);
	return 0;
}

/*
 * output.profile, and what a profile cannot go with.  Moodle imports
 * nothing from a gzip file (and says it completed), reads one fixed
 * path, and its files are cumulative deltas, so output.mode does not
 * apply.
 */
static int
walk_profile(const struct ctx *x, const struct ent *e)
{
	struct config *c = x->c;
	int v;

	if (e[O_PROFILE].v != NULL) {
		if (get_enum(x, e[O_PROFILE].v, "output.profile",
		    profile_names, &v) == -1)
			return -1;
		c->output.profile = (enum output_profile)v;
	}
	if (c->output.profile != PROFILE_MOODLE) {
		if (e[O_WINDOW].v != NULL)
			return cerr(x, e[O_WINDOW].k->line, "output.window",
			    "only with profile moodle");
		if (e[O_MOODLE].v != NULL)
			return cerr(x, e[O_MOODLE].k->line, "output.moodle",
			    "only with profile moodle");
		return 0;
	}
	c->output.cumulative = 1;
	if (c->output.compress == COMPRESS_GZIP)
		return cerr(x, e[O_PROFILE].v->line, "output.profile",
		    "moodle cannot go with output.compress gzip: Moodle's "
		    "importer reads the file as plain text and imports "
		    "nothing from a gzip file");
	if (e[O_MODE].v != NULL)
		return cerr(x, e[O_MODE].k->line, "output.mode", "not with "
		    "profile moodle: its files always carry the changes of "
		    "output.window nights");
	if (c->output.name != NULL && strchr(c->output.name, '%') != NULL)
		return cerr(x, e[O_NAME].v->line, "output.name", "with "
		    "profile moodle the name is fixed (Moodle reads one "
		    "path): no %% patterns");
	if (e[O_WINDOW].v != NULL && get_int(x, e[O_WINDOW].v,
	    "output.window", 0, 366, &c->output.window) == -1)
		return -1;
	if (e[O_MOODLE].v != NULL && walk_moodle(x, &e[O_MOODLE]) == -1)
		return -1;
	return 0;
}

/*
 * What profile itslearning cannot go with: delta files (itslearning
 * compares each file with its own mirror and deletes what a file leaves
 * out) and a <source> over PIFU-IMS's 32 characters.  A national
 * identity number is mapped only for itslearning.  Needs source and
 * output read.
 */
static int
check_itslearning(const struct ctx *x, const struct ent *oe,
    const struct ent *e)
{
	const struct config *c = x->c;
	unsigned long line = e[O_PROFILE].v != NULL ? e[O_PROFILE].v->line :
	    oe->k->line;

	if (c->output.profile != PROFILE_ITSLEARNING) {
		if (c->source.pcol[PF_NIN] != NULL)
			return cerr(x, line, "source.columns.persons.nin",
			    "a national identity number is written only "
			    "with output.profile itslearning");
		return 0;
	}
	if (c->output.mode == MODE_DELTA)
		return cerr(x, line, "output.profile", "itslearning cannot "
		    "go with output.mode delta: itslearning compares each "
		    "file with its own mirror and deletes every record the "
		    "file leaves out, so it takes full files only");
	if (utf8_chars(c->output.source) > 32)
		return cerr(x, e[O_SOURCE].v->line, "output.source",
		    "longer than 32 characters, the PIFU-IMS limit of "
		    "<source> (itslearning)");
	return 0;
}

static int
walk_output(const struct ctx *x, const struct ent *oe)
{
	struct config *c = x->c;
	struct ent e[NO];
	int v;

	if (map_get(x, oe->v, "output", output_keys, e) == -1)
		return -1;
	if (e[O_SOURCE].v == NULL)
		return missing(x, oe->k->line, "output", "source");
	if (get_str(x, e[O_SOURCE].v, "output.source",
	    &c->output.source) == -1)
		return -1;
	if (e[O_DATASOURCE].v != NULL && get_str(x, e[O_DATASOURCE].v,
	    "output.datasource", &c->output.datasource) == -1)
		return -1;
	if (e[O_TARGET].v != NULL && get_str(x, e[O_TARGET].v,
	    "output.target", &c->output.target) == -1)
		return -1;
	if (e[O_MODE].v != NULL) {
		if (get_enum(x, e[O_MODE].v, "output.mode", mode_names,
		    &v) == -1)
			return -1;
		c->output.mode = (enum output_mode)v;
	}
	if (e[O_COMPRESS].v != NULL) {
		if (get_enum(x, e[O_COMPRESS].v, "output.compress",
		    compress_names, &v) == -1)
			return -1;
		c->output.compress = (enum compress)v;
	}
	if (e[O_NAME].v != NULL) {
		if (get_str(x, e[O_NAME].v, "output.name",
		    &c->output.name) == -1)
			return -1;
		if (strchr(c->output.name, '/') != NULL ||
		    strcmp(c->output.name, ".") == 0 ||
		    strcmp(c->output.name, "..") == 0)
			return cerr(x, e[O_NAME].v->line, "output.name",
			    "must be a file name, not a path");
	}
	/* Absent: 0, the online CPUs (at most 8), chosen by the writer. */
	if (e[O_THREADS].v != NULL && get_int(x, e[O_THREADS].v,
	    "output.threads", 1, 64, &c->output.threads) == -1)
		return -1;
	if (walk_profile(x, e) == -1)
		return -1;
	if (check_itslearning(x, oe, e) == -1)
		return -1;
	return 0;
}

static const char *const safety_keys[] = { "persons", "groups",
	"memberships", "min_base", "first_run", "max_rejects",
	"approval_ttl", "approval_reason", "orgs", "pause", "max_shrink",
	NULL };
enum { SF_PERSONS, SF_GROUPS, SF_MEMBERSHIPS, SF_MIN_BASE, SF_FIRST_RUN,
	SF_MAX_REJECTS, SF_APPROVAL_TTL, SF_APPROVAL_REASON, SF_ORGS,
	SF_PAUSE, SF_MAX_SHRINK, NSF };
static const char *const op_keys[] = { "inserts", "updates", "deletes",
	NULL };
/* Persons and memberships have a status: their flips are cells too. */
static const char *const status_op_keys[] = { "inserts", "updates",
	"deletes", "deactivations", "reactivations", NULL };
static const char *const first_run_names[] = { "block", "allow", NULL };

#define MAXWINDOWS	8	/* window keys in one type's map */

/* 1 if k is KIND_Nd for a kind in keys (days 1..366): *kind, *days. */
static int
window_key(const char *k, const char *const *keys, int *kind, int *days)
{
	size_t i, len;
	const char *p;
	long d;
	char *end;

	for (i = 0; keys[i] != NULL; i++) {
		len = strlen(keys[i]);
		if (strncmp(k, keys[i], len) != 0 || k[len] != '_')
			continue;
		p = k + len + 1;
		if (*p < '1' || *p > '9')
			return 0;
		d = strtol(p, &end, 10);
		if (strcmp(end, "d") != 0 || d < 1 || d > 366)
			return 0;
		*kind = (int)i;
		*days = (int)d;
		return 1;
	}
	return 0;
}

/*
 * map_get for the map of one type's cells, which may also hold limits
 * over windows of days (deletes_7d: 5%); those go to c->nets.windows.
 */
static int
map_get_windows(const struct ctx *x, const struct node *m,
    const char *prefix, int type, const char *const *keys, struct ent *o)
{
	struct safety_nets *nets = &x->c->nets;
	const char *names[NKINDS + MAXWINDOWS + 1];
	struct ent e[NKINDS + MAXWINDOWS + 1];
	int kind[MAXWINDOWS], days[MAXWINDOWS];
	char key[MAXKEY];
	size_t nbase, n, i, w = 0;

	for (nbase = 0; keys[nbase] != NULL; nbase++)
		names[nbase] = keys[nbase];
	n = nbase;
	for (i = 0; m->kind == N_MAP && i + 1 < m->n && w < MAXWINDOWS;
	    i += 2)
		if (m->v[i]->kind == N_SCALAR && window_key(m->v[i]->s, keys,
		    &kind[w], &days[w])) {
			names[n++] = m->v[i]->s;
			w++;
		}
	names[n] = NULL;
	if (map_get(x, m, prefix, names, e) == -1)
		return -1;
	memcpy(o, e, nbase * sizeof(*o));
	for (i = 0; i < w; i++) {
		struct window_limit *wl, *nv;

		nv = reallocarray(nets->windows, nets->nwindows + 1,
		    sizeof(*nv));
		if (nv == NULL)
			return error_sys("config");
		nets->windows = nv;
		wl = &nv[nets->nwindows];
		memset(wl, 0, sizeof(*wl));
		wl->type = type;
		wl->kind = kind[i];
		wl->days = days[i];
		wl->th.percent = wl->th.cap = -1;
		if (get_threshold(x, e[nbase + i].v, kjoin(key, sizeof(key),
		    prefix, names[nbase + i]), &wl->th) == -1)
			return -1;
		nets->nwindows++;
	}
	return 0;
}

/* A span of time, "7d" or "36h" (1h to 3650d), into seconds. */
static int
get_duration(const struct ctx *x, const struct node *n, const char *key,
    long *out)
{
	const char *s;
	size_t len;
	long v;
	char *end;

	if ((s = scalar(x, n, key, "a duration")) == NULL)
		return -1;
	len = strlen(s);
	errno = 0;
	v = strtol(s, &end, 10);
	if (len < 2 || end != s + len - 1 || (s[len - 1] != 'd' &&
	    s[len - 1] != 'h') || s[0] < '0' || s[0] > '9' || errno != 0)
		return cerr(x, n->line, key, "'%.64s' is not a duration (a "
		    "number of days or hours: 7d, 36h)", s);
	v *= s[len - 1] == 'd' ? 86400 : 3600;
	if (v < 3600 || v > 3650L * 86400)
		return cerr(x, n->line, key, "%.64s is out of range (1h to "
		    "3650d)", s);
	*out = v;
	return 0;
}

static const char *const approval_reason_names[] = { "optional",
	"required", NULL };

static const char *const cell_type_keys[] = { "persons", "groups",
	"memberships", NULL };

/*
 * The cells of one org_limits from the keys persons, groups and
 * memberships of the map whose entries are e (found by map_get with
 * cell_type_keys first), and min_base at e[NTYPES].  0 or -1.
 */
static int
walk_cells(const struct ctx *x, const struct ent *e, const char *prefix,
    struct org_limits *l)
{
	struct ent o[NKINDS];
	char tp[MAXKEY], key[MAXKEY];
	const char *const *keys;
	int type, k;

	for (type = 0; type < NTYPES; type++) {
		if (e[type].v == NULL)
			continue;
		kjoin(tp, sizeof(tp), prefix, cell_type_keys[type]);
		keys = type == TYPE_GROUP ? op_keys : status_op_keys;
		if (map_get(x, e[type].v, tp, keys, o) == -1)
			return -1;
		for (k = 0; keys[k] != NULL; k++)
			if (o[k].v != NULL && get_threshold(x, o[k].v,
			    kjoin(key, sizeof(key), tp, keys[k]),
			    &l->t[type][k]) == -1)
				return -1;
	}
	if (e[NTYPES].v != NULL && get_long(x, e[NTYPES].v,
	    kjoin(key, sizeof(key), prefix, "min_base"), 0, 1000000000L,
	    &l->min_base) == -1)
		return -1;
	return 0;
}

static void
org_limits_unset(struct org_limits *l)
{
	int t, k;

	for (t = 0; t < NTYPES; t++)
		for (k = 0; k < NKINDS; k++)
			l->t[t][k].percent = l->t[t][k].cap = UNSET;
	l->min_base = UNSET;
}

static const char *const org_keys[] = { "persons", "groups",
	"memberships", "min_base", "type", "override", NULL };
static const char *const org_over_keys[] = { "persons", "groups",
	"memberships", "min_base", NULL };
enum { OG_TYPE = NTYPES + 1, OG_OVERRIDE, NOG };

/* safety.orgs: limits for every org, and overrides per org id. */
static int
walk_orgs(const struct ctx *x, const struct node *n)
{
	struct safety_nets *nets = &x->c->nets;
	struct ent e[NOG], oe[NTYPES + 1];
	char prefix[MAXKEY];
	const struct node *m;
	size_t i;

	if (map_get(x, n, "safety.orgs", org_keys, e) == -1)
		return -1;
	nets->orgs_enabled = 1;
	if (e[OG_TYPE].v != NULL && get_str(x, e[OG_TYPE].v,
	    "safety.orgs.type", &nets->org_type) == -1)
		return -1;
	if (walk_cells(x, e, "safety.orgs", &nets->org_all) == -1)
		return -1;
	if ((m = e[OG_OVERRIDE].v) == NULL)
		return 0;
	if (m->kind != N_MAP)
		return cerr(x, m->line, "safety.orgs.override", "expected a "
		    "mapping of org ids, not %s", cfg_node_kind(m));
	if ((nets->org_over = calloc(m->n / 2 + 1, sizeof(*nets->org_over)))
	    == NULL)
		return error_sys("config");
	for (i = 0; i + 1 < m->n; i += 2) {
		struct org_limits *l = &nets->org_over[nets->norg_over];
		const char *id;

		if ((id = scalar(x, m->v[i], "safety.orgs.override",
		    "an org id")) == NULL)
			return -1;
		if ((l->org = strdup(id)) == NULL)
			return error_sys("config");
		nets->norg_over++;
		org_limits_unset(l);
		kjoin(prefix, sizeof(prefix), "safety.orgs.override", id);
		if (map_get(x, m->v[i + 1], prefix, org_over_keys, oe) == -1 ||
		    walk_cells(x, oe, prefix, l) == -1)
			return -1;
	}
	return 0;
}

static const char *const pause_keys[] = { "from", "to", "hold", NULL };

/* One window of safety.pause: {from: DATE, to: DATE, hold: [...]}. */
static int
walk_pause_window(const struct ctx *x, const struct node *n,
    struct pause_window *w)
{
	struct ent e[3];
	struct strlist l = { 0 };
	const char *s;
	size_t i;
	int rc = 0;

	if (map_get(x, n, "safety.pause", pause_keys, e) == -1)
		return -1;
	if (e[0].v == NULL || e[1].v == NULL)
		return cerr(x, n->line, "safety.pause", "a window needs from "
		    "and to (YYYY-MM-DD)");
	if ((s = scalar(x, e[0].v, "safety.pause.from", "a date")) == NULL ||
	    pause_date(s, 0, &w->from) == -1)
		return s == NULL ? -1 : cerr(x, e[0].v->line,
		    "safety.pause.from", "%s", error_last());
	if ((s = scalar(x, e[1].v, "safety.pause.to", "a date")) == NULL ||
	    pause_date(s, 1, &w->to) == -1)
		return s == NULL ? -1 : cerr(x, e[1].v->line,
		    "safety.pause.to", "%s", error_last());
	if (w->to <= w->from)
		return cerr(x, e[1].v->line, "safety.pause.to", "ends before "
		    "from");
	w->hold = HOLD_DELETES | HOLD_DEACTIVATIONS;
	if (e[2].v == NULL)
		return 0;
	if (get_strlist(x, e[2].v, "safety.pause.hold", NULL, "a kind", &l)
	    == -1)
		rc = -1;
	for (i = 0, w->hold = 0; rc == 0 && i < l.n; i++) {
		unsigned m;

		if (pause_hold_parse(l.v[i], &m) == -1)
			rc = cerr(x, e[2].v->line, "safety.pause.hold", "%s",
			    error_last());
		w->hold |= m;
	}
	for (i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
	return rc;
}

/* safety.pause: a list of windows. */
static int
walk_pause(const struct ctx *x, const struct node *n)
{
	struct safety_nets *nets = &x->c->nets;
	size_t i;

	if (n->kind != N_SEQ)
		return cerr(x, n->line, "safety.pause", "expected a list of "
		    "{from, to, hold}, not %s", cfg_node_kind(n));
	if ((nets->pause = calloc(n->n + 1, sizeof(*nets->pause))) == NULL)
		return error_sys("config");
	for (i = 0; i < n->n; i++) {
		if (walk_pause_window(x, n->v[i], &nets->pause[i]) == -1)
			return -1;
		nets->npause++;
	}
	return 0;
}

/* The keys of the safety nets in the safety section. */
static int
walk_nets(const struct ctx *x, const struct ent *e)
{
	struct config *c = x->c;

	if (e[SF_PAUSE].v != NULL && walk_pause(x, e[SF_PAUSE].v) == -1)
		return -1;
	if (e[SF_ORGS].v != NULL && walk_orgs(x, e[SF_ORGS].v) == -1)
		return -1;
	if (e[SF_APPROVAL_TTL].v != NULL && get_duration(x,
	    e[SF_APPROVAL_TTL].v, "safety.approval_ttl",
	    &c->nets.approval_ttl) == -1)
		return -1;
	if (e[SF_APPROVAL_REASON].v != NULL && get_enum(x,
	    e[SF_APPROVAL_REASON].v, "safety.approval_reason",
	    approval_reason_names, &c->nets.approval_reason) == -1)
		return -1;
	return 0;
}

static int
walk_safety(const struct ctx *x, const struct ent *fe)
{
	struct config *c = x->c;
	struct ent e[NSF], o[NKINDS];
	char prefix[MAXKEY], key[MAXKEY];
	const char *const *keys;
	int type, op, v;

	if (map_get(x, fe->v, "safety", safety_keys, e) == -1)
		return -1;
	for (type = 0; type < NTYPES; type++) {
		if (e[type].v == NULL)
			continue;
		kjoin(prefix, sizeof(prefix), "safety", safety_keys[type]);
		keys = type == TYPE_GROUP ? op_keys : status_op_keys;
		if (map_get_windows(x, e[type].v, prefix, type, keys, o) == -1)
			return -1;
		for (op = 0; keys[op] != NULL; op++) {
			if (o[op].v == NULL)
				continue;
			kjoin(key, sizeof(key), prefix, keys[op]);
			if (get_threshold(x, o[op].v, key, op < NOPS ?
			    &c->safety.t[type][op] :
			    &c->nets.flip[type][op - NOPS]) == -1)
				return -1;
		}
	}
	if (e[SF_MIN_BASE].v != NULL && get_long(x, e[SF_MIN_BASE].v,
	    "safety.min_base", 0, 1000000000L, &c->safety.min_base) == -1)
		return -1;
	if (e[SF_FIRST_RUN].v != NULL) {
		if (get_enum(x, e[SF_FIRST_RUN].v, "safety.first_run",
		    first_run_names, &v) == -1)
			return -1;
		c->safety.first_run = (enum first_run)v;
	}
	if (e[SF_MAX_REJECTS].v != NULL && get_percent(x,
	    e[SF_MAX_REJECTS].v, "safety.max_rejects",
	    &c->safety.max_rejects) == -1)
		return -1;
	if (e[SF_MAX_SHRINK].v != NULL && get_percent_off(x,
	    e[SF_MAX_SHRINK].v, "safety.max_shrink",
	    &c->safety.max_shrink) == -1)
		return -1;
	return walk_nets(x, e);
}

static const char *const sftp_keys[] = { "host", "port", "user",
	"identity", "passphrase_file", "password_file", "known_hosts",
	"remote_dir", "retries", "timeout", NULL };
enum { F_HOST, F_PORT, F_USER, F_IDENTITY, F_PASSPHRASE_FILE,
	F_PASSWORD_FILE, F_KNOWN_HOSTS, F_REMOTE_DIR, F_RETRIES, F_TIMEOUT,
	NF };

static int
walk_sftp(const struct ctx *x, const struct ent *fe)
{
	struct config *c = x->c;
	struct ent e[NF];
	const char *p = "delivery.sftp";

	if (map_get(x, fe->v, p, sftp_keys, e) == -1)
		return -1;
	c->delivery.sftp = 1;
	if (e[F_HOST].v == NULL)
		return missing(x, fe->k->line, p, "host");
	if (e[F_USER].v == NULL)
		return missing(x, fe->k->line, p, "user");
	if (e[F_KNOWN_HOSTS].v == NULL)
		return missing(x, fe->k->line, p, "known_hosts");
	if (e[F_IDENTITY].v == NULL && e[F_PASSWORD_FILE].v == NULL)
		return cerr(x, fe->k->line, p, "needs identity (a private "
		    "key) or password_file");
	if (e[F_PASSPHRASE_FILE].v != NULL && e[F_IDENTITY].v == NULL)
		return cerr(x, e[F_PASSPHRASE_FILE].k->line,
		    "delivery.sftp.passphrase_file", "needs identity");
	if (get_str(x, e[F_HOST].v, "delivery.sftp.host",
	    &c->delivery.s.host) == -1)
		return -1;
	if (strpbrk(c->delivery.s.host, " \t/@") != NULL)
		return cerr(x, e[F_HOST].v->line, "delivery.sftp.host",
		    "'%.64s' is not a host name", c->delivery.s.host);
	if (e[F_PORT].v != NULL && get_int(x, e[F_PORT].v,
	    "delivery.sftp.port", 1, 65535, &c->delivery.s.port) == -1)
		return -1;
	if (get_str(x, e[F_USER].v, "delivery.sftp.user",
	    &c->delivery.s.user) == -1)
		return -1;
	if (e[F_IDENTITY].v != NULL && get_path(x, e[F_IDENTITY].v,
	    "delivery.sftp.identity", &c->delivery.s.identity) == -1)
		return -1;
	if (e[F_PASSPHRASE_FILE].v != NULL && get_path(x,
	    e[F_PASSPHRASE_FILE].v, "delivery.sftp.passphrase_file",
	    &c->delivery.s.passphrase_file) == -1)
		return -1;
	if (e[F_PASSWORD_FILE].v != NULL && get_path(x, e[F_PASSWORD_FILE].v,
	    "delivery.sftp.password_file", &c->delivery.s.password_file) ==
	    -1)
		return -1;
	if (get_path(x, e[F_KNOWN_HOSTS].v, "delivery.sftp.known_hosts",
	    &c->delivery.s.known_hosts) == -1)
		return -1;
	if (e[F_REMOTE_DIR].v != NULL && get_str(x, e[F_REMOTE_DIR].v,
	    "delivery.sftp.remote_dir", &c->delivery.s.remote_dir) == -1)
		return -1;
	if (e[F_RETRIES].v != NULL && get_int(x, e[F_RETRIES].v,
	    "delivery.sftp.retries", 0, 20, &c->delivery.s.retries) == -1)
		return -1;
	if (e[F_TIMEOUT].v != NULL && get_int(x, e[F_TIMEOUT].v,
	    "delivery.sftp.timeout", 1, 3600, &c->delivery.s.timeout) == -1)
		return -1;
	return 0;
}

static const char *const delivery_keys[] = { "dir", "sftp", "mode",
	NULL };

/* delivery.mode: octal, owner read-write, no execute, not writable by
 * others ("0640"). */
static int
get_file_mode(const struct ctx *x, const struct node *n, int *out)
{
	const char *s;
	char *end;
	long v;

	if ((s = scalar(x, n, "delivery.mode", "a file mode")) == NULL)
		return -1;
	v = strtol(s, &end, 8);
	if (*s == '\0' || *end != '\0' || strlen(s) > 4 || v < 0 ||
	    (v & ~0666L) != 0 || (v & 0600) != 0600 || (v & 0002) != 0)
		return cerr(x, n->line, "delivery.mode", "'%.64s' is not a "
		    "file mode for the delivered file (octal, read-write for "
		    "the owner, no execute bits, not writable by others: "
		    "0640)", s);
	*out = (int)v;
	return 0;
}

static int
walk_delivery(const struct ctx *x, const struct ent *de)
{
	struct config *c = x->c;
	struct ent e[3];
	unsigned long line;

	if (map_get(x, de->v, "delivery", delivery_keys, e) == -1)
		return -1;
	if (e[2].v != NULL && get_file_mode(x, e[2].v, &c->delivery_mode)
	    == -1)
		return -1;
	if (e[0].v == NULL && e[1].v == NULL)
		return cerr(x, de->k->line, "delivery", "give either dir (a "
		    "directory) or sftp (a server)");
	if (e[0].v != NULL && e[1].v != NULL) {
		line = e[0].k->line > e[1].k->line ? e[0].k->line :
		    e[1].k->line;
		return cerr(x, line, "delivery", "give either dir or sftp, "
		    "not both");
	}
	if (e[0].v != NULL)
		return get_path(x, e[0].v, "delivery.dir", &c->delivery.dir);
	return walk_sftp(x, &e[1]);
}

/* A bare mail address: local@domain, nothing a header could abuse. */
static int
addr_ok(const char *s)
{
	const char *at = strrchr(s, '@'), *p;

	if (at == NULL || at == s || at[1] == '\0')
		return 0;
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p == 0x7f ||
		    strchr("<>,;:\"()[]\\", *p) != NULL)
			return 0;
	return 1;
}

static int
status_ok(const char *s)
{
	size_t i;

	for (i = 0; status_names[i] != NULL; i++)
		if (strcasecmp(s, status_names[i]) == 0)
			return 1;
	return 0;
}

/* smtp://host[:port] or smtps://...; no credentials, no path. */
static int
check_smtp_url(const struct ctx *x, const struct node *n, const char *url,
    int *tls)
{
	const char *h, *p;

	if (strncasecmp(url, "smtp://", 7) == 0) {
		*tls = 0;
		h = url + 7;
	} else if (strncasecmp(url, "smtps://", 8) == 0) {
		*tls = 1;
		h = url + 8;
	} else
		return cerr(x, n->line, "mail.smtp", "'%.64s' is not an "
		    "smtp:// or smtps:// URL", url);
	if (strchr(h, '@') != NULL)
		return cerr(x, n->line, "mail.smtp", "credentials do not "
		    "belong in the URL: use user and password_file");
	for (p = h; *p != '\0' && *p != '/'; p++)
		if (*p == ' ' || *p == '\t')
			break;
	if (p == h || (*p != '\0' && strcmp(p, "/") != 0))
		return cerr(x, n->line, "mail.smtp", "'%.64s' is not "
		    "smtp://HOST[:PORT]", url);
	return 0;
}

static const char *const mail_keys[] = { "smtp", "sendmail", "starttls",
	"user", "password_file", "cafile", "from", "to", "to_status", "on",
	"samples", "timeout", NULL };
enum { M_SMTP, M_SENDMAIL, M_STARTTLS, M_USER, M_PASSWORD_FILE, M_CAFILE,
	M_FROM, M_TO, M_TO_STATUS, M_ON, M_SAMPLES, M_TIMEOUT, NM };
static const char *const starttls_names[] = { "required", "try", "off",
	NULL };

static int
walk_mail_status(const struct ctx *x, const struct ent *te)
{
	struct config *c = x->c;
	struct ent e[NSTATUS];
	char key[MAXKEY];
	int i;

	if (map_get(x, te->v, "mail.to_status", status_names, e) == -1)
		return -1;
	for (i = 0; i < NSTATUS; i++) {
		if (e[i].v == NULL)
			continue;
		kjoin(key, sizeof(key), "mail.to_status", status_names[i]);
		if (!(c->mail.on & (1u << i)))
			return cerr(x, e[i].k->line, key, "'%s' is not in "
			    "mail.on, so it would never be mailed",
			    status_names[i]);
		if (get_strlist(x, e[i].v, key, addr_ok, "a mail address",
		    &c->mail.to_status[i]) == -1)
			return -1;
	}
	return 0;
}

static int
walk_mail_on(const struct ctx *x, const struct node *n)
{
	struct config *c = x->c;
	struct strlist l = { NULL, 0 };
	size_t i, j;
	int rc;

	rc = get_strlist(x, n, "mail.on", status_ok,
	    "completed, blocked or failed", &l);
	c->mail.on = 0;
	for (i = 0; i < l.n; i++)
		for (j = 0; status_names[j] != NULL; j++)
			if (strcasecmp(l.v[i], status_names[j]) == 0)
				c->mail.on |= 1u << j;
	for (i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
	return rc;
}

static int
walk_mail(const struct ctx *x, const struct ent *me)
{
	struct config *c = x->c;
	struct ent e[NM];
	const char *p = "mail";
	int v, tls = 0, i;

	if (map_get(x, me->v, p, mail_keys, e) == -1)
		return -1;
	c->mail.enabled = 1;
	if (e[M_SMTP].v == NULL && e[M_SENDMAIL].v == NULL)
		return cerr(x, me->k->line, p, "give either smtp (a URL) or "
		    "sendmail (a program)");
	if (e[M_SMTP].v != NULL && e[M_SENDMAIL].v != NULL)
		return cerr(x, e[M_SENDMAIL].k->line > e[M_SMTP].k->line ?
		    e[M_SENDMAIL].k->line : e[M_SMTP].k->line, p,
		    "give either smtp or sendmail, not both");
	if (e[M_FROM].v == NULL)
		return missing(x, me->k->line, p, "from");
	if (e[M_TO].v == NULL)
		return missing(x, me->k->line, p, "to");
	if (e[M_SMTP].v != NULL) {
		if (get_str(x, e[M_SMTP].v, "mail.smtp", &c->mail.smtp) == -1)
			return -1;
		if (check_smtp_url(x, e[M_SMTP].v, c->mail.smtp, &tls) == -1)
			return -1;
	} else {
		if (get_path(x, e[M_SENDMAIL].v, "mail.sendmail",
		    &c->mail.sendmail) == -1)
			return -1;
		for (i = M_STARTTLS; i <= M_CAFILE; i++)
			if (e[i].v != NULL)
				return cerr(x, e[i].k->line, NULL, "key "
				    "'mail.%s': only used with smtp",
				    mail_keys[i]);
	}
	if (e[M_STARTTLS].v != NULL) {
		if (tls)
			return cerr(x, e[M_STARTTLS].k->line, "mail.starttls",
			    "only for smtp://; smtps:// is always TLS");
		if (get_enum(x, e[M_STARTTLS].v, "mail.starttls",
		    starttls_names, &v) == -1)
			return -1;
		c->mail.starttls = (enum starttls)v;
	}
	if (e[M_USER].v != NULL && get_str(x, e[M_USER].v, "mail.user",
	    &c->mail.user) == -1)
		return -1;
	if (e[M_PASSWORD_FILE].v != NULL) {
		if (e[M_USER].v == NULL)
			return cerr(x, e[M_PASSWORD_FILE].k->line,
			    "mail.password_file", "needs mail.user");
		if (get_path(x, e[M_PASSWORD_FILE].v, "mail.password_file",
		    &c->mail.password_file) == -1)
			return -1;
	}
	if (e[M_CAFILE].v != NULL && get_path(x, e[M_CAFILE].v,
	    "mail.cafile", &c->mail.cafile) == -1)
		return -1;
	if (get_str(x, e[M_FROM].v, "mail.from", &c->mail.from) == -1)
		return -1;
	if (!addr_ok(c->mail.from))
		return cerr(x, e[M_FROM].v->line, "mail.from", "'%.64s' is "
		    "not a mail address", c->mail.from);
	if (get_strlist(x, e[M_TO].v, "mail.to", addr_ok, "a mail address",
	    &c->mail.to) == -1)
		return -1;
	if (e[M_ON].v != NULL && walk_mail_on(x, e[M_ON].v) == -1)
		return -1;
	if (e[M_TO_STATUS].v != NULL && walk_mail_status(x,
	    &e[M_TO_STATUS]) == -1)
		return -1;
	if (e[M_SAMPLES].v != NULL && get_int(x, e[M_SAMPLES].v,
	    "mail.samples", 0, REPORT_SAMPLES, &c->mail.samples) == -1)
		return -1;
	if (e[M_TIMEOUT].v != NULL && get_int(x, e[M_TIMEOUT].v,
	    "mail.timeout", 1, 3600, &c->mail.timeout) == -1)
		return -1;
	return 0;
}

static const char *const state_keys[] = { "keep", NULL };
enum { ST_KEEP, NSTK };

/* state: retention of runs.log, runs/ and rejects/. */
static int
walk_state(const struct ctx *x, const struct ent *se)
{
	struct ent e[NSTK];

	if (map_get(x, se->v, "state", state_keys, e) == -1)
		return -1;
	if (e[ST_KEEP].v != NULL && get_int(x, e[ST_KEEP].v, "state.keep",
	    1, 100000, &x->c->state.keep) == -1)
		return -1;
	return 0;
}

static const char *const monitor_keys[] = { "max_age", "metrics",
	"heartbeat", NULL };
enum { MO_MAX_AGE, MO_METRICS, MO_HEARTBEAT, NMO };

/* monitor: what status judges by, the metrics file, the heartbeat. */
static int
walk_monitor(const struct ctx *x, const struct ent *me)
{
	struct config *c = x->c;
	struct ent e[NMO];

	if (map_get(x, me->v, "monitor", monitor_keys, e) == -1)
		return -1;
	if (e[MO_MAX_AGE].v != NULL && get_duration(x, e[MO_MAX_AGE].v,
	    "monitor.max_age", &c->monitor.max_age) == -1)
		return -1;
	if (e[MO_METRICS].v != NULL && get_path(x, e[MO_METRICS].v,
	    "monitor.metrics", &c->monitor.metrics) == -1)
		return -1;
	if (e[MO_HEARTBEAT].v != NULL) {
		if (get_str(x, e[MO_HEARTBEAT].v, "monitor.heartbeat",
		    &c->monitor.heartbeat) == -1)
			return -1;
		if (strncmp(c->monitor.heartbeat, "https://", 8) != 0 &&
		    strncmp(c->monitor.heartbeat, "http://", 7) != 0)
			return cerr(x, e[MO_HEARTBEAT].v->line,
			    "monitor.heartbeat", "'%.64s' is not an http:// "
			    "or https:// URL", c->monitor.heartbeat);
	}
	return 0;
}

static const char *const top_keys[] = { "site", "state_dir", "history",
	"source", "output", "safety", "delivery", "mail", "state", "monitor",
	NULL };
enum { T_SITE, T_STATE_DIR, T_HISTORY, T_SOURCE, T_OUTPUT, T_SAFETY,
	T_DELIVERY, T_MAIL, T_STATE, T_MONITOR, NT };

/* The top level, section by section in file order of the schema. */
static int
walk_top(const struct ctx *x, const struct node *root)
{
	struct config *c = x->c;
	struct ent e[NT];

	if (map_get(x, root, "", top_keys, e) == -1)
		return -1;
	if (e[T_SITE].v == NULL)
		return missing(x, root->line, "", "site");
	if (get_str(x, e[T_SITE].v, "site", &c->site) == -1)
		return -1;
	if (e[T_STATE_DIR].v != NULL && get_path(x, e[T_STATE_DIR].v,
	    "state_dir", &c->state_dir) == -1)
		return -1;
	if (e[T_HISTORY].v != NULL && get_int(x, e[T_HISTORY].v, "history",
	    0, 1000, &c->history) == -1)
		return -1;
	if (e[T_SOURCE].v == NULL)
		return missing(x, root->line, "", "source");
	if (walk_source(x, &e[T_SOURCE]) == -1)
		return -1;
	if (e[T_OUTPUT].v == NULL)
		return missing(x, root->line, "", "output");
	if (walk_output(x, &e[T_OUTPUT]) == -1)
		return -1;
	if (e[T_SAFETY].v != NULL && walk_safety(x, &e[T_SAFETY]) == -1)
		return -1;
	if (e[T_DELIVERY].v == NULL)
		return missing(x, root->line, "", "delivery");
	if (walk_delivery(x, &e[T_DELIVERY]) == -1)
		return -1;
	if (e[T_MAIL].v != NULL && walk_mail(x, &e[T_MAIL]) == -1)
		return -1;
	if (e[T_STATE].v != NULL && walk_state(x, &e[T_STATE]) == -1)
		return -1;
	if (e[T_MONITOR].v != NULL && walk_monitor(x, &e[T_MONITOR]) == -1)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Defaults, load, free.                                               */

static void
set_threshold(struct threshold *t, double percent)
{
	t->percent = percent;
	t->cap = -1;
}

static void	org_limits_unset(struct org_limits *);

static void
nets_defaults(struct safety_nets *n)
{
	int t, f;

	for (t = 0; t < NTYPES; t++)
		for (f = 0; f < NFLIPS; f++)
			n->flip[t][f].percent = n->flip[t][f].cap = UNSET;
	org_limits_unset(&n->org_all);
}

static int
is_unset(const struct threshold *t)
{
	return t->percent == UNSET && t->cap == UNSET;
}

/*
 * Per-org limits: an unset cell of every org is no limit (a flip cell
 * takes the delete or insert cell of its type, as for the site), and
 * min_base is safety.min_base; an override takes every unset cell and
 * min_base from the limits of every org.
 */
static void
orgs_inherit(struct config *c)
{
	struct org_limits *all = &c->nets.org_all;
	size_t i;
	int t, k;

	for (t = 0; t < NTYPES; t++)
		for (k = 0; k < NKINDS; k++) {
			struct threshold *th = &all->t[t][k];

			if (!is_unset(th) || k < NOPS)
				continue;
			*th = all->t[t][k == KIND_DEACTIVATE ? OP_DELETE :
			    OP_INSERT];
		}
	for (t = 0; t < NTYPES; t++)
		for (k = 0; k < NOPS; k++)
			if (is_unset(&all->t[t][k]))
				all->t[t][k].percent = all->t[t][k].cap = -1;
	for (t = 0; t < NTYPES; t++)
		for (k = NOPS; k < NKINDS; k++)
			if (is_unset(&all->t[t][k]))
				all->t[t][k].percent = all->t[t][k].cap = -1;
	if (all->min_base == UNSET)
		all->min_base = c->safety.min_base;
	for (i = 0; i < c->nets.norg_over; i++) {
		struct org_limits *l = &c->nets.org_over[i];

		for (t = 0; t < NTYPES; t++)
			for (k = 0; k < NKINDS; k++)
				if (is_unset(&l->t[t][k]))
					l->t[t][k] = all->t[t][k];
		if (l->min_base == UNSET)
			l->min_base = all->min_base;
	}
}

/*
 * An unset deactivation cell takes the delete threshold of its type,
 * an unset reactivation cell the insert threshold: a config written
 * before the cells existed gets safer, never looser.
 */
static void
nets_inherit(struct config *c)
{
	int t, f;

	for (t = 0; t < NTYPES; t++)
		for (f = 0; f < NFLIPS; f++)
			if (c->nets.flip[t][f].percent == UNSET &&
			    c->nets.flip[t][f].cap == UNSET)
				c->nets.flip[t][f] = c->safety.t[t]
				    [f == FLIP_DEACTIVATE ? OP_DELETE :
				    OP_INSERT];
	orgs_inherit(c);
}

/* Defaults that do not depend on other keys. */
static void
defaults_early(struct config *c)
{
	static const double pct[NTYPES][NOPS] = {
		{ 10, 20, 2 },		/* persons */
		{ 25, 25, 5 },		/* groups */
		{ 25, 25, 5 },		/* memberships */
	};
	int t, o;

	c->history = 7;
	c->source.delimiter = ',';
	c->source.zip_max = SOURCE_ZIP_MAX;
	c->output.mode = MODE_FULL;
	c->output.compress = COMPRESS_NONE;
	c->output.window = 7;
	for (t = 0; t < NTYPES; t++)
		for (o = 0; o < NOPS; o++)
			set_threshold(&c->safety.t[t][o], pct[t][o]);
	c->safety.min_base = 100;
	c->safety.first_run = FIRST_RUN_BLOCK;
	c->safety.max_rejects = 1;
	c->safety.max_shrink = 10;
	nets_defaults(&c->nets);
	c->delivery.s.port = 22;
	c->delivery.s.retries = 3;
	c->delivery.s.timeout = 60;
	c->mail.starttls = STARTTLS_REQUIRED;
	c->mail.on = 1u << RUN_COMPLETED | 1u << RUN_BLOCKED |
	    1u << RUN_FAILED;
	c->mail.samples = 10;
	c->mail.timeout = 30;
	c->state.keep = 400;
	c->monitor.max_age = 26 * 3600;
}

static int
dup_default(char **p, const char *s)
{
	if (*p != NULL)
		return 0;
	if ((*p = strdup(s)) == NULL)
		return error_sys("config");
	return 0;
}

/* Defaults that depend on what was read. */
static int
defaults_late(struct config *c)
{
	nets_inherit(c);
	if (dup_default(&c->nets.org_type, "school") == -1)
		return -1;
	if (dup_default(&c->state_dir, "/var/lib/sisfeed") == -1 ||
	    dup_default(&c->output.datasource, c->site) == -1 ||
	    dup_default(&c->output.name,
	    c->output.cumulative ? "sisfeed.xml" :
	    c->output.compress == COMPRESS_GZIP ? "sisfeed-%Y%m%d.xml.gz" :
	    "sisfeed-%Y%m%d.xml") == -1)
		return -1;
	if (c->output.profile == PROFILE_MOODLE &&
	    dup_default(&c->output.moodle_auth, "manual") == -1)
		return -1;
	if (c->delivery.sftp &&
	    dup_default(&c->delivery.s.remote_dir, ".") == -1)
		return -1;
	return 0;
}

/* The absolute directory that holds path. */
static char *
config_dir(const char *path)
{
	char *copy, *slash, *dir;

	if ((copy = strdup(path)) == NULL)
		return NULL;
	if ((slash = strrchr(copy, '/')) == NULL) {
		free(copy);
		copy = strdup(".");
	} else if (slash == copy)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (copy == NULL)
		return NULL;
	if ((dir = realpath(copy, NULL)) == NULL) {
		free(copy);
		return NULL;
	}
	free(copy);
	return dir;
}

static void
strlist_free(struct strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/*
 * Read and check the config file at path.  Returns a config to free
 * with config_free, or NULL with the error set ("FILE: reason" or
 * "FILE:LINE: key 'a.b': reason").
 */
struct config *
config_load(const char *path)
{
	struct ctx x;
	struct config *c = NULL;
	struct node *root = NULL;
	struct stat st;
	FILE *fp;

	memset(&x, 0, sizeof(x));
	x.file = path;
	if ((fp = fopen(path, "r")) == NULL) {
		error_sys("%s", path);
		return NULL;
	}
	x.fp = fp;
	if (fstat(fileno(fp), &st) == -1) {
		error_sys("%s", path);
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		error_sys("%s", path);
		goto fail;
	}
	if ((x.dir = config_dir(path)) == NULL) {
		error_sys("%s: its directory", path);
		goto fail;
	}
	if (load_tree(&x, fp, &root) == -1)
		goto fail;
	if (root == NULL) {
		error_set("%s: the config is empty", path);
		goto fail;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->path = strdup(path)) == NULL) {
		error_sys("config");
		goto fail;
	}
	x.c = c;
	defaults_early(c);
	if (walk_top(&x, root) == -1 || defaults_late(c) == -1)
		goto fail;
	node_free(root);
	free(x.dir);
	fclose(fp);
	return c;
fail:
	config_free(c);
	node_free(root);
	free(x.dir);
	fclose(fp);
	return NULL;
}

/*
 * Free a config and everything it holds.  NULL is fine.
 */
void
config_free(struct config *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->path);
	free(c->site);
	free(c->state_dir);
	free(c->nets.org_type);
	for (i = 0; i < c->nets.norg_over; i++)
		free(c->nets.org_over[i].org);
	free(c->nets.org_over);
	free(c->nets.windows);
	free(c->nets.pause);
	free(c->source.persons);
	free(c->source.groups);
	free(c->source.memberships);
	free(c->source.dir);
	free(c->source.file);
	free(c->source.encoding);
	free(c->source.useridtype);
	for (i = 0; i < NPF; i++)
		free(c->source.pcol[i]);
	for (i = 0; i < NGF; i++)
		free(c->source.gcol[i]);
	for (i = 0; i < NMF; i++)
		free(c->source.mcol[i]);
	for (i = 0; i < c->source.nroles; i++)
		free(c->source.roles[i].name);
	free(c->source.roles);
	free(c->output.source);
	free(c->output.datasource);
	free(c->output.target);
	free(c->output.name);
	free(c->output.moodle_auth);
	free(c->delivery.dir);
	free(c->delivery.s.host);
	free(c->delivery.s.user);
	free(c->delivery.s.identity);
	free(c->delivery.s.passphrase_file);
	free(c->delivery.s.password_file);
	free(c->delivery.s.known_hosts);
	free(c->delivery.s.remote_dir);
	free(c->mail.smtp);
	free(c->mail.sendmail);
	free(c->mail.user);
	free(c->mail.password_file);
	free(c->mail.cafile);
	free(c->mail.from);
	free(c->monitor.metrics);
	free(c->monitor.heartbeat);
	strlist_free(&c->mail.to);
	for (i = 0; i < NSTATUS; i++)
		strlist_free(&c->mail.to_status[i]);
	free(c);
}
