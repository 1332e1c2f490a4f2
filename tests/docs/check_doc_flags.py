#!/usr/bin/python3
"""Checks that every `--flag` README.md and docs/*.md mention exists.

Usage:
  check_doc_flags.py --crabcached PATH --cli PATH --bench PATH [--root REPO]
  check_doc_flags.py --self-test

A `--name` is fine when one of these defines it: `crabcached --helpfull` (abseil's built-ins
included), `crabcache-cli --help`, `crabcache-bench --help`, or the argparse flags of a script
in SCRIPTS. Flags of other tools (helm, kubectl, protoc, ...) are listed in FOREIGN_FLAGS with
the words that name the tool; such a flag passes only where its unit of text (a paragraph, or a
command in a code block with its `\\` continuations) names the tool. Exit status 1 with one
line per unknown flag.
"""

import argparse
import glob
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_operations_doc  # pylint: disable=wrong-import-position
import doccheck  # pylint: disable=wrong-import-position

# Scripts whose flags the docs show; their argparse add_argument("--x", ...) calls define them.
SCRIPTS = ["bench/compare.py", "bench/metrics_overhead.py", "tests/soak/run_soak.py",
           "tests/deploy/memory_headroom.py"]

# Other tools' flags the docs use: flag -> words, one of which names the tool nearby.
_PROTOC = ("protoc",)
FOREIGN_FLAGS = {
    "--set": ("helm",), "--install": ("helm",), "--create-namespace": ("helm",),
    "--strict": ("helm",), "--reuse-values": ("helm",), "--logs": ("helm",),
    "--from-file": ("kubectl",), "--dry-run": ("kubectl",), "--image": ("kubectl",),
    "--build-arg": ("docker",), "--short": ("git",), "--tool": ("valgrind",),
    "--proto_path": _PROTOC, "--plugin": _PROTOC, "--python_out": _PROTOC,
    "--grpc_python_out": _PROTOC, "--go_out": _PROTOC, "--go_opt": _PROTOC,
    "--go-grpc_out": _PROTOC, "--go-grpc_opt": _PROTOC, "--java_out": _PROTOC,
    "--grpc-java_out": _PROTOC,
    # Google Benchmark binaries are named *_bench.
    "--benchmark_min_time": ("_bench",), "--benchmark_repetitions": ("_bench",),
    "--benchmark_report_aggregates_only": ("_bench",), "--benchmark_filter": ("_bench",),
    # The chart checks' own options (tests/deploy/check_chart.mjs).
    "--qos": ("check_chart.mjs",),
}

_FLAG = re.compile(r"(?<![\w-])(--[A-Za-z][A-Za-z0-9_-]*)")
_ARGPARSE = re.compile(r"add_argument\(\s*((?:[\"']-[^\"']*[\"']\s*,\s*)+)")


def script_flags(root):
    flags = set()
    for script in SCRIPTS:
        with open(os.path.join(root, script), encoding="utf-8") as f:
            for m in _ARGPARSE.finditer(f.read()):
                flags.update(re.findall(r"[\"'](--[^\"']+)[\"']", m.group(1)))
    return flags


def help_flags(command):
    run = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    return set(_FLAG.findall(run.stdout + run.stderr))


def text_units(text):
    """(first line number, text) of each paragraph, and of each command of a code block."""
    units, current, start, in_fence = [], [], 0, False
    lines = text.split("\n")

    def flush():
        if current:
            units.append((start, "\n".join(current)))
            current.clear()

    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("```"):
            flush()
            in_fence = not in_fence
            continue
        if not current:
            start = number
        if in_fence:
            current.append(line)
            if not line.rstrip().endswith("\\"):
                flush()
        elif line.strip():
            current.append(line)
        else:
            flush()
    flush()
    return units


def check_text(name, text, known):
    problems = []
    for number, unit in text_units(text):
        for flag in _FLAG.findall(unit):
            if flag in known:
                continue
            tools = FOREIGN_FLAGS.get(flag)
            if tools and any(t in unit for t in tools):
                continue
            where = f"{name}:{number}"
            if tools:
                problems.append(f"{where}: {flag} is a {'/'.join(tools)} flag, but the text "
                                "around it names no such tool")
            else:
                problems.append(f"{where}: {flag} is defined by none of crabcached, "
                                "crabcache-cli, crabcache-bench or the scripts in SCRIPTS "
                                "(another tool's flag? add it to FOREIGN_FLAGS)")
    return problems


def self_test():
    known = {"--port", "--max_memory"}
    cases = [
        ("known flags", "Run `crabcached --port=0 --max_memory=1Gi`.", None),
        ("a typo", "Set `--max_memroy=1Gi`.", "--max_memroy is defined by none"),
        ("foreign flag with its tool", "```sh\nhelm install x \\\n  --set a=b\n```", None),
        ("foreign flag without its tool", "```sh\nhelm install x\ncrabcached --set a=b\n```",
         "--set is a helm flag"),
        ("tool named in the same paragraph", "Run `kubectl create secret\n--from-file=t`.",
         None),
        ("not a flag", "| a |---|\n\n`--8<--` and x--y", None),
    ]
    verdicts = [doccheck.self_test_verdict(name, check_text("doc.md", text, known), expected)
                for name, text, expected in cases]
    return [v for v in verdicts if v]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--crabcached")
    parser.add_argument("--cli")
    parser.add_argument("--bench")
    parser.add_argument("--root", default=os.path.abspath(os.path.join(HERE, "..", "..")))
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    ok_message = "the self-test passed"
    if args.self_test:
        problems = self_test()
    else:
        if not (args.crabcached and args.cli and args.bench):
            parser.error("--crabcached, --cli and --bench are required")
        helpfull = subprocess.run([args.crabcached, "--helpfull"], capture_output=True,
                                  text=True, timeout=30, check=False)
        own, builtin = check_operations_doc.helpfull_flags(helpfull.stdout + helpfull.stderr)
        known = {f"--{name}" for name in own | builtin}
        known |= help_flags([args.cli, "--help"]) | help_flags([args.bench, "--help"])
        known |= script_flags(args.root)
        docs = [os.path.join(args.root, "README.md")] + sorted(
            glob.glob(os.path.join(args.root, "docs", "*.md")))
        problems, count = [], 0
        for doc in docs:
            with open(doc, encoding="utf-8") as f:
                text = f.read()
            count += len(_FLAG.findall(text))
            problems += check_text(os.path.relpath(doc, args.root), text, known)
        ok_message = f"all {count} flag mentions in {len(docs)} files are defined"
    return doccheck.report("check_doc_flags", problems, ok_message)


if __name__ == "__main__":
    sys.exit(main())
