"""The tls option on real servers: each node of a 5-node cluster also listens
on a TLS port and requires a client certificate; the certificates (a CA, a
server certificate for 127.0.0.1 and localhost, a client certificate, and an
unrelated CA) are made with the openssl command in a temporary directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

import redlock
from cluster import Cluster
from conftest import NODE_TIMEOUT

CA_EXT = ("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
          "subjectKeyIdentifier=hash\n")
LEAF_EXT = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"


def _openssl(cwd: str, *args: str) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr}"


def _cert(cwd: str, name: str, subject: str, ext: str, issuer: str, serial: int) -> None:
    with open(os.path.join(cwd, name + ".ext"), "w") as f:
        f.write(ext)
    _openssl(cwd, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", name + ".key")
    _openssl(cwd, "req", "-new", "-key", name + ".key", "-subj", subject, "-out", name + ".csr")
    sign = ["-signkey", name + ".key"] if not issuer else [
        "-CA", issuer + ".crt", "-CAkey", issuer + ".key"]
    _openssl(cwd, "x509", "-req", "-in", name + ".csr", "-days", "30", "-extfile", name + ".ext",
             "-set_serial", str(serial), "-out", name + ".crt", *sign)


@pytest.fixture(scope="module")
def certs():
    d = tempfile.mkdtemp(prefix="redlock-py-tls-")
    try:
        _cert(d, "ca", "/O=redlock tests/CN=redlock test CA", CA_EXT, "", 1)
        _cert(d, "other_ca", "/O=elsewhere/CN=another CA", CA_EXT, "", 2)
        _cert(d, "server", "/O=redlock tests/CN=localhost",
              LEAF_EXT + "extendedKeyUsage=serverAuth\n"
              "subjectAltName=DNS:localhost,IP:127.0.0.1\n", "ca", 3)
        _cert(d, "client", "/O=redlock tests/CN=redlock-client",
              LEAF_EXT + "extendedKeyUsage=clientAuth\n", "ca", 4)
        yield {name: os.path.join(d, name) for name in ("ca", "other_ca", "server", "client")}
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_cluster(certs):
    c = Cluster(5, tls_args=[
        "--tls-cert-file", certs["server"] + ".crt", "--tls-key-file", certs["server"] + ".key",
        "--tls-ca-cert-file", certs["ca"] + ".crt", "--tls-auth-clients", "yes"])
    try:
        yield c
    finally:
        c.stop()


def _client(cluster, **tls):
    return redlock.Client(cluster.tls_nodes, restart_grace=0, node_timeout=NODE_TIMEOUT,
                          tls=tls)


def test_lock_over_mutual_tls(tls_cluster, certs):
    with _client(tls_cluster, ca_file=certs["ca"] + ".crt", cert_file=certs["client"] + ".crt",
                 key_file=certs["client"] + ".key", server_name="localhost") as client:
        lock = client.lock("py:tls", timeout=10)
        assert lock.acquire(blocking=False)
        assert len(tls_cluster.lock_keys(b"py:tls")) >= 3
        lock.release()
    assert tls_cluster.lock_keys(b"py:tls") == {}


def test_another_ca_is_refused_with_the_reason(tls_cluster, certs):
    with _client(tls_cluster, ca_file=certs["other_ca"] + ".crt",
                 cert_file=certs["client"] + ".crt",
                 key_file=certs["client"] + ".key") as client:
        lock = client.lock("py:tls-other-ca", timeout=10)
        with pytest.raises(redlock.RedlockError) as caught:
            lock.acquire(blocking=False, raise_on_failure=True)
        error = caught.value
        assert error.code == redlock.ErrorCode.NO_QUORUM, error
        assert len(error.nodes) == 5
        for node in error.nodes:
            # redis-server sends its CA along: a self-signed certificate the
            # client does not trust (without it: no issuer at all).
            assert ("certificate verify failed: self-signed certificate in certificate chain"
                    in node.detail
                    or "certificate verify failed: unable to get local issuer certificate"
                    in node.detail), node
    assert tls_cluster.lock_keys(b"py:tls-other-ca") == {}


def test_verification_off_is_explicit(tls_cluster, certs):
    with _client(tls_cluster, ca_file=certs["other_ca"] + ".crt",
                 cert_file=certs["client"] + ".crt", key_file=certs["client"] + ".key",
                 verify=False) as client:
        lock = client.lock("py:tls-insecure", timeout=10)
        assert lock.acquire(blocking=False)
        lock.release()


def test_bad_tls_options(tls_cluster, certs):
    with pytest.raises(TypeError, match="tls has no option 'ca'"):
        _client(tls_cluster, ca="x")
    with pytest.raises(TypeError, match="tls must be a dict"):
        redlock.Client(tls_cluster.tls_nodes, tls="ca.crt")
    with pytest.raises(TypeError, match="tls\\['verify'\\] must be True or False"):
        _client(tls_cluster, verify="no")
    with pytest.raises(redlock.InvalidArgument, match='tls.ca_file "/nonexistent/ca.pem"'):
        _client(tls_cluster, ca_file="/nonexistent/ca.pem")
