/*
 * pifu.c -- PIFU-IMS 1.3, the Norwegian national profile of IMS
 * Enterprise 1.1 that itslearning reads: its vocabulary, its limits,
 * and fitting a roster to what it can carry (pifu_fit, called through
 * ims_screen before the diff, so that the snapshot read back equals the
 * roster and no record looks changed every night).
 *
 * What PIFU-IMS_SAS.xsd requires and this profile does about it:
 * - <properties lang> and <type> are required; type is "full" (this
 *   profile writes full snapshots only: the config refuses delta).
 * - person: no <systemrole> and no <institutionrole> (the XSD leaves
 *   them out), so the institution role is cleared; an inactive person
 *   carries <extension><pifu_status type="activeInactive">inaktiv,
 *   an active one "aktiv".  <userid> needs a useridtype: the login is
 *   "username", a mapped national identity number "personNIN".
 *   <email> must match .+@.+(\..+)+: one that does not is left out.
 * - group: a <grouptype> with scheme pifu-ims-go-org (skoleeier 1,
 *   skole 2) or pifu-ims-go-grp (basisgruppe 1 ... eksamensgruppe 16:
 *   the levels of the PIFU-IMS specification); every group has a
 *   <relationship> (a root points at itself).  <adminperiod> must be
 *   2026, H2026, 2026/2027 or H2026/V2027: another term is left out,
 *   as is a timeframe begin or end that is not a date YYYY-MM-DD; there
 *   is no <org>, so orgname and orgunit are cleared.
 * - lengths (characters): sourcedid id 256, source 32 (a config
 *   check), userid, family and given 256, short 60, long 256.  A record
 *   over a limit is rejected, never cut: a cut short name could merge
 *   with another one, and a cut key is another record.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sisfeed.h"

#define PIFU_SCHEME_ORG	"pifu-ims-go-org"
#define PIFU_SCHEME_GRP	"pifu-ims-go-grp"

/* Field limits of PIFU-IMS_SAS.xsd, in characters. */
#define PIFU_ID_MAX	256	/* sourcedid/id */
#define PIFU_NAME_MAX	256	/* userid, fn, family, given, email */
#define PIFU_SHORT_MAX	60	/* description/short */
#define PIFU_LONG_MAX	256	/* description/long */

struct pifu_type {
	const char	*value;
	const char	*scheme;
	const char	*level;
};

/* t_groupschematypevalue, with the levels of the specification. */
static const struct pifu_type types[] = {
	{ "skoleeier",		PIFU_SCHEME_ORG, "1" },
	{ "skole",		PIFU_SCHEME_ORG, "2" },
	{ "basisgruppe",	PIFU_SCHEME_GRP, "1" },
	{ "undervisningsgruppe", PIFU_SCHEME_GRP, "2" },
	{ "kontaktlærergruppe",	PIFU_SCHEME_GRP, "3" },
	{ "trinn",		PIFU_SCHEME_GRP, "4" },
	{ "utdanningsprogram",	PIFU_SCHEME_GRP, "5" },
	{ "programområde",	PIFU_SCHEME_GRP, "6" },
	{ "fag",		PIFU_SCHEME_GRP, "7" },
	{ "foresattegruppe",	PIFU_SCHEME_GRP, "8" },
	{ "språkopplæring",	PIFU_SCHEME_GRP, "9" },
	{ "sammensattgruppe",	PIFU_SCHEME_GRP, "10" },
	{ "elevråd",		PIFU_SCHEME_GRP, "11" },
	{ "fau",		PIFU_SCHEME_GRP, "12" },
	{ "skoleutvalg",	PIFU_SCHEME_GRP, "13" },
	{ "skolemiljøutvalg",	PIFU_SCHEME_GRP, "14" },
	{ "sfo",		PIFU_SCHEME_GRP, "15" },
	{ "eksamensgruppe",	PIFU_SCHEME_GRP, "16" },
};

/* Group types of exports in English (OneRoster's among them). */
static const struct {
	const char	*name;
	const char	*value;
} aliases[] = {
	{ "district",	"skoleeier" },
	{ "school",	"skole" },
	{ "homeroom",	"basisgruppe" },
	{ "class",	"undervisningsgruppe" },
	{ "course",	"undervisningsgruppe" },
	{ "section",	"undervisningsgruppe" },
	{ "subject",	"fag" },
	{ "grade",	"trinn" },
};

/*
 * The scheme and level of a PIFU typevalue.  Returns 0, or -1 if type
 * is not one.
 */
int
pifu_grouptype(const char *type, const char **scheme, const char **level)
{
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(type, types[i].value) == 0) {
			*scheme = types[i].scheme;
			*level = types[i].level;
			return 0;
		}
	return -1;
}

/*
 * The PIFU typevalue for an export's group type: a typevalue in any
 * (ASCII) case, or an English alias.  NULL if there is none.
 */
const char *
pifu_typevalue(const char *type)
{
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(type, types[i].value) == 0)
			return types[i].value;
	for (i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (strcasecmp(type, aliases[i].name) == 0)
			return aliases[i].value;
	return NULL;
}

/*
 * The number of code points of the UTF-8 string s (continuation bytes
 * are not counted).
 */
size_t
utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

/*
 * 1 if s matches the XSD pattern .+@.+(\..+)+ (where '.' is any
 * character but LF and CR) and has at most 256 characters.
 */
int
pifu_email_ok(const char *s)
{
	size_t n = strlen(s), i, at;

	if (n == 0 || strpbrk(s, "\n\r") != NULL ||
	    utf8_chars(s) > PIFU_NAME_MAX)
		return 0;
	/* the first '@' after at least one character leaves the most
	 * room; then a '.' two or more past it, with a character after */
	for (at = 1; at < n && s[at] != '@'; at++)
		;
	if (at >= n)
		return 0;
	for (i = at + 2; i + 1 < n; i++)
		if (s[i] == '.')
			return 1;
	return 0;
}

/* s after [VH]* and four ASCII digits, or NULL. */
static const char *
adminperiod_year(const char *s)
{
	int i;

	while (*s == 'V' || *s == 'H')
		s++;
	for (i = 0; i < 4; i++, s++)
		if (*s < '0' || *s > '9')
			return NULL;
	return s;
}

/*
 * 1 if s matches [VH]*\d{4}(|/[VH]*\d{4}), the XSD's adminperiod.
 */
int
pifu_adminperiod_ok(const char *s)
{
	if ((s = adminperiod_year(s)) == NULL)
		return 0;
	if (*s == '\0')
		return 1;
	if (*s != '/' || (s = adminperiod_year(s + 1)) == NULL)
		return 0;
	return *s == '\0';
}

/* 1 if s is a date PIFU's timeframe takes: YYYY-MM-DD. */
static int
date_ok(const char *s)
{
	int i;

	for (i = 0; i < 10; i++)
		if (i == 4 || i == 7 ? s[i] != '-' : s[i] < '0' || s[i] > '9')
			return 0;
	return s[10] == '\0' && (s[5] == '0' || (s[5] == '1' &&
	    s[6] <= '2')) && s[5] + s[6] != '0' + '0' && (s[8] < '3' ||
	    (s[8] == '3' && s[9] <= '1')) && s[8] + s[9] != '0' + '0';
}

/* Leave out a timeframe value PIFU cannot carry, with a note.  0 or
 * -1. */
static int
drop_value(struct rejects *rj, const char *file, const struct group *g,
    const char *field, const char **value, const char *what)
{
	char q[128];

	if (rejects_note(rj, file, g->line, field, "group '%s': '%s' is "
	    "not %s; written without it", g->id, rejects_quote(*value,
	    strlen(*value), q, sizeof(q)), what) == -1)
		return -1;
	*value = "";
	return 0;
}

/* Reject the record with key for field over its limit max.  0 or -1. */
static int
too_long(struct rejects *rj, const char *file, unsigned long line,
    const char *field, const char *key, size_t max)
{
	char q[128];

	return rejects_add(rj, file, line, field, "'%s': longer than %zu "
	    "characters, the PIFU-IMS limit", rejects_quote(key, strlen(key),
	    q, sizeof(q)), max);
}

/* The first field of p over its PIFU limit (its limit in *max), or
 * NULL. */
static const char *
person_over(const struct person *p, size_t *max)
{
	*max = PIFU_NAME_MAX;
	if (utf8_chars(p->id) > PIFU_ID_MAX)
		return "id";
	if (utf8_chars(p->userid) > PIFU_NAME_MAX)
		return "userid";
	if (utf8_chars(p->given) > PIFU_NAME_MAX)
		return "given";
	if (utf8_chars(p->family) > PIFU_NAME_MAX)
		return "family";
	if (utf8_chars(p->nin) > PIFU_NAME_MAX)
		return "nin";
	return NULL;
}

/* The same for a group. */
static const char *
group_over(const struct group *g, size_t *max)
{
	*max = PIFU_ID_MAX;
	if (utf8_chars(g->id) > PIFU_ID_MAX)
		return "id";
	*max = PIFU_SHORT_MAX;
	if (utf8_chars(g->shortname) > PIFU_SHORT_MAX)
		return "short";
	*max = PIFU_LONG_MAX;
	if (utf8_chars(g->longname) > PIFU_LONG_MAX)
		return "long";
	return NULL;
}

/* Fit the persons; mark those to reject in drop.  0 or -1. */
static int
fit_persons(struct roster *r, uint8_t *drop, struct rejects *rj,
    const char *file)
{
	struct person *p;
	const char *field;
	char q[128];
	size_t i, max;

	for (i = 0; i < r->npersons; i++) {
		p = &r->persons[i];
		p->role = "";
		if ((field = person_over(p, &max)) != NULL) {
			drop[i] = 1;
			if (too_long(rj, file, p->line, field, p->id, max)
			    == -1)
				return -1;
			continue;
		}
		if (p->email[0] != '\0' && !pifu_email_ok(p->email)) {
			if (rejects_note(rj, file, p->line, "email",
			    "person '%s': '%s' is not an address PIFU-IMS "
			    "accepts; written without <email>", p->id,
			    rejects_quote(p->email, strlen(p->email), q,
			    sizeof(q))) == -1)
				return -1;
			p->email = "";
		}
	}
	return 0;
}

/* Fit the groups; mark those to reject in drop.  0 or -1. */
static int
fit_groups(struct roster *r, uint8_t *drop, struct rejects *rj,
    const char *file)
{
	struct group *g;
	const char *v, *field;
	char q[128];
	size_t i, max;

	for (i = 0; i < r->ngroups; i++) {
		g = &r->groups[i];
		if ((field = group_over(g, &max)) != NULL) {
			drop[i] = 1;
			if (too_long(rj, file, g->line, field, g->id, max)
			    == -1)
				return -1;
			continue;
		}
		if ((v = pifu_typevalue(g->type)) == NULL) {
			drop[i] = 1;
			if (rejects_add(rj, file, g->line, "type", "group "
			    "'%s': type '%s' has no PIFU-IMS group type (a "
			    "PIFU typevalue such as skole or "
			    "undervisningsgruppe, or district, school, "
			    "homeroom, class, course, section, subject, "
			    "grade)", g->id, rejects_quote(g->type,
			    strlen(g->type), q, sizeof(q))) == -1)
				return -1;
			continue;
		}
		g->type = v;
		/* PIFU-IMS has no <org> */
		g->orgname = g->orgunit = "";
		if (g->term[0] != '\0' && !pifu_adminperiod_ok(g->term) &&
		    drop_value(rj, file, g, "term", &g->term, "a PIFU-IMS "
		    "adminperiod (2026, H2026, 2026/2027)") == -1)
			return -1;
		if (g->begin[0] != '\0' && !date_ok(g->begin) &&
		    drop_value(rj, file, g, "begin", &g->begin, "a date "
		    "(YYYY-MM-DD)") == -1)
			return -1;
		if (g->end[0] != '\0' && !date_ok(g->end) &&
		    drop_value(rj, file, g, "end", &g->end, "a date "
		    "(YYYY-MM-DD)") == -1)
			return -1;
	}
	return 0;
}

/*
 * Fit r to PIFU-IMS (see the top of this file): values it cannot carry
 * are cleared or left out with a note, records it cannot carry are
 * rejected with their children and memberships.  Returns 0, or -1 on
 * I/O error or no memory.
 */
int
pifu_fit(struct roster *r, struct rejects *rj, const char *personfile,
    const char *groupfile, const char *memberfile)
{
	uint8_t *pdrop, *gdrop;
	size_t i;
	int rc = -1, any = 0;

	pdrop = calloc(r->npersons + 1, 1);
	gdrop = calloc(r->ngroups + 1, 1);
	if (pdrop == NULL || gdrop == NULL) {
		error_sys("pifu");
		goto out;
	}
	if (fit_persons(r, pdrop, rj, personfile) == -1 ||
	    fit_groups(r, gdrop, rj, groupfile) == -1)
		goto out;
	for (i = 0; i < r->npersons && !any; i++)
		any = pdrop[i];
	for (i = 0; i < r->ngroups && !any; i++)
		any = gdrop[i];
	if (any && roster_drop(r, pdrop, gdrop, rj, personfile,
	    groupfile, memberfile) == -1)
		goto out;
	rc = 0;
out:
	free(pdrop);
	free(gdrop);
	return rc;
}
