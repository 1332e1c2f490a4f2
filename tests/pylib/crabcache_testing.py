"""Helpers shared by the repository's Python tests (standard library only, plus grpcio where the
gRPC stubs are used). Run under /usr/bin/python3, which sees Debian's python3-grpcio.

- generate_stubs(out_dir): protoc-generated crabcache.v1 modules, imported;
- FastPath: a minimal fast path client (docs/protocol.md), enough for cross-front-end checks;
- scrape(port) / parse_exposition(text): the Prometheus text format as {(name, labels): value}.
"""

import importlib
import os
import re
import socket
import struct
import subprocess
import sys
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROTO_ROOT = os.path.join(REPO, "proto")
PROTO = "crabcache/v1/cache.proto"


def generate_stubs(out_dir):
    """Generates the Python stubs into out_dir and returns (cache_pb2, cache_pb2_grpc)."""
    os.makedirs(out_dir, exist_ok=True)
    try:
        importlib.import_module("grpc_tools.protoc")
        command = [sys.executable, "-m", "grpc_tools.protoc"]
        plugin = []
    except ImportError:
        command = ["protoc"]
        plugin = ["--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin"]
    subprocess.run(command + plugin + [f"--proto_path={PROTO_ROOT}", f"--python_out={out_dir}",
                                       f"--grpc_python_out={out_dir}", PROTO], check=True)
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)
    return (importlib.import_module("crabcache.v1.cache_pb2"),
            importlib.import_module("crabcache.v1.cache_pb2_grpc"))


class FastPath:
    """The smallest fast path client: one request, one reply, blocking."""

    OK, PONG, NULL, ERROR, VALUE, STATS, INT = 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sent = 0      # Request bytes written.
        self.received = 0  # Reply bytes read.

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("fast path connection closed")
            data += chunk
        self.received += n
        return data

    def _send(self, frame):
        self.sock.sendall(frame)
        self.sent += len(frame)

    @staticmethod
    def _blob(data):
        return struct.pack("<I", len(data)) + data

    def reply(self):
        """Reads one reply: (opcode, payload bytes or int or None)."""
        op = self._read(1)[0]
        if op in (self.ERROR, self.VALUE, self.STATS):
            (length,) = struct.unpack("<I", self._read(4))
            return op, self._read(length)
        if op == self.INT:
            return op, struct.unpack("<q", self._read(8))[0]
        return op, None

    def ping(self):
        self._send(b"\x01")
        return self.reply()

    def put(self, key, value, ttl_seconds=None):
        ttl = b"\x00" if ttl_seconds is None else b"\x01" + struct.pack("<Q", ttl_seconds)
        self._send(b"\x02" + self._blob(key) + self._blob(value) + ttl)
        return self.reply()

    def get(self, key):
        self._send(b"\x03" + self._blob(key))
        return self.reply()

    def delete(self, key):
        self._send(b"\x04" + self._blob(key))
        return self.reply()

    def close(self):
        self.sock.close()


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """{(name, frozenset(labels.items())): float} for every sample line."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError(f"unparsable sample line: {line!r}")
        labels = frozenset(_LABEL.findall(m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples


def scrape(port, host="127.0.0.1"):
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
        return response.read().decode("utf-8")


def sample(samples, name, **labels):
    """The value of one series (0 when absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
