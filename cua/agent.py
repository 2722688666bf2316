"""The computer-use loop: screenshot → model → actions → environment → screenshot, until done.

Read it top to bottom: ``Agent.run`` sends the task, then for every model turn decides the safety
checks, runs the actions of each call in order, takes ONE screenshot once the screen settled, and
answers. It knows nothing of Playwright or X11 (environments) nor of HTTP (the client).
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import io
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Literal, Protocol

from .actions import OPENAI_ACTION_TYPES, Action, Size, action_to_wire, check_in_bounds, parse_action
from .config import RunSettings
from .environments.base import Environment
from .errors import CuaError, EnvironmentError_, ModelOutputError, SafetyDenied
from .functions import FunctionRegistry
from .responses.models import (
    ComputerCall,
    ComputerCallOutput,
    ComputerScreenshot,
    CreateRequest,
    FunctionCall,
    FunctionCallOutput,
    Message,
    Reasoning,
    Response,
    SafetyCheck,
    computer_tool,
)
from .runs.anchors import capture_anchor
from .runs.writer import StepRecorder

Status = Literal[
    "running", "completed", "failed", "max_steps", "timeout", "safety_denied", "error",
    "interrupted", "diverged",
]

EXIT_CODES: dict[str, int] = {
    "completed": 0, "failed": 1, "max_steps": 1, "timeout": 1, "diverged": 1,
    "safety_denied": 5, "interrupted": 130,
}


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0

    def add(self, usage: Any) -> None:
        if usage is None:
            return
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.reasoning_tokens += usage.reasoning_tokens
        self.total_tokens += usage.total_tokens or (usage.input_tokens + usage.output_tokens)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class RunResult:
    status: Status
    steps: int = 0
    final_text: str = ""
    final_url: str | None = None
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    reason: str | None = None
    run_dir: str | None = None
    exit_code: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)
    healed: int | None = None
    diverged_at: int | None = None
    cost: float | None = None

    def as_dict(self) -> dict[str, Any]:
        data = {
            "status": self.status,
            "steps": self.steps,
            "final_text": self.final_text,
            "final_url": self.final_url,
            "run_dir": self.run_dir,
            "usage": self.usage.as_dict(),
            "error": self.error,
            "reason": self.reason,
            "exit_code": self.exit_code,
            "checks": self.checks,
            "cost": self.cost,
        }
        if self.healed is not None:
            data["healed"] = self.healed
            data["diverged_at"] = self.diverged_at
        return data


class ResponsesLike(Protocol):
    async def create(self, request: CreateRequest, on_event: Callable[[dict], None] | None = None) -> Response: ...


# --- Safety -------------------------------------------------------------------------------------


AskFn = Callable[[list[SafetyCheck]], "bool | Awaitable[bool]"]


class SafetyPolicy:
    """Decides pending safety checks BEFORE any action of their response runs.

    ``allow`` lists check codes the user accepts up front (``--safety-allow``); every other check
    goes by ``mode``: ``auto`` acknowledges it, ``ask`` asks on the terminal (and denies when there
    is none), ``deny`` stops the run. Nothing is acknowledged that nobody allowed.
    """

    def __init__(self, mode: str = "ask", allow: Iterable[str] = (), ask: AskFn | None = None) -> None:
        self.mode = mode
        self.allow = frozenset(allow)
        self._ask = ask or ask_on_terminal

    @classmethod
    def from_settings(cls, settings: RunSettings) -> "SafetyPolicy":
        return cls(settings.safety, settings.safety_allow)

    async def decide(self, checks: list[SafetyCheck]) -> list[SafetyCheck]:
        """The checks to acknowledge (all of them); raises ``SafetyDenied`` when the run must stop."""
        open_checks = [c for c in checks if c.code not in self.allow]
        if not open_checks or self.mode == "auto":
            return list(checks)
        if self.mode == "ask":
            answer = self._ask(open_checks)
            if inspect.isawaitable(answer):
                answer = await answer
            if answer is True:
                return list(checks)
            why = "no terminal to ask on" if answer is None else "declined at the prompt"
        else:
            why = "--safety deny"
        names = ", ".join(f"{c.code or 'check'} ({c.message or c.id})" for c in open_checks)
        codes = " ".join(f"--safety-allow {c.code}" for c in open_checks if c.code)
        raise SafetyDenied(
            f"safety check not acknowledged ({why}): {names}. To go on, rerun with --safety auto "
            f"(acknowledge every check) or {codes or '--safety auto'}; in a scenario, "
            "`safety: auto` or `safety: {allow: [CODE]}`"
        )


async def ask_on_terminal(checks: list[SafetyCheck]) -> bool | None:
    """Ask y/n on the terminal; None when there is none (unattended: the caller denies).

    The answer is read through the event loop, not a thread, so a timeout or Ctrl-C during the
    prompt ends the run at once instead of waiting for a line nobody will type."""
    stdin = sys.stdin
    try:
        interactive = stdin is not None and stdin.isatty()
    except ValueError:  # a closed stdin
        interactive = False
    if not interactive:
        return None
    for check in checks:
        print(f"\n⚠ safety check {check.code}: {check.message}", file=sys.stderr)
    print("Acknowledge and continue? [y/N] ", end="", file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    line: asyncio.Future[bytes] = loop.create_future()
    fd = stdin.fileno()

    def readable() -> None:
        if not line.done():
            line.set_result(os.read(fd, 1024))

    loop.add_reader(fd, readable)
    try:
        answer = (await line).decode(errors="replace")
    finally:
        loop.remove_reader(fd)
    return answer.strip().lower() in {"y", "yes"}


# --- Conversation state ------------------------------------------------------------------------


OMITTED_NOTE = "earlier screenshot omitted to bound the request size"


def _placeholder_png(width: int, height: int) -> bytes:
    """A flat grey frame with a short note: a valid screenshot that costs a few hundred bytes."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (width, height), 128)
    ImageDraw.Draw(img).text((10, 10), OMITTED_NOTE, fill=255)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class Conversation:
    """Builds each request. Chained (``previous_response_id``) or stateless (full replay)."""

    def __init__(self, settings: RunSettings, tools: list[dict[str, Any]], display: Size) -> None:
        self.settings = settings
        self.tools = tools
        self.display = display  # the screenshots' size, for the placeholder of omitted ones
        self.previous_response_id: str | None = None
        self.history: list[dict[str, Any]] = []  # stateless only: every item so far, in order
        self._screenshot_slots: list[tuple[int, str]] = []  # (index in history, call_id)
        self._placeholder: str | None = None

    def request(self, new_items: list[dict[str, Any]]) -> CreateRequest:
        s = self.settings
        common: dict[str, Any] = dict(
            model=s.model,
            tools=self.tools,
            instructions=s.instructions,
            reasoning=s.reasoning(),
            truncation="auto" if s.tool_format == "preview" else None,
            stream=s.stream or None,
        )
        if not s.stateless:
            return CreateRequest(input=new_items, previous_response_id=self.previous_response_id, **common)
        for item in new_items:
            if item.get("type") == "computer_call_output":
                self._screenshot_slots.append((len(self.history), item["call_id"]))
            self.history.append(item)
        self._trim_screenshots()
        return CreateRequest(
            input=list(self.history), store=False, include=["reasoning.encrypted_content"], **common
        )

    def record(self, response: Response) -> None:
        if self.settings.stateless:
            self.history.extend(item.wire() for item in response.output)
        else:
            self.previous_response_id = response.id

    def _trim_screenshots(self) -> None:
        excess = self._screenshot_slots[: -self.settings.keep_screenshots]
        if not excess:
            return
        if self._placeholder is None:
            size = self.display
            self._placeholder = data_url(_placeholder_png(size.width, size.height))
        for index, _ in excess:
            item = dict(self.history[index])
            item["output"] = {"type": "computer_screenshot", "image_url": self._placeholder}
            self.history[index] = item
        del self._screenshot_slots[: len(excess)]


# --- The loop ----------------------------------------------------------------------------------


class Agent:
    def __init__(
        self,
        client: ResponsesLike,
        env: Environment,
        settings: RunSettings,
        *,
        trace: StepRecorder | None = None,
        functions: FunctionRegistry | None = None,
        safety: SafetyPolicy | None = None,
        on_step: Callable[[dict[str, Any]], None] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.client = client
        self.env = env
        self.settings = settings
        self.trace = trace
        # Not `functions or …`: an empty registry is falsy, and the runner fills it in later.
        self.functions = functions if functions is not None else FunctionRegistry()
        self.safety = safety or SafetyPolicy.from_settings(settings)
        self.on_step = on_step
        self.on_event = on_event
        self.result = RunResult(status="running")
        self.last_screen: str | None = None  # run-relative path of the newest screenshot

    def _tools(self) -> list[dict[str, Any]]:
        s = self.settings
        size = self.env.display  # the started environment's: a screen of another shape changes it
        return [computer_tool(s.tool_format, size.width, size.height, s.env), *self.functions.definitions()]

    async def _screenshot(self) -> tuple[bytes, str | None]:
        png = await self.env.screenshot()
        rel = self.trace.save_screenshot(png) if self.trace else None
        return png, rel

    async def run(self, task: str | None = None) -> RunResult:
        """Run until the model is done or a limit is hit. Never raises a ``CuaError``; a caller's
        cancellation propagates as ``CancelledError``."""
        task = task or self.settings.task
        result = self.result
        deadline = asyncio.timeout(self.settings.timeout)  # None: no deadline
        try:
            async with deadline:
                await self._loop(task)
        except TimeoutError as exc:
            if deadline.expired():
                result.status, result.reason = "timeout", f"timed out after {self.settings.timeout:g} s"
            else:  # something inside timed out on its own: an error, not the run's limit
                result.status, result.exit_code = "error", EnvironmentError_.exit_code
                result.error = f"an operation of the run timed out ({exc or type(exc).__name__})"
        except SafetyDenied as exc:
            result.status, result.error = "safety_denied", str(exc)
        except CuaError as exc:
            result.status, result.error = "error", str(exc)
            result.exit_code = exc.exit_code
        if result.status != "error":
            result.exit_code = EXIT_CODES.get(result.status, 1)
        return result

    async def _loop(self, task: str) -> None:
        s, result = self.settings, self.result
        conversation = Conversation(s, self._tools(), self.env.display)
        png, rel = await self._screenshot()
        self.last_screen = rel
        if self.trace:  # the size the model sees: --display, or the part of it the screen's shape fills
            self.trace.update(initial_screen=rel, display=str(self.env.display))
        pending: list[dict[str, Any]] = [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": task},
                    {"type": "input_image", "image_url": data_url(png)},
                ],
            }
        ]
        while True:
            if result.steps >= s.max_steps:
                result.status, result.reason = "max_steps", f"stopped after {s.max_steps} steps"
                return
            step: dict[str, Any] = {"step": result.steps + 1, "screen_before": self.last_screen}
            t0 = time.monotonic()
            step["elapsed_s"] = round(self.trace.elapsed(), 3) if self.trace else None
            response = await self.client.create(conversation.request(pending), on_event=self.on_event)
            result.steps += 1  # a step is a model turn: counted once the model has answered
            step["model_ms"] = round((time.monotonic() - t0) * 1000)
            conversation.record(response)
            result.usage.add(response.usage)
            step["response_id"] = response.id
            step["usage"] = _usage_dict(response.usage)
            try:
                await self.env.begin_step(result.steps, _turn_title(response))
                pending = await self._handle_output(response, step)
            finally:  # a step that ends the run (safety denial, bad output) is recorded too
                if self.trace:  # run.json is rewritten at the end; readers count steps.jsonl
                    self.trace.append_step(step)
                if self.on_step:
                    self.on_step(step)
            if result.status != "running":
                return
            if s.token_budget and result.usage.total_tokens >= s.token_budget:
                result.status = "failed"
                result.reason = f"token budget of {s.token_budget} exhausted ({result.usage.total_tokens} used)"
                return

    async def _handle_output(self, response: Response, step: dict[str, Any]) -> list[dict[str, Any]]:
        """Execute what the response asks for; return the items that answer it."""
        result = self.result
        items = response.output
        step["items"] = [_strip_item(i.wire()) for i in items]
        step["reasoning"] = "\n".join(i.summary_text() for i in items if isinstance(i, Reasoning) and i.summary_text())
        messages = [i for i in items if isinstance(i, Message)]
        step["text"] = "\n".join(m.text() for m in messages if m.text())
        calls = [i for i in items if isinstance(i, (ComputerCall, FunctionCall))]

        refusal = next((m.refusal() for m in messages if m.refusal()), None)
        if refusal:
            result.status, result.reason, result.final_text = "failed", "refused", refusal
            step["final"] = True
            return []
        if response.status in {"failed", "incomplete"} and not calls:
            detail = response.error or response.incomplete_details or {}
            result.status, result.reason = "failed", f"response {response.status}: {detail}"
            step["final"] = True
            return []
        if not calls:
            result.status, result.final_text = "completed", step["text"]
            result.final_url = await self.env.current_url()
            step["final"] = True
            return []

        step["actions"], step["functions"], step["safety_checks"] = [], [], []
        # Every call is validated and every safety check of the response decided before the first
        # action runs: a bad action or a denied check must not leave half a response executed.
        batches = {id(c): self._parse_call(c) for c in calls if isinstance(c, ComputerCall)}
        acknowledged = await self._decide_safety([c for c in calls if isinstance(c, ComputerCall)], step)
        answers: list[dict[str, Any]] = []
        for call in calls:
            if isinstance(call, FunctionCall):
                answers.append(await self._run_function(call, step))
            else:
                answers.append(await self._run_computer_call(call, batches[id(call)], acknowledged, step))
        return answers

    def _parse_call(self, call: ComputerCall) -> list[Action]:
        size = self.env.display
        where = f"computer_call {call.call_id}"
        actions: list[Action] = []
        for n, raw in enumerate(call.raw_actions()):
            action = parse_action(raw, where=f"{where} action {n + 1}", known=OPENAI_ACTION_TYPES)
            check_in_bounds(action, size, where=f"{where} action {n + 1}")
            actions.append(action)
        if not actions:
            raise ModelOutputError(f"{where}: no action given")
        return actions

    async def _decide_safety(self, calls: list[ComputerCall], step: dict[str, Any]) -> set[str]:
        """The ids of the acknowledged checks of all ``calls``; raises ``SafetyDenied``."""
        pending = [c for call in calls for c in call.pending_safety_checks]
        if not pending:
            return set()
        step["safety_checks"].extend(
            {"id": c.id, "code": c.code, "message": c.message, "decision": "pending"} for c in pending
        )
        try:
            acknowledged = await self.safety.decide(pending)
        except SafetyDenied:
            for check in step["safety_checks"]:
                check["decision"] = "denied"
            raise
        for check in step["safety_checks"]:
            check["decision"] = "acknowledged"
        return {c.id for c in acknowledged}

    async def _run_function(self, call: FunctionCall, step: dict[str, Any]) -> dict[str, Any]:
        t0 = time.monotonic()
        output = await self.functions.call(call.name, call.arguments)
        step["functions"].append(
            {"name": call.name, "arguments": call.arguments, "output": output[:2000],
             "ms": round((time.monotonic() - t0) * 1000)}
        )
        await self.env.settle()
        return FunctionCallOutput(call_id=call.call_id, output=output).wire()

    async def _run_computer_call(self, call: ComputerCall, actions: list[Action], acknowledged: set[str],
                                 step: dict[str, Any]) -> dict[str, Any]:
        for action in actions:
            step["actions"].append(await self._execute(action))
        t0 = time.monotonic()
        await self.env.settle()
        png, rel = await self._screenshot()
        step["settle_ms"] = round((time.monotonic() - t0) * 1000)
        step["screen_after"] = self.last_screen = rel
        url = await self.env.current_url()
        step["url"] = url
        return ComputerCallOutput(
            call_id=call.call_id,
            output=ComputerScreenshot(image_url=data_url(png)),
            acknowledged_safety_checks=[c for c in call.pending_safety_checks if c.id in acknowledged],
            current_url=url,
        ).wire()

    async def _execute(self, action: Action) -> dict[str, Any]:
        record: dict[str, Any] = {"action": action_to_wire(action)}
        points = action.points()
        if points and self.trace:
            record["anchor"] = await self._anchor(*points[0])
        t0 = time.monotonic()
        try:
            await self.env.execute(action)
        finally:
            record["ms"] = round((time.monotonic() - t0) * 1000)
        return record

    async def _anchor(self, x: int, y: int) -> dict[str, Any] | None:
        return await capture_anchor(self.env, x, y)


def _turn_title(response: Response) -> str:
    kinds = [str(a.get("type", "?")) for i in response.output if isinstance(i, ComputerCall) for a in i.raw_actions()]
    kinds += [f"{i.name}()" for i in response.output if isinstance(i, FunctionCall)]
    return ", ".join(kinds) or "answer"


def _usage_dict(usage: Any) -> dict[str, int] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "total_tokens": usage.total_tokens,
    }


def _strip_item(item: dict[str, Any]) -> dict[str, Any]:
    """Items as recorded: no encrypted reasoning blobs (large and useless to a reader)."""
    if "encrypted_content" in item:
        item = {**item, "encrypted_content": "…"}
    return item
