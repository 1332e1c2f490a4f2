"""Helpers for the security script tests: a crabcached process, openssl certificates, waits.

Standard library plus Debian's python3-grpcio; run under /usr/bin/python3.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
import crabcache_testing as ct  # noqa: E402  pylint: disable=wrong-import-position


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
    """One crabcached on 127.0.0.1 with free ports; its log is kept in workdir/NAME.log."""

    def __init__(self, binary, workdir, args=(), name="crabcached"):
        self.workdir = workdir
        self.log_path = os.path.join(workdir, f"{name}.log")
        ready = os.path.join(workdir, f"{name}.ready.json")
        if os.path.exists(ready):
            os.remove(ready)
        command = [binary, "--address=127.0.0.1", "--port=0", "--grpc_port=0",
                   "--metrics_address=127.0.0.1:0", "--threads=2", "--max_memory=64Mi",
                   f"--ready_file={ready}"] + list(args)
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
        return ct.parse_exposition(ct.scrape(self.metrics_port))

    def metric(self, name, **labels):
        return ct.sample(self.metrics(), name, **labels)

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


def write_atomically(path, data, mode=0o600):
    """Writes a sibling temporary file and renames it over `path` (what careful tools do)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


class KubernetesStyleDir:
    """A directory laid out the way the kubelet mounts a Secret: files are symlinks through
    `..data`, itself a symlink to a timestamped directory that is swapped atomically on update."""

    def __init__(self, root):
        self.root = root
        self.generation = 0
        os.makedirs(root, exist_ok=True)

    def publish(self, files):
        self.generation += 1
        real = os.path.join(self.root, f"..2026_{self.generation:04d}")
        os.makedirs(real)
        for name, content in files.items():
            with open(os.path.join(real, name), "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
            os.chmod(os.path.join(real, name), 0o440)
        tmp_link = os.path.join(self.root, "..data_tmp")
        os.symlink(os.path.basename(real), tmp_link)
        os.rename(tmp_link, os.path.join(self.root, "..data"))
        for name in files:
            link = os.path.join(self.root, name)
            if not os.path.islink(link):
                os.symlink(os.path.join("..data", name), link)

    def path(self, name):
        return os.path.join(self.root, name)


def new_workdir(prefix):
    return tempfile.mkdtemp(prefix=prefix)
