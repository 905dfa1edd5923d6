"""``bot drill``: drive the paper exchange's fault injection from the command line.

The admin token comes from the environment (``$BOTWARDEN_EXCHANGE_ADMIN_TOKEN`` or the name
in settings) or, for the local stack, from ``var/secrets.env`` that ``make run`` wrote; there is
no default token (the exchange has none either). The
admin API only exists on the paper exchange: a drill against testnet or mainnet is refused.
"""
from __future__ import annotations

import json
import os
from typing import Any

import httpx
import yaml

from botwarden.settings import StackSettings, read_secrets_file


class DrillError(Exception):
    pass


def admin_token(settings: StackSettings) -> str:
    name = settings.exchange.admin_token_env
    if os.environ.get(name):
        return os.environ[name]
    stored = read_secrets_file(settings.secrets_path).get(name)
    if stored:
        return stored
    raise DrillError(f"no admin token: ${name} is not set and {settings.secrets_path} has none "
                     "(`make run` writes it)")


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """``latency_ms=1500 outage=503 auth_failure=true`` -> typed values (YAML scalars)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DrillError(f"{pair!r}: expected name=value, e.g. latency_ms=1500")
        out[key.strip()] = yaml.safe_load(value)
    return out


def call(settings: StackSettings, method: str, path: str, body: Any = None) -> Any:
    if settings.bot.network != "paper":
        raise DrillError(f"network is {settings.bot.network}: drills only run against the paper exchange")
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
