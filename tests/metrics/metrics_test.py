#!/usr/bin/python3
"""Drives known traffic through both front ends of a live crabcached and checks /metrics.

Usage (under tests/polyglot/run_with_server.py):
  metrics_test.py --target HOST:PORT --fastpath_port N --metrics_port N --out_dir DIR
                  --dashboard deploy/grafana/crabcache-dashboard.json

Checks, in order: the exposition passes `promtool check metrics`; after the traffic below, every
counter it touches moved by exactly the expected amount (commands by front end, command and
outcome; batch counts and sizes; bytes in and out; protocol errors; connections open, accepted
and rejected on both front ends); and every crabcache_* name the Grafana dashboard queries is one
the server exports (tests/metrics/check_dashboard.py).
"""

import argparse
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
import crabcache_testing as ct  # pylint: disable=wrong-import-position

ARGS = None
pb = None
pb_grpc = None


def commands(samples, frontend, command, outcome):
    return ct.sample(samples, "crabcache_commands_total", command=command, frontend=frontend,
                     outcome=outcome)


class MetricsTest(unittest.TestCase):

    def scrape(self):
        return ct.parse_exposition(ct.scrape(ARGS.metrics_port))

    def test_promtool_accepts_the_exposition(self):
        text = ct.scrape(ARGS.metrics_port)
        result = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                                capture_output=True, check=False)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_dashboard_queries_use_exported_names(self):
        exposition = os.path.join(ARGS.out_dir, "exposition.txt")
        os.makedirs(ARGS.out_dir, exist_ok=True)
        with open(exposition, "w", encoding="utf-8") as f:
            f.write(ct.scrape(ARGS.metrics_port))
        result = subprocess.run([sys.executable, os.path.join(HERE, "check_dashboard.py"),
                                 ARGS.dashboard, exposition], capture_output=True, check=False)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_counters_move_by_exactly_the_traffic(self):
        import grpc  # pylint: disable=import-outside-toplevel
        before = self.scrape()

        # gRPC: one BatchExecute stream with one batch of 9 commands, then two unary calls.
        request = pb.BatchRequest(id=7, commands=[
            pb.Command(set=pb.Set(key=b"m:a", value=b"1")),
            pb.Command(set=pb.Set(key=b"m:b", value=b"22")),
            pb.Command(set=pb.Set(key=b"m:c", value=b"333")),
            pb.Command(get=pb.Get(key=b"m:a")),
            pb.Command(get=pb.Get(key=b"m:b")),
            pb.Command(get=pb.Get(key=b"m:none")),
            pb.Command(delete=pb.Delete(key=b"m:c")),
            pb.Command(delete=pb.Delete(key=b"m:c")),
            pb.Command(ping=pb.Ping()),
        ])
        # All of it on one channel, so one gRPC connection; then a BatchExecute stream whose
        # only message is not a BatchRequest (a truncated field: 2 bytes), which fails the stream
        # with INVALID_ARGUMENT and counts as a malformed request.
        malformed = b"\x12\x09"
        with grpc.insecure_channel(ARGS.target) as channel:
            stub = pb_grpc.CacheStub(channel)
            responses = list(stub.BatchExecute(iter([request]), timeout=10))
            self.assertEqual(len(responses), 1)
            self.assertTrue(stub.Get(pb.GetRequest(key=b"m:a"), timeout=5).found)
            stub.Ping(pb.PingRequest(), timeout=5)
            raw = channel.stream_stream("/crabcache.v1.Cache/BatchExecute",
                                        request_serializer=None, response_deserializer=None)
            with self.assertRaises(grpc.RpcError) as refused:
                list(raw(iter([malformed]), timeout=10))
            self.assertEqual(refused.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            during = self.scrape()

        # Fast path: five requests, each answered before the next is sent (five batches).
        fast = ct.FastPath(ARGS.fastpath_port)
        self.assertEqual(fast.ping(), (fast.PONG, None))
        self.assertEqual(fast.put(b"m:f", b"fast"), (fast.OK, None))
        self.assertEqual(fast.get(b"m:f"), (fast.VALUE, b"fast"))
        self.assertEqual(fast.get(b"m:nothing"), (fast.NULL, None))
        self.assertEqual(fast.delete(b"m:f"), (fast.OK, None))
        fast.close()

        # The fast path counts bytes and connection events on its loop threads, and gRPC closes
        # the server side of a connection when it notices the client's close; the scrape sees
        # both a moment later, so wait (bounded) for the closes to be seen.
        deadline = time.monotonic() + 10
        while True:
            after = self.scrape()
            opened = [ct.sample(after, "crabcache_connections_open", frontend=frontend) -
                      ct.sample(before, "crabcache_connections_open", frontend=frontend)
                      for frontend in ("fastpath", "grpc")]
            if opened == [0, 0] or time.monotonic() > deadline:
                break
            time.sleep(0.05)

        def delta(name, **labels):
            return ct.sample(after, name, **labels) - ct.sample(before, name, **labels)

        expected_commands = {
            ("grpc", "set", "ok"): 3, ("grpc", "get", "hit"): 3, ("grpc", "get", "miss"): 1,
            ("grpc", "delete", "ok"): 1, ("grpc", "delete", "miss"): 1, ("grpc", "ping", "ok"): 2,
            ("fastpath", "ping", "ok"): 1, ("fastpath", "set", "ok"): 1,
            ("fastpath", "get", "hit"): 1, ("fastpath", "get", "miss"): 1,
            ("fastpath", "delete", "ok"): 1,
        }
        for frontend in ("grpc", "fastpath"):
            for command in ("ping", "set", "get", "delete", "expire", "ttl", "stats"):
                for outcome in ("ok", "hit", "miss", "error"):
                    got = (commands(after, frontend, command, outcome) -
                           commands(before, frontend, command, outcome))
                    want = expected_commands.get((frontend, command, outcome), 0)
                    self.assertEqual(got, want, f"{frontend} {command} {outcome}")

        # Batches: gRPC ran one batch of 9 and two unary calls of 1; the fast path five of 1.
        self.assertEqual(delta("crabcache_batch_commands_count", frontend="grpc"), 3)
        self.assertEqual(delta("crabcache_batch_commands_sum", frontend="grpc"), 11)
        self.assertEqual(delta("crabcache_batch_commands_bucket", frontend="grpc", le="1"), 2)
        self.assertEqual(delta("crabcache_batch_commands_bucket", frontend="grpc", le="16"), 3)
        self.assertEqual(delta("crabcache_batch_duration_seconds_count", frontend="grpc"), 3)
        self.assertEqual(delta("crabcache_batch_commands_count", frontend="fastpath"), 5)
        self.assertEqual(delta("crabcache_batch_commands_sum", frontend="fastpath"), 5)

        # Bytes: the fast path counts wire bytes; gRPC counts BatchExecute payloads.
        self.assertEqual(delta("crabcache_received_bytes_total", frontend="fastpath"), fast.sent)
        self.assertEqual(delta("crabcache_sent_bytes_total", frontend="fastpath"), fast.received)
        self.assertEqual(delta("crabcache_received_bytes_total", frontend="grpc"),
                         request.ByteSize() + len(malformed))
        self.assertEqual(delta("crabcache_sent_bytes_total", frontend="grpc"),
                         responses[0].ByteSize())

        # Protocol errors: the malformed gRPC request; nothing over a limit.
        self.assertEqual(delta("crabcache_protocol_errors_total", frontend="grpc",
                               reason="malformed"), 1)
        self.assertEqual(delta("crabcache_protocol_errors_total", frontend="grpc",
                               reason="batch_too_large"), 0)

        # Connections and streams: one per front end, open while used, closed after.
        for frontend in ("fastpath", "grpc"):
            self.assertEqual(delta("crabcache_connections_accepted_total", frontend=frontend), 1,
                             frontend)
            self.assertEqual(delta("crabcache_connections_open", frontend=frontend), 0, frontend)
            self.assertEqual(delta("crabcache_connections_rejected_total", frontend=frontend), 0,
                             frontend)
        self.assertEqual(ct.sample(during, "crabcache_connections_open", frontend="grpc") -
                         ct.sample(before, "crabcache_connections_open", frontend="grpc"), 1)
        self.assertEqual(delta("crabcache_grpc_streams_total"), 2)
        # Keys: m:a and m:b remain (m:c and m:f were deleted).
        self.assertEqual(delta("crabcache_keys"), 2)


def main():
    global ARGS, pb, pb_grpc
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--fastpath_port", type=int, required=True)
    parser.add_argument("--metrics_port", type=int, required=True)
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--dashboard", required=True)
    ARGS, rest = parser.parse_known_args()
    pb, pb_grpc = ct.generate_stubs(os.path.join(ARGS.out_dir, "gen"))
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
