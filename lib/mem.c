/*
 * mem.c -- hints for the few big arrays of a national export (ten
 * million memberships and the buffers that sort them).
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "sisfeed.h"

#define MEM_HUGE	(2 * 1024 * 1024)

/*
 * Ask the kernel to back the 2 MiB-aligned part of p[0..len) with huge
 * pages (transparent huge pages in "madvise" mode, Debian's default):
 * one page fault and one TLB entry per 2 MiB instead of per 4 KiB, which
 * is most of the cost of touching a fresh 160 MB array.  Best effort:
 * does nothing for small arrays or where the kernel cannot.
 */
void
mem_hint_huge(void *p, size_t len)
{
#ifdef MADV_HUGEPAGE
	uintptr_t start = ((uintptr_t)p + MEM_HUGE - 1) & ~(uintptr_t)
	    (MEM_HUGE - 1);
	uintptr_t end = ((uintptr_t)p + len) & ~(uintptr_t)(MEM_HUGE - 1);

	if (p == NULL || len < 2 * MEM_HUGE || end <= start)
		return;
	(void)madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
	(void)p;
	(void)len;
#endif
}
