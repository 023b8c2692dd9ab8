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

/* All ones from the ID register: the device no longer answers (removed). */
static bool vgru_absent(struct vgru_dev *vdev)
{
	return vgru_read(vdev, VGRU_REG_ID) == U32_MAX;
}

/*
 * Mark the device broken, once: it timed out an invalidation or reads as
 * all ones, and the caller may be about to free pages it could still
 * reach.  Clearing ENABLE returns once no command moves data; a device
 * that ignores that cannot master the bus once bus mastering is off; the
 * reads make sure both writes have landed.  Then nothing waits for it any
 * more: invalidations fail at once, and vdev->broken_work (vgru_pci.c)
 * fails the contexts' pending faults and wakes their waiters.  Any
 * context, IRQ included.  Returns whether this call marked it.
 */
bool vgru_hw_set_broken(struct vgru_dev *vdev)
{
	u16 cmd;
	bool first;

	spin_lock(&vdev->reg_lock);
	first = !vdev->stopped;
	WRITE_ONCE(vdev->stopped, true);
	if (first) {
		vgru_write(vdev, VGRU_REG_CTRL, 0);
		vgru_read(vdev, VGRU_REG_STATUS);
	}
	spin_unlock(&vdev->reg_lock);
	if (!first)
		return false;
	pci_clear_master(vdev->pdev);
	pci_read_config_word(vdev->pdev, PCI_COMMAND, &cmd);
	schedule_work(&vdev->broken_work);
	return true;
}

bool vgru_hw_broken(struct vgru_dev *vdev)
{
	return READ_ONCE(vdev->stopped);
}

/* Call on an all-ones read: marks the device broken if it is gone. */
bool vgru_hw_check_absent(struct vgru_dev *vdev)
{
	if (vgru_hw_broken(vdev))
		return true;
	if (!vgru_absent(vdev))
		return false;
	if (vgru_hw_set_broken(vdev))
		dev_err(&vdev->pdev->dev,
			"device reads as all ones: gone, stopped\n");
	return true;
}

static void vgru_stop(struct vgru_dev *vdev, u32 seq, u32 ctx)
{
	if (vgru_hw_set_broken(vdev))
		dev_err(&vdev->pdev->dev,
			"invalidation %u of context %u timed out: device stopped\n",
			seq, ctx);
}

/* INV_DONE @done counts @seq, or waiting is pointless */
static bool vgru_inv_passed(struct vgru_dev *vdev, u32 done, u32 seq)
{
	if ((s32)(done - seq) >= 0 || READ_ONCE(vdev->stopped))
		return true;
	return done == U32_MAX && vgru_hw_check_absent(vdev);
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
					 vgru_inv_passed(vdev, done, seq),
					 VGRU_INV_SLEEP_US, VGRU_INV_TIMEOUT_US);
	else
		ret = readl_poll_timeout_atomic(done_reg, done,
						vgru_inv_passed(vdev, done, seq),
						1, VGRU_INV_TIMEOUT_US);
	if (ret)
		vgru_stop(vdev, seq, ctx);
	else if ((s32)(done - seq) < 0)
		ret = -EIO;	/* stopped: timed out elsewhere, or gone */
	return ret;
}

/* Remove the translations of @ctx in [start, start + len). */
int vgru_tlb_invalidate(struct vgru_dev *vdev, u32 ctx, u64 start, u64 len,
			bool may_sleep)
{
	return vgru_inv_run(vdev, VGRU_INV_CMD_RANGE, ctx, start, len,
			    may_sleep);
}

/*
 * Translation lists: a resolution's translations and the fault responses
 * that go with them, in the context's coherent list buffer, applied by
 * the device within one TLB_CMD write (translations first, so a restarted
 * command finds them).  Built and run under ctx->lock: one buffer per
 * context.  The device ignores a response whose SEQ is not the CB's
 * outstanding fault, so a late one cannot touch a command of a context
 * opened since.
 */
void vgru_tl_begin(struct vgru_ctx *ctx)
{
	ctx->tl_nr_trans = 0;
	ctx->tl_nr_resp = 0;
}

/* Whether another response fits. */
bool vgru_tl_full(struct vgru_ctx *ctx)
{
	return ctx->tl_nr_resp >= VGRU_TL_MAX_RESP;
}

void vgru_tl_add_xlate(struct vgru_ctx *ctx, const struct vgru_xlate *x)
{
	__le64 *t;

	if (WARN_ON_ONCE(ctx->tl_nr_trans >= VGRU_TL_MAX_TRANS))
		return;
	t = ctx->tl + VGRU_TL_HDR_SIZE + ctx->tl_nr_trans++ * VGRU_TL_TRANS_SIZE;
	t[VGRU_TL_T_VADDR / 8] = cpu_to_le64(x->va |
					     (x->write ? VGRU_TLB_WRITE : 0) |
					     (x->huge ? VGRU_TLB_HUGE : 0));
	t[VGRU_TL_T_PADDR / 8] = cpu_to_le64(x->dma);
	trace_vgru_dropin(ctx->id, x->va, x->dma, x->write, x->huge);
}

/*
 * Answer the fault @seq of @cb: RESTART (RESTART_CALLER when @caller, the
 * thread waiting for the command, answers and the device knows it), or
 * FAIL with -@err as detail.
 */
void vgru_tl_add_resp(struct vgru_ctx *ctx, u32 cb, u32 seq, int err,
		      bool caller)
{
	struct vgru_tl_resp *r;

	if (WARN_ON_ONCE(vgru_tl_full(ctx)))
		return;
	r = &ctx->tl_resp[ctx->tl_nr_resp++];
	r->cb = cb;
	r->seq = seq;
	if (err)
		r->cmd = VGRU_RESP_FAIL;
	else if (caller && ctx->vdev->restart_caller)
		r->cmd = VGRU_RESP_RESTART_CALLER;
	else
		r->cmd = VGRU_RESP_RESTART;
	r->code = err ? -err : 0;
	trace_vgru_restart(ctx->id, cb, seq, err);
}

/* Hand the list to the device: one address write and one doorbell. */
void vgru_tl_run(struct vgru_ctx *ctx)
{
	struct vgru_dev *vdev = ctx->vdev;
	__le32 *h = ctx->tl, *r;
	u32 i;

	if (!ctx->tl_nr_trans && !ctx->tl_nr_resp)
		return;
	if (vgru_hw_broken(vdev)) {
		vgru_tl_begin(ctx);
		return;		/* stopped: nothing runs on, see set_broken */
	}
	h[VGRU_TL_CTX / 4] = cpu_to_le32(ctx->id);
	h[VGRU_TL_NR_TRANS / 4] = cpu_to_le32(ctx->tl_nr_trans);
	h[VGRU_TL_NR_RESP / 4] = cpu_to_le32(ctx->tl_nr_resp);
	h[0x0c / 4] = 0;
	r = ctx->tl + VGRU_TL_SIZE(ctx->tl_nr_trans, 0);
	for (i = 0; i < ctx->tl_nr_resp; i++, r += VGRU_TL_RESP_SIZE / 4) {
		r[VGRU_TL_R_CB / 4] = cpu_to_le32(ctx->tl_resp[i].cb);
		r[VGRU_TL_R_SEQ / 4] = cpu_to_le32(ctx->tl_resp[i].seq);
		r[VGRU_TL_R_CMD / 4] = cpu_to_le32(ctx->tl_resp[i].cmd);
		r[VGRU_TL_R_CODE / 4] = cpu_to_le32(ctx->tl_resp[i].code);
	}
	/* writel orders the list's memory writes before the doorbell */
	spin_lock(&vdev->reg_lock);
	vgru_write64(vdev, VGRU_REG_TLB_LIST, ctx->tl_dma);
	vgru_write(vdev, VGRU_REG_TLB_CMD, VGRU_TLB_CMD_LIST);
	spin_unlock(&vdev->reg_lock);
	vgru_tl_begin(ctx);
}

/*
 * End @ctx on the device so that none of its commands can reach memory
 * afterwards: DISABLE stops its CBs, but the write is posted; a context
 * invalidation issued after it completes (INV_DONE) only once no transfer
 * of the context is in flight, so awaiting it fences the DMA.  A time-out
 * marks the device broken (bus mastering off).  May sleep.
 */
int vgru_ctx_fence(struct vgru_dev *vdev, u32 ctx)
{
	if (vgru_hw_broken(vdev))
		return -EIO;
	vgru_ctx_disable(vdev, ctx);
	return vgru_inv_run(vdev, VGRU_INV_CMD_CONTEXT, ctx, 0, 0, true);
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
	/* 2.2 posts a VGRU_DF_CALL_OS fault without interrupt */
	vdev->call_os = (version & 0xffff) >= 2;
	/* 2.3 runs a command restarted by its waiter on in the waiter's write */
	vdev->restart_caller = (version & 0xffff) >= 3;
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
