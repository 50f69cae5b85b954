#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job, from a fresh Debian 12 machine without a GPU: installs dependencies, builds,
# and runs the zero-copy decode-to-display pipeline. crossbuf-guest plays the VM: it starts
# crossbufd, crossbuf-gpu (memfd backend) and crossbuf-media, allocates NV12 scanout
# buffers on virtio-gpu, names them with RESOURCE_ASSIGN_UUID, hands them to the virtio-media
# decoder as object buffers, and puts every decoded frame on the display.
#
#   scripts/demo.sh [CLIP]     default: a 5 s 640x360 H.264 clip made here with ffmpeg
#
# Output: build/demo/normal/*.png and build/demo/protected/*.png (what the display showed),
# and a summary table per run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-deps.sh
scripts/build.sh build

out=build/demo
mkdir -p "$out"
clip=${1:-}
if [[ -z $clip ]]; then
	clip=$out/clip.mp4
	if [[ ! -s $clip ]]; then
		# B-frames on, so frames come back out of decoding order.
		ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=30 -frames:v 150 \
			-c:v libx264 -preset fast -g 30 -bf 2 -pix_fmt yuv420p "$clip"
	fi
fi
md5=$out/$(basename "$clip").framemd5
ffmpeg -loglevel error -y -i "$clip" -pix_fmt nv12 -f framemd5 "$md5"

step() { printf '\n== %s\n' "$*"; }

step "1. Decode $clip into virtio-gpu scanout buffers, check every frame against ffmpeg"
build/guest/crossbuf-guest --input "$clip" --framemd5 "$md5" --out "$out/normal" \
	--snapshot-every 50 --verbose

step "2. The same with protected buffers: memfd_secret memory, never in guest RAM"
build/guest/crossbuf-guest --input "$clip" --framemd5 "$md5" --out "$out/protected" \
	--protected

step "Done: PNG snapshots of the display in $out/normal (protected runs show a placeholder)"
ls "$out/normal" "$out/protected"
