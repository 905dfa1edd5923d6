"""The supervisor check against a real supervisord."""
from __future__ import annotations

import pytest

from agent.modules.checks.supervisor import SupervisorCheck
from tests.support.supervisord import python_command

params = SupervisorCheck.Params.model_validate


@pytest.mark.parametrize(
    ("program", "state", "running", "has_pid", "ended"),
    [
        ("bot", "RUNNING", True, True, False),
        ("idle", "STOPPED", False, False, False),  # a stop is deliberate, not a failure that happened
        ("crash", "EXITED", False, False, True),
        ("broken", "FATAL", False, False, True),
    ],
)
async def test_reports_state(stack, make_ctx, program, state, running, has_pid, ended) -> None:
    result = await SupervisorCheck().run(params({"program": program}), make_ctx(stack.url))
    assert result.error is None
    assert result.value == state == result.facts["state"]
    assert result.facts["running"] is running
    assert (result.facts["pid"] is not None) is has_pid
    assert (result.facts["uptime_s"] is not None) is has_pid
    assert set(result.facts) == set(SupervisorCheck.facts)
    # The occurrence names a process that ended (its start time), so a new one is a new crash.
    assert result.occurrence == (str(stack.info(program)["start"]) if ended else None)


async def test_a_process_still_starting_is_no_occurrence(supervisord_factory, make_ctx) -> None:
    """A restart under way (the agent's own) is not a new failure; its exit later must be one."""
    sup = supervisord_factory({"starting": {"command": python_command(), "startsecs": 60}})
    sup.wait_for_state("starting", "STARTING")
    result = await SupervisorCheck().run(params({"program": "starting"}), make_ctx(sup.url))
    assert result.value == "STARTING"
    assert result.facts["started_at"]
    assert result.occurrence is None


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
