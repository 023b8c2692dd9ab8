/* SPDX-License-Identifier: MIT */
/*
 * Helpers the guest test programs (vgru-tests.c, accept-tests.c) share:
 * a context that must open, anonymous memory that must map, and a fill
 * pattern that differs per seed, per byte and per 2 KiB step.  They
 * CHECK as they go, so they belong inside a harness.h TEST.
 */
#ifndef VGRU_GUEST_UTIL_H
#define VGRU_GUEST_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "harness.h"
#include "libvgru.h"

#define PAGE 4096UL
#define RW (PROT_READ | PROT_WRITE)

static inline struct vgru *open_ctx(void)
{
	struct vgru *v = NULL;

	CHECK_EQ(vgru_open(NULL, &v), 0);
	return v;
}

/*
 * A context that resolves one page per device fault whatever the
 * driver's default fault-around (VGRU_IOC_FAULT_AROUND), for tests that
 * count faults per page.
 */
static inline struct vgru *open_ctx_per_page(void)
{
	struct vgru *v = open_ctx();
	int k = vgru_set_fault_around(v, 1);

	CHECK(k == 1 || k == -ENOTTY);
	return v;
}

static inline unsigned char *map_anon(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

static inline void fill(unsigned char *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 11));
}

/* Every byte of @p is @val. */
static inline bool all_bytes(const unsigned char *p, size_t len,
			     unsigned char val)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != val)
			return false;
	return true;
}

static inline struct vgru_stats stats(struct vgru *v)
{
	struct vgru_stats st;

	CHECK_EQ(vgru_stats(v, &st), 0);
	return st;
}

/*
 * A counter the driver shows in the fdinfo of a /dev/vgru file
 * (docs/counters.md: `key:\tvalue` lines), or -1 if it has no such key.
 */
static inline long long fdinfo_value(int fd, const char *key)
{
	size_t n = strlen(key);
	long long val = -1;
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':')
			val = strtoll(line + n + 1, NULL, 0);
	fclose(f);
	return val;
}

#endif /* VGRU_GUEST_UTIL_H */
