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

/*
 * Control methods, enough for PCI interrupt link devices.  A method, If and
 * Field are packages (close them with aml_end()); the other opcodes are
 * emitted as bytes followed by their operands, in AML's prefix order, e.g.
 * Store(Arg0, X): aml_byte(a, AML_OP_STORE); aml_byte(a, AML_ARG0);
 * aml_namestring(a, "X").
 */
enum {
	AML_OP_STORE = 0x70,
	AML_OP_AND = 0x7b,
	AML_OP_OR = 0x7d,
	AML_OP_CREATE_DWORD_FIELD = 0x8a,
	AML_OP_LLESS = 0x95,
	AML_OP_RETURN = 0xa4,
	AML_LOCAL0 = 0x60,
	AML_ARG0 = 0x68,
	AML_NULL_NAME = 0x00, /* a Target that discards the result */
};
enum { AML_SPACE_PCI_CONFIG = 2 };
#define AML_FIELD_BYTE_ACC 0x01 /* ByteAcc, NoLock, Preserve */

void aml_method_begin(struct aml *a, const char *name, unsigned nargs, bool serialized);
void aml_if_begin(struct aml *a); /* then the predicate, then the body, then aml_end() */
void aml_else_begin(struct aml *a);
/* OperationRegion(NAME, space, offset, len). */
void aml_opregion(struct aml *a, const char *name, uint8_t space, uint64_t offset, uint64_t len);
/* Field(region, flags) { unit, bits ... }: aml_field_unit() per field, then aml_end(). */
void aml_field_begin(struct aml *a, const char *region, uint8_t flags);
void aml_field_unit(struct aml *a, const char *name, unsigned bits);

/* Resource templates: a Buffer whose contents are resource descriptors. */
void aml_resources_begin(struct aml *a);
void aml_res_io(struct aml *a, uint16_t base, uint8_t len);
void aml_res_irq(struct aml *a, uint16_t mask);
void aml_res_mem32_fixed(struct aml *a, uint32_t base, uint32_t len);
void aml_res_word_bus(struct aml *a, uint16_t min, uint16_t max);
void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max);
void aml_res_dword_mem(struct aml *a, uint32_t min, uint32_t max);
void aml_res_qword_mem(struct aml *a, uint64_t min, uint64_t max);
/* Extended interrupt descriptor: flags bit 0 consumer, 1 edge, 2 active-low, 3 shared; n interrupts. */
void aml_res_interrupt(struct aml *a, uint8_t flags, const uint32_t *irqs, unsigned n);
#define AML_IRQ_LEVEL_HIGH_SHARED 0x09
void aml_resources_end(struct aml *a);

/* PkgLength encoding of a package whose contents are content_len bytes. Returns bytes used. */
size_t aml_pkglength(uint8_t out[4], size_t content_len);
