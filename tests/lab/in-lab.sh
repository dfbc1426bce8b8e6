#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What make test runs inside the lab: real Linux guests, and the test-guest
# and sandbox groups again, this time under real (nested) KVM.
cd "$(dirname "$0")/../.."
bash tests/linux/tests.sh
GROUP_PREFIX=lab- bash tests/guests/run.sh
GROUP_PREFIX=lab- bash tests/sandbox/run.sh
