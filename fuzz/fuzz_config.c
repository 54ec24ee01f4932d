/*
 * fuzz_config.c -- the YAML config reader.
 */
#include <stdio.h>

#include "sisfeed.h"
#include "fuzz/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	config_free(config_load(fuzz_put(0, "c.yaml", data, len)));
	return 0;
}
