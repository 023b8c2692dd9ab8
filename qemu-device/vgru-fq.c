/*
 * vgru: the fault queue and fault responses.
 *
 * A worker that misses puts the CB on VgruState.faults and schedules the
 * fault bottom half; records are written and MSI-X is sent only there or
 * in an MMIO handler, i.e. with the BQL and this device's re-entrancy
 * guard engaged.  A CB reads as FAULT from the moment its record is
 * written (or found no room), so a driver that sees FAULT finds the record.
 * Faults are posted in the order they were raised, and only while the
 * device is enabled and the VM runs.
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

/* A worker's miss: the CB waits for the driver (lock held). */
void vgru_fault_raise(VgruState *s, VgruCb *cb)
{
    assert(!cb->faulting);
    cb->faulting = true;
    cb->fault_posted = false;
    QTAILQ_INSERT_TAIL(&s->faults, cb, fault_link);
    qemu_bh_schedule(s->fault_bh);
}

void vgru_fault_forget(VgruState *s, VgruCb *cb)
{
    if (cb->faulting) {
        QTAILQ_REMOVE(&s->faults, cb, fault_link);
        cb->faulting = false;
        cb->fault_posted = false;
    }
}

/* Write @cb's fault record into the queue; false if the queue is full. */
static bool vgru_fq_write(VgruState *s, VgruCb *cb)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint8_t rec[VGRU_FQ_RECORD_SIZE] = { 0 };
    dma_addr_t addr;

    if (s->fq_tail - s->fq_head >= s->fq_size) {
        return false;
    }
    stq_le_p(rec + VGRU_FR_VADDR, cb->fault_addr);
    stl_le_p(rec + VGRU_FR_CTX, cb->ctx);
    stl_le_p(rec + VGRU_FR_TAG, s->contexts[cb->ctx].tag);
    stl_le_p(rec + VGRU_FR_CB, cb->index);
    stl_le_p(rec + VGRU_FR_FLAGS, cb->fault_flags);

    addr = s->fq_base + (dma_addr_t)(s->fq_tail % s->fq_size) * sizeof(rec);
    if (pci_dma_write(pdev, addr, rec, sizeof(rec)) != MEMTX_OK) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: fault queue write at 0x%" PRIx64 " failed\n",
                      (uint64_t)addr);
        s->status |= VGRU_STATUS_FQ_ERROR;
        vgru_fault_forget(s, cb);
        vgru_cb_finish(s, cb, VGRU_CB_ERROR, VGRU_ERR_DMA);
        return true;
    }
    s->fq_tail++;
    cb->fault_posted = true;
    trace_vgru_fault(cb->ctx, cb->index, cb->fault_addr, cb->fault_flags);
    if (msix_enabled(pdev)) {
        msix_notify(pdev, VGRU_MSIX_FAULT);
    }
    return true;
}

/*
 * Post the faults not yet in the queue, oldest first, while it has room.
 * BQL, re-entrancy guard and lock held.
 */
void vgru_fq_post(VgruState *s)
{
    VgruCb *cb, *next;
    bool room = true;

    assert(qemu_mutex_iothread_locked());
    if (!vgru_enabled(s) || !s->vm_running) {
        return;
    }
    QTAILQ_FOREACH_SAFE(cb, &s->faults, fault_link, next) {
        if (!cb->fault_posted) {
            cb->status = VGRU_CB_FAULT;
            room = room && vgru_fq_write(s, cb);
        }
    }
}

/* A new queue (enable): every waiting fault goes into it again. */
void vgru_fq_repost(VgruState *s)
{
    VgruCb *cb;

    QTAILQ_FOREACH(cb, &s->faults, fault_link) {
        cb->fault_posted = false;
    }
    vgru_fq_post(s);
}

void vgru_fault_bh(void *opaque)
{
    VgruState *s = opaque;

    QEMU_LOCK_GUARD(&s->lock);
    vgru_fq_post(s);
}

void vgru_fault_response(VgruState *s, uint32_t cmd)
{
    VgruCb *cb;

    if (s->resp_ctx >= s->nr_contexts || s->resp_cb >= s->nr_cbs ||
        !s->contexts[s->resp_ctx].enabled) {
        qemu_log_mask(LOG_GUEST_ERROR, "vgru: response to bad CB %u/%u\n",
                      s->resp_ctx, s->resp_cb);
        return;
    }
    cb = vgru_cb(s, s->resp_ctx, s->resp_cb);
    if (cb->status != VGRU_CB_FAULT || !cb->fault_posted) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "vgru: response to CB %u/%u that has no fault\n",
                      s->resp_ctx, s->resp_cb);
        return;
    }

    switch (cmd) {
    case VGRU_RESP_RESTART:
        trace_vgru_restart(cb->ctx, cb->index);
        vgru_fault_forget(s, cb);
        cb->status = VGRU_CB_ACTIVE;
        vgru_cb_queue(s, cb);
        break;
    case VGRU_RESP_FAIL:
        vgru_fault_forget(s, cb);
        vgru_cb_finish(s, cb, VGRU_CB_ERROR,
                       VGRU_ERR_FAULT | (s->resp_code & 0xffff) << 16);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "vgru: bad fault response %u\n", cmd);
    }
}
