"""The emergency page (templates/emergency.md.j2) says what is true, case by case, rendered by
the configuration's own sandboxed templating (what the notify action uses in the agent).

The registered results are those the exchange and bot actions return; a missing one (a task
that did not run) must never cost the page (StrictUndefined is in force)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.playbook.templating import Templating

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
STOP = {"coin": "BTC", "side": "long", "size": 0.1, "entry_px": 60000, "protected": True,
        "stops": [{"trigger_px": 58800, "oid": 7}]}
BARE = {"coin": "ETH", "side": "short", "size": 1.5, "entry_px": 3000, "protected": False, "stops": []}
DURABLE = {"msg": "halted new entries: recorded in var/bot.halt.json", "durable": True, "failed": False}
REFUSED = ["close BTC: Order could not immediately match", "close BTC: Order could not immediately match"]

CASES: list[tuple[str, dict[str, Any], list[str], list[str]]] = [
    ("flat",
     {"final": {"open_positions": 0, "open_orders": 0, "positions": []}, "flattened": {"closed": ["BTC"]},
      "halted": DURABLE, "stopped": {"msg": "stopped bot", "failed": False}},
     ["**Positions: flat.**", "- Close: closed BTC", "stays halted when it is started again"],
     ["STILL OPEN", "NOT recorded"]),
    ("open, one with a stop, one without",
     {"final": {"open_positions": 2, "open_orders": 1, "positions": [STOP, BARE]},
      "flattened": {"closed": [], "errors": REFUSED}, "halted": DURABLE},
     ["**2 position(s) STILL OPEN:**", "- BTC long 0.1 @ 60000: protected by a reduce-only stop (trigger 58800)",
      "- ETH short 1.5 @ 3000: **WITHOUT A STOP**", "refused: close BTC: Order could not immediately match\n",
      "- Bot: NOT stopped: not run"],
     ["flat"]),
    ("the account unreadable, the bot dead and the halt not recorded",
     {"final": {"open_positions": None, "msg": "could not read the account: HTTP 429"},
      "halted": {"msg": "NOT halted: ...", "failed": True}},
     ["**Positions: UNKNOWN.** The account could not be read: could not read the account: HTTP 429",
      "Orders resting now: unknown", "The halt is NOT recorded"],
     ["stays halted"]),
    ("nothing ran", {}, ["**Positions: UNKNOWN.**", "- Halt: not run"], ["approve the agent's API wallet"]),
    ("the agent's own wallet not approved (breaker x4 F6.2: the refusal without a remedy)",
     {"final": {"open_positions": 1, "open_orders": 1, "positions": [STOP]},
      "flattened": {"closed": [], "errors": ["close BTC: User or API Wallet 0x1ba5 does not exist."]},
      "halted": DURABLE},
     ["refused: close BTC: User or API Wallet 0x1ba5 does not exist.",
      "approve the agent's API wallet again", "or close from the exchange's app"], []),
]


@pytest.mark.parametrize(("case", "results", "present", "absent"), CASES, ids=[c[0] for c in CASES])
def test_the_page_says_what_is_true(case: str, results: dict[str, Any], present: list[str],
                                    absent: list[str]) -> None:
    page = Templating(TEMPLATES).render_template(
        "emergency.md.j2", {"host": "local", "reason": "operator ran playbook emergency", "title": "t",
                            "severity": "critical", **results})
    for text in present:
        assert text in page, (text, page)
    for text in absent:
        assert text not in page, (text, page)
    assert page.count("refused: close BTC") <= 1  # the same refusal on each attempt is said once
