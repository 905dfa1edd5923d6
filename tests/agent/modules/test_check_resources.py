"""The process and system checks against real processes and the real host."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from agent.modules.checks.process import ProcessCheck
from agent.modules.checks.system import SystemCheck

BUSY = "while True: pass"
HOLD_64MB = "import time\nblob = bytearray(64 * 1024 * 1024)\nprint('ready', flush=True)\ntime.sleep(60)"


@pytest.fixture
def spawn() -> Iterator:
    procs: list[subprocess.Popen] = []

    def start(code: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def process_params(**kw):
    return ProcessCheck.Params.model_validate(kw)


async def test_supervisord_program(stack, make_ctx) -> None:
    result = await ProcessCheck().run(process_params(program="bot"), make_ctx(stack.url))
    assert result.error is None
    assert result.facts["pid"] == stack.info("bot")["pid"]
    assert result.facts["running"] is True
    assert result.value == result.facts["memory_percent"] > 0
    assert result.facts["rss_mb"] > 1 and result.facts["num_threads"] >= 1 and result.facts["num_fds"] >= 3
    assert result.facts["uptime_s"] >= 0
    assert set(result.facts) == set(ProcessCheck.facts)


@pytest.mark.parametrize(
    ("program", "error"),
    [("idle", "program 'idle' is not running (STOPPED)"), ("nope", "no such program 'nope'")],
)
async def test_program_without_process(stack, make_ctx, program, error) -> None:
    result = await ProcessCheck().run(process_params(program=program), make_ctx(stack.url))
    assert result.error == error
    assert result.facts["running"] is False


async def test_measures_memory_and_cpu_of_real_processes(spawn, make_ctx) -> None:
    holder = spawn(HOLD_64MB)
    assert holder.stdout.readline().strip() == "ready"
    busy = spawn(BUSY)
    held = await ProcessCheck().run(process_params(pid=holder.pid), make_ctx())
    spinning = await ProcessCheck().run(process_params(pid=busy.pid, sample_interval="500ms"), make_ctx())
    assert held.facts["rss_mb"] >= 64
    assert spinning.facts["cpu_percent"] > 20  # a busy loop owns most of a core
    assert held.facts["cpu_percent"] < spinning.facts["cpu_percent"]


async def test_pidfile(spawn, make_ctx, tmp_path) -> None:
    proc = spawn("import time; time.sleep(60)")
    pidfile = tmp_path / "bot.pid"
    pidfile.write_text(f"{proc.pid}\n")
    result = await ProcessCheck().run(process_params(pidfile=str(pidfile)), make_ctx())
    assert result.facts["pid"] == proc.pid and result.facts["running"] is True


async def test_gone_process(make_ctx) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not psutil.pid_exists(proc.pid)
    result = await ProcessCheck().run(process_params(pid=proc.pid), make_ctx())
    assert result.error == f"process {proc.pid} does not exist"
    assert result.facts["running"] is False


@pytest.mark.parametrize(
    ("content", "error"),
    [(None, "does not exist"), ("not-a-pid", "does not hold a pid"), ("", "does not hold a pid")],
)
async def test_bad_pidfile(make_ctx, tmp_path, content, error) -> None:
    pidfile = tmp_path / "x.pid"
    if content is not None:
        pidfile.write_text(content)
    result = await ProcessCheck().run(process_params(pidfile=str(pidfile)), make_ctx())
    assert result.error is not None and error in result.error


@pytest.mark.parametrize(
    "kw", [{}, {"program": "bot", "pid": 1}, {"pid": 1, "pidfile": "/x"}, {"pid": 0}]
)
def test_exactly_one_target(kw) -> None:
    with pytest.raises(ValueError):
        process_params(**kw)


async def test_system(make_ctx, tmp_path) -> None:
    result = await SystemCheck().run(SystemCheck.Params(path=str(tmp_path)), make_ctx())
    assert result.error is None
    assert result.value is None  # system checks must name their value
    assert set(result.facts) == set(SystemCheck.facts)
    for key in ("cpu_percent", "memory_percent", "disk_percent", "swap_percent"):
        assert 0 <= result.facts[key] <= 100
    assert result.facts["cpu_count"] == psutil.cpu_count()
    assert result.facts["load_per_cpu"] == pytest.approx(result.facts["load1"] / result.facts["cpu_count"], abs=1e-3)
    assert result.facts["disk_percent"] == pytest.approx(psutil.disk_usage(str(tmp_path)).percent, abs=5)


async def test_system_unknown_path(make_ctx) -> None:
    result = await SystemCheck().run(SystemCheck.Params(path="/no/such/dir"), make_ctx())
    assert result.error == "no such path '/no/such/dir' for disk usage"
