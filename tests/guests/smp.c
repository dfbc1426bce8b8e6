/* SPDX-License-Identifier: MIT */
/* IDT, local APIC and IOAPIC; AP start-up; UART interrupts through the IOAPIC. */
#include "guest.h"

#define LAPIC 0xfee00000ull
#define IOAPIC 0xfec00000ull
#define UART_VECTOR 36
#define COM1 0x3f8

struct frame {
	uint64_t r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax;
	uint64_t vector, error, rip, cs, rflags, rsp, ss;
};

struct __attribute__((packed)) idt_entry {
	uint16_t off_lo, sel;
	uint8_t ist, attr;
	uint16_t off_mid;
	uint32_t off_hi, zero;
};

extern const uint8_t isr_vectors[];
extern const uint64_t isr_stubs[];
extern const uint32_t isr_count;
extern const uint8_t ap_trampoline[], ap_trampoline_end[];
extern const uint32_t ap_count_off, ap_seen_off;
void interrupt_dispatch(struct frame *f);

static struct idt_entry idt[256] __attribute__((aligned(16)));
static volatile unsigned uart_irqs, stray_irqs;
static volatile uint8_t uart_last_iir, uart_last_byte;
static volatile bool uart_got_byte;

static void lapic_write(unsigned reg, uint32_t v) { mmio_write32(LAPIC + reg, v); }
static uint32_t lapic_read(unsigned reg) { return mmio_read32(LAPIC + reg); }

static void ioapic_route(unsigned pin, uint8_t vector, uint8_t dest, bool masked)
{
	mmio_write32(IOAPIC, 0x11 + 2 * pin);
	mmio_write32(IOAPIC + 0x10, (uint32_t)dest << 24);
	mmio_write32(IOAPIC, 0x10 + 2 * pin);
	mmio_write32(IOAPIC + 0x10, vector | (masked ? 1u << 16 : 0));
}

void interrupt_dispatch(struct frame *f)
{
	if (f->vector < 32) {
		print("FAIL exception %lu (error %lx) at rip %lx (cs %lx, rflags %lx)\n", f->vector, f->error, f->rip, f->cs,
		      f->rflags);
		guest_exit(EXIT_FAIL);
	}
	if (f->vector == 255)
		return; /* spurious: no EOI */
	if (f->vector == UART_VECTOR) {
		uint8_t iir = inb(COM1 + 2);
		uart_last_iir = iir;
		if ((iir & 0x0f) == 0x04 || (iir & 0x0f) == 0x0c) {
			uart_last_byte = inb(COM1);
			uart_got_byte = true;
		}
		uart_irqs++;
	} else {
		stray_irqs++;
	}
	lapic_write(0xb0, 0); /* EOI */
}

void interrupts_init(void)
{
	for (uint32_t i = 0; i < isr_count; i++) {
		uint64_t a = isr_stubs[i];
		idt[isr_vectors[i]] = (struct idt_entry){
			.off_lo = (uint16_t)a, .sel = 0x10, .attr = 0x8e,
			.off_mid = (uint16_t)(a >> 16), .off_hi = (uint32_t)(a >> 32),
		};
	}
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} ptr = { sizeof(idt) - 1, (uint64_t)idt };
	__asm__ volatile("lidt %0" : : "m"(ptr));
	lapic_write(0x80, 0);     /* TPR: accept everything */
	lapic_write(0xf0, 0x1ff); /* enabled, spurious vector 255 */
}

/* Wait until *flag becomes nonzero, at most `seconds` RTC ticks. */
static bool wait_for(volatile unsigned *counter, unsigned target, unsigned seconds)
{
	unsigned last = rtc_seconds(), ticks = 0;
	while (*counter < target) {
		unsigned now = rtc_seconds();
		if (now != last) {
			last = now;
			if (++ticks > seconds)
				return false;
		}
		cpu_relax();
	}
	return true;
}

void check_smp(void)
{
	unsigned cpus = (unsigned)param_u64("keeltest.cpus", 1);
	uint8_t bsp = (uint8_t)(lapic_read(0x20) >> 24);
	check(bsp == 0, "smp-bsp-apic-id", "%u", bsp);
	if (acpi.nr_lapics < 2)
		return;
	uint8_t *tramp = (uint8_t *)0x8000;
	memcpy(tramp, ap_trampoline, (size_t)(ap_trampoline_end - ap_trampoline));
	volatile uint16_t *count = (volatile uint16_t *)(tramp + ap_count_off);
	volatile uint8_t *seen = tramp + ap_seen_off;
	for (unsigned i = 0; i < acpi.nr_lapics; i++) {
		uint8_t id = acpi.apic_ids[i];
		if (id == bsp)
			continue;
		lapic_write(0x310, (uint32_t)id << 24);
		lapic_write(0x300, 0x4500); /* INIT, level assert */
		for (int s = 0; s < 2; s++) {
			lapic_write(0x310, (uint32_t)id << 24);
			lapic_write(0x300, 0x4600 | (0x8000 >> 12)); /* STARTUP at 0x8000 */
		}
	}
	unsigned want = acpi.nr_lapics - 1;
	unsigned started = 0;
	unsigned last = rtc_seconds(), ticks = 0;
	while ((started = *count) < want && ticks <= 3) {
		unsigned now = rtc_seconds();
		if (now != last) {
			last = now;
			ticks++;
		}
		cpu_relax();
	}
	bool all = true;
	for (unsigned i = 0; i < acpi.nr_lapics; i++)
		if (acpi.apic_ids[i] != bsp && !seen[acpi.apic_ids[i]])
			all = false;
	check(started == want && all && cpus == acpi.nr_lapics, "smp-all-cpus-started", "%u of %u APs", started,
	      want);
}

void check_uart_irq(void)
{
	outb(COM1 + 1, 0x00);
	outb(COM1 + 4, 0x0b); /* DTR, RTS, OUT2 */
	(void)inb(COM1 + 2);
	ioapic_route(4, UART_VECTOR, 0, false);
	__asm__ volatile("sti");

	uart_irqs = 0;
	outb(COM1 + 1, 0x02); /* THR-empty interrupt: fires at once, THR is empty */
	bool fired = wait_for(&uart_irqs, 1, 2);
	outb(COM1 + 1, 0x00);
	check(fired && (uart_last_iir & 0x0f) == 0x02, "uart-irq-thre", "%u interrupts, IIR %x", uart_irqs,
	      uart_last_iir);

	/* Loopback: a transmitted byte arrives in the receiver and interrupts. */
	outb(COM1 + 4, 0x1b); /* + LOOP */
	while (inb(COM1 + 5) & 0x01)
		(void)inb(COM1);
	uart_irqs = 0;
	uart_got_byte = false;
	outb(COM1 + 1, 0x01); /* received-data interrupt */
	outb(COM1, 0x5a);
	fired = wait_for(&uart_irqs, 1, 2);
	outb(COM1 + 1, 0x00);
	outb(COM1 + 4, 0x03);
	__asm__ volatile("cli");
	ioapic_route(4, UART_VECTOR, 0, true);
	check(fired && uart_got_byte && uart_last_byte == 0x5a, "uart-irq-receive", "IIR %x byte %x",
	      uart_last_iir, uart_last_byte);
	check(stray_irqs == 0, "no-stray-interrupts", "%u", stray_irqs);
}
