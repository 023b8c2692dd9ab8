/*
 * qtest for the vgru device: the device model alone, no guest kernel.
 *
 * The test plays the driver: it programs the fault queue and MSI-X in
 * guest RAM, resolves faults from its own table of "process" pages, and
 * checks data byte for byte, fault records, error codes and counters.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/pci-pc.h"
#include "hw/pci/pci_regs.h"
#include "hw/misc/vgru_regs.h"

/* Guest-physical layout used by the tests (the qtest guest runs no code). */
#define FQ_PA       0x100000ULL     /* fault queue */
#define MSI_PA      0x110000ULL     /* MSI-X message lands here */
#define MSI_DATA    0x5a5a0001u
#define DATA_PA     0x200000ULL     /* backing pages of the fake process */
#define FQ_RECORDS  8

/*
 * The fake process: virtual page VA_BASE + i is backed by DATA_PA + i
 * (+ Vgru.remap once a test has moved it).
 */
#define VA_BASE     0x7f1234500000ULL
#define NR_PAGES    1024
#define PAGE        VGRU_PAGE_SIZE

typedef struct Vgru {
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev;
    QPCIBar ctrl;
    QPCIBar win;
    uint32_t fq_head;
    uint32_t fq_size;
    uint32_t inv_seq;
    unsigned faults;            /* resolved by vgru_drive */
    unsigned max_faults;        /* vgru_drive fails beyond (0: no limit) */
    uint64_t remap;             /* pages added to the backing page */
} Vgru;

static uint32_t rd(Vgru *v, uint32_t reg)
{
    return qpci_io_readl(v->dev, v->ctrl, reg);
}

static void wr(Vgru *v, uint32_t reg, uint32_t val)
{
    qpci_io_writel(v->dev, v->ctrl, reg, val);
}

static void wr64(Vgru *v, uint32_t reg, uint64_t val)
{
    qpci_io_writeq(v->dev, v->ctrl, reg, val);
}

static uint64_t dev_stat(Vgru *v, unsigned n)
{
    return qpci_io_readq(v->dev, v->ctrl, VGRU_REG_STAT(n));
}

static uint64_t cb_off(uint32_t ctx, uint32_t cb, uint32_t reg)
{
    return (uint64_t)ctx * VGRU_WINDOW_STRIDE + cb * VGRU_CB_STRIDE + reg;
}

static uint32_t cb_rd(Vgru *v, uint32_t ctx, uint32_t cb, uint32_t reg)
{
    return qpci_io_readl(v->dev, v->win, cb_off(ctx, cb, reg));
}

/* Take the (new) vgru at @devfn: enable it, map its BARs, forget the old. */
static void vgru_attach(Vgru *v, int devfn)
{
    g_free(v->dev);
    v->dev = qpci_device_find(v->bus, devfn);
    g_assert_nonnull(v->dev);
    qpci_device_enable(v->dev);
    v->ctrl = qpci_iomap(v->dev, VGRU_CTRL_BAR, NULL);
    v->win = qpci_iomap(v->dev, VGRU_WINDOW_BAR, NULL);
    v->fq_head = v->inv_seq = v->faults = 0;
    v->remap = 0;
}

static void vgru_start(Vgru *v, const char *props)
{
    memset(v, 0, sizeof(*v));
    v->qts = qtest_initf("-machine pc -nodefaults -m 64M "
                         "-device vgru,addr=04.0%s", props);
    v->bus = qpci_new_pc(v->qts, NULL);
    vgru_attach(v, QPCI_DEVFN(4, 0));
}

static void vgru_stop(Vgru *v)
{
    g_free(v->dev);
    qpci_free_pc(v->bus);
    qtest_quit(v->qts);
}

/* Enable MSI-X vector 0 towards MSI_PA and the device with its queue. */
static void vgru_enable(Vgru *v, uint32_t fq_records)
{
    uint64_t entry;

    qpci_msix_enable(v->dev);
    entry = v->dev->msix_table_off + VGRU_MSIX_EVENT * PCI_MSIX_ENTRY_SIZE;
    qpci_io_writel(v->dev, v->dev->msix_table_bar,
                   entry + PCI_MSIX_ENTRY_LOWER_ADDR, MSI_PA);
    qpci_io_writel(v->dev, v->dev->msix_table_bar,
                   entry + PCI_MSIX_ENTRY_UPPER_ADDR, 0);
    qpci_io_writel(v->dev, v->dev->msix_table_bar,
                   entry + PCI_MSIX_ENTRY_DATA, MSI_DATA);
    qpci_io_writel(v->dev, v->dev->msix_table_bar,
                   entry + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);

    wr64(v, VGRU_REG_FQ_BASE, FQ_PA);
    wr(v, VGRU_REG_FQ_SIZE, fq_records);
    wr(v, VGRU_REG_CTRL, VGRU_CTRL_ENABLE);
    v->fq_size = fq_records;
    g_assert_cmphex(rd(v, VGRU_REG_STATUS), ==, VGRU_STATUS_ENABLED);
}

static void ctx_cmd(Vgru *v, uint32_t ctx, uint32_t tag, uint32_t cmd)
{
    wr(v, VGRU_REG_CTX_SEL, ctx);
    wr(v, VGRU_REG_CTX_TAG, tag);
    wr(v, VGRU_REG_CTX_CMD, cmd);
}

/* The common preamble: start, enable with FQ_RECORDS, enable context @ctx. */
static void vgru_start_ctx(Vgru *v, const char *props, uint32_t ctx,
                           uint32_t tag)
{
    vgru_start(v, props);
    vgru_enable(v, FQ_RECORDS);
    ctx_cmd(v, ctx, tag, VGRU_CTX_CMD_ENABLE);
}

/* A descriptor, as in a CB or an entry of a BATCH list. */
typedef struct Desc {
    uint32_t op, flags;
    uint64_t src, dst, len, arg, comp;
} Desc;

static void doorbell(Vgru *v, uint32_t ctx, uint32_t cb, uint32_t val)
{
    qpci_io_writel(v->dev, v->win, cb_off(ctx, cb, VGRU_CB_DOORBELL), val);
}

/* Write @d into the CB and ring START. */
static void cmd_start(Vgru *v, uint32_t ctx, uint32_t cb, const Desc *d)
{
    qpci_io_writel(v->dev, v->win, cb_off(ctx, cb, VGRU_CB_OPCODE), d->op);
    qpci_io_writel(v->dev, v->win, cb_off(ctx, cb, VGRU_CB_FLAGS), d->flags);
    qpci_io_writeq(v->dev, v->win, cb_off(ctx, cb, VGRU_CB_SRC), d->src);
    qpci_io_writeq(v->dev, v->win, cb_off(ctx, cb, VGRU_CB_DST), d->dst);
    qpci_io_writeq(v->dev, v->win, cb_off(ctx, cb, VGRU_CB_LEN), d->len);
    qpci_io_writeq(v->dev, v->win, cb_off(ctx, cb, VGRU_CB_ARG), d->arg);
    qpci_io_writeq(v->dev, v->win, cb_off(ctx, cb, VGRU_CB_COMP), d->comp);
    doorbell(v, ctx, cb, VGRU_CB_START);
}

static void copy_start(Vgru *v, uint32_t ctx, uint32_t cb, uint64_t src,
                       uint64_t dst, uint64_t len)
{
    Desc d = { .op = VGRU_OP_COPY, .src = src, .dst = dst, .len = len };

    cmd_start(v, ctx, cb, &d);
}

static uint64_t cb_rd64(Vgru *v, uint32_t ctx, uint32_t cb, uint32_t reg)
{
    return qpci_io_readq(v->dev, v->win, cb_off(ctx, cb, reg));
}

/* Polls give up after this long: the engine runs in real time. */
#define WAIT_US     (30 * G_USEC_PER_SEC)

/* Poll (each qtest read lets the main loop run) until the CB leaves ACTIVE. */
static uint32_t cb_wait(Vgru *v, uint32_t ctx, uint32_t cb)
{
    int64_t end = g_get_monotonic_time() + WAIT_US;

    while (g_get_monotonic_time() < end) {
        uint32_t st = cb_rd(v, ctx, cb, VGRU_CB_STATUS);

        if (st != VGRU_CB_ACTIVE) {
            return st;
        }
    }
    g_assert_not_reached();
}

/* Poll until counter @n has reached @val. */
static void stat_wait(Vgru *v, unsigned n, uint64_t val)
{
    int64_t end = g_get_monotonic_time() + WAIT_US;

    while (dev_stat(v, n) < val) {
        g_assert_cmpint(g_get_monotonic_time(), <, end);
    }
}

typedef struct Fault {
    uint64_t va;
    uint32_t ctx, tag, cb, flags, seq, type;
} Fault;

static bool fault_pop(Vgru *v, Fault *f)
{
    uint64_t pa = FQ_PA + (v->fq_head % v->fq_size) * VGRU_FQ_RECORD_SIZE;

    if (rd(v, VGRU_REG_FQ_TAIL) == v->fq_head) {
        return false;
    }
    f->va = qtest_readq(v->qts, pa + VGRU_FR_VADDR);
    f->ctx = qtest_readl(v->qts, pa + VGRU_FR_CTX);
    f->tag = qtest_readl(v->qts, pa + VGRU_FR_TAG);
    f->cb = qtest_readl(v->qts, pa + VGRU_FR_CB);
    f->flags = qtest_readl(v->qts, pa + VGRU_FR_FLAGS);
    f->seq = qtest_readl(v->qts, pa + VGRU_FR_SEQ);
    f->type = qtest_readl(v->qts, pa + VGRU_FR_TYPE);
    wr(v, VGRU_REG_FQ_HEAD, ++v->fq_head);
    return true;
}

static void dropin(Vgru *v, uint32_t ctx, uint64_t va, uint64_t pa,
                   uint32_t flags)
{
    wr64(v, VGRU_REG_TLB_VADDR, va);
    wr64(v, VGRU_REG_TLB_PADDR, pa);
    wr(v, VGRU_REG_TLB_CTX, ctx);
    wr(v, VGRU_REG_TLB_FLAGS, flags);
    wr(v, VGRU_REG_TLB_CMD, VGRU_TLB_CMD_DROPIN);
}

/* Answer the fault of record @f. */
static void respond(Vgru *v, const Fault *f, uint32_t cmd, uint32_t code)
{
    wr(v, VGRU_REG_RESP_CTX, f->ctx);
    wr(v, VGRU_REG_RESP_CB, f->cb);
    wr(v, VGRU_REG_RESP_CODE, code);
    wr(v, VGRU_REG_RESP_SEQ, f->seq);
    wr(v, VGRU_REG_RESP_CMD, cmd);
}

/* Write an invalidation without waiting for it. */
static void invalidate_start(Vgru *v, uint32_t cmd, uint32_t ctx,
                             uint64_t start, uint64_t len)
{
    wr64(v, VGRU_REG_INV_START, start);
    wr64(v, VGRU_REG_INV_LEN, len);
    wr(v, VGRU_REG_INV_CTX, ctx);
    wr(v, VGRU_REG_INV_CMD, cmd);
    v->inv_seq++;
}

/* Poll, as the driver does, until INV_DONE has counted the last one. */
static void invalidate_wait(Vgru *v)
{
    int64_t end = g_get_monotonic_time() + WAIT_US;

    while (g_get_monotonic_time() < end) {
        uint32_t done = rd(v, VGRU_REG_INV_DONE);

        if (done == v->inv_seq) {
            return;
        }
        g_assert_cmpint((int32_t)(v->inv_seq - done), >, 0);
    }
    g_assert_not_reached();
}

static void invalidate(Vgru *v, uint32_t cmd, uint32_t ctx, uint64_t start,
                       uint64_t len)
{
    invalidate_start(v, cmd, ctx, start, len);
    invalidate_wait(v);
}

/* Resolve one queued fault of @ctx: map its VA_BASE page RW, restart. */
static void resolve_fault(Vgru *v, uint32_t ctx, uint32_t tag)
{
    uint64_t page;
    Fault f;

    g_assert_true(fault_pop(v, &f));
    g_assert_cmpuint(f.type, ==, VGRU_FR_FAULT);
    g_assert_cmpuint(f.seq, !=, 0);
    g_assert_cmpuint(f.ctx, ==, ctx);
    g_assert_cmphex(f.tag, ==, tag);
    g_assert_cmphex(f.va, ==, qpci_io_readq(v->dev, v->win,
                           cb_off(ctx, f.cb, VGRU_CB_FAULT_ADDR)));

    page = (f.va - VA_BASE) >> VGRU_PAGE_SHIFT;
    g_assert_cmpuint(page, <, NR_PAGES);
    dropin(v, ctx, f.va & ~(VGRU_PAGE_SIZE - 1),
           DATA_PA + (page + v->remap) * VGRU_PAGE_SIZE, VGRU_TLB_WRITE);
    respond(v, &f, VGRU_RESP_RESTART, 0);
    v->faults++;
}

/* Play the driver until the CB ends; returns its final status. */
static uint32_t vgru_drive(Vgru *v, uint32_t ctx, uint32_t tag, uint32_t cb)
{
    uint32_t st;
    Fault f;

    while ((st = cb_wait(v, ctx, cb)) == VGRU_CB_FAULT) {
        /* one record, announced by one MSI-X message */
        g_assert_cmpuint(rd(v, VGRU_REG_FQ_TAIL), ==, v->fq_head + 1);
        g_assert_cmphex(qtest_readl(v->qts, MSI_PA), ==, MSI_DATA);
        qtest_writel(v->qts, MSI_PA, 0);
        resolve_fault(v, ctx, tag);
        g_assert_true(!v->max_faults || v->faults <= v->max_faults);
    }
    g_assert_false(fault_pop(v, &f));
    return st;
}

static void fill_pattern(Vgru *v, uint64_t off, size_t len, uint8_t seed)
{
    g_autofree uint8_t *buf = g_malloc(len);

    for (size_t i = 0; i < len; i++) {
        buf[i] = seed + i * 7 + (i >> 9);
    }
    qtest_memwrite(v->qts, DATA_PA + off, buf, len);
}

static void assert_same(Vgru *v, uint64_t a, uint64_t b, size_t len)
{
    g_autofree uint8_t *x = g_malloc(len);
    g_autofree uint8_t *y = g_malloc(len);

    qtest_memread(v->qts, DATA_PA + a, x, len);
    qtest_memread(v->qts, DATA_PA + b, y, len);
    g_assert_cmpmem(x, len, y, len);
}

static unsigned pages_spanned(uint64_t off, uint64_t len)
{
    return ((off + len - 1) >> VGRU_PAGE_SHIFT) - (off >> VGRU_PAGE_SHIFT) + 1;
}

/* Drop in the fake process's pages [off, off + len) of @ctx, writable. */
static void map_pages(Vgru *v, uint32_t ctx, uint64_t off, uint64_t len)
{
    for (uint64_t p = off & ~(PAGE - 1); p < off + len; p += PAGE) {
        dropin(v, ctx, VA_BASE + p, DATA_PA + p, VGRU_TLB_WRITE);
    }
}

/* Every byte of the data pages [off, off + len) is @val. */
static void assert_filled(Vgru *v, uint64_t off, size_t len, uint8_t val)
{
    g_autofree uint8_t *x = g_malloc(len);
    g_autofree uint8_t *y = g_malloc(len);

    qtest_memread(v->qts, DATA_PA + off, x, len);
    memset(y, val, len);
    g_assert_cmpmem(x, len, y, len);
}

static void vm_stop(Vgru *v)
{
    qtest_qmp_assert_success(v->qts, "{ 'execute': 'stop' }");
}

static void vm_cont(Vgru *v)
{
    qtest_qmp_assert_success(v->qts, "{ 'execute': 'cont' }");
}

/* Completion records of the tests live in the fake process's page 900. */
#define COMP_OFF    (900 * PAGE)

typedef struct Comp {
    uint32_t status, error;
    uint64_t progress, fault_addr, result;
} Comp;

/* The completion record at the fake process's offset @off. */
static Comp comp_read(Vgru *v, uint64_t off)
{
    uint64_t pa = DATA_PA + off;

    return (Comp) {
        .status = qtest_readl(v->qts, pa + VGRU_COMP_STATUS),
        .error = qtest_readl(v->qts, pa + VGRU_COMP_ERROR),
        .progress = qtest_readq(v->qts, pa + VGRU_COMP_PROGRESS),
        .fault_addr = qtest_readq(v->qts, pa + VGRU_COMP_FAULT_ADDR),
        .result = qtest_readq(v->qts, pa + VGRU_COMP_RESULT),
    };
}

static void assert_comp(Vgru *v, uint64_t off, uint32_t status,
                        uint32_t error, uint64_t progress,
                        uint64_t fault_addr, uint64_t result)
{
    Comp c = comp_read(v, off);

    g_assert_cmpuint(c.status, ==, status);
    g_assert_cmphex(c.error, ==, error);
    g_assert_cmpuint(c.progress, ==, progress);
    g_assert_cmphex(c.fault_addr, ==, fault_addr);
    g_assert_cmphex(c.result, ==, result);
}

/* Poll until FQ_TAIL is @val (records are posted by a bottom half). */
static void tail_wait(Vgru *v, uint32_t val)
{
    int64_t end = g_get_monotonic_time() + WAIT_US;

    while (rd(v, VGRU_REG_FQ_TAIL) != val) {
        g_assert_cmpint(g_get_monotonic_time(), <, end);
    }
}

/*
 * Nothing more is queued, and no MSI-X message sent, for a while: long
 * enough for workers and bottom halves to have run (each read lets the
 * main loop run).
 */
static void assert_quiet(Vgru *v)
{
    int64_t end = g_get_monotonic_time() + 200 * 1000;

    while (g_get_monotonic_time() < end) {
        g_assert_cmpuint(rd(v, VGRU_REG_FQ_TAIL), ==, v->fq_head);
    }
    g_assert_cmphex(qtest_readl(v->qts, MSI_PA), ==, 0);
}

/* Pop one record, a notice of (@ctx, @tag, @cb) sent with one message. */
static void notice_pop(Vgru *v, uint32_t ctx, uint32_t tag, uint32_t cb)
{
    Fault f;

    tail_wait(v, v->fq_head + 1);
    g_assert_cmphex(qtest_readl(v->qts, MSI_PA), ==, MSI_DATA);
    qtest_writel(v->qts, MSI_PA, 0);
    g_assert_true(fault_pop(v, &f));
    g_assert_cmpuint(f.type, ==, VGRU_FR_NOTICE);
    g_assert_cmpuint(f.ctx, ==, ctx);
    g_assert_cmphex(f.tag, ==, tag);
    g_assert_cmpuint(f.cb, ==, cb);
    g_assert_cmphex(f.va, ==, 0);
    g_assert_cmphex(f.flags, ==, 0);
    g_assert_cmphex(f.seq, ==, 0);
}

/*
 * Identity and geometry registers reflect the properties; operand
 * registers read back what was written.
 */
static void test_identity(void)
{
    static const struct {
        uint32_t reg;
        bool wide;
    } operands[] = {
        { VGRU_REG_FQ_BASE, true }, { VGRU_REG_FQ_SIZE, false },
        { VGRU_REG_CTX_SEL, false }, { VGRU_REG_CTX_TAG, false },
        { VGRU_REG_TLB_VADDR, true }, { VGRU_REG_TLB_PADDR, true },
        { VGRU_REG_TLB_CTX, false }, { VGRU_REG_TLB_FLAGS, false },
        { VGRU_REG_INV_START, true }, { VGRU_REG_INV_LEN, true },
        { VGRU_REG_INV_CTX, false }, { VGRU_REG_RESP_CTX, false },
        { VGRU_REG_RESP_CB, false }, { VGRU_REG_RESP_CODE, false },
        { VGRU_REG_RESP_SEQ, false },
    };
    static const uint32_t readonly[] = {
        VGRU_REG_ID, VGRU_REG_VERSION, VGRU_REG_NR_CONTEXTS,
        VGRU_REG_NR_CBS, VGRU_REG_TLB_SETS, VGRU_REG_TLB_WAYS,
        VGRU_REG_PAGE_SIZES, VGRU_REG_STATUS, VGRU_REG_FQ_TAIL,
        VGRU_REG_INV_DONE, VGRU_REG_STAT(0), VGRU_REG_STAT(8) + 4,
    };
    Vgru v;

    vgru_start(&v, ",contexts=5,cbs=2,tlb-sets=16,tlb-ways=2");
    g_assert_cmphex(rd(&v, VGRU_REG_ID), ==, VGRU_ID);
    g_assert_cmphex(rd(&v, VGRU_REG_VERSION), ==, VGRU_VERSION);
    g_assert_cmpuint(rd(&v, VGRU_REG_NR_CONTEXTS), ==, 5);
    g_assert_cmpuint(rd(&v, VGRU_REG_NR_CBS), ==, 2);
    g_assert_cmpuint(rd(&v, VGRU_REG_TLB_SETS), ==, 16);
    g_assert_cmpuint(rd(&v, VGRU_REG_TLB_WAYS), ==, 2);
    g_assert_cmphex(rd(&v, VGRU_REG_PAGE_SIZES), ==,
                    VGRU_PAGE_SIZE | VGRU_HUGE_SIZE);
    g_assert_cmphex(rd(&v, VGRU_REG_STATUS), ==, 0);

    /* operand registers read back, 64-bit ones in halves or whole */
    wr64(&v, VGRU_REG_TLB_VADDR, 0x123456789abcd000ULL);
    g_assert_cmphex(rd(&v, VGRU_REG_TLB_VADDR), ==, 0x9abcd000);
    g_assert_cmphex(rd(&v, VGRU_REG_TLB_VADDR + 4), ==, 0x12345678);
    wr(&v, VGRU_REG_INV_LEN + 4, 0xfeed);
    g_assert_cmphex(qpci_io_readq(v.dev, v.ctrl, VGRU_REG_INV_LEN), ==,
                    0xfeed00000000ULL);
    wr(&v, VGRU_REG_RESP_CODE, 77);
    g_assert_cmpuint(rd(&v, VGRU_REG_RESP_CODE), ==, 77);

    /* every operand register reads back; read-only ones ignore writes */
    for (size_t i = 0; i < ARRAY_SIZE(operands); i++) {
        uint32_t reg = operands[i].reg;

        if (operands[i].wide) {
            wr64(&v, reg, 0x1111111100000000ULL * (i + 1) + i);
            g_assert_cmphex(qpci_io_readq(v.dev, v.ctrl, reg), ==,
                            0x1111111100000000ULL * (i + 1) + i);
        } else {
            wr(&v, reg, 0x01010101 * (i + 1));
            g_assert_cmphex(rd(&v, reg), ==, 0x01010101 * (i + 1));
        }
    }
    for (size_t i = 0; i < ARRAY_SIZE(readonly); i++) {
        uint32_t before = rd(&v, readonly[i]);

        wr(&v, readonly[i], 0x5a5a5a5a);
        g_assert_cmphex(rd(&v, readonly[i]), ==, before);
    }
    vgru_stop(&v);
}

/*
 * A copy at odd offsets faults once per page touched (reads first, then
 * writes), each fault is a correct record with an MSI-X message, and the
 * result matches byte for byte.
 */
static void test_copy_faults(void)
{
    const uint64_t src = 0x10 + 3, dst = 20 * VGRU_PAGE_SIZE + 0x7ff;
    const uint64_t len = 3 * VGRU_PAGE_SIZE + 100;
    unsigned expect = pages_spanned(src, len) + pages_spanned(dst, len);
    Vgru v;

    vgru_start_ctx(&v, "", 3, 0xabc);
    fill_pattern(&v, src, len, 1);

    copy_start(&v, 3, 1, VA_BASE + src, VA_BASE + dst, len);
    g_assert_cmpuint(vgru_drive(&v, 3, 0xabc, 1), ==, VGRU_CB_DONE);
    g_assert_cmpuint(v.faults, ==, expect);
    g_assert_cmpuint(qpci_io_readq(v.dev, v.win,
                                   cb_off(3, 1, VGRU_CB_PROGRESS)), ==, len);
    assert_same(&v, src, dst, len);

    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_COMMANDS), ==, 1);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_COMPLETED), ==, 1);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_ERRORS), ==, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_MISSES), ==, expect);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_DROPINS), ==, expect);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_BYTES), ==, len);

    /* warm: the same copy again takes no fault */
    fill_pattern(&v, src, len, 9);
    copy_start(&v, 3, 1, VA_BASE + src, VA_BASE + dst, len);
    g_assert_cmpuint(vgru_drive(&v, 3, 0xabc, 1), ==, VGRU_CB_DONE);
    g_assert_cmpuint(v.faults, ==, expect);
    assert_same(&v, src, dst, len);
    vgru_stop(&v);
}

/*
 * After a range invalidation exactly the invalidated pages fault again;
 * a context invalidation removes everything of that context only.
 */
static void test_invalidate(void)
{
    const uint64_t len = 4 * VGRU_PAGE_SIZE;
    const uint64_t src = 0, dst = 8 * VGRU_PAGE_SIZE;
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    ctx_cmd(&v, 1, 2, VGRU_CTX_CMD_ENABLE);
    fill_pattern(&v, src, len, 3);
    copy_start(&v, 0, 0, VA_BASE + src, VA_BASE + dst, len);
    g_assert_cmpuint(vgru_drive(&v, 0, 1, 0), ==, VGRU_CB_DONE);
    g_assert_cmpuint(v.faults, ==, 8);

    /* the same addresses in another context are not translated */
    copy_start(&v, 1, 0, VA_BASE + src, VA_BASE + dst, len);
    g_assert_cmpuint(vgru_drive(&v, 1, 2, 0), ==, VGRU_CB_DONE);
    g_assert_cmpuint(v.faults, ==, 16);

    /* two source pages of context 0 go (the range ends mid-page) */
    invalidate(&v, VGRU_INV_CMD_RANGE, 0, VA_BASE + VGRU_PAGE_SIZE,
               VGRU_PAGE_SIZE + 1);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INV_ENTRIES), ==, 2);
    fill_pattern(&v, src, len, 4);
    copy_start(&v, 0, 0, VA_BASE + src, VA_BASE + dst, len);
    g_assert_cmpuint(vgru_drive(&v, 0, 1, 0), ==, VGRU_CB_DONE);
    g_assert_cmpuint(v.faults, ==, 18);
    assert_same(&v, src, dst, len);

    /* an empty range removes nothing; a context flush removes 8 */
    invalidate(&v, VGRU_INV_CMD_RANGE, 0, VA_BASE, 0);
    invalidate(&v, VGRU_INV_CMD_CONTEXT, 1, 0, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INV_ENTRIES), ==, 10);
    copy_start(&v, 0, 0, VA_BASE + src, VA_BASE + dst, len);
    g_assert_cmpuint(vgru_drive(&v, 0, 1, 0), ==, VGRU_CB_DONE);
    g_assert_cmpuint(v.faults, ==, 18);
    invalidate(&v, VGRU_INV_CMD_ALL, 0, 0, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INV_ENTRIES), ==, 18);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INVALIDATIONS), ==, 4);
    vgru_stop(&v);
}

/* A write through a read-only entry is a permission fault. */
static void test_permission_fault(void)
{
    Vgru v;
    Fault f;

    vgru_start_ctx(&v, "", 2, 7);
    dropin(&v, 2, VA_BASE, DATA_PA, VGRU_TLB_WRITE);
    dropin(&v, 2, VA_BASE + VGRU_PAGE_SIZE, DATA_PA + VGRU_PAGE_SIZE, 0);

    copy_start(&v, 2, 0, VA_BASE, VA_BASE + VGRU_PAGE_SIZE, 64);
    g_assert_cmpuint(cb_wait(&v, 2, 0), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmphex(f.va, ==, VA_BASE + VGRU_PAGE_SIZE);
    g_assert_cmphex(f.flags, ==, VGRU_FAULT_WRITE | VGRU_FAULT_PERM);
    dropin(&v, 2, VA_BASE + VGRU_PAGE_SIZE, DATA_PA + VGRU_PAGE_SIZE,
           VGRU_TLB_WRITE);
    respond(&v, &f, VGRU_RESP_RESTART, 0);
    g_assert_cmpuint(cb_wait(&v, 2, 0), ==, VGRU_CB_DONE);
    vgru_stop(&v);
}

/* A fault the driver fails ends the command with its code; progress kept. */
static void test_fault_fail(void)
{
    Vgru v;
    Fault f;

    vgru_start_ctx(&v, "", 0, 1);
    dropin(&v, 0, VA_BASE, DATA_PA, VGRU_TLB_WRITE);
    dropin(&v, 0, VA_BASE + 2 * PAGE, DATA_PA + 2 * PAGE, VGRU_TLB_WRITE);
    copy_start(&v, 0, 0, VA_BASE + 2 * PAGE, VA_BASE + 0x800, PAGE);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmphex(f.va, ==, VA_BASE + VGRU_PAGE_SIZE);
    respond(&v, &f, VGRU_RESP_FAIL, 14);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==,
                    VGRU_ERR_FAULT | 14 << 16);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_PROGRESS), ==, 0x800);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_ERRORS), ==, 1);
    vgru_stop(&v);
}

/* A full fault queue holds faults back until the driver makes room. */
static void test_queue_full(void)
{
    uint32_t first;
    Vgru v;
    Fault f;

    vgru_start(&v, "");
    vgru_enable(&v, 1);
    ctx_cmd(&v, 0, 10, VGRU_CTX_CMD_ENABLE);
    ctx_cmd(&v, 1, 11, VGRU_CTX_CMD_ENABLE);
    copy_start(&v, 0, 0, VA_BASE, VA_BASE + VGRU_PAGE_SIZE, 8);
    copy_start(&v, 1, 0, VA_BASE, VA_BASE + VGRU_PAGE_SIZE, 8);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
    g_assert_cmpuint(cb_wait(&v, 1, 0), ==, VGRU_CB_FAULT);
    g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, 1);

    /* the contexts run on two workers: either may have faulted first */
    first = qtest_readl(v.qts, FQ_PA + VGRU_FR_CTX);
    g_assert_cmpuint(first, <=, 1);
    wr(&v, VGRU_REG_FQ_HEAD, ++v.fq_head);
    g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, 2);
    f.ctx = qtest_readl(v.qts, FQ_PA + VGRU_FR_CTX);
    f.tag = qtest_readl(v.qts, FQ_PA + VGRU_FR_TAG);
    g_assert_cmpuint(f.ctx, ==, !first);
    g_assert_cmphex(f.tag, ==, 10 + !first);

    /* the head moves forward only */
    wr(&v, VGRU_REG_FQ_HEAD, 0);
    g_assert_cmpuint(rd(&v, VGRU_REG_FQ_HEAD), ==, 1);
    vgru_stop(&v);
}

/*
 * Bad guest input gets an error status or is ignored, never an abort:
 * unknown opcode, flags, wrapping ranges, DMA to nowhere, commands naming
 * contexts or CBs that do not exist, writes to busy or disabled CBs.
 */
static void test_bad_input(void)
{
    Vgru v;

    vgru_start(&v, ",contexts=2");

    /* enabling with a bad queue is refused */
    wr64(&v, VGRU_REG_FQ_BASE, FQ_PA + 4);
    wr(&v, VGRU_REG_FQ_SIZE, 8);
    wr(&v, VGRU_REG_CTRL, VGRU_CTRL_ENABLE);
    g_assert_cmphex(rd(&v, VGRU_REG_STATUS), ==, 0);
    wr64(&v, VGRU_REG_FQ_BASE, FQ_PA);
    wr(&v, VGRU_REG_FQ_SIZE, 3);
    wr(&v, VGRU_REG_CTRL, VGRU_CTRL_ENABLE);
    g_assert_cmphex(rd(&v, VGRU_REG_STATUS), ==, 0);
    vgru_enable(&v, FQ_RECORDS);

    /* nonexistent contexts and CBs */
    ctx_cmd(&v, 2, 0, VGRU_CTX_CMD_ENABLE);
    ctx_cmd(&v, 0xffffffff, 0, VGRU_CTX_CMD_ENABLE);
    ctx_cmd(&v, 0, 0, 99);
    dropin(&v, 7, VA_BASE, DATA_PA, 0);
    dropin(&v, 0, VA_BASE, DATA_PA, 0);         /* context 0 disabled */
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_DROPINS), ==, 0);
    respond(&v, &(Fault) { .ctx = 5 }, VGRU_RESP_RESTART, 0);
    respond(&v, &(Fault) { .ctx = 0, .cb = 99 }, VGRU_RESP_RESTART, 0);
    wr(&v, VGRU_REG_INV_CTX, 9);
    wr(&v, VGRU_REG_INV_CMD, VGRU_INV_CMD_CONTEXT);
    wr(&v, VGRU_REG_INV_CMD, 77);
    wr(&v, VGRU_REG_TLB_CMD, 5);
    wr(&v, VGRU_REG_ID, 0);
    wr(&v, 0xffc, 1);
    copy_start(&v, 1, 0, VA_BASE, VA_BASE, 8);  /* disabled context */
    g_assert_cmpuint(cb_rd(&v, 1, 0, VGRU_CB_STATUS), ==, VGRU_CB_IDLE);

    ctx_cmd(&v, 0, 1, VGRU_CTX_CMD_ENABLE);
    /* a response to a CB that has no fault is ignored */
    respond(&v, &(Fault) { .ctx = 0, .cb = 0 }, VGRU_RESP_RESTART, 0);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_IDLE);

    qpci_io_writel(v.dev, v.win, cb_off(0, 0, VGRU_CB_OPCODE), 42);
    qpci_io_writel(v.dev, v.win, cb_off(0, 0, VGRU_CB_DOORBELL), 1);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_OPCODE);

    copy_start(&v, 0, 0, UINT64_MAX - 4, VA_BASE, 8);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_RANGE);

    /* unaligned drop-ins are refused; DMA to no memory fails the command */
    dropin(&v, 0, VA_BASE + 1, DATA_PA, VGRU_TLB_WRITE);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_DROPINS), ==, 0);
    dropin(&v, 0, VA_BASE, 0xfffffff000000ULL, VGRU_TLB_WRITE);
    copy_start(&v, 0, 0, VA_BASE, VA_BASE + 8, 8);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_DMA);

    /* a busy CB ignores operand writes; disabling the context stops it */
    copy_start(&v, 0, 1, VA_BASE + VGRU_PAGE_SIZE, VA_BASE, 8);
    g_assert_cmpuint(cb_wait(&v, 0, 1), ==, VGRU_CB_FAULT);
    qpci_io_writeq(v.dev, v.win, cb_off(0, 1, VGRU_CB_LEN), 1 << 20);
    g_assert_cmpuint(qpci_io_readq(v.dev, v.win, cb_off(0, 1, VGRU_CB_LEN)),
                     ==, 8);
    ctx_cmd(&v, 0, 1, VGRU_CTX_CMD_DISABLE);
    g_assert_cmpuint(cb_rd(&v, 0, 1, VGRU_CB_STATUS), ==, VGRU_CB_IDLE);
    respond(&v, &(Fault) { .ctx = 0, .cb = 1, .seq = 1 }, VGRU_RESP_RESTART,
            0);

    /* a head beyond the tail is refused */
    wr(&v, VGRU_REG_FQ_HEAD, 1000);
    g_assert_cmpuint(rd(&v, VGRU_REG_FQ_HEAD), ==, 0);

    /* still alive and sane; a reset clears everything */
    g_assert_cmphex(rd(&v, VGRU_REG_ID), ==, VGRU_ID);
    wr(&v, VGRU_REG_CTRL, VGRU_CTRL_RESET);
    g_assert_cmphex(rd(&v, VGRU_REG_STATUS), ==, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_COMMANDS), ==, 0);
    vgru_stop(&v);
}

/*
 * DMA aimed at the device's own registers (a drop-in or a fault queue in
 * BAR 0) is refused by the re-entrancy guard: the command ends with
 * ERR_DMA, the queue reports FQ_ERROR, and the device keeps working.
 */
static void test_dma_to_own_bar(void)
{
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    dropin(&v, 0, VA_BASE, DATA_PA, VGRU_TLB_WRITE);
    dropin(&v, 0, VA_BASE + VGRU_PAGE_SIZE, v.ctrl.addr, VGRU_TLB_WRITE);
    copy_start(&v, 0, 0, VA_BASE, VA_BASE + VGRU_PAGE_SIZE, 64);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_DMA);
    g_assert_cmphex(rd(&v, VGRU_REG_ID), ==, VGRU_ID);

    /* a fault queue inside BAR 0: the record cannot be written */
    wr(&v, VGRU_REG_CTRL, 0);
    wr64(&v, VGRU_REG_FQ_BASE, v.ctrl.addr);
    wr(&v, VGRU_REG_CTRL, VGRU_CTRL_ENABLE);
    ctx_cmd(&v, 2, 1, VGRU_CTX_CMD_ENABLE);
    copy_start(&v, 2, 0, VA_BASE, VA_BASE + VGRU_PAGE_SIZE, 64);
    g_assert_cmpuint(cb_wait(&v, 2, 0), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 2, 0, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_DMA);
    g_assert_cmphex(rd(&v, VGRU_REG_STATUS), ==,
                    VGRU_STATUS_ENABLED | VGRU_STATUS_FQ_ERROR);
    g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, 0);
    g_assert_cmphex(rd(&v, VGRU_REG_ID), ==, VGRU_ID);
    vgru_stop(&v);
}

/* Several CBs of one context run and fault independently. */
static void test_parallel_cbs(void)
{
    const uint64_t len = 2 * VGRU_PAGE_SIZE;
    Vgru v;

    vgru_start_ctx(&v, "", 1, 5);
    for (uint32_t cb = 0; cb < 4; cb++) {
        fill_pattern(&v, cb * 4 * VGRU_PAGE_SIZE, len, cb);
        copy_start(&v, 1, cb, VA_BASE + cb * 4 * VGRU_PAGE_SIZE,
                   VA_BASE + (32 + cb * 4) * VGRU_PAGE_SIZE, len);
    }
    /* faults of the four CBs interleave in the queue */
    for (int i = 0; i < 100000 && v.faults < 16; i++) {
        if (rd(&v, VGRU_REG_FQ_TAIL) != v.fq_head) {
            resolve_fault(&v, 1, 5);
        }
    }
    for (uint32_t cb = 0; cb < 4; cb++) {
        cb_wait(&v, 1, cb);
    }
    for (uint32_t cb = 0; cb < 4; cb++) {
        g_assert_cmpuint(cb_rd(&v, 1, cb, VGRU_CB_STATUS), ==, VGRU_CB_DONE);
        assert_same(&v, cb * 4 * VGRU_PAGE_SIZE,
                    (32 + cb * 4) * VGRU_PAGE_SIZE, len);
    }
    g_assert_cmpuint(v.faults, ==, 16);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_COMPLETED), ==, 4);
    vgru_stop(&v);
}

/*
 * The invalidation handshake: an invalidation written while a batch is
 * moving data through the translations it removes is counted only after
 * that batch has stopped.  x-dma-delay-us holds each 64 KiB chunk in
 * flight for 300 ms; the test invalidates the whole 128 KiB destination
 * during the first chunk, waits for INV_DONE, overwrites the old pages
 * with a marker and remaps the destination to other pages.  Not one byte
 * may reach the old pages after INV_DONE: the first chunk went there
 * before it, the second goes to the new pages.  An engine that counted
 * the invalidation at once would overwrite the marker when the chunk's
 * copy ends.
 */
static void test_inv_in_flight(void)
{
    const uint64_t len = 32 * PAGE, src = 0, dst = 64 * PAGE;
    const uint64_t moved = 96;          /* pages the remap adds */
    const uint64_t done = 16 * PAGE;    /* the chunk in flight */
    Vgru v;

    vgru_start_ctx(&v, ",x-dma-delay-us=300000", 0, 1);
    map_pages(&v, 0, src, len);
    map_pages(&v, 0, dst, len);
    fill_pattern(&v, src, len, 5);

    copy_start(&v, 0, 0, VA_BASE + src, VA_BASE + dst, len);
    /* the first batch has translated every page: it is in flight */
    stat_wait(&v, VGRU_STAT_TLB_HITS, 2 * len / PAGE);
    invalidate(&v, VGRU_INV_CMD_RANGE, 0, VA_BASE + dst, len);
    qtest_memset(v.qts, DATA_PA + dst, 0xee, len);
    v.remap = moved;
    for (uint64_t p = 0; p < len; p += PAGE) {
        dropin(&v, 0, VA_BASE + dst + p, DATA_PA + dst + moved * PAGE + p,
               VGRU_TLB_WRITE);
    }

    g_assert_cmpuint(vgru_drive(&v, 0, 1, 0), ==, VGRU_CB_DONE);
    assert_filled(&v, dst, len, 0xee);
    assert_filled(&v, dst + moved * PAGE, done, 0);
    assert_same(&v, src + done, dst + moved * PAGE + done, len - done);
    vgru_stop(&v);
}

/*
 * Context DISABLE and CTRL.RESET quiesce: when the write returns, the
 * batch in flight has stopped, and nothing is written afterwards.
 */
static void test_disable_in_flight(void)
{
    const uint64_t len = 32 * PAGE, src = 0, dst = 64 * PAGE;
    Vgru v;

    vgru_start_ctx(&v, ",x-dma-delay-us=200000", 0, 1);
    map_pages(&v, 0, src, len);
    map_pages(&v, 0, dst, len);
    fill_pattern(&v, src, len, 6);
    copy_start(&v, 0, 0, VA_BASE + src, VA_BASE + dst, len);
    stat_wait(&v, VGRU_STAT_TLB_HITS, 2 * len / PAGE);

    ctx_cmd(&v, 0, 1, VGRU_CTX_CMD_DISABLE);
    qtest_memset(v.qts, DATA_PA + dst, 0xee, len);
    g_usleep(500 * 1000);
    assert_filled(&v, dst, len, 0xee);
    ctx_cmd(&v, 0, 2, VGRU_CTX_CMD_ENABLE);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_IDLE);
    g_assert_cmpuint(cb_rd64(&v, 0, 0, VGRU_CB_PROGRESS), ==, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_MISSES), ==, 0);

    map_pages(&v, 0, src, len);
    map_pages(&v, 0, dst, len);
    copy_start(&v, 0, 0, VA_BASE + src, VA_BASE + dst, len);
    stat_wait(&v, VGRU_STAT_TLB_HITS, 4 * len / PAGE);
    wr(&v, VGRU_REG_CTRL, VGRU_CTRL_RESET);
    qtest_memset(v.qts, DATA_PA + dst, 0xdd, len);
    g_usleep(500 * 1000);
    assert_filled(&v, dst, len, 0xdd);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_COMMANDS), ==, 0);
    vgru_stop(&v);
}

/*
 * Unplugging the device with a copy in flight stops its workers: nothing
 * is written after DEVICE_DELETED, and QEMU carries on.
 */
static void test_unplug_in_flight(void)
{
    const uint64_t len = 32 * PAGE, src = 0, dst = 64 * PAGE;
    Vgru v;

    vgru_start_ctx(&v, ",id=vgru0,x-dma-delay-us=200000", 0, 1);
    map_pages(&v, 0, src, len);
    map_pages(&v, 0, dst, len);
    copy_start(&v, 0, 0, VA_BASE + src, VA_BASE + dst, len);
    stat_wait(&v, VGRU_STAT_TLB_HITS, 2 * len / PAGE);

    qpci_unplug_acpi_device_test(v.qts, "vgru0", 4);
    qtest_memset(v.qts, DATA_PA + dst, 0xcc, len);
    g_usleep(500 * 1000);
    assert_filled(&v, dst, len, 0xcc);
    qtest_qmp_assert_success(v.qts, "{ 'execute': 'query-status' }");
    vgru_stop(&v);
}

/*
 * No DMA while the VM is stopped: a command started then waits, and one
 * running when the VM stops pauses after its current chunk; both finish
 * after 'cont'.
 */
static void test_vm_stop(void)
{
    const uint64_t len = 256 * PAGE, src = 0, dst = 256 * PAGE;
    uint64_t p;
    Vgru v;

    vgru_start_ctx(&v, ",tlb-sets=256,x-dma-delay-us=20000", 0, 1);
    map_pages(&v, 0, src, len);
    map_pages(&v, 0, dst, len);
    fill_pattern(&v, src, len, 7);

    vm_stop(&v);
    copy_start(&v, 0, 0, VA_BASE + src, VA_BASE + dst, len);
    g_usleep(100 * 1000);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_ACTIVE);
    g_assert_cmpuint(cb_rd64(&v, 0, 0, VGRU_CB_PROGRESS), ==, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_HITS), ==, 0);

    vm_cont(&v);
    stat_wait(&v, VGRU_STAT_BYTES, 1);
    vm_stop(&v);
    p = cb_rd64(&v, 0, 0, VGRU_CB_PROGRESS);
    g_assert_cmpuint(p, <, len);
    g_usleep(100 * 1000);
    g_assert_cmpuint(cb_rd64(&v, 0, 0, VGRU_CB_PROGRESS), ==, p);
    assert_filled(&v, dst + p, len - p, 0);

    vm_cont(&v);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_same(&v, src, dst, len);
    vgru_stop(&v);
}

/*
 * Fair turns: with a long copy and a short one queued on the same worker,
 * the short one runs after one share of the long one.  The short copy
 * writes a page the long one reads near its end, so the long copy's
 * result shows which ran first.  Both are started while the VM is stopped,
 * so that the queue order is known.
 */
static void test_fairness(void)
{
    const uint64_t len = 256 * PAGE, src = 0, dst = 256 * PAGE;
    const uint64_t small_src = 600 * PAGE, small_dst = 200 * PAGE;
    Vgru v;

    vgru_start_ctx(&v, ",tlb-sets=256", 0, 1);
    map_pages(&v, 0, src, len);
    map_pages(&v, 0, dst, len);
    map_pages(&v, 0, small_src, PAGE);
    fill_pattern(&v, src, len, 8);
    fill_pattern(&v, small_src, PAGE, 9);

    vm_stop(&v);
    copy_start(&v, 0, 0, VA_BASE + src, VA_BASE + dst, len);
    copy_start(&v, 0, 1, VA_BASE + small_src, VA_BASE + small_dst, PAGE);
    vm_cont(&v);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    g_assert_cmpuint(cb_wait(&v, 0, 1), ==, VGRU_CB_DONE);
    assert_same(&v, src, dst, small_dst);
    assert_same(&v, small_src, dst + small_dst, PAGE);
    assert_same(&v, src + small_dst + PAGE, dst + small_dst + PAGE,
                len - small_dst - PAGE);
    vgru_stop(&v);
}

/*
 * A one-entry TLB cannot livelock a copy: the translation of a piece's
 * other page is held by its CB, so each page faults once, even with two
 * contexts evicting each other's entries; and a hold reused on restart
 * is not counted again as a TLB hit.
 */
static void test_tlb_one_way(void)
{
    const uint64_t src = 0x10 + 3, dst = 20 * PAGE + 0x7ff;
    const uint64_t len = 3 * PAGE + 100;
    unsigned expect = pages_spanned(src, len) + pages_spanned(dst, len);
    int64_t end;
    Vgru v;

    vgru_start_ctx(&v, ",tlb-sets=1,tlb-ways=1", 0, 1);
    fill_pattern(&v, src, len, 10);
    v.max_faults = expect;
    copy_start(&v, 0, 0, VA_BASE + src, VA_BASE + dst, len);
    g_assert_cmpuint(vgru_drive(&v, 0, 1, 0), ==, VGRU_CB_DONE);
    g_assert_cmpuint(v.faults, ==, expect);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_HITS), ==, expect);
    assert_same(&v, src, dst, len);

    /* two contexts, faults resolved in arrival order */
    ctx_cmd(&v, 1, 2, VGRU_CTX_CMD_ENABLE);
    fill_pattern(&v, 40 * PAGE, len, 11);
    fill_pattern(&v, 60 * PAGE, len, 12);
    copy_start(&v, 0, 0, VA_BASE + 40 * PAGE, VA_BASE + 50 * PAGE, len);
    copy_start(&v, 1, 0, VA_BASE + 60 * PAGE, VA_BASE + 70 * PAGE, len);
    v.faults = 0;
    end = g_get_monotonic_time() + WAIT_US;
    while (cb_rd(&v, 0, 0, VGRU_CB_STATUS) != VGRU_CB_DONE ||
           cb_rd(&v, 1, 0, VGRU_CB_STATUS) != VGRU_CB_DONE) {
        Fault f;

        g_assert_cmpuint(v.faults, <=, 4 * pages_spanned(0, len));
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        if (rd(&v, VGRU_REG_FQ_TAIL) != v.fq_head) {
            f.ctx = qtest_readl(v.qts, FQ_PA + (v.fq_head % FQ_RECORDS) *
                                VGRU_FQ_RECORD_SIZE + VGRU_FR_CTX);
            resolve_fault(&v, f.ctx, f.ctx + 1);
        }
    }
    assert_same(&v, 40 * PAGE, 50 * PAGE, len);
    assert_same(&v, 60 * PAGE, 70 * PAGE, len);
    vgru_stop(&v);
}

/* 2 MiB aligned, unlike VA_BASE */
#define FIFO_VA     0x7f0000000000ULL

/* Drop in page @n (of @size) of context 0 at FIFO_VA, writable. */
static void fifo_dropin(Vgru *v, uint64_t n, uint64_t size)
{
    dropin(v, 0, FIFO_VA + n * size, n * size,
           VGRU_TLB_WRITE | (size == VGRU_PAGE_SIZE ? 0 : VGRU_TLB_HUGE));
}

/* Whether page @n is in the TLB: its flush removes one entry, or none. */
static uint64_t fifo_held(Vgru *v, uint64_t n, uint64_t size)
{
    uint64_t before = dev_stat(v, VGRU_STAT_INV_ENTRIES);

    invalidate(v, VGRU_INV_CMD_RANGE, 0, FIFO_VA + n * size, size);
    return dev_stat(v, VGRU_STAT_INV_ENTRIES) - before;
}

/*
 * A set replaces its entries in the order they went in, free ways filled
 * first, whatever a flush left dead: after a range flush of one entry (not
 * the next victim's) and after a context flush (the victim pointer away
 * from way 0), the entries evicted are exactly the oldest.  The same for
 * the 2 MiB entries.  The device that filled the free ways where they
 * were evicted a younger entry first in both.
 */
static void tlb_fifo(const char *props, uint64_t size)
{
    const uint64_t in_after_range[] = { 0, 0, 0, 1, 1, 1, 1 };
    const uint64_t in_after_ctx[] = { 0, 1, 1, 1, 1 };
    Vgru v;

    vgru_start_ctx(&v, props, 0, 1);
    /* 0 1 2 3, 1 flushed, 4 in the free way; 5 and 6 evict 0 and 2 */
    for (uint64_t n = 0; n < 4; n++) {
        fifo_dropin(&v, n, size);
    }
    g_assert_cmpuint(fifo_held(&v, 1, size), ==, 1);
    for (uint64_t n = 4; n < 7; n++) {
        fifo_dropin(&v, n, size);
    }
    for (uint64_t n = 0; n < 7; n++) {
        g_assert_cmpuint(fifo_held(&v, n, size), ==, in_after_range[n]);
    }

    /* 10..14 (the pointer moves to way 1), all flushed; 20..24 evict 20 */
    for (uint64_t n = 10; n < 15; n++) {
        fifo_dropin(&v, n, size);
    }
    invalidate(&v, VGRU_INV_CMD_CONTEXT, 0, 0, 0);
    for (uint64_t n = 20; n < 25; n++) {
        fifo_dropin(&v, n, size);
    }
    for (uint64_t n = 20; n < 25; n++) {
        g_assert_cmpuint(fifo_held(&v, n, size), ==, in_after_ctx[n - 20]);
    }
    vgru_stop(&v);
}

static void test_tlb_fifo(void)
{
    tlb_fifo(",tlb-sets=1,tlb-ways=4", VGRU_PAGE_SIZE);
    tlb_fifo(",tlb-huge-entries=4", VGRU_HUGE_SIZE);
}

/*
 * Targets that are not guest RAM fail the command with ERR_DMA from
 * either end, before any byte moves: another device's registers and this
 * device's command windows; ROM (the BIOS) only as a destination, as a
 * source it is read.  Nothing is written there and both devices keep
 * working.
 */
static void test_not_ram(void)
{
    const uint64_t rom = 0xfffff000ULL;
    uint64_t other_ctrl, targets[3];
    g_autofree uint8_t *before = g_malloc(PAGE);
    g_autofree uint8_t *after = g_malloc(PAGE);
    QPCIDevice *other;
    QPCIBar bar;
    Vgru v;

    vgru_start(&v, ",contexts=4 -device vgru,addr=05.0");
    other = qpci_device_find(v.bus, QPCI_DEVFN(5, 0));
    g_assert_nonnull(other);
    qpci_device_enable(other);
    bar = qpci_iomap(other, VGRU_CTRL_BAR, NULL);
    other_ctrl = bar.addr;
    targets[0] = other_ctrl;
    targets[1] = v.win.addr;
    targets[2] = rom;
    qtest_memread(v.qts, rom, before, PAGE);

    vgru_enable(&v, FQ_RECORDS);
    ctx_cmd(&v, 0, 1, VGRU_CTX_CMD_ENABLE);
    fill_pattern(&v, 0, PAGE, 0x30);
    for (int i = 0; i < 3; i++) {
        for (int to = 0; to < 2; to++) {
            /* the RAM end at VA_BASE, the other one at VA_BASE + 1 page */
            dropin(&v, 0, VA_BASE, DATA_PA, VGRU_TLB_WRITE);
            dropin(&v, 0, VA_BASE + PAGE, targets[i], VGRU_TLB_WRITE);
            copy_start(&v, 0, 0, VA_BASE + (to ? 0 : PAGE),
                       VA_BASE + (to ? PAGE : 0) + 0x30, 64);
            if (targets[i] == rom && !to) {
                /* ROM is a fine source: mapped for reading only */
                g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
                qtest_memread(v.qts, DATA_PA + 0x30, after, 64);
                g_assert_cmpmem(before, 64, after, 64);
                fill_pattern(&v, 0, PAGE, 0x30);
                continue;
            }
            g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_ERROR);
            g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==,
                            VGRU_ERR_DMA);
            g_assert_cmpuint(cb_rd64(&v, 0, 0, VGRU_CB_PROGRESS), ==, 0);
        }
    }
    g_assert_cmphex(qpci_io_readq(other, bar, VGRU_REG_FQ_BASE), ==, 0);
    g_assert_cmphex(qpci_io_readl(other, bar, VGRU_REG_ID), ==, VGRU_ID);
    g_assert_cmpuint(cb_rd(&v, 0, 1, VGRU_CB_OPCODE), ==, 0);
    qtest_memread(v.qts, rom, after, PAGE);
    g_assert_cmpmem(before, PAGE, after, PAGE);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_BYTES), ==, 64);

    /* still working */
    map_pages(&v, 0, 0, 2 * PAGE);
    copy_start(&v, 0, 0, VA_BASE, VA_BASE + PAGE, PAGE);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_same(&v, 0, PAGE, PAGE);
    g_free(other);
    vgru_stop(&v);
}

/*
 * The device reaches RAM through pointers it keeps between commands; a
 * change of the memory map must never be read or written through an old
 * one.  The i440FX's PAM register for 0xd0000-0xd3fff maps that range to
 * RAM (3) or to the PCI side (0), where read-only option ROM space is.
 * With each engine (short copies in the register write, and workers
 * only): a copy into the range lands in guest-visible RAM, the next one
 * (through the kept pointer) too, and a copy out of it reads that RAM.
 * Once the range is ROM, a copy or fill into it fails with ERR_DMA, a
 * copy out of it reads the ROM, and when it is RAM again the RAM still
 * holds the last copy's bytes.
 */
static void test_ram_remap(void)
{
    static const char *const props[] = { "", ",inline-bytes=0" };
    const uint64_t target = 0xd0000, pam = 0x5c;    /* PAM3, low nibble */
    const uint64_t va_src = VA_BASE, va_t = VA_BASE + PAGE;
    const uint64_t va_out = VA_BASE + 2 * PAGE;     /* DATA_PA + PAGE */
    g_autofree uint8_t *want = g_malloc(PAGE);
    g_autofree uint8_t *got = g_malloc(PAGE);
    g_autofree uint8_t *rom = g_malloc(PAGE);
    Desc fill = {
        .op = VGRU_OP_FILL, .src = 0x1122334455667788ULL, .dst = va_t,
        .len = PAGE,
    };

    for (size_t i = 0; i < ARRAY_SIZE(props); i++) {
        QPCIDevice *host;
        Vgru v;

        vgru_start_ctx(&v, props[i], 0, 1);
        host = qpci_device_find(v.bus, QPCI_DEVFN(0, 0));
        g_assert_nonnull(host);
        dropin(&v, 0, va_src, DATA_PA, VGRU_TLB_WRITE);
        dropin(&v, 0, va_t, target, VGRU_TLB_WRITE);
        dropin(&v, 0, va_out, DATA_PA + PAGE, VGRU_TLB_WRITE);

        /* RAM: copies in, then out */
        qpci_config_writeb(host, pam, 0x03);
        for (int k = 0; k < 2; k++) {
            fill_pattern(&v, 0, PAGE, 40 + k);
            copy_start(&v, 0, 0, va_src, va_t, PAGE);
            g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
            qtest_memread(v.qts, DATA_PA, want, PAGE);
            qtest_memread(v.qts, target, got, PAGE);
            g_assert_cmpmem(want, PAGE, got, PAGE);
        }
        copy_start(&v, 0, 0, va_t, va_out, PAGE);
        g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
        assert_same(&v, 0, PAGE, PAGE);

        /* ROM: nothing written, the ROM read */
        qpci_config_writeb(host, pam, 0);
        qtest_memread(v.qts, target, rom, PAGE);
        g_assert_false(memcmp(rom, want, PAGE) == 0);
        fill_pattern(&v, 0, PAGE, 50);
        copy_start(&v, 0, 0, va_src, va_t, PAGE);
        g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_ERROR);
        g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_DMA);
        g_assert_cmpuint(cb_rd64(&v, 0, 0, VGRU_CB_PROGRESS), ==, 0);
        cmd_start(&v, 0, 0, &fill);
        g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_ERROR);
        g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_DMA);
        copy_start(&v, 0, 0, va_t, va_out, PAGE);
        g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
        qtest_memread(v.qts, DATA_PA + PAGE, got, PAGE);
        g_assert_cmpmem(rom, PAGE, got, PAGE);
        qtest_memread(v.qts, target, got, PAGE);
        g_assert_cmpmem(rom, PAGE, got, PAGE);

        /* RAM again: it kept the last copy's bytes, and copies go through */
        qpci_config_writeb(host, pam, 0x03);
        qtest_memread(v.qts, target, got, PAGE);
        g_assert_cmpmem(want, PAGE, got, PAGE);
        copy_start(&v, 0, 0, va_src, va_t, PAGE);
        g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
        qtest_memread(v.qts, DATA_PA, want, PAGE);
        qtest_memread(v.qts, target, got, PAGE);
        g_assert_cmpmem(want, PAGE, got, PAGE);
        g_assert_cmpuint(dev_stat(&v, VGRU_STAT_BYTES), ==, 5 * PAGE);
        g_free(host);
        vgru_stop(&v);
    }
}

/*
 * Disabling and enabling the device keeps a fault that waits for the
 * driver: the new queue gets its record again, and a FQ_HEAD write while
 * disabled posts nothing.
 */
static void test_reenable_keeps_faults(void)
{
    Fault f;
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    ctx_cmd(&v, 1, 2, VGRU_CTX_CMD_ENABLE);
    fill_pattern(&v, 0, 64, 13);
    copy_start(&v, 0, 0, VA_BASE, VA_BASE + PAGE, 64);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
    g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, 1);

    wr(&v, VGRU_REG_CTRL, 0);
    qtest_writel(v.qts, MSI_PA, 0);
    map_pages(&v, 1, 0, 2 * PAGE);
    copy_start(&v, 1, 0, VA_BASE, VA_BASE + PAGE, 64);
    wr(&v, VGRU_REG_FQ_HEAD, 1);
    g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, 1);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, 0);

    /* the new queue starts at 0 with the waiting fault in it */
    qtest_memset(v.qts, FQ_PA, 0, FQ_RECORDS * VGRU_FQ_RECORD_SIZE);
    wr(&v, VGRU_REG_CTRL, VGRU_CTRL_ENABLE);
    g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, 1);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmpuint(f.ctx, ==, 0);
    g_assert_cmphex(f.va, ==, VA_BASE);
    qtest_writel(v.qts, MSI_PA, 0);
    dropin(&v, 0, VA_BASE, DATA_PA, VGRU_TLB_WRITE);
    respond(&v, &f, VGRU_RESP_RESTART, 0);
    v.faults = 1;
    g_assert_cmpuint(vgru_drive(&v, 0, 1, 0), ==, VGRU_CB_DONE);
    assert_same(&v, 0, PAGE, 64);

    /* context 1's command, started while disabled, has run */
    g_assert_cmpuint(cb_wait(&v, 1, 0), ==, VGRU_CB_DONE);
    vgru_stop(&v);
}

/* A range may end exactly at 2^64; one byte more wraps. */
static void test_range_end(void)
{
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    copy_start(&v, 0, 0, -(uint64_t)8, VA_BASE, 8);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
    g_assert_cmphex(cb_rd64(&v, 0, 0, VGRU_CB_FAULT_ADDR), ==,
                    -(uint64_t)8);
    ctx_cmd(&v, 0, 1, VGRU_CTX_CMD_ENABLE);
    copy_start(&v, 0, 0, VA_BASE, -(uint64_t)8, 9);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_RANGE);
    vgru_stop(&v);
}

/*
 * v2 CB layout: CBs 0x80 apart, 16 by default, every descriptor register
 * reads back, the state registers read zero before a command.
 */
static void test_cb_layout(void)
{
    Vgru v;

    vgru_start(&v, "");
    g_assert_cmpuint(rd(&v, VGRU_REG_NR_CBS), ==, 16);
    g_assert_cmphex(rd(&v, VGRU_REG_VERSION), ==, 0x00020003);
    g_assert_cmpuint(qpci_config_readb(v.dev, PCI_REVISION_ID), ==, 3);
    vgru_enable(&v, FQ_RECORDS);
    ctx_cmd(&v, 1, 1, VGRU_CTX_CMD_ENABLE);
    for (uint32_t cb = 0; cb < 16; cb++) {
        qpci_io_writel(v.dev, v.win, cb_off(1, cb, VGRU_CB_OPCODE), cb + 1);
        qpci_io_writel(v.dev, v.win, cb_off(1, cb, VGRU_CB_FLAGS), cb + 2);
        qpci_io_writeq(v.dev, v.win, cb_off(1, cb, VGRU_CB_SRC), cb + 3);
        qpci_io_writeq(v.dev, v.win, cb_off(1, cb, VGRU_CB_DST), cb + 4);
        qpci_io_writeq(v.dev, v.win, cb_off(1, cb, VGRU_CB_LEN), cb + 5);
        qpci_io_writeq(v.dev, v.win, cb_off(1, cb, VGRU_CB_ARG),
                       0x1122334455667788ULL + cb);
        qpci_io_writeq(v.dev, v.win, cb_off(1, cb, VGRU_CB_COMP), cb * 32);
    }
    for (uint32_t cb = 0; cb < 16; cb++) {
        g_assert_cmpuint(cb_rd(&v, 1, cb, VGRU_CB_OPCODE), ==, cb + 1);
        g_assert_cmpuint(cb_rd(&v, 1, cb, VGRU_CB_FLAGS), ==, cb + 2);
        g_assert_cmpuint(cb_rd64(&v, 1, cb, VGRU_CB_SRC), ==, cb + 3);
        g_assert_cmpuint(cb_rd64(&v, 1, cb, VGRU_CB_DST), ==, cb + 4);
        g_assert_cmpuint(cb_rd64(&v, 1, cb, VGRU_CB_LEN), ==, cb + 5);
        g_assert_cmphex(cb_rd64(&v, 1, cb, VGRU_CB_ARG), ==,
                        0x1122334455667788ULL + cb);
        g_assert_cmphex(cb_rd(&v, 1, cb, VGRU_CB_ARG + 4), ==, 0x11223344);
        g_assert_cmpuint(cb_rd64(&v, 1, cb, VGRU_CB_COMP), ==, cb * 32);
        g_assert_cmpuint(cb_rd(&v, 1, cb, VGRU_CB_STATUS), ==, VGRU_CB_IDLE);
        g_assert_cmpuint(cb_rd64(&v, 1, cb, VGRU_CB_RESULT), ==, 0);
    }
    vgru_stop(&v);

    /* the most a 4 KiB window holds */
    vgru_start(&v, ",cbs=32");
    g_assert_cmpuint(rd(&v, VGRU_REG_NR_CBS), ==, 32);
    vgru_enable(&v, FQ_RECORDS);
    ctx_cmd(&v, 0, 1, VGRU_CTX_CMD_ENABLE);
    cmd_start(&v, 0, 31, &(Desc) { .op = VGRU_OP_NOP });
    g_assert_cmpuint(cb_rd(&v, 0, 31, VGRU_CB_STATUS), ==, VGRU_CB_DONE);
    g_assert_cmpuint(cb_rd(&v, 0, 30, VGRU_CB_STATUS), ==, VGRU_CB_IDLE);
    vgru_stop(&v);
}

/*
 * Fault records carry TYPE FAULT and a SEQ; a response must echo the
 * CB's outstanding SEQ: a wrong one (a late answer to an earlier fault,
 * or zero) is ignored and the CB stays in FAULT.
 */
static void test_resp_seq(void)
{
    Fault f, g, bad;
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    fill_pattern(&v, 0, 64, 3);
    copy_start(&v, 0, 0, VA_BASE, VA_BASE + PAGE, 64);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmpuint(f.type, ==, VGRU_FR_FAULT);
    g_assert_cmpuint(f.seq, !=, 0);
    dropin(&v, 0, VA_BASE, DATA_PA, VGRU_TLB_WRITE);

    bad = f;
    bad.seq = f.seq + 1;
    respond(&v, &bad, VGRU_RESP_RESTART, 0);
    bad.seq = 0;
    respond(&v, &bad, VGRU_RESP_FAIL, 9);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_FAULT);
    g_assert_cmpuint(rd(&v, VGRU_REG_RESP_SEQ), ==, 0);

    /* the right one restarts it: the next fault has a new SEQ */
    respond(&v, &f, VGRU_RESP_RESTART, 0);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &g));
    g_assert_cmphex(g.va, ==, VA_BASE + PAGE);
    g_assert_cmpuint(g.seq, !=, f.seq);
    g_assert_cmpuint(g.seq, !=, 0);

    /* a late answer to the first fault does not touch the second */
    respond(&v, &f, VGRU_RESP_FAIL, 5);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_FAULT);
    dropin(&v, 0, VA_BASE + PAGE, DATA_PA + PAGE, VGRU_TLB_WRITE);
    respond(&v, &g, VGRU_RESP_RESTART, 0);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_same(&v, 0, PAGE, 64);
    vgru_stop(&v);
}

/*
 * The completion record: every field exact over a record pre-filled with
 * garbage, for DONE and for errors found at start; nothing outside its 32
 * bytes is written; a misaligned COMP is ERR_ALIGN with no record, and a
 * record that is not guest RAM ends the CB in ERR_DMA.
 */
static void test_completion_record(void)
{
    const uint64_t src = 0x10, dst = 8 * PAGE + 3, len = PAGE + 5;
    const uint64_t rec = COMP_OFF + 64;
    Desc d = {
        .op = VGRU_OP_COPY, .flags = VGRU_DF_COMPLETION,
        .src = VA_BASE + src, .dst = VA_BASE + dst, .len = len,
        .comp = VA_BASE + rec,
    };
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    map_pages(&v, 0, 0, 16 * PAGE);
    map_pages(&v, 0, COMP_OFF, PAGE);
    fill_pattern(&v, src, len, 21);
    qtest_memset(v.qts, DATA_PA + COMP_OFF, 0xff, PAGE);

    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_comp(&v, rec, VGRU_CB_DONE, 0, len, 0, 0);
    assert_filled(&v, COMP_OFF, 64, 0xff);
    assert_filled(&v, rec + VGRU_COMP_SIZE, 64, 0xff);
    assert_same(&v, src, dst, len);
    g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, 0);

    /* errors found at start are reported in the record too */
    qtest_memset(v.qts, DATA_PA + rec, 0xff, VGRU_COMP_SIZE);
    d.dst = d.src + 8;
    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_RANGE);
    assert_comp(&v, rec, VGRU_CB_ERROR, VGRU_ERR_RANGE, 0, 0, 0);

    qtest_memset(v.qts, DATA_PA + rec, 0xff, VGRU_COMP_SIZE);
    d.op = 99;
    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_ERROR);
    assert_comp(&v, rec, VGRU_CB_ERROR, VGRU_ERR_OPCODE, 0, 0, 0);

    qtest_memset(v.qts, DATA_PA + rec, 0xff, VGRU_COMP_SIZE);
    d.op = VGRU_OP_NOP;
    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_comp(&v, rec, VGRU_CB_DONE, 0, 0, 0, 0);

    /* misaligned: refused at once, nothing written */
    qtest_memset(v.qts, DATA_PA + rec, 0xff, VGRU_COMP_SIZE);
    d.comp = VA_BASE + rec + 16;
    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_ALIGN);
    assert_filled(&v, COMP_OFF, PAGE, 0xff);

    /* a record in ROM cannot be written: the CB says ERR_DMA */
    dropin(&v, 0, VA_BASE + 20 * PAGE, 0xfffff000ULL, VGRU_TLB_WRITE);
    d.comp = VA_BASE + 20 * PAGE;
    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_DMA);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_ERRORS), ==, 4);
    vgru_stop(&v);
}

/*
 * A completion record whose page misses is a normal fault (a write), even
 * with NO_BLOCK: the data is copied, the fault record comes first, the
 * completion record after RESTART; MMIO STATUS turns DONE only then.
 */
static void test_completion_fault(void)
{
    const uint64_t len = 200;
    Desc d = {
        .op = VGRU_OP_COPY,
        .flags = VGRU_DF_COMPLETION | VGRU_DF_NO_BLOCK,
        .src = VA_BASE, .dst = VA_BASE + PAGE, .len = len,
        .comp = VA_BASE + COMP_OFF + 32,
    };
    Fault f;
    Vgru v;

    vgru_start_ctx(&v, "", 0, 4);
    map_pages(&v, 0, 0, 2 * PAGE);
    fill_pattern(&v, 0, len, 22);
    qtest_memset(v.qts, DATA_PA + COMP_OFF, 0xff, PAGE);
    qtest_writel(v.qts, MSI_PA, 0);

    cmd_start(&v, 0, 2, &d);
    g_assert_cmpuint(cb_wait(&v, 0, 2), ==, VGRU_CB_FAULT);
    assert_same(&v, 0, PAGE, len);
    assert_filled(&v, COMP_OFF, PAGE, 0xff);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmpuint(f.type, ==, VGRU_FR_FAULT);
    g_assert_cmphex(f.va, ==, VA_BASE + COMP_OFF + 32);
    g_assert_cmphex(f.flags, ==, VGRU_FAULT_WRITE);
    g_assert_cmpuint(f.cb, ==, 2);
    g_assert_cmpuint(cb_rd64(&v, 0, 2, VGRU_CB_PROGRESS), ==, len);

    dropin(&v, 0, VA_BASE + COMP_OFF, DATA_PA + COMP_OFF, VGRU_TLB_WRITE);
    respond(&v, &f, VGRU_RESP_RESTART, 0);
    g_assert_cmpuint(cb_wait(&v, 0, 2), ==, VGRU_CB_DONE);
    assert_comp(&v, COMP_OFF + 32, VGRU_CB_DONE, 0, len,
                VA_BASE + COMP_OFF + 32, 0);
    assert_filled(&v, COMP_OFF, 32, 0xff);
    assert_filled(&v, COMP_OFF + 64, PAGE - 64, 0xff);

    /* a record the driver fails: ERR_FAULT in MMIO, no record */
    qtest_memset(v.qts, DATA_PA + 2 * PAGE, 0xff, VGRU_COMP_SIZE);
    d.comp = VA_BASE + 2 * PAGE + PAGE;
    cmd_start(&v, 0, 2, &d);
    g_assert_cmpuint(cb_wait(&v, 0, 2), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    respond(&v, &f, VGRU_RESP_FAIL, 14);
    g_assert_cmpuint(cb_rd(&v, 0, 2, VGRU_CB_STATUS), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 2, VGRU_CB_ERROR_CODE), ==,
                    VGRU_ERR_FAULT | 14 << 16);
    vgru_stop(&v);
}

/*
 * NO_BLOCK: an operand miss ends the command at once with ERR_PAGE_FAULT
 * (detail: the access), the bytes done before it and the missing address,
 * in MMIO and in the record; no fault record, no message, FQ_TAIL stays.
 */
static void test_no_block(void)
{
    const uint64_t src = 0, dst = 16 * PAGE + 0x100, len = 2 * PAGE;
    Desc d = {
        .op = VGRU_OP_COPY, .flags = VGRU_DF_NO_BLOCK | VGRU_DF_COMPLETION,
        .src = VA_BASE + src, .dst = VA_BASE + dst, .len = len,
        .comp = VA_BASE + COMP_OFF,
    };
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    map_pages(&v, 0, src, len);
    map_pages(&v, 0, dst, 1);
    map_pages(&v, 0, COMP_OFF, PAGE);
    fill_pattern(&v, src, len, 23);
    qtest_writel(v.qts, MSI_PA, 0);

    /* the destination's second page misses: a write */
    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==,
                    VGRU_ERR_PAGE_FAULT | VGRU_FAULT_WRITE << 16);
    g_assert_cmpuint(cb_rd64(&v, 0, 0, VGRU_CB_PROGRESS), ==, PAGE - 0x100);
    g_assert_cmphex(cb_rd64(&v, 0, 0, VGRU_CB_FAULT_ADDR), ==,
                    VA_BASE + 17 * PAGE);
    assert_comp(&v, COMP_OFF, VGRU_CB_ERROR,
                VGRU_ERR_PAGE_FAULT | VGRU_FAULT_WRITE << 16, PAGE - 0x100,
                VA_BASE + 17 * PAGE, 0);
    assert_same(&v, src, dst, PAGE - 0x100);
    g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_MISSES), ==, 1);

    /* a read-only destination page: WRITE | PERM */
    dropin(&v, 0, VA_BASE + 17 * PAGE, DATA_PA + 17 * PAGE, 0);
    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==,
                    VGRU_ERR_PAGE_FAULT |
                    (VGRU_FAULT_WRITE | VGRU_FAULT_PERM) << 16);

    /* a source miss (a read) after resubmitting the rest */
    map_pages(&v, 0, dst, len);
    d.src = VA_BASE + 40 * PAGE - 8;
    d.dst = VA_BASE + dst;
    d.len = 64;
    map_pages(&v, 0, 39 * PAGE, 1);
    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==,
                    VGRU_ERR_PAGE_FAULT);
    g_assert_cmpuint(cb_rd64(&v, 0, 0, VGRU_CB_PROGRESS), ==, 8);
    g_assert_cmphex(cb_rd64(&v, 0, 0, VGRU_CB_FAULT_ADDR), ==,
                    VA_BASE + 40 * PAGE);
    assert_quiet(&v);
    vgru_stop(&v);
}

/*
 * Notices: FLAGS.INTERRUPT gives exactly one NOTICE record and one MSI-X
 * message; ARM of a running CB posts one when it ends (two ARMs, one
 * notice), ARM of an ended CB posts one at once, ARM of an IDLE CB
 * nothing; notices of a CB waiting to be written merge.
 */
static void test_notices(void)
{
    Fault f;
    Vgru v;

    vgru_start_ctx(&v, "", 2, 0x77);
    qtest_writel(v.qts, MSI_PA, 0);

    cmd_start(&v, 2, 5, &(Desc) {
        .op = VGRU_OP_NOP, .flags = VGRU_DF_INTERRUPT });
    notice_pop(&v, 2, 0x77, 5);
    assert_quiet(&v);

    doorbell(&v, 2, 6, VGRU_CB_ARM);            /* IDLE: nothing */
    assert_quiet(&v);
    doorbell(&v, 2, 5, VGRU_CB_ARM);            /* ended: at once */
    notice_pop(&v, 2, 0x77, 5);
    assert_quiet(&v);

    /* a running CB (waiting for its fault) armed twice: one notice */
    fill_pattern(&v, 0, 64, 24);
    copy_start(&v, 2, 1, VA_BASE, VA_BASE + PAGE, 64);
    map_pages(&v, 2, PAGE, PAGE);
    g_assert_cmpuint(cb_wait(&v, 2, 1), ==, VGRU_CB_FAULT);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);
    qtest_writel(v.qts, MSI_PA, 0);
    g_assert_true(fault_pop(&v, &f));
    doorbell(&v, 2, 1, VGRU_CB_ARM);
    doorbell(&v, 2, 1, VGRU_CB_ARM);
    assert_quiet(&v);
    g_assert_cmpuint(cb_rd(&v, 2, 1, VGRU_CB_STATUS), ==, VGRU_CB_FAULT);
    dropin(&v, 2, VA_BASE, DATA_PA, VGRU_TLB_WRITE);
    respond(&v, &f, VGRU_RESP_RESTART, 0);
    notice_pop(&v, 2, 0x77, 1);
    g_assert_cmpuint(cb_rd(&v, 2, 1, VGRU_CB_STATUS), ==, VGRU_CB_DONE);
    assert_quiet(&v);
    assert_same(&v, 0, PAGE, 64);

    /* an ARM is used up by the command it waited for */
    copy_start(&v, 2, 1, VA_BASE, VA_BASE + PAGE, 64);
    g_assert_cmpuint(cb_wait(&v, 2, 1), ==, VGRU_CB_DONE);
    assert_quiet(&v);

    /* notices of one CB not yet written merge into one */
    wr(&v, VGRU_REG_CTRL, 0);
    cmd_start(&v, 2, 5, &(Desc) {
        .op = VGRU_OP_NOP, .flags = VGRU_DF_INTERRUPT });
    cmd_start(&v, 2, 5, &(Desc) {
        .op = VGRU_OP_NOP, .flags = VGRU_DF_INTERRUPT });
    doorbell(&v, 2, 5, VGRU_CB_ARM);
    doorbell(&v, 2, 4, VGRU_CB_ARM);
    v.fq_head = 0;
    vgru_enable(&v, FQ_RECORDS);
    notice_pop(&v, 2, 0x77, 5);
    assert_quiet(&v);
    vgru_stop(&v);
}

/*
 * Events waiting for queue room are posted in the order they were
 * raised, not in CB order: a notice, then the faults of three CBs of one
 * context started while the VM is stopped (2, 0, 1 in the run queue);
 * the queue has room for one.
 */
static void test_fault_order(void)
{
    const uint32_t order[3] = { 2, 0, 1 };
    Fault f;
    Vgru v;

    vgru_start(&v, "");
    vgru_enable(&v, 1);
    ctx_cmd(&v, 0, 1, VGRU_CTX_CMD_ENABLE);
    vm_stop(&v);
    for (int i = 0; i < 3; i++) {
        copy_start(&v, 0, order[i], VA_BASE + order[i] * PAGE,
                   VA_BASE + (8 + order[i]) * PAGE, 8);
    }
    /* a notice raised before them (NOP ends at START) goes first */
    cmd_start(&v, 0, 3, &(Desc) {
        .op = VGRU_OP_NOP, .flags = VGRU_DF_INTERRUPT });
    g_usleep(50 * 1000);
    g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, 0);
    vm_cont(&v);
    notice_pop(&v, 0, 1, 3);
    for (int i = 0; i < 3; i++) {
        tail_wait(&v, v.fq_head + 1);
        g_usleep(50 * 1000);
        g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, v.fq_head + 1);
        g_assert_true(fault_pop(&v, &f));
        g_assert_cmpuint(f.type, ==, VGRU_FR_FAULT);
        g_assert_cmpuint(f.cb, ==, order[i]);
    }
    vgru_stop(&v);
}

/* Byte @i of a FILL with @pattern. */
static uint8_t fill_byte(uint64_t pattern, uint64_t i)
{
    return pattern >> (i % 8 * 8);
}

/*
 * The data pages [off, off + len) hold a FILL with @pattern, and the 16
 * bytes either side are still @guard.
 */
static void assert_fill(Vgru *v, uint64_t off, uint64_t len, uint64_t pattern,
                        uint8_t guard)
{
    g_autofree uint8_t *x = g_malloc(len + 32);
    g_autofree uint8_t *y = g_malloc(len + 32);

    qtest_memread(v->qts, DATA_PA + off - 16, x, len + 32);
    memset(y, guard, len + 32);
    for (uint64_t i = 0; i < len; i++) {
        y[16 + i] = fill_byte(pattern, i);
    }
    g_assert_cmpmem(x, len + 32, y, len + 32);
}

/*
 * FILL byte for byte at odd offsets and lengths, across page boundaries
 * and across the 64 KiB chunks of a batch; each destination page faults
 * once (a write), no source is translated.
 */
static void test_fill(void)
{
    static const struct {
        uint64_t off, len;
    } cases[] = {
        { 2 * PAGE, 1 },
        { 3 * PAGE - 3, 29 },
        { 5 * PAGE + 7, 8 },
        { 8 * PAGE - 1, PAGE + 2 },
        { 12 * PAGE + 5, 3 * PAGE + 13 },
        { 20 * PAGE + 1, 63 },
        { 40 * PAGE + 3, 70 * 1024 + 5 },
    };
    const uint64_t pattern = 0x0123456789abcdefULL;
    uint64_t bytes = 0;
    Fault f;
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        uint64_t off = cases[i].off, len = cases[i].len;
        Desc d = {
            .op = VGRU_OP_FILL, .src = pattern + i,
            .dst = VA_BASE + off, .len = len,
        };
        unsigned faults = v.faults;

        qtest_memset(v.qts, DATA_PA + off - 16, 0x5a, len + 32);
        invalidate(&v, VGRU_INV_CMD_ALL, 0, 0, 0);
        cmd_start(&v, 0, 3, &d);
        g_assert_cmpuint(vgru_drive(&v, 0, 1, 3), ==, VGRU_CB_DONE);
        g_assert_cmpuint(v.faults - faults, ==, pages_spanned(off, len));
        g_assert_cmpuint(cb_rd64(&v, 0, 3, VGRU_CB_PROGRESS), ==, len);
        assert_fill(&v, off, len, pattern + i, 0x5a);
        bytes += len;
    }
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_BYTES), ==, bytes);

    /* warm, with a record; a read-only page is a permission fault */
    cmd_start(&v, 0, 3, &(Desc) {
        .op = VGRU_OP_FILL, .flags = VGRU_DF_COMPLETION, .src = 0xa5,
        .dst = VA_BASE + 3 * PAGE - 3, .len = 29,
        .comp = VA_BASE + COMP_OFF });
    g_assert_cmpuint(vgru_drive(&v, 0, 1, 3), ==, VGRU_CB_DONE);
    assert_fill(&v, 3 * PAGE - 3, 29, 0xa5, 0x5a);
    assert_comp(&v, COMP_OFF, VGRU_CB_DONE, 0, 29, VA_BASE + COMP_OFF, 0);
    /* writable until invalidated: a read-only drop-in never downgrades */
    invalidate(&v, VGRU_INV_CMD_RANGE, 0, VA_BASE + 50 * PAGE, PAGE);
    dropin(&v, 0, VA_BASE + 50 * PAGE, DATA_PA + 50 * PAGE, 0);
    cmd_start(&v, 0, 3, &(Desc) {
        .op = VGRU_OP_FILL, .dst = VA_BASE + 50 * PAGE, .len = 8 });
    g_assert_cmpuint(cb_wait(&v, 0, 3), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmphex(f.flags, ==, VGRU_FAULT_WRITE | VGRU_FAULT_PERM);
    respond(&v, &f, VGRU_RESP_FAIL, 13);
    g_assert_cmpuint(cb_rd(&v, 0, 3, VGRU_CB_STATUS), ==, VGRU_CB_ERROR);

    /* empty, and wrapping */
    cmd_start(&v, 0, 3, &(Desc) { .op = VGRU_OP_FILL, .dst = 1 });
    g_assert_cmpuint(cb_rd(&v, 0, 3, VGRU_CB_STATUS), ==, VGRU_CB_DONE);
    cmd_start(&v, 0, 3, &(Desc) {
        .op = VGRU_OP_FILL, .dst = -(uint64_t)8, .len = 9 });
    g_assert_cmpuint(cb_rd(&v, 0, 3, VGRU_CB_STATUS), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 3, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_RANGE);
    vgru_stop(&v);
}

/* Run the atomic @op on the word at data offset @off; returns RESULT. */
static uint64_t atomic_run(Vgru *v, uint32_t op, uint64_t off, uint64_t src,
                           uint64_t arg)
{
    Desc d = {
        .op = op, .flags = VGRU_DF_COMPLETION, .src = src,
        .dst = VA_BASE + off, .arg = arg, .len = 12345,
        .comp = VA_BASE + COMP_OFF,
    };
    uint64_t result;

    qtest_memset(v->qts, DATA_PA + COMP_OFF, 0xff, VGRU_COMP_SIZE);
    cmd_start(v, 0, 1, &d);
    g_assert_cmpuint(vgru_drive(v, 0, 1, 1), ==, VGRU_CB_DONE);
    result = cb_rd64(v, 0, 1, VGRU_CB_RESULT);
    assert_comp(v, COMP_OFF, VGRU_CB_DONE, 0, 0,
                cb_rd64(v, 0, 1, VGRU_CB_FAULT_ADDR), result);
    return result;
}

/*
 * FETCH_ADD, SWAP and CAS (matching and not) on a user word: the old
 * value in RESULT and in the record, the word updated (or not), the
 * bytes around it untouched; unaligned words are ERR_ALIGN, a read-only
 * page is a write permission fault, a word that is not RAM ERR_DMA.
 */
static void test_atomics(void)
{
    const uint64_t w = 5 * PAGE + 8;
    const uint64_t big = 0xdeadbeefcafef00dULL;
    Fault f;
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    map_pages(&v, 0, COMP_OFF, PAGE);
    qtest_memset(v.qts, DATA_PA + w - 8, 0x5a, 24);
    qtest_writeq(v.qts, DATA_PA + w, 100);

    /* the first one faults on the word's page, a write */
    g_assert_cmpuint(atomic_run(&v, VGRU_OP_FETCH_ADD, w, 5, 0), ==, 100);
    g_assert_cmpuint(v.faults, ==, 1);
    g_assert_cmpuint(qtest_readq(v.qts, DATA_PA + w), ==, 105);
    g_assert_cmphex(atomic_run(&v, VGRU_OP_SWAP, w, big, 0), ==, 105);
    g_assert_cmphex(qtest_readq(v.qts, DATA_PA + w), ==, big);
    g_assert_cmphex(atomic_run(&v, VGRU_OP_CAS, w, 7, big), ==, big);
    g_assert_cmpuint(qtest_readq(v.qts, DATA_PA + w), ==, 7);
    g_assert_cmpuint(atomic_run(&v, VGRU_OP_CAS, w, 9, 8), ==, 7);
    g_assert_cmpuint(qtest_readq(v.qts, DATA_PA + w), ==, 7);
    g_assert_cmpuint(atomic_run(&v, VGRU_OP_FETCH_ADD, w, -(uint64_t)8, 0),
                     ==, 7);
    g_assert_cmphex(qtest_readq(v.qts, DATA_PA + w), ==, UINT64_MAX);
    assert_filled(&v, w - 8, 8, 0x5a);
    assert_filled(&v, w + 8, 8, 0x5a);
    g_assert_cmpuint(v.faults, ==, 1);

    /* unaligned: refused before anything is touched */
    for (int i = 1; i < 8; i++) {
        cmd_start(&v, 0, 1, &(Desc) {
            .op = VGRU_OP_SWAP, .dst = VA_BASE + w + i, .src = 1 });
        g_assert_cmpuint(cb_rd(&v, 0, 1, VGRU_CB_STATUS), ==, VGRU_CB_ERROR);
        g_assert_cmphex(cb_rd(&v, 0, 1, VGRU_CB_ERROR_CODE), ==,
                        VGRU_ERR_ALIGN);
    }
    g_assert_cmphex(qtest_readq(v.qts, DATA_PA + w), ==, UINT64_MAX);

    /* even a CAS that does not match needs write permission */
    dropin(&v, 0, VA_BASE + 6 * PAGE, DATA_PA + 6 * PAGE, 0);
    cmd_start(&v, 0, 1, &(Desc) {
        .op = VGRU_OP_CAS, .dst = VA_BASE + 6 * PAGE, .arg = 1, .src = 2 });
    g_assert_cmpuint(cb_wait(&v, 0, 1), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmphex(f.va, ==, VA_BASE + 6 * PAGE);
    g_assert_cmphex(f.flags, ==, VGRU_FAULT_WRITE | VGRU_FAULT_PERM);
    respond(&v, &f, VGRU_RESP_FAIL, 13);

    /* not RAM */
    dropin(&v, 0, VA_BASE + 7 * PAGE, 0xfffff000ULL, VGRU_TLB_WRITE);
    cmd_start(&v, 0, 1, &(Desc) {
        .op = VGRU_OP_FETCH_ADD, .dst = VA_BASE + 7 * PAGE, .src = 1 });
    g_assert_cmpuint(cb_wait(&v, 0, 1), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 1, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_DMA);
    vgru_stop(&v);
}

/* COPY ranges that overlap, either way round, are ERR_RANGE. */
static void test_copy_overlap(void)
{
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    map_pages(&v, 0, 0, 4 * PAGE);
    fill_pattern(&v, 0, 4 * PAGE, 25);
    qtest_memset(v.qts, DATA_PA + 2 * PAGE, 0x33, 2 * PAGE);

    copy_start(&v, 0, 0, VA_BASE + PAGE, VA_BASE + PAGE + 199, 200);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_RANGE);
    copy_start(&v, 0, 0, VA_BASE + PAGE, VA_BASE + PAGE - 199, 200);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_RANGE);
    copy_start(&v, 0, 0, VA_BASE + PAGE, VA_BASE + PAGE, 1);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_RANGE);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_BYTES), ==, 0);

    /* adjacent ranges do not overlap */
    copy_start(&v, 0, 0, VA_BASE + 2 * PAGE - 200, VA_BASE + 2 * PAGE, 200);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_same(&v, 2 * PAGE - 200, 2 * PAGE, 200);
    copy_start(&v, 0, 0, VA_BASE + 3 * PAGE, VA_BASE + 3 * PAGE - 300, 300);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_filled(&v, 3 * PAGE - 300, 300, 0x33);
    vgru_stop(&v);
}

/*
 * The invalidation handshake holds for FILL as for COPY (see
 * test_inv_in_flight): after INV_DONE not one byte reaches the old pages.
 */
static void test_fill_inv_in_flight(void)
{
    const uint64_t len = 32 * PAGE, dst = 64 * PAGE;
    const uint64_t moved = 96;          /* pages the remap adds */
    const uint64_t done = 16 * PAGE;    /* the chunk in flight */
    const uint64_t pattern = 0x1122334455667788ULL;
    g_autofree uint8_t *x = g_malloc(len - done);
    Vgru v;

    vgru_start_ctx(&v, ",x-dma-delay-us=300000", 0, 1);
    map_pages(&v, 0, dst, len);

    cmd_start(&v, 0, 0, &(Desc) {
        .op = VGRU_OP_FILL, .src = pattern, .dst = VA_BASE + dst + 3,
        .len = len - 3 });
    stat_wait(&v, VGRU_STAT_TLB_HITS, len / PAGE);
    invalidate(&v, VGRU_INV_CMD_RANGE, 0, VA_BASE + dst, len);
    qtest_memset(v.qts, DATA_PA + dst, 0xee, len);
    v.remap = moved;
    for (uint64_t p = 0; p < len; p += PAGE) {
        dropin(&v, 0, VA_BASE + dst + p, DATA_PA + dst + moved * PAGE + p,
               VGRU_TLB_WRITE);
    }

    g_assert_cmpuint(vgru_drive(&v, 0, 1, 0), ==, VGRU_CB_DONE);
    assert_filled(&v, dst, len, 0xee);
    /* the chunk in flight went to the old pages, the rest to the new */
    assert_filled(&v, dst + moved * PAGE, done + 3, 0);
    qtest_memread(v.qts, DATA_PA + dst + moved * PAGE + done + 3, x,
                  len - done - 3);
    for (uint64_t i = 0; i < len - done - 3; i++) {
        g_assert_cmphex(x[i], ==, fill_byte(pattern, done + i));
    }
    vgru_stop(&v);
}

/* Write descriptor @d at data offset @off (a BATCH list entry). */
static void desc_write(Vgru *v, uint64_t off, const Desc *d)
{
    uint64_t pa = DATA_PA + off;

    qtest_writel(v->qts, pa + VGRU_DESC_OPCODE, d->op);
    qtest_writel(v->qts, pa + VGRU_DESC_FLAGS, d->flags);
    qtest_writeq(v->qts, pa + VGRU_DESC_SRC, d->src);
    qtest_writeq(v->qts, pa + VGRU_DESC_DST, d->dst);
    qtest_writeq(v->qts, pa + VGRU_DESC_LEN, d->len);
    qtest_writeq(v->qts, pa + VGRU_DESC_ARG, d->arg);
    qtest_writeq(v->qts, pa + VGRU_DESC_COMP, d->comp);
    /* reserved bytes are ignored */
    qtest_memset(v->qts, pa + 0x30, 0xff, VGRU_DESC_SIZE - 0x30);
}

#define LIST_OFF    (700 * PAGE)

/*
 * A BATCH of mixed commands runs in order: each entry writes its own
 * record and posts its own notice, the batch's record comes last with
 * PROGRESS = entries; then a failing middle entry ends the batch (its
 * error, PROGRESS = its index, later entries untouched); a nested BATCH
 * is ERR_OPCODE for that entry; LEN above VGRU_BATCH_MAX is ERR_RANGE,
 * LEN 0 is done at once, a misaligned list ERR_ALIGN.
 */
static void test_batch(void)
{
    const uint64_t w = 30 * PAGE, pattern = 0x0807060504030201ULL;
    const Desc list[] = {
        { .op = VGRU_OP_COPY, .flags = VGRU_DF_COMPLETION,
          .src = VA_BASE + 0x10, .dst = VA_BASE + 8 * PAGE + 3,
          .len = PAGE + 5, .comp = VA_BASE + COMP_OFF },
        { .op = VGRU_OP_FILL,
          .flags = VGRU_DF_COMPLETION | VGRU_DF_INTERRUPT,
          .src = pattern, .dst = VA_BASE + 16 * PAGE + 1, .len = 77,
          .comp = VA_BASE + COMP_OFF + 32 },
        { .op = VGRU_OP_FETCH_ADD, .flags = VGRU_DF_COMPLETION,
          .dst = VA_BASE + w, .src = 2, .comp = VA_BASE + COMP_OFF + 64 },
        { .op = VGRU_OP_NOP },
        { .op = VGRU_OP_CAS, .flags = VGRU_DF_COMPLETION,
          .dst = VA_BASE + w, .arg = 42, .src = 1000,
          .comp = VA_BASE + COMP_OFF + 96 },
        { .op = VGRU_OP_FENCE },
    };
    Desc b = {
        .op = VGRU_OP_BATCH, .flags = VGRU_DF_COMPLETION,
        .src = VA_BASE + LIST_OFF, .len = ARRAY_SIZE(list),
        .comp = VA_BASE + COMP_OFF + 192,
    };
    Vgru v;

    vgru_start_ctx(&v, "", 0, 3);
    map_pages(&v, 0, 0, 64 * PAGE);
    map_pages(&v, 0, LIST_OFF, PAGE);
    map_pages(&v, 0, COMP_OFF, PAGE);
    qtest_memset(v.qts, DATA_PA + COMP_OFF, 0xff, PAGE);
    fill_pattern(&v, 0, 2 * PAGE, 26);
    qtest_memset(v.qts, DATA_PA + 16 * PAGE - 15, 0x5a, 77 + 32);
    qtest_writeq(v.qts, DATA_PA + w, 40);
    qtest_writel(v.qts, MSI_PA, 0);
    for (size_t i = 0; i < ARRAY_SIZE(list); i++) {
        desc_write(&v, LIST_OFF + i * VGRU_DESC_SIZE, &list[i]);
    }

    cmd_start(&v, 0, 7, &b);
    g_assert_cmpuint(cb_wait(&v, 0, 7), ==, VGRU_CB_DONE);
    g_assert_cmpuint(cb_rd64(&v, 0, 7, VGRU_CB_PROGRESS), ==, 6);
    assert_same(&v, 0x10, 8 * PAGE + 3, PAGE + 5);
    assert_fill(&v, 16 * PAGE + 1, 77, pattern, 0x5a);
    g_assert_cmpuint(qtest_readq(v.qts, DATA_PA + w), ==, 1000);
    assert_comp(&v, COMP_OFF, VGRU_CB_DONE, 0, PAGE + 5, 0, 0);
    assert_comp(&v, COMP_OFF + 32, VGRU_CB_DONE, 0, 77, 0, 0);
    assert_comp(&v, COMP_OFF + 64, VGRU_CB_DONE, 0, 0, 0, 40);
    assert_comp(&v, COMP_OFF + 96, VGRU_CB_DONE, 0, 0, 0, 42);
    assert_filled(&v, COMP_OFF + 128, 64, 0xff);
    assert_comp(&v, COMP_OFF + 192, VGRU_CB_DONE, 0, 6, 0, 0);
    notice_pop(&v, 0, 3, 7);
    assert_quiet(&v);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_COMMANDS), ==, 1);

    /* a failing middle entry */
    qtest_memset(v.qts, DATA_PA + COMP_OFF, 0xff, PAGE);
    qtest_memset(v.qts, DATA_PA + 40 * PAGE, 0x5a, PAGE);
    desc_write(&v, LIST_OFF, &(Desc) {
        .op = VGRU_OP_FILL, .flags = VGRU_DF_COMPLETION, .src = 1,
        .dst = VA_BASE + 40 * PAGE, .len = 16,
        .comp = VA_BASE + COMP_OFF });
    desc_write(&v, LIST_OFF + 64, &(Desc) {
        .op = VGRU_OP_FETCH_ADD, .flags = VGRU_DF_COMPLETION,
        .dst = VA_BASE + w + 4, .src = 1, .comp = VA_BASE + COMP_OFF + 32 });
    desc_write(&v, LIST_OFF + 128, &(Desc) {
        .op = VGRU_OP_FILL, .flags = VGRU_DF_COMPLETION, .src = 2,
        .dst = VA_BASE + 40 * PAGE + 64, .len = 16,
        .comp = VA_BASE + COMP_OFF + 64 });
    b.len = 3;
    cmd_start(&v, 0, 7, &b);
    g_assert_cmpuint(cb_wait(&v, 0, 7), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 7, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_ALIGN);
    g_assert_cmpuint(cb_rd64(&v, 0, 7, VGRU_CB_PROGRESS), ==, 1);
    assert_comp(&v, COMP_OFF, VGRU_CB_DONE, 0, 16, 0, 0);
    assert_comp(&v, COMP_OFF + 32, VGRU_CB_ERROR, VGRU_ERR_ALIGN, 0, 0, 0);
    assert_filled(&v, COMP_OFF + 64, 32, 0xff);
    assert_filled(&v, 40 * PAGE + 16, PAGE - 16, 0x5a);
    assert_comp(&v, COMP_OFF + 192, VGRU_CB_ERROR, VGRU_ERR_ALIGN, 1, 0, 0);
    g_assert_cmpuint(qtest_readq(v.qts, DATA_PA + w), ==, 1000);

    /* a nested BATCH is an error of that entry */
    desc_write(&v, LIST_OFF + 64, &b);
    cmd_start(&v, 0, 7, &b);
    g_assert_cmpuint(cb_wait(&v, 0, 7), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 7, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_OPCODE);
    g_assert_cmpuint(cb_rd64(&v, 0, 7, VGRU_CB_PROGRESS), ==, 1);

    /* lengths and alignment, checked at START */
    b.flags = 0;
    b.len = VGRU_BATCH_MAX + 1;
    cmd_start(&v, 0, 7, &b);
    g_assert_cmpuint(cb_rd(&v, 0, 7, VGRU_CB_STATUS), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 7, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_RANGE);
    b.len = 0;
    cmd_start(&v, 0, 7, &b);
    g_assert_cmpuint(cb_rd(&v, 0, 7, VGRU_CB_STATUS), ==, VGRU_CB_DONE);
    b.len = 1;
    b.src += 32;
    cmd_start(&v, 0, 7, &b);
    g_assert_cmpuint(cb_rd(&v, 0, 7, VGRU_CB_STATUS), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 7, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_ALIGN);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_ERRORS), ==, 4);
    vgru_stop(&v);
}

/*
 * A BATCH's list is read through the TLB like a source operand: its page
 * faults (a read) and the batch goes on after RESTART.  With the batch's
 * NO_BLOCK a miss of the list or of an entry ends the batch instead (the
 * entries' own NO_BLOCK bits do not count).
 */
static void test_batch_fault(void)
{
    Desc b = {
        .op = VGRU_OP_BATCH, .src = VA_BASE + LIST_OFF, .len = 2,
    };
    Fault f;
    Vgru v;

    vgru_start_ctx(&v, "", 1, 2);
    fill_pattern(&v, 0, 100, 27);
    qtest_memset(v.qts, DATA_PA + 3 * PAGE - 16, 0x5a, 50 + 32);
    desc_write(&v, LIST_OFF, &(Desc) {
        .op = VGRU_OP_COPY, .flags = VGRU_DF_NO_BLOCK, .src = VA_BASE,
        .dst = VA_BASE + PAGE, .len = 100 });
    desc_write(&v, LIST_OFF + 64, &(Desc) {
        .op = VGRU_OP_FILL, .src = 0x77, .dst = VA_BASE + 3 * PAGE,
        .len = 50 });

    cmd_start(&v, 1, 0, &b);
    g_assert_cmpuint(cb_wait(&v, 1, 0), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmphex(f.va, ==, VA_BASE + LIST_OFF);
    g_assert_cmphex(f.flags, ==, 0);
    dropin(&v, 1, VA_BASE + LIST_OFF, DATA_PA + LIST_OFF, 0);
    respond(&v, &f, VGRU_RESP_RESTART, 0);
    g_assert_cmpuint(vgru_drive(&v, 1, 2, 0), ==, VGRU_CB_DONE);
    g_assert_cmpuint(v.faults, ==, 3);
    g_assert_cmpuint(cb_rd64(&v, 1, 0, VGRU_CB_PROGRESS), ==, 2);
    assert_same(&v, 0, PAGE, 100);
    assert_fill(&v, 3 * PAGE, 50, 0x77, 0x5a);

    /* NO_BLOCK: the list misses */
    invalidate(&v, VGRU_INV_CMD_CONTEXT, 1, 0, 0);
    b.flags = VGRU_DF_NO_BLOCK;
    cmd_start(&v, 1, 0, &b);
    g_assert_cmpuint(cb_wait(&v, 1, 0), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 1, 0, VGRU_CB_ERROR_CODE), ==,
                    VGRU_ERR_PAGE_FAULT);
    g_assert_cmpuint(cb_rd64(&v, 1, 0, VGRU_CB_PROGRESS), ==, 0);
    g_assert_cmphex(cb_rd64(&v, 1, 0, VGRU_CB_FAULT_ADDR), ==,
                    VA_BASE + LIST_OFF);

    /* NO_BLOCK: the second entry misses (a write) */
    map_pages(&v, 1, 0, 2 * PAGE);
    map_pages(&v, 1, LIST_OFF, PAGE);
    cmd_start(&v, 1, 0, &b);
    g_assert_cmpuint(cb_wait(&v, 1, 0), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 1, 0, VGRU_CB_ERROR_CODE), ==,
                    VGRU_ERR_PAGE_FAULT | VGRU_FAULT_WRITE << 16);
    g_assert_cmpuint(cb_rd64(&v, 1, 0, VGRU_CB_PROGRESS), ==, 1);
    g_assert_cmphex(cb_rd64(&v, 1, 0, VGRU_CB_FAULT_ADDR), ==,
                    VA_BASE + 3 * PAGE);
    assert_quiet(&v);
    vgru_stop(&v);
}

/*
 * FENCE ends only after every command its context started before it:
 * started behind a long copy on another CB, it ends after that copy (the
 * copy takes two turns, so the FENCE gets a turn while it runs); a FENCE
 * of another context does not wait for it.
 */
static void test_fence(void)
{
    const uint64_t len = 128 * PAGE, src = 0, dst = 128 * PAGE;
    Desc fence = {
        .op = VGRU_OP_FENCE, .flags = VGRU_DF_COMPLETION,
        .comp = VA_BASE + COMP_OFF,
    };
    Vgru v;

    vgru_start_ctx(&v, ",tlb-sets=256,x-dma-delay-us=100000", 0, 1);
    ctx_cmd(&v, 1, 2, VGRU_CTX_CMD_ENABLE);
    map_pages(&v, 0, src, len);
    map_pages(&v, 0, dst, len);
    map_pages(&v, 0, COMP_OFF, PAGE);
    fill_pattern(&v, src, len, 28);

    /* nothing older: at once */
    cmd_start(&v, 0, 1, &fence);
    g_assert_cmpuint(cb_wait(&v, 0, 1), ==, VGRU_CB_DONE);
    assert_comp(&v, COMP_OFF, VGRU_CB_DONE, 0, 0, 0, 0);

    qtest_memset(v.qts, DATA_PA + COMP_OFF, 0, VGRU_COMP_SIZE);
    copy_start(&v, 0, 0, VA_BASE + src, VA_BASE + dst, len);
    cmd_start(&v, 0, 1, &fence);
    cmd_start(&v, 1, 0, &(Desc) { .op = VGRU_OP_FENCE });
    g_assert_cmpuint(cb_wait(&v, 1, 0), ==, VGRU_CB_DONE);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_ACTIVE);
    g_assert_cmpuint(cb_rd(&v, 0, 1, VGRU_CB_STATUS), ==, VGRU_CB_ACTIVE);
    g_assert_cmpuint(comp_read(&v, COMP_OFF).status, ==, 0);
    g_assert_cmpuint(cb_wait(&v, 0, 1), ==, VGRU_CB_DONE);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_DONE);
    assert_same(&v, src, dst, len);
    assert_comp(&v, COMP_OFF, VGRU_CB_DONE, 0, 0, 0, 0);
    vgru_stop(&v);
}

/*
 * A VM stop that comes while a BATCH entry moves data stops the batch
 * there: neither that entry's record nor the next entry is done until
 * 'cont'.
 */
static void test_vm_stop_batch(void)
{
    const uint64_t len = 16 * PAGE;     /* one chunk per entry */
    Vgru v;

    vgru_start_ctx(&v, ",x-dma-delay-us=600000", 0, 1);
    map_pages(&v, 0, 0, 4 * len);
    map_pages(&v, 0, LIST_OFF, PAGE);
    map_pages(&v, 0, COMP_OFF, PAGE);
    fill_pattern(&v, 0, 2 * len, 29);
    qtest_memset(v.qts, DATA_PA + COMP_OFF, 0, PAGE);
    for (int i = 0; i < 2; i++) {
        desc_write(&v, LIST_OFF + i * VGRU_DESC_SIZE, &(Desc) {
            .op = VGRU_OP_COPY, .flags = VGRU_DF_COMPLETION,
            .src = VA_BASE + i * len, .dst = VA_BASE + (2 + i) * len,
            .len = len, .comp = VA_BASE + COMP_OFF + i * VGRU_COMP_SIZE });
    }
    cmd_start(&v, 0, 0, &(Desc) {
        .op = VGRU_OP_BATCH, .src = VA_BASE + LIST_OFF, .len = 2 });
    /* the first entry is in flight once its pages are translated */
    stat_wait(&v, VGRU_STAT_TLB_HITS, 1 + 2 * len / PAGE);
    vm_stop(&v);
    g_usleep(500 * 1000);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_BYTES), ==, len);
    g_assert_cmpuint(comp_read(&v, COMP_OFF).status, ==, 0);
    assert_filled(&v, 3 * len, len, 0);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_ACTIVE);

    vm_cont(&v);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_same(&v, 0, 2 * len, 2 * len);
    assert_comp(&v, COMP_OFF, VGRU_CB_DONE, 0, len, 0, 0);
    assert_comp(&v, COMP_OFF + VGRU_COMP_SIZE, VGRU_CB_DONE, 0, len, 0, 0);
    vgru_stop(&v);
}

/* ---- PCI Express ---- */

/*
 * q35 with a hotplug-capable root port at 02.0; its slot is bus 1.  Native
 * PCIe hotplug: q35's default, ACPI hotplug, would need ACPI to eject.
 */
#define RP_DEVFN        QPCI_DEVFN(2, 0)
#define SLOT_DEVFN      QPCI_DEVFN(1 << 5, 0)
#define Q35_RP          "-machine q35 -nodefaults -m 64M " \
                        "-global ICH9-LPC.acpi-pci-hotplug-with-" \
                        "bridge-support=off " \
                        "-device pcie-root-port,id=rp0,bus=pcie.0,addr=02.0," \
                        "chassis=1,slot=1 "

/* The port type in @dev's PCI Express capability. */
static unsigned pcie_type(QPCIDevice *dev)
{
    uint8_t exp = qpci_find_capability(dev, PCI_CAP_ID_EXP, 0);

    g_assert_cmpuint(exp, !=, 0);
    return (qpci_config_readw(dev, exp + PCI_EXP_FLAGS) &
            PCI_EXP_FLAGS_TYPE) >> 4;
}

/* Number the buses and open the root port's memory window to the BARs. */
static QPCIDevice *root_port_setup(Vgru *v)
{
    QPCIDevice *rp;

    qpci_secondary_buses_init(v->bus);
    rp = qpci_device_find(v->bus, RP_DEVFN);
    g_assert_nonnull(rp);
    qpci_device_enable(rp);
    /* libqos places BARs from 0xe0000000 up */
    qpci_config_writew(rp, PCI_MEMORY_BASE, 0xe000);
    qpci_config_writew(rp, PCI_MEMORY_LIMIT, 0xeff0);
    qpci_config_writew(rp, PCI_PREF_MEMORY_BASE, 0xfff0);
    qpci_config_writew(rp, PCI_PREF_MEMORY_LIMIT, 0);
    return rp;
}

/* Play the guest's PCIe hotplug driver: power the slot on or off. */
static void slot_power(QPCIDevice *rp, bool on)
{
    uint8_t exp = qpci_find_capability(rp, PCI_CAP_ID_EXP, 0);
    uint16_t ctl = qpci_config_readw(rp, exp + PCI_EXP_SLTCTL);

    ctl &= ~(PCI_EXP_SLTCTL_PIC | PCI_EXP_SLTCTL_PCC);
    ctl |= on ? PCI_EXP_SLTCTL_PWR_IND_ON | PCI_EXP_SLTCTL_PWR_ON
              : PCI_EXP_SLTCTL_PWR_IND_OFF | PCI_EXP_SLTCTL_PWR_OFF;
    qpci_config_writew(rp, exp + PCI_EXP_SLTCTL, ctl);
}

/* A copy with faults on context @ctx comes out exact. */
static void copy_check(Vgru *v, uint32_t ctx, uint64_t src, uint64_t dst,
                       uint64_t len, uint8_t seed)
{
    fill_pattern(v, src, len, seed);
    copy_start(v, ctx, 0, VA_BASE + src, VA_BASE + dst, len);
    g_assert_cmpuint(vgru_drive(v, ctx, ctx + 1, 0), ==, VGRU_CB_DONE);
    assert_same(v, src, dst, len);
}

/*
 * A PCI Express endpoint with a 64-bit window BAR: on a conventional bus
 * (pc), and integrated in q35's root complex; it works on both.
 */
static void test_pcie(void)
{
    uint32_t bar;
    Vgru v;

    vgru_start(&v, "");
    g_assert_cmpuint(qpci_find_capability(v.dev, PCI_CAP_ID_EXP, 0), ==,
                     0x80);
    g_assert_cmpuint(pcie_type(v.dev), ==, PCI_EXP_TYPE_ENDPOINT);
    bar = qpci_config_readl(v.dev, PCI_BASE_ADDRESS_0 + 4 * VGRU_WINDOW_BAR);
    g_assert_cmphex(bar & PCI_BASE_ADDRESS_MEM_TYPE_MASK, ==,
                    PCI_BASE_ADDRESS_MEM_TYPE_64);
    vgru_enable(&v, FQ_RECORDS);
    ctx_cmd(&v, 0, 1, VGRU_CTX_CMD_ENABLE);
    copy_check(&v, 0, 0x10, 8 * PAGE + 0x20, 2 * PAGE, 1);
    vgru_stop(&v);

    memset(&v, 0, sizeof(v));
    v.qts = qtest_init("-machine q35 -nodefaults -m 64M "
                       "-device vgru,bus=pcie.0,addr=04.0");
    v.bus = qpci_new_pc(v.qts, NULL);
    vgru_attach(&v, QPCI_DEVFN(4, 0));
    g_assert_cmpuint(pcie_type(v.dev), ==, PCI_EXP_TYPE_RC_END);
    vgru_enable(&v, FQ_RECORDS);
    ctx_cmd(&v, 2, 3, VGRU_CTX_CMD_ENABLE);
    copy_check(&v, 2, 0x10, 8 * PAGE + 0x20, 2 * PAGE, 2);
    vgru_stop(&v);
}

/*
 * Hot-unplug behind a pcie-root-port, the test playing the guest's
 * hotplug driver, with a copy in flight on one CB and a fault outstanding
 * on another: the device goes (workers joined), nothing is written after,
 * QEMU carries on; a vgru plugged into the slot again works.
 */
static void test_q35_hotplug(void)
{
    const uint64_t len = 32 * PAGE, src = 0, dst = 64 * PAGE;
    QPCIDevice *rp;
    Vgru v;

    memset(&v, 0, sizeof(v));
    v.qts = qtest_init(Q35_RP "-device vgru,id=vgru0,bus=rp0,"
                       "x-dma-delay-us=200000");
    v.bus = qpci_new_pc(v.qts, NULL);
    rp = root_port_setup(&v);
    vgru_attach(&v, SLOT_DEVFN);
    g_assert_cmpuint(pcie_type(v.dev), ==, PCI_EXP_TYPE_ENDPOINT);
    vgru_enable(&v, FQ_RECORDS);
    ctx_cmd(&v, 0, 1, VGRU_CTX_CMD_ENABLE);
    map_pages(&v, 0, src, len);
    map_pages(&v, 0, dst, len);
    fill_pattern(&v, src, len, 4);

    copy_start(&v, 0, 0, VA_BASE + src, VA_BASE + dst, len);
    copy_start(&v, 0, 1, VA_BASE + 200 * PAGE, VA_BASE + 300 * PAGE, PAGE);
    tail_wait(&v, 1);
    g_assert_cmpuint(cb_rd(&v, 0, 1, VGRU_CB_STATUS), ==, VGRU_CB_FAULT);
    stat_wait(&v, VGRU_STAT_TLB_HITS, 2 * len / PAGE);

    qtest_qmp_device_del_send(v.qts, "vgru0");
    slot_power(rp, false);
    qtest_qmp_eventwait(v.qts, "DEVICE_DELETED");
    qtest_memset(v.qts, DATA_PA + dst, 0xcc, len);
    qtest_writel(v.qts, MSI_PA, 0);
    g_usleep(500 * 1000);
    assert_filled(&v, dst, len, 0xcc);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, 0);
    qtest_qmp_assert_success(v.qts, "{ 'execute': 'query-status' }");

    qtest_qmp_device_add(v.qts, "vgru", "vgru1", "{ 'bus': 'rp0' }");
    slot_power(rp, true);
    vgru_attach(&v, SLOT_DEVFN);
    g_assert_cmpuint(rd(&v, VGRU_REG_STATUS), ==, 0);
    vgru_enable(&v, FQ_RECORDS);
    ctx_cmd(&v, 0, 1, VGRU_CTX_CMD_ENABLE);
    copy_check(&v, 0, src, dst, len, 5);
    g_assert_cmpuint(v.faults, ==, 2 * len / PAGE);

    /* and goes too, idle, so that no vgru is left (for leak checkers) */
    qtest_qmp_device_del_send(v.qts, "vgru1");
    slot_power(rp, false);
    qtest_qmp_eventwait(v.qts, "DEVICE_DELETED");
    g_free(rp);
    vgru_stop(&v);
}

/*
 * A read-only drop-in never downgrades a writable entry of the same page
 * with the same bus address (a read fault answered after a write fault of
 * that page); one with another bus address replaces it.
 */
static void test_dropin_no_downgrade(void)
{
    Desc d = {
        .op = VGRU_OP_COPY, .flags = VGRU_DF_NO_BLOCK,
        .src = VA_BASE, .dst = VA_BASE + PAGE, .len = 64,
    };
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    map_pages(&v, 0, 0, 2 * PAGE);
    fill_pattern(&v, 0, 64, 31);
    dropin(&v, 0, VA_BASE + PAGE, DATA_PA + PAGE, 0);
    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_same(&v, 0, PAGE, 64);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_DROPINS), ==, 3);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_MISSES), ==, 0);

    /* another bus address: replaced, read-only */
    dropin(&v, 0, VA_BASE + PAGE, DATA_PA + 2 * PAGE, 0);
    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==,
                    VGRU_ERR_PAGE_FAULT |
                    (VGRU_FAULT_WRITE | VGRU_FAULT_PERM) << 16);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_MISSES), ==, 1);

    /* and an upgrade to writable is taken as always */
    dropin(&v, 0, VA_BASE + PAGE, DATA_PA + 2 * PAGE, VGRU_TLB_WRITE);
    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_same(&v, 0, 2 * PAGE, 64);
    vgru_stop(&v);
}

/* ---- fault injection ---- */

/*
 * x-drop-irq-every=3: every third raise of the interrupt sends nothing and
 * leaves the device disarmed until FQ_HEAD is written.
 */
static void test_inject_drop_irq(void)
{
    Desc nop = { .op = VGRU_OP_NOP, .flags = VGRU_DF_INTERRUPT };
    Vgru v;
    Fault f;

    vgru_start_ctx(&v, ",x-drop-irq-every=3", 0, 1);
    qtest_writel(v.qts, MSI_PA, 0);
    for (uint32_t i = 1; i <= 7; i++) {
        cmd_start(&v, 0, 0, &nop);
        tail_wait(&v, i);
        g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==,
                        i % 3 ? MSI_DATA : 0);
        qtest_writel(v.qts, MSI_PA, 0);
        g_assert_true(fault_pop(&v, &f));
        g_assert_cmpuint(f.type, ==, VGRU_FR_NOTICE);
    }

    /* faults too: the 9th record is one, and comes silently */
    cmd_start(&v, 0, 0, &nop);
    tail_wait(&v, 8);
    g_assert_true(fault_pop(&v, &f));
    qtest_writel(v.qts, MSI_PA, 0);
    copy_start(&v, 0, 1, VA_BASE, VA_BASE + PAGE, 8);
    tail_wait(&v, 9);
    g_assert_cmpuint(cb_wait(&v, 0, 1), ==, VGRU_CB_FAULT);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, 0);
    resolve_fault(&v, 0, 1);
    g_assert_cmpuint(vgru_drive(&v, 0, 1, 1), ==, VGRU_CB_DONE);
    /* raises 3, 6 and 9 were dropped and are not counted */
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 7);

    /* coalesced: record 11 raises (the 11th raise), 12 does not */
    qtest_writel(v.qts, MSI_PA, 0);
    for (uint32_t i = 11; i <= 12; i++) {
        cmd_start(&v, 0, 0, &nop);
        tail_wait(&v, i);
    }
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 8);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);
    qtest_writel(v.qts, MSI_PA, 0);

    /* FQ_HEAD with 12 pending: the 12th raise, dropped; still disarmed */
    wr(&v, VGRU_REG_FQ_HEAD, 11);
    cmd_start(&v, 0, 0, &nop);
    tail_wait(&v, 13);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 8);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, 0);
    /* caught up: armed, nothing raised until the next record */
    wr(&v, VGRU_REG_FQ_HEAD, 13);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 8);
    cmd_start(&v, 0, 0, &nop);
    tail_wait(&v, 14);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 9);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);
    vgru_stop(&v);
}

/*
 * x-fail-dma-every=3: every third data transfer (a COPY or FILL batch, an
 * atomic) ends its command with ERR_DMA before it moves anything.
 */
static void test_inject_fail_dma(void)
{
    Vgru v;

    vgru_start_ctx(&v, ",x-fail-dma-every=3", 0, 1);
    map_pages(&v, 0, 0, 16 * PAGE);
    for (int i = 1; i <= 6; i++) {
        qtest_memset(v.qts, DATA_PA + PAGE, 0, PAGE);
        fill_pattern(&v, 0, PAGE, i);
        copy_start(&v, 0, 0, VA_BASE, VA_BASE + PAGE, PAGE);
        if (i % 3) {
            g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
            assert_same(&v, 0, PAGE, PAGE);
        } else {
            g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_ERROR);
            g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==,
                            VGRU_ERR_DMA);
            g_assert_cmpuint(cb_rd64(&v, 0, 0, VGRU_CB_PROGRESS), ==, 0);
            assert_filled(&v, PAGE, PAGE, 0);
        }
    }
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_ERRORS), ==, 2);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_BYTES), ==, 4 * PAGE);

    /* an atomic is a transfer: 7 and 8 pass, 9 fails */
    qtest_writeq(v.qts, DATA_PA + 2 * PAGE, 5);
    for (int i = 7; i <= 9; i++) {
        cmd_start(&v, 0, 1, &(Desc) {
            .op = VGRU_OP_FETCH_ADD, .dst = VA_BASE + 2 * PAGE, .src = 1 });
        g_assert_cmpuint(cb_wait(&v, 0, 1), ==,
                         i % 3 ? VGRU_CB_DONE : VGRU_CB_ERROR);
    }
    g_assert_cmphex(cb_rd(&v, 0, 1, VGRU_CB_ERROR_CODE), ==, VGRU_ERR_DMA);
    g_assert_cmpuint(qtest_readq(v.qts, DATA_PA + 2 * PAGE), ==, 7);
    vgru_stop(&v);
}

/*
 * x-inv-delay-us=1000: an invalidation's entries go at once, but INV_DONE
 * counts it exactly 1 ms of virtual time later; reset forgets it.
 */
static void test_inject_inv_delay(void)
{
    Desc d = {
        .op = VGRU_OP_COPY, .flags = VGRU_DF_NO_BLOCK,
        .src = VA_BASE, .dst = VA_BASE + PAGE, .len = 8,
    };
    Vgru v;

    vgru_start_ctx(&v, ",x-inv-delay-us=1000", 0, 1);
    map_pages(&v, 0, 0, 2 * PAGE);
    invalidate_start(&v, VGRU_INV_CMD_RANGE, 0, VA_BASE, PAGE);
    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 0, VGRU_CB_ERROR_CODE), ==,
                    VGRU_ERR_PAGE_FAULT);
    g_assert_cmpuint(rd(&v, VGRU_REG_INV_DONE), ==, 0);
    qtest_clock_step(v.qts, 999 * 1000);
    g_assert_cmpuint(rd(&v, VGRU_REG_INV_DONE), ==, 0);
    qtest_clock_step(v.qts, 1000);
    g_assert_cmpuint(rd(&v, VGRU_REG_INV_DONE), ==, 1);

    /* two in flight, each counted 1 ms after its own write */
    invalidate_start(&v, VGRU_INV_CMD_CONTEXT, 0, 0, 0);
    qtest_clock_step(v.qts, 500 * 1000);
    invalidate_start(&v, VGRU_INV_CMD_ALL, 0, 0, 0);
    qtest_clock_step(v.qts, 499 * 1000);
    g_assert_cmpuint(rd(&v, VGRU_REG_INV_DONE), ==, 1);
    qtest_clock_step(v.qts, 1000);
    g_assert_cmpuint(rd(&v, VGRU_REG_INV_DONE), ==, 2);
    qtest_clock_step(v.qts, 499 * 1000);
    g_assert_cmpuint(rd(&v, VGRU_REG_INV_DONE), ==, 2);
    qtest_clock_step(v.qts, 1000);
    g_assert_cmpuint(rd(&v, VGRU_REG_INV_DONE), ==, 3);

    /* a reset drops a delayed one for good */
    invalidate_start(&v, VGRU_INV_CMD_CONTEXT, 0, 0, 0);
    wr(&v, VGRU_REG_CTRL, VGRU_CTRL_RESET);
    qtest_clock_step(v.qts, 2000 * 1000);
    g_assert_cmpuint(rd(&v, VGRU_REG_INV_DONE), ==, 0);
    vgru_stop(&v);
}

/*
 * x-evict-every=3: drop-ins 3, 6 and 9 each evict another live entry, so
 * ten drop-ins of distinct pages leave seven; the evicted pages miss.
 */
static void test_inject_evict(void)
{
    Desc d = { .op = VGRU_OP_FILL, .flags = VGRU_DF_NO_BLOCK, .len = 8 };
    unsigned misses = 0;
    Vgru v;

    vgru_start_ctx(&v, ",x-evict-every=3", 0, 1);
    map_pages(&v, 0, 0, 10 * PAGE);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_DROPINS), ==, 10);
    for (int i = 0; i < 10; i++) {
        d.dst = VA_BASE + i * PAGE;
        cmd_start(&v, 0, 0, &d);
        if (cb_wait(&v, 0, 0) == VGRU_CB_ERROR) {
            misses++;
        }
    }
    g_assert_cmpuint(misses, ==, 3);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_MISSES), ==, 3);
    invalidate(&v, VGRU_INV_CMD_CONTEXT, 0, 0, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INV_ENTRIES), ==, 7);

    /* a copy still completes, however often its pages are evicted */
    copy_check(&v, 0, 0, 20 * PAGE, 8 * PAGE, 9);
    vgru_stop(&v);
}

/* ---- migration ---- */

/* Poll QMP @cmd until its return's @key is @want. */
static void qmp_wait_str(QTestState *qts, const char *cmd, const char *key,
                         const char *want)
{
    int64_t end = g_get_monotonic_time() + WAIT_US;

    for (;;) {
        QDict *resp = qtest_qmp(qts, "{ 'execute': %s }", cmd);
        QDict *ret = qdict_get_qdict(resp, "return");
        const char *val = ret ? qdict_get_try_str(ret, key) : NULL;
        bool done = val && !strcmp(val, want);

        g_assert_false(val && !strcmp(val, "failed"));
        qobject_unref(resp);
        if (done) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(10 * 1000);
    }
}

/* Save the stopped VM of @v into @file. */
static void migrate_out(Vgru *v, const char *file)
{
    g_autofree char *uri = g_strdup_printf("exec:cat > %s", file);

    qtest_qmp_assert_success(v->qts, "{ 'execute': 'migrate', "
                             "'arguments': { 'uri': %s } }", uri);
    qmp_wait_str(v->qts, "query-migrate", "status", "completed");
}

/* A QEMU with @props waiting for a stream (-incoming defer). */
static QTestState *incoming_start(const char *props)
{
    return qtest_initf("-machine pc -nodefaults -m 64M "
                       "-device vgru,addr=04.0%s -incoming defer", props);
}

static void incoming_load(QTestState *qts, const char *file)
{
    g_autofree char *uri = g_strdup_printf("exec:cat %s", file);

    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate-incoming', "
                             "'arguments': { 'uri': %s } }", uri);
}

/* A load that must fail: QEMU exits with status 1 on its own. */
static void incoming_refused(const char *props, const char *file)
{
    QTestState *qts = incoming_start(props);
    int64_t end = g_get_monotonic_time() + WAIT_US;

    qtest_set_expected_status(qts, 1);
    incoming_load(qts, file);
    while (qtest_probe_child(qts)) {
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(10 * 1000);
    }
    qtest_quit(qts);
}

/* Resolve faults of contexts 0 and 3 (tags 1 and 4) until all listed end. */
static void drive_all(Vgru *v, const uint32_t (*cbs)[2], int n)
{
    int64_t end = g_get_monotonic_time() + WAIT_US;

    for (;;) {
        uint64_t rec = FQ_PA + (v->fq_head % v->fq_size) * VGRU_FQ_RECORD_SIZE;
        bool done = true;
        Fault f;

        for (int i = 0; i < n; i++) {
            done &= cb_rd(v, cbs[i][0], cbs[i][1], VGRU_CB_STATUS) ==
                    VGRU_CB_DONE;
        }
        if (done) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        if (rd(v, VGRU_REG_FQ_TAIL) == v->fq_head) {
            continue;
        }
        if (qtest_readl(v->qts, rec + VGRU_FR_TYPE) == VGRU_FR_NOTICE) {
            g_assert_true(fault_pop(v, &f));
            continue;
        }
        f.ctx = qtest_readl(v->qts, rec + VGRU_FR_CTX);
        resolve_fault(v, f.ctx, f.ctx + 1);
    }
}

/*
 * Migration to a file and back, with the VM stopped and: a command done,
 * a fault posted and unanswered, a command started while stopped (not yet
 * run), a notice in the queue.  On the other side the registers, CBs,
 * counters and queue are as they were, the TLB is empty (pages fault
 * again), the waiting commands finish exactly, MSI-X still reaches RAM.
 */
static void test_migrate(void)
{
    g_autofree char *file = g_strdup_printf("%s/vgru-migrate-%d.bin",
                                            g_get_tmp_dir(), getpid());
    static const uint32_t waiting[][2] = { { 0, 1 }, { 3, 2 } };
    const uint64_t len = 2 * PAGE;
    uint64_t stats[VGRU_STAT_NR];
    QPCIDevice *dev;
    Vgru v;
    Fault f;

    vgru_start_ctx(&v, "", 0, 1);
    ctx_cmd(&v, 3, 4, VGRU_CTX_CMD_ENABLE);
    map_pages(&v, 0, 0, len);
    map_pages(&v, 0, 10 * PAGE, len);
    fill_pattern(&v, 0, len, 41);
    fill_pattern(&v, 200 * PAGE, PAGE, 42);
    fill_pattern(&v, 400 * PAGE, len, 43);
    copy_start(&v, 0, 0, VA_BASE, VA_BASE + 10 * PAGE, len);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    doorbell(&v, 0, 0, VGRU_CB_ARM);
    tail_wait(&v, 1);
    copy_start(&v, 0, 1, VA_BASE + 200 * PAGE, VA_BASE + 300 * PAGE, PAGE);
    g_assert_cmpuint(cb_wait(&v, 0, 1), ==, VGRU_CB_FAULT);
    vm_stop(&v);
    copy_start(&v, 3, 2, VA_BASE + 400 * PAGE, VA_BASE + 500 * PAGE, len);
    g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, 2);
    for (unsigned i = 0; i < VGRU_STAT_NR; i++) {
        stats[i] = dev_stat(&v, i);
    }
    migrate_out(&v, file);
    dev = v.dev;
    v.dev = NULL;
    vgru_stop(&v);

    v.qts = incoming_start("");
    incoming_load(v.qts, file);
    qmp_wait_str(v.qts, "query-status", "status", "paused");
    v.bus = qpci_new_pc(v.qts, NULL);
    v.dev = dev;
    v.dev->bus = v.bus;
    g_assert_cmphex(rd(&v, VGRU_REG_STATUS), ==, VGRU_STATUS_ENABLED);
    g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, 2);
    for (unsigned i = 0; i < VGRU_STAT_NR; i++) {
        g_assert_cmpuint(dev_stat(&v, i), ==, stats[i]);
    }
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_DONE);
    g_assert_cmpuint(cb_rd64(&v, 0, 0, VGRU_CB_PROGRESS), ==, len);
    g_assert_cmpuint(cb_rd(&v, 0, 1, VGRU_CB_STATUS), ==, VGRU_CB_FAULT);
    g_assert_cmpuint(cb_rd(&v, 3, 2, VGRU_CB_STATUS), ==, VGRU_CB_ACTIVE);

    /* the queue as left: the notice, then the fault */
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmpuint(f.type, ==, VGRU_FR_NOTICE);
    g_assert_cmpuint(f.cb, ==, 0);
    qtest_writel(v.qts, MSI_PA, 0);
    vm_cont(&v);
    drive_all(&v, waiting, ARRAY_SIZE(waiting));
    assert_same(&v, 200 * PAGE, 300 * PAGE, PAGE);
    assert_same(&v, 400 * PAGE, 500 * PAGE, len);
    g_assert_false(fault_pop(&v, &f));

    /* the TLB did not travel: the first copy faults on every page now */
    v.faults = 0;
    fill_pattern(&v, 0, len, 44);
    copy_start(&v, 0, 0, VA_BASE, VA_BASE + 10 * PAGE, len);
    g_assert_cmpuint(vgru_drive(&v, 0, 1, 0), ==, VGRU_CB_DONE);
    g_assert_cmpuint(v.faults, ==, 4);
    assert_same(&v, 0, 10 * PAGE, len);
    vgru_stop(&v);
    unlink(file);
}

/*
 * A FENCE that waits behind a copy when the VM is saved still ends on the
 * other side, after the copy, and the copy is exact.
 */
static void test_migrate_fence(void)
{
    g_autofree char *file = g_strdup_printf("%s/vgru-fence-%d.bin",
                                            g_get_tmp_dir(), getpid());
    static const uint32_t waiting[][2] = { { 0, 0 }, { 0, 1 } };
    const uint64_t len = 256 * PAGE, src = 0, dst = 256 * PAGE;
    uint64_t p;
    QPCIDevice *dev;
    Vgru v;

    vgru_start_ctx(&v, ",tlb-sets=256,x-dma-delay-us=50000", 0, 1);
    map_pages(&v, 0, src, len);
    map_pages(&v, 0, dst, len);
    fill_pattern(&v, src, len, 45);
    copy_start(&v, 0, 0, VA_BASE + src, VA_BASE + dst, len);
    cmd_start(&v, 0, 1, &(Desc) { .op = VGRU_OP_FENCE });
    /* past the copy's first turn (200 ms): the FENCE has had one, waits */
    g_usleep(300 * 1000);
    vm_stop(&v);
    p = cb_rd64(&v, 0, 0, VGRU_CB_PROGRESS);
    g_assert_cmpuint(p, <, len);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_ACTIVE);
    g_assert_cmpuint(cb_rd(&v, 0, 1, VGRU_CB_STATUS), ==, VGRU_CB_ACTIVE);
    migrate_out(&v, file);
    dev = v.dev;
    v.dev = NULL;
    vgru_stop(&v);

    v.qts = incoming_start(",tlb-sets=256");
    incoming_load(v.qts, file);
    qmp_wait_str(v.qts, "query-status", "status", "paused");
    v.bus = qpci_new_pc(v.qts, NULL);
    v.dev = dev;
    v.dev->bus = v.bus;
    g_assert_cmpuint(cb_rd(&v, 0, 1, VGRU_CB_STATUS), ==, VGRU_CB_ACTIVE);
    vm_cont(&v);
    drive_all(&v, waiting, ARRAY_SIZE(waiting));
    assert_same(&v, src, dst, len);
    vgru_stop(&v);
    unlink(file);
}

/* Pages of RAM a migration has sent (zero or not); its status. */
static int64_t migrated_pages(QTestState *qts, char *status, size_t size)
{
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'query-migrate' }");
    QDict *ret = qdict_get_qdict(resp, "return");
    QDict *ram = qdict_get_qdict(ret, "ram");
    int64_t n = 0;

    g_strlcpy(status, qdict_get_try_str(ret, "status") ?: "", size);
    if (ram) {
        n = qdict_get_int(ram, "duplicate") + qdict_get_int(ram, "normal");
    }
    qobject_unref(resp);
    return n;
}

/*
 * Device writes are marked dirty for migration: with the migration held
 * back by a low bandwidth, a copy into a page that has already been sent
 * (RAM goes in address order) must send it again; the other side then
 * holds the copy's bytes, not the page's older ones.  Both engines.
 */
static void test_migrate_dirty(void)
{
    static const char *const props[] = { "", ",inline-bytes=0" };
    const uint64_t dst = 4 * PAGE, len = 2 * PAGE;
    g_autofree uint8_t *want = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);

    for (size_t i = 0; i < ARRAY_SIZE(props); i++) {
        g_autofree char *file = g_strdup_printf("%s/vgru-dirty-%d.bin",
                                                g_get_tmp_dir(), getpid());
        g_autofree char *uri = g_strdup_printf("exec:cat > %s", file);
        int64_t end = g_get_monotonic_time() + WAIT_US;
        char status[32];
        QTestState *in;
        Vgru v;

        vgru_start_ctx(&v, props[i], 0, 1);
        map_pages(&v, 0, 0, dst + len);
        fill_pattern(&v, 0, len, 60);
        copy_start(&v, 0, 0, VA_BASE, VA_BASE + dst, len);
        g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);

        qtest_qmp_assert_success(v.qts, "{ 'execute': 'migrate-set-parameters',"
                                 " 'arguments': { 'max-bandwidth': 65536 } }");
        qtest_qmp_assert_success(v.qts, "{ 'execute': 'migrate', "
                                 "'arguments': { 'uri': %s } }", uri);
        /* the destination pages have gone, most of RAM has not */
        while (migrated_pages(v.qts, status, sizeof(status)) <=
               (DATA_PA + dst + len) / PAGE + 64) {
            g_assert_cmpint(g_get_monotonic_time(), <, end);
            g_usleep(10 * 1000);
        }
        fill_pattern(&v, 0, len, 61);
        copy_start(&v, 0, 0, VA_BASE, VA_BASE + dst, len);
        g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
        assert_same(&v, 0, dst, len);
        qtest_memread(v.qts, DATA_PA + dst, want, len);
        g_assert_cmpint(migrated_pages(v.qts, status, sizeof(status)), <,
                        (64 << 20) / PAGE);
        g_assert_cmpstr(status, ==, "active");

        qtest_qmp_assert_success(v.qts, "{ 'execute': 'migrate-set-parameters',"
                                 " 'arguments': { 'max-bandwidth': %d } }",
                                 1 << 30);
        qmp_wait_str(v.qts, "query-migrate", "status", "completed");
        vgru_stop(&v);

        in = incoming_start(props[i]);
        incoming_load(in, file);
        qmp_wait_str(in, "query-migrate", "status", "completed");
        qtest_memread(in, DATA_PA + dst, got, len);
        g_assert_cmpmem(want, len, got, len);
        qtest_quit(in);
        unlink(file);
    }
}

/*
 * An incoming stream the device cannot take fails the load, QEMU exits
 * with an error, never a crash: other geometry, or an impossible state
 * (an event queue whose size is not a power of two).
 */
static void test_migrate_bad_stream(void)
{
    g_autofree char *file = g_strdup_printf("%s/vgru-bad-%d.bin",
                                            g_get_tmp_dir(), getpid());
    static const uint8_t geometry[] = {
        0, 0, 0, 16, 0, 0, 0, 16, 0, 0, 1, 0, 0, 0, 0, 8, 0, 0, 0, 1,
    };
    g_autofree char *data = NULL;
    uint8_t *at;
    gsize size;
    Vgru v;

    vgru_start(&v, "");
    vgru_enable(&v, FQ_RECORDS);
    vm_stop(&v);
    migrate_out(&v, file);
    vgru_stop(&v);

    incoming_refused(",contexts=8", file);

    /* fq_size follows ctrl, status, fq_base_reg, fq_size_reg, fq_base */
    g_assert_true(g_file_get_contents(file, &data, &size, NULL));
    at = memmem(data, size, geometry, sizeof(geometry));
    g_assert_nonnull(at);
    g_assert_null(memmem(at + 1, size - (at + 1 - (uint8_t *)data),
                         geometry, sizeof(geometry)));
    at += 16 + 4 + 4 + 8 + 4 + 8;
    g_assert_cmphex(ldl_be_p(at), ==, FQ_RECORDS);
    stl_be_p(at, 3);
    g_assert_true(g_file_set_contents(file, data, size, NULL));
    incoming_refused("", file);
    unlink(file);
}

/* device_add of a vgru with @prop = @val fails with an error naming @what. */
static void assert_refused(Vgru *v, const char *prop, int val,
                           const char *what)
{
    QDict *resp = qtest_qmp(v->qts, "{ 'execute': 'device_add', "
                            "'arguments': { 'driver': 'vgru', %s: %d } }",
                            prop, val);
    QDict *err = qdict_get_qdict(resp, "error");

    g_assert_nonnull(err);
    g_assert_nonnull(strstr(qdict_get_str(err, "desc"), what));
    qobject_unref(resp);
}

/*
 * Realize refuses bad geometry with an error, QEMU stays up: TLB sets
 * that are not a power of two, more CBs than a window holds.
 */
static void test_realize_checks(void)
{
    Vgru v;

    vgru_start(&v, "");
    assert_refused(&v, "tlb-sets", 3, "power of two");
    assert_refused(&v, "tlb-sets", 0, "power of two");
    assert_refused(&v, "cbs", 33, "cbs must be 1..32");
    assert_refused(&v, "cbs", 0, "cbs must be 1..32");
    assert_refused(&v, "tlb-ways", 0, "tlb-ways");
    assert_refused(&v, "tlb-huge-entries", 0,
                   "tlb-huge-entries must be 1..256");
    assert_refused(&v, "tlb-huge-entries", 257,
                   "tlb-huge-entries must be 1..256");
    assert_refused(&v, "inline-bytes", 256 * 1024 + 1,
                   "inline-bytes must be at most 262144");
    g_assert_cmphex(rd(&v, VGRU_REG_ID), ==, VGRU_ID);
    vgru_stop(&v);
}

/* ---- 2 MiB translations ---- */

/*
 * Huge page n of the fake process is at HVA + n * HUGE, away from
 * VA_BASE's pages, and backed by DATA_PA + n * HUGE.
 */
#define HVA         0x7f1200000000ULL
#define HUGE        VGRU_HUGE_SIZE
#define HW          (VGRU_TLB_HUGE | VGRU_TLB_WRITE)

static void dropin_huge(Vgru *v, uint32_t ctx, unsigned n, uint32_t flags)
{
    dropin(v, ctx, HVA + n * HUGE, DATA_PA + n * HUGE, flags);
}

/* Run a NO_BLOCK COPY of @len at HVA offsets; returns its final status. */
static uint32_t huge_copy(Vgru *v, uint32_t ctx, uint64_t src, uint64_t dst,
                          uint64_t len)
{
    Desc d = {
        .op = VGRU_OP_COPY, .flags = VGRU_DF_NO_BLOCK,
        .src = HVA + src, .dst = HVA + dst, .len = len,
    };

    cmd_start(v, ctx, 0, &d);
    return cb_wait(v, ctx, 0);
}

/* A NO_BLOCK miss at @va, @flags as VGRU_FR_FLAGS. */
static void assert_missed(Vgru *v, uint32_t ctx, uint64_t va, uint32_t flags)
{
    g_assert_cmpuint(cb_rd(v, ctx, 0, VGRU_CB_STATUS), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(v, ctx, 0, VGRU_CB_ERROR_CODE), ==,
                    VGRU_ERR_PAGE_FAULT | flags << 16);
    g_assert_cmphex(cb_rd64(v, ctx, 0, VGRU_CB_FAULT_ADDR), ==, va);
}

/*
 * Two 2 MiB drop-ins translate a copy across their boundary and one
 * inside the second, with no fault: one hit per 4 KiB page touched.
 */
static void test_huge_copy(void)
{
    const uint64_t src = HUGE - 6 * PAGE + 0x123, len = 8 * PAGE + 77;
    const uint64_t dst = HUGE + 0x40000 + 5;
    uint64_t hits = pages_spanned(src, len) + pages_spanned(dst, len);
    Vgru v;

    vgru_start_ctx(&v, "", 1, 1);
    dropin_huge(&v, 1, 0, HW);
    dropin_huge(&v, 1, 1, HW);
    fill_pattern(&v, src, len, 5);
    g_assert_cmpuint(huge_copy(&v, 1, src, dst, len), ==, VGRU_CB_DONE);
    assert_same(&v, src, dst, len);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_HITS), ==, hits);

    /* inside one huge page */
    fill_pattern(&v, HUGE + 0x1000, 3 * PAGE, 6);
    g_assert_cmpuint(huge_copy(&v, 1, HUGE + 0x1000, 2 * HUGE - 3 * PAGE,
                               3 * PAGE), ==, VGRU_CB_DONE);
    assert_same(&v, HUGE + 0x1000, 2 * HUGE - 3 * PAGE, 3 * PAGE);
    hits += 6;
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_HITS), ==, hits);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_MISSES), ==, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_DROPINS), ==, 2);

    /* a fault resolved by a huge drop-in: the restart finds it */
    copy_start(&v, 1, 1, HVA + 2 * HUGE + 8, HVA + 16, 64);
    g_assert_cmpuint(cb_wait(&v, 1, 1), ==, VGRU_CB_FAULT);
    {
        Fault f;

        g_assert_true(fault_pop(&v, &f));
        g_assert_cmphex(f.va, ==, HVA + 2 * HUGE + 8);
        dropin_huge(&v, 1, 2, VGRU_TLB_HUGE);
        respond(&v, &f, VGRU_RESP_RESTART, 0);
    }
    g_assert_cmpuint(cb_wait(&v, 1, 1), ==, VGRU_CB_DONE);
    assert_same(&v, 2 * HUGE + 8, 16, 64);
    vgru_stop(&v);
}

/* Misaligned huge drop-ins and unknown flags are ignored. */
static void test_huge_bad(void)
{
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    dropin(&v, 0, HVA + PAGE, DATA_PA, HW);
    dropin(&v, 0, HVA, DATA_PA + PAGE, HW);
    dropin(&v, 0, HVA + HUGE / 2, DATA_PA + HUGE / 2, HW);
    dropin(&v, 0, HVA, DATA_PA, VGRU_TLB_WRITE | 4);
    dropin(&v, 0, HVA, DATA_PA, 0x80000000u | VGRU_TLB_HUGE);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_DROPINS), ==, 0);
    g_assert_cmpuint(huge_copy(&v, 0, PAGE, 0, 8), ==, VGRU_CB_ERROR);
    assert_missed(&v, 0, HVA + PAGE, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_MISSES), ==, 1);
    vgru_stop(&v);
}

/*
 * Any invalidation that touches a 2 MiB entry removes it whole, counted
 * once; context invalidation and DISABLE remove them too.
 */
static void test_huge_invalidate(void)
{
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    ctx_cmd(&v, 1, 2, VGRU_CTX_CMD_ENABLE);
    dropin_huge(&v, 0, 0, HW);
    dropin_huge(&v, 0, 1, HW);
    dropin_huge(&v, 1, 0, HW);
    fill_pattern(&v, 0, PAGE, 7);

    /* one 4 KiB page in the middle of huge page 0 of context 0 */
    invalidate(&v, VGRU_INV_CMD_RANGE, 0, HVA + HUGE / 2, PAGE);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INV_ENTRIES), ==, 1);
    g_assert_cmpuint(huge_copy(&v, 0, 0, HUGE + PAGE, 64), ==, VGRU_CB_ERROR);
    assert_missed(&v, 0, HVA, 0);
    /* the rest is still there: page 1, and context 1's page 0 */
    g_assert_cmpuint(huge_copy(&v, 0, HUGE, HUGE + PAGE, 64), ==,
                     VGRU_CB_DONE);
    g_assert_cmpuint(huge_copy(&v, 1, 0, PAGE, 64), ==, VGRU_CB_DONE);
    assert_same(&v, 0, PAGE, 64);

    /* a range that ends one byte into huge page 1 */
    invalidate(&v, VGRU_INV_CMD_RANGE, 0, HVA + HUGE - 2 * PAGE,
               2 * PAGE + 1);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INV_ENTRIES), ==, 2);
    g_assert_cmpuint(huge_copy(&v, 0, 2 * HUGE - 64, HUGE, 64), ==,
                     VGRU_CB_ERROR);
    assert_missed(&v, 0, HVA + 2 * HUGE - 64, 0);

    /* a 4 KiB entry inside a huge one: both go with that page */
    dropin_huge(&v, 0, 0, HW);
    dropin(&v, 0, HVA + 3 * PAGE, DATA_PA + 3 * PAGE, VGRU_TLB_WRITE);
    g_assert_cmpuint(huge_copy(&v, 0, 3 * PAGE, 5 * PAGE, 64), ==,
                     VGRU_CB_DONE);
    invalidate(&v, VGRU_INV_CMD_RANGE, 0, HVA + 3 * PAGE + 8, 8);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INV_ENTRIES), ==, 4);
    g_assert_cmpuint(huge_copy(&v, 0, 5 * PAGE, 6 * PAGE, 64), ==,
                     VGRU_CB_ERROR);
    assert_missed(&v, 0, HVA + 5 * PAGE, 0);

    /* a context flush: one huge and one 4 KiB entry */
    dropin_huge(&v, 0, 1, HW);
    dropin(&v, 0, HVA + PAGE, DATA_PA + PAGE, VGRU_TLB_WRITE);
    invalidate(&v, VGRU_INV_CMD_CONTEXT, 0, 0, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INV_ENTRIES), ==, 6);
    g_assert_cmpuint(huge_copy(&v, 0, HUGE, HUGE + PAGE, 64), ==,
                     VGRU_CB_ERROR);
    assert_missed(&v, 0, HVA + HUGE, 0);

    /* DISABLE drops context 1's huge entry: nothing left to count */
    ctx_cmd(&v, 1, 2, VGRU_CTX_CMD_DISABLE);
    ctx_cmd(&v, 1, 2, VGRU_CTX_CMD_ENABLE);
    g_assert_cmpuint(huge_copy(&v, 1, 0, PAGE, 64), ==, VGRU_CB_ERROR);
    assert_missed(&v, 1, HVA, 0);
    invalidate(&v, VGRU_INV_CMD_ALL, 0, 0, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INV_ENTRIES), ==, 6);
    vgru_stop(&v);
}

/*
 * A read-only huge drop-in keeps a writable entry of the same page and
 * bus address writable, and replaces one with another bus address.
 */
static void test_huge_read_over_write(void)
{
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    dropin_huge(&v, 0, 0, HW);
    dropin_huge(&v, 0, 0, VGRU_TLB_HUGE);
    fill_pattern(&v, 0, 64, 8);
    g_assert_cmpuint(huge_copy(&v, 0, 0, PAGE, 64), ==, VGRU_CB_DONE);
    assert_same(&v, 0, PAGE, 64);

    dropin(&v, 0, HVA, DATA_PA + HUGE, VGRU_TLB_HUGE);
    g_assert_cmpuint(huge_copy(&v, 0, 0, PAGE, 64), ==, VGRU_CB_ERROR);
    assert_missed(&v, 0, HVA + PAGE, VGRU_FAULT_WRITE | VGRU_FAULT_PERM);
    /* reads go to the new bus address */
    fill_pattern(&v, HUGE + 0x100, 64, 9);
    dropin(&v, 0, HVA + HUGE, DATA_PA + HUGE, HW);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_DROPINS), ==, 4);
    g_assert_cmpuint(huge_copy(&v, 0, 0x100, HUGE + PAGE, 64), ==,
                     VGRU_CB_DONE);
    assert_same(&v, HUGE + 0x100, HUGE + PAGE, 64);
    vgru_stop(&v);
}

/*
 * More 2 MiB entries than the device holds: each new one replaces an old
 * one, the newest translates, and a context flush counts what is left.
 */
static void test_huge_many(void)
{
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    /* 40 huge pages of the same bus page: more than the array holds */
    for (unsigned n = 0; n < 40; n++) {
        dropin(&v, 0, HVA + n * HUGE, DATA_PA, HW);
    }
    fill_pattern(&v, 0x80, 64, 10);
    g_assert_cmpuint(huge_copy(&v, 0, 39 * HUGE + 0x80, 39 * HUGE + PAGE,
                               64), ==, VGRU_CB_DONE);
    assert_same(&v, 0x80, PAGE, 64);
    invalidate(&v, VGRU_INV_CMD_CONTEXT, 0, 0, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INV_ENTRIES), ==, 32);
    vgru_stop(&v);
}

/*
 * tlb-huge-entries=2: a third 2 MiB drop-in replaces the oldest, which
 * then misses; an invalidation finds exactly two entries.
 */
static void test_huge_entries_prop(void)
{
    Vgru v;

    vgru_start_ctx(&v, ",tlb-huge-entries=2", 0, 1);
    for (unsigned n = 0; n < 3; n++) {
        dropin_huge(&v, 0, n, HW);
    }
    fill_pattern(&v, 2 * HUGE + 0x80, 64, 11);
    g_assert_cmpuint(huge_copy(&v, 0, 2 * HUGE + 0x80, HUGE + 0x100, 64), ==,
                     VGRU_CB_DONE);
    assert_same(&v, 2 * HUGE + 0x80, HUGE + 0x100, 64);
    g_assert_cmpuint(huge_copy(&v, 0, 0x80, HUGE + 0x100, 64), ==,
                     VGRU_CB_ERROR);
    assert_missed(&v, 0, HVA + 0x80, 0);
    invalidate(&v, VGRU_INV_CMD_CONTEXT, 0, 0, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INV_ENTRIES), ==, 2);
    vgru_stop(&v);
}

/*
 * A CB holds a huge entry's translation while it waits for its other
 * operand; an invalidation elsewhere in that huge page drops the entry
 * and the hold, so the restart faults on it again.
 */
static void test_huge_hold(void)
{
    Fault f;
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    dropin_huge(&v, 0, 0, HW);
    fill_pattern(&v, 0x40, 64, 15);
    copy_start(&v, 0, 0, HVA + 0x40, VA_BASE + 8 * PAGE, 64);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmphex(f.va, ==, VA_BASE + 8 * PAGE);
    invalidate(&v, VGRU_INV_CMD_RANGE, 0, HVA + HUGE / 2, 1);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INV_ENTRIES), ==, 1);
    dropin(&v, 0, VA_BASE + 8 * PAGE, DATA_PA + 8 * PAGE, VGRU_TLB_WRITE);
    respond(&v, &f, VGRU_RESP_RESTART, 0);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmphex(f.va, ==, HVA + 0x40);
    g_assert_cmphex(f.flags, ==, 0);

    /* a huge drop-in hands the waiting CB its 4 KiB page: no more fault */
    dropin_huge(&v, 0, 0, VGRU_TLB_HUGE);
    respond(&v, &f, VGRU_RESP_RESTART, 0);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_same(&v, 0x40, 8 * PAGE, 64);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_MISSES), ==, 2);
    vgru_stop(&v);
}

/*
 * A CB holds all of a 2 MiB translation, and the hold outlives the entry
 * when that is evicted; an invalidation of any page of those 2 MiB still
 * drops it, so the restart faults and then reads where the page is now.
 */
static void test_huge_hold_evicted(void)
{
    const uint64_t src = 5 * PAGE + 0x40;
    Fault f;
    Vgru v;

    vgru_start_ctx(&v, ",tlb-huge-entries=1", 0, 1);
    dropin_huge(&v, 0, 0, HW);
    fill_pattern(&v, src, 64, 16);
    copy_start(&v, 0, 0, HVA + src, VA_BASE + 8 * PAGE, 64);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmphex(f.va, ==, VA_BASE + 8 * PAGE);
    /* huge page 1 takes the only slot: page 0 lives on in the hold */
    dropin_huge(&v, 0, 1, HW);
    invalidate(&v, VGRU_INV_CMD_RANGE, 0, HVA + 200 * PAGE, PAGE);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INV_ENTRIES), ==, 0);
    dropin(&v, 0, VA_BASE + 8 * PAGE, DATA_PA + 8 * PAGE, VGRU_TLB_WRITE);
    respond(&v, &f, VGRU_RESP_RESTART, 0);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmphex(f.va, ==, HVA + src);

    /* the 2 MiB moved: the restart reads the new place */
    fill_pattern(&v, 2 * HUGE + src, 64, 17);
    dropin(&v, 0, HVA, DATA_PA + 2 * HUGE, HW);
    respond(&v, &f, VGRU_RESP_RESTART, 0);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_same(&v, 2 * HUGE + src, 8 * PAGE, 64);
    vgru_stop(&v);
}

/*
 * TLB hits through 2 MiB holds count as through 4 KiB ones: one per page
 * each time a command moves on to it.  A BATCH whose list and operands
 * lie in one 2 MiB translation, the same on 4 KiB translations, and a
 * completion record below its destination in the same 2 MiB.
 */
static void huge_hits_batch(Vgru *v, uint64_t va)
{
    for (int i = 0; i < 2; i++) {
        desc_write(v, 0x1000 + i * VGRU_DESC_SIZE, &(Desc) {
            .op = VGRU_OP_COPY, .src = va, .dst = va + 0x100000 + i * 64,
            .len = 64,
        });
    }
    cmd_start(v, 0, 0, &(Desc) {
        .op = VGRU_OP_BATCH, .src = va + 0x1000, .len = 2,
    });
    g_assert_cmpuint(cb_wait(v, 0, 0), ==, VGRU_CB_DONE);
}

static void test_huge_hits(void)
{
    Vgru v;

    /* list page, source page, list page, source page, destination page */
    vgru_start_ctx(&v, "", 0, 1);
    map_pages(&v, 0, 0, 0x101000);
    huge_hits_batch(&v, VA_BASE);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_HITS), ==, 5);
    vgru_stop(&v);

    vgru_start_ctx(&v, "", 0, 1);
    dropin_huge(&v, 0, 0, HW);
    dropin_huge(&v, 0, 1, HW);
    huge_hits_batch(&v, HVA);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_HITS), ==, 5);

    cmd_start(&v, 0, 1, &(Desc) {
        .op = VGRU_OP_COPY, .flags = VGRU_DF_COMPLETION, .src = HVA + HUGE,
        .dst = HVA + 0x10000, .len = 64, .comp = HVA,
    });
    g_assert_cmpuint(cb_wait(&v, 0, 1), ==, VGRU_CB_DONE);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_HITS), ==, 5 + 3);
    vgru_stop(&v);
}

/*
 * Source and destination in one read-only 2 MiB translation: the write
 * faults, and a writable 4 KiB drop-in of the destination page (at the
 * same bus address) leaves the source's 2 MiB hold alone, so the restart
 * neither faults again nor counts the source twice.
 */
static void test_huge_hold_kept(void)
{
    Fault f;
    Vgru v;

    vgru_start_ctx(&v, ",tlb-huge-entries=1", 0, 1);
    dropin_huge(&v, 0, 0, VGRU_TLB_HUGE);
    fill_pattern(&v, 0x40, 64, 18);
    copy_start(&v, 0, 0, HVA + 0x40, HVA + 0x100000, 64);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmphex(f.va, ==, HVA + 0x100000);
    g_assert_cmphex(f.flags, ==, VGRU_FAULT_WRITE | VGRU_FAULT_PERM);
    /* the 2 MiB entry is evicted too: only the hold has the source */
    dropin_huge(&v, 0, 1, HW);
    dropin(&v, 0, HVA + 0x100000, DATA_PA + 0x100000, VGRU_TLB_WRITE);
    respond(&v, &f, VGRU_RESP_RESTART, 0);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_same(&v, 0x40, 0x100000, 64);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_HITS), ==, 2);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_MISSES), ==, 1);
    vgru_stop(&v);
}

/*
 * A batch copies from a 2 MiB hold whose entry was evicted; an
 * invalidation of another page of those 2 MiB waits for it, as it does
 * while the entry lives (the batch may be using any of its 2 MiB).
 */
static void test_huge_hold_inv_waits(void)
{
    const uint64_t len = 64 * PAGE;
    Fault f;
    Vgru v;

    for (int evict = 0; evict < 2; evict++) {
        vgru_start_ctx(&v, ",tlb-huge-entries=1,x-dma-delay-us=300000", 0, 1);
        dropin_huge(&v, 0, 0, HW);
        map_pages(&v, 0, 0, len);
        copy_start(&v, 0, 0, HVA, VA_BASE, len);
        stat_wait(&v, VGRU_STAT_TLB_HITS, 2 * len / PAGE);
        if (evict) {
            dropin_huge(&v, 0, 1, HW);
        }
        invalidate_start(&v, VGRU_INV_CMD_RANGE, 0, HVA + 0x180000, PAGE);
        g_assert_cmpuint(rd(&v, VGRU_REG_INV_DONE), ==, v.inv_seq - 1);
        invalidate_wait(&v);
        /* the hold went with it: the rest of the source faults */
        g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
        g_assert_true(fault_pop(&v, &f));
        g_assert_cmphex(f.va, >=, HVA);
        g_assert_cmphex(f.va, <, HVA + len);
        vgru_stop(&v);
    }
}

/* ---- translation lists ---- */

#define LIST_PA     0x120000ULL

typedef struct ListResp {
    uint32_t cb, seq, cmd, code;
} ListResp;

/* Write a list at @pa: translations @va[i] (| flags) -> @pa[i]. */
static void list_write(Vgru *v, uint64_t at, uint32_t ctx, uint32_t nt,
                       const uint64_t *va, const uint64_t *pa, uint32_t nr,
                       const ListResp *r)
{
    qtest_writel(v->qts, at + VGRU_TL_CTX, ctx);
    qtest_writel(v->qts, at + VGRU_TL_NR_TRANS, nt);
    qtest_writel(v->qts, at + VGRU_TL_NR_RESP, nr);
    qtest_writel(v->qts, at + VGRU_TL_HDR_SIZE - 4, 0);
    for (uint32_t i = 0; i < nt; i++) {
        uint64_t t = at + VGRU_TL_HDR_SIZE + i * VGRU_TL_TRANS_SIZE;

        qtest_writeq(v->qts, t + VGRU_TL_T_VADDR, va[i]);
        qtest_writeq(v->qts, t + VGRU_TL_T_PADDR, pa[i]);
    }
    for (uint32_t i = 0; i < nr; i++) {
        uint64_t p = at + VGRU_TL_SIZE(nt, i);

        qtest_writel(v->qts, p + VGRU_TL_R_CB, r[i].cb);
        qtest_writel(v->qts, p + VGRU_TL_R_SEQ, r[i].seq);
        qtest_writel(v->qts, p + VGRU_TL_R_CMD, r[i].cmd);
        qtest_writel(v->qts, p + VGRU_TL_R_CODE, r[i].code);
    }
}

static void list_run(Vgru *v, uint64_t at)
{
    wr64(v, VGRU_REG_TLB_LIST, at);
    wr(v, VGRU_REG_TLB_CMD, VGRU_TLB_CMD_LIST);
}

/*
 * Two CBs fault, one on a 4 KiB page, one in a huge page; one list drops
 * both translations in and restarts both.
 */
static void test_list(void)
{
    uint64_t va[3], pa[3];
    ListResp r[2];
    Fault f[2];
    Vgru v;

    vgru_start_ctx(&v, "", 2, 5);
    map_pages(&v, 2, 4 * PAGE, 2 * PAGE);
    g_assert_cmphex(rd(&v, VGRU_REG_TLB_LIST), ==, 0);
    fill_pattern(&v, 0x10, 100, 11);
    fill_pattern(&v, HUGE + 0x3000, 100, 12);
    copy_start(&v, 2, 0, VA_BASE + 0x10, VA_BASE + 4 * PAGE, 100);
    g_assert_cmpuint(cb_wait(&v, 2, 0), ==, VGRU_CB_FAULT);
    copy_start(&v, 2, 1, HVA + HUGE + 0x3000, VA_BASE + 5 * PAGE, 100);
    g_assert_cmpuint(cb_wait(&v, 2, 1), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f[0]));
    g_assert_true(fault_pop(&v, &f[1]));
    g_assert_cmpuint(f[0].cb, ==, 0);
    g_assert_cmpuint(f[1].cb, ==, 1);

    va[0] = VA_BASE | VGRU_TLB_WRITE;
    pa[0] = DATA_PA;
    va[1] = (HVA + HUGE) | VGRU_TLB_HUGE;
    pa[1] = DATA_PA + HUGE;
    va[2] = HVA + 4 * HUGE;         /* read-only, unused */
    pa[2] = DATA_PA;
    r[0] = (ListResp) { 0, f[0].seq, VGRU_RESP_RESTART, 0 };
    r[1] = (ListResp) { 1, f[1].seq, VGRU_RESP_RESTART, 0 };
    list_write(&v, LIST_PA, 2, 3, va, pa, 2, r);
    list_run(&v, LIST_PA);
    g_assert_cmphex(rd(&v, VGRU_REG_TLB_LIST), ==, LIST_PA);
    g_assert_cmpuint(cb_wait(&v, 2, 0), ==, VGRU_CB_DONE);
    g_assert_cmpuint(cb_wait(&v, 2, 1), ==, VGRU_CB_DONE);
    assert_same(&v, 0x10, 4 * PAGE, 100);
    assert_same(&v, HUGE + 0x3000, 5 * PAGE, 100);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_LISTS), ==, 1);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_LIST_ERRORS), ==, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_DROPINS), ==, 2 + 3);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_MISSES), ==, 2);

    /* an empty list is a list */
    list_write(&v, LIST_PA, 2, 0, NULL, NULL, 0, NULL);
    list_run(&v, LIST_PA);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_LISTS), ==, 2);
    vgru_stop(&v);
}

/*
 * Malformed lists of every kind are ignored whole: no translation, no
 * response, one LIST_ERRORS each; the CB still waits, and a good list
 * then restarts it.
 */
static void test_list_bad(void)
{
    uint64_t va[2] = { VA_BASE | VGRU_TLB_WRITE, HVA | VGRU_TLB_HUGE };
    uint64_t pa[2] = { DATA_PA, DATA_PA };
    ListResp r = { 0, 0, VGRU_RESP_RESTART, 0 };
    uint64_t errors = 0;
    Fault f;
    Vgru v;

    vgru_start_ctx(&v, ",contexts=4,cbs=4", 1, 5);
    map_pages(&v, 1, PAGE, PAGE);
    fill_pattern(&v, 0, 64, 13);
    copy_start(&v, 1, 0, VA_BASE, VA_BASE + PAGE, 64);
    g_assert_cmpuint(cb_wait(&v, 1, 0), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    r.seq = f.seq;

#define BAD_LIST(at) do {                                               \
        list_run(&v, (at));                                             \
        g_assert_cmpuint(dev_stat(&v, VGRU_STAT_LIST_ERRORS), ==,       \
                         ++errors);                                     \
    } while (0)

    /* a disabled context, one out of range */
    list_write(&v, LIST_PA, 2, 2, va, pa, 1, &r);
    BAD_LIST(LIST_PA);
    list_write(&v, LIST_PA, 4, 2, va, pa, 1, &r);
    BAD_LIST(LIST_PA);
    /* counts over the limits */
    list_write(&v, LIST_PA, 1, 2, va, pa, 1, &r);
    qtest_writel(v.qts, LIST_PA + VGRU_TL_NR_TRANS, VGRU_TL_MAX_TRANS + 1);
    BAD_LIST(LIST_PA);
    qtest_writel(v.qts, LIST_PA + VGRU_TL_NR_TRANS, 0xffffffffu);
    BAD_LIST(LIST_PA);
    list_write(&v, LIST_PA, 1, 2, va, pa, 1, &r);
    qtest_writel(v.qts, LIST_PA + VGRU_TL_NR_RESP, VGRU_TL_MAX_RESP + 1);
    BAD_LIST(LIST_PA);
    /* the reserved word */
    list_write(&v, LIST_PA, 1, 2, va, pa, 1, &r);
    qtest_writel(v.qts, LIST_PA + VGRU_TL_HDR_SIZE - 4, 1);
    BAD_LIST(LIST_PA);
    /* a list address not 64-byte aligned, one outside RAM */
    list_write(&v, LIST_PA + 32, 1, 2, va, pa, 1, &r);
    BAD_LIST(LIST_PA + 32);
    BAD_LIST(1ULL << 40);
    /* this device's own registers: never read from inside its handler */
    BAD_LIST(v.ctrl.addr);
    BAD_LIST(v.win.addr);
    /* unknown flags, misaligned translations (the huge one second) */
    va[0] |= 4;
    list_write(&v, LIST_PA, 1, 2, va, pa, 1, &r);
    BAD_LIST(LIST_PA);
    va[0] &= ~4ULL;
    pa[1] = DATA_PA + PAGE;
    list_write(&v, LIST_PA, 1, 2, va, pa, 1, &r);
    BAD_LIST(LIST_PA);
    pa[1] = DATA_PA;
    va[1] += PAGE;
    list_write(&v, LIST_PA, 1, 2, va, pa, 1, &r);
    BAD_LIST(LIST_PA);
    va[1] -= PAGE;
    pa[0] += 8;
    list_write(&v, LIST_PA, 1, 2, va, pa, 1, &r);
    BAD_LIST(LIST_PA);
    pa[0] -= 8;
    /* a response to a CB out of range, an unknown response command */
    r.cb = 4;
    list_write(&v, LIST_PA, 1, 2, va, pa, 1, &r);
    BAD_LIST(LIST_PA);
    r.cb = 0;
    r.cmd = 4;
    list_write(&v, LIST_PA, 1, 2, va, pa, 1, &r);
    BAD_LIST(LIST_PA);
    r.cmd = 0;
    list_write(&v, LIST_PA, 1, 2, va, pa, 1, &r);
    BAD_LIST(LIST_PA);
#undef BAD_LIST

    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_LISTS), ==, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_DROPINS), ==, 1);
    g_assert_cmpuint(cb_rd(&v, 1, 0, VGRU_CB_STATUS), ==, VGRU_CB_FAULT);
    /* an unknown TLB command is no list either */
    wr(&v, VGRU_REG_TLB_CMD, 3);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_LISTS), ==, 0);

    /* the same list, well formed */
    r.cmd = VGRU_RESP_RESTART;
    list_write(&v, LIST_PA, 1, 2, va, pa, 1, &r);
    list_run(&v, LIST_PA);
    g_assert_cmpuint(cb_wait(&v, 1, 0), ==, VGRU_CB_DONE);
    assert_same(&v, 0, PAGE, 64);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_LISTS), ==, 1);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_LIST_ERRORS), ==, errors);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_DROPINS), ==, 3);
    vgru_stop(&v);
}

/*
 * Responses in a list behave as the registers: FAIL ends the command with
 * its code, a stale sequence is ignored (the list itself still runs).
 */
static void test_list_responses(void)
{
    uint64_t va = VA_BASE | VGRU_TLB_WRITE, pa = DATA_PA;
    ListResp r[2];
    Fault f[2];
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    map_pages(&v, 0, PAGE, PAGE);
    fill_pattern(&v, 0, 64, 14);
    copy_start(&v, 0, 0, VA_BASE, VA_BASE + PAGE, 64);
    copy_start(&v, 0, 1, VA_BASE + 2 * PAGE, VA_BASE + PAGE + 64, 64);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
    g_assert_cmpuint(cb_wait(&v, 0, 1), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f[0]));
    g_assert_true(fault_pop(&v, &f[1]));
    if (f[0].cb != 0) {
        Fault t = f[0];

        f[0] = f[1];
        f[1] = t;
    }

    /* CB 0: a stale sequence; CB 1: failed with 14 */
    r[0] = (ListResp) { 0, f[0].seq - 1, VGRU_RESP_RESTART, 0 };
    r[1] = (ListResp) { 1, f[1].seq, VGRU_RESP_FAIL, 14 };
    list_write(&v, LIST_PA, 0, 1, &va, &pa, 2, r);
    list_run(&v, LIST_PA);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_LISTS), ==, 1);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_LIST_ERRORS), ==, 0);
    g_assert_cmpuint(cb_rd(&v, 0, 1, VGRU_CB_STATUS), ==, VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 0, 1, VGRU_CB_ERROR_CODE), ==,
                    VGRU_ERR_FAULT | 14 << 16);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_FAULT);

    /* the translation was dropped in: the right answer restarts CB 0 */
    r[0].seq = f[0].seq;
    list_write(&v, LIST_PA, 0, 0, NULL, NULL, 1, r);
    list_run(&v, LIST_PA);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_same(&v, 0, PAGE, 64);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_LISTS), ==, 2);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_MISSES), ==, 2);
    vgru_stop(&v);
}

/* ---- coalesced interrupts ---- */

/*
 * Records queued without a FQ_HEAD write raise one interrupt; FQ_HEAD
 * re-arms it, raising at once while records are pending.
 */
static void test_irq_coalesce(void)
{
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    qtest_writel(v.qts, MSI_PA, 0);
    for (uint32_t cb = 0; cb < 3; cb++) {
        copy_start(&v, 0, cb, VA_BASE + cb * PAGE, VA_BASE + 8 * PAGE, 8);
        g_assert_cmpuint(cb_wait(&v, 0, cb), ==, VGRU_CB_FAULT);
    }
    tail_wait(&v, 3);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 1);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);
    qtest_writel(v.qts, MSI_PA, 0);

    /* one consumed, two pending: raised again at once */
    wr(&v, VGRU_REG_FQ_HEAD, 1);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 2);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);
    qtest_writel(v.qts, MSI_PA, 0);

    /* caught up: armed, quiet until the next record */
    wr(&v, VGRU_REG_FQ_HEAD, 3);
    v.fq_head = 3;
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 2);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, 0);
    copy_start(&v, 0, 3, VA_BASE + 3 * PAGE, VA_BASE + 8 * PAGE, 8);
    tail_wait(&v, 4);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 3);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);

    /* a reset arms it: the first record after raises */
    wr(&v, VGRU_REG_CTRL, VGRU_CTRL_RESET);
    wr64(&v, VGRU_REG_FQ_BASE, FQ_PA);
    wr(&v, VGRU_REG_FQ_SIZE, FQ_RECORDS);
    wr(&v, VGRU_REG_CTRL, VGRU_CTRL_ENABLE);
    v.fq_head = 0;
    ctx_cmd(&v, 0, 1, VGRU_CTX_CMD_ENABLE);
    qtest_writel(v.qts, MSI_PA, 0);
    copy_start(&v, 0, 0, VA_BASE, VA_BASE + 8 * PAGE, 8);
    tail_wait(&v, 1);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 1);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);
    vgru_stop(&v);
}

/*
 * Migration keeps the interrupt disarmed after a raise (a record added on
 * the other side raises nothing until FQ_HEAD moves) and drops the 2 MiB
 * translations with the rest of the TLB.
 */
static void test_migrate_irq_huge(void)
{
    g_autofree char *file = g_strdup_printf("%s/vgru-irq-%d.bin",
                                            g_get_tmp_dir(), getpid());
    QPCIDevice *dev;
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    ctx_cmd(&v, 1, 2, VGRU_CTX_CMD_ENABLE);
    dropin_huge(&v, 1, 0, HW);
    fill_pattern(&v, 0x1000, PAGE, 46);
    g_assert_cmpuint(huge_copy(&v, 1, 0x1000, 0x3000, PAGE), ==,
                     VGRU_CB_DONE);
    qtest_writel(v.qts, MSI_PA, 0);
    copy_start(&v, 0, 0, VA_BASE, VA_BASE + 8 * PAGE, 8);
    tail_wait(&v, 1);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 1);
    qtest_writel(v.qts, MSI_PA, 0);
    vm_stop(&v);
    migrate_out(&v, file);
    dev = v.dev;
    v.dev = NULL;
    vgru_stop(&v);

    v.qts = incoming_start("");
    incoming_load(v.qts, file);
    qmp_wait_str(v.qts, "query-status", "status", "paused");
    v.bus = qpci_new_pc(v.qts, NULL);
    v.dev = dev;
    v.dev->bus = v.bus;
    vm_cont(&v);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 1);

    /* still disarmed: a second record raises nothing */
    copy_start(&v, 0, 1, VA_BASE + PAGE, VA_BASE + 8 * PAGE, 8);
    tail_wait(&v, 2);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 1);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, 0);
    /* one consumed, one pending: raised at once */
    wr(&v, VGRU_REG_FQ_HEAD, 1);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 2);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);

    /* the 2 MiB translation is gone: the same copy misses, then works */
    g_assert_cmpuint(huge_copy(&v, 1, 0x1000, 0x3000, PAGE), ==,
                     VGRU_CB_ERROR);
    g_assert_cmphex(cb_rd(&v, 1, 0, VGRU_CB_ERROR_CODE) & 0xffff, ==,
                    VGRU_ERR_PAGE_FAULT);
    g_assert_cmphex(cb_rd64(&v, 1, 0, VGRU_CB_FAULT_ADDR), ==, HVA + 0x1000);
    dropin_huge(&v, 1, 0, HW);
    qtest_memset(v.qts, DATA_PA + 0x3000, 0, PAGE);
    g_assert_cmpuint(huge_copy(&v, 1, 0x1000, 0x3000, PAGE), ==,
                     VGRU_CB_DONE);
    assert_same(&v, 0x1000, 0x3000, PAGE);
    vgru_stop(&v);
    unlink(file);
}

/*
 * A COPY whose next piece misses at START or RESTART has its fault record
 * (and MSI-X message) posted before the register write returns; with
 * x-worker-faults=on the worker finds it instead, with the same records
 * and counters.
 */
static void test_fault_at_doorbell(void)
{
    for (int slow = 0; slow < 2; slow++) {
        Fault f;
        Vgru v;

        vgru_start_ctx(&v, slow ? ",x-worker-faults=on" : "", 0, 1);
        fill_pattern(&v, 0x100, 64, 16);
        qtest_writel(v.qts, MSI_PA, 0);
        copy_start(&v, 0, 0, VA_BASE + 0x100, VA_BASE + 3 * PAGE, 64);
        if (!slow) {
            g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, 1);
            g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==,
                             VGRU_CB_FAULT);
            g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);
        }
        g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
        g_assert_true(fault_pop(&v, &f));
        g_assert_cmphex(f.va, ==, VA_BASE + 0x100);
        g_assert_cmphex(f.flags, ==, 0);
        dropin(&v, 0, VA_BASE, DATA_PA, 0);
        respond(&v, &f, VGRU_RESP_RESTART, 0);
        if (!slow) {
            g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, 2);
        }
        g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
        g_assert_true(fault_pop(&v, &f));
        g_assert_cmphex(f.va, ==, VA_BASE + 3 * PAGE);
        g_assert_cmphex(f.flags, ==, VGRU_FAULT_WRITE);
        dropin(&v, 0, VA_BASE + 3 * PAGE, DATA_PA + 3 * PAGE, VGRU_TLB_WRITE);
        respond(&v, &f, VGRU_RESP_RESTART, 0);
        g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
        assert_same(&v, 0x100, 3 * PAGE, 64);
        g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_MISSES), ==, 2);
        g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_HITS), ==, 2);
        g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 2);
        vgru_stop(&v);
    }
}

/*
 * VGRU_DF_CALL_OS: the miss found in the START write is posted with
 * VGRU_FAULT_CALL_OS and no MSI-X message, and leaves the interrupt armed;
 * the miss after the RESTART interrupts as usual.  A re-enabled queue
 * posts the fault again, with an interrupt (its thread may be gone).
 */
static void test_call_os(void)
{
    Desc d = {
        .op = VGRU_OP_COPY, .flags = VGRU_DF_CALL_OS,
        .src = VA_BASE + 0x100, .dst = VA_BASE + 3 * PAGE, .len = 64,
    };
    Fault f;
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    fill_pattern(&v, 0x100, 64, 17);
    qtest_writel(v.qts, MSI_PA, 0);
    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_FAULT);
    g_assert_cmpuint(qtest_readl(v.qts, MSI_PA), ==, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 0);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmphex(f.va, ==, VA_BASE + 0x100);
    g_assert_cmphex(f.flags, ==, VGRU_FAULT_CALL_OS);
    dropin(&v, 0, VA_BASE, DATA_PA, 0);
    respond(&v, &f, VGRU_RESP_RESTART, 0);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmphex(f.flags, ==, VGRU_FAULT_WRITE);
    dropin(&v, 0, VA_BASE + 3 * PAGE, DATA_PA + 3 * PAGE, VGRU_TLB_WRITE);
    respond(&v, &f, VGRU_RESP_RESTART, 0);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_same(&v, 0x100, 3 * PAGE, 64);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 1);

    /* quiet, then the queue is disabled and enabled: loud again */
    d.src = VA_BASE + 5 * PAGE;
    qtest_writel(v.qts, MSI_PA, 0);
    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 1);
    wr(&v, VGRU_REG_CTRL, 0);
    wr(&v, VGRU_REG_CTRL, VGRU_CTRL_ENABLE);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 2);
    vgru_stop(&v);
}

/*
 * RESTART_CALLER (2.3): a command restarted by the thread that waits for
 * it runs on within that register write, so its next miss is there when
 * the write returns, and with CALL_OS that miss raises no interrupt
 * either.  Past caller-run-bytes the rest goes to a worker, whose miss
 * interrupts as usual.  Of two in one list only the first runs on.
 */
static void test_restart_caller(void)
{
    const uint64_t src = 0, dst = 128 * PAGE;
    Desc d = {
        .op = VGRU_OP_COPY, .flags = VGRU_DF_CALL_OS,
        .src = VA_BASE + src, .dst = VA_BASE + dst, .len = 64 * PAGE,
    };
    uint64_t va[64], pa[64];
    ListResp r[2];
    Fault f, f1;
    Vgru v;

    vgru_start_ctx(&v, ",tlb-sets=256", 0, 1);
    map_pages(&v, 0, src, 128 * PAGE);
    fill_pattern(&v, src, 128 * PAGE, 41);
    qtest_writel(v.qts, MSI_PA, 0);
    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmphex(f.va, ==, VA_BASE + dst);
    g_assert_cmphex(f.flags, ==, VGRU_FAULT_WRITE | VGRU_FAULT_CALL_OS);

    /* half the destination: the copy stops at its 33rd page, in the write */
    map_pages(&v, 0, dst, 32 * PAGE);
    respond(&v, &f, VGRU_RESP_RESTART_CALLER, 0);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmphex(f.va, ==, VA_BASE + dst + 32 * PAGE);
    g_assert_cmphex(f.flags, ==, VGRU_FAULT_WRITE | VGRU_FAULT_CALL_OS);
    assert_same(&v, src, dst, 32 * PAGE);

    /* the rest (192 KiB, past inline-bytes): done when the write returns */
    map_pages(&v, 0, dst + 32 * PAGE, 32 * PAGE);
    respond(&v, &f, VGRU_RESP_RESTART_CALLER, 0);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_DONE);
    assert_same(&v, src, dst, 64 * PAGE);
    g_assert_cmpuint(qtest_readl(v.qts, MSI_PA), ==, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_INTERRUPTS), ==, 0);
    vgru_stop(&v);

    /* caller-run-bytes=4096: one turn (256 KiB) in the write, then a worker */
    vgru_start_ctx(&v, ",tlb-sets=256,caller-run-bytes=4096", 0, 1);
    map_pages(&v, 0, src, 128 * PAGE);
    fill_pattern(&v, src, 128 * PAGE, 43);
    d.len = 128 * PAGE;
    qtest_writel(v.qts, MSI_PA, 0);
    cmd_start(&v, 0, 0, &d);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmphex(f.flags, ==, VGRU_FAULT_WRITE | VGRU_FAULT_CALL_OS);
    map_pages(&v, 0, dst, 100 * PAGE);
    map_pages(&v, 0, dst + 101 * PAGE, 27 * PAGE);
    respond(&v, &f, VGRU_RESP_RESTART_CALLER, 0);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmphex(f.va, ==, VA_BASE + dst + 100 * PAGE);
    g_assert_cmphex(f.flags, ==, VGRU_FAULT_WRITE);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);
    map_pages(&v, 0, dst + 100 * PAGE, PAGE);
    respond(&v, &f, VGRU_RESP_RESTART, 0);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_same(&v, src, dst, 128 * PAGE);
    vgru_stop(&v);

    /* CBs 0 and 1 each get half their destination and RESTART_CALLER */
    vgru_start_ctx(&v, ",tlb-sets=256", 0, 1);
    map_pages(&v, 0, src, 128 * PAGE);
    fill_pattern(&v, src, 128 * PAGE, 45);
    d.len = 64 * PAGE;
    cmd_start(&v, 0, 0, &d);
    g_assert_true(fault_pop(&v, &f));
    d.src += 64 * PAGE;
    d.dst += 64 * PAGE;
    cmd_start(&v, 0, 1, &d);
    g_assert_true(fault_pop(&v, &f1));
    for (int i = 0; i < 64; i++) {
        uint64_t off = dst + (i / 32) * 64 * PAGE + (i % 32) * PAGE;

        va[i] = (VA_BASE + off) | VGRU_TLB_WRITE;
        pa[i] = DATA_PA + off;
    }
    r[0] = (ListResp){ 0, f.seq, VGRU_RESP_RESTART_CALLER, 0 };
    r[1] = (ListResp){ 1, f1.seq, VGRU_RESP_RESTART_CALLER, 0 };
    list_write(&v, LIST_PA, 0, 64, va, pa, 2, r);
    list_run(&v, LIST_PA);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmpuint(f.cb, ==, 0);
    g_assert_cmphex(f.flags, ==, VGRU_FAULT_WRITE | VGRU_FAULT_CALL_OS);
    g_assert_cmpuint(cb_wait(&v, 0, 1), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmpuint(f.cb, ==, 1);
    g_assert_cmphex(f.va, ==, VA_BASE + dst + 96 * PAGE);
    g_assert_cmphex(f.flags, ==, VGRU_FAULT_WRITE);
    vgru_stop(&v);
}

/*
 * A short command (at most 16 KiB, not a BATCH) started or restarted
 * while the device runs ends in the register write itself: the
 * completion record, the data and the notice with its MSI-X message are
 * there at the very next access, with no worker wake-up in between.  A
 * longer one and anything while the VM is stopped go to a worker.
 */
static void test_inline_short(void)
{
    const uint64_t rec = COMP_OFF + 128;
    Desc d = {
        .op = VGRU_OP_COPY, .flags = VGRU_DF_COMPLETION | VGRU_DF_INTERRUPT,
        .src = VA_BASE + 0x40, .dst = VA_BASE + 4 * PAGE + 8, .len = 64,
        .comp = VA_BASE + rec,
    };
    Fault f;
    Vgru v;

    vgru_start_ctx(&v, "", 0, 1);
    map_pages(&v, 0, 0, 8 * PAGE);
    map_pages(&v, 0, COMP_OFF, PAGE);
    fill_pattern(&v, 0, 8 * PAGE, 31);
    qtest_writel(v.qts, MSI_PA, 0);

    /* START: everything at once */
    for (int i = 0; i < 64; i++) {
        d.src = VA_BASE + 0x40 + i * 64;
        qtest_writel(v.qts, DATA_PA + rec + VGRU_COMP_STATUS, 0);
        cmd_start(&v, 0, 0, &d);
        assert_comp(&v, rec, VGRU_CB_DONE, 0, 64, 0, 0);
        assert_same(&v, 0x40 + i * 64, 4 * PAGE + 8, 64);
        g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, i + 1);
        g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);
        qtest_writel(v.qts, MSI_PA, 0);
        g_assert_true(fault_pop(&v, &f));
        g_assert_cmpuint(f.type, ==, VGRU_FR_NOTICE);
    }

    /* RESTART after a fault on the destination: the same */
    d.src = VA_BASE + 0x40;
    d.dst = VA_BASE + 12 * PAGE + 8;
    qtest_writel(v.qts, DATA_PA + rec + VGRU_COMP_STATUS, 0);
    cmd_start(&v, 0, 0, &d);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_FAULT);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmpuint(f.type, ==, VGRU_FR_FAULT);
    dropin(&v, 0, VA_BASE + 12 * PAGE, DATA_PA + 12 * PAGE, VGRU_TLB_WRITE);
    qtest_writel(v.qts, MSI_PA, 0);
    respond(&v, &f, VGRU_RESP_RESTART, 0);
    assert_comp(&v, rec, VGRU_CB_DONE, 0, 64, d.dst, 0);
    assert_same(&v, 0x40, 12 * PAGE + 8, 64);
    g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);
    g_assert_true(fault_pop(&v, &f));
    g_assert_cmpuint(f.type, ==, VGRU_FR_NOTICE);

    /* the VM stopped: no DMA in the handler either */
    qtest_writel(v.qts, DATA_PA + rec + VGRU_COMP_STATUS, 0);
    qtest_memset(v.qts, DATA_PA + 4 * PAGE, 0, PAGE);
    d.dst = VA_BASE + 4 * PAGE + 8;
    vm_stop(&v);
    cmd_start(&v, 0, 0, &d);
    g_usleep(20 * 1000);
    g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==, VGRU_CB_ACTIVE);
    assert_filled(&v, 4 * PAGE, PAGE, 0);
    g_assert_cmpuint(qtest_readl(v.qts, DATA_PA + rec + VGRU_COMP_STATUS),
                     ==, 0);
    vm_cont(&v);
    g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
    assert_comp(&v, rec, VGRU_CB_DONE, 0, 64, 0, 0);
    assert_same(&v, 0x40, 4 * PAGE + 8, 64);
    notice_pop(&v, 0, 1, 0);
    g_assert_cmpuint(dev_stat(&v, VGRU_STAT_COMPLETED), ==, 66);
    vgru_stop(&v);
}

/*
 * inline-bytes bounds what START moves in the register write: a COPY up
 * to it ends there, a longer one (and with inline-bytes=0 every command)
 * is only queued.  x-dma-delay-us holds worker threads back, so a queued
 * command is still ACTIVE at the next access, then ends as it would have.
 */
static void test_inline_bytes(void)
{
    static const struct {
        const char *props;
        uint32_t len;
        bool inline_done;
    } cases[] = {
        { ",x-dma-delay-us=100000", 64, true },
        { ",x-dma-delay-us=100000,inline-bytes=0", 64, false },
        { ",x-dma-delay-us=100000,inline-bytes=64", 64, true },
        { ",x-dma-delay-us=100000,inline-bytes=64", 65, false },
    };
    const uint64_t rec = COMP_OFF + 128;

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        Desc d = {
            .op = VGRU_OP_COPY,
            .flags = VGRU_DF_COMPLETION | VGRU_DF_INTERRUPT,
            .src = VA_BASE + 0x40, .dst = VA_BASE + 4 * PAGE + 8,
            .len = cases[i].len, .comp = VA_BASE + rec,
        };
        Fault f;
        Vgru v;

        vgru_start_ctx(&v, cases[i].props, 0, 1);
        map_pages(&v, 0, 0, 8 * PAGE);
        map_pages(&v, 0, COMP_OFF, PAGE);
        fill_pattern(&v, 0, 4 * PAGE, 31);
        qtest_memset(v.qts, DATA_PA + 4 * PAGE, 0, PAGE);
        qtest_writel(v.qts, MSI_PA, 0);
        cmd_start(&v, 0, 0, &d);
        if (cases[i].inline_done) {
            g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==,
                             VGRU_CB_DONE);
        } else {
            g_assert_cmpuint(cb_rd(&v, 0, 0, VGRU_CB_STATUS), ==,
                             VGRU_CB_ACTIVE);
            assert_filled(&v, 4 * PAGE, PAGE, 0);
            g_assert_cmpuint(qtest_readl(v.qts, DATA_PA + rec +
                                         VGRU_COMP_STATUS), ==, 0);
            g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, 0);
        }
        g_assert_cmpuint(cb_wait(&v, 0, 0), ==, VGRU_CB_DONE);
        assert_comp(&v, rec, VGRU_CB_DONE, 0, d.len, 0, 0);
        assert_same(&v, 0x40, 4 * PAGE + 8, d.len);
        g_assert_cmpuint(rd(&v, VGRU_REG_FQ_TAIL), ==, 1);
        g_assert_cmphex(qtest_readl(v.qts, MSI_PA), ==, MSI_DATA);
        g_assert_true(fault_pop(&v, &f));
        g_assert_cmpuint(f.type, ==, VGRU_FR_NOTICE);
        g_assert_cmpuint(dev_stat(&v, VGRU_STAT_COMPLETED), ==, 1);
        g_assert_cmpuint(dev_stat(&v, VGRU_STAT_TLB_HITS), ==, 3);
        vgru_stop(&v);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/vgru/identity", test_identity);
    qtest_add_func("/vgru/copy-faults", test_copy_faults);
    qtest_add_func("/vgru/invalidate", test_invalidate);
    qtest_add_func("/vgru/permission-fault", test_permission_fault);
    qtest_add_func("/vgru/fault-fail", test_fault_fail);
    qtest_add_func("/vgru/queue-full", test_queue_full);
    qtest_add_func("/vgru/bad-input", test_bad_input);
    qtest_add_func("/vgru/dma-to-own-bar", test_dma_to_own_bar);
    qtest_add_func("/vgru/parallel-cbs", test_parallel_cbs);
    qtest_add_func("/vgru/inv-in-flight", test_inv_in_flight);
    qtest_add_func("/vgru/disable-in-flight", test_disable_in_flight);
    qtest_add_func("/vgru/unplug-in-flight", test_unplug_in_flight);
    qtest_add_func("/vgru/vm-stop", test_vm_stop);
    qtest_add_func("/vgru/fairness", test_fairness);
    qtest_add_func("/vgru/tlb-one-way", test_tlb_one_way);
    qtest_add_func("/vgru/tlb-fifo", test_tlb_fifo);
    qtest_add_func("/vgru/not-ram", test_not_ram);
    qtest_add_func("/vgru/ram-remap", test_ram_remap);
    qtest_add_func("/vgru/reenable-keeps-faults", test_reenable_keeps_faults);
    qtest_add_func("/vgru/range-end", test_range_end);
    qtest_add_func("/vgru/cb-layout", test_cb_layout);
    qtest_add_func("/vgru/resp-seq", test_resp_seq);
    qtest_add_func("/vgru/completion-record", test_completion_record);
    qtest_add_func("/vgru/completion-fault", test_completion_fault);
    qtest_add_func("/vgru/no-block", test_no_block);
    qtest_add_func("/vgru/notices", test_notices);
    qtest_add_func("/vgru/fault-order", test_fault_order);
    qtest_add_func("/vgru/fill", test_fill);
    qtest_add_func("/vgru/atomics", test_atomics);
    qtest_add_func("/vgru/copy-overlap", test_copy_overlap);
    qtest_add_func("/vgru/fill-inv-in-flight", test_fill_inv_in_flight);
    qtest_add_func("/vgru/batch", test_batch);
    qtest_add_func("/vgru/batch-fault", test_batch_fault);
    qtest_add_func("/vgru/fence", test_fence);
    qtest_add_func("/vgru/realize-checks", test_realize_checks);
    qtest_add_func("/vgru/vm-stop-batch", test_vm_stop_batch);
    qtest_add_func("/vgru/pcie", test_pcie);
    qtest_add_func("/vgru/q35-hotplug", test_q35_hotplug);
    qtest_add_func("/vgru/dropin-no-downgrade", test_dropin_no_downgrade);
    qtest_add_func("/vgru/inject-drop-irq", test_inject_drop_irq);
    qtest_add_func("/vgru/inject-fail-dma", test_inject_fail_dma);
    qtest_add_func("/vgru/inject-inv-delay", test_inject_inv_delay);
    qtest_add_func("/vgru/inject-evict", test_inject_evict);
    qtest_add_func("/vgru/migrate", test_migrate);
    qtest_add_func("/vgru/migrate-fence", test_migrate_fence);
    qtest_add_func("/vgru/migrate-bad-stream", test_migrate_bad_stream);
    qtest_add_func("/vgru/migrate-dirty", test_migrate_dirty);
    qtest_add_func("/vgru/huge-copy", test_huge_copy);
    qtest_add_func("/vgru/huge-bad", test_huge_bad);
    qtest_add_func("/vgru/huge-invalidate", test_huge_invalidate);
    qtest_add_func("/vgru/huge-read-over-write", test_huge_read_over_write);
    qtest_add_func("/vgru/huge-many", test_huge_many);
    qtest_add_func("/vgru/huge-hold", test_huge_hold);
    qtest_add_func("/vgru/huge-hold-evicted", test_huge_hold_evicted);
    qtest_add_func("/vgru/huge-hits", test_huge_hits);
    qtest_add_func("/vgru/huge-hold-kept", test_huge_hold_kept);
    qtest_add_func("/vgru/huge-hold-inv-waits", test_huge_hold_inv_waits);
    qtest_add_func("/vgru/huge-entries-prop", test_huge_entries_prop);
    qtest_add_func("/vgru/list", test_list);
    qtest_add_func("/vgru/list-bad", test_list_bad);
    qtest_add_func("/vgru/list-responses", test_list_responses);
    qtest_add_func("/vgru/irq-coalesce", test_irq_coalesce);
    qtest_add_func("/vgru/fault-at-doorbell", test_fault_at_doorbell);
    qtest_add_func("/vgru/inline-short", test_inline_short);
    qtest_add_func("/vgru/call-os", test_call_os);
    qtest_add_func("/vgru/restart-caller", test_restart_caller);
    qtest_add_func("/vgru/inline-bytes", test_inline_bytes);
    qtest_add_func("/vgru/migrate-irq-huge", test_migrate_irq_huge);
    return g_test_run();
}
