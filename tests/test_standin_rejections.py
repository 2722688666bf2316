"""What the stand-in Responses server refuses, each rule with its exact message: the other
tests of the project rely on it being at least as strict as the real service."""

from __future__ import annotations

import pytest
from standin_helpers import (
    CLICK,
    GA,
    GA_TOOLS,
    PREVIEW,
    PREVIEW_TOOL,
    client,
    data_url,
    encoded,
    error,
    ga_request,
    png,
    preview_request,
    reject,
    shot,
    standin,  # noqa: F401 - a fixture, used by name
)

from cua.testing.standin import (
    INCLUDABLE,
    REASONS,
    TOOL_TYPES,
    Turn,
)
from cua.testing.standin.contract import INPUT_ITEM_TYPES

# --- rejections ----------------------------------------------------------------------------------


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
    ("verbosity on the preview model", preview_request(text={"verbosity": "low"}), "verbosity_unsupported",
     "Unsupported value: 'verbosity' does not support 'low' with this model. Supported values are: 'medium'."),
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
