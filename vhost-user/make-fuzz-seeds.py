#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora of the vhost-user fuzz targets:
fuzz/corpus/vhost-user-message (one file per request kind, valid and broken) and
fuzz/corpus/vhost-user-virtqueue (guest memory images with rings, good and hostile).
Run from the source root; the files are committed."""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus")


def write(folder, name, data):
    path = os.path.join(ROOT, folder)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)


# ---- messages: selector byte (bit 0 backend channel, bit 1 reply, bits 2-5 fds) + message


def msg(request, payload=b"", flags=1, fds=0, backend=False, reply=False, size=None):
    sel = (1 if backend else 0) | (2 if reply else 0) | (fds << 2)
    size = len(payload) if size is None else size
    return bytes([sel]) + struct.pack("<III", request, flags, size) + payload


def u64(v):
    return struct.pack("<Q", v)


def state(index, num):
    return struct.pack("<II", index, num)


def region(gpa, size, uaddr, off):
    return struct.pack("<QQQQ", gpa, size, uaddr, off)


def messages():
    m = {}
    m["get-features"] = msg(1)
    m["set-features"] = msg(2, u64(1 << 32 | 1 << 30 | 1 << 28))
    m["set-owner"] = msg(3)
    m["reset-owner"] = msg(4)
    m["mem-table-1"] = msg(5, struct.pack("<II", 1, 0) + region(0, 1 << 20, 0x7f0000000000, 0), fds=1)
    m["mem-table-2"] = msg(5, struct.pack("<II", 2, 0) + region(0, 4096, 0x10000, 0)
                           + region(4096, 4096, 0x20000, 4096), fds=2)
    m["mem-table-full"] = msg(5, struct.pack("<II", 2, 0) + region(0, 4096, 0x10000, 0)
                              + region(4096, 4096, 0x20000, 4096) + bytes(6 * 32), fds=2)
    m["mem-table-overlap"] = msg(5, struct.pack("<II", 2, 0) + region(0, 8192, 0x10000, 0)
                                 + region(4096, 4096, 0x20000, 4096), fds=2)
    m["mem-table-wrap"] = msg(5, struct.pack("<II", 1, 0) + region(2**64 - 4096, 8192, 0, 0), fds=1)
    m["mem-table-9"] = msg(5, struct.pack("<II", 9, 0) + bytes(9 * 32), fds=8)
    m["vring-num"] = msg(8, state(0, 256))
    m["vring-addr"] = msg(9, struct.pack("<IIQQQQ", 0, 0, 0x10000, 0x12000, 0x11000, 0))
    m["vring-base"] = msg(10, state(1, 7))
    m["get-vring-base"] = msg(11, state(0, 0))
    m["vring-kick"] = msg(12, u64(1), fds=1)
    m["vring-kick-nofd"] = msg(12, u64(1 | 0x100))
    m["vring-call"] = msg(13, u64(0), fds=1)
    m["vring-err"] = msg(14, u64(0), fds=1)
    m["get-protocol-features"] = msg(15)
    m["set-protocol-features"] = msg(16, u64(0x140228))
    m["get-queue-num"] = msg(17)
    m["vring-enable"] = msg(18, state(0, 1))
    m["backend-req-fd"] = msg(21, fds=1)
    m["get-config"] = msg(24, struct.pack("<III", 0, 16, 0) + bytes(16))
    m["set-config"] = msg(25, struct.pack("<III", 8, 8, 0) + b"crossbuf")
    m["config-too-big"] = msg(25, struct.pack("<III", 200, 100, 0) + bytes(100))
    m["get-shmem-config"] = msg(44)
    m["need-reply"] = msg(2, u64(0), flags=1 | 8)
    m["reply-flag"] = msg(1, flags=1 | 4)
    m["bad-version"] = msg(1, flags=2)
    m["short"] = msg(2, b"\0\0\0\0")
    m["size-lies"] = msg(2, u64(0), size=0xFFFFFFFF)
    m["unknown"] = msg(200)
    m["log-base"] = msg(6, bytes(16), fds=1)
    m["gpu-set-socket"] = msg(33, fds=1)
    # backend channel
    mmap = struct.pack("<B7xQQQQ", 0, 0, 65536, 8192, 1)
    m["b-shmem-map"] = msg(9, mmap, backend=True, fds=1)
    m["b-shmem-unmap"] = msg(10, mmap, backend=True)
    m["b-shmem-map-wrap"] = msg(9, struct.pack("<B7xQQQQ", 0, 2**64 - 1, 0, 2, 0), backend=True, fds=1)
    m["b-config-change"] = msg(2, backend=True)
    m["b-object-add"] = msg(6, bytes(range(16)), backend=True)
    m["b-object-remove"] = msg(7, bytes(range(16)), backend=True)
    m["b-object-lookup"] = msg(8, bytes(range(16)), backend=True)
    # replies
    m["r-features"] = msg(1, u64(1 << 32), flags=5, reply=True)
    m["r-ack"] = msg(2, u64(0), flags=5, reply=True)
    m["r-config"] = msg(24, struct.pack("<III", 0, 4, 0) + b"abcd", flags=5, reply=True)
    m["r-shmem-config"] = msg(44, struct.pack("<II", 1, 0) + u64(1 << 20) + bytes(255 * 8),
                              flags=5, reply=True)
    m["r-vring-base"] = msg(11, state(0, 3), flags=5, reply=True)
    for name, data in m.items():
        write("vhost-user-message", name, data)


# ---- rings: 64 KiB at gpa 0x10000; desc at +0, avail at +0x100, used at +0x200 (16 entries)

BASE = 0x10000
NEXT, WRITE, INDIRECT = 1, 2, 4


def ring(descs, heads, avail_idx=None, extra=()):
    mem = bytearray(0x800)
    for i, (addr, length, flags, nxt) in enumerate(descs):
        struct.pack_into("<QIHH", mem, 16 * i, addr, length, flags, nxt)
    struct.pack_into("<HH", mem, 0x100, 0, len(heads) if avail_idx is None else avail_idx)
    for i, h in enumerate(heads):
        struct.pack_into("<H", mem, 0x104 + 2 * i, h)
    for off, data in extra:
        if len(mem) < off + len(data):
            mem.extend(bytes(off + len(data) - len(mem)))
        mem[off:off + len(data)] = data
    return bytes(mem)


def table(descs):
    return b"".join(struct.pack("<QIHH", *d) for d in descs)


def rings():
    buf_in, buf_out = BASE + 0x1000, BASE + 0x2000
    r = {}
    r["empty"] = ring([], [])
    r["one"] = ring([(buf_in, 64, NEXT, 1), (buf_out, 64, WRITE, 0)], [0])
    r["two-chains"] = ring([(buf_in, 64, 0, 0), (buf_in, 8, NEXT, 2), (buf_out, 8, WRITE, 0)], [0, 1])
    r["straddle"] = ring([(BASE + 0x7f00, 0x200, 0, 0)], [0])
    r["zero-length"] = ring([(buf_in, 0, NEXT, 1), (buf_out, 16, WRITE, 0)], [0])
    r["indirect"] = ring([(BASE + 0x3000, 32, INDIRECT, 0)], [0],
                         extra=[(0x3000, table([(buf_in, 16, NEXT, 1), (buf_out, 16, WRITE, 0)]))])
    r["indirect-nested"] = ring([(BASE + 0x3000, 16, INDIRECT, 0)], [0],
                                extra=[(0x3000, table([(BASE + 0x3000, 16, INDIRECT, 0)]))])
    r["indirect-next"] = ring([(BASE + 0x3000, 16, INDIRECT | NEXT, 1), (buf_out, 8, WRITE, 0)], [0])
    r["indirect-odd"] = ring([(BASE + 0x3000, 20, INDIRECT, 0)], [0])
    r["loop"] = ring([(buf_in, 16, NEXT, 1), (buf_in, 16, NEXT, 0)], [0])
    r["head-range"] = ring([], [40])
    r["next-range"] = ring([(buf_in, 16, NEXT, 300)], [0])
    r["unmapped"] = ring([(0x1000, 16, 0, 0)], [0])
    r["wrap"] = ring([(2**64 - 8, 16, 0, 0)], [0])
    r["order"] = ring([(buf_out, 16, WRITE | NEXT, 1), (buf_in, 16, 0, 0)], [0])
    r["avail-jump"] = ring([], [], avail_idx=100)
    for name, data in r.items():
        write("vhost-user-virtqueue", name, data)


# ---- the whole backend: le16 n, n bytes of guest RAM, then a message stream

UADDR = 0x7F0000000000


def hdr(request, payload=b"", flags=1):
    return struct.pack("<III", request, flags, len(payload)) + payload


def setup_stream(protocol=0x140228, ack=True):
    f = 1 | (8 if ack else 0)
    s = hdr(3, flags=f) + hdr(1) + hdr(15) + hdr(16, u64(protocol), f) + hdr(17)
    s += hdr(21, flags=f)
    s += hdr(2, u64(1 << 32 | 1 << 30 | 1 << 28 | 1), f)
    s += hdr(5, struct.pack("<II", 1, 0) + region(0, 1 << 20, UADDR, 0), f)
    s += hdr(8, state(0, 16), f) + hdr(10, state(0, 0), f)
    s += hdr(9, struct.pack("<IIQQQQ", 0, 0, UADDR + 0x1000, UADDR + 0x3000, UADDR + 0x2000, 0), f)
    s += hdr(13, u64(0), f) + hdr(12, u64(0), f) + hdr(18, state(0, 1), f)
    return s


def guest_ram(descs, heads, tables=()):
    mem = bytearray(0x5000)
    for i, (addr, length, flags, nxt) in enumerate(descs):
        struct.pack_into("<QIHH", mem, 0x1000 + 16 * i, addr, length, flags, nxt)
    struct.pack_into("<HH", mem, 0x2000, 0, len(heads))
    for i, h in enumerate(heads):
        struct.pack_into("<H", mem, 0x2004 + 2 * i, h)
    for off, data in tables:
        mem[off:off + len(data)] = data
    return struct.pack("<H", len(mem)) + bytes(mem)


def backend_streams():
    one = [(0x4000, 64, NEXT, 1), (0x4800, 64, WRITE, 0)]
    b = {}
    b["setup"] = guest_ram([], []) + setup_stream()
    b["one-request"] = guest_ram(one, [0]) + setup_stream()
    b["indirect"] = guest_ram([(0x3800, 32, INDIRECT, 0)], [0],
                              [(0x3800, table([(0x4000, 16, NEXT, 1), (0x4800, 16, WRITE, 0)]))]) \
        + setup_stream()
    b["loop"] = guest_ram([(0x4000, 16, NEXT, 0)], [0]) + setup_stream()
    b["no-ack"] = guest_ram(one, [0]) + setup_stream(protocol=0x220, ack=False)
    b["config-shmem-stop"] = guest_ram(one, [0]) + setup_stream() + hdr(24, struct.pack(
        "<III", 0, 16, 0) + bytes(16)) + hdr(25, struct.pack("<III", 4, 4, 0) + b"abcd", 9) \
        + hdr(44) + hdr(11, state(0, 0)) + hdr(4, flags=9)
    b["remap"] = guest_ram(one, [0]) + setup_stream() + hdr(
        5, struct.pack("<II", 2, 0) + region(0, 1 << 19, UADDR, 0)
        + region(1 << 19, 1 << 19, UADDR + (1 << 19), 1 << 19), 9)
    b["unknown"] = guest_ram([], []) + hdr(200, flags=9) + hdr(6, bytes(16), 9) + hdr(1)
    b["bad-first"] = guest_ram([], []) + hdr(1, flags=5)
    for name, data in b.items():
        write("vhost-user-backend", name, data)


if __name__ == "__main__":
    messages()
    rings()
    backend_streams()
