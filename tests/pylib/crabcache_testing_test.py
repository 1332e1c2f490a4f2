#!/usr/bin/python3
"""Tests of crabcache_testing.generate_stubs: the Python stubs always come from protoc and
Debian's grpc_python_plugin (the command docs/grpc.md shows), never from grpcio-tools, and a
missing tool is a clear error naming its package.

Usage: crabcache_testing_test.py (under /usr/bin/python3, which has python3-grpcio).
"""

import os
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crabcache_testing as ct  # pylint: disable=wrong-import-position

# A grpc_tools.protoc that fails loudly: if generate_stubs ran it, generation would fail.
FAKE_GRPC_TOOLS_PROTOC = """import sys
sys.exit("fake grpc_tools.protoc was run")
"""


class GenerateStubsTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="crabcache-pylib-")
        self.addCleanup(self.tmp.cleanup)

    def _fake_grpc_tools(self):
        """Puts a fake grpc_tools package on sys.path and PYTHONPATH for this test."""
        fake_root = os.path.join(self.tmp.name, "fake")
        os.makedirs(os.path.join(fake_root, "grpc_tools"))
        with open(os.path.join(fake_root, "grpc_tools", "__init__.py"), "w", encoding="utf-8"):
            pass
        with open(os.path.join(fake_root, "grpc_tools", "protoc.py"), "w",
                  encoding="utf-8") as f:
            f.write(FAKE_GRPC_TOOLS_PROTOC)
        sys.path.insert(0, fake_root)
        self.addCleanup(sys.path.remove, fake_root)
        env = dict(os.environ, PYTHONPATH=fake_root)
        patcher = mock.patch.dict(os.environ, env)
        patcher.start()
        self.addCleanup(patcher.stop)
        # The fake really is what `python3 -m grpc_tools.protoc` would run now.
        run = subprocess.run([sys.executable, "-m", "grpc_tools.protoc"], capture_output=True,
                             text=True, check=False)
        self.assertIn("fake grpc_tools.protoc was run", run.stderr)

    def test_uses_protoc_and_grpc_python_plugin_even_with_grpc_tools_installed(self):
        self._fake_grpc_tools()
        out = os.path.join(self.tmp.name, "gen")
        pb, pb_grpc = ct.generate_stubs(out)
        self.assertTrue(hasattr(pb, "BatchRequest"))
        self.assertTrue(hasattr(pb_grpc, "CacheStub"))
        with open(os.path.join(out, "crabcache", "v1", "cache_pb2_grpc.py"),
                  encoding="utf-8") as f:
            self.assertIn("class CacheStub", f.read())

    def test_missing_plugin_is_a_clear_error(self):
        missing = os.path.join(self.tmp.name, "no", "grpc_python_plugin")
        with mock.patch.object(ct, "GRPC_PYTHON_PLUGIN", missing):
            with self.assertRaisesRegex(RuntimeError, "grpc_python_plugin not found: install "
                                        "protobuf-compiler-grpc"):
                ct.generate_stubs(os.path.join(self.tmp.name, "gen"))

    def test_missing_protoc_is_a_clear_error(self):
        with mock.patch.dict(os.environ, {"PATH": os.path.join(self.tmp.name, "empty")}):
            with self.assertRaisesRegex(RuntimeError,
                                        "protoc not found: install protobuf-compiler"):
                ct.generate_stubs(os.path.join(self.tmp.name, "gen"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
