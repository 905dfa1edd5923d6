"""Secrets written literally in a playbook or the inventory: refused at load.

Secrets come from the environment (``{{ env.NAME }}``), never from YAML under git. Every string
of every playbook and of the inventory goes through one classifier, :func:`find_secret`, which
looks at the literal text (template parts never count: ``{{ env.SLACK_TOKEN }}`` is fine) and at
its context, the key it is the value of and the words around it:

* credential shapes that are secrets wherever they are: Slack tokens and webhook URLs, Discord
  and Telegram bot credentials, a PEM private key, a JSON Web Token (``eyJ...``), a literal
  bearer token, common API key prefixes;
* 64 hex digits, with or without ``0x``: the shape of an Ethereum private key and also of a
  transaction hash. It is a key unless its context says hash (the key is ``tx_hash``, ``digest``...,
  or ``tx``/``hash``/``transaction``... come just before it), or it sits in prose (a description,
  a comment key, a sentence) with no secret word (``key``, ``private``, ``secret``...) before it;
* in a URL: a password in the userinfo, a query parameter named like a credential (``token``,
  ``access_token``, ``apikey``, ``sig``...) or whose value looks random, a random-looking path
  word, and for an apprise URL every part the plugin itself declares private (apprise's
  ``template_tokens``/``template_args`` with ``private``: the three Slack tokens in
  ``slack://T.../B.../...`` however short, a Discord webhook token, a Telegram bot token...).
  A query written after a template (``{{ bot.health_url }}?token=...``) is read too;
* a mapping key named like a secret (``token``, ``password``, ``api_key``, ``Authorization``,
  ``privateKey``...) with a literal value shaped like one (a word of 6 or more characters, not a
  regular expression; a name ending in ``_env`` names a variable), and a key named weakly like
  one (``key``, ``auth``, ``signature``) or no key at all with a value that looks random
  (length, letters and digits mixed, entropy).

Only the kind of secret and where it is are said, never the value: the source line shown with
the diagnostic has the secret masked (:func:`mask_line`).
"""
from __future__ import annotations

import bisect
import dataclasses
import functools
import importlib.metadata
import itertools
import math
import os
import re
import unicodedata
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent.apprise_plugins import parse_urls, plugin_class, scheme_index, url_scheme
from agent.playbook.diagnostics import Diagnostic
from agent.playbook.yaml_source import Path_, SourceDocument

SECRET_HINT = "keep secrets out of files under git: write {{ env.NAME }} and set NAME in the agent's environment"
_TEMPLATE_PART = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_TEMPLATE_COMMENT_MARKS = re.compile(r"\{#-?|-?#\}")
_MARK = "Zq9TEMPLATEq9Z"
"""Stands for a template part in a URL: letters and digits, so apprise's parsers keep it in place."""
_TOKENISH = re.compile(r"[A-Za-z0-9_\-]{20,}")
_SHAPES = [
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Slack webhook URL", re.compile(r"hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+")),
    ("a Slack webhook token (apprise URL)", re.compile(r"\bslack://T[A-Za-z0-9]{6,}/B[A-Za-z0-9]{6,}/[A-Za-z0-9]{16,}")),
    ("a Discord webhook URL", re.compile(r"discord(?:app)?\.com/api/webhooks/\d+/[\w-]{20,}")),
    ("a Telegram bot token", re.compile(r"\b\d{8,10}:[A-Za-z0-9_-]{35}\b")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{6,}\.eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*")),
    ("a bearer token", re.compile(r"(?i:\bbearer)\s+[A-Za-z0-9._~+/=-]{16,}")),
    ("an API key", re.compile(r"\b(?:AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}|sk-[A-Za-z0-9_-]{20,})\b")),
]
_HEX64 = re.compile(r"(?<![0-9A-Za-z])(?:0x)?[0-9a-fA-F]{64}(?![0-9A-Za-z])")
_HASH_WORD = re.compile(r"(?i)\b(?:tx|txn|txid|txhash|tx_hash|transaction|hash|digest|sha-?256|sha3|keccak|checksum|"
                        r"block|commit|order|oid|cloid|receipt)s?\b")
_SECRET_WORD = re.compile(r"(?i)\b(?:key|private|privkey|secret|seed|mnemonic|signer|password|token)s?\b")
_HASH_KEY = re.compile(r"(?i)(?:^|[_-])(?:tx|txn|txid|hash|tx_hash|digest|sha\d*|checksum|commit|block|receipt|"
                       r"oid|cloid)(?:_?(?:hash|id))?$")
_PROSE_KEY = re.compile(r"(?i)^(?:description|comment|comments|note|notes|summary|title|name|message|msg|"
                        r"reason|doc|docs|help|text)$")
_SECRET_KEY = re.compile(r"(?:^|[_-])(?:token|secret|password|passwd|passphrase|api[_-]?key|private[_-]?key|"
                         r"priv[_-]?key|secret[_-]?key|access[_-]?key|webhook(?:[_-]url)?|credentials?|mnemonic|"
                         r"seed[_-]?phrase|cookie|set[_-]cookie|authorization|proxy[_-]authorization)$",
                         re.IGNORECASE)
"""Keys (and HTTP header names: ``X-Api-Key``, ``Cookie``, ``X-Auth-Token``) whose value is a secret."""
_WEAK_SECRET_KEY = re.compile(r"(?:^|[_-])(?:key|auth|signature|sig|seed|session)$", re.IGNORECASE)
_SECRET_PARAM = re.compile(r"(?:^|[_-])(?:token|access[_-]?token|auth|auth[_-]?token|apikey|api[_-]?key|secret|"
                           r"password|passwd|pass|pwd|sig|signature|credentials?|session[_-]?id|private[_-]?key|"
                           r"authorization|cookie)$", re.IGNORECASE)
"""Query parameters whose value is a secret; apprise's ``?+Name=`` (an HTTP header) and
``?-Name=`` / ``?:Name=`` (payload fields) are read by their name."""
_QUERY_PAIR = re.compile(r"[?&][+\-:]?([A-Za-z0-9_.\-]+)=([^&#\s]*)")
_LITERAL_ONLY_PART = re.compile(
    r"""\{\{-?\s*((?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")(?:\s*[~+]\s*(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"))*)"""
    r"""\s*-?\}\}""")
"""A template part that is only string literals (``{{ 'Xk29' }}``, ``{{ 'slack://T.../' ~ '...' }}``):
it renders to text written in the file, read in place (:func:`_folded`)."""
_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s]+", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    """A secret written literally: ``kind`` (safe to show) and the literal ``parts`` that hold
    it (never shown: :func:`mask_line` hides them in the source line)."""

    kind: str
    parts: tuple[str, ...] = ()


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@functools.lru_cache(maxsize=1024)
def _words(key: Any) -> str:
    """``privateKey`` -> ``private_key``: camelCase keys read like snake_case ones."""
    return _CAMEL.sub("_", key) if isinstance(key, str) else ""


def entropy(word: str) -> float:
    """Shannon entropy of ``word`` in bits per character."""
    if not word:
        return 0.0
    counts = [word.count(c) for c in set(word)]
    return -sum(n / len(word) * math.log2(n / len(word)) for n in counts)


def looks_random(word: str) -> bool:
    """A generated token rather than a word, a name or a number: long enough, letters and digits
    mixed, many distinct characters, high entropy (a hex digest is 4 bits a character at most)."""
    if len(word) < 16 or not any(c.isdigit() for c in word) or not any(c.isalpha() for c in word):
        return False
    return len(set(word)) >= 10 and entropy(word) >= 3.3


def _looks_random_path_word(word: str) -> bool:
    # a webhook token mixes letters and digits; a long plain word or host name does not
    return any(c.isdigit() for c in word) and any(c.isalpha() for c in word) and len(set(word)) >= 10


def _value_shaped(text: str) -> bool:
    """A password, passphrase or token: 6 or more characters besides spaces (a passphrase has
    words: ``correct horse battery staple``), not a pattern (a log check's ``private_key:
    "-----BEGIN [A-Z ]*PRIVATE KEY-----"`` is a regular expression that finds keys)."""
    word = text.strip()
    return len(re.sub(r"\s", "", word)) >= 6 and not re.search(r"[\\^$*()\[\]{}|]", word)


def _literal(value: str) -> bool:
    return bool(value) and _MARK not in value


def _url_findings(url: str) -> Iterator[Finding]:
    """What is written literally in one URL (template parts stand as :data:`_MARK`)."""
    _, _, rest = url.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]  # before the path, query or fragment
    userinfo = authority.rpartition("@")[0]
    if ":" in userinfo and _literal(userinfo.split(":", 1)[1]):
        yield Finding("the URL holds a password written literally", (userinfo.split(":", 1)[1],))
    yield from _apprise_private_parts(url)
    path = rest.split("?", 1)[0]
    words = [w for w in _TOKENISH.findall(path) if _literal(w) and _looks_random_path_word(w)]
    if words:
        yield Finding("the URL holds what looks like a token written literally", tuple(words))


def _apprise_private_parts(url: str) -> Iterator[Finding]:
    """The parts of an apprise URL its plugin declares private (tokens, keys, passwords), when
    written literally: apprise's own parser splits the URL, its own declarations say which part
    is a secret, whatever the service."""
    scheme = url_scheme(url)
    if scheme is None or scheme in {"http", "https"} or scheme.lower() not in scheme_index():
        return  # not an apprise URL (unix://, sqlite://...): asking apprise would import every plugin
    try:
        cls = plugin_class(scheme)
        parsed = cls.parse_url(url.replace("/#", "/%23")) if cls is not None else None
    except Exception:  # noqa: BLE001 - a URL apprise cannot read is reported by the target checks
        return
    if not parsed or cls is None:
        return
    declared = {**getattr(cls, "template_tokens", {}), **getattr(cls, "template_args", {})}
    for name, spec in declared.items():
        if not isinstance(spec, dict) or not spec.get("private") or name in {"template", "user", "password"}:
            continue  # 'template' is a file path; the userinfo is read above
        value = parsed.get(spec.get("map_to", name))
        if isinstance(value, str) and _literal(value):
            parts = tuple(p for p in re.split(r"[:/]", value) if p)
            service = getattr(cls, "service_name", None) or scheme
            yield Finding(f"the URL holds a {service} secret ({name}) written literally", parts)


def _query_findings(text: str) -> Iterator[Finding]:
    """Query parameters anywhere in ``text`` (also after a template: ``{{ url }}?token=abc``)."""
    for name, value in _QUERY_PAIR.findall(text):
        if not _literal(value):
            continue
        if _SECRET_PARAM.search(_words(name)) or looks_random(value):
            yield Finding("the URL holds a token or key written literally in its query", (value,))


def _hex_findings(literal: str, key: Any) -> Iterator[Finding]:
    """64 hex digits: a private key, unless the context says it is a hash (a transaction's, a digest)."""
    key_words = _words(key)
    for match in _HEX64.finditer(literal):
        if key_words and _HASH_KEY.search(key_words) and not _SECRET_KEY.search(key_words):
            continue
        before = literal[max(0, match.start() - 48):match.start()]
        context = [(m.start(), "hash") for m in _HASH_WORD.finditer(before)]
        context += [(m.start(), "secret") for m in _SECRET_WORD.finditer(before)]
        nearest = max(context)[1] if context else None
        if nearest == "hash":
            continue
        standalone = literal.strip() == match.group(0)
        prose = bool(key_words and _PROSE_KEY.match(key_words)) or not standalone
        secret_key = bool(key_words and (_SECRET_KEY.search(key_words) or _WEAK_SECRET_KEY.search(key_words)))
        if nearest == "secret" or secret_key or not prose:
            with_0x = match.group(0).startswith("0x")
            yield Finding("a private key (0x and 64 hex digits) is written literally" if with_0x
                          else "a private key (64 hex digits) is written literally", (match.group(0),))


_CANDIDATE = re.compile(r"://|=|-----BEGIN|[A-Za-z0-9_\-+/.~]{16}|\benv\b|\{\{")
"""What every shape, URL, query, random word and template literal has: a string without it (and
without twelve words, see :func:`_seed_phrases`) needs only the key rules."""
_TOKEN = re.compile(r"\S+")
_SEED_SHAPE = re.compile(r"[a-z]{3,8}")
_LONGEST_WORD = 9
"""The longest word of any BIP-39 list (Italian's); a longer token is in none."""
"""A seed phrase's word when no word list can be read: short and lowercase."""
_STRING_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'" + r'|"((?:[^"\\]|\\.)*)"')
_ENV_DEFAULT = re.compile(
    r"""\benv(?:\.(\w+)|\[\s*['"](\w+)['"]\s*\])\s*\|\s*(?:default|d)\s*\(\s*"""
    r"""(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")"""
    r"""|\benv\.get\(\s*['"](\w+)['"]\s*,\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")""")
"""``env.NAME | default('...')``, ``env['NAME'] | d("...")``, ``env.get('NAME', '...')``: the
literal stands in for the variable, so it is judged as the value of a key named ``NAME``."""
_SEED_PHRASE_WORDS = 12
_PROSE_TOKEN = re.compile(r"(?<![A-Za-z0-9_\-+/=.~])[A-Za-z0-9_\-+/=.~]{16,}(?![A-Za-z0-9_\-+/=.~])")


class _WordList:
    """One BIP-39 word list, kept in the resident agent as one string and an array of offsets
    (about 30 KB a language; as a set of strings the nine lists held 2.4 MB): membership by
    binary search over the sorted words."""

    def __init__(self, words: Iterable[str]) -> None:
        ordered = sorted(set(words))
        self._text = "".join(ordered)
        self._starts = array("I", itertools.accumulate((len(w) for w in ordered), initial=0))
        self.size = len(ordered)

    def _word(self, i: int) -> str:
        return self._text[self._starts[i]:self._starts[i + 1]]

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str):
            return False
        i = bisect.bisect_left(range(self.size), word, key=self._word)
        return i < self.size and self._word(i) == word


@functools.lru_cache(maxsize=1)
def _bip39_words() -> tuple[_WordList, ...] | None:
    """The BIP-39 word lists of every language (English, Spanish, French, Italian, Czech, Japanese,
    Korean, Chinese), read from the eth_account distribution (a dependency of the bot and the
    exchange actions) through ``importlib.metadata`` without importing eth_account (tens of MB the
    resident agent does not need), in NFC (a phrase's words are compared in NFC, however they are
    written). None without them: the shape alone decides."""
    try:
        found = [f for f in importlib.metadata.files("eth-account") or []
                 if "hdaccount/wordlist/" in f.as_posix() and f.name.endswith(".txt")]
        lists = tuple(_WordList(unicodedata.normalize("NFC", w) for w in f.read_text(encoding="utf-8").split())
                      for f in found)
    except (importlib.metadata.PackageNotFoundError, OSError):  # pragma: no cover - locked in requirements
        return None
    lists = tuple(words for words in lists if words.size == 2048)
    return lists or None


@functools.lru_cache(maxsize=4096)
def _languages(word: str) -> int:
    """The word lists ``word`` (in NFC) is in, as bits (bit i: list i); any short lowercase word
    without the lists."""
    lists = _bip39_words()
    if lists is None:
        return 1 if _SEED_SHAPE.fullmatch(word) else 0
    if len(word) > _LONGEST_WORD:
        return 0
    return sum(1 << i for i, known in enumerate(lists) if word in known)


_SEED_WORD = re.compile(r"(?:[^\W\d_]|[\u0300-\u036f\u3099\u309a])+")
"""A word of a seed phrase as written: letters only, so words joined by commas, hyphens or
underscores, numbered (``1. legal 2. winner``) or one a line are read one by one."""


def _seed_runs(text: str) -> Iterator[tuple[int, list[re.Match[str]]]]:
    """(number of words, the words) of every run of twelve or more words of one BIP-39 word list
    in ``text``, in any case (``LEGAL Winner``), whatever stands between them."""
    tokens = [*_SEED_WORD.finditer(text)]
    if len(tokens) < _SEED_PHRASE_WORDS:
        return
    masks: list[int] = []
    longest = streak = 0
    for m in tokens:  # a word in no list ends every run: most texts stop at their first words
        masks.append(_languages(unicodedata.normalize("NFC", m.group(0).lower())))
        streak = streak + 1 if masks[-1] else 0
        longest = max(longest, streak)
    if longest < _SEED_PHRASE_WORDS:
        return
    said: set[tuple[int, int]] = set()
    for bit in (1 << i for i in range(len(_bip39_words() or (None,)))):
        run: list[re.Match[str]] = []
        for token, mask in [*zip(tokens, masks, strict=True), (None, 0)]:
            if token is not None and mask & bit:
                run.append(token)
                continue
            span = (run[0].start(), run[-1].end()) if run else (0, 0)
            if len(run) >= _SEED_PHRASE_WORDS and span not in said:
                said.add(span)
                yield len(run), run
            run = []


def _seed_phrases(text: str) -> Iterator[Finding]:
    """Twelve or more words in a row of one BIP-39 word list (a wallet's seed phrase: English,
    Japanese with ideographic spaces, Chinese a character a word...), in a value or in prose;
    words are compared in NFC and lower case, however their accents and case are written."""
    for count, run in _seed_runs(text):
        # the phrase as written (one part: its words are common words), line by line
        lines: dict[int, list[re.Match[str]]] = {}
        for word in run:
            lines.setdefault(text.count("\n", 0, word.start()), []).append(word)
        parts = tuple(text[words[0].start():words[-1].end()] for words in lines.values())
        yield Finding(f"a seed phrase ({count} BIP-39 words) is written literally", parts)


def _seed_phrase_over_lines(file: str, text: str, lines: Iterable[int] | None = None,
                            shown: list[str] | None = None) -> list[Diagnostic]:
    """A seed phrase spread over several lines of ``text`` (only ``lines``, 1-based, when given:
    the comment lines of a YAML file), one diagnostic at its first line (``shown``: the file's
    lines, when ``text`` holds only a part of each)."""
    rows = text.split("\n")
    shown = shown if shown is not None else rows
    chosen = sorted(set(lines)) if lines is not None else range(1, len(rows) + 1)
    out: list[Diagnostic] = []
    block: list[int] = []
    for number in [*chosen, -1]:
        if block and number == block[-1] + 1:
            block.append(number)
            continue
        if len(block) > 1:
            joined = "\n".join(rows[n - 1] for n in block)
            for finding in _seed_phrases(joined):
                if len(finding.parts) > 1:  # on one line it is found with its line
                    first = next(n for n in block if finding.parts[0] in rows[n - 1])
                    column = rows[first - 1].find(finding.parts[0]) + 1
                    out.append(Diagnostic(file, first, column, finding.kind + " (over several lines)", SECRET_HINT,
                                          source_line=mask_shown(shown[first - 1], finding.parts)))
        block = [number]
    return out


def _embedded_literals(text: str, key: Any) -> Iterator[tuple[Any, str]]:
    """(the key it stands for, the literal) of every string literal inside a template part of
    ``text`` (``{{ 'xoxb-...' }}``), and of every default of an environment variable, in a
    template or an expression (``env.API_TOKEN | default('hunter22')``): the variable's name is
    its key."""
    parts = [m.group(0) for m in _TEMPLATE_PART.finditer(text)]
    for part in [*parts, *([] if parts else [text])]:
        defaults: list[tuple[int, int]] = []
        for match in _ENV_DEFAULT.finditer(part):
            name = match[1] or match[2] or match[5]
            value = next((g for g in (match[3], match[4], match[6], match[7]) if g is not None), "")
            defaults.append(match.span())
            if value:
                yield name, value
        if parts:  # inside a template part every string literal is text written in the file
            for match in _STRING_LITERAL.finditer(part):
                if not any(lo <= match.start() < hi for lo, hi in defaults):
                    literal = match[1] if match[1] is not None else match[2]
                    if literal:
                        yield key, literal


@functools.lru_cache(maxsize=4096)
def find_secret(text: str, key: Any = None) -> Finding | None:
    """The secret ``text`` (the value of ``key``) holds written literally, or None: the kind of
    the first one found, the parts of every one (all are masked)."""
    if "{#" in text:  # a Jinja comment is text written in the file, read as it is
        text = _TEMPLATE_COMMENT_MARKS.sub(lambda m: " " * len(m.group(0)), text)
    if not _CANDIDATE.search(text) and not (isinstance(key, str)
                                            and _SECRET_KEY.search(_words(key).removesuffix("_env"))):
        found = list(_seed_phrases(text))  # plain prose: only a seed phrase can hide in it
    else:
        found = list(_findings(text, key))
    if not found:
        return None
    return Finding(found[0].kind, tuple(dict.fromkeys(p for f in found for p in f.parts)))


def _folded(text: str) -> str:
    """``text`` with every template part that is only string literals replaced by what it renders:
    ``mailtos://ops:{{ 'pw' }}@host`` is ``mailtos://ops:pw@host``."""
    return _LITERAL_ONLY_PART.sub(lambda m: "".join(a or b for a, b in _STRING_LITERAL.findall(m[1])), text)


def _findings(text: str, key: Any) -> Iterator[Finding]:
    folded = _folded(text) if "{{" in text else text
    if folded != text and (found := find_secret(folded, key)) is not None:
        yield Finding(f"{found.kind} (written in a template)", found.parts)
    literal = _TEMPLATE_PART.sub(" ", text)
    marked = _TEMPLATE_PART.sub(_MARK, text)
    for inner_key, inner in _embedded_literals(text, key):
        judged_as = None if "://" in inner and inner_key != key else inner_key  # a URL default: by its parts
        if inner != text and (found := find_secret(inner, judged_as)) is not None:
            where = f"the default of env.{inner_key}" if inner_key != key else "a string in a template"
            yield Finding(f"{found.kind} ({where})", found.parts)
    yield from _seed_phrases(literal)
    for kind, shape in _SHAPES:
        for match in shape.finditer(literal):
            yield Finding(f"{kind} is written literally", (match.group(0),))
    for url in _URL.findall(marked):
        for one in parse_urls(url):
            yield from _url_findings(one)
    yield from _query_findings(marked)
    yield from _hex_findings(literal, key)
    key_words = _words(key)
    whole_literal = literal == text
    if (key_words.lower().endswith("_env") and _SECRET_KEY.search(key_words[:-4]) and whole_literal
            and (not re.fullmatch(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*", text) or looks_random(text.strip()))
            and _value_shaped(text)):
        # `private_key_env: "0x..."`: the value itself where the name of its variable belongs
        yield Finding(f"{key!r} names an environment variable, and this is not a name: it looks like the "
                      "secret itself", (text.strip(),))
        return
    if (key_words and _SECRET_KEY.search(key_words) and not key_words.lower().endswith("_env")
            and whole_literal and _value_shaped(text)):  # the whole value literal: a template is fine
        yield Finding(f"{key!r} holds a value written literally", (text.strip(),))
        return
    for match in _PROSE_TOKEN.finditer(literal):  # prose: "token Xq7R...", "the password is s3cr3t-99"
        before = literal[max(0, match.start() - 24):match.start()]
        if match.group(0) != literal.strip() and _SECRET_WORD.search(before) and looks_random(match.group(0)) \
                and not _HEX64.fullmatch(match.group(0)):
            yield Finding("what looks like a token is written literally after the word "
                          f"{_SECRET_WORD.findall(before)[-1]!r}", (match.group(0),))
    word = text.strip()
    if (whole_literal and re.fullmatch(r"[A-Za-z0-9_\-+/=.~]+", word) and looks_random(word)
            and not re.fullmatch(r"0x[0-9a-fA-F]{40}", word)  # an address is public
            and not (key_words and (_HASH_KEY.search(key_words) or key_words.lower().endswith("_env")))):
        if key_words and _WEAK_SECRET_KEY.search(key_words):
            yield Finding(f"{key!r} holds a value written literally", (word,))
        elif len(word) >= 32 and any(c.isupper() for c in word) and any(c.islower() for c in word) \
                and re.search(r"[g-zG-Z]", word):  # not hex: a digest is not a secret
            yield Finding("what looks like a token is written literally", (word,))


_LINE_ENTRY = re.compile(r"""^\s*(?:-\s+)*(["']?)([^\s:=#"'{}\[\],][^:=#]*?)\1\s*(?::(?=\s|$)|=)\s*(.*?)\s*$""")
_QUOTED_VALUE = re.compile(r"""^(["'])(.*)\1$""")
_FLOW_ENTRY = re.compile(r"""[{,]\s*(["']?)([^\s:,{}"'\[\]]+)\1\s*:\s+([^,{}]*)""")
MAX_SCANNED_LINE = 4096
"""The longest raw line :func:`line_secrets` reads whole; a longer one is shown only cut short
(:data:`~agent.playbook.diagnostics.MAX_SHOWN_LINE`), and read in pieces of this size."""


def _line_candidates(line: str) -> Iterator[tuple[Any, str]]:
    """(key, text) of what one raw line of a configuration file may hold: the whole line, an
    entry ``key: value`` / ``NAME=value`` (an env-file line), the key alone, flow mapping
    entries, the text after ``#``."""
    yield None, line
    entry = _LINE_ENTRY.match(line)
    if entry:
        key, value = entry[2].strip(), entry[3]
        value = value.split(" #", 1)[0].strip()
        quoted = _QUOTED_VALUE.match(value)
        yield key, quoted[2] if quoted else value
        yield None, key
    for quoted in _STRING_LITERAL.finditer(line):  # a quoted value, whatever follows it on the line
        yield (entry[2].strip() if entry else None), quoted[1] if quoted[1] is not None else quoted[2]
    for flow in _FLOW_ENTRY.finditer(line):
        yield flow[2], flow[3].strip().strip("\"'")
        yield None, flow[2]
    for hash_ in re.finditer(r"(?:^|(?<=[ \t]))#", line):
        yield None, line[hash_.end():]
        break


def line_finding(line: str) -> Finding | None:
    """The secret one raw line holds (the kind of the first found, the parts of all), read
    without the document around it (:func:`line_secrets`)."""
    parts = line_secrets(line)
    if not parts:
        return None
    kinds = (found.kind for key, text in reversed([*_line_candidates(line[:MAX_SCANNED_LINE])])
             if text and (found := find_secret(text, key)) is not None)
    return Finding(next(kinds, "a secret is written literally"), parts)


def template_file_secret_problems(files: Mapping[str, bytes], directory: Path | None) -> list[Diagnostic]:
    """A secret written in a template file (in its text, in a string of an expression, in a
    ``{# comment #}``): refused as in a playbook; the files are those a load read (``files``,
    by absolute path) in the templates ``directory``, every one of them, named or included."""
    if directory is None:
        return []
    root = os.path.abspath(directory)
    out: list[Diagnostic] = []
    for name, data in sorted(files.items()):
        if not name.startswith(root + os.sep):
            continue
        text = data.decode("utf-8", errors="replace")
        for number, source in enumerate(re.split(r"\r\n|\r|\n", text), 1):
            # a comment is text written in the file: read it as text
            finding = line_finding(_TEMPLATE_COMMENT_MARKS.sub(lambda m: " " * len(m.group(0)), source))
            if finding is not None:
                column = min((source.find(p) for p in finding.parts if p in source), default=0) + 1
                out.append(Diagnostic(name, number, column, f"in a template file: {finding.kind}", SECRET_HINT,
                                      source_line=source))
        out += _seed_phrase_over_lines(name, text)
    return out


@functools.lru_cache(maxsize=4096)
def line_secrets(line: str) -> tuple[str, ...]:
    """The secret parts one raw line of a configuration file (YAML, an env-file line pasted in
    one, a template) holds, read without the document around it: whatever else is known of the
    file, a line shown to anyone is masked by these (:func:`mask_shown`)."""
    if len(line) > MAX_SCANNED_LINE:
        pieces = [line[i:i + MAX_SCANNED_LINE] for i in range(0, len(line), MAX_SCANNED_LINE // 2)]
        return tuple(dict.fromkeys(p for piece in pieces for p in line_secrets(piece)))
    parts: list[str] = []
    for key, text in reversed([*_line_candidates(line)]):  # the entry's own parts first
        if text and (found := find_secret(text, key)) is not None:
            # the whole line read as one token (``NAME=0x...``) when its value is known: the value
            parts += [p for p in found.parts if not any(q in p for q in parts)]
    return tuple(dict.fromkeys(parts))


def mask_shown(text: str | None, parts: Iterable[str] = ()) -> str | None:
    """``text`` (a source line, a message, a hint) as it may be shown: every secret part it holds
    by itself (:func:`line_secrets`) and every one of ``parts`` replaced by ``*`` one for one."""
    if not text:
        return text
    own = line_secrets(text)
    if any(part not in text for part in own):  # found decoded (a URL's %20...): hide the whole value
        entry = _LINE_ENTRY.match(text)
        start = entry.start(3) if entry else 0
        return text[:start] + re.sub(r"[^\s\"'{}\[\],]", "*", text[start:])
    for part in sorted({*own, *parts}, key=len, reverse=True):
        if len(part) >= 4 or part in own:
            text = text.replace(part, "*" * len(part))
    return text


def secret_in_text(text: str, key: Any = None) -> str | None:
    """What kind of secret ``text`` (the value of ``key``) holds written literally, or None."""
    found = find_secret(text, key)
    return found.kind if found else None


def literal_secrets(url: str) -> list[str]:
    """What looks like a secret written literally in a URL template (not through ``env``)."""
    found = find_secret(url)
    return [found.kind] if found else []


def mask_line(line: str | None, parts: tuple[str, ...], column: int = 1) -> str | None:
    """``line`` with every secret part written from ``column`` on (the value) replaced by ``*``
    one for one (the caret stays aligned); a part is masked where it stands as a whole word, so a
    one-letter token does not mask that letter everywhere. A part not written as is on the line
    (escaped, folded, on a later line) hides the whole value: it is never shown."""
    if line is None:
        return None
    head, value = line[:max(column - 1, 0)], line[max(column - 1, 0):]
    for part in sorted(parts, key=len, reverse=True):
        if not part:
            continue
        word = re.compile(r"(?<![A-Za-z0-9])" + re.escape(part) + r"(?![A-Za-z0-9])")
        masked_value = word.sub(lambda m: "*" * len(m.group(0)), value)
        if masked_value == value:
            masked_value = value.replace(part, "*" * len(part))
        if masked_value == value and "*" * len(part) not in value:  # not masked already
            return head + re.sub(r"[^\s\"'{}\[\],]", "*", value)
        value = masked_value
    return head + value


def masked(diagnostic: Diagnostic, finding: Finding) -> Diagnostic:
    """``diagnostic`` with the secret hidden in its source line."""
    return dataclasses.replace(diagnostic, source_line=mask_line(diagnostic.source_line, finding.parts,
                                                                 diagnostic.column))


def _as_text(value: Any) -> str | None:
    """A string as it is; an integer too wide for any count or port (YAML reads an unquoted
    ``0x`` + 64 hex digits as one) as the hex it was written in: a private key either way."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"0x{value:064x}"
    return None


def _as_written(doc: SourceDocument, path: Path_, finding: Finding) -> Finding:
    """``finding`` told as the value was written: an integer written in decimal is not "0x and
    64 hex digits" (:func:`_as_text` read it as hex)."""
    value: Any = doc.data
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return finding
    if not isinstance(value, int) or isinstance(value, bool):
        return finding
    line, column = doc.position(path)
    written = doc.lines[line - 1][column - 1:] if 0 < line <= len(doc.lines) else ""
    if re.match(r"[-+]?0[xX]", written):
        return finding
    digits = str(abs(value))
    return Finding(f"a number of {len(digits)} digits is written literally: as large as a secret key "
                   "(a key written in decimal?)", (digits,))


def _strings(data: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any, str]]:
    """(path, key, text) of every string of ``data``, the document itself when it is one (a file
    holding an env-file line ``NAME=value`` is one string), and of every list of single words read
    as one text (a seed phrase written as a YAML list)."""
    if not path and (text := _as_text(data)) is not None:
        entry = _LINE_ENTRY.match(text) if "\n" not in text.strip() else None
        quoted = _QUOTED_VALUE.match(entry[3]) if entry else None
        yield ((), entry[2].strip(), quoted[2] if quoted else entry[3]) if entry else ((), None, text)
        return
    if isinstance(data, list) and len(data) >= _SEED_PHRASE_WORDS and all(
            isinstance(v, str) and re.fullmatch(r"\s*[^\W\d_]+\s*", v) for v in data):
        yield path, (path[-1] if path else None), " ".join(data)
    if isinstance(data, dict):
        for key, value in data.items():
            text = _as_text(value)
            if text is not None:
                yield (*path, key), key, text
            else:
                yield from _strings(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            text = _as_text(value)
            if text is not None:
                yield (*path, i), (path[-1] if path else None), text
            else:
                yield from _strings(value, (*path, i))


def _keys(data: Any, path: Path_ = ()) -> Iterator[tuple[Path_, str]]:
    """(path, key) of every mapping key of ``data`` written as text."""
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str):
                yield (*path, key), key
            yield from _keys(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _keys(value, (*path, i))


def literal_secret_problems(doc: SourceDocument, *, skip: tuple[Path_, ...] = ()) -> list[Diagnostic]:
    """One diagnostic per string of ``doc`` that holds a secret written literally, the document
    itself when it is one string and every mapping key included; paths in ``skip`` (and below)
    are checked elsewhere (target URLs, with their own message)."""
    out: list[Diagnostic] = []
    if doc.data is None:  # not read as YAML (a syntax error): its lines are read one by one
        for number, source in enumerate(doc.lines, 1):
            finding = line_finding(source)
            if finding is not None:
                column = min((source.find(p) for p in finding.parts if p in source), default=0) + 1
                out.append(doc.at(number, column, finding.kind, SECRET_HINT))
    for path, key, text in _strings(doc.data):
        if any(path[:len(s)] == s for s in skip):
            continue
        finding = find_secret(text, key)
        if finding:
            finding = _as_written(doc, path, finding)
            out.append(masked(doc.diagnostic(path, finding.kind, SECRET_HINT), finding))
    for path, key in _keys(doc.data):
        finding = find_secret(key)
        if finding:
            out.append(doc.diagnostic(path, f"a mapping key: {finding.kind}", SECRET_HINT, at_key=True))
    return out


def comments(doc: SourceDocument) -> Iterator[tuple[int, int, str]]:
    """(line, column, text) of every YAML comment of ``doc`` (1-based; the text after ``#``).
    A comment is what PyYAML's scanner leaves between its tokens; a document it cannot scan
    gives none (its syntax error is reported anyway)."""
    text = "\n".join(doc.lines)
    covered: dict[int, list[tuple[int, int]]] = {}
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            start, end = token.start_mark, token.end_mark
            for line in range(start.line, end.line + 1):
                lo = start.column if line == start.line else 0
                hi = end.column if line == end.line else 1 << 30
                covered.setdefault(line, []).append((lo, hi))
    except (yaml.YAMLError, RecursionError):
        return
    for index, source in enumerate(doc.lines):
        spans = covered.get(index, [])
        for match in re.finditer("#", source):
            col = match.start()
            if (col == 0 or source[col - 1] in " \t") and not any(lo <= col < hi for lo, hi in spans):
                yield index + 1, col + 1, source[col + 1:]
                break


def _comment_secrets(doc: SourceDocument) -> Iterator[tuple[int, int, Finding]]:
    """(line, column, finding) of each comment of ``doc`` holding a secret. The scanner (pure
    Python, as slow as parsing the file again) runs only when some text after a ``#`` holds one."""
    if not any(find_secret(source[m.start() + 1:]) for source in doc.lines if "#" in source
               for m in re.finditer(r"(?:^|(?<=[ \t]))#", source)):
        return
    for line, column, text in comments(doc):
        finding = find_secret(text)  # prose, or a value standing alone on its line
        if finding:
            yield line, column, finding


def _comment_rows(doc: SourceDocument) -> tuple[str, list[int]]:
    """The text of ``doc`` with only its comments kept (each at its column), and their lines."""
    rows = [""] * len(doc.lines)
    after_hash = "\n".join(line[m.end():] for line in doc.lines if "#" in line
                           for m in [re.search(r"(?:^|(?<=[ \t]))#", line)] if m)
    if not any(True for _ in _seed_runs(after_hash)):  # PyYAML's scanner only when a phrase may be there
        return "", []
    numbers = []
    for line, column, text in comments(doc):
        rows[line - 1] = " " * column + text
        numbers.append(line)
    return "\n".join(rows), numbers


def comment_secret_problems(doc: SourceDocument) -> list[Diagnostic]:
    """A secret written in a comment is in git as surely as one in a value (read as prose: a
    transaction hash in a comment is not a key, ``# signer key 0x...`` is); a seed phrase may
    run over several comment lines."""
    text, numbers = _comment_rows(doc)
    out: list[Diagnostic] = _seed_phrase_over_lines(doc.file, text, numbers, doc.lines) if numbers else []
    for line, column, finding in _comment_secrets(doc):
        if finding:
            diagnostic = doc.at(line, column, f"in a comment: {finding.kind}", "delete it from the file (and "
                                "from the git history: the secret is no longer one, replace it)")
            out.append(dataclasses.replace(diagnostic, source_line=mask_line(diagnostic.source_line, finding.parts,
                                                                             column)))
    return out


def secret_lines(doc: SourceDocument) -> dict[int, tuple[int, tuple[str, ...]]]:
    """Line -> (column of the value, the secret parts written in it), for every string of ``doc``:
    any diagnostic shown at one of these lines hides them (:func:`hide_secrets`)."""
    out: dict[int, tuple[int, tuple[str, ...]]] = {}
    for path, key, text in _strings(doc.data):
        finding = find_secret(text, key)
        if finding:
            line, column = doc.position(path)
            before = out.get(line, (column, ()))
            parts = finding.parts
            if text.startswith("0x") and all(p.lower().removeprefix("0x") in text for p in parts):
                parts = (*parts, str(int(text, 16)))  # a message may quote it as the integer YAML read
            out[line] = (min(before[0], column), (*before[1], *parts))
    for path, key in _keys(doc.data):
        finding = find_secret(key)
        if finding:
            line, column = doc.position(path, at_key=True)
            before = out.get(line, (column, ()))
            out[line] = (min(before[0], column), (*before[1], *finding.parts))
    for line, column, finding in _comment_secrets(doc):
        if finding:
            before = out.get(line, (column, ()))
            out[line] = (min(before[0], column), (*before[1], *finding.parts))
    text, numbers = _comment_rows(doc)
    for finding in (f for f in _seed_phrases(text) if len(f.parts) > 1) if numbers else ():
        for number, row in enumerate(text.split("\n"), 1):
            here = tuple(p for p in finding.parts if p in row)
            if here:
                before = out.get(number, (1, ()))
                out[number] = (1, (*before[1], *here))
    for number, source in enumerate(doc.lines, 1):  # read as raw lines too: what the data misses
        parts = line_secrets(source)
        if parts:
            before = out.get(number, (1, ()))
            out[number] = (1, (*before[1], *parts))
    return out


def hide_secrets(diagnostics: list[Diagnostic],
                 lines: dict[str, dict[int, tuple[int, tuple[str, ...]]]]) -> list[Diagnostic]:
    """``diagnostics`` with the secrets of ``lines`` (file -> :func:`secret_lines`) masked in the
    source lines they show, and in their messages and hints, whatever the diagnostic is about."""
    out = []
    for d in diagnostics:
        at = lines.get(d.file, {}).get(d.line)
        if at:
            d = dataclasses.replace(d, source_line=mask_line(d.source_line, at[1], at[0]))
        # The message and hint may quote a value of any line ("'https://hooks...' is not a
        # duration"): every secret of the file is hidden there too.
        parts = [p for _, found in lines.get(d.file, {}).values() for p in found]
        if parts:
            d = dataclasses.replace(d, message=_hide(d.message, parts) or d.message, hint=_hide(d.hint, parts))
        out.append(d)
    return out


def _hide(text: str | None, parts: list[str]) -> str | None:
    """``text`` with every secret part (and what quotes it whole) replaced by ``*``."""
    if not text:
        return text
    for part in sorted(set(parts), key=len, reverse=True):
        if len(part) >= 4:
            text = text.replace(part, "*" * min(len(part), 12))
    return text
