"""Why a check could not tell: the class of a probe's failure, for the operator's message.

An UNKNOWN result carries the module's own error text (``positions: exchange
http://127.0.0.1:8080 rate limited the request (HTTP 429)``). What the operator needs first is
the class of the failure, because it says what to do: a *timeout* (the other side is slow or
hung), *HTTP 429 rate limited* (back off: the exchange limits this address or IP), an *HTTP 5xx*
(the server is failing), *connection refused* (nothing listens: the process is down), a closed or
failed connection, an HTTP 4xx refusal (credentials, request), or an error of the check itself.

The classes are read from the error text: every transport of the agent words its failures the
same way (:class:`agent.http.RequestFailed`, :mod:`agent.modules._hyperliquid`, the engine's
own ``timed out after Ns``), so one classifier covers every module without each one restating
it. A text that fits no class is ``check error`` (the message is still shown in full).
"""
from __future__ import annotations

import re

TIMEOUT = "timed out"
RATE_LIMITED = "HTTP 429 rate limited"
CONNECTION_REFUSED = "connection refused"
CONNECTION_FAILED = "connection failed"
CHECK_ERROR = "check error"
HUNG = "hung"
"""The verdict of a liveness deadline that passed (a heartbeat): the program is alive but stuck."""
VERDICTS = (HUNG,)
"""Verdicts a module may open its summary with (``hung: no heartbeat for 61s``): what the problem
*is*, said in the alert's title (:func:`headline`)."""

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # not "rate_limit": the exchange rate-limit check's own errors open with its metric's name
    (re.compile(r"\b429\b|rate[ -]?limit", re.I), RATE_LIMITED),
    (re.compile(r"timed out|timeout", re.I), TIMEOUT),
    (re.compile(r"connection refused|connect call failed|errno 111", re.I), CONNECTION_REFUSED),
    (re.compile(r"unreachable|server disconnected|connection (reset|closed|aborted|failed)|"
                r"name or service not known|no route to host|network is unreachable|broken pipe", re.I),
     CONNECTION_FAILED),
)
_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")


def failure_cause(error: str | None) -> str | None:
    """The class of a probe failure described by ``error`` (``None`` when there is no error).

    >>> failure_cause("GET http://127.0.0.1:9/health timed out after 2s")
    'timed out'
    >>> failure_cause("equity: exchange http://x answered HTTP 503")
    'HTTP 503 server error'
    """
    if not error:
        return None
    for pattern, cause in _RULES:
        if pattern.search(error):
            return cause
    status = _HTTP_STATUS.search(error)
    if status is not None:
        code = int(status.group(1))
        if code >= 500:
            return f"HTTP {code} server error"
        if code >= 400:
            return f"HTTP {code} refused"
    return CHECK_ERROR


def headline(state: str, summary: str) -> str | None:
    """The few words an alert's title adds after ``CHECK on HOST``: for an UNKNOWN the class of
    the failure (an UNKNOWN incident's summary opens with it), for a problem whose summary opens
    with one of :data:`VERDICTS` that verdict (a hang is titled as a hang); else ``None``."""
    head, sep, _ = summary.partition(": ")
    if not sep:
        return None
    if state == "UNKNOWN" and (head in (TIMEOUT, RATE_LIMITED, CONNECTION_REFUSED, CONNECTION_FAILED, CHECK_ERROR)
                               or re.fullmatch(r"HTTP \d{3} (server error|refused)", head)):
        return head
    return head if head in VERDICTS else None
