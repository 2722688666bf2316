"""Wire models keep what the service sends, so stateless runs can replay it exactly."""

from cua.providers.openai.models import (
    ComputerCall,
    ComputerCallOutput,
    ComputerScreenshot,
    CreateRequest,
    FunctionCall,
    Message,
    Reasoning,
    Response,
    UnknownItem,
    computer_tool,
    tool_format_for,
)


def test_output_items_are_typed_and_unknown_ones_kept():
    raw = {
        "id": "resp_1",
        "status": "completed",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Look"}],
             "encrypted_content": "abc"},
            {"type": "computer_call", "id": "cu_1", "call_id": "call_1", "status": "completed",
             "actions": [{"type": "click", "x": 1, "y": 2}], "pending_safety_checks": [], "future": 1},
            {"type": "message", "role": "assistant", "phase": "commentary",
             "content": [{"type": "output_text", "text": "Clicking."}]},
            {"type": "function_call", "call_id": "call_2", "name": "goto", "arguments": "{}"},
            {"type": "web_search_call", "id": "ws_1", "anything": [1, 2]},
        ],
        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
                  "output_tokens_details": {"reasoning_tokens": 3}},
        "brand_new_field": True,
    }
    response = Response.model_validate(raw)
    kinds = [type(i) for i in response.output]
    assert kinds == [Reasoning, ComputerCall, Message, FunctionCall, UnknownItem]
    assert [i.wire() for i in response.output] == raw["output"]
    assert response.output[0].summary_text() == "Look"
    assert response.output[1].raw_actions() == [{"type": "click", "x": 1, "y": 2}]
    assert response.output[2].phase == "commentary"
    assert response.usage.reasoning_tokens == 3


def test_preview_call_has_one_action():
    call = ComputerCall.model_validate({"type": "computer_call", "call_id": "c", "action": {"type": "wait"}})
    assert call.raw_actions() == [{"type": "wait"}]


def test_response_without_output_is_empty_not_a_crash():
    assert Response.model_validate({"id": "r"}).output == []


def test_tool_formats():
    assert tool_format_for("computer-use-preview") == "preview"
    assert tool_format_for("computer-use-preview-2025-03-11") == "preview"
    assert tool_format_for("gpt-5.4") == "computer"
    assert computer_tool("computer", 1024, 768, "browser") == {"type": "computer"}
    assert computer_tool("preview", 1280, 800, "ubuntu") == {
        "type": "computer_use_preview", "display_width": 1280, "display_height": 800, "environment": "ubuntu"}


def test_call_output_and_request_leave_out_unset_fields():
    out = ComputerCallOutput(call_id="call_1", output=ComputerScreenshot(image_url="data:image/png;base64,AA"))
    assert out.wire() == {
        "type": "computer_call_output", "call_id": "call_1", "acknowledged_safety_checks": [],
        "output": {"type": "computer_screenshot", "image_url": "data:image/png;base64,AA"},
    }
    body = CreateRequest(model="m", input=[], tools=[{"type": "computer"}]).wire()
    assert set(body) == {"model", "input", "tools"}
