"""``python -m agent.modules.checks.exchange_auth_probe``: the ``auth`` metric's signed probe.

The probe is the one read of the ``exchange`` check that must sign (a request that cannot change
anything: cancelling order id 0, which no exchange ever assigns). Signing needs the SDK and
eth_account, which the resident agent does not keep in memory for a check every 5 minutes: the
probe runs in this short-lived child instead (about 1 s of CPU, measured on 2 cores).

Protocol: one JSON object on stdin, ``{"url", "key", "account_address", "timeout"}`` (the key
never on the command line, where any local user could read it); one JSON object on stdout,
``{"auth_ok", "auth_error", "refused", "signer", "api_wallet", "signer_role", "protection",
"latency_ms"}`` or ``{"error": "..."}`` (exit code 1). Messages never carry the key or a signature.

A refusal is told apart by what the exchange says about the signer (``userRole``, an unsigned
read): ``refused == "api_wallet"`` when the signer is an API wallet that the exchange no longer
lists as an agent of the account (revoked by re-approval, expired, or pruned) while the account
itself is still a user: the account and its positions are fine, only that key no longer works, and
the remedy is to approve a new API wallet. ``refused == "account"`` otherwise (the account's own
key refused, an account the exchange no longer knows, or a key it lists as approved and refuses
anyway, asked twice: a wallet approved again between the refusal and the ``userRole`` read is
accepted the second time, and is no emergency): the credentials themselves are in question. On a refusal ``protection`` says which open
positions still have a resting stop-loss (read, not signed: the refused key cannot act).
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
    signer = str(exchange.wallet.address).lower()
    account = (account_address or signer).lower()
    out: dict[str, Any] = {"auth_ok": error is None, "auth_error": error, "refused": None, "signer": signer,
                           "api_wallet": signer != account, "signer_role": None, "protection": None,
                           "latency_ms": latency}
    if error is not None:
        out["refused"], out["signer_role"] = _who_is_refused(exchange.info, signer, account)
        if out["refused"] == "account" and out["api_wallet"] and str(out["signer_role"]).startswith("agent of "):
            # Listed as approved, refused a moment ago: the approval may have changed between the
            # two reads (revoked, then approved again). Asked once more before the emergency is
            # called for the account's key: accepted now, it was a lapse that is over.
            again = hl.response_error(exchange.bulk_cancel([{"coin": coin, "oid": 0}]))
            if again is None or not hl.looks_like_auth_error(again):
                out.update(auth_ok=True, refused=None, auth_error=None,
                           note=f"refused once ({error}), accepted when asked again: the API wallet's approval "
                                "changed meanwhile")
                return out
        out["protection"] = _protection(exchange.info, account)
    return out


def _who_is_refused(info: Any, signer: str, account: str) -> tuple[str, str]:
    """``("api_wallet" | "account", the signer's userRole)`` (module docstring)."""
    role = info.user_role(signer)
    role = role if isinstance(role, dict) else {}
    kind = str(role.get("role") or "missing")
    if signer == account:
        return "account", kind
    master = str((role.get("data") or {}).get("user") or "").lower() if kind == "agent" else ""
    if master == account:
        return "account", f"agent of {account}"  # listed as approved, refused anyway: not a lapsed approval
    account_role = info.user_role(account)
    if isinstance(account_role, dict) and account_role.get("role") == "user":
        return "api_wallet", kind if kind != "agent" else f"agent of {master}"
    return "account", kind


def _protection(info: Any, account: str) -> str:
    """One line per open position of ``account``: whether its resting stop-losses cover it."""
    from agent.modules import _hyperliquid as hl
    from botwarden.protection import is_protected, stop_losses

    try:
        positions = hl.parse_account(info.user_state(account)).positions
        orders = hl.parse_orders(info.frontend_open_orders(account))
    except Exception as exc:  # noqa: BLE001 - the verdict on the key stands; say what was not read
        return f"positions not read ({type(exc).__name__})"
    if not positions:
        return "no open position"
    parts = []
    for p in positions:
        own = [o for o in orders if o.coin == p.coin]
        stops = stop_losses(p.size, own)
        if is_protected(p.size, own):
            parts.append(f"{p.describe()}: stop-loss resting at {', '.join(f'{o.trigger_px:g}' for o in stops)}")
        else:
            parts.append(f"{p.describe()}: NO stop-loss covering it")
    return "; ".join(parts)


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
