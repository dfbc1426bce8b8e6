/* SPDX-License-Identifier: MIT */
/*
 * Real-mode setup sectors of the test guest's bzImage, for loaders that
 * run the setup code (QEMU's linuxboot option ROM, qboot).  It switches
 * to 32-bit protected mode and jumps to code32_start with %esi pointing at
 * boot_params, as the Linux 32-bit boot protocol requires.  keel instead
 * uses the 64-bit entry and never runs this.  mkbzimage patches
 * setup_sects, syssize and init_size.
 */
#define BP 0x1000 /* our boot_params, inside the setup segment */

	.code16
	.section .text
	.globl _start
_start:
	.org 0x1f1
setup_sects:	.byte 0
root_flags:	.word 0
syssize:	.long 0
ram_size:	.word 0
vid_mode:	.word 0xffff
root_dev:	.word 0
boot_flag:	.word 0xaa55
	.byte 0xeb, start_of_setup - 1f	/* 0x200: jmp start_of_setup */
1:	.ascii "HdrS"
	.word 0x020f			/* boot protocol 2.15 */
	.long 0				/* realmode_swtch */
	.word 0				/* start_sys_seg */
	.word 0				/* kernel_version */
	.byte 0				/* type_of_loader */
	.byte 0x01			/* loadflags: LOADED_HIGH */
	.word 0				/* setup_move_size */
	.long 0x100000			/* code32_start */
	.long 0				/* ramdisk_image */
	.long 0				/* ramdisk_size */
	.long 0				/* bootsect_kludge */
	.word 0				/* heap_end_ptr */
	.byte 0				/* ext_loader_ver */
	.byte 0				/* ext_loader_type */
	.long 0				/* cmd_line_ptr */
	.long 0x7fffffff		/* initrd_addr_max */
	.long 0x200000			/* kernel_alignment */
	.byte 0				/* relocatable_kernel */
	.byte 0				/* min_alignment */
	.word 0x0001			/* xloadflags: XLF_KERNEL_64 */
	.long 4095			/* cmdline_size */
	.long 0				/* hardware_subarch */
	.quad 0				/* hardware_subarch_data */
	.long 0				/* payload_offset */
	.long 0				/* payload_length */
	.quad 0				/* setup_data */
	.quad 0x100000			/* pref_address */
init_size:	.long 0
	.long 0				/* handover_offset */
	.long 0				/* kernel_info_offset */
HDR_END:

start_of_setup:
	/*
	 * The loader set %ds to the segment holding this file.  Build a
	 * zero page (boot_params) of our own at BP in that segment: the setup
	 * header copied in, and the BIOS memory map (INT 15h, E820), as
	 * Linux's setup code does; 32-bit loaders leave both to the kernel.
	 */
	movw %ds, %ax
	movw %ax, %es
	cld
	movw $BP, %di
	xorw %ax, %ax
	movw $2048, %cx
	rep stosw
	movw $0x1f1, %si
	movw $BP + 0x1f1, %di
	movw $HDR_END - 0x1f1, %cx
	rep movsb
	xorl %ebx, %ebx
	movw $BP + 0x2d0, %di		/* boot_params.e820_table */
	xorw %bp, %bp
1:	movl $0xe820, %eax
	movl $20, %ecx
	movl $0x534d4150, %edx		/* "SMAP" */
	int $0x15
	jc 2f
	cmpl $0x534d4150, %eax
	jne 2f
	incw %bp
	addw $20, %di
	cmpw $128, %bp
	jae 2f
	testl %ebx, %ebx
	jnz 1b
2:	movw %bp, %ax
	movb %al, BP + 0x1e8		/* boot_params.e820_entries */

	cli
	movw %ds, %ax
	movzwl %ax, %esi
	shll $4, %esi
	movl %esi, %eax
	addl $gdt, %eax
	movl %eax, gdt_ptr + 2
	addl $BP, %esi			/* %esi = linear address of boot_params */
	lgdtl gdt_ptr
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	movw $0x18, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	.byte 0x66, 0xea		/* ljmpl $0x08, $0x100000 */
	.long 0x100000
	.word 0x08

	.balign 8
gdt:
	.quad 0
	.quad 0x00cf9b000000ffff	/* 0x08: 32-bit code */
	.quad 0x00af9b000000ffff	/* 0x10: 64-bit code */
	.quad 0x00cf93000000ffff	/* 0x18: data */
gdt_ptr:
	.word 31
	.long 0
