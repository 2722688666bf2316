"""A strict stand-in for the Responses API, served over real HTTP on loopback.

No model API is reachable from tests, so every test of a computer-use flow talks to this server.
It plays scripted model turns and, above all, rejects what the real service rejects, with the
service's error shapes and messages: a flow that only passes because the stand-in is lax would be
a false test.

    from cua.testing.standin import StandIn, Turn

    with StandIn(turns=[Turn.call({"type": "click", "x": 10, "y": 20}), Turn.message("done")]) as server:
        client = httpx.Client(base_url=server.base_url, headers={"Authorization": "Bearer sk-test"})
        ...
        assert server.last_screenshot() is not None

Choices made where the wire contract is silent (see also ``REASONS``):

* An exhausted script is an error by default (400, code ``script_exhausted``): a loop that asks for
  more turns than the test scripted is usually the bug under test. Pass ``final_message="..."`` to
  answer every extra request with that final assistant message instead.
* A broken script (a preview turn with two actions, a callable that raises) answers 500 with
  ``x-should-retry: false`` and is raised again when the ``with`` block ends (or by ``check()``).
* Stateless requests (no ``previous_response_id``) that replay earlier output items must replay
  EVERY output item of the conversation, in the order it was issued. The real service tolerates
  some omissions; the stand-in does not, because a client that drops items loses context.
* Faults are applied before the body is even validated, like a gateway would, and never consume
  a scripted turn. ``slow`` answers normally after its delay (consuming the turn) unless the
  client hung up meanwhile.
* ``cancel`` answers 400 for every existing response: only ``background`` responses can be
  cancelled and the stand-in (like cua) never creates them.
* SSE styles ``completed_only`` and ``done_marker`` imitate proxies: ``data:`` lines only, no
  ``event:`` lines, so a client must read the event type from the payload. In ``full`` style the
  ``output_item.added`` copy of an item is incomplete (reasoning without summary or
  encrypted_content, messages without content, calls ``in_progress``): only ``.done`` counts.
* ``requests`` holds the bodies of ``POST …/responses`` only; ``records`` holds every request.
  ``rejections`` holds requests the stand-in refused, not injected faults (see ``record.fault``).
* Replayed items are checked by id against what was issued: a changed field, an added field or an
  unknown id is rejected; the first problem found per item wins over sequence problems.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import secrets
import select
import socket
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Union
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError
from ..responses.models import ToolFormat, tool_format_for

__all__ = [
    "REASONS",
    "FAULT_KINDS",
    "KNOWN_PARAMETERS",
    "Reason",
    "Rejection",
    "RequestRecord",
    "ScriptError",
    "StandIn",
    "Turn",
    "TurnState",
    "png_size",
]

SSEStyle = Literal["full", "completed_only", "done_marker"]
IdStyle = Literal["openai", "litellm"]

KNOWN_PARAMETERS = (
    "model", "input", "tools", "instructions", "previous_response_id", "truncation", "store",
    "include", "reasoning", "stream", "metadata", "temperature", "top_p", "max_output_tokens",
    "parallel_tool_calls", "tool_choice", "user", "text", "service_tier",
)
ENVIRONMENTS = ("browser", "mac", "windows", "ubuntu", "linux")
INCLUDABLE = (
    "reasoning.encrypted_content", "computer_call_output.output.image_url",
    "message.output_text.logprobs", "message.input_image.image_url", "file_search_call.results",
    "web_search_call.results", "web_search_call.action.sources", "code_interpreter_call.outputs",
)
TOOL_TYPES = (
    "function", "computer", "computer_use_preview", "file_search", "web_search",
    "web_search_preview", "code_interpreter", "image_generation", "mcp", "local_shell", "custom",
)
INPUT_ITEM_TYPES = (
    "message", "reasoning", "computer_call", "computer_call_output", "function_call",
    "function_call_output",
)
FAULT_KINDS = ("429", "insufficient_quota", "500", "503", "reset", "cut_stream", "slow")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "cookie", "proxy-authorization"})
_ROUTE = re.compile(r"^(?:/openai/v1|/v1)?/responses(?:/([^/]+)(/cancel)?)?/?$")


# --- Why a request is rejected: data, so tests can assert the exact messages ---------------------


@dataclass(frozen=True)
class Reason:
    """One rejection rule: the HTTP status, the error ``type``/``code`` and the message template."""

    status: int
    type: str
    code: str | None
    template: str

    def message(self, **fields: Any) -> str:
        return self.template.format(**fields)


_INVALID = "invalid_request_error"

REASONS: dict[str, Reason] = {
    # HTTP level
    "invalid_json": Reason(400, _INVALID, None,
        "We could not parse the JSON body of your request: the body must be a JSON object "
        "sent with Content-Type: application/json."),
    "invalid_url": Reason(404, _INVALID, None, "Invalid URL ({method} {path})"),
    "missing_api_key": Reason(401, _INVALID, None,
        "You didn't provide an API key. Send it in an Authorization header using Bearer auth "
        "(Authorization: Bearer YOUR_KEY) or in an api-key header."),
    "invalid_api_key": Reason(401, _INVALID, "invalid_api_key",
        "Incorrect API key provided: {masked}. Check the key this client was configured with."),
    "response_not_found": Reason(404, _INVALID, None, "Response with id '{id}' not found."),
    "cancel_not_background": Reason(400, _INVALID, None,
        "Only responses created with background=true can be cancelled."),
    # the request body
    "unknown_parameter": Reason(400, _INVALID, "unknown_parameter", "Unknown parameter: '{param}'."),
    "missing_parameter": Reason(400, _INVALID, "missing_required_parameter",
        "Missing required parameter: '{param}'."),
    "invalid_type": Reason(400, _INVALID, "invalid_type",
        "Invalid type for '{param}': expected {expected}, but got {got} instead."),
    "invalid_value": Reason(400, _INVALID, "invalid_value",
        "Invalid value: '{value}'. Supported values are: {supported}."),
    "below_minimum": Reason(400, _INVALID, "integer_below_min_value",
        "Invalid '{param}': integer below minimum value. Expected a value >= 1, but got {value} instead."),
    # tools
    "tool_not_supported": Reason(400, _INVALID, None, "Tool '{tool}' is not supported with {model}."),
    "truncation_required": Reason(400, _INVALID, "invalid_value",
        "The computer_use_preview tool requires 'truncation' to be 'auto' (got '{value}')."),
    "computer_tool_required": Reason(400, _INVALID, None,
        "The input continues a computer-use conversation, so 'tools' must include the "
        "'{tool}' tool on every request."),
    # conversation state
    "previous_response_not_found": Reason(400, _INVALID, "previous_response_not_found",
        "Previous response with id '{id}' not found."),
    "no_computer_call_output": Reason(400, _INVALID, None,
        "No tool output found for computer call {call_id}."),
    "no_function_call_output": Reason(400, _INVALID, None,
        "No tool output found for function call {call_id}."),
    "unknown_computer_call": Reason(400, _INVALID, None,
        "No tool call found for computer call output with call_id {call_id}."),
    "unknown_function_call": Reason(400, _INVALID, None,
        "No tool call found for function call output with call_id {call_id}."),
    "duplicate_tool_output": Reason(400, _INVALID, None,
        "Duplicate tool output for call_id {call_id}: each call takes exactly one output."),
    "unacknowledged_safety_check": Reason(400, _INVALID, None,
        "Computer tool has unacknowledged safety check for {ids}"),
    # screenshots
    "screenshot_not_data_url": Reason(400, _INVALID, "invalid_image_url",
        "Invalid '{param}': expected a base64 data URL of a PNG image ('data:image/png;base64,...')."),
    "screenshot_not_png": Reason(400, _INVALID, "invalid_image",
        "Invalid '{param}': the data URL does not decode to a valid PNG image."),
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
        "Duplicate item found with id {id}. Remove duplicate items from your input and try again."),
    "reasoning_without_following": Reason(400, _INVALID, None,
        "Item '{id}' of type 'reasoning' was provided without its required following item."),
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
        "Requested 1200. Please try again in {wait}."),
    "insufficient_quota": Reason(429, "insufficient_quota", "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details."),
    "server_error": Reason(500, "server_error", None,
        "The server had an error while processing your request. Sorry about that!"),
    "overloaded": Reason(503, "server_error", None,
        "The server is overloaded or not ready yet."),
}


class _Reject(Exception):
    def __init__(self, rule: str, *, param: str | None = None, **fields: Any) -> None:
        self.rule = rule
        self.reason = REASONS[rule]
        self.param = param
        self.message = self.reason.message(param=param, **fields)
        super().__init__(self.message)


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


def _action_dict(action: Any) -> dict[str, Any]:
    if hasattr(action, "model_dump"):
        return action.model_dump(mode="json", exclude_none=True)
    if not isinstance(action, dict):
        raise ScriptError(f"an action must be a dict or a cua action, got {type(action).__name__}")
    return dict(action)


def _reasoning_item(summary: str | list[str] | None) -> list[dict[str, Any]]:
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
        output = _reasoning_item(reasoning)
        if commentary is not None:
            output.append({"type": "message", "content": commentary})  # GA: phase "commentary"
        output.append({
            "type": "computer_call",
            "actions": [_action_dict(a) for a in actions],
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
        return cls(output=_reasoning_item(reasoning) + [item], usage=usage)

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
        return cls(output=_reasoning_item(reasoning) + [item], usage=usage)


@dataclass
class TurnState:
    """What a callable turn gets besides the request body."""

    index: int  # position of this turn in the script (0-based)
    request: dict[str, Any]
    tool_format: ToolFormat
    display: tuple[int, int] | None  # preview tool's display_width × display_height
    screenshots: list[bytes]  # PNGs of this request's computer_call_outputs, in input order
    call_outputs: list[dict[str, Any]]  # the computer_call_output / function_call_output items
    previous: dict[str, Any] | None  # the response named by previous_response_id
    memory: dict[str, Any]  # kept across turns for the callable's own use

    @property
    def screenshot(self) -> bytes | None:
        """The most recent screenshot in this request, if any."""
        return self.screenshots[-1] if self.screenshots else None


ScriptedTurn = Union[list[dict[str, Any]], Turn, Callable[[dict[str, Any], TurnState], Any]]


# --- Records -------------------------------------------------------------------------------------


@dataclass
class RequestRecord:
    """One HTTP request the stand-in received (secrets in headers are redacted)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    request_id: str
    status: int | None = None  # None: no answer was sent (a reset, or the client hung up)
    fault: str | None = None
    rule: str | None = None  # the rejection rule, when the request was rejected


@dataclass(frozen=True)
class Rejection:
    rule: str
    status: int
    message: str
    param: str | None
    code: str | None
    record: RequestRecord


@dataclass
class _Fault:
    kind: str
    remaining: int
    opts: dict[str, Any]


@dataclass
class _Issued:
    item: dict[str, Any]
    response_id: str
    store: bool
    encrypted: str | None
    following_id: str | None


@dataclass
class _Stored:
    response: dict[str, Any]
    store: bool
    context: list[dict[str, Any]]  # the whole conversation up to and including the output
    lineage: list[str]  # ids of issued items in ``context``, in order
    computer_tool: dict[str, Any] | None
    input_tokens: int


@dataclass
class _Plan:
    """A validated create request, ready to be answered."""

    body: dict[str, Any]
    model: str
    fmt: ToolFormat
    computer_tool: dict[str, Any] | None
    include_encrypted: bool
    store: bool
    previous: _Stored | None
    items: list[dict[str, Any]]
    context: list[dict[str, Any]]
    screenshots: list[bytes]


# --- PNG and small helpers -----------------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a complete PNG (signature, IHDR with a good CRC, IEND), else None."""
    if len(data) < 45 or not data.startswith(_PNG_SIGNATURE) or not data.endswith(_PNG_END):
        return None
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR" or length != 13:
        return None
    width, height = struct.unpack(">II", data[16:24])
    (crc,) = struct.unpack(">I", data[29:33])
    if zlib.crc32(data[12:29]) != crc or not width or not height:
        return None
    return width, height


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def _json_type(value: Any) -> str:
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


def _supported(values: Iterable[str]) -> str:
    values = [f"'{v}'" for v in values]
    return ", ".join(values[:-1]) + f", and {values[-1]}" if len(values) > 1 else values[0]


def _require(item: dict[str, Any], key: str, where: str) -> Any:
    if item.get(key) is None:
        raise _Reject("missing_parameter", param=f"{where}.{key}")
    return item[key]


def _only_keys(item: dict[str, Any], allowed: Iterable[str], where: str) -> None:
    allowed = set(allowed)
    for key in item:
        if key not in allowed:
            raise _Reject("unknown_parameter", param=f"{where}.{key}")


def _expect(value: Any, kinds: tuple[type, ...], expected: str, param: str) -> None:
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not ok:
        raise _Reject("invalid_type", param=param, expected=expected, got=_json_type(value))


def _chunks(text: str, size: int = 12) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


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


# --- The server ----------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    standin: StandIn

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client hanging up (or being reset) is ordinary, not worth a traceback
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm meets the
        # client's delayed ACK and every keep-alive answer waits ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.standin._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.standin._connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # tests read ``server.records`` instead of stderr noise

    def do_POST(self) -> None:
        self.server.standin._handle(self, "POST")

    def do_GET(self) -> None:
        self.server.standin._handle(self, "GET")

    def do_DELETE(self) -> None:
        self.server.standin._handle(self, "DELETE")

    def do_PUT(self) -> None:
        self.server.standin._handle(self, "PUT")

    def do_PATCH(self) -> None:
        self.server.standin._handle(self, "PATCH")


class StandIn:
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
    """

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
        self.host = host
        self.port = port
        self.requests: list[Any] = []  # bodies of every POST /responses, in order (faulted ones too)
        self.records: list[RequestRecord] = []  # every HTTP request, with metadata
        self.rejections: list[Rejection] = []
        self.responses: list[dict[str, Any]] = []  # every response answered, in order
        self.screenshots: list[bytes] = []  # PNGs the "model" saw, from accepted requests
        self._answered_calls: set[str] = set()  # call ids whose screenshot is in screenshots
        self.script_errors: list[BaseException] = []
        self.memory: dict[str, Any] = {}  # shared scratch space for callable turns
        self.turn_index = 0  # scripted turns answered so far
        self._lock = threading.RLock()
        self._faults: list[_Fault] = []
        self._stored: dict[str, _Stored] = {}
        self._issued: dict[str, _Issued] = {}
        self._order: dict[str, int] = {}  # response id → creation order
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> StandIn:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self.port), _Handler)
        self._httpd.standin = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"cua-standin-{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        for conn in list(self._connections):  # idle keep-alive connections would outlive us
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def check(self) -> None:
        """Raise the first script error (a callable that raised, a malformed turn), if any."""
        if self.script_errors:
            raise self.script_errors[0]

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.stop()
        if exc_type is None:
            self.check()

    async def __aenter__(self) -> StandIn:
        return self.start()

    async def __aexit__(self, exc_type: Any, *rest: Any) -> None:
        self.__exit__(exc_type, *rest)

    # -- public helpers ---------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        """Base URL without a version prefix (how a LiteLLM proxy is addressed)."""
        if self._httpd is None:
            raise RuntimeError("the stand-in server is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def azure_base_url(self) -> str:
        return f"{self.root_url}/openai/v1"

    def inject(self, kind: str, *, times: int = 1, **opts: Any) -> None:
        """Make the next ``times`` ``POST /responses`` fail with ``kind`` (see ``FAULT_KINDS``).

        Options: ``retry_after`` (seconds, → ``retry-after``) and ``retry_after_ms`` for ``429``;
        ``delay`` (seconds, default 1) for ``slow``; ``headers`` (extra response headers) for any.
        """
        allowed = {"headers"} | {
            "429": {"retry_after", "retry_after_ms"}, "slow": {"delay"},
        }.get(kind, set())
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        if times < 1:
            raise ValueError(f"times must be 1 or more, got {times}")
        unknown = set(opts) - allowed
        if unknown:
            raise ValueError(f"fault {kind!r} takes no option(s) {', '.join(sorted(unknown))}")
        with self._lock:
            self._faults.append(_Fault(kind, times, opts))

    def last_screenshot(self) -> bytes | None:
        """PNG bytes of the most recent computer_call_output the stand-in accepted."""
        with self._lock:
            return self.screenshots[-1] if self.screenshots else None

    def last_response(self) -> dict[str, Any] | None:
        with self._lock:
            return self.responses[-1] if self.responses else None

    # -- HTTP -------------------------------------------------------------------------------------

    def _handle(self, handler: _Handler, method: str) -> None:
        request_id = "req_" + secrets.token_hex(16)
        path = urlsplit(handler.path).path
        raw = self._read_body(handler)
        headers = {
            k.lower(): ("<redacted>" if k.lower() in _SECRET_HEADERS else v)
            for k, v in handler.headers.items()
        }
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        record = RequestRecord(method, path, headers, body, request_id)
        match = _ROUTE.match(path)
        creating = bool(match) and method == "POST" and match.group(1) is None
        with self._lock:
            self.records.append(record)
            if creating:
                self.requests.append(body)
        try:
            self._authenticate(handler)
            if match is None:
                raise _Reject("invalid_url", method=method, path=path)
            response_id, cancel = unquote(match.group(1) or ""), match.group(2)
            if creating:
                self._create(handler, record, body)
            elif response_id and cancel and method == "POST":
                self._lookup(response_id)
                raise _Reject("cancel_not_background")
            elif response_id and not cancel and method == "GET":
                self._send_json(handler, record, 200, self._lookup(response_id)["response"])
            elif response_id and not cancel and method == "DELETE":
                self._delete(response_id)
                self._send_json(handler, record, 200,
                                {"id": response_id, "object": "response.deleted", "deleted": True})
            else:
                raise _Reject("invalid_url", method=method, path=path)
        except _Reject as rejected:
            self._send_error(handler, record, rejected)
        except ScriptError as exc:
            with self._lock:
                self.script_errors.append(exc)
            self._send_error(handler, record, _Reject("script_error", error=str(exc)),
                             {"x-should-retry": "false"})
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True
        except Exception as exc:  # a bug of the stand-in: surface it to the test, loudly
            with self._lock:
                self.script_errors.append(exc)
            self._send_error(handler, record, _Reject("internal_error", error=repr(exc)),
                             {"x-should-retry": "false"})

    @staticmethod
    def _read_body(handler: _Handler) -> bytes:
        if handler.headers.get("transfer-encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += handler.rfile.read(size)
                handler.rfile.readline()
        length = int(handler.headers.get("content-length") or 0)
        return handler.rfile.read(length) if length else b""

    def _authenticate(self, handler: _Handler) -> None:
        bearer = handler.headers.get("authorization", "")
        key = bearer[7:].strip() if bearer.lower().startswith("bearer ") else ""
        key = key or handler.headers.get("api-key", "").strip()
        if not key:
            raise _Reject("missing_api_key")
        if self.api_key is not None and key != self.api_key:
            masked = key[:3] + "*" * max(len(key) - 7, 3) + key[-4:] if len(key) > 8 else "*" * len(key)
            raise _Reject("invalid_api_key", masked=masked)

    def _headers(self, record: RequestRecord) -> dict[str, str]:
        return {"x-request-id": record.request_id, "openai-version": "2020-10-01",
                "openai-processing-ms": "12"}

    def _send_json(
        self, handler: _Handler, record: RequestRecord, status: int, payload: Any,
        extra: dict[str, str] | None = None,
    ) -> None:
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

    def _send_error(
        self, handler: _Handler, record: RequestRecord, rejected: _Reject,
        extra: dict[str, str] | None = None,
    ) -> None:
        reason = rejected.reason
        record.rule = rejected.rule
        if record.fault is None:  # injected faults are not rejections of the request
            with self._lock:
                self.rejections.append(Rejection(
                    rejected.rule, reason.status, rejected.message, rejected.param, reason.code, record
                ))
        payload = {"error": {"message": rejected.message, "type": reason.type,
                             "param": rejected.param, "code": reason.code}}
        self._send_json(handler, record, reason.status, payload, extra)

    # -- retrieve / delete ------------------------------------------------------------------------

    def _lookup(self, response_id: str) -> dict[str, Any]:
        with self._lock:
            stored = self._stored.get(response_id)
            if stored is None or not stored.store:
                raise _Reject("response_not_found", id=response_id)
            return {"response": stored.response}

    def _delete(self, response_id: str) -> None:
        with self._lock:
            self._lookup(response_id)
            self._stored.pop(response_id)
            for item_id in [i for i, rec in self._issued.items() if rec.response_id == response_id]:
                del self._issued[item_id]

    # -- create -----------------------------------------------------------------------------------

    def _create(self, handler: _Handler, record: RequestRecord, body: Any) -> None:
        fault = self._take_fault()
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == "slow":
                self._stopping.wait(float(fault.opts.get("delay", 1.0)))
                if _peer_gone(handler.connection):
                    handler.close_connection = True
                    return
            else:
                self._play_fault(handler, record, fault, body)
                return
        if not isinstance(body, dict):
            raise _Reject("invalid_json")
        with self._lock:
            plan = self._validate(body)
            response, screenshots = self._answer(plan)
            # Only screenshots answering calls for the first time: a stateless request replays
            # the earlier ones (or their placeholders) too.
            outputs = [i for i in body.get("input") or [] if isinstance(i, dict)
                       and i.get("type") == "computer_call_output"]
            fresh = [png for item, png in zip(outputs, screenshots)
                     if item.get("call_id") not in self._answered_calls]
            self._answered_calls.update(str(i.get("call_id")) for i in outputs)
            self.screenshots.extend(fresh[-1:])
        if body.get("stream"):
            self._send_stream(handler, record, _sse_events(response), self.sse_style)
        else:
            self._send_json(handler, record, 200, response)

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.pop(0)
            return fault

    def _play_fault(self, handler: _Handler, record: RequestRecord, fault: _Fault, body: Any) -> None:
        extra = {str(k): str(v) for k, v in (fault.opts.get("headers") or {}).items()}
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
            self._send_error(handler, record, _Reject("rate_limit_exceeded", model=model or "gpt", wait=wait), extra)
        elif fault.kind == "insufficient_quota":
            self._send_error(handler, record, _Reject("insufficient_quota"), extra)
        elif fault.kind == "500":
            self._send_error(handler, record, _Reject("server_error"), extra)
        elif fault.kind == "503":
            self._send_error(handler, record, _Reject("overloaded"), extra)
        elif fault.kind == "reset":
            _reset(handler)
        elif fault.kind == "cut_stream":
            partial = {"id": _new_id("resp"), "object": "response", "status": "in_progress",
                       "model": model, "output": []}
            if isinstance(body, dict) and body.get("stream"):
                reasoning = {"type": "reasoning", "id": _new_id("rs"), "summary": []}
                events = [
                    {"type": "response.created", "response": partial},
                    {"type": "response.in_progress", "response": partial},
                    {"type": "response.output_item.added", "output_index": 0, "item": reasoning},
                    {"type": "response.reasoning_summary_text.delta", "item_id": reasoning["id"],
                     "output_index": 0, "summary_index": 0, "delta": "Looking at the"},
                ]
                for number, event in enumerate(events):
                    event["sequence_number"] = number
                self._send_stream(handler, record, events, self.sse_style, cut=True)
            else:
                data = json.dumps(partial).encode()
                record.status = 200
                handler.send_response(200)
                for name, value in {**self._headers(record), **extra}.items():
                    handler.send_header(name, value)
                handler.send_header("content-type", "application/json")
                handler.send_header("content-length", str(len(data)))
                handler.end_headers()
                handler.wfile.write(data[: len(data) // 2])
                handler.wfile.flush()
                _reset(handler)

    def _send_stream(
        self, handler: _Handler, record: RequestRecord, events: list[dict[str, Any]],
        style: SSEStyle, *, cut: bool = False,
    ) -> None:
        record.status = 200
        handler.send_response(200)
        for name, value in self._headers(record).items():
            handler.send_header(name, value)
        handler.send_header("content-type", "text/event-stream; charset=utf-8")
        handler.send_header("cache-control", "no-cache")
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        if style == "completed_only" and not cut:
            events = [dict(events[-1], sequence_number=0)]
        frames = []
        for event in events:
            data = json.dumps(event)
            frames.append(f"event: {event['type']}\ndata: {data}\n\n" if style == "full" else f"data: {data}\n\n")
        if style == "done_marker" and not cut:
            frames.append("data: [DONE]\n\n")
        for frame in frames:
            chunk = frame.encode()
            handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            handler.wfile.flush()
        if cut:
            _reset(handler)
            return
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()

    # -- validation -------------------------------------------------------------------------------

    def _validate(self, body: dict[str, Any]) -> _Plan:
        for key in body:
            if key not in KNOWN_PARAMETERS:
                raise _Reject("unknown_parameter", param=key)
        model = body.get("model")
        if model is None:
            raise _Reject("missing_parameter", param="model")
        _expect(model, (str,), "a string", "model")
        types: dict[str, tuple[tuple[type, ...], str]] = {
            "input": ((str, list), "a string or an array"), "tools": ((list,), "an array"),
            "instructions": ((str,), "a string"), "previous_response_id": ((str,), "a string"),
            "truncation": ((str,), "a string"), "store": ((bool,), "a boolean"),
            "include": ((list,), "an array"), "reasoning": ((dict,), "an object"),
            "stream": ((bool,), "a boolean"), "metadata": ((dict,), "an object"),
            "temperature": ((int, float), "a decimal"), "top_p": ((int, float), "a decimal"),
            "max_output_tokens": ((int,), "an integer"), "parallel_tool_calls": ((bool,), "a boolean"),
            "tool_choice": ((str, dict), "a string or an object"), "user": ((str,), "a string"),
            "text": ((dict,), "an object"), "service_tier": ((str,), "a string"),
        }
        for key, (kinds, expected) in types.items():
            if body.get(key) is not None:
                _expect(body[key], kinds, expected, key)
        truncation = body.get("truncation") or "disabled"
        if truncation not in ("auto", "disabled"):
            raise _Reject("invalid_value", param="truncation", value=truncation,
                          supported=_supported(["auto", "disabled"]))
        include = body.get("include") or []
        for n, entry in enumerate(include):
            if entry not in INCLUDABLE:
                raise _Reject("invalid_value", param=f"include[{n}]", value=entry, supported=_supported(INCLUDABLE))
        if body.get("reasoning") is not None:
            _only_keys(body["reasoning"], ("effort", "summary", "generate_summary"), "reasoning")

        fmt = tool_format_for(model)
        computer_tool = self._check_tools(model, fmt, body.get("tools") or [])
        if computer_tool is not None and computer_tool["type"] == "computer_use_preview" and truncation != "auto":
            raise _Reject("truncation_required", param="truncation", value=truncation)

        previous = None
        if body.get("previous_response_id") is not None:
            previous = self._stored.get(body["previous_response_id"])
            if previous is None or not previous.store:
                raise _Reject("previous_response_not_found", param="previous_response_id",
                              id=body["previous_response_id"])

        raw_input = body.get("input")
        if raw_input is None:
            items: list[Any] = []
        elif isinstance(raw_input, str):
            items = [{"type": "message", "role": "user",
                      "content": [{"type": "input_text", "text": raw_input}]}]
        else:
            items = list(raw_input)
        display = (computer_tool["display_width"], computer_tool["display_height"]) if (
            computer_tool is not None and fmt == "preview") else None
        screenshots: list[bytes] = []
        for n, item in enumerate(items):
            screenshot = self._check_item(n, item, display)
            if screenshot is not None:
                screenshots.append(screenshot)

        context = (previous.context if previous else []) + items
        self._check_replay(items, previous)
        if computer_tool is None and any(
            i.get("type") in ("computer_call", "computer_call_output") for i in context
        ):
            raise _Reject("computer_tool_required", param="tools",
                          tool="computer_use_preview" if fmt == "preview" else "computer")
        self._check_calls(context, first_new=len(context) - len(items))
        return _Plan(
            body=body, model=model, fmt=fmt, computer_tool=computer_tool,
            include_encrypted="reasoning.encrypted_content" in include,
            store=body.get("store") is not False, previous=previous, items=items,
            context=context, screenshots=screenshots,
        )

    @staticmethod
    def _check_tools(model: str, fmt: ToolFormat, tools: list[Any]) -> dict[str, Any] | None:
        computer = None
        for n, tool in enumerate(tools):
            where = f"tools[{n}]"
            _expect(tool, (dict,), "an object", where)
            kind = _require(tool, "type", where)
            if kind == "computer_use_preview":
                if fmt != "preview":
                    raise _Reject("tool_not_supported", param="tools", tool=kind, model=model)
                _only_keys(tool, ("type", "display_width", "display_height", "environment"), where)
                for key in ("display_width", "display_height"):
                    value = _require(tool, key, where)
                    _expect(value, (int,), "an integer", f"{where}.{key}")
                    if value < 1:
                        raise _Reject("below_minimum", param=f"{where}.{key}", value=value)
                environment = _require(tool, "environment", where)
                if environment not in ENVIRONMENTS:
                    raise _Reject("invalid_value", param=f"{where}.environment", value=environment,
                                  supported=_supported(ENVIRONMENTS))
                computer = tool
            elif kind == "computer":
                if fmt == "preview":
                    raise _Reject("tool_not_supported", param="tools", tool=kind, model=model)
                _only_keys(tool, ("type",), where)
                computer = tool
            elif kind == "function":
                _only_keys(tool, ("type", "name", "description", "parameters", "strict"), where)
                _expect(_require(tool, "name", where), (str,), "a string", f"{where}.name")
            elif kind not in TOOL_TYPES:
                raise _Reject("invalid_value", param=f"{where}.type", value=kind, supported=_supported(TOOL_TYPES))
        return computer

    def _check_item(self, n: int, item: Any, display: tuple[int, int] | None) -> bytes | None:
        """Check one input item on its own; return the PNG of a computer_call_output."""
        where = f"input[{n}]"
        _expect(item, (dict,), "an object", where)
        kind = item.get("type", "message" if "role" in item else None)
        if kind is None:
            raise _Reject("missing_parameter", param=f"{where}.type")
        if kind not in INPUT_ITEM_TYPES:
            raise _Reject("invalid_value", param=f"{where}.type", value=kind, supported=_supported(INPUT_ITEM_TYPES))
        if kind in ("reasoning", "computer_call", "function_call") or (kind == "message" and "id" in item):
            self._check_issued(n, item, kind)
            return None
        if kind == "message":
            _only_keys(item, ("type", "role", "content", "status", "phase"), where)
            role = _require(item, "role", where)
            if role not in ("user", "assistant", "system", "developer"):
                raise _Reject("invalid_value", param=f"{where}.role", value=role,
                              supported=_supported(["user", "assistant", "system", "developer"]))
            content = _require(item, "content", where)
            _expect(content, (str, list), "a string or an array", f"{where}.content")
            for m, part in enumerate(content if isinstance(content, list) else []):
                _expect(part, (dict,), "an object", f"{where}.content[{m}]")
                part_types = ("input_text", "input_image", "input_file", "output_text", "refusal")
                if part.get("type") not in part_types:
                    raise _Reject("invalid_value", param=f"{where}.content[{m}].type", value=part.get("type"),
                                  supported=_supported(part_types))
            return None
        if kind == "function_call_output":
            _only_keys(item, ("type", "call_id", "output", "id", "status"), where)
            _expect(_require(item, "call_id", where), (str,), "a string", f"{where}.call_id")
            _expect(_require(item, "output", where), (str, list), "a string or an array", f"{where}.output")
            return None
        # computer_call_output
        _only_keys(item, ("type", "call_id", "output", "acknowledged_safety_checks", "current_url", "id", "status"), where)
        _expect(_require(item, "call_id", where), (str,), "a string", f"{where}.call_id")
        output = _require(item, "output", where)
        _expect(output, (dict,), "an object", f"{where}.output")
        out_type = _require(output, "type", f"{where}.output")
        if out_type != "computer_screenshot":
            raise _Reject("invalid_value", param=f"{where}.output.type", value=out_type,
                          supported=_supported(["computer_screenshot"]))
        _only_keys(output, ("type", "image_url", "file_id", "detail"), f"{where}.output")
        url = _require(output, "image_url", f"{where}.output")
        param = f"{where}.output.image_url"
        prefix = "data:image/png;base64,"
        if not isinstance(url, str) or not url.startswith(prefix):
            raise _Reject("screenshot_not_data_url", param=param)
        try:
            png = base64.b64decode(url[len(prefix):], validate=True)
        except (binascii.Error, ValueError):
            raise _Reject("screenshot_not_png", param=param) from None
        size = png_size(png)
        if size is None:
            raise _Reject("screenshot_not_png", param=param)
        if display is not None and size != display:
            raise _Reject("screenshot_wrong_size", param=param, got=f"{size[0]}x{size[1]}",
                          want=f"{display[0]}x{display[1]}")
        checks = item.get("acknowledged_safety_checks")
        if checks is not None:
            _expect(checks, (list,), "an array", f"{where}.acknowledged_safety_checks")
            for m, check in enumerate(checks):
                _expect(check, (dict,), "an object", f"{where}.acknowledged_safety_checks[{m}]")
                _require(check, "id", f"{where}.acknowledged_safety_checks[{m}]")
        return png

    def _check_issued(self, n: int, item: dict[str, Any], kind: str) -> None:
        """A replayed output item must be one the stand-in issued, unchanged."""
        where = f"input[{n}]"
        item_id = _require(item, "id", where)
        issued = self._issued.get(item_id) if isinstance(item_id, str) else None
        if issued is None or issued.item.get("type") != kind:
            raise _Reject("item_not_found", param=f"{where}.id", id=item_id)
        for key in item:
            if key not in issued.item and key != "encrypted_content":
                raise _Reject("unknown_parameter", param=f"{where}.{key}")
        compared = {
            "computer_call": ("call_id", "action", "actions"),
            "function_call": ("call_id", "name", "arguments"),
            "reasoning": ("summary",),
            "message": ("role", "content"),
        }[kind]
        if kind == "reasoning":
            _require(item, "summary", where)
        for key in compared:
            mine, theirs = issued.item.get(key), item.get(key)
            if key in ("summary", "content"):
                mine, theirs = _texts(mine), _texts(theirs)
            if mine != theirs:
                raise _Reject("item_modified", param=f"{where}.{key}", id=item_id, type=kind, field=key)
        checks = item.get("pending_safety_checks")
        if checks is not None and checks != issued.item.get("pending_safety_checks"):
            raise _Reject("item_modified", param=f"{where}.pending_safety_checks", id=item_id, type=kind,
                          field="pending_safety_checks")
        if kind == "reasoning":
            sent = item.get("encrypted_content")
            if issued.encrypted is None:
                if not issued.store:  # neither persisted nor carried: nothing to replay from
                    raise _Reject("item_not_found", param=f"{where}.id", id=item_id)
                if sent is not None:
                    raise _Reject("encrypted_content_mismatch", param=f"{where}.encrypted_content", id=item_id)
            elif sent is None:
                if not issued.store:
                    raise _Reject("encrypted_content_missing", param=f"{where}.encrypted_content", id=item_id)
            elif sent != issued.encrypted:
                raise _Reject("encrypted_content_mismatch", param=f"{where}.encrypted_content", id=item_id)

    def _check_replay(self, items: list[dict[str, Any]], previous: _Stored | None) -> None:
        """Replayed items: no duplicates, reasoning with its follower, the whole history in order."""
        seen = set(previous.lineage) if previous else set()
        replayed: list[tuple[int, str]] = []
        for n, item in enumerate(items):
            item_id = item.get("id")
            if not isinstance(item_id, str) or item_id not in self._issued or item.get("type") in (
                "computer_call_output", "function_call_output"
            ):
                continue
            if item_id in seen:
                raise _Reject("duplicate_item", param=f"input[{n}].id", id=item_id)
            seen.add(item_id)
            replayed.append((n, item_id))
            following = self._issued[item_id].following_id
            if item["type"] == "reasoning" and following is not None:
                after = items[n + 1] if n + 1 < len(items) else None
                if not isinstance(after, dict) or after.get("id") != following:
                    raise _Reject("reasoning_without_following", param=f"input[{n}]", id=item_id)
        if previous is not None or not replayed:
            return
        latest = max((self._issued[i].response_id for _, i in replayed), key=lambda r: self._order[r])
        expected = [i for i in self._stored[latest].lineage if i in self._issued]  # minus deleted
        actual = [i for _, i in replayed]
        for position, want in enumerate(expected):
            if want not in actual:
                issued = self._issued[want]
                raise _Reject("history_incomplete", param="input", id=want, type=issued.item["type"],
                              response=issued.response_id)
            if actual[position] != want:
                raise _Reject("history_out_of_order", param=f"input[{replayed[position][0]}]",
                              id=actual[position], expected=want)
        if len(actual) > len(expected):
            n, extra = replayed[len(expected)]
            raise _Reject("history_out_of_order", param=f"input[{n}]", id=extra, expected="(nothing)")

    @staticmethod
    def _check_calls(context: list[dict[str, Any]], first_new: int) -> None:
        """Every call has exactly one output after it; outputs name a call; checks acknowledged."""
        calls: dict[str, list[Any]] = {}  # call_id → [kind, item, answered]
        for position, item in enumerate(context):
            kind = item.get("type")
            if kind in ("computer_call", "function_call"):
                calls[item["call_id"]] = [kind, item, False]
            elif kind in ("computer_call_output", "function_call_output"):
                call_id = item["call_id"]
                want = kind.removesuffix("_output")
                where = f"input[{position - first_new}]"
                call = calls.get(call_id)
                if call is None or call[0] != want:
                    rule = "unknown_computer_call" if want == "computer_call" else "unknown_function_call"
                    raise _Reject(rule, param=where, call_id=call_id)
                if call[2]:
                    raise _Reject("duplicate_tool_output", param=where, call_id=call_id)
                call[2] = True
                if want == "computer_call" and position >= first_new:
                    acked = {c.get("id") for c in item.get("acknowledged_safety_checks") or []}
                    missing = [c["id"] for c in call[1].get("pending_safety_checks") or [] if c["id"] not in acked]
                    if missing:
                        ids = "[" + ", ".join(f"'{i}'" for i in missing) + "]"
                        raise _Reject("unacknowledged_safety_check", param=where, ids=ids)
        for call_id, (kind, _, answered) in calls.items():
            if not answered:
                rule = "no_computer_call_output" if kind == "computer_call" else "no_function_call_output"
                raise _Reject(rule, param="input", call_id=call_id)

    # -- answering --------------------------------------------------------------------------------

    def _answer(self, plan: _Plan) -> tuple[dict[str, Any], list[bytes]]:
        """Play the next scripted turn for a valid request and commit it. Caller holds the lock."""
        index = self.turn_index
        if index < len(self.turns):
            turn = self.turns[index]
            if callable(turn) and not isinstance(turn, Turn):
                state = TurnState(
                    index=index, request=plan.body, tool_format=plan.fmt,
                    display=(plan.computer_tool["display_width"], plan.computer_tool["display_height"])
                    if plan.computer_tool is not None and plan.fmt == "preview" else None,
                    screenshots=list(plan.screenshots),
                    call_outputs=[i for i in plan.items if i.get("type", "").endswith("_call_output")],
                    previous=plan.previous.response if plan.previous else None, memory=self.memory,
                )
                try:
                    turn = turn(plan.body, state)
                except Exception as exc:
                    raise ScriptError(f"turn {index} raised {exc!r}") from exc
        elif self.final_message is not None:
            turn = Turn.message(self.final_message)
        else:
            raise _Reject("script_exhausted", count=len(self.turns))
        if isinstance(turn, list):
            turn = Turn(output=turn)
        if not isinstance(turn, Turn):
            raise ScriptError(f"turn {index} must be a list of items or a Turn, got {type(turn).__name__}")

        output = _materialize(turn.output, plan.fmt, index)
        encrypted: dict[str, str] = {}
        for item in output:
            if item["type"] == "reasoning":
                given = item.pop("encrypted_content", None)
                if plan.include_encrypted:
                    token = given or "gAAAAA" + base64.urlsafe_b64encode(secrets.token_bytes(48)).decode()
                    item["encrypted_content"] = encrypted[item["id"]] = token

        response_id = _new_id("resp")
        if self.id_style == "litellm":
            wrapped = f"litellm:custom_llm_provider:openai;model_id:{secrets.token_hex(8)};response_id:{response_id}"
            # two leading bytes make the id start with "+/", so a client must URL-encode it
            response_id = "resp_" + base64.b64encode(b"\xfb\xff" + wrapped.encode()).decode()
        usage = _usage(plan, output, turn.usage)
        body = plan.body
        response: dict[str, Any] = {
            "id": response_id, "object": "response", "created_at": int(time.time()),
            "status": turn.status, "background": False, "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "model": plan.model, "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": (body.get("reasoning") or {}).get("effort", "medium"),
                          "summary": (body.get("reasoning") or {}).get("summary")},
            "service_tier": body.get("service_tier") or "default", "store": plan.store,
            "temperature": body.get("temperature", 1.0), "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0), "truncation": body.get("truncation") or "disabled",
            "usage": usage, "user": body.get("user"), "metadata": body.get("metadata") or {},
        }
        if turn.status == "incomplete":
            response["incomplete_details"] = {"reason": "max_output_tokens"}
        elif turn.status == "failed":
            response["error"] = {"code": "server_error", "message": "The scripted turn failed."}

        context = plan.context + output
        lineage = (list(plan.previous.lineage) if plan.previous else []) + [
            i["id"] for i in plan.items if i.get("id") in self._issued
            and i.get("type") not in ("computer_call_output", "function_call_output")
        ] + [i["id"] for i in output if isinstance(i.get("id"), str)]
        self._stored[response_id] = _Stored(
            response=response, store=plan.store, context=context, lineage=lineage,
            computer_tool=plan.computer_tool, input_tokens=usage["input_tokens"],
        )
        self._order[response_id] = len(self._order)
        for position, item in enumerate(output):
            if isinstance(item.get("id"), str):
                following = output[position + 1].get("id") if position + 1 < len(output) else None
                self._issued[item["id"]] = _Issued(
                    item=copy.deepcopy(item), response_id=response_id, store=plan.store,
                    encrypted=encrypted.get(item["id"]), following_id=following,
                )
        if index < len(self.turns):
            self.turn_index += 1
        self.responses.append(response)
        return response, plan.screenshots


def _materialize(items: Any, fmt: ToolFormat, index: int) -> list[dict[str, Any]]:
    """Fill a scripted turn's items in the way the service would for this tool format."""
    if not isinstance(items, list):
        raise ScriptError(f"turn {index}: output must be a list of item dicts")
    has_call = any(isinstance(i, dict) and i.get("type") in ("computer_call", "function_call") for i in items)
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
            actions = [_action_dict(a) for a in actions]
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
                check.setdefault("id", _new_id("cu_sc"))
                check.setdefault("code", "malicious_instructions")
                check.setdefault("message", _SAFETY_MESSAGES.get(check["code"], "Acknowledge this check to proceed."))
                checks.append(check)
            item = {"type": kind, "id": item.pop("id", None) or _new_id("cu"),
                    "call_id": item.pop("call_id", None) or _new_id("call"), **fields,
                    "pending_safety_checks": checks, "status": item.pop("status", "completed"), **item}
        elif kind == "reasoning":
            summary = [
                {"type": "summary_text", "text": part} if isinstance(part, str) else dict(part)
                for part in item.get("summary") or []
            ]
            item = {"type": kind, "id": item.pop("id", None) or _new_id("rs"), **item, "summary": summary}
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
            item = {"type": kind, "id": item.pop("id", None) or _new_id("msg"), "status": "completed",
                    "role": "assistant", **item, "content": parts}
            if fmt == "computer":
                item.setdefault("phase", "commentary" if has_call else "final_answer")
        elif kind == "function_call":
            if not item.get("name"):
                raise ScriptError(f"{where}: a function_call needs a 'name'")
            arguments = item.get("arguments", {})
            item = {"type": kind, "id": item.pop("id", None) or _new_id("fc"),
                    "call_id": item.pop("call_id", None) or _new_id("call"), "status": "completed", **item,
                    "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}
        output.append(item)
    return output


def _usage(plan: _Plan, output: list[dict[str, Any]], override: dict[str, Any] | None) -> dict[str, Any]:
    chars, images = _count_images([plan.body.get("instructions") or "", plan.context, plan.body.get("tools")])
    input_tokens = max(1, chars // 4) + 765 * images
    reasoning = sum(
        64 + len(json.dumps(i.get("summary"))) // 4 for i in output if i.get("type") == "reasoning"
    )
    visible = sum(len(json.dumps(i)) // 4 for i in output if i.get("type") != "reasoning")
    cached = (plan.previous.input_tokens // 128) * 128 if plan.previous else 0
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


def _added_copy(item: dict[str, Any]) -> dict[str, Any]:
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
    elif kind == "computer_call":
        added["status"] = "in_progress"
    return added


def _sse_events(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The event sequence the service streams for ``response``, numbered."""
    events: list[dict[str, Any]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append({"type": kind, "sequence_number": len(events), **fields})

    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    emit("response.created", response=pending)
    emit("response.in_progress", response=pending)
    for index, item in enumerate(response["output"]):
        emit("response.output_item.added", output_index=index, item=_added_copy(item))
        where = {"item_id": item.get("id"), "output_index": index}
        if item["type"] == "reasoning":
            for n, part in enumerate(item.get("summary") or []):
                text = part.get("text", "")
                emit("response.reasoning_summary_part.added", **where, summary_index=n,
                     part={"type": "summary_text", "text": ""})
                for piece in _chunks(text):
                    emit("response.reasoning_summary_text.delta", **where, summary_index=n, delta=piece)
                emit("response.reasoning_summary_text.done", **where, summary_index=n, text=text)
                emit("response.reasoning_summary_part.done", **where, summary_index=n, part=part)
        elif item["type"] == "message":
            for n, part in enumerate(item.get("content") or []):
                kind = part.get("type")
                empty = {**part, kind if kind == "refusal" else "text": ""} if kind in ("output_text", "refusal") else part
                emit("response.content_part.added", **where, content_index=n, part=empty)
                if kind == "output_text":
                    for piece in _chunks(part.get("text", "")):
                        emit("response.output_text.delta", **where, content_index=n, delta=piece, logprobs=[])
                    emit("response.output_text.done", **where, content_index=n, text=part.get("text", ""), logprobs=[])
                elif kind == "refusal":
                    for piece in _chunks(part.get("refusal", "")):
                        emit("response.refusal.delta", **where, content_index=n, delta=piece)
                    emit("response.refusal.done", **where, content_index=n, refusal=part.get("refusal", ""))
                emit("response.content_part.done", **where, content_index=n, part=part)
        elif item["type"] == "function_call":
            for piece in _chunks(item["arguments"]):
                emit("response.function_call_arguments.delta", **where, delta=piece)
            emit("response.function_call_arguments.done", **where, arguments=item["arguments"])
        emit("response.output_item.done", output_index=index, item=item)
    final = {"completed": "response.completed", "incomplete": "response.incomplete",
             "failed": "response.failed"}.get(response["status"], "response.completed")
    emit(final, response=response)
    return events


def _peer_gone(conn: socket.socket) -> bool:
    """True when the client closed its side (e.g. it timed out while a ``slow`` fault waited)."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _reset(handler: _Handler) -> None:
    """Drop the connection with a TCP reset, no HTTP answer (or no end of the answer)."""
    handler.close_connection = True
    try:
        handler.wfile.flush()
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
    except OSError:
        pass
