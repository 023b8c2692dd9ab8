// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vgru-regs: print the vgru device's identity, geometry, state and
 * counters by reading its control registers (BAR 0) from user space.
 * The bring-up guide (docs/bring-up.md) builds and runs it.
 *
 *   vgru-regs [PCI-ADDRESS]     e.g. vgru-regs 0000:00:01.0
 *
 * Without an address it takes the first vgru function it finds in
 * /sys/bus/pci/devices.  It maps that function's resource0 file read-only
 * and reads 32-bit registers only: no register it reads has a side
 * effect.  The kernel refuses the mapping (EINVAL) while a driver owns
 * the BAR (CONFIG_IO_STRICT_DEVMEM), so unbind vgru first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vgru_regs.h"

#define SYSFS_PCI	"/sys/bus/pci/devices"

static volatile const uint32_t *regs;

static uint32_t rd32(unsigned int reg)
{
	return regs[reg / 4];
}

/* a 64-bit register: two halves, low first (the device's rule) */
static uint64_t rd64(unsigned int reg)
{
	uint32_t lo, hi;

	do {
		hi = rd32(reg + 4);
		lo = rd32(reg);
	} while (hi != rd32(reg + 4));
	return (uint64_t)hi << 32 | lo;
}

static unsigned long sysfs_hex(const char *dev, const char *file)
{
	char path[512], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), SYSFS_PCI "/%s/%s", dev, file);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strtoul(buf, NULL, 16);
}

static int is_vgru(const char *dev)
{
	return sysfs_hex(dev, "vendor") == VGRU_PCI_VENDOR_ID &&
	       sysfs_hex(dev, "device") == VGRU_PCI_DEVICE_ID;
}

static int find_vgru(char *out, size_t len)
{
	struct dirent *d;
	DIR *dir = opendir(SYSFS_PCI);

	if (!dir)
		return -errno;
	while ((d = readdir(dir))) {
		if (d->d_name[0] != '.' && is_vgru(d->d_name)) {
			snprintf(out, len, "%s", d->d_name);
			closedir(dir);
			return 0;
		}
	}
	closedir(dir);
	return -ENODEV;
}

static const struct {
	unsigned int n;
	const char *name;
} stats[] = {
	{ VGRU_STAT_COMMANDS, "commands" },
	{ VGRU_STAT_COMPLETED, "completed" },
	{ VGRU_STAT_ERRORS, "errors" },
	{ VGRU_STAT_TLB_HITS, "tlb_hits" },
	{ VGRU_STAT_TLB_MISSES, "tlb_misses" },
	{ VGRU_STAT_DROPINS, "dropins" },
	{ VGRU_STAT_INVALIDATIONS, "invalidations" },
	{ VGRU_STAT_INV_ENTRIES, "inv_entries" },
	{ VGRU_STAT_BYTES, "bytes" },
	{ VGRU_STAT_INTERRUPTS, "interrupts" },
	{ VGRU_STAT_LISTS, "lists" },
	{ VGRU_STAT_LIST_ERRORS, "list_errors" },
};

int main(int argc, char **argv)
{
	char dev[256], path[512];
	uint32_t id, version, sizes;
	void *map;
	int fd;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: vgru-regs [PCI-ADDRESS]\n");
		return 2;
	}
	if (argc == 2) {
		snprintf(dev, sizeof(dev), "%s", argv[1]);
	} else if (find_vgru(dev, sizeof(dev))) {
		fprintf(stderr, "vgru-regs: no vgru PCI function found\n");
		return 1;
	}
	snprintf(path, sizeof(path), SYSFS_PCI "/%s/resource%d", dev,
		 VGRU_CTRL_BAR);
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "vgru-regs: %s: %s\n", path, strerror(errno));
		return 1;
	}
	map = mmap(NULL, VGRU_CTRL_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		fprintf(stderr, "vgru-regs: mmap %s: %s%s\n", path,
			strerror(errno), errno == EINVAL ?
			" (is a driver bound to it? unbind it first)" : "");
		return 1;
	}
	regs = map;

	id = rd32(VGRU_REG_ID);
	version = rd32(VGRU_REG_VERSION);
	if (id != VGRU_ID) {
		fprintf(stderr, "vgru-regs: %s: ID reads %#x, not %#x\n", dev,
			id, VGRU_ID);
		return 1;
	}
	sizes = rd32(VGRU_REG_PAGE_SIZES);
	printf("device      %s\n", dev);
	printf("id          %#x (\"VGRU\")\n", id);
	printf("version     %u.%u\n", version >> 16, version & 0xffff);
	printf("contexts    %u\n", rd32(VGRU_REG_NR_CONTEXTS));
	printf("cbs         %u per context\n", rd32(VGRU_REG_NR_CBS));
	printf("tlb         %u sets x %u ways\n", rd32(VGRU_REG_TLB_SETS),
	       rd32(VGRU_REG_TLB_WAYS));
	printf("page_sizes  %#x%s%s\n", sizes,
	       sizes & (1u << 12) ? " 4KiB" : "",
	       sizes & (1u << 21) ? " 2MiB" : "");
	printf("ctrl        %#x\n", rd32(VGRU_REG_CTRL));
	printf("status      %#x%s%s\n", rd32(VGRU_REG_STATUS),
	       rd32(VGRU_REG_STATUS) & VGRU_STATUS_ENABLED ? " enabled" : "",
	       rd32(VGRU_REG_STATUS) & VGRU_STATUS_FQ_ERROR ? " fq-error" : "");
	printf("fq          base %#llx size %u head %u tail %u\n",
	       (unsigned long long)rd64(VGRU_REG_FQ_BASE),
	       rd32(VGRU_REG_FQ_SIZE), rd32(VGRU_REG_FQ_HEAD),
	       rd32(VGRU_REG_FQ_TAIL));
	printf("inv_done    %u\n", rd32(VGRU_REG_INV_DONE));
	for (size_t i = 0; i < sizeof(stats) / sizeof(stats[0]); i++)
		printf("stat.%-14s %llu\n", stats[i].name,
		       (unsigned long long)rd64(VGRU_REG_STAT(stats[i].n)));
	munmap(map, VGRU_CTRL_SIZE);
	return 0;
}
