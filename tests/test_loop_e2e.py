"""The computer-use loop end to end: ``run_task`` against the strict stand-in Responses server over
real HTTP, driving tests/pages/loop.html in real headless Chromium.

Every assertion is about something a user can see: the page's own account of what happened to it
(``window.state`` read through Playwright when the run ends, or POSTed by the page itself when the
runner built the browser), the result, the run folder, and what the "model" received.

Browser starts dominate the cost, so runs are few and rich. Runs that only end in one particular
way are played concurrently, once per module, and each has its own test.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from unittest import mock

import pytest

from cua.agent import RunResult
from cua.config import RunSettings
from cua.environments.browser_launch import find_chromium
from cua.functions import FunctionRegistry
from cua.pytest_plugin import session_loop
from cua.runner import run_task
from cua.testing.standin import StandIn, Turn

from helpers_loop import API_KEY, ProbedBrowser, Site, run_folder, wait_for

if find_chromium() is None:  # pragma: no cover - the dev setup installs it
    pytest.skip("no Chromium installed (make setup)", allow_module_level=True)

PREVIEW, GA = "computer-use-preview", "gpt-5.4"

# Centres of the page's boxes (an 800x600 display).
PRESS, TWICE, HOVER, ENTRY, PANE = (100, 45), (280, 45), (460, 45), (550, 120), (550, 260)
DRAG_PATH = [{"x": 40, "y": 120}, {"x": 200, "y": 200}, {"x": 300, "y": 260}]


def at(point: tuple[int, int], kind: str = "click", **fields: Any) -> dict[str, Any]:
    return {"type": kind, "x": point[0], "y": point[1], **fields}


# Every action type, in the order the page expects them; batches for the GA run.
BUTTONS = [at(PRESS), at(PRESS, button="right"), at(PRESS, button="wheel", keys=["SHIFT"])]
POINTER = [at(TWICE, "double_click"), at(HOVER, "move", keys=["ctrl"]), {"type": "drag", "path": DRAG_PATH}]
KEYBOARD = [at(ENTRY), {"type": "type", "text": "hello world"}, {"type": "keypress", "keys": ["CTRL", "A"]},
            {"type": "type", "text": "replaced"}]
REST = [at(PANE, "scroll", scroll_x=0, scroll_y=300), {"type": "wait"}, {"type": "screenshot"}]
EVERY_ACTION = BUTTONS + POINTER + KEYBOARD + REST


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    server = Site()
    yield server
    server.close()


# --- playing one run ------------------------------------------------------------------------------


@dataclass
class Played:
    result: RunResult
    server: StandIn
    page: ProbedBrowser | None
    meta: dict[str, Any]
    steps: list[dict[str, Any]]
    env_events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def actions(self) -> list[dict[str, Any]]:
        """Every action the run executed, as steps.jsonl records them."""
        return [a for step in self.steps for a in step.get("actions") or []]

    def outputs(self, kind: str) -> list[dict[str, Any]]:
        """Every ``kind`` item (e.g. function_call_output) the stand-in received, in order, once."""
        seen, found = set(), []
        for body in self.server.requests:
            for item in body.get("input") or []:
                if isinstance(item, dict) and item.get("type") == kind and item["call_id"] not in seen:
                    seen.add(item["call_id"])
                    found.append(item)
        return found

    def issued_calls(self) -> list[str]:
        return [i["call_id"] for r in self.server.responses for i in r["output"] if i["type"] == "computer_call"]


Script = list[Any] | Callable[[StandIn], list[Any]]


async def play(
    site: Site,
    out: Path,
    script: Script,
    *,
    start: str = "loop.html",
    faults: tuple[tuple[str, dict[str, Any]], ...] = (),
    base_url: str | None = None,
    probe: bool = True,
    functions: FunctionRegistry | Callable[[ProbedBrowser | None], FunctionRegistry] | None = None,
    sse_style: str = "full",
    id_style: str = "openai",
    **settings: Any,
) -> Played:
    """One ``run_task`` against a fresh stand-in playing ``script`` (a list of turns, or a function
    of the server for turns that inject faults into the requests after them)."""
    run_settings = RunSettings(
        task="work the loop page", display="800x600", start_url=start if "://" in start else site.url(start),
        out=out, wait_ms=200, **settings,
    )
    server = StandIn(api_key=API_KEY, sse_style=sse_style, id_style=id_style)  # type: ignore[arg-type]
    server.turns = list(script(server) if callable(script) else script)
    env = None
    if probe:
        env = ProbedBrowser(display=run_settings.size, start_url=run_settings.start_url,
                            wait_ms=run_settings.wait_ms)
    if callable(functions):
        functions = functions(env)
    events: list[tuple[str, dict[str, Any]]] = []
    with server:
        for kind, opts in faults:
            server.inject(kind, **opts)
        result = await run_task(
            run_settings, api_key=API_KEY, base_url=base_url or server.base_url, env=env,
            functions=functions, on_env_event=lambda kind, data: events.append((kind, data)),
        )
    meta, steps = run_folder(result.run_dir)
    return Played(result, server, env, meta, steps, events)


def then_fault(server: StandIn, kind: str, turn: Any, **opts: Any) -> Callable[..., Any]:
    """A turn that answers with ``turn`` and makes the NEXT request meet fault ``kind``."""

    def answer(body: dict[str, Any], state: Any) -> Any:
        server.inject(kind, **opts)
        return turn

    return answer


def assert_every_action_landed(page: ProbedBrowser) -> None:
    """The page saw each action of EVERY_ACTION, with the right button, keys and target."""
    state = page.state
    assert state["clicks"] == [
        {"button": 0, "held": []}, {"button": 2, "held": []}, {"button": 1, "held": ["Shift"]},
    ], "left, right and wheel (with Shift held) clicks on the press button"
    events = [(e.get("on"), e.get("ev")) for e in page.log]
    assert ("press", "contextmenu") in events and ("press", "auxclick") in events
    assert state["doubles"] == 1
    assert state["hovered"] == {"held": ["Control"]}, "move entered the hover box with Control held"
    drag = state["drag"]
    assert drag["from"] == [40, 120] and drag["to"] == [300, 260]
    assert drag["moves"] >= 4, f"the drag went through its path, not straight: {drag}"
    # Ctrl+A is a chord (select all), so the second text replaced the first one.
    assert state["entry"] == "replaced"
    assert {"key": "a", "held": ["Control"]} in state["keys"]
    assert state["paneTop"] > 0 and state["windowTop"] == 0, "the wheel scrolled the inner pane only"
    order = [next(i for i, e in enumerate(page.log) if e.get("on") == target)
             for target in ("press", "twice", "hover", "canvas", "entry", "pane")]
    assert order == sorted(order), f"actions ran out of order: {page.log}"


# --- every action, both tool formats ----------------------------------------------------------------


async def test_every_action_preview_streamed_chained(site: Site, tmp_path: Path) -> None:
    """Preview format: one action per call, streamed with a proxy's [DONE] marker, chained state,
    LiteLLM-style opaque response ids, and a safety check acknowledged automatically."""
    turns = [Turn.call(a, reasoning=f"step {n}" if n % 4 == 0 else None) for n, a in enumerate(EVERY_ACTION)]
    turns[6] = Turn.call(EVERY_ACTION[6], safety_checks=["malicious_instructions"])
    turns.append(Turn.message("Every action done."))
    played = await play(site, tmp_path, turns, model=PREVIEW, stream=True, sse_style="done_marker",
                        id_style="litellm", safety="auto")
    result, server = played.result, played.server

    assert (result.status, result.exit_code, result.error) == ("completed", 0, None)
    assert result.final_text == "Every action done."
    assert_every_action_landed(played.page)
    assert server.rejections == []
    # One screenshot per call, each after its action: the page's status line changes every time.
    assert len(server.screenshots) == len(EVERY_ACTION)
    assert server.requests[0]["tools"][0]["type"] == "computer_use_preview"
    # Chained: after the first request only the new call output goes, with the previous id.
    for body, previous in zip(server.requests[1:], server.responses):
        assert body["previous_response_id"] == previous["id"]
        assert [i["type"] for i in body["input"]] == ["computer_call_output"]
    acknowledged = played.outputs("computer_call_output")[6]["acknowledged_safety_checks"]
    issued = server.responses[6]["output"][-1]["pending_safety_checks"]
    assert [c["id"] for c in acknowledged] == [c["id"] for c in issued]
    # The run folder tells the same story.
    assert played.meta["status"] == "completed" and played.meta["steps"] == len(EVERY_ACTION) + 1
    assert [a["action"]["type"] for a in played.actions] == [a["type"] for a in EVERY_ACTION]
    wait = next(a for a in played.actions if a["action"]["type"] == "wait")
    assert wait["ms"] >= 180, "wait waited about wait_ms"
    assert played.steps[6]["safety_checks"][0]["decision"] == "acknowledged"
    # Each step's saved screen is exactly the screenshot the model was sent for it.
    saved = [(Path(result.run_dir) / s["screen_after"]).read_bytes() for s in played.steps if s.get("screen_after")]
    assert saved == server.screenshots


async def test_every_action_ga_batched_stateless(site: Site, tmp_path: Path) -> None:
    """GA format: batches of actions with ONE screenshot each, plain JSON responses, stateless
    replay with old screenshots swapped for a placeholder, commentary beside a call, sync and
    async functions, and a response cut off half-way that is simply asked for again."""

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    def registry(page: ProbedBrowser | None) -> FunctionRegistry:
        async def entry_value() -> str:
            """What the text field shows."""
            return await page.page.evaluate("document.getElementById('entry').value")

        functions = FunctionRegistry()
        functions.register(add)
        functions.register(entry_value)
        return functions

    def script(server: StandIn) -> list[Any]:
        return [
            Turn.call(*BUTTONS, reasoning="Start with the button."),
            then_fault(server, "cut_stream", Turn.call(*POINTER, commentary="Now the pointer tricks.")),
            Turn.function_call("add", {"a": 2, "b": 3}),
            Turn.call(*KEYBOARD, safety_checks=["irrelevant_domain"]),
            Turn.function_call("entry_value"),
            Turn.call(*REST),
            Turn.message("All done.", reasoning="Everything happened."),
        ]

    played = await play(site, tmp_path, script, model=GA, stream=False, stateless=True,
                        keep_screenshots=2, functions=registry, safety_allow=["irrelevant_domain"])
    result, server = played.result, played.server

    assert (result.status, result.exit_code, result.error) == ("completed", 0, None)
    assert result.steps == 7, "the commentary beside a call did not end the run"
    assert result.final_text == "All done."
    assert_every_action_landed(played.page)
    assert server.rejections == []
    assert server.requests[0]["tools"][0] == {"type": "computer"}
    calls = played.outputs("computer_call_output")
    assert len(calls) == 4, "one screenshot per batch, not per action"
    assert len({c["output"]["image_url"] for c in calls}) == 4, "each batch changed the page"
    assert [r.fault for r in server.records].count("cut_stream") == 1
    assert [o["output"] for o in played.outputs("function_call_output")] == ["5", "replaced"]

    # Stateless: every request replays the whole history, store false, reasoning encrypted.
    for body in server.requests:
        assert body["store"] is False and "previous_response_id" not in body
        assert body["include"] == ["reasoning.encrypted_content"]
    last = server.requests[-1]["input"]
    shots = [i["output"]["image_url"] for i in last if i.get("type") == "computer_call_output"]
    assert len(shots) == 4
    placeholder = shots[0]
    assert shots[1] == placeholder, "screenshots beyond keep_screenshots=2 are replaced"
    assert shots[2] != placeholder and shots[3] != placeholder and shots[2] != shots[3]
    assert len(placeholder) * 5 < min(len(shots[2]), len(shots[3])), "the placeholder is small"
    # ... so the requests stay bounded: never more than the first screen + 2 real ones.
    biggest_shot = max(len(s) for s in shots[2:])
    for body in server.requests:
        assert len(json.dumps(body["input"])) < 3 * biggest_shot + 40_000

    # Usage is the sum of every response's usage, in the result and in run.json.
    total = {k: sum(r["usage"][k] for r in server.responses) for k in ("input_tokens", "output_tokens", "total_tokens")}
    assert {k: getattr(result.usage, k) for k in total} == total
    assert {k: played.meta["usage"][k] for k in total} == total
    assert [f["name"] for step in played.steps for f in step.get("functions") or []] == ["add", "entry_value"]


async def test_navigation_tools_and_every_fault(site: Site, tmp_path: Path) -> None:
    """goto/back/forward as function tools, over a streamed chained run where one request after
    another meets a 429, a 500, a 503, a reset connection and a cut stream, and all succeed."""
    second = site.url("loop.html?n=2")

    def script(server: StandIn) -> list[Any]:
        fast = {"headers": {"retry-after-ms": "20"}}
        return [
            then_fault(server, "500", Turn.function_call("goto", {"url": second}), **fast),
            then_fault(server, "503", Turn.call({"type": "screenshot"}), **fast),
            then_fault(server, "reset", Turn.function_call("back")),
            then_fault(server, "cut_stream", Turn.call({"type": "screenshot"})),
            Turn.function_call("forward"),
            Turn.call(at(PRESS)),
            Turn.message("Navigated."),
        ]

    played = await play(site, tmp_path, script, model=GA, stream=True, navigation_tools=True,
                        faults=(("429", {"retry_after": 0.1}),))
    result, server = played.result, played.server

    assert (result.status, result.exit_code, result.error) == ("completed", 0, None)
    assert server.rejections == []
    assert {"goto", "back", "forward"} <= {t.get("name") for t in server.requests[0]["tools"]}
    # The page the model was shown after each navigation, as the call outputs report it.
    urls = [o.get("current_url") for o in played.outputs("computer_call_output")]
    assert urls == [second, site.url(), second]
    assert played.page.final["url"] == second and result.final_url == second
    assert played.page.state["clicks"] == [{"button": 0, "held": []}], "the click landed after forward"
    # Each fault was met once and the same request was sent again and answered.
    posts = [r for r in server.records if r.method == "POST"]
    faulted = [(n, r) for n, r in enumerate(posts) if r.fault]
    assert [r.fault for _, r in faulted] == ["429", "500", "503", "reset", "cut_stream"]
    for n, record in faulted:
        assert posts[n + 1].body == record.body and posts[n + 1].status == 200 and not posts[n + 1].fault
    assert len(server.responses) == 7


# --- domain policy ----------------------------------------------------------------------------------


async def test_domain_policy_block_and_allow(site: Site, tmp_path: Path) -> None:
    """127.0.0.1 and localhost are two hostnames of one server. Blocked requests never reach it;
    the page itself reports which of its image and frame loaded. The runner builds the browser."""
    port = site.port
    other = "localhost"

    def page_url(token: str, img_host: str, frame_host: str) -> str:
        return site.url(
            f"loop.html?report={token}&img=http://{img_host}:{port}/pixel.png?{token}"
            f"&frame=http://{frame_host}:{port}/loop.html?framed={token}"
        )

    def script(token: str, blocked_url: str) -> list[Any]:
        return [Turn.function_call("goto", {"url": blocked_url}), Turn.call({"type": "wait"}),
                Turn.message(f"{token} done")]

    block_goto = f"http://{other}:{port}/loop.html?goto=block"
    allow_goto = f"http://{other}:{port}/loop.html?goto=allow"
    blocked, allowed = await asyncio.gather(
        play(site, tmp_path / "block", script("block", block_goto), start=page_url("block", other, "127.0.0.1"),
             probe=False, model=GA, navigation_tools=True, block_domains=[other], sse_style="completed_only"),
        play(site, tmp_path / "allow", script("allow", allow_goto), start=page_url("allow", "127.0.0.1", other),
             probe=False, model=GA, navigation_tools=True, allow_domains=["127.0.0.1"]),
    )
    for played, token in ((blocked, "block"), (allowed, "allow")):
        assert played.result.status == "completed", played.result.error
        assert played.server.rejections == []
        hosts = {hit.host for hit in site.hits if token in hit.path}
        assert hosts == {"127.0.0.1"}, f"{token}: a request reached the other hostname: {site.hits}"
        # The navigation tool refused the other hostname too; the model was told why.
        refusal = played.outputs("function_call_output")[0]["output"]
        assert "blocked by the domain policy" in refusal
        assert played.result.final_url == played.meta["settings"]["start_url"]
        assert any(kind == "blocked" and other in data["url"] for kind, data in played.env_events)

    def loads(token: str) -> dict[str, str]:
        reports = site.reports(token)
        return reports[-1]["loads"] if reports else {}

    # The page's own account: what came from the blocked hostname failed, the rest loaded.
    wait_for(lambda: len(loads("block")) == 2, "the blocked run's page to report its image and frame")
    assert loads("block") == {"img": "failed", "frame": "loaded"}
    wait_for(lambda: "img" in loads("allow"), "the allow-list run's page to report its image")
    assert loads("allow") == {"img": "loaded"}, "the frame from outside the allow list never loaded"


# --- runs that end in a particular way --------------------------------------------------------------


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


UNREACHABLE = _closed_port_url()
BAD_ACTIONS = {
    "unknown_type": ({"type": "teleport", "x": 1, "y": 1}, "unknown action type 'teleport'"),
    "out_of_bounds": (at((900, 50)), "outside the 800x600 display"),
    "missing_field": ({"type": "click", "x": 10}, "bad click action: y"),
    "unknown_key": ({"type": "keypress", "keys": ["CTRL", "HYPER"]}, "unknown key name 'HYPER'"),
}
SAFETY_CALL = [at(TWICE, "double_click"), at(ENTRY), {"type": "type", "text": "never typed"}]


def _endings(site: Site) -> dict[str, tuple[Script, dict[str, Any]]]:
    endings: dict[str, tuple[Script, dict[str, Any]]] = {
        "max_steps": ([Turn.call(at(PRESS))] * 3, dict(max_steps=2)),
        "timeout": (
            lambda server: [then_fault(server, "slow", Turn.call(at(PRESS)), delay=60)],
            # Room for the first step on a loaded 2-core machine (6 s once ran out before the
            # slow request was even sent); the slow answer (60 s) still far outlasts it.
            dict(timeout=15),
        ),
        "token_budget": (
            [Turn.call(at(PRESS), usage={"input_tokens": 900, "output_tokens": 200})] * 3,
            dict(token_budget=1500),
        ),
        "refusal": (
            [Turn.call(at(PRESS)),
             [{"type": "message", "content": [{"type": "refusal", "refusal": "I can't help with that."}]}]],
            {},
        ),
        "insufficient_quota": ([Turn.call(at(PRESS))], dict(faults=(("insufficient_quota", {}),))),
        "unreachable": ([], dict(base_url=UNREACHABLE)),
        "safety_deny": ([Turn.call(at(PRESS)), Turn.call(*SAFETY_CALL, safety_checks=["malicious_instructions"])],
                        dict(safety="deny")),
        "safety_ask_no_tty": (
            [Turn.call(at(PRESS)), Turn.call(*SAFETY_CALL, safety_checks=["sensitive_domain"])],
            dict(safety="ask"),
        ),
    }
    for name, (bad, _) in BAD_ACTIONS.items():
        # GA batch: a good action first, to prove a bad batch runs none of its actions.
        endings[f"bad_{name}"] = ([Turn.call(at(PRESS), bad)], {})
    # Preview: one bad action alone.
    endings["bad_preview_unknown_key"] = ([Turn.call(BAD_ACTIONS["unknown_key"][0])], dict(model=PREVIEW))
    return endings


@pytest.fixture(scope="module")
def endings(site: Site, tmp_path_factory: pytest.TempPathFactory,
            pytestconfig: pytest.Config) -> dict[str, Played | BaseException]:
    """Every ending played once, a few browsers at a time."""
    out = tmp_path_factory.mktemp("endings")
    limit = asyncio.Semaphore(4)

    async def one(name: str, script: Script, options: dict[str, Any]) -> Played | BaseException:
        options = {"model": GA, **options}
        async with limit:
            try:
                return await play(site, out / name, script, **options)
            except Exception as exc:  # reported by the ending's own test
                return exc

    async def every() -> dict[str, Played | BaseException]:
        cases = _endings(site)
        played = await asyncio.gather(*(one(name, *case) for name, case in cases.items()))
        return dict(zip(cases, played))

    # A run asking for a safety decision must find no terminal to ask on, even under `pytest -s`.
    with mock.patch.object(sys, "stdin", io.StringIO()):
        return session_loop(pytestconfig).run(every())  # in contexts of the worker's one browser


def ending(endings: dict[str, Played | BaseException], name: str) -> Played:
    played = endings[name]
    if isinstance(played, BaseException):
        raise played
    assert played.server.rejections == [], played.server.rejections
    return played


def test_max_steps(endings: dict[str, Any]) -> None:
    played = ending(endings, "max_steps")
    assert (played.result.status, played.result.exit_code, played.result.steps) == ("max_steps", 1, 2)
    assert played.meta["status"] == "max_steps" and "2 steps" in played.meta["reason"]
    assert len(played.page.state["clicks"]) == 2, "the two calls answered were executed"
    assert len(played.server.requests) == 2


def test_timeout_with_a_slow_model(endings: dict[str, Any]) -> None:
    played = ending(endings, "timeout")
    assert (played.result.status, played.result.exit_code) == ("timeout", 1)
    assert "timed out after 15 s" in played.result.reason
    assert played.meta["status"] == "timeout"
    assert len(played.page.state["clicks"]) == 1, "the step before the slow answer was executed"
    slow = [r for r in played.server.records if r.fault == "slow"]
    assert len(slow) == 1 and slow[0].status is None, "the client hung up on the slow answer"


def test_token_budget(endings: dict[str, Any]) -> None:
    played = ending(endings, "token_budget")
    result = played.result
    assert (result.status, result.exit_code, result.steps) == ("failed", 1, 2)
    assert "budget" in result.reason and result.usage.total_tokens == 2200
    assert played.meta["status"] == "failed" and "budget" in played.meta["reason"]


def test_refusal_fails_the_run(endings: dict[str, Any]) -> None:
    played = ending(endings, "refusal")
    result = played.result
    assert (result.status, result.exit_code, result.reason) == ("failed", 1, "refused")
    assert result.final_text == "I can't help with that."
    assert played.meta["final_text"] == "I can't help with that."


def test_insufficient_quota_is_not_retried(endings: dict[str, Any]) -> None:
    played = ending(endings, "insufficient_quota")
    result = played.result
    assert (result.status, result.exit_code) == ("error", 3)
    assert "quota" in result.error and "insufficient_quota" in result.error
    assert "Traceback" not in result.error
    assert [r.fault for r in played.server.records] == ["insufficient_quota"], "asked exactly once"
    assert played.meta["status"] == "error" and played.meta["exit_code"] == 3


def test_unreachable_endpoint(endings: dict[str, Any]) -> None:
    played = ending(endings, "unreachable")
    result = played.result
    assert (result.status, result.exit_code) == ("error", 3)
    assert UNREACHABLE.removesuffix("/v1") in result.error, result.error
    assert "Traceback" not in result.error
    assert played.meta["status"] == "error" and played.meta["error"] == result.error
    assert result.steps == played.meta["steps"] == 0, "the model never answered: no step"


@pytest.mark.parametrize("name", ["safety_deny", "safety_ask_no_tty"])
def test_safety_refusal_runs_nothing_of_the_call(endings: dict[str, Any], name: str) -> None:
    played = ending(endings, name)
    result = played.result
    assert (result.status, result.exit_code) == ("safety_denied", 5)
    assert "safety check" in result.error
    state = played.page.state
    assert len(state["clicks"]) == 1, "the call before the check ran"
    assert state["doubles"] == 0 and state["entry"] == "", "no action of the refused call ran"
    assert played.steps[-1]["safety_checks"][0]["decision"] == "denied"
    assert played.steps[-1]["actions"] == []
    assert len(played.server.requests) == 2, "the refused call was never answered"
    assert played.meta["status"] == "safety_denied"


@pytest.mark.parametrize("name", [*BAD_ACTIONS, "preview_unknown_key"])
def test_bad_model_output_names_the_item(endings: dict[str, Any], name: str) -> None:
    played = ending(endings, f"bad_{name}")
    result = played.result
    assert (result.status, result.exit_code) == ("error", 3)
    expected = BAD_ACTIONS[name.removeprefix("preview_")][1]
    assert expected in result.error, result.error
    call_id = played.issued_calls()[0]
    where = "action 1" if name.startswith("preview") else "action 2"
    assert f"computer_call {call_id} {where}" in result.error, result.error
    assert "Traceback" not in result.error
    assert played.meta["status"] == "error" and played.meta["error"] == result.error
    state = played.page.state
    assert state["clicks"] == [] and state["keys"] == [], "nothing of the bad batch was executed"
