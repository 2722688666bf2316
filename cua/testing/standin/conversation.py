"""Conversation state: stored responses, the items they issued, and the rules that tie a request
to the requests before it (replayed items unchanged, each call answered once, checks acknowledged).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from .contract import REPLAYED_ITEM_TYPES, Request
from .reasons import Rejected

_OUTPUT_TYPES = ("computer_call_output", "function_call_output", "custom_tool_call_output")
_CALL_TYPES = ("computer_call", "function_call", "custom_tool_call")


@dataclass
class Issued:
    """An output item the stand-in gave out, as it was given."""

    item: dict[str, Any]
    response_id: str
    store: bool
    encrypted: str | None
    following_id: str | None


@dataclass
class Stored:
    response: dict[str, Any]
    store: bool
    context: list[dict[str, Any]]  # the whole conversation up to and including the output
    lineage: list[str]  # ids of issued items in ``context``, in order
    computer_tool: dict[str, Any] | None
    input_tokens: int


@dataclass
class Continuation:
    """A request placed in its conversation: the response it continues and everything said so far."""

    previous: Stored | None
    context: list[dict[str, Any]]


def _texts(parts: Any) -> list[tuple[Any, Any]]:
    """Content or summary parts reduced to what must survive a replay: type and text."""
    if isinstance(parts, str):
        return [("text", parts)]
    if not isinstance(parts, list):
        return [("?", parts)]
    return [
        (p.get("type"), p.get("text", p.get("refusal"))) if isinstance(p, dict) else ("?", p)
        for p in parts
    ]


@dataclass
class Ledger:
    """What the stand-in has answered so far. Callers hold the server's lock."""

    stored: dict[str, Stored] = field(default_factory=dict)
    issued: dict[str, Issued] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)  # response id → creation order

    # -- reading ------------------------------------------------------------------------------------

    def lookup(self, response_id: str) -> Stored:
        stored = self.stored.get(response_id)
        if stored is None or not stored.store:
            raise Rejected("response_not_found", id=response_id)
        return stored

    def delete(self, response_id: str) -> None:
        self.lookup(response_id)
        self.stored.pop(response_id)
        for item_id in [i for i, rec in self.issued.items() if rec.response_id == response_id]:
            del self.issued[item_id]

    # -- checking a request -------------------------------------------------------------------------

    def place(self, request: Request) -> Continuation:
        """Check ``request`` against the conversation it continues."""
        body = request.body
        previous = None
        if body.get("previous_response_id") is not None:
            previous = self.stored.get(body["previous_response_id"])
            if previous is None or not previous.store:
                raise Rejected("previous_response_not_found", param="previous_response_id",
                               id=body["previous_response_id"])
        items = request.items
        for n, item in enumerate(items):
            kind = item.get("type", "message")
            if kind in REPLAYED_ITEM_TYPES or (kind == "message" and "id" in item):
                self._check_issued(n, item, kind)
        context = (previous.context if previous else []) + items
        self._check_replay(items, previous)
        if request.computer_tool is None and any(i.get("type") in ("computer_call", "computer_call_output")
                                                 for i in context):
            raise Rejected("computer_tool_required", param="tools",
                           tool="computer_use_preview" if request.fmt == "preview" else "computer")
        _check_calls(context, first_new=len(context) - len(items))
        return Continuation(previous=previous, context=context)

    def _check_issued(self, n: int, item: dict[str, Any], kind: str) -> None:
        """A replayed output item must be one the stand-in issued, unchanged."""
        where = f"input[{n}]"
        item_id = item.get("id")
        if item_id is None:
            raise Rejected("missing_parameter", param=f"{where}.id")
        issued = self.issued.get(item_id) if isinstance(item_id, str) else None
        if issued is None or issued.item.get("type") != kind:
            raise Rejected("item_not_found", param=f"{where}.id", id=item_id)
        for key in item:
            if key not in issued.item and key != "encrypted_content":
                raise Rejected("unknown_parameter", param=f"{where}.{key}")
        compared = {
            "computer_call": ("call_id", "action", "actions"),
            "function_call": ("call_id", "name", "arguments"),
            "custom_tool_call": ("call_id", "name", "input"),
            "mcp_list_tools": ("server_label", "tools"),
            "mcp_approval_request": ("server_label", "name", "arguments"),
            "mcp_call": ("server_label", "name", "arguments", "output"),
            "reasoning": ("summary",),
            "message": ("role", "content"),
        }[kind]
        if kind == "reasoning" and item.get("summary") is None:
            raise Rejected("missing_parameter", param=f"{where}.summary")  # response_reasoning_item_param.py
        for key in compared:
            mine, theirs = issued.item.get(key), item.get(key)
            if key in ("summary", "content"):
                mine, theirs = _texts(mine), _texts(theirs)
            if mine != theirs:
                raise Rejected("item_modified", param=f"{where}.{key}", id=item_id, type=kind, field=key)
        checks = item.get("pending_safety_checks")
        if checks is not None and checks != issued.item.get("pending_safety_checks"):
            raise Rejected("item_modified", param=f"{where}.pending_safety_checks", id=item_id, type=kind,
                           field="pending_safety_checks")
        if kind == "reasoning":
            self._check_encrypted(where, item, issued)

    @staticmethod
    def _check_encrypted(where: str, item: dict[str, Any], issued: Issued) -> None:
        sent, item_id = item.get("encrypted_content"), item["id"]
        if issued.encrypted is None:
            if not issued.store:  # neither persisted nor carried: nothing to replay from
                raise Rejected("item_not_found", param=f"{where}.id", id=item_id)
            if sent is not None:
                raise Rejected("encrypted_content_mismatch", param=f"{where}.encrypted_content", id=item_id)
        elif sent is None:
            if not issued.store:
                raise Rejected("encrypted_content_missing", param=f"{where}.encrypted_content", id=item_id)
        elif sent != issued.encrypted:
            raise Rejected("encrypted_content_mismatch", param=f"{where}.encrypted_content", id=item_id)

    def _check_replay(self, items: list[dict[str, Any]], previous: Stored | None) -> None:
        """Replayed items: no duplicates, reasoning with its follower, the whole history in order."""
        seen = set(previous.lineage) if previous else set()
        replayed: list[tuple[int, str]] = []
        for n, item in enumerate(items):
            item_id = item.get("id")
            if not isinstance(item_id, str) or item_id not in self.issued or item.get("type") in _OUTPUT_TYPES:
                continue
            if item_id in seen:
                raise Rejected("duplicate_item", param=f"input[{n}].id", id=item_id)
            seen.add(item_id)
            replayed.append((n, item_id))
            following = self.issued[item_id].following_id
            if item["type"] == "reasoning" and following is not None:
                after = items[n + 1] if n + 1 < len(items) else None
                if not isinstance(after, dict) or after.get("id") != following:
                    raise Rejected("reasoning_without_following", param=f"input[{n}]", id=item_id)
        if previous is not None or not replayed:
            return
        # Ours: the service tolerates some omissions, but a client that drops items loses context.
        latest = max((self.issued[i].response_id for _, i in replayed), key=lambda r: self.order[r])
        expected = [i for i in self.stored[latest].lineage if i in self.issued]  # minus deleted
        actual = [i for _, i in replayed]
        for position, want in enumerate(expected):
            if want not in actual:
                issued = self.issued[want]
                raise Rejected("history_incomplete", param="input", id=want, type=issued.item["type"],
                               response=issued.response_id)
            if actual[position] != want:
                raise Rejected("history_out_of_order", param=f"input[{replayed[position][0]}]",
                               id=actual[position], expected=want)
        if len(actual) > len(expected):
            n, extra = replayed[len(expected)]
            raise Rejected("history_out_of_order", param=f"input[{n}]", id=extra, expected="(nothing)")

    # -- recording an answer --------------------------------------------------------------------------

    def record(self, request: Request, place: Continuation, response: dict[str, Any],
               encrypted: dict[str, str], input_tokens: int) -> None:
        output = response["output"]
        lineage = (list(place.previous.lineage) if place.previous else []) + [
            i["id"] for i in request.items if i.get("id") in self.issued and i.get("type") not in _OUTPUT_TYPES
        ] + [i["id"] for i in output if isinstance(i.get("id"), str)]
        self.stored[response["id"]] = Stored(
            response=response, store=request.store, context=place.context + output, lineage=lineage,
            computer_tool=request.computer_tool, input_tokens=input_tokens,
        )
        self.order[response["id"]] = len(self.order)
        for position, item in enumerate(output):
            if isinstance(item.get("id"), str):
                following = output[position + 1].get("id") if position + 1 < len(output) else None
                self.issued[item["id"]] = Issued(
                    item=copy.deepcopy(item), response_id=response["id"], store=request.store,
                    encrypted=encrypted.get(item["id"]), following_id=following,
                )


def _check_calls(context: list[dict[str, Any]], first_new: int) -> None:
    """Every call has exactly one output after it; outputs name a call; checks acknowledged."""
    calls: dict[str, list[Any]] = {}  # call_id → [kind, item, answered]
    approvals: dict[str, bool] = {}  # mcp_approval_request id → answered
    for position, item in enumerate(context):
        kind = item.get("type")
        if kind == "mcp_approval_request":
            approvals[item["id"]] = False
        elif kind == "mcp_approval_response":
            asked = item.get("approval_request_id")
            where = f"input[{position - first_new}]"
            if asked not in approvals:
                raise Rejected("unknown_approval_request", param=f"{where}.approval_request_id", id=asked)
            if approvals[asked]:
                raise Rejected("duplicate_approval_response", param=where, id=asked)
            approvals[asked] = True
        if kind in _CALL_TYPES:
            calls[item["call_id"]] = [kind, item, False]
        elif kind in _OUTPUT_TYPES:
            call_id = item["call_id"]
            want = kind.removesuffix("_output")
            where = f"input[{position - first_new}]"
            call = calls.get(call_id)
            if call is None or call[0] != want:
                rule = {"computer_call": "unknown_computer_call", "function_call": "unknown_function_call",
                        "custom_tool_call": "unknown_custom_tool_call"}[want]
                raise Rejected(rule, param=where, call_id=call_id)
            if call[2]:
                raise Rejected("duplicate_tool_output", param=where, call_id=call_id)
            call[2] = True
            if want == "computer_call" and position >= first_new:
                acked = {c.get("id") for c in item.get("acknowledged_safety_checks") or []}
                missing = [c["id"] for c in call[1].get("pending_safety_checks") or [] if c["id"] not in acked]
                if missing:
                    ids = "[" + ", ".join(f"'{i}'" for i in missing) + "]"
                    raise Rejected("unacknowledged_safety_check", param=where, ids=ids)
    for call_id, (kind, _, answered) in calls.items():
        if not answered:
            rule = {"computer_call": "no_computer_call_output", "function_call": "no_function_call_output",
                    "custom_tool_call": "no_custom_tool_call_output"}[kind]
            raise Rejected(rule, param="input", call_id=call_id)
