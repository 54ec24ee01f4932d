/*
 * csv.c -- a streaming RFC 4180 reader, and the generic CSV source:
 * three files (persons, groups, memberships) whose header names are
 * mapped to model fields by the config.
 *
 * The reader reads the file in large chunks and copies each record's
 * fields, unquoted, into one reusable buffer; once that buffer and the
 * field arrays have grown to the largest record, reading allocates
 * nothing.  A malformed record is reported (-1, error set) and the
 * reader skips to the end of the physical line where the fault was
 * found, so the caller may reject the record and go on.
 *
 * csv_read_roster resolves the memberships' keys through a hash index
 * whose slots hold short keys inline, and looks persons up a few rows
 * behind the parser with the slot prefetched: ten million rows are
 * bound by memory latency otherwise.  Rejects stay in line order.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sisfeed.h"

#define CSV_BUFSZ	(256 * 1024)
/* The longest record kept (bytes of its fields); a longer one is a
 * malformed record, so a 2 GiB field cannot take 2 GiB of memory. */
#define CSV_RECORD_MAX		(1024 * 1024)
#define CSV_RECORD_MAX_S	"1048576"

/* Byte classes of the unquoted state. */
enum { C_DATA, C_DELIM, C_QUOTE, C_LF, C_CR, C_NUL };

struct csv_reader {
	int		 fd;
	struct instream	*in;		/* instead of fd: csv_open_stream */
	char		*path;
	unsigned char	*buf;		/* bufsz bytes read ahead */
	size_t		 bufsz;		/* CSV_BUFSZ, less for a small file */
	size_t		 pos, len;	/* unread: buf[pos..len) */
	int		 eof;
	int		 fatal;		/* I/O error or out of memory */
	int		 started;	/* first chunk read, BOM handled */
	int		 skiplf;	/* last record ended in CR */
	char		*fbuf;		/* the fields, NUL-terminated */
	size_t		 fcap;
	size_t		*offs;		/* field starts in fbuf */
	size_t		*lens;
	char		**fields;
	size_t		 nfcap;
	unsigned long	 line;		/* line of buf[pos] */
	unsigned long	 recline;	/* line where the record started */
	/* Truncation gate (csv_next_header sets nhdr). */
	size_t		 nhdr;		/* header fields, 0 unknown */
	unsigned long	 shortline;	/* last record short: its line */
	size_t		 shortn;	/* and its field count */
	const char	*why;		/* last malformed-record reason */
	size_t		 whyfield;	/* and its field, 0-based */
	struct stat	 st;
	unsigned char	 cls[256];
	/* Reading part of a file (csv_split): buf[0]'s offset in the file,
	 * and where to stop: csv_next ends (returns 0) at the first record
	 * that starts at or past stop_at, leaving stopped at its offset. */
	off_t		 abs;
	off_t		 stop_at;	/* 0: read to the end */
	off_t		 stopped;	/* -1: not stopped */
};

/*
 * Read the next chunk into buf.  Returns 0 (eof set when nothing was
 * left) or -1 on a read error.
 */
static int
csv_fill(struct csv_reader *cr)
{
	ssize_t n;

	cr->abs += (off_t)cr->len;
	cr->pos = cr->len = 0;
	for (;;) {
		if (cr->in != NULL) {
			if ((n = instream_read(cr->in, cr->buf + cr->len,
			    cr->bufsz - cr->len)) == -1) {
				cr->fatal = 1;
				return -1;
			}
		} else
			n = read(cr->fd, cr->buf + cr->len,
			    cr->bufsz - cr->len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			cr->fatal = 1;
			return error_sys("%s: read", cr->path);
		}
		if (n == 0) {
			if (cr->len == 0)
				cr->eof = 1;
			break;
		}
		cr->len += (size_t)n;
		/* The first chunk needs 3 bytes to see a BOM. */
		if (cr->started || cr->len >= 3)
			break;
	}
	if (!cr->started) {
		cr->started = 1;
		if (cr->len >= 3 && cr->buf[0] == 0xef && cr->buf[1] == 0xbb &&
		    cr->buf[2] == 0xbf)
			cr->pos = 3;
		if (cr->pos == cr->len && !cr->eof)
			return csv_fill(cr);
	}
	return 0;
}

/* Make room for need bytes in the field buffer.  0 or -1. */
static int
csv_reserve(struct csv_reader *cr, size_t need)
{
	size_t cap;
	char *p;

	if (need <= cr->fcap)
		return 0;
	cap = cr->fcap ? cr->fcap : 1024;
	while (cap < need)
		cap *= 2;
	if ((p = realloc(cr->fbuf, cap)) == NULL) {
		cr->fatal = 1;
		return error_sys("%s", cr->path);
	}
	cr->fbuf = p;
	cr->fcap = cap;
	return 0;
}

/* Grow the per-field arrays.  0 or -1. */
static int
csv_growfields(struct csv_reader *cr)
{
	size_t n = cr->nfcap ? cr->nfcap * 2 : 32;
	size_t *o, *l;
	char **f;

	if ((o = reallocarray(cr->offs, n, sizeof(*o))) == NULL)
		goto fail;
	cr->offs = o;
	if ((l = reallocarray(cr->lens, n, sizeof(*l))) == NULL)
		goto fail;
	cr->lens = l;
	if ((f = reallocarray(cr->fields, n, sizeof(*f))) == NULL)
		goto fail;
	cr->fields = f;
	cr->nfcap = n;
	return 0;
fail:
	cr->fatal = 1;
	return error_sys("%s", cr->path);
}

/*
 * A reader named name (for errors) reading CSV separated by delimiter
 * (0: a comma), with a bufsz-byte buffer; its source is set by the
 * caller.  NULL with the error set.
 */
static struct csv_reader *
csv_new(const char *name, char delimiter, size_t bufsz)
{
	struct csv_reader *cr;
	unsigned char d = delimiter ? (unsigned char)delimiter : ',';

	if (d == '"' || d == '\n' || d == '\r') {
		error_set("%s: bad CSV delimiter", name);
		return NULL;
	}
	if ((cr = calloc(1, sizeof(*cr))) == NULL) {
		error_sys("%s", name);
		return NULL;
	}
	cr->fd = -1;
	cr->bufsz = bufsz;
	if ((cr->path = strdup(name)) == NULL ||
	    (cr->buf = malloc(cr->bufsz)) == NULL) {
		error_sys("%s", name);
		csv_close(cr);
		return NULL;
	}
	cr->cls[d] = C_DELIM;
	cr->cls['"'] = C_QUOTE;
	cr->cls['\n'] = C_LF;
	cr->cls['\r'] = C_CR;
	cr->cls['\0'] = C_NUL;
	cr->line = 1;
	cr->stopped = -1;
	return cr;
}

/*
 * Open path for reading CSV separated by delimiter (0: a comma).
 * Returns a reader to close with csv_close, or NULL with the error set.
 */
struct csv_reader *
csv_open(const char *path, char delimiter)
{
	struct csv_reader *cr;
	struct stat st;
	size_t bufsz = CSV_BUFSZ;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		error_sys("%s", path);
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		error_sys("%s: fstat", path);
		close(fd);
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		error_set("%s: is a directory", path);
		close(fd);
		return NULL;
	}
	/* A small file (a header, a test) needs no 256 KiB buffer. */
	if (S_ISREG(st.st_mode) && st.st_size < CSV_BUFSZ / 2)
		bufsz = (size_t)st.st_size + 4096;
	if ((cr = csv_new(path, delimiter, bufsz)) == NULL) {
		close(fd);
		return NULL;
	}
	cr->fd = fd;
	cr->st = st;
	return cr;
}

/*
 * Convert what cr reads from enc to UTF-8 (NULL, "" or UTF-8: leave it
 * as it is).  Call before the first record.  0, or -1 with the error
 * set (an encoding iconv does not know).
 */
int
csv_set_encoding(struct csv_reader *cr, const char *enc)
{
	struct instream *in;

	if (enc == NULL || cr->in != NULL || cr->fd == -1 ||
	    !instream_converts(enc))
		return 0;
	if ((in = instream_open_fd(cr->fd, cr->path)) == NULL) {
		cr->fd = -1;
		return -1;
	}
	cr->fd = -1;
	cr->in = in;
	return instream_set_encoding(in, enc);
}

/*
 * Read CSV separated by delimiter (0: a comma) from in (a zip member,
 * a file converted to UTF-8), named name in errors.  The reader owns in
 * from here, also when this fails.  NULL with the error set.
 */
struct csv_reader *
csv_open_stream(struct instream *in, const char *name, char delimiter)
{
	struct csv_reader *cr;

	if ((cr = csv_new(name, delimiter, CSV_BUFSZ)) == NULL) {
		instream_close(in);
		return NULL;
	}
	cr->in = in;
	return cr;
}

/*
 * Read the next record.  Returns the number of fields (>= 1), 0 at the
 * end of the file, or -1.  A -1 is either a malformed record (a quote
 * inside an unquoted field, text after a closing quote, a quote left
 * open at the end of the file): the error names file:line:field, the
 * reader has skipped to the end of that line and the next call goes
 * on; or an I/O error or no memory: csv_fatal() is then 1 and every
 * later call fails.  Blank lines are skipped.  Fields are
 * NUL-terminated and stay valid until the next call.
 */
int
csv_next(struct csv_reader *cr, char ***fieldsp, size_t **lensp)
{
	enum { S_REC, S_START, S_UNQ, S_Q, S_QQ, S_SKIP } st = S_REC;
	const unsigned char *cls = cr->cls;
	const unsigned char *p, *end;
	size_t nf = 0, flen = 0, fstart = 0, i;
	unsigned char c;
	char *o;
	int toolong = 0;

	if (cr->fatal)
		return error_set("%s: cannot read after an earlier error",
		    cr->path);
	cr->why = NULL;
	for (;;) {
		if (cr->pos == cr->len) {
			if (!cr->eof && csv_fill(cr) == -1)
				return -1;
			if (cr->eof)
				goto eof;
		}
		if (cr->skiplf) {
			cr->skiplf = 0;
			if (cr->buf[cr->pos] == '\n')
				if (++cr->pos == cr->len)
					continue;
		}
		/* Output never outgrows input, but for a final NUL. */
		if (csv_reserve(cr, flen + (cr->len - cr->pos) + 2) == -1)
			return -1;
		p = cr->buf + cr->pos;
		end = cr->buf + cr->len;
		o = cr->fbuf + flen;
		while (p < end) {
			switch (st) {
			case S_REC:
				if (*p == '\n') {
					p++;
					cr->line++;
					continue;
				}
				if (*p == '\r') {
					p++;
					cr->line++;
					if (p == end)
						cr->skiplf = 1;
					else if (*p == '\n')
						p++;
					continue;
				}
				if (cr->stop_at != 0 && cr->abs +
				    (p - cr->buf) >= cr->stop_at) {
					cr->pos = (size_t)(p - cr->buf);
					cr->stopped = cr->abs + (p - cr->buf);
					return 0;
				}
				cr->recline = cr->line;
				st = S_START;
				/* FALLTHROUGH */
			case S_START:
				fstart = (size_t)(o - cr->fbuf);
				if (*p == '"') {
					p++;
					st = S_Q;
					continue;
				}
				st = S_UNQ;
				/* FALLTHROUGH */
			case S_UNQ:
				while (p < end && cls[*p] == C_DATA)
					*o++ = (char)*p++;
				if (p == end)
					continue;
				c = *p++;
				/* kept: table_next rejects the value */
				if (c == '\0') {
					*o++ = '\0';
					continue;
				}
				if (c == '"') {
					cr->why = "quote inside unquoted field";
					st = S_SKIP;
					continue;
				}
				goto endfield;
			case S_Q:
				while (p < end && *p != '"') {
					if (*p == '\n')
						cr->line++;
					*o++ = (char)*p++;
				}
				if (p == end)
					continue;
				p++;
				st = S_QQ;
				continue;
			case S_QQ:
				c = *p++;
				if (c == '"') {
					*o++ = '"';
					st = S_Q;
					continue;
				}
				if (cls[c] != C_DELIM && cls[c] != C_LF &&
				    cls[c] != C_CR) {
					cr->why = "text after closing quote";
					st = S_SKIP;
					continue;
				}
				goto endfield;
			case S_SKIP:
				while (p < end && *p != '\n' && *p != '\r')
					p++;
				if (p == end)
					continue;
				c = *p++;
				cr->line++;
				if (c == '\r') {
					if (p == end)
						cr->skiplf = 1;
					else if (*p == '\n')
						p++;
				}
				cr->pos = (size_t)(p - cr->buf);
				goto malformed;
			}
			continue;
endfield:
			/* c is a delimiter, LF or CR. */
			if (nf == cr->nfcap && csv_growfields(cr) == -1)
				return -1;
			cr->offs[nf] = fstart;
			cr->lens[nf] = (size_t)(o - cr->fbuf) - fstart;
			*o++ = '\0';
			nf++;
			if (cls[c] == C_DELIM) {
				st = S_START;
				continue;
			}
			cr->line++;
			if (c == '\r') {
				if (p == end)
					cr->skiplf = 1;
				else if (*p == '\n')
					p++;
			}
			cr->pos = (size_t)(p - cr->buf);
			goto done;
		}
		cr->pos = cr->len;
		flen = (size_t)(o - cr->fbuf);
		/* An overlong record keeps being parsed, not kept. */
		if (flen > CSV_RECORD_MAX) {
			toolong = 1;
			o = cr->fbuf;
			flen = fstart = nf = 0;
		}
	}

eof:
	switch (st) {
	case S_REC:
		if (cr->shortline != 0) {
			cr->fatal = 1;
			return error_set("%s:%lu: the last record has %zu "
			    "fields, the header %zu: the file is cut short",
			    cr->path, cr->shortline, cr->shortn, cr->nhdr);
		}
		return 0;
	default:
		/* A record open at the end: the file was cut mid-line. */
		cr->fatal = 1;
		return error_set("%s:%lu: no line end after the last record: "
		    "the file is cut short", cr->path, cr->recline);
	}
done:
	if (toolong || (size_t)(o - cr->fbuf) > CSV_RECORD_MAX) {
		cr->why = "record longer than " CSV_RECORD_MAX_S " bytes";
		nf = 0;
		goto malformed;
	}
	if (nf > INT_MAX)
		return error_set("%s:%lu: too many fields", cr->path,
		    cr->recline);
	cr->shortline = nf < cr->nhdr ? cr->recline : 0;
	cr->shortn = nf;
	for (i = 0; i < nf; i++)
		cr->fields[i] = cr->fbuf + cr->offs[i];
	*fieldsp = cr->fields;
	*lensp = cr->lens;
	return (int)nf;
malformed:
	cr->shortline = 0;
	cr->whyfield = nf;
	return error_set("%s:%lu: field %zu: %s", cr->path, cr->recline,
	    nf + 1, cr->why);
}

/*
 * Why a field value cannot be stored (invalid UTF-8, a NUL byte, a
 * byte order mark past the file's start: a second export glued on),
 * or NULL if it is fine.
 */
const char *
csv_field_fault(const char *s, size_t len)
{
	const char *p;

	if ((p = utf8_fault(s, len)) != NULL)
		return p;
	if (memchr(s, '\0', len) != NULL)
		return "NUL byte in value";
	for (p = s; (p = memchr(p, 0xef, len - (size_t)(p - s))) != NULL;
	    p++)
		if (len - (size_t)(p - s) >= 3 && (unsigned char)p[1] == 0xbb &&
		    (unsigned char)p[2] == 0xbf)
			return "byte order mark inside the file";
	return NULL;
}

/*
 * Read the header record: like csv_next, but a header that is
 * malformed or has a field csv_field_fault refuses is an error naming
 * file, line and column (a NUL would cut a name short and match).  The
 * field count is remembered: a file whose last record is short fails
 * at its end as cut short.  Returns the field count, 0 (empty file) or
 * -1.
 */
int
csv_next_header(struct csv_reader *cr, char ***fieldsp, size_t **lensp)
{
	const char *why;
	size_t i;
	int n;

	if ((n = csv_next(cr, fieldsp, lensp)) <= 0)
		return n;
	for (i = 0; i < (size_t)n; i++)
		if ((why = csv_field_fault((*fieldsp)[i], (*lensp)[i])) != NULL)
			return error_set("%s:%lu: header column %zu: %s",
			    cr->path, cr->recline, i + 1, why);
	cr->nhdr = (size_t)n;
	return n;
}

/*
 * The line where the last record returned (or rejected) started; 0
 * before the first.
 */
unsigned long
csv_line(const struct csv_reader *cr)
{
	return cr->recline;
}

/*
 * 1 if the reader failed for good (I/O error, no memory), 0 if the last
 * -1 from csv_next was a malformed record and reading may go on.
 */
int
csv_fatal(const struct csv_reader *cr)
{
	return cr->fatal;
}

/*
 * Close the reader and free everything it holds (NULL is fine).
 */
void
csv_close(struct csv_reader *cr)
{
	if (cr == NULL)
		return;
	if (cr->fd != -1)
		close(cr->fd);
	instream_close(cr->in);
	free(cr->path);
	free(cr->buf);
	free(cr->fbuf);
	free(cr->offs);
	free(cr->lens);
	free(cr->fields);
	free(cr);
}

/* ------------------------------------------------------------------ */
/* The three files of the generic CSV source.                          */

static const char *const pnames[NPF] = {
	"id", "userid", "given", "family", "email", "status", "role", "nin"
};
static const char *const gnames[NGF] = {
	"id", "type", "short", "long", "parent", "term"
};
static const char *const mnames[NMF] = {
	"group", "person", "role", "status"
};

#define MAXCOLS	8	/* >= NPF, NGF, NMF */

/* One open CSV file with its header mapped. */
struct table {
	const char		*file;
	const char		*what;	/* "persons", ... */
	const char *const	*names;	/* model field names */
	size_t			 nmap;
	struct csv_reader	*cr;
	char			*hdrbuf;
	char			**hdr;
	size_t			 nhdr;
	long			 col[MAXCOLS];	/* header index, -1 unmapped */
	size_t			 records;
	int			 later;	/* a later part of the file: no
					 * header of its own */
	char			**f;	/* the current record */
	size_t			*l;
	struct rejects		*rj;
	/* Called before every reject, to keep rejects in line order. */
	int			(*flush)(void *);
	void			*flusharg;
};

#define HUGE_PAGE	(2 * 1024 * 1024)

/* The last value of a column and what it meant, for role and status
 * columns that repeat a handful of values ten million times. */
struct memo {
	char			 v[32];
	size_t			 len;	/* > sizeof(v): empty memo */
	int			 res;
};
#define MEMO_INIT	{ "", SIZE_MAX, 0 }

/*
 * Memberships wait in a short queue between parsing and the group and
 * person lookups, so the lookups' cache misses are prefetched while the
 * next rows are parsed.  A key the row before had too (a group's
 * members listed together, or a person's classes) is not looked up
 * again.  A key too long to queue is looked up at once after the queue
 * is drained; so is every reject, so rejects keep line order.
 */
#define MPIPE		16
#define MPIPE_KEY	48
struct mpend {
	uint64_t		 hash;	/* of the person key */
	uint64_t		 ghash;	/* of the group key */
	uint32_t		 line;
	uint32_t		 len;
	uint32_t		 glen;
	uint8_t			 role;
	uint8_t			 active;
	uint8_t			 psame;	/* the person of the entry before */
	uint8_t			 gsame;	/* its group */
	char			 key[MPIPE_KEY];
	char			 gkey[MPIPE_KEY];
};
struct mstate {
	struct roster		*r;
	struct table		*t;
	struct keyindex		 pk, gk;
	struct linemap		 lines;	/* of r->members */
	struct mpend		 q[MPIPE];
	size_t			 qhead, qlen;
	struct mpend		*qlast;	/* the entry queued last, or NULL */
	long			 lastp, lastg;	/* the last finished entry's */
};

static void
table_close(struct table *t)
{
	csv_close(t->cr);
	free(t->hdrbuf);
	free(t->hdr);
	t->cr = NULL;
	t->hdrbuf = NULL;
	t->hdr = NULL;
}

/* Keep a copy of the header record.  0 or -1. */
static int
table_keep_header(struct table *t, char **f, const size_t *l, size_t n)
{
	size_t i, total = 0;
	char *p;

	for (i = 0; i < n; i++)
		total += l[i] + 1;
	if ((t->hdrbuf = malloc(total)) == NULL ||
	    (t->hdr = calloc(n, sizeof(*t->hdr))) == NULL)
		return error_sys("%s", t->file);
	p = t->hdrbuf;
	for (i = 0; i < n; i++) {
		memcpy(p, f[i], l[i] + 1);
		t->hdr[i] = p;
		p += l[i] + 1;
	}
	t->nhdr = n;
	return 0;
}

/*
 * 1 if a record of n fields with lengths l is a header's nhdr fields
 * followed by empty ones only (a trailing delimiter), which a reading
 * rule ignores; 0 otherwise.
 */
int
csv_extra_empty(const size_t *l, size_t n, size_t nhdr)
{
	size_t i;

	if (n <= nhdr)
		return 0;
	for (i = nhdr; i < n; i++)
		if (l[i] != 0)
			return 0;
	return 1;
}

/*
 * Trim spaces, tabs, CR and LF around field i of a record in place
 * (its start moves, a NUL ends it), so that keys compare as the model
 * stores them (roster.c trims every value).
 */
void
csv_trim_field(char **f, size_t *l, size_t i)
{
	char *p = f[i];
	size_t n = l[i];

	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' ||
	    p[n - 1] == '\r' || p[n - 1] == '\n'))
		n--;
	while (n > 0 && (*p == ' ' || *p == '\t' || *p == '\r' ||
	    *p == '\n')) {
		p++;
		n--;
	}
	if (n == l[i])
		return;
	p[n] = '\0';
	f[i] = p;
	l[i] = n;
}

/*
 * 1 if the header cell h names the column want, compared in any case
 * with spaces and tabs ignored ("First Name" is "firstname"), else 0.
 */
int
csv_header_match(const char *h, const char *want)
{
	for (;;) {
		while (*h == ' ' || *h == '\t')
			h++;
		while (*want == ' ' || *want == '\t')
			want++;
		if (*h == '\0' || *want == '\0')
			return *h == *want;
		if (tolower((unsigned char)*h) != tolower((unsigned char)*want))
			return 0;
		h++;
		want++;
	}
}

/*
 * The header as found, for the error of a missing column: "; the
 * header has: a, b, c" (cut to fit len), and when a cell holds another
 * usual separator than delim, a hint that the file uses it.  Returns
 * buf.
 */
const char *
csv_header_hint(char *const *h, size_t n, char delim, char *buf,
    size_t len)
{
	static const char seps[] = ";,\t|";
	char sb[128], name[8];
	size_t i, o;
	const char *sep = NULL;
	int k;

	o = (size_t)snprintf(buf, len, "; the header has: ");
	for (i = 0; i < n && o < len; i++) {
		k = snprintf(buf + o, len - o, "%s%s", i > 0 ? ", " : "",
		    rejects_quote(h[i], strlen(h[i]), sb, sizeof(sb)));
		if (k < 0)
			break;
		o += (size_t)k;
	}
	for (i = 0; i < n && sep == NULL; i++)
		for (k = 0; seps[k] != '\0' && sep == NULL; k++)
			if (seps[k] != delim && strchr(h[i], seps[k]) != NULL)
				sep = &seps[k];
	if (sep != NULL && o < len) {
		if (*sep == '\t')
			snprintf(name, sizeof(name), "\\t");
		else
			snprintf(name, sizeof(name), "%c", *sep);
		snprintf(buf + o, len - o, " (it looks '%s'-separated: set "
		    "source.delimiter)", name);
	}
	return buf;
}

/*
 * Open a file, read its header and find the column of every mapped
 * field.  A required field (bit in required) must be mapped.  Returns
 * 0 or -1 (file missing, empty, bad header, column missing).
 */
static int
table_open(struct table *t, const char *file, const char *what,
    const struct config *cfg, char *const *map, const char *const *names, size_t nmap,
    unsigned required, struct rejects *rj)
{
	char **f, hint[512], delim = cfg->source.delimiter;
	size_t *l, i, j;
	int n;

	memset(t, 0, sizeof(*t));
	t->file = file;
	t->what = what;
	t->names = names;
	t->nmap = nmap;
	t->rj = rj;
	if (file == NULL || *file == '\0')
		return error_set("source.%s: no file configured", what);
	for (i = 0; i < nmap; i++)
		if ((required & (1u << i)) &&
		    (map[i] == NULL || *map[i] == '\0'))
			return error_set("source.columns.%s.%s: not mapped "
			    "(required)", what, names[i]);
	if ((t->cr = csv_open(file, delim)) == NULL ||
	    csv_set_encoding(t->cr, cfg->source.encoding) == -1)
		return -1;
	if ((n = csv_next_header(t->cr, &f, &l)) == -1)
		return -1;
	if (n == 0)
		return error_set("%s: empty file (no header)", file);
	if (table_keep_header(t, f, l, (size_t)n) == -1)
		return -1;
	for (i = 0; i < nmap; i++) {
		t->col[i] = -1;
		if (map[i] == NULL)
			continue;
		for (j = 0; j < t->nhdr; j++) {
			if (!csv_header_match(t->hdr[j], map[i]))
				continue;
			if (t->col[i] != -1)
				return error_set("%s:%lu: column '%s' "
				    "(field %s) appears twice in header",
				    file, csv_line(t->cr), map[i], names[i]);
			t->col[i] = (long)j;
		}
		if (t->col[i] == -1)
			return error_set("%s:%lu: column '%s' (field %s) not "
			    "in header%s", file, csv_line(t->cr), map[i],
			    names[i], csv_header_hint(t->hdr, t->nhdr, delim,
			    hint, sizeof(hint)));
	}
	return 0;
}

/*
 * Reject a record of t that started on line: "file:line: field:
 * reason".  Returns 2, or -1 on an I/O error.
 */
static int
table_reject_at(struct table *t, unsigned long line, const char *field,
    const char *fmt, ...)
{
	va_list ap;
	char msg[256];

	if (t->flush != NULL && t->flush(t->flusharg) == -1)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return rejects_add(t->rj, t->file, line, field, "%s", msg) == -1 ?
	    -1 : 2;
}

/*
 * Read the next record and do the checks common to every file: well
 * formed, as many fields as the header, valid UTF-8 and no NUL byte in
 * every mapped field.  Returns 1 (a record in t->f, t->l), 2
 * (rejected), 0 at the end (-1 if there was no data record), or -1 on
 * a fatal error.
 */
static int
table_next(struct table *t)
{
	const char *why;
	size_t i, c;
	int n;

	if ((n = csv_next(t->cr, &t->f, &t->l)) == 0) {
		if (t->records == 0 && !t->later)
			return error_set("%s: no data records (header only)",
			    t->file);
		return 0;
	}
	if (n == -1 && csv_fatal(t->cr))
		return -1;
	t->records++;
	t->rj->records++;
	if (n == -1)
		return table_reject_at(t, csv_line(t->cr), "record",
		    "%s (column %zu)", t->cr->why ? t->cr->why : "malformed",
		    t->cr->whyfield + 1);
	if ((size_t)n != t->nhdr && !csv_extra_empty(t->l, (size_t)n, t->nhdr))
		return table_reject_at(t, csv_line(t->cr), "record",
		    "%d fields, header has %zu", n, t->nhdr);
	for (i = 0; i < t->nmap; i++) {
		if (t->col[i] == -1)
			continue;
		c = (size_t)t->col[i];
		/* Strings end at a NUL: "a\0b" would be stored as "a". */
		if ((why = csv_field_fault(t->f[c], t->l[c])) != NULL)
			return table_reject_at(t, csv_line(t->cr),
			    t->names[i], "%s", why);
		csv_trim_field(t->f, t->l, c);
	}
	return 1;
}

/* The value of model field i in the current record, or "" unmapped. */
static const char *
table_val(const struct table *t, size_t i)
{
	return t->col[i] == -1 ? "" : t->f[t->col[i]];
}

/* Its length. */
static size_t
table_len(const struct table *t, size_t i)
{
	return t->col[i] == -1 ? 0 : t->l[t->col[i]];
}


/*
 * Reject the current record of t for field i, quoting the value when
 * there is one.  Returns 2, or -1 on I/O error.
 */
static int
table_reject(struct table *t, size_t i, const char *reason)
{
	char sb[64];

	if (table_len(t, i) == 0)
		return table_reject_at(t, csv_line(t->cr), t->names[i], "%s",
		    reason);
	return table_reject_at(t, csv_line(t->cr), t->names[i], "%s '%s'",
	    reason, rejects_quote(table_val(t, i), table_len(t, i), sb,
	    sizeof(sb)));
}

/* 1 and *res set if the memo holds the value v (len bytes). */
static int
memo_get(const struct memo *mo, const char *v, size_t len, int *res)
{
	if (len != mo->len || memcmp(mo->v, v, len) != 0)
		return 0;
	*res = mo->res;
	return 1;
}

/* Remember what v meant.  Returns res. */
static int
memo_put(struct memo *mo, const char *v, size_t len, int res)
{
	if (len < sizeof(mo->v)) {
		memcpy(mo->v, v, len);
		mo->len = len;
		mo->res = res;
	}
	return res;
}

/*
 * The status in field i: 1 or 0; 1 when unmapped.  -1 if the value is
 * empty or not a status (the record is to be rejected).  mo remembers
 * the last value.
 */
static int
table_status(const struct table *t, size_t i, struct memo *mo)
{
	int res;

	if (t->col[i] == -1)
		return 1;
	if (memo_get(mo, table_val(t, i), table_len(t, i), &res))
		return res;
	return memo_put(mo, table_val(t, i), table_len(t, i),
	    status_parse(table_val(t, i)));
}

/* Reject for a bad status in field i.  2 or -1. */
static int
table_bad_status(struct table *t, size_t i)
{
	return table_reject(t, i, table_len(t, i) == 0 ?
	    "missing value" : "unknown status");
}

/* Update *newest with the file's modification time. */
static void
table_mtime(const struct table *t, time_t *newest)
{
	if (t->cr->st.st_mtime > *newest)
		*newest = t->cr->st.st_mtime;
}

/*
 * The records of a persons table t into r, up to the end of the file
 * or of t's part of it.  0 or -1.
 */
static int
persons_loop(struct table *t, struct roster *r)
{
	struct person p;
	struct memo smemo = MEMO_INIT;
	const char *irole = NULL;
	int rc, active;

	while ((rc = table_next(t)) > 0) {
		if (rc == 2)
			continue;
		rc = 0;
		active = 1;
		if (table_len(t, PF_ID) == 0)
			rc = table_reject(t, PF_ID, "empty key");
		else if (table_len(t, PF_GIVEN) == 0)
			rc = table_reject(t, PF_GIVEN, "missing value");
		else if (table_len(t, PF_FAMILY) == 0)
			rc = table_reject(t, PF_FAMILY, "missing value");
		else if ((active = table_status(t, PF_STATUS, &smemo)) == -1)
			rc = table_bad_status(t, PF_STATUS);
		else if (table_len(t, PF_ROLE) > 0 && (irole =
		    institution_role_parse(table_val(t, PF_ROLE))) == NULL)
			rc = table_reject(t, PF_ROLE,
			    "unknown institution role");
		if (rc == -1)
			return -1;
		if (rc == 2)
			continue;
		memset(&p, 0, sizeof(p));
		p.id = table_val(t, PF_ID);
		p.userid = table_val(t, PF_USERID);
		p.given = table_val(t, PF_GIVEN);
		p.family = table_val(t, PF_FAMILY);
		p.email = table_val(t, PF_EMAIL);
		p.role = table_len(t, PF_ROLE) > 0 ? irole : "";
		p.nin = table_val(t, PF_NIN);
		p.line = (uint32_t)csv_line(t->cr);
		p.active = (uint8_t)active;
		if (roster_add_person(r, &p) == -1)
			return -1;
	}
	return rc == -1 ? -1 : 0;
}

static struct part	*part_start(const struct config *, struct table *,
			    const struct mstate *);
static int		 part_join(const struct config *, struct part *,
			    struct table *, struct roster *, struct mstate *,
			    int);

static int
read_persons(const struct config *cfg, struct roster *r,
    struct rejects *rj, time_t *newest)
{
	struct table t;
	struct part *part;
	int rc;

	if (table_open(&t, cfg->source.persons, "persons",
	    cfg, cfg->source.pcol, pnames, NPF,
	    1u << PF_ID | 1u << PF_GIVEN | 1u << PF_FAMILY, rj) == -1)
		goto fail;
	table_mtime(&t, newest);
	part = part_start(cfg, &t, NULL);
	rc = persons_loop(&t, r);
	if (part != NULL)
		rc = part_join(cfg, part, &t, r, NULL, rc);
	if (rc == -1)
		goto fail;
	table_close(&t);
	return 0;
fail:
	table_close(&t);
	return -1;
}

static int
read_groups(const struct config *cfg, struct roster *r,
    struct rejects *rj, time_t *newest)
{
	struct table t;
	struct group g;
	int rc;

	if (table_open(&t, cfg->source.groups, "groups",
	    cfg, cfg->source.gcol, gnames, NGF,
	    1u << GF_ID | 1u << GF_SHORT, rj) == -1)
		goto fail;
	table_mtime(&t, newest);
	while ((rc = table_next(&t)) > 0) {
		if (rc == 2)
			continue;
		rc = 0;
		if (table_len(&t, GF_ID) == 0)
			rc = table_reject(&t, GF_ID, "empty key");
		else if (table_len(&t, GF_SHORT) == 0)
			rc = table_reject(&t, GF_SHORT, "missing value");
		if (rc == -1)
			goto fail;
		if (rc == 2)
			continue;
		memset(&g, 0, sizeof(g));
		g.id = table_val(&t, GF_ID);
		g.type = table_val(&t, GF_TYPE);
		g.shortname = table_val(&t, GF_SHORT);
		g.longname = table_val(&t, GF_LONG);
		g.parent = table_val(&t, GF_PARENT);
		g.term = table_val(&t, GF_TERM);
		g.line = (uint32_t)csv_line(t.cr);
		if (roster_add_group(r, &g) == -1)
			goto fail;
	}
	if (rc == -1)
		goto fail;
	table_close(&t);
	return 0;
fail:
	table_close(&t);
	return -1;
}

/*
 * A hash of len bytes, eight at a time (keys are short: one or two
 * multiplies), mixed so both the low bits (the slot) and the high bits
 * (the fingerprint) depend on every byte.  Never fails.
 */
uint64_t
keyindex_hash(const char *s, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ len, w;

	for (; len >= 8; s += 8, len -= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	if (len > 0) {
		w = 0;
		memcpy(&w, s, len);
		h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	}
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	return h ^ (h >> 32);
}

#define KI_AHEAD	8	/* keys hashed ahead of the insert */
#define KI_KEY(ki, i)	(*(const char *const *)(const void *) \
			    ((const char *)(ki)->base + (i) * (ki)->stride))

/* A key's hash and length, computed ahead of its insert. */
struct ki_hashed {
	uint64_t	hv;
	size_t		len;
};

/* Hash key i of ki and start loading its slot. */
static struct ki_hashed
ki_ahead(const struct keyindex *ki, size_t i)
{
	struct ki_hashed r;
	const char *k = KI_KEY(ki, i);

	r.len = strlen(k);
	r.hv = keyindex_hash(k, r.len);
	mem_prefetch(&ki->slot[(size_t)r.hv & ki->mask]);
	return r;
}

/*
 * Index n keys: the key of element i is the string pointer at
 * base + i * stride (the id member of a person or group array).
 * Returns 0, or -1 (error set) on no memory or too many keys.
 */
int
keyindex_build(struct keyindex *ki, const void *base, size_t stride,
    size_t n)
{
	struct ki_hashed ring[KI_AHEAD], r;
	size_t cap = 16, i, h, len, bytes;
	uint64_t hv;
	const char *k;
	void *mem;

	while (cap < n + n / 2)
		cap *= 2;
	if (n >= UINT32_MAX)
		return error_set("key index: too many keys");
	bytes = cap * sizeof(struct keyindex_slot);
	if (posix_memalign(&mem, bytes >= HUGE_PAGE ? HUGE_PAGE : 64,
	    bytes) != 0)
		return error_set("key index: out of memory");
#ifdef MADV_HUGEPAGE
	/* Random probes into a big table: spare the TLB (best effort). */
	if (bytes >= HUGE_PAGE)
		(void)madvise(mem, bytes, MADV_HUGEPAGE);
#endif
	memset(mem, 0, bytes);
	ki->slot = mem;
	ki->mask = cap - 1;
	ki->base = base;
	ki->stride = stride;
	/*
	 * The keys lie in the export's order and the slots anywhere: key
	 * i + 2 * KI_AHEAD is prefetched, key i + KI_AHEAD hashed and its
	 * slot prefetched, key i inserted (from the ring of hashes).
	 */
	for (i = 0; i < n && i < KI_AHEAD; i++)
		ring[i] = ki_ahead(ki, i);
	for (i = 0; i < n; i++) {
		if (i + 2 * KI_AHEAD < n)
			mem_prefetch(KI_KEY(ki, i + 2 * KI_AHEAD));
		r = ring[i % KI_AHEAD];
		if (i + KI_AHEAD < n)
			ring[i % KI_AHEAD] = ki_ahead(ki, i + KI_AHEAD);
		k = KI_KEY(ki, i);
		len = r.len;
		hv = r.hv;
		h = (size_t)hv & ki->mask;
		while (ki->slot[h].pos != 0)
			h = (h + 1) & ki->mask;
		ki->slot[h].pos = (uint32_t)(i + 1);
		ki->slot[h].fp = (uint32_t)(hv >> 32);
		if (len <= KEY_INLINE)
			memcpy(ki->slot[h].key, k, len);
	}
	return 0;
}

/* Start loading the slot where a key of hash hv is.  Never fails. */
void
keyindex_prefetch(const struct keyindex *ki, uint64_t hv)
{
	mem_prefetch(&ki->slot[(size_t)hv & ki->mask]);
}

/*
 * The position of key (len bytes, hash hv) among the indexed elements,
 * or -1 (none, or len 0).
 */
long
keyindex_find(const struct keyindex *ki, const char *key, size_t len,
    uint64_t hv)
{
	size_t h = (size_t)hv & ki->mask;
	uint32_t fp = (uint32_t)(hv >> 32);
	const struct keyindex_slot *ks;
	const char *k;

	if (len == 0)
		return -1;
	for (; (ks = &ki->slot[h])->pos != 0; h = (h + 1) & ki->mask) {
		if (ks->fp != fp)
			continue;
		if (len <= KEY_INLINE) {
			/* Inline keys are NUL-padded; a long key's is "". */
			if (memcmp(ks->key, key, len) == 0 &&
			    ks->key[len] == '\0')
				return (long)(ks->pos - 1);
			continue;
		}
		k = *(const char *const *)(const void *)
		    (ki->base + (ks->pos - 1) * ki->stride);
		if (memcmp(k, key, len) == 0 && k[len] == '\0')
			return (long)(ks->pos - 1);
	}
	return -1;
}

/* Free what an index holds; it is empty afterwards.  Never fails. */
void
keyindex_free(struct keyindex *ki)
{
	free(ki->slot);
	memset(ki, 0, sizeof(*ki));
}

/* A role name or code, the config's map first: 1..8, or 0. */
static int
role_lookup(const struct config *cfg, const char *v)
{
	size_t i;

	for (i = 0; i < cfg->source.nroles; i++)
		if (cfg->source.roles[i].name != NULL &&
		    strcasecmp(cfg->source.roles[i].name, v) == 0)
			return cfg->source.roles[i].role >= 1 &&
			    cfg->source.roles[i].role <= 8 ?
			    cfg->source.roles[i].role : 0;
	return role_parse(v);
}

/* The role in the current membership record: 1..8, or 0 if unknown. */
static int
member_role(const struct config *cfg, const struct table *t,
    struct memo *mo)
{
	const char *v;
	int res;

	if (t->col[MF_ROLE] == -1)
		return 1;	/* 01 Learner */
	v = table_val(t, MF_ROLE);
	if (*v == '\0')
		return 0;
	if (memo_get(mo, v, table_len(t, MF_ROLE), &res))
		return res;
	return memo_put(mo, v, table_len(t, MF_ROLE), role_lookup(cfg, v));
}

/* Add a resolved membership and keep its line.  0 or -1. */
static int
member_add(struct mstate *ms, const struct mpend *e, long gi, long pi)
{
	struct membership m;

	memset(&m, 0, sizeof(m));
	m.group = (uint32_t)gi;
	m.person = (uint32_t)pi;
	m.role = e->role;
	m.active = e->active;
	if (roster_add_member(ms->r, &m) == -1)
		return -1;
	return linemap_add(&ms->lines, e->line);
}

/*
 * Look up the group and the person of a queued membership (key and
 * gkey: their keys) and add it, or reject it naming the unknown group,
 * else the unknown person.  0 or -1.
 */
static int
member_finish(struct mstate *ms, const struct mpend *e, const char *key,
    const char *gkey)
{
	char sb[64];
	long gi, pi;

	gi = e->gsame ? ms->lastg :
	    keyindex_find(&ms->gk, gkey, e->glen, e->ghash);
	pi = e->psame ? ms->lastp :
	    keyindex_find(&ms->pk, key, e->len, e->hash);
	ms->lastg = gi;
	ms->lastp = pi;
	if (gi == -1)
		return rejects_add(ms->t->rj, ms->t->file, e->line, "group",
		    "unknown group '%s'", rejects_quote(gkey, e->glen, sb,
		    sizeof(sb)));
	if (pi == -1)
		return rejects_add(ms->t->rj, ms->t->file, e->line, "person",
		    "unknown person '%s'", rejects_quote(key, e->len, sb,
		    sizeof(sb)));
	return member_add(ms, e, gi, pi);
}

/* Finish every queued membership, in order.  0 or -1. */
static int
member_drain(void *arg)
{
	struct mstate *ms = arg;
	struct mpend *e;

	while (ms->qlen > 0) {
		e = &ms->q[ms->qhead];
		ms->qhead = (ms->qhead + 1) % MPIPE;
		ms->qlen--;
		if (member_finish(ms, e, e->key, e->gkey) == -1)
			return -1;
	}
	ms->qlast = NULL;
	return 0;
}

/*
 * Queue the current record's membership (role and status already
 * checked), finishing the oldest one when the queue is full.  0 or -1.
 */
static int
member_queue(struct mstate *ms, int role, int active)
{
	const char *key = table_val(ms->t, MF_PERSON);
	const char *gkey = table_val(ms->t, MF_GROUP);
	size_t len = table_len(ms->t, MF_PERSON);
	size_t glen = table_len(ms->t, MF_GROUP);
	const struct mpend *last;
	struct mpend *e, now;

	if (len >= MPIPE_KEY || glen >= MPIPE_KEY) {
		/* Too long to queue: finish the queue, then this one. */
		if (member_drain(ms) == -1)
			return -1;
		memset(&now, 0, sizeof(now));
		now.hash = keyindex_hash(key, len);
		now.ghash = keyindex_hash(gkey, glen);
		now.line = (uint32_t)csv_line(ms->t->cr);
		now.len = (uint32_t)len;
		now.glen = (uint32_t)glen;
		now.role = (uint8_t)role;
		now.active = (uint8_t)active;
		return member_finish(ms, &now, key, gkey);
	}
	if (ms->qlen == MPIPE) {
		e = &ms->q[ms->qhead];
		ms->qhead = (ms->qhead + 1) % MPIPE;
		ms->qlen--;
		if (member_finish(ms, e, e->key, e->gkey) == -1)
			return -1;
	}
	last = ms->qlast;
	e = &ms->q[(ms->qhead + ms->qlen) % MPIPE];
	ms->qlen++;
	ms->qlast = e;
	e->line = (uint32_t)csv_line(ms->t->cr);
	e->role = (uint8_t)role;
	e->active = (uint8_t)active;
	e->psame = last != NULL && last->len == len &&
	    memcmp(last->key, key, len) == 0;
	e->gsame = last != NULL && last->glen == glen &&
	    memcmp(last->gkey, gkey, glen) == 0;
	e->len = (uint32_t)len;
	e->glen = (uint32_t)glen;
	memcpy(e->key, key, len);
	e->key[len] = '\0';
	memcpy(e->gkey, gkey, glen);
	e->gkey[glen] = '\0';
	if (!e->psame) {
		e->hash = keyindex_hash(key, len);
		keyindex_prefetch(&ms->pk, e->hash);
	}
	if (!e->gsame) {
		e->ghash = keyindex_hash(gkey, glen);
		keyindex_prefetch(&ms->gk, e->ghash);
	}
	return 0;
}

/* Free what a memberships read holds. */
static void
mstate_free(struct mstate *ms)
{
	linemap_free(&ms->lines);
	keyindex_free(&ms->pk);
	keyindex_free(&ms->gk);
}

/*
 * The records of a memberships table t into ms, up to the end of the
 * file or of t's part of it.  0 or -1.
 */
static int
members_loop(const struct config *cfg, struct table *t, struct mstate *ms)
{
	struct memo smemo = MEMO_INIT, rmemo = MEMO_INIT;
	int rc, role, active;

	while ((rc = table_next(t)) > 0) {
		if (rc == 2)
			continue;
		rc = 0;
		role = active = 0;
		if (table_len(t, MF_GROUP) == 0)
			rc = table_reject(t, MF_GROUP, "empty key");
		else if (table_len(t, MF_PERSON) == 0)
			rc = table_reject(t, MF_PERSON, "empty key");
		else if ((role = member_role(cfg, t, &rmemo)) == 0)
			rc = table_reject(t, MF_ROLE,
			    table_len(t, MF_ROLE) == 0 ?
			    "missing value" : "unknown role");
		else if ((active = table_status(t, MF_STATUS, &smemo)) == -1)
			rc = table_bad_status(t, MF_STATUS);
		if (rc == 0)
			rc = member_queue(ms, role, active);
		if (rc == -1)
			return -1;
	}
	if (rc == -1 || member_drain(ms) == -1)
		return -1;
	return 0;
}

/*
 * A big persons or memberships file is read in two parts on two cores:
 * the first part by the calling thread, the second, from a cut at a
 * line start in the middle, by a thread of its own, each into its own
 * persons or memberships and rejects (memberships looking keys up in
 * the same, read-only, key tables).  The cut is only known to be
 * between two records once the first part's reader reaches it: if a
 * record (a quoted line break) straddles it, the second part is thrown
 * away and the first reader reads on to the end, as if the file had
 * never been cut.  Otherwise the second part's records follow the
 * first's, its line numbers (counted from the cut) moved by the first
 * part's lines, and its rejects follow the first's: the result is the
 * one reading the file in one go gives.
 */
#define SPLIT_MIN	(64 * 1024 * 1024)	/* bytes of records */
#define SPLIT_SEARCH	(1024 * 1024)		/* for a line start */

struct part {
	pthread_t		 tid;
	const struct config	*cfg;
	struct table		 t;	/* its header is the first part's */
	int			 members;	/* 0: persons */
	struct mstate		 ms;	/* members */
	struct roster		 r;	/* only its persons or memberships */
	struct rejects		 rj;	/* into mem, lines from the cut */
	char			*mem;
	size_t			 memlen;
	off_t			 cut;
	int			 rc;
	char			 err[1024];
};

/* The least size of records worth a second part: SISFEED_CSV_SPLIT
 * (bytes; the tests set it low to read small files in two parts), else
 * SPLIT_MIN. */
static off_t
split_min(void)
{
	const char *v = getenv("SISFEED_CSV_SPLIT");
	char *end;
	long long n;

	if (v == NULL || *v == '\0')
		return SPLIT_MIN;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < 1)
		return SPLIT_MIN;
	return (off_t)n;
}

/*
 * Where to cut the file of reader cr (records from `from` on): the
 * start of the first line with something on it after the middle, or -1
 * when there is none near it.
 */
static off_t
split_point(const struct csv_reader *cr, off_t from)
{
	unsigned char buf[64 * 1024];
	off_t size = cr->st.st_size, at, end;
	ssize_t n, i;

	at = from + (size - from) / 2;
	end = at + SPLIT_SEARCH < size ? at + SPLIT_SEARCH : size;
	while (at < end) {
		if ((n = pread(cr->fd, buf, sizeof(buf), at)) <= 0)
			return -1;
		for (i = 0; i + 1 < n; i++)
			if (buf[i] == '\n' && buf[i + 1] != '\n' &&
			    buf[i + 1] != '\r')
				return at + i + 1;
		at += n > 1 ? n - 1 : n;
	}
	return -1;
}

/* The second part's thread: its records into its own state. */
static void *
part_main(void *arg)
{
	struct part *p = arg;

	p->rc = p->members ? members_loop(p->cfg, &p->t, &p->ms) :
	    persons_loop(&p->t, &p->r);
	if (p->rc == -1)
		snprintf(p->err, sizeof(p->err), "%s", error_last());
	return NULL;
}

/* Free what the second part holds (not what it shares). */
static void
part_free(struct part *p)
{
	if (p == NULL)
		return;
	csv_close(p->t.cr);
	memset(&p->ms.pk, 0, sizeof(p->ms.pk));	/* the first part's */
	memset(&p->ms.gk, 0, sizeof(p->ms.gk));
	linemap_free(&p->ms.lines);
	roster_free(&p->r);
	if (p->rj.fp != NULL)
		fclose(p->rj.fp);
	free(p->mem);
	free(p);
}

/*
 * Start reading the second part of t's file (memberships with the key
 * tables of ms, or persons when ms is NULL) on a thread of its own when
 * the file is big, plain (not converted, not from a zip) and there are
 * two cores; t's reader then stops at the cut.  The part, or NULL to
 * read the file in one go (nothing to report: that is always right).
 */
static struct part *
part_start(const struct config *cfg, struct table *t,
    const struct mstate *ms)
{
	struct csv_reader *cr = t->cr;
	struct part *p;
	off_t from, cut;

	if (cr->in != NULL || cr->fd == -1 || !S_ISREG(cr->st.st_mode) ||
	    sysconf(_SC_NPROCESSORS_ONLN) < 2 || cr->skiplf)
		return NULL;
	from = cr->abs + (off_t)cr->pos;
	if (cr->st.st_size - from < split_min() ||
	    (cut = split_point(cr, from)) == -1)
		return NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->cfg = cfg;
	p->cut = cut;
	p->t = *t;
	p->t.later = 1;
	p->t.records = 0;
	p->t.rj = &p->rj;
	p->t.flush = NULL;
	p->t.flusharg = NULL;
	roster_init(&p->r);
	if ((p->t.cr = csv_open(t->file, cfg->source.delimiter)) == NULL ||
	    lseek(p->t.cr->fd, cut, SEEK_SET) != cut ||
	    (p->rj.fp = open_memstream(&p->mem, &p->memlen)) == NULL) {
		part_free(p);
		return NULL;
	}
	p->t.cr->abs = cut;
	p->t.cr->started = 1;	/* no byte order mark mid-file */
	p->t.cr->nhdr = cr->nhdr;
	if (ms != NULL) {
		p->members = 1;
		p->t.flush = member_drain;
		p->t.flusharg = &p->ms;
		p->ms.r = &p->r;
		p->ms.t = &p->t;
		p->ms.pk = ms->pk;
		p->ms.gk = ms->gk;
		p->ms.lastg = p->ms.lastp = -1;
	}
	if (thread_start(&p->tid, part_main, p) != 0) {
		part_free(p);
		return NULL;
	}
	cr->stop_at = cut;
	return p;
}

/*
 * Where the rest of message s[0..len) starts after its "FILE:LINE"
 * (as rejects_add and the reader write them), *line set; NULL if it
 * has not that shape.
 */
static const char *
reline_rest(const char *s, size_t len, const char *file,
    unsigned long *line)
{
	size_t flen = strlen(file);
	char *end;

	if (len <= flen + 1 || strncmp(s, file, flen) != 0 ||
	    s[flen] != ':' || s[flen + 1] < '0' || s[flen + 1] > '9')
		return NULL;
	*line = strtoul(s + flen + 1, &end, 10);
	return end;
}

/* The message s (LINE counted from the cut) with LINE moved by lines,
 * into out (cut to fit). */
static void
reline(char *out, size_t outsz, const char *s, const char *file,
    unsigned long lines)
{
	const char *rest;
	unsigned long line;

	if ((rest = reline_rest(s, strlen(s), file, &line)) != NULL)
		snprintf(out, outsz, "%s:%lu%s", file, line + lines, rest);
	else
		snprintf(out, outsz, "%s", s);
}

/*
 * The second part's rejects after the first part's in rj, each line
 * number moved by `lines`, and its counts added.  0 or -1.
 */
static int
part_rejects(struct part *p, struct rejects *rj, const char *file,
    unsigned long lines)
{
	const char *s, *nl, *end, *rest;
	unsigned long line;
	int n;

	if (fflush(p->rj.fp) == EOF)
		return error_sys("rejects");
	rj->records += p->rj.records;
	rj->notes += p->rj.notes;
	rj->dependents += p->rj.dependents;
	if (p->rj.count > 0 && rj->count == 0)
		reline(rj->first, sizeof(rj->first), p->rj.first, file, lines);
	rj->count += p->rj.count;
	if (rj->fp == NULL || p->mem == NULL)
		return 0;
	end = p->mem + p->memlen;
	for (s = p->mem; s < end; s = nl + 1) {
		if ((nl = memchr(s, '\n', (size_t)(end - s))) == NULL)
			nl = end;
		if ((rest = reline_rest(s, (size_t)(nl - s), file, &line))
		    != NULL)
			n = fprintf(rj->fp, "%s:%lu%.*s\n", file, line + lines,
			    (int)(nl - rest), rest);
		else
			n = fprintf(rj->fp, "%.*s\n", (int)(nl - s), s);
		if (n < 0)
			return error_sys("rejects");
	}
	return 0;
}

/* The second part's memberships and their lines (moved by `lines`)
 * after the first's in ms.  0 or -1. */
static int
part_join_members(struct part *p, struct mstate *ms, unsigned long lines)
{
	if (roster_append_members(ms->r, &p->r) == -1)
		return -1;
	return linemap_append(&ms->lines, &p->ms.lines, (uint32_t)lines);
}

/*
 * Wait for the second part p and join it to the first (t; ms for
 * memberships, NULL for persons, which go to r): its records and their
 * lines after the first's, its rejects after the first's.  If the first
 * part did not end right at the cut, the second is dropped and the
 * first reader reads on to the end.  rc is the first part's.  Frees p.
 * 0 or -1.
 */
static int
part_join(const struct config *cfg, struct part *p, struct table *t,
    struct roster *r, struct mstate *ms, int rc)
{
	char msg[sizeof(p->err)];
	unsigned long lines;

	if (pthread_join(p->tid, NULL) != 0)
		abort();	/* only a corrupt pthread_t fails */
	if (rc == -1)
		goto fail;
	if (t->cr->stopped != p->cut) {
		/* a record straddles the cut: read on in one go */
		t->cr->stop_at = 0;
		part_free(p);
		if (t->cr->stopped == -1)
			return 0;
		t->cr->stopped = -1;
		log_debug("%s: a record spans the middle: read in one part",
		    t->file);
		return ms != NULL ? members_loop(cfg, t, ms) :
		    persons_loop(t, r);
	}
	if (ms != NULL) {
		/* the key tables are done: not held through the copy */
		keyindex_free(&ms->pk);
		keyindex_free(&ms->gk);
	}
	lines = t->cr->line - 1;
	if (p->rc == -1) {
		/* its rejects up to the failure, as one read would leave */
		reline(msg, sizeof(msg), p->err, t->file, lines);
		(void)part_rejects(p, t->rj, t->file, lines);
		error_set("%s", msg);
		goto fail;
	}
	if (lines > UINT32_MAX) {
		error_set("%s: more than %lu lines", t->file,
		    (unsigned long)UINT32_MAX);
		goto fail;
	}
	if ((ms != NULL ? part_join_members(p, ms, lines) :
	    roster_append_persons(r, &p->r, (uint32_t)lines)) == -1 ||
	    part_rejects(p, t->rj, t->file, lines) == -1)
		goto fail;
	part_free(p);
	return 0;
fail:
	part_free(p);
	return -1;
}

static int
read_members(const struct config *cfg, struct roster *r,
    struct rejects *rj, time_t *newest)
{
	struct table t;
	struct mstate ms;
	struct part *part;
	int rc;

	memset(&ms, 0, sizeof(ms));
	ms.r = r;
	ms.t = &t;
	ms.lastg = ms.lastp = -1;
	if (table_open(&t, cfg->source.memberships, "memberships",
	    cfg, cfg->source.mcol, mnames, NMF,
	    1u << MF_GROUP | 1u << MF_PERSON, rj) == -1)
		goto fail;
	t.flush = member_drain;
	t.flusharg = &ms;
	table_mtime(&t, newest);
	if (keyindex_build(&ms.pk, r->npersons ? &r->persons[0].id : NULL,
	    sizeof(struct person), r->npersons) == -1 ||
	    keyindex_build(&ms.gk, r->ngroups ? &r->groups[0].id : NULL,
	    sizeof(struct group), r->ngroups) == -1)
		goto fail;
	part = part_start(cfg, &t, &ms);
	rc = members_loop(cfg, &t, &ms);
	if (part != NULL)
		rc = part_join(cfg, part, &t, r, &ms, rc);
	if (rc == -1)
		goto fail;
	/* the key tables are done: not held through the sort's peak */
	keyindex_free(&ms.pk);
	keyindex_free(&ms.gk);
	if (roster_seal_members(r, rj, t.file, &ms.lines) == -1)
		goto fail;
	mstate_free(&ms);
	table_close(&t);
	return 0;
fail:
	mstate_free(&ms);
	table_close(&t);
	return -1;
}

/*
 * SOURCE_DATE_EPOCH as a time: 1 and *t set if it is set, 0 if not,
 * -1 (error set) if it is not a decimal number or out of range.
 * Public so that the OneRoster reader (oneroster.c) dates its roster
 * the same way.
 */
int
csv_source_date_epoch(time_t *t)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	unsigned long long v = 0;
	const char *p;

	if (s == NULL || *s == '\0')
		return 0;
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || v > (ULLONG_MAX - 9) / 10)
			return error_set("SOURCE_DATE_EPOCH: not a decimal "
			    "number: %.32s", s);
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v > (unsigned long long)INT64_MAX ||
	    (sizeof(time_t) < 8 && v > (unsigned long long)INT32_MAX))
		return error_set("SOURCE_DATE_EPOCH: out of range");
	*t = (time_t)v;
	return 1;
}

/*
 * Read the persons, groups and memberships files of cfg->source into
 * r (empty on entry), rejecting bad records into rj (may be NULL: count
 * nothing).  r->datetime is SOURCE_DATE_EPOCH when set, else the
 * newest modification time of the three files.  Returns 0 with r
 * sealed, or -1 with the error set (r must still be freed).
 */
int
csv_read_roster(const struct config *cfg, struct roster *r,
    struct rejects *rj)
{
	struct rejects none = { 0 };
	time_t newest = 0, sde = 0;
	int rc;

	if (rj == NULL)
		rj = &none;
	if ((rc = csv_source_date_epoch(&sde)) == -1)
		return -1;
	if (read_persons(cfg, r, rj, &newest) == -1 ||
	    read_groups(cfg, r, rj, &newest) == -1)
		return -1;
	if (roster_seal_entities(r, rj, cfg->source.persons,
	    cfg->source.groups) == -1)
		return -1;
	if (read_members(cfg, r, rj, &newest) == -1)
		return -1;
	r->datetime = rc == 1 ? sde : newest;
	return 0;
}
