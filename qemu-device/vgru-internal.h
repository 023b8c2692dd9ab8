/*
 * vgru device model: what its files share.
 *
 *   vgru.c         control registers, command windows, QOM life cycle
 *   vgru-tlb.c     the TLB and the translations a CB holds
 *   vgru-engine.c  worker threads, commands, the invalidation handshake,
 *                  quiescing for context and device state changes
 *   vgru-fq.c      the event queue (faults, notices) and fault responses
 *
 * Threads.  MMIO handlers, bottom halves and the VM state handler run
 * with the BQL; the workers never take it.  Commands run on the workers,
 * outside the BQL: a worker translates a share of a command under the
 * device lock, drops the lock, maps guest RAM and copies once, then
 * retakes the lock to account for it.  Small accesses (a BATCH entry, an
 * atomic word, a completion record) are done with the lock held, which
 * keeps them atomic against invalidations.  Anything that needs the BQL
 * (event records, MSI-X) is handed to a bottom half.
 *
 * Lock order: BQL -> VgruState.lock.  Fields marked (L) are protected by
 * that lock.  Code holding the BQL may wait on VgruState.idle for the
 * workers (they never need the BQL, so they always get there); nothing
 * else sleeps with the lock held.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */
#ifndef HW_MISC_VGRU_INTERNAL_H
#define HW_MISC_VGRU_INTERNAL_H

#include "qemu/queue.h"
#include "qemu/thread.h"
#include "qemu/units.h"
#include "qemu/timer.h"
#include "hw/pci/pci.h"
#include "sysemu/runstate.h"
#include "hw/misc/vgru_regs.h"

#define TYPE_VGRU "vgru"
OBJECT_DECLARE_SIMPLE_TYPE(VgruState, VGRU)

#define VGRU_MAX_CONTEXTS   1024
#define VGRU_MAX_CBS        (VGRU_WINDOW_STRIDE / VGRU_CB_STRIDE)
#define VGRU_MAX_TLB        (1u << 20)
#define VGRU_MAX_WORKERS    16
#define VGRU_MAX_DMA_DELAY_US   1000000
#define VGRU_PCIE_CAP       0x80    /* config offset of the PCIe capability */
#define VGRU_MAX_INV_DELAY_US   1000000
/* Invalidations x-inv-delay-us times at once; more release the oldest. */
#define VGRU_INV_DELAYED    64
/* 2 MiB entries (tlb-huge-entries), fully associative: searched whole */
#define VGRU_MAX_HUGE_ENTRIES   256
#define VGRU_HUGE_PAGES     (VGRU_HUGE_SIZE / VGRU_PAGE_SIZE)

/*
 * Bytes a CB may move in one turn on its worker before the next CB of
 * the run queue gets its turn; also the most one batch can hold back an
 * invalidation (less: a batch stops early when one waits for it).
 */
#define VGRU_SHARE          (256 * KiB)
/* A share split at every page of source and destination, plus one. */
#define VGRU_MAX_PIECES     (2 * VGRU_SHARE / VGRU_PAGE_SIZE + 1)
/* Ceiling of the inline-bytes property (vgru_cb_go; docs/device.md). */
#define VGRU_MAX_INLINE_BYTES   (256 * KiB)
#define VGRU_MAX_CALLER_RUN_BYTES   (64 * MiB)
/* Bytes copied between two looks at VgruWorker.cancel. */
#define VGRU_CHUNK          (64 * KiB)

typedef struct VgruState VgruState;

typedef struct VgruTlbEntry {
    uint64_t vpn;               /* virtual page number (of its size) */
    uint64_t ppn;               /* bus page number (of its size) */
    uint64_t epoch;             /* live only while its context's epoch */
    uint32_t ctx;
    bool valid;
    bool writable;
} VgruTlbEntry;

/*
 * A translation a CB keeps for what its current piece reads (HOLD_SRC) or
 * writes (HOLD_DST): one 4 KiB page, or all of a 2 MiB translation, so
 * that a piece runs to the end of what one translation covers.  Holds let
 * a piece that needs two translations finish even if each drop-in evicts
 * the other from the TLB; invalidations remove them exactly like TLB
 * entries.
 */
enum { VGRU_HOLD_SRC, VGRU_HOLD_DST, VGRU_NR_HOLDS };

typedef struct VgruHold {
    uint64_t vpn;               /* its first page */
    uint64_t ppn;               /* and where that page is */
    uint64_t pages;             /* 1, or VGRU_HUGE_PAGES */
    uint64_t counted_vpn;       /* the page last counted in TLB_HITS */
    bool valid;
    bool writable;
} VgruHold;

/* A descriptor: a CB's first 64 bytes, or one entry of a BATCH list. */
typedef struct VgruDesc {
    uint32_t opcode;
    uint32_t flags;
    uint64_t src;
    uint64_t dst;
    uint64_t len;
    uint64_t arg;
    uint64_t comp;
} VgruDesc;

/*
 * An event record a CB waits to have written into the event queue.  A CB
 * has one for its fault and one for its notice, so it can wait for both.
 */
typedef struct VgruEvent {
    struct VgruCb *cb;
    uint32_t type;              /* VGRU_FR_FAULT or VGRU_FR_NOTICE */
    bool queued;                /* on VgruState.events */
    bool posted;                /* written; a fault stays until answered */
    QTAILQ_ENTRY(VgruEvent) link;
} VgruEvent;

/*
 * Where a running CB is: reading its next BATCH entry, running the current
 * command, or writing the current command's completion record.
 */
enum { VGRU_PH_LOAD, VGRU_PH_RUN, VGRU_PH_COMP };

typedef struct VgruCb {
    /* the descriptor registers, written by the process (L) */
    VgruDesc regs;

    /* state the process reads (L) */
    uint32_t status;            /* VGRU_CB_* */
    uint32_t error;
    uint64_t progress;          /* bytes, or BATCH entries */
    uint64_t fault_addr;
    uint64_t result;
    uint32_t fault_flags;

    /* the command, latched at START, and where it is (L) */
    VgruDesc top;               /* what START ran */
    VgruDesc cur;               /* top, or the BATCH entry being run */
    bool in_entry;              /* cur is an entry of top's list */
    uint32_t phase;             /* VGRU_PH_* */
    uint64_t pos;               /* bytes of cur done */
    uint64_t entry;             /* BATCH entries done */
    uint32_t cur_error;         /* how cur ended (VGRU_PH_COMP) */
    uint64_t cur_result;
    uint64_t start_seq;         /* VgruContext.starts at START, for FENCE */
    bool fencing;               /* a FENCE waits for older commands */
    bool armed;                 /* ARM: post a notice when top ends */
    uint32_t fault_seq;         /* VGRU_FR_SEQ of the outstanding fault */
    bool caller_runs;           /* in START or a RESTART_CALLER write */
    bool caller_restart;        /* in a RESTART_CALLER write */
    bool fault_quiet;           /* the outstanding fault: VGRU_DF_CALL_OS */

    /* engine (L) */
    uint32_t ctx;               /* fixed at realize */
    uint32_t index;
    bool queued;                /* on its worker's run queue */
    bool busy;                  /* a worker is moving a batch of it */
    VgruEvent fault;            /* queued: waits for the driver */
    VgruEvent notice;           /* queued: a notice not yet written */
    VgruHold hold[VGRU_NR_HOLDS];
    QTAILQ_ENTRY(VgruCb) run_link;
} VgruCb;

typedef struct VgruContext {
    bool enabled;               /* (L) */
    uint32_t tag;               /* (L) */
    uint64_t epoch;             /* (L) TLB entries of older epochs are dead */
    uint32_t nr_entries;        /* (L) live TLB entries */
    uint64_t starts;            /* (L) commands started, for FENCE */
    /*
     * (L) at least the CBs with fencing set: vgru_cb_finish looks for
     * them only if it is not 0, and recounts (a reset or a migration that
     * clears fencing needs not care).
     */
    uint32_t nr_fencing;
    uint32_t nr_cbs;            /* VgruState.nr_cbs, for the vmstate */
    VgruCb *cbs;
} VgruContext;

/* One physically contiguous run of a batch (FILL: no source). */
typedef struct VgruPiece {
    dma_addr_t src;
    dma_addr_t dst;
    uint64_t len;
    uint64_t pos;               /* its offset in the command (FILL) */
} VgruPiece;

/*
 * A run of guest RAM a worker found, so that a piece there needs no
 * address-space translation, RAM block lookup or reference (engine).  It
 * holds no reference: it is used only in an RCU read section that finds
 * its flat view still current and the memory-map generation unchanged,
 * which keeps its region alive (docs/device.md, "How RAM is reached").
 */
typedef struct VgruRam {
    FlatView *fv;               /* the address space's view it came from */
    uint32_t gen;               /* VgruState.ram_gen then */
    bool write;                 /* writable directly */
    dma_addr_t start, end;      /* bus addresses [start, end) */
    /*
     * host pointer, region and offset at start; laid out as a cache so
     * that address_space_cache_invalidate marks written bytes (no
     * references taken: never passed to address_space_cache_destroy)
     */
    MemoryRegionCache mrc;
} VgruRam;

/* RAM runs a worker keeps: a copy's source and destination, and spares. */
#define VGRU_RAM_SLOTS      4

typedef struct VgruWorker {
    VgruState *s;
    QemuThread thread;
    QemuCond wake;              /* work queued, engine resumed, or stop */
    QTAILQ_HEAD(, VgruCb) runq; /* (L) active CBs of its contexts, FIFO */
    bool idle;                  /* (L) waiting on wake */

    /* the batch in flight (L); cb is NULL when there is none */
    VgruCb *cb;
    uint64_t src_first, src_last;   /* virtual pages it translated */
    uint64_t dst_first, dst_last;
    bool has_src;               /* COPY; a FILL only writes */
    bool blocking;              /* an invalidation waits for it ... */
    uint32_t blocks;            /* ... this one, the first */
    bool cancel;                /* atomic: stop after the current chunk */

    /* the plan of that batch, private to the worker */
    VgruRam ram[VGRU_RAM_SLOTS];    /* RAM runs it found */
    unsigned ram_next;              /* slot the next new run replaces */
    unsigned nr_pieces;
    uint64_t bytes;
    VgruPiece pieces[VGRU_MAX_PIECES];
} VgruWorker;

struct VgruState {
    PCIDevice parent_obj;

    MemoryRegion ctrl_mmio;
    MemoryRegion window_mmio;
    QEMUBH *fault_bh;           /* posts event records, under the BQL */
    VMChangeStateEntry *vm_change;

    /* geometry and tuning (properties) */
    uint32_t nr_contexts;
    uint32_t nr_cbs;
    uint32_t tlb_sets;
    uint32_t tlb_ways;
    uint32_t tlb_huge_entries;
    uint32_t nr_workers;
    uint32_t inline_bytes;      /* most a COPY/FILL moves in the handler */
    uint32_t caller_run_bytes;  /* most a RESTART_CALLER moves in it */
    uint32_t x_dma_delay_us;    /* testing: stall each worker chunk */
    bool x_worker_faults;       /* testing: no vgru_cb_go fast path */

    /* fault injection (testing; 0 is off), see docs/device.md */
    uint32_t x_drop_irq_every;  /* no MSI-X message for every Nth record */
    uint32_t x_fail_dma_every;  /* every Nth data transfer fails */
    uint32_t x_inv_delay_us;    /* INV_DONE counts an invalidation late */
    uint32_t x_evict_every;     /* every Nth drop-in evicts another entry */
    uint64_t inj_records;       /* (L) records written, for the above */
    uint64_t inj_transfers;     /* (L) data transfers started */
    uint64_t inj_dropins;       /* (L) drop-ins */
    uint32_t evict_next;        /* (L) TLB slot the next eviction looks at */
    QEMUTimer *inv_timer;       /* releases delayed invalidations */
    int64_t inv_due[VGRU_INV_DELAYED];  /* (L) when each may count, ns */
    uint32_t inv_timed;         /* (L) invalidations whose delay is over */

    /* bumped at every memory-map commit: VgruWorker.ram is then stale */
    MemoryListener ram_listener;
    uint32_t ram_gen;           /* atomic */

    QemuMutex lock;
    QemuCond idle;              /* a batch ended: quiescers look again */
    uint32_t idle_waiters;      /* (L) quiescers waiting on idle */

    /* control registers (L) */
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
    uint64_t tlb_list;
    uint64_t inv_start;
    uint64_t inv_len;
    uint32_t inv_ctx;
    uint32_t inv_issued;        /* invalidations written */
    uint32_t inv_done;          /* ... and counted complete (INV_DONE) */
    uint32_t resp_ctx;
    uint32_t resp_cb;
    uint32_t resp_code;
    uint32_t resp_seq;
    uint32_t fault_seq;         /* last fault sequence handed out */
    bool irq_armed;             /* the next record raises the interrupt */
    uint64_t stats[VGRU_STAT_NR];

    /* engine (L) */
    bool vm_running;            /* false: workers idle, no DMA */
    bool stopping;              /* unrealize: workers exit */
    bool dma_bql;               /* behind a vIOMMU: turns run under the BQL */
    QTAILQ_HEAD(, VgruEvent) events;    /* faults and notices, in order */

    /* migration: the event list as ids (ctx * cbs + cb) * 2 + notice */
    uint32_t mig_nr_events;
    uint32_t *mig_events;       /* room for every CB's two events */

    VgruContext *contexts;
    VgruCb *cb_table;           /* every context's CBs, in context order */
    VgruTlbEntry *tlb;          /* tlb_sets * tlb_ways (L) */
    uint32_t *tlb_victim;       /* next way to replace, per set (L) */
    VgruTlbEntry *tlb_huge;     /* tlb_huge_entries 2 MiB entries (L) */
    uint32_t huge_victim;       /* next of them to replace (L) */
    /* a translation list read by DMA, whole (L) */
    uint8_t tl_buf[VGRU_TL_SIZE(VGRU_TL_MAX_TRANS, VGRU_TL_MAX_RESP)];
    VgruWorker *workers;
    VgruWorker *inline_worker;  /* after them: runs turns in vgru_cb_go */
    /*
     * vgru_cb_go posts the events queued meanwhile before it returns: no
     * bottom half (and main loop wake-up) for them (L)
     */
    bool posting_here;
};

static inline bool vgru_enabled(VgruState *s)
{
    return s->ctrl & VGRU_CTRL_ENABLE;
}

/* Fault injection: true on every @every-th call (never if @every is 0). */
static inline bool vgru_inject(uint64_t *count, uint32_t every)
{
    return every && ++*count % every == 0;
}

static inline VgruCb *vgru_cb(VgruState *s, uint32_t ctx, uint32_t cbi)
{
    return &s->contexts[ctx].cbs[cbi];
}

/* vgru-tlb.c; all with the lock held */
void vgru_tlb_dropin(VgruState *s, uint32_t ctx, uint64_t vaddr,
                     uint64_t paddr, uint32_t flags);
bool vgru_tlb_dropin_ok(VgruState *s, uint32_t ctx, uint64_t vaddr,
                        uint64_t paddr, uint32_t flags);
void vgru_tlb_list(VgruState *s);
uint32_t vgru_tlb_flush(VgruState *s, bool all, uint32_t ctx,
                        uint64_t *first, uint64_t *last);
bool vgru_cb_translate(VgruState *s, VgruCb *cb, int hold, uint64_t va,
                       dma_addr_t *pa);
uint64_t vgru_cb_translate_step(VgruState *s, VgruCb *cb, bool copy,
                                uint64_t src, uint64_t dst, uint64_t len,
                                dma_addr_t *spa, dma_addr_t *dpa);
void vgru_cb_drop_holds(VgruCb *cb);
/* Pages ahead whose TLB sets vgru_cb_translate_step prefetches. */
#define VGRU_TLB_AHEAD      4
void vgru_tlb_prefetch(VgruState *s, uint32_t ctx, uint64_t vpn);
void vgru_tlb_reset(VgruState *s);

/* vgru-engine.c */
void vgru_engine_realize(VgruState *s);
void vgru_engine_unrealize(VgruState *s);
void vgru_cb_init(VgruCb *cb, uint32_t ctx, uint32_t index);
void vgru_cb_doorbell(VgruState *s, VgruCb *cb, uint32_t val);
void vgru_cb_queue(VgruState *s, VgruCb *cb);
void vgru_cb_go(VgruState *s, VgruCb *cb);
bool vgru_cb_fail(VgruState *s, VgruCb *cb, uint32_t error);
void vgru_ctx_stop(VgruState *s, uint32_t ctx);
void vgru_engine_quiesce(VgruState *s);
void vgru_engine_kick(VgruState *s);
void vgru_invalidate(VgruState *s, uint32_t cmd);
void vgru_inv_reset(VgruState *s);
bool vgru_cb_loaded_ok(VgruState *s, VgruCb *cb);

/* vgru-fq.c */
void vgru_fq_post(VgruState *s);
void vgru_fq_repost(VgruState *s);
void vgru_fault_raise(VgruState *s, VgruCb *cb);
void vgru_notice(VgruState *s, VgruCb *cb);
void vgru_events_forget(VgruState *s, VgruCb *cb);
void vgru_fault_response(VgruState *s, uint32_t cmd);
void vgru_respond(VgruState *s, uint32_t ctx, uint32_t cbi, uint32_t seq,
                  uint32_t cmd, uint32_t code);
void vgru_irq_rearm(VgruState *s);
void vgru_fault_bh(void *opaque);

#endif /* HW_MISC_VGRU_INTERNAL_H */
