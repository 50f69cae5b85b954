#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The backend library against a real VMM: QEMU's vhost-user-blk-pci in front of
# vu-blk-ramdisk, and the host's own Linux kernel and initramfs as the guest, whose
# virtio_blk driver probes the disk and reads its partition table. No root file system is
# given: the guest's initramfs gives up, the kernel panics and QEMU exits, after which the
# backend must have served reads, seen the frontend hang up, and stop cleanly on SIGTERM.
#
#   qemu-interop.sh RAMDISK-BINARY
#
# Skips (77) without qemu-system-x86_64 or a readable /boot/vmlinuz-* and initrd.
set -u

ramdisk=$1
qemu=$(command -v qemu-system-x86_64) || { echo "no qemu-system-x86_64: skipped"; exit 77; }
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
initrd=/boot/initrd.img-${kernel#/boot/vmlinuz-}
if [ -z "$kernel" ] || [ ! -r "$kernel" ] || [ ! -r "$initrd" ]; then
	echo "no readable kernel and initrd in /boot: skipped"
	exit 77
fi

dir=$(mktemp -d /tmp/cb-vu-qemu.XXXXXX)
backend_pid=
cleanup() {
	[ -n "$backend_pid" ] && kill "$backend_pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

"$ramdisk" "$dir/blk.sock" 2>"$dir/backend.log" &
backend_pid=$!
for _ in $(seq 100); do
	[ -S "$dir/blk.sock" ] && break
	sleep 0.1
done

# TCG only: this machine's /dev/kvm is a software hypervisor slower than TCG.
timeout 600 "$qemu" -machine q35 -accel tcg -m 512 -smp 1 \
	-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
	-chardev socket,id=blk,path="$dir/blk.sock" \
	-device vhost-user-blk-pci,chardev=blk,num-queues=1 \
	-kernel "$kernel" -initrd "$initrd" \
	-append "console=ttyS0 panic=-1 root=/dev/vda rootdelay=1 quiet loglevel=6" \
	-display none -serial "file:$dir/guest.log" -no-reboot -monitor none >"$dir/qemu.log" 2>&1
qemu_status=$?

kill -TERM "$backend_pid"
wait "$backend_pid"
backend_status=$?
backend_pid=

fail=0
echo "qemu exit status: $qemu_status"
cat "$dir/qemu.log"
echo "--- backend"
grep -v '^requests:' "$dir/backend.log"
grep '^requests:' "$dir/backend.log" | tail -n 1
echo "--- guest"
grep -E 'virtio_blk|vda' "$dir/guest.log"

grep -q 'features: ' "$dir/backend.log" || { echo "FAIL: no feature negotiation"; fail=1; }
grep -q 'reads: [1-9]' "$dir/backend.log" || { echo "FAIL: no read served"; fail=1; }
grep -q '\[vda\] 2048 512-byte logical blocks' "$dir/guest.log" ||
	{ echo "FAIL: the guest did not see the disk"; fail=1; }
grep -q 'connection ended: frontend hung up (0)' "$dir/backend.log" ||
	{ echo "FAIL: the connection did not end cleanly"; fail=1; }
grep -q 'connection ended: .*(-' "$dir/backend.log" &&
	{ echo "FAIL: a connection ended in error"; fail=1; }
[ "$backend_status" -eq 0 ] || { echo "FAIL: backend exit status $backend_status"; fail=1; }
exit $fail
