// SPDX-License-Identifier: MIT
/*
 * vgru-accept: acceptance cases (issue 15) inside the guest.  Each case
 * lets the kernel change memory the device has translated -- a disk file
 * system's writeback, huge pages, KSM, compaction, reclaim -- or tries to
 * reach another process's memory, then compares the device's view with
 * the CPU's byte for byte and checks the exact errno where the device
 * must be refused.  Each comment says what breakage the case catches.
 *
 * Only libvgru's blocking calls and raw system calls are used, so that
 * the cases do not depend on the driver's internals.  Cases that change
 * system settings (sysctls, KSM, swap) restore them where a later case
 * could notice; every guest boot starts afresh anyway.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

#include "guest-util.h"
#include "harness.h"
#include "libvgru.h"
#include "vgru_ioctl.h"

#define HPAGE (2UL << 20)

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

/* ---- helpers ------------------------------------------------------------- */

/* @len bytes of anonymous memory starting on a 2 MiB boundary. */
static unsigned char *map_anon_hugealigned(size_t len)
{
	unsigned char *p = map_anon(len + HPAGE, RW);
	uintptr_t a = ((uintptr_t)p + HPAGE - 1) & ~(HPAGE - 1);

	return (unsigned char *)a;
}

/* Run a shell command; its exit status (or -1). */
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int status;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	status = system(cmd);
	return status == -1 || !WIFEXITED(status) ? -1 : WEXITSTATUS(status);
}

/* Write @val to a sysfs or procfs file; false if it cannot be written. */
static bool write_knob(const char *path, const char *fmt, ...)
{
	char val[64];
	va_list ap;
	bool ok;
	int fd;

	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return false;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	return close(fd) == 0 && ok;
}

/* The first number in a file, or -1 if it cannot be read. */
static long long read_knob(const char *path)
{
	long long val = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (fscanf(f, "%lld", &val) != 1)
		val = -1;
	fclose(f);
	return val;
}

/* A field of /proc/meminfo, in kB. */
static long long meminfo_kb(const char *key)
{
	char line[256];
	long long val = -1;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/meminfo", "r");

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':')
			val = atoll(line + n + 1);
	fclose(f);
	return val;
}

/* AnonHugePages (kB) of the mapping of this process that holds @addr. */
static long anon_huge_kb(const void *addr)
{
	unsigned long start, end;
	char line[512];
	bool in = false;
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps", "r");

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		/* a mapping's first line: START-END PERMS ... */
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			in = (uintptr_t)addr >= start && (uintptr_t)addr < end;
			continue;
		}
		if (in && !strncmp(line, "AnonHugePages:", 14))
			kb = atol(line + 14);
	}
	fclose(f);
	return kb;
}

#define PM_PRESENT	(1ULL << 63)
#define PM_SWAPPED	(1ULL << 62)
#define PM_PFN_MASK	((1ULL << 55) - 1)

/* The /proc/PID/pagemap entry of @addr (PID 0: this process). */
static uint64_t pagemap(pid_t pid, const void *addr)
{
	char path[64];
	uint64_t entry = 0;
	int fd;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/pagemap");
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, &entry, sizeof(entry),
		       (uintptr_t)addr / PAGE * sizeof(entry)),
		 (ssize_t)sizeof(entry));
	close(fd);
	return entry;
}

/* Whether the page at @addr of process @pid is in swap. */
static bool swapped_out(pid_t pid, const void *addr)
{
	return pagemap(pid, addr) & PM_SWAPPED;
}

/* The physical frame of a present page (root sees frames). */
static uint64_t pfn_of(const void *addr)
{
	uint64_t e = pagemap(0, addr);

	CHECK(e & PM_PRESENT);
	return e & PM_PFN_MASK;
}

/*
 * Empty every CPU's LRU caches: a page the driver's lookup faulted in may
 * wait in a per-CPU cache, off the LRU, where reclaim, compaction and
 * MADV_PAGEOUT pass it by.  Moving pages to the node they are on drains
 * all CPUs' caches and moves nothing.
 */
static void drain_lru_caches(unsigned char *p, unsigned long n)
{
	void *pages[64];
	int nodes[64], status[64];

	CHECK(n <= 64);
	for (unsigned long i = 0; i < n; i++)
		pages[i] = p + i * PAGE;
	if (syscall(SYS_move_pages, 0, n, pages, NULL, status, 0) != 0) {
		if (errno == ENOSYS)
			SKIP("kernel without move_pages (NUMA)");
		CHECK(!"move_pages failed");
	}
	for (unsigned long i = 0; i < n; i++) {
		CHECK(status[i] >= 0);
		nodes[i] = status[i];
	}
	CHECK_EQ(syscall(SYS_move_pages, 0, n, pages, nodes, status,
			 2 /* MPOL_MF_MOVE */), 0);
}

static uint64_t sysfs_stat(const char *name)
{
	char path[128];

	long long val;

	snprintf(path, sizeof(path), "/sys/class/vgru/vgru0/stats/%s", name);
	val = read_knob(path);
	CHECK(val >= 0);	/* -1: missing or unreadable */
	return val;
}

/*
 * Swap on zram, set up once per boot; false if the guest cannot.  256 MiB
 * of swap, most of it for reclaim_by_another_process's compressible pages.
 */
static bool zram_swap_on(void)
{
	if (access("/sys/block/zram0", F_OK) != 0 &&
	    sh("modprobe zram") != 0)
		return false;
	if (sh("grep -q zram0 /proc/swaps") == 0)
		return true;
	return sh("echo 256M > /sys/block/zram0/disksize && "
		  "mkswap /dev/zram0 >/dev/null && swapon /dev/zram0") == 0;
}

/* ---- a disk-backed file system ------------------------------------------- */

#define EXT4_DIR "/tmp/vgru-ext4"

/*
 * An ext4 file system on a loop device over a file in tmpfs, made once
 * per boot with the host's e2fsprogs.  Its page cache is written back
 * through the block layer and read from there again once dropped: a
 * disk, unlike tmpfs, whose pages are the data.
 */
static bool ext4_mounted(void)
{
	if (sh("grep -q ' " EXT4_DIR " ext4 ' /proc/mounts") == 0)
		return true;
	sh("modprobe -q loop; modprobe -q ext4");
	return sh("mkdir -p " EXT4_DIR " && "
		  "truncate -s 64M /run/vgru-ext4.img && "
		  "mkfs.ext4 -q -F -b 4096 /run/vgru-ext4.img && "
		  "mount -o loop /run/vgru-ext4.img " EXT4_DIR) == 0;
}

/* A new file of @len bytes of data on the ext4 file system. */
static int ext4_file(const char *name, const unsigned char *data, size_t len)
{
	char path[128];
	int fd;

	if (!ext4_mounted())
		SKIP("no ext4 on a loop device in this guest");
	snprintf(path, sizeof(path), EXT4_DIR "/%s", name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, data, len, 0), (ssize_t)len);
	CHECK_EQ(fsync(fd), 0);
	return fd;
}

/* How many of the @n pages of @fd's first bytes are in the page cache. */
static unsigned int pages_cached(int fd, size_t n)
{
	unsigned char vec[64];
	unsigned int cached = 0;
	void *m;

	CHECK(n <= 64);
	m = mmap(NULL, n * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	CHECK_EQ(mincore(m, n * PAGE, vec), 0);
	for (size_t i = 0; i < n; i++)
		cached += vec[i] & 1;
	CHECK_EQ(munmap(m, n * PAGE), 0);
	return cached;
}

/*
 * A MAP_SHARED ext4 file: device writes are seen by pread, pwrite by the
 * device.  Writeback: the device writes A, msync writes it back (and
 * write-protects the pages), the device writes B, msync again; with the
 * page cache dropped, the file read from the disk holds B.  Catches a
 * driver that lets the device write a page without the kernel knowing it
 * dirty: a writable translation kept across the write-protection, or a
 * write drop-in from a lookup not made for write.  B then sits in a
 * clean page, and dropping the cache loses it (the file holds A).
 */
TEST(ext4_shared_file_writeback)
{
	const size_t len = 8 * PAGE;
	unsigned char *src = map_anon(len, RW);
	unsigned char *dst = map_anon(len, RW);
	unsigned char *buf = map_anon(len, RW);
	struct vgru *v;
	unsigned char *m;
	int fd;

	fill(buf, len, 1);
	fd = ext4_file("writeback", buf, len);
	m = mmap(NULL, len, RW, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	v = open_ctx();

	fill(src, len, 2);
	CHECK_EQ(vgru_copy(v, m, src, len), 0);
	CHECK_EQ(pread(fd, buf, len, 0), (ssize_t)len);
	CHECK(memcmp(buf, src, len) == 0);

	fill(buf, len, 3);
	CHECK_EQ(pwrite(fd, buf, len, 0), (ssize_t)len);
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, m, len), 0);
	CHECK(memcmp(dst, buf, len) == 0);

	fill(src, len, 4);				/* A */
	CHECK_EQ(vgru_copy(v, m, src, len), 0);
	CHECK_EQ(msync(m, len, MS_SYNC), 0);
	fill(src, len, 5);				/* B */
	CHECK_EQ(vgru_copy(v, m, src, len), 0);
	CHECK_EQ(msync(m, len, MS_SYNC), 0);
	CHECK(memcmp(m, src, len) == 0);
	CHECK_EQ(munmap(m, len), 0);

	CHECK(write_knob("/proc/sys/vm/drop_caches", "3"));
	CHECK_EQ(pages_cached(fd, len / PAGE), 0);	/* read from disk */
	memset(buf, 0, len);
	CHECK_EQ(pread(fd, buf, len, 0), (ssize_t)len);
	CHECK(memcmp(buf, src, len) == 0);
	vgru_close(v);
	close(fd);
}

/*
 * ftruncate shrinking a MAP_SHARED ext4 file the device holds writable:
 * device reads and writes of the cut pages are -EFAULT (the copy stops
 * exactly at the new end); grown again, they read zeros, never the freed
 * pages' data.  Catches translations kept after truncation (the device
 * would read or write freed page-cache pages).
 */
TEST(ext4_ftruncate_cuts_device_access)
{
	const size_t len = 4 * PAGE;
	unsigned char *src = map_anon(len, RW);
	unsigned char *dst = map_anon(len, RW);
	unsigned char *buf = map_anon(len, RW);
	struct vgru *v;
	unsigned char *m;
	int fd;

	fill(buf, len, 6);
	fd = ext4_file("truncate", buf, len);
	m = mmap(NULL, len, RW, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	v = open_ctx();

	fill(src, len, 7);
	CHECK_EQ(vgru_copy(v, m, src, len), 0);	/* writable entries */
	CHECK_EQ(vgru_copy(v, dst, m, len), 0);
	CHECK(memcmp(dst, src, len) == 0);

	CHECK_EQ(ftruncate(fd, 2 * PAGE), 0);
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, m, len), -EFAULT);
	CHECK_EQ(vgru_last_progress(v), 2 * PAGE);
	CHECK(memcmp(dst, src, 2 * PAGE) == 0);
	CHECK(all_bytes(dst + 2 * PAGE, 2 * PAGE, 0xee));
	CHECK_EQ(vgru_copy(v, m + 2 * PAGE, src, PAGE), -EFAULT);
	CHECK_EQ(vgru_copy(v, m + 3 * PAGE, src, PAGE), -EFAULT);
	CHECK_EQ(vgru_last_progress(v), 0);

	CHECK_EQ(ftruncate(fd, len), 0);
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, m, len), 0);
	CHECK(memcmp(dst, src, 2 * PAGE) == 0);
	CHECK(all_bytes(dst + 2 * PAGE, 2 * PAGE, 0));
	CHECK_EQ(pread(fd, buf, len, 0), (ssize_t)len);
	CHECK(memcmp(dst, buf, len) == 0);
	vgru_close(v);
	close(fd);
}

/*
 * MADV_REMOVE punches pages out of a shmem file and of an ext4 file the
 * device holds writable: the device then reads zeros there, as pread
 * does, and its writes land in the file's new pages.  Catches
 * translations kept after the hole punch (the device would read the old
 * data, or write pages the file no longer has).
 */
TEST(madv_remove_shmem_and_ext4)
{
	const size_t len = 4 * PAGE;
	unsigned char *src = map_anon(len, RW);
	unsigned char *dst = map_anon(len, RW);
	unsigned char *buf = map_anon(len, RW);
	struct vgru *v = open_ctx();

	for (int kind = 0; kind < 2; kind++) {
		unsigned char *m;
		int fd;

		fill(buf, len, 8 + kind);
		if (kind == 0) {
			fd = memfd_create("vgru-accept", 0);
			CHECK(fd >= 0);
			CHECK_EQ(pwrite(fd, buf, len, 0), (ssize_t)len);
		} else {
			fd = ext4_file("remove", buf, len);
		}
		m = mmap(NULL, len, RW, MAP_SHARED, fd, 0);
		CHECK(m != MAP_FAILED);
		fill(src, len, 10 + kind);
		CHECK_EQ(vgru_copy(v, m, src, len), 0);	/* writable */

		CHECK_EQ(madvise(m + PAGE, 2 * PAGE, MADV_REMOVE), 0);
		memset(dst, 0xee, len);
		CHECK_EQ(vgru_copy(v, dst, m, len), 0);
		CHECK(memcmp(dst, src, PAGE) == 0);
		CHECK(all_bytes(dst + PAGE, 2 * PAGE, 0));
		CHECK(memcmp(dst + 3 * PAGE, src + 3 * PAGE, PAGE) == 0);
		CHECK_EQ(pread(fd, buf, len, 0), (ssize_t)len);
		CHECK(memcmp(dst, buf, len) == 0);

		fill(src, len, 12 + kind);
		CHECK_EQ(vgru_copy(v, m + PAGE, src, 2 * PAGE), 0);
		CHECK_EQ(pread(fd, buf, len, 0), (ssize_t)len);
		CHECK(memcmp(buf + PAGE, src, 2 * PAGE) == 0);
		CHECK_EQ(munmap(m, len), 0);
		close(fd);
	}
	vgru_close(v);
}

/* ---- transparent huge pages ---------------------------------------------- */

#define THP_ENABLED "/sys/kernel/mm/transparent_hugepage/enabled"

/* 2 MiB of anonymous memory in one huge page, or SKIP. */
static unsigned char *map_thp(void)
{
	char mode[128] = "";
	unsigned char *p;
	FILE *f = fopen(THP_ENABLED, "r");

	if (!f)
		SKIP("kernel without transparent huge pages");
	if (!fgets(mode, sizeof(mode), f))
		mode[0] = 0;
	fclose(f);
	if (strstr(mode, "[never]"))
		SKIP("transparent huge pages disabled");
	p = map_anon_hugealigned(HPAGE);
	CHECK_EQ(madvise(p, HPAGE, MADV_HUGEPAGE), 0);
	p[0] = 1;				/* one fault: one huge page */
	if (anon_huge_kb(p) < 2048)
		SKIP("no huge page was given (memory fragmented?)");
	return p;
}

/*
 * The device copies into and out of a transparent huge page, at odd
 * offsets and across its middle, byte for byte as the CPU sees it.
 * Catches a wrong sub-page of a huge page translated (an offset into the
 * compound page lost or doubled).
 */
TEST(thp_copy_in_and_out)
{
	unsigned char *p = map_thp();
	unsigned char *src = map_anon(HPAGE, RW);
	unsigned char *dst = map_anon(HPAGE, RW);
	struct vgru *v = open_ctx();

	fill(src, HPAGE, 14);
	CHECK_EQ(vgru_copy(v, p, src, HPAGE), 0);
	CHECK(memcmp(p, src, HPAGE) == 0);
	CHECK(anon_huge_kb(p) >= 2048);		/* still huge */

	fill(p, HPAGE, 15);
	memset(dst, 0xee, HPAGE);
	CHECK_EQ(vgru_copy(v, dst, p, HPAGE), 0);
	CHECK(memcmp(dst, p, HPAGE) == 0);

	memset(dst, 0xee, HPAGE);
	CHECK_EQ(vgru_copy(v, dst + 5, p + 300 * PAGE + 17, 100 * PAGE + 3), 0);
	CHECK(memcmp(dst + 5, p + 300 * PAGE + 17, 100 * PAGE + 3) == 0);
	CHECK(all_bytes(dst, 5, 0xee));
	fill(src, PAGE, 16);
	CHECK_EQ(vgru_copy(v, p + 511 * PAGE + 9, src, PAGE - 9), 0);
	CHECK(memcmp(p + 511 * PAGE + 9, src, PAGE - 9) == 0);
	vgru_close(v);
}

/*
 * A huge page the device holds (read and write) is split by a partial
 * munmap and a partial mprotect: the device gets -EFAULT exactly at the
 * unmapped page, -EPERM exactly at the read-only one (which it still
 * reads), and exact data everywhere else.  Catches translations of the
 * huge page kept over the split (the device would read the unmapped
 * page's old data, or write the read-only one).
 */
TEST(thp_split_by_munmap_and_mprotect)
{
	unsigned char *p = map_thp();
	unsigned char *src = map_anon(HPAGE, RW);
	unsigned char *dst = map_anon(HPAGE, RW);
	unsigned char *ref = map_anon(HPAGE, RW);
	struct vgru *v = open_ctx();
	const size_t hole = 5 * PAGE, ro = 9 * PAGE;

	fill(src, HPAGE, 17);
	CHECK_EQ(vgru_copy(v, p, src, HPAGE), 0);	/* writable */
	CHECK_EQ(vgru_copy(v, dst, p, HPAGE), 0);
	CHECK(memcmp(dst, src, HPAGE) == 0);
	memcpy(ref, p, HPAGE);

	CHECK_EQ(munmap(p + hole, PAGE), 0);
	memset(dst, 0xee, HPAGE);
	CHECK_EQ(vgru_copy(v, dst, p, HPAGE), -EFAULT);
	CHECK_EQ(vgru_last_progress(v), hole);
	CHECK(memcmp(dst, ref, hole) == 0);
	CHECK(all_bytes(dst + hole, HPAGE - hole, 0xee));
	CHECK_EQ(vgru_copy(v, p + hole, src, PAGE), -EFAULT);
	CHECK_EQ(vgru_copy(v, dst + hole + PAGE, p + hole + PAGE,
			   HPAGE - hole - PAGE), 0);
	CHECK(memcmp(dst + hole + PAGE, ref + hole + PAGE,
		     HPAGE - hole - PAGE) == 0);

	CHECK_EQ(mprotect(p + ro, PAGE, PROT_READ), 0);
	fill(src, HPAGE, 18);
	CHECK_EQ(vgru_copy(v, p + hole + PAGE, src, HPAGE - hole - PAGE),
		 -EPERM);
	CHECK_EQ(vgru_last_progress(v), ro - hole - PAGE);
	CHECK(memcmp(p + hole + PAGE, src, ro - hole - PAGE) == 0);
	CHECK(memcmp(p + ro, ref + ro, HPAGE - ro) == 0);
	memset(dst, 0xee, PAGE);
	CHECK_EQ(vgru_copy(v, dst, p + ro, PAGE), 0);	/* reads work */
	CHECK(memcmp(dst, ref + ro, PAGE) == 0);
	CHECK_EQ(vgru_copy(v, p + ro + PAGE, src, HPAGE - ro - PAGE), 0);
	CHECK(memcmp(p + ro + PAGE, src, HPAGE - ro - PAGE) == 0);
	CHECK_EQ(vgru_copy(v, dst, p, hole), 0);
	CHECK(memcmp(dst, p, hole) == 0);
	vgru_close(v);
}

#define KHUGEPAGED "/sys/kernel/mm/transparent_hugepage/khugepaged/"

/*
 * Small pages the device holds (read and write) are collapsed into a
 * huge page (MADV_COLLAPSE, or khugepaged scanning fast): the old pages
 * are freed, so the device must fault again and then see the CPU's
 * writes to the huge page, and the CPU its writes.  Catches translations
 * kept over the collapse (the device would use the freed small pages) and
 * a page reference kept by the driver (the collapse would fail).
 */
TEST(thp_collapse_keeps_device_view)
{
	unsigned char *p = map_anon_hugealigned(HPAGE);
	unsigned char *src = map_anon(HPAGE, RW);
	unsigned char *dst = map_anon(HPAGE, RW);
	struct vgru *v;
	long long sleep_ms = read_knob(KHUGEPAGED "scan_sleep_millisecs");

	if (access(THP_ENABLED, F_OK) != 0)
		SKIP("kernel without transparent huge pages");
	CHECK_EQ(madvise(p, HPAGE, MADV_NOHUGEPAGE), 0);
	fill(p, HPAGE, 19);			/* small pages */
	CHECK(anon_huge_kb(p) == 0);
	v = open_ctx();
	fill(src, HPAGE, 20);
	CHECK_EQ(vgru_copy(v, dst, p, HPAGE), 0);
	CHECK(memcmp(dst, p, HPAGE) == 0);
	CHECK_EQ(vgru_copy(v, p, src, HPAGE), 0);	/* writable */

	drain_lru_caches(p, 64);
	CHECK_EQ(madvise(p, HPAGE, MADV_HUGEPAGE), 0);
	if (madvise(p, HPAGE, MADV_COLLAPSE) != 0) {
		/* only a kernel without it may fall back: any other error
		 * (EAGAIN: a page held by someone) fails the case */
		if (errno != EINVAL) {
			printf("# MADV_COLLAPSE: %s\n", strerror(errno));
			CHECK(!"MADV_COLLAPSE failed");
		}
		printf("# no MADV_COLLAPSE; waiting for khugepaged\n");
		write_knob(KHUGEPAGED "scan_sleep_millisecs", "10");
		for (int i = 0; i < 200 && anon_huge_kb(p) < 2048; i++)
			usleep(100 * 1000);
		if (sleep_ms >= 0)
			write_knob(KHUGEPAGED "scan_sleep_millisecs", "%lld",
				   sleep_ms);
	}
	if (anon_huge_kb(p) < 2048)
		SKIP("the pages were not collapsed in 20 s");
	CHECK(memcmp(p, src, HPAGE) == 0);

	fill(p, HPAGE, 21);			/* the CPU writes */
	memset(dst, 0xee, HPAGE);
	CHECK_EQ(vgru_copy(v, dst, p, HPAGE), 0);
	CHECK(memcmp(dst, p, HPAGE) == 0);
	fill(src, HPAGE, 22);			/* the device writes */
	CHECK_EQ(vgru_copy(v, p, src, HPAGE), 0);
	CHECK(memcmp(p, src, HPAGE) == 0);
	CHECK(anon_huge_kb(p) >= 2048);
	vgru_close(v);
}

/* ---- hugetlbfs ----------------------------------------------------------- */

#define NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"

/* A 2 MiB MAP_HUGETLB mapping at @at, a mapping of its own. */
static unsigned char *map_hugetlb_at(unsigned char *at)
{
	void *p = mmap(at, HPAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS |
		       MAP_HUGETLB | MAP_FIXED, -1, 0);

	CHECK(p == at);
	return p;
}

/*
 * hugetlbfs 2 MiB pages (two reserved for the test, MAP_HUGETLB, mapped
 * side by side): copies both ways and across the boundary between the
 * two pages are exact; after munmap of the second the copy stops exactly
 * at it (-EFAULT), and both are -EFAULT once all is unmapped.  Catches a
 * wrong offset into a huge page or across two, and translations kept
 * after the unmap.  (Each page is its own mapping: munmap of half a
 * hugetlb mapping trips a lockdep assertion in Debian's 6.1 kernel,
 * hugetlb_split() without the i_mmap lock, which is not ours to test.)
 */
TEST(hugetlb_copy_and_munmap)
{
	const size_t len = 2 * HPAGE;
	unsigned char *src = map_anon(len, RW);
	unsigned char *dst = map_anon(len, RW);
	long long nr = read_knob(NR_HUGEPAGES);
	struct vgru *v;
	unsigned char *h;

	if (nr < 0)
		SKIP("kernel without hugetlbfs");
	if (!write_knob(NR_HUGEPAGES, "%lld", nr + 2) ||
	    read_knob(NR_HUGEPAGES) < nr + 2) {
		write_knob(NR_HUGEPAGES, "%lld", nr);
		SKIP("cannot reserve two 2 MiB pages");
	}
	h = map_anon_hugealigned(len);
	map_hugetlb_at(h);
	map_hugetlb_at(h + HPAGE);
	v = open_ctx();

	fill(h, len, 23);
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, h, len), 0);
	CHECK(memcmp(dst, h, len) == 0);
	fill(src, len, 24);
	CHECK_EQ(vgru_copy(v, h, src, len), 0);
	CHECK(memcmp(h, src, len) == 0);
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst + 1, h + HPAGE - 3 * PAGE - 5, 6 * PAGE), 0);
	CHECK(memcmp(dst + 1, src + HPAGE - 3 * PAGE - 5, 6 * PAGE) == 0);
	fill(src, PAGE, 25);
	CHECK_EQ(vgru_copy(v, h + HPAGE - 7, src, 14), 0);
	CHECK(memcmp(h + HPAGE - 7, src, 14) == 0);

	CHECK_EQ(munmap(h + HPAGE, HPAGE), 0);
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, h, len), -EFAULT);
	CHECK_EQ(vgru_last_progress(v), HPAGE);
	CHECK(memcmp(dst, h, HPAGE) == 0);
	CHECK(all_bytes(dst + HPAGE, HPAGE, 0xee));
	CHECK_EQ(munmap(h, HPAGE), 0);
	CHECK_EQ(vgru_copy(v, dst, h, PAGE), -EFAULT);
	CHECK_EQ(vgru_copy(v, h, src, PAGE), -EFAULT);
	CHECK_EQ(vgru_last_progress(v), 0);
	vgru_close(v);
	write_knob(NR_HUGEPAGES, "%lld", nr);
}

/* ---- KSM ----------------------------------------------------------------- */

#define KSM "/sys/kernel/mm/ksm/"
#define KSM_PAGES 8

/*
 * KSM merges identical pages the device holds (it wrote them, so its
 * translations were writable): the merge write-protects and replaces
 * them, and a device write to one page must then break copy-on-write for
 * that page alone -- the CPU sees the device's data there, and every
 * other page keeps the shared data.  Catches a writable translation kept
 * over the merge: the device would write the shared KSM page (every
 * merged page changes) or a freed one (the CPU never sees the write),
 * and a page reference kept by the driver (KSM merges no such page).
 */
TEST(ksm_merge_then_device_write_breaks_cow)
{
	const size_t len = KSM_PAGES * PAGE;
	unsigned char *a = map_anon(len, RW);
	unsigned char *src = map_anon(len, RW);
	unsigned char *dst = map_anon(len, RW);
	long long run = read_knob(KSM "run"),
		  sleep_ms = read_knob(KSM "sleep_millisecs"),
		  scan = read_knob(KSM "pages_to_scan");
	uint64_t pfn0 = 0;
	struct vgru *v;
	int merged = 0;

	if (run < 0)
		SKIP("kernel without KSM");
	for (size_t p = 0; p < len; p += PAGE)
		fill(src + p, PAGE, 26);		/* identical pages */
	v = open_ctx();
	CHECK_EQ(vgru_copy(v, a, src, len), 0);	/* writable entries */
	CHECK_EQ(vgru_copy(v, dst, a, len), 0);
	CHECK(memcmp(dst, src, len) == 0);

	CHECK_EQ(madvise(a, len, MADV_MERGEABLE), 0);
	CHECK(write_knob(KSM "sleep_millisecs", "10"));
	CHECK(write_knob(KSM "pages_to_scan", "5000"));
	CHECK(write_knob(KSM "run", "1"));
	for (int i = 0; i < 300 && merged < KSM_PAGES; i++) {
		usleep(100 * 1000);
		pfn0 = pfn_of(a);
		merged = 0;
		for (size_t p = 0; p < len; p += PAGE)
			merged += pfn_of(a + p) == pfn0;
	}
	CHECK(write_knob(KSM "run", "%lld", run));
	write_knob(KSM "sleep_millisecs", "%lld", sleep_ms);
	write_knob(KSM "pages_to_scan", "%lld", scan);
	/* KSM merges only pages no one else holds: not merging in 30 s
	 * (the guest takes about a second) means a reference is kept */
	if (merged < KSM_PAGES)
		printf("# %d of %d pages merged in 30 s\n", merged, KSM_PAGES);
	CHECK_EQ(merged, KSM_PAGES);

	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, a, len), 0);	/* reads the KSM page */
	CHECK(memcmp(dst, src, len) == 0);
	fill(dst, PAGE, 27);
	CHECK_EQ(vgru_copy(v, a + 3 * PAGE, dst, PAGE), 0);
	CHECK(memcmp(a + 3 * PAGE, dst, PAGE) == 0);	/* the CPU sees it */
	CHECK(pfn_of(a + 3 * PAGE) != pfn0);		/* its own page now */
	for (size_t p = 0; p < len; p += PAGE)
		if (p != 3 * PAGE)
			CHECK(memcmp(a + p, src + p, PAGE) == 0);
	CHECK_EQ(pfn_of(a), pfn0);			/* still shared */
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, a, len), 0);
	CHECK(memcmp(dst, a, len) == 0);
	vgru_close(v);
}

/* ---- compaction ---------------------------------------------------------- */

#define COMPACT_PAGES	1024
#define POOL_PAGES	32768

/* The pagemap entries of the @n pages from @addr, in one read. */
static void pagemap_range(const void *addr, size_t n, uint64_t *out)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);

	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, out, n * sizeof(*out),
		       (uintptr_t)addr / PAGE * sizeof(*out)),
		 (ssize_t)(n * sizeof(*out)));
	close(fd);
}

struct frame {
	uint64_t pfn;
	size_t index;
};

static int by_pfn(const void *a, const void *b)
{
	const struct frame *x = a, *y = b;

	return x->pfn < y->pfn ? -1 : x->pfn > y->pfn;
}

/*
 * Compaction moves pages the device holds.  It migrates in-use pages
 * from the low end of a zone into the free pages of partly used blocks
 * at the high end, until the two scans meet.  So the device's pages are
 * the 1024 lowest frames of a 128 MiB pool, and every other page of the
 * rest of the pool is freed: holes above them to move into.  The device
 * reads and writes its pages, /proc/sys/vm/compact_memory moves some of
 * them (pagemap tells), and afterwards the CPU's writes reach the device
 * and the device's reach the CPU, on every page, moved or not.  Catches
 * translations kept over migration (the device would use the old
 * frames) and a page reference kept by the driver (none of the pages
 * would move: the case fails when none did).
 */
TEST(compaction_moves_device_pages)
{
	unsigned char *pool = map_anon(POOL_PAGES * PAGE, RW);
	unsigned char *src = map_anon(PAGE, RW);
	unsigned char *dst = map_anon(PAGE, RW);
	struct frame *f = (struct frame *)map_anon(POOL_PAGES * sizeof(*f), RW);
	uint64_t *pm = (uint64_t *)map_anon(POOL_PAGES * 8, RW);
	unsigned char *page[COMPACT_PAGES];
	uint64_t pfn[COMPACT_PAGES];
	unsigned int moved = 0;
	struct vgru *v;

	if (access("/proc/sys/vm/compact_memory", W_OK) != 0)
		SKIP("kernel without compaction");
	/* memory as compaction leaves it: the pool's holes are the only
	 * free pages in partly used blocks */
	CHECK(write_knob("/proc/sys/vm/compact_memory", "1"));
	CHECK_EQ(madvise(pool, POOL_PAGES * PAGE, MADV_NOHUGEPAGE), 0);
	memset(pool, 0x5a, POOL_PAGES * PAGE);
	pagemap_range(pool, POOL_PAGES, pm);
	for (size_t i = 0; i < POOL_PAGES; i++) {
		CHECK(pm[i] & PM_PRESENT);
		f[i] = (struct frame){ pm[i] & PM_PFN_MASK, i };
	}
	qsort(f, POOL_PAGES, sizeof(*f), by_pfn);
	for (size_t i = COMPACT_PAGES; i < POOL_PAGES; i += 2)
		CHECK_EQ(madvise(pool + f[i].index * PAGE, PAGE,
				 MADV_DONTNEED), 0);

	v = open_ctx();
	for (size_t i = 0; i < COMPACT_PAGES; i++) {
		page[i] = pool + f[i].index * PAGE;
		fill(src, PAGE, i);
		CHECK_EQ(vgru_copy(v, page[i], src, PAGE), 0);	/* writable */
		CHECK_EQ(vgru_copy(v, dst, page[i], PAGE), 0);
		CHECK(memcmp(dst, src, PAGE) == 0);
	}
	for (size_t i = 0; i < COMPACT_PAGES; i += 64)
		drain_lru_caches(page[i], 1);
	for (size_t i = 0; i < COMPACT_PAGES; i++)
		pfn[i] = pfn_of(page[i]);

	/* where the scans meet varies: up to three rounds */
	for (int round = 0; round < 3 && !moved; round++) {
		CHECK(write_knob("/proc/sys/vm/compact_memory", "1"));
		for (size_t i = 0; i < COMPACT_PAGES; i++)
			moved += pfn_of(page[i]) != pfn[i];
		printf("# round %d: %u of %u device-mapped pages moved\n",
		       round + 1, moved, COMPACT_PAGES);
	}
	CHECK(moved > 0);

	for (size_t i = 0; i < COMPACT_PAGES; i++) {
		fill(page[i], PAGE, 3 * i + 1);		/* the CPU writes */
		memset(dst, 0xee, PAGE);
		CHECK_EQ(vgru_copy(v, dst, page[i], PAGE), 0);
		CHECK(memcmp(dst, page[i], PAGE) == 0);
		fill(src, PAGE, 3 * i + 2);		/* the device writes */
		CHECK_EQ(vgru_copy(v, page[i], src, PAGE), 0);
		CHECK(memcmp(page[i], src, PAGE) == 0);
	}
	vgru_close(v);
}

/* ---- reclaim ------------------------------------------------------------- */

#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

/*
 * MADV_COLD then MADV_PAGEOUT (to zram swap) of pages the device holds
 * writable: after MADV_COLD (deactivated, still mapped) the device still
 * reads and writes them as the CPU sees them; after MADV_PAGEOUT they are
 * in swap, and a device write swaps them in again and reaches the CPU,
 * a device read returns the data written before.  Catches translations
 * kept over swap-out (the device would write freed frames: the CPU would
 * not see the write).
 */
TEST(madv_cold_and_pageout)
{
	const unsigned long n = 16;
	const size_t len = n * PAGE;
	unsigned char *a = map_anon(len, RW);
	unsigned char *src = map_anon(len, RW);
	unsigned char *dst = map_anon(len, RW);
	unsigned char *ref = map_anon(len, RW);
	struct vgru *v;

	if (!zram_swap_on())
		SKIP("no zram swap in this guest");
	v = open_ctx();
	fill(src, len, 30);
	CHECK_EQ(vgru_copy(v, a, src, len), 0);	/* writable */

	CHECK_EQ(madvise(a, len, MADV_COLD), 0);
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, a, len), 0);
	CHECK(memcmp(dst, src, len) == 0);
	fill(src, len, 31);
	CHECK_EQ(vgru_copy(v, a, src, len), 0);
	CHECK(memcmp(a, src, len) == 0);
	memcpy(ref, a, len);

	drain_lru_caches(a, n);
	CHECK_EQ(madvise(a, len, MADV_PAGEOUT), 0);
	for (unsigned long i = 0; i < n; i++)
		CHECK(pagemap(0, a + i * PAGE) & PM_SWAPPED);
	fill(src, len / 2, 32);			/* device writes half */
	CHECK_EQ(vgru_copy(v, a, src, len / 2), 0);
	CHECK(memcmp(a, src, len / 2) == 0);
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, a, len), 0);	/* reads the rest in */
	CHECK(memcmp(dst, src, len / 2) == 0);
	CHECK(memcmp(dst + len / 2, ref + len / 2, len / 2) == 0);
	CHECK(memcmp(dst, a, len) == 0);
	vgru_close(v);
}

#define PRESSURE_PAGES	32
#define LRU_GEN		"/sys/kernel/mm/lru_gen/enabled"

/*
 * Memory pressure from another process evicts pages the device holds:
 * with zram swap on, a child goes over and over more memory than is free
 * (most of it first taken by reserved huge pages, so the child's share is
 * small) until the kernel's reclaim -- no madvise -- has swapped the
 * parent's device-mapped pages out.  The device then reads the data
 * written before and its writes reach the CPU.  Catches translations kept over reclaim (the device
 * would read or write freed frames).
 */
TEST(reclaim_by_another_process)
{
	const size_t len = PRESSURE_PAGES * PAGE;
	unsigned char *a = map_anon(len, RW);
	unsigned char *src = map_anon(len, RW);
	unsigned char *dst = map_anon(len, RW);
	long long nr = read_knob(NR_HUGEPAGES),
		  swappiness = read_knob("/proc/sys/vm/swappiness"), huge;
	unsigned int swapped = 0;
	pid_t parent = getpid(), pid;
	bool lru_gen_was_off;
	struct vgru *v;
	int status;

	if (!zram_swap_on())
		SKIP("no zram swap in this guest");
	CHECK(write_knob("/proc/self/oom_score_adj", "-1000"));
	v = open_ctx();
	fill(src, len, 33);
	CHECK_EQ(vgru_copy(v, a, src, len), 0);	/* writable */
	CHECK_EQ(vgru_copy(v, dst, a, len), 0);
	CHECK(memcmp(dst, src, len) == 0);
	/*
	 * The device's lookups marked the pages accessed, which puts them
	 * on the active list, where the classic LRU's reclaim for a process
	 * that only adds new pages does not reach them in any bounded time
	 * (tried: 800 MiB of churn).  The multi-generational LRU ages them
	 * by when they were last used, so the parent's pages go first:
	 * switch it on for the case.  Without it, MADV_COLD puts them first
	 * in line (it evicts nothing).
	 */
	lru_gen_was_off = sh("grep -q 0x0000 " LRU_GEN) == 0;
	drain_lru_caches(a, PRESSURE_PAGES);
	if (!write_knob(LRU_GEN, "y")) {
		printf("# no multi-generational LRU: MADV_COLD\n");
		CHECK_EQ(madvise(a, len, MADV_COLD), 0);
		drain_lru_caches(a, PRESSURE_PAGES);
	}
	for (size_t p = 0; p < len; p += PAGE)
		CHECK(pagemap(0, a + p) & PM_PRESENT);

	/* leave about 96 MiB free: the child need not fill a whole guest */
	if (nr >= 0)
		write_knob(NR_HUGEPAGES, "%lld", nr +
			   (meminfo_kb("MemFree") - 96 * 1024) / 2048);
	write_knob("/proc/sys/vm/swappiness", "200");	/* anon first */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* more than is free, gone over until the parent's first
		 * and last pages are out (or 8 times: then the case skips) */
		const size_t max = (meminfo_kb("MemAvailable") + 65536) * 1024;
		unsigned char *m = mmap(NULL, max, RW, MAP_PRIVATE |
					MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		write_knob("/proc/self/oom_score_adj", "1000");
		CHECK(m != MAP_FAILED);
		for (int pass = 0; pass < 8; pass++) {
			for (size_t off = 0; off < max; off += PAGE) {
				/* one word a page: zram compresses it */
				*(size_t *)(m + off) += off;
				if (off % (256 * PAGE) == 0 &&
				    swapped_out(parent, a) &&
				    swapped_out(parent, a + len - PAGE))
					_exit(0);
			}
		}
		_exit(3);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	huge = read_knob(NR_HUGEPAGES) - nr;
	if (nr >= 0)
		write_knob(NR_HUGEPAGES, "%lld", nr);
	if (swappiness >= 0)
		write_knob("/proc/sys/vm/swappiness", "%lld", swappiness);
	if (lru_gen_was_off)
		write_knob(LRU_GEN, "n");
	for (size_t p = 0; p < len; p += PAGE)
		swapped += !!(pagemap(0, a + p) & PM_SWAPPED);
	printf("# child status 0x%x, %u of %d pages swapped out, "
	       "%lld huge pages reserved\n", status, swapped, PRESSURE_PAGES,
	       huge);
	if (swapped == 0)
		SKIP("reclaim did not reach the pages");

	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, a, len), 0);
	CHECK(memcmp(dst, src, len) == 0);
	fill(src, len, 34);
	CHECK_EQ(vgru_copy(v, a, src, len), 0);
	CHECK(memcmp(a, src, len) == 0);
	vgru_close(v);
}

/* ---- security ------------------------------------------------------------ */

/*
 * What another process can do with a vgru file that is not its own.  The
 * driver has two paths to the device: the context's window (mmap), where
 * commands are written, and ioctls (today only INFO and STATS, which
 * start nothing).  A process other than the opener gets EACCES from mmap,
 * cannot reach the opener's window through the kernel's remote-access
 * paths, and no command starts.
 */
static void window_unreachable(int fd, pid_t opener, void *window)
{
	char c = 1;
	struct iovec local = { &c, 1 }, remote = { window, 1 };
	char path[64];
	void *p;
	int mem;

	p = mmap(NULL, VGRU_WINDOW_SIZE, RW, MAP_SHARED, fd, 0);
	CHECK(p == MAP_FAILED);
	CHECK_EQ(errno, EACCES);
	if (!window)
		return;
	/* the opener's window is I/O memory: no remote access reaches it */
	CHECK_EQ(process_vm_writev(opener, &local, 1, &remote, 1, 0), -1);
	CHECK_EQ(errno, EFAULT);
	CHECK_EQ(process_vm_readv(opener, &local, 1, &remote, 1, 0), -1);
	CHECK_EQ(errno, EFAULT);
	snprintf(path, sizeof(path), "/proc/%d/mem", opener);
	mem = open(path, O_RDWR);
	CHECK(mem >= 0);
	CHECK_EQ(pwrite(mem, &c, 1, (uintptr_t)window), -1);
	CHECK_EQ(errno, EIO);
	close(mem);
}

static void send_fd(int sock, int fd, void *window)
{
	char buf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &window, sizeof(window) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = buf, .msg_controllen = sizeof(buf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	CHECK_EQ(sendmsg(sock, &msg, 0), (ssize_t)sizeof(window));
}

static int recv_fd(int sock, void **window)
{
	char buf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { window, sizeof(*window) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = buf, .msg_controllen = sizeof(buf),
	};
	struct cmsghdr *cm;
	int fd;

	CHECK_EQ(recvmsg(sock, &msg, 0), (ssize_t)sizeof(*window));
	cm = CMSG_FIRSTHDR(&msg);
	CHECK(cm && cm->cmsg_type == SCM_RIGHTS);
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/*
 * An fd passed by SCM_RIGHTS to an unrelated process (forked before the
 * open, so it shares nothing else): the receiver cannot map the window
 * (EACCES), cannot write or read the opener's mapped window through
 * process_vm_writev/readv (EFAULT) or /proc/PID/mem (EIO), and starts no
 * command; then the opener exits and the receiver, the file's last
 * holder, still cannot map it.  The opener's own copies keep working.
 * Catches a driver that lets any holder of the file map the window.
 */
TEST(scm_rights_fd_cannot_reach_opener)
{
	unsigned char *buf = map_anon(2 * PAGE, RW);
	int sv[2], go[2], status, fd;
	uint64_t cmds;
	void *window;
	pid_t pid;
	char c;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	CHECK_EQ(pipe(go), 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {			/* the receiver */
		fd = recv_fd(sv[1], &window);
		cmds = sysfs_stat("device_commands");
		window_unreachable(fd, getppid(), window);
		CHECK_EQ(sysfs_stat("device_commands"), cmds);
		CHECK_EQ(write(sv[1], "d", 1), 1);
		CHECK_EQ(read(go[0], &c, 1), 1);	/* the opener is gone */
		window_unreachable(fd, 0, NULL);
		close(fd);
		_exit(0);
	}
	close(sv[1]);		/* a receiver that died: read gives 0 */
	close(go[0]);
	fd = open("/dev/vgru0", O_RDWR);
	CHECK(fd >= 0);
	window = mmap(NULL, VGRU_WINDOW_SIZE, RW, MAP_SHARED, fd, 0);
	CHECK(window != MAP_FAILED);
	send_fd(sv[0], fd, window);
	CHECK_EQ(read(sv[0], &c, 1), 1);
	{
		struct vgru *v = open_ctx();

		fill(buf, PAGE, 35);
		CHECK_EQ(vgru_copy(v, buf + PAGE, buf, PAGE), 0);
		CHECK(memcmp(buf, buf + PAGE, PAGE) == 0);
		vgru_close(v);
	}
	/* the opener's side goes away: mapping and file */
	CHECK_EQ(munmap(window, VGRU_WINDOW_SIZE), 0);
	CHECK_EQ(close(fd), 0);
	CHECK_EQ(write(go[1], "g", 1), 1);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_EQ(status, 0);
}

/*
 * A file inherited across fork: the child does not inherit the window
 * mapping (touching its address kills it with SIGSEGV), cannot map the
 * window (EACCES) nor reach the parent's through /proc or
 * process_vm_writev, and no command starts.  Across execve (a file opened
 * without O_CLOEXEC, handed to this program run again): the new program
 * cannot map it either (EACCES).  Catches a window copied into the child
 * and an mm check that compares processes rather than address spaces.
 */
TEST(inherited_fd_fork_and_exec)
{
	int fd = open("/dev/vgru0", O_RDWR), status;
	volatile unsigned char *window;
	uint64_t cmds;
	char arg[16];
	pid_t pid;

	CHECK(fd >= 0);
	window = mmap(NULL, VGRU_WINDOW_SIZE, RW, MAP_SHARED, fd, 0);
	CHECK(window != MAP_FAILED);
	cmds = sysfs_stat("device_commands");

	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		(void)window[0];	/* not inherited: SIGSEGV */
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);

	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		window_unreachable(fd, getppid(), (void *)window);
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_EQ(status, 0);

	snprintf(arg, sizeof(arg), "%d", fd);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		execl("/proc/self/exe", "vgru-accept", "--exec-child", arg,
		      (char *)NULL);
		_exit(126);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_EQ(status, 0);
	CHECK_EQ(sysfs_stat("device_commands"), cmds);
	CHECK_EQ(munmap((void *)window, VGRU_WINDOW_SIZE), 0);
	CHECK_EQ(close(fd), 0);
}

/* The program run again by inherited_fd_fork_and_exec, with the file. */
static int exec_child(const char *arg)
{
	int fd = atoi(arg);
	void *p;

	if (fcntl(fd, F_GETFD) < 0)
		return 2;		/* the file did not survive execve */
	p = mmap(NULL, VGRU_WINDOW_SIZE, RW, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED || errno != EACCES)
		return 3;
	return 0;
}

/*
 * Addresses the device must refuse: non-canonical (0x0000800000000000
 * with 4-level paging; 0x0100000000000000 with either) and kernel
 * (0xffff800000000000, 0xffffffff81000000) addresses are -EFAULT as
 * source and destination; a range that ends at 2^64 - 1 is -EFAULT, one
 * a byte longer wraps: -EINVAL; a copy from the last user page stops
 * exactly at the end of user space.  Catches a driver or device that
 * translates kernel or wrapped addresses, or checks the range by one
 * byte too much or too little.
 */
TEST(bad_addresses_and_ranges)
{
	static const uint64_t bad[] = {
		0x0000800000000000ULL, 0x0100000000000000ULL,
		0xffff800000000000ULL, 0xffffffff81000000ULL,
	};
	unsigned char *buf = map_anon(2 * PAGE, RW);
	unsigned char *guard = map_anon(2 * PAGE, RW);
	struct vgru *v = open_ctx();
	unsigned char *top;

	fill(buf, 2 * PAGE, 36);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		void *b = (void *)(uintptr_t)bad[i];

		CHECK_EQ(vgru_copy(v, buf, b, 16), -EFAULT);
		CHECK_EQ(vgru_copy(v, b, buf, 16), -EFAULT);
		CHECK_EQ(vgru_last_progress(v), 0);
	}
	CHECK_EQ(vgru_copy(v, buf, (void *)-PAGE, PAGE), -EFAULT);
	CHECK_EQ(vgru_copy(v, buf, (void *)-PAGE, PAGE + 1), -EINVAL);
	CHECK_EQ(vgru_copy(v, (void *)-PAGE, buf, PAGE), -EFAULT);
	CHECK_EQ(vgru_copy(v, (void *)-PAGE, buf, PAGE + 1), -EINVAL);
	CHECK_EQ(vgru_copy(v, buf + 1, buf, SIZE_MAX), -EINVAL);
	/* a length past the readable page runs into the guard page */
	CHECK_EQ(mprotect(guard + PAGE, PAGE, PROT_NONE), 0);
	CHECK_EQ(vgru_copy(v, buf, guard, 2 * PAGE), -EFAULT);
	CHECK_EQ(vgru_last_progress(v), PAGE);
	/* a huge one that does not wrap covers both ranges: they overlap */
	CHECK_EQ(vgru_copy(v, buf, guard, SIZE_MAX / 2), -EINVAL);
	CHECK_EQ(vgru_last_progress(v), 0);

	/* the last page below 2^47: user space ends after it (4-level) */
	top = mmap((void *)(0x800000000000UL - 2 * PAGE), PAGE, RW,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (top != MAP_FAILED) {
		memset(buf, 0xee, 2 * PAGE);
		fill(top, PAGE, 37);
		CHECK_EQ(vgru_copy(v, buf, top, 2 * PAGE), -EFAULT);
		CHECK_EQ(vgru_last_progress(v), PAGE);
		CHECK(memcmp(buf, top, PAGE) == 0);
		CHECK(all_bytes(buf + PAGE, PAGE, 0xee));
	} else {
		printf("# the page below 2^47 is taken: not checked\n");
	}
	/* the context still works */
	fill(buf, PAGE, 38);
	CHECK_EQ(vgru_copy(v, buf + PAGE, buf, PAGE), 0);
	CHECK(memcmp(buf, buf + PAGE, PAGE) == 0);
	vgru_close(v);
}

/* ---- device node permissions --------------------------------------------- */

#define NOBODY_GID 65534

/*
 * The shipped rule (udev/60-vgru.rules; tests/run-tests names it in
 * VGRU_UDEV_RULES, else it is looked for beside the build directory).
 */
static const char *udev_rules(void)
{
	static char path[4096];
	const char *env = getenv("VGRU_UDEV_RULES");
	ssize_t n;

	if (env)
		return env;
	/* BUILD/tests/vgru-accept -> BUILD/../udev/60-vgru.rules */
	n = readlink("/proc/self/exe", path, sizeof(path) - 64);
	CHECK(n > 0);
	path[n] = 0;
	for (int up = 0; up < 3; up++)
		*strrchr(path, '/') = 0;
	strcat(path, "/udev/60-vgru.rules");
	return path;
}

/* Become user @uid with the group vgru (@gid) as a supplementary group,
 * or with none (@gid < 0). */
static void become_user(uid_t uid, int gid)
{
	gid_t g = gid;

	CHECK_EQ(setgroups(gid < 0 ? 0 : 1, &g), 0);
	CHECK_EQ(setgid(NOBODY_GID), 0);
	CHECK_EQ(setuid(uid), 0);
	CHECK(geteuid() == uid && getegid() == NOBODY_GID);
}

/* The core copy cases as an unprivileged user: exact data at odd sizes
 * and offsets, -EFAULT after munmap, -EPERM into a read-only page. */
static void core_cases_as_user(void)
{
	static const size_t sizes[] = { 1, 4095, 4096, 4097, 65537, 1 << 20 };
	const size_t max = (1 << 20) + 2 * PAGE;
	unsigned char *src = map_anon(max, RW), *dst = map_anon(max, RW);
	unsigned char *ro = map_anon(PAGE, PROT_READ);
	struct vgru *v = open_ctx();

	for (unsigned int i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		fill(src, max, 40 + i);
		memset(dst, 0xee, max);
		CHECK_EQ(vgru_copy(v, dst + i, src + 3 * i, sizes[i]), 0);
		CHECK(memcmp(dst + i, src + 3 * i, sizes[i]) == 0);
		CHECK(all_bytes(dst, i, 0xee));
		CHECK_EQ(dst[i + sizes[i]], 0xee);
	}
	CHECK_EQ(vgru_copy(v, ro, src, PAGE), -EPERM);
	CHECK(all_bytes(ro, PAGE, 0));
	CHECK_EQ(munmap(src, max), 0);
	CHECK_EQ(vgru_copy(v, dst, src, PAGE), -EFAULT);
	vgru_close(v);
}

/*
 * The udev rule shipped in udev/60-vgru.rules, applied by the host's
 * systemd-udevd started in the guest: /dev/vgru0, root's and mode 0600
 * before, becomes group vgru, mode 0660.  A user in that group (any
 * uid, supplementary group only) opens a context and passes the core
 * copy cases; a user outside it gets EACCES on open.  Catches a rule
 * that does not match the node (wrong KERNEL or SUBSYSTEM: the mode
 * stays 0600 and the group member gets EACCES), or that opens the node
 * to everyone (the outsider opens it).
 */
TEST(udev_rule_gives_the_group_access)
{
	const char *rules = udev_rules();
	struct stat st;
	struct group *gr;
	int status;
	pid_t pid;

	if (access("/lib/systemd/systemd-udevd", X_OK) != 0 ||
	    sh("command -v udevadm > /dev/null") != 0)
		SKIP("no udev in this guest (Debian package udev)");
	CHECK(access(rules, R_OK) == 0);
	CHECK_EQ(stat("/dev/vgru0", &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0600);	/* the kernel's default */
	CHECK_EQ(st.st_gid, 0);

	CHECK_EQ(sh("getent group vgru >/dev/null || groupadd --system vgru"),
		 0);
	gr = getgrnam("vgru");
	CHECK(gr != NULL);
	CHECK_EQ(sh("mkdir -p /run/udev/rules.d && cp '%s' /run/udev/rules.d/",
		    rules), 0);
	/* the guest's init runs the tests chrooted into the host's root,
	 * where udev would ignore every request: tell it to go on */
	setenv("SYSTEMD_IGNORE_CHROOT", "1", 1);
	CHECK_EQ(sh("/lib/systemd/systemd-udevd --daemon 2> /dev/null && "
		    "udevadm trigger --action=add --subsystem-match=vgru && "
		    "udevadm settle --timeout=60"), 0);
	sh("udevadm control --exit");
	CHECK_EQ(stat("/dev/vgru0", &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0660);
	CHECK_EQ(st.st_gid, gr->gr_gid);
	CHECK_EQ(st.st_uid, 0);

	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		become_user(4242, gr->gr_gid);
		core_cases_as_user();
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_EQ(status, 0);

	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct vgru *v = NULL;

		become_user(4243, -1);
		CHECK_EQ(open("/dev/vgru0", O_RDWR), -1);
		CHECK_EQ(errno, EACCES);
		CHECK_EQ(vgru_open(NULL, &v), -EACCES);
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_EQ(status, 0);
}

/*
 * Root-only interfaces refuse other users: the device-wide counters in
 * sysfs (they show every process's use of the device: bytes, commands,
 * faults) and the driver's debugfs files (latency histogram, held pages,
 * test knobs: mode 0400/0600, root's).  A user reads only its own
 * context's counters (vgru_stats).  Fails if the driver makes them
 * readable by others again.
 */
TEST(root_only_interfaces_refuse_others)
{
	/* the driver's debugfs files: root's, nothing for group or others */
	static const char *const debugfs[] = {
		"/sys/kernel/debug/vgru/inject_resolve_delay_us",
		"/sys/kernel/debug/vgru/vgru0/fault_latency_us",
		"/sys/kernel/debug/vgru/vgru0/held",
		"/sys/kernel/debug/vgru/vgru0/next_tag",
	};
	const unsigned int nr_debugfs = sizeof(debugfs) / sizeof(debugfs[0]);
	struct stat st;
	int status;
	pid_t pid;

	for (unsigned int i = 0; i < nr_debugfs; i++) {
		CHECK_EQ(stat(debugfs[i], &st), 0);
		CHECK_EQ(st.st_uid, 0);
		CHECK_EQ(st.st_mode & 077, 0);
	}
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int fd;

		become_user(4244, -1);
		CHECK_EQ(open("/sys/kernel/debug/vgru", O_RDONLY), -1);
		CHECK(errno == EACCES || errno == ENOENT);
		for (unsigned int i = 0; i < nr_debugfs; i++) {
			CHECK_EQ(open(debugfs[i], O_RDONLY), -1);
			CHECK_EQ(errno, EACCES);
		}
		/* device-wide counters: one of each kind */
		fd = open("/sys/class/vgru/vgru0/stats/device_bytes", O_RDONLY);
		CHECK_EQ(fd, -1);
		CHECK_EQ(errno, EACCES);
		fd = open("/sys/class/vgru/vgru0/stats/driver_faults", O_RDONLY);
		CHECK_EQ(fd, -1);
		CHECK_EQ(errno, EACCES);
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_EQ(status, 0);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--exec-child"))
		return exec_child(argv[2]);
	return run_tests(argc, argv);
}
