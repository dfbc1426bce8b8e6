# SPDX-License-Identifier: MIT
# libFuzzer targets, built with clang into build-fuzz/: one per device model (the AHCI
# controller's is fuzz_ahci),
# one for VM-exit dispatch over all devices, one for the kernel loaders, one
# for the partition-table parser, one for the trace readers (hostile trace memory),
# and the generic machine fuzzer (keel-devtest's machine, no CPU: fuzz_machine).
# `make fuzzers` builds them; tests/fuzz/run.sh runs each briefly (make test)
# or for longer (make fuzz).

FUZZ_DEVICES := uart_com1 rtc i8042 acpi_pm pci_host debug_exit fw_cfg firmware_log port92
FUZZ_DEV_BINS := $(FUZZ_DEVICES:%=$(BUILD)/fuzz/fuzz_dev_%)
FUZZ_VIRTIO := virtio_blk virtio_console virtio_rng
FUZZ_VIRTIO_BINS := $(FUZZ_VIRTIO:%=$(BUILD)/fuzz/fuzz_%)
FUZZ_BINS := $(FUZZ_DEV_BINS) $(FUZZ_VIRTIO_BINS) $(BUILD)/fuzz/fuzz_virtqueue $(BUILD)/fuzz/fuzz_exits $(BUILD)/fuzz/fuzz_boot $(BUILD)/fuzz/fuzz_part $(BUILD)/fuzz/fuzz_trace $(BUILD)/fuzz/fuzz_machine \
	$(BUILD)/fuzz/fuzz_ahci
FUZZ_FLAGS = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

$(FUZZ_DEV_BINS): $(BUILD)/fuzz/fuzz_dev_%: tests/fuzz/fuzz_device.c tests/unit/fake.h $(BUILD)/libkeel.a
	@mkdir -p $(dir $@)
	$(call say,FUZZ,$@)$(CC) $(CFLAGS_KEEL) $(FUZZ_FLAGS) -Isrc -Itests/unit -DFUZZ_DEVICE=$*_device -o $@ $< $(BUILD)/libkeel.a $(LDLIBS_KEEL)

$(FUZZ_VIRTIO_BINS): $(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_virtio.c tests/unit/vdriver.h $(BUILD)/libkeel.a
	@mkdir -p $(dir $@)
	$(call say,FUZZ,$@)$(CC) $(CFLAGS_KEEL) $(FUZZ_FLAGS) -Isrc -Itests/unit -DFUZZ_VIRTIO=$*_desc -o $@ $< $(BUILD)/libkeel.a $(LDLIBS_KEEL)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/unit/fake.h $(BUILD)/libkeel.a
	@mkdir -p $(dir $@)
	$(call say,FUZZ,$@)$(CC) $(CFLAGS_KEEL) $(FUZZ_FLAGS) -Isrc -Itests/unit -o $@ $< $(BUILD)/libkeel.a $(LDLIBS_KEEL)

# The AHCI controller with RAM disks that hold requests back (tests/unit/ahcidrv.h sets it up).
$(BUILD)/fuzz/fuzz_ahci: tests/unit/ahcidrv.h

fuzz-bins: $(FUZZ_BINS)
