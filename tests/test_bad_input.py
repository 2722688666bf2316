"""Bad input as a user meets it: one message of ours naming the file and field, a documented exit
code, never a traceback and never a hang. Scenario files, a CUA_PRICES file, a damaged run folder,
a computer-server and a model endpoint that answer nonsense (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bad_input_servers import Answer, CannedServer, data_line  # noqa: E402
from cli_helpers import clean_env, finish, start_cua  # noqa: E402

from cua.environments.remote import RemoteEnvironment  # noqa: E402
from cua.errors import ConfigError, EnvironmentError_  # noqa: E402
from cua.pricing import prices  # noqa: E402
from cua.providers.openai.client import ClientConfig, ResponsesClient  # noqa: E402
from cua.providers.errors import APIError  # noqa: E402
from cua.providers.openai.models import CreateRequest  # noqa: E402
from cua.providers.retry import RetryPolicy  # noqa: E402
from cua.scenario import load_scenario, prepared  # noqa: E402
from cua.selector_syntax import check_selector  # noqa: E402

HEAD = "name: bad\ntask: Say hello.\n"
SHOT = "checks:\n  - screenshot: {region: {x: 0, y: 0, width: 30, height: 20}, baseline: %s}\n"


def _bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, levels + 1):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# (file text, words the one message must hold besides the file's path)
BAD_SCENARIOS = {
    "url regex": (HEAD + "checks:\n  - url_matches: '(unclosed'\n",
                  ["checks.0.url_matches", "not a valid regular expression"]),
    "answer regex": (HEAD + "checks:\n  - answer_matches: '[a-'\n",
                     ["checks.0.answer_matches", "not a valid regular expression"]),
    "css selector": (HEAD + "checks:\n  - selector: {selector: 'div[data-x'}\n",
                     ["checks.0.selector.selector", "not a valid CSS selector"]),
    "selector chain": (HEAD + "checks:\n  - selector: {selector: '#a >> > '}\n",
                       ["checks.0.selector.selector", "not a valid CSS selector"]),
    "missing baseline": (HEAD + SHOT % "baselines/none.png",
                         ["checks.0.screenshot.baseline", "none.png does not exist"]),
    "baseline not an image": (HEAD + SHOT % "not-an-image.png",
                              ["checks.0.screenshot.baseline", "not an image"]),
    "baseline of another size": (HEAD + SHOT % "small.png",
                                 ["checks.0.screenshot.baseline", "is 10x10, the region is 30x20"]),
    "negative region": (HEAD + SHOT.replace("x: 0", "x: -5") % "small.png",
                        ["checks.0.screenshot.region.x", "greater than or equal to 0"]),
    "region off the display": (HEAD + "display: 800x600\n" + SHOT.replace("x: 0", "x: 790") % "small.png",
                               ["checks.0.screenshot.region", "does not fit the 800x600 display"]),
    "bad display": (HEAD + "display: huge\n", ["field display", "WIDTHxHEIGHT"]),
    "function without name": (HEAD + "script:\n  - function: {arguments: {url: 'http://x/'}}\n",
                              ["script.0", "needs a name"]),
    "function arguments not a mapping": (HEAD + "script:\n  - function: {name: goto, arguments: [1]}\n",
                                         ["script.0", "'goto'", "mapping"]),
    "unknown script action": (HEAD + "script:\n  - actions: [{type: tap, x: 1, y: 1}]\n",
                              ["script.0", "action 1", "unknown action type 'tap'"]),
    "bad script action": (HEAD + "script:\n  - actions: [{type: click, x: left, y: 1}]\n",
                          ["script.0", "action 1", "bad click action", "x"]),
    "billion laughs": (HEAD + _bomb(), ["expands to more than 100000 values"]),
    "alias of itself": (HEAD + "script: &loop [*loop]\n", ["line 3", "alias refers to itself"]),
    "deep nesting": (HEAD + "x: " + "[" * 3000 + "]" * 3000 + "\n", ["line 3", "not valid YAML"]),
    "huge file": (HEAD + "# " + "x" * (1 << 20) + "\n", ["larger than 1024 KiB"]),
    "bad variable value": (HEAD + "variables: {id: {default: 'x['}}\n"
                           "checks:\n  - selector: {selector: '#{{id}}'}\n",
                           ["with its variables filled in", "checks.0.selector.selector", "'#x['"]),
}


def _scenario_folder(tmp_path: Path) -> Path:
    Image.new("RGB", (10, 10), "white").save(tmp_path / "small.png")
    (tmp_path / "not-an-image.png").write_text("this is text, not a PNG")
    return tmp_path


@pytest.mark.parametrize("case", sorted(BAD_SCENARIOS))
def test_a_bad_scenario_is_refused_when_it_loads(case: str, tmp_path: Path) -> None:
    text, words = BAD_SCENARIOS[case]
    path = _scenario_folder(tmp_path) / "bad.cua.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        with prepared(load_scenario(path)):
            pass
    message = str(caught.value)
    assert message.startswith(str(path)), message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert "pydantic" not in message and "\n" not in message


def test_non_utf8_and_unreadable_scenarios(tmp_path: Path) -> None:
    (tmp_path / "latin1.cua.yaml").write_bytes(b"name: caf\xe9\ntask: t\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_scenario(tmp_path / "latin1.cua.yaml")
    with pytest.raises(ConfigError, match="cannot read the scenario file"):
        load_scenario(tmp_path)  # a folder
    with pytest.raises(ConfigError, match="larger than"):
        load_scenario("/dev/zero")  # endless: read only up to the cap


VALID_SELECTORS = [
    "#welcome", "div.card > a[href^='http']", "li:nth-child(2 of .x)", "a:not(.b, .c)",
    "button:has-text(\"Sign in\")", "text=Hello >> nth=0", "#list >> text=\"a >> b\"", "//div[@id='a']",
    "xpath=//a", "\"Sign in\"", "role=button[name=\"Save\"]", "internal:role=button", "data-testid=save",
    "*css=div >> a", "div:near(.a, 120)", "a:text-matches(\"x\", \"i\")", "> a", "input:-webkit-autofill",
    "a:visible", "a:nth-match(li, 2)", "svg|rect", "[data-x=\"a]\"]", "div:has(> p)", "a\\",
]


@pytest.mark.parametrize("selector", VALID_SELECTORS)
def test_valid_playwright_selectors_are_accepted(selector: str) -> None:
    check_selector(selector)


CLI_CASES = {
    "css selector": BAD_SCENARIOS["css selector"][0],
    "bad variable value": BAD_SCENARIOS["bad variable value"][0],
    # Where the aliases land in a field that takes anything, filling in the variables walked all
    # 9**9 values: the run hung, eating memory.
    "billion laughs": HEAD + _bomb() + "script:\n  - actions: [{type: wait, note: *a9}]\n",
}


def test_bad_scenarios_through_the_cli_are_one_line_and_exit_2(tmp_path: Path) -> None:
    folder = _scenario_folder(tmp_path)
    procs = {}
    for case, text in CLI_CASES.items():
        path = folder / f"{case.replace(' ', '-')}.cua.yaml"
        script = "" if "script:" in text else "script:\n  - message: done\n"
        path.write_text(text + script, encoding="utf-8")
        procs[case] = start_cua(["run", str(path), "--model", "scripted"], clean_env(), tmp_path)
    for case, proc in procs.items():
        done = finish(proc, timeout=60)
        assert done.code == 2, (case, done.stderr)
        assert "Traceback" not in done.stderr and "pydantic" not in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("cua: "), done.stderr
    assert not (tmp_path / "runs").exists(), "a refused scenario starts no run"


def test_a_selector_only_playwright_refuses_is_a_failed_check_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "sel.cua.yaml"
    path.write_text(HEAD + "start_url: 'data:text/html,<p id=a>hi</p>'\n"
                    "checks:\n  - selector: {selector: 'xpath=//p['}\n"
                    "script:\n  - message: done\n", encoding="utf-8")
    done = finish(start_cua(["run", str(path), "--model", "scripted", "--json"], clean_env(), tmp_path))
    assert done.code == 1, done.stderr
    assert "Traceback" not in done.stderr
    check = done.json()["checks"][0]
    assert check["ok"] is False and "selector 'xpath=//p['" in check["detail"], check


# --- CUA_PRICES -------------------------------------------------------------------------------------

BAD_PRICES = {
    "not JSON": (b"{gpt: 1", "is not JSON (line 1"),
    "not UTF-8": (b"\xff\xfe{}", "is not UTF-8"),
    "a list": (b"[1, 2]", "holds a JSON list"),
    "one number": (b'{"gpt-5.4": 2.5}', "the price of 'gpt-5.4' must be [input, output]"),
    "negative": (b'{"gpt-5.4": [-1, 2]}', "the price of 'gpt-5.4' must be [input, output]"),
}


@pytest.mark.parametrize("case", sorted(BAD_PRICES))
def test_a_bad_prices_file_is_one_message_naming_it(case: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    body, words = BAD_PRICES[case]
    path = tmp_path / "prices.json"
    path.write_bytes(body)
    monkeypatch.setenv("CUA_PRICES", str(path))
    with pytest.raises(ConfigError) as caught:
        prices()
    assert str(path) in str(caught.value) and words in str(caught.value), str(caught.value)


def test_a_bad_prices_file_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    (tmp_path / "prices.json").write_text("not json")
    scenario = tmp_path / "hi.cua.yaml"
    scenario.write_text(HEAD + "script:\n  - message: hello\n", encoding="utf-8")
    runs = [start_cua(["run", str(scenario), "--model", "scripted"],
                      clean_env(CUA_PRICES=str(tmp_path / name)), tmp_path)
            for name in ("prices.json", "missing.json")]
    for proc, words in zip(runs, ("is not JSON", "cannot be read")):
        done = finish(proc, timeout=60)
        assert done.code == 2 and "CUA_PRICES file" in done.stderr and words in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()


# --- a damaged run folder ---------------------------------------------------------------------------

DAMAGED_STEPS = {
    "arguments not JSON": {"step": 1, "functions": [{"name": "goto", "arguments": "{url: nowhere"}]},
    "arguments not an object": {"step": 1, "functions": [{"name": "goto", "arguments": "[1, 2]"}]},
    "call without a name": {"step": 1, "functions": [{"arguments": "{}"}]},
    "action not an action": {"step": 1, "actions": [{"action": {"type": "teleport"}}]},
    "step not an object": ["step", 1],
}


@pytest.mark.parametrize("case", sorted(DAMAGED_STEPS))
def test_a_damaged_recording_is_exit_2_before_the_browser_starts(case: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"kind": "run", "task": "t", "settings": {"task": "t"}}))
    (run / "steps.jsonl").write_text(json.dumps(DAMAGED_STEPS[case]) + "\n")
    done = finish(start_cua(["replay", str(run)], clean_env(), tmp_path), timeout=60)
    assert done.code == 2, done.stderr
    assert "steps.jsonl: line 1" in done.stderr and "damaged" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


# --- a computer-server that answers nonsense --------------------------------------------------------

BAD_VM_ANSWERS = {
    "a list": data_line(b"[1, 2]"),
    "a string": data_line(b'"x"'),
    "not JSON": data_line(b"{success: true"),
    "undecodable bytes": data_line(b"\xff\xfe\x00"),
    "no data line": Answer(b"hello", content_type="text/plain"),
    "an error list with 500": Answer(b"[1]", status=500),
}


@pytest.mark.parametrize("case", sorted(BAD_VM_ANSWERS))
async def test_a_non_object_computer_server_answer_is_an_environment_error(case: str) -> None:
    with CannedServer(BAD_VM_ANSWERS[case]) as server:
        env = RemoteEnvironment(server.url, timeout=5, connect_timeout=2, retries=1)
        with pytest.raises(EnvironmentError_) as caught:
            await asyncio.wait_for(env.start(), 20)
    assert server.url in str(caught.value), str(caught.value)


async def test_a_screenshot_that_is_no_png_is_an_environment_error() -> None:
    size = data_line(json.dumps({"success": True, "size": {"width": 800, "height": 600}}).encode())
    with CannedServer(size) as server:
        async with RemoteEnvironment(server.url, timeout=5, retries=1, settle_timeout=0.2) as env:
            for image_data in ("bm90IGEgcG5n", 12, "\x00!"):
                server.answer = data_line(json.dumps({"success": True, "image_data": image_data}).encode())
                with pytest.raises(EnvironmentError_, match="sent no PNG screenshot"):
                    await env.screenshot()


def test_a_computer_server_answering_a_list_is_exit_4_through_the_cli(tmp_path: Path) -> None:
    with CannedServer(data_line(b"[1, 2]")) as server:
        env = clean_env(OPENAI_API_KEY="sk-unused", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
        done = finish(start_cua(["run", "--env", "linux", "--vm-url", server.url, "--task", "t"], env, tmp_path))
    assert done.code == 4, done.stderr
    assert server.url in done.stderr and "not a JSON object" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


# --- a model endpoint that answers nonsense ---------------------------------------------------------

BAD_MODEL_ANSWERS = {
    "undecodable JSON": (Answer(b'{"id": "\xff\xfe"}'), False, "not JSON"),
    "HTML with 200": (Answer(b"<html><body>Sign in</body></html>", content_type="text/html"), False, "not JSON"),
    "HTML page for a stream": (Answer(b"<html>Sign in</html>", content_type="text/html"), True, "HTML page"),
    "a JSON list": (Answer(b"[1, 2]"), False, "not a response"),
    "SSE data not JSON": (Answer(b"data: {oops\n\n", content_type="text/event-stream"), True, "not JSON"),
    "SSE data a list": (Answer(b"data: [1]\n\n", content_type="text/event-stream"), True, "not an object"),
    "SSE bad bytes": (Answer(b"data: \xff\xfe\n\n", content_type="text/event-stream"), True, "not JSON"),
    "deep JSON": (Answer(b"[" * 100_000 + b"]" * 100_000), False, "not JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODEL_ANSWERS))
async def test_an_undecodable_model_answer_is_an_api_error_with_the_request_id(case: str) -> None:
    answer, stream, words = BAD_MODEL_ANSWERS[case]
    with CannedServer(answer) as server:
        config = ClientConfig(api_key="sk-test", base_url=server.url + "/v1", timeout=10)
        async with ResponsesClient(config, retry=RetryPolicy(max_retries=0)) as client:
            request = CreateRequest(model="gpt-5.4", input=[], stream=stream or None)
            with pytest.raises(APIError) as caught:
                await asyncio.wait_for(client.create(request), 20)
    message = str(caught.value)
    assert caught.value.exit_code == 3
    assert words in message and "request id req_bad_input_1" in message, message
