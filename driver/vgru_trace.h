/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vgru tracepoints, system "vgru": one device fault from its record to the
 * response, in phases (record, resolution start, each page lookup, drop-in
 * or retry, resolution end, response), the notifier's flushes, completion
 * notices, prefaults, and context lifetime.
 *
 * ctx is the device context index, the one fault records and registers
 * name.  vgru_fault and vgru_resolve_start carry the faulting address;
 * lookups, drop-ins and retries the page address.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vgru

#if !defined(VGRU_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define VGRU_TRACE_H

#include <linux/mmu_notifier.h>
#include <linux/tracepoint.h>

#include "vgru_regs.h"

/* the format file then shows values, which perf and trace-cmd can parse */
TRACE_DEFINE_ENUM(MMU_NOTIFY_UNMAP);
TRACE_DEFINE_ENUM(MMU_NOTIFY_CLEAR);
TRACE_DEFINE_ENUM(MMU_NOTIFY_PROTECTION_VMA);
TRACE_DEFINE_ENUM(MMU_NOTIFY_PROTECTION_PAGE);
TRACE_DEFINE_ENUM(MMU_NOTIFY_SOFT_DIRTY);
TRACE_DEFINE_ENUM(MMU_NOTIFY_RELEASE);
TRACE_DEFINE_ENUM(MMU_NOTIFY_MIGRATE);
TRACE_DEFINE_ENUM(MMU_NOTIFY_EXCLUSIVE);

TRACE_EVENT(vgru_fault,
	    TP_PROTO(u32 ctx, u32 cb, u64 va, u32 flags),
	    TP_ARGS(ctx, cb, va, flags),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u32, cb)
			     __field(u64, va)
			     __field(u32, flags)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->cb = cb;
			   __entry->va = va;
			   __entry->flags = flags;),
	    TP_printk("ctx=%u cb=%u va=0x%llx flags=0x%x %s%s",
		      __entry->ctx, __entry->cb, __entry->va, __entry->flags,
		      __entry->flags & VGRU_FAULT_WRITE ? "write" : "read",
		      __entry->flags & VGRU_FAULT_PERM ? " perm" : "")
);

TRACE_EVENT(vgru_resolve_start,
	    TP_PROTO(u32 ctx, u32 cb, u64 va, bool write),
	    TP_ARGS(ctx, cb, va, write),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u32, cb)
			     __field(u64, va)
			     __field(bool, write)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->cb = cb;
			   __entry->va = va;
			   __entry->write = write;),
	    TP_printk("ctx=%u cb=%u va=0x%llx %s",
		      __entry->ctx, __entry->cb, __entry->va,
		      __entry->write ? "write" : "read")
);

/*
 * The end of a fault's resolution, before its answer: ret 0 or -errno,
 * the translations dropped in, the retries it took.
 */
TRACE_EVENT(vgru_resolve_end,
	    TP_PROTO(u32 ctx, u32 cb, u64 va, int ret, unsigned int pages,
		     unsigned int retries),
	    TP_ARGS(ctx, cb, va, ret, pages, retries),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u32, cb)
			     __field(u64, va)
			     __field(int, ret)
			     __field(unsigned int, pages)
			     __field(unsigned int, retries)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->cb = cb;
			   __entry->va = va;
			   __entry->ret = ret;
			   __entry->pages = pages;
			   __entry->retries = retries;),
	    TP_printk("ctx=%u cb=%u va=0x%llx ret=%d pages=%u retries=%u",
		      __entry->ctx, __entry->cb, __entry->va, __entry->ret,
		      __entry->pages, __entry->retries)
);

TRACE_EVENT(vgru_page_lookup,
	    TP_PROTO(u32 ctx, u64 va, int ret),
	    TP_ARGS(ctx, va, ret),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u64, va)
			     __field(int, ret)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->va = va;
			   __entry->ret = ret;),
	    TP_printk("ctx=%u va=0x%llx ret=%d",
		      __entry->ctx, __entry->va, __entry->ret)
);

TRACE_EVENT(vgru_dropin,
	    TP_PROTO(u32 ctx, u64 va, u64 pa, bool writable, bool huge),
	    TP_ARGS(ctx, va, pa, writable, huge),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u64, va)
			     __field(u64, pa)
			     __field(bool, writable)
			     __field(bool, huge)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->va = va;
			   __entry->pa = pa;
			   __entry->writable = writable;
			   __entry->huge = huge;),
	    TP_printk("ctx=%u va=0x%llx pa=0x%llx %s%s",
		      __entry->ctx, __entry->va, __entry->pa,
		      __entry->writable ? "rw" : "ro",
		      __entry->huge ? " 2M" : "")
);

TRACE_EVENT(vgru_retry,
	    TP_PROTO(u32 ctx, u64 va),
	    TP_ARGS(ctx, va),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u64, va)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->va = va;),
	    TP_printk("ctx=%u va=0x%llx", __entry->ctx, __entry->va)
);

TRACE_EVENT(vgru_restart,
	    TP_PROTO(u32 ctx, u32 cb, u32 seq, int err),
	    TP_ARGS(ctx, cb, seq, err),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u32, cb)
			     __field(u32, seq)
			     __field(int, err)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->cb = cb;
			   __entry->seq = seq;
			   __entry->err = err;),
	    TP_printk("ctx=%u cb=%u seq=%u %s err=%d",
		      __entry->ctx, __entry->cb, __entry->seq,
		      __entry->err ? "fail" : "restart", __entry->err)
);

TRACE_EVENT(vgru_invalidate,
	    TP_PROTO(u32 ctx, u64 start, u64 end, enum mmu_notifier_event event),
	    TP_ARGS(ctx, start, end, event),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u64, start)
			     __field(u64, end)
			     __field(unsigned int, event)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->start = start;
			   __entry->end = end;
			   __entry->event = event;),
	    TP_printk("ctx=%u start=0x%llx end=0x%llx event=%s",
		      __entry->ctx, __entry->start, __entry->end,
		      __print_symbolic(__entry->event,
				       { MMU_NOTIFY_UNMAP, "unmap" },
				       { MMU_NOTIFY_CLEAR, "clear" },
				       { MMU_NOTIFY_PROTECTION_VMA, "protection_vma" },
				       { MMU_NOTIFY_PROTECTION_PAGE, "protection_page" },
				       { MMU_NOTIFY_SOFT_DIRTY, "soft_dirty" },
				       { MMU_NOTIFY_RELEASE, "release" },
				       { MMU_NOTIFY_MIGRATE, "migrate" },
				       { MMU_NOTIFY_EXCLUSIVE, "exclusive" }))
);

TRACE_EVENT(vgru_notice,
	    TP_PROTO(u32 ctx, u32 cb, u64 notices),
	    TP_ARGS(ctx, cb, notices),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u32, cb)
			     __field(u64, notices)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->cb = cb;
			   __entry->notices = notices;),
	    TP_printk("ctx=%u cb=%u notices=%llu", __entry->ctx, __entry->cb,
		      __entry->notices)
);

TRACE_EVENT(vgru_prefault,
	    TP_PROTO(u32 ctx, u64 addr, u64 len, bool write, u64 done,
		     long ret),
	    TP_ARGS(ctx, addr, len, write, done, ret),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u64, addr)
			     __field(u64, len)
			     __field(bool, write)
			     __field(u64, done)
			     __field(long, ret)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->addr = addr;
			   __entry->len = len;
			   __entry->write = write;
			   __entry->done = done;
			   __entry->ret = ret;),
	    TP_printk("ctx=%u addr=0x%llx len=%llu %s done=%llu ret=%ld",
		      __entry->ctx, __entry->addr, __entry->len,
		      __entry->write ? "write" : "read", __entry->done,
		      __entry->ret)
);

TRACE_EVENT(vgru_ctx_open,
	    TP_PROTO(u32 ctx, u32 tag, pid_t pid),
	    TP_ARGS(ctx, tag, pid),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u32, tag)
			     __field(pid_t, pid)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->tag = tag;
			   __entry->pid = pid;),
	    TP_printk("ctx=%u tag=%u pid=%d",
		      __entry->ctx, __entry->tag, __entry->pid)
);

TRACE_EVENT(vgru_ctx_close,
	    TP_PROTO(u32 ctx, u32 tag),
	    TP_ARGS(ctx, tag),
	    TP_STRUCT__entry(__field(u32, ctx)
			     __field(u32, tag)),
	    TP_fast_assign(__entry->ctx = ctx;
			   __entry->tag = tag;),
	    TP_printk("ctx=%u tag=%u", __entry->ctx, __entry->tag)
);

#endif /* VGRU_TRACE_H */

/* out of the include guard: define_trace.h reads this file again */
#undef TRACE_INCLUDE_PATH
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_PATH .
#define TRACE_INCLUDE_FILE vgru_trace
#include <trace/define_trace.h>
