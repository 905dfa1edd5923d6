"""Jinja2 for playbooks: one sandboxed, strict environment for templates and expressions.

Everything an operator writes between ``{{ }}`` and every expression (``expect``, ``when``,
``until``...) runs in :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` with
:class:`jinja2.StrictUndefined`: a typo in a variable name is an error, not an empty string,
and reaching Python internals (``''.__class__``, ``cycler.__init__.__globals__``) is refused.
Unsafe attribute access written literally is also refused at load time by
:meth:`Templating.check_syntax`, so such a playbook never starts.

``env`` is the process environment as a read-only mapping. Every value it hands out is
registered with the configuration's :class:`~agent.core.redaction.Redactor` (``templating.redactor``)
before the template sees it, whatever the variable is called: everything the agent writes
(logs, stored rows, console, alerts) is redacted through that redactor. A variable that is not
set is undefined (an error unless the template gives a default), except in a configuration
loaded for reading only (``unset_env="placeholder"``: ``agent status`` and the like, which
need no notification secrets), where it is an :class:`~agent.playbook.placeholders.UnsetEnv`
placeholder and the names used are collected in ``Templating.unset_env_used``.
"""
from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from jinja2 import (
    BaseLoader,
    Environment,
    StrictUndefined,
    TemplateAssertionError,
    TemplateNotFound,
    TemplateSyntaxError,
    nodes,
)
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from agent.core.redaction import Redactor
from agent.playbook.files import DISK, ConfigReader, FileProblem
from agent.playbook.placeholders import NUMBER_TEXT, UnsetEnv, ascii_digits, lookalike_digits, number_written
from agent.rendering import env_references
from botwarden.errors import ConfigError

_WHOLE_EXPR = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)
_MAX_REPEAT = 100_000  # longest string/list a `*` may build; guards "a" * 10**10
_MAX_EXPONENT = 1_000


class TemplateError(ConfigError):
    """A template or expression failed to parse, render or evaluate."""


def has_template(text: Any) -> bool:
    """True when ``text`` is a string containing Jinja2 markup."""
    return isinstance(text, str) and ("{{" in text or "{%" in text or "{#" in text)


class _ReaderLoader(BaseLoader):
    """Named templates of ``directory``, read through the configuration's reader (never blocks
    on a FIFO; a configuration that loaded renders the bytes that were validated)."""

    def __init__(self, directory: Path, templating: Templating) -> None:
        self.directory = directory
        self.templating = templating

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        parts = [p for p in template.replace("\\", "/").split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            raise TemplateNotFound(template)
        path = self.directory.joinpath(*parts)
        reader = self.templating.reader
        if not reader.exists(path):
            raise TemplateNotFound(template)
        try:
            data = reader.read(path)
        except FileProblem as exc:
            raise JinjaTemplateError(f"{path}: {exc.message}") from None
        version = reader.version(path)
        return (data.decode("utf-8"), str(path),
                lambda: self.templating.reader is reader and reader.version(path) == version)


class _EnvView(Mapping[str, str]):
    """Read-only view of the environment that registers every value it hands out as a secret."""

    def __init__(self, values: Mapping[str, str], on_read: Callable[[str], None],
                 on_missing: Callable[[str], Any] | None = None) -> None:
        self._values = dict(values)
        self._on_read = on_read
        self._on_missing = on_missing

    def __getitem__(self, key: str) -> str:
        if key not in self._values and self._on_missing is not None and isinstance(key, str):
            return self._on_missing(key)  # type: ignore[no-any-return]
        value = self._values[key]
        self._on_read(value)
        return value

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self[key] if key in self._values else default

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:  # never print the environment
        return f"<env: {len(self._values)} variables>"


def _not_set(name: str) -> StrictUndefined:
    """An unset variable: undefined (``| default(...)`` applies), with a message that says so."""
    return StrictUndefined(hint=f"environment variable {name!r} is not set (env.{name})", name=name)


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        # The stock sandbox lets `"x" * 10**10` exhaust memory; bound what one operator may build.
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > _MAX_REPEAT:
                    raise SecurityError(f"repetition would build more than {_MAX_REPEAT} items")
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > _MAX_EXPONENT:
            raise SecurityError(f"exponent larger than {_MAX_EXPONENT}")
        return super().call_binop(context, operator, left, right)


_ANSIBLE_ONLY = frozenset({
    "to_json", "to_nice_json", "from_json", "to_yaml", "to_nice_yaml", "from_yaml", "regex_replace",
    "regex_search", "regex_findall", "bool", "ternary", "combine", "dict2items", "items2dict", "b64encode",
    "b64decode", "quote", "basename", "dirname", "password_hash", "hash", "json_query", "to_datetime",
    "strftime", "mandatory", "flatten", "zip", "subelements", "type_debug", "human_readable", "truthy",
})


def unknown_filter_hint(message: str, env: Any) -> str:
    """`` (did you mean 'x'?)`` after Jinja2's "No filter named 'y'" (or "No test named")."""
    match = re.search(r"No (filter|test) named '([^']+)'", message)
    if not match:
        return ""
    kind, name = match.groups()
    known = env.filters if kind == "filter" else env.tests
    if name in _ANSIBLE_ONLY:
        return f" (an Ansible {kind}: templates here are plain Jinja2, with Jinja2's built-in {kind}s only)"
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (only Jinja2's built-in {kind}s exist here)"


def _unsafe_access(tree: nodes.Node) -> str | None:
    """Name the first literal access to a private/dunder attribute in a parsed template."""
    found = _unsafe_node(tree)
    return found[0] if found else None


def _unsafe_node(tree: nodes.Node) -> tuple[str, int] | None:
    """The first literal access to a private/dunder attribute and its line, or None."""
    kinds = (nodes.Getattr, nodes.Getitem, nodes.Filter)
    found = [tree] if isinstance(tree, kinds) else []  # find_all skips the root itself
    for node in [*found, *tree.find_all(kinds)]:
        name: Any = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            arg = node.args[0]
            name = arg.value if isinstance(arg, nodes.Const) else None
        if isinstance(name, str) and name.startswith("_"):
            return name, node.lineno
    return None


def _unknown_filter_or_test(tree: nodes.Node, env: Any) -> tuple[str, int] | None:
    """The first filter or test ``tree`` names that ``env`` does not have (message and line).

    Jinja2 (3.x) reports an unknown filter or test at compile time only outside a conditional:
    in ``{% if %}`` or ``a if c else b`` it fails only when that branch renders, so a typo in
    the branch of an alert template that runs when it matters would pass a load that only
    compiles. Every filter and test of the tree is looked up here instead."""
    kinds = (nodes.Filter, nodes.Test)
    found = [tree] if isinstance(tree, kinds) else []  # find_all skips the root itself
    for node in [*found, *tree.find_all(kinds)]:
        name = getattr(node, "name", None)
        if not isinstance(name, str):
            continue
        if isinstance(node, nodes.Filter) and name not in env.filters:
            text = f"No filter named {name!r}"
        elif isinstance(node, nodes.Test) and name not in env.tests:
            text = f"No test named {name!r}"
        else:
            continue
        return f"{text}{unknown_filter_hint(text, env)}", node.lineno
    return None


_ORDERING = {"lt": "<", "gt": ">", "lteq": "<=", "gteq": ">="}
_TEXT_FILTERS = frozenset({
    "string", "trim", "lower", "upper", "title", "capitalize", "replace", "format", "join", "center", "truncate",
    "striptags", "urlencode", "indent", "wordwrap", "escape", "e", "forceescape", "filesizeformat", "tojson",
})
"""Jinja2's filters whose result is always text."""


def _made_text(node: nodes.Node) -> bool:
    """``node`` certainly gives text it was turned into (``x | string``, ``x | trim``, ``x ~ ''``): ordered
    against number-like text on purpose (a fixed-width ``'0930'``, a date ``'20261201'``), and the
    number without quotes would fail when it runs. A literal text is not (``'100' < '90'``)."""
    return isinstance(node, nodes.Concat) or (isinstance(node, nodes.Filter) and node.name in _TEXT_FILTERS)


def _ordered_against_quoted_number(tree: nodes.Node) -> str | None:
    """The message of :func:`_quoted_number_ordered` (without its line)."""
    found = _quoted_number_ordered(tree)
    return found[0] if found is not None else None


def _quoted_number_ordered(tree: nodes.Node) -> tuple[str, int] | None:
    """An ordering comparison (``<``, ``>``, ``<=``, ``>=``) with a quoted number,
    ``memory_percent < '90'``: a number ordered against text raises (the check is UNKNOWN at
    every run, the step fails), and two texts are ordered letter by letter (``'100' < '90'``).
    Never what was meant; found only when it ran."""
    for node in [*([tree] if isinstance(tree, nodes.Compare) else []), *tree.find_all(nodes.Compare)]:
        operands = [node.expr, *(op.expr for op in node.ops)]
        for index, op in enumerate(node.ops):
            if op.op not in _ORDERING:
                continue
            pair = (operands[index], operands[index + 1])
            for side, other in (pair, pair[::-1]):
                if _made_text(other):
                    continue  # text against text, written so on purpose
                if isinstance(side, nodes.Const) and isinstance(side.value, str) and NUMBER_TEXT.fullmatch(side.value):
                    return (f"'{_ORDERING[op.op]}' compares with the text {side.value!r}, a number in quotes: against "
                            "a number it fails when it runs, and texts are ordered letter by letter ('100' < '90'); "
                            + (f"write the number without quotes: {number_written(side.value)}"
                               if not lookalike_digits(side.value) else
                               f"write the number without quotes, in ASCII digits: {number_written(side.value)} "
                               f"({side.value.strip()!r} has look-alike digits of another script)")
                            + (" (in the value's own unit)" if number_written(side.value) != ascii_digits(side.value.strip())
                               else ""), node.lineno)
    return None


class Templating:
    """The one sandboxed Jinja2 environment of a configuration.

    ``templates_dir`` holds named templates (alert messages); ``env`` defaults to a snapshot of
    ``os.environ``. ``redactor`` learns every value read from ``env`` (default: a new one that
    starts with the secret-named variables of ``env``; the resident agent passes one that lives
    across reloads). All failures raise :class:`TemplateError` with a message that quotes the
    template source (as written by the operator) but never a rendered value.
    """

    def __init__(self, templates_dir: Path | None = None, *, env: Mapping[str, str] | None = None,
                 redactor: Redactor | None = None, reader: ConfigReader | None = None,
                 unset_env: Literal["error", "placeholder"] = "error") -> None:
        self.templates_dir = templates_dir
        self.reader: ConfigReader = reader or DISK
        """Where named templates are read from (:mod:`agent.playbook.files`); a loaded
        configuration's serves the bytes its load validated."""
        self.unset_env_used: set[str] = set()
        """With ``unset_env="placeholder"``: the unset variables whose value a template used."""
        environ = os.environ if env is None else env
        self.redactor = redactor if redactor is not None else Redactor.for_environment(environ)
        self._env = _Sandbox(
            undefined=StrictUndefined,
            loader=_ReaderLoader(templates_dir, self) if templates_dir else None,
            autoescape=False,
            keep_trailing_newline=True,
        )
        self._env.globals["env"] = _EnvView(environ, self._remember, self._unset if unset_env == "placeholder"
                                            else _not_set)
        self._expressions: dict[str, Any] = {}
        self._templates: dict[str, Any] = {}
        self._checked: dict[tuple[str, bool], str | None] = {}  # load-time checks, by source
        self._trees: dict[tuple[str, bool], nodes.Template] = {}

    @property
    def environment(self) -> ImmutableSandboxedEnvironment:
        """The sandboxed Jinja2 environment (for parsing; render through the methods here)."""
        return self._env

    def _unset(self, name: str) -> UnsetEnv:
        return UnsetEnv(name, self.unset_env_used.add)

    def _remember(self, value: str) -> None:
        self.redactor.add((value,))

    def redact(self, text: str) -> str:
        """Replace every secret the configuration knows (environment values read included) with ``***``."""
        return self.redactor.redact(text)

    # -- load-time checks -------------------------------------------------------------------
    def check_syntax(self, src: str) -> str | None:
        """Problem with template ``src`` (syntax or a sandbox escape), or ``None`` when fine."""
        return self._check(src, expression=False)

    def check_expression(self, src: str) -> str | None:
        """Problem with expression ``src`` (``status_code == 200``), or ``None`` when fine."""
        return self._check(src, expression=True)

    def check_template_file(self, name: str) -> str | None:
        """Problem with the named file of ``templates_dir`` (missing, syntax, sandbox), or None."""
        if self.templates_dir is None:
            return "no templates directory is configured"
        try:
            source, _, _ = self._env.loader.get_source(self._env, name)  # type: ignore[union-attr]
        except JinjaTemplateError as exc:
            return f"cannot load it: {exc.message or type(exc).__name__}"
        except (OSError, UnicodeDecodeError) as exc:
            return f"cannot read it: {getattr(exc, 'strerror', None) or exc}"
        problem = self.check_syntax(source)
        if problem is None and (missing := self._missing_include(source)) is not None:
            return (f"it includes {missing[0]!r} (line {missing[1]}), which is not in the templates directory: "
                    "that part would render nothing or fail when the message is sent")
        return problem

    def _missing_include(self, source: str) -> tuple[str, int] | None:
        """The first ``{% include/import/from "x" %}`` of a literal name that the templates
        directory does not hold (``ignore missing`` aside), with its line; None otherwise."""
        try:
            tree = self._env.parse(source)
        except Exception:  # noqa: BLE001 - the syntax is judged by check_syntax
            return None
        for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport)):
            if isinstance(node, nodes.Include) and node.ignore_missing:
                continue
            named: Any = getattr(node, "template", None)
            names = ([c.value for c in named.items if isinstance(c, nodes.Const)]
                     if isinstance(named, (nodes.List, nodes.Tuple)) else
                     [named.value] if isinstance(named, nodes.Const) else [])
            if not names or not all(isinstance(n, str) for n in names):
                continue  # a computed name: known only when it renders
            found = False
            for name in names:
                try:
                    self._env.loader.get_source(self._env, name)  # type: ignore[union-attr]
                    found = True
                    break
                except Exception:  # noqa: BLE001 - not there (or unreadable): try the next name
                    continue
            if not found:
                return names[0], node.lineno
        return None

    def template_file_line(self, name: str) -> tuple[int, str] | None:
        """Where in template file ``name`` the problem :meth:`check_template_file` reports is:
        its line number and text; None when the file cannot be read or the problem has no line.
        So a syntax error of a template file is shown in that file, not where it is named."""
        try:
            source, _, _ = self._env.loader.get_source(self._env, name)  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - missing or unreadable: no line to point at
            return None
        line: int | None = None
        try:
            tree = self._env.parse(source)
            unsafe = _unsafe_node(tree) or _unknown_filter_or_test(tree, self._env) or _quoted_number_ordered(tree)
            if unsafe is not None:
                line = unsafe[1]
            else:
                self._env.from_string(source)
                missing = self._missing_include(source)
                line = missing[1] if missing is not None else None
        except JinjaTemplateError as exc:
            line = getattr(exc, "lineno", None)
        except Exception:  # noqa: BLE001 - too deep, a number too long: the file as a whole
            return None
        lines = re.split(r"\r\n|\r|\n", source)  # as Jinja2's lexer counts lines
        if not line or not 0 < line <= max(len(lines), 1):
            return None
        return line, lines[line - 1] if lines else ""

    def _check(self, src: str, *, expression: bool) -> str | None:
        key = (src, expression)
        if key not in self._checked:
            self._checked[key] = self._check_uncached(src, expression=expression)
        return self._checked[key]

    def tree(self, src: str, *, expression: bool = False) -> nodes.Template:
        """The parsed template (an expression is parsed as ``{{ (src) }}``); raises on bad syntax."""
        key = (src, expression)
        tree = self._trees.get(key)
        if tree is None:
            tree = self._env.parse("{{ (" + src + ") }}" if expression else src)
            self._trees[key] = tree
        return tree

    def _compiled_expression(self, src: str) -> Any:
        compiled = self._expressions.get(src)
        if compiled is None:
            compiled = self._env.compile_expression(src, undefined_to_none=False)
            self._expressions[src] = compiled
        return compiled

    def _compiled_template(self, src: str) -> Any:
        compiled = self._templates.get(src)
        if compiled is None:
            compiled = self._env.from_string(src)
            self._templates[src] = compiled
        return compiled

    def _check_uncached(self, src: str, *, expression: bool) -> str | None:
        if expression and not src.strip():
            return "empty expression"
        try:
            tree = self._parse_expression(src) if expression else self._env.parse(src)
            unsafe = _unsafe_access(tree)
            if unsafe:
                return f"access to {unsafe!r} is not allowed: templates run in a sandbox without Python internals"
            # Compiling finds filters and tests that do not exist (Ansible's, a typo).
            if expression:
                self._compiled_expression(src)
            else:
                self._compiled_template(src)
            unknown = _unknown_filter_or_test(tree, self._env)
            if unknown is not None:
                return unknown[0]
            quoted = _ordered_against_quoted_number(tree)
            if quoted is not None:
                return quoted
        except TemplateAssertionError as exc:
            text = (exc.message or "").rstrip(".")
            return f"{text}{unknown_filter_hint(text, self._env)}"
        except JinjaTemplateError as exc:
            lineno = getattr(exc, "lineno", 1)  # a TemplateSyntaxError's; other TemplateErrors have none
            line = f" (line {lineno})" if not expression and lineno > 1 else ""
            return f"Jinja2 syntax error{line}: {exc.message or exc}"
        except (RecursionError, MemoryError):
            return "the template is nested too deeply to read"
        except ValueError as exc:  # the lexer's int(): a number of more than 4300 digits
            return f"a number too long to read ({str(exc).split(':')[0]})"
        return None

    def env_names(self, src: str) -> set[str]:
        """The environment variables template ``src`` reads by name (``env.X``, ``env['X']``,
        ``env.get('X')``); a name computed at run time cannot be known and is not listed."""
        try:
            tree = self._env.parse(src)
        except JinjaTemplateError:
            return set()
        return env_references(tree)

    def probe(self, obj: Any, vars: Mapping[str, Any], *, expression: bool = False) -> tuple[Any, Exception | None]:
        """Render ``obj`` (or evaluate it as an expression) and return the value, or the error
        as Jinja2 raised it (its type says whether a name is undefined, the sandbox refused, or
        a value did not fit). For load-time checks; never raises."""
        try:
            if expression:
                return self._compiled_expression(obj)(**dict(vars)), None
            return self._render_raw(obj, vars), None
        except (RecursionError, MemoryError) as exc:
            return None, exc
        except Exception as exc:  # noqa: BLE001 - the caller classifies what Jinja2 and the values raised
            return None, exc

    def _render_raw(self, obj: Any, vars: Mapping[str, Any]) -> Any:
        if isinstance(obj, str):
            if not has_template(obj):
                return obj
            match = _WHOLE_EXPR.match(obj)
            if match and "{{" not in match["expr"] and "}}" not in match["expr"]:
                result = self._compiled_expression(match["expr"])(**dict(vars))
                if isinstance(result, (StrictUndefined, UnsetEnv)):
                    str(result)  # raises the UndefinedError; records an unset variable as used
                return result
            return self._compiled_template(obj).render(dict(vars))
        if isinstance(obj, Mapping):
            return {key: self._render_raw(value, vars) for key, value in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self._render_raw(item, vars) for item in obj]
        return obj

    def _parse_expression(self, src: str) -> nodes.Node:
        # The same parse compile_expression does, without compiling: we only want the tree.
        parser = Parser(self._env, src, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError(f"unexpected {parser.stream.current.value!r} after the expression",
                                      parser.stream.current.lineno)
        return expr

    # -- rendering --------------------------------------------------------------------------
    def render_str(self, src: str, vars: Mapping[str, Any]) -> str:
        """Render template ``src`` with ``vars``; a string without markup is returned as is."""
        if not has_template(src):
            return src
        try:
            return self._compiled_template(src).render(dict(vars))
        except Exception as exc:  # noqa: BLE001 - jinja2 raises many types from user code: config errors
            raise self._error("template", src, exc) from None

    def render_value(self, obj: Any, vars: Mapping[str, Any]) -> Any:
        """Render every string inside ``obj`` (dicts and lists recursively).

        A string that is exactly ``{{ expr }}`` keeps the native type of ``expr`` (a number
        stays a number, a list stays a list); other strings render to strings.
        """
        if isinstance(obj, str):
            match = _WHOLE_EXPR.match(obj)
            if match and "{{" not in match["expr"] and "}}" not in match["expr"]:
                return self.evaluate(match["expr"], vars)
            return self.render_str(obj, vars)
        if isinstance(obj, Mapping):
            return {key: self.render_value(value, vars) for key, value in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.render_value(item, vars) for item in obj]
        return obj

    def evaluate(self, expr_src: str, vars: Mapping[str, Any]) -> Any:
        """Evaluate expression ``expr_src`` (compiled once, cached) and return its value."""
        compiled = self._expressions.get(expr_src)
        try:
            if compiled is None:
                problem = self.check_expression(expr_src)
                if problem:
                    raise TemplateError(f"expression {expr_src.strip()!r}: {problem}")
                compiled = self._env.compile_expression(expr_src, undefined_to_none=False)
                self._expressions[expr_src] = compiled
            result = compiled(**dict(vars))
            if isinstance(result, (StrictUndefined, UnsetEnv)):
                str(result)  # raises the UndefinedError that names the missing variable (records an unset one)
            return result
        except TemplateError:
            raise
        except Exception as exc:  # noqa: BLE001 - as above: an expression's error is a config error
            raise self._error("expression", expr_src, exc) from None

    def render_template(self, name: str, vars: Mapping[str, Any]) -> str:
        """Render the named file from ``templates_dir``."""
        if self.templates_dir is None:
            raise TemplateError(f"template {name!r}: no templates directory is configured")
        try:
            return self._env.get_template(name).render(dict(vars))
        except Exception as exc:  # noqa: BLE001 - as above: a template file's error is a config error
            raise self._error("template file", name, exc) from None

    def _error(self, kind: str, src: str, exc: Exception) -> TemplateError:
        if isinstance(exc, SecurityError):
            reason = f"refused by the sandbox: {exc}"
        elif isinstance(exc, JinjaTemplateError):
            reason = exc.message or type(exc).__name__
        else:
            reason = f"{type(exc).__name__}: {exc}"
        return TemplateError(self.redact(f"{kind} {src.strip()!r}: {reason}"))
