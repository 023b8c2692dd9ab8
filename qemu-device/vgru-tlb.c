/*
 * vgru: the TLB, and the translations a command block holds.
 *
 * The TLB is set-associative, every entry tagged with its context.  A
 * context flush costs O(1): each context has an epoch, and entries of an
 * older epoch are dead (and the first choice of victim).  A range flush
 * probes the sets of the range's pages when the range is smaller than the
 * set count, and scans the table otherwise.  A set replaces its entries
 * in the order they went in, whatever a flush left dead in it
 * (vgru_fifo_slot).  Everything here runs with VgruState.lock held.
 *
 * 2 MiB entries live apart, in a small fully associative array (replaced
 * as a set is) with the same context tag and epoch.  Indexing them in
 * the sets would need a second probe per lookup anyway (a 4 KiB number
 * does not name its 2 MiB set), a range flush would have to find the huge
 * entry that covers a page from any of its 512 sets, and a huge entry
 * would evict 4 KiB ones it has nothing to do with.  Processes map few
 * huge pages at once, so a scan of the array is cheap.  A 4 KiB entry
 * inside a huge one may coexist with it; lookups try 4 KiB first.
 * A hold taken from a huge entry keeps all of it, so that a copy steps
 * 2 MiB at a time; it goes with any invalidation of its 2 MiB, even once
 * the entry itself is evicted.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/bswap.h"
#include "sysemu/dma.h"
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

/*
 * Start loading the set of @vpn into the cache.  A big table (the model
 * benchmark's is 2 MiB) does not stay cached next to the data a copy
 * moves, and a lookup that waits for its set costs more than its scan.
 */
void vgru_tlb_prefetch(VgruState *s, uint32_t ctx, uint64_t vpn)
{
    __builtin_prefetch(&s->tlb[vgru_tlb_set(s, ctx, vpn) * s->tlb_ways]);
}

/* The 2 MiB entry of @ctx covering 4 KiB page @vpn, or NULL. */
static VgruTlbEntry *vgru_huge_lookup(VgruState *s, uint32_t ctx, uint64_t vpn)
{
    uint64_t hvpn = vpn / VGRU_HUGE_PAGES;

    for (uint32_t i = 0; i < s->tlb_huge_entries; i++) {
        VgruTlbEntry *e = &s->tlb_huge[i];

        if (e->ctx == ctx && e->vpn == hvpn && vgru_tlb_live(s, e)) {
            return e;
        }
    }
    return NULL;
}

static void vgru_tlb_kill(VgruState *s, VgruTlbEntry *e)
{
    s->contexts[e->ctx].nr_entries--;
    e->valid = false;
}

static bool vgru_hold_in(const VgruHold *hold, uint64_t first, uint64_t last)
{
    return hold->vpn <= last && first <= hold->vpn + hold->pages - 1;
}

/*
 * A drop-in also refreshes the holds it covers, and hands itself to CBs
 * waiting for it, so that their restart finds it even if it is evicted.
 * A 4 KiB drop-in inside a 2 MiB hold keeps the hold if it names the same
 * bus page with no less permission, else drops it (the next lookup then
 * decides which of the two the CB uses).
 */
static void vgru_holds_dropin(VgruState *s, uint32_t ctx, VgruTlbEntry *e,
                              bool huge)
{
    uint64_t pages = huge ? VGRU_HUGE_PAGES : 1;
    uint64_t first = e->vpn * pages, last = first + pages - 1;

    for (uint32_t b = 0; b < s->nr_cbs; b++) {
        VgruCb *cb = vgru_cb(s, ctx, b);
        uint64_t fvpn = cb->fault_addr >> VGRU_PAGE_SHIFT;

        for (int h = 0; h < VGRU_NR_HOLDS; h++) {
            VgruHold *hold = &cb->hold[h];
            uint64_t ppn = e->ppn * pages + (hold->vpn - first);

            if (!hold->valid || !vgru_hold_in(hold, first, last)) {
                continue;
            }
            if (hold->pages > pages) {
                /* a 4 KiB page of a 2 MiB hold: kept if it agrees */
                if (hold->ppn + (first - hold->vpn) != e->ppn ||
                    (hold->writable && !e->writable)) {
                    hold->valid = false;
                }
                continue;
            }
            if (hold->ppn != ppn) {
                hold->counted_vpn = UINT64_MAX;     /* a new translation */
            }
            hold->ppn = ppn;
            hold->writable = e->writable;
        }
        if (cb->fault.queued && fvpn >= first && fvpn <= last) {
            bool write = cb->fault_flags & VGRU_FAULT_WRITE;

            if (!write || e->writable) {
                cb->hold[write ? VGRU_HOLD_DST : VGRU_HOLD_SRC] = (VgruHold) {
                    .vpn = first,
                    .ppn = e->ppn * pages,
                    .pages = pages,
                    .counted_vpn = UINT64_MAX,
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
    uint32_t n4k = s->tlb_sets * s->tlb_ways, n = n4k + s->tlb_huge_entries;

    for (uint32_t i = 0; i < n; i++) {
        uint32_t slot = (s->evict_next + i) % n;
        VgruTlbEntry *e = slot < n4k ? &s->tlb[slot] : &s->tlb_huge[slot - n4k];

        if (e != keep && vgru_tlb_live(s, e)) {
            trace_vgru_inject("evict", s->inj_dropins);
            vgru_tlb_kill(s, e);
            s->evict_next = (slot + 1) % n;
            return;
        }
    }
}

/*
 * Whether a drop-in of @vaddr -> @paddr with @flags is well formed;
 * logs it as a guest error if not.
 */
bool vgru_tlb_dropin_ok(VgruState *s, uint32_t ctx, uint64_t vaddr,
                        uint64_t paddr, uint32_t flags)
{
    uint64_t size = flags & VGRU_TLB_HUGE ? VGRU_HUGE_SIZE : VGRU_PAGE_SIZE;

    if (ctx >= s->nr_contexts || !s->contexts[ctx].enabled) {
        qemu_log_mask(LOG_GUEST_ERROR, "vgru: drop-in for bad context %u\n",
                      ctx);
        return false;
    }
    if (flags & ~VGRU_TLB_FLAGS_ALL) {
        qemu_log_mask(LOG_GUEST_ERROR, "vgru: drop-in with bad flags 0x%x\n",
                      flags);
        return false;
    }
    if ((vaddr | paddr) & (size - 1)) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: unaligned drop-in 0x%" PRIx64 " -> 0x%" PRIx64
                      " flags 0x%x\n", vaddr, paddr, flags);
        return false;
    }
    return true;
}

/*
 * The slot for a new entry among the @n ways of @way, replaced in the
 * order their entries went in: the live entries, read round from the
 * victim pointer *@victim, are oldest first, and the new one goes in at
 * the pointer, which then moves past it.  A free or dead way is used
 * first, but not out of that order: the live entries from the pointer up
 * to it move one way up into it, freeing the pointer's way.  Filling the
 * hole where it is would leave the pointer at an entry younger than
 * others (after any flush), and the set would evict it first.
 */
static VgruTlbEntry *vgru_fifo_slot(VgruState *s, VgruTlbEntry *way,
                                    uint32_t n, uint32_t *victim)
{
    uint32_t v = *victim, i, hole;

    for (i = 0; i < n; i++) {
        if (!vgru_tlb_live(s, &way[(v + i) % n])) {
            break;
        }
    }
    if (i == n) {
        vgru_tlb_kill(s, &way[v]);
    } else {
        for (; i > 0; i--) {
            hole = (v + i) % n;
            way[hole] = way[(v + i - 1) % n];
        }
    }
    *victim = (v + 1) % n;
    return &way[v];
}

/* The slot for a new 4 KiB entry in its set. */
static VgruTlbEntry *vgru_tlb_slot(VgruState *s, uint32_t ctx, uint64_t vpn)
{
    uint32_t set = vgru_tlb_set(s, ctx, vpn);

    return vgru_fifo_slot(s, &s->tlb[set * s->tlb_ways], s->tlb_ways,
                          &s->tlb_victim[set]);
}

/* The same for a 2 MiB entry. */
static VgruTlbEntry *vgru_huge_slot(VgruState *s)
{
    return vgru_fifo_slot(s, s->tlb_huge, s->tlb_huge_entries,
                          &s->huge_victim);
}

/* Drop one translation in: the TLB_CMD_DROPIN register command, or a list. */
void vgru_tlb_dropin(VgruState *s, uint32_t ctx, uint64_t vaddr,
                     uint64_t paddr, uint32_t flags)
{
    bool huge = flags & VGRU_TLB_HUGE;
    unsigned shift = huge ? VGRU_HUGE_SHIFT : VGRU_PAGE_SHIFT;
    uint64_t vpn = vaddr >> shift, ppn = paddr >> shift;
    bool writable = flags & VGRU_TLB_WRITE;
    VgruTlbEntry *e;

    if (!vgru_tlb_dropin_ok(s, ctx, vaddr, paddr, flags)) {
        return;
    }
    e = huge ? vgru_huge_lookup(s, ctx, vpn * VGRU_HUGE_PAGES)
             : vgru_tlb_lookup(s, ctx, vpn);
    /*
     * A read-only drop-in of a page already writable at the same bus
     * address (a read fault resolved after a write fault of the same page)
     * keeps it writable: no permission ping-pong between two CBs.
     */
    if (e && e->writable && e->ppn == ppn) {
        writable = true;
    }
    if (!e) {
        e = huge ? vgru_huge_slot(s) : vgru_tlb_slot(s, ctx, vpn);
        s->contexts[ctx].nr_entries++;
    }
    e->valid = true;
    e->ctx = ctx;
    e->vpn = vpn;
    e->epoch = s->contexts[ctx].epoch;
    e->ppn = ppn;
    e->writable = writable;
    s->stats[VGRU_STAT_DROPINS]++;
    vgru_holds_dropin(s, ctx, e, huge);
    trace_vgru_dropin(ctx, vaddr, paddr, flags);
    if (vgru_inject(&s->inj_dropins, s->x_evict_every)) {
        vgru_tlb_evict(s, e);
    }
}

static bool vgru_tl_bad(const char *why, uint64_t addr, uint32_t n)
{
    qemu_log_mask(LOG_GUEST_ERROR,
                  "vgru: translation list at 0x%" PRIx64 " ignored: %s %u\n",
                  addr, why, n);
    return false;
}

/*
 * Read the list at TLB_LIST into tl_buf and check all of it; false (a
 * guest error logged) if any of it is wrong.
 */
static bool vgru_tl_load(VgruState *s, uint32_t *ctx, uint32_t *nt,
                         uint32_t *nr)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint64_t addr = s->tlb_list;
    uint8_t *buf = s->tl_buf;

    if (addr & 63) {
        return vgru_tl_bad("misaligned", addr, 0);
    }
    if (pci_dma_read(pdev, addr, buf, VGRU_TL_HDR_SIZE) != MEMTX_OK) {
        return vgru_tl_bad("header DMA failed", addr, 0);
    }
    *ctx = ldl_le_p(buf + VGRU_TL_CTX);
    *nt = ldl_le_p(buf + VGRU_TL_NR_TRANS);
    *nr = ldl_le_p(buf + VGRU_TL_NR_RESP);
    if (*ctx >= s->nr_contexts || !s->contexts[*ctx].enabled) {
        return vgru_tl_bad("bad context", addr, *ctx);
    }
    if (*nt > VGRU_TL_MAX_TRANS) {
        return vgru_tl_bad("translations", addr, *nt);
    }
    if (*nr > VGRU_TL_MAX_RESP) {
        return vgru_tl_bad("responses", addr, *nr);
    }
    if (ldl_le_p(buf + VGRU_TL_HDR_SIZE - 4)) {
        return vgru_tl_bad("reserved word", addr, 0);
    }
    if (pci_dma_read(pdev, addr + VGRU_TL_HDR_SIZE, buf + VGRU_TL_HDR_SIZE,
                     VGRU_TL_SIZE(*nt, *nr) - VGRU_TL_HDR_SIZE) != MEMTX_OK) {
        return vgru_tl_bad("body DMA failed", addr, 0);
    }
    for (uint32_t i = 0; i < *nt; i++) {
        uint8_t *t = buf + VGRU_TL_HDR_SIZE + i * VGRU_TL_TRANS_SIZE;
        uint64_t va = ldq_le_p(t + VGRU_TL_T_VADDR);

        if (!vgru_tlb_dropin_ok(s, *ctx, va & ~(VGRU_PAGE_SIZE - 1),
                                ldq_le_p(t + VGRU_TL_T_PADDR),
                                va & (VGRU_PAGE_SIZE - 1))) {
            return vgru_tl_bad("translation", addr, i);
        }
    }
    for (uint32_t i = 0; i < *nr; i++) {
        uint8_t *r = buf + VGRU_TL_SIZE(*nt, i);
        uint32_t cmd = ldl_le_p(r + VGRU_TL_R_CMD);

        if (ldl_le_p(r + VGRU_TL_R_CB) >= s->nr_cbs ||
            (cmd != VGRU_RESP_RESTART && cmd != VGRU_RESP_FAIL &&
             cmd != VGRU_RESP_RESTART_CALLER)) {
            return vgru_tl_bad("response", addr, i);
        }
    }
    return true;
}

/* Apply response @i of the list loaded in tl_buf, with command @cmd. */
static void vgru_tl_respond(VgruState *s, uint32_t ctx, uint32_t nt,
                            uint32_t i, uint32_t cmd)
{
    uint8_t *r = s->tl_buf + VGRU_TL_SIZE(nt, i);

    vgru_respond(s, ctx, ldl_le_p(r + VGRU_TL_R_CB),
                 ldl_le_p(r + VGRU_TL_R_SEQ), cmd,
                 ldl_le_p(r + VGRU_TL_R_CODE));
}

/*
 * TLB_CMD_LIST: every translation dropped in, then every response applied,
 * as the registers would, RESTART_CALLER last (its command may run on in
 * this write; only the first runs on, the others are plain RESTARTs, so
 * one write moves at most caller-run-bytes); nothing at all if the list
 * is not well formed.
 */
void vgru_tlb_list(VgruState *s)
{
    uint32_t ctx, nt, nr, cmd;
    uint8_t *buf = s->tl_buf;
    bool ran_on = false;

    if (!vgru_tl_load(s, &ctx, &nt, &nr)) {
        s->stats[VGRU_STAT_LIST_ERRORS]++;
        return;
    }
    trace_vgru_list(ctx, s->tlb_list, nt, nr);
    for (uint32_t i = 0; i < nt; i++) {
        uint8_t *t = buf + VGRU_TL_HDR_SIZE + i * VGRU_TL_TRANS_SIZE;
        uint64_t va = ldq_le_p(t + VGRU_TL_T_VADDR);

        vgru_tlb_dropin(s, ctx, va & ~(VGRU_PAGE_SIZE - 1),
                        ldq_le_p(t + VGRU_TL_T_PADDR),
                        va & (VGRU_PAGE_SIZE - 1));
    }
    for (uint32_t i = 0; i < nr; i++) {
        cmd = ldl_le_p(buf + VGRU_TL_SIZE(nt, i) + VGRU_TL_R_CMD);
        if (cmd != VGRU_RESP_RESTART_CALLER) {
            vgru_tl_respond(s, ctx, nt, i, cmd);
        }
    }
    for (uint32_t i = 0; i < nr; i++) {
        cmd = ldl_le_p(buf + VGRU_TL_SIZE(nt, i) + VGRU_TL_R_CMD);
        if (cmd == VGRU_RESP_RESTART_CALLER) {
            vgru_tl_respond(s, ctx, nt, i,
                            ran_on ? VGRU_RESP_RESTART : cmd);
            ran_on = true;
        }
    }
    s->stats[VGRU_STAT_LISTS]++;
}

static bool vgru_in(uint64_t vpn, uint64_t first, uint64_t last)
{
    return vpn >= first && vpn <= last;
}

/*
 * Flush [*first, *last] of one context: TLB entries (counted, a 2 MiB one
 * once) and holds.  A 2 MiB entry that overlaps the range goes whole, and
 * the range grows to cover it: the holds taken from it, and the batches
 * using it (vgru_invalidate), may be anywhere in its 2 MiB.
 */
static uint32_t vgru_tlb_flush_ctx(VgruState *s, uint32_t ctx,
                                   uint64_t *first, uint64_t *last)
{
    VgruContext *c = &s->contexts[ctx];
    uint32_t removed = 0;
    uint64_t hfirst = *first, hlast = *last, f, l;

    for (uint32_t i = 0; i < s->tlb_huge_entries && c->nr_entries; i++) {
        VgruTlbEntry *e = &s->tlb_huge[i];
        uint64_t lo = e->vpn * VGRU_HUGE_PAGES, hi = lo + VGRU_HUGE_PAGES - 1;

        if (e->ctx == ctx && vgru_tlb_live(s, e) &&
            lo <= *last && *first <= hi) {
            vgru_tlb_kill(s, e);
            removed++;
            hfirst = MIN(hfirst, lo);
            hlast = MAX(hlast, hi);
        }
    }
    f = hfirst;
    l = hlast;
    for (uint32_t b = 0; b < s->nr_cbs; b++) {
        VgruCb *cb = &c->cbs[b];

        for (int h = 0; h < VGRU_NR_HOLDS; h++) {
            VgruHold *hold = &cb->hold[h];

            if (!hold->valid || !vgru_hold_in(hold, f, l)) {
                continue;
            }
            hold->valid = false;
            /* as for its entry, which may have been evicted meanwhile */
            hfirst = MIN(hfirst, hold->vpn);
            hlast = MAX(hlast, hold->vpn + hold->pages - 1);
        }
    }
    if (c->nr_entries == 0) {
        goto out;
    }
    if (*first == 0 && *last >= UINT64_MAX >> VGRU_PAGE_SHIFT) {
        removed += c->nr_entries;
        c->nr_entries = 0;
        c->epoch++;
        goto out;
    }
    if (*last - *first < s->tlb_sets) {
        for (uint64_t vpn = *first;; vpn++) {
            VgruTlbEntry *e = vgru_tlb_lookup(s, ctx, vpn);

            if (e) {
                vgru_tlb_kill(s, e);
                removed++;
            }
            if (vpn == *last || c->nr_entries == 0) {
                break;
            }
        }
        goto out;
    }
    for (uint32_t i = 0; i < s->tlb_sets * s->tlb_ways && c->nr_entries; i++) {
        VgruTlbEntry *e = &s->tlb[i];

        if (e->ctx == ctx && vgru_tlb_live(s, e) &&
            vgru_in(e->vpn, *first, *last)) {
            vgru_tlb_kill(s, e);
            removed++;
        }
    }
out:
    *first = hfirst;
    *last = hlast;
    return removed;
}

/*
 * Remove the translations of @ctx (every enabled context if @all) for
 * virtual pages [*first, *last]; returns the TLB entries removed, and
 * widens the range to the 2 MiB entries it removed.
 */
uint32_t vgru_tlb_flush(VgruState *s, bool all, uint32_t ctx,
                        uint64_t *first, uint64_t *last)
{
    uint64_t f = *first, l = *last;
    uint32_t removed = 0;

    if (!all) {
        return vgru_tlb_flush_ctx(s, ctx, first, last);
    }
    /* a disabled context has neither entries nor holds */
    for (uint32_t c = 0; c < s->nr_contexts; c++) {
        if (s->contexts[c].enabled) {
            uint64_t cf = f, cl = l;

            removed += vgru_tlb_flush_ctx(s, c, &cf, &cl);
            *first = MIN(*first, cf);
            *last = MAX(*last, cl);
        }
    }
    return removed;
}

/*
 * Count pages [@first, @last] of @hold as TLB hits, but not @first if the
 * hold's last use ended there (a piece restarted, or run on from the
 * middle of a page): one hit per page whenever a command moves on to it,
 * as if each 4 KiB page were a hold of its own.
 */
static void vgru_hold_count(VgruState *s, VgruHold *hold, uint64_t first,
                            uint64_t last)
{
    s->stats[VGRU_STAT_TLB_HITS] += last - first + 1 -
                                    (first == hold->counted_vpn);
    hold->counted_vpn = last;
}

/*
 * Translate @va for @cb's current piece: from the hold @h when it still
 * covers that page, else from the TLB (and keep it in the hold: a 2 MiB
 * translation whole).  On a miss, or a write through a read-only
 * translation, the fault is described in @cb and false returned.  Each
 * 4 KiB page counts as one TLB hit however often a restarted command
 * reuses its translation.
 */
bool vgru_cb_translate(VgruState *s, VgruCb *cb, int h, uint64_t va,
                       dma_addr_t *pa)
{
    bool write = h == VGRU_HOLD_DST;
    uint64_t vpn = va >> VGRU_PAGE_SHIFT;
    VgruHold *hold = &cb->hold[h];
    VgruTlbEntry *e;

    if (!hold->valid || vpn - hold->vpn >= hold->pages ||
        (write && !hold->writable)) {
        uint64_t first = vpn, ppn = 0, pages = 1;

        e = vgru_tlb_lookup(s, cb->ctx, vpn);
        if (e && (!write || e->writable)) {
            ppn = e->ppn;
        } else {
            /* a 4 KiB entry read-only, or none: a huge one may do */
            VgruTlbEntry *h = vgru_huge_lookup(s, cb->ctx, vpn);

            if (h && (!write || h->writable || !e)) {
                e = h;
                pages = VGRU_HUGE_PAGES;
                first = h->vpn * pages;
                ppn = h->ppn * pages;
            }
        }
        if (!e || (write && !e->writable)) {
            s->stats[VGRU_STAT_TLB_MISSES]++;
            cb->fault_addr = va;
            cb->fault_flags = (write ? VGRU_FAULT_WRITE : 0) |
                              (e ? VGRU_FAULT_PERM : 0);
            return false;
        }
        *hold = (VgruHold) {
            .vpn = first,
            .ppn = ppn,
            .pages = pages,
            .counted_vpn = UINT64_MAX,
            .valid = true,
            .writable = e->writable,
        };
    }
    vgru_hold_count(s, hold, vpn, vpn);
    *pa = ((hold->ppn + vpn - hold->vpn) << VGRU_PAGE_SHIFT) |
          (va & (VGRU_PAGE_SIZE - 1));
    return true;
}

/*
 * After vgru_cb_translate(@h, @va): the bytes from @va to the end of what
 * the same translation covers (to the end of its page, or of its 2 MiB).
 */
static uint64_t vgru_cb_hold_left(VgruCb *cb, int h, uint64_t va)
{
    const VgruHold *hold = &cb->hold[h];

    return ((hold->vpn + hold->pages) << VGRU_PAGE_SHIFT) - va;
}

/* A step uses @len bytes from @va of hold @h: count their pages. */
static void vgru_cb_hold_use(VgruState *s, VgruCb *cb, int h, uint64_t va,
                             uint64_t len)
{
    vgru_hold_count(s, &cb->hold[h], va >> VGRU_PAGE_SHIFT,
                    (va + len - 1) >> VGRU_PAGE_SHIFT);
}

/*
 * Translate the next step of @cb's COPY (@copy) or FILL: the bytes from
 * @src (a COPY's) and @dst, up to @len, that one translation of each end
 * covers (a 4 KiB page, or the rest of a 2 MiB one), their bus addresses
 * in *@spa and *@dpa.  Returns the step's bytes, 0 if an end missed (the
 * fault described in @cb).  The TLB sets of pages a few ahead start
 * loading meanwhile, unless the step is near @len (a 4 KiB command would
 * pay for prefetches it never uses).
 */
uint64_t vgru_cb_translate_step(VgruState *s, VgruCb *cb, bool copy,
                                uint64_t src, uint64_t dst, uint64_t len,
                                dma_addr_t *spa, dma_addr_t *dpa)
{
    uint64_t n = len;

    if (len > VGRU_TLB_AHEAD * VGRU_PAGE_SIZE) {
        if (copy) {
            vgru_tlb_prefetch(s, cb->ctx,
                              (src >> VGRU_PAGE_SHIFT) + VGRU_TLB_AHEAD);
        }
        vgru_tlb_prefetch(s, cb->ctx,
                          (dst >> VGRU_PAGE_SHIFT) + VGRU_TLB_AHEAD);
    }
    if (copy) {
        if (!vgru_cb_translate(s, cb, VGRU_HOLD_SRC, src, spa)) {
            return 0;
        }
        n = MIN(n, vgru_cb_hold_left(cb, VGRU_HOLD_SRC, src));
    }
    if (!vgru_cb_translate(s, cb, VGRU_HOLD_DST, dst, dpa)) {
        return 0;
    }
    n = MIN(n, vgru_cb_hold_left(cb, VGRU_HOLD_DST, dst));
    if (copy) {
        vgru_cb_hold_use(s, cb, VGRU_HOLD_SRC, src, n);
    }
    vgru_cb_hold_use(s, cb, VGRU_HOLD_DST, dst, n);
    return n;
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
    memset(s->tlb_huge, 0, sizeof(*s->tlb_huge) * s->tlb_huge_entries);
    s->huge_victim = 0;
    s->evict_next = 0;
    for (uint32_t c = 0; c < s->nr_contexts; c++) {
        s->contexts[c].epoch = 0;
        s->contexts[c].nr_entries = 0;
    }
}
