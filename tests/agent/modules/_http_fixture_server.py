"""A real HTTP server on 127.0.0.1 (ephemeral port) for the http and prometheus checks.

Routes: /health (JSON), /text, /big (10 000 bytes), /slow (waits until released),
/redirect (302 to /health), /echo (returns method, headers and body as JSON),
/status/<code>, /metrics (``server.metrics_text``, settable per test).
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FixtureServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops concurrent connects (1 s SYN retries)

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.metrics_text = ""
        self.release = threading.Event()  # set to let /slow requests finish
        self.requests = 0
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FixtureServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    server: FixtureServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet test output
        pass

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> None:
        self.server.requests += 1
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        received = self.rfile.read(length) if length else b""
        if path == "/health":
            self._send(200, b'{"status": "healthy", "loop_age_s": 1.5}', "application/json", {"X-Bot": "1"})
        elif path == "/text":
            self._send(200, "héllo".encode(), "text/plain; charset=utf-8")
        elif path == "/big":
            self._send(200, b"x" * 10_000, "text/plain")
        elif path == "/badjson":
            self._send(200, b'{"status": ', "application/json")
        elif path == "/slow":
            self.server.release.wait(timeout=10)
            self._send(200, b"late", "text/plain")
        elif path == "/redirect":
            self._send(302, b"", "text/plain", {"Location": "/health"})
        elif path == "/echo":
            echo = {"method": self.command, "headers": dict(self.headers), "body": received.decode()}
            self._send(200, json.dumps(echo).encode(), "application/json")
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"status", "text/plain")
        elif path == "/metrics":
            self._send(200, self.server.metrics_text.encode(), "text/plain; version=0.0.4")
        else:
            self._send(404, b"not found", "text/plain")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _route  # noqa: N815 - http.server dispatches on these names
