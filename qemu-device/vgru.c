/*
 * vgru: a GRU-style secondary-TLB device.
 *
 * Processes hand the device commands, through a per-context window, that
 * name their own virtual addresses.  The device translates them with its
 * own TLB, tagged by context; a miss is never resolved here: the device
 * queues a fault record, raises MSI-X and waits for the driver to drop in
 * the translation and restart the command.  Data moves by PCI DMA.
 *
 * The register layout is in vgru_regs.h; docs/device.md describes it.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "hw/pci/pci.h"
#include "hw/pci/msix.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "qom/object.h"
#include "trace.h"
#include "hw/misc/vgru_regs.h"

#define TYPE_VGRU "vgru"
OBJECT_DECLARE_SIMPLE_TYPE(VgruState, VGRU)

#define VGRU_MAX_CONTEXTS   1024
#define VGRU_MAX_CBS        (VGRU_WINDOW_STRIDE / VGRU_CB_STRIDE)
#define VGRU_MAX_TLB        (1u << 20)

/* Pages one bottom-half run may move before it yields the main loop. */
#define VGRU_RUN_BUDGET     64

typedef struct VgruTlbEntry {
    uint64_t vpn;               /* virtual page number */
    uint64_t ppn;               /* bus page number */
    uint32_t ctx;
    bool valid;
    bool writable;
} VgruTlbEntry;

typedef struct VgruCb {
    /* operands, written by the process */
    uint32_t opcode;
    uint32_t flags;
    uint64_t src;
    uint64_t dst;
    uint64_t len;
    /* state */
    uint32_t status;
    uint32_t error;
    uint64_t progress;
    uint64_t fault_addr;
    uint32_t fault_flags;
    bool fault_posted;          /* FAULT: its record is in the queue */
} VgruCb;

typedef struct VgruContext {
    bool enabled;
    uint32_t tag;
    VgruCb *cbs;
} VgruContext;

struct VgruState {
    PCIDevice parent_obj;

    MemoryRegion ctrl_mmio;
    MemoryRegion window_mmio;
    QEMUBH *run_bh;

    /* geometry (properties) */
    uint32_t nr_contexts;
    uint32_t nr_cbs;
    uint32_t tlb_sets;
    uint32_t tlb_ways;

    /* control registers */
    uint32_t ctrl;
    uint32_t status;
    uint64_t fq_base_reg;
    uint32_t fq_size_reg;
    uint64_t fq_base;           /* latched at enable */
    uint32_t fq_size;
    uint32_t fq_head;
    uint32_t fq_tail;
    uint32_t ctx_sel;
    uint32_t ctx_tag;
    uint64_t tlb_vaddr;
    uint64_t tlb_paddr;
    uint32_t tlb_ctx;
    uint32_t tlb_flags;
    uint64_t inv_start;
    uint64_t inv_len;
    uint32_t inv_ctx;
    uint32_t inv_done;
    uint32_t resp_ctx;
    uint32_t resp_cb;
    uint32_t resp_code;
    uint64_t stats[VGRU_STAT_NR];

    /* contexts and TLB */
    VgruContext *contexts;
    VgruTlbEntry *tlb;          /* tlb_sets * tlb_ways */
    uint32_t *tlb_victim;       /* next way to replace, per set */
    uint32_t run_next;          /* first context of the next run */

    uint8_t bounce[VGRU_PAGE_SIZE];
};

static bool vgru_enabled(VgruState *s)
{
    return s->ctrl & VGRU_CTRL_ENABLE;
}

static void vgru_kick(VgruState *s)
{
    qemu_bh_schedule(s->run_bh);
}

/* ---- TLB ---------------------------------------------------------------- */

static VgruTlbEntry *vgru_tlb_set(VgruState *s, uint32_t ctx, uint64_t vpn,
                                  uint32_t *set_out)
{
    uint32_t set = (vpn ^ ((uint64_t)ctx * 0x9e3779b1u)) % s->tlb_sets;

    if (set_out) {
        *set_out = set;
    }
    return &s->tlb[set * s->tlb_ways];
}

static VgruTlbEntry *vgru_tlb_lookup(VgruState *s, uint32_t ctx, uint64_t vpn)
{
    VgruTlbEntry *way = vgru_tlb_set(s, ctx, vpn, NULL);

    for (uint32_t i = 0; i < s->tlb_ways; i++) {
        if (way[i].valid && way[i].ctx == ctx && way[i].vpn == vpn) {
            return &way[i];
        }
    }
    return NULL;
}

static void vgru_tlb_dropin(VgruState *s)
{
    uint32_t ctx = s->tlb_ctx;
    uint64_t vpn = s->tlb_vaddr >> VGRU_PAGE_SHIFT;
    VgruTlbEntry *e, *way;
    uint32_t set;

    if (ctx >= s->nr_contexts || !s->contexts[ctx].enabled) {
        qemu_log_mask(LOG_GUEST_ERROR, "vgru: drop-in for bad context %u\n",
                      ctx);
        return;
    }
    if ((s->tlb_vaddr | s->tlb_paddr) & (VGRU_PAGE_SIZE - 1)) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: unaligned drop-in 0x%" PRIx64 " -> 0x%" PRIx64
                      "\n", s->tlb_vaddr, s->tlb_paddr);
        return;
    }

    e = vgru_tlb_lookup(s, ctx, vpn);
    if (!e) {
        way = vgru_tlb_set(s, ctx, vpn, &set);
        for (uint32_t i = 0; i < s->tlb_ways && !e; i++) {
            if (!way[i].valid) {
                e = &way[i];
            }
        }
        if (!e) {
            e = &way[s->tlb_victim[set]];
            s->tlb_victim[set] = (s->tlb_victim[set] + 1) % s->tlb_ways;
        }
    }
    e->valid = true;
    e->ctx = ctx;
    e->vpn = vpn;
    e->ppn = s->tlb_paddr >> VGRU_PAGE_SHIFT;
    e->writable = s->tlb_flags & VGRU_TLB_WRITE;
    s->stats[VGRU_STAT_DROPINS]++;
    trace_vgru_dropin(ctx, s->tlb_vaddr, s->tlb_paddr, s->tlb_flags);
}

/* Remove the entries of @ctx (any context if @all) in [first, last] vpn. */
static uint32_t vgru_tlb_flush(VgruState *s, bool all, uint32_t ctx,
                               uint64_t first, uint64_t last)
{
    uint32_t n = s->tlb_sets * s->tlb_ways, removed = 0;

    for (uint32_t i = 0; i < n; i++) {
        VgruTlbEntry *e = &s->tlb[i];

        if (e->valid && (all || e->ctx == ctx) &&
            e->vpn >= first && e->vpn <= last) {
            e->valid = false;
            removed++;
        }
    }
    return removed;
}

static void vgru_invalidate(VgruState *s, uint32_t cmd)
{
    uint64_t first = 0, last = UINT64_MAX;
    uint32_t removed = 0;

    switch (cmd) {
    case VGRU_INV_CMD_RANGE:
        if (s->inv_len == 0) {
            break;
        }
        first = s->inv_start >> VGRU_PAGE_SHIFT;
        if (s->inv_start + s->inv_len - 1 < s->inv_start) {
            last = UINT64_MAX >> VGRU_PAGE_SHIFT;       /* clamp a wrap */
        } else {
            last = (s->inv_start + s->inv_len - 1) >> VGRU_PAGE_SHIFT;
        }
        /* fall through */
    case VGRU_INV_CMD_CONTEXT:
        if (s->inv_ctx >= s->nr_contexts) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "vgru: invalidation of bad context %u\n",
                          s->inv_ctx);
            break;
        }
        removed = vgru_tlb_flush(s, false, s->inv_ctx, first, last);
        break;
    case VGRU_INV_CMD_ALL:
        removed = vgru_tlb_flush(s, true, 0, first, last);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "vgru: bad invalidation command %u\n",
                      cmd);
        return;
    }
    /*
     * Commands translate and move each chunk within one bottom-half run,
     * under the same lock as this register write, so nothing in flight can
     * still use a removed entry: the invalidation is complete now.
     */
    s->stats[VGRU_STAT_INVALIDATIONS]++;
    s->stats[VGRU_STAT_INV_ENTRIES] += removed;
    s->inv_done++;
    trace_vgru_invalidate(cmd, s->inv_ctx, s->inv_start, s->inv_len, removed);
}

/* ---- faults ------------------------------------------------------------- */

static void vgru_cb_finish(VgruState *s, uint32_t ctx, uint32_t cbi,
                           uint32_t status, uint32_t error)
{
    VgruCb *cb = &s->contexts[ctx].cbs[cbi];

    cb->status = status;
    cb->error = error;
    s->stats[status == VGRU_CB_DONE ? VGRU_STAT_COMPLETED
                                    : VGRU_STAT_ERRORS]++;
    trace_vgru_cb_finish(ctx, cbi, status, error, cb->progress);
}

/* Write @cb's fault record into the queue; false if the queue is full. */
static bool vgru_post_fault(VgruState *s, uint32_t ctx, uint32_t cbi)
{
    VgruCb *cb = &s->contexts[ctx].cbs[cbi];
    uint8_t rec[VGRU_FQ_RECORD_SIZE] = { 0 };
    dma_addr_t addr;

    if (s->fq_tail - s->fq_head >= s->fq_size) {
        return false;
    }
    stq_le_p(rec + VGRU_FR_VADDR, cb->fault_addr);
    stl_le_p(rec + VGRU_FR_CTX, ctx);
    stl_le_p(rec + VGRU_FR_TAG, s->contexts[ctx].tag);
    stl_le_p(rec + VGRU_FR_CB, cbi);
    stl_le_p(rec + VGRU_FR_FLAGS, cb->fault_flags);

    addr = s->fq_base + (dma_addr_t)(s->fq_tail % s->fq_size) * sizeof(rec);
    if (pci_dma_write(PCI_DEVICE(s), addr, rec, sizeof(rec)) != MEMTX_OK) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: fault queue write at 0x%" PRIx64 " failed\n",
                      (uint64_t)addr);
        s->status |= VGRU_STATUS_FQ_ERROR;
        vgru_cb_finish(s, ctx, cbi, VGRU_CB_ERROR, VGRU_ERR_DMA);
        return true;
    }
    s->fq_tail++;
    cb->fault_posted = true;
    trace_vgru_fault(ctx, cbi, cb->fault_addr, cb->fault_flags);
    if (msix_enabled(PCI_DEVICE(s))) {
        msix_notify(PCI_DEVICE(s), VGRU_MSIX_FAULT);
    }
    return true;
}

/* Post the faults that found the queue full, now that it has room. */
static void vgru_post_waiting_faults(VgruState *s)
{
    for (uint32_t c = 0; c < s->nr_contexts; c++) {
        for (uint32_t b = 0; b < s->nr_cbs && s->contexts[c].enabled; b++) {
            VgruCb *cb = &s->contexts[c].cbs[b];

            if (cb->status == VGRU_CB_FAULT && !cb->fault_posted &&
                !vgru_post_fault(s, c, b)) {
                return;
            }
        }
    }
}

/*
 * Translate @va for @ctx.  On a miss, or a write to a read-only entry, the
 * CB stops in FAULT with its record queued, and false is returned.
 */
static bool vgru_translate(VgruState *s, uint32_t ctx, uint32_t cbi,
                           uint64_t va, bool write, dma_addr_t *pa)
{
    VgruTlbEntry *e = vgru_tlb_lookup(s, ctx, va >> VGRU_PAGE_SHIFT);
    VgruCb *cb;

    if (e && (!write || e->writable)) {
        s->stats[VGRU_STAT_TLB_HITS]++;
        *pa = (e->ppn << VGRU_PAGE_SHIFT) | (va & (VGRU_PAGE_SIZE - 1));
        return true;
    }

    s->stats[VGRU_STAT_TLB_MISSES]++;
    cb = &s->contexts[ctx].cbs[cbi];
    cb->status = VGRU_CB_FAULT;
    cb->fault_addr = va;
    cb->fault_flags = (write ? VGRU_FAULT_WRITE : 0) |
                      (e ? VGRU_FAULT_PERM : 0);
    cb->fault_posted = false;
    vgru_post_fault(s, ctx, cbi);
    return false;
}

static void vgru_fault_response(VgruState *s, uint32_t cmd)
{
    VgruCb *cb;

    if (s->resp_ctx >= s->nr_contexts || s->resp_cb >= s->nr_cbs ||
        !s->contexts[s->resp_ctx].enabled) {
        qemu_log_mask(LOG_GUEST_ERROR, "vgru: response to bad CB %u/%u\n",
                      s->resp_ctx, s->resp_cb);
        return;
    }
    cb = &s->contexts[s->resp_ctx].cbs[s->resp_cb];
    if (cb->status != VGRU_CB_FAULT || !cb->fault_posted) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: response to CB %u/%u that has no fault\n",
                      s->resp_ctx, s->resp_cb);
        return;
    }

    switch (cmd) {
    case VGRU_RESP_RESTART:
        trace_vgru_restart(s->resp_ctx, s->resp_cb);
        cb->status = VGRU_CB_ACTIVE;
        vgru_kick(s);
        break;
    case VGRU_RESP_FAIL:
        vgru_cb_finish(s, s->resp_ctx, s->resp_cb, VGRU_CB_ERROR,
                       VGRU_ERR_FAULT | (s->resp_code & 0xffff) << 16);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "vgru: bad fault response %u\n", cmd);
    }
}

/* ---- command execution -------------------------------------------------- */

static uint64_t vgru_page_left(uint64_t va)
{
    return VGRU_PAGE_SIZE - (va & (VGRU_PAGE_SIZE - 1));
}

/* Run COPY from where it stopped; returns the pages of budget used. */
static unsigned vgru_run_copy(VgruState *s, uint32_t ctx, uint32_t cbi,
                              unsigned budget)
{
    VgruCb *cb = &s->contexts[ctx].cbs[cbi];
    PCIDevice *pdev = PCI_DEVICE(s);
    unsigned used = 0;

    while (cb->progress < cb->len && used < budget) {
        uint64_t src = cb->src + cb->progress;
        uint64_t dst = cb->dst + cb->progress;
        uint64_t n = MIN(cb->len - cb->progress,
                         MIN(vgru_page_left(src), vgru_page_left(dst)));
        dma_addr_t src_pa, dst_pa;

        if (!vgru_translate(s, ctx, cbi, src, false, &src_pa) ||
            !vgru_translate(s, ctx, cbi, dst, true, &dst_pa)) {
            return used;
        }
        if (pci_dma_read(pdev, src_pa, s->bounce, n) != MEMTX_OK ||
            pci_dma_write(pdev, dst_pa, s->bounce, n) != MEMTX_OK) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "vgru: DMA 0x%" PRIx64 " -> 0x%" PRIx64 " failed\n",
                          (uint64_t)src_pa, (uint64_t)dst_pa);
            vgru_cb_finish(s, ctx, cbi, VGRU_CB_ERROR, VGRU_ERR_DMA);
            return used;
        }
        cb->progress += n;
        s->stats[VGRU_STAT_BYTES] += n;
        used++;
    }
    if (cb->progress == cb->len) {
        vgru_cb_finish(s, ctx, cbi, VGRU_CB_DONE, VGRU_ERR_NONE);
    }
    return used;
}

static void vgru_run(void *opaque)
{
    VgruState *s = opaque;
    unsigned budget = VGRU_RUN_BUDGET;
    bool pending = false;

    if (!vgru_enabled(s)) {
        return;
    }
    for (uint32_t i = 0; i < s->nr_contexts; i++) {
        uint32_t c = (s->run_next + i) % s->nr_contexts;

        if (!s->contexts[c].enabled) {
            continue;
        }
        for (uint32_t b = 0; b < s->nr_cbs; b++) {
            VgruCb *cb = &s->contexts[c].cbs[b];

            if (cb->status != VGRU_CB_ACTIVE) {
                continue;
            }
            if (budget == 0) {
                pending = true;
                continue;
            }
            budget -= vgru_run_copy(s, c, b, budget);
            pending |= cb->status == VGRU_CB_ACTIVE;
        }
    }
    s->run_next = (s->run_next + 1) % s->nr_contexts;
    if (pending) {
        vgru_kick(s);
    }
}

static void vgru_cb_start(VgruState *s, uint32_t ctx, uint32_t cbi)
{
    VgruCb *cb = &s->contexts[ctx].cbs[cbi];

    trace_vgru_cb_start(ctx, cbi, cb->opcode, cb->src, cb->dst, cb->len);
    s->stats[VGRU_STAT_COMMANDS]++;
    cb->progress = 0;
    cb->fault_addr = 0;
    cb->error = VGRU_ERR_NONE;

    if (cb->flags || (cb->opcode != VGRU_OP_NOP &&
                      cb->opcode != VGRU_OP_COPY)) {
        vgru_cb_finish(s, ctx, cbi, VGRU_CB_ERROR, VGRU_ERR_OPCODE);
        return;
    }
    if (cb->opcode == VGRU_OP_NOP || cb->len == 0) {
        vgru_cb_finish(s, ctx, cbi, VGRU_CB_DONE, VGRU_ERR_NONE);
        return;
    }
    if (cb->src + cb->len < cb->src || cb->dst + cb->len < cb->dst) {
        vgru_cb_finish(s, ctx, cbi, VGRU_CB_ERROR, VGRU_ERR_RANGE);
        return;
    }
    cb->status = VGRU_CB_ACTIVE;
    vgru_kick(s);
}

/* ---- contexts ----------------------------------------------------------- */

static void vgru_ctx_reset(VgruState *s, uint32_t ctx)
{
    VgruContext *c = &s->contexts[ctx];

    memset(c->cbs, 0, sizeof(*c->cbs) * s->nr_cbs);
    vgru_tlb_flush(s, false, ctx, 0, UINT64_MAX);
}

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
        vgru_ctx_reset(s, ctx);
        s->contexts[ctx].tag = s->ctx_tag;
        s->contexts[ctx].enabled = true;
        break;
    case VGRU_CTX_CMD_DISABLE:
        /* stopped CBs leave their queued faults behind: the tag tells */
        s->contexts[ctx].enabled = false;
        vgru_ctx_reset(s, ctx);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "vgru: bad context command %u\n", cmd);
        return;
    }
    trace_vgru_ctx_command(ctx, cmd, s->ctx_tag);
}

/* ---- control register MMIO ---------------------------------------------- */

static void vgru_reset_state(VgruState *s)
{
    qemu_bh_cancel(s->run_bh);
    s->ctrl = 0;
    s->status = 0;
    s->fq_base_reg = s->fq_base = 0;
    s->fq_size_reg = s->fq_size = 0;
    s->fq_head = s->fq_tail = 0;
    s->ctx_sel = s->ctx_tag = 0;
    s->tlb_vaddr = s->tlb_paddr = 0;
    s->tlb_ctx = s->tlb_flags = 0;
    s->inv_start = s->inv_len = 0;
    s->inv_ctx = s->inv_done = 0;
    s->resp_ctx = s->resp_cb = s->resp_code = 0;
    s->run_next = 0;
    memset(s->stats, 0, sizeof(s->stats));
    for (uint32_t c = 0; c < s->nr_contexts; c++) {
        s->contexts[c].enabled = false;
        s->contexts[c].tag = 0;
        memset(s->contexts[c].cbs, 0, sizeof(VgruCb) * s->nr_cbs);
    }
    memset(s->tlb, 0, sizeof(*s->tlb) * s->tlb_sets * s->tlb_ways);
    memset(s->tlb_victim, 0, sizeof(*s->tlb_victim) * s->tlb_sets);
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
                          "vgru: enable with bad fault queue 0x%" PRIx64
                          " size %u\n", s->fq_base_reg, s->fq_size_reg);
            return;
        }
        s->fq_base = s->fq_base_reg;
        s->fq_size = s->fq_size_reg;
        s->fq_head = s->fq_tail = 0;
        s->status &= ~VGRU_STATUS_FQ_ERROR;
        s->ctrl |= VGRU_CTRL_ENABLE;
        s->status |= VGRU_STATUS_ENABLED;
        vgru_kick(s);
    } else if (!(val & VGRU_CTRL_ENABLE) && vgru_enabled(s)) {
        /* stop running; contexts and the TLB stay as they are */
        s->ctrl &= ~VGRU_CTRL_ENABLE;
        s->status &= ~VGRU_STATUS_ENABLED;
    }
}

static uint32_t vgru_half(uint64_t reg, hwaddr addr)
{
    return extract64(reg, (addr & 4) * 8, 32);
}

static void vgru_set_half(uint64_t *reg, hwaddr addr, uint32_t val)
{
    *reg = deposit64(*reg, (addr & 4) * 8, 32, val);
}

static uint64_t vgru_ctrl_read(void *opaque, hwaddr addr, unsigned size)
{
    VgruState *s = opaque;
    uint64_t val = 0;

    switch (addr) {
    case VGRU_REG_ID:
        val = VGRU_ID;
        break;
    case VGRU_REG_VERSION:
        val = VGRU_VERSION;
        break;
    case VGRU_REG_NR_CONTEXTS:
        val = s->nr_contexts;
        break;
    case VGRU_REG_NR_CBS:
        val = s->nr_cbs;
        break;
    case VGRU_REG_TLB_SETS:
        val = s->tlb_sets;
        break;
    case VGRU_REG_TLB_WAYS:
        val = s->tlb_ways;
        break;
    case VGRU_REG_PAGE_SIZES:
        val = VGRU_PAGE_SIZE;
        break;
    case VGRU_REG_CTRL:
        val = s->ctrl;
        break;
    case VGRU_REG_STATUS:
        val = s->status;
        break;
    case VGRU_REG_FQ_BASE:
    case VGRU_REG_FQ_BASE + 4:
        val = vgru_half(s->fq_base_reg, addr);
        break;
    case VGRU_REG_FQ_SIZE:
        val = s->fq_size_reg;
        break;
    case VGRU_REG_FQ_HEAD:
        val = s->fq_head;
        break;
    case VGRU_REG_FQ_TAIL:
        val = s->fq_tail;
        break;
    case VGRU_REG_CTX_SEL:
        val = s->ctx_sel;
        break;
    case VGRU_REG_CTX_TAG:
        val = s->ctx_tag;
        break;
    case VGRU_REG_TLB_VADDR:
    case VGRU_REG_TLB_VADDR + 4:
        val = vgru_half(s->tlb_vaddr, addr);
        break;
    case VGRU_REG_TLB_PADDR:
    case VGRU_REG_TLB_PADDR + 4:
        val = vgru_half(s->tlb_paddr, addr);
        break;
    case VGRU_REG_TLB_CTX:
        val = s->tlb_ctx;
        break;
    case VGRU_REG_TLB_FLAGS:
        val = s->tlb_flags;
        break;
    case VGRU_REG_INV_START:
    case VGRU_REG_INV_START + 4:
        val = vgru_half(s->inv_start, addr);
        break;
    case VGRU_REG_INV_LEN:
    case VGRU_REG_INV_LEN + 4:
        val = vgru_half(s->inv_len, addr);
        break;
    case VGRU_REG_INV_CTX:
        val = s->inv_ctx;
        break;
    case VGRU_REG_INV_DONE:
        val = s->inv_done;
        break;
    case VGRU_REG_RESP_CTX:
        val = s->resp_ctx;
        break;
    case VGRU_REG_RESP_CB:
        val = s->resp_cb;
        break;
    case VGRU_REG_RESP_CODE:
        val = s->resp_code;
        break;
    case VGRU_REG_STAT(0) ... VGRU_REG_STAT(VGRU_STAT_NR) - 1:
        val = vgru_half(s->stats[(addr - VGRU_REG_STAT(0)) / 8], addr);
        break;
    default:
        /* command registers and holes read as zero */
        break;
    }
    trace_vgru_ctrl_read(addr, val);
    return val;
}

static void vgru_ctrl_write(void *opaque, hwaddr addr, uint64_t val,
                            unsigned size)
{
    VgruState *s = opaque;

    trace_vgru_ctrl_write(addr, val);
    switch (addr) {
    case VGRU_REG_CTRL:
        vgru_write_ctrl(s, val);
        break;
    case VGRU_REG_FQ_BASE:
    case VGRU_REG_FQ_BASE + 4:
        vgru_set_half(&s->fq_base_reg, addr, val);
        break;
    case VGRU_REG_FQ_SIZE:
        s->fq_size_reg = val;
        break;
    case VGRU_REG_FQ_HEAD:
        if ((uint32_t)(s->fq_tail - val) > s->fq_size) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "vgru: fault queue head %u beyond tail %u\n",
                          (uint32_t)val, s->fq_tail);
            break;
        }
        s->fq_head = val;
        vgru_post_waiting_faults(s);
        break;
    case VGRU_REG_CTX_SEL:
        s->ctx_sel = val;
        break;
    case VGRU_REG_CTX_TAG:
        s->ctx_tag = val;
        break;
    case VGRU_REG_CTX_CMD:
        vgru_ctx_command(s, val);
        break;
    case VGRU_REG_TLB_VADDR:
    case VGRU_REG_TLB_VADDR + 4:
        vgru_set_half(&s->tlb_vaddr, addr, val);
        break;
    case VGRU_REG_TLB_PADDR:
    case VGRU_REG_TLB_PADDR + 4:
        vgru_set_half(&s->tlb_paddr, addr, val);
        break;
    case VGRU_REG_TLB_CTX:
        s->tlb_ctx = val;
        break;
    case VGRU_REG_TLB_FLAGS:
        s->tlb_flags = val;
        break;
    case VGRU_REG_TLB_CMD:
        if (val == VGRU_TLB_CMD_DROPIN) {
            vgru_tlb_dropin(s);
        } else {
            qemu_log_mask(LOG_GUEST_ERROR, "vgru: bad TLB command %u\n",
                          (uint32_t)val);
        }
        break;
    case VGRU_REG_INV_START:
    case VGRU_REG_INV_START + 4:
        vgru_set_half(&s->inv_start, addr, val);
        break;
    case VGRU_REG_INV_LEN:
    case VGRU_REG_INV_LEN + 4:
        vgru_set_half(&s->inv_len, addr, val);
        break;
    case VGRU_REG_INV_CTX:
        s->inv_ctx = val;
        break;
    case VGRU_REG_INV_CMD:
        vgru_invalidate(s, val);
        break;
    case VGRU_REG_RESP_CTX:
        s->resp_ctx = val;
        break;
    case VGRU_REG_RESP_CB:
        s->resp_cb = val;
        break;
    case VGRU_REG_RESP_CODE:
        s->resp_code = val;
        break;
    case VGRU_REG_RESP_CMD:
        vgru_fault_response(s, val);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: write to read-only or unknown register 0x%"
                      HWADDR_PRIx "\n", addr);
        break;
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
    return &s->contexts[*ctx].cbs[*cbi];
}

static uint64_t vgru_window_read(void *opaque, hwaddr addr, unsigned size)
{
    VgruState *s = opaque;
    uint32_t ctx, cbi;
    hwaddr reg;
    VgruCb *cb = vgru_window_cb(s, addr, &ctx, &cbi, &reg);

    if (!cb) {
        return 0;
    }
    switch (reg) {
    case VGRU_CB_OPCODE:
        return cb->opcode;
    case VGRU_CB_FLAGS:
        return cb->flags;
    case VGRU_CB_SRC:
    case VGRU_CB_SRC + 4:
        return vgru_half(cb->src, reg);
    case VGRU_CB_DST:
    case VGRU_CB_DST + 4:
        return vgru_half(cb->dst, reg);
    case VGRU_CB_LEN:
    case VGRU_CB_LEN + 4:
        return vgru_half(cb->len, reg);
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
    VgruCb *cb = vgru_window_cb(s, addr, &ctx, &cbi, &reg);

    if (!cb) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: window write at 0x%" HWADDR_PRIx
                      " outside an enabled context's CBs\n", addr);
        return;
    }
    if (cb->status == VGRU_CB_ACTIVE || cb->status == VGRU_CB_FAULT) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: write to busy CB %u/%u ignored\n", ctx, cbi);
        return;
    }
    switch (reg) {
    case VGRU_CB_OPCODE:
        cb->opcode = val;
        break;
    case VGRU_CB_FLAGS:
        cb->flags = val;
        break;
    case VGRU_CB_SRC:
    case VGRU_CB_SRC + 4:
        vgru_set_half(&cb->src, reg, val);
        break;
    case VGRU_CB_DST:
    case VGRU_CB_DST + 4:
        vgru_set_half(&cb->dst, reg, val);
        break;
    case VGRU_CB_LEN:
    case VGRU_CB_LEN + 4:
        vgru_set_half(&cb->len, reg, val);
        break;
    case VGRU_CB_DOORBELL:
        if (val == VGRU_CB_START) {
            vgru_cb_start(s, ctx, cbi);
        } else {
            qemu_log_mask(LOG_GUEST_ERROR, "vgru: bad doorbell value %u\n",
                          (uint32_t)val);
        }
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
    if (s->tlb_sets == 0 || s->tlb_ways == 0 ||
        (uint64_t)s->tlb_sets * s->tlb_ways > VGRU_MAX_TLB) {
        error_setg(errp, "vgru: tlb-sets * tlb-ways must be 1..%u",
                   VGRU_MAX_TLB);
        return;
    }

    if (msix_init_exclusive_bar(pdev, VGRU_MSIX_NR, VGRU_MSIX_BAR, errp)) {
        return;
    }

    s->contexts = g_new0(VgruContext, s->nr_contexts);
    for (uint32_t c = 0; c < s->nr_contexts; c++) {
        s->contexts[c].cbs = g_new0(VgruCb, s->nr_cbs);
    }
    s->tlb = g_new0(VgruTlbEntry, s->tlb_sets * s->tlb_ways);
    s->tlb_victim = g_new0(uint32_t, s->tlb_sets);
    s->run_bh = qemu_bh_new_guarded(vgru_run, s,
                                    &DEVICE(s)->mem_reentrancy_guard);

    memory_region_init_io(&s->ctrl_mmio, OBJECT(s), &vgru_ctrl_ops, s,
                          "vgru-ctrl", VGRU_CTRL_SIZE);
    pci_register_bar(pdev, VGRU_CTRL_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->ctrl_mmio);

    window_size = pow2ceil((uint64_t)s->nr_contexts * VGRU_WINDOW_STRIDE);
    memory_region_init_io(&s->window_mmio, OBJECT(s), &vgru_window_ops, s,
                          "vgru-window", window_size);
    pci_register_bar(pdev, VGRU_WINDOW_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->window_mmio);

    for (unsigned v = 0; v < VGRU_MSIX_NR; v++) {
        msix_vector_use(pdev, v);
    }
}

static void vgru_exit(PCIDevice *pdev)
{
    VgruState *s = VGRU(pdev);

    qemu_bh_delete(s->run_bh);
    for (uint32_t c = 0; c < s->nr_contexts; c++) {
        g_free(s->contexts[c].cbs);
    }
    g_free(s->contexts);
    g_free(s->tlb);
    g_free(s->tlb_victim);
    msix_uninit_exclusive_bar(pdev);
}

static void vgru_reset(DeviceState *dev)
{
    VgruState *s = VGRU(dev);
    PCIDevice *pdev = PCI_DEVICE(dev);

    vgru_reset_state(s);
    msix_reset(pdev);
    for (unsigned v = 0; v < VGRU_MSIX_NR; v++) {
        msix_vector_use(pdev, v);
    }
}

static const VMStateDescription vmstate_vgru = {
    .name = "vgru",
    .unmigratable = 1,      /* TLB and CB state are not described yet */
};

static Property vgru_properties[] = {
    DEFINE_PROP_UINT32("contexts", VgruState, nr_contexts, 16),
    DEFINE_PROP_UINT32("cbs", VgruState, nr_cbs, 4),
    DEFINE_PROP_UINT32("tlb-sets", VgruState, tlb_sets, 64),
    DEFINE_PROP_UINT32("tlb-ways", VgruState, tlb_ways, 4),
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
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    },
};

static void vgru_register_types(void)
{
    type_register_static(&vgru_info);
}

type_init(vgru_register_types)
