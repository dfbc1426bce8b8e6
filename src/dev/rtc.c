// SPDX-License-Identifier: MIT
/*
 * MC146818-compatible CMOS RTC (ports 0x70/0x71, IRQ 8) with 128 bytes of
 * CMOS RAM.  The clock runs in UTC from the host's real-time clock plus an
 * offset the guest can change by writing the time registers.  Periodic,
 * alarm and update-ended interrupts come from a timer thread that exists
 * once the guest has enabled one of them (in device tests, with a virtual
 * clock, from the clock's moves instead).  The firmware-visible
 * memory size and CPU count bytes are filled in at creation.  CMOS RAM
 * and the clock offset are battery-backed: they survive guest reboots.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm/device.h"
#include "vmm/layout.h"
#include "base/util.h"
#include "vmm/vm.h"

enum {
	RTC_SEC = 0x00, RTC_SEC_ALARM = 0x01, RTC_MIN = 0x02, RTC_MIN_ALARM = 0x03,
	RTC_HOUR = 0x04, RTC_HOUR_ALARM = 0x05, RTC_WDAY = 0x06, RTC_MDAY = 0x07,
	RTC_MONTH = 0x08, RTC_YEAR = 0x09, RTC_REG_A = 0x0a, RTC_REG_B = 0x0b,
	RTC_REG_C = 0x0c, RTC_REG_D = 0x0d, RTC_CENTURY = 0x32,
};

#define REG_A_UIP 0x80
#define REG_B_SET 0x80
#define REG_B_PIE 0x40
#define REG_B_AIE 0x20
#define REG_B_UIE 0x10
#define REG_B_BINARY 0x04
#define REG_B_24H 0x02
#define REG_C_IRQF 0x80
#define REG_C_PF 0x40
#define REG_C_AF 0x20
#define REG_C_UF 0x10
#define REG_D_VRT 0x80

#define UIP_WINDOW_NS 244000ull /* UIP is set this long before each update */
#define NS_PER_SEC 1000000000ull

struct rtc {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool thread_running, stopping;
	bool armed; /* an interrupt source was enabled: events run (thread, or the virtual clock's watcher) */
	struct vm *vm;
	uint8_t index;
	uint8_t cmos[128];
	int64_t offset_sec;    /* guest UTC seconds = host realtime seconds + offset */
	uint64_t next_periodic; /* monotonic deadline of the next periodic tick */
	int64_t last_second;   /* guest second of the last update-ended event */
	bool irq_level;
};

/* The guest's clock: whole seconds shifted by the offset, sub-second from the host (or the virtual clock). */
static int64_t guest_time(const struct rtc *r, uint64_t *nsec)
{
	int64_t sec;
	uint64_t ns;
	vm_clock_realtime(r->vm, &sec, &ns);
	if (nsec)
		*nsec = ns;
	return sec + r->offset_sec;
}

/* UTC calendar arithmetic (proleptic Gregorian), free of libc time zones. */
struct civil {
	int64_t year;
	unsigned month, day, hour, min, sec, wday; /* month 1-12, day 1-31, wday 0 = Sunday */
};

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static struct civil civil_from_seconds(int64_t t)
{
	struct civil c;
	int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
	int64_t secs = t - days * 86400;
	c.hour = (unsigned)(secs / 3600);
	c.min = (unsigned)(secs / 60 % 60);
	c.sec = (unsigned)(secs % 60);
	c.wday = (unsigned)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	c.day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	c.month = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	c.year = yoe + era * 400 + (c.month <= 2);
	return c;
}


static uint8_t to_reg(const struct rtc *r, unsigned v)
{
	return (r->cmos[RTC_REG_B] & REG_B_BINARY) ? (uint8_t)v : (uint8_t)(((v / 10) << 4) | (v % 10));
}

static unsigned from_reg(const struct rtc *r, uint8_t v)
{
	return (r->cmos[RTC_REG_B] & REG_B_BINARY) ? v : (unsigned)((v >> 4) * 10 + (v & 0xf));
}

static uint8_t hour_to_reg(const struct rtc *r, unsigned hour)
{
	if (r->cmos[RTC_REG_B] & REG_B_24H)
		return to_reg(r, hour);
	unsigned h12 = hour % 12 ? hour % 12 : 12;
	return (uint8_t)(to_reg(r, h12) | (hour >= 12 ? 0x80 : 0));
}

static unsigned hour_from_reg(const struct rtc *r, uint8_t v)
{
	if (r->cmos[RTC_REG_B] & REG_B_24H)
		return from_reg(r, v);
	unsigned h = from_reg(r, v & 0x7f) % 12;
	return (v & 0x80) ? h + 12 : h;
}

/* Refresh the time registers from the clock (unless the guest froze it with SET). */
static void latch_time(struct rtc *r)
{
	if (r->cmos[RTC_REG_B] & REG_B_SET)
		return;
	struct civil c = civil_from_seconds(guest_time(r, NULL));
	unsigned year = (unsigned)(c.year < 0 ? 0 : c.year > 9999 ? 9999 : c.year);
	r->cmos[RTC_SEC] = to_reg(r, c.sec);
	r->cmos[RTC_MIN] = to_reg(r, c.min);
	r->cmos[RTC_HOUR] = hour_to_reg(r, c.hour);
	r->cmos[RTC_WDAY] = to_reg(r, c.wday + 1);
	r->cmos[RTC_MDAY] = to_reg(r, c.day);
	r->cmos[RTC_MONTH] = to_reg(r, c.month);
	r->cmos[RTC_YEAR] = to_reg(r, year % 100);
	r->cmos[RTC_CENTURY] = to_reg(r, year / 100);
}

/* The guest wrote the time registers: make the clock follow them. */
static void adopt_registers(struct rtc *r)
{
	unsigned sec = from_reg(r, r->cmos[RTC_SEC]) % 60;
	unsigned min = from_reg(r, r->cmos[RTC_MIN]) % 60;
	unsigned hour = hour_from_reg(r, r->cmos[RTC_HOUR]) % 24;
	unsigned day = from_reg(r, r->cmos[RTC_MDAY]);
	unsigned month = from_reg(r, r->cmos[RTC_MONTH]);
	unsigned century = from_reg(r, r->cmos[RTC_CENTURY]);
	if (century < 19 || century > 99)
		century = 20;
	int64_t year = century * 100 + from_reg(r, r->cmos[RTC_YEAR]) % 100;
	if (day < 1 || day > 31 || month < 1 || month > 12)
		return; /* nonsense date: keep the old clock */
	int64_t t = days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec;
	r->offset_sec += t - guest_time(r, NULL);
}

static void update_irq(struct rtc *r)
{
	uint8_t b = r->cmos[RTC_REG_B], c = r->cmos[RTC_REG_C] & 0x70;
	bool level = (c & REG_C_PF && b & REG_B_PIE) || (c & REG_C_AF && b & REG_B_AIE) ||
		     (c & REG_C_UF && b & REG_B_UIE);
	if (level)
		r->cmos[RTC_REG_C] |= REG_C_IRQF;
	if (level != r->irq_level) {
		r->irq_level = level;
		vm_set_irq(r->vm, IRQ_RTC, level);
	}
}

static uint64_t periodic_ns(const struct rtc *r)
{
	unsigned rs = r->cmos[RTC_REG_A] & 0x0f;
	if (rs == 0)
		return 0;
	if (rs <= 2)
		rs += 7;
	return NS_PER_SEC / (32768u >> (rs - 1));
}

static bool alarm_matches(const struct rtc *r)
{
	static const uint8_t pairs[3][2] = { { RTC_SEC_ALARM, RTC_SEC }, { RTC_MIN_ALARM, RTC_MIN },
					     { RTC_HOUR_ALARM, RTC_HOUR } };
	for (int i = 0; i < 3; i++) {
		uint8_t alarm = r->cmos[pairs[i][0]];
		if ((alarm & 0xc0) != 0xc0 && alarm != r->cmos[pairs[i][1]])
			return false;
	}
	return true;
}

/* Run due events; returns the monotonic deadline of the next one (0: none). */
static uint64_t run_events(struct rtc *r, uint64_t now)
{
	uint8_t b = r->cmos[RTC_REG_B];
	uint64_t next = 0;
	uint64_t period = periodic_ns(r);
	if ((b & REG_B_PIE) && period) {
		if (now >= r->next_periodic) {
			r->cmos[RTC_REG_C] |= REG_C_PF;
			r->next_periodic = now + period;
		}
		next = r->next_periodic;
	}
	if ((b & (REG_B_UIE | REG_B_AIE)) && !(b & REG_B_SET)) {
		uint64_t nsec;
		int64_t sec = guest_time(r, &nsec);
		if (sec != r->last_second) {
			r->last_second = sec;
			latch_time(r);
			r->cmos[RTC_REG_C] |= REG_C_UF;
			if (alarm_matches(r))
				r->cmos[RTC_REG_C] |= REG_C_AF;
		}
		uint64_t to_next = NS_PER_SEC - nsec;
		if (!next || now + to_next < next)
			next = now + to_next;
	}
	update_irq(r);
	return next;
}

static void *rtc_thread(void *arg)
{
	struct rtc *r = arg;
	pthread_mutex_lock(&r->lock);
	while (!r->stopping) {
		uint64_t deadline = run_events(r, vm_clock_ns(r->vm));
		if (!deadline) {
			pthread_cond_wait(&r->cond, &r->lock);
			continue;
		}
		struct timespec ts = { (time_t)(deadline / NS_PER_SEC), (long)(deadline % NS_PER_SEC) };
		pthread_cond_timedwait(&r->cond, &r->lock, &ts);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Called with the lock held after register B or A changed. */
static void interrupts_changed(struct rtc *r)
{
	if (r->cmos[RTC_REG_B] & (REG_B_PIE | REG_B_AIE | REG_B_UIE)) {
		if (!r->armed) {
			r->armed = true;
			r->last_second = guest_time(r, NULL);
			r->next_periodic = vm_clock_ns(r->vm) + periodic_ns(r);
			/* A virtual clock runs the events itself when it moves (clock_moved()). */
			if (!r->vm->virtual_clock)
				r->thread_running = pthread_create(&r->thread, NULL, rtc_thread, r) == 0;
		}
		pthread_cond_signal(&r->cond);
	}
	update_irq(r);
}

static uint8_t read_reg(struct rtc *r, uint8_t idx)
{
	switch (idx) {
	case RTC_SEC: case RTC_MIN: case RTC_HOUR: case RTC_WDAY:
	case RTC_MDAY: case RTC_MONTH: case RTC_YEAR: case RTC_CENTURY:
		latch_time(r);
		return r->cmos[idx];
	case RTC_REG_A: {
		uint8_t a = r->cmos[RTC_REG_A] & (uint8_t)~REG_A_UIP;
		uint64_t into;
		(void)guest_time(r, &into);
		if (!(r->cmos[RTC_REG_B] & REG_B_SET) && into >= NS_PER_SEC - UIP_WINDOW_NS)
			a |= REG_A_UIP;
		return a;
	}
	case RTC_REG_C: {
		if (!r->thread_running)
			run_events(r, vm_clock_ns(r->vm));
		uint8_t c = r->cmos[RTC_REG_C];
		r->cmos[RTC_REG_C] = 0; /* reading C acknowledges every flag */
		update_irq(r);
		return c;
	}
	case RTC_REG_D:
		return REG_D_VRT;
	default:
		return r->cmos[idx];
	}
}

static void write_reg(struct rtc *r, uint8_t idx, uint8_t v)
{
	switch (idx) {
	case RTC_SEC: case RTC_MIN: case RTC_HOUR: case RTC_WDAY:
	case RTC_MDAY: case RTC_MONTH: case RTC_YEAR: case RTC_CENTURY:
		latch_time(r);
		r->cmos[idx] = v;
		if (!(r->cmos[RTC_REG_B] & REG_B_SET))
			adopt_registers(r);
		break;
	case RTC_REG_A:
		r->cmos[RTC_REG_A] = v & 0x7f; /* UIP is read-only */
		interrupts_changed(r);
		break;
	case RTC_REG_B: {
		bool was_set = r->cmos[RTC_REG_B] & REG_B_SET;
		if (!was_set && (v & REG_B_SET))
			latch_time(r); /* freeze the registers at the current time */
		r->cmos[RTC_REG_B] = v;
		if (was_set && !(v & REG_B_SET))
			adopt_registers(r);
		interrupts_changed(r);
		break;
	}
	case RTC_REG_C:
	case RTC_REG_D:
		break; /* read-only */
	default:
		r->cmos[idx] = v;
		break;
	}
}

static uint64_t cmos_read(void *opaque, uint64_t off, unsigned size)
{
	struct rtc *r = opaque;
	(void)size;
	if (off == 0)
		return 0xff; /* the index register is write-only */
	pthread_mutex_lock(&r->lock);
	uint8_t v = read_reg(r, r->index);
	pthread_mutex_unlock(&r->lock);
	return v;
}

static void cmos_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct rtc *r = opaque;
	(void)size;
	pthread_mutex_lock(&r->lock);
	if (off == 0)
		r->index = value & 0x7f; /* bit 7 masks NMIs; KVM owns NMI delivery */
	else
		write_reg(r, r->index, (uint8_t)value);
	pthread_mutex_unlock(&r->lock);
}

/* Memory size and CPU count where PC firmware (SeaBIOS) looks for them. */
static void fill_firmware_bytes(struct rtc *r, const struct vm *vm)
{
	uint64_t low = gm_lowmem_end(&vm->mem);
	uint64_t high = vm->mem.nr_regions > 1 ? vm->mem.regions[1].len : 0;
	uint64_t ext_kb = low > MiB ? MIN((low - MiB) / KiB, 0xffffu) : 0;
	uint64_t above16 = low > 16 * MiB ? MIN((low - 16 * MiB) >> 16, 0xffffu) : 0;
	uint64_t above4g = high >> 16;
	r->cmos[0x15] = 0x80; /* 640 KiB base memory */
	r->cmos[0x16] = 0x02;
	r->cmos[0x17] = r->cmos[0x30] = (uint8_t)ext_kb;
	r->cmos[0x18] = r->cmos[0x31] = (uint8_t)(ext_kb >> 8);
	r->cmos[0x34] = (uint8_t)above16;
	r->cmos[0x35] = (uint8_t)(above16 >> 8);
	r->cmos[0x5b] = (uint8_t)above4g;
	r->cmos[0x5c] = (uint8_t)(above4g >> 8);
	r->cmos[0x5d] = (uint8_t)(above4g >> 16);
	r->cmos[0x5f] = (uint8_t)(vm->nr_vcpus - 1);
	/*
	 * Boot order for devices without a bootindex (QEMU's -boot order): a
	 * nibble per choice, first in the low nibble of 0x3d, third in the high
	 * nibble of 0x38; 2 disk, 3 CD-ROM, 4 network.  0x38 bit 0: no floppy
	 * boot-signature check.  Default "cdn".
	 */
	const char *order = vm->cfg && vm->cfg->boot_order[0] ? vm->cfg->boot_order : "cdn";
	unsigned seq = 0;
	for (unsigned i = 0; i < 3 && order[i]; i++)
		seq |= (unsigned)(order[i] == 'c' ? 2 : order[i] == 'd' ? 3 : 4) << (4 * i);
	r->cmos[0x3d] = (uint8_t)seq;
	r->cmos[0x38] = (uint8_t)(((seq >> 8) & 0x0f) << 4 | 1);
}

/* Device tests: the virtual clock moved; run what fell due, as the timer thread would have. */
static void clock_moved(void *opaque)
{
	struct rtc *r = opaque;
	pthread_mutex_lock(&r->lock);
	if (r->armed)
		run_events(r, vm_clock_ns(r->vm));
	pthread_mutex_unlock(&r->lock);
}

static int rtc_create(struct vm *vm, void **state)
{
	struct rtc *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	r->vm = vm;
	if (vm->nvram.valid) {
		/* A guest reboot: CMOS RAM and the clock offset are battery-backed. */
		memcpy(r->cmos, vm->nvram.ram, sizeof(r->cmos));
		r->offset_sec = vm->nvram.rtc_offset_sec;
		r->cmos[RTC_REG_B] &= (uint8_t)~(REG_B_SET | REG_B_PIE | REG_B_AIE | REG_B_UIE);
		r->cmos[RTC_REG_C] = 0;
	} else {
		r->cmos[RTC_REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz periodic rate */
		r->cmos[RTC_REG_B] = REG_B_24H;
	}
	r->cmos[RTC_REG_D] = REG_D_VRT;
	fill_firmware_bytes(r, vm);
	latch_time(r);
	if (vm->virtual_clock && vm_clock_watch(vm, clock_moved, r)) {
		pthread_cond_destroy(&r->cond);
		pthread_mutex_destroy(&r->lock);
		free(r);
		return -ENOSPC;
	}
	*state = r;
	return 0;
}

static void rtc_destroy(void *state)
{
	struct rtc *r = state;
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	if (r->thread_running)
		pthread_join(r->thread, NULL);
	if (r->vm->virtual_clock)
		vm_clock_unwatch(r->vm, clock_moved, r);
	memcpy(r->vm->nvram.ram, r->cmos, sizeof(r->cmos));
	r->vm->nvram.rtc_offset_sec = r->offset_sec;
	r->vm->nvram.valid = true;
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static const struct io_range_desc rtc_pio[] = {
	{ PORT_CMOS, 2, { cmos_read, cmos_write } },
};

const struct device_desc rtc_device = {
	.name = "cmos-rtc",
	.create = rtc_create,
	.destroy = rtc_destroy,
	.pio = rtc_pio,
	.nr_pio = ARRAY_SIZE(rtc_pio),
};
