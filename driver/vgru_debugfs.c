// SPDX-License-Identifier: GPL-2.0
/*
 * vgru debugfs: root-only views for bring-up and tests, under
 * /sys/kernel/debug/vgru/:
 *
 *   inject_resolve_delay_us   fault injection: every fault resolution
 *                             sleeps this long between its page lookup
 *                             and its drop-in (0600, default 0)
 *   vgruN/fault_latency_us    log2 histogram of fault record received ->
 *                             answer written, in microseconds; writing
 *                             anything resets it (0600)
 *   vgruN/held                per open context, the translations the
 *                             driver believes the device may hold (0400)
 *   vgruN/next_tag            the tag counter, for tests of its wrap (0600)
 *
 * Nothing here is an ABI: the formats may change.
 */

#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "vgru.h"

static struct dentry *vgru_debugfs_root;

/* ---- fault latency histogram ------------------------------------------------ */

static int vgru_latency_show(struct seq_file *m, void *v)
{
	struct vgru_dev *vdev = m->private;
	u64 n, total = 0;
	unsigned int i;

	for (i = 0; i < VGRU_LAT_BUCKETS; i++) {
		n = atomic64_read(&vdev->lat_hist[i]);
		total += n;
		if (!n)
			continue;
		if (!i)
			seq_printf(m, "%10u-%-10u %llu\n", 0, 1, n);
		else if (i == VGRU_LAT_BUCKETS - 1)
			seq_printf(m, "%10u-%-10s %llu\n", 1u << (i - 1), "", n);
		else
			seq_printf(m, "%10u-%-10u %llu\n", 1u << (i - 1), 1u << i,
				   n);
	}
	seq_printf(m, "total %llu\n", total);
	return 0;
}

static int vgru_latency_open(struct inode *inode, struct file *file)
{
	return single_open(file, vgru_latency_show, inode->i_private);
}

/* any write resets the histogram (not atomically: a fault may slip in) */
static ssize_t vgru_latency_write(struct file *file, const char __user *buf,
				  size_t len, loff_t *ppos)
{
	struct vgru_dev *vdev = file_inode(file)->i_private;
	unsigned int i;

	for (i = 0; i < VGRU_LAT_BUCKETS; i++)
		atomic64_set(&vdev->lat_hist[i], 0);
	return len;
}

static const struct file_operations vgru_latency_fops = {
	.owner		= THIS_MODULE,
	.open		= vgru_latency_open,
	.read		= seq_read,
	.write		= vgru_latency_write,
	.llseek		= seq_lseek,
	.release	= single_release,
};

/* ---- held translations ------------------------------------------------------ */

/*
 * One "context ID tag TAG held N" line per open context, then one
 * line per entry: "  0xVA 4K" or "  0xVA 2M".  Read without
 * ctx->lock: a snapshot that may be a resolution behind.  ctx_lock keeps
 * the contexts of the table alive.
 */
static int vgru_held_show(struct seq_file *m, void *v)
{
	struct vgru_dev *vdev = m->private;
	struct vgru_ctx *ctx;
	unsigned long id, idx;
	void *entry;

	mutex_lock(&vdev->ctx_lock);
	xa_for_each(&vdev->contexts, id, ctx) {
		seq_printf(m, "context %lu tag %u held %d\n", id, ctx->tag,
			   atomic_read(&ctx->nr_held));
		xa_for_each(&ctx->held_huge, idx, entry)
			seq_printf(m, "  0x%lx 2M\n", idx << VGRU_HUGE_SHIFT);
		xa_for_each(&ctx->held, idx, entry)
			seq_printf(m, "  0x%lx 4K\n", idx << PAGE_SHIFT);
	}
	mutex_unlock(&vdev->ctx_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vgru_held);

/* ---- set-up ----------------------------------------------------------------- */

void vgru_debugfs_module_init(void)
{
	vgru_debugfs_root = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_u32("inject_resolve_delay_us", 0600, vgru_debugfs_root,
			   &vgru_inject_resolve_delay_us);
}

void vgru_debugfs_module_exit(void)
{
	debugfs_remove(vgru_debugfs_root);
}

/* Errors are not fatal: debugfs is for people, the driver works without. */
void vgru_debugfs_add(struct vgru_dev *vdev)
{
	char name[16];

	snprintf(name, sizeof(name), "vgru%u", vdev->minor);
	vdev->debugfs = debugfs_create_dir(name, vgru_debugfs_root);
	debugfs_create_file("fault_latency_us", 0600, vdev->debugfs, vdev,
			    &vgru_latency_fops);
	debugfs_create_file("held", 0400, vdev->debugfs, vdev,
			    &vgru_held_fops);
	debugfs_create_u32("next_tag", 0600, vdev->debugfs, &vdev->next_tag);
}

/* After this no file of @vdev is open or can be opened. */
void vgru_debugfs_del(struct vgru_dev *vdev)
{
	debugfs_remove(vdev->debugfs);
	vdev->debugfs = NULL;
}
