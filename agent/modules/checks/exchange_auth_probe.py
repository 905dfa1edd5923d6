"""``python -m agent.modules.checks.exchange_auth_probe``: the ``auth`` metric's signed probe.

The probe is the one read of the ``exchange`` check that must sign (a request that cannot change
anything: cancelling order id 0, which no exchange ever assigns). Signing needs the SDK and
eth_account, which the resident agent does not keep in memory for a check every 5 minutes: the
probe runs in this short-lived child instead (about 1 s of CPU, measured on 2 cores).

Protocol: one JSON object on stdin, ``{"url", "key", "account_address", "timeout"}`` (the key
never on the command line, where any local user could read it); one JSON object on stdout,
``{"auth_ok", "auth_error", "latency_ms"}`` or ``{"error": "..."}`` (exit code 1). Messages never
carry the key or a signature.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any


def probe(url: str, key: str, account_address: str | None, timeout: float) -> dict[str, Any]:
    """Blocking: build the SDK client, send the no-op cancel, classify the answer."""
    from eth_account import Account
    from hyperliquid.exchange import Exchange

    from agent.modules import _hyperliquid as hl

    exchange = Exchange(Account.from_key(key), url, account_address=account_address, timeout=timeout)
    # Any listed perp: the cancel names no real order.
    coin = min(((a, c) for c, a in exchange.info.coin_to_asset.items() if a < 10_000), default=(0, "BTC"))[1]
    started = time.perf_counter()
    resp = exchange.bulk_cancel([{"coin": coin, "oid": 0}])
    latency = round((time.perf_counter() - started) * 1000.0, 3)
    error = hl.response_error(resp)
    if error is not None and not hl.looks_like_auth_error(error):
        # Refused for another reason (nonce, request cap): not a verdict on the credentials.
        raise RuntimeError(f"auth probe refused by exchange {url} for a reason other than the credentials: {error}")
    return {"auth_ok": error is None, "auth_error": error, "latency_ms": latency}


def main() -> int:
    request = json.loads(sys.stdin.read())
    url = str(request["url"])
    try:
        out = probe(url, str(request["key"]), request.get("account_address"), float(request["timeout"]))
    except Exception as exc:  # noqa: BLE001 - every failure is the check's UNKNOWN with a reason
        message = _describe(exc, url, float(request["timeout"]))
        print(json.dumps({"error": message}))
        return 1
    print(json.dumps(out))
    return 0


def _describe(exc: BaseException, url: str, timeout: float) -> str:
    import requests
    from hyperliquid.utils.error import ClientError, ServerError

    if isinstance(exc, requests.Timeout):
        return f"auth: exchange {url} timed out after {timeout:g}s"
    if isinstance(exc, requests.ConnectionError):
        return f"auth: exchange {url} is unreachable (connection failed)"
    if isinstance(exc, ServerError):
        return f"auth: exchange {url} answered HTTP {exc.status_code}"
    if isinstance(exc, ClientError):
        if exc.status_code == 429:
            return f"auth: exchange {url} rate limited the request (HTTP 429)"
        return f"auth: exchange {url} refused with HTTP {exc.status_code}"
    if isinstance(exc, RuntimeError):
        return str(exc)[:300]
    return f"auth: unexpected answer from exchange {url}: {type(exc).__name__}"


if __name__ == "__main__":
    sys.exit(main())
