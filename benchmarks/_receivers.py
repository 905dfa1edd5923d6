"""Loopback alert receivers that timestamp each arrival (``time.time()``), and a child reaper.

* :class:`TimedJsonReceiver`: apprise ``json://`` target (and the peers' post_alert.py);
  Nagle is disabled so a response is not held ~40 ms.
* :class:`TimedSmtp`: Monit's native alert path (``set mailserver``), aiosmtpd; mails are
  matched by subject so an alert is attributed to the event it reports.
* :func:`become_subreaper`: orphans of daemonising start programs (Monit's) re-parent to this
  process instead of a PID 1 that may not reap them; a thread reaps those orphans only.
"""
from __future__ import annotations

import ctypes
import email.parser
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from benchmarks._common import free_port


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class TimedJsonReceiver:
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.time()
                try:
                    payload = json.loads(raw or b"{}")
                except ValueError:
                    payload = {"raw": raw.decode("utf-8", "replace")}
                with receiver._lock:
                    receiver.arrivals.append((at, payload))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def after(self, t0: float, contains: str) -> float | None:
        """Arrival time of the first message after ``t0`` whose text contains ``contains``."""
        with self._lock:
            for at, payload in self.arrivals:
                if at >= t0 and contains.lower() in json.dumps(payload).lower():
                    return at
        return None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class TimedSmtp:
    """Loopback SMTP server; each mail is kept with its arrival time and its (whitespace-folded) subject."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.subjects: list[tuple[float, str]] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd calls handle_DATA
                at = time.time()
                text = envelope.content.decode("utf-8", "replace")
                subject = str(email.parser.HeaderParser().parsestr(text, headersonly=True).get("Subject", ""))
                outer.subjects.append((at, " ".join(subject.split())))
                return "250 OK"

        self.port = free_port()
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def subject_after(self, t0: float, subject: str) -> float | None:
        """Arrival time of the first mail after ``t0`` whose subject is ``subject`` (whitespace folded)."""
        want = " ".join(subject.split()).lower()
        for at, got in list(self.subjects):
            if at >= t0 and got.lower() == want:
                return at
        return None

    def close(self) -> None:
        self._controller.stop()


_PR_SET_CHILD_SUBREAPER = 36
_owned: set[int] = set()


def become_subreaper(owned_pids: set[int]) -> None:
    """Adopt orphaned descendants and reap them (never the pids in ``owned_pids``: Popen's)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    _owned.update(owned_pids)

    def reap() -> None:
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                info = None
            if info is not None and info.si_pid not in _owned:
                try:
                    os.waitpid(info.si_pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                continue
            time.sleep(0.01)

    threading.Thread(target=reap, name="reaper", daemon=True).start()


def own(pid: int) -> None:
    """A child started with Popen: the reaper leaves it to Popen."""
    _owned.add(pid)
