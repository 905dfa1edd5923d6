"""Names that hold an invisible character (issue 15, F10).

``c1`` and ``c1<U+200B>`` (a zero-width space) are two check names that look the same: one
silently replaces the other in ``depends_on``, a silence or ``agent ack``. A byte order mark, a
zero-width joiner, a bidirectional control (Unicode category Cf) or a look-alike space in a
name, a mapping key (host, group, remediation, target names) or a reference to one is an error
at its position. Free text (messages, descriptions, templates) may hold them (an emoji sequence
joins with U+200D) and is not judged.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

from agent.playbook.diagnostics import Diagnostic
from agent.playbook.yaml_source import Path_, SourceDocument

NAME_KEYS = frozenset({"name", "hosts", "then", "to", "route", "register", "depends_on", "remediate", "targets",
                       "notify", "listen", "silence_until_ok", "tags", "check", "host", "play"})
"""Keys whose value (or each item of whose list value) is a name or a reference to one."""
_SPACES = frozenset("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000")


def invisible(text: str) -> str | None:
    """The first invisible or look-alike space character of ``text``, else None."""
    return next((c for c in text if unicodedata.category(c) == "Cf" or c in _SPACES), None)


def invisible_name_problems(doc: SourceDocument) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for path, text, at_key in _names(doc.data, ()):
        char = invisible(text)
        if char is None:
            if text and text != text.strip():
                out.append(_spaced_name(doc, path, text, at_key))
            continue
        shown = text.encode("unicode_escape").decode("ascii")
        what = unicodedata.name(char, f"U+{ord(char):04X}")
        out.append(doc.diagnostic(path, f"{'key' if at_key else 'name'} '{shown}' holds an invisible character "
                                  f"U+{ord(char):04X} ({what}): it looks like another name and is not the same",
                                  "retype the name (an editor or a copy from a web page or chat inserts such "
                                  "characters)", at_key=at_key))
    return out


def _spaced_name(doc: SourceDocument, path: Path_, text: str, at_key: bool) -> Diagnostic:
    """``'bot process '`` (quoted, so YAML kept the space) is not ``bot process``: every reference
    written without the space names nothing, and the alert names a check that looks the same."""
    where = "begins" if text[0].isspace() else "ends"
    shown = text.encode("unicode_escape").decode("ascii")
    return doc.diagnostic(path, f"{'key' if at_key else 'name'} '{shown}' {where} with a space or a line break: "
                          f"it is not the same name as {text.strip()!r}", f"write {text.strip()!r} without the "
                          "space (in quotes YAML keeps it)", at_key=at_key)


def _names(node: Any, path: Path_) -> Iterator[tuple[Path_, str, bool]]:
    if isinstance(node, dict):
        for key, value in node.items():
            here = (*path, key)
            if isinstance(key, str):
                yield here, key, True
            if key in NAME_KEYS:
                if isinstance(value, str):
                    yield here, value, False
                elif isinstance(value, list):
                    yield from (((*here, i), item, False) for i, item in enumerate(value) if isinstance(item, str))
            yield from _names(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _names(item, (*path, i))
