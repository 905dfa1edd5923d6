"""``agent validate [PATH...]``: check playbooks and the inventory; print every problem.

Exit 0 when everything is valid (warnings, printed the same way, do not change that), 1 when
a problem was found (each printed once, sorted by file and line), 2 for a command-line mistake. A playbook file given on its own is validated
with the other playbooks of its directory (or, when it has none, the configured ``playbooks/``)
loaded for cross-references, as ``agent run`` would see them; their own problems are not shown.
A file of that directory that is certainly no playbook (the inventory, the stack settings, any
YAML mapping with neither ``checks:`` nor ``tasks:``...) is not one of them: a new playbook
written beside ``inventory.yaml`` and validated there was checked against the inventory read as
a playbook, and every ``depends_on`` and ``budget.then`` it wrote was "no check named" (brk15).
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import typer
import yaml

from agent.cli import options
from agent.cli.common import console, err_console, templates_dir, use_stack_secrets
from agent.playbook.diagnostics import Diagnostic, order
from agent.playbook.files import real_path
from botwarden.errors import ExitCode


def validate(
    paths: options.PlaybookPaths = None,
    inventory: options.InventoryIfGiven = None,
) -> None:
    """Validate playbooks and inventory. Exit 0 when valid, 1 with every error printed."""
    from agent.modules.registry import default_registry
    from agent.playbook import load_config
    from agent.playbook.files import is_dir, is_file, playbook_files, sibling_playbooks

    inventory_path = inventory if inventory is not None else options.DEFAULT_INVENTORY
    default_dir = real_path(inventory_path).parent / "playbooks"
    targets = list(paths) if paths else [default_dir]
    given_templates = [p for p in targets if Path(p).suffix.lower() in TEMPLATE_SUFFIXES]
    if given_templates:  # read as a playbook, a template was 'YAML syntax error' whatever it held
        targets = [p for p in targets if p not in given_templates] or [default_dir]
        for path in given_templates:
            err_console.print(f"{path}: a template: checked with the configuration that uses it (the inventory "
                              f"and {', '.join(map(str, targets))})", markup=False)
    context: list[Path] = []
    for path in targets:
        if is_file(path):
            siblings = [p for p in sibling_playbooks(path) if _may_be_a_playbook(p, inventory_path)]
            context += siblings or (playbook_files([default_dir])[0] if is_dir(default_dir) else [])
    use_stack_secrets(inventory_path)  # the same view as `agent stack up` (the same-key rule included)
    result = load_config(inventory_path, targets, default_registry(), env=dict(os.environ),
                         templates_dir=templates_dir(inventory_path), context_paths=context,
                         inventory_required=inventory is not None)
    for path in given_templates:  # not there, or named by nothing loaded: it was never read
        if not is_file(path):
            result.diagnostics.append(Diagnostic(str(path), 0, 0, "no such file (a template given to check)"))
        elif not any(real_path(Path(d.file)) == real_path(path) for d in result.diagnostics):
            result.diagnostics.extend(_template_syntax(path))
    if not paths:  # the playbooks were looked for beside the inventory: say so where there are none
        implied = str(default_dir)
        result.diagnostics[:] = [
            replace(d, hint=f"without arguments the playbooks are read from playbooks/ beside the inventory "
                            f"({inventory_path}); name the playbook files or their directory as arguments")
            if d.file == implied and d.line == 0 and d.hint is None else d for d in result.diagnostics]
    for d in sorted([*result.diagnostics, *result.warnings], key=order):
        err_console.print(str(d), markup=False)
    warned = f", {len(result.warnings)} warning(s)" if result.warnings else ""
    if result.diagnostics:
        err_console.print(f"{len(result.diagnostics)} error(s){warned}", style="bold red")
        raise typer.Exit(ExitCode.FAILED)
    cfg = result.config
    assert cfg is not None
    console.print(
        f"ok: {len(cfg.playbooks)} playbook(s), {len(cfg.bound_checks)} check(s) on "
        f"{len(cfg.hosts)} host(s){warned}"
    )


def _template_syntax(path: Path) -> list[Diagnostic]:
    """The Jinja2 syntax error of the template file ``path``, at its line (none when it compiles):
    a template no part of the configuration names is read by nothing else."""
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from botwarden.safe_files import FileProblem, read_file

    try:
        text = read_file(path).decode("utf-8")
        ImmutableSandboxedEnvironment().parse(text)
    except (FileProblem, UnicodeDecodeError) as exc:
        return [Diagnostic(str(path), 0, 0, f"cannot read it: {exc}")]
    except TemplateSyntaxError as exc:
        lines = text.splitlines()
        shown = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else None
        return [Diagnostic(str(path), exc.lineno, 1, f"Jinja2 syntax error: {exc.message}", source_line=shown)]
    except RecursionError:
        return [Diagnostic(str(path), 0, 0, "the template is too deeply nested to read")]
    return []


TEMPLATE_SUFFIXES = (".j2", ".jinja", ".jinja2")
"""A path given with one of these is a template: validated with the configuration, not as a playbook."""
_PLAYBOOK_KEYS = frozenset({"checks", "tasks", "remediations", "handlers"})


def _may_be_a_playbook(path: Path, inventory: Path) -> bool:
    """False for a file certainly not a playbook: the inventory, or YAML that reads as a mapping
    with none of a playbook's sections (the stack settings, a compose file). A file that cannot
    be read or parsed may be a broken playbook: kept (its problems are not shown as context)."""
    from botwarden import safe_yaml
    from botwarden.safe_files import FileProblem, read_file

    if real_path(path) == real_path(inventory):
        return False
    try:
        data = safe_yaml.load(read_file(path).decode("utf-8"))
    except (FileProblem, UnicodeDecodeError, yaml.YAMLError):
        return True
    return not isinstance(data, dict) or bool(_PLAYBOOK_KEYS & set(data))
