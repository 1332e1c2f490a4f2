#!/usr/bin/python3
"""Checks that docs/grpc.md's client snippets are the code the polyglot tests run.

Usage:
  check_grpc_snippets.py [--root REPO] [--doc docs/grpc.md]
  check_grpc_snippets.py --self-test

A test file marks a region with comment lines holding `--8<-- [start:NAME]` and
`--8<-- [end:NAME]`. The doc puts `<!-- snippet: PATH NAME -->` right before a fenced block;
that block must equal the region (dedented) character for character. Also:
- under a heading that says "(tested: ...)", every python/js/go/java block carries a marker and
  every marker's PATH is named in that heading;
- every region of a file the doc refers to is shown in the doc (no stale regions).
Exit status 1 with one line per problem; 0 when the doc and the tests agree.
"""

import argparse
import os
import re
import sys
import tempfile
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import doccheck  # pylint: disable=wrong-import-position

CHECKED_LANGUAGES = {"python", "js", "go", "java"}
_REGION = re.compile(r"--8<-- \[(start|end):([A-Za-z0-9_-]+)\]")
_MARKER = re.compile(r"^<!-- snippet: (\S+) ([A-Za-z0-9_-]+) -->$")
_FENCE = re.compile(r"^```(\S*)\s*$")
_HEADING = re.compile(r"^#{1,6} ")


def read_regions(path):
    """{name: dedented text} of the file's marked regions, plus a list of problems."""
    regions, problems, open_name, lines = {}, [], None, []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            m = _REGION.search(line)
            if not m:
                if open_name is not None:
                    lines.append(line)
                continue
            kind, name = m.groups()
            if kind == "start":
                if open_name is not None:
                    problems.append(f"{path}:{number}: region {name} starts inside {open_name}")
                elif name in regions:
                    problems.append(f"{path}:{number}: region {name} appears twice")
                open_name, lines = name, []
            elif name != open_name:
                problems.append(f"{path}:{number}: end of {name}, but the open region is "
                                f"{open_name}")
            else:
                regions[name] = textwrap.dedent("".join(lines)).strip("\n")
                open_name = None
    if open_name is not None:
        problems.append(f"{path}: region {open_name} never ends")
    return regions, problems


def read_doc_blocks(doc):
    """[(line number, heading, language, marker (path, name) or None, text)] of fenced blocks."""
    blocks, heading, marker, pending_marker_line = [], "", None, None
    with open(doc, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if _HEADING.match(line):
            heading = line
        m = _MARKER.match(line)
        if m:
            marker, pending_marker_line = m.groups(), i + 1
        fence = _FENCE.match(line)
        if fence:
            start = i
            i += 1
            body = []
            while i < len(lines) and lines[i] != "```":
                body.append(lines[i])
                i += 1
            blocks.append((start + 1, heading, fence.group(1), marker, "\n".join(body)))
            marker = None
        elif line.strip() and not m and marker is not None:
            blocks.append((pending_marker_line, heading, "", marker, None))  # Dangling marker.
            marker = None
        i += 1
    if marker is not None:
        blocks.append((pending_marker_line, heading, "", marker, None))
    return blocks


def check(root, doc):
    """The list of problems (empty when the doc's snippets are the tests' regions)."""
    problems, regions, used = [], {}, set()
    for number, heading, language, marker, text in read_doc_blocks(doc):
        where = f"{doc}:{number}"
        tested = "(tested:" in heading
        if marker is None:
            if tested and language in CHECKED_LANGUAGES:
                problems.append(f"{where}: {language} block under '{heading}' has no "
                                "<!-- snippet: PATH NAME --> marker, so no test runs it")
            continue
        path, name = marker
        if text is None:
            problems.append(f"{where}: snippet marker {path} {name} is not followed by a "
                            "fenced block")
            continue
        if tested and path not in heading:
            problems.append(f"{where}: snippet from {path}, but the heading names another "
                            f"file: '{heading}'")
        if path not in regions:
            full = os.path.join(root, path)
            if not os.path.isfile(full):
                problems.append(f"{where}: {path} does not exist")
                regions[path] = {}
                continue
            regions[path], region_problems = read_regions(full)
            problems += region_problems
        used.add((path, name))
        if name not in regions[path]:
            problems.append(f"{where}: {path} has no region {name}")
        elif regions[path][name] != text.strip("\n"):
            problems.append(f"{where}: block differs from {path} region {name}:\n"
                            + first_difference(regions[path][name], text.strip("\n")))
    for path, names in sorted(regions.items()):
        for name in sorted(set(names) - {n for p, n in used if p == path}):
            problems.append(f"{path}: region {name} is not shown in {doc}")
    return problems


def first_difference(expected, actual):
    a, b = expected.split("\n"), actual.split("\n")
    for i in range(max(len(a), len(b))):
        left = a[i] if i < len(a) else "<end>"
        right = b[i] if i < len(b) else "<end>"
        if left != right:
            return f"  region line {i + 1}: {left!r}\n  doc    line {i + 1}: {right!r}"
    return "  (no line differs)"


SELF_TEST_SOURCE = """import os

def demo():
    # --8<-- [start:demo-a]
    x = 1
    if x:
        print("a")
    # --8<-- [end:demo-a]
    return x
# --8<-- [start:demo-b]
print("b")
# --8<-- [end:demo-b]
"""

SELF_TEST_DOC = """# Demo

## Python (tested: `lib/demo.py`)

<!-- snippet: lib/demo.py demo-a -->
```python
x = 1
if x:
    print("a")
```

Prose between blocks.

<!-- snippet: lib/demo.py demo-b -->
```python
print("b")
```

## Elsewhere

```python
untested = True  # Fine: not under a "(tested: ...)" heading.
```
"""


def self_test():
    """The checker passes a matching doc and fails each kind of drift; returns problems."""
    cases = {
        "matching": (SELF_TEST_DOC, SELF_TEST_SOURCE, None),
        "one character changed": (SELF_TEST_DOC.replace('print("a")', 'print("A")'),
                                  SELF_TEST_SOURCE, "block differs"),
        "a line missing in the doc": (SELF_TEST_DOC.replace("if x:\n    print(\"a\")\n", ""),
                                      SELF_TEST_SOURCE, "block differs"),
        "a line added in the test": (SELF_TEST_DOC, SELF_TEST_SOURCE.replace(
            'print("b")\n', 'print("b")\nprint("c")\n'), "block differs"),
        "unmarked block under a tested heading": (SELF_TEST_DOC.replace(
            "<!-- snippet: lib/demo.py demo-b -->\n", ""), SELF_TEST_SOURCE, "has no"),
        "unknown region": (SELF_TEST_DOC.replace("demo-b -->", "demo-c -->"),
                           SELF_TEST_SOURCE, "has no region demo-c"),
        "region not shown in the doc": (SELF_TEST_DOC, SELF_TEST_SOURCE + (
            "# --8<-- [start:demo-d]\npass\n# --8<-- [end:demo-d]\n"), "demo-d is not shown"),
        "region never ends": (SELF_TEST_DOC, SELF_TEST_SOURCE.replace(
            "# --8<-- [end:demo-b]\n", ""), "never ends"),
        "heading names another file": (SELF_TEST_DOC.replace("`lib/demo.py`", "`lib/x.py`"),
                                       SELF_TEST_SOURCE, "heading names another file"),
        "marker without a block": (SELF_TEST_DOC.replace(
            "<!-- snippet: lib/demo.py demo-b -->\n```python\nprint(\"b\")\n```\n",
            "<!-- snippet: lib/demo.py demo-b -->\nJust prose.\n"), SELF_TEST_SOURCE,
            "not followed by a fenced block"),
    }
    failures = []
    for name, (doc_text, source_text, expected) in cases.items():
        with tempfile.TemporaryDirectory(prefix="crabcache-snippets-") as root:
            os.makedirs(os.path.join(root, "lib"))
            with open(os.path.join(root, "lib", "demo.py"), "w", encoding="utf-8") as f:
                f.write(source_text)
            doc = os.path.join(root, "doc.md")
            with open(doc, "w", encoding="utf-8") as f:
                f.write(doc_text)
            failures.append(doccheck.self_test_verdict(name, check(root, doc), expected))
    return [f for f in failures if f]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    parser.add_argument("--root", default=default_root, help="repository root")
    parser.add_argument("--doc", default="docs/grpc.md", help="doc, relative to --root")
    parser.add_argument("--self-test", action="store_true",
                        help="check the checker on made-up docs instead")
    args = parser.parse_args()
    ok_message = "the self-test passed"
    if args.self_test:
        problems = self_test()
    else:
        problems = check(args.root, os.path.join(args.root, args.doc))
        count = sum(1 for b in read_doc_blocks(os.path.join(args.root, args.doc)) if b[3])
        ok_message = f"all {count} marked blocks of {args.doc} equal their test regions"
    return doccheck.report("check_grpc_snippets", problems, ok_message)


if __name__ == "__main__":
    sys.exit(main())
