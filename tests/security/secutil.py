"""Helpers for the security script tests: a crabcached process, openssl certificates, waits.

Standard library plus Debian's python3-grpcio; run under /usr/bin/python3.
"""

import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pylib"))
import crabcache_testing as ct  # noqa: E402  pylint: disable=wrong-import-position


wait_until = ct.wait_until
free_port = ct.free_port


class Crabcached(ct.Crabcached):
    """The security tests' crabcached: two loops and a 64 MiB store unless args say otherwise."""

    def __init__(self, binary, workdir, args=(), name="crabcached"):
        super().__init__(binary, workdir, ["--threads=2", "--max_memory=64Mi"] + list(args), name)


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
