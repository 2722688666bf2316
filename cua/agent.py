"""The computer-use loop: screenshot → model → actions → environment → screenshot, until done.

Read it top to bottom: ``Agent.run`` sends the task, then for every model turn decides the safety
checks, runs the actions of each call in order, takes a screenshot once the screen settled, and
answers. It knows nothing of Playwright or X11 (environments) nor of any vendor's wire format (providers):
a provider hands it typed turns and takes typed answers back.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Literal

from .actions import Action, action_to_wire, check_in_bounds
from .config import RunSettings
from .environments.base import ActionOutput, Environment
from .errors import CuaError, EnvironmentError_, ModelOutputError, SafetyDenied
from .functions import FunctionRegistry
from .providers.base import (
    ApprovalRequest,
    CallAnswer,
    ComputerCall,
    FunctionCall,
    Provider,
    SafetyCheck,
    Screen,
    Turn,
    Usage,
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
    attempts: int = 1  # with retries (cua.attempts): which attempt this result is
    flaky: bool = False  # it passed after an attempt that failed
    earlier_attempts: list[dict[str, Any]] = field(default_factory=list)

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
        if self.attempts > 1:
            data.update(attempts=self.attempts, flaky=self.flaky, earlier_attempts=self.earlier_attempts)
        return data


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
    """Ask y/n on the terminal; None when there is none (unattended: the caller denies)."""
    return await ask_yes_no([f"⚠ safety check {c.code}: {c.message}" for c in checks],
                            "Acknowledge and continue?")


class McpApprovalPolicy:
    """Decides a remote MCP tool call the service asks to make (``mcp_approval_request``):
    ``auto`` approves, ``deny`` refuses, ``ask`` asks on the terminal and refuses without one. A
    refusal is told to the model (``approve: false``); the run goes on."""

    def __init__(self, mode: str = "ask", ask: Callable[[list[str], str], Awaitable[bool | None]] | None = None) -> None:
        self.mode = mode
        self._ask = ask or ask_yes_no

    async def decide(self, request: ApprovalRequest) -> tuple[bool, str]:
        """(approved, how it was decided)."""
        if self.mode == "auto":
            return True, "approved (--mcp-approval auto)"
        if self.mode == "deny":
            return False, "refused (--mcp-approval deny)"
        answer = await self._ask([f"⚙ MCP server {request.server!r} wants to call {request.name}({request.arguments})"],
                                 "Approve this call?")
        if answer is None:
            return False, "refused (no terminal to ask on)"
        return answer, "approved at the prompt" if answer else "refused at the prompt"


async def ask_yes_no(lines: list[str], question: str) -> bool | None:
    """Ask y/n on the terminal; None when there is none.

    The answer is read through the event loop, not a thread, so a timeout or Ctrl-C during the
    prompt ends the run at once instead of waiting for a line nobody will type."""
    stdin = sys.stdin
    try:
        interactive = stdin is not None and stdin.isatty()
    except ValueError:  # a closed stdin
        interactive = False
    if not interactive:
        return None
    for text in lines:
        print(f"\n{text}", file=sys.stderr)
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
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


# --- The loop ----------------------------------------------------------------------------------


class Agent:
    def __init__(
        self,
        provider: Provider,
        env: Environment,
        settings: RunSettings,
        *,
        trace: StepRecorder | None = None,
        functions: FunctionRegistry | None = None,
        safety: SafetyPolicy | None = None,
        on_step: Callable[[dict[str, Any]], None] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.provider = provider
        self.env = env
        self.settings = settings
        self.trace = trace
        # Not `functions or …`: an empty registry is falsy, and the runner fills it in later.
        self.functions = functions if functions is not None else FunctionRegistry()
        self.safety = safety or SafetyPolicy.from_settings(settings)
        self.mcp_approval = McpApprovalPolicy(settings.mcp_approval)
        self.on_step = on_step
        self.on_event = on_event
        self.result = RunResult(status="running")
        self.last_screen: str | None = None  # run-relative path of the newest screenshot

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
        png, rel = await self._screenshot()
        self.last_screen = rel
        if self.trace:  # the size the model sees: --display, or the part of it the screen's shape fills
            self.trace.update(initial_screen=rel, display=str(self.env.display), **self.provider.public())
        # The started environment's display: a screen of another shape changes it.
        screen = Screen(display=self.env.display, environment=s.env, notch_px=self.env.wheel_notch_px())
        self.provider.start(task, png, screen, self.functions.specs())
        while True:
            if result.steps >= s.max_steps:
                result.status, result.reason = "max_steps", f"stopped after {s.max_steps} steps"
                return
            step: dict[str, Any] = {"step": result.steps + 1, "screen_before": self.last_screen}
            t0 = time.monotonic()
            step["elapsed_s"] = round(self.trace.elapsed(), 3) if self.trace else None
            turn = await self.provider.next_turn(self.on_event)
            result.steps += 1  # a step is a model turn: counted once the model has answered
            step["model_ms"] = round((time.monotonic() - t0) * 1000)
            result.usage.add(turn.usage)
            step["response_id"] = turn.id
            step["usage"] = turn.usage.as_dict() if turn.usage else None
            try:
                await self.env.begin_step(result.steps, turn.title())
                answers = await self._handle_turn(turn, step)
            finally:  # a step that ends the run (safety denial, bad output) is recorded too
                if self.trace:  # run.json is rewritten at the end; readers count steps.jsonl
                    self.trace.append_step(step)
                if self.on_step:
                    self.on_step(step)
            if result.status != "running":
                return
            self.provider.answer(answers)
            if s.token_budget and result.usage.total_tokens >= s.token_budget:
                result.status = "failed"
                result.reason = f"token budget of {s.token_budget} exhausted ({result.usage.total_tokens} used)"
                return

    async def _handle_turn(self, turn: Turn, step: dict[str, Any]) -> list[CallAnswer]:
        """Execute what the turn asks for; return one answer per call, in order."""
        result = self.result
        step["items"] = turn.items
        step["reasoning"] = turn.reasoning
        step["text"] = turn.text
        if turn.refusal:
            result.status, result.reason, result.final_text = "failed", "refused", turn.refusal
            step["final"] = True
            return []
        if turn.failure and not turn.calls:
            result.status, result.reason = "failed", turn.failure
            step["final"] = True
            return []
        if not turn.calls:
            result.status, result.final_text = "completed", turn.text
            result.final_url = await self.env.current_url()
            step["final"] = True
            return []

        step["actions"], step["functions"], step["safety_checks"] = [], [], []
        # Every call is validated and every safety check of the turn decided before the first
        # action runs: a bad action or a denied check must not leave half a turn executed.
        computer = [c for c in turn.calls if isinstance(c, ComputerCall)]
        for call in computer:
            self._validate(call)
            if call.problem and not self.provider.answers_errors:
                raise ModelOutputError(call.problem)
        acknowledged = await self._decide_safety([c for c in computer if not c.problem], step)
        answers: list[CallAnswer] = []
        failed = False
        for call in turn.calls:
            if failed:  # an earlier call of the turn failed: the model is told this one did not run
                answers.append(CallAnswer(call=call, executed=False))
            elif isinstance(call, ApprovalRequest):
                answers.append(await self._approve(call, step))
            elif isinstance(call, FunctionCall):
                answers.append(await self._run_function(call, step))
            else:
                answers.append(await self._run_computer_call(call, acknowledged, step))
            failed = answers[-1].error is not None
        return answers

    def _validate(self, call: ComputerCall) -> None:
        """Coordinates outside the display are bad output, never clamped: the call gets a problem."""
        if call.problem:
            return
        for n, action in enumerate(call.actions):
            try:
                check_in_bounds(action, self.env.display, where=f"{call.name} {call.id} action {n + 1}")
            except ModelOutputError as exc:
                call.problem = str(exc)
                return

    async def _decide_safety(self, calls: list[ComputerCall], step: dict[str, Any]) -> set[str]:
        """The ids of the acknowledged checks of all ``calls``; raises ``SafetyDenied``."""
        pending = [c for call in calls for c in call.safety_checks]
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

    async def _approve(self, call: ApprovalRequest, step: dict[str, Any]) -> CallAnswer:
        if self.trace is not None:  # what the prompt shows is masked like everything cua writes
            call = ApprovalRequest(call.id, call.server, call.name, self.trace.redactor.text(call.arguments))
        approved, how = await self.mcp_approval.decide(call)
        step.setdefault("mcp_approvals", []).append(
            {"server": call.server, "name": call.name, "arguments": call.arguments,
             "decision": "approved" if approved else "refused", "how": how})
        return CallAnswer(call=call, approved=approved)

    async def _run_function(self, call: FunctionCall, step: dict[str, Any]) -> CallAnswer:
        t0 = time.monotonic()
        try:
            output = await self.functions.call(call.name, call.arguments, raw=call.custom)
        except ModelOutputError as exc:  # an unknown function, arguments that are not JSON
            if not self.provider.answers_errors:
                raise
            step["functions"].append({"name": call.name, "arguments": call.arguments, "error": str(exc)})
            return CallAnswer(call=call, error=str(exc))
        step["functions"].append(
            {"name": call.name, "arguments": call.arguments, "output": output[:2000],
             "ms": round((time.monotonic() - t0) * 1000)}
        )
        await self.env.settle()
        return CallAnswer(call=call, output=output)

    async def _run_computer_call(self, call: ComputerCall, acknowledged: set[str],
                                 step: dict[str, Any]) -> CallAnswer:
        answer = CallAnswer(call=call, acknowledged=[c for c in call.safety_checks if c.id in acknowledged],
                            error=call.problem)
        if call.problem:  # nothing of it ran: kept apart from the actions a replay plays back
            step.setdefault("errors", []).append({"call": call.id, "error": call.problem})
        for action in call.actions if not call.problem else []:
            record: dict[str, Any] = {"action": action_to_wire(action)}
            step["actions"].append(record)
            try:
                output = await self._execute(action, record)
            except (ModelOutputError, EnvironmentError_) as exc:
                if not self.provider.answers_errors:
                    raise
                record["error"] = answer.error = str(exc)  # told to the model; the run goes on
                break
            if output is not None:
                answer.outputs.append(output)
        if call.screenshot or answer.error:  # a failed call shows the model where things stand
            t0 = time.monotonic()
            await self.env.settle()
            answer.screenshot, rel = await self._screenshot()
            step["settle_ms"] = round((time.monotonic() - t0) * 1000)
            step["screen_after"] = self.last_screen = rel
            answer.url = step["url"] = await self.env.current_url()
        return answer

    async def _execute(self, action: Action, record: dict[str, Any]) -> ActionOutput | None:
        points = action.points()
        if points and self.trace:
            record["anchor"] = await self._anchor(*points[0])
        t0 = time.monotonic()
        try:
            output = await self.env.execute(action)
        finally:
            record["ms"] = round((time.monotonic() - t0) * 1000)
        if output is not None and output.point is not None:
            record["point"] = list(output.point)
        if output is not None and output.image is not None and self.trace:
            record["image"] = self.trace.save_screenshot(output.image)
        return output

    async def _anchor(self, x: int, y: int) -> dict[str, Any] | None:
        return await capture_anchor(self.env, x, y)
