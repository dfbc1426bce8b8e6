// SPDX-License-Identifier: MIT
#pragma once

/* `keel run ...`: returns keel's exit status. */
int cmd_run(int argc, char **argv);

struct vm;
struct vm_config;
/*
 * The files a machine's devices use, shared with keel-devtest: open every
 * --disk stack (resolving cpus=) and the virtio-console file before the
 * sandbox; close them (writing back and flushing) at the end; start the
 * block stacks' threads once sandboxed.  0 or -errno (reported).
 */
int run_open_guest_files(struct vm_config *cfg, struct vm *vm);
void run_close_guest_files(struct vm *vm);
int run_start_disks(struct vm *vm);
