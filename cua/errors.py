"""The errors a user of cua can meet. Each carries the process exit code the CLI uses for it.

Exit codes (documented in the README and relied upon by scripts):
  0 completed · 1 failed / max_steps / timeout / refused / diverged · 2 usage or configuration
  3 model API error (after retries) or unusable model output · 4 environment error
  5 safety_denied · 130 interrupted
"""

from __future__ import annotations


class CuaError(Exception):
    """Base of every error cua raises on purpose. ``str(err)`` is a sentence for the user."""

    exit_code: int = 1


class ConfigError(CuaError):
    """A bad flag, a missing API key, an invalid scenario file: the user must change something."""

    exit_code = 2


class ModelOutputError(CuaError):
    """The model sent something cua cannot execute (unknown action, bad field, unknown key name)."""

    exit_code = 3


class EnvironmentError_(CuaError):
    """The environment (browser, X display, VM) could not be started or stopped responding."""

    exit_code = 4


class ActionNotSupported(ModelOutputError):
    """The environment cannot perform this action (``navigate`` on a desktop, ``zoom`` where no
    full-resolution capture exists): said precisely, never skipped silently."""


class SafetyDenied(CuaError):
    """A pending safety check was not acknowledged under the run's safety policy."""

    exit_code = 5


# A public alias without the trailing underscore; the underscore only avoids shadowing the builtin.
EnvError = EnvironmentError_


def validation_problem(exc: Exception) -> str:
    """A pydantic ``ValidationError`` as our own words: the first field and what is wrong with it.

    ``str(exc)`` would end with a link to pydantic's documentation, which tells a user nothing.
    """
    errors = exc.errors() if hasattr(exc, "errors") else []  # type: ignore[attr-defined]
    if not errors:
        return str(exc).split("\n")[0]
    first = errors[0]
    field = ".".join(str(p) for p in first.get("loc", ()))
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"field {field}: {message}{more}" if field else f"{message}{more}"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (Playwright's run on with call logs)."""
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
