"""A computer an MCP client's own model drives, one action per tool call, written as a run folder.

The session is the loop without a model: the client looks (``screenshot``) and acts; every action
passes the same checks a model's action does (inside the display, a key cua knows, the domain and
scheme policy of the environment) and becomes one step of the run folder — the screen it was
decided on, the action with its anchor, the screen after it. Closed with ``save_as``, the folder
is saved as a scenario and its recording, which ``cua replay`` plays with no model at all.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..actions import Action, Size, action_to_wire, check_in_bounds, parse_action
from ..config import RunSettings
from ..environments.base import Environment
from ..errors import ConfigError, CuaError
from ..agent import EXIT_CODES, RunResult, Status
from ..lifecycle import finish, render_report, run_redactor
from ..runs.anchors import capture_anchor
from ..runs.writer import RunTrace, new_run_dir

MADE_BY = "mcp"  # run.json's made_by: the steps were decided by an MCP client's model
MADE_WITH = "from an MCP client's computer session with `cua mcp`"


@dataclass
class Looked:
    """A screenshot as the client gets it, and where it is in the run folder."""

    png: bytes
    path: str
    url: str | None


@dataclass
class Done:
    """What one action did: the step it became and the screen after it."""

    step: int
    action: dict[str, Any]
    screen: Looked
    ms: int


@dataclass
class Closed:
    run_dir: str
    report: str | None
    steps: int
    scenario: str | None = None
    recording: str | None = None


@dataclass
class ComputerSession:
    """One environment, started, and the run folder of what the client did in it."""

    id: str
    settings: RunSettings
    env: Environment
    trace: RunTrace
    started: float
    steps: list[dict[str, Any]] = field(default_factory=list)
    last: Looked | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def display(self) -> Size:
        return self.env.display

    async def look(self) -> Looked:
        """Settle, then take the screen the client's model decides on."""
        await self.env.settle()
        png = await self.env.screenshot()
        self.last = Looked(png, self.trace.save_screenshot(png), await self.env.current_url())
        return self.last

    async def act(self, raw: dict[str, Any]) -> Done:
        """Run one action (the computer tool's wire shape) as one step of the run folder. A bad
        action is a ``CuaError`` with a sentence, and nothing of it runs."""
        action = parse_action(raw, where=raw.get("type", "action"))
        check_in_bounds(action, self.display, where=str(raw.get("type")))
        async with self.lock:
            before = self.last or await self.look()
            record: dict[str, Any] = {"action": action_to_wire(action)}
            points = action.points()
            if points:
                record["anchor"] = await capture_anchor(self.env, *points[0])
            step: dict[str, Any] = {"step": len(self.steps) + 1, "elapsed_s": round(self.trace.elapsed(), 3),
                                    "screen_before": before.path, "actions": [record]}
            t0 = time.monotonic()
            try:
                await self._execute(action, record)
            except CuaError as exc:
                record["ms"] = round((time.monotonic() - t0) * 1000)
                record["error"] = str(exc)
                step["errors"] = [{"call": "mcp", "error": str(exc)}]
                self._append(step)
                self.last = None  # the screen may have changed part-way: look again next time
                raise
            record["ms"] = round((time.monotonic() - t0) * 1000)
            t1 = time.monotonic()
            after = await self.look()
            step["settle_ms"] = round((time.monotonic() - t1) * 1000)
            step["screen_after"], step["url"] = after.path, after.url
            self._append(step)
            return Done(step["step"], record["action"], after, record["ms"])

    async def _execute(self, action: Action, record: dict[str, Any]) -> None:
        output = await self.env.execute(action)
        if output is not None and output.point is not None:
            record["point"] = list(output.point)

    def _append(self, step: dict[str, Any]) -> None:
        self.trace.append_step(step)
        self.steps.append(step)

    async def close(self, *, status: Status = "completed", error: str | None = None,
                    save_as: Path | None = None) -> Closed:
        """Stop the environment and finish the run folder (run.json, report) — after an action
        still running is done; with ``save_as``, write that scenario file and its recording."""
        async with self.lock:
            result = RunResult(status=status, steps=len(self.steps), error=error,
                               final_text="Driven by an MCP client.")
            result.exit_code = EXIT_CODES.get(status, 4)
            document = None
            try:
                try:
                    result.final_url = await self.env.current_url()
                except CuaError:
                    pass
                finally:
                    await self.env.stop()
                if save_as is not None and status == "completed":
                    document = self._scenario(save_as, result.final_url)
            finally:
                finish(self.trace, result, self.started, final_screen=self.last.path if self.last else None)
                self.trace.close()
                render_report(self.trace.dir)
        closed = Closed(str(self.trace.dir), str(self.trace.dir / "report.html"), len(self.steps))
        if save_as is not None and document is not None:
            self._save(save_as, document)
            closed.scenario, closed.recording = str(save_as), str(_recording_of(save_as))
        return closed

    def _scenario(self, path: Path, final_url: str | None) -> dict[str, Any]:
        """The scenario file's content for what was done (and its name in run.json)."""
        from ..record.scenario_file import generated_task, scenario_document, url_check

        name = path.name.split(".")[0]
        done = [s for s in self.steps if not s.get("errors")]
        checks: list[dict[str, Any]] = []
        pattern = url_check(self.settings.start_url, final_url) if self.settings.env == "browser" else None
        if pattern:
            checks.append({"url_matches": pattern})
        task = self.settings.task or generated_task(done)
        self.trace.update(task=task, scenario={"name": name, "path": str(path.resolve()), "checks": checks})
        document = scenario_document(name=name, task=task, start_url=self.settings.start_url,
                                     display=self.settings.display, env=self.settings.env, secrets={},
                                     checks=checks, steps=done)
        return self.trace.redactor.obj(document)  # what the run folder masks, the scenario file does too

    def _save(self, path: Path, document: dict[str, Any]) -> None:
        from ..record.scenario_file import write_scenario
        from ..runs.recording import save_recording

        path.parent.mkdir(parents=True, exist_ok=True)
        write_scenario(path, document, recorded_from=self.settings.start_url, made_with=MADE_WITH)
        save_recording(self.trace.dir, _recording_of(path))  # (failed actions are not played back)


def _recording_of(scenario: Path) -> Path:
    return scenario.parent / "recordings" / scenario.name.split(".")[0]


class Computers:
    """The sessions of one server, by id."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._open: dict[str, ComputerSession] = {}

    def __len__(self) -> int:
        return len(self._open)

    async def open(self, settings: RunSettings, *, label: str, vm_api_key: str | None = None,
                   env: Environment | None = None) -> ComputerSession:
        """Start ``env`` (by default the one ``settings`` describe) and a run folder for it."""
        from ..environments.factory import make_environment

        redactor = run_redactor(settings, vm_api_key=vm_api_key)
        env = env or make_environment(settings, vm_api_key=vm_api_key)
        env.secrets = redactor.values()
        await env.start()
        trace: RunTrace | None = None
        try:
            trace = RunTrace(new_run_dir(settings.out or self.out, label), redactor)
            trace.update(kind="run", made_by=MADE_BY, task=settings.task, settings=settings.public(),
                         started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
            session = ComputerSession(secrets.token_hex(4), settings, env, trace, time.monotonic())
            first = await session.look()
            trace.update(initial_screen=first.path, display=str(env.display))
        except BaseException as exc:
            await env.stop()
            if trace is not None:  # the folder says how it ended
                failed = RunResult(status="error", error=str(exc) or type(exc).__name__, exit_code=4)
                finish(trace, failed, time.monotonic())
                trace.close()
            raise
        self._open[session.id] = session
        return session

    def get(self, session_id: str) -> ComputerSession:
        try:
            return self._open[session_id]
        except KeyError:
            known = ", ".join(sorted(self._open)) or "none is open"
            raise ConfigError(f"no open computer {session_id!r} (open ones: {known}); "
                              "open_computer gives a session id") from None

    async def close(self, session_id: str, *, save_as: Path | None = None, status: Status = "completed",
                    error: str | None = None) -> Closed:
        session = self.get(session_id)
        del self._open[session_id]
        return await session.close(save_as=save_as, status=status, error=error)

    async def close_all(self) -> None:
        """When the server stops: every open session is closed, its run folder finished."""
        for session_id in list(self._open):
            session = self._open.pop(session_id)
            try:
                await session.close(status="interrupted", error="the computer was closed when its client went")
            except Exception:  # the next session still gets closed
                pass
