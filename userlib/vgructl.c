// SPDX-License-Identifier: MIT
/*
 * vgructl: look at and exercise a vgru device.
 *
 *   vgructl [-d DEVICE] info     context, geometry and API version
 *   vgructl [-d DEVICE] stats    device and driver counters (sysfs stats/),
 *                                each with what it counts (docs/counters.md)
 *   vgructl [-d DEVICE] copy N   copy N bytes with the device and verify
 *   vgructl [-d DEVICE] demo     copies, faults, an invalidation, counters
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libvgru.h"
#include "vgru_ioctl.h"

static const char *device = VGRU_DEFAULT_DEVICE;

/* The device's name in sysfs: /dev/vgru0 -> vgru0 */
static const char *device_name(void)
{
	const char *slash = strrchr(device, '/');

	return slash ? slash + 1 : device;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: vgructl [-d DEVICE] info | stats | copy BYTES | demo\n");
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
	return v;
}

static void print_ctx_stats(struct vgru *v, const char *indent)
{
	struct vgru_stats st;

	if (vgru_stats(v, &st))
		return;
	printf("%sfaults %llu, fault errors %llu, drop-ins %llu, retries %llu, "
	       "invalidations %llu\n", indent,
	       (unsigned long long)st.faults,
	       (unsigned long long)st.fault_errors,
	       (unsigned long long)st.dropins,
	       (unsigned long long)st.retries,
	       (unsigned long long)st.invalidations);
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
	{ "driver_faults", "device faults handled, all contexts" },
	{ "driver_fault_errors", "faults failed back to their command" },
	{ "driver_stale_faults", "fault records of contexts already closed" },
	{ "driver_retries", "resolutions redone after an overlapping invalidation" },
	{ "driver_invalidations", "address ranges changed and flushed, all contexts" },
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

	if (ioctl(vgru_fd(v), VGRU_IOC_INFO, &info) < 0) {
		perror("vgructl: VGRU_IOC_INFO");
		return 1;
	}
	printf("device %s\napi version %u\ncontext %u\ncommand blocks %u\n"
	       "window %u bytes\n", device, info.api_version, info.context,
	       info.nr_cbs, info.window_size);
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

static int cmd_copy(size_t len)
{
	struct vgru *v = open_or_die();
	unsigned char *src = map_buffer(len), *dst = map_buffer(len);
	int ret;

	fill(src, len, 7);
	ret = vgru_copy(v, dst, src, len);
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
	printf("context %u\n", vgru_context(v));
	printf("1. cold copy of %zu KiB (%zu pages each way): every page "
	       "faults once\n", len >> 10, len >> 12);
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

	printf("4. totals of this context: ");
	print_ctx_stats(v, "");
	printf("5. device and driver counters since the driver loaded "
	       "(/sys/class/vgru/%s/stats)\n", device_name());
	vgru_close(v);
	return cmd_stats();
}

int main(int argc, char **argv)
{
	int opt;

	while ((opt = getopt(argc, argv, "d:h")) != -1) {
		if (opt == 'd')
			device = optarg;
		else
			usage();
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
	usage();
}
