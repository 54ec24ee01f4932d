/*
 * sbuf.c -- a growing string for the texts the agent builds (the
 * report, the mail).  Appends never fail on the spot: running out of
 * memory sets err, later appends do nothing, and sbuf_done says so.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sisfeed.h"

static void
sbuf_grow(struct sbuf *b, size_t more)
{
	size_t ncap;
	char *np;

	if (b->err || b->len + more + 1 <= b->cap)
		return;
	ncap = b->cap == 0 ? 1024 : b->cap;
	while (ncap < b->len + more + 1)
		ncap *= 2;
	if ((np = realloc(b->p, ncap)) == NULL) {
		b->err = 1;
		return;
	}
	b->p = np;
	b->cap = ncap;
}

/*
 * Append n bytes of s (kept NUL-terminated).
 */
void
sbuf_putn(struct sbuf *b, const char *s, size_t n)
{
	sbuf_grow(b, n);
	if (b->err)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/*
 * Append the string s.
 */
void
sbuf_puts(struct sbuf *b, const char *s)
{
	sbuf_putn(b, s, strlen(s));
}

/*
 * Append a formatted string.
 */
void
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = 1;
		return;
	}
	sbuf_grow(b, (size_t)n);
	if (b->err)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/*
 * The finished string, which the caller frees; or NULL with the error
 * "WHAT: out of memory" set (the buffer is freed then).
 */
char *
sbuf_done(struct sbuf *b, const char *what)
{
	if (!b->err && b->p == NULL)
		sbuf_putn(b, "", 0);
	if (b->err) {
		free(b->p);
		b->p = NULL;
		error_set("%s: out of memory", what);
		return NULL;
	}
	return b->p;
}

/*
 * Append s as one word a POSIX shell reads back unchanged: as it is
 * when it holds only safe characters, else in single quotes.
 */
void
sbuf_shell_word(struct sbuf *b, const char *s)
{
	static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789_./-+:,@=";
	const char *p;

	if (*s != '\0' && strspn(s, safe) == strlen(s)) {
		sbuf_puts(b, s);
		return;
	}
	sbuf_putn(b, "'", 1);
	for (p = s; *p != '\0'; p++) {
		if (*p == '\'')
			sbuf_puts(b, "'\\''");
		else
			sbuf_putn(b, p, 1);
	}
	sbuf_putn(b, "'", 1);
}
