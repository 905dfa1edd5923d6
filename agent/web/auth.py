"""Who may use the page: users from the environment, sessions, CSRF tokens, sign-in throttling.

* **Users** come from the environment only (:func:`users_from_env`): ``operator`` and ``viewer``
  with the passwords in the variables the stack settings name (``make run`` generates them into
  ``var/secrets.env``), and one user per variable named ``<that variable>_<NAME>`` (user
  ``name``, lower case, same role), so each person's actions are audited under their own name.
  Every such variable is named ``*PASSWORD*``, so the redaction of logs and messages masks it.
  A user without a password does not exist.
* **Passwords** are compared in constant time over every user (:meth:`Users.authenticate`):
  the time taken says neither which names exist nor how much of a password was right.
* **Sessions** live in this process only (:class:`Sessions`): a random 256-bit id in an
  HttpOnly, SameSite=Strict cookie; restarting the page signs everyone out. Each session has
  its own CSRF token, required on every form (compared in constant time).
* **Confirmations** (:meth:`Session.confirmation`): the page that asks to confirm a destructive
  play carries a random token bound to that session, play and hosts; running the play consumes
  it (one ``dict.pop``, no ``await`` in between, so of concurrent submissions exactly one gets
  it). A double tap, a replayed form or a second tab runs the play once.
* **Sign-in throttling** (:class:`SignInThrottle`): failures are counted per (user name, client
  address) pair in a sliding window (the keys are the caller's: :mod:`agent.web.signin`); past
  the limit, sign-in for that pair is refused (429) until the oldest failure leaves the window,
  for the right password too. Other names from that address, and that name from elsewhere, are
  not held back: a stranger behind the operator's proxy cannot lock the operator out by
  guessing, and a name that does not exist is counted exactly like one that does.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["operator", "viewer"]
ROLES: tuple[str, ...] = ("operator", "viewer")


class UsersError(ValueError):
    """The users' variables contradict each other (the message names a variable, never a password)."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    @property
    def can_act(self) -> bool:
        return self.role == "operator"

    @property
    def actor(self) -> str:
        """How the audit trail names this user's actions."""
        return f"web:{self.name}"


def _digest(password: str) -> bytes:
    return hashlib.sha256(password.encode("utf-8")).digest()


class Users:
    """Name -> (role, password digest). Digests of equal length make the comparison constant-time."""

    def __init__(self, entries: Mapping[str, tuple[Role, str]]) -> None:
        self._entries = {name: (role, _digest(pw)) for name, (role, pw) in entries.items() if pw}

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when ``name`` and ``password`` match one, else None; compares against every user."""
        given_name, given_pw = _digest(name), _digest(password)
        found: User | None = None
        for user_name, (role, digest) in self._entries.items():
            name_ok = hmac.compare_digest(_digest(user_name), given_name)
            pw_ok = hmac.compare_digest(digest, given_pw)
            if name_ok & pw_ok:
                found = User(user_name, role)
        return found


def users_from_env(env: Mapping[str, str], *, operator_env: str, viewer_env: str) -> Users:
    """The users the environment defines (see the module docstring). Raises :class:`UsersError`
    when one name is given two roles."""
    entries: dict[str, tuple[Role, str]] = {}
    for role, base in (("operator", operator_env), ("viewer", viewer_env)):
        for var, password in sorted(env.items()):
            if not password:
                continue
            if var == base:
                name = role
            elif var.startswith(base + "_") and len(var) > len(base) + 1:
                name = var[len(base) + 1:].lower()
            else:
                continue
            if name in entries and entries[name][0] != role:
                raise UsersError(f"user {name!r} is given two roles (${var} and another variable): keep one")
            entries[name] = (role, password)  # type: ignore[assignment]
    return Users(entries)


CONFIRMATION_SECONDS = 600.0
"""How long a confirmation page may wait for its answer."""
ACTION_TOKENS_KEPT = 500
"""One-time action tokens a session keeps (one per action path; the oldest dropped past that)."""
SENDS_PER_TOKEN_KEPT = 50
"""Different forms remembered per used action token (the oldest forgotten past that)."""
CONFIRMATIONS_KEPT = 20
"""Confirmations a session may hold at once (the oldest is dropped past that)."""


def tokens_equal(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())


@dataclass
class Session:
    id: str
    user: User
    csrf: str
    expires_at: float
    flash: list[tuple[str, str]] = field(default_factory=list)
    """(kind, text) messages shown once on the next page: what an action did or why it did not."""
    _confirmations: dict[str, tuple[str, tuple[str, ...], float]] = field(default_factory=dict, repr=False)
    _once: dict[str, str] = field(default_factory=dict, repr=False)
    _used: dict[str, tuple[str, dict[str, float]]] = field(default_factory=dict, repr=False)
    """A used one-time token -> (its path, digest of each different form sent with it -> when)."""

    def action_token(self, path: str) -> str:
        """The one-time token an action form for ``path`` carries (``once``): the same one
        until it is used (a page re-rendered keeps its forms valid), then a new one."""
        token = self._once.get(path)
        if token is None:
            while len(self._once) >= ACTION_TOKENS_KEPT:
                del self._once[next(iter(self._once))]
            token = self._once[path] = secrets.token_urlsafe(18)
        return token

    def use_action_token(self, path: str, token: str, sent: str = "", *,
                         now: float | None = None) -> tuple[str, float | None]:
        """``("ok", None)`` for the current token of ``path`` (used up now, before anything
        runs), and for a token already used by this session's forms for ``path`` when what is
        sent now (``sent``: the form's fields) differs from everything sent with it: another
        tab or an older page of this session carries the same token (one per path), and a
        different action (another silence, the emergency after another play's check) is no
        double submit. ``("used", when)`` for a token already sent with the same fields (a
        double submit, a resent form, the same form in a second tab: nothing runs again);
        ``("unknown", None)`` otherwise (an old or forged form)."""
        now = time.time() if now is None else now
        digest = hashlib.sha256(sent.encode("utf-8", "surrogatepass")).hexdigest()
        current = self._once.get(path)
        if current is not None and token and tokens_equal(current, token):
            del self._once[path]
            while len(self._used) >= ACTION_TOKENS_KEPT:
                del self._used[next(iter(self._used))]
            self._used[token] = (path, {digest: now})
            return "ok", None
        used = self._used.get(token) if token else None
        if used is None or used[0] != path:
            return "unknown", None
        if digest in used[1]:
            return "used", used[1][digest]
        if len(used[1]) >= SENDS_PER_TOKEN_KEPT:
            del used[1][next(iter(used[1]))]
        used[1][digest] = now
        return "ok", None

    def say(self, kind: str, text: str) -> None:
        self.flash.append((kind, text))

    def confirmation(self, play: str, hosts: list[str], *, now: float | None = None) -> str:
        """A new single-use token confirming ``play`` on ``hosts`` (see :meth:`consume`)."""
        now = time.monotonic() if now is None else now
        for token in [t for t, (_, _, until) in self._confirmations.items() if until <= now]:
            del self._confirmations[token]
        while len(self._confirmations) >= CONFIRMATIONS_KEPT:
            del self._confirmations[next(iter(self._confirmations))]
        token = secrets.token_urlsafe(24)
        self._confirmations[token] = (play, tuple(hosts), now + CONFIRMATION_SECONDS)
        return token

    def consume(self, token: str | None, play: str, hosts: list[str], *, now: float | None = None) -> bool:
        """True once for a token :meth:`confirmation` gave for this ``play`` and ``hosts`` and
        not expired; the token is used up whatever the answer (a replay is always refused)."""
        found = self._confirmations.pop(token, None) if token else None
        if found is None:
            return False
        now = time.monotonic() if now is None else now
        return found[0] == play and found[1] == tuple(hosts) and now < found[2]

    def take_flash(self) -> list[tuple[str, str]]:
        out, self.flash = self.flash, []
        return out


@dataclass
class Sessions:
    """Signed-in sessions of this process, by random id; each expires ``lifetime`` after sign-in."""

    lifetime: float
    clock: object = field(default=time.monotonic, repr=False)
    _by_id: dict[str, Session] = field(default_factory=dict)
    _ended: dict[str, asyncio.Event] = field(default_factory=dict)

    def _now(self) -> float:
        return float(self.clock())  # type: ignore[operator]

    def create(self, user: User) -> Session:
        self._sweep()
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), self._now() + self.lifetime)
        self._by_id[session.id] = session
        return session

    def for_csrf(self, csrf: str) -> Session | None:
        """The session whose forms carry ``csrf`` (to render its one-time action tokens)."""
        return next((s for s in self._by_id.values() if tokens_equal(s.csrf, csrf)), None) if csrf else None

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is None:
            return None
        if session.expires_at <= self._now():
            self.end(session_id)
            return None
        return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._by_id.pop(session_id, None)
            if (ended := self._ended.pop(session_id, None)) is not None:
                ended.set()  # its streams stop now, not at their next change or heartbeat

    def ended(self, session_id: str) -> asyncio.Event:
        """Set when the session ends (sign-out; its expiry: see :meth:`left`)."""
        event = self._ended.setdefault(session_id, asyncio.Event())
        if session_id not in self._by_id:
            event.set()
        return event

    def left(self, session_id: str) -> float:
        """Seconds until the session expires (0 when it has ended)."""
        session = self._by_id.get(session_id)
        return max(0.0, session.expires_at - self._now()) if session is not None else 0.0

    def _sweep(self) -> None:
        now = self._now()
        for sid in [sid for sid, s in self._by_id.items() if s.expires_at <= now]:
            self.end(sid)


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time equality of two CSRF tokens; False when either is missing."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


THROTTLE_KEYS_KEPT = 10_000
"""(name, address) pairs the sign-in throttle remembers at most: a spray of random names from
one address within the window would otherwise keep one entry per name for the whole window."""


@dataclass
class SignInThrottle:
    """At most ``limit`` failed sign-ins per key (user name, client address) within ``window`` s.

    Memory is bounded whatever is sent: a key is kept as its SHA-256 digest (a user name may be
    as long as a form allows, 64 KiB), and at most ``max_keys`` are kept. Past that, keys whose
    failures all left the window go first; then the key with the fewest failures kept, the one
    counted last among those, makes room, and the new key is counted from its failures (so a
    key is only ever forgotten for one counted at least as high). Forgetting the oldest key not
    locked out let a spray of names reset a key one failure short of its lock-out: four guesses
    of the operator's password, 10 000 other names (4 s from one client), four more, and so on,
    60 guesses a minute instead of 5 in 5 minutes. Now the spray's own names make room for each
    other, and a key under attack keeps its count however many names are sent.

    A lock-out is never forgotten to make room: when the key that would make room is locked out
    (every key kept has ``limit`` failures, ``limit * max_keys`` inside one window), a key not
    kept is refused until that lock-out ends. Forgetting it let the spray's guess at ``operator``,
    counted last, be forgotten for the next made-up name: one more guess for every two requests."""

    limit: int = 5
    window: float = 300.0
    clock: object = field(default=time.monotonic, repr=False)
    max_keys: int = THROTTLE_KEYS_KEPT
    _failures: dict[bytes, deque[float]] = field(default_factory=dict)
    """Each key's failures (times), the keys in the order of their last failure."""
    _counted: list[dict[bytes, None]] = field(default_factory=list, repr=False)
    """The keys with ``n + 1`` failures kept at index ``n``, in the order they came to that count."""

    def __post_init__(self) -> None:
        self._counted = [{} for _ in range(self.limit)]

    def _now(self) -> float:
        return float(self.clock())  # type: ignore[operator]

    @staticmethod
    def _key(key: str) -> bytes:
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, *keys: str) -> float:
        """Seconds until a sign-in is allowed again for all ``keys`` (0: allowed now)."""
        now, wait = self._now(), 0.0
        for key in keys:
            q = self._failures.get(self._key(key))
            if q is None:  # counted only if room is made for it: never by forgetting a lock-out
                wait = max(wait, self._full_for(now))
                continue
            recent = [t for t in q if t > now - self.window]
            if len(recent) >= self.limit:
                wait = max(wait, recent[0] + self.window - now)
        return wait

    def failed(self, *keys: str) -> None:
        now = self._now()
        for key in map(self._key, keys):
            q = self._forget(key)  # kept in the order of the last failure: stale ones first
            if q is None:
                victim = self._victim(now)
                if victim is not None and self._locked(self._failures[victim], now):
                    continue  # no room but a lock-out's: retry_after refuses this key meanwhile
                q = (self._forget(victim) if victim is not None else None) or deque(maxlen=self.limit)
            while q and q[0] <= now - self.window:
                q.popleft()
            q.append(now)
            self._failures[key] = q
            self._counted[len(q) - 1][key] = None

    def _forget(self, key: bytes) -> deque[float] | None:
        q = self._failures.pop(key, None)
        if q is not None:
            del self._counted[len(q) - 1][key]
        return q

    def _victim(self, now: float) -> bytes | None:
        """The key a new one would replace, its failures inherited (None: there is room). Keys
        whose failures all left the window are forgotten first."""
        if len(self._failures) < self.max_keys:
            return None
        while self._failures:
            oldest = next(iter(self._failures))
            if self._failures[oldest][-1] > now - self.window:
                break
            self._forget(oldest)
        if len(self._failures) < self.max_keys:
            return None
        fewest = next(c for c in self._counted if c)
        return next(reversed(fewest))

    def _locked(self, q: deque[float], now: float) -> bool:
        return len(q) >= self.limit and q[0] > now - self.window

    def _full_for(self, now: float) -> float:
        """Seconds until a key not kept can be counted without forgetting a lock-out (0: now)."""
        victim = self._victim(now)
        if victim is None:
            return 0.0
        q = self._failures[victim]
        return q[0] + self.window - now if self._locked(q, now) else 0.0
