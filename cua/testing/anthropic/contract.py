"""What one ``POST /v1/messages`` must look like, rule by rule (each refusal is a ``REASONS`` entry).

Sources: anthropic-sdk-python's ``types/`` (message_create_params, computer_toolset_20260801_param,
computer_toolset_configs_param, beta_tool_computer_use_2025*_param, tool_result_block_param) and
REFERENCE.md §10. Where the service is lenient the stand-in is too: two messages of the same role
in a row are merged, as the service does, instead of refused.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass, field
from typing import Any

from .reasons import Rejected

VERSIONS = frozenset({"2023-06-01", "2023-01-01"})
TOOLSET = "computer_toolset_20260801"
MEMBERS = (
    "cursor_position", "double_click", "hold_key", "key", "left_click", "left_click_drag",
    "left_mouse_down", "left_mouse_up", "middle_click", "mouse_move", "right_click", "screenshot",
    "scroll", "triple_click", "type", "wait", "zoom",
)
MEMBER_CONFIG_KEYS = frozenset({"enabled", "defer_loading"})
BETA_TOOLS = {"computer_20251124": "computer-use-2025-11-24", "computer_20250124": "computer-use-2025-01-24"}
PARAMETERS = frozenset({
    "model", "max_tokens", "messages", "system", "tools", "tool_choice", "stream", "temperature",
    "top_p", "top_k", "stop_sequences", "metadata", "thinking", "service_tier", "container",
    "context_management", "mcp_servers", "output_config",
})
MAX_CACHE_CONTROLS = 4
MAX_IMAGE_BYTES = 5 * 1024 * 1024
_IMAGE_TYPES = {"image/png": b"\x89PNG", "image/jpeg": b"\xff\xd8", "image/gif": b"GIF8", "image/webp": b"RIFF"}


def refuses_beta_tools(model: str) -> bool:
    """Claude 5.5 models take only the toolset (REFERENCE §10); ``scripted`` is the newest model."""
    name = model.lower().rsplit("/", 1)[-1]
    return name == "scripted" or "-5-5" in name or "5.5" in name


@dataclass
class Image:
    param: str
    data: bytes
    size: tuple[int, int]


@dataclass
class Request:
    """A request that passed the rules, with what the server needs of it."""

    body: dict[str, Any]
    messages: list[dict[str, Any]]  # same-role runs merged, content always a list of blocks
    tool_type: str | None  # the computer tool declared: the toolset, a beta tool, or None
    functions: list[str] = field(default_factory=list)  # custom tool names
    images: list[Image] = field(default_factory=list)
    thinking: bool = False


def check_headers(headers: dict[str, str], api_key: str | None) -> None:
    key = headers.get("x-api-key", "").strip()
    bearer = headers.get("authorization", "")
    if not key and bearer.lower().startswith("bearer "):
        key = bearer[7:].strip()
    if not key:
        raise Rejected("missing_api_key")
    if api_key is not None and key != api_key:
        raise Rejected("invalid_api_key")
    version = headers.get("anthropic-version")
    if not version:
        raise Rejected("missing_version")
    if version not in VERSIONS:
        raise Rejected("invalid_version", value=version)


def check_request(body: Any, headers: dict[str, str], signatures: dict[str, str]) -> Request:
    """Validate ``body`` (``signatures``: signature → thinking text the stand-in issued)."""
    if not isinstance(body, dict):
        raise Rejected("invalid_json")
    for name in body:
        if name not in PARAMETERS:
            raise Rejected("extra_field", param=name)
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            raise Rejected("missing_field", param=name)
    if not isinstance(body["model"], str) or not body["model"]:
        raise Rejected("invalid_type", param="model", expected="a valid string")
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise Rejected("invalid_value", param="max_tokens", problem="Input should be a positive integer")
    betas = {b.strip() for b in headers.get("anthropic-beta", "").split(",") if b.strip()}
    tool_type, functions = _check_tools(body.get("tools"), body["model"], betas)
    thinking = _check_thinking(body.get("thinking"), max_tokens)
    if not isinstance(body.get("stream", False), bool):
        raise Rejected("invalid_type", param="stream", expected="a valid boolean")
    request = Request(body=body, messages=_merged(body["messages"]), tool_type=tool_type,
                      functions=functions, thinking=thinking)
    _check_pairs(request.messages)
    _check_thinking_blocks(request.messages, signatures)
    request.images = _images(request.messages)
    count = _cache_controls(body)
    if count > MAX_CACHE_CONTROLS:
        raise Rejected("too_many_cache_controls", count=count)
    return request


def _check_tools(tools: Any, model: str, betas: set[str]) -> tuple[str | None, list[str]]:
    if tools is None:
        return None, []
    if not isinstance(tools, list):
        raise Rejected("invalid_type", param="tools", expected="a valid list")
    computer, functions = None, []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise Rejected("invalid_type", param=f"tools.{index}", expected="a valid dictionary")
        kind = tool.get("type")
        if kind == TOOLSET:
            _check_fields(tool, {"type", "configs", "cache_control"}, f"tools.{index}")
            configs = tool.get("configs") or {}
            if not isinstance(configs, dict):
                raise Rejected("invalid_type", param=f"tools.{index}.configs", expected="a valid dictionary")
            for key, config in configs.items():
                if key not in MEMBERS:
                    raise Rejected("unknown_config", index=index, key=key)
                if config is not None:
                    if not isinstance(config, dict):
                        raise Rejected("invalid_type", param=f"tools.{index}.configs.{key}",
                                       expected="a valid dictionary")
                    _check_fields(config, MEMBER_CONFIG_KEYS, f"tools.{index}.configs.{key}")
            computer = kind
        elif kind in BETA_TOOLS:
            if BETA_TOOLS[kind] not in betas:
                raise Rejected("beta_required", index=index, type=kind, beta=BETA_TOOLS[kind])
            if refuses_beta_tools(model):
                raise Rejected("tool_not_supported", index=index, type=kind, model=model)
            allowed = {"type", "name", "display_width_px", "display_height_px", "display_number", "cache_control"}
            if kind == "computer_20251124":
                allowed.add("enable_zoom")
            _check_fields(tool, allowed, f"tools.{index}")
            for name in ("name", "display_width_px", "display_height_px"):
                if name not in tool:
                    raise Rejected("missing_field", param=f"tools.{index}.{name}")
            if tool["name"] != "computer":
                raise Rejected("invalid_value", param=f"tools.{index}.name", problem="Input should be 'computer'")
            for name in ("display_width_px", "display_height_px"):
                if not isinstance(tool[name], int) or tool[name] < 1:
                    raise Rejected("invalid_value", param=f"tools.{index}.{name}",
                                   problem="Input should be greater than or equal to 1")
            computer = kind
        elif kind in (None, "custom"):
            _check_fields(tool, {"type", "name", "description", "input_schema", "cache_control", "strict"},
                          f"tools.{index}")
            for name in ("name", "input_schema"):
                if name not in tool:
                    raise Rejected("missing_field", param=f"tools.{index}.{name}")
            functions.append(str(tool["name"]))
        else:
            raise Rejected("unknown_tool_type", index=index, type=kind)
    return computer, functions


def _check_fields(data: dict[str, Any], allowed: set[str] | frozenset[str], where: str) -> None:
    for name in data:
        if name not in allowed:
            raise Rejected("extra_field", param=f"{where}.{name}")


def _check_thinking(thinking: Any, max_tokens: int) -> bool:
    if thinking is None:
        return False
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled", "adaptive"):
        raise Rejected("invalid_value", param="thinking.type",
                       problem="Input should be 'enabled', 'disabled' or 'adaptive'")
    if thinking["type"] != "enabled":
        return thinking["type"] == "adaptive"
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        raise Rejected("invalid_value", param="thinking.enabled.budget_tokens",
                       problem="Input should be greater than or equal to 1024")
    if budget >= max_tokens:
        raise Rejected("thinking_budget")
    return True


def _merged(messages: Any) -> list[dict[str, Any]]:
    """The messages with string content as a text block and same-role neighbours joined."""
    if not isinstance(messages, list) or not messages:
        raise Rejected("invalid_value", param="messages", problem="List should have at least 1 item")
    merged: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise Rejected("invalid_value", param=f"messages.{index}.role",
                           problem="Input should be 'user' or 'assistant'")
        _check_fields(message, {"role", "content"}, f"messages.{index}")
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list):
            raise Rejected("invalid_type", param=f"messages.{index}.content", expected="a valid list")
        for block_index, block in enumerate(content):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise Rejected("invalid_type", param=f"messages.{index}.content.{block_index}",
                               expected="a valid dictionary with a type")
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1]["content"] = merged[-1]["content"] + content
        else:
            merged.append({"role": message["role"], "content": list(content), "index": index})
    if merged[0]["role"] != "user":
        raise Rejected("first_message_role")
    return merged


def _check_pairs(messages: list[dict[str, Any]]) -> None:
    """Every tool_use is answered by a tool_result in the very next (user) message, and every
    tool_result answers a tool_use of the message before it."""
    for position, message in enumerate(messages):
        if message["role"] != "user":
            continue
        previous = messages[position - 1] if position else None
        asked = [b.get("id") for b in previous["content"] if b["type"] == "tool_use"] if previous else []
        results = [b for b in message["content"] if b["type"] == "tool_result"]
        for block_index, block in enumerate(message["content"]):
            if block["type"] == "tool_result" and block.get("tool_use_id") not in asked:
                raise Rejected("unexpected_tool_result", index=message["index"], block=block_index,
                               id=block.get("tool_use_id"))
        if results and any(b["type"] != "tool_result" for b in message["content"][: len(results)]):
            raise Rejected("tool_result_not_first", index=message["index"])
    for position, message in enumerate(messages):
        asked = [b.get("id") for b in message["content"] if b["type"] == "tool_use"]
        if message["role"] != "assistant" or not asked or position + 1 >= len(messages):
            continue
        answered = {b.get("tool_use_id") for b in messages[position + 1]["content"] if b["type"] == "tool_result"}
        missing = [i for i in asked if i not in answered]
        if missing:
            raise Rejected("tool_use_without_result", index=message["index"], ids=", ".join(map(str, missing)))


def _check_thinking_blocks(messages: list[dict[str, Any]], signatures: dict[str, str]) -> None:
    assistants = [m for m in messages if m["role"] == "assistant"]
    for message in assistants:
        latest = message is assistants[-1]
        for block_index, block in enumerate(message["content"]):
            if block["type"] != "thinking":
                continue
            issued = signatures.get(str(block.get("signature")))
            if issued is None:
                raise Rejected("invalid_signature", index=message["index"], block=block_index)
            if latest and block.get("thinking") != issued:
                raise Rejected("thinking_modified", index=message["index"], block=block_index)


def _images(messages: list[dict[str, Any]]) -> list[Image]:
    found: list[tuple[str, dict[str, Any]]] = []
    for message in messages:
        for block_index, block in enumerate(message["content"]):
            where = f"messages.{message['index']}.content.{block_index}"
            if block["type"] == "image":
                found.append((where, block))
            elif block["type"] == "tool_result" and isinstance(block.get("content"), list):
                found += [(f"{where}.content.{n}", b) for n, b in enumerate(block["content"])
                          if isinstance(b, dict) and b.get("type") == "image"]
    # Docs (vision): at most 8000x8000 px; with more than 20 images in a request, 2000x2000.
    limit = 2000 if len(found) > 20 else 8000
    return [_image(where, block, limit) for where, block in found]


def _image(where: str, block: dict[str, Any], limit: int) -> Image:
    source = block.get("source")
    if not isinstance(source, dict) or source.get("type") != "base64":
        raise Rejected("bad_image", param=f"{where}.source", problem="the stand-in takes base64 sources only")
    media_type = source.get("media_type")
    if media_type not in _IMAGE_TYPES:
        raise Rejected("bad_image", param=f"{where}.source.media_type",
                       problem="Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'")
    try:
        data = base64.b64decode(str(source.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        raise Rejected("bad_image", param=f"{where}.source.data", problem="invalid base64 data") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise Rejected("image_too_many_bytes", param=where, size=len(data))
    if not data.startswith(_IMAGE_TYPES[media_type]):
        raise Rejected("bad_image", param=f"{where}.source",
                       problem=f"Image does not match the provided media type {media_type}")
    from PIL import Image as PILImage, UnidentifiedImageError

    try:
        with PILImage.open(io.BytesIO(data)) as img:
            img.load()
            size = img.size
    except (UnidentifiedImageError, OSError):
        raise Rejected("bad_image", param=f"{where}.source.data", problem="Could not process image") from None
    if max(size) > limit:
        raise Rejected("image_too_large", param=where, limit=limit)
    return Image(where, data, size)


def _cache_controls(value: Any) -> int:
    if isinstance(value, dict):
        own = 1 if value.get("cache_control") else 0
        return own + sum(_cache_controls(v) for k, v in value.items() if k != "cache_control")
    if isinstance(value, list):
        return sum(_cache_controls(v) for v in value)
    return 0
