#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Runs the gpu-bridge tests that need a render node (gpu-bridge-hw-gbm, gpu-bridge-hw-virgl)
# inside a Debian guest with a virtio-gpu render node: QEMU's virtio-gpu-gl-pci, virgl on
# the host's llvmpipe, under TCG (no KVM, no GPU needed). The host's root is the guest's,
# read-only over 9p, so the build directory is used as it is.
#
#   tests/gpu-bridge/vm-hw-test.sh BUILD_DIR
#
# Needs (Debian 12): qemu-system-x86 qemu-system-gui busybox-static linux-image-amd64.
# A developer tool: not run by CI, which has no QEMU.
set -eu

build=$(realpath "${1:?usage: $0 BUILD_DIR}")
test_bin="$build/tests/gpu-bridge/test-gpu-hw"
[ -x "$test_bin" ] || { echo "no $test_bin: build first" >&2; exit 1; }
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || { echo "no kernel in /boot: apt-get install linux-image-amd64" >&2; exit 77; }
kver=${kernel#/boot/vmlinuz-}
command -v qemu-system-x86_64 >/dev/null || { echo "no qemu-system-x86_64" >&2; exit 77; }
[ -x /bin/busybox ] || { echo "no /bin/busybox: apt-get install busybox-static" >&2; exit 77; }

work=$(mktemp -d /tmp/crossbuf-vm-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/initrd/bin" "$work/initrd/mnt" "$work/initrd/proc" "$work/initrd/sys" \
	"$work/initrd/dev" "$work/initrd/lib/modules"
cp /bin/busybox "$work/initrd/bin/"

# Just enough modules to mount the host's root over virtio-9p; the rest load from there.
mods=""
for m in virtio_pci 9pnet_virtio 9p; do
	mods="$mods $(modprobe --show-depends -S "$kver" "$m" | awk '$1 == "insmod" { print $2 }')"
done
order=""
for f in $mods; do
	name=$(basename "$f" .ko)
	case " $order " in *" $name "*) continue ;; esac
	cp "$f" "$work/initrd/lib/modules/"
	order="$order $name"
done

cat >"$work/run-tests.sh" <<EOS
#!/bin/sh
export XDG_CACHE_HOME=/run HOME=/run
modprobe virtio-gpu
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /dev/dri/renderD128 ] && break; sleep 1; done
echo "== gpu-bridge-hw-gbm"
"$test_bin"; echo "== rc=\$?"
echo "== gpu-bridge-hw-virgl"
CROSSBUF_TEST_VIRGL=1 "$test_bin"; echo "== rc=\$?"
EOS
chmod +x "$work/run-tests.sh"

cat >"$work/initrd/init" <<EOS
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $order; do insmod /lib/modules/\$m.ko; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /mnt
mount -t proc proc /mnt/proc; mount -t sysfs sys /mnt/sys; mount -t devtmpfs dev /mnt/dev
mount -t tmpfs tmp /mnt/run
chroot /mnt "$work/run-tests.sh"
poweroff -f
EOS
chmod +x "$work/initrd/init"
(cd "$work/initrd" && find . | cpio -o -H newc 2>/dev/null | gzip) >"$work/initrd.gz"

timeout 600 qemu-system-x86_64 -accel tcg -m 2048 -smp 2 -nographic -no-reboot \
	-kernel "$kernel" -initrd "$work/initrd.gz" -append "console=ttyS0 quiet" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-device virtio-gpu-gl-pci -display egl-headless,rendernode=/dev/null \
	>"$work/console.log" 2>&1 || true
sed -n '/^== gpu-bridge/,$p' "$work/console.log" | grep -v "reboot: Power down"
# every test ran and passed
[ "$(grep -c '^== rc=0' "$work/console.log")" -eq 2 ]
