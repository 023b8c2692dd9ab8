/*
 * vgru: the command engine.
 *
 * Worker threads run the commands outside the BQL.  Context c belongs to
 * worker c % workers, which keeps one FIFO run queue of the active CBs of
 * its contexts and gives each a turn of at most VGRU_SHARE bytes before
 * it goes to the back of the queue.  A turn:
 *
 *   1. under the lock, translate the CB's next pieces (stopping at the
 *      first miss) and publish them as the worker's batch;
 *   2. without the lock, map source and destination, copy once, unmap
 *      with the exact length (dirty tracking, TCG code invalidation);
 *   3. under the lock, account for the bytes, retire the batch and update
 *      INV_DONE, then finish, fault or requeue the CB.
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

void vgru_cb_queue(VgruState *s, VgruCb *cb)
{
    VgruWorker *w = vgru_worker_of(s, cb->ctx);

    assert(!cb->queued && !cb->busy);
    QTAILQ_INSERT_TAIL(&w->runq, cb, run_link);
    cb->queued = true;
    qemu_cond_signal(&w->wake);
}

static void vgru_cb_unqueue(VgruState *s, VgruCb *cb)
{
    if (cb->queued) {
        QTAILQ_REMOVE(&vgru_worker_of(s, cb->ctx)->runq, cb, run_link);
        cb->queued = false;
    }
}

void vgru_cb_finish(VgruState *s, VgruCb *cb, uint32_t status, uint32_t error)
{
    cb->status = status;
    cb->error = error;
    vgru_cb_drop_holds(cb);
    s->stats[status == VGRU_CB_DONE ? VGRU_STAT_COMPLETED
                                    : VGRU_STAT_ERRORS]++;
    trace_vgru_cb_finish(cb->ctx, cb->index, status, error, cb->progress);
}

void vgru_cb_start(VgruState *s, VgruCb *cb)
{
    trace_vgru_cb_start(cb->ctx, cb->index, cb->opcode, cb->src, cb->dst,
                        cb->len);
    s->stats[VGRU_STAT_COMMANDS]++;
    cb->progress = 0;
    cb->fault_addr = 0;
    cb->error = VGRU_ERR_NONE;
    vgru_cb_drop_holds(cb);

    if (cb->flags || (cb->opcode != VGRU_OP_NOP &&
                      cb->opcode != VGRU_OP_COPY)) {
        vgru_cb_finish(s, cb, VGRU_CB_ERROR, VGRU_ERR_OPCODE);
        return;
    }
    if (cb->opcode == VGRU_OP_NOP || cb->len == 0) {
        vgru_cb_finish(s, cb, VGRU_CB_DONE, VGRU_ERR_NONE);
        return;
    }
    /* the last byte may be at 2^64 - 1, not beyond */
    if (cb->len - 1 > UINT64_MAX - cb->src ||
        cb->len - 1 > UINT64_MAX - cb->dst) {
        vgru_cb_finish(s, cb, VGRU_CB_ERROR, VGRU_ERR_RANGE);
        return;
    }
    cb->status = VGRU_CB_ACTIVE;
    vgru_cb_queue(s, cb);
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

    seq = ++s->inv_issued;
    for (uint32_t i = 0; i < s->nr_workers && block; i++) {
        VgruWorker *w = &s->workers[i];

        if (w->cb && !w->blocking && (all || w->cb->ctx == s->inv_ctx) &&
            (vgru_overlaps(w->src_first, w->src_last, first, last) ||
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
        while (vgru_batches(s, all, ctx, false)) {
            qemu_cond_wait(&s->idle, &s->lock);
        }
    }
}

/* The caller has cleared CTRL.ENABLE or vm_running, or set stopping. */
void vgru_engine_quiesce(VgruState *s)
{
    assert(!vgru_runnable(s));
    vgru_wait_batches(s, true, 0);
}

static void vgru_cb_clear(VgruCb *cb)
{
    uint32_t ctx = cb->ctx, index = cb->index;

    memset(cb, 0, sizeof(*cb));
    cb->ctx = ctx;
    cb->index = index;
}

/* Stop @ctx: its CBs become idle and its translations go. */
void vgru_ctx_stop(VgruState *s, uint32_t ctx)
{
    VgruContext *c = &s->contexts[ctx];

    /* no new batch: disabled contexts are neither queued nor requeued */
    c->enabled = false;
    for (uint32_t b = 0; b < s->nr_cbs; b++) {
        vgru_cb_unqueue(s, &c->cbs[b]);
    }
    vgru_wait_batches(s, false, ctx);
    for (uint32_t b = 0; b < s->nr_cbs; b++) {
        vgru_fault_forget(s, &c->cbs[b]);
        vgru_cb_clear(&c->cbs[b]);
    }
    vgru_tlb_flush(s, false, ctx, 0, UINT64_MAX);
}

/* ---- data movement (no lock held) --------------------------------------- */

/*
 * Map @len bytes at bus address @pa, shortening @len to what is contiguous;
 * NULL unless it is writable guest RAM.  The range is mapped for writing
 * even to read it: for anything but RAM, address_space_map would read
 * through the one process-wide bounce buffer, i.e. dispatch MMIO from this
 * thread.  The check before it keeps the bounce buffer untouched in the
 * usual case; the one after it catches the memory map changing between.
 */
static void *vgru_map(AddressSpace *as, dma_addr_t pa, dma_addr_t *len)
{
    MemoryRegion *mr;
    ram_addr_t offset;
    hwaddr xlat, l = *len;
    void *p;

    WITH_RCU_READ_LOCK_GUARD() {
        mr = address_space_translate(as, pa, &xlat, &l, true,
                                     MEMTXATTRS_UNSPECIFIED);
        if (!memory_access_is_direct(mr, true)) {
            return NULL;
        }
    }
    p = dma_memory_map(as, pa, len, DMA_DIRECTION_FROM_DEVICE,
                       MEMTXATTRS_UNSPECIFIED);
    if (p && !memory_region_from_host(p, &offset)) {
        dma_memory_unmap(as, p, *len, DMA_DIRECTION_TO_DEVICE, 0);
        return NULL;
    }
    return p;
}

/* Copy @len bytes of guest RAM; returns the bytes copied. */
static uint64_t vgru_copy(VgruState *s, AddressSpace *as, dma_addr_t dst,
                          dma_addr_t src, uint64_t len)
{
    uint64_t done = 0;

    while (done < len) {
        dma_addr_t slen = len - done, dlen = len - done, n;
        void *sp, *dp = NULL;

        sp = vgru_map(as, src + done, &slen);
        if (sp) {
            dp = vgru_map(as, dst + done, &dlen);
        }
        if (!dp) {
            if (sp) {
                dma_memory_unmap(as, sp, slen, DMA_DIRECTION_TO_DEVICE, 0);
            }
            break;
        }
        n = MIN(slen, dlen);
        if (s->x_dma_delay_us) {
            g_usleep(s->x_dma_delay_us);
        }
        /* defined for any guest input, overlapping ranges included */
        memmove(dp, sp, n);
        dma_memory_unmap(as, dp, dlen, DMA_DIRECTION_FROM_DEVICE, n);
        dma_memory_unmap(as, sp, slen, DMA_DIRECTION_TO_DEVICE, n);
        done += n;
    }
    return done;
}

/* Move @w's batch; returns the bytes moved, in order, from its start. */
static uint64_t vgru_move(VgruState *s, VgruWorker *w, bool *failed)
{
    AddressSpace *as = pci_get_address_space(&s->parent_obj);
    uint64_t done = 0;

    for (unsigned i = 0; i < w->nr_pieces; i++) {
        VgruPiece *p = &w->pieces[i];

        for (uint64_t off = 0; off < p->len;) {
            uint64_t n = MIN(p->len - off, VGRU_CHUNK), moved;

            if (qatomic_read(&w->cancel)) {
                return done;
            }
            moved = vgru_copy(s, as, p->dst + off, p->src + off, n);
            done += moved;
            off += moved;
            if (moved < n) {
                *failed = true;
                return done;
            }
        }
    }
    return done;
}

/* ---- turns -------------------------------------------------------------- */

static uint64_t vgru_page_left(uint64_t va)
{
    return VGRU_PAGE_SIZE - (va & (VGRU_PAGE_SIZE - 1));
}

/*
 * Translate up to a share of @cb from its progress into @w's pieces,
 * merging physically contiguous ones.  False if a translation missed
 * (the fault is described in @cb); the pieces before it still stand.
 */
static bool vgru_plan(VgruState *s, VgruWorker *w, VgruCb *cb)
{
    uint64_t pos = cb->progress;
    uint64_t end = cb->len - pos > VGRU_SHARE ? pos + VGRU_SHARE : cb->len;
    bool ok = true;

    w->nr_pieces = 0;
    while (pos < end) {
        uint64_t src = cb->src + pos, dst = cb->dst + pos;
        uint64_t n = MIN(end - pos,
                         MIN(vgru_page_left(src), vgru_page_left(dst)));
        dma_addr_t spa, dpa;
        VgruPiece *p;

        if (!vgru_cb_translate(s, cb, VGRU_HOLD_SRC, src, &spa) ||
            !vgru_cb_translate(s, cb, VGRU_HOLD_DST, dst, &dpa)) {
            ok = false;
            break;
        }
        p = w->nr_pieces ? &w->pieces[w->nr_pieces - 1] : NULL;
        if (p && p->src + p->len == spa && p->dst + p->len == dpa) {
            p->len += n;
        } else {
            assert(w->nr_pieces < VGRU_MAX_PIECES);
            w->pieces[w->nr_pieces++] = (VgruPiece) {
                .src = spa, .dst = dpa, .len = n,
            };
        }
        pos += n;
    }
    w->bytes = pos - cb->progress;
    if (w->bytes) {
        w->src_first = (cb->src + cb->progress) >> VGRU_PAGE_SHIFT;
        w->src_last = (cb->src + pos - 1) >> VGRU_PAGE_SHIFT;
        w->dst_first = (cb->dst + cb->progress) >> VGRU_PAGE_SHIFT;
        w->dst_last = (cb->dst + pos - 1) >> VGRU_PAGE_SHIFT;
    }
    return ok;
}

/* One turn of @cb, taken off @w's run queue; drops the lock meanwhile. */
static void vgru_turn(VgruState *s, VgruWorker *w, VgruCb *cb)
{
    bool planned = vgru_plan(s, w, cb), failed = false;
    uint64_t done = 0;

    if (w->bytes) {
        w->cb = cb;
        w->blocking = false;
        qatomic_set(&w->cancel, false);
        cb->busy = true;
        trace_vgru_batch(cb->ctx, cb->index, cb->progress, w->bytes,
                         w->nr_pieces);
        qemu_mutex_unlock(&s->lock);

        done = vgru_move(s, w, &failed);

        qemu_mutex_lock(&s->lock);
        w->cb = NULL;
        cb->busy = false;
        cb->progress += done;
        s->stats[VGRU_STAT_BYTES] += done;
        vgru_inv_update(s);
        qemu_cond_broadcast(&s->idle);
    }

    if (!s->contexts[cb->ctx].enabled) {
        return;                 /* being stopped: vgru_ctx_stop clears it */
    }
    if (failed) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: CB %u/%u: DMA at 0x%" PRIx64 " bytes into the "
                      "command failed (not guest RAM)\n",
                      cb->ctx, cb->index, cb->progress);
        vgru_cb_finish(s, cb, VGRU_CB_ERROR, VGRU_ERR_DMA);
    } else if (done < w->bytes) {
        /* cut short for an invalidation or a quiescer: go on first */
        QTAILQ_INSERT_HEAD(&w->runq, cb, run_link);
        cb->queued = true;
    } else if (!planned) {
        vgru_fault_raise(s, cb);
    } else if (cb->progress == cb->len) {
        vgru_cb_finish(s, cb, VGRU_CB_DONE, VGRU_ERR_NONE);
    } else {
        vgru_cb_queue(s, cb);
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

        if (!cb) {
            qemu_cond_wait(&w->wake, &s->lock);
            continue;
        }
        QTAILQ_REMOVE(&w->runq, cb, run_link);
        cb->queued = false;
        vgru_turn(s, w, cb);
    }
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
    QTAILQ_INIT(&s->faults);
    s->vm_running = runstate_is_running();
    s->vm_change = qemu_add_vm_change_state_handler(vgru_vm_state_change, s);

    s->workers = g_new0(VgruWorker, s->nr_workers);
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
    WITH_QEMU_LOCK_GUARD(&s->lock) {
        s->stopping = true;
        vgru_batches(s, true, 0, true);
        vgru_engine_kick(s);
    }
    for (uint32_t i = 0; i < s->nr_workers; i++) {
        qemu_thread_join(&s->workers[i].thread);
        qemu_cond_destroy(&s->workers[i].wake);
    }
    g_free(s->workers);
    qemu_cond_destroy(&s->idle);
    qemu_mutex_destroy(&s->lock);
}
