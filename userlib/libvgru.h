/* SPDX-License-Identifier: MIT */
/*
 * libvgru: use a vgru device from a process.
 *
 * A handle is one open device context with its command window mapped
 * into the caller.  Commands name the caller's own virtual addresses; the
 * device faults them in through the driver, so buffers need no pinning or
 * registration.  Every call returns 0 (or a count) on success and a
 * negative errno on failure; none sets errno.
 *
 * Thread safety: a handle may be shared by threads.  Each call takes a
 * free command block of the handle's context (vgru_info's nr_cbs of them)
 * with an atomic operation; a blocking call on a handle whose blocks are
 * all in flight waits for one, or returns -EBUSY when tickets hold them
 * all (only their owners can free them).  A ticket belongs to whoever submitted it:
 * two threads must not wait on the same ticket.  vgru_close() must not
 * race with any other call on the handle.
 */
#ifndef LIBVGRU_H
#define LIBVGRU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VGRU_DEFAULT_DEVICE "/dev/vgru0"

struct vgru;

/*
 * Counters of one handle's context since it was opened (docs/counters.md).
 * A cold copy takes two faults per page, one for the source and one for
 * the destination; a copy whose pages the device holds takes none.
 * invalidations counts every range of the process's address space the
 * kernel reported changed, whether or not the device held a page there,
 * so a new handle may already show some; device_invalidations counts
 * those that reached the device (it held, or may have held, a page there).
 */
struct vgru_stats {
	uint64_t faults;	/* device faults the driver handled */
	uint64_t fault_errors;	/* of those, failed back to a command */
	uint64_t dropins;	/* translations written to the device TLB */
	uint64_t retries;	/* resolutions redone after an overlapping invalidation */
	uint64_t invalidations;	/* address ranges changed */
	uint64_t notices;	/* completion notices of the context */
	uint64_t prefaults;	/* pages vgru_prefault() dropped in */
	uint64_t device_invalidations; /* of those, sent to the device */
	uint64_t reserved[8];	/* zero; room for counters to come */
};

/*
 * vgru_open - open a device context and map its window
 * @path: device node, or NULL for VGRU_DEFAULT_DEVICE
 * @out: the new handle
 *
 * Returns 0, or -ENOENT (no such device), -EBUSY (all contexts in use),
 * -EPROTO (driver speaks another API version), or another -errno.
 */
int vgru_open(const char *path, struct vgru **out);

/* vgru_close - stop the context's commands and free the handle (NULL ok) */
void vgru_close(struct vgru *v);

/*
 * Blocking commands.  Each runs one device command and waits for it:
 * it spins briefly on the command's completion record (longer, up to
 * 1 ms, while the driver resolves the command's device fault or while
 * the handle's recent commands ended that fast), then sleeps until the
 * device's completion notice (no CPU burnt on a long command).  A device
 * fault the command meets when it starts is resolved by the calling
 * thread itself, in the driver (VGRU_IOC_RESOLVE: as if the thread had
 * touched the page), with no interrupt; later ones by the driver's
 * fault work.
 * Return 0, or:
 *   -EFAULT  a page of an operand is not mapped (or not memory),
 *   -EPERM   a written operand is in a read-only mapping,
 *   -EINVAL  a range wraps around the address space, COPY ranges overlap,
 *            or an atomic's word is not 8-byte aligned,
 *   -EIO     the device's DMA failed,
 *   -ESRCH   the context's process is exiting,
 *   -ENODEV  the device is gone,
 *   -EBUSY   every command block holds a vgru_submit() ticket,
 *   -EAGAIN  invalidations of the operands' pages (mremap, munmap, ...
 *            racing in other threads) kept the driver from resolving a
 *            fault, even after the library resubmitted the rest of the
 *            command 64 times in a row without progress.
 * On error, some bytes may have been done: see vgru_last_progress().
 */

/* vgru_copy - copy @len bytes from @src to @dst (the ranges must not overlap) */
int vgru_copy(struct vgru *v, void *dst, const void *src, size_t len);

/*
 * vgru_fill - fill @len bytes at @dst with @pattern: byte i of the range
 * gets byte i % 8 of @pattern in little-endian order (any length and
 * alignment).
 */
int vgru_fill(struct vgru *v, void *dst, uint64_t pattern, size_t len);

/*
 * Atomics on a naturally aligned 64-bit word of the caller's memory,
 * atomic against the CPU's own atomic instructions on it.  @old (may be
 * NULL) gets the word's value before the operation.  vgru_cas stores
 * @desired only if the word equals @expected; compare *@old with
 * @expected to learn whether it did.
 */
int vgru_fetch_add(struct vgru *v, uint64_t *addr, uint64_t val,
		   uint64_t *old);
int vgru_swap(struct vgru *v, uint64_t *addr, uint64_t val, uint64_t *old);
int vgru_cas(struct vgru *v, uint64_t *addr, uint64_t expected,
	     uint64_t desired, uint64_t *old);

/*
 * Fault policy of the blocking calls.
 *   VGRU_FAULT_DEVICE   (default) a device TLB miss stops the command
 *                       while the driver resolves it from its interrupt
 *                       handler, then the command goes on.
 *   VGRU_FAULT_PREFAULT a miss ends the command at once (no driver work);
 *                       the library resolves the missed operand from there
 *                       on, at most 256 KiB at a time, with vgru_prefault()
 *                       in the calling thread and resubmits what is left.
 * Results and errors are the same either way.  Returns 0 or -EINVAL.
 */
enum vgru_fault_policy {
	VGRU_FAULT_DEVICE = 0,
	VGRU_FAULT_PREFAULT = 1,
};
int vgru_set_fault_policy(struct vgru *v, enum vgru_fault_policy policy);

/*
 * vgru_prefault - put the translations of [@addr, @addr + @len) into the
 * device TLB now (@write: writable ones), as faults would.  Returns 0, or
 * -EFAULT / -EPERM / -EINVAL / -EINTR as the blocking calls.
 */
int vgru_prefault(struct vgru *v, const void *addr, size_t len, int write);

/*
 * Fault-around (since LIBVGRU_2.1).  A device fault of the handle's
 * context resolves the naturally aligned block of @pages pages around the
 * faulting page: the other pages of the block, within the same mapping,
 * that the process has present with the access the fault needs go into
 * the device TLB with it, so a copy of CPU-touched memory takes one fault
 * per block instead of one per page.  Absent pages are never faulted in
 * by fault-around: each still takes its own fault.  A new handle starts
 * with the driver's default (module parameter fault_around_pages).
 *
 * vgru_set_fault_around - set @pages, a power of two from 1 (the faulting
 * page only) to 512; returns the value in effect, or -EINVAL (not a power
 * of two, too large, 0), -ENOTTY (a driver without fault-around).
 * vgru_get_fault_around - the value in effect, or -ENOTTY.
 */
int vgru_set_fault_around(struct vgru *v, unsigned int pages);
int vgru_get_fault_around(struct vgru *v);

/* ---- asynchronous commands ---------------------------------------------- */

/*
 * A command for vgru_submit(): fill it with one vgru_prep_*() call.  Its
 * layout is the device's (vgru_regs.h, VGRU_DESC_*); treat it as opaque.
 */
struct vgru_desc {
	uint64_t raw[8];
};

void vgru_prep_nop(struct vgru_desc *d);
void vgru_prep_copy(struct vgru_desc *d, void *dst, const void *src,
		    size_t len);
void vgru_prep_fill(struct vgru_desc *d, void *dst, uint64_t pattern,
		    size_t len);
void vgru_prep_fetch_add(struct vgru_desc *d, uint64_t *addr, uint64_t val);
void vgru_prep_swap(struct vgru_desc *d, uint64_t *addr, uint64_t val);
void vgru_prep_cas(struct vgru_desc *d, uint64_t *addr, uint64_t expected,
		   uint64_t desired);
/* ends once every command submitted earlier on this handle has ended */
void vgru_prep_fence(struct vgru_desc *d);

/* How a submitted command ended. */
struct vgru_result {
	int error;		/* 0 or -errno, as the blocking calls */
	uint32_t device_error;	/* the device's error word (vgru_regs.h) */
	uint64_t progress;	/* bytes done (batch: entries completed) */
	uint64_t fault_addr;	/* last faulting address, if any */
	uint64_t value;		/* an atomic's old value */
};

/* vgru_submit() flags */
#define VGRU_SUBMIT_NO_BLOCK	(1u << 0)	/* a miss ends the command:
						 * error -EWOULDBLOCK, with
						 * fault_addr and progress */

/*
 * vgru_submit - start @d on a free command block of the handle
 *
 * Returns a ticket (>= 0) for vgru_wait()/vgru_test(), or -EBUSY when
 * every command block has a command in flight (wait for one first), or
 * -EINVAL.  The descriptor is copied: @d may be reused at once.
 */
int vgru_submit(struct vgru *v, const struct vgru_desc *d, unsigned int flags);

/*
 * vgru_submit_batch - start the @n commands of @list (1..VGRU_BATCH_MAX
 * from vgru_regs.h) as one device BATCH, run in order; the first that
 * fails ends the batch.  @list stays in use until the batch completes and
 * must be 64-byte aligned.  The result's progress counts the commands that
 * completed, i.e. the index of the failed one; its error is that one's.
 */
int vgru_submit_batch(struct vgru *v, const struct vgru_desc *list,
		      unsigned int n, unsigned int flags);

/*
 * vgru_wait - wait until ticket @t's command ends, at most @timeout_ms
 * (negative: no limit), and fill @res (may be NULL).  Returns the
 * command's error (0 on success), -ETIMEDOUT (still running; wait again),
 * -EINTR, or -EINVAL (no such ticket).  Once it has returned the command's
 * result, the ticket is free for reuse.
 */
int vgru_wait(struct vgru *v, int t, int timeout_ms, struct vgru_result *res);

/*
 * vgru_test - as vgru_wait() without waiting: -EBUSY while it runs (not
 * -EAGAIN, which is -EWOULDBLOCK, a NO_BLOCK command's error)
 */
int vgru_test(struct vgru *v, int t, struct vgru_result *res);

/*
 * vgru_strerror - a static text naming a device error word's class and
 * detail (struct vgru_result's device_error), for messages.  Never NULL.
 */
const char *vgru_strerror(uint32_t device_error);

/*
 * vgru_last_progress - bytes done by the calling thread's last blocking
 * command on any handle (kept per thread)
 */
uint64_t vgru_last_progress(const struct vgru *v);

/* vgru_stats - read the handle's context counters */
int vgru_stats(struct vgru *v, struct vgru_stats *stats);

/* vgru_context - the device context index of the handle */
unsigned int vgru_context(const struct vgru *v);

/* vgru_fd - the handle's file descriptor (for poll-free tools and tests) */
int vgru_fd(const struct vgru *v);

#ifdef __cplusplus
}
#endif

#endif /* LIBVGRU_H */
