// SPDX-License-Identifier: GPL-2.0
/*
 * vgru fault resolution: what the device may hold of a context's address
 * space, the interval notifier that takes it back, and the page lookups
 * that answer a device fault or a prefault.
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
 */

#include <linux/delay.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>

#include "vgru.h"
#include "vgru_trace.h"

static unsigned int inject_resolve_delay_us;
module_param(inject_resolve_delay_us, uint, 0644);
MODULE_PARM_DESC(inject_resolve_delay_us,
		 "Fault injection for tests: sleep this long between a fault's page lookup and its drop-in, widening the window an invalidation can race into (default 0)");

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

const struct mmu_interval_notifier_ops vgru_mni_ops = {
	.invalidate = vgru_invalidate,
};

/* ---- fault resolution ----------------------------------------------------- */

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
long vgru_ctx_map(struct vgru_ctx *ctx, unsigned long va,
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

/* Resolve one fault record and answer it: drop-in and restart, or FAIL. */
static void vgru_resolve_one(struct vgru_ctx *ctx, u32 cb,
			     const struct vgru_pending_fault *pf)
{
	struct vgru_fault_id fault = { .cb = cb, .seq = pf->seq };
	struct vgru_dev *vdev = ctx->vdev;
	int ret;

	ret = vgru_ctx_resolve(ctx, &fault, pf->va,
			       pf->flags & VGRU_FAULT_WRITE);
	if (!ret)
		return;
	atomic64_inc(&ctx->stats.fault_errors);
	atomic64_inc(&vdev->counters.fault_errors);
	mutex_lock(&ctx->lock);
	if (!ctx->dead)
		vgru_fault_respond(vdev, ctx->id, cb, pf->seq, ret);
	mutex_unlock(&ctx->lock);
}

/*
 * The context's fault work: take the pending faults one at a time, CBs in
 * round robin (a CB that faults again at once cannot starve the others),
 * until none is left.  A dead context's faults are dropped unanswered: the
 * device disabled it, and any answer would be ignored anyway.
 */
void vgru_resolve_pending(struct vgru_ctx *ctx)
{
	u32 nr_cbs = ctx->vdev->nr_cbs;
	struct vgru_pending_fault pf;
	unsigned long cb;

	for (;;) {
		spin_lock_irq(&ctx->pending_lock);
		cb = find_next_bit(&ctx->pending, nr_cbs, ctx->next_cb);
		if (cb >= nr_cbs)
			cb = find_first_bit(&ctx->pending, nr_cbs);
		if (cb < nr_cbs) {
			pf = ctx->pending_fault[cb];
			__clear_bit(cb, &ctx->pending);
		}
		spin_unlock_irq(&ctx->pending_lock);
		if (cb >= nr_cbs)
			return;
		ctx->next_cb = cb + 1;
		if (!READ_ONCE(ctx->dead))
			vgru_resolve_one(ctx, cb, &pf);
		cond_resched();
	}
}
