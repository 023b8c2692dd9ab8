/*
 * vgru device-model benchmark (figure 7 of `make bench`): warm COPY run by
 * the device model alone, driven over qtest with no guest and no TCG,
 * against host memcpy of the same size; and what a translation costs.
 *
 *   cd build/qemu/build && QTEST_QEMU_BINARY=./qemu-system-x86_64 \
 *       ./tests/qtest/vgru-qtest-bench OUT.json
 *
 * OUT.json (none or "-": stdout) receives one JSON object,
 * {"device_model": {...}}, in the shared benchmark result format; a table
 * goes to stderr.  "--quick" or VGRU_BENCH_QUICK=1 measures four sizes
 * with fewer repetitions.  For profiling, "--size BYTES" measures that
 * size alone (no translation cost figures, no JSON), "--two" only the
 * two-context figure (no JSON), "--pieces 4k|2m" lays that size out in
 * 4 KiB or 2 MiB pieces, and "--reps N" sets the timed runs;
 * VGRU_BENCH_PROPS=a=x,b=y adds device properties (e.g. workers=1).
 *
 * Method.  A size S is measured as a batch of N = max(1, 4 MiB / S)
 * commands on separate command blocks, each copying the same S bytes
 * (a program copying one buffer again and again); memcpy copies S bytes
 * N times between host buffers.  Every page is dropped into the TLB
 * first, so no command faults (the counters prove it).  The batch is
 * armed while the device is disabled (doorbells leave the commands
 * ACTIVE but nothing runs), then the device is enabled and the client
 * polls the completion counter.  Each device run is followed by one
 * memcpy run, and each side keeps its best, so that both copies start
 * from what the pause between runs left in the caches: memcpy timed
 * back to back kept its buffers hot while the device's were partly
 * evicted between runs (2 MiB: memcpy 73-84 ns per page back to back,
 * 92-96 in turn, on a loaded 2-core host).
 *
 * What is timed is QEMU's own CPU time (its process CPU clock, read
 * while its main loop is idle) from just before the enabling write to
 * just after the read that sees the last completion, less the CPU cost
 * of those qtest accesses, measured at start.  On a shared machine that
 * leaves out the time QEMU waits for a CPU, which wall time cannot; and
 * it makes the qtest socket's round trip (about 20 us) irrelevant.  The
 * client sleeps through the expected time before it polls, so that
 * typically two accesses are taken off.  memcpy is timed by the
 * benchmark thread's CPU clock.  Each figure is the best of many runs
 * (a device run that claims less than the best memcpy time is dropped:
 * the device does that memmove and more, and runs that lost QEMU CPU
 * time somewhere read 1.2x and 17x memcpy):
 * on a shared host other work only ever adds time, and the best of 11
 * runs of 4 KiB commands still varied 2x from one QEMU process to the
 * next (best of 300: within 10%).
 * Pieces.  Issue 12's host-side targets name the pieces the device moves
 * between translations, so the same warm copy (2 and 16 MiB) is also
 * timed with its pages in reverse order in guest RAM, through 4 KiB
 * translations (no two pages merge: every page a piece, as a process's
 * scattered pages are) and through 2 MiB ones (every 2 MiB a piece), in
 * batches of 16 MiB (the subtracted cost of the qtest accesses varies by
 * microseconds), against host memcpy in one call and against host memcpy
 * in the same pieces and order.  A 16 MiB copy in reversed 4 KiB pieces
 * costs host memcpy itself up to twice what one call does (hardware
 * prefetch restarts at every page), which bounds what the device can
 * reach there.
 * Two contexts at once (two workers) against one are timed in wall time,
 * so that figure needs two otherwise idle host cores; the same copies by
 * one and by two host threads, timed in turn, say what the host gave.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include <math.h>
#include "qemu/atomic.h"
#include "qemu/madvise.h"
#include "qemu/memalign.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/pci-pc.h"
#include "hw/misc/vgru_regs.h"

#define PAGE        VGRU_PAGE_SIZE

/* 1024 command blocks; 64 Ki TLB entries hold a warm 64 MiB copy. */
#define CONTEXTS    32
#define CBS         32
#define TLB_SETS    8192
#define TLB_WAYS    8

/*
 * Guest-physical layout (the qtest guest runs no code; -m 512M) and the
 * "process": VA_SRC + x is SRC_PA + x, VA_DST + x is DST_PA + x.  The two
 * virtual ranges are a multiple of SET_SPAN apart, so page i of the
 * source and of the destination share a TLB set.
 */
#define FQ_PA       0x100000ULL
#define FQ_RECORDS  64
#define FILLER_PA   (32 * MiB)
#define SRC_PA      (64 * MiB)
#define DST_PA      (192 * MiB)
#define SET_SPAN    ((uint64_t)TLB_SETS * PAGE)
#define VA_SRC      0x7f0000000000ULL
#define VA_DST      (VA_SRC + 4 * SET_SPAN)

#define MAX_COPY    (64 * MiB)
#define BATCH_BYTES (4 * MiB)
#define TEST_PIECE  (256 * KiB)         /* translation cost tests: */
#define TEST_CMDS   CBS                 /* one context's CBs */
#define SKEW        2048                /* splits every page in two */
#define PAR_PIECE   (2 * MiB)           /* two contexts at once: */
#define PAR_DST     (128 * MiB)         /* the second one's destination */
#define PIECES_BIG  (16 * MiB)          /* copies in 4 KiB and 2 MiB pieces, */
                                        /* and the bytes of their batches */

typedef struct Bench {
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev;
    QPCIBar ctrl;
    QPCIBar win;
    clockid_t qemu_clock;       /* QEMU's process CPU clock */
    uint64_t completed;         /* commands the device has completed */
    uint32_t inv_seq;
    double rtt_ns;              /* median qtest register read, wall */
    double access_ns;           /* QEMU CPU time per register access */
} Bench;

/*
 * How a batch's pages sit in guest-physical memory.  CONTIG: page i of
 * the source is SRC_PA + i pages (so the device merges a turn's pages
 * into one piece).  PAGES: the pages in reverse order, each 4 KiB
 * translation its own piece, as a process's scattered 4 KiB pages are.
 * HUGE: 2 MiB translations, the 2 MiB blocks in reverse order, so each
 * is a piece of its own.
 */
typedef enum Layout {
    LAYOUT_CONTIG,
    LAYOUT_PAGES,
    LAYOUT_HUGE,
} Layout;

/* N commands in CBs first.. (numbered across contexts), same operands. */
typedef struct Batch {
    uint64_t piece;
    uint32_t first;
    uint32_t n;
    uint64_t dst_skew;          /* destination offset into its page */
    int64_t est;                /* expected QEMU CPU time, to sleep */
    int64_t cpu;                /* best QEMU CPU time of timed runs */
    int64_t last;               /* that of the last run, 0 if dropped */
    uint64_t dst_pa;            /* destination bus offset from DST_PA */
    Layout layout;
} Batch;

typedef struct Result {
    uint64_t size;
    uint32_t n;
    double dev_ns;              /* best QEMU CPU time of the batch */
    double cpy_ns;              /* best CPU time of N host memcpys */
    double ratio_med;           /* median over runs of memcpy / device */
    double pcs_ns;              /* best CPU time of memcpy in the pieces */
    double pcs_med;             /* median over runs of that / device */
} Result;

static Bench *live;

static void G_GNUC_PRINTF(1, 2) die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "vgru-qtest-bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    if (live) {
        qtest_quit(live->qts);
    }
    exit(1);
}

static int64_t clock_ns(clockid_t clock)
{
    struct timespec ts;

    if (clock_gettime(clock, &ts)) {
        die("clock_gettime: %s", strerror(errno));
    }
    return ts.tv_sec * NANOSECONDS_PER_SECOND + ts.tv_nsec;
}

static int64_t now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static void nap(int64_t ns)
{
    if (ns > 0) {
        g_usleep(ns / 1000);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static uint32_t rd(Bench *b, uint32_t reg)
{
    return qpci_io_readl(b->dev, b->ctrl, reg);
}

static void wr(Bench *b, uint32_t reg, uint32_t val)
{
    qpci_io_writel(b->dev, b->ctrl, reg, val);
}

static void wr64(Bench *b, uint32_t reg, uint64_t val)
{
    qpci_io_writeq(b->dev, b->ctrl, reg, val);
}

static uint64_t dev_stat(Bench *b, unsigned n)
{
    return qpci_io_readq(b->dev, b->ctrl, VGRU_REG_STAT(n));
}

static uint64_t cb_off(uint32_t g, uint32_t reg)
{
    return (uint64_t)(g / CBS) * VGRU_WINDOW_STRIDE +
           (g % CBS) * VGRU_CB_STRIDE + reg;
}

static void bench_start(Bench *b)
{
    enum { N = 201 };
    g_autofree char *pidfile = g_strdup_printf("%s/vgru-qtest-bench-%d.pid",
                                               g_get_tmp_dir(), getpid());
    g_autofree char *pid = NULL;
    const char *props = getenv("VGRU_BENCH_PROPS");
    int64_t t[N];

    memset(b, 0, sizeof(*b));
    b->qts = qtest_initf("-machine pc -nodefaults -m 512M -pidfile %s "
                         "-device vgru,addr=04.0,contexts=%d,cbs=%d,"
                         "tlb-sets=%d,tlb-ways=%d%s%s", pidfile,
                         CONTEXTS, CBS, TLB_SETS, TLB_WAYS,
                         props ? "," : "", props ? props : "");
    live = b;
    if (!g_file_get_contents(pidfile, &pid, NULL, NULL) ||
        clock_getcpuclockid(atoi(pid), &b->qemu_clock)) {
        die("cannot read QEMU's CPU clock (pid file %s)", pidfile);
    }
    unlink(pidfile);
    b->bus = qpci_new_pc(b->qts, NULL);
    b->dev = qpci_device_find(b->bus, QPCI_DEVFN(4, 0));
    if (!b->dev) {
        die("no vgru device at 00:04.0");
    }
    qpci_device_enable(b->dev);
    b->ctrl = qpci_iomap(b->dev, VGRU_CTRL_BAR, NULL);
    b->win = qpci_iomap(b->dev, VGRU_WINDOW_BAR, NULL);
    if (rd(b, VGRU_REG_ID) != VGRU_ID) {
        die("device at 00:04.0 is not vgru");
    }

    wr64(b, VGRU_REG_FQ_BASE, FQ_PA);
    wr(b, VGRU_REG_FQ_SIZE, FQ_RECORDS);
    for (uint32_t c = 0; c < CONTEXTS; c++) {
        wr(b, VGRU_REG_CTX_SEL, c);
        wr(b, VGRU_REG_CTX_TAG, c);
        wr(b, VGRU_REG_CTX_CMD, VGRU_CTX_CMD_ENABLE);
    }

    /* what one register access costs, in wall time and in QEMU's CPU */
    for (int i = 0; i < N; i++) {
        int64_t t0 = now_ns();

        rd(b, VGRU_REG_STATUS);
        t[i] = now_ns() - t0;
    }
    qsort(t, N, sizeof(t[0]), cmp_i64);
    b->rtt_ns = t[N / 2];
    b->access_ns = INFINITY;
    for (int g = 0; g < 5; g++) {
        int64_t c0 = clock_ns(b->qemu_clock);

        for (int i = 0; i < N; i++) {
            dev_stat(b, VGRU_STAT_COMPLETED);
        }
        b->access_ns = MIN(b->access_ns,
                           (clock_ns(b->qemu_clock) - c0) / (double)N);
    }
}

static void invalidate_all(Bench *b)
{
    wr(b, VGRU_REG_INV_CMD, VGRU_INV_CMD_ALL);
    if (rd(b, VGRU_REG_INV_DONE) != ++b->inv_seq) {
        die("invalidation did not complete");
    }
}

static void dropin(Bench *b, uint64_t va, uint64_t pa)
{
    wr64(b, VGRU_REG_TLB_VADDR, va);
    wr64(b, VGRU_REG_TLB_PADDR, pa);
    wr(b, VGRU_REG_TLB_CMD, VGRU_TLB_CMD_DROPIN);
}

static void dropin_huge(Bench *b, uint64_t va, uint64_t pa)
{
    wr(b, VGRU_REG_TLB_FLAGS, VGRU_TLB_WRITE | VGRU_TLB_HUGE);
    dropin(b, va, pa);
    wr(b, VGRU_REG_TLB_FLAGS, VGRU_TLB_WRITE);
}

/* Bus offset of the @i-th of @n units of @size in @bt's layout. */
static uint64_t unit_off(const Batch *bt, uint64_t i, uint64_t n,
                         uint64_t size)
{
    return (bt->layout == LAYOUT_CONTIG ? i : n - 1 - i) * size;
}

/*
 * Drop in, as the driver would, the pages the batch touches, in each of
 * its contexts.  With @deep, first fill all but two ways of each set
 * they use with other pages, so that every lookup scans TLB_WAYS - 2
 * more entries before it hits.
 */
static void batch_map(Bench *b, const Batch *bt, bool deep)
{
    uint64_t dst = VA_DST + bt->dst_skew;
    uint64_t src_pages = DIV_ROUND_UP(bt->piece, PAGE);
    uint64_t dst_pages = DIV_ROUND_UP(bt->dst_skew + bt->piece, PAGE);
    uint64_t blocks = bt->piece / VGRU_HUGE_SIZE;
    uint32_t last = (bt->first + bt->n - 1) / CBS;

    wr(b, VGRU_REG_TLB_FLAGS, VGRU_TLB_WRITE);
    for (uint32_t ctx = bt->first / CBS; ctx <= last; ctx++) {
        wr(b, VGRU_REG_TLB_CTX, ctx);
        if (bt->layout == LAYOUT_HUGE) {
            for (uint64_t i = 0; i < blocks; i++) {
                uint64_t off = unit_off(bt, i, blocks, VGRU_HUGE_SIZE);

                dropin_huge(b, VA_SRC + i * VGRU_HUGE_SIZE, SRC_PA + off);
                dropin_huge(b, VA_DST + i * VGRU_HUGE_SIZE,
                            DST_PA + bt->dst_pa + off);
            }
            continue;
        }
        for (uint64_t m = 1; deep && m <= (TLB_WAYS - 2) / 2; m++) {
            for (uint64_t i = 0; i < src_pages; i++) {
                dropin(b, VA_SRC + m * SET_SPAN + i * PAGE, FILLER_PA);
                dropin(b, VA_DST + m * SET_SPAN + i * PAGE, FILLER_PA);
            }
        }
        for (uint64_t i = 0; i < src_pages; i++) {
            dropin(b, VA_SRC + i * PAGE,
                   SRC_PA + unit_off(bt, i, src_pages, PAGE));
        }
        for (uint64_t i = 0; i < dst_pages; i++) {
            dropin(b, (dst & ~(PAGE - 1)) + i * PAGE,
                   DST_PA + bt->dst_pa + unit_off(bt, i, dst_pages, PAGE));
        }
    }
}

/* Write the operands (they stay in the CBs) and the data. */
static void batch_arm(Bench *b, const Batch *bt, uint8_t val)
{
    for (uint32_t i = 0; i < bt->n; i++) {
        uint32_t g = bt->first + i;

        qpci_io_writel(b->dev, b->win, cb_off(g, VGRU_CB_OPCODE),
                       VGRU_OP_COPY);
        qpci_io_writeq(b->dev, b->win, cb_off(g, VGRU_CB_SRC), VA_SRC);
        qpci_io_writeq(b->dev, b->win, cb_off(g, VGRU_CB_DST),
                       VA_DST + bt->dst_skew);
        qpci_io_writeq(b->dev, b->win, cb_off(g, VGRU_CB_LEN), bt->piece);
    }
    qtest_memset(b->qts, SRC_PA, val, bt->piece);
    qtest_memset(b->qts, DST_PA + bt->dst_pa, 0,
                 bt->dst_skew + bt->piece + PAGE);
}

/*
 * Run the batch once, keeping its best QEMU CPU time.  The client sleeps
 * through the expected time (oversleeping costs wall time only), then
 * polls a few times per expected time; with no expectation yet it backs
 * off from 20 us.
 */
static void batch_run(Bench *b, Batch *bt)
{
    uint64_t want = b->completed + bt->n;
    bool known = bt->est != INT64_MAX;
    int64_t t0, c0, cpu, gap = known ? bt->est / 4 + 20000 : 20000;
    unsigned accesses = 1;

    wr(b, VGRU_REG_CTRL, 0);
    for (uint32_t i = 0; i < bt->n; i++) {
        qpci_io_writel(b->dev, b->win, cb_off(bt->first + i, VGRU_CB_DOORBELL),
                       VGRU_CB_START);
    }
    rd(b, VGRU_REG_STATUS);         /* QEMU is idle after this one */

    c0 = clock_ns(b->qemu_clock);
    t0 = now_ns();
    wr(b, VGRU_REG_CTRL, VGRU_CTRL_ENABLE);
    nap(known ? bt->est + bt->est / 8 : 0);
    for (;;) {
        accesses++;
        if (dev_stat(b, VGRU_STAT_COMPLETED) == want) {
            break;
        }
        /* a command that faulted or failed would never complete */
        if (accesses % 64 == 0) {
            accesses += 2;
            if (dev_stat(b, VGRU_STAT_ERRORS) || rd(b, VGRU_REG_FQ_TAIL) ||
                now_ns() - t0 > 60 * NANOSECONDS_PER_SECOND) {
                die("%u x %" PRIu64 " byte copy did not complete: "
                    "%" PRIu64 " errors, %u faults",
                    bt->n, bt->piece, dev_stat(b, VGRU_STAT_ERRORS),
                    rd(b, VGRU_REG_FQ_TAIL));
            }
        }
        nap(gap);
        gap = known ? gap : MIN(gap * 2, 5 * 1000 * 1000);
    }
    cpu = clock_ns(b->qemu_clock) - c0 - accesses * b->access_ns;
    /*
     * With many polls (QEMU starved of CPU), the estimated cost of the
     * accesses can exceed what QEMU spent: such a run says nothing, and
     * as a best it would be negative (seen on a loaded host).
     */
    bt->last = MAX(cpu, 0);
    if (cpu > 0) {
        bt->est = MIN(bt->est, cpu);
        bt->cpu = MIN(bt->cpu, cpu);
    }
    b->completed = want;
}

/*
 * Check the destination: both ends copied, nothing written past them;
 * with the pages out of order, every byte.
 */
static void batch_check(Bench *b, const Batch *bt, uint8_t val)
{
    uint64_t d = DST_PA + bt->dst_pa + bt->dst_skew;

    if (bt->layout != LAYOUT_CONTIG) {
        g_autofree uint8_t *buf = g_malloc(bt->piece);

        qtest_bufread(b->qts, d, buf, bt->piece);
        for (uint64_t i = 0; i < bt->piece; i++) {
            if (buf[i] != val) {
                die("%" PRIu64 " byte copy went wrong at byte %" PRIu64,
                    bt->piece, i);
            }
        }
    }
    if (qtest_readb(b->qts, d) != val ||
        qtest_readb(b->qts, d + bt->piece - 1) != val ||
        qtest_readb(b->qts, d + bt->piece) != 0 ||
        (bt->dst_skew && qtest_readb(b->qts, d - 1) != 0)) {
        die("%" PRIu64 " byte copy went wrong", bt->piece);
    }
}

/* Arm, run once (a warm-up) and check, then run @reps more times. */
static void batch_time(Bench *b, Batch *bt, uint8_t val, int reps)
{
    batch_arm(b, bt, val);
    bt->est = INT64_MAX;
    batch_run(b, bt);
    batch_check(b, bt, val);
    bt->cpu = INT64_MAX;
    for (int r = 0; r < reps; r++) {
        batch_run(b, bt);
    }
}

/*
 * Wall time of one run of the batches @bt[0..@n) at once, from the
 * enabling write to the read that sees the last completion.  The client
 * naps between polls, so that its qtest accesses do not take a core from
 * the workers; with runs of several ms the nap costs a few percent.
 */
static int64_t batches_wall(Bench *b, const Batch *bt, int n)
{
    uint64_t want = b->completed;
    int64_t t0;

    wr(b, VGRU_REG_CTRL, 0);
    for (int k = 0; k < n; k++) {
        want += bt[k].n;
        for (uint32_t i = 0; i < bt[k].n; i++) {
            qpci_io_writel(b->dev, b->win,
                           cb_off(bt[k].first + i, VGRU_CB_DOORBELL),
                           VGRU_CB_START);
        }
    }
    rd(b, VGRU_REG_STATUS);
    t0 = now_ns();
    wr(b, VGRU_REG_CTRL, VGRU_CTRL_ENABLE);
    while (dev_stat(b, VGRU_STAT_COMPLETED) != want) {
        if (dev_stat(b, VGRU_STAT_ERRORS) ||
            now_ns() - t0 > 60 * NANOSECONDS_PER_SECOND) {
            die("the two-context copies did not complete");
        }
        nap(100 * 1000);
    }
    b->completed = want;
    return now_ns() - t0;
}

/* CPU time of @n memcpys of @piece bytes. */
static int64_t memcpy_once(uint8_t *dst, const uint8_t *src, uint64_t piece,
                           uint32_t n)
{
    int64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);

    for (uint32_t i = 0; i < n; i++) {
        memcpy(dst, src, piece);
        barrier();                              /* keep every copy */
    }
    return clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
}

/*
 * CPU time of @n copies of @size bytes as the device moves @layout: in
 * pieces of @unit bytes, the last first (as the layout places them).
 */
static int64_t memcpy_pieces_once(uint8_t *dst, const uint8_t *src,
                                  uint64_t size, uint32_t n, uint64_t unit)
{
    int64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);

    for (uint32_t i = 0; i < n; i++) {
        for (uint64_t off = size; off;) {
            off -= unit;
            memcpy(dst + off, src + off, unit);
        }
        barrier();                              /* keep every copy */
    }
    return clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
}

/* ---- JSON --------------------------------------------------------------- */

static void json_num(GString *s, double v)
{
    if (!isfinite(v)) {
        g_string_append(s, "null");
    } else if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v) {
        g_string_append_printf(s, "%" PRId64, (int64_t)v);
    } else if (v >= 100 || v <= -100) {
        g_string_append_printf(s, "%.1f", v);
    } else {
        g_string_append_printf(s, "%.4g", v);
    }
}

static void json_pair(GString *s, bool *first, const char *key, double v)
{
    g_string_append_printf(s, "%s\n      \"%s\": ", *first ? "" : ",", key);
    json_num(s, v);
    *first = false;
}

static double mib_s(uint64_t bytes, double ns)
{
    return ns > 0 ? bytes / (double)MiB / (ns / 1e9) : NAN;
}

static double page_ns(const Result *r, bool device)
{
    return (device ? r->dev_ns : r->cpy_ns) /
           ((double)r->n * r->size / PAGE);
}

static void json_plot(GString *s, const char *name, const char *title,
                      const char *y_label, const Result *res, int nres,
                      bool per_page, bool last)
{
    g_string_append_printf(s,
        "      {\n"
        "        \"name\": \"%s\",\n"
        "        \"title\": \"%s\",\n"
        "        \"x_label\": \"copy size (bytes)\",\n"
        "        \"y_label\": \"%s\",\n"
        "        \"x_log\": true, \"y_log\": true, \"kind\": \"line\",\n"
        "        \"series\": [", name, title, y_label);
    for (int k = 0; k < 2; k++) {
        g_string_append_printf(s, "%s\n          { \"name\": \"%s\", "
                               "\"points\": [", k ? "," : "",
                               k ? "host memcpy" : "device model");
        for (int i = 0; i < nres; i++) {
            const Result *r = &res[i];

            g_string_append_printf(s, "%s[%" PRIu64 ", ", i ? ", " : "",
                                   r->size);
            json_num(s, per_page ? page_ns(r, !k) :
                     mib_s(r->n * r->size, k ? r->cpy_ns : r->dev_ns));
            g_string_append(s, "]");
        }
        g_string_append(s, "] }");
    }
    g_string_append_printf(s, "\n        ]\n      }%s\n", last ? "" : ",");
}

static const char *size_name(uint64_t size)
{
    static char buf[24];

    if (size >= MiB) {
        snprintf(buf, sizeof(buf), "%" PRIu64 "m", size / MiB);
    } else {
        snprintf(buf, sizeof(buf), "%" PRIu64 "k", size / KiB);
    }
    return buf;
}

/* libqtest's messages must not mix with JSON on stdout */
static void print_to_stderr(const gchar *msg)
{
    fputs(msg, stderr);
}

/*
 * Time @bt against host memcpy of the same size, @reps runs of each in
 * turn, into @r; print a table row labelled @label.
 */
static void measure(Bench *b, Batch *bt, Result *r, int reps,
                    uint8_t *hsrc, uint8_t *hdst, uint8_t val,
                    const char *label)
{
    uint64_t unit = bt->layout == LAYOUT_PAGES ? PAGE :
                    bt->layout == LAYOUT_HUGE ? VGRU_HUGE_SIZE : 0;
    g_autofree int64_t *dev = g_new(int64_t, reps);
    g_autofree double *ratio = g_new(double, reps);
    g_autofree double *pratio = g_new(double, reps);
    int dropped = 0;

    invalidate_all(b);
    batch_map(b, bt, false);
    r->size = bt->piece;
    r->n = bt->n;
    batch_time(b, bt, val, 0);
    memcpy(hdst, hsrc, bt->piece);              /* warm-up */
    memcpy(hdst + MAX_COPY / 2, hsrc + MAX_COPY / 2, bt->piece);
    r->cpy_ns = r->pcs_ns = INFINITY;
    /* in turn, so that both copies start from what a pause leaves */
    for (int rep = 0; rep < reps; rep++) {
        batch_run(b, bt);
        dev[rep] = bt->last;
        ratio[rep] = memcpy_once(hdst, hsrc, bt->piece, bt->n);
        r->cpy_ns = MIN(r->cpy_ns, ratio[rep]);
        ratio[rep] = dev[rep] ? ratio[rep] / dev[rep] : 0;
        if (unit) {
            /* buffers of its own: memcpy's would be hot from the last */
            pratio[rep] = memcpy_pieces_once(hdst + MAX_COPY / 2,
                                             hsrc + MAX_COPY / 2,
                                             bt->piece, bt->n, unit);
            r->pcs_ns = MIN(r->pcs_ns, pratio[rep]);
            pratio[rep] = dev[rep] ? pratio[rep] / dev[rep] : 0;
        }
    }
    if (memcmp(hdst, hsrc, bt->piece) ||
        (unit && memcmp(hdst + MAX_COPY / 2, hsrc + MAX_COPY / 2,
                        bt->piece))) {
        die("host memcpy went wrong");
    }
    if (dev_stat(b, VGRU_STAT_TLB_MISSES) || dev_stat(b, VGRU_STAT_ERRORS)) {
        die("a measured copy faulted or failed");
    }
    /*
     * The device moves the bytes with the same host memmove, and does
     * more: a run that claims less than the best memcpy time lost QEMU
     * CPU time somewhere (seen: 1.2x memcpy's speed at 4 KiB, 17x at 2
     * MiB), and the best of many runs would pick it.
     */
    r->dev_ns = INFINITY;
    for (int rep = 0; rep < reps; rep++) {
        if (dev[rep] >= r->cpy_ns) {
            r->dev_ns = MIN(r->dev_ns, dev[rep]);
        } else {
            dropped++;
        }
    }
    /*
     * The ratio of each pair of runs, device and memcpy one after the
     * other: its median is steadier than the ratio of the bests on a
     * shared host, where one lucky run makes a best.
     */
    qsort(ratio, reps, sizeof(ratio[0]), cmp_double);
    r->ratio_med = ratio[reps / 2];
    r->pcs_med = NAN;
    if (unit) {
        qsort(pratio, reps, sizeof(pratio[0]), cmp_double);
        r->pcs_med = pratio[reps / 2];
    }
    if (dropped) {
        fprintf(stderr, "vgru-qtest-bench: %d of %d runs of %s dropped "
                "(QEMU CPU time implausibly low)\n", dropped, reps, label);
    }
    fprintf(stderr, "%9s %5u %12.0f %12.0f %7.3f %11.1f %11.1f %7.3f",
            label, r->n, mib_s(r->n * r->size, r->dev_ns),
            mib_s(r->n * r->size, r->cpy_ns), r->cpy_ns / r->dev_ns,
            page_ns(r, true), page_ns(r, false), r->ratio_med);
    if (unit) {
        fprintf(stderr, " %11.1f %7.3f", r->pcs_ns * PAGE /
                ((double)r->n * r->size), r->pcs_med);
    }
    fprintf(stderr, "\n");
}

/* One host thread's share of the two-thread memcpy control. */
typedef struct HostCopy {
    uint8_t *dst;
    const uint8_t *src;
} HostCopy;

static gpointer host_copy_thread(gpointer opaque)
{
    HostCopy *hc = opaque;

    memcpy_once(hc->dst, hc->src, PAR_PIECE, CBS);
    return NULL;
}

/*
 * Wall time of CBS memcpys of PAR_PIECE by @n host threads at once, each
 * to its own destination, the same shape as the device's two-context
 * run: what this host's cores give two copies at that moment.
 */
static int64_t host_copies_wall(uint8_t *hsrc, uint8_t *hdst, int n)
{
    HostCopy hc[2];
    GThread *th[2];
    int64_t t0 = now_ns();

    for (int k = 0; k < n; k++) {
        hc[k] = (HostCopy) { hdst + k * (MAX_COPY / 2), hsrc };
        th[k] = g_thread_new("vgru-bench-copy", host_copy_thread, &hc[k]);
    }
    for (int k = 0; k < n; k++) {
        g_thread_join(th[k]);
    }
    return now_ns() - t0;
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
    static const uint64_t full[] = {
        4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 2 * MiB,
        4 * MiB, 16 * MiB, 64 * MiB,
    };
    static const uint64_t quick_sizes[] = {
        4 * KiB, 64 * KiB, 2 * MiB, 16 * MiB,
    };
    const char *env = getenv("VGRU_BENCH_QUICK");
    bool quick = env && *env && strcmp(env, "0") != 0;
    const char *out = "-";
    const uint64_t *sizes;
    Result res[ARRAY_SIZE(full)];
    int nres, reps, treps, opt_reps = 0;
    uint64_t opt_size = 0;
    bool opt_two = false;
    Layout opt_layout = LAYOUT_CONTIG;
    uint8_t *hsrc, *hdst;
    int64_t start = now_ns();
    uint32_t tn = TEST_CMDS, tpages = TEST_PIECE / PAGE;
    /* the same copy aligned, with its destination split, and "deep" */
    Batch al = { TEST_PIECE, 0, tn, 0 };
    Batch sp = { TEST_PIECE, CBS, tn, SKEW };
    Batch dp = { TEST_PIECE, 2 * CBS, tn, 0 };
    double al_ns = 0, sp_ns = 0, dp_ns = 0, cpy_ns = INFINITY;
    double piece_ns, deep_ns, over_ns;
    /* two contexts at once: contexts 0 and 1 are workers 0 and 1 */
    Batch par[2] = {
        { PAR_PIECE, 0, CBS, 0 },
        { PAR_PIECE, CBS, CBS, 0, .dst_pa = PAR_DST },
    };
    int64_t one_ns = INT64_MAX, two_ns = INT64_MAX;
    int64_t host_one_ns = INT64_MAX, host_two_ns = INT64_MAX;
    /* a copy of 2 MiB and one of 16 MiB, in 4 KiB and in 2 MiB pieces */
    static const struct {
        uint64_t size;
        Layout layout;
        const char *label;
        const char *key;
    } pieces[] = {
        { 2 * MiB, LAYOUT_PAGES, "2m/4k", "2m_in_4k_pieces" },
        { 2 * MiB, LAYOUT_HUGE, "2m/2m", "2m_in_2m_pieces" },
        { PIECES_BIG, LAYOUT_PAGES, "16m/4k", "16m_in_4k_pieces" },
        { PIECES_BIG, LAYOUT_HUGE, "16m/2m", "16m_in_2m_pieces" },
    };
    Result pres[ARRAY_SIZE(pieces)];
    g_autoptr(GString) js = g_string_new("");
    g_autofree char *what = NULL;
    bool first;
    Bench b;

    g_set_print_handler(print_to_stderr);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = true;
        } else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            opt_size = g_ascii_strtoull(argv[++i], NULL, 0);
            if (opt_size < 8 || opt_size > MAX_COPY) {
                fprintf(stderr, "vgru-qtest-bench: --size 8..%llu\n",
                        (unsigned long long)MAX_COPY);
                return 2;
            }
        } else if (!strcmp(argv[i], "--pieces") && i + 1 < argc) {
            i++;
            if (!strcmp(argv[i], "4k")) {
                opt_layout = LAYOUT_PAGES;
            } else if (!strcmp(argv[i], "2m")) {
                opt_layout = LAYOUT_HUGE;
            } else {
                fprintf(stderr, "vgru-qtest-bench: --pieces 4k or 2m\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--two")) {
            opt_two = true;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            opt_reps = atoi(argv[++i]);
            if (opt_reps < 1) {
                fprintf(stderr, "vgru-qtest-bench: --reps N, N >= 1\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: QTEST_QEMU_BINARY=./qemu-system-x86_64 %s "
                   "[--quick] [--size BYTES [--pieces 4k|2m]] [--two] "
                   "[--reps N] [OUT.json]\n",
                   argv[0]);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "vgru-qtest-bench: unknown option %s\n", argv[i]);
            return 2;
        } else {
            out = argv[i];
        }
    }
    if (opt_layout != LAYOUT_CONTIG &&
        (!opt_size || opt_size > MAX_COPY / 2 ||
         opt_size % (opt_layout == LAYOUT_HUGE ? VGRU_HUGE_SIZE : PAGE))) {
        fprintf(stderr, "vgru-qtest-bench: --pieces needs a --size of at "
                "most %llu bytes that is a multiple of the piece size\n",
                (unsigned long long)MAX_COPY / 2);
        return 2;
    }
    if (strcmp(out, "-")) {
        g_autofree char *dir = g_path_get_dirname(out);

        if (access(dir, W_OK)) {
            fprintf(stderr, "vgru-qtest-bench: cannot write to %s: %s\n", dir,
                    strerror(errno));
            return 2;
        }
    }
    if (!getenv("QTEST_QEMU_BINARY")) {
        fprintf(stderr, "vgru-qtest-bench: set QTEST_QEMU_BINARY to the "
                "qemu-system-x86_64 built with the vgru device\n");
        return 2;
    }
    sizes = quick ? quick_sizes : full;
    nres = quick ? ARRAY_SIZE(quick_sizes) : ARRAY_SIZE(full);
    reps = quick ? 101 : 301;
    treps = quick ? 60 : 100;
    if (opt_size) {
        sizes = &opt_size;
        nres = 1;
    }
    if (opt_reps) {
        reps = opt_reps;
    }

    /* host buffers like guest RAM: 2 MiB aligned, huge pages if allowed */
    hsrc = qemu_memalign(2 * MiB, MAX_COPY);
    hdst = qemu_memalign(2 * MiB, MAX_COPY);
    qemu_madvise(hsrc, MAX_COPY, QEMU_MADV_HUGEPAGE);
    qemu_madvise(hdst, MAX_COPY, QEMU_MADV_HUGEPAGE);
    memset(hsrc, 0x5a, MAX_COPY);
    memset(hdst, 0, MAX_COPY);

    bench_start(&b);
    fprintf(stderr, "vgru-qtest-bench: qtest register access: "
            "%.1f us round trip, %.1f us of QEMU CPU\n",
            b.rtt_ns / 1000, b.access_ns / 1000);
    fprintf(stderr, "%9s %5s %12s %12s %7s %11s %11s %7s\n", "size", "cmds",
            "device MiB/s", "memcpy MiB/s", "ratio", "dev ns/page",
            "cpy ns/page", "median");

    for (int k = 0; k < nres && !opt_two; k++) {
        Batch bt = { sizes[k], 0, MAX(1, BATCH_BYTES / sizes[k]), 0,
                     .layout = opt_layout };

        measure(&b, &bt, &res[k], reps, hsrc, hdst, k + 1,
                size_name(sizes[k]));
    }

    if (opt_size) {
        goto end;                       /* profiling one size */
    }
    if (opt_two) {
        goto two;                       /* profiling two contexts */
    }

    /*
     * Issue 12's host-side targets name pieces, the runs the device moves
     * between translations: the same warm copy with every 4 KiB page out
     * of order in guest-physical memory (each page a piece, as a
     * process's scattered pages are) and with 2 MiB translations of
     * blocks out of order (each 2 MiB a piece), against host memcpy.
     */
    fprintf(stderr, "size/piece: pages out of order in guest RAM; memcpy "
            "also in those pieces, ns/page and median ratio:\n");
    for (int k = 0; k < ARRAY_SIZE(pieces); k++) {
        Batch bt = { pieces[k].size, 0, PIECES_BIG / pieces[k].size, 0,
                     .layout = pieces[k].layout };

        measure(&b, &bt, &pres[k], reps, hsrc, hdst, 0x41 + k,
                pieces[k].label);
    }

    /*
     * What a translation costs, from three batches of the same copy in
     * three contexts, run in turn so that drift hits them alike.  Split:
     * the destination 2 KiB into its page, so each page is moved in two
     * pieces; every extra piece costs two more TLB lookups, two more DMA
     * dispatches and a loop step, for the same bytes.  Deep: the TLB sets
     * of its context are full of other pages ahead of the copy's, so that
     * every lookup scans TLB_WAYS - 2 more entries before it hits.  The
     * aligned and deep contexts swap halfway (their operands are the
     * same), so that neither owes anything to its context.
     */
    for (int half = 0; half < 2; half++) {
        uint32_t swap = al.first;

        invalidate_all(&b);
        batch_map(&b, &al, false);
        batch_map(&b, &sp, false);
        batch_map(&b, &dp, true);
        if (!half) {
            batch_time(&b, &al, 0x71, 0);
            batch_time(&b, &sp, 0x72, 0);
            batch_time(&b, &dp, 0x73, 0);
        }
        for (int r = 0; r < treps / 2; r++) {
            batch_run(&b, &al);
            batch_run(&b, &sp);
            batch_run(&b, &dp);
            cpy_ns = MIN(cpy_ns, memcpy_once(hdst, hsrc, TEST_PIECE, tn));
        }
        al.first = dp.first;
        dp.first = swap;
    }
    al_ns = al.cpu;
    sp_ns = sp.cpu;
    dp_ns = dp.cpu;
    if (dev_stat(&b, VGRU_STAT_TLB_MISSES) ||
        dev_stat(&b, VGRU_STAT_ERRORS)) {
        die("a measured copy faulted or failed");
    }

    /*
     * Two contexts at once (issue 12: aggregate >= 1.6x one context with
     * 2 workers): CBS copies of PAR_PIECE in context 0 alone, against as
     * many in context 0 and context 1 at once, to separate destinations;
     * best wall time of alternating runs.  Wall time: meaningful only on
     * a host with two otherwise idle cores.
     */
two:
    invalidate_all(&b);
    for (int k = 0; k < 2; k++) {
        batch_map(&b, &par[k], false);
        batch_arm(&b, &par[k], 0x61);          /* one source for both */
    }
    batches_wall(&b, par, 2);                   /* warm-up */
    batch_check(&b, &par[0], 0x61);
    batch_check(&b, &par[1], 0x61);
    for (int r = 0; r < (opt_two && opt_reps ? opt_reps : quick ? 5 : 11);
         r++) {
        one_ns = MIN(one_ns, batches_wall(&b, par, 1));
        two_ns = MIN(two_ns, batches_wall(&b, par, 2));
        host_one_ns = MIN(host_one_ns, host_copies_wall(hsrc, hdst, 1));
        host_two_ns = MIN(host_two_ns, host_copies_wall(hsrc, hdst, 2));
    }
    fprintf(stderr, "%u x %u MiB copies: one context %.2f ms, two at once "
            "%.2f ms: aggregate %.2fx one (wall time); host memcpy, two "
            "threads over one: %.2fx\n", CBS,
            (unsigned)(PAR_PIECE / MiB), one_ns / 1e6, two_ns / 1e6,
            2.0 * one_ns / two_ns, 2.0 * host_one_ns / host_two_ns);
    if (opt_two) {
        goto end;
    }
    piece_ns = (sp_ns - al_ns) / ((double)tn * tpages);
    deep_ns = (dp_ns - al_ns) / (2.0 * tn * tpages);
    over_ns = (al_ns - cpy_ns) / ((double)tn * tpages);
    fprintf(stderr, "%u x %u KiB: aligned %.0f us, split %.0f us, deep "
            "%.0f us, memcpy %.0f us\n", tn, (unsigned)(TEST_PIECE / KiB),
            al_ns / 1000, sp_ns / 1000, dp_ns / 1000, cpy_ns / 1000);
    fprintf(stderr, "per page: device - memcpy %.1f ns; per extra piece "
            "%.1f ns; per lookup %d ways deeper %.1f ns\n",
            over_ns, piece_ns, TLB_WAYS - 2, deep_ns);

    what = g_strdup_printf(
        "The vgru device model alone in QEMU (qtest accelerator: no guest, "
        "no TCG; contexts=%d cbs=%d tlb-sets=%d tlb-ways=%d) running warm "
        "COPY, against host memcpy of the same size. Size S: a batch of "
        "max(1, 4 MiB / S) commands on separate command blocks, all "
        "copying the same S bytes, every page dropped into the TLB first "
        "(no fault taken, checked); memcpy copies S bytes as many times. "
        "Device time is QEMU's process CPU time from just before the "
        "register write that enables the device to just after the read "
        "that sees the last completion, less the measured QEMU CPU cost "
        "of those qtest accesses (%.1f us each, usually two), so neither "
        "the %.1f us socket round trip nor time spent waiting for a CPU "
        "counts (on an idle host it equals wall time); memcpy time is "
        "thread CPU time. Best of %d runs each, a device run and a memcpy "
        "run in turn, so that both copies start from the cache state a "
        "pause leaves (memcpy timed back to back kept its buffers hot); "
        "device runs under the best memcpy time are dropped as "
        "measurement errors. median_ratio_*: the median over runs of "
        "memcpy over device time of each device run and the memcpy run "
        "after it (steadier than the ratio of bests on a shared host). "
        "device_over_memcpy_* are throughput ratios. *_in_4k_pieces and "
        "*_in_2m_pieces (issue 12's host-side targets, which name the "
        "pieces the device moves between translations): a copy of 2 or 16 "
        "MiB (batches of 16 MiB) whose pages lie in reverse order in guest "
        "RAM, through 4 KiB "
        "translations (every page its own piece) or 2 MiB ones (every 2 "
        "MiB a piece), against host memcpy of the same size in one call "
        "and, as device_over_memcpy_of_same_pieces_*, against host memcpy "
        "in the same pieces in the same order (what the memory system "
        "gives that layout). Translation "
        "cost, from batches of %u copies of %u KiB run in turn, best of "
        "%d runs each: page_overhead_ns = device minus memcpy time per "
        "4 KiB page (two TLB lookups, finding RAM, loop); "
        "tlb_piece_cost_ns = extra time per extra piece when the "
        "destination starts 2 KiB into its page (two pieces per page, "
        "same bytes): two TLB lookups, two RAM lookups and a loop "
        "step, so an upper bound on two lookups; tlb_deep_lookup_extra_ns "
        "= extra time per lookup when %d other entries of its set are "
        "scanned before the hit (tlb_way_scan_ns: per entry). "
        "two_contexts_over_one: aggregate throughput of %d copies of %d "
        "MiB in each of two contexts at once (two workers) over the same "
        "in one context, best wall time of alternating runs; meaningful "
        "only with two otherwise idle host cores: "
        "host_memcpy_two_threads_over_one, the same copies by one and by "
        "two host threads timed in turn with them, says what the host's "
        "cores gave two copies at that moment.",
        CONTEXTS, CBS, TLB_SETS, TLB_WAYS, b.access_ns / 1000,
        b.rtt_ns / 1000, reps, tn, (unsigned)(TEST_PIECE / KiB),
        treps, TLB_WAYS - 2, CBS, (int)(PAR_PIECE / MiB));

    g_string_append(js, "{\n  \"device_model\": {\n");
    g_string_append(js, "    \"title\": \"Device model without a guest: "
                    "warm COPY vs host memcpy\",\n");
    g_string_append_printf(js, "    \"what\": \"%s\",\n", what);
    g_string_append(js, "    \"supported\": true,\n    \"ratios\": {");
    first = true;
    for (int k = 0; k < nres; k++) {
        g_autofree char *key = g_strdup_printf("device_over_memcpy_%s",
                                               size_name(res[k].size));

        json_pair(js, &first, key, res[k].cpy_ns / res[k].dev_ns);
    }
    json_pair(js, &first, "split_over_aligned", sp_ns / al_ns);
    json_pair(js, &first, "deep_over_aligned", dp_ns / al_ns);
    json_pair(js, &first, "tlb_piece_cost_over_memcpy_page",
              piece_ns * tn * tpages / cpy_ns);
    for (int k = 0; k < ARRAY_SIZE(pieces); k++) {
        g_autofree char *key = g_strdup_printf("device_over_memcpy_%s",
                                               pieces[k].key);

        g_autofree char *pkey = g_strdup_printf(
            "device_over_memcpy_of_same_pieces_%s", pieces[k].key);

        json_pair(js, &first, key, pres[k].cpy_ns / pres[k].dev_ns);
        json_pair(js, &first, pkey, pres[k].pcs_ns / pres[k].dev_ns);
    }
    json_pair(js, &first, "two_contexts_over_one", 2.0 * one_ns / two_ns);
    json_pair(js, &first, "host_memcpy_two_threads_over_one",
              2.0 * host_one_ns / host_two_ns);
    g_string_append(js, "\n    },\n    \"raw\": {");
    first = true;
    for (int k = 0; k < nres; k++) {
        const Result *r = &res[k];
        const char *sz = size_name(r->size);
        g_autofree char *d = g_strdup_printf("device_%s_mib_s", sz);
        g_autofree char *m = g_strdup_printf("memcpy_%s_mib_s", sz);
        g_autofree char *dpg = g_strdup_printf("device_%s_page_ns", sz);
        g_autofree char *mp = g_strdup_printf("memcpy_%s_page_ns", sz);
        g_autofree char *c = g_strdup_printf("commands_%s_count", sz);
        g_autofree char *med = g_strdup_printf("median_ratio_%s", sz);

        json_pair(js, &first, d, mib_s(r->n * r->size, r->dev_ns));
        json_pair(js, &first, m, mib_s(r->n * r->size, r->cpy_ns));
        json_pair(js, &first, dpg, page_ns(r, true));
        json_pair(js, &first, mp, page_ns(r, false));
        json_pair(js, &first, c, r->n);
        json_pair(js, &first, med, r->ratio_med);
    }
    for (int k = 0; k < ARRAY_SIZE(pieces); k++) {
        g_autofree char *med = g_strdup_printf("median_ratio_%s",
                                               pieces[k].key);
        g_autofree char *dpg = g_strdup_printf("device_%s_page_ns",
                                               pieces[k].key);

        g_autofree char *pmed = g_strdup_printf("median_ratio_%s_memcpy",
                                                pieces[k].key);
        g_autofree char *ppg = g_strdup_printf("memcpy_%s_page_ns",
                                               pieces[k].key);

        json_pair(js, &first, med, pres[k].ratio_med);
        json_pair(js, &first, pmed, pres[k].pcs_med);
        json_pair(js, &first, dpg, page_ns(&pres[k], true));
        json_pair(js, &first, ppg, pres[k].pcs_ns * PAGE /
                  ((double)pres[k].n * pres[k].size));
    }
    json_pair(js, &first, "page_overhead_ns", over_ns);
    json_pair(js, &first, "tlb_piece_cost_ns", piece_ns);
    json_pair(js, &first, "tlb_deep_lookup_extra_ns", deep_ns);
    json_pair(js, &first, "tlb_way_scan_ns", deep_ns / (TLB_WAYS - 2));
    json_pair(js, &first, "aligned_batch_us", al_ns / 1000);
    json_pair(js, &first, "split_batch_us", sp_ns / 1000);
    json_pair(js, &first, "deep_batch_us", dp_ns / 1000);
    json_pair(js, &first, "memcpy_batch_us", cpy_ns / 1000);
    json_pair(js, &first, "one_context_wall_ms", one_ns / 1e6);
    json_pair(js, &first, "two_contexts_wall_ms", two_ns / 1e6);
    json_pair(js, &first, "host_memcpy_one_thread_wall_ms", host_one_ns / 1e6);
    json_pair(js, &first, "host_memcpy_two_threads_wall_ms",
              host_two_ns / 1e6);
    json_pair(js, &first, "test_piece_bytes", TEST_PIECE);
    json_pair(js, &first, "qtest_round_trip_us", b.rtt_ns / 1000);
    json_pair(js, &first, "qtest_access_qemu_cpu_us", b.access_ns / 1000);
    json_pair(js, &first, "batch_bytes", BATCH_BYTES);
    json_pair(js, &first, "tlb_entries_count", TLB_SETS * TLB_WAYS);
    json_pair(js, &first, "runs_count", reps);
    json_pair(js, &first, "elapsed_s", (now_ns() - start) / 1e9);
    g_string_append(js, "\n    },\n    \"plots\": [\n");
    json_plot(js, "device_model_throughput",
              "Warm COPY in the device model (qtest, no guest) vs host memcpy",
              "throughput (MiB/s)", res, nres, false, false);
    json_plot(js, "device_model_page_time",
              "Time per 4 KiB page: device model vs host memcpy",
              "time per page (ns)", res, nres, true, true);
    g_string_append(js, "    ]\n  }\n}\n");

end:
    g_free(b.dev);
    qpci_free_pc(b.bus);
    qtest_quit(b.qts);
    live = NULL;
    qemu_vfree(hsrc);
    qemu_vfree(hdst);

    if (opt_size || opt_two) {
        return 0;
    } else if (!strcmp(out, "-")) {
        fputs(js->str, stdout);
    } else {
        g_autoptr(GError) err = NULL;

        if (!g_file_set_contents(out, js->str, js->len, &err)) {
            fprintf(stderr, "vgru-qtest-bench: %s\n", err->message);
            return 1;
        }
    }
    return 0;
}
