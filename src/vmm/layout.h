// SPDX-License-Identifier: MIT
/*
 * Guest-physical memory map of a keel VM.
 *
 *   0x0000_0000 ... 0x0009_fbff   RAM (real-mode area; boot structures)
 *   0x0009_fc00 ... 0x0009_ffff   reserved (EBDA)
 *   0x000e_0000 ... 0x000f_ffff   reserved: ACPI tables (RSDP found by scan)
 *   0x0010_0000 ... LOWMEM_END    RAM (kernel loaded at 1 MiB)
 *   0xb000_0000 ... 0xbfff_ffff   PCIe ECAM (256 buses), where QEMU's q35 has it
 *   0xc000_0000 ... 0xfebf_ffff   PCI 32-bit MMIO window (firmware places BARs
 *                                 from its top down, as on QEMU's PC machine)
 *   0xfec0_0000                   IOAPIC (in-kernel)
 *   0xfee0_0000                   local APICs (in-kernel)
 *   4 GiB - size ... 4 GiB        firmware image, read-only (--firmware); its
 *                                 last 128 KiB are also copied to 0xe0000
 *   0x1_0000_0000 ...             RAM above the PCI hole
 */
#pragma once

#define LOWMEM_LIMIT 0xb0000000ull /* RAM below 4 GiB ends here at most */
#define HIGHMEM_BASE 0x100000000ull

#define EBDA_START 0x9fc00ull
#define BIOS_AREA_START 0xe0000ull
#define BIOS_AREA_END 0x100000ull

#define PCI_ECAM_BASE 0xb0000000ull
#define PCI_ECAM_SIZE 0x10000000ull
#define PCI_MMIO32_BASE 0xc0000000ull
#define PCI_MMIO32_SIZE 0x3ec00000ull /* up to the IOAPIC */
#define IOAPIC_BASE 0xfec00000ull
#define LAPIC_BASE 0xfee00000ull

/* KVM needs three pages for the real-mode TSS and one for the EPT identity map. */
#define KVM_IDENTITY_MAP_ADDR 0xfeffc000ull
#define KVM_TSS_ADDR 0xfeffd000ull

/* Boot-time structures in low RAM, written by the loaders. */
#define BOOT_GDT_ADDR 0x500ull
#define BOOT_STACK_TOP 0x8ff0ull
#define BOOT_PVH_INFO_ADDR 0x6000ull /* hvm_start_info, modlist, memmap */
#define BOOT_PARAMS_ADDR 0x7000ull    /* Linux zero page */
#define BOOT_PML4_ADDR 0x9000ull      /* PML4, PDPT, 4 PDs: identity 4 GiB */
#define BOOT_CMDLINE_ADDR 0x20000ull
#define BOOT_CMDLINE_MAX 0x10000ull
#define KERNEL_LOAD_ADDR 0x100000ull

/* Firmware: the image ends at 4 GiB; its last 128 KiB are the legacy BIOS area. */
#define FIRMWARE_END 0x100000000ull
#define FIRMWARE_LOW_MAX (BIOS_AREA_END - BIOS_AREA_START)
#define FIRMWARE_SIZE_MAX (16ull << 20)

#define ACPI_TABLES_ADDR BIOS_AREA_START
#define ACPI_TABLES_SIZE (BIOS_AREA_END - BIOS_AREA_START)

/* Legacy I/O ports. */
#define PORT_COM1 0x3f8
#define PORT_I8042_DATA 0x60
#define PORT_I8042_CMD 0x64
#define PORT_CMOS 0x70
#define PORT_DEBUG_EXIT 0xf4
#define PORT_FIRMWARE_LOG 0x402 /* QEMU's debugcon as SeaBIOS expects it */
#define PORT_ACPI_PM_BASE 0x600 /* PM1a_EVT 0x600, PM1a_CNT 0x604, PM_TMR 0x608 */
#define PORT_RESET 0xcf9
#define PORT_PCI_CONFIG_ADDR 0xcf8
#define PORT_PCI_CONFIG_DATA 0xcfc

/* ISA interrupt lines. */
#define IRQ_COM1 4
#define IRQ_RTC 8
#define IRQ_SCI 9

#define IOAPIC_PINS 24
