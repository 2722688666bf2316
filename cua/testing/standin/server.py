"""The stand-in's HTTP server: routes, authentication, records, injected faults and streaming."""

from __future__ import annotations

import json
import re
import select
import socket
from collections.abc import Iterable
from typing import Any, Literal
from urllib.parse import unquote

from ..loopback import Fault, LoopbackHandler, Rejection, RequestRecord, VendorStandIn
from .contract import Request, check_request
from .conversation import Continuation, Ledger
from .events import sse_events
from .reasons import Rejected
from .script import ScriptedTurn, ScriptError, Turn, TurnState, build_response, new_id

SSEStyle = Literal["full", "completed_only", "done_marker"]
IdStyle = Literal["openai", "litellm"]

FAULT_KINDS = ("429", "insufficient_quota", "500", "503", "reset", "cut_stream", "slow")
_ROUTE = re.compile(r"^(?:/openai/v1|/v1)?/responses(?:/([^/]+)(/cancel)?)?/?$")


class StandIn(VendorStandIn):
    """The stand-in Responses server. Use it as a (sync or async) context manager, or
    ``start()``/``stop()`` it.

    :param turns: the script: each entry a list of output item dicts, a ``Turn``, or a callable
        ``(request_body, TurnState) -> list | Turn`` that reacts to what it received.
    :param api_key: the key clients must send (``Authorization: Bearer …`` or ``api-key: …``);
        ``None`` accepts any non-empty key but still requires one.
    :param final_message: answer to requests after the script is exhausted; ``None`` (default)
        makes that a 400 ``script_exhausted`` error.
    :param sse_style: ``"full"`` (the service), ``"completed_only"`` or ``"done_marker"`` (proxies).
    :param id_style: ``"litellm"`` issues long base64 response ids the way a LiteLLM proxy
        rewrites them (``+``, ``/`` and ``=`` included), to prove a client treats ids as opaque.

    ``inject(kind, times=1, **options)`` makes the next ``POST /responses`` fail with ``kind`` (see
    ``FAULT_KINDS``): ``retry_after`` (seconds, → ``retry-after``) and ``retry_after_ms`` for ``429``;
    ``delay`` (seconds, default 1) for ``slow``; ``headers`` (extra response headers) for any.
    """

    thread_name = "cua-standin"
    fault_kinds = FAULT_KINDS
    fault_options = {"429": frozenset({"retry_after", "retry_after_ms"}), "slow": frozenset({"delay"})}
    secret_headers = frozenset({"authorization", "api-key", "x-api-key", "cookie", "proxy-authorization"})
    status_faults = {"insufficient_quota": "insufficient_quota", "500": "server_error", "503": "overloaded"}
    internal_error_rule = "internal_error"
    rejected_type = Rejected
    script_error_type = ScriptError

    def __init__(
        self,
        turns: Iterable[ScriptedTurn] = (),
        *,
        api_key: str | None = "sk-test",
        final_message: str | None = None,
        sse_style: SSEStyle = "full",
        id_style: IdStyle = "openai",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if sse_style not in ("full", "completed_only", "done_marker"):
            raise ValueError(f"sse_style must be 'full', 'completed_only' or 'done_marker', got {sse_style!r}")
        self.turns: list[ScriptedTurn] = list(turns)
        self.api_key = api_key
        self.final_message = final_message
        self.sse_style: SSEStyle = sse_style
        if id_style not in ("openai", "litellm"):
            raise ValueError(f"id_style must be 'openai' or 'litellm', got {id_style!r}")
        self.id_style: IdStyle = id_style
        super().__init__(host=host, port=port)
        self.requests: list[Any] = []  # bodies of every POST /responses, in order (faulted ones too)
        self.responses: list[dict[str, Any]] = []  # every response answered, in order
        self.screenshots: list[bytes] = []  # PNGs the "model" saw, from accepted requests
        self._answered_calls: set[str] = set()  # call ids whose screenshot is in screenshots
        self._ledger = Ledger()

    # -- public helpers ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def azure_base_url(self) -> str:
        return f"{self.root_url}/openai/v1"

    def last_screenshot(self) -> bytes | None:
        """PNG bytes of the most recent computer_call_output the stand-in accepted."""
        with self._lock:
            return self.screenshots[-1] if self.screenshots else None

    def last_response(self) -> dict[str, Any] | None:
        with self._lock:
            return self.responses[-1] if self.responses else None

    # -- HTTP -------------------------------------------------------------------------------------

    def route(self, handler: LoopbackHandler, record: RequestRecord, raw: bytes) -> None:
        method, path, body = record.method, record.path, record.body
        match = _ROUTE.match(path)
        creating = bool(match) and method == "POST" and match.group(1) is None
        if creating:
            with self._lock:
                self.requests.append(body)
        self._authenticate(handler)
        if match is None:
            raise Rejected("invalid_url", method=method, path=path)
        response_id, cancel = unquote(match.group(1) or ""), match.group(2)
        if creating:
            self._create(handler, record, body)
        elif response_id and cancel and method == "POST":
            response = self._lookup(response_id)
            if not response.get("background"):
                raise Rejected("cancel_not_background")
            # A background response is answered at once, so it has already finished.
            self.send_json(handler, record, 200, response)
        elif response_id and not cancel and method == "GET":
            self.send_json(handler, record, 200, self._lookup(response_id))
        elif response_id and not cancel and method == "DELETE":
            self._delete(response_id)
            self.send_json(handler, record, 200, {"id": response_id, "object": "response.deleted", "deleted": True})
        else:
            raise Rejected("invalid_url", method=method, path=path)

    def _authenticate(self, handler: LoopbackHandler) -> None:
        bearer = handler.headers.get("authorization", "")
        key = bearer[7:].strip() if bearer.lower().startswith("bearer ") else ""
        key = key or handler.headers.get("api-key", "").strip()
        if not key:
            raise Rejected("missing_api_key")
        if self.api_key is not None and key != self.api_key:
            masked = key[:3] + "*" * max(len(key) - 7, 3) + key[-4:] if len(key) > 8 else "*" * len(key)
            raise Rejected("invalid_api_key", masked=masked)

    def answer_headers(self, record: RequestRecord) -> dict[str, str]:
        return {"x-request-id": str(record.request_id), "openai-version": "2020-10-01",
                "openai-processing-ms": "12"}

    def error_body(self, rejected: Rejected, record: RequestRecord) -> dict[str, Any]:
        return {"error": {"message": rejected.message, "type": rejected.reason.type,
                          "param": rejected.param, "code": rejected.reason.code}}

    def rejection(self, rejected: Rejected, record: RequestRecord) -> Rejection:
        return Rejection(rejected.rule, rejected.reason.status, rejected.message, record,
                         param=rejected.param, code=rejected.reason.code)

    # -- retrieve / delete ------------------------------------------------------------------------

    def _lookup(self, response_id: str) -> dict[str, Any]:
        with self._lock:
            return self._ledger.lookup(response_id).response

    def _delete(self, response_id: str) -> None:
        with self._lock:
            self._ledger.delete(response_id)

    # -- create -----------------------------------------------------------------------------------

    def _create(self, handler: LoopbackHandler, record: RequestRecord, body: Any) -> None:
        fault = self.take_fault(record)
        if fault is not None:
            if fault.kind == "slow":
                self._stopping.wait(float(fault.opts.get("delay", 1.0)))
                if _peer_gone(handler.connection):
                    handler.close_connection = True
                    return
            else:
                self._play_fault(handler, record, fault, body)
                return
        if not isinstance(body, dict):
            raise Rejected("invalid_json")
        with self._lock:
            request = check_request(body)
            response = self._answer(request, self._ledger.place(request))
            # Only screenshots answering calls for the first time: a stateless request replays
            # the earlier ones (or their placeholders) too.
            outputs = [i for i in request.items if i.get("type") == "computer_call_output"]
            fresh = [shot.data for item, shot in zip(outputs, request.screenshots)
                     if item.get("call_id") not in self._answered_calls and shot.data is not None]
            self._answered_calls.update(str(i.get("call_id")) for i in outputs)
            self.screenshots.extend(fresh[-1:])
        if body.get("stream"):
            self.send_stream(handler, record, _frames(sse_events(response), self.sse_style))
        else:
            self.send_json(handler, record, 200, response)

    def _play_fault(self, handler: LoopbackHandler, record: RequestRecord, fault: Fault, body: Any) -> None:
        if self.play_error_or_reset(handler, record, fault):
            return
        extra = fault.headers
        model = body.get("model") if isinstance(body, dict) else None
        if fault.kind == "429":
            wait = "1s"
            if "retry_after_ms" in fault.opts:
                extra.setdefault("retry-after-ms", str(fault.opts["retry_after_ms"]))
                wait = f"{fault.opts['retry_after_ms']}ms"
            if "retry_after" in fault.opts:
                extra.setdefault("retry-after", str(fault.opts["retry_after"]))
                wait = f"{fault.opts['retry_after']}s"
            extra.setdefault("x-ratelimit-remaining-tokens", "0")
            self.send_error(handler, record, Rejected("rate_limit_exceeded", model=model or "gpt", wait=wait), extra)
        elif fault.kind == "cut_stream":
            partial = {"id": new_id("resp"), "object": "response", "status": "in_progress",
                       "model": model, "output": []}
            if isinstance(body, dict) and body.get("stream"):
                reasoning = {"type": "reasoning", "id": new_id("rs"), "summary": []}
                events = [
                    {"type": "response.created", "response": partial},
                    {"type": "response.in_progress", "response": partial},
                    {"type": "response.output_item.added", "output_index": 0, "item": reasoning},
                    {"type": "response.reasoning_summary_text.delta", "item_id": reasoning["id"],
                     "output_index": 0, "summary_index": 0, "delta": "Looking at the"},
                ]
                for number, event in enumerate(events):
                    event["sequence_number"] = number
                self.send_stream(handler, record, _frames(events, self.sse_style, cut=True), cut=True)
            else:
                self.send_cut_json(handler, record, partial, extra)

    # -- answering --------------------------------------------------------------------------------

    def _answer(self, request: Request, place: Continuation) -> dict[str, Any]:
        """Play the next scripted turn for a valid request and commit it. Caller holds the lock."""
        index = self.turn_index
        if index < len(self.turns):
            turn = self.turns[index]
            if callable(turn) and not isinstance(turn, Turn):
                state = TurnState(
                    index=index, request=request.body, tool_format=request.fmt, display=request.display,
                    screenshots=[s.data for s in request.screenshots if s.data is not None],
                    call_outputs=[i for i in request.items if i.get("type", "").endswith("_call_output")],
                    previous=place.previous.response if place.previous else None, memory=self.memory,
                )
                try:
                    turn = turn(request.body, state)
                except Exception as exc:
                    raise ScriptError(f"turn {index} raised {exc!r}") from exc
        elif self.final_message is not None:
            turn = Turn.message(self.final_message)
        else:
            raise Rejected("script_exhausted", count=len(self.turns))
        if isinstance(turn, list):
            turn = Turn(output=turn)
        if not isinstance(turn, Turn):
            raise ScriptError(f"turn {index} must be a list of items or a Turn, got {type(turn).__name__}")

        response, encrypted, input_tokens = build_response(turn, request, place, index, self.id_style)
        self._ledger.record(request, place, response, encrypted, input_tokens)
        if index < len(self.turns):
            self.turn_index += 1
        self.responses.append(response)
        return response


def _frames(events: list[dict[str, Any]], style: SSEStyle, *, cut: bool = False) -> list[str]:
    """The SSE frames of ``events`` as the service (``full``) or a proxy sends them."""
    if style == "completed_only" and not cut:
        events = [dict(events[-1], sequence_number=0)]
    frames = []
    for event in events:
        data = json.dumps(event)
        frames.append(f"event: {event['type']}\ndata: {data}\n\n" if style == "full" else f"data: {data}\n\n")
    if style == "done_marker" and not cut:
        frames.append("data: [DONE]\n\n")
    return frames


def _peer_gone(conn: socket.socket) -> bool:
    """True when the client closed its side (e.g. it timed out while a ``slow`` fault waited)."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True
