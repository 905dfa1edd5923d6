"""The layers point one way (docs/architecture.md).

Every import of every module of ``agent``, ``bot`` and ``botwarden`` is read from its source
(lazy imports inside functions and imports under ``TYPE_CHECKING`` included) and mapped to the
unit it belongs to (a package directly under ``agent``, a top-level module of ``agent``,
``bot``, ``botwarden``). The test fails on an import that points up a layer, on a circle between
units, on any import of ``agent`` from ``bot``, and on a unit nobody placed in a layer.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

LAYERS: Mapping[str, int] = {
    # neutral: what the agent and the bot share (settings, error classes); imports neither
    "botwarden": 0,
    "agent": 0,  # the package's __init__ (a version string)
    # the bottom of the agent: states, severities, durations, secret shapes
    "agent.core": 1,
    # persistence and the clients of libraries (HTTP, apprise, Jinja2 messages, supervisord stack)
    "agent.store": 2, "agent.http": 2, "agent.apprise_plugins": 2, "agent.rendering": 2, "agent.stack": 2,
    "agent.exposition": 2,  # Prometheus text: only the wanted lines, parsed off the event loop
    # report computation, then the check and action modules
    "agent.reports": 3,
    "agent.modules": 4,
    # the playbook language (validates against the modules' typed parameters)
    "agent.playbook": 5,
    # the alert's life: routing, grouping, silences, inhibition, escalation, digest, outbox
    "agent.notify": 6,
    # the agent: scheduler, result pipeline, remediator, watchers
    "agent.engine": 7,
    # what operators touch
    "agent.cli": 8, "agent.web": 8,
}
"""Layer of each unit: a unit may import units of its own layer or below, never above."""

BOT_MAY_IMPORT = {"bot", "botwarden"}


def unit_of(module: str, root: Path = REPO) -> str | None:
    """The unit a dotted module name belongs to (None: not the project's)."""
    parts = module.split(".")
    if parts[0] in ("bot", "botwarden"):
        return parts[0]
    if parts[0] != "agent":
        return None
    if len(parts) == 1:
        return "agent"
    return f"agent.{parts[1]}"


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path) -> Iterator[tuple[str, int]]:
    """Every module ``path`` imports (absolute dotted names) and the line of the import."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield module, node.lineno
            for alias in node.names:  # `from agent import stack` imports the unit agent.stack
                sub = root.joinpath(*module.split("."), alias.name)
                if sub.is_dir() or sub.with_suffix(".py").is_file():
                    yield f"{module}.{alias.name}", node.lineno


def violations(root: Path, layers: Mapping[str, int] = LAYERS) -> list[str]:
    """What breaks the layering in the tree at ``root`` (empty: nothing)."""
    problems: list[str] = []
    edges: dict[str, set[str]] = defaultdict(set)
    files = [p for top in ("agent", "bot", "botwarden") for p in sorted((root / top).rglob("*.py"))]
    for path in files:
        src = unit_of(_module_name(path, root), root)
        assert src is not None
        where = path.relative_to(root)
        for module, line in imports_of(path, root):
            dst = unit_of(module, root)
            if dst is None or dst == src:
                continue
            if src == "bot" or src == "botwarden":
                allowed = BOT_MAY_IMPORT if src == "bot" else {"botwarden"}
                if dst not in allowed:
                    problems.append(f"{where}:{line}: {src} imports {module} ({src} may import only "
                                    f"{', '.join(sorted(allowed))})")
                continue
            if src not in layers or dst not in layers:
                problems.append(f"{where}:{line}: {src if src not in layers else dst} is in no layer "
                                "(add it to LAYERS in tests/test_layers.py and docs/architecture.md)")
                continue
            if layers[dst] > layers[src]:
                problems.append(f"{where}:{line}: {src} (layer {layers[src]}) imports {module} "
                                f"(layer {layers[dst]}): an import pointing up")
            edges[src].add(dst)
    problems += [f"circle between packages: {' -> '.join(c)}" for c in _cycles(edges)]
    return problems


def _cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_the_project_s_imports_point_down_only() -> None:
    assert violations(REPO) == []


def _tree(tmp: Path, files: Mapping[str, str]) -> Path:
    for top in ("agent", "bot", "botwarden"):
        (tmp / top).mkdir(exist_ok=True)
        (tmp / top / "__init__.py").touch()
    for rel, text in files.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(tmp).parents:
            if parent != Path(".") and not (tmp / parent / "__init__.py").exists():
                (tmp / parent / "__init__.py").touch()
        path.write_text(text)
    return tmp


def test_the_checker_finds_an_upward_import_a_circle_and_the_bot_importing_the_agent(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "agent/store/rows.py": "def f():\n    from agent.engine import loop  # lazy, still counted\n",
        "agent/engine/loop.py": "from agent.store import rows\n",
        "agent/notify/a.py": "from ..engine import loop\n",  # relative, pointing up
        "agent/engine/b.py": "from agent.notify import a\n",
        "bot/run.py": "from agent.core import states\n",
        "agent/newthing/x.py": "import agent.core\n",
    })
    found = "\n".join(violations(root))
    assert "agent/store/rows.py:2: agent.store (layer 2) imports agent.engine (layer 7)" in found
    assert "agent/notify/a.py:1: agent.notify (layer 6) imports agent.engine" in found
    assert "circle between packages: agent.engine -> agent.store -> agent.engine" in found
    assert "bot/run.py:1: bot imports agent.core" in found
    assert "agent.newthing is in no layer" in found
    assert "agent/engine/b.py" not in found  # engine -> notify points down
