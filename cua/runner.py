"""One run, start to finish: the library call behind ``cua run``.

It wires the pieces (client, environment, trace, agent), runs the scenario's checks after the
task, and always leaves a readable run folder — after success, an error, a timeout or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol, Sequence

from .agent import EXIT_CODES, Agent, ResponsesLike, RunResult, SafetyPolicy
from .config import RunSettings
from .environments.base import Environment
from .errors import ConfigError, CuaError, validation_problem
from .functions import FunctionRegistry
from .redact import Redactor
from .runs.writer import RunTrace, make_portable, mask_archive, new_run_dir

if TYPE_CHECKING:
    from .scenario import Scenario


SCRIPTED_KEY = "sk-cua-scripted-standin"  # the stand-in's key for scripted runs; not a secret


class Check(Protocol):
    """A post-run check (see ``cua.scenario``): returns ``{"name", "ok", "detail"}``."""

    async def evaluate(self, env: Environment, result: RunResult, trace: RunTrace) -> dict[str, Any]: ...


async def run_task(
    settings: RunSettings,
    *,
    client: ResponsesLike | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    env: Environment | None = None,
    vm_api_key: str | None = None,
    functions: FunctionRegistry | None = None,
    safety: SafetyPolicy | None = None,
    checks: Sequence[Check] = (),
    secrets: dict[str, str] | None = None,
    label: str | None = None,
    extra_meta: dict[str, Any] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    on_env_event: Callable[[str, dict[str, Any]], None] | None = None,
    write_report: bool = True,
) -> RunResult:
    """Run ``settings.task`` and return its result; a ``CuaError`` before the run started
    (no API key, bad settings) is raised, everything after is reported in the result. A caller's
    cancellation ends the run (environment stopped, run folder kept, marked ``interrupted``) and
    propagates as ``RunCancelled``, a ``CancelledError``."""
    from .pricing import prices
    from .responses.client import ClientConfig, ResponsesClient

    prices()  # a bad CUA_PRICES file stops the run now, not after the model was paid for
    redactor = run_redactor(settings, secrets, vm_api_key=vm_api_key)
    if env is None:
        from .environments.factory import make_environment

        env = make_environment(settings, vm_api_key=vm_api_key, on_event=on_env_event)
    env.secrets = redactor.values()
    owns_client = client is None
    if client is None:
        config = ClientConfig.from_env(api_key=api_key, base_url=base_url)
        redactor.add("OPENAI_API_KEY", config.api_key)
        redactor.add_url("BASE_URL_CREDENTIAL", config.base_url)
        client = ResponsesClient(config)
    try:
        run_dir = new_run_dir(settings.out or "runs", label or settings.task or "run")
        if settings.playwright_trace and hasattr(env, "trace_path"):
            env.trace_path = run_dir / "playwright-trace.zip"
        trace = RunTrace(run_dir, redactor)
    except BaseException:
        if owns_client:
            await client.aclose()  # type: ignore[attr-defined]
        raise
    started = time.monotonic()
    trace.update(
        kind="run",
        task=settings.task,
        settings=settings.public(),
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(extra_meta or {}),
    )
    functions = functions if functions is not None else FunctionRegistry()
    agent = Agent(
        client, env, settings, trace=trace, functions=functions, safety=safety,
        on_step=redacted(on_step, redactor), on_event=redacted(on_event, redactor),
    )
    result = agent.result
    result.run_dir = str(run_dir)

    async def body() -> None:
        if settings.navigation_tools:
            _register_navigation(functions, env)
        await agent.run()
        if result.status == "completed" and checks:
            await run_checks(checks, env, result, trace)
        result.final_url = result.final_url or await env.current_url()

    try:
        await within(env, result, body)
    finally:
        if owns_client:
            await client.aclose()  # type: ignore[attr-defined]
        if settings.playwright_trace:
            mask_archive(run_dir / "playwright-trace.zip", redactor)
        finish(trace, result, started, final_screen=agent.last_screen)
        if write_report:
            _write_report(run_dir)
    return result


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


def _register_navigation(functions: FunctionRegistry, env: Environment) -> None:
    for name in ("goto", "back", "forward"):
        method = getattr(env, name, None)
        if method is not None and name not in functions:
            functions.register(method, name=name, description={
                "goto": "Open a URL in the current browser tab.",
                "back": "Go back one page in the browser history.",
                "forward": "Go forward one page in the browser history.",
            }[name])


def _write_report(run_dir: Path) -> None:
    try:
        from .report.html_report import write_report
    except ImportError:
        return
    write_report(run_dir)


# --- Scenarios ----------------------------------------------------------------------------------


async def run_scenario(
    scenario: "Scenario | str | Path",
    *,
    flags: dict[str, Any] | None = None,
    variables: dict[str, str] | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    notice: Callable[[str], None] | None = None,
    record: bool = False,
    **kwargs: Any,
) -> RunResult:
    """Run a scenario file: its variables, settings (``flags`` on top) and checks. The model it
    names is used, or the run fails (no API key: ``ConfigError``); its script plays through the
    stand-in only when asked for with model ``scripted``."""
    from .scenario import Scenario, build_checks, load_scenario, prepared, script_to_turns

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    with prepared(scenario, variables) as (rendered, secrets):
        data = {**rendered.settings_dict(), **{k: v for k, v in (flags or {}).items() if v is not None}}
        scripted = data.get("model") == "scripted"
        if scripted and not rendered.script:
            raise ConfigError(f"{scenario.path}: --model scripted needs a 'script' in the scenario")
        try:
            settings = RunSettings(**data)
        except ValueError as exc:
            raise ConfigError(f"{scenario.path}: {validation_problem(exc)}") from None
        meta = {
            "scenario": {
                "name": scenario.name,
                "path": str(scenario.path) if scenario.path else None,
                "checks": [c.model_dump(mode="json", exclude_none=True) for c in rendered.checks],
            },
            **(kwargs.pop("extra_meta", None) or {}),
        }
        common = dict(checks=build_checks(rendered), secrets=secrets, label=scenario.name,
                      extra_meta=meta, **kwargs)
        if not scripted:
            result = await run_task(settings, api_key=api_key, base_url=base_url, **common)
        else:
            from .testing.standin import StandIn

            with StandIn(turns=script_to_turns(rendered.script or []), api_key=SCRIPTED_KEY) as server:
                result = await run_task(settings, api_key=SCRIPTED_KEY, base_url=server.base_url, **common)
    if record and result.status == "completed" and result.run_dir:
        save_recording(Path(result.run_dir), scenario.recording_dir(), served_url=rendered.served_url)
        if notice:
            notice(f"recording saved to {scenario.recording_dir()}")
    return result


def save_recording(run_dir: Path, target: Path, served_url: str | None = None) -> None:
    """Copy a run folder to ``target`` with nothing of this machine in it (see ``make_portable``),
    replacing what was there only once the copy is complete."""
    import shutil

    staging = target.with_name(f".{target.name}.new")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(run_dir, staging)
    make_portable(staging, target, served_url)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
