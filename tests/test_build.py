"""The build: requirements.lock pins what pyproject.toml asks for, and the venv is the lock.

`make run` and `make test` install exactly requirements.lock (``uv pip sync --require-hashes``);
pyproject.toml keeps the compatible ranges people installing the package get. These tests fail
when the two drift apart (a dependency added to pyproject.toml without `make lock`, a lock
pinning a release the ranges exclude) or when the running environment is not the lock.
"""
from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$")


def lock_pins(text: str) -> dict[str, list[tuple[str, str | None]]]:
    """``name -> [(version, marker or None)]`` of a hash-pinned requirements file."""
    pins: dict[str, list[tuple[str, str | None]]] = {}
    for line in text.splitlines():
        m = _PIN.match(line)
        if m:
            pins.setdefault(canonicalize_name(m.group(1)), []).append((m.group(2), m.group(3)))
    return pins


def project_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in [*project["dependencies"], *extras["test"], *extras["dev"]]]


def test_every_requirement_of_pyproject_is_pinned_in_the_lock_inside_its_range() -> None:
    pins = lock_pins((REPO / "requirements.lock").read_text())
    problems = []
    for req in project_requirements():
        versions = pins.get(canonicalize_name(req.name))
        if not versions:
            problems.append(f"{req.name}: not in requirements.lock (run `make lock`)")
            continue
        for version, _marker in versions:
            if not req.specifier.contains(version, prereleases=True):
                problems.append(f"{req.name}=={version} is outside {req.specifier} (run `make lock`)")
    assert problems == []


def test_every_pin_of_the_lock_carries_hashes() -> None:
    text = (REPO / "requirements.lock").read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    unhashed = [b.split(" ", 1)[0] for b in blocks if "==" in b.split("\n", 1)[0] and "--hash=sha256:" not in b]
    assert unhashed == []


def test_the_known_broken_pyyaml_is_excluded() -> None:
    pyyaml = next(r for r in project_requirements() if canonicalize_name(r.name) == "pyyaml")
    assert not pyyaml.specifier.contains("6.0.4"), "PyYAML 6.0.4 breaks merge keys (yaml/pyyaml#953)"


def test_the_environment_running_the_suite_is_the_lock() -> None:
    """`make test` runs in the venv synced from the lock: every pinned package (for this
    Python and platform) is installed at its pinned version."""
    if not (REPO / ".venv" / ".installed").exists():
        pytest.skip("not running in the venv `make` builds")
    pins = lock_pins((REPO / "requirements.lock").read_text())
    wrong = []
    for name, versions in pins.items():
        applicable = [v for v, marker in versions if marker is None or _marker_holds(marker)]
        if not applicable:
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name}: not installed")
            continue
        if installed not in applicable:
            wrong.append(f"{name}: {installed} installed, the lock says {applicable}")
    assert wrong == []


def _marker_holds(marker: str) -> bool:
    from packaging.markers import Marker

    return Marker(marker).evaluate()


def test_xdist_groups_put_their_tests_on_one_worker(tmp_path: Path) -> None:
    """``make test`` runs ``--dist loadgroup``: the tests of one ``xdist_group`` (those sharing one
    stack) must run on one worker. pytest 9.2 with pytest-xdist 3.8 silently ignores the mark
    (pytest-dev/pytest-xdist#1386): each worker then starts the shared stack again."""
    import subprocess
    import sys

    (tmp_path / "test_grouped.py").write_text(
        "import os, pytest\n"
        "@pytest.mark.parametrize('i', range(6))\n"
        "@pytest.mark.xdist_group('shared')\n"
        "def test_grouped(i):\n"
        "    print('WORKER', os.environ['PYTEST_XDIST_WORKER'])\n"
        "@pytest.mark.parametrize('i', range(6))\n"
        "def test_free(i):\n"
        "    pass\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist",
                          "loadgroup", "-rP", "-q", "test_grouped.py"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    workers = re.findall(r"^WORKER (gw\d+)$", run.stdout, re.MULTILINE)
    assert len(workers) == 6 and len(set(workers)) == 1, run.stdout

