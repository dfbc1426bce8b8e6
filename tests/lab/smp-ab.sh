#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Inside the lab: 2-vCPU boots of Debian's kernel to power-off, keel and QEMU
# alternating, one "AB <vmm> <n> rc=..." line each (rc 0: powered off; 124:
# hung; 125 for QEMU: it exited early, a reset or triple fault with
# -no-reboot).  QEMU runs the PC machine (PCI, ACPI, KVM's in-kernel
# irqchip) as keel's platform has them; QEMU_MACHINE overrides it.
#   tests/lab/lab.sh --qemu -- env N=8 [QEMU_MACHINE=...] bash tests/lab/smp-ab.sh
# See docs/known-issues.md.
cd /work || exit 1
c="console=ttyS0 panic=-1 nokaslr keel.cpus=2 keel.mem=256 keel.date=20261122 ${EXTRA:-}"
for i in $(seq "${N:-8}"); do
	for who in keel qemu; do
		if [ $who = keel ]; then
			cmd=(./build/keel run --kernel "$VMLINUZ" --initrd "$GUEST_INITRD" --cpus 2 --memory 256M --cmdline "$c")
		else
			cmd=(qemu-system-x86_64 -M "${QEMU_MACHINE:-pc,accel=kvm,kernel-irqchip=on}" -cpu host -m 256 -smp 2
				-nodefaults -no-user-config -display none -serial stdio -no-reboot
				-kernel "$VMLINUZ" -initrd "$GUEST_INITRD" -append "$c")
		fi
		t0=$(cut -d' ' -f1 /proc/uptime)
		./build/tests/drive -t 90 -l "/tmp/$who$i.log" -x KEEL-READY -s 'poweroff\n' -x 'KEEL-ECHO:poweroff' \
			-- "${cmd[@]}" >"/tmp/$who$i.drive"
		rc=$?
		t1=$(cut -d' ' -f1 /proc/uptime)
		why=$(grep -ohE 'triple fault|KVM internal error|emulation failed' "/tmp/$who$i.log" | head -1)
		echo "AB $who $i rc=$rc ${why} t=$(echo "$t1 - $t0" | bc 2>/dev/null || echo ?)" \
			"last=$(grep -aE '^\[' "/tmp/$who$i.log" | tail -1 | cut -c1-90)"
	done
done
echo AB-DONE
