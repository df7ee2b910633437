"""A real HTTP server on 127.0.0.1 for download tests: serves a directory, honours Range / If-Range,
can drop the connection after N bytes of a file's first response (a flaky file-sharing host) and then
answer with an error status; plus a dead host (accepts connections, never answers), a stalled host (sends
the headers, never the body) and a closed port."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Server:
    root: Path
    port: int = 0
    drop_after: dict[str, int] = field(default_factory=dict)  # name -> bytes sent before closing, once
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (name, Range header)
    fail_with: dict[str, int] = field(default_factory=dict)  # name -> HTTP status of every later answer

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{urllib.parse.quote(name)}"


def _handler(server: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            name = urllib.parse.unquote(self.path.lstrip("/"))
            server.requests.append((name, self.headers.get("Range")))
            if name in server.fail_with and (name not in server.drop_after):
                self.send_error(server.fail_with[name])
                return
            path = server.root / name
            if not path.is_file() or ".." in Path(name).parts:
                self.send_error(404, "Not Found")
                return
            data = path.read_bytes()
            etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
            start = 0
            ranged = self.headers.get("Range", "")
            if_range = self.headers.get("If-Range")
            if ranged.startswith("bytes=") and (if_range is None or if_range == etag):
                start = int(ranged[len("bytes="):].split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("ETag", etag)
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            body = data[start:]
            cut = server.drop_after.pop(name, None)
            if cut is not None:  # send part of the body, then drop the connection
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextmanager
def serve(root: Path) -> Iterator[Server]:
    """Serve ``root`` on an ephemeral loopback port from a background thread."""
    server = Server(Path(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@contextmanager
def dead_host() -> Iterator[str]:
    """A URL whose host accepts the TCP connection (the kernel's backlog) and never sends a byte."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/interactions.csv"
    finally:
        sock.close()


@contextmanager
def stalled_host() -> Iterator[str]:
    """A URL whose host answers the request's headers (200, a Content-Length) and then never sends the
    body: the read stalls rather than the connect."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []

    def answer() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:  # the listening socket was closed: the test is over
                return
            held.append(conn)
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/csv\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/items.csv"
    finally:
        sock.close()
        for conn in held:
            conn.close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """A URL on a loopback port nothing listens on (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/interactions.csv"
