#!/usr/bin/python3
"""Every resource limit of crabcached, end to end against the real binary.

Usage: limits_crabcached_test.py --server PATH/crabcached --out_dir DIR

Server A runs with small limits (--idle_timeout=1s --max_key_bytes=100 --max_value_bytes=1000
--max_batch_commands=10 --grpc_max_message_bytes=64Ki --grpc_max_concurrent_streams=2
--output_soft_limit=64Ki --output_hard_limit=256Ki); server B with --max_connections=3.
  - slowloris: a partial frame is cut off after --idle_timeout; an idle connection with no
    partial frame is not; a connection that never authenticates is cut off too (server C);
  - key and value limits: at the limit works, one byte over is refused on both front ends
    (fast path: ERROR and close, since the parser refuses the length before reading the bytes);
  - a BatchRequest over --max_batch_commands fails its stream with INVALID_ARGUMENT;
  - a gRPC message over --grpc_max_message_bytes fails with RESOURCE_EXHAUSTED;
  - a third concurrent stream on one connection waits until one of two others ends;
  - a client that never reads its replies is disconnected, and the server's RSS stays bounded;
  - the fourth fast path connection gets ERROR and a close, and is counted;
  - with --grpc_max_connections=2 (server E) a third gRPC connection is closed at once (the
    client sees UNAVAILABLE) and counted, the two open ones keep working, and once one closes a
    new connection is served; crabcache_connections_open{frontend="grpc"} follows.
"""

import argparse
import os
import queue
import socket
import struct
import sys
import threading
import time

import grpc

import secutil
from secutil import ct


def blob(b):
    return struct.pack("<I", len(b)) + b


def put_frame(key, value):
    return b"\x02" + blob(key) + blob(value) + b"\x00"


def closed_within(sock, timeout_s):
    """True if the peer closes (EOF or reset) within timeout_s, reading and dropping replies."""
    sock.settimeout(timeout_s)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    return False


def check_slowloris(server):
    stalled = socket.create_connection(("127.0.0.1", server.fastpath_port))
    idle = ct.FastPath(server.fastpath_port)
    assert idle.ping() == (idle.PONG, None)
    stalled.sendall(b"\x03" + struct.pack("<I", 50) + b"only-part")
    assert closed_within(stalled, 10), "a stalled partial frame must be cut off"
    secutil.wait_until(lambda: server.metric("crabcache_idle_timeout_closes_total",
                                             frontend="fastpath") >= 1,
                       what="the idle timeout close to be counted")
    time.sleep(1.5)  # Longer than --idle_timeout with no partial frame: must stay open.
    assert idle.ping() == (idle.PONG, None)


def check_fast_path_sizes(server):
    fp = ct.FastPath(server.fastpath_port)
    assert fp.put(b"k" * 100, b"v" * 1000) == (fp.OK, None)
    assert fp.get(b"k" * 100) == (fp.VALUE, b"v" * 1000)
    for frame, needle in [(b"\x03" + struct.pack("<I", 101), b"max_key_bytes"),
                          (b"\x02" + blob(b"k") + struct.pack("<I", 1001), b"max_value_bytes")]:
        c = ct.FastPath(server.fastpath_port)
        c._send(frame)  # pylint: disable=protected-access
        op, msg = c.reply()
        assert op == c.ERROR and needle in msg, (op, msg)
        assert closed_within(c.sock, 10)


def check_grpc_limits(server, pb2, pb2_grpc):
    channel = grpc.insecure_channel(server.grpc_target)
    stub = pb2_grpc.CacheStub(channel)
    stub.Set(pb2.SetRequest(key=b"g" * 100, value=b"v" * 1000), timeout=10)
    try:
        stub.Set(pb2.SetRequest(key=b"g" * 101, value=b"v"), timeout=10)
        raise AssertionError("a 101-byte key was stored")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    batch = pb2.BatchRequest(id=1, commands=[
        pb2.Command(set=pb2.Set(key=b"b", value=b"v" * 1001)),
        pb2.Command(set=pb2.Set(key=b"b", value=b"v" * 1000))])
    (response,) = list(stub.BatchExecute(iter([batch]), timeout=10))
    assert [r.code for r in response.results] == [pb2.ERROR, pb2.OK], response
    assert response.results[0].error.startswith("INVALID_ARGUMENT"), response

    ten = pb2.BatchRequest(id=2, commands=[pb2.Command(ping=pb2.Ping())] * 10)
    assert len(list(stub.BatchExecute(iter([ten]), timeout=10))[0].results) == 10
    eleven = pb2.BatchRequest(id=3, commands=[pb2.Command(ping=pb2.Ping())] * 11)
    try:
        list(stub.BatchExecute(iter([eleven]), timeout=10))
        raise AssertionError("an 11-command batch ran")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    assert server.metric("crabcache_protocol_errors_total", frontend="grpc",
                         reason="batch_too_large") == 1

    try:
        stub.Get(pb2.GetRequest(key=b"x" * (70 << 10)), timeout=10)
        raise AssertionError("a 70 KiB message got through a 64 KiB limit")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
    channel.close()


class Stream:
    def __init__(self, pb2, channel):
        self.pb2 = pb2
        self.requests = queue.Queue()
        self.responses = channel.stream_stream(
            "/crabcache.v1.Cache/BatchExecute",
            request_serializer=pb2.BatchRequest.SerializeToString,
            response_deserializer=pb2.BatchResponse.FromString)(iter(self.requests.get, None),
                                                                timeout=60)
        self.received = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        try:
            for r in self.responses:
                self.received.put(r.id)
        except grpc.RpcError as e:
            self.received.put(e)

    def send_ping(self, batch_id):
        self.requests.put(self.pb2.BatchRequest(
            id=batch_id, commands=[self.pb2.Command(ping=self.pb2.Ping())]))

    def end(self):
        self.requests.put(None)


def check_concurrent_streams(server, pb2):
    channel = grpc.insecure_channel(server.grpc_target)
    a, b = Stream(pb2, channel), Stream(pb2, channel)
    for s in (a, b):
        s.send_ping(1)
        assert s.received.get(timeout=10) == 1
    c = Stream(pb2, channel)
    c.send_ping(7)
    try:
        got = c.received.get(timeout=1.5)
        raise AssertionError(f"a third stream ran beside two with a limit of 2: {got}")
    except queue.Empty:
        pass
    a.end()
    assert c.received.get(timeout=10) == 7, "the third stream runs once one of two ended"
    b.end()
    c.end()
    channel.close()


def rss_bytes(pid):
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def check_slow_consumer(server):
    fp = ct.FastPath(server.fastpath_port)
    assert fp.put(b"big", b"x" * (16 << 10)) == (fp.OK, None)
    rss_before = rss_bytes(server.proc.pid)
    sock = socket.create_connection(("127.0.0.1", server.fastpath_port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    frames = (b"\x03" + blob(b"big")) * 1024
    sent, broke = 0, False
    deadline = time.monotonic() + 20
    while sent < (64 << 20) and time.monotonic() < deadline and not broke:
        try:
            sent += sock.send(frames)
        except BlockingIOError:
            time.sleep(0.01)
            if server.metric("crabcache_slow_consumer_disconnects_total", frontend="fastpath"):
                broke = True
        except (BrokenPipeError, ConnectionResetError):
            broke = True
    secutil.wait_until(lambda: server.metric("crabcache_slow_consumer_disconnects_total",
                                             frontend="fastpath") >= 1,
                       what="the slow consumer to be cut off")
    growth = rss_bytes(server.proc.pid) - rss_before
    # The GETs sent asked for far more reply bytes than the hard limit; the server held less
    # than the hard limit of replies for this connection.
    assert growth < (32 << 20), f"RSS grew by {growth} bytes for one slow consumer"
    sock.close()


def check_max_connections(binary, work):
    server = secutil.Crabcached(binary, work, ["--max_connections=3"], name="maxconn")
    with server:
        conns = [ct.FastPath(server.fastpath_port) for _ in range(3)]
        for c in conns:
            assert c.ping() == (c.PONG, None)
        extra = ct.FastPath(server.fastpath_port)
        op, msg = extra.reply()
        assert op == extra.ERROR and b"max_connections (3)" in msg, (op, msg)
        assert closed_within(extra.sock, 10)
        assert server.metric("crabcache_connections_rejected_total", frontend="fastpath") == 1
        conns.pop().close()
        secutil.wait_until(lambda: server.metric("crabcache_connections_open",
                                                 frontend="fastpath") == 2,
                           what="the closed connection to be released")
        again = ct.FastPath(server.fastpath_port)
        assert again.ping() == (again.PONG, None)


def own_channel(target):
    """A channel with a connection of its own (grpcio shares one between equal channels)."""
    return grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])


def grpc_ping(pb2, pb2_grpc, channel):
    try:
        pb2_grpc.CacheStub(channel).Ping(pb2.PingRequest(), timeout=5)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


def check_grpc_max_connections(binary, work, pb2, pb2_grpc):
    server = secutil.Crabcached(binary, work, ["--grpc_max_connections=2"], name="grpcconn")
    with server:
        def metric(name):
            return server.metric(name, frontend="grpc")
        first, second = own_channel(server.grpc_target), own_channel(server.grpc_target)
        assert grpc_ping(pb2, pb2_grpc, first) == grpc.StatusCode.OK
        assert grpc_ping(pb2, pb2_grpc, second) == grpc.StatusCode.OK
        assert metric("crabcache_connections_open") == 2
        third = own_channel(server.grpc_target)
        assert grpc_ping(pb2, pb2_grpc, third) == grpc.StatusCode.UNAVAILABLE
        assert metric("crabcache_connections_rejected_total") >= 1
        assert metric("crabcache_connections_accepted_total") == 2
        assert grpc_ping(pb2, pb2_grpc, first) == grpc.StatusCode.OK, "an open one broke"
        assert grpc_ping(pb2, pb2_grpc, second) == grpc.StatusCode.OK
        third.close()
        first.close()
        secutil.wait_until(lambda: metric("crabcache_connections_open") == 1,
                           what="the closed gRPC connection to be released")
        fourth = own_channel(server.grpc_target)
        assert grpc_ping(pb2, pb2_grpc, fourth) == grpc.StatusCode.OK
        assert metric("crabcache_connections_accepted_total") == 3
        fourth.close()
        second.close()


def check_auth_deadline(binary, work):
    tokens = os.path.join(work, "tokens")
    secutil.write_atomically(tokens, "deadline-token-0123456789\n")
    server = secutil.Crabcached(binary, work, [f"--auth_token_file={tokens}",
                                               "--idle_timeout=1s"], name="deadline")
    with server:
        silent = socket.create_connection(("127.0.0.1", server.fastpath_port))
        assert closed_within(silent, 10), "a connection that never authenticates is cut off"
        assert server.metric("crabcache_auth_failures_total", frontend="fastpath",
                             reason="timeout") == 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--out_dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    pb2, pb2_grpc = ct.generate_stubs(os.path.join(args.out_dir, "gen"))
    work = secutil.new_workdir("crabcache-limits-")
    server = secutil.Crabcached(args.server, work, [
        "--idle_timeout=1s", "--max_key_bytes=100", "--max_value_bytes=1000",
        "--max_batch_commands=10", "--grpc_max_message_bytes=64Ki",
        "--grpc_max_concurrent_streams=2", "--output_soft_limit=64Ki",
        "--output_hard_limit=256Ki"], name="limits")
    with server:
        check_slowloris(server)
        check_fast_path_sizes(server)
        check_grpc_limits(server, pb2, pb2_grpc)
        check_concurrent_streams(server, pb2)
    # Slow consumer on its own server (A's values are too small for it): the connection is
    # paused under the hard limit, then cut off once its output has not moved for --idle_timeout.
    server = secutil.Crabcached(args.server, work, ["--max_value_bytes=64Ki",
                                                    "--output_soft_limit=64Ki",
                                                    "--output_hard_limit=256Ki",
                                                    "--idle_timeout=2s"], name="slow")
    try:
        check_slow_consumer(server)
    finally:
        assert server.stop() == 0, server.text()
    check_max_connections(args.server, work)
    check_grpc_max_connections(args.server, work, pb2, pb2_grpc)
    check_auth_deadline(args.server, work)
    print("limits_crabcached_test: OK")


if __name__ == "__main__":
    main()
