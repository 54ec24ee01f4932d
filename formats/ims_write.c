/*
 * ims_write.c -- write a roster as IMS Enterprise 1.1 XML, in full or
 * as a delta of recstatus changes.
 *
 * The output profile is the one of FORMAT.md section 12: UTF-8 without
 * a BOM, LF line ends, one element per line indented by two spaces,
 * <enterprise> without a namespace or DOCTYPE, and the DTD's order
 * properties, person*, group* (parents before children), membership*.
 * The same roster always gives the same bytes: nothing depends on the
 * wall clock, the locale or the environment.
 *
 * Two layers: "render" appends records to a large byte buffer (struct
 * out) with hand-written escaping; "sink" takes full buffers and puts
 * them into the file, plain or through zlib's deflate (level 1, gzip
 * framing).  Only out_flush() crosses from one to the other, so the
 * sink can later run on a second thread or as parallel gzip members.
 *
 * Decisions (see also the report of the change that added this file):
 *
 * - Inactive persons.  IMS 1.1 has no person status, and an <extension>
 *   child would need a DTD declaration.  An inactive person is written
 *   with <systemrole systemroletype="None"/>: the DTD's own value for
 *   "no role in the target system", valid against the unmodified DTD,
 *   and ignored by Moodle (which reads no systemrole).  An active person
 *   has no <systemrole>.  ims_read() maps None back to active = 0, so
 *   reading a snapshot restores `active` exactly.  Inactive persons stay
 *   in a full file: leaving them out would make the receiver (and our
 *   own diff against the snapshot) see a delete instead.
 *
 * - description/short longer than 60 characters is written as it is.
 *   Truncating here would make the snapshot differ from the export, so
 *   the diff would report the group as updated every night; the length
 *   limit is a DTD comment, not a rule xmllint checks, and Moodle maps
 *   short to the (254 character) course fullname.  Warning about it is
 *   the readers' and `sisfeed validate`'s job.
 *
 * - Invalid UTF-8 never reaches the file: the readers reject it, and if
 *   a string still holds some, the write fails (-1, the error names the
 *   record and field).  Replacing or skipping would be guessing, and a
 *   skipped record in a full file is a delete at the receiver.
 *
 * - C0 control characters other than TAB, LF and CR, and U+FFFE and
 *   U+FFFF, are not XML characters: they are dropped.  No CDATA and no
 *   numeric character references (Moodle would store them literally).
 *
 * - An institutionrole is written only when the person's role is one of
 *   the DTD's institutionroletype values (exact case); others are left
 *   out so that the file stays valid.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "sisfeed.h"

#define OUT_FLUSH	(1024 * 1024)	/* render this much, then sink it */
#define ZBUF_SIZE	(256 * 1024)
#define SDID_LEVELS	5		/* indent levels of a <sourcedid> */

/* Where rendered bytes go: a file, plain or gzip. */
struct sink {
	const char	*path;
	int		 fd;
	int		 gzip;
	int		 zinit;
	z_stream	 z;
	unsigned char	*zbuf;
};

/* The render buffer and the record being written (for messages). */
struct out {
	char		*buf;
	size_t		 len, cap;
	struct sink	 sink;
	int		 failed;
	const char	*kind;		/* "person", "group", "membership" */
	const char	*key;
	/* "<sourcedid>\n  <source>S</source>\n  <id>" per indent level,
	 * and "</id>\n</sourcedid>\n" */
	char		*sd_pre[SDID_LEVELS];
	size_t		 sd_prelen[SDID_LEVELS];
	char		*sd_post[SDID_LEVELS];
	size_t		 sd_postlen[SDID_LEVELS];
};

static const char spaces[] = "                                ";

static const char *const instroles[] = {
	"Student", "Faculty", "Staff", "Alumni", "ProspectiveStudent",
	"Guest", "Other", "Administrator", "Observer", NULL
};

/* ------------------------------------------------------------------ */
/* The sink.                                                           */

static int
write_all(const char *path, int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t w;

	while (n > 0) {
		w = write(fd, c, n > (1U << 30) ? (1U << 30) : n);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			return error_sys("%s: write", path);
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
sink_open(struct sink *s, const char *path, int gzip)
{
	memset(s, 0, sizeof(*s));
	s->path = path;
	s->gzip = gzip;
	s->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (s->fd == -1)
		return error_sys("%s: open", path);
	if (fchmod(s->fd, 0600) == -1) {
		error_sys("%s: chmod", path);
		goto fail;
	}
	if (!gzip)
		return 0;
	if ((s->zbuf = malloc(ZBUF_SIZE)) == NULL) {
		error_sys("%s: gzip buffer", path);
		goto fail;
	}
	/* windowBits 15 + 16: gzip framing, mtime 0, no name. */
	if (deflateInit2(&s->z, 1, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		error_set("%s: deflateInit2 failed", path);
		goto fail;
	}
	s->zinit = 1;
	return 0;
fail:
	free(s->zbuf);
	s->zbuf = NULL;
	close(s->fd);
	s->fd = -1;
	unlink(path);
	return -1;
}

/* Deflate what is in s->z with flush mode `flush` and write it out. */
static int
sink_deflate(struct sink *s, int flush)
{
	int rc;
	size_t have;

	do {
		s->z.next_out = s->zbuf;
		s->z.avail_out = ZBUF_SIZE;
		rc = deflate(&s->z, flush);
		if (rc == Z_STREAM_ERROR)
			return error_set("%s: deflate failed", s->path);
		have = ZBUF_SIZE - s->z.avail_out;
		if (have > 0 && write_all(s->path, s->fd, s->zbuf, have) == -1)
			return -1;
	} while (s->z.avail_out == 0 ||
	    (flush == Z_FINISH && rc != Z_STREAM_END));
	return 0;
}

static int
sink_write(struct sink *s, const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t chunk;

	if (!s->gzip)
		return write_all(s->path, s->fd, p, n);
	while (n > 0) {
		chunk = n > (1U << 30) ? (1U << 30) : n;
		s->z.next_in = (unsigned char *)(uintptr_t)c;
		s->z.avail_in = (uInt)chunk;
		if (sink_deflate(s, Z_NO_FLUSH) == -1)
			return -1;
		c += chunk;
		n -= chunk;
	}
	return 0;
}

/* Finish the gzip stream, fsync and close.  0, or -1 (file removed). */
static int
sink_close(struct sink *s)
{
	if (s->gzip) {
		s->z.next_in = NULL;
		s->z.avail_in = 0;
		if (sink_deflate(s, Z_FINISH) == -1)
			goto fail;
		deflateEnd(&s->z);
		s->zinit = 0;
		free(s->zbuf);
		s->zbuf = NULL;
	}
	if (fsync(s->fd) == -1) {
		error_sys("%s: fsync", s->path);
		goto fail;
	}
	if (close(s->fd) == -1) {
		s->fd = -1;
		error_sys("%s: close", s->path);
		unlink(s->path);
		return -1;
	}
	s->fd = -1;
	return 0;
fail:
	if (s->zinit)
		deflateEnd(&s->z);
	s->zinit = 0;
	free(s->zbuf);
	s->zbuf = NULL;
	close(s->fd);
	s->fd = -1;
	unlink(s->path);
	return -1;
}

/* Give up: close and remove the partial file. */
static void
sink_abort(struct sink *s)
{
	if (s->zinit)
		deflateEnd(&s->z);
	s->zinit = 0;
	free(s->zbuf);
	s->zbuf = NULL;
	if (s->fd != -1) {
		close(s->fd);
		s->fd = -1;
		unlink(s->path);
	}
}

/* ------------------------------------------------------------------ */
/* The render buffer.                                                  */

static int
out_flush(struct out *o)
{
	if (o->failed)
		return -1;
	if (o->len > 0 && sink_write(&o->sink, o->buf, o->len) == -1) {
		o->failed = 1;
		return -1;
	}
	o->len = 0;
	return 0;
}

/* Make room for n more bytes.  0, or -1 (o->failed set). */
static int
out_reserve(struct out *o, size_t n)
{
	char *nb;

	if (o->failed)
		return -1;
	if (o->cap - o->len >= n)
		return 0;
	if (out_flush(o) == -1)
		return -1;
	if (o->cap >= n)
		return 0;
	if ((nb = realloc(o->buf, n)) == NULL) {
		o->failed = 1;
		return error_sys("%s: output buffer", o->sink.path);
	}
	o->buf = nb;
	o->cap = n;
	return 0;
}

/* Sink the buffer once a record end finds it full enough. */
static void
out_record_done(struct out *o)
{
	if (!o->failed && o->len >= OUT_FLUSH)
		out_flush(o);
}

static void
put_raw(struct out *o, const char *s, size_t n)
{
	if (out_reserve(o, n) == -1)
		return;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

#define PUT(o, lit)	put_raw((o), (lit), sizeof(lit) - 1)

static void
put_str(struct out *o, const char *s)
{
	put_raw(o, s, strlen(s));
}

static void
put_indent(struct out *o, int level)
{
	put_raw(o, spaces, (size_t)level * 2);
}

/*
 * Length of the UTF-8 sequence at p (n bytes left) if it is valid (no
 * overlongs, surrogates or code points past U+10FFFF), else 0.  The
 * code point goes into *cp.
 */
static size_t
utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
	unsigned char c = p[0];

	if (c < 0xC2 || c > 0xF4)
		return 0;
	if (c < 0xE0) {
		if (n < 2 || (p[1] & 0xC0) != 0x80)
			return 0;
		*cp = ((uint32_t)(c & 0x1F) << 6) | (p[1] & 0x3F);
		return 2;
	}
	if (c < 0xF0) {
		if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
			return 0;
		*cp = ((uint32_t)(c & 0x0F) << 12) |
		    ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
		if (*cp < 0x800 || (*cp >= 0xD800 && *cp <= 0xDFFF))
			return 0;
		return 3;
	}
	if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
	    (p[3] & 0xC0) != 0x80)
		return 0;
	*cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
	    ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
	if (*cp < 0x10000 || *cp > 0x10FFFF)
		return 0;
	return 4;
}

/*
 * Append s escaped for element text (attr 0: & < >) or for a
 * double-quoted attribute (attr 1: also ").  Drops characters XML 1.0
 * does not allow; fails on invalid UTF-8, naming the field.
 */
static void
put_escaped(struct out *o, const char *field, const char *s, int attr)
{
	const unsigned char *p = (const unsigned char *)s, *q, *end;
	size_t n = strlen(s), k;
	uint32_t cp;
	char *d;

	/* The worst case is "&quot;" for every byte. */
	if (n > (SIZE_MAX - 64) / 6) {
		o->failed = 1;
		error_set("%s: %s '%s': %s: too long", o->sink.path, o->kind,
		    o->key, field);
		return;
	}
	if (out_reserve(o, n * 6 + 64) == -1)
		return;
	d = o->buf + o->len;
	end = p + n;
	while (p < end) {
		for (q = p; q < end && *q >= 0x20 && *q < 0x80 &&
		    *q != '&' && *q != '<' && *q != '>' &&
		    (!attr || *q != '"'); q++)
			;
		memcpy(d, p, (size_t)(q - p));
		d += q - p;
		if (q == end)
			break;
		p = q;
		switch (*p) {
		case '&':
			memcpy(d, "&amp;", 5);
			d += 5;
			p++;
			continue;
		case '<':
			memcpy(d, "&lt;", 4);
			d += 4;
			p++;
			continue;
		case '>':
			memcpy(d, "&gt;", 4);
			d += 4;
			p++;
			continue;
		case '"':
			memcpy(d, "&quot;", 6);
			d += 6;
			p++;
			continue;
		case '\t':
		case '\n':
		case '\r':
			*d++ = (char)*p++;
			continue;
		default:
			break;
		}
		if (*p < 0x20) {	/* other C0 controls: not XML */
			p++;
			continue;
		}
		if ((k = utf8_seq(p, (size_t)(end - p), &cp)) == 0) {
			o->failed = 1;
			if (utf8_valid(o->key, strlen(o->key)))
				error_set("%s: %s '%s': %s: invalid UTF-8",
				    o->sink.path, o->kind, o->key, field);
			else
				error_set("%s: %s (key not UTF-8): %s: "
				    "invalid UTF-8", o->sink.path, o->kind,
				    field);
			return;
		}
		if (cp != 0xFFFE && cp != 0xFFFF) {
			memcpy(d, p, k);
			d += k;
		}
		p += k;
	}
	o->len = (size_t)(d - o->buf);
}

/* Append <name>text</name> and a newline at an indent level. */
static void
put_elem(struct out *o, int level, const char *name, const char *text)
{
	size_t n = strlen(name);

	put_indent(o, level);
	put_raw(o, "<", 1);
	put_raw(o, name, n);
	put_raw(o, ">", 1);
	put_escaped(o, name, text, 0);
	put_raw(o, "</", 2);
	put_raw(o, name, n);
	put_raw(o, ">\n", 2);
}

/* The <sourcedid> of key at an indent level (1..SDID_LEVELS-1). */
static void
put_sourcedid(struct out *o, int level, const char *key)
{
	put_raw(o, o->sd_pre[level], o->sd_prelen[level]);
	put_escaped(o, "id", key, 0);
	put_raw(o, o->sd_post[level], o->sd_postlen[level]);
}

static void
put_recstatus(struct out *o, int rec)
{
	static const char *const v[] = { "", " recstatus=\"1\"",
		" recstatus=\"2\"", " recstatus=\"3\"" };

	if (rec > REC_NONE && rec <= REC_DELETE)
		put_str(o, v[rec]);
}

/* ------------------------------------------------------------------ */
/* Setup and teardown.                                                 */

static char *
xstrdup_len(const char *s, size_t *len)
{
	char *d;

	*len = strlen(s);
	if ((d = strdup(s)) == NULL)
		error_sys("strdup");
	return d;
}

/*
 * Pre-render the <sourcedid> frames: every one carries the same
 * <source>, and memberships write millions of them.
 */
static int
out_sourcedid_frames(struct out *o, const char *source)
{
	struct out tmp;
	char pre[512], post[128];
	int level;

	memset(&tmp, 0, sizeof(tmp));
	tmp.sink.path = o->sink.path;
	tmp.kind = "properties";
	tmp.key = "source";
	put_escaped(&tmp, "source", source, 0);
	if (tmp.failed) {
		free(tmp.buf);
		return -1;
	}
	for (level = 1; level < SDID_LEVELS; level++) {
		snprintf(pre, sizeof(pre), "%.*s<sourcedid>\n%.*s<source>",
		    level * 2, spaces, level * 2 + 2, spaces);
		snprintf(post, sizeof(post), "</id>\n%.*s</sourcedid>\n",
		    level * 2, spaces);
		o->sd_prelen[level] = strlen(pre) + tmp.len +
		    sizeof("</source>\n") - 1 + (size_t)level * 2 + 2 +
		    sizeof("<id>") - 1;
		if ((o->sd_pre[level] = malloc(o->sd_prelen[level] + 1)) ==
		    NULL) {
			free(tmp.buf);
			return error_sys("malloc");
		}
		snprintf(o->sd_pre[level], o->sd_prelen[level] + 1,
		    "%s%.*s</source>\n%.*s<id>", pre, (int)tmp.len, tmp.buf,
		    level * 2 + 2, spaces);
		if ((o->sd_post[level] = xstrdup_len(post,
		    &o->sd_postlen[level])) == NULL) {
			free(tmp.buf);
			return -1;
		}
	}
	free(tmp.buf);
	return 0;
}

static void
out_free(struct out *o)
{
	int i;

	for (i = 0; i < SDID_LEVELS; i++) {
		free(o->sd_pre[i]);
		free(o->sd_post[i]);
	}
	free(o->buf);
	memset(o, 0, sizeof(*o));
}

static int
out_open(struct out *o, const char *path, const struct ims_options *opt)
{
	memset(o, 0, sizeof(*o));
	o->sink.path = path;
	o->sink.fd = -1;
	o->kind = "properties";
	o->key = "";
	if (out_sourcedid_frames(o, opt->source ? opt->source : "") == -1) {
		out_free(o);
		return -1;
	}
	o->cap = OUT_FLUSH + 64 * 1024;
	if ((o->buf = malloc(o->cap)) == NULL) {
		out_free(o);
		return error_sys("%s: output buffer", path);
	}
	if (sink_open(&o->sink, path, opt->gzip) == -1) {
		out_free(o);
		return -1;
	}
	return 0;
}

/* Sink the rest and close; on any earlier failure remove the file. */
static int
out_close(struct out *o)
{
	int rc = 0;

	if (o->failed || out_flush(o) == -1) {
		sink_abort(&o->sink);
		rc = -1;
	} else if (sink_close(&o->sink) == -1)
		rc = -1;
	out_free(o);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Records.                                                            */

static void
put_header(struct out *o, const struct roster *r,
    const struct ims_options *opt, const char *type)
{
	struct tm tm;
	time_t t = r->datetime;
	char when[64];

	if (gmtime_r(&t, &tm) == NULL) {
		o->failed = 1;
		error_set("%s: datetime %lld out of range", o->sink.path,
		    (long long)t);
		return;
	}
	if (strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		o->failed = 1;
		error_set("%s: datetime %lld out of range", o->sink.path,
		    (long long)t);
		return;
	}
	PUT(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<enterprise>\n"
	    "  <properties>\n");
	put_elem(o, 2, "datasource", opt->datasource ? opt->datasource : "");
	if (opt->target != NULL)
		put_elem(o, 2, "target", opt->target);
	put_elem(o, 2, "type", type);
	put_elem(o, 2, "datetime", when);
	PUT(o, "  </properties>\n");
}

static int
instrole_ok(const char *role)
{
	int i;

	for (i = 0; instroles[i] != NULL; i++)
		if (strcmp(role, instroles[i]) == 0)
			return 1;
	return 0;
}

static void
put_person(struct out *o, const struct person *p, int rec)
{
	o->kind = "person";
	o->key = p->id;
	PUT(o, "  <person");
	put_recstatus(o, rec);
	PUT(o, ">\n");
	put_sourcedid(o, 2, p->id);
	if (*p->userid != '\0')
		put_elem(o, 2, "userid", p->userid);
	PUT(o, "    <name>\n      <fn>");
	put_escaped(o, "given", p->given, 0);
	if (*p->given != '\0' && *p->family != '\0')
		PUT(o, " ");
	put_escaped(o, "family", p->family, 0);
	PUT(o, "</fn>\n      <n>\n");
	put_elem(o, 4, "family", p->family);
	put_elem(o, 4, "given", p->given);
	PUT(o, "      </n>\n    </name>\n");
	if (*p->email != '\0')
		put_elem(o, 2, "email", p->email);
	if (!p->active)
		PUT(o, "    <systemrole systemroletype=\"None\"/>\n");
	if (*p->role != '\0' && instrole_ok(p->role)) {
		PUT(o, "    <institutionrole primaryrole=\"Yes\" "
		    "institutionroletype=\"");
		put_escaped(o, "role", p->role, 1);
		PUT(o, "\"/>\n");
	}
	PUT(o, "  </person>\n");
	out_record_done(o);
}

static void
put_group(struct out *o, const struct group *g, uint32_t depth, int rec)
{
	char lv[32];
	const char *parent = *g->parent != '\0' ? g->parent : g->id;

	o->kind = "group";
	o->key = g->id;
	PUT(o, "  <group");
	put_recstatus(o, rec);
	PUT(o, ">\n");
	put_sourcedid(o, 2, g->id);
	if (*g->type != '\0') {
		snprintf(lv, sizeof(lv), "%u", (unsigned)depth);
		PUT(o, "    <grouptype>\n      <scheme>sisfeed</scheme>\n"
		    "      <typevalue level=\"");
		put_str(o, lv);
		PUT(o, "\">");
		put_escaped(o, "type", g->type, 0);
		PUT(o, "</typevalue>\n    </grouptype>\n");
	}
	PUT(o, "    <description>\n");
	put_elem(o, 3, "short", g->shortname);
	if (*g->longname != '\0')
		put_elem(o, 3, "long", g->longname);
	PUT(o, "    </description>\n");
	if (*g->term != '\0') {
		PUT(o, "    <timeframe>\n");
		put_elem(o, 3, "adminperiod", g->term);
		PUT(o, "    </timeframe>\n");
	}
	/* A root points at itself (itslearning, Cerebrum, PIFU). */
	PUT(o, "    <relationship relation=\"1\">\n");
	put_sourcedid(o, 3, parent);
	PUT(o, "      <label>Parent</label>\n    </relationship>\n"
	    "  </group>\n");
	out_record_done(o);
}

static void
put_member(struct out *o, const char *person, int role, int active,
    int rec)
{
	static const char *const code[] = { "00", "01", "02", "03", "04",
		"05", "06", "07", "08" };

	if (role < 1 || role > 8) {
		o->failed = 1;
		error_set("%s: membership '%s': person '%s': roletype %d "
		    "out of range", o->sink.path, o->key, person, role);
		return;
	}
	PUT(o, "    <member>\n");
	put_sourcedid(o, 3, person);
	PUT(o, "      <idtype>1</idtype>\n      <role roletype=\"");
	put_raw(o, code[role], 2);
	PUT(o, "\"");
	put_recstatus(o, rec);
	if (active)
		PUT(o, ">\n        <status>1</status>\n      </role>\n"
		    "    </member>\n");
	else
		PUT(o, ">\n        <status>0</status>\n      </role>\n"
		    "    </member>\n");
}

static void
put_membership_open(struct out *o, const char *group)
{
	o->kind = "membership";
	o->key = group;
	PUT(o, "  <membership>\n");
	put_sourcedid(o, 2, group);
}

static void
put_membership_close(struct out *o)
{
	PUT(o, "  </membership>\n");
	out_record_done(o);
}

/* ------------------------------------------------------------------ */
/* The group hierarchy.                                                */

/* Index of g's parent in r: -1 for a root (no parent, or itself), -2
 * when the parent is not a group of r. */
static long
parent_index(const struct roster *r, size_t g)
{
	long p;

	if (*r->groups[g].parent == '\0')
		return -1;
	if ((p = roster_find_group(r, r->groups[g].parent)) < 0)
		return -2;
	if ((size_t)p == g)
		return -1;
	return p;
}

/*
 * The depth of every group of r (roots 0) into *out (malloc'd, ngroups
 * entries).  Fails naming the group on an unknown parent or a cycle.
 */
static int
group_depths(const char *path, const struct roster *r, uint32_t **out)
{
	uint32_t *d, *stack, base = 0;
	uint8_t *state;
	size_t i, j, sp;
	long p;
	int rc = -1;

	*out = NULL;
	d = calloc(r->ngroups + 1, sizeof(*d));
	stack = calloc(r->ngroups + 1, sizeof(*stack));
	state = calloc(r->ngroups + 1, 1);
	if (d == NULL || stack == NULL || state == NULL) {
		error_sys("%s: group depths", path);
		goto out;
	}
	for (i = 0; i < r->ngroups; i++) {
		sp = 0;
		for (j = i;;) {
			if (state[j] == 2) {
				base = d[j] + 1;
				break;
			}
			if (state[j] == 1) {
				error_set("%s: group '%s': parent cycle",
				    path, r->groups[j].id);
				goto out;
			}
			state[j] = 1;
			stack[sp++] = (uint32_t)j;
			if ((p = parent_index(r, j)) == -1) {
				base = 0;
				break;
			}
			if (p == -2) {
				error_set("%s: group '%s': parent '%s' is not "
				    "a group", path, r->groups[j].id,
				    r->groups[j].parent);
				goto out;
			}
			j = (size_t)p;
		}
		while (sp > 0) {
			j = stack[--sp];
			d[j] = base++;
			state[j] = 2;
		}
	}
	*out = d;
	d = NULL;
	rc = 0;
out:
	free(d);
	free(stack);
	free(state);
	return rc;
}

/*
 * The order to write the groups of r in: by depth, then by key, so that
 * every parent comes before its children.  *order is malloc'd.
 */
static int
group_order(const char *path, const struct roster *r, uint32_t **order,
    uint32_t **depth)
{
	uint32_t *d, *o, maxd = 0;
	size_t *start, i;

	*order = NULL;
	*depth = NULL;
	if (group_depths(path, r, &d) == -1)
		return -1;
	for (i = 0; i < r->ngroups; i++)
		if (d[i] > maxd)
			maxd = d[i];
	o = calloc(r->ngroups + 1, sizeof(*o));
	start = calloc((size_t)maxd + 2, sizeof(*start));
	if (o == NULL || start == NULL) {
		free(o);
		free(start);
		free(d);
		return error_sys("%s: group order", path);
	}
	for (i = 0; i < r->ngroups; i++)
		start[d[i] + 1]++;
	for (i = 1; i <= maxd + 1; i++)
		start[i] += start[i - 1];
	for (i = 0; i < r->ngroups; i++)
		o[start[d[i]]++] = (uint32_t)i;
	free(start);
	*order = o;
	*depth = d;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Full files.                                                         */

static void
put_members_full(struct out *o, const struct roster *r)
{
	size_t i = 0;
	uint32_t g;

	while (i < r->nmembers && !o->failed) {
		g = r->members[i].group;
		put_membership_open(o, r->groups[g].id);
		for (; i < r->nmembers && r->members[i].group == g; i++) {
			const struct membership *m = &r->members[i];

			put_member(o, r->persons[m->person].id, m->role,
			    m->active, REC_NONE);
		}
		put_membership_close(o);
	}
}

/*
 * Write every record of r (no recstatus) to path: created 0600, fsync'd
 * before close, removed again on any failure.  <type> is "full" (or
 * "delta" when opt->delta is set).  Returns 0, or -1 with the error set.
 */
int
ims_write_full(const char *path, const struct roster *r,
    const struct ims_options *opt)
{
	struct out o;
	uint32_t *order = NULL, *depth = NULL;
	size_t i;

	if (group_order(path, r, &order, &depth) == -1)
		return -1;
	if (out_open(&o, path, opt) == -1) {
		free(order);
		free(depth);
		return -1;
	}
	put_header(&o, r, opt, opt->delta ? "delta" : "full");
	for (i = 0; i < r->npersons && !o.failed; i++)
		put_person(&o, &r->persons[i], REC_NONE);
	for (i = 0; i < r->ngroups && !o.failed; i++)
		put_group(&o, &r->groups[order[i]], depth[order[i]],
		    REC_NONE);
	put_members_full(&o, r);
	PUT(&o, "</enterprise>\n");
	free(order);
	free(depth);
	return out_close(&o);
}

/* ------------------------------------------------------------------ */
/* Deltas.                                                             */

static int
op_recstatus(int op)
{
	switch (op) {
	case OP_INSERT:
		return REC_ADD;
	case OP_UPDATE:
		return REC_UPDATE;
	default:
		return REC_DELETE;
	}
}

struct gchange {
	uint32_t	pos;		/* in cs->c[TYPE_GROUP] */
	uint32_t	depth;
	uint8_t		del;
};

/* Adds and updates first, parents before children; then deletes,
 * children before parents; ties in key order. */
static int
gchange_cmp(const void *a, const void *b)
{
	const struct gchange *x = a, *y = b;

	if (x->del != y->del)
		return x->del < y->del ? -1 : 1;
	if (x->depth != y->depth) {
		if (x->del)
			return x->depth > y->depth ? -1 : 1;
		return x->depth < y->depth ? -1 : 1;
	}
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int
check_index(const char *path, const char *what, uint32_t i, size_t n)
{
	if (i >= n)
		return error_set("%s: change set: %s index %u out of range",
		    path, what, (unsigned)i);
	return 0;
}

static void
put_persons_delta(struct out *o, const struct roster *nr,
    const struct roster *or, const struct changeset *cs)
{
	const struct change *c;
	size_t i;

	for (i = 0; i < cs->n[TYPE_PERSON] && !o->failed; i++) {
		c = &cs->c[TYPE_PERSON][i];
		if (c->op == OP_DELETE) {
			if (check_index(o->sink.path, "old person", c->old,
			    or->npersons) == -1) {
				o->failed = 1;
				return;
			}
			put_person(o, &or->persons[c->old], REC_DELETE);
		} else {
			if (check_index(o->sink.path, "new person", c->new,
			    nr->npersons) == -1) {
				o->failed = 1;
				return;
			}
			put_person(o, &nr->persons[c->new],
			    op_recstatus(c->op));
		}
	}
}

static int
put_groups_delta(struct out *o, const struct roster *nr,
    const struct roster *or, const struct changeset *cs)
{
	uint32_t *ndepth = NULL, *odepth = NULL, *unused = NULL;
	struct gchange *gc;
	const struct change *c;
	size_t i, n = cs->n[TYPE_GROUP], ndel = 0;
	int rc = -1;

	if (n == 0)
		return 0;
	if ((gc = calloc(n, sizeof(*gc))) == NULL)
		return error_sys("%s: group changes", o->sink.path);
	for (i = 0; i < n; i++) {
		c = &cs->c[TYPE_GROUP][i];
		if (c->op == OP_DELETE) {
			ndel++;
			if (check_index(o->sink.path, "old group", c->old,
			    or->ngroups) == -1)
				goto out;
		} else if (check_index(o->sink.path, "new group", c->new,
		    nr->ngroups) == -1)
			goto out;
	}
	if (ndel < n && group_order(o->sink.path, nr, &unused, &ndepth) == -1)
		goto out;
	free(unused);
	unused = NULL;
	if (ndel > 0 && group_order(o->sink.path, or, &unused, &odepth) == -1)
		goto out;
	for (i = 0; i < n; i++) {
		c = &cs->c[TYPE_GROUP][i];
		gc[i].pos = (uint32_t)i;
		gc[i].del = c->op == OP_DELETE;
		gc[i].depth = gc[i].del ? odepth[c->old] : ndepth[c->new];
	}
	qsort(gc, n, sizeof(*gc), gchange_cmp);
	for (i = 0; i < n && !o->failed; i++) {
		c = &cs->c[TYPE_GROUP][gc[i].pos];
		if (gc[i].del)
			put_group(o, &or->groups[c->old], gc[i].depth,
			    REC_DELETE);
		else
			put_group(o, &nr->groups[c->new], gc[i].depth,
			    op_recstatus(c->op));
	}
	rc = o->failed ? -1 : 0;
out:
	free(gc);
	free(unused);
	free(ndepth);
	free(odepth);
	return rc;
}

static int
put_members_delta(struct out *o, const struct roster *nr,
    const struct roster *or, const struct changeset *cs)
{
	const struct change *c;
	const struct roster *r;
	const struct membership *m;
	const char *gkey, *open = NULL;
	size_t i;

	for (i = 0; i < cs->n[TYPE_MEMBER] && !o->failed; i++) {
		c = &cs->c[TYPE_MEMBER][i];
		r = c->op == OP_DELETE ? or : nr;
		if (check_index(o->sink.path, c->op == OP_DELETE ?
		    "old membership" : "new membership",
		    c->op == OP_DELETE ? c->old : c->new, r->nmembers) == -1)
			return -1;
		m = &r->members[c->op == OP_DELETE ? c->old : c->new];
		if (m->group >= r->ngroups || m->person >= r->npersons)
			return error_set("%s: membership %u: bad index",
			    o->sink.path, (unsigned)i);
		gkey = r->groups[m->group].id;
		if (open == NULL || strcmp(open, gkey) != 0) {
			if (open != NULL)
				put_membership_close(o);
			put_membership_open(o, gkey);
			open = gkey;
		}
		if (c->op == OP_DELETE)
			put_member(o, r->persons[m->person].id, m->role, 0,
			    REC_DELETE);
		else
			put_member(o, r->persons[m->person].id, m->role,
			    m->active, op_recstatus(c->op));
	}
	if (open != NULL)
		put_membership_close(o);
	return o->failed ? -1 : 0;
}

/*
 * Write the changes of cs (new roster nr, old roster or) with recstatus
 * 1/2/3 on person, group and role: adds and updates carry the new
 * record, deletes the old one (so a person delete has the old userid,
 * and a membership delete is <role recstatus="3"> with status 0).
 * Groups: adds and updates parents first, then deletes children first.
 * path is created 0600 and fsync'd; removed on failure.  0 or -1.
 */
int
ims_write_delta(const char *path, const struct roster *nr,
    const struct roster *or, const struct changeset *cs,
    const struct ims_options *opt)
{
	struct out o;

	if (out_open(&o, path, opt) == -1)
		return -1;
	put_header(&o, nr, opt, "delta");
	put_persons_delta(&o, nr, or, cs);
	if (!o.failed && put_groups_delta(&o, nr, or, cs) == -1)
		o.failed = 1;
	if (!o.failed && put_members_delta(&o, nr, or, cs) == -1)
		o.failed = 1;
	PUT(&o, "</enterprise>\n");
	return out_close(&o);
}
