/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vgru user ABI: the one definition of what /dev/vgruN offers a process,
 * shared by the driver (driver/) and libvgru (userlib/).
 *
 * open() gives the caller one device context, bound to the caller's mm.
 * mmap() of VGRU_WINDOW_SIZE bytes at offset 0 maps the context's command
 * window (layout in vgru_regs.h: VGRU_CB_*), MAP_SHARED, by the opening
 * process only.  Structures use fixed-width fields, are padded to 8
 * bytes, and keep reserved fields (zero today) for later growth.
 */
#ifndef VGRU_IOCTL_H
#define VGRU_IOCTL_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define VGRU_API_VERSION	1
#define VGRU_WINDOW_SIZE	4096

/* VGRU_IOC_INFO: what this open file is. */
struct vgru_info {
	__u32 api_version;	/* VGRU_API_VERSION */
	__u32 context;		/* device context of this file */
	__u32 nr_cbs;		/* command blocks in the window */
	__u32 window_size;	/* bytes to mmap at offset 0 */
	__u64 reserved[4];
};

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
	__u64 reserved[3];
};

#define VGRU_IOC_MAGIC		0xb7
#define VGRU_IOC_INFO		_IOR(VGRU_IOC_MAGIC, 0x00, struct vgru_info)
#define VGRU_IOC_STATS		_IOR(VGRU_IOC_MAGIC, 0x01, struct vgru_ctx_stats)

#endif /* VGRU_IOCTL_H */
