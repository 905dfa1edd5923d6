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
            payload = _alert_of(raw or b"{}")
            if payload is None:  # no JSON object (a list, text, nested past what JSON reads): kept as sent
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


def _alert_of(text: bytes | str) -> dict | None:
    """The JSON object ``text`` holds, None when it holds none: not JSON, not UTF-8, JSON that is no
    object (``[1, 2]``, ``5``) or nested past what JSON reads (RecursionError)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def read(path: Path, last: int = 20, damaged: list[int] | None = None) -> list[dict]:
    """The last ``last`` alerts of ``path``; a damaged line (a torn write, a hand edit: no JSON object,
    bytes that are not UTF-8) is left out, its number appended to ``damaged``."""
    if not path.exists():
        return []
    lines = path.read_bytes().splitlines()
    out = []
    for number, line in enumerate(lines[-last:], start=max(len(lines) - last, 0) + 1):
        alert = _alert_of(line) if line.strip() else None
        if alert is not None:
            out.append(alert)
        elif line.strip() and damaged is not None:
            damaged.append(number)
    return out
