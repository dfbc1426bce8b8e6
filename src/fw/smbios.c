// SPDX-License-Identifier: MIT
/* SMBIOS 2.8 structures and a 2.1 entry point for firmware (see smbios.h). */
#include "smbios.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/acpi.h"
#include "base/util.h"

struct __attribute__((packed)) smbios_anchor21 {
	char anchor[4]; /* "_SM_" */
	uint8_t checksum; /* over the whole entry point */
	uint8_t length;
	uint8_t major, minor;
	uint16_t max_structure_size;
	uint8_t revision;
	uint8_t formatted[5];
	char intermediate_anchor[5]; /* "_DMI_" */
	uint8_t intermediate_checksum; /* over the 15 bytes from intermediate_anchor */
	uint16_t table_length;
	uint32_t table_address;
	uint16_t nr_structures;
	uint8_t bcd_revision;
};
static_assert(sizeof(struct smbios_anchor21) == 0x1f, "SMBIOS 2.1 entry point");

struct __attribute__((packed)) smbios_header {
	uint8_t type, length;
	uint16_t handle;
};

struct __attribute__((packed)) smbios_type0 {
	struct smbios_header h;
	uint8_t vendor, version;
	uint16_t start_segment;
	uint8_t release_date, rom_size;
	uint64_t characteristics;
	uint8_t characteristics_ext[2];
	uint8_t major, minor, ec_major, ec_minor;
};
static_assert(sizeof(struct smbios_type0) == 0x18, "SMBIOS type 0");

struct __attribute__((packed)) smbios_type1 {
	struct smbios_header h;
	uint8_t manufacturer, product, version, serial;
	uint8_t uuid[16];
	uint8_t wake_up_type, sku, family;
};
static_assert(sizeof(struct smbios_type1) == 0x1b, "SMBIOS type 1");

struct __attribute__((packed)) smbios_type3 {
	struct smbios_header h;
	uint8_t manufacturer, type, version, serial, asset_tag;
	uint8_t boot_state, power_state, thermal_state, security_status;
	uint32_t oem;
	uint8_t height, power_cords, nr_elements, element_length;
	uint8_t sku; /* after the (no) contained elements */
};
static_assert(sizeof(struct smbios_type3) == 0x16, "SMBIOS type 3");

struct __attribute__((packed)) smbios_type4 {
	struct smbios_header h;
	uint8_t socket, type, family, manufacturer;
	uint64_t id;
	uint8_t version, voltage;
	uint16_t external_clock, max_speed, current_speed;
	uint8_t status, upgrade;
	uint16_t l1_cache, l2_cache, l3_cache;
	uint8_t serial, asset_tag, part_number;
	uint8_t core_count, core_enabled, thread_count;
	uint16_t characteristics, family2;
};
static_assert(sizeof(struct smbios_type4) == 0x2a, "SMBIOS type 4");

struct __attribute__((packed)) smbios_type16 {
	struct smbios_header h;
	uint8_t location, use, error_correction;
	uint32_t max_capacity_kb;
	uint16_t error_info;
	uint16_t nr_devices;
	uint64_t extended_max_capacity;
};
static_assert(sizeof(struct smbios_type16) == 0x17, "SMBIOS type 16");

struct __attribute__((packed)) smbios_type17 {
	struct smbios_header h;
	uint16_t array, error_info, total_width, data_width, size_mb;
	uint8_t form_factor, device_set, device_locator, bank_locator, memory_type;
	uint16_t type_detail, speed;
	uint8_t manufacturer, serial, asset_tag, part_number, attributes;
	uint32_t extended_size_mb;
	uint16_t clock_speed, min_voltage, max_voltage, voltage;
};
static_assert(sizeof(struct smbios_type17) == 0x28, "SMBIOS type 17");

struct __attribute__((packed)) smbios_type19 {
	struct smbios_header h;
	uint32_t start_kb, end_kb;
	uint16_t array;
	uint8_t partition_width;
	uint64_t extended_start, extended_end;
};
static_assert(sizeof(struct smbios_type19) == 0x1f, "SMBIOS type 19");

struct __attribute__((packed)) smbios_type32 {
	struct smbios_header h;
	uint8_t reserved[6];
	uint8_t boot_status;
};
static_assert(sizeof(struct smbios_type32) == 0x0b, "SMBIOS type 32");

#define HANDLE_BIOS 0x0000
#define HANDLE_SYSTEM 0x0100
#define HANDLE_CHASSIS 0x0300
#define HANDLE_CPU 0x0400
#define HANDLE_MEM_ARRAY 0x1000
#define HANDLE_MEM_DEVICE 0x1100
#define HANDLE_MEM_MAPPED 0x1300
#define HANDLE_BOOT 0x2000
#define HANDLE_END 0x7f00

#define DIMM_MAX_SIZE (16 * GiB) /* as QEMU splits RAM into memory devices */
#define DIMMS_MAX 0x100           /* handles up to HANDLE_MEM_MAPPED */
#define TABLES_MAX 0xffff         /* the entry point's 16-bit length */

#define VENDOR "keel"
#define BIOS_VERSION "1"
#define BIOS_DATE "01/01/2025"

/* The structures being written: a growing buffer, their count and the largest. */
struct smb {
	uint8_t *buf;
	size_t len, cap;
	unsigned count;
	size_t max;
	int err;
};

/* A structure's strings, numbered from 1 as str() adds them; 0 stands for none. */
struct strset {
	const char *s[8];
	unsigned n;
};

static uint8_t str(struct strset *set, const char *s)
{
	assert(set->n < ARRAY_SIZE(set->s));
	if (!s || !*s)
		return 0;
	set->s[set->n++] = s;
	return (uint8_t)set->n;
}

static bool reserve(struct smb *s, size_t n)
{
	if (s->err)
		return false;
	if (n > TABLES_MAX - s->len) {
		s->err = -E2BIG;
		return false;
	}
	if (s->len + n > s->cap) {
		size_t cap = MAX(s->cap * 2, s->len + n);
		uint8_t *p = realloc(s->buf, cap);
		if (!p) {
			s->err = -ENOMEM;
			return false;
		}
		s->buf = p;
		s->cap = cap;
	}
	return true;
}

/* Append a structure: its formatted part (len bytes, from its header on) and its strings. */
static void put(struct smb *s, void *t, size_t len, uint8_t type, uint16_t handle, const struct strset *set)
{
	struct smbios_header *h = t;
	h->type = type;
	h->length = (uint8_t)len;
	h->handle = handle;
	size_t size = len + 1;
	for (unsigned i = 0; i < set->n; i++)
		size += strlen(set->s[i]) + 1;
	if (!set->n)
		size++; /* an empty string set is two NULs */
	if (!reserve(s, size))
		return;
	uint8_t *p = s->buf + s->len;
	memcpy(p, t, len);
	p += len;
	for (unsigned i = 0; i < set->n; i++) {
		size_t n = strlen(set->s[i]) + 1;
		memcpy(p, set->s[i], n);
		p += n;
	}
	*p++ = 0;
	if (!set->n)
		*p++ = 0;
	s->len += size;
	s->count++;
	s->max = MAX(s->max, size);
}

static void type0(struct smb *s)
{
	struct strset set = { 0 };
	struct smbios_type0 t = { 0 };
	t.vendor = str(&set, VENDOR);
	t.version = str(&set, BIOS_VERSION);
	t.release_date = str(&set, BIOS_DATE);
	t.start_segment = 0xe800;
	t.characteristics = 1u << 3; /* characteristics not supported */
	t.characteristics_ext[1] = 1u << 2 | 1u << 4; /* targeted content distribution; a virtual machine */
	t.major = 1;
	t.ec_major = t.ec_minor = 0xff; /* no embedded controller firmware */
	put(s, &t, sizeof(t), 0, HANDLE_BIOS, &set);
}

static void type1(struct smb *s, const uint8_t *uuid)
{
	struct strset set = { 0 };
	struct smbios_type1 t = { 0 };
	t.manufacturer = str(&set, VENDOR);
	t.product = str(&set, "keel virtual machine");
	t.version = str(&set, BIOS_VERSION);
	if (uuid) {
		/* time_low, time_mid and time_hi_and_version little-endian, the rest as is */
		static const uint8_t order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
		for (int i = 0; i < 16; i++)
			t.uuid[i] = uuid[order[i]];
	}
	t.wake_up_type = 0x06; /* power switch */
	put(s, &t, sizeof(t), 1, HANDLE_SYSTEM, &set);
}

static void type3(struct smb *s)
{
	struct strset set = { 0 };
	struct smbios_type3 t = { 0 };
	t.manufacturer = str(&set, VENDOR);
	t.type = 0x01; /* other */
	t.boot_state = t.power_state = t.thermal_state = 0x03; /* safe */
	t.security_status = 0x02; /* unknown */
	put(s, &t, sizeof(t), 3, HANDLE_CHASSIS, &set);
}

static void type4(struct smb *s, unsigned cpu)
{
	char socket[16];
	snprintf(socket, sizeof(socket), "CPU %u", cpu);
	struct strset set = { 0 };
	struct smbios_type4 t = { 0 };
	t.socket = str(&set, socket);
	t.type = 0x03; /* central processor */
	t.family = 0x01; /* other */
	t.manufacturer = str(&set, VENDOR);
	t.version = str(&set, "keel virtual CPU");
	t.status = 0x41; /* socket populated, CPU enabled */
	t.upgrade = 0x01; /* other */
	t.l1_cache = t.l2_cache = t.l3_cache = 0xffff; /* no cache information */
	t.core_count = t.core_enabled = t.thread_count = 1;
	t.characteristics = 1u << 2; /* 64-bit capable */
	t.family2 = 0x01;
	put(s, &t, sizeof(t), 4, (uint16_t)(HANDLE_CPU + cpu), &set);
}

static void type16(struct smb *s, uint64_t ram, unsigned dimms)
{
	struct strset set = { 0 };
	struct smbios_type16 t = { 0 };
	t.location = 0x01; /* other */
	t.use = 0x03; /* system memory */
	t.error_correction = 0x03; /* none */
	uint64_t kb = ram / KiB;
	if (kb < 0x80000000u) {
		t.max_capacity_kb = (uint32_t)kb;
	} else {
		t.max_capacity_kb = 0x80000000u; /* see the extended field */
		t.extended_max_capacity = ram;
	}
	t.error_info = 0xfffe; /* not provided */
	t.nr_devices = (uint16_t)dimms;
	put(s, &t, sizeof(t), 16, HANDLE_MEM_ARRAY, &set);
}

static void type17(struct smb *s, unsigned i, uint64_t size)
{
	char locator[16];
	snprintf(locator, sizeof(locator), "DIMM %u", i);
	struct strset set = { 0 };
	struct smbios_type17 t = { 0 };
	t.array = HANDLE_MEM_ARRAY;
	t.error_info = 0xfffe;
	t.total_width = t.data_width = 64;
	uint64_t mb = ALIGN_UP(size, MiB) / MiB; /* at most DIMM_MAX_SIZE: below 0x7fff */
	t.size_mb = (uint16_t)mb;
	t.form_factor = 0x09; /* DIMM */
	t.device_locator = str(&set, locator);
	t.memory_type = 0x07; /* RAM */
	t.type_detail = 1u << 1; /* other */
	t.manufacturer = str(&set, VENDOR);
	put(s, &t, sizeof(t), 17, (uint16_t)(HANDLE_MEM_DEVICE + i), &set);
}

static void type19(struct smb *s, unsigned i, uint64_t start, uint64_t size)
{
	struct strset set = { 0 };
	struct smbios_type19 t = { 0 };
	uint64_t end = start + size - 1;
	if (end / KiB < 0xffffffffu) {
		t.start_kb = (uint32_t)(start / KiB);
		t.end_kb = (uint32_t)(end / KiB);
	} else {
		t.start_kb = t.end_kb = 0xffffffffu; /* see the extended fields, in bytes */
		t.extended_start = start;
		t.extended_end = end;
	}
	t.array = HANDLE_MEM_ARRAY;
	t.partition_width = 1;
	put(s, &t, sizeof(t), 19, (uint16_t)(HANDLE_MEM_MAPPED + i), &set);
}

static void type32(struct smb *s)
{
	struct strset set = { 0 };
	struct smbios_type32 t = { 0 };
	t.boot_status = 0; /* no errors detected */
	put(s, &t, sizeof(t), 32, HANDLE_BOOT, &set);
}

int smbios_build(const struct smbios_config *c, uint8_t **anchor, size_t *anchor_len, uint8_t **tables,
		 size_t *tables_len)
{
	struct smb s = { 0 };
	struct smbios_anchor21 *a = NULL;

	*anchor = *tables = NULL;
	*anchor_len = *tables_len = 0;
	if (!c->nr_cpus || c->nr_cpus > 255 || !c->ram_below_4g || c->ram_below_4g > 4 * GiB ||
	    c->ram_above_4g > UINT64_MAX - 8 * GiB)
		return -EINVAL;
	uint64_t ram = c->ram_below_4g + c->ram_above_4g;
	uint64_t dimms = (ram + DIMM_MAX_SIZE - 1) / DIMM_MAX_SIZE;
	if (dimms > DIMMS_MAX)
		return -E2BIG;

	type0(&s);
	type1(&s, c->uuid);
	type3(&s);
	for (unsigned i = 0; i < c->nr_cpus; i++)
		type4(&s, i);
	type16(&s, ram, (unsigned)dimms);
	for (unsigned i = 0; i < dimms; i++)
		type17(&s, i, MIN(DIMM_MAX_SIZE, ram - i * DIMM_MAX_SIZE));
	type19(&s, 0, 0, c->ram_below_4g);
	if (c->ram_above_4g)
		type19(&s, 1, 4 * GiB, c->ram_above_4g);
	type32(&s);
	struct strset none = { 0 };
	struct smbios_header end = { 0 };
	put(&s, &end, sizeof(end), 127, HANDLE_END, &none);
	if (s.err)
		goto fail;

	a = calloc(1, sizeof(*a));
	if (!a) {
		s.err = -ENOMEM;
		goto fail;
	}
	memcpy(a->anchor, "_SM_", 4);
	a->length = sizeof(*a);
	a->major = 2;
	a->minor = 8;
	a->max_structure_size = (uint16_t)s.max;
	memcpy(a->intermediate_anchor, "_DMI_", 5);
	a->table_length = (uint16_t)s.len;
	a->table_address = 0; /* the firmware's copy: it writes the address and fixes both checksums */
	a->nr_structures = (uint16_t)s.count;
	a->bcd_revision = 0x28;
	a->intermediate_checksum = (uint8_t)-acpi_checksum(a->intermediate_anchor, sizeof(*a) - 0x10);
	a->checksum = (uint8_t)-acpi_checksum(a, sizeof(*a)); /* the same byte sum as ACPI's */

	uint8_t *p = realloc(s.buf, s.len);
	*tables = p ? p : s.buf;
	*tables_len = s.len;
	*anchor = (uint8_t *)a;
	*anchor_len = sizeof(*a);
	return 0;

fail:
	free(s.buf);
	return s.err;
}
