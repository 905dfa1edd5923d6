"""Turn pydantic validation errors into positioned :class:`Diagnostic` objects.

A pydantic error's ``loc`` is a path through the validated data. The loader moved a check's
or task's module key (``http: {...}``) to ``params``; :func:`data_path` maps ``params`` back
to the module key so the position is the one the operator wrote. Only pydantic's ``msg`` and
``loc`` are used, never ``input``: a rendered parameter may hold a secret from ``env``.
"""
from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.core.values import ParamProblem
from agent.playbook.diagnostics import Diagnostic, valid_keys_hint
from agent.playbook.hints import empty_value, value_hint
from agent.playbook.yaml_source import Path_, SourceDocument


def data_path(data: Any, loc: Iterable[Any]) -> Path_:
    """The YAML path for pydantic ``loc`` through (pre-processed) ``data``."""
    out: list[Any] = []
    cur = data
    in_params = False  # below a module key every name is the module's own
    for part in loc:
        if not in_params and part == "params" and isinstance(cur, dict) and cur.get("module"):
            in_params = True
            out.append(cur["module"])
            cur = cur.get("params")
            continue
        out.append(part)
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
        else:
            cur = None
    return tuple(out)


def _value_at(data: Any, loc: Iterable[Any]) -> Any:
    cur = data
    for part in loc:
        if isinstance(cur, dict) and part == "params" and "params" not in cur:
            return None
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
        else:
            return None
    return cur


def model_keys_at(model: type[BaseModel], loc: Iterable[Any]) -> list[str] | None:
    """Valid YAML keys of the model found at ``loc`` below ``model`` (None if not a model)."""
    annotation: Any = model
    for part in loc:
        annotation = unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = _field_by_key(annotation, part)
            if field is None:
                return None
            annotation = field
            continue
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin in (list, tuple) and args:
            annotation = args[0]
        elif origin is dict and len(args) == 2:
            annotation = args[1]
        else:
            return None
    annotation = unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return None


def _field_by_key(model: type[BaseModel], key: Any) -> Any:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field.annotation
    return None


def unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional[...] down to the interesting type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def diagnostics_from_validation(
    error: ValidationError,
    doc: SourceDocument,
    data: Any,
    *,
    model: type[BaseModel] | None = None,
    prefix: Path_ = (),
    redact: Callable[[str], str] = lambda text: text,
    keep: Callable[[Any], bool] = lambda err: True,
    misplaced: Callable[[str], str | None] = lambda key: None,
) -> list[Diagnostic]:
    """One diagnostic per pydantic error, placed at the YAML node it concerns.

    ``prefix`` is prepended to every path (when ``data`` sits inside the document); ``model``
    (the model validated at ``prefix``) supplies the valid keys for "did you mean". Errors for
    which ``keep`` is false are left out. ``misplaced(key)`` may explain an unknown key that
    belongs elsewhere (a check's ``expect:`` indented into its module's parameters).
    """
    out: list[Diagnostic] = []
    every = error.errors(include_input=False, include_url=False)
    misspelt = _misspelt_required(every, model)  # unknown keys reported elsewhere (``keep``) count too
    errors = [err for err in every if keep(err)]
    for err in errors:
        if err["type"] == "missing" and tuple(err["loc"]) in misspelt:
            continue  # 'whitin: 30m' for 'within': one mistake, said once at the unknown key with its fix
        loc = tuple(err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, ParamProblem) and _value_at(data, (*loc, *cause.at)) is not None:
            loc = (*loc, *cause.at)  # the value the model validator refused, not its mapping
        path = (*prefix, *data_path(data, loc))
        key = path[-1] if path else ""
        if err["type"] == "extra_forbidden":
            keys = (model_keys_at(model, loc[:-1]) if model else None) or []
            keys = [k for k in keys if k not in ("module", "params", "source")]
            hint = misplaced(str(key)) or (valid_keys_hint(str(key), keys) if keys else None)
            out.append(doc.diagnostic(path, f"unknown key {key!r}", hint, at_key=True))
        elif err["type"] == "missing":
            out.append(doc.diagnostic(path[:-1], f"missing required key {key!r}"))
        elif (_value_at(data, loc) is None and isinstance(key, str) and key
              and (wanted := _WANTED.get(str(err["type"]))) is not None):
            out.append(empty_value(doc, path, _label(path), wanted))
        else:
            msg = re.sub(r" or instance of \w+$", "", err["msg"].removeprefix("Value error, "))  # pydantic's class name
            label = _label(path)
            hint = value_hint(doc, path, msg, _value_at(data, loc))
            out.append(doc.diagnostic(path, redact(f"{label}: {msg}" if label else msg),
                                      redact(hint) if hint else None))
    return out


_WANTED = {"dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
           "list_type": "a list", "tuple_type": "a list", "set_type": "a list", "string_type": "text",
           "int_type": "a whole number", "float_type": "a number", "bool_type": "true or false",
           "datetime_type": "a date and time", "date_type": "a date", "is_instance_of": "a value"}
"""pydantic's type errors, by what the field wants (said when the value is none at all)."""


def _misspelt_required(errors: list[Any], model: type[BaseModel] | None) -> set[tuple[Any, ...]]:
    """Locations of missing required keys that an unknown key beside them is the nearest spelling
    of: the missing key is not reported on top of the misspelling."""
    if model is None:
        return set()
    missing = {tuple(err["loc"]) for err in errors if err["type"] == "missing"}
    out: set[tuple[Any, ...]] = set()
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] != "extra_forbidden" or not loc:
            continue
        nearest = difflib.get_close_matches(str(loc[-1]), sorted(model_keys_at(model, loc[:-1]) or []), n=1,
                                            cutoff=0.6)
        if nearest and (*loc[:-1], nearest[0]) in missing:
            out.add((*loc[:-1], nearest[0]))
    return out


def _label(path: Path_) -> str:
    """``checks[0].after`` for a message."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
