"""Samples out of Prometheus exposition text, without stalling the event loop.

``prometheus_client``'s text parser is pure Python (about 1 s per MiB of samples, measured), so
the agent never feeds it a whole scrape on the event loop: :func:`read_samples` first keeps only
the lines that can hold the wanted samples (one regular expression, C speed: the ``# HELP`` and
``# TYPE`` lines of their families and the sample lines of those names), then parses what is
left in a worker thread. The body itself is capped by the transport (:mod:`agent.http`), so the
work is bounded whatever the server sends.
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import Collection
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

_FORMAT_PROBE_LINES = 200
"""Lines parsed to tell "the metric is not there" from "this is not exposition text"."""
_SUFFIXES = ("_total", "_created", "_count", "_sum", "_bucket", "_info", "_gcount", "_gsum")


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def families_of(name: str) -> set[str]:
    """The family names a sample called ``name`` may belong to (``x_total`` -> ``x``)."""
    return {name} | {name[: -len(s)] for s in _SUFFIXES if name.endswith(s) and len(name) > len(s)}


def relevant_text(text: str, names: Collection[str]) -> str:
    """Only the lines of ``text`` that can carry samples named in ``names`` (and their metadata)."""
    if not names:
        return ""
    samples = "|".join(re.escape(n) for n in sorted(names))
    families = "|".join(re.escape(f) for f in sorted(set().union(*(families_of(n) for n in names))))
    pattern = re.compile(rf"^(?:(?:{samples})(?:[{{ \t]).*|# (?:HELP|TYPE) (?:{families})[ \t].*)$", re.MULTILINE)
    return "".join(m.group(0) + "\n" for m in pattern.finditer(text))


def select_samples(text: str, names: Collection[str]) -> list[Sample]:
    """Blocking: every sample of ``text`` whose name is in ``names``, in order.

    Raises ``ValueError`` (or what the parser raises on malformed lines: ``IndexError``,
    ``KeyError``) when a relevant line is not exposition text, or when none is and the text's
    first lines are not exposition text either (an HTML page, a JSON document).
    """
    wanted = set(names)
    found = [Sample(s.name, dict(s.labels), float(s.value))
             for family in text_string_to_metric_families(relevant_text(text, wanted))
             for s in family.samples if s.name in wanted]
    if not found:
        end = -1
        for _ in range(_FORMAT_PROBE_LINES):
            end = text.find("\n", end + 1)
            if end < 0:
                end = len(text)
                break
        for _family in text_string_to_metric_families(text[: end + 1]):
            pass
    return found


async def read_samples(text: str, names: Collection[str]) -> list[Sample]:
    """:func:`select_samples` in a worker thread."""
    return await asyncio.to_thread(select_samples, text, names)
