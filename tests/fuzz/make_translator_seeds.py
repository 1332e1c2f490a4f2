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
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {OUT}")


if __name__ == "__main__":
    main()
