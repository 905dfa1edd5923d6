"""tests/support/loopback.py: the tests' shared HTTP client behaves as httpx's module functions did."""
from __future__ import annotations

import http.server
import threading

from tests.support import loopback


def test_every_request_opens_its_own_connection_through_one_client() -> None:
    """One client per process (no SSL context built per request), and no connection kept alive
    between requests: a server restarted meanwhile is never reached through a stale one."""
    peers: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive allowed: the client must still not reuse

        def do_GET(self) -> None:
            peers.append(self.client_address[1])
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        assert [loopback.get(url, timeout=5).json() for _ in range(3)] == [{}, {}, {}]
        assert loopback.post(url, timeout=5).status_code == 501  # no do_POST: still served
    finally:
        server.shutdown()
        server.server_close()
    assert len(set(peers)) == 3, peers
    assert loopback.client() is loopback.client()
