/*
 * fuzzutil.h -- what the libFuzzer targets share: a scratch directory,
 * files written into it, an input cut into parts.
 */
#ifndef FUZZUTIL_H
#define FUZZUTIL_H

#include <stddef.h>
#include <stdint.h>

/* The separator between the parts of one input (seeds carry it). */
#define FUZZ_SEP	"\n--8<--\n"

/* The scratch directory (made once, removed at exit). */
const char *fuzz_dir(void);
/* Write len bytes to name in the scratch directory; returns its path
 * (a static buffer per call slot 0..7).  Aborts on I/O error. */
const char *fuzz_put(int slot, const char *name, const uint8_t *p,
	    size_t len);
/* Cut p at FUZZ_SEP into at most n parts; missing parts are empty.
 * Returns the parts found. */
size_t	 fuzz_split(const uint8_t *p, size_t len, const uint8_t **part,
	    size_t *plen, size_t n);
/* Load a config written from text with "@DIR@" replaced by the scratch
 * directory; aborts if it does not load. */
struct config *fuzz_config(const char *text);

#endif
