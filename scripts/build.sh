#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Configures (once) and builds crossbuf in DIR (default: build). Extra args go to meson setup.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [[ ! -f $dir/build.ninja ]]; then
	meson setup "$dir" "$@" >/dev/null
fi
meson compile -C "$dir" >/dev/null
