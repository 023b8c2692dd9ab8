/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vgru driver internals.
 *
 * Files, calls flowing one way (left calls right, never back):
 *   vgru_pci.c   - module init/exit, probe/remove, the event queue and its
 *                  interrupt, sysfs
 *   vgru_ctx.c   - contexts and their file operations, the device table
 *                  (calls back into vgru_pci.c once: VGRU_IOC_RESOLVE
 *                  drains the event queue)
 *   vgru_fault.c - fault resolution, page lookups, what the device holds,
 *                  the interval notifier
 *   vgru_hw.c    - every register sequence: the only code touching them
 *   vgru_debugfs.c - root-only views (latency histogram, held pages),
 *                  read from the side; called by vgru_pci.c only
 *
 * Objects:
 *   struct vgru_dev - one PCI function: registers, event queue, IRQ, the
 *                     char device and the table of open contexts.
 *   struct vgru_ctx - one open file: a device context bound to the opener's
 *                     mm, its window, an interval notifier over that mm
 *                     (and one per region its resolutions check with),
 *                     one pending-fault slot per CB, the work item that
 *                     resolves them, and the count of its completion notices.
 *
 * Fault flow: the hard IRQ handler drains the event queue; a fault record
 * goes into its context's slot for the CB (a CB has at most one fault
 * outstanding) and queues the context's work on vgru_wq.  A context's
 * faults are resolved one at a time (its fault_lock), while other
 * contexts' works run on other workers: a context stuck in a page fault
 * (userfaultfd, swap-in, FUSE) stalls only itself.  A thread waiting for
 * its CB may resolve that CB's fault itself (VGRU_IOC_RESOLVE), draining
 * the event queue first if the interrupt has not been taken yet: then the
 * answer needs neither the interrupt nor a work item.
 *
 * Lifetime: a context holds a reference on its mm (mmgrab) and on its
 * device (vdev->ref).  Its kref is held by the file, by a queued or running
 * fault work, and briefly by the IRQ handler; the last put (possibly in the
 * IRQ handler) queues the teardown on vgru_wq, which drops the device and
 * frees the context after an RCU grace period: the IRQ handler finds
 * contexts in vdev->contexts under rcu_read_lock and takes a reference
 * with kref_get_unless_zero.  A context is ended once (vgru_ctx_end, under
 * ctx->end_lock), by release or by remove, whichever comes first: it is
 * marked dead, DISABLEd and fenced (a context invalidation whose INV_DONE
 * is awaited: no command of it reaches memory after), its DMA mappings
 * and list buffer are released, its notifier is removed and its index
 * freed.  A resolution maps pages for DMA only under end_lock while the
 * context has not ended, so no mapping outlives remove().  Its fault work is not waited for (it may
 * be blocked in a page fault of the very process that is closing us): it
 * answers nothing once the context is dead, and holds its own reference.
 *
 * Removal revokes: remove() takes the device out of the minor table (the
 * minor stays reserved), sets vdev->gone, ends every context and zaps its
 * window mappings (a window is mapped at first touch, under ctx_lock, so
 * none is mapped after; a touch gets SIGBUS), then stops the hardware and
 * drops probe's reference.  It waits for no file: open files are dead
 * handles (ioctls and waits -ENODEV, mmap fails) until closed.  struct
 * vgru_dev is freed, and its minor released, by the last reference.
 *
 * A broken device (an invalidation timed out, or a register read all
 * ones; vdev->stopped) is stopped with bus mastering off; invalidations
 * then return at once (the notifier only forgets what the device held),
 * open, mmap and waits fail with -EIO, and broken_work drops the pending
 * faults and wakes every waiter.  Only a new probe (rebind) clears it.
 *
 * Lock order (outer first):
 *   vgru_devices_lock  -> (nothing: held only to look a device up)
 *   vgru_ctx.fault_lock -> the mm's mmap_lock, vgru_ctx.end_lock
 *   vgru_ctx.end_lock  -> vgru_ctx.lock, vgru_dev.ctx_lock,
 *                         vgru_ctx.region_lock
 *   vgru_ctx.region_lock -> (the mm's notifier locks: insert and remove)
 *   vgru_dev.ctx_lock  -> vgru_dev.reg_lock
 *   vgru_ctx.lock      -> vgru_dev.reg_lock
 *   vgru_ctx.lock      -> vgru_ctx.held's xa_lock
 *   vgru_ctx.lock      -> vgru_dev.fq_lock (VGRU_IOC_RESOLVE's drain)
 *   vgru_dev.fq_lock   -> vgru_ctx.pending_lock (IRQ-safe: the drain)
 *   vgru_ctx.pending_lock: innermost, IRQ-safe, nothing taken under it
 * No allocation and no page-table work happens under vgru_ctx.lock: the
 * notifier takes it from reclaim.  reg_lock is held only to write a
 * register sequence, never while waiting for the device; it is never
 * taken in the IRQ handler (which writes FQ_HEAD alone, as the watchdog
 * does under the same fq_lock).
 */
#ifndef VGRU_H
#define VGRU_H

#include <linux/cdev.h>
#include <linux/kref.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/math64.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/rcupdate.h>
#include <linux/sched/clock.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <linux/wait.h>
#include <linux/xarray.h>

#include "vgru_regs.h"
#include "vgru_ioctl.h"

/* driver-side counters, per device, in sysfs stats/driver_* */
struct vgru_counters {
	atomic64_t faults;
	atomic64_t fault_errors;
	atomic64_t stale_faults;	/* records of contexts already gone */
	atomic64_t notices;		/* completion notices, all contexts */
	atomic64_t retries;
	atomic64_t invalidations;
	atomic64_t lost_irqs;		/* queues the watchdog drained */
};

struct vgru_dev {
	struct pci_dev *pdev;
	void __iomem *regs;
	phys_addr_t window_phys;	/* BAR of the command windows */
	u32 nr_contexts;
	bool call_os;			/* device 2.2: VGRU_DF_CALL_OS */
	bool restart_caller;		/* device 2.3: VGRU_RESP_RESTART_CALLER */
	u32 nr_cbs;
	u32 minor;
	struct cdev *cdev;
	struct device *dev;		/* the class device /dev/vgruN */
	struct kref ref;		/* probe, contexts, opening calls */
	int irq;

	/* event queue (faults, notices), consumed by the IRQ handler only */
	void *fq;
	dma_addr_t fq_dma;
	u32 fq_size;
	u32 fq_head;

	/* pages one context's tracking records before it gives up */
	u32 held_max;
	/* queued when the device is marked broken: fails and wakes contexts */
	struct work_struct broken_work;

	/* ---- reg_lock: multi-register sequences ---- */
	spinlock_t reg_lock;
	u32 inv_seq;			/* invalidations issued */
	bool stopped;			/* broken: timed out, or reads all ones */

	/* ---- ctx_lock: the context table ---- */
	struct mutex ctx_lock;
	struct xarray contexts;		/* context index -> vgru_ctx */
	u32 next_tag;
	bool gone;			/* removed: files are dead handles */

	struct vgru_counters counters;

	/* ---- fq_lock: the event queue drain (IRQ handler or watchdog) ---- */
	spinlock_t fq_lock;
	struct delayed_work watchdog;	/* queued while contexts are open */
	u32 irqs;			/* event interrupts handled */
	u32 wd_irqs, wd_head;		/* irqs and fq_head at the last tick */
	bool wd_pending;		/* records were waiting at the last tick */

	/* ---- debugfs (vgru_debugfs.c) ---- */
	struct dentry *debugfs;		/* vgruN/ */
	/* fault received -> answered: [0] < 1 us, [k] 2^(k-1) .. 2^k us */
#define VGRU_LAT_BUCKETS	32
	atomic64_t lat_hist[VGRU_LAT_BUCKETS];
};

/*
 * The lost-interrupt watchdog's period.  Records left in the queue with
 * no interrupt and no progress over one whole period (so one to two
 * periods after the interrupt was lost) are drained by the watchdog.
 */
#define VGRU_WATCHDOG_MS	10

/* Keep the watchdog ticking: a context was opened (see vgru_pci.c). */
static inline void vgru_watchdog_start(struct vgru_dev *vdev)
{
	queue_delayed_work(system_wq, &vdev->watchdog,
			   msecs_to_jiffies(VGRU_WATCHDOG_MS));
}

/* fault-around blocks a context remembers to tell streams (vgru_fault.c) */
#define VGRU_FA_STREAMS	4

/* the most CBs a context window can hold: one bit each in ctx->pending */
#define VGRU_MAX_CBS	(VGRU_WINDOW_STRIDE / VGRU_CB_STRIDE)

/* one translation a resolution drops in */
struct vgru_xlate {
	unsigned long va;
	struct page *page;		/* at va (a 2 MiB one's first page) */
	dma_addr_t dma;			/* bus address, from the DMA API */
	bool write;			/* writable */
	bool huge;			/* 2 MiB, both addresses aligned */
	bool mapped;			/* dma is this resolution's own mapping */
	void *reused;			/* else: the ctx->held entry it reuses */
	void *cur;			/* its ctx->held entry when last looked */
};

/* a fault response a translation list carries */
struct vgru_tl_resp {
	u32 cb;
	u32 seq;
	u32 cmd;
	u32 code;
};

/* a fault record waiting for its context's work */
struct vgru_pending_fault {
	u64 va;
	u32 seq;
	u32 flags;
	/*
	 * local_clock() in the IRQ handler: the histogram's clock, read
	 * without a clocksource access (an emulated HPET costs an exit)
	 */
	u64 received_ns;
};

struct vgru_ctx {
	struct vgru_dev *vdev;
	struct kref ref;
	struct rcu_head rcu;
	struct work_struct fault_work;	/* resolves the pending faults */
	struct work_struct free_work;	/* the teardown after the last put */
	u32 id;				/* device context index */
	u32 tag;			/* in this context's fault records */
	struct mm_struct *mm;		/* the opener's, mmgrab'ed */
	struct mmu_interval_notifier notifier;
	struct address_space *mapping;	/* the device node's, for the zap */

	/* ---- end_lock: ending the context once, by release or remove ---- */
	struct mutex end_lock;
	bool ended;			/* fenced, notifier removed, index free */

	/* ---- lock: device translations of this context ---- */
	struct mutex lock;
	bool dead;			/* disabled on the device */
	/*
	 * What the device may hold: every page dropped in since it was last
	 * invalidated (a superset).  Entries are added before ctx->lock and
	 * removed under it (see vgru_fault.c); an entry keeps the DMA mapping
	 * of its translation until the device invalidation that removed it
	 * has completed.
	 */
	struct xarray held;		/* page number -> xa value, vgru_fault.c */
	struct xarray held_huge;	/* 2 MiB page number -> the same */
	atomic_t nr_held;		/* entries in held */
	/* translation list: built and run under lock, one doorbell */
	void *tl;			/* coherent, VGRU_TL_SIZE(MAX_TRANS, MAX_RESP) */
	dma_addr_t tl_dma;
	u32 tl_nr_trans;
	u32 tl_nr_resp;
	struct vgru_tl_resp tl_resp[VGRU_TL_MAX_RESP];

	/* ---- pending_lock: faults the IRQ handler queued ---- */
	spinlock_t pending_lock;
	unsigned long pending;		/* CBs with a fault in pending_fault */
	struct vgru_pending_fault pending_fault[VGRU_MAX_CBS];
	/*
	 * fault_lock: one resolution of the pending faults at a time, by the
	 * fault work or by a waiter's VGRU_IOC_RESOLVE; it guards next_cb,
	 * the fw_* buffers and fa_recent
	 */
	struct mutex fault_lock;
	u32 next_cb;			/* round robin of the fault work */
	u32 fault_around;		/* pages per fault, VGRU_IOC_FAULT_AROUND */
	/* the fault work's buffers, VGRU_FAULT_AROUND_MAX entries each */
	unsigned long *fw_hpfns;
	struct vgru_xlate *fw_xl;
	/* the fault work's recent fault-around blocks: which ones stream */
	struct vgru_fa_stream {
		unsigned long start, end;
		unsigned long pages;	/* the block's window, 0: lone */
	} fa_recent[VGRU_FA_STREAMS];
	u32 fa_slot;

	/*
	 * ---- region_lock: the interval notifiers resolutions check their
	 * snapshots with (struct vgru_region, vgru_fault.c), created at the
	 * first fault in a 64 MiB region and kept, most recently used first,
	 * at most VGRU_MAX_REGIONS unless all are in use ----
	 */
	struct mutex region_lock;
	struct list_head regions;
	u32 nr_regions;
	bool regions_closed;		/* ended: the last user removes its region */
	atomic64_t regions_created;	/* fdinfo */

	/* completion notices: stats.notices counts them (IRQ handler) */
	wait_queue_head_t notice_wq;
	atomic64_t waited;		/* count VGRU_IOC_WAIT last returned */

	struct {
		atomic64_t faults;
		atomic64_t fault_errors;
		atomic64_t dropins;
		atomic64_t retries;
		atomic64_t invalidations;
		atomic64_t device_invalidations;
		atomic64_t notices;
		atomic64_t prefaults;
		/* beyond VGRU_IOC_STATS: in fdinfo only */
		atomic64_t retries_exhausted;
		atomic64_t huge_dropins;
		atomic64_t around_dropins;
		atomic64_t caller_resolves;	/* VGRU_IOC_RESOLVE answers */
	} stats;

	struct user_struct *user;	/* charged for this open context */
};

#define VGRU_MAX_DEVICES	16

/* pages looked up under one mmap lock hold and dropped in under one lock */
#define VGRU_MAP_CHUNK	16

/* the fault a resolution answers */
struct vgru_fault_id {
	u32 cb;
	u32 seq;
	u64 received_ns;	/* for the latency histogram */
	bool caller;		/* answered by the thread that waits for it */
};

/* vgru_hw.c: register sequences, multi-register ones under reg_lock */
int vgru_hw_init(struct vgru_dev *vdev);
void vgru_hw_start(struct vgru_dev *vdev);
void vgru_hw_reset(struct vgru_dev *vdev);
u32 vgru_hw_fq_tail(struct vgru_dev *vdev);
void vgru_hw_fq_set_head(struct vgru_dev *vdev, u32 head);
u64 vgru_hw_read_stat(struct vgru_dev *vdev, unsigned int n);
void vgru_ctx_enable(struct vgru_dev *vdev, u32 ctx, u32 tag);
void vgru_ctx_disable(struct vgru_dev *vdev, u32 ctx);
int vgru_ctx_fence(struct vgru_dev *vdev, u32 ctx);
bool vgru_hw_set_broken(struct vgru_dev *vdev);
bool vgru_hw_broken(struct vgru_dev *vdev);
bool vgru_hw_check_absent(struct vgru_dev *vdev);
int vgru_tlb_invalidate(struct vgru_dev *vdev, u32 ctx, u64 start, u64 len,
			bool may_sleep);
void vgru_tl_begin(struct vgru_ctx *ctx);
void vgru_tl_add_xlate(struct vgru_ctx *ctx, const struct vgru_xlate *x);
void vgru_tl_add_resp(struct vgru_ctx *ctx, u32 cb, u32 seq, int err,
		      bool caller);
bool vgru_tl_full(struct vgru_ctx *ctx);
void vgru_tl_run(struct vgru_ctx *ctx);

/* vgru_fault.c */
extern const struct mmu_interval_notifier_ops vgru_mni_ops;
long vgru_ctx_map(struct vgru_ctx *ctx, unsigned long va, unsigned long nr,
		  bool write);
void vgru_resolve_pending(struct vgru_ctx *ctx);
int vgru_resolve_cb(struct vgru_ctx *ctx, u32 cb);
int vgru_fault_ctx_init(struct vgru_ctx *ctx);
void vgru_fault_ctx_free(struct vgru_ctx *ctx);
void vgru_fault_ctx_end(struct vgru_ctx *ctx);
int vgru_fault_dma_check(struct pci_dev *pdev);

/* vgru_debugfs.c: root-only views, /sys/kernel/debug/vgru/ */
extern unsigned int vgru_inject_resolve_delay_us;	/* in vgru_fault.c */
void vgru_debugfs_module_init(void);
void vgru_debugfs_module_exit(void);
void vgru_debugfs_add(struct vgru_dev *vdev);
void vgru_debugfs_del(struct vgru_dev *vdev);

/*
 * A fault received at @received_ns (local_clock) was answered just now,
 * maybe on another CPU: local_clock() is not ordered across CPUs, so a
 * negative span counts as zero.
 */
static inline void vgru_latency_record(struct vgru_dev *vdev, u64 received_ns)
{
	s64 span = local_clock() - received_ns;
	u64 us = span > 0 ? div_u64(span, NSEC_PER_USEC) : 0;
	unsigned int b = us ? min_t(unsigned int, ilog2(us) + 1,
				    VGRU_LAT_BUCKETS - 1) : 0;

	atomic64_inc(&vdev->lat_hist[b]);
}

/* vgru_pci.c: the event queue, drained for a thread that resolves @cb */
void vgru_events_drain(struct vgru_dev *vdev, struct vgru_ctx *ctx, u32 cb);

/* vgru_ctx.c: the device table; vgru_dev_get takes a reference */
int vgru_dev_add(struct vgru_dev *vdev);
void vgru_dev_publish(struct vgru_dev *vdev);
void vgru_dev_revoke(struct vgru_dev *vdev);
struct vgru_dev *vgru_dev_get(unsigned int minor);
void vgru_dev_put(struct vgru_dev *vdev);
void vgru_dev_fail_contexts(struct vgru_dev *vdev);

/* vgru_ctx.c: contexts, their fault works on vgru_wq */
extern const struct file_operations vgru_fops;
int vgru_ctx_module_init(void);
void vgru_ctx_module_exit(void);
/* the thread draining the event queue to resolve its own CB's fault */
struct vgru_waiter {
	const struct vgru_ctx *ctx;
	u32 cb;
};

void vgru_handle_fault(struct vgru_dev *vdev, u64 va, u32 ctx_id, u32 tag,
		       u32 cb, u32 flags, u32 seq,
		       const struct vgru_waiter *waiter);
void vgru_ctx_queue_fault_work(struct vgru_ctx *ctx);
void vgru_handle_notice(struct vgru_dev *vdev, u32 ctx_id, u32 tag, u32 cb);

#endif /* VGRU_H */
