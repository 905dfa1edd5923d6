"""Structured logs: one JSON object per line, secrets redacted from the final text.

Events carry ``event`` and their fields through ``extra={...}``. Redaction runs on the fully
formatted line (message, fields and any traceback), so a secret that slips into an exception
message is still never written.
"""
from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else came from ``extra`` and is an event field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
REDACTED = "***"


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: ts, level, logger, msg, event fields, exc."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = []
        for s in secrets:
            self.add_secret(s)

    def add_secret(self, secret: str | None) -> None:
        """Redact ``secret`` (and its form without a 0x prefix) from every line from now on."""
        if not secret or len(secret) < 6:
            return  # too short to redact without mangling ordinary text
        for form in {secret, secret[2:] if secret.startswith("0x") else secret}:
            if form not in self.secrets:
                self.secrets.append(form)
        self.secrets.sort(key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        line = json.dumps(doc, default=str, separators=(",", ":"))
        return self.redact(line)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


def configure_logging(secrets: Iterable[str], *, level: int = logging.INFO, stream: TextIO | None = None) -> JsonFormatter:
    """Route the root logger to ``stream`` (stderr) as JSON lines; return the formatter so
    more secrets can be registered. Replaces handlers set by an earlier call."""
    formatter = JsonFormatter(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_botwarden_json", False):
            root.removeHandler(old)
    handler._botwarden_json = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # The SDK logs whole signed payloads at debug; urllib3 chatter is noise.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    return formatter
