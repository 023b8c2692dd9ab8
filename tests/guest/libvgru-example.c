// SPDX-License-Identifier: MIT
/*
 * The example of docs/libvgru.md: every kind of libvgru call once.  It is
 * compiled into vgru-tests and run there (test libvgru_example), so it
 * cannot rot.  A program of its own would call libvgru_example(NULL) from
 * main().
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libvgru.h"

/* 64-byte aligned, as a batch list must be */
static struct vgru_desc batch[3] __attribute__((aligned(64)));

static int libvgru_example(const char *device)
{
	static unsigned char src[8192], dst[8192], buf[4096];
	static uint64_t counter;
	struct vgru_result res;
	struct vgru_desc d;
	struct vgru *v;
	uint64_t old;
	int ret, t;

	/* one handle: a device context and its command window */
	ret = vgru_open(device, &v);
	if (ret) {
		fprintf(stderr, "vgru_open: %s\n", strerror(-ret));
		return ret;
	}

	/* blocking calls: 0 or -errno, the caller's own memory */
	memset(src, 'x', sizeof(src));
	ret = vgru_copy(v, dst, src, sizeof(dst));
	if (!ret)
		ret = vgru_fill(v, buf, 0x2d2d2d2d2d2d2d2dull, sizeof(buf));
	if (!ret)
		ret = vgru_fetch_add(v, &counter, 5, &old);	/* old: 0 */
	if (ret)
		goto out;

	/* asynchronous: a ticket per command, then wait for it */
	vgru_prep_copy(&d, dst, src, 64);
	t = vgru_submit(v, &d, 0);	/* or -EBUSY: all CBs in flight */
	if (t < 0) {
		ret = t;
		goto out;
	}
	ret = vgru_wait(v, t, 1000, &res);	/* at most 1 s */
	if (ret)
		goto out;

	/* a batch: run in order, the first failure ends it */
	vgru_prep_fill(&batch[0], buf, 0, 64);
	vgru_prep_cas(&batch[1], &counter, 5, 6);
	vgru_prep_copy(&batch[2], dst, buf, 64);
	t = vgru_submit_batch(v, batch, 3, 0);
	if (t < 0) {
		ret = t;
		goto out;
	}
	ret = vgru_wait(v, t, -1, &res);
	if (ret) {
		fprintf(stderr, "batch entry %llu failed: %s\n",
			(unsigned long long)res.progress,
			vgru_strerror(res.device_error));
		goto out;
	}

	/* fault policy: prefault in this thread instead of device faults */
	vgru_set_fault_policy(v, VGRU_FAULT_PREFAULT);
	ret = vgru_copy(v, src, dst, sizeof(src));

	/* an error names the cause; progress says how far it got */
	if (!ret && vgru_copy(v, dst, NULL, 64) == -EFAULT &&
	    vgru_last_progress(v) != 0)
		ret = -EIO;
out:
	if (ret)
		fprintf(stderr, "libvgru example: %s\n", strerror(-ret));
	else if (counter != 6 || dst[0] != 0 || buf[64] != '-')
		ret = -EIO;	/* cannot happen: the device did the work */
	vgru_close(v);
	return ret;
}
