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
 */

#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/mm.h>
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

	mmdrop(ctx->mm);
	kfree(ctx);
}

static void vgru_ctx_put(struct vgru_ctx *ctx)
{
	kref_put(&ctx->ref, vgru_ctx_free);
}

/* ---- invalidation --------------------------------------------------------- */

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
		vgru_tlb_invalidate(ctx->vdev, ctx->id, range->start,
				    range->end - range->start);
		trace_vgru_invalidate(ctx->id, range->start, range->end,
				      range->event);
		atomic64_inc(&ctx->stats.invalidations);
		atomic64_inc(&ctx->vdev->counters.invalidations);
	}
	mutex_unlock(&ctx->lock);
	return true;
}

static const struct mmu_interval_notifier_ops vgru_mni_ops = {
	.invalidate = vgru_invalidate,
};

/* ---- fault resolution ----------------------------------------------------- */

/*
 * Look the page up in the process, without keeping a reference.  Returns
 * its physical address, or -EFAULT (nothing mapped there, or not memory
 * the device may reach) or -EPERM (a write to a read-only mapping).
 */
static int vgru_lookup_page(struct mm_struct *mm, unsigned long va,
			    bool write, phys_addr_t *pa)
{
	struct vm_area_struct *vma;
	struct page *page;
	long n;

	mmap_read_lock(mm);
	n = get_user_pages_remote(mm, va, 1, write ? FOLL_WRITE : 0, &page,
				  NULL, NULL);
	if (n != 1) {
		vma = vma_lookup(mm, va);
		mmap_read_unlock(mm);
		if (write && vma && (vma->vm_flags & VM_READ) &&
		    !(vma->vm_flags & VM_WRITE))
			return -EPERM;
		return n == -ENOMEM ? -ENOMEM : -EFAULT;
	}
	mmap_read_unlock(mm);
	*pa = page_to_phys(page);
	put_page(page);
	return 0;
}

static int vgru_ctx_resolve(struct vgru_ctx *ctx, u32 cb, u64 va, bool write)
{
	unsigned long page_va = va & PAGE_MASK;
	unsigned long seq;
	phys_addr_t pa;
	int ret;

	trace_vgru_resolve_start(ctx->id, cb, va, write);
	if (va >= TASK_SIZE_MAX)
		return -EFAULT;
	if (!mmget_not_zero(ctx->mm))
		return -ESRCH;		/* the process is exiting */

	for (;;) {
		seq = mmu_interval_read_begin(&ctx->notifier);
		ret = vgru_lookup_page(ctx->mm, page_va, write, &pa);
		trace_vgru_page_lookup(ctx->id, page_va, ret);
		if (ret)
			break;
		if (inject_resolve_delay_us)
			fsleep(inject_resolve_delay_us);

		mutex_lock(&ctx->lock);
		if (ctx->dead) {
			mutex_unlock(&ctx->lock);
			ret = -ESRCH;
			break;
		}
		if (!mmu_interval_read_retry(&ctx->notifier, seq)) {
			vgru_tlb_dropin(ctx->vdev, ctx->id, page_va, pa, write);
			atomic64_inc(&ctx->stats.dropins);
			vgru_fault_respond(ctx->vdev, ctx->id, cb, 0);
			mutex_unlock(&ctx->lock);
			break;
		}
		mutex_unlock(&ctx->lock);
		trace_vgru_retry(ctx->id, page_va);
		atomic64_inc(&ctx->stats.retries);
		atomic64_inc(&ctx->vdev->counters.retries);
	}
	/* the last user of an exiting mm: tear it down elsewhere */
	mmput_async(ctx->mm);
	return ret;
}

/* Called from the IRQ thread for every fault record, in queue order. */
void vgru_handle_fault(struct vgru_dev *vdev, u64 va, u32 ctx_id, u32 tag,
		       u32 cb, u32 flags)
{
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
	ret = vgru_ctx_resolve(ctx, cb, va, flags & VGRU_FAULT_WRITE);
	if (ret) {
		atomic64_inc(&ctx->stats.fault_errors);
		atomic64_inc(&vdev->counters.fault_errors);
		mutex_lock(&ctx->lock);
		if (!ctx->dead)
			vgru_fault_respond(vdev, ctx->id, cb, ret);
		mutex_unlock(&ctx->lock);
	}
	vgru_ctx_put(ctx);
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
		};

		return copy_to_user(uarg, &st, sizeof(st)) ? -EFAULT : 0;
	}
	default:
		return -ENOTTY;
	}
}

const struct file_operations vgru_fops = {
	.owner		= THIS_MODULE,
	.open		= vgru_open,
	.release	= vgru_release,
	.mmap		= vgru_mmap,
	.unlocked_ioctl	= vgru_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};
