#!/usr/bin/python3
"""Measures how much memory crabcached really uses when its store is full, relative to
--max_memory: the figure behind the chart's memory.limitPercent headroom (docs/operations.md,
"Sizing memory"). A program, not a test: run it by hand.

  tests/deploy/memory_headroom.py --server build/release/server/crabcached \
      [--max_memory_mib 256] [--value_bytes 100,1000,10000] [--fill_factor 2]

For each value size it starts crabcached with --max_memory, writes fill_factor x max_memory
bytes of distinct keys through gRPC BatchExecute (so eviction runs), and reports the peak RSS
(VmHWM) and the final RSS over --max_memory. Loopback only; bounded in count and time.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "polyglot", "python"))
import cache_client_test as client  # noqa: E402  (stub generation shared with the polyglot test)

BATCH = 500
DEADLINE_S = 300


def status_kib(pid, field):
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def run_one(server, max_memory, value_bytes, fill_factor, tmp):
    ready = os.path.join(tmp, f"ready-{value_bytes}.json")
    proc = subprocess.Popen(
        [server, "--address=127.0.0.1", "--port=0", "--grpc_port=0", "--metrics_address=",
         f"--max_memory={max_memory}", "--threads=1", "--log_level=warning",
         f"--ready_file={ready}"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(ready):  # Written atomically (rename) once listeners are up.
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("crabcached did not start")
            time.sleep(0.05)
        with open(ready, encoding="utf-8") as f:
            ports = json.load(f)
        import grpc
        channel = grpc.insecure_channel(f"127.0.0.1:{ports['grpc_port']}",
                                        options=[("grpc.max_send_message_length", 64 << 20)])
        stub = client.pb_grpc.CacheStub(channel)
        value = b"v" * value_bytes
        total = int(fill_factor * max_memory / (value_bytes + 16))
        started = time.monotonic()

        def batches():
            for first in range(0, total, BATCH):
                if time.monotonic() - started > DEADLINE_S:
                    return
                cmds = [client.pb.Command(set=client.pb.Set(key=b"key-%012d" % i, value=value))
                        for i in range(first, min(first + BATCH, total))]
                yield client.pb.BatchRequest(id=first, commands=cmds)

        errors = 0
        for resp in stub.BatchExecute(batches()):
            errors += sum(1 for r in resp.results if r.code != client.pb.OK)
        stats = stub.BatchExecute(iter([client.pb.BatchRequest(
            id=1, commands=[client.pb.Command(stats=client.pb.Stats())])]))
        stats_json = json.loads(next(stats).results[0].value)
        channel.close()
        rss = status_kib(proc.pid, "VmRSS") * 1024
        hwm = status_kib(proc.pid, "VmHWM") * 1024
        return {"value_bytes": value_bytes, "writes": total, "errors": errors,
                "seconds": round(time.monotonic() - started, 1),
                "peak_rss_over_max": round(hwm / max_memory, 3),
                "rss_over_max": round(rss / max_memory, 3), "stats": stats_json}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--max_memory_mib", type=int, default=256)
    parser.add_argument("--value_bytes", default="100,1000,10000")
    parser.add_argument("--fill_factor", type=float, default=2.0)
    args = parser.parse_args()
    max_memory = args.max_memory_mib << 20
    with tempfile.TemporaryDirectory() as tmp:
        client.generate_stubs(os.path.join(tmp, "gen"))
        for size in [int(s) for s in args.value_bytes.split(",")]:
            print(json.dumps(run_one(args.server, max_memory, size, args.fill_factor, tmp)))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
