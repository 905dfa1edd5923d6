"""Key-shaped substrings of free text (log lines, error messages), and masking them.

Shapes, not known values: a PEM private key, a bearer token, 64 hex digits (an Ethereum private
key, with or without 0x) and the credentials part of a URL. The redactor of known secrets
(:mod:`agent.core.redaction`) complements this for values the agent knows.
"""
from __future__ import annotations

import re

_SECRET_SHAPES = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|\b(?:0x)?[0-9a-fA-F]{64}\b"
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@)",
    re.DOTALL,
)
MASK = "***"


def redact_line(line: str) -> str:
    """``line`` with key-shaped substrings replaced by ``***``."""
    return _SECRET_SHAPES.sub(MASK, line)
