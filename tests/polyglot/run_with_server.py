#!/usr/bin/python3
"""Starts a real crabcached on free ports, runs one client test against it, stops the server.

Usage:
  run_with_server.py --server PATH/crabcached [--server_arg=--flag=value ...] -- CLIENT ARGS...

In the client's arguments, {grpc_target} becomes 127.0.0.1:<grpc port>, {fastpath_port},
{metrics_port} and {health_port} the bound ports (0 when that listener is off), {pid} the
server's pid and {tmpdir} a scratch folder. The exit status is the
client's; the server is stopped with SIGTERM (SIGKILL after 10 s) whatever happens, and its log is
printed when the test fails.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

READY_TIMEOUT_S = 30
CLIENT_TIMEOUT_S = 120


def wait_for_ready(path, server):
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"crabcached exited early with status {server.returncode}")
        try:
            with open(path, encoding="utf-8") as f:
                ready = json.load(f)
            if ready.get("grpc_port"):
                return ready
        except (FileNotFoundError, json.JSONDecodeError):
            pass  # Not written yet, or written but not complete.
        time.sleep(0.05)
    raise RuntimeError(f"no ready file after {READY_TIMEOUT_S} s")


def stop(server):
    if server.poll() is not None:
        return server.returncode
    server.send_signal(signal.SIGTERM)
    try:
        return server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True, help="path to crabcached")
    parser.add_argument("--server_arg", action="append", default=[],
                        help="extra crabcached flag (repeatable)")
    parser.add_argument("client", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    client = args.client[1:] if args.client[:1] == ["--"] else args.client
    if not client:
        parser.error("no client command")

    with tempfile.TemporaryDirectory(prefix="crabcache-polyglot-") as tmpdir:
        ready_file = os.path.join(tmpdir, "ready.json")
        log_path = os.path.join(tmpdir, "crabcached.log")
        command = [args.server, "--port", "0", "--grpc_port", "0",
                   "--metrics_address=127.0.0.1:0", "--ready_file", ready_file] + args.server_arg
        with open(log_path, "wb") as log:
            server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        status = 1
        try:
            ready = wait_for_ready(ready_file, server)
            values = {"grpc_target": f"127.0.0.1:{ready['grpc_port']}",
                      "fastpath_port": str(ready.get("fastpath_port", 0)),
                      "metrics_port": str(ready.get("metrics_port", 0)),
                      "health_port": str(ready.get("health_port", 0)),
                      "pid": str(server.pid),
                      "tmpdir": tmpdir}
            argv = [arg.format(**values) for arg in client]
            print("run_with_server:", " ".join(argv), flush=True)
            status = subprocess.run(argv, timeout=CLIENT_TIMEOUT_S, check=False).returncode
        except Exception as e:  # pylint: disable=broad-except
            print(f"run_with_server: {e}", file=sys.stderr)
            status = 1
        finally:
            server_status = stop(server)
            if server_status != 0:
                print(f"run_with_server: warning: crabcached exit status {server_status}",
                      file=sys.stderr)
            if status != 0:
                with open(log_path, "rb") as log:
                    sys.stderr.write(log.read().decode("utf-8", "replace"))
    return status


if __name__ == "__main__":
    sys.exit(main())
