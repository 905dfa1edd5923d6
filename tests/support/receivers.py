"""Real notification receivers on loopback, for tests that deliver through apprise.

* :class:`JsonReceiver`: an HTTP server recording every POST body that apprise's
  ``json://`` plugin sends. It can answer 500 (``receiver.failing = True``), be stopped
  (connections refused) and started again on the *same* port, so a test can take "Slack"
  down and bring it back.
* :class:`SmtpReceiver`: a real SMTP server (aiosmtpd) collecting messages; ``.url`` is an
  apprise ``mailto://`` URL that reaches it without TLS or login.

Both listen on 127.0.0.1 on an ephemeral port and nothing else; use them as context
managers (or the fixtures of your own conftest) so they are always stopped::

    with JsonReceiver() as inbox:
        ...  # deliver to inbox.url
        assert inbox.wait_for(1)[0]["title"] == "..."
"""
from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.ports import free_port


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True  # restart on the same port right after stop()
    daemon_threads = True


class JsonReceiver:
    """Records the JSON bodies posted to it. Thread-safe; ``messages`` is a snapshot copy."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._messages: list[dict[str, Any]] = []
        self.failing = False
        """While True, every POST is answered 500 (and not recorded as delivered)."""
        self.rejected = 0
        """How many POSTs were answered 500."""
        self.delay = 0.0
        """Seconds a POST is held after it was recorded, before it is answered (a slow target:
        the message arrived, its sender does not know yet; a sender killed meanwhile never
        learns that it did)."""
        self.port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The apprise URL of this receiver (``json://127.0.0.1:PORT/``)."""
        return f"json://127.0.0.1:{self.port}/"

    @property
    def messages(self) -> list[dict[str, Any]]:
        with self._cond:
            return list(self._messages)

    def start(self) -> JsonReceiver:
        """Listen (again): the first start picks a free port, later starts reuse it."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if receiver.failing:
                    with receiver._cond:
                        receiver.rejected += 1
                    self.send_response(500)
                    self.end_headers()
                    return
                try:
                    payload = json.loads(raw or b"{}")
                except ValueError:
                    payload = {"raw": raw.decode("utf-8", "replace")}
                with receiver._cond:
                    receiver._messages.append(payload)
                    receiver._cond.notify_all()
                if receiver.delay > 0:
                    time.sleep(receiver.delay)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:  # the sender is gone (killed while we held the answer)
                    pass

            def log_message(self, *args: Any) -> None:  # quiet test output
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"json-receiver:{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the socket: connections are refused until :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def wait_for(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least ``n`` messages arrived; returns them (raises on timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self._messages)} message(s) received, expected {n}")
                self._cond.wait(left)
            return list(self._messages)

    def __enter__(self) -> JsonReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def text(self) -> str:
        """The decoded body (all text parts joined)."""
        parts = [p for p in self.message.walk() if p.get_content_maintype() == "text"]
        return "\n".join(str(p.get_content()) for p in parts)


class _Collector:
    def __init__(self, cond: threading.Condition, sink: list[ReceivedMail]) -> None:
        self._cond, self._sink = cond, sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        with self._cond:
            self._sink.append(ReceivedMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
            self._cond.notify_all()
        return "250 Message accepted for delivery"


class SmtpReceiver:
    """A real SMTP server on loopback (aiosmtpd); no TLS, no authentication."""

    def __init__(self, *, mail_from: str = "botwarden@example.com", rcpt_to: str = "ops@example.com") -> None:
        self.mail_from, self.rcpt_to = mail_from, rcpt_to
        self._cond = threading.Condition()
        self._mails: list[ReceivedMail] = []
        self.port = free_port()
        self._controller = Controller(_Collector(self._cond, self._mails), hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        """apprise ``mailto://`` URL: plain SMTP (``mode=insecure``) to this server, no login."""
        return f"mailto://127.0.0.1:{self.port}?mode=insecure&from={self.mail_from}&to={self.rcpt_to}"

    @property
    def mails(self) -> list[ReceivedMail]:
        with self._cond:
            return list(self._mails)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._mails) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self._mails)} mail(s) received, expected {n}")
                self._cond.wait(left)
            return list(self._mails)

    def start(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
