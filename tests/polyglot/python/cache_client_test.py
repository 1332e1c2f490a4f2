#!/usr/bin/python3
"""Python client test for crabcache.v1.Cache (Debian python3-grpcio + python3-protobuf).

Usage: cache_client_test.py --target HOST:PORT --out_dir DIR --fastpath_port N

Stubs are generated into DIR at start from proto/crabcache/v1/cache.proto by protoc with Debian's
grpc_python_plugin; nothing generated is committed. A key written over gRPC is read over the
fast path and the other way round. The regions between the --8<-- markers are docs/grpc.md's
Python snippets, word for word (tests/docs/check_grpc_snippets.py checks it).
"""

import argparse
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "pylib"))
import crabcache_testing  # pylint: disable=wrong-import-position

_parser = argparse.ArgumentParser()
_parser.add_argument("--target", required=True)
_parser.add_argument("--out_dir", required=True)
_parser.add_argument("--fastpath_port", type=int, required=True)
ARGS, UNITTEST_ARGS = _parser.parse_known_args()
crabcache_testing.generate_stubs(ARGS.out_dir)  # Also puts out_dir on sys.path.

# pylint: disable=wrong-import-position,wrong-import-order
# --8<-- [start:python-import]
import grpc
from crabcache.v1 import cache_pb2 as pb, cache_pb2_grpc as pb_grpc
# --8<-- [end:python-import]
# pylint: enable=wrong-import-position,wrong-import-order


class CacheClientTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        target = ARGS.target
        # --8<-- [start:python-connect]
        channel = grpc.insecure_channel(target)
        stub = pb_grpc.CacheStub(channel)
        # --8<-- [end:python-connect]
        grpc.channel_ready_future(channel).result(timeout=10)
        cls.channel, cls.stub = channel, stub

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()

    def test_batch_execute_stream(self):
        stub = self.stub
        # --8<-- [start:python-batch]
        def batches():
            yield pb.BatchRequest(id=1, commands=[
                pb.Command(set=pb.Set(key=b"py:greeting", value=b"hello", ttl_ms=60000)),
                pb.Command(get=pb.Get(key=b"py:greeting")),
                pb.Command(get=pb.Get(key=b"py:missing")),
            ])
            yield pb.BatchRequest(id=2, commands=[
                pb.Command(ttl=pb.Ttl(key=b"py:greeting")),
                pb.Command(delete=pb.Delete(key=b"py:greeting")),
                pb.Command(delete=pb.Delete(key=b"py:greeting")),
                pb.Command(ping=pb.Ping()),
            ])
            yield pb.BatchRequest(id=3)  # An empty batch gets an empty response.

        responses = list(stub.BatchExecute(batches(), timeout=10))
        for response in responses:
            for result in response.results:
                print(response.id, pb.Code.Name(result.code), result.value, result.ttl_ms)
        # --8<-- [end:python-batch]
        self.assertEqual([r.id for r in responses], [1, 2, 3])
        first, second, third = responses
        self.assertEqual([r.code for r in first.results], [pb.OK, pb.HIT, pb.MISS])
        self.assertEqual(first.results[1].value, b"hello")
        self.assertEqual([r.code for r in second.results],
                         [pb.OK, pb.OK, pb.NOT_FOUND, pb.PONG])
        self.assertGreater(second.results[0].ttl_ms, 50000)
        self.assertEqual(len(third.results), 0)

    def test_many_batches_on_one_stream(self):
        def batches():
            for i in range(200):
                key = f"py:k{i}".encode()
                yield pb.BatchRequest(id=i, commands=[
                    pb.Command(set=pb.Set(key=key, value=bytes([i % 256]) * 10)),
                    pb.Command(get=pb.Get(key=key)),
                ])

        count = 0
        for i, response in enumerate(self.stub.BatchExecute(batches(), timeout=30)):
            self.assertEqual(response.id, i)
            self.assertEqual(response.results[1].code, pb.HIT)
            self.assertEqual(response.results[1].value, bytes([i % 256]) * 10)
            count += 1
        self.assertEqual(count, 200)

    def test_bad_command_is_an_error_result(self):
        responses = list(self.stub.BatchExecute(iter([
            pb.BatchRequest(id=9, commands=[pb.Command(), pb.Command(ping=pb.Ping())])
        ]), timeout=10))
        self.assertEqual([r.code for r in responses[0].results], [pb.ERROR, pb.PONG])
        self.assertTrue(responses[0].results[0].error.startswith("INVALID_ARGUMENT"))

    def test_oversized_batch_fails_the_stream(self):
        big = pb.BatchRequest(id=1, commands=[pb.Command(ping=pb.Ping())] * 10001)
        with self.assertRaises(grpc.RpcError) as caught:
            list(self.stub.BatchExecute(iter([big]), timeout=10))
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_unary_calls(self):
        stub = self.stub
        # --8<-- [start:python-unary]
        stub.Ping(pb.PingRequest(), timeout=5)
        stub.Set(pb.SetRequest(key=b"py:unary", value=b"\x00\xff"), timeout=5)
        got = stub.Get(pb.GetRequest(key=b"py:unary"), timeout=5)
        assert got.found and got.value == b"\x00\xff"
        deleted = stub.Delete(pb.DeleteRequest(key=b"py:unary"), timeout=5)
        assert deleted.deleted
        # --8<-- [end:python-unary]
        self.assertFalse(self.stub.Get(pb.GetRequest(key=b"py:unary"), timeout=5).found)
        self.assertFalse(self.stub.Delete(pb.DeleteRequest(key=b"py:unary"), timeout=5).deleted)

    def test_grpc_and_fast_path_share_the_store(self):
        fast = crabcache_testing.FastPath(ARGS.fastpath_port)
        try:
            self.stub.Set(pb.SetRequest(key=b"x:from-grpc", value=b"g"), timeout=5)
            self.assertEqual(fast.get(b"x:from-grpc"), (fast.VALUE, b"g"))
            self.assertEqual(fast.put(b"x:from-fast", b"f\x00"), (fast.OK, None))
            got = self.stub.Get(pb.GetRequest(key=b"x:from-fast"), timeout=5)
            self.assertTrue(got.found)
            self.assertEqual(got.value, b"f\x00")
        finally:
            fast.close()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + UNITTEST_ARGS, verbosity=2)
