/*
 * ims_valid.c -- check an IMS Enterprise file against the IMS
 * Enterprise 1.1 DTD built into the binary (formats/ims_dtd.c, made
 * from tests/data/ims/ims_epv1p1.dtd by `make dtd`): no DTD file is
 * needed at run time, and the file's own DOCTYPE, if any, is not used.
 *
 * libxml2 validates a DTD only against a document tree, so the file is
 * parsed whole into memory (about ten times its size); the nightly
 * readers stream and never do this.
 */
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/valid.h>
#include <libxml/xmlerror.h>

#include "sisfeed.h"

struct vstate {
	const char	*path;
	FILE		*out;
	size_t		 max;		/* lines printed at most */
	size_t		 count;
};

#if LIBXML_VERSION >= 21200
static void
on_error(void *ctx, const xmlError *err)
#else
static void
on_error(void *ctx, xmlErrorPtr err)
#endif
{
	struct vstate *st = ctx;
	char msg[512];
	size_t n;

	if (err == NULL || err->level < XML_ERR_ERROR ||
	    err->domain != XML_FROM_VALID)
		return;
	st->count++;
	if (st->out == NULL || st->count > st->max)
		return;
	snprintf(msg, sizeof(msg), "%s", err->message != NULL ?
	    err->message : "not valid");
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	fprintf(st->out, "%s:%d: DTD: %s\n", st->path, err->line, msg);
}

/*
 * Check the IMS file at path (plain or gzip) against the built-in DTD.
 * Each violation is counted in *nerr and the first max are printed to
 * out (NULL: none) as "file:line: DTD: message".  Returns 0 when the
 * file was checked, valid or not, or -1 (error set) when it cannot be
 * read or is not well-formed.
 */
int
ims_validate_dtd(const char *path, FILE *out, size_t max, size_t *nerr)
{
	struct vstate st;
	xmlParserInputBufferPtr in;
	xmlValidCtxtPtr vc = NULL;
	xmlDtdPtr dtd = NULL;
	xmlDocPtr doc = NULL;
	int rc = -1;

	memset(&st, 0, sizeof(st));
	st.path = path;
	st.out = out;
	st.max = max;
	*nerr = 0;
	if ((in = xmlParserInputBufferCreateMem(ims_dtd, (int)ims_dtd_len,
	    XML_CHAR_ENCODING_UTF8)) == NULL)
		return error_set("built-in DTD: out of memory");
	/* xmlIOParseDTD frees in, whatever happens */
	if ((dtd = xmlIOParseDTD(NULL, in, XML_CHAR_ENCODING_UTF8)) == NULL)
		return error_set("built-in DTD: not readable");
	if ((doc = xmlReadFile(path, NULL, XML_PARSE_NONET |
	    XML_PARSE_HUGE | XML_PARSE_BIG_LINES | XML_PARSE_NOERROR |
	    XML_PARSE_NOWARNING)) == NULL) {
		error_set("%s: not well-formed or not readable", path);
		goto out;
	}
	if ((vc = xmlNewValidCtxt()) == NULL) {
		error_set("%s: out of memory", path);
		goto out;
	}
	vc->error = NULL;
	vc->warning = NULL;
	xmlSetStructuredErrorFunc(&st, on_error);
	(void)xmlValidateDtd(vc, doc, dtd);
	xmlSetStructuredErrorFunc(NULL, NULL);
	*nerr = st.count;
	rc = 0;
out:
	if (vc != NULL)
		xmlFreeValidCtxt(vc);
	if (doc != NULL)
		xmlFreeDoc(doc);
	xmlFreeDtd(dtd);
	return rc;
}
