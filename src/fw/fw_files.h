// SPDX-License-Identifier: MIT
/*
 * What keel tells firmware through fw_cfg (fw_files.c): the memory map,
 * boot order and menu, the serial console, keel's ACPI tables through the
 * table loader, and SMBIOS tables.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct vm;
struct vm_config;

/* Fill vm->fw_cfg for a firmware boot, once every device exists.  0 or -errno (reported). */
int firmware_config(struct vm *vm);

/* The "bootorder" file: the OpenFirmware paths of the disks with a bootindex, lowest first. */
size_t firmware_bootorder(const struct vm_config *cfg, const char (*paths)[64], char *out, size_t cap);
