#!/usr/bin/python3
"""`make soak`: both front ends under mixed hostile load against a (by default ASan) crabcached.

Usage: run_soak.py --server build/asan/server/crabcached --driver PATH/crabcache-soak
                   [--seconds 180] [--max_memory_mib 64] [--out_dir DIR]

Two phases share --seconds (2/3 then 1/3), each on a fresh server with --max_memory:
  1. --eviction=noeviction: the durable key set (written once, no TTL, a fraction of the budget)
     must read back exactly, every time and at the end; churn keys with TTLs must never return a
     wrong, stale or resurrected value, expire on time, and may fail to be written only with an
     out-of-memory error.
  2. --eviction=s3fifo: the same model checks, except that any key may be evicted (but not come
     back); the durable keys, read all the time, must keep a hit ratio of at least
     --min_durable_hit_ratio.
Chaos workers meanwhile drop connections mid-pipeline, send malformed frames and partial
frames, cancel streams and send oversized batches (crabcache-soak's header lists them).
The noeviction phase runs with auth on (--auth_token_file): every connection and call
authenticates, chaos workers also send wrong and missing tokens, and the token file is rewritten
every 2 s (same tokens, new comment) so reloads happen under load.

After each phase: the server exits 0 on SIGTERM, its output has no AddressSanitizer,
LeakSanitizer or UndefinedBehaviorSanitizer report, and its peak RSS (sampled every 0.5 s, and
VmHWM) is at most --max_memory plus a fixed overhead for the build (RSS_OVERHEAD_MIB below, or
--rss_overhead_mib). Prints the figures as a Markdown table for docs/benchmarks.md.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "security"))
import secutil  # noqa: E402  pylint: disable=wrong-import-position

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: AddressSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def rotate_tokens(path, stop):
    """Rewrites the token file (same tokens) every 2 s, so the server reloads under load."""
    n = 0
    while not stop.wait(2.0):
        n += 1
        secutil.write_atomically(path, f"# rewrite {n}\n{TOKENS[0]}\n{TOKENS[1]}\n")


TOKENS = ("soak-token-primary-0123456789", "soak-token-second-0123456789")

# The RSS bound is --max_memory + a fixed overhead per build: what the process holds beyond the
# bytes the store accounts for. Measured at the soak's --max_memory=64Mi (peak RSS - 64 MiB):
#   asan:    +128 MiB (191.9 MiB peak, docs/benchmarks.md, 2026-11-25), +107-122 MiB in two
#            60 s runs on 2026-12-03 (171.0-185.9 MiB); an older server peaked at 206 MiB. Shadow
#            memory (1/8 of what the allocator maps), redzones around every block, the 16 MiB
#            quarantine (ASAN_OPTIONS below) and ASan's allocator caches.
#   release: +73 MiB (137.4 MiB peak, 2026-11-25), +43-60 MiB on 2026-12-03 (106.9 and
#            123.8 MiB). glibc's per-thread arenas, fragmentation from values of 16 B to 256 KiB
#            churning at the limit, connection buffers, gRPC messages in flight, thread stacks.
# Each default is about 1.25 x the largest recent overhead (rounded up to 16 MiB), for
# run-to-run variation on a loaded machine; a leak or an unbounded buffer grows far past it in a
# soak. Part of the overhead (fragmentation, redzones, shadow) grows with the store, so the
# figures hold for --max_memory_mib near 64; measure and pass --rss_overhead_mib for other sizes.
RSS_OVERHEAD_MIB = {"asan": 160, "release": 96}


def run_phase(args, eviction, seconds, work, auth):
    env = dict(os.environ)
    # A small quarantine keeps ASan's own memory use bounded and comparable to the budget.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1:quarantine_size_mb=16")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    ready = os.path.join(work, f"{eviction}.ready.json")
    log_path = os.path.join(work, f"{eviction}.log")
    command = [args.server, "--address=127.0.0.1", "--port=0", "--grpc_port=0",
               "--metrics_address=127.0.0.1:0", f"--ready_file={ready}", "--threads=2",
               f"--max_memory={args.max_memory_mib}Mi", f"--eviction={eviction}",
               "--max_batch_commands=1000", "--idle_timeout=5s", "--shutdown_grace=10s"]
    token_file = os.path.join(work, "tokens")
    driver_auth = []
    rotation_stop = threading.Event()
    if auth:
        secutil.write_atomically(token_file, f"{TOKENS[0]}\n{TOKENS[1]}\n")
        command += [f"--auth_token_file={token_file}", "--reload_interval=500ms"]
        driver_auth = [f"--token_file={token_file}"]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)

    def text():
        with open(log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    try:
        def read_ready():
            if server.poll() is not None:
                raise AssertionError(f"crabcached exited early:\n{text()}")
            try:
                with open(ready, encoding="utf-8") as f:
                    return json.load(f)
            except (FileNotFoundError, json.JSONDecodeError):
                return None
        info = secutil.wait_until(read_ready, timeout_s=60, what="the ready file")
        peak = {"rss_kib": 0, "used_bytes": 0.0}
        sampling = threading.Event()

        def sample():
            n = 0
            while not sampling.is_set():
                peak["rss_kib"] = max(peak["rss_kib"], status_kib(server.pid, "VmRSS"))
                if n % 4 == 0:  # Every 2 s: how close the store came to --max_memory.
                    try:
                        m = secutil.ct.parse_exposition(secutil.ct.scrape(info["metrics_port"]))
                        peak["used_bytes"] = max(peak["used_bytes"], secutil.ct.sample(
                            m, "crabcache_memory_used_bytes"))
                    except OSError:
                        pass
                n += 1
                time.sleep(0.5)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        if auth:
            threading.Thread(target=rotate_tokens, args=(token_file, rotation_stop),
                             daemon=True).start()
        driver = subprocess.run(
            [args.driver, f"--fastpath_port={info['fastpath_port']}",
             f"--grpc_target=127.0.0.1:{info['grpc_port']}", f"--seconds={seconds}",
             f"--eviction={eviction}", "--max_batch_commands=1000",
             f"--min_durable_hit_ratio={args.min_durable_hit_ratio if eviction != 'noeviction' else 0}"]
            + driver_auth,
            capture_output=True, text=True, timeout=seconds + 600, check=False)
        metrics = secutil.ct.parse_exposition(secutil.ct.scrape(info["metrics_port"]))
        hwm_kib = status_kib(server.pid, "VmHWM")
        rotation_stop.set()
        sampling.set()
        sampler.join()
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            exit_status = server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            exit_status = None
    figures = json.loads(driver.stdout.strip().splitlines()[-1]) if driver.stdout.strip() else {}
    log_text = text()
    problems = []
    if driver.returncode != 0:
        problems.append(f"driver exit {driver.returncode}:\n{driver.stderr[-4000:]}")
    if exit_status != 0:
        problems.append(f"crabcached exit status {exit_status} after SIGTERM")
    reports = [m for m in SANITIZER_MARKERS if m in log_text]
    if reports:
        problems.append(f"sanitizer reports in the server output: {reports}")
    limit_kib = (args.max_memory_mib + args.rss_overhead_mib) * 1024
    peak_kib = max(peak["rss_kib"], hwm_kib)
    if peak_kib > limit_kib:
        problems.append(f"peak RSS {peak_kib // 1024} MiB above {limit_kib // 1024} MiB")
    figures.update({
        "eviction": eviction, "max_memory_mib": args.max_memory_mib,
        "peak_rss_mib": round(peak_kib / 1024, 1), "rss_limit_mib": round(limit_kib / 1024, 1),
        "peak_memory_used_mib": round(peak["used_bytes"] / 2**20, 1),
        "evictions": sum(v for (n, _), v in metrics.items() if n == "crabcache_evictions_total"),
        "expirations": sum(v for (n, _), v in metrics.items()
                           if n == "crabcache_expirations_total"),
        "protocol_errors": sum(v for (n, _), v in metrics.items()
                               if n == "crabcache_protocol_errors_total"),
        "server_exit": exit_status, "sanitizer_reports": len(reports),
        "auth": auth,
        "auth_reloads": secutil.ct.sample(metrics, "crabcache_auth_reloads_total",
                                          result="success"),
        "auth_failures": sum(v for (n, _), v in metrics.items()
                             if n == "crabcache_auth_failures_total"),
    })
    if auth and figures["auth_reloads"] < 1:
        problems.append("the token file was rewritten but never reloaded")
    if problems:
        sys.stderr.write(log_text[-20000:])
    return figures, problems


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--driver", required=True)
    parser.add_argument("--seconds", type=int, default=180)
    parser.add_argument("--max_memory_mib", type=int, default=64)
    parser.add_argument("--min_durable_hit_ratio", type=float, default=0.85)
    # Peak RSS may exceed --max_memory by this much; default RSS_OVERHEAD_MIB for the build.
    parser.add_argument("--rss_overhead_mib", type=int, default=None)
    parser.add_argument("--out_dir", default="")
    args = parser.parse_args()
    with open(args.server, "rb") as f:
        build = "asan" if b"AddressSanitizer" in f.read() else "release"
    if args.rss_overhead_mib is None:
        args.rss_overhead_mib = RSS_OVERHEAD_MIB[build]
    print(f"soak: {'ASan' if build == 'asan' else 'non-ASan'} server; RSS bound "
          f"{args.max_memory_mib} MiB + {args.rss_overhead_mib} MiB = "
          f"{args.max_memory_mib + args.rss_overhead_mib} MiB", flush=True)
    work = args.out_dir or tempfile.mkdtemp(prefix="crabcache-soak-")
    os.makedirs(work, exist_ok=True)
    phases = [("noeviction", max(10, args.seconds * 2 // 3)),
              ("s3fifo", max(10, args.seconds - args.seconds * 2 // 3))]
    all_figures, all_problems = [], []
    for eviction, seconds in phases:
        print(f"soak: {eviction} for {seconds} s ...", flush=True)
        figures, problems = run_phase(args, eviction, seconds, work,
                                      auth=eviction == "noeviction")
        all_figures.append(figures)
        all_problems += [f"[{eviction}] {p}" for p in problems]
        print(json.dumps(figures), flush=True)
    print("\n| phase | seconds | commands | ops/s | chaos actions | OOM errors | evictions "
          "| expirations | durable hit ratio | peak store bytes (MiB) | peak RSS (MiB) "
          "| RSS bound (MiB) | violations |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for f in all_figures:
        phase = f"{f['eviction']}{' + auth' if f.get('auth') else ''}"
        print(f"| {phase} | {f.get('seconds')} | {f.get('commands')} "
              f"| {f.get('ops_per_second')} | {f.get('chaos_actions')} | {f.get('oom_errors')} "
              f"| {int(f['evictions'])} | {int(f['expirations'])} | {f.get('durable_hit_ratio')} "
              f"| {f['peak_memory_used_mib']} | {f['peak_rss_mib']} | {f['rss_limit_mib']} "
              f"| {f.get('violations')} |")
    print(f"\nlogs: {work}")
    if all_problems:
        print("\nSOAK FAILED:\n" + "\n".join(all_problems), file=sys.stderr)
        return 1
    print("soak: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
