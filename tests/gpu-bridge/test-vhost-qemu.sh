#!/bin/sh
# SPDX-License-Identifier: MIT
#
# crossbuf-gpu behind a real VMM and a real guest driver: QEMU's vhost-user-gpu-pci (Debian
# 12's QEMU 7.2) in front of crossbuf-gpu, the host's kernel as the guest with a busybox
# initramfs that loads virtio-gpu. The guest's driver negotiates, creates its framebuffer
# resource, attaches backing, sets the scanout and flushes (fbcon, then bytes written to
# /dev/fb0); QEMU hands over its display socket. Checked: the features negotiated, the
# display socket, the PNG of the guest's framebuffer, a clean end of the connection, and
# SIGTERM.
#
#   tests/gpu-bridge/test-vhost-qemu.sh CROSSBUF_GPU
#
# QEMU 7.2 refuses vhost-user-gpu without KVM ("vhost initialization failed: requires
# kvm"), so this needs a working /dev/kvm. Skips (77) without qemu-system-x86_64, /dev/kvm,
# busybox-static or a kernel in /boot. A developer tool, not registered with meson: on the
# machine it was written on, /dev/kvm exists but boots no guest (no serial output in 10
# minutes, with or without the device), so only its first half has run there: QEMU realizes
# vhost-user-gpu-pci against crossbuf-gpu, the connection ends cleanly when QEMU exits, and
# SIGTERM exits 0. The guest half (negotiation by Linux's virtio-gpu driver, the display
# socket, the framebuffer's PNG) has not run yet.
set -u

gpu=${1:?usage: $0 CROSSBUF_GPU}
qemu=$(command -v qemu-system-x86_64) || { echo "no qemu-system-x86_64: skipped"; exit 77; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "no usable /dev/kvm: skipped"; exit 77; }
[ -x /bin/busybox ] || { echo "no /bin/busybox (busybox-static): skipped"; exit 77; }
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] && [ -r "$kernel" ] || { echo "no readable kernel in /boot: skipped"; exit 77; }
kver=${kernel#/boot/vmlinuz-}

dir=$(mktemp -d /tmp/cb-vgpu-qemu.XXXXXX)
gpu_pid=
cleanup() {
	[ -n "$gpu_pid" ] && kill "$gpu_pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

mkdir -p "$dir/initrd/bin" "$dir/initrd/proc" "$dir/initrd/sys" "$dir/initrd/dev" \
	"$dir/initrd/lib/modules" "$dir/png"
cp /bin/busybox "$dir/initrd/bin/"
order=""
for m in virtio_pci virtio-gpu; do
	for f in $(modprobe --show-depends -S "$kver" "$m" | awk '$1 == "insmod" { print $2 }'); do
		name=$(basename "$f" .ko)
		case " $order " in *" $name "*) continue ;; esac
		cp "$f" "$dir/initrd/lib/modules/" || { echo "no module $f: skipped"; exit 77; }
		order="$order $name"
	done
done
cat >"$dir/initrd/init" <<EOS
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $order; do insmod /lib/modules/\$m.ko; done
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /dev/fb0 ] && break; sleep 1; done
echo "== drm: \$(ls /sys/class/drm | tr '\n' ' ')"
echo "== fb0: \$(cat /sys/class/graphics/fb0/virtual_size 2>/dev/null)"
dd if=/dev/urandom of=/dev/fb0 bs=4096 count=64 2>/dev/null
sleep 2
echo "== done"
poweroff -f
EOS
chmod +x "$dir/initrd/init"
(cd "$dir/initrd" && find . | cpio -o -H newc 2>/dev/null | gzip) >"$dir/initrd.gz"

"$gpu" --socket-path "$dir/gpu.sock" --backend memfd --png-dir "$dir/png" 2>"$dir/gpu.log" &
gpu_pid=$!
for _ in $(seq 100); do
	[ -S "$dir/gpu.sock" ] && break
	sleep 0.1
done

timeout "${VGPU_QEMU_TIMEOUT:-900}" "$qemu" -machine q35 -accel kvm -m 512 -smp 1 \
	-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
	-chardev socket,id=vgpu,path="$dir/gpu.sock" \
	-device vhost-user-gpu-pci,chardev=vgpu \
	-kernel "$kernel" -initrd "$dir/initrd.gz" \
	-append "console=ttyS0 panic=-1 loglevel=6" \
	-display none -serial "file:$dir/guest.log" -no-reboot -monitor none >"$dir/qemu.log" 2>&1
qemu_status=$?
sleep 0.5

kill -TERM "$gpu_pid"
wait "$gpu_pid"
gpu_status=$?
gpu_pid=

fail=0
echo "qemu exit status: $qemu_status, crossbuf-gpu exit status: $gpu_status"
cat "$dir/qemu.log"
echo "--- crossbuf-gpu"
cat "$dir/gpu.log"
echo "--- guest"
grep -E '^== |virtio|drm|fb0' "$dir/guest.log"
echo "--- png"
ls -l "$dir/png"

[ "$gpu_status" -eq 0 ] || { echo "FAIL: crossbuf-gpu did not exit 0 on SIGTERM"; fail=1; }
grep -q 'negotiated features .*RESOURCE_UUID' "$dir/gpu.log" ||
	{ echo "FAIL: RESOURCE_UUID not negotiated"; fail=1; }
grep -q 'display socket attached' "$dir/gpu.log" ||
	{ echo "FAIL: QEMU gave no display socket"; fail=1; }
grep -q 'display socket closed' "$dir/gpu.log" &&
	{ echo "FAIL: the display socket failed"; fail=1; }
grep -q '^== done' "$dir/guest.log" || { echo "FAIL: the guest did not finish"; fail=1; }
[ -s "$dir/png/scanout-0.png" ] || { echo "FAIL: no scanout PNG"; fail=1; }
grep -q 'connection ended: ' "$dir/gpu.log" &&
	{ echo "FAIL: a connection ended in error"; fail=1; }
exit $fail
