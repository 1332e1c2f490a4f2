#!/usr/bin/python3
"""Authentication against the real crabcached, on both front ends.

Usage: auth_crabcached_test.py --server PATH/crabcached --out_dir DIR

Checks, with a token file of two tokens:
  - fast path: a request before AUTH gets ERROR and a close; AUTH with a token lets commands run;
    a wrong token gets ERROR, the third one closes the connection;
  - gRPC: every crabcache.v1.Cache method (taken from the proto's descriptor, so a new RPC is
    covered automatically) answers UNAUTHENTICATED without a token, with a wrong one, and with a
    malformed header; `authorization: Bearer <token>` works for unary calls and BatchExecute;
    grpc.health.v1 and server reflection answer without a token;
  - rotation with no signal, the way Kubernetes updates a mounted Secret (a `..data` symlink
    swap): the new token works and the old one is refused within the reload interval, and open
    fast path connections and gRPC streams that used the removed token are cut off;
  - a reload that fails (empty file) keeps the previous tokens and is logged and counted;
  - SIGHUP reloads at once even with a long --reload_interval;
  - crabcache_auth_failures_total counts by front end and reason; exit 0 on SIGTERM;
  - per-address limiting of invalid gRPC tokens (a second server, --grpc_auth_max_failures=3):
    after three invalid tokens even a valid one is refused with RESOURCE_EXHAUSTED, unchecked,
    on every Cache method, and counted as reason="rate_limited"; missing tokens do not count;
    health and the fast path from the same address are not affected. (The block's expiry is
    tested in process with a fake clock: tests/security/grpc_auth_test.cc.)
"""

import argparse
import os
import queue
import struct
import subprocess
import sys

import grpc

import secutil
from secutil import ct

OLD = "old-token-0123456789abcdef"
NEW = "new-token-0123456789abcdef"
OTHER = "other-token-0123456789abcdef"


def fp_auth(conn, token):
    conn._send(b"\x07" + struct.pack("<I", len(token)) + token.encode())  # pylint: disable=protected-access
    return conn.reply()


def expect_closed(conn):
    conn.sock.settimeout(10)
    try:
        data = conn.sock.recv(1)
    except ConnectionResetError:
        return
    assert data == b"", f"expected the server to close, got {data!r}"


def check_fast_path(server):
    fp = ct.FastPath(server.fastpath_port)
    op, msg = fp.ping()
    assert op == fp.ERROR and b"UNAUTHENTICATED" in msg, (op, msg)
    expect_closed(fp)

    fp = ct.FastPath(server.fastpath_port)
    assert fp_auth(fp, OLD) == (fp.OK, None)
    assert fp.put(b"k", b"v") == (fp.OK, None)
    assert fp.get(b"k") == (fp.VALUE, b"v")
    fp.close()

    fp = ct.FastPath(server.fastpath_port)
    for i in range(3):
        op, msg = fp_auth(fp, f"wrong-token-00000000000{i}")
        assert op == fp.ERROR and b"UNAUTHENTICATED" in msg, (op, msg)
    assert b"too many" in msg, msg
    expect_closed(fp)


def call_all_methods(pb2, channel, metadata):
    """{method name: status code} for one call of every Cache method with an empty message."""
    codes = {}
    for method in pb2.DESCRIPTOR.services_by_name["Cache"].methods:
        path = f"/crabcache.v1.Cache/{method.name}"
        if method.client_streaming:
            call = channel.stream_stream(path, request_serializer=None, response_deserializer=None)
            responses = call(iter([b""]), metadata=metadata, timeout=10)
            try:
                for _ in responses:
                    pass
                codes[method.name] = grpc.StatusCode.OK
            except grpc.RpcError as e:
                codes[method.name] = e.code()
        else:
            call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
            try:
                call(b"", metadata=metadata, timeout=10)
                codes[method.name] = grpc.StatusCode.OK
            except grpc.RpcError as e:
                codes[method.name] = e.code()
    return codes


def check_grpc(server, pb2, pb2_grpc, out_dir):
    channel = grpc.insecure_channel(server.grpc_target)
    names = [m.name for m in pb2.DESCRIPTOR.services_by_name["Cache"].methods]
    assert "BatchExecute" in names and "Get" in names, names
    for metadata in [(), (("authorization", "Bearer wrong-token-0123456789abcdef"),),
                     (("authorization", OLD),), (("authorization", "Basic " + OLD),),
                     (("authorization", "Bearer " + OLD), ("authorization", "Bearer " + NEW))]:
        codes = call_all_methods(pb2, channel, metadata)
        bad = {n: c for n, c in codes.items() if c != grpc.StatusCode.UNAUTHENTICATED}
        assert not bad, f"metadata {metadata}: not refused: {bad}"
    good = call_all_methods(pb2, channel, (("authorization", "bearer " + OLD),))
    assert all(c == grpc.StatusCode.OK for c in good.values()), good

    stub = pb2_grpc.CacheStub(channel)
    md = (("authorization", "Bearer " + OLD),)
    stub.Set(pb2.SetRequest(key=b"g", value=b"1"), metadata=md, timeout=10)
    assert stub.Get(pb2.GetRequest(key=b"g"), metadata=md, timeout=10).value == b"1"
    assert stub.Get(pb2.GetRequest(key=b"k"), metadata=md, timeout=10).value == b"v"

    # Health and reflection need no token.
    health = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=None,
                                 response_deserializer=None)
    assert health(b"", timeout=10) == b"\x08\x01", "health: SERVING without a token"
    reflection = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=None, response_deserializer=None)
    # ServerReflectionRequest{list_services: ""} = field 7, empty string.
    answer = b"".join(reflection(iter([b"\x3a\x00"]), timeout=10))
    assert b"crabcache.v1.Cache" in answer, answer
    return channel


class Stream:
    """A BatchExecute stream fed from a queue, for tests that keep it open."""

    def __init__(self, pb2, channel, token):
        self.pb2 = pb2
        self.requests = queue.Queue()
        call = channel.stream_stream("/crabcache.v1.Cache/BatchExecute",
                                     request_serializer=pb2.BatchRequest.SerializeToString,
                                     response_deserializer=pb2.BatchResponse.FromString)
        self.responses = call(iter(self.requests.get, None),
                              metadata=(("authorization", "Bearer " + token),), timeout=60)

    def ping(self, batch_id):
        self.requests.put(self.pb2.BatchRequest(id=batch_id,
                                                commands=[self.pb2.Command(ping=self.pb2.Ping())]))
        return next(self.responses)


def check_rotation(server, pb2, pb2_grpc, channel, secret):
    stub = pb2_grpc.CacheStub(channel)

    def works(token):
        try:
            stub.Ping(pb2.PingRequest(), metadata=(("authorization", "Bearer " + token),),
                      timeout=5)
            return True
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
            return False

    # Connections and streams that authenticated with OLD before it is removed.
    fp_old = ct.FastPath(server.fastpath_port)
    assert fp_auth(fp_old, OLD) == (fp_old.OK, None)
    stream_old = Stream(pb2, channel, OLD)
    assert stream_old.ping(1).id == 1
    stream_other = Stream(pb2, channel, OTHER)
    assert stream_other.ping(1).id == 1

    # Step 1: add NEW beside OLD (no signal: the watcher notices the ..data swap).
    secret.publish({"tokens": f"# rotation step 1\n{NEW}\n{OLD}\n{OTHER}\n"})
    secutil.wait_until(lambda: works(NEW), what="the new token to work")
    assert works(OLD)
    # Step 2: remove OLD.
    secret.publish({"tokens": f"# rotation step 2\n{NEW}\n{OTHER}\n"})
    secutil.wait_until(lambda: not works(OLD), what="the old token to be refused")
    assert works(NEW)

    op, msg = fp_old.ping()
    assert op == fp_old.ERROR and b"revoked" in msg, (op, msg)
    expect_closed(fp_old)
    try:
        stream_old.ping(2)
        raise AssertionError("a stream with a revoked token went on")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
    assert stream_other.ping(2).id == 2  # Its token stayed.
    stream_other.requests.put(None)

    # A broken file keeps the previous tokens.
    failures = server.metric("crabcache_auth_reloads_total", result="failure")
    secret.publish({"tokens": "# emptied by mistake\n"})
    secutil.wait_until(
        lambda: server.metric("crabcache_auth_reloads_total", result="failure") > failures,
        what="the failed reload to be counted")
    assert "auth token reload failed; keeping the previous tokens" in server.text()
    assert works(NEW) and works(OTHER) and not works(OLD)
    assert server.metric("crabcache_auth_tokens") == 2


def check_sighup(binary, out_dir):
    path = os.path.join(out_dir, "sighup-tokens")
    secutil.write_atomically(path, OLD + "\n")
    server = secutil.Crabcached(binary, out_dir, [f"--auth_token_file={path}",
                                                  "--reload_interval=1h"], name="sighup")
    try:
        secutil.write_atomically(path, NEW + "\n")
        fp = ct.FastPath(server.fastpath_port)
        assert fp_auth(fp, NEW)[0] == fp.ERROR  # No reload yet: the hour has not passed.
        fp.close()
        server.sighup()
        server.wait_log("auth tokens reloaded")
        fp = ct.FastPath(server.fastpath_port)
        assert fp_auth(fp, NEW) == (fp.OK, None)
        fp.close()
    finally:
        assert server.stop() == 0, server.text()


def check_cli(cli, server, out_dir):
    """crabcache-cli --auth_token_file sends AUTH first; without it the server refuses."""
    token_file = os.path.join(out_dir, "cli-token")
    secutil.write_atomically(token_file, f"# for the cli\n{NEW}\n")
    base = [cli, "--port", str(server.fastpath_port)]
    run = subprocess.run(base + ["--auth_token_file", token_file, "put", "cli", "ok"],
                         capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == 0 and run.stdout.strip() == "OK", run
    run = subprocess.run(base + ["get", "cli"], capture_output=True, text=True, timeout=30,
                         check=False)
    assert run.returncode == 2 and "UNAUTHENTICATED" in run.stderr, run


def check_rate_limit(binary, out_dir, pb2):
    path = os.path.join(out_dir, "limit-tokens")
    secutil.write_atomically(path, OLD + "\n")
    server = secutil.Crabcached(binary, out_dir, [f"--auth_token_file={path}",
                                                  "--grpc_auth_max_failures=3",
                                                  "--grpc_auth_failure_window=10m"],
                                name="ratelimit")
    try:
        channel = grpc.insecure_channel(server.grpc_target)
        good = (("authorization", "Bearer " + OLD),)
        ping = channel.unary_unary("/crabcache.v1.Cache/Ping", request_serializer=None,
                                   response_deserializer=None)

        def code(metadata):
            try:
                ping(b"", metadata=metadata, timeout=10)
                return grpc.StatusCode.OK
            except grpc.RpcError as e:
                return e.code()

        assert code(good) == grpc.StatusCode.OK
        for _ in range(5):  # Missing tokens guess nothing: not limited.
            assert code(()) == grpc.StatusCode.UNAUTHENTICATED
        for i in range(3):
            assert code((("authorization", f"Bearer guess-{i}-0123456789abcdef"),)) == \
                grpc.StatusCode.UNAUTHENTICATED
        codes = call_all_methods(pb2, channel, good)
        assert all(c == grpc.StatusCode.RESOURCE_EXHAUSTED for c in codes.values()), codes
        try:
            ping(b"", metadata=good, timeout=10)
        except grpc.RpcError as e:
            assert "too many invalid tokens from 127.0.0.1" in e.details(), e.details()
        m = server.metrics()
        def count(reason):
            return ct.sample(m, "crabcache_auth_failures_total", frontend="grpc", reason=reason)
        assert count("missing") == 5, m
        assert count("invalid") == 3, m
        assert count("rate_limited") == len(codes) + 1, m
        health = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=None,
                                     response_deserializer=None)
        assert health(b"", timeout=10) == b"\x08\x01", "health is not limited"
        fp = ct.FastPath(server.fastpath_port)
        assert fp_auth(fp, OLD) == (fp.OK, None), "the fast path is not limited"
        fp.close()
        channel.close()
    finally:
        assert server.stop() == 0, server.text()


def check_metrics(server):
    m = server.metrics()
    def count(frontend, reason):
        return ct.sample(m, "crabcache_auth_failures_total", frontend=frontend, reason=reason)
    assert count("fastpath", "missing") >= 1, m
    assert count("fastpath", "invalid") >= 3
    assert count("fastpath", "revoked") >= 1
    assert count("grpc", "missing") >= 4
    assert count("grpc", "invalid") >= 4 * 4
    assert count("grpc", "revoked") >= 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--cli", default="", help="crabcache-cli (optional)")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    pb2, pb2_grpc = ct.generate_stubs(os.path.join(args.out_dir, "gen"))
    work = secutil.new_workdir("crabcache-auth-")
    secret = secutil.KubernetesStyleDir(os.path.join(work, "secret"))
    secret.publish({"tokens": f"# two tokens\n{OLD}\n\n{OTHER}\n"})
    # This server sends dozens of invalid tokens from one address on purpose: no per-address
    # limit here (check_rate_limit has its own server).
    server = secutil.Crabcached(args.server, work, [f"--auth_token_file={secret.path('tokens')}",
                                                    "--reload_interval=100ms",
                                                    "--grpc_auth_max_failures=0"])
    with server:
        check_fast_path(server)
        channel = check_grpc(server, pb2, pb2_grpc, args.out_dir)
        check_rotation(server, pb2, pb2_grpc, channel, secret)
        check_metrics(server)
        if args.cli:
            check_cli(args.cli, server, work)
        check_sighup(args.server, work)
    check_rate_limit(args.server, work, pb2)
    print("auth_crabcached_test: OK")


if __name__ == "__main__":
    main()
