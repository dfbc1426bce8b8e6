// SPDX-License-Identifier: MIT
/* CMOS RTC: time formats, setting the clock, calendar arithmetic, flags, battery-backed RAM. */
#include <time.h>

#include "vmm/device.h"
#include "fake.h"
#include "unit.h"

static struct vm *vm;
static void *rtc;

static uint8_t cmos(uint8_t reg)
{
	rtc_device.pio[0].ops.write(rtc, 0, 1, reg);
	return (uint8_t)rtc_device.pio[0].ops.read(rtc, 1, 1);
}

static void cmos_set(uint8_t reg, uint8_t v)
{
	rtc_device.pio[0].ops.write(rtc, 0, 1, reg);
	rtc_device.pio[0].ops.write(rtc, 1, 1, v);
}

static unsigned bcd(uint8_t v) { return (v >> 4) * 10 + (v & 0xf); }
static uint8_t to_bcd(unsigned v) { return (uint8_t)(((v / 10) << 4) | (v % 10)); }

static void setup(void)
{
	vm = fake_vm(64 << 20);
	rtc_device.create(vm, &rtc);
}

static void teardown(void)
{
	rtc_device.destroy(rtc);
	fake_vm_free(vm);
}

static void reads_host_utc_in_bcd(void)
{
	setup();
	CHECK_EQ(cmos(0x0b), 0x02); /* 24 h, BCD */
	CHECK_EQ(cmos(0x0d), 0x80);
	CHECK_EQ(cmos(0x0a) & 0x7f, 0x26);
	time_t before = time(NULL);
	unsigned s = bcd(cmos(0)), m = bcd(cmos(2)), h = bcd(cmos(4));
	unsigned d = bcd(cmos(7)), mo = bcd(cmos(8)), y = bcd(cmos(0x32)) * 100 + bcd(cmos(9));
	time_t after = time(NULL);
	struct tm tm = { .tm_sec = (int)s, .tm_min = (int)m, .tm_hour = (int)h, .tm_mday = (int)d,
			 .tm_mon = (int)mo - 1, .tm_year = (int)y - 1900 };
	time_t t = timegm(&tm);
	CHECK(t >= before - 1 && t <= after + 1);
	teardown();
}

static void binary_and_12_hour_modes(void)
{
	setup();
	cmos_set(0x0b, 0x80 | 0x02); /* SET: freeze */
	cmos_set(0x04, 0x15);        /* 15:00 BCD */
	cmos_set(0x0b, 0x02);
	CHECK_EQ(cmos(0x04), 0x15);
	cmos_set(0x0b, 0x06); /* binary */
	CHECK_EQ(cmos(0x04), 15);
	cmos_set(0x0b, 0x04); /* binary, 12 hour */
	CHECK_EQ(cmos(0x04), 0x80 | 3);
	cmos_set(0x0b, 0x00); /* BCD, 12 hour */
	CHECK_EQ(cmos(0x04), 0x83);
	teardown();
}

static void set_date(unsigned y, unsigned mo, unsigned d, unsigned h, unsigned mi, unsigned s)
{
	cmos_set(0x0b, 0x82);
	cmos_set(0x32, to_bcd(y / 100));
	cmos_set(0x09, to_bcd(y % 100));
	cmos_set(0x08, to_bcd(mo));
	cmos_set(0x07, to_bcd(d));
	cmos_set(0x04, to_bcd(h));
	cmos_set(0x02, to_bcd(mi));
	cmos_set(0x00, to_bcd(s));
	cmos_set(0x0b, 0x02);
}

static void calendar_arithmetic(void)
{
	setup();
	/* Day of week (register 6, Sunday = 1) follows from the date the guest set. */
	static const struct {
		unsigned y, m, d, wday;
	} days[] = {
		{ 2026, 11, 22, 1 }, { 2000, 2, 29, 3 }, { 1999, 12, 31, 6 }, { 2100, 3, 1, 2 },
		{ 2024, 2, 29, 5 },  { 1970, 1, 1, 5 },  { 2038, 1, 19, 3 },  { 2400, 12, 31, 1 },
	};
	for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++) {
		set_date(days[i].y, days[i].m, days[i].d, 12, 0, 0);
		CHECK_EQ(bcd(cmos(6)), days[i].wday);
		CHECK_EQ(bcd(cmos(7)), days[i].d);
		CHECK_EQ(bcd(cmos(8)), days[i].m);
		CHECK_EQ(bcd(cmos(0x32)) * 100 + bcd(cmos(9)), days[i].y);
	}
	/* The clock runs on from what was set: across a century without a leap day. */
	set_date(2099, 12, 31, 23, 59, 59);
	struct timespec ts = { 1, 300000000 };
	nanosleep(&ts, NULL);
	CHECK_EQ(bcd(cmos(0x32)) * 100 + bcd(cmos(9)), 2100);
	CHECK_EQ(bcd(cmos(8)), 1);
	CHECK_EQ(bcd(cmos(7)), 1);
	CHECK_EQ(bcd(cmos(4)), 0);
	teardown();
}

static void nonsense_date_is_ignored(void)
{
	setup();
	unsigned year = bcd(cmos(0x32)) * 100 + bcd(cmos(9));
	set_date(2030, 13, 40, 1, 2, 3);
	CHECK_EQ(bcd(cmos(0x32)) * 100 + bcd(cmos(9)), year);
	teardown();
}

static void update_interrupt_flags(void)
{
	setup();
	CHECK_EQ(cmos(0x0c), 0);
	cmos_set(0x0b, 0x12); /* update-ended interrupts */
	struct timespec ts = { 1, 100000000 };
	nanosleep(&ts, NULL);
	uint8_t c = cmos(0x0c);
	CHECK_EQ(c & 0x90, 0x90); /* IRQF | UF */
	CHECK_EQ(cmos(0x0c) & 0x90, 0); /* cleared by the read */
	cmos_set(0x0b, 0x02);
	teardown();
}

static void cmos_ram_is_battery_backed(void)
{
	setup();
	cmos_set(0x40, 0x5a);
	cmos_set(0x7f, 0xa5);
	set_date(2031, 5, 6, 7, 8, 9);
	CHECK_EQ(cmos(0x40), 0x5a);
	rtc_device.destroy(rtc); /* a guest reboot */
	rtc_device.create(vm, &rtc);
	CHECK_EQ(cmos(0x40), 0x5a);
	CHECK_EQ(cmos(0x7f), 0xa5);
	CHECK_EQ(bcd(cmos(9)), 31);
	CHECK_EQ(bcd(cmos(8)), 5);
	CHECK_EQ(cmos(0x5f), 0); /* firmware bytes are refreshed: one CPU */
	CHECK_EQ(cmos(0x00) & 0x80, 0);
	rtc_device.pio[0].ops.write(rtc, 0, 1, 0xff); /* NMI-mask bit and index 0x7f */
	CHECK_EQ(rtc_device.pio[0].ops.read(rtc, 1, 1), 0xa5);
	CHECK_EQ(rtc_device.pio[0].ops.read(rtc, 0, 1), 0xff); /* index is write-only */
	teardown();
}

static void firmware_memory_bytes(void)
{
	setup();
	/* 64 MiB: 63 MiB above 1 MiB in KiB, 48 MiB above 16 MiB in 64 KiB units. */
	CHECK_EQ(cmos(0x17) | cmos(0x18) << 8, 63 * 1024);
	CHECK_EQ(cmos(0x34) | cmos(0x35) << 8, 48 * 16);
	CHECK_EQ(cmos(0x5b) | cmos(0x5c) << 8 | cmos(0x5d) << 16, 0);
	teardown();
}

int main(void)
{
	RUN("rtc", reads_host_utc_in_bcd);
	RUN("rtc", binary_and_12_hour_modes);
	RUN("rtc", calendar_arithmetic);
	RUN("rtc", nonsense_date_is_ignored);
	RUN("rtc", update_interrupt_flags);
	RUN("rtc", cmos_ram_is_battery_backed);
	RUN("rtc", firmware_memory_bytes);
	UNIT_EXIT();
}
