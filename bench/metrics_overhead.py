#!/usr/bin/python3
"""What Prometheus metrics cost: crabcached with metrics on vs off, side by side.

  /usr/bin/python3 bench/metrics_overhead.py [--build build/release] [--rounds 5] [--duration 5]

Starts two crabcached processes, one with the defaults (metrics on: the executor records every
batch into per-thread counters) and one with --metrics_address= (the executor gets no metrics
sink), and runs the same crabcache-bench workloads against each in alternation (who goes first
alternates too). Reports, per workload, the median ops per server CPU-second of each and the
median of the round-by-round ratios off/on as the cost of metrics (goal: under 3 %). Both
servers use one fast path loop (--threads=1) so they compete for the cores alike.
Standard library only; reuses compare.py's server handling.
"""

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # pylint: disable=wrong-import-position

WORKLOADS = [
    ("fast path, pipeline 1", ["--protocol", "binary", "--pipeline", "1"], "fastpath_port"),
    ("fast path, pipeline 16", ["--protocol", "binary", "--pipeline", "16"], "fastpath_port"),
    ("gRPC BatchExecute, 64 per batch",
     ["--protocol", "grpc", "--pipeline", "64", "--streams", "8"], "grpc_port"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="crabcache-metrics-cost-") as tmp:
        os.makedirs(os.path.join(tmp, "on"))
        os.makedirs(os.path.join(tmp, "off"))
        on = compare.Servers(args.build, os.path.join(tmp, "on"), ["--threads=1"])
        off = compare.Servers(args.build, os.path.join(tmp, "off"),
                              ["--threads=1", "--metrics_address="])
        try:
            on_proc, on_info = on.start_crabcached()
            off_proc, off_info = off.start_crabcached()
            servers = {"on": (on_proc, on_info), "off": (off_proc, off_info)}
            rows = []
            for name, bench_args, port_key in WORKLOADS:
                runs = {"on": [], "off": []}
                for r in range(args.rounds):
                    order = ["on", "off"] if r % 2 == 0 else ["off", "on"]
                    for which in order:
                        proc, info = servers[which]
                        result = compare.run_bench(
                            args.build, bench_args, info[port_key], proc.pid,
                            ["--duration", str(args.duration), "--warmup", str(args.warmup)])
                        runs[which].append(result["ops_per_server_cpu_second"])
                        compare.log(f"{name} [{which}] round {r + 1}: "
                                    f"{result['ops_per_server_cpu_second']:,.0f} ops/CPU-s")
                costs = [1 - a / b for a, b in zip(runs["on"], runs["off"])]
                rows.append((name, statistics.median(runs["on"]), statistics.median(runs["off"]),
                             statistics.median(costs), min(costs), max(costs)))
        finally:
            on.stop_all()
            off.stop_all()

    print(f"metrics on vs off, {args.rounds} rounds x {args.duration:g} s, --threads=1, "
          f"ops per server CPU-second (medians)\n")
    print("| workload | metrics on | metrics off | cost of metrics (median, range) |")
    print("|---|---|---|---|")
    for name, on_v, off_v, cost, lo, hi in rows:
        print(f"| {name} | {on_v:,.0f} | {off_v:,.0f} | {cost * 100:+.1f} % "
              f"({lo * 100:+.1f} % .. {hi * 100:+.1f} %) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
