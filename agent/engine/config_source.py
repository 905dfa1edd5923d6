"""Where the resident agent's configuration comes from, and a cheap fingerprint to notice edits."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent.core.redaction import Redactor
from agent.modules.registry import Registry, default_registry

if TYPE_CHECKING:
    from agent.playbook.loader import LoadResult


class ConfigSource:
    """Where the configuration comes from, and a cheap fingerprint to notice changes."""

    def __init__(self, inventory: Path, playbook_paths: Sequence[Path], *, env: Mapping[str, str] | None = None,
                 registry: Registry | None = None, templates_dir: Path | None = None) -> None:
        self.inventory = inventory
        self.playbook_paths = list(playbook_paths)
        self.env = dict(env if env is not None else os.environ)
        self.registry = registry or default_registry()
        self.templates_dir = templates_dir or inventory.resolve().parent / "templates"
        self.redactor = Redactor.for_environment(self.env)
        """Every configuration loaded from here shares it: a secret learnt stays redacted after a reload."""

    def load(self) -> LoadResult:
        from agent.playbook import load_config

        return load_config(self.inventory, self.playbook_paths, self.registry, env=self.env,
                           templates_dir=self.templates_dir, redactor=self.redactor)

    def fingerprint(self) -> tuple[tuple[str, float, int], ...]:
        files: list[Path] = [self.inventory]
        for p in self.playbook_paths:
            if p.is_dir():
                files.extend(sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml")))
            else:
                files.append(p)
        if self.templates_dir.is_dir():
            files.extend(sorted(self.templates_dir.iterdir()))
        out = []
        for f in files:
            try:
                st = f.stat()
                out.append((str(f), st.st_mtime, st.st_size))
            except FileNotFoundError:
                out.append((str(f), 0.0, -1))
        return tuple(out)
