"""Health check targets that misbehave, against the real server: /healthcheck answers within
the check timeout (+1 s) with status 3 for that check, TLS fails closed, and the server keeps
serving. The targets are local; the other check goes to a healthy one."""

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TIMEOUT = 2  # seconds, the checks' (the default is 5)


class RawTarget:
    """A TCP server on 127.0.0.1 that reads a request and lets `respond(sock, path)` answer,
    each connection in its own thread; TLS with `tls`. Notes when a client has hung up."""

    def __init__(self, respond, tls: ssl.SSLContext | None = None):
        self.respond, self.tls = respond, tls
        self.hung_up = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.scheme = "https" if tls else "http"
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://127.0.0.1:{self.listener.getsockname()[1]}{path}"

    def _accept(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        try:
            if self.tls:
                sock = self.tls.wrap_socket(sock, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096) or b"\r\n\r\n"
            self.respond(sock, head.split(b" ")[1].decode())
            sock.settimeout(10)
            while sock.recv(4096):  # until the client closes its end
                pass
        except OSError:  # the client gave up on us mid-way, or refused our certificate
            pass
        finally:
            self.hung_up.set()
            sock.close()

    def close(self):
        self.listener.close()


def endless_body(sock, _path):
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
    while True:
        sock.sendall(b"x" * 65536)


def redirect_loop(sock, path):
    # /loop answers /loop; /n/<i> answers /n/<i+1>: the same URL again, and ever new ones.
    target = path if path == "/loop" else f"/n/{int(path.rsplit('/', 1)[1]) + 1}"
    sock.sendall(f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n".encode())


def huge_header_line(sock, _path):
    sock.sendall(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"h" * (1 << 20) + b"\r\n\r\n")


def thousand_headers(sock, _path):
    sock.sendall(
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(1000)) + b"\r\n"
    )


def trickled_headers(sock, _path):
    sock.sendall(b"HTTP/1.1 200 OK\r\n")
    while True:  # a header line a byte at a time, each well within the socket timeout
        sock.sendall(b"X")
        time.sleep(0.2)


def ok(sock, _path):
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def tls_server(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


def self_signed(tmp_path) -> ssl.SSLContext:
    """A certificate for 127.0.0.1 that signs itself, no CA involved."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "self-signed.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pem)
    return context


# The trickled ones wait the checks' timeout out: slow.
KINDS = [
    "endless body",
    "redirect to itself",
    "endless redirects",
    "1 MB header line",
    "1000 headers",
    pytest.param("trickled headers", marks=pytest.mark.slow),
    pytest.param("trickled headers over TLS", marks=pytest.mark.slow),
    "self-signed certificate",
    "expired certificate",
    "certificate for another host",
]


def make_target(kind: str, test_ca: trustme.CA, tmp_path) -> tuple[RawTarget, str, list[str]]:
    """(target, URL to check, what the check's verbose must say)."""
    past = datetime.datetime(2020, 1, 1)
    expired = test_ca.issue_cert(
        "127.0.0.1", not_before=past - datetime.timedelta(days=1), not_after=past
    )
    refused = ["CERTIFICATE_VERIFY_FAILED"]
    respond, tls, path, says = {
        "endless body": (endless_body, None, "/", ["200 OK"]),
        "redirect to itself": (redirect_loop, None, "/loop", ["redirect not followed"]),
        "endless redirects": (redirect_loop, None, "/n/0", ["redirect not followed"]),
        "1 MB header line": (huge_header_line, None, "/", ["header line"]),
        "1000 headers": (thousand_headers, None, "/", ["more than 100 headers"]),
        "trickled headers": (trickled_headers, None, "/", [f"timed out after {TIMEOUT}s"]),
        "trickled headers over TLS": (
            trickled_headers,
            tls_server(test_ca.issue_cert("127.0.0.1")),
            "/",
            [f"timed out after {TIMEOUT}s"],
        ),
        # OpenSSL 3 says "self-signed certificate", 1.1 "self signed certificate".
        "self-signed certificate": (
            ok,
            self_signed(tmp_path),
            "/",
            refused + ["signed certificate"],
        ),
        "expired certificate": (
            ok,
            tls_server(expired),
            "/",
            refused + ["certificate has expired"],
        ),
        "certificate for another host": (
            ok,
            tls_server(test_ca.issue_cert("example.org")),
            "/",
            refused + ["mismatch"],
        ),
    }[kind]
    target = RawTarget(respond, tls)
    return target, target.url(path), says


@pytest.mark.parametrize("kind", KINDS)
def test_misbehaving_target_cannot_hurt(
    start_server, http_target, test_ca, ca_file, tmp_path, kind
):
    target, url, says = make_target(kind, test_ca, tmp_path)
    try:
        server = start_server(
            TINYAPI_HEALTHCHECK_HC1_URL=url,
            TINYAPI_HEALTHCHECK_HC2_URL=http_target.url("/ok"),
            TINYAPI_HEALTHCHECK_TIMEOUT=str(TIMEOUT),
            TINYAPI_HEALTHCHECK_CA_FILE=ca_file,
        )
        started = time.monotonic()
        r = server.get("/healthcheck")
        assert time.monotonic() - started < TIMEOUT + 1
        first, second = json.loads(r.body)
        assert (second["status"], second["verbose"]) == (1, "200 OK")
        assert all(each in first["verbose"] for each in says), first
        if kind == "endless body":
            # A 200 is an answer, as in the original: the body is never read, so it cannot
            # flood us; the check is over as soon as the status line is in.
            assert (r.status, first["status"], first["completed"]) == (200, 1, True)
        else:
            assert (r.status, first["status"], first["completed"]) == (503, 3, False)
            assert first["verbose"].startswith(f"GET {url}: ") and "\n" not in first["verbose"]
        # The check is really over: its connection is closed, no thread is left reading it.
        assert target.hung_up.wait(1)
        assert server.get("/alwaysok").status == 200
        assert server.proc.poll() is None and "Traceback" not in server.log
    finally:
        target.close()
