/*
 * mem.c -- hints for the few big arrays of a national export (ten
 * million memberships and the buffers that sort them).
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sisfeed.h"

#define MEM_HUGE	(2 * 1024 * 1024)

/*
 * Ask the kernel to back p[0..len) with huge pages (transparent huge
 * pages in "madvise" mode, Debian's default): one page fault and one
 * TLB entry per 2 MiB instead of per 4 KiB, which is most of the cost of
 * touching a fresh 160 MB array.  The advice covers every page the
 * array touches, not only its 2 MiB-aligned middle: advice on part of a
 * mapping splits it, and glibc's realloc() can then no longer move the
 * mapping with mremap() and copies the whole array into fresh memory
 * instead (measured: every doubling of the memberships array did).
 * Best effort: does nothing for small arrays or where the kernel cannot.
 */
void
mem_hint_huge(void *p, size_t len)
{
#ifdef MADV_HUGEPAGE
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t start, end;

	if (p == NULL || len < 2 * MEM_HUGE || page == 0 ||
	    (page & (page - 1)) != 0)
		return;
	start = (uintptr_t)p & ~(page - 1);
	end = ((uintptr_t)p + len + page - 1) & ~(page - 1);
	(void)madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
	(void)p;
	(void)len;
#endif
}
