/*
 * fuzzutil.c -- the scratch directory and input helpers of the libFuzzer
 * targets (fuzz/fuzz_*.c).  Failures here are bugs of the harness:
 * they abort.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sisfeed.h"
#include "fuzz/fuzzutil.h"

static char dir[PATH_MAX];
static char paths[8][PATH_MAX];

static void
fuzz_cleanup(void)
{
	int i;

	/* The harness only ever writes these names. */
	for (i = 0; i < 8; i++)
		if (paths[i][0] != '\0')
			unlink(paths[i]);
	rmdir(dir);
}

const char *
fuzz_dir(void)
{
	const char *tmp;

	if (dir[0] != '\0')
		return dir;
	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(dir, sizeof(dir), "%s/sisfeed-fuzz.XXXXXX", tmp);
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		abort();
	}
	atexit(fuzz_cleanup);
	log_verbosity = 0;
	return dir;
}

const char *
fuzz_put(int slot, const char *name, const uint8_t *p, size_t len)
{
	FILE *fp;

	snprintf(paths[slot], sizeof(paths[slot]), "%s/%s", fuzz_dir(),
	    name);
	if ((fp = fopen(paths[slot], "wb")) == NULL ||
	    (len > 0 && fwrite(p, 1, len, fp) != len) || fclose(fp) != 0) {
		perror(paths[slot]);
		abort();
	}
	return paths[slot];
}

/* The first FUZZ_SEP in p[0..len), or NULL. */
static const uint8_t *
sep_find(const uint8_t *p, size_t len)
{
	size_t sl = strlen(FUZZ_SEP), i;

	for (i = 0; i + sl <= len; i++)
		if (memcmp(p + i, FUZZ_SEP, sl) == 0)
			return p + i;
	return NULL;
}

size_t
fuzz_split(const uint8_t *p, size_t len, const uint8_t **part, size_t *plen,
    size_t n)
{
	size_t sl = strlen(FUZZ_SEP), i, found = 0;
	const uint8_t *end = p + len, *q;

	for (i = 0; i < n; i++) {
		part[i] = p;
		plen[i] = 0;
	}
	for (i = 0; i < n && p <= end; i++) {
		q = i + 1 == n ? NULL : sep_find(p, (size_t)(end - p));
		part[i] = p;
		plen[i] = q == NULL ? (size_t)(end - p) : (size_t)(q - p);
		found++;
		if (q == NULL)
			break;
		p = q + sl;
	}
	return found;
}

struct config *
fuzz_config(const char *text)
{
	char buf[8192], *o = buf;
	const char *d = fuzz_dir(), *s;
	struct config *cfg;
	size_t dl = strlen(d);

	for (s = text; *s != '\0' && o < buf + sizeof(buf) - dl - 1; ) {
		if (strncmp(s, "@DIR@", 5) == 0) {
			memcpy(o, d, dl);
			o += dl;
			s += 5;
		} else
			*o++ = *s++;
	}
	*o = '\0';
	fuzz_put(7, "sisfeed.yaml", (const uint8_t *)buf, strlen(buf));
	if ((cfg = config_load(paths[7])) == NULL) {
		fprintf(stderr, "fuzz config: %s\n", error_last());
		abort();
	}
	return cfg;
}
