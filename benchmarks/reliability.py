"""``make reliability``: every fault scenario of tests/faults on the whole stack, 20 runs each
with fresh random timings, and docs/reliability.md written from the figures of this run.

Environment: ``RELIABILITY_RUNS`` (default 20) runs per scenario; ``RELIABILITY_SCENARIOS``
(comma-separated names, default all); ``RELIABILITY_SEED`` (default: random) the seed the runs'
seeds are drawn from, printed first so a whole run can be replayed.

Every scenario's outcomes are kept in docs/reliability.json with the commit, date and master seed
of the run that measured them: a run of some scenarios replaces their rows and keeps the others,
and docs/reliability.md says for each row which run it comes from.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

from benchmarks._common import REPO, log, machine, table
from tests.faults import scenarios as sc
from tests.faults.test_faults import DEFAULT

COLUMNS = ["scenario", "targets met", "runs", "failed", "s per run", "faults", "expected", "received json", "received mail", "duplicates",
           "lost", "max per fault", "restarts", "out of order", "unprotected positions", "dead without page"]


DATABASE_LOSS = (
    "## When the agent's database is lost\n\n"
    "database-deleted deletes `var/agent.db` (and its `-wal`, `-shm`) under the running agent. The agent "
    "notices within a second (`StoreFileWatch`: the file's device and inode changed), acts on no more "
    "results, tells directly through apprise `[AGENT] ... deleted: the agent restarts` with every outbox "
    "message not delivered and every problem not told yet (`agent/notify/unsaid.py`), and exits 4; "
    "supervisord starts it again on a new, empty file. Before it exits it writes a hand-over beside the "
    "database (`var/agent.db.handover.json`: temporary file, fsync, rename; 0600; check keys, states, "
    "severities, redacted summaries, times and the (route, target) names only): every problem told to the "
    "operator, or sent directly without the store, whose resolve was not told yet. The new agent imports "
    "it before it loads the check states: each problem as an incident already told, its alerts recorded as "
    "sent to the same targets, and, still open, the check's state as that problem, so the first OK "
    "reading tells its resolve to those targets and a check still failing continues the same incident "
    "(no second alert); then it records a `handover` event and removes the file "
    "(`agent/engine/store_handover.py`). Not imported but told: a hand-over older than a day, problems "
    "of checks no longer configured (their resolve cannot be judged), a file that cannot be read (kept "
    "as `.bad-<time>`) or one cut off by a kill mid-write. Acknowledgements and silences made since the "
    "file disappeared are lost. The run waits up to 60 s (25 s for the others) for the stack to be quiet: "
    "two agent start-ups take 10-15 s each on this loaded machine.\n"
)

def main() -> None:
    runs = int(os.environ.get("RELIABILITY_RUNS", "20"))
    names = [n for n in os.environ.get("RELIABILITY_SCENARIOS", "").split(",") if n] or list(sc.SCENARIOS)
    master = int(os.environ.get("RELIABILITY_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(master)
    log(f"machine: {json.dumps(machine())}; master seed {master}; {runs} runs of {', '.join(names)}")
    started = time.time()
    pool = sc.StackPool()
    results: dict[str, list[sc.Outcome]] = {}
    took: dict[str, list[float]] = {}
    try:
        for name in names:
            spec = sc.SCENARIOS[name]
            if spec.needs_full_disk and pool.full_disk_skip:
                log(f"{name}: skipped: {pool.full_disk_skip}")
                results[name] = []
                continue
            results[name] = []
            took[name] = []
            for i in range(runs):
                t0 = time.monotonic()
                outcome = pool.run(spec, rng.randrange(2**32))
                took[name].append(time.monotonic() - t0)
                results[name].append(outcome)
                log(f"{name} {i + 1}/{runs}: {'ok' if outcome.ok else 'FAILED'}: {outcome.summary()}")
    finally:
        pool.close()
    stored = merge(load(), results, took, master, time.time() - started)
    STORE.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    doc = render(stored, pool.full_disk_skip, machine())
    (REPO / "docs" / "reliability.md").write_text(doc)
    log(doc)


STORE = REPO / "docs" / "reliability.json"


def load() -> dict[str, Any]:
    """The stored runs: {"runs": {id: {when, commit, master, minutes}}, "scenarios": {name: {run, took, outcomes}}}."""
    try:
        data = json.loads(STORE.read_text())
    except FileNotFoundError:
        return {"runs": {}, "scenarios": {}}
    return data if isinstance(data, dict) else {"runs": {}, "scenarios": {}}


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def merge(stored: dict[str, Any], results: dict[str, list[sc.Outcome]], took: dict[str, list[float]],
          master: int, seconds: float) -> dict[str, Any]:
    """This run's scenarios replace their stored rows; runs no row comes from any more are dropped."""
    run_id = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    runs = dict(stored.get("runs", {}))
    scenarios = dict(stored.get("scenarios", {}))
    runs[run_id] = {"commit": _commit(), "master": master, "minutes": round(seconds / 60),
                    "load": f"{os.getloadavg()[2]:.1f}"}
    for name, outs in results.items():
        scenarios[name] = {"run": run_id, "took": [round(t, 1) for t in took.get(name, [])],
                           "outcomes": [dataclasses.asdict(o) for o in outs]}
    scenarios = {n: scenarios[n] for n in sc.SCENARIOS if n in scenarios}
    used = {v["run"] for v in scenarios.values()}
    return {"runs": {r: v for r, v in runs.items() if r in used}, "scenarios": scenarios}


def _outcomes(entry: dict[str, Any]) -> list[sc.Outcome]:
    fields = {f.name for f in dataclasses.fields(sc.Outcome)}
    out = []
    for d in entry["outcomes"]:
        d = {k: v for k, v in d.items() if k in fields}
        if d.get("expected_restarts") is not None:
            d["expected_restarts"] = tuple(d["expected_restarts"])
        out.append(sc.Outcome(**d))
    return out


def _row(name: str, outs: list[sc.Outcome], took: list[float]) -> list[str]:
    if not outs:
        return [name, "skipped", "0", *[""] * (len(COLUMNS) - 3)]
    failed = [o for o in outs if not o.ok]
    return [
        name, "no" if failed else "yes", str(len(outs)), str(len(failed)),
        f"{sum(took) / len(took):.0f}" if took else "",
        str(sum(o.faults for o in outs)), str(sum(o.expected for o in outs)),
        str(sum(o.received_json for o in outs)), str(sum(o.received_mail for o in outs)),
        str(sum(o.duplicates for o in outs)), str(sum(o.lost for o in outs)),
        f"{max(o.per_fault for o in outs):g}", str(sum(o.restarts for o in outs)),
        str(sum(o.out_of_order for o in outs)),
        str(sum(max(o.unprotected, 0) for o in outs)) + (" (unreadable)" if any(o.unprotected < 0 for o in outs)
                                                          else ""),
        str(sum(o.dead_without_page for o in outs)),
    ]


def render(stored: dict[str, Any], full_disk_skip: str | None, host: dict[str, str]) -> str:
    results = {n: _outcomes(e) for n, e in stored["scenarios"].items()}
    took_by = {n: e["took"] for n, e in stored["scenarios"].items()}
    runs = stored["runs"]
    run_rows = [[r, v["commit"], str(v["master"]), str(v["minutes"]), str(v.get("load", "not recorded")),
                 ", ".join(n for n, e in stored["scenarios"].items() if e["run"] == r)] for r, v in runs.items()]
    out = [
        "# Reliability under faults",
        "",
        "Generated by `make reliability` (benchmarks/reliability.py, scenarios in tests/faults/scenarios.py) "
        "from docs/reliability.json; every figure below was measured by the run its row names (below the "
        "figures), with random timings drawn from that run's master seed (`RELIABILITY_SEED=<seed> "
        "RELIABILITY_SCENARIOS=<names> make reliability` replays them). "
        f"Machine of the last run: {json.dumps(host)}. "
        f"`make test` runs {', '.join(DEFAULT)} once each with a fresh seed (`DEFAULT` in "
        "tests/faults/test_faults.py); `FAULT_SCENARIOS=all .venv/bin/python -m pytest tests/faults` runs "
        "every scenario once.",
        "",
        "The whole stack (supervisord, paper exchange, bot, agent) with the shipped `bot-health`, `exchange` "
        "and `emergency` playbooks, their clocks sped up (heartbeat deadline "
        f"{sc.HEARTBEAT_DEADLINE_S:g} s, restart cooldown {sc.COOLDOWN_S:g} s, group_wait {sc.GROUP_WAIT}, "
        f"group_interval {sc.GROUP_INTERVAL}, store grace {sc.STORE_GRACE_S:g} s), and the repository's "
        "inventory with its `inbox` target at a real json:// receiver and `email` at a real SMTP server "
        "(aiosmtpd), both on loopback. Before every run the agent starts on a fresh database, the bot is "
        "running and every check OK.",
        "",
        "Columns are sums over the runs (*s per run*: mean wall seconds of one run, reset of the stack "
        "included; max per fault: the most messages one receiver got per injected "
        "fault in any run). *Expected*: per receiver, the alert and resolve the scenario must deliver (and the "
        "page of a hand-over or emergency), or every message the agent queued for it, whichever is more. "
        "*Lost*: expected and never received once the outbox drained, or an alert never resolved; a "
        "`[CRITICAL, now OK]` message (a problem the agent fixed before its alert went out) is the alert and "
        "its resolve in one message, an `[UPDATE]` follows an alert already counted. "
        "*Duplicates*: the same message twice at "
        "one receiver. *Out of order*: a resolve received after a newer alert of the same check. "
        "*Unprotected positions*: open at the end without a reduce-only stop covering them (read on the "
        "exchange through the SDK). *Dead without page*: the bot not running at the end and neither a page "
        "nor an unresolved alert saying so.",
        "",
        "Targets (issue 13): 0 lost, 0 duplicated, 0 unprotected positions, at most 2 messages per fault "
        "(one message, one resolve), no bot dead without a page.",
        "",
        "A play run cut short is never left unnoticed: the emergency (or any play) whose runner is SIGKILLed after its halt, the resident agent included, is found by the agent's sweep of play runs (started, owner process gone, no end recorded; README: a play run cut short) and, as the emergency says `on_interrupt: resume`, run again to its end: its own page is the one message (emergency-run-killed, agent-killed-mid-handover).",
        "",
        "## Scenarios",
        "",
        table(["scenario", "what is done"], [[n, sc.SCENARIOS[n].title] for n in results]),
        "",
        DATABASE_LOSS,
        "## Figures",
        "",
        table(COLUMNS, [_row(n, outs, took_by.get(n, [])) for n, outs in results.items()]),
        "",
        "Runs the rows come from (a run of some scenarios replaces their rows only):",
        "",
        table(["run", "commit", "master seed", "minutes", "load (15-min average at its end; 2 cores)", "scenarios"],
              run_rows),
        "",
    ]
    if full_disk_skip:
        out += [f"full-disk was skipped: {full_disk_skip}.", ""]
    failed = [(n, o) for n, outs in results.items() for o in outs if not o.ok]
    out += ["## Failed runs", ""]
    if not failed:
        out += ["None.", ""]
    else:
        out += ["Replay one with `FAULT_SEED=<seed> .venv/bin/pytest tests/faults -k <scenario>`.", ""]
        out += [table(["scenario", "seed", "timings", "what failed"],
                      [[n, str(o.seed), json.dumps(o.params).replace("|", "/"), "; ".join(o.failures()).replace("|", "/")]
                       for n, o in failed]), ""]
    return "\n".join(out)


if __name__ == "__main__":
    main()
