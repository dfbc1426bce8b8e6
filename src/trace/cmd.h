// SPDX-License-Identifier: MIT
/* The tracing commands: keel tracefs, keel trace record|report (and the hidden selftest). */
#pragma once

int cmd_tracefs(int argc, char **argv);
int cmd_trace(int argc, char **argv);
