"""What goes wrong in a YAML file before YAML itself: bytes, characters and look-alike spaces.

Each function returns a positioned problem (1-based line and column, the message and a hint
that says what to write instead), or ``None``:

* :func:`undecodable`: a byte that is not UTF-8 (a file saved as Latin-1, a binary file);
* :func:`control_character`: a character YAML refuses (ESC from a terminal paste, a form
  feed, NUL), found before PyYAML's reader refuses it without a line;
* :func:`lookalike_spaces`: a non-breaking or other Unicode space where YAML needs an ordinary
  one (indentation, after ``key:`` or ``-``): YAML reads it as text, so the parser fails a
  line or more later, or a key silently gets a strange name. Chat and web pages paste them.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class TextProblem:
    line: int
    column: int
    message: str
    hint: str | None = None


# Every character PyYAML's reader accepts (yaml.reader.Reader.NON_PRINTABLE is its complement).
_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010ffff]")
_LOOKALIKE = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b" \
             "\u202f\u205f\u3000\ufeff"
# Structural places: the indentation of a line (with any "- " item markers), or right after a
# key's colon or an item's dash.
LOOKALIKE = _LOOKALIKE
"""Spaces that look like a space and are not one to YAML (a key holding one is reported too)."""
_INDENTATION = f"^[ \\t-]*[{_LOOKALIKE}]"
_STRUCTURAL = re.compile(f"{_INDENTATION}|(?<=:)[{_LOOKALIKE}]")


_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` as YAML numbers them (``str.splitlines`` also breaks at a form feed
    and other characters YAML does not, which would shift every line number after one)."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _line_and_column(text: str, index: int) -> tuple[int, int]:
    breaks = list(_LINE_BREAK.finditer(text, 0, index))
    start = breaks[-1].end() if breaks else 0
    return len(breaks) + 1, index - start + 1


def undecodable(raw: bytes) -> TextProblem | None:
    """The first byte that is not UTF-8, with its line and column (in characters); a UTF-16 file
    (a byte order mark, or NUL bytes in every other place) as a whole."""
    head = raw[:200]  # UTF-16 first: ASCII text in UTF-16 without a BOM is valid UTF-8 with NULs
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) >= 4 and head.count(b"\x00") * 3 >= len(head)):
        return TextProblem(1, 1, "the file is UTF-16 text, not UTF-8",
                           "save it as UTF-8 (PowerShell's > and Notepad's \"Unicode\" write UTF-16; "
                           "e.g. iconv -f UTF-16 -t UTF-8)")
    try:
        raw.decode("utf-8")
        return None
    except UnicodeDecodeError as exc:
        start = exc.start
    line_start = raw.rfind(b"\n", 0, start) + 1
    line = raw.count(b"\n", 0, start) + 1
    column = len(raw[line_start:start].decode("utf-8", errors="replace")) + 1
    return TextProblem(line, column, f"byte 0x{raw[start]:02x} is not UTF-8 text",
                       "save the file as UTF-8 (an editor's \"encoding\" setting), or retype the character")


def control_character(text: str) -> TextProblem | None:
    """The first character YAML does not accept in a file."""
    match = _NON_PRINTABLE.search(text)
    if match is None:
        return None
    char = match.group()
    line, column = _line_and_column(text, match.start())
    name = _char_name(char)
    return TextProblem(line, column, f"control character {name} is not allowed in YAML",
                       "delete it (it often comes from a terminal or a copied escape sequence); "
                       "write a tab or a line break as \\t or \\n inside double quotes")


def lookalike_spaces(lines: list[str], *, up_to_line: int | None = None,
                     indentation_only: bool = False) -> TextProblem | None:
    """The first look-alike space in a structural place (up to ``up_to_line`` when given).

    ``indentation_only`` looks at indentation alone: for a file that parsed, where a look-alike
    after a colon may be text inside quotes.
    """
    pattern = re.compile(_INDENTATION) if indentation_only else _STRUCTURAL
    for number, text in enumerate(lines, 1):
        if up_to_line is not None and number > up_to_line:
            return None
        if text.lstrip().startswith("#"):
            continue
        match = pattern.search(text)
        if match is None:
            continue
        column = match.end()  # the look-alike is the last character matched
        name = _char_name(text[column - 1])
        return TextProblem(number, column, f"{name} where YAML needs an ordinary space",
                           "retype the spaces of this line (pasting from a chat or a web page brings "
                           "these in)")
    return None


TYPOGRAPHIC_DASHES = "\u2013\u2014\u2212\u2010\u2011\u2022"
"""En dash, em dash, minus sign, hyphen, non-breaking hyphen, bullet: what a word processor or a
chat makes of the ``- `` of a list item."""
TYPOGRAPHIC_COLONS = "\uff1a\ufe55\ua789\u2236"
"""Fullwidth colon, small colon, modifier-letter colon, ratio: what an input method or a chat
makes of the ``:`` after a key."""
_DASH_MARKER = re.compile(f"^[ ]*(?:- +)*([{TYPOGRAPHIC_DASHES}]) ")
_COLON_AFTER_KEY = re.compile(f"^[ ]*(?:- +)*[^ #'\"{TYPOGRAPHIC_COLONS}][^#'\"{TYPOGRAPHIC_COLONS}]*?"
                              f"([{TYPOGRAPHIC_COLONS}])(?: |$)")


def lookalike_punctuation(lines: list[str], *, up_to_line: int | None = None,
                          from_line: int = 1) -> TextProblem | None:
    """The first typographic look-alike of YAML's punctuation where YAML needs it (up to
    ``up_to_line``): a list item marked with a dash that is not ``-`` (``<U+2013> bot``), a key followed by a
    colon that is not ``:`` (``severity<U+FF1A> critical``). YAML reads either as text, so the parser
    stumbles a line later, or the file loads with one odd string where a list or a key was meant.
    Lines before ``from_line`` are not looked at (they may be a block scalar's text)."""
    for number, text in enumerate(lines, 1):
        if up_to_line is not None and number > up_to_line:
            return None
        if number < from_line or text.lstrip().startswith("#"):
            continue
        for pattern, wanted, what in ((_DASH_MARKER, "-", "a list item"), (_COLON_AFTER_KEY, ":", "a key")):
            match = pattern.match(text)
            if match is not None:
                char = match.group(1)
                return TextProblem(number, match.start(1) + 1,
                                   f"{_char_name(char)} where YAML needs {wanted!r} ({what}): YAML reads this "
                                   "line as text", f"retype it as {wanted!r} (a word processor, an input method "
                                   "or a chat writes the look-alike)")
    return None


def _char_name(char: str) -> str:
    code = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "").lower() or _CONTROL_NAMES.get(ord(char), "")
    return f"{code} ({name})" if name else code


_CONTROL_NAMES = {0x00: "NUL", 0x07: "BEL", 0x08: "backspace", 0x0B: "vertical tab", 0x0C: "form feed",
                  0x1B: "ESC", 0x7F: "DEL"}
