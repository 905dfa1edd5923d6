"""A remediation step reads ``check.<key>`` for the keys the engine gives it, and nothing else:
``check.fact`` (for ``check.facts``) validated, then failed the crash restart at run time."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.engine.remediator import check_vars
from agent.modules.registry import default_registry
from agent.playbook import load_config
from agent.playbook.scope import CHECK_KEYS

REPO = Path(__file__).resolve().parents[3]


def _bot_health(tmp_path: Path, old: str, new: str) -> Path:
    text = (REPO / "playbooks" / "bot-health.yaml").read_text()
    assert old in text
    path = tmp_path / "bot-health.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(("old", "new"), [("check.facts.state", "check.fact.state"),
                                          ("check.facts", "check.stat")])
def test_an_attribute_the_check_does_not_have_is_refused_at_load(tmp_path: Path, old: str, new: str) -> None:
    path = _bot_health(tmp_path, old, new)
    others = [p for p in (REPO / "playbooks").glob("*.yaml") if p.name != "bot-health.yaml"]
    result = load_config(REPO / "inventory.yaml", [*others, path], default_registry(), env={})
    problems = [d for d in result.diagnostics if Path(d.file).name == "bot-health.yaml"]
    assert problems, "validated"
    assert any(new.split(".")[1] in d.message for d in problems), "\n".join(map(str, problems))


def test_the_engine_gives_exactly_the_keys_validation_allows() -> None:
    from types import SimpleNamespace

    bc = SimpleNamespace(check=SimpleNamespace(name="c"), key="p/h/c", play=SimpleNamespace(name="p"))
    assert tuple(check_vars(bc, "CRITICAL", "OK", None)["check"]) == CHECK_KEYS  # type: ignore[arg-type]
