#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages crossbuf builds and tests with. Idempotent: installs only
# what is missing, and runs apt-get update only when something is.
set -euo pipefail

packages=(
	build-essential meson ninja-build pkg-config python3
	libglib2.0-dev uuid-dev libdrm-dev libgbm-dev libvirglrenderer-dev
	libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libpng-dev
	ffmpeg valgrind clang libclang-rt-14-dev
)

# For the tests that boot a guest (the vhost-user backend against Debian's QEMU): without
# them those tests skip, so a failure to install them is a warning, not an error.
optional=(qemu-system-x86 busybox-static linux-image-amd64)

missing_of() {
	local p status
	for p in "$@"; do
		status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		[[ $status == "install ok installed" ]] || echo "$p"
	done
}

mapfile -t missing < <(missing_of "${packages[@]}")
mapfile -t missing_optional < <(missing_of "${optional[@]}")
if ((${#missing[@]} == 0 && ${#missing_optional[@]} == 0)); then
	exit 0
fi

sudo=()
if ((EUID != 0)); then
	sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
if ((${#missing[@]} > 0)); then
	echo "setup-deps: installing ${missing[*]}" >&2
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ((${#missing_optional[@]} > 0)); then
	echo "setup-deps: installing ${missing_optional[*]} (for the guest-booting tests)" >&2
	if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing_optional[@]}" \
		>/dev/null; then
		echo "setup-deps: warning: could not install ${missing_optional[*]};" \
			"the tests that boot a guest will be skipped" >&2
	fi
fi
