"""Placeholders for values a template reads that are not known when it is checked.

:class:`RunTime` stands for a value that exists only when the template runs (a registered
result, a check's facts): every attribute, item, call and operation on it succeeds, so the
load-time checks report only what is certainly wrong (:mod:`agent.playbook.scope`).

:class:`UnsetEnv` stands for an environment variable that is not set, in the configurations
that read commands load (``agent status``, ``explain``, ``history``...): they need the checks,
the store and the redactor, not the notification secrets the resident agent reads from its own
environment. It is a Jinja2 ``Undefined`` for ``| default(...)`` and ``is defined`` (which
behave as with the variable unset) and a :class:`RunTime` placeholder for everything else.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jinja2 import Undefined

RUNTIME_TEXT = "\ue000run-time\ue000"
"""What a placeholder renders to inside a string: private-use characters no value contains."""


class RunTime:
    """Stands for a value known only when the template runs. Never an error by itself."""

    unsafe_callable = False  # read by Jinja2's sandbox before a call
    alters_data = False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> RunTime:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> RunTime:
        return self

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __bool__(self) -> bool:
        return True

    def __int__(self) -> int:
        return 0

    def __float__(self) -> float:
        return 0.0

    def __round__(self, ndigits: int | None = None) -> float:
        return 0.0

    def __str__(self) -> str:
        return RUNTIME_TEXT

    def __repr__(self) -> str:
        return "<known at run time>"

    def __hash__(self) -> int:
        return 0

    def __contains__(self, item: Any) -> bool:
        return False

    def _same(self, other: Any = None) -> RunTime:
        _touch(other)
        return self

    def _ordered(self, other: Any = None) -> bool:
        _touch(other)
        if isinstance(other, str) and NUMBER_TEXT.fullmatch(other):
            raise OrderedAgainstText(other)
        return False

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _same
    __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = _same
    __lt__ = __le__ = __gt__ = __ge__ = _ordered

    def __eq__(self, other: object) -> bool:
        _touch(other)
        return other is self

    def __ne__(self, other: object) -> bool:
        _touch(other)
        return other is not self


NUMBER_TEXT = re.compile(
    r"\s*(?P<number>[-+]?(\d[\d_]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*"
    r"(?P<unit>%|ms|s|m|h|d|[kKMGT]i?[bB]?|[kKMGT]i?B)?\s*")
"""A number in quotes, as an ordering against it is never meant: ``'90'``, ``' 10 '``, ``'1e3'``,
``'1_000'``, and with a unit (``'90%'``, ``'500 ms'``, ``'2GB'``: a number ordered against it
raises at every run too, and two texts are ordered letter by letter)."""


def ascii_digits(text: str) -> str:
    """``text`` with every decimal digit of another script (fullwidth U+FF15, Arabic-Indic U+0663, as an
    input method or a chat writes them) as its ASCII digit: Python's ``int()`` and the regex ``\\d``
    take them as numbers, YAML reads them as text, so the number to write is the ASCII one."""
    return "".join(str(unicodedata.decimal(c)) if not c.isascii() and unicodedata.decimal(c, None) is not None
                   else c for c in text)


def lookalike_digits(text: str) -> bool:
    """Whether ``text`` has a decimal digit that is not ASCII (:func:`ascii_digits`)."""
    return ascii_digits(text) != text


def number_written(text: str) -> str:
    """The number to write for the quoted ``text`` (:data:`NUMBER_TEXT`): ``'90%'`` -> ``90``, in ASCII
    digits (fullwidth ``'90'`` -> ``90``)."""
    found = NUMBER_TEXT.fullmatch(text)
    return ascii_digits(found["number"] if found else text.strip())


class OrderedAgainstText(TypeError):
    """A value known at run time ordered (``<``, ``>``, ``<=``, ``>=``) against a number in quotes,
    through a var (``vars: {limit: "80"}``, ``expect: "memory_percent < limit"``): a number
    ordered against text raises when it runs, two texts are ordered letter by letter. Certain
    whatever the value turns out to be, so reported at load (:func:`agent.playbook.scope.template_problem`)."""

    def __init__(self, text: str) -> None:
        super().__init__(f"a value known at run time is ordered against the text {text!r}, a number in quotes: "
                         "against a number it fails when it runs, and texts are ordered letter by letter "
                         "('100' < '90')")
        self.text = text


def _touch(other: Any) -> None:
    """Use the other operand, so an undefined one raises as it would with a real value."""
    if isinstance(other, Undefined):
        str(other)


RUNTIME = RunTime()


def is_runtime(value: Any) -> bool:
    """True when ``value`` is or contains a placeholder (its real value is unknown at load)."""
    if isinstance(value, RunTime):
        return True
    if isinstance(value, str):
        return RUNTIME_TEXT in value
    if isinstance(value, Mapping):
        return any(is_runtime(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_runtime(v) for v in value)
    return False


class UnsetEnv(RunTime, Undefined):  # type: ignore[misc]  # RunTime wins every operator, on purpose
    """``env.NAME`` for a variable that is not set, where the configuration is loaded for
    reading only (see the module docstring). Using its value (rendering it, reading from it,
    comparing it) calls ``used(NAME)``, so the command can say which variables it went without."""

    def __init__(self, name: str, used: Callable[[str], None]) -> None:
        Undefined.__init__(self, name=name)
        self._env_name = name
        self._used = used

    def __str__(self) -> str:
        self._used(self._env_name)
        return RUNTIME_TEXT

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        self._used(self._env_name)
        return RUNTIME

    def __getitem__(self, key: Any) -> RunTime:  # type: ignore[override]
        self._used(self._env_name)
        return RUNTIME

    def __bool__(self) -> bool:
        self._used(self._env_name)
        return True

    def __iter__(self) -> Iterator[Any]:
        self._used(self._env_name)
        return iter(())

    def __eq__(self, other: object) -> bool:
        self._used(self._env_name)
        return False

    def __ne__(self, other: object) -> bool:
        self._used(self._env_name)
        return True

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"<${self._env_name}: not set here>"
