/*
 * vgru: the command engine.
 *
 * Worker threads run the commands outside the BQL.  Context c belongs to
 * worker c % workers, which keeps one FIFO run queue of the active CBs of
 * its contexts and gives each a turn of at most VGRU_SHARE bytes before
 * it goes to the back of the queue.
 *
 * A command runs in steps (VgruCb.phase): a BATCH reads its next entry
 * (LOAD), a command runs (RUN), its completion record is written (COMP),
 * then the BATCH goes on with the next entry or the CB ends.  Any step
 * may miss in the TLB; the CB then waits for the driver and repeats that
 * step, or, with NO_BLOCK, an operand miss ends the command.  COPY and
 * FILL move data in turns:
 *
 *   1. under the lock, translate the CB's next pieces (stopping at the
 *      first miss) and publish them as the worker's batch;
 *   2. without the lock, take the host pointers of both ends (runs of
 *      RAM kept while the memory map does not change, vgru_ram_view),
 *      copy or fill once, then mark exactly the bytes written (dirty
 *      tracking, TCG code invalidation, as address_space_unmap does);
 *   3. under the lock, account for the bytes, retire the batch and update
 *      INV_DONE, then go on, fault or requeue the CB.
 *
 * Every other step touches at most 64 bytes and does so with the lock
 * held, so no invalidation can come between its translation and its DMA.
 *
 * Only guest RAM is ever mapped: a target that is anything else (a BAR,
 * ROM, nothing) fails the command with ERR_DMA, because touching MMIO from
 * a worker would take the BQL, or re-enter this device, from the wrong
 * thread.
 *
 * The invalidation handshake.  An invalidation removes its entries at
 * once; INV_DONE counts it only when no batch that translated before it
 * and overlaps it (same context, a page in its range) is still moving
 * data.  Such a batch is asked to stop after its current chunk, so the
 * wait is short, and the MMIO handler never waits: the worker that
 * retires the last such batch advances INV_DONE.
 *
 * Context DISABLE/ENABLE, CTRL.ENABLE=0, reset and VM stop do wait, with
 * the BQL, until the batches they affect are retired; the workers never
 * need the BQL, so that wait is bounded by one chunk.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/processor.h"
#include "qemu/rcu.h"
#include "exec/memory.h"
#include "sysemu/dma.h"
#include "trace.h"
#include "vgru-internal.h"

static VgruWorker *vgru_worker_of(VgruState *s, uint32_t ctx)
{
    return &s->workers[ctx % s->nr_workers];
}

/* Workers may start batches. */
static bool vgru_runnable(VgruState *s)
{
    return vgru_enabled(s) && s->vm_running && !s->stopping;
}

void vgru_engine_kick(VgruState *s)
{
    for (uint32_t i = 0; i < s->nr_workers; i++) {
        qemu_cond_signal(&s->workers[i].wake);
    }
}

/* Queue @cb at the back of its worker's run queue, or the front if @head. */
static void vgru_cb_queue_at(VgruState *s, VgruCb *cb, bool head)
{
    VgruWorker *w = vgru_worker_of(s, cb->ctx);

    assert(!cb->queued && !cb->busy);
    if (head) {
        QTAILQ_INSERT_HEAD(&w->runq, cb, run_link);
    } else {
        QTAILQ_INSERT_TAIL(&w->runq, cb, run_link);
    }
    cb->queued = true;
    /*
     * A busy worker finds it anyway, and one of a stopped engine must not
     * wake for it: a START written while disabled costs no thread switch.
     */
    if (w->idle && vgru_runnable(s)) {
        qemu_cond_signal(&w->wake);
    }
}

void vgru_cb_queue(VgruState *s, VgruCb *cb)
{
    vgru_cb_queue_at(s, cb, false);
}

/* The PROGRESS of @cb: entries of a BATCH, else bytes. */
static uint64_t vgru_cb_progress(const VgruCb *cb)
{
    return cb->top.opcode == VGRU_OP_BATCH ? cb->entry : cb->pos;
}

static void vgru_cb_unqueue(VgruState *s, VgruCb *cb)
{
    if (cb->queued) {
        QTAILQ_REMOVE(&vgru_worker_of(s, cb->ctx)->runq, cb, run_link);
        cb->queued = false;
    }
}

void vgru_cb_init(VgruCb *cb, uint32_t ctx, uint32_t index)
{
    memset(cb, 0, sizeof(*cb));
    cb->ctx = ctx;
    cb->index = index;
    cb->fault.cb = cb;
    cb->fault.type = VGRU_FR_FAULT;
    cb->notice.cb = cb;
    cb->notice.type = VGRU_FR_NOTICE;
}

static bool vgru_running(VgruCb *cb)
{
    return cb->status == VGRU_CB_ACTIVE || cb->status == VGRU_CB_FAULT;
}

/* No command of @cb's context started before @cb's is still running. */
static bool vgru_fence_clear(VgruState *s, VgruCb *cb)
{
    VgruCb *cbs = s->contexts[cb->ctx].cbs;

    for (uint32_t b = 0; b < s->nr_cbs; b++) {
        if (&cbs[b] != cb && vgru_running(&cbs[b]) &&
            cbs[b].start_seq < cb->start_seq) {
            return false;
        }
    }
    return true;
}

/* The command of @cb has ended with cur_error: publish it. */
static void vgru_cb_finish(VgruState *s, VgruCb *cb)
{
    VgruContext *c = &s->contexts[cb->ctx];
    uint32_t error = cb->cur_error;

    cb->status = error ? VGRU_CB_ERROR : VGRU_CB_DONE;
    cb->error = error;
    cb->result = cb->cur_result;
    cb->progress = vgru_cb_progress(cb);
    vgru_cb_drop_holds(cb);
    s->stats[error ? VGRU_STAT_ERRORS : VGRU_STAT_COMPLETED]++;
    trace_vgru_cb_finish(cb->ctx, cb->index, cb->status, error,
                         cb->progress);
    if (cb->armed || (cb->top.flags & VGRU_DF_INTERRUPT)) {
        cb->armed = false;
        vgru_notice(s, cb);
    }
    /* the common case, no FENCE waiting, does not touch the other CBs */
    if (c->nr_fencing) {
        uint32_t left = 0;

        for (uint32_t b = 0; b < s->nr_cbs; b++) {
            VgruCb *f = &c->cbs[b];

            if (f->fencing && vgru_fence_clear(s, f)) {
                f->fencing = false;
                vgru_cb_queue(s, f);
            } else {
                left += f->fencing;
            }
        }
        c->nr_fencing = left;
    }
}

static bool vgru_wraps(uint64_t addr, uint64_t len)
{
    /* the last byte may be at 2^64 - 1, not beyond */
    return len && len - 1 > UINT64_MAX - addr;
}

/* The error a descriptor ends with before it runs, or VGRU_ERR_NONE. */
static uint32_t vgru_desc_check(const VgruDesc *d, bool entry)
{
    if (d->flags & ~VGRU_DF_ALL) {
        return VGRU_ERR_OPCODE;
    }
    switch (d->opcode) {
    case VGRU_OP_NOP:
    case VGRU_OP_FENCE:
        break;
    case VGRU_OP_COPY:
        if (vgru_wraps(d->src, d->len) || vgru_wraps(d->dst, d->len)) {
            return VGRU_ERR_RANGE;
        }
        if (d->len && d->src <= d->dst + (d->len - 1) &&
            d->dst <= d->src + (d->len - 1)) {
            return VGRU_ERR_RANGE;      /* the ranges overlap */
        }
        break;
    case VGRU_OP_FILL:
        if (vgru_wraps(d->dst, d->len)) {
            return VGRU_ERR_RANGE;
        }
        break;
    case VGRU_OP_FETCH_ADD:
    case VGRU_OP_SWAP:
    case VGRU_OP_CAS:
        if (d->dst & 7) {
            return VGRU_ERR_ALIGN;
        }
        break;
    case VGRU_OP_BATCH:
        if (entry) {
            return VGRU_ERR_OPCODE;
        }
        if (d->len > VGRU_BATCH_MAX ||
            vgru_wraps(d->src, d->len * VGRU_DESC_SIZE)) {
            return VGRU_ERR_RANGE;
        }
        if (d->len && (d->src & (VGRU_DESC_SIZE - 1))) {
            return VGRU_ERR_ALIGN;
        }
        break;
    default:
        return VGRU_ERR_OPCODE;
    }
    if ((d->flags & VGRU_DF_COMPLETION) && (d->comp & (VGRU_COMP_SIZE - 1))) {
        return VGRU_ERR_ALIGN;
    }
    return VGRU_ERR_NONE;
}

/* A record is written for a command with COMPLETION and an aligned COMP. */
static bool vgru_wants_record(const VgruDesc *d)
{
    return (d->flags & VGRU_DF_COMPLETION) &&
           !(d->comp & (VGRU_COMP_SIZE - 1));
}

/* cur is checked (cur_error): where it starts. */
static uint32_t vgru_first_phase(VgruCb *cb)
{
    const VgruDesc *d = &cb->cur;

    if (cb->cur_error || d->opcode == VGRU_OP_NOP ||
        ((d->opcode == VGRU_OP_COPY || d->opcode == VGRU_OP_FILL ||
          d->opcode == VGRU_OP_BATCH) && d->len == 0)) {
        return VGRU_PH_COMP;
    }
    return d->opcode == VGRU_OP_BATCH ? VGRU_PH_LOAD : VGRU_PH_RUN;
}

/* The BATCH of @cb ends with @error: its own record is next. */
static void vgru_batch_end(VgruCb *cb, uint32_t error)
{
    cb->in_entry = false;
    cb->cur = cb->top;
    cb->cur_error = error;
    cb->cur_result = 0;
    cb->phase = VGRU_PH_COMP;
}

/*
 * cur has ended and its record is written (or not due): go on with the
 * BATCH, or end the CB.  True while @cb has steps left.
 */
static bool vgru_cur_end(VgruState *s, VgruCb *cb)
{
    if (!cb->in_entry) {
        vgru_cb_finish(s, cb);
        return false;
    }
    if (cb->cur.flags & VGRU_DF_INTERRUPT) {
        vgru_notice(s, cb);
    }
    if (cb->cur_error) {
        vgru_batch_end(cb, cb->cur_error);
    } else if (++cb->entry == cb->top.len) {
        vgru_batch_end(cb, VGRU_ERR_NONE);
    } else {
        cb->phase = VGRU_PH_LOAD;
    }
    cb->progress = vgru_cb_progress(cb);
    return true;
}

/*
 * The current step of @cb failed with @error (the driver failed a fault,
 * a NO_BLOCK miss, DMA): end what it was part of, at once if no record is
 * due (so that a FAIL without one ends the command before the register
 * write returns).  True while @cb has steps left; the caller queues it.
 */
bool vgru_cb_fail(VgruState *s, VgruCb *cb, uint32_t error)
{
    switch (cb->phase) {
    case VGRU_PH_LOAD:
        vgru_batch_end(cb, error);
        return vgru_wants_record(&cb->cur) || vgru_cur_end(s, cb);
    case VGRU_PH_RUN:
        cb->cur_error = error;
        cb->phase = VGRU_PH_COMP;
        return vgru_wants_record(&cb->cur) || vgru_cur_end(s, cb);
    default:
        /* the record cannot be written: the command ends without it */
        cb->cur_error = error;
        return vgru_cur_end(s, cb);
    }
}

static void vgru_cb_start(VgruState *s, VgruCb *cb)
{
    VgruContext *c = &s->contexts[cb->ctx];

    trace_vgru_cb_start(cb->ctx, cb->index, cb->regs.opcode, cb->regs.flags,
                        cb->regs.src, cb->regs.dst, cb->regs.len);
    s->stats[VGRU_STAT_COMMANDS]++;
    cb->top = cb->regs;
    cb->cur = cb->top;
    cb->in_entry = false;
    cb->pos = cb->entry = 0;
    cb->progress = vgru_cb_progress(cb);
    cb->fault_addr = 0;
    cb->result = cb->cur_result = 0;
    cb->error = VGRU_ERR_NONE;
    cb->armed = false;
    cb->start_seq = ++c->starts;

    cb->status = VGRU_CB_ACTIVE;
    cb->cur_error = vgru_desc_check(&cb->cur, false);
    cb->phase = vgru_first_phase(cb);
    if (cb->phase == VGRU_PH_COMP && !vgru_wants_record(&cb->cur)) {
        vgru_cur_end(s, cb);    /* nothing for a worker to do */
        return;
    }
    cb->caller_runs = true;
    vgru_cb_go(s, cb);
    cb->caller_runs = false;
}

void vgru_cb_doorbell(VgruState *s, VgruCb *cb, uint32_t val)
{
    switch (val) {
    case VGRU_CB_START:
        if (vgru_running(cb)) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "vgru: START of busy CB %u/%u ignored\n",
                          cb->ctx, cb->index);
            return;
        }
        vgru_cb_start(s, cb);
        break;
    case VGRU_CB_ARM:
        if (vgru_running(cb)) {
            cb->armed = true;
        } else if (cb->status != VGRU_CB_IDLE) {
            vgru_notice(s, cb);
        }
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "vgru: bad doorbell value %u\n", val);
    }
}

/*
 * A CB as loaded from a migration stream, which is untrusted: its state
 * is one the engine can reach, so that running it breaks no invariant.
 * The event flags are checked against the list by the caller.
 */
bool vgru_cb_loaded_ok(VgruState *s, VgruCb *cb)
{
    bool running = vgru_running(cb);
    const VgruDesc *cur = &cb->cur;

    if (cb->status > VGRU_CB_ERROR || cb->phase > VGRU_PH_COMP ||
        cb->notice.posted || (cb->fault.posted && !cb->fault.queued)) {
        return false;
    }
    if (!s->contexts[cb->ctx].enabled &&
        (cb->status != VGRU_CB_IDLE || cb->notice.queued)) {
        return false;
    }
    if (!running) {
        return !cb->fault.queued && !cb->fencing;
    }
    if ((cb->status == VGRU_CB_FAULT && !cb->fault.queued) ||
        (cb->fencing && (cb->fault.queued || cb->phase != VGRU_PH_RUN ||
                         cur->opcode != VGRU_OP_FENCE))) {
        return false;
    }
    if ((cb->in_entry || cb->phase == VGRU_PH_LOAD) &&
        (cb->top.opcode != VGRU_OP_BATCH ||
         vgru_desc_check(&cb->top, false) != VGRU_ERR_NONE ||
         cb->entry >= cb->top.len)) {
        return false;
    }
    if (cb->phase == VGRU_PH_RUN) {
        if (vgru_desc_check(cur, cb->in_entry) != VGRU_ERR_NONE ||
            cur->opcode == VGRU_OP_NOP || cur->opcode == VGRU_OP_BATCH) {
            return false;
        }
        if ((cur->opcode == VGRU_OP_COPY || cur->opcode == VGRU_OP_FILL) &&
            cb->pos > cur->len) {
            return false;
        }
    }
    return true;
}

/* ---- the invalidation handshake ----------------------------------------- */

/*
 * INV_DONE: every invalidation issued, less those from the first one an
 * unretired batch blocks (they complete in order).
 */
static void vgru_inv_update(VgruState *s)
{
    uint32_t lag = 0, done;

    for (uint32_t i = 0; i < s->nr_workers; i++) {
        VgruWorker *w = &s->workers[i];

        if (w->cb && w->blocking) {
            lag = MAX(lag, s->inv_issued - w->blocks + 1);
        }
    }
    if (s->x_inv_delay_us) {
        lag = MAX(lag, s->inv_issued - s->inv_timed);
    }
    done = s->inv_issued - lag;
    if (done != s->inv_done) {
        trace_vgru_inv_done(done, s->inv_issued);
    }
    qatomic_store_release(&s->inv_done, done);
}

static bool vgru_overlaps(uint64_t a, uint64_t b, uint64_t first,
                          uint64_t last)
{
    return a <= last && first <= b;
}

/*
 * x-inv-delay-us: invalidation @seq may be counted only that long after
 * now, on the virtual clock (qtest's clock_step makes it exact).  Due
 * times grow with @seq, so one timer for the oldest is enough.
 */
static void vgru_inv_delay(VgruState *s, uint32_t seq)
{
    int64_t due = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) +
                  (int64_t)s->x_inv_delay_us * SCALE_US;

    if (seq - s->inv_timed > VGRU_INV_DELAYED) {
        s->inv_timed++;                 /* no slot left: release the oldest */
    }
    s->inv_due[seq % VGRU_INV_DELAYED] = due;
    if (!timer_pending(s->inv_timer)) {
        timer_mod(s->inv_timer, due);
    }
}

/* The timer: release the invalidations that are due, wait for the next. */
static void vgru_inv_timer(void *opaque)
{
    VgruState *s = opaque;
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

    QEMU_LOCK_GUARD(&s->lock);
    while (s->inv_timed != s->inv_issued &&
           s->inv_due[(s->inv_timed + 1) % VGRU_INV_DELAYED] <= now) {
        s->inv_timed++;
    }
    if (s->inv_timed != s->inv_issued) {
        timer_mod(s->inv_timer,
                  s->inv_due[(s->inv_timed + 1) % VGRU_INV_DELAYED]);
    }
    vgru_inv_update(s);
}

/* Reset: no invalidation issued, none delayed. */
void vgru_inv_reset(VgruState *s)
{
    timer_del(s->inv_timer);
    s->inv_issued = s->inv_done = s->inv_timed = 0;
}

void vgru_invalidate(VgruState *s, uint32_t cmd)
{
    uint64_t first = 0, last = UINT64_MAX;
    uint32_t removed = 0, seq;
    bool all = cmd == VGRU_INV_CMD_ALL, block = true;

    switch (cmd) {
    case VGRU_INV_CMD_RANGE:
        if (s->inv_len == 0) {
            block = false;
            break;
        }
        first = s->inv_start >> VGRU_PAGE_SHIFT;
        if (s->inv_len - 1 > UINT64_MAX - s->inv_start) {
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
            block = false;
            break;
        }
        removed = vgru_tlb_flush(s, false, s->inv_ctx, &first, &last);
        break;
    case VGRU_INV_CMD_ALL:
        removed = vgru_tlb_flush(s, true, 0, &first, &last);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "vgru: bad invalidation command %u\n",
                      cmd);
        return;
    }

    seq = ++s->inv_issued;
    if (s->x_inv_delay_us) {
        vgru_inv_delay(s, seq);
    }
    for (uint32_t i = 0; i < s->nr_workers && block; i++) {
        VgruWorker *w = &s->workers[i];

        if (w->cb && !w->blocking && (all || w->cb->ctx == s->inv_ctx) &&
            ((w->has_src &&
              vgru_overlaps(w->src_first, w->src_last, first, last)) ||
             vgru_overlaps(w->dst_first, w->dst_last, first, last))) {
            w->blocking = true;
            w->blocks = seq;
            qatomic_set(&w->cancel, true);
        }
    }
    vgru_inv_update(s);
    s->stats[VGRU_STAT_INVALIDATIONS]++;
    s->stats[VGRU_STAT_INV_ENTRIES] += removed;
    trace_vgru_invalidate(cmd, s->inv_ctx, s->inv_start, s->inv_len, removed);
}

/* ---- quiescing ---------------------------------------------------------- */

static bool vgru_batches(VgruState *s, bool all, uint32_t ctx, bool cancel)
{
    bool any = false;

    for (uint32_t i = 0; i < s->nr_workers; i++) {
        VgruWorker *w = &s->workers[i];

        if (w->cb && (all || w->cb->ctx == ctx)) {
            if (cancel) {
                qatomic_set(&w->cancel, true);
            }
            any = true;
        }
    }
    return any;
}

/*
 * Wait until no batch of @ctx (of any context if @all) is moving data.
 * The caller has made sure that no new one starts.
 */
static void vgru_wait_batches(VgruState *s, bool all, uint32_t ctx)
{
    assert(qemu_mutex_iothread_locked());
    if (vgru_batches(s, all, ctx, true)) {
        trace_vgru_quiesce(all, ctx);
        s->idle_waiters++;
        while (vgru_batches(s, all, ctx, false)) {
            qemu_cond_wait(&s->idle, &s->lock);
        }
        s->idle_waiters--;
    }
}

/* The caller has cleared CTRL.ENABLE or vm_running, or set stopping. */
void vgru_engine_quiesce(VgruState *s)
{
    assert(!vgru_runnable(s));
    vgru_wait_batches(s, true, 0);
}

/* Stop @ctx: its CBs become idle and its translations go. */
void vgru_ctx_stop(VgruState *s, uint32_t ctx)
{
    VgruContext *c = &s->contexts[ctx];
    uint64_t first = 0, last = UINT64_MAX;

    /* no new batch: disabled contexts are neither queued nor requeued */
    c->enabled = false;
    for (uint32_t b = 0; b < s->nr_cbs; b++) {
        vgru_cb_unqueue(s, &c->cbs[b]);
    }
    vgru_wait_batches(s, false, ctx);
    for (uint32_t b = 0; b < s->nr_cbs; b++) {
        vgru_events_forget(s, &c->cbs[b]);
        vgru_cb_init(&c->cbs[b], ctx, b);
    }
    vgru_tlb_flush(s, false, ctx, &first, &last);
}

/* ---- data movement (no lock held) --------------------------------------- */

/*
 * Map @len bytes at bus address @pa, shortening @len to what is contiguous;
 * NULL unless it is guest RAM, writable if @write (a source may be ROM).
 * The pointer comes from the same translation that said "RAM", with a
 * reference on its region, as address_space_map would give it but with
 * no second translation and no bounce buffer: anything that is not RAM
 * is refused, never dispatched as MMIO from this thread.  Unmap with
 * dma_memory_unmap (address_space_unmap), which marks what was written.
 */
static void *vgru_map(AddressSpace *as, dma_addr_t pa, dma_addr_t *len,
                      bool write)
{
    void *p = NULL;

    WITH_RCU_READ_LOCK_GUARD() {
        hwaddr xlat, l = *len;
        MemoryRegion *mr = address_space_translate(as, pa, &xlat, &l, write,
                                                   MEMTXATTRS_UNSPECIFIED);

        if (l && memory_access_is_direct(mr, write)) {
            memory_region_ref(mr);
            p = (uint8_t *)memory_region_get_ram_ptr(mr) + xlat;
            *len = l;
        }
    }
    return p;
}

/*
 * The memory map changed (a commit, under the BQL): every RAM run the
 * workers keep is stale from now on.
 */
static void vgru_ram_commit(MemoryListener *listener)
{
    VgruState *s = container_of(listener, VgruState, ram_listener);

    qatomic_inc(&s->ram_gen);
}

static void vgru_ram_listen(VgruState *s, bool on)
{
    if (on) {
        s->ram_listener = (MemoryListener) {
            .name = "vgru-ram",
            .commit = vgru_ram_commit,
        };
        memory_listener_register(&s->ram_listener,
                                 pci_get_address_space(&s->parent_obj));
    } else {
        memory_listener_unregister(&s->ram_listener);
    }
}

/* What an RCU read section looks up RAM runs in (vgru_ram_view). */
typedef struct VgruRamView {
    FlatView *fv;               /* the address space's current view */
    uint32_t gen;               /* a run found here carries this one */
    uint32_t use;               /* a run is used if it carries this one */
    bool keep;                  /* runs may be kept and used */
} VgruRamView;

/*
 * Start looking up RAM in an RCU read section.  A run kept from an
 * earlier section is used only if its view is still the current one and
 * it carries the generation read after that view: the section then keeps
 * the view, its regions and their RAM alive whatever commits come
 * meanwhile, and the run maps exactly what a translation would.  The
 * generation rules out a new view allocated where a freed one was: the
 * commit that replaced the old view bumped it before the new one could
 * exist, and a run carries the generation read before its view.  Behind
 * a vIOMMU translations change without a commit: nothing is kept.
 */
static void vgru_ram_view(VgruState *s, AddressSpace *as, VgruRamView *v)
{
    v->gen = qatomic_load_acquire(&s->ram_gen);
    v->fv = address_space_to_flatview(as);
    v->use = qatomic_load_acquire(&s->ram_gen);
    v->keep = !s->dma_bql;
}

/*
 * In an RCU read section on @v: the run of guest RAM holding bus address
 * @pa, writable if @write, and in *@len the bytes of @len that it holds
 * from @pa; NULL unless @pa is RAM.  A run not kept is built in @tmp.
 */
static VgruRam *vgru_ram(VgruWorker *w, const VgruRamView *v, dma_addr_t pa,
                         hwaddr *len, bool write, VgruRam *tmp)
{
    hwaddr xlat, l = -pa ? -pa : UINT64_MAX;    /* up to 2^64 */
    MemoryRegion *mr;
    VgruRam *r;

    for (unsigned i = 0; v->keep && i < VGRU_RAM_SLOTS; i++) {
        r = &w->ram[i];
        if (r->fv == v->fv && r->gen == v->use && pa >= r->start &&
            pa - r->start < r->end - r->start && (r->write || !write)) {
            goto found;
        }
    }
    mr = flatview_translate(v->fv, pa, &xlat, &l, write,
                            MEMTXATTRS_UNSPECIFIED);
    if (!l || !memory_access_is_direct(mr, write)) {
        return NULL;
    }
    if (memory_region_is_ram(mr)) {
        r = v->keep ? &w->ram[w->ram_next++ % VGRU_RAM_SLOTS] : tmp;
    } else {
        /* a ROM device read directly: its length is not clamped to it */
        l = MIN(l, memory_region_size(mr) - xlat);
        r = tmp;
    }
    *r = (VgruRam) {
        .fv = v->fv,
        .gen = v->gen,
        .write = memory_access_is_direct(mr, true),
        .start = pa,
        .end = pa + l,
        .mrc = {
            .ptr = (uint8_t *)memory_region_get_ram_ptr(mr) + xlat,
            .xlat = xlat,
            .len = l,
            .mrs.mr = mr,
            .is_write = true,
        },
    };
found:
    *len = MIN(*len, r->end - pa);
    return r;
}

static uint8_t *vgru_ram_ptr(VgruRam *r, dma_addr_t pa)
{
    return (uint8_t *)r->mrc.ptr + (pa - r->start);
}

/*
 * @n bytes at bus address @pa in @r were written: what address_space_unmap
 * does for a mapped write, dirty tracking (migration, VGA) and TCG code
 * invalidation, from the region and offset the run knows (no RAM block
 * lookup by host pointer).
 */
static void vgru_ram_written(VgruRam *r, dma_addr_t pa, hwaddr n)
{
    address_space_cache_invalidate(&r->mrc, pa - r->start, n);
}

/*
 * Copy @len bytes of guest RAM; returns the bytes copied.  Both ends are
 * looked up in @v, mostly in the worker's kept RAM runs, and copied
 * through their host pointers: no map, no bounce buffer, and nothing but
 * RAM is touched (a section that is not RAM stops the copy).  The bytes
 * written are then marked (vgru_ram_written).
 */
static uint64_t vgru_copy(VgruWorker *w, const VgruRamView *v,
                          dma_addr_t dst, dma_addr_t src, uint64_t len)
{
    uint64_t done = 0;

    while (done < len) {
        hwaddr n = len - done, sn = n;
        VgruRam dtmp, stmp, *d, *r;

        d = vgru_ram(w, v, dst + done, &n, true, &dtmp);
        if (!d) {
            break;
        }
        if (v->keep && src + done - d->start < d->end - d->start) {
            /*
             * Both ends in one run, as in a guest with one RAM block (not
             * behind a vIOMMU: a write mapping need not allow reads).
             */
            r = d;
            sn = MIN(sn, d->end - (src + done));
        } else {
            if (d != &dtmp) {
                /* the source's lookup may take the slot @d is in */
                dtmp = *d;
                d = &dtmp;
            }
            r = vgru_ram(w, v, src + done, &sn, false, &stmp);
            if (!r) {
                break;
            }
        }
        n = MIN(n, sn);
        /* defined for any guest input, aliased pages included */
        memmove(vgru_ram_ptr(d, dst + done), vgru_ram_ptr(r, src + done), n);
        vgru_ram_written(d, dst + done, n);
        done += n;
    }
    return done;
}

/*
 * Fill @len bytes of guest RAM at @dst, @pos bytes into a FILL: byte i of
 * the command gets byte i % 8 of @pattern.  Returns the bytes written.
 */
static uint64_t vgru_fill(VgruWorker *w, const VgruRamView *v,
                          dma_addr_t dst, uint64_t len, uint64_t pattern,
                          uint64_t pos)
{
    uint64_t done = 0;

    while (done < len) {
        hwaddr n = len - done;
        VgruRam tmp, *d = vgru_ram(w, v, dst + done, &n, true, &tmp);
        uint8_t rot[64], *dp;
        uint64_t i;

        if (!d) {
            break;
        }
        dp = vgru_ram_ptr(d, dst + done);
        for (i = 0; i < sizeof(rot); i++) {
            rot[i] = pattern >> ((pos + done + i) % 8 * 8);
        }
        for (i = 0; i + sizeof(rot) <= n; i += sizeof(rot)) {
            memcpy(dp + i, rot, sizeof(rot));
        }
        memcpy(dp + i, rot, n - i);
        vgru_ram_written(d, dst + done, n);
        done += n;
    }
    return done;
}

/*
 * Retake the lock in a worker.  The other holders keep it for a few us at
 * most (a plan, an MMIO access), and on a host that is itself a VM a
 * futex sleep and wake costs tens of us: with two workers that wait made
 * two contexts barely faster than one.  So spin a little first.
 */
#define VGRU_LOCK_SPINS     1024

static void vgru_worker_lock(VgruState *s)
{
    for (int i = 0; i < VGRU_LOCK_SPINS; i++) {
        if (!qemu_mutex_trylock(&s->lock)) {
            return;
        }
        cpu_relax();
    }
    qemu_mutex_lock(&s->lock);
}

/*
 * Move @w's batch; returns the bytes moved, in order, from its start.
 * One RCU read section covers the batch (up to VGRU_SHARE bytes): a
 * section per piece cost two full barriers and a view for every 4 KiB
 * of a process's scattered pages.
 */
static uint64_t vgru_move(VgruState *s, VgruWorker *w, bool *failed)
{
    AddressSpace *as = pci_get_address_space(&s->parent_obj);
    bool fill = w->cb->cur.opcode == VGRU_OP_FILL;
    uint64_t pattern = w->cb->cur.src;
    uint64_t done = 0;
    VgruRamView v;

    rcu_read_lock();
    vgru_ram_view(s, as, &v);
    for (unsigned i = 0; i < w->nr_pieces; i++) {
        VgruPiece *p = &w->pieces[i];

        for (uint64_t off = 0; off < p->len;) {
            uint64_t n = MIN(p->len - off, VGRU_CHUNK), moved;

            if (qatomic_read(&w->cancel)) {
                goto out;
            }
            /*
             * A stall on worker threads only (the inline one has the
             * BQL), outside the read section: it would hold up every
             * memory-map update.
             */
            if (s->x_dma_delay_us && w != s->inline_worker) {
                rcu_read_unlock();
                g_usleep(s->x_dma_delay_us);
                rcu_read_lock();
                vgru_ram_view(s, as, &v);
            }
            if (fill) {
                moved = vgru_fill(w, &v, p->dst + off, n, pattern,
                                  p->pos + off);
            } else {
                moved = vgru_copy(w, &v, p->dst + off, p->src + off, n);
            }
            done += moved;
            off += moved;
            if (moved < n) {
                *failed = true;
                goto out;
            }
        }
    }
out:
    rcu_read_unlock();
    return done;
}

/*
 * Map all @len bytes (a small, aligned object) at bus address @pa; NULL
 * unless they are guest RAM in one piece.  A RAM section can end inside
 * the object even though the object never straddles a page.
 */
static void *vgru_map_exact(AddressSpace *as, dma_addr_t pa, dma_addr_t len,
                            bool write)
{
    dma_addr_t n = len;
    void *p = vgru_map(as, pa, &n, write);

    if (p && n != len) {
        dma_memory_unmap(as, p, n, DMA_DIRECTION_TO_DEVICE, 0);
        return NULL;
    }
    return p;
}

/*
 * Read or write @len bytes (at most 64, within one page) at bus address
 * @pa, with the lock held; false unless it is guest RAM.
 */
static bool vgru_dma_small(VgruState *s, dma_addr_t pa, void *buf,
                           dma_addr_t len, bool write)
{
    AddressSpace *as = pci_get_address_space(&s->parent_obj);
    void *p = vgru_map_exact(as, pa, len, write);

    if (!p) {
        return false;
    }
    if (write) {
        memcpy(p, buf, len);
    } else {
        memcpy(buf, p, len);
    }
    dma_memory_unmap(as, p, len,
                     write ? DMA_DIRECTION_FROM_DEVICE
                           : DMA_DIRECTION_TO_DEVICE, len);
    return true;
}

/*
 * The atomic cur of @cb on the word at bus address @pa: host atomics on
 * the mapped RAM, so it is atomic against guest CPUs (TCG implements
 * their atomics with host atomics) and other devices.  The word is
 * little endian; a compare-and-swap loop keeps that true on any host.
 */
static uint32_t vgru_atomic(VgruState *s, VgruCb *cb, dma_addr_t pa)
{
    AddressSpace *as = pci_get_address_space(&s->parent_obj);
    const VgruDesc *d = &cb->cur;
    const dma_addr_t n = sizeof(uint64_t);
    uint64_t *p = vgru_map_exact(as, pa, n, true), seen, old, val;

    if (!p) {
        return VGRU_ERR_DMA;
    }
    seen = qatomic_read__nocheck(p);
    do {
        old = seen;
        val = le64_to_cpu(old);
        cb->cur_result = val;
        if (d->opcode == VGRU_OP_FETCH_ADD) {
            val += d->src;
        } else if (d->opcode == VGRU_OP_SWAP || val == d->arg) {
            val = d->src;
        } else {
            break;                      /* CAS that does not match */
        }
        seen = qatomic_cmpxchg__nocheck(p, old, cpu_to_le64(val));
    } while (seen != old);
    dma_memory_unmap(as, p, n, DMA_DIRECTION_FROM_DEVICE, n);
    return VGRU_ERR_NONE;
}

/*
 * The completion record of cur at bus address @pa: everything, then a
 * write barrier, then STATUS, so a reader that sees STATUS sees the rest.
 */
static bool vgru_write_record(VgruState *s, VgruCb *cb, dma_addr_t pa)
{
    AddressSpace *as = pci_get_address_space(&s->parent_obj);
    const dma_addr_t n = VGRU_COMP_SIZE;
    uint8_t *p = vgru_map_exact(as, pa, n, true);
    uint64_t progress;

    if (!p) {
        return false;
    }
    progress = cb->in_entry ? cb->pos : vgru_cb_progress(cb);
    stl_le_p(p + VGRU_COMP_ERROR, cb->cur_error);
    stq_le_p(p + VGRU_COMP_PROGRESS, progress);
    stq_le_p(p + VGRU_COMP_FAULT_ADDR, cb->fault_addr);
    stq_le_p(p + VGRU_COMP_RESULT, cb->cur_result);
    /* the fields before STATUS: a reader that sees STATUS sees them */
    smp_wmb();
    qatomic_set((uint32_t *)(p + VGRU_COMP_STATUS),
                cpu_to_le32(cb->cur_error ? VGRU_CB_ERROR : VGRU_CB_DONE));
    dma_memory_unmap(as, p, n, DMA_DIRECTION_FROM_DEVICE, n);
    return true;
}

/* ---- steps -------------------------------------------------------------- */

/* What a step leaves its CB to. */
typedef enum VgruNext {
    VGRU_NEXT_STEP,     /* its next step, in this turn */
    VGRU_NEXT_TAIL,     /* the back of the run queue */
    VGRU_NEXT_HEAD,     /* the front of the run queue: cut short */
    VGRU_NEXT_NONE,     /* not queued: it waits, has ended, or is stopped */
} VgruNext;

/*
 * Steps one turn may take before the next CB's: a turn ends after this
 * many, or after VGRU_SHARE bytes (a BATCH of small copies moves several
 * in one turn), or when the CB waits.
 */
#define VGRU_TURN_STEPS     64

/* The current step of @cb failed with @error: what @cb does next. */
static VgruNext vgru_fail_next(VgruState *s, VgruCb *cb, uint32_t error)
{
    return vgru_cb_fail(s, cb, error) ? VGRU_NEXT_STEP : VGRU_NEXT_NONE;
}

/* An operand of @cb missed (described in @cb): wait, or fail (NO_BLOCK). */
static VgruNext vgru_miss(VgruState *s, VgruCb *cb)
{
    if (cb->top.flags & VGRU_DF_NO_BLOCK) {
        return vgru_fail_next(s, cb, VGRU_ERR_PAGE_FAULT |
                                     cb->fault_flags << 16);
    }
    vgru_fault_raise(s, cb);
    return VGRU_NEXT_NONE;
}

static void vgru_turn(VgruState *s, VgruWorker *w, VgruCb *cb);
static void vgru_run_caller(VgruState *s, VgruCb *cb);

/*
 * Whether a RESTART_CALLER may run @cb's command on in the MMIO handler:
 * a COPY or FILL of its own (not in a BATCH: the caller waits for one
 * command), with caller-run-bytes not 0.
 */
static bool vgru_caller_run_ok(VgruState *s, VgruCb *cb)
{
    const VgruDesc *d = &cb->cur;

    return cb->caller_restart && cb->status == VGRU_CB_ACTIVE &&
           s->caller_run_bytes && cb->top.opcode != VGRU_OP_BATCH &&
           cb->phase == VGRU_PH_RUN &&
           (d->opcode == VGRU_OP_COPY || d->opcode == VGRU_OP_FILL);
}

/*
 * Whether START or RESTART may run @cb's command to its end in the MMIO
 * handler: one command, not a BATCH or a FENCE, moving at most
 * inline-bytes.  x-dma-delay-us stalls worker threads only.
 */
static bool vgru_inline_ok(VgruState *s, VgruCb *cb)
{
    const VgruDesc *d = &cb->cur;

    if (cb->top.opcode == VGRU_OP_BATCH || d->opcode == VGRU_OP_FENCE) {
        return false;
    }
    return cb->phase != VGRU_PH_RUN ||
           (d->opcode != VGRU_OP_COPY && d->opcode != VGRU_OP_FILL) ||
           d->len - cb->pos <= s->inline_bytes;
}

/*
 * START or RESTART of @cb, in the MMIO handler (BQL held).  A COPY or FILL
 * translates its next piece here: a miss is raised and its record posted
 * (MSI-X sent) before the register write returns.  Going through a worker
 * and then the bottom half for that costs two thread wake-ups; on a
 * 2-core host running a TCG guest the device's part of a fault (START or
 * RESTART to the record) was ~30 us median, and is ~0 now.  A hit leaves
 * the translations in the CB's holds, where its worker finds them (and
 * counts no second hit), so statistics are the same either way.
 *
 * A short command then runs to its end right here, on the vCPU thread,
 * completion record and notice included: a worker would first have to
 * be woken, and on a host whose cores run the vCPUs (one of them spinning
 * on the completion record) that wake-up took ~50 us (the restart-to-done
 * of a device fault).  Its turn is the one a worker would take, on the
 * device's inline "worker", which only the BQL holder uses; it drops the
 * lock while it moves data as a worker does, but no invalidation,
 * quiescing or VM stop can come meanwhile: they all need the BQL.
 */
void vgru_cb_go(VgruState *s, VgruCb *cb)
{
    const VgruDesc *d = &cb->cur;
    bool copy = d->opcode == VGRU_OP_COPY;
    dma_addr_t pa;

    /* inline-bytes=0: latch and queue only, even the first translation */
    if (!s->inline_bytes || s->x_worker_faults || !vgru_runnable(s)) {
        vgru_cb_queue(s, cb);
        return;
    }
    s->posting_here = true;
    if (cb->phase == VGRU_PH_RUN && (copy || d->opcode == VGRU_OP_FILL) &&
        ((copy &&
          !vgru_cb_translate(s, cb, VGRU_HOLD_SRC, d->src + cb->pos, &pa)) ||
         !vgru_cb_translate(s, cb, VGRU_HOLD_DST, d->dst + cb->pos, &pa))) {
        if (vgru_miss(s, cb) == VGRU_NEXT_STEP) {
            vgru_cb_queue(s, cb);       /* a record to write */
        }
    } else if (vgru_inline_ok(s, cb)) {
        /* requeues @cb on its worker if it does not end in this turn */
        vgru_turn(s, s->inline_worker, cb);
    } else if (vgru_caller_run_ok(s, cb)) {
        vgru_run_caller(s, cb);
    } else {
        s->posting_here = false;
        vgru_cb_queue(s, cb);
        return;
    }
    s->posting_here = false;
    vgru_fq_post(s);
    /* every event is posted, or waits for FQ_HEAD: nothing for the BH */
    qemu_bh_cancel(s->fault_bh);
}

/*
 * Translate up to @room bytes of @cb's COPY or FILL from pos into @w's
 * pieces, merging physically contiguous ones.  False if a translation
 * missed (the fault is described in @cb); the pieces before it still
 * stand.
 */
static bool vgru_plan(VgruState *s, VgruWorker *w, VgruCb *cb,
                      uint64_t room)
{
    const VgruDesc *d = &cb->cur;
    bool copy = d->opcode == VGRU_OP_COPY;
    uint64_t pos = cb->pos;
    uint64_t end = d->len - pos > room ? pos + room : d->len;
    bool ok = true;

    w->nr_pieces = 0;
    while (pos < end) {
        dma_addr_t spa = 0, dpa;
        uint64_t n = vgru_cb_translate_step(s, cb, copy, d->src + pos,
                                            d->dst + pos, end - pos,
                                            &spa, &dpa);
        VgruPiece *p;

        if (!n) {
            ok = false;
            break;
        }
        p = w->nr_pieces ? &w->pieces[w->nr_pieces - 1] : NULL;
        if (p && (!copy || p->src + p->len == spa) &&
            p->dst + p->len == dpa) {
            p->len += n;
        } else {
            assert(w->nr_pieces < VGRU_MAX_PIECES);
            w->pieces[w->nr_pieces++] = (VgruPiece) {
                .src = spa, .dst = dpa, .len = n, .pos = pos,
            };
        }
        pos += n;
    }
    w->bytes = pos - cb->pos;
    w->has_src = copy;
    if (w->bytes) {
        w->src_first = (d->src + cb->pos) >> VGRU_PAGE_SHIFT;
        w->src_last = (d->src + pos - 1) >> VGRU_PAGE_SHIFT;
        w->dst_first = (d->dst + cb->pos) >> VGRU_PAGE_SHIFT;
        w->dst_last = (d->dst + pos - 1) >> VGRU_PAGE_SHIFT;
    }
    return ok;
}

/*
 * What is left of the turn's share (@moved: bytes moved in this turn) of
 * a COPY or FILL; drops the lock while it moves data.
 */
static VgruNext vgru_run_move(VgruState *s, VgruWorker *w, VgruCb *cb,
                              uint64_t *moved)
{
    bool planned, failed = false;
    uint64_t done = 0;

    if (*moved >= VGRU_SHARE) {
        return VGRU_NEXT_TAIL;          /* the share of this turn is used */
    }
    planned = vgru_plan(s, w, cb, VGRU_SHARE - *moved);
    if (w->bytes && vgru_inject(&s->inj_transfers, s->x_fail_dma_every)) {
        trace_vgru_inject("fail-dma", s->inj_transfers);
        return vgru_fail_next(s, cb, VGRU_ERR_DMA);
    }
    if (w->bytes) {
        *moved += w->bytes;
        w->cb = cb;
        w->blocking = false;
        qatomic_set(&w->cancel, false);
        cb->busy = true;
        trace_vgru_batch(cb->ctx, cb->index, cb->pos, w->bytes,
                         w->nr_pieces);
        qemu_mutex_unlock(&s->lock);

        done = vgru_move(s, w, &failed);

        vgru_worker_lock(s);
        w->cb = NULL;
        cb->busy = false;
        cb->pos += done;
        cb->progress = vgru_cb_progress(cb);
        s->stats[VGRU_STAT_BYTES] += done;
        /* only a batch that blocks an invalidation holds INV_DONE back */
        if (w->blocking) {
            vgru_inv_update(s);
        }
        if (s->idle_waiters) {
            qemu_cond_broadcast(&s->idle);
        }

        if (!s->contexts[cb->ctx].enabled) {
            return VGRU_NEXT_NONE;  /* being stopped: vgru_ctx_stop clears it */
        }
        if (failed) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "vgru: CB %u/%u: DMA at 0x%" PRIx64 " bytes into "
                          "the command failed (not guest RAM)\n",
                          cb->ctx, cb->index, cb->pos);
            return vgru_fail_next(s, cb, VGRU_ERR_DMA);
        }
        if (done < w->bytes) {
            /* cut short for an invalidation or a quiescer: go on first */
            return VGRU_NEXT_HEAD;
        }
    }
    if (!planned) {
        return vgru_miss(s, cb);
    }
    if (cb->pos == cb->cur.len) {
        cb->phase = VGRU_PH_COMP;
        return VGRU_NEXT_STEP;
    }
    return VGRU_NEXT_TAIL;              /* a share moved: the next CB's turn */
}

/* Run cur. */
static VgruNext vgru_run(VgruState *s, VgruWorker *w, VgruCb *cb,
                         uint64_t *moved)
{
    dma_addr_t pa;

    switch (cb->cur.opcode) {
    case VGRU_OP_COPY:
    case VGRU_OP_FILL:
        return vgru_run_move(s, w, cb, moved);
    case VGRU_OP_FENCE:
        if (!vgru_fence_clear(s, cb)) {
            cb->fencing = true;         /* vgru_cb_finish requeues it */
            s->contexts[cb->ctx].nr_fencing++;
            return VGRU_NEXT_NONE;
        }
        break;
    default:                            /* the atomics */
        if (!vgru_cb_translate(s, cb, VGRU_HOLD_DST, cb->cur.dst, &pa)) {
            return vgru_miss(s, cb);
        }
        if (vgru_inject(&s->inj_transfers, s->x_fail_dma_every)) {
            trace_vgru_inject("fail-dma", s->inj_transfers);
            cb->cur_error = VGRU_ERR_DMA;
        } else {
            cb->cur_error = vgru_atomic(s, cb, pa);
        }
        break;
    }
    cb->phase = VGRU_PH_COMP;
    return VGRU_NEXT_STEP;
}

/* Read the next entry of the BATCH into cur. */
static VgruNext vgru_load(VgruState *s, VgruCb *cb)
{
    uint64_t va = cb->top.src + cb->entry * VGRU_DESC_SIZE;
    uint8_t d[VGRU_DESC_SIZE];
    dma_addr_t pa;

    if (!vgru_cb_translate(s, cb, VGRU_HOLD_SRC, va, &pa)) {
        return vgru_miss(s, cb);
    }
    if (!vgru_dma_small(s, pa, d, sizeof(d), false)) {
        return vgru_fail_next(s, cb, VGRU_ERR_DMA);
    }
    cb->cur = (VgruDesc) {
        .opcode = ldl_le_p(d + VGRU_DESC_OPCODE),
        .flags = ldl_le_p(d + VGRU_DESC_FLAGS),
        .src = ldq_le_p(d + VGRU_DESC_SRC),
        .dst = ldq_le_p(d + VGRU_DESC_DST),
        .len = ldq_le_p(d + VGRU_DESC_LEN),
        .arg = ldq_le_p(d + VGRU_DESC_ARG),
        .comp = ldq_le_p(d + VGRU_DESC_COMP),
    };
    trace_vgru_entry(cb->ctx, cb->index, cb->entry, cb->cur.opcode);
    cb->in_entry = true;
    cb->pos = 0;
    cb->cur_result = 0;
    cb->cur_error = vgru_desc_check(&cb->cur, true);
    cb->phase = vgru_first_phase(cb);
    return VGRU_NEXT_STEP;
}

/* Write cur's completion record, if it wants one, and end cur. */
static VgruNext vgru_complete(VgruState *s, VgruCb *cb)
{
    dma_addr_t pa;

    if (vgru_wants_record(&cb->cur)) {
        /* a miss here always waits: the record must be written */
        if (!vgru_cb_translate(s, cb, VGRU_HOLD_DST, cb->cur.comp, &pa)) {
            vgru_fault_raise(s, cb);
            return VGRU_NEXT_NONE;
        }
        if (!vgru_write_record(s, cb, pa)) {
            qemu_log_mask(LOG_GUEST_ERROR,
                          "vgru: CB %u/%u: completion record at 0x%" PRIx64
                          " is not guest RAM\n", cb->ctx, cb->index,
                          cb->cur.comp);
            cb->cur_error = VGRU_ERR_DMA;
        }
    }
    return vgru_cur_end(s, cb) ? VGRU_NEXT_STEP : VGRU_NEXT_NONE;
}

/*
 * The steps of one turn of @cb (@moved: its bytes); may drop the lock
 * meanwhile.  Returns where @cb goes next.
 */
static VgruNext vgru_turn_steps(VgruState *s, VgruWorker *w, VgruCb *cb,
                                uint64_t *moved)
{
    VgruNext next = VGRU_NEXT_TAIL;

    for (int i = 0; i < VGRU_TURN_STEPS; i++) {
        if (i && !vgru_runnable(s)) {
            /* stopped while the lock was dropped: no more DMA for now */
            next = VGRU_NEXT_HEAD;
            break;
        }
        switch (cb->phase) {
        case VGRU_PH_LOAD:
            next = vgru_load(s, cb);
            break;
        case VGRU_PH_RUN:
            next = vgru_run(s, w, cb, moved);
            break;
        default:
            next = vgru_complete(s, cb);
            break;
        }
        if (next != VGRU_NEXT_STEP) {
            break;
        }
        next = VGRU_NEXT_TAIL;
    }
    return next;
}

/* One turn of @cb, taken off @w's run queue; may drop the lock meanwhile. */
static void vgru_turn(VgruState *s, VgruWorker *w, VgruCb *cb)
{
    uint64_t moved = 0;
    VgruNext next = vgru_turn_steps(s, w, cb, &moved);

    if (next == VGRU_NEXT_HEAD || next == VGRU_NEXT_TAIL) {
        vgru_cb_queue_at(s, cb, next == VGRU_NEXT_HEAD);
    }
}

/*
 * RESTART_CALLER of @cb: turns on the vCPU thread that waits for it, one
 * after another, until it waits for its next fault, ends, or has moved
 * caller-run-bytes (then the rest goes on its worker).  A stream of
 * misses over fresh memory is then handled with no thread switch at all:
 * the waiter resolves each fault (with VGRU_DF_CALL_OS, its record raises
 * no interrupt) and the device copies up to the next one in the waiter's
 * own register write, as a CPU's memcpy would take its page faults.
 */
static void vgru_run_caller(VgruState *s, VgruCb *cb)
{
    uint64_t total = 0;
    VgruNext next;

    do {
        uint64_t moved = 0;

        next = vgru_turn_steps(s, s->inline_worker, cb, &moved);
        total += moved;
    } while (next == VGRU_NEXT_TAIL && total < s->caller_run_bytes &&
             vgru_runnable(s));
    if (next == VGRU_NEXT_HEAD || next == VGRU_NEXT_TAIL) {
        vgru_cb_queue_at(s, cb, next == VGRU_NEXT_HEAD);
    }
}

/*
 * Take (@take) or drop the BQL in a worker holding s->lock, keeping the
 * order BQL -> s->lock.  Returns whether it changed anything, in which
 * case s->lock was dropped on the way and the caller looks again.
 */
static bool vgru_worker_bql(VgruState *s, bool take)
{
    if (qemu_mutex_iothread_locked() == take) {
        return false;
    }
    qemu_mutex_unlock(&s->lock);
    if (take) {
        qemu_mutex_lock_iothread();
    } else {
        qemu_mutex_unlock_iothread();
    }
    qemu_mutex_lock(&s->lock);
    return true;
}

/*
 * Start loading what the next turns need while this one runs: with many
 * CBs each is cold when its turn comes, and a short command's turn would
 * otherwise wait on those misses one after another.  @next's lines were
 * asked for a turn ago, so its TLB sets can be found now; @after's lines
 * are asked for.
 */
static void vgru_turn_prefetch(VgruState *s, VgruCb *next, VgruCb *after)
{
    if (next && next->phase == VGRU_PH_RUN) {
        const VgruDesc *d = &next->cur;

        if (d->opcode == VGRU_OP_COPY) {
            vgru_tlb_prefetch(s, next->ctx,
                              (d->src + next->pos) >> VGRU_PAGE_SHIFT);
        }
        if (d->opcode == VGRU_OP_COPY || d->opcode == VGRU_OP_FILL) {
            vgru_tlb_prefetch(s, next->ctx,
                              (d->dst + next->pos) >> VGRU_PAGE_SHIFT);
        }
    }
    if (after) {
        for (size_t off = 0; off < sizeof(*after); off += 64) {
            __builtin_prefetch((char *)after + off, 1);
        }
    }
}

static void *vgru_worker_run(void *opaque)
{
    VgruWorker *w = opaque;
    VgruState *s = w->s;

    rcu_register_thread();
    qemu_mutex_lock(&s->lock);
    while (!s->stopping) {
        VgruCb *cb = vgru_runnable(s) ? QTAILQ_FIRST(&w->runq) : NULL;
        VgruCb *next;

        if (!cb) {
            if (vgru_worker_bql(s, false)) {
                continue;
            }
            w->idle = true;
            qemu_cond_wait(&w->wake, &s->lock);
            w->idle = false;
            continue;
        }
        /*
         * Behind a vIOMMU a whole turn runs under the BQL, taken before
         * s->lock (the MMIO handlers' order): then a handler that waits
         * for batches with the BQL held never finds one in flight.
         */
        if (s->dma_bql && vgru_worker_bql(s, true)) {
            continue;
        }
        next = QTAILQ_NEXT(cb, run_link);
        vgru_turn_prefetch(s, next,
                           next ? QTAILQ_NEXT(next, run_link) : NULL);
        QTAILQ_REMOVE(&w->runq, cb, run_link);
        cb->queued = false;
        vgru_turn(s, w, cb);
        vgru_worker_bql(s, false);
    }
    vgru_worker_bql(s, false);
    qemu_mutex_unlock(&s->lock);
    rcu_unregister_thread();
    return NULL;
}

/* ---- VM state and life cycle -------------------------------------------- */

/* No DMA while the VM is stopped: workers finish their batch and wait. */
static void vgru_vm_state_change(void *opaque, bool running, RunState state)
{
    VgruState *s = opaque;

    QEMU_LOCK_GUARD(&s->lock);
    s->vm_running = running;
    if (running) {
        vgru_engine_kick(s);
        qemu_bh_schedule(s->fault_bh);
    } else {
        vgru_engine_quiesce(s);
    }
}

void vgru_engine_realize(VgruState *s)
{
    qemu_mutex_init(&s->lock);
    qemu_cond_init(&s->idle);
    QTAILQ_INIT(&s->events);
    s->vm_running = runstate_is_running();
    s->vm_change = qemu_add_vm_change_state_handler(vgru_vm_state_change, s);

    s->inv_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, vgru_inv_timer, s);
    vgru_ram_listen(s, true);
    /* the last one is the inline worker: no thread, BQL holders only */
    s->workers = g_new0(VgruWorker, s->nr_workers + 1);
    s->inline_worker = &s->workers[s->nr_workers];
    s->inline_worker->s = s;
    for (uint32_t i = 0; i < s->nr_workers; i++) {
        VgruWorker *w = &s->workers[i];

        w->s = s;
        qemu_cond_init(&w->wake);
        QTAILQ_INIT(&w->runq);
        qemu_thread_create(&w->thread, "vgru-worker", vgru_worker_run, w,
                           QEMU_THREAD_JOINABLE);
    }
}

void vgru_engine_unrealize(VgruState *s)
{
    qemu_del_vm_change_state_handler(s->vm_change);
    vgru_ram_listen(s, false);
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->stopping = true;
        vgru_batches(s, true, 0, true);
        vgru_engine_kick(s);
    }
    /* a worker behind a vIOMMU may be waiting for the BQL to see stopping */
    if (s->dma_bql) {
        qemu_mutex_unlock_iothread();
    }
    for (uint32_t i = 0; i < s->nr_workers; i++) {
        qemu_thread_join(&s->workers[i].thread);
    }
    if (s->dma_bql) {
        qemu_mutex_lock_iothread();
    }
    for (uint32_t i = 0; i < s->nr_workers; i++) {
        qemu_cond_destroy(&s->workers[i].wake);
    }
    g_free(s->workers);
    timer_free(s->inv_timer);
    qemu_cond_destroy(&s->idle);
    qemu_mutex_destroy(&s->lock);
}
