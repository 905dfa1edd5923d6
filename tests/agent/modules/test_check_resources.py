"""The process and system checks against real processes and the real host."""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from agent.modules.checks.process import ProcessCheck
from agent.modules.checks.system import SystemCheck

BUSY = "while True: pass"
TICK_S = 0.02
"""Two of the kernel's clock ticks (CPU times are counted in 10 ms ticks)."""
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
    # What the busy loop really used around the check's 0.5 s sample, read from the kernel: the
    # share of a core it gets depends on the machine's load, what the check reads must match it.
    process = psutil.Process(busy.pid)
    cpu0, wall0 = sum(process.cpu_times()[:2]), time.monotonic()
    spinning = await ProcessCheck().run(process_params(pid=busy.pid, sample_interval="500ms"), make_ctx())
    used, wall = sum(process.cpu_times()[:2]) - cpu0, time.monotonic() - wall0
    assert held.facts["rss_mb"] >= 64
    share = spinning.facts["cpu_percent"] / 100  # of one core, over the sample (at least 0.5 s of `wall`)
    assert 0 < share * 0.5 <= used + TICK_S  # never more than it used in the whole window
    # nor less: outside the sample, one thread can have used at most the wall time outside it
    assert share * wall >= used - (wall - 0.5) - TICK_S, (share, used, wall)
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
