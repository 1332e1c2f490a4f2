#!/usr/bin/python3
"""TLS and mutual TLS on crabcached's gRPC port, with certificates openssl makes at test time.

Usage: tls_crabcached_test.py --server PATH/crabcached --out_dir DIR

No key is committed: every run makes its own CAs, server and client certificates (EC P-256).
Checks:
  - TLS: a client trusting the CA gets through; a plaintext client fails; the plaintext
    --health_port answers grpc.health.v1 (for kubelet probes) and serves nothing else;
  - mutual TLS: a client without a certificate fails, one with a certificate from another CA
    fails, one with a certificate signed by --tls_client_ca gets through;
  - rotation: the certificate and key are replaced (a Kubernetes-style ..data swap, no signal);
    within the reload interval new connections get the new certificate (a client that trusts
    only the new CA gets through, one that trusts only the old CA no longer does);
  - a key that does not match its certificate, written over good files, is refused: the previous
    certificate keeps serving, the refusal is logged and counted;
  - SIGHUP applies new files at once even with --reload_interval=1h;
  - start-up refuses a key that does not match the certificate, and a missing file;
  - TLS and token auth together; exit status 0 on SIGTERM.
"""

import argparse
import os
import subprocess
import sys
import time

# Refused handshakes are the point of several checks: keep the client library quiet about them.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")
import grpc  # noqa: E402  pylint: disable=wrong-import-position

import secutil
from secutil import ct


class Pki:
    """CAs and certificates in `root`, made with the openssl command."""

    def __init__(self, root):
        self.root = root
        os.makedirs(root, exist_ok=True)

    def path(self, name):
        return os.path.join(self.root, name)

    def _run(self, *args):
        subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def _key(self, name):
        self._run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-out", self.path(f"{name}.key"))

    def ca(self, name):
        self._key(name)
        self._run("req", "-x509", "-new", "-key", self.path(f"{name}.key"), "-days", "2",
                  "-subj", f"/CN={name}", "-out", self.path(f"{name}.crt"))

    def leaf(self, name, ca, usage):
        self._key(name)
        self._run("req", "-new", "-key", self.path(f"{name}.key"), "-subj", f"/CN={name}",
                  "-out", self.path(f"{name}.csr"))
        ext = self.path(f"{name}.ext")
        with open(ext, "w", encoding="utf-8") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                    f"extendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
        self._run("x509", "-req", "-in", self.path(f"{name}.csr"), "-CA", self.path(f"{ca}.crt"),
                  "-CAkey", self.path(f"{ca}.key"), "-CAcreateserial", "-days", "2",
                  "-extfile", ext, "-out", self.path(f"{name}.crt"))

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()


def ping(pb2, pb2_grpc, target, credentials=None, metadata=()):
    """The status code of one Ping (OK or the failure)."""
    options = [("grpc.ssl_target_name_override", "localhost")]
    channel = (grpc.secure_channel(target, credentials, options=options) if credentials
               else grpc.insecure_channel(target))
    try:
        pb2_grpc.CacheStub(channel).Ping(pb2.PingRequest(), metadata=metadata, timeout=5)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()
    finally:
        channel.close()


def health(target):
    channel = grpc.insecure_channel(target)
    try:
        check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=None,
                                    response_deserializer=None)
        return check(b"", timeout=5)
    finally:
        channel.close()


def check_tls(binary, work, pki, pb2, pb2_grpc):
    secret = secutil.KubernetesStyleDir(os.path.join(work, "tls-secret"))
    secret.publish({"tls.crt": pki.read("server1.crt"), "tls.key": pki.read("server1.key")})
    health_port = secutil.free_port()
    server = secutil.Crabcached(binary, work, [
        f"--tls_cert={secret.path('tls.crt')}", f"--tls_key={secret.path('tls.key')}",
        f"--health_port={health_port}", "--reload_interval=1s"], name="tls")
    with server:
        ca1 = grpc.ssl_channel_credentials(root_certificates=pki.read("ca1.crt"))
        ca2 = grpc.ssl_channel_credentials(root_certificates=pki.read("ca2.crt"))
        assert ping(pb2, pb2_grpc, server.grpc_target, ca1) == grpc.StatusCode.OK
        assert ping(pb2, pb2_grpc, server.grpc_target) == grpc.StatusCode.UNAVAILABLE
        assert ping(pb2, pb2_grpc, server.grpc_target, ca2) == grpc.StatusCode.UNAVAILABLE
        assert "grpc tls certificate" in server.text() and "CN=server1" in server.text()

        health_target = f"127.0.0.1:{server.health_port}"
        assert server.health_port == health_port
        assert health(health_target) == b"\x08\x01", "plaintext health port: SERVING"
        assert ping(pb2, pb2_grpc, health_target) == grpc.StatusCode.UNIMPLEMENTED

        # Rotation to a certificate from another CA, by a ..data swap and no signal.
        secret.publish({"tls.crt": pki.read("server2.crt"), "tls.key": pki.read("server2.key")})
        secutil.wait_until(
            lambda: ping(pb2, pb2_grpc, server.grpc_target, ca2) == grpc.StatusCode.OK,
            timeout_s=20, what="the rotated certificate to be served")
        assert ping(pb2, pb2_grpc, server.grpc_target, ca1) == grpc.StatusCode.UNAVAILABLE
        assert "tls certificate reloaded" in server.text() and "CN=server2" in server.text()
        assert server.metric("crabcache_tls_reloads_total", result="success") == 1

        # A mismatched pair is refused; the last good certificate keeps serving.
        secret.publish({"tls.crt": pki.read("server1.crt"), "tls.key": pki.read("server2.key")})
        server.wait_log("tls reload refused; still serving the previous certificate",
                        timeout_s=20)
        assert server.metric("crabcache_tls_reloads_total", result="failure") >= 1
        for _ in range(3):  # Across several of gRPC's 1 s refreshes.
            assert ping(pb2, pb2_grpc, server.grpc_target, ca2) == grpc.StatusCode.OK
            time.sleep(0.5)


def check_sighup(binary, work, pki, pb2, pb2_grpc):
    cert, key = os.path.join(work, "sighup.crt"), os.path.join(work, "sighup.key")
    secutil.write_atomically(cert, pki.read("server1.crt"))
    secutil.write_atomically(key, pki.read("server1.key"))
    server = secutil.Crabcached(binary, work, [f"--tls_cert={cert}", f"--tls_key={key}",
                                               "--reload_interval=1h"], name="tls-sighup")
    with server:
        ca2 = grpc.ssl_channel_credentials(root_certificates=pki.read("ca2.crt"))
        secutil.write_atomically(key, pki.read("server2.key"))
        secutil.write_atomically(cert, pki.read("server2.crt"))
        time.sleep(2.5)  # Without a signal nothing happens for an hour.
        assert ping(pb2, pb2_grpc, server.grpc_target, ca2) == grpc.StatusCode.UNAVAILABLE
        server.sighup()
        server.wait_log("tls certificate reloaded")
        secutil.wait_until(
            lambda: ping(pb2, pb2_grpc, server.grpc_target, ca2) == grpc.StatusCode.OK,
            timeout_s=10, what="the certificate applied by SIGHUP to be served")


def check_mutual_tls(binary, work, pki, pb2, pb2_grpc):
    tokens = os.path.join(work, "tokens")
    secutil.write_atomically(tokens, "mtls-and-token-0123456789\n")
    server = secutil.Crabcached(binary, work, [
        f"--tls_cert={pki.path('server1.crt')}", f"--tls_key={pki.path('server1.key')}",
        f"--tls_client_ca={pki.path('ca1.crt')}", f"--auth_token_file={tokens}"], name="mtls")
    with server:
        root = pki.read("ca1.crt")
        no_cert = grpc.ssl_channel_credentials(root_certificates=root)
        good = grpc.ssl_channel_credentials(root, pki.read("client1.key"), pki.read("client1.crt"))
        rogue = grpc.ssl_channel_credentials(root, pki.read("rogue.key"), pki.read("rogue.crt"))
        md = (("authorization", "Bearer mtls-and-token-0123456789"),)
        assert ping(pb2, pb2_grpc, server.grpc_target, no_cert, md) == grpc.StatusCode.UNAVAILABLE
        assert ping(pb2, pb2_grpc, server.grpc_target, rogue, md) == grpc.StatusCode.UNAVAILABLE
        assert ping(pb2, pb2_grpc, server.grpc_target, good, md) == grpc.StatusCode.OK
        # The certificate lets the client connect; the token is still required.
        assert ping(pb2, pb2_grpc, server.grpc_target, good) == grpc.StatusCode.UNAUTHENTICATED
        assert "mutual_tls=true" in server.text() or '"mutual_tls":"true"' in server.text()


def check_startup_refusals(binary, work, pki):
    for name, flags, needle in [
        ("mismatch", [f"--tls_cert={pki.path('server1.crt')}",
                      f"--tls_key={pki.path('server2.key')}"], "does not match"),
        ("missing", [f"--tls_cert={pki.path('nope.crt')}",
                     f"--tls_key={pki.path('server1.key')}"], "nope.crt"),
        ("not-a-cert", [f"--tls_cert={pki.path('server1.key')}",
                        f"--tls_key={pki.path('server1.key')}"], "no PEM certificate"),
        ("half", [f"--tls_cert={pki.path('server1.crt')}"], "--tls_key go together"),
    ]:
        run = subprocess.run([binary, "--address=127.0.0.1", "--port=0", "--grpc_port=0",
                              "--metrics_address=", *flags], capture_output=True, timeout=30,
                             check=False)
        out = (run.stdout + run.stderr).decode("utf-8", "replace")
        assert run.returncode != 0, f"{name}: started anyway"
        assert needle in out, f"{name}: {needle!r} not in:\n{out}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--out_dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    pb2, pb2_grpc = ct.generate_stubs(os.path.join(args.out_dir, "gen"))
    work = secutil.new_workdir("crabcache-tls-")
    pki = Pki(os.path.join(work, "pki"))
    for ca in ("ca1", "ca2", "rogue-ca"):
        pki.ca(ca)
    pki.leaf("server1", "ca1", "serverAuth")
    pki.leaf("server2", "ca2", "serverAuth")
    pki.leaf("client1", "ca1", "clientAuth")
    pki.leaf("rogue", "rogue-ca", "clientAuth")
    check_startup_refusals(args.server, work, pki)
    check_tls(args.server, work, pki, pb2, pb2_grpc)
    check_sighup(args.server, work, pki, pb2, pb2_grpc)
    check_mutual_tls(args.server, work, pki, pb2, pb2_grpc)
    print("tls_crabcached_test: OK")


if __name__ == "__main__":
    main()
