// SPDX-License-Identifier: MIT
/*
 * The PC platform through keel-devtest: PCI configuration by both
 * mechanisms, the CMOS RTC and the ACPI PM timer on the virtual clock
 * (exact, since time moves only when the test moves it), the UART's
 * transmitter and its interrupt line, and what the guest's power-off, reset
 * and debug-exit writes ask of keel.
 */
#include <linux/pci_regs.h>

#include "../unit/unit.h"
#include "dtclient.h"

static struct dtc d;
static char errlog[64], serial[64];

static int start(const char *const *extra)
{
	const char *opts[24] = { "--memory", "32M", "--serial", NULL, "--rng", "--debug-exit" };
	char s[96];
	snprintf(s, sizeof(s), "file:%s", serial);
	opts[3] = s;
	unsigned n = 6;
	for (unsigned i = 0; extra && extra[i] && n < 23; i++)
		opts[n++] = extra[i];
	return dtc_start(&d, errlog, opts);
}

/* The stop keel-devtest's info reports ("none:0", "poweroff:0", "debug-exit:33", ...). */
static const char *stop(void)
{
	const char *s = dtc_cmd(&d, "info");
	s = s ? strstr(s, "stop=") : NULL;
	return s ? s + 5 : "?";
}

static void pci_both_mechanisms_agree(void)
{
	CHECK_EQ(start(NULL), 0);
	unsigned found = 0;
	for (unsigned dev = 0; dev < 32; dev++) {
		dtc_out(&d, 4, 0xcf8, 0x80000000u | dev << 11);
		uint32_t by_port = (uint32_t)dtc_in(&d, 4, 0xcfc);
		CHECK_EQ(by_port, dtc_cfg_read(&d, dev, PCI_VENDOR_ID, 4));
		found += by_port != 0xffffffffu;
	}
	CHECK_EQ(found, 3); /* the host bridge, the ISA bridge and virtio-rng */
	CHECK_EQ(dtc_cfg_read(&d, 0, PCI_VENDOR_ID, 2), 0x8086);
	CHECK_EQ(dtc_cfg_read(&d, 0, PCI_CLASS_DEVICE, 2), 0x0600); /* host bridge */
	int rng = dtc_pci_find(&d, 0x1af4, 0x1044, 0);
	CHECK(rng > 0);
	/* Bytes and words of a dword by the port mechanism, as a BIOS reads them. */
	dtc_out(&d, 4, 0xcf8, 0x80000000u | (unsigned)rng << 11);
	CHECK_EQ(dtc_in(&d, 2, 0xcfe), 0x1044);
	CHECK_EQ(dtc_in(&d, 1, 0xcfc), 0xf4);
	/* Config address register reads back; disabled, data reads all ones. */
	CHECK_EQ(dtc_in(&d, 4, 0xcf8), 0x80000000u | (unsigned)rng << 11);
	dtc_out(&d, 4, 0xcf8, (unsigned)rng << 11);
	CHECK_EQ(dtc_in(&d, 4, 0xcfc), 0xffffffffu);
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
}

static uint8_t cmos(unsigned reg)
{
	dtc_out(&d, 1, 0x70, reg);
	return (uint8_t)dtc_in(&d, 1, 0x71);
}

static void set_cmos(unsigned reg, uint8_t v)
{
	dtc_out(&d, 1, 0x70, reg);
	dtc_out(&d, 1, 0x71, v);
}

/* The RTC runs on the virtual clock: the epoch is exact, time moves with clock_step, periodic interrupts come. */
static void rtc_on_the_virtual_clock(void)
{
	CHECK_EQ(start(NULL), 0);
	/* 2026-01-01 00:00:00 UTC, BCD, 24-hour (as keel sets register B). */
	CHECK_EQ(cmos(9), 0x26);
	CHECK_EQ(cmos(8), 0x01);
	CHECK_EQ(cmos(7), 0x01);
	CHECK_EQ(cmos(4), 0x00);
	CHECK_EQ(cmos(0), 0x00);
	CHECK_EQ(cmos(6), 5); /* a Thursday: 1 = Sunday */
	dtc_clock_step(&d, 3661ull * 1000000000ull);
	CHECK_EQ(cmos(4), 0x01);
	CHECK_EQ(cmos(2), 0x01);
	CHECK_EQ(cmos(0), 0x01);
	/* Periodic interrupts at 1024 Hz: none until time moves, then one per period, acknowledged by reading C. */
	uint64_t raises0, raises;
	CHECK(!dtc_irq(&d, 8, &raises0));
	set_cmos(0x0a, 0x26);
	set_cmos(0x0b, (uint8_t)(cmos(0x0b) | 0x40));
	CHECK(!dtc_irq(&d, 8, &raises));
	CHECK_EQ(raises, raises0);
	dtc_clock_step(&d, 1000000); /* 1 ms: one period of 976.5 us has passed */
	CHECK(dtc_irq(&d, 8, &raises));
	CHECK_EQ(raises, raises0 + 1);
	CHECK_EQ(cmos(0x0c) & 0xc0, 0xc0); /* IRQF | PF */
	CHECK(!dtc_irq(&d, 8, NULL));
	CHECK_EQ(cmos(0x0c), 0);
	dtc_clock_step(&d, 1000000);
	CHECK(dtc_irq(&d, 8, &raises));
	CHECK_EQ(raises, raises0 + 2);
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
}

/* The PM timer counts 3.579545 MHz ticks of the virtual clock, exactly. */
static void pm_timer_counts_the_clock(void)
{
	CHECK_EQ(start(NULL), 0);
	uint64_t t0 = dtc_in(&d, 4, 0x608);
	CHECK_EQ(dtc_in(&d, 4, 0x608), t0);
	dtc_clock_step(&d, 1000000000ull);
	CHECK_EQ(dtc_in(&d, 4, 0x608), t0 + 3579545);
	dtc_clock_step(&d, 1000);
	CHECK_EQ(dtc_in(&d, 4, 0x608), t0 + 3579548);
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
}

/* COM1: bytes to the serial file; the THR-empty interrupt on IRQ 4 with OUT2, cleared by reading IIR. */
static void uart_transmits_and_interrupts(void)
{
	CHECK_EQ(start(NULL), 0);
	uint64_t r0, r;
	CHECK(!dtc_irq(&d, 4, &r0));
	dtc_out(&d, 1, 0x3fc, 0x08); /* MCR: OUT2 gates the interrupt */
	dtc_out(&d, 1, 0x3f9, 0x02); /* IER: THR empty */
	CHECK(dtc_irq(&d, 4, &r));
	CHECK_EQ(r, r0 + 1);
	CHECK_EQ(dtc_in(&d, 1, 0x3fa) & 0x0f, 0x02); /* IIR: THR empty, and reading it clears it */
	CHECK(!dtc_irq(&d, 4, NULL));
	const char *msg = "keel devtest\n";
	for (const char *p = msg; *p; p++) {
		CHECK(dtc_in(&d, 1, 0x3fd) & 0x20); /* LSR: THR empty */
		dtc_out(&d, 1, 0x3f8, (uint8_t)*p);
	}
	CHECK(dtc_irq(&d, 4, &r)); /* empty again after the last byte */
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
	char got[64] = { 0 };
	FILE *f = fopen(serial, "r");
	CHECK(f && fread(got, 1, sizeof(got) - 1, f) == strlen(msg));
	if (f)
		fclose(f);
	CHECK(!strcmp(got, msg));
}

/* What the guest asks for: ACPI S5, a reset through 0xcf9, the debug-exit port. */
static void poweroff_reset_debug_exit(void)
{
	CHECK_EQ(start(NULL), 0);
	CHECK(!strcmp(stop(), "none:0"));
	dtc_out(&d, 1, 0xf4, 0x10);
	CHECK(!strcmp(stop(), "debug-exit:33"));
	CHECK_EQ(dtc_stop(&d), 0);

	CHECK_EQ(start(NULL), 0);
	dtc_out(&d, 2, 0x604, 0x2000 | 5 << 10); /* SLP_EN, SLP_TYP 5 (\_S5) */
	CHECK(!strcmp(stop(), "poweroff:0"));
	CHECK_EQ(dtc_stop(&d), 0);

	CHECK_EQ(start(NULL), 0);
	dtc_out(&d, 1, 0xcf9, 0x06); /* SYS_RST | RST_CPU */
	CHECK(!strcmp(stop(), "reset:0"));
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
}

/* A malformed conversation gets ERR lines and changes nothing; keel-devtest refuses --kvm-fd. */
static void hostile_test_program(void)
{
	CHECK_EQ(start(NULL), 0);
	CHECK(dtc_cmd_err(&d, "outb 0x70") != NULL);
	CHECK(dtc_cmd_err(&d, "outb 0x10000 1") != NULL);
	CHECK(dtc_cmd_err(&d, "writeb 0x1000 0x100") != NULL);
	CHECK(dtc_cmd_err(&d, "read 0x1000 0") != NULL);
	CHECK(dtc_cmd_err(&d, "read 0xfffffffffffffff0 32") != NULL);
	CHECK(dtc_cmd_err(&d, "write 0x1000 2 zz00") != NULL);
	CHECK(dtc_cmd_err(&d, "write 0x1000 2 00") != NULL);
	CHECK(dtc_cmd_err(&d, "clock_set 0") == NULL); /* the clock is at 0: allowed */
	dtc_clock_step(&d, 10);
	CHECK(dtc_cmd_err(&d, "clock_set 5") != NULL);
	CHECK(dtc_cmd_err(&d, "msi_wait 600001") != NULL);
	CHECK(dtc_cmd_err(&d, "irq 24") != NULL);
	CHECK(dtc_cmd_err(&d, "frobnicate") != NULL);
	CHECK(dtc_cmd_err(&d, "") != NULL);
	CHECK_EQ(dtc_read(&d, 1, 0x1000), 0);
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
	const char *kvm[] = { "--kvm-fd", "0", NULL };
	CHECK_EQ(start(kvm), 0);
	CHECK_EQ(dtc_stop(&d), 2);
}

int main(void)
{
	snprintf(errlog, sizeof(errlog), "/tmp/keel-devtest-pf-%d.log", (int)getpid());
	snprintf(serial, sizeof(serial), "/tmp/keel-devtest-pf-%d.serial", (int)getpid());
	RUN("devtest", pci_both_mechanisms_agree);
	RUN("devtest", rtc_on_the_virtual_clock);
	RUN("devtest", pm_timer_counts_the_clock);
	RUN("devtest", uart_transmits_and_interrupts);
	RUN("devtest", poweroff_reset_debug_exit);
	RUN("devtest", hostile_test_program);
	unlink(serial);
	if (!unit_failed_tests)
		unlink(errlog);
	UNIT_EXIT();
}
