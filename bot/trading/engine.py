"""The trading loop: market data -> MACD signal -> risk -> idempotent orders -> state.

One :class:`TradingEngine` per process. :meth:`iterate` runs in the main thread; the HTTP
thread calls :meth:`halt`, :meth:`resume`, :meth:`cancel_all`, :meth:`close_all`. Every order
goes through :meth:`_send`, which records it *before* sending (status pending) so a crash
mid-call leaves a cloid that start-up reconciliation resolves.

Halts live in the halt file (:mod:`botwarden.halts`), not in the database: the engine reads
it when it is built, at every iteration and again right before each entry order, under the
entry gate. :meth:`halt` returns only once no entry can still be sent: it takes the same gate,
so an entry already being sent finishes first and every later one sees the halt.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.trading import cloid as intents
from bot.trading.cloid import make_cloid
from bot.trading.gateway import (
    AccountState,
    ExchangeOrder,
    ExchangePosition,
    Gateway,
    GatewayError,
    OrderOutcome,
)
from bot.trading.metrics import BotMetrics
from bot.trading.models import OrderRecord, utcnow
from bot.trading.reconcile import KnownOrder, KnownTrade, plan
from bot.trading.risk import RiskManager, aggressive_price
from bot.trading.status import RuntimeStatus
from bot.trading.store import Store, utc_day
from bot.trading.strategy import MacdParams, Signal, candles_to_frame, closed_only, evaluate
from botwarden.errors import TransientError
from botwarden.halts import Halt, HaltFile, HaltFileError
from botwarden.protection import is_protected
from botwarden.settings import StackSettings

log = logging.getLogger("bot.trading.engine")

INTERVAL_SECONDS = {"1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200,
                    "4h": 14400, "8h": 28800, "12h": 43200, "1d": 86400}
EQUITY_SNAPSHOT_EVERY_S = 60.0
MAX_ATTEMPTS = 5
"""Failed sends of one intent (closing a coin, placing its stop-loss) before the bot halts itself
and says why. The count starts afresh after each halt it took (a resume means the cause is fixed)
and after each send the exchange accepted."""
STANDING_RETRY_EVERY = 6
"""While a stop-loss's halt stands and the exchange refuses the bot's requests as a whole, the stop
is sent at every 6th iteration (30 s at the default 5-s loop), else at every iteration."""
MAX_GENERATIONS = 500
"""Client order ids of one intent (a bound over every resume: 100 resumes of 5 attempts). A send
the exchange refused as a whole because it does not know the signer (a revoked API wallet) never
reached the order book: its id is used again by the next send, so a stop-loss retried for hours
while the wallet is revoked takes one id, not one per retry."""
REFUSED = "refused"
"""Status of an order whose request the exchange refused as a whole for its signer (``auth``): it
never reached the order book, and its client order id is free for the next send of its intent."""
CLOSING = "closing"
PLACING_STOP = "placing the stop-loss of"
SUCCEEDED = {CLOSING: ("filled",), PLACING_STOP: ("open", "resting", "filled", "triggered")}


@dataclass(frozen=True)
class _Attempts:
    """The sends of one intent since the last halt it took (a resume ends that halt)."""

    cloid: str | None  # the next unused client order id; None when all MAX_GENERATIONS are used
    sent: int
    last: OrderRecord | None


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)  # SQLite drops tzinfo; every stored time is UTC


def _answer(status: str, error: str | None) -> str:
    """The exchange's answer to the last send, for a halt reason."""
    if error:
        return f'refused by the exchange: "{error}"'
    return {"pending": "did not succeed (outcome unknown: no answer)"}.get(status, f"did not succeed (the last {status})")


def attempts_reason(what: str, coin: str, sent: int, status: str, error: str | None, *, auth: bool) -> str:
    """Why the bot halted itself after ``sent`` failed sends of ``what`` for ``coin``, and what to do."""
    head = f"{what} {coin} {_answer(status, error)}; {sent} attempt{'' if sent == 1 else 's'}"
    if what == PLACING_STOP:
        head += (f": the {coin} position has NO STOP-LOSS; the bot keeps trying and this halt "
                 "clears itself once the exchange accepts the stop or the position is closed")
    if auth and what == PLACING_STOP:
        return (head + "; the exchange does not know the bot's signer (its API wallet revoked or expired): approve "
                "the bot's API wallet again; the agent's emergency closes with its own wallet meanwhile")
    if what == PLACING_STOP:
        return head + "; fix the cause (no resume needed)"
    if auth:
        return (head + ": the exchange does not know the bot's signer (its API wallet revoked or expired): approve "
                "the bot's API wallet again, then resume the bot (a resume tries afresh); the agent's emergency "
                "closes with its own wallet meanwhile")
    return head + ": fix the cause, then resume the bot (a resume tries afresh)"


def _status_of(outcome: OrderOutcome) -> str:
    return {"resting": "open"}.get(outcome.status, outcome.status)


class TradingEngine:
    """Trades ``settings.bot.coins`` on one account. See the module docstring."""

    def __init__(self, settings: StackSettings, gateway: Gateway, store: Store, metrics: BotMetrics,
                 status: RuntimeStatus) -> None:
        self.settings = settings
        self.bot = settings.bot
        self.gw = gateway
        self.store = store
        self.metrics = metrics
        self.status = status
        self.risk = RiskManager(self.bot.risk, min_order_usd=self.bot.min_order_usd)
        s = self.bot.strategy
        self.params = MacdParams(fast=s.fast, slow=s.slow, signal=s.signal)
        self.interval_ms = INTERVAL_SECONDS[self.bot.candle_interval] * 1000
        # Held while orders are being decided and sent, so a control action never interleaves
        # with the loop's own orders. Halting does not take it (an iteration can be long).
        self.lock = threading.RLock()
        # Held from the last halt check to the end of an entry's send; halting takes it once,
        # so its answer means "no entry is in flight and none can start".
        self._entry_gate = threading.RLock()
        self.halts = HaltFile(settings.path(self.bot.halt_file))
        # Halts the halt file could not take (e.g. a full disk): they hold in this process only.
        self._volatile_halts: list[Halt] = []
        self._last_equity_snapshot = 0.0
        self._close_reasons: dict[str, str] = {}
        self._standing_skips: dict[str, int] = {}  # coin -> iterations its stop-loss's halt has stood
        self._coin_bugs: dict[str, str] = {}  # coin -> the internal error its last pass ended with
        self._close_answers: dict[str, str] = {}  # coin -> the exchange's answer to its last close (close-all)
        self._refresh_halt()

    # --- halts --------------------------------------------------------------------------
    def active_halts(self) -> list[Halt]:
        """The halts in force: the halt file's (re-read now), then any only this process holds."""
        return [*self.halts.active(), *self._volatile_halts]

    def _refresh_halt(self) -> list[Halt]:
        halts = self.active_halts()
        self.status.halts = [h.as_dict() for h in halts]
        self.status.halted_reason = "; ".join(h.describe() for h in halts) or None
        self.metrics.halted.set(1 if halts else 0)
        return halts

    def halt(self, kind: str, reason: str, *, by: str = "bot") -> tuple[Halt, bool]:
        """Stop new entries (stop-losses and exits still run) and return once no entry can
        still be sent. Returns (the halt, durable): durable is False when the halt file could
        not be written; the halt then holds in this process only (lost on a restart)."""
        try:
            # One operator halt, one daily-loss halt; each distinct error or reconcile finding.
            halt, new = self.halts.add(kind, reason, by=by,
                                       same="kind" if kind in ("control", "daily_loss") else "reason")
            durable = True
        except HaltFileError as err:
            log.error("halt not persisted; it holds until this process exits",
                      extra={"event": "halt_not_persisted", "error": str(err)})
            halt = Halt(id=f"volatile-{len(self._volatile_halts) + 1}", kind=kind, reason=reason, by=by,
                        at=utcnow().isoformat(timespec="seconds"), day=utc_day())
            self._volatile_halts.append(halt)
            new, durable = True, False
        if new:
            self.store.add_halt(kind, reason)  # the history the reports count
        self._refresh_halt()
        with self._entry_gate:
            pass  # an entry being sent has finished; every later one re-reads the halts first
        if new:
            log.warning("trading halted", extra={"event": "halt", "kind": kind, "reason": reason, "by": by,
                                                 "durable": durable})
        return halt, durable

    def resume(self, by: str, ids: list[str] | None = None) -> list[Halt]:
        """End the halts ``ids`` (default: every halt); return those ended. A daily loss still
        beyond the limit halts again at the next iteration. Raises :class:`HaltFileError` when
        the halt file cannot be rewritten (nothing is resumed then)."""
        ended = self.halts.clear(ids)
        volatile = [h for h in self._volatile_halts if ids is None or h.id in ids]
        self._volatile_halts = [h for h in self._volatile_halts if h not in volatile]
        ended += volatile
        if not self._refresh_halt():
            self.store.clear_halts(by)
        log.warning("trading resumed", extra={"event": "resume", "by": by, "cleared": [h.id for h in ended]})
        return ended

    def entries_allowed(self) -> bool:
        """From the last reading of the halts (cheap); :meth:`_entry_allowed_now` decides.

        An *interim* bot (the warm spare that took over after a crash, :mod:`bot.trading.standby`)
        reconciles, keeps the stops and closes on signal, but opens nothing: it is nobody's
        supervised process, so an operator's ``supervisorctl stop bot`` cannot reach it, and a
        position it opened could outlive everyone's intent for its whole tenure."""
        return self.status.halted_reason is None and not self.status.stopping and self.status.role != "interim"

    def _entry_allowed_now(self) -> bool:
        """Read the halt file again (the agent may have written it since): call under the gate."""
        return not self._refresh_halt() and not self.status.stopping and self.status.role != "interim"

    # --- orders -------------------------------------------------------------------------
    def _attempts(self, coin: str, key: int, intent: str, what: str) -> _Attempts:
        """The first generation of (coin, key, intent) the database has not used (or the newest
        one, when the exchange refused its send as a whole: :data:`REFUSED`), and the failed
        sends of it since the last halt ``what`` took for ``coin`` (those before were answered by
        a resume) and since its last accepted send: a send the exchange took (it gave the order an
        id) starts the count afresh, whatever became of the order later (a stop-loss cancelled by
        hand and placed again is no failure)."""
        since = self.store.last_halt_at(f"{what} {coin} ")
        sent, last, free = 0, None, None
        for gen in range(MAX_GENERATIONS):
            c = make_cloid(self.bot.strategy.name, coin, key, intent, gen).to_raw()
            rec = self.store.order_by_cloid(c)
            if rec is None:
                return _Attempts(free or c, sent, last)
            # the newest send refused as a whole never reached the book: its id is sent again
            free = c if rec.status == REFUSED else None
            if rec.oid is not None and rec.error is None:
                sent, last = 0, None  # accepted: only failures since count
            elif since is None or _aware(rec.created_at) > since:  # (a re-sent id: its last send)
                sent, last = sent + 1, rec
        return _Attempts(free, sent, last)

    def _own_halts(self, coin: str, what: str) -> list[Halt]:
        """The halts in force that a failed ``what`` for ``coin`` took."""
        prefix = f"{what} {coin} "
        return [h for h in self.active_halts() if h.kind == "error" and h.reason.startswith(prefix)]

    def _next_attempt(self, coin: str, key: int, intent: str, what: str, *, requested: bool = False) -> str | None:
        """The client order id for the next send of ``intent``, or None when none may go now: a
        halt ``what`` took for ``coin`` stands (only a resume ends it; an operator's ``requested``
        close goes anyway), or :data:`MAX_ATTEMPTS` sends failed since the last one (halts now).

        A stop-loss is protection, never held back by a halt: while the halt its refusals took
        stands it is tried once per iteration (one send, not counted again) and the halt clears
        itself once the exchange accepts it (see :meth:`_stop_placed`)."""
        protective = what == PLACING_STOP
        standing = self._own_halts(coin, what)
        if standing and not requested and not protective:
            return None
        a = self._attempts(coin, key, intent, what)
        if a.cloid is None:
            if not standing:
                last = a.last
                self.halt("error", attempts_reason(what, coin, a.sent, last.status if last else "pending",
                                                   last.error if last else None, auth=False))
            return None
        if standing:
            # Each send takes a client order id of the MAX_GENERATIONS: while the exchange refuses
            # the bot's signed requests as a whole (gw.refusal: a revoked wallet) the stop is tried
            # every STANDING_RETRY_EVERY-th iteration only (the 30-s signer check clears the refusal
            # the moment a signed request goes through again, and the next iteration sends it).
            self._standing_skips[coin] = skips = self._standing_skips.get(coin, 0) + 1
            if self.gw.refusal is not None and skips % STANDING_RETRY_EVERY:
                return None
            return a.cloid
        if a.sent >= MAX_ATTEMPTS:
            last = a.last
            self.halt("error", attempts_reason(what, coin, a.sent, last.status if last else "pending",
                                               last.error if last else None, auth=False))
            return None
        return a.cloid

    def _attempt_failed(self, coin: str, key: int, intent: str, what: str, outcome: OrderOutcome | None) -> None:
        """After a send of ``intent`` that did not succeed: an exchange that does not know the
        bot's signer halts at once (retrying cannot help: the wallet must be approved again);
        the :data:`MAX_ATTEMPTS`-th failure halts. Either halt names the exchange's answer.
        While a halt of the same failure stands nothing more is taken (its stop-loss is retried)."""
        if self._own_halts(coin, what):
            return
        auth = outcome is not None and outcome.refused == "auth"
        sent = self._attempts(coin, key, intent, what).sent
        if auth or sent >= MAX_ATTEMPTS:
            self.halt("error", attempts_reason(what, coin, sent, outcome.status if outcome else "pending",
                                               outcome.error if outcome else None, auth=auth))

    def _stop_placed(self, coin: str, why: str = "stop-loss placed") -> None:
        """The halts the refusals of ``coin``'s stop-loss took end: the exchange took the stop (the
        bot's API wallet approved again), or ``why`` (the position it was for is closed)."""
        self._standing_skips.pop(coin, None)
        standing = self._own_halts(coin, PLACING_STOP)
        if not standing:
            return
        try:
            self.resume("bot", [h.id for h in standing])
        except HaltFileError as err:
            log.error(f"{why}; the halt its stop-loss refusals took could not be cleared",
                      extra={"event": "halt_clear_failed", "coin": coin, "error": str(err)})
            return
        log.warning(f"{why}; the halt its stop-loss refusals took cleared itself",
                    extra={"event": "stop_halt_cleared", "coin": coin, "cleared": [h.id for h in standing]})

    def _send(self, *, intent: str, coin: str, is_buy: bool, size: float, limit_px: float,
              order_type: dict[str, Any], reduce_only: bool, cloid: str) -> OrderOutcome | None:
        """Record, send (idempotently) and record the outcome of one order. None when the
        outcome is unknown (left pending); ``rejected`` with :attr:`OrderOutcome.refused` set when
        the exchange refused the whole request (its words in ``error``)."""
        trigger = order_type.get("trigger", {}).get("triggerPx")
        rec = self.store.order_by_cloid(cloid) or self.store.add_order(
            cloid=cloid, coin=coin, is_buy=is_buy, size=size, limit_px=limit_px, trigger_px=trigger,
            reduce_only=reduce_only, intent=intent, status="pending",
        )
        if rec.status == REFUSED:
            # its id sent again: pending, as any order before it is sent, and a new send: its
            # created_at is this send's, so that a halt's count (sends since the halt) counts it;
            # the record is the order now sent (its side too: a position flipped in one trade)
            self.store.update_order(rec.id, status="pending", error=None, is_buy=is_buy, size=size,
                                    limit_px=limit_px, trigger_px=trigger, reduce_only=reduce_only,
                                    created_at=utcnow())
        fields = {"event": "order_submit", "cloid": cloid, "coin": coin, "intent": intent, "is_buy": is_buy,
                  "size": size, "limit_px": limit_px, "trigger_px": trigger, "reduce_only": reduce_only}
        log.info("order submitted", extra=fields)
        try:
            outcome = self.gw.place(coin=coin, is_buy=is_buy, size=size, limit_px=limit_px, order_type=order_type,
                                    reduce_only=reduce_only, cloid=cloid)
        except TransientError as err:
            self.metrics.orders_total.labels(intent=intent, outcome="in_doubt").inc()
            log.error("order outcome unknown; left pending for lookup by cloid",
                      extra={"event": "order_in_doubt", "cloid": cloid, "coin": coin, "error": str(err)})
            return None
        except GatewayError as err:
            # refused for its signer: the order never reached the book (its id is free again)
            self.store.update_order(rec.id, status=REFUSED if err.kind == "auth" else "rejected", error=str(err))
            self.metrics.orders_total.labels(intent=intent, outcome="rejected").inc()
            log.error("order refused", extra={"event": "order_rejected", "cloid": cloid, "coin": coin,
                                              "error": str(err)})
            return OrderOutcome("rejected", error=err.refusal or err.message, refused=err.kind)
        self.store.update_order(rec.id, status=_status_of(outcome), oid=outcome.oid, filled_size=outcome.filled_size,
                                avg_px=outcome.avg_px, error=outcome.error)
        self.metrics.orders_total.labels(intent=intent, outcome=outcome.status).inc()
        if outcome.already_known:
            self.metrics.duplicates_avoided.inc()
        log.info("order result", extra={"event": "order_result", "cloid": cloid, "coin": coin, "intent": intent,
                                        "status": outcome.status, "oid": outcome.oid, "filled": outcome.filled_size,
                                        "avg_px": outcome.avg_px, "error": outcome.error,
                                        "already_known": outcome.already_known})
        return outcome

    def _resolve(self, rec_id: int, cloid: str | None, oid: int | None) -> None:
        """Ask the exchange what became of a live database order and record it."""
        outcome = self.gw.order_status(cloid) if cloid else None
        status = "unknown" if outcome is None else _status_of(outcome)
        self.store.update_order(rec_id, status=status, **({"oid": outcome.oid} if outcome and outcome.oid else {}))
        log.info("order resolved", extra={"event": "order_resolved", "cloid": cloid, "oid": oid, "status": status})

    # --- start-up -----------------------------------------------------------------------
    def reconcile(self) -> list[dict[str, Any]]:
        """Compare exchange and database, apply ``reconcile_policy``, log every decision."""
        with self.lock:
            acct, orders = self.gw.account(), self.gw.open_orders()
            db_orders = [KnownOrder(o.id, o.cloid, o.oid, o.coin, o.status) for o in self.store.live_orders()]
            db_trades = [KnownTrade(t.id, t.coin, t.side, t.size) for t in self.store.open_trades()]
            decisions = plan(policy=self.bot.reconcile_policy, exchange_orders=orders,
                             exchange_positions=acct.positions, db_orders=db_orders, db_trades=db_trades)
            self._sync_fills()
            report = []
            for d in decisions:
                self._apply(d)
                entry = {"kind": d.kind, "action": d.action, "coin": d.coin, "detail": d.detail}
                report.append(entry)
                log.info("reconciliation decision", extra={"event": "reconcile", **entry})
            self._sync_positions(self.gw.account(), self.gw.open_orders())
            return report

    def _apply(self, d: Any) -> None:
        eo: ExchangeOrder | None = d.order
        if d.kind == "order":
            if d.action == "keep" and eo is not None and d.known_order is not None:
                self.store.update_order(d.known_order.id, status="open", oid=eo.oid)
            elif d.action == "adopt" and eo is not None:
                self.store.add_order(cloid=eo.cloid, oid=eo.oid, coin=eo.coin, is_buy=eo.is_buy, size=eo.size,
                                     limit_px=eo.limit_px, trigger_px=eo.trigger_px, reduce_only=eo.reduce_only,
                                     intent=intents.STOP if eo.is_trigger and eo.reduce_only else "adopted",
                                     status="open", origin="adopted")
            elif d.action == "cancel" and eo is not None:
                self.gw.cancel(eo.coin, eo.oid)
            elif d.action == "resolve" and d.known_order is not None:
                self._resolve(d.known_order.id, d.known_order.cloid, d.known_order.oid)
        else:
            pos: ExchangePosition | None = d.position
            if d.action == "adopt" and pos is not None:
                if d.trade is not None:
                    self.store.close_trade(d.trade.id, exit_px=None, pnl=0.0, reason="reconciled")
                self._record_trade(pos, key=int(time.time() * 1000), origin="adopted")
            elif d.action == "close" and pos is not None:
                self._close_position(pos, key=int(time.time() * 1000), reason="reconcile")
            elif d.action == "mark_closed" and d.trade is not None:
                self._close_reasons.setdefault(d.coin, "while_down")
        if d.action == "halt":
            self.halt("reconcile", d.detail + "; fix it or set bot.reconcile_policy: adopt and restart")

    # --- one iteration ------------------------------------------------------------------
    def iterate(self) -> None:
        """One pass over every coin. A failing coin is logged and skipped, never fatal."""
        started = time.monotonic()
        errors: list[str] = []
        with self.lock:
            self._refresh_halt()
            acct, orders = self.gw.account(), self.gw.open_orders()
            try:
                self._sync_fills()
                self._sync_positions(acct, orders)
                self._check_equity(acct)
                mids = self.gw.mids()
            except Exception:
                # The positions and orders are known: whatever read or record failed after them (the
                # fills, an order's status, the mids, the store), every position gets its stop-loss
                # before the iteration ends as failed (it ended with none checked: an entry whose stop
                # was refused stayed bare for as long as that read kept failing).
                self._protect_only(acct, orders)
                raise
            traded = False
            for coin in self.bot.coins:
                if self.status.stopping:
                    break  # SIGTERM: no new work; state is already persisted
                try:
                    traded |= self._trade_coin(coin, acct, [o for o in orders if o.coin == coin], mids)
                except (TransientError, GatewayError) as err:
                    errors.append(f"{coin}: {err.message}")
                    log.warning("coin skipped this iteration", extra={"event": "coin_error", "coin": coin,
                                                                      "error": err.message})
                except Exception as exc:  # one coin's failure never leaves the next unprotected
                    # a coin the exchange does not list (a typo on mainnet, a delisting: the SDK's
                    # KeyError) or a bug in one coin's pass: the coins after it still get their
                    # stop-loss this iteration (it ended the whole iteration: none of them did)
                    what = f"{type(exc).__name__}: {exc}"
                    errors.append(f"{coin}: internal error ({type(exc).__name__}, see logs)")
                    fields = {"event": "coin_error", "coin": coin, "error": type(exc).__name__}
                    if self._coin_bugs.get(coin) != what:  # its traceback once, not at every iteration
                        log.exception("coin skipped this iteration: internal error", extra=fields)
                    else:
                        log.error("coin skipped this iteration: internal error (as before)", extra=fields)
                    self._coin_bugs[coin] = what
                else:
                    self._coin_bugs.pop(coin, None)
            if traded:
                acct, orders = self.gw.account(), self.gw.open_orders()
                self._sync_fills()
                self._sync_positions(acct, orders)
        self.status.last_error = "; ".join(errors) or None
        self.metrics.loop_duration.observe(time.monotonic() - started)

    def _protect_only(self, acct: AccountState, orders: list[ExchangeOrder]) -> None:
        """The stop-loss of every traded coin's position, nothing else (an iteration cut short)."""
        for coin in self.bot.coins:
            pos = acct.positions.get(coin)
            if pos is None:
                continue
            try:
                self._ensure_stop(pos, [o for o in orders if o.coin == coin])
            except (TransientError, GatewayError) as err:  # the next coin still gets its stop
                log.warning("stop-loss not checked this iteration",
                            extra={"event": "coin_error", "coin": coin, "error": err.message})
            except Exception:
                log.exception("stop-loss not checked this iteration: internal error",
                              extra={"event": "coin_error", "coin": coin})

    def _trade_coin(self, coin: str, acct: AccountState, orders: list[ExchangeOrder], mids: dict[str, float]) -> bool:
        pos = acct.positions.get(coin)
        # Protection first, before anything else of the coin may fail or return: a position has its
        # stop-loss whatever the market data (a candle request refused) or a close (one that keeps
        # failing is sent at every iteration, up to MAX_ATTEMPTS) do next. A close that then fills
        # leaves the stop stray, cancelled at the next iteration (reduce-only: it can open nothing).
        sent = self._ensure_stop(pos, orders) if pos is not None else False
        signal = self._signal(coin)
        if pos is not None:
            wants_long = signal.direction == "long"
            if signal.direction != "flat" and signal.regime_start_ms is not None and wants_long != (pos.size > 0):
                sent |= self._close_position(pos, key=signal.regime_start_ms, reason="signal", mid=mids.get(coin))
            return sent
        for o in orders:  # reduce-only triggers without a position protect nothing
            if o.is_trigger and o.reduce_only:
                self.gw.cancel(coin, o.oid)
                log.info("stray stop cancelled", extra={"event": "order_cancel", "coin": coin, "oid": o.oid})
        if not self.entries_allowed() or signal.regime_start_ms is None or signal.direction == "flat":
            return False
        if self.bot.strategy.entry == "cross" and not signal.fresh:
            return False
        intent = intents.OPEN_LONG if signal.direction == "long" else intents.OPEN_SHORT
        cloid = make_cloid(self.bot.strategy.name, coin, signal.regime_start_ms, intent).to_raw()
        if self.store.order_by_cloid(cloid) is not None:
            return False  # this regime was entered already: one entry per regime
        mid = mids.get(coin)
        if not mid:
            return False
        decision = self.risk.size_entry(equity=acct.equity, price=mid, sz_decimals=self.gw.sz_decimals(coin),
                                        exposure=acct.exposure)
        if decision.size <= 0:
            log.info("entry skipped", extra={"event": "entry_skipped", "coin": coin, "reason": decision.reason})
            return False
        is_buy = intent == intents.OPEN_LONG
        px = aggressive_price(mid, is_buy=is_buy, slippage_pct=self.bot.slippage_pct,
                              sz_decimals=self.gw.sz_decimals(coin))
        with self._entry_gate:
            if not self._entry_allowed_now():
                log.info("entry skipped", extra={"event": "entry_skipped", "coin": coin,
                                                 "reason": self.status.halted_reason or "stopping"})
                return False
            outcome = self._send(intent=intent, coin=coin, is_buy=is_buy, size=decision.size, limit_px=px,
                                 order_type={"limit": {"tif": "Ioc"}}, reduce_only=False, cloid=cloid)
        if outcome is not None and outcome.filled_size > 0:
            fill_px = outcome.avg_px or mid
            size = outcome.filled_size if is_buy else -outcome.filled_size
            pos = ExchangePosition(coin, size, fill_px, 0.0, abs(size) * fill_px)
            self._record_trade(pos, key=signal.regime_start_ms, origin="bot")
            self._ensure_stop(pos, [])
        return True

    def _signal(self, coin: str) -> Signal:
        now_ms = int(time.time() * 1000)
        start = now_ms - (self.bot.strategy.lookback_candles + 2) * self.interval_ms
        raw = self.gw.candles(coin, self.bot.candle_interval, start, now_ms)
        frame = candles_to_frame(raw)
        if len(frame) and int(frame.index[-1]) >= now_ms - 2 * self.interval_ms:
            self.status.market_data_wall = self.gw.data_at or time.time()  # current; dated by the data
        return evaluate(closed_only(frame, now_ms), self.params)

    def _ensure_stop(self, pos: ExchangePosition, orders: list[ExchangeOrder]) -> bool:
        """Make sure reduce-only stop-loss triggers covering the whole of ``pos`` rest on the
        exchange (:func:`botwarden.protection.is_protected`: a take-profit or a stop-loss for part
        of the size is not a stop). When they do not, a stop-loss for the whole size is placed
        beside what rests (reduce-only: together they never close more than the position)."""
        is_long = pos.size > 0
        if is_protected(pos.size, orders):
            # a stop of the bot's that the exchange took while its answer was never read (a send in
            # doubt, a bot killed before the answer) ends the halts its refusals took, as the
            # answer would have; a stop the agent or an operator placed does not (it proves
            # nothing about the bot's signer)
            if self._own_halts(pos.coin, PLACING_STOP) and any(
                    (rec := self.store.order_by_cloid(o.cloid)) is not None and rec.intent == intents.STOP
                    and rec.origin == "bot" for o in orders if o.cloid and o.is_trigger and o.reduce_only):
                self._stop_placed(pos.coin)
            return False
        trade = self.store.open_trade(pos.coin)
        key = trade.entry_key if trade is not None else 0
        dec = self.gw.sz_decimals(pos.coin)
        trigger = self.risk.stop_price(entry_px=pos.entry_px, is_long=is_long, sz_decimals=dec)
        # The triggered order is a market order; its limit bounds the slippage at the trigger.
        limit = aggressive_price(trigger, is_buy=not is_long, slippage_pct=max(self.bot.slippage_pct, 5.0),
                                 sz_decimals=dec)
        for _ in range(MAX_ATTEMPTS):
            cloid = self._next_attempt(pos.coin, key, intents.STOP, PLACING_STOP)
            if cloid is None:
                return False
            outcome = self._send(intent=intents.STOP, coin=pos.coin, is_buy=not is_long, size=abs(pos.size),
                                 limit_px=limit, order_type={"trigger": {"triggerPx": trigger, "isMarket": True,
                                                                         "tpsl": "sl"}},
                                 reduce_only=True, cloid=cloid)
            # An id a previous life used and that is no longer resting: take the next one.
            if outcome is not None and outcome.already_known and outcome.status not in ("open", "resting"):
                continue
            if outcome is None or outcome.status not in SUCCEEDED[PLACING_STOP]:
                self._attempt_failed(pos.coin, key, intents.STOP, PLACING_STOP, outcome)
            else:
                self._stop_placed(pos.coin)
            return True
        return True

    def _close_position(self, pos: ExchangePosition, *, key: int, reason: str, mid: float | None = None,
                        requested: bool = False) -> bool:
        """Close ``pos`` with a reduce-only IOC; its stop-loss is cancelled once it is flat.
        Returns whether an order was sent (see :meth:`_next_attempt`: not while a halt this close
        took stands, unless an operator ``requested`` it)."""
        cloid = self._next_attempt(pos.coin, key, intents.CLOSE, CLOSING, requested=requested)
        if cloid is None:
            return False
        if mid is None:
            mid = self.gw.mids().get(pos.coin, pos.entry_px)
        is_buy = pos.size < 0
        px = aggressive_price(mid, is_buy=is_buy, slippage_pct=self.bot.slippage_pct,
                              sz_decimals=self.gw.sz_decimals(pos.coin))
        self._close_reasons[pos.coin] = reason
        outcome = self._send(intent=intents.CLOSE, coin=pos.coin, is_buy=is_buy, size=abs(pos.size), limit_px=px,
                             order_type={"limit": {"tif": "Ioc"}}, reduce_only=True, cloid=cloid)
        self._close_answers[pos.coin] = _answer(outcome.status if outcome else "pending",
                                                outcome.error if outcome else None)
        if outcome is None or outcome.status not in SUCCEEDED[CLOSING]:
            self._attempt_failed(pos.coin, key, intents.CLOSE, CLOSING, outcome)
        return True

    # --- bookkeeping --------------------------------------------------------------------
    def _record_trade(self, pos: ExchangePosition, *, key: int, origin: str) -> None:
        if self.store.open_trade(pos.coin) is not None:
            return
        self.store.add_trade(coin=pos.coin, side="long" if pos.size > 0 else "short", size=abs(pos.size),
                             entry_px=pos.entry_px, entry_key=key, origin=origin)
        log.info("trade opened", extra={"event": "trade_open", "coin": pos.coin, "size": pos.size,
                                        "entry_px": pos.entry_px, "origin": origin})

    def _sync_fills(self) -> None:
        rows = []
        for f in self.gw.fills():
            rows.append({"tid": int(f["tid"]), "oid": int(f["oid"]) if f.get("oid") is not None else None,
                         "cloid": f.get("cloid"), "coin": f["coin"], "is_buy": f.get("side") == "B",
                         "px": float(f["px"]), "size": float(f["sz"]), "fee": float(f.get("fee", 0) or 0),
                         "closed_pnl": float(f.get("closedPnl", 0) or 0), "time_ms": int(f["time"])})
        for new in self.store.add_fills(rows):
            log.info("fill", extra={"event": "fill", "coin": new.coin, "tid": new.tid, "oid": new.oid,
                                    "is_buy": new.is_buy, "px": new.px, "size": new.size, "fee": new.fee,
                                    "closed_pnl": new.closed_pnl})

    def _sync_positions(self, acct: AccountState, orders: list[ExchangeOrder]) -> None:
        """Close trades whose position is gone, record positions that appeared, mirror both."""
        resting = {o.oid for o in orders}
        for rec in self.store.live_orders():
            # pending = an earlier send whose outcome was never learned; open = no longer resting
            if rec.status == "pending" or (rec.oid is not None and rec.oid not in resting):
                self._resolve(rec.id, rec.cloid, rec.oid)
        for trade in self.store.open_trades():
            if trade.coin in acct.positions:
                continue
            opened_ms = int(trade.opened_at.timestamp() * 1000) - 1000
            fills = self.store.fills_since(trade.coin, opened_ms)
            closing = [f for f in fills if f.is_buy == (trade.side == "short")]
            pnl = sum(f.closed_pnl for f in closing) - sum(f.fee for f in fills)
            qty = sum(f.size for f in closing)
            exit_px = sum(f.px * f.size for f in closing) / qty if qty else None
            reason = self._close_reasons.pop(trade.coin, "stop_or_external")
            self.store.close_trade(trade.id, exit_px=exit_px, pnl=pnl, reason=reason)
            log.info("trade closed", extra={"event": "trade_close", "coin": trade.coin, "side": trade.side,
                                            "pnl": pnl, "exit_px": exit_px, "reason": reason})
        for pos in acct.positions.values():
            self._record_trade(pos, key=int(time.time() * 1000), origin="observed")
        trades = {t.coin: t.id for t in self.store.open_trades()}
        self.store.set_positions({c: {"size": p.size, "entry_px": p.entry_px, "unrealized_pnl": p.unrealized_pnl,
                                      "trade_id": trades.get(c)} for c, p in acct.positions.items()})
        # protected: reduce-only stop-losses covering the whole position rest (False: NO STOP-LOSS)
        self.status.positions = [{"coin": p.coin, "size": p.size, "entry_px": p.entry_px,
                                  "unrealized_pnl": p.unrealized_pnl,
                                  "protected": is_protected(p.size, [o for o in orders if o.coin == p.coin])}
                                 for p in acct.positions.values()]
        self.status.open_orders = len(orders)
        self.status.last_trade_at = self.store.last_trade_at()
        self.metrics.positions_active.set(len(acct.positions))
        self.metrics.open_orders.set(len(orders))
        self._clear_stop_halts_without_position(acct)

    def _clear_stop_halts_without_position(self, acct: AccountState) -> None:
        """End the halts that refusals of a stop-loss took for a coin that holds no position now
        (closed by a signal, by its stop, by the agent or by hand): what they guarded is gone, and
        one left standing kept the bot from trading until an operator resumed it, while its reason
        said it clears itself once the stop is placed (a stop no longer needed is never placed)."""
        prefix = f"{PLACING_STOP} "
        coins = {h.reason[len(prefix):].split(" ", 1)[0] for h in self.active_halts()
                 if h.kind == "error" and h.reason.startswith(prefix)}
        for coin in sorted(coins - set(acct.positions)):
            self._stop_placed(coin, why="position closed")

    def _check_equity(self, acct: AccountState) -> None:
        """Snapshot equity, update P&L metrics, enforce the daily loss limit."""
        now = time.monotonic()
        day = utc_day()
        day_start = self.store.day_start_equity(day)
        if day_start is None or now - self._last_equity_snapshot >= EQUITY_SNAPSHOT_EVERY_S:
            self.store.snapshot_equity(acct.equity)
            self._last_equity_snapshot = now
            day_start = day_start if day_start is not None else acct.equity
        unrealized = sum(p.unrealized_pnl for p in acct.positions.values())
        self.metrics.equity.set(acct.equity)
        self.metrics.pnl.set(self.store.realized_pnl() + unrealized)
        self.metrics.pnl_daily_percent.set(-self.risk.daily_loss_pct(day_start_equity=day_start, equity=acct.equity))
        self.metrics.exposure_percent.set(acct.exposure / acct.equity * 100 if acct.equity > 0 else 0.0)
        last = self.store.closed_trades(20)
        self.metrics.win_rate.set(sum(1 for t in last if (t.pnl or 0) > 0) / len(last) if last else 0.0)
        if self.risk.daily_loss_breached(day_start_equity=day_start, equity=acct.equity):
            if not any(h.kind == "daily_loss" for h in self.active_halts()):
                loss = self.risk.daily_loss_pct(day_start_equity=day_start, equity=acct.equity)
                self.halt("daily_loss", f"daily loss {loss:.2f}% reached the limit of "
                                        f"{self.bot.risk.daily_loss_limit_pct}%")

    # --- control ------------------------------------------------------------------------
    def cancel_all(self) -> dict[str, Any]:
        """Cancel every resting order that can add exposure, and the reduce-only orders of
        coins with no position. The reduce-only orders of an open position (its stop-loss) are
        kept: cancelling them never reduces risk, and the position would be left unprotected."""
        with self.lock:
            positions = self.gw.account().positions
            cancelled: list[int] = []
            failed: list[int] = []
            kept: list[int] = []
            for o in self.gw.open_orders():
                if protects_position(o, positions):
                    kept.append(o.oid)
                    continue
                (cancelled if self.gw.cancel(o.coin, o.oid) else failed).append(o.oid)
            log.warning("cancel-all", extra={"event": "cancel_all", "cancelled": cancelled, "failed": failed,
                                             "kept": kept})
            return {"cancelled": cancelled, "failed": failed, "kept": kept}

    def close_all(self) -> dict[str, Any]:
        """Halt entries, close every position with reduce-only IOCs, then cancel what can add
        exposure (:meth:`cancel_all`): a position that did not close keeps its stop-loss."""
        self.halt("control", "close-all requested", by="control")
        with self.lock:
            key = int(time.time() * 1000)
            acct = self.gw.account()
            self._close_answers.clear()
            for pos in acct.positions.values():
                self._close_position(pos, key=key, reason="close_all", requested=True)
            after = self.gw.account()
            # why each coin still open is: the exchange's answer to its close (or that none was sent)
            refusals = {c: self._close_answers.get(c, "no close sent") for c in sorted(after.positions)}
            result = {"closed": sorted(set(acct.positions) - set(after.positions)),
                      "still_open": sorted(after.positions), "refusals": refusals, **self.cancel_all()}
            self._sync_fills()
            self._sync_positions(after, self.gw.open_orders())
            return result


def protects_position(order: ExchangeOrder, positions: dict[str, ExchangePosition]) -> bool:
    """A reduce-only order on the closing side of an open position: it can only reduce it."""
    pos = positions.get(order.coin)
    return order.reduce_only and pos is not None and order.is_buy == (pos.size < 0)
