"""The command check and action with real subprocesses."""
from __future__ import annotations

import sys
import time

import psutil
import pytest

from agent.modules.actions.command import CommandAction
from agent.modules.checks.command import CommandCheck

PY = sys.executable


def check_params(**kw):
    return CommandCheck.Params.model_validate(kw)


def action_params(**kw):
    return CommandAction.Params.model_validate(kw)


@pytest.mark.parametrize(
    ("kw", "rc", "stdout", "stderr"),
    [
        ({"argv": [PY, "-c", "print('hi')"]}, 0, "hi\n", ""),
        ({"argv": [PY, "-c", "import sys; sys.stderr.write('bad'); sys.exit(4)"]}, 4, "", "bad"),
        ({"cmd": f"{PY} -c 'print(1 + 1)'"}, 0, "2\n", ""),
        ({"cmd": "echo $BW_GREETING | tr a-z A-Z", "shell": True, "env": {"BW_GREETING": "hey"}}, 0, "HEY\n", ""),
        ({"cmd": "echo $HOME | wc -l"}, 0, "$HOME | wc -l\n", ""),  # no shell unless asked: literal args
    ],
)
async def test_check_rc_and_output(make_ctx, kw, rc, stdout, stderr) -> None:
    result = await CommandCheck().run(check_params(**kw), make_ctx())
    assert result.error is None
    assert result.value == rc == result.facts["rc"]
    assert result.facts["stdout"] == stdout and result.facts["stderr"] == stderr
    assert set(result.facts) == set(CommandCheck.facts)


async def test_cwd_and_env(make_ctx, tmp_path) -> None:
    result = await CommandCheck().run(
        check_params(argv=[PY, "-c", "import os; print(os.getcwd(), os.environ['X'])"], cwd=str(tmp_path),
                     env={"X": "y"}),
        make_ctx(),
    )
    assert result.facts["stdout"].split() == [str(tmp_path), "y"]


async def test_output_is_capped_and_drained(make_ctx) -> None:
    code = "import sys; sys.stdout.write('x' * 1_000_000)"
    result = await CommandCheck().run(check_params(argv=[PY, "-c", code], max_output_bytes=10), make_ctx())
    assert result.value == 0
    assert result.facts["stdout"] == "x" * 10 and result.facts["truncated"] is True


async def test_timeout_kills_the_whole_group(make_ctx, tmp_path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    # The shell starts a grandchild and records its pid; both must die on timeout.
    cmd = f"{PY} -c 'import time; time.sleep(60)' & echo $! > {pidfile}; echo started; wait"
    result = await CommandCheck().run(check_params(cmd=cmd, shell=True, timeout="300ms"), make_ctx())
    assert result.error == "timed out after 0.3s"
    assert result.facts["rc"] is None
    assert result.facts["stdout"] == "started\n"  # output before the kill is kept
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while psutil.pid_exists(grandchild) and psutil.Process(grandchild).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "grandchild survived the timeout"
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"argv": ["/nonexistent/bw-tool"]}, "command not found: /nonexistent/bw-tool"),
        ({"argv": ["true"], "cwd": "/nonexistent/dir"}, "working directory /nonexistent/dir does not exist"),
    ],
)
async def test_cannot_start(make_ctx, kw, error) -> None:
    result = await CommandCheck().run(check_params(**kw), make_ctx())
    assert result.error == error


@pytest.mark.parametrize(
    "kw",
    [{}, {"argv": ["a"], "cmd": "a"}, {"argv": ["a"], "shell": True}, {"argv": []}, {"cmd": "x", "timeout": "x"}],
)
def test_bad_params(kw) -> None:
    with pytest.raises(ValueError):
        check_params(**kw)


def test_env_values_hidden_from_repr() -> None:
    assert "s3cret" not in repr(check_params(argv=["true"], env={"TOKEN": "s3cret"}))


# -- action -------------------------------------------------------------------------------


async def test_action_runs_and_creates(make_ctx, tmp_path) -> None:
    target = tmp_path / "done"
    p = action_params(argv=["touch", str(target)], creates=str(target))
    first = await CommandAction().run(p, make_ctx())
    assert (first.changed, first.failed) == (True, False)
    assert target.exists()
    second = await CommandAction().run(p, make_ctx())
    assert (second.changed, second.failed) == (False, False)
    assert second.msg == f"skipped, since {target} exists"


async def test_action_check_mode_changes_nothing(make_ctx, tmp_path) -> None:
    target = tmp_path / "done"
    result = await CommandAction().run(
        action_params(argv=["touch", str(target)], creates=str(target)), make_ctx(check_mode=True)
    )
    assert result.changed is True and result.failed is False
    assert result.msg == f"would run touch {target}"
    assert not target.exists()


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"argv": [PY, "-c", "raise SystemExit(3)"]}, "non-zero return code 3"),
        ({"argv": [PY, "-c", "import time; time.sleep(30)"], "timeout": "200ms"}, "timed out after 0.2s"),
        ({"argv": ["/nonexistent/bw-tool"]}, "command not found: /nonexistent/bw-tool"),
    ],
)
async def test_action_failures(make_ctx, kw, msg) -> None:
    result = await CommandAction().run(action_params(**kw), make_ctx())
    assert result.failed is True and result.msg == msg
    assert result.as_dict()["failed"] is True
