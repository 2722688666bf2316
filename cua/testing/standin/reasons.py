"""Why the stand-in refuses a request: each rule's status, error type, code and message.

Rules are data so that tests can assert the exact answer. Every rule says where its message comes
from (``Reason.source``), because only some of the service's messages are documented:

* ``documented``: the service's message as OpenAI's guides and REFERENCE.md §3/§9 quote it.
* ``observed``: the wording the service is publicly reported to answer with (its validation
  errors: "Unknown parameter: …", "Invalid value: …", "… decimal above maximum value …"). Not
  documented; the service may phrase it differently or list other values.
* ``ours``: the stand-in's own sentence, for rules the service words in a way nobody wrote down
  (or that the service does not have at all, such as the script running out).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

Source = Literal["documented", "observed", "ours"]


@dataclass(frozen=True)
class Reason:
    """One rejection rule: the HTTP status, the error ``type``/``code`` and the message template."""

    status: int
    type: str
    code: str | None
    template: str
    source: Source = "ours"

    def message(self, **fields: Any) -> str:
        return self.template.format(**fields)


_INVALID = "invalid_request_error"

REASONS: dict[str, Reason] = {
    # HTTP level
    "invalid_json": Reason(400, _INVALID, None,
        "We could not parse the JSON body of your request: the body must be a JSON object "
        "sent with Content-Type: application/json."),
    "invalid_url": Reason(404, _INVALID, None, "Invalid URL ({method} {path})", "observed"),
    "missing_api_key": Reason(401, _INVALID, None,
        "You didn't provide an API key. Send it in an Authorization header using Bearer auth "
        "(Authorization: Bearer YOUR_KEY) or in an api-key header."),
    "invalid_api_key": Reason(401, _INVALID, "invalid_api_key",
        "Incorrect API key provided: {masked}. Check the key this client was configured with."),
    "response_not_found": Reason(404, _INVALID, None, "Response with id '{id}' not found.", "observed"),
    "cancel_not_background": Reason(400, _INVALID, None,
        "Only responses created with background=true can be cancelled."),
    # the request body: the service's validation family
    "unknown_parameter": Reason(400, _INVALID, "unknown_parameter", "Unknown parameter: '{param}'.", "observed"),
    "missing_parameter": Reason(400, _INVALID, "missing_required_parameter",
        "Missing required parameter: '{param}'.", "observed"),
    "invalid_type": Reason(400, _INVALID, "invalid_type",
        "Invalid type for '{param}': expected {expected}, but got {got} instead.", "observed"),
    "invalid_value": Reason(400, _INVALID, "invalid_value",
        "Invalid value: '{value}'. Supported values are: {supported}.", "observed"),
    "below_minimum": Reason(400, _INVALID, "integer_below_min_value",
        "Invalid '{param}': integer below minimum value. Expected a value >= {limit}, but got {value} "
        "instead.", "observed"),
    "above_maximum": Reason(400, _INVALID, "integer_above_max_value",
        "Invalid '{param}': integer above maximum value. Expected a value <= {limit}, but got {value} "
        "instead.", "observed"),
    "decimal_below_minimum": Reason(400, _INVALID, "decimal_below_min_value",
        "Invalid '{param}': decimal below minimum value. Expected a value >= {limit}, but got {value} "
        "instead.", "observed"),
    "decimal_above_maximum": Reason(400, _INVALID, "decimal_above_max_value",
        "Invalid '{param}': decimal above maximum value. Expected a value <= {limit}, but got {value} "
        "instead.", "observed"),
    "string_too_long": Reason(400, _INVALID, "string_above_max_length",
        "Invalid '{param}': string too long. Expected a string with maximum length {limit}, but got a "
        "string with length {length} instead.", "observed"),
    "string_pattern": Reason(400, _INVALID, "invalid_value",
        "Invalid '{param}': string does not match pattern. Expected a string that matches the pattern "
        "'{pattern}'.", "observed"),
    "too_many_properties": Reason(400, _INVALID, "object_above_max_properties",
        "Invalid '{param}': too many properties. Expected an object with at most {limit} properties, "
        "but got an object with {count} properties instead."),
    "stream_options_without_stream": Reason(400, _INVALID, "invalid_value",
        "'stream_options' is only allowed when 'stream' is true."),
    "conversation_and_previous": Reason(400, _INVALID, "invalid_value",
        "'conversation' and 'previous_response_id' cannot be used together."),
    # tools
    "tool_not_supported": Reason(400, _INVALID, None, "Tool '{tool}' is not supported with {model}.",
        "documented"),
    # google-deepmind/concordia#164: gpt-4o answered text.verbosity "low" so (param "verbosity").
    "verbosity_unsupported": Reason(400, _INVALID, "unsupported_value",
        "Unsupported value: 'verbosity' does not support '{value}' with this model. Supported values are: "
        "'medium'.", "observed"),
    "truncation_required": Reason(400, _INVALID, "invalid_value",
        "The computer_use_preview tool requires 'truncation' to be 'auto' (got '{value}')."),
    "computer_tool_required": Reason(400, _INVALID, None,
        "The input continues a computer-use conversation, so 'tools' must include the "
        "'{tool}' tool on every request."),
    "unplayable_item": Reason(400, _INVALID, "standin_unsupported",
        "The stand-in does not play input items of type '{value}' (the service takes them); use "
        "message, reasoning, computer_call(_output) and function_call(_output) items."),
    # conversation state
    "previous_response_not_found": Reason(400, _INVALID, "previous_response_not_found",
        "Previous response with id '{id}' not found.", "observed"),
    "no_computer_call_output": Reason(400, _INVALID, None,
        "No tool output found for computer call {call_id}.", "documented"),
    "no_function_call_output": Reason(400, _INVALID, None,
        "No tool output found for function call {call_id}.", "observed"),
    "unknown_computer_call": Reason(400, _INVALID, None,
        "No tool call found for computer call output with call_id {call_id}."),
    "no_custom_tool_call_output": Reason(400, _INVALID, None,
        "No tool output found for custom tool call {call_id}."),
    "unknown_custom_tool_call": Reason(400, _INVALID, None,
        "No tool call found for custom tool call output with call_id {call_id}."),
    "unknown_approval_request": Reason(400, _INVALID, None,
        "No MCP approval request found with id {id}: an mcp_approval_response answers one the model made."),
    "duplicate_approval_response": Reason(400, _INVALID, None,
        "MCP approval request {id} is already answered: each takes exactly one mcp_approval_response."),
    "unknown_function_call": Reason(400, _INVALID, None,
        "No tool call found for function call output with call_id {call_id}.", "observed"),
    "duplicate_tool_output": Reason(400, _INVALID, None,
        "Duplicate tool output for call_id {call_id}: each call takes exactly one output."),
    "unacknowledged_safety_check": Reason(400, _INVALID, None,
        "Computer tool has unacknowledged safety check for {ids}", "documented"),
    # screenshots and images
    "image_not_data_url": Reason(400, _INVALID, "invalid_image_url",
        "Invalid '{param}': expected a URL or a base64 data URL of a PNG, JPEG, WebP or GIF image "
        "('data:image/png;base64,...')."),
    "image_not_decodable": Reason(400, _INVALID, "invalid_image",
        "Invalid '{param}': the data URL does not decode to a valid {format} image."),
    "image_animated": Reason(400, _INVALID, "invalid_image",
        "Invalid '{param}': animated GIFs are not supported, send a single frame."),
    "screenshot_wrong_size": Reason(400, _INVALID, "invalid_image",
        "Invalid '{param}': the screenshot is {got} but the computer_use_preview tool declares a "
        "{want} display."),
    # replayed items
    "item_not_found": Reason(404, _INVALID, None,
        "Item with id '{id}' not found. Items are not persisted when 'store' is false: replay "
        "them exactly as they were issued (reasoning with its encrypted_content), or remove this "
        "item from your input."),
    "item_modified": Reason(400, _INVALID, "invalid_value",
        "Item '{id}' of type '{type}' does not match the item that was issued: '{field}' differs."),
    "duplicate_item": Reason(400, _INVALID, None,
        "Duplicate item found with id {id}. Remove duplicate items from your input and try again.",
        "observed"),
    "reasoning_without_following": Reason(400, _INVALID, None,
        "Item '{id}' of type 'reasoning' was provided without its required following item.", "documented"),
    "encrypted_content_missing": Reason(400, _INVALID, None,
        "Item '{id}' of type 'reasoning' was replayed without its 'encrypted_content': it comes "
        "from a response created with store=false, so the encrypted_content issued with it is required."),
    "encrypted_content_mismatch": Reason(400, _INVALID, None,
        "The encrypted content for item '{id}' could not be verified."),
    "history_incomplete": Reason(400, _INVALID, None,
        "Item '{id}' of type '{type}' (from response '{response}') is missing from the input: a "
        "stateless request must replay every earlier output item, in order."),
    "history_out_of_order": Reason(400, _INVALID, None,
        "Item '{id}' is out of place in the input: replay earlier output items once each, in the "
        "order they were issued (expected '{expected}' here)."),
    # the script and the stand-in itself
    "script_exhausted": Reason(400, _INVALID, "script_exhausted",
        "The stand-in has no scripted turn left: all {count} turns were answered and no "
        "final_message is configured."),
    "script_error": Reason(500, "server_error", "script_error", "The stand-in script failed: {error}"),
    "internal_error": Reason(500, "server_error", None, "The stand-in server failed: {error}"),
    # injected faults
    "rate_limit_exceeded": Reason(429, "tokens", "rate_limit_exceeded",
        "Rate limit reached for {model} on tokens per min (TPM): Limit 30000, Used 30000, "
        "Requested 1200. Please try again in {wait}.", "observed"),
    "insufficient_quota": Reason(429, "insufficient_quota", "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.", "observed"),
    "server_error": Reason(500, "server_error", None,
        "The server had an error while processing your request. Sorry about that!", "observed"),
    "overloaded": Reason(503, "server_error", None,
        "The server is overloaded or not ready yet.", "observed"),
}


class Rejected(Exception):
    """Raised by a rule: the request is answered with ``REASONS[rule]``."""

    def __init__(self, rule: str, *, param: str | None = None, **fields: Any) -> None:
        self.rule = rule
        self.reason = REASONS[rule]
        self.param = param
        self.message = self.reason.message(param=param, **fields)
        super().__init__(self.message)


def json_type(value: Any) -> str:
    """How the service names a JSON value's type in its messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def supported(values: Iterable[str]) -> str:
    """``'a', 'b', and 'c'``: the service's way of listing allowed values."""
    quoted = [f"'{v}'" for v in values]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 1 else quoted[0]
