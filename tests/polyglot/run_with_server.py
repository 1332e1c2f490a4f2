#!/usr/bin/python3
"""Starts a real crabcached on free ports, runs one client test against it, stops the server.

Usage:
  run_with_server.py --server PATH/crabcached [--server_arg=--flag=value ...]
                     [--client_timeout SECONDS] -- CLIENT ARGS...

In the client's arguments, {grpc_target} becomes 127.0.0.1:<grpc port>, {fastpath_port},
{metrics_port} and {health_port} the bound ports (0 when that listener is off), {pid} the
server's pid, {ready_file} its ready file and {tmpdir} a scratch folder. The exit status is the
client's; the server is stopped with SIGTERM (SIGKILL after 30 s) whatever happens, and its log
is printed when the test fails. A CLIENT that is not found fails before the server starts, with
a message naming the package that provides it.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
import crabcache_testing as ct  # pylint: disable=wrong-import-position

# Where a client command comes from, for the message when it is missing.
PROVIDERS = {"node": "Debian nodejs (tools/packages.txt [test]; tools/install-deps.sh test)"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True, help="path to crabcached")
    parser.add_argument("--server_arg", action="append", default=[],
                        help="extra crabcached flag (repeatable)")
    parser.add_argument("--client_timeout", type=float, default=120,
                        help="seconds the client may run")
    parser.add_argument("client", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    client = args.client[1:] if args.client[:1] == ["--"] else args.client
    if not client:
        parser.error("no client command")
    if shutil.which(client[0]) is None:
        provider = PROVIDERS.get(os.path.basename(client[0]), "tools/packages.txt [test]")
        print(f"run_with_server: client command {client[0]!r} not found; install {provider}",
              file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="crabcache-polyglot-") as tmpdir:
        status = 1
        server = None
        try:
            server = ct.Crabcached(args.server, tmpdir, args.server_arg)
            ready = server.ready
            values = {"grpc_target": server.grpc_target,
                      "fastpath_port": str(ready.get("fastpath_port", 0)),
                      "metrics_port": str(ready.get("metrics_port", 0)),
                      "health_port": str(ready.get("health_port", 0)),
                      "pid": str(server.proc.pid),
                      "ready_file": server.ready_file,
                      "tmpdir": tmpdir}
            argv = [arg.format(**values) for arg in client]
            print("run_with_server:", " ".join(argv), flush=True)
            status = subprocess.run(argv, timeout=args.client_timeout, check=False).returncode
        except Exception as e:  # pylint: disable=broad-except
            print(f"run_with_server: {e}", file=sys.stderr)
            status = 1
        finally:
            if server is not None:
                server_status = server.stop()
                if server_status != 0:
                    print(f"run_with_server: warning: crabcached exit status {server_status}",
                          file=sys.stderr)
                if status != 0:
                    sys.stderr.write(server.text())
    return status


if __name__ == "__main__":
    sys.exit(main())
