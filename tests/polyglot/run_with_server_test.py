#!/usr/bin/python3
"""Tests of run_with_server.py's refusal of a missing client: a polyglot test whose toolchain is
not installed fails, before any server starts, with a message naming what to install (it is
never skipped in silence).

Usage: run_with_server_test.py
"""

import os
import subprocess
import sys
import tempfile
import unittest

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_with_server.py")


def run_driver(client, path):
    # --server points nowhere: the client check must fail first.
    return subprocess.run([sys.executable, DRIVER, "--server", "/nonexistent/crabcached", "--"]
                          + client, env=dict(os.environ, PATH=path), capture_output=True,
                          text=True, timeout=60, check=False)


class MissingClientTest(unittest.TestCase):

    def test_missing_node_fails_naming_the_package(self):
        with tempfile.TemporaryDirectory() as empty:
            run = run_driver(["node", "cache_client_test.js", "{grpc_target}"], empty)
        self.assertEqual(run.returncode, 1, run.stderr)
        self.assertIn("client command 'node' not found; install Debian nodejs", run.stderr)
        self.assertNotIn("crabcached", run.stderr)  # No attempt to start the server.

    def test_missing_script_fails(self):
        run = run_driver(["/nonexistent/run.sh", "out", "{grpc_target}"], os.environ["PATH"])
        self.assertEqual(run.returncode, 1, run.stderr)
        self.assertIn("'/nonexistent/run.sh' not found; install tools/packages.txt [test]",
                      run.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
