"""Who signed an ``/exchange`` request, for which account, and is its nonce acceptable - as
Hyperliquid decides.

Two signature schemes, both recovered with the SDK's own helpers and eth_account:

* **L1 actions** (orders, cancels, leverage...): the msgpack action hash (with ``vaultAddress``
  and ``expiresAfter``) signed as a "phantom agent". The paper exchange signs as a non-mainnet
  venue, so the phantom agent's source is ``"b"`` (the SDK picks that for any base URL other
  than mainnet's). The signer is the account itself or one of its API (agent) wallets.
* **User-signed actions** (``approveAgent``, ``usdSend``, ``withdraw3``, ...): EIP-712 typed
  data of the action's own fields under the ``HyperliquidSignTransaction`` domain, with
  ``hyperliquidChain`` "Testnet" (a client that signed "Mainnet" recovers another address, as on
  Hyperliquid's testnet). Only the account itself may sign them, never an API wallet.

:func:`authenticate` turns a payload into an :class:`Authenticated` (signer, account) or
Hyperliquid's refusal. Nonces belong to the signer: an API wallet has its own nonce set.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hyperliquid.utils.signing import (
    CONVERT_TO_MULTI_SIG_USER_SIGN_TYPES,
    SEND_ASSET_SIGN_TYPES,
    SPOT_TRANSFER_SIGN_TYPES,
    TOKEN_DELEGATE_TYPES,
    USD_CLASS_TRANSFER_SIGN_TYPES,
    USD_SEND_SIGN_TYPES,
    USER_DEX_ABSTRACTION_SIGN_TYPES,
    USER_SET_ABSTRACTION_SIGN_TYPES,
    WITHDRAW_SIGN_TYPES,
    recover_agent_or_user_from_l1_action,
    recover_user_from_user_signed_action,
)

from bot.exchange import rules
from bot.exchange.ledger import Ledger

SignTypes = list[dict[str, str]]

# The SDK signs these two with inline type lists (sign_agent, sign_approve_builder_fee); they
# are Hyperliquid's EIP-712 types for the actions, as its exchange-endpoint docs give them.
APPROVE_AGENT_SIGN_TYPES: SignTypes = [
    {"name": "hyperliquidChain", "type": "string"},
    {"name": "agentAddress", "type": "address"},
    {"name": "agentName", "type": "string"},
    {"name": "nonce", "type": "uint64"},
]
APPROVE_BUILDER_FEE_SIGN_TYPES: SignTypes = [
    {"name": "hyperliquidChain", "type": "string"},
    {"name": "maxFeeRate", "type": "string"},
    {"name": "builder", "type": "address"},
    {"name": "nonce", "type": "uint64"},
]


@dataclass(frozen=True)
class UserSignedKind:
    """How one user-signed action is signed: its EIP-712 types, primary type, and the action
    field that carries the nonce (``time`` for the oldest transfers, ``nonce`` otherwise)."""

    types: SignTypes
    primary_type: str
    nonce_field: str


USER_SIGNED: dict[str, UserSignedKind] = {
    "usdSend": UserSignedKind(USD_SEND_SIGN_TYPES, "HyperliquidTransaction:UsdSend", "time"),
    "spotSend": UserSignedKind(SPOT_TRANSFER_SIGN_TYPES, "HyperliquidTransaction:SpotSend", "time"),
    "withdraw3": UserSignedKind(WITHDRAW_SIGN_TYPES, "HyperliquidTransaction:Withdraw", "time"),
    "usdClassTransfer": UserSignedKind(USD_CLASS_TRANSFER_SIGN_TYPES,
                                       "HyperliquidTransaction:UsdClassTransfer", "nonce"),
    "sendAsset": UserSignedKind(SEND_ASSET_SIGN_TYPES, "HyperliquidTransaction:SendAsset", "nonce"),
    "tokenDelegate": UserSignedKind(TOKEN_DELEGATE_TYPES, "HyperliquidTransaction:TokenDelegate", "nonce"),
    "convertToMultiSigUser": UserSignedKind(CONVERT_TO_MULTI_SIG_USER_SIGN_TYPES,
                                            "HyperliquidTransaction:ConvertToMultiSigUser", "nonce"),
    "userDexAbstraction": UserSignedKind(USER_DEX_ABSTRACTION_SIGN_TYPES,
                                         "HyperliquidTransaction:UserDexAbstraction", "nonce"),
    "userSetAbstraction": UserSignedKind(USER_SET_ABSTRACTION_SIGN_TYPES,
                                         "HyperliquidTransaction:UserSetAbstraction", "nonce"),
    "approveAgent": UserSignedKind(APPROVE_AGENT_SIGN_TYPES, "HyperliquidTransaction:ApproveAgent", "nonce"),
    "approveBuilderFee": UserSignedKind(APPROVE_BUILDER_FEE_SIGN_TYPES,
                                        "HyperliquidTransaction:ApproveBuilderFee", "nonce"),
}


@dataclass(frozen=True)
class Authenticated:
    """A verified request: ``signer`` owns the nonce, ``user`` is the account acted on."""

    signer: str
    user: str
    via_agent: bool


def _signature(payload: dict[str, Any]) -> dict[str, Any]:
    sig = payload["signature"]
    return {"r": sig["r"], "s": sig["s"], "v": int(sig["v"])}


def recover_l1_signer(payload: dict[str, Any]) -> str | None:
    """Lower-case address that signed ``payload``'s L1 action, None when it cannot be recovered."""
    try:
        address = recover_agent_or_user_from_l1_action(
            payload["action"], _signature(payload), payload.get("vaultAddress"), int(payload["nonce"]),
            payload.get("expiresAfter"), False,
        )
    except Exception:  # noqa: BLE001 - any malformed signature/action is "cannot recover", never a 500
        return None
    return str(address).lower()


def recover_user_signer(payload: dict[str, Any], kind: UserSignedKind) -> str | None:
    """Lower-case address that signed ``payload``'s user-signed action, None when unrecoverable."""
    action = dict(payload["action"])  # the SDK helper writes hyperliquidChain into the dict
    if action.get("type") == "approveAgent" and action.get("agentName") is None:
        action["agentName"] = ""  # the SDK signs "" and then drops the key for an unnamed agent
    try:
        address = recover_user_from_user_signed_action(action, _signature(payload), kind.types,
                                                       kind.primary_type, False)
    except Exception:  # noqa: BLE001 - a missing field or malformed signature: cannot recover, never a 500
        return None
    return str(address).lower()


def authenticate(payload: dict[str, Any], ledger: Ledger, now: int, *,
                 refuse_all: bool = False) -> Authenticated | str:
    """Recover the signer and map it to its account; Hyperliquid's refusal text otherwise.

    An L1 action may be signed by the account or by one of its API wallets that is approved and
    not expired; a user-signed action only by the account. ``refuse_all`` (the ``auth_failure``
    fault) refuses every signer as unknown."""
    kind = payload["action"].get("type")
    user_kind = USER_SIGNED.get(kind) if isinstance(kind, str) else None
    signer = recover_user_signer(payload, user_kind) if user_kind else recover_l1_signer(payload)
    if signer is None:
        return "Unable to recover signer."  # paper
    if refuse_all:
        return rules.err_unknown_user(signer)
    if signer in ledger.accounts:
        return Authenticated(signer=signer, user=signer, via_agent=False)
    agent = ledger.agent(signer, now)
    if agent is not None and user_kind is None and agent.master in ledger.accounts:
        return Authenticated(signer=signer, user=agent.master, via_agent=True)
    # Unknown, revoked (re-approved away) or expired API wallets, and API wallets signing a
    # user-signed action: Hyperliquid knows no such user or API wallet.
    return rules.err_unknown_user(signer)


def nonce_error(nonce: int, seen: list[int], now_ms: int) -> str | None:
    """Hyperliquid's nonce rules: within (now - 2 days, now + 1 day), never reused, and larger
    than the smallest of the last 100 nonces of the signer (``seen``, ascending)."""
    if nonce <= now_ms - rules.NONCE_PAST_MS:
        return rules.err_nonce_too_low(nonce, now_ms - rules.NONCE_PAST_MS)
    if nonce >= now_ms + rules.NONCE_FUTURE_MS:
        return rules.err_nonce_too_high(nonce, now_ms + rules.NONCE_FUTURE_MS)
    if seen and len(seen) >= rules.NONCE_SET_SIZE and nonce <= seen[0]:
        return rules.err_nonce_too_low(nonce, seen[0])
    if nonce in seen:
        return rules.err_duplicate_nonce(nonce)
    return None
