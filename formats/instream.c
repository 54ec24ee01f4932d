/*
 * instream.c -- the bytes of one export file as the CSV reader reads
 * them: a plain file or a member of a .zip bundle (how OneRoster
 * exports are shipped), converted to UTF-8 on the way when
 * source.encoding names another encoding.
 *
 * Zip.  libzip parses the archive: the central directory of a file
 * from outside is better left to a maintained parser than to a
 * hand-written one.  A member is found by its name at the top of the
 * archive, or under the one folder every member is in (a zipped
 * folder); nothing is ever extracted to disk, so absolute or ".."
 * names do not matter.  A member is streamed, never held whole.  One
 * that states more than the cap uncompressed, inflates past what it
 * states, or is encrypted is refused (a zip bomb costs at most the
 * cap's worth of inflating).
 *
 * Encoding.  iconv (glibc) converts from the named encoding to UTF-8
 * in blocks as the reader asks for bytes.  A byte sequence the encoding
 * does not have is a fatal error naming the file, the line (counted in
 * the converted text) and the byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <zip.h>

#include "sisfeed.h"

#define IN_RAWSZ	(64 * 1024)

struct zipbundle {
	zip_t		*za;
	char		*path;
	char		*prefix;	/* "dir/" every member is under, or "" */
	uint64_t	 max;		/* bytes a member may inflate to */
};

struct instream {
	char		*name;		/* for errors */
	int		 fd;		/* a plain file, or -1 */
	zip_file_t	*zf;		/* a zip member, or NULL */
	uint64_t	 left;		/* zip: bytes the member still states */
	iconv_t		 cd;		/* (iconv_t)-1: no conversion */
	char		*enc;
	char		*raw;		/* bytes read, not yet converted */
	size_t		 rpos, rlen;
	int		 raweof;
	unsigned long	 line;		/* lines converted so far */
};

/*
 * The folder every member of za is under ("dir/"), ignoring macOS's
 * "__MACOSX/" entries, or "" when there is none.  NULL on no memory.
 */
static char *
zip_common_prefix(zip_t *za)
{
	zip_int64_t n = zip_get_num_entries(za, 0), i;
	const char *name, *slash, *first = NULL;
	size_t plen = 0;

	for (i = 0; i < n; i++) {
		if ((name = zip_get_name(za, (zip_uint64_t)i, 0)) == NULL)
			continue;
		if (strncmp(name, "__MACOSX/", 9) == 0)
			continue;
		if ((slash = strchr(name, '/')) == NULL)
			return strdup("");
		if (first == NULL) {
			first = name;
			plen = (size_t)(slash - name) + 1;
		} else if (strncmp(name, first, plen) != 0)
			return strdup("");
	}
	return first == NULL ? strdup("") : strndup(first, plen);
}

/*
 * Open the .zip at path; a member may inflate to at most max bytes.
 * Returns the bundle, or NULL with the error set (not a zip, damaged,
 * unreadable).
 */
struct zipbundle *
zipbundle_open(const char *path, uint64_t max)
{
	struct zipbundle *zb;
	zip_error_t ze;
	int err = 0;

	if ((zb = calloc(1, sizeof(*zb))) == NULL) {
		error_sys("%s", path);
		return NULL;
	}
	zb->max = max;
	if ((zb->path = strdup(path)) == NULL) {
		error_sys("%s", path);
		goto fail;
	}
	if ((zb->za = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &err)) ==
	    NULL) {
		zip_error_init_with_code(&ze, err);
		error_set("%s: not a readable zip file: %s", path,
		    zip_error_strerror(&ze));
		zip_error_fini(&ze);
		goto fail;
	}
	if ((zb->prefix = zip_common_prefix(zb->za)) == NULL) {
		error_sys("%s", path);
		goto fail;
	}
	return zb;
fail:
	zipbundle_close(zb);
	return NULL;
}

/* Close a bundle (NULL is fine). */
void
zipbundle_close(struct zipbundle *zb)
{
	if (zb == NULL)
		return;
	if (zb->za != NULL)
		zip_discard(zb->za);
	free(zb->prefix);
	free(zb->path);
	free(zb);
}

static struct instream *
instream_new(const char *name)
{
	struct instream *in;

	if ((in = calloc(1, sizeof(*in))) == NULL) {
		error_sys("%s", name);
		return NULL;
	}
	in->fd = -1;
	in->cd = (iconv_t)-1;
	if ((in->name = strdup(name)) == NULL) {
		error_sys("%s", name);
		free(in);
		return NULL;
	}
	return in;
}

/*
 * Read the open file fd, named name in errors; the stream owns fd from
 * here, also when this fails.  NULL with the error set.
 */
struct instream *
instream_open_fd(int fd, const char *name)
{
	struct instream *in;

	if ((in = instream_new(name)) == NULL) {
		close(fd);
		return NULL;
	}
	in->fd = fd;
	return in;
}

/*
 * Open the member name of zb (at its top or under its one folder),
 * named "ZIP:MEMBER" in errors.  Returns the stream; NULL with *absent
 * set when there is no such member, or NULL with the error set (too
 * large, encrypted, damaged).
 */
struct instream *
instream_open_zip(struct zipbundle *zb, const char *name, int *absent)
{
	struct instream *in;
	zip_stat_t st;
	zip_int64_t idx;
	char full[1024], label[1024 + 64];

	*absent = 0;
	if (path_fmt(full, sizeof(full), "%s%s", zb->prefix, name) == -1 ||
	    path_fmt(label, sizeof(label), "%s:%s", zb->path, full) == -1)
		return NULL;
	if ((idx = zip_name_locate(zb->za, full, 0)) == -1) {
		*absent = 1;
		error_set("%s: not in the zip file", label);
		return NULL;
	}
	if (zip_stat_index(zb->za, (zip_uint64_t)idx, 0, &st) == -1) {
		error_set("%s: %s", label, zip_strerror(zb->za));
		return NULL;
	}
	if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) &&
	    st.encryption_method != ZIP_EM_NONE) {
		error_set("%s: encrypted: export the bundle without a "
		    "password", label);
		return NULL;
	}
	if (!(st.valid & ZIP_STAT_SIZE) || st.size > zb->max) {
		error_set("%s: states %llu bytes uncompressed, over "
		    "source.zip_max (%llu MiB): refused as a zip bomb", label,
		    (unsigned long long)st.size,
		    (unsigned long long)(zb->max >> 20));
		return NULL;
	}
	if ((in = instream_new(label)) == NULL)
		return NULL;
	in->left = st.size;
	if ((in->zf = zip_fopen_index(zb->za, (zip_uint64_t)idx, 0)) ==
	    NULL) {
		error_set("%s: %s", label, zip_strerror(zb->za));
		instream_close(in);
		return NULL;
	}
	return in;
}

/*
 * 1 if text in encoding enc needs converting to UTF-8: enc is set and
 * is not UTF-8 (any case, with or without the dash); else 0.
 */
int
instream_converts(const char *enc)
{
	return enc != NULL && *enc != '\0' && strcasecmp(enc, "utf-8") != 0 &&
	    strcasecmp(enc, "utf8") != 0;
}

/*
 * 1 if iconv can convert from enc to UTF-8 (NULL, "" and UTF-8 need
 * no conversion and are fine too), else 0.
 */
int
instream_encoding_known(const char *enc)
{
	iconv_t cd;

	if (!instream_converts(enc))
		return 1;
	if ((cd = iconv_open("UTF-8", enc)) == (iconv_t)-1)
		return 0;
	iconv_close(cd);
	return 1;
}

/*
 * Convert what in yields from enc to UTF-8 (NULL, "" or UTF-8: no
 * conversion).  0, or -1 with the error set (an encoding iconv does
 * not know).
 */
int
instream_set_encoding(struct instream *in, const char *enc)
{
	if (!instream_converts(enc))
		return 0;
	if ((in->cd = iconv_open("UTF-8", enc)) == (iconv_t)-1)
		return error_sys("%s: source.encoding '%.64s'", in->name,
		    enc);
	if ((in->enc = strdup(enc)) == NULL ||
	    (in->raw = malloc(IN_RAWSZ)) == NULL)
		return error_sys("%s", in->name);
	return 0;
}

/* Read up to n bytes as they are in the file.  Bytes, 0 at the end, -1. */
static ssize_t
raw_read(struct instream *in, void *buf, size_t n)
{
	zip_int64_t z;
	ssize_t r;

	if (in->zf == NULL) {
		while ((r = read(in->fd, buf, n)) == -1 && errno == EINTR)
			;
		if (r == -1)
			return error_sys("%s: read", in->name);
		return r;
	}
	if ((z = zip_fread(in->zf, buf, n)) == -1)
		return error_set("%s: %s", in->name,
		    zip_file_strerror(in->zf));
	if ((zip_uint64_t)z > in->left)
		return error_set("%s: inflates past the %llu bytes it states: "
		    "refused as a zip bomb", in->name,
		    (unsigned long long)in->left);
	in->left -= (zip_uint64_t)z;
	return (ssize_t)z;
}

/* Count the line ends in s[0..n) into in->line. */
static void
count_lines(struct instream *in, const char *s, size_t n)
{
	const char *e = s + n;

	while ((s = memchr(s, '\n', (size_t)(e - s))) != NULL) {
		in->line++;
		s++;
	}
}

/* Top up the raw buffer, keeping its unconverted tail.  0 or -1. */
static int
raw_fill(struct instream *in)
{
	ssize_t r;

	memmove(in->raw, in->raw + in->rpos, in->rlen - in->rpos);
	in->rlen -= in->rpos;
	in->rpos = 0;
	if ((r = raw_read(in, in->raw + in->rlen, IN_RAWSZ - in->rlen)) == -1)
		return -1;
	if (r == 0)
		in->raweof = 1;
	in->rlen += (size_t)r;
	return 0;
}

/*
 * Convert raw bytes into buf[0..n) until it is full or the raw bytes
 * run out.  Bytes written, or -1 (a sequence enc does not have, or one
 * cut short at the end).
 */
static ssize_t
convert(struct instream *in, char *buf, size_t n)
{
	char *ip, *op = buf;
	size_t il, ol = n;
	int cut = 0;		/* the raw tail is a sequence cut short */

	while (ol > 0) {
		if (in->rpos == in->rlen || cut) {
			if (cut && in->raweof)
				goto bad;
			if (in->raweof) {
				/* Back to the initial shift state. */
				(void)iconv(in->cd, NULL, NULL, &op, &ol);
				break;
			}
			if (op != buf)
				break;
			if (raw_fill(in) == -1)
				return -1;
			cut = 0;
			continue;
		}
		ip = in->raw + in->rpos;
		il = in->rlen - in->rpos;
		if (iconv(in->cd, &ip, &il, &op, &ol) == (size_t)-1) {
			in->rpos = (size_t)(ip - in->raw);
			if (errno == E2BIG)
				break;
			if (errno == EINVAL) {
				cut = 1;
				continue;
			}
			if (errno == EILSEQ)
				goto bad;
			return error_sys("%s", in->name);
		}
		in->rpos = (size_t)(ip - in->raw);
	}
	count_lines(in, buf, (size_t)(op - buf));
	return op - buf;
bad:
	count_lines(in, buf, (size_t)(op - buf));
	return error_set("%s:%lu: byte 0x%02x is not %s (source.encoding): "
	    "is the export in another encoding?", in->name, in->line + 1,
	    (unsigned char)in->raw[in->rpos], in->enc);
}

/*
 * Read up to n (at least 8) bytes of UTF-8 (or the file's bytes when no
 * encoding is set).  Returns the bytes read, 0 at the end, or -1 with
 * the error set ("file:line: byte 0x81 is not windows-1252 ...", a
 * read error, a zip member over its stated size).
 */
ssize_t
instream_read(struct instream *in, void *buf, size_t n)
{
	if (in->cd == (iconv_t)-1)
		return raw_read(in, buf, n);
	if (n < 8)
		return error_set("%s: read of %zu bytes", in->name, n);
	return convert(in, buf, n);
}

/* Close a stream (NULL is fine). */
void
instream_close(struct instream *in)
{
	if (in == NULL)
		return;
	if (in->fd != -1)
		close(in->fd);
	if (in->zf != NULL)
		zip_fclose(in->zf);
	if (in->cd != (iconv_t)-1)
		iconv_close(in->cd);
	free(in->enc);
	free(in->raw);
	free(in->name);
	free(in);
}
