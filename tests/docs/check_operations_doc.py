#!/usr/bin/python3
"""Checks docs/operations.md's flag and metric tables against a real crabcached.

Usage:
  check_operations_doc.py --server PATH/crabcached [--doc docs/operations.md]
  check_operations_doc.py --self-test

Flags: every `--flag` in a table whose first column is "flag" exists in `crabcached --helpfull`,
and every flag crabcached defines (abseil's built-ins aside) is in such a table.

Metrics: a crabcached with every optional metric switched on (--auth_token_file, --tls_cert) is
started on free ports, gets a little traffic through both front ends, and its /metrics is
scraped. Every family in the table whose first column is "metric" is exported (a name ending in
`*` needs one exported family with that prefix), with the type the table gives and, when it has
samples, exactly the labels the table lists; and every exported family is in the table.
Exit status 1 with one line per problem.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
sys.path.insert(0, HERE)
import crabcache_testing as ct  # pylint: disable=wrong-import-position
import doccheck  # pylint: disable=wrong-import-position,wrong-import-order

# Flags every abseil program has; --helpfull lists some of them under "Flags from ...absl/...".
ABSL_BUILTIN_FLAGS = {"help", "helpfull", "helpshort", "helppackage", "helpon", "helpmatch",
                      "version", "only_check_args", "flagfile", "fromenv", "tryfromenv", "undefok"}

_SECTION = re.compile(r"^\s*Flags from (\S+):\s*$")
_HELP_FLAG = re.compile(r"^\s+--([A-Za-z0-9_]+) \(")
_CODE = re.compile(r"`([^`]+)`")
_TYPE = re.compile(r"^# TYPE (\S+) (\S+)$")


def helpfull_flags(text):
    """(flags the program defines, abseil's built-ins) from `--helpfull` output."""
    own, builtin, source = set(), set(ABSL_BUILTIN_FLAGS), ""
    for line in text.splitlines():
        section = _SECTION.match(line)
        if section:
            source = section.group(1)
            continue
        m = _HELP_FLAG.match(line)
        if m:
            name = m.group(1)
            (builtin if "absl/" in source or name in ABSL_BUILTIN_FLAGS else own).add(name)
    return own, builtin


def markdown_tables(text):
    """[(first header cell, [(line number, [cells])])] of the doc's pipe tables."""
    tables, rows, header = [], None, None
    for number, line in enumerate(text.split("\n"), 1):
        if not line.startswith("|"):
            rows = header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if rows is None:
            header, rows = cells[0].lower(), []
            tables.append((header, rows))
        elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
            rows.append((number, cells))
    return tables


def table_rows(text, first_header):
    return [row for header, rows in markdown_tables(text) if header == first_header
            for row in rows]


def check_flags(doc_text, helpfull_text, doc_name="docs/operations.md"):
    own, builtin = helpfull_flags(helpfull_text)
    problems = []
    if not own:
        return [f"crabcached --helpfull lists no flags:\n{helpfull_text}"]
    documented = {}
    for number, cells in table_rows(doc_text, "flag"):
        names = [c for c in _CODE.findall(cells[0]) if c.startswith("--")]
        if len(names) != 1:
            problems.append(f"{doc_name}:{number}: a flag row must name one `--flag`: {cells[0]}")
            continue
        name = names[0][2:]
        if name in documented:
            problems.append(f"{doc_name}:{number}: --{name} is documented twice (first at line "
                            f"{documented[name]})")
        documented.setdefault(name, number)
        if name not in own:
            what = "an abseil built-in" if name in builtin else "not a crabcached flag"
            problems.append(f"{doc_name}:{number}: --{name} is {what} (crabcached --helpfull)")
    for name in sorted(own - set(documented)):
        problems.append(f"{doc_name}: crabcached flag --{name} is in no flag table")
    return problems


def exported_families(exposition):
    """{family: (type, set of label names seen)} from the Prometheus text format."""
    families = {}
    for line in exposition.splitlines():
        m = _TYPE.match(line)
        if m:
            families[m.group(1)] = (m.group(2), set())
    for (name, labels), _ in ct.parse_exposition(exposition).items():
        family = name
        if family not in families:
            for suffix in ("_bucket", "_sum", "_count"):
                base = name[:-len(suffix)]
                if name.endswith(suffix) and families.get(base, ("",))[0] in ("histogram",
                                                                              "summary"):
                    family = base
        if family in families:
            families[family][1].update(k for k, _ in labels if k not in ("le", "quantile"))
    return families


def check_metrics(doc_text, exposition, doc_name="docs/operations.md"):
    families = exported_families(exposition)
    problems, exact, prefixes = [], set(), []
    rows = table_rows(doc_text, "metric")
    if not rows:
        return [f"{doc_name}: no table whose first column is 'metric'"]
    for number, cells in rows:
        names = _CODE.findall(cells[0])
        if not names:
            problems.append(f"{doc_name}:{number}: a metric row must name a `metric`")
            continue
        doc_type = cells[1] if len(cells) > 1 else ""
        doc_labels = set(_CODE.findall(cells[2])) if len(cells) > 2 else set()
        for name in names:
            if name.endswith("*"):
                prefixes.append(name[:-1])
                if not any(f.startswith(name[:-1]) for f in families):
                    problems.append(f"{doc_name}:{number}: no exported family matches {name}")
                continue
            if name in exact:
                problems.append(f"{doc_name}:{number}: {name} is documented twice")
            exact.add(name)
            if name not in families:
                problems.append(f"{doc_name}:{number}: {name} is not exported by crabcached")
                continue
            kind, labels = families[name]
            if doc_type and doc_type != kind:
                problems.append(f"{doc_name}:{number}: {name} is a {kind}, the table says "
                                f"{doc_type}")
            if len(names) == 1 and labels and labels != doc_labels:
                problems.append(f"{doc_name}:{number}: {name} has labels {sorted(labels)}, the "
                                f"table says {sorted(doc_labels)}")
    for family in sorted(families):
        if family not in exact and not any(family.startswith(p) for p in prefixes):
            problems.append(f"{doc_name}: exported family {family} ({families[family][0]}) is "
                            "in no row of the metric table")
    return problems


def make_tls_files(workdir):
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return cert, key


def scrape_with_traffic(server_binary, workdir):
    """The /metrics text of a crabcached with auth and TLS on, after a little traffic."""
    import grpc  # pylint: disable=import-outside-toplevel
    token = "docs-check-token-0123456789"
    tokens = os.path.join(workdir, "tokens")
    with open(tokens, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    os.chmod(tokens, 0o600)
    cert, key = make_tls_files(workdir)
    args = ["--threads=1", "--max_memory=64Mi", f"--auth_token_file={tokens}",
            f"--tls_cert={cert}", f"--tls_key={key}"]
    with ct.Crabcached(server_binary, workdir, args) as server:
        fast = ct.FastPath(server.fastpath_port)
        try:
            assert fast.auth(token.encode()) == (fast.OK, None)
            assert fast.put(b"docs:k", b"v") == (fast.OK, None)
            assert fast.get(b"docs:k") == (fast.VALUE, b"v")
            assert fast.ping() == (fast.PONG, None)
        finally:
            fast.close()
        with open(cert, "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        metadata = [("authorization", f"Bearer {token}")]
        with grpc.secure_channel(server.grpc_target, credentials) as channel:
            # Raw bytes, no stubs: an empty PingRequest and an empty BatchRequest.
            channel.unary_unary("/crabcache.v1.Cache/Ping")(b"", metadata=metadata, timeout=10)
            list(channel.stream_stream("/crabcache.v1.Cache/BatchExecute")(
                iter([b""]), metadata=metadata, timeout=10))
        return ct.scrape(server.metrics_port)


SELF_TEST_HELPFULL = """crabcached: test
  Flags from ../../server/config.cc:
    --port (Fast path TCP port.); default: 8000;
    --max_memory (Memory limit.); default: 0;

  Flags from ./absl/flags/parse.cc:
    --flagfile (comma-separated list of files to load flags from); default: ;
"""

SELF_TEST_FLAG_DOC = """## Flags

| flag | default | meaning |
|---|---|---|
| `--port` | `8000` | fast path port |
| `--max_memory` | `0` | limit |
"""

SELF_TEST_EXPOSITION = """# HELP crabcache_keys Keys.
# TYPE crabcache_keys gauge
crabcache_keys 3
# TYPE crabcache_commands_total counter
crabcache_commands_total{frontend="grpc",command="get",outcome="hit"} 1
# TYPE crabcache_batch_commands histogram
crabcache_batch_commands_bucket{frontend="grpc",le="1"} 1
crabcache_batch_commands_sum{frontend="grpc"} 1
crabcache_batch_commands_count{frontend="grpc"} 1
# TYPE exposer_scrapes_total counter
exposer_scrapes_total 1
"""

SELF_TEST_METRIC_DOC = """| metric | type | labels | meaning |
|---|---|---|---|
| `crabcache_keys` | gauge | | keys |
| `crabcache_commands_total` | counter | `frontend`, `command`, `outcome` | commands |
| `crabcache_batch_commands` | histogram | `frontend` | batch sizes |
| `exposer_*` | | | prometheus-cpp's own |
"""


def self_test():
    """Each check passes its matching input and catches each kind of drift."""
    flag_row = "| `--max_memory` | `0` | limit |\n"
    keys_row = "| `crabcache_keys` | gauge | | keys |\n"
    cases = [
        ("flags match", check_flags, SELF_TEST_FLAG_DOC, SELF_TEST_HELPFULL, None),
        ("flag missing from the doc", check_flags, SELF_TEST_FLAG_DOC.replace(flag_row, ""),
         SELF_TEST_HELPFULL, "--max_memory is in no flag table"),
        ("doc flag the server lacks", check_flags,
         SELF_TEST_FLAG_DOC + "| `--colour` | `red` | no such flag |\n", SELF_TEST_HELPFULL,
         "--colour is not a crabcached flag"),
        ("abseil built-in documented as a flag", check_flags,
         SELF_TEST_FLAG_DOC + "| `--flagfile` | | |\n", SELF_TEST_HELPFULL,
         "--flagfile is an abseil built-in"),
        ("flag documented twice", check_flags, SELF_TEST_FLAG_DOC + flag_row,
         SELF_TEST_HELPFULL, "documented twice"),
        ("metrics match", check_metrics, SELF_TEST_METRIC_DOC, SELF_TEST_EXPOSITION, None),
        ("exported family missing from the doc", check_metrics,
         SELF_TEST_METRIC_DOC.replace(keys_row, ""), SELF_TEST_EXPOSITION,
         "crabcache_keys (gauge) is in no row"),
        ("doc family not exported", check_metrics,
         SELF_TEST_METRIC_DOC + "| `crabcache_gone_total` | counter | | |\n",
         SELF_TEST_EXPOSITION, "crabcache_gone_total is not exported"),
        ("wrong type", check_metrics, SELF_TEST_METRIC_DOC.replace(
            "| `crabcache_keys` | gauge |", "| `crabcache_keys` | counter |"),
         SELF_TEST_EXPOSITION, "crabcache_keys is a gauge, the table says counter"),
        ("wrong labels", check_metrics, SELF_TEST_METRIC_DOC.replace(
            "`frontend`, `command`, `outcome`", "`frontend`, `command`"),
         SELF_TEST_EXPOSITION, "has labels ['command', 'frontend', 'outcome']"),
        ("wildcard with no match", check_metrics, SELF_TEST_METRIC_DOC.replace(
            "`exposer_*`", "`exposer_*`, `process_*`"), SELF_TEST_EXPOSITION,
         "no exported family matches process_*"),
    ]
    verdicts = [doccheck.self_test_verdict(name, check(doc, data), expected)
                for name, check, doc, data, expected in cases]
    return [v for v in verdicts if v]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", help="path to crabcached")
    parser.add_argument("--doc", default=os.path.join(HERE, "..", "..", "docs", "operations.md"))
    parser.add_argument("--self-test", action="store_true",
                        help="check the checks on made-up input instead")
    args = parser.parse_args()
    ok_message = "the self-test passed"
    if args.self_test:
        problems = self_test()
    else:
        if not args.server:
            parser.error("--server is required")
        with open(args.doc, encoding="utf-8") as f:
            doc_text = f.read()
        helpfull = subprocess.run([args.server, "--helpfull"], capture_output=True, text=True,
                                  timeout=30, check=False)
        problems = check_flags(doc_text, helpfull.stdout + helpfull.stderr)
        with tempfile.TemporaryDirectory(prefix="crabcache-docs-") as workdir:
            exposition = scrape_with_traffic(args.server, workdir)
        problems += check_metrics(doc_text, exposition)
        ok_message = (f"{len(table_rows(doc_text, 'flag'))} flags and "
                      f"{len(table_rows(doc_text, 'metric'))} metric rows agree with crabcached")
    return doccheck.report("check_operations_doc", problems, ok_message)


if __name__ == "__main__":
    sys.exit(main())
