"""Approving and revoking the stack's API (agent) wallets, as an operator does on Hyperliquid.

The account's own key signs ``approveAgent`` (a user-signed EIP-712 action, through the SDK's
``sign_agent``) naming an API wallet; approving a fresh address under the same name revokes the
previous one, which is the only revocation Hyperliquid has. On testnet and mainnet the operator
does this once in Hyperliquid's app; on paper ``make run`` does it for the bot's and the agent's
wallets (:func:`approve_stack_wallets`) and ``bot drill revoke|approve`` rehearses a revoked key.

Keys are only ever passed to the SDK's signer; messages name wallets by address and name.
"""
from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from botwarden.settings import Signer, StackSettings


class ApiWalletError(Exception):
    """The exchange refused an approval, or could not be reached."""


@dataclass(frozen=True)
class Approval:
    who: Signer
    name: str
    address: str
    changed: bool


def _address(key: str) -> str:
    from botwarden.keys import address_of

    return address_of(key)


def _post(url: str, body: dict[str, Any], timeout: float) -> Any:
    try:
        r = httpx.post(url, json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ApiWalletError(f"cannot reach the exchange at {url}: {type(exc).__name__}") from None
    if r.status_code != 200:
        raise ApiWalletError(f"{url} answered HTTP {r.status_code}: {r.text[:200]}")
    return r.json()


def role(base_url: str, address: str, timeout: float = 5.0) -> dict[str, Any]:
    """``userRole`` of ``address``: ``{"role": "agent", "data": {"user": master}}``, ``user``, ``missing``."""
    answer = _post(f"{base_url}/info", {"type": "userRole", "user": address}, timeout)
    return answer if isinstance(answer, dict) else {"role": "missing"}


def approve(base_url: str, master_key: str, agent_address: str, name: str, timeout: float = 5.0) -> None:
    """Sign ``approveAgent`` for ``agent_address`` under ``name`` with the account's own key."""
    from eth_account import Account
    from hyperliquid.utils.signing import get_timestamp_ms, sign_agent

    nonce = get_timestamp_ms()
    action: dict[str, Any] = {"type": "approveAgent", "agentAddress": agent_address, "agentName": name,
                              "nonce": nonce}
    signature = sign_agent(Account.from_key(master_key), action, False)
    answer = _post(f"{base_url}/exchange", {"action": action, "nonce": nonce, "signature": signature,
                                            "vaultAddress": None}, timeout)
    if not isinstance(answer, dict) or answer.get("status") != "ok":
        why = answer.get("response") if isinstance(answer, dict) else answer
        raise ApiWalletError(f"approveAgent {name!r} refused: {why}")


def revoke(base_url: str, master_key: str, name: str, timeout: float = 5.0) -> str:
    """Revoke the wallet approved under ``name`` by approving a fresh, unused address in its
    place; returns that address (its key is discarded at once)."""
    fresh = _address("0x" + secrets.token_hex(32))
    approve(base_url, master_key, fresh, name, timeout)
    return fresh


def approve_stack_wallets(settings: StackSettings, environ: Mapping[str, str] | None = None, *,
                          timeout: float = 5.0) -> list[Approval]:
    """On paper, approve the bot's and the agent's API wallets (keys from ``environ``, default the
    process environment) for the account, unless already approved for it. Off paper this is the
    operator's job: nothing is sent."""
    if settings.bot.network != "paper":
        return []
    done: list[Approval] = []
    master_key = settings.private_key(environ)
    account = settings.account_address(environ)
    whos: tuple[Signer, ...] = ("bot", "agent")
    for who in whos:
        signer = settings.signing_key(who, environ)
        if not signer.api_wallet:
            continue
        address = _address(signer.key)
        current = role(settings.exchange_url, address, timeout)
        if current.get("role") == "agent" and (current.get("data") or {}).get("user") == account:
            done.append(Approval(who, signer.name, address, changed=False))
            continue
        approve(settings.exchange_url, master_key, address, signer.name, timeout)
        done.append(Approval(who, signer.name, address, changed=True))
    return done
