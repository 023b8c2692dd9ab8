// SPDX-License-Identifier: MIT
/*
 * vgru-tests: the driver and device through libvgru, inside the guest.
 * Every test opens its own context, so its counters start at zero.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <grp.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include <linux/userfaultfd.h>

#include "guest-util.h"
#include "harness.h"
#include "libvgru.h"
#include "vgru_ioctl.h"
#include "vgru_regs.h"

/* Copies of 1 byte to 4 MiB at odd alignments match byte for byte and
 * leave the bytes around the destination untouched. */
TEST(copy_sizes_and_alignments)
{
	static const size_t sizes[] = {
		1, 2, 3, 7, 63, 64, 65, 4095, 4096, 4097, 8191, 65537,
		(1 << 20) + 13, (4 << 20) + 5,
	};
	const size_t max = (4 << 20) + 5, slack = 2 * PAGE;
	unsigned char *src = map_anon(max + slack, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(max + slack, PROT_READ | PROT_WRITE);
	unsigned char *ref = map_anon(max + slack, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx();

	for (unsigned int i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = sizes[i], so = (i * 7 + 1) % PAGE,
		       dof = (i * 13 + 3) % PAGE;

		fill(src, max + slack, i);
		memset(dst, 0xee, max + slack);
		memset(ref, 0xee, max + slack);
		memcpy(ref + dof, src + so, len);
		CHECK_EQ(vgru_copy(v, dst + dof, src + so, len), 0);
		CHECK_EQ(vgru_last_progress(v), len);
		CHECK(memcmp(dst, ref, max + slack) == 0);
	}
	vgru_close(v);
}

/* A cold copy faults exactly once per page touched; a warm one never. */
TEST(fault_counts_exact)
{
	const size_t pages = 16;
	unsigned char *src = map_anon(pages * PAGE, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(pages * PAGE, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx_per_page();
	struct vgru_stats st;

	fill(src, pages * PAGE, 1);
	memset(dst, 0, pages * PAGE);
	CHECK_EQ(vgru_copy(v, dst, src, pages * PAGE), 0);
	st = stats(v);
	CHECK_EQ(st.faults, 2 * pages);
	/* + 1: vgru_open() prefaults the page of its completion records */
	CHECK_EQ(st.dropins, 2 * pages + 1);
	CHECK_EQ(st.prefaults, 1);
	CHECK_EQ(st.fault_errors, 0);

	fill(src, pages * PAGE, 2);
	CHECK_EQ(vgru_copy(v, dst, src, pages * PAGE), 0);
	CHECK(memcmp(src, dst, pages * PAGE) == 0);
	st = stats(v);
	CHECK_EQ(st.faults, 2 * pages);
	vgru_close(v);
}

/* After munmap of the source the device cannot read it: -EFAULT, and the
 * destination keeps its old contents. */
TEST(munmap_source_gives_efault)
{
	unsigned char *src = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx();
	uint64_t inv;

	fill(src, 4 * PAGE, 3);
	CHECK_EQ(vgru_copy(v, dst, src, 4 * PAGE), 0);
	inv = stats(v).invalidations;
	CHECK_EQ(munmap(src, 4 * PAGE), 0);
	CHECK_EQ(stats(v).invalidations, inv + 1);

	memset(dst, 0x5a, 4 * PAGE);
	CHECK_EQ(vgru_copy(v, dst, src, 4 * PAGE), -EFAULT);
	CHECK_EQ(vgru_last_progress(v), 0);
	for (size_t i = 0; i < 4 * PAGE; i++)
		CHECK_EQ(dst[i], 0x5a);
	CHECK_EQ(stats(v).fault_errors, 1);
	vgru_close(v);
}

/* After MADV_DONTNEED the device reads zeros, never the old data. */
TEST(madv_dontneed_reads_zeros)
{
	const size_t len = 8 * PAGE;
	unsigned char *src = map_anon(len, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(len, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx();

	fill(src, len, 4);
	CHECK_EQ(vgru_copy(v, dst, src, len), 0);
	CHECK(memcmp(src, dst, len) == 0);
	CHECK_EQ(madvise(src, len, MADV_DONTNEED), 0);
	CHECK_EQ(vgru_copy(v, dst, src, len), 0);
	for (size_t i = 0; i < len; i++)
		CHECK_EQ(dst[i], 0);
	vgru_close(v);
}

/* After fork, the parent's write breaks copy-on-write: the device then
 * reads the parent's new page, and the child keeps the old data. */
TEST(fork_cow_parent_sees_new_data)
{
	const size_t len = 4 * PAGE;
	unsigned char *a = map_anon(len, PROT_READ | PROT_WRITE);
	unsigned char *b = map_anon(len, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx();
	int to_child[2], to_parent[2], status;
	char c = 0;
	pid_t pid;

	memset(a, 'a', len);
	CHECK_EQ(vgru_copy(v, b, a, len), 0);	/* translations in */
	CHECK(pipe(to_child) == 0 && pipe(to_parent) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK_EQ(read(to_child[0], &c, 1), 1);
		for (size_t i = 0; i < len; i++)
			CHECK_EQ(a[i], 'a');
		_exit(0);
	}
	memset(a, 'p', len);			/* COW break in the parent */
	CHECK_EQ(vgru_copy(v, b, a, len), 0);
	for (size_t i = 0; i < len; i++)
		CHECK_EQ(b[i], 'p');
	CHECK_EQ(write(to_child[1], &c, 1), 1);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_EQ(status, 0);
	vgru_close(v);
}

/* After fork, a device write into a page it had writable before the fork
 * breaks COW for the parent only: fork write-protected the parent's page,
 * so the device entry had to go.  The child still reads its old data. */
TEST(fork_cow_device_write_private)
{
	const size_t len = 4 * PAGE;
	unsigned char *a = map_anon(len, PROT_READ | PROT_WRITE);
	unsigned char *b = map_anon(len, PROT_READ | PROT_WRITE);
	unsigned char *c = map_anon(len, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx();
	int to_child[2], status;
	char x = 0;
	pid_t pid;

	memset(a, 'o', len);
	memset(c, 'z', len);
	CHECK_EQ(vgru_copy(v, b, a, len), 0);	/* b: writable entries */
	CHECK(pipe(to_child) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK_EQ(read(to_child[0], &x, 1), 1);
		for (size_t i = 0; i < len; i++)
			CHECK_EQ(b[i], 'o');
		_exit(0);
	}
	CHECK_EQ(vgru_copy(v, b, c, len), 0);	/* device writes b */
	for (size_t i = 0; i < len; i++)
		CHECK_EQ(b[i], 'z');
	CHECK_EQ(write(to_child[1], &x, 1), 1);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_EQ(status, 0);
	vgru_close(v);
}

/* Writing into a read-only mapping is -EPERM until mprotect allows it. */
TEST(readonly_destination_eperm)
{
	unsigned char *src = map_anon(PAGE, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(PAGE, PROT_READ);
	struct vgru *v = open_ctx();

	fill(src, PAGE, 5);
	CHECK_EQ(vgru_copy(v, dst, src, PAGE), -EPERM);
	CHECK_EQ(mprotect(dst, PAGE, PROT_READ | PROT_WRITE), 0);
	CHECK_EQ(vgru_copy(v, dst, src, PAGE), 0);
	CHECK(memcmp(src, dst, PAGE) == 0);
	vgru_close(v);
}

/* PROT_NONE, unmapped, kernel and non-canonical addresses are -EFAULT;
 * a range that wraps is -EINVAL. */
TEST(bad_addresses)
{
	unsigned char *buf = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
	unsigned char *none = map_anon(PAGE, PROT_NONE);
	struct vgru *v = open_ctx();

	CHECK_EQ(vgru_copy(v, buf, NULL, 16), -EFAULT);
	CHECK_EQ(vgru_copy(v, buf, none, 16), -EFAULT);
	CHECK_EQ(vgru_copy(v, none, buf, 16), -EFAULT);
	CHECK_EQ(vgru_copy(v, buf, (void *)0xffffffff81000000UL, 16), -EFAULT);
	CHECK_EQ(vgru_copy(v, buf, (void *)0x0000900000000000UL, 16), -EFAULT);
	CHECK_EQ(vgru_copy(v, buf, (void *)-16L, 64), -EINVAL);
	/* the context still works */
	fill(buf, PAGE, 6);
	CHECK_EQ(vgru_copy(v, buf + PAGE, buf, PAGE), 0);
	CHECK(memcmp(buf, buf + PAGE, PAGE) == 0);
	vgru_close(v);
}

/* Only the opener's mm may map a context window, whole and shared. */
TEST(window_mmap_rules)
{
	int fd = open("/dev/vgru0", O_RDWR), status;
	void *p;
	pid_t pid;

	CHECK(fd >= 0);
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p == MAP_FAILED && errno == EINVAL);
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PAGE);
	CHECK(p == MAP_FAILED && errno == EINVAL);
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(p == MAP_FAILED && errno == EINVAL);
	p = mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	CHECK(p == MAP_FAILED);

	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* inherited fd, other mm: no window */
		p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		CHECK(p == MAP_FAILED && errno == EACCES);
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_EQ(status, 0);

	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	CHECK_EQ(munmap(p, PAGE), 0);
	CHECK_EQ(close(fd), 0);
}

/* INFO reports this context; an unknown ioctl is -ENOTTY. */
TEST(ioctl_abi)
{
	struct vgru *v = open_ctx();
	struct vgru_info info;

	memset(&info, 0xff, sizeof(info));
	CHECK_EQ(ioctl(vgru_fd(v), VGRU_IOC_INFO, &info), 0);
	CHECK_EQ(info.api_version, VGRU_API_VERSION);
	CHECK_EQ(info.context, vgru_context(v));
	CHECK_EQ(info.window_size, VGRU_WINDOW_SIZE);
	CHECK(info.nr_cbs >= 1);
	/* the QEMU of this tree is device 2.3 (CALL_OS since 2.2) */
	CHECK_EQ(info.features, VGRU_FEATURE_CALL_OS);
	CHECK_EQ(info.reserved0, 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(info.reserved[i], 0);
	CHECK_EQ(ioctl(vgru_fd(v), _IO(VGRU_IOC_MAGIC, 0x7f), 0), -1);
	CHECK_EQ(errno, ENOTTY);
	CHECK_EQ(ioctl(vgru_fd(v), VGRU_IOC_STATS, (void *)8), -1);
	CHECK_EQ(errno, EFAULT);
	vgru_close(v);
}

/* Contexts are a finite resource: the last open fails with EBUSY and
 * closing one makes room again. */
TEST(contexts_exhaust_and_recycle)
{
	struct vgru *v[1024];
	int n = 0, ret;

	while (n < 1024 && (ret = vgru_open(NULL, &v[n])) == 0)
		n++;
	CHECK_EQ(ret, -EBUSY);
	CHECK(n >= 1);
	vgru_close(v[--n]);
	CHECK_EQ(vgru_open(NULL, &v[n]), 0);
	n++;
	while (n > 0)
		vgru_close(v[--n]);
}

static uint64_t sysfs_stat(const char *name)
{
	char path[128];
	unsigned long long val = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/vgru/vgru0/stats/%s", name);
	f = fopen(path, "r");
	CHECK(f != NULL);
	CHECK_EQ(fscanf(f, "%llu", &val), 1);
	fclose(f);
	return val;
}

static unsigned int sysfs_contexts(void)
{
	unsigned int n = 0;
	FILE *f = fopen("/sys/class/vgru/vgru0/contexts", "r");

	CHECK(f != NULL);
	CHECK_EQ(fscanf(f, "%u", &n), 1);
	fclose(f);
	return n;
}

/*
 * All contexts must be free again.  The release of an exited process's
 * file may be deferred (its mm's last reference can drop in the driver's
 * fault thread), so allow a few seconds.
 */
static void check_all_contexts_free(void)
{
	unsigned int want = sysfs_contexts(), n;
	struct vgru *v[1024];

	CHECK(want <= 1024);
	for (int tries = 0; tries < 50; tries++) {
		n = 0;
		while (n < want && vgru_open(NULL, &v[n]) == 0)
			n++;
		for (unsigned int i = n; i > 0; i--)
			vgru_close(v[i - 1]);
		if (n == want)
			return;
		usleep(100 * 1000);
	}
	CHECK_EQ(n, want);
}

/* The device's own counters move by exactly one command's worth. */
TEST(device_counters_exact)
{
	const size_t len = 3 * PAGE;
	unsigned char *src = map_anon(len, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(len, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx_per_page();
	uint64_t cmds = sysfs_stat("device_commands");
	uint64_t done = sysfs_stat("device_completed");
	uint64_t bytes = sysfs_stat("device_bytes");
	uint64_t misses = sysfs_stat("device_tlb_misses");
	uint64_t dropins = sysfs_stat("device_dropins");

	fill(src, len, 8);
	CHECK_EQ(vgru_copy(v, dst, src, len), 0);
	CHECK_EQ(sysfs_stat("device_commands"), cmds + 1);
	CHECK_EQ(sysfs_stat("device_completed"), done + 1);
	CHECK_EQ(sysfs_stat("device_bytes"), bytes + len);
	CHECK_EQ(sysfs_stat("device_tlb_misses"), misses + 6);
	CHECK_EQ(sysfs_stat("device_dropins"), dropins + 6);
	vgru_close(v);
}

/* A process that exits (or is killed) with a command in flight leaves
 * its context free and the kernel log clean. */
TEST(exit_with_command_in_flight)
{
	const size_t len = 16 << 20;

	for (int round = 0; round < 2; round++) {
		int status, ready[2];
		char c;
		pid_t pid;

		CHECK(pipe(ready) == 0);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			unsigned char *src = map_anon(len, PROT_READ | PROT_WRITE);
			unsigned char *dst = map_anon(len, PROT_READ | PROT_WRITE);
			int fd = open("/dev/vgru0", O_RDWR);
			volatile uint8_t *cb;

			CHECK(fd >= 0);
			cb = mmap(NULL, VGRU_WINDOW_SIZE, PROT_READ | PROT_WRITE,
				  MAP_SHARED, fd, 0);
			CHECK(cb != MAP_FAILED);
			*(volatile uint32_t *)(cb + VGRU_CB_OPCODE) = VGRU_OP_COPY;
			*(volatile uint64_t *)(cb + VGRU_CB_SRC) = (uintptr_t)src;
			*(volatile uint64_t *)(cb + VGRU_CB_DST) = (uintptr_t)dst;
			*(volatile uint64_t *)(cb + VGRU_CB_LEN) = len;
			*(volatile uint32_t *)(cb + VGRU_CB_DOORBELL) = VGRU_CB_START;
			CHECK_EQ(write(ready[1], "x", 1), 1);
			if (round == 0)
				_exit(0);
			pause();
		}
		CHECK_EQ(read(ready[0], &c, 1), 1);
		if (round == 1)
			kill(pid, SIGKILL);
		CHECK_EQ(waitpid(pid, &status, 0), pid);
		close(ready[0]);
		close(ready[1]);
	}
	check_all_contexts_free();
}

/* Two processes copying at the same time each get their own data. */
TEST(concurrent_contexts_isolated)
{
	const size_t len = 1 << 20;
	pid_t pids[2];
	int status;

	for (int p = 0; p < 2; p++) {
		pids[p] = fork();
		CHECK(pids[p] >= 0);
		if (pids[p] == 0) {
			unsigned char *src = map_anon(len, PROT_READ | PROT_WRITE);
			unsigned char *dst = map_anon(len, PROT_READ | PROT_WRITE);
			struct vgru *v = open_ctx();

			for (int i = 0; i < 4; i++) {
				fill(src, len, 10 * p + i);
				CHECK_EQ(vgru_copy(v, dst, src, len), 0);
				CHECK(memcmp(src, dst, len) == 0);
			}
			vgru_close(v);
			_exit(0);
		}
	}
	for (int p = 0; p < 2; p++) {
		CHECK_EQ(waitpid(pids[p], &status, 0), pids[p]);
		CHECK_EQ(status, 0);
	}
}

/*
 * Race: one thread keeps replacing the source page (MAP_FIXED, then fills
 * it with its generation number, then publishes it); another keeps
 * copying it with the device.  A copy that starts after generation g0 was
 * published and ends before g1 was must read only generations g0 .. g1 + 1
 * (or 0, a page not yet filled): anything older came through a stale
 * translation.  Generations live in bytes, so a copy that the remapper
 * outran by a whole cycle of byte values cannot be judged and is skipped.
 */
#define RACE_GENS	250

struct race {
	unsigned char *page;
	atomic_uint published;
	atomic_bool stop;
};

static unsigned char gen_byte(unsigned int gen)
{
	return 1 + gen % RACE_GENS;
}

static void *race_remapper(void *arg)
{
	struct race *r = arg;

	for (unsigned int gen = 1; !atomic_load(&r->stop); gen++) {
		void *p = mmap(r->page, PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

		if (p != r->page)
			abort();
		memset(r->page, gen_byte(gen), PAGE);
		atomic_store(&r->published, gen);
	}
	return NULL;
}

TEST(race_remap_never_stale)
{
	unsigned char *dst = map_anon(PAGE, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx();
	struct race r = { .page = map_anon(PAGE, PROT_READ | PROT_WRITE) };
	unsigned int copies = 0, judged = 0;
	struct timespec t0, t;
	pthread_t thread;

	memset(r.page, gen_byte(0), PAGE);
	CHECK_EQ(pthread_create(&thread, NULL, race_remapper, &r), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		unsigned int g0 = atomic_load(&r.published), g1, span;

		CHECK_EQ(vgru_copy(v, dst, r.page, PAGE), 0);
		g1 = atomic_load(&r.published);
		span = g1 + 1 - g0;	/* generations the copy may see */
		copies++;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (span >= RACE_GENS)
			continue;
		judged++;
		for (size_t i = 0; i < PAGE; i++) {
			unsigned int ahead = (dst[i] + RACE_GENS - gen_byte(g0)) %
					     RACE_GENS;

			if (dst[i] != 0 && ahead > span) {
				printf("# byte %zu is %u, generations %u..%u\n",
				       i, dst[i], g0, g1);
				CHECK(!"stale data");
			}
		}
	} while (t.tv_sec - t0.tv_sec < 3);
	atomic_store(&r.stop, true);
	CHECK_EQ(pthread_join(thread, NULL), 0);
	printf("# %u copies (%u judged), %llu faults, %llu retries, "
	       "generation %u\n", copies, judged,
	       (unsigned long long)stats(v).faults,
	       (unsigned long long)stats(v).retries, atomic_load(&r.published));
	CHECK(judged > 10);
	vgru_close(v);
}

static void write_sysfs(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);

	CHECK(fd >= 0);
	CHECK_EQ(write(fd, val, strlen(val)), (ssize_t)strlen(val));
	CHECK_EQ(close(fd), 0);
}

/*
 * Garbage from a process: random ioctls, and random values written to
 * random registers of its window (doorbells included, so commands start
 * with random operands).  The process may hurt only itself; afterwards
 * the device and driver work and every context is free again.
 */
TEST(garbage_from_a_process)
{
	uint64_t cmds = sysfs_stat("device_commands");
	int status;
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		int fd = open("/dev/vgru0", O_RDWR);
		unsigned char *buf = map_anon(16 * PAGE, PROT_READ | PROT_WRITE);
		volatile uint8_t *w;
		unsigned int seed = 12345;

		CHECK(fd >= 0);
		for (int i = 0; i < 2000; i++) {
			unsigned long cmd = rand_r(&seed) % 3 ?
				_IOC(rand_r(&seed) % 4, VGRU_IOC_MAGIC,
				     rand_r(&seed) % 8, rand_r(&seed) % 256) :
				(unsigned long)rand_r(&seed);

			ioctl(fd, cmd, (unsigned long)rand_r(&seed) << 12);
		}
		w = mmap(NULL, VGRU_WINDOW_SIZE, PROT_READ | PROT_WRITE,
			 MAP_SHARED, fd, 0);
		CHECK(w != MAP_FAILED);
		for (int i = 0; i < 4000; i++) {
			/* mostly the CBs, sometimes anywhere in the page */
			unsigned int span = rand_r(&seed) % 8 ?
				4 * VGRU_CB_STRIDE : VGRU_WINDOW_SIZE;
			unsigned int off = (rand_r(&seed) % span) & ~3u;
			uint32_t val = rand_r(&seed);

			/* a doorbell is 1 word of 32 in a CB: ring more */
			if (val % 8 == 0)
				off = val % 4 * VGRU_CB_STRIDE +
				      VGRU_CB_DOORBELL;
			val = rand_r(&seed);

			switch (off % VGRU_CB_STRIDE) {
			case VGRU_CB_OPCODE:
				val %= 3;	/* NOP, COPY or invalid */
				break;
			case VGRU_CB_FLAGS:
				val = val % 4 ? 0 : val;
				break;
			case VGRU_CB_SRC:	/* often inside our own buffer */
			case VGRU_CB_DST:
				if (val % 2)
					val = (uint32_t)(uintptr_t)buf +
					      val % (8 * PAGE);
				break;
			case VGRU_CB_SRC + 4:
			case VGRU_CB_DST + 4:
				if (val % 2)
					val = (uintptr_t)buf >> 32;
				break;
			case VGRU_CB_LEN:	/* short: long ones only slow us */
				val %= 3 * PAGE;
				break;
			case VGRU_CB_DOORBELL:	/* START, sometimes ARM */
				val = val % 4 ? VGRU_CB_START : VGRU_CB_ARM;
				break;
			}
			*(volatile uint32_t *)(w + off) = val;
			/* let a started command end, so that the next starts */
			for (int spin = 0; spin < 100000; spin++) {
				uint32_t st = *(volatile uint32_t *)
					(w + (off & ~(VGRU_CB_STRIDE - 1)) +
					 VGRU_CB_STATUS);

				if (st != VGRU_CB_ACTIVE && st != VGRU_CB_FAULT)
					break;
			}
		}
		_exit(0);
	}
	/* the child may have hurt itself: how it ended does not matter */
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	/* the garbage did reach the device */
	CHECK(sysfs_stat("device_commands") > cmds + 50);
	printf("# %llu commands started\n",
	       (unsigned long long)(sysfs_stat("device_commands") - cmds));
	check_all_contexts_free();
	{
		unsigned char *buf = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
		struct vgru *v = open_ctx();

		fill(buf, PAGE, 11);
		CHECK_EQ(vgru_copy(v, buf + PAGE, buf, PAGE), 0);
		CHECK(memcmp(buf, buf + PAGE, PAGE) == 0);
		vgru_close(v);
	}
}

/*
 * After the kernel moved or swapped the @n pages at @src (counters were
 * @before): the notifier ran, and a device copy faults each page exactly
 * once more and reads @expect.
 */
static void check_refault(struct vgru *v, unsigned char *dst,
			  const unsigned char *src, const unsigned char *expect,
			  unsigned long n, const struct vgru_stats *before)
{
	CHECK(stats(v).invalidations > before->invalidations);
	memset(dst, 0, n * PAGE);
	CHECK_EQ(vgru_copy(v, dst, src, n * PAGE), 0);
	CHECK(memcmp(expect, dst, n * PAGE) == 0);
	CHECK_EQ(stats(v).faults, before->faults + n);
}

static unsigned int numa_nodes(void)
{
	unsigned int n = 0;
	char path[64];

	while (snprintf(path, sizeof(path), "/sys/devices/system/node/node%u",
			n), access(path, F_OK) == 0)
		n++;
	return n;
}

/* move_pages(2) without libnuma; @nodes NULL asks where pages are. */
static long move_pages_to(void **pages, unsigned long count,
			  const int *nodes, int *status)
{
	return syscall(SYS_move_pages, 0, count, pages, nodes, status,
		       2 /* MPOL_MF_MOVE */);
}

/*
 * The driver keeps no page reference: pages the device has translated
 * migrate to another NUMA node (an extra reference would make migration
 * fail), the notifier drops the old translations, and the next device
 * copy faults the pages in again and reads the data from their new home.
 */
TEST(migration_keeps_no_reference)
{
	const unsigned long n = 16;
	unsigned char *src = map_anon(n * PAGE, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(n * PAGE, PROT_READ | PROT_WRITE);
	void *pages[16];
	int nodes[16], status[16];
	struct vgru_stats before;
	struct vgru *v;

	if (numa_nodes() < 2)
		SKIP("needs two NUMA nodes (tests/vm --numa 2)");
	v = open_ctx_per_page();
	fill(src, n * PAGE, 12);
	memset(dst, 0, n * PAGE);
	for (unsigned long i = 0; i < n; i++)
		pages[i] = src + i * PAGE;
	CHECK_EQ(move_pages_to(pages, n, NULL, status), 0);
	for (unsigned long i = 0; i < n; i++) {
		CHECK(status[i] >= 0);
		nodes[i] = (status[i] + 1) % numa_nodes();	/* elsewhere */
	}
	CHECK_EQ(vgru_copy(v, dst, src, n * PAGE), 0);
	before = stats(v);

	CHECK_EQ(move_pages_to(pages, n, nodes, status), 0);
	for (unsigned long i = 0; i < n; i++)
		CHECK_EQ(status[i], nodes[i]);
	check_refault(v, dst, src, src, n, &before);
	vgru_close(v);
}

/*
 * The retry rule, deterministically: with the driver told to sleep 2 ms
 * between a fault's page lookup and its drop-in, the faulting page is
 * replaced (mremap of a page filled beforehand) while the fault sleeps.
 * The driver must notice the invalidation and look again; a drop-in of the
 * page it looked up first would leave the device on a freed page, which a
 * second copy, with nothing changing any more, would read.  Each round
 * uses a page the device has never seen, so its first copy faults.
 */
#define RESOLVE_DELAY "/sys/kernel/debug/vgru/inject_resolve_delay_us"
#define SWAP_ROUNDS 20
#define OLD_DATA 0x01d01d00

struct swapper {
	uint32_t *pages;	/* SWAP_ROUNDS + 1 pages, one per round */
	atomic_uint round;	/* copier: the copy of this round started */
	atomic_uint swapped;	/* swapper: this round's new page in place */
};

static void *race_swapper(void *arg)
{
	struct swapper *w = arg;

	for (uint32_t round = 1; round <= SWAP_ROUNDS; round++) {
		uint32_t *page = w->pages + round * (PAGE / sizeof(uint32_t));
		uint32_t *spare = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (spare == MAP_FAILED)
			abort();
		for (size_t i = 0; i < PAGE / sizeof(*spare); i++)
			spare[i] = round;
		while (atomic_load(&w->round) < round)
			sched_yield();
		/* the copy's fault is asleep in the driver: it reaches the
		 * 20 ms delay within 5 ms, even on the debug kernel */
		usleep(5000);
		if (mremap(spare, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
			   page) != page)
			abort();
		atomic_store(&w->swapped, round);
	}
	return NULL;
}

TEST(race_invalidation_during_resolve)
{
	const size_t words = PAGE / sizeof(uint32_t);
	uint32_t *dst = (uint32_t *)map_anon(PAGE, PROT_READ | PROT_WRITE);
	struct swapper w = {
		.pages = (uint32_t *)map_anon((SWAP_ROUNDS + 1) * PAGE,
					      PROT_READ | PROT_WRITE),
	};
	struct vgru *v = open_ctx_per_page();
	pthread_t thread;

	for (size_t i = 0; i < (SWAP_ROUNDS + 1) * words; i++)
		w.pages[i] = OLD_DATA;
	write_sysfs(RESOLVE_DELAY, "20000");
	CHECK_EQ(pthread_create(&thread, NULL, race_swapper, &w), 0);
	for (uint32_t round = 1; round <= SWAP_ROUNDS; round++) {
		uint32_t *page = w.pages + round * words;

		atomic_store(&w.round, round);
		CHECK_EQ(vgru_copy(v, dst, page, PAGE), 0);
		CHECK(dst[0] == OLD_DATA || dst[0] == round);
		while (atomic_load(&w.swapped) < round)
			sched_yield();
		/* the page is stable now: the device must read the new one */
		CHECK_EQ(vgru_copy(v, dst, page, PAGE), 0);
		for (size_t i = 0; i < words; i++)
			CHECK_EQ(dst[i], round);
	}
	CHECK_EQ(pthread_join(thread, NULL), 0);
	write_sysfs(RESOLVE_DELAY, "0");
	printf("# %llu faults, %llu retries\n",
	       (unsigned long long)stats(v).faults,
	       (unsigned long long)stats(v).retries);
	/* most swaps landed while a fault slept */
	CHECK(stats(v).retries >= SWAP_ROUNDS / 2);
	vgru_close(v);
}

/* Swap on zram, set up once per boot; false if the guest cannot. */
static bool zram_swap_on(void)
{
	if (access("/sys/block/zram0", F_OK) != 0 &&
	    system("modprobe zram") != 0)
		return false;
	if (system("grep -q zram0 /proc/swaps") == 0)
		return true;
	return system("echo 64M > /sys/block/zram0/disksize && "
		      "mkswap /dev/zram0 >/dev/null && swapon /dev/zram0") == 0;
}

/* pagemap bit 62: the page is in swap */
static bool page_swapped(const void *addr)
{
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, &entry, sizeof(entry),
		       (uintptr_t)addr / PAGE * sizeof(entry)),
		 (ssize_t)sizeof(entry));
	close(fd);
	return entry >> 62 & 1;
}

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

/*
 * Swapping out pages the device translated drops those translations (the
 * next copy faults each page exactly once more) and the device reads the
 * data swapped back in.  (That no reference is kept shows in
 * migration_keeps_no_reference: reclaim unmaps a referenced page too.)
 */
TEST(swap_out_and_back_in)
{
	const unsigned long n = 16;
	unsigned char *src = map_anon(n * PAGE, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(n * PAGE, PROT_READ | PROT_WRITE);
	unsigned char *ref = map_anon(n * PAGE, PROT_READ | PROT_WRITE);
	struct vgru_stats before;
	struct vgru *v;

	if (!zram_swap_on())
		SKIP("no zram swap in this guest");
	v = open_ctx_per_page();
	fill(src, n * PAGE, 13);
	memcpy(ref, src, n * PAGE);
	CHECK_EQ(vgru_copy(v, dst, src, n * PAGE), 0);
	before = stats(v);

	CHECK_EQ(madvise(src, n * PAGE, MADV_PAGEOUT), 0);
	for (unsigned long i = 0; i < n; i++)
		CHECK(page_swapped(src + i * PAGE));
	check_refault(v, dst, src, ref, n, &before);
	vgru_close(v);
}

/* The module unloads cleanly with no file open and loads again. */
TEST(module_reload)
{
	struct vgru *v;
	int fd = open("/dev/vgru0", O_RDWR);

	/* an open file pins the module */
	CHECK(fd >= 0);
	CHECK(system("rmmod vgru 2>/dev/null") != 0);
	close(fd);
	CHECK_EQ(system("rmmod vgru"), 0);
	CHECK(access("/dev/vgru0", F_OK) != 0);
	CHECK(access("/sys/class/vgru", F_OK) != 0);
	CHECK_EQ(system("insmod /lib/vgru/vgru.ko"), 0);
	CHECK_EQ(vgru_open(NULL, &v), 0);
	CHECK_EQ(sysfs_stat("device_commands"), 0);
	vgru_close(v);
}

/*
 * ---- Memory-management events (issue 15) ---------------------------------
 *
 * Each case changes the process's address space under translations the
 * device holds, then compares the device's view with the CPU's byte for
 * byte, and checks the exact error where the device must be refused.
 */

/* mprotect: read-only takes device write access away at once (-EPERM,
 * not a byte written), reads still work, read-write gives it back, and
 * PROT_NONE takes reads away too (-EFAULT); the data survives it all. */
TEST(mm_mprotect_device_access)
{
	const size_t len = 4 * PAGE;
	unsigned char *src = map_anon(len, RW);
	unsigned char *dst = map_anon(len, RW);
	unsigned char *ref = map_anon(len, RW);
	unsigned char *out = map_anon(len, RW);
	struct vgru *v = open_ctx();

	fill(src, len, 20);
	CHECK_EQ(vgru_copy(v, dst, src, len), 0);	/* writable entries */
	CHECK(memcmp(dst, src, len) == 0);
	memcpy(ref, dst, len);

	CHECK_EQ(mprotect(dst, len, PROT_READ), 0);
	fill(src, len, 21);
	CHECK_EQ(vgru_copy(v, dst, src, len), -EPERM);
	CHECK_EQ(vgru_last_progress(v), 0);
	CHECK(memcmp(dst, ref, len) == 0);
	CHECK_EQ(vgru_copy(v, out, dst, len), 0);	/* reads still work */
	CHECK(memcmp(out, ref, len) == 0);

	/* only the third page read-only: the copy stops exactly there */
	CHECK_EQ(mprotect(dst, len, RW), 0);
	CHECK_EQ(mprotect(dst + 2 * PAGE, PAGE, PROT_READ), 0);
	CHECK_EQ(vgru_copy(v, dst, src, len), -EPERM);
	CHECK_EQ(vgru_last_progress(v), 2 * PAGE);
	CHECK(memcmp(dst, src, 2 * PAGE) == 0);
	CHECK(memcmp(dst + 2 * PAGE, ref + 2 * PAGE, 2 * PAGE) == 0);

	CHECK_EQ(mprotect(dst, len, RW), 0);
	CHECK_EQ(vgru_copy(v, dst, src, len), 0);
	CHECK(memcmp(dst, src, len) == 0);

	CHECK_EQ(mprotect(dst, len, PROT_NONE), 0);
	CHECK_EQ(vgru_copy(v, out, dst, len), -EFAULT);
	CHECK_EQ(vgru_last_progress(v), 0);
	CHECK_EQ(vgru_copy(v, dst, src, len), -EFAULT);
	CHECK_EQ(mprotect(dst, len, PROT_READ), 0);
	CHECK(memcmp(dst, src, len) == 0);	/* nothing written since */
	CHECK_EQ(vgru_copy(v, out, dst, len), 0);
	CHECK(memcmp(out, src, len) == 0);
	vgru_close(v);
}

/*
 * The shared zero page is never written through: a device read of
 * never-touched memory reads zeros over a read-only translation of the
 * zero page; a device write there then faults once more for a private
 * page, which the CPU reads; other never-touched memory still reads zeros
 * for both the CPU and the device.
 */
TEST(mm_zero_page_never_written)
{
	const size_t len = 4 * PAGE;
	unsigned char *fresh = map_anon(len, RW);	/* never touched */
	unsigned char *other = map_anon(len, RW);	/* never touched */
	unsigned char *src = map_anon(PAGE, RW);
	unsigned char *dst = map_anon(len, RW);
	struct vgru *v = open_ctx_per_page();

	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, fresh, len), 0);
	CHECK(all_bytes(dst, len, 0));
	CHECK_EQ(stats(v).faults, 8);		/* 4 reads, 4 writes */

	fill(src, PAGE, 22);
	CHECK_EQ(vgru_copy(v, fresh + PAGE, src, PAGE), 0);
	CHECK_EQ(stats(v).faults, 10);		/* src, the write upgrade */
	CHECK_EQ(stats(v).fault_errors, 0);
	CHECK(memcmp(fresh + PAGE, src, PAGE) == 0);

	CHECK(all_bytes(fresh, PAGE, 0));
	CHECK(all_bytes(fresh + 2 * PAGE, 2 * PAGE, 0));
	CHECK(all_bytes(other, len, 0));
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, fresh, len), 0);
	CHECK(memcmp(dst, fresh, len) == 0);
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, other, len), 0);
	CHECK(all_bytes(dst, len, 0));
	vgru_close(v);
}

/* A shmem (memfd) file of @len bytes. */
static int shmem_file(size_t len)
{
	int fd = memfd_create("vgru-test", 0);

	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, len), 0);
	return fd;
}

/*
 * A MAP_SHARED shmem file: device writes are in the file (pread), file
 * writes (pwrite) reach the device; MADV_REMOVE punches pages out and the
 * device reads zeros; ftruncate that shrinks the file makes the device's
 * access to the cut pages fail with -EFAULT, and once the file grows
 * again they read zeros, never the freed pages' old data.
 */
TEST(mm_shmem_shared_file)
{
	const size_t len = 4 * PAGE;
	unsigned char *src = map_anon(len, RW);
	unsigned char *dst = map_anon(len, RW);
	unsigned char *buf = map_anon(len, RW);
	int fd = shmem_file(len);
	unsigned char *m = mmap(NULL, len, RW, MAP_SHARED, fd, 0);
	struct vgru *v = open_ctx();

	CHECK(m != MAP_FAILED);
	fill(src, len, 23);
	CHECK_EQ(vgru_copy(v, m, src, len), 0);
	CHECK_EQ(pread(fd, buf, len, 0), (ssize_t)len);
	CHECK(memcmp(buf, src, len) == 0);

	fill(buf, len, 24);
	CHECK_EQ(pwrite(fd, buf, len, 0), (ssize_t)len);
	CHECK_EQ(vgru_copy(v, dst, m, len), 0);
	CHECK(memcmp(dst, buf, len) == 0);

	CHECK_EQ(madvise(m + PAGE, 2 * PAGE, MADV_REMOVE), 0);
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, m, len), 0);
	CHECK(memcmp(dst, buf, PAGE) == 0);
	CHECK(all_bytes(dst + PAGE, 2 * PAGE, 0));
	CHECK(memcmp(dst + 3 * PAGE, buf + 3 * PAGE, PAGE) == 0);
	CHECK_EQ(pread(fd, buf, len, 0), (ssize_t)len);
	CHECK(memcmp(dst, buf, len) == 0);

	/* the device holds all four pages, writable: cut two of them */
	CHECK_EQ(vgru_copy(v, m, src, len), 0);
	CHECK_EQ(ftruncate(fd, 2 * PAGE), 0);
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, m, len), -EFAULT);
	CHECK_EQ(vgru_last_progress(v), 2 * PAGE);
	CHECK(memcmp(dst, src, 2 * PAGE) == 0);
	CHECK(all_bytes(dst + 2 * PAGE, 2 * PAGE, 0xee));
	CHECK_EQ(vgru_copy(v, m + 2 * PAGE, src, PAGE), -EFAULT);
	CHECK_EQ(vgru_copy(v, m + 3 * PAGE, src, PAGE), -EFAULT);

	CHECK_EQ(ftruncate(fd, len), 0);
	CHECK_EQ(vgru_copy(v, dst, m, len), 0);
	CHECK(memcmp(dst, src, 2 * PAGE) == 0);
	CHECK(all_bytes(dst + 2 * PAGE, 2 * PAGE, 0));
	CHECK_EQ(pread(fd, buf, len, 0), (ssize_t)len);
	CHECK(memcmp(dst, buf, len) == 0);
	vgru_close(v);
	close(fd);
}

/* mremap move: the device follows the pages to their new address (reads
 * and writes), and the old address is -EFAULT. */
TEST(mm_mremap_move)
{
	const size_t len = 4 * PAGE;
	unsigned char *a = map_anon(len, RW);
	unsigned char *target = map_anon(len, PROT_NONE);
	unsigned char *src = map_anon(len, RW);
	unsigned char *dst = map_anon(len, RW);
	unsigned char *ref = map_anon(len, RW);
	struct vgru *v = open_ctx();
	unsigned char *b;

	fill(src, len, 25);
	CHECK_EQ(vgru_copy(v, a, src, len), 0);	/* writable entries */
	memcpy(ref, a, len);
	b = mremap(a, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, target);
	CHECK(b == target);

	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, a, len), -EFAULT);
	CHECK_EQ(vgru_last_progress(v), 0);
	CHECK_EQ(vgru_copy(v, a, src, len), -EFAULT);
	CHECK(all_bytes(dst, len, 0xee));
	CHECK_EQ(vgru_copy(v, dst, b, len), 0);
	CHECK(memcmp(dst, ref, len) == 0);

	fill(src, len, 26);
	CHECK_EQ(vgru_copy(v, b, src, len), 0);
	CHECK(memcmp(b, src, len) == 0);
	vgru_close(v);
}

/* mremap grow: the old pages keep their data and the new ones read zeros,
 * for the device as for the CPU; shrink: the cut tail is -EFAULT, with the
 * copy stopping exactly at the new end. */
TEST(mm_mremap_grow_shrink)
{
	unsigned char *a = map_anon(2 * PAGE, RW);
	unsigned char *src = map_anon(6 * PAGE, RW);
	unsigned char *dst = map_anon(6 * PAGE, RW);
	unsigned char *ref = map_anon(2 * PAGE, RW);
	struct vgru *v = open_ctx();
	unsigned char *n;

	fill(src, 2 * PAGE, 27);
	CHECK_EQ(vgru_copy(v, a, src, 2 * PAGE), 0);
	memcpy(ref, a, 2 * PAGE);
	n = mremap(a, 2 * PAGE, 6 * PAGE, MREMAP_MAYMOVE);
	CHECK(n != MAP_FAILED);
	if (n != a)	/* it moved: the old address is gone */
		CHECK_EQ(vgru_copy(v, dst, a, PAGE), -EFAULT);

	memset(dst, 0xee, 6 * PAGE);
	CHECK_EQ(vgru_copy(v, dst, n, 6 * PAGE), 0);
	CHECK(memcmp(dst, ref, 2 * PAGE) == 0);
	CHECK(all_bytes(dst + 2 * PAGE, 4 * PAGE, 0));
	CHECK(memcmp(dst, n, 6 * PAGE) == 0);

	fill(src, 6 * PAGE, 28);
	CHECK_EQ(vgru_copy(v, n, src, 6 * PAGE), 0);
	CHECK(memcmp(n, src, 6 * PAGE) == 0);

	CHECK(mremap(n, 6 * PAGE, 3 * PAGE, 0) == n);
	memset(dst, 0xee, 6 * PAGE);
	CHECK_EQ(vgru_copy(v, dst, n, 4 * PAGE), -EFAULT);
	CHECK_EQ(vgru_last_progress(v), 3 * PAGE);
	CHECK(memcmp(dst, src, 3 * PAGE) == 0);
	CHECK(all_bytes(dst + 3 * PAGE, PAGE, 0xee));
	CHECK_EQ(vgru_copy(v, n + 3 * PAGE, src, PAGE), -EFAULT);
	CHECK_EQ(vgru_copy(v, dst, n, 3 * PAGE), 0);
	CHECK(memcmp(dst, n, 3 * PAGE) == 0);
	vgru_close(v);
}

/* MREMAP_DONTUNMAP: the pages move, the old range stays mapped but empty;
 * the device reads zeros there, and its writes there (it held writable
 * entries) land in new pages, not in the moved ones. */
TEST(mm_mremap_dontunmap)
{
	const size_t len = 4 * PAGE;
	unsigned char *a = map_anon(len, RW);
	unsigned char *src = map_anon(len, RW);
	unsigned char *dst = map_anon(len, RW);
	unsigned char *ref = map_anon(len, RW);
	struct vgru *v = open_ctx();
	unsigned char *b;

	fill(src, len, 29);
	CHECK_EQ(vgru_copy(v, a, src, len), 0);	/* writable entries */
	memcpy(ref, a, len);
	b = mremap(a, len, len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
	if (b == MAP_FAILED && errno == EINVAL)
		SKIP("kernel without MREMAP_DONTUNMAP");
	CHECK(b != MAP_FAILED && b != a);

	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, a, len), 0);
	CHECK(all_bytes(dst, len, 0));
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, b, len), 0);
	CHECK(memcmp(dst, ref, len) == 0);

	fill(src, len, 30);
	CHECK_EQ(vgru_copy(v, a, src, len), 0);
	CHECK(memcmp(a, src, len) == 0);
	CHECK(memcmp(b, ref, len) == 0);
	vgru_close(v);
}

#define PAGEMAP_KEPT (3ULL << 62)	/* present, or swapped */

static uint64_t pagemap_entry(const void *addr)
{
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, &entry, sizeof(entry),
		       (uintptr_t)addr / PAGE * sizeof(entry)),
		 (ssize_t)sizeof(entry));
	close(fd);
	return entry;
}

/*
 * Empty every CPU's LRU caches of the @n pages at @p: a page the driver's
 * lookup faulted in waits in its CPU's cache, off the LRU, and MADV_FREE
 * and MADV_PAGEOUT pass such pages by.  Moving pages to the node they are
 * on drains all CPUs' caches and moves nothing.
 */
static void drain_lru_caches(unsigned char *p, unsigned long n)
{
	void *pages[16];
	int nodes[16], status[16];
	long ret;

	CHECK(n <= 16);
	for (unsigned long i = 0; i < n; i++)
		pages[i] = p + i * PAGE;
	ret = move_pages_to(pages, n, NULL, status);
	if (ret != 0 && errno == ENOSYS)
		SKIP("kernel without move_pages (NUMA)");
	CHECK_EQ(ret, 0);
	for (unsigned long i = 0; i < n; i++) {
		CHECK(status[i] >= 0);
		nodes[i] = status[i];
	}
	CHECK_EQ(move_pages_to(pages, n, nodes, status), 0);
}

/*
 * MADV_FREE: the device sees what the CPU sees.  Pages freed lazily and
 * then reclaimed (MADV_PAGEOUT) read zeros for both; a page the device
 * wrote after MADV_FREE (its writable entry had to go, so the write
 * faulted and dirtied the page) and a page the CPU wrote keep their data
 * through reclaim.  A device write through a kept entry would leave the
 * page clean, and reclaim would drop the device's data.
 */
TEST(mm_madv_free)
{
	const size_t len = 4 * PAGE;
	unsigned char *a = map_anon(len, RW);
	unsigned char *src = map_anon(len, RW);
	unsigned char *dst = map_anon(len, RW);
	unsigned char *old = map_anon(len, RW);
	struct vgru *v = open_ctx();
	int gone[4];

	fill(src, len, 31);
	CHECK_EQ(vgru_copy(v, a, src, len), 0);	/* writable entries */
	memcpy(old, a, len);
	drain_lru_caches(a, len / PAGE);
	if (madvise(a, len, MADV_FREE) != 0)
		SKIP("kernel without MADV_FREE");

	/* not reclaimed yet: data or zeros, the same for both views */
	CHECK_EQ(vgru_copy(v, dst, a, len), 0);
	for (size_t p = 0; p < len; p += PAGE)
		CHECK(memcmp(dst + p, old + p, PAGE) == 0 ||
		      all_bytes(dst + p, PAGE, 0));
	CHECK(memcmp(dst, a, len) == 0);

	drain_lru_caches(a, len / PAGE);
	CHECK_EQ(madvise(a, len, MADV_FREE), 0);
	fill(src, PAGE, 32);
	CHECK_EQ(vgru_copy(v, a + PAGE, src, PAGE), 0);	/* device writes */
	memset(a + 2 * PAGE, 0x77, PAGE);		/* the CPU writes */
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst + PAGE, a + PAGE, 2 * PAGE), 0);
	CHECK(memcmp(dst + PAGE, src, PAGE) == 0);
	CHECK(all_bytes(dst + 2 * PAGE, PAGE, 0x77));

	drain_lru_caches(a, len / PAGE);
	if (madvise(a, len, MADV_PAGEOUT) != 0)
		SKIP("kernel without MADV_PAGEOUT");
	for (size_t p = 0; p < len; p += PAGE)	/* neither present nor in swap */
		gone[p / PAGE] = !(pagemap_entry(a + p) & PAGEMAP_KEPT);
	CHECK(gone[0] && gone[3]);		/* clean: dropped */
	CHECK(!gone[1] && !gone[2]);		/* dirty: kept or swapped */
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, a, len), 0);
	CHECK(memcmp(dst + PAGE, src, PAGE) == 0);
	CHECK(all_bytes(dst + 2 * PAGE, PAGE, 0x77));
	CHECK(all_bytes(dst, PAGE, 0) && all_bytes(dst + 3 * PAGE, PAGE, 0));
	CHECK(memcmp(dst, a, len) == 0);
	vgru_close(v);
}

/* MAP_FIXED over a range the device holds (writable): the device reads
 * the new mapping's data and its writes go to the new mapping (a shmem
 * file, read back with pread), never to the replaced pages. */
TEST(mm_map_fixed_replaces_range)
{
	const size_t len = 4 * PAGE;
	unsigned char *a = map_anon(len, RW);
	unsigned char *src = map_anon(len, RW);
	unsigned char *dst = map_anon(len, RW);
	unsigned char *buf = map_anon(len, RW);
	int fd = shmem_file(len);
	struct vgru *v = open_ctx();

	fill(src, len, 33);
	CHECK_EQ(vgru_copy(v, a, src, len), 0);	/* writable entries */
	fill(buf, len, 34);
	CHECK_EQ(pwrite(fd, buf, len, 0), (ssize_t)len);
	CHECK(mmap(a, len, RW, MAP_SHARED | MAP_FIXED, fd, 0) == a);

	CHECK_EQ(vgru_copy(v, dst, a, len), 0);
	CHECK(memcmp(dst, buf, len) == 0);
	fill(src, len, 35);
	CHECK_EQ(vgru_copy(v, a, src, len), 0);
	CHECK_EQ(pread(fd, buf, len, 0), (ssize_t)len);
	CHECK(memcmp(buf, src, len) == 0);
	CHECK(memcmp(a, src, len) == 0);
	vgru_close(v);
	close(fd);
}

/* MAP_SHARED|MAP_ANONYMOUS across fork: the child's device write is seen
 * by the parent's CPU and device, and the parent's device write by the
 * child's CPU. */
TEST(mm_shared_anon_across_fork)
{
	const size_t len = 4 * PAGE;
	unsigned char *s = mmap(NULL, len, RW, MAP_SHARED | MAP_ANONYMOUS,
				-1, 0);
	unsigned char *src = map_anon(len, RW);
	unsigned char *dst = map_anon(len, RW);
	struct vgru *v = open_ctx();
	int to_child[2], to_parent[2], status;
	char c = 0;
	pid_t pid;

	CHECK(s != MAP_FAILED);
	fill(src, len, 36);
	CHECK_EQ(vgru_copy(v, s, src, len), 0);	/* parent's entries */
	CHECK(pipe(to_child) == 0 && pipe(to_parent) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct vgru *w = open_ctx();

		CHECK(memcmp(s, src, len) == 0);
		fill(src, len, 37);
		CHECK_EQ(vgru_copy(w, s, src, len), 0);
		CHECK_EQ(write(to_parent[1], &c, 1), 1);
		CHECK_EQ(read(to_child[0], &c, 1), 1);
		fill(src, len, 38);
		CHECK(memcmp(s, src, len) == 0);
		vgru_close(w);
		_exit(0);
	}
	CHECK_EQ(read(to_parent[0], &c, 1), 1);
	fill(src, len, 37);
	CHECK(memcmp(s, src, len) == 0);
	memset(dst, 0xee, len);
	CHECK_EQ(vgru_copy(v, dst, s, len), 0);
	CHECK(memcmp(dst, src, len) == 0);
	fill(src, len, 38);
	CHECK_EQ(vgru_copy(v, s, src, len), 0);
	CHECK_EQ(write(to_child[1], &c, 1), 1);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_EQ(status, 0);
	vgru_close(v);
}

/*
 * execve with a context open: a child opens the device, copies, and execs
 * /bin/true, once with the file closed on exec (libvgru) and once with it
 * inherited by the new program while a long command runs in the old mm.
 * Nothing leaks (every context is free again), and the parent's context,
 * open throughout, keeps working.
 */
TEST(mm_execve_with_context_open)
{
	const size_t len = 4 * PAGE;
	unsigned char *src = map_anon(len, RW);
	unsigned char *dst = map_anon(len, RW);
	struct vgru *v = open_ctx();
	int status;

	fill(src, len, 39);
	CHECK_EQ(vgru_copy(v, dst, src, len), 0);
	for (int round = 0; round < 2; round++) {
		pid_t pid = fork();

		CHECK(pid >= 0);
		if (pid == 0) {
			const size_t big = 16 << 20;
			unsigned char *a = map_anon(big, RW);
			unsigned char *b = map_anon(big, RW);
			volatile uint8_t *cb;
			struct vgru *w;
			int fd;

			fill(a, len, 40);
			if (round == 0) {
				w = open_ctx();
				CHECK_EQ(vgru_copy(w, b, a, len), 0);
				CHECK(memcmp(a, b, len) == 0);
				execl("/bin/true", "true", (char *)NULL);
				_exit(126);
			}
			fd = open("/dev/vgru0", O_RDWR);	/* no O_CLOEXEC */
			CHECK(fd >= 0);
			cb = mmap(NULL, VGRU_WINDOW_SIZE, RW, MAP_SHARED, fd, 0);
			CHECK(cb != MAP_FAILED);
			*(volatile uint32_t *)(cb + VGRU_CB_OPCODE) = VGRU_OP_COPY;
			*(volatile uint64_t *)(cb + VGRU_CB_SRC) = (uintptr_t)a;
			*(volatile uint64_t *)(cb + VGRU_CB_DST) = (uintptr_t)b;
			*(volatile uint64_t *)(cb + VGRU_CB_LEN) = big;
			*(volatile uint32_t *)(cb + VGRU_CB_DOORBELL) =
				VGRU_CB_START;
			execl("/bin/true", "true", (char *)NULL);
			_exit(126);
		}
		CHECK_EQ(waitpid(pid, &status, 0), pid);
		CHECK_EQ(status, 0);
		fill(src, len, 41 + round);
		CHECK_EQ(vgru_copy(v, dst, src, len), 0);
		CHECK(memcmp(dst, src, len) == 0);
	}
	vgru_close(v);
	check_all_contexts_free();
}

/*
 * Threads: one thread copies a 4-page source in a loop while another
 * munmaps it and maps it again (MAP_FIXED_NOREPLACE: nothing else may
 * take the hole), filled with its generation number, while the freed
 * pages hold poison.  Every copy either succeeds or fails with -EFAULT,
 * and the bytes it copied are old or new data (generations g0 .. g1 + 1,
 * or 0 before the fill), never poison or stale.
 */
#define UNMAP_LEN (4 * PAGE)
#define UNMAP_POISON 0xff	/* never a generation byte */

struct unmapper {
	struct race r;
	unsigned char *scratch;	/* UNMAP_LEN, emptied after each round */
};

static void *race_unmapper(void *arg)
{
	struct unmapper *u = arg;
	struct race *r = &u->r;

	for (unsigned int gen = 1; !atomic_load(&r->stop); gen++) {
		void *p;

		if (munmap(r->page, UNMAP_LEN) != 0)
			abort();
		sched_yield();	/* let copies find the hole */
		/* the freed pages, likely reused here, hold poison while the
		 * source gets other pages: a stale translation reads poison */
		memset(u->scratch, UNMAP_POISON, UNMAP_LEN);
		p = mmap(r->page, UNMAP_LEN, RW,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			 -1, 0);
		if (p != r->page)
			abort();
		memset(r->page, gen_byte(gen), UNMAP_LEN);
		if (madvise(u->scratch, UNMAP_LEN, MADV_DONTNEED) != 0)
			abort();
		atomic_store(&r->published, gen);
	}
	return NULL;
}

static void unmaps_during_copies(enum vgru_fault_policy policy)
{
	unsigned char *dst = map_anon(UNMAP_LEN, RW);
	struct vgru *v = open_ctx();
	struct unmapper u = {
		.r.page = map_anon(UNMAP_LEN, RW),
		.scratch = map_anon(UNMAP_LEN, RW),
	};
	struct race *r = &u.r;
	unsigned int copies = 0, efaults = 0, judged = 0;
	struct timespec t0, t;
	pthread_t thread;

	CHECK_EQ(vgru_set_fault_policy(v, policy), 0);
	memset(r->page, gen_byte(0), UNMAP_LEN);
	CHECK_EQ(pthread_create(&thread, NULL, race_unmapper, &u), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		unsigned int g0 = atomic_load(&r->published), g1, span;
		size_t done = UNMAP_LEN;
		int ret;

		ret = vgru_copy(v, dst, r->page, UNMAP_LEN);
		g1 = atomic_load(&r->published);
		copies++;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (ret == -EFAULT) {
			efaults++;
			done = vgru_last_progress(v);
			CHECK(done < UNMAP_LEN && done % PAGE == 0);
		} else {
			CHECK_EQ(ret, 0);
		}
		span = g1 + 1 - g0;
		if (span >= RACE_GENS)
			continue;
		judged++;
		for (size_t i = 0; i < done; i++) {
			unsigned int ahead = (dst[i] + RACE_GENS - gen_byte(g0)) %
					     RACE_GENS;

			/* poison, or a generation out of range */
			if (dst[i] > RACE_GENS ||
			    (dst[i] != 0 && ahead > span)) {
				printf("# byte %zu is %u, generations %u..%u\n",
				       i, dst[i], g0, g1);
				CHECK(!"stale data");
			}
		}
	} while (t.tv_sec - t0.tv_sec < 3);
	atomic_store(&r->stop, true);
	CHECK_EQ(pthread_join(thread, NULL), 0);
	printf("# %u copies (%u judged, %u -EFAULT), %llu faults, "
	       "%llu prefaults, %llu retries, generation %u\n", copies, judged,
	       efaults, (unsigned long long)stats(v).faults,
	       (unsigned long long)stats(v).prefaults,
	       (unsigned long long)stats(v).retries, atomic_load(&r->published));
	CHECK(judged > 10);
	CHECK(efaults > 0);	/* the holes were hit */
	vgru_close(v);
}

TEST(mm_thread_unmaps_during_copies)
{
	unmaps_during_copies(VGRU_FAULT_DEVICE);
}

/* The same race, with the pages resolved by prefaults in this thread. */
TEST(mm_thread_unmaps_during_prefault_copies)
{
	unmaps_during_copies(VGRU_FAULT_PREFAULT);
}

/* ---- end of the memory-management events -------------------------------- */

/*
 * A page the device only read is read-only in the device too: a copy
 * into it must fault for write, so that the kernel can refuse it (a
 * read-only mapping: -EPERM) or break copy-on-write (after fork the
 * child keeps its data).  A read drop-in made writable fails both.
 */
TEST(read_dropin_stays_readonly)
{
	unsigned char *ro = map_anon(PAGE, PROT_READ | PROT_WRITE);
	unsigned char *a = map_anon(PAGE, PROT_READ | PROT_WRITE);
	unsigned char *buf = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx();
	int to_child[2], status;
	char x = 0;
	pid_t pid;

	fill(ro, PAGE, 14);
	fill(buf, PAGE, 15);
	CHECK_EQ(mprotect(ro, PAGE, PROT_READ), 0);
	CHECK_EQ(vgru_copy(v, buf + PAGE, ro, PAGE), 0);	/* read drop-in */
	CHECK(memcmp(buf + PAGE, ro, PAGE) == 0);
	CHECK_EQ(vgru_copy(v, ro, buf, PAGE), -EPERM);
	CHECK(memcmp(buf + PAGE, ro, PAGE) == 0);

	memset(a, 'o', PAGE);
	memset(buf, 'n', PAGE);
	CHECK(pipe(to_child) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK_EQ(read(to_child[0], &x, 1), 1);
		for (size_t i = 0; i < PAGE; i++)
			CHECK_EQ(a[i], 'o');
		_exit(0);
	}
	/* a read drop-in of the page parent and child share ... */
	CHECK_EQ(vgru_copy(v, buf + PAGE, a, PAGE), 0);
	/* ... then a device write to it, which must break COW */
	CHECK_EQ(vgru_copy(v, a, buf, PAGE), 0);
	for (size_t i = 0; i < PAGE; i++)
		CHECK_EQ(a[i], 'n');
	CHECK_EQ(write(to_child[1], &x, 1), 1);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_EQ(status, 0);
	vgru_close(v);
}

/* ---- filtered invalidation ---- */

/*
 * Notifier ranges the device never touched (mprotect flips of a populated
 * buffer, munmap of a buffer it never saw) are counted as invalidations
 * but cost no device invalidation, and what the device holds stays.
 */
TEST(inval_untouched_no_device_flush)
{
	const size_t len = 8 * PAGE;
	unsigned char *src = map_anon(PAGE, RW), *dst = map_anon(PAGE, RW);
	unsigned char *buf = map_anon(len, RW), *gone = map_anon(len, RW);
	struct vgru *v = open_ctx_per_page();
	struct vgru_stats a, b;
	uint64_t dev;

	fill(src, PAGE, 30);
	memset(buf, 1, len);
	memset(gone, 2, len);
	/* the device holds pages, just not these */
	CHECK_EQ(vgru_copy(v, dst, src, PAGE), 0);
	a = stats(v);
	dev = sysfs_stat("device_invalidations");
	for (int i = 0; i < 100; i++)
		CHECK_EQ(mprotect(buf, len, i % 2 ? RW : PROT_READ), 0);
	CHECK_EQ(munmap(gone, len), 0);
	b = stats(v);
	CHECK(b.invalidations - a.invalidations >= 101);
	CHECK_EQ(b.device_invalidations - a.device_invalidations, 0);
	CHECK_EQ(sysfs_stat("device_invalidations"), dev);

	/* the held pages were left alone: no fault */
	fill(src, PAGE, 31);
	CHECK_EQ(vgru_copy(v, dst, src, PAGE), 0);
	CHECK(memcmp(dst, src, PAGE) == 0);
	CHECK_EQ(stats(v).faults, b.faults);
	vgru_close(v);
}

/*
 * munmap of a buffer whose middle half the device holds: exactly one
 * device invalidation; new pages mapped there are faulted in afresh (one
 * fault each) and copied exactly.
 */
TEST(inval_munmap_half_held)
{
	const size_t pages = 16, held = 8, off = 4 * PAGE;
	unsigned char *buf = map_anon(pages * PAGE, RW);
	unsigned char *dst = map_anon(held * PAGE, RW);
	struct vgru *v = open_ctx_per_page();
	struct vgru_stats a, b, c;
	void *p;

	fill(buf, pages * PAGE, 40);
	memset(dst, 0, held * PAGE);
	CHECK_EQ(vgru_copy(v, dst, buf + off, held * PAGE), 0);
	CHECK(memcmp(dst, buf + off, held * PAGE) == 0);
	a = stats(v);
	CHECK_EQ(munmap(buf, pages * PAGE), 0);
	b = stats(v);
	CHECK(b.invalidations > a.invalidations);
	CHECK_EQ(b.device_invalidations - a.device_invalidations, 1);

	p = mmap(buf, pages * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		 -1, 0);
	CHECK(p == buf);
	fill(buf, pages * PAGE, 41);
	CHECK_EQ(vgru_copy(v, dst, buf + off, held * PAGE), 0);
	CHECK(memcmp(dst, buf + off, held * PAGE) == 0);
	c = stats(v);
	/* the source pages again; the destination is still held */
	CHECK_EQ(c.faults - b.faults, held);
	CHECK_EQ(c.device_invalidations, b.device_invalidations);
	vgru_close(v);
}

/*
 * @len bytes in a mapping of their own between two PROT_NONE pages: a
 * munmap of it splits no mapping (a split inside a 2 MiB range sends a
 * notifier range over all of it, THP or not).
 */
static unsigned char *map_guarded(size_t len)
{
	unsigned char *p = map_anon(len + 2 * PAGE, PROT_NONE);

	CHECK_EQ(mprotect(p + PAGE, len, RW), 0);
	return p + PAGE;
}

static void unmap_guarded(unsigned char *p, size_t len)
{
	CHECK_EQ(munmap(p - PAGE, len + 2 * PAGE), 0);
}

/*
 * Past what the device TLB can hold the driver still records every page:
 * a range the device never touched costs no device command, a range it
 * holds flushes that range alone (the other pages it holds stay, no
 * re-fault), and a page evicted long ago is still in the record.  The
 * driver before session 22 flushed the whole context at the first range
 * after the overflow, wherever it was.
 */
TEST(inval_tracking_overflow)
{
	/* past what the context can hold, under 4 x that (no trim) */
	const size_t len = 12 << 20, klen = 4 * PAGE;
	unsigned char *src = map_anon(len, RW), *dst = map_anon(len, RW);
	unsigned char *kept = map_guarded(2 * klen), *old = map_guarded(PAGE);
	unsigned char *gone1 = map_guarded(PAGE), *gone2 = map_guarded(PAGE);
	struct vgru *v = open_ctx_per_page();
	struct vgru_stats a, b, c, d, e;
	uint64_t inv;

	/* 4 KiB translations: a huge page would take one fault for 512 */
	CHECK_EQ(madvise(src, len, MADV_NOHUGEPAGE), 0);
	CHECK_EQ(madvise(dst, len, MADV_NOHUGEPAGE), 0);
	fill(src, len, 50);
	memset(dst, 0, len);
	fill(kept, 2 * klen, 52);
	memset(old, 3, PAGE);
	memset(gone1, 1, PAGE);
	memset(gone2, 2, PAGE);
	CHECK_EQ(vgru_copy(v, old, kept, 64), 0);
	CHECK_EQ(vgru_copy(v, dst, src, len), 0);
	/* then kept's pages and gone2: the TLB's youngest entries */
	CHECK_EQ(vgru_copy(v, kept + klen, kept, klen), 0);
	CHECK_EQ(vgru_copy(v, gone2, kept, 64), 0);
	a = stats(v);
	inv = sysfs_stat("device_inv_entries");

	/* a range the device never saw: no device command at all */
	unmap_guarded(gone1, PAGE);
	b = stats(v);
	CHECK(b.invalidations > a.invalidations);
	CHECK_EQ(b.device_invalidations, a.device_invalidations);
	/* a page it holds: that page's entry alone */
	unmap_guarded(gone2, PAGE);
	c = stats(v);
	CHECK_EQ(c.device_invalidations - b.device_invalidations, 1);
	CHECK_EQ(sysfs_stat("device_inv_entries") - inv, 1);
	/* ... so kept's translations are still there */
	fill(kept, klen, 53);
	CHECK_EQ(vgru_copy(v, kept + klen, kept, klen), 0);
	CHECK(memcmp(kept + klen, kept, klen) == 0);
	d = stats(v);
	CHECK_EQ(d.faults, c.faults);
	/* the record is complete: a page evicted long ago is still flushed */
	unmap_guarded(old, PAGE);
	e = stats(v);
	CHECK_EQ(e.device_invalidations - d.device_invalidations, 1);
	CHECK_EQ(sysfs_stat("device_inv_entries") - inv, 1);
	vgru_close(v);
	CHECK_EQ(munmap(src, len), 0);
	CHECK_EQ(munmap(dst, len), 0);
	unmap_guarded(kept, 2 * klen);
}

/* ---- ABI 2: fill, atomics, asynchronous commands, notices, prefault ---- */

/* Byte i of a fill gets byte i % 8 of the pattern, little endian. */
static unsigned char pattern_byte(uint64_t pattern, size_t i)
{
	return (unsigned char)(pattern >> (i % 8 * 8));
}

/* Fills of 1 byte to 3 pages at odd alignments, byte for byte, and the
 * bytes around them untouched. */
TEST(fill_lengths_and_alignments)
{
	static const size_t lens[] = {
		1, 2, 7, 8, 9, 63, 64, 65, 4095, 4096, 4097, 8191, 8192,
		3 * 4096 - 1, 3 * 4096,
	};
	const size_t size = 4 * PAGE + 64;
	unsigned char *buf = map_anon(size, PROT_READ | PROT_WRITE);
	const uint64_t pattern = 0x8877665544332211ull;
	struct vgru *v = open_ctx();

	for (unsigned int i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t off = (i * 13 + 1) % 64, len = lens[i];

		memset(buf, 0xee, size);
		CHECK_EQ(vgru_fill(v, buf + off, pattern, len), 0);
		CHECK_EQ(vgru_last_progress(v), len);
		for (size_t b = 0; b < size; b++) {
			bool in = b >= off && b < off + len;

			CHECK_EQ(buf[b], in ? pattern_byte(pattern, b - off)
					    : 0xee);
		}
	}
	vgru_close(v);
}

/* Each atomic returns the old value and leaves the right new one; a CAS
 * stores only on a match; a misaligned word never reaches the device. */
TEST(atomics_values)
{
	uint64_t *w = (uint64_t *)map_anon(PAGE, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx();
	uint64_t old = 0, cmds;

	w[1] = 40;
	CHECK_EQ(vgru_fetch_add(v, &w[1], 2, &old), 0);
	CHECK_EQ(old, 40);
	CHECK_EQ(w[1], 42);
	CHECK_EQ(vgru_fetch_add(v, &w[1], (uint64_t)-50, NULL), 0);
	CHECK(w[1] == (uint64_t)-8);			/* wraps like the CPU's */
	CHECK_EQ(vgru_swap(v, &w[1], 7, &old), 0);
	CHECK(old == (uint64_t)-8);
	CHECK_EQ(w[1], 7);
	CHECK_EQ(vgru_cas(v, &w[1], 6, 9, &old), 0);	/* no match */
	CHECK_EQ(old, 7);
	CHECK_EQ(w[1], 7);
	CHECK_EQ(vgru_cas(v, &w[1], 7, 9, &old), 0);	/* match */
	CHECK_EQ(old, 7);
	CHECK_EQ(w[1], 9);
	CHECK_EQ(w[0], 0);
	CHECK_EQ(w[2], 0);

	cmds = sysfs_stat("device_commands");
	CHECK_EQ(vgru_fetch_add(v, (uint64_t *)((char *)w + 4), 1, &old),
		 -EINVAL);
	CHECK_EQ(vgru_swap(v, (uint64_t *)((char *)w + 1), 1, &old), -EINVAL);
	CHECK_EQ(vgru_cas(v, (uint64_t *)((char *)w + 12), 0, 1, &old),
		 -EINVAL);
	CHECK_EQ(sysfs_stat("device_commands"), cmds);
	CHECK_EQ(w[1], 9);
	vgru_close(v);
}

#define RACE_ADDS 3000

static void *cpu_adder(void *arg)
{
	uint64_t *word = arg;

	for (int i = 0; i < RACE_ADDS; i++) {
		__atomic_fetch_add(word, 1, __ATOMIC_SEQ_CST);
		if (i % 64 == 0)
			sched_yield();
	}
	return NULL;
}

/* Device and CPU add to one word at the same time: no add is lost. */
TEST(atomics_race_cpu_and_device)
{
	uint64_t *word = (uint64_t *)map_anon(PAGE, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx();
	pthread_t thread;
	uint64_t old, seen = 0;

	CHECK_EQ(pthread_create(&thread, NULL, cpu_adder, word), 0);
	for (int i = 0; i < RACE_ADDS; i++) {
		CHECK_EQ(vgru_fetch_add(v, word, 1ull << 32, &old), 0);
		/* the device's part only grows, one by one */
		CHECK_EQ(old >> 32, seen);
		seen++;
	}
	CHECK_EQ(pthread_join(thread, NULL), 0);
	CHECK_EQ(*word >> 32, RACE_ADDS);
	CHECK_EQ(*word & 0xffffffffu, RACE_ADDS);
	vgru_close(v);
}

static unsigned int nr_cbs(struct vgru *v)
{
	struct vgru_info info;

	CHECK_EQ(ioctl(vgru_fd(v), VGRU_IOC_INFO, &info), 0);
	return info.nr_cbs;
}

/* One command in flight on every CB; one more is -EBUSY until a ticket
 * is waited for; then every copy's data is exact. */
TEST(async_all_cbs_in_flight)
{
	const size_t len = 16 * PAGE;
	struct vgru *v = open_ctx();
	unsigned int n = nr_cbs(v);
	unsigned char *src = map_anon(n * len, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(n * len, PROT_READ | PROT_WRITE);
	unsigned char *other = map_anon(PAGE, PROT_READ | PROT_WRITE);
	struct vgru_result res;
	struct vgru_desc d;
	int t[32], extra;

	CHECK(n >= 2 && n <= 32);
	fill(src, n * len, 21);
	for (unsigned int i = 0; i < n; i++) {
		vgru_prep_copy(&d, dst + i * len, src + i * len, len);
		t[i] = vgru_submit(v, &d, 0);
		CHECK(t[i] >= 0);
		for (unsigned int j = 0; j < i; j++)
			CHECK(t[j] != t[i]);
	}
	vgru_prep_nop(&d);
	CHECK_EQ(vgru_submit(v, &d, 0), -EBUSY);
	/* only the tickets' owner frees their CBs: a blocking call cannot
	 * wait for one (it used to spin for ever) */
	CHECK_EQ(vgru_fill(v, other, 0x1122334455667788ull, 64), -EBUSY);
	CHECK(all_bytes(other, PAGE, 0));
	CHECK_EQ(vgru_wait(v, t[0], -1, &res), 0);
	CHECK_EQ(res.progress, len);
	CHECK_EQ(res.error, 0);
	extra = vgru_submit(v, &d, 0);		/* room for one again */
	CHECK(extra >= 0);
	for (unsigned int i = 1; i < n; i++) {
		CHECK_EQ(vgru_wait(v, t[i], -1, &res), 0);
		CHECK_EQ(res.progress, len);
	}
	CHECK_EQ(vgru_wait(v, extra, -1, NULL), 0);
	CHECK(memcmp(src, dst, n * len) == 0);
	/* a ticket is gone once waited for */
	CHECK_EQ(vgru_wait(v, t[1], 0, NULL), -EINVAL);
	CHECK_EQ(vgru_test(v, t[1], NULL), -EINVAL);
	vgru_close(v);
}

/* A batch runs in order and stops at the first failing entry: progress
 * is its index, the entries after it never run. */
TEST(batch_stops_at_failing_entry)
{
	static struct vgru_desc list[5] __attribute__((aligned(64)));
	unsigned char *buf = map_anon(8 * PAGE, PROT_READ | PROT_WRITE);
	uint64_t *word = (uint64_t *)(buf + 6 * PAGE);
	struct vgru *v = open_ctx();
	struct vgru_result res;
	int t;

	memset(buf, 0, 8 * PAGE);
	vgru_prep_fill(&list[0], buf, 0x1111111111111111ull, PAGE);
	vgru_prep_fetch_add(&list[1], word, 5);
	vgru_prep_cas(&list[2], (uint64_t *)(buf + 6 * PAGE + 4), 0, 1);
	vgru_prep_fill(&list[3], buf + PAGE, 0x3333333333333333ull, PAGE);
	vgru_prep_fetch_add(&list[4], word, 100);
	t = vgru_submit_batch(v, list, 5, 0);
	CHECK(t >= 0);
	CHECK_EQ(vgru_wait(v, t, -1, &res), -EINVAL);
	CHECK_EQ(res.error, -EINVAL);
	CHECK_EQ(VGRU_ERR_CLASS(res.device_error), VGRU_ERR_ALIGN);
	CHECK_EQ(res.progress, 2);
	CHECK(vgru_strerror(res.device_error) != NULL);
	for (size_t i = 0; i < PAGE; i++)
		CHECK_EQ(buf[i], 0x11);
	for (size_t i = PAGE; i < 2 * PAGE; i++)
		CHECK_EQ(buf[i], 0);
	CHECK_EQ(*word, 5);

	/* the same batch without the bad entry runs whole */
	vgru_prep_nop(&list[2]);
	t = vgru_submit_batch(v, list, 5, 0);
	CHECK(t >= 0);
	CHECK_EQ(vgru_wait(v, t, -1, &res), 0);
	CHECK_EQ(res.progress, 5);
	CHECK_EQ(buf[PAGE], 0x33);
	CHECK_EQ(*word, 110);
	vgru_close(v);
}

/* Misuse fails with -EINVAL before the device sees anything. */
TEST(api_misuse_einval)
{
	static struct vgru_desc list[2] __attribute__((aligned(64)));
	uint64_t *w = (uint64_t *)map_anon(PAGE, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx();
	struct vgru_stats st;
	struct vgru_desc d;
	uint64_t cmds = sysfs_stat("device_commands");

	vgru_prep_nop(&d);
	CHECK_EQ(vgru_copy(NULL, w, w + 8, 8), -EINVAL);
	CHECK_EQ(vgru_fill(NULL, w, 0, 8), -EINVAL);
	CHECK_EQ(vgru_fetch_add(NULL, w, 1, NULL), -EINVAL);
	CHECK_EQ(vgru_submit(NULL, &d, 0), -EINVAL);
	CHECK_EQ(vgru_submit(v, NULL, 0), -EINVAL);
	CHECK_EQ(vgru_submit(v, &d, 0x80), -EINVAL);
	CHECK_EQ(vgru_stats(NULL, &st), -EINVAL);
	CHECK_EQ(vgru_set_fault_policy(v, 7), -EINVAL);
	CHECK_EQ(vgru_prefault(NULL, w, 8, 0), -EINVAL);
	CHECK_EQ(vgru_wait(v, -1, 0, NULL), -EINVAL);
	CHECK_EQ(vgru_wait(v, 0, 0, NULL), -EINVAL);	/* not submitted */
	CHECK_EQ(vgru_wait(v, 1000, 0, NULL), -EINVAL);
	CHECK_EQ(vgru_test(NULL, 0, NULL), -EINVAL);
	vgru_prep_nop(&list[0]);
	vgru_prep_nop(&list[1]);
	CHECK_EQ(vgru_submit_batch(v, list, 0, 0), -EINVAL);
	CHECK_EQ(vgru_submit_batch(v, list, VGRU_BATCH_MAX + 1, 0), -EINVAL);
	CHECK_EQ(vgru_submit_batch(v, (void *)((char *)list + 32), 1, 0),
		 -EINVAL);
	CHECK_EQ(vgru_submit_batch(v, NULL, 1, 0), -EINVAL);
	vgru_prep_swap(&d, (uint64_t *)((char *)w + 2), 1);
	CHECK_EQ(vgru_submit(v, &d, 0), -EINVAL);
	/* none of it reached the device */
	CHECK_EQ(sysfs_stat("device_commands"), cmds);
	/* a list at the next 64-byte boundary is fine */
	CHECK_EQ(vgru_wait(v, vgru_submit_batch(v, list + 1, 1, 0), -1, NULL),
		 0);
	CHECK(vgru_strerror(0xdeadbeef) != NULL);
	vgru_close(NULL);
	vgru_close(v);
}

/* A NO_BLOCK command on a cold page ends at once with -EWOULDBLOCK, the
 * missing address and the bytes done; the driver sees no fault. */
TEST(async_no_block_miss)
{
	unsigned char *src = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx();
	struct vgru_result res;
	struct vgru_desc d;
	int t;

	fill(src, 4 * PAGE, 22);
	memset(dst, 0, 4 * PAGE);
	CHECK_EQ(vgru_prefault(v, src, 2 * PAGE, 0), 0);
	CHECK_EQ(vgru_prefault(v, dst, 4 * PAGE, 1), 0);
	vgru_prep_copy(&d, dst, src, 4 * PAGE);
	t = vgru_submit(v, &d, VGRU_SUBMIT_NO_BLOCK);
	CHECK(t >= 0);
	CHECK_EQ(vgru_wait(v, t, -1, &res), -EWOULDBLOCK);
	CHECK_EQ(VGRU_ERR_CLASS(res.device_error), VGRU_ERR_PAGE_FAULT);
	CHECK_EQ(res.progress, 2 * PAGE);
	CHECK(res.fault_addr == (uintptr_t)(src + 2 * PAGE));
	CHECK(memcmp(dst, src, 2 * PAGE) == 0);
	CHECK_EQ(dst[2 * PAGE], 0);
	CHECK_EQ(stats(v).faults, 0);
	vgru_close(v);
}

/* FENCE ends after every command submitted before it. */
TEST(async_fence_orders)
{
	const size_t len = 64 * PAGE;
	unsigned char *src = map_anon(3 * len, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(3 * len, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx();
	struct vgru_desc d;
	int t[3], f;

	fill(src, 3 * len, 23);
	for (int i = 0; i < 3; i++) {
		vgru_prep_copy(&d, dst + i * len, src + i * len, len);
		t[i] = vgru_submit(v, &d, 0);
		CHECK(t[i] >= 0);
	}
	vgru_prep_fence(&d);
	f = vgru_submit(v, &d, 0);
	CHECK(f >= 0);
	CHECK_EQ(vgru_wait(v, f, -1, NULL), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(vgru_test(v, t[i], NULL), 0);
	CHECK(memcmp(src, dst, 3 * len) == 0);
	vgru_close(v);
}

/* The same cold copy under both fault policies: the same data; with
 * VGRU_FAULT_PREFAULT no device fault, the pages come in as prefaults. */
TEST(fault_policy_prefault_vs_device)
{
	/* at most one page of each buffer per TLB set: nothing is evicted */
	const size_t pages = 48, len = pages * PAGE;
	struct vgru_stats st;

	for (int policy = 0; policy < 2; policy++) {
		unsigned char *src = map_anon(len, PROT_READ | PROT_WRITE);
		unsigned char *dst = map_anon(len, PROT_READ | PROT_WRITE);
		struct vgru *v = open_ctx_per_page();

		fill(src, len, 24);
		memset(dst, 0, len);
		CHECK_EQ(vgru_set_fault_policy(v, policy ? VGRU_FAULT_PREFAULT
						       : VGRU_FAULT_DEVICE), 0);
		CHECK_EQ(vgru_copy(v, dst + 3, src + 1, len - 8), 0);
		CHECK_EQ(vgru_last_progress(v), len - 8);
		CHECK(memcmp(dst + 3, src + 1, len - 8) == 0);
		CHECK_EQ(dst[0], 0);
		CHECK_EQ(vgru_fill(v, dst, 0x5a5a5a5a5a5a5a5aull, 5), 0);
		CHECK_EQ(dst[4], 0x5a);
		st = stats(v);
		printf("# policy %s: %llu faults, %llu prefaults\n",
		       policy ? "PREFAULT" : "DEVICE",
		       (unsigned long long)st.faults,
		       (unsigned long long)st.prefaults);
		if (policy) {
			CHECK_EQ(st.faults, 0);
			/* every page of both buffers, and the record page */
			CHECK(st.prefaults >= 2 * pages + 1);
		} else {
			CHECK_EQ(st.faults, 2 * pages);
			CHECK_EQ(st.prefaults, 1);	/* the record page */
		}
		/* errors are the same: -EFAULT past an unmapped hole */
		CHECK_EQ(munmap(src + 8 * PAGE, PAGE), 0);
		CHECK_EQ(vgru_copy(v, dst, src, 16 * PAGE), -EFAULT);
		CHECK_EQ(vgru_last_progress(v), 8 * PAGE);
		CHECK_EQ(mprotect(dst, PAGE, PROT_READ), 0);
		CHECK_EQ(vgru_fill(v, dst, 0, PAGE), -EPERM);
		vgru_close(v);
	}
}

static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double wall_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned char *map_thp_touched(size_t len, unsigned int seed);

/*
 * A long command sleeps in VGRU_IOC_WAIT rather than spinning: the
 * process's CPU time stays far below the wall time.  The command is long
 * on the device: a BATCH of 256 warm 16 MiB copies between THP buffers
 * (4 GiB moved through 16 2 MiB translations, no fault), or, under `tests/vm
 * --device vgru,x-dma-delay-us=N`, slow too.  A copy that is long because
 * it is cold is no such command: its faults are the copying thread's own
 * work (RESOLVE, RESTART_CALLER), as a CPU memcpy takes its page faults.
 */
TEST(long_command_sleeps)
{
	const size_t len = 16 << 20;
	const unsigned int n = 256;
	unsigned char *src = map_thp_touched(len, 25);
	unsigned char *dst = map_thp_touched(len, 26);
	struct vgru_desc *list = (void *)map_anon(n * sizeof(*list),
					  PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx();
	struct vgru_result res;
	uint64_t faults;
	double wall, cpu;
	int t;

	for (unsigned int i = 0; i < n; i++)
		vgru_prep_copy(&list[i], dst, src, len);
	/* the translations (the list's too) go in first */
	CHECK_EQ(vgru_prefault(v, list, n * sizeof(*list), 0), 0);
	CHECK_EQ(vgru_copy(v, dst, src, len), 0);
	faults = stats(v).faults;
	cpu = cpu_seconds();
	wall = wall_seconds();
	t = vgru_submit_batch(v, list, n, 0);
	CHECK(t >= 0);
	CHECK_EQ(vgru_wait(v, t, -1, &res), 0);
	wall = wall_seconds() - wall;
	cpu = cpu_seconds() - cpu;
	CHECK_EQ(res.progress, n);
	CHECK(memcmp(src, dst, len) == 0);
	CHECK_EQ(stats(v).faults, faults);
	printf("# %.3f s wall, %.3f s CPU, %llu notices\n", wall, cpu,
	       (unsigned long long)stats(v).notices);
	if (wall < 0.2)
		SKIP("the batch was too short to judge");
	CHECK(cpu < wall / 5);
	CHECK(stats(v).notices >= 1);
	vgru_close(v);
	CHECK_EQ(munmap(list, n * sizeof(*list)), 0);
}

/* A command that waits on one device fault is spun on, not slept on:
 * the library sees the CB in FAULT (the driver resolving it) and keeps
 * spinning up to 1 ms, so a command that ends within that needs no
 * completion notice.  Judged over the commands that took under 0.9 ms
 * (a slow host or the debug kernel may make a fault outlast the spin);
 * at most a quarter of those may have slept (before: all). */
TEST(fault_wait_spins_not_sleeps)
{
	const unsigned int ops = 64;
	unsigned char *src = map_anon(PAGE, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(ops * PAGE, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx();
	unsigned int judged = 0, slept = 0;
	struct vgru_stats a, b;

	/* one fault per page: a stream of fresh pages is faulted in whole */
	CHECK_EQ(vgru_set_fault_around(v, 1), 1);
	fill(src, PAGE, 26);
	CHECK_EQ(vgru_copy(v, dst, src, 64), 0);	/* source now warm */
	for (unsigned int i = 1; i < ops; i++) {
		double t;

		a = stats(v);
		t = wall_seconds();
		CHECK_EQ(vgru_copy(v, dst + i * PAGE, src, 64), 0);
		t = wall_seconds() - t;
		b = stats(v);
		CHECK_EQ(b.faults - a.faults, 1);
		CHECK(memcmp(dst + i * PAGE, src, 64) == 0);
		if (t < 0.0009) {
			judged++;
			slept += b.notices != a.notices;
		}
	}
	printf("# %u of %u one-fault commands under 0.9 ms slept\n", slept,
	       judged);
	if (judged < 8)
		SKIP("device faults take over 1 ms here: nothing to judge");
	CHECK(slept * 4 <= judged);
	vgru_close(v);
}

/* The window of a raw file, for tests that drive the device directly. */
static volatile uint8_t *map_window(int fd)
{
	void *w = mmap(NULL, VGRU_WINDOW_SIZE, PROT_READ | PROT_WRITE,
		       MAP_SHARED, fd, 0);

	CHECK(w != MAP_FAILED);
	return w;
}

/* Start a NOP on CB 0 that posts a notice when it ends. */
static void raw_nop_notice(volatile uint8_t *w)
{
	*(volatile uint64_t *)(w + VGRU_DESC_OPCODE) =
		VGRU_OP_NOP | (uint64_t)VGRU_DF_INTERRUPT << 32;
	*(volatile uint32_t *)(w + VGRU_CB_DOORBELL) = VGRU_CB_START;
}

static int wait_ioctl(int fd, uint64_t *notices, int64_t timeout_ns)
{
	struct vgru_wait wt = { .notices = *notices, .timeout_ns = timeout_ns };
	int ret = ioctl(fd, VGRU_IOC_WAIT, &wt) ? -errno : 0;

	*notices = wt.notices;
	return ret;
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* VGRU_IOC_WAIT: returns at a notice, times out, is interrupted by a
 * signal, and refuses reserved bits. */
TEST(wait_ioctl_notice_timeout_signal)
{
	int fd = open("/dev/vgru0", O_RDWR);
	struct vgru_wait bad = { .timeout_ns = 0, .reserved = { 0, 1 } };
	struct sigaction sa = { .sa_handler = on_alarm };
	volatile uint8_t *w;
	uint64_t n = 0;
	double t;

	CHECK(fd >= 0);
	w = map_window(fd);
	CHECK_EQ(wait_ioctl(fd, &n, 0), -ETIMEDOUT);
	CHECK_EQ(n, 0);
	t = wall_seconds();
	CHECK_EQ(wait_ioctl(fd, &n, 100000000), -ETIMEDOUT);
	CHECK(wall_seconds() - t >= 0.09);
	CHECK_EQ(ioctl(fd, VGRU_IOC_WAIT, &bad), -1);
	CHECK_EQ(errno, EINVAL);

	raw_nop_notice(w);
	CHECK_EQ(wait_ioctl(fd, &n, 5000000000LL), 0);
	CHECK_EQ(n, 1);
	/* ARM of an ended command: a notice at once */
	*(volatile uint32_t *)(w + VGRU_CB_DOORBELL) = VGRU_CB_ARM;
	CHECK_EQ(wait_ioctl(fd, &n, 5000000000LL), 0);
	CHECK_EQ(n, 2);

	/* a signal ends an unlimited wait, SA_RESTART or not */
	for (int restart = 0; restart < 2; restart++) {
		sa.sa_flags = restart ? SA_RESTART : 0;
		CHECK_EQ(sigaction(SIGALRM, &sa, NULL), 0);
		ualarm(100000, 0);
		t = wall_seconds();
		CHECK_EQ(wait_ioctl(fd, &n, -1), -EINTR);
		CHECK(wall_seconds() - t < 10);
	}
	CHECK_EQ(close(fd), 0);
}

/* poll()/epoll: readable while notices came since the count
 * VGRU_IOC_WAIT last returned. */
TEST(poll_epollin_on_notice)
{
	int fd = open("/dev/vgru0", O_RDWR), ep;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct epoll_event ev = { .events = EPOLLIN }, out;
	volatile uint8_t *w;
	uint64_t n = 0;

	CHECK(fd >= 0);
	w = map_window(fd);
	CHECK_EQ(poll(&p, 1, 0), 0);
	ep = epoll_create1(0);
	CHECK(ep >= 0);
	CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
	CHECK_EQ(epoll_wait(ep, &out, 1, 0), 0);

	raw_nop_notice(w);
	CHECK_EQ(poll(&p, 1, 5000), 1);
	CHECK(p.revents & POLLIN);
	CHECK_EQ(epoll_wait(ep, &out, 1, 5000), 1);
	CHECK(out.events & EPOLLIN);
	/* still readable until VGRU_IOC_WAIT has seen the count */
	CHECK_EQ(poll(&p, 1, 0), 1);
	CHECK_EQ(wait_ioctl(fd, &n, 0), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(poll(&p, 1, 0), 0);
	CHECK_EQ(epoll_wait(ep, &out, 1, 0), 0);
	close(ep);
	CHECK_EQ(close(fd), 0);
}

static int prefault_ioctl(int fd, const void *addr, uint64_t len,
			  uint32_t flags, uint64_t *done)
{
	struct vgru_prefault pf = {
		.addr = (uintptr_t)addr, .len = len, .flags = flags,
	};
	int ret = ioctl(fd, VGRU_IOC_PREFAULT, &pf) ? -errno : 0;

	*done = pf.done;
	return ret;
}

/* VGRU_IOC_PREFAULT: translations in without faults; its errors. */
TEST(prefault_ioctl_results_and_errors)
{
	unsigned char *buf = map_anon(8 * PAGE, PROT_READ | PROT_WRITE);
	unsigned char *ro = map_anon(2 * PAGE, PROT_READ);
	struct vgru *v = open_ctx();
	int fd = vgru_fd(v);
	struct vgru_prefault bad = { .addr = (uintptr_t)buf, .len = PAGE };
	uint64_t done;

	fill(buf, 4 * PAGE, 26);
	/* from an odd address: @done counts from it */
	CHECK_EQ(prefault_ioctl(fd, buf + 5, 2 * PAGE - 5, 0, &done), 0);
	CHECK_EQ(done, 2 * PAGE - 5);
	CHECK_EQ(prefault_ioctl(fd, buf + 4 * PAGE, 4 * PAGE,
				VGRU_PREFAULT_WRITE, &done), 0);
	CHECK_EQ(done, 4 * PAGE);
	CHECK_EQ(stats(v).prefaults, 1 + 2 + 4);
	CHECK_EQ(vgru_copy(v, buf + 4 * PAGE, buf, 2 * PAGE), 0);
	CHECK_EQ(stats(v).faults, 0);
	CHECK(memcmp(buf, buf + 4 * PAGE, 2 * PAGE) == 0);

	CHECK_EQ(prefault_ioctl(fd, buf, 0, 0, &done), 0);
	CHECK_EQ(done, 0);
	/* a hole: -EFAULT, @done says where */
	CHECK_EQ(munmap(buf + 2 * PAGE, PAGE), 0);
	CHECK_EQ(prefault_ioctl(fd, buf + 100, 4 * PAGE, 0, &done), -EFAULT);
	CHECK_EQ(done, 2 * PAGE - 100);
	CHECK_EQ(prefault_ioctl(fd, NULL, PAGE, 0, &done), -EFAULT);
	CHECK_EQ(done, 0);
	/* read-only mapping: readable, not writable */
	CHECK_EQ(prefault_ioctl(fd, ro, 2 * PAGE, 0, &done), 0);
	CHECK_EQ(prefault_ioctl(fd, ro, 2 * PAGE, VGRU_PREFAULT_WRITE, &done),
		 -EPERM);
	CHECK_EQ(done, 0);
	CHECK_EQ(vgru_prefault(v, ro, PAGE, 1), -EPERM);
	/* wrap, unknown flags, reserved fields */
	CHECK_EQ(prefault_ioctl(fd, (void *)-PAGE, 2 * PAGE, 0, &done),
		 -EINVAL);
	CHECK_EQ(prefault_ioctl(fd, buf, PAGE, 2, &done), -EINVAL);
	bad.reserved0 = 1;
	CHECK_EQ(ioctl(fd, VGRU_IOC_PREFAULT, &bad), -1);
	CHECK_EQ(errno, EINVAL);
	bad.reserved0 = 0;
	bad.reserved[1] = 1;
	CHECK_EQ(ioctl(fd, VGRU_IOC_PREFAULT, &bad), -1);
	CHECK_EQ(errno, EINVAL);
	vgru_close(v);
}

static int resolve_ioctl(int fd, struct vgru_resolve *r)
{
	return ioctl(fd, VGRU_IOC_RESOLVE, r) ? -errno : 0;
}

/* Poll CB 0's STATUS until it leaves ACTIVE and FAULT (at most 5 s). */
static uint32_t raw_wait_ended(volatile uint8_t *w)
{
	double t = wall_seconds();
	uint32_t st;

	while ((st = *(volatile uint32_t *)(w + VGRU_CB_STATUS)) ==
	       VGRU_CB_ACTIVE || st == VGRU_CB_FAULT) {
		CHECK(wall_seconds() - t < 5);
		usleep(100);
	}
	return st;
}

/* A raw 64 B COPY on CB 0 with @flags. */
static void raw_copy64(volatile uint8_t *w, void *dst, const void *src,
		     uint32_t flags)
{
	*(volatile uint64_t *)(w + VGRU_DESC_OPCODE) =
		VGRU_OP_COPY | (uint64_t)flags << 32;
	*(volatile uint64_t *)(w + VGRU_DESC_SRC) = (uintptr_t)src;
	*(volatile uint64_t *)(w + VGRU_DESC_DST) = (uintptr_t)dst;
	*(volatile uint64_t *)(w + VGRU_DESC_LEN) = 64;
	*(volatile uint32_t *)(w + VGRU_CB_DOORBELL) = VGRU_CB_START;
}

/*
 * VGRU_DF_CALL_OS: a miss found in the START write raises no interrupt;
 * the thread resolves it with VGRU_IOC_RESOLVE (so does libvgru's
 * blocking copy); one nobody comes for is answered by the driver's
 * watchdog drain, not counted as a lost interrupt.  RESOLVE's errors.
 */
TEST(call_os_fault_resolved_by_its_thread)
{
	unsigned char *src = map_anon(PAGE, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
	uint64_t irqs = sysfs_stat("device_interrupts");
	uint64_t lost = sysfs_stat("driver_lost_irqs");
	struct vgru_fault_around fa = { 0 };
	struct vgru_resolve r = { .cb = 0 };
	volatile uint8_t *w;
	struct vgru *v;
	int fd, status;
	uint64_t done;
	pid_t pid;

	fill(src, PAGE, 41);
	fd = open("/dev/vgru0", O_RDWR);
	CHECK(fd >= 0);
	w = map_window(fd);
	/* one page per fault: no fault-around takes the next page in */
	fa.pages = 1;
	CHECK_EQ(ioctl(fd, VGRU_IOC_FAULT_AROUND, &fa), 0);
	/* nothing pending: nothing resolved */
	CHECK_EQ(resolve_ioctl(fd, &r), 0);
	CHECK_EQ(r.resolved, 0);
	CHECK_EQ(prefault_ioctl(fd, src, PAGE, 0, &done), 0);

	/* (a device with inline-bytes=0 misses on a worker, later) */
	raw_copy64(w, dst, src, VGRU_DF_CALL_OS);
	CHECK_EQ(*(volatile uint32_t *)(w + VGRU_CB_STATUS), VGRU_CB_FAULT);
	CHECK_EQ(resolve_ioctl(fd, &r), 0);
	CHECK_EQ(r.resolved, 1);
	CHECK_EQ(raw_wait_ended(w), VGRU_CB_DONE);
	CHECK(memcmp(dst, src, 64) == 0);
	CHECK_EQ(fdinfo_value(fd, "caller_resolves"), 1);
	CHECK_EQ(sysfs_stat("device_interrupts"), irqs);

	/* nobody comes: the watchdog's drain hands it to the fault work */
	raw_copy64(w, dst + PAGE, src, VGRU_DF_CALL_OS);
	CHECK_EQ(raw_wait_ended(w), VGRU_CB_DONE);
	CHECK(memcmp(dst + PAGE, src, 64) == 0);
	CHECK_EQ(fdinfo_value(fd, "caller_resolves"), 1);
	CHECK_EQ(sysfs_stat("device_interrupts"), irqs);
	CHECK_EQ(sysfs_stat("driver_lost_irqs"), lost);

	/* without the flag the miss interrupts, and the work answers it */
	raw_copy64(w, dst + 2 * PAGE, src, 0);
	CHECK_EQ(raw_wait_ended(w), VGRU_CB_DONE);
	CHECK(memcmp(dst + 2 * PAGE, src, 64) == 0);
	CHECK_EQ(sysfs_stat("device_interrupts"), irqs + 1);

	/* bad arguments; another process (fork keeps the fd) */
	r = (struct vgru_resolve){ .cb = 32 };
	CHECK_EQ(resolve_ioctl(fd, &r), -EINVAL);
	r = (struct vgru_resolve){ .resolved = 1 };
	CHECK_EQ(resolve_ioctl(fd, &r), -EINVAL);
	r = (struct vgru_resolve){ .reserved = { 0, 0, 1 } };
	CHECK_EQ(resolve_ioctl(fd, &r), -EINVAL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		r = (struct vgru_resolve){ .cb = 0 };
		_exit(resolve_ioctl(fd, &r) == -EACCES ? 0 : 1);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_EQ(status, 0);
	CHECK_EQ(munmap((void *)w, VGRU_WINDOW_SIZE), 0);
	CHECK_EQ(close(fd), 0);

	/* libvgru's blocking copy: the caller resolves, no interrupt */
	v = open_ctx();
	CHECK_EQ(vgru_prefault(v, src, 64, 0), 0);
	irqs = sysfs_stat("device_interrupts");
	CHECK_EQ(vgru_copy(v, dst + 3 * PAGE, src, 64), 0);
	CHECK(memcmp(dst + 3 * PAGE, src, 64) == 0);
	CHECK_EQ(stats(v).faults, 1);
	CHECK_EQ(fdinfo_value(vgru_fd(v), "caller_resolves"), 1);
	CHECK_EQ(sysfs_stat("device_interrupts"), irqs);
	vgru_close(v);
}

/*
 * A blocking copy over fresh memory faults block after block; on a 2.3
 * device each fault is answered by the copying thread itself (RESOLVE),
 * and the device runs the command on to its next miss within that answer
 * (RESP_RESTART_CALLER): every fault a caller resolve, no interrupt, no
 * driver thread, the bytes right.
 */
TEST(call_os_stream_resolved_by_its_thread)
{
	const size_t len = 4 << 20;
	unsigned char *src = map_anon(len, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(len, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx();
	uint64_t irqs, faults;

	CHECK_EQ(madvise(src, len, MADV_NOHUGEPAGE), 0);
	CHECK_EQ(madvise(dst, len, MADV_NOHUGEPAGE), 0);
	fill(src, len, 47);
	irqs = sysfs_stat("device_interrupts");
	CHECK_EQ(vgru_copy(v, dst, src, len), 0);
	CHECK(memcmp(dst, src, len) == 0);
	faults = stats(v).faults;
	/* 1024 pages in blocks of at most the fault-around size */
	CHECK(faults >= 2 * len / PAGE / VGRU_FAULT_AROUND_MAX);
	CHECK_EQ(fdinfo_value(vgru_fd(v), "caller_resolves"), faults);
	CHECK_EQ(sysfs_stat("device_interrupts"), irqs);
	vgru_close(v);
	CHECK_EQ(munmap(src, len), 0);
	CHECK_EQ(munmap(dst, len), 0);
}

#define SHARE_THREADS 4
#define SHARE_COPIES 150

struct sharer {
	struct vgru *v;
	unsigned int id;
	unsigned char *src, *dst;
};

static void *share_worker(void *arg)
{
	struct sharer *s = arg;
	const size_t len = 2 * PAGE;

	for (unsigned int i = 0; i < SHARE_COPIES; i++) {
		size_t n = 1 + (i * 997 + s->id * 131) % len;

		fill(s->src, len, s->id * 1000 + i);
		memset(s->dst, 0, len);
		if (vgru_copy(s->v, s->dst, s->src, n) ||
		    vgru_last_progress(s->v) != n ||
		    memcmp(s->src, s->dst, n) || s->dst[n] != 0)
			return (void *)1;
	}
	return NULL;
}

/* Threads share one handle: every copy of every thread is exact. */
TEST(threads_share_one_handle)
{
	struct sharer s[SHARE_THREADS];
	pthread_t th[SHARE_THREADS];
	struct vgru *v = open_ctx();
	void *ret;

	for (unsigned int i = 0; i < SHARE_THREADS; i++) {
		s[i] = (struct sharer){
			.v = v, .id = i,
			.src = map_anon(4 * PAGE, PROT_READ | PROT_WRITE),
			.dst = map_anon(4 * PAGE, PROT_READ | PROT_WRITE),
		};
		CHECK_EQ(pthread_create(&th[i], NULL, share_worker, &s[i]), 0);
	}
	for (unsigned int i = 0; i < SHARE_THREADS; i++) {
		CHECK_EQ(pthread_join(th[i], &ret), 0);
		CHECK(ret == NULL);
	}
	vgru_close(v);
}

/*
 * A context closed while the driver resolves its fault: the late
 * resolution must not touch the command of the context opened next in
 * its place.  The driver drops the answer of a closed context, and the
 * device would ignore it anyway (its RESP_SEQ is not the new fault's).
 */
TEST(stale_response_after_close)
{
	unsigned char *a = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
	unsigned char *src = map_anon(PAGE, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(PAGE, PROT_READ | PROT_WRITE);
	uint64_t stale = sysfs_stat("driver_fault_errors");
	volatile uint8_t *w;
	struct vgru_info info;
	struct vgru *v;
	int fd;

	fill(a, 2 * PAGE, 27);
	fill(src, PAGE, 28);
	memset(dst, 0, PAGE);
	write_sysfs(RESOLVE_DELAY, "300000");
	fd = open("/dev/vgru0", O_RDWR);
	CHECK(fd >= 0);
	CHECK_EQ(ioctl(fd, VGRU_IOC_INFO, &info), 0);
	w = map_window(fd);
	*(volatile uint64_t *)(w + VGRU_DESC_OPCODE) = VGRU_OP_COPY;
	*(volatile uint64_t *)(w + VGRU_DESC_SRC) = (uintptr_t)a;
	*(volatile uint64_t *)(w + VGRU_DESC_DST) = (uintptr_t)(a + PAGE);
	*(volatile uint64_t *)(w + VGRU_DESC_LEN) = PAGE;
	*(volatile uint32_t *)(w + VGRU_CB_DOORBELL) = VGRU_CB_START;
	usleep(100000);		/* its first fault sleeps in the driver now */
	CHECK_EQ(munmap((void *)w, VGRU_WINDOW_SIZE), 0);
	CHECK_EQ(close(fd), 0);

	v = open_ctx();		/* the same context, CB 0 again */
	CHECK_EQ(vgru_context(v), info.context);
	write_sysfs(RESOLVE_DELAY, "0");
	CHECK_EQ(vgru_copy(v, dst, src, PAGE), 0);
	CHECK(memcmp(src, dst, PAGE) == 0);
	CHECK_EQ(stats(v).fault_errors, 0);
	/* the old context's resolution failed: its context was gone */
	CHECK_EQ(sysfs_stat("driver_fault_errors"), stale + 1);
	vgru_close(v);
}

/* ---- removal and a broken device ------------------------------------------ */

/*
 * Closing a context fences its DMA: after DISABLE (a posted write) the
 * driver issues a context invalidation and awaits INV_DONE, which counts
 * it only once no transfer of the context is in flight.  A context that
 * never held a page costs exactly that one device invalidation.
 */
TEST(close_fences_the_context)
{
	uint64_t inv = sysfs_stat("device_invalidations");
	int fd = open("/dev/vgru0", O_RDWR);

	CHECK(fd >= 0);
	CHECK_EQ(sysfs_stat("device_invalidations"), inv);
	CHECK_EQ(close(fd), 0);
	CHECK_EQ(sysfs_stat("device_invalidations"), inv + 1);
}

/* The PCI address of vgru0's function, e.g. "0000:00:03.0", in @buf. */
static const char *vgru0_bdf(char *buf, size_t size)
{
	char link[256];
	ssize_t n = readlink("/sys/class/vgru/vgru0/device", link,
			     sizeof(link) - 1);

	CHECK(n > 0);
	link[n] = 0;
	snprintf(buf, size, "%s", strrchr(link, '/') + 1);
	return buf;
}

/* Unbind the driver from @bdf: how long the write took, in seconds. */
static double unbind_timed(const char *bdf)
{
	double t = wall_seconds();

	write_sysfs("/sys/bus/pci/drivers/vgru/unbind", bdf);
	t = wall_seconds() - t;
	printf("# unbind took %.3f s\n", t);
	CHECK(access("/dev/vgru0", F_OK) != 0);
	return t;
}

/*
 * Bind the driver again and copy through the new /dev/vgru0.  The old
 * device's minor is free only once its last context is freed (a work,
 * after its fault work ends): @settle_ms gives that time.
 */
static void rebind_and_copy(const char *bdf, unsigned int settle_ms)
{
	unsigned char *buf = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
	struct vgru *v;

	usleep(settle_ms * 1000);
	write_sysfs("/sys/bus/pci/drivers/vgru/bind", bdf);
	CHECK_EQ(vgru_open(NULL, &v), 0);
	fill(buf, PAGE, 41);
	CHECK_EQ(vgru_copy(v, buf + PAGE, buf, PAGE), 0);
	CHECK(memcmp(buf, buf + PAGE, PAGE) == 0);
	vgru_close(v);
}

/*
 * Start a one-page copy whose first fault sleeps in the driver for
 * @delay_us (inject_resolve_delay_us): a command in flight that long.
 */
static int submit_held_copy(struct vgru *v, unsigned int delay_us)
{
	unsigned char *src = map_anon(PAGE, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(PAGE, PROT_READ | PROT_WRITE);
	struct vgru_desc d;
	char val[32];
	int t;

	fill(src, PAGE, 43);
	memset(dst, 0, PAGE);
	snprintf(val, sizeof(val), "%u", delay_us);
	write_sysfs(RESOLVE_DELAY, val);
	vgru_prep_copy(&d, dst, src, PAGE);
	t = vgru_submit(v, &d, 0);
	CHECK(t >= 0);
	usleep(200 * 1000);	/* its first fault sleeps in the driver now */
	return t;
}

static sigjmp_buf sigbus_jmp;

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(sigbus_jmp, 1);
}

/* Whether reading the window @w raises SIGBUS. */
static bool window_sigbus(volatile uint8_t *w)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	volatile bool bus = false;

	CHECK_EQ(sigaction(SIGBUS, &sa, &old), 0);
	if (sigsetjmp(sigbus_jmp, 1))
		bus = true;
	else
		(void)*(volatile uint32_t *)(w + VGRU_CB_STATUS);
	CHECK_EQ(sigaction(SIGBUS, &old, NULL), 0);
	return bus;
}

/*
 * The fd holder unbinds the driver itself, with a command in flight (its
 * fault held in the driver for 2 s): the unbind returns at once (the old
 * driver waited for the close: forever), the command ends with -ENODEV,
 * later calls fail with -ENODEV without touching the window, ioctls and
 * mmap answer ENODEV, the zapped window raises SIGBUS, and a rebound
 * device works.
 */
TEST(unbind_by_fd_holder_revokes)
{
	unsigned char *buf = map_anon(2 * PAGE, PROT_READ | PROT_WRITE);
	struct vgru *v = open_ctx();
	struct vgru_result res;
	struct vgru_info info;
	volatile uint8_t *w;
	struct pollfd pfd;
	char bdf[64];
	int t, raw;

	vgru0_bdf(bdf, sizeof(bdf));
	raw = open("/dev/vgru0", O_RDWR);
	CHECK(raw >= 0);
	w = map_window(raw);
	CHECK_EQ(*(volatile uint32_t *)(w + VGRU_CB_STATUS), VGRU_CB_IDLE);
	t = submit_held_copy(v, 2000000);

	CHECK(unbind_timed(bdf) < 1.0);
	write_sysfs(RESOLVE_DELAY, "0");

	memset(&res, 0x55, sizeof(res));
	CHECK_EQ(vgru_wait(v, t, 5000, &res), -ENODEV);
	CHECK_EQ(res.error, -ENODEV);
	CHECK_EQ(res.device_error, 0);
	fill(buf, PAGE, 44);
	CHECK_EQ(vgru_copy(v, buf + PAGE, buf, PAGE), -ENODEV);
	CHECK_EQ(ioctl(vgru_fd(v), VGRU_IOC_INFO, &info), -1);
	CHECK_EQ(errno, ENODEV);
	CHECK(mmap(NULL, VGRU_WINDOW_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		   raw, 0) == MAP_FAILED);
	CHECK_EQ(errno, ENODEV);
	pfd = (struct pollfd){ .fd = raw, .events = POLLIN };
	CHECK_EQ(poll(&pfd, 1, 0), 1);
	CHECK_EQ(pfd.revents, POLLERR | POLLHUP);
	CHECK(window_sigbus(w));
	CHECK(open("/dev/vgru0", O_RDWR) < 0);

	CHECK_EQ(munmap((void *)w, VGRU_WINDOW_SIZE), 0);
	CHECK_EQ(close(raw), 0);
	vgru_close(v);
	rebind_and_copy(bdf, 2500);
}

/*
 * Unbind while the fd holder is stopped (SIGSTOP) with a command in
 * flight: the unbind does not wait for it; continued, its wait returns
 * -ENODEV.
 */
TEST(unbind_with_stopped_holder)
{
	char bdf[64];
	int status;
	pid_t pid;

	vgru0_bdf(bdf, sizeof(bdf));
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct vgru *v = open_ctx();
		struct vgru_result res;
		int t = submit_held_copy(v, 2000000);

		raise(SIGSTOP);
		t = vgru_wait(v, t, 5000, &res);
		_exit(t == -ENODEV && res.error == -ENODEV ? 0 : 1);
	}
	CHECK_EQ(waitpid(pid, &status, WUNTRACED), pid);
	CHECK(WIFSTOPPED(status));

	CHECK(unbind_timed(bdf) < 1.0);
	write_sysfs(RESOLVE_DELAY, "0");
	CHECK_EQ(kill(pid, SIGCONT), 0);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	rebind_and_copy(bdf, 2500);
}

/*
 * Unbind while the only reference to an open file sits unreceived in an
 * SCM_RIGHTS message: the unbind returns at once; the received file is a
 * dead handle.
 */
TEST(unbind_with_fd_in_flight)
{
	char cbuf[CMSG_SPACE(sizeof(int))], byte = 'x', bdf[64];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct vgru_info info;
	struct cmsghdr *cm;
	int sv[2], fd;

	vgru0_bdf(bdf, sizeof(bdf));
	CHECK_EQ(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	fd = open("/dev/vgru0", O_RDWR);
	CHECK(fd >= 0);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	CHECK_EQ(sendmsg(sv[0], &msg, 0), 1);
	CHECK_EQ(close(fd), 0);

	CHECK(unbind_timed(bdf) < 1.0);

	memset(cbuf, 0, sizeof(cbuf));
	msg.msg_controllen = sizeof(cbuf);
	CHECK_EQ(recvmsg(sv[1], &msg, 0), 1);
	cm = CMSG_FIRSTHDR(&msg);
	CHECK(cm != NULL && cm->cmsg_type == SCM_RIGHTS);
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	CHECK_EQ(ioctl(fd, VGRU_IOC_INFO, &info), -1);
	CHECK_EQ(errno, ENODEV);
	CHECK_EQ(close(fd), 0);
	close(sv[0]);
	close(sv[1]);
	rebind_and_copy(bdf, 300);
}

/* Whether the kernel command line has @word (the runner's lane switches). */
static bool cmdline_has(const char *word)
{
	char line[4096];
	FILE *f = fopen("/proc/cmdline", "r");
	bool has = false;

	CHECK(f != NULL);
	if (fgets(line, sizeof(line), f))
		for (char *tok = strtok(line, " \n"); tok;
		     tok = strtok(NULL, " \n"))
			has |= !strcmp(tok, word);
	fclose(f);
	return has;
}

#define WEDGE_BUFS	32

/*
 * A wedged device: invalidations complete 300 ms late (the device's
 * x-inv-delay-us=300000; the driver waits 100 ms).  The first one times
 * out and marks the device broken; every later invalidation returns at
 * once (the notifier only forgets what the device held); open, commands
 * and waits fail with -EIO.  Runs only in its own boot: tests/run-tests'
 * wedged lane (kernel command line vgru_tests=wedged).
 */
TEST(wedged_device_fails_with_eio)
{
	unsigned char *src = map_anon(PAGE, PROT_READ | PROT_WRITE);
	unsigned char *buf[WEDGE_BUFS];
	struct vgru_result res;
	struct vgru_desc d;
	double t, first = 0, rest = 0, unseen;
	struct vgru *v, *v2;
	int tk;

	if (!cmdline_has("vgru_tests=wedged"))
		SKIP("needs -device vgru,x-inv-delay-us=300000 and vgru_tests=wedged");
	v = open_ctx();
	fill(src, PAGE, 45);
	for (unsigned int i = 0; i < WEDGE_BUFS; i++) {
		buf[i] = map_anon(PAGE, PROT_READ | PROT_WRITE);
		memset(buf[i], 0, PAGE);
		CHECK_EQ(vgru_copy(v, buf[i], src, PAGE), 0);
		CHECK(memcmp(buf[i], src, PAGE) == 0);
	}
	/* the device holds every buffer: each munmap invalidates */
	for (unsigned int i = 0; i < WEDGE_BUFS; i++) {
		t = wall_seconds();
		CHECK_EQ(munmap(buf[i], PAGE), 0);
		t = wall_seconds() - t;
		if (i)
			rest += t;
		else
			first = t;
	}
	/* the same munmaps of pages the device never saw */
	for (unsigned int i = 1; i < WEDGE_BUFS; i++) {
		buf[i] = map_anon(PAGE, PROT_READ | PROT_WRITE);
		memset(buf[i], 0, PAGE);
	}
	t = wall_seconds();
	for (unsigned int i = 1; i < WEDGE_BUFS; i++)
		CHECK_EQ(munmap(buf[i], PAGE), 0);
	unseen = wall_seconds() - t;
	printf("# first munmap %.3f s, the other %u %.3f s (never seen: "
	       "%.3f s)\n", first, WEDGE_BUFS - 1, rest, unseen);
	CHECK(first >= 0.09);
	/* a 100 ms poll each would add 3.1 s */
	CHECK(rest < unseen + 1.0);

	errno = 0;
	CHECK(open("/dev/vgru0", O_RDWR) < 0);
	CHECK_EQ(errno, EIO);
	CHECK_EQ(vgru_open(NULL, &v2), -EIO);
	/* a command never runs on a stopped device: its wait says so */
	vgru_prep_nop(&d);
	tk = vgru_submit(v, &d, 0);
	CHECK(tk >= 0);
	CHECK_EQ(vgru_wait(v, tk, 5000, &res), -EIO);
	CHECK_EQ(res.error, -EIO);
	CHECK_EQ(vgru_fill(v, src, 0, PAGE), -EIO);
	vgru_close(v);
}

/*
 * A DMA error reaches the command's owner with its detail: with
 * x-fail-dma-every=4 every 4th transfer fails; prefaulted one-page copies
 * are one transfer each, so exactly the 4th and 8th end in ERROR class
 * DMA (-EIO) with nothing moved, and the others copy.  Runs only in the
 * faildma lane (vgru_tests=faildma).
 */
TEST(dma_error_reaches_owner)
{
	unsigned char *src = map_anon(PAGE, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(PAGE, PROT_READ | PROT_WRITE);
	struct vgru_result res;
	struct vgru_desc d;
	struct vgru *v;

	if (!cmdline_has("vgru_tests=faildma"))
		SKIP("needs -device vgru,x-fail-dma-every=4 and vgru_tests=faildma");
	v = open_ctx();
	fill(src, PAGE, 46);
	CHECK_EQ(vgru_prefault(v, src, PAGE, 0), 0);
	CHECK_EQ(vgru_prefault(v, dst, PAGE, 1), 0);
	for (unsigned int i = 1; i <= 8; i++) {
		memset(dst, 0, PAGE);
		vgru_prep_copy(&d, dst, src, PAGE);
		CHECK_EQ(vgru_wait(v, vgru_submit(v, &d, 0), -1, &res),
			 i % 4 ? 0 : -EIO);
		if (i % 4) {
			CHECK(memcmp(dst, src, PAGE) == 0);
			continue;
		}
		CHECK_EQ(res.error, -EIO);
		CHECK_EQ(VGRU_ERR_CLASS(res.device_error), VGRU_ERR_DMA);
		CHECK_EQ(res.progress, 0);
	}
	CHECK_EQ(stats(v).faults, 0);
	vgru_close(v);
}

/*
 * The device is hot-unplugged (QMP device_del, tests/hotplug) while this
 * process has a context open and a command in flight (32 pages, one
 * fault each, each held 1 s in the driver): the wait returns -ENODEV,
 * the handle is dead.  Run by tests/guest/hotplug with VGRU_HOTPLUG_DIR
 * set to the directory it shares with the host.
 */
TEST(unplug_under_load)
{
	const char *dir = getenv("VGRU_HOTPLUG_DIR");
	unsigned char *src = map_anon(32 * PAGE, PROT_READ | PROT_WRITE);
	unsigned char *dst = map_anon(32 * PAGE, PROT_READ | PROT_WRITE);
	struct vgru_result res;
	struct vgru_info info;
	struct vgru_desc d;
	char path[512];
	struct vgru *v;
	int t, fd;

	if (!dir)
		SKIP("run by tests/guest/hotplug");
	v = open_ctx();
	CHECK(vgru_set_fault_around(v, 1) >= 0);
	fill(src, 32 * PAGE, 47);
	memset(dst, 0, 32 * PAGE);
	write_sysfs(RESOLVE_DELAY, "1000000");
	vgru_prep_copy(&d, dst, src, 32 * PAGE);
	t = vgru_submit(v, &d, 0);
	CHECK(t >= 0);
	usleep(200 * 1000);
	snprintf(path, sizeof(path), "%s/unplug", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(vgru_wait(v, t, 60000, &res), -ENODEV);
	write_sysfs(RESOLVE_DELAY, "0");
	CHECK_EQ(res.error, -ENODEV);
	CHECK(memcmp(dst, src, 32 * PAGE) != 0);	/* it did not finish */
	CHECK_EQ(ioctl(vgru_fd(v), VGRU_IOC_INFO, &info), -1);
	CHECK_EQ(errno, ENODEV);
	vgru_close(v);
}

/*
 * The page of libvgru's completion records: the process's one 4 KiB
 * anonymous mapping kept out of children (VmFlags "dc", MADV_DONTFORK),
 * or NULL.
 */
static unsigned char *records_page(void)
{
	unsigned long start, end, cand = 0, found = 0;
	char line[512], path[256];
	FILE *f = fopen("/proc/self/smaps", "r");

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		path[0] = 0;
		/* a mapping's first line: START-END PERMS OFFSET DEV INODE [PATH] */
		if (strchr(line, '-') < strchr(line, ' ') &&
		    sscanf(line, "%lx-%lx %*s %*s %*s %*s %255s", &start, &end,
			   path) >= 2) {
			cand = end - start == PAGE && !path[0] ? start : 0;
			continue;
		}
		if (cand && !strncmp(line, "VmFlags:", 8) && strstr(line, " dc"))
			found = cand;
	}
	fclose(f);
	return (unsigned char *)found;
}

/* A command whose completion record cannot be written (the records'
 * page made read-only while a long copy runs) still ends for vgru_test()
 * and vgru_wait(): the result comes from the window (vgru_test() used to
 * say -EBUSY for ever).  The copy itself is done. */
TEST(async_result_without_record)
{
	const size_t len = 16 << 20;
	unsigned char *src = map_anon(len, RW), *dst = map_anon(len, RW);
	struct vgru *v = open_ctx_per_page();
	unsigned char *rec = records_page();
	struct vgru_result res;
	struct vgru_desc d;

	if (!rec)
		SKIP("cannot find libvgru's records page in smaps");
	CHECK_EQ(madvise(src, len, MADV_NOHUGEPAGE), 0);
	CHECK_EQ(madvise(dst, len, MADV_NOHUGEPAGE), 0);
	for (int round = 0; round < 2; round++) {
		int t, ret = -EBUSY;

		fill(src, len, 60 + round);
		vgru_prep_copy(&d, dst, src, len);
		t = vgru_submit(v, &d, 0);	/* zeroes the record's status */
		CHECK(t >= 0);
		CHECK_EQ(mprotect(rec, PAGE, PROT_READ), 0);
		CHECK_EQ(vgru_test(v, t, &res), -EBUSY);  /* still copying */
		if (round == 0) {
			for (int i = 0; i < 60000 && ret == -EBUSY; i++) {
				ret = vgru_test(v, t, &res);
				if (ret == -EBUSY)
					usleep(1000);
			}
		} else {
			ret = vgru_wait(v, t, 60000, &res);
		}
		CHECK_EQ(ret, -EPERM);
		CHECK_EQ(res.error, -EPERM);
		CHECK_EQ(VGRU_ERR_CLASS(res.device_error), VGRU_ERR_FAULT);
		CHECK_EQ(VGRU_ERR_DETAIL(res.device_error), EPERM);
		CHECK_EQ(res.progress, len);
		CHECK(memcmp(dst, src, len) == 0);
		CHECK_EQ(mprotect(rec, PAGE, RW), 0);
	}
	vgru_prep_nop(&d);
	CHECK_EQ(vgru_wait(v, vgru_submit(v, &d, 0), 10000, &res), 0);
	vgru_close(v);
}

/* ---- issue 14: lost interrupts, limits, tracepoints, debugfs ---- */

/*
 * A lost event interrupt is recovered: the device (booted with
 * x-drop-irq-every=N, the guest-lost-irq lane, which says N in
 * VGRU_TEST_DROP_IRQ_EVERY) drops every N-th raise and stays silent until
 * FQ_HEAD is written; the driver's watchdog drains the queue.  Copies of
 * 256 pages, a fault each (submitted and waited on with a time limit, so
 * that the driver, not the waiting thread, resolves them), complete byte
 * for byte, and driver_lost_irqs
 * counts the drains.  Not exact: the IRQ handler's reread of FQ_TAIL may
 * pick up a record whose raise was dropped (lost < dropped), and an
 * interrupt delivered more than a period late (a vCPU the loaded host did
 * not run) is drained and counted as lost.  dropped = (raised + dropped)
 * / N gives (N - 1) * dropped <= raised: lost stays within a few of that.
 * Without the watchdog the first dropped raise hangs the copy: the alarm.
 */
TEST(lost_interrupt_recovered)
{
	const char *env = getenv("VGRU_TEST_DROP_IRQ_EVERY");
	const unsigned long every = env ? strtoul(env, NULL, 0) : 0;
	const size_t len = 256 * PAGE;
	unsigned char *src, *dst;
	uint64_t lost, lost0, raised;
	struct vgru_desc d;
	struct vgru *v;
	int t;

	if (every < 2)
		SKIP("needs a device with x-drop-irq-every=N, N >= 2, and VGRU_TEST_DROP_IRQ_EVERY=N");
	v = open_ctx_per_page();
	lost0 = sysfs_stat("driver_lost_irqs");
	alarm(30);
	for (int round = 0; round < 2; round++) {
		/* fresh buffers: every page of both operands faults */
		src = map_anon(len, RW);
		dst = map_anon(len, RW);
		CHECK_EQ(madvise(src, len, MADV_NOHUGEPAGE), 0);
		CHECK_EQ(madvise(dst, len, MADV_NOHUGEPAGE), 0);
		fill(src, len, 70 + round);
		/* submitted, waited on with a limit: the driver's faults */
		vgru_prep_copy(&d, dst, src, len);
		t = vgru_submit(v, &d, 0);
		CHECK(t >= 0);
		CHECK_EQ(vgru_wait(v, t, 30000, NULL), 0);
		CHECK(memcmp(dst, src, len) == 0);
		CHECK_EQ(munmap(src, len), 0);
		CHECK_EQ(munmap(dst, len), 0);
	}
	alarm(0);
	/* a raise dropped after the last copy is drained within 2 ticks */
	usleep(200 * 1000);
	lost = sysfs_stat("driver_lost_irqs");
	raised = sysfs_stat("device_interrupts");
	printf("# lost_irqs %llu (this case %llu), interrupts raised %llu\n",
	       (unsigned long long)lost, (unsigned long long)(lost - lost0),
	       (unsigned long long)raised);
	CHECK(lost - lost0 >= 10);
	CHECK(lost <= raised / (every - 1) + 4);
	vgru_close(v);
}

#define MAX_PER_USER "/sys/module/vgru/parameters/max_contexts_per_user"

static long read_param(const char *path)
{
	FILE *f = fopen(path, "r");
	long val = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &val) != 1)
		val = -1;
	fclose(f);
	return val;
}

static int write_param(const char *path, long val)
{
	FILE *f = fopen(path, "w");
	int ret;

	if (!f)
		return -errno;
	ret = fprintf(f, "%ld\n", val) > 0 ? 0 : -EIO;
	if (fclose(f))
		ret = -errno;
	return ret;
}

/* Open contexts of the calling process's user: as many as @n succeed. */
static void open_n(int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		fds[i] = open("/dev/vgru0", O_RDWR);
		CHECK(fds[i] >= 0);
	}
}

static void close_n(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		CHECK_EQ(close(fds[i]), 0);
}

/*
 * max_contexts_per_user (set to 3 here): an unprivileged uid opens 3
 * contexts, the 4th open fails with EMFILE (libvgru: -EMFILE), a close
 * gives one back, and after closing all it opens 3 again.  Root's open
 * contexts are not the user's (counted per real uid), and root, counted
 * but with CAP_SYS_RESOURCE, opens past the limit.  0 lifts it.
 */
TEST(contexts_per_user_limit)
{
	long old = read_param(MAX_PER_USER);
	int root_fds[4], status;
	struct stat st;
	pid_t pid;

	if (old < 0)
		SKIP("driver without max_contexts_per_user");
	CHECK_EQ(stat("/dev/vgru0", &st), 0);
	CHECK_EQ(write_param(MAX_PER_USER, 3), 0);
	CHECK_EQ(chmod("/dev/vgru0", 0666), 0);
	open_n(root_fds, 4);	/* root: past the limit */
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		gid_t g = 65534;
		struct vgru *v = NULL;
		int fds[3];

		CHECK_EQ(setgroups(0, &g), 0);
		CHECK_EQ(setgid(g), 0);
		CHECK_EQ(setuid(4250), 0);
		open_n(fds, 3);
		CHECK_EQ(open("/dev/vgru0", O_RDWR), -1);
		CHECK_EQ(errno, EMFILE);
		CHECK_EQ(vgru_open(NULL, &v), -EMFILE);
		CHECK_EQ(close(fds[1]), 0);
		open_n(&fds[1], 1);
		CHECK_EQ(open("/dev/vgru0", O_RDWR), -1);
		CHECK_EQ(errno, EMFILE);
		close_n(fds, 3);
		open_n(fds, 3);
		close_n(fds, 3);
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	close_n(root_fds, 4);
	CHECK_EQ(chmod("/dev/vgru0", st.st_mode & 07777), 0);
	CHECK_EQ(write_param(MAX_PER_USER, old), 0);
	CHECK_EQ(status, 0);

	/* 0: no limit for the user either */
	CHECK_EQ(write_param(MAX_PER_USER, 0), 0);
	CHECK_EQ(chmod("/dev/vgru0", 0666), 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		gid_t g = 65534;
		int fds[5];

		CHECK_EQ(setgroups(0, &g), 0);
		CHECK_EQ(setgid(g), 0);
		CHECK_EQ(setuid(4250), 0);
		open_n(fds, 5);
		close_n(fds, 5);
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK_EQ(chmod("/dev/vgru0", st.st_mode & 07777), 0);
	CHECK_EQ(write_param(MAX_PER_USER, old), 0);
	CHECK_EQ(status, 0);
}

#define TRACE_INSTANCE "/sys/kernel/tracing/instances/vgru-tests"

/* Write @val to the file @name of the trace instance. */
static void trace_write(const char *name, const char *val)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), TRACE_INSTANCE "/%s", name);
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, val, strlen(val)), (ssize_t)strlen(val));
	CHECK_EQ(close(fd), 0);
}

/* Lines of the instance's trace that contain @what. */
static int trace_count(const char *what)
{
	FILE *f = fopen(TRACE_INSTANCE "/trace", "r");
	char line[512];
	int n = 0;

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		n += !!strstr(line, what);
	fclose(f);
	return n;
}

/*
 * The driver's tracepoints, in a trace instance of their own: a context
 * opened (its records page prefaulted: 1 drop-in), a copy of 16 present
 * pages with fault-around 1 (32 faults: each received, started, looked
 * up, dropped in, ended with ret=0 pages=1 retries=0, restarted), the
 * destination unmapped (1 invalidation of exactly that range), the
 * context closed.  Fails when an event goes missing or fires twice.
 */
TEST(tracepoints_count_one_copy)
{
	const size_t pages = 16;
	unsigned char *src = map_anon(pages * PAGE, RW);
	unsigned char *dst = map_anon(pages * PAGE, RW);
	char range[80];
	struct vgru *v;

	if (mkdir(TRACE_INSTANCE, 0700) && errno != EEXIST) {
		if (access("/sys/kernel/tracing/instances", F_OK))
			SKIP("no tracefs at /sys/kernel/tracing");
		CHECK(0);
	}
	if (access(TRACE_INSTANCE "/events/vgru", F_OK))
		SKIP("driver without tracepoints");
	CHECK_EQ(madvise(src, pages * PAGE, MADV_NOHUGEPAGE), 0);
	CHECK_EQ(madvise(dst, pages * PAGE, MADV_NOHUGEPAGE), 0);
	fill(src, pages * PAGE, 80);
	memset(dst, 0, pages * PAGE);
	trace_write("buffer_size_kb", "1024");
	trace_write("trace", "");
	trace_write("events/vgru/enable", "1");

	v = open_ctx_per_page();
	CHECK_EQ(vgru_copy(v, dst, src, pages * PAGE), 0);
	CHECK(memcmp(dst, src, pages * PAGE) == 0);
	CHECK_EQ(munmap(dst, pages * PAGE), 0);
	vgru_close(v);

	trace_write("events/vgru/enable", "0");
	CHECK_EQ(trace_count(" vgru_ctx_open: "), 1);
	CHECK_EQ(trace_count(" vgru_prefault: "), 1);
	CHECK_EQ(trace_count(" vgru_fault: "), 2 * pages);
	CHECK_EQ(trace_count(" vgru_resolve_start: "), 2 * pages);
	CHECK_EQ(trace_count(" vgru_page_lookup: "), 2 * pages + 1);
	CHECK_EQ(trace_count(" vgru_dropin: "), 2 * pages + 1);
	CHECK_EQ(trace_count(" vgru_resolve_end: "), 2 * pages);
	CHECK_EQ(trace_count("ret=0 pages=1 retries=0"), 2 * pages);
	CHECK_EQ(trace_count(" vgru_retry: "), 0);
	CHECK_EQ(trace_count(" vgru_restart: "), 2 * pages);
	CHECK_EQ(trace_count(" restart err=0"), 2 * pages);
	snprintf(range, sizeof(range), "start=0x%lx end=0x%lx event=unmap",
		 (unsigned long)dst, (unsigned long)dst + pages * PAGE);
	CHECK_EQ(trace_count(range), 1);
	CHECK_EQ(trace_count(" vgru_ctx_close: "), 1);
	CHECK_EQ(rmdir(TRACE_INSTANCE), 0);
}

#define VGRU_DEBUGFS "/sys/kernel/debug/vgru/vgru0"

/* The whole of a (small) file, NUL-terminated, in a static buffer. */
static const char *slurp(const char *path)
{
	static char buf[1 << 16];
	size_t n = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0);
	while ((r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += r;
	CHECK(r == 0);
	CHECK_EQ(close(fd), 0);
	buf[n] = 0;
	return buf;
}

/*
 * debugfs fault_latency_us: reset by a write, then a copy of 16 present
 * pages, a fault each: the histogram holds exactly the context's 32
 * faults, its buckets add up to its total, and a write empties it again.
 */
TEST(debugfs_latency_histogram_counts_faults)
{
	const size_t pages = 16;
	unsigned char *src = map_anon(pages * PAGE, RW);
	unsigned char *dst = map_anon(pages * PAGE, RW);
	unsigned long long lo, hi, n, sum = 0, total = 0;
	const char *text, *line;
	struct vgru *v;

	if (access(VGRU_DEBUGFS "/fault_latency_us", F_OK))
		SKIP("driver without debugfs fault_latency_us");
	CHECK_EQ(madvise(src, pages * PAGE, MADV_NOHUGEPAGE), 0);
	CHECK_EQ(madvise(dst, pages * PAGE, MADV_NOHUGEPAGE), 0);
	fill(src, pages * PAGE, 90);
	memset(dst, 0, pages * PAGE);
	v = open_ctx_per_page();
	write_sysfs(VGRU_DEBUGFS "/fault_latency_us", "0\n");
	CHECK_EQ(vgru_copy(v, dst, src, pages * PAGE), 0);
	CHECK(memcmp(dst, src, pages * PAGE) == 0);
	CHECK_EQ(stats(v).faults, 2 * pages);

	text = slurp(VGRU_DEBUGFS "/fault_latency_us");
	for (line = text; line && *line; line = strchr(line, '\n'),
	     line = line ? line + 1 : NULL) {
		printf("# %.*s\n", (int)strcspn(line, "\n"), line);
		if (sscanf(line, " %llu-%llu %llu", &lo, &hi, &n) == 3 ||
		    sscanf(line, " %llu- %llu", &lo, &n) == 2)
			sum += n;
		else
			CHECK_EQ(sscanf(line, "total %llu", &total), 1);
	}
	CHECK_EQ(total, 2 * pages);
	CHECK_EQ(sum, total);
	write_sysfs(VGRU_DEBUGFS "/fault_latency_us", "0\n");
	CHECK(strcmp(slurp(VGRU_DEBUGFS "/fault_latency_us"), "total 0\n") == 0);
	vgru_close(v);
}

/*
 * The "context ID tag TAG held N" section of debugfs held for context
 * @id: its tag (or -1 if the context is not listed), and in @pages the
 * "0xVA 4K" entries (at most @max), their number in @n.
 */
static long held_section(unsigned int id, unsigned long *pages, int max,
			 int *n)
{
	const char *line = slurp(VGRU_DEBUGFS "/held");
	unsigned int cid, tag;
	long found = -1;
	unsigned long va;
	char size[4];
	int held;

	*n = 0;
	for (; line && *line; line = strchr(line, '\n'),
	     line = line ? line + 1 : NULL) {
		if (sscanf(line, "context %u tag %u held %d", &cid, &tag,
			   &held) == 3) {
			if (found >= 0)
				break;
			if (cid == id)
				found = tag;
		} else if (found >= 0 &&
			   sscanf(line, " 0x%lx %3s", &va, size) == 2) {
			CHECK(strcmp(size, "4K") == 0);
			CHECK(*n < max);
			pages[(*n)++] = va;
		}
	}
	return found;
}

static unsigned int ctx_id(int fd)
{
	struct vgru_info info;

	CHECK_EQ(ioctl(fd, VGRU_IOC_INFO, &info), 0);
	return info.context;
}

/*
 * debugfs held: after VGRU_IOC_PREFAULT of 5 pages of a buffer, a fresh
 * context (no libvgru records page) lists exactly those 5 pages; after
 * munmap of the buffer, none.
 */
TEST(debugfs_held_lists_prefaulted_pages)
{
	unsigned char *buf = map_anon(8 * PAGE, RW);
	unsigned long pages[16];
	struct vgru_prefault pf = { 0 };
	int fd, n;

	if (access(VGRU_DEBUGFS "/held", F_OK))
		SKIP("driver without debugfs held");
	CHECK_EQ(madvise(buf, 8 * PAGE, MADV_NOHUGEPAGE), 0);
	memset(buf, 1, 8 * PAGE);
	fd = open("/dev/vgru0", O_RDWR);
	CHECK(fd >= 0);
	CHECK(held_section(ctx_id(fd), pages, 16, &n) > 0);
	CHECK_EQ(n, 0);
	pf.addr = (uintptr_t)buf + 2 * PAGE;
	pf.len = 5 * PAGE;
	CHECK_EQ(ioctl(fd, VGRU_IOC_PREFAULT, &pf), 0);
	CHECK_EQ(pf.done, 5 * PAGE);
	CHECK(held_section(ctx_id(fd), pages, 16, &n) > 0);
	CHECK_EQ(n, 5);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(pages[i], (uintptr_t)buf + (2 + i) * PAGE);
	CHECK_EQ(munmap(buf, 8 * PAGE), 0);
	CHECK(held_section(ctx_id(fd), pages, 16, &n) > 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(close(fd), 0);
}

/*
 * Context tags never wrap into a live one: with the tag counter (debugfs
 * next_tag) set just below a live context's tag, the next open skips
 * that tag; set to 0xffffffff, the next open skips 0 too.
 */
TEST(context_tags_skip_live_ones)
{
	unsigned long pages[4];
	long a, b, c;
	char val[32];
	int fa, fb, fc, n;

	if (access(VGRU_DEBUGFS "/next_tag", F_OK))
		SKIP("driver without debugfs next_tag");
	/* well above the tags of boot: 1 and 2 are free below */
	snprintf(val, sizeof(val), "%lld\n",
		 atoll(slurp(VGRU_DEBUGFS "/next_tag")) + 100);
	write_sysfs(VGRU_DEBUGFS "/next_tag", val);
	fa = open("/dev/vgru0", O_RDWR);
	CHECK(fa >= 0);
	a = held_section(ctx_id(fa), pages, 4, &n);
	CHECK(a > 2);
	snprintf(val, sizeof(val), "%ld\n", a - 1);
	write_sysfs(VGRU_DEBUGFS "/next_tag", val);
	fb = open("/dev/vgru0", O_RDWR);
	CHECK(fb >= 0);
	b = held_section(ctx_id(fb), pages, 4, &n);
	CHECK_EQ(b, a + 1);
	/* 0 is no tag; 1 is free unless a or b holds it (a > 2) */
	write_sysfs(VGRU_DEBUGFS "/next_tag", "4294967295\n");
	fc = open("/dev/vgru0", O_RDWR);
	CHECK(fc >= 0);
	c = held_section(ctx_id(fc), pages, 4, &n);
	CHECK_EQ(c, 1);
	CHECK_EQ(close(fa), 0);
	CHECK_EQ(close(fb), 0);
	CHECK_EQ(close(fc), 0);
	/* later contexts go on from a tag above every one used so far */
	snprintf(val, sizeof(val), "%ld\n", b);
	write_sysfs(VGRU_DEBUGFS "/next_tag", val);
}

/* ---- issue 13: fault-around, huge pages, userfaultfd, slow contexts ---- */

#define HPAGE (2UL << 20)

/*
 * A context driven through its window, without libvgru: no completion
 * record, so the counts below are the operands' faults alone (a record's
 * page evicted by a long copy would add one).
 */
struct raw_ctx {
	int fd;
	volatile uint8_t *w;
};

static struct raw_ctx raw_open(void)
{
	struct raw_ctx c = { .fd = open("/dev/vgru0", O_RDWR) };

	CHECK(c.fd >= 0);
	c.w = mmap(NULL, VGRU_WINDOW_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		   c.fd, 0);
	CHECK(c.w != MAP_FAILED);
	return c;
}

static void raw_close(struct raw_ctx *c)
{
	CHECK_EQ(munmap((void *)c->w, VGRU_WINDOW_SIZE), 0);
	CHECK_EQ(close(c->fd), 0);
}

/* How a raw command ended. */
struct raw_end {
	uint32_t status, error;
	uint64_t progress;
};

/* COPY on CB 0, waited for by reading STATUS (at most 60 s). */
static struct raw_end raw_copy(struct raw_ctx *c, void *dst, const void *src,
			       size_t len)
{
	volatile uint8_t *w = c->w;
	struct raw_end e;

	*(volatile uint64_t *)(w + VGRU_CB_OPCODE) = VGRU_OP_COPY;
	*(volatile uint64_t *)(w + VGRU_CB_SRC) = (uintptr_t)src;
	*(volatile uint64_t *)(w + VGRU_CB_DST) = (uintptr_t)dst;
	*(volatile uint64_t *)(w + VGRU_CB_LEN) = len;
	*(volatile uint64_t *)(w + VGRU_CB_COMP) = 0;
	*(volatile uint32_t *)(w + VGRU_CB_DOORBELL) = VGRU_CB_START;
	for (int i = 0; i < 600000; i++) {
		e.status = *(volatile uint32_t *)(w + VGRU_CB_STATUS);
		if (e.status == VGRU_CB_DONE || e.status == VGRU_CB_ERROR)
			break;
		usleep(100);
	}
	e.error = *(volatile uint32_t *)(w + VGRU_CB_ERROR_CODE);
	e.progress = *(volatile uint64_t *)(w + VGRU_CB_PROGRESS);
	return e;
}

static void raw_copy_ok(struct raw_ctx *c, void *dst, const void *src,
			size_t len)
{
	struct raw_end e = raw_copy(c, dst, src, len);

	CHECK_EQ(e.status, VGRU_CB_DONE);
	CHECK_EQ(e.progress, len);
	CHECK(memcmp(dst, src, len) == 0);
}

static uint64_t raw_faults(struct raw_ctx *c)
{
	struct vgru_ctx_stats st;

	CHECK_EQ(ioctl(c->fd, VGRU_IOC_STATS, &st), 0);
	CHECK_EQ(st.fault_errors, 0);
	return st.faults;
}

/* VGRU_IOC_FAULT_AROUND: the value in effect after @pages, or -errno. */
static int fault_around_ioctl(int fd, struct vgru_fault_around *fa)
{
	return ioctl(fd, VGRU_IOC_FAULT_AROUND, fa) ? -errno : (int)fa->pages;
}

static void set_fault_around(int fd, unsigned int pages)
{
	struct vgru_fault_around fa = { .pages = pages };
	int ret = fault_around_ioctl(fd, &fa);

	if (ret == -ENOTTY)
		SKIP("driver without VGRU_IOC_FAULT_AROUND");
	CHECK_EQ(ret, pages);
}

/*
 * @len bytes in 4 KiB pages at an @align boundary, with @align bytes of
 * the same mapping on either side (absent pages, never touched).
 */
static unsigned char *map_aligned(size_t len, size_t align)
{
	unsigned char *raw = map_anon(len + 2 * align, RW);

	CHECK_EQ(madvise(raw, len + 2 * align, MADV_NOHUGEPAGE), 0);
	return (unsigned char *)(((uintptr_t)raw + align) & ~(align - 1));
}

#define FAULT_AROUND_PARAM "/sys/module/vgru/parameters/fault_around_pages"

/* VGRU_IOC_FAULT_AROUND: per context, powers of two up to 512; 0 queries;
 * everything else -EINVAL and no change. */
TEST(fault_around_ioctl_values_and_errors)
{
	static const unsigned int bad[] = { 3, 6, 513, 1024, 0x80000000u };
	struct vgru_fault_around fa = { 0 };
	struct vgru *v = open_ctx(), *w;
	int fd = vgru_fd(v), def;
	FILE *f;

	def = fault_around_ioctl(fd, &fa);
	if (def == -ENOTTY) {
		CHECK_EQ(vgru_get_fault_around(v), -ENOTTY);
		SKIP("driver without VGRU_IOC_FAULT_AROUND");
	}
	CHECK(def >= 1 && def <= VGRU_FAULT_AROUND_MAX && !(def & (def - 1)));
	CHECK_EQ(vgru_get_fault_around(v), def);
	f = fopen(FAULT_AROUND_PARAM, "r");
	if (f) {
		int param = -1;

		CHECK_EQ(fscanf(f, "%d", &param), 1);
		fclose(f);
		CHECK_EQ(def, param);	/* a new context starts with it */
	}
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fa = (struct vgru_fault_around){ .pages = bad[i] };
		CHECK_EQ(fault_around_ioctl(fd, &fa), -EINVAL);
		CHECK_EQ(vgru_set_fault_around(v, bad[i]), -EINVAL);
	}
	fa = (struct vgru_fault_around){ .pages = 16, .reserved0 = 1 };
	CHECK_EQ(fault_around_ioctl(fd, &fa), -EINVAL);
	fa = (struct vgru_fault_around){ .pages = 16, .reserved = { 0, 0, 1 } };
	CHECK_EQ(fault_around_ioctl(fd, &fa), -EINVAL);
	CHECK_EQ(vgru_set_fault_around(v, 0), -EINVAL);	/* not a setting */
	CHECK_EQ(vgru_get_fault_around(v), def);	/* none of it stuck */

	for (unsigned int k = 1; k <= VGRU_FAULT_AROUND_MAX; k *= 2) {
		CHECK_EQ(vgru_set_fault_around(v, k), k);
		fa = (struct vgru_fault_around){ .pages = 0 };
		CHECK_EQ(fault_around_ioctl(fd, &fa), k);
		CHECK_EQ(fa.pages, k);
	}
	w = open_ctx();			/* another context: the default */
	CHECK_EQ(vgru_get_fault_around(w), def);
	CHECK_EQ(vgru_get_fault_around(v), VGRU_FAULT_AROUND_MAX);
	vgru_close(w);
	vgru_close(v);
}

/* A cold copy of CPU-touched memory (both operands) faults once per
 * block of K pages: 1 MiB with K = 16 takes 16 source and 16 destination
 * faults, with K = 1 one per page; each page is dropped in once.  (A
 * driver without fault-around is checked as K = 1.) */
TEST(fault_around_touched_counts_exact)
{
	static const unsigned int ks[] = { 1, 16, 64 };
	const size_t len = 1 << 20, pages = len / PAGE;

	for (unsigned int i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		unsigned int k = ks[i];
		unsigned char *src = map_aligned(len, 64 * PAGE);
		unsigned char *dst = map_aligned(len, 64 * PAGE);
		struct raw_ctx c = raw_open();
		struct vgru_fault_around fa = { .pages = k };
		struct vgru_ctx_stats a, b;

		if (fault_around_ioctl(c.fd, &fa) == -ENOTTY) {
			if (k > 1)
				SKIP("driver without VGRU_IOC_FAULT_AROUND: "
				     "K = 1 checked");
		} else {
			CHECK_EQ(fa.pages, k);
		}
		fill(src, len, 30 + i);
		memset(dst, 0, len);
		CHECK_EQ(ioctl(c.fd, VGRU_IOC_STATS, &a), 0);
		raw_copy_ok(&c, dst, src, len);
		CHECK_EQ(ioctl(c.fd, VGRU_IOC_STATS, &b), 0);
		printf("# K=%u: %llu faults, %llu drop-ins\n", k,
		       (unsigned long long)(b.faults - a.faults),
		       (unsigned long long)(b.dropins - a.dropins));
		CHECK_EQ(b.faults - a.faults, 2 * pages / k);
		CHECK_EQ(b.dropins - a.dropins, 2 * pages);
		CHECK_EQ(b.fault_errors, 0);
		raw_close(&c);
		munmap(src - 64 * PAGE, len + 128 * PAGE);
		munmap(dst - 64 * PAGE, len + 128 * PAGE);
	}
}

/* Fault-around faults the absent pages of its block in (anonymous private
 * memory) when the faults stream: on a second fault in the same block, or
 * a fault in the block next to a recent one.  With K = 16 and only the
 * even pages touched, the first source block takes 2 faults (its present
 * pages, then the rest faulted in, read as zeros), each following one 1;
 * a lone copy of one page of an untouched block leaves the other 15
 * absent (mincore). */
TEST(fault_around_faults_in_absent_pages)
{
	const size_t blk = 16 * PAGE, len = 4 * blk;
	unsigned char *src = map_aligned(len, blk);
	unsigned char *dst = map_aligned(len, blk);
	unsigned char *cold = map_aligned(blk, blk);
	unsigned char *ref = map_anon(len, RW), vec[16];
	struct raw_ctx c = raw_open();
	uint64_t f0;

	set_fault_around(c.fd, 16);
	memset(dst, 0xee, len);
	memset(ref, 0, len);
	for (size_t p = 0; p < len; p += 2 * PAGE) {
		fill(src + p, PAGE, 31 + p / PAGE);
		memcpy(ref + p, src + p, PAGE);
	}
	f0 = raw_faults(&c);
	raw_copy_ok(&c, dst, src, len);
	CHECK(memcmp(dst, ref, len) == 0);
	/* source 2 + 1 + 1 + 1, destination (all touched) 1 per block */
	CHECK_EQ(raw_faults(&c) - f0, 5 + 4);

	f0 = raw_faults(&c);
	raw_copy_ok(&c, dst, cold, PAGE);
	CHECK_EQ(raw_faults(&c) - f0, 1);	/* destination held */
	CHECK_EQ(mincore(cold, blk, vec), 0);
	CHECK(vec[0] & 1);
	for (int i = 1; i < 16; i++)
		CHECK_EQ(vec[i] & 1, 0);
	raw_close(&c);
}

/* A block crossing the end of a mapping is clamped to it: a touched
 * block split in two mappings (the second read-only) takes two source
 * faults, and a PROT_NONE neighbour of present pages stays out of the
 * device's reach (-EFAULT exactly at it). */
TEST(fault_around_clamped_to_vma)
{
	const size_t blk = 16 * PAGE, half = 8 * PAGE;
	unsigned char *a = map_aligned(blk, blk);
	unsigned char *b = map_aligned(blk, blk);
	unsigned char *dst = map_aligned(blk, blk);
	struct raw_ctx c = raw_open();
	struct raw_end e;
	uint64_t f0;

	set_fault_around(c.fd, 16);
	fill(a, blk, 32);
	fill(b, blk, 33);
	memset(dst, 0, blk);
	/* both before the device sees them: no invalidation hides a bug */
	CHECK_EQ(mprotect(a + half, half, PROT_READ), 0);
	CHECK_EQ(mprotect(b + half, half, PROT_NONE), 0);

	f0 = raw_faults(&c);
	raw_copy_ok(&c, dst, a, blk);
	CHECK_EQ(raw_faults(&c) - f0, 2 + 1);

	f0 = raw_faults(&c);
	raw_copy_ok(&c, dst, b, half);
	CHECK_EQ(raw_faults(&c) - f0, 1);
	memset(dst, 0x5a, blk);
	e = raw_copy(&c, dst, b + half - PAGE, 2 * PAGE);
	CHECK_EQ(e.status, VGRU_CB_ERROR);
	CHECK_EQ(VGRU_ERR_CLASS(e.error), VGRU_ERR_FAULT);
	CHECK_EQ(VGRU_ERR_DETAIL(e.error), EFAULT);
	CHECK_EQ(e.progress, PAGE);
	CHECK(memcmp(dst, b + half - PAGE, PAGE) == 0);
	CHECK(all_bytes(dst + PAGE, blk - PAGE, 0x5a));
	raw_close(&c);
}

/* AnonHugePages of the mapping that holds @addr, in bytes. */
static uint64_t anon_huge_bytes(const void *addr)
{
	unsigned long start, end;
	unsigned long long kb = 0;
	char line[512];
	bool in = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2)
			in = (uintptr_t)addr >= start && (uintptr_t)addr < end;
		else if (in && !strncmp(line, "AnonHugePages:", 14))
			kb = strtoull(line + 14, NULL, 10);
	}
	fclose(f);
	return kb * 1024;
}

/* @len bytes of THP-advised memory on a 2 MiB boundary, CPU-touched; SKIP
 * unless all of it is PMD-mapped huge pages. */
static unsigned char *map_thp_touched(size_t len, unsigned int seed)
{
	unsigned char *raw = map_anon(len + HPAGE, RW), *p;

	p = (unsigned char *)(((uintptr_t)raw + HPAGE - 1) & ~(HPAGE - 1));
	if (madvise(p, len, MADV_HUGEPAGE))
		SKIP("kernel without transparent huge pages");
	fill(p, len, seed);
	if (anon_huge_bytes(p) != len)
		SKIP("not all of the buffer got huge pages");
	return p;
}

/*
 * A PMD-mapped THP costs the device one fault per 2 MiB: a 16 MiB copy
 * between two THP buffers takes 8 + 8 faults, 16 huge drop-ins.  Then the
 * huge pages are split under the device (mprotect of 4 KiB in the source,
 * munmap of 4 KiB in the destination): the data stays right byte for
 * byte, and the copy stops exactly at the hole.  Without 2 MiB drop-ins
 * (fdinfo has no huge_dropins) the data is checked, the counts are not.
 */
TEST(thp_faults_per_huge_page_and_split)
{
	const size_t len = 16 << 20, hole = 5 * HPAGE + 7 * PAGE;
	unsigned char *src = map_thp_touched(len, 34);
	unsigned char *dst = map_thp_touched(len, 35);
	struct raw_ctx c = raw_open();
	long long huge0 = fdinfo_value(c.fd, "huge_dropins");
	uint64_t f0 = raw_faults(&c), faults;
	struct raw_end e;

	raw_copy_ok(&c, dst, src, len);
	faults = raw_faults(&c) - f0;
	printf("# THP copy: %llu faults\n", (unsigned long long)faults);
	CHECK_EQ(anon_huge_bytes(src), len);	/* still PMD-mapped */
	if (huge0 >= 0) {
		CHECK_EQ(faults, 2 * len / HPAGE);
		CHECK_EQ(fdinfo_value(c.fd, "huge_dropins") - huge0,
			 2 * len / HPAGE);
	}

	fill(src, len, 36);
	CHECK_EQ(mprotect(src + 3 * HPAGE + 5 * PAGE, PAGE, PROT_READ), 0);
	CHECK(anon_huge_bytes(src) < len);	/* split */
	raw_copy_ok(&c, dst, src, len);
	fill(src, 3 * HPAGE, 37);		/* CPU writes after the split */
	raw_copy_ok(&c, dst, src, len);

	CHECK_EQ(munmap(dst + hole, PAGE), 0);
	CHECK_EQ(mprotect(src + 3 * HPAGE + 5 * PAGE, PAGE, RW), 0);
	fill(src, len, 38);
	e = raw_copy(&c, dst, src, len);
	CHECK_EQ(e.status, VGRU_CB_ERROR);
	CHECK_EQ(VGRU_ERR_DETAIL(e.error), EFAULT);
	CHECK_EQ(e.progress, hole);
	CHECK(memcmp(dst, src, hole) == 0);
	raw_close(&c);
	if (huge0 < 0)
		SKIP("driver without 2 MiB drop-ins: data checked, counts not");
}

#define NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"

static long long read_ll(const char *path)
{
	long long v = -1;
	FILE *f = fopen(path, "r");

	if (f) {
		if (fscanf(f, "%lld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* A hugetlbfs 2 MiB page costs the device one fault: a copy between two
 * of them takes 2 faults and 2 huge drop-ins. */
TEST(hugetlb_one_fault_per_page)
{
	long long nr = read_ll(NR_HUGEPAGES), huge0;
	unsigned char *src, *dst;
	struct raw_ctx c;
	uint64_t f0;
	char val[32];

	if (nr < 0)
		SKIP("kernel without hugetlbfs");
	snprintf(val, sizeof(val), "%lld", nr + 2);
	write_sysfs(NR_HUGEPAGES, val);
	if (read_ll(NR_HUGEPAGES) < nr + 2)
		SKIP("cannot reserve two 2 MiB pages");
	src = mmap(NULL, HPAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
		   -1, 0);
	dst = mmap(NULL, HPAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
		   -1, 0);
	CHECK(src != MAP_FAILED && dst != MAP_FAILED);
	fill(src, HPAGE, 39);
	memset(dst, 0, HPAGE);
	c = raw_open();
	huge0 = fdinfo_value(c.fd, "huge_dropins");
	f0 = raw_faults(&c);
	raw_copy_ok(&c, dst, src, HPAGE);
	printf("# hugetlb copy: %llu faults\n",
	       (unsigned long long)(raw_faults(&c) - f0));
	if (huge0 >= 0) {
		CHECK_EQ(raw_faults(&c) - f0, 2);
		CHECK_EQ(fdinfo_value(c.fd, "huge_dropins") - huge0, 2);
	}
	raw_close(&c);
	munmap(src, HPAGE);
	munmap(dst, HPAGE);
	snprintf(val, sizeof(val), "%lld", nr);
	write_sysfs(NR_HUGEPAGES, val);
	if (huge0 < 0)
		SKIP("driver without 2 MiB drop-ins: data checked, counts not");
}

/* ---- userfaultfd ----------------------------------------------------------- */

/* A userfaultfd for MISSING faults of @len bytes at @addr; -1 if none. */
static int uffd_register(void *addr, size_t len)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	int uffd = syscall(SYS_userfaultfd, O_CLOEXEC);

	if (uffd < 0)
		return -1;
	CHECK_EQ(ioctl(uffd, UFFDIO_API, &api), 0);
	CHECK_EQ(ioctl(uffd, UFFDIO_REGISTER, &reg), 0);
	return uffd;
}

/* The next missing-page fault's address, or 0 after @ms without one. */
static uint64_t uffd_next_fault(int uffd, int ms)
{
	struct pollfd p = { .fd = uffd, .events = POLLIN };
	struct uffd_msg m;

	if (poll(&p, 1, ms) != 1)
		return 0;
	CHECK_EQ(read(uffd, &m, sizeof(m)), (ssize_t)sizeof(m));
	CHECK_EQ(m.event, UFFD_EVENT_PAGEFAULT);
	return m.arg.pagefault.address;
}

static void uffd_answer(int uffd, uint64_t addr, const void *data)
{
	struct uffdio_copy cp = {
		.dst = addr & ~(PAGE - 1), .src = (uintptr_t)data, .len = PAGE,
	};

	CHECK_EQ(ioctl(uffd, UFFDIO_COPY, &cp), 0);
	CHECK_EQ(cp.copy, PAGE);
}

/* One byte from @fd within @ms, or 0. */
static char read_byte(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c = 0;

	if (poll(&p, 1, ms) == 1 && read(fd, &c, 1) != 1)
		c = 0;
	return c;
}

#define UFFD_PAGES 4

struct uffd_handler {
	int uffd;
	unsigned char *base, *data;	/* registered range; its contents */
	uint64_t seen[UFFD_PAGES];	/* fault addresses, in order */
	unsigned int n;
};

static void *uffd_answer_all(void *arg)
{
	struct uffd_handler *h = arg;

	while (h->n < UFFD_PAGES) {
		uint64_t addr = uffd_next_fault(h->uffd, 20000);

		if (!addr)
			break;
		h->seen[h->n++] = addr;
		uffd_answer(h->uffd, addr,
			    h->data + ((addr - (uintptr_t)h->base) & ~(PAGE - 1)));
	}
	return NULL;
}

static bool no_uffd_wait(int ret, unsigned int seen)
{
	return ret == -EFAULT && !seen;
}

#define NO_UFFD_WAIT "driver cannot wait for a userfaultfd handler " \
	"(before issue 13's killable fault-in)"

/* A MISSING-registered range the device reads is resolved by the
 * process's handler thread (UFFDIO_COPY) while the device waits: the
 * handler sees the device's addresses, page by page, and the data is
 * exact. */
TEST(uffd_missing_resolved_by_handler)
{
	const size_t len = UFFD_PAGES * PAGE;
	struct uffd_handler h = {
		.base = map_aligned(len, 16 * PAGE), .data = map_anon(len, RW),
	};
	unsigned char *dst = map_anon(len, RW);
	struct vgru *v = open_ctx();
	pthread_t t;
	int ret;

	h.uffd = uffd_register(h.base, len);
	if (h.uffd < 0)
		SKIP("no userfaultfd");
	fill(h.data, len, 40);
	memset(dst, 0xee, len);
	CHECK_EQ(pthread_create(&t, NULL, uffd_answer_all, &h), 0);
	ret = vgru_copy(v, dst, h.base, len);
	if (no_uffd_wait(ret, h.n))
		SKIP(NO_UFFD_WAIT);
	CHECK_EQ(ret, 0);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(h.n, UFFD_PAGES);
	for (unsigned int i = 0; i < UFFD_PAGES; i++)
		CHECK_EQ(h.seen[i], (uintptr_t)h.base + i * PAGE);
	CHECK(memcmp(dst, h.data, len) == 0);
	CHECK(memcmp(h.base, h.data, len) == 0);
	CHECK_EQ(stats(v).fault_errors, 0);
	vgru_close(v);
}

struct stuck_args {
	int uffd, pipe;
};

/* Report the fault to the parent, never answer it. */
static void *uffd_report_only(void *arg)
{
	struct stuck_args *a = arg;

	if (uffd_next_fault(a->uffd, 20000))
		CHECK_EQ(write(a->pipe, "f", 1), 1);
	pause();
	return NULL;
}

/*
 * A child whose device copy (or PREFAULT) waits on a uffd page its
 * handler never answers is SIGKILLed: it dies within 10 s, the kernel log
 * stays clean (tests/vm checks), and its context is freed.
 */
static void uffd_unanswered_sigkill(bool prefault)
{
	int p[2], status = 0;
	double t;
	pid_t pid;
	char c;

	CHECK_EQ(pipe(p), 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		unsigned char *base = map_aligned(PAGE, 16 * PAGE);
		unsigned char *dst = map_anon(PAGE, RW);
		struct stuck_args a = { .uffd = uffd_register(base, PAGE),
					.pipe = p[1] };
		struct vgru *v = open_ctx();
		pthread_t th;
		int ret;

		if (a.uffd < 0) {
			CHECK_EQ(write(p[1], "n", 1), 1);
			_exit(0);
		}
		CHECK_EQ(pthread_create(&th, NULL, uffd_report_only, &a), 0);
		ret = prefault ? vgru_prefault(v, base, PAGE, 0) :
				 vgru_copy(v, dst, base, PAGE);
		CHECK_EQ(write(p[1], ret == -EFAULT ? "e" : "r", 1), 1);
		pause();
	}
	c = read_byte(p[0], 20000);
	if (c == 'n' || c == 'e') {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		SKIP(c == 'n' ? "no userfaultfd" : NO_UFFD_WAIT);
	}
	CHECK_EQ(c, 'f');		/* the handler holds the page */
	usleep(200 * 1000);
	CHECK_EQ(read_byte(p[0], 0), 0);	/* the command still waits */
	CHECK_EQ(kill(pid, SIGKILL), 0);
	t = wall_seconds();
	while (waitpid(pid, &status, WNOHANG) == 0 && wall_seconds() - t < 10)
		usleep(10 * 1000);
	printf("# died %.3f s after SIGKILL\n", wall_seconds() - t);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(p[0]);
	close(p[1]);
	check_all_contexts_free();
}

TEST(uffd_unanswered_copy_sigkill)
{
	uffd_unanswered_sigkill(false);
}

TEST(uffd_unanswered_prefault_sigkill)
{
	uffd_unanswered_sigkill(true);
}

struct held_args {
	int uffd, to_parent, from_parent;
	unsigned char *data;
};

/* Report the fault, answer it when the parent says so. */
static void *uffd_answer_later(void *arg)
{
	struct held_args *a = arg;
	uint64_t addr = uffd_next_fault(a->uffd, 20000);
	char c;

	if (!addr)
		return NULL;
	CHECK_EQ(write(a->to_parent, "f", 1), 1);
	CHECK_EQ(read(a->from_parent, &c, 1), 1);
	uffd_answer(a->uffd, addr, a->data);
	return NULL;
}

/*
 * A slow context does not stall another: process A's device copy waits
 * on a uffd page its handler holds back; meanwhile this process (B, its
 * own context) runs cold copies to completion while A's command is still
 * unfinished; then A's handler answers and A completes with exact data.
 */
TEST(slow_context_does_not_stall_another)
{
	const size_t len = 64 * PAGE;
	int up[2], down[2], status;
	struct vgru *v;
	pid_t pid;
	char c;

	CHECK_EQ(pipe(up), 0);
	CHECK_EQ(pipe(down), 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct held_args a = {
			.to_parent = up[1], .from_parent = down[0],
			.data = map_anon(PAGE, RW),
		};
		unsigned char *base = map_aligned(PAGE, 16 * PAGE);
		unsigned char *dst = map_anon(PAGE, RW);
		struct vgru *va = open_ctx();
		pthread_t th;
		int ret;

		a.uffd = uffd_register(base, PAGE);
		if (a.uffd < 0) {
			CHECK_EQ(write(up[1], "n", 1), 1);
			_exit(0);
		}
		fill(a.data, PAGE, 41);
		CHECK_EQ(pthread_create(&th, NULL, uffd_answer_later, &a), 0);
		ret = vgru_copy(va, dst, base, PAGE);
		c = ret == -EFAULT ? 'e' : ret ? 'x' :
		    memcmp(dst, a.data, PAGE) ? 'b' : 'd';
		CHECK_EQ(write(up[1], &c, 1), 1);
		_exit(0);
	}
	c = read_byte(up[0], 20000);
	if (c == 'n' || c == 'e') {
		waitpid(pid, &status, 0);
		SKIP(c == 'n' ? "no userfaultfd" : NO_UFFD_WAIT);
	}
	CHECK_EQ(c, 'f');

	v = open_ctx();
	for (int i = 0; i < 8; i++) {
		unsigned char *src = map_anon(len, RW), *dst = map_anon(len, RW);
		struct vgru_desc d;
		int t;

		fill(src, len, 42 + i);
		vgru_prep_copy(&d, dst, src, len);
		t = vgru_submit(v, &d, 0);
		CHECK(t >= 0);
		CHECK_EQ(vgru_wait(v, t, 10000, NULL), 0);
		CHECK(memcmp(dst, src, len) == 0);
		munmap(src, len);
		munmap(dst, len);
	}
	CHECK(stats(v).faults >= 8 * 2 * len / PAGE / VGRU_FAULT_AROUND_MAX);
	CHECK_EQ(read_byte(up[0], 0), 0);	/* A still waits */
	CHECK_EQ(write(down[1], "a", 1), 1);
	CHECK_EQ(read_byte(up[0], 20000), 'd');
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	vgru_close(v);
}

/* ---- retries ------------------------------------------------------------- */

static atomic_bool storm_stop;

/* mprotect flips of a buffer the device never sees */
static void *invalidation_storm(void *arg)
{
	unsigned char *p = arg;

	while (!atomic_load(&storm_stop)) {
		mprotect(p, 16 * PAGE, PROT_READ);
		mprotect(p, 16 * PAGE, RW);
	}
	return NULL;
}

/* A resolution is retried only for an invalidation that overlaps its
 * range: under a storm of mprotect flips of an unrelated buffer of the
 * same process, cold copies take almost no retries.  The kernel itself
 * (compaction, reclaim after earlier cases) may still invalidate a page
 * being resolved, so up to 5% of faults may retry (issue 13's bound);
 * a driver that retries on any invalidation of the mm retries most.  At
 * least four copies, and more until the storm has sent 200 ranges. */
TEST(retries_only_for_overlapping_invalidations)
{
	const size_t len = 1 << 20;
	unsigned char *other = map_anon(16 * PAGE, RW);
	struct vgru *v = open_ctx();
	struct vgru_stats a, b;
	pthread_t t;

	memset(other, 1, 16 * PAGE);
	a = stats(v);
	CHECK_EQ(pthread_create(&t, NULL, invalidation_storm, other), 0);
	for (int i = 0; i < 4 ||
	     (stats(v).invalidations - a.invalidations < 200 && i < 1000);
	     i++) {
		unsigned char *src = map_anon(len, RW), *dst = map_anon(len, RW);

		fill(src, len, 50 + i % 64);
		CHECK_EQ(vgru_copy(v, dst, src, len), 0);
		CHECK(memcmp(dst, src, len) == 0);
		munmap(src, len);
		munmap(dst, len);
	}
	atomic_store(&storm_stop, true);
	CHECK_EQ(pthread_join(t, NULL), 0);
	b = stats(v);
	printf("# %llu invalidations, %llu faults, %llu retries\n",
	       (unsigned long long)(b.invalidations - a.invalidations),
	       (unsigned long long)(b.faults - a.faults),
	       (unsigned long long)(b.retries - a.retries));
	CHECK(b.invalidations - a.invalidations > 100);
	if (b.retries != a.retries &&
	    fdinfo_value(vgru_fd(v), "retries_exhausted") < 0)
		SKIP("driver retries on any invalidation of the mm "
		     "(before issue 13's per-range retries)");
	CHECK((b.retries - a.retries) * 20 <= b.faults - a.faults);
	vgru_close(v);
}

/*
 * A resolution hands the device all its translations and the fault's
 * answer in one translation list (one doorbell): with fault-around 16, a
 * 1 MiB copy takes 32 faults, 32 lists, 512 drop-ins, and the device
 * finds no list malformed.
 */
TEST(translation_lists_one_per_resolution)
{
	const size_t len = 1 << 20, pages = len / PAGE, k = 16;
	unsigned char *src = map_aligned(len, 64 * PAGE);
	unsigned char *dst = map_aligned(len, 64 * PAGE);
	struct raw_ctx c = raw_open();
	struct vgru_ctx_stats a, b;
	uint64_t lists, errors, dropins;

	if (access("/sys/class/vgru/vgru0/stats/device_lists", R_OK))
		SKIP("no stats/device_lists in this driver");
	set_fault_around(c.fd, k);
	fill(src, len, 61);
	memset(dst, 0, len);
	lists = sysfs_stat("device_lists");
	errors = sysfs_stat("device_list_errors");
	dropins = sysfs_stat("device_dropins");
	CHECK_EQ(ioctl(c.fd, VGRU_IOC_STATS, &a), 0);
	raw_copy_ok(&c, dst, src, len);
	CHECK_EQ(ioctl(c.fd, VGRU_IOC_STATS, &b), 0);
	lists = sysfs_stat("device_lists") - lists;
	printf("# %llu faults, %llu lists\n",
	       (unsigned long long)(b.faults - a.faults),
	       (unsigned long long)lists);
	CHECK_EQ(b.faults - a.faults, 2 * pages / k);
	CHECK_EQ(lists, 2 * pages / k);
	CHECK_EQ(sysfs_stat("device_list_errors") - errors, 0);
	CHECK_EQ(sysfs_stat("device_dropins") - dropins, 2 * pages);
	CHECK_EQ(b.dropins - a.dropins, 2 * pages);
	raw_close(&c);
	munmap(src - 64 * PAGE, len + 128 * PAGE);
	munmap(dst - 64 * PAGE, len + 128 * PAGE);
}

/*
 * The device reads a page, then writes it, then reads it again: the
 * writable translation replaces the read-only one (behind an IOMMU a new
 * mapping; the old one goes after that page's invalidation completed),
 * and the last read uses the writable one, without a fault.
 */
TEST(read_then_write_same_page)
{
	unsigned char *a = map_anon(PAGE, RW), *b = map_anon(PAGE, RW);
	unsigned char *c2 = map_anon(PAGE, RW), *d = map_anon(PAGE, RW);
	struct raw_ctx c = raw_open();
	uint64_t f0;

	set_fault_around(c.fd, 1);
	fill(a, PAGE, 71);
	fill(c2, PAGE, 72);
	memset(b, 0, PAGE);
	memset(d, 0, PAGE);
	f0 = raw_faults(&c);
	raw_copy_ok(&c, b, a, PAGE);		/* a read, b written */
	CHECK_EQ(raw_faults(&c) - f0, 2);
	raw_copy_ok(&c, a, c2, PAGE);		/* c read, a now written */
	CHECK_EQ(raw_faults(&c) - f0, 4);
	raw_copy_ok(&c, d, a, PAGE);		/* a read again: held */
	CHECK_EQ(raw_faults(&c) - f0, 5);
	CHECK(memcmp(d, c2, PAGE) == 0);
	raw_close(&c);
}

/*
 * A stream of faults into fresh memory grows its fault-around block as
 * readahead does: with K = 8, a copy of 256 KiB between fresh buffers
 * faults per operand at page 0 (a lone fault: that page), page 1 (a
 * second fault in the block: the stream starts, 8 pages), then at pages
 * 8, 24 and 56 with blocks of 16, 32 and 64, so 5 faults each (before:
 * 9).  The blocks stay at most 64 pages here: at the cap (512 on the
 * default device) a copy's two operands' blocks and the two before them
 * fill every set of the TLB, and another entry (the completion record's)
 * may evict one, so the count would not be exact.  Over CPU-touched pages the block stays K
 * (fault_around_touched_counts_exact).
 */
TEST(fault_around_stream_grows_in_fresh_memory)
{
	const size_t len = 64 * PAGE;
	unsigned char *src = map_aligned(len, len);
	unsigned char *dst = map_aligned(len, len);
	struct raw_ctx c = raw_open();
	uint64_t f0;

	set_fault_around(c.fd, 8);
	f0 = raw_faults(&c);
	raw_copy_ok(&c, dst, src, len);
	for (size_t i = 0; i < len; i++)
		CHECK_EQ(dst[i], 0);
	CHECK_EQ(raw_faults(&c) - f0, 2 * 5);
	raw_close(&c);
}

/*
 * A 16 MiB copy between two fresh buffers in one mapping of their own (the
 * destination right below the source), K = 64: each operand faults on its
 * first page (one page), its second (the block of 64 pages), then once
 * per block of 128, 256 and 512 (the cap: half of what the context can
 * hold, the TLB and two pages per CB, and at most 512; the default
 * device's TLB: 256 sets x 8 ways), so 12 faults each.  No page is
 * resolved twice: drop-ins are the pages, plus each operand's first page
 * again in its first block (the destination's last block stops at the
 * source's present pages, the source's at the end of the mapping); the
 * driver's trimming of its tracking never takes a translation the copy
 * still uses (device inv_entries: one block it has passed); and no zero
 * page is mapped where the other operand then writes (no notifier range:
 * no copy-on-write).  The two blocks of 512 and the two before them take
 * every way of every set, which holds only while each set replaces its
 * entries in the order they went in.  Here the TLB is first filled with
 * live entries (twice its size prefaulted); stream_copy_exact_after_flush
 * starts from a TLB a flush left dead instead.
 */
#define DEFAULT_TLB_ENTRIES	2048

/*
 * The copy of stream_copy_faults_each_page_once, after @fill_pages pages
 * prefaulted (and with @unmap, unmapped again: the device flushes them).
 */
static void stream_copy_exact(size_t fill_pages, bool unmap)
{
	const size_t len = 16UL << 20, pages = len / PAGE;
	const size_t resv_len = 2 * len + (64UL << 20);
	const size_t fill_len = fill_pages * PAGE;
	unsigned char *resv = mmap(NULL, resv_len, PROT_NONE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct vgru_prefault pf = { 0 };
	unsigned char *dst, *src, *fill;
	uint64_t cap = 1, block = 64, want = 2, inv, trimmed = 0;
	struct vgru_ctx_stats a, b;
	struct raw_ctx c = raw_open();
	struct vgru_info info;

	CHECK(resv != MAP_FAILED);
	dst = (unsigned char *)(((uintptr_t)resv + (64UL << 20) - 1) &
				~((64UL << 20) - 1));
	CHECK(mmap(dst, 2 * len, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		   -1, 0) == dst);
	CHECK_EQ(madvise(dst, 2 * len, MADV_NOHUGEPAGE), 0);
	src = dst + len;
	CHECK_EQ(ioctl(c.fd, VGRU_IOC_INFO, &info), 0);
	while (cap * 2 <= (DEFAULT_TLB_ENTRIES + 2 * info.nr_cbs) / 2 &&
	       cap < 512)
		cap *= 2;
	for (size_t done = block; done < pages; done += block) {
		block = 2 * block < cap ? 2 * block : cap;
		want++;
	}
	/*
	 * Past 4 x (the TLB + 2 per CB) recorded pages the driver trims its
	 * record once, keeping each operand's block and the one below it:
	 * that flushes the block before those of the operand being resolved,
	 * which the copy has passed but is still in a TLB of four blocks.
	 */
	if (!unmap && fill_pages + 2 * pages >=
	    4 * (DEFAULT_TLB_ENTRIES + 2 * info.nr_cbs))
		trimmed = cap;
	set_fault_around(c.fd, 64);
	fill = map_anon(fill_len, RW);
	memset(fill, 1, fill_len);
	inv = sysfs_stat("device_inv_entries");
	/*
	 * From here on nothing maps or unmaps (stdio might): a notifier range
	 * over the copy's pages, or a mapping split within 2 MiB of them,
	 * would flush what the device holds there.
	 */
	pf.addr = (uintptr_t)fill;
	pf.len = fill_len;
	CHECK_EQ(ioctl(c.fd, VGRU_IOC_PREFAULT, &pf), 0);
	CHECK_EQ(pf.done, fill_len);
	if (unmap) {
		CHECK_EQ(munmap(fill, fill_len), 0);
		inv = sysfs_stat("device_inv_entries");
	}
	CHECK_EQ(ioctl(c.fd, VGRU_IOC_STATS, &a), 0);
	raw_copy_ok(&c, dst, src, len);
	CHECK_EQ(ioctl(c.fd, VGRU_IOC_STATS, &b), 0);
	printf("# %llu faults, %llu drop-ins (blocks up to %llu pages)\n",
	       (unsigned long long)(b.faults - a.faults),
	       (unsigned long long)(b.dropins - a.dropins),
	       (unsigned long long)cap);
	CHECK_EQ(b.fault_errors, 0);
	CHECK_EQ(b.dropins - a.dropins, 2 * pages + 2);
	CHECK_EQ(sysfs_stat("device_inv_entries") - inv, trimmed);
	CHECK_EQ(b.invalidations - a.invalidations, 0);
	CHECK_EQ(b.retries - a.retries, 0);
	CHECK_EQ(b.faults - a.faults, 2 * want);
	raw_close(&c);
	CHECK_EQ(munmap(resv, resv_len), 0);
	if (!unmap)
		CHECK_EQ(munmap(fill, fill_len), 0);
}

TEST(stream_copy_faults_each_page_once)
{
	stream_copy_exact(2 * DEFAULT_TLB_ENTRIES, false);
}

/*
 * The same copy into a TLB that a flush left dead: 7/4 of its size
 * prefaulted (every set's victim pointer at way 6 of 8), then unmapped.
 * Each set must still replace the copy's entries in the order they went
 * in, its free ways filled first (a device filling them in place evicts
 * a block in use: a model of both says 13 faults then a re-fault at page
 * 961; with 3/2 the pointers sit where it happens not to matter).
 */
TEST(stream_copy_exact_after_flush)
{
	stream_copy_exact(DEFAULT_TLB_ENTRIES * 7 / 4, true);
}

/*
 * A stream faults absent pages in ahead of the access only, and writes in
 * absent pages only.  K = 8, one mapping: the destination's 8 pages from
 * page 4 of a block, the source's right after them, from page 12.  Faults
 * (drop-ins): source 12 (alone: 1); destination 4 (the block below the
 * source's record: 4..7, 4); source 13 (continuing the destination's
 * record: the block from 8 grows to 16 pages, 13..23 are faulted in, the
 * destination's 8..11 below 13 stay absent: 12..23, 12); destination 8
 * (8..11 written in, one pass: 4).  Had the source mapped the zero page at
 * 8..11, the destination would fault on each of them (7 faults); had the
 * destination's write pass gone on past 11, it would have broken the
 * source's zero pages 12..15 by copy-on-write (4 notifier ranges, and 25
 * drop-ins).
 */
TEST(stream_fault_in_stays_ahead_of_the_access)
{
	unsigned char *base = map_aligned(64 * PAGE, 64 * PAGE);
	unsigned char *dst = base + 4 * PAGE, *src = base + 12 * PAGE;
	struct raw_ctx c = raw_open();
	struct vgru_ctx_stats a, b;

	set_fault_around(c.fd, 8);
	CHECK_EQ(ioctl(c.fd, VGRU_IOC_STATS, &a), 0);
	raw_copy_ok(&c, dst, src, 8 * PAGE);
	CHECK_EQ(ioctl(c.fd, VGRU_IOC_STATS, &b), 0);
	CHECK_EQ(b.fault_errors, 0);
	CHECK_EQ(b.faults - a.faults, 4);
	CHECK_EQ(b.dropins - a.dropins, 21);
	CHECK_EQ(b.invalidations - a.invalidations, 0);
	raw_close(&c);
}

#define REGION_ALIGN	(64UL << 20)

/* @len bytes at a REGION_ALIGN boundary, a mapping of their own (PROT_NONE
 * around them, reserved at *@resv: unmap RESV_LEN(len) there). */
#define RESV_LEN(len)	((len) + 2 * REGION_ALIGN)
static unsigned char *map_own_region(size_t len, void **resv)
{
	unsigned char *raw = mmap(NULL, RESV_LEN(len), PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *p;

	CHECK(raw != MAP_FAILED);
	p = (unsigned char *)(((uintptr_t)raw + REGION_ALIGN) &
			      ~(REGION_ALIGN - 1));
	CHECK(mmap(p, len, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		   -1, 0) == p);
	*resv = raw;
	return p;
}

/*
 * Resolutions check their snapshots with long-lived interval notifiers,
 * one per region (64 MiB aligned, clamped to the mapping): a copy between
 * two fresh buffers of their own makes exactly two more regions whatever its
 * number of faults; once those buffers are unmapped, the next copy's
 * regions replace them; a context keeps at most 64 (80 one-page mappings
 * prefaulted: 80 made, 64 kept).
 */
TEST(notifier_regions_kept_and_reaped)
{
	const size_t len = 1 << 20;
	struct vgru *v = open_ctx();
	int fd = vgru_fd(v);
	unsigned char *src, *dst, *pages;
	long long made = fdinfo_value(fd, "regions_created");
	long long had = fdinfo_value(fd, "regions");	/* the library's own */
	struct vgru_stats a;
	void *rs, *rd;

	CHECK(made >= 0);
	for (int i = 0; i < 2; i++) {
		src = map_own_region(len, &rs);
		dst = map_own_region(len, &rd);
		fill(src, len, 80 + i);
		a = stats(v);
		CHECK_EQ(vgru_copy(v, dst, src, len), 0);
		CHECK(memcmp(dst, src, len) == 0);
		CHECK(stats(v).faults - a.faults > 2);
		CHECK_EQ(fdinfo_value(fd, "regions") - had, 2);
		CHECK_EQ(fdinfo_value(fd, "regions_created") - made, 2 * (i + 1));
		munmap(rs, RESV_LEN(len));
		munmap(rd, RESV_LEN(len));
	}

	/* 80 mappings of one page, PROT_NONE between them */
	pages = mmap(NULL, 160 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		     -1, 0);
	CHECK(pages != MAP_FAILED);
	for (int i = 0; i < 80; i++) {
		unsigned char *p = pages + 2 * i * PAGE;

		CHECK(mmap(p, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
			   -1, 0) == p);
		p[0] = 1;
		CHECK_EQ(vgru_prefault(v, p, PAGE, 0), 0);
	}
	/* the two unmapped ones reaped by the first prefault */
	CHECK_EQ(fdinfo_value(fd, "regions_created") - made, 4 + 80);
	CHECK_EQ(fdinfo_value(fd, "regions"), 64);
	munmap(pages, 160 * PAGE);
	vgru_close(v);
}

/* The guide's example (docs/libvgru.md) runs as it stands. */
#include "libvgru-example.c"

TEST(libvgru_example)
{
	CHECK_EQ(libvgru_example(NULL), 0);
}

int main(int argc, char **argv)
{
	return run_tests(argc, argv);
}
