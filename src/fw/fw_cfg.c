// SPDX-License-Identifier: MIT
/*
 * fw_cfg: the firmware configuration interface of QEMU's PC machine, which
 * SeaBIOS and OVMF read their configuration from (QEMU's
 * docs/specs/fw_cfg.rst).  Port I/O:
 *  - 0x510, selector (16-bit write): chooses an item and rewinds it;
 *  - 0x511, data (8-bit read): the item's next byte, 0 past its end;
 *  - 0x514/0x518, DMA address, big-endian, high then low half (32-bit
 *    writes); writing the low half runs the transfer the guest described
 *    at that address: struct fw_cfg_dma_access { be32 control; be32
 *    length; be64 address }.  Reading them gives "QEMU CFG".
 * Items: the signature "QEMU" (key 0), the feature bits (key 1:
 * traditional interface and DMA), the CPU counts and RAM size, the file
 * directory (key 0x19) and files from key 0x20 on (fw_cfg_add_file()).
 * Everything here is read-only for the guest: DMA writes fail with the
 * error bit, data-port writes are ignored.
 *
 * The guest is hostile: a DMA descriptor is copied out of guest memory
 * once, then checked; a transfer of up to 4 GiB goes through the checked
 * accessor 64 KiB at a time, so it is bounded by the guest's RAM (the first
 * part outside it sets the error bit and ends the transfer); every access
 * holds the device's lock, so vCPUs cannot interleave a selection and a
 * read.
 */
#include "fw_cfg.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "vmm/device.h"
#include "vmm/guest_mem.h"
#include "vmm/vm.h"

#define PORT_FW_CFG 0x510 /* selector 0x510, data 0x511, DMA address 0x514-0x51b */

#define KEY_SIGNATURE 0x00
#define KEY_ID 0x01
#define KEY_RAM_SIZE 0x03
#define KEY_NB_CPUS 0x05
#define KEY_MAX_CPUS 0x0f
#define KEY_FILE_DIR 0x19
#define KEY_FILE_FIRST 0x20

#define ID_TRADITIONAL 1u
#define ID_DMA 2u

#define DMA_ERROR 1u
#define DMA_READ 2u
#define DMA_SKIP 4u
#define DMA_SELECT 8u
#define DMA_WRITE 16u

#define DMA_ZERO_CHUNK (64u * 1024)

struct fw_cfg_item {
	uint16_t key;
	uint8_t *data;
	uint32_t len;
	char name[FW_CFG_NAME_MAX]; /* files only */
};

struct fw_cfg {
	pthread_mutex_t lock;
	struct guest_mem *mem;
	struct vm *vm; /* NULL outside a machine (tests) */
	struct fw_cfg_item items[FW_CFG_ITEMS_MAX];
	unsigned nitems, nfiles;
	uint16_t selected;
	uint32_t offset;   /* in the selected item */
	uint32_t dma_high; /* the DMA address's high half, as last written */
};

static struct fw_cfg_item *find(struct fw_cfg *f, uint16_t key)
{
	for (unsigned i = 0; i < f->nitems; i++)
		if (f->items[i].key == key)
			return &f->items[i];
	return NULL;
}

/* Set key's contents to a copy of data (replacing any).  0, -ENOMEM or -ENOSPC. */
static int set_item(struct fw_cfg *f, uint16_t key, const void *data, uint32_t len, const char *name)
{
	struct fw_cfg_item *it = find(f, key);
	if (!it) {
		if (f->nitems == FW_CFG_ITEMS_MAX)
			return -ENOSPC;
		it = &f->items[f->nitems++];
		*it = (struct fw_cfg_item){ .key = key };
	}
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	free(it->data);
	it->data = copy;
	it->len = len;
	snprintf(it->name, sizeof(it->name), "%s", name ? name : "");
	return 0;
}

/* The file directory (key 0x19): be32 count, then { be32 size; be16 select; be16 0; char name[56] }. */
static int rebuild_dir(struct fw_cfg *f)
{
	uint8_t dir[4 + 64 * FW_CFG_ITEMS_MAX];
	uint32_t n = 0, be;
	for (unsigned i = 0; i < f->nitems; i++) {
		const struct fw_cfg_item *it = &f->items[i];
		if (it->key < KEY_FILE_FIRST)
			continue;
		uint8_t *e = dir + 4 + 64 * n++;
		memset(e, 0, 64);
		be = htobe32(it->len);
		memcpy(e, &be, 4);
		uint16_t sel = htobe16(it->key);
		memcpy(e + 4, &sel, 2);
		memcpy(e + 8, it->name, strnlen(it->name, FW_CFG_NAME_MAX - 1));
	}
	be = htobe32(n);
	memcpy(dir, &be, 4);
	return set_item(f, KEY_FILE_DIR, dir, 4 + 64 * n, NULL);
}

int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, uint32_t len)
{
	size_t nl = strlen(name);
	if (!nl || nl >= FW_CFG_NAME_MAX)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	int rc = 0;
	uint16_t key = (uint16_t)(KEY_FILE_FIRST + f->nfiles);
	for (unsigned i = 0; i < f->nitems; i++)
		if (f->items[i].key >= KEY_FILE_FIRST && !strcmp(f->items[i].name, name)) {
			key = f->items[i].key; /* replace */
			break;
		}
	if (key == KEY_FILE_FIRST + f->nfiles && f->nfiles == FW_CFG_FILES_MAX)
		rc = -ENOSPC;
	if (!rc)
		rc = set_item(f, key, data, len, name);
	if (!rc && key == KEY_FILE_FIRST + f->nfiles)
		f->nfiles++;
	if (!rc)
		rc = rebuild_dir(f);
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static const struct fw_cfg_item *selected(struct fw_cfg *f)
{
	return find(f, f->selected);
}

static void select_key(struct fw_cfg *f, uint16_t key)
{
	f->selected = key;
	f->offset = 0;
}

/*
 * Run the DMA transfer described at gpa.  Only the descriptor's control
 * word is written back (0, or DMA_ERROR); a descriptor outside guest RAM
 * is ignored.
 */
static void dma_run(struct fw_cfg *f, uint64_t gpa)
{
	uint8_t raw[16];
	if (gm_read(f->mem, gpa, raw, sizeof(raw)))
		return;
	uint32_t control, length;
	uint64_t addr;
	memcpy(&control, raw, 4);
	memcpy(&length, raw + 4, 4);
	memcpy(&addr, raw + 8, 8);
	control = be32toh(control);
	length = be32toh(length);
	addr = be64toh(addr);

	bool error = false;
	if (control & DMA_SELECT)
		select_key(f, (uint16_t)(control >> 16));
	if (control & DMA_WRITE) {
		error = true; /* nothing here is writable */
	} else if (control & (DMA_READ | DMA_SKIP)) {
		const struct fw_cfg_item *it = selected(f);
		uint32_t avail = it && f->offset < it->len ? it->len - f->offset : 0;
		uint32_t n = MIN(avail, length);
		if (control & DMA_READ) {
			/* The item's bytes, then zeroes for what the guest asked beyond its end. */
			if (n && gm_write(f->mem, addr, it->data + f->offset, n))
				error = true;
			for (uint64_t done = n; !error && done < length;) {
				static const uint8_t zeroes[DMA_ZERO_CHUNK];
				uint64_t c = MIN((uint64_t)length - done, (uint64_t)DMA_ZERO_CHUNK);
				if (gm_write(f->mem, addr + done, zeroes, c))
					error = true;
				done += c;
			}
		}
		if (!error)
			f->offset += n;
	}
	uint32_t out = htobe32(error ? DMA_ERROR : 0);
	(void)gm_write(f->mem, gpa, &out, sizeof(out));
}

static uint64_t fw_cfg_read(void *opaque, uint64_t off, unsigned size)
{
	struct fw_cfg *f = opaque;
	static const char sig[8] = "QEMU CFG";
	uint64_t v = 0;
	pthread_mutex_lock(&f->lock);
	if (off == 1 && size == 1) {
		const struct fw_cfg_item *it = selected(f);
		if (it && f->offset < it->len)
			v = it->data[f->offset++];
	} else if (off >= 4 && off + size <= 12) {
		/* The DMA register reads as the signature, byte by byte in address order. */
		memcpy(&v, sig + (off - 4), size);
	}
	pthread_mutex_unlock(&f->lock);
	return v;
}

static void fw_cfg_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct fw_cfg *f = opaque;
	pthread_mutex_lock(&f->lock);
	if (off == 0 && size == 2) {
		select_key(f, (uint16_t)value);
	} else if (off == 4 && size == 4) {
		f->dma_high = be32toh((uint32_t)value);
	} else if (off == 8 && size == 4) {
		dma_run(f, (uint64_t)f->dma_high << 32 | be32toh((uint32_t)value));
		f->dma_high = 0;
	}
	pthread_mutex_unlock(&f->lock);
}

struct fw_cfg *fw_cfg_new(struct guest_mem *mem, unsigned cpus, uint64_t ram_size)
{
	struct fw_cfg *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	pthread_mutex_init(&f->lock, NULL);
	f->mem = mem;
	uint32_t id = htole32(ID_TRADITIONAL | ID_DMA);
	uint16_t ncpu = htole16((uint16_t)cpus);
	uint64_t ram = htole64(ram_size);
	if (set_item(f, KEY_SIGNATURE, "QEMU", 4, NULL) || set_item(f, KEY_ID, &id, 4, NULL) ||
	    set_item(f, KEY_RAM_SIZE, &ram, 8, NULL) || set_item(f, KEY_NB_CPUS, &ncpu, 2, NULL) ||
	    set_item(f, KEY_MAX_CPUS, &ncpu, 2, NULL) || rebuild_dir(f)) {
		fw_cfg_free(f);
		return NULL;
	}
	return f;
}

int fw_cfg_set_item(struct fw_cfg *f, uint16_t key, const void *data, uint32_t len)
{
	if (key >= KEY_FILE_FIRST)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	int r = set_item(f, key, data, len, NULL);
	pthread_mutex_unlock(&f->lock);
	return r;
}

void fw_cfg_free(struct fw_cfg *f)
{
	if (!f)
		return;
	for (unsigned i = 0; i < f->nitems; i++)
		free(f->items[i].data);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void fw_cfg_io(struct fw_cfg *f, uint64_t off, unsigned size, bool write, uint64_t *value)
{
	if (write)
		fw_cfg_write(f, off, size, *value);
	else
		*value = fw_cfg_read(f, off, size);
}

static int fw_cfg_create(struct vm *vm, void **state)
{
	struct fw_cfg *f = fw_cfg_new(&vm->mem, vm->cfg->cpus, vm->cfg->memory);
	if (!f)
		return -ENOMEM;
	f->vm = vm;
	vm->fw_cfg = f;
	*state = f;
	return 0;
}

static void fw_cfg_destroy(void *state)
{
	struct fw_cfg *f = state;
	if (f->vm && f->vm->fw_cfg == f)
		f->vm->fw_cfg = NULL;
	fw_cfg_free(f);
}

static const struct io_range_desc fw_cfg_pio[] = {
	{ PORT_FW_CFG, 12, { fw_cfg_read, fw_cfg_write } },
};

const struct device_desc fw_cfg_device = {
	.name = "fw-cfg",
	.create = fw_cfg_create,
	.destroy = fw_cfg_destroy,
	.pio = fw_cfg_pio,
	.nr_pio = ARRAY_SIZE(fw_cfg_pio),
};
