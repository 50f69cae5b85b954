#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The decode-to-display pipeline end to end, through real processes and sockets: crossbufd,
# crossbuf-gpu and crossbuf-media, driven by crossbuf-guest. TAP.
#   - every committed stream decoded into virtio-gpu scanout buffers, each displayed
#     frame's md5 equal to ffmpeg's; the same clip in an MP4 container;
#   - a protected run: no frame row in guest RAM or in the shared memory region;
#   - crossbuf-gpu killed mid-stream: its registry entries go, crossbuf-media stays up and
#     the tool fails with a reason instead of hanging; crossbuf-media killed mid-stream;
#   - crossbuf-media stopped (SIGSTOP) mid-stream: the tool gives up after its timeout;
#   - crossbufd restarted mid-stream: the clip still plays to the end, every md5 right;
#   - bad input on the command line and in the files.
set -u
: "${CROSSBUF_GUEST:?}" "${CROSSBUFD:?}" "${CROSSBUF_GPU:?}" "${CROSSBUF_MEDIA:?}"
: "${CROSSBUFCTL:?}" "${TEST_DATA:?}"

# shellcheck source=../common/tap.sh
source "$(dirname "$0")/../common/tap.sh"

guest() { timeout 120 "$CROSSBUF_GUEST" "$@"; }

# A run must end with status 0 and its summary must say every frame matched.
play() { # play NAME [ARGS...]
	local name=$1
	shift
	guest --input "$TEST_DATA/$name" --framemd5 "$TEST_DATA/$name.nv12.framemd5" "$@" \
		>"$work/out" 2>"$work/err" || { cat "$work/out" "$work/err"; return 1; }
	local want
	want=$(grep -vc '^#' "$TEST_DATA/$name.nv12.framemd5")
	grep -q "framemd5 *$want of $want frames match" "$work/out" || { cat "$work/out"; return 1; }
}

echo "1..30"

for s in h264-176x100.h264 hevc-176x100.hevc vp8-176x100.ivf vp9-176x100.ivf \
	h264-change.h264 vp9-change.ivf; do
	check "$s: every displayed frame matches ffmpeg's framemd5" play "$s"
done

check "the summary counts copies, lookups and latency" bash -c '
	grep -q "frames copied *guest: 0 (it never maps a frame); host decoder: [0-9]* of [0-9]*" "$0" &&
	grep -q "registry lookups *decoder [0-9]* crossbufd [0-9]*" "$0" &&
	grep -q "latency (queue->flip) *p50" "$0"' "$work/out"

if command -v ffmpeg >/dev/null; then
	ffmpeg -loglevel error -i "$TEST_DATA/h264-176x100.h264" -c copy "$work/clip.mp4"
	check "an MP4 clip (length-prefixed H.264) plays with the same md5s" bash -c '
		timeout 120 "$0" --input "$1" --framemd5 "$2" | grep -q "of .* frames match"' \
		"$CROSSBUF_GUEST" "$work/clip.mp4" "$TEST_DATA/h264-176x100.h264.nv12.framemd5"
	# A longer clip for the mid-stream scenarios, displayed in real time (100 frames, 4 s).
	ffmpeg -loglevel error -f lavfi -i testsrc2=size=320x240:rate=25 -frames:v 100 \
		-c:v libx264 -g 25 -bf 2 "$work/long.mp4"
	ffmpeg -loglevel error -i "$work/long.mp4" -pix_fmt nv12 -f framemd5 "$work/long.md5"
else
	skip "an MP4 clip plays" "no ffmpeg"
fi

check "snapshots: PNGs of the scanout in --out" bash -c '
	timeout 120 "$0" --input "$1" --out "$2/png" --snapshot-every 5 >/dev/null &&
	[[ -s $2/png/scanout-0.png && -s $2/png/frame-000001.png && -s $2/png/frame-000006.png ]] &&
	[[ $(head -c 8 "$2/png/frame-000001.png" | od -An -tx1 | tr -d " ") == 89504e470d0a1a0a ]]' \
	"$CROSSBUF_GUEST" "$TEST_DATA/vp9-176x100.ivf" "$work"

# ---- protected ----
check "protected: every frame shown, no frame row in guest-visible memory" bash -c '
	timeout 120 "$0" --input "$1" --framemd5 "$2" --protected --dump-guest-ram "$3/ram" >"$3/pout" &&
	grep -q "buffers .*, protected" "$3/pout" &&
	grep -Eq "guest memory *[1-9][0-9]* frame rows searched in .*: 0 found" "$3/pout" &&
	[[ $(stat -c %s "$3/ram") -ge $((64 << 20)) ]]' \
	"$CROSSBUF_GUEST" "$TEST_DATA/h264-176x100.h264" \
	"$TEST_DATA/h264-176x100.h264.nv12.framemd5" "$work"

# ---- devices and broker of our own, for the mid-stream scenarios ----
start_host() { # start_host DIR: crossbufd, crossbuf-gpu and crossbuf-media in DIR
	local d=$1
	mkdir -p "$d"
	"$CROSSBUFD" --socket "$d/b.sock" 2>"$d/broker.log" &
	broker=$!
	pids+=($broker)
	for _ in $(seq 300); do [[ -S $d/b.sock ]] && break; sleep 0.02; done
	"$CROSSBUF_GPU" --socket-path "$d/gpu.sock" --broker "$d/b.sock" --backend memfd \
		2>"$d/gpu.log" &
	gpu=$!
	pids+=($gpu)
	"$CROSSBUF_MEDIA" --socket-path "$d/media.sock" --broker "$d/b.sock" 2>"$d/media.log" &
	media=$!
	pids+=($media)
	for _ in $(seq 300); do [[ -S $d/gpu.sock && -S $d/media.sock ]] && break; sleep 0.02; done
}
guest_on() { # guest_on DIR ARGS...: the tool against the devices in DIR, in the background
	local d=$1
	shift
	timeout 60 "$CROSSBUF_GUEST" --gpu-socket "$d/gpu.sock" --media-socket "$d/media.sock" \
		--broker "$d/b.sock" "$@" >"$d/out" 2>"$d/err" &
	tool=$!
	pids+=($tool)
}
wait_frame() { # wait_frame DIR N: until the tool displayed frame N (20 s at most)
	for _ in $(seq 1000); do
		grep -q "^frame $2 displayed" "$1/out" 2>/dev/null && return 0
		kill -0 "$tool" 2>/dev/null || return 1
		sleep 0.02
	done
	return 1
}
entries() { "$CROSSBUFCTL" --socket "$1/b.sock" list 2>/dev/null | grep -c '^[0-9a-f]\{8\}-'; }
has_entries() { (($(entries "$1") > 0)); }
no_entries() { (($(entries "$1") == 0)); }
exited_saying() { # exited_saying STATUS DIR TEXT: the tool ended with STATUS, TEXT in its stderr
	(($1 == $3)) || { echo "exit status $1, expected $3"; cat "$2/out" "$2/err"; return 1; }
	[[ -z $4 ]] || grep -q "$4" "$2/err" || { cat "$2/err"; return 1; }
}

if [[ -f $work/long.mp4 ]]; then
	d=$work/kill-gpu
	start_host "$d"
	guest_on "$d" --input "$work/long.mp4" --realtime --progress
	check "gpu killed: the tool is mid-stream" wait_frame "$d" 10
	check "gpu killed: the scanout buffers are in crossbufd" has_entries "$d"
	kill -KILL "$gpu"
	wait "$tool" 2>/dev/null
	status=$?
	check "gpu killed: the tool exits 1 saying the gpu hung up (no hang)" \
		exited_saying "$status" "$d" 1 "virtio-gpu device hung up"
	check "gpu killed: the dead exporter's entries are gone from crossbufd" no_entries "$d"
	check "gpu killed: crossbuf-media is still up" kill -0 "$media"
	kill -TERM "$media" "$broker"

	d=$work/kill-media
	start_host "$d"
	guest_on "$d" --input "$work/long.mp4" --realtime --progress
	check "media killed: the tool is mid-stream" wait_frame "$d" 10
	kill -KILL "$media"
	wait "$tool" 2>/dev/null
	status=$?
	check "media killed: the tool exits 1 saying the decoder hung up (no hang)" \
		exited_saying "$status" "$d" 1 "virtio-media device hung up"
	check "media killed: the tool freed its scanout resources" no_entries "$d"
	check "media killed: crossbuf-gpu is still up" kill -0 "$gpu"
	kill -TERM "$gpu" "$broker"

	d=$work/stop-media
	start_host "$d"
	guest_on "$d" --input "$work/long.mp4" --realtime --progress --timeout 1.5
	check "media stuck: the tool is mid-stream" wait_frame "$d" 10
	kill -STOP "$media"
	wait "$tool" 2>/dev/null
	status=$?
	kill -CONT "$media"
	check "media stuck (SIGSTOP): the tool gives up after its --timeout, exit 1" \
		exited_saying "$status" "$d" 1 "virtio-media device did not answer in time (1.5 s"
	check "media stuck: the tool freed its scanout resources" no_entries "$d"
	kill -TERM "$gpu" "$media" "$broker"

	d=$work/restart-broker
	start_host "$d"
	guest_on "$d" --input "$work/long.mp4" --framemd5 "$work/long.md5" --realtime --progress
	check "broker restart: the tool is mid-stream" wait_frame "$d" 10
	kill -KILL "$broker"
	sleep 0.3
	"$CROSSBUFD" --socket "$d/b.sock" 2>"$d/broker2.log" &
	broker=$!
	pids+=($broker)
	wait "$tool" 2>/dev/null
	status=$?
	check "broker restart: the whole clip is displayed" exited_saying "$status" "$d" 0 ""
	check "broker restart: every md5 right" grep -q "framemd5 *100 of 100 frames match" "$d/out"
	kill -TERM "$gpu" "$media" "$broker"
else
	for _ in $(seq 15); do skip "mid-stream scenarios" "no ffmpeg to make the clip"; done
fi

# ---- bad input ----
check "a missing clip: exit 1 with the reason" bash -c '
	"$0" --input /nonexistent.mp4 2>"$1/e"; [[ $? == 1 ]] && grep -q "nonexistent" "$1/e"' \
	"$CROSSBUF_GUEST" "$work"
check "a clip that is not video: exit 1" bash -c '
	"$0" --input "$1" 2>/dev/null; [[ $? == 1 ]]' "$CROSSBUF_GUEST" "$TEST_DATA/make-streams.sh"
check "md5s of another clip: exit 1, frames differ" bash -c '
	timeout 120 "$0" --input "$1" --framemd5 "$2" >/dev/null 2>"$3/e"; [[ $? == 1 ]] && grep -q "differ" "$3/e"' \
	"$CROSSBUF_GUEST" "$TEST_DATA/vp9-176x100.ivf" "$TEST_DATA/vp8-176x100.ivf.nv12.framemd5" "$work"
check "usage errors: exit 2" bash -c '
	"$0" 2>/dev/null; a=$?; "$0" --input x --frames -1 2>/dev/null; b=$?;
	"$0" --input x --gpu-socket /s 2>/dev/null; c=$?; [[ $a == 2 && $b == 2 && $c == 2 ]]' \
	"$CROSSBUF_GUEST"
check "--timeout out of range or not a number: exit 2 with the reason" bash -c '
	for t in 0 0.05 3601 abc nan inf -1 ""; do
		"$0" --input x --timeout "$t" 2>"$1/e"; [[ $? == 2 ]] || exit 1
		grep -q "is not a number of seconds from 0.1 to 3600" "$1/e" || exit 1
	done' "$CROSSBUF_GUEST" "$work"

tap_exit
