/*
 * vgru: the event queue (faults and notices) and fault responses.
 *
 * A worker that misses, or a command that ends with a notice due, puts
 * the CB's event on VgruState.events and schedules the fault bottom half;
 * records are written and MSI-X is sent only there or in an MMIO handler,
 * i.e. with the BQL and this device's re-entrancy guard engaged.  A CB
 * reads as FAULT from the moment its fault record is written (or found no
 * room), so a driver that sees FAULT finds the record.  Events are posted
 * in the order they were raised, and only while the device is enabled and
 * the VM runs.  A fault stays on the list, posted, until it is answered
 * (so that enabling the device again can post it anew); a notice leaves
 * it once written.
 *
 * The event interrupt is coalesced: a record raises it only while it is
 * armed (after reset, ENABLE or a FQ_HEAD write), and that disarms it.
 * So a burst of records costs the guest one interrupt, and the driver
 * learns of the rest by rereading FQ_TAIL after writing FQ_HEAD.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "hw/pci/msix.h"
#include "trace.h"
#include "vgru-internal.h"

static void vgru_event_queue(VgruState *s, VgruEvent *ev)
{
    assert(!ev->queued);
    ev->queued = true;
    ev->posted = false;
    QTAILQ_INSERT_TAIL(&s->events, ev, link);
    /* an MMIO handler about to post it itself wakes no main loop */
    if (!s->posting_here) {
        qemu_bh_schedule(s->fault_bh);
    }
}

static void vgru_event_forget(VgruState *s, VgruEvent *ev)
{
    if (ev->queued) {
        QTAILQ_REMOVE(&s->events, ev, link);
        ev->queued = false;
        ev->posted = false;
    }
}

/* A miss: the CB waits for the driver (lock held). */
void vgru_fault_raise(VgruState *s, VgruCb *cb)
{
    /* device-wide, never 0, so that a zeroed RESP_SEQ matches nothing */
    if (++s->fault_seq == 0) {
        s->fault_seq = 1;
    }
    cb->fault_seq = s->fault_seq;
    /* the thread waiting in START or RESTART_CALLER can tell by itself */
    cb->fault_quiet = cb->caller_runs && (cb->top.flags & VGRU_DF_CALL_OS);
    vgru_event_queue(s, &cb->fault);
}

/* A command of @cb ended: one notice, however many are due before it. */
void vgru_notice(VgruState *s, VgruCb *cb)
{
    if (!cb->notice.queued) {
        vgru_event_queue(s, &cb->notice);
    }
}

void vgru_events_forget(VgruState *s, VgruCb *cb)
{
    vgru_event_forget(s, &cb->fault);
    vgru_event_forget(s, &cb->notice);
}

/* The fault of @cb ends its command's current step with @error. */
static void vgru_fault_end(VgruState *s, VgruCb *cb, uint32_t error)
{
    vgru_event_forget(s, &cb->fault);
    if (vgru_cb_fail(s, cb, error)) {
        cb->status = VGRU_CB_ACTIVE;
        vgru_cb_queue(s, cb);
    }
}

/*
 * Raise the event interrupt and disarm it.  x-drop-irq-every drops every
 * Nth raise: the device still disarms, and stays so until FQ_HEAD is
 * written, which is the lost interrupt the driver's watchdog must catch.
 * STAT_INTERRUPTS counts the raises that were not dropped.
 */
static void vgru_irq_raise(VgruState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    s->irq_armed = false;
    if (vgru_inject(&s->inj_records, s->x_drop_irq_every)) {
        trace_vgru_inject("drop-irq", s->inj_records);
        return;
    }
    s->stats[VGRU_STAT_INTERRUPTS]++;
    if (msix_enabled(pdev)) {
        msix_notify(pdev, VGRU_MSIX_EVENT);
    }
}

/*
 * FQ_HEAD was written (BQL and lock held): arm the interrupt, and raise it
 * at once if records are still pending.
 */
void vgru_irq_rearm(VgruState *s)
{
    s->irq_armed = true;
    if (s->fq_tail != s->fq_head && vgru_enabled(s)) {
        vgru_irq_raise(s);
    }
}

/* Write @ev's record into the queue; false if the queue is full. */
static bool vgru_fq_write(VgruState *s, VgruEvent *ev)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint8_t rec[VGRU_FQ_RECORD_SIZE] = { 0 };
    VgruCb *cb = ev->cb;
    bool fault = ev->type == VGRU_FR_FAULT;
    dma_addr_t addr;

    if (s->fq_tail - s->fq_head >= s->fq_size) {
        return false;
    }
    if (fault) {
        stq_le_p(rec + VGRU_FR_VADDR, cb->fault_addr);
        stl_le_p(rec + VGRU_FR_FLAGS, cb->fault_flags |
                 (cb->fault_quiet ? VGRU_FAULT_CALL_OS : 0));
        stl_le_p(rec + VGRU_FR_SEQ, cb->fault_seq);
    }
    stl_le_p(rec + VGRU_FR_CTX, cb->ctx);
    stl_le_p(rec + VGRU_FR_TAG, s->contexts[cb->ctx].tag);
    stl_le_p(rec + VGRU_FR_CB, cb->index);
    stl_le_p(rec + VGRU_FR_TYPE, ev->type);

    addr = s->fq_base + (dma_addr_t)(s->fq_tail % s->fq_size) * sizeof(rec);
    if (pci_dma_write(pdev, addr, rec, sizeof(rec)) != MEMTX_OK) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: event queue write at 0x%" PRIx64 " failed\n",
                      (uint64_t)addr);
        s->status |= VGRU_STATUS_FQ_ERROR;
        if (fault) {
            vgru_fault_end(s, cb, VGRU_ERR_DMA);
        } else {
            vgru_event_forget(s, ev);
        }
        return true;
    }
    s->fq_tail++;
    if (fault) {
        ev->posted = true;
        trace_vgru_fault(cb->ctx, cb->index, cb->fault_addr, cb->fault_flags,
                         cb->fault_seq);
    } else {
        vgru_event_forget(s, ev);
        trace_vgru_notice(cb->ctx, cb->index);
    }
    /* a quiet record leaves the interrupt armed for the next one */
    if (s->irq_armed && !(fault && cb->fault_quiet)) {
        vgru_irq_raise(s);
    }
    return true;
}

/*
 * Post the events not yet in the queue, oldest first, while it has room.
 * BQL, re-entrancy guard and lock held.
 */
void vgru_fq_post(VgruState *s)
{
    VgruEvent *ev, *next;
    bool room = true;

    assert(qemu_mutex_iothread_locked());
    if (!vgru_enabled(s) || !s->vm_running) {
        return;
    }
    QTAILQ_FOREACH_SAFE(ev, &s->events, link, next) {
        if (ev->posted) {
            continue;
        }
        if (ev->type == VGRU_FR_FAULT) {
            ev->cb->status = VGRU_CB_FAULT;
        }
        room = room && vgru_fq_write(s, ev);
    }
}

/* A new queue (enable): every waiting fault goes into it again. */
void vgru_fq_repost(VgruState *s)
{
    VgruEvent *ev;

    QTAILQ_FOREACH(ev, &s->events, link) {
        ev->posted = false;
        /* its thread may have come and gone while the queue was away */
        ev->cb->fault_quiet = false;
    }
    vgru_fq_post(s);
}

void vgru_fault_bh(void *opaque)
{
    VgruState *s = opaque;

    QEMU_LOCK_GUARD(&s->lock);
    vgru_fq_post(s);
}

/*
 * Answer the fault of CB @cbi of @ctx whose record had @seq: the RESP_*
 * registers, or a response of a translation list.
 */
void vgru_respond(VgruState *s, uint32_t ctx, uint32_t cbi, uint32_t seq,
                  uint32_t cmd, uint32_t code)
{
    VgruCb *cb;

    if (ctx >= s->nr_contexts || cbi >= s->nr_cbs ||
        !s->contexts[ctx].enabled) {
        qemu_log_mask(LOG_GUEST_ERROR, "vgru: response to bad CB %u/%u\n",
                      ctx, cbi);
        return;
    }
    cb = vgru_cb(s, ctx, cbi);
    if (cb->status != VGRU_CB_FAULT || !cb->fault.posted) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: response to CB %u/%u that has no fault\n",
                      ctx, cbi);
        return;
    }
    if (seq != cb->fault_seq) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: response to CB %u/%u for fault %u, not %u\n",
                      ctx, cbi, seq, cb->fault_seq);
        return;
    }

    switch (cmd) {
    case VGRU_RESP_RESTART:
    case VGRU_RESP_RESTART_CALLER:
        trace_vgru_restart(cb->ctx, cb->index);
        vgru_event_forget(s, &cb->fault);
        cb->status = VGRU_CB_ACTIVE;
        cb->caller_runs = cb->caller_restart =
            cmd == VGRU_RESP_RESTART_CALLER;
        vgru_cb_go(s, cb);
        cb->caller_runs = cb->caller_restart = false;
        break;
    case VGRU_RESP_FAIL:
        vgru_fault_end(s, cb, VGRU_ERR_FAULT | (code & 0xffff) << 16);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "vgru: bad fault response %u\n", cmd);
    }
}

void vgru_fault_response(VgruState *s, uint32_t cmd)
{
    vgru_respond(s, s->resp_ctx, s->resp_cb, s->resp_seq, cmd, s->resp_code);
}
