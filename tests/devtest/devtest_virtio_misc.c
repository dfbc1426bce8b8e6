// SPDX-License-Identifier: MIT
/*
 * virtio-rng and virtio-console through keel-devtest, as the lab's Linux
 * guest uses them: entropy fills the driver's buffers; console output
 * reaches the --virtio-console file.  Both devices side by side on one bus.
 */
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
	RUN("devtest", console_output_reaches_the_file);
	unlink(hvc);
	if (!unit_failed_tests)
		unlink(errlog);
	UNIT_EXIT();
}
