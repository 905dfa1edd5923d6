"""The supervisor check against a real supervisord."""
from __future__ import annotations

import pytest

from agent.modules.checks.supervisor import SupervisorCheck

params = SupervisorCheck.Params.model_validate


@pytest.mark.parametrize(
    ("program", "state", "running", "has_pid"),
    [
        ("bot", "RUNNING", True, True),
        ("idle", "STOPPED", False, False),
        ("crash", "EXITED", False, False),
        ("broken", "FATAL", False, False),
    ],
)
async def test_reports_state(stack, make_ctx, program, state, running, has_pid) -> None:
    result = await SupervisorCheck().run(params({"program": program}), make_ctx(stack.url))
    assert result.error is None
    assert result.value == state == result.facts["state"]
    assert result.facts["running"] is running
    assert (result.facts["pid"] is not None) is has_pid
    assert (result.facts["uptime_s"] is not None) is has_pid
    assert set(result.facts) == set(SupervisorCheck.facts)


async def test_exit_status_and_spawn_error(stack, make_ctx) -> None:
    crash = await SupervisorCheck().run(params({"program": "crash"}), make_ctx(stack.url))
    assert crash.facts["exitstatus"] == 3
    broken = await SupervisorCheck().run(params({"program": "broken"}), make_ctx(stack.url))
    assert broken.facts["spawnerr"]


async def test_running_pid_is_the_real_pid(stack, make_ctx) -> None:
    result = await SupervisorCheck().run(params({"program": "bot"}), make_ctx(stack.url))
    assert result.facts["pid"] == stack.info("bot")["pid"]


async def test_url_param_overrides_host_var(stack, make_ctx) -> None:
    result = await SupervisorCheck().run(params({"program": "bot", "url": stack.url}), make_ctx(None))
    assert result.value == "RUNNING"


async def test_unknown_program(stack, make_ctx) -> None:
    result = await SupervisorCheck().run(params({"program": "nope"}), make_ctx(stack.url))
    assert result.error == "no such program 'nope'"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("unix:///tmp/bw-no-such-dir/s.sock", "cannot reach supervisord at unix:///tmp/bw-no-such-dir/s.sock"),
        (None, "no supervisord URL for host 'box1'"),
    ],
)
async def test_unreachable_or_unconfigured(make_ctx, url, expected) -> None:
    result = await SupervisorCheck().run(params({"program": "bot"}), make_ctx(url))
    assert result.error is not None and result.error.startswith(expected)


async def test_stopped_supervisord_is_an_error(stack, make_ctx) -> None:
    url = stack.url
    stack.stop()
    result = await SupervisorCheck().run(params({"program": "bot"}), make_ctx(url))
    assert result.error is not None and "cannot reach supervisord" in result.error


def test_url_must_be_a_supervisor_url() -> None:
    with pytest.raises(ValueError, match="not a supervisord URL"):
        params({"program": "bot", "url": "/var/supervisor.sock"})


def test_unknown_param_rejected() -> None:
    with pytest.raises(ValueError):
        params({"program": "bot", "prgram": "x"})
