"""Helpers shared by the repository's Python tests (standard library only, plus grpcio where the
gRPC stubs are used). Run under /usr/bin/python3, which sees Debian's python3-grpcio.

- generate_stubs(out_dir): protoc-generated crabcache.v1 modules, imported;
- FastPath: a minimal fast path client (docs/protocol.md), enough for cross-front-end checks;
- scrape(port) / parse_exposition(text): the Prometheus text format as {(name, labels): value};
- Crabcached: a crabcached process on free ports, waited for through its --ready_file;
- wait_until, free_port.
"""

import importlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
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


def wait_until(predicate, timeout_s=10.0, interval_s=0.05, what="condition"):
    """Polls predicate() until it returns a true value (returned) or the time is up (raises)."""
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # pylint: disable=broad-except
            last_error = e
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}"
                         + (f" (last error: {last_error})" if last_error else ""))


def free_port():
    """A port that was free a moment ago (for flags that cannot take 0, like --health_port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Crabcached:
    """One crabcached on 127.0.0.1 with free ports (fast path, gRPC, metrics), started with
    --ready_file and waited for; `args` come last, so they override the defaults. Its output is
    kept in workdir/NAME.log."""

    def __init__(self, binary, workdir, args=(), name="crabcached"):
        self.workdir = workdir
        self.log_path = os.path.join(workdir, f"{name}.log")
        ready = os.path.join(workdir, f"{name}.ready.json")
        self.ready_file = ready
        if os.path.exists(ready):
            os.remove(ready)
        command = [binary, "--address=127.0.0.1", "--port=0", "--grpc_port=0",
                   "--metrics_address=127.0.0.1:0", f"--ready_file={ready}"] + list(args)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            self.ready = wait_until(lambda: self._read_ready(ready), timeout_s=30,
                                    what="crabcached's ready file")
        except AssertionError:
            self.kill()
            raise AssertionError(f"crabcached did not start:\n{self.text()}") from None
        self.fastpath_port = self.ready["fastpath_port"]
        self.grpc_target = f"127.0.0.1:{self.ready['grpc_port']}"
        self.health_port = self.ready["health_port"]
        self.metrics_port = self.ready["metrics_port"]

    def _read_ready(self, path):
        if self.proc.poll() is not None:
            raise AssertionError(f"crabcached exited with {self.proc.returncode}:\n{self.text()}")
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, needle, count=1, timeout_s=10.0):
        wait_until(lambda: self.text().count(needle) >= count, timeout_s=timeout_s,
                   what=f"{count} x {needle!r} in the server log")

    def sighup(self):
        self.proc.send_signal(signal.SIGHUP)

    def metrics(self):
        return parse_exposition(scrape(self.metrics_port))

    def metric(self, name, **labels):
        return sample(self.metrics(), name, **labels)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        """Stops the server; prints its log if the block failed or the server did not exit 0,
        and fails in the latter case."""
        status = self.stop()
        if exc_type is not None or status != 0:
            sys.stderr.write(self.text())
        if exc_type is None and status != 0:
            raise AssertionError(f"crabcached exit status {status}")
        return False

    def stop(self):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
