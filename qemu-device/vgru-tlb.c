/*
 * vgru: the TLB, and the translations a command block holds.
 *
 * The TLB is set-associative, every entry tagged with its context.  A
 * context flush costs O(1): each context has an epoch, and entries of an
 * older epoch are dead (and the first choice of victim).  A range flush
 * probes the sets of the range's pages when the range is smaller than the
 * set count, and scans the table otherwise.  Everything here runs with
 * VgruState.lock held.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "trace.h"
#include "vgru-internal.h"

/* tlb_sets is a power of two (realize checks it): a mask, not a division */
static uint32_t vgru_tlb_set(VgruState *s, uint32_t ctx, uint64_t vpn)
{
    return (vpn ^ ((uint64_t)ctx * 0x9e3779b1u)) & (s->tlb_sets - 1);
}

static bool vgru_tlb_live(VgruState *s, VgruTlbEntry *e)
{
    return e->valid && e->epoch == s->contexts[e->ctx].epoch;
}

static VgruTlbEntry *vgru_tlb_lookup(VgruState *s, uint32_t ctx, uint64_t vpn)
{
    VgruTlbEntry *way = &s->tlb[vgru_tlb_set(s, ctx, vpn) * s->tlb_ways];
    uint64_t epoch = s->contexts[ctx].epoch;

    for (uint32_t i = 0; i < s->tlb_ways; i++) {
        if (way[i].valid && way[i].ctx == ctx && way[i].vpn == vpn &&
            way[i].epoch == epoch) {
            return &way[i];
        }
    }
    return NULL;
}

static void vgru_tlb_kill(VgruState *s, VgruTlbEntry *e)
{
    s->contexts[e->ctx].nr_entries--;
    e->valid = false;
}

/*
 * A drop-in also refreshes the holds of that page, and hands it to CBs
 * waiting for it, so that their restart finds it even if it is evicted.
 */
static void vgru_holds_dropin(VgruState *s, uint32_t ctx, VgruTlbEntry *e)
{
    for (uint32_t b = 0; b < s->nr_cbs; b++) {
        VgruCb *cb = vgru_cb(s, ctx, b);

        for (int h = 0; h < VGRU_NR_HOLDS; h++) {
            VgruHold *hold = &cb->hold[h];

            if (hold->valid && hold->vpn == e->vpn) {
                hold->counted &= hold->ppn == e->ppn;
                hold->ppn = e->ppn;
                hold->writable = e->writable;
            }
        }
        if (cb->fault.queued && cb->fault_addr >> VGRU_PAGE_SHIFT == e->vpn) {
            bool write = cb->fault_flags & VGRU_FAULT_WRITE;

            if (!write || e->writable) {
                cb->hold[write ? VGRU_HOLD_DST : VGRU_HOLD_SRC] = (VgruHold) {
                    .vpn = e->vpn,
                    .ppn = e->ppn,
                    .valid = true,
                    .writable = e->writable,
                };
            }
        }
    }
}

/*
 * x-evict-every: evict the next live entry other than @keep, in TLB slot
 * order from where the last one was found, as a full set would.
 */
static void vgru_tlb_evict(VgruState *s, VgruTlbEntry *keep)
{
    uint32_t n = s->tlb_sets * s->tlb_ways;

    for (uint32_t i = 0; i < n; i++) {
        uint32_t slot = (s->evict_next + i) % n;
        VgruTlbEntry *e = &s->tlb[slot];

        if (e != keep && vgru_tlb_live(s, e)) {
            trace_vgru_inject("evict", s->inj_dropins);
            vgru_tlb_kill(s, e);
            s->evict_next = (slot + 1) % n;
            return;
        }
    }
}

void vgru_tlb_dropin(VgruState *s)
{
    uint32_t ctx = s->tlb_ctx;
    uint64_t vpn = s->tlb_vaddr >> VGRU_PAGE_SHIFT;
    uint64_t ppn = s->tlb_paddr >> VGRU_PAGE_SHIFT;
    bool writable = s->tlb_flags & VGRU_TLB_WRITE;
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
    /*
     * A read-only drop-in of a page already writable at the same bus
     * address (a read fault resolved after a write fault of the same page)
     * keeps it writable: no permission ping-pong between two CBs.
     */
    if (e && e->writable && e->ppn == ppn) {
        writable = true;
    }
    if (!e) {
        set = vgru_tlb_set(s, ctx, vpn);
        way = &s->tlb[set * s->tlb_ways];
        for (uint32_t i = 0; i < s->tlb_ways && !e; i++) {
            if (!vgru_tlb_live(s, &way[i])) {
                e = &way[i];
            }
        }
        if (!e) {
            e = &way[s->tlb_victim[set]];
            s->tlb_victim[set] = (s->tlb_victim[set] + 1) % s->tlb_ways;
            vgru_tlb_kill(s, e);
        }
        s->contexts[ctx].nr_entries++;
    }
    e->valid = true;
    e->ctx = ctx;
    e->vpn = vpn;
    e->epoch = s->contexts[ctx].epoch;
    e->ppn = ppn;
    e->writable = writable;
    s->stats[VGRU_STAT_DROPINS]++;
    vgru_holds_dropin(s, ctx, e);
    trace_vgru_dropin(ctx, s->tlb_vaddr, s->tlb_paddr, s->tlb_flags);
    if (vgru_inject(&s->inj_dropins, s->x_evict_every)) {
        vgru_tlb_evict(s, e);
    }
}

static bool vgru_in(uint64_t vpn, uint64_t first, uint64_t last)
{
    return vpn >= first && vpn <= last;
}

/* Flush [first, last] of one context: TLB entries (counted) and holds. */
static uint32_t vgru_tlb_flush_ctx(VgruState *s, uint32_t ctx,
                                   uint64_t first, uint64_t last)
{
    VgruContext *c = &s->contexts[ctx];
    uint32_t removed = 0;

    for (uint32_t b = 0; b < s->nr_cbs; b++) {
        VgruCb *cb = &c->cbs[b];

        for (int h = 0; h < VGRU_NR_HOLDS; h++) {
            if (vgru_in(cb->hold[h].vpn, first, last)) {
                cb->hold[h].valid = false;
            }
        }
    }
    if (c->nr_entries == 0) {
        return 0;
    }
    if (first == 0 && last >= UINT64_MAX >> VGRU_PAGE_SHIFT) {
        removed = c->nr_entries;
        c->nr_entries = 0;
        c->epoch++;
        return removed;
    }
    if (last - first < s->tlb_sets) {
        for (uint64_t vpn = first;; vpn++) {
            VgruTlbEntry *e = vgru_tlb_lookup(s, ctx, vpn);

            if (e) {
                vgru_tlb_kill(s, e);
                removed++;
            }
            if (vpn == last || c->nr_entries == 0) {
                break;
            }
        }
        return removed;
    }
    for (uint32_t i = 0; i < s->tlb_sets * s->tlb_ways && c->nr_entries; i++) {
        VgruTlbEntry *e = &s->tlb[i];

        if (e->ctx == ctx && vgru_tlb_live(s, e) &&
            vgru_in(e->vpn, first, last)) {
            vgru_tlb_kill(s, e);
            removed++;
        }
    }
    return removed;
}

/*
 * Remove the translations of @ctx (every enabled context if @all) for
 * virtual pages [first, last]; returns the TLB entries removed.
 */
uint32_t vgru_tlb_flush(VgruState *s, bool all, uint32_t ctx,
                        uint64_t first, uint64_t last)
{
    uint32_t removed = 0;

    if (!all) {
        return vgru_tlb_flush_ctx(s, ctx, first, last);
    }
    /* a disabled context has neither entries nor holds */
    for (uint32_t c = 0; c < s->nr_contexts; c++) {
        if (s->contexts[c].enabled) {
            removed += vgru_tlb_flush_ctx(s, c, first, last);
        }
    }
    return removed;
}

/*
 * Translate @va for @cb's current piece: from the hold @h when it still
 * names that page, else from the TLB (and keep it in the hold).  On a miss,
 * or a write through a read-only translation, the fault is described in
 * @cb and false returned.  Each translation counts as one TLB hit however
 * often a restarted command reuses it.
 */
bool vgru_cb_translate(VgruState *s, VgruCb *cb, int h, uint64_t va,
                       dma_addr_t *pa)
{
    bool write = h == VGRU_HOLD_DST;
    uint64_t vpn = va >> VGRU_PAGE_SHIFT;
    VgruHold *hold = &cb->hold[h];
    VgruTlbEntry *e;

    if (!hold->valid || hold->vpn != vpn || (write && !hold->writable)) {
        e = vgru_tlb_lookup(s, cb->ctx, vpn);
        if (!e || (write && !e->writable)) {
            s->stats[VGRU_STAT_TLB_MISSES]++;
            cb->fault_addr = va;
            cb->fault_flags = (write ? VGRU_FAULT_WRITE : 0) |
                              (e ? VGRU_FAULT_PERM : 0);
            return false;
        }
        *hold = (VgruHold) {
            .vpn = vpn,
            .ppn = e->ppn,
            .valid = true,
            .writable = e->writable,
        };
    }
    if (!hold->counted) {
        s->stats[VGRU_STAT_TLB_HITS]++;
        hold->counted = true;
    }
    *pa = (hold->ppn << VGRU_PAGE_SHIFT) | (va & (VGRU_PAGE_SIZE - 1));
    return true;
}

void vgru_cb_drop_holds(VgruCb *cb)
{
    for (int h = 0; h < VGRU_NR_HOLDS; h++) {
        cb->hold[h].valid = false;
    }
}

void vgru_tlb_reset(VgruState *s)
{
    memset(s->tlb, 0, sizeof(*s->tlb) * s->tlb_sets * s->tlb_ways);
    memset(s->tlb_victim, 0, sizeof(*s->tlb_victim) * s->tlb_sets);
    s->evict_next = 0;
    for (uint32_t c = 0; c < s->nr_contexts; c++) {
        s->contexts[c].epoch = 0;
        s->contexts[c].nr_entries = 0;
    }
}
