/*
 * vgru: a GRU-style secondary-TLB device.
 *
 * Processes hand the device commands, through a per-context window, that
 * name their own virtual addresses.  The device translates them with its
 * own TLB, tagged by context; a miss is never resolved here: the device
 * queues a fault record, raises MSI-X and waits for the driver to drop in
 * the translation and restart the command (or, if the command asks, ends
 * it at once).  Worker threads run the commands (vgru-engine.c); a command
 * can write a completion record into the process's memory and post a
 * notice into the event queue when it ends.
 *
 * This file: the control registers, the command windows and the QOM life
 * cycle.  vgru-internal.h maps the other files and the locking rules.  The
 * register layout is in vgru_regs.h; docs/device.md describes it.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/madvise.h"
#include "qemu/main-loop.h"
#include "qemu/memalign.h"
#include "qemu/module.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/pci/pci.h"
#include "hw/pci/msix.h"
#include "hw/pci/pcie.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "qom/object.h"
#include "trace.h"
#include "vgru-internal.h"

/* ---- contexts ----------------------------------------------------------- */

static void vgru_ctx_command(VgruState *s, uint32_t cmd)
{
    uint32_t ctx = s->ctx_sel;

    if (ctx >= s->nr_contexts) {
        qemu_log_mask(LOG_GUEST_ERROR, "vgru: command to bad context %u\n",
                      ctx);
        return;
    }
    switch (cmd) {
    case VGRU_CTX_CMD_ENABLE:
        vgru_ctx_stop(s, ctx);
        s->contexts[ctx].tag = s->ctx_tag;
        s->contexts[ctx].enabled = true;
        break;
    case VGRU_CTX_CMD_DISABLE:
        /* records already in the queue stay behind: the tag tells */
        vgru_ctx_stop(s, ctx);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "vgru: bad context command %u\n", cmd);
        return;
    }
    trace_vgru_ctx_command(ctx, cmd, s->ctx_tag);
}

/* ---- control register MMIO ---------------------------------------------- */

/* Everything back to power-on state, once no batch is in flight. */
static void vgru_reset_state(VgruState *s)
{
    s->ctrl = 0;
    vgru_engine_quiesce(s);

    s->status = 0;
    s->fq_base_reg = s->fq_base = 0;
    s->fq_size_reg = s->fq_size = 0;
    s->fq_head = s->fq_tail = 0;
    s->ctx_sel = s->ctx_tag = 0;
    s->tlb_vaddr = s->tlb_paddr = 0;
    s->tlb_ctx = s->tlb_flags = 0;
    s->tlb_list = 0;
    s->inv_start = s->inv_len = 0;
    s->inv_ctx = 0;
    vgru_inv_reset(s);
    s->inj_records = s->inj_transfers = s->inj_dropins = 0;
    s->resp_ctx = s->resp_cb = s->resp_code = s->resp_seq = 0;
    s->fault_seq = 0;
    s->irq_armed = true;
    memset(s->stats, 0, sizeof(s->stats));
    for (uint32_t c = 0; c < s->nr_contexts; c++) {
        s->contexts[c].enabled = false;
        s->contexts[c].tag = 0;
        s->contexts[c].starts = 0;
        for (uint32_t b = 0; b < s->nr_cbs; b++) {
            vgru_cb_init(vgru_cb(s, c, b), c, b);
        }
    }
    for (uint32_t i = 0; i < s->nr_workers; i++) {
        QTAILQ_INIT(&s->workers[i].runq);
    }
    QTAILQ_INIT(&s->events);
    vgru_tlb_reset(s);
}

static void vgru_write_ctrl(VgruState *s, uint32_t val)
{
    if (val & VGRU_CTRL_RESET) {
        vgru_reset_state(s);
        return;
    }
    if ((val & VGRU_CTRL_ENABLE) && !vgru_enabled(s)) {
        if (!is_power_of_2(s->fq_size_reg) ||
            (s->fq_base_reg & (VGRU_FQ_RECORD_SIZE - 1))) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "vgru: enable with bad event queue 0x%" PRIx64
                          " size %u\n", s->fq_base_reg, s->fq_size_reg);
            return;
        }
        s->fq_base = s->fq_base_reg;
        s->fq_size = s->fq_size_reg;
        s->fq_head = s->fq_tail = 0;
        s->status &= ~VGRU_STATUS_FQ_ERROR;
        s->ctrl |= VGRU_CTRL_ENABLE;
        s->status |= VGRU_STATUS_ENABLED;
        s->irq_armed = true;
        /* records in the old queue are gone: post every fault again */
        vgru_fq_repost(s);
        vgru_engine_kick(s);
    } else if (!(val & VGRU_CTRL_ENABLE) && vgru_enabled(s)) {
        /* stop running; contexts and the TLB stay as they are */
        s->ctrl &= ~VGRU_CTRL_ENABLE;
        s->status &= ~VGRU_STATUS_ENABLED;
        vgru_engine_quiesce(s);
    }
}

static void vgru_write_fq_head(VgruState *s, uint32_t val)
{
    /* forward only, and not past the tail */
    if (val - s->fq_head > s->fq_tail - s->fq_head) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: event queue head %u outside %u..%u\n",
                      val, s->fq_head, s->fq_tail);
        return;
    }
    s->fq_head = val;
    vgru_fq_post(s);
    vgru_irq_rearm(s);
}

static uint32_t vgru_half(uint64_t reg, hwaddr addr)
{
    return extract64(reg, (addr & 4) * 8, 32);
}

static void vgru_set_half(uint64_t *reg, hwaddr addr, uint32_t val)
{
    *reg = deposit64(*reg, (addr & 4) * 8, 32, val);
}

/*
 * The control registers that are plain state: a field of VgruState, read
 * back as written (if writable at all).  Identity, statistics and command
 * registers are handled in vgru_ctrl_read and vgru_ctrl_write.
 */
typedef struct VgruCtrlReg {
    hwaddr addr;
    size_t offset;              /* of the field in VgruState */
    bool wide;                  /* uint64_t, as two 32-bit halves */
    bool writable;
} VgruCtrlReg;

#define VGRU_REG32(a, field, w) \
    { (a), offsetof(VgruState, field), false, (w) }
#define VGRU_REG64(a, field, w) \
    { (a), offsetof(VgruState, field), true, (w) }

static const VgruCtrlReg vgru_ctrl_regs[] = {
    VGRU_REG32(VGRU_REG_NR_CONTEXTS, nr_contexts, false),
    VGRU_REG32(VGRU_REG_NR_CBS, nr_cbs, false),
    VGRU_REG32(VGRU_REG_TLB_SETS, tlb_sets, false),
    VGRU_REG32(VGRU_REG_TLB_WAYS, tlb_ways, false),
    VGRU_REG32(VGRU_REG_CTRL, ctrl, false),
    VGRU_REG32(VGRU_REG_STATUS, status, false),
    VGRU_REG64(VGRU_REG_FQ_BASE, fq_base_reg, true),
    VGRU_REG32(VGRU_REG_FQ_SIZE, fq_size_reg, true),
    VGRU_REG32(VGRU_REG_FQ_HEAD, fq_head, false),
    VGRU_REG32(VGRU_REG_FQ_TAIL, fq_tail, false),
    VGRU_REG32(VGRU_REG_CTX_SEL, ctx_sel, true),
    VGRU_REG32(VGRU_REG_CTX_TAG, ctx_tag, true),
    VGRU_REG64(VGRU_REG_TLB_VADDR, tlb_vaddr, true),
    VGRU_REG64(VGRU_REG_TLB_PADDR, tlb_paddr, true),
    VGRU_REG32(VGRU_REG_TLB_CTX, tlb_ctx, true),
    VGRU_REG32(VGRU_REG_TLB_FLAGS, tlb_flags, true),
    VGRU_REG64(VGRU_REG_TLB_LIST, tlb_list, true),
    VGRU_REG64(VGRU_REG_INV_START, inv_start, true),
    VGRU_REG64(VGRU_REG_INV_LEN, inv_len, true),
    VGRU_REG32(VGRU_REG_INV_CTX, inv_ctx, true),
    VGRU_REG32(VGRU_REG_RESP_CTX, resp_ctx, true),
    VGRU_REG32(VGRU_REG_RESP_CB, resp_cb, true),
    VGRU_REG32(VGRU_REG_RESP_CODE, resp_code, true),
    VGRU_REG32(VGRU_REG_RESP_SEQ, resp_seq, true),
};

/* The plain register at @addr (either half of a wide one), or NULL. */
static const VgruCtrlReg *vgru_ctrl_reg(hwaddr addr)
{
    for (size_t i = 0; i < ARRAY_SIZE(vgru_ctrl_regs); i++) {
        const VgruCtrlReg *r = &vgru_ctrl_regs[i];

        if (addr == r->addr || (r->wide && addr == r->addr + 4)) {
            return r;
        }
    }
    return NULL;
}

static uint64_t vgru_ctrl_read(void *opaque, hwaddr addr, unsigned size)
{
    VgruState *s = opaque;
    const VgruCtrlReg *r = vgru_ctrl_reg(addr);
    uint64_t val = 0;

    QEMU_LOCK_GUARD(&s->lock);
    if (r && r->wide) {
        val = vgru_half(*(uint64_t *)((uint8_t *)s + r->offset), addr);
    } else if (r) {
        val = *(uint32_t *)((uint8_t *)s + r->offset);
    } else if (addr >= VGRU_REG_STAT(0) &&
               addr < VGRU_REG_STAT(VGRU_STAT_NR)) {
        val = vgru_half(s->stats[(addr - VGRU_REG_STAT(0)) / 8], addr);
    } else if (addr == VGRU_REG_ID) {
        val = VGRU_ID;
    } else if (addr == VGRU_REG_VERSION) {
        val = VGRU_VERSION;
    } else if (addr == VGRU_REG_PAGE_SIZES) {
        val = VGRU_PAGE_SIZE | VGRU_HUGE_SIZE;
    } else if (addr == VGRU_REG_INV_DONE) {
        val = qatomic_load_acquire(&s->inv_done);
    }
    /* command registers and holes read as zero */
    trace_vgru_ctrl_read(addr, val);
    return val;
}

static void vgru_ctrl_write(void *opaque, hwaddr addr, uint64_t val,
                            unsigned size)
{
    VgruState *s = opaque;
    const VgruCtrlReg *r = vgru_ctrl_reg(addr);

    trace_vgru_ctrl_write(addr, val);
    QEMU_LOCK_GUARD(&s->lock);
    switch (addr) {
    case VGRU_REG_CTRL:
        vgru_write_ctrl(s, val);
        return;
    case VGRU_REG_FQ_HEAD:
        vgru_write_fq_head(s, val);
        return;
    case VGRU_REG_CTX_CMD:
        vgru_ctx_command(s, val);
        return;
    case VGRU_REG_TLB_CMD:
        if (val == VGRU_TLB_CMD_DROPIN) {
            vgru_tlb_dropin(s, s->tlb_ctx, s->tlb_vaddr, s->tlb_paddr,
                            s->tlb_flags);
        } else if (val == VGRU_TLB_CMD_LIST) {
            vgru_tlb_list(s);
        } else {
            qemu_log_mask(LOG_GUEST_ERROR, "vgru: bad TLB command %u\n",
                          (uint32_t)val);
        }
        return;
    case VGRU_REG_INV_CMD:
        vgru_invalidate(s, val);
        return;
    case VGRU_REG_RESP_CMD:
        vgru_fault_response(s, val);
        return;
    }
    if (!r || !r->writable) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: write to read-only or unknown register 0x%"
                      HWADDR_PRIx "\n", addr);
    } else if (r->wide) {
        vgru_set_half((uint64_t *)((uint8_t *)s + r->offset), addr, val);
    } else {
        *(uint32_t *)((uint8_t *)s + r->offset) = val;
    }
}

static const MemoryRegionOps vgru_ctrl_ops = {
    .read = vgru_ctrl_read,
    .write = vgru_ctrl_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 8,
    },
    .impl = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

/* ---- command window MMIO ------------------------------------------------ */

static VgruCb *vgru_window_cb(VgruState *s, hwaddr addr, uint32_t *ctx,
                              uint32_t *cbi, hwaddr *reg)
{
    *ctx = addr / VGRU_WINDOW_STRIDE;
    *cbi = (addr % VGRU_WINDOW_STRIDE) / VGRU_CB_STRIDE;
    *reg = addr % VGRU_CB_STRIDE;

    if (*ctx >= s->nr_contexts || *cbi >= s->nr_cbs ||
        !s->contexts[*ctx].enabled) {
        return NULL;
    }
    return vgru_cb(s, *ctx, *cbi);
}

static uint64_t vgru_window_read(void *opaque, hwaddr addr, unsigned size)
{
    VgruState *s = opaque;
    uint32_t ctx, cbi;
    hwaddr reg;
    VgruCb *cb;

    QEMU_LOCK_GUARD(&s->lock);
    cb = vgru_window_cb(s, addr, &ctx, &cbi, &reg);
    if (!cb) {
        return 0;
    }
    switch (reg) {
    case VGRU_CB_OPCODE:
        return cb->regs.opcode;
    case VGRU_CB_FLAGS:
        return cb->regs.flags;
    case VGRU_CB_SRC:
    case VGRU_CB_SRC + 4:
        return vgru_half(cb->regs.src, reg);
    case VGRU_CB_DST:
    case VGRU_CB_DST + 4:
        return vgru_half(cb->regs.dst, reg);
    case VGRU_CB_LEN:
    case VGRU_CB_LEN + 4:
        return vgru_half(cb->regs.len, reg);
    case VGRU_CB_ARG:
    case VGRU_CB_ARG + 4:
        return vgru_half(cb->regs.arg, reg);
    case VGRU_CB_COMP:
    case VGRU_CB_COMP + 4:
        return vgru_half(cb->regs.comp, reg);
    case VGRU_CB_STATUS:
        return cb->status;
    case VGRU_CB_ERROR_CODE:
        return cb->error;
    case VGRU_CB_PROGRESS:
    case VGRU_CB_PROGRESS + 4:
        return vgru_half(cb->progress, reg);
    case VGRU_CB_FAULT_ADDR:
    case VGRU_CB_FAULT_ADDR + 4:
        return vgru_half(cb->fault_addr, reg);
    case VGRU_CB_RESULT:
    case VGRU_CB_RESULT + 4:
        return vgru_half(cb->result, reg);
    default:
        return 0;
    }
}

static void vgru_window_write(void *opaque, hwaddr addr, uint64_t val,
                              unsigned size)
{
    VgruState *s = opaque;
    uint32_t ctx, cbi;
    hwaddr reg;
    VgruCb *cb;

    QEMU_LOCK_GUARD(&s->lock);
    cb = vgru_window_cb(s, addr, &ctx, &cbi, &reg);
    if (!cb) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: window write at 0x%" HWADDR_PRIx
                      " outside an enabled context's CBs\n", addr);
        return;
    }
    if (reg == VGRU_CB_DOORBELL) {
        vgru_cb_doorbell(s, cb, val);
        return;
    }
    if (cb->status == VGRU_CB_ACTIVE || cb->status == VGRU_CB_FAULT) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: write to busy CB %u/%u ignored\n", ctx, cbi);
        return;
    }
    switch (reg) {
    case VGRU_CB_OPCODE:
        cb->regs.opcode = val;
        break;
    case VGRU_CB_FLAGS:
        cb->regs.flags = val;
        break;
    case VGRU_CB_SRC:
    case VGRU_CB_SRC + 4:
        vgru_set_half(&cb->regs.src, reg, val);
        break;
    case VGRU_CB_DST:
    case VGRU_CB_DST + 4:
        vgru_set_half(&cb->regs.dst, reg, val);
        break;
    case VGRU_CB_LEN:
    case VGRU_CB_LEN + 4:
        vgru_set_half(&cb->regs.len, reg, val);
        break;
    case VGRU_CB_ARG:
    case VGRU_CB_ARG + 4:
        vgru_set_half(&cb->regs.arg, reg, val);
        break;
    case VGRU_CB_COMP:
    case VGRU_CB_COMP + 4:
        vgru_set_half(&cb->regs.comp, reg, val);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: write to read-only CB register 0x%" HWADDR_PRIx
                      "\n", reg);
        break;
    }
}

static const MemoryRegionOps vgru_window_ops = {
    .read = vgru_window_read,
    .write = vgru_window_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 8,
    },
    .impl = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

/* ---- device life cycle -------------------------------------------------- */

/*
 * A table the engine reads at every command (the TLB, the CBs), zeroed,
 * on 2 MiB host pages where THP allows: the model benchmark's 2 MiB TLB
 * on 4 KiB pages took a host TLB miss at most lookups, which software
 * prefetch did not hide.  Freed with qemu_vfree().
 */
static void *vgru_table_new(size_t size)
{
    size_t len = ROUND_UP(size, 2 * MiB);
    void *p = qemu_memalign(2 * MiB, len);

    qemu_madvise(p, len, QEMU_MADV_HUGEPAGE);
    memset(p, 0, size);
    return p;
}

static void vgru_realize(PCIDevice *pdev, Error **errp)
{
    VgruState *s = VGRU(pdev);
    uint64_t window_size;

    if (s->nr_contexts == 0 || s->nr_contexts > VGRU_MAX_CONTEXTS) {
        error_setg(errp, "vgru: contexts must be 1..%u", VGRU_MAX_CONTEXTS);
        return;
    }
    if (s->nr_cbs == 0 || s->nr_cbs > VGRU_MAX_CBS) {
        error_setg(errp, "vgru: cbs must be 1..%u", VGRU_MAX_CBS);
        return;
    }
    if (!is_power_of_2(s->tlb_sets)) {
        error_setg(errp, "vgru: tlb-sets must be a power of two");
        return;
    }
    if (s->tlb_ways == 0 ||
        (uint64_t)s->tlb_sets * s->tlb_ways > VGRU_MAX_TLB) {
        error_setg(errp, "vgru: tlb-sets * tlb-ways must be 1..%u",
                   VGRU_MAX_TLB);
        return;
    }
    if (s->tlb_huge_entries == 0 ||
        s->tlb_huge_entries > VGRU_MAX_HUGE_ENTRIES) {
        error_setg(errp, "vgru: tlb-huge-entries must be 1..%u",
                   VGRU_MAX_HUGE_ENTRIES);
        return;
    }
    /*
     * A vIOMMU translates from the calling thread and reports a fault
     * with an interrupt, which needs the BQL: behind one, workers run
     * their turns under it (see vgru_worker_run).
     */
    s->dma_bql = pci_device_iommu_address_space(pdev) != &address_space_memory;
    if (s->nr_workers == 0 || s->nr_workers > VGRU_MAX_WORKERS) {
        error_setg(errp, "vgru: workers must be 1..%u", VGRU_MAX_WORKERS);
        return;
    }
    if (s->inline_bytes > VGRU_MAX_INLINE_BYTES) {
        error_setg(errp, "vgru: inline-bytes must be at most %u",
                   (unsigned)VGRU_MAX_INLINE_BYTES);
        return;
    }
    if (s->caller_run_bytes > VGRU_MAX_CALLER_RUN_BYTES) {
        error_setg(errp, "vgru: caller-run-bytes must be at most %u",
                   (unsigned)VGRU_MAX_CALLER_RUN_BYTES);
        return;
    }
    if (s->x_dma_delay_us > VGRU_MAX_DMA_DELAY_US) {
        error_setg(errp, "vgru: x-dma-delay-us must be at most %u",
                   VGRU_MAX_DMA_DELAY_US);
        return;
    }

    if (s->x_inv_delay_us > VGRU_MAX_INV_DELAY_US) {
        error_setg(errp, "vgru: x-inv-delay-us must be at most %u",
                   VGRU_MAX_INV_DELAY_US);
        return;
    }

    if (msix_init_exclusive_bar(pdev, VGRU_MSIX_NR, VGRU_MSIX_BAR, errp)) {
        return;
    }
    /*
     * An endpoint (integrated, at a PCIe root complex): it hot-plugs
     * behind a pcie-root-port, and still plugs into a conventional bus.
     */
    if (pcie_endpoint_cap_init(pdev, VGRU_PCIE_CAP) < 0) {
        error_setg(errp, "vgru: no room for the PCI Express capability");
        msix_uninit_exclusive_bar(pdev);
        return;
    }

    s->contexts = g_new0(VgruContext, s->nr_contexts);
    s->cb_table = vgru_table_new(sizeof(VgruCb) * s->nr_contexts * s->nr_cbs);
    for (uint32_t c = 0; c < s->nr_contexts; c++) {
        s->contexts[c].nr_cbs = s->nr_cbs;
        s->contexts[c].cbs = &s->cb_table[c * s->nr_cbs];
        for (uint32_t b = 0; b < s->nr_cbs; b++) {
            vgru_cb_init(&s->contexts[c].cbs[b], c, b);
        }
    }
    s->tlb = vgru_table_new(sizeof(VgruTlbEntry) * s->tlb_sets * s->tlb_ways);
    s->tlb_victim = g_new0(uint32_t, s->tlb_sets);
    s->tlb_huge = g_new0(VgruTlbEntry, s->tlb_huge_entries);
    s->mig_events = g_new0(uint32_t, s->nr_contexts * s->nr_cbs * 2);
    s->fault_bh = qemu_bh_new_guarded(vgru_fault_bh, s,
                                      &DEVICE(s)->mem_reentrancy_guard);

    memory_region_init_io(&s->ctrl_mmio, OBJECT(s), &vgru_ctrl_ops, s,
                          "vgru-ctrl", VGRU_CTRL_SIZE);
    pci_register_bar(pdev, VGRU_CTRL_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->ctrl_mmio);

    window_size = pow2ceil((uint64_t)s->nr_contexts * VGRU_WINDOW_STRIDE);
    memory_region_init_io(&s->window_mmio, OBJECT(s), &vgru_window_ops, s,
                          "vgru-window", window_size);
    /* up to 4 MiB: a 64-bit BAR, so firmware may place it above 4 GiB */
    pci_register_bar(pdev, VGRU_WINDOW_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->window_mmio);

    for (unsigned v = 0; v < VGRU_MSIX_NR; v++) {
        msix_vector_use(pdev, v);
    }
    vgru_engine_realize(s);
}

static void vgru_exit(PCIDevice *pdev)
{
    VgruState *s = VGRU(pdev);

    vgru_engine_unrealize(s);
    qemu_bh_delete(s->fault_bh);
    qemu_vfree(s->cb_table);
    g_free(s->contexts);
    qemu_vfree(s->tlb);
    g_free(s->tlb_victim);
    g_free(s->tlb_huge);
    g_free(s->mig_events);
    msix_uninit_exclusive_bar(pdev);
}

static void vgru_reset(DeviceState *dev)
{
    VgruState *s = VGRU(dev);
    PCIDevice *pdev = PCI_DEVICE(dev);

    WITH_QEMU_LOCK_GUARD(&s->lock) {
        vgru_reset_state(s);
    }
    msix_reset(pdev);
    for (unsigned v = 0; v < VGRU_MSIX_NR; v++) {
        msix_vector_use(pdev, v);
    }
}

/* ---- migration ---------------------------------------------------------- */

/*
 * Saved with the VM stopped, so no batch is in flight and no record is
 * being written.  The TLB and the translations CBs hold are a cache and
 * are not saved: commands fault again on the destination.  The stream is
 * untrusted: post_load checks every field the engine relies on, and a
 * stream that fails leaves the device reset, never half loaded.
 */

static uint32_t vgru_event_id(VgruState *s, VgruEvent *ev)
{
    VgruCb *cb = ev->cb;

    return (cb->ctx * s->nr_cbs + cb->index) * 2 +
           (ev->type == VGRU_FR_NOTICE);
}

static int vgru_pre_save(void *opaque)
{
    VgruState *s = opaque;
    VgruEvent *ev;

    QEMU_LOCK_GUARD(&s->lock);
    s->mig_nr_events = 0;
    QTAILQ_FOREACH(ev, &s->events, link) {
        s->mig_events[s->mig_nr_events++] = vgru_event_id(s, ev);
    }
    return 0;
}

static bool vgru_events_fit(void *opaque, int version_id)
{
    VgruState *s = opaque;

    return s->mig_nr_events <= s->nr_contexts * s->nr_cbs * 2;
}

/* Rebuild the event list from the ids; false if they do not match. */
static bool vgru_load_events(VgruState *s)
{
    VgruEvent *ev;

    QTAILQ_INIT(&s->events);
    for (uint32_t i = 0; i < s->mig_nr_events; i++) {
        uint32_t id = s->mig_events[i];
        VgruCb *cb;

        if (id >= s->nr_contexts * s->nr_cbs * 2) {
            return false;
        }
        cb = vgru_cb(s, id / 2 / s->nr_cbs, id / 2 % s->nr_cbs);
        ev = id & 1 ? &cb->notice : &cb->fault;
        if (!ev->queued) {
            return false;           /* not flagged, or listed twice */
        }
        ev->queued = false;
        QTAILQ_INSERT_TAIL(&s->events, ev, link);
    }
    for (uint32_t c = 0; c < s->nr_contexts; c++) {
        for (uint32_t b = 0; b < s->nr_cbs; b++) {
            VgruCb *cb = vgru_cb(s, c, b);

            if (cb->fault.queued || cb->notice.queued) {
                return false;       /* flagged but not listed */
            }
        }
    }
    QTAILQ_FOREACH(ev, &s->events, link) {
        ev->queued = true;
    }
    return true;
}

static bool vgru_load_check(VgruState *s)
{
    bool enabled = vgru_enabled(s);

    if ((s->ctrl & ~VGRU_CTRL_ENABLE) ||
        (s->status & ~(VGRU_STATUS_ENABLED | VGRU_STATUS_FQ_ERROR)) ||
        enabled != !!(s->status & VGRU_STATUS_ENABLED)) {
        return false;
    }
    if (enabled && (!is_power_of_2(s->fq_size) ||
                    (s->fq_base & (VGRU_FQ_RECORD_SIZE - 1)) ||
                    s->fq_tail - s->fq_head > s->fq_size)) {
        return false;
    }
    for (uint32_t c = 0; c < s->nr_contexts; c++) {
        for (uint32_t b = 0; b < s->nr_cbs; b++) {
            if (!vgru_cb_loaded_ok(s, vgru_cb(s, c, b))) {
                return false;
            }
        }
    }
    return vgru_load_events(s);
}

static int vgru_post_load(void *opaque, int version_id)
{
    VgruState *s = opaque;

    QEMU_LOCK_GUARD(&s->lock);
    if (!vgru_load_check(s)) {
        error_report("vgru: the migration stream holds an impossible "
                     "device state");
        vgru_reset_state(s);
        return -EINVAL;
    }
    vgru_tlb_reset(s);
    timer_del(s->inv_timer);
    /* no batch is in flight and the TLB is empty: all are complete */
    s->inv_done = s->inv_timed = s->inv_issued;
    for (uint32_t i = 0; i < s->nr_workers; i++) {
        QTAILQ_INIT(&s->workers[i].runq);
    }
    for (uint32_t c = 0; c < s->nr_contexts; c++) {
        for (uint32_t b = 0; b < s->nr_cbs; b++) {
            VgruCb *cb = vgru_cb(s, c, b);

            vgru_cb_drop_holds(cb);
            cb->queued = cb->busy = false;
            /*
             * The workers start once the VM runs.  A waiting FENCE runs
             * again too: it checks its fence then, rather than trusting
             * an older command of the stream to requeue it.
             */
            cb->fencing = false;
            if ((cb->status == VGRU_CB_ACTIVE ||
                 cb->status == VGRU_CB_FAULT) && !cb->fault.queued) {
                vgru_cb_queue(s, cb);
            }
        }
    }
    return 0;
}

static const VMStateDescription vmstate_vgru_desc = {
    .name = "vgru-desc",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (VMStateField[]) {
        VMSTATE_UINT32(opcode, VgruDesc),
        VMSTATE_UINT32(flags, VgruDesc),
        VMSTATE_UINT64(src, VgruDesc),
        VMSTATE_UINT64(dst, VgruDesc),
        VMSTATE_UINT64(len, VgruDesc),
        VMSTATE_UINT64(arg, VgruDesc),
        VMSTATE_UINT64(comp, VgruDesc),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_vgru_cb = {
    .name = "vgru-cb",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (VMStateField[]) {
        VMSTATE_STRUCT(regs, VgruCb, 1, vmstate_vgru_desc, VgruDesc),
        VMSTATE_UINT32(status, VgruCb),
        VMSTATE_UINT32(error, VgruCb),
        VMSTATE_UINT64(progress, VgruCb),
        VMSTATE_UINT64(fault_addr, VgruCb),
        VMSTATE_UINT64(result, VgruCb),
        VMSTATE_UINT32(fault_flags, VgruCb),
        VMSTATE_STRUCT(top, VgruCb, 1, vmstate_vgru_desc, VgruDesc),
        VMSTATE_STRUCT(cur, VgruCb, 1, vmstate_vgru_desc, VgruDesc),
        VMSTATE_BOOL(in_entry, VgruCb),
        VMSTATE_UINT32(phase, VgruCb),
        VMSTATE_UINT64(pos, VgruCb),
        VMSTATE_UINT64(entry, VgruCb),
        VMSTATE_UINT32(cur_error, VgruCb),
        VMSTATE_UINT64(cur_result, VgruCb),
        VMSTATE_UINT64(start_seq, VgruCb),
        VMSTATE_BOOL(fencing, VgruCb),
        VMSTATE_BOOL(armed, VgruCb),
        VMSTATE_UINT32(fault_seq, VgruCb),
        VMSTATE_BOOL(fault.queued, VgruCb),
        VMSTATE_BOOL(fault.posted, VgruCb),
        VMSTATE_BOOL(notice.queued, VgruCb),
        VMSTATE_BOOL(notice.posted, VgruCb),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_vgru_ctx = {
    .name = "vgru-context",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (VMStateField[]) {
        VMSTATE_BOOL(enabled, VgruContext),
        VMSTATE_UINT32(tag, VgruContext),
        VMSTATE_UINT64(starts, VgruContext),
        VMSTATE_STRUCT_VARRAY_POINTER_UINT32(cbs, VgruContext, nr_cbs,
                                             vmstate_vgru_cb, VgruCb),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_vgru = {
    .name = "vgru",
    .version_id = 2,
    .minimum_version_id = 2,
    .pre_save = vgru_pre_save,
    .post_load = vgru_post_load,
    .fields = (VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, VgruState),
        VMSTATE_MSIX(parent_obj, VgruState),
        VMSTATE_UINT32_EQUAL(nr_contexts, VgruState, NULL),
        VMSTATE_UINT32_EQUAL(nr_cbs, VgruState, NULL),
        VMSTATE_UINT32_EQUAL(tlb_sets, VgruState, NULL),
        VMSTATE_UINT32_EQUAL(tlb_ways, VgruState, NULL),
        VMSTATE_UINT32(ctrl, VgruState),
        VMSTATE_UINT32(status, VgruState),
        VMSTATE_UINT64(fq_base_reg, VgruState),
        VMSTATE_UINT32(fq_size_reg, VgruState),
        VMSTATE_UINT64(fq_base, VgruState),
        VMSTATE_UINT32(fq_size, VgruState),
        VMSTATE_UINT32(fq_head, VgruState),
        VMSTATE_UINT32(fq_tail, VgruState),
        VMSTATE_UINT32(ctx_sel, VgruState),
        VMSTATE_UINT32(ctx_tag, VgruState),
        VMSTATE_UINT64(tlb_vaddr, VgruState),
        VMSTATE_UINT64(tlb_paddr, VgruState),
        VMSTATE_UINT32(tlb_ctx, VgruState),
        VMSTATE_UINT32(tlb_flags, VgruState),
        VMSTATE_UINT64(tlb_list, VgruState),
        VMSTATE_UINT64(inv_start, VgruState),
        VMSTATE_UINT64(inv_len, VgruState),
        VMSTATE_UINT32(inv_ctx, VgruState),
        VMSTATE_UINT32(inv_issued, VgruState),
        VMSTATE_UINT32(resp_ctx, VgruState),
        VMSTATE_UINT32(resp_cb, VgruState),
        VMSTATE_UINT32(resp_code, VgruState),
        VMSTATE_UINT32(resp_seq, VgruState),
        VMSTATE_UINT32(fault_seq, VgruState),
        VMSTATE_BOOL(irq_armed, VgruState),
        VMSTATE_UINT64_ARRAY(stats, VgruState, VGRU_STAT_NR),
        /* before the CBs: a count that does not fit leaves them as they were */
        VMSTATE_UINT32(mig_nr_events, VgruState),
        VMSTATE_VALIDATE("vgru events fit", vgru_events_fit),
        VMSTATE_VARRAY_UINT32(mig_events, VgruState, mig_nr_events, 0,
                              vmstate_info_uint32, uint32_t),
        VMSTATE_STRUCT_VARRAY_POINTER_UINT32(contexts, VgruState,
                                             nr_contexts, vmstate_vgru_ctx,
                                             VgruContext),
        VMSTATE_END_OF_LIST()
    },
};

static Property vgru_properties[] = {
    DEFINE_PROP_UINT32("contexts", VgruState, nr_contexts, 16),
    DEFINE_PROP_UINT32("cbs", VgruState, nr_cbs, 16),
    DEFINE_PROP_UINT32("tlb-sets", VgruState, tlb_sets, 256),
    DEFINE_PROP_UINT32("tlb-ways", VgruState, tlb_ways, 8),
    DEFINE_PROP_UINT32("tlb-huge-entries", VgruState, tlb_huge_entries, 32),
    DEFINE_PROP_UINT32("workers", VgruState, nr_workers, 2),
    DEFINE_PROP_UINT32("inline-bytes", VgruState, inline_bytes, 16 * KiB),
    DEFINE_PROP_UINT32("caller-run-bytes", VgruState, caller_run_bytes,
                       4 * MiB),
    DEFINE_PROP_UINT32("x-dma-delay-us", VgruState, x_dma_delay_us, 0),
    DEFINE_PROP_BOOL("x-worker-faults", VgruState, x_worker_faults, false),
    DEFINE_PROP_UINT32("x-drop-irq-every", VgruState, x_drop_irq_every, 0),
    DEFINE_PROP_UINT32("x-fail-dma-every", VgruState, x_fail_dma_every, 0),
    DEFINE_PROP_UINT32("x-inv-delay-us", VgruState, x_inv_delay_us, 0),
    DEFINE_PROP_UINT32("x-evict-every", VgruState, x_evict_every, 0),
    DEFINE_PROP_END_OF_LIST(),
};

static void vgru_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *pc = PCI_DEVICE_CLASS(klass);

    pc->realize = vgru_realize;
    pc->exit = vgru_exit;
    pc->vendor_id = VGRU_PCI_VENDOR_ID;
    pc->device_id = VGRU_PCI_DEVICE_ID;
    pc->revision = VGRU_PCI_REVISION;
    pc->class_id = PCI_CLASS_SYSTEM_OTHER;
    dc->desc = "vgru secondary-TLB copy engine";
    dc->reset = vgru_reset;
    dc->vmsd = &vmstate_vgru;
    device_class_set_props(dc, vgru_properties);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo vgru_info = {
    .name = TYPE_VGRU,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(VgruState),
    .class_init = vgru_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_PCIE_DEVICE },
        { },
    },
};

static void vgru_register_types(void)
{
    type_register_static(&vgru_info);
}

type_init(vgru_register_types)
