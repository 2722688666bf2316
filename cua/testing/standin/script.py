"""Scripted model turns: what the stand-in answers, and how it fills in what a test leaves out."""

from __future__ import annotations

import base64
import copy
import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Union

from ...errors import ConfigError
from ...providers.openai.models import ToolFormat
from .contract import Request
from .conversation import Continuation


class ScriptError(ConfigError):
    """The test's script cannot be played (bad turn item, a callable that raised, …)."""


# --- Scripted turns -------------------------------------------------------------------------------

_SAFETY_MESSAGES = {
    "malicious_instructions": "The screen shows instructions that may lead the agent to act "
    "against the user's intent. Acknowledge this check to proceed.",
    "irrelevant_domain": "The current domain does not look related to the task. Acknowledge "
    "this check to proceed.",
    "sensitive_domain": "The current domain is sensitive. Acknowledge this check to proceed.",
}


def action_dict(action: Any) -> dict[str, Any]:
    if hasattr(action, "model_dump"):
        return action.model_dump(mode="json", exclude_none=True)
    if not isinstance(action, dict):
        raise ScriptError(f"an action must be a dict or a cua action, got {type(action).__name__}")
    return dict(action)


def reasoning_item(summary: str | list[str] | None) -> list[dict[str, Any]]:
    if summary is None:
        return []
    parts = [summary] if isinstance(summary, str) else list(summary)
    return [{"type": "reasoning", "summary": parts}]


@dataclass
class Turn:
    """One scripted model turn: output items (ids and the rest are filled in) and optional usage.

    ``usage`` is merged over the computed usage; ``status`` may be ``"incomplete"`` (with
    ``incomplete_details.reason = "max_output_tokens"``) or ``"failed"``.
    """

    output: list[dict[str, Any]]
    usage: dict[str, Any] | None = None
    status: Literal["completed", "incomplete", "failed"] = "completed"

    @classmethod
    def call(
        cls,
        *actions: Any,
        safety_checks: Iterable[str | dict[str, Any]] = (),
        reasoning: str | list[str] | None = None,
        commentary: str | None = None,
        usage: dict[str, Any] | None = None,
    ) -> Turn:
        """A computer_call with ``actions`` (a preview request takes exactly one).

        ``safety_checks`` are codes (``"malicious_instructions"``) or full check dicts; ids
        ``cu_sc_…`` are filled in.
        """
        if not actions:
            raise ScriptError("Turn.call needs at least one action")
        output = reasoning_item(reasoning)
        if commentary is not None:
            output.append({"type": "message", "content": commentary})  # GA: phase "commentary"
        output.append({
            "type": "computer_call",
            "actions": [action_dict(a) for a in actions],
            "pending_safety_checks": list(safety_checks),
        })
        return cls(output=output, usage=usage)

    @classmethod
    def message(
        cls,
        text: str,
        *,
        phase: str | None = None,
        reasoning: str | list[str] | None = None,
        usage: dict[str, Any] | None = None,
    ) -> Turn:
        """A final assistant message (GA requests get ``phase: "final_answer"`` unless given)."""
        item: dict[str, Any] = {"type": "message", "content": text}
        if phase is not None:
            item["phase"] = phase
        return cls(output=reasoning_item(reasoning) + [item], usage=usage)

    @classmethod
    def function_call(
        cls,
        name: str,
        arguments: dict[str, Any] | str | None = None,
        *,
        reasoning: str | list[str] | None = None,
        usage: dict[str, Any] | None = None,
    ) -> Turn:
        item = {"type": "function_call", "name": name, "arguments": arguments or {}}
        return cls(output=reasoning_item(reasoning) + [item], usage=usage)


@dataclass
class TurnState:
    """What a callable turn gets besides the request body."""

    index: int  # position of this turn in the script (0-based)
    request: dict[str, Any]
    tool_format: ToolFormat
    display: tuple[int, int] | None  # preview tool's display_width × display_height
    screenshots: list[bytes]  # images of this request's computer_call_outputs sent as data URLs, in order
    call_outputs: list[dict[str, Any]]  # the computer_call_output / function_call_output items
    previous: dict[str, Any] | None  # the response named by previous_response_id
    memory: dict[str, Any]  # kept across turns for the callable's own use

    @property
    def screenshot(self) -> bytes | None:
        """The most recent screenshot in this request, if any."""
        return self.screenshots[-1] if self.screenshots else None


ScriptedTurn = Union[list[dict[str, Any]], Turn, Callable[[dict[str, Any], TurnState], Any]]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def materialize(items: Any, fmt: ToolFormat, index: int) -> list[dict[str, Any]]:
    """Fill a scripted turn's items in the way the service would for this tool format."""
    if not isinstance(items, list):
        raise ScriptError(f"turn {index}: output must be a list of item dicts")
    has_call = any(isinstance(i, dict) and i.get("type") in ("computer_call", "function_call", "custom_tool_call",
                                                              "mcp_approval_request") for i in items)
    output = []
    for position, raw in enumerate(items):
        where = f"turn {index}, item {position}"
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            raise ScriptError(f"{where}: an output item must be a dict with a 'type'")
        item = copy.deepcopy(raw)
        kind = item["type"]
        if kind == "computer_call":
            has_action, has_actions = "action" in item, "actions" in item
            if has_action == has_actions:
                raise ScriptError(f"{where}: a computer_call needs exactly one of 'action' or 'actions'")
            actions = [item.pop("action")] if has_action else item.pop("actions")
            if not isinstance(actions, list) or not actions:
                raise ScriptError(f"{where}: 'actions' must be a non-empty list")
            actions = [action_dict(a) for a in actions]
            if fmt == "preview":
                if len(actions) != 1:
                    raise ScriptError(
                        f"{where}: a computer-use-preview request takes one action per computer_call, "
                        f"the script has {len(actions)}; split them into separate turns"
                    )
                fields: dict[str, Any] = {"action": actions[0]}
            else:
                fields = {"actions": actions}
            checks = []
            for check in item.pop("pending_safety_checks", None) or []:
                check = {"code": check} if isinstance(check, str) else dict(check)
                check.setdefault("id", new_id("cu_sc"))
                check.setdefault("code", "malicious_instructions")
                check.setdefault("message", _SAFETY_MESSAGES.get(check["code"], "Acknowledge this check to proceed."))
                checks.append(check)
            item = {"type": kind, "id": item.pop("id", None) or new_id("cu"),
                    "call_id": item.pop("call_id", None) or new_id("call"), **fields,
                    "pending_safety_checks": checks, "status": item.pop("status", "completed"), **item}
        elif kind == "reasoning":
            summary = [
                {"type": "summary_text", "text": part} if isinstance(part, str) else dict(part)
                for part in item.get("summary") or []
            ]
            item = {"type": kind, "id": item.pop("id", None) or new_id("rs"), **item, "summary": summary}
        elif kind == "message":
            content = item.get("content", item.pop("text", None))
            if content is None:
                raise ScriptError(f"{where}: a message needs 'content' (a string or parts)")
            if isinstance(content, str):
                content = [{"type": "output_text", "text": content}]
            parts = []
            for part in content:
                part = dict(part)
                if part.get("type") == "output_text":
                    part.setdefault("annotations", [])
                parts.append(part)
            item = {"type": kind, "id": item.pop("id", None) or new_id("msg"), "status": "completed",
                    "role": "assistant", **item, "content": parts}
            if fmt == "computer":
                item.setdefault("phase", "commentary" if has_call else "final_answer")
        elif kind == "function_call":
            if not item.get("name"):
                raise ScriptError(f"{where}: a function_call needs a 'name'")
            arguments = item.get("arguments", {})
            item = {"type": kind, "id": item.pop("id", None) or new_id("fc"),
                    "call_id": item.pop("call_id", None) or new_id("call"), "status": "completed", **item,
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}
        elif kind in ("mcp_list_tools", "mcp_approval_request", "mcp_call"):
            if not item.get("server_label") or (kind != "mcp_list_tools" and not item.get("name")):
                raise ScriptError(f"{where}: a {kind} needs a 'server_label'" + ("" if kind == "mcp_list_tools" else " and a 'name'"))
            prefix = {"mcp_list_tools": "mcpl", "mcp_approval_request": "mcpr", "mcp_call": "mcp"}[kind]
            arguments = item.pop("arguments", {})
            fields: dict[str, Any] = {"tools": item.pop("tools", [])} if kind == "mcp_list_tools" else {
                "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}
            if kind == "mcp_call":
                fields.update(output=item.pop("output", ""), error=item.pop("error", None), status="completed")
            item = {"type": kind, "id": item.pop("id", None) or new_id(prefix), **fields, **item}
        elif kind == "custom_tool_call":
            if not item.get("name") or not isinstance(item.get("input", ""), str):
                raise ScriptError(f"{where}: a custom_tool_call needs a 'name' and a text 'input'")
            item = {"type": kind, "id": item.pop("id", None) or new_id("ctc"),
                    "call_id": item.pop("call_id", None) or new_id("call"), "status": "completed",
                    "input": "", **item}
        output.append(item)
    return output


def usage(
    body: dict[str, Any], context: list[dict[str, Any]], previous_input_tokens: int,
    output: list[dict[str, Any]], override: dict[str, Any] | None,
) -> dict[str, Any]:
    chars, images = _count_images([body.get("instructions") or "", context, body.get("tools")])
    input_tokens = max(1, chars // 4) + 765 * images
    reasoning = sum(
        64 + len(json.dumps(i.get("summary"))) // 4 for i in output if i.get("type") == "reasoning"
    )
    visible = sum(len(json.dumps(i)) // 4 for i in output if i.get("type") != "reasoning")
    cached = (previous_input_tokens // 128) * 128
    usage: dict[str, Any] = {
        "input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": min(cached, input_tokens)},
        "output_tokens": reasoning + visible, "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + reasoning + visible,
    }
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(usage.get(key), dict):
            usage[key] = {**usage[key], **value}
        else:
            usage[key] = value
    if override and "total_tokens" not in override:
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    return usage



def _count_images(value: Any) -> tuple[int, int]:
    """(characters of text, number of images) in a JSON value, images not counted as text."""
    if isinstance(value, str):
        return (0, 1) if value.startswith("data:image") else (len(value), 0)
    if isinstance(value, dict):
        pairs = [_count_images(v) for v in value.values()]
    elif isinstance(value, list):
        pairs = [_count_images(v) for v in value]
    else:
        return len(str(value)), 0
    return sum(p[0] for p in pairs), sum(p[1] for p in pairs)



def _service_tier(asked: str | None) -> str:
    # service_tier.py: the response shows the tier used; "fast" is served as "priority".
    return {None: "default", "auto": "default", "fast": "priority"}.get(asked, asked or "default")


def build_response(
    turn: Turn, request: Request, place: Continuation, index: int, id_style: str
) -> tuple[dict[str, Any], dict[str, str], int]:
    """The response object for ``turn``: (response, encrypted_content by reasoning id, input tokens)."""
    output = materialize(turn.output, request.fmt, index)
    encrypted: dict[str, str] = {}
    for item in output:
        if item["type"] == "reasoning":
            given = item.pop("encrypted_content", None)
            if request.include_encrypted:
                token = given or "gAAAAA" + base64.urlsafe_b64encode(secrets.token_bytes(48)).decode()
                item["encrypted_content"] = encrypted[item["id"]] = token

    response_id = new_id("resp")
    if id_style == "litellm":
        wrapped = f"litellm:custom_llm_provider:openai;model_id:{secrets.token_hex(8)};response_id:{response_id}"
        # two leading bytes make the id start with "+/", so a client must URL-encode it
        response_id = "resp_" + base64.b64encode(b"\xfb\xff" + wrapped.encode()).decode()
    body = request.body
    previous_tokens = place.previous.input_tokens if place.previous else 0
    counted = usage(body, place.context, previous_tokens, output, turn.usage)
    reasoning = body.get("reasoning") or {}
    response: dict[str, Any] = {
        "id": response_id, "object": "response", "created_at": int(time.time()),
        "status": turn.status, "background": bool(body.get("background")), "error": None,
        "incomplete_details": None, "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"), "max_tool_calls": body.get("max_tool_calls"),
        "model": request.model, "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"), "safety_identifier": body.get("safety_identifier"),
        "reasoning": {"effort": reasoning.get("effort", "medium"), "summary": reasoning.get("summary")},
        "service_tier": _service_tier(body.get("service_tier")), "store": request.store,
        "temperature": body.get("temperature", 1.0), "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0), "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "usage": counted, "user": body.get("user"), "metadata": body.get("metadata") or {},
    }
    if turn.status == "incomplete":
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    elif turn.status == "failed":
        response["error"] = {"code": "server_error", "message": "The scripted turn failed."}
    return response, encrypted, counted["input_tokens"]
