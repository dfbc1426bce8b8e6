// SPDX-License-Identifier: MIT
/*
 * A minimal AML (ACPI Machine Language) emitter for the DSDT keel builds:
 * scopes, devices, named objects, packages, integers, strings, EISA IDs and
 * resource templates.  Errors (buffer too small, nesting too deep) are
 * sticky: check aml_failed() once at the end.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 16

struct aml {
	uint8_t *buf;
	size_t len, cap;
	size_t open[AML_MAX_DEPTH]; /* where each open package's contents start */
	unsigned depth;
	bool failed;
};

void aml_init(struct aml *a, uint8_t *buf, size_t cap);
bool aml_failed(const struct aml *a);

void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_byte(struct aml *a, uint8_t b);
/* A name path like "\\_SB_", "PCI0", "_S5_" (segments padded to 4 with '_'). */
void aml_namestring(struct aml *a, const char *path);
/* Integer constant using the shortest encoding (Zero/One/Ones/Byte/Word/DWord/QWord). */
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* EisaId("PNP0A03") as a DWord constant. */
void aml_eisaid(struct aml *a, const char *id);

/* Opcodes with a PkgLength: open, emit contents, close. */
void aml_scope_begin(struct aml *a, const char *path);
void aml_device_begin(struct aml *a, const char *name);
void aml_package_begin(struct aml *a, uint8_t count);
void aml_end(struct aml *a);

/* Name(NAME, <object>): emit the NameOp and the name; the caller emits the object. */
void aml_name(struct aml *a, const char *name);

/* Resource templates: a Buffer whose contents are resource descriptors. */
void aml_resources_begin(struct aml *a);
void aml_res_io(struct aml *a, uint16_t base, uint8_t len);
void aml_res_irq(struct aml *a, uint16_t mask);
void aml_res_mem32_fixed(struct aml *a, uint32_t base, uint32_t len);
void aml_res_word_bus(struct aml *a, uint16_t min, uint16_t max);
void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max);
void aml_res_dword_mem(struct aml *a, uint32_t min, uint32_t max);
void aml_res_qword_mem(struct aml *a, uint64_t min, uint64_t max);
void aml_resources_end(struct aml *a);

/* PkgLength encoding of a package whose contents are content_len bytes. Returns bytes used. */
size_t aml_pkglength(uint8_t out[4], size_t content_len);
