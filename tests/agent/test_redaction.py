"""Redaction: how secrets are learnt (env reads, target URLs, secret parameters) and where they
are removed (log lines as formatted, tracebacks included; every store column; audit views)."""
from __future__ import annotations

import io
import logging
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field

from agent.core.redaction import MASK, NOT_SECRETS, Redactor, install, uninstall, url_secrets
from agent.core.states import State
from agent.modules.base import Params, Secret, audit_view, secret_values
from agent.modules.registry import default_registry
from agent.playbook import Templating, bind_task_params
from agent.playbook.models import Task
from agent.store import Store
from agent.store.records import CheckStateRecord

SECRET = "s3cr3t-value-0042"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


# -- logs: format-time redaction ---------------------------------------------------------------
def _logger_with(handler: logging.Handler) -> tuple[logging.Logger, logging.Logger]:
    root = logging.getLogger("redaction-test-root")
    root.propagate = False
    root.handlers = [handler]
    root.setLevel(logging.DEBUG)
    return root, logging.getLogger("redaction-test-root.child")


class _OwnTraceback(logging.Formatter):
    """A formatter that renders ``exc_info`` itself, ignoring any cached ``exc_text``."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        return text


@pytest.mark.parametrize("formatter", [logging.Formatter("%(levelname)s %(name)s: %(message)s"), _OwnTraceback()])
def test_log_lines_and_tracebacks_of_child_loggers_are_redacted_as_formatted(formatter: logging.Formatter) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root, child = _logger_with(handler)
    flt = install(root, Redactor([SECRET]))
    try:
        try:
            raise RuntimeError(f"cannot reach https://hooks.example/{SECRET}")
        except RuntimeError:
            child.exception("delivery failed for %s", SECRET)
        child.warning("stack", stack_info=True, extra={"secret_field": SECRET})
    finally:
        uninstall(root, flt)
    text = out.getvalue()
    assert SECRET not in text, text
    assert "RuntimeError: cannot reach https://hooks.example/***" in text
    assert "delivery failed for ***" in text
    assert handler.formatter is formatter  # uninstall put the handler's own formatter back


def test_uninstall_of_one_agent_keeps_the_other_agents_redaction() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root, child = _logger_with(handler)
    first, second = install(root, Redactor(["first-secret"])), install(root, Redactor(["second-secret"]))
    uninstall(root, first)
    child.warning("first-secret second-secret")
    uninstall(root, second)
    assert out.getvalue() == "first-secret ***\n"


# -- the redactor itself -----------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(secret=st.text(min_size=4, max_size=40).filter(lambda s: s.strip() and s.lower() not in NOT_SECRETS),
       before=st.text(max_size=30), after=st.text(max_size=30))
def test_a_known_secret_never_survives_redaction(secret: str, before: str, after: str) -> None:
    r = Redactor([secret])
    assert secret not in r.redact(before + secret + after)


def test_short_values_and_flags_are_not_secrets_but_url_parts_are() -> None:
    r = Redactor(["abc", "true", "OFF"])
    assert r.redact("abc true OFF") == "abc true OFF"
    r.add(url_secrets("https://hooks.slack.com/services/T0000/B0000000/XXXXXXXXXXXXXXXXXXXXXXXX"))
    assert r.redact("posting to B0000000 failed") == "posting to *** failed"
    assert r.redact_data({"a": ["x B0000000"], "B0000000": 1}) == {"a": ["x ***"], MASK: 1}


# -- how secrets are learnt --------------------------------------------------------------------
def test_every_env_value_a_template_reads_is_a_secret_whatever_its_name() -> None:
    tpl = Templating(None, env={"SMTP_PASS": "hunter2hunter2", "HARMLESS_NAME": "relay.example:2525"})
    assert tpl.redact("hunter2hunter2 relay.example:2525") == "*** relay.example:2525"  # *PASS*: by its name
    tpl.render_str("{{ env.HARMLESS_NAME }}", {})
    assert tpl.redact("via relay.example:2525") == "via ***"
    assert tpl.env_names("{{ env.A | default('') }}{{ env['B'] }}{{ env.get('C') }}") == {"A", "B", "C"}


class _Params(Params):
    headers: Annotated[dict[str, str], Secret()] = Field(default_factory=dict, description="h")
    dsn: Annotated[str, Secret("url")] = Field("postgresql://ops:dsn-password@db/x", description="d")
    token_env: Annotated[str | None, Secret("env_name")] = Field(None, description="t")
    plain: str = Field("visible", description="p")


def test_secret_fields_are_registered_and_masked_in_the_audit_view(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTL_VARIABLE", "ctl-token-value")
    p = _Params(headers={"Authorization": "Bearer abcdefgh12345"}, token_env="CTL_VARIABLE")
    assert secret_values(p) >= {"Bearer abcdefgh12345", "abcdefgh12345", "dsn-password", "ctl-token-value"}
    view = audit_view(p)
    assert view["headers"] == {"Authorization": "***"} and view["plain"] == "visible"


def test_binding_a_task_registers_its_secret_parameters_before_the_module_runs() -> None:
    tpl = Templating(None, env={})
    task = Task.model_validate({"name": "t", "module": "command",
                               "params": {"argv": ["true"], "env": {"X": "literal-env-secret"}}})
    bind_task_params(task, default_registry(), tpl, {})
    assert tpl.redact("echo literal-env-secret") == "echo ***"


# -- the store: every column, ORM and Core writes alike ----------------------------------------
def _write_everything(store: Store, text: str) -> None:
    store.record_result(play="p", host="h", check="c", state=State.CRITICAL, observed_at=T0, value=text, error=text)
    store.record_results([dict(play="p", host="h", check="c", state=State.CRITICAL, observed_at=T0, value=text,
                               error=text)])
    store.save_check_state(CheckStateRecord(play="p", host="h", check="c", hard_state=State.CRITICAL,
                                            soft_state=State.CRITICAL, since=T0, last_value=text, last_error=text))
    iid = store.open_incident(play="p", host="h", check="c", state=State.CRITICAL, severity="critical",
                              opened_at=T0, summary=text)
    store.update_incident(iid, summary=f"again {text}")
    store.set_incident_lifecycle(iid, suppressed=text)
    store.acknowledge_incident(iid, by="ana", at=T0, comment=text)
    nid = store.enqueue_notification(kind="alert", target="t", title=text, body=text, dedup_key="k", now=T0)
    assert nid is not None
    store.mark_failed(nid, f"POST failed: {text}", T0)
    store.record_action_run(play="p", host="h", task="t", module="command", actor="agent", started_at=T0,
                            params={"env": {"K": text}, "argv": [text]}, reason=text, msg=text)
    store.add_event("x", "p/h/c", iid, text, {"why": text, text: [text]})
    store.add_silence(matchers={"host": "h"}, starts_at=T0, ends_at=T0, reason=text, created_by="ana")


@pytest.mark.parametrize("redacting", [True, False])
def test_no_store_write_puts_a_known_secret_in_the_file(tmp_path: Path, redacting: bool) -> None:
    path = tmp_path / "agent.db"
    store = Store(f"sqlite:///{path}", redact=Redactor([SECRET]).redact if redacting else None)
    store.migrate()
    try:
        _write_everything(store, f"leaked {SECRET}!")
        runs = store.action_runs()
    finally:
        store.close()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    if redacting:
        assert SECRET.encode() not in data
        assert runs[0].params == {"env": {"K": "leaked ***!"}, "argv": ["leaked ***!"]}
    else:  # the control: the same writes do carry it without a redactor
        assert SECRET.encode() in data


def test_audit_through_the_play_runner_masks_secret_fields_and_learnt_values() -> None:
    import asyncio

    from agent.engine.play_runner import PlayRunner, TaskOutcome
    from agent.modules.base import HostContext

    tpl = Templating(None, env={"RELAY": "relay-pass-9876"})
    audited: list[tuple[TaskOutcome, dict[str, Any]]] = []
    printed: list[TaskOutcome] = []
    play = type("Play", (), {"tasks": [Task.model_validate({
        "name": "echo", "module": "command", "params": {"argv": ["sh", "-c", "echo $K {{ env.RELAY }}; exit 3"],
                                                        "env": {"K": "cmd-env-secret"}}})],
        "vars": {}, "handlers": []})()
    runner = PlayRunner(default_registry(), tpl, on_outcome=printed.append,
                        audit=lambda o, s, f, p: audited.append((o, dict(p))))
    recap = asyncio.run(runner.run(play, [HostContext("h")]))
    [(outcome, params)] = audited
    assert params["env"] == {"K": "***"} and params["argv"][2] == "echo $K ***; exit 3"
    assert outcome.data["stdout"] == "*** ***\n" and printed == [outcome] and recap.outcomes == [outcome]
