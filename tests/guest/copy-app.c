// SPDX-License-Identifier: MIT
/*
 * copy-app: the smallest application of libvgru, built by the runner
 * suite against an installed libvgru and run dynamically linked in the
 * guest.  Copies N bytes with the device and checks them.
 *
 *   copy-app BYTES
 */
#include <libvgru.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	size_t len = argc > 1 ? strtoull(argv[1], NULL, 0) : 4096;
	char *src = malloc(len), *dst = malloc(len);
	struct vgru *v;
	int ret;

	if (!src || !dst)
		return 1;
	for (size_t i = 0; i < len; i++)
		src[i] = (char)(i * 7 + 3);
	memset(dst, 0, len);
	ret = vgru_open(NULL, &v);
	if (ret) {
		fprintf(stderr, "copy-app: vgru_open: %s\n", strerror(-ret));
		return 1;
	}
	ret = vgru_copy(v, dst, src, len);
	vgru_close(v);
	if (ret || memcmp(src, dst, len)) {
		fprintf(stderr, "copy-app: copy: %s\n",
			ret ? strerror(-ret) : "data differs");
		return 1;
	}
	printf("copy-app: %zu bytes copied and verified\n", len);
	return 0;
}
