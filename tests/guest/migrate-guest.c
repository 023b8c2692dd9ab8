// SPDX-License-Identifier: GPL-2.0
/*
 * The guest half of tests/migration: contexts opened and used before the
 * VM is migrated to a file must keep working in the QEMU that loads it.
 *
 * Runs as the only program of a small initramfs (no virtio-9p root: a
 * mounted 9p export blocks migration).  Prints TAP on the console; after
 * the first part it prints "vgru-migrate: ready" and reads one line from
 * stdin, which the host sends once the VM runs again in the new QEMU.
 *
 * What must hold after the restore: the open contexts copy byte for byte,
 * into pages they held before (the device may have dropped its TLB: they
 * fault again) and into fresh ones; an invalidation still reaches the
 * device (a copy from a page dropped with MADV_DONTNEED reads zeros, not
 * the old bytes); a new context opens and works.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "libvgru.h"

#define LEN	(1u << 20)	/* 256 pages per buffer */

static int n, failed;

static void result(int ok, const char *what)
{
	printf("%sok %d %s\n", ok ? "" : "not ", ++n, what);
	failed += !ok;
}

static unsigned char *buffer(void)
{
	void *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

static void fill(unsigned char *p, unsigned int seed)
{
	for (size_t i = 0; i < LEN; i++)
		p[i] = (unsigned char)(i * 7 + seed);
}

/* device copy of @src into @dst, then byte for byte against @src */
static int copy_exact(struct vgru *v, unsigned char *dst,
		      const unsigned char *src)
{
	int ret = vgru_copy(v, dst, src, LEN);

	if (ret) {
		printf("# vgru_copy: %s\n", strerror(-ret));
		return 0;
	}
	return !memcmp(dst, src, LEN);
}

static uint64_t faults(struct vgru *v)
{
	struct vgru_stats st;

	return vgru_stats(v, &st) ? 0 : st.faults;
}

int main(void)
{
	unsigned char *src = buffer(), *dst_a = buffer(), *dst_b = buffer();
	unsigned char *gone = buffer(), *fresh = buffer();
	struct vgru *a, *b, *c;
	uint64_t fa, fb;
	char line[16];
	int ok;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("1..5\n");
	if (vgru_open(NULL, &a) || vgru_open(NULL, &b)) {
		printf("Bail out! cannot open two contexts\n");
		return 1;
	}
	fill(src, 1);
	fill(gone, 2);
	ok = copy_exact(a, dst_a, src) && copy_exact(b, dst_b, src) &&
	     copy_exact(a, fresh, gone);
	result(ok, "two contexts copy before the migration");

	printf("vgru-migrate: ready\n");
	if (!fgets(line, sizeof(line), stdin)) {
		printf("Bail out! no word from the host\n");
		return 1;
	}

	fa = faults(a);
	fb = faults(b);
	memset(dst_a, 0, LEN);
	memset(dst_b, 0, LEN);
	fill(src, 3);
	ok = copy_exact(a, dst_a, src) && copy_exact(b, dst_b, src);
	printf("# faults after the restore: %" PRIu64 " and %" PRIu64 "\n",
	       faults(a) - fa, faults(b) - fb);
	result(ok, "the open contexts copy into pages held before");

	munmap(fresh, LEN);
	fresh = buffer();
	ok = copy_exact(a, fresh, src) && copy_exact(b, fresh, src);
	result(ok, "the open contexts copy into fresh pages");

	/* the device held gone's pages for context a before the migration */
	madvise(gone, LEN, MADV_DONTNEED);
	memset(dst_a, 0xff, LEN);
	ok = !vgru_copy(a, dst_a, gone, LEN);
	for (size_t i = 0; ok && i < LEN; i++)
		ok = dst_a[i] == 0;
	result(ok, "an invalidation after the restore reaches the device");

	ok = !vgru_open(NULL, &c);
	if (ok) {
		fill(src, 4);
		ok = copy_exact(c, dst_b, src);
		vgru_close(c);
	}
	result(ok, "a new context opens and copies");

	vgru_close(a);
	vgru_close(b);
	return failed ? 1 : 0;
}
