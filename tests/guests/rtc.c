/* SPDX-License-Identifier: MIT */
/* CMOS access and the RTC check. */
#include "guest.h"

uint8_t cmos_read(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

void cmos_write(uint8_t reg, uint8_t v)
{
	outb(0x70, reg);
	outb(0x71, v);
}

static unsigned decode(uint8_t v, bool binary)
{
	return binary ? v : (unsigned)((v >> 4) * 10 + (v & 0xf));
}

unsigned rtc_seconds(void)
{
	return decode(cmos_read(0), cmos_read(0x0b) & 0x04);
}

struct rtc_time {
	unsigned sec, min, hour, day, month, year;
};

static void read_time(struct rtc_time *t)
{
	while (cmos_read(0x0a) & 0x80) /* update in progress */
		cpu_relax();
	bool bin = cmos_read(0x0b) & 0x04;
	t->sec = decode(cmos_read(0x00), bin);
	t->min = decode(cmos_read(0x02), bin);
	t->hour = decode(cmos_read(0x04) & 0x7f, bin);
	t->day = decode(cmos_read(0x07), bin);
	t->month = decode(cmos_read(0x08), bin);
	t->year = decode(cmos_read(0x32), bin) * 100 + decode(cmos_read(0x09), bin);
}

static unsigned days_in_month(unsigned m, unsigned y)
{
	static const unsigned d[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : d[m - 1];
}

void check_rtc(void)
{
	struct rtc_time t;
	read_time(&t);
	print("  rtc: %u-%u-%u %u:%u:%u UTC\n", t.year, t.month, t.day, t.hour, t.min, t.sec);
	bool sane = t.sec < 60 && t.min < 60 && t.hour < 24 && t.month >= 1 && t.month <= 12 && t.day >= 1 &&
		    t.day <= days_in_month(t.month, t.year);
	check(sane, "rtc-valid", "");
	check(cmos_read(0x0d) & 0x80, "rtc-battery", "register D %x", cmos_read(0x0d));
	uint64_t want = param_u64("keeltest.date", 0);
	if (want && sane) {
		unsigned y = (unsigned)(want / 10000), m = (unsigned)(want / 100 % 100), d = (unsigned)(want % 100);
		/* The host read the date just before starting us: allow midnight in between. */
		unsigned nd = d + 1, nm = m, ny = y;
		if (nd > days_in_month(m, y)) {
			nd = 1;
			if (++nm > 12) {
				nm = 1;
				ny++;
			}
		}
		bool same = t.year == y && t.month == m && t.day == d;
		bool next = t.year == ny && t.month == nm && t.day == nd;
		check(same || next, "rtc-date", "%u-%u-%u, host said %lu", t.year, t.month, t.day, want);
	}
	/* Binary mode must give the same time. */
	uint8_t b = cmos_read(0x0b);
	cmos_write(0x0b, b | 0x04);
	struct rtc_time tb;
	read_time(&tb);
	cmos_write(0x0b, b);
	check(tb.year == t.year && tb.month == t.month && tb.day == t.day && tb.hour == t.hour, "rtc-binary-mode",
	      "%u-%u-%u %u h", tb.year, tb.month, tb.day, tb.hour);
}
