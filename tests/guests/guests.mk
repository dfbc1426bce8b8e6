# SPDX-License-Identifier: MIT
# The freestanding test guest, as a PVH ELF and as a bzImage, plus a
# variant whose every entry point exits at once (boot-latency benchmark).

GUEST_CC ?= gcc
GUEST_CFLAGS = -std=gnu17 -O2 -m64 -ffreestanding -fno-builtin -fno-pic -fno-pie -mno-red-zone \
	-mgeneral-regs-only -fno-stack-protector -fcf-protection=none -fno-asynchronous-unwind-tables \
	-Wall -Wextra -Werror
GUEST_LDFLAGS = -nostdlib -static -no-pie -Wl,-T,tests/guests/guest.ld -Wl,--build-id=none \
	-Wl,-z,noexecstack -Wl,-z,max-page-size=4096 -Wl,--no-warn-rwx-segments
G := $(BUILD)/guests
GUEST_OBJS := $(addprefix $(G)/,main.o lib.o checks.o acpi.o rtc.o smp.o blkbench.o)

$(G)/%.o: tests/guests/%.c tests/guests/guest.h
	@mkdir -p $(G)
	$(call say,CC,$<)$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

$(G)/head.o: tests/guests/head.S
	@mkdir -p $(G)
	$(call say,CC,$<)$(GUEST_CC) $(GUEST_CFLAGS) -c $< -o $@

$(G)/head-first.o: tests/guests/head.S
	@mkdir -p $(G)
	$(call say,CC,$< -DFIRST_EXIT)$(GUEST_CC) $(GUEST_CFLAGS) -DFIRST_EXIT -c $< -o $@

$(G)/testguest.elf: $(G)/head.o $(GUEST_OBJS) tests/guests/guest.ld
	$(call say,LD,$@)$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $@ $(G)/head.o $(GUEST_OBJS)

$(G)/firstinsn.elf: $(G)/head-first.o $(GUEST_OBJS) tests/guests/guest.ld
	$(call say,LD,$@)$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $@ $(G)/head-first.o $(GUEST_OBJS)

$(G)/%.bin: $(G)/%.elf
	$(Q)objcopy -O binary -j .head -j .text -j .rodata -j .data -j .note.Xen $< $@

$(G)/setup.bin: tests/guests/setup.S
	@mkdir -p $(G)
	$(call say,AS,$<)$(GUEST_CC) -c $< -o $(G)/setup.o
	$(Q)ld -Ttext=0 --oformat binary -o $@ $(G)/setup.o

$(G)/mkbzimage: tests/guests/mkbzimage.c
	@mkdir -p $(G)
	$(call say,CC,$<)gcc -std=c17 -O2 -Wall -Wextra -Werror -o $@ $<

$(G)/%.bzImage: $(G)/%.bin $(G)/%.elf $(G)/setup.bin $(G)/mkbzimage
	$(call say,BZIMAGE,$@)$(G)/mkbzimage $(G)/setup.bin $< $$(( 0x$$(nm $(G)/$*.elf | awk '$$3=="_end"{print $$1}') - 0x100000 )) $@

guests: $(G)/testguest.elf $(G)/testguest.bzImage $(G)/firstinsn.elf $(G)/firstinsn.bzImage
.SECONDARY:
