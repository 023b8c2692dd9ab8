/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vgru user ABI: the one definition of what /dev/vgruN offers a process,
 * shared by the driver (driver/) and libvgru (userlib/).
 *
 * open() gives the caller one device context, bound to the caller's mm.
 * mmap() of VGRU_WINDOW_SIZE bytes at offset 0 maps the context's command
 * window (layout in vgru_regs.h: VGRU_CB_*), MAP_SHARED, by the opening
 * process only.
 *
 * Completion notices: a command started with VGRU_DF_INTERRUPT, or armed
 * with VGRU_CB_ARM, makes the device post a notice when it ends; the
 * driver counts the notices of each context.  VGRU_IOC_WAIT sleeps until
 * that count differs from a value the caller saw; poll()/epoll report
 * EPOLLIN while it differs from the value VGRU_IOC_WAIT last returned on
 * this file.  A notice says "look at your completion records", nothing
 * more: one notice may stand for several commands.  Structures use fixed-width fields, are padded to 8
 * bytes, and keep reserved fields (zero today) for later growth.
 */
#ifndef VGRU_IOCTL_H
#define VGRU_IOCTL_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define VGRU_API_VERSION	2
#define VGRU_WINDOW_SIZE	4096

/* VGRU_IOC_INFO: what this open file is. */
struct vgru_info {
	__u32 api_version;	/* VGRU_API_VERSION */
	__u32 context;		/* device context of this file */
	__u32 nr_cbs;		/* command blocks in the window */
	__u32 window_size;	/* bytes to mmap at offset 0 */
	__u32 features;		/* VGRU_FEATURE_* */
	__u32 reserved0;
	__u64 reserved[3];
};

/* the device takes VGRU_DF_CALL_OS, and VGRU_IOC_RESOLVE answers it */
#define VGRU_FEATURE_CALL_OS	(1u << 0)

/*
 * VGRU_IOC_STATS: counters of this file's context since open; what each
 * counts, and what to expect, is in docs/counters.md.
 */
struct vgru_ctx_stats {
	__u64 faults;		/* device faults handled */
	__u64 fault_errors;	/* faults failed back to the command */
	__u64 dropins;		/* translations written to the device TLB */
	__u64 retries;		/* resolutions redone after an invalidation */
	__u64 invalidations;	/* notifier ranges of the mm, held or not */
	__u64 notices;		/* completion notices of the context */
	__u64 prefaults;	/* pages VGRU_IOC_PREFAULT dropped in */
	__u64 device_invalidations; /* of those, the ones the device got */
};

/*
 * VGRU_IOC_WAIT: sleep until the context's notice count is not @notices,
 * or @timeout_ns passes (negative: no limit; 0: do not sleep).  Returns 0
 * with @notices set to the current count; -ETIMEDOUT (count unchanged,
 * @notices set to it); -EINTR on a signal.
 */
struct vgru_wait {
	__u64 notices;		/* in: last count seen; out: current count */
	__s64 timeout_ns;
	__u64 reserved[2];
};

/*
 * VGRU_IOC_PREFAULT: resolve [addr, addr + len) of the caller's address
 * space now and write its translations into the device TLB (writable ones
 * with VGRU_PREFAULT_WRITE), as device faults would, without a fault.
 * What the TLB cannot hold at once is evicted as usual.  @done returns the
 * bytes resolved from @addr on.  Errors: -EFAULT (a page is not mapped,
 * or not memory; @done tells where), -EPERM (write to a read-only
 * mapping), -EINVAL (range wraps, unknown flags, reserved not zero),
 * -EINTR (a signal; @done tells how far it got), -EACCES (the caller is
 * not the process that opened the file).
 */
#define VGRU_PREFAULT_WRITE	(1u << 0)

struct vgru_prefault {
	__u64 addr;
	__u64 len;
	__u32 flags;
	__u32 reserved0;
	__u64 done;		/* out */
	__u64 reserved[2];
};

/*
 * VGRU_IOC_FAULT_AROUND: how many pages a device fault of this context
 * resolves.  With @pages = N > 1, a fault also drops in the translations
 * of the other pages of the naturally aligned block of N pages around the
 * faulting one, within the same mapping, that the process has present
 * with the access the fault needs; when faults stream in anonymous or
 * shmem memory, absent pages are faulted in too, and a stream into fresh
 * memory grows its block past N (docs/architecture.md, fault path).  In:
 * @pages, a power of two at most VGRU_FAULT_AROUND_MAX (1: the faulting
 * page only), or 0 to leave it unchanged; out: the value in effect.  A
 * new context starts with the module parameter fault_around_pages.
 * Errors: -EINVAL (not a power of two, too large, reserved not zero).
 */
#define VGRU_FAULT_AROUND_MAX	512

struct vgru_fault_around {
	__u32 pages;		/* in/out */
	__u32 reserved0;
	__u64 reserved[3];
};

/*
 * VGRU_IOC_RESOLVE: the thread waiting for command block @cb resolves its
 * pending device fault itself, in its own context, as the driver's fault
 * work would (SGI GRU's "call OS"): no interrupt and no work item stand
 * between the fault and its answer.  For a waiter that sees its CB in
 * VGRU_CB_FAULT, typically right after a START with VGRU_DF_CALL_OS
 * (whose fault raised no interrupt; with VGRU_FEATURE_CALL_OS).  A fault
 * nobody comes for is answered by the fault work anyway: an interrupting
 * one at once, a quiet one when the driver's watchdog drains the queue
 * (within 20 ms) or another drain does.
 * Returns 0 with @resolved = 1 if this call answered the CB's fault, 0 if
 * none was pending (answered already, or the CB is not in FAULT) or the
 * fault work was resolving one of the context's faults (it never waits
 * for that work).  The answer is what the fault work would give: a
 * drop-in and RESTART, or the command fails.  The call may block as a
 * CPU access to the faulting page would (swap-in, userfaultfd).  Errors:
 * -EINVAL (@cb out of range, @resolved or reserved not zero), -EACCES
 * (the caller is not the process that opened the file), -ENODEV, -EIO.
 */
struct vgru_resolve {
	__u32 cb;		/* in */
	__u32 resolved;		/* out */
	__u64 reserved[3];
};

#define VGRU_IOC_MAGIC		0xb7
#define VGRU_IOC_INFO		_IOR(VGRU_IOC_MAGIC, 0x00, struct vgru_info)
#define VGRU_IOC_STATS		_IOR(VGRU_IOC_MAGIC, 0x01, struct vgru_ctx_stats)
#define VGRU_IOC_WAIT		_IOWR(VGRU_IOC_MAGIC, 0x02, struct vgru_wait)
#define VGRU_IOC_PREFAULT	_IOWR(VGRU_IOC_MAGIC, 0x03, struct vgru_prefault)
#define VGRU_IOC_FAULT_AROUND	_IOWR(VGRU_IOC_MAGIC, 0x04, struct vgru_fault_around)
#define VGRU_IOC_RESOLVE	_IOWR(VGRU_IOC_MAGIC, 0x05, struct vgru_resolve)

#endif /* VGRU_IOCTL_H */
