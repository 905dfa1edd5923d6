"""User-signed actions the paper exchange supports: ``approveAgent``, ``approveBuilderFee``,
``usdSend`` and ``withdraw3``.

``UserActions.apply(user, action, nonce, now)`` returns Hyperliquid's response body for an
action already verified as signed by ``user`` itself (see :mod:`bot.exchange.auth`). The caller
commits the ledger afterwards.

API wallets, as Hyperliquid documents them: an account has one unnamed API wallet and up to
three named ones; approving under a name that is taken (or a second unnamed one) replaces, and
so revokes, the previous one. A name may end in ``valid_until <ms>``: the approval lapses then.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.exchange import rules
from bot.exchange.ledger import Ledger

Json = dict[str, Any]
OK: Json = {"status": "ok", "response": {"type": "default"}}
MAX_NAMED_AGENTS = 3
MAX_BUILDER_FEE = 100  # tenths of a basis point: 0.1 %, Hyperliquid's cap for perps
MIN_BUILDER_VALUE = 100.0  # USDC of perps account value a builder must hold (Hyperliquid's builder-codes page)
WITHDRAW_FEE = 1.0  # USDC, as Hyperliquid's docs state at the time of writing
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_VALID_UNTIL = re.compile(r"^(?P<name>.*?)\s*valid_until\s+(?P<ms>\d+)$")


def err(message: str) -> Json:
    return {"status": "err", "response": message}


def split_valid_until(agent_name: str) -> tuple[str, int | None]:
    """``"bot valid_until 1700000000000"`` -> ``("bot", 1700000000000)``; no suffix -> (name, None)."""
    m = _VALID_UNTIL.match(agent_name)
    if m is None:
        return agent_name, None
    return m.group("name"), int(m.group("ms"))


def _amount(value: Any) -> Decimal | None:
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() and d > 0 else None


class UserActions:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def apply(self, user: str, action: Json, nonce: int, now: int) -> Json:
        kind = action.get("type")
        handler = {"approveAgent": self._approve_agent, "approveBuilderFee": self._approve_builder_fee,
                   "usdSend": self._usd_send, "withdraw3": self._withdraw}.get(kind)  # type: ignore[arg-type]
        if handler is None:
            return err(rules.err_unsupported(f"action {kind}", "not a supported user-signed action"))
        return handler(user, action, nonce, now)

    def _approve_agent(self, user: str, action: Json, nonce: int, now: int) -> Json:
        led = self.ledger
        address = action.get("agentAddress")
        if not isinstance(address, str) or not _ADDRESS.match(address):
            return err("Failed to deserialize the JSON body into the target type")
        agent = address.lower()
        name, valid_until = split_valid_until(str(action.get("agentName") or ""))
        if agent == user or agent in led.accounts:
            return err(rules.err_agent_is_user(agent))
        current = led.api_wallets.get(agent)
        if current is not None and current.master != user:
            return err(rules.err_agent_of_other(agent))
        if valid_until is not None and valid_until <= now:
            return err(rules.err_agent_valid_until(valid_until, now))
        named = {w.name for w in led.api_wallets.values()
                 if w.master == user and w.name and w.address != agent}
        if name and name not in named and len(named) >= MAX_NAMED_AGENTS:
            return err(rules.err_too_many_agents(MAX_NAMED_AGENTS))
        if current is not None:
            led.revoke_agent(agent)  # the same wallet approved again (maybe under another name)
        led.approve_agent(user, agent, name, valid_until, now)
        return OK

    def _approve_builder_fee(self, user: str, action: Json, nonce: int, now: int) -> Json:
        builder, rate = action.get("builder"), action.get("maxFeeRate")
        if not isinstance(builder, str) or not _ADDRESS.match(builder) or not isinstance(rate, str) \
                or not rate.endswith("%"):
            return err("Failed to deserialize the JSON body into the target type")
        try:
            percent = Decimal(rate[:-1])
        except InvalidOperation:
            return err("Failed to deserialize the JSON body into the target type")
        tenths_bp = percent * 1000  # 1 % = 100 bp = 1000 tenths of a basis point
        if not percent.is_finite() or percent < 0 or tenths_bp != tenths_bp.to_integral_value():
            return err("Failed to deserialize the JSON body into the target type")
        if tenths_bp > MAX_BUILDER_FEE:
            return err(rules.err_builder_fee_too_high(rate))
        led = self.ledger
        b = builder.lower()
        # Hyperliquid: the builder must have at least 100 USDC in perps account value, so a builder is
        # a funded user, never an API wallet (which holds nothing and would be credited the fees).
        value = led.margin_summary(b, led.marks(now))["account_value"] if b in led.accounts else 0.0
        if value < MIN_BUILDER_VALUE:
            return err(rules.err_builder_too_small(b, MIN_BUILDER_VALUE, value))
        led.approve_builder(user, b, int(tenths_bp))
        return OK

    def _usd_send(self, user: str, action: Json, nonce: int, now: int) -> Json:
        led = self.ledger
        destination, amount = action.get("destination"), _amount(action.get("amount"))
        if not isinstance(destination, str) or not _ADDRESS.match(destination):
            return err("Failed to deserialize the JSON body into the target type")
        if amount is None:
            return err(rules.err_bad_amount(action.get("amount")))
        available = led.withdrawable(user, led.marks(now))
        usdc = float(amount)
        if usdc > available + 1e-9:
            return err(rules.err_insufficient_balance(usdc, available))
        dest = destination.lower()
        if dest not in led.accounts and led.agent(dest, now) is not None:
            # An API wallet only signs for its master and holds nothing; crediting it would make it
            # a user beside being an agent (Hyperliquid keeps the two roles apart).
            return err(rules.err_send_to_agent(dest))
        led.accounts[user].balance -= usdc
        led.fund(dest, usdc)
        delta = {"type": "internalTransfer", "usdc": rules.wire(usdc, 6), "user": user, "destination": dest,
                 "fee": "0.0"}
        led.record_update(user, now, delta)
        if dest != user:
            led.record_update(dest, now, delta)
        return OK

    def _withdraw(self, user: str, action: Json, nonce: int, now: int) -> Json:
        led = self.ledger
        destination, amount = action.get("destination"), _amount(action.get("amount"))
        if not isinstance(destination, str) or not _ADDRESS.match(destination):
            return err("Failed to deserialize the JSON body into the target type")
        if amount is None or float(amount) <= WITHDRAW_FEE:
            return err(rules.err_bad_amount(action.get("amount")))
        available = led.withdrawable(user, led.marks(now))
        usdc = float(amount)
        if usdc > available + 1e-9:
            return err(rules.err_insufficient_balance(usdc, available))
        led.accounts[user].balance -= usdc  # the fee is part of the amount; the rest leaves the exchange
        led.record_update(user, now, {"type": "withdraw", "usdc": rules.wire(usdc, 6), "nonce": nonce,
                                      "fee": rules.wire(WITHDRAW_FEE, 6)})
        return OK
