#!/usr/bin/env python3
"""Runs crabcached and redis-server side by side under the same load and reports ratios.

  /usr/bin/python3 bench/compare.py --build build/release [--rounds 3] [--duration 5] [--quick]
                                    [--write-docs docs/benchmarks.md] [--chart docs/bench.svg]

Both servers run on loopback with their own ports; persistence is off for Redis. Each workload
runs against each server in alternation for several rounds; the report gives medians and the
ratio CrabCache/Redis for throughput and for operations per server CPU-second (the fair figure on
a shared 2-core machine). A memory run loads 1,000,000 keys (16-byte keys, 10-byte values) into
each and reports RSS per key. Standard library only.
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOADS = [
    # (name, crabcache args, redis args or None)
    ("pipeline 1", ["--protocol", "binary", "--pipeline", "1"], ["--protocol", "resp", "--pipeline", "1"]),
    ("pipeline 16", ["--protocol", "binary", "--pipeline", "16"], ["--protocol", "resp", "--pipeline", "16"]),
    ("pipeline 64", ["--protocol", "binary", "--pipeline", "64"], ["--protocol", "resp", "--pipeline", "64"]),
    ("gRPC batch 1", ["--protocol", "grpc", "--pipeline", "1", "--streams", "8"], None),
    ("gRPC batch 16", ["--protocol", "grpc", "--pipeline", "16", "--streams", "8"], None),
    ("gRPC batch 64", ["--protocol", "grpc", "--pipeline", "64", "--streams", "8"], None),
    ("gRPC batch 256", ["--protocol", "grpc", "--pipeline", "256", "--streams", "8"], None),
    ("gRPC unary Get", ["--protocol", "grpc", "--unary", "--get-ratio", "1", "--streams", "8"], None),
]
COMMON = ["--connections", "50", "--get-ratio", "0.9", "--keys", "100000", "--value-size", "64"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Servers:
    def __init__(self, build, tmp):
        self.build = build
        self.tmp = tmp
        self.procs = []

    def start_redis(self):
        port = free_port()
        p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--protected-mode", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        wait_port(port)
        return p, port

    def start_crabcache(self):
        ready = os.path.join(self.tmp, f"ready-{len(self.procs)}.json")
        p = subprocess.Popen([os.path.join(self.build, "server", "crabcached"), "--address", "127.0.0.1",
                              "--port", "0", "--grpc_port", "0", "--metrics_address", "127.0.0.1:0",
                              "--ready_file", ready, "--log_level", "warning"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        deadline = time.time() + 15
        while not os.path.exists(ready):
            if time.time() > deadline or p.poll() is not None:
                raise RuntimeError("crabcached did not start")
            time.sleep(0.05)
        with open(ready) as f:
            return p, json.load(f)

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def bench(build, args, port, pid, duration, warmup):
    cmd = [os.path.join(build, "bench", "crabcache-bench"), *COMMON, *args, "--port", str(port),
           "--server-pid", str(pid), "--duration", str(duration), "--warmup", str(warmup), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + warmup + 120)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def memory_run(build, servers, keys):
    results = {}
    load = ["--keys", str(keys), "--key-size", "16", "--value-size", "10", "--requests", "1",
            "--warmup", "0", "--connections", "1", "--get-ratio", "1", "--json"]
    rp, rport = servers.start_redis()
    cp, ports = servers.start_crabcache()
    for name, proc, args in (("redis", rp, ["--protocol", "resp", "--port", str(rport)]),
                             ("crabcache", cp, ["--protocol", "binary", "--port", str(ports["fastpath_port"])])):
        before = rss_bytes(proc.pid)
        subprocess.run([os.path.join(build, "bench", "crabcache-bench"), *args, *load], check=True,
                       capture_output=True, timeout=600)
        results[name] = (rss_bytes(proc.pid) - before) / keys
    for p in (rp, cp):
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)
    return results


def fmt(x, digits=0):
    return f"{x:,.{digits}f}"


def render(rows, memory, meta):
    lines = [f"Measured {meta['date']} on {meta['cpus']} cores, {meta['rounds']} rounds of "
             f"{meta['duration']} s each (medians), 50 connections, 90 % GET, 100,000 keys, "
             "64-byte values; gRPC rows use 8 streams. Redis: redis-server "
             f"{meta['redis_version']}, persistence off. Command: `{meta['command']}`.", "",
             "| workload | CrabCache ops/s | Redis ops/s | ops/s ratio | CrabCache ops/server-CPU-s "
             "| Redis ops/server-CPU-s | CPU-efficiency ratio | CrabCache p50/p99/p99.9 us "
             "| Redis p50/p99/p99.9 us |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c, rd = r["crabcache"], r.get("redis")
        lat = lambda m: f"{m['p50_us']:.0f} / {m['p99_us']:.0f} / {m['p999_us']:.0f}"
        if rd:
            lines.append(f"| {r['name']} | {fmt(c['ops_per_sec'])} | {fmt(rd['ops_per_sec'])} | "
                         f"{c['ops_per_sec'] / rd['ops_per_sec']:.2f}x | "
                         f"{fmt(c['ops_per_server_cpu_second'])} | {fmt(rd['ops_per_server_cpu_second'])} | "
                         f"{c['ops_per_server_cpu_second'] / rd['ops_per_server_cpu_second']:.2f}x | "
                         f"{lat(c)} | {lat(rd)} |")
        else:
            lines.append(f"| {r['name']} | {fmt(c['ops_per_sec'])} | - | - | "
                         f"{fmt(c['ops_per_server_cpu_second'])} | - | - | {lat(c)} | - |")
    if memory:
        lines += ["", f"Memory: RSS per key after loading 1,000,000 keys (16-byte keys, 10-byte "
                  f"values): CrabCache {memory['crabcache']:.1f} bytes, Redis {memory['redis']:.1f} bytes "
                  f"(ratio {memory['crabcache'] / memory['redis']:.2f})."]
    return "\n".join(lines)


def median_of(runs):
    keys = ["ops_per_sec", "ops_per_server_cpu_second", "p50_us", "p99_us", "p999_us"]
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def chart(rows, path):
    data = os.path.join(os.path.dirname(os.path.abspath(path)), ".bench-chart.dat")
    with open(data, "w") as f:
        for r in rows:
            redis = r["redis"]["ops_per_server_cpu_second"] if r.get("redis") else 0
            f.write(f"\"{r['name']}\" {r['crabcache']['ops_per_server_cpu_second']:.0f} {redis:.0f}\n")
    script = f"""set terminal svg size 900,420 dynamic font 'sans,11'
set output '{path}'
set title 'Operations per server CPU-second (higher is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xtics rotate by -25
set format y '%.0s%c'
set key top left
set grid ytics
plot '{data}' using 2:xtic(1) title 'CrabCache', '' using 3 title 'Redis'
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    os.unlink(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build/release")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--memory-keys", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="1 round of 1 s, a few workloads: a smoke test")
    ap.add_argument("--write-docs", help="replace the generated section of this Markdown file")
    ap.add_argument("--chart", help="write an SVG chart (gnuplot)")
    args = ap.parse_args()
    workloads = WORKLOADS
    if args.quick:
        args.rounds, args.duration, args.warmup, args.memory_keys = 1, 1, 0.2, 20000
        workloads = [WORKLOADS[1], WORKLOADS[5]]
    with tempfile.TemporaryDirectory() as tmp:
        servers = Servers(args.build, tmp)
        try:
            rp, rport = servers.start_redis()
            cp, ports = servers.start_crabcache()
            runs = {w[0]: {"crabcache": [], "redis": []} for w in workloads}
            for rnd in range(args.rounds):
                for name, cargs, rargs in workloads:
                    port = ports["grpc_port"] if "grpc" in cargs else ports["fastpath_port"]
                    order = [("crabcache", cargs, port, cp.pid)]
                    if rargs:
                        order.append(("redis", rargs, rport, rp.pid))
                    if rnd % 2:
                        order.reverse()  # Alternate who goes first.
                    for who, wargs, wport, pid in order:
                        r = bench(args.build, wargs, wport, pid, args.duration, args.warmup)
                        runs[name][who].append(r)
                        print(f"round {rnd + 1} {name:>16} {who:>9}: {r['ops_per_sec']:>12,.0f} ops/s "
                              f"{r['ops_per_server_cpu_second']:>12,.0f} ops/cpu-s p99 {r['p99_us']:.0f} us",
                              flush=True)
            servers.stop_all()
            memory = memory_run(args.build, servers, args.memory_keys)
        finally:
            servers.stop_all()
    rows = []
    for name, _, rargs in workloads:
        row = {"name": name, "crabcache": median_of(runs[name]["crabcache"])}
        if rargs:
            row["redis"] = median_of(runs[name]["redis"])
        rows.append(row)
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True,
                                   text=True).stdout.split()[2].removeprefix("v=")
    meta = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "rounds": args.rounds,
            "duration": args.duration, "redis_version": redis_version,
            "command": "/usr/bin/python3 " + " ".join(sys.argv)}
    report = render(rows, memory, meta)
    print(report)
    if args.chart:
        chart(rows, args.chart)
    if args.write_docs:
        begin, end = "<!-- compare.py begin -->", "<!-- compare.py end -->"
        with open(args.write_docs) as f:
            doc = f.read()
        if begin not in doc or end not in doc:
            sys.exit(f"{args.write_docs} lacks the {begin} / {end} markers")
        head, rest = doc.split(begin, 1)
        _, tail = rest.split(end, 1)
        with open(args.write_docs, "w") as f:
            f.write(head + begin + "\n" + report + "\n" + end + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
