// SPDX-License-Identifier: GPL-2.0
/*
 * vgru: driver for the vgru secondary-TLB copy engine.
 *
 * This file owns the PCI function: probe and remove, the register
 * sequences the device understands, the event queue and its interrupt,
 * the char device and the sysfs counters.  Contexts live in vgru_ctx.c.
 */

#include <linux/delay.h>
#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/iopoll.h>
#include <linux/module.h>
#include <linux/wait_bit.h>
#include <linux/pci.h>
#include <asm/unaligned.h>

#include "vgru.h"

#define CREATE_TRACE_POINTS
#include "vgru_trace.h"

#define VGRU_MAX_DEVICES	16
#define VGRU_INV_TIMEOUT_US	100000
#define VGRU_INV_SLEEP_US	10	/* between INV_DONE reads, when allowed */
/* a context's page tracking never takes more than this (see vgru_ctx.c) */
#define VGRU_HELD_MAX_TLB	65536

static struct class *vgru_class;
static dev_t vgru_devt;

/* minor -> vgru_dev, for open(); see the lifetime rules in vgru.h */
static DEFINE_XARRAY_ALLOC(vgru_devices);
static DEFINE_MUTEX(vgru_devices_lock);

struct vgru_dev *vgru_dev_get(unsigned int minor)
{
	struct vgru_dev *vdev;

	mutex_lock(&vgru_devices_lock);
	vdev = xa_load(&vgru_devices, minor);
	if (vdev)
		atomic_inc(&vdev->nr_open);
	mutex_unlock(&vgru_devices_lock);
	return vdev;
}

/* The last access to @vdev: remove() may free it once this returns. */
void vgru_dev_put(struct vgru_dev *vdev)
{
	if (atomic_dec_and_test(&vdev->nr_open))
		wake_up_var(&vdev->nr_open);
}

static u32 vgru_read(struct vgru_dev *vdev, u32 reg)
{
	return readl(vdev->regs + reg);
}

static void vgru_write(struct vgru_dev *vdev, u32 reg, u32 val)
{
	writel(val, vdev->regs + reg);
}

static void vgru_write64(struct vgru_dev *vdev, u32 reg, u64 val)
{
	writel(lower_32_bits(val), vdev->regs + reg);
	writel(upper_32_bits(val), vdev->regs + reg + 4);
}

static u64 vgru_read_stat(struct vgru_dev *vdev, unsigned int n)
{
	u32 lo, hi;

	/* counters only grow: reread when the high half moved */
	do {
		hi = vgru_read(vdev, VGRU_REG_STAT(n) + 4);
		lo = vgru_read(vdev, VGRU_REG_STAT(n));
	} while (hi != vgru_read(vdev, VGRU_REG_STAT(n) + 4));
	return (u64)hi << 32 | lo;
}

/* ---- device operations ---------------------------------------------------- */

void vgru_ctx_enable(struct vgru_dev *vdev, u32 ctx, u32 tag)
{
	spin_lock(&vdev->reg_lock);
	vgru_write(vdev, VGRU_REG_CTX_SEL, ctx);
	vgru_write(vdev, VGRU_REG_CTX_TAG, tag);
	vgru_write(vdev, VGRU_REG_CTX_CMD, VGRU_CTX_CMD_ENABLE);
	spin_unlock(&vdev->reg_lock);
}

/* Stops the context's commands and removes all of its translations. */
void vgru_ctx_disable(struct vgru_dev *vdev, u32 ctx)
{
	spin_lock(&vdev->reg_lock);
	vgru_write(vdev, VGRU_REG_CTX_SEL, ctx);
	vgru_write(vdev, VGRU_REG_CTX_CMD, VGRU_CTX_CMD_DISABLE);
	spin_unlock(&vdev->reg_lock);
}

void vgru_tlb_dropin(struct vgru_dev *vdev, u32 ctx, u64 va, u64 pa,
		     bool writable)
{
	spin_lock(&vdev->reg_lock);
	vgru_write64(vdev, VGRU_REG_TLB_VADDR, va);
	vgru_write64(vdev, VGRU_REG_TLB_PADDR, pa);
	vgru_write(vdev, VGRU_REG_TLB_CTX, ctx);
	vgru_write(vdev, VGRU_REG_TLB_FLAGS, writable ? VGRU_TLB_WRITE : 0);
	vgru_write(vdev, VGRU_REG_TLB_CMD, VGRU_TLB_CMD_DROPIN);
	spin_unlock(&vdev->reg_lock);
	trace_vgru_dropin(ctx, va, pa, writable);
}

/*
 * Stop the device after an invalidation timed out: its entries may still be
 * live and the caller is about to free the pages, so no command may run
 * any more.  Clearing ENABLE returns once no command moves data; the read
 * makes sure the write has reached the device.
 */
static void vgru_stop(struct vgru_dev *vdev, u32 seq, u32 ctx)
{
	bool first;

	spin_lock(&vdev->reg_lock);
	first = !vdev->stopped;
	WRITE_ONCE(vdev->stopped, true);
	vgru_write(vdev, VGRU_REG_CTRL, 0);
	vgru_read(vdev, VGRU_REG_STATUS);
	spin_unlock(&vdev->reg_lock);
	if (first)
		dev_err(&vdev->pdev->dev,
			"invalidation %u of context %u timed out: device stopped\n",
			seq, ctx);
}

/*
 * Issue one invalidation command and wait until INV_DONE counts it: after
 * that no DMA uses the removed entries.  Only the register writes hold
 * reg_lock; the device completes invalidations in order, so INV_DONE
 * passing our sequence number is ours, whoever else issued one since.  The
 * wait sleeps between reads when @may_sleep (a blockable notifier range),
 * and spins otherwise.  A stopped device moves no data: nothing to wait for.
 */
static int vgru_inv_run(struct vgru_dev *vdev, u32 cmd, u32 ctx, u64 start,
			u64 len, bool may_sleep)
{
	void __iomem *done_reg = vdev->regs + VGRU_REG_INV_DONE;
	u32 seq, done;
	int ret;

	spin_lock(&vdev->reg_lock);
	if (vdev->stopped) {
		spin_unlock(&vdev->reg_lock);
		return -EIO;
	}
	seq = ++vdev->inv_seq;
	vgru_write64(vdev, VGRU_REG_INV_START, start);
	vgru_write64(vdev, VGRU_REG_INV_LEN, len);
	vgru_write(vdev, VGRU_REG_INV_CTX, ctx);
	vgru_write(vdev, VGRU_REG_INV_CMD, cmd);
	spin_unlock(&vdev->reg_lock);

	if (may_sleep)
		ret = readl_poll_timeout(done_reg, done,
					 (s32)(done - seq) >= 0 ||
					 READ_ONCE(vdev->stopped),
					 VGRU_INV_SLEEP_US, VGRU_INV_TIMEOUT_US);
	else
		ret = readl_poll_timeout_atomic(done_reg, done,
						(s32)(done - seq) >= 0 ||
						READ_ONCE(vdev->stopped),
						1, VGRU_INV_TIMEOUT_US);
	if (ret)
		vgru_stop(vdev, seq, ctx);
	else if ((s32)(done - seq) < 0)
		ret = -EIO;	/* another invalidation timed out: stopped */
	return ret;
}

/* Remove the translations of @ctx in [start, start + len). */
int vgru_tlb_invalidate(struct vgru_dev *vdev, u32 ctx, u64 start, u64 len,
			bool may_sleep)
{
	return vgru_inv_run(vdev, VGRU_INV_CMD_RANGE, ctx, start, len,
			    may_sleep);
}

/* Remove every translation of @ctx. */
int vgru_tlb_flush_ctx(struct vgru_dev *vdev, u32 ctx, bool may_sleep)
{
	return vgru_inv_run(vdev, VGRU_INV_CMD_CONTEXT, ctx, 0, 0, may_sleep);
}

/*
 * Answer the fault @seq of a CB.  The device ignores an answer whose @seq
 * is not the CB's outstanding fault, so a late one cannot touch a command
 * of a context opened since.
 */
void vgru_fault_respond(struct vgru_dev *vdev, u32 ctx, u32 cb, u32 seq,
			int err)
{
	spin_lock(&vdev->reg_lock);
	vgru_write(vdev, VGRU_REG_RESP_CTX, ctx);
	vgru_write(vdev, VGRU_REG_RESP_CB, cb);
	vgru_write(vdev, VGRU_REG_RESP_SEQ, seq);
	vgru_write(vdev, VGRU_REG_RESP_CODE, err ? -err : 0);
	vgru_write(vdev, VGRU_REG_RESP_CMD,
		   err ? VGRU_RESP_FAIL : VGRU_RESP_RESTART);
	spin_unlock(&vdev->reg_lock);
	trace_vgru_restart(ctx, cb, err);
}

/* ---- event queue ------------------------------------------------------------ */

static void vgru_handle_record(struct vgru_dev *vdev, const u8 *rec)
{
	u32 type = get_unaligned_le32(rec + VGRU_FR_TYPE);
	u32 ctx = get_unaligned_le32(rec + VGRU_FR_CTX);
	u32 tag = get_unaligned_le32(rec + VGRU_FR_TAG);

	switch (type) {
	case VGRU_FR_FAULT:
		vgru_handle_fault(vdev, get_unaligned_le64(rec + VGRU_FR_VADDR),
				  ctx, tag, get_unaligned_le32(rec + VGRU_FR_CB),
				  get_unaligned_le32(rec + VGRU_FR_FLAGS),
				  get_unaligned_le32(rec + VGRU_FR_SEQ));
		break;
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
}

/* Threaded IRQ handler: handles every queued record in order (may sleep). */
static irqreturn_t vgru_event_thread(int irq, void *data)
{
	struct vgru_dev *vdev = data;
	u32 tail;

	while ((tail = vgru_read(vdev, VGRU_REG_FQ_TAIL)) != vdev->fq_head) {
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

			vgru_handle_record(vdev, rec);
			vdev->fq_head++;
		}
		/* room for records the device is holding back */
		vgru_write(vdev, VGRU_REG_FQ_HEAD, vdev->fq_head);
	}
	return IRQ_HANDLED;
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
				  vgru_read_stat(vdev, sa->device_stat));
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
VGRU_DRIVER_STAT(faults);
VGRU_DRIVER_STAT(fault_errors);
VGRU_DRIVER_STAT(stale_faults);
VGRU_DRIVER_STAT(notices);
VGRU_DRIVER_STAT(retries);
VGRU_DRIVER_STAT(invalidations);

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
	&vgru_stat_driver_faults.attr.attr,
	&vgru_stat_driver_fault_errors.attr.attr,
	&vgru_stat_driver_stale_faults.attr.attr,
	&vgru_stat_driver_notices.attr.attr,
	&vgru_stat_driver_retries.attr.attr,
	&vgru_stat_driver_invalidations.attr.attr,
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

static int vgru_hw_init(struct vgru_dev *vdev)
{
	struct pci_dev *pdev = vdev->pdev;
	u32 id = vgru_read(vdev, VGRU_REG_ID);
	u32 version = vgru_read(vdev, VGRU_REG_VERSION);
	u64 tlb;

	if (id != VGRU_ID || version >> 16 != VGRU_VERSION >> 16) {
		dev_err(&pdev->dev, "unknown device id %#x version %#x\n",
			id, version);
		return -ENODEV;
	}
	vdev->nr_contexts = vgru_read(vdev, VGRU_REG_NR_CONTEXTS);
	vdev->nr_cbs = vgru_read(vdev, VGRU_REG_NR_CBS);
	tlb = (u64)vgru_read(vdev, VGRU_REG_TLB_SETS) *
	      vgru_read(vdev, VGRU_REG_TLB_WAYS);
	if (!vdev->nr_contexts || !vdev->nr_cbs ||
	    vdev->nr_cbs > VGRU_WINDOW_STRIDE / VGRU_CB_STRIDE ||
	    (u64)vdev->nr_contexts * VGRU_WINDOW_STRIDE >
	    pci_resource_len(pdev, VGRU_WINDOW_BAR)) {
		dev_err(&pdev->dev, "bad geometry: %u contexts, %u CBs\n",
			vdev->nr_contexts, vdev->nr_cbs);
		return -ENODEV;
	}
	/*
	 * A CB has at most one fault and one notice queued: with room for
	 * both the device never has to hold a record back.
	 */
	vdev->fq_size = roundup_pow_of_two(2 * vdev->nr_contexts *
					   vdev->nr_cbs);
	/*
	 * A context can hold at most the whole TLB plus the two translations
	 * each of its CBs keeps; tracking more pages than that only means
	 * most of them were evicted long ago.
	 */
	vdev->held_max = min_t(u64, tlb, VGRU_HELD_MAX_TLB) + 2 * vdev->nr_cbs;
	return 0;
}

static void vgru_hw_start(struct vgru_dev *vdev)
{
	vgru_write(vdev, VGRU_REG_CTRL, VGRU_CTRL_RESET);
	vgru_write64(vdev, VGRU_REG_FQ_BASE, vdev->fq_dma);
	vgru_write(vdev, VGRU_REG_FQ_SIZE, vdev->fq_size);
	vdev->fq_head = 0;
	vdev->inv_seq = 0;
	vdev->stopped = false;
	vgru_write(vdev, VGRU_REG_CTRL, VGRU_CTRL_ENABLE);
}

static int vgru_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct vgru_dev *vdev;
	int ret;

	/* a context window is mapped into exactly one process */
	BUILD_BUG_ON(VGRU_WINDOW_STRIDE != PAGE_SIZE);
	BUILD_BUG_ON(VGRU_WINDOW_SIZE != VGRU_WINDOW_STRIDE);

	vdev = devm_kzalloc(&pdev->dev, sizeof(*vdev), GFP_KERNEL);
	if (!vdev)
		return -ENOMEM;
	vdev->pdev = pdev;
	spin_lock_init(&vdev->reg_lock);
	mutex_init(&vdev->ctx_lock);
	xa_init_flags(&vdev->contexts, XA_FLAGS_ALLOC);
	pci_set_drvdata(pdev, vdev);

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	ret = pcim_iomap_regions(pdev, BIT(VGRU_CTRL_BAR), KBUILD_MODNAME);
	if (ret)
		return ret;
	vdev->regs = pcim_iomap_table(pdev)[VGRU_CTRL_BAR];
	ret = pci_request_region(pdev, VGRU_WINDOW_BAR, KBUILD_MODNAME);
	if (ret)
		return ret;
	vdev->window_phys = pci_resource_start(pdev, VGRU_WINDOW_BAR);

	ret = vgru_hw_init(vdev);
	if (ret)
		goto err_release_window;

	/* the device translates to bus addresses: they must be physical */
	if (device_iommu_mapped(&pdev->dev)) {
		dev_err(&pdev->dev, "DMA remapping is not supported yet\n");
		ret = -ENODEV;
		goto err_release_window;
	}
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
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
	ret = request_threaded_irq(vdev->irq, NULL, vgru_event_thread,
				   IRQF_ONESHOT, KBUILD_MODNAME, vdev);
	if (ret)
		goto err_free_vectors;

	vgru_hw_start(vdev);

	ret = xa_alloc(&vgru_devices, &vdev->minor, NULL,
		       XA_LIMIT(0, VGRU_MAX_DEVICES - 1), GFP_KERNEL);
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
	/* now open() can find it */
	xa_store(&vgru_devices, vdev->minor, vdev, GFP_KERNEL);

	dev_info(&pdev->dev, "vgru%u: %u contexts, %u CBs each, event queue %u\n",
		 vdev->minor, vdev->nr_contexts, vdev->nr_cbs, vdev->fq_size);
	return 0;

err_del_cdev:
	cdev_del(vdev->cdev);
	goto err_free_minor;
err_put_cdev:
	kobject_put(&vdev->cdev->kobj);
err_free_minor:
	xa_erase(&vgru_devices, vdev->minor);
err_stop_hw:
	vgru_write(vdev, VGRU_REG_CTRL, VGRU_CTRL_RESET);
	free_irq(vdev->irq, vdev);
err_free_vectors:
	pci_free_irq_vectors(pdev);
err_release_window:
	pci_release_region(pdev, VGRU_WINDOW_BAR);
	return ret;
}

static void vgru_remove(struct pci_dev *pdev)
{
	struct vgru_dev *vdev = pci_get_drvdata(pdev);

	/* no new open() */
	mutex_lock(&vgru_devices_lock);
	xa_erase(&vgru_devices, vdev->minor);
	mutex_unlock(&vgru_devices_lock);
	device_destroy(vgru_class, vdev->cdev->dev);
	cdev_del(vdev->cdev);

	/* the open files still use the hardware until they are closed */
	if (atomic_read(&vdev->nr_open))
		dev_info(&pdev->dev, "waiting for %d open files to close\n",
			 atomic_read(&vdev->nr_open));
	wait_var_event(&vdev->nr_open, !atomic_read(&vdev->nr_open));

	vgru_write(vdev, VGRU_REG_CTRL, VGRU_CTRL_RESET);
	free_irq(vdev->irq, vdev);
	pci_free_irq_vectors(pdev);
	pci_release_region(pdev, VGRU_WINDOW_BAR);
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

	ret = alloc_chrdev_region(&vgru_devt, 0, VGRU_MAX_DEVICES,
				  KBUILD_MODNAME);
	if (ret)
		return ret;
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
	return ret;
}

static void __exit vgru_exit(void)
{
	pci_unregister_driver(&vgru_pci_driver);
	class_destroy(vgru_class);
	unregister_chrdev_region(vgru_devt, VGRU_MAX_DEVICES);
}

module_init(vgru_init);
module_exit(vgru_exit);

MODULE_DESCRIPTION("vgru secondary-TLB copy engine");
MODULE_LICENSE("GPL");
