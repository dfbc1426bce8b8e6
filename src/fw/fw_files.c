// SPDX-License-Identifier: MIT
/*
 * The fw_cfg files of a firmware boot, in the shape QEMU's PC machine gives
 * them and SeaBIOS (src/fw/paravirt.c, boot.c) reads them:
 *  - etc/e820: { le64 address, le64 length, le32 type } per range: RAM
 *    below and above the PCI hole, the ECAM window and KVM's identity-map
 *    pages reserved; SeaBIOS adds its own reservations (EBDA, BIOS area);
 *  - bootorder: one OpenFirmware device path per line for the disks given a
 *    bootindex (lowest first); the rest follow the CMOS boot order (--boot
 *    order=, written by the RTC);
 *  - key 0x0e and etc/boot-menu-wait: --boot menu=on and splash-time=;
 *  - etc/sercon-port: COM1, so the BIOS screen and boot menu appear on the
 *    serial console (keel has no display yet);
 *  - etc/table-loader, etc/acpi/tables, etc/acpi/rsdp: keel's ACPI tables,
 *    placed and linked by the firmware (acpi_build_fw_cfg());
 *  - etc/smbios/smbios-anchor and smbios-tables (smbios_build());
 *  - genroms/NAME for each --option-rom.
 */
#include "fw_files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/acpi.h"
#include "base/util.h"
#include "boot/boot.h"
#include "fw_cfg.h"
#include "smbios.h"
#include "vmm/layout.h"
#include "vmm/vm.h"

#define KEY_BOOT_MENU 0x0e

struct __attribute__((packed)) e820_entry {
	uint64_t addr, len;
	uint32_t type;
};

static int add_e820(struct vm *vm)
{
	uint64_t high = vm->mem.nr_regions > 1 ? vm->mem.regions[1].len : 0;
	const struct e820_entry all[] = {
		{ htole64(0), htole64(gm_lowmem_end(&vm->mem)), htole32(E820_RAM) },
		{ htole64(PCI_ECAM_BASE), htole64(PCI_ECAM_SIZE), htole32(E820_RESERVED) },
		{ htole64(KVM_IDENTITY_MAP_ADDR), htole64(0x4000), htole32(E820_RESERVED) },
		{ htole64(HIGHMEM_BASE), htole64(high), htole32(E820_RAM) },
	};
	size_t n = high ? ARRAY_SIZE(all) : ARRAY_SIZE(all) - 1;
	return fw_cfg_add_file(vm->fw_cfg, "etc/e820", all, (uint32_t)(n * sizeof(all[0])));
}

size_t firmware_bootorder(const struct vm_config *cfg, const char (*paths)[64], char *out, size_t cap)
{
	size_t len = 0;
	bool done[KEEL_MAX_DISKS] = { false };
	for (;;) {
		int best = -1;
		for (unsigned i = 0; i < cfg->nr_disks && i < KEEL_MAX_DISKS; i++)
			if (!done[i] && cfg->disks[i].bootindex >= 0 && paths[i][0] &&
			    (best < 0 || cfg->disks[i].bootindex < cfg->disks[best].bootindex))
				best = (int)i;
		if (best < 0)
			break;
		done[best] = true;
		size_t n = strnlen(paths[best], 64);
		if (len + n + 1 >= cap)
			break;
		memcpy(out + len, paths[best], n);
		len += n;
		out[len++] = '\n';
	}
	if (cap)
		out[len < cap ? len : cap - 1] = 0;
	return len;
}

static int add_boot(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	char order[KEEL_MAX_DISKS * 65 + 1];
	size_t n = firmware_bootorder(cfg, vm->boot_path, order, sizeof(order));
	int r = n ? fw_cfg_add_file(vm->fw_cfg, "bootorder", order, (uint32_t)n + 1) : 0;
	uint16_t menu = htole16(cfg->boot_menu ? 1 : 0);
	if (!r)
		r = fw_cfg_set_item(vm->fw_cfg, KEY_BOOT_MENU, &menu, sizeof(menu));
	if (!r && cfg->boot_menu && cfg->boot_splash_ms) {
		uint16_t wait = htole16((uint16_t)cfg->boot_splash_ms);
		r = fw_cfg_add_file(vm->fw_cfg, "etc/boot-menu-wait", &wait, sizeof(wait));
	}
	uint16_t port = htole16(PORT_COM1);
	if (!r)
		r = fw_cfg_add_file(vm->fw_cfg, "etc/sercon-port", &port, sizeof(port));
	return r;
}

static int add_acpi(struct vm *vm)
{
	struct acpi_config ac;
	vm_acpi_config(vm, &ac);
	struct acpi_fw_blobs b;
	int r = acpi_build_fw_cfg(&ac, &b);
	if (r)
		return r;
	r = fw_cfg_add_file(vm->fw_cfg, ACPI_FW_RSDP_FILE, b.rsdp, (uint32_t)b.rsdp_len);
	if (!r)
		r = fw_cfg_add_file(vm->fw_cfg, ACPI_FW_TABLES_FILE, b.tables, (uint32_t)b.tables_len);
	if (!r)
		r = fw_cfg_add_file(vm->fw_cfg, ACPI_FW_LOADER_FILE, b.loader, (uint32_t)b.loader_len);
	acpi_fw_blobs_free(&b);
	return r;
}

static int add_smbios(struct vm *vm)
{
	uint64_t high = vm->mem.nr_regions > 1 ? vm->mem.regions[1].len : 0;
	struct smbios_config sc = { .nr_cpus = vm->nr_vcpus, .ram_below_4g = gm_lowmem_end(&vm->mem),
				    .ram_above_4g = high };
	uint8_t *anchor = NULL, *tables = NULL;
	size_t anchor_len = 0, tables_len = 0;
	int r = smbios_build(&sc, &anchor, &anchor_len, &tables, &tables_len);
	if (!r)
		r = fw_cfg_add_file(vm->fw_cfg, SMBIOS_TABLES_FILE, tables, (uint32_t)tables_len);
	if (!r)
		r = fw_cfg_add_file(vm->fw_cfg, SMBIOS_ANCHOR_FILE, anchor, (uint32_t)anchor_len);
	free(anchor);
	free(tables);
	return r;
}

/* --option-rom: genroms/NAME, which SeaBIOS runs during its option ROM scan (as QEMU's -option-rom). */
static int add_option_roms(struct vm *vm)
{
	for (unsigned i = 0; vm->files && i < vm->files->nr_option_roms; i++) {
		const struct boot_rom *rom = &vm->files->option_roms[i];
		char name[FW_CFG_NAME_MAX];
		snprintf(name, sizeof(name), "genroms/%s", rom->name);
		int r = fw_cfg_add_file(vm->fw_cfg, name, rom->data, rom->size);
		if (r)
			return r;
	}
	return 0;
}

int firmware_config(struct vm *vm)
{
	if (!vm->fw_cfg) {
		log_error("firmware boot needs the fw_cfg device");
		return -ENODEV;
	}
	static const struct {
		const char *what;
		int (*add)(struct vm *vm);
	} steps[] = {
		{ "memory map", add_e820 },
		{ "boot order", add_boot },
		{ "ACPI tables", add_acpi },
		{ "SMBIOS tables", add_smbios },
		{ "option ROMs", add_option_roms },
	};
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		int r = steps[i].add(vm);
		if (r) {
			log_error("firmware configuration (%s): %s", steps[i].what, strerror(-r));
			return r;
		}
	}
	return 0;
}
