// SPDX-License-Identifier: MIT
/*
 * libvgru: commands go to the command blocks (CBs) of the mapped window;
 * each CB has a completion record in library memory that the device
 * writes when the command ends.  Waiting spins on that record for a
 * short while, then ARMs the CB and sleeps in VGRU_IOC_WAIT until the
 * device's notice.  The window is read at the end of the short spin (a CB
 * in FAULT is worth spinning on: the driver is resolving it), and when a
 * sleep ends without the record (a context stopped, or a record the
 * device could not write).  A waiter with no deadline that finds its CB
 * in FAULT first resolves the fault itself (VGRU_IOC_RESOLVE); blocking
 * calls start with VGRU_DF_CALL_OS, so that a fault at START raises no
 * interrupt and waits for that call alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "libvgru.h"
#include "vgru_ioctl.h"
#include "vgru_regs.h"

/*
 * Spin on a completion record this long before sleeping: a short command
 * ends within it, and a sleep costs two system calls and a notice.
 */
#define VGRU_SPIN_NS		30000
/*
 * Longest spin: while the CB is in FAULT (the driver resolves it and the
 * command restarts), or while the handle's recent commands ended within
 * it.  A sleep's wake-up costs ~100 us (notice interrupt, handler,
 * wake), a device fault ~150 us; a long command pays at most this much CPU.
 */
#define VGRU_SPIN_MAX_NS	1000000
/* weight of a new command in the handle's wait statistics, 1/2^N */
#define VGRU_WAIT_AVG_SHIFT	3
/* fixed-point one of the share of commands that end within the spin */
#define VGRU_SHARE_ONE		1024
/* polls of the record between clock reads while spinning */
#define VGRU_SPIN_BATCH		32
/*
 * VGRU_FAULT_PREFAULT resolves at most this much of an operand at once: a
 * quarter of the default device TLB (256 pages), so the source's and the
 * destination's chunks fit side by side without evicting each other.
 */
#define VGRU_PREFAULT_CHUNK	(256u << 10)
/* NO_BLOCK rounds without progress before a command falls back to faults */
#define VGRU_PREFAULT_STALLS	8
/*
 * Resubmissions without progress of a command whose fault the driver gave
 * up on because invalidations kept overlapping it (ERR_FAULT, EAGAIN)
 */
#define VGRU_BUSY_RESUBMITS	64
/* longest sleep before the window is read to see if the CB still runs */
#define VGRU_SLEEP_CHECK_NS	100000000LL

/* The device's completion record (vgru_regs.h, VGRU_COMP_*). */
struct vgru_comp {
	uint32_t status;	/* written last by the device */
	uint32_t error;
	uint64_t progress;
	uint64_t fault_addr;
	uint64_t result;
};

_Static_assert(sizeof(struct vgru_comp) == VGRU_COMP_SIZE, "record size");
_Static_assert(sizeof(struct vgru_desc) == VGRU_DESC_SIZE, "descriptor size");
_Static_assert(VGRU_DESC_COMP == VGRU_DESC_OPCODE + 8 * 5, "descriptor words");

struct vgru {
	int fd;
	unsigned int context;
	unsigned int nr_cbs;
	uint32_t all_cbs;		/* mask of the CBs there are */
	void *window;
	struct vgru_comp *comp;		/* one record per CB */
	size_t comp_size;
	/*
	 * What each CB's descriptor registers hold (START latches them, they
	 * keep their values): a field that has not changed is not written
	 * again, which saves an exit to the device per field.  Only the
	 * CB's current owner touches its row.
	 */
	uint64_t regs[VGRU_WINDOW_SIZE / VGRU_CB_STRIDE][6];
	_Atomic uint32_t regs_known;	/* CBs whose row is valid */
	_Atomic uint32_t busy;		/* CBs taken by a call or a ticket */
	_Atomic uint32_t tickets;	/* of those, held by vgru_submit() */
	_Atomic int policy;
	/*
	 * cb_wait()'s recent history, moving averages: the share of waits
	 * that ended within VGRU_SPIN_MAX_NS (of VGRU_SHARE_ONE), and how
	 * long those took.  Longer ones only count in the share, so a few
	 * outliers (a busy host) do not turn spinning off.
	 */
	_Atomic int64_t quick_share;
	_Atomic int64_t quick_avg_ns;
	/*
	 * -ENODEV once the driver said the device was removed (its window
	 * is unmapped: touching it would raise SIGBUS), -EIO once it said the
	 * device is broken; 0 before.  No command starts after that.
	 */
	_Atomic int dead;
	/* the driver offers VGRU_IOC_RESOLVE (cleared on ENOTTY) */
	_Atomic bool can_resolve;
};

/* what the calling thread's last blocking command did */
static __thread uint64_t last_progress;

/* ---- window and records ------------------------------------------------ */

static volatile uint8_t *cb_base(const struct vgru *v, unsigned int cb)
{
	return (volatile uint8_t *)v->window + cb * VGRU_CB_STRIDE;
}

static void cb_write32(struct vgru *v, unsigned int cb, unsigned int reg,
		       uint32_t val)
{
	*(volatile uint32_t *)(cb_base(v, cb) + reg) = val;
}

static void cb_write64(struct vgru *v, unsigned int cb, unsigned int reg,
		       uint64_t val)
{
	*(volatile uint64_t *)(cb_base(v, cb) + reg) = val;
}

static uint32_t cb_read32(const struct vgru *v, unsigned int cb,
			  unsigned int reg)
{
	return *(volatile uint32_t *)(cb_base(v, cb) + reg);
}

static uint64_t cb_read64(const struct vgru *v, unsigned int cb,
			  unsigned int reg)
{
	return *(volatile uint64_t *)(cb_base(v, cb) + reg);
}

static uint32_t comp_status(const struct vgru *v, unsigned int cb)
{
	/* acquire: the rest of the record was written before the status */
	return __atomic_load_n(&v->comp[cb].status, __ATOMIC_ACQUIRE);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* ---- command blocks ----------------------------------------------------- */

/* Take a free CB; -EBUSY if every one is in use. */
static int cb_get(struct vgru *v)
{
	uint32_t cur = atomic_load(&v->busy), free;

	do {
		free = ~cur & v->all_cbs;
		if (!free)
			return -EBUSY;
	} while (!atomic_compare_exchange_weak(&v->busy, &cur,
					       cur | (free & -free)));
	return __builtin_ctz(free);
}

static void cb_put(struct vgru *v, unsigned int cb)
{
	atomic_fetch_and(&v->busy, ~(1u << cb));
}

/*
 * Take a CB, waiting for one while other calls' commands hold them all.
 * -EBUSY when tickets hold them all: only their owners free those, and
 * the owner may be the caller.
 */
static int cb_get_wait(struct vgru *v)
{
	struct timespec nap = { 0, 10000 };
	unsigned int tries = 0;
	int cb;

	while ((cb = cb_get(v)) < 0) {
		uint32_t busy = atomic_load(&v->busy);

		if ((busy & v->all_cbs) == v->all_cbs &&
		    !(busy & ~atomic_load(&v->tickets)))
			return -EBUSY;
		/* yield first; then short naps, not a core spent yielding */
		if (++tries < 64) {
			sched_yield();
		} else {
			nanosleep(&nap, NULL);
			if (nap.tv_nsec < 1000000)
				nap.tv_nsec *= 2;
		}
	}
	return cb;
}

/*
 * Start @d on @cb with a completion record: the record's status is zeroed
 * first, the descriptor goes in with 64-bit stores, the doorbell last (the
 * window is uncached, so the stores reach the device in program order).
 */
static void cb_start(struct vgru *v, unsigned int cb, const struct vgru_desc *d,
		     uint32_t flags)
{
	const uint64_t val[6] = {
		(d->raw[0] & 0xffffffffu) |
		(uint64_t)(flags | VGRU_DF_COMPLETION) << 32,
		d->raw[1], d->raw[2], d->raw[3], d->raw[4],
		(uintptr_t)&v->comp[cb],
	};
	bool known = atomic_load_explicit(&v->regs_known,
					  memory_order_relaxed) & (1u << cb);

	__atomic_store_n(&v->comp[cb].status, 0, __ATOMIC_RELAXED);
	atomic_thread_fence(memory_order_seq_cst);
	/* the descriptor's 64-bit words, VGRU_DESC_OPCODE to VGRU_DESC_COMP */
	for (unsigned int i = 0; i < 6; i++) {
		if (known && v->regs[cb][i] == val[i])
			continue;
		cb_write64(v, cb, VGRU_DESC_OPCODE + 8 * i, val[i]);
		v->regs[cb][i] = val[i];
	}
	atomic_fetch_or_explicit(&v->regs_known, 1u << cb,
				 memory_order_relaxed);
	cb_write32(v, cb, VGRU_CB_DOORBELL, VGRU_CB_START);
}

static int error_to_errno(uint32_t error)
{
	switch (VGRU_ERR_CLASS(error)) {
	case VGRU_ERR_NONE:
		return 0;
	case VGRU_ERR_OPCODE:
	case VGRU_ERR_RANGE:
	case VGRU_ERR_ALIGN:
		return -EINVAL;
	case VGRU_ERR_DMA:
		return -EIO;
	case VGRU_ERR_FAULT:
		return VGRU_ERR_DETAIL(error) ? -(int)VGRU_ERR_DETAIL(error)
					      : -EFAULT;
	case VGRU_ERR_PAGE_FAULT:
		return -EWOULDBLOCK;
	default:
		return -EIO;
	}
}

/*
 * The errno of a command that ended with @status (VGRU_CB_DONE, _ERROR,
 * or _IDLE: its context was stopped) and device error word @error.
 */
static int result_errno(uint32_t status, uint32_t error)
{
	int ret;

	if (status == VGRU_CB_DONE)
		return 0;
	ret = error_to_errno(error);
	return ret ? ret : -EIO;
}

/* The result of @cb's ended command, from its record. */
static void comp_result(const struct vgru *v, unsigned int cb,
			uint32_t status, struct vgru_result *res)
{
	const struct vgru_comp *c = &v->comp[cb];

	res->device_error = status == VGRU_CB_DONE ? 0 : c->error;
	res->error = result_errno(status, c->error);
	res->progress = c->progress;
	res->fault_addr = c->fault_addr;
	res->value = c->result;
}

/*
 * The record is still empty after a sleep: did the command end without
 * one?  That happens when the record's DMA failed (the window says
 * ERROR/ERR_DMA) or the context was stopped (IDLE).  Returns 1 with @res
 * filled if so.
 */
static int cb_ended_without_record(struct vgru *v, unsigned int cb,
				   struct vgru_result *res)
{
	uint32_t st = cb_read32(v, cb, VGRU_CB_STATUS), s;

	if (st == VGRU_CB_ACTIVE || st == VGRU_CB_FAULT)
		return 0;
	/* the window changes only after the record is written */
	s = comp_status(v, cb);
	if (s) {
		comp_result(v, cb, s, res);
		return 1;
	}
	memset(res, 0, sizeof(*res));
	res->device_error = cb_read32(v, cb, VGRU_CB_ERROR_CODE);
	res->progress = cb_read64(v, cb, VGRU_CB_PROGRESS);
	res->fault_addr = cb_read64(v, cb, VGRU_CB_FAULT_ADDR);
	res->value = cb_read64(v, cb, VGRU_CB_RESULT);
	res->error = result_errno(st, res->device_error);
	return 1;
}

/*
 * If @cb waits for a device fault, answer it from this thread (SGI GRU's
 * "call OS"): the page is faulted in here, as a touch would, with no
 * interrupt or driver thread in between.  True if this call answered one:
 * the restarted command may fault on its next page, so look again.  The
 * driver, not the window, says whether there is a fault: a window read
 * after the device's removal would be SIGBUS, and the driver answers
 * ENODEV instead.
 */
static bool fault_resolve(struct vgru *v, unsigned int cb)
{
	struct vgru_resolve r = { .cb = cb };

	if (ioctl(v->fd, VGRU_IOC_RESOLVE, &r)) {
		if (errno == ENOTTY)
			atomic_store(&v->can_resolve, false);
		return false;
	}
	return r.resolved;
}

static int notice_wait(struct vgru *v, uint64_t *notices, int64_t timeout_ns)
{
	struct vgru_wait w = { .notices = *notices, .timeout_ns = timeout_ns };
	int ret = ioctl(v->fd, VGRU_IOC_WAIT, &w) ? -errno : 0;

	if (!ret || ret == -ETIMEDOUT)
		*notices = w.notices;
	return ret;
}

/* The wait ioctl's answer for a device that runs no command any more. */
static bool dead_error(int ret)
{
	return ret == -ENODEV || ret == -EIO;
}

/* @cb's command will never end: the device is gone or broken (@err). */
static int cb_failed(struct vgru *v, int err, struct vgru_result *res)
{
	atomic_store(&v->dead, err);
	memset(res, 0, sizeof(*res));
	res->error = err;
	return 0;
}

/*
 * How long to spin on @cb's record in all, asked once the short spin is
 * over: on while the driver resolves the command's fault, or while most
 * of the handle's recent commands ended within the longest spin (then
 * twice as long as those took).
 */
static int64_t spin_budget(struct vgru *v, unsigned int cb)
{
	int64_t share = atomic_load_explicit(&v->quick_share,
					     memory_order_relaxed);
	int64_t avg = atomic_load_explicit(&v->quick_avg_ns,
					   memory_order_relaxed);
	uint32_t st = cb_read32(v, cb, VGRU_CB_STATUS);

	/* the command goes on as soon as the driver answers */
	if (st == VGRU_CB_FAULT)
		return VGRU_SPIN_MAX_NS;
	/* ended: the record is written before the window changes */
	if (st == VGRU_CB_DONE || st == VGRU_CB_ERROR)
		return VGRU_SPIN_MAX_NS;
	if (st == VGRU_CB_ACTIVE && share >= VGRU_SHARE_ONE / 2 &&
	    2 * avg > VGRU_SPIN_NS)
		return 2 * avg < VGRU_SPIN_MAX_NS ? 2 * avg : VGRU_SPIN_MAX_NS;
	return VGRU_SPIN_NS;
}

static void moving_avg(_Atomic int64_t *avg, int64_t val)
{
	int64_t a = atomic_load_explicit(avg, memory_order_relaxed);

	a += (val - a) / (1 << VGRU_WAIT_AVG_SHIFT);
	atomic_store_explicit(avg, a, memory_order_relaxed);
}

/* Fold a command's wait, @ns, into the handle's history (races: benign). */
static void wait_learn(struct vgru *v, int64_t ns)
{
	bool quick = ns <= VGRU_SPIN_MAX_NS;

	moving_avg(&v->quick_share, quick ? VGRU_SHARE_ONE : 0);
	if (quick)
		moving_avg(&v->quick_avg_ns, ns);
}

/*
 * Wait until @cb's command ends and fill @res.  @deadline: CLOCK_MONOTONIC
 * ns, or negative for none.  @intr: return -EINTR on a signal (else go on
 * waiting).  Returns 0, -ETIMEDOUT or -EINTR; a removed or broken device
 * ends the command with -ENODEV or -EIO in @res.
 */
static int cb_wait(struct vgru *v, unsigned int cb, int64_t deadline,
		   bool intr, struct vgru_result *res)
{
	int64_t start = now_ns(), t, left, budget = VGRU_SPIN_NS;
	/* no deadline: resolving a fault here may block as a touch would */
	bool look = deadline < 0 && atomic_load_explicit(&v->can_resolve,
							 memory_order_relaxed);
	bool asked = false;
	uint64_t notices = 0;
	uint32_t s;
	int ret;

	/* spin: a short command ends before a sleep would pay off */
	for (t = start;;) {
		for (int i = 0; i < VGRU_SPIN_BATCH; i++) {
			s = comp_status(v, cb);
			if (s)
				goto ended;
			cpu_relax();
		}
		if (look) {
			look = fault_resolve(v, cb);
			continue;
		}
		t = now_ns();
		if (deadline >= 0 && t >= deadline)
			return -ETIMEDOUT;
		if (t - start < budget)
			continue;
		if (asked)
			break;
		asked = true;
		/* the driver before the window: a removed device has none */
		ret = notice_wait(v, &notices, 0);
		if (dead_error(ret))
			return cb_failed(v, ret, res);
		budget = spin_budget(v, cb);
		if (t - start >= budget)
			break;
	}

	/* the count before ARM: a notice after it ends the sleep */
	ret = notice_wait(v, &notices, 0);
	if (dead_error(ret))
		return cb_failed(v, ret, res);
	cb_write32(v, cb, VGRU_CB_DOORBELL, VGRU_CB_ARM);
	for (;;) {
		s = comp_status(v, cb);
		if (s)
			goto ended;
		left = VGRU_SLEEP_CHECK_NS;
		if (deadline >= 0) {
			t = deadline - now_ns();
			if (t <= 0)
				return -ETIMEDOUT;
			if (t < left)
				left = t;
		}
		/* the ARM stays set: a notice of its own ends the next sleep */
		ret = notice_wait(v, &notices, left);
		s = comp_status(v, cb);
		if (s)
			goto ended;
		/* removed or broken: never read the window again */
		if (dead_error(ret))
			return cb_failed(v, ret, res);
		if (ret == -EINTR && intr)
			return -EINTR;
		/* woken by another CB's notice, or no notice came at all */
		if (cb_ended_without_record(v, cb, res)) {
			wait_learn(v, now_ns() - start);
			return 0;
		}
	}
ended:
	wait_learn(v, now_ns() - start);
	comp_result(v, cb, s, res);
	return 0;
}

/* ---- open, close, counters ---------------------------------------------- */

int vgru_open(const char *path, struct vgru **out)
{
	struct vgru_prefault pf = { 0 };
	struct vgru_info info;
	struct vgru *v;
	int ret;

	if (!out)
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->fd = open(path ? path : VGRU_DEFAULT_DEVICE, O_RDWR | O_CLOEXEC);
	if (v->fd < 0) {
		ret = -errno;
		goto err_free;
	}
	if (ioctl(v->fd, VGRU_IOC_INFO, &info) < 0) {
		ret = -errno;
		goto err_close;
	}
	if (info.api_version != VGRU_API_VERSION ||
	    info.window_size != VGRU_WINDOW_SIZE || !info.nr_cbs ||
	    info.nr_cbs > VGRU_WINDOW_SIZE / VGRU_CB_STRIDE) {
		ret = -EPROTO;
		goto err_close;
	}
	v->nr_cbs = info.nr_cbs;
	atomic_store(&v->can_resolve, info.features & VGRU_FEATURE_CALL_OS);
	v->all_cbs = info.nr_cbs == 32 ? ~0u : (1u << info.nr_cbs) - 1;
	v->context = info.context;
	v->window = mmap(NULL, VGRU_WINDOW_SIZE, PROT_READ | PROT_WRITE,
			 MAP_SHARED, v->fd, 0);
	if (v->window == MAP_FAILED) {
		ret = -errno;
		goto err_close;
	}

	/*
	 * The records: one page-aligned allocation the device writes.  Kept
	 * out of a child after fork(), so that fork never write-protects it
	 * (which would flush it from the device); resolved now, so that the
	 * first commands do not fault on it.
	 */
	v->comp_size = (v->nr_cbs * sizeof(struct vgru_comp) + 4095) & ~4095ul;
	v->comp = mmap(NULL, v->comp_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (v->comp == MAP_FAILED) {
		ret = -errno;
		goto err_unmap;
	}
	madvise(v->comp, v->comp_size, MADV_DONTFORK);
	memset(v->comp, 0, v->comp_size);
	pf.addr = (uintptr_t)v->comp;
	pf.len = v->comp_size;
	pf.flags = VGRU_PREFAULT_WRITE;
	/*
	 * Best effort (a device fault would do the same), but a device
	 * removed or broken meanwhile fails the open: its window is gone.
	 */
	if (ioctl(v->fd, VGRU_IOC_PREFAULT, &pf) && dead_error(-errno)) {
		ret = -errno;
		goto err_unmap;
	}
	*out = v;
	return 0;

err_unmap:
	munmap(v->window, VGRU_WINDOW_SIZE);
err_close:
	close(v->fd);
err_free:
	free(v);
	return ret;
}

void vgru_close(struct vgru *v)
{
	if (!v)
		return;
	/* the context stops when its file goes: then the records may go */
	munmap(v->window, VGRU_WINDOW_SIZE);
	close(v->fd);
	munmap(v->comp, v->comp_size);
	free(v);
}

int vgru_stats(struct vgru *v, struct vgru_stats *stats)
{
	struct vgru_ctx_stats st;

	if (!v || !stats)
		return -EINVAL;
	if (ioctl(v->fd, VGRU_IOC_STATS, &st) < 0)
		return -errno;
	memset(stats, 0, sizeof(*stats));
	stats->faults = st.faults;
	stats->fault_errors = st.fault_errors;
	stats->dropins = st.dropins;
	stats->retries = st.retries;
	stats->invalidations = st.invalidations;
	stats->notices = st.notices;
	stats->prefaults = st.prefaults;
	stats->device_invalidations = st.device_invalidations;
	return 0;
}

unsigned int vgru_context(const struct vgru *v)
{
	return v ? v->context : 0;
}

int vgru_fd(const struct vgru *v)
{
	return v ? v->fd : -EINVAL;
}

uint64_t vgru_last_progress(const struct vgru *v)
{
	(void)v;
	return last_progress;
}

static int fault_around_ioctl(struct vgru *v, unsigned int pages)
{
	struct vgru_fault_around fa = { .pages = pages };

	if (!v)
		return -EINVAL;
	if (ioctl(v->fd, VGRU_IOC_FAULT_AROUND, &fa) < 0)
		return -errno;
	return (int)fa.pages;
}

int vgru_set_fault_around(struct vgru *v, unsigned int pages)
{
	/* 0 would only query: not a setting */
	if (!pages || pages > VGRU_FAULT_AROUND_MAX || (pages & (pages - 1)))
		return -EINVAL;
	return fault_around_ioctl(v, pages);
}

int vgru_get_fault_around(struct vgru *v)
{
	return fault_around_ioctl(v, 0);
}

/* ---- descriptors ---------------------------------------------------------- */

static void prep(struct vgru_desc *d, uint32_t op, uint64_t src, uint64_t dst,
		 uint64_t len, uint64_t arg)
{
	memset(d, 0, sizeof(*d));
	d->raw[0] = op;
	d->raw[1] = src;
	d->raw[2] = dst;
	d->raw[3] = len;
	d->raw[4] = arg;
}

void vgru_prep_nop(struct vgru_desc *d)
{
	prep(d, VGRU_OP_NOP, 0, 0, 0, 0);
}

void vgru_prep_copy(struct vgru_desc *d, void *dst, const void *src,
		    size_t len)
{
	prep(d, VGRU_OP_COPY, (uintptr_t)src, (uintptr_t)dst, len, 0);
}

void vgru_prep_fill(struct vgru_desc *d, void *dst, uint64_t pattern,
		    size_t len)
{
	prep(d, VGRU_OP_FILL, pattern, (uintptr_t)dst, len, 0);
}

void vgru_prep_fetch_add(struct vgru_desc *d, uint64_t *addr, uint64_t val)
{
	prep(d, VGRU_OP_FETCH_ADD, val, (uintptr_t)addr, 0, 0);
}

void vgru_prep_swap(struct vgru_desc *d, uint64_t *addr, uint64_t val)
{
	prep(d, VGRU_OP_SWAP, val, (uintptr_t)addr, 0, 0);
}

void vgru_prep_cas(struct vgru_desc *d, uint64_t *addr, uint64_t expected,
		   uint64_t desired)
{
	prep(d, VGRU_OP_CAS, desired, (uintptr_t)addr, 0, expected);
}

void vgru_prep_fence(struct vgru_desc *d)
{
	prep(d, VGRU_OP_FENCE, 0, 0, 0, 0);
}

static bool is_atomic(uint32_t op)
{
	return op == VGRU_OP_FETCH_ADD || op == VGRU_OP_SWAP ||
	       op == VGRU_OP_CAS;
}

/* Misuse the device would also refuse, caught before it is touched. */
static int desc_check(const struct vgru_desc *d)
{
	if (is_atomic((uint32_t)d->raw[0]) && (d->raw[2] & 7))
		return -EINVAL;
	return 0;
}

/* ---- blocking commands ---------------------------------------------------- */

/* Run @d on a CB of its own and wait for it, signals or not. */
static int run(struct vgru *v, const struct vgru_desc *d, uint32_t flags,
	       struct vgru_result *res)
{
	int cb = atomic_load(&v->dead);

	if (!cb)
		cb = cb_get_wait(v);
	if (cb < 0) {
		memset(res, 0, sizeof(*res));
		res->error = cb;
		return cb;
	}
	/* a fault within START is ours to resolve: no interrupt for it */
	if (atomic_load_explicit(&v->can_resolve, memory_order_relaxed))
		flags |= VGRU_DF_CALL_OS;
	cb_start(v, cb, d, flags);
	cb_wait(v, cb, -1, false, res);
	cb_put(v, cb);
	return res->error;
}

static int prefault_range(struct vgru *v, uint64_t addr, uint64_t len,
			  int write, uint64_t *done)
{
	struct vgru_prefault pf = {
		.addr = addr,
		.len = len,
		.flags = write ? VGRU_PREFAULT_WRITE : 0,
	};
	int ret;

	ret = ioctl(v->fd, VGRU_IOC_PREFAULT, &pf) ? -errno : 0;
	*done = pf.done;
	return ret;
}

/*
 * Resolve the operand page a NO_BLOCK command missed and what follows it
 * (at most VGRU_PREFAULT_CHUNK, to the end of the operand).  Returns 0, or
 * the error of the missed page itself, which is the command's error.
 */
static int prefault_miss(struct vgru *v, const struct vgru_desc *d,
			 const struct vgru_result *res)
{
	uint32_t op = (uint32_t)d->raw[0];
	uint64_t fa = res->fault_addr, base, end, len, done;
	int write, ret;

	if (op == VGRU_OP_COPY && fa >= d->raw[1] && fa - d->raw[1] < d->raw[3]) {
		base = d->raw[1];
		write = 0;
	} else {
		base = d->raw[2];
		write = 1;
	}
	end = is_atomic(op) ? base + 8 : base + d->raw[3];
	if (fa < base || fa >= end)	/* not an operand: a device's fault */
		end = fa + 1;
	len = end - fa < VGRU_PREFAULT_CHUNK ? end - fa : VGRU_PREFAULT_CHUNK;
	do
		ret = prefault_range(v, fa, len, write, &done);
	while (ret == -EINTR && !done);
	if (ret && !done)
		return ret;
	/*
	 * The chunk may have evicted the completion records' page from its
	 * TLB set; put it back too, or the next record write would fault.
	 */
	prefault_range(v, (uintptr_t)v->comp, VGRU_COMP_SIZE, 1, &done);
	return 0;
}

/* Byte i of the result is byte (i + @skip) % 8 of @pattern. */
static uint64_t pattern_from(uint64_t pattern, uint64_t skip)
{
	unsigned int sh = (skip % 8) * 8;

	return sh ? pattern >> sh | pattern << (64 - sh) : pattern;
}

/*
 * Whether the driver gave up on the command's fault because invalidations
 * kept overlapping its resolution: the command may simply run again.
 */
static bool driver_gave_up(const struct vgru_result *res)
{
	return VGRU_ERR_CLASS(res->device_error) == VGRU_ERR_FAULT &&
	       VGRU_ERR_DETAIL(res->device_error) == EAGAIN;
}

/*
 * Run a blocking command under the handle's fault policy.  With
 * VGRU_FAULT_PREFAULT, a miss ends the command at once; the missed operand
 * is prefaulted and the rest of the command resubmitted.  Under either
 * policy, the rest of a command whose fault the driver gave up on is
 * resubmitted, a bounded number of times in a row without progress.
 */
static int run_policy(struct vgru *v, const struct vgru_desc *d,
		      struct vgru_result *res)
{
	bool prefault = atomic_load(&v->policy) == VGRU_FAULT_PREFAULT;
	struct vgru_desc rest = *d;
	uint32_t op = (uint32_t)d->raw[0];
	uint64_t done = 0, round;
	int stalls = 0, busy = 0, ret;

	for (;;) {
		bool no_block = prefault && stalls < VGRU_PREFAULT_STALLS;

		ret = run(v, &rest, no_block ? VGRU_DF_NO_BLOCK : 0, res);
		round = res->progress;
		if (op == VGRU_OP_COPY || op == VGRU_OP_FILL) {
			done += round;
			res->progress = done;
		}
		if (ret && driver_gave_up(res)) {
			busy = round ? 0 : busy + 1;
			if (busy > VGRU_BUSY_RESUBMITS)
				return ret;
		} else if (ret != -EWOULDBLOCK || !no_block) {
			return ret;
		} else {
			stalls = round && !is_atomic(op) ? 0 : stalls + 1;
			ret = prefault_miss(v, &rest, res);
			if (ret) {
				res->error = ret;
				return ret;
			}
		}
		if (op == VGRU_OP_COPY)
			rest.raw[1] = d->raw[1] + done;
		if (op == VGRU_OP_FILL)
			rest.raw[1] = pattern_from(d->raw[1], done);
		if (op == VGRU_OP_COPY || op == VGRU_OP_FILL) {
			rest.raw[2] = d->raw[2] + done;
			rest.raw[3] = d->raw[3] - done;
		}
	}
}

static int run_blocking(struct vgru *v, const struct vgru_desc *d,
			uint64_t *old)
{
	struct vgru_result res;
	int ret;

	if (!v)
		return -EINVAL;
	ret = desc_check(d);
	if (ret)
		return ret;
	ret = run_policy(v, d, &res);
	last_progress = res.progress;
	if (!ret && old)
		*old = res.value;
	return ret;
}

int vgru_copy(struct vgru *v, void *dst, const void *src, size_t len)
{
	struct vgru_desc d;

	vgru_prep_copy(&d, dst, src, len);
	return run_blocking(v, &d, NULL);
}

int vgru_fill(struct vgru *v, void *dst, uint64_t pattern, size_t len)
{
	struct vgru_desc d;

	vgru_prep_fill(&d, dst, pattern, len);
	return run_blocking(v, &d, NULL);
}

int vgru_fetch_add(struct vgru *v, uint64_t *addr, uint64_t val,
		   uint64_t *old)
{
	struct vgru_desc d;

	vgru_prep_fetch_add(&d, addr, val);
	return run_blocking(v, &d, old);
}

int vgru_swap(struct vgru *v, uint64_t *addr, uint64_t val, uint64_t *old)
{
	struct vgru_desc d;

	vgru_prep_swap(&d, addr, val);
	return run_blocking(v, &d, old);
}

int vgru_cas(struct vgru *v, uint64_t *addr, uint64_t expected,
	     uint64_t desired, uint64_t *old)
{
	struct vgru_desc d;

	vgru_prep_cas(&d, addr, expected, desired);
	return run_blocking(v, &d, old);
}

int vgru_set_fault_policy(struct vgru *v, enum vgru_fault_policy policy)
{
	if (!v || (policy != VGRU_FAULT_DEVICE &&
		   policy != VGRU_FAULT_PREFAULT))
		return -EINVAL;
	atomic_store(&v->policy, policy);
	return 0;
}

int vgru_prefault(struct vgru *v, const void *addr, size_t len, int write)
{
	uint64_t done;

	if (!v)
		return -EINVAL;
	return prefault_range(v, (uintptr_t)addr, len, write, &done);
}

/* ---- asynchronous commands ------------------------------------------------ */

static int submit(struct vgru *v, const struct vgru_desc *d,
		  unsigned int flags)
{
	int cb;

	if (!v || !d || (flags & ~VGRU_SUBMIT_NO_BLOCK))
		return -EINVAL;
	cb = desc_check(d);
	if (!cb)
		cb = atomic_load(&v->dead);
	if (cb)
		return cb;
	cb = cb_get(v);
	if (cb < 0)
		return cb;
	atomic_fetch_or(&v->tickets, 1u << cb);
	cb_start(v, cb, d, flags & VGRU_SUBMIT_NO_BLOCK ? VGRU_DF_NO_BLOCK : 0);
	return cb;
}

int vgru_submit(struct vgru *v, const struct vgru_desc *d, unsigned int flags)
{
	return submit(v, d, flags);
}

int vgru_submit_batch(struct vgru *v, const struct vgru_desc *list,
		      unsigned int n, unsigned int flags)
{
	struct vgru_desc d;

	if (!list || (uintptr_t)list % VGRU_DESC_SIZE || !n ||
	    n > VGRU_BATCH_MAX)
		return -EINVAL;
	prep(&d, VGRU_OP_BATCH, (uintptr_t)list, 0, n, 0);
	return submit(v, &d, flags);
}

static bool ticket_ok(const struct vgru *v, int t)
{
	return v && t >= 0 && (unsigned int)t < v->nr_cbs &&
	       (atomic_load(&v->tickets) & (1u << t));
}

/* A ticket's command ended: hand its result over and free its CB. */
static int ticket_done(struct vgru *v, int t, struct vgru_result *src,
		       struct vgru_result *res)
{
	if (res)
		*res = *src;
	atomic_fetch_and(&v->tickets, ~(1u << t));
	cb_put(v, t);
	return src->error;
}

int vgru_wait(struct vgru *v, int t, int timeout_ms, struct vgru_result *res)
{
	struct vgru_result r;
	int ret;

	if (!ticket_ok(v, t))
		return -EINVAL;
	ret = cb_wait(v, t, timeout_ms < 0 ? -1 :
		      now_ns() + (int64_t)timeout_ms * 1000000, true, &r);
	if (ret)
		return ret;
	return ticket_done(v, t, &r, res);
}

int vgru_test(struct vgru *v, int t, struct vgru_result *res)
{
	struct vgru_result r;
	uint32_t s;

	if (!ticket_ok(v, t))
		return -EINVAL;
	s = comp_status(v, t);
	if (s)
		comp_result(v, t, s, &r);
	else if (atomic_load(&v->dead))
		cb_failed(v, atomic_load(&v->dead), &r);
	else if (!cb_ended_without_record(v, t, &r))
		return -EBUSY;
	return ticket_done(v, t, &r, res);
}

/* ---- messages ------------------------------------------------------------- */

const char *vgru_strerror(uint32_t device_error)
{
	uint32_t detail = VGRU_ERR_DETAIL(device_error);

	switch (VGRU_ERR_CLASS(device_error)) {
	case VGRU_ERR_NONE:
		return "no error";
	case VGRU_ERR_OPCODE:
		return "unknown opcode or flags (or a nested batch)";
	case VGRU_ERR_RANGE:
		return "range wraps, copy ranges overlap, or batch too long";
	case VGRU_ERR_DMA:
		return "device DMA failed";
	case VGRU_ERR_FAULT:
		switch (detail) {
		case EFAULT:
			return "fault failed: page not mapped";
		case EPERM:
			return "fault failed: write to a read-only mapping";
		case ESRCH:
			return "fault failed: process exiting";
		case ENOMEM:
			return "fault failed: out of memory";
		default:
			return "fault failed by the driver";
		}
	case VGRU_ERR_ALIGN:
		return "misaligned atomic word, completion record or batch list";
	case VGRU_ERR_PAGE_FAULT:
		if (detail & VGRU_FAULT_PERM)
			return "no-block miss: write to a read-only translation";
		if (detail & VGRU_FAULT_WRITE)
			return "no-block miss on a write";
		return "no-block miss on a read";
	default:
		return "unknown device error";
	}
}
