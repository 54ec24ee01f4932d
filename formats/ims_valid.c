/*
 * ims_valid.c -- check an IMS Enterprise file against the IMS
 * Enterprise 1.1 DTD built into the binary (formats/ims_dtd.c, made
 * from tests/data/ims/ims_epv1p1.dtd by `make dtd`), or a PIFU-IMS file
 * (its root in the PIFU namespace) against the PIFU-IMS XSD built in
 * the same way (formats/pifu_xsd.c): no file is needed at run time,
 * and the file's own DOCTYPE or schemaLocation, if any, is not used.
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
#include <libxml/xmlschemas.h>

#include "sisfeed.h"

struct vstate {
	const char	*path;
	const char	*what;		/* "DTD", "XSD" */
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
	    (err->domain != XML_FROM_VALID && err->domain != XML_FROM_SCHEMASV))
		return;
	st->count++;
	if (st->out == NULL || st->count > st->max)
		return;
	snprintf(msg, sizeof(msg), "%s", err->message != NULL ?
	    err->message : "not valid");
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	fprintf(st->out, "%s:%d: %s: %s\n", st->path, err->line, st->what,
	    msg);
}

/* Validate doc against the built-in DTD.  0 or -1 (error set). */
static int
check_dtd(xmlDocPtr doc)
{
	xmlParserInputBufferPtr in;
	xmlValidCtxtPtr vc;
	xmlDtdPtr dtd;

	if ((in = xmlParserInputBufferCreateMem(ims_dtd, (int)ims_dtd_len,
	    XML_CHAR_ENCODING_UTF8)) == NULL)
		return error_set("built-in DTD: out of memory");
	/* xmlIOParseDTD frees in, whatever happens */
	if ((dtd = xmlIOParseDTD(NULL, in, XML_CHAR_ENCODING_UTF8)) == NULL)
		return error_set("built-in DTD: not readable");
	if ((vc = xmlNewValidCtxt()) == NULL) {
		xmlFreeDtd(dtd);
		return error_set("DTD: out of memory");
	}
	vc->error = NULL;
	vc->warning = NULL;
	(void)xmlValidateDtd(vc, doc, dtd);
	xmlFreeValidCtxt(vc);
	xmlFreeDtd(dtd);
	return 0;
}

/* Validate doc against the built-in PIFU-IMS XSD.  0 or -1. */
static int
check_xsd(xmlDocPtr doc, struct vstate *st)
{
	xmlSchemaParserCtxtPtr pc;
	xmlSchemaValidCtxtPtr vc;
	xmlSchemaPtr schema;

	if ((pc = xmlSchemaNewMemParserCtxt(pifu_xsd, (int)pifu_xsd_len)) ==
	    NULL)
		return error_set("built-in PIFU-IMS XSD: out of memory");
	schema = xmlSchemaParse(pc);
	xmlSchemaFreeParserCtxt(pc);
	if (schema == NULL)
		return error_set("built-in PIFU-IMS XSD: not readable");
	if ((vc = xmlSchemaNewValidCtxt(schema)) == NULL) {
		xmlSchemaFree(schema);
		return error_set("XSD: out of memory");
	}
	xmlSchemaSetValidStructuredErrors(vc, on_error, st);
	(void)xmlSchemaValidateDoc(vc, doc);
	xmlSchemaFreeValidCtxt(vc);
	xmlSchemaFree(schema);
	return 0;
}

/*
 * Check the IMS file at path (plain or gzip) against the built-in DTD,
 * or a PIFU-IMS file (root in the PIFU namespace) against the built-in
 * PIFU-IMS XSD; *what is "DTD" or "XSD".  Each violation is counted in
 * *nerr and the first max are printed to out (NULL: none) as
 * "file:line: DTD: message" (or XSD).  Returns 0 when the file was
 * checked, valid or not, or -1 (error set) when it cannot be read or
 * is not well-formed.
 */
int
ims_validate_dtd(const char *path, FILE *out, size_t max, size_t *nerr,
    const char **what)
{
	struct vstate st;
	xmlDocPtr doc;
	xmlNodePtr root;
	int rc;

	memset(&st, 0, sizeof(st));
	st.path = path;
	st.out = out;
	st.max = max;
	st.what = "DTD";
	*nerr = 0;
	*what = st.what;
	if ((doc = xmlReadFile(path, NULL, XML_PARSE_NONET |
	    XML_PARSE_HUGE | XML_PARSE_BIG_LINES | XML_PARSE_NOERROR |
	    XML_PARSE_NOWARNING)) == NULL)
		return error_set("%s: not well-formed or not readable", path);
	root = xmlDocGetRootElement(doc);
	if (root != NULL && root->ns != NULL && root->ns->href != NULL &&
	    strcmp((const char *)root->ns->href, PIFU_NS) == 0)
		st.what = "XSD";
	*what = st.what;
	xmlSetStructuredErrorFunc(&st, on_error);
	rc = strcmp(st.what, "XSD") == 0 ? check_xsd(doc, &st) :
	    check_dtd(doc);
	xmlSetStructuredErrorFunc(NULL, NULL);
	*nerr = st.count;
	xmlFreeDoc(doc);
	return rc;
}
