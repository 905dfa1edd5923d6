"""The local alert inbox: a ``json://`` receiver for the offline stack.

apprise's ``json://host:port/`` target POSTs ``{"version", "title", "message", "type"}``. The inbox
appends each one, with the time it arrived, as a line of ``var/inbox.jsonl`` and prints a short
line to its log, so a newcomer running ``make run`` sees alerts without Slack or email:
``tail -f var/inbox.jsonl`` or ``agent inbox --show``. It binds to loopback only.
"""
from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

log = logging.getLogger("agent.inbox")
MAX_BODY = 1 << 20


def make_server(host: str, port: int, path: Path) -> ThreadingHTTPServer:
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the inbox binds to loopback only")
    lock = threading.Lock()
    path.parent.mkdir(parents=True, exist_ok=True)

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # else ~40 ms per request from delayed ACKs
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.send_error(413)
                return
            raw = self.rfile.read(length)
            try:
                payload = json.loads(raw or b"{}")
            except ValueError:
                payload = {"raw": raw.decode("utf-8", "replace")}
            record = {"received_at": datetime.now(UTC).isoformat(), "path": self.path, **payload}
            with lock, path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            log.info("received %s: %s", payload.get("type", "?"), payload.get("title", ""))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            body = b'{"status":"ok"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return ThreadingHTTPServer((host, port), Handler)


def read(path: Path, last: int = 20) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()[-last:]
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
