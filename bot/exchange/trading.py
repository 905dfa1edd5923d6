"""L1 actions of ``/exchange`` and the once-a-second market tick.

``Trading.apply(address, action, now)`` returns Hyperliquid's response body for an already
authenticated action on account ``address``: ``{"status": "ok", "response": ...}`` with
per-order statuses, or ``{"status": "err", "response": "..."}`` for a whole-request error.
``Trading.tick(now)`` fills resting orders the price crossed and fires triggers.
:meth:`Trading.fire_scheduled_cancel` runs one account's dead-man's switch; the server calls it
at the scheduled time (the tick runs any it missed). The caller commits the ledger afterwards.
"""
from __future__ import annotations

from typing import Any

from bot.exchange import rules
from bot.exchange.ledger import Ledger
from bot.exchange.models import Order
from bot.exchange.rules import parse_decimal

Json = dict[str, Any]
DAY_MS = 86_400_000


class Trading:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.market = ledger.market
        self.ioc_no_fill = False
        """Fault injection (``Faults.ioc_no_fill``, set by the server per request): IOC orders
        find nothing to match."""

    # ----- dispatch -------------------------------------------------------------------------
    def apply(self, address: str, action: Json, now: int) -> Json:
        kind = action.get("type")
        handler = {
            "order": self._order_action,
            "cancel": self._cancel_action,
            "cancelByCloid": self._cancel_by_cloid_action,
            "batchModify": self._batch_modify_action,
            "modify": self._modify_action,
            "updateLeverage": self._update_leverage_action,
            "updateIsolatedMargin": self._update_isolated_margin_action,
            "scheduleCancel": self._schedule_cancel_action,
            "noop": lambda address, action, now: {"status": "ok", "response": {"type": "default"}},
        }.get(kind)  # type: ignore[arg-type]
        if handler is None:
            why = rules.err_unsupported(f"action {kind}", "not an L1 trading action")
            return {"status": "err", "response": why}
        return handler(address, action, now)

    @staticmethod
    def requests_weight(action: Json) -> int:
        """Address-based rate-limit weight: a batch of n orders or cancels counts n."""
        for key in ("orders", "cancels", "modifies"):
            if isinstance(action.get(key), list):
                return max(1, len(action[key]))
        return 1

    # ----- orders ---------------------------------------------------------------------------
    def _order_action(self, address: str, action: Json, now: int) -> Json:
        wires = action.get("orders")
        if not isinstance(wires, list):
            return {"status": "err", "response": "Failed to deserialize the JSON body into the target type"}
        grouping = action.get("grouping", "na")
        if not isinstance(grouping, str):  # {"p": n}: order priority of the frontend
            why = rules.err_unsupported("priority grouping", "orders keep arrival order")
            return {"status": "err", "response": why}
        if grouping not in ("na", "normalTpsl", "positionTpsl"):
            return {"status": "err", "response": "Failed to deserialize the JSON body into the target type"}
        builder = action.get("builder")
        builder_fee = 0
        if builder is not None:
            refused = self._builder_refusal(address, builder)
            if refused:
                return {"status": "err", "response": refused}
            builder_fee = int(builder["f"])
        statuses: list[Any] = []
        first = wires[0] if wires and isinstance(wires[0], dict) else {}
        if grouping == "normalTpsl" and isinstance(first.get("t"), dict) and "trigger" in first["t"]:
            # [tp, sl] with no entry: Hyperliquid does not document it (the TP would be taken for
            # the entry); refused by name, not guessed
            why = rules.err_unsupported("normalTpsl whose first order is a TP/SL trigger (no entry)",
                                        "send TP/SL of a position with grouping positionTpsl")
            return {"status": "ok", "response": {"type": "order", "data": {"statuses": [
                {"error": why} for _ in wires]}}}
        parent: Order | None = None
        parent_failed = False
        for i, wire in enumerate(wires):
            is_child = grouping == "normalTpsl" and i > 0
            if is_child and parent_failed:
                statuses.append({"error": rules.err_invalid_tpsl(wire.get("a", -1))})
                continue
            undocumented = self._child_refusal(first, wire) if is_child else None
            if undocumented is not None:
                statuses.append({"error": undocumented})
                continue
            if is_child and parent is not None and parent.status not in ("open", "filled"):
                # Hyperliquid places an entry's TP/SL if and only if the entry fully fills (or is
                # partly filled, then canceled for insufficient margin); an IOC entry that filled in
                # part did neither, and what Hyperliquid answers for its TP/SL is not documented.
                statuses.append({"error": rules.err_unsupported(
                    "TP/SL of an entry that did not fully fill",
                    "Hyperliquid places an entry's TP/SL only once the entry fully fills")})
                continue
            status, order = self.place(address, wire, now, grouping=grouping,
                                       parent_oid=parent.oid if is_child and parent else None,
                                       builder=builder["b"].lower() if builder else None,
                                       builder_fee=builder_fee)
            if grouping == "normalTpsl" and i == 0:
                parent, parent_failed = order, order is None
            elif order is not None and order.waiting_trigger and "resting" in status:
                status = self._waiting(order, parent if is_child else None)
            statuses.append(status)
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}

    @staticmethod
    def _child_refusal(entry: Json, wire: Any) -> str | None:
        """Why an order after the entry of a ``normalTpsl`` group is refused, if it is. Hyperliquid
        documents an entry's TP/SL as the tp/sl triggers that close the position the entry opens;
        one that is not reduce-only (it could flip the position when it fires), one on the entry's
        own side, and a plain order in the group it does not document: refused by name, not guessed
        (as the position TP/SL it does not document are)."""
        why = "an entry's TP/SL close the position it opens; Hyperliquid does not document this case"
        order_type = wire.get("t") if isinstance(wire, dict) else None
        if not isinstance(order_type, dict) or not isinstance(order_type.get("trigger"), dict):
            return rules.err_unsupported("an order after the entry of a normalTpsl group that is not a tp/sl "
                                         "trigger", why)
        if not wire.get("r"):
            return rules.err_unsupported("a TP/SL of an entry (grouping normalTpsl) that is not reduce-only", why)
        if bool(wire.get("b")) == bool(entry.get("b")):
            return rules.err_unsupported("a TP/SL of an entry (grouping normalTpsl) on the entry's own side", why)
        return None

    @staticmethod
    def _waiting(order: Order, parent: Order | None) -> Any:
        """What Hyperliquid answers for a grouped TP/SL (a bare string, no oid): a child of a
        ``normalTpsl`` parent that has not filled yet is ``waitingForFill``; one whose parent
        filled, and a ``positionTpsl`` order, is ``waitingForTrigger``. A trigger order sent
        alone (grouping ``na``) rests and answers ``{"resting": {"oid": ...}}``."""
        if order.grouping == "normalTpsl" and parent is not None and parent.status == "open":
            return "waitingForFill"  # filled in part or not at all: they wait for the whole fill
        if order.grouping in ("normalTpsl", "positionTpsl"):
            return "waitingForTrigger"
        return {"resting": {"oid": order.oid}}

    def _builder_refusal(self, address: str, builder: Any) -> str | None:
        """Why an order's ``builder`` ({"b": address, "f": tenths of a bp}) is refused, if it is."""
        if not isinstance(builder, dict) or not isinstance(builder.get("b"), str) or \
                not isinstance(builder.get("f"), int) or builder["f"] < 0:
            return "Failed to deserialize the JSON body into the target type"
        approval = self.ledger.builder_approvals.get((address, builder["b"].lower()))
        if approval is None or builder["f"] > approval.max_fee:
            return rules.err_builder_not_approved()
        return None

    def place(self, address: str, wire: Json, now: int, *, grouping: str = "na",
              parent_oid: int | None = None, oid: int | None = None, builder: str | None = None,
              builder_fee: int = 0, check_only: bool = False,
              replaces: int | None = None) -> tuple[Json, Order | None]:
        """Validate and place one order wire; returns (status, the accepted order or None). With
        ``check_only`` nothing is placed: the status is the refusal, or ``{}`` when it would go.
        ``replaces``: the oid a modify replaces (its cloid may carry over to the new order)."""
        led = self.ledger
        asset = wire.get("a")
        if not isinstance(asset, int) or not 0 <= asset < len(led.coins):
            return {"error": f"Invalid asset {asset}."}, None  # paper wording
        coin = led.coins[asset]
        spec = self.market.specs[coin]
        cloid = wire.get("c")
        if isinstance(cloid, str):
            # A cloid names one order of the account: an order whose cloid an earlier order of the
            # account (open, filled or canceled) already carries is refused, so that a retry of a
            # request whose answer was lost can never place the order twice.
            owner = led.cloid_owner(address, cloid.lower())
            if owner is not None and owner.oid != replaces:
                return {"error": rules.err_duplicate_cloid(cloid.lower(), asset)}, None
        px, sz = parse_decimal(wire.get("p")), parse_decimal(wire.get("s"))
        if px is None or px <= 0:
            return {"error": rules.err_invalid_price(asset)}, None
        if not rules.on_tick(px, spec.sz_decimals):
            return {"error": rules.err_tick_size(asset)}, None
        is_buy, reduce_only = bool(wire.get("b")), bool(wire.get("r"))
        order_type = wire.get("t") or {}
        trigger = order_type.get("trigger") if isinstance(order_type, dict) else None
        if grouping == "positionTpsl":
            refused = self._position_tpsl_refusal(address, coin, is_buy, reduce_only, bool(trigger))
            if refused:
                return {"error": refused}, None
        # A position TP/SL may give size 0: it then covers the whole position, whatever its size
        # when it fires (Hyperliquid's "TP/SL for the position").
        whole_position = grouping == "positionTpsl" and bool(trigger) and sz == 0
        if not whole_position and (sz is None or not rules.valid_size(sz, spec.sz_decimals)):
            return {"error": rules.err_invalid_size(asset)}, None
        tif = None if trigger else (order_type.get("limit") or {}).get("tif", "Gtc")
        if tif not in (None, "Gtc", "Ioc", "Alo"):
            return {"error": f"Invalid TIF {tif}. asset={asset}"}, None  # paper wording
        limit_px, size = float(px), float(sz or 0)
        if limit_px * size < rules.MIN_NOTIONAL and not reduce_only:
            return {"error": rules.err_min_notional(asset)}, None
        trigger_px = 0.0
        if trigger:
            tpx = parse_decimal(trigger.get("triggerPx"))
            if tpx is None or not rules.valid_perp_price(tpx, spec.sz_decimals) or trigger.get("tpsl") not in ("tp", "sl"):
                return {"error": rules.err_invalid_tpsl(asset)}, None
            trigger_px = float(tpx)
        elif reduce_only:
            szi = led.position(address, coin)
            if szi == 0 or (szi > 0) == is_buy:
                return {"error": rules.err_reduce_only(asset)}, None
        # The reference price of the 80% band: Hyperliquid does not publish which price it is; the
        # paper exchange takes the mark (its oracle is the same price process, see MarketViews).
        mark = self.market.mark(coin, now)
        if any(abs(p - mark) > rules.REFERENCE_BAND * mark for p in (limit_px, trigger_px) if p):
            return {"error": rules.err_far_from_reference()}, None
        book = self.market.book(coin, now)
        crossing = (is_buy and limit_px >= book.best_ask) or (not is_buy and limit_px <= book.best_bid)
        if not trigger:
            if tif == "Alo" and crossing:
                d = spec.sz_decimals
                return {"error": rules.err_post_only(rules.wire(book.best_bid, 6 - d), rules.wire(book.best_ask, 6 - d),
                                                     asset)}, None
            if tif == "Ioc" and (not crossing or self.ioc_no_fill):
                return {"error": rules.err_ioc_no_match(asset)}, None
            if not reduce_only and not self._has_margin(address, coin, is_buy, size, limit_px, now):
                return {"error": rules.err_insufficient_margin(asset)}, None
        if check_only:
            return {}, None
        order = Order(oid=oid if oid is not None else led.next_oid(), address=address, coin=coin, is_buy=is_buy,
                      limit_px=limit_px, sz=size, orig_sz=size, tif=tif, reduce_only=reduce_only,
                      cloid=cloid.lower() if isinstance(cloid, str) else None, is_trigger=bool(trigger),
                      trigger_px=trigger_px, is_market=bool(trigger and trigger.get("isMarket")),
                      tpsl=trigger.get("tpsl") if trigger else None, grouping=grouping, parent_oid=parent_oid,
                      status="open", timestamp=now, status_ts=now, builder=builder, builder_fee=builder_fee)
        led.session.add(order)
        led.set_status(order, "open", now)
        if trigger:
            return self._resting(order), order
        filled = self._cross(order, book, now) if crossing else None
        if order.status == "open" and tif == "Ioc":
            led.set_status(order, "canceled", now)
        if filled is not None and filled.sz > 0:
            out: Json = {"totalSz": rules.wire(filled.sz, spec.sz_decimals),
                         "avgPx": rules.wire(filled.avg_px, 6), "oid": order.oid}
            if order.cloid:
                out["cloid"] = order.cloid
            return {"filled": out}, order
        if order.status != "open":  # reduce-only with nothing left to reduce
            return {"error": rules.err_reduce_only(asset)}, order
        return self._resting(order), order

    def _position_tpsl_refusal(self, address: str, coin: str, is_buy: bool, reduce_only: bool,
                               is_trigger: bool) -> str | None:
        """Why an order grouped ``positionTpsl`` is refused, if it is. Hyperliquid documents a
        position TP/SL as a TP/SL trigger that closes the open position (the whole of it at size 0);
        what it does with one that is not reduce-only, with no position, or on the side that adds to
        the position, it does not document: refused by name rather than accepted and then made
        reduce-only or dropped when it fires (docs/bot-and-exchange.md)."""
        szi = self.ledger.position(address, coin)
        why = "a position TP/SL closes the open position; Hyperliquid does not document this case"
        if not is_trigger:
            return rules.err_unsupported("an order grouped positionTpsl that is not a tp/sl trigger", why)
        if not reduce_only:
            return rules.err_unsupported("a position TP/SL that is not reduce-only", why)
        if szi == 0:
            return rules.err_unsupported(f"a position TP/SL with no open {coin} position", why)
        if (szi > 0) == is_buy:
            return rules.err_unsupported("a position TP/SL on the side that adds to the position", why)
        return None

    @staticmethod
    def _resting(order: Order) -> Json:
        out: Json = {"oid": order.oid}
        if order.cloid:
            out["cloid"] = order.cloid
        return {"resting": out}

    def _cross(self, order: Order, book: Any, now: int) -> Any:
        led = self.ledger
        size = led.clamp_reduce_only(order) if order.reduce_only else order.sz
        if size <= 0:
            led.set_status(order, "reduceOnlyCanceled", now)
            return None
        if order.reduce_only and size < order.sz:
            order.sz = size
        return led.execute(order, led.take(book, order.is_buy, order.limit_px, size), taker=True, now=now)

    def _has_margin(self, address: str, coin: str, is_buy: bool, sz: float, px: float, now: int) -> bool:
        led = self.ledger
        szi = led.position(address, coin)
        signed = sz if is_buy else -sz
        increase = max(0.0, abs(szi + signed) - abs(szi))
        if increase <= 0:
            return True
        summary = led.margin_summary(address, led.marks(now))
        free = summary["account_value"] - summary["margin_used"] - summary["order_margin"]
        return increase * px / led.leverage_of(address, coin).value <= free + 1e-9

    # ----- cancels and modifies -------------------------------------------------------------
    def _cancel_action(self, address: str, action: Json, now: int) -> Json:
        statuses = [self._cancel_one(address, c.get("a"), c.get("o"), now) for c in action.get("cancels") or []]
        return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}}

    def _cancel_by_cloid_action(self, address: str, action: Json, now: int) -> Json:
        statuses = []
        for c in action.get("cancels") or []:
            cloid = c.get("cloid")
            order = self.ledger.find_order(address, cloid.lower()) if isinstance(cloid, str) else None
            statuses.append(self._cancel_one(address, c.get("asset"), order.oid if order else None, now))
        return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": statuses}}}

    def _cancel_one(self, address: str, asset: Any, oid: Any, now: int) -> Any:
        led = self.ledger
        order = led.open_orders.get(oid) if isinstance(oid, int) else None
        if order is None or order.address != address or led.asset_of.get(order.coin) != asset:
            return {"error": rules.err_cancel_missing(asset)}
        led.set_status(order, "canceled", now)
        for child in [o for o in led.open_orders.values() if o.parent_oid == order.oid]:
            # a parent canceled before it fully filled takes its TP/SL with it, a partly filled one
            # too (Hyperliquid's TP/SL page: "the child TP/SL orders are fully canceled as well")
            led.set_status(child, "canceled", now)
        return "success"

    def _modify_action(self, address: str, action: Json, now: int) -> Json:
        return self._batch_modify_action(address, {"modifies": [{"oid": action.get("oid"), "order": action.get("order")}]},
                                         now)

    def _batch_modify_action(self, address: str, action: Json, now: int) -> Json:
        led = self.ledger
        statuses: list[Any] = []
        for m in action.get("modifies") or []:
            ref, wire = m.get("oid"), m.get("order") or {}
            old = led.find_order(address, ref.lower() if isinstance(ref, str) else ref)
            if old is None or old.status != "open":
                statuses.append({"error": "Cannot modify canceled or filled order"})
                continue
            if wire.get("a") != led.asset_of.get(old.coin):
                statuses.append({"error": rules.err_modify_asset(old.coin)})
                continue
            grouped = self._grouped_modify_refusal(old)
            if grouped is not None:
                statuses.append({"error": grouped})
                continue
            # The new order is checked first, with the margin of the order it replaces released:
            # a refused modify leaves the original resting, as on Hyperliquid.
            led.open_orders.pop(old.oid, None)
            try:
                refused, _ = self.place(address, wire, now, grouping=old.grouping, check_only=True,
                                        replaces=old.oid)
            finally:
                led.open_orders[old.oid] = old
            if refused:
                statuses.append(refused)
                continue
            led.set_status(old, "canceled", now)
            status, _ = self.place(address, wire, now, grouping=old.grouping, parent_oid=old.parent_oid,
                                   builder=old.builder, builder_fee=old.builder_fee, replaces=old.oid)
            statuses.append(status)
        return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}

    def _grouped_modify_refusal(self, old: Order) -> str | None:
        """A modify Hyperliquid does not document, refused by name: of a ``normalTpsl`` entry
        whose TP/SL wait for its fill, or of such a waiting TP/SL (either would turn the
        children into stand-alone triggers, one not reduce-only able to open a position)."""
        led = self.ledger
        if old.grouping != "normalTpsl":
            return None
        parent = led.open_orders.get(old.parent_oid) if old.parent_oid is not None else None
        if parent is not None and parent.status == "open":
            return rules.err_unsupported("modify of a TP/SL waiting for its entry to fill",
                                         "cancel the entry and send it again with its TP/SL")
        if any(o.parent_oid == old.oid for o in led.open_orders.values()):
            return rules.err_unsupported("modify of an entry with TP/SL waiting for its fill",
                                         "cancel the entry and send it again with its TP/SL")
        return None

    # ----- account settings -----------------------------------------------------------------
    def _update_leverage_action(self, address: str, action: Json, now: int) -> Json:
        led = self.ledger
        asset, value = action.get("asset"), action.get("leverage")
        if not isinstance(asset, int) or not 0 <= asset < len(led.coins):
            return {"status": "err", "response": f"Invalid asset {asset}."}
        coin = led.coins[asset]
        if not isinstance(value, int) or not 1 <= value <= self.market.specs[coin].max_leverage:
            return {"status": "err", "response": "Invalid leverage value"}
        lev = led.leverage_of(address, coin)
        is_cross = bool(action.get("isCross", True))
        if is_cross != lev.is_cross and led.position(address, coin) != 0:
            return {"status": "err", "response": rules.err_leverage_type_with_position()}
        before = (lev.value, lev.is_cross)
        lev.value, lev.is_cross = value, is_cross
        if value < before[0] and led.position(address, coin) != 0:
            # Lower leverage asks more initial margin of the open position (and of resting orders):
            # refused when the account cannot post it, as Hyperliquid refuses it; raising it is free.
            s = led.margin_summary(address, led.marks(now))
            free = s["account_value"] - s["margin_used"] - s["order_margin"]
            if free < -1e-9:
                lev.value, lev.is_cross = before
                why = rules.err_leverage_insufficient_margin(value, s["margin_used"] + s["order_margin"],
                                                             s["account_value"])
                return {"status": "err", "response": why}
        return {"status": "ok", "response": {"type": "default"}}

    def _update_isolated_margin_action(self, address: str, action: Json, now: int) -> Json:
        """Add (``ntli`` > 0) or remove (< 0) margin of an isolated position; ``ntli`` is USDC
        with 6 decimals. Removing is allowed while the position stays within its coin's max
        leverage at the mark (paper rule: Hyperliquid's exact bound is not published)."""
        led = self.ledger
        asset, ntli = action.get("asset"), action.get("ntli")
        if not isinstance(asset, int) or not 0 <= asset < len(led.coins) or not isinstance(ntli, int) \
                or isinstance(ntli, bool):
            return {"status": "err", "response": "Failed to deserialize the JSON body into the target type"}
        coin = led.coins[asset]
        pos = led.positions.get((address, coin))
        if pos is None or pos.szi == 0:
            return {"status": "err", "response": rules.err_isolated_margin("no open position")}
        if led.leverage_of(address, coin).is_cross:
            return {"status": "err", "response": rules.err_isolated_margin("the position is cross margin")}
        amount = ntli / 1e6
        marks = led.marks(now)
        if amount > 0 and amount > led.withdrawable(address, marks) + 1e-9:
            why = rules.err_insufficient_balance(amount, led.withdrawable(address, marks))
            return {"status": "err", "response": why}
        after = led.position_margin(pos, marks[coin]) + amount
        least = abs(pos.szi) * marks[coin] / self.market.specs[coin].max_leverage
        if amount < 0 and after < least - 1e-9:
            return {"status": "err", "response": rules.err_isolated_margin(
                f"{-amount:.6f} would leave {after:.6f}, below the {least:.6f} of max leverage")}
        pos.margin_extra += amount
        return {"status": "ok", "response": {"type": "default"}}

    def _schedule_cancel_action(self, address: str, action: Json, now: int) -> Json:
        led = self.ledger
        acct = led.accounts[address]
        at = action.get("time")
        if at is None:
            acct.schedule_cancel_ms = None
            return {"status": "ok", "response": {"type": "default"}}
        cfg = led.config
        if acct.cum_volume < cfg.schedule_cancel_min_volume:
            return {"status": "err",
                    "response": rules.err_schedule_cancel_volume(cfg.schedule_cancel_min_volume, acct.cum_volume)}
        if not isinstance(at, int) or at < now + rules.SCHEDULE_CANCEL_MIN_DELAY_MS:
            return {"status": "err", "response": rules.err_schedule_cancel_too_soon()}
        triggered_today = acct.schedule_cancel_count if acct.schedule_cancel_day == now // DAY_MS else 0
        if triggered_today >= cfg.schedule_cancel_daily_limit:
            return {"status": "err", "response": rules.err_schedule_cancel_daily_limit(cfg.schedule_cancel_daily_limit)}
        acct.schedule_cancel_ms = at
        return {"status": "ok", "response": {"type": "default"}}

    def due_scheduled_cancels(self) -> dict[str, int]:
        """Every armed dead-man's switch: account -> time (ms)."""
        return {a.address: a.schedule_cancel_ms for a in self.ledger.accounts.values()
                if a.schedule_cancel_ms is not None}

    def fire_scheduled_cancel(self, address: str, now: int) -> int:
        """Cancel every open order of ``address`` if its scheduled cancel is due at ``now``
        (status ``scheduledCancel``) and count the trigger; returns how many things changed."""
        led = self.ledger
        acct = led.accounts.get(address)
        if acct is None or acct.schedule_cancel_ms is None or now < acct.schedule_cancel_ms:
            return 0
        changed = 0
        for o in [o for o in led.open_orders.values() if o.address == address]:
            led.set_status(o, "scheduledCancel", now)
            changed += 1
        day = now // DAY_MS
        if acct.schedule_cancel_day != day:
            acct.schedule_cancel_day, acct.schedule_cancel_count = day, 0
        acct.schedule_cancel_count += 1
        acct.schedule_cancel_ms = None
        return changed + 1

    # ----- the tick -------------------------------------------------------------------------
    def tick(self, now: int) -> int:
        """Advance the market to ``now``; returns how many orders changed state. Also runs any
        scheduled cancel whose timer did not (the server's timers normally fire them on time)."""
        led = self.ledger
        changed = 0
        books = {c: self.market.book(c, now) for c in {o.coin for o in led.open_orders.values()}}
        for order in sorted(led.open_orders.values(), key=lambda o: o.oid):
            if order.status != "open":
                continue  # closed earlier in this tick (a position went flat)
            book = books[order.coin]
            if order.waiting_trigger:
                changed += self._maybe_trigger(order, book, now)
            elif (order.is_buy and book.best_ask <= order.limit_px) or (not order.is_buy and book.best_bid >= order.limit_px):
                size = led.clamp_reduce_only(order) if order.reduce_only else order.sz
                if size <= 0:
                    led.set_status(order, "reduceOnlyCanceled", now)
                else:
                    order.sz = size
                    led.execute(order, [(order.limit_px, size)], taker=False, now=now)
                changed += 1
        for address in list(self.due_scheduled_cancels()):
            changed += self.fire_scheduled_cancel(address, now)
        return changed

    def _maybe_trigger(self, order: Order, book: Any, now: int) -> int:
        led = self.ledger
        if order.parent_oid is not None:
            # Hyperliquid places an entry's TP/SL if and only if the entry fully fills, or fills in
            # part and is then canceled for insufficient margin (then as if fully filled)
            parent = led.find_order(order.address, order.parent_oid)
            placed = parent is not None and (parent.status == "filled" or (
                parent.status == "marginCanceled" and parent.sz < parent.orig_sz))
            if not placed:
                if parent is None or parent.status != "open":
                    led.set_status(order, "canceled", now)
                    return 1
                return 0  # waiting for its parent to fill entirely
        mark = self.market.mark(order.coin, now)  # Hyperliquid triggers TP/SL on the mark, not the mid
        fires_above = (order.tpsl == "tp") != order.is_buy
        if not (mark >= order.trigger_px if fires_above else mark <= order.trigger_px):
            return 0
        if order.reduce_only:
            size = led.clamp_reduce_only(order)
            if size <= 0:
                led.set_status(order, "canceled", now)
                return 1
            order.sz = size
        # It keeps what it was placed as (isTrigger, triggerPx, "Stop Market"...), as Hyperliquid's
        # orderStatus and historicalOrders show a stop that fired; from now on it is a plain order.
        order.triggered = True
        led.set_status(order, "triggered", now)
        # A market TP/SL executes within 10% of the mark; its record keeps the limitPx it was placed
        # with (as its triggerPx and orderType), the bound is the execution's (a paper choice: what
        # Hyperliquid's record of a fired market TP/SL shows as limitPx is not documented).
        bound = order.limit_px
        if order.is_market:
            slip = rules.MARKET_TRIGGER_SLIPPAGE
            bound = mark * (1 + slip) if order.is_buy else mark * (1 - slip)
            order.tif = "Ioc"
        else:
            order.tif = "Gtc"
        led.set_status(order, "open", now)
        crossing = (order.is_buy and bound >= book.best_ask) or (not order.is_buy and bound <= book.best_bid)
        if crossing:
            led.execute(order, led.take(book, order.is_buy, bound, order.sz), taker=True, now=now)
        if order.status == "open" and order.tif == "Ioc":
            led.set_status(order, "canceled", now)
        return 1
