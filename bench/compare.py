#!/usr/bin/python3
"""CrabCache vs redis-server, side by side on this machine, with crabcache-bench.

  /usr/bin/python3 bench/compare.py [--build build/release] [--rounds 5] [--duration 5]
                                    [--warmup 1] [--out bench/results] [--only REGEX]
                                    [--skip-memory] [--quick]

Starts redis-server (persistence off, 127.0.0.1, a free port) and crabcached (127.0.0.1, free
ports, --ready_file) once, then runs every workload against each server in alternation for
several rounds (who goes first alternates too), and reports medians and the ratio
CrabCache/Redis. The fair figure on a shared 2-core machine is operations per *server*
CPU-second (the server's utime+stime from /proc over the measured window): it does not depend on
how much CPU the load generator or other work took. A memory run then loads 1,000,000 keys
(16-byte keys, 10-byte values) into a fresh pair of servers and reports RSS per key.

Writes OUT/latest.md (Markdown tables for docs/benchmarks.md), OUT/latest.json (every run's raw
figures) and OUT/ops_per_cpu.svg and .png (gnuplot). Standard library only. Exit status 1 when a server
does not start or a bench run fails (a wrong reply fails a run).
"""
import argparse
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

COMMON = ["--connections", "50", "--get-ratio", "0.9", "--keys", "100000", "--key-size", "16",
          "--value-size", "64"]
GRPC_BATCH = ["--protocol", "grpc", "--streams", "8", "--connections", "8"]

# (name, crabcache-bench args for CrabCache, args for Redis or None, Redis row to compare with)
WORKLOADS = [
    ("pipeline 1", ["--protocol", "binary", "--pipeline", "1"],
     ["--protocol", "resp", "--pipeline", "1"], "pipeline 1"),
    ("pipeline 16", ["--protocol", "binary", "--pipeline", "16"],
     ["--protocol", "resp", "--pipeline", "16"], "pipeline 16"),
    ("pipeline 64", ["--protocol", "binary", "--pipeline", "64"],
     ["--protocol", "resp", "--pipeline", "64"], "pipeline 64"),
    ("gRPC batch 1", GRPC_BATCH + ["--pipeline", "1"], None, "pipeline 16"),
    ("gRPC batch 16", GRPC_BATCH + ["--pipeline", "16"], None, "pipeline 16"),
    ("gRPC batch 64", GRPC_BATCH + ["--pipeline", "64"], None, "pipeline 16"),
    ("gRPC batch 256", GRPC_BATCH + ["--pipeline", "256"], None, "pipeline 16"),
    # 50 unary calls in flight over 50 channels: the gRPC counterpart of 50 connections at
    # pipeline 1.
    ("gRPC unary Get", ["--protocol", "grpc", "--unary", "--get-ratio", "1", "--streams", "50"],
     None, "pipeline 1"),
]

MEMORY_KEYS = 1_000_000
METRICS = ["ops_per_sec", "ops_per_server_cpu_second", "p50_us", "p99_us", "p999_us",
           "server_cpu_seconds", "server_user_seconds"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Servers:
    """Starts and stops redis-server and crabcached processes; stop_all() never leaks one."""

    def __init__(self, build, tmp, crabcached_args):
        self.build = build
        self.tmp = tmp
        self.crabcached_args = crabcached_args
        self.procs = []
        self.started = 0

    def start_redis(self):
        port = free_port()
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no",
             "--logfile", os.path.join(self.tmp, f"redis-{port}.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return proc, port
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING")

    def start_crabcached(self):
        self.started += 1
        ready = os.path.join(self.tmp, f"ready-{self.started}.json")
        log_path = os.path.join(self.tmp, f"crabcached-{self.started}.log")
        cmd = [os.path.join(self.build, "server", "crabcached"), "--address", "127.0.0.1",
               "--port", "0", "--grpc_port", "0", "--metrics_address", "127.0.0.1:0",
               "--ready_file", ready, "--log_level", "warning"] + self.crabcached_args
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                with open(log_path, encoding="utf-8", errors="replace") as f:
                    raise RuntimeError(f"crabcached exited with {proc.returncode}:\n{f.read()}")
            try:
                with open(ready, encoding="utf-8") as f:
                    info = json.load(f)
                if info.get("grpc_port"):
                    return proc, info
            except (FileNotFoundError, json.JSONDecodeError):
                pass
            time.sleep(0.05)
        raise RuntimeError("crabcached wrote no ready file")

    def report_deaths(self):
        """After a failure: which server exited on its own, and the tail of crabcached's logs."""
        for proc in self.procs:
            if proc.poll() is not None:
                log(f"compare.py: {proc.args[0]} (pid {proc.pid}) had exited with status "
                    f"{proc.returncode}")
        for name in sorted(os.listdir(self.tmp)):
            if name.endswith(".log"):
                with open(os.path.join(self.tmp, name), encoding="utf-8", errors="replace") as f:
                    tail = f.read()[-3000:]
                if tail.strip():
                    log(f"--- {name} (tail)\n{tail}")

    def stop(self, proc):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self):
        for proc in self.procs:
            self.stop(proc)
        self.procs = []


def run_bench(build, args, port, pid, extra):
    cmd = [os.path.join(build, "bench", "crabcache-bench"), *COMMON, *args, "--port", str(port),
           "--server-pid", str(pid), "--json", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()}")
    result = json.loads(out.stdout)
    result["command"] = " ".join(cmd)
    return result


def median_of(runs):
    """Per-metric medians; None for a metric (or every metric) without runs."""
    return {k: statistics.median(r[k] for r in runs) if runs else None for k in METRICS}


def memory_run(build, servers, keys):
    """Loads `keys` keys into a fresh redis-server and crabcached; RSS per key for each."""
    load = ["--keys", str(keys), "--key-size", "16", "--value-size", "10", "--load-only",
            "--connections", "8", "--json"]
    redis, redis_port = servers.start_redis()
    crab, info = servers.start_crabcached()
    crab_args = (["--protocol", "binary", "--port", str(info["fastpath_port"])]
                 if info.get("fastpath_port") else
                 ["--protocol", "grpc", "--port", str(info["grpc_port"])])
    results = {}
    for name, proc, args in (("redis", redis, ["--protocol", "resp", "--port", str(redis_port)]),
                             ("crabcache", crab, crab_args)):
        time.sleep(0.5)  # Let start-up allocations settle before the baseline.
        before = rss_bytes(proc.pid)
        cmd = [os.path.join(build, "bench", "crabcache-bench"), *args, *load,
               "--server-pid", str(proc.pid)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
        time.sleep(0.5)
        after = rss_bytes(proc.pid)
        results[name] = {"rss_before": before, "rss_after": after,
                         "delta_per_key": (after - before) / keys, "total_per_key": after / keys,
                         "load_seconds": json.loads(out.stdout)["prefill_seconds"],
                         "command": " ".join(cmd)}
        log(f"memory {name:>9}: RSS {before / 2**20:.1f} -> {after / 2**20:.1f} MiB, "
            f"{results[name]['delta_per_key']:.1f} bytes/key")
    servers.stop(redis)
    servers.stop(crab)
    return results


def ratio(a, b):
    return a / b if a and b else None


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}x"


def paired_ratios(crab_runs, redis_runs, key="ops_per_server_cpu_second"):
    """Round-by-round ratios (CrabCache run i / Redis run i of the same round): pairing runs
    that ran back to back cancels much of the drift of a shared machine."""
    return [ratio(c[key], r[key]) for c, r in zip(crab_runs, redis_runs)
            if ratio(c[key], r[key]) is not None]


def fmt_spread(ratios):
    """Median ratio with its range over the rounds, e.g. "1.73x (1.50-2.10)"."""
    if not ratios:
        return "-"
    if len(ratios) == 1:
        return fmt_ratio(ratios[0])
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def fmt_int(x):
    return "-" if x is None else f"{x:,.0f}"


def kernel_share(m):
    """The share of the server's CPU spent in the kernel (syscalls, TCP, scheduling)."""
    if not m.get("server_cpu_seconds") or m.get("server_user_seconds") is None:
        return "-"
    return f"{100 * (1 - m['server_user_seconds'] / m['server_cpu_seconds']):.0f} %"


def lat(m):
    if m["p50_us"] is None:
        return "-"
    return f"{m['p50_us']:.0f} / {m['p99_us']:.0f} / {m['p999_us']:.0f}"


def targets(rows, memory, runs):
    """Issue 7's targets: (description, measured, goal, met)."""
    by_name = {r["name"]: r for r in rows}
    out = []

    def cpu_target(label, crab_row, redis_row, goal):
        c, r = by_name.get(crab_row), by_name.get(redis_row)
        if not c or not r or not r.get("redis"):
            return
        ratios = c["cpu_ratios"] if c["reference"] == redis_row else []
        if not ratios:
            return
        value = statistics.median(ratios)
        out.append((label, fmt_spread(ratios), f">= {goal}x", value >= goal))

    cpu_target("fast path ops/server-CPU-s vs Redis, pipeline 1", "pipeline 1", "pipeline 1", 1.0)
    cpu_target("fast path ops/server-CPU-s vs Redis, pipeline 16", "pipeline 16", "pipeline 16",
               2.0)
    cpu_target("fast path ops/server-CPU-s vs Redis, pipeline 64", "pipeline 64", "pipeline 64",
               3.5)
    cpu_target("gRPC BatchExecute 64 vs Redis pipeline 16, ops/server-CPU-s", "gRPC batch 64",
               "pipeline 16", 1.5)
    if memory:
        per_key = memory["crabcache"]["delta_per_key"]
        out.append(("RSS growth per key, 16 B keys, 10 B values",
                    f"{per_key:.1f} B (Redis {memory['redis']['delta_per_key']:.1f} B)",
                    "<= 48 B", per_key <= 48))
    p1 = by_name.get("pipeline 1")
    if p1 and p1.get("redis"):
        c, r = p1["crabcache"]["p99_us"], p1["redis"]["p99_us"]
        if c is not None and r is not None:
            pairs = list(zip(runs["pipeline 1"]["crabcache"], runs["pipeline 1"]["redis"]))
            won = sum(1 for a, b in pairs if a["p99_us"] <= b["p99_us"])
            out.append(("p99 latency at pipeline 1, 50 connections",
                        f"{c:.0f} us (Redis {r:.0f} us; met in {won} of {len(pairs)} rounds)",
                        "<= Redis", c <= r))
    return out


def restart_note(meta):
    stopped = {k: v for k, v in meta.get("restarts", {}).items() if v}
    if not stopped:
        return ""
    return (" Servers stopped from outside during the run and restarted (the interrupted run "
            "repeated): " + ", ".join(f"{k} {v}x" for k, v in stopped.items()) + ".")


def render(rows, memory, meta, runs):
    lines = [
        f"Measured {meta['date']} on {meta['machine']} (1-minute load average "
        f"{meta['loadavg']}); CrabCache {meta['commit']}, "
        f"redis-server {meta['redis_version']} (persistence off). Medians of {meta['rounds']} "
        f"rounds, {meta['duration']} s measured after {meta['warmup']} s of warm-up per run, "
        "servers run in alternation. Load: crabcache-bench, 50 connections, 90 % GET, 100,000 "
        "prefilled keys (16 bytes), 64-byte values, every reply verified. Ratio columns: the "
        "median of the round-by-round ratios, with their range over the rounds in brackets. "
        f"Command: `{meta['command']}`." + restart_note(meta),
        "",
        "### Fast path vs Redis (same connections, pipeline depth and keys)",
        "",
        "| workload | CrabCache ops/s | Redis ops/s | ratio | CrabCache ops per server CPU-s "
        "| Redis ops per server CPU-s | ratio | CrabCache p50 / p99 / p99.9 us "
        "| Redis p50 / p99 / p99.9 us | kernel share of server CPU, CrabCache / Redis |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by_name = {r["name"]: r for r in rows}
    for r in rows:
        if not r.get("redis"):
            continue
        c, d = r["crabcache"], r["redis"]
        lines.append(
            f"| {r['name']} | {fmt_int(c['ops_per_sec'])} | {fmt_int(d['ops_per_sec'])} | "
            f"{fmt_spread(r['ops_ratios'])} | "
            f"{fmt_int(c['ops_per_server_cpu_second'])} | "
            f"{fmt_int(d['ops_per_server_cpu_second'])} | {fmt_spread(r['cpu_ratios'])}"
            f" | {lat(c)} | {lat(d)} | {kernel_share(c)} / {kernel_share(d)} |")
    grpc_rows = [r for r in rows if not r.get("redis")]
    if grpc_rows:
        lines += [
            "",
            "### gRPC (8 BatchExecute streams on 8 channels; unary: 50 calls in flight)",
            "",
            "| workload | ops/s | ops per server CPU-s | compared with | its ops per server CPU-s "
            "| ratio | p50 / p99 / p99.9 us |",
            "|---|---:|---:|---|---:|---:|---:|",
        ]
        for r in grpc_rows:
            c = r["crabcache"]
            ref = by_name.get(r["reference"], {}).get("redis")
            ref_cpu = ref["ops_per_server_cpu_second"] if ref else None
            lines.append(
                f"| {r['name']} | {fmt_int(c['ops_per_sec'])} | "
                f"{fmt_int(c['ops_per_server_cpu_second'])} | Redis {r['reference']} | "
                f"{fmt_int(ref_cpu)} | {fmt_spread(r['cpu_ratios'])} | {lat(c)} |")
    if memory:
        c, d = memory["crabcache"], memory["redis"]
        lines += [
            "",
            f"### Memory: {meta['memory_keys']:,} keys (16-byte keys, 10-byte values), loaded "
            "pipelined (fast path or RESP), RSS from /proc/PID/status",
            "",
            "| server | RSS before | RSS after | RSS growth per key | RSS per key (total) |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, m in (("CrabCache", c), ("Redis", d)):
            lines.append(f"| {name} | {m['rss_before'] / 2**20:.1f} MiB | "
                         f"{m['rss_after'] / 2**20:.1f} MiB | {m['delta_per_key']:.1f} B | "
                         f"{m['total_per_key']:.1f} B |")
    checks = targets(rows, memory, runs)
    if checks:
        lines += ["", "### Issue 7 targets", "", "| target | measured | goal | met |",
                  "|---|---:|---:|---|"]
        for label, measured, goal, met in checks:
            lines.append(f"| {label} | {measured} | {goal} | {'yes' if met else '**no**'} |")
    return "\n".join(lines) + "\n"


def chart(rows, path):
    """Clustered bars of ops per server CPU-second, as `path` (SVG) and the same name with .png.
    A gRPC row's Redis bar is its reference row's (Redis at pipeline 16, or 1 for unary)."""
    data = path + ".dat"
    by_name = {r["name"]: r for r in rows}
    with open(data, "w", encoding="utf-8") as f:
        for r in rows:
            ref = by_name.get(r["reference"], {}).get("redis")
            redis = ref["ops_per_server_cpu_second"] if ref else 0
            crab = r["crabcache"]["ops_per_server_cpu_second"] or 0
            f.write(f"\"{r['name']}\" {crab:.0f} {redis or 0:.0f}\n")
    plot = f"""set title 'Operations per server CPU-second (higher is better; same load, same machine)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -20 nomirror
set format y '%.1s%c'
set yrange [0:*]
set key top left
set grid ytics
plot '{data}' using 2:xtic(1) title 'CrabCache' lc rgb '#c0392b', \\
     '' using 3 title 'redis-server (gRPC rows: Redis pipeline 16; unary: pipeline 1)' \\
       lc rgb '#2c3e50'
"""
    png = os.path.splitext(path)[0] + ".png"
    script = (f"set terminal svg size 960,460 dynamic font 'sans,11' background '#ffffff'\n"
              f"set output '{path}'\n{plot}"
              f"set terminal pngcairo size 960,460 font 'sans,10' background '#ffffff'\n"
              f"set output '{png}'\nreplot\n")
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    os.unlink(data)


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} x {model}, Linux {platform.release()}"


def loadavg():
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build/release", help="build folder (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=5, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--out", default="bench/results", help="folder for latest.md/json/svg")
    ap.add_argument("--only", help="run only workloads whose name matches this regex")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--memory-keys", type=int, default=MEMORY_KEYS)
    ap.add_argument("--crabcached-arg", action="append", default=[],
                    help="extra crabcached flag, e.g. --crabcached-arg=--threads=2 (repeatable)")
    ap.add_argument("--quick", action="store_true",
                    help="1 round of 1 s on a few workloads and 100,000 keys of memory run")
    args = ap.parse_args()
    workloads = WORKLOADS
    if args.quick:
        args.rounds, args.duration, args.warmup, args.memory_keys = 1, 1, 0.2, 100_000
        workloads = [w for w in WORKLOADS if w[0] in ("pipeline 16", "gRPC batch 64")]
    if args.only:
        workloads = [w for w in workloads if re.search(args.only, w[0])]
    extra = ["--duration", str(args.duration), "--warmup", str(args.warmup)]

    runs = {w[0]: {"crabcache": [], "redis": []} for w in workloads}
    load_start = loadavg()
    restarts = {"crabcache": 0, "redis": 0}
    memory = None
    with tempfile.TemporaryDirectory(prefix="crabcache-compare-") as tmp:
        servers = Servers(args.build, tmp, args.crabcached_arg)
        try:
            live = {"redis": servers.start_redis(), "crabcache": servers.start_crabcached()}

            def port_of(who, wargs):
                if who == "redis":
                    return live["redis"][1]
                info = live["crabcache"][1]
                return info["grpc_port"] if wargs[1] == "grpc" else info.get("fastpath_port")

            def run_one(who, wargs):
                # A server that exited (something on a shared machine may stop it) is started
                # again and the run repeated once; a run that fails against a live server fails.
                for attempt in range(2):
                    if live[who][0].poll() is not None:
                        log(f"compare.py: {who} exited ({live[who][0].returncode}); restarting")
                        restarts[who] += 1
                        live[who] = (servers.start_redis() if who == "redis"
                                     else servers.start_crabcached())
                    try:
                        return run_bench(args.build, wargs, port_of(who, wargs),
                                         live[who][0].pid, extra)
                    except RuntimeError:
                        if attempt == 1 or live[who][0].poll() is None:
                            raise
                return None

            for rnd in range(args.rounds):
                for name, crab_args, redis_args, _ in workloads:
                    order = []
                    if port_of("crabcache", crab_args):  # Else Redis still runs for gRPC rows.
                        order.append(("crabcache", crab_args))
                    if redis_args:
                        order.append(("redis", redis_args))
                    if rnd % 2:
                        order.reverse()
                    for who, wargs in order:
                        r = run_one(who, wargs)
                        runs[name][who].append(r)
                        log(f"round {rnd + 1}/{args.rounds} {name:>15} {who:>9}: "
                            f"{r['ops_per_sec']:>11,.0f} ops/s "
                            f"{r['ops_per_server_cpu_second'] or 0:>11,.0f} ops/server-CPU-s "
                            f"p99 {r['p99_us']:,.0f} us")
            servers.stop_all()
            if not args.skip_memory:
                memory = memory_run(args.build, servers, args.memory_keys)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            log(f"compare.py: {e}")
            servers.report_deaths()
            os.makedirs(args.out, exist_ok=True)
            with open(os.path.join(args.out, "failed.json"), "w", encoding="utf-8") as f:
                json.dump({"error": str(e), "runs": runs}, f, indent=1)
            log(f"compare.py: the runs so far are in {args.out}/failed.json")
            return 1
        finally:
            servers.stop_all()

    rows = []
    for name, _, redis_args, reference in workloads:
        crab_runs = runs[name]["crabcache"]
        ref_runs = runs[reference]["redis"] if reference in runs else []
        row = {"name": name, "reference": reference, "crabcache": median_of(crab_runs),
               "cpu_ratios": paired_ratios(crab_runs, ref_runs),
               "ops_ratios": paired_ratios(crab_runs, ref_runs, "ops_per_sec")}
        if redis_args:
            row["redis"] = median_of(runs[name]["redis"])
        rows.append(row)
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                                   check=False).stdout.split()[2].removeprefix("v=")
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
            "commit": git_commit(), "redis_version": redis_version, "rounds": args.rounds,
            "duration": args.duration, "warmup": args.warmup, "memory_keys": args.memory_keys,
            "loadavg": f"{load_start} at the start, {loadavg()} at the end",
            "restarts": restarts,
            "command": "/usr/bin/python3 bench/compare.py " + " ".join(sys.argv[1:])}
    report = render(rows, memory, meta, runs)
    print(report)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "latest.md"), "w", encoding="utf-8") as f:
        f.write(report)
    with open(os.path.join(args.out, "latest.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "rows": rows, "memory": memory, "runs": runs}, f, indent=1)
    if rows:
        chart(rows, os.path.join(args.out, "ops_per_cpu.svg"))
    log(f"wrote {args.out}/latest.md, latest.json and ops_per_cpu.svg/.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
