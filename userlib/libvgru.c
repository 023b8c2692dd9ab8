// SPDX-License-Identifier: MIT
/*
 * libvgru: command blocks written through the mapped window; the device
 * and driver resolve faults; the caller polls the command's status.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libvgru.h"
#include "vgru_ioctl.h"
#include "vgru_regs.h"

/* Busy polls before each yield: a short command finishes within these. */
#define VGRU_SPINS_PER_YIELD 64

struct vgru {
	int fd;
	unsigned int context;
	volatile uint8_t *cb;	/* command block 0 of the window */
	void *window;
	uint64_t last_progress;
};

static void cb_write32(struct vgru *v, unsigned int reg, uint32_t val)
{
	*(volatile uint32_t *)(v->cb + reg) = val;
}

static void cb_write64(struct vgru *v, unsigned int reg, uint64_t val)
{
	*(volatile uint64_t *)(v->cb + reg) = val;
}

static uint32_t cb_read32(const struct vgru *v, unsigned int reg)
{
	return *(volatile uint32_t *)(v->cb + reg);
}

static uint64_t cb_read64(const struct vgru *v, unsigned int reg)
{
	return *(volatile uint64_t *)(v->cb + reg);
}

int vgru_open(const char *path, struct vgru **out)
{
	struct vgru_info info;
	struct vgru *v;
	int ret;

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->fd = open(path ? path : VGRU_DEFAULT_DEVICE, O_RDWR | O_CLOEXEC);
	if (v->fd < 0) {
		ret = -errno;
		goto err_free;
	}
	if (ioctl(v->fd, VGRU_IOC_INFO, &info) < 0) {
		ret = -errno;
		goto err_close;
	}
	if (info.api_version != VGRU_API_VERSION ||
	    info.window_size != VGRU_WINDOW_SIZE) {
		ret = -EPROTO;
		goto err_close;
	}
	v->window = mmap(NULL, VGRU_WINDOW_SIZE, PROT_READ | PROT_WRITE,
			 MAP_SHARED, v->fd, 0);
	if (v->window == MAP_FAILED) {
		ret = -errno;
		goto err_close;
	}
	v->cb = v->window;
	v->context = info.context;
	*out = v;
	return 0;

err_close:
	close(v->fd);
err_free:
	free(v);
	return ret;
}

void vgru_close(struct vgru *v)
{
	if (!v)
		return;
	munmap(v->window, VGRU_WINDOW_SIZE);
	close(v->fd);
	free(v);
}

static int vgru_error_to_errno(uint32_t error)
{
	switch (VGRU_ERR_CLASS(error)) {
	case VGRU_ERR_OPCODE:
	case VGRU_ERR_RANGE:
		return -EINVAL;
	case VGRU_ERR_DMA:
		return -EIO;
	case VGRU_ERR_FAULT:
		return VGRU_ERR_DETAIL(error) ? -(int)VGRU_ERR_DETAIL(error)
					      : -EFAULT;
	default:
		return -EIO;
	}
}

/* Wait for the command in CB 0 to end; 0 or -errno. */
static int vgru_wait(struct vgru *v)
{
	unsigned int spins = 0;
	uint32_t status;

	for (;;) {
		status = cb_read32(v, VGRU_CB_STATUS);
		if (status != VGRU_CB_ACTIVE && status != VGRU_CB_FAULT)
			break;
		if (++spins % VGRU_SPINS_PER_YIELD == 0)
			sched_yield();
	}
	v->last_progress = cb_read64(v, VGRU_CB_PROGRESS);
	if (status == VGRU_CB_DONE)
		return 0;
	if (status == VGRU_CB_ERROR)
		return vgru_error_to_errno(cb_read32(v, VGRU_CB_ERROR_CODE));
	return -EIO;	/* IDLE: the context was stopped under us */
}

int vgru_copy(struct vgru *v, void *dst, const void *src, size_t len)
{
	cb_write32(v, VGRU_CB_OPCODE, VGRU_OP_COPY);
	cb_write32(v, VGRU_CB_FLAGS, 0);
	cb_write64(v, VGRU_CB_SRC, (uintptr_t)src);
	cb_write64(v, VGRU_CB_DST, (uintptr_t)dst);
	cb_write64(v, VGRU_CB_LEN, len);
	cb_write32(v, VGRU_CB_DOORBELL, VGRU_CB_START);
	return vgru_wait(v);
}

uint64_t vgru_last_progress(const struct vgru *v)
{
	return v->last_progress;
}

int vgru_stats(struct vgru *v, struct vgru_stats *stats)
{
	struct vgru_ctx_stats st;

	if (ioctl(v->fd, VGRU_IOC_STATS, &st) < 0)
		return -errno;
	stats->faults = st.faults;
	stats->fault_errors = st.fault_errors;
	stats->dropins = st.dropins;
	stats->retries = st.retries;
	stats->invalidations = st.invalidations;
	return 0;
}

unsigned int vgru_context(const struct vgru *v)
{
	return v->context;
}

int vgru_fd(const struct vgru *v)
{
	return v->fd;
}
