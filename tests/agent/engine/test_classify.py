"""classify(): expect, thresholds, value expressions and clear hysteresis on loaded playbooks."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.core.states import State
from agent.engine.evaluator import classify
from agent.modules.base import CheckResult
from agent.modules.registry import default_registry
from agent.playbook import load_config

NOW = datetime(2026, 1, 1, tzinfo=UTC)

PLAY = """
version: 1
name: p
hosts: local
schedule: {every: 10s}
vars: {limit: 80}
checks:
  - name: mem
    command: {argv: ["true"]}
    value: "stdout | float"
    warning: "> {{ limit }}"
    critical: "> 90"
    clear: "< 75"
  - name: low
    command: {argv: ["true"]}
    value: "stdout | int"
    warning: "< 50"
    critical: "< 40"
  - name: healthy
    command: {argv: ["true"]}
    expect: "rc == 0 and 'ok' in stdout"
    severity: warning
  - name: default value
    command: {argv: ["true"]}
    critical: "!= 0"
"""


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    d = tmp_path_factory.mktemp("pb")
    (d / "p.yaml").write_text(PLAY)
    res = load_config(d / "missing-inventory.yaml", [d], default_registry(), env={})
    assert not res.diagnostics, [str(x) for x in res.diagnostics]
    cfg = res.config
    return {bc.check.name: (bc, cfg.templating) for bc in cfg.bound_checks}


def _state(checks, name, previous=State.OK, **facts):
    bc, templating = checks[name]
    return classify(bc, CheckResult(facts=facts, value=facts.get("rc")), templating, previous, NOW)


@pytest.mark.parametrize("name,facts,previous,expected", [
    ("mem", {"stdout": "50"}, State.OK, State.OK),
    ("mem", {"stdout": "85"}, State.OK, State.WARNING),
    ("mem", {"stdout": "95"}, State.OK, State.CRITICAL),
    ("mem", {"stdout": "78"}, State.WARNING, State.WARNING),   # below warning, not yet < 75: hysteresis
    ("mem", {"stdout": "74"}, State.WARNING, State.OK),        # clear holds
    ("mem", {"stdout": "85"}, State.CRITICAL, State.CRITICAL),  # softening also waits for clear
    ("low", {"stdout": "45"}, State.OK, State.WARNING),
    ("low", {"stdout": "30"}, State.OK, State.CRITICAL),
    ("low", {"stdout": "60"}, State.OK, State.OK),
    ("healthy", {"rc": 0, "stdout": "all ok"}, State.OK, State.OK),
    ("healthy", {"rc": 1, "stdout": "all ok"}, State.OK, State.WARNING),
    ("default value", {"rc": 0}, State.OK, State.OK),
    ("default value", {"rc": 2}, State.OK, State.CRITICAL),
])
def test_classify(checks, name, facts, previous, expected):
    assert _state(checks, name, previous, **facts).state is expected


def test_probe_error_is_unknown_with_reason(checks):
    bc, templating = checks["mem"]
    obs = classify(bc, CheckResult.failed("timed out after 5s"), templating, State.OK, NOW)
    assert obs.state is State.UNKNOWN and obs.error == "timed out after 5s"


def test_broken_expression_is_unknown_not_a_crash(checks):
    obs = _state(checks, "mem", stdout="not a number")
    assert obs.state is State.OK and obs.value == 0.0  # Jinja's `float` filter turns text into 0.0
    obs = _state(checks, "healthy", rc=0)  # stdout missing: undefined
    assert obs.state is State.UNKNOWN and "evaluation failed" in obs.error
