// SPDX-License-Identifier: MIT
/*
 * fw_cfg, QEMU's firmware configuration device (see fw_cfg.c): the items
 * firmware reads, and the port interface a guest reads them through.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct guest_mem;
struct fw_cfg;

#define FW_CFG_NAME_MAX 56  /* a file name with its NUL */
#define FW_CFG_FILES_MAX 48
#define FW_CFG_ITEMS_MAX (FW_CFG_FILES_MAX + 8)

/* A device with the standard items (signature, features, CPU counts, RAM size, an empty file directory). */
struct fw_cfg *fw_cfg_new(struct guest_mem *mem, unsigned cpus, uint64_t ram_size);
void fw_cfg_free(struct fw_cfg *f);

/*
 * Add (or replace) the file name (1 to 55 bytes) with a copy of data.
 * 0, -EINVAL (name), -ENOSPC (FW_CFG_FILES_MAX files) or -ENOMEM.
 */
int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, uint32_t len);

/* Set a legacy item (key below 0x20, e.g. 0x0e, the boot menu) to a copy of data.  0 or -errno. */
int fw_cfg_set_item(struct fw_cfg *f, uint16_t key, const void *data, uint32_t len);

/* A guest access at off (0 to 11) from port 0x510: what the port bus calls (tests call it too). */
void fw_cfg_io(struct fw_cfg *f, uint64_t off, unsigned size, bool write, uint64_t *value);
