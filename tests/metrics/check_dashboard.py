#!/usr/bin/env python3
"""Checks the Grafana dashboard's queries against the metrics a live crabcached exports.

Usage: check_dashboard.py DASHBOARD.json EXPOSITION.txt

EXPOSITION.txt is a scrape of /metrics. Every `crabcache_*` name used in a query must be a
family the server exports (histogram series `_bucket`/`_sum`/`_count` count as their family).
Exits 1 and lists the unknown names otherwise. Standard library only.
"""
import json
import re
import sys

NAME = re.compile(r"\bcrabcache_[a-zA-Z0-9_]+")


def exported_names(text):
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()[:4]
            names.add(name)
            if kind in ("histogram", "summary"):
                names.update({name + "_bucket", name + "_sum", name + "_count"})
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def queries(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "query") and isinstance(value, str):
                yield value
            else:
                yield from queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from queries(item)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        dashboard = json.load(f)
    with open(sys.argv[2]) as f:
        exported = exported_names(f.read())
    used = {name for q in queries(dashboard) for name in NAME.findall(q)}
    if not used:
        print("dashboard uses no crabcache_ metric", file=sys.stderr)
        return 1
    unknown = sorted(used - exported)
    if unknown:
        print("dashboard queries use metrics the server does not export:", file=sys.stderr)
        for name in unknown:
            print("  " + name, file=sys.stderr)
        return 1
    print(f"dashboard OK: {len(used)} metric names, all exported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
