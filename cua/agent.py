"""The computer-use loop: screenshot → model → actions → environment → screenshot, until done.

Read it top to bottom: ``Agent.run`` sends the task, then for every model turn decides the safety
checks, runs the actions of each call in order, takes ONE screenshot once the screen settled, and
answers. It knows nothing of Playwright or X11 (environments) nor of HTTP (the client).
"""

from __future__ import annotations

import asyncio
import base64
import io
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

from .actions import Action, action_to_wire, check_in_bounds, parse_action
from .config import RunSettings
from .environments.base import Environment
from .errors import CuaError, ModelOutputError, SafetyDenied
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
from .trace.anchors import capture_anchor
from .trace.recorder import RunTrace

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


class SafetyPolicy:
    """Decides pending safety checks BEFORE any action of their call runs."""

    def __init__(self, mode: str = "auto", ask: Callable[[list[SafetyCheck]], bool] | None = None) -> None:
        self.mode = mode
        self._ask = ask or _ask_on_tty

    async def decide(self, checks: list[SafetyCheck]) -> list[SafetyCheck]:
        """The checks to acknowledge; raises ``SafetyDenied`` when the run must stop."""
        if not checks:
            return []
        names = ", ".join(f"{c.code or 'check'} ({c.message or c.id})" for c in checks)
        if self.mode == "auto":
            return list(checks)
        if self.mode == "ask" and await asyncio.to_thread(self._ask, checks):
            return list(checks)
        raise SafetyDenied(f"safety check not acknowledged: {names}")


def _ask_on_tty(checks: list[SafetyCheck]) -> bool:
    if not sys.stdin or not sys.stdin.isatty():
        return False  # nobody to ask: deny
    for check in checks:
        print(f"\n⚠ safety check {check.code}: {check.message}", file=sys.stderr)
    answer = input("Acknowledge and continue? [y/N] ")
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

    def __init__(self, settings: RunSettings, tools: list[dict[str, Any]]) -> None:
        self.settings = settings
        self.tools = tools
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
            size = self.settings.size
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
        trace: RunTrace | None = None,
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
        self.safety = safety or SafetyPolicy(settings.safety)
        self.on_step = on_step
        self.on_event = on_event
        self.result = RunResult(status="running")
        self.last_screen: str | None = None  # run-relative path of the newest screenshot

    def _tools(self) -> list[dict[str, Any]]:
        s = self.settings
        size = s.size
        return [computer_tool(s.tool_format, size.width, size.height, s.env), *self.functions.definitions()]

    async def _screenshot(self) -> tuple[bytes, str | None]:
        png = await self.env.screenshot()
        rel = self.trace.save_screenshot(png) if self.trace else None
        return png, rel

    async def run(self, task: str | None = None) -> RunResult:
        """Run until the model is done or a limit is hit. Never raises a ``CuaError``."""
        task = task or self.settings.task
        result = self.result
        try:
            if self.settings.timeout:
                async with asyncio.timeout(self.settings.timeout):
                    await self._loop(task)
            else:
                await self._loop(task)
        except TimeoutError:
            result.status, result.reason = "timeout", f"timed out after {self.settings.timeout:g} s"
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
        conversation = Conversation(s, self._tools())
        png, rel = await self._screenshot()
        self.last_screen = rel
        if self.trace:
            self.trace.update(initial_screen=rel)
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

        answers: list[dict[str, Any]] = []
        step["actions"], step["functions"], step["safety_checks"] = [], [], []
        for call in calls:
            if isinstance(call, FunctionCall):
                answers.append(await self._run_function(call, step))
            else:
                answers.append(await self._run_computer_call(call, step))
        return answers

    async def _run_function(self, call: FunctionCall, step: dict[str, Any]) -> dict[str, Any]:
        t0 = time.monotonic()
        output = await self.functions.call(call.name, call.arguments)
        step["functions"].append(
            {"name": call.name, "arguments": call.arguments, "output": output[:2000],
             "ms": round((time.monotonic() - t0) * 1000)}
        )
        await self.env.settle()
        return FunctionCallOutput(call_id=call.call_id, output=output).wire()

    async def _run_computer_call(self, call: ComputerCall, step: dict[str, Any]) -> dict[str, Any]:
        size = self.settings.size
        where = f"computer_call {call.call_id}"
        # Validate the whole batch first: a bad action must not leave half a batch executed.
        actions: list[Action] = []
        for n, raw in enumerate(call.raw_actions()):
            action = parse_action(raw, where=f"{where} action {n + 1}")
            check_in_bounds(action, size, where=f"{where} action {n + 1}")
            actions.append(action)
        if not actions:
            raise ModelOutputError(f"{where}: no action given")

        step["safety_checks"].extend(
            {"id": c.id, "code": c.code, "message": c.message, "decision": "pending"}
            for c in call.pending_safety_checks
        )
        try:
            acknowledged = await self.safety.decide(call.pending_safety_checks)
        except SafetyDenied:
            for check in step["safety_checks"]:
                check["decision"] = "denied"
            raise
        for check in step["safety_checks"]:
            check["decision"] = "acknowledged"

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
            acknowledged_safety_checks=acknowledged,
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
