#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages crossbuf builds and tests with. Idempotent: installs only
# what is missing, and runs apt-get update only when something is.
set -euo pipefail

packages=(
	build-essential meson ninja-build pkg-config python3
	libglib2.0-dev uuid-dev libdrm-dev libgbm-dev libvirglrenderer-dev
	libavcodec-dev libavutil-dev libswscale-dev libpng-dev
	ffmpeg valgrind clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ $status == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
	exit 0
fi

sudo=()
if ((EUID != 0)); then
	sudo=(sudo)
fi
echo "setup-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
