"""``cua record``: one demonstration, from opening the environment to the files it leaves.

The environment is the one a run uses (a headed Chromium, or an X display) with a capture beside
it that turns the person's input into gestures. Gestures go through one queue to the
``Demonstration``, which writes the run folder as it goes. When the person stops (Ctrl-C or
SIGTERM, the toolbar's stop control, the last window closed) the run folder is finished, its report
written, and the scenario file and its recording (``recordings/<name>/`` beside it, the layout
``cua run --record`` writes) are saved.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import sys
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from ..config import RunSettings
from ..environments.base import Environment
from ..errors import ConfigError, CuaError, EnvironmentError_
from ..redact import Redactor
from ..runs.recording import save_recording
from ..runs.writer import RunTrace, new_run_dir, slugify
from .demonstration import Demonstration
from .gestures import Gesture, Mark
from .scenario_file import describe_action, env_name, generated_task, scenario_document, url_check, write_scenario

log = logging.getLogger(__name__)

# After a gesture that may change the page, how long input must pause before the screen is looked
# at to decide whether a new step began (a second click of a double click comes sooner).
QUIET_S = 0.3
# Until the first input, how often the screen the recording starts from is looked at again.
IDLE_LOOK_S = 1.0


@dataclass
class RecordOptions:
    scenario: Path
    start_url: str | None = None
    task: str | None = None
    env: str = "browser"
    display: str = "1024x768"
    x_display: str | None = None
    launch: str | None = None
    name: str | None = None
    url_check: bool = True
    secret_fields: list[str] = field(default_factory=list)
    out: Path = Path("runs")


@dataclass
class RecordResult:
    scenario: Path
    recording: Path
    run_dir: Path
    steps: int
    actions: int
    checks: int
    secrets: dict[str, str]  # variable -> the environment variable a replay reads it from
    exit_code: int = 0
    error: str | None = None
    kept: bool = False  # nothing was recorded, so the scenario already there was left as it was

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": str(self.scenario), "recording": str(self.recording), "run_dir": str(self.run_dir),
                "steps": self.steps, "actions": self.actions, "checks": self.checks, "secrets": self.secrets,
                "exit_code": self.exit_code, "error": self.error}


def scenario_name(options: RecordOptions) -> str:
    return options.name or options.scenario.name.split(".")[0]


def check_options(options: RecordOptions) -> None:
    """Refuse what cannot be recorded before anything starts (exit 2, one message)."""
    if options.scenario.suffix not in (".yaml", ".yml"):
        raise ConfigError(f"{options.scenario}: a scenario file ends in .yaml (e.g. login.cua.yaml)")
    if options.scenario.exists() and options.scenario.is_dir():
        raise ConfigError(f"{options.scenario} is a folder; name the scenario file to write")
    if not options.scenario.parent.is_dir():
        raise ConfigError(f"{options.scenario.parent} does not exist; create the folder first")
    if not os.access(options.scenario.parent, os.W_OK):
        raise ConfigError(f"{options.scenario.parent} is not writable: the scenario and its recording go there")
    if options.env != "browser" and options.secret_fields:
        raise ConfigError("--secret-field names fields of a web page; on a desktop, typed text is recorded "
                          "as it is (replace it by a {{variable}} in the scenario afterwards)")
    if options.env == "browser" and not options.start_url:
        raise ConfigError("--start-url is needed to record in the browser")
    if options.env == "browser" and (options.x_display or options.launch):
        raise ConfigError("--x-display and --launch are for --env ubuntu; the browser opens --start-url")
    if options.env == "browser" and sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise EnvironmentError_("cua record opens a browser window, and there is no display ($DISPLAY is not "
                                "set): run it in a desktop session, or under xvfb-run to try it")
    if not slugify(scenario_name(options), 80).replace("-", ""):
        raise ConfigError(f"{scenario_name(options)!r} is not a usable scenario name; give --name")
    from ..selector_syntax import check_selector

    for selector in options.secret_fields:
        try:
            check_selector(selector)
        except ValueError as exc:
            raise ConfigError(f"--secret-field {selector!r}: {exc}") from None


class Recorder:
    """One recording: ``await Recorder(options).run()``; ``stop()`` ends it from outside."""

    def __init__(self, options: RecordOptions, *, on_line: Callable[[str], None] | None = None) -> None:
        check_options(options)
        self.options = options
        self.name = scenario_name(options)
        self.on_line = on_line or (lambda line: None)
        self.settings = RunSettings(task=options.task or "", model="scripted", env=options.env,  # type: ignore[arg-type]
                                    display=options.display, start_url=options.start_url,
                                    x_display=options.x_display, launch=options.launch, out=options.out)
        self.redactor = Redactor()
        self.queue: asyncio.Queue[Gesture | Mark] = asyncio.Queue()
        self.stopping = asyncio.Event()
        self.marks: list[dict[str, Any]] = []
        self.baselines: list[tuple[Path, bytes]] = []
        self.capture: Any = None

    def stop(self) -> None:
        self.stopping.set()

    def _push(self, item: Gesture | Mark) -> None:
        self.queue.put_nowait(item)

    # -- the environment and its capture ---------------------------------------------------------
    def _environment(self) -> Environment:
        if self.options.env == "browser":
            from ..environments.browser import BrowserEnvironment
            from .browser import BrowserCapture, page_script

            env = BrowserEnvironment(display=self.settings.size, start_url=self.options.start_url, headless=False,
                                     init_scripts=[page_script(self.options.secret_fields)],
                                     # A wheel notch moves the page at once: what the recording
                                     # says was scrolled is where the page is when the next input comes.
                                     launch_args=["--disable-smooth-scrolling"],
                                     wait_ms=self.settings.wait_ms)
            self.capture = BrowserCapture(env, self._push)
            env.bindings.update(self.capture.binding())
            return env
        from .desktop import desktop_environment

        env, self.capture = desktop_environment(self.settings, self._push)
        return env

    async def _screenshot(self, env: Environment) -> bytes:
        hide = getattr(self.capture, "hide_toolbar", None)
        if hide is None:
            return await env.screenshot()
        await hide(True)
        try:
            return await env.screenshot()
        finally:
            await hide(False)

    def _ended_by_person(self) -> bool:
        return self.stopping.is_set() or self.capture.stop_asked.is_set() or self.capture.closed.is_set()

    # -- the recording ---------------------------------------------------------------------------
    async def run(self) -> RecordResult:
        env = self._environment()
        with _children_in_their_own_session():
            await env.start()  # (a browser that cannot open leaves no run folder behind)
        run_dir = new_run_dir(self.options.out, f"record-{self.name}")
        trace = RunTrace(run_dir, self.redactor)
        started = time.monotonic()
        trace.update(kind="run", made_by="demonstration", task=self.options.task or "", settings=self.settings.public(),
                     scenario={"name": self.name, "path": str(self.options.scenario.resolve())},
                     started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        demo = Demonstration(env, trace, self.redactor, screenshot=lambda: self._screenshot(env))
        status, error = "completed", None
        try:
            await self.capture.watch()
            await demo.begin()
            self.on_line(self._ready_line())
            await self._loop(demo)
        except EnvironmentError_ as exc:
            if not self._ended_by_person():  # a window closed while it was being read is the end, not an error
                status, error = "error", str(exc)
        except Exception as exc:  # a bug of ours: the steps written so far stay, the browser closes
            log.debug("the recording failed", exc_info=True)
            status, error = "error", f"{type(exc).__name__}: {exc}"
        finally:
            try:
                await self.capture.close()
                await self._drain(demo)
                final_url = await self._final_url(env, demo)
                with suppress(Exception):
                    await demo.finish(capture=not self.capture.closed.is_set() and status == "completed")
                self._announce(demo)
            finally:
                with suppress(Exception):
                    await env.stop()
        return self._write(trace, demo, run_dir, started, status, error, final_url)

    def _ready_line(self) -> str:
        where = self.options.start_url or self.options.x_display or "the display"
        controls = getattr(self.capture, "controls", None) or (
            "checks: the toolbar or Alt+Shift+T/E/R. Stop with Ctrl-C here, the toolbar's Stop (Alt+Shift+S), "
            "or by closing the window")
        return f"Recording {where}. Use it as you always do; {controls}."

    async def _loop(self, demo: Demonstration) -> None:
        loop = asyncio.get_running_loop()
        commit_at: float | None = None
        typed_at: float | None = None
        failures = 0
        looked_at = loop.time()
        while not self._ended_by_person():
            try:
                item = await asyncio.wait_for(self.queue.get(), 0.1)
            except (asyncio.TimeoutError, TimeoutError):
                item = None
            if item is None and not demo.actions and loop.time() - looked_at >= IDLE_LOOK_S:
                # Nothing done yet: keep the first screen as it is now (an app still painting after
                # its launch, a page still loading), so the first anchors are cut from what was seen.
                # (Not later: a press held still, reported only at its release, would be caught
                # half-way through a drag.)
                looked_at = loop.time()
                with suppress(EnvironmentError_):
                    await demo.settled(typed=True)
            if isinstance(item, Gesture):
                looked_at = loop.time()
                demo.add(item)
                self._announce(demo)
                if item.commits or commit_at is not None:  # the pause counts from the last input
                    commit_at = loop.time()
                else:
                    typed_at = loop.time()
            try:
                if isinstance(item, Mark):
                    await self._mark(item, demo)
                if commit_at is not None and loop.time() - commit_at >= QUIET_S and self.queue.empty():
                    commit_at = typed_at = None
                    await demo.settled()
                elif typed_at is not None and loop.time() - typed_at >= QUIET_S and self.queue.empty():
                    typed_at = None
                    await demo.settled(typed=True)
                failures = 0
            except EnvironmentError_:
                # A tab closing as it was read (a popup the click closed): look again next time;
                # only a screen that cannot be read again and again ends the recording.
                failures += 1
                if failures >= 5 or self._ended_by_person():
                    raise
                log.info("could not look at the screen; going on", exc_info=True)

    def _announce(self, demo: Demonstration) -> None:
        for n, entry in demo.finished_actions():
            self._say(demo, f"  {n:3d}  {describe_action(entry)}")

    def _say(self, demo: Demonstration, line: str) -> None:
        """A progress line, with what was typed into secret fields so far masked (a field's name or
        a check can show it back)."""
        self.on_line(Redactor(demo.secret_values).text(line))

    async def _drain(self, demo: Demonstration) -> None:
        """What the person did just before stopping is still in the queue: keep it."""
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if isinstance(item, Gesture):
                demo.add(item)
            elif not self.capture.closed.is_set():
                with suppress(CuaError):
                    await self._mark(item, demo)

    async def _mark(self, mark: Mark, demo: Demonstration) -> None:
        check = dict(mark.check)
        if "screenshot" in check:
            region = check["screenshot"]["region"]
            n = sum(1 for c in self.marks if "screenshot" in c) + 1
            baseline = Path("baselines") / f"{self.name}-region-{n}.png"
            png = await demo.capture_now()
            self.baselines.append((self.options.scenario.parent / baseline, _crop(png, region)))
            check = {"screenshot": {"region": region, "baseline": baseline.as_posix()}}
        self.marks.append(check)
        kind, spec = next(iter(check.items()))
        what = spec.get("selector") or spec.get("region") if isinstance(spec, dict) else spec
        self._say(demo, f"  check: {kind} {what}")
        tell = getattr(self.capture, "tell", None)
        if tell is not None:
            await tell(f"Check added ({len(self.marks)})")

    async def _final_url(self, env: Environment, demo: Demonstration) -> str | None:
        if self.capture.closed.is_set():
            return demo.last_url
        try:
            return await env.current_url() or demo.last_url  # (None: every tab is gone)
        except CuaError:
            return demo.last_url

    def _save_baselines(self) -> None:
        for path, png in self.baselines:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)

    # -- the files -------------------------------------------------------------------------------
    def _write(self, trace: RunTrace, demo: Demonstration, run_dir: Path, started: float, status: str,
               error: str | None, final_url: str | None) -> RecordResult:
        # A check may hold what was typed into a secret field (the page shows it back): masked too.
        checks = self.redactor.obj(list(self.marks))
        if self.options.url_check and self.options.env == "browser":
            ended_at = final_url
            if ended_at and self.redactor.text(ended_at) != ended_at:  # a secret in it (a form sent by GET)
                ended_at = ended_at.split("#")[0].split("?")[0]
            pattern = url_check(self.options.start_url, ended_at)
            if pattern and not any(c.get("url_matches") == pattern for c in checks):
                checks.append({"url_matches": pattern})
        steps = demo.written_steps
        task = self.redactor.text(self.options.task or generated_task(steps))
        secrets = {name: {"description": info.get("description")} for name, info in demo.secrets.items()}
        env_spec: Any = "browser" if self.options.env == "browser" else self._env_spec()
        document = scenario_document(name=self.name, task=task, start_url=self.options.start_url,
                                     display=self.settings.display, env=env_spec, secrets=secrets, checks=checks,
                                     steps=steps)
        exit_code = 0 if status == "completed" else 4
        trace.update(task=task, scenario={"name": self.name, "path": str(self.options.scenario.resolve()),
                                          "checks": checks})
        trace.update(status=status, exit_code=exit_code, error=error,
                     finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     duration_s=round(time.monotonic() - started, 3), steps=len(steps), final_url=final_url,
                     final_text="Recorded by demonstration.", final_screen=demo.final_screen(), checks=[])
        trace.close()
        from ..report.html_report import write_report

        write_report(run_dir)
        recording = self.options.scenario.parent / "recordings" / self.options.scenario.name.split(".")[0]
        kept = status == "completed" and not demo.actions and self.options.scenario.exists()
        if status == "completed" and not kept:  # (a recording stopped before anything was done keeps the old one)
            try:
                self._save_baselines()
                write_scenario(self.options.scenario, document, recorded_from=self.options.start_url)
                save_recording(run_dir, recording)
            except OSError as exc:
                raise EnvironmentError_(f"could not write {self.options.scenario} or its recording ({exc}); "
                                        f"what was recorded is in {run_dir}") from None
        return RecordResult(self.options.scenario, recording, run_dir, len(steps), demo.actions, len(checks),
                            {name: env_name(self.name, name) for name in sorted(secrets)}, exit_code, error, kept)

    def _env_spec(self) -> Any:
        spec: dict[str, Any] = {"kind": self.options.env}
        if self.options.launch:
            spec["launch"] = self.options.launch
        return spec if len(spec) > 1 else self.options.env


@contextmanager
def _children_in_their_own_session() -> Iterator[None]:
    """Ctrl-C in a terminal interrupts the terminal's whole process group. Playwright's driver
    (Node, which sets SIGINT back to its default even when it was started with SIGINT ignored)
    would die of it and take the browser with it before the recording is saved. Playwright has
    no option for that, so while the environment starts, what it spawns through asyncio gets a
    session of its own."""
    spawn = asyncio.create_subprocess_exec

    async def in_own_session(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("start_new_session", True)
        return await spawn(*args, **kwargs)

    asyncio.create_subprocess_exec = in_own_session  # type: ignore[assignment]
    try:
        yield
    finally:
        asyncio.create_subprocess_exec = spawn  # type: ignore[assignment]


def _crop(png: bytes, region: dict[str, int]) -> bytes:
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    box = (region["x"], region["y"], region["x"] + region["width"], region["y"] + region["height"])
    out = io.BytesIO()
    image.crop(box).save(out, format="PNG")
    return out.getvalue()


async def record(options: RecordOptions, *, on_line: Callable[[str], None] | None = None,
                 handle_signals: bool = True) -> RecordResult:
    """Record until the person stops; Ctrl-C and SIGTERM end the recording (and save it)."""
    recorder = Recorder(options, on_line=on_line)
    loop = asyncio.get_running_loop()
    handled = []
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, recorder.stop)
                handled.append(sig)
    try:
        return await recorder.run()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


__all__ = ["RecordOptions", "RecordResult", "Recorder", "record", "env_name"]
