"""The Anthropic stand-in's HTTP server: ``POST /v1/messages``, records, faults, streaming."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# The HTTP plumbing (threaded server, TCP resets) is the Responses stand-in's; only routes differ.
from ..loopback import LoopbackHandler, LoopbackServer, reset_connection
from .contract import Request, check_headers, check_request
from .reasons import REASONS, Rejected
from .script import PromptCache, ScriptedTurn, ScriptError, Turn, TurnState, build_message, sse_events

FAULT_KINDS = ("429", "529", "500", "reset", "cut_stream", "error_event")
_SECRET_HEADERS = frozenset({"x-api-key", "authorization", "cookie", "proxy-authorization"})


@dataclass
class RequestRecord:
    """One HTTP request (secret headers redacted)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    request_id: str
    status: int | None = None  # None: no answer (a reset)
    fault: str | None = None
    rule: str | None = None


@dataclass(frozen=True)
class Rejection:
    rule: str
    status: int
    message: str
    record: RequestRecord


@dataclass
class _Fault:
    kind: str
    remaining: int
    opts: dict[str, Any]


class StandIn:
    """A strict stand-in of the Messages API on loopback; a (sync or async) context manager.

    :param turns: ``Turn``s, or callables ``(body, TurnState) -> Turn``, answered in order.
    :param api_key: the key clients must send (``x-api-key``); ``None`` takes any non-empty key.
    :param final_text: answer every request after the script with this text (default: a 400).

    ``base_url`` is the root (``http://127.0.0.1:PORT``): clients POST ``{base_url}/v1/messages``,
    as the SDK does with ``ANTHROPIC_BASE_URL`` and as a LiteLLM proxy is addressed.
    """

    def __init__(self, turns: Iterable[ScriptedTurn] = (), *, api_key: str | None = "sk-ant-test",
                 final_text: str | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.turns: list[ScriptedTurn] = list(turns)
        self.api_key = api_key
        self.final_text = final_text
        self.host, self.port = host, port
        self.requests: list[Any] = []  # bodies of every POST /v1/messages (faulted and refused too)
        self.accepted: list[Request] = []  # the requests that passed the rules and were answered
        self.records: list[RequestRecord] = []
        self.rejections: list[Rejection] = []
        self.messages: list[dict[str, Any]] = []  # every assistant message answered
        self.script_errors: list[BaseException] = []
        self.memory: dict[str, Any] = {}
        self.turn_index = 0
        self.signatures: dict[str, str] = {}  # thinking signature → the thinking it signs
        self.cache = PromptCache()
        self._lock = threading.RLock()
        self._faults: list[_Fault] = []
        self._stopping = threading.Event()
        self._httpd: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> "StandIn":
        if self._httpd is None:
            self._httpd = LoopbackServer((self.host, self.port), self._handle)
            self.port = self._httpd.server_address[1]
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"cua-anthropic-standin-{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def check(self) -> None:
        if self.script_errors:
            raise self.script_errors[0]

    def __enter__(self) -> "StandIn":
        return self.start()

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.stop()
        if exc_type is None:
            self.check()

    async def __aenter__(self) -> "StandIn":
        return self.start()

    async def __aexit__(self, exc_type: Any, *rest: Any) -> None:
        self.__exit__(exc_type, *rest)

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the stand-in server is not started")
        return f"http://{self.host}:{self.port}"

    def inject(self, kind: str, *, times: int = 1, **opts: Any) -> None:
        """Make the next ``times`` requests fail with ``kind`` (``FAULT_KINDS``). ``retry_after``
        (seconds) and ``retry_after_ms`` for 429; ``headers`` (extra headers) for any."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        unknown = set(opts) - {"headers"} - ({"retry_after", "retry_after_ms"} if kind == "429" else set())
        if unknown or times < 1:
            raise ValueError(f"fault {kind!r}: bad options {sorted(unknown)} or times {times}")
        with self._lock:
            self._faults.append(_Fault(kind, times, opts))

    def images(self) -> list[bytes]:
        """Every image of the newest accepted request, in order."""
        with self._lock:
            return [i.data for i in self.accepted[-1].images] if self.accepted else []

    # -- HTTP --------------------------------------------------------------------------------------

    def _handle(self, handler: LoopbackHandler, method: str) -> None:
        request_id = "req_" + secrets.token_hex(12)
        path = urlsplit(handler.path).path
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        shown = {k: ("<redacted>" if k in _SECRET_HEADERS else v) for k, v in headers.items()}
        record = RequestRecord(method, path, shown, body, request_id)
        messages = method == "POST" and path.rstrip("/") == "/v1/messages"
        with self._lock:
            self.records.append(record)
            if messages:
                self.requests.append(body)
        try:
            if not messages:
                raise Rejected("not_found", method=method, path=path)
            fault = self._take_fault()
            if fault is not None:
                record.fault = fault.kind
                self._play_fault(handler, record, fault, body)
                return
            check_headers(headers, self.api_key)
            if raw and body is None or isinstance(body, str):
                raise Rejected("invalid_json")
            with self._lock:
                request = check_request(body, headers, self.signatures)
                message = self._answer(request)
                self.accepted.append(request)
            if body.get("stream"):
                self._send_stream(handler, record, sse_events(message))
            else:
                self._send_json(handler, record, 200, message)
        except Rejected as rejected:
            self._send_error(handler, record, rejected)
        except ScriptError as exc:
            with self._lock:
                self.script_errors.append(exc)
            self._send_error(handler, record, Rejected("script_error", error=str(exc)), {"x-should-retry": "false"})
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True
        except Exception as exc:  # a bug of the stand-in: surface it to the test
            with self._lock:
                self.script_errors.append(exc)
            self._send_error(handler, record, Rejected("script_error", error=repr(exc)), {"x-should-retry": "false"})

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

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.pop(0)
            return fault

    def _play_fault(self, handler: LoopbackHandler, record: RequestRecord, fault: _Fault, body: Any) -> None:
        extra = {str(k): str(v) for k, v in (fault.opts.get("headers") or {}).items()}
        if fault.kind == "429":
            if "retry_after_ms" in fault.opts:
                extra.setdefault("retry-after-ms", str(fault.opts["retry_after_ms"]))
            extra.setdefault("retry-after", str(fault.opts.get("retry_after", 1)))
            self._send_error(handler, record, Rejected("rate_limit"), extra)
        elif fault.kind == "529":
            self._send_error(handler, record, Rejected("overloaded"), extra)
        elif fault.kind == "500":
            self._send_error(handler, record, Rejected("api_error"), extra)
        elif fault.kind == "reset":
            reset_connection(handler)
        elif not (isinstance(body, dict) and body.get("stream")):  # not streamed: half a body, then a reset
            if fault.kind == "error_event":
                self._send_error(handler, record, Rejected("overloaded"), extra)
                return
            data = json.dumps({"id": "msg_cut", "type": "message", "content": []}).encode()
            record.status = 200
            handler.send_response(200)
            for name, value in {**self._headers(record), **extra}.items():
                handler.send_header(name, value)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data[: len(data) // 2])
            reset_connection(handler)
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
            self._send_stream(handler, record, events, cut=fault.kind == "cut_stream")

    # -- answers -----------------------------------------------------------------------------------

    def _headers(self, record: RequestRecord) -> dict[str, str]:
        return {"request-id": record.request_id, "anthropic-organization-id": "org-standin"}

    def _send_json(self, handler: LoopbackHandler, record: RequestRecord, status: int, payload: Any,
                   extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        record.status = status
        handler.send_response(status)
        for name, value in {**self._headers(record), **(extra or {})}.items():
            handler.send_header(name, value)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()

    def _send_error(self, handler: LoopbackHandler, record: RequestRecord, rejected: Rejected,
                    extra: dict[str, str] | None = None) -> None:
        record.rule = rejected.rule
        if record.fault is None:
            with self._lock:
                self.rejections.append(Rejection(rejected.rule, rejected.reason.status, rejected.message, record))
        payload = {"type": "error", "error": {"type": rejected.reason.type, "message": rejected.message},
                   "request_id": record.request_id}
        self._send_json(handler, record, rejected.reason.status, payload, extra)

    def _send_stream(self, handler: LoopbackHandler, record: RequestRecord, events: list[dict[str, Any]],
                     *, cut: bool = False) -> None:
        record.status = 200
        handler.send_response(200)
        for name, value in self._headers(record).items():
            handler.send_header(name, value)
        handler.send_header("content-type", "text/event-stream; charset=utf-8")
        handler.send_header("cache-control", "no-cache")
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        for event in events:
            chunk = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
            handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            handler.wfile.flush()
        if cut:
            reset_connection(handler)
            return
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()
