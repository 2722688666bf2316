"""One run, start to finish: the library call behind ``cua run``.

It wires the pieces (client, environment, trace, agent), runs the scenario's checks after the
task, and always leaves a readable run folder — after success, an error, a timeout or Ctrl-C
(the lifecycle it shares with replay: ``cua.lifecycle``).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .agent import Agent, RunResult, SafetyPolicy
from .config import RunSettings
from .environments.base import Environment
from .errors import ConfigError, validation_problem
from .functions import FunctionRegistry
from .lifecycle import Check, finish, redacted, render_report, run_checks, run_redactor, within
from .runs.recording import save_recording
from .runs.writer import RunTrace, mask_archive, new_run_dir

if TYPE_CHECKING:
    from .providers.base import Provider
    from .scenario import Scenario


SCRIPTED_KEY = "sk-cua-scripted-standin"  # the stand-in's key for scripted runs; not a secret


async def run_task(
    settings: RunSettings,
    *,
    provider: Provider | None = None,
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
    ai_checks: bool = True,
) -> RunResult:
    """Run ``settings.task`` and return its result; a ``CuaError`` before the run started
    (no API key, bad settings) is raised, everything after is reported in the result. A caller's
    cancellation ends the run (environment stopped, run folder kept, marked ``interrupted``) and
    propagates as ``RunCancelled``, a ``CancelledError``."""
    from .pricing import prices
    from .providers import make_provider

    prices()  # a bad CUA_PRICES file stops the run now, not after the model was paid for
    redactor = run_redactor(settings, secrets, vm_api_key=vm_api_key)
    if env is None:
        from .environments.factory import make_environment

        env = make_environment(settings, vm_api_key=vm_api_key, on_event=on_env_event)
    env.secrets = redactor.values()
    owns_provider = provider is None
    if provider is None:
        provider = make_provider(settings, api_key=api_key, base_url=base_url, redactor=redactor)
    try:
        run_dir = new_run_dir(settings.out or "runs", label or settings.task or "run")
        if settings.playwright_trace and hasattr(env, "trace_path"):
            env.trace_path = run_dir / "playwright-trace.zip"
        trace = RunTrace(run_dir, redactor)
    except BaseException:
        if owns_provider:
            await provider.aclose()
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
        provider, env, settings, trace=trace, functions=functions, safety=safety,
        on_step=redacted(on_step, redactor), on_event=redacted(on_event, redactor),
    )
    result = agent.result
    result.run_dir = str(run_dir)

    async def body() -> None:
        if settings.navigation_tools:
            _register_navigation(functions, env)
        await agent.run()
        if result.status == "completed" and checks:
            from .judge import Judge, judging

            # ai_check's judge: the run's own model, key and endpoint.
            with judging(Judge(settings, api_key, base_url, redactor, skip=not ai_checks)):
                await run_checks(checks, env, result, trace)
        result.final_url = result.final_url or await env.current_url()

    try:
        await within(env, result, body)
    finally:
        if owns_provider:
            await provider.aclose()
        if settings.playwright_trace:
            mask_archive(run_dir / "playwright-trace.zip", redactor)
        finish(trace, result, started, final_screen=agent.last_screen)
        if write_report:
            render_report(run_dir)
    return result


def _register_navigation(functions: FunctionRegistry, env: Environment) -> None:
    for name in ("goto", "back", "forward"):
        method = getattr(env, name, None)
        if method is not None and name not in functions:
            functions.register(method, name=name, description={
                "goto": "Open a URL in the current browser tab.",
                "back": "Go back one page in the browser history.",
                "forward": "Go forward one page in the browser history.",
            }[name])


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
    from .scenario import Scenario, build_checks, load_scenario, prepared

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    with prepared(scenario, variables) as (rendered, secrets):
        data = {**rendered.settings_dict(), **{k: v for k, v in (flags or {}).items() if v is not None}}
        scripted = data.get("model") == "scripted"
        if scripted and not data.get("provider"):  # the script plays over the scenario's model's format
            from .providers.base import provider_for

            data["provider"] = provider_for(rendered.settings_dict().get("model") or "computer-use-preview")
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
            from .testing.scripted import serve_script

            with serve_script(settings.provider_name, rendered.script or [], SCRIPTED_KEY) as base_url:
                result = await run_task(settings, api_key=SCRIPTED_KEY, base_url=base_url, **common)
    if record and result.status == "completed" and result.run_dir:
        save_recording(Path(result.run_dir), scenario.recording_dir(), served_url=rendered.served_url)
        if notice:
            notice(f"recording saved to {scenario.recording_dir()}")
    return result
