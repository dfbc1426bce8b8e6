// SPDX-License-Identifier: MIT
/*
 * The console: keel's standard input feeding the guest's serial port.  On a
 * terminal it switches to raw mode (restored on every exit path) and
 * interprets an escape key, Ctrl-A, like QEMU: Ctrl-A x quits, Ctrl-A h
 * lists the keys, Ctrl-A Ctrl-A sends a Ctrl-A.  From a pipe, every byte
 * goes to the guest unchanged.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

struct console {
	int in_fd; /* -1: no input */
	bool tty;
	bool escape; /* the previous byte was Ctrl-A */
	bool eof;
	uint8_t buf[256]; /* input waiting for room in the device's FIFO */
	size_t off, len;
};

/* in_fd -1 for no input.  0 or -errno. */
int console_init(struct console *c, int in_fd);
/* Restore the terminal if console_init changed it; async-signal-safe. */
void console_restore(void);
/* The descriptor the event loop should poll for POLLIN, or -1. */
int console_poll_fd(const struct console *c, const struct vm *vm);
/* That descriptor is readable: move input towards the guest. */
void console_service(struct console *c, struct vm *vm);
/* A new serial device appeared (guest reboot): offer it the pending input. */
void console_attach(struct console *c, struct vm *vm);
