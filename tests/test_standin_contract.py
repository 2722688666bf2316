"""The request contract of the stand-in Responses server: what the service accepts is accepted
(image formats, documented parameters, tool_choice, roles), and every rejection answers in
the service's error shape with a stated source."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from standin_helpers import (
    CLICK,
    GA_TOOLS,
    client,
    data_url,
    encoded,
    ga_request,
    parse_sse,
    png,
    preview_request,
    reject,
    standin,  # noqa: F401 - a fixture, used by name
)

from cua.testing.standin import (
    REASONS,
    StandIn,
    Turn,
)

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
