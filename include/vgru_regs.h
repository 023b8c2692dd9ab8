/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vgru device interface: PCI identity, control registers, context windows
 * and the fault record.  This is the one definition shared by the device
 * model (qemu-device/vgru.c), the driver (driver/) and the device test
 * (tests/qtest/vgru-test.c); docs/device.md explains the semantics.
 *
 * Only preprocessor constants live here so that QEMU and the kernel can
 * both include it.  Everything is little endian.  Control registers are
 * 32 bits wide; a 64-bit register is two 32-bit halves, low half first,
 * and may also be accessed with one 8-byte access.
 */
#ifndef VGRU_REGS_H
#define VGRU_REGS_H

#define VGRU_PCI_VENDOR_ID	0x1234
#define VGRU_PCI_DEVICE_ID	0x7672
#define VGRU_PCI_REVISION	3

/* BARs */
#define VGRU_CTRL_BAR		0	/* control registers */
#define VGRU_CTRL_SIZE		0x1000
#define VGRU_WINDOW_BAR		2	/* one command window per context */
#define VGRU_WINDOW_STRIDE	0x1000	/* bytes per context window */
#define VGRU_MSIX_BAR		4

/* MSI-X vectors */
#define VGRU_MSIX_EVENT		0	/* records were queued (faults, notices) */
#define VGRU_MSIX_NR		1

/*
 * Translation sizes: 4 KiB pages, and 2 MiB ones (VGRU_TLB_HUGE) for a
 * huge page the process maps with one PMD.  PAGE_SIZES has both bits.
 */
#define VGRU_PAGE_SHIFT		12
#define VGRU_PAGE_SIZE		(1ULL << VGRU_PAGE_SHIFT)
#define VGRU_HUGE_SHIFT		21
#define VGRU_HUGE_SIZE		(1ULL << VGRU_HUGE_SHIFT)

/* ---- control registers (BAR 0) ---------------------------------------- */

/* identity and geometry, read-only */
#define VGRU_REG_ID		0x000	/* VGRU_ID */
#define VGRU_REG_VERSION	0x004	/* major << 16 | minor */
#define VGRU_REG_NR_CONTEXTS	0x008
#define VGRU_REG_NR_CBS		0x00c	/* command blocks per context */
#define VGRU_REG_TLB_SETS	0x010
#define VGRU_REG_TLB_WAYS	0x014
#define VGRU_REG_PAGE_SIZES	0x018	/* bit n set: 2^n-byte pages */

#define VGRU_ID			0x55524756	/* "VGRU" */
#define VGRU_VERSION		0x00020003	/* 2.3: RESP_RESTART_CALLER */

/* device control */
#define VGRU_REG_CTRL		0x020
#define   VGRU_CTRL_ENABLE	(1u << 0)	/* run commands, post faults */
#define   VGRU_CTRL_RESET	(1u << 1)	/* write-only: full reset */
#define VGRU_REG_STATUS		0x024
#define   VGRU_STATUS_ENABLED	(1u << 0)
#define   VGRU_STATUS_FQ_ERROR	(1u << 1)	/* fault queue DMA failed */

/*
 * Event queue ("fault queue"): a ring of VGRU_FQ_RECORD_SIZE-byte records
 * in guest memory, written by the device; each is a fault or a completion
 * notice (VGRU_FR_TYPE).  FQ_TAIL and FQ_HEAD are free-running counters;
 * the record for counter n is at FQ_BASE + (n % FQ_SIZE) * record size.
 * FQ_BASE and FQ_SIZE are latched when CTRL.ENABLE is set.
 *
 * Interrupts are coalesced: queuing a record raises the event interrupt
 * only while it is armed, and disarms it.  Writing FQ_HEAD re-arms it, and
 * raises it at once if records are still pending (FQ_TAIL != FQ_HEAD), so
 * a driver that writes FQ_HEAD after each pass and then rereads FQ_TAIL
 * never misses a record.
 */
#define VGRU_REG_FQ_BASE	0x030	/* 64-bit, 32-byte aligned */
#define VGRU_REG_FQ_SIZE	0x038	/* records, a power of two */
#define VGRU_REG_FQ_HEAD	0x03c	/* driver: next record to consume */
#define VGRU_REG_FQ_TAIL	0x040	/* device: next record to write (RO) */

/* contexts: select, then command */
#define VGRU_REG_CTX_SEL	0x050
#define VGRU_REG_CTX_TAG	0x054	/* copied into this context's faults */
#define VGRU_REG_CTX_CMD	0x058
#define   VGRU_CTX_CMD_ENABLE	1	/* CBs idle, tag latched */
#define   VGRU_CTX_CMD_DISABLE	2	/* stop CBs, drop its translations */

/*
 * TLB drop-in of one translation: fill the operands, then write
 * VGRU_TLB_CMD_DROPIN.  Or a translation list (below): write its bus
 * address to TLB_LIST, then VGRU_TLB_CMD_LIST.  A read-only drop-in never
 * replaces a writable entry of the same page and size.  A 2 MiB entry and
 * 4 KiB entries inside it may coexist; software keeps them consistent.
 */
#define VGRU_REG_TLB_VADDR	0x060	/* 64-bit, aligned to its size */
#define VGRU_REG_TLB_PADDR	0x068	/* 64-bit bus address, aligned */
#define VGRU_REG_TLB_CTX	0x070
#define VGRU_REG_TLB_FLAGS	0x074
#define   VGRU_TLB_WRITE	(1u << 0)	/* writable translation */
#define   VGRU_TLB_HUGE		(1u << 1)	/* 2 MiB, not 4 KiB */
#define   VGRU_TLB_FLAGS_ALL	0x3
#define VGRU_REG_TLB_CMD	0x078
#define   VGRU_TLB_CMD_DROPIN	1
#define   VGRU_TLB_CMD_LIST	2	/* run the list at TLB_LIST */
#define VGRU_REG_TLB_LIST	0x0c0	/* 64-bit bus address, 64-byte aligned */

/*
 * Invalidation: fill the operands, write a command, then wait until
 * INV_DONE has counted it.  Once counted, no DMA uses a removed entry.
 */
#define VGRU_REG_INV_START	0x080	/* 64-bit */
#define VGRU_REG_INV_LEN	0x088	/* 64-bit, bytes */
#define VGRU_REG_INV_CTX	0x090
#define VGRU_REG_INV_CMD	0x094
#define   VGRU_INV_CMD_RANGE	1	/* [START, START + LEN) of INV_CTX */
#define   VGRU_INV_CMD_CONTEXT	2	/* every entry of INV_CTX */
#define   VGRU_INV_CMD_ALL	3
#define VGRU_REG_INV_DONE	0x098	/* completed invalidations (RO) */

/*
 * Fault response: name the CB and the fault's sequence (VGRU_FR_SEQ of its
 * record), then write a command.  A response whose sequence is not the
 * CB's outstanding fault is ignored (a late answer to a closed context).
 */
#define VGRU_REG_RESP_CTX	0x0a0
#define VGRU_REG_RESP_CB	0x0a4
#define VGRU_REG_RESP_CODE	0x0a8	/* detail reported with FAIL */
#define VGRU_REG_RESP_CMD	0x0ac
#define VGRU_REG_RESP_SEQ	0x0b0
#define   VGRU_RESP_RESTART	1	/* translation dropped in: go on */
#define   VGRU_RESP_FAIL	2	/* end the command with ERR_FAULT */
/*
 * 2.3: RESTART, written by the thread that waits for the command: a COPY
 * or FILL runs on within this register write, up to the device's
 * caller-run-bytes, and with VGRU_DF_CALL_OS its next miss is posted
 * without interrupt, as at START.  In a list, applied after the others.
 */
#define   VGRU_RESP_RESTART_CALLER	3

/*
 * Translation list: in guest memory, read by DMA when TLB_CMD is
 * VGRU_TLB_CMD_LIST.  A header, TL_NR_TRANS translations, then TL_NR_RESP
 * fault responses, all for context TL_CTX.  The device drops every
 * translation in, then applies the responses in order (each as the RESP_*
 * registers would), so a restarted command finds its translations.  A
 * list that is malformed (bad context, counts over the limits, unknown
 * flags, misaligned addresses) or cannot be read is ignored as a whole,
 * logged as a guest error and counted in VGRU_STAT_LIST_ERRORS.
 */
#define VGRU_TL_CTX		0x00	/* 32-bit */
#define VGRU_TL_NR_TRANS	0x04	/* 32-bit, at most VGRU_TL_MAX_TRANS */
#define VGRU_TL_NR_RESP		0x08	/* 32-bit, at most VGRU_TL_MAX_RESP */
#define VGRU_TL_HDR_SIZE	0x10	/* 0x0c: reserved, zero */
#define VGRU_TL_MAX_TRANS	512
#define VGRU_TL_MAX_RESP	32
/* translation n, at VGRU_TL_HDR_SIZE + n * VGRU_TL_TRANS_SIZE */
#define VGRU_TL_TRANS_SIZE	0x10
#define VGRU_TL_T_VADDR		0x00	/* 64-bit: vaddr | VGRU_TLB_* flags */
#define VGRU_TL_T_PADDR		0x08	/* 64-bit bus address */
/* response n, after the translations */
#define VGRU_TL_RESP_SIZE	0x10
#define VGRU_TL_R_CB		0x00	/* 32-bit, as RESP_CB */
#define VGRU_TL_R_SEQ		0x04	/* 32-bit, as RESP_SEQ */
#define VGRU_TL_R_CMD		0x08	/* 32-bit, as RESP_CMD */
#define VGRU_TL_R_CODE		0x0c	/* 32-bit, as RESP_CODE */
#define VGRU_TL_SIZE(nt, nr)	(VGRU_TL_HDR_SIZE + (nt) * VGRU_TL_TRANS_SIZE + \
				 (nr) * VGRU_TL_RESP_SIZE)

/* statistics: 64-bit read-only counters */
#define VGRU_REG_STAT(n)	(0x100 + 8 * (n))
#define VGRU_STAT_COMMANDS	0	/* commands started */
#define VGRU_STAT_COMPLETED	1	/* commands ended DONE */
#define VGRU_STAT_ERRORS	2	/* commands ended ERROR */
#define VGRU_STAT_TLB_HITS	3
#define VGRU_STAT_TLB_MISSES	4	/* faults raised, permission included */
#define VGRU_STAT_DROPINS	5
#define VGRU_STAT_INVALIDATIONS	6	/* invalidation commands */
#define VGRU_STAT_INV_ENTRIES	7	/* TLB entries they removed */
#define VGRU_STAT_BYTES		8	/* bytes moved by DMA */
#define VGRU_STAT_INTERRUPTS	9	/* event interrupts raised */
#define VGRU_STAT_LISTS		10	/* translation lists run */
#define VGRU_STAT_LIST_ERRORS	11	/* translation lists ignored */
#define VGRU_STAT_NR		12

/* ---- command window (BAR 2) --------------------------------------------
 * Context c owns the page at c * VGRU_WINDOW_STRIDE; its command block b
 * is at b * VGRU_CB_STRIDE in that page.  A CB starts with a descriptor
 * (the same layout a BATCH list holds in memory), then its state.  The
 * descriptor may be written only while the CB is not ACTIVE or FAULT.
 */
#define VGRU_CB_STRIDE		0x80

/* descriptor: in a CB, and each VGRU_DESC_SIZE-byte entry of a BATCH list */
#define VGRU_DESC_SIZE		0x40	/* 0x30..0x3f reserved, ignored */
#define VGRU_DESC_OPCODE	0x00
#define   VGRU_OP_NOP		0	/* ends at once */
#define   VGRU_OP_COPY		1	/* LEN bytes SRC -> DST; no overlap */
#define   VGRU_OP_FILL		2	/* LEN bytes at DST <- pattern SRC */
#define   VGRU_OP_FETCH_ADD	3	/* *DST += SRC; RESULT = old *DST */
#define   VGRU_OP_SWAP		4	/* *DST = SRC; RESULT = old *DST */
#define   VGRU_OP_CAS		5	/* if *DST == ARG: *DST = SRC; RESULT = old */
#define   VGRU_OP_BATCH		6	/* run LEN descriptors listed at SRC */
#define   VGRU_OP_FENCE		7	/* ends after the context's older ones */
#define VGRU_DESC_FLAGS		0x04
#define   VGRU_DF_COMPLETION	(1u << 0)	/* write a record at COMP */
#define   VGRU_DF_INTERRUPT	(1u << 1)	/* post a notice when it ends */
#define   VGRU_DF_NO_BLOCK	(1u << 2)	/* a miss ends the command */
/*
 * A miss found within the START register write is posted without the
 * event interrupt: the thread that wrote START reads FAULT in STATUS and
 * has the driver resolve it (SGI GRU's "call OS").  Later misses, and
 * every miss of a device before 2.2, interrupt as usual.
 */
#define   VGRU_DF_CALL_OS	(1u << 3)
#define   VGRU_DF_ALL		0xf		/* other bits: ERR_OPCODE */
#define VGRU_DESC_SRC		0x08	/* 64-bit: address, pattern or operand */
#define VGRU_DESC_DST		0x10	/* 64-bit: address */
#define VGRU_DESC_LEN		0x18	/* 64-bit: bytes, or BATCH entries */
#define VGRU_DESC_ARG		0x20	/* 64-bit: CAS's expected value */
#define VGRU_DESC_COMP		0x28	/* 64-bit: completion record address */

#define VGRU_BATCH_MAX		4096	/* entries in one BATCH */

/* CB registers after its descriptor (the descriptor is at offset 0) */
#define VGRU_CB_OPCODE		VGRU_DESC_OPCODE
#define VGRU_CB_FLAGS		VGRU_DESC_FLAGS
#define VGRU_CB_SRC		VGRU_DESC_SRC
#define VGRU_CB_DST		VGRU_DESC_DST
#define VGRU_CB_LEN		VGRU_DESC_LEN
#define VGRU_CB_ARG		VGRU_DESC_ARG
#define VGRU_CB_COMP		VGRU_DESC_COMP
#define VGRU_CB_STATUS		0x40	/* RO */
#define   VGRU_CB_IDLE		0
#define   VGRU_CB_ACTIVE	1
#define   VGRU_CB_FAULT		2	/* waiting for the driver */
#define   VGRU_CB_DONE		3
#define   VGRU_CB_ERROR		4
#define VGRU_CB_ERROR_CODE	0x44	/* RO: class | detail << 16 */
#define   VGRU_ERR_CLASS(e)	((e) & 0xffff)
#define   VGRU_ERR_DETAIL(e)	((e) >> 16)
#define   VGRU_ERR_NONE		0
#define   VGRU_ERR_OPCODE	1	/* unknown opcode or flags; nested BATCH */
#define   VGRU_ERR_RANGE	2	/* wrap, COPY overlap, BATCH too long */
#define   VGRU_ERR_DMA		3	/* DMA to a translated address failed */
#define   VGRU_ERR_FAULT	4	/* driver failed the fault; detail: errno */
#define   VGRU_ERR_ALIGN	5	/* atomic word, COMP, BATCH list */
#define   VGRU_ERR_PAGE_FAULT	6	/* NO_BLOCK miss; detail: VGRU_FAULT_* */
#define VGRU_CB_PROGRESS	0x48	/* 64-bit RO: bytes (BATCH: entries) done */
#define VGRU_CB_FAULT_ADDR	0x50	/* 64-bit RO: last faulting address */
#define VGRU_CB_RESULT		0x58	/* 64-bit RO: an atomic's old value */
#define VGRU_CB_DOORBELL	0x60	/* WO */
#define   VGRU_CB_START		1	/* run the descriptor */
#define   VGRU_CB_ARM		2	/* notice at its end (now if ended) */

/*
 * Completion record: VGRU_COMP_SIZE bytes at COMP (32-byte aligned, a user
 * virtual address translated like any operand), written when a command
 * with VGRU_DF_COMPLETION ends; STATUS (VGRU_CB_DONE or VGRU_CB_ERROR) is
 * written last, so a reader that sees it non-zero sees the whole record.
 * In a BATCH, PROGRESS counts the entries that completed, which is the
 * index of the failed one.
 */
#define VGRU_COMP_SIZE		0x20
#define VGRU_COMP_STATUS	0x00	/* 32-bit; software zeroes it first */
#define VGRU_COMP_ERROR		0x04	/* 32-bit, as VGRU_CB_ERROR_CODE */
#define VGRU_COMP_PROGRESS	0x08	/* 64-bit */
#define VGRU_COMP_FAULT_ADDR	0x10	/* 64-bit */
#define VGRU_COMP_RESULT	0x18	/* 64-bit */

/* ---- event record (in the fault queue) ---------------------------------- */
#define VGRU_FQ_RECORD_SIZE	32
#define VGRU_FR_VADDR		0x00	/* 64-bit faulting virtual address */
#define VGRU_FR_CTX		0x08	/* 32-bit context */
#define VGRU_FR_TAG		0x0c	/* 32-bit CTX_TAG of the context */
#define VGRU_FR_CB		0x10	/* 32-bit command block */
#define VGRU_FR_FLAGS		0x14	/* 32-bit, faults only */
#define   VGRU_FAULT_WRITE	(1u << 0)	/* the access was a write */
#define   VGRU_FAULT_PERM	(1u << 1)	/* a read-only entry was hit */
#define   VGRU_FAULT_CALL_OS	(1u << 2)	/* posted without interrupt */
#define VGRU_FR_SEQ		0x18	/* 32-bit, faults: echo in RESP_SEQ */
#define VGRU_FR_TYPE		0x1c	/* 32-bit */
#define   VGRU_FR_FAULT		1	/* the CB waits for a response */
#define   VGRU_FR_NOTICE	2	/* a command ended (coalesced) */

#endif /* VGRU_REGS_H */
