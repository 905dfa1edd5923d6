"""What every corpus of broken files asserts: one mistake per file, one diagnostic, at the line
and column to change, saying what is wrong and, where one is obvious, what to write instead."""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple


class Case(NamedTuple):
    file: str
    line: int
    column: int
    message: str
    hint: str | None = None
    reported_in: str | None = None  # another file the problem lives in (the settings file)


def the_one_diagnostic(result: Any, case: Case) -> Any:
    """The one diagnostic of ``result`` (a refused load), checked against ``case``: where it is,
    what it says, its hint, and its rendered form (``file:line:col: error: ...`` and a caret
    under the column on its third line)."""
    assert result.config is None
    assert len(result.diagnostics) == 1, "\n".join(map(str, result.diagnostics))
    diag = result.diagnostics[0]
    assert (Path(diag.file).name, diag.line, diag.column) == (case.reported_in or case.file, case.line,
                                                              case.column), str(diag)
    assert case.message in diag.message, str(diag)
    if case.hint is not None:
        assert diag.hint is not None and case.hint in diag.hint, str(diag)
    lines = str(diag).split("\n")
    assert lines[0].startswith(f"{diag.file}:{case.line}:{case.column}: error: ")
    assert lines[2] == "  " + " " * (case.column - 1) + "^"
    return diag
