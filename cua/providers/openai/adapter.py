"""The Responses API as a provider: requests, conversation state, and items ↔ typed turns.

Both computer tools: the preview ``computer_use_preview`` (one action per call, ``truncation:
auto``) and the GA ``computer`` (a batch of actions per call). Conversation state is chained
(``previous_response_id``) or, with ``--stateless``, the whole history replayed with
``store: false``. Every computer call is answered with a screenshot: the output has no text
channel, so a failed action ends the run.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

from ...actions import OPENAI_ACTION_TYPES, parse_action
from ...errors import ModelOutputError
from ..base import (
    ApprovalRequest,
    CallAnswer,
    ComputerCall,
    EventHandler,
    FunctionCall,
    FunctionSpec,
    Provider,
    SafetyCheck,
    Screen,
    Turn,
    Usage,
)
from .client import ResponsesClient
from .models import (
    ComputerCall as WireComputerCall,
    ComputerCallOutput,
    ComputerScreenshot,
    CreateRequest,
    CustomToolCall,
    CustomToolCallOutput,
    McpApprovalRequest,
    McpApprovalResponse,
    FunctionCall as WireFunctionCall,
    FunctionCallOutput,
    Message,
    Reasoning,
    Response,
    computer_tool,
)

if TYPE_CHECKING:
    from ...config import RunSettings

OMITTED_NOTE = "earlier screenshot omitted to bound the request size"


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def placeholder_png(width: int, height: int) -> bytes:
    """A flat grey frame with a short note: a valid screenshot that costs a few hundred bytes."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (width, height), 128)
    ImageDraw.Draw(img).text((10, 10), OMITTED_NOTE, fill=255)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


class Conversation:
    """Builds each request. Chained (``previous_response_id``) or stateless (full replay)."""

    def __init__(self, settings: "RunSettings", tools: list[dict[str, Any]], display: Any) -> None:
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
            **s.responses_parameters(),
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
            self._placeholder = data_url(placeholder_png(size.width, size.height))
        for index, _ in excess:
            item = dict(self.history[index])
            item["output"] = {"type": "computer_screenshot", "image_url": self._placeholder}
            self.history[index] = item
        del self._screenshot_slots[: len(excess)]


# Progress events of the Responses stream, in the loop's terms.
_PROGRESS = {
    "response.created": "model.waiting",
    "response.in_progress": "model.waiting",
    "response.reasoning_summary_text.delta": "model.thinking",
    "response.output_text.delta": "model.text",
}


class OpenAIProvider(Provider):
    name = "openai"
    answers_errors = False

    def __init__(self, settings: "RunSettings", client: Any) -> None:
        self.settings = settings
        self.client = client  # a ResponsesClient, or anything with its ``create``
        self.conversation: Conversation | None = None
        self._pending: list[dict[str, Any]] = []
        self._wire_calls: dict[str, WireComputerCall] = {}  # call_id → the call, for its checks

    def start(self, task: str, screenshot: bytes, screen: Screen, functions: list[FunctionSpec]) -> None:
        s = self.settings
        tools = [computer_tool(s.tool_format, screen.display.width, screen.display.height, screen.environment)]
        tools += [{"type": "custom", "name": f.name, "description": f.description} if f.custom else
                  {"type": "function", "name": f.name, "description": f.description,
                   "parameters": f.parameters, "strict": False} for f in functions]
        tools += s.mcp_tools()
        self.conversation = Conversation(s, tools, screen.display)
        self._pending = [{
            "role": "user",
            "content": [
                {"type": "input_text", "text": task},
                {"type": "input_image", "image_url": data_url(screenshot)},
            ],
        }]

    async def next_turn(self, on_event: EventHandler | None = None) -> Turn:
        assert self.conversation is not None, "start() first"
        request = self.conversation.request(self._pending)
        response = await self.client.create(request, on_event=_progress(on_event))
        self.conversation.record(response)
        self._pending = []
        return self._turn(response)

    def answer(self, answers: list[CallAnswer]) -> None:
        items: list[dict[str, Any]] = []
        for answer in answers:
            call = answer.call
            if isinstance(call, ApprovalRequest):
                items.append(McpApprovalResponse(approval_request_id=call.id, approve=bool(answer.approved)).wire())
                continue
            if isinstance(call, FunctionCall):
                kind = CustomToolCallOutput if call.custom else FunctionCallOutput
                items.append(kind(call_id=call.id, output=answer.output or answer.error or "").wire())
                continue
            wire = self._wire_calls.get(call.id)
            acknowledged = {check.id for check in answer.acknowledged}
            if answer.screenshot is None:  # the loop always takes one for OpenAI (see ComputerCall)
                raise ModelOutputError(f"computer_call {call.id}: no screenshot to answer it with")
            items.append(ComputerCallOutput(
                call_id=call.id,
                output=ComputerScreenshot(image_url=data_url(answer.screenshot)),
                acknowledged_safety_checks=[c for c in (wire.pending_safety_checks if wire else [])
                                            if c.id in acknowledged],
                current_url=answer.url,
            ).wire())
        self._pending = items
        self._wire_calls.clear()

    def public(self) -> dict[str, Any]:
        return {"provider": self.name, "tool_format": self.settings.tool_format}

    async def aclose(self) -> None:
        if hasattr(self.client, "aclose"):
            await self.client.aclose()

    # --- Response → Turn ---------------------------------------------------------------------

    def _turn(self, response: Response) -> Turn:
        items = response.output
        messages = [i for i in items if isinstance(i, Message)]
        calls: list[ComputerCall | FunctionCall | ApprovalRequest] = []
        for item in items:
            if isinstance(item, WireComputerCall):
                self._wire_calls[item.call_id] = item
                calls.append(_computer_call(item))
            elif isinstance(item, WireFunctionCall):
                calls.append(FunctionCall(id=item.call_id, name=item.name, arguments=item.arguments))
            elif isinstance(item, CustomToolCall):
                calls.append(FunctionCall(id=item.call_id, name=item.name, arguments=item.input, custom=True))
            elif isinstance(item, McpApprovalRequest):
                calls.append(ApprovalRequest(id=item.id, server=item.server_label, name=item.name,
                                             arguments=item.arguments))
        failure = None
        if response.status in {"failed", "incomplete"}:
            failure = f"response {response.status}: {response.error or response.incomplete_details or {}}"
        return Turn(
            id=response.id,
            calls=calls,
            text="\n".join(m.text() for m in messages if m.text()),
            reasoning="\n".join(i.summary_text() for i in items if isinstance(i, Reasoning) and i.summary_text()),
            refusal=next((m.refusal() for m in messages if m.refusal()), None),
            failure=failure,
            usage=_usage(response),
            items=[_strip_item(i.wire()) for i in items],
        )


def _computer_call(item: WireComputerCall) -> ComputerCall:
    where = f"computer_call {item.call_id}"
    checks = [SafetyCheck(id=c.id, code=c.code, message=c.message) for c in item.pending_safety_checks]
    call = ComputerCall(id=item.call_id, actions=[], safety_checks=checks, name="computer_call")
    try:
        call.actions = [parse_action(raw, where=f"{where} action {n + 1}", known=OPENAI_ACTION_TYPES)
                        for n, raw in enumerate(item.raw_actions())]
        if not call.actions:
            raise ModelOutputError(f"{where}: no action given")
    except ModelOutputError as exc:
        call.actions, call.problem = [], str(exc)
    return call


def _usage(response: Response) -> Usage | None:
    usage = response.usage
    if usage is None:
        return None
    details = (usage.model_extra or {}).get("input_tokens_details") or {}
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cache_read_tokens=int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0,
        total_tokens=usage.total_tokens,
    )


def _progress(on_event: EventHandler | None) -> EventHandler | None:
    if on_event is None:
        return None

    def forward(event: dict[str, Any]) -> None:
        kind = _PROGRESS.get(str(event.get("type", "")))
        if kind is not None:
            on_event({"type": kind, "delta": event.get("delta")} if kind != "model.waiting" else {"type": kind})

    return forward


def _strip_item(item: dict[str, Any]) -> dict[str, Any]:
    """Items as recorded: no encrypted reasoning blobs (large and useless to a reader)."""
    if "encrypted_content" in item:
        item = {**item, "encrypted_content": "…"}
    return item


__all__ = ["Conversation", "OMITTED_NOTE", "OpenAIProvider", "ResponsesClient", "data_url"]
