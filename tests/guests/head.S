/* SPDX-License-Identifier: MIT */
/*
 * Entry points of the keel test guest, loaded at 1 MiB:
 *   +0x000 startup_32  Linux 32-bit boot protocol (QEMU's bzImage path), %esi = boot_params
 *   +0x200 startup_64  Linux 64-bit boot protocol (keel's bzImage path), %rsi = boot_params
 *   pvh_start          PVH (ELF note below), %ebx = hvm_start_info
 * All three switch to the guest's own GDT and 4 GiB identity map and call
 * kmain(kind, info).  With -DFIRST_EXIT every entry instead writes "^" to
 * COM1 with its first instructions and exits through the debug port
 * (boot-latency benchmark: the byte's arrival times the first instruction).
 */
#define BOOT_LINUX32 1
#define BOOT_LINUX64 2
#define BOOT_PVH 3
#define DEBUG_EXIT_PORT 0xf4

.macro first_exit
#ifdef FIRST_EXIT
	movw $0x3f8, %dx		/* "^" on COM1 marks the first instruction */
	movb $0x5e, %al
	outb %al, %dx
	movb $0x10, %al
	outb %al, $DEBUG_EXIT_PORT
#endif
.endm

	.section .head, "ax"
	.code32
	.globl startup_32
startup_32:
	first_exit
	movl $BOOT_LINUX32, %edi
	jmp common32

	.org 0x200
	.code64
	.globl startup_64
startup_64:
	first_exit
	movl $BOOT_LINUX64, %edi
	jmp long_common

	.code32
	.globl pvh_start
pvh_start:
	first_exit
	movl %ebx, %esi
	movl $BOOT_PVH, %edi
common32:
	lgdt gdt_ptr
	movl %cr4, %eax
	orl $0x20, %eax			/* PAE */
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx		/* EFER */
	rdmsr
	orl $0x100, %eax		/* LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax		/* PG, PE */
	movl %eax, %cr0
	ljmp $0x10, $long_entry

	.code64
long_common:
	lgdt gdt_ptr(%rip)
	movq $pml4, %rax
	movq %rax, %cr3
	pushq $0x10
	leaq long_entry(%rip), %rax
	pushq %rax
	lretq
long_entry:
	movl $0x18, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl %esi, %esi			/* boot info lies below 4 GiB */
	movq $stack_top, %rsp
	movl %edi, %r12d
	movq %rsi, %r13
	leaq __bss_start(%rip), %rdi
	leaq __bss_end(%rip), %rcx
	subq %rdi, %rcx
	xorl %eax, %eax
	rep stosb
	movl %r12d, %edi
	movq %r13, %rsi
	call kmain
1:	cli
	hlt
	jmp 1b

/* Interrupt stubs: push a dummy error code where the CPU pushes none. */
.macro isr vec, err
isr_\vec:
	.if \err == 0
	pushq $0
	.endif
	pushq $\vec
	jmp isr_common
.endm
.irp v, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,255
	isr \v, 0
.endr
.irp v, 8,10,11,12,13,14,17
	isr \v, 1
.endr

isr_common:
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	movq %rsp, %rdi
	call interrupt_dispatch
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rax
	addq $16, %rsp
	iretq

	.section .rodata
	.globl isr_vectors, isr_stubs, isr_count
	.balign 8
isr_vectors:
	.byte 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20
	.byte 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,255
isr_count:
	.long 38
	.balign 8
isr_stubs:
.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20
	.quad isr_\v
.endr
.irp v, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,255
	.quad isr_\v
.endr

/* AP start-up code, copied to AP_TRAMPOLINE (0x8000) and entered in real mode. */
#define AP_TRAMPOLINE 0x8000
#define AP_DATA(x) (AP_TRAMPOLINE + ((x) - ap_trampoline))
	.globl ap_trampoline, ap_trampoline_end, ap_count_off, ap_seen_off
	.code16
ap_trampoline:
	cli
	xorw %ax, %ax
	movw %ax, %ds
	movl $1, %eax
	cpuid
	shrl $24, %ebx			/* initial APIC ID */
	lock incw AP_DATA(ap_count)
	movb $1, AP_DATA(ap_seen)(%bx)
2:	cli
	hlt
	jmp 2b
	.balign 4
ap_count:
	.word 0
	.balign 16
ap_seen:
	.fill 256, 1, 0
ap_trampoline_end:
	.balign 4
ap_count_off:
	.long ap_count - ap_trampoline
ap_seen_off:
	.long ap_seen - ap_trampoline

	.data
	.balign 16
	.globl gdt
gdt:
	.quad 0
	.quad 0x00cf9b000000ffff	/* 0x08: 32-bit code */
	.quad 0x00af9b000000ffff	/* 0x10: 64-bit code */
	.quad 0x00cf93000000ffff	/* 0x18: data */
	.quad 0x00cff3000000ffff	/* 0x20: user data (DPL 3) */
	.quad 0x00affb000000ffff	/* 0x28: user 64-bit code (DPL 3) */
	.quad 0, 0			/* 0x30: 64-bit TSS, filled in by keeltest=blkbench */
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt

/*
 * Identity map of the first 4 GiB in 2 MiB pages; the top GiB (APICs, PCI
 * BARs) uncached.  Every entry is user-accessible (U/S) so that
 * keeltest=blkbench can run its driver in ring 3; the guest enables neither
 * SMEP nor SMAP, so ring 0 is unaffected.
 */
	.balign 4096
	.globl pml4
pml4:
	.quad pdpt + 0x7
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x7
	.quad pd + 0x1007
	.quad pd + 0x2007
	.quad pd + 0x3007
	.fill 508, 8, 0
pd:
	.set i, 0
	.rept 1536
	.quad (i << 21) | 0x87		/* present, writable, user, 2 MiB */
	.set i, i + 1
	.endr
	.rept 512
	.quad (i << 21) | 0x9f		/* present, writable, user, PWT, PCD, 2 MiB */
	.set i, i + 1
	.endr

	.bss
	.balign 16
	.globl stack_top
stack:
	.fill 16384, 1, 0
stack_top:

	.section .note.Xen, "a", @note
	.balign 4
	.long 4				/* name size */
	.long 4				/* descriptor size */
	.long 18			/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_start
