"""Why the Anthropic stand-in refuses a request: each rule's status, error type and message.

Every rule names where its message comes from (``Reason.source``):

* ``documented``: quoted in Anthropic's docs or REFERENCE.md §10.
* ``observed``: the wording the service is publicly reported to answer with (its validation errors
  such as ``max_tokens: Field required``); the service may phrase it differently.
* ``ours``: the stand-in's own sentence, for a rule the service words in a way nobody wrote down,
  or that the service does not have (the script running out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Source = Literal["documented", "observed", "ours"]


@dataclass(frozen=True)
class Reason:
    status: int
    type: str  # the error's ``type``: invalid_request_error, authentication_error, …
    template: str
    source: Source = "ours"

    def message(self, **fields: Any) -> str:
        return self.template.format(**fields)


_INVALID = "invalid_request_error"

REASONS: dict[str, Reason] = {
    # HTTP level
    "not_found": Reason(404, "not_found_error", "Not found: {method} {path}", "observed"),
    "invalid_json": Reason(400, _INVALID, "The request body is not valid JSON.", "observed"),
    "missing_api_key": Reason(401, "authentication_error", "x-api-key header is required", "observed"),
    "invalid_api_key": Reason(401, "authentication_error", "invalid x-api-key", "observed"),
    "missing_version": Reason(400, _INVALID, "anthropic-version: header is required", "observed"),
    "invalid_version": Reason(400, _INVALID, "anthropic-version: invalid version '{value}'", "observed"),
    # the body's shape
    "missing_field": Reason(400, _INVALID, "{param}: Field required", "observed"),
    "extra_field": Reason(400, _INVALID, "{param}: Extra inputs are not permitted", "observed"),
    "invalid_type": Reason(400, _INVALID, "{param}: Input should be {expected}", "observed"),
    "invalid_value": Reason(400, _INVALID, "{param}: {problem}", "observed"),
    "first_message_role": Reason(400, _INVALID, "messages: first message must use the \"user\" role",
                                 "observed"),
    # tool use
    "tool_use_without_result": Reason(400, _INVALID,
        "messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately after: "
        "{ids}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
        "documented"),
    "unexpected_tool_result": Reason(400, _INVALID,
        "messages.{index}.content.{block}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. "
        "Each `tool_result` block must have a corresponding `tool_use` block in the previous message.",
        "observed"),
    "tool_result_not_first": Reason(400, _INVALID,
        "messages.{index}: `tool_result` blocks must come first in the user message that answers "
        "`tool_use` blocks, before any other content.", "ours"),
    "unknown_tool_type": Reason(400, _INVALID,
        "tools.{index}: Input tag '{type}' found using 'type' does not match any of the expected tags",
        "observed"),
    "beta_required": Reason(400, _INVALID,
        "tools.{index}: '{type}' requires the beta header 'anthropic-beta: {beta}'", "ours"),
    "tool_not_supported": Reason(400, _INVALID,
        "tools.{index}: '{type}' is not supported on {model}; use computer_toolset_20260801", "documented"),
    "unknown_config": Reason(400, _INVALID, "tools.{index}.configs.{key}: Extra inputs are not permitted",
                             "documented"),
    "too_many_cache_controls": Reason(400, _INVALID,
        "A maximum of 4 blocks with cache_control may be provided. Found {count}.", "observed"),
    # images
    "bad_image": Reason(400, _INVALID, "{param}: {problem}", "observed"),
    "image_too_large": Reason(400, _INVALID,
        "{param}: image dimensions exceed max allowed size: {limit} pixels", "observed"),
    "image_too_many_bytes": Reason(400, _INVALID, "{param}: image exceeds 5 MB maximum: {size} bytes",
                                   "observed"),
    # thinking
    "thinking_budget": Reason(400, _INVALID,
        "`max_tokens` must be greater than `thinking.budget_tokens`", "observed"),
    "thinking_modified": Reason(400, _INVALID,
        "messages.{index}.content.{block}: `thinking` or `redacted_thinking` blocks in the latest "
        "assistant message cannot be modified. These blocks must remain as they were in the original "
        "response.", "observed"),
    "invalid_signature": Reason(400, _INVALID,
        "messages.{index}.content.{block}: Invalid `signature` in `thinking` block", "observed"),
    # the stand-in itself
    "script_exhausted": Reason(400, _INVALID,
        "The stand-in's script has no turn left ({count} scripted); the client asked for one more.",
        "ours"),
    "script_error": Reason(500, "api_error", "The stand-in's script failed: {error}", "ours"),
    # faults
    "rate_limit": Reason(429, "rate_limit_error",
        "This request would exceed your organization's rate limit. Please try again later.", "observed"),
    "overloaded": Reason(529, "overloaded_error", "Overloaded", "documented"),
    "api_error": Reason(500, "api_error", "Internal server error", "observed"),
}


class Rejected(Exception):
    """A request refused by rule ``rule`` of ``REASONS``."""

    def __init__(self, rule: str, **fields: Any) -> None:
        self.rule = rule
        self.reason = REASONS[rule]
        self.message = self.reason.message(**fields)
        super().__init__(self.message)
