// SPDX-License-Identifier: GPL-2.0
/*
 * vgru contexts: one per open file of /dev/vgruN.
 *
 * A context mirrors part of its process's page tables into the device TLB
 * on demand and keeps no page reference: correctness rests on the interval
 * notifier.  A device fault is resolved with get_user_pages; the result is
 * dropped in only if no invalidation ran since mmu_interval_read_begin()
 * (checked under ctx->lock, which the invalidate callback also takes), and
 * the callback removes the device entries before it returns.
 * VGRU_IOC_PREFAULT runs the same resolution in the caller's own thread.
 *
 * The context records the pages the device may hold (ctx->held), so that
 * the callback sends the device only the part of a range it may hold, and
 * nothing at all for the many ranges it never touched.
 *
 * Completion notices are counted per context; VGRU_IOC_WAIT and poll()
 * sleep on that count.
 */

#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vgru.h"
#include "vgru_trace.h"

static unsigned int inject_resolve_delay_us;
module_param(inject_resolve_delay_us, uint, 0644);
MODULE_PARM_DESC(inject_resolve_delay_us,
		 "Fault injection for tests: sleep this long between a fault's page lookup and its drop-in, widening the window an invalidation can race into (default 0)");

static void vgru_ctx_free(struct kref *ref)
{
	struct vgru_ctx *ctx = container_of(ref, struct vgru_ctx, ref);

	xa_destroy(&ctx->held);
	mmdrop(ctx->mm);
	kfree(ctx);
}

static void vgru_ctx_put(struct vgru_ctx *ctx)
{
	kref_put(&ctx->ref, vgru_ctx_free);
}

/* ---- what the device may hold --------------------------------------------- */

/*
 * ctx->held has an entry for every page dropped in since the device last
 * invalidated it; a superset is safe, a missing page is not.  The rules:
 *
 * - An entry is stored after mmu_interval_read_begin() and before
 *   ctx->lock is taken for the drop-in, with GFP_KERNEL: ctx->lock is taken
 *   by the notifier from reclaim, so nothing may allocate under it.
 * - Entries are removed only under ctx->lock: by the notifier (after the
 *   device invalidation completed), which also moves the sequence, or when
 *   tracking overflows (held_all set first, under the same hold).
 * - So when a drop-in finds, under ctx->lock, that the sequence did not
 *   move, its entries are still there or held_all is set: nothing removed
 *   them in between without making it retry.  An entry stored for a
 *   resolution that retries or fails stays: a superset.
 * - held_all: the device may hold anything.  Set under ctx->lock when the
 *   entries pass vdev->held_max (a context cannot hold more than the TLB
 *   and its CBs' held translations) or an entry could not be allocated;
 *   the next notifier range then flushes the whole context, forgets every
 *   entry and clears it.  Resolutions read it unlocked only to skip
 *   storing; one that saw a stale value retries (the notifier that cleared
 *   it moved the sequence).
 */

/* Forget the entries of pages [first, last].  Under ctx->lock. */
static void vgru_held_forget(struct vgru_ctx *ctx, unsigned long first,
			     unsigned long last)
{
	unsigned long idx;
	void *entry;

	xa_for_each_range(&ctx->held, idx, entry, first, last)
		if (xa_erase(&ctx->held, idx))
			atomic_dec(&ctx->nr_held);
}

/* Record that the device may hold @nr pages from @va on; -ENOMEM. */
static int vgru_held_record(struct vgru_ctx *ctx, unsigned long va, long nr)
{
	unsigned long vpn = va >> PAGE_SHIFT;
	void *old;
	long i;

	for (i = 0; i < nr && !READ_ONCE(ctx->held_all); i++) {
		old = xa_store(&ctx->held, vpn + i, xa_mk_value(0), GFP_KERNEL);
		if (xa_is_err(old))
			return xa_err(old);
		if (!old)
			atomic_inc(&ctx->nr_held);
	}
	return 0;
}

/* Give up tracking until the next context flush.  Under ctx->lock. */
static void vgru_held_overflow(struct vgru_ctx *ctx)
{
	WRITE_ONCE(ctx->held_all, true);
	vgru_held_forget(ctx, 0, ULONG_MAX);
}

/* ---- invalidation --------------------------------------------------------- */

/*
 * Flush what the device may hold in @range: nothing if it holds nothing
 * there, else one command from the first held page to the last.  Returns
 * whether a command went to the device.  Under ctx->lock.
 */
static bool vgru_flush_held(struct vgru_ctx *ctx,
			    const struct mmu_notifier_range *range)
{
	bool may_sleep = mmu_notifier_range_blockable(range);
	unsigned long last = (range->end - 1) >> PAGE_SHIFT;
	unsigned long lo, hi, idx = range->start >> PAGE_SHIFT;

	if (ctx->held_all) {
		vgru_tlb_flush_ctx(ctx->vdev, ctx->id, may_sleep);
		vgru_held_forget(ctx, 0, ULONG_MAX);
		WRITE_ONCE(ctx->held_all, false);
		return true;
	}
	if (!xa_find(&ctx->held, &idx, last, XA_PRESENT))
		return false;
	lo = idx;
	hi = idx;
	while (xa_find_after(&ctx->held, &idx, last, XA_PRESENT))
		hi = idx;
	vgru_tlb_invalidate(ctx->vdev, ctx->id, (u64)lo << PAGE_SHIFT,
			    (u64)(hi - lo + 1) << PAGE_SHIFT, may_sleep);
	/* only now: until the device is done, it may still use them */
	vgru_held_forget(ctx, lo, hi);
	return true;
}

static bool vgru_invalidate(struct mmu_interval_notifier *mni,
			    const struct mmu_notifier_range *range,
			    unsigned long cur_seq)
{
	struct vgru_ctx *ctx = container_of(mni, struct vgru_ctx, notifier);

	if (mmu_notifier_range_blockable(range))
		mutex_lock(&ctx->lock);
	else if (!mutex_trylock(&ctx->lock))
		return false;

	/* a resolution that began before this must start over */
	mmu_interval_set_seq(mni, cur_seq);
	if (!ctx->dead) {
		trace_vgru_invalidate(ctx->id, range->start, range->end,
				      range->event);
		atomic64_inc(&ctx->stats.invalidations);
		atomic64_inc(&ctx->vdev->counters.invalidations);
		if (vgru_flush_held(ctx, range))
			atomic64_inc(&ctx->stats.device_invalidations);
	}
	mutex_unlock(&ctx->lock);
	return true;
}

static const struct mmu_interval_notifier_ops vgru_mni_ops = {
	.invalidate = vgru_invalidate,
};

/* ---- fault resolution ----------------------------------------------------- */

/* pages looked up under one mmap lock hold and dropped in under one lock */
#define VGRU_MAP_CHUNK	16

/* the fault a resolution answers */
struct vgru_fault_id {
	u32 cb;
	u32 seq;
};

/*
 * Look up to @nr pages from @va on in the process, without keeping a
 * reference.  Returns how many were found (their physical addresses in
 * @pa), or -EFAULT (nothing mapped at @va, or not memory the device may
 * reach) or -EPERM (a write to a read-only mapping).
 */
static long vgru_lookup_pages(struct mm_struct *mm, unsigned long va,
			      unsigned long nr, bool write, phys_addr_t *pa)
{
	struct page *pages[VGRU_MAP_CHUNK];
	struct vm_area_struct *vma;
	long n, i;

	mmap_read_lock(mm);
	n = get_user_pages_remote(mm, va, nr, write ? FOLL_WRITE : 0, pages,
				  NULL, NULL);
	if (n <= 0) {
		vma = vma_lookup(mm, va);
		mmap_read_unlock(mm);
		if (write && vma && (vma->vm_flags & VM_READ) &&
		    !(vma->vm_flags & VM_WRITE))
			return -EPERM;
		return n == -ENOMEM ? -ENOMEM : -EFAULT;
	}
	mmap_read_unlock(mm);
	for (i = 0; i < n; i++) {
		pa[i] = page_to_phys(pages[i]);
		put_page(pages[i]);
	}
	return n;
}

/*
 * Resolve up to @nr (at most VGRU_MAP_CHUNK) pages from the page @va on and
 * drop them into the device TLB, starting over if an invalidation
 * overlapped.  With @fault, answer that fault under the same lock hold, so
 * that the command goes on only with its translation in.  The caller holds
 * a user of ctx->mm.  Returns the number of pages dropped in, or -errno.
 */
static long vgru_ctx_map(struct vgru_ctx *ctx, unsigned long va,
			 unsigned long nr, bool write,
			 const struct vgru_fault_id *fault)
{
	phys_addr_t pa[VGRU_MAP_CHUNK];
	unsigned long seq;
	long n, i;
	int untracked;

	for (;;) {
		seq = mmu_interval_read_begin(&ctx->notifier);
		n = vgru_lookup_pages(ctx->mm, va, nr, write, pa);
		trace_vgru_page_lookup(ctx->id, va, n < 0 ? n : 0);
		if (n < 0)
			return n;
		/* after read_begin, before ctx->lock: see ctx->held rules */
		untracked = vgru_held_record(ctx, va, n);
		if (inject_resolve_delay_us)
			fsleep(inject_resolve_delay_us);

		mutex_lock(&ctx->lock);
		if (ctx->dead) {
			mutex_unlock(&ctx->lock);
			return -ESRCH;
		}
		if (!mmu_interval_read_retry(&ctx->notifier, seq)) {
			if (!ctx->held_all &&
			    (untracked ||
			     atomic_read(&ctx->nr_held) > ctx->vdev->held_max))
				vgru_held_overflow(ctx);
			for (i = 0; i < n; i++)
				vgru_tlb_dropin(ctx->vdev, ctx->id,
						va + i * PAGE_SIZE, pa[i], write);
			atomic64_add(n, &ctx->stats.dropins);
			if (fault)
				vgru_fault_respond(ctx->vdev, ctx->id, fault->cb,
						   fault->seq, 0);
			mutex_unlock(&ctx->lock);
			return n;
		}
		mutex_unlock(&ctx->lock);
		trace_vgru_retry(ctx->id, va);
		atomic64_inc(&ctx->stats.retries);
		atomic64_inc(&ctx->vdev->counters.retries);
		/* a prefault racing endless invalidations still ends */
		if (!fault && signal_pending(current))
			return -EINTR;
	}
}

static int vgru_ctx_resolve(struct vgru_ctx *ctx,
			    const struct vgru_fault_id *fault, u64 va,
			    bool write)
{
	long n;

	trace_vgru_resolve_start(ctx->id, fault->cb, va, write);
	if (va >= TASK_SIZE_MAX)
		return -EFAULT;
	if (!mmget_not_zero(ctx->mm))
		return -ESRCH;		/* the process is exiting */
	n = vgru_ctx_map(ctx, va & PAGE_MASK, 1, write, fault);
	/* the last user of an exiting mm: tear it down elsewhere */
	mmput_async(ctx->mm);
	return n < 0 ? n : 0;
}

/* Called from the IRQ thread for every fault record, in queue order. */
void vgru_handle_fault(struct vgru_dev *vdev, u64 va, u32 ctx_id, u32 tag,
		       u32 cb, u32 flags, u32 seq)
{
	struct vgru_fault_id fault = { .cb = cb, .seq = seq };
	struct vgru_ctx *ctx;
	int ret;

	trace_vgru_fault(ctx_id, cb, va, flags);
	mutex_lock(&vdev->ctx_lock);
	ctx = xa_load(&vdev->contexts, ctx_id);
	if (ctx && ctx->tag == tag && cb < vdev->nr_cbs)
		kref_get(&ctx->ref);
	else
		ctx = NULL;
	mutex_unlock(&vdev->ctx_lock);
	if (!ctx) {
		/* its context was closed after the fault was queued */
		atomic64_inc(&vdev->counters.stale_faults);
		return;
	}

	atomic64_inc(&ctx->stats.faults);
	atomic64_inc(&vdev->counters.faults);
	ret = vgru_ctx_resolve(ctx, &fault, va, flags & VGRU_FAULT_WRITE);
	if (ret) {
		atomic64_inc(&ctx->stats.fault_errors);
		atomic64_inc(&vdev->counters.fault_errors);
		mutex_lock(&ctx->lock);
		if (!ctx->dead)
			vgru_fault_respond(vdev, ctx->id, cb, seq, ret);
		mutex_unlock(&ctx->lock);
	}
	vgru_ctx_put(ctx);
}

/*
 * Called from the IRQ thread for every notice record: count it and wake
 * the context's waiters.  A notice of a closed context is dropped.
 */
void vgru_handle_notice(struct vgru_dev *vdev, u32 ctx_id, u32 tag, u32 cb)
{
	struct vgru_ctx *ctx;

	/* a context in the table is not freed before ctx_lock is dropped */
	mutex_lock(&vdev->ctx_lock);
	ctx = xa_load(&vdev->contexts, ctx_id);
	if (ctx && ctx->tag == tag) {
		trace_vgru_notice(ctx_id, cb,
				  atomic64_inc_return(&ctx->stats.notices));
		atomic64_inc(&vdev->counters.notices);
		wake_up_interruptible_poll(&ctx->notice_wq,
					   EPOLLIN | EPOLLRDNORM);
	}
	mutex_unlock(&vdev->ctx_lock);
}

/* ---- notices and prefault, for the opener ------------------------------- */

static bool vgru_notices_changed(struct vgru_ctx *ctx, u64 seen)
{
	return atomic64_read(&ctx->stats.notices) != seen;
}

static long vgru_ioctl_wait(struct vgru_ctx *ctx,
			    struct vgru_wait __user *uarg)
{
	struct vgru_wait w;
	long ret = 0;
	u64 seen;

	if (copy_from_user(&w, uarg, sizeof(w)))
		return -EFAULT;
	if (w.reserved[0] || w.reserved[1])
		return -EINVAL;
	seen = w.notices;
	if (w.timeout_ns < 0)
		ret = wait_event_interruptible(ctx->notice_wq,
					       vgru_notices_changed(ctx, seen));
	else if (w.timeout_ns > 0)
		ret = wait_event_interruptible_hrtimeout(ctx->notice_wq,
							 vgru_notices_changed(ctx, seen),
							 ns_to_ktime(w.timeout_ns));
	/* not restarted: a restart would begin the timeout anew */
	if (ret == -ERESTARTSYS)
		return -EINTR;

	w.notices = atomic64_read(&ctx->stats.notices);
	atomic64_set(&ctx->waited, w.notices);
	if (put_user(w.notices, &uarg->notices))
		return -EFAULT;
	return w.notices == seen ? -ETIMEDOUT : 0;
}

static long vgru_ioctl_prefault(struct vgru_ctx *ctx,
				struct vgru_prefault __user *uarg)
{
	struct vgru_prefault pf;
	unsigned long va, end, nr;
	long n, ret = 0;

	if (copy_from_user(&pf, uarg, sizeof(pf)))
		return -EFAULT;
	if ((pf.flags & ~VGRU_PREFAULT_WRITE) || pf.reserved0 ||
	    pf.reserved[0] || pf.reserved[1] || pf.addr + pf.len < pf.addr)
		return -EINVAL;
	/* translations of another mm would be wrong for this context */
	if (current->mm != ctx->mm)
		return -EACCES;

	pf.done = 0;
	va = pf.addr & PAGE_MASK;
	end = pf.addr + pf.len;
	/* an empty range resolves nothing, even from inside a page */
	while (pf.len && va < end) {
		/* a long range must not hold off a signal */
		if (signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		if (va >= TASK_SIZE_MAX) {
			ret = -EFAULT;
			break;
		}
		nr = min_t(unsigned long, VGRU_MAP_CHUNK,
			   ((end - 1 - va) >> PAGE_SHIFT) + 1);
		n = vgru_ctx_map(ctx, va, nr, pf.flags & VGRU_PREFAULT_WRITE,
				 NULL);
		if (n < 0) {
			ret = n;
			break;
		}
		atomic64_add(n, &ctx->stats.prefaults);
		va += n << PAGE_SHIFT;
		pf.done = min(va, end) - pf.addr;
		cond_resched();
	}
	trace_vgru_prefault(ctx->id, pf.addr, pf.len,
			    pf.flags & VGRU_PREFAULT_WRITE, pf.done, ret);
	if (put_user(pf.done, &uarg->done))
		return -EFAULT;
	return ret;
}

/* ---- file operations ------------------------------------------------------ */

static int vgru_open(struct inode *inode, struct file *file)
{
	struct vgru_dev *vdev;
	struct vgru_ctx *ctx;
	u32 id;
	int ret;

	if (!current->mm)
		return -EINVAL;
	vdev = vgru_dev_get(iminor(inode));
	if (!vdev)
		return -ENODEV;		/* removed */
	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx) {
		vgru_dev_put(vdev);
		return -ENOMEM;
	}
	ctx->vdev = vdev;
	kref_init(&ctx->ref);
	mutex_init(&ctx->lock);
	xa_init(&ctx->held);
	init_waitqueue_head(&ctx->notice_wq);
	ctx->mm = current->mm;
	mmgrab(ctx->mm);

	/* reserve an index: the notifier's flushes must name this context */
	mutex_lock(&vdev->ctx_lock);
	ret = xa_alloc(&vdev->contexts, &id, NULL,
		       XA_LIMIT(0, vdev->nr_contexts - 1), GFP_KERNEL);
	if (!ret) {
		ctx->id = id;
		ctx->tag = ++vdev->next_tag;
	}
	mutex_unlock(&vdev->ctx_lock);
	if (ret)
		goto err_put;		/* -EBUSY: all contexts in use */

	ret = mmu_interval_notifier_insert(&ctx->notifier, ctx->mm, 0,
					   TASK_SIZE_MAX, &vgru_mni_ops);
	if (ret)
		goto err_free_id;

	/* enabling drops whatever the index held; then faults can find us */
	mutex_lock(&vdev->ctx_lock);
	vgru_ctx_enable(vdev, ctx->id, ctx->tag);
	xa_store(&vdev->contexts, ctx->id, ctx, GFP_KERNEL);
	mutex_unlock(&vdev->ctx_lock);
	trace_vgru_ctx_open(ctx->id, ctx->tag, current->tgid);

	file->private_data = ctx;
	return 0;

err_free_id:
	mutex_lock(&vdev->ctx_lock);
	xa_erase(&vdev->contexts, ctx->id);
	mutex_unlock(&vdev->ctx_lock);
err_put:
	vgru_ctx_put(ctx);
	vgru_dev_put(vdev);
	return ret;
}

static int vgru_release(struct inode *inode, struct file *file)
{
	struct vgru_ctx *ctx = file->private_data;
	struct vgru_dev *vdev = ctx->vdev;

	/* no drop-in or response for this context after this */
	mutex_lock(&ctx->lock);
	ctx->dead = true;
	vgru_ctx_disable(vdev, ctx->id);
	mutex_unlock(&ctx->lock);
	trace_vgru_ctx_close(ctx->id, ctx->tag);

	mmu_interval_notifier_remove(&ctx->notifier);

	mutex_lock(&vdev->ctx_lock);
	xa_erase(&vdev->contexts, ctx->id);
	mutex_unlock(&vdev->ctx_lock);

	vgru_ctx_put(ctx);
	vgru_dev_put(vdev);
	return 0;
}

static int vgru_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct vgru_ctx *ctx = file->private_data;
	unsigned long pfn;

	/* a window issues commands in ctx->mm: only that mm may map it */
	if (current->mm != ctx->mm)
		return -EACCES;
	if (vma->vm_pgoff || vma->vm_end - vma->vm_start != VGRU_WINDOW_SIZE)
		return -EINVAL;
	if (!(vma->vm_flags & VM_SHARED) || (vma->vm_flags & VM_EXEC))
		return -EINVAL;

	vma->vm_flags |= VM_IO | VM_PFNMAP | VM_DONTCOPY | VM_DONTEXPAND |
			 VM_DONTDUMP;
	vma->vm_flags &= ~VM_MAYEXEC;
	vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
	pfn = PHYS_PFN(ctx->vdev->window_phys +
		       (phys_addr_t)ctx->id * VGRU_WINDOW_STRIDE);
	return io_remap_pfn_range(vma, vma->vm_start, pfn, VGRU_WINDOW_SIZE,
				  vma->vm_page_prot);
}

static long vgru_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct vgru_ctx *ctx = file->private_data;
	void __user *uarg = (void __user *)arg;

	/* the ABI's sizes: new fields come out of the reserved space */
	BUILD_BUG_ON(sizeof(struct vgru_info) != 48);
	BUILD_BUG_ON(sizeof(struct vgru_ctx_stats) != 64);
	BUILD_BUG_ON(sizeof(struct vgru_wait) != 32);
	BUILD_BUG_ON(sizeof(struct vgru_prefault) != 48);

	switch (cmd) {
	case VGRU_IOC_INFO: {
		struct vgru_info info = {
			.api_version = VGRU_API_VERSION,
			.context = ctx->id,
			.nr_cbs = ctx->vdev->nr_cbs,
			.window_size = VGRU_WINDOW_SIZE,
		};

		return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
	}
	case VGRU_IOC_STATS: {
		struct vgru_ctx_stats st = {
			.faults = atomic64_read(&ctx->stats.faults),
			.fault_errors = atomic64_read(&ctx->stats.fault_errors),
			.dropins = atomic64_read(&ctx->stats.dropins),
			.retries = atomic64_read(&ctx->stats.retries),
			.invalidations =
				atomic64_read(&ctx->stats.invalidations),
			.notices = atomic64_read(&ctx->stats.notices),
			.prefaults = atomic64_read(&ctx->stats.prefaults),
			.device_invalidations =
				atomic64_read(&ctx->stats.device_invalidations),
		};

		return copy_to_user(uarg, &st, sizeof(st)) ? -EFAULT : 0;
	}
	case VGRU_IOC_WAIT:
		return vgru_ioctl_wait(ctx, uarg);
	case VGRU_IOC_PREFAULT:
		return vgru_ioctl_prefault(ctx, uarg);
	default:
		return -ENOTTY;
	}
}

/* EPOLLIN: notices came since the count VGRU_IOC_WAIT last returned */
static __poll_t vgru_poll(struct file *file, poll_table *wait)
{
	struct vgru_ctx *ctx = file->private_data;

	poll_wait(file, &ctx->notice_wq, wait);
	if (atomic64_read(&ctx->stats.notices) != atomic64_read(&ctx->waited))
		return EPOLLIN | EPOLLRDNORM;
	return 0;
}

const struct file_operations vgru_fops = {
	.owner		= THIS_MODULE,
	.open		= vgru_open,
	.release	= vgru_release,
	.mmap		= vgru_mmap,
	.poll		= vgru_poll,
	.unlocked_ioctl	= vgru_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};
