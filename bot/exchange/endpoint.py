"""The ``/exchange`` endpoint's pipeline, shared by HTTP and the websocket's ``post`` requests.

:meth:`ExchangeEndpoint.apply` takes a request body and returns ``(http_status, body)``:
422 with Hyperliquid's deserialization text for a body that is not an action Hyperliquid knows,
else 200 with ``{"status": "ok" | "err", "response": ...}``. In order:

1. shape: ``action`` an object whose ``type`` is a Hyperliquid action (a trading action with the
   structure Hyperliquid deserializes: :func:`well_formed`), ``nonce`` an integer, ``expiresAfter``
   an integer or absent;
2. who signed it and for which account (:func:`bot.exchange.auth.authenticate`);
3. ``expiresAfter``: refused on user-signed actions (Hyperliquid does not support it there);
   in the past, refused and charged 5x the address-based weight, as Hyperliquid documents;
4. ``vaultAddress``: refused by name (no vaults or subaccounts here), never ignored;
5. the signer's nonce rules; a user-signed action's own nonce/time must equal the nonce;
6. an action Hyperliquid has but this exchange does not: refused by name (:mod:`catalog`);
7. the account's address-based request cap (cancels: ``min(cap + 100000, cap * 2)``, so a capped
   account can still cancel; the one request every 10 s Hyperliquid still allows a capped address
   is not simulated: past the cap every other action is refused); then the action runs and the
   ledger commits once (any exception rolls the whole request back).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.exchange import catalog, rules
from bot.exchange.auth import USER_SIGNED, Authenticated, authenticate, nonce_error
from bot.exchange.info_views import BAD_REQUEST
from bot.exchange.ledger import Ledger
from bot.exchange.trading import Trading
from bot.exchange.user_actions import UserActions

log = logging.getLogger("bot.exchange")
EXPIRED_WEIGHT_FACTOR = 5
# User-signed actions of Hyperliquid whose EIP-712 types the SDK does not carry: they cannot be
# verified here, and none is supported, so they are refused by name before any signature check.
UNVERIFIABLE = {"sendToEvmWithData", "cDeposit", "cWithdraw"}
CANCELS = {"cancel", "cancelByCloid"}  # their address-based cap is higher (Hyperliquid's rate-limit docs)
CANCEL_CAP_EXTRA = 100_000


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class ExchangeEndpoint:
    def __init__(self, ledger: Ledger, trading: Trading, cap: Any) -> None:
        self.ledger = ledger
        self.trading = trading
        self.user_actions = UserActions(ledger)
        self.cap = cap  # volume -> address-based request cap (InfoViews.ledger_cap)

    def apply(self, payload: Any, now: int, *, auth_failure: bool = False) -> tuple[int, Any]:
        if not isinstance(payload, dict) or not isinstance(payload.get("action"), dict):
            return 422, BAD_REQUEST
        action = payload["action"]
        kind = action.get("type")
        nonce, expires = payload.get("nonce"), payload.get("expiresAfter")
        if not isinstance(kind, str) or kind not in catalog.ACTIONS or not _int(nonce) or \
                not (expires is None or _int(expires)) or not isinstance(payload.get("signature"), dict) or \
                not well_formed(action):
            return 422, BAD_REQUEST
        assert isinstance(nonce, int)
        if kind in UNVERIFIABLE:
            return 200, _err(catalog.refusal("action", kind) or BAD_REQUEST)
        who = authenticate(payload, self.ledger, now, refuse_all=auth_failure)
        if isinstance(who, str):
            return 200, _err(who)
        weight = self.trading.requests_weight(action)
        user_kind = USER_SIGNED.get(kind)
        if user_kind is not None and expires is not None:
            return 200, _err(rules.err_expires_after_user_signed(kind))
        if expires is not None and expires < now:
            return 200, self._commit_charge(who, EXPIRED_WEIGHT_FACTOR * weight,
                                            _err(rules.err_action_expired(expires, now)))
        if payload.get("vaultAddress") is not None:
            return 200, _err(rules.err_unsupported("vaultAddress", "no vaults or subaccounts: sign for the "
                                                   "account itself or through its API wallet"))
        problem = nonce_error(nonce, self.ledger.nonces.get(who.signer, []), now)
        if problem:
            return 200, _err(problem)
        if user_kind is not None and action.get(user_kind.nonce_field) != nonce:
            return 200, _err(rules.err_action_nonce_mismatch(user_kind.nonce_field,
                                                             action.get(user_kind.nonce_field), nonce))
        refused = catalog.refusal("action", kind)
        if refused:
            return 200, _err(refused)
        acct = self.ledger.accounts[who.user]
        cap = self.cap(acct.cum_volume)
        if kind in CANCELS:
            # Hyperliquid's rate-limit docs: "Cancels have cumulative limit min(limit + 100000,
            # limit * 2) ... hitting the address-based rate limit will still allow open orders to be
            # canceled" (the guard's cancel of what can add exposure goes through a capped account)
            cap = min(cap + CANCEL_CAP_EXTRA, cap * 2)
        if acct.n_requests + weight > cap:
            return 200, _err(rules.err_too_many_requests(acct.n_requests + weight, cap, acct.cum_volume))
        led = self.ledger
        try:
            led.record_nonce(who.signer, nonce)
            acct.n_requests += weight
            if user_kind is not None:
                answer = self.user_actions.apply(who.user, action, nonce, now)
            else:
                answer = self.trading.apply(who.user, action, now)
            led.commit()
        except Exception:
            led.reload()  # back to the last committed state, never a half-applied action
            log.exception("action %s failed", kind)
            return 200, _err("Internal error while applying the action")  # paper
        return 200, answer

    def _commit_charge(self, who: Authenticated, weight: int, answer: dict[str, Any]) -> dict[str, Any]:
        self.ledger.accounts[who.user].n_requests += weight
        self.ledger.commit()
        return answer


def _uint(value: Any) -> bool:
    """An unsigned 64-bit integer, as Hyperliquid deserializes assets, oids, times and leverage."""
    return _int(value) and 0 <= value < 2**64


def _typed(obj: dict[str, Any], fields: dict[str, Callable[[Any], bool]]) -> bool:
    """Each of ``fields`` that ``obj`` holds has its type: Hyperliquid cannot deserialize a boolean
    where it reads a number, a number where it reads a boolean, a negative or fractional integer
    (they were coerced here, ``bool()`` / ``int()``, and applied: leverage ``true`` set 1, a wire's
    ``"b": "false"`` bought). A field left out is answered where it is used."""
    return all(check(obj[k]) for k, check in fields.items() if k in obj)


def _bool(value: Any) -> bool:
    return isinstance(value, bool)


def _wire_ok(wire: Any) -> bool:
    """An order wire's structure: an object whose ``t`` is an object holding a ``limit`` or a
    ``trigger`` object, its asset an unsigned integer and its side and reduce-only booleans (the
    other values inside are checked where they are used, with Hyperliquid's words)."""
    if not isinstance(wire, dict) or not isinstance(wire.get("t"), dict):
        return False
    if not _typed(wire, {"a": _uint, "b": _bool, "r": _bool}):
        return False
    kinds = [wire["t"].get(k) for k in ("limit", "trigger") if k in wire["t"]]
    return bool(kinds) and all(isinstance(k, dict) for k in kinds)


def _objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _ref_ok(ref: Any) -> bool:
    return _uint(ref) or isinstance(ref, str)


def well_formed(action: dict[str, Any]) -> bool:
    """Whether an L1 trading action has the structure Hyperliquid deserializes (lists of objects,
    an oid that is a number or a cloid, order wires with their order type): one that has not is a
    body Hyperliquid cannot deserialize (422), not an internal error of the exchange."""
    kind = action.get("type")
    if kind == "order":
        return isinstance(action.get("orders"), list) and all(_wire_ok(w) for w in action["orders"])
    if kind == "cancel":
        return _objects(action.get("cancels")) and all(_typed(c, {"a": _uint, "o": _uint}) for c in action["cancels"])
    if kind == "cancelByCloid":
        return _objects(action.get("cancels")) and all(
            _typed(c, {"asset": _uint, "cloid": lambda v: isinstance(v, str)}) for c in action["cancels"])
    if kind == "updateLeverage":
        return _typed(action, {"asset": _uint, "isCross": _bool, "leverage": _uint})
    if kind == "updateIsolatedMargin":
        return _typed(action, {"asset": _uint, "isBuy": _bool, "ntli": _int})
    if kind == "scheduleCancel":
        return _typed(action, {"time": lambda v: v is None or _uint(v)})
    if kind == "modify":
        return _ref_ok(action.get("oid")) and _wire_ok(action.get("order"))
    if kind == "batchModify":
        return _objects(action.get("modifies")) and all(
            _ref_ok(m.get("oid")) and _wire_ok(m.get("order")) for m in action["modifies"])
    return True


def _err(message: str) -> dict[str, Any]:
    return {"status": "err", "response": message}
