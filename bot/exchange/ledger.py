"""Accounts, positions, fills and margin: the clearinghouse of the paper exchange.

All state lives in ORM objects held by one long-lived session (see :mod:`bot.exchange.models`);
every mutating method leaves its changes in the session and the caller commits once per request
or tick. Not thread-safe: it is driven from the server's single event loop.

Every order status change, fill and ledger update is also appended to :attr:`Ledger.events`;
the caller takes them (:meth:`Ledger.take_events`) only after the commit that makes them true,
and a :meth:`Ledger.reload` (rollback) drops them, so the websocket never reports what did not
happen.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.exchange.market import Book, Market
from bot.exchange.models import (
    Account,
    ApiWallet,
    BuilderApproval,
    Fill,
    LedgerUpdate,
    Leverage,
    MetaRow,
    NonceRow,
    Order,
    Position,
    ShockRow,
)
from bot.exchange.rules import MAKER_FEE, NONCE_SET_SIZE, TAKER_FEE

DEFAULT_LEVERAGE = 20


SHOCK_BOUND = 10.0
"""Drills move a mark to between 1/SHOCK_BOUND and SHOCK_BOUND times its unshocked price."""


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class ExchangeConfig:
    """Tunable exchange rules (admin ``/admin/config``); not persisted, defaults on start."""

    default_funding: float = 100_000.0  # USDC given to an auto-created account
    schedule_cancel_min_volume: float = 0.0  # Hyperliquid requires $1,000,000 traded; paper: 0
    schedule_cancel_daily_limit: int = 10
    address_request_cap: int | None = None  # None: Hyperliquid's 10000 + 1 per USDC traded

    def update(self, values: dict) -> None:
        for key, value in values.items():
            if not hasattr(self, key):
                raise KeyError(key)
            setattr(self, key, value)


@dataclass(frozen=True)
class OrderSnapshot:
    """An order as it was at one status change (the websocket's ``WsOrder``)."""

    address: str
    oid: int
    coin: str
    is_buy: bool
    limit_px: float
    sz: float
    orig_sz: float
    timestamp: int
    cloid: str | None
    status: str
    status_ts: int


@dataclass(frozen=True)
class LedgerEvent:
    """Something the websocket streams: an order status, a fill, or a ledger update."""

    kind: Literal["order", "fill", "ledger"]
    address: str
    order: OrderSnapshot | None = None
    fill: Fill | None = None
    update: LedgerUpdate | None = None


@dataclass
class FillResult:
    sz: float = 0.0
    notional: float = 0.0
    fills: list[Fill] = field(default_factory=list)

    @property
    def avg_px(self) -> float:
        return self.notional / self.sz if self.sz else 0.0


class Ledger:
    """The exchange's state and its accounting rules."""

    def __init__(self, engine: Engine, market: Market, *, clock: Callable[[], int] = wall_clock_ms,
                 config: ExchangeConfig | None = None) -> None:
        self.engine = engine
        self.market = market
        self.clock = clock
        self.config = config or ExchangeConfig()
        self.coins = list(market.coins)
        self.asset_of = {c: i for i, c in enumerate(self.coins)}
        self.session = Session(engine, expire_on_commit=False, autoflush=False)
        self.events: list[LedgerEvent] = []
        self._load()

    def _load(self) -> None:
        s = self.session
        self.accounts: dict[str, Account] = {a.address: a for a in s.scalars(select(Account))}
        self.positions: dict[tuple[str, str], Position] = {(p.address, p.coin): p for p in s.scalars(select(Position))}
        self.leverage: dict[tuple[str, str], Leverage] = {(x.address, x.coin): x for x in s.scalars(select(Leverage))}
        self.open_orders: dict[int, Order] = {o.oid: o for o in s.scalars(select(Order).where(Order.status == "open"))}
        self.nonces: dict[str, list[int]] = {}
        for row in s.scalars(select(NonceRow).order_by(NonceRow.nonce)):
            self.nonces.setdefault(row.signer, []).append(row.nonce)
        self.api_wallets: dict[str, ApiWallet] = {w.address: w for w in s.scalars(select(ApiWallet))}
        self.builder_approvals: dict[tuple[str, str], BuilderApproval] = {
            (b.user, b.builder): b for b in s.scalars(select(BuilderApproval))}
        self.market.shocks.clear()
        for sh in s.scalars(select(ShockRow).order_by(ShockRow.at_ms)):
            self.market.add_shock(sh.coin, sh.pct, sh.at_ms)
        meta = s.get(MetaRow, "next_oid")
        self._next_oid_row = meta or MetaRow(key="next_oid", value="1000")
        if meta is None:
            s.add(self._next_oid_row)
        s.commit()

    def commit(self) -> None:
        self.session.commit()

    def take_events(self) -> list[LedgerEvent]:
        """The events recorded since the last call (call it after :meth:`commit`)."""
        events, self.events = self.events, []
        return events

    def reload(self) -> None:
        """Drop uncommitted changes and rebuild the in-memory view from the last commit
        (after a failed action or tick, so nothing half-applied survives)."""
        self.events = []
        self.session.rollback()
        self.session.close()
        self.session = Session(self.engine, expire_on_commit=False, autoflush=False)
        self._load()

    def close(self) -> None:
        self.session.close()
        self.engine.dispose()

    def next_oid(self) -> int:
        oid = int(self._next_oid_row.value)
        self._next_oid_row.value = str(oid + 1)
        return oid

    # ----- accounts -------------------------------------------------------------------------
    def fund(self, address: str, usdc: float) -> Account:
        """Create ``address`` if needed and add ``usdc`` to its balance."""
        address = address.lower()
        acct = self.accounts.get(address)
        if acct is None:
            acct = Account(address=address, balance=0.0, cum_volume=0.0, n_requests=0,
                           schedule_cancel_day=0, schedule_cancel_count=0)
            self.session.add(acct)
            self.accounts[address] = acct
        acct.balance += usdc
        return acct

    def leverage_of(self, address: str, coin: str) -> Leverage:
        lev = self.leverage.get((address, coin))
        if lev is None:
            value = min(DEFAULT_LEVERAGE, self.market.specs[coin].max_leverage)
            lev = Leverage(address=address, coin=coin, value=value, is_cross=True)
            self.session.add(lev)
            self.leverage[(address, coin)] = lev
        return lev

    def position(self, address: str, coin: str) -> float:
        p = self.positions.get((address, coin))
        return p.szi if p else 0.0

    def marks(self, now: int | None = None) -> dict[str, float]:
        now = self.clock() if now is None else now
        return {c: self.market.mark(c, now) for c in self.coins}

    def position_margin(self, p: Position, mark: float) -> float:
        """Margin a position holds: cross at the mark; isolated as allotted at entry plus what
        ``updateIsolatedMargin`` added (it does not move with the mark)."""
        lev = self.leverage_of(p.address, p.coin)
        if lev.is_cross:
            return abs(p.szi) * mark / lev.value
        return abs(p.szi) * p.entry_px / lev.value + p.margin_extra

    def margin_summary(self, address: str, marks: dict[str, float]) -> dict[str, float]:
        """Account value, notional, margin used (positions and resting orders) for ``address``,
        and the same figures for its cross positions alone (``cross_*``)."""
        acct = self.accounts[address]
        upnl = ntl = used = maint = 0.0
        iso_value = iso_ntl = iso_used = 0.0
        for (addr, coin), p in self.positions.items():
            if addr != address or p.szi == 0:
                continue
            mark = marks[coin]
            pnl = p.szi * (mark - p.entry_px)
            margin = self.position_margin(p, mark)
            upnl += pnl
            ntl += abs(p.szi) * mark
            used += margin
            if not self.leverage_of(address, coin).is_cross:
                iso_value += margin + pnl
                iso_ntl += abs(p.szi) * mark
                iso_used += margin
            else:
                maint += abs(p.szi) * mark / (2 * self.market.specs[coin].max_leverage)
        held = 0.0
        for o in self.open_orders.values():
            if o.address == address and not o.reduce_only and not o.waiting_trigger:
                held += o.sz * o.limit_px / self.leverage_of(address, o.coin).value
        value = acct.balance + upnl
        raw = value - sum(p.szi * marks[c] for (a, c), p in self.positions.items() if a == address)
        return {"account_value": value, "ntl": ntl, "margin_used": used, "maintenance": maint,
                "order_margin": held, "raw_usd": raw, "cross_account_value": value - iso_value,
                "cross_ntl": ntl - iso_ntl, "cross_margin_used": used - iso_used}

    def withdrawable(self, address: str, marks: dict[str, float]) -> float:
        s = self.margin_summary(address, marks)
        return max(0.0, s["account_value"] - s["margin_used"] - s["order_margin"])

    # ----- API wallets, builders, transfers -------------------------------------------------
    def agent(self, address: str, now: int) -> ApiWallet | None:
        """The API wallet ``address`` if it is approved and not expired at ``now``."""
        w = self.api_wallets.get(address)
        if w is None or (w.valid_until is not None and w.valid_until <= now):
            return None
        return w

    def approve_agent(self, master: str, agent: str, name: str, valid_until: int | None, now: int) -> None:
        """Approve ``agent`` for ``master`` under ``name``; an agent already approved under that
        name (or the unnamed one, for ``""``) is revoked: re-approval is how Hyperliquid revokes."""
        for w in [w for w in self.api_wallets.values() if w.master == master and w.name == name]:
            self.revoke_agent(w.address)
        w = ApiWallet(address=agent, master=master, name=name, valid_until=valid_until, approved_at=now)
        self.session.add(w)
        self.api_wallets[agent] = w

    def revoke_agent(self, agent: str) -> None:
        w = self.api_wallets.pop(agent, None)
        if w is not None:
            self.session.delete(w)

    def approve_builder(self, user: str, builder: str, max_fee: int) -> None:
        row = self.builder_approvals.get((user, builder))
        if row is None:
            row = BuilderApproval(user=user, builder=builder, max_fee=max_fee)
            self.session.add(row)
            self.builder_approvals[(user, builder)] = row
        row.max_fee = max_fee

    def record_update(self, address: str, now: int, delta: dict[str, Any]) -> LedgerUpdate:
        digest = hashlib.sha256(f"{address}:{now}:{json.dumps(delta, sort_keys=True)}".encode()).hexdigest()
        row = LedgerUpdate(address=address, time=now, hash="0x" + digest, delta=json.dumps(delta))
        self.session.add(row)
        self.events.append(LedgerEvent("ledger", address, update=row))
        return row

    def ledger_updates(self, address: str, start: int, end: int | None) -> list[LedgerUpdate]:
        q = select(LedgerUpdate).where(LedgerUpdate.address == address, LedgerUpdate.time >= start)
        if end is not None:
            q = q.where(LedgerUpdate.time <= end)
        return list(self.session.scalars(q.order_by(LedgerUpdate.time, LedgerUpdate.id)))

    # ----- nonces ---------------------------------------------------------------------------
    def record_nonce(self, signer: str, nonce: int) -> None:
        seen = self.nonces.setdefault(signer, [])
        seen.append(nonce)
        seen.sort()
        self.session.add(NonceRow(signer=signer, nonce=nonce))
        while len(seen) > NONCE_SET_SIZE:
            dropped = seen.pop(0)
            row = self.session.get(NonceRow, (signer, dropped))
            if row is not None:
                self.session.delete(row)

    # ----- execution ------------------------------------------------------------------------
    def take(self, book: Book, is_buy: bool, limit_px: float, sz: float) -> list[tuple[float, float]]:
        """Walk the synthetic book up to ``limit_px``: the (px, sz) slices a taker gets."""
        out: list[tuple[float, float]] = []
        remaining = sz
        decimals = self.market.specs[book.coin].sz_decimals
        for lvl in book.asks if is_buy else book.bids:
            if remaining <= 0 or (lvl.px > limit_px if is_buy else lvl.px < limit_px):
                break
            q = round(min(remaining, lvl.sz), decimals)
            if q > 0:
                out.append((lvl.px, q))
                remaining = round(remaining - q, decimals)
        return out

    def execute(self, order: Order, slices: list[tuple[float, float]], *, taker: bool, now: int) -> FillResult:
        """Book fills of ``order`` at ``slices``: position, balance, fees, volume, fill rows."""
        result = FillResult()
        for px, sz in slices:
            fill = self._apply_fill(order, px, sz, taker=taker, now=now)
            result.fills.append(fill)
            result.sz += sz
            result.notional += px * sz
        decimals = self.market.specs[order.coin].sz_decimals
        order.sz = round(order.sz - result.sz, decimals)
        if order.sz <= 0:
            order.sz = 0.0
            self.set_status(order, "filled", now)
        return result

    def _apply_fill(self, order: Order, px: float, sz: float, *, taker: bool, now: int) -> Fill:
        address, coin = order.address, order.coin
        acct = self.accounts[address]
        pos = self.positions.get((address, coin))
        if pos is None:
            pos = Position(address=address, coin=coin, szi=0.0, entry_px=0.0, realized_pnl=0.0,
                           margin_extra=0.0)
            self.session.add(pos)
            self.positions[(address, coin)] = pos
        start = pos.szi
        delta = sz if order.is_buy else -sz
        closed_pnl = 0.0
        if start == 0 or (start > 0) == (delta > 0):
            pos.entry_px = (abs(start) * pos.entry_px + sz * px) / (abs(start) + sz)
            direction = "Open Long" if delta > 0 else "Open Short"
        else:
            closing = min(sz, abs(start))
            closed_pnl = closing * (px - pos.entry_px) * (1 if start > 0 else -1)
            if sz > abs(start) + 1e-12:
                pos.entry_px = px
                direction = "Long > Short" if start > 0 else "Short > Long"
            else:
                direction = "Close Long" if start > 0 else "Close Short"
        decimals = self.market.specs[coin].sz_decimals
        pos.szi = round(start + delta, decimals)
        pos.realized_pnl += closed_pnl
        builder_fee = px * sz * order.builder_fee * 1e-5 if order.builder else 0.0  # f: tenths of a bp
        fee = px * sz * (TAKER_FEE if taker else MAKER_FEE) + builder_fee
        acct.balance += closed_pnl - fee
        if order.builder and builder_fee > 0:
            self.fund(order.builder, builder_fee)
        acct.cum_volume += px * sz
        digest = hashlib.sha256(f"{address}:{order.oid}:{now}:{px}:{sz}".encode()).hexdigest()
        fill = Fill(address=address, oid=order.oid, coin=coin, px=px, sz=sz, side="B" if order.is_buy else "A",
                    time=now, start_position=start, dir=direction, closed_pnl=closed_pnl, fee=fee,
                    crossed=taker, hash="0x" + digest, cloid=order.cloid, builder_fee=builder_fee)
        self.session.add(fill)
        self.events.append(LedgerEvent("fill", address, fill=fill))
        if pos.szi == 0:
            pos.entry_px = 0.0
            pos.realized_pnl = 0.0
            pos.margin_extra = 0.0
            if sa_inspect(pos).pending:  # opened earlier in this request or tick: never written
                self.session.expunge(pos)
            else:
                self.session.delete(pos)
            del self.positions[(address, coin)]
            self._on_flat(address, coin, now, filling=order)
        elif start != 0 and (start > 0) != (pos.szi > 0):
            # flipped by one order: the old position closed on its way through zero, and its
            # reduce-only orders (on the new position's own side, where they can only add) go too
            self._on_flat(address, coin, now, filling=order, side_of=pos.szi)
        return fill

    def _on_flat(self, address: str, coin: str, now: int, *, filling: Order, side_of: float = 0.0) -> None:
        """A position closed: its resting reduce-only orders go with it: position TP/SL, the TP/SL
        of an entry that filled (they are the position's now, and stayed resting for a later
        position to meet), stand-alone ones. Not the TP/SL of an entry still resting (they wait
        for its fill, position or not), and not ``filling``, the order whose fill closed it: that
        one is filled (it was streamed ``reduceOnlyCanceled``, a nonUserCancel, then ``filled``).
        ``side_of``: the new position when one order flipped it: the old position's orders are
        those on its side (they would add to it); the new one's own reduce-only orders stay."""
        for o in list(self.open_orders.values()):
            if o is filling or (o.parent_oid is not None and o.parent_oid in self.open_orders):
                continue
            if side_of != 0 and o.is_buy != (side_of > 0):
                continue
            if o.address == address and o.coin == coin and o.reduce_only:
                self.set_status(o, "reduceOnlyCanceled" if not o.waiting_trigger else "canceled", now)

    def set_status(self, order: Order, status: str, now: int) -> None:
        order.status = status
        order.status_ts = now
        if status == "open":
            self.open_orders[order.oid] = order
        else:
            self.open_orders.pop(order.oid, None)
        self.events.append(LedgerEvent("order", order.address, order=OrderSnapshot(
            address=order.address, oid=order.oid, coin=order.coin, is_buy=order.is_buy,
            limit_px=order.limit_px, sz=order.sz, orig_sz=order.orig_sz, timestamp=order.timestamp,
            cloid=order.cloid, status=status, status_ts=now)))

    def clamp_reduce_only(self, order: Order) -> float:
        """The size a reduce-only order may still trade (0 when it would only increase); a
        whole-position TP/SL that has not fired trades the whole position."""
        szi = self.position(order.address, order.coin)
        if szi == 0 or (szi > 0) == order.is_buy:
            return 0.0
        if order.whole_position and order.waiting_trigger:
            return abs(szi)
        return min(order.sz, abs(szi))

    def find_order(self, address: str, oid_or_cloid: int | str) -> Order | None:
        """Any order of ``address`` (open or not) by oid or cloid."""
        if isinstance(oid_or_cloid, str):
            return self.session.scalars(select(Order).where(Order.address == address, Order.cloid == oid_or_cloid)
                                        .order_by(Order.oid.desc()).limit(1)).first()
        order = self.open_orders.get(oid_or_cloid)
        if order is not None:
            return order if order.address == address else None
        found = self.session.get(Order, oid_or_cloid)
        return found if found is not None and found.address == address else None

    def cloid_owner(self, address: str, cloid: str) -> Order | None:
        """The order of ``address`` (any status, placed earlier in this request too) that
        already carries ``cloid`` (lower-case), if any."""
        self.session.flush()  # orders placed earlier in this request are not committed yet
        return self.find_order(address, cloid)

    def orders_of(self, address: str, limit: int) -> list[Order]:
        """The most recent ``limit`` orders of ``address``, any status, newest first."""
        q = select(Order).where(Order.address == address).order_by(Order.status_ts.desc(), Order.oid.desc())
        return list(self.session.scalars(q.limit(limit)))

    def fills(self, address: str, start: int | None = None, end: int | None = None, limit: int = 2000) -> list[Fill]:
        q = select(Fill).where(Fill.address == address)
        if start is not None:
            q = q.where(Fill.time >= start)
        if end is not None:
            q = q.where(Fill.time <= end)
        return list(self.session.scalars(q.order_by(Fill.time.desc(), Fill.tid.desc()).limit(limit)))

    def recent_fills(self, coin: str, limit: int) -> list[Fill]:
        """The latest ``limit`` fills of any account on ``coin``, newest first."""
        q = select(Fill).where(Fill.coin == coin).order_by(Fill.time.desc(), Fill.tid.desc()).limit(limit)
        return list(self.session.scalars(q))

    def add_shock(self, coin: str, pct: float, now: int) -> None:
        """Move ``coin``'s mark by ``pct`` percent from ``now`` on. Raises ValueError for an
        unknown coin, a pct that is not a finite number, or a move that would take the mark past
        :data:`SHOCK_BOUND` times (or below 1/SHOCK_BOUND of) its unshocked price, shocks
        already in place included: a drill rehearses a crash or a spike, not a market that
        every band and margin rule of the exchange then reads as nonsense."""
        if coin not in self.market.specs:
            raise ValueError(f"unknown coin {coin!r}; listed: {', '.join(self.market.specs)}")
        if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not math.isfinite(pct):
            raise ValueError(f"pct must be a finite number of percent, e.g. -10, not {pct!r}")
        now_mult = self.market.shock_multiplier(coin, now)
        total = now_mult * (1.0 + pct / 100.0)
        # compared with a relative tolerance: -90% is 1 + -0.9 = 0.09999999999999998 in floats
        if not (1.0 / SHOCK_BOUND) * (1 - 1e-9) <= total <= SHOCK_BOUND * (1 + 1e-9):
            lo, hi = (1.0 / SHOCK_BOUND / now_mult - 1.0) * 100.0, (SHOCK_BOUND / now_mult - 1.0) * 100.0
            in_place = "no shock in place" if abs(now_mult - 1.0) < 1e-12 else \
                f"the shocks in place at {now_mult:.4g}x"
            raise ValueError(f"a shock of {pct:+g}% would put {coin}'s mark at {total:.4g}x its unshocked price: "
                             f"the mark may move to between {1 / SHOCK_BOUND:g}x and {SHOCK_BOUND:g}x of it, and "
                             f"with {in_place}, one shock from {round(lo, 2):+g}% to {round(hi, 2):+g}% is allowed now; "
                             f"`bot drill clear` undoes the shocks in place")
        self.market.add_shock(coin, pct, now)
        self.session.add(ShockRow(coin=coin, at_ms=now, pct=pct))

    def undo_shocks(self, now: int) -> dict[str, float]:
        """From ``now`` on, every coin's mark is its unshocked price again: one counter-shock per
        shocked coin (the shocks already served stay in the history: candles do not change).
        Returns the counter-shocks applied, coin -> pct."""
        undone: dict[str, float] = {}
        for coin in list(self.market.shocks):
            mult = self.market.shock_multiplier(coin, now)
            if abs(mult - 1.0) > 1e-12:
                pct = (1.0 / mult - 1.0) * 100.0
                self.market.add_shock(coin, pct, now)
                self.session.add(ShockRow(coin=coin, at_ms=now, pct=pct))
                undone[coin] = pct
        return undone

    def wipe(self) -> None:
        """Delete every account, order, fill, nonce and shock (admin reset)."""
        from bot.exchange.models import Base

        self.session.close()
        with self.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                if table.name != "exchange_meta":
                    conn.execute(table.delete())
        self.session = Session(self.engine, expire_on_commit=False, autoflush=False)
        self._load()
