"""The stand-in Responses server over real HTTP with plain httpx: conversations that go
through (chained, stateless, streamed, with functions and safety checks), auth, SSE, and the
rules that tie a stateless request to the items issued before."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from PIL import Image
from standin_helpers import (
    CLICK,
    GA,
    KEY,
    client,
    error,
    ga_request,
    parse_sse,
    png,
    preview_request,
    reject,
    shot,
    standin,  # noqa: F401 - a fixture, used by name
)

from cua.testing.standin import (
    REASONS,
    ScriptError,
    StandIn,
    Turn,
)

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
