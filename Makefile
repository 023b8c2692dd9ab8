# vgru: QEMU device, Linux driver, user library and tests.
#
#   make run    set up everything, boot the guest, run the demo
#   make test   set up everything, run every test suite
#   make bench  set up everything, run every benchmark (BENCH=quick: short)
#
# All three install missing Debian packages first (as root), so a fresh
# Debian 12 machine needs nothing else.  Everything downloaded or built goes
# to $(BUILD), except the debug kernel, cached in /var/cache/vgru.  Other
# targets: deps qemu kernel module userlib fio-engine initramfs
# kernel-debug module-debug initramfs-debug lint-tools install shell clean.

SHELL := /bin/bash
BUILD ?= $(CURDIR)/build
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Werror
USER_CFLAGS := $(CFLAGS) $(WARN) -Iuserlib -Iinclude
VERSION := 0.2.0

LIB_HDRS := userlib/libvgru.h include/vgru_regs.h include/vgru_ioctl.h
ULIB := $(BUILD)/userlib
GUEST_PROGS := $(ULIB)/vgructl $(BUILD)/tests/vgru-tests $(BUILD)/tests/vgru-fuzz \
	$(BUILD)/tests/vgru-accept $(BUILD)/bench/vgru-bench

.PHONY: all run test bench deps qemu kernel module userlib fio-engine \
	initramfs kernel-debug module-debug initramfs-debug debug lint-tools \
	install shell clean

all: qemu module userlib fio-engine initramfs

deps:
	@scripts/install-deps

qemu: deps
	@scripts/build-qemu $(BUILD)

kernel: deps
	@scripts/fetch-kernel $(BUILD)

# The driver, by kbuild against the guest kernel's headers, with W=1.
module: kernel
	@mkdir -p $(BUILD)/logs
	@kabi=$$(basename "$$(readlink $(BUILD)/kernel/current)") && \
	$(MAKE) --no-print-directory -C /lib/modules/$$kabi/build M=$(CURDIR) \
		W=1 modules 2>&1 | tee $(BUILD)/logs/module.log; \
	exit $${PIPESTATUS[0]}

userlib: $(ULIB)/libvgru.a $(ULIB)/libvgru.so $(GUEST_PROGS)

$(ULIB)/%.o: userlib/%.c $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -fPIC -c -o $@ $<

$(ULIB)/libvgru.a: $(ULIB)/libvgru.o
	$(AR) rcs $@ $^

# the soname's number changes with every incompatible ABI change
SONAME := libvgru.so.2

$(ULIB)/$(SONAME): $(ULIB)/libvgru.o userlib/libvgru.map
	$(CC) -shared -Wl,-soname,$(SONAME) \
		-Wl,--version-script,userlib/libvgru.map -o $@ $<

$(ULIB)/libvgru.so: $(ULIB)/$(SONAME)
	ln -sf $(SONAME) $@

# The guest runs the host's root, so guest programs are ordinary binaries.
$(ULIB)/vgructl: userlib/vgructl.c $(ULIB)/libvgru.a $(LIB_HDRS)
	$(CC) $(USER_CFLAGS) -o $@ $< $(ULIB)/libvgru.a

$(BUILD)/tests/vgru-tests: tests/guest/vgru-tests.c tests/guest/harness.h \
		tests/guest/guest-util.h tests/guest/libvgru-example.c \
		$(ULIB)/libvgru.a $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -pthread -o $@ $< $(ULIB)/libvgru.a

# the acceptance cases (issue 15): huge pages, KSM, a disk file system, ...
$(BUILD)/tests/vgru-accept: tests/guest/accept-tests.c tests/guest/harness.h \
		tests/guest/guest-util.h \
		$(ULIB)/libvgru.a $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -o $@ $< $(ULIB)/libvgru.a

$(BUILD)/tests/vgru-fuzz: tests/guest/vgru-fuzz.c $(ULIB)/libvgru.a $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -pthread -o $@ $< $(ULIB)/libvgru.a

$(BUILD)/bench/vgru-bench: bench/vgru-bench.c $(ULIB)/libvgru.a $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -pthread -o $@ $< $(ULIB)/libvgru.a -lm

# The fio ioengine, against Debian's fio source of the installed fio.
fio-engine: deps userlib
	@scripts/build-fio-engine $(BUILD)

# Stage 1 of the guest: busybox and the modules that reach the host's root.
initramfs: kernel
	@scripts/mkinitramfs $(BUILD)/initramfs.cpio.gz $(BUILD)/kernel/current

# The debug guest kernel (lockdep, KASAN; scripts/debug-kernel.config), the
# driver built against it (from a copy of the sources: kbuild writes its
# objects beside them), and its initramfs.  tests/vm --kernel debug boots it.
kernel-debug: deps
	@scripts/build-debug-kernel $(BUILD)

MODULE_DEBUG := $(BUILD)/module-debug
module-debug: kernel-debug
	@mkdir -p $(BUILD)/logs
	@scripts/copy-driver $(MODULE_DEBUG)
	@rel=$$(basename "$$(ls -d $(BUILD)/kernel-debug/current/lib/modules/*)") && \
	$(MAKE) --no-print-directory -C $(BUILD)/kernel-debug/current/lib/modules/$$rel/build \
		M=$(MODULE_DEBUG) W=1 modules 2>&1 | tee $(BUILD)/logs/module-debug.log; \
	exit $${PIPESTATUS[0]}

initramfs-debug: kernel-debug
	@scripts/mkinitramfs $(BUILD)/initramfs-debug.cpio.gz $(BUILD)/kernel-debug/current

debug: module-debug initramfs-debug

# checkpatch.pl from Debian's linux-source, for the build suite's style checks
lint-tools: deps
	@scripts/fetch-checkpatch $(BUILD)

run: all
	tests/vm --build $(BUILD) -- vgructl demo

# a shell on the guest console, for bring-up by hand (Ctrl-A X quits)
shell: all
	tests/vm --build $(BUILD) --interactive -- sh

test: all debug lint-tools
	@tests/run-tests --build $(BUILD)

# every benchmark; results, plots and summary.md in $(BUILD)/bench/
bench: all
	@bench/run --build $(BUILD) $(if $(filter quick,$(BENCH)),--quick)

# libvgru for applications: header, static and shared library, pkg-config
# file (written here, so that it names the PREFIX installed to), vgructl,
# and the udev rule giving /dev/vgru* to the group vgru.
# make install [PREFIX=/usr/local] [DESTDIR=] [UDEV_RULES_DIR=]
PREFIX ?= /usr/local
# udev reads /etc and /usr/lib, never /usr/local: a local install's rule
# goes to /etc, a distribution's (PREFIX=/usr) to its own lib directory
ifeq ($(PREFIX),/usr)
UDEV_RULES_DIR ?= /usr/lib/udev/rules.d
else
UDEV_RULES_DIR ?= /etc/udev/rules.d
endif
install: userlib
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/bin
	install -m 0644 userlib/libvgru.h $(DESTDIR)$(PREFIX)/include/
	install -m 0644 $(ULIB)/libvgru.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(ULIB)/$(SONAME) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libvgru.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
		userlib/libvgru.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/libvgru.pc
	install -m 0755 $(ULIB)/vgructl $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(UDEV_RULES_DIR)
	install -m 0644 udev/60-vgru.rules $(DESTDIR)$(UDEV_RULES_DIR)/
	@[ -n "$(DESTDIR)" ] || ldconfig

clean:
	-kabi=$$(basename "$$(readlink $(BUILD)/kernel/current)") && \
	$(MAKE) -C /lib/modules/$$kabi/build M=$(CURDIR) clean
	rm -rf $(BUILD)
