"""The Gemini API's wire format as data: the computer-use function sets, the tool entry, and the
reply (``GenerateContentResponse``) the adapter reads.

The reply models read camelCase (what the REST API sends) and snake_case (what some proxies send)
alike and keep every unknown field: the model's content goes back into the history verbatim, so the
adapter keeps the raw dict beside the parsed view.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

ActionSet = Literal["legacy", "current"]

# gemini-2.5-computer-use-preview-10-2025 and the gemini-3 previews (REFERENCE §11).
LEGACY_FUNCTIONS = (
    "open_web_browser", "click_at", "hover_at", "type_text_at", "scroll_document", "scroll_at",
    "wait_5_seconds", "go_back", "go_forward", "search", "navigate", "key_combination", "drag_and_drop",
)
# gemini-3.5-flash and later.
CURRENT_FUNCTIONS = (
    "click", "double_click", "triple_click", "middle_click", "right_click", "mouse_down", "mouse_up",
    "move", "type", "scroll", "wait", "press_key", "key_down", "key_up", "hotkey", "take_screenshot",
    "drag_and_drop", "navigate", "go_back", "go_forward",
)
PREDEFINED_FUNCTIONS = frozenset(LEGACY_FUNCTIONS + CURRENT_FUNCTIONS)
# What only a browser can do: excluded on ENVIRONMENT_DESKTOP, where cua's desktops cannot run them.
BROWSER_ONLY_FUNCTIONS = ("open_web_browser", "search", "navigate", "go_back", "go_forward")

_VERSION = re.compile(r"gemini-(\d+)(?:\.(\d+))?")


def model_version(model: str) -> tuple[int, int] | None:
    """``gemini-3.5-flash`` → (3, 5); None for a name without a Gemini version (a proxy alias)."""
    match = _VERSION.search(model.lower())
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def action_set_for(model: str) -> ActionSet:
    """The function set ``model`` calls: legacy before Gemini 3.5, the current one from 3.5 on
    (and for names without a version, such as ``scripted`` or a proxy alias: the newest)."""
    version = model_version(model)
    return "legacy" if version is not None and version < (3, 5) else "current"


def signs_thoughts(model: str) -> bool:
    """Gemini 3 and later put a ``thoughtSignature`` on function calls and require it back."""
    version = model_version(model)
    return version is None or version >= (3, 0)


def environment_for(env: str) -> str:
    return "ENVIRONMENT_BROWSER" if env == "browser" else "ENVIRONMENT_DESKTOP"


def excluded_functions(env: str, excluded: list[str], action_set: ActionSet) -> list[str]:
    """The user's exclusions, plus (on a desktop) the browser-only functions of the model's set."""
    names = list(dict.fromkeys(excluded))
    if env != "browser":
        offered = LEGACY_FUNCTIONS if action_set == "legacy" else CURRENT_FUNCTIONS
        names += [n for n in BROWSER_ONLY_FUNCTIONS if n in offered and n not in names]
    return names


def computer_use_tool(env: str, excluded: list[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"environment": environment_for(env)}
    if excluded:
        entry["excludedPredefinedFunctions"] = excluded
    return {"computerUse": entry}


# --- the reply --------------------------------------------------------------------------------


def _field(camel: str, snake: str, default: Any = None) -> Any:
    return Field(default, validation_alias=AliasChoices(camel, snake))


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class FunctionCallPart(_Wire):
    name: str = ""
    args: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None


class Part(_Wire):
    text: str | None = None
    thought: bool = False
    thought_signature: str | None = _field("thoughtSignature", "thought_signature")
    function_call: FunctionCallPart | None = _field("functionCall", "function_call")


class Content(_Wire):
    role: str | None = None
    parts: list[Part] = Field(default_factory=list)


class Candidate(_Wire):
    content: Content | None = None
    finish_reason: str | None = _field("finishReason", "finish_reason")
    finish_message: str | None = _field("finishMessage", "finish_message")


class UsageMetadata(_Wire):
    prompt_token_count: int = _field("promptTokenCount", "prompt_token_count", 0)
    candidates_token_count: int = _field("candidatesTokenCount", "candidates_token_count", 0)
    thoughts_token_count: int = _field("thoughtsTokenCount", "thoughts_token_count", 0)
    cached_content_token_count: int = _field("cachedContentTokenCount", "cached_content_token_count", 0)
    tool_use_prompt_token_count: int = _field("toolUsePromptTokenCount", "tool_use_prompt_token_count", 0)
    total_token_count: int = _field("totalTokenCount", "total_token_count", 0)


class PromptFeedback(_Wire):
    block_reason: str | None = _field("blockReason", "block_reason")
    block_reason_message: str | None = _field("blockReasonMessage", "block_reason_message")


class GenerateContentResponse(_Wire):
    candidates: list[Candidate] = Field(default_factory=list)
    usage_metadata: UsageMetadata | None = _field("usageMetadata", "usage_metadata")
    prompt_feedback: PromptFeedback | None = _field("promptFeedback", "prompt_feedback")
    response_id: str | None = _field("responseId", "response_id")
    model_version: str | None = _field("modelVersion", "model_version")


# Finish reasons that end a reply normally; every other one is a failure the run reports.
NORMAL_FINISH = frozenset({"STOP", "FINISH_REASON_UNSPECIFIED"})
FINISH_EXPLAINED = {
    "MAX_TOKENS": "the reply hit the output token limit (raise --max-tokens)",
    "SAFETY": "the reply was stopped by Gemini's safety filters",
    "RECITATION": "the reply was stopped for reciting training data",
    "MALFORMED_FUNCTION_CALL": "the model produced a malformed function call",
    "UNEXPECTED_TOOL_CALL": "the model called a tool that was not offered",
    "TOO_MANY_TOOL_CALLS": "the model made too many tool calls in one reply",
    "MISSING_THOUGHT_SIGNATURE": "a replayed function call lacked its thought signature",
    "BLOCKLIST": "the reply contained a blocked term",
    "PROHIBITED_CONTENT": "the reply was stopped for prohibited content",
    "SPII": "the reply was stopped for sensitive personal information",
}


__all__ = [
    "ActionSet", "BROWSER_ONLY_FUNCTIONS", "CURRENT_FUNCTIONS", "Candidate", "Content", "FINISH_EXPLAINED",
    "FunctionCallPart", "GenerateContentResponse", "LEGACY_FUNCTIONS", "NORMAL_FINISH", "PREDEFINED_FUNCTIONS",
    "Part", "PromptFeedback", "UsageMetadata", "action_set_for", "computer_use_tool", "environment_for",
    "excluded_functions", "model_version", "signs_thoughts",
]
