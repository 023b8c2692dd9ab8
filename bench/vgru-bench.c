// SPDX-License-Identifier: MIT
/*
 * vgru-bench: the guest-side vgru benchmarks (figures 1-6, 9, 10), one JSON
 * object out.
 *
 *   vgru-bench [--quick] [--json FILE] [--device DEV] [FIGURE...]
 *
 * FIGURE is one of the keys below (default: all, in this order).  Progress
 * lines go to stderr, the JSON object to FILE (rewritten after every
 * figure, so a run cut short keeps what it measured) or to stdout.  Exit
 * status: 0; 1 if a figure failed (its "error" says why, the other
 * figures still run); 2 for a usage error.
 *
 * Each figure is { title, what, supported, [reason], [error], ratios, raw,
 * plots, wall_s } (the shared result schema).  Times come from
 * CLOCK_MONOTONIC; every number is the median of repeated measurements
 * and each "what" says how many.  Raw names end in their unit (_us, _s,
 * _mib_s, _bytes, _count, _per_s, _per_mib).  "Warm" means every
 * translation the command needs is already in the device TLB; "cold" or
 * "fresh" means the device has never seen the pages.  Buffers are in 4 KiB
 * pages (MADV_NOHUGEPAGE) everywhere but in huge_pages.
 *
 * fault_cost (1): device fault vs the CPU's own first-touch fault
 *   isolated: 64 B copies from a device-warm source into one fresh page
 *   each (one device write fault per op; ops that took another fault
 *   count are dropped), minus the same copy warm.  Fresh pages lie
 *   ISO_FRESH_STRIDE apart, so that no fault continues another's
 *   fault-around block (a stream, which the driver faults in whole).
 *   raw isolated_op_cold_us, isolated_op_warm_us, isolated_device_fault_us,
 *       isolated_op_populated_us, isolated_device_fault_populated_us
 *       (destination page already touched by the CPU), cpu_first_touch_us,
 *       isolated_ops_count, isolated_ops_dropped_count,
 *       isolated_faults_count;
 *       streaming_bytes, streaming_device_us, streaming_cpu_us,
 *       streaming_device_per_page_us, streaming_cpu_per_page_us,
 *       streaming_faults_count (per copy), streaming_faults_per_mib;
 *       breakdown_{submit_to_irq, irq_to_fault, fault_to_resolve,
 *       page_lookup, lookup_to_dropin, dropin_to_restart,
 *       restart_to_done, submit_to_fault, traced_op}_us,
 *       breakdown_ops_count (null when the driver has no tracepoints:
 *       "breakdown_reason" says why)
 *   ratios isolated_device_over_cpu, isolated_populated_device_over_cpu,
 *          streaming_device_over_cpu
 *   plots fault_cost_isolated (bar), fault_cost_breakdown (bar)
 * warm_copy (2): device copy vs memcpy vs process_vm_readv from a child
 *   raw {device,memcpy,pvr}_<sz>_mib_s, device_faults_<sz>_count (faults
 *       during the timed device copies; 0 = all TLB hits),
 *       device_reps_<sz>_count
 *   ratios device_over_memcpy_<sz>, device_over_pvr_<sz> (64k, 1m, 16m)
 *   plots warm_copy_throughput (line, log-log)
 *   A copy is warm only if the device TLB holds both buffers: the default
 *   64 x 4 entries hold 512 KiB of copy; run with a larger TLB (device
 *   property tlb-sets) to measure warm copies beyond that.
 * round_trip (3): 64 B warm device copy vs getppid() vs 64 B memcpy
 *   raw device_64b_us, getppid_us, memcpy_64b_us, device_faults_count
 *   ratios device_over_getppid, device_over_memcpy
 *   plots round_trip (bar, log y)
 * fault_around (4a): device-cold copy of CPU-populated buffers per
 *   fault-around setting K = 1 .. 512 (VGRU_IOC_FAULT_AROUND; a driver
 *   without it: supported:false)
 *   raw k<K>_faults_count (per copy), k<K>_us_per_page,
 *       cpu_first_touch_per_page_us, best_k_count, driver_default_k_count,
 *       copy_bytes
 *   ratios k<K>_over_cpu, best_over_k1_time (fastest K's time over
 *          K=1's), best_over_cpu
 *   plots fault_around_faults, fault_around_time (line)
 * huge_pages (4b): cold device copy between two THP-advised buffers vs two
 *   4 KiB-page ones, CPU-populated first or fresh (the device's faults
 *   allocate them); "thp_enabled" and "device_2m_pages" beside
 *   raw <case>_faults_per_mib, <case>_us_per_mib, <case>_retries_count
 *       for <case> thp, small, thp_fresh, small_fresh; thp_backed_bytes,
 *       thp_fresh_backed_bytes (smallest AnonHugePages total seen),
 *       buffer_bytes (both buffers), thp_faults_count (per copy; 2 MiB
 *       drop-ins: 2 per 2 MiB copied), cpu_thp_fresh_us_per_mib (CPU
 *       memcpy into a fresh THP buffer)
 *   ratios thp_over_small_faults, thp_over_small_time,
 *          thp_over_small_fresh_time, thp_over_cpu_time,
 *          thp_fresh_over_cpu_time
 *   plots huge_pages_time (bar)
 * invalidation (5): munmap / MADV_DONTNEED / mprotect(PROT_READ) of a
 *   populated buffer: device-mapped vs never seen (context open) vs no
 *   context open; and 1000 mprotect flips of a small untouched range
 *   raw <op>_device_mapped_us, <op>_unseen_ctx_us, <op>_no_ctx_us,
 *       <op>_invalidations_count (device-mapped case: notifier ranges),
 *       <op>_device_invalidations_count (of those, sent to the device),
 *       <op>_unseen_device_invalidations_count, buffer_bytes,
 *       flip_ctx_us, flip_no_ctx_us (per call), flips_count,
 *       flip_invalidations_count, flip_device_invalidations_count (over
 *       flips_count calls)
 *   ratios <op>_mapped_over_no_ctx, <op>_unseen_over_no_ctx,
 *          <op>_mapped_over_unseen, flip_ctx_over_no_ctx
 *   plots invalidation_calls (bar), invalidation_flips (bar)
 * concurrency (6): 1, 2, 4 processes, each its own context, copying at once
 *   raw {warm,cold}_<n>p_mib_s, {warm,cold}_<n>p_faults_per_s,
 *       contexts_count, copy_bytes, seconds_s
 *   ratios {warm,cold}_2p_over_1p, {warm,cold}_4p_over_1p
 *   plots concurrency_throughput, concurrency_faults (line)
 * fault_policy (9): a cold 16 MiB copy (--quick: 4 MiB) per page of copy:
 *   libvgru's VGRU_FAULT_DEVICE (the device faults, the driver's IRQ
 *   thread resolves) vs VGRU_FAULT_PREFAULT (NO_BLOCK misses, the calling
 *   thread prefaults) vs the CPU's own cold memcpy (first touch)
 *   raw {device,prefault,cpu}_us_per_page, {device,prefault}_faults_count,
 *       prefault_prefaults_count, copy_bytes, reps_count
 *   ratios prefault_over_device, device_over_cpu, prefault_over_cpu
 *   plots fault_policy (bar)
 * async (10): 64 B warm copies, commands per second: one blocking call at
 *   a time vs 8 in flight (a ring of tickets: wait the oldest, submit it
 *   again) vs batches of 64 (one submit and one wait per 64)
 *   raw blocking_ops_per_s, inflight8_ops_per_s, batch64_ops_per_s
 *   ratios inflight8_over_blocking, batch64_over_blocking
 *   plots async_ops (bar)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libvgru.h"

#define PAGE		4096UL
#define KIB		1024UL
#define MIB		(1024UL * 1024)
#define HUGE_SIZE	(2 * MIB)
#define SMALL_OP	64		/* bytes of the small commands */
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static struct {
	bool quick;
	const char *device;
	const char *json;
	uint64_t start_ns;
} opt = { .device = VGRU_DEFAULT_DEVICE };

/* memcpy through a pointer the compiler cannot see through: never elided */
static void *(*volatile memcpy_fn)(void *, const void *, size_t) = memcpy;

/* ---- small helpers ------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void progress(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vgru-bench [%6.1fs] ",
		(now_ns() - opt.start_ns) / 1e9);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of @n values (sorts them); NAN for none. */
static double median(double *v, unsigned int n)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* a / b, or NAN when either is missing or b is zero */
static double ratio(double a, double b)
{
	return isfinite(a) && isfinite(b) && b != 0 ? a / b : NAN;
}

/*
 * Anonymous memory in 4 KiB pages.  Transparent huge pages (often "always"
 * in a guest) would turn most first touches into no fault at all and mix
 * their own costs in; huge_pages measures them on purpose.
 */
static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

static void unmap(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

static const char *device_name(void)
{
	const char *slash = strrchr(opt.device, '/');

	return slash ? slash + 1 : opt.device;
}

/* "4k", "64k", "1m", "64m" */
static const char *size_label(size_t len, char *buf, size_t buflen)
{
	if (len >= MIB)
		snprintf(buf, buflen, "%zum", len / MIB);
	else
		snprintf(buf, buflen, "%zuk", len / KIB);
	return buf;
}

/* Read a small text file, without its trailing newline; 0 or -errno. */
static int read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	buf[n] = 0;
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = 0;
	return 0;
}

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		ret = errno ? -errno : -EIO;
	close(fd);
	return ret;
}

static int read_u64(const char *path, uint64_t *val)
{
	char buf[64];
	int ret = read_text(path, buf, sizeof(buf));

	if (ret)
		return ret;
	*val = strtoull(buf, NULL, 0);
	return 0;
}

/* The word in brackets of a sysfs choice file: "always [madvise] never" */
static int read_choice(const char *path, char *word, size_t len)
{
	char buf[256], *open_br, *close_br;
	int ret = read_text(path, buf, sizeof(buf));

	if (ret)
		return ret;
	open_br = strchr(buf, '[');
	close_br = open_br ? strchr(open_br, ']') : NULL;
	if (!close_br)
		return -EINVAL;
	*close_br = 0;
	snprintf(word, len, "%s", open_br + 1);
	return 0;
}

/* ---- results -------------------------------------------------------------- */

#define MAX_NUMS	96
#define MAX_EXTRAS	6
#define MAX_PLOTS	3
#define MAX_SERIES	4
#define MAX_POINTS	16

struct num {
	char name[64];
	double val;			/* NAN: written as null */
};

struct series {
	char name[48];
	unsigned int n;
	double x[MAX_POINTS];		/* line plots */
	char label[MAX_POINTS][32];	/* bar plots */
	double y[MAX_POINTS];
};

struct plot {
	char name[48], title[96], x_label[64], y_label[64];
	bool x_log, y_log, bar;
	unsigned int nseries;
	struct series series[MAX_SERIES];
};

/* A figure-level field beside the schema's, as a JSON literal. */
struct extra {
	char key[32];
	char json[320];
};

struct figure {
	const char *id;
	const char *title;
	char what[1024];
	bool supported;
	char reason[256];
	char error[320];
	double wall_s;
	unsigned int nratios, nraw, nplots, nextras;
	struct num ratios[24];
	struct num raw[MAX_NUMS];
	struct plot plots[MAX_PLOTS];
	struct extra extras[MAX_EXTRAS];
};

static void add_num(struct num *arr, unsigned int *n, unsigned int max,
		    double val, const char *fmt, va_list ap)
{
	if (*n >= max)
		return;
	vsnprintf(arr[*n].name, sizeof(arr[*n].name), fmt, ap);
	arr[*n].val = val;
	(*n)++;
}

__attribute__((format(printf, 3, 4)))
static void fig_raw(struct figure *f, double val, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_num(f->raw, &f->nraw, MAX_NUMS, val, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 3, 4)))
static void fig_ratio(struct figure *f, double val, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_num(f->ratios, &f->nratios, ARRAY_SIZE(f->ratios), val, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 2, 3)))
static void fig_what(struct figure *f, const char *fmt, ...)
{
	size_t used = strlen(f->what);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->what + used, sizeof(f->what) - used, fmt, ap);
	va_end(ap);
}

/* Record the figure's first error; returns -1 for "return fig_error()". */
__attribute__((format(printf, 2, 3)))
static int fig_error(struct figure *f, const char *fmt, ...)
{
	va_list ap;

	if (!f->error[0]) {
		va_start(ap, fmt);
		vsnprintf(f->error, sizeof(f->error), fmt, ap);
		va_end(ap);
		progress("%s: error: %s", f->id, f->error);
	}
	return -1;
}

static int vgru_error(struct figure *f, const char *what, int ret)
{
	return fig_error(f, "%s: %s", what, strerror(-ret));
}

static int map_error(struct figure *f, size_t len)
{
	return fig_error(f, "mmap of %zu bytes: %s", len, strerror(errno));
}

static void json_escape(char *out, size_t len, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			o += snprintf(out + o, len - o, "\\%c", c);
		else if (c < 0x20)
			o += snprintf(out + o, len - o, "\\u%04x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = 0;
}

static struct extra *fig_extra(struct figure *f, const char *key)
{
	struct extra *e;

	if (f->nextras >= MAX_EXTRAS)
		return NULL;
	e = &f->extras[f->nextras++];
	snprintf(e->key, sizeof(e->key), "%s", key);
	return e;
}

static void fig_extra_str(struct figure *f, const char *key, const char *val)
{
	struct extra *e = fig_extra(f, key);
	char esc[300];

	if (!e)
		return;
	json_escape(esc, sizeof(esc), val);
	snprintf(e->json, sizeof(e->json), "\"%s\"", esc);
}

static void fig_extra_bool(struct figure *f, const char *key, bool val)
{
	struct extra *e = fig_extra(f, key);

	if (e)
		snprintf(e->json, sizeof(e->json), "%s", val ? "true" : "false");
}

static struct plot *fig_plot(struct figure *f, const char *name,
			     const char *title, const char *x_label,
			     const char *y_label, bool bar)
{
	struct plot *p;

	if (f->nplots >= MAX_PLOTS)
		return NULL;
	p = &f->plots[f->nplots++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->title, sizeof(p->title), "%s", title);
	snprintf(p->x_label, sizeof(p->x_label), "%s", x_label);
	snprintf(p->y_label, sizeof(p->y_label), "%s", y_label);
	p->bar = bar;
	return p;
}

/* The series called @name of @p, created on first use. */
static struct series *plot_series(struct plot *p, const char *name)
{
	for (unsigned int i = 0; p && i < p->nseries; i++)
		if (!strcmp(p->series[i].name, name))
			return &p->series[i];
	if (!p || p->nseries >= MAX_SERIES)
		return NULL;
	snprintf(p->series[p->nseries].name, sizeof(p->series[0].name), "%s",
		 name);
	return &p->series[p->nseries++];
}

static void plot_point(struct plot *p, const char *series, double x,
		       double y)
{
	struct series *s = plot_series(p, series);

	if (s && s->n < MAX_POINTS) {
		s->x[s->n] = x;
		s->y[s->n++] = y;
	}
}

static void plot_bar(struct plot *p, const char *series, const char *label,
		     double y)
{
	struct series *s = plot_series(p, series);

	if (s && s->n < MAX_POINTS) {
		snprintf(s->label[s->n], sizeof(s->label[0]), "%s", label);
		s->y[s->n++] = y;
	}
}

/* ---- JSON output ---------------------------------------------------------- */

static void json_num(FILE *out, double v)
{
	if (isfinite(v))
		fprintf(out, "%.10g", v);
	else
		fputs("null", out);
}

static void json_string(FILE *out, const char *s)
{
	char esc[2048];

	json_escape(esc, sizeof(esc), s);
	fprintf(out, "\"%s\"", esc);
}

static void json_nums(FILE *out, const char *key, const struct num *arr,
		      unsigned int n)
{
	fprintf(out, ",\n    \"%s\": {", key);
	for (unsigned int i = 0; i < n; i++) {
		fprintf(out, "%s\n      \"%s\": ", i ? "," : "", arr[i].name);
		json_num(out, arr[i].val);
	}
	fprintf(out, "%s}", n ? "\n    " : "");
}

static void json_series(FILE *out, const struct plot *p,
			const struct series *s)
{
	fputs("{ \"name\": ", out);
	json_string(out, s->name);
	fputs(", \"points\": [", out);
	for (unsigned int i = 0; i < s->n; i++) {
		fputs(i ? ", [" : "[", out);
		if (p->bar)
			json_string(out, s->label[i]);
		else
			json_num(out, s->x[i]);
		fputs(", ", out);
		json_num(out, s->y[i]);
		fputs("]", out);
	}
	fputs("] }", out);
}

static void json_plot(FILE *out, const struct plot *p)
{
	fputs("\n      { \"name\": ", out);
	json_string(out, p->name);
	fputs(", \"title\": ", out);
	json_string(out, p->title);
	fputs(",\n        \"x_label\": ", out);
	json_string(out, p->x_label);
	fputs(", \"y_label\": ", out);
	json_string(out, p->y_label);
	fprintf(out, ",\n        \"x_log\": %s, \"y_log\": %s, \"kind\": \"%s\","
		"\n        \"series\": [", p->x_log ? "true" : "false",
		p->y_log ? "true" : "false", p->bar ? "bar" : "line");
	for (unsigned int i = 0; i < p->nseries; i++) {
		fputs(i ? ",\n          " : "\n          ", out);
		json_series(out, p, &p->series[i]);
	}
	fputs(" ] }", out);
}

static void json_figure(FILE *out, const struct figure *f)
{
	fprintf(out, "  \"%s\": {\n    \"title\": ", f->id);
	json_string(out, f->title);
	fputs(",\n    \"what\": ", out);
	json_string(out, f->what);
	fprintf(out, ",\n    \"supported\": %s",
		f->supported ? "true" : "false");
	if (!f->supported) {
		fputs(",\n    \"reason\": ", out);
		json_string(out, f->reason);
	}
	if (f->error[0]) {
		fputs(",\n    \"error\": ", out);
		json_string(out, f->error);
	}
	json_nums(out, "ratios", f->ratios, f->nratios);
	json_nums(out, "raw", f->raw, f->nraw);
	fputs(",\n    \"plots\": [", out);
	for (unsigned int i = 0; f->supported && i < f->nplots; i++) {
		fputs(i ? "," : "", out);
		json_plot(out, &f->plots[i]);
	}
	fputs(" ]", out);
	for (unsigned int i = 0; i < f->nextras; i++)
		fprintf(out, ",\n    \"%s\": %s", f->extras[i].key,
			f->extras[i].json);
	fprintf(out, ",\n    \"wall_s\": %.3g\n  }", f->wall_s);
}

static void json_write(FILE *out, struct figure *const *figs, unsigned int n)
{
	fputs("{\n", out);
	for (unsigned int i = 0; i < n; i++) {
		json_figure(out, figs[i]);
		fputs(i + 1 < n ? ",\n" : "\n", out);
	}
	fputs("}\n", out);
}

/* Write to a temporary file first: a reader never sees half an object. */
static int json_save(const char *path, struct figure *const *figs,
		     unsigned int n)
{
	char tmp[4096];
	FILE *out;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	out = fopen(tmp, "w");
	if (!out)
		return -errno;
	json_write(out, figs, n);
	if (fclose(out) || rename(tmp, path))
		return -errno;
	return 0;
}

/* ---- timing loops --------------------------------------------------------- */

#define MAX_SAMPLES	2000
#define MIN_BATCH_NS	50000	/* time at least this long per sample */
#define MAX_BATCH	(1u << 20)

struct budget {
	unsigned int min_reps, max_reps;
	double target_ns;	/* keep sampling until this much time is spent */
};

static struct budget budget(void)
{
	if (opt.quick)
		return (struct budget){ 3, 500, 0.15e9 };
	return (struct budget){ 3, MAX_SAMPLES, 0.5e9 };
}

/* One operation to time; returns 0 or -errno. */
typedef int (*op_fn)(void *arg);

struct timing {
	double ns;		/* median per operation */
	unsigned int reps;	/* samples */
	unsigned int batch;	/* operations per sample */
};

static int run_batch(op_fn fn, void *arg, unsigned int n, double *ns)
{
	uint64_t t0 = now_ns();

	for (unsigned int i = 0; i < n; i++) {
		int ret = fn(arg);

		if (ret)
			return ret;
	}
	*ns = (double)(now_ns() - t0);
	return 0;
}

/*
 * Time @fn: batches grow until one lasts MIN_BATCH_NS (so that the clock's
 * own cost does not count), then samples are taken until the budget is
 * spent; the result is the median per operation.
 */
static int measure(op_fn fn, void *arg, const struct budget *b,
		   struct timing *t)
{
	static double samples[MAX_SAMPLES];
	unsigned int batch = 1, n = 0;
	double ns, total;
	int ret;

	for (;;) {
		ret = run_batch(fn, arg, batch, &ns);
		if (ret)
			return ret;
		if (ns >= MIN_BATCH_NS || batch >= MAX_BATCH)
			break;
		batch *= 2;
	}
	samples[n++] = ns / batch;
	total = ns;
	while (n < b->max_reps && (n < b->min_reps || total < b->target_ns)) {
		ret = run_batch(fn, arg, batch, &ns);
		if (ret)
			return ret;
		samples[n++] = ns / batch;
		total += ns;
	}
	t->ns = median(samples, n);
	t->reps = n;
	t->batch = batch;
	return 0;
}

struct copy_arg {
	struct vgru *v;
	void *dst;
	const void *src;
	size_t len;
	pid_t pid;		/* process_vm_readv peer */
};

static int op_device(void *arg)
{
	struct copy_arg *c = arg;

	return vgru_copy(c->v, c->dst, c->src, c->len);
}

static int op_memcpy(void *arg)
{
	struct copy_arg *c = arg;

	memcpy_fn(c->dst, c->src, c->len);
	return 0;
}

static int op_pvr(void *arg)
{
	struct copy_arg *c = arg;
	struct iovec local = { c->dst, c->len };
	struct iovec remote = { (void *)c->src, c->len };
	ssize_t n = process_vm_readv(c->pid, &local, 1, &remote, 1, 0);

	if (n < 0)
		return -errno;
	return (size_t)n == c->len ? 0 : -EIO;
}

static int op_getppid(void *arg)
{
	(void)arg;
	syscall(SYS_getppid);	/* the raw call: no libc caching */
	return 0;
}

static int open_device(struct figure *f, struct vgru **v)
{
	int ret = vgru_open(opt.device, v);
	char what[300];

	if (ret) {
		snprintf(what, sizeof(what), "vgru_open %s", opt.device);
		return vgru_error(f, what, ret);
	}
	return 0;
}

static int get_stats(struct figure *f, struct vgru *v, struct vgru_stats *st)
{
	int ret = vgru_stats(v, st);

	return ret ? vgru_error(f, "vgru_stats", ret) : 0;
}

/*
 * One timed vgru_copy(): microseconds in @us; the faults and retries it
 * caused, from the context's counters read before and after, in @faults
 * and @retries (either may be NULL).
 */
static int timed_copy(struct figure *f, struct vgru *v, void *dst,
		      const void *src, size_t len, double *us,
		      uint64_t *faults, uint64_t *retries)
{
	struct vgru_stats a, b;
	uint64_t t0;
	int ret;

	if (get_stats(f, v, &a))
		return -1;
	t0 = now_ns();
	ret = vgru_copy(v, dst, src, len);
	*us = (now_ns() - t0) / 1e3;
	if (ret)
		return vgru_error(f, "cold copy", ret);
	if (get_stats(f, v, &b))
		return -1;
	if (faults)
		*faults = b.faults - a.faults;
	if (retries)
		*retries = b.retries - a.retries;
	return 0;
}

/* One cold copy of @len fresh bytes (neither side ever touched). */
static int cold_copy(struct figure *f, struct vgru *v, size_t len,
		     double *us, uint64_t *faults)
{
	unsigned char *src = map_anon(len), *dst = map_anon(len);
	int ret = -1;

	if (!src || !dst)
		map_error(f, len);
	else
		ret = timed_copy(f, v, dst, src, len, us, faults, NULL);
	unmap(src, len);
	unmap(dst, len);
	return ret;
}

/* ---- figure 1: fault cost ------------------------------------------------- */

/*
 * 64 B device copies from @src into @n destinations @stride apart, each
 * timed alone.  Ops that took exactly @want faults land in @us; when
 * @submit is set, their clock values too (others get submit 0).
 */
struct op_run {
	unsigned char *dst;
	size_t stride;
	unsigned int n, want, kept;
	uint64_t faults;
	double *us;
	uint64_t *submit, *done;
};

static int run_small_ops(struct figure *f, struct vgru *v,
			 const unsigned char *src, struct op_run *r)
{
	struct vgru_stats a, b;

	r->kept = 0;
	r->faults = 0;
	if (get_stats(f, v, &a))
		return -1;
	for (unsigned int i = 0; i < r->n; i++) {
		uint64_t t0 = now_ns(), t1;
		int ret = vgru_copy(v, r->dst + i * r->stride, src, SMALL_OP);

		t1 = now_ns();
		if (ret)
			return vgru_error(f, "64 B copy", ret);
		if (get_stats(f, v, &b))
			return -1;
		if (r->submit)
			r->submit[i] = r->done[i] = 0;
		if (b.faults - a.faults == r->want) {
			r->us[r->kept++] = (t1 - t0) / 1e3;
			if (r->submit) {
				r->submit[i] = t0;
				r->done[i] = t1;
			}
		}
		r->faults += b.faults - a.faults;
		a = b;
	}
	return 0;
}

/* The CPU's first touch of @n fresh pages, one byte each, timed alone. */
static int cpu_first_touch(struct figure *f, unsigned int n, double *us)
{
	volatile unsigned char *p = map_anon(n * PAGE);

	if (!p)
		return map_error(f, n * PAGE);
	for (unsigned int i = 0; i < n; i++) {
		uint64_t t0 = now_ns();

		p[i * PAGE] = 1;
		us[i] = (now_ns() - t0) / 1e3;
	}
	munmap((void *)p, n * PAGE);
	return 0;
}

/* A page of data the device has translated, and a warm destination. */
struct warm_pair {
	unsigned char *base;	/* 2 pages: source, then destination */
	unsigned char *src, *dst;
};

static int warm_pair_get(struct figure *f, struct vgru *v,
			 struct warm_pair *w)
{
	int ret;

	w->base = map_anon(2 * PAGE);
	if (!w->base)
		return map_error(f, 2 * PAGE);
	w->src = w->base;
	w->dst = w->base + PAGE;
	memset(w->base, 0x3c, 2 * PAGE);
	ret = vgru_copy(v, w->dst, w->src, SMALL_OP);
	return ret ? vgru_error(f, "warm-up copy", ret) : 0;
}

struct iso_result {
	double cold_us, warm_us, populated_us, cpu_us;
	unsigned int kept, dropped;
	uint64_t faults;
};

/* Per-op samples of each kind, filled round by round. */
struct iso_samples {
	double *cold, *warm, *pop, *cpu;
	unsigned int ncold, nwarm, npop, ncpu, tried;
	uint64_t faults;
};

/* apart: more than two fault-around blocks up to K = 128 */
#define ISO_FRESH_STRIDE	(1 << 20)

/* @n one-fault ops into fresh (or CPU-touched) pages; samples appended. */
static int iso_fresh(struct figure *f, struct vgru *v,
		     const struct warm_pair *w, bool populated, unsigned int n,
		     double *us, unsigned int *kept, uint64_t *faults)
{
	size_t stride = populated ? PAGE : ISO_FRESH_STRIDE;
	struct op_run r = { .stride = stride, .n = n, .want = 1, .us = us };
	int ret;

	r.dst = map_anon(n * stride);
	if (!r.dst)
		return map_error(f, n * stride);
	if (populated)
		memset(r.dst, 1, n * stride);
	ret = run_small_ops(f, v, w->src, &r);
	munmap(r.dst, n * stride);
	*kept += r.kept;
	*faults += r.faults;
	return ret;
}

/* One round: @n ops of each kind, back to back. */
static int iso_round(struct figure *f, struct vgru *v,
		     const struct warm_pair *w, unsigned int n,
		     struct iso_samples *s)
{
	struct op_run warm = { .dst = w->dst, .n = n, .want = 0,
			       .us = s->warm + s->nwarm };
	uint64_t unused = 0;

	if (run_small_ops(f, v, w->src, &warm))
		return -1;
	s->nwarm += warm.kept;
	s->tried += n;
	if (iso_fresh(f, v, w, false, n, s->cold + s->ncold, &s->ncold,
		      &s->faults) ||
	    iso_fresh(f, v, w, true, n, s->pop + s->npop, &s->npop, &unused) ||
	    cpu_first_touch(f, n, s->cpu + s->ncpu))
		return -1;
	s->ncpu += n;
	return 0;
}

#define ISO_ROUNDS	8

/*
 * @n ops of each kind in ISO_ROUNDS interleaved rounds, so that a slow
 * spell of the (shared, emulated) machine hits every kind alike.
 */
static int iso_measure(struct figure *f, struct vgru *v, unsigned int n,
		       struct iso_result *res)
{
	double *mem = calloc(4 * (size_t)n, sizeof(double));
	struct iso_samples s = { 0 };
	struct warm_pair w = { 0 };
	unsigned int warmup = 0;
	int ret = -1;

	if (!mem) {
		fig_error(f, "out of memory");
		goto out;
	}
	s.cold = mem;
	s.warm = mem + n;
	s.pop = mem + 2 * (size_t)n;
	s.cpu = mem + 3 * (size_t)n;
	/* untimed: the first faults after boot run code TCG has not seen */
	if (warm_pair_get(f, v, &w) ||
	    iso_fresh(f, v, &w, false, n / ISO_ROUNDS, s.cold, &warmup,
		      &s.faults))
		goto out;
	s.faults = 0;
	for (unsigned int i = 0; i < ISO_ROUNDS; i++)
		if (iso_round(f, v, &w, n / ISO_ROUNDS, &s))
			goto out;
	res->warm_us = median(s.warm, s.nwarm);
	res->cold_us = median(s.cold, s.ncold);
	res->populated_us = median(s.pop, s.npop);
	res->cpu_us = median(s.cpu, s.ncpu);
	res->kept = s.ncold;
	res->dropped = s.tried - s.ncold;
	res->faults = s.faults;
	ret = 0;
out:
	unmap(w.base, 2 * PAGE);
	free(mem);
	return ret;
}

static int fc_isolated(struct figure *f, struct vgru *v)
{
	unsigned int n = opt.quick ? 128 : 512;
	struct iso_result r = { 0 };
	double fault, pop_fault;
	struct plot *p;

	progress("fault_cost: %u isolated device faults", n);
	if (iso_measure(f, v, n, &r))
		return -1;
	fault = r.cold_us - r.warm_us;
	pop_fault = r.populated_us - r.warm_us;
	fig_raw(f, r.cold_us, "isolated_op_cold_us");
	fig_raw(f, r.warm_us, "isolated_op_warm_us");
	fig_raw(f, fault, "isolated_device_fault_us");
	fig_raw(f, r.populated_us, "isolated_op_populated_us");
	fig_raw(f, pop_fault, "isolated_device_fault_populated_us");
	fig_raw(f, r.cpu_us, "cpu_first_touch_us");
	fig_raw(f, r.kept, "isolated_ops_count");
	fig_raw(f, r.dropped, "isolated_ops_dropped_count");
	fig_raw(f, (double)r.faults, "isolated_faults_count");
	fig_ratio(f, ratio(fault, r.cpu_us), "isolated_device_over_cpu");
	fig_ratio(f, ratio(pop_fault, r.cpu_us),
		  "isolated_populated_device_over_cpu");
	p = fig_plot(f, "fault_cost_isolated", "One fault: device vs CPU",
		     "", "time per fault (us)", true);
	plot_bar(p, "median", "CPU first touch", r.cpu_us);
	plot_bar(p, "median", "device, page CPU-touched", pop_fault);
	plot_bar(p, "median", "device, fresh page", fault);
	fig_what(f, "Isolated: %u ops of one 64 B device copy from a "
		 "device-warm source into a fresh 4 KiB page (one device "
		 "fault each by vgru_stats; %u other ops dropped), median per "
		 "op minus the median warm copy; vs the median of %u CPU "
		 "first-touch writes of one byte to a fresh page; the kinds "
		 "interleaved in %d rounds. ", r.kept, r.dropped, n,
		 ISO_ROUNDS);
	return 0;
}

/* The CPU's memcpy between two fresh buffers of @len bytes. */
static int cpu_cold_copy(struct figure *f, size_t len, double *us)
{
	unsigned char *src = map_anon(len), *dst = map_anon(len);
	int ret = 0;

	if (src && dst) {
		uint64_t t0 = now_ns();

		memcpy_fn(dst, src, len);
		*us = (now_ns() - t0) / 1e3;
	} else {
		ret = map_error(f, len);
	}
	unmap(src, len);
	unmap(dst, len);
	return ret;
}

static int fc_streaming(struct figure *f, struct vgru *v)
{
	size_t len = (opt.quick ? 4 : 16) * MIB;
	unsigned int reps = 3;
	double dev[3], cpu[3], faults[3], pages = (double)len / PAGE;
	double dev_us, cpu_us, nfaults;

	progress("fault_cost: %u cold copies of %zu MiB", reps, len / MIB);
	for (unsigned int i = 0; i < reps; i++) {
		uint64_t nf;

		if (cold_copy(f, v, len, &dev[i], &nf) ||
		    cpu_cold_copy(f, len, &cpu[i]))
			return -1;
		faults[i] = (double)nf;
	}
	dev_us = median(dev, reps);
	cpu_us = median(cpu, reps);
	nfaults = median(faults, reps);
	fig_raw(f, (double)len, "streaming_bytes");
	fig_raw(f, dev_us, "streaming_device_us");
	fig_raw(f, cpu_us, "streaming_cpu_us");
	fig_raw(f, dev_us / pages, "streaming_device_per_page_us");
	fig_raw(f, cpu_us / pages, "streaming_cpu_per_page_us");
	fig_raw(f, nfaults, "streaming_faults_count");
	fig_raw(f, nfaults / ((double)len / MIB), "streaming_faults_per_mib");
	fig_ratio(f, ratio(dev_us, cpu_us), "streaming_device_over_cpu");
	fig_what(f, "Streaming: one copy of %zu MiB between two fresh "
		 "buffers (never touched: the source reads as zeros), device "
		 "vs CPU memcpy, median of %u. ", len / MIB, reps);
	return 0;
}

/* -- figure 1c: the fault path from tracepoints -- */

enum ev_type { EV_IRQ, EV_FAULT, EV_RESOLVE, EV_LOOKUP, EV_DROPIN,
	       EV_RESTART, EV_N };

static const char *const ev_names[EV_N] = {
	"irq_handler_entry", "vgru_fault", "vgru_resolve_start",
	"vgru_page_lookup", "vgru_dropin", "vgru_restart",
};

/* phase i runs from point i to point i + 1: submit, the events, done */
static const char *const phase_names[EV_N + 1] = {
	"submit_to_irq", "irq_to_fault", "fault_to_resolve", "page_lookup",
	"lookup_to_dropin", "dropin_to_restart", "restart_to_done",
};

static const char *const phase_labels[EV_N + 1] = {
	"submit to IRQ", "IRQ to thread", "thread to resolve", "page lookup",
	"lookup to drop-in", "drop-in to restart", "restart to done",
};

struct trace_ev {
	uint64_t ns;
	enum ev_type type;
};

struct tracer {
	char dir[64];
	char old_clock[32];
	int irq;		/* the device's IRQ number, -1 if not found */
	unsigned int ctx;	/* only this context's events count */
	struct trace_ev *ev;
	unsigned int n, cap;
};

static int trace_file(const struct tracer *t, const char *name,
		      const char *text)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", t->dir, name);
	return write_text(path, text);
}

/* tracefs, mounted if need be; false with @why filled if there is none */
static bool trace_find(struct tracer *t, char *why, size_t len)
{
	static const char *const dirs[] = {
		"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
	};
	char path[128];

	for (int pass = 0; pass < 2; pass++) {
		for (unsigned int i = 0; i < ARRAY_SIZE(dirs); i++) {
			snprintf(path, sizeof(path), "%s/trace", dirs[i]);
			if (access(path, W_OK) == 0) {
				snprintf(t->dir, sizeof(t->dir), "%s", dirs[i]);
				return true;
			}
		}
		if (pass == 0 && mount("nodev", dirs[0], "tracefs", 0, NULL))
			break;
	}
	snprintf(why, len, "no tracefs (mount on %s: %s)", dirs[0],
		 strerror(errno));
	return false;
}

/* The IRQ whose /proc/interrupts name starts with "vgru", or -1. */
static int find_irq(void)
{
	FILE *in = fopen("/proc/interrupts", "r");
	char line[1024];
	int irq = -1;

	while (in && irq < 0 && fgets(line, sizeof(line), in)) {
		char *last = NULL, *tok, *save;
		int num;

		if (sscanf(line, " %d:", &num) != 1)
			continue;
		for (tok = strtok_r(line, " \t\n", &save); tok;
		     tok = strtok_r(NULL, " \t\n", &save))
			last = tok;
		if (last && !strncmp(last, "vgru", 4))
			irq = num;
	}
	if (in)
		fclose(in);
	return irq;
}

static bool trace_events_exist(const struct tracer *t, char *why, size_t len)
{
	char path[256];

	for (int i = EV_FAULT; i < EV_N; i++) {
		snprintf(path, sizeof(path), "%s/events/vgru/%s/enable",
			 t->dir, ev_names[i]);
		if (access(path, W_OK)) {
			snprintf(why, len, "not supported by this build: the "
				 "driver has no tracepoint vgru:%s",
				 ev_names[i]);
			return false;
		}
	}
	return true;
}

static int trace_enable(const struct tracer *t, const char *val)
{
	char name[96], filter[32];
	int ret = 0;

	for (int i = EV_FAULT; i < EV_N && !ret; i++) {
		snprintf(name, sizeof(name), "events/vgru/%s/enable",
			 ev_names[i]);
		ret = trace_file(t, name, val);
	}
	if (t->irq >= 0 && !ret) {
		snprintf(filter, sizeof(filter), "irq == %d", t->irq);
		ret = trace_file(t, "events/irq/irq_handler_entry/filter",
				 *val == '1' ? filter : "0");
		if (!ret)
			ret = trace_file(t, "events/irq/irq_handler_entry/"
					 "enable", val);
	}
	return ret;
}

/* Trace clock "mono" = CLOCK_MONOTONIC, so both sides share one clock. */
static int trace_start(struct tracer *t, char *why, size_t len)
{
	char path[256];
	int ret;

	snprintf(path, sizeof(path), "%s/trace_clock", t->dir);
	ret = read_choice(path, t->old_clock, sizeof(t->old_clock));
	if (!ret)
		ret = trace_file(t, "tracing_on", "0");
	if (!ret)
		ret = trace_file(t, "trace_clock", "mono");
	if (!ret)
		ret = trace_file(t, "trace", "");
	if (!ret)
		ret = trace_enable(t, "1");
	if (!ret)
		ret = trace_file(t, "tracing_on", "1");
	if (ret)
		snprintf(why, len, "cannot set up tracing in %s: %s", t->dir,
			 strerror(-ret));
	return ret;
}

static void trace_add(struct tracer *t, uint64_t ns, enum ev_type type)
{
	if (t->n == t->cap) {
		unsigned int cap = t->cap ? 2 * t->cap : 1024;
		struct trace_ev *ev = realloc(t->ev, cap * sizeof(*ev));

		if (!ev)
			return;
		t->ev = ev;
		t->cap = cap;
	}
	t->ev[t->n].ns = ns;
	t->ev[t->n++].type = type;
}

/* "  prog-12 [001] ..... 123.456789: vgru_fault: ctx=3 ..." */
static void trace_parse_line(struct tracer *t, const char *line)
{
	char pat[48];

	for (int i = 0; i < EV_N; i++) {
		const char *at, *ts, *field;

		snprintf(pat, sizeof(pat), ": %s:", ev_names[i]);
		at = strstr(line, pat);
		if (!at)
			continue;
		for (ts = at; ts > line && ts[-1] != ' '; ts--)
			;
		field = strstr(at, i == EV_IRQ ? "irq=" : "ctx=");
		if (i == EV_IRQ && (!field || atoi(field + 4) != t->irq))
			return;
		if (i != EV_IRQ && field &&
		    strtoul(field + 4, NULL, 0) != t->ctx)
			return;
		trace_add(t, (uint64_t)(strtod(ts, NULL) * 1e9 + 0.5),
			  (enum ev_type)i);
		return;
	}
}

static int trace_collect(struct tracer *t)
{
	char path[256], *line = NULL;
	size_t cap = 0;
	FILE *in;

	snprintf(path, sizeof(path), "%s/trace", t->dir);
	in = fopen(path, "r");
	if (!in)
		return -errno;
	while (getline(&line, &cap, in) > 0)
		if (line[0] != '#')
			trace_parse_line(t, line);
	free(line);
	fclose(in);
	return 0;
}

/* Stop, read the events, and put tracing back as it was. */
static int trace_stop(struct tracer *t)
{
	int ret;

	trace_file(t, "tracing_on", "0");
	ret = trace_collect(t);
	trace_enable(t, "0");
	trace_file(t, "trace_clock", t->old_clock);
	return ret;
}

/*
 * The op's points in time: submit, its events in order, done.  Trace
 * timestamps are whole microseconds, hence the slack around the op.
 * @irq: whether an interrupt came before the fault (a fault libvgru's
 * thread resolves itself, VGRU_DF_CALL_OS, raises none).
 */
static bool match_op(const struct tracer *t, unsigned int *cursor,
		     uint64_t submit, uint64_t done, uint64_t at[EV_N + 2],
		     bool *irq)
{
	const uint64_t slack = 2000;
	int want = t->irq >= 0 ? EV_IRQ : EV_FAULT;
	unsigned int i = *cursor;

	*irq = false;
	while (i < t->n && t->ev[i].ns + slack < submit)
		i++;
	for (; i < t->n && t->ev[i].ns <= done + slack && want < EV_N; i++) {
		if (want == EV_IRQ && t->ev[i].type == EV_FAULT)
			want = EV_FAULT;
		if (t->ev[i].type == (enum ev_type)want) {
			*irq = *irq || want == EV_IRQ;
			at[1 + want++] = t->ev[i].ns;
		}
	}
	*cursor = i;
	at[0] = submit;
	at[EV_N + 1] = done;
	return want == EV_N;
}

struct phases {
	double *v[EV_N + 1];	/* per phase, per matched op, in us */
	double *fault, *total;	/* submit to fault; submit to done */
	unsigned int n;
};

static void phases_add(struct phases *p, const uint64_t at[EV_N + 2],
		       bool have_irq)
{
	for (int k = 0; k <= EV_N; k++)
		p->v[k][p->n] = (have_irq || k > EV_IRQ + 1) ?
			((double)at[k + 1] - (double)at[k]) / 1e3 : NAN;
	p->fault[p->n] = ((double)at[EV_FAULT + 1] - (double)at[0]) / 1e3;
	p->total[p->n] = ((double)at[EV_N + 1] - (double)at[0]) / 1e3;
	p->n++;
}

static void breakdown_report(struct figure *f, struct phases *p,
			     bool have_irq)
{
	struct plot *plot = fig_plot(f, "fault_cost_breakdown",
				     "Device fault path, median per phase",
				     "phase", "time (us)", true);

	for (int k = 0; k <= EV_N; k++) {
		double m = have_irq || k > EV_IRQ + 1 ?
			median(p->v[k], p->n) : NAN;

		fig_raw(f, m, "breakdown_%s_us", phase_names[k]);
		if (k == EV_FAULT + 1 && !have_irq)
			plot_bar(plot, "median", "submit to thread",
				 median(p->fault, p->n));
		if (isfinite(m))
			plot_bar(plot, "median", phase_labels[k], m);
	}
	fig_raw(f, median(p->fault, p->n), "breakdown_submit_to_fault_us");
	fig_raw(f, median(p->total, p->n), "breakdown_traced_op_us");
	fig_raw(f, p->n, "breakdown_ops_count");
}

static void breakdown_null(struct figure *f, const char *why)
{
	for (int k = 0; k <= EV_N; k++)
		fig_raw(f, NAN, "breakdown_%s_us", phase_names[k]);
	fig_raw(f, NAN, "breakdown_submit_to_fault_us");
	fig_raw(f, NAN, "breakdown_traced_op_us");
	fig_raw(f, NAN, "breakdown_ops_count");
	fig_extra_str(f, "breakdown_reason", why);
	fig_what(f, "Breakdown: not available (%s).", why);
	progress("fault_cost: no breakdown: %s", why);
}

static int phases_alloc(struct phases *p, unsigned int n)
{
	double *mem = calloc((size_t)(EV_N + 3) * n, sizeof(double));

	if (!mem)
		return -ENOMEM;
	for (int k = 0; k <= EV_N; k++)
		p->v[k] = mem + (size_t)k * n;
	p->fault = mem + (size_t)(EV_N + 1) * n;
	p->total = mem + (size_t)(EV_N + 2) * n;
	p->n = 0;
	return 0;
}

/* The isolated ops again, traced; false with @why if tracing failed. */
static int traced_ops(struct figure *f, struct vgru *v, struct tracer *t,
		      struct op_run *r, char *why, size_t len)
{
	struct warm_pair w = { 0 };
	int ret;

	if (warm_pair_get(f, v, &w))
		return -1;
	r->dst = map_anon(r->n * r->stride);
	if (!r->dst) {
		unmap(w.base, 2 * PAGE);
		return map_error(f, r->n * r->stride);
	}
	ret = trace_start(t, why, len) ? 1 : 0;
	if (!ret) {
		ret = run_small_ops(f, v, w.src, r);
		if (trace_stop(t) && !ret) {
			snprintf(why, len, "cannot read the trace");
			ret = 1;
		}
	}
	munmap(r->dst, r->n * r->stride);
	unmap(w.base, 2 * PAGE);
	return ret;
}

static int fc_breakdown(struct figure *f, struct vgru *v)
{
	unsigned int n = opt.quick ? 40 : 200, cursor = 0, with_irq = 0;
	struct tracer t = { .irq = find_irq(), .ctx = vgru_context(v) };
	struct op_run r = { .stride = ISO_FRESH_STRIDE, .n = n, .want = 1 };
	struct phases ph = { 0 };
	uint64_t at[EV_N + 2];
	char why[256] = "";
	int ret = -1;

	if (!trace_find(&t, why, sizeof(why)) ||
	    !trace_events_exist(&t, why, sizeof(why))) {
		breakdown_null(f, why);
		return 0;
	}
	progress("fault_cost: %u traced faults (IRQ %d)", n, t.irq);
	r.us = calloc(n, sizeof(double));
	r.submit = calloc(n, sizeof(uint64_t));
	r.done = calloc(n, sizeof(uint64_t));
	if (!r.us || !r.submit || !r.done || phases_alloc(&ph, n)) {
		fig_error(f, "out of memory");
		goto out;
	}
	ret = traced_ops(f, v, &t, &r, why, sizeof(why));
	if (ret) {
		if (ret > 0)
			breakdown_null(f, why);
		ret = ret > 0 ? 0 : -1;
		goto out;
	}
	for (unsigned int i = 0; i < n; i++) {
		bool irq;

		if (r.submit[i] &&
		    match_op(&t, &cursor, r.submit[i], r.done[i], at, &irq)) {
			phases_add(&ph, at, irq);
			with_irq += irq;
		}
	}
	if (!ph.n) {
		breakdown_null(f, "no op had all its trace events");
		goto out;
	}
	/* the interrupt's phases only if every op had one */
	breakdown_report(f, &ph, with_irq == ph.n);
	fig_raw(f, with_irq, "breakdown_ops_with_irq_count");
	fig_what(f, "Breakdown: %u of %u isolated faults traced (events "
		 "vgru:* and irq_handler_entry, trace_clock mono = "
		 "CLOCK_MONOTONIC, 1 us resolution), median per phase; %u "
		 "of them had an interrupt (libvgru's blocking calls resolve "
		 "a fault at START in their own thread, without one).",
		 ph.n, n, with_irq);
	ret = 0;
out:
	free(ph.v[0]);
	free(r.us);
	free(r.submit);
	free(r.done);
	free(t.ev);
	return ret;
}

static int fig_fault_cost(struct figure *f)
{
	struct vgru *v;
	int ret;

	if (open_device(f, &v))
		return -1;
	ret = fc_isolated(f, v);
	if (!ret)
		ret = fc_streaming(f, v);
	if (!ret)
		ret = fc_breakdown(f, v);
	vgru_close(v);
	return ret;
}

/* ---- figure 2: warm copy throughput --------------------------------------- */

/* A child process holding @len bytes for process_vm_readv. */
struct peer {
	pid_t pid;
	unsigned char *remote;
	int keep_fd;		/* closing it lets the child exit */
};

static void peer_child(int up, int down, size_t len)
{
	unsigned char *buf = map_anon(len);
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (buf)
		memset(buf, 0x5a, len);
	if (write(up, &buf, sizeof(buf)) != sizeof(buf))
		_exit(1);
	while (read(down, &c, 1) > 0)
		;
	_exit(0);
}

static int peer_start(struct figure *f, struct peer *p, size_t len)
{
	int up[2], down[2];
	ssize_t n;

	if (pipe(up))
		return fig_error(f, "pipe: %s", strerror(errno));
	if (pipe(down)) {
		close(up[0]);
		close(up[1]);
		return fig_error(f, "pipe: %s", strerror(errno));
	}
	fflush(NULL);
	p->pid = fork();
	if (p->pid == 0) {
		close(up[0]);
		close(down[1]);
		peer_child(up[1], down[0], len);
	}
	close(up[1]);
	close(down[0]);
	p->keep_fd = down[1];
	n = p->pid > 0 ? read(up[0], &p->remote, sizeof(p->remote)) : -1;
	close(up[0]);
	if (n == sizeof(p->remote) && p->remote)
		return 0;
	return fig_error(f, "process_vm_readv peer: no child buffer");
}

static void peer_stop(struct peer *p)
{
	if (p->keep_fd >= 0)
		close(p->keep_fd);
	if (p->pid > 0)
		waitpid(p->pid, NULL, 0);
}

struct wc_point {
	size_t len;
	double device, memcpy, pvr;	/* MiB/s */
};

struct wc_state {
	struct vgru *v;
	unsigned char *src, *dst;
	size_t max;
	struct peer peer;
	struct plot *plot;
};

static double mib_s(size_t len, double ns)
{
	return (double)len / MIB / (ns / 1e9);
}

/* A device copy of @len bytes into a cleared destination, checked. */
static int wc_copy_checked(struct figure *f, struct wc_state *s, size_t len,
			   const char *what)
{
	int ret;

	memset(s->dst, 0, len);
	ret = vgru_copy(s->v, s->dst, s->src, len);
	if (ret)
		return vgru_error(f, what, ret);
	if (memcmp(s->dst, s->src, len))
		return fig_error(f, "%s of %zu bytes: data differs", what, len);
	return 0;
}

static int wc_device(struct figure *f, struct wc_state *s, size_t len,
		     struct wc_point *pt)
{
	struct copy_arg c = { .v = s->v, .dst = s->dst, .src = s->src,
			      .len = len };
	struct budget b = budget();
	struct vgru_stats st0, st1;
	struct timing t;
	char lbl[16];
	int ret;

	size_label(len, lbl, sizeof(lbl));
	if (wc_copy_checked(f, s, len, "pre-fault copy") ||
	    get_stats(f, s->v, &st0))
		return -1;
	ret = measure(op_device, &c, &b, &t);
	if (ret)
		return vgru_error(f, "warm copy", ret);
	if (get_stats(f, s->v, &st1) ||
	    wc_copy_checked(f, s, len, "warm copy"))
		return -1;
	pt->device = mib_s(len, t.ns);
	fig_raw(f, (double)(st1.faults - st0.faults), "device_faults_%s_count",
		lbl);
	fig_raw(f, (double)t.reps * t.batch, "device_reps_%s_count", lbl);
	return 0;
}

static int wc_size(struct figure *f, struct wc_state *s, size_t len,
		   struct wc_point *pt)
{
	struct copy_arg c = { .dst = s->dst, .src = s->src, .len = len };
	struct budget b = budget();
	struct timing t;
	char lbl[16];
	int ret;

	size_label(len, lbl, sizeof(lbl));
	progress("warm_copy: %s", lbl);
	pt->len = len;
	if (wc_device(f, s, len, pt))
		return -1;
	measure(op_memcpy, &c, &b, &t);
	pt->memcpy = mib_s(len, t.ns);
	c.src = s->peer.remote;
	c.pid = s->peer.pid;
	ret = measure(op_pvr, &c, &b, &t);
	if (ret)
		return fig_error(f, "process_vm_readv: %s", strerror(-ret));
	pt->pvr = mib_s(len, t.ns);
	fig_raw(f, pt->device, "device_%s_mib_s", lbl);
	fig_raw(f, pt->memcpy, "memcpy_%s_mib_s", lbl);
	fig_raw(f, pt->pvr, "pvr_%s_mib_s", lbl);
	plot_point(s->plot, "device copy", (double)len, pt->device);
	plot_point(s->plot, "memcpy", (double)len, pt->memcpy);
	plot_point(s->plot, "process_vm_readv", (double)len, pt->pvr);
	return 0;
}

static void wc_ratios(struct figure *f, const struct wc_point *pts,
		      unsigned int n)
{
	static const size_t at[] = { 64 * KIB, MIB, 16 * MIB };
	char lbl[16];

	for (unsigned int i = 0; i < ARRAY_SIZE(at); i++) {
		const struct wc_point *pt = NULL;

		for (unsigned int j = 0; j < n; j++)
			if (pts[j].len == at[i])
				pt = &pts[j];
		size_label(at[i], lbl, sizeof(lbl));
		fig_ratio(f, pt ? ratio(pt->device, pt->memcpy) : NAN,
			  "device_over_memcpy_%s", lbl);
		fig_ratio(f, pt ? ratio(pt->device, pt->pvr) : NAN,
			  "device_over_pvr_%s", lbl);
	}
}

static int wc_run(struct figure *f, struct wc_state *s, const size_t *sizes,
		  unsigned int n)
{
	struct wc_point pts[16] = { 0 };
	unsigned int i;

	s->plot = fig_plot(f, "warm_copy_throughput", "Warm copy throughput",
			   "copy size (bytes)", "throughput (MiB/s)", false);
	if (s->plot)
		s->plot->x_log = s->plot->y_log = true;
	for (i = 0; i < n; i++)
		if (wc_size(f, s, sizes[i], &pts[i]))
			break;
	wc_ratios(f, pts, i);
	return i == n ? 0 : -1;
}

static int fig_warm_copy(struct figure *f)
{
	static const size_t full[] = {
		4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB,
		MIB, 4 * MIB, 16 * MIB, 64 * MIB,
	};
	static const size_t quick[] = { 4 * KIB, 64 * KIB, MIB, 16 * MIB };
	const size_t *sizes = opt.quick ? quick : full;
	unsigned int n = opt.quick ? ARRAY_SIZE(quick) : ARRAY_SIZE(full);
	struct wc_state s = { .max = sizes[n - 1], .peer.keep_fd = -1 };
	struct budget b = budget();
	int ret = -1;

	/* fork first: a fork later would flush the device TLB */
	if (peer_start(f, &s.peer, s.max))
		goto out_peer;
	s.src = map_anon(s.max);
	s.dst = map_anon(s.max);
	if (!s.src || !s.dst) {
		map_error(f, s.max);
		goto out;
	}
	memset(s.src, 0xa5, s.max);
	memset(s.dst, 0, s.max);
	if (open_device(f, &s.v))
		goto out;
	ret = wc_run(f, &s, sizes, n);
	vgru_close(s.v);
	fig_what(f, "Warm copy of 4 KiB to %zu MiB: device copy (buffers "
		 "pre-faulted by one device copy; device_faults_*_count are "
		 "the faults during the timed copies, 0 when every "
		 "translation hit the TLB, else the TLB is too small for the "
		 "size), memcpy, and process_vm_readv from "
		 "a child process.  Median per copy over at least %u samples "
		 "and %.2f s per point.  memcpy is the guest's glibc one: "
		 "from 16 KiB to below about 1 MiB it uses rep movsb, which "
		 "TCG emulates at about 15 MiB/s.", s.max / MIB, b.min_reps,
		 b.target_ns / 1e9);
out:
	unmap(s.src, s.max);
	unmap(s.dst, s.max);
out_peer:
	peer_stop(&s.peer);
	return ret;
}

/* ---- figure 3: round trip ------------------------------------------------- */

static int rt_device(struct figure *f, struct vgru *v, double *us,
		     uint64_t *faults)
{
	struct warm_pair w = { 0 };
	struct copy_arg c = { .v = v, .len = SMALL_OP };
	struct budget b = budget();
	struct vgru_stats st0, st1;
	struct timing t;
	int ret = -1;

	if (warm_pair_get(f, v, &w) || get_stats(f, v, &st0))
		goto out;
	c.src = w.src;
	c.dst = w.dst;
	ret = measure(op_device, &c, &b, &t);
	if (ret) {
		ret = vgru_error(f, "64 B copy", ret);
		goto out;
	}
	ret = get_stats(f, v, &st1);
	*us = t.ns / 1e3;
	*faults = st1.faults - st0.faults;
out:
	unmap(w.base, 2 * PAGE);
	return ret;
}

static int fig_round_trip(struct figure *f)
{
	static unsigned char a[SMALL_OP], z[SMALL_OP];
	struct copy_arg c = { .dst = z, .src = a, .len = SMALL_OP };
	struct budget b = budget();
	double dev = NAN, sys, mem;
	struct timing t;
	uint64_t faults = 0;
	struct plot *p;
	struct vgru *v;
	int ret;

	if (open_device(f, &v))
		return -1;
	progress("round_trip: 64 B device copy, getppid, memcpy");
	ret = rt_device(f, v, &dev, &faults);
	vgru_close(v);
	if (ret)
		return -1;
	measure(op_getppid, NULL, &b, &t);
	sys = t.ns / 1e3;
	measure(op_memcpy, &c, &b, &t);
	mem = t.ns / 1e3;
	fig_raw(f, dev, "device_64b_us");
	fig_raw(f, sys, "getppid_us");
	fig_raw(f, mem, "memcpy_64b_us");
	fig_raw(f, (double)faults, "device_faults_count");
	fig_ratio(f, ratio(dev, sys), "device_over_getppid");
	fig_ratio(f, ratio(dev, mem), "device_over_memcpy");
	p = fig_plot(f, "round_trip", "Small command round trip", "",
		     "time per call (us)", true);
	if (p)
		p->y_log = true;
	plot_bar(p, "median", "device 64 B copy", dev);
	plot_bar(p, "median", "getppid()", sys);
	plot_bar(p, "median", "memcpy 64 B", mem);
	fig_what(f, "One 64 B warm device copy (submit and wait), a getppid() "
		 "system call and a 64 B memcpy; median per call over at "
		 "least %u samples and %.2f s each (samples are batches of "
		 "calls lasting >= 50 us).", b.min_reps, b.target_ns / 1e9);
	return 0;
}

/* ---- figure 4a: fault-around sweep ---------------------------------------- */

static const unsigned int fa_ks[] = { 1, 2, 4, 8, 16, 32, 64, 128, 512 };

/*
 * One device-cold copy of @len bytes between CPU-populated 4 KiB-page
 * buffers, with fault-around @k: microseconds per page and faults.
 */
static int fa_copy(struct figure *f, struct vgru *v, unsigned int k,
		   size_t len, double *us_per_page, double *faults)
{
	unsigned char *src = map_anon(len), *dst = map_anon(len);
	uint64_t nf;
	double us;
	int ret = -1;

	if (!src || !dst) {
		map_error(f, len);
		goto out;
	}
	memset(src, 0x5a, len);		/* present: fault-around may take them */
	memset(dst, 0, len);
	ret = vgru_set_fault_around(v, k);
	if (ret != (int)k) {
		ret = vgru_error(f, "set fault-around", ret < 0 ? ret : -EIO);
		goto out;
	}
	ret = timed_copy(f, v, dst, src, len, &us, &nf, NULL);
	*us_per_page = us / (double)(len / PAGE);
	*faults = (double)nf;
out:
	unmap(src, len);
	unmap(dst, len);
	return ret;
}

/* The CPU's first touch of a fresh @len buffer, microseconds per page. */
static int fa_cpu(struct figure *f, size_t len, double *us_per_page)
{
	unsigned char *p = map_anon(len);
	uint64_t t0;

	if (!p)
		return map_error(f, len);
	t0 = now_ns();
	memset(p, 1, len);
	*us_per_page = (now_ns() - t0) / 1e3 / (double)(len / PAGE);
	unmap(p, len);
	return 0;
}

static int fa_sweep(struct figure *f, struct vgru *v, size_t len,
		    unsigned int reps)
{
	double best = INFINITY, k1 = NAN, cpu, us[3], faults[3], c[3];
	unsigned int best_k = 0;
	struct plot *pf, *pt;

	for (unsigned int r = 0; r < reps; r++)
		if (fa_cpu(f, len, &c[r]))
			return -1;
	cpu = median(c, reps);
	fig_raw(f, cpu, "cpu_first_touch_per_page_us");
	pf = fig_plot(f, "fault_around_faults", "Fault-around: faults",
		      "fault-around pages K", "device faults per copy", false);
	pt = fig_plot(f, "fault_around_time", "Fault-around: time",
		      "fault-around pages K", "time per page (us)", false);
	if (pf && pt)
		pf->x_log = pt->x_log = true;
	for (unsigned int i = 0; i < ARRAY_SIZE(fa_ks); i++) {
		unsigned int k = fa_ks[i];
		double t;

		progress("fault_around: K=%u, %u cold copies", k, reps);
		for (unsigned int r = 0; r < reps; r++)
			if (fa_copy(f, v, k, len, &us[r], &faults[r]))
				return -1;
		t = median(us, reps);
		fig_raw(f, median(faults, reps), "k%u_faults_count", k);
		fig_raw(f, t, "k%u_us_per_page", k);
		fig_ratio(f, ratio(t, cpu), "k%u_over_cpu", k);
		plot_point(pf, "device copy", k, median(faults, reps));
		plot_point(pt, "device copy", k, t);
		plot_point(pt, "CPU first touch", k, cpu);
		if (t < best) {
			best = t;
			best_k = k;
		}
		k1 = k == 1 ? t : k1;
	}
	fig_raw(f, best_k, "best_k_count");
	fig_ratio(f, ratio(best, k1), "best_over_k1_time");
	fig_ratio(f, ratio(best, cpu), "best_over_cpu");
	progress("fault_around: best K=%u, %.1f us/page (K=1 %.1f, CPU %.1f)",
		 best_k, best, k1, cpu);
	return 0;
}

static int fig_fault_around(struct figure *f)
{
	size_t len = (opt.quick ? 4 : 16) * MIB;
	unsigned int reps = opt.quick ? 1 : 3;
	struct vgru *v;
	int ret;

	if (open_device(f, &v))
		return -1;
	ret = vgru_get_fault_around(v);
	if (ret == -ENOTTY) {
		vgru_close(v);
		f->supported = false;
		snprintf(f->reason, sizeof(f->reason), "not supported by this "
			 "build: driver has no VGRU_IOC_FAULT_AROUND");
		fig_what(f, "Cold copy faults and time per page for fault-"
			 "around K = 1 .. 512 pages: not measured, the driver "
			 "has no fault-around.");
		progress("fault_around: %s", f->reason);
		return 0;
	}
	fig_raw(f, ret, "driver_default_k_count");
	fig_raw(f, (double)len, "copy_bytes");
	ret = fa_sweep(f, v, len, reps);
	vgru_close(v);
	fig_what(f, "One device-cold copy of %zu MiB between fresh 4 KiB-page "
		 "buffers the CPU populated first (so fault-around can take "
		 "their pages), per fault-around setting K (pages resolved per "
		 "device fault, VGRU_IOC_FAULT_AROUND): device faults per copy "
		 "and microseconds per page copied, median of %u; against the "
		 "CPU's first touch per page of a fresh buffer (memset).",
		 len / MIB, reps);
	return ret;
}

/* ---- figure 4b: huge pages ------------------------------------------------- */

#define THP_ENABLED "/sys/kernel/mm/transparent_hugepage/enabled"

/* A 2 MiB-aligned buffer, THP-advised or not, populated by the CPU if asked */
static unsigned char *map_aligned(size_t len, bool huge, bool populate)
{
	size_t span = len + HUGE_SIZE, head;
	unsigned char *raw = map_anon(span), *p;

	if (!raw)
		return NULL;
	p = (unsigned char *)(((uintptr_t)raw + HUGE_SIZE - 1) &
			      ~(HUGE_SIZE - 1));
	head = (size_t)(p - raw);
	if (head)
		munmap(raw, head);
	if (span - head > len)
		munmap(p + len, span - head - len);
	madvise(p, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	if (populate)
		memset(p, huge ? 0x11 : 0x22, len);
	return p;
}

/* AnonHugePages of the mapping that holds @addr, in bytes */
static uint64_t anon_huge_bytes(const void *addr)
{
	FILE *in = fopen("/proc/self/smaps", "r");
	char line[512];
	bool ours = false;
	uint64_t kb = 0;

	while (in && fgets(line, sizeof(line), in)) {
		unsigned long start, end;

		if (sscanf(line, "%lx-%lx ", &start, &end) == 2)
			ours = start <= (uintptr_t)addr &&
			       (uintptr_t)addr < end;
		else if (ours && sscanf(line, "AnonHugePages: %" SCNu64, &kb)
			 == 1)
			break;
	}
	if (in)
		fclose(in);
	return kb * 1024;
}

/* One kind of buffer pair: THP-advised or 4 KiB; populated or fresh. */
struct hp_case {
	bool huge, populate;
	const char *name;	/* raw name prefix */
};

/* One copy's numbers, or the medians of several (huge_bytes: smallest) */
struct hp_result {
	double faults_per_mib, us_per_mib, retries;
	uint64_t huge_bytes;	/* AnonHugePages of both buffers */
};

static int hp_copy(struct figure *f, struct vgru *v, unsigned char *dst,
		   unsigned char *src, size_t len, struct hp_result *out)
{
	uint64_t nf, nr;
	double us;

	if (timed_copy(f, v, dst, src, len, &us, &nf, &nr))
		return -1;
	out->us_per_mib = us / ((double)len / MIB);
	out->faults_per_mib = (double)nf / ((double)len / MIB);
	out->retries = (double)nr;
	return 0;
}

static int hp_rep(struct figure *f, struct vgru *v, size_t len,
		  const struct hp_case *c, struct hp_result *out)
{
	unsigned char *src = map_aligned(len, c->huge, c->populate);
	unsigned char *dst = map_aligned(len, c->huge, c->populate);
	int ret;

	if (!src || !dst) {
		ret = map_error(f, len);
	} else {
		ret = hp_copy(f, v, dst, src, len, out);
		/* after the copy: a fresh buffer is backed only now */
		out->huge_bytes = anon_huge_bytes(src) + anon_huge_bytes(dst);
	}
	unmap(src, len);
	unmap(dst, len);
	return ret;
}

static int hp_measure(struct figure *f, struct vgru *v, size_t len,
		      unsigned int reps, const struct hp_case *c,
		      struct hp_result *r)
{
	double fpm[3], upm[3], retries[3];
	struct hp_result smp = { 0 };

	r->huge_bytes = UINT64_MAX;
	for (unsigned int i = 0; i < reps; i++) {
		if (hp_rep(f, v, len, c, &smp))
			return -1;
		fpm[i] = smp.faults_per_mib;
		upm[i] = smp.us_per_mib;
		retries[i] = smp.retries;
		if (smp.huge_bytes < r->huge_bytes)
			r->huge_bytes = smp.huge_bytes;
	}
	r->faults_per_mib = median(fpm, reps);
	r->us_per_mib = median(upm, reps);
	r->retries = median(retries, reps);
	return 0;
}

/* THP's mode; "never" is turned into "madvise" if we may. */
static void thp_prepare(struct figure *f, char *mode, size_t len)
{
	if (read_choice(THP_ENABLED, mode, len)) {
		snprintf(mode, len, "unavailable");
	} else if (!strcmp(mode, "never") &&
		   !write_text(THP_ENABLED, "madvise")) {
		snprintf(mode, len, "madvise (was never)");
	}
	fig_extra_str(f, "thp_enabled", mode);
}

static const struct hp_case hp_cases[] = {
	{ true, true, "thp" }, { false, true, "small" },
	{ true, false, "thp_fresh" }, { false, false, "small_fresh" },
};

/*
 * The CPU's own copy into a fresh THP-advised buffer from a populated
 * one (its page faults, huge page allocation and zeroing included),
 * microseconds per MiB, median of @reps.
 */
static int hp_cpu(struct figure *f, size_t len, unsigned int reps,
		  double *us_per_mib)
{
	double us[3];

	for (unsigned int i = 0; i < reps; i++) {
		unsigned char *src = map_aligned(len, true, true);
		unsigned char *dst = map_aligned(len, true, false);
		uint64_t t0;

		if (!src || !dst) {
			unmap(src, len);
			unmap(dst, len);
			return map_error(f, len);
		}
		t0 = now_ns();
		memcpy_fn(dst, src, len);
		us[i] = (now_ns() - t0) / 1e3 / ((double)len / MIB);
		unmap(src, len);
		unmap(dst, len);
	}
	*us_per_mib = median(us, reps);
	return 0;
}

static void hp_report(struct figure *f, size_t len,
		      const struct hp_result *r, double cpu)
{
	struct plot *p = fig_plot(f, "huge_pages_time",
				  "Cold copy: THP vs 4 KiB pages", "",
				  "time per MiB copied (us)", true);

	for (unsigned int i = 0; i < ARRAY_SIZE(hp_cases); i++) {
		const char *name = hp_cases[i].name;

		fig_raw(f, r[i].faults_per_mib, "%s_faults_per_mib", name);
		fig_raw(f, r[i].us_per_mib, "%s_us_per_mib", name);
		fig_raw(f, r[i].retries, "%s_retries_count", name);
		plot_bar(p, hp_cases[i].populate ? "CPU-populated buffers" :
			 "fresh buffers", hp_cases[i].huge ? "THP" : "4 KiB",
			 r[i].us_per_mib);
	}
	fig_raw(f, (double)r[0].huge_bytes, "thp_backed_bytes");
	fig_raw(f, (double)r[2].huge_bytes, "thp_fresh_backed_bytes");
	fig_raw(f, (double)(2 * len), "buffer_bytes");
	fig_raw(f, r[0].faults_per_mib * ((double)len / MIB), "thp_faults_count");
	fig_raw(f, cpu, "cpu_thp_fresh_us_per_mib");
	fig_ratio(f, ratio(r[0].us_per_mib, cpu), "thp_over_cpu_time");
	fig_ratio(f, ratio(r[2].us_per_mib, cpu), "thp_fresh_over_cpu_time");
	plot_bar(p, "CPU-populated buffers", "CPU memcpy (THP, fresh dst)", cpu);
	fig_ratio(f, ratio(r[0].faults_per_mib, r[1].faults_per_mib),
		  "thp_over_small_faults");
	fig_ratio(f, ratio(r[0].us_per_mib, r[1].us_per_mib),
		  "thp_over_small_time");
	fig_ratio(f, ratio(r[2].us_per_mib, r[3].us_per_mib),
		  "thp_over_small_fresh_time");
	/* 4 KiB translations fault 2 x 256 times per MiB copied */
	fig_extra_bool(f, "device_2m_pages", r[0].faults_per_mib < 256);
}

static int fig_huge_pages(struct figure *f)
{
	size_t len = (opt.quick ? 4 : 16) * MIB;
	unsigned int reps = opt.quick ? 1 : 3;
	struct hp_result r[ARRAY_SIZE(hp_cases)];
	double cpu = NAN;
	char mode[64];
	struct vgru *v;
	int ret = 0;

	thp_prepare(f, mode, sizeof(mode));
	if (open_device(f, &v))
		return -1;
	for (unsigned int i = 0; i < ARRAY_SIZE(hp_cases) && !ret; i++) {
		progress("huge_pages: %s, %u cold copies of %zu MiB",
			 hp_cases[i].name, reps, len / MIB);
		ret = hp_measure(f, v, len, reps, &hp_cases[i], &r[i]);
	}
	vgru_close(v);
	if (!ret)
		ret = hp_cpu(f, len, reps, &cpu);
	if (ret)
		return -1;
	hp_report(f, len, r, cpu);
	fig_what(f, "One cold device copy between two %zu MiB 2 MiB-aligned "
		 "buffers, MADV_HUGEPAGE (THP mode %s) vs MADV_NOHUGEPAGE, "
		 "either populated by the CPU first (thp_*, small_*: %" PRIu64
		 " of %zu bytes THP-backed per AnonHugePages) or fresh, so "
		 "that the device's faults allocate them (*_fresh_*): device "
		 "faults and microseconds per MiB copied (both buffers' "
		 "faults) and fault retries per copy, median of %u; against "
		 "the CPU's memcpy from a populated THP buffer into a fresh "
		 "one (its own faults included).",
		 len / MIB, mode, r[0].huge_bytes, 2 * len, reps);
	if (r[0].huge_bytes < 2 * len)
		progress("huge_pages: only %" PRIu64 " of %zu bytes are THP",
			 r[0].huge_bytes, 2 * len);
	return 0;
}

/* ---- figure 5: invalidation ----------------------------------------------- */

enum inv_op { INV_MUNMAP, INV_DONTNEED, INV_MPROTECT, INV_N };

static const char *const inv_names[INV_N] = {
	"munmap", "madv_dontneed", "mprotect",
};

enum inv_case { CASE_MAPPED, CASE_UNSEEN, CASE_NO_CTX, CASE_N };

static const char *const case_labels[CASE_N] = {
	"device-mapped, context open", "never seen, context open",
	"no context open",
};

static int inv_apply(enum inv_op op, void *p, size_t len)
{
	int ret;

	if (op == INV_MUNMAP)
		ret = munmap(p, len);
	else if (op == INV_DONTNEED)
		ret = madvise(p, len, MADV_DONTNEED);
	else
		ret = mprotect(p, len, PROT_READ);
	return ret ? -errno : 0;
}

/* Time @op on a fresh populated buffer; the device maps it first if asked. */
static int inv_once(struct figure *f, struct vgru *v, enum inv_op op,
		    size_t len, bool device_maps, double *us, uint64_t inv[2])
{
	unsigned char *buf = map_anon(len);
	struct vgru_stats a = { 0 }, b = { 0 };
	uint64_t t0;
	int ret = 0;

	if (!buf)
		return map_error(f, len);
	memset(buf, 0x77, len);
	if (device_maps)
		ret = vgru_copy(v, buf + len / 2, buf, len / 2);
	if (!ret && v)
		ret = vgru_stats(v, &a);
	if (ret) {
		munmap(buf, len);
		return vgru_error(f, "device copy or stats", ret);
	}
	t0 = now_ns();
	ret = inv_apply(op, buf, len);
	*us = (now_ns() - t0) / 1e3;
	if (!ret && v)
		ret = vgru_stats(v, &b);	/* before our own munmap */
	if (op != INV_MUNMAP || ret)
		munmap(buf, len);
	if (ret)
		return fig_error(f, "%s: %s", inv_names[op], strerror(-ret));
	inv[0] = b.invalidations - a.invalidations;
	inv[1] = b.device_invalidations - a.device_invalidations;
	return 0;
}

struct inv_results {
	double us[INV_N][CASE_N];	/* medians */
	double invalidations[INV_N];	/* device-mapped case */
	double device_inv[INV_N];	/* device-mapped case */
	double unseen_device_inv[INV_N];
	double flip_us[2];		/* context open, no context */
	double flip_inv, flip_device_inv;
};

#define INV_MAX_REPS	5

/*
 * One round of every case of @op: the handle is opened for the first two
 * and closed for the third, so that the cases interleave in time and a
 * drift of the machine's speed hits them alike.
 */
static int inv_round(struct figure *f, enum inv_op op, size_t len,
		     double us[CASE_N], double inv[3])
{
	uint64_t mapped_inv[2] = { 0 }, unseen_inv[2] = { 0 }, unused[2];
	struct vgru *v;
	int ret;

	if (open_device(f, &v))
		return -1;
	ret = inv_once(f, v, op, len, true, &us[CASE_MAPPED], mapped_inv);
	if (!ret)
		ret = inv_once(f, v, op, len, false, &us[CASE_UNSEEN],
			       unseen_inv);
	vgru_close(v);
	if (!ret)
		ret = inv_once(f, NULL, op, len, false, &us[CASE_NO_CTX],
			       unused);
	inv[0] = (double)mapped_inv[0];
	inv[1] = (double)mapped_inv[1];
	inv[2] = (double)unseen_inv[1];
	return ret;
}

static int inv_measure_op(struct figure *f, enum inv_op op, size_t len,
			  unsigned int reps, struct inv_results *r)
{
	double us[CASE_N][INV_MAX_REPS], inv[3][INV_MAX_REPS], round[CASE_N];
	double round_inv[3];

	progress("invalidation: %s, %u rounds", inv_names[op], reps);
	for (unsigned int i = 0; i < reps; i++) {
		if (inv_round(f, op, len, round, round_inv))
			return -1;
		for (int c = 0; c < CASE_N; c++)
			us[c][i] = round[c];
		for (int k = 0; k < 3; k++)
			inv[k][i] = round_inv[k];
	}
	for (int c = 0; c < CASE_N; c++)
		r->us[op][c] = median(us[c], reps);
	r->invalidations[op] = median(inv[0], reps);
	r->device_inv[op] = median(inv[1], reps);
	r->unseen_device_inv[op] = median(inv[2], reps);
	return 0;
}

#define FLIPS		1000	/* even: the range ends read-write */
#define FLIP_BYTES	(4 * PAGE)

/* Per-call time of FLIPS mprotect calls alternating PROT_READ and RW. */
static int flip_round(unsigned char *p, double *us)
{
	uint64_t t0 = now_ns();

	for (unsigned int i = 0; i < FLIPS; i++)
		if (mprotect(p, FLIP_BYTES, i % 2 ? PROT_READ | PROT_WRITE :
			     PROT_READ))
			return -errno;
	*us = (now_ns() - t0) / 1e3 / FLIPS;
	return 0;
}

/* Flips with a context open (counting its invalidations), then without. */
static int flip_pair(struct figure *f, unsigned char *p, double *ctx_us,
		     double *no_ctx_us, double *inv, double *dev_inv)
{
	struct vgru_stats a, b;
	struct vgru *v;
	int ret;

	if (open_device(f, &v))
		return -1;
	ret = vgru_stats(v, &a);
	if (!ret)
		ret = flip_round(p, ctx_us);
	if (!ret)
		ret = vgru_stats(v, &b);
	vgru_close(v);
	if (!ret)
		ret = flip_round(p, no_ctx_us);
	if (ret)
		return fig_error(f, "mprotect flips: %s", strerror(-ret));
	*inv = (double)(b.invalidations - a.invalidations);
	*dev_inv = (double)(b.device_invalidations - a.device_invalidations);
	return 0;
}

static int inv_flips(struct figure *f, unsigned int reps,
		     struct inv_results *r)
{
	double ctx[INV_MAX_REPS], no_ctx[INV_MAX_REPS], inv[INV_MAX_REPS];
	double dev_inv[INV_MAX_REPS];
	unsigned char *p = map_anon(FLIP_BYTES);
	unsigned int i;

	if (!p)
		return map_error(f, FLIP_BYTES);
	memset(p, 1, FLIP_BYTES);
	progress("invalidation: %u rounds of %u mprotect calls", reps, FLIPS);
	for (i = 0; i < reps; i++)
		if (flip_pair(f, p, &ctx[i], &no_ctx[i], &inv[i], &dev_inv[i]))
			break;
	munmap(p, FLIP_BYTES);
	if (i < reps)
		return -1;
	r->flip_us[0] = median(ctx, reps);
	r->flip_us[1] = median(no_ctx, reps);
	r->flip_inv = median(inv, reps);
	r->flip_device_inv = median(dev_inv, reps);
	return 0;
}

static void inv_report(struct figure *f, const struct inv_results *r)
{
	struct plot *calls, *flips;

	calls = fig_plot(f, "invalidation_calls", "Unmap and protect a buffer",
			 "call", "time per call (us)", true);
	if (calls)
		calls->y_log = true;	/* mprotect is ~30x cheaper */
	for (int op = 0; op < INV_N; op++) {
		const double *us = r->us[op];

		fig_raw(f, us[CASE_MAPPED], "%s_device_mapped_us",
			inv_names[op]);
		fig_raw(f, us[CASE_UNSEEN], "%s_unseen_ctx_us", inv_names[op]);
		fig_raw(f, us[CASE_NO_CTX], "%s_no_ctx_us", inv_names[op]);
		fig_raw(f, r->invalidations[op], "%s_invalidations_count",
			inv_names[op]);
		fig_raw(f, r->device_inv[op], "%s_device_invalidations_count",
			inv_names[op]);
		fig_raw(f, r->unseen_device_inv[op],
			"%s_unseen_device_invalidations_count", inv_names[op]);
		fig_ratio(f, ratio(us[CASE_MAPPED], us[CASE_NO_CTX]),
			  "%s_mapped_over_no_ctx", inv_names[op]);
		fig_ratio(f, ratio(us[CASE_UNSEEN], us[CASE_NO_CTX]),
			  "%s_unseen_over_no_ctx", inv_names[op]);
		fig_ratio(f, ratio(us[CASE_MAPPED], us[CASE_UNSEEN]),
			  "%s_mapped_over_unseen", inv_names[op]);
		for (int c = 0; c < CASE_N; c++)
			plot_bar(calls, case_labels[c], inv_names[op], us[c]);
	}
	fig_raw(f, r->flip_us[0], "flip_ctx_us");
	fig_raw(f, r->flip_us[1], "flip_no_ctx_us");
	fig_raw(f, FLIPS, "flips_count");
	fig_raw(f, r->flip_inv, "flip_invalidations_count");
	fig_raw(f, r->flip_device_inv, "flip_device_invalidations_count");
	fig_ratio(f, ratio(r->flip_us[0], r->flip_us[1]),
		  "flip_ctx_over_no_ctx");
	flips = fig_plot(f, "invalidation_flips",
			 "mprotect of a range the device never touched", "",
			 "time per call (us)", true);
	plot_bar(flips, "median", "context open", r->flip_us[0]);
	plot_bar(flips, "median", "no context", r->flip_us[1]);
}

static int fig_invalidation(struct figure *f)
{
	size_t len = (opt.quick ? 16 : 64) * MIB;
	unsigned int reps = opt.quick ? 3 : INV_MAX_REPS;
	struct inv_results r;

	for (int op = 0; op < INV_N; op++)
		for (int c = 0; c < CASE_N; c++)
			r.us[op][c] = NAN;
	r.flip_us[0] = r.flip_us[1] = r.flip_inv = r.flip_device_inv = NAN;
	for (int op = 0; op < INV_N; op++)
		if (inv_measure_op(f, op, len, reps, &r))
			return -1;
	if (inv_flips(f, reps, &r))
		return -1;
	inv_report(f, &r);
	fig_raw(f, (double)len, "buffer_bytes");
	fig_what(f, "munmap, MADV_DONTNEED and mprotect(PROT_READ) of a "
		 "populated %zu MiB buffer: after a device copy touched every "
		 "page (first half to second half), or never seen by the "
		 "device, with a context open; and with the handle closed.  "
		 "Median of %u rounds, each round running the three cases in "
		 "turn on fresh buffers.  Flips: %u mprotect calls "
		 "alternating PROT_READ and read-write on 16 KiB the device "
		 "never touched, per call, median of %u rounds; "
		 "flip_invalidations_count is the notifier ranges per round, "
		 "flip_device_invalidations_count those that reached the "
		 "device (the driver sends only ranges where the device may "
		 "hold a page).", len / MIB, reps, FLIPS, reps);
	return 0;
}

/* ---- figure 6: concurrency ------------------------------------------------ */

enum conc_mode { CONC_WARM, CONC_COLD };

struct conc_slot {
	uint64_t bytes, faults, ns;
	int err;		/* -errno of the first failure */
	char where[32];
};

#define CONC_LEN	MIB

static int conc_open(struct vgru **v)
{
	int ret;

	/* an exited process's context may be released a little later */
	for (int tries = 0; tries < 50; tries++) {
		ret = vgru_open(opt.device, v);
		if (ret != -EBUSY)
			break;
		usleep(100 * 1000);
	}
	return ret;
}

/* One copy of the loop: warm reuses @src/@dst, cold maps fresh ones. */
static int conc_copy(struct vgru *v, enum conc_mode mode, unsigned char *src,
		     unsigned char *dst)
{
	int ret;

	if (mode == CONC_WARM)
		return vgru_copy(v, dst, src, CONC_LEN);
	src = map_anon(CONC_LEN);
	dst = map_anon(CONC_LEN);
	ret = src && dst ? vgru_copy(v, dst, src, CONC_LEN) : -ENOMEM;
	unmap(src, CONC_LEN);
	unmap(dst, CONC_LEN);
	return ret;
}

static void conc_fail(struct conc_slot *s, const char *where, int err)
{
	s->err = err;
	snprintf(s->where, sizeof(s->where), "%s", where);
}

static void conc_loop(struct vgru *v, enum conc_mode mode, double secs,
		      unsigned char *src, unsigned char *dst,
		      struct conc_slot *s)
{
	struct vgru_stats a, b;
	uint64_t t0 = now_ns();
	int ret = vgru_stats(v, &a);

	while (!ret && now_ns() - t0 < secs * 1e9) {
		ret = conc_copy(v, mode, src, dst);
		if (!ret)
			s->bytes += CONC_LEN;
	}
	s->ns = now_ns() - t0;
	if (!ret)
		ret = vgru_stats(v, &b);
	if (ret)
		conc_fail(s, "copy", ret);
	else
		s->faults = b.faults - a.faults;
}

static void conc_child(enum conc_mode mode, double secs, int ready, int go,
		       struct conc_slot *s)
{
	unsigned char *src = map_anon(CONC_LEN), *dst = map_anon(CONC_LEN);
	struct vgru *v = NULL;
	int ret;
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	ret = conc_open(&v);
	if (ret)
		conc_fail(s, "vgru_open", ret);
	else if (!src || !dst)
		conc_fail(s, "mmap", -ENOMEM);
	if (!ret && src && dst) {
		memset(src, 0x42, CONC_LEN);
		memset(dst, 0, CONC_LEN);
		ret = mode == CONC_WARM ? vgru_copy(v, dst, src, CONC_LEN) : 0;
		if (ret)
			conc_fail(s, "pre-fault copy", ret);
	}
	if (write(ready, "r", 1) != 1 || read(go, &c, 1) != 1)
		_exit(1);
	if (!s->err)
		conc_loop(v, mode, secs, src, dst, s);
	vgru_close(v);
	_exit(0);
}

struct conc_level {
	double mib_s, faults_s;
};

/* Start @n children, wait until all are ready, let them go, reap them. */
static int conc_fork(struct figure *f, enum conc_mode mode, unsigned int n,
		     double secs, struct conc_slot *slots)
{
	int ready[2], go[2], got = 0;
	unsigned int started = 0;
	char buf[8];

	if (pipe(ready))
		return fig_error(f, "pipe: %s", strerror(errno));
	if (pipe(go)) {
		close(ready[0]);
		close(ready[1]);
		return fig_error(f, "pipe: %s", strerror(errno));
	}
	fflush(NULL);
	for (; started < n; started++) {
		pid_t pid = fork();

		if (pid == 0) {
			close(ready[0]);
			close(go[1]);
			conc_child(mode, secs, ready[1], go[0],
				   &slots[started]);
		}
		if (pid < 0)
			break;
	}
	close(ready[1]);
	close(go[0]);
	for (unsigned int i = 0; i < started; i++)
		got += read(ready[0], buf, 1) == 1;
	for (unsigned int i = 0; i < started; i++)
		if (write(go[1], "g", 1) != 1)
			break;
	close(go[1]);
	close(ready[0]);
	while (wait(NULL) > 0)
		;
	if (started < n || got < (int)n)
		return fig_error(f, "%u of %u processes started", started, n);
	return 0;
}

static int conc_level(struct figure *f, enum conc_mode mode, unsigned int n,
		      double secs, struct conc_level *out)
{
	size_t len = n * sizeof(struct conc_slot);
	struct conc_slot *slots = mmap(NULL, len, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t bytes = 0, faults = 0, ns = 0;
	int ret;

	if (slots == MAP_FAILED)
		return map_error(f, len);
	memset(slots, 0, len);
	ret = conc_fork(f, mode, n, secs, slots);
	for (unsigned int i = 0; !ret && i < n; i++) {
		if (slots[i].err) {
			ret = fig_error(f, "process %u: %s: %s", i,
					slots[i].where,
					strerror(-slots[i].err));
			break;
		}
		bytes += slots[i].bytes;
		faults += slots[i].faults;
		ns = slots[i].ns > ns ? slots[i].ns : ns;
	}
	munmap(slots, len);
	out->mib_s = ns ? (double)bytes / MIB / (ns / 1e9) : NAN;
	out->faults_s = ns ? (double)faults / (ns / 1e9) : NAN;
	return ret;
}

static int conc_mode_run(struct figure *f, enum conc_mode mode,
			 unsigned int max_procs, double secs,
			 struct plot *pt, struct plot *pf)
{
	static const unsigned int procs[] = { 1, 2, 4 };
	const char *name = mode == CONC_WARM ? "warm" : "cold";
	struct conc_level lv[3];

	for (unsigned int i = 0; i < ARRAY_SIZE(procs); i++) {
		lv[i].mib_s = lv[i].faults_s = NAN;
		if (procs[i] <= max_procs) {
			progress("concurrency: %s, %u processes", name,
				 procs[i]);
			if (conc_level(f, mode, procs[i], secs, &lv[i]))
				return -1;
		}
		fig_raw(f, lv[i].mib_s, "%s_%up_mib_s", name, procs[i]);
		fig_raw(f, lv[i].faults_s, "%s_%up_faults_per_s", name,
			procs[i]);
		plot_point(pt, name, procs[i], lv[i].mib_s);
		plot_point(pf, name, procs[i], lv[i].faults_s);
	}
	fig_ratio(f, ratio(lv[1].mib_s, lv[0].mib_s), "%s_2p_over_1p", name);
	fig_ratio(f, ratio(lv[2].mib_s, lv[0].mib_s), "%s_4p_over_1p", name);
	return 0;
}

static int fig_concurrency(struct figure *f)
{
	double secs = opt.quick ? 0.5 : 3;
	uint64_t contexts = 0;
	struct plot *pt, *pf;
	char path[256];

	snprintf(path, sizeof(path), "/sys/class/vgru/%s/contexts",
		 device_name());
	if (read_u64(path, &contexts))
		return fig_error(f, "cannot read %s", path);
	fig_raw(f, (double)contexts, "contexts_count");
	fig_raw(f, CONC_LEN, "copy_bytes");
	fig_raw(f, secs, "seconds_s");
	pt = fig_plot(f, "concurrency_throughput", "Aggregate throughput",
		      "processes", "aggregate throughput (MiB/s)", false);
	pf = fig_plot(f, "concurrency_faults", "Aggregate fault rate",
		      "processes", "device faults per second", false);
	if (conc_mode_run(f, CONC_WARM, (unsigned int)contexts, secs, pt, pf) ||
	    conc_mode_run(f, CONC_COLD, (unsigned int)contexts, secs, pt, pf))
		return -1;
	fig_what(f, "1, 2 and 4 processes (device contexts: %" PRIu64 "), "
		 "each with its own context, start together and copy 1 MiB "
		 "per command for %.1f s: warm (the same pre-faulted buffers) "
		 "or cold (fresh buffers every copy); aggregate MiB/s and "
		 "device faults/s over the longest process's time.",
		 contexts, secs);
	return 0;
}

/* ---- figure 9: fault policies ------------------------------------------- */

/* One cold copy of @len fresh bytes under @policy; time and counters. */
static int fp_copy(struct figure *f, enum vgru_fault_policy policy,
		   size_t len, double *us, uint64_t *faults, uint64_t *prefaults)
{
	struct vgru *v;
	struct vgru_stats a, b;
	int ret;

	if (open_device(f, &v))
		return -1;
	ret = vgru_set_fault_policy(v, policy);
	if (ret) {
		vgru_close(v);
		return vgru_error(f, "vgru_set_fault_policy", ret);
	}
	ret = get_stats(f, v, &a) || cold_copy(f, v, len, us, faults) ||
	      get_stats(f, v, &b);
	*prefaults = b.prefaults - a.prefaults;
	vgru_close(v);
	return ret ? -1 : 0;
}

static int fig_fault_policy(struct figure *f)
{
	const size_t len = (opt.quick ? 4 : 16) * MIB;
	const unsigned int reps = opt.quick ? 3 : 5;
	const double pages = (double)len / PAGE;
	double dev[5], pre[5], cpu[5];
	uint64_t dev_faults = 0, pre_faults = 0, pre_prefaults = 0, unused;
	struct plot *p;

	for (unsigned int r = 0; r < reps; r++) {
		progress("fault_policy: round %u of %u", r + 1, reps);
		if (fp_copy(f, VGRU_FAULT_DEVICE, len, &dev[r], &dev_faults,
			    &unused) ||
		    fp_copy(f, VGRU_FAULT_PREFAULT, len, &pre[r], &pre_faults,
			    &pre_prefaults) ||
		    cpu_cold_copy(f, len, &cpu[r]))
			return -1;
	}
	double d = median(dev, reps) / pages, q = median(pre, reps) / pages,
	       c = median(cpu, reps) / pages;

	fig_raw(f, d, "device_us_per_page");
	fig_raw(f, q, "prefault_us_per_page");
	fig_raw(f, c, "cpu_us_per_page");
	fig_raw(f, (double)dev_faults, "device_faults_count");
	fig_raw(f, (double)pre_faults, "prefault_faults_count");
	fig_raw(f, (double)pre_prefaults, "prefault_prefaults_count");
	fig_raw(f, (double)len, "copy_bytes");
	fig_raw(f, reps, "reps_count");
	fig_ratio(f, ratio(q, d), "prefault_over_device");
	fig_ratio(f, ratio(d, c), "device_over_cpu");
	fig_ratio(f, ratio(q, c), "prefault_over_cpu");
	p = fig_plot(f, "fault_policy", "Cold copy per page by fault policy",
		     "", "time per page of copy (us)", true);
	plot_bar(p, "median", "device faults", d);
	plot_bar(p, "median", "prefault (NO_BLOCK)", q);
	plot_bar(p, "median", "CPU memcpy, first touch", c);
	fig_what(f, "A cold %zu MiB copy between fresh buffers (a new context "
		 "each), time per 4 KiB page of copy, median of %u: "
		 "VGRU_FAULT_DEVICE (every page a device fault resolved by "
		 "the driver's fault work), VGRU_FAULT_PREFAULT (a miss ends "
		 "the command; libvgru prefaults up to 256 KiB of the operand "
		 "in the calling thread and resubmits) and the CPU's memcpy "
		 "of the same cold buffers.", len / MIB, reps);
	return 0;
}

/* ---- figure 10: asynchronous commands ------------------------------------ */

#define ASYNC_DEPTH	8
#define ASYNC_BATCH	64

struct async_arg {
	struct vgru *v;
	unsigned char *src, *dst;	/* one warm page each */
	struct vgru_desc *list;		/* ASYNC_BATCH entries */
	int ticket[ASYNC_DEPTH];
	unsigned int next;
};

/* Wait for the oldest of the ring's commands and submit it again. */
static int op_ring(void *arg)
{
	struct async_arg *a = arg;
	unsigned int k = a->next;
	struct vgru_desc d;
	int ret;

	ret = vgru_wait(a->v, a->ticket[k], -1, NULL);
	if (ret)
		return ret;
	vgru_prep_copy(&d, a->dst + k * SMALL_OP, a->src + k * SMALL_OP,
		       SMALL_OP);
	ret = vgru_submit(a->v, &d, 0);
	if (ret < 0)
		return ret;
	a->ticket[k] = ret;
	a->next = (k + 1) % ASYNC_DEPTH;
	return 0;
}

static int op_batch(void *arg)
{
	struct async_arg *a = arg;
	int t = vgru_submit_batch(a->v, a->list, ASYNC_BATCH, 0);

	return t < 0 ? t : vgru_wait(a->v, t, -1, NULL);
}

static int async_measure(struct figure *f, struct async_arg *a,
			 double *blocking, double *ring, double *batch)
{
	struct copy_arg c = { .v = a->v, .src = a->src, .dst = a->dst,
			      .len = SMALL_OP };
	struct budget b = budget();
	struct vgru_desc d;
	struct timing t;
	int ret;

	ret = measure(op_device, &c, &b, &t);
	if (ret)
		return vgru_error(f, "blocking 64 B copy", ret);
	*blocking = 1e9 / t.ns;

	for (unsigned int k = 0; k < ASYNC_DEPTH; k++) {
		vgru_prep_copy(&d, a->dst + k * SMALL_OP,
			       a->src + k * SMALL_OP, SMALL_OP);
		a->ticket[k] = vgru_submit(a->v, &d, 0);
		if (a->ticket[k] < 0)
			return vgru_error(f, "vgru_submit", a->ticket[k]);
	}
	a->next = 0;
	ret = measure(op_ring, a, &b, &t);
	for (unsigned int k = 0; k < ASYNC_DEPTH; k++)
		vgru_wait(a->v, a->ticket[k], -1, NULL);
	if (ret)
		return vgru_error(f, "8 in flight", ret);
	*ring = 1e9 / t.ns;

	for (unsigned int k = 0; k < ASYNC_BATCH; k++)
		vgru_prep_copy(&a->list[k], a->dst + k * SMALL_OP,
			       a->src + k * SMALL_OP, SMALL_OP);
	ret = measure(op_batch, a, &b, &t);
	if (ret)
		return vgru_error(f, "batch of 64", ret);
	*batch = 1e9 * ASYNC_BATCH / t.ns;
	return 0;
}

static int fig_async(struct figure *f)
{
	struct async_arg a = { 0 };
	unsigned char *buf = map_anon(3 * PAGE);
	double blocking = NAN, ring = NAN, batch = NAN;
	struct plot *p;
	int ret = -1;

	if (!buf)
		return map_error(f, 3 * PAGE);
	a.src = buf;
	a.dst = buf + PAGE;
	a.list = (struct vgru_desc *)(buf + 2 * PAGE);	/* 64-byte aligned */
	memset(buf, 1, 3 * PAGE);
	if (open_device(f, &a.v))
		goto out;
	progress("async: blocking, %u in flight, batches of %u", ASYNC_DEPTH,
		 ASYNC_BATCH);
	/* warm: the device holds both pages and the list */
	ret = vgru_copy(a.v, a.dst, a.src, PAGE);
	if (!ret)
		ret = vgru_prefault(a.v, a.list, PAGE, 0);
	if (ret) {
		ret = vgru_error(f, "warming up", ret);
		goto out_close;
	}
	ret = async_measure(f, &a, &blocking, &ring, &batch);
	if (ret)
		goto out_close;
	fig_raw(f, blocking, "blocking_ops_per_s");
	fig_raw(f, ring, "inflight8_ops_per_s");
	fig_raw(f, batch, "batch64_ops_per_s");
	fig_ratio(f, ratio(ring, blocking), "inflight8_over_blocking");
	fig_ratio(f, ratio(batch, blocking), "batch64_over_blocking");
	p = fig_plot(f, "async_ops", "64 B commands per second", "",
		     "commands per second", true);
	plot_bar(p, "median", "blocking", blocking);
	plot_bar(p, "median", "8 in flight", ring);
	plot_bar(p, "median", "batch of 64", batch);
	{
		struct budget b = budget();

		fig_what(f, "64 B warm device copies per second: one blocking "
			 "vgru_copy() at a time; %u in flight on %u command "
			 "blocks (wait the oldest ticket, submit it again); "
			 "and one BATCH of %u copies per submit and wait.  "
			 "Median over at least %u samples and %.2f s each.",
			 ASYNC_DEPTH, ASYNC_DEPTH, ASYNC_BATCH, b.min_reps,
			 b.target_ns / 1e9);
	}
out_close:
	vgru_close(a.v);
out:
	unmap(buf, 3 * PAGE);
	return ret;
}

/* ---- main ----------------------------------------------------------------- */

struct fig_def {
	const char *id;
	const char *title;
	int (*run)(struct figure *f);
};

static const struct fig_def fig_defs[] = {
	{ "fault_cost", "Cold device fault vs CPU first-touch fault",
	  fig_fault_cost },
	{ "warm_copy", "Warm copy throughput: device vs memcpy vs "
	  "process_vm_readv", fig_warm_copy },
	{ "round_trip", "64 B warm command round trip vs getppid()",
	  fig_round_trip },
	{ "fault_around", "Fault-around sweep", fig_fault_around },
	{ "huge_pages", "THP-backed vs 4 KiB-backed buffers", fig_huge_pages },
	{ "invalidation", "Invalidation overhead: munmap, MADV_DONTNEED, "
	  "mprotect", fig_invalidation },
	{ "concurrency", "Concurrent contexts: aggregate throughput and "
	  "faults", fig_concurrency },
	{ "fault_policy", "Cold copy by fault policy: device faults vs "
	  "prefault vs CPU first touch", fig_fault_policy },
	{ "async", "64 B commands: blocking vs in flight vs batched",
	  fig_async },
};

#define NR_FIGS ARRAY_SIZE(fig_defs)

static void usage(FILE *out, int status)
{
	fprintf(out, "usage: vgru-bench [--quick] [--json FILE] "
		"[--device DEV] [FIGURE...]\nfigures:");
	for (unsigned int i = 0; i < NR_FIGS; i++)
		fprintf(out, " %s", fig_defs[i].id);
	fputc('\n', out);
	exit(status);
}

/* Mark the figures named on the command line (all if none). */
static void select_figures(int argc, char **argv, int first, bool *want)
{
	for (unsigned int i = 0; i < NR_FIGS; i++)
		want[i] = first >= argc;
	for (int a = first; a < argc; a++) {
		unsigned int i;

		for (i = 0; i < NR_FIGS; i++)
			if (!strcmp(argv[a], fig_defs[i].id))
				break;
		if (i == NR_FIGS) {
			fprintf(stderr, "vgru-bench: unknown figure '%s'\n",
				argv[a]);
			usage(stderr, 2);
		}
		want[i] = true;
	}
}

static int parse_args(int argc, char **argv)
{
	int a;

	for (a = 1; a < argc && argv[a][0] == '-'; a++) {
		if (!strcmp(argv[a], "--quick"))
			opt.quick = true;
		else if (!strcmp(argv[a], "--json") && a + 1 < argc)
			opt.json = argv[++a];
		else if (!strcmp(argv[a], "--device") && a + 1 < argc)
			opt.device = argv[++a];
		else if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h"))
			usage(stdout, 0);
		else if (!strcmp(argv[a], "--"))
			return a + 1;
		else
			usage(stderr, 2);
	}
	return a;
}

static struct figure *run_figure(const struct fig_def *d)
{
	struct figure *f = calloc(1, sizeof(*f));
	uint64_t t0 = now_ns();

	if (!f)
		return NULL;
	f->id = d->id;
	f->title = d->title;
	f->supported = true;
	progress("%s: start", d->id);
	if (d->run(f) && !f->error[0])
		fig_error(f, "failed");
	if (f->error[0] && !f->what[0])
		fig_what(f, "Not measured: %s.", f->error);
	f->wall_s = (now_ns() - t0) / 1e9;
	progress("%s: done in %.1f s%s", d->id, f->wall_s,
		 f->error[0] ? " (with an error)" : "");
	return f;
}

int main(int argc, char **argv)
{
	struct figure *done[NR_FIGS];
	bool want[NR_FIGS];
	unsigned int n = 0;
	int status = 0, ret;

	opt.start_ns = now_ns();
	select_figures(argc, argv, parse_args(argc, argv), want);
	for (unsigned int i = 0; i < NR_FIGS; i++) {
		if (!want[i])
			continue;
		done[n] = run_figure(&fig_defs[i]);
		if (!done[n]) {
			fprintf(stderr, "vgru-bench: out of memory\n");
			return 1;
		}
		status |= done[n++]->error[0] != 0;
		ret = opt.json ? json_save(opt.json, done, n) : 0;
		if (ret) {
			fprintf(stderr, "vgru-bench: %s: %s\n", opt.json,
				strerror(-ret));
			return 1;
		}
	}
	if (!opt.json)
		json_write(stdout, done, n);
	if (fflush(stdout))
		return 1;
	for (unsigned int i = 0; i < n; i++)
		free(done[i]);
	return status;
}
