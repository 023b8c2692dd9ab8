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

#include <linux/cc_platform.h>
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/hmm.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/shmem_fs.h>
#include <linux/swiotlb.h>
#include <linux/userfaultfd_k.h>

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
 * invalidated it; a superset is safe, a missing page is not.  An entry's
 * value is xa_mk_value(0) while it carries no mapping, then the bus
 * address of its translation | VGRU_HELD_MAPPED (| VGRU_HELD_WRITE): the
 * DMA mapping the device was given.  The rules:
 *
 * - An entry is stored (if absent) after the resolution's
 *   mmu_interval_read_begin() and before ctx->lock is taken for the
 *   drop-in, with GFP_KERNEL: ctx->lock is taken by the notifiers from
 *   reclaim, so nothing may allocate under it.  Its mapping is installed
 *   under ctx->lock with the drop-in (replacing a value allocates nothing).
 * - Entries are removed only under ctx->lock, by a flush, and only after
 *   the device invalidation completed: then, and only then, their
 *   mappings are unmapped (no DMA uses them any more).  Context teardown,
 *   after DISABLE, unmaps what is left.
 * - So a drop-in checks, under ctx->lock, that its resolution's sequence
 *   did not move and that its entries are still there: otherwise a flush
 *   ran since its snapshot, and it starts over.  An entry stored for a
 *   resolution that retries or fails stays: a superset.
 * - Every drop-in is recorded, however many pages the context holds, so
 *   the record stays complete and a notifier range flushes only what is
 *   recorded in it: a range elsewhere never takes a running copy's
 *   blocks, even when the context has recorded more than the device can
 *   hold (vdev->held_max: most of those were evicted long ago).
 * - Past VGRU_HELD_SLACK times held_max entries a resolution trims the
 *   record first (vgru_held_trim), so that the mappings kept, the walk of
 *   a notifier range, and what a later munmap must unmap stay bounded by
 *   the TLB's size.
 */
#define VGRU_HELD_MAPPED	1UL
#define VGRU_HELD_WRITE		2UL
#define VGRU_HELD_SLACK		4

/* Read-only translations map for device reads only; writable ones both ways (atomics). */
static enum dma_data_direction vgru_dma_dir(bool write)
{
	return write ? DMA_BIDIRECTIONAL : DMA_TO_DEVICE;
}

static struct device *vgru_dma_dev(struct vgru_ctx *ctx)
{
	return &ctx->vdev->pdev->dev;
}

static unsigned long vgru_xl_index(const struct vgru_xlate *x)
{
	return x->va >> (x->huge ? VGRU_HUGE_SHIFT : PAGE_SHIFT);
}

/* Unmap the mapping of a held entry's value, if it has one. */
static void vgru_held_unmap(struct vgru_ctx *ctx, bool huge, void *entry)
{
	unsigned long v = xa_to_value(entry);

	if (v & VGRU_HELD_MAPPED)
		dma_unmap_page(vgru_dma_dev(ctx), v & PAGE_MASK,
			       huge ? VGRU_HUGE_SIZE : PAGE_SIZE,
			       vgru_dma_dir(v & VGRU_HELD_WRITE));
}

/*
 * Forget the entries [first, last] of @xa (held or held_huge) and unmap
 * their mappings: one walk, under the xarray's lock, let go every
 * VGRU_FORGET_BATCH entries.  Under ctx->lock, once the device no longer
 * uses them.
 */
#define VGRU_FORGET_BATCH	64

static void vgru_held_forget(struct vgru_ctx *ctx, struct xarray *xa,
			     unsigned long first, unsigned long last)
{
	XA_STATE(xas, xa, first);
	unsigned int n = 0;
	void *entry;

	xas_lock(&xas);
	xas_for_each(&xas, entry, last) {
		xas_store(&xas, NULL);
		vgru_held_unmap(ctx, xa == &ctx->held_huge, entry);
		if (++n % VGRU_FORGET_BATCH)
			continue;
		xas_pause(&xas);
		xas_unlock(&xas);
		xas_lock(&xas);
	}
	xas_unlock(&xas);
	atomic_sub(n, &ctx->nr_held);
}

/*
 * The entry of translation @x in @xas's xarray, @xas moved there: one step
 * from the previous page of a run, a walk from the root otherwise.
 */
static void *vgru_held_seek(struct xa_state *xas, const struct vgru_xlate *x)
{
	unsigned long idx = vgru_xl_index(x);

	/* a step needs a node: not after xas_set(), an error or the head */
	if (idx == xas->xa_index + 1 && !xas_not_node(xas->xa_node))
		return xas_next(xas);
	xas_set(xas, idx);
	return xas_load(xas);
}

/*
 * Record that the device may hold the translations of @xl in @xa (held,
 * or with @huge held_huge): one lock hold and one walk per run of pages.
 * -ENOMEM.
 */
static int vgru_held_record(struct vgru_ctx *ctx, struct xarray *xa,
			    bool huge, const struct vgru_xlate *xl,
			    unsigned int nx)
{
	XA_STATE(xas, xa, 0);
	unsigned int i = 0, added = 0;

	do {
		xas_lock(&xas);
		for (; i < nx; i++) {
			if (xl[i].huge != huge ||
			    vgru_held_seek(&xas, &xl[i]))
				continue;	/* there already, maybe mapped */
			xas_store(&xas, xa_mk_value(0));
			if (xas_error(&xas))
				break;
			added++;
		}
		xas_unlock(&xas);
	} while (xas_nomem(&xas, GFP_KERNEL));
	atomic_add(added, &ctx->nr_held);
	return xas_error(&xas);
}

/*
 * Load the ctx->held entry of each translation into x->cur: values, not
 * objects, so they stay valid after RCU; under ctx->lock nothing removes
 * them meanwhile.
 */
static void vgru_held_load(struct vgru_ctx *ctx, struct vgru_xlate *xl,
			   unsigned int nx)
{
	XA_STATE(small, &ctx->held, 0);
	XA_STATE(huge, &ctx->held_huge, 0);
	unsigned int i;

	rcu_read_lock();
	for (i = 0; i < nx; i++)
		xl[i].cur = vgru_held_seek(xl[i].huge ? &huge : &small, &xl[i]);
	rcu_read_unlock();
}

/* ---- invalidation --------------------------------------------------------- */

/*
 * The last index of @xa in [@first, @last] that holds an entry, @first
 * holding one: one walk of the leaves (a search from the root per entry
 * cost as much as forgetting them).  Under ctx->lock.
 */
static unsigned long vgru_held_last(struct xarray *xa, unsigned long first,
				    unsigned long last)
{
	XA_STATE(xas, xa, first);
	unsigned long top = first;
	void *entry;

	rcu_read_lock();
	xas_for_each(&xas, entry, last) {
		if (!xas_retry(&xas, entry))
			top = xas.xa_index;
	}
	rcu_read_unlock();
	return top;
}

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

	if (xa_find(&ctx->held, &idx, last, XA_PRESENT)) {
		lo = (u64)idx << PAGE_SHIFT;
		top = vgru_held_last(&ctx->held, idx, last);
		hi = (u64)(top + 1) << PAGE_SHIFT;
	}
	idx = start >> VGRU_HUGE_SHIFT;
	if (xa_find(&ctx->held_huge, &idx, hlast, XA_PRESENT)) {
		/* any overlap removes the whole 2 MiB entry */
		lo = min_t(u64, lo, (u64)idx << VGRU_HUGE_SHIFT);
		top = vgru_held_last(&ctx->held_huge, idx, hlast);
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
 * Retries: a resolution checks its snapshot with the interval notifier of
 * its region (struct vgru_region), so only an invalidation of that region
 * moves the sequence it checks; and since a region is wider than a block,
 * the region logs the ranges its invalidations cover, and a moved sequence
 * means a retry only when one of them overlaps the block.  The context's
 * whole-mm notifier removes what the device holds.  The two callbacks of
 * one invalidation run in either order before the page tables change, so
 * each removes what the device holds in its range, and a drop-in, under
 * ctx->lock, also starts over when an entry it stored in ctx->held is
 * gone: then a flush ran between the snapshot and the drop-in that this
 * sequence does not show yet.  After VGRU_MAX_RETRIES retries the fault
 * fails with -EAGAIN.
 */
#define VGRU_MAX_RETRIES	16
/*
 * Passes a resolution takes for itself, not counted as retries: the first
 * fault-in, and the snapshot its own write fault-in (copy-on-write) made
 * stale.  Any further one means the page went away again: a retry.
 */
#define VGRU_FREE_PASSES	2
/*
 * Snapshots taken again because an invalidation of another part of the
 * region interrupted hmm_range_fault(), before such a pass counts as a
 * retry.
 */
#define VGRU_FREE_REWALKS	16

/* the pages a resolution looks at */
struct vgru_block {
	unsigned long start, end;	/* page aligned, snapshot range */
	unsigned long va;		/* the page that must resolve */
	unsigned long rstart, rend;	/* a new region's range */
	bool around;			/* all usable pages, not the run from va */
	bool fault_in;			/* absent pages faulted in too, */
	unsigned long fault_from;	/* ... those from here on only */
};

/*
 * A region: an interval notifier over a 64 MiB-aligned range (clamped to
 * the mapping it was created in), made at the first resolution there and
 * kept, so that a resolution inserts and removes no notifier of its own.
 * Its callback moves its sequence, logs the range (the last
 * VGRU_REGION_LOG ones, under ctx->lock) and removes what the device
 * holds there.  A region wholly unmapped is marked, and reaped by the
 * fault work once no fault is pending (or by the next lookup), never in
 * the callback; past VGRU_MAX_REGIONS, the least recently used region
 * nobody uses goes.  When the context ends, every region goes, a region
 * in use by its last user.  A block (at most 2 MiB, aligned) always lies
 * in one region.
 */
#define VGRU_REGION_SHIFT	26
#define VGRU_REGION_LOG		32
#define VGRU_MAX_REGIONS	64

struct vgru_region {
	struct mmu_interval_notifier notifier;
	struct vgru_ctx *ctx;
	unsigned long start, end;
	struct list_head link;		/* ctx->regions, under region_lock */
	unsigned int users;		/* resolutions, under region_lock */
	bool unmapped;			/* wholly unmapped: reap it */
	/* under ctx->lock: invalidations seen, the last ranges */
	unsigned long gen;
	struct {
		unsigned long start, end;
	} log[VGRU_REGION_LOG];
};

static bool vgru_region_invalidate(struct mmu_interval_notifier *mni,
				   const struct mmu_notifier_range *range,
				   unsigned long cur_seq)
{
	struct vgru_region *r = container_of(mni, struct vgru_region,
					     notifier);
	struct vgru_ctx *ctx = r->ctx;
	unsigned long start = max(range->start, r->start);
	unsigned long end = min(range->end, r->end);

	if (mmu_notifier_range_blockable(range))
		mutex_lock(&ctx->lock);
	else if (!mutex_trylock(&ctx->lock))
		return false;
	mmu_interval_set_seq(mni, cur_seq);
	r->log[r->gen % VGRU_REGION_LOG].start = start;
	r->log[r->gen % VGRU_REGION_LOG].end = end;
	WRITE_ONCE(r->gen, r->gen + 1);
	if (range->event == MMU_NOTIFY_UNMAP && start == r->start &&
	    end == r->end)
		WRITE_ONCE(r->unmapped, true);
	/* the context's notifier may have run first, before our drop-in */
	if (!ctx->dead &&
	    vgru_flush_held(ctx, start, end,
			    mmu_notifier_range_blockable(range)))
		atomic64_inc(&ctx->stats.device_invalidations);
	mutex_unlock(&ctx->lock);
	return true;
}

static const struct mmu_interval_notifier_ops vgru_region_mni_ops = {
	.invalidate = vgru_region_invalidate,
};

/*
 * Whether an invalidation the region logged since @gen overlapped
 * [start, end) (or the log lost track).  Under ctx->lock.
 */
static bool vgru_region_overlapped(const struct vgru_region *r,
				   unsigned long gen, unsigned long start,
				   unsigned long end)
{
	unsigned long g;

	if (r->gen - gen > VGRU_REGION_LOG)
		return true;
	for (g = gen; g != r->gen; g++)
		if (r->log[g % VGRU_REGION_LOG].start < end &&
		    start < r->log[g % VGRU_REGION_LOG].end)
			return true;
	return false;
}

/* Take @r out of the context and remove its notifier.  Not in a callback. */
static void vgru_region_free(struct vgru_region *r)
{
	mmu_interval_notifier_remove(&r->notifier);
	kfree(r);
}

/*
 * The region a resolution of @b checks its snapshots with, made if need
 * be, with a user counted; put it with vgru_region_put().  ERR_PTR(-ENOMEM),
 * or -ESRCH once the context ended.
 */
static struct vgru_region *vgru_region_get(struct vgru_ctx *ctx,
					   const struct vgru_block *b)
{
	struct vgru_region *r, *tmp, *victim = NULL;
	LIST_HEAD(reap);
	int ret;

	mutex_lock(&ctx->region_lock);
	if (ctx->regions_closed) {
		r = ERR_PTR(-ESRCH);
		goto out;
	}
	list_for_each_entry_safe(r, tmp, &ctx->regions, link) {
		if (READ_ONCE(r->unmapped) && !r->users) {
			list_move(&r->link, &reap);
			ctx->nr_regions--;
			continue;
		}
		if (r->start <= b->start && b->end <= r->end &&
		    !READ_ONCE(r->unmapped)) {
			list_move(&r->link, &ctx->regions);
			r->users++;
			goto out;
		}
		if (!r->users)
			victim = r;	/* the least recently used so far */
	}
	if (ctx->nr_regions >= VGRU_MAX_REGIONS && victim) {
		list_move(&victim->link, &reap);
		ctx->nr_regions--;
	}
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r) {
		r = ERR_PTR(-ENOMEM);
		goto out;
	}
	r->ctx = ctx;
	r->start = b->rstart;
	r->end = b->rend;
	ret = mmu_interval_notifier_insert(&r->notifier, ctx->mm, r->start,
					   r->end - r->start,
					   &vgru_region_mni_ops);
	if (ret) {
		kfree(r);
		r = ERR_PTR(ret);
		goto out;
	}
	r->users = 1;
	list_add(&r->link, &ctx->regions);
	ctx->nr_regions++;
	atomic64_inc(&ctx->regions_created);
out:
	mutex_unlock(&ctx->region_lock);
	list_for_each_entry_safe(victim, tmp, &reap, link)
		vgru_region_free(victim);
	return r;
}

/*
 * Remove the regions nobody uses that are wholly unmapped, or all of them
 * once the context ends (@closing: those in use go with their last put).
 */
static void vgru_regions_drop(struct vgru_ctx *ctx, bool closing)
{
	struct vgru_region *r, *tmp;
	LIST_HEAD(reap);

	mutex_lock(&ctx->region_lock);
	if (closing)
		ctx->regions_closed = true;
	list_for_each_entry_safe(r, tmp, &ctx->regions, link) {
		if (r->users || !(closing || READ_ONCE(r->unmapped)))
			continue;
		list_move(&r->link, &reap);
		ctx->nr_regions--;
	}
	mutex_unlock(&ctx->region_lock);
	list_for_each_entry_safe(r, tmp, &reap, link)
		vgru_region_free(r);
}

static void vgru_region_put(struct vgru_ctx *ctx, struct vgru_region *r)
{
	bool last;

	mutex_lock(&ctx->region_lock);
	last = !--r->users && ctx->regions_closed;
	if (last) {
		list_del(&r->link);
		ctx->nr_regions--;
	}
	mutex_unlock(&ctx->region_lock);
	if (last)
		vgru_region_free(r);
}

/* The context ends (or is torn down): its regions go.  Not under ctx->lock. */
void vgru_fault_ctx_end(struct vgru_ctx *ctx)
{
	vgru_regions_drop(ctx, true);
}

/*
 * Whether an invalidation overlapped the resolution of @b since @seq and
 * @gen: one its region logged overlaps the block, or an entry it stored
 * in ctx->held was forgotten (or, for a mapping it reuses, replaced).
 * Leaves each translation's entry in x->cur.  Under ctx->lock.
 */
static bool vgru_res_changed(struct vgru_ctx *ctx, struct vgru_region *r,
			     const struct vgru_block *b, unsigned long seq,
			     unsigned long gen, struct vgru_xlate *xl,
			     unsigned int nx)
{
	unsigned int i;

	if (mmu_interval_read_retry(&r->notifier, seq) &&
	    vgru_region_overlapped(r, gen, b->start, b->end))
		return true;
	vgru_held_load(ctx, xl, nx);
	for (i = 0; i < nx; i++)
		if (!xl[i].cur || (xl[i].reused && xl[i].cur != xl[i].reused))
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
	struct page *page;

	for (; i < npages; i++) {
		pva = b->start + i * PAGE_SIZE;
		if (!vgru_pfn_usable(hpfns[i], write)) {
			if (!b->around)
				break;
			continue;
		}
		page = hmm_pfn_to_page(hpfns[i]);
		if (b->around && hmm_pfn_to_map_order(hpfns[i]) ==
		    VGRU_HUGE_SHIFT - PAGE_SHIFT) {
			/* one mapping, one access: the whole PMD goes in */
			hva = pva & ~(VGRU_HUGE_SIZE - 1);
			xl[nx++] = (struct vgru_xlate){
				.va = hva, .huge = true,
				.page = pfn_to_page(page_to_pfn(page) -
						    ((pva - hva) >> PAGE_SHIFT)),
			};
			i = ((hva + VGRU_HUGE_SIZE - b->start) >> PAGE_SHIFT) - 1;
			continue;
		}
		xl[nx++] = (struct vgru_xlate){ .va = pva, .page = page };
	}
	return nx;
}

/* Whether translation @x covers the page @va. */
static bool vgru_xlate_covers(const struct vgru_xlate *x, unsigned long va)
{
	return x->huge ? (va & ~(VGRU_HUGE_SIZE - 1)) == x->va : x->va == va;
}

/*
 * Which translations go in writable, for a write: the faulting page's (and
 * without fault-around every one: all were faulted in for write), and the
 * other pages of its block whose PTE is dirty and writable.  The device
 * writes behind the CPU's back, and a clean page (MADV_FREE) could be
 * dropped with its data: a clean one goes in read-only, and a device write
 * to it faults and dirties it.  (A 2 MiB entry is writable only when it
 * holds the faulting page, dirtied.)  One follow_pte() per page table, its
 * PTEs read under its lock.  Under the mmap lock.
 */
static void vgru_mark_write(struct mm_struct *mm, struct vgru_xlate *xl,
			    unsigned int nx, bool write, bool around,
			    unsigned long va)
{
	unsigned long base, pmd_end;
	spinlock_t *ptl;		/* the page table lock, from follow_pte() */
	unsigned int i = 0;
	pte_t *ptep, pte;

	while (i < nx) {
		xl[i].write = write && (!around || vgru_xlate_covers(&xl[i], va));
		if (!write || xl[i].write || xl[i].huge ||
		    follow_pte(mm, xl[i].va, &ptep, &ptl)) {
			i++;
			continue;
		}
		__acquire(ptl);		/* follow_pte() returned it locked */
		base = xl[i].va;
		pmd_end = (base | ~PMD_MASK) + 1;
		for (; i < nx && !xl[i].huge && xl[i].va < pmd_end; i++) {
			pte = ptep_get(ptep + ((xl[i].va - base) >> PAGE_SHIFT));
			xl[i].write = xl[i].va == va ||
				      (pte_dirty(pte) && pte_write(pte));
		}
		pte_unmap_unlock(ptep, ptl);
	}
}

/* Unmap the mappings a resolution made and did not hand to ctx->held. */
static void vgru_xl_unmap(struct vgru_ctx *ctx, struct vgru_xlate *xl,
			  unsigned int nx)
{
	unsigned int i;

	for (i = 0; i < nx; i++) {
		if (!xl[i].mapped)
			continue;
		dma_unmap_page(vgru_dma_dev(ctx), xl[i].dma,
			       xl[i].huge ? VGRU_HUGE_SIZE : PAGE_SIZE,
			       vgru_dma_dir(xl[i].write));
		xl[i].mapped = false;
	}
}

/*
 * Give each translation its bus address: the mapping its ctx->held entry
 * already has, when that one allows the access (the device must see the
 * same bus address, or a read drop-in would replace a writable entry),
 * else a new dma_map_page() of the page, a 2 MiB one whole.  A 2 MiB
 * mapping the device cannot use (bus address not 2 MiB aligned) falls
 * back to the 4 KiB page of @va.  Before ctx->lock: mapping may allocate.
 * Returns 0, or -ENOMEM with none of its mappings left.
 */
static int vgru_xl_map(struct vgru_ctx *ctx, struct vgru_xlate *xl,
		       unsigned int nx, unsigned long va)
{
	struct device *dev = vgru_dma_dev(ctx);
	struct vgru_xlate *x;
	unsigned int i;
	unsigned long v;
	void *entry;

	/* looked at now, checked under ctx->lock later */
	vgru_held_load(ctx, xl, nx);
	for (i = 0; i < nx; i++) {
		x = &xl[i];
		x->mapped = false;
		x->reused = NULL;
		entry = x->cur;
		v = entry ? xa_to_value(entry) : 0;
		if ((v & VGRU_HELD_MAPPED) &&
		    (!x->write || (v & VGRU_HELD_WRITE))) {
			x->dma = v & PAGE_MASK;
			x->reused = entry;
			continue;
		}
		x->dma = dma_map_page(dev, x->page, 0,
				      x->huge ? VGRU_HUGE_SIZE : PAGE_SIZE,
				      vgru_dma_dir(x->write));
		if (dma_mapping_error(dev, x->dma))
			goto err;
		x->mapped = true;
		if (x->huge && !IS_ALIGNED(x->dma, VGRU_HUGE_SIZE)) {
			vgru_xl_unmap(ctx, x, 1);
			if (!vgru_xlate_covers(x, va))
				va = x->va;
			x->page = pfn_to_page(page_to_pfn(x->page) +
					      ((va - x->va) >> PAGE_SHIFT));
			x->va = va;
			x->huge = false;
			x->cur = xa_load(&ctx->held, vgru_xl_index(x));
			i--;		/* again, as a 4 KiB translation */
		}
	}
	return 0;
err:
	vgru_xl_unmap(ctx, xl, i);
	return -ENOMEM;
}

/*
 * Hand the resolution's mappings to ctx->held and put its translations in
 * the list.  Under ctx->lock, after vgru_res_changed(): every entry is
 * there.  An entry that got a mapping allowing the access since
 * vgru_xl_map() looked keeps it, and ours goes.  A read-only mapping that
 * a writable one replaces may still be in use (a CB keeps the
 * translations it took): the page is invalidated first, and its mapping
 * unmapped once that completed.
 */
static void vgru_xl_install(struct vgru_ctx *ctx, struct vgru_xlate *xl,
			    unsigned int nx)
{
	XA_STATE(small, &ctx->held, 0);
	XA_STATE(huge, &ctx->held_huge, 0);
	struct xa_state *xas;
	struct vgru_xlate *x;
	unsigned int i;
	unsigned long v;
	bool in_huge;

	for (i = 0; i < nx; i++) {
		x = &xl[i];
		v = xa_to_value(x->cur);
		if (x->mapped && (v & VGRU_HELD_MAPPED)) {
			if (!x->write || (v & VGRU_HELD_WRITE)) {
				vgru_xl_unmap(ctx, x, 1);
				x->dma = v & PAGE_MASK;
			} else {
				/*
				 * The same bus address (no IOMMU): the drop-in
				 * upgrades the entry in place, and the old
				 * mapping's unmap frees no address.
				 */
				if (x->dma != (v & PAGE_MASK))
					vgru_tlb_invalidate(ctx->vdev, ctx->id,
							    x->va, x->huge ?
							    VGRU_HUGE_SIZE :
							    PAGE_SIZE, true);
				vgru_held_unmap(ctx, x->huge, x->cur);
			}
		}
	}
	/* the slots exist: replacing their values allocates nothing */
	for (xas = &small; xas; xas = xas == &small ? &huge : NULL) {
		in_huge = xas == &huge;
		xas_lock(xas);
		for (i = 0; i < nx; i++) {
			x = &xl[i];
			if (!x->mapped || x->huge != in_huge)
				continue;
			vgru_held_seek(xas, x);
			xas_store(xas, xa_mk_value(x->dma | VGRU_HELD_MAPPED |
						   (x->write ? VGRU_HELD_WRITE : 0)));
		}
		xas_unlock(xas);
	}
	for (i = 0; i < nx; i++) {
		xl[i].mapped = false;
		vgru_tl_add_xlate(ctx, &xl[i]);
	}
}

/*
 * Answer, in the same list, the other pending faults that the
 * translations cover (a write fault only by a writable one): their CBs
 * go on without a pass of their own.  Under ctx->lock.
 */
static void vgru_answer_covered(struct vgru_ctx *ctx,
				const struct vgru_xlate *xl, unsigned int nx)
{
	const struct vgru_pending_fault *pf;
	unsigned long cb;
	unsigned int i;

	spin_lock_irq(&ctx->pending_lock);
	for_each_set_bit(cb, &ctx->pending, ctx->vdev->nr_cbs) {
		if (vgru_tl_full(ctx))
			break;
		pf = &ctx->pending_fault[cb];
		for (i = 0; i < nx; i++)
			if (vgru_xlate_covers(&xl[i], pf->va & PAGE_MASK) &&
			    (xl[i].write || !(pf->flags & VGRU_FAULT_WRITE)))
				break;
		if (i == nx)
			continue;
		vgru_tl_add_resp(ctx, cb, pf->seq, 0, false);
		__clear_bit(cb, &ctx->pending);
	}
	spin_unlock_irq(&ctx->pending_lock);
}

/*
 * Snapshot @range (of block @b), faulting its absent pages from
 * b->fault_from on in with @fault_in.  hmm_range_fault() faults every page
 * from the first that needs it to the end of its walk (a missing page
 * table: all of it), so the pages below b->fault_from are a snapshot of
 * their own.  For a write, only absent pages are faulted in for write: a
 * present read-only page (KSM, copy-on-write after fork, the zero page)
 * stays shared, since nothing says the device will write it; so the write
 * pass runs from the first absent page to the next present one (after
 * b->va), and @range ends there.  Returns as hmm_range_fault().
 */
static int vgru_block_fault(struct hmm_range *range,
			    const struct vgru_block *b, bool fault_in,
			    bool write)
{
	unsigned long i, n = (range->end - range->start) >> PAGE_SHIFT;
	unsigned long ti = (b->va - range->start) >> PAGE_SHIFT;
	unsigned long first = fault_in ?
			      (max(b->fault_from, range->start) -
			       range->start) >> PAGE_SHIFT : n;
	struct hmm_range part = *range;
	int ret;

	part.default_flags = 0;
	part.pfn_flags_mask = 0;
	if (first && first < n) {
		part.end = range->start + first * PAGE_SIZE;
		ret = hmm_range_fault(&part);
		if (ret)
			return ret;
		part.start = part.end;
		part.end = range->end;
		part.hmm_pfns = range->hmm_pfns + first;
	}
	part.default_flags = first < n && !write ? HMM_PFN_REQ_FAULT : 0;
	ret = hmm_range_fault(&part);
	if (ret || first >= n || !write)
		return ret;
	while (first < n && (range->hmm_pfns[first] & HMM_PFN_VALID))
		first++;
	if (first == n)
		return 0;
	for (i = first; i < n; i++) {
		if (i > ti && (range->hmm_pfns[i] & HMM_PFN_VALID))
			break;
		range->hmm_pfns[i] = range->hmm_pfns[i] & HMM_PFN_VALID ? 0 :
				     HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE;
	}
	range->end = range->start + i * PAGE_SIZE;
	part.start = range->start + first * PAGE_SIZE;
	part.end = range->end;
	part.hmm_pfns = range->hmm_pfns + first;
	part.default_flags = 0;
	part.pfn_flags_mask = HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE;
	return hmm_range_fault(&part);
}

/*
 * Keep the tracking bounded: see VGRU_HELD_SLACK.  What a copy still uses
 * stays: the block @b being resolved and, in the fault work, the recent
 * fault-around blocks (the other operand's), each with the block of the
 * same size below it.  Everything else is flushed, one command per
 * stretch between them that holds pages.  A flush of the whole context
 * would take the other operand's block too, which the copy then faults on
 * again (and its stream restarts small); and the blocks below are still
 * in the device TLB, where the new ones replace them set by set, in the
 * order they went in.  ctx->held is complete, so flushing it by ranges
 * is exact.
 */
static void vgru_held_trim(struct vgru_ctx *ctx, const struct vgru_block *b,
			   bool fault_work)
{
	u32 cap = ctx->vdev->held_max * VGRU_HELD_SLACK;
	struct { unsigned long start, end; } keep[VGRU_FA_STREAMS + 1], t;
	unsigned long from = 0, len;
	unsigned int n = 0, i, j;

	if (atomic_read(&ctx->nr_held) < cap)
		return;
	keep[n].start = b->start - min(b->start, b->end - b->start);
	keep[n++].end = b->end;
	for (i = 0; fault_work && i < VGRU_FA_STREAMS; i++) {
		t.start = ctx->fa_recent[i].start;
		t.end = ctx->fa_recent[i].end;
		if (t.start >= t.end)
			continue;
		/* a block cut short (a mapping's end) follows a full one */
		len = max(t.end - t.start,
			  ctx->fa_recent[i].pages << PAGE_SHIFT);
		keep[n].start = t.start - min(t.start, len);
		keep[n++].end = t.end;
	}
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && keep[j - 1].start > keep[j].start; j--) {
			t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	mutex_lock(&ctx->lock);
	if (!ctx->dead && atomic_read(&ctx->nr_held) >= cap) {
		for (i = 0; i < n; i++) {
			if (keep[i].start > from)
				vgru_flush_held(ctx, from, keep[i].start, true);
			from = max(from, keep[i].end);
		}
		vgru_flush_held(ctx, from, ULONG_MAX, true);
	}
	mutex_unlock(&ctx->lock);
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
	struct hmm_range range = {
		.start = b->start,
		.hmm_pfns = hpfns,
	};
	unsigned int retries = 0, passes = 0, rewalks = 0, nx = 0, i, huge;
	bool unlocked = false, fault_in = b->fault_in;
	struct vgru_region *r;
	unsigned long gen;
	long n, ret;

	r = vgru_region_get(ctx, b);
	if (IS_ERR(r)) {
		ret = PTR_ERR(r);
		if (fault)
			trace_vgru_resolve_end(ctx->id, fault->cb, va, ret, 0, 0);
		return ret;
	}
	range.notifier = &r->notifier;

	for (;;) {
		if (READ_ONCE(ctx->dead)) {
			ret = -ESRCH;
			break;
		}
		range.end = b->end;
		/* before the sequence: a later log entry is only conservative */
		gen = READ_ONCE(r->gen);
		range.notifier_seq = mmu_interval_read_begin(&r->notifier);
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
		ret = vgru_block_fault(&range, b, fault_in, write);
		if (ret && ret != -EBUSY && fault_in) {
			/* a page of the block cannot be faulted in: present ones only */
			mmap_read_unlock(mm);
			fault_in = false;
			continue;
		}
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
			vgru_mark_write(mm, xl, nx, write, b->around, va);
		}
		mmap_read_unlock(mm);
		/* another part of the region changed: not this block's retry */
		if (ret == -EBUSY && rewalks < VGRU_FREE_REWALKS) {
			mutex_lock(&ctx->lock);
			n = vgru_region_overlapped(r, gen, b->start, b->end);
			mutex_unlock(&ctx->lock);
			if (!n) {
				rewalks++;
				continue;
			}
		}
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

			vgru_held_trim(ctx, b, fault);
			if (READ_ONCE(vgru_inject_resolve_delay_us))
				fsleep(READ_ONCE(vgru_inject_resolve_delay_us));
			/*
			 * No DMA mapping is made or kept after the context
			 * ended: remove() may unbind the device right after.
			 */
			mutex_lock(&ctx->end_lock);
			if (ctx->ended) {
				mutex_unlock(&ctx->end_lock);
				ret = -ESRCH;
				break;
			}
			ret = vgru_xl_map(ctx, xl, nx, va);
			huge = 0;
			for (i = 0; i < nx; i++)
				huge += xl[i].huge;
			/* before ctx->lock: see ctx->held rules */
			if (!ret)
				ret = vgru_held_record(ctx, &ctx->held, false,
						       xl, nx);
			if (!ret && huge)
				ret = vgru_held_record(ctx, &ctx->held_huge,
						       true, xl, nx);
			if (ret) {
				vgru_xl_unmap(ctx, xl, nx);
				mutex_unlock(&ctx->end_lock);
				ret = -ENOMEM;
				trace_vgru_page_lookup(ctx->id, va, ret);
				break;
			}

			mutex_lock(&ctx->lock);
			if (ctx->dead) {
				mutex_unlock(&ctx->lock);
				vgru_xl_unmap(ctx, xl, nx);
				mutex_unlock(&ctx->end_lock);
				ret = -ESRCH;
				break;
			}
			if (!vgru_res_changed(ctx, r, b, range.notifier_seq,
					      gen, xl, nx)) {
				vgru_tl_begin(ctx);
				vgru_xl_install(ctx, xl, nx);
				atomic64_add(nx, &ctx->stats.dropins);
				atomic64_add(huge, &ctx->stats.huge_dropins);
				if (b->around)
					atomic64_add(nx - 1,
						     &ctx->stats.around_dropins);
				if (fault)
					vgru_tl_add_resp(ctx, fault->cb,
							 fault->seq, 0,
							 fault->caller);
				vgru_answer_covered(ctx, xl, nx);
				/* before the answer: its waiter may look at once */
				if (fault)
					vgru_latency_record(ctx->vdev,
							    fault->received_ns);
				vgru_tl_run(ctx);
				mutex_unlock(&ctx->lock);
				mutex_unlock(&ctx->end_lock);
				ret = nx;
				break;
			}
			mutex_unlock(&ctx->lock);
			vgru_xl_unmap(ctx, xl, nx);
			mutex_unlock(&ctx->end_lock);
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
	vgru_region_put(ctx, r);
	if (fault)
		trace_vgru_resolve_end(ctx->id, fault->cb, va,
				       ret < 0 ? ret : 0, ret < 0 ? 0 : ret,
				       retries);
	return ret;
}

/*
 * The region a block's resolution would make: its 2 MiB-aligned range,
 * clamped to @vma (so that invalidations of other mappings leave it alone)
 * when there is one.  Under the mmap lock.
 */
static void vgru_block_region(struct vgru_block *b,
			      const struct vm_area_struct *vma)
{
	b->rstart = ALIGN_DOWN(b->va, 1UL << VGRU_REGION_SHIFT);
	b->rend = min_t(unsigned long, b->rstart + (1UL << VGRU_REGION_SHIFT),
			TASK_SIZE_MAX);
	if (vma) {
		b->rstart = max(b->rstart, vma->vm_start);
		b->rend = min(b->rend, vma->vm_end);
	}
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

	mmap_read_lock(ctx->mm);
	vgru_block_region(&b, vma_lookup(ctx->mm, va));
	mmap_read_unlock(ctx->mm);
	/* one region's notifier checks the whole block */
	b.end = min(b.end, b.rend);
	return vgru_resolve(ctx, &b, (b.end - va) >> PAGE_SHIFT, write, NULL,
			    hpfns, xl);
}

/*
 * Whether fault-around faults the absent pages of its block in, as the CPU
 * would on touching them: in process memory (anonymous private or shmem),
 * where that only allocates zeroed pages, and not where a userfaultfd
 * handler decides what a page holds.  File pages stay present-only.
 * Only for a stream of faults (vgru_fault_stream()).
 */
static bool vgru_vma_fault_around_in(struct vm_area_struct *vma)
{
	if (userfaultfd_armed(vma))
		return false;
	if (vma_is_anonymous(vma))
		return !(vma->vm_flags & VM_SHARED);
	return shmem_file(vma->vm_file);
}

/*
 * Whether the block [start, end) continues a stream of faults: it is the
 * block of a recent fault again (a second fault there: the rest is coming
 * too), or the one right after or before it.  Then fault-around faults its
 * absent pages in, as readahead would; a lone fault stays one page, as
 * cheap as it can be.  A copy runs two streams at once (source and
 * destination), so a few recent blocks are kept.  Returns the stream's
 * record (the caller stores the block it resolves there), or NULL; with
 * @forward, the block is the one right after the stream's last.  Fault
 * work only.
 */
static struct vgru_fa_stream *vgru_fault_stream(struct vgru_ctx *ctx,
						unsigned long start,
						unsigned long end,
						bool *forward)
{
	struct vgru_fa_stream *f;
	unsigned int i;

	for (i = 0; i < VGRU_FA_STREAMS; i++) {
		f = &ctx->fa_recent[i];
		if (f->start == start || f->end == start || f->start == end) {
			*forward = f->end == start;
			return f;
		}
	}
	f = &ctx->fa_recent[ctx->fa_slot++ % VGRU_FA_STREAMS];
	*f = (struct vgru_fa_stream){ .start = start, .end = end };
	return NULL;
}

/*
 * Whether the page tables map @va (by a PTE, or a huge PMD or PUD): a
 * hint, read without the page table lock (follow_pte() would trip on a
 * huge PMD).  Under the mmap lock, which keeps the tables in place.
 */
static bool vgru_page_mapped(struct mm_struct *mm, unsigned long va)
{
	pgd_t *pgd = pgd_offset(mm, va);
	p4d_t *p4d;
	pud_t *pud, pudv;
	pmd_t *pmd, pmdv;
	pte_t *ptep;
	bool mapped;

	if (pgd_none(*pgd) || pgd_bad(*pgd))
		return false;
	p4d = p4d_offset(pgd, va);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		return false;
	pud = pud_offset(p4d, va);
	pudv = READ_ONCE(*pud);
	if (pud_none(pudv))
		return false;
	if (pud_leaf(pudv))
		return true;
	if (pud_bad(pudv))
		return false;
	pmd = pmd_offset(pud, va);
	pmdv = READ_ONCE(*pmd);
	if (pmd_none(pmdv) || !pmd_present(pmdv))
		return false;
	if (pmd_leaf(pmdv))
		return true;
	if (pmd_bad(pmdv))
		return false;
	ptep = pte_offset_map(pmd, va);
	mapped = pte_present(ptep_get(ptep));
	pte_unmap(ptep);
	return mapped;
}

/*
 * A stream into fresh memory (its faulting page absent: a copy into or
 * out of a new buffer) grows its block as readahead does: each block
 * right after the last doubles, up to half of what the context can hold
 * (so that a copy's two operands' blocks fit the device TLB together) and
 * VGRU_FAULT_AROUND_MAX.  A stream over present pages keeps K: its pages
 * only need translations, and K pages per fault stays exact.  Under the
 * mmap lock.
 */
static void vgru_fault_stream_grow(struct vgru_ctx *ctx, struct vgru_block *b,
				   const struct vm_area_struct *vma,
				   struct vgru_fa_stream *f, bool forward,
				   unsigned long k)
{
	unsigned long cap = min_t(unsigned long, VGRU_FAULT_AROUND_MAX,
				  rounddown_pow_of_two(ctx->vdev->held_max / 2));
	unsigned long pages = k;

	/*
	 * Absent pages are faulted in ahead of the access only, as readahead
	 * reads: not below the faulting page, unless it is the top page of
	 * the block right below the stream's (a stream running down).  Two
	 * buffers mapped back to back are one mapping: a source's first block
	 * would otherwise map the zero page into the end of the destination,
	 * which the destination's writes then fault on one page at a time.
	 */
	b->fault_from = f->start == b->end && b->va + PAGE_SIZE == b->end ?
			b->start : b->va;
	if (forward && f->pages && vgru_page_mapped(ctx->mm, b->va))
		forward = false;	/* present: the stream goes on at K */
	if (forward && f->pages)
		pages = max(min(2 * f->pages, cap), k);
	if (pages > k)
		b->end = min3(b->start + pages * PAGE_SIZE, vma->vm_end,
			      b->rend);
	f->start = b->start;
	f->end = b->end;
	f->pages = pages;
}

static int vgru_ctx_resolve(struct vgru_ctx *ctx,
			    const struct vgru_fault_id *fault, u64 va,
			    bool write)
{
	unsigned long k = READ_ONCE(ctx->fault_around);
	struct vgru_fa_stream *f;
	struct vm_area_struct *vma;
	struct vgru_block b = { };
	bool forward;
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
	mmap_read_lock(ctx->mm);
	vma = vma_lookup(ctx->mm, b.va);
	vgru_block_region(&b, vma);
	if (k > 1) {
		/* the block stays inside the faulting page's mapping */
		if (vma) {
			b.start = max(b.start, vma->vm_start);
			b.end = min(b.end, vma->vm_end);
			f = vgru_vma_fault_around_in(vma) ?
			    vgru_fault_stream(ctx, b.start, b.end, &forward) :
			    NULL;
			if (f) {
				b.fault_in = true;
				vgru_fault_stream_grow(ctx, &b, vma, f, forward,
						       k);
			}
		} else {
			b.start = b.va;
			b.end = b.va + PAGE_SIZE;
		}
	}
	mmap_read_unlock(ctx->mm);
	n = vgru_resolve(ctx, &b, 1, write, fault, ctx->fw_hpfns, ctx->fw_xl);
	/* the last user of an exiting mm: tear it down elsewhere */
	mmput_async(ctx->mm);
	return n < 0 ? n : 0;
}

/*
 * Resolve one fault record and answer it: drop-in and restart, or FAIL.
 * Its latency is recorded just before the answer goes to the device (in
 * vgru_resolve() on success): the command's waiter, free the moment the
 * answer is in, may read the histogram right away.
 */
static void vgru_resolve_one(struct vgru_ctx *ctx, u32 cb,
			     const struct vgru_pending_fault *pf, bool caller)
{
	struct vgru_fault_id fault = {
		.cb = cb, .seq = pf->seq, .received_ns = pf->received_ns,
		.caller = caller,
	};
	struct vgru_dev *vdev = ctx->vdev;
	int ret;

	ret = vgru_ctx_resolve(ctx, &fault, pf->va,
			       pf->flags & VGRU_FAULT_WRITE);
	if (ret) {
		atomic64_inc(&ctx->stats.fault_errors);
		atomic64_inc(&vdev->counters.fault_errors);
		vgru_latency_record(vdev, pf->received_ns);
		mutex_lock(&ctx->lock);
		if (!ctx->dead) {
			vgru_tl_begin(ctx);
			vgru_tl_add_resp(ctx, cb, pf->seq, ret, false);
			vgru_tl_run(ctx);
		}
		mutex_unlock(&ctx->lock);
	}
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
		mutex_lock(&ctx->fault_lock);
		spin_lock_irq(&ctx->pending_lock);
		cb = find_next_bit(&ctx->pending, nr_cbs, ctx->next_cb);
		if (cb >= nr_cbs)
			cb = find_first_bit(&ctx->pending, nr_cbs);
		if (cb < nr_cbs) {
			pf = ctx->pending_fault[cb];
			__clear_bit(cb, &ctx->pending);
		}
		spin_unlock_irq(&ctx->pending_lock);
		if (cb < nr_cbs) {
			ctx->next_cb = cb + 1;
			if (!READ_ONCE(ctx->dead))
				vgru_resolve_one(ctx, cb, &pf, false);
		}
		mutex_unlock(&ctx->fault_lock);
		if (cb >= nr_cbs)
			break;
		cond_resched();
	}
	/* off the faults' path: regions unmapped meanwhile */
	vgru_regions_drop(ctx, false);
}

/* Take @cb's pending fault into @pf, if it has one. */
static bool vgru_claim_fault(struct vgru_ctx *ctx, u32 cb,
			     struct vgru_pending_fault *pf)
{
	bool pending;

	spin_lock_irq(&ctx->pending_lock);
	pending = __test_and_clear_bit(cb, &ctx->pending);
	if (pending)
		*pf = ctx->pending_fault[cb];
	spin_unlock_irq(&ctx->pending_lock);
	return pending;
}

/*
 * VGRU_IOC_RESOLVE: the caller, waiting for @cb, answers its fault itself.
 * Its record may still be in the event queue (posted without interrupt
 * for VGRU_DF_CALL_OS, or its interrupt not taken yet): the queue is
 * drained here first.  If the fault work is resolving (it may be taking
 * this fault too), it is left to that work, which is queued again so
 * that it cannot have missed the fault just drained.  1 if @cb's fault
 * was answered here, else 0.
 */
int vgru_resolve_cb(struct vgru_ctx *ctx, u32 cb)
{
	struct vgru_pending_fault pf;
	bool claimed;

	if (!test_bit(cb, &ctx->pending)) {
		/* live: remove() stops the device after ending each context */
		mutex_lock(&ctx->lock);
		if (!ctx->dead)
			vgru_events_drain(ctx->vdev, ctx, cb);
		mutex_unlock(&ctx->lock);
	}
	/* never wait behind the fault work: the caller may have a deadline */
	if (!mutex_trylock(&ctx->fault_lock)) {
		vgru_ctx_queue_fault_work(ctx);
		return 0;
	}
	claimed = vgru_claim_fault(ctx, cb, &pf);
	if (claimed && !READ_ONCE(ctx->dead)) {
		atomic64_inc(&ctx->stats.caller_resolves);
		vgru_resolve_one(ctx, cb, &pf, true);
	}
	mutex_unlock(&ctx->fault_lock);
	return claimed;
}

/* ---- context set-up and teardown ------------------------------------------ */

/* The context's translation list buffer.  -ENOMEM. */
int vgru_fault_ctx_init(struct vgru_ctx *ctx)
{
	BUILD_BUG_ON(VGRU_FAULT_AROUND_MAX > VGRU_TL_MAX_TRANS);
	ctx->tl = dma_alloc_coherent(vgru_dma_dev(ctx),
				     VGRU_TL_SIZE(VGRU_TL_MAX_TRANS,
						  VGRU_TL_MAX_RESP),
				     &ctx->tl_dma, GFP_KERNEL);
	return ctx->tl ? 0 : -ENOMEM;
}

/*
 * After the context was fenced on the device (or never enabled): no DMA
 * uses its translations, so every mapping left goes, and the list buffer.
 * Called when the context ends (under ctx->lock, ctx->dead set: nothing
 * builds a list any more), so that nothing of the device's DMA outlives
 * remove(), and again from the final teardown, which finds nothing left
 * unless the context never started.
 */
void vgru_fault_ctx_free(struct vgru_ctx *ctx)
{
	vgru_held_forget(ctx, &ctx->held, 0, ULONG_MAX);
	vgru_held_forget(ctx, &ctx->held_huge, 0, ULONG_MAX);
	if (ctx->tl)
		dma_free_coherent(vgru_dma_dev(ctx),
				  VGRU_TL_SIZE(VGRU_TL_MAX_TRANS,
					       VGRU_TL_MAX_RESP),
				  ctx->tl, ctx->tl_dma);
	ctx->tl = NULL;
}

/*
 * The device reads and writes user pages asynchronously, behind the CPU:
 * a bounce buffer (forced swiotlb, or memory encryption, which bounces
 * every DMA through shared memory) would hand it copies that nobody
 * syncs.  An IOMMU, or none, is fine: translations are dma_map_page()
 * results.
 */
int vgru_fault_dma_check(struct pci_dev *pdev)
{
	if (is_swiotlb_force_bounce(&pdev->dev) ||
	    cc_platform_has(CC_ATTR_MEM_ENCRYPT)) {
		dev_err(&pdev->dev,
			"DMA bounce buffering (swiotlb=force or memory encryption) cannot work for a device that mirrors user pages: refused\n");
		return -ENODEV;
	}
	return 0;
}
