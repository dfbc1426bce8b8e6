// SPDX-License-Identifier: MIT
/*
 * virtio-rng and virtio-console through keel-devtest, as the lab's Linux
 * guest uses them: entropy fills the driver's buffers; console output
 * reaches the --virtio-console file.  Both devices side by side on one bus.
 */
#include <linux/pci_regs.h>
#include <linux/virtio_ids.h>

#include "../unit/unit.h"
#include "dtvirtio.h"

#define BUF 0x1000000ull

static struct dtc d;
static char errlog[64], hvc[64];

static int start(void)
{
	const char *opts[] = { "--memory", "32M", "--serial", "none", "--rng", "--virtio-console", hvc, NULL };
	return dtc_start(&d, errlog, opts);
}

static void rng_fills_buffers(void)
{
	CHECK_EQ(start(), 0);
	struct dtv v;
	CHECK_EQ(dtv_open(&v, &d, VIRTIO_ID_RNG, 0, 0, 64), 0);
	static uint8_t b[2][4096];
	for (unsigned k = 0; k < 2; k++) {
		dtc_memset(&d, BUF, 0, sizeof(b[k]));
		struct dtv_buf buf = { BUF, sizeof(b[k]), true };
		uint16_t id = dtv_submit(&v, 0, &buf, 1), got = 0xffff;
		uint32_t len = 0;
		CHECK(dtv_wait(&v, 0, 10000, &got, &len, NULL));
		dtv_used_skip(&v, 0, 1);
		CHECK_EQ(got, id);
		CHECK(len > 0 && len <= sizeof(b[k]));
		dtc_memread(&d, BUF, b[k], sizeof(b[k]));
		unsigned zeros = 0;
		for (unsigned i = 0; i < len; i++)
			zeros += !b[k][i];
		CHECK(zeros < len / 64); /* random bytes: about 1 in 256 is zero */
	}
	CHECK(memcmp(b[0], b[1], 64) != 0);
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
}

/*
 * Without MSI-X a virtio device interrupts through INTA#: routed by the ISA
 * bridge's PIRQ registers (as SeaBIOS programs them) to an ISA IRQ, high
 * while the ISR has a bit, low once the driver reads the ISR.
 */
static void rng_interrupts_by_intx(void)
{
	CHECK_EQ(start(), 0);
	struct dtv v;
	CHECK_EQ(dtv_open(&v, &d, VIRTIO_ID_RNG, 0, 0, 64), 0);
	unsigned dev = (unsigned)v.dev;
	CHECK_EQ(dtc_cfg_read(&d, dev, PCI_INTERRUPT_PIN, 1), 1);
	dtc_cfg_write(&d, dev, v.msix_cap + PCI_MSIX_FLAGS, 2, 0); /* MSI-X off */
	dtc_cfg_write(&d, 1, 0x60, 4, 0x0b0b0a0a);                 /* PIRQ A, B: IRQ 10; C, D: IRQ 11 */
	unsigned irq = ((dev + 1 - 2) & 3) < 2 ? 10 : 11;
	uint64_t raises0 = 0, raises = 0;
	CHECK(!dtc_irq(&d, irq, &raises0));
	struct dtv_buf buf = { BUF, 64, true };
	uint16_t id = dtv_submit(&v, 0, &buf, 1), got = 0xffff;
	uint32_t len = 0;
	bool used = false;
	for (unsigned i = 0; i < 10000 && !used; i++) { /* up to 10 s: the queue thread answers */
		used = dtv_used(&v, 0, &got, &len);
		if (!used)
			usleep(1000);
	}
	CHECK(used && got == id && len == 64);
	CHECK(dtc_irq(&d, irq, &raises));
	CHECK_EQ(raises, raises0 + 1);
	CHECK(dtc_cfg_read(&d, dev, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
	uint64_t addr;
	uint32_t data;
	CHECK(!dtc_msi(&d, &addr, &data)); /* no message: MSI-X is off */
	CHECK_EQ(dtc_read(&d, 1, v.isr), 1);  /* a queue interrupt; reading clears it */
	CHECK(!dtc_irq(&d, irq, NULL));
	CHECK_EQ(dtc_read(&d, 1, v.isr), 0);
	/* INTx disable in COMMAND masks the pin. */
	dtc_cfg_write(&d, dev, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	id = dtv_submit(&v, 0, &buf, 1);
	used = false;
	for (unsigned i = 0; i < 10000 && !used; i++) {
		used = dtv_used(&v, 0, &got, &len);
		if (!used)
			usleep(1000);
	}
	CHECK(used && got == id);
	CHECK(!dtc_irq(&d, irq, NULL));
	dtc_cfg_write(&d, dev, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	CHECK(dtc_irq(&d, irq, NULL));
	CHECK_EQ(dtc_read(&d, 1, v.isr), 1);
	CHECK(!dtc_irq(&d, irq, NULL));
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
}

static void console_output_reaches_the_file(void)
{
	CHECK_EQ(start(), 0);
	struct dtv v;
	CHECK_EQ(dtv_open(&v, &d, VIRTIO_ID_CONSOLE, 0, 0, 64), 0);
	CHECK(v.nq >= 2);
	const char *lines[] = { "hello from a guest without a CPU\n", "second line\n" };
	for (unsigned k = 0; k < 2; k++) {
		dtc_memwrite(&d, BUF + 0x1000 * k, lines[k], strlen(lines[k]));
		struct dtv_buf buf = { BUF + 0x1000 * k, (uint32_t)strlen(lines[k]), false };
		uint16_t id = dtv_submit(&v, 1, &buf, 1), got = 0xffff; /* transmitq0 */
		uint32_t len = 0;
		CHECK(dtv_wait(&v, 1, 10000, &got, &len, NULL));
		dtv_used_skip(&v, 1, 1);
		CHECK_EQ(got, id);
	}
	CHECK_EQ(d.errors, 0);
	CHECK_EQ(dtc_stop(&d), 0);
	char out[128] = { 0 };
	FILE *f = fopen(hvc, "r");
	CHECK(f && fread(out, 1, sizeof(out) - 1, f) > 0);
	if (f)
		fclose(f);
	CHECK(!strcmp(out, "hello from a guest without a CPU\nsecond line\n"));
}

int main(void)
{
	snprintf(errlog, sizeof(errlog), "/tmp/keel-devtest-misc-%d.log", (int)getpid());
	snprintf(hvc, sizeof(hvc), "/tmp/keel-devtest-misc-%d.hvc", (int)getpid());
	RUN("devtest", rng_fills_buffers);
	RUN("devtest", rng_interrupts_by_intx);
	RUN("devtest", console_output_reaches_the_file);
	unlink(hvc);
	if (!unit_failed_tests)
		unlink(errlog);
	UNIT_EXIT();
}
