"""The Gemini stand-in's HTTP server: routes, the key, the conversation's rules, faults, SSE."""

from __future__ import annotations

import base64
import copy
import json
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ...providers.google.models import (
    CURRENT_FUNCTIONS,
    LEGACY_FUNCTIONS,
    PREDEFINED_FUNCTIONS,
    action_set_for,
    signs_thoughts,
)
from ..loopback import Fault, LoopbackHandler, RequestRecord, VendorStandIn
from .rules import REASONS, Rejected, camelized, check_schema, png_size
from .script import ScriptedTurn, ScriptError, Turn, TurnState

FAULT_KINDS = ("429", "500", "503", "reset", "cut_stream")
ENVIRONMENTS = ("ENVIRONMENT_BROWSER", "ENVIRONMENT_DESKTOP", "ENVIRONMENT_MOBILE", "ENVIRONMENT_UNSPECIFIED")
_GRID_ARGS = ("x", "y", "destination_x", "destination_y", "magnitude")


class StandIn(VendorStandIn):
    """A strict stand-in of the Gemini API's ``generateContent`` on loopback; a context manager.

    :param turns: the script: ``Turn``s or callables ``(request, TurnState) -> Turn``.
    :param api_key: the key clients must send (``x-goog-api-key`` or ``?key=``); None takes any.

    ``inject(kind, times=1, **options)`` makes the next generateContent requests fail with
    ``kind`` (``FAULT_KINDS``); ``retry_delay`` (seconds) rides on a 429's RetryInfo.
    """

    thread_name = "cua-gemini-standin"
    fault_kinds = FAULT_KINDS
    fault_options = {"429": frozenset({"retry_delay"})}
    any_fault_options = frozenset()
    status_faults = {"500": "internal", "503": "unavailable"}
    secret_headers = frozenset({"x-goog-api-key"})
    request_id_bytes = None
    no_retry_headers: dict[str, str] = {}  # Google sends no x-should-retry
    json_content_type = "application/json; charset=UTF-8"
    stream_headers = {"content-type": "text/event-stream"}
    rejected_type = Rejected
    script_error_type = ScriptError

    def __init__(self, turns: Iterable[ScriptedTurn] = (), *, api_key: str | None = "gm-test",
                 host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.turns = list(turns)
        self.api_key = api_key
        self.requests: list[Any] = []  # bodies of every generateContent request, faulted ones too
        self.replies: list[dict[str, Any]] = []
        self.screenshots: list[bytes] = []  # the newest image of each accepted request
        self.issued: list[dict[str, Any]] = []  # model contents sent, in order (camelCase)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- HTTP ---------------------------------------------------------------------------------------

    def route(self, handler: LoopbackHandler, record: RequestRecord, raw: bytes) -> None:
        body = record.body
        url = urlsplit(handler.path)
        path = unquote(url.path).removeprefix("/v1beta/").removeprefix("/v1/")
        model, _, verb = path.removeprefix("models/").partition(":")
        creating = (record.method == "POST" and path.startswith("models/")
                    and verb in ("generateContent", "streamGenerateContent"))
        stream = verb == "streamGenerateContent"
        if creating:
            with self._lock:
                self.requests.append(body)
        self._authenticate(handler, parse_qs(url.query))
        if not creating:
            raise Rejected("not_found")
        fault = self.take_fault(record)
        if fault is not None:
            self._play_fault(handler, record, fault, stream)
            return
        if not (model.startswith("gemini-") or model == "scripted"):
            raise Rejected("unknown_model", model=model)
        if not isinstance(body, dict):
            raise Rejected("invalid_json", detail="The body must be a JSON object.")
        with self._lock:
            reply = self._generate(model, body)
        if stream:
            self.send_stream(handler, record, [f"data: {json.dumps(chunk)}\r\n\r\n" for chunk in _chunks(reply)])
        else:
            self.send_json(handler, record, 200, reply)

    def _authenticate(self, handler: LoopbackHandler, query: dict[str, list[str]]) -> None:
        key = handler.headers.get("x-goog-api-key", "").strip() or (query.get("key") or [""])[0]
        if not key:
            raise Rejected("missing_api_key")
        if self.api_key is not None and key != self.api_key:
            raise Rejected("invalid_api_key", details=[{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}])

    def _play_fault(self, handler: LoopbackHandler, record: RequestRecord, fault: Fault, stream: bool) -> None:
        if self.play_error_or_reset(handler, record, fault):
            return
        kind, opts = fault.kind, fault.opts
        if kind == "429":
            delay = opts.get("retry_delay", 1)
            self.send_error(handler, record, Rejected("rate_limited", wait=delay, details=[
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                 "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_requests"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay}s"}]))
        elif stream:  # cut_stream: a first chunk, then the connection drops
            thought = {"text": "Looking at the", "thought": True}
            chunk = {"candidates": [{"content": {"role": "model", "parts": [thought]}}]}
            self.send_stream(handler, record, [f"data: {json.dumps(chunk)}\r\n\r\n"], cut=True)
        else:
            self.send_cut_json(handler, record, {"candidates": [{"content": {"role": "model", "parts": []}}]})

    # -- one request --------------------------------------------------------------------------------

    def _generate(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        check_schema(body)
        request = camelized(body)
        contents = request.get("contents") or []
        if not contents:
            raise Rejected("no_contents")
        tools = request.get("tools") or []
        computer = [t["computerUse"] for t in tools if "computerUse" in t]
        if not computer:
            raise Rejected("no_computer_use")
        for n, tool in enumerate(tools):
            if "computerUse" in tool and tool["computerUse"].get("environment") not in ENVIRONMENTS:
                raise Rejected("bad_environment", index=n, value=tool["computerUse"].get("environment"))
        excluded = computer[0].get("excludedPredefinedFunctions") or []
        for name in excluded:
            if name not in PREDEFINED_FUNCTIONS:
                raise Rejected("unknown_excluded", name=name)
        declared = {d.get("name") for t in tools for d in t.get("functionDeclarations") or []}
        screen = self._check_contents(contents, computer[0].get("environment"))
        index = self.turn_index
        if index >= len(self.turns):
            raise Rejected("script_exhausted", index=index, count=len(self.turns))
        turn = self.turns[index]
        if not isinstance(turn, Turn):
            try:
                turn = turn(request, TurnState(index, request, screen, self.memory))
            except ScriptError:
                raise
            except Exception as exc:
                raise ScriptError(f"turn {index} raised {exc!r}") from exc
        offered = set(LEGACY_FUNCTIONS if action_set_for(model) == "legacy" else CURRENT_FUNCTIONS) - set(excluded)
        reply = self._reply(model, turn, offered, declared)
        self.turn_index += 1
        return reply

    def _check_contents(self, contents: list[dict[str, Any]], environment: str | None) -> tuple[int, int] | None:
        """The conversation's rules; returns the size of the newest screenshot."""
        screen = None
        model_turns = 0
        pending: list[dict[str, Any]] | None = None  # the calls the previous model content made
        for i, content in enumerate(contents):
            role = content.get("role") or "user"
            parts = content.get("parts") or []
            if role not in ("user", "model"):
                raise Rejected("bad_role")
            if not parts:
                raise Rejected("empty_parts", index=i)
            for part in parts:
                for blob in [part.get("inlineData")] + [p.get("inlineData") for p in
                                                        (part.get("functionResponse") or {}).get("parts") or []]:
                    if blob and blob.get("mimeType") == "image/png":
                        screen = png_size(blob.get("data") or "")
            if role == "model":
                if pending:
                    raise Rejected("response_count")
                self._check_replayed(i, content, model_turns)
                pending = [p["functionCall"] for p in parts if "functionCall" in p] or None
                model_turns += 1
                continue
            responses = [(n, p["functionResponse"]) for n, p in enumerate(parts) if "functionResponse" in p]
            if responses and not pending:
                raise Rejected("response_not_after_call")
            if pending:
                if len(responses) != len(pending):
                    raise Rejected("response_count")
                newest = i == len(contents) - 1
                for (n, response), call in zip(responses, pending):
                    self._check_response(i, n, response, call, environment, newest)
            pending = None
        if pending:
            raise Rejected("response_count")
        if self.issued and len(contents) == 1 and not any("functionResponse" in p for p in contents[0].get("parts") or []):
            # generateContent is stateless (each request carries its whole conversation): a lone
            # question begins a new conversation, like the one an ai_check's judge asks. A request
            # that drops part of a conversation still answers calls, and is refused below.
            self.issued.clear()
        if model_turns != len(self.issued):
            raise Rejected("missing_model_turn", got=model_turns, want=len(self.issued))
        newest_image = self._newest_image(contents)
        if newest_image is not None:
            self.screenshots.append(newest_image)
        return screen

    def _check_replayed(self, i: int, content: dict[str, Any], k: int) -> None:
        if k >= len(self.issued):
            raise Rejected("altered_model_turn", index=i, detail="the stand-in sent no such turn")
        sent = self.issued[k]
        parts, sent_parts = content.get("parts") or [], sent["parts"]
        for n, part in enumerate(sent_parts):
            if "functionCall" in part and "thoughtSignature" in part and n < len(parts) \
                    and "thoughtSignature" not in parts[n]:
                raise Rejected("missing_thought_signature", name=part["functionCall"].get("name"), position=i + 1)
        if len(parts) != len(sent_parts):
            raise Rejected("altered_model_turn", index=i, detail=f"{len(parts)} parts instead of {len(sent_parts)}")
        for n, (part, want) in enumerate(zip(parts, sent_parts)):
            if part != want:
                keys = sorted(k for k in set(part) | set(want) if part.get(k) != want.get(k))
                raise Rejected("altered_model_turn", index=i, detail=f"part {n}: {', '.join(keys)} changed")

    def _check_response(self, i: int, n: int, response: dict[str, Any], call: dict[str, Any],
                        environment: str | None, newest: bool) -> None:
        name = call.get("name")
        if response.get("name") != name:
            raise Rejected("response_name", index=i, part=n, got=response.get("name"), want=name)
        if name not in PREDEFINED_FUNCTIONS:
            return
        body = response.get("response") or {}
        confirm = isinstance(call.get("args", {}).get("safety_decision"), dict)
        acknowledged = body.get("safety_acknowledgement") in ("true", True)
        if confirm and not acknowledged and "error" not in body:
            raise Rejected("unconfirmed_call", index=i, part=n, name=name)
        if acknowledged and not confirm:
            raise Rejected("needless_acknowledgement", index=i, part=n, name=name)
        if environment == "ENVIRONMENT_BROWSER" and "url" not in body:
            raise Rejected("missing_url", index=i, part=n, name=name)
        images = [p for p in response.get("parts") or [] if (p.get("inlineData") or {}).get("mimeType") == "image/png"]
        if newest and not images:
            raise Rejected("missing_screenshot", index=i, part=n, name=name)

    @staticmethod
    def _newest_image(contents: list[dict[str, Any]]) -> bytes | None:
        for content in reversed(contents):
            for part in reversed(content.get("parts") or []):
                blobs = [part.get("inlineData")] + [p.get("inlineData") for p in
                                                    (part.get("functionResponse") or {}).get("parts") or []]
                for blob in reversed([b for b in blobs if b]):
                    return base64.b64decode(blob["data"])
        return None

    def _reply(self, model: str, turn: Turn, offered: set[str], declared: set[Any]) -> dict[str, Any]:
        if turn.block_reason:
            reply: dict[str, Any] = {"promptFeedback": {"blockReason": turn.block_reason},
                                     "usageMetadata": {"promptTokenCount": 100, "totalTokenCount": 100}}
            self.replies.append(reply)
            return reply
        parts = copy.deepcopy(turn.parts)
        signed = False
        for part in parts:
            call = part.get("functionCall")
            if call is None:
                continue
            name, args = call.get("name"), call.setdefault("args", {})
            if name not in offered and name not in declared:
                raise ScriptError(f"the model cannot call {name!r}: not offered to {model} "
                                  f"(offered: {', '.join(sorted(offered | declared))})")
            for key in _GRID_ARGS:
                if key in args and not (isinstance(args[key], int) and 0 <= args[key] <= 999):
                    raise ScriptError(f"{name}: {key}={args[key]!r} is not a 0-999 grid value")
            if signs_thoughts(model) and not signed:
                part["thoughtSignature"] = base64.b64encode(secrets.token_bytes(48)).decode()
                signed = True
        content = {"role": "model", "parts": parts}
        if parts:
            self.issued.append(copy.deepcopy(content))
        usage = turn.usage or {"promptTokenCount": 1200, "candidatesTokenCount": 40, "thoughtsTokenCount": 25,
                               "cachedContentTokenCount": 800}
        usage.setdefault("totalTokenCount", usage.get("promptTokenCount", 0) + usage.get("candidatesTokenCount", 0)
                         + usage.get("thoughtsTokenCount", 0))
        candidate: dict[str, Any] = {"content": content, "finishReason": turn.finish_reason, "index": 0}
        reply = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
                 "responseId": secrets.token_urlsafe(12)}
        self.replies.append(reply)
        return reply

    # -- answers ------------------------------------------------------------------------------------

    def error_body(self, rejected: Rejected, record: RequestRecord) -> dict[str, Any]:
        error: dict[str, Any] = {"code": rejected.reason.status, "message": rejected.message,
                                 "status": rejected.reason.status_name}
        if rejected.details:
            error["details"] = rejected.details
        return {"error": error}


def _chunks(reply: dict[str, Any]) -> list[dict[str, Any]]:
    """A reply as the streaming endpoint sends it: text parts in two pieces, other parts whole,
    the finish reason and usage on the last chunk."""
    if not reply.get("candidates"):
        return [reply]
    candidate = reply["candidates"][0]
    pieces: list[dict[str, Any]] = []
    for part in candidate["content"]["parts"]:
        text = part.get("text")
        if isinstance(text, str) and len(text) > 1 and set(part) <= {"text", "thought"}:
            half = len(text) // 2
            pieces += [{**part, "text": text[:half]}, {**part, "text": text[half:]}]
        else:
            pieces.append(part)
    chunks = [{"candidates": [{"content": {"role": "model", "parts": [p]}, "index": 0}],
               "modelVersion": reply["modelVersion"], "responseId": reply["responseId"]} for p in pieces]
    if not chunks:
        chunks = [{"candidates": [{"content": {"role": "model", "parts": []}, "index": 0}]}]
    last = chunks[-1]
    last["candidates"][0]["finishReason"] = candidate["finishReason"]
    last["usageMetadata"] = reply["usageMetadata"]
    return chunks


__all__ = ["FAULT_KINDS", "REASONS", "StandIn"]
