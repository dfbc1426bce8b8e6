// SPDX-License-Identifier: MIT
/*
 * keel-devtest's protocol: one command per line, one answer line for each,
 * "OK [values]" or "ERR why".  Numbers are read in C notation (0x.. hex,
 * plain decimal) and written in hex.  The commands (README: device tests):
 *
 *   outb|outw|outl PORT VALUE          port write
 *   inb|inw|inl PORT                   port read: OK VALUE
 *   writeb|writew|writel|writeq ADDR VALUE
 *                                      memory write: RAM, else MMIO (ioeventfds first)
 *   readb|readw|readl|readq ADDR       memory read: OK VALUE
 *   read ADDR LEN                      RAM bytes (LEN <= 1 MiB): OK HEX
 *   write ADDR LEN HEX                 RAM bytes
 *   memset ADDR LEN BYTE               RAM bytes
 *   clock                              the virtual clock: OK NS
 *   clock_step NS                      move it on by NS: OK NS (timer devices run)
 *   clock_set NS                       move it to NS (never back): OK NS
 *   irq GSI                            an interrupt line: OK LEVEL RAISES
 *   msi                                the oldest MSI not yet taken: OK ADDR DATA, or OK none
 *   msi_wait MS                        the same, waiting up to MS ms: OK ADDR DATA, or ERR timeout
 *   ioeventfd ADDR SIZE                whether a write there signals an ioeventfd (not an exit): OK 0|1
 *   ioeventfd_pio PORT SIZE            the same for a port
 *   info                               OK ram=BYTES cpus=N msi_lost=N stop=REASON:STATUS
 *                                      (what the guest asked for: none, poweroff, reset,
 *                                      debug-exit with keel run's exit status, ...; the
 *                                      machine goes on, the test decides)
 *   quit                               OK, then keel-devtest ends
 *
 * The test program is outside input like any other: a malformed line gets
 * ERR and changes nothing.
 */
#pragma once

#include <stddef.h>

struct dt_machine;

/* A growable answer buffer. */
struct dt_out {
	char *buf;
	size_t len, cap;
};

void dt_out_free(struct dt_out *o);

#define DT_LINE_MAX (4u << 20) /* the longest line accepted: a 1 MiB write, in hex, and then some */

/*
 * Execute one command line (without its newline; it may be modified) and
 * append the answer line, newline included, to out.  Returns 1 after quit,
 * 0 otherwise, -ENOMEM if the answer could not be built.
 */
int dt_command(struct dt_machine *m, char *line, struct dt_out *out);
