"""Wire models of the Responses API, as far as the computer-use loop needs them.

Every model keeps unknown fields (``extra="allow"``) and an output item of an unknown type is kept
as ``UnknownItem``: the service adds both over time, and stateless runs must replay items exactly as
they came. Dump items with ``item.wire()`` to send them back.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

ToolFormat = Literal["preview", "computer"]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        """This object as it goes over the wire: fields as received, nothing invented."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


class SafetyCheck(WireModel):
    id: str
    code: str | None = None
    message: str | None = None


class ComputerCall(WireModel):
    type: Literal["computer_call"] = "computer_call"
    id: str | None = None
    call_id: str
    status: str | None = None
    action: dict[str, Any] | None = None
    actions: list[dict[str, Any]] | None = None
    pending_safety_checks: list[SafetyCheck] = Field(default_factory=list)

    def raw_actions(self) -> list[dict[str, Any]]:
        """Preview sends one ``action``; GA sends a batch in ``actions``."""
        if self.actions is not None:
            return list(self.actions)
        return [self.action] if self.action is not None else []


class SummaryText(WireModel):
    type: str = "summary_text"
    text: str = ""


class Reasoning(WireModel):
    type: Literal["reasoning"] = "reasoning"
    id: str
    summary: list[SummaryText] = Field(default_factory=list)
    encrypted_content: str | None = None

    def summary_text(self) -> str:
        return "\n".join(part.text for part in self.summary if part.text)


class Message(WireModel):
    type: Literal["message"] = "message"
    id: str | None = None
    role: str = "assistant"
    content: list[dict[str, Any]] = Field(default_factory=list)
    phase: str | None = None  # GA: "commentary" beside a call, "final_answer" at the end
    status: str | None = None

    def text(self) -> str:
        return "".join(_str_field(part, "text") for part in self.content if part.get("type") == "output_text")

    def refusal(self) -> str | None:
        parts = [_str_field(p, "refusal") for p in self.content if p.get("type") == "refusal"]
        return "".join(parts) if parts else None


def _str_field(part: dict[str, Any], name: str) -> str:
    """A text field of a content part; a model that sends ``null`` or a number there said nothing."""
    value = part.get(name)
    return value if isinstance(value, str) else ""


class FunctionCall(WireModel):
    type: Literal["function_call"] = "function_call"
    id: str | None = None
    call_id: str
    name: str
    arguments: str = "{}"
    status: str | None = None


class CustomToolCall(WireModel):
    """A call of a custom (free-form) tool: ``input`` is the model's text, no JSON."""

    type: Literal["custom_tool_call"] = "custom_tool_call"
    id: str | None = None
    call_id: str
    name: str
    input: str = ""


class McpApprovalRequest(WireModel):
    """The service asks before it calls a remote MCP server's tool (answered with
    ``mcp_approval_response``)."""

    type: Literal["mcp_approval_request"] = "mcp_approval_request"
    id: str
    server_label: str = ""
    name: str = ""
    arguments: str = "{}"


class UnknownItem(WireModel):
    type: str


def _item_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    known = isinstance(kind, str) and kind in {"computer_call", "reasoning", "message", "function_call",
                                               "custom_tool_call", "mcp_approval_request"}
    return kind if known else "unknown"  # a ``type`` that is no string (a list…) is not a known item


OutputItem = Annotated[
    Union[
        Annotated[ComputerCall, Tag("computer_call")],
        Annotated[Reasoning, Tag("reasoning")],
        Annotated[Message, Tag("message")],
        Annotated[FunctionCall, Tag("function_call")],
        Annotated[CustomToolCall, Tag("custom_tool_call")],
        Annotated[McpApprovalRequest, Tag("mcp_approval_request")],
        Annotated[UnknownItem, Tag("unknown")],
    ],
    Discriminator(_item_tag),
]


class Usage(WireModel):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    output_tokens_details: dict[str, Any] | None = None

    @property
    def reasoning_tokens(self) -> int:
        return int((self.output_tokens_details or {}).get("reasoning_tokens", 0) or 0)


class Response(WireModel):
    id: str
    object: str = "response"
    status: str | None = None
    model: str | None = None
    output: list[OutputItem] = Field(default_factory=list)
    usage: Usage | None = None
    error: dict[str, Any] | None = None
    incomplete_details: dict[str, Any] | None = None

    def output_text(self) -> str:
        return "\n".join(i.text() for i in self.output if isinstance(i, Message) and i.text())


# --- Input items we send ------------------------------------------------------------------------


class ComputerScreenshot(WireModel):
    type: Literal["computer_screenshot"] = "computer_screenshot"
    image_url: str


class ComputerCallOutput(WireModel):
    type: Literal["computer_call_output"] = "computer_call_output"
    call_id: str
    output: ComputerScreenshot
    acknowledged_safety_checks: list[SafetyCheck] = Field(default_factory=list)
    current_url: str | None = None

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class FunctionCallOutput(WireModel):
    type: Literal["function_call_output"] = "function_call_output"
    call_id: str
    output: str

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class McpApprovalResponse(WireModel):
    type: Literal["mcp_approval_response"] = "mcp_approval_response"
    approval_request_id: str
    approve: bool

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class CustomToolCallOutput(WireModel):
    type: Literal["custom_tool_call_output"] = "custom_tool_call_output"
    call_id: str
    output: str

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# --- Tools and requests -------------------------------------------------------------------------


def tool_format_for(model: str) -> ToolFormat:
    """``computer-use-preview*`` models take the preview tool; every other model the GA one."""
    return "preview" if model.startswith("computer-use-preview") else "computer"


def computer_tool(fmt: ToolFormat, width: int, height: int, environment: str) -> dict[str, Any]:
    if fmt == "preview":
        return {
            "type": "computer_use_preview",
            "display_width": width,
            "display_height": height,
            "environment": environment,
        }
    return {"type": "computer"}


class CreateRequest(WireModel):
    """Body of ``POST /responses``. ``None`` fields are left out of the request."""

    model: str
    input: list[dict[str, Any]] | str
    tools: list[dict[str, Any]] = Field(default_factory=list)
    instructions: str | None = None
    previous_response_id: str | None = None
    truncation: str | None = None
    store: bool | None = None
    include: list[str] | None = None
    reasoning: dict[str, Any] | None = None
    stream: bool | None = None
    text: dict[str, Any] | None = None
    max_output_tokens: int | None = None
    parallel_tool_calls: bool | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None
    prompt: dict[str, Any] | None = None

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
