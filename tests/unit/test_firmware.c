// SPDX-License-Identifier: MIT
/*
 * Firmware boot pieces without a CPU: the ISA bridge's PIRQ routing of PCI
 * INTx, the firmware log port, the bootorder file, the CMOS boot order,
 * firmware image checks and loading.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot/boot.h"
#include "dev/pci.h"
#include "fake.h"
#include "fw/fw_files.h"
#include "unit.h"
#include "vmm/accel.h"
#include "vmm/device.h"
#include "vmm/layout.h"

/* An accelerator that records interrupt line levels. */
static int line[IOAPIC_PINS];
static unsigned line_changes;
static void rec_set_irq(struct vm *vm, unsigned gsi, bool level)
{
	(void)vm;
	if (gsi < IOAPIC_PINS)
		line[gsi] = level;
	line_changes++;
}
static const struct accel_ops rec_accel = { .name = "record", .set_irq = rec_set_irq };

static void cfg_write(struct vm *vm, unsigned slot, unsigned off, unsigned size, uint32_t v)
{
	pci_config_write(vm->pci, 0, slot, 0, off, size, v);
}

static void intx_routing(void)
{
	struct vm *vm = fake_vm(0);
	vm->accel = &rec_accel;
	memset(line, 0, sizeof(line));
	void *host, *isa;
	CHECK_EQ(pci_host_device.create(vm, &host), 0);
	CHECK_EQ(isa_bridge_device.create(vm, &isa), 0);
	CHECK_EQ(pci_config_read(vm->pci, 0, 1, 0, PCI_VENDOR_ID, 4), 0x70008086);
	CHECK_EQ(pci_config_read(vm->pci, 0, 1, 0, PCI_REVISION, 4) >> 8, 0x060100);
	CHECK_EQ(pci_config_read(vm->pci, 0, 1, 0, 0x60, 4), 0x80808080u); /* routes off at reset */

	/* Two devices whose INTA# land on the same PIRQ line: slots 3 and 7 (swizzle (slot + pin - 2) & 3). */
	struct pci_dev a = { 0 }, b = { 0 };
	pci_dev_init_header(&a, 0x1af4, 0x1001, 0x010000, 0);
	pci_dev_init_header(&b, 0x1af4, 0x1001, 0x010000, 0);
	a.cfg[PCI_INT_PIN] = b.cfg[PCI_INT_PIN] = 1;
	CHECK_EQ(pci_bus_add(vm->pci, &a, 3), 3);
	CHECK_EQ(pci_bus_add(vm->pci, &b, 7), 7);
	CHECK_EQ(isa_bridge_pirq(3, 1), isa_bridge_pirq(7, 1));
	unsigned pirq = isa_bridge_pirq(3, 1);
	CHECK_EQ(pirq, 2); /* PIRQC, which SeaBIOS routes to IRQ 11 */

	/* Unrouted: the pin shows in STATUS, no line moves. */
	pci_dev_set_intx(&a, true);
	CHECK(pci_config_read(vm->pci, 0, 3, 0, PCI_STATUS, 2) & PCI_STATUS_INTX);
	CHECK_EQ(line_changes, 0);
	/* Routing the line (SeaBIOS's values: A, B to 10, C, D to 11) raises it at once. */
	cfg_write(vm, 1, 0x60, 4, 0x0b0b0a0a);
	CHECK_EQ(pci_config_read(vm->pci, 0, 1, 0, 0x60, 4), 0x0b0b0a0a);
	CHECK_EQ(line[11], 1);
	CHECK_EQ(line[10], 0);
	/* Shared: the line stays up until both have let go. */
	pci_dev_set_intx(&b, true);
	pci_dev_set_intx(&a, false);
	CHECK_EQ(line[11], 1);
	CHECK(!(pci_config_read(vm->pci, 0, 3, 0, PCI_STATUS, 2) & PCI_STATUS_INTX));
	pci_dev_set_intx(&b, false);
	CHECK_EQ(line[11], 0);
	/* INTx disable masks the pin; clearing it delivers what is pending. */
	cfg_write(vm, 3, PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
	pci_dev_set_intx(&a, true);
	CHECK_EQ(line[11], 0);
	cfg_write(vm, 3, PCI_COMMAND, 2, 0);
	CHECK_EQ(line[11], 1);
	/* Re-routing an asserted line moves it; an unroutable IRQ (2) or the disable bit takes it off. */
	cfg_write(vm, 1, 0x60 + pirq, 1, 10);
	CHECK_EQ(line[11], 0);
	CHECK_EQ(line[10], 1);
	cfg_write(vm, 1, 0x60 + pirq, 1, 2);
	CHECK_EQ(line[10], 0);
	CHECK_EQ(line[2], 0);
	cfg_write(vm, 1, 0x60 + pirq, 1, 0x85);
	CHECK_EQ(line[5], 0);
	/* Only bits 7 and 3:0 are writable. */
	CHECK_EQ(pci_config_read(vm->pci, 0, 1, 0, 0x60 + pirq, 1), 0x85);
	cfg_write(vm, 1, 0x60 + pirq, 1, 0x7f);
	CHECK_EQ(pci_config_read(vm->pci, 0, 1, 0, 0x60 + pirq, 1), 0x0f);
	CHECK_EQ(line[15], 1);
	pci_dev_set_intx(&a, false);
	CHECK_EQ(line[15], 0);

	/* A function with MSI or MSI-X enabled does not use INTx: the bus masks the pin meanwhile. */
	struct pci_dev m = { 0 };
	pci_dev_init_header(&m, 0x8086, 0x2922, 0x010601, 2);
	m.cfg[PCI_INT_PIN] = 1;
	const uint8_t msi[14] = { PCI_CAP_ID_MSI };
	int msi_off = pci_dev_add_cap(&m, msi, sizeof(msi));
	CHECK(msi_off > 0);
	m.wmask[msi_off + 2] = 0x01;
	CHECK_EQ(pci_bus_add(vm->pci, &m, 4), 4);
	unsigned irq = isa_bridge_pirq(4, 1) < 2 ? 10 : 11;
	pci_dev_set_intx(&m, true);
	CHECK_EQ(line[irq], 1);
	cfg_write(vm, 4, (unsigned)msi_off + 2, 2, 0x0001); /* MSI on */
	CHECK_EQ(line[irq], 0);
	cfg_write(vm, 4, (unsigned)msi_off + 2, 2, 0x0000); /* MSI off: the pending level is back */
	CHECK_EQ(line[irq], 1);
	pci_dev_set_intx(&m, false);
	CHECK_EQ(line[irq], 0);

	isa_bridge_device.destroy(isa);
	pci_host_device.destroy(host);
	fake_vm_free(vm);
}

static void host_bridge_identity(void)
{
	struct vm *vm = fake_vm(0);
	void *host;
	CHECK_EQ(pci_host_device.create(vm, &host), 0);
	CHECK_EQ(pci_config_read(vm->pci, 0, 0, 0, PCI_VENDOR_ID, 4), 0x12378086); /* i440FX */
	/* PAM registers hold what firmware writes (bits 5:4 and 1:0 of each). */
	pci_config_write(vm->pci, 0, 0, 0, 0x58, 4, 0xffffffffu);
	CHECK_EQ(pci_config_read(vm->pci, 0, 0, 0, 0x58, 4), 0x33333300u);
	pci_host_device.destroy(host);
	fake_vm_free(vm);
}

static void firmware_log_lines(void)
{
	char path[] = "/tmp/keel-fwlog-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	struct vm *vm = fake_vm(0);
	vm->firmware_log_fd = fd;
	void *l;
	CHECK_EQ(firmware_log_device.create(vm, &l), 0);
	const struct io_ops *ops = &firmware_log_device.pio[0].ops;
	CHECK_EQ(firmware_log_device.pio[0].base, 0x402);
	CHECK_EQ(ops->read(l, 0, 1), 0xe9); /* SeaBIOS prints only after seeing this */
	const char *msg = "SeaBIOS (version 1.16)\nBooting from Hard Disk";
	for (const char *p = msg; *p; p++)
		ops->write(l, 0, 1, (uint8_t)*p);
	char buf[256] = { 0 };
	CHECK_EQ(pread(fd, buf, sizeof(buf) - 1, 0), 23); /* whole lines only, until destroy */
	/* A line longer than the buffer is cut, not lost. */
	for (int i = 0; i < 300; i++)
		ops->write(l, 0, 1, 'x');
	firmware_log_device.destroy(l);
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	CHECK(n == sizeof(buf) - 1);
	CHECK(!memcmp(buf, msg, strlen(msg)));
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && st.st_size == (off_t)strlen(msg) + 300);
	close(fd);
	unlink(path);
	/* No file: the port still answers and drops the bytes. */
	vm->firmware_log_fd = -1;
	CHECK_EQ(firmware_log_device.create(vm, &l), 0);
	ops->write(l, 0, 1, '\n');
	firmware_log_device.destroy(l);
	struct vm_config with = { .firmware_log = "x" }, without = { 0 };
	CHECK(firmware_log_device.wanted(&with) && !firmware_log_device.wanted(&without));
	fake_vm_free(vm);
}

static void fast_a20_port(void)
{
	struct vm *vm = fake_vm(0);
	void *p;
	CHECK_EQ(port92_device.create(vm, &p), 0);
	const struct io_ops *ops = &port92_device.pio[0].ops;
	CHECK_EQ(port92_device.pio[0].base, 0x92);
	CHECK_EQ(ops->read(p, 0, 1), 0x02); /* A20 on */
	ops->write(p, 0, 1, 0x00);           /* cannot be turned off */
	CHECK_EQ(ops->read(p, 0, 1), 0x02);
	CHECK_EQ(atomic_load(&vm->stop_reason), VM_RUNNING);
	ops->write(p, 0, 1, 0x03); /* fast reset */
	CHECK_EQ(atomic_load(&vm->stop_reason), VM_STOP_RESET);
	CHECK_EQ(ops->read(p, 0, 1), 0x02);
	port92_device.destroy(p);
	fake_vm_free(vm);
}

static void bootorder_file(void)
{
	struct vm_config cfg = { .nr_disks = 4 };
	for (unsigned i = 0; i < 4; i++)
		cfg.disks[i].bootindex = -1;
	char paths[KEEL_MAX_DISKS][64] = { "/pci@i0cf8/*@2", "/pci@i0cf8/*@3", "", "/pci@i0cf8/*@5/drive@1/disk@0" };
	char out[512];
	CHECK_EQ(firmware_bootorder(&cfg, (const char(*)[64])paths, out, sizeof(out)), 0);
	CHECK_EQ(out[0], 0);
	cfg.disks[0].bootindex = 5;
	cfg.disks[2].bootindex = 0; /* no path: a device firmware cannot name is left out */
	cfg.disks[3].bootindex = 1;
	size_t n = firmware_bootorder(&cfg, (const char(*)[64])paths, out, sizeof(out));
	CHECK(!strcmp(out, "/pci@i0cf8/*@5/drive@1/disk@0\n/pci@i0cf8/*@2\n"));
	CHECK_EQ(n, strlen(out));
	/* Too small a buffer: whole lines only. */
	n = firmware_bootorder(&cfg, (const char(*)[64])paths, out, 40);
	CHECK(!strcmp(out, "/pci@i0cf8/*@5/drive@1/disk@0\n"));
}

static uint8_t cmos_read(void *rtc, uint8_t reg)
{
	rtc_device.pio[0].ops.write(rtc, 0, 1, reg);
	return (uint8_t)rtc_device.pio[0].ops.read(rtc, 1, 1);
}

static void cmos_boot_order(void)
{
	struct vm *vm = fake_vm(64 << 20);
	struct vm_config cfg = { .cpus = 2 };
	vm->cfg = &cfg;
	vm->nr_vcpus = 2;
	void *rtc;
	CHECK_EQ(rtc_device.create(vm, &rtc), 0);
	CHECK_EQ(cmos_read(rtc, 0x3d), 0x32); /* default: disk, then CD-ROM */
	CHECK_EQ(cmos_read(rtc, 0x38), 0x41); /* then network; no floppy signature check */
	CHECK_EQ(cmos_read(rtc, 0x5f), 1);
	CHECK_EQ(cmos_read(rtc, 0x34) | cmos_read(rtc, 0x35) << 8, (64 - 16) << 4); /* 64 KiB units above 16 MiB */
	rtc_device.destroy(rtc);
	strcpy(cfg.boot_order, "dc");
	CHECK_EQ(rtc_device.create(vm, &rtc), 0);
	CHECK_EQ(cmos_read(rtc, 0x3d), 0x23);
	CHECK_EQ(cmos_read(rtc, 0x38), 0x01);
	rtc_device.destroy(rtc);
	fake_vm_free(vm);
}

static int write_file(const char *path, size_t size, uint8_t seed)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	for (size_t i = 0; i < size; i++) {
		uint8_t b = (uint8_t)(seed + i * 7 + (i >> 12));
		if (write(fd, &b, 1) != 1)
			break;
	}
	close(fd);
	return 0;
}

static void firmware_images(void)
{
	struct boot_files f;
	CHECK_EQ(boot_files_open(&f, NULL, NULL), 0);
	CHECK_EQ(boot_firmware_open(&f, "/nonexistent/bios.bin"), -ENOENT);
	CHECK_EQ(boot_firmware_open(&f, "/tmp"), -EINVAL);
	char path[] = "/tmp/keel-fw-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(boot_firmware_open(&f, path), -EINVAL); /* empty */
	write_file(path, 100 * 1024, 1);
	CHECK_EQ(boot_firmware_open(&f, path), -EINVAL); /* not whole 64 KiB blocks */
	CHECK(f.firmware == NULL);

	/* 256 KiB: the last 128 KiB appear at 0xe0000; the vCPU starts at the reset vector. */
	write_file(path, 256 * 1024, 3);
	CHECK_EQ(boot_firmware_open(&f, path), 0);
	CHECK_EQ(f.firmware_size, 256 * 1024);
	struct guest_mem gm;
	CHECK_EQ(gm_init(&gm, 32 << 20), 0);
	struct boot_entry e = { .mode = BOOT_MODE_LINUX64 };
	CHECK_EQ(boot_firmware_load(&gm, &f, &e), 0);
	CHECK_EQ(e.mode, BOOT_MODE_RESET);
	CHECK(!memcmp(gm_ptr(&gm, 0xe0000, 128 * 1024), f.firmware + 128 * 1024, 128 * 1024));
	CHECK_EQ(*(uint8_t *)gm_ptr(&gm, 0xdffff, 1), 0);
	boot_files_close(&f);
	CHECK(f.firmware == NULL);

	/* 64 KiB: all of it, ending at 1 MiB. */
	write_file(path, 64 * 1024, 5);
	CHECK_EQ(boot_files_open(&f, NULL, NULL), 0);
	CHECK_EQ(boot_firmware_open(&f, path), 0);
	CHECK_EQ(gm_clear(&gm), 0);
	CHECK_EQ(boot_firmware_load(&gm, &f, &e), 0);
	CHECK(!memcmp(gm_ptr(&gm, 0xf0000, 64 * 1024), f.firmware, 64 * 1024));
	CHECK_EQ(*(uint8_t *)gm_ptr(&gm, 0xeffff, 1), 0);
	boot_files_close(&f);
	gm_destroy(&gm);
	unlink(path);
}

int main(void)
{
	RUN("firmware", intx_routing);
	RUN("firmware", host_bridge_identity);
	RUN("firmware", firmware_log_lines);
	RUN("firmware", fast_a20_port);
	RUN("firmware", bootorder_file);
	RUN("firmware", cmos_boot_order);
	RUN("firmware", firmware_images);
	UNIT_EXIT();
}
