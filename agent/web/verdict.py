"""The overview's one-word verdict (SAFE / DEGRADED / HALTED / UNPROTECTED) and whether the bot
may open new positions, from facts the page gathered. Pure: no I/O, no clock.

Worst first:

* **UNPROTECTED**: nothing would act if things went wrong, or money is at risk without a stop:
  the agent is not running, does not answer (``agent_answers`` false: hung), its event loop
  has not run on two reads in a row (``agent_loop_blocked``: /metrics answers from its own
  thread while the loop is blocked), its checks have
  stopped coming in (``agent_fresh`` false), or an
  open position is not covered by resting reduce-only stop-losses for its whole size (a
  take-profit or a stop-loss for part of the size does not count);
* **HALTED**: the bot's circuit breaker is tripped (it takes no new entries until resumed): its
  /health says so, or the halt file (``bot.halt_file``, :mod:`botwarden.halts`) holds a halt,
  which it does while the bot is dead or restarting (an unreadable file is a halt: fail closed).
  A halt is named among the reasons whatever the level;
* **DEGRADED**: something is wrong but guarded: an open incident, the agent missing one read of
  its /metrics or one read finding its event loop not run for seconds, the account unreadable now (its last known positions, stops and orders are
  judged and named with their time: unknown is never "none"), the bot not running or not
  healthy, the exchange not answering, the store unreadable, or an order resting on the
  exchange that can add exposure (not reduce-only: the bot's entries are IOC and never rest, so
  it was placed by hand or adopted; a halt does not stop it filling, and the answer to "may it
  open positions" says so);
* **SAFE**: none of the above.
"""
from __future__ import annotations

from dataclasses import dataclass, field

LEVELS: tuple[str, ...] = ("SAFE", "DEGRADED", "HALTED", "UNPROTECTED")


@dataclass(frozen=True)
class Facts:
    agent_running: bool
    agent_fresh: bool
    store_readable: bool
    bot_running: bool
    bot_status: str | None
    """The bot's /health ``status`` (healthy, degraded, halted), None when it did not answer."""
    halted_reason: str | None
    exchange_ok: bool
    open_incidents: int
    positions_without_stop: tuple[str, ...] = ()
    agent_answers: bool = True
    """The agent's process answers (its ``/metrics``), read twice in a row: False when it hangs."""
    halts: tuple[str, ...] = ()
    """The halts in force in the halt file, described (``control: reason``)."""
    exposure_orders: tuple[str, ...] = ()
    """Resting orders that can add exposure (not reduce-only), described (``BTC buy 0.01 @ 50000``):
    as read now, or, when ``account_now`` is false, as last seen (at ``account_seen_at``)."""
    account_now: bool = True
    """The account (positions, orders, stops) was read from the exchange at its last attempt. When
    false, ``positions_without_stop`` and ``exposure_orders`` are the last known ones (empty when
    it was never read): unknown now, never "none"."""
    account_seen_at: str | None = None
    """When the account shown was last read (``HH:MM:SS UTC``), None when it was never read."""
    agent_missed_last_read: bool = False
    """The agent's ``/metrics`` did not answer the last read (one miss: not yet "hung")."""
    agent_loop_stale_s: float | None = None
    """The agent answers but its event loop had not run for this many seconds at the last read
    (its /metrics is served by its own thread): one such read is DEGRADED (a busy moment)."""
    agent_loop_blocked: bool = False
    """The agent's event loop was found not running on two reads in a row, for seconds: it is
    blocked (a sync call, a deadlock), nothing it schedules runs: UNPROTECTED."""
    programs_known: bool = True
    """supervisord answered: ``agent_running`` and ``bot_running`` are its word. When false both
    are false and unknown: said as unknown, not as "not running"."""


@dataclass(frozen=True)
class Verdict:
    level: str
    reasons: tuple[str, ...] = field(default_factory=tuple)
    entries_allowed: bool = False
    entries_reason: str = ""
    unwatched: str | None = None
    """Why the agent is not watching now (not running, hung, its loop blocked, its checks stopped
    coming in, or unknown), None while it watches: the check states and incidents in its store
    are then what it last recorded, frozen, and every page that shows them says so."""


def decide(f: Facts) -> Verdict:
    unprotected: list[str] = []
    unwatched: str | None = None
    if not f.programs_known:
        unwatched = "supervisord does not answer: whether the agent runs (and watches the bot) is unknown"
    elif not f.agent_running:
        unwatched = "the agent is not running: nothing watches the bot"
    elif not f.agent_answers:
        unwatched = ("the agent does not answer (its /metrics, twice in a row): it may be hung, and then "
                     "nothing watches the bot; `supervisorctl restart agent`")
    elif f.agent_loop_blocked:
        unwatched = (f"the agent's event loop has not run for {f.agent_loop_stale_s or 0:.0f} s (its /metrics "
                     "answers from its own thread): it is blocked, and then nothing watches the bot; "
                     "`supervisorctl restart agent`")
    elif not f.agent_fresh:
        unwatched = "the agent's checks have stopped coming in"
    if unwatched is not None:
        unprotected.append(unwatched)
    seen = f" (as last read, at {f.account_seen_at})" if not f.account_now else ""
    for coin in f.positions_without_stop:
        unprotected.append(f"{coin} position has no resting stop-loss covering its whole size{seen}")
    degraded: list[str] = []
    if f.agent_running and f.agent_answers and f.agent_missed_last_read:
        degraded.append("the agent did not answer its last read (/metrics): busy, or hung if the next read "
                        "misses too")
    if (f.agent_running and f.agent_answers and not f.agent_loop_blocked
            and f.agent_loop_stale_s is not None):
        degraded.append(f"the agent's loop has not run for {f.agent_loop_stale_s:.0f} s: busy, or blocked if the "
                        "next read finds it so too")
    if not f.account_now:
        degraded.append(_unknown_account(f))
    if not f.store_readable:
        degraded.append("the agent's store cannot be read")
    if f.open_incidents:
        degraded.append(f"{f.open_incidents} open incident(s)")
    if not f.programs_known:
        degraded.append("whether the bot runs is unknown (supervisord does not answer)"
                        + ("" if f.bot_status is None else f"; its /health answers {f.bot_status}"))
    elif not f.bot_running:
        degraded.append("the bot is not running")
    elif f.bot_status is None:
        degraded.append("the bot does not answer /health")
    elif f.bot_status == "degraded":
        degraded.append("the bot reports itself degraded")
    if not f.exchange_ok:
        degraded.append("the exchange does not answer")
    if f.exposure_orders and f.account_now:
        degraded.append(f"{len(f.exposure_orders)} resting order(s) can add exposure (not reduce-only; the bot's "
                        f"entries never rest): {', '.join(f.exposure_orders)}")
    halted = f.bot_status == "halted" or bool(f.halts)
    halt_reason = "; ".join(f.halts) or f.halted_reason or "no reason given"
    if halted:
        entries, why = False, f"no: halted ({halt_reason})"
        if not f.account_now:
            why += "; but " + _unknown_orders(f)
        elif f.exposure_orders:
            why += f"; but {len(f.exposure_orders)} resting order(s) can still fill and add exposure"
    elif not f.programs_known:
        entries, why = False, "unknown: supervisord does not answer (no new entries are counted on)"
    elif not f.bot_running:
        entries, why = False, "no: the bot is not running"
    elif f.bot_status is None:  # running for supervisord, silent: hung (SIGSTOP), busy, or starting
        entries, why = False, "unknown: the bot does not answer /health (it runs, for supervisord)"
    else:
        entries, why = True, "yes"
    halt_note = [f"new entries halted: {halt_reason}"] if halted else []
    if unprotected:
        level, reasons = "UNPROTECTED", unprotected + halt_note + degraded
    elif halted:
        level, reasons = "HALTED", halt_note + degraded
    elif degraded:
        level, reasons = "DEGRADED", degraded
    else:
        level, reasons = "SAFE", []
    return Verdict(level, tuple(reasons), entries, why, unwatched)


def _unknown_orders(f: Facts) -> str:
    """What is known of the resting orders when the account cannot be read now: unknown, with the
    last ones seen (an order that can add exposure can still fill, halt or not)."""
    if f.account_seen_at is None:
        return "resting orders unknown (the account has not been read): any of them could fill"
    if f.exposure_orders:
        return (f"resting orders unknown now; {len(f.exposure_orders)} seen at {f.account_seen_at} could still fill "
                f"and add exposure: {', '.join(f.exposure_orders)}")
    return f"resting orders unknown now (at {f.account_seen_at} none could add exposure)"


def _unknown_account(f: Facts) -> str:
    if f.account_seen_at is None:
        return "positions, stops and resting orders unknown: the account has not been read from the exchange"
    return f"positions and stops unknown now, shown as read at {f.account_seen_at}; " + _unknown_orders(f)
