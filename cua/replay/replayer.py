"""Replay a recorded run with no model, healing it when the UI drifted.

Before each coordinate action the recorded anchor is verified against the live screen: the same
element under the point (browser), else the element found again by its selector, test id or
text, else the recorded image crop found in the new screenshot. A moved target is acted on at its
new place and the step counts as healed. When nothing is found the replay stops as ``diverged``
(showing expected and actual screens) or, with ``heal="model"``, hands the rest to the model.
Recorded ``wait`` actions become readiness waits: delays are never replayed raw.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import ValidationError

from ..actions import (
    Action, Click, DoubleClick, Drag, MouseDown, MouseUp, Move, Scroll, TripleClick, Wait, parse_action,
)
from ..agent import EXIT_CODES, Agent, RunResult, SafetyPolicy
from ..providers.base import Provider
from ..config import RunSettings
from ..environments.base import Environment
from ..errors import ConfigError, CuaError, validation_problem
from ..lifecycle import finish, redacted, render_report, run_checks, run_redactor, within
from ..pricing import prices
from ..redact import Redactor
from ..runs.anchors import capture_anchor
from ..runs.reader import read_run
from ..runs.recording import SERVED_URL, save_recording
from ..runs.writer import RunTrace, new_run_dir
from .matching import locate as locate_image

HealMode = Literal["none", "model"]
# How long a replay looks again for a target's image that is not on the screen yet.
IMAGE_PATIENCE_S = 3.0


class Diverged(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _is_the_recorded(now: dict[str, Any] | None, recorded: dict[str, Any]) -> bool:
    """Whether the element under the recorded point now is the one recorded there."""
    if not now:
        return False
    for key in ("testid", "id"):
        if recorded.get(key):
            return now.get(key) == recorded[key]
    return now.get("selector") == recorded.get("selector") and now.get("text") == recorded.get("text")


def _moved(action: Action, dx: int, dy: int) -> Action:
    if isinstance(action, Drag):
        path = [{"x": p.x + dx, "y": p.y + dy} for p in action.path]
        return action.model_copy(update={"path": [type(action.path[0])(**p) for p in path]})
    return action.model_copy(update={"x": action.x + dx, "y": action.y + dy})  # type: ignore[attr-defined]


def _recorded_arguments(call: dict[str, Any]) -> dict[str, Any]:
    """A recorded function call's arguments: a JSON object in a string, as the model sent them."""
    try:
        args = json.loads(call.get("arguments") or "{}")
    except (TypeError, ValueError, RecursionError):
        args = None
    if not isinstance(args, dict):
        raise ValueError(f"the arguments of {call.get('name')}() are not a JSON object: "
                         f"{str(call.get('arguments'))[:80]!r}")
    return args


def check_steps(source: Path, steps: list[Any]) -> None:
    """Refuse a steps.jsonl that cua cannot have written, before anything starts."""
    for n, step in enumerate(steps, 1):
        try:
            if not isinstance(step, dict):
                raise ValueError("it is not a JSON object")
            for entry in _list_field(step, "actions"):
                if not isinstance(entry, dict) or not isinstance(entry.get("action"), dict):
                    raise ValueError("an action entry has no action object")
                try:
                    parse_action(entry["action"], where="an action")
                except CuaError as exc:
                    raise ValueError(str(exc)) from None
                anchor = entry.get("anchor") or {}
                if not isinstance(anchor, dict) or (anchor and not all(
                        isinstance(anchor.get(k), (int, float)) for k in ("x", "y"))):
                    raise ValueError("an action's anchor has no x and y")
            for name in ("screen_before", "text"):
                if not isinstance(step.get(name) or "", str):
                    raise ValueError(f"{name} is not a string")
            for call in _list_field(step, "functions"):
                if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                    raise ValueError("a function call has no name")
                if call["name"] in {"goto", "back", "forward"}:
                    _recorded_arguments(call)
        except ValueError as exc:
            raise ConfigError(f"{source}/steps.jsonl: line {n}: {exc}; the run folder is damaged "
                              "(record it again)") from None


def _list_field(step: dict[str, Any], name: str) -> list[Any]:
    value = step.get(name) or []
    if not isinstance(value, list):
        raise ValueError(f"{name} is not a list")
    return value


def _coordinates(action: Action) -> dict[str, Any]:
    if isinstance(action, Drag):
        return {"path": [{"x": p.x, "y": p.y} for p in action.path]}
    return {"x": action.x, "y": action.y}  # type: ignore[attr-defined]


class Replayer:
    def __init__(
        self,
        source: Path,
        env: Environment,
        settings: RunSettings,
        trace: RunTrace,
        redactor: Redactor,
        *,
        on_step: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.source = source
        self.env = env
        self.settings = settings
        self.trace = trace
        self.redactor = redactor
        self.on_step = on_step
        self.result = RunResult(status="running", healed=0, diverged_at=None)
        self.last_png = b""
        self.last_screen: str | None = None

    async def _screenshot(self) -> bytes:
        self.last_png = await self.env.screenshot()
        self.last_screen = self.trace.save_screenshot(self.last_png)
        return self.last_png

    async def relocate(self, action: Action, anchor: dict[str, Any] | None,
                       seen: str | None = None) -> tuple[Action, dict[str, Any] | None]:
        """The action to run now, and how it was healed (None when the target had not moved)."""
        if not anchor:
            return action, None
        x, y = anchor["x"], anchor["y"]
        element = anchor.get("element")
        locate = getattr(self.env, "locate", None)
        if element and locate is not None:
            if _is_the_recorded(await self.env.anchor(x, y), element):
                return action, None
            found = await locate(element)  # only an element of the recorded kind
            if found is not None:
                box = element.get("box") or {}
                # Keep the point's offset inside the element (a click near a field's edge stays there).
                ox = x - (box.get("x", x) + box.get("width", 0) / 2) if box else 0
                oy = y - (box.get("y", y) + box.get("height", 0) / 2) if box else 0
                nx, ny = round(found[0] + ox), round(found[1] + oy)
                return _moved(action, nx - x, ny - y), {"from": [x, y], "to": [nx, ny], "by": "element"}
        seen_png = (self.source / seen).read_bytes() if seen and (self.source / seen).exists() else None
        if seen_png:
            try:
                found = locate_image(seen_png, self.last_png, x, y)
                # An app still painting (just launched, still loading) shows the target a moment
                # later: look again for a little while before calling it gone.
                deadline = time.monotonic() + IMAGE_PATIENCE_S
                while found is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.3)
                    await self.env.settle()
                    found = locate_image(seen_png, await self._screenshot(), x, y)
            except OSError:  # PIL cannot read the recorded screenshot: nothing to match by image
                raise Diverged(f"the recorded screenshot {seen} cannot be read") from None
            if found is not None:
                nx, ny, _ = found
                if abs(nx - x) <= 1 and abs(ny - y) <= 1:
                    return action, None
                return _moved(action, nx - x, ny - y), {"from": [x, y], "to": [nx, ny], "by": "image"}
        if element or seen_png:
            what = element.get("name") or element.get("selector") if element else f"the image at ({x}, {y})"
            raise Diverged(f"could not find {what!r} on the screen")
        return action, None

    async def replay(self, steps: list[dict[str, Any]]) -> None:
        await self.env.settle()
        await self._screenshot()
        self.trace.update(initial_screen=self.last_screen)
        for recorded in steps:
            if recorded.get("final") and not recorded.get("actions"):
                self.result.steps += 1
                self.result.final_text = recorded.get("text") or ""
                self.trace.append_step({"step": self.result.steps, "source_step": recorded.get("step"),
                                        "final": True, "text": recorded.get("text"), "replay": True,
                                        "screen_before": self.last_screen, "items": recorded.get("items")})
                continue
            if not recorded.get("actions") and not recorded.get("functions"):
                continue
            self.result.steps += 1
            step = {
                "step": self.result.steps,
                "source_step": recorded.get("step"),
                "elapsed_s": round(self.trace.elapsed(), 3),
                "screen_before": self.last_screen,
                "reasoning": recorded.get("reasoning"),
                "text": recorded.get("text"),
                "actions": [],
                "functions": [],
                "replay": True,
            }
            try:
                await self._replay_step(recorded, step)
            except Diverged as exc:
                expected = recorded.get("screen_before")
                step["diverged"] = {
                    "reason": exc.reason,
                    "expected_screen": self._copy_screen(expected),
                    "actual_screen": self.last_screen,
                }
                self.trace.append_step(step)
                self.result.status, self.result.diverged_at = "diverged", self.result.steps
                self.result.reason = f"diverged at step {self.result.steps}: {exc.reason}"
                return
            self.trace.append_step(step)
            self.trace.update(steps=self.result.steps, healed=self.result.healed)
            if self.on_step:
                self.on_step(step)
        self.result.status = "completed"

    async def _replay_step(self, recorded: dict[str, Any], step: dict[str, Any]) -> None:
        # The screen was settled and captured as the last step ended (or the replay began); it
        # needs that again only once this step has acted.
        screen_fresh = True
        for entry in recorded.get("actions") or []:
            if entry.get("error"):  # it failed when recorded (the model was told): not played back
                continue
            raw = dict(entry["action"])  # a copy: the recorded step stays as it was
            if raw.get("type") == "type":  # typed secrets were recorded as {{name}}
                raw["text"] = self.redactor.unmask(raw.get("text", ""))
            action = parse_action(raw, where=f"recorded step {recorded.get('step')}")
            if isinstance(action, Wait):
                await self.env.settle()
                screen_fresh = False  # what was waited for may have changed the screen
                step["actions"].append({"action": entry["action"], "ms": 0, "settled": True})
                continue
            record: dict[str, Any] = {"action": entry["action"]}
            if isinstance(action, (Click, DoubleClick, TripleClick, Drag, Move, Scroll, MouseDown, MouseUp)) \
                    and action.points():  # a button pressed "where the pointer is" has nothing to find
                if not screen_fresh:
                    await self.env.settle()
                    await self._screenshot()
                action, healed = await self.relocate(action, entry.get("anchor"), recorded.get("screen_before"))
                if healed:
                    self.result.healed = (self.result.healed or 0) + 1
                    record["healed"] = healed
                    # The step as it ran now: a recording updated from this replay must click the
                    # new place, where its anchor now is, not the old one.
                    record["action"] = {**entry["action"], **_coordinates(action)}
                x, y = action.points()[0]
                record["anchor"] = await capture_anchor(self.env, x, y)
            t0 = time.monotonic()
            await self.env.execute(action)
            screen_fresh = False
            record["ms"] = round((time.monotonic() - t0) * 1000)
            step["actions"].append(record)
        for call in recorded.get("functions") or []:
            step["functions"].append(await self._replay_function(call))
        t0 = time.monotonic()
        await self.env.settle()
        await self._screenshot()
        step["settle_ms"] = round((time.monotonic() - t0) * 1000)
        step["screen_after"] = self.last_screen
        step["url"] = await self.env.current_url()

    async def _replay_function(self, call: dict[str, Any]) -> dict[str, Any]:
        method = getattr(self.env, call["name"], None) if call["name"] in {"goto", "back", "forward"} else None
        if method is None:
            return {**call, "output": "not replayed (not a built-in navigation function)"}
        try:
            output = await method(**_recorded_arguments(call))
        except TypeError as exc:  # arguments of the right shape, but not the ones this function takes
            raise ConfigError(f"{self.source}/steps.jsonl: the recorded call {call['name']}() cannot be "
                              f"replayed ({exc}); the run folder is damaged") from None
        return {**call, "output": "" if output is None else str(output)}

    def _copy_screen(self, rel: str | None) -> str | None:
        if not rel or not (self.source / rel).exists():
            return None
        return self.trace.save_screenshot((self.source / rel).read_bytes())


async def replay_target(target: str | Path, **kwargs: Any) -> RunResult:
    """Replay a run folder, or the recording of a scenario file."""
    path = Path(target)
    if path.suffix in {".yaml", ".yml"}:
        from ..scenario import load_scenario

        scenario = load_scenario(path)
        recording = scenario.recording_dir()
        if not (recording / "run.json").exists():
            raise ConfigError(f"{path}: no recording at {recording}; make one with 'cua run {path} --record'")
        return await replay_run(recording, scenario_path=path, **kwargs)
    return await replay_run(path, **kwargs)


async def replay_run(
    run_dir: str | Path,
    *,
    start_url: str | None = None,
    heal: HealMode = "none",
    update: bool = False,
    out: str | Path | None = None,
    variables: dict[str, str] | None = None,
    scenario_path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    env: Environment | None = None,
    provider: Provider | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    write_report: bool = True,
    ai_checks: bool = True,
) -> RunResult:
    """Replay ``run_dir``; returns a result with ``healed`` and ``diverged_at`` set. An
    ``ai_check`` is the one model call of a replay, made with the replay's model settings
    (``overrides``, ``api_key``, ``base_url``); ``ai_checks=False`` skips it, saying so.

    When the run came from a scenario whose file still exists, its variables, served folder and
    checks are taken from the file (so a replay serves the app again and passes the same checks).
    """
    source = Path(run_dir)
    meta, steps = read_run(source)
    check_steps(source, steps)
    prices()  # a bad CUA_PRICES file stops the replay before it starts
    for key in ("scenario", "settings"):
        if not isinstance(meta.get(key) or {}, dict):
            raise ConfigError(f"{source}/run.json: {key} is not an object; the file was changed after the run")
    scenario_meta = meta.get("scenario") or {}
    recorded_path = scenario_meta.get("path")
    # A recording names its scenario relative to itself (an older run folder: absolutely).
    path = scenario_path or (source / recorded_path if isinstance(recorded_path, str) else None)
    if path and scenario_meta:  # the replay's run.json names it from where it is
        meta["scenario"] = {**scenario_meta, "path": str(Path(path).resolve())}
    with ExitStack() as stack:
        checks: list[Any] = []
        secrets: dict[str, str] = dict(variables or {})
        served_url: str | None = None
        # A recording's safety settings grant nothing to a model healing the replay: the scenario
        # file says what it accepts, else the default (ask, denied unattended).
        settings_data = {k: v for k, v in (meta.get("settings") or {}).items()
                         if k not in ("tool_format", "safety", "safety_allow")}
        if path and Path(path).exists():
            from ..scenario import build_checks, load_scenario, prepared

            rendered, secrets = stack.enter_context(prepared(load_scenario(path), variables))
            checks = build_checks(rendered)
            served_url = rendered.served_url
            settings_data.update({k: v for k, v in rendered.settings_dict().items()
                                  if k in ("safety", "safety_allow")})
            if rendered.start_url:
                settings_data["start_url"] = rendered.start_url
        elif scenario_meta.get("checks"):
            from ..scenario import CheckSpec, ScenarioCheck

            try:
                specs = [CheckSpec.model_validate(c) for c in scenario_meta["checks"]]
            except (ValidationError, TypeError) as exc:
                raise ConfigError(f"{source}/run.json: a recorded check is unusable "
                                  f"({validation_problem(exc)}); the run folder is damaged") from None
            checks = [ScenarioCheck(spec, Path.cwd()) for spec in specs]
        if start_url:
            settings_data["start_url"] = start_url
        if served_url:  # the app the recording names {{served_url}}, served again now
            for key in ("start_url", "task", "instructions"):
                if isinstance(settings_data.get(key), str):
                    settings_data[key] = settings_data[key].replace(SERVED_URL, served_url)
        if SERVED_URL in str(settings_data.get("start_url") or ""):
            raise ConfigError(f"{source}: the recorded start URL {settings_data['start_url']} is on the app "
                              "its scenario serves; replay the scenario file, or pass --start-url")
        settings_data["out"] = str(out or "runs")
        redactor = Redactor(secrets)
        # A model healing the run must read the task as the user wrote it, not as the trace masked it.
        if settings_data.get("task"):
            settings_data["task"] = redactor.unmask(settings_data["task"])
        # Where to replay (another VM, another X display) and which model heals: the user's word wins.
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        if settings_data.get("env", "browser") != "browser":  # (a browser recording refuses both)
            if given.get("vm_url"):  # on a VM: not on the recorded display
                settings_data.update(x_display=None, launch=None)
            elif given.get("x_display"):  # on a display already showing the app: not on the VM
                settings_data.update(vm_url=None, vm_name=None, launch=None)
        if given.get("model") and not given.get("provider"):
            settings_data.pop("provider", None)  # another model: its own name says its provider
        settings_data.update(given)
        if heal == "model" and settings_data.get("model") == "scripted":
            # A scripted recording names no model to hand over to: the default, and its provider.
            settings_data.pop("model")
            settings_data.pop("provider", None)
        try:
            settings = RunSettings(**settings_data)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{source}/run.json: unusable settings ({validation_problem(exc)})") from None
        return await _replay(source, meta, steps, settings, checks, redactor, heal=heal,
                             update=update, env=env, provider=provider, api_key=api_key,
                             base_url=base_url, on_step=on_step, write_report=write_report,
                             served_url=served_url, ai_checks=ai_checks)


async def _replay(source: Path, meta: dict[str, Any], steps: list[dict[str, Any]], settings: RunSettings,
                  checks: list[Any], redactor: Redactor, *, heal: HealMode, update: bool,
                  env: Environment | None, provider: Provider | None, api_key: str | None,
                  base_url: str | None, on_step, write_report: bool, served_url: str | None,
                  ai_checks: bool = True) -> RunResult:
    run_redactor(settings, redactor)
    if env is None:
        from ..environments.factory import make_environment

        env = make_environment(settings)
    env.secrets = redactor.values()
    if heal == "model" and provider is None:
        from ..providers import make_provider

        provider = make_provider(settings, api_key=api_key, base_url=base_url, redactor=redactor)
    try:
        new_dir = new_run_dir(settings.out or "runs", f"replay-{meta.get('task') or source.name}")
        trace = RunTrace(new_dir, redactor)
    except BaseException:
        if provider is not None:
            await provider.aclose()
        raise
    trace.update(
        kind="replay", task=meta.get("task"), settings=settings.public(), source_run=str(source),
        scenario=meta.get("scenario"),
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    started = time.monotonic()
    replayer = Replayer(source, env, settings, trace, redactor, on_step=redacted(on_step, redactor))
    result = replayer.result
    result.run_dir = str(new_dir)

    async def body() -> None:
        await replayer.replay(steps)
        if result.status == "diverged" and heal == "model" and provider is not None:
            await _heal_with_model(replayer, provider, settings, trace, redacted(on_step, redactor))
        if result.status == "completed" and checks:
            from ..judge import Judge, judging

            with judging(Judge(settings, api_key, base_url, redactor, skip=not ai_checks)):
                await run_checks(checks, env, result, trace)
        result.final_url = await env.current_url()

    try:
        await within(env, result, body)
        if result.status != "error":
            result.exit_code = EXIT_CODES.get(result.status, 1)
    finally:
        if provider is not None:
            await provider.aclose()
        finish(trace, result, started, final_screen=replayer.last_screen)
        if write_report:
            render_report(new_dir)
    if update and result.status == "completed":
        save_recording(new_dir, source, served_url=served_url)
    return result


async def _heal_with_model(replayer: Replayer, provider: Provider, settings: RunSettings,
                           trace: RunTrace, on_step) -> None:
    """Give the rest of the run to the model, with the original task, from the current screen."""
    result = replayer.result
    agent = Agent(provider, replayer.env, settings, trace=trace, safety=SafetyPolicy.from_settings(settings),
                  on_step=on_step)
    agent.result.steps = result.steps
    task = (f"{settings.task}\n\n(An earlier attempt got part of the way; continue from the "
            "current screen.)")
    agent_result = await agent.run(task)
    result.steps = agent_result.steps
    result.usage = agent_result.usage
    result.status, result.final_text = agent_result.status, agent_result.final_text
    result.error, result.reason = agent_result.error, agent_result.reason or result.reason
    result.exit_code = agent_result.exit_code
    replayer.last_screen = agent.last_screen
