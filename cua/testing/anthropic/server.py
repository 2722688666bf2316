"""The Anthropic stand-in's HTTP server: ``POST /v1/messages``, records, faults, streaming."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any

from ..loopback import Fault, LoopbackHandler, RequestRecord, VendorStandIn
from .contract import Request, check_headers, check_request
from .reasons import REASONS, Rejected
from .script import PromptCache, ScriptedTurn, ScriptError, Turn, TurnState, build_message, sse_events

FAULT_KINDS = ("429", "529", "500", "reset", "cut_stream", "error_event")


class StandIn(VendorStandIn):
    """A strict stand-in of the Messages API on loopback; a (sync or async) context manager.

    :param turns: ``Turn``s, or callables ``(body, TurnState) -> Turn``, answered in order.
    :param api_key: the key clients must send (``x-api-key``); ``None`` takes any non-empty key.
    :param final_text: answer every request after the script with this text (default: a 400).

    ``base_url`` is the root (``http://127.0.0.1:PORT``): clients POST ``{base_url}/v1/messages``,
    as the SDK does with ``ANTHROPIC_BASE_URL`` and as a LiteLLM proxy is addressed.
    ``inject(kind, times=1, **options)`` makes the next requests fail with ``kind``
    (``FAULT_KINDS``): ``retry_after`` (seconds) and ``retry_after_ms`` for 429; ``headers``
    (extra headers) for any.
    """

    thread_name = "cua-anthropic-standin"
    fault_kinds = FAULT_KINDS
    fault_options = {"429": frozenset({"retry_after", "retry_after_ms"})}
    secret_headers = frozenset({"x-api-key", "authorization", "cookie", "proxy-authorization"})
    status_faults = {"529": "overloaded", "500": "api_error"}
    request_id_bytes = 12
    rejected_type = Rejected
    script_error_type = ScriptError

    def __init__(self, turns: Iterable[ScriptedTurn] = (), *, api_key: str | None = "sk-ant-test",
                 final_text: str | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.turns: list[ScriptedTurn] = list(turns)
        self.api_key = api_key
        self.final_text = final_text
        self.requests: list[Any] = []  # bodies of every POST /v1/messages (faulted and refused too)
        self.accepted: list[Request] = []  # the requests that passed the rules and were answered
        self.messages: list[dict[str, Any]] = []  # every assistant message answered
        self.signatures: dict[str, str] = {}  # thinking signature → the thinking it signs
        self.cache = PromptCache()

    @property
    def base_url(self) -> str:
        return self.root_url

    def images(self) -> list[bytes]:
        """Every image of the newest accepted request, in order."""
        with self._lock:
            return [i.data for i in self.accepted[-1].images] if self.accepted else []

    # -- HTTP --------------------------------------------------------------------------------------

    def route(self, handler: LoopbackHandler, record: RequestRecord, raw: bytes) -> None:
        body = record.body
        if not (record.method == "POST" and record.path.rstrip("/") == "/v1/messages"):
            raise Rejected("not_found", method=record.method, path=record.path)
        with self._lock:
            self.requests.append(body)
        fault = self.take_fault(record)
        if fault is not None:
            self._play_fault(handler, record, fault, body)
            return
        headers = {k.lower(): v for k, v in handler.headers.items()}
        check_headers(headers, self.api_key)
        if raw and body is None or isinstance(body, str):
            raise Rejected("invalid_json")
        with self._lock:
            request = check_request(body, headers, self.signatures)
            message = self._answer(request)
            self.accepted.append(request)
        if body.get("stream"):
            self.send_stream(handler, record, _frames(sse_events(message)))
        else:
            self.send_json(handler, record, 200, message)

    def _answer(self, request: Request) -> dict[str, Any]:
        index = self.turn_index
        if index < len(self.turns):
            turn = self.turns[index]
            if callable(turn) and not isinstance(turn, Turn):
                last = request.messages[-1]["content"]
                state = TurnState(index, request.body, [b for b in last if b.get("type") == "tool_result"], self.memory)
                try:
                    turn = turn(request.body, state)
                except Exception as exc:
                    raise ScriptError(f"turn {index} raised {exc!r}") from exc
            if not isinstance(turn, Turn):
                raise ScriptError(f"turn {index} must be a Turn, got {type(turn).__name__}")
        elif self.final_text is not None:
            turn = Turn.text(self.final_text)
        else:
            raise Rejected("script_exhausted", count=len(self.turns))
        output_tokens = 20 + 30 * len(turn.content)
        message = build_message(turn, request, request.body["model"], self.signatures,
                                self.cache.usage(request, output_tokens))
        if index < len(self.turns):
            self.turn_index += 1
        self.messages.append(message)
        return message

    def _play_fault(self, handler: LoopbackHandler, record: RequestRecord, fault: Fault, body: Any) -> None:
        if self.play_error_or_reset(handler, record, fault):
            return
        extra = fault.headers
        if fault.kind == "429":
            if "retry_after_ms" in fault.opts:
                extra.setdefault("retry-after-ms", str(fault.opts["retry_after_ms"]))
            extra.setdefault("retry-after", str(fault.opts.get("retry_after", 1)))
            self.send_error(handler, record, Rejected("rate_limit"), extra)
        elif not (isinstance(body, dict) and body.get("stream")):  # not streamed: half a body, then a reset
            if fault.kind == "error_event":
                self.send_error(handler, record, Rejected("overloaded"), extra)
                return
            self.send_cut_json(handler, record, {"id": "msg_cut", "type": "message", "content": []}, extra)
        else:  # cut_stream, error_event: a stream that starts well and breaks off or errs
            start = {"id": "msg_" + secrets.token_hex(12), "type": "message", "role": "assistant",
                     "model": body.get("model") if isinstance(body, dict) else None, "content": [],
                     "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}
            events = [{"type": "message_start", "message": start},
                      {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                      {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me"}}]
            if fault.kind == "error_event":
                reason = REASONS["overloaded"]
                events.append({"type": "error", "error": {"type": reason.type, "message": reason.template}})
            self.send_stream(handler, record, _frames(events), cut=fault.kind == "cut_stream")

    # -- answers -----------------------------------------------------------------------------------

    def answer_headers(self, record: RequestRecord) -> dict[str, str]:
        return {"request-id": str(record.request_id), "anthropic-organization-id": "org-standin"}

    def error_body(self, rejected: Rejected, record: RequestRecord) -> dict[str, Any]:
        return {"type": "error", "error": {"type": rejected.reason.type, "message": rejected.message},
                "request_id": record.request_id}


def _frames(events: list[dict[str, Any]]) -> list[str]:
    return [f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events]
