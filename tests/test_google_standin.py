"""The Gemini stand-in's rules over real HTTP, the adapter's client against it (retries, streaming,
thought signatures kept), and the one 0–999 mapping."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from cua.actions import Size, denormalize, normalize
from cua.config import RunSettings
from cua.providers.base import CallAnswer, Screen
from cua.providers.google import GeminiClient, GeminiConfig, GoogleProvider
from cua.providers.google.calls import call_actions
from cua.testing.google import StandIn, Turn

KEY = "gm-standin-test-key"


def png(width: int = 800, height: int = 600) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(out, format="PNG")
    return out.getvalue()


IMAGE = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png()).decode()}}
TOOLS = [{"computerUse": {"environment": "ENVIRONMENT_BROWSER"}}]
CLICK = Turn.calls(("click", {"x": 500, "y": 500}))


def post(server: StandIn, body: Any, model: str = "gemini-3.5-flash", key: str | None = KEY) -> httpx.Response:
    headers = {"x-goog-api-key": key} if key else {}
    return httpx.post(f"{server.base_url}/v1beta/models/{model}:generateContent", json=body, headers=headers)


def first(task: str = "do it") -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": task}, IMAGE]}], "tools": TOOLS}


def answer(model_content: dict[str, Any], **response: Any) -> dict[str, Any]:
    name = model_content["parts"][0]["functionCall"]["name"]
    return {"role": "user", "parts": [{"functionResponse": {
        "name": name, "response": {"url": "http://x/", **response}, "parts": [IMAGE]}}]}


def error(reply: httpx.Response) -> dict[str, Any]:
    return reply.json()["error"]


def test_keys_are_refused_as_google_refuses_them() -> None:
    with StandIn([CLICK], api_key=KEY) as server:
        missing, wrong = post(server, first(), key=None), post(server, first(), key="AIza-wrong")
    assert missing.status_code == 403 and error(missing)["status"] == "PERMISSION_DENIED"
    assert wrong.status_code == 400 and error(wrong)["message"] == "API key not valid. Please pass a valid API key."
    assert error(wrong)["details"][0]["reason"] == "API_KEY_INVALID"


def test_unknown_fields_are_refused_in_either_spelling() -> None:
    with StandIn([CLICK, CLICK], api_key=KEY) as server:
        snake = first()
        snake["generation_config"] = {"max_output_tokens": 10}  # proto JSON takes snake_case too
        assert post(server, snake).status_code == 200
        outside = first()
        outside["tools"] = [{"computerUse": {"environment": "ENVIRONMENT_BROWSER"},
                             "excludedPredefinedFunctions": ["drag_and_drop"]}]
        bad = post(server, outside)
    assert bad.status_code == 400 and error(bad)["status"] == "INVALID_ARGUMENT"
    assert 'Unknown name "excludedPredefinedFunctions" at \'tools[0]\'' in error(bad)["message"]


def test_calls_must_be_answered_in_order_by_name_with_their_screenshot() -> None:
    with StandIn([CLICK, Turn.text("done")], api_key=KEY) as server:
        body = first()
        model = post(server, body).json()["candidates"][0]["content"]
        base = body["contents"] + [model]
        unanswered = post(server, {**body, "contents": base + [{"role": "user", "parts": [{"text": "go on"}]}]})
        renamed = answer(model)
        renamed["parts"][0]["functionResponse"]["name"] = "type"
        misnamed = post(server, {**body, "contents": base + [renamed]})
        bare = answer(model)
        del bare["parts"][0]["functionResponse"]["parts"]
        no_image = post(server, {**body, "contents": base + [bare]})
        good = post(server, {**body, "contents": base + [answer(model)]})
    assert "number of function response parts" in error(unanswered)["message"]
    assert "named 'type', but the call it answers is 'click'" in error(misnamed)["message"]
    assert "carries no screenshot" in error(no_image)["message"]
    assert good.status_code == 200


def test_replayed_model_turns_keep_their_signature_and_args() -> None:
    with StandIn([CLICK, Turn.text("done")], api_key=KEY) as server:
        body = first()
        model = post(server, body).json()["candidates"][0]["content"]
        assert "thoughtSignature" in model["parts"][0]  # Gemini 3+ signs its first call
        unsigned = {"role": "model", "parts": [{k: v for k, v in model["parts"][0].items() if k != "thoughtSignature"}]}
        lost = post(server, {**body, "contents": body["contents"] + [unsigned, answer(model)]})
        moved = {"role": "model", "parts": [{**model["parts"][0], "functionCall": {"name": "click",
                                                                                  "args": {"x": 501, "y": 500}}}]}
        altered = post(server, {**body, "contents": body["contents"] + [moved, answer(model)]})
    assert error(lost)["message"].startswith("Function call is missing a thought_signature in functionCall parts.")
    assert "function call `default_api:click` , position 2" in error(lost)["message"]
    assert "is not the model turn the stand-in sent" in error(altered)["message"]


def test_require_confirmation_needs_an_acknowledgement_and_only_then() -> None:
    decision = {"decision": "require_confirmation", "explanation": "buys"}
    confirm = Turn.calls(("click", {"x": 1, "y": 2, "safety_decision": decision}))
    with StandIn([confirm, Turn.text("done"), CLICK], api_key=KEY) as server:
        body = first()
        model = post(server, body).json()["candidates"][0]["content"]
        unconfirmed = post(server, {**body, "contents": body["contents"] + [model, answer(model)]})
        ok = post(server, {**body, "contents": body["contents"] + [model, answer(model, safety_acknowledgement="true")]})
    assert "ran unconfirmed" in error(unconfirmed)["message"]
    assert ok.status_code == 200
    with StandIn([CLICK, Turn.text("done")], api_key=KEY) as server:
        model = post(server, body).json()["candidates"][0]["content"]
        needless = post(server, {**body, "contents": body["contents"] + [model, answer(model, safety_acknowledgement="true")]})
    assert "had no safety_decision to acknowledge" in error(needless)["message"]


def test_the_stand_in_never_issues_what_the_model_cannot_send() -> None:
    server = StandIn([Turn.calls(("click_at", {"x": 5, "y": 5}))], api_key=KEY).start()
    reply = post(server, first())  # a legacy function to a 3.5 model
    server.stop()
    assert reply.status_code == 500 and server.script_errors
    server = StandIn([Turn.calls(("click", {"x": 1200, "y": 5}))], api_key=KEY).start()
    post(server, first())
    server.stop()
    assert "0-999" in str(server.script_errors[0])


@pytest.mark.parametrize("size", [Size(800, 600), Size(1024, 768), Size(1280, 800), Size(1920, 1080)])
def test_denormalize_maps_the_grid_onto_every_display(size: Size) -> None:
    # pixel = value / 1000 × size, floored: the grid's last cell still lies on the screen
    assert denormalize(0, size.width) == 0 and denormalize(999, size.width) == 999 * size.width // 1000 < size.width
    assert denormalize(500, size.height) == size.height // 2
    for pixel in range(0, size.width, 7):  # the stand-in's inverse lands on the pixel (±1 past 1000 px)
        assert abs(denormalize(normalize(pixel, size.width), size.width) - pixel) <= (0 if size.width <= 1000 else 1)
    actions = call_actions("click", {"x": 999, "y": 0}, size, "browser")
    assert (actions[0].x, actions[0].y) == (999 * size.width // 1000, 0)


def test_the_adapter_survives_faults_and_sends_signatures_back() -> None:
    settings = RunSettings(model="gemini-3.5-flash", display="800x600", stream=True)

    async def run(server: StandIn) -> list[str]:
        client = GeminiClient(GeminiConfig(api_key=KEY, base_url=server.base_url))
        provider = GoogleProvider(settings, client)
        provider.start("task", png(), Screen(display=Size(800, 600), environment="browser"), [])
        server.inject("429", retry_delay=0.05)
        server.inject("cut_stream")
        turn = await provider.next_turn()
        provider.answer([CallAnswer(call=turn.calls[0], screenshot=png(), url="http://x/")])
        server.inject("503")
        final = await provider.next_turn()
        await provider.aclose()
        return [turn.title(), final.text]

    with StandIn([Turn.calls(("click", {"x": 500, "y": 500}), thought="Looking."), Turn.text("All done.")],
                 api_key=KEY) as server:
        titles = asyncio.run(run(server))
    assert titles == ["click", "All done."]
    assert [r.fault for r in server.records] == ["429", "cut_stream", None, "503", None]
    assert server.rejections == []
