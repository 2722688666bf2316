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


class SafetyDenied(CuaError):
    """A pending safety check was not acknowledged under the run's safety policy."""

    exit_code = 5


# A public alias without the trailing underscore; the underscore only avoids shadowing the builtin.
EnvError = EnvironmentError_
