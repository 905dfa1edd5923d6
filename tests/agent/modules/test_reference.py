"""The registry and the generated reference: every parameter documented and shown."""
from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import Field

from agent.core.values import Duration
from agent.modules.base import ActionModule, ActionResult, CheckModule, CheckResult, Params
from agent.modules.reference import parameters, render_reference, undocumented
from agent.modules.registry import Registry, default_registry
from botwarden.errors import ConfigError

REGISTRY = default_registry()
MODULES = [("check", m) for m in REGISTRY.checks.values()] + [("action", m) for m in REGISTRY.actions.values()]
IDS = [f"{kind}-{m.name}" for kind, m in MODULES]


def test_the_shipped_modules_are_registered() -> None:
    assert set(REGISTRY.checks) >= {"supervisor", "http", "prometheus", "process", "system", "command"}
    assert set(REGISTRY.actions) >= {"supervisor", "notify", "command"}


@pytest.mark.parametrize(("kind", "module"), MODULES, ids=IDS)
def test_every_parameter_has_a_description(kind, module) -> None:
    for name, info in module.Params.model_fields.items():
        assert info.description and info.description.strip(), f"{kind} {module.name}: {name} has no description"
    assert module.description.strip()


def test_registry_has_nothing_undocumented() -> None:
    assert undocumented(REGISTRY) == []


@pytest.mark.parametrize(("kind", "module"), [m for m in MODULES if m[0] == "check"],
                         ids=[i for i in IDS if i.startswith("check")])
def test_checks_document_facts_and_default_value(kind, module) -> None:
    assert module.facts
    assert module.default_value is None or module.default_value in module.facts


@pytest.mark.parametrize("fmt", ["markdown", "text"])
def test_reference_shows_every_module_and_parameter(fmt) -> None:
    text = render_reference(REGISTRY, fmt)
    for kind, module in MODULES:
        assert module.name in text and module.description in text
        for param in parameters(module.Params):
            assert param.name in text and param.description in text, f"{kind} {module.name}: {param.name}"
        for fact, description in getattr(module, "facts", {}).items():
            assert fact in text and description in text


def test_reference_renders_types_and_defaults() -> None:
    http = {p.name: p for p in parameters(REGISTRY.check("http").Params)}
    assert "json" in http and "json_body" not in http  # the YAML key, not the Python name
    assert (http["url"].required, http["url"].type) == (True, "string")
    assert (http["timeout"].type, http["timeout"].default) == ("duration (100ms to 1h) or none", "none")
    assert http["method"].type.startswith("one of: GET, HEAD")
    system = {p.name: p for p in parameters(REGISTRY.check("system").Params)}
    assert (system["sample_interval"].type, system["sample_interval"].default) == ("duration (10ms to 1m)", "250ms")
    assert http["max_body_bytes"].type == "integer (> 0, <= 67108864)"  # every number shows its range
    assert "check mode: supported" in render_reference(REGISTRY, "markdown")


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown reference format"):
        render_reference(REGISTRY, "html")


# -- a deliberately undocumented module proves the checks above can fail -------------------


class _SloppyParams(Params):
    documented: str = Field("x", description="has one")
    forgotten: Duration = 5.0


class _SloppyCheck(CheckModule):
    name: ClassVar[str] = "sloppy"
    Params: ClassVar[type[Params]] = _SloppyParams
    description: ClassVar[str] = "a check whose author forgot a description"
    facts: ClassVar[dict[str, str]] = {"thing": ""}

    async def run(self, params, ctx) -> CheckResult:
        return CheckResult()


def test_an_undocumented_parameter_is_caught() -> None:
    reg = Registry()
    reg.add_check(_SloppyCheck)
    assert undocumented(reg) == ["check sloppy: parameter 'forgotten'", "check sloppy: fact 'thing'"]
    with pytest.raises(AssertionError, match="forgotten has no description"):
        test_every_parameter_has_a_description("check", _SloppyCheck)


class _ClashingAction(ActionModule):
    name: ClassVar[str] = "supervisor"
    Params: ClassVar[type[Params]] = Params
    description: ClassVar[str] = "claims a taken name"

    async def run(self, params, ctx) -> ActionResult:
        return ActionResult()


def test_registry_rejects_a_name_clash() -> None:
    reg = default_registry()
    with pytest.raises(ConfigError, match="action module name clash: 'supervisor'"):
        reg.add_action(_ClashingAction)


def test_registry_rejects_unknown_modules() -> None:
    with pytest.raises(ConfigError, match="unknown check module 'htp'"):
        REGISTRY.check("htp")
