#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole pipeline (crossbuf-guest with crossbufd, crossbuf-gpu and crossbuf-media as
# processes, every frame decoded into a virtio-gpu scanout buffer and flushed) against bare
# single-threaded decoding of the same clip by the ffmpeg CLI (-threads 1, -f null), in the
# same run, interleaved. Prints fps of each and the ratio, per size.
#   CROSSBUF_GUEST=build/guest/crossbuf-guest bench/bench-pipeline.sh [REPS]
set -euo pipefail
: "${CROSSBUF_GUEST:?}"
reps=${1:-${CROSSBUF_BENCH_REPS:-5}}
command -v ffmpeg >/dev/null || { echo "bench-pipeline: no ffmpeg" >&2; exit 77; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "bench-pipeline: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $reps reps"
printf '%-10s %8s %14s %14s %8s %14s\n' size frames "bare fps" "pipeline fps" ratio "p50 latency"
for size in 1280x720 1920x1080; do
	clip=$work/$size.mp4
	ffmpeg -loglevel error -f lavfi -i "testsrc2=size=$size:rate=30" -frames:v 300 \
		-c:v libx264 -preset fast -g 30 -bf 2 -pix_fmt yuv420p "$clip"
	: >"$work/bare" && : >"$work/pipe" && : >"$work/lat"
	for _ in $(seq "$reps"); do
		# bare: demux + decode on one thread, frames dropped; ffmpeg's own wall clock
		ffmpeg -nostdin -loglevel info -benchmark -threads 1 -i "$clip" -f null - 2>&1 |
			grep -oP 'rtime=\K[0-9.]+' | awk '{printf "%.3f\n", 300 / $1}' >>"$work/bare"
		"$CROSSBUF_GUEST" --input "$clip" >"$work/out"
		grep -oP '^fps +\K[0-9.]+' "$work/out" >>"$work/pipe"
		grep -oP 'p50 \K[0-9.]+' "$work/out" >>"$work/lat"
	done
	bare=$(median <"$work/bare")
	pipe=$(median <"$work/pipe")
	printf '%-10s %8d %14.1f %14.1f %8.3f %11.2f ms\n' "$size" 300 "$bare" "$pipe" \
		"$(awk -v p="$pipe" -v b="$bare" 'BEGIN {print p / b}')" "$(median <"$work/lat")"
	echo "  bare runs: $(tr '\n' ' ' <"$work/bare")"
	echo "  pipeline runs: $(tr '\n' ' ' <"$work/pipe")"
done
