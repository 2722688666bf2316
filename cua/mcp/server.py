"""``cua mcp``: cua's runs, replays and a computer to drive, as tools of an MCP server.

Built on the official ``mcp`` SDK (``MCPServer``). Every tool is a library call of cua; what a
tool cannot do is a tool error with one sentence (the server goes on). Model API keys come from
the server's environment, never from tool arguments. Runs and sessions are written under the
server's ``out`` folder; each run's report is the resource ``cua://runs/{name}/report``.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..errors import CuaError, validation_problem

try:
    import mcp_types
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
except ImportError as exc:  # the optional extra is not installed
    raise ImportError("the MCP server needs the mcp package: pip install 'cua[mcp]'") from exc

from .computer import Closed, Computers, ComputerSession, Done, Looked

EnvName = Literal["browser", "ubuntu", "linux", "mac", "windows"]
INSTRUCTIONS = (
    "cua runs computer-use tasks and scenarios in a browser or on a desktop, replays recorded runs "
    "with no model, and lends you a computer to drive yourself: open_computer, then screenshot and "
    "act (click, type_text, ...) in its coordinates, then close_computer (save_as makes it a "
    "scenario that `cua replay` replays). Every run leaves a run folder with a report."
)


class RunOutcome(BaseModel):
    """How a run or replay ended, and where its folder and report are."""

    status: str = Field(description="completed, failed, max_steps, timeout, safety_denied, error, diverged …")
    exit_code: int = Field(description="what `cua run` would exit with: 0 completed, 1 failed, 4 environment …")
    steps: int
    final_text: str = ""
    final_url: str | None = None
    error: str | None = None
    reason: str | None = None
    run_dir: str | None = None
    report: str | None = None
    checks: list[dict[str, Any]] = Field(default_factory=list)
    healed: int | None = Field(None, description="replays: actions found again by element or image")
    diverged_at: int | None = Field(None, description="replays: the step the screen no longer matched")


class ClosedComputer(BaseModel):
    run_dir: str
    report: str | None
    steps: int
    scenario: str | None = Field(None, description="the scenario file written (save_as)")
    recording: str | None = Field(None, description="its recording, which `cua replay SCENARIO` plays")


class RunSummary(BaseModel):
    name: str = Field(description="the run folder's name; its report is cua://runs/{name}/report")
    kind: str | None
    status: str | None
    task: str | None
    steps: int | None
    started_at: str | None
    made_by: str | None = None


def _outcome(result: Any) -> RunOutcome:
    report = Path(result.run_dir) / "report.html" if result.run_dir else None
    return RunOutcome(status=result.status, exit_code=result.exit_code, steps=result.steps,
                      final_text=result.final_text or "", final_url=result.final_url, error=result.error,
                      reason=result.reason, run_dir=result.run_dir,
                      report=str(report) if report and report.exists() else None, checks=result.checks,
                      healed=result.healed, diverged_at=result.diverged_at)


class _Progress:
    """Step lines of a long tool, sent as MCP progress notifications while it runs."""

    def __init__(self, ctx: Context | None, total: int | None) -> None:
        self.ctx, self.total = ctx, total
        self._sent: list[asyncio.Future[Any]] = []

    def step(self, step: dict[str, Any]) -> None:
        if self.ctx is None:
            return
        actions = ", ".join(a["action"].get("type", "?") for a in step.get("actions") or [] if "action" in a)
        message = f"step {step.get('step')}: {actions or ('done' if step.get('final') else 'no action')}"
        self._sent.append(asyncio.ensure_future(
            self.ctx.report_progress(float(step.get("step") or 0), self.total, message)))

    async def flush(self) -> None:
        await asyncio.gather(*self._sent, return_exceptions=True)


def _settings(**fields: Any) -> Any:
    from ..config import RunSettings

    data = {k: v for k, v in fields.items() if v is not None and v != []}
    try:
        return RunSettings(**data)
    except ValueError as exc:
        raise ToolError(f"bad setting: {validation_problem(exc)}") from None


def _scenario_path(path: str, *, must_exist: bool) -> Path:
    target = Path(path).expanduser()
    if not target.name.endswith((".cua.yaml", ".cua.yml")):
        raise ToolError(f"{path}: a scenario file's name ends in .cua.yaml")
    if must_exist and not target.is_file():
        raise ToolError(f"{path}: no such scenario file")
    return target


class CuaTools:
    """The server's state: where runs go, and the open computers."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.computers = Computers(out)

    # -- runs ---------------------------------------------------------------------------------------
    async def run_task(self, task: str, ctx: Context, start_url: str | None = None, model: str | None = None,
                       env: EnvName = "browser", display: str | None = None, max_steps: int | None = None,
                       timeout_s: float | None = None, allow_domains: list[str] | None = None,
                       block_domains: list[str] | None = None, safety: Literal["deny", "auto"] = "deny",
                       safety_allow: list[str] | None = None, x_display: str | None = None,
                       vm_url: str | None = None) -> RunOutcome:
        """Run a computer-use task with a model until it is done; the model's key comes from the
        server's environment (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY). Safety checks the
        model raises stop the run (safety="deny") unless allowed by code (safety_allow) or all
        (safety="auto"). Sends a progress notification per step."""
        from ..runner import run_task

        settings = _settings(task=task, start_url=start_url, model=model, env=env, display=display,
                             max_steps=max_steps, timeout=timeout_s, allow_domains=allow_domains,
                             block_domains=block_domains, safety=safety, safety_allow=safety_allow,
                             x_display=x_display, vm_url=vm_url, out=self.out)
        progress = _Progress(ctx, settings.max_steps)
        try:
            result = await run_task(settings, on_step=progress.step)
        except CuaError as exc:
            raise ToolError(str(exc)) from None
        finally:
            await progress.flush()
        return _outcome(result)

    async def run_scenario(self, path: str, ctx: Context,
                           mode: Literal["live", "replay", "scripted"] = "live",
                           vars: dict[str, str] | None = None) -> RunOutcome:
        """Run a scenario file (.cua.yaml): live with the model it names, replay its recording with
        no model, or scripted (its script played over the model's wire format, no key needed).
        `vars` fills the scenario's variables."""
        from ..replay.replayer import replay_target
        from ..runner import run_scenario

        target = _scenario_path(path, must_exist=True)
        progress = _Progress(ctx, None)
        try:
            if mode == "replay":
                result = await replay_target(target, variables=vars, out=self.out, on_step=progress.step)
            else:
                flags = {"out": self.out, **({"model": "scripted"} if mode == "scripted" else {})}
                result = await run_scenario(target, flags=flags, variables=vars, on_step=progress.step)
        except CuaError as exc:
            raise ToolError(str(exc)) from None
        finally:
            await progress.flush()
        return _outcome(result)

    async def replay(self, target: str, ctx: Context, start_url: str | None = None,
                     heal: Literal["none", "model"] = "none", update: bool = False) -> RunOutcome:
        """Replay a run folder or a scenario's recording with no model. Targets that moved are found
        again by element or image; a screen that no longer matches stops it as `diverged` (or, with
        heal="model", hands over to the recording's model). update=true saves a healed replay as
        the recording."""
        from ..replay.replayer import replay_target

        if not Path(target).expanduser().exists():
            raise ToolError(f"{target}: no such run folder or scenario file")
        progress = _Progress(ctx, None)
        try:
            result = await replay_target(Path(target).expanduser(), start_url=start_url, heal=heal,
                                         update=update, out=self.out, on_step=progress.step)
        except CuaError as exc:
            raise ToolError(str(exc)) from None
        finally:
            await progress.flush()
        return _outcome(result)

    def list_runs(self, limit: int = 20) -> list[RunSummary]:
        """The newest run folders under the server's runs folder (reports: cua://runs/{name}/report)."""
        found: list[RunSummary] = []
        folders = sorted((p for p in self.out.glob("*/run.json")), key=lambda p: p.parent.name, reverse=True)
        for meta_path in folders[:max(1, min(limit, 500))]:
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            found.append(RunSummary(name=meta_path.parent.name, kind=meta.get("kind"), status=meta.get("status"),
                                    task=meta.get("task"), steps=meta.get("steps"),
                                    started_at=meta.get("started_at"), made_by=meta.get("made_by")))
        return found

    def report(self, name: str) -> str:
        """A run's HTML report (screenshots inline)."""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or ".." in name:
            raise ResourceNotFoundError(f"{name!r} is not the name of a run folder")
        path = self.out / name / "report.html"
        if not path.is_file():
            raise ResourceNotFoundError(f"no report for a run {name!r} under {self.out}")
        return path.read_text(encoding="utf-8")

    # -- a computer for the client's model ----------------------------------------------------------
    async def open_computer(self, env: EnvName = "browser", start_url: str | None = None,
                            display: str = "1024x768", task: str | None = None,
                            allow_domains: list[str] | None = None, block_domains: list[str] | None = None,
                            x_display: str | None = None, vm_url: str | None = None) -> mcp_types.CallToolResult:
        """Open a computer for you to drive: a browser at start_url, the X display x_display, or the
        VM at vm_url. Answers its session id, its display size (the coordinates every action takes)
        and a first screenshot. The domain policy (allow_domains, block_domains) holds for every
        page it opens."""
        settings = _settings(env=env, start_url=start_url, display=display, task=task,
                             allow_domains=allow_domains, block_domains=block_domains, x_display=x_display,
                             vm_url=vm_url, out=self.out)
        try:
            session = await self.computers.open(settings, label=f"mcp-{task or env}")  # (a URL may hold a credential)
        except CuaError as exc:
            raise ToolError(str(exc)) from None
        assert session.last is not None
        size = session.display
        data = {"session": session.id, "display": {"width": size.width, "height": size.height},
                "url": session.last.url, "run_dir": str(session.trace.dir)}
        text = (f"computer {session.id} is open: a {size} display"
                + (f" at {session.last.url}" if session.last.url else "")
                + ". Act in its coordinates; close_computer when done.")
        return _with_screen(session.last, text, data)

    async def screenshot(self, session: str) -> mcp_types.CallToolResult:
        """The computer's screen now (after the page settled)."""
        computer = self._computer(session)
        async with computer.lock:
            try:
                looked = await computer.look()
            except CuaError as exc:
                raise ToolError(str(exc)) from None
        return _with_screen(looked, f"the screen of {session}" + (f" at {looked.url}" if looked.url else ""),
                            {"session": session, "url": looked.url})

    async def act(self, session: str, action: dict[str, Any]) -> mcp_types.CallToolResult:
        computer = self._computer(session)
        try:
            done = await computer.act(action)
        except CuaError as exc:
            raise ToolError(str(exc)) from None
        return _with_screen(done.screen, _said(done), {"session": session, "step": done.step,
                                                       "action": done.action, "url": done.screen.url})

    async def close_computer(self, session: str, save_as: str | None = None) -> ClosedComputer:
        """Close the computer and finish its run folder and report. save_as (a .cua.yaml path) also
        writes what was done as a scenario and its recording, which `cua replay` replays."""
        target = _scenario_path(save_as, must_exist=False) if save_as else None
        self._computer(session)
        try:
            closed: Closed = await self.computers.close(session, save_as=target)
        except (CuaError, OSError) as exc:
            raise ToolError(f"closing {session}: {exc}") from None
        return ClosedComputer(**closed.__dict__)

    def _computer(self, session: str) -> ComputerSession:
        try:
            return self.computers.get(session)
        except CuaError as exc:
            raise ToolError(str(exc)) from None


def _with_screen(looked: Looked, text: str, data: dict[str, Any]) -> mcp_types.CallToolResult:
    import base64

    image = mcp_types.ImageContent(type="image", data=base64.b64encode(looked.png).decode(), mime_type="image/png")
    return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=text), image],
                                    structured_content=data)


def _said(done: Done) -> str:
    action = done.action
    where = f" at ({action['x']}, {action['y']})" if "x" in action else ""
    return f"step {done.step}: {action['type']}{where} done in {done.ms} ms" + (
        f"; the page is {done.screen.url}" if done.screen.url else "")


def build_server(out: Path) -> tuple[MCPServer, CuaTools]:
    """The MCP server and the state behind its tools."""
    from .. import __version__

    tools = CuaTools(out.resolve())  # results name absolute paths: the client's folder is not ours
    server = MCPServer("cua", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")
    for fn in (tools.run_task, tools.run_scenario, tools.replay, tools.list_runs, tools.open_computer,
               tools.screenshot, tools.close_computer):
        server.add_tool(fn)
    _add_actions(server, tools)

    @server.resource("cua://runs/{name}/report", mime_type="text/html",
                     description="the HTML report of a run folder")
    def run_report(name: str) -> str:
        return tools.report(name)

    return server, tools


def _add_actions(server: MCPServer, tools: CuaTools) -> None:
    """One tool per action of the computer session, in its display's pixel coordinates."""

    async def click(session: str, x: int, y: int, button: Literal["left", "right", "wheel"] = "left",
                    keys: list[str] | None = None) -> mcp_types.CallToolResult:
        """Click at (x, y), with `keys` (e.g. ["SHIFT"]) held; answers the screen after it."""
        return await tools.act(session, {"type": "click", "x": x, "y": y, "button": button,
                                         **({"keys": keys} if keys else {})})

    async def double_click(session: str, x: int, y: int) -> mcp_types.CallToolResult:
        """Double-click at (x, y); answers the screen after it."""
        return await tools.act(session, {"type": "double_click", "x": x, "y": y})

    async def drag(session: str, path: list[tuple[int, int]]) -> mcp_types.CallToolResult:
        """Press at the first point of `path` ([[x, y], ...], at least two), move through the
        rest and release at the last."""
        return await tools.act(session, {"type": "drag", "path": [{"x": x, "y": y} for x, y in path]})

    async def scroll(session: str, x: int, y: int, scroll_x: int = 0, scroll_y: int = 0) -> mcp_types.CallToolResult:
        """Scroll with the wheel at (x, y) by pixels (scroll_y > 0 scrolls down)."""
        return await tools.act(session, {"type": "scroll", "x": x, "y": y, "scroll_x": scroll_x, "scroll_y": scroll_y})

    async def type_text(session: str, text: str) -> mcp_types.CallToolResult:
        """Type text where the focus is."""
        return await tools.act(session, {"type": "type", "text": text})

    async def press_keys(session: str, keys: list[str]) -> mcp_types.CallToolResult:
        """Press keys together, as a chord: ["ENTER"], ["CTRL", "a"], ["ALT", "TAB"]."""
        return await tools.act(session, {"type": "keypress", "keys": keys})

    async def move(session: str, x: int, y: int) -> mcp_types.CallToolResult:
        """Move the pointer to (x, y) (hover)."""
        return await tools.act(session, {"type": "move", "x": x, "y": y})

    async def wait(session: str, ms: int = 1000) -> mcp_types.CallToolResult:
        """Wait, then answer the screen (at most 60000 ms)."""
        return await tools.act(session, {"type": "wait", "ms": ms})

    async def navigate(session: str, url: str) -> mcp_types.CallToolResult:
        """Open a URL in the browser (http, https, about:blank), under the session's domain policy."""
        return await tools.act(session, {"type": "navigate", "url": url})

    for fn in (click, double_click, drag, scroll, type_text, press_keys, move, wait, navigate):
        server.add_tool(fn)


async def serve(*, out: Path, http: bool = False, host: str = "127.0.0.1", port: int = 8765,
                token: str | None = None, on_ready: Any = None) -> None:
    """Serve until the client goes (stdio) or the process is stopped (HTTP); every open computer
    is closed on the way out, its run folder finished."""
    from ..environments.browser_pool import shared_browsers

    server, tools = build_server(out)
    async with shared_browsers():  # runs and computers of this server share one Chromium
        try:
            if not http:
                await server.run_stdio_async()
            else:
                await _serve_http(server, host=host, port=port, token=token, on_ready=on_ready)
        finally:
            await tools.computers.close_all()


async def _serve_http(server: MCPServer, *, host: str, port: int, token: str | None, on_ready: Any) -> None:
    import socket

    import uvicorn

    from ..errors import EnvironmentError_

    # The socket is ours, so a port in use is one message of cua's (uvicorn would log and exit 3).
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise EnvironmentError_(f"cua mcp cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    app: Any = server.streamable_http_app(host=host)
    if token:
        app = _BearerToken(app, token)
    web = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    web.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # cua's own handlers stop it
    serving = asyncio.ensure_future(web.serve(sockets=[listener]))
    if on_ready is not None:
        while not web.started and not serving.done():
            await asyncio.sleep(0.05)
        if web.started:
            shown = f"[{host}]" if ":" in host else host
            on_ready(f"http://{shown}:{listener.getsockname()[1]}/mcp")
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:  # Ctrl-C or SIGTERM: let uvicorn end its lifespan and connections
        web.should_exit = True
        await serving
        raise
    finally:
        listener.close()


class _BearerToken:
    """Refuses every HTTP request without ``Authorization: Bearer <token>`` (401)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        import hmac

        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, b"Bearer " + self.token):
                body = b'{"error": "unauthorized: send Authorization: Bearer <CUA_MCP_TOKEN>"}'
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
