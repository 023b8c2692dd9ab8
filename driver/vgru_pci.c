// SPDX-License-Identifier: GPL-2.0
/*
 * vgru: driver for the vgru secondary-TLB copy engine.
 *
 * This file owns the PCI function: module init and exit, probe and
 * remove, the event queue and its interrupt, the char device and the sysfs
 * counters.  Calls flow one way (see vgru.h):
 * vgru_pci.c -> vgru_ctx.c -> vgru_fault.c -> vgru_hw.c.
 */

#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <asm/unaligned.h>

#include "vgru.h"

#define CREATE_TRACE_POINTS
#include "vgru_trace.h"

static struct class *vgru_class;
static dev_t vgru_devt;

/* ---- event queue ------------------------------------------------------------ */

/* Returns whether the record raised (or would have raised) the interrupt. */
static bool vgru_handle_record(struct vgru_dev *vdev, const u8 *rec,
			       const struct vgru_waiter *waiter)
{
	u32 type = get_unaligned_le32(rec + VGRU_FR_TYPE);
	u32 ctx = get_unaligned_le32(rec + VGRU_FR_CTX);
	u32 tag = get_unaligned_le32(rec + VGRU_FR_TAG);
	u32 flags;

	switch (type) {
	case VGRU_FR_FAULT:
		flags = get_unaligned_le32(rec + VGRU_FR_FLAGS);
		vgru_handle_fault(vdev, get_unaligned_le64(rec + VGRU_FR_VADDR),
				  ctx, tag, get_unaligned_le32(rec + VGRU_FR_CB),
				  flags, get_unaligned_le32(rec + VGRU_FR_SEQ),
				  waiter);
		return !(flags & VGRU_FAULT_CALL_OS);
	case VGRU_FR_NOTICE:
		vgru_handle_notice(vdev, ctx, tag,
				   get_unaligned_le32(rec + VGRU_FR_CB));
		break;
	default:
		/* a newer device: nothing waits on a record we do not know */
		dev_warn_once(&vdev->pdev->dev,
			      "unknown event record type %u skipped\n", type);
		break;
	}
	return true;
}

/*
 * Hand every queued record, in order, to its context (which resolves
 * faults in its own work) and return the slots to the device.  Rereading
 * FQ_TAIL after each FQ_HEAD write catches the records posted meanwhile,
 * which a coalesced interrupt may not announce again.  Under fq_lock: the
 * IRQ handler, the watchdog and VGRU_IOC_RESOLVE never drain at once.
 * @waiter: the CB whose thread drains (it resolves its own fault), or
 * NULL.  Returns how many records raised (or would have raised) the
 * interrupt: all but the faults posted quietly for VGRU_DF_CALL_OS.
 */
static unsigned int vgru_fq_drain(struct vgru_dev *vdev,
				  const struct vgru_waiter *waiter)
{
	unsigned int loud = 0;
	u32 tail;

	while ((tail = vgru_hw_fq_tail(vdev)) != vdev->fq_head) {
		/* a device gone from the bus reads all ones */
		if (tail == U32_MAX && vgru_hw_check_absent(vdev))
			break;
		if (tail - vdev->fq_head > vdev->fq_size) {
			dev_err_ratelimited(&vdev->pdev->dev,
					    "event queue tail %u is past head %u\n",
					    tail, vdev->fq_head);
			break;
		}
		/* the records were written before the tail moved */
		dma_rmb();
		while (vdev->fq_head != tail) {
			u8 *rec = vdev->fq + (vdev->fq_head % vdev->fq_size) *
				  VGRU_FQ_RECORD_SIZE;

			loud += vgru_handle_record(vdev, rec, waiter);
			vdev->fq_head++;
		}
		/* room for records the device is holding back */
		vgru_hw_fq_set_head(vdev, vdev->fq_head);
	}
	return loud;
}

/*
 * For a thread resolving its own CB's fault (VGRU_IOC_RESOLVE), whose
 * record was posted without an interrupt, or whose interrupt has not been
 * taken yet (it may be on its way to another CPU).
 */
void vgru_events_drain(struct vgru_dev *vdev, struct vgru_ctx *ctx, u32 cb)
{
	struct vgru_waiter waiter = { .ctx = ctx, .cb = cb };

	spin_lock_irq(&vdev->fq_lock);
	vgru_fq_drain(vdev, &waiter);
	spin_unlock_irq(&vdev->fq_lock);
}

/* Hard IRQ handler: the event queue only. */
static irqreturn_t vgru_event_irq(int irq, void *data)
{
	struct vgru_dev *vdev = data;

	spin_lock(&vdev->fq_lock);
	vdev->irqs++;
	vgru_fq_drain(vdev, NULL);
	spin_unlock(&vdev->fq_lock);
	return IRQ_HANDLED;
}

/*
 * The lost-interrupt watchdog, every VGRU_WATCHDOG_MS while contexts are
 * open.  The device raises its event interrupt once and stays silent
 * until FQ_HEAD is written: if that interrupt is lost, the records wait
 * for ever.  Records that were already waiting at the last tick, with no
 * interrupt and no drain since, are drained here as the handler would
 * (one in flight has had a whole period to arrive) and counted, unless
 * they were all faults posted without interrupt (VGRU_DF_CALL_OS) that
 * their threads did not come for: their contexts' works resolve them.
 */
static void vgru_watchdog(struct work_struct *work)
{
	struct vgru_dev *vdev = container_of(to_delayed_work(work),
					     struct vgru_dev, watchdog);
	bool pending;

	spin_lock_irq(&vdev->fq_lock);
	pending = vgru_hw_fq_tail(vdev) != vdev->fq_head;
	if (pending && vdev->wd_pending && vdev->irqs == vdev->wd_irqs &&
	    vdev->fq_head == vdev->wd_head) {
		if (vgru_fq_drain(vdev, NULL))
			atomic64_inc(&vdev->counters.lost_irqs);
		pending = false;
	}
	vdev->wd_pending = pending;
	vdev->wd_irqs = vdev->irqs;
	vdev->wd_head = vdev->fq_head;
	spin_unlock_irq(&vdev->fq_lock);

	/* an open() after this check queues it again itself */
	if (!xa_empty(&vdev->contexts))
		vgru_watchdog_start(vdev);
}

/* ---- sysfs ------------------------------------------------------------------ */

/*
 * stats/: one counter per file.  device_* are the device's own registers,
 * driver_* this driver's, both since probe.
 */
struct vgru_stat_attr {
	struct device_attribute attr;
	int device_stat;		/* VGRU_STAT_*, or -1 for a driver one */
	size_t counter;			/* offset in struct vgru_counters */
};

static ssize_t vgru_stat_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	struct vgru_stat_attr *sa = container_of(attr, struct vgru_stat_attr,
						 attr);
	struct vgru_dev *vdev = dev_get_drvdata(dev);
	atomic64_t *counter;

	if (sa->device_stat >= 0)
		return sysfs_emit(buf, "%llu\n",
				  vgru_hw_read_stat(vdev, sa->device_stat));
	counter = (void *)&vdev->counters + sa->counter;
	return sysfs_emit(buf, "%lld\n", atomic64_read(counter));
}

#define VGRU_DEVICE_STAT(_name, _n)					\
	static struct vgru_stat_attr vgru_stat_device_##_name = {	\
		.attr = __ATTR(device_##_name, 0400, vgru_stat_show, NULL), \
		.device_stat = _n,					\
	}
#define VGRU_DRIVER_STAT(_name)						\
	static struct vgru_stat_attr vgru_stat_driver_##_name = {	\
		.attr = __ATTR(driver_##_name, 0400, vgru_stat_show, NULL), \
		.device_stat = -1,					\
		.counter = offsetof(struct vgru_counters, _name),	\
	}

VGRU_DEVICE_STAT(commands, VGRU_STAT_COMMANDS);
VGRU_DEVICE_STAT(completed, VGRU_STAT_COMPLETED);
VGRU_DEVICE_STAT(errors, VGRU_STAT_ERRORS);
VGRU_DEVICE_STAT(tlb_hits, VGRU_STAT_TLB_HITS);
VGRU_DEVICE_STAT(tlb_misses, VGRU_STAT_TLB_MISSES);
VGRU_DEVICE_STAT(dropins, VGRU_STAT_DROPINS);
VGRU_DEVICE_STAT(invalidations, VGRU_STAT_INVALIDATIONS);
VGRU_DEVICE_STAT(inv_entries, VGRU_STAT_INV_ENTRIES);
VGRU_DEVICE_STAT(bytes, VGRU_STAT_BYTES);
VGRU_DEVICE_STAT(lists, VGRU_STAT_LISTS);
VGRU_DEVICE_STAT(list_errors, VGRU_STAT_LIST_ERRORS);
VGRU_DEVICE_STAT(interrupts, VGRU_STAT_INTERRUPTS);
VGRU_DRIVER_STAT(faults);
VGRU_DRIVER_STAT(fault_errors);
VGRU_DRIVER_STAT(stale_faults);
VGRU_DRIVER_STAT(notices);
VGRU_DRIVER_STAT(retries);
VGRU_DRIVER_STAT(invalidations);
VGRU_DRIVER_STAT(lost_irqs);

static struct attribute *vgru_stat_attrs[] = {
	&vgru_stat_device_commands.attr.attr,
	&vgru_stat_device_completed.attr.attr,
	&vgru_stat_device_errors.attr.attr,
	&vgru_stat_device_tlb_hits.attr.attr,
	&vgru_stat_device_tlb_misses.attr.attr,
	&vgru_stat_device_dropins.attr.attr,
	&vgru_stat_device_invalidations.attr.attr,
	&vgru_stat_device_inv_entries.attr.attr,
	&vgru_stat_device_bytes.attr.attr,
	&vgru_stat_device_lists.attr.attr,
	&vgru_stat_device_list_errors.attr.attr,
	&vgru_stat_device_interrupts.attr.attr,
	&vgru_stat_driver_faults.attr.attr,
	&vgru_stat_driver_fault_errors.attr.attr,
	&vgru_stat_driver_stale_faults.attr.attr,
	&vgru_stat_driver_notices.attr.attr,
	&vgru_stat_driver_retries.attr.attr,
	&vgru_stat_driver_invalidations.attr.attr,
	&vgru_stat_driver_lost_irqs.attr.attr,
	NULL,
};

static const struct attribute_group vgru_stats_group = {
	.name = "stats",
	.attrs = vgru_stat_attrs,
};

static ssize_t contexts_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	struct vgru_dev *vdev = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%u\n", vdev->nr_contexts);
}
static DEVICE_ATTR_RO(contexts);

static ssize_t cbs_show(struct device *dev, struct device_attribute *attr,
			char *buf)
{
	struct vgru_dev *vdev = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%u\n", vdev->nr_cbs);
}
static DEVICE_ATTR_RO(cbs);

static struct attribute *vgru_attrs[] = {
	&dev_attr_contexts.attr,
	&dev_attr_cbs.attr,
	NULL,
};

static const struct attribute_group vgru_group = {
	.attrs = vgru_attrs,
};

static const struct attribute_group *vgru_groups[] = {
	&vgru_group,
	&vgru_stats_group,
	NULL,
};

/* ---- PCI -------------------------------------------------------------------- */

static void vgru_broken_work(struct work_struct *work)
{
	vgru_dev_fail_contexts(container_of(work, struct vgru_dev,
					    broken_work));
}

static int vgru_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct vgru_dev *vdev;
	int ret;

	/* a context window is mapped into exactly one process */
	BUILD_BUG_ON(VGRU_WINDOW_STRIDE != PAGE_SIZE);
	BUILD_BUG_ON(VGRU_WINDOW_SIZE != VGRU_WINDOW_STRIDE);

	/* outlives remove() while contexts or open files hold it */
	vdev = kzalloc(sizeof(*vdev), GFP_KERNEL);
	if (!vdev)
		return -ENOMEM;
	kref_init(&vdev->ref);
	vdev->minor = VGRU_MAX_DEVICES;		/* none yet */
	INIT_WORK(&vdev->broken_work, vgru_broken_work);
	/* contexts unmap their DMA through it until the last one goes */
	vdev->pdev = pci_dev_get(pdev);
	spin_lock_init(&vdev->reg_lock);
	mutex_init(&vdev->ctx_lock);
	xa_init_flags(&vdev->contexts, XA_FLAGS_ALLOC);
	spin_lock_init(&vdev->fq_lock);
	INIT_DELAYED_WORK(&vdev->watchdog, vgru_watchdog);
	pci_set_drvdata(pdev, vdev);

	ret = pcim_enable_device(pdev);
	if (ret)
		goto err_put;
	ret = pcim_iomap_regions(pdev, BIT(VGRU_CTRL_BAR), KBUILD_MODNAME);
	if (ret)
		goto err_put;
	vdev->regs = pcim_iomap_table(pdev)[VGRU_CTRL_BAR];
	ret = pci_request_region(pdev, VGRU_WINDOW_BAR, KBUILD_MODNAME);
	if (ret)
		goto err_put;
	vdev->window_phys = pci_resource_start(pdev, VGRU_WINDOW_BAR);

	ret = vgru_hw_init(vdev);
	if (ret)
		goto err_release_window;

	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (!ret)
		ret = vgru_fault_dma_check(pdev);
	if (ret)
		goto err_release_window;
	vdev->fq = dmam_alloc_coherent(&pdev->dev,
				       vdev->fq_size * VGRU_FQ_RECORD_SIZE,
				       &vdev->fq_dma, GFP_KERNEL);
	if (!vdev->fq) {
		ret = -ENOMEM;
		goto err_release_window;
	}
	pci_set_master(pdev);

	ret = pci_alloc_irq_vectors(pdev, VGRU_MSIX_NR, VGRU_MSIX_NR,
				    PCI_IRQ_MSIX);
	if (ret < 0)
		goto err_release_window;
	vdev->irq = pci_irq_vector(pdev, VGRU_MSIX_EVENT);
	ret = request_irq(vdev->irq, vgru_event_irq, 0, KBUILD_MODNAME, vdev);
	if (ret)
		goto err_free_vectors;

	vgru_hw_start(vdev);

	ret = vgru_dev_add(vdev);
	if (ret)
		goto err_stop_hw;
	vdev->cdev = cdev_alloc();
	if (!vdev->cdev) {
		ret = -ENOMEM;
		goto err_free_minor;
	}
	vdev->cdev->ops = &vgru_fops;
	vdev->cdev->owner = THIS_MODULE;
	ret = cdev_add(vdev->cdev, MKDEV(MAJOR(vgru_devt), vdev->minor), 1);
	if (ret)
		goto err_put_cdev;
	vdev->dev = device_create_with_groups(vgru_class, &pdev->dev,
					      vdev->cdev->dev, vdev, vgru_groups,
					      "vgru%u", vdev->minor);
	if (IS_ERR(vdev->dev)) {
		ret = PTR_ERR(vdev->dev);
		goto err_del_cdev;
	}
	vgru_debugfs_add(vdev);
	/* now open() can find it */
	vgru_dev_publish(vdev);

	dev_info(&pdev->dev, "vgru%u: %u contexts, %u CBs each, event queue %u\n",
		 vdev->minor, vdev->nr_contexts, vdev->nr_cbs, vdev->fq_size);
	return 0;

err_del_cdev:
	cdev_del(vdev->cdev);
	goto err_free_minor;
err_put_cdev:
	kobject_put(&vdev->cdev->kobj);
err_free_minor:
	/* vgru_dev_put frees it */
err_stop_hw:
	vgru_hw_reset(vdev);
	free_irq(vdev->irq, vdev);
	cancel_work_sync(&vdev->broken_work);
err_free_vectors:
	pci_free_irq_vectors(pdev);
err_release_window:
	pci_release_region(pdev, VGRU_WINDOW_BAR);
err_put:
	vgru_dev_put(vdev);
	return ret;
}

static void vgru_remove(struct pci_dev *pdev)
{
	struct vgru_dev *vdev = pci_get_drvdata(pdev);

	/*
	 * Revoke, do not wait for the files: every context is ended (fenced
	 * on the device, notifier removed, window zapped), after which no
	 * context code touches the registers (each checks ctx->dead under
	 * ctx->lock first).  Fault works still running (maybe blocked in a
	 * userfaultfd of their process) are not waited for: they answer
	 * nothing any more and hold the context, which holds @vdev.
	 */
	vgru_dev_revoke(vdev);
	device_destroy(vgru_class, vdev->cdev->dev);
	cdev_del(vdev->cdev);

	/* no context is left to watch, and nobody reads debugfs's views */
	cancel_delayed_work_sync(&vdev->watchdog);
	vgru_debugfs_del(vdev);

	vgru_hw_reset(vdev);
	free_irq(vdev->irq, vdev);
	cancel_work_sync(&vdev->broken_work);
	pci_free_irq_vectors(pdev);
	pci_release_region(pdev, VGRU_WINDOW_BAR);
	/* the minor goes with the last reference (an open file's, maybe) */
	vgru_dev_put(vdev);
}

static const struct pci_device_id vgru_ids[] = {
	{ PCI_DEVICE(VGRU_PCI_VENDOR_ID, VGRU_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, vgru_ids);

static struct pci_driver vgru_pci_driver = {
	.name		= KBUILD_MODNAME,
	.id_table	= vgru_ids,
	.probe		= vgru_probe,
	.remove		= vgru_remove,
};

static int __init vgru_init(void)
{
	int ret;

	ret = vgru_ctx_module_init();
	if (ret)
		return ret;
	vgru_debugfs_module_init();
	ret = alloc_chrdev_region(&vgru_devt, 0, VGRU_MAX_DEVICES,
				  KBUILD_MODNAME);
	if (ret)
		goto err_exit_ctx;
	vgru_class = class_create(THIS_MODULE, KBUILD_MODNAME);
	if (IS_ERR(vgru_class)) {
		ret = PTR_ERR(vgru_class);
		goto err_unregister_region;
	}
	ret = pci_register_driver(&vgru_pci_driver);
	if (ret)
		goto err_destroy_class;
	return 0;

err_destroy_class:
	class_destroy(vgru_class);
err_unregister_region:
	unregister_chrdev_region(vgru_devt, VGRU_MAX_DEVICES);
err_exit_ctx:
	vgru_debugfs_module_exit();
	vgru_ctx_module_exit();
	return ret;
}

static void __exit vgru_exit(void)
{
	pci_unregister_driver(&vgru_pci_driver);
	class_destroy(vgru_class);
	unregister_chrdev_region(vgru_devt, VGRU_MAX_DEVICES);
	vgru_debugfs_module_exit();
	vgru_ctx_module_exit();
}

module_init(vgru_init);
module_exit(vgru_exit);

MODULE_DESCRIPTION("vgru secondary-TLB copy engine");
MODULE_LICENSE("GPL");
