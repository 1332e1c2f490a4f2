"""What the tests/docs checkers share: judging self-test cases and reporting problems."""

import sys


def self_test_verdict(name, problems, expected):
    """One self-test case: `expected` is None (no problem wanted) or a substring that one of
    `problems` must contain. Prints an ok line and returns None, or returns the failure."""
    if expected is None and problems:
        return f"self-test '{name}': expected no problem, got {problems}"
    if expected is not None and not any(expected in p for p in problems):
        return f"self-test '{name}': expected a problem with {expected!r}, got {problems}"
    print(f"self-test ok: {name}")
    return None


def report(tool, problems, ok_message):
    """Prints each problem (or ok_message when there is none); returns the exit status."""
    if not problems:
        print(f"{tool}: {ok_message}")
    for problem in problems:
        print(f"{tool}: {problem}", file=sys.stderr)
    return 1 if problems else 0
