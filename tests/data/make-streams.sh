#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Makes the codec test streams under tests/data/ and their reference framemd5 files, with
# Debian 12's ffmpeg 5.1 (libx264, libx265, libvpx). The outputs are committed; rerun this
# only to change them (encoders are deterministic here: single-threaded, fixed sources).
#
# Framing, as the V4L2 stateful decoder sees it (and as test-codec-avcodec.c feeds it):
#  - H.264 and HEVC are Annex B byte streams (.h264, .hevc) with an access unit delimiter
#    starting every access unit, so a test can cut them into one frame per buffer; the
#    codec also accepts any other split. STREAM.pts lists the presentation timestamp of
#    each access unit in decode order (from the Matroska file the stream was cut from).
#  - VP8 and VP9 are IVF files: one frame (VP9: one superframe) per IVF record, fed as
#    exactly one frame per buffer with the record's timestamp.
#  - *-change.* are two encodes of different sizes back to back (a resolution change).
#
# STREAM.nv12.framemd5 and STREAM.yuv420p.framemd5 are `ffmpeg -i STREAM -pix_fmt FMT -f
# framemd5` of the stream: md5 of each frame's visible rectangle, tightly packed (-autoscale 0
# keeps the second size of a resolution change instead of scaling it to the first).
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ff=(ffmpeg -hide_banner -loglevel error -y)
src() { # WxH frames
	echo "-f lavfi -i testsrc2=size=$1:rate=25,format=yuv420p -frames:v $2"
}

# H.264 High, B-frames (reordering), 176x100 (cropped from 176x112).
h264() { # out.mkv WxH frames
	"${ff[@]}" $(src "$2" "$3") -c:v libx264 -preset medium -bf 2 -g 12 -threads 1 \
		-x264-params aud=1 "$1"
}
hevc() {
	"${ff[@]}" $(src "$2" "$3") -c:v libx265 -preset fast -g 12 -threads 1 \
		-x265-params aud=1:bframes=2:log-level=error:pools=none:frame-threads=1 "$1"
}
annexb() { # in.mkv out.h264|out.hevc
	"${ff[@]}" -i "$1" -c:v copy -f "${2##*.}" "$2"
	ffprobe -v error -select_streams v -show_entries packet=pts -of csv=p=0 "$1" > "$2.pts"
}
vpx() { # codec out.ivf WxH frames
	"${ff[@]}" $(src "$3" "$4") -c:v "$1" -b:v 300k -g 10 -auto-alt-ref 1 -lag-in-frames 8 \
		-threads 1 "$2"
}
md5s() {
	for fmt in nv12 yuv420p; do
		"${ff[@]}" -i "$1" -fps_mode passthrough -autoscale 0 -pix_fmt "$fmt" -f framemd5 "$1.$fmt.framemd5"
	done
}

h264 "$tmp/h264.mkv" 176x100 20 && annexb "$tmp/h264.mkv" h264-176x100.h264
hevc "$tmp/hevc.mkv" 176x100 12 && annexb "$tmp/hevc.mkv" hevc-176x100.hevc
vpx libvpx vp8-176x100.ivf 176x100 15
vpx libvpx-vp9 vp9-176x100.ivf 176x100 15

# Resolution change: 176x100 then 96x64, each starting with an IDR / key frame.
annexb_change() { # h264|hevc
	"$1" "$tmp/a.mkv" 176x100 8 && annexb "$tmp/a.mkv" "$tmp/a.$1"
	"$1" "$tmp/b.mkv" 96x64 8 && annexb "$tmp/b.mkv" "$tmp/b.$1"
	cat "$tmp/a.$1" "$tmp/b.$1" > "$1-change.$1"
	last=$(sort -n "$tmp/a.$1.pts" | tail -n 1)
	{ cat "$tmp/a.$1.pts"; awk -v o=$((last + 40)) '{ print $1 + o }' "$tmp/b.$1.pts"; } \
		> "$1-change.$1.pts"
}
ivf_change() { # libvpx|libvpx-vp9 out.ivf
	vpx "$1" "$tmp/a.ivf" 176x100 8
	vpx "$1" "$tmp/b.ivf" 96x64 8
	# IVF: 32-byte file header, then records (le32 size, le64 pts, data); B's pts follow A's.
	python3 - "$tmp/a.ivf" "$tmp/b.ivf" "$2" <<'PY'
import struct, sys
a, b = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read()
out, last = bytearray(a), 0
off = 32
while off < len(a):
    size, pts = struct.unpack_from('<IQ', a, off)
    last = max(last, pts)
    off += 12 + size
off = 32
while off < len(b):
    size, pts = struct.unpack_from('<IQ', b, off)
    out += struct.pack('<IQ', size, pts + last + 1) + b[off + 12:off + 12 + size]
    off += 12 + size
open(sys.argv[3], 'wb').write(out)
PY
}
annexb_change h264
annexb_change hevc
ivf_change libvpx vp8-change.ivf
ivf_change libvpx-vp9 vp9-change.ivf

# 10-bit streams: not decodable into 8-bit NV12/YUV420 pictures (the codec must refuse them
# cleanly). No references: no frame may come out.
"${ff[@]}" $(src 64x64 5) -pix_fmt yuv420p10le -c:v libx264 -threads 1 h264-10bit-64x64.h264
"${ff[@]}" $(src 64x64 5) -pix_fmt yuv420p10le -c:v libvpx-vp9 -threads 1 vp9-10bit-64x64.ivf

for f in h264-176x100.h264 hevc-176x100.hevc vp8-176x100.ivf vp9-176x100.ivf \
	h264-change.h264 hevc-change.hevc vp8-change.ivf vp9-change.ivf; do
	md5s "$f"
done
