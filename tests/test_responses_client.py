"""The Responses API client over real HTTP on 127.0.0.1, its SSE parser and its configuration.

The server below is deliberately tiny: it replays a script of canned answers, one per request, and
records what it received. Retry waits go to a fake clock, so nothing here sleeps for backoff.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest

from cua.errors import ConfigError
from cua.providers.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    RateLimitError,
    ResponseFailedError,
    StreamError,
)
from cua.providers.openai.client import ClientConfig, ResponsesClient, azure_base_url
from cua.providers.openai.models import ComputerCall, CreateRequest, Message, Reasoning
from cua.providers.retry import RetryPolicy

SECRET = "sk-test-abcdef0123456789"

# --- the canned server ----------------------------------------------------------------------------


@dataclass
class Canned:
    """One answer. ``events`` makes it an SSE stream; ``cut``/``eof`` end that stream early."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[Any] | None = None  # dicts become "event:/data:" pairs, strings are sent raw
    cut: bool = False  # drop the connection in the middle of the chunked body
    eof: bool = False  # close the connection cleanly, without a final event
    delay: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up early (timeouts, cut streams) is part of the tests


class CannedServer:
    def __init__(self) -> None:
        self.script: list[Canned] = []
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def next_answer(self, received: Received) -> Canned:
        with self._lock:
            self.received.append(received)
            if not self.script:
                return Canned(400, {"error": {"message": "the test script has no more answers"}})
            return self.script.pop(0)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._serve()

            do_POST = do_DELETE = do_GET

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                received = Received(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
                answer = server.next_answer(received)
                time.sleep(answer.delay)
                if answer.events is not None:
                    self._stream(answer)
                else:
                    self._send_body(answer)

            def _send_body(self, answer: Canned) -> None:
                body = answer.body
                if isinstance(body, (dict, list)):
                    data = json.dumps(body).encode()
                    content_type = "application/json"
                else:
                    data = (body or "").encode()
                    content_type = "text/html"
                self.send_response(answer.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, answer: Canned) -> None:
                self.send_response(answer.status)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                if answer.eof:
                    self.send_header("Connection", "close")
                else:
                    self.send_header("Transfer-Encoding", "chunked")
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                for event in answer.events or []:
                    chunk = event.encode() if isinstance(event, str) else sse(event)
                    if answer.eof:
                        self.wfile.write(chunk)
                    else:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                if answer.cut or answer.eof:
                    self.close_connection = True
                    return
                self.wfile.write(b"0\r\n\r\n")

        return Handler


def sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


@pytest.fixture
def server() -> Iterator[CannedServer]:
    srv = CannedServer()
    srv.start()
    yield srv
    srv.stop()


class FakeClock:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def now(self) -> float:
        return 1_750_000_000.0

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_client(
    base_url: str, clock: FakeClock, *, max_retries: int = 2, **config: Any
) -> ResponsesClient:
    cfg = ClientConfig(api_key=SECRET, base_url=base_url, max_retries=max_retries, **config)
    retry = RetryPolicy(max_retries=max_retries, clock=clock, random=lambda: 0.0)
    return ResponsesClient(cfg, retry=retry)


@pytest.fixture
async def client(server: CannedServer, clock: FakeClock) -> Any:
    async with make_client(server.url + "/v1", clock) as c:
        yield c


# --- canned wire data -----------------------------------------------------------------------------

REASONING = {
    "type": "reasoning",
    "id": "rs_1",
    "summary": [{"type": "summary_text", "text": "Open the settings."}],
    "encrypted_content": "gAAAA-opaque",
}
CALL = {
    "type": "computer_call",
    "id": "cu_1",
    "call_id": "call_1",
    "status": "completed",
    "actions": [{"type": "click", "x": 10, "y": 20, "button": "left"}],
    "pending_safety_checks": [],
}


def response_body(output: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    body = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "model": "gpt-5.4",
        "output": [REASONING, CALL] if output is None else output,
        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
    }
    body.update(fields)
    return body


def full_stream(final: dict[str, Any] | None = None) -> list[Any]:
    final = response_body() if final is None else final
    created = response_body(output=[], status="in_progress")
    return [
        {"type": "response.created", "sequence_number": 0, "response": created},
        {"type": "response.in_progress", "sequence_number": 1, "response": created},
        {
            "type": "response.output_item.added",
            "sequence_number": 2,
            "output_index": 0,
            "item": {"type": "reasoning", "id": "rs_1", "summary": []},
        },
        {
            "type": "response.reasoning_summary_text.delta",
            "sequence_number": 3,
            "item_id": "rs_1",
            "output_index": 0,
            "summary_index": 0,
            "delta": "Open the ",
        },
        {
            "type": "response.reasoning_summary_text.delta",
            "sequence_number": 4,
            "item_id": "rs_1",
            "output_index": 0,
            "summary_index": 0,
            "delta": "settings.",
        },
        {"type": "response.output_item.done", "sequence_number": 5, "output_index": 0, "item": REASONING},
        {"type": "response.output_item.added", "sequence_number": 6, "output_index": 1, "item": CALL},
        {"type": "response.output_item.done", "sequence_number": 7, "output_index": 1, "item": CALL},
        {"type": "response.completed", "sequence_number": 8, "response": final},
    ]


def request(stream: bool = False) -> CreateRequest:
    return CreateRequest(
        model="gpt-5.4", input="Open the settings", tools=[{"type": "computer"}], stream=stream or None
    )


def rate_limited(code: str = "rate_limit_exceeded", **headers: str) -> Canned:
    error = {"message": "Rate limit reached.", "type": "requests", "param": None, "code": code}
    return Canned(429, {"error": error}, headers={"x-request-id": "req_429", **headers})


# --- JSON requests, errors and retries ------------------------------------------------------------


async def test_create_sends_the_request_with_its_headers(client, server: CannedServer) -> None:
    server.script = [Canned(200, response_body())]
    response = await client.create(request())

    assert response.id == "resp_1"
    assert [type(item) for item in response.output] == [Reasoning, ComputerCall]
    (got,) = server.received
    assert (got.method, got.path) == ("POST", "/v1/responses")
    assert got.body == {
        "model": "gpt-5.4",
        "input": "Open the settings",
        "tools": [{"type": "computer"}],
    }
    assert got.headers["authorization"] == f"Bearer {SECRET}"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"].startswith("cua/")
    assert "openai-organization" not in got.headers and "openai-project" not in got.headers


async def test_organization_project_and_azure_headers(server: CannedServer, clock) -> None:
    server.script = [Canned(200, response_body())] * 2
    async with make_client(server.url, clock, organization="org_1", project="proj_1") as c:
        await c.create(request())
    async with make_client(server.url, clock, auth_header="api-key") as c:
        await c.create(request())

    openai, azure = server.received
    assert openai.headers["openai-organization"] == "org_1"
    assert openai.headers["openai-project"] == "proj_1"
    assert azure.headers["api-key"] == SECRET
    assert "authorization" not in azure.headers


async def test_429_then_200_waits_as_long_as_retry_after_ms_says(client, server, clock) -> None:
    server.script = [rate_limited(**{"retry-after-ms": "20"}), Canned(200, response_body())]
    response = await client.create(request())

    assert response.id == "resp_1"
    assert len(server.received) == 2
    assert server.received[0].body == server.received[1].body
    assert clock.sleeps == [0.02]


async def test_three_500s_exhaust_the_retries(client, server, clock) -> None:
    server.script = [
        Canned(500, {"error": {"message": "The server had an error.", "type": "server_error"}},
               headers={"x-request-id": f"req_{n}"})
        for n in range(3)
    ]
    with pytest.raises(APIStatusError) as caught:
        await client.create(request())

    err = caught.value
    assert (err.status, err.type, err.request_id, err.attempts) == (500, "server_error", "req_2", 3)
    assert len(server.received) == 3
    assert clock.sleeps == [0.5, 1.0]
    assert str(err) == "The server had an error (HTTP 500, request id req_2)."
    assert err.exit_code == 3


async def test_insufficient_quota_is_not_retried(client, server, clock) -> None:
    server.script = [rate_limited("insufficient_quota"), Canned(200, response_body())]
    with pytest.raises(RateLimitError) as caught:
        await client.create(request())

    assert caught.value.code == "insufficient_quota"
    assert len(server.received) == 1 and clock.sleeps == []
    assert "code insufficient_quota" in str(caught.value)


async def test_x_should_retry_false_stops_a_retry(client, server, clock) -> None:
    server.script = [Canned(503, {"error": {"message": "busy"}}, headers={"x-should-retry": "false"})]
    with pytest.raises(APIStatusError):
        await client.create(request())
    assert len(server.received) == 1 and clock.sleeps == []


async def test_request_id_and_error_fields_are_kept(client, server) -> None:
    error = {
        "message": "Tool 'computer_use_preview' is not supported with gpt-5.4.",
        "type": "invalid_request_error",
        "param": "tools",
        "code": None,
    }
    server.script = [Canned(400, {"error": error}, headers={"x-request-id": "req_abc123"})]
    with pytest.raises(APIStatusError) as caught:
        await client.create(request())

    err = caught.value
    assert (err.status, err.type, err.param, err.code) == (400, "invalid_request_error", "tools", None)
    assert err.request_id == "req_abc123"
    assert err.headers["x-request-id"] == "req_abc123"
    assert str(err) == (
        "Tool 'computer_use_preview' is not supported with gpt-5.4 "
        "(HTTP 400, param tools, request id req_abc123)."
    )


async def test_a_rejected_key_never_shows_in_the_error(client, server) -> None:
    echo = f"Incorrect API key provided: {SECRET}. You can find your API key at https://example."
    server.script = [
        Canned(401, {"error": {"message": echo, "code": "invalid_api_key", "type": "invalid_request_error"}},
               headers={"x-request-id": "req_401"})
    ]
    with pytest.raises(AuthenticationError) as caught:
        await client.create(request())

    err = caught.value
    assert SECRET not in str(err) and SECRET not in repr(err) and SECRET not in str(err.body)
    assert "Incorrect API key provided: ***" in str(err)
    assert "OPENAI_API_KEY" in str(err) and "request id req_401" in str(err)
    assert len(server.received) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<html><body><h1>502 Bad Gateway</h1></body></html>", "The Responses API answered with an error: Bad Gateway (HTTP 502)."),
        ("upstream connect error", "The Responses API answered with an error: upstream connect error (HTTP 502)."),
        ({"detail": "Not Found"}, "Not Found (HTTP 502)."),
        ({"error": "Invalid model alias"}, "Invalid model alias (HTTP 502)."),
    ],
)
async def test_error_bodies_of_any_shape_read_well(server, clock, body, expected) -> None:
    server.script = [Canned(502, body)]
    async with make_client(server.url, clock, max_retries=0) as c:
        with pytest.raises(APIStatusError) as caught:
            await c.create(request())
    assert str(caught.value) == expected


async def test_connection_refused_names_the_base_url(clock) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}/v1"
    async with make_client(base, clock) as c:
        with pytest.raises(APIConnectionError) as caught:
            await c.create(request())

    err = caught.value
    assert not isinstance(err, APITimeoutError)
    assert base in str(err) and "unreachable" in str(err)
    assert err.attempts == 3 and clock.sleeps == [0.5, 1.0]
    assert err.exit_code == 3


async def test_a_slow_server_times_out(server, clock) -> None:
    server.script = [Canned(200, response_body(), delay=0.5)]
    async with make_client(server.url, clock, max_retries=0, timeout=0.05) as c:
        with pytest.raises(APITimeoutError) as caught:
            await c.create(request())
    assert "Timed out" in str(caught.value) and server.url in str(caught.value)


async def test_a_failed_response_raises_with_its_own_error(client, server, clock) -> None:
    failed = response_body(
        output=[], status="failed", error={"code": "server_error", "message": "Something broke."}
    )
    server.script = [Canned(200, failed, headers={"x-request-id": "req_f"})]
    with pytest.raises(ResponseFailedError) as caught:
        await client.create(request())

    err = caught.value
    assert (err.code, err.message, err.request_id, err.response_id) == (
        "server_error", "Something broke.", "req_f", "resp_1"
    )
    assert err.response.status == "failed"
    assert str(err) == "Something broke (response resp_1, code server_error, request id req_f)."
    assert len(server.received) == 1 and clock.sleeps == []


async def test_a_body_that_is_not_a_response_is_an_api_error(client, server) -> None:
    server.script = [Canned(200, {"object": "list"}, headers={"x-request-id": "req_x"})]
    with pytest.raises(APIError, match="not a response") as caught:
        await client.create(request())
    assert caught.value.request_id == "req_x"


async def test_retrieve_delete_and_cancel_pass_opaque_ids_untouched(client, server) -> None:
    opaque = base64.b64encode(b"litellm:azure/gpt-5.4;resp_\xfb\xef\xbe\xff\xff\xff" * 3).decode()
    assert "/" in opaque or "+" in opaque
    failed = response_body(output=[], id=opaque, status="failed", error={"code": "x", "message": "y"})
    server.script = [
        Canned(200, failed),
        Canned(200, {"id": opaque, "object": "response.deleted", "deleted": True}),
        Canned(200, response_body(output=[], id=opaque, status="cancelled")),
    ]
    retrieved = await client.retrieve(opaque)
    assert await client.delete(opaque) is None
    cancelled = await client.cancel(opaque)

    assert retrieved.id == opaque and retrieved.status == "failed"  # retrieve returns, not raises
    assert cancelled.status == "cancelled"
    methods = [(r.method, r.path.rsplit("/", 1)[-1] == "cancel") for r in server.received]
    assert methods == [("GET", False), ("DELETE", False), ("POST", True)]
    for got in server.received:
        quoted = got.path.removeprefix("/v1/responses/").removesuffix("/cancel")
        assert "/" not in quoted and unquote(quoted) == opaque


async def test_retrieve_errors_like_create(client, server) -> None:
    server.script = [Canned(404, {"error": {"message": "No response found."}}, headers={"x-request-id": "r"})]
    with pytest.raises(APIStatusError, match="No response found"):
        await client.retrieve("resp_missing")


# --- streaming ------------------------------------------------------------------------------------


async def test_stream_with_every_event(client, server) -> None:
    events = full_stream()
    server.script = [Canned(events=events, headers={"x-request-id": "req_s"})]
    seen: list[dict[str, Any]] = []
    response = await client.create(request(stream=True), on_event=seen.append)

    assert seen == events
    deltas = [e["delta"] for e in seen if e["type"] == "response.reasoning_summary_text.delta"]
    assert "".join(deltas) == "Open the settings."
    assert response.status == "completed"
    assert [item.type for item in response.output] == ["reasoning", "computer_call"]
    assert response.output[0].encrypted_content == "gAAAA-opaque"
    (got,) = server.received
    assert got.body["stream"] is True
    assert got.headers["accept"] == "text/event-stream"


async def test_stream_with_only_response_completed(client, server) -> None:
    done = response_body(output=[{"type": "message", "role": "assistant",
                                  "content": [{"type": "output_text", "text": "Done."}]}])
    server.script = [Canned(events=[f"data: {json.dumps({'type': 'response.completed', 'response': done})}\n\n"])]
    response = await client.create(request(stream=True))

    assert isinstance(response.output[0], Message)
    assert response.output_text() == "Done."


async def test_stream_ending_with_done_and_no_output_in_the_final_event(client, server) -> None:
    events = full_stream(final=response_body(output=[]))[5:]  # from the first output_item.done
    server.script = [Canned(events=[*events, "data: [DONE]\n\n"])]
    response = await client.create(request(stream=True))

    # The final event had no output: the items come from response.output_item.done.
    assert [item.type for item in response.output] == ["reasoning", "computer_call"]
    assert response.output[1].raw_actions() == CALL["actions"]


async def test_done_line_without_a_blank_line_and_crlf_line_ends(client, server) -> None:
    completed = {"type": "response.completed", "response": response_body()}
    raw = f": keep-alive\r\nevent: response.completed\r\ndata: {json.dumps(completed)}\r\n\r\ndata: [DONE]"
    server.script = [Canned(events=[raw], eof=True)]
    response = await client.create(request(stream=True))
    assert response.id == "resp_1"


async def test_stream_with_incomplete_final_event_returns_it(client, server) -> None:
    incomplete = response_body(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
    server.script = [Canned(events=[{"type": "response.incomplete", "response": incomplete}])]
    response = await client.create(request(stream=True))
    assert response.status == "incomplete"
    assert response.incomplete_details == {"reason": "max_output_tokens"}


@pytest.mark.parametrize("how", ["cut", "eof"])
async def test_a_stream_cut_midway_is_sent_again_as_a_new_request(client, server, clock, how) -> None:
    server.script = [
        Canned(events=full_stream()[:4], headers={"x-request-id": "req_cut"}, **{how: True}),
        Canned(events=full_stream()),
    ]
    seen: list[str] = []
    response = await client.create(request(stream=True), on_event=lambda e: seen.append(e["type"]))

    assert [item.type for item in response.output] == ["reasoning", "computer_call"]
    assert len(server.received) == 2
    assert server.received[0].body == server.received[1].body
    assert clock.sleeps == [0.5]
    assert seen.count("response.created") == 2  # the early events came twice, as documented


async def test_a_stream_that_keeps_breaking_gives_up_with_a_stream_error(client, server, clock) -> None:
    server.script = [Canned(events=full_stream()[:2], headers={"x-request-id": "req_c"}, cut=True)] * 3
    with pytest.raises(StreamError) as caught:
        await client.create(request(stream=True))

    err = caught.value
    assert err.interrupted and err.attempts == 3 and err.request_id == "req_c"
    assert "broke off" in str(err) and "request id req_c" in str(err)


async def test_an_error_event_is_the_answer_and_is_not_retried(client, server, clock) -> None:
    error = {"type": "error", "code": "server_error", "message": "The model failed.", "param": None,
             "sequence_number": 2}
    server.script = [Canned(events=[*full_stream()[:2], error], headers={"x-request-id": "req_e"})]
    with pytest.raises(StreamError) as caught:
        await client.create(request(stream=True))

    err = caught.value
    assert not err.interrupted and err.code == "server_error" and err.request_id == "req_e"
    assert "The model failed" in str(err)
    assert len(server.received) == 1 and clock.sleeps == []


async def test_a_streamed_failed_response_raises(client, server) -> None:
    failed = response_body(output=[], status="failed",
                           error={"code": "rate_limit_exceeded", "message": "Too many tokens."})
    server.script = [Canned(events=[{"type": "response.failed", "response": failed}])]
    with pytest.raises(ResponseFailedError) as caught:
        await client.create(request(stream=True))
    assert caught.value.code == "rate_limit_exceeded"


async def test_a_streamed_request_with_an_http_error_is_retried(client, server, clock) -> None:
    server.script = [rate_limited(**{"retry-after": "2"}), Canned(events=full_stream())]
    response = await client.create(request(stream=True))
    assert response.id == "resp_1" and clock.sleeps == [2.0]


async def test_a_proxy_that_ignores_stream_still_works(client, server) -> None:
    server.script = [Canned(200, response_body())]
    response = await client.create(request(stream=True))
    assert response.id == "resp_1"


# --- configuration --------------------------------------------------------------------------------


def test_config_from_openai_env() -> None:
    cfg = ClientConfig.from_env(env={
        "OPENAI_API_KEY": SECRET, "OPENAI_ORG_ID": "org_1", "OPENAI_PROJECT_ID": "proj_1",
    })
    assert cfg.api_key == SECRET
    assert cfg.base_url == "https://api.openai.com/v1"
    assert (cfg.organization, cfg.project, cfg.auth_header) == ("org_1", "proj_1", "authorization")
    assert (cfg.timeout, cfg.connect_timeout, cfg.max_retries) == (120.0, 10.0, 2)


def test_config_for_a_litellm_proxy() -> None:
    cfg = ClientConfig.from_env(env={"OPENAI_API_KEY": "sk-1234", "OPENAI_BASE_URL": "http://proxy:4000/"})
    assert cfg.base_url == "http://proxy:4000"
    cfg = ClientConfig.from_env(api_key="sk-2", base_url="http://localhost:4000", env={})
    assert (cfg.api_key, cfg.base_url) == ("sk-2", "http://localhost:4000")


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://name.openai.azure.com",
        "https://name.openai.azure.com/",
        "https://name.openai.azure.com/openai",
        "https://name.openai.azure.com/openai/v1/",
    ],
)
def test_config_for_azure(endpoint: str) -> None:
    cfg = ClientConfig.from_env(env={"AZURE_OPENAI_ENDPOINT": endpoint, "AZURE_OPENAI_API_KEY": "az-key"})
    assert cfg.base_url == "https://name.openai.azure.com/openai/v1"
    assert (cfg.api_key, cfg.auth_header) == ("az-key", "api-key")
    assert azure_base_url(endpoint) == cfg.base_url


def test_explicit_openai_settings_win_over_azure() -> None:
    azure = {"AZURE_OPENAI_ENDPOINT": "https://name.openai.azure.com", "AZURE_OPENAI_API_KEY": "az-key"}
    by_argument = ClientConfig.from_env(api_key=SECRET, env=azure)
    by_env = ClientConfig.from_env(env={**azure, "OPENAI_BASE_URL": "http://proxy:4000", "OPENAI_API_KEY": SECRET})
    for cfg in (by_argument, by_env):
        assert cfg.api_key == SECRET and cfg.auth_header == "authorization"
    assert by_env.base_url == "http://proxy:4000"


@pytest.mark.parametrize("env", [{}, {"OPENAI_API_KEY": "  "}, {"AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com"}])
def test_a_missing_key_says_which_variables_to_set(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        ClientConfig.from_env(env=env)
    message = str(caught.value)
    assert "OPENAI_API_KEY" in message
    assert "AZURE_OPENAI_ENDPOINT" in message and "AZURE_OPENAI_API_KEY" in message
    assert caught.value.exit_code == 2


def test_the_key_is_not_in_the_repr() -> None:
    cfg = ClientConfig(api_key=SECRET, base_url="http://localhost:4000/v1/")
    assert SECRET not in repr(cfg) and SECRET not in str(cfg)
    assert cfg.base_url == "http://localhost:4000/v1"
    client = ResponsesClient(cfg)
    assert SECRET not in repr(client.retry)


def test_bad_config_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="http"):
        ClientConfig(api_key=SECRET, base_url="api.openai.com/v1")
    with pytest.raises(ConfigError, match="auth_header"):
        ClientConfig(api_key=SECRET, auth_header="bearer")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_retries"):
        ClientConfig(api_key=SECRET, max_retries=-1)


def test_config_errors_never_echo_credentials_in_a_url() -> None:
    with pytest.raises(ConfigError) as caught:
        ClientConfig(api_key=SECRET, base_url="ftp://user:hunter2@host/v1")
    assert "hunter2" not in str(caught.value)
