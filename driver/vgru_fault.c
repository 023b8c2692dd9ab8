// SPDX-License-Identifier: GPL-2.0
/*
 * vgru fault resolution: what the device may hold of a context's address
 * space, the interval notifier that takes it back, and the page lookups
 * that answer a device fault or a prefault.
 *
 * A context mirrors part of its process's page tables into the device TLB
 * on demand and keeps no page reference: correctness rests on the interval
 * notifiers.  A device fault is resolved from an hmm_range_fault()
 * snapshot of present pages (the faulting one faulted in first if need
 * be); the result is dropped in only if no overlapping invalidation ran
 * since mmu_interval_read_begin() (checked under ctx->lock, which the
 * invalidate callbacks also take), and the callbacks remove the device
 * entries before they return.  VGRU_IOC_PREFAULT runs the same resolution
 * in the caller's own thread.
 *
 * The context records the pages the device may hold (ctx->held), so that
 * the callback sends the device only the part of a range it may hold, and
 * nothing at all for the many ranges it never touched.
 */

#include <linux/delay.h>
#include <linux/hmm.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>

#include "vgru.h"
#include "vgru_trace.h"

/*
 * Fault injection for tests (debugfs inject_resolve_delay_us): sleep this
 * long between a fault's page lookup and its drop-in, widening the window
 * an invalidation can race into.
 */
unsigned int vgru_inject_resolve_delay_us;

/* ---- what the device may hold --------------------------------------------- */

/*
 * ctx->held has an entry for every page dropped in since the device last
 * invalidated it; a superset is safe, a missing page is not.  The rules:
 *
 * - An entry is stored after the resolution's mmu_interval_read_begin()
 *   and before ctx->lock is taken for the drop-in, with GFP_KERNEL:
 *   ctx->lock is taken by the notifiers from reclaim, so nothing may
 *   allocate under it.
 * - Entries are removed only under ctx->lock: by a notifier (after the
 *   device invalidation completed), or when tracking overflows (held_all
 *   set first, under the same hold).
 * - So a drop-in checks, under ctx->lock, that its resolution's sequence
 *   did not move and that its entries are still there (or held_all is
 *   set): otherwise a flush ran since its snapshot, and it starts over.
 *   An entry stored for a resolution that retries or fails stays: a
 *   superset.
 * - held_all: the device may hold anything.  Set under ctx->lock when the
 *   entries pass vdev->held_max (a context cannot hold more than the TLB
 *   and its CBs' held translations) or an entry could not be allocated;
 *   the next notifier range then flushes the whole context, forgets every
 *   entry and clears it.  Resolutions read it unlocked only to skip
 *   storing; one that skipped and finds it cleared under ctx->lock starts
 *   over.
 */

/* Forget the entries [first, last] of @xa (held or held_huge).  Under ctx->lock. */
static void vgru_held_forget(struct vgru_ctx *ctx, struct xarray *xa,
			     unsigned long first, unsigned long last)
{
	unsigned long idx;
	void *entry;

	xa_for_each_range(xa, idx, entry, first, last)
		if (xa_erase(xa, idx))
			atomic_dec(&ctx->nr_held);
}

/* Record that the device may hold entry @idx of @xa; -ENOMEM. */
static int vgru_held_record(struct vgru_ctx *ctx, struct xarray *xa,
			    unsigned long idx)
{
	void *old;

	if (READ_ONCE(ctx->held_all))
		return 0;
	old = xa_store(xa, idx, xa_mk_value(0), GFP_KERNEL);
	if (xa_is_err(old))
		return xa_err(old);
	if (!old)
		atomic_inc(&ctx->nr_held);
	return 0;
}

/* Give up tracking until the next context flush.  Under ctx->lock. */
static void vgru_held_overflow(struct vgru_ctx *ctx)
{
	WRITE_ONCE(ctx->held_all, true);
	vgru_held_forget(ctx, &ctx->held, 0, ULONG_MAX);
	vgru_held_forget(ctx, &ctx->held_huge, 0, ULONG_MAX);
}

/* ---- invalidation --------------------------------------------------------- */

/*
 * Flush what the device may hold in [start, end): nothing if it holds
 * nothing there, else one command from the first held page (or 2 MiB page)
 * to the last.  Returns whether a command went to the device.  Under
 * ctx->lock.
 */
static bool vgru_flush_held(struct vgru_ctx *ctx, unsigned long start,
			    unsigned long end, bool may_sleep)
{
	unsigned long last = (end - 1) >> PAGE_SHIFT;
	unsigned long hlast = (end - 1) >> VGRU_HUGE_SHIFT;
	unsigned long top, idx = start >> PAGE_SHIFT;
	u64 lo = U64_MAX, hi = 0;

	if (ctx->held_all) {
		vgru_tlb_flush_ctx(ctx->vdev, ctx->id, may_sleep);
		vgru_held_forget(ctx, &ctx->held, 0, ULONG_MAX);
		vgru_held_forget(ctx, &ctx->held_huge, 0, ULONG_MAX);
		WRITE_ONCE(ctx->held_all, false);
		return true;
	}
	if (xa_find(&ctx->held, &idx, last, XA_PRESENT)) {
		lo = (u64)idx << PAGE_SHIFT;
		top = idx;
		while (xa_find_after(&ctx->held, &idx, last, XA_PRESENT))
			top = idx;
		hi = (u64)(top + 1) << PAGE_SHIFT;
	}
	idx = start >> VGRU_HUGE_SHIFT;
	if (xa_find(&ctx->held_huge, &idx, hlast, XA_PRESENT)) {
		/* any overlap removes the whole 2 MiB entry */
		lo = min_t(u64, lo, (u64)idx << VGRU_HUGE_SHIFT);
		top = idx;
		while (xa_find_after(&ctx->held_huge, &idx, hlast, XA_PRESENT))
			top = idx;
		hi = max_t(u64, hi, (u64)(top + 1) << VGRU_HUGE_SHIFT);
	}
	if (lo >= hi)
		return false;
	vgru_tlb_invalidate(ctx->vdev, ctx->id, lo, hi - lo, may_sleep);
	/* only now: until the device is done, it may still use them */
	vgru_held_forget(ctx, &ctx->held, lo >> PAGE_SHIFT,
			 (hi >> PAGE_SHIFT) - 1);
	vgru_held_forget(ctx, &ctx->held_huge, lo >> VGRU_HUGE_SHIFT,
			 (hi - 1) >> VGRU_HUGE_SHIFT);
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

	/* resolutions follow their own notifiers' sequences, not this one */
	mmu_interval_set_seq(mni, cur_seq);
	if (!ctx->dead) {
		trace_vgru_invalidate(ctx->id, range->start, range->end,
				      range->event);
		atomic64_inc(&ctx->stats.invalidations);
		atomic64_inc(&ctx->vdev->counters.invalidations);
		if (vgru_flush_held(ctx, range->start, range->end,
				    mmu_notifier_range_blockable(range)))
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
 * One resolution: a snapshot of the present pages of [start, end) with
 * hmm_range_fault() (no fault flags), the faulting page faulted in with
 * fixup_user_fault() when the snapshot lacks it, and the drop-in.
 *
 * Retries: a resolution has its own short-lived interval notifier over its
 * range (as nouveau does), so only an invalidation that overlaps the range
 * moves the sequence it checks; the context's whole-mm notifier only
 * removes what the device holds.  The two callbacks of one invalidation
 * run in either order before the page tables change, so each removes what
 * the device holds in its range, and a drop-in, under ctx->lock, also
 * starts over when an entry it stored in ctx->held is gone: then a flush
 * ran between the snapshot and the drop-in that this sequence does not
 * show yet.  After VGRU_MAX_RETRIES retries the fault fails with -EAGAIN.
 */
#define VGRU_MAX_RETRIES	16
/*
 * Passes a resolution takes for itself, not counted as retries: the first
 * fault-in, and the snapshot its own write fault-in (copy-on-write) made
 * stale.  Any further one means the page went away again: a retry.
 */
#define VGRU_FREE_PASSES	2

/* the pages a resolution looks at */
struct vgru_block {
	unsigned long start, end;	/* page aligned, snapshot range */
	unsigned long va;		/* the page that must resolve */
	bool around;			/* all usable pages, not the run from va */
};

struct vgru_resolution {
	struct mmu_interval_notifier notifier;
	struct vgru_ctx *ctx;
	unsigned long start, end;	/* page aligned */
};

static bool vgru_res_invalidate(struct mmu_interval_notifier *mni,
				const struct mmu_notifier_range *range,
				unsigned long cur_seq)
{
	struct vgru_resolution *res = container_of(mni, struct vgru_resolution,
						   notifier);
	struct vgru_ctx *ctx = res->ctx;

	if (mmu_notifier_range_blockable(range))
		mutex_lock(&ctx->lock);
	else if (!mutex_trylock(&ctx->lock))
		return false;
	mmu_interval_set_seq(mni, cur_seq);
	/* the context's notifier may have run first, before our drop-in */
	if (!ctx->dead &&
	    vgru_flush_held(ctx, max(range->start, res->start),
			    min(range->end, res->end),
			    mmu_notifier_range_blockable(range)))
		atomic64_inc(&ctx->stats.device_invalidations);
	mutex_unlock(&ctx->lock);
	return true;
}

static const struct mmu_interval_notifier_ops vgru_res_mni_ops = {
	.invalidate = vgru_res_invalidate,
};

/*
 * Whether an invalidation overlapped the resolution since @seq: its
 * sequence moved, or an entry it stored in ctx->held (@recorded) was
 * forgotten.  Under ctx->lock.
 */
static bool vgru_res_changed(struct vgru_resolution *res, unsigned long seq,
			     bool recorded, const struct vgru_xlate *xl,
			     unsigned int nx)
{
	struct vgru_ctx *ctx = res->ctx;
	unsigned int i;

	if (mmu_interval_read_retry(&res->notifier, seq))
		return true;
	if (ctx->held_all)
		return false;
	if (!recorded)
		return true;	/* skipped for held_all, cleared since */
	for (i = 0; i < nx; i++)
		if (!xa_load(xl[i].huge ? &ctx->held_huge : &ctx->held,
			     xl[i].va >> (xl[i].huge ? VGRU_HUGE_SHIFT :
						   PAGE_SHIFT)))
			return true;
	return false;
}

/* Count a retry; true once the resolution has used up its retries. */
static bool vgru_res_retry(struct vgru_ctx *ctx, unsigned long va,
			   unsigned int *retries)
{
	trace_vgru_retry(ctx->id, va);
	atomic64_inc(&ctx->stats.retries);
	atomic64_inc(&ctx->vdev->counters.retries);
	if ((*retries)++ < VGRU_MAX_RETRIES)
		return false;
	atomic64_inc(&ctx->stats.retries_exhausted);
	return true;
}

/* Why @va cannot be resolved: -EPERM for a write to a read-only mapping. */
static int vgru_fault_error(struct mm_struct *mm, unsigned long va, bool write,
			    int err)
{
	struct vm_area_struct *vma = vma_lookup(mm, va);

	if (write && vma && (vma->vm_flags & VM_READ) &&
	    !(vma->vm_flags & VM_WRITE))
		return -EPERM;
	if (err == -ENOMEM || err == -EINTR || err == -EAGAIN)
		return err;
	return -EFAULT;
}

/*
 * A writable translation lets the device write behind the CPU's back:
 * fault the pages in for write first, as a CPU write would, so that their
 * PTEs are dirty (or MADV_FREE and reclaim would drop the device's data)
 * and copy-on-write is broken.  Returns how many pages from @va on are
 * now writable, or -errno for @va itself.  Under the mmap lock (which a
 * userfaultfd page's handler may have us drop and retake).
 */
static long vgru_fault_in_write(struct mm_struct *mm, unsigned long va,
				unsigned long nr)
{
	bool unlocked = false;
	unsigned long i;
	int ret = 0;

	for (i = 0; i < nr; i++) {
		ret = fixup_user_fault(mm, va + i * PAGE_SIZE,
				       FAULT_FLAG_WRITE, &unlocked);
		if (ret)
			break;
	}
	return i ? i : vgru_fault_error(mm, va, true, ret);
}

/* Whether a snapshot entry gives the device the access it needs. */
static bool vgru_pfn_usable(unsigned long hpfn, bool write)
{
	if (!(hpfn & HMM_PFN_VALID) || (hpfn & HMM_PFN_ERROR))
		return false;
	return !write || (hpfn & HMM_PFN_WRITE);
}

/*
 * The translations of a snapshot: with @around every usable page of the
 * block (a page of a PMD-mapped huge page as its whole 2 MiB), else the run
 * of usable pages from @va on.  Returns how many.
 */
static unsigned int vgru_collect(const struct vgru_block *b,
				 const unsigned long *hpfns, unsigned long end,
				 bool write, struct vgru_xlate *xl)
{
	unsigned long npages = (end - b->start) >> PAGE_SHIFT;
	unsigned long i = b->around ? 0 : (b->va - b->start) >> PAGE_SHIFT;
	unsigned long pva, hva;
	unsigned int nx = 0;
	phys_addr_t pa;

	for (; i < npages; i++) {
		pva = b->start + i * PAGE_SIZE;
		if (!vgru_pfn_usable(hpfns[i], write)) {
			if (!b->around)
				break;
			continue;
		}
		pa = page_to_phys(hmm_pfn_to_page(hpfns[i]));
		if (b->around && hmm_pfn_to_map_order(hpfns[i]) ==
		    VGRU_HUGE_SHIFT - PAGE_SHIFT) {
			/* one mapping, one access: the whole PMD goes in */
			hva = pva & ~(VGRU_HUGE_SIZE - 1);
			xl[nx++] = (struct vgru_xlate){
				.va = hva, .pa = pa - (pva - hva), .huge = true,
			};
			i = ((hva + VGRU_HUGE_SIZE - b->start) >> PAGE_SHIFT) - 1;
			continue;
		}
		xl[nx++] = (struct vgru_xlate){ .va = pva, .pa = pa };
	}
	return nx;
}

/*
 * Whether the PTE of @va is dirty.  A write fault drops the other pages
 * of its block in writable only then: the device writes behind the CPU's
 * back, and a clean page (MADV_FREE) could be dropped with its data.  A
 * clean one goes in read-only; a device write to it faults and dirties
 * it.  (A 2 MiB block entry always holds the faulting page, dirtied.)
 * Under the mmap lock.
 */
static bool vgru_pte_dirty(struct mm_struct *mm, unsigned long va)
{
	spinlock_t *ptl;		/* the page table lock, from follow_pte() */
	pte_t *ptep;
	bool dirty;

	if (follow_pte(mm, va, &ptep, &ptl))
		return false;
	__acquire(ptl);		/* follow_pte() returned it locked */
	dirty = pte_dirty(*ptep) && pte_write(*ptep);
	pte_unmap_unlock(ptep, ptl);
	return dirty;
}

/* Whether translation @x covers the page @va. */
static bool vgru_xlate_covers(const struct vgru_xlate *x, unsigned long va)
{
	return x->huge ? (va & ~(VGRU_HUGE_SIZE - 1)) == x->va : x->va == va;
}

/*
 * Resolve block @b and drop its translations into the device TLB: the
 * page b->va, faulted in if need be (with @nr_in pages from it for a
 * write), and the other present pages of the block with the needed
 * access.  With @fault, answer that fault under the same lock hold, so
 * that the command goes on only with its translation in.  @hpfns and @xl
 * hold a page each of the block.  The caller holds a user of ctx->mm.
 * Returns the number of translations dropped in, or -errno.
 */
static long vgru_resolve(struct vgru_ctx *ctx, const struct vgru_block *b,
			 unsigned long nr_in, bool write,
			 const struct vgru_fault_id *fault,
			 unsigned long *hpfns, struct vgru_xlate *xl)
{
	struct mm_struct *mm = ctx->mm;
	unsigned long va = b->va, ti = (b->va - b->start) >> PAGE_SHIFT;
	struct vgru_resolution res = {
		.ctx = ctx, .start = b->start, .end = b->end,
	};
	struct hmm_range range = {
		.notifier = &res.notifier,
		.start = b->start,
		.hmm_pfns = hpfns,
	};
	unsigned int retries = 0, passes = 0, nx = 0, i, huge;
	bool recorded, unlocked = false;
	int untracked;
	long n, ret;

	ret = mmu_interval_notifier_insert(&res.notifier, mm, res.start,
					   res.end - res.start,
					   &vgru_res_mni_ops);
	if (ret)
		return ret;

	for (;;) {
		if (READ_ONCE(ctx->dead)) {
			ret = -ESRCH;
			break;
		}
		range.end = res.end;
		range.notifier_seq = mmu_interval_read_begin(&res.notifier);
		mmap_read_lock(mm);
		if (write) {
			n = vgru_fault_in_write(mm, va, nr_in);
			if (n < 0) {
				mmap_read_unlock(mm);
				ret = n;
				trace_vgru_page_lookup(ctx->id, va, ret);
				break;
			}
			if (!b->around)
				range.end = va + n * PAGE_SIZE;
		}
		ret = hmm_range_fault(&range);
		if (!ret && !vgru_pfn_usable(hpfns[ti], write)) {
			if (hpfns[ti] & HMM_PFN_ERROR)
				ret = -EFAULT;
			else if (passes++ >= VGRU_FREE_PASSES &&
				 vgru_res_retry(ctx, va, &retries))
				ret = -EAGAIN;
			else
				/* a userfaultfd page waits for its handler */
				ret = fixup_user_fault(mm, va,
						       write ? FAULT_FLAG_WRITE : 0,
						       &unlocked);
			if (ret)
				ret = vgru_fault_error(mm, va, write, ret);
			mmap_read_unlock(mm);
			if (ret) {
				trace_vgru_page_lookup(ctx->id, va, ret);
				break;
			}
			continue;	/* and take the snapshot again */
		}
		if (!ret) {
			nx = vgru_collect(b, hpfns, range.end, write, xl);
			for (i = 0; i < nx; i++)
				xl[i].write = write &&
					(!b->around ||
					 vgru_xlate_covers(&xl[i], va) ||
					 vgru_pte_dirty(mm, xl[i].va));
		}
		mmap_read_unlock(mm);
		/* our own write fault-in (copy-on-write) moved the sequence */
		if (ret == -EBUSY && write && passes++ < VGRU_FREE_PASSES)
			continue;
		if (ret && ret != -EBUSY) {
			ret = ret == -ENOMEM ? -ENOMEM : -EFAULT;
			trace_vgru_page_lookup(ctx->id, va, ret);
			break;
		}
		if (!ret) {
			trace_vgru_page_lookup(ctx->id, va, 0);

			/* before ctx->lock: see ctx->held rules */
			recorded = !READ_ONCE(ctx->held_all);
			untracked = 0;
			for (i = 0; i < nx && !untracked; i++)
				untracked = xl[i].huge ?
					vgru_held_record(ctx, &ctx->held_huge,
							 xl[i].va >> VGRU_HUGE_SHIFT) :
					vgru_held_record(ctx, &ctx->held,
							 xl[i].va >> PAGE_SHIFT);
			if (READ_ONCE(vgru_inject_resolve_delay_us))
				fsleep(READ_ONCE(vgru_inject_resolve_delay_us));

			mutex_lock(&ctx->lock);
			if (ctx->dead) {
				mutex_unlock(&ctx->lock);
				ret = -ESRCH;
				break;
			}
			if (!ctx->held_all &&
			    (untracked ||
			     atomic_read(&ctx->nr_held) > ctx->vdev->held_max))
				vgru_held_overflow(ctx);
			if (!vgru_res_changed(&res, range.notifier_seq,
					      recorded, xl, nx)) {
				huge = 0;
				for (i = 0; i < nx; i++) {
					vgru_tlb_dropin(ctx->vdev, ctx->id,
							xl[i].va, xl[i].pa,
							xl[i].write, xl[i].huge);
					huge += xl[i].huge;
				}
				atomic64_add(nx, &ctx->stats.dropins);
				atomic64_add(huge, &ctx->stats.huge_dropins);
				if (b->around)
					atomic64_add(nx - 1,
						     &ctx->stats.around_dropins);
				if (fault)
					vgru_fault_respond(ctx->vdev, ctx->id,
							   fault->cb,
							   fault->seq, 0);
				mutex_unlock(&ctx->lock);
				ret = nx;
				break;
			}
			mutex_unlock(&ctx->lock);
		}
		if (vgru_res_retry(ctx, va, &retries)) {
			ret = -EAGAIN;
			break;
		}
		/* a prefault racing endless invalidations still ends */
		if (!fault && signal_pending(current)) {
			ret = -EINTR;
			break;
		}
	}
	mmu_interval_notifier_remove(&res.notifier);
	if (fault)
		trace_vgru_resolve_end(ctx->id, fault->cb, va,
				       ret < 0 ? ret : 0, ret < 0 ? 0 : ret,
				       retries);
	return ret;
}

/*
 * Prefault: resolve up to @nr (at most VGRU_MAP_CHUNK) pages from the page
 * @va on, faulting each in.  Returns how many, from @va on, were dropped
 * in, or -errno for @va itself.
 */
long vgru_ctx_map(struct vgru_ctx *ctx, unsigned long va, unsigned long nr,
		  bool write)
{
	unsigned long hpfns[VGRU_MAP_CHUNK];
	struct vgru_xlate xl[VGRU_MAP_CHUNK];
	struct vgru_block b = {
		.start = va, .end = va + nr * PAGE_SIZE, .va = va,
	};

	return vgru_resolve(ctx, &b, nr, write, NULL, hpfns, xl);
}

static int vgru_ctx_resolve(struct vgru_ctx *ctx,
			    const struct vgru_fault_id *fault, u64 va,
			    bool write)
{
	unsigned long k = READ_ONCE(ctx->fault_around);
	struct vm_area_struct *vma;
	struct vgru_block b;
	long n;

	trace_vgru_resolve_start(ctx->id, fault->cb, va, write);
	if (va >= TASK_SIZE_MAX || !mmget_not_zero(ctx->mm)) {
		/* -ESRCH: the process is exiting */
		n = va >= TASK_SIZE_MAX ? -EFAULT : -ESRCH;
		trace_vgru_resolve_end(ctx->id, fault->cb, va, n, 0, 0);
		return n;
	}
	b.va = va & PAGE_MASK;
	b.start = ALIGN_DOWN(b.va, k * PAGE_SIZE);
	b.end = min_t(unsigned long, b.start + k * PAGE_SIZE, TASK_SIZE_MAX);
	b.around = true;
	if (k > 1) {
		/* the block stays inside the faulting page's mapping */
		mmap_read_lock(ctx->mm);
		vma = vma_lookup(ctx->mm, b.va);
		if (vma) {
			b.start = max(b.start, vma->vm_start);
			b.end = min(b.end, vma->vm_end);
		} else {
			b.start = b.va;
			b.end = b.va + PAGE_SIZE;
		}
		mmap_read_unlock(ctx->mm);
	}
	n = vgru_resolve(ctx, &b, 1, write, fault, ctx->fw_hpfns, ctx->fw_xl);
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
	if (ret) {
		atomic64_inc(&ctx->stats.fault_errors);
		atomic64_inc(&vdev->counters.fault_errors);
		mutex_lock(&ctx->lock);
		if (!ctx->dead)
			vgru_fault_respond(vdev, ctx->id, cb, pf->seq, ret);
		mutex_unlock(&ctx->lock);
	}
	vgru_latency_record(vdev, pf->received_ns);
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
