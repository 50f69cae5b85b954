#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Configures (once) and builds crossbuf in DIR (default: build). Extra args go to meson setup.
# Quiet when it works; prints the end of meson's or ninja's output when it does not.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [[ ! -f $dir/build.ninja ]]; then
	if ! meson setup "$dir" "$@" >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		exit 1
	fi
fi
if ! meson compile -C "$dir" >"$log" 2>&1; then
	grep -E "error|FAILED" "$log" | head -n 40 >&2 || tail -n 40 "$log" >&2
	exit 1
fi
