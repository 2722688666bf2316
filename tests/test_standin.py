"""The stand-in Responses server, exercised over real HTTP with plain httpx.

Every rejection rule is asserted with its exact message: the other tests of the project rely on
the stand-in being at least as strict as the real service.
"""

from __future__ import annotations

import base64
import io
import json
import ssl
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from PIL import Image

from cua.testing.standin import INCLUDABLE, REASONS, TOOL_TYPES, ScriptError, StandIn, Turn, png_size
from cua.testing.standin.contract import INPUT_ITEM_TYPES

KEY = "sk-test"
GA = "gpt-5.4"
PREVIEW = "computer-use-preview"
GA_TOOLS = [{"type": "computer"}]
PREVIEW_TOOL = {"type": "computer_use_preview", "display_width": 64, "display_height": 48,
                "environment": "browser"}
CLICK = {"type": "click", "x": 10, "y": 20, "button": "left"}


# --- helpers -------------------------------------------------------------------------------------


def png(width: int = 64, height: int = 48, color: str = "white") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def encoded(fmt: str, width: int = 64, height: int = 48, color: str = "white") -> bytes:
    """A real image file in ``fmt`` (JPEG, WEBP, GIF, PNG), made by Pillow."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format=fmt)
    return out.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def shot(call_id: str, image: bytes | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "computer_call_output", "call_id": call_id,
            "output": {"type": "computer_screenshot", "image_url": data_url(image or png())}, **extra}


def error(answer: httpx.Response) -> str:
    body = answer.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]["message"]


def calls(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in response["output"] if i["type"] in ("computer_call", "function_call")]


def parse_sse(text: str) -> list[tuple[str | None, str]]:
    events, name, data = [], None, []
    for line in text.split("\n"):
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            events.append((name, "\n".join(data)))
            name, data = None, []
    return events


@pytest.fixture
def standin() -> Iterator[Any]:
    """Start stand-ins on demand; stop them all at the end of the test."""
    servers: list[StandIn] = []

    def start(turns: Any = (), **options: Any) -> StandIn:
        server = StandIn(turns, api_key=KEY, **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


_TLS = ssl.create_default_context()  # built once: httpx would load the CA bundle per client


def client(server: StandIn, **options: Any) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {KEY}"},
                        timeout=options.pop("timeout", 10), verify=_TLS, **options)


def ga_request(**body: Any) -> dict[str, Any]:
    return {"model": GA, "tools": GA_TOOLS, "input": "Open the page.", **body}


def preview_request(**body: Any) -> dict[str, Any]:
    return {"model": PREVIEW, "tools": [PREVIEW_TOOL], "truncation": "auto", "input": "Open it.", **body}


# --- happy paths ---------------------------------------------------------------------------------


def test_ga_chained_conversation(standin):
    server = standin([
        Turn.call(CLICK, {"type": "type", "text": "hi"}, reasoning="Click the box.", commentary="Clicking."),
        Turn.message("All done."),
    ])
    with client(server) as c:
        first = c.post("/responses", json=ga_request())
        assert first.status_code == 200
        assert first.headers["x-request-id"].startswith("req_")
        r1 = first.json()
        assert r1["id"].startswith("resp_") and r1["status"] == "completed" and r1["object"] == "response"
        reasoning, commentary, call = r1["output"]
        assert reasoning["id"].startswith("rs_") and reasoning["summary"] == [
            {"type": "summary_text", "text": "Click the box."}]
        assert "encrypted_content" not in reasoning  # not asked for
        assert commentary["id"].startswith("msg_") and commentary["phase"] == "commentary"
        assert call["id"].startswith("cu_") and call["call_id"].startswith("call_")
        assert call["status"] == "completed" and call["pending_safety_checks"] == []
        assert call["actions"] == [CLICK, {"type": "type", "text": "hi"}] and "action" not in call
        usage = r1["usage"]
        assert usage["output_tokens_details"]["reasoning_tokens"] > 0
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]

        image = png(color="red")
        second = c.post("/responses", json=ga_request(
            previous_response_id=r1["id"], input=[shot(call["call_id"], image)]))
        assert second.status_code == 200, second.text
        r2 = second.json()
        assert r2["previous_response_id"] == r1["id"]
        assert r2["output"][0]["content"][0]["text"] == "All done."
        assert r2["output"][0]["phase"] == "final_answer"
        assert c.get(f"/responses/{r2['id']}").json() == r2
    assert server.last_screenshot() == image
    assert [body["input"] if isinstance(body["input"], str) else "items" for body in server.requests] == [
        "Open the page.", "items"]
    assert server.rejections == [] and server.turn_index == 2


def test_ga_converts_a_single_action_item(standin):
    server = standin([[{"type": "computer_call", "action": CLICK}]])
    with client(server) as c:
        call = c.post("/responses", json=ga_request()).json()["output"][0]
    assert call["actions"] == [CLICK] and "action" not in call


def test_preview_chained_conversation(standin):
    server = standin([Turn.call(CLICK), Turn.message("Done.")])
    with client(server) as c:
        r1 = c.post("/responses", json=preview_request()).json()
        (call,) = r1["output"]
        assert call["action"] == CLICK and "actions" not in call
        r2 = c.post("/responses", json=preview_request(
            previous_response_id=r1["id"], input=[shot(call["call_id"], png(64, 48))]))
        assert r2.status_code == 200, r2.text
        assert "phase" not in r2.json()["output"][0]  # preview messages have no phase


def test_preview_turn_with_two_actions_is_a_script_error(standin):
    server = standin([Turn.call(CLICK, CLICK)])
    with client(server) as c:
        answer = c.post("/responses", json=preview_request())
    assert answer.status_code == 500 and answer.headers["x-should-retry"] == "false"
    assert answer.json()["error"]["code"] == "script_error"
    assert "one action per computer_call, the script has 2" in error(answer)
    with pytest.raises(ScriptError, match="split them into separate turns"):
        server.check()


def test_script_errors_are_raised_when_the_with_block_ends():
    def blind(body: dict[str, Any], state: Any) -> Turn:
        raise AssertionError("no screenshot in the first request")

    with pytest.raises(ScriptError, match="turn 0 raised AssertionError") as raised:
        with StandIn([blind]) as server:
            with client(server) as c:
                assert c.post("/responses", json=ga_request()).status_code == 500
    assert isinstance(raised.value.__cause__, AssertionError)
    assert server.turn_index == 0


def test_function_call_round_trip(standin):
    server = standin([Turn.function_call("lookup", {"q": "x"}), Turn.message("ok")])
    tools = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
    with client(server) as c:
        r1 = c.post("/responses", json={"model": GA, "input": "go", "tools": tools}).json()
        (call,) = r1["output"]
        assert call["id"].startswith("fc_") and call["call_id"].startswith("call_")
        assert json.loads(call["arguments"]) == {"q": "x"}
        r2 = c.post("/responses", json={"model": GA, "tools": tools, "previous_response_id": r1["id"],
                                        "input": [{"type": "function_call_output", "call_id": call["call_id"],
                                                   "output": "42"}]})
        assert r2.status_code == 200, r2.text


def test_stateless_conversation_with_encrypted_reasoning(standin):
    server = standin([Turn.call(CLICK, reasoning="first"), Turn.call(CLICK, reasoning="second"),
                      Turn.message("done")])
    body = ga_request(store=False, include=["reasoning.encrypted_content"])
    with client(server) as c:
        r1 = c.post("/responses", json=body).json()
        rs1, cu1 = r1["output"]
        assert rs1["encrypted_content"].startswith("gAAAAA")
        history = [{"role": "user", "content": "Open the page."}, rs1, cu1, shot(cu1["call_id"])]
        r2 = c.post("/responses", json={**body, "input": history})
        assert r2.status_code == 200, r2.text
        rs2, cu2 = r2.json()["output"]
        history += [rs2, cu2, shot(cu2["call_id"], png(color="blue"))]
        r3 = c.post("/responses", json={**body, "input": history})
        assert r3.status_code == 200, r3.text
        # store=false responses are not retrievable
        assert c.get(f"/responses/{r1['id']}").status_code == 404
    assert server.last_screenshot() == png(color="blue")


def test_preview_stateless_conversation_streamed_through_a_proxy(standin):
    server = standin([Turn.call(CLICK, reasoning="look"), Turn.message("done")], sse_style="done_marker")
    body = preview_request(store=False, include=["reasoning.encrypted_content"], stream=True)

    def final(text: str) -> dict[str, Any]:
        events = [json.loads(data) for _, data in parse_sse(text) if data != "[DONE]"]
        return events[-1]["response"]

    with client(server) as c:
        rs, cu = final(c.post("/responses", json=body).text)["output"]
        assert cu["action"] == CLICK and rs["encrypted_content"]
        history = [{"role": "user", "content": "Open it."}, rs, cu, shot(cu["call_id"], png(64, 48))]
        (message,) = final(c.post("/responses", json={**body, "input": history}).text)["output"]
    assert message["content"][0]["text"] == "done"


def test_litellm_style_ids_are_opaque(standin):
    server = standin([Turn.call(CLICK), Turn.message("done")], id_style="litellm")
    with client(server) as c:
        r1 = c.post("/responses", json=ga_request()).json()
        assert r1["id"].startswith("resp_+/") and len(r1["id"]) > 100
        assert c.get("/responses/" + quote(r1["id"], safe="")).json()["id"] == r1["id"]
        r2 = c.post("/responses", json=ga_request(previous_response_id=r1["id"],
                                                  input=[shot(r1["output"][0]["call_id"])]))
        assert r2.status_code == 200, r2.text


def test_acknowledged_safety_checks_pass(standin):
    server = standin([Turn.call(CLICK, safety_checks=["malicious_instructions"]), Turn.message("ok")])
    with client(server) as c:
        r1 = c.post("/responses", json=ga_request()).json()
        (call,) = r1["output"]
        (check,) = call["pending_safety_checks"]
        assert check["id"].startswith("cu_sc_") and check["code"] == "malicious_instructions" and check["message"]
        r2 = c.post("/responses", json=ga_request(
            previous_response_id=r1["id"], input=[shot(call["call_id"], acknowledged_safety_checks=[check])]))
        assert r2.status_code == 200, r2.text


def test_callable_turn_sees_the_request_and_the_screenshot(standin):
    seen = []

    def look(body: dict[str, Any], state: Any) -> Turn:
        with Image.open(io.BytesIO(state.screenshot)) as img:
            seen.append((state.index, img.getpixel((5, 5)), body["previous_response_id"] is not None))
        state.memory["looks"] = state.memory.get("looks", 0) + 1
        return Turn.message(f"looked {state.memory['looks']} times")

    server = standin([Turn.call(CLICK), look])
    with client(server) as c:
        r1 = c.post("/responses", json=ga_request()).json()
        r2 = c.post("/responses", json=ga_request(
            previous_response_id=r1["id"], input=[shot(r1["output"][0]["call_id"], png(color="red"))])).json()
    assert seen == [(1, (255, 0, 0), True)]
    assert r2["output"][0]["content"][0]["text"] == "looked 1 times"


def test_exhausted_script_is_an_error_by_default(standin):
    server = standin([Turn.message("only")])
    with client(server) as c:
        assert c.post("/responses", json=ga_request()).status_code == 200
        answer = c.post("/responses", json=ga_request())
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "script_exhausted"
    assert error(answer) == REASONS["script_exhausted"].message(count=1)


def test_exhausted_script_answers_the_final_message_when_configured(standin):
    server = standin([], final_message="Nothing left to do.")
    with client(server) as c:
        output = c.post("/responses", json=ga_request()).json()["output"]
    assert output[0]["content"][0]["text"] == "Nothing left to do."


def test_usage_override_and_incomplete_status(standin):
    server = standin([Turn(output=[{"type": "message", "content": "cut"}], status="incomplete",
                           usage={"output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 3}})])
    with client(server) as c:
        response = c.post("/responses", json=ga_request()).json()
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["usage"]["output_tokens"] == 7
    assert response["usage"]["output_tokens_details"] == {"reasoning_tokens": 3}
    assert response["usage"]["total_tokens"] == response["usage"]["input_tokens"] + 7


def test_azure_and_proxy_paths_retrieve_delete_cancel(standin):
    server = standin([Turn.message("a"), Turn.message("b")])
    with httpx.Client(headers={"api-key": KEY}) as c:
        azure = c.post(f"{server.azure_base_url}/responses?api-version=preview", json=ga_request())
        assert azure.status_code == 200
        proxy = c.post(f"{server.root_url}/responses", json=ga_request())
        assert proxy.status_code == 200
        rid = proxy.json()["id"]
        assert c.get(f"{server.root_url}/responses/{rid}").json()["id"] == rid
        cancel = c.post(f"{server.base_url}/responses/{rid}/cancel")
        assert cancel.status_code == 400 and error(cancel) == REASONS["cancel_not_background"].template
        deleted = c.delete(f"{server.base_url}/responses/{rid}")
        assert deleted.json() == {"id": rid, "object": "response.deleted", "deleted": True}
        gone = c.get(f"{server.base_url}/responses/{rid}")
        assert gone.status_code == 404 and error(gone) == f"Response with id '{rid}' not found."
        chained = c.post(f"{server.base_url}/responses", json=ga_request(previous_response_id=rid))
        assert error(chained) == f"Previous response with id '{rid}' not found."
        nowhere = c.get(f"{server.base_url}/models")
        assert nowhere.status_code == 404 and error(nowhere) == "Invalid URL (GET /v1/models)"


def test_async_clients_work(standin):
    import asyncio

    async def run() -> dict[str, Any]:
        async with StandIn([Turn.message("async")], api_key=KEY) as server:
            async with httpx.AsyncClient(base_url=server.base_url,
                                         headers={"Authorization": f"Bearer {KEY}"}) as c:
                return (await c.post("/responses", json=ga_request())).json()

    assert asyncio.run(run())["output"][0]["content"][0]["text"] == "async"


# --- auth ----------------------------------------------------------------------------------------


def test_missing_key_is_401(standin):
    server = standin([Turn.message("x")])
    answer = httpx.post(f"{server.base_url}/responses", json=ga_request())
    assert answer.status_code == 401 and answer.headers["x-request-id"].startswith("req_")
    assert error(answer) == REASONS["missing_api_key"].template
    assert answer.json()["error"]["type"] == "invalid_request_error"


def test_wrong_key_is_401_with_a_masked_key(standin):
    server = standin([Turn.message("x")])
    answer = httpx.post(f"{server.base_url}/responses", json=ga_request(),
                        headers={"Authorization": "Bearer sk-wrong-key-1234"})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"
    assert "sk-wrong" not in error(answer) and "1234" in error(answer)
    assert server.turn_index == 0


def test_records_keep_metadata_without_secrets(standin):
    server = standin([Turn.message("x")])
    with client(server) as c:
        c.post("/responses", json=ga_request(), headers={"OpenAI-Project": "proj_1"})
    (record,) = server.records
    assert record.method == "POST" and record.path == "/v1/responses" and record.status == 200
    assert record.headers["authorization"] == "<redacted>" and record.headers["openai-project"] == "proj_1"
    assert KEY not in repr(server.records)


# --- SSE -----------------------------------------------------------------------------------------


def test_sse_full_stream(standin):
    server = standin([[
        {"type": "reasoning", "summary": ["Thinking about the page layout."]},
        {"type": "message", "content": "Clicking the blue button now."},
        {"type": "computer_call", "action": CLICK},
    ]])
    with client(server) as c:
        answer = c.post("/responses", json=ga_request(stream=True, include=["reasoning.encrypted_content"]))
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = [(name, json.loads(data)) for name, data in parse_sse(answer.text)]
    assert all(name == data["type"] for name, data in events)
    kinds = [data["type"] for _, data in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    for expected in ("response.content_part.added", "response.content_part.done",
                     "response.output_text.done", "response.reasoning_summary_text.done"):
        assert expected in kinds
    added = [d["item"] for _, d in events if d["type"] == "response.output_item.added"]
    done = [d["item"] for _, d in events if d["type"] == "response.output_item.done"]
    assert "encrypted_content" not in added[0] and done[0]["encrypted_content"].startswith("gAAAAA")
    text = "".join(d["delta"] for _, d in events if d["type"] == "response.output_text.delta")
    summary = "".join(d["delta"] for _, d in events if d["type"] == "response.reasoning_summary_text.delta")
    assert text == "Clicking the blue button now." and summary == "Thinking about the page layout."
    final = events[-1][1]["response"]
    assert final["output"] == done and done[2]["actions"] == [CLICK]
    assert final == server.last_response()


def test_sse_completed_only(standin):
    server = standin([Turn.message("hi")], sse_style="completed_only")
    with client(server) as c:
        text = c.post("/responses", json=ga_request(stream=True)).text
    (event,) = parse_sse(text)
    assert event[0] is None and "event:" not in text
    assert json.loads(event[1])["type"] == "response.completed"


def test_sse_done_marker(standin):
    server = standin([Turn.message("hi")], sse_style="done_marker")
    with client(server) as c:
        text = c.post("/responses", json=ga_request(stream=True)).text
    events = parse_sse(text)
    assert events[-1] == (None, "[DONE]")
    assert json.loads(events[-2][1])["type"] == "response.completed"


def test_sse_incomplete_ends_with_response_incomplete(standin):
    server = standin([Turn(output=[{"type": "message", "content": "x"}], status="incomplete")])
    with client(server) as c:
        events = parse_sse(c.post("/responses", json=ga_request(stream=True)).text)
    assert events[-1][0] == "response.incomplete"


def test_invalid_stream_request_is_a_json_error(standin):
    server = standin([Turn.message("x")])
    with client(server) as c:
        answer = c.post("/responses", json=ga_request(stream=True, foo=1))
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/json"


# --- rejections ----------------------------------------------------------------------------------


def reject(server: StandIn, body: Any, rule: str, message: str, status: int = 400) -> dict[str, Any]:
    """POST ``body`` and assert it is rejected by ``rule`` with exactly ``message``."""
    with client(server) as c:
        answer = c.post("/responses", json=body)
    assert answer.status_code == status, answer.text
    assert error(answer) == message
    assert answer.json()["error"]["type"] == REASONS[rule].type
    assert server.rejections[-1].rule == rule and server.rejections[-1].message == message
    return answer.json()["error"]


REQUEST_RULES = [
    ("unknown parameter", ga_request(temprature=1), "unknown_parameter", "Unknown parameter: 'temprature'."),
    ("missing model", {"input": "x"}, "missing_parameter", "Missing required parameter: 'model'."),
    ("bad type", ga_request(stream="yes"), "invalid_type",
     "Invalid type for 'stream': expected a boolean, but got a string instead."),
    ("preview tool on GA model", {"model": GA, "input": "x", "tools": [PREVIEW_TOOL], "truncation": "auto"},
     "tool_not_supported", "Tool 'computer_use_preview' is not supported with gpt-5.4."),
    ("GA tool on preview model", {"model": PREVIEW, "input": "x", "tools": GA_TOOLS, "truncation": "auto"},
     "tool_not_supported", "Tool 'computer' is not supported with computer-use-preview."),
    ("GA tool with extra fields", ga_request(tools=[{"type": "computer", "display_width": 1024}]),
     "unknown_parameter", "Unknown parameter: 'tools[0].display_width'."),
    ("preview tool without width", preview_request(tools=[{**PREVIEW_TOOL, "display_width": None}]),
     "missing_parameter", "Missing required parameter: 'tools[0].display_width'."),
    ("preview tool without height",
     preview_request(tools=[{k: v for k, v in PREVIEW_TOOL.items() if k != "display_height"}]),
     "missing_parameter", "Missing required parameter: 'tools[0].display_height'."),
    ("preview tool without environment",
     preview_request(tools=[{k: v for k, v in PREVIEW_TOOL.items() if k != "environment"}]),
     "missing_parameter", "Missing required parameter: 'tools[0].environment'."),
    ("unknown environment", preview_request(tools=[{**PREVIEW_TOOL, "environment": "amiga"}]),
     "invalid_value",
     "Invalid value: 'amiga'. Supported values are: 'browser', 'mac', 'windows', 'ubuntu', and 'linux'."),
    ("preview without truncation", {k: v for k, v in preview_request().items() if k != "truncation"},
     "truncation_required", "The computer_use_preview tool requires 'truncation' to be 'auto' (got 'disabled')."),
    ("unknown previous response", ga_request(previous_response_id="resp_nope"),
     "previous_response_not_found", "Previous response with id 'resp_nope' not found."),
    ("orphan computer output", ga_request(input=[shot("call_bogus")]), "unknown_computer_call",
     "No tool call found for computer call output with call_id call_bogus."),
    ("orphan function output",
     ga_request(input=[{"type": "function_call_output", "call_id": "call_fn", "output": "1"}]),
     "unknown_function_call", "No tool call found for function call output with call_id call_fn."),
    ("display below minimum", preview_request(tools=[{**PREVIEW_TOOL, "display_height": 0}]),
     "below_minimum", "Invalid 'tools[0].display_height': integer below minimum value. Expected a value >= 1, "
     "but got 0 instead."),
    ("unknown include", ga_request(include=["reasoning.everything"]), "invalid_value",
     REASONS["invalid_value"].message(value="reasoning.everything", supported=", ".join(
         f"'{v}'" for v in INCLUDABLE[:-1]) + f", and '{INCLUDABLE[-1]}'")),
    ("unknown tool type", ga_request(tools=[{"type": "teleport"}]), "invalid_value",
     "Invalid value: 'teleport'. Supported values are: " + ", ".join(f"'{v}'" for v in TOOL_TYPES[:-1])
     + f", and '{TOOL_TYPES[-1]}'."),
    ("unknown input item type", ga_request(input=[{"type": "screenshot"}]), "invalid_value",
     REASONS["invalid_value"].message(value="screenshot", supported=", ".join(
         f"'{v}'" for v in INPUT_ITEM_TYPES[:-1]) + f", and '{INPUT_ITEM_TYPES[-1]}'")),
    ("item type the stand-in does not play", ga_request(input=[{"type": "item_reference", "id": "msg_1"}]),
     "unplayable_item", REASONS["unplayable_item"].message(value="item_reference")),
    ("invented reasoning item", ga_request(input=[{"type": "reasoning", "id": "rs_made_up", "summary": []}]),
     "item_not_found", REASONS["item_not_found"].message(id="rs_made_up")),
]


@pytest.mark.parametrize(("body", "rule", "message"), [r[1:] for r in REQUEST_RULES],
                         ids=[r[0] for r in REQUEST_RULES])
def test_request_rules(standin, body, rule, message):
    server = standin([Turn.message("never")])
    reject(server, body, rule, message, status=REASONS[rule].status)
    assert server.turn_index == 0  # a rejected request consumes no turn


def test_invalid_json_body(standin):
    server = standin([Turn.message("x")])
    with client(server) as c:
        answer = c.post("/responses", content=b"{not json", headers={"content-type": "application/json"})
    assert answer.status_code == 400 and error(answer) == REASONS["invalid_json"].template
    assert server.requests == ["{not json"]


@pytest.fixture
def ga_first(standin):
    """A GA server whose first turn (already played) asked for a computer call."""
    server = standin([Turn.call(CLICK, safety_checks=["malicious_instructions", "irrelevant_domain"]),
                      Turn.message("done")])
    with client(server) as c:
        response = c.post("/responses", json=ga_request()).json()
    return server, response, response["output"][0]


def test_tools_must_be_sent_every_turn(ga_first):
    server, r1, call = ga_first
    body = {"model": GA, "previous_response_id": r1["id"], "input": [shot(call["call_id"])]}
    reject(server, body, "computer_tool_required",
           "The input continues a computer-use conversation, so 'tools' must include the 'computer' "
           "tool on every request.")


def test_missing_computer_call_output(ga_first):
    server, r1, call = ga_first
    reject(server, ga_request(previous_response_id=r1["id"], input="next"), "no_computer_call_output",
           f"No tool output found for computer call {call['call_id']}.")


def test_unacknowledged_safety_checks(ga_first):
    server, r1, call = ga_first
    first, second = call["pending_safety_checks"]
    reject(server, ga_request(previous_response_id=r1["id"], input=[shot(call["call_id"])]),
           "unacknowledged_safety_check",
           f"Computer tool has unacknowledged safety check for ['{first['id']}', '{second['id']}']")
    reject(server, ga_request(previous_response_id=r1["id"],
                              input=[shot(call["call_id"], acknowledged_safety_checks=[second])]),
           "unacknowledged_safety_check", f"Computer tool has unacknowledged safety check for ['{first['id']}']")


def test_duplicate_tool_output(ga_first):
    server, r1, call = ga_first
    checks = call["pending_safety_checks"]
    out = shot(call["call_id"], acknowledged_safety_checks=checks)
    reject(server, ga_request(previous_response_id=r1["id"], input=[out, out]), "duplicate_tool_output",
           f"Duplicate tool output for call_id {call['call_id']}: each call takes exactly one output.")


def test_chained_request_must_not_replay_items(ga_first):
    server, r1, call = ga_first
    out = shot(call["call_id"], acknowledged_safety_checks=call["pending_safety_checks"])
    reject(server, ga_request(previous_response_id=r1["id"], input=[call, out]), "duplicate_item",
           f"Duplicate item found with id {call['id']}. Remove duplicate items from your input and try again.")


SCREENSHOT_RULES = [
    ("input_image type", {"type": "input_image", "image_url": data_url(png())}, "invalid_value",
     "Invalid value: 'input_image'. Supported values are: 'computer_screenshot'."),
    ("png bytes named jpeg", {"type": "computer_screenshot", "image_url": data_url(png(), "image/jpeg")},
     "image_not_decodable", "Invalid 'input[0].output.image_url': the data URL does not decode to a valid "
     "JPEG image."),
    ("bmp data url", {"type": "computer_screenshot", "image_url": data_url(png(), "image/bmp")},
     "image_not_data_url", "Invalid 'input[0].output.image_url': expected a URL or a base64 data URL of a PNG, "
     "JPEG, WebP or GIF image ('data:image/png;base64,...')."),
    ("not base64", {"type": "computer_screenshot", "image_url": "data:image/png;base64,@@@"},
     "image_not_decodable", "Invalid 'input[0].output.image_url': the data URL does not decode to a valid PNG image."),
    ("not a png", {"type": "computer_screenshot", "image_url": data_url(b"GIF89a" + bytes(64))},
     "image_not_decodable", "Invalid 'input[0].output.image_url': the data URL does not decode to a valid PNG image."),
    ("truncated png", {"type": "computer_screenshot", "image_url": data_url(png()[:-20])},
     "image_not_decodable", "Invalid 'input[0].output.image_url': the data URL does not decode to a valid PNG image."),
    ("truncated jpeg", {"type": "computer_screenshot", "image_url": data_url(encoded("JPEG")[:-40], "image/jpeg")},
     "image_not_decodable", "Invalid 'input[0].output.image_url': the data URL does not decode to a valid "
     "JPEG image."),
    ("truncated webp", {"type": "computer_screenshot", "image_url": data_url(encoded("WEBP")[:-10], "image/webp")},
     "image_not_decodable", "Invalid 'input[0].output.image_url': the data URL does not decode to a valid "
     "WEBP image."),
    ("neither url nor file", {"type": "computer_screenshot"}, "missing_parameter",
     "Missing required parameter: 'input[0].output.image_url'."),
    ("unknown detail", {"type": "computer_screenshot", "image_url": data_url(png()), "detail": "ultra"},
     "invalid_value", "Invalid value: 'ultra'. Supported values are: 'low', 'high', 'auto', and 'original'."),
]


@pytest.mark.parametrize(("output", "rule", "message"), [r[1:] for r in SCREENSHOT_RULES],
                         ids=[r[0] for r in SCREENSHOT_RULES])
def test_screenshot_rules(ga_first, output, rule, message):
    server, r1, call = ga_first
    item = {"type": "computer_call_output", "call_id": call["call_id"], "output": output,
            "acknowledged_safety_checks": call["pending_safety_checks"]}
    reject(server, ga_request(previous_response_id=r1["id"], input=[item]), rule, message)


def test_preview_screenshot_must_match_the_display(standin):
    server = standin([Turn.call(CLICK), Turn.message("done")])
    with client(server) as c:
        r1 = c.post("/responses", json=preview_request()).json()
    call_id = r1["output"][0]["call_id"]
    reject(server, preview_request(previous_response_id=r1["id"], input=[shot(call_id, png(128, 96))]),
           "screenshot_wrong_size", "Invalid 'input[0].output.image_url': the screenshot is 128x96 but the "
           "computer_use_preview tool declares a 64x48 display.")


def test_missing_function_call_output(standin):
    server = standin([Turn.function_call("lookup", {})])
    tools = [*GA_TOOLS, {"type": "function", "name": "lookup"}]
    with client(server) as c:
        r1 = c.post("/responses", json=ga_request(tools=tools)).json()
    reject(server, ga_request(tools=tools, previous_response_id=r1["id"], input="and?"),
           "no_function_call_output", f"No tool output found for function call {r1['output'][0]['call_id']}.")


# --- stateless replay rules ----------------------------------------------------------------------


@pytest.fixture
def stateless(standin):
    """A store=false conversation after one turn: (server, request body, rs item, cu item)."""
    server = standin([Turn.call(CLICK, reasoning="look"), Turn.call(CLICK), Turn.message("done")])
    body = ga_request(store=False, include=["reasoning.encrypted_content"])
    with client(server) as c:
        r1 = c.post("/responses", json=body).json()
    rs, cu = r1["output"]
    return server, body, rs, cu, r1


def test_reasoning_without_its_following_item(stateless):
    server, body, rs, cu, _ = stateless
    reject(server, {**body, "input": [rs, shot(cu["call_id"])]}, "reasoning_without_following",
           f"Item '{rs['id']}' of type 'reasoning' was provided without its required following item.")


def test_reasoning_without_encrypted_content(stateless):
    server, body, rs, cu, _ = stateless
    bare = {k: v for k, v in rs.items() if k != "encrypted_content"}
    reject(server, {**body, "input": [bare, cu, shot(cu["call_id"])]}, "encrypted_content_missing",
           REASONS["encrypted_content_missing"].message(id=rs["id"]))


def test_reasoning_with_forged_encrypted_content(stateless):
    server, body, rs, cu, _ = stateless
    forged = {**rs, "encrypted_content": rs["encrypted_content"][:-4] + "AAAA"}
    reject(server, {**body, "input": [forged, cu, shot(cu["call_id"])]}, "encrypted_content_mismatch",
           f"The encrypted content for item '{rs['id']}' could not be verified.")


def test_changed_item_is_rejected(stateless):
    server, body, rs, cu, _ = stateless
    moved = {**cu, "actions": [{**CLICK, "x": 11}]}
    reject(server, {**body, "input": [rs, moved, shot(cu["call_id"])]}, "item_modified",
           f"Item '{cu['id']}' of type 'computer_call' does not match the item that was issued: 'actions' differs.")


def test_changed_item_id_is_rejected(stateless):
    server, body, rs, cu, _ = stateless
    renamed = {**cu, "id": "cu_" + "0" * 48}
    reject(server, {**body, "input": [rs, renamed, shot(cu["call_id"])]}, "item_not_found",
           REASONS["item_not_found"].message(id=renamed["id"]), status=404)
    reject(server, {**body, "input": [renamed, shot(cu["call_id"])]}, "item_not_found",
           REASONS["item_not_found"].message(id=renamed["id"]), status=404)


def test_added_field_on_replayed_item_is_rejected(stateless):
    server, body, rs, cu, _ = stateless
    reject(server, {**body, "input": [rs, {**cu, "note": "mine"}, shot(cu["call_id"])]}, "unknown_parameter",
           "Unknown parameter: 'input[1].note'.")


def test_stateless_history_must_be_complete_and_in_order(stateless):
    server, body, rs, cu, _ = stateless
    with client(server) as c:
        r2 = c.post("/responses", json={**body, "input": [rs, cu, shot(cu["call_id"])]}).json()
    (cu2,) = r2["output"]
    reject(server, {**body, "input": [cu2, shot(cu2["call_id"])]}, "history_incomplete",
           f"Item '{rs['id']}' of type 'reasoning' (from response '{server.responses[0]['id']}') "
           "is missing from the input: a stateless request must replay every earlier output item, in order.")
    reject(server, {**body, "input": [cu2, shot(cu2["call_id"]), rs, cu, shot(cu["call_id"])]},
           "history_out_of_order",
           f"Item '{cu2['id']}' is out of place in the input: replay earlier output items once each, in the "
           f"order they were issued (expected '{rs['id']}' here).")
    reject(server, {**body, "input": [rs, cu, shot(cu["call_id"]), rs, cu, cu2, shot(cu2["call_id"])]},
           "duplicate_item", f"Duplicate item found with id {rs['id']}. Remove duplicate items from your "
           "input and try again.")
    with client(server) as c:
        ok = c.post("/responses", json={**body, "input": [rs, cu, shot(cu["call_id"]), cu2, shot(cu2["call_id"])]})
    assert ok.status_code == 200, ok.text


def test_previous_response_stored_false_is_not_found(stateless):
    server, body, rs, cu, r1 = stateless
    reject(server, ga_request(previous_response_id=r1["id"], input=[shot(cu["call_id"])]),
           "previous_response_not_found", f"Previous response with id '{r1['id']}' not found.")


def test_reasoning_from_store_false_without_include_cannot_be_replayed(standin):
    server = standin([Turn.call(CLICK, reasoning="look")])
    body = ga_request(store=False)
    with client(server) as c:
        rs, cu = c.post("/responses", json=body).json()["output"]
    assert "encrypted_content" not in rs
    reject(server, {**body, "input": [rs, cu, shot(cu["call_id"])]}, "item_not_found",
           REASONS["item_not_found"].message(id=rs["id"]), status=404)


# --- faults --------------------------------------------------------------------------------------


def test_429_with_retry_after_does_not_consume_a_turn(standin):
    server = standin([Turn.message("first")])
    server.inject("429", retry_after=0.05)
    with client(server) as c:
        limited = c.post("/responses", json=ga_request())
        assert limited.status_code == 429 and limited.headers["retry-after"] == "0.05"
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
        ok = c.post("/responses", json=ga_request())
    assert ok.json()["output"][0]["content"][0]["text"] == "first"
    assert len(server.requests) == 2 and server.records[0].fault == "429"
    assert server.records[0].rule == "rate_limit_exceeded" and server.rejections == []


def test_429_with_retry_after_ms_and_extra_headers(standin):
    server = standin([Turn.message("x")])
    server.inject("429", retry_after_ms=20, headers={"x-should-retry": "true"})
    with client(server) as c:
        limited = c.post("/responses", json=ga_request())
    assert limited.headers["retry-after-ms"] == "20" and limited.headers["x-should-retry"] == "true"
    assert "retry-after" not in limited.headers


@pytest.mark.parametrize(("kind", "status", "code"), [
    ("insufficient_quota", 429, "insufficient_quota"), ("500", 500, None), ("503", 503, None)])
def test_status_faults(standin, kind, status, code):
    server = standin([Turn.message("x")])
    server.inject(kind, times=2)
    with client(server) as c:
        answers = [c.post("/responses", json=ga_request()) for _ in range(3)]
    assert [a.status_code for a in answers] == [status, status, 200]
    assert answers[0].json()["error"]["code"] == code and answers[0].headers["x-request-id"]
    assert server.turn_index == 1


def test_reset_closes_without_an_answer(standin):
    server = standin([Turn.message("x")])
    server.inject("reset")
    with client(server) as c:
        with pytest.raises(httpx.TransportError):
            c.post("/responses", json=ga_request())
        assert c.post("/responses", json=ga_request()).status_code == 200
    assert server.records[0].status is None and server.records[0].fault == "reset"


def test_cut_stream_stops_before_completed(standin):
    server = standin([Turn.message("x")])
    server.inject("cut_stream")
    lines = []
    with client(server) as c:
        with pytest.raises(httpx.TransportError):
            with c.stream("POST", "/responses", json=ga_request(stream=True)) as answer:
                for line in answer.iter_lines():
                    lines.append(line)
        assert any("response.created" in line for line in lines)
        assert not any("response.completed" in line for line in lines)
        assert c.post("/responses", json=ga_request()).status_code == 200
    assert server.turn_index == 1


def test_cut_stream_on_a_json_request_truncates_the_body(standin):
    server = standin([Turn.message("x")])
    server.inject("cut_stream")
    with client(server) as c:
        with pytest.raises(httpx.TransportError):
            c.post("/responses", json=ga_request())


def test_slow_answers_after_the_delay(standin):
    server = standin([Turn.message("late")])
    server.inject("slow", delay=0.3)
    with client(server) as c:
        started = time.monotonic()
        answer = c.post("/responses", json=ga_request())
    assert time.monotonic() - started >= 0.3 and answer.status_code == 200
    assert server.turn_index == 1


def test_slow_request_the_client_gave_up_on_consumes_no_turn(standin):
    server = standin([Turn.message("first"), Turn.message("second")])
    server.inject("slow", delay=0.4)
    with client(server, timeout=0.1) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.post("/responses", json=ga_request())
    time.sleep(0.5)
    with client(server) as c:
        answer = c.post("/responses", json=ga_request())
    assert answer.json()["output"][0]["content"][0]["text"] == "first"


def test_inject_rejects_unknown_faults_and_options(standin):
    server = standin()
    with pytest.raises(ValueError, match="unknown fault"):
        server.inject("418")
    with pytest.raises(ValueError, match="takes no option"):
        server.inject("500", retry_after=1)


def test_png_size_reads_real_pngs_only():
    assert png_size(png(30, 20)) == (30, 20)
    assert png_size(png()[:-1]) is None
    broken = bytearray(png())
    broken[20] ^= 0xFF  # IHDR no longer matches its CRC
    assert png_size(bytes(broken)) is None


# --- the request contract: what the service accepts ----------------------------------------------


def answer_call_with(server: StandIn, output: dict[str, Any]) -> httpx.Response:
    """Play a GA computer call, then answer it with ``output`` as the screenshot."""
    with client(server) as c:
        r1 = c.post("/responses", json=ga_request()).json()
        item = {"type": "computer_call_output", "call_id": r1["output"][0]["call_id"], "output": output}
        return c.post("/responses", json=ga_request(previous_response_id=r1["id"], input=[item]))


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")])
def test_jpeg_webp_and_gif_screenshots_are_accepted(standin, fmt, mime):
    server = standin([Turn.call(CLICK), Turn.message("done")])
    image = encoded(fmt, color="red")
    answer = answer_call_with(server, {"type": "computer_screenshot", "image_url": data_url(image, mime)})
    assert answer.status_code == 200, answer.text
    assert server.last_screenshot() == image and server.rejections == []


def test_preview_jpeg_screenshot_must_match_the_display_too(standin):
    server = standin([Turn.call(CLICK), Turn.message("done")])
    with client(server) as c:
        r1 = c.post("/responses", json=preview_request()).json()
    item = {"type": "computer_call_output", "call_id": r1["output"][0]["call_id"],
            "output": {"type": "computer_screenshot", "image_url": data_url(encoded("JPEG", 80, 60), "image/jpeg")}}
    reject(server, preview_request(previous_response_id=r1["id"], input=[item]), "screenshot_wrong_size",
           "Invalid 'input[0].output.image_url': the screenshot is 80x60 but the computer_use_preview tool "
           "declares a 64x48 display.")


@pytest.mark.parametrize("detail", ["original", "low", "high", "auto"])
def test_screenshot_detail_is_accepted(standin, detail):
    server = standin([Turn.call(CLICK), Turn.message("done")])
    answer = answer_call_with(server, {"type": "computer_screenshot", "image_url": data_url(png()), "detail": detail})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("output", [
    {"type": "computer_screenshot", "file_id": "file-abc123"},
    {"type": "computer_screenshot", "image_url": "https://example.com/screen.png"},
], ids=["file_id", "https url"])
def test_screenshots_by_file_id_or_url_are_accepted_on_trust(standin, output):
    server = standin([Turn.call(CLICK), Turn.message("done")])
    answer = answer_call_with(server, output)
    assert answer.status_code == 200, answer.text
    assert server.last_screenshot() is None  # nothing the stand-in could look at


# Every parameter of ResponseCreateParamsBase the stand-in does not act on, with a valid value.
UNUSED_PARAMETERS: dict[str, Any] = {
    "background": False, "prompt_cache_key": "cua-run-1", "service_tier": "flex",
    "safety_identifier": "user-7f3a", "metadata": {"run": "42"}, "stream_options": {"include_obfuscation": False},
    "user": "user-7f3a", "temperature": 0.2, "top_p": 0.9, "parallel_tool_calls": False, "max_tool_calls": 5,
    "text": {"format": {"type": "text"}, "verbosity": "low"}, "top_logprobs": 3, "max_output_tokens": 16,
    "prompt": {"id": "pmpt_1", "version": "2", "variables": {"city": "Oslo"}},
    "prompt_cache_retention": "24h", "prompt_cache_options": {"mode": "implicit", "ttl": "30m"},
    "tool_choice": {"type": "computer"}, "context_management": [{"type": "compaction", "compact_threshold": 2000}],
    "image": {"context_compression": "auto"}, "moderation": {"model": "omni-moderation-latest"},
    "access_programs": {"cyber": "standard"},
}


def test_every_documented_parameter_is_accepted(standin):
    from cua.testing.standin import KNOWN_PARAMETERS

    body = ga_request(stream=True, instructions="Be brief.", store=True, include=["reasoning.encrypted_content"],
                      truncation="auto", reasoning={"effort": "low", "summary": "auto"}, **UNUSED_PARAMETERS)
    # Everything ResponseCreateParamsBase lists is in this body, except the two that exclude each other.
    assert set(KNOWN_PARAMETERS) - set(body) == {"previous_response_id", "conversation"}
    server = standin([Turn.message("fine")])
    with client(server) as c:
        answer = c.post("/responses", json=body)
    assert answer.status_code == 200, answer.text
    final = json.loads(parse_sse(answer.text)[-1][1])["response"]
    assert final["service_tier"] == "flex" and final["metadata"] == {"run": "42"}
    assert final["prompt_cache_key"] == "cua-run-1" and final["top_p"] == 0.9


def test_conversation_parameter_is_accepted(standin):
    server = standin([Turn.message("a"), Turn.message("b")])
    with client(server) as c:
        assert c.post("/responses", json=ga_request(conversation="conv_123")).status_code == 200
        assert c.post("/responses", json=ga_request(conversation={"id": "conv_123"})).status_code == 200


@pytest.mark.parametrize("choice", [
    "none", "auto", "required", {"type": "computer"}, {"type": "function", "name": "lookup"},
    {"type": "allowed_tools", "mode": "required", "tools": [{"type": "computer"}]},
], ids=lambda c: c if isinstance(c, str) else c["type"])
def test_tool_choice_forms_are_accepted(standin, choice):
    server = standin([Turn.message("ok")])
    tools = [*GA_TOOLS, {"type": "function", "name": "lookup", "parameters": {"type": "object"}, "strict": False}]
    with client(server) as c:
        answer = c.post("/responses", json=ga_request(tools=tools, tool_choice=choice))
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("reasoning", [
    {"effort": "none"}, {"effort": "minimal"}, {"effort": "xhigh"}, {"effort": "max"},
    {"summary": "concise"}, {"summary": "detailed"}, {"generate_summary": "auto"}, {"context": "all_turns"},
], ids=lambda r: "-".join(f"{k}={v}" for k, v in r.items()))
def test_reasoning_values_are_accepted(standin, reasoning):
    server = standin([Turn.message("ok")])
    with client(server) as c:
        assert c.post("/responses", json=ga_request(reasoning=reasoning)).status_code == 200


def test_messages_of_each_role_with_their_own_parts_are_accepted(standin):
    server = standin([Turn.message("ok")])
    history = [
        {"role": "developer", "content": [{"type": "input_text", "text": "Stay on the page."}]},
        {"role": "user", "content": [{"type": "input_text", "text": "Look."},
                                     {"type": "input_image", "image_url": data_url(encoded("JPEG"), "image/jpeg"),
                                      "detail": "original"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Seen it."}],
         "phase": "final_answer"},
        {"role": "user", "content": "Now click."},
    ]
    with client(server) as c:
        answer = c.post("/responses", json=ga_request(input=history))
    assert answer.status_code == 200, answer.text


def test_a_background_response_is_finished_at_once_and_cancel_returns_it(standin):
    server = standin([Turn.message("done")])
    with client(server) as c:
        created = c.post("/responses", json=ga_request(background=True)).json()
        assert created["background"] is True and created["status"] == "completed"
        cancelled = c.post(f"/responses/{created['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["id"] == created["id"]


# --- the request contract: what the service rejects ----------------------------------------------


def assistant_says(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": list(parts)}]


LONG_NAME = "f" * 65
CONTRACT_REJECTIONS = [
    # (test id, body, param, code, message)
    ("reasoning effort", ga_request(reasoning={"effort": "huge"}), "reasoning.effort", "invalid_value",
     "Invalid value: 'huge'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high', 'xhigh', and 'max'."),
    ("reasoning summary", ga_request(reasoning={"summary": "verbose"}), "reasoning.summary", "invalid_value",
     "Invalid value: 'verbose'. Supported values are: 'auto', 'concise', and 'detailed'."),
    ("unknown reasoning field", ga_request(reasoning={"budget": 3}), "reasoning.budget", "unknown_parameter",
     "Unknown parameter: 'reasoning.budget'."),
    ("tool_choice string", ga_request(tool_choice="always"), "tool_choice", "invalid_value",
     "Invalid value: 'always'. Supported values are: 'none', 'auto', and 'required'."),
    ("tool_choice type", ga_request(tool_choice={"type": "teleport"}), "tool_choice.type", "invalid_value",
     "Invalid value: 'teleport'. Supported values are: 'function', 'custom', 'mcp', 'allowed_tools', "
     "'file_search', 'web_search_preview', 'computer', 'computer_use_preview', 'computer_use', "
     "'web_search_preview_2025_03_11', 'image_generation', 'code_interpreter', 'programmatic_tool_calling', "
     "'apply_patch', and 'shell'."),
    ("tool_choice function without name", ga_request(tool_choice={"type": "function"}), "tool_choice.name",
     "missing_required_parameter", "Missing required parameter: 'tool_choice.name'."),
    ("allowed_tools mode", ga_request(tool_choice={"type": "allowed_tools", "mode": "none", "tools": []}),
     "tool_choice.mode", "invalid_value", "Invalid value: 'none'. Supported values are: 'auto' and 'required'."),
    ("truncation", ga_request(truncation="sometimes"), "truncation", "invalid_value",
     "Invalid value: 'sometimes'. Supported values are: 'auto' and 'disabled'."),
    ("service_tier", ga_request(service_tier="turbo"), "service_tier", "invalid_value",
     "Invalid value: 'turbo'. Supported values are: 'auto', 'default', 'flex', 'scale', 'priority', 'fast', "
     "and 'ultrafast'."),
    ("text verbosity", ga_request(text={"verbosity": "loud"}), "text.verbosity", "invalid_value",
     "Invalid value: 'loud'. Supported values are: 'low', 'medium', and 'high'."),
    ("temperature above 2", ga_request(temperature=2.5), "temperature", "decimal_above_max_value",
     "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 2.5 instead."),
    ("temperature below 0", ga_request(temperature=-0.1), "temperature", "decimal_below_min_value",
     "Invalid 'temperature': decimal below minimum value. Expected a value >= 0, but got -0.1 instead."),
    ("top_p above 1", ga_request(top_p=1.5), "top_p", "decimal_above_max_value",
     "Invalid 'top_p': decimal above maximum value. Expected a value <= 1, but got 1.5 instead."),
    ("max_output_tokens below 16", ga_request(max_output_tokens=15), "max_output_tokens", "integer_below_min_value",
     "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got 15 instead."),
    ("top_logprobs above 20", ga_request(top_logprobs=21), "top_logprobs", "integer_above_max_value",
     "Invalid 'top_logprobs': integer above maximum value. Expected a value <= 20, but got 21 instead."),
    ("function name with a space", ga_request(tools=[{"type": "function", "name": "get weather"}]),
     "tools[0].name", "invalid_value", "Invalid 'tools[0].name': string does not match pattern. Expected a "
     "string that matches the pattern '^[a-zA-Z0-9_-]+$'."),
    ("function name with a dot", ga_request(tools=[*GA_TOOLS, {"type": "function", "name": "page.read"}]),
     "tools[1].name", "invalid_value", "Invalid 'tools[1].name': string does not match pattern. Expected a "
     "string that matches the pattern '^[a-zA-Z0-9_-]+$'."),
    ("empty function name", ga_request(tools=[{"type": "function", "name": ""}]), "tools[0].name",
     "invalid_value", "Invalid 'tools[0].name': string does not match pattern. Expected a string that matches "
     "the pattern '^[a-zA-Z0-9_-]+$'."),
    ("function name of 65 characters", ga_request(tools=[{"type": "function", "name": LONG_NAME}]),
     "tools[0].name", "string_above_max_length", "Invalid 'tools[0].name': string too long. Expected a string "
     "with maximum length 64, but got a string with length 65 instead."),
    ("output_text in a user message",
     ga_request(input=[{"role": "user", "content": [{"type": "output_text", "text": "hi"}]}]),
     "input[0].content[0]", "invalid_value",
     "Invalid value: 'output_text'. Supported values are: 'input_text', 'input_image', and 'input_file'."),
    ("input_text in an assistant message", ga_request(input=assistant_says({"type": "input_text", "text": "hi"})),
     "input[1].content[0]", "invalid_value",
     "Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'."),
    ("input_image in an assistant message",
     ga_request(input=assistant_says({"type": "input_image", "image_url": data_url(png())})),
     "input[1].content[0]", "invalid_value",
     "Invalid value: 'input_image'. Supported values are: 'output_text' and 'refusal'."),
    ("input_image detail", ga_request(input=[{"role": "user", "content": [
        {"type": "input_image", "image_url": data_url(png()), "detail": "max"}]}]),
     "input[0].content[0].detail", "invalid_value",
     "Invalid value: 'max'. Supported values are: 'low', 'high', 'auto', and 'original'."),
    ("metadata of 17 pairs", ga_request(metadata={f"k{i}": "v" for i in range(17)}), "metadata",
     "object_above_max_properties", "Invalid 'metadata': too many properties. Expected an object with at most "
     "16 properties, but got an object with 17 properties instead."),
    ("metadata value of 513 characters", ga_request(metadata={"note": "x" * 513}), "metadata.note",
     "string_above_max_length", "Invalid 'metadata.note': string too long. Expected a string with maximum "
     "length 512, but got a string with length 513 instead."),
    ("stream_options without stream", ga_request(stream_options={"include_obfuscation": False}), "stream_options",
     "invalid_value", "'stream_options' is only allowed when 'stream' is true."),
    ("conversation with previous_response_id", ga_request(conversation="conv_1", previous_response_id="resp_1"),
     "conversation", "invalid_value", "'conversation' and 'previous_response_id' cannot be used together."),
    ("metadata of the wrong type", ga_request(metadata=["run"]), "metadata", "invalid_type",
     "Invalid type for 'metadata': expected an object, but got an array instead."),
]


@pytest.mark.parametrize(("body", "param", "code", "message"), [r[1:] for r in CONTRACT_REJECTIONS],
                         ids=[r[0] for r in CONTRACT_REJECTIONS])
def test_contract_rejections_answer_in_the_service_error_shape(standin, body, param, code, message):
    server = standin([Turn.message("never")])
    with client(server) as c:
        answer = c.post("/responses", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"error": {"message": message, "type": "invalid_request_error",
                                       "param": param, "code": code}}
    assert server.turn_index == 0


def test_every_rule_says_where_its_message_comes_from():
    documented = {rule for rule, reason in REASONS.items() if reason.source == "documented"}
    assert documented == {"tool_not_supported", "no_computer_call_output", "unacknowledged_safety_check",
                          "reasoning_without_following"}
    assert {reason.source for reason in REASONS.values()} == {"documented", "observed", "ours"}
