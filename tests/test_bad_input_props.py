"""Property-based bad input (hypothesis): generated scenario files, selectors, model output items
and computer-server answers. Whatever comes in, the outcome is one of ours: a CuaError with a
documented exit code, or success; never another exception, never a hang.

Example counts are kept small: every model-output example is a whole run in a real Chromium.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bad_input_servers import Answer, CannedServer, data_line  # noqa: E402
from cli_helpers import clean_env, finish, start_cua  # noqa: E402

from cua.actions import ACTION_TYPES, parse_action  # noqa: E402
from cua.config import RunSettings  # noqa: E402
from cua.environments.remote import RemoteEnvironment  # noqa: E402
from cua.errors import ConfigError, CuaError  # noqa: E402
from cua.pytest_plugin import session_loop  # noqa: E402
from cua.runner import run_task  # noqa: E402
from cua.scenario import CheckSpec, Scenario, load_scenario, prepared  # noqa: E402
from cua.selector_syntax import check_selector  # noqa: E402
from cua.testing.standin import StandIn  # noqa: E402

DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 4, 5}


def examples(count: int) -> settings:
    """``count`` examples, no deadline (a run takes seconds), no example database left behind."""
    return settings(max_examples=count, deadline=None, suppress_health_check=list(HealthCheck), database=None)

# --- generated scenario files -----------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                    st.text(max_size=30))
json_like = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=20)
# Strings that look like what goes in the fields: regex and selector punctuation, placeholders.
fieldish = st.lists(st.sampled_from(list("ab#.:[](){}=\"'>+~,*\\|^$?-_ 1") + ["{{x}}", ">>", "text="]),
                   max_size=12).map("".join)
FIELDS = list(Scenario.model_fields) + ["checks", "script"]


def check_specs() -> st.SearchStrategy[dict[str, Any]]:
    kind = st.sampled_from(CheckSpec.kinds())
    region = st.fixed_dictionaries({k: st.one_of(st.integers(-50, 3000), json_like)
                                    for k in ("x", "y", "width", "height")})
    value = st.one_of(fieldish, json_like,
                      st.fixed_dictionaries({"selector": fieldish}),
                      st.fixed_dictionaries({"region": region, "baseline": st.sampled_from(["b.png", "x.txt", 5])}))
    return st.dictionaries(kind, value, min_size=1, max_size=2)


def script_turns() -> st.SearchStrategy[dict[str, Any]]:
    action = st.dictionaries(st.sampled_from(["type", "x", "y", "keys", "text", "path", "button"]),
                             st.one_of(st.sampled_from(ACTION_TYPES), json_like), max_size=4)
    return st.one_of(
        st.fixed_dictionaries({"actions": st.lists(action, max_size=3)}),
        st.fixed_dictionaries({"function": st.dictionaries(st.sampled_from(["name", "arguments"]), json_like)}),
        st.fixed_dictionaries({"message": json_like}),
        json_like,
    )


scenario_documents = st.fixed_dictionaries(
    {"name": st.one_of(st.just("gen"), json_like), "task": st.one_of(st.just("t"), json_like)},
    optional={
        "checks": st.one_of(st.lists(check_specs(), max_size=3), json_like),
        "script": st.one_of(st.lists(script_turns(), max_size=3), json_like),
        "display": st.one_of(st.sampled_from(["800x600", "10x10", "big", "0x0"]), json_like),
        "variables": st.one_of(st.dictionaries(st.sampled_from(["x", "y"]),
                                               st.fixed_dictionaries({"default": fieldish})), json_like),
        "limits": json_like, "env": json_like, "model": json_like,
        **{name: json_like for name in ("start_url", "instructions", "allow_domains", "unknown_field")},
    },
)
# Close to valid, so that the value checks (not only the shape) are reached.
near_valid_documents = st.fixed_dictionaries(
    {"name": st.just("gen"), "task": st.just("t"),
     "checks": st.lists(st.one_of(
         st.fixed_dictionaries({"url_matches": fieldish}), st.fixed_dictionaries({"answer_matches": fieldish}),
         st.fixed_dictionaries({"selector": st.fixed_dictionaries({"selector": fieldish})}),
         st.fixed_dictionaries({"screenshot": st.fixed_dictionaries({
             "region": st.fixed_dictionaries({k: st.integers(-5, 2000) for k in ("x", "y", "width", "height")}),
             "baseline": st.sampled_from(["b.png", "x.txt", "gone.png"])})})), max_size=3)},
    optional={"script": st.lists(script_turns(), max_size=3)},
)
raw_texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(["&a ", "*a ", "[", "]", "{", "}", ": ", "- ", "\n", "  ", "name", "!!python/object ",
                              "'", '"', "%YAML 1.1\n", "---\n", "\t"]), max_size=40).map("".join),
)


def _write(path: Path, document: Any) -> None:
    text = document if isinstance(document, str) else yaml.safe_dump(document, allow_unicode=True)
    path.write_text(text, encoding="utf-8")


@examples(150)
@given(document=st.one_of(near_valid_documents, scenario_documents, raw_texts))
def test_any_scenario_file_loads_or_is_one_config_error(document: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("gen")
    (folder / "x.txt").write_text("not an image")
    path = folder / "gen.cua.yaml"
    _write(path, document)
    try:
        with prepared(load_scenario(path)) as (rendered, _):
            _assert_usable(rendered)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "pydantic" not in message, message


def _assert_usable(scenario: Scenario) -> None:
    """What loaded can run: its regexes compile, its baselines are there, its script is actions."""
    for check in scenario.checks:
        for pattern in (check.url_matches, check.answer_matches):
            if pattern is not None:
                re.compile(pattern)
        if check.screenshot:
            assert (scenario.folder / check.screenshot.baseline).is_file()
    for turn in scenario.script or []:
        for raw in turn.actions or []:
            parse_action(raw)
        if turn.function is not None:
            assert turn.function.get("name")


@examples(6)
@given(document=st.one_of(near_valid_documents, scenario_documents))
def test_generated_scenarios_through_the_cli_never_print_a_traceback(
        document: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "gen.cua.yaml"
    _write(path, document)
    done = finish(start_cua(["run", str(path), "--model", "scripted", "--timeout", "20"], clean_env(), folder),
                  timeout=60)
    assert done.code in DOCUMENTED_EXIT_CODES, (done.code, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr


# --- selectors: refused only where Playwright refuses too -------------------------------------------

selector_strings = st.lists(st.one_of(
    st.text(min_size=1, max_size=3),
    st.sampled_from(["div", "a", ">>", "text=", "::", "(", ")", ":has-text(", '"', "'", "[", "]", "=", "#", ".",
                     ">", " ", ",", ":is(", ":not(", "role=", "nth=", "*", "\\", "1", ":nth-child(", "n+1", "|"]),
), min_size=1, max_size=8).map("".join).filter(lambda s: not s.lstrip(" \t\n\r\f").startswith("--"))


class BrowserThread:
    """A Chromium page driven from a thread of its own (its event loop stays out of the tests')."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.page = self.call(self._open())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    async def _open(self) -> Any:
        from playwright.async_api import async_playwright

        self.pw = await async_playwright().start()
        self.browser = await self.pw.chromium.launch(executable_path="/usr/bin/chromium")
        page = await self.browser.new_page()
        await page.set_content("<div><a id=a href=x>Hello</a></div>")
        return page

    async def refuses(self, selector: str) -> bool:
        from playwright.async_api import Error

        try:
            await self.page.locator(selector).count()
        except Error:
            return True
        return False

    def close(self) -> None:
        async def shut() -> None:
            await self.browser.close()
            await self.pw.stop()

        self.call(shut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def chromium() -> Any:
    browser = BrowserThread()
    yield browser
    browser.close()


@examples(300)
@given(selector=selector_strings)
@example(selector="A\x0b")  # Playwright trims each part as JavaScript does, vertical tab included
def test_a_selector_refused_at_load_is_one_playwright_refuses(selector: str, chromium: BrowserThread) -> None:
    try:
        check_selector(selector)
    except ValueError:
        assert chromium.call(chromium.refuses(selector)), f"Playwright takes {selector!r}, the load check refused it"


# --- generated model output, through a real run -----------------------------------------------------

wire_actions = st.dictionaries(
    st.sampled_from(["type", "x", "y", "button", "keys", "text", "path", "scroll_x", "scroll_y", "ms"]),
    st.one_of(st.sampled_from([*ACTION_TYPES, "teleport"]), st.integers(-5000, 5000), json_like),
    max_size=5,
)
content_parts = st.lists(st.dictionaries(st.sampled_from(["type", "text", "refusal"]),
                                         st.one_of(st.sampled_from(["output_text", "refusal"]), json_like)),
                         min_size=1, max_size=2)
# Items of the shapes the stand-in serves (it refuses to serve a call without actions, say), with
# any values inside them.
standin_items = st.one_of(
    st.fixed_dictionaries({"type": st.just("computer_call"), "actions": st.lists(wire_actions, min_size=1, max_size=3)},
                          optional={"pending_safety_checks": st.lists(st.sampled_from(["malicious_instructions"]),
                                                                      max_size=1)}),
    st.fixed_dictionaries({"type": st.just("function_call"), "name": st.text(min_size=1, max_size=8),
                           "arguments": st.one_of(st.text(max_size=20), json_like)}),
    st.fixed_dictionaries({"type": st.just("message"), "content": st.one_of(st.text(max_size=20), content_parts)}),
    st.fixed_dictionaries({"type": st.just("reasoning"), "summary": st.lists(st.text(max_size=10), max_size=2)}),
)
# Anything at all in a response's output, served as plain JSON by a server of our own.
any_items = st.lists(st.one_of(standin_items, json_like,
                               st.dictionaries(st.sampled_from(["type", "call_id", "id", "name", "arguments",
                                                                "content", "action", "actions", "summary"]),
                                               st.one_of(st.sampled_from(["computer_call", "function_call",
                                                                          "message", "reasoning"]), json_like))),
                     max_size=3)


def _run_settings(out: Path) -> RunSettings:
    return RunSettings(task="t", model="gpt-5.4", display="800x600", wait_ms=0, out=out, max_steps=3,
                       start_url="data:text/html,<p>hello</p>", timeout=30, safety="auto", stream=False)


def _assert_documented(result: Any) -> None:
    assert result.exit_code in DOCUMENTED_EXIT_CODES, result
    assert result.status in {"completed", "failed", "error", "max_steps"}, result
    if result.status == "error":
        assert result.exit_code == 3 and result.error, result


@examples(10)
@given(items=st.lists(standin_items, min_size=1, max_size=3))
def test_generated_model_output_from_the_standin_ends_with_a_documented_status(
        items: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> None:
    out = tmp_path_factory.mktemp("model")

    async def play() -> Any:
        with StandIn(turns=[items], api_key="sk-test", final_message="done") as server:
            return await run_task(_run_settings(out), api_key="sk-test", base_url=server.base_url,
                                  write_report=False)

    # Every example runs on the session's loop, in a context of the worker's one browser: a
    # launch per example would be most of the test's time.
    _assert_documented(session_loop(pytestconfig).run(play()))


@examples(6)
@given(output=st.one_of(any_items, json_like))
@example(output=[{"type": ["message"]}])  # an item type that is no string once ended in a TypeError
def test_any_response_output_ends_with_a_documented_status(output: Any, tmp_path_factory: pytest.TempPathFactory,
                                                          pytestconfig: pytest.Config) -> None:
    body = json.dumps({"id": "resp_1", "object": "response", "status": "completed", "output": output}).encode()
    out = tmp_path_factory.mktemp("any")
    with CannedServer(Answer(body)) as server:
        result = session_loop(pytestconfig).run(run_task(_run_settings(out), api_key="sk-test",
                                                         base_url=server.url + "/v1", write_report=False))
    _assert_documented(result)


# --- generated computer-server answers --------------------------------------------------------------

payloads = st.one_of(
    json_like.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"success": st.one_of(st.booleans(), json_like),
                           "size": st.one_of(json_like, st.fixed_dictionaries({"width": json_like, "height": json_like})),
                           "image_data": st.one_of(st.text(max_size=20), json_like)}).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=40),
)
vm_answers = st.one_of(
    payloads.map(data_line),
    st.builds(Answer, body=st.binary(max_size=60), content_type=st.sampled_from(["text/plain", "application/json"]),
              status=st.sampled_from([200, 400, 401, 500])),
)


@examples(60)
@given(answer=vm_answers)
def test_any_computer_server_answer_is_used_or_an_environment_error(answer: Answer) -> None:
    async def drive(server: CannedServer) -> None:
        env = RemoteEnvironment(server.url, timeout=3, connect_timeout=2, retries=1, settle_timeout=0.2)
        async with env:
            await env.screenshot()

    with CannedServer(answer) as server:
        try:
            asyncio.run(asyncio.wait_for(drive(server), 20))
        except CuaError as exc:
            assert exc.exit_code == 4 and server.url in str(exc), str(exc)


@pytest.mark.parametrize("size", [{"width": False, "height": False}, {"width": True, "height": 600},
                                  {"width": 0, "height": 600}, {"width": 800.5, "height": 600},
                                  {"width": float("inf"), "height": 600}, {"width": "800", "height": "600"}])
def test_a_screen_size_that_is_no_pixel_count_is_an_environment_error(size: dict[str, Any]) -> None:
    answer = data_line(json.dumps({"success": True, "size": size}).encode())
    with CannedServer(answer) as server:
        with pytest.raises(CuaError, match="no usable screen size") as err:
            asyncio.run(RemoteEnvironment(server.url, timeout=3, connect_timeout=2, retries=1).start())
    assert err.value.exit_code == 4
