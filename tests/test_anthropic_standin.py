"""The Anthropic stand-in's rules over real HTTP: each refuses a bad request in the service's
error shape and accepts the good one next to it; and the adapter's client against its faults."""

from __future__ import annotations

import asyncio
import base64
import copy
import io
from typing import Any, Iterator

import httpx
import pytest
from PIL import Image

from cua.config import RunSettings
from cua.errors import ConfigError
from cua.providers.anthropic import ClientConfig, MessagesClient, from_settings
from cua.providers.errors import StreamError
from cua.providers.retry import RetryPolicy
from cua.testing.anthropic import StandIn, Turn, member

KEY = "sk-ant-rules"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


def png(width: int = 64, height: int = 48) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def image(data: str | None = None) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data or png()}}


def good() -> dict[str, Any]:
    return {"model": "claude-sonnet-5-5", "max_tokens": 2048, "tools": [{"type": "computer_toolset_20260801"}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "go"}, image()]}]}


@pytest.fixture(scope="module")
def server() -> Iterator[StandIn]:
    with StandIn(api_key=KEY, final_text="fine") as standin:
        yield standin


def post(server: StandIn, body: Any, headers: dict[str, str] = HEADERS) -> httpx.Response:
    return httpx.post(server.base_url + "/v1/messages", json=body, headers=headers, timeout=10)


def refused(answer: httpx.Response, status: int, kind: str, text: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["type"] == "error" and body["error"]["type"] == kind and text in body["error"]["message"]
    assert body["request_id"] == answer.headers["request-id"]


def test_a_good_request_is_answered(server: StandIn) -> None:
    answer = post(server, good())
    assert answer.status_code == 200 and answer.json()["content"] == [{"type": "text", "text": "fine"}]


@pytest.mark.parametrize("headers, status, kind, text", [
    ({"anthropic-version": "2023-06-01"}, 401, "authentication_error", "x-api-key"),
    ({"x-api-key": "sk-ant-wrong", "anthropic-version": "2023-06-01"}, 401, "authentication_error", "invalid x-api-key"),
    ({"x-api-key": KEY}, 400, "invalid_request_error", "anthropic-version: header is required"),
    ({"x-api-key": KEY, "anthropic-version": "2099-01-01"}, 400, "invalid_request_error", "invalid version"),
])
def test_headers(server: StandIn, headers: dict[str, str], status: int, kind: str, text: str) -> None:
    refused(post(server, good(), headers), status, kind, text)


def _without_max_tokens(body: dict[str, Any]) -> None:
    del body["max_tokens"]


def _unknown_config(body: dict[str, Any]) -> None:
    body["tools"][0]["configs"] = {"zoom": {"enabled": False}, "teleport": {"enabled": True}}


def _beta_tool_on_5_5(body: dict[str, Any]) -> None:
    body["tools"] = [{"type": "computer_20251124", "name": "computer", "display_width_px": 64, "display_height_px": 48}]


def _five_breakpoints(body: dict[str, Any]) -> None:
    body["tools"][0]["cache_control"] = {"type": "ephemeral"}
    body["messages"] = [{"role": "user", "content": [{"type": "text", "text": str(n), "cache_control": {"type": "ephemeral"}}
                                                     for n in range(4)]}]


def _huge_image(body: dict[str, Any]) -> None:
    body["messages"][0]["content"][1] = image(png(8001, 10))


def _wrong_media_type(body: dict[str, Any]) -> None:
    body["messages"][0]["content"][1]["source"]["media_type"] = "image/jpeg"


def _budget_over_max(body: dict[str, Any]) -> None:
    body["thinking"] = {"type": "enabled", "budget_tokens": 4096}


def _unknown_parameter(body: dict[str, Any]) -> None:
    body["previous_response_id"] = "resp_1"


def _assistant_first(body: dict[str, Any]) -> None:
    body["messages"].insert(0, {"role": "assistant", "content": "hi"})


@pytest.mark.parametrize("spoil, text", [
    (_without_max_tokens, "max_tokens: Field required"),
    (_unknown_config, "configs.teleport: Extra inputs are not permitted"),
    (_beta_tool_on_5_5, "requires the beta header"),
    (_five_breakpoints, "A maximum of 4 blocks with cache_control may be provided. Found 5."),
    (_huge_image, "image dimensions exceed max allowed size: 8000 pixels"),
    (_wrong_media_type, "does not match the provided media type"),
    (_budget_over_max, "`max_tokens` must be greater than `thinking.budget_tokens`"),
    (_unknown_parameter, "previous_response_id: Extra inputs are not permitted"),
    (_assistant_first, 'first message must use the "user" role'),
])
def test_body_rules(server: StandIn, spoil: Any, text: str) -> None:
    body = good()
    spoil(body)
    refused(post(server, body), 400, "invalid_request_error", text)


def test_the_beta_tool_is_refused_on_claude_5_5_and_taken_by_older_models(server: StandIn) -> None:
    body = good()
    _beta_tool_on_5_5(body)
    beta = {**HEADERS, "anthropic-beta": "computer-use-2025-11-24"}
    refused(post(server, body, beta), 400, "invalid_request_error", "not supported on claude-sonnet-5-5")
    assert post(server, {**body, "model": "claude-opus-4-5"}, beta).status_code == 200


def test_same_role_messages_are_merged_as_the_service_does(server: StandIn) -> None:
    body = good()
    body["messages"].append({"role": "user", "content": "and more"})
    assert post(server, body).status_code == 200


def test_tool_use_pairs_and_thinking_signatures() -> None:
    turns = [Turn.calls(member("left_click", coordinate=[1, 2]), member("screenshot"), thinking="plan")] * 2
    with StandIn(turns, api_key=KEY, final_text="ok") as server:
        body = {**good(), "thinking": {"type": "enabled", "budget_tokens": 1024}}
        reply = post(server, body).json()
        uses = [b for b in reply["content"] if b["type"] == "tool_use"]
        results = [{"type": "tool_result", "tool_use_id": u["id"], "toolset_name": "computer", "content": "done"}
                   for u in uses]
        answered = {**body, "messages": body["messages"] + [{"role": "assistant", "content": reply["content"]},
                                                            {"role": "user", "content": results}]}

        def variant(change: Any) -> dict[str, Any]:
            copy_ = copy.deepcopy(answered)
            change(copy_["messages"])
            return copy_

        refused(post(server, variant(lambda m: m[2]["content"].pop())), 400, "invalid_request_error",
                f"messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: {uses[1]['id']}. "
                "Each `tool_use` block must have a corresponding `tool_result` block in the next message.")
        refused(post(server, variant(lambda m: m[2]["content"][0].update(tool_use_id="toolu_nope"))), 400,
                "invalid_request_error", "unexpected `tool_use_id` found in `tool_result` blocks: toolu_nope")
        refused(post(server, variant(lambda m: m[1]["content"][0].update(thinking="other plan"))), 400,
                "invalid_request_error", "cannot be modified")
        refused(post(server, variant(lambda m: m[1]["content"][0].update(signature="forged"))), 400,
                "invalid_request_error", "Invalid `signature`")
        assert post(server, answered).status_code == 200


def test_the_client_survives_every_fault_and_keeps_the_request_id() -> None:
    async def go(server: StandIn) -> Any:
        client = MessagesClient(ClientConfig(api_key=KEY, base_url=server.base_url),
                                retry=RetryPolicy(max_retries=2, initial_delay=0.01))
        try:
            messages = []
            for stream in (True, False):
                for kind in ("429", "529", "500", "reset", "cut_stream", "error_event"):
                    server.inject(kind, **({"retry_after_ms": 10} if kind == "429" else {}))
                    messages.append(await client.create({**good(), "stream": stream}))
            server.inject("500", times=3)
            with pytest.raises(Exception) as failed:
                await client.create(good())
            return messages, failed.value
        finally:
            await client.aclose()

    with StandIn(api_key=KEY, final_text="fine") as server:
        messages, error = asyncio.run(go(server))
    assert [m.content[0]["text"] for m in messages] == ["fine"] * 12
    assert error.status == 500 and error.request_id and error.request_id in str(error) and error.attempts == 3


def test_a_stream_error_that_is_an_answer_is_not_retried() -> None:
    async def go(server: StandIn) -> None:
        client = MessagesClient(ClientConfig(api_key=KEY, base_url=server.base_url))
        try:
            await client.create({**good(), "stream": True, "max_tokens": 0})
        finally:
            await client.aclose()

    with StandIn(api_key=KEY, final_text="fine") as server, pytest.raises(Exception) as refused_:
        asyncio.run(go(server))
    assert not isinstance(refused_.value, StreamError) and refused_.value.status == 400
    assert len(server.requests) == 1


@pytest.mark.parametrize("fields, text", [
    ({"display": "1920x1080"}, "larger than Claude looks at"),
    ({"thinking_budget": 4096, "max_tokens": 4096}, "must be below max_tokens"),
    ({"tool": "preview"}, "is an OpenAI tool"),
])
def test_settings_claude_cannot_take_are_config_errors(fields: dict[str, Any], text: str) -> None:
    settings = RunSettings(model="claude-sonnet-5-5", **fields)
    with pytest.raises(ConfigError, match=text):
        from_settings(settings, api_key=KEY)
