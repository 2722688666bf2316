"""The request contract of ``POST /responses``: what one request must look like on its own.

Each rule names its source. "SDK" means openai-python's ``src/openai/types/responses/`` (3.51),
generated from the service's OpenAPI spec; where the service's behaviour is not documented, the
rule follows those types. Rules that depend on earlier requests (replayed items, calls and their
outputs) live in ``conversation.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ...providers.openai.models import ToolFormat, tool_format_for
from .images import Image, image_from_url
from .reasons import Rejected, json_type, supported

Check = Callable[[Any, str], None]  # raises Rejected for a bad value at the named param


# --- small checkers, each raising the service's validation errors -------------------------------


def _expect(value: Any, kinds: tuple[type, ...], expected: str, param: str) -> None:
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise Rejected("invalid_type", param=param, expected=expected, got=json_type(value))


def boolean() -> Check:
    return lambda value, param: _expect(value, (bool,), "a boolean", param)


def string(*, max_length: int | None = None, pattern: str | None = None) -> Check:
    def check(value: Any, param: str) -> None:
        _expect(value, (str,), "a string", param)
        if max_length is not None and len(value) > max_length:
            raise Rejected("string_too_long", param=param, limit=max_length, length=len(value))
        if pattern is not None and not re.search(pattern, value):
            raise Rejected("string_pattern", param=param, pattern=pattern)
    return check


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    def check(value: Any, param: str) -> None:
        _expect(value, (int,), "an integer", param)
        if minimum is not None and value < minimum:
            raise Rejected("below_minimum", param=param, limit=minimum, value=value)
        if maximum is not None and value > maximum:
            raise Rejected("above_maximum", param=param, limit=maximum, value=value)
    return check


def number(minimum: float, maximum: float) -> Check:
    def check(value: Any, param: str) -> None:
        _expect(value, (int, float), "a decimal", param)
        if value < minimum:
            raise Rejected("decimal_below_minimum", param=param, limit=_num(minimum), value=value)
        if value > maximum:
            raise Rejected("decimal_above_maximum", param=param, limit=_num(maximum), value=value)
    return check


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def enum(*values: str) -> Check:
    def check(value: Any, param: str) -> None:
        _expect(value, (str,), "a string", param)
        if value not in values:
            raise Rejected("invalid_value", param=param, value=value, supported=supported(values))
    return check


def array(of: Check | None = None) -> Check:
    def check(value: Any, param: str) -> None:
        _expect(value, (list,), "an array", param)
        for n, entry in enumerate(value if of is not None else ()):
            of(entry, f"{param}[{n}]")
    return check


def obj(fields: dict[str, Check] | None = None, *, required: Iterable[str] = ()) -> Check:
    """An object; with ``fields`` it is closed (other keys are unknown parameters)."""
    required = tuple(required)

    def check(value: Any, param: str) -> None:
        _expect(value, (dict,), "an object", param)
        for key in required:
            if value.get(key) is None:
                raise Rejected("missing_parameter", param=f"{param}.{key}")
        if fields is None:
            return
        for key, entry in value.items():
            if key not in fields:
                raise Rejected("unknown_parameter", param=f"{param}.{key}")
            if entry is not None:
                fields[key](entry, f"{param}.{key}")
    return check


def tagged(variants: dict[str, Check]) -> Check:
    """An object whose ``type`` picks the shape of the rest."""
    def check(value: Any, param: str) -> None:
        _expect(value, (dict,), "an object", param)
        kind = value.get("type")
        if kind is None:
            raise Rejected("missing_parameter", param=f"{param}.type")
        enum(*variants)(kind, f"{param}.type")
        variants[kind](value, param)
    return check


def either(text: Check, structured: Check, *, array_form: bool = False) -> Check:
    """A string or an object (an array with ``array_form``), each checked its own way."""
    kind, name = (list, "a string or an array") if array_form else (dict, "a string or an object")

    def check(value: Any, param: str) -> None:
        if isinstance(value, str):
            text(value, param)
        elif isinstance(value, kind):
            structured(value, param)
        else:
            _expect(value, (str, kind), name, param)
    return check


def metadata(value: Any, param: str) -> None:
    """At most 16 pairs, keys up to 64 characters, values strings up to 512 (SDK Metadata docs)."""
    _expect(value, (dict,), "an object", param)
    if len(value) > 16:
        raise Rejected("too_many_properties", param=param, limit=16, count=len(value))
    for key, entry in value.items():
        string(max_length=64)(key, param)
        string(max_length=512)(entry, f"{param}.{key}")


# --- the request parameters: ResponseCreateParamsBase, field by field ---------------------------

ENVIRONMENTS = ("browser", "mac", "windows", "ubuntu", "linux")  # computer_use_preview_tool_param.py
INCLUDABLE = (  # response_includable.py
    "file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
    "message.input_image.image_url", "computer_call_output.output.image_url",
    "code_interpreter_call.outputs", "reasoning.encrypted_content", "message.output_text.logprobs",
)
TOOL_TYPES = (  # tool_param.py (ToolParam), with each member's "type" literals
    "function", "file_search", "computer", "computer_use_preview", "web_search",
    "web_search_2025_08_26", "mcp", "code_interpreter", "programmatic_tool_calling",
    "image_generation", "local_shell", "shell", "custom", "namespace", "tool_search",
    "web_search_preview", "web_search_preview_2025_03_11", "apply_patch",
)
IMAGE_DETAIL = ("low", "high", "auto", "original")  # image_detail.py
FUNCTION_NAME = "^[a-zA-Z0-9_-]+$"  # function-calling guide: a-z, A-Z, 0-9, _ and -, at most 64

_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")  # shared/reasoning_effort.py
_SUMMARIES = ("auto", "concise", "detailed")  # shared_params/reasoning.py
_HOSTED_CHOICES = (  # tool_choice_types_param.py
    "file_search", "web_search_preview", "computer", "computer_use_preview", "computer_use",
    "web_search_preview_2025_03_11", "image_generation", "code_interpreter",
)
_bare = obj({"type": string()})
TOOL_CHOICE = either(
    enum("none", "auto", "required"),  # tool_choice_options.py
    tagged({
        "function": obj({"type": string(), "name": string()}, required=["name"]),  # tool_choice_function_param.py
        "custom": obj({"type": string(), "name": string()}, required=["name"]),  # tool_choice_custom_param.py
        "mcp": obj({"type": string(), "server_label": string(), "name": string()},  # tool_choice_mcp_param.py
                   required=["server_label"]),
        "allowed_tools": obj({"type": string(), "mode": enum("auto", "required"),  # tool_choice_allowed_param.py
                              "tools": array(obj())}, required=["mode", "tools"]),
        **{kind: _bare for kind in _HOSTED_CHOICES},
        "programmatic_tool_calling": _bare,  # response_create_params.py
        "apply_patch": _bare,  # tool_choice_apply_patch_param.py
        "shell": _bare,  # tool_choice_shell_param.py
    }),
)
_TEXT_FORMAT = tagged({  # response_format_text_config_param.py
    "text": obj({"type": string()}),
    "json_object": obj({"type": string()}),
    "json_schema": obj({"type": string(), "name": string(max_length=64, pattern=FUNCTION_NAME),
                        "schema": obj(), "description": string(), "strict": boolean()},
                       required=["name", "schema"]),
})

# Every parameter ResponseCreateParamsBase documents (response_create_params.py). ``input`` and
# ``tools`` are checked in depth below; the stand-in acts on model, input, tools, instructions,
# previous_response_id, truncation, store, include, stream and reasoning, and echoes the rest.
PARAMETERS: dict[str, Check] = {
    "model": string(),
    "input": either(string(), array(), array_form=True),
    "tools": array(),
    "instructions": string(),
    "previous_response_id": string(),
    "truncation": enum("auto", "disabled"),
    "store": boolean(),
    "include": array(enum(*INCLUDABLE)),
    "stream": boolean(),
    "stream_options": obj({"include_obfuscation": boolean()}),
    "reasoning": obj({  # shared_params/reasoning.py
        "effort": enum(*_EFFORTS), "summary": enum(*_SUMMARIES), "generate_summary": enum(*_SUMMARIES),
        "context": enum("auto", "current_turn", "all_turns"), "mode": string(),
    }),
    "temperature": number(0, 2),  # "between 0 and 2"
    "top_p": number(0, 1),  # a probability mass
    "max_output_tokens": integer(16),  # the service's floor: "Expected a value >= 16" (observed)
    "max_tool_calls": integer(),
    "top_logprobs": integer(0, 20),  # "An integer between 0 and 20"
    "parallel_tool_calls": boolean(),
    "tool_choice": TOOL_CHOICE,
    "text": obj({"format": _TEXT_FORMAT, "verbosity": enum("low", "medium", "high")}),
    "metadata": metadata,
    "user": string(),
    "safety_identifier": string(max_length=128),  # "a maximum length of 128 characters"
    "prompt_cache_key": string(),
    # 3.51 spells it in_memory, older SDKs in-memory: both are taken.
    "prompt_cache_retention": enum("in_memory", "in-memory", "24h"),
    "prompt_cache_options": obj({"mode": enum("implicit", "explicit"), "ttl": enum("30m", "12h"),
                                 "prewarm": boolean(), "comparison_response_id": string()}),
    "service_tier": enum("auto", "default", "flex", "scale", "priority", "fast", "ultrafast"),  # service_tier
    "background": boolean(),
    # response_conversation_param_param.py, response_prompt_param.py
    "conversation": either(string(), obj({"id": string()}, required=["id"])),
    "prompt": obj({"id": string(), "version": string(), "variables": obj()}, required=["id"]),
    "context_management": array(obj({"type": enum("compaction"), "compact_threshold": integer()},
                                    required=["type"])),  # "Currently only 'compaction' is supported"
    "image": obj({"context_compression": enum("auto", "enabled", "disabled")}),
    "moderation": obj({"model": string(), "policy": obj({
        "input": obj({"mode": enum("score", "block")}), "output": obj({"mode": enum("score", "block")})})},
        required=["model"]),
    "access_programs": obj({"cyber": enum("standard", "daybreak_blue", "daybreak_red")}),
}
KNOWN_PARAMETERS = tuple(PARAMETERS)


# --- tools ----------------------------------------------------------------------------------------

_FUNCTION_TOOL = obj({  # function_tool_param.py
    "type": string(), "name": string(max_length=64, pattern=FUNCTION_NAME), "description": string(),
    # The SDK marks parameters and strict Required-but-nullable; the migration guide says functions
    # are strict by default when strict is left out, so leaving either out is accepted.
    "parameters": obj(), "strict": boolean(), "defer_loading": boolean(),
    "allowed_callers": array(enum("direct", "programmatic")), "output_schema": obj(), "async": boolean(),
}, required=["name"])
_CUSTOM_TOOL = obj({  # custom_tool_param.py: a name, a description, a grammar or text format
    "type": string(), "name": string(max_length=64, pattern=FUNCTION_NAME), "description": string(),
    "format": obj(), "defer_loading": boolean(),
}, required=["name"])
_MCP_TOOL_FILTER = obj({"tool_names": array(string()), "read_only": boolean()})


def _allowed_tools(value: Any, param: str) -> None:
    """A list of tool names, or a filter object (tool_param.py McpAllowedTools)."""
    (array(string()) if isinstance(value, list) else _MCP_TOOL_FILTER)(value, param)


_MCP_TOOL = obj({  # tool_param.py Mcp: a label, and a server URL or a connector
    "type": string(), "server_label": string(), "server_url": string(), "connector_id": string(),
    "allowed_tools": _allowed_tools,
    "require_approval": either(enum("always", "never"), obj()), "headers": obj(), "authorization": string(),
    "server_description": string(), "defer_loading": boolean(),
}, required=["server_label"])
_PREVIEW_TOOL = obj({  # computer_use_preview_tool_param.py: all four fields required
    "type": string(), "display_width": integer(1), "display_height": integer(1),
    "environment": enum(*ENVIRONMENTS),
}, required=["display_width", "display_height", "environment"])
_GA_TOOL = obj({"type": string()})  # computer_tool_param.py: the GA tool has no other field


def check_tools(model: str, fmt: ToolFormat, tools: list[Any]) -> dict[str, Any] | None:
    """Check ``tools``; return the computer tool, if any."""
    computer = None
    for n, tool in enumerate(tools):
        where = f"tools[{n}]"
        _expect(tool, (dict,), "an object", where)
        kind = tool.get("type")
        if kind is None:
            raise Rejected("missing_parameter", param=f"{where}.type")
        enum(*TOOL_TYPES)(kind, f"{where}.type")
        if kind in ("computer_use_preview", "computer"):
            # The documented 400 for the wrong tool (REFERENCE.md §1, §9).
            if (kind == "computer") == (fmt == "preview"):
                raise Rejected("tool_not_supported", param="tools", tool=kind, model=model)
            (_PREVIEW_TOOL if kind == "computer_use_preview" else _GA_TOOL)(tool, where)
            computer = tool
        elif kind == "function":
            _FUNCTION_TOOL(tool, where)
        elif kind == "custom":
            _CUSTOM_TOOL(tool, where)
        elif kind == "mcp":
            _MCP_TOOL(tool, where)
        # Other hosted tools are accepted as the service would take them; the stand-in never calls them.
    return computer


# --- input items ----------------------------------------------------------------------------------

INPUT_ITEM_TYPES = (  # response_input_param.py (ResponseInputItemParam), each member's "type"
    "message", "file_search_call", "computer_call", "computer_call_output", "web_search_call",
    "function_call", "function_call_output", "tool_search_call", "tool_search_output",
    "additional_tools", "configuration_update", "reasoning", "compaction", "image_generation_call",
    "code_interpreter_call", "local_shell_call", "local_shell_call_output", "shell_call",
    "shell_call_output", "apply_patch_call", "apply_patch_call_output", "mcp_list_tools",
    "mcp_approval_request", "mcp_approval_response", "mcp_call", "custom_tool_call_output",
    "custom_tool_call", "compaction_trigger", "item_reference", "program", "program_output",
)
PLAYED_ITEM_TYPES = ("message", "reasoning", "computer_call", "computer_call_output", "function_call",
                     "function_call_output", "custom_tool_call", "custom_tool_call_output",
                     "mcp_list_tools", "mcp_approval_request", "mcp_approval_response", "mcp_call")
REPLAYED_ITEM_TYPES = ("reasoning", "computer_call", "function_call", "custom_tool_call",  # sent back by id
                       "mcp_list_tools", "mcp_approval_request", "mcp_call")

_STATUS = enum("in_progress", "completed", "incomplete")
_BREAKPOINT = obj({"mode": enum("explicit"), "ttl": enum("30m", "12h")})
# What a role's content parts may be. The SDK types every input message's parts as input parts;
# the service refuses input_text in an assistant message and output_text in a user one
# ("Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'.", observed).
_INPUT_PARTS = ("input_text", "input_image", "input_file")  # response_input_message_content_list_param.py
_OUTPUT_PARTS = ("output_text", "refusal")  # response_output_message_param.py
_PARTS: dict[str, Check] = {
    "input_text": obj({"type": string(), "text": string(), "prompt_cache_breakpoint": _BREAKPOINT},
                      required=["text"]),  # response_input_text_param.py
    # detail is Required in the SDK, but the images guide documents "auto" as its default.
    "input_image": obj({"type": string(), "image_url": string(), "file_id": string(),
                        "detail": enum(*IMAGE_DETAIL), "prompt_cache_breakpoint": _BREAKPOINT}),
    "input_file": obj({"type": string(), "file_id": string(), "file_data": string(), "file_url": string(),
                       "filename": string(), "detail": enum("auto", "low", "high"),
                       "prompt_cache_breakpoint": _BREAKPOINT}),  # response_input_file_param.py
    "output_text": obj({"type": string(), "text": string(), "annotations": array(), "logprobs": array()},
                       required=["text"]),  # response_output_text_param.py
    "refusal": obj({"type": string(), "refusal": string()}, required=["refusal"]),
}
_MESSAGE = obj({  # easy_input_message_param.py
    "type": string(), "role": enum("user", "assistant", "system", "developer"),
    "content": either(string(), array(), array_form=True),
    "status": _STATUS, "phase": enum("commentary", "final_answer"),
}, required=["role", "content"])
_SAFETY_CHECK = obj({"id": string(), "code": string(), "message": string()}, required=["id"])
_COMPUTER_CALL_OUTPUT = obj({  # response_input_param.py ComputerCallOutput
    "type": string(), "call_id": string(), "output": obj(), "id": string(), "status": _STATUS,
    "acknowledged_safety_checks": array(_SAFETY_CHECK),
    "current_url": string(),  # not in the SDK type; the computer-use guide sends it for its domain checks
}, required=["call_id", "output"])
_SCREENSHOT = obj({  # response_computer_tool_call_output_screenshot_param.py
    "type": enum("computer_screenshot"), "image_url": string(), "file_id": string(),
    "detail": enum(*IMAGE_DETAIL),  # not in the SDK type; the GA computer-use guide sends "original"
}, required=["type"])
_FUNCTION_CALL_OUTPUT = obj({  # response_input_param.py FunctionCallOutput
    "type": string(), "call_id": string(), "output": either(string(), array(), array_form=True), "id": string(),
    "status": _STATUS, "caller": obj(), "name": string(), "namespace": string(),
}, required=["call_id", "output"])


_CUSTOM_TOOL_CALL_OUTPUT = obj({  # response_input_param.py CustomToolCallOutput
    "type": string(), "call_id": string(), "output": either(string(), array(), array_form=True), "id": string(),
}, required=["call_id", "output"])


_MCP_APPROVAL_RESPONSE = obj({  # response_input_param.py McpApprovalResponse
    "type": string(), "approval_request_id": string(), "approve": boolean(), "id": string(), "reason": string(),
}, required=["approval_request_id", "approve"])


def item_kind(n: int, item: Any) -> str:
    """The item's type, after checking it is one the SDK knows and the stand-in plays."""
    where = f"input[{n}]"
    _expect(item, (dict,), "an object", where)
    kind = item.get("type", "message" if "role" in item else None)
    if kind is None:
        raise Rejected("missing_parameter", param=f"{where}.type")
    enum(*INPUT_ITEM_TYPES)(kind, f"{where}.type")
    if kind not in PLAYED_ITEM_TYPES:
        raise Rejected("unplayable_item", param=f"{where}.type", value=kind)
    return kind


def check_message(n: int, item: dict[str, Any]) -> None:
    """A message the client wrote (not one the stand-in issued): role, content parts, images."""
    where = f"input[{n}]"
    _MESSAGE(item, where)
    content = item["content"]
    allowed = _OUTPUT_PARTS if item["role"] == "assistant" else _INPUT_PARTS
    for m, part in enumerate(content if isinstance(content, list) else ()):
        param = f"{where}.content[{m}]"
        _expect(part, (dict,), "an object", param)
        if part.get("type") not in allowed:
            # The service names the part, not its type field, in this error (observed).
            raise Rejected("invalid_value", param=param, value=part.get("type"), supported=supported(allowed))
        _PARTS[part["type"]](part, param)
        if part["type"] == "input_image":
            if part.get("image_url") is None and part.get("file_id") is None:
                raise Rejected("missing_parameter", param=f"{param}.image_url")
            if part.get("image_url") is not None:
                image_from_url(part["image_url"], f"{param}.image_url")


def check_function_call_output(n: int, item: dict[str, Any]) -> None:
    _FUNCTION_CALL_OUTPUT(item, f"input[{n}]")


def check_custom_tool_call_output(n: int, item: dict[str, Any]) -> None:
    _CUSTOM_TOOL_CALL_OUTPUT(item, f"input[{n}]")


def check_computer_call_output(n: int, item: dict[str, Any], display: tuple[int, int] | None) -> Image:
    """A computer_call_output's shape and screenshot; return the screenshot."""
    where = f"input[{n}]"
    _COMPUTER_CALL_OUTPUT(item, where)
    output = item["output"]
    _SCREENSHOT(output, f"{where}.output")
    if output.get("image_url") is None:
        if output.get("file_id") is None:  # the service needs one of them to have a screenshot
            raise Rejected("missing_parameter", param=f"{where}.output.image_url")
        return Image(None, None, None)  # an uploaded file: the stand-in takes it on trust
    param = f"{where}.output.image_url"
    image = image_from_url(output["image_url"], param)
    # Ours, not the service's: a preview screenshot of another size than the declared display
    # means the client scaled coordinates wrongly.
    if display is not None and image.size is not None and image.size != display:
        raise Rejected("screenshot_wrong_size", param=param, got=f"{image.size[0]}x{image.size[1]}",
                       want=f"{display[0]}x{display[1]}")
    return image


# --- the whole request ----------------------------------------------------------------------------


@dataclass
class Request:
    """A create request that passed the contract, with what the stand-in acts on."""

    body: dict[str, Any]
    model: str
    fmt: ToolFormat
    computer_tool: dict[str, Any] | None
    items: list[dict[str, Any]]
    screenshots: list[Image]  # one per computer_call_output, in input order
    include_encrypted: bool
    store: bool

    @property
    def display(self) -> tuple[int, int] | None:
        tool = self.computer_tool
        if tool is None or self.fmt != "preview":
            return None
        return tool["display_width"], tool["display_height"]


def check_request(body: dict[str, Any]) -> Request:
    """Check one create request on its own; raise ``Rejected`` for the first problem found."""
    for key in body:
        if key not in PARAMETERS:
            raise Rejected("unknown_parameter", param=key)
    if body.get("model") is None:
        raise Rejected("missing_parameter", param="model")
    for key, check in PARAMETERS.items():
        if body.get(key) is not None:
            check(body[key], key)
    # stream_options: "Only set this when you set `stream: true`." The service's words are not known.
    if body.get("stream_options") is not None and body.get("stream") is not True:
        raise Rejected("stream_options_without_stream", param="stream_options")
    # previous_response_id: "Cannot be used in conjunction with `conversation`."
    if body.get("conversation") is not None and body.get("previous_response_id") is not None:
        raise Rejected("conversation_and_previous", param="conversation")

    model = body["model"]
    # text.verbosity is GPT-5's; the GPT-4o family (computer-use-preview is one) takes only "medium".
    verbosity = (body.get("text") or {}).get("verbosity")
    if verbosity not in (None, "medium") and model.startswith(("computer-use-preview", "gpt-4")):
        raise Rejected("verbosity_unsupported", param="verbosity", value=verbosity)
    fmt = tool_format_for(model)
    computer_tool = check_tools(model, fmt, body.get("tools") or [])
    truncation = body.get("truncation") or "disabled"
    if computer_tool is not None and computer_tool["type"] == "computer_use_preview" and truncation != "auto":
        raise Rejected("truncation_required", param="truncation", value=truncation)  # preview guide: "auto"

    raw = body.get("input")
    if isinstance(raw, str):
        items = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
    else:
        items = list(raw or [])
    request = Request(
        body=body, model=model, fmt=fmt, computer_tool=computer_tool, items=items, screenshots=[],
        include_encrypted="reasoning.encrypted_content" in (body.get("include") or []),
        store=body.get("store") is not False,
    )
    for n, item in enumerate(items):
        kind = item_kind(n, item)
        if kind == "message" and "id" not in item:
            check_message(n, item)
        elif kind == "function_call_output":
            check_function_call_output(n, item)
        elif kind == "custom_tool_call_output":
            check_custom_tool_call_output(n, item)
        elif kind == "mcp_approval_response":
            _MCP_APPROVAL_RESPONSE(item, f"input[{n}]")
        elif kind == "computer_call_output":
            request.screenshots.append(check_computer_call_output(n, item, request.display))
        # reasoning, computer_call, function_call and issued messages: checked against what was issued
    return request
