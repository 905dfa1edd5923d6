"""Exceptions shaped by what the operator must do, and the CLI's exit codes.

* ``ConfigError``: refuse to start or reject the file; say where and what to change.
* ``TransientError``: retry with backoff (a timeout, a 5xx, a refused connection).
* ``OperationalError``: stop and tell a human, with a hint.
* ``ModuleError``: a check or action failed in an expected way; the engine turns it into an
  UNKNOWN result or a failed task with the message, never a traceback.
Anything else escaping to the CLI is a bug and is labelled as such.
"""
from __future__ import annotations


class ExitCode:
    """Documented exit codes of the ``agent`` command (see README)."""

    OK = 0
    FAILED = 1  # validation errors found, or a task failed in run-playbook
    USAGE = 2  # bad command-line usage
    CONFIG = 3  # configuration cannot be loaded; nothing was started
    OPERATIONAL = 4  # something outside (supervisord, the store, the exchange) needs a human
    DECLINED = 5  # a destructive play was not confirmed
    BUG = 250  # an unexpected exception: please report it


class BotwardenError(Exception):
    """Base class. ``hint`` tells the operator what to do next."""

    exit_code: int = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(BotwardenError):
    exit_code = ExitCode.CONFIG


class TransientError(BotwardenError):
    exit_code = ExitCode.OPERATIONAL


class OperationalError(BotwardenError):
    exit_code = ExitCode.OPERATIONAL


class ModuleError(BotwardenError):
    """Raised by a module for an expected failure (unreachable endpoint, unknown program)."""
