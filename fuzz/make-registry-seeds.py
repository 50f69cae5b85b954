#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the seed corpus of the registry-request fuzz target (fuzz/corpus/registry-request):
# valid requests of every type and the malformed shapes the broker must refuse. Each file
# is one byte of fd count, then one packet (registry/protocol.h, host byte order).
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "registry-request")
os.makedirs(out, exist_ok=True)

HELLO, EXPORT, LOOKUP, REMOVE, WATCH, UNWATCH, LIST, STATS = range(1, 9)
UUID = bytes.fromhex("0f8e4b4a1c2d4e5f8a9b0c1d2e3f4a5b")


def hdr(t, size, serial=1, reserved=0):
    return struct.pack("<IIII", t, serial, size, reserved)


def info(w=64, h=32, fourcc=0x3231564E, planes=2, mod=0, offsets=(0, 2048, 0, 0),
         strides=(64, 64, 0, 0), flags=0, kind=1, res=7, fd_kind=0, size=0):
    return struct.pack("<IIIIQ4I4IIIIIQ", w, h, fourcc, planes, mod, *offsets, *strides,
                       flags, kind, res, fd_kind, size)


def hello(domain=b"default", version=1, rights=0):
    body = struct.pack("<IIII", version, 3, rights, 0) + domain.ljust(64, b"\0")
    return hdr(HELLO, 16 + len(body)) + body


def export(uuid=UUID, i=None):
    body = uuid + (i if i is not None else info())
    return hdr(EXPORT, 16 + len(body)) + body


def uuid_req(t, uuid=UUID):
    return hdr(t, 32) + uuid


seeds = {
    "hello": (0, hello()),
    "hello-admin": (0, hello(rights=3)),
    "hello-bad-version": (0, hello(version=2)),
    "hello-bad-domain": (0, hello(domain=b"a/b")),
    "hello-unterminated": (0, hello(domain=b"x" * 64)),
    "export": (1, export()),
    "export-new-uuid": (1, export(uuid=bytes(16))),
    "export-opaque": (1, export(i=info(0, 0, 0, 0, 0, (0,) * 4, (0,) * 4))),
    "export-protected": (1, export(i=info(flags=1))),
    "export-nil": (1, export(uuid=bytes(16), i=info(flags=3))),
    "export-ones": (1, export(uuid=b"\xff" * 16)),
    "export-overflow": (1, export(i=info(h=0xffffffff, strides=(0xffffffff,) * 4))),
    "export-no-fd": (0, export()),
    "export-two-fds": (2, export()),
    "export-fd-kind": (1, export(i=info(fd_kind=2))),
    "lookup": (0, uuid_req(LOOKUP)),
    "lookup-with-fd": (1, uuid_req(LOOKUP)),
    "remove": (0, uuid_req(REMOVE)),
    "watch": (0, uuid_req(WATCH)),
    "unwatch": (0, uuid_req(UNWATCH)),
    "list": (0, hdr(LIST, 16)),
    "stats": (0, hdr(STATS, 16)),
    "unknown-type": (0, hdr(77, 16)),
    "reply-type": (0, hdr(0x100, 16)),
    "size-mismatch": (0, hdr(LOOKUP, 999) + UUID),
    "reserved-set": (0, hdr(STATS, 16, reserved=1)),
    "truncated": (0, hdr(LOOKUP, 32)[:10]),
    "empty": (0, b""),
    "oversized": (0, hdr(LIST, 5000) + bytes(4984)),
}
for name, (nfds, packet) in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([nfds]) + packet)
