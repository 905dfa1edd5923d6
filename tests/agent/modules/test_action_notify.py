"""The notify action drives the Notifier protocol (a recording implementation here; the real
Notifications class is tested in tests/agent/notify against real receivers)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from agent.modules.actions.notify import NotifyAction
from agent.rendering import SandboxedTemplates


class RecordingNotifier:
    """Implements agent.modules.base.Notifier: records calls, queues only outside check mode."""

    def __init__(self, templates_dir=None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.queued: list[dict[str, Any]] = []
        if templates_dir is not None:
            self.templating = SandboxedTemplates(templates_dir)

    async def notify(self, *, route, title, body, severity, host, tags=(), check_mode=False,
                     once=None) -> Mapping[str, Any]:
        call = dict(route=route, title=title, body=body, severity=severity, host=host, tags=tags,
                    check_mode=check_mode)
        self.calls.append(call)
        if route == "nowhere":
            return {"queued": [], "targets": [], "error": "unknown route 'nowhere'"}
        if check_mode:
            return {"queued": [], "targets": ["json://x"], "would_send": ["json://x"]}
        self.queued.append(call)
        return {"queued": [len(self.queued)], "targets": ["json://x"]}


def params(**kw):
    return NotifyAction.Params.model_validate(kw)


async def test_queues_a_message(make_ctx) -> None:
    notifier = RecordingNotifier()
    result = await NotifyAction().run(
        params(route="critical", title="halted", body="bot halted", severity="critical", tags=["bot"]),
        make_ctx(notifier=notifier),
    )
    assert (result.changed, result.failed) == (True, False)
    assert result.msg == "notified route critical (1 target(s)): halted"
    assert result.data["queued"] == [1]
    assert notifier.queued == [dict(route="critical", title="halted", body="bot halted", severity="critical",
                                    host="box1", tags=("bot",), check_mode=False)]


async def test_check_mode_queues_nothing(make_ctx) -> None:
    notifier = RecordingNotifier()
    result = await NotifyAction().run(params(title="t", body="b"), make_ctx(notifier=notifier, check_mode=True))
    assert result.changed is True and result.msg.startswith("would notify warning routes")
    assert notifier.calls[0]["check_mode"] is True
    assert notifier.queued == []


async def test_template_rendered_with_play_vars(make_ctx, tmp_path) -> None:
    (tmp_path / "emergency.md.j2").write_text("EMERGENCY on {{ host }}: {{ bot.program }} ({{ severity }})")
    notifier = RecordingNotifier(templates_dir=tmp_path)
    result = await NotifyAction().run(
        params(title="t", template="emergency.md.j2", severity="critical"),
        make_ctx(notifier=notifier, template_vars={"bot": {"program": "bot"}}),
    )
    assert result.failed is False
    assert notifier.queued[0]["body"] == "EMERGENCY on box1: bot (critical)"


async def test_broken_template_still_sends(make_ctx, tmp_path) -> None:
    notifier = RecordingNotifier(templates_dir=tmp_path)
    result = await NotifyAction().run(params(title="t", template="missing.md.j2"), make_ctx(notifier=notifier))
    assert result.failed is False
    assert "title: t" in notifier.queued[0]["body"]


@pytest.mark.parametrize(
    ("notifier", "msg"),
    [(None, "notifications are not configured"), (RecordingNotifier(), "cannot notify: unknown route 'nowhere'")],
)
async def test_failures(make_ctx, notifier, msg) -> None:
    result = await NotifyAction().run(params(route="nowhere", title="t", body="b"), make_ctx(notifier=notifier))
    assert result.failed is True and result.msg == msg


@pytest.mark.parametrize(
    "kw",
    [{"title": "t"}, {"title": "t", "body": "b", "template": "x.j2"}, {"title": "t", "template": "../etc/passwd"},
     {"title": "t", "body": "b", "severity": "fatal"}],
)
def test_bad_params(kw) -> None:
    with pytest.raises(ValueError):
        params(**kw)


class _RecordingRenderer:
    def __init__(self) -> None:
        self.given: set[str] = set()

    def render_template(self, name: str, vars: Mapping[str, Any]) -> str:
        self.given = set(vars)
        return "rendered"


async def test_a_template_is_given_the_step_vars_and_exactly_the_names_validate_allows(make_ctx) -> None:
    """``agent validate`` checks a notify template against the step's variables plus
    ``NotifyAction.template_vars``: the action must give those, and no others."""
    notifier = RecordingNotifier()
    notifier.templating = _RecordingRenderer()  # type: ignore[attr-defined]
    ctx = make_ctx(notifier=notifier, template_vars={"play_var": 1, "bot": {}})
    await NotifyAction().run(params(title="t", template="emergency.md.j2"), ctx)
    assert notifier.templating.given == {"play_var", "bot"} | NotifyAction.template_vars  # type: ignore[attr-defined]
