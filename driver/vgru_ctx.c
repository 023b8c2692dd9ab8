// SPDX-License-Identifier: GPL-2.0
/*
 * vgru contexts: one per open file of /dev/vgruN, and the table of devices
 * open() finds them in.  Fault records are handed to vgru_fault.c.
 *
 * Completion notices are counted per context; VGRU_IOC_WAIT and poll()
 * sleep on that count.
 */

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/sched/mm.h>
#include <linux/sched/user.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vgru.h"
#include "vgru_trace.h"

static int vgru_set_fault_around(const char *val,
				 const struct kernel_param *kp)
{
	unsigned int pages;
	int ret = kstrtouint(val, 0, &pages);

	if (ret)
		return ret;
	if (!is_power_of_2(pages) || pages > VGRU_FAULT_AROUND_MAX)
		return -EINVAL;
	return param_set_uint(val, kp);
}

static const struct kernel_param_ops vgru_fault_around_ops = {
	.set = vgru_set_fault_around,
	.get = param_get_uint,
};

/*
 * 64: the fault-around sweep (bench/run, figure fault_around, 16 MiB copy
 * of CPU-populated memory, microseconds per page, session 20, loaded
 * machine, 5 runs, CPU first touch 19-61 us) gave K = 16 16-32, 64 9.8-
 * 14.5, 128 7.3-8.7, 512 620-730 (thrashed the 256-entry TLB of the
 * time; the default device has 2048 entries since session 22).  128 is
 * a little faster per page of a long copy but doubles the translations
 * a lone fault on populated memory maps (isolated populated fault ~370
 * us at 64); a stream into fresh memory grows its block anyway, up to
 * half of what the context can hold (512 on the default device,
 * vgru_fault_stream_grow).  A copy's two operands at 64 take an eighth of
 * the TLB, leaving room for its completion record and other contexts.
 */
static unsigned int fault_around_pages = 64;
module_param_cb(fault_around_pages, &vgru_fault_around_ops,
		&fault_around_pages, 0644);
MODULE_PARM_DESC(fault_around_pages,
		 "Pages a device fault resolves: the naturally aligned block around the faulting page (present pages; absent ones too in anonymous or shmem memory when faults stream); a power of two up to 512, the default of new contexts (VGRU_IOC_FAULT_AROUND sets one context's) (default 64: per page 0.2-0.7x the CPU's first touch on a cold copy of populated memory; a stream into fresh memory doubles its block up to half of what the context can hold, 512 on the default device; two operands' blocks of 64 take an eighth of the default 2048-entry TLB)");

/*
 * Open contexts per user, as inotify's max_user_instances: a device has
 * few contexts (16 by default), and one user must not take them all.
 */
static unsigned int max_contexts_per_user = 8;
module_param(max_contexts_per_user, uint, 0644);
MODULE_PARM_DESC(max_contexts_per_user,
		 "Contexts one user (real uid, all vgru devices together) may have open; open() fails with EMFILE past it, unless the opener has CAP_SYS_RESOURCE (root is counted, not limited); 0 = no limit (default 8)");

/* real uid -> its open contexts (xa_mk_value), under vgru_users_lock */
static DEFINE_XARRAY(vgru_users);
static DEFINE_MUTEX(vgru_users_lock);

/* Charge the opener's user for @ctx: -EMFILE past the limit. */
static int vgru_user_charge(struct vgru_ctx *ctx)
{
	unsigned int limit = READ_ONCE(max_contexts_per_user);
	struct user_struct *user = get_current_user();
	unsigned long uid = __kuid_val(user->uid), n;
	void *entry;
	int ret = 0;

	mutex_lock(&vgru_users_lock);
	entry = xa_load(&vgru_users, uid);
	n = entry ? xa_to_value(entry) : 0;
	if (limit && n >= limit && !capable(CAP_SYS_RESOURCE))
		ret = -EMFILE;
	else
		ret = xa_err(xa_store(&vgru_users, uid, xa_mk_value(n + 1),
				      GFP_KERNEL));
	mutex_unlock(&vgru_users_lock);
	if (ret)
		free_uid(user);
	else
		ctx->user = user;
	return ret;
}

static void vgru_user_uncharge(struct vgru_ctx *ctx)
{
	unsigned long uid = __kuid_val(ctx->user->uid), n;

	mutex_lock(&vgru_users_lock);
	n = xa_to_value(xa_load(&vgru_users, uid));
	if (n > 1)
		xa_store(&vgru_users, uid, xa_mk_value(n - 1), GFP_KERNEL);
	else
		xa_erase(&vgru_users, uid);
	mutex_unlock(&vgru_users_lock);
	free_uid(ctx->user);
	ctx->user = NULL;
}

/*
 * A tag for a new context of @vdev: never 0, never one a live context
 * has (after 2^32 opens the counter wraps).  Under ctx_lock.
 */
static u32 vgru_next_tag(struct vgru_dev *vdev)
{
	struct vgru_ctx *other;
	unsigned long idx;
	u32 tag;

again:
	tag = ++vdev->next_tag;
	if (!tag)
		goto again;
	xa_for_each(&vdev->contexts, idx, other)
		if (other->tag == tag)
			goto again;
	return tag;
}

/* resolves faults and tears contexts down; see vgru.h for the rules */
static struct workqueue_struct *vgru_wq;

int vgru_ctx_module_init(void)
{
	/*
	 * Per CPU: the work runs where the interrupt came, woken like the
	 * IRQ thread was, not on another CPU that has to be woken first.  A
	 * work that sleeps (a slow page) lets the pool start another worker,
	 * so it stalls only its own context.  High priority: a device waits.
	 */
	vgru_wq = alloc_workqueue("vgru", WQ_HIGHPRI, 0);
	return vgru_wq ? 0 : -ENOMEM;
}

void vgru_ctx_module_exit(void)
{
	destroy_workqueue(vgru_wq);
	xa_destroy(&vgru_users);
}

static void vgru_ctx_free_work(struct work_struct *work)
{
	struct vgru_ctx *ctx = container_of(work, struct vgru_ctx, free_work);
	struct vgru_dev *vdev = ctx->vdev;

	vgru_fault_ctx_end(ctx);	/* regions its last resolutions left */
	vgru_fault_ctx_free(ctx);
	xa_destroy(&ctx->held);
	xa_destroy(&ctx->held_huge);
	kfree(ctx->fw_hpfns);
	kfree(ctx->fw_xl);
	mmdrop(ctx->mm);
	/* the IRQ handler may still be reading it under rcu_read_lock */
	kfree_rcu(ctx, rcu);
	/* the last access to vdev: remove() may go on */
	vgru_dev_put(vdev);
}

/* The last put may be the IRQ handler's: tear down in a work. */
static void vgru_ctx_free(struct kref *ref)
{
	struct vgru_ctx *ctx = container_of(ref, struct vgru_ctx, ref);

	INIT_WORK(&ctx->free_work, vgru_ctx_free_work);
	queue_work(vgru_wq, &ctx->free_work);
}

static void vgru_ctx_put(struct vgru_ctx *ctx)
{
	kref_put(&ctx->ref, vgru_ctx_free);
}

/* Drop @ctx's pending faults unanswered: its device is broken. */
static void vgru_ctx_fail_pending(struct vgru_ctx *ctx)
{
	unsigned long flags;
	int n;

	spin_lock_irqsave(&ctx->pending_lock, flags);
	n = hweight_long(ctx->pending);
	ctx->pending = 0;
	spin_unlock_irqrestore(&ctx->pending_lock, flags);
	atomic64_add(n, &ctx->stats.fault_errors);
	atomic64_add(n, &ctx->vdev->counters.fault_errors);
}

static void vgru_ctx_fault_work(struct work_struct *work)
{
	struct vgru_ctx *ctx = container_of(work, struct vgru_ctx, fault_work);

	if (vgru_hw_broken(ctx->vdev))
		vgru_ctx_fail_pending(ctx);
	else
		vgru_resolve_pending(ctx);
	/* the reference the IRQ handler gave this work when it queued it */
	vgru_ctx_put(ctx);
}

/*
 * The context an event record names, or NULL when the record outlived it
 * (its index reused or free).  Caller holds rcu_read_lock: a context is
 * freed an RCU grace period after the table lost it.
 */
static struct vgru_ctx *vgru_ctx_find_rcu(struct vgru_dev *vdev, u32 ctx_id,
					  u32 tag)
{
	struct vgru_ctx *ctx = xa_load(&vdev->contexts, ctx_id);

	return ctx && ctx->tag == tag ? ctx : NULL;
}

/*
 * Queue @ctx's fault work with a reference the caller took.  A work not
 * queued yet takes it.  One already queued has its own and will find the
 * pending faults; ours is dropped (maybe the last, if that work ran
 * meanwhile: the free is deferred, see above).
 */
static void vgru_ctx_queue_work_ref(struct vgru_ctx *ctx)
{
	if (!queue_work(vgru_wq, &ctx->fault_work))
		vgru_ctx_put(ctx);
}

/* Queue @ctx's fault work (VGRU_IOC_RESOLVE, which holds the file's). */
void vgru_ctx_queue_fault_work(struct vgru_ctx *ctx)
{
	kref_get(&ctx->ref);
	vgru_ctx_queue_work_ref(ctx);
}

/*
 * Called from a drain of the event queue for every fault record, in queue
 * order: put it in the CB's slot and queue the context's work, unless the
 * draining thread is @waiter, the CB's own, which resolves it next (a
 * record posted without interrupt for VGRU_DF_CALL_OS; any other one goes
 * to the work, which may then find it taken).  A record of a context that
 * was closed after the fault was queued is dropped.
 */
void vgru_handle_fault(struct vgru_dev *vdev, u64 va, u32 ctx_id, u32 tag,
		       u32 cb, u32 flags, u32 seq,
		       const struct vgru_waiter *waiter)
{
	struct vgru_ctx *ctx;

	trace_vgru_fault(ctx_id, cb, va, flags);
	rcu_read_lock();
	ctx = vgru_ctx_find_rcu(vdev, ctx_id, tag);
	if (ctx && (cb >= vdev->nr_cbs || READ_ONCE(ctx->dead) ||
		    !kref_get_unless_zero(&ctx->ref)))
		ctx = NULL;
	rcu_read_unlock();
	if (!ctx) {
		atomic64_inc(&vdev->counters.stale_faults);
		return;
	}

	atomic64_inc(&ctx->stats.faults);
	atomic64_inc(&vdev->counters.faults);
	spin_lock(&ctx->pending_lock);
	ctx->pending_fault[cb].va = va;
	ctx->pending_fault[cb].seq = seq;
	ctx->pending_fault[cb].flags = flags;
	ctx->pending_fault[cb].received_ns = local_clock();
	__set_bit(cb, &ctx->pending);
	spin_unlock(&ctx->pending_lock);
	if ((flags & VGRU_FAULT_CALL_OS) && waiter && waiter->ctx == ctx &&
	    waiter->cb == cb) {
		vgru_ctx_put(ctx);
		return;
	}
	vgru_ctx_queue_work_ref(ctx);
}

/*
 * Called from the IRQ handler for every notice record: count it and wake
 * the context's waiters.  A notice of a closed context is dropped.
 */
void vgru_handle_notice(struct vgru_dev *vdev, u32 ctx_id, u32 tag, u32 cb)
{
	struct vgru_ctx *ctx;

	rcu_read_lock();
	ctx = vgru_ctx_find_rcu(vdev, ctx_id, tag);
	if (ctx) {
		trace_vgru_notice(ctx_id, cb,
				  atomic64_inc_return(&ctx->stats.notices));
		atomic64_inc(&vdev->counters.notices);
		wake_up_interruptible_poll(&ctx->notice_wq,
					   EPOLLIN | EPOLLRDNORM);
	}
	rcu_read_unlock();
}

/* ---- devices ------------------------------------------------------------- */

/* minor -> vgru_dev, for open(); see the lifetime rules in vgru.h */
static DEFINE_XARRAY_ALLOC(vgru_devices);
static DEFINE_MUTEX(vgru_devices_lock);

struct vgru_dev *vgru_dev_get(unsigned int minor)
{
	struct vgru_dev *vdev;

	mutex_lock(&vgru_devices_lock);
	vdev = xa_load(&vgru_devices, minor);
	if (vdev)
		kref_get(&vdev->ref);
	mutex_unlock(&vgru_devices_lock);
	return vdev;
}

/* The last reference: only now may a new device take the minor. */
static void vgru_dev_release(struct kref *ref)
{
	struct vgru_dev *vdev = container_of(ref, struct vgru_dev, ref);

	mutex_lock(&vgru_devices_lock);
	xa_erase(&vgru_devices, vdev->minor);
	mutex_unlock(&vgru_devices_lock);
	pci_dev_put(vdev->pdev);
	kfree(vdev);
}

void vgru_dev_put(struct vgru_dev *vdev)
{
	kref_put(&vdev->ref, vgru_dev_release);
}

/* Give @vdev a minor; open() cannot find it before vgru_dev_publish(). */
int vgru_dev_add(struct vgru_dev *vdev)
{
	int ret = xa_alloc(&vgru_devices, &vdev->minor, NULL,
			   XA_LIMIT(0, VGRU_MAX_DEVICES - 1), GFP_KERNEL);

	if (ret)
		vdev->minor = VGRU_MAX_DEVICES;	/* none to free */
	return ret;
}

void vgru_dev_publish(struct vgru_dev *vdev)
{
	mutex_lock(&vgru_devices_lock);
	xa_store(&vgru_devices, vdev->minor, vdev, GFP_KERNEL);
	mutex_unlock(&vgru_devices_lock);
}

/*
 * End @ctx, once (release and remove may race; the loser waits for the
 * winner): no drop-in or answer after this, no command of it reaches
 * memory (vgru_ctx_fence), its notifier is gone and its index is free.
 * Its fault work is not waited for: it may be blocked in a page fault of
 * the very process that is closing us (exit closes a userfaultfd only
 * after our release); it answers nothing once the context is dead, and
 * holds its own reference.  @zap: the device is going away, take the
 * window out of every mapping too (a later touch gets SIGBUS).
 */
static void vgru_ctx_end(struct vgru_ctx *ctx, bool zap)
{
	struct vgru_dev *vdev = ctx->vdev;

	mutex_lock(&ctx->end_lock);
	if (ctx->ended) {
		mutex_unlock(&ctx->end_lock);
		return;
	}
	/* the file is not released yet: its mapping is alive */
	if (zap)
		unmap_mapping_range(ctx->mapping, 0, 0, 1);
	mutex_lock(&ctx->lock);
	WRITE_ONCE(ctx->dead, true);
	vgru_ctx_fence(vdev, ctx->id);
	/* fenced (or bus mastering off): its DMA mappings go now */
	vgru_fault_ctx_free(ctx);
	mutex_unlock(&ctx->lock);

	mmu_interval_notifier_remove(&ctx->notifier);
	vgru_fault_ctx_end(ctx);

	mutex_lock(&vdev->ctx_lock);
	xa_erase(&vdev->contexts, ctx->id);
	mutex_unlock(&vdev->ctx_lock);
	ctx->ended = true;
	mutex_unlock(&ctx->end_lock);
	/* waiters see vdev->gone */
	wake_up_interruptible_poll(&ctx->notice_wq, EPOLLERR | EPOLLHUP);
}

/*
 * remove(): open() finds @vdev no more (its minor stays taken until the
 * last reference goes), and every context is ended: waiters and later
 * ioctls get -ENODEV, window mappings are zapped, the files live on as
 * dead handles.  Nothing waits for a file to be closed.
 */
void vgru_dev_revoke(struct vgru_dev *vdev)
{
	struct vgru_ctx *ctx;
	unsigned long idx = 0;

	mutex_lock(&vgru_devices_lock);
	/* an allocating xarray keeps a NULL entry reserved */
	xa_store(&vgru_devices, vdev->minor, NULL, GFP_KERNEL);
	mutex_unlock(&vgru_devices_lock);

	/* after this no window fault maps the BAR and no open succeeds */
	mutex_lock(&vdev->ctx_lock);
	WRITE_ONCE(vdev->gone, true);
	mutex_unlock(&vdev->ctx_lock);

	for (;;) {
		/* a context in the table still has its file's reference */
		mutex_lock(&vdev->ctx_lock);
		ctx = xa_find(&vdev->contexts, &idx, ULONG_MAX, XA_PRESENT);
		if (ctx)
			kref_get(&ctx->ref);
		mutex_unlock(&vdev->ctx_lock);
		if (!ctx)
			break;
		vgru_ctx_end(ctx, true);
		vgru_ctx_put(ctx);
		idx++;
	}
}

/*
 * The device was marked broken (vgru_hw_set_broken): its contexts' pending
 * faults are dropped (the device runs nothing any more) and their waiters
 * woken to see it.
 */
void vgru_dev_fail_contexts(struct vgru_dev *vdev)
{
	struct vgru_ctx *ctx;
	unsigned long idx;

	/* contexts are freed an RCU grace period after leaving the table */
	rcu_read_lock();
	xa_for_each(&vdev->contexts, idx, ctx) {
		vgru_ctx_fail_pending(ctx);
		wake_up_interruptible_poll(&ctx->notice_wq, EPOLLERR);
	}
	rcu_read_unlock();
}

/* -ENODEV once the device is removed, -EIO while it is broken, else 0 */
static int vgru_ctx_failed(struct vgru_ctx *ctx)
{
	if (READ_ONCE(ctx->vdev->gone))
		return -ENODEV;
	return vgru_hw_broken(ctx->vdev) ? -EIO : 0;
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
	/* a command of a removed or broken device never ends: say so */
	ret = vgru_ctx_failed(ctx);
	if (ret)
		return ret;
	if (w.timeout_ns < 0)
		ret = wait_event_interruptible(ctx->notice_wq,
					       vgru_notices_changed(ctx, seen) ||
					       vgru_ctx_failed(ctx));
	else if (w.timeout_ns > 0)
		ret = wait_event_interruptible_hrtimeout(ctx->notice_wq,
							 vgru_notices_changed(ctx, seen) ||
							 vgru_ctx_failed(ctx),
							 ns_to_ktime(w.timeout_ns));
	/* not restarted: a restart would begin the timeout anew */
	if (ret == -ERESTARTSYS)
		return -EINTR;
	/*
	 * Before the notices: ending a context may post one, and the window
	 * the caller would then read is gone already.
	 */
	ret = vgru_ctx_failed(ctx);
	if (ret)
		return ret;

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
		n = vgru_ctx_map(ctx, va, nr, pf.flags & VGRU_PREFAULT_WRITE);
		if (n < 0) {
			ret = n;
			break;
		}
		atomic64_add(n, &ctx->stats.prefaults);
		va += n << PAGE_SHIFT;
		pf.done = min(va, end) - pf.addr;
		cond_resched();
	}
	/* a context ended under us: say why */
	if (ret && vgru_ctx_failed(ctx))
		ret = vgru_ctx_failed(ctx);
	trace_vgru_prefault(ctx->id, pf.addr, pf.len,
			    pf.flags & VGRU_PREFAULT_WRITE, pf.done, ret);
	if (put_user(pf.done, &uarg->done))
		return -EFAULT;
	return ret;
}

static long vgru_ioctl_resolve(struct vgru_ctx *ctx,
			       struct vgru_resolve __user *uarg)
{
	struct vgru_resolve r;
	int ret;

	if (copy_from_user(&r, uarg, sizeof(r)))
		return -EFAULT;
	if (r.cb >= ctx->vdev->nr_cbs || r.resolved || r.reserved[0] ||
	    r.reserved[1] || r.reserved[2])
		return -EINVAL;
	/* the waiter itself: a fault in is the opener's to take */
	if (current->mm != ctx->mm)
		return -EACCES;
	ret = vgru_ctx_failed(ctx);
	if (ret)
		return ret;
	ret = vgru_resolve_cb(ctx, r.cb);
	if (ret < 0)
		return ret;
	return put_user(ret, &uarg->resolved) ? -EFAULT : 0;
}

static long vgru_ioctl_fault_around(struct vgru_ctx *ctx,
				    struct vgru_fault_around __user *uarg)
{
	struct vgru_fault_around fa;

	if (copy_from_user(&fa, uarg, sizeof(fa)))
		return -EFAULT;
	if (fa.reserved0 || fa.reserved[0] || fa.reserved[1] ||
	    fa.reserved[2])
		return -EINVAL;
	if (fa.pages) {
		if (!is_power_of_2(fa.pages) ||
		    fa.pages > VGRU_FAULT_AROUND_MAX)
			return -EINVAL;
		WRITE_ONCE(ctx->fault_around, fa.pages);
	}
	fa.pages = READ_ONCE(ctx->fault_around);
	return put_user(fa.pages, &uarg->pages) ? -EFAULT : 0;
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
	if (vgru_hw_broken(vdev)) {
		vgru_dev_put(vdev);
		return -EIO;
	}
	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx) {
		vgru_dev_put(vdev);
		return -ENOMEM;
	}
	ctx->vdev = vdev;
	kref_init(&ctx->ref);
	mutex_init(&ctx->lock);
	mutex_init(&ctx->end_lock);
	ctx->mapping = file->f_mapping;
	xa_init(&ctx->held);
	xa_init(&ctx->held_huge);
	mutex_init(&ctx->region_lock);
	mutex_init(&ctx->fault_lock);
	INIT_LIST_HEAD(&ctx->regions);
	ctx->fault_around = READ_ONCE(fault_around_pages);
	init_waitqueue_head(&ctx->notice_wq);
	spin_lock_init(&ctx->pending_lock);
	INIT_WORK(&ctx->fault_work, vgru_ctx_fault_work);
	ctx->mm = current->mm;
	mmgrab(ctx->mm);
	ctx->fw_hpfns = kmalloc_array(VGRU_FAULT_AROUND_MAX,
				      sizeof(*ctx->fw_hpfns), GFP_KERNEL);
	ctx->fw_xl = kmalloc_array(VGRU_FAULT_AROUND_MAX, sizeof(*ctx->fw_xl),
				   GFP_KERNEL);
	if (!ctx->fw_hpfns || !ctx->fw_xl || vgru_fault_ctx_init(ctx)) {
		ret = -ENOMEM;
		goto err_put;
	}

	ret = vgru_user_charge(ctx);
	if (ret)
		goto err_put;

	/* reserve an index: the notifier's flushes must name this context */
	mutex_lock(&vdev->ctx_lock);
	ret = vdev->gone ? -ENODEV :
	      xa_alloc(&vdev->contexts, &id, NULL,
		       XA_LIMIT(0, vdev->nr_contexts - 1), GFP_KERNEL);
	if (!ret) {
		ctx->id = id;
		ctx->tag = vgru_next_tag(vdev);
	}
	mutex_unlock(&vdev->ctx_lock);
	if (ret)
		goto err_uncharge;	/* -EBUSY: all contexts in use */

	ret = mmu_interval_notifier_insert(&ctx->notifier, ctx->mm, 0,
					   TASK_SIZE_MAX, &vgru_mni_ops);
	if (ret)
		goto err_free_id;

	/* enabling drops whatever the index held; then faults can find us */
	mutex_lock(&vdev->ctx_lock);
	if (vdev->gone) {
		/* remove() ran meanwhile and did not see us */
		mutex_unlock(&vdev->ctx_lock);
		ret = -ENODEV;
		goto err_remove_notifier;
	}
	vgru_ctx_enable(vdev, ctx->id, ctx->tag);
	xa_store(&vdev->contexts, ctx->id, ctx, GFP_KERNEL);
	mutex_unlock(&vdev->ctx_lock);
	vgru_watchdog_start(vdev);
	trace_vgru_ctx_open(ctx->id, ctx->tag, current->tgid);

	file->private_data = ctx;
	return 0;

err_remove_notifier:
	mmu_interval_notifier_remove(&ctx->notifier);
err_free_id:
	mutex_lock(&vdev->ctx_lock);
	xa_erase(&vdev->contexts, ctx->id);
	mutex_unlock(&vdev->ctx_lock);
err_uncharge:
	vgru_user_uncharge(ctx);
err_put:
	vgru_ctx_put(ctx);		/* and the device with it */
	return ret;
}

static int vgru_release(struct inode *inode, struct file *file)
{
	struct vgru_ctx *ctx = file->private_data;

	/* already ended if the device was removed */
	vgru_ctx_end(ctx, false);
	trace_vgru_ctx_close(ctx->id, ctx->tag);

	vgru_user_uncharge(ctx);

	/* the device lives on while the context does (vgru_ctx_free_work) */
	vgru_ctx_put(ctx);
	return 0;
}

/*
 * The window goes in at the first touch, not at mmap(): a removal sets
 * vdev->gone under ctx_lock before it zaps the mappings, so a vma linked
 * after the zap can never map the BAR again: its touches get SIGBUS.
 */
static vm_fault_t vgru_vm_fault(struct vm_fault *vmf)
{
	struct vgru_ctx *ctx = vmf->vma->vm_file->private_data;
	struct vgru_dev *vdev = ctx->vdev;
	vm_fault_t ret = VM_FAULT_SIGBUS;

	mutex_lock(&vdev->ctx_lock);
	if (!vdev->gone)
		ret = vmf_insert_pfn(vmf->vma, vmf->vma->vm_start,
				     PHYS_PFN(vdev->window_phys +
					      (phys_addr_t)ctx->id *
					      VGRU_WINDOW_STRIDE));
	mutex_unlock(&vdev->ctx_lock);
	return ret;
}

static const struct vm_operations_struct vgru_vm_ops = {
	.fault = vgru_vm_fault,
};

static int vgru_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct vgru_ctx *ctx = file->private_data;
	int ret = vgru_ctx_failed(ctx);

	if (ret)
		return ret;
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
	vma->vm_ops = &vgru_vm_ops;
	return 0;
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
	BUILD_BUG_ON(sizeof(struct vgru_fault_around) != 32);
	BUILD_BUG_ON(sizeof(struct vgru_resolve) != 32);

	/* a removed device's file is a dead handle */
	if (READ_ONCE(ctx->vdev->gone))
		return -ENODEV;

	switch (cmd) {
	case VGRU_IOC_INFO: {
		struct vgru_info info = {
			.api_version = VGRU_API_VERSION,
			.context = ctx->id,
			.nr_cbs = ctx->vdev->nr_cbs,
			.window_size = VGRU_WINDOW_SIZE,
			.features = ctx->vdev->call_os ?
				    VGRU_FEATURE_CALL_OS : 0,
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
	case VGRU_IOC_FAULT_AROUND:
		return vgru_ioctl_fault_around(ctx, uarg);
	case VGRU_IOC_RESOLVE:
		return vgru_ioctl_resolve(ctx, uarg);
	default:
		return -ENOTTY;
	}
}

/*
 * /proc/PID/fdinfo/FD: counters beyond struct vgru_ctx_stats (which cannot
 * grow), one "key:\tvalue" line each; docs/counters.md says what they are.
 */
static void vgru_show_fdinfo(struct seq_file *m, struct file *file)
{
	struct vgru_ctx *ctx = file->private_data;

	seq_printf(m, "vgru_context:\t%u\n", ctx->id);
	seq_printf(m, "fault_around:\t%u\n", READ_ONCE(ctx->fault_around));
	seq_printf(m, "retries_exhausted:\t%lld\n",
		   atomic64_read(&ctx->stats.retries_exhausted));
	seq_printf(m, "huge_dropins:\t%lld\n",
		   atomic64_read(&ctx->stats.huge_dropins));
	seq_printf(m, "around_dropins:\t%lld\n",
		   atomic64_read(&ctx->stats.around_dropins));
	seq_printf(m, "caller_resolves:\t%lld\n",
		   atomic64_read(&ctx->stats.caller_resolves));
	seq_printf(m, "regions:\t%u\n", READ_ONCE(ctx->nr_regions));
	seq_printf(m, "regions_created:\t%lld\n",
		   atomic64_read(&ctx->regions_created));
}

/* EPOLLIN: notices came since the count VGRU_IOC_WAIT last returned */
static __poll_t vgru_poll(struct file *file, poll_table *wait)
{
	struct vgru_ctx *ctx = file->private_data;

	poll_wait(file, &ctx->notice_wq, wait);
	if (vgru_ctx_failed(ctx))
		return EPOLLERR | EPOLLHUP;
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
	.show_fdinfo	= vgru_show_fdinfo,
};
