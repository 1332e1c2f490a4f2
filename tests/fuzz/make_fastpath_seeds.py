#!/usr/bin/env python3
"""Writes the fast path parser's seed corpus (tests/fuzz/corpus/fastpath_parser/).

Run from the repo root after a protocol change: python3 tests/fuzz/make_fastpath_seeds.py
One file per frame kind and per error, plus pipelines; the fuzz target's limits are
max_key_bytes=256, max_value_bytes=4096, so seeds sit on both sides of them.
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fastpath_parser")


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def key_frame(op, key):
    return bytes([op]) + u32(len(key)) + key


def put(key, value, ttl=None):
    tail = b"\x00" if ttl is None else b"\x01" + u64(ttl)
    return b"\x02" + u32(len(key)) + key + u32(len(value)) + value + tail


PING, STATS = b"\x01", b"\x06"
seeds = {
    "ping": PING,
    "four_pings": PING * 4,
    "stats": STATS,
    "put": put(b"key", b"value"),
    "put_ttl": put(b"key", b"value", 60),
    "put_ttl_zero": put(b"k", b"", 0),
    "put_ttl_max": put(b"k", b"v", 2**64 - 1),
    "put_at_limits": put(b"k" * 256, b"v" * 4096),
    "get": key_frame(3, b"key"),
    "get_empty_key": key_frame(3, b""),
    "get_nul_key": key_frame(3, b"a\x00b"),
    "del": key_frame(4, b"key"),
    "ttl": key_frame(8, b"key"),
    "expire": key_frame(5, b"key") + u64(30),
    "auth": key_frame(7, b"token"),
    "pipeline": PING + put(b"a", b"1") + key_frame(3, b"a") + key_frame(4, b"a")
    + key_frame(5, b"a") + u64(1) + key_frame(8, b"a") + STATS + key_frame(7, b"t"),
    "partial_put": put(b"key", b"value")[:9],
    "err_unknown_opcode": b"\x42",
    "err_resp": b"*1\r\n$4\r\nPING\r\n",
    "err_bad_ttl_flag": put(b"k", b"v")[:-1] + b"\x02",
    "err_key_too_long": b"\x03" + u32(257),
    "err_key_len_max": b"\x04" + u32(2**32 - 1),
    "err_value_too_long": b"\x02" + u32(1) + b"k" + u32(4097),
    "err_token_too_long": b"\x07" + u32(4097),
    "good_then_bad": PING + put(b"a", b"1") + b"\x99" + PING,
    # Replies (the target also runs the reply parser over every input).
    "replies": b"\x10\x11\x12" + b"\x13" + u32(4) + b"oops" + b"\x14" + u32(1) + b"v"
    + b"\x15" + u32(2) + b"{}" + b"\x16" + u64(2**64 - 2),
}

os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {OUT}")
