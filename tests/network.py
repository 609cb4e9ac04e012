"""What sits between a worker and a SaaS API in a corporate network, for real: a private certificate authority,
a TLS server whose certificate only that CA verifies (terminating TLS in front of a sandbox API, optionally
demanding a client certificate), and a `CONNECT` forward proxy that records what it was asked and saw."""

from __future__ import annotations

import datetime as dt
import ipaddress
import select
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_IDLE_POLL = 0.2


@dataclass(frozen=True)
class PrivateCa:
    """PEM files: the CA's certificate (what a connection's `verify` names), the server's certificate and key
    for 127.0.0.1/localhost, and a client certificate with its key in one file (what `cert` names)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client: Path


def private_ca(folder: Path) -> PrivateCa:
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auditlogs test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(name: str, usage, san=None):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    server_cert, server_key = leaf(
        "127.0.0.1",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
    )
    client_cert, client_key = leaf("auditlogs worker", ExtendedKeyUsageOID.CLIENT_AUTH)
    paths = PrivateCa(folder / "ca.pem", folder / "server.pem", folder / "server.key", folder / "client.pem")
    paths.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.server_cert.write_bytes(server_cert)
    paths.server_key.write_bytes(server_key)
    paths.client.write_bytes(client_cert + client_key)
    return paths


class _Relay:
    """A listening socket whose connections are served one thread each until `close()`."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._listener.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_and_close, args=(client,), daemon=True).start()

    def _serve_and_close(self, client: socket.socket) -> None:
        try:
            self.serve(client)
        except OSError:
            pass
        finally:
            client.close()

    def serve(self, client: socket.socket) -> None:
        raise NotImplementedError

    def pipe(self, a: socket.socket, b: socket.socket, seen: bytearray | None = None) -> None:
        """Copies both ways (one thread, so a TLS socket is never used by two at once) until either side ends;
        what `a` sent is appended to `seen`."""
        while not self._stop.is_set():
            ready = [s for s in (a, b) if isinstance(s, ssl.SSLSocket) and s.pending()]
            ready = ready or select.select([a, b], [], [], _IDLE_POLL)[0]
            for source in ready:
                data = source.recv(65536)
                if not data:
                    return
                if source is a and seen is not None:
                    with self._lock:
                        seen += data
                (b if source is a else a).sendall(data)


class TlsServer(_Relay):
    """`https://127.0.0.1:port` with the private CA's server certificate, relaying to a plain-http `upstream`
    (a sandbox API); `require_client_cert`: only clients with a certificate of the CA get through."""

    def __init__(self, ca: PrivateCa, upstream_port: int, require_client_cert: bool = False):
        super().__init__()
        self.upstream_port = upstream_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(ca.server_cert, ca.server_key)
        if require_client_cert:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(ca.ca)
        self.url = f"https://127.0.0.1:{self.port}"
        #: Handshakes refused (no or an untrusted client certificate, or the client refused ours).
        self.refused_handshakes = 0

    def serve(self, client: socket.socket) -> None:
        try:
            secure = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            with self._lock:
                self.refused_handshakes += 1
            return
        with secure, socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
            self.pipe(secure, upstream)


class ConnectProxy(_Relay):
    """A forward proxy that tunnels `CONNECT host:port` and answers 405 to anything else; `heads` are the
    request heads it received, `seen` every byte clients sent it (inside the tunnels too)."""

    def __init__(self) -> None:
        super().__init__()
        self.url = f"http://127.0.0.1:{self.port}"
        self.heads: list[str] = []
        self.seen = bytearray()

    def serve(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(4096)
            if not data:
                return
            head += data
        head, _, rest = head.partition(b"\r\n\r\n")
        with self._lock:
            self.heads.append(head.decode("latin-1"))
            self.seen.extend(head + rest)
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        host, _, port = target.rpartition(":")
        with socket.create_connection((host, int(port))) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            self.pipe(client, upstream, self.seen)

    def requested(self) -> list[str]:
        """Method and target of every request (`CONNECT host:port`), without the HTTP version."""
        with self._lock:
            return [head.split("\r\n", 1)[0].rsplit(" ", 1)[0] for head in self.heads]
