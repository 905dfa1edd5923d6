"""``bot drill``: drive the paper exchange's fault injection from the command line.

The admin token comes from the environment (``$BOTWARDEN_EXCHANGE_ADMIN_TOKEN`` or the name
in settings) or, for the local stack, from ``var/secrets.env`` that ``make run`` wrote; there is
no default token (the exchange has none either). The
admin API only exists on the paper exchange: a drill against testnet or mainnet is refused.

``revoke bot|agent`` revokes that program's API wallet the way Hyperliquid allows (the account's
own key approves a fresh address under the wallet's name); ``approve bot|agent`` approves the
program's key again (from the environment or ``var/secrets.env``). Paper only, like every drill.
"""
from __future__ import annotations

import json
import os
from typing import Any

import httpx
import yaml

from botwarden import safe_yaml
from botwarden.settings import StackSettings, read_secrets_file


class DrillError(Exception):
    pass


def secret(settings: StackSettings, name: str) -> str | None:
    """``$name`` from the environment, else from the stack's ``var/secrets.env``."""
    if os.environ.get(name):
        return os.environ[name]
    return read_secrets_file(settings.secrets_path).get(name) or None


def admin_token(settings: StackSettings) -> str:
    token = secret(settings, settings.exchange.admin_token_env)
    if token:
        return token
    raise DrillError(f"no admin token: ${settings.exchange.admin_token_env} is not set and "
                     f"{settings.secrets_path} has none (`make run` writes it)")


def _paper_only(settings: StackSettings) -> None:
    if settings.bot.network != "paper":
        raise DrillError(f"network is {settings.bot.network}: drills only run against the paper exchange")


def api_wallet(settings: StackSettings, who: str, action: str) -> dict[str, Any]:
    """Revoke (``action == "revoke"``) or approve again the API wallet of ``who`` (bot | agent)."""
    from bot import api_wallets

    _paper_only(settings)
    if who not in ("bot", "agent"):
        raise DrillError(f"{who!r}: expected bot or agent")
    section = settings.bot if who == "bot" else settings.agent
    try:
        master = settings.private_key()
        if action == "revoke":
            fresh = api_wallets.revoke(settings.exchange_url, master, section.api_wallet_name)
            return {"revoked": section.api_wallet_name, "replaced_by": fresh}
        key = secret(settings, section.api_wallet_key_env)
        if not key:
            raise DrillError(f"no key for the {who}'s API wallet: ${section.api_wallet_key_env} is not set "
                             "(nor in var/secrets.env)")
        from eth_account import Account

        address = str(Account.from_key(key).address).lower()
        api_wallets.approve(settings.exchange_url, master, address, section.api_wallet_name)
        return {"approved": section.api_wallet_name, "address": address}
    except api_wallets.ApiWalletError as exc:
        raise DrillError(str(exc)) from exc


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """``latency_ms=1500 outage=503 auth_failure=true`` -> typed values (YAML scalars).

    Only ``true`` and ``false`` are booleans: YAML 1.1's other spellings (``yes``, ``no``, ``on``,
    ``off``, ``y``...) stay the words they are, so the exchange refuses ``auth_failure=yes`` by name
    instead of reading it as true, and ``outage=off`` means the outage mode ``off``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DrillError(f"{pair!r}: expected name=value, e.g. latency_ms=1500")
        try:  # bounded, and a value YAML cannot read (``[1``, ``2026-02-30``) is the operator's mistake
            parsed = safe_yaml.load(value)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise DrillError(f"{pair[:200]!r}: the value is read as YAML and YAML cannot read it ({problem}); "
                             "quote it to pass it as text") from None
        out[key.strip()] = _strict_booleans(parsed, value)
    return out


def _strict_booleans(parsed: Any, text: str) -> Any:
    if isinstance(parsed, bool):
        return parsed if text.strip() in ("true", "false") else text.strip()
    if isinstance(parsed, list):  # `ws_stall=[allMids, off]`: items keep their words too
        items = [t.strip() for t in text.strip().strip("[]").split(",")]
        if len(items) == len(parsed):
            return [_strict_booleans(p, t) for p, t in zip(parsed, items, strict=True)]
    return parsed


def call(settings: StackSettings, method: str, path: str, body: Any = None) -> Any:
    _paper_only(settings)
    url = f"{settings.exchange.url}{path}"
    try:
        r = httpx.request(method, url, json=body, timeout=10,
                          headers={"Authorization": f"Bearer {admin_token(settings)}"})
    except httpx.HTTPError as exc:
        raise DrillError(f"cannot reach the paper exchange at {settings.exchange.url}: {exc}") from exc
    if r.status_code >= 400:
        raise DrillError(f"{method} {path} -> {r.status_code}: {r.text.strip()[:300]}")
    return r.json() if r.content else None


def render(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True)
