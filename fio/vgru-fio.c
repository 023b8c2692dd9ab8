// SPDX-License-Identifier: MIT
/*
 * vgru-fio: a fio ioengine whose every I/O is one vgru device command.
 *
 *   fio --ioengine=external:build/fio/vgru-fio.so [--device=/dev/vgru0] ...
 *   LD_PRELOAD=build/fio/vgru-fio.so fio --ioengine=vgru ...
 *
 * There is no disk.  Each file of a job is a "region": an anonymous
 * mapping of the file's size in the job's own address space.  A read is a
 * device COPY from the region into the io_u buffer, a write a COPY from
 * the io_u buffer into the region, so fio's latencies are the device's,
 * fault handling included.  To measure the fault path on purpose,
 * fault_every=N drops the region's pages every N I/Os (MADV_DONTNEED, or
 * munmap and mmap again at the same address): the MMU notifier flushes
 * the device TLB and the next commands fault.  The drop runs in ->prep(),
 * before fio starts an I/O's clock, so latencies hold the faults and not
 * the madvise or munmap.
 *
 * libvgru is blocking and a handle serves one thread, so this is a
 * synchronous engine with one handle per fio thread or process, opened
 * in ->init().
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fio.h"
#include "optgroup.h"
#include "verify.h"

#include "libvgru.h"

#define VGRU_FIO_EXPORT __attribute__((visibility("default")))

/* Largest prefault command: a zeroed scratch buffer of this size. */
#define VGRU_FIO_PREFAULT_CHUNK (64 * 1024)

enum vgru_fio_op {
	VGRU_FIO_OP_COPY,
	VGRU_FIO_OP_FILL,
	VGRU_FIO_OP_ATOMIC,
};

enum vgru_fio_fault_mode {
	VGRU_FIO_DONTNEED,
	VGRU_FIO_REMAP,
};

struct vgru_fio_options {
	void *td;		/* fio stores its thread here: keep offset 0 free */
	char *device;
	unsigned int op;
	unsigned int prefault;
	unsigned int fault_every;
	unsigned int fault_mode;
};

/* One device-side region per file, for the job's whole life. */
struct vgru_fio_region {
	char *addr;		/* NULL once a failed remap lost it */
	size_t len;
};

struct vgru_fio_data {
	struct vgru *v;
	struct vgru_fio_region *regions;	/* indexed by fio_file.fileno */
	unsigned int nr_regions;
	unsigned int ios_since_drop;
	int drop_error;		/* errno of a failed drop, for the next I/O */
};

static const char *const vgru_fio_op_names[] = {
	[VGRU_FIO_OP_COPY] = "copy",
	[VGRU_FIO_OP_FILL] = "fill",
	[VGRU_FIO_OP_ATOMIC] = "atomic",
};

/* Operations this libvgru can run; fill and atomic come with the device. */
static bool vgru_fio_op_supported(unsigned int op)
{
	return op == VGRU_FIO_OP_COPY;
}

/* Refuse an unsupported op when the job is parsed, not when it runs. */
static int vgru_fio_op_cb(void *data, const char *str)
{
	struct vgru_fio_options *o = data;

	if (vgru_fio_op_supported(o->op))
		return 0;
	log_err("vgru: op=%s is not supported by this libvgru (only op=copy)\n",
		str ? str : vgru_fio_op_names[o->op]);
	return 1;
}

/*
 * A plain decimal count.  As an integer option, fio would read "-3" as
 * the range "" to "3" and take 3.
 */
static int vgru_fio_fault_every_cb(void *data, const char *str)
{
	struct vgru_fio_options *o = data;
	unsigned long long val;
	char *end;

	errno = 0;
	val = str && isdigit((unsigned char)*str) ? strtoull(str, &end, 10) : 0;
	if (!str || !isdigit((unsigned char)*str) || *end || errno ||
	    val > UINT_MAX) {
		log_err("vgru: fault_every=%s: want a count, 0 (never) to %u\n",
			str ? str : "", UINT_MAX);
		return 1;
	}
	o->fault_every = val;
	return 0;
}

static struct fio_option vgru_fio_opts[] = {
	{
		.name	= "device",
		.lname	= "vgru device node",
		.type	= FIO_OPT_STR_STORE,
		.off1	= offsetof(struct vgru_fio_options, device),
		.def	= VGRU_DEFAULT_DEVICE,
		.help	= "Device node to open (one context per job thread)",
		.category = FIO_OPT_C_ENGINE,
		.group	= FIO_OPT_G_INVALID,
	},
	{
		.name	= "op",
		.lname	= "vgru command",
		.type	= FIO_OPT_STR,
		.off1	= offsetof(struct vgru_fio_options, op),
		.cb	= vgru_fio_op_cb,
		.def	= "copy",
		.help	= "Device command for each I/O",
		.posval	= {
			{ .ival = "copy", .oval = VGRU_FIO_OP_COPY,
			  .help = "COPY between the io_u buffer and the region" },
			{ .ival = "fill", .oval = VGRU_FIO_OP_FILL,
			  .help = "FILL (not supported by this libvgru)" },
			{ .ival = "atomic", .oval = VGRU_FIO_OP_ATOMIC,
			  .help = "ATOMIC (not supported by this libvgru)" },
		},
		.category = FIO_OPT_C_ENGINE,
		.group	= FIO_OPT_G_INVALID,
	},
	{
		.name	= "prefault",
		.lname	= "vgru prefault",
		.type	= FIO_OPT_BOOL,
		.off1	= offsetof(struct vgru_fio_options, prefault),
		.def	= "0",
		.help	= "Touch each region page and fault it into the device before I/O",
		.category = FIO_OPT_C_ENGINE,
		.group	= FIO_OPT_G_INVALID,
	},
	{
		.name	= "fault_every",
		.lname	= "vgru fault every N I/Os",
		.type	= FIO_OPT_STR,
		.off1	= offsetof(struct vgru_fio_options, fault_every),
		.cb	= vgru_fio_fault_every_cb,
		.def	= "0",
		.help	= "Drop the region's pages every N I/Os, so the next commands fault (0: never)",
		.category = FIO_OPT_C_ENGINE,
		.group	= FIO_OPT_G_INVALID,
	},
	{
		.name	= "fault_mode",
		.lname	= "vgru fault mode",
		.type	= FIO_OPT_STR,
		.off1	= offsetof(struct vgru_fio_options, fault_mode),
		.def	= "dontneed",
		.help	= "How fault_every drops the region's pages",
		.posval	= {
			{ .ival = "dontneed", .oval = VGRU_FIO_DONTNEED,
			  .help = "madvise(MADV_DONTNEED) the region" },
			{ .ival = "remap", .oval = VGRU_FIO_REMAP,
			  .help = "munmap the region and mmap it again at the same address" },
		},
		.category = FIO_OPT_C_ENGINE,
		.group	= FIO_OPT_G_INVALID,
	},
	{
		.name	= NULL,
	},
};

static size_t vgru_fio_page_size(void)
{
	long ps = sysconf(_SC_PAGESIZE);

	return ps > 0 ? (size_t)ps : 4096;
}

/* Write one byte per page, then have the device write the whole region. */
static int vgru_fio_prefault(struct vgru_fio_data *vd,
			     struct vgru_fio_region *r)
{
	size_t page = vgru_fio_page_size(), chunk, off;
	void *scratch;
	int ret = 0;

	for (off = 0; off < r->len; off += page)
		((volatile char *)r->addr)[off] = 0;

	chunk = r->len < VGRU_FIO_PREFAULT_CHUNK ? r->len : VGRU_FIO_PREFAULT_CHUNK;
	scratch = mmap(NULL, chunk, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (scratch == MAP_FAILED)
		return -errno;
	for (off = 0; off < r->len && !ret; off += chunk) {
		size_t n = r->len - off < chunk ? r->len - off : chunk;

		ret = vgru_copy(vd->v, r->addr + off, scratch, n);
	}
	/* Unmapping the scratch buffer frees its device TLB entries too. */
	munmap(scratch, chunk);
	return ret;
}

static int vgru_fio_drop(struct vgru_fio_region *r, unsigned int mode)
{
	void *p;

	if (!r->addr)
		return 0;
	if (mode == VGRU_FIO_DONTNEED)
		return madvise(r->addr, r->len, MADV_DONTNEED) ? -errno : 0;

	if (munmap(r->addr, r->len))
		return -errno;
	/* NOREPLACE: never clobber what another thread mapped meanwhile. */
	p = mmap(r->addr, r->len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == r->addr)
		return 0;
	if (p != MAP_FAILED)
		munmap(p, r->len);
	r->addr = NULL;
	return p == MAP_FAILED ? -errno : -EEXIST;
}

static int vgru_fio_init(struct thread_data *td)
{
	struct vgru_fio_options *o = td->eo;
	struct vgru_fio_data *vd;
	int ret;

	if (!vgru_fio_op_supported(o->op)) {
		log_err("vgru: op=%s is not supported by this libvgru\n",
			vgru_fio_op_names[o->op]);
		td_verror(td, EOPNOTSUPP, "vgru_init");
		return 1;
	}
	if (td_trim(td)) {
		log_err("vgru: trim is not supported; use read and write\n");
		td_verror(td, EOPNOTSUPP, "vgru_init");
		return 1;
	}
	if (o->fault_every && td->o.verify != VERIFY_NONE) {
		log_err("vgru: fault_every discards the region's data, so it cannot be combined with verify\n");
		td_verror(td, EINVAL, "vgru_init");
		return 1;
	}

	vd = calloc(1, sizeof(*vd));
	if (!vd) {
		td_verror(td, ENOMEM, "calloc");
		return 1;
	}
	ret = vgru_open(o->device, &vd->v);
	if (ret) {
		log_err("vgru: cannot open %s: %s%s\n", o->device, strerror(-ret),
			ret == -ENOENT ? " (is the vgru driver loaded?)" :
			ret == -EBUSY ? " (every device context is in use)" :
			ret == -EPROTO ? " (driver and libvgru API versions differ)" :
			ret == -ENOTTY ? " (not a vgru device)" :
			"");
		td_verror(td, -ret, "vgru_open");
		free(vd);
		return 1;
	}
	td->io_ops_data = vd;
	return 0;
}

static void vgru_fio_cleanup(struct thread_data *td)
{
	struct vgru_fio_data *vd = td->io_ops_data;
	unsigned int i;

	if (!vd)
		return;
	for (i = 0; i < vd->nr_regions; i++)
		if (vd->regions[i].addr)
			munmap(vd->regions[i].addr, vd->regions[i].len);
	free(vd->regions);
	vgru_close(vd->v);
	free(vd);
	td->io_ops_data = NULL;
}

/* The first open maps the file's region; later opens find it again. */
static int vgru_fio_open_file(struct thread_data *td, struct fio_file *f)
{
	struct vgru_fio_options *o = td->eo;
	struct vgru_fio_data *vd = td->io_ops_data;
	struct vgru_fio_region *r;
	size_t page = vgru_fio_page_size();
	uint64_t len;
	int ret;

	if (f->fileno < 0) {
		td_verror(td, EINVAL, "vgru_open_file");
		return 1;
	}
	if ((unsigned int)f->fileno >= vd->nr_regions) {
		unsigned int n = f->fileno + 1;

		r = realloc(vd->regions, n * sizeof(*r));
		if (!r) {
			td_verror(td, ENOMEM, "realloc");
			return 1;
		}
		memset(r + vd->nr_regions, 0,
		       (n - vd->nr_regions) * sizeof(*r));
		vd->regions = r;
		vd->nr_regions = n;
	}
	r = &vd->regions[f->fileno];
	if (r->len)
		return 0;

	len = f->real_file_size;
	if (!len || len == -1ULL)
		len = f->file_offset + f->io_size;
	if (!len || len > SIZE_MAX - page) {
		log_err("vgru: %s: no usable size (set size=)\n", f->file_name);
		td_verror(td, EINVAL, "vgru_open_file");
		return 1;
	}
	len = (len + page - 1) & ~(uint64_t)(page - 1);

	r->addr = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->addr == MAP_FAILED) {
		int err = errno;

		r->addr = NULL;
		log_err("vgru: %s: cannot map a %llu-byte region: %s\n",
			f->file_name, (unsigned long long)len, strerror(err));
		td_verror(td, err, "mmap");
		return 1;
	}
	r->len = len;

	if (o->prefault) {
		ret = vgru_fio_prefault(vd, r);
		if (ret) {
			log_err("vgru: %s: prefault failed: %s\n",
				f->file_name, strerror(-ret));
			td_verror(td, -ret, "vgru_prefault");
			return 1;
		}
	}
	return 0;
}

/* Regions live until cleanup: fio may close and reopen a file in a job. */
static int vgru_fio_close_file(struct thread_data fio_unused *td,
			       struct fio_file fio_unused *f)
{
	return 0;
}

/* Every fault_every-th I/O first drops all of the job's regions. */
static int vgru_fio_prep(struct thread_data *td, struct io_u *io_u)
{
	struct vgru_fio_options *o = td->eo;
	struct vgru_fio_data *vd = td->io_ops_data;
	unsigned int i;
	int ret;

	if (!o->fault_every || !ddir_rw(io_u->ddir))
		return 0;
	if (++vd->ios_since_drop < o->fault_every)
		return 0;
	vd->ios_since_drop = 0;
	for (i = 0; i < vd->nr_regions; i++) {
		ret = vgru_fio_drop(&vd->regions[i], o->fault_mode);
		if (ret && !vd->drop_error) {
			log_err("vgru: dropping a region's pages failed: %s\n",
				strerror(-ret));
			vd->drop_error = -ret;
		}
	}
	return 0;
}

static enum fio_q_status vgru_fio_queue(struct thread_data *td,
					struct io_u *io_u)
{
	struct vgru_fio_data *vd = td->io_ops_data;
	struct vgru_fio_region *r = NULL;
	unsigned long long len = io_u->xfer_buflen;
	char *at;
	int ret;

	fio_ro_check(td, io_u);

	if (ddir_sync(io_u->ddir))
		return FIO_Q_COMPLETED;	/* nothing is cached on the way */
	if (!ddir_rw(io_u->ddir)) {
		io_u->error = EOPNOTSUPP;
		return FIO_Q_COMPLETED;
	}
	if (vd->drop_error) {
		io_u->error = vd->drop_error;
		return FIO_Q_COMPLETED;
	}

	if (io_u->file->fileno >= 0 &&
	    (unsigned int)io_u->file->fileno < vd->nr_regions)
		r = &vd->regions[io_u->file->fileno];
	if (!r || !r->addr || io_u->offset > r->len ||
	    len > r->len - io_u->offset) {
		io_u->error = EINVAL;
		return FIO_Q_COMPLETED;
	}
	at = r->addr + io_u->offset;

	if (io_u->ddir == DDIR_READ)
		ret = vgru_copy(vd->v, io_u->xfer_buf, at, len);
	else
		ret = vgru_copy(vd->v, at, io_u->xfer_buf, len);
	if (ret) {
		io_u->error = -ret;
		io_u->resid = len - vgru_last_progress(vd->v);
	}
	return FIO_Q_COMPLETED;
}

/* fio finds this by dlsym() for ioengine=external:PATH. */
VGRU_FIO_EXPORT struct ioengine_ops ioengine = {
	.name		= "vgru",
	.version	= FIO_IOOPS_VERSION,
	.flags		= FIO_SYNCIO | FIO_DISKLESSIO,
	.init		= vgru_fio_init,
	.cleanup	= vgru_fio_cleanup,
	.open_file	= vgru_fio_open_file,
	.close_file	= vgru_fio_close_file,
	.prep		= vgru_fio_prep,
	.queue		= vgru_fio_queue,
	.options	= vgru_fio_opts,
	.option_struct_size = sizeof(struct vgru_fio_options),
};

/*
 * Registering by name makes ioengine=vgru work when the library is
 * preloaded.  Weak, so that a preload into a program other than fio is
 * harmless.
 */
extern __typeof__(register_ioengine) register_ioengine __attribute__((weak));
extern __typeof__(unregister_ioengine) unregister_ioengine __attribute__((weak));

static void __attribute__((constructor)) vgru_fio_register(void)
{
	if (register_ioengine)
		register_ioengine(&ioengine);
}

/* Before dlclose() unmaps the ops, take them off fio's engine list. */
static void __attribute__((destructor)) vgru_fio_unregister(void)
{
	if (unregister_ioengine)
		unregister_ioengine(&ioengine);
}
