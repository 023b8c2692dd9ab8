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
 * Thread safety: a handle runs one command at a time and must not be used
 * by two threads at once.  Open one handle per thread.
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
 * so a new handle may already show some.
 */
struct vgru_stats {
	uint64_t faults;	/* device faults the driver handled */
	uint64_t fault_errors;	/* of those, failed back to a command */
	uint64_t dropins;	/* translations written to the device TLB */
	uint64_t retries;	/* resolutions redone after an overlapping invalidation */
	uint64_t invalidations;	/* address ranges changed and flushed */
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
 * vgru_copy - copy @len bytes from @src to @dst with the device, and wait
 *
 * Both ranges are in the caller's address space and must not overlap.
 * Returns 0 once all bytes are copied, or:
 *   -EFAULT  a page of either range is not mapped (or not memory),
 *   -EPERM   @dst is in a read-only mapping,
 *   -EINVAL  a range wraps around the address space,
 *   -EIO     the device's DMA failed,
 *   -ESRCH   the context's process is exiting.
 * On error, some bytes may have been copied: see vgru_last_progress().
 */
int vgru_copy(struct vgru *v, void *dst, const void *src, size_t len);

/* vgru_last_progress - bytes completed by the handle's last command */
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
