#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The registry on its own, from a fresh Debian 12 machine: installs dependencies, builds, starts a
# crossbufd broker, exports a video frame from one process and resolves it from another,
# and shows what happened at each step.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-deps.sh
scripts/build.sh build

bin=build/registry
work=$(mktemp -d)
broker_pid=""
exporter_pid=""
cleanup() {
	[[ -n $exporter_pid ]] && kill "$exporter_pid" 2>/dev/null || true
	[[ -n $broker_pid ]] && kill "$broker_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
export CROSSBUF_SOCKET=$work/broker.sock

step() { printf '\n== %s\n' "$*"; }

step "1. Start the broker (no config file: only this user and root may connect)"
"$bin/crossbufd" 2>"$work/broker.log" &
broker_pid=$!
for _ in $(seq 100); do [[ -S $CROSSBUF_SOCKET ]] && break; sleep 0.05; done
cat "$work/broker.log"

step "2. Make a 320x240 NV12 frame with ffmpeg"
ffmpeg -loglevel error -f lavfi -i testsrc2=size=320x240 -frames:v 1 -pix_fmt nv12 \
	-f rawvideo "$work/frame.nv12"
echo "frame.nv12: $(stat -c %s "$work/frame.nv12") bytes, md5 $(md5sum <"$work/frame.nv12" | cut -c1-32)"

step "3. Process A exports it: a sealed memfd registered under a fresh UUID"
"$bin/crossbufctl" export "$work/frame.nv12" --format NV12 --width 320 --height 240 --hold \
	>"$work/uuid" &
exporter_pid=$!
for _ in $(seq 100); do [[ -s $work/uuid ]] && break; sleep 0.05; done
uuid=$(cat "$work/uuid")
echo "process $exporter_pid exported $uuid"

step "4. Process B resolves the UUID: metadata, plus a new fd to the same memory"
"$bin/crossbufctl" lookup "$uuid" --out "$work/resolved.nv12"
echo "resolved.nv12: md5 $(md5sum <"$work/resolved.nv12" | cut -c1-32)"
if cmp -s "$work/frame.nv12" "$work/resolved.nv12"; then
	echo "=> B read exactly the bytes A exported, through the fd the broker handed out"
else
	echo "=> MISMATCH" >&2
	exit 1
fi

step "5. What the broker holds"
"$bin/crossbufctl" list
"$bin/crossbufctl" stats

step "6. A watcher is told when the exporter dies, and the entry is gone"
"$bin/crossbufctl" watch "$uuid" &
watcher_pid=$!
sleep 0.2
echo "SIGKILL to the exporter, process $exporter_pid"
kill -KILL "$exporter_pid"
{ wait "$exporter_pid"; } 2>/dev/null || true
exporter_pid=""
wait "$watcher_pid"
if "$bin/crossbufctl" lookup "$uuid" >/dev/null 2>"$work/lookup.err"; then
	echo "=> the entry outlived its exporter" >&2
	exit 1
fi
echo "=> a new lookup is refused: $(cat "$work/lookup.err")"
"$bin/crossbufctl" stats

step "Done: export, cross-process lookup, ownership and removal all worked."
