#!/usr/bin/python3
"""SIGTERM in the middle of load: nothing sent is silently lost, and crabcached exits 0 in time.

Usage: drain_test.py --server PATH/crabcached --out_dir DIR

Starts crabcached (--shutdown_delay=1s, --shutdown_grace=5s), then runs at once
  - 4 fast path connections, each pipelining PUT/GET frames in windows of 32 and checking every
    reply against what it sent, and
  - 4 gRPC BatchExecute streams sending 16-command batches and checking every response,
and sends SIGTERM while they run. It checks that
  - health answers NOT_SERVING during the shutdown delay while requests are still served (every
    gRPC stream gets responses during the delay);
  - every fast path request got its complete, correct reply, or the connection closed cleanly
    (end of stream on a reply boundary, never a truncated reply or a reset);
  - every gRPC stream ends with UNAVAILABLE "server shutting down" (or OK), never CANCELLED,
    before the grace deadline; the ids answered on each stream are exactly a prefix of the ids
    it sent (so the batches left without a response are the last ones, which the server never
    read: tests/grpc checks in process that they never ran), each response correct;
  - the process exits with status 0 well before delay + grace: the drain does not wait for the
    deadline once every stream has ended.
"""

import argparse
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
import crabcache_testing as ct  # pylint: disable=wrong-import-position

DELAY_S = 1.0
GRACE_S = 5.0


def fast_path_client(port, index, stop, results):
    """Pipelines windows of PUT+GET pairs until told to stop or the server closes."""
    stats = {"sent": 0, "answered": 0, "clean_close": False, "error": None}
    results[index] = stats
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        reader = sock.makefile("rb")
        n = 0
        while not stop.is_set():
            window = []
            frames = b""
            for _ in range(16):
                key = f"drain:{index}:{n}".encode()
                value = f"value-{n}".encode() * 3
                frames += (b"\x02" + struct.pack("<I", len(key)) + key +
                           struct.pack("<I", len(value)) + value + b"\x00")
                frames += b"\x03" + struct.pack("<I", len(key)) + key
                window += [("put", None), ("get", value)]
                n += 1
            try:
                sock.sendall(frames)
            except (BrokenPipeError, ConnectionResetError):
                pass  # The server may close while we write; the reads below tell what arrived.
            stats["sent"] += len(window)
            for kind, want in window:
                op = reader.read(1)
                if not op:
                    stats["clean_close"] = True
                    return
                op = op[0]
                if kind == "put":
                    assert op == ct.FastPath.OK, f"PUT answered {op:#x}"
                else:
                    assert op == ct.FastPath.VALUE, f"GET answered {op:#x}"
                    header = reader.read(4)
                    assert len(header) == 4, "truncated VALUE header"
                    (length,) = struct.unpack("<I", header)
                    body = reader.read(length)
                    assert body == want, "truncated or wrong VALUE"
                stats["answered"] += 1
        sock.close()
    except AssertionError as e:
        stats["error"] = str(e)
    except ConnectionResetError as e:
        stats["error"] = f"connection reset: {e}"
    except OSError as e:
        stats["error"] = f"socket error: {e}"


def grpc_client(pb, pb_grpc, target, index, stop, results, term_time):
    """One BatchExecute stream until the server ends it (or `stop`); records what it saw."""
    import grpc  # pylint: disable=import-outside-toplevel
    stats = {"sent": 0, "answered": 0, "answered_after_term": 0, "status": None, "details": None,
             "ended_after_term_s": None, "error": None}
    results[index] = stats
    sent_ids = []

    def batches():
        i = 0
        while not stop.is_set():
            commands = []
            for c in range(8):
                key = f"g:{index}:{i}:{c}".encode()
                commands.append(pb.Command(set=pb.Set(key=key, value=key)))
                commands.append(pb.Command(get=pb.Get(key=key)))
            sent_ids.append(i)
            stats["sent"] += 1
            yield pb.BatchRequest(id=i, commands=commands)
            i += 1
            time.sleep(0.002)

    try:
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.CacheStub(channel)
            try:
                for position, response in enumerate(stub.BatchExecute(batches(), timeout=30)):
                    assert position < len(sent_ids), f"response {response.id} to nothing sent"
                    assert response.id == sent_ids[position], (
                        f"response {position} has id {response.id}, sent {sent_ids[position]}")
                    assert len(response.results) == 16
                    for c in range(8):
                        key = f"g:{index}:{response.id}:{c}".encode()
                        assert response.results[2 * c].code == pb.OK
                        assert response.results[2 * c + 1].code == pb.HIT
                        assert response.results[2 * c + 1].value == key
                    stats["answered"] += 1
                    if term_time[0] is not None:
                        stats["answered_after_term"] += 1
                stats["status"] = "OK"
            except grpc.RpcError as e:
                stats["status"] = e.code().name
                stats["details"] = e.details()
            if term_time[0] is not None:
                stats["ended_after_term_s"] = time.monotonic() - term_time[0]
    except AssertionError as e:
        stats["error"] = str(e)


def health_status(pb_health_channel_target):
    """grpc.health.v1 Check with an empty service name, via a raw unary call."""
    import grpc  # pylint: disable=import-outside-toplevel
    with grpc.insecure_channel(pb_health_channel_target) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=lambda _: b"",
                                    response_deserializer=lambda b: b)
        raw = check(None, timeout=5)
    return {b"\x08\x01": "SERVING", b"\x08\x02": "NOT_SERVING"}.get(raw, repr(raw))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--out_dir", required=True)
    args = parser.parse_args()
    pb, pb_grpc = ct.generate_stubs(os.path.join(args.out_dir, "gen"))

    with tempfile.TemporaryDirectory(prefix="crabcache-drain-") as tmpdir:
        server = ct.Crabcached(args.server, tmpdir, [
            "--metrics_address=", "--threads=2", f"--shutdown_delay={DELAY_S}s",
            f"--shutdown_grace={GRACE_S}s"])
        failures = []
        try:
            ready = server.ready
            target = server.grpc_target
            if health_status(target) != "SERVING":
                failures.append("health not SERVING before SIGTERM")

            stop = threading.Event()
            fast_results, grpc_results = {}, {}
            threads = [threading.Thread(target=fast_path_client,
                                        args=(ready["fastpath_port"], i, stop, fast_results))
                       for i in range(4)]
            term_time = [None]  # Set (monotonic) when SIGTERM is sent.
            threads += [threading.Thread(target=grpc_client,
                                         args=(pb, pb_grpc, target, i, stop, grpc_results,
                                               term_time))
                        for i in range(4)]
            for t in threads:
                t.start()
            time.sleep(1.0)  # Load is flowing.

            term_at = time.monotonic()
            term_time[0] = term_at
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(DELAY_S / 3)
            # During the delay: NOT_SERVING, and requests are still answered.
            status = health_status(target)
            if status != "NOT_SERVING":
                failures.append(f"health during the shutdown delay: {status}")
            probe = ct.FastPath(ready["fastpath_port"])
            if probe.ping() != (probe.PONG, None):
                failures.append("a new fast path connection was not served during the delay")
            probe.close()

            try:
                code = server.proc.wait(timeout=DELAY_S + GRACE_S + 5)
            except subprocess.TimeoutExpired:
                failures.append("crabcached did not exit in time")
                server.kill()
                code = server.proc.wait()
            elapsed = time.monotonic() - term_at
            stop.set()
            for t in threads:
                t.join(timeout=30)
            if code != 0:
                failures.append(f"exit status {code}")

            for i, r in sorted(fast_results.items()):
                print(f"fastpath[{i}]: {r}")
                if r["error"]:
                    failures.append(f"fastpath[{i}]: {r['error']}")
                if r["answered"] == 0:
                    failures.append(f"fastpath[{i}]: no reply at all")
            for i, r in sorted(grpc_results.items()):
                print(f"grpc[{i}]: {r}")
                if r["error"]:
                    failures.append(f"grpc[{i}]: {r['error']}")
                if r["status"] == "UNAVAILABLE":
                    if r["details"] != "server shutting down":
                        failures.append(f"grpc[{i}]: UNAVAILABLE {r['details']!r}, not the drain")
                elif r["status"] != "OK":
                    failures.append(f"grpc[{i}]: stream ended with {r['status']} "
                                    f"{r['details']!r}, not UNAVAILABLE or OK")
                if r["answered"] == 0:
                    failures.append(f"grpc[{i}]: no response at all")
                if r["answered_after_term"] == 0:
                    failures.append(f"grpc[{i}]: not served during the shutdown delay")
                if r["answered"] > r["sent"]:
                    failures.append(f"grpc[{i}]: more responses than batches")
                ended = r["ended_after_term_s"]
                if ended is None or ended >= DELAY_S + GRACE_S:
                    failures.append(f"grpc[{i}]: the stream did not end before the grace "
                                    f"deadline ({ended} s after SIGTERM)")
            print(f"exit status {code} after {elapsed:.2f} s")
            # The drain ends when the last stream has ended, not at the deadline.
            if elapsed >= DELAY_S + GRACE_S - 1.5:
                failures.append(f"exit {elapsed:.2f} s after SIGTERM: the drain waited for "
                                f"the grace deadline ({DELAY_S + GRACE_S} s)")
        finally:
            server.kill()
            if failures:
                sys.stderr.write(server.text())
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
