# SPDX-License-Identifier: MIT
# keel build.  `make` builds build/keel; `make test` builds and runs every
# test; `make asan` runs them under ASan+UBSan; `make run` boots the default
# guest (`make run CPUS=N` for N vCPUs); `make fuzz` runs each fuzzer longer; `make tsan` runs the tracing,
# block-stack and core unit tests (rings, pollers, cache threads, I/O-thread
# polling) under ThreadSanitizer.

CC ?= gcc
BUILD ?= build
V ?= 0
Q := $(if $(filter 1,$(V)),,@)
say = $(if $(filter 1,$(V)),,@printf '  %-6s %s\n' $(1) $(2);)
OPT ?= -O2 -g
SAN ?=
WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
CFLAGS_KEEL = -std=c17 -D_GNU_SOURCE -Isrc $(WARN) $(OPT) $(SAN) -MMD -MP
LDLIBS_KEEL = -lseccomp -luring -lz -lfuse3 -lpthread
FUSE_CFLAGS := $(shell pkg-config --cflags fuse3 2>/dev/null || echo -I/usr/include/fuse3)

SRCS := $(sort $(wildcard src/*.c src/*/*.c))
MAIN_SRCS := src/main.c src/devtest/main.c
LIB_SRCS := $(filter-out $(MAIN_SRCS),$(SRCS))
OBJS := $(SRCS:%.c=$(BUILD)/%.o)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
# Device tests: black-box programs driving keel-devtest (tests/devtest); they link nothing of keel.
DEVTEST_SRCS := $(sort $(wildcard tests/devtest/devtest_*.c))
DEVTEST_BINS := $(DEVTEST_SRCS:tests/devtest/%.c=$(BUILD)/tests/%)

.PHONY: all devtests test test-build asan clang tsan run fuzz fuzzers fuzz-bins guests unit clean
all: $(BUILD)/keel

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CFLAGS_KEEL) -c $< -o $@

$(BUILD)/src/trace/tracefs.o: CFLAGS_KEEL += $(FUSE_CFLAGS)

$(BUILD)/libkeel.a: $(LIB_OBJS)
	@rm -f $@
	$(call say,AR,$@)ar rcs $@ $^

$(BUILD)/keel: $(BUILD)/src/main.o $(BUILD)/libkeel.a
	$(call say,LD,$@)$(CC) $(SAN) -o $@ $^ $(LDLIBS_KEEL)

# Device tests without a CPU (src/devtest): a binary of its own, never part of keel.
$(BUILD)/keel-devtest: $(BUILD)/src/devtest/main.o $(BUILD)/libkeel.a
	$(call say,LD,$@)$(CC) $(SAN) -o $@ $^ $(LDLIBS_KEEL)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/libkeel.a
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CFLAGS_KEEL) -Isrc -o $@ $< $(BUILD)/libkeel.a $(LDLIBS_KEEL)

$(BUILD)/tests/devtest_%: tests/devtest/devtest_%.c $(wildcard tests/devtest/*.h) tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) -std=c17 -D_GNU_SOURCE $(WARN) $(OPT) $(SAN) -o $@ $<

devtests: $(BUILD)/keel-devtest $(DEVTEST_BINS)

# The block-stack tests' shared headers (the pattern rule above has only unit.h).
$(BUILD)/tests/test_virtio $(BUILD)/tests/test_virtio_packed: tests/unit/vdriver.h tests/unit/nulldisk.h
$(BUILD)/tests/test_ahci: tests/unit/ahcidrv.h
$(BUILD)/tests/test_block_file: tests/unit/blktest.h
$(BUILD)/tests/test_block_cache $(BUILD)/tests/test_block_part $(BUILD)/tests/test_block_stack: \
	tests/unit/blktest.h tests/unit/blkfake.h

include tests/guests/guests.mk
include tests/fuzz/fuzz.mk

unit: $(UNIT_BINS)

FUZZ_BUILD_VARS = BUILD=build-fuzz CC=clang OPT="-O1 -g" \
	SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"

fuzzers:
	@if command -v clang >/dev/null; then $(MAKE) --no-print-directory $(FUZZ_BUILD_VARS) fuzz-bins; \
	else echo "clang not found: fuzzers not built"; fi

# make test and make run first install missing Debian packages (scripts/deps.sh).
test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory test-build
	@KEEL_BUILD=$(BUILD) tests/run-all.sh

test-build: $(BUILD)/keel devtests unit guests $(BUILD)/tests/drive $(BUILD)/tests/crashwrite $(BUILD)/bench/blockbench fuzzers

fuzz: fuzzers
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-60} tests/fuzz/run.sh

asan:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory BUILD=build-asan SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		OPT="-O1 -g" build-asan/keel devtests unit guests build-asan/tests/drive build-asan/tests/crashwrite
	@KEEL_BUILD=build-asan KEEL_SANITIZED=1 tests/run-all.sh

clang:
	$(MAKE) CC=clang BUILD=build-clang build-clang/keel devtests unit build-clang/bench/blockbench

# GCC warns that ThreadSanitizer does not model atomic_thread_fence; the ring's fences order
# only atomic accesses, which TSan checks on their own, so that warning is silenced.
TSAN_NOWARN := $(shell $(CC) -Werror -Wno-tsan -c -x c /dev/null -o /dev/null 2>/dev/null && echo " -Wno-tsan")
tsan:
	@$(MAKE) --no-print-directory BUILD=build-tsan SAN="-fsanitize=thread$(TSAN_NOWARN)" OPT="-O1 -g" \
		build-tsan/tests/test_trace build-tsan/tests/test_block_file build-tsan/tests/test_block_cache \
		build-tsan/tests/test_block_stack build-tsan/tests/test_core build-tsan/tests/test_ahci
	@for t in test_trace test_block_file test_block_cache test_block_stack test_core test_ahci; do \
		TSAN_OPTIONS="halt_on_error=1 $${TSAN_OPTIONS:-}" build-tsan/tests/$$t || exit 1; done

run:
	@scripts/deps.sh build
	@$(MAKE) --no-print-directory $(BUILD)/keel
	@scripts/run-default-guest.sh $(BUILD) $(CPUS)

# Boot media for the firmware tests (tests/firmware): scripts/media.sh, cached in ~/.cache/keel/media.
.PHONY: media
media:
	@scripts/media.sh

clean:
	rm -rf build build-asan build-clang build-fuzz build-tsan

-include $(OBJS:.o=.d)

$(BUILD)/bench/trace_bench: bench/trace_bench.c tests/unit/fake.h $(BUILD)/libkeel.a
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CFLAGS_KEEL) -Isrc -Itests/unit -o $@ $< $(BUILD)/libkeel.a $(LDLIBS_KEEL)

$(BUILD)/tests/drive: tests/tools/drive.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) -std=c17 -D_GNU_SOURCE $(WARN) -O2 $(SAN) -o $@ $<

$(BUILD)/tests/crashwrite: tests/block/crashwrite.c $(BUILD)/libkeel.a
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CFLAGS_KEEL) -Isrc -o $@ $< $(BUILD)/libkeel.a $(LDLIBS_KEEL)

# bench/block's host side: keel's virtio-blk model and block stack in harness mode, and raw io_uring.
$(BUILD)/bench/blockbench: bench/blockbench.c tests/unit/vdriver.h $(BUILD)/libkeel.a
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CFLAGS_KEEL) -Isrc -Itests/unit -o $@ $< $(BUILD)/libkeel.a $(LDLIBS_KEEL)
