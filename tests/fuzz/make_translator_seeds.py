#!/usr/bin/python3
"""Writes the gRPC translator's seed corpus (tests/fuzz/corpus/grpc_translator/).

Run from the repo root after a proto change: /usr/bin/python3 tests/fuzz/make_translator_seeds.py
Each seed is a serialized crabcache.v1.BatchRequest; the fuzz target's limits are
max_key_bytes=64 and max_value_bytes=1024, so seeds sit on both sides of them, and the id picks
how far the clock moves before the second run (id % 100000 ms), so TTLs expire in between.
"""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
import crabcache_testing as ct  # noqa: E402  pylint: disable=wrong-import-position

OUT = os.path.join(HERE, "corpus", "grpc_translator")


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def tag(field, wire_type):
    return varint(field << 3 | wire_type)


def ld(field, payload):
    return tag(field, 2) + varint(len(payload)) + payload


def wire_seeds():
    """Hand-built wire bytes for the raw decoder: what protobuf accepts without producing it
    (repeated fields, merged and replaced oneof cases, unknown fields of every wire type, known
    numbers with other wire types, overlong varints) and what it refuses."""
    def cmd(body):
        return ld(2, body)

    get_k = cmd(ld(3, ld(1, b"k")))
    unknown = (tag(15, 0) + varint(300) + tag(16, 1) + b"f" * 8 + ld(1000, b"skip") +
               tag(17, 5) + b"g" * 4 + tag(18, 3) + tag(1, 0) + b"\x01" + tag(18, 4))
    return {
        "wire_repeated_fields": (tag(1, 0) + varint(5) + cmd(ld(2, ld(1, b"a") + ld(2, b"x")) +
                                                             ld(2, ld(1, b"b"))) +
                                 tag(1, 0) + varint(7) + get_k),
        "wire_oneof_replaced": cmd(ld(2, ld(1, b"a")) + ld(3, ld(1, b"g")) + ld(2, ld(2, b"y"))),
        "wire_unknown_fields": unknown + cmd(unknown + ld(3, unknown + ld(1, b"k"))) + unknown,
        "wire_other_wire_types": (ld(1, b"id?") + tag(2, 0) + varint(5) +
                                  cmd(tag(3, 3) + tag(3, 4) +
                                      ld(2, tag(1, 0) + varint(7) + ld(1, b"key")))),
        "wire_overlong_varints": (b"\x08" + b"\xff" * 9 + b"\x7f" + b"\x88\x80\x80\x80\x70\x03" +
                                  tag(2, 2) + b"\x82\x80\x80\x80\x00" + ld(7, b"")),
        "wire_bad_zero_tag": get_k + b"\x00",
        "wire_bad_truncated_key": cmd(ld(3, tag(1, 2) + varint(9) + b"abc")),
        "wire_bad_group_end": tag(5, 3) + tag(6, 4),
        "wire_bad_deep_groups": tag(5, 3) * 101 + tag(5, 4) * 101,
        "wire_bad_length_2gib": tag(9, 2) + b"\x80\x80\x80\x80\x08",
    }


def main():
    pb2, _ = ct.generate_stubs(tempfile.mkdtemp(prefix="translator-seeds-"))
    C = pb2.Command

    def batch(batch_id, *commands):
        return pb2.BatchRequest(id=batch_id, commands=list(commands)).SerializeToString()

    def set_(key, value=b"v", ttl_ms=0):
        return C(set=pb2.Set(key=key, value=value, ttl_ms=ttl_ms))

    def get(key):
        return C(get=pb2.Get(key=key))

    seeds = {
        "empty": batch(0),
        "ping": batch(1, C(ping=pb2.Ping())),
        "stats": batch(2, C(stats=pb2.Stats())),
        "set_get": batch(3, set_(b"k", b"value"), get(b"k"), get(b"missing")),
        "set_ttl_get": batch(1500, set_(b"t", b"x", 1000), get(b"t"), C(ttl=pb2.Ttl(key=b"t"))),
        "expire": batch(2000, set_(b"e"), C(expire=pb2.Expire(key=b"e", ttl_ms=1000)),
                        C(expire=pb2.Expire(key=b"nope", ttl_ms=5)), get(b"e")),
        "expire_zero": batch(4, set_(b"z"), C(expire=pb2.Expire(key=b"z", ttl_ms=0)), get(b"z")),
        "delete": batch(5, set_(b"d"), C(delete=pb2.Delete(key=b"d")),
                        C(delete=pb2.Delete(key=b"d"))),
        "ttl_kinds": batch(6, set_(b"a"), set_(b"b", b"v", 2**64 - 1), C(ttl=pb2.Ttl(key=b"a")),
                           C(ttl=pb2.Ttl(key=b"b")), C(ttl=pb2.Ttl(key=b"c"))),
        "limits": batch(7, set_(b"k" * 64, b"v" * 1024), set_(b"k" * 65), set_(b"k", b"v" * 1025),
                        get(b"k" * 65), get(b"k" * 64)),
        "no_op": batch(8, C(), C(ping=pb2.Ping()), C()),
        "nul_bytes": batch(9, set_(b"a\x00b", b"\x00\xff"), get(b"a\x00b"), get(b"a")),
        # Found by the fuzzer after the store moved to 48-bit expiry offsets: a TTL beyond
        # 2^48 ms means "never" (TTL answers INT64_MAX), not "expires in 2^63 ms".
        "ttl_beyond_48bit_horizon": batch(6, C(ttl=pb2.Ttl(key=b"b")), C(),
                                          set_(b"b", b"v", 2**63 - 1)),
        "overwrite": batch(10, set_(b"o", b"1", 5), set_(b"o", b"2"), get(b"o"),
                           C(ttl=pb2.Ttl(key=b"o"))),
    }
    seeds.update(wire_seeds())
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {OUT}")


if __name__ == "__main__":
    main()
