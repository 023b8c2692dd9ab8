// SPDX-License-Identifier: GPL-2.0
/*
 * vgru register sequences: the only code that reads or writes the device's
 * registers.  Each sequence that spans several registers runs under
 * vdev->reg_lock; nothing here waits for the device while holding it.
 */

#include <linux/io.h>
#include <linux/iopoll.h>
#include <linux/pci.h>

#include "vgru.h"
#include "vgru_trace.h"

#define VGRU_INV_TIMEOUT_US	100000
#define VGRU_INV_SLEEP_US	10	/* between INV_DONE reads, when allowed */
/* a context's page tracking never takes more than this (see vgru_fault.c) */
#define VGRU_HELD_MAX_TLB	65536
/*
 * Geometry beyond these is a broken device, not a big one (the device
 * model allows 1024 contexts and 2^20 TLB entries): probe refuses it
 * rather than sizing the event queue (2 records per CB) from it.
 */
#define VGRU_HW_MAX_CONTEXTS	4096
#define VGRU_HW_MAX_TLB		BIT(24)

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

u64 vgru_hw_read_stat(struct vgru_dev *vdev, unsigned int n)
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
		     bool writable, bool huge)
{
	spin_lock(&vdev->reg_lock);
	vgru_write64(vdev, VGRU_REG_TLB_VADDR, va);
	vgru_write64(vdev, VGRU_REG_TLB_PADDR, pa);
	vgru_write(vdev, VGRU_REG_TLB_CTX, ctx);
	vgru_write(vdev, VGRU_REG_TLB_FLAGS, (writable ? VGRU_TLB_WRITE : 0) |
		   (huge ? VGRU_TLB_HUGE : 0));
	vgru_write(vdev, VGRU_REG_TLB_CMD, VGRU_TLB_CMD_DROPIN);
	spin_unlock(&vdev->reg_lock);
	trace_vgru_dropin(ctx, va, pa, writable, huge);
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
	trace_vgru_restart(ctx, cb, seq, err);
}

/* ---- set-up ------------------------------------------------------------------ */

int vgru_hw_init(struct vgru_dev *vdev)
{
	struct pci_dev *pdev = vdev->pdev;
	u32 id = vgru_read(vdev, VGRU_REG_ID);
	u32 version = vgru_read(vdev, VGRU_REG_VERSION);
	u32 sets, ways;
	u64 tlb;

	if (id != VGRU_ID || version >> 16 != VGRU_VERSION >> 16) {
		dev_err(&pdev->dev, "unknown device id %#x version %#x\n",
			id, version);
		return -ENODEV;
	}
	vdev->nr_contexts = vgru_read(vdev, VGRU_REG_NR_CONTEXTS);
	vdev->nr_cbs = vgru_read(vdev, VGRU_REG_NR_CBS);
	sets = vgru_read(vdev, VGRU_REG_TLB_SETS);
	ways = vgru_read(vdev, VGRU_REG_TLB_WAYS);
	tlb = (u64)sets * ways;
	if (!vdev->nr_contexts || vdev->nr_contexts > VGRU_HW_MAX_CONTEXTS ||
	    !vdev->nr_cbs ||
	    vdev->nr_cbs > VGRU_WINDOW_STRIDE / VGRU_CB_STRIDE ||
	    (u64)vdev->nr_contexts * VGRU_WINDOW_STRIDE >
	    pci_resource_len(pdev, VGRU_WINDOW_BAR) ||
	    !tlb || tlb > VGRU_HW_MAX_TLB) {
		dev_err(&pdev->dev,
			"bad geometry: %u contexts, %u CBs, TLB %u sets x %u ways\n",
			vdev->nr_contexts, vdev->nr_cbs, sets, ways);
		return -ENODEV;
	}
	/*
	 * A CB has at most one fault and one notice queued: with room for
	 * both the device never has to hold a record back.
	 */
	vdev->fq_size = roundup_pow_of_two(2 * vdev->nr_contexts *
					   vdev->nr_cbs);	/* <= 2^18: no overflow */
	/*
	 * A context can hold at most the whole TLB plus the two translations
	 * each of its CBs keeps; tracking more pages than that only means
	 * most of them were evicted long ago.
	 */
	vdev->held_max = min_t(u64, tlb, VGRU_HELD_MAX_TLB) + 2 * vdev->nr_cbs;
	return 0;
}

void vgru_hw_start(struct vgru_dev *vdev)
{
	vgru_write(vdev, VGRU_REG_CTRL, VGRU_CTRL_RESET);
	vgru_write64(vdev, VGRU_REG_FQ_BASE, vdev->fq_dma);
	vgru_write(vdev, VGRU_REG_FQ_SIZE, vdev->fq_size);
	vdev->fq_head = 0;
	vdev->inv_seq = 0;
	vdev->stopped = false;
	vgru_write(vdev, VGRU_REG_CTRL, VGRU_CTRL_ENABLE);
}

/* Stop the device and drop its state: no DMA and no interrupt after this. */
void vgru_hw_reset(struct vgru_dev *vdev)
{
	vgru_write(vdev, VGRU_REG_CTRL, VGRU_CTRL_RESET);
}

u32 vgru_hw_fq_tail(struct vgru_dev *vdev)
{
	return vgru_read(vdev, VGRU_REG_FQ_TAIL);
}

/* Hand the records up to @head back to the device. */
void vgru_hw_fq_set_head(struct vgru_dev *vdev, u32 head)
{
	vgru_write(vdev, VGRU_REG_FQ_HEAD, head);
}
