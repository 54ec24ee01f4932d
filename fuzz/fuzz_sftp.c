/*
 * fuzz_sftp.c -- the SFTP v3 reply parser: a byte stream as the server
 * would send it on the channel.
 */
#include <stdio.h>

#include "sisfeed.h"
#include "fuzz/fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	(void)sftp_parse_replies(data, len);
	return 0;
}
