// SPDX-License-Identifier: MIT
#pragma once

/* `keel run ...`: returns keel's exit status. */
int cmd_run(int argc, char **argv);
