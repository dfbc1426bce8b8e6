// SPDX-License-Identifier: MIT
/*
 * The runtime directory through which readers find running keel processes:
 * $XDG_RUNTIME_DIR/keel/, or /tmp/keel-UID/ when XDG_RUNTIME_DIR is unset.
 * Each keel run listens on NAME.sock there; a reader that connects gets a
 * struct trace_hello and the trace memfd (SCM_RIGHTS), and nothing else.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define TRACE_SOCK_SUFFIX ".sock"

/* The directory's path.  0 or -ENAMETOOLONG. */
int trace_runtime_dir(char *path, size_t len);
/*
 * Open it (creating it with mode 0700 if create), refusing a directory that
 * is not ours or that others may write.  A descriptor or -errno; *why
 * names what failed.
 */
int trace_runtime_dir_open(bool create, const char **why);
/* Whether name is a valid VM name (letters, digits, '-', '_', '.'; 1-64; not starting with '.'). */
bool trace_valid_name(const char *name, size_t len);

/* Remove dir/file if it is a socket nobody listens on (a killed keel's), with the directory locked. */
void trace_runtime_remove_stale(int dir_fd, const char *file);

/* keel side (server.c). */
int trace_server_open(const char *name, int memfd);
void trace_server_close(void);
/* The name readers see this VM under (NULL: no socket). */
const char *trace_server_name(void);
