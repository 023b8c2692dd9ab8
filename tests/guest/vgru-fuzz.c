// SPDX-License-Identifier: MIT
/*
 * vgru-fuzz: a seeded fuzzer for the vgru driver and device, run in the
 * guest by tests/guest/fuzz.
 *
 *   vgru-fuzz [--seed N] [--seconds S] [--threads T] [--device PATH]
 *   vgru-fuzz --check [--device PATH]
 *
 * T threads share a table of open files and window mappings and, at
 * random, open and close files, map, remap and unmap windows, write
 * random command descriptors and ring doorbells, write random values to
 * random window offsets, issue valid and random ioctls, poll and read the
 * file, and change the memory commands point at (unmap, remap, protect,
 * discard) while commands run.  Sometimes a child process tries to use
 * the inherited files.  Operands point into a private arena, or at
 * addresses that must fail (NULL, kernel, non-canonical, the top of the
 * address space, a window): never at the fuzzer's own heap or stack, and
 * guard pages end any range that runs out of the arena, so the device
 * cannot corrupt the fuzzer.  A sentinel thread checks that no page the
 * process gave back is written afterwards.  A thread that touches a window
 * or arena page another thread just unmapped catches the signal and goes
 * on.
 *
 * Exit status 0, or 5 if a given-back page was written (the sentinel), 6
 * if a child mapped the window through an inherited file, other non-zero
 * if the fuzzer itself failed.  Whether the kernel and QEMU survived is
 * judged by the caller (guest console, QEMU's status, --check, the module
 * unloading).
 *
 * --check: after a run, every context of the device can be opened at
 * once (none leaked) and a copy through it is exact.  Status 0 if so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libvgru.h"
#include "vgru_ioctl.h"
#include "vgru_regs.h"

#define PAGE		4096UL
#define ARENA_PAGES	64
#define GUARD_PAGES	16
/* at most 14 contexts held (files + windows), under the default 16 */
#define MAX_FILES	6
#define MAX_WINDOWS	8
#define MAX_THREADS	16

static const char *device = "/dev/vgru0";

/* Shared state; slots are claimed and released under table_lock. */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static int files[MAX_FILES];		/* -1: free */
static volatile uint8_t *windows[MAX_WINDOWS];	/* NULL: free */
static uint8_t *arena;			/* ARENA_PAGES pages, churned */

static atomic_ulong nr_ops, nr_signals, nr_doorbells, nr_ioctls, nr_children;
static atomic_ulong nr_opens, nr_open_errors, nr_maps;
static atomic_int sentinel_failed, child_failed;	/* real failures */
static volatile bool stop;

static __thread sigjmp_buf *fault_jump;

/* Pages that were ever a window: a stale pointer to one may fault. */
#define MAX_WINDOW_PAGES 4096
static uintptr_t window_pages[MAX_WINDOW_PAGES];
static atomic_uint nr_window_pages;

static void window_mapped(void *p)
{
	unsigned int i = atomic_fetch_add(&nr_window_pages, 1);

	if (i < MAX_WINDOW_PAGES)
		window_pages[i] = (uintptr_t)p;
}

static bool windows_hold(uintptr_t a)
{
	unsigned int n = atomic_load(&nr_window_pages);

	if (n >= MAX_WINDOW_PAGES)
		return true;	/* lost track: assume so */
	for (unsigned int i = 0; i < n; i++)
		if (a - window_pages[i] < VGRU_WINDOW_SIZE)
			return true;
	return false;
}

/* xorshift64*: cheap, seedable, per thread */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static uint64_t below(uint64_t *s, uint64_t n)
{
	return n ? next_rand(s) % n : 0;
}

/* Write "@what 0x@val" to stderr; async-signal-safe. */
static void say_hex(const char *what, uint64_t val)
{
	char buf[64];
	size_t n = strlen(what);

	memcpy(buf, what, n);
	buf[n++] = ' ';
	buf[n++] = '0';
	buf[n++] = 'x';
	for (int shift = 60; shift >= 0; shift -= 4)
		buf[n++] = "0123456789abcdef"[(val >> shift) & 0xf];
	buf[n++] = '\n';
	if (write(2, buf, n) < 0)
		_exit(4);
}

/*
 * A SIGSEGV/SIGBUS from a window or arena page another thread took away:
 * back to the thread's loop.  Anything else is a real failure.  The
 * handler runs on its own stack, so even a corrupted stack is reported.
 */
static void on_fault(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;

	(void)uc;
	if (fault_jump && ((a >= (uintptr_t)arena &&
			    a < (uintptr_t)arena + ARENA_PAGES * PAGE) ||
			   windows_hold(a)))
		siglongjmp(*fault_jump, 1);
	say_hex("vgru-fuzz: unexpected fault, signal", sig);
	say_hex("vgru-fuzz: at address", a);
	/* the faulting instruction runs again and dumps core */
	signal(sig, SIG_DFL);
}

/* An open file, if there is one, else -1. */
static int pick_file(uint64_t *s)
{
	unsigned int first = below(s, MAX_FILES);

	for (unsigned int i = 0; i < MAX_FILES; i++)
		if (files[(first + i) % MAX_FILES] >= 0)
			return files[(first + i) % MAX_FILES];
	return -1;
}

/* A mapped window, if there is one, else NULL. */
static volatile uint8_t *pick_window(uint64_t *s)
{
	unsigned int first = below(s, MAX_WINDOWS);

	for (unsigned int i = 0; i < MAX_WINDOWS; i++)
		if (windows[(first + i) % MAX_WINDOWS])
			return windows[(first + i) % MAX_WINDOWS];
	return NULL;
}

/* An operand address: mostly in the arena, else one that must fail. */
static uint64_t pick_addr(uint64_t *s)
{
	uint64_t r = next_rand(s);
	volatile uint8_t *w;

	switch (below(s, 16)) {
	case 0:
		return r & 0xfff;			/* NULL page */
	case 1:
		return 0xffff888000000000ULL + (r & 0xffffff);	/* kernel */
	case 2:
		return 0x0000800000000000ULL + (r & 0xffff);	/* non-canonical */
	case 3:
		return UINT64_MAX - (r & 0x1fff);	/* wraps soon */
	case 4:
		w = windows[below(s, MAX_WINDOWS)];	/* a device window */
		return w ? (uintptr_t)w + (r & 0xfff) : r;
	case 5:
		return r;
	case 6:
	case 7:	/* aligned, as atomics, records and lists want */
		return (uintptr_t)arena + (below(s, ARENA_PAGES * PAGE) & ~63ULL);
	default:
		return (uintptr_t)arena + below(s, ARENA_PAGES * PAGE);
	}
}

static uint64_t pick_len(uint64_t *s)
{
	switch (below(s, 10)) {
	case 0:
		return 0;
	case 1:
		return next_rand(s);
	case 2:
		return ARENA_PAGES * PAGE;
	case 3:
	case 4:
		return 1 + below(s, 64);
	default:
		return 1 + below(s, 3 * PAGE);
	}
}

static void pick_desc(uint64_t *s, uint8_t *d)
{
	uint32_t op = below(s, 12), flags = below(s, 8);

	if (!below(s, 16))
		flags = next_rand(s);
	memcpy(d + VGRU_DESC_OPCODE, &op, 4);
	memcpy(d + VGRU_DESC_FLAGS, &flags, 4);
	for (unsigned int off = VGRU_DESC_SRC; off <= VGRU_DESC_COMP; off += 8) {
		uint64_t v = off == VGRU_DESC_LEN ? pick_len(s) : pick_addr(s);

		if (off == VGRU_DESC_LEN && op == VGRU_OP_BATCH)
			v = below(s, 10) ? 1 + below(s, 8) : next_rand(s);
		memcpy(d + off, &v, 8);
	}
}

/* Write a random descriptor into a CB of @w and start it. */
static void start_command(uint64_t *s, volatile uint8_t *w)
{
	volatile uint8_t *cb = w + below(s, VGRU_WINDOW_SIZE / VGRU_CB_STRIDE) *
				   VGRU_CB_STRIDE;
	uint8_t d[VGRU_DESC_SIZE];
	uint32_t op;

	pick_desc(s, d);
	memcpy(&op, d + VGRU_DESC_OPCODE, 4);
	if (op == VGRU_OP_BATCH) {
		/* a list in the arena, its entries random too */
		uint64_t list = (uintptr_t)arena +
				(below(s, ARENA_PAGES * PAGE / 2) & ~63ULL);
		unsigned int n = 1 + below(s, 8);

		for (unsigned int i = 0; i < n; i++)
			pick_desc(s, (uint8_t *)(uintptr_t)list +
				     i * VGRU_DESC_SIZE);
		memcpy(d + VGRU_DESC_SRC, &list, 8);
	}
	for (unsigned int off = 0; off < 0x30; off += 8)
		*(volatile uint64_t *)(cb + off) = *(uint64_t *)(d + off);
	*(volatile uint32_t *)(cb + VGRU_CB_DOORBELL) =
		below(s, 8) ? VGRU_CB_START : VGRU_CB_ARM;
	atomic_fetch_add(&nr_doorbells, 1);
}

static void do_ioctl(uint64_t *s, int fd)
{
	union {
		struct vgru_info info;
		struct vgru_ctx_stats stats;
		struct vgru_wait wait;
		struct vgru_prefault pf;
		uint8_t raw[256];
	} u;

	memset(&u, 0, sizeof(u));
	atomic_fetch_add(&nr_ioctls, 1);
	switch (below(s, 8)) {
	case 0:
		ioctl(fd, VGRU_IOC_INFO, &u.info);
		break;
	case 1:
		ioctl(fd, VGRU_IOC_STATS, &u.stats);
		break;
	case 2:
		u.wait.notices = below(s, 4);
		u.wait.timeout_ns = below(s, 4) ? (int64_t)below(s, 2000000)
						: -(int64_t)below(s, 3);
		if (u.wait.timeout_ns < 0)
			u.wait.timeout_ns = 1000000;	/* never sleep forever */
		if (!below(s, 8))
			u.wait.reserved[0] = next_rand(s);
		ioctl(fd, VGRU_IOC_WAIT, &u.wait);
		break;
	case 3:
	case 4:
		u.pf.addr = pick_addr(s);
		u.pf.len = pick_len(s);
		u.pf.flags = below(s, 4) ? below(s, 2) : next_rand(s);
		if (!below(s, 8))
			u.pf.reserved[1] = next_rand(s);
		ioctl(fd, VGRU_IOC_PREFAULT, &u.pf);
		break;
	case 5:	/* a bad user pointer */
		ioctl(fd, below(s, 2) ? VGRU_IOC_STATS : VGRU_IOC_PREFAULT,
		      (void *)(uintptr_t)pick_addr(s));
		break;
	default:	/* anything in and around our ioctl space */
		for (unsigned int i = 0; i < sizeof(u.raw); i++)
			u.raw[i] = next_rand(s);
		ioctl(fd, below(s, 2) ?
		      _IOC(below(s, 4), VGRU_IOC_MAGIC, below(s, 16),
			   below(s, sizeof(u.raw))) :
		      (unsigned long)next_rand(s), &u);
	}
}

/* Change arena pages under running commands. */
static void churn_arena(uint64_t *s)
{
	unsigned long first = below(s, ARENA_PAGES);
	unsigned long n = 1 + below(s, ARENA_PAGES - first);
	uint8_t *p = arena + first * PAGE;

	switch (below(s, 6)) {
	case 0:	/* fresh pages (unmap + map) */
		mmap(p, n * PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		break;
	case 1:
		mprotect(p, n * PAGE, PROT_READ);
		break;
	case 2:
		mprotect(p, n * PAGE, PROT_NONE);
		break;
	case 3:
		mprotect(p, n * PAGE, PROT_READ | PROT_WRITE);
		break;
	case 4:
		madvise(p, n * PAGE, MADV_DONTNEED);
		break;
	default:
		madvise(p, n * PAGE, MADV_PAGEOUT);
	}
}

/* A child tries the inherited files: it must reach nothing of ours. */
static void try_child(uint64_t *s)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return;
	if (pid == 0) {
		alarm(5);
		for (int i = 0; i < 32; i++) {
			int fd = pick_file(s);
			void *w;

			if (fd < 0)
				continue;
			w = mmap(NULL, VGRU_WINDOW_SIZE, PROT_READ | PROT_WRITE,
				 MAP_SHARED, fd, 0);
			if (w != MAP_FAILED)
				_exit(2);	/* must be refused */
			do_ioctl(s, fd);
		}
		_exit(0);
	}
	atomic_fetch_add(&nr_children, 1);
	if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 2) {
		fprintf(stderr, "vgru-fuzz: a child mapped its parent's "
			"window through an inherited file\n");
		atomic_store(&child_failed, 1);
		stop = true;
	}
}

static void step(uint64_t *s)
{
	unsigned int slot = below(s, MAX_FILES);
	unsigned int wslot = below(s, MAX_WINDOWS);
	volatile uint8_t *w = pick_window(s);
	int fd = pick_file(s);
	uint64_t dice = below(s, 100);
	struct pollfd pfd;
	uint64_t val;
	void *p;

	if (dice < 6) {
		pthread_mutex_lock(&table_lock);
		if (files[slot] < 0) {
			files[slot] = open(device, below(s, 8) ? O_RDWR :
					   (int)below(s, 4));
			atomic_fetch_add(files[slot] >= 0 ? &nr_opens :
					 &nr_open_errors, 1);
		}
		pthread_mutex_unlock(&table_lock);
	} else if (dice < 9) {
		pthread_mutex_lock(&table_lock);
		if (files[slot] >= 0) {
			close(files[slot]);
			files[slot] = -1;
		}
		pthread_mutex_unlock(&table_lock);
	} else if (dice < 15) {
		if (fd < 0 || windows[wslot])
			return;
		p = mmap(NULL, VGRU_WINDOW_SIZE, PROT_READ | PROT_WRITE,
			 MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			return;
		pthread_mutex_lock(&table_lock);
		if (!windows[wslot]) {
			window_mapped(p);
			windows[wslot] = p;
			p = NULL;
			atomic_fetch_add(&nr_maps, 1);
		}
		pthread_mutex_unlock(&table_lock);
		if (p)
			munmap(p, VGRU_WINDOW_SIZE);
	} else if (dice < 17) {
		/* a mapping the driver must refuse, or at least survive */
		size_t len = below(s, 3) * PAGE + below(s, 2);

		if (fd < 0)
			return;
		p = mmap(NULL, len, below(s, 8), below(s, 2) ? MAP_SHARED :
			 MAP_PRIVATE, fd, below(s, 3) * PAGE);
		if (p != MAP_FAILED)
			munmap(p, len);
	} else if (dice < 21) {
		pthread_mutex_lock(&table_lock);
		w = windows[wslot];
		windows[wslot] = NULL;
		pthread_mutex_unlock(&table_lock);
		if (w && !below(s, 4)) {
			/* move it (the driver may refuse), then drop it */
			p = mremap((void *)w, VGRU_WINDOW_SIZE,
				   VGRU_WINDOW_SIZE, MREMAP_MAYMOVE);
			if (p != MAP_FAILED) {
				window_mapped(p);
				w = p;
			}
		}
		if (w)
			munmap((void *)w, VGRU_WINDOW_SIZE);
	} else if (dice < 60) {
		if (w)
			start_command(s, w);
	} else if (dice < 66) {
		if (w) {
			val = next_rand(s);
			if (below(s, 2))
				*(volatile uint32_t *)(w + (below(s, VGRU_WINDOW_SIZE) & ~3ULL)) = val;
			else
				*(volatile uint64_t *)(w + (below(s, VGRU_WINDOW_SIZE) & ~7ULL)) = val;
		}
	} else if (dice < 69) {
		if (w)
			val = *(volatile uint32_t *)(w + (below(s, VGRU_WINDOW_SIZE) & ~3ULL));
	} else if (dice < 80) {
		if (fd >= 0)
			do_ioctl(s, fd);
	} else if (dice < 83) {
		if (fd >= 0) {
			pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
			poll(&pfd, 1, below(s, 2));
			if (!below(s, 4) && read(fd, &val, below(s, 16)) < 0)
				val = errno;
			if (!below(s, 8) && write(fd, &val, 8) < 0)
				val = errno;
		}
	} else if (dice < 99) {
		churn_arena(s);
	} else {
		try_child(s);
	}
}

/*
 * The sentinel: fresh pages (often the very pages the arena just gave
 * back) filled with a pattern, checked a moment later, given back.  A
 * device write through a translation the driver should have removed lands
 * in one sooner or later.
 */
#define SENTINEL_PAGES	64
static atomic_ulong nr_sentinel_rounds;

static void *sentinel_thread(void *opaque)
{
	(void)opaque;
	while (!stop) {
		uint8_t *p = mmap(NULL, SENTINEL_PAGES * PAGE,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			continue;
		for (unsigned long i = 0; i < SENTINEL_PAGES * PAGE; i++)
			p[i] = (uint8_t)(0x5a ^ (i / PAGE));
		usleep(2000);
		for (unsigned long i = 0; i < SENTINEL_PAGES * PAGE; i++) {
			if (p[i] != (uint8_t)(0x5a ^ (i / PAGE))) {
				fprintf(stderr, "vgru-fuzz: sentinel page %lu "
					"byte %lu is 0x%02x, not 0x%02x: memory "
					"written after it was given back\n",
					i / PAGE, i % PAGE, p[i],
					(uint8_t)(0x5a ^ (i / PAGE)));
				atomic_store(&sentinel_failed, 1);
				stop = true;
				break;
			}
		}
		munmap(p, SENTINEL_PAGES * PAGE);
		atomic_fetch_add(&nr_sentinel_rounds, 1);
	}
	return NULL;
}

struct thread_arg {
	uint64_t seed;
	time_t deadline;
};

static void *fuzz_thread(void *opaque)
{
	struct thread_arg *a = opaque;
	uint64_t s = a->seed;
	static __thread uint8_t altstack[64 * 1024];
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	sigjmp_buf jump;

	sigaltstack(&ss, NULL);
	fault_jump = &jump;
	if (sigsetjmp(jump, 1))
		atomic_fetch_add(&nr_signals, 1);
	while (!stop) {
		for (int i = 0; i < 64; i++)
			step(&s);
		atomic_fetch_add(&nr_ops, 64);
		if (time(NULL) >= a->deadline)
			stop = true;
	}
	fault_jump = NULL;
	return NULL;
}

/* The contexts the device offers, from sysfs. */
static unsigned int device_contexts(void)
{
	const char *name = strrchr(device, '/');
	unsigned int n = 0;
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/vgru/%s/contexts",
		 name ? name + 1 : device);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%u", &n) != 1)
		n = 0;
	fclose(f);
	return n;
}

static int check(void)
{
	unsigned int want = device_contexts(), n = 0;
	struct vgru **v = calloc(want + 1, sizeof(*v));
	uint8_t *buf = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int ret = 1, err;

	if (!want || !v || buf == MAP_FAILED) {
		fprintf(stderr, "vgru-fuzz: no device contexts in sysfs\n");
		return 1;
	}
	/* a context of a process that just exited may take a moment */
	for (int tries = 0; tries < 50 && n < want; tries++) {
		while (n > 0)
			vgru_close(v[--n]);
		while (n < want && vgru_open(device, &v[n]) == 0)
			n++;
		if (n < want)
			usleep(100 * 1000);
	}
	if (n != want) {
		fprintf(stderr, "vgru-fuzz: %u of %u contexts free\n", n, want);
		goto out;
	}
	for (unsigned int i = 0; i < PAGE; i++)
		buf[i] = i * 7 + 3;
	err = vgru_copy(v[want - 1], buf + PAGE, buf, PAGE);
	if (err || memcmp(buf, buf + PAGE, PAGE)) {
		fprintf(stderr, "vgru-fuzz: copy after the run: %s\n",
			err ? strerror(-err) : "data differs");
		goto out;
	}
	printf("vgru-fuzz: all %u contexts free, copy exact\n", want);
	ret = 0;
out:
	while (n > 0)
		vgru_close(v[--n]);
	free(v);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vgru-fuzz [--seed N] [--seconds S] [--threads T] "
		   "[--device PATH]\n"
		   "       vgru-fuzz --check [--device PATH]\n");
}

int main(int argc, char **argv)
{
	struct thread_arg args[MAX_THREADS];
	pthread_t threads[MAX_THREADS + 1];
	unsigned long seconds = 20, nr_threads = 4;
	uint64_t seed = 1;
	bool check_only = false;
	struct sigaction sa = {
		.sa_sigaction = on_fault,
		.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK,
	};

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--check")) {
			check_only = true;
			continue;
		}
		if (i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		if (!strcmp(argv[i], "--seed"))
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--seconds"))
			seconds = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--threads"))
			nr_threads = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--device"))
			device = argv[++i];
		else {
			usage(stderr);
			return 2;
		}
	}
	if (check_only)
		return check();
	if (!nr_threads || nr_threads > MAX_THREADS || !seed) {
		fprintf(stderr, "vgru-fuzz: threads 1..%d, seed not 0\n",
			MAX_THREADS);
		return 2;
	}

	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < MAX_FILES; i++)
		files[i] = -1;
	/*
	 * Inaccessible guard pages on both sides: a long command that starts
	 * in the arena faults there instead of running on into the fuzzer's
	 * own memory (which the device may write, as the process could).
	 */
	arena = mmap(NULL, (ARENA_PAGES + 2 * GUARD_PAGES) * PAGE, PROT_NONE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (arena == MAP_FAILED ||
	    mprotect(arena + GUARD_PAGES * PAGE, ARENA_PAGES * PAGE,
		     PROT_READ | PROT_WRITE)) {
		perror("vgru-fuzz: arena");
		return 1;
	}
	arena += GUARD_PAGES * PAGE;
	for (unsigned long t = 0; t < nr_threads; t++) {
		args[t] = (struct thread_arg){
			.seed = seed * 0x9e3779b97f4a7c15ULL + t + 1,
			.deadline = time(NULL) + seconds,
		};
		if (pthread_create(&threads[t], NULL, fuzz_thread, &args[t])) {
			fprintf(stderr, "vgru-fuzz: cannot start threads\n");
			return 1;
		}
	}
	if (pthread_create(&threads[nr_threads], NULL, sentinel_thread, NULL)) {
		fprintf(stderr, "vgru-fuzz: cannot start threads\n");
		return 1;
	}
	for (unsigned long t = 0; t <= nr_threads; t++)
		pthread_join(threads[t], NULL);

	for (int i = 0; i < MAX_WINDOWS; i++)
		if (windows[i])
			munmap((void *)windows[i], VGRU_WINDOW_SIZE);
	for (int i = 0; i < MAX_FILES; i++)
		if (files[i] >= 0)
			close(files[i]);
	printf("vgru-fuzz: seed %" PRIu64 ", %lu threads, %lu s: %lu steps, "
	       "%lu opens (%lu refused), %lu windows mapped, %lu doorbells, "
	       "%lu ioctls, %lu children, %lu signals caught\n",
	       seed, nr_threads, seconds, atomic_load(&nr_ops),
	       atomic_load(&nr_opens), atomic_load(&nr_open_errors),
	       atomic_load(&nr_maps), atomic_load(&nr_doorbells),
	       atomic_load(&nr_ioctls), atomic_load(&nr_children),
	       atomic_load(&nr_signals));
	printf("vgru-fuzz: %lu sentinel rounds%s\n",
	       atomic_load(&nr_sentinel_rounds),
	       atomic_load(&sentinel_failed) ? ", one FAILED" : ", all intact");
	if (atomic_load(&child_failed))
		return 6;
	return atomic_load(&sentinel_failed) ? 5 : 0;
}
