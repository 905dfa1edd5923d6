"""Hints for the mistakes operators make most: each says what to write instead.

The rules look at what was written (the raw YAML text at the error's position, the value YAML
made of it, the expression) rather than at one message, so they apply wherever the mistake
shows up: any threshold, any time of day, any mapping written as a string.
"""
from __future__ import annotations

import difflib
import re
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from agent.playbook.diagnostics import Diagnostic
from agent.playbook.placeholders import ascii_digits, lookalike_digits
from agent.playbook.yaml_source import Path_, SourceDocument, radix_hint

_CRON = re.compile(r"^\s*\S+(\s+\S+){4}\s*$")
_DURATION = re.compile(r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*$")
_SEXAGESIMAL = re.compile(r"^(\d{1,2}:[0-5]\d(:[0-5]\d)?)\b")
_SINGLE_EQUALS = re.compile(r"(?<![=!<>])=(?![=])")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_TYPOGRAPHIC_QUOTE = re.compile("[\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u2032\u2033\u00ab\u00bb]")
_FOREIGN_OPERATORS = [  # other languages' spellings of Jinja2's operators
    (re.compile(r"===|!=="), "compare with == or != (Jinja2 has no === or !==)"),
    (re.compile(r"&&"), "write and instead of &&"),
    (re.compile(r"\|\|"), "write or instead of ||"),
    (re.compile(r"!(?!=)"), "write not instead of ! (not x, x != y)"),
    (re.compile(r"\b(AND|OR|NOT|And|Or|Not)\b"), "Jinja2's operators are written in lower case: and, or, not"),
]
_NUMBER_WITH_UNIT = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:[kKMGT]i?B|bytes?|ms|sec|secs|seconds?|mins?|minutes?|hours?|"
                               r"days?|[smhd])\b")


def expression_hint(src: str) -> str | None:
    """What to write instead of an expression that does not parse."""
    text = src.strip()
    if text.startswith("{{") and text.endswith("}}"):
        return f"an expression is written without {{{{ }}}}: {text[2:-2].strip()!r}"
    curly = _TYPOGRAPHIC_QUOTE.search(text)
    if curly:
        return (f"{curly.group()} is a typographic quote (a word processor, a chat or a web page writes them): "
                "quote text with ' or \"")
    bare = _QUOTED.sub("''", text)
    for pattern, hint in _FOREIGN_OPERATORS:
        if pattern.search(bare):
            return hint
    if _SINGLE_EQUALS.search(bare):
        return "compare with == (a single = is not a comparison)"
    if re.search(r"\d\s*%", bare):
        return "write the number without %: the value is already a percentage (e.g. '> 80')"
    unit = _NUMBER_WITH_UNIT.search(bare)
    if unit:
        return (f"write the number alone ({unit.group(1)}, not {unit.group()}): the value is compared as the "
                "number the module reports, in the unit its reference gives")
    return None


def bare_word_hint(name: str) -> str:
    return f"to compare with the text {name}, quote it: '{name}'"


def source_text(doc: SourceDocument, path: Path_) -> str:
    """The raw YAML text where the value at ``path`` starts, to the end of its line."""
    line, column = doc.position(path)
    if 0 < line <= len(doc.lines):
        return doc.lines[line - 1][max(column - 1, 0):].split(" #", 1)[0].rstrip()
    return ""


_NULL_WORD = re.compile(r"(?:~|null|Null|NULL)(?=$|[\s,\]}#])")


def empty_value(doc: SourceDocument, path: Path_, label: str, wanted: str) -> Diagnostic:
    """A key that wants ``wanted`` (a mapping, a list, text...) and has no value: ``vars:`` with
    nothing after it (its entries forgotten, or written at its own indentation instead of under
    it), or ``~``/``null`` written. pydantic says only "Input should be a valid dictionary"."""
    key = str(path[-1])
    written = source_text(doc, path)
    if _NULL_WORD.match(written):
        said = f"{label}: is {written.split()[0]}, no value, and {wanted} is needed here"
    else:
        said = (f"{label}: is empty (YAML reads '{key}:' with nothing after it as no value), and {wanted} is "
                "needed here")
    if wanted == "a mapping":
        hint = (f"write its entries indented under '{key}:' (name: value; entries written at the level of "
                f"'{key}:' are not in it), {key}: {{}} for none, or remove '{key}:'")
    elif wanted == "a list":
        hint = (f"write its items indented under '{key}:' (one '- ...' per line) or as {key}: [a, b]; {key}: [] "
                f"for none, or remove '{key}:'")
    else:
        hint = f"write its value after '{key}:', or remove '{key}:'"
    return doc.diagnostic(path, said, hint)


def value_hint(doc: SourceDocument, path: Path_, message: str, value: Any) -> str | None:
    """A hint for a value pydantic refused, from what was written there."""
    written = source_text(doc, path)
    # What is written before the value: ``key: `` in a mapping, nothing for an item of a list.
    key = path[-1] if path and isinstance(path[-1], str) else ""
    if isinstance(value, int) and not isinstance(value, bool) and (match := _SEXAGESIMAL.match(written)):
        return (f"quote it: {_at(key)}\"{match[1]}\" (unquoted, YAML reads {match[1]} as the number {value}, "
                "minutes in base 60)")
    if isinstance(value, int) and (hint := radix_hint(written.split(",")[0].split("}")[0].split("]")[0], value)):
        return hint  # 010 read as octal 8 and then refused (too small, too large): say how it was read
    if written[:1] in (">", "|") and isinstance(value, str):
        return (f"quote it: {_at(key)}\"{_spaced(written)}\" (unquoted, YAML reads a leading {written[0]} "
                "as the start of a block of text)")
    if "unknown timezone" in message and isinstance(value, str):
        near = nearest_timezone(value)
        return f"did you mean {near!r}?" if near else None
    if (isinstance(value, str) and written and written[0] not in "\"'" and exponent_read_as_text(value)
            and any(phrase in message for phrase in ("valid integer", "valid number"))):
        # unquoted 1e3 or 1.0e3 is text in YAML 1.1, so "without quotes" would not help
        return f"{exponent_read_as_text(value)}: {key}: {_expanded(value)}"
    if (hint := _scalar_hint(str(key), message, value)) is not None:
        return hint
    if not path and isinstance(value, list) and ("valid dictionary" in message or "instance of" in message):
        return ("the file is one mapping (version: 1, name: ..., hosts: ...), not a list: write its keys without "
                "the leading '- ' (one play per playbook file, unlike Ansible's list of plays)")
    if isinstance(value, str) and ("valid dictionary" in message or "instance of" in message):
        if _CRON.match(value):
            return f"write {_at(key)}{{cron: \"{value.strip()}\"}}"
        if _DURATION.match(value):
            return f"write {_at(key)}{{every: {value.strip()}}}"
        if not path:
            return ("the file is a mapping (key: value), not a single value: an env-file line NAME=value "
                    "belongs in the agent's environment, not here")
        return f"{key or 'it'} is a mapping (key: value), not a single value"
    return None


def _at(key: str) -> str:
    """``key: `` to write before a value, or nothing for an item of a list."""
    return f"{key}: " if key else ""


_EXPONENT = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+")


def exponent_read_as_text(value: str) -> str | None:
    """Why a number written with an exponent is text (``1e3``, ``1.0e3``, ``1e+3``: YAML 1.1 reads a
    float only with a dot and a signed exponent, ``1.0e+3``), or None when it is not such a text."""
    import yaml

    if not _EXPONENT.fullmatch(value.strip()):
        return None
    try:
        if not isinstance(yaml.safe_load(value), str):
            return None
    except yaml.YAMLError:
        return None
    return (f"YAML 1.1 reads {value} unquoted as text (a float needs a dot and a signed exponent, 1.0e+3); write "
            "the number in full")


def _expanded(text: str) -> str:
    """``1e3`` -> ``1000``, ``2.5e3`` -> ``2500`` (digits, no float rounding); the exponent written as
    YAML 1.1 reads it (``1.0e+400``) when too large to write out."""
    mantissa, _, exponent = text.strip().lower().partition("e")
    power = int(exponent)
    if 0 <= power <= 30:
        digits = format(Decimal(mantissa).scaleb(power).normalize(), "f")
        return digits
    sign = "" if exponent.startswith(("-", "+")) else "+"
    return f"{mantissa if '.' in mantissa else mantissa + '.0'}e{sign}{exponent}"


_EXPECTED = {"valid integer": "a whole number", "valid number": "a number", "valid boolean": "true or false",
             "valid string": "text"}


def _scalar_hint(key: str, message: str, value: Any) -> str | None:
    """What to write when a scalar has the wrong type (values are taken as written, never converted)."""
    wanted = next((kind for phrase, kind in _EXPECTED.items() if phrase in message), None)
    if wanted is None:
        return None
    if isinstance(value, bool):
        if wanted == "text":
            return f"quote it: {_at(key)}\"{str(value).lower()}\" (unquoted, YAML reads it as the boolean {str(value).lower()})"
        return f"{key or 'it'} needs {wanted}, not a boolean (YAML reads true/false, yes/no, on/off unquoted as booleans)"
    if isinstance(value, str):
        text = value.strip()
        if wanted in ("a whole number", "a number") and re.fullmatch(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?", text) \
                and lookalike_digits(text):  # U+FF15 unquoted is text too: no quotes to take away
            return (f"write it in ASCII digits: {_at(key)}{ascii_digits(text)} ({text!r} has look-alike digits of "
                    "another script, which YAML reads as text)")
        if wanted in ("a whole number", "a number") and exponent_read_as_text(text) is not None:
            # "1e1" unquoted is text too: taking the quotes away is not enough
            return (f"write the number without quotes and in full: {_at(key)}{_expanded(text)} (YAML 1.1 reads "
                    f"{text} as text, quoted or not: a float needs a dot and a signed exponent, 1.0e+3)")
        if wanted in ("a whole number", "a number") and re.fullmatch(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?", text):
            return f"write the number without quotes: {_at(key)}{text} (a quoted value is text)"
        if wanted == "true or false" and text.lower() in ("true", "false", "yes", "no", "on", "off"):
            return f"write {_at(key)}{'true' if text.lower() in ('true', 'yes', 'on') else 'false'} without quotes"
        if wanted in ("a whole number", "a number") and "{{" in text:
            return f"{key or 'it'} needs {wanted}: write the whole value as one expression, and give the variable a number"
        return f"{key or 'it'} needs {wanted}"
    if isinstance(value, float) and wanted == "a whole number" and value.is_integer():
        return f"write a whole number: {_at(key)}{int(value)}"
    if isinstance(value, (int, float)) and wanted == "text":
        return f"quote it: {_at(key)}\"{value}\""
    if isinstance(value, (date, datetime)) and wanted == "text":
        return f"quote it: {_at(key)}\"{value}\" (unquoted, YAML reads it as a date)"
    return None


def nearest_timezone(name: str) -> str | None:
    zones = _zones()
    lowered = {zone.lower(): zone for zone in zones}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name, sorted(zones), n=1, cutoff=0.6)
    return close[0] if close else None


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _spaced(written: str) -> str:
    # ">1" -> "> 1": an operator and its value, as a threshold reads best
    match = re.match(r"^([<>]=?|[=!]=)\s*(.*)$", written)
    return f"{match[1]} {match[2]}" if match and match[2] else written
