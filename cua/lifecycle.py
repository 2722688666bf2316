"""The lifecycle every run shares, a model's (``cua.runner``) and a replay's (``cua.replay``).

One redactor for the whole run, the environment started and always stopped, the checks after the
task, and the end of the run folder (status, usage, cost, result, report) written whatever
happened — so a run and a replay end the same way, and neither reaches into the other.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol, Sequence

from .agent import EXIT_CODES, RunResult
from .config import RunSettings
from .environments.base import Environment
from .errors import ConfigError, CuaError
from .redact import Redactor
from .runs.writer import RunTrace


class Check(Protocol):
    """A post-run check (see ``cua.scenario``): returns ``{"name", "ok", "detail"}``."""

    async def evaluate(self, env: Environment, result: RunResult, trace: RunTrace) -> dict[str, Any]: ...


class RunCancelled(asyncio.CancelledError):
    """The run was cancelled (Ctrl-C, a caller's ``cancel()``, ``asyncio.wait_for``); its run
    folder is finished and marked ``interrupted``, and ``result`` says so."""

    def __init__(self, result: RunResult) -> None:
        super().__init__("run interrupted")
        self.result = result


def run_redactor(settings: RunSettings, secrets: dict[str, str] | Redactor | None = None, *,
                 vm_api_key: str | None = None) -> Redactor:
    """The run's one Redactor: scenario secrets (or a Redactor holding them), the API keys cua
    knows of, and the credentials inside the URLs of the settings."""
    redactor = secrets if isinstance(secrets, Redactor) else Redactor(secrets)
    redactor.add_environment()
    redactor.add("VM_API_KEY", vm_api_key)
    for name in ("cdp_url", "ws_endpoint", "vm_url"):
        redactor.add_url(name.upper() + "_CREDENTIAL", getattr(settings, name))
    for server in settings.mcp_servers:  # a remote MCP server's token rides in its URL
        redactor.add_url("MCP_SERVER_CREDENTIAL", server.get("server_url"))
    return redactor


async def within(env: Environment, result: RunResult, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body`` with ``env`` started and always stopped. An environment error ends the run
    with that status in ``result`` instead of an exception, so the caller can still finish the run
    folder; a cancellation marks the result ``interrupted`` and goes on as ``RunCancelled``."""
    try:
        async with env:
            await body()
    except CuaError as exc:  # the environment failed to start, act or stop
        result.status, result.error, result.exit_code = "error", str(exc), exc.exit_code
    except asyncio.CancelledError as exc:
        result.status, result.reason = "interrupted", "interrupted by the user"
        result.exit_code = EXIT_CODES["interrupted"]
        raise RunCancelled(result) from exc


def redacted(callback: Callable[[Any], None] | None, redactor: Redactor) -> Callable[[Any], None] | None:
    """``callback`` seeing only masked data: progress printers must not print secrets."""
    if callback is None or not redactor:
        return callback
    return lambda data: callback(redactor.obj(data))


async def run_checks(checks: Sequence[Check], env: Environment, result: RunResult, trace: RunTrace) -> None:
    """Evaluate every check; any failure turns a completed run into ``failed``."""
    for check in checks:
        try:
            outcome = await check.evaluate(env, result, trace)
        except CuaError as exc:
            outcome = {"name": getattr(check, "name", type(check).__name__), "ok": False, "detail": str(exc)}
            if isinstance(exc, ConfigError):  # a check that cannot run as configured: no retry changes it
                outcome["config_error"] = True
        result.checks.append(outcome)
    failed = [c for c in result.checks if not c["ok"]]
    if failed and result.status == "completed":
        result.status, result.exit_code = "failed", EXIT_CODES["failed"]
        result.reason = "check failed: " + "; ".join(f"{c['name']}: {c['detail']}" for c in failed)


def finish(trace: RunTrace, result: RunResult, started: float, final_screen: str | None = None) -> None:
    """Write the end of the run folder, and mask the result the caller gets the way run.json is
    masked: ``cua run --json`` prints it, and stdout is a log too."""
    if result.status == "running":  # ended by something that did not set a status
        result.status, result.exit_code = "error", result.exit_code or 1
    from .pricing import cost_of

    model = (trace.meta.get("settings") or {}).get("model")
    result.cost = cost_of(model, result.usage) if model else None
    redact = trace.redactor
    for name in ("final_text", "final_url", "error", "reason"):
        if getattr(result, name):
            setattr(result, name, redact.text(getattr(result, name)))
    result.checks = redact.obj(result.checks)
    trace.update(
        status=result.status,
        exit_code=result.exit_code,
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        duration_s=round(time.monotonic() - started, 3),
        steps=result.steps,
        usage=result.usage.as_dict(),
        cost=result.cost,
        final_text=result.final_text,
        final_url=result.final_url,
        error=result.error,
        reason=result.reason,
        checks=result.checks,
        healed=result.healed,
        diverged_at=result.diverged_at,
        final_screen=final_screen,
    )
    trace.close()


def render_report(run_dir: Path) -> None:
    """Write the finished run folder's report.html (imported late: a run that writes none never
    loads the renderer)."""
    from .report.html_report import write_report

    write_report(run_dir)
