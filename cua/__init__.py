"""cua: a computer-use automation runner for OpenAI, Claude and Gemini computer use.

The public surface, for scripts and tests::

    from cua import RunSettings, run_task, run_scenario, replay_run, StandIn
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "RunSettings": "cua.config",
    "Agent": "cua.agent",
    "RunResult": "cua.agent",
    "SafetyPolicy": "cua.agent",
    "FunctionRegistry": "cua.functions",
    "Provider": "cua.providers",
    "make_provider": "cua.providers",
    "ActionNotSupported": "cua.errors",
    "run_task": "cua.runner",
    "run_scenario": "cua.runner",
    "replay_run": "cua.replay.replayer",
    "load_scenario": "cua.scenario",
    "StandIn": "cua.testing.standin",
    "Turn": "cua.testing.standin",
    "CuaError": "cua.errors",
    "ConfigError": "cua.errors",
    "ModelOutputError": "cua.errors",
    "EnvError": "cua.errors",
    "SafetyDenied": "cua.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # Lazy, so `import cua` stays cheap (no Playwright, no HTTP client) for the CLI and plugin.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cua' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
