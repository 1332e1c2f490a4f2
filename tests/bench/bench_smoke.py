#!/usr/bin/python3
"""Smoke test of crabcache-bench against a real crabcached (started by run_with_server.py).

Runs the bench for about a second per workload over each protocol asked for, and checks that it
exits 0 with a JSON report whose every reply was verified. Then proves the verification is live:
a run that expects other values than the server holds must exit 1 naming a wrong value. Asserts
no timing.

  bench_smoke.py --bench PATH --ready_file crabcached's --ready_file --protocols binary,grpc

(run_with_server.py passes crabcached's ready file as {ready_file}; it names the pid and the
ports.)
"""
import argparse
import json
import subprocess
import sys

TIMEOUT_S = 60
SMALL = ["--keys", "5000", "--connections", "4", "--warmup", "0.2", "--duration", "1", "--json"]


def run(cmd):
    print("bench_smoke:", " ".join(cmd), flush=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)


def check_ok(cmd):
    out = run(cmd)
    if out.returncode != 0:
        raise AssertionError(f"exit status {out.returncode}: {out.stderr.strip()}")
    report = json.loads(out.stdout)
    if report["ops"] <= 0 or report["verified"] < report["ops"]:
        raise AssertionError(f"no verified load: {out.stdout.strip()}")
    if report["gets"] == 0 or report["get_hits"] != report["gets"]:
        raise AssertionError(f"prefilled keys missed: {out.stdout.strip()}")
    if report["ops_per_server_cpu_second"] is None:
        raise AssertionError("no server CPU figure although --server-pid was given")
    print(f"bench_smoke: ok: {report['ops']} ops, {report['verified']} replies verified",
          flush=True)


def check_detects_wrong_values(base):
    # The server holds 64-byte values for these keys (the runs above); expecting 32-byte ones
    # without a prefill must fail on the first GET.
    out = run(base + ["--keys", "5000", "--connections", "2", "--warmup", "0", "--requests", "100",
                      "--no-prefill", "--value-size", "32", "--get-ratio", "1"])
    if out.returncode != 1 or "wrong value" not in out.stderr:
        raise AssertionError(f"a wrong value went unnoticed: status {out.returncode}, "
                             f"stderr {out.stderr.strip()!r}")
    print("bench_smoke: ok: a wrong value fails the run", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--ready_file", required=True, help="crabcached's --ready_file")
    ap.add_argument("--protocols", default="binary,grpc")
    args = ap.parse_args()
    with open(args.ready_file, encoding="utf-8") as f:
        ready = json.load(f)
    host = "127.0.0.1"
    pid = ["--server-pid", str(ready["pid"])]
    try:
        for protocol in args.protocols.split(","):
            if protocol == "binary":
                if not ready.get("fastpath_port"):
                    raise AssertionError("crabcached reported no fast path port")
                base = [args.bench, "--protocol", "binary", "--host", host, "--port",
                        str(ready["fastpath_port"])]
                for depth in ("1", "16"):
                    check_ok(base + SMALL + pid + ["--pipeline", depth])
            elif protocol == "grpc":
                base = [args.bench, "--protocol", "grpc", "--host", host, "--port",
                        str(ready["grpc_port"])]
                check_ok(base + SMALL + pid + ["--pipeline", "16", "--streams", "4"])
                check_ok(base + SMALL + pid + ["--unary", "--streams", "4"])
            else:
                raise AssertionError(f"unknown protocol {protocol}")
            check_detects_wrong_values(base)
    except (AssertionError, subprocess.TimeoutExpired, json.JSONDecodeError, KeyError,
            OSError) as e:
        print(f"bench_smoke: FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
