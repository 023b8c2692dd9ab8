// SPDX-License-Identifier: MIT
/*
 * vgructl: look at and exercise a vgru device.
 *
 *   vgructl [-d DEVICE] [-a PAGES] [-i] COMMAND
 *   -a PAGES sets the fault-around of the context vgructl opens (pages
 *   resolved per device fault, a power of two up to 512)
 *   -i: copy and fill leave their faults to the driver's interrupt path
 *
 *   vgructl [-d DEVICE] info     context, geometry, API version, fault-around
 *   vgructl [-d DEVICE] stats    device and driver counters (sysfs stats/),
 *                                each with what it counts (docs/counters.md)
 *   vgructl [-d DEVICE] copy N   copy N bytes with the device and verify
 *   vgructl [-d DEVICE] fill N [PATTERN]
 *                                fill N bytes with a 64-bit pattern, verify
 *   vgructl [-d DEVICE] atomic   fetch-add, swap and CAS on one word
 *   vgructl [-d DEVICE] demo     copies, faults, an invalidation, counters,
 *                                then commands in flight and a batch
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libvgru.h"
#include "vgru_ioctl.h"

static const char *device = VGRU_DEFAULT_DEVICE;
static unsigned int fault_around;	/* -a; 0: the driver's default */
static bool by_interrupt;		/* -i */

/* The device's name in sysfs: /dev/vgru0 -> vgru0 */
static const char *device_name(void)
{
	const char *slash = strrchr(device, '/');

	return slash ? slash + 1 : device;
}

static const char help_text[] =
	"usage: vgructl [-d DEVICE] [-a PAGES] [-i] COMMAND\n"
	"\n"
	"  info                 context, geometry, API version, fault-around\n"
	"  stats                device and driver counters, each explained\n"
	"  copy BYTES           copy BYTES with the device and verify\n"
	"  fill BYTES [PATTERN] fill BYTES with a 64-bit PATTERN and verify\n"
	"  atomic               fetch-add, swap and CAS on one word\n"
	"  demo                 copies, faults, an invalidation, counters,\n"
	"                       commands in flight and a batch\n"
	"\n"
	"  -d DEVICE            device node (default " VGRU_DEFAULT_DEVICE ")\n"
	"  -a PAGES             fault-around of vgructl's context: pages a\n"
	"                       device fault resolves (1, 2, 4 .. 512)\n"
	"  -i                   copy, fill: submit and wait with a time\n"
	"                       limit, so that the driver resolves the\n"
	"                       faults after their interrupts (a blocking\n"
	"                       call resolves them in its own thread)\n"
	"  -h                   this help\n";

static void usage(void)
{
	fputs(help_text, stderr);
	exit(2);
}

static struct vgru *open_or_die(void)
{
	struct vgru *v;
	int ret = vgru_open(device, &v);

	if (ret) {
		fprintf(stderr, "vgructl: %s: %s\n", device, strerror(-ret));
		exit(1);
	}
	if (fault_around) {
		ret = vgru_set_fault_around(v, fault_around);
		if (ret < 0) {
			fprintf(stderr, "vgructl: fault-around %u: %s\n",
				fault_around, strerror(-ret));
			exit(1);
		}
	}
	return v;
}

static void print_ctx_stats(struct vgru *v, const char *indent)
{
	struct vgru_stats st;

	if (vgru_stats(v, &st))
		return;
	printf("%sfaults %llu, fault errors %llu, drop-ins %llu, retries %llu, "
	       "invalidations %llu, notices %llu, prefaults %llu\n", indent,
	       (unsigned long long)st.faults,
	       (unsigned long long)st.fault_errors,
	       (unsigned long long)st.dropins,
	       (unsigned long long)st.retries,
	       (unsigned long long)st.invalidations,
	       (unsigned long long)st.notices,
	       (unsigned long long)st.prefaults);
}

/* What each sysfs counter counts (docs/counters.md says more). */
static const struct {
	const char *name;
	const char *text;
} counter_text[] = {
	{ "device_commands", "commands started" },
	{ "device_completed", "commands ended DONE" },
	{ "device_errors", "commands ended ERROR" },
	{ "device_tlb_hits", "translations found in the device TLB" },
	{ "device_tlb_misses", "translations missing (or read-only for a write): fault records" },
	{ "device_dropins", "translations written by the driver" },
	{ "device_invalidations", "invalidation commands" },
	{ "device_inv_entries", "TLB entries removed by invalidations" },
	{ "device_bytes", "bytes moved by DMA" },
	{ "device_interrupts", "event interrupts raised (coalesced)" },
	{ "device_lists", "translation lists applied (one doorbell each)" },
	{ "device_list_errors", "translation lists refused as malformed" },
	{ "driver_faults", "device faults handled, all contexts" },
	{ "driver_fault_errors", "faults failed back to their command" },
	{ "driver_stale_faults", "fault records of contexts already closed" },
	{ "driver_notices", "completion notices, all contexts" },
	{ "driver_retries", "resolutions redone after an overlapping invalidation" },
	{ "driver_invalidations", "address ranges changed and flushed, all contexts" },
	{ "driver_lost_irqs", "lost event interrupts the watchdog recovered" },
};

static const char *describe_counter(const char *name)
{
	for (size_t i = 0; i < sizeof(counter_text) / sizeof(counter_text[0]); i++)
		if (!strcmp(counter_text[i].name, name))
			return counter_text[i].text;
	return "";
}

/*
 * Print /sys/class/vgru/NAME/stats/: one "name value  description" line
 * per counter.
 */
static int cmd_stats(void)
{
	char dir[256], path[512], value[64];
	struct dirent **ents;
	int n;

	snprintf(dir, sizeof(dir), "/sys/class/vgru/%s/stats", device_name());
	n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "vgructl: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		FILE *f;

		if (ents[i]->d_name[0] == '.')
			goto next;
		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		f = fopen(path, "r");
		if (!f && errno == EACCES) {
			/* device-wide counters: root only (docs/counters.md) */
			fprintf(stderr, "vgructl: %s: %s (device-wide counters "
				"are root's; a process reads its own with "
				"vgru_stats)\n", path, strerror(errno));
			while (i < n)
				free(ents[i++]);
			free(ents);
			return 1;
		}
		if (f && fgets(value, sizeof(value), f)) {
			value[strcspn(value, "\n")] = '\0';
			printf("%-22s %14s  %s\n", ents[i]->d_name, value,
			       describe_counter(ents[i]->d_name));
		}
		if (f)
			fclose(f);
next:
		free(ents[i]);
	}
	free(ents);
	return 0;
}

static int cmd_info(void)
{
	struct vgru *v = open_or_die();
	struct vgru_info info;
	int ret;

	if (ioctl(vgru_fd(v), VGRU_IOC_INFO, &info) < 0) {
		perror("vgructl: VGRU_IOC_INFO");
		return 1;
	}
	printf("device %s\napi version %u\ncontext %u\ncommand blocks %u\n"
	       "window %u bytes\n", device, info.api_version, info.context,
	       info.nr_cbs, info.window_size);
	ret = vgru_get_fault_around(v);
	if (ret > 0)
		printf("fault-around %d pages\n", ret);
	else
		printf("fault-around unsupported by the driver\n");
	vgru_close(v);
	return 0;
}

static void fill(unsigned char *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(seed + i * 31 + (i >> 12));
}

static void *map_buffer(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("vgructl: mmap");
		exit(1);
	}
	return p;
}

/*
 * -i: @d submitted and waited on with a time limit.  A waiter with a
 * deadline never resolves a fault itself, so every fault goes through its
 * interrupt to the driver's fault work (bring-up's lost-interrupt
 * experiment needs that path).
 */
static int run_desc(struct vgru *v, const struct vgru_desc *d)
{
	int t;

	t = vgru_submit(v, d, 0);
	if (t < 0)
		return t;
	return vgru_wait(v, t, 600 * 1000, NULL);
}

static int cmd_copy(size_t len)
{
	struct vgru *v = open_or_die();
	unsigned char *src = map_buffer(len), *dst = map_buffer(len);
	int ret;

	fill(src, len, 7);
	if (by_interrupt) {
		struct vgru_desc d;

		vgru_prep_copy(&d, dst, src, len);
		ret = run_desc(v, &d);
	} else {
		ret = vgru_copy(v, dst, src, len);
	}
	if (ret) {
		fprintf(stderr, "vgructl: copy: %s\n", strerror(-ret));
		return 1;
	}
	if (memcmp(src, dst, len)) {
		fprintf(stderr, "vgructl: copy: data differs\n");
		return 1;
	}
	printf("copied %zu bytes, verified\n", len);
	print_ctx_stats(v, "  ");
	vgru_close(v);
	return 0;
}

static int cmd_fill(size_t len, uint64_t pattern)
{
	struct vgru *v = open_or_die();
	unsigned char *dst = map_buffer(len + 1);
	int ret;

	/* at an odd address: any alignment works */
	if (by_interrupt) {
		struct vgru_desc d;

		vgru_prep_fill(&d, dst + 1, pattern, len);
		ret = run_desc(v, &d);
	} else {
		ret = vgru_fill(v, dst + 1, pattern, len);
	}
	if (ret) {
		fprintf(stderr, "vgructl: fill: %s\n", strerror(-ret));
		return 1;
	}
	for (size_t i = 0; i < len; i++) {
		if (dst[1 + i] != (unsigned char)(pattern >> (i % 8 * 8))) {
			fprintf(stderr, "vgructl: fill: byte %zu differs\n", i);
			return 1;
		}
	}
	printf("filled %zu bytes with %#018" PRIx64 ", verified\n", len,
	       pattern);
	print_ctx_stats(v, "  ");
	vgru_close(v);
	return 0;
}

/* Show an atomic's old and new value; 0 if the call worked. */
static int show_atomic(const char *what, int ret, uint64_t old, uint64_t now)
{
	if (ret) {
		fprintf(stderr, "vgructl: %s: %s\n", what, strerror(-ret));
		return 1;
	}
	printf("%-28s old %3" PRIu64 "  new %3" PRIu64 "\n", what, old, now);
	return 0;
}

static int cmd_atomic(void)
{
	struct vgru *v = open_or_die();
	uint64_t *word = (uint64_t *)map_buffer(4096), old = 0;
	int bad = 0, ret;

	*word = 40;
	printf("a word in this process's memory, starting at %" PRIu64 "\n",
	       *word);
	ret = vgru_fetch_add(v, word, 2, &old);
	bad |= show_atomic("fetch_add(+2)", ret, old, *word);
	ret = vgru_swap(v, word, 7, &old);
	bad |= show_atomic("swap(7)", ret, old, *word);
	ret = vgru_cas(v, word, 7, 9, &old);
	bad |= show_atomic("cas(expect 7, store 9)", ret, old, *word);
	ret = vgru_cas(v, word, 7, 11, &old);
	bad |= show_atomic("cas(expect 7, store 11)", ret, old, *word);
	printf("the last CAS failed: the word was %" PRIu64 ", not 7\n", old);
	vgru_close(v);
	return bad || *word != 9;
}

/* Print what one demo step cost, as the change of the context counters. */
static void demo_counters(struct vgru *v, struct vgru_stats *last)
{
	struct vgru_stats now;

	if (vgru_stats(v, &now))
		return;
	printf("   this step: %llu faults (%llu failed), %llu drop-ins, "
	       "%llu invalidations\n",
	       (unsigned long long)(now.faults - last->faults),
	       (unsigned long long)(now.fault_errors - last->fault_errors),
	       (unsigned long long)(now.dropins - last->dropins),
	       (unsigned long long)(now.invalidations - last->invalidations));
	*last = now;
}

/* One demo step: fill the source, copy it, show result and counters. */
static int demo_copy(struct vgru *v, unsigned char *dst, unsigned char *src,
		     size_t len, unsigned int seed, struct vgru_stats *last)
{
	int ret, same;

	fill(src, len, seed);
	ret = vgru_copy(v, dst, src, len);
	same = !memcmp(src, dst, len);
	printf("   result %s, data %s\n", ret ? strerror(-ret) : "ok",
	       same ? "identical" : "DIFFERS");
	demo_counters(v, last);
	return ret || !same;
}

/*
 * Steps 4 and 5: several commands in flight on the handle's CBs, then one
 * batch that stops at a failing entry.
 */
static int demo_async(struct vgru *v, unsigned char *buf, size_t len)
{
	static struct vgru_desc list[4] __attribute__((aligned(64)));
	const size_t part = len / 4;
	struct vgru_result res;
	struct vgru_desc d;
	uint64_t *word = (uint64_t *)buf;
	int t[4], ret, bad = 0;

	printf("4. four fills in flight at once, one per command block\n");
	for (int i = 0; i < 4; i++) {
		vgru_prep_fill(&d, buf + i * part, 0x0101010101010101ull * (i + 1),
			       part);
		t[i] = vgru_submit(v, &d, 0);
		printf("   submitted fill %d of %zu KiB: ticket %d\n", i,
		       part >> 10, t[i]);
		if (t[i] < 0)
			return 1;
	}
	for (int i = 0; i < 4; i++) {
		ret = vgru_wait(v, t[i], -1, &res);
		bad |= ret || buf[i * part] != i + 1 ||
		       buf[(i + 1) * part - 1] != i + 1;
		printf("   ticket %d: %s, %" PRIu64 " bytes\n", t[i],
		       ret ? strerror(-ret) : "ok", res.progress);
	}

	printf("5. a batch of 4: add, add, a CAS on a misaligned word, add\n");
	*word = 0;
	vgru_prep_fetch_add(&list[0], word, 1);
	vgru_prep_fetch_add(&list[1], word, 10);
	/* the device checks alignment: this entry fails, the batch stops */
	vgru_prep_cas(&list[2], (uint64_t *)(buf + 12), 0, 1);
	vgru_prep_fetch_add(&list[3], word, 100);
	t[0] = vgru_submit_batch(v, list, 4, 0);
	if (t[0] < 0)
		return 1;
	ret = vgru_wait(v, t[0], -1, &res);
	printf("   batch: %s (%s); %" PRIu64 " entries completed; word %" PRIu64
	       " (entry 3 never ran)\n", ret ? strerror(-ret) : "ok",
	       vgru_strerror(res.device_error), res.progress, *word);
	bad |= ret != -EINVAL || res.progress != 2 || *word != 11;
	return bad;
}

static int cmd_demo(void)
{
	const size_t len = 256 << 10;	/* fits the default device TLB */
	unsigned char *src = map_buffer(len), *dst = map_buffer(len);
	struct vgru_stats last = { 0 };
	struct vgru *v;
	int ret;

	/* stdio's first write, before the context watches this process */
	printf("vgru demo on %s\n", device);
	v = open_or_die();
	/* from here: vgru_open() already prefaulted its record page */
	vgru_stats(v, &last);
	printf("context %u\n", vgru_context(v));
	printf("1. cold copy of %zu KiB (%zu pages each way): every page "
	       "is dropped in once, a few faults resolving whole blocks "
	       "(fault-around)\n", len >> 10, len >> 12);
	if (demo_copy(v, dst, src, len, 1, &last))
		return 1;
	printf("2. warm copy: the device TLB holds the translations\n");
	if (demo_copy(v, dst, src, len, 2, &last))
		return 1;

	printf("3. munmap the source: the notifier flushes the device TLB\n");
	munmap(src, len);
	demo_counters(v, &last);
	ret = vgru_copy(v, dst, src, len);
	printf("   copy from the unmapped source: %s (expected: %s)\n",
	       ret ? strerror(-ret) : "ok", strerror(EFAULT));
	demo_counters(v, &last);
	if (ret != -EFAULT)
		return 1;

	if (demo_async(v, dst, len))
		return 1;

	printf("6. totals of this context: ");
	print_ctx_stats(v, "");
	printf("7. device and driver counters since the driver loaded "
	       "(/sys/class/vgru/%s/stats)\n", device_name());
	vgru_close(v);
	return cmd_stats();
}

int main(int argc, char **argv)
{
	int opt;

	while ((opt = getopt(argc, argv, "a:d:hi")) != -1) {
		if (opt == 'a') {
			fault_around = strtoul(optarg, NULL, 0);
			if (!fault_around)
				usage();
		} else if (opt == 'd') {
			device = optarg;
		} else if (opt == 'i') {
			by_interrupt = true;
		} else if (opt == 'h') {
			fputs(help_text, stdout);
			return 0;
		} else {
			usage();
		}
	}
	if (optind >= argc)
		usage();
	if (!strcmp(argv[optind], "info"))
		return cmd_info();
	if (!strcmp(argv[optind], "stats"))
		return cmd_stats();
	if (!strcmp(argv[optind], "demo"))
		return cmd_demo();
	if (!strcmp(argv[optind], "copy") && optind + 1 < argc)
		return cmd_copy(strtoull(argv[optind + 1], NULL, 0));
	if (!strcmp(argv[optind], "fill") && optind + 1 < argc)
		return cmd_fill(strtoull(argv[optind + 1], NULL, 0),
				optind + 2 < argc ?
				strtoull(argv[optind + 2], NULL, 0) :
				0x0706050403020100ull);
	if (!strcmp(argv[optind], "atomic"))
		return cmd_atomic();
	usage();
}
