"""DependencyProbes on the shipped playbooks: a parent's recovery re-reads its failing dependents at
once, whether or not the parent's failure had turned hard (agent.engine.dependencies)."""
from __future__ import annotations

from agent.engine.dependencies import DependencyProbes
from agent.modules.registry import default_registry
from agent.playbook import load_config
from tests.support.stack import REPO

HEALTH, WEBSOCKET, LOOP_AGE = ("bot-health/local/bot health endpoint", "bot-health/local/bot websocket",
                               "bot-health/local/bot loop age")


def _probes(failing: set[str]) -> tuple[DependencyProbes, list[str], dict]:
    res = load_config(REPO / "inventory.yaml", [REPO / "playbooks"], default_registry(), env={})
    by_key = {b.key: b for b in res.config.bound_checks}
    ran: list[str] = []
    probes = DependencyProbes(checks=lambda: by_key, run_now=lambda bc: ran.append(bc.key),
                              is_problem=lambda key: key in failing)
    return probes, ran, by_key


def test_a_parent_read_healthy_after_a_failing_reading_re_reads_its_failing_dependents() -> None:
    failing = {HEALTH, WEBSOCKET}
    probes, ran, checks = _probes(failing)
    probes.on_result(checks[HEALTH], None, 1.0)  # fails once (soft: after 2)
    assert ran == []
    failing.discard(HEALTH)
    probes.on_result(checks[HEALTH], None, 1.0)  # healthy again: the websocket's reading is stale
    assert ran == [WEBSOCKET]  # the failing dependent only (the loop age check is fine)
    probes.on_result(checks[HEALTH], None, 1.0)  # healthy again and again: nothing more to re-read
    assert ran == [WEBSOCKET]


def test_a_parent_healthy_throughout_re_reads_nothing() -> None:
    probes, ran, checks = _probes({WEBSOCKET})
    for _ in range(3):
        probes.on_result(checks[HEALTH], None, 1.0)
    assert ran == []
    assert LOOP_AGE in checks


def test_a_dependent_that_cannot_read_again_runs_its_parents_again() -> None:
    """exchange-5xx: the credentials check's retry fails too; its parent runs at once, so each of
    the dependent's readings meets a fresh one of its parent's (the same fault, or its own)."""
    from agent.modules.base import CheckResult

    creds, latency = "exchange/local/exchange credentials valid", "exchange/local/exchange API latency"
    probes, ran, checks = _probes({creds})
    fails = CheckResult.failed("auth: exchange http://127.0.0.1:1 answered HTTP 500")
    probes.on_result(checks[creds], fails, 1.0)  # the first: its transition runs the parents (on_decision)
    assert ran == []
    probes.on_result(checks[creds], fails, 1.0)  # its retry fails too
    assert ran == [latency]
    # a reading that fails on a value (no error) is the check's own: nothing to ask its parents
    probes.on_result(checks[creds], CheckResult(facts={"auth_ok": False}), 1.0)
    assert ran == [latency]
