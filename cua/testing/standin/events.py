"""The server-sent events the service streams for a response."""

from __future__ import annotations

import copy
from typing import Any


def chunks(text: str, size: int = 12) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]



def added_copy(item: dict[str, Any]) -> dict[str, Any]:
    """The item as ``response.output_item.added`` shows it: before its content streamed in."""
    added = copy.deepcopy(item)
    kind = item["type"]
    if kind == "reasoning":
        added.pop("encrypted_content", None)
        added["summary"] = []
    elif kind == "message":
        added.update(content=[], status="in_progress")
    elif kind == "function_call":
        added.update(arguments="", status="in_progress")
    elif kind == "custom_tool_call":
        added.update(input="", status="in_progress")
    elif kind == "computer_call":
        added["status"] = "in_progress"
    return added


def sse_events(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The event sequence the service streams for ``response``, numbered."""
    events: list[dict[str, Any]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append({"type": kind, "sequence_number": len(events), **fields})

    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    emit("response.created", response=pending)
    emit("response.in_progress", response=pending)
    for index, item in enumerate(response["output"]):
        emit("response.output_item.added", output_index=index, item=added_copy(item))
        where = {"item_id": item.get("id"), "output_index": index}
        if item["type"] == "reasoning":
            for n, part in enumerate(item.get("summary") or []):
                text = part.get("text", "")
                emit("response.reasoning_summary_part.added", **where, summary_index=n,
                     part={"type": "summary_text", "text": ""})
                for piece in chunks(text):
                    emit("response.reasoning_summary_text.delta", **where, summary_index=n, delta=piece)
                emit("response.reasoning_summary_text.done", **where, summary_index=n, text=text)
                emit("response.reasoning_summary_part.done", **where, summary_index=n, part=part)
        elif item["type"] == "message":
            for n, part in enumerate(item.get("content") or []):
                kind = part.get("type")
                empty = {**part, kind if kind == "refusal" else "text": ""} if kind in ("output_text", "refusal") else part
                emit("response.content_part.added", **where, content_index=n, part=empty)
                if kind == "output_text":
                    for piece in chunks(part.get("text", "")):
                        emit("response.output_text.delta", **where, content_index=n, delta=piece, logprobs=[])
                    emit("response.output_text.done", **where, content_index=n, text=part.get("text", ""), logprobs=[])
                elif kind == "refusal":
                    for piece in chunks(part.get("refusal", "")):
                        emit("response.refusal.delta", **where, content_index=n, delta=piece)
                    emit("response.refusal.done", **where, content_index=n, refusal=part.get("refusal", ""))
                emit("response.content_part.done", **where, content_index=n, part=part)
        elif item["type"] == "function_call":
            for piece in chunks(item["arguments"]):
                emit("response.function_call_arguments.delta", **where, delta=piece)
            emit("response.function_call_arguments.done", **where, arguments=item["arguments"])
        elif item["type"] == "custom_tool_call":  # response_custom_tool_call_input_{delta,done}_event.py
            for piece in chunks(item["input"]):
                emit("response.custom_tool_call_input.delta", **where, delta=piece)
            emit("response.custom_tool_call_input.done", **where, input=item["input"])
        emit("response.output_item.done", output_index=index, item=item)
    final = {"completed": "response.completed", "incomplete": "response.incomplete",
             "failed": "response.failed"}.get(response["status"], "response.completed")
    emit(final, response=response)
    return events

