// SPDX-License-Identifier: MIT
/*
 * A firmware boot's machine through keel-devtest, read as SeaBIOS reads it
 * but without a CPU: the image in the BIOS area, fw_cfg's file directory
 * and files (memory map, boot order from bootindex, boot menu, serial
 * console, the ACPI table loader and SMBIOS), the CMOS boot order, the
 * firmware log port, and the i440FX/PIIX3 identity firmware looks for.
 */
#include <endian.h>
#include <linux/pci_regs.h>

#include "../unit/unit.h"
#include "dtclient.h"

static struct dtc d;
static char errlog[64], fw[64], img[64], fwlog[64], rom[64];

static int start(const char *boot, bool log)
{
	char disk[128];
	snprintf(disk, sizeof(disk), "path=%s,bootindex=3", img);
	const char *opts[16] = { "--memory", "32M", "--serial", "none", "--firmware", fw, "--disk", disk };
	unsigned n = 8;
	if (boot) {
		opts[n++] = "--boot";
		opts[n++] = boot;
	}
	if (log) {
		opts[n++] = "--firmware-log";
		opts[n++] = fwlog;
		opts[n++] = "--option-rom";
		opts[n++] = rom;
	}
	return dtc_start(&d, errlog, opts);
}

/* Read fw_cfg item key (len bytes) through the selector and data ports. */
static void cfg_item(uint16_t key, void *buf, size_t len)
{
	dtc_out(&d, 2, 0x510, key);
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = (uint8_t)dtc_in(&d, 1, 0x511);
}

/* Find a file in the directory: its key and size, or 0. */
static uint16_t cfg_file(const char *name, uint32_t *size)
{
	uint32_t count;
	cfg_item(0x19, &count, 4);
	count = be32toh(count);
	for (uint32_t i = 0; i < count && i < 64; i++) {
		uint8_t e[64];
		for (unsigned k = 0; k < 64; k++)
			e[k] = (uint8_t)dtc_in(&d, 1, 0x511);
		if (!strncmp((const char *)e + 8, name, 56)) {
			uint32_t sz;
			uint16_t key;
			memcpy(&sz, e, 4);
			memcpy(&key, e + 4, 2);
			*size = be32toh(sz);
			return be16toh(key);
		}
	}
	return 0;
}

static uint8_t cmos(uint8_t reg)
{
	dtc_out(&d, 1, 0x70, reg);
	return (uint8_t)dtc_in(&d, 1, 0x71);
}

static void firmware_machine(void)
{
	CHECK_EQ(start(NULL, false), 0);
	/* The image's last 128 KiB at 0xe0000. */
	uint8_t low[256];
	dtc_memread(&d, 0xfff00, low, sizeof(low));
	bool same = true;
	for (unsigned i = 0; i < sizeof(low); i++)
		same &= low[i] == (uint8_t)(0x3ff00 + i + 7 * 3); /* file offset 0x3ff00 + i */
	CHECK(same);
	/* Chipset identity and QEMU's subsystem IDs, which SeaBIOS checks. */
	CHECK_EQ(dtc_cfg_read(&d, 0, PCI_VENDOR_ID, 4), 0x12378086);
	CHECK_EQ(dtc_cfg_read(&d, 0, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x11001af4);
	CHECK_EQ(dtc_cfg_read(&d, 1, PCI_VENDOR_ID, 4), 0x70008086);

	char sig[4];
	cfg_item(0, sig, 4);
	CHECK(!memcmp(sig, "QEMU", 4));
	uint32_t size;
	/* The memory map: RAM from 0 to 32 MiB, the ECAM window reserved. */
	uint16_t key = cfg_file("etc/e820", &size);
	CHECK(key >= 0x20);
	CHECK_EQ(size, 3 * 20);
	uint8_t e820[60];
	cfg_item(key, e820, sizeof(e820));
	uint64_t a, l;
	uint32_t t;
	memcpy(&a, e820, 8), memcpy(&l, e820 + 8, 8), memcpy(&t, e820 + 16, 4);
	CHECK(a == 0 && l == 32 << 20 && t == 1);
	memcpy(&a, e820 + 20, 8), memcpy(&t, e820 + 36, 4);
	CHECK(a == 0xb0000000 && t == 2);
	/* bootorder names the virtio disk by its slot, as SeaBIOS's build_pci_path does. */
	int slot = dtc_pci_find(&d, 0x1af4, 0x1042, 0);
	CHECK(slot > 1);
	char want[32], order[64] = { 0 };
	snprintf(want, sizeof(want), "/pci@i0cf8/*@%x\n", slot);
	key = cfg_file("bootorder", &size);
	CHECK(key && size == strlen(want) + 1);
	cfg_item(key, order, size < sizeof(order) ? size : sizeof(order) - 1);
	CHECK(!strcmp(order, want));
	/* The serial console, no boot menu by default. */
	uint16_t v = 0xffff;
	key = cfg_file("etc/sercon-port", &size);
	CHECK(key && size == 2);
	cfg_item(key, &v, 2);
	CHECK_EQ(le16toh(v), 0x3f8);
	cfg_item(0x0e, &v, 2);
	CHECK_EQ(v, 0);
	CHECK(!cfg_file("etc/boot-menu-wait", &size));
	/* ACPI through the loader and SMBIOS: present, of sane sizes (test_acpi_loader checks their contents). */
	CHECK(cfg_file("etc/table-loader", &size) && size % 128 == 0 && size >= 128 * 10);
	CHECK(cfg_file("etc/acpi/rsdp", &size) && size == 36);
	CHECK(cfg_file("etc/acpi/tables", &size) && size > 1000);
	CHECK(cfg_file("etc/smbios/smbios-anchor", &size) && size == 31);
	CHECK(cfg_file("etc/smbios/smbios-tables", &size) && size > 100);
	/* Default CMOS boot order: disk, CD-ROM, network. */
	CHECK_EQ(cmos(0x3d), 0x32);
	/* No log asked for: port 0x402 is not there (SeaBIOS then prints nothing). */
	CHECK_EQ(dtc_in(&d, 1, 0x402), 0xff);
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
}

static void boot_menu_order_and_log(void)
{
	CHECK_EQ(start("order=dc,menu=on,splash-time=1500", true), 0);
	uint16_t v = 0;
	uint32_t size;
	cfg_item(0x0e, &v, 2);
	CHECK_EQ(v, 1);
	uint16_t key = cfg_file("etc/boot-menu-wait", &size);
	CHECK(key && size == 2);
	cfg_item(key, &v, 2);
	CHECK_EQ(le16toh(v), 1500);
	CHECK_EQ(cmos(0x3d), 0x23);
	/* The option ROM, under its file name in genroms/, whole. */
	char name[80];
	snprintf(name, sizeof(name), "genroms/%s", strrchr(rom, '/') + 1);
	key = cfg_file(name, &size);
	CHECK(key && size == 1024);
	uint8_t head[4] = { 0 };
	cfg_item(key, head, 4);
	CHECK(head[0] == 0x55 && head[1] == 0xaa && head[2] == 2 && head[3] == 0xcb);
	CHECK(!cfg_file("genroms/other.rom", &size));
	CHECK_EQ(dtc_in(&d, 1, 0x402), 0xe9);
	const char *line = "keel firmware log\n";
	for (const char *p = line; *p; p++)
		dtc_out(&d, 1, 0x402, (uint8_t)*p);
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
	char buf[64] = { 0 };
	FILE *f = fopen(fwlog, "r");
	CHECK(f && fread(buf, 1, sizeof(buf) - 1, f) == strlen(line));
	CHECK(!strcmp(buf, line));
	if (f)
		fclose(f);
}

int main(void)
{
	int pid = (int)getpid();
	snprintf(errlog, sizeof(errlog), "/tmp/keel-devtest-fw-%d.log", pid);
	snprintf(fw, sizeof(fw), "/tmp/keel-devtest-fw-%d.bin", pid);
	snprintf(img, sizeof(img), "/tmp/keel-devtest-fw-%d.img", pid);
	snprintf(fwlog, sizeof(fwlog), "/tmp/keel-devtest-fw-%d.fwlog", pid);
	snprintf(rom, sizeof(rom), "/tmp/keel-devtest-fw-%d.rom", pid);
	FILE *r = fopen(rom, "wb");
	for (unsigned i = 0; r && i < 1024; i++) /* 0x55 0xaa, 2 blocks, a far return */
		fputc(i == 0 ? 0x55 : i == 1 ? 0xaa : i == 2 ? 2 : i == 3 ? 0xcb : 0, r);
	if (r)
		fclose(r);
	/* A 256 KiB "BIOS" of known bytes (byte i: i + 7 * (i >> 16)) and a 1 MiB disk. */
	FILE *f = fopen(fw, "wb");
	for (unsigned i = 0; f && i < 256 * 1024; i++)
		fputc((uint8_t)(i + 7 * (i >> 16)), f);
	if (f)
		fclose(f);
	f = fopen(img, "wb");
	if (f) {
		fseek(f, (1 << 20) - 1, SEEK_SET);
		fputc(0, f);
		fclose(f);
	}
	RUN("devtest", firmware_machine);
	RUN("devtest", boot_menu_order_and_log);
	unlink(fw);
	unlink(img);
	unlink(fwlog);
	unlink(rom);
	if (!unit_failed_tests)
		unlink(errlog);
	UNIT_EXIT();
}
