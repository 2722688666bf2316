"""``cua run --model gemini-…`` end to end: the CLI in a subprocess, the Gemini stand-in over real
HTTP, real Chromium on tests/pages/gemini.html. The page POSTs its own account of what happened to
it; the assertions read that, the exit code, the message, the run folder and what the "model" got.

The runs are independent, so they are started together and awaited together (one browser each).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from cua.environments.browser_launch import find_chromium
from cua.testing.google import StandIn, Turn

from cli_helpers import REPO, clean_env, finish, start_cua
from helpers_loop import Site, grep_folder, run_folder

if find_chromium() is None:  # pragma: no cover
    pytest.skip("no Chromium installed (make setup)", allow_module_level=True)

KEY = "AIzaSy-e2e-gemini-5c1d7f3a9b2e8f4a6c0d"  # distinctive, so a leak is easy to grep for
# 0–999 grid points of the page's boxes on an 800x600 display (centres in pixels, /800 and /600).
PRESS, TWICE, THRICE, HOVER = (119, 84), (344, 84), (569, 84), (794, 84)
ENTRY, PANE, PAD, PAD_END = (213, 225), (713, 367), (100, 417), (375, 583)


def no_key_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in clean_env().items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    return {**env, **extra}


def g(point: tuple[int, int], **extra: Any) -> dict[str, Any]:
    return {"x": point[0], "y": point[1], **extra}


# Every function of the 3.5+ set, in turns; the page's report says what each did.
CURRENT_TURNS = [
    Turn.calls(("click", g(PRESS)), ("right_click", g(PRESS)), ("middle_click", g(PRESS)), thought="Buttons first."),
    Turn.calls(("double_click", g(TWICE)), ("triple_click", g(THRICE)), ("move", g(HOVER, intent="hover"))),
    Turn.calls(("mouse_down", g(PAD)), ("move", g(PAD_END)), ("mouse_up", g(PAD_END))),
    Turn.calls(("click", g(ENTRY)), ("type", {"text": "hello"}), ("hotkey", {"keys": ["control", "a"]}),
               ("type", {"text": "gemini", "press_enter": True})),
    Turn.calls(("key_down", {"key": "shift"}), ("key_up", {"key": "shift"}), ("press_key", {"key": "Tab"})),
    Turn.calls(("scroll", g(PANE, direction="down", magnitude=500)), ("scroll", g(PANE, direction="right", magnitude=250)),
               ("wait", {"seconds": 0.2}), ("take_screenshot", {})),
    Turn.calls(("drag_and_drop", {**g(PAD), "destination_x": PAD_END[0], "destination_y": PAD_END[1]})),
    Turn.calls(("navigate", {"url": "PAGE_B"})),
    Turn.calls(("go_back", {})),
    Turn.calls(("go_forward", {})),
    Turn.calls(("go_back", {})),
    Turn.text("Every action done."),
]
LEGACY_TURNS = [
    Turn.calls(("open_web_browser", {}), ("click_at", g(PRESS)), ("hover_at", g(HOVER))),
    Turn.calls(("type_text_at", g(ENTRY, text="first")),
               ("type_text_at", g(ENTRY, text="second", press_enter=True, clear_before_typing=True))),
    Turn.calls(("key_combination", {"keys": "shift+Tab"}), ("scroll_at", g(PANE, direction="down", magnitude=500))),
    Turn.calls(("drag_and_drop", {**g(PAD), "destination_x": PAD_END[0], "destination_y": PAD_END[1]}),
               ("wait_5_seconds", {})),
    Turn.calls(("scroll_document", {"direction": "down"})),
    Turn.calls(("navigate", {"url": "PAGE_B"}), ("go_back", {}), ("go_forward", {}), ("go_back", {})),
    Turn.calls(("search", {})),
    Turn.text("Every legacy action done."),
]


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    server = Site()
    yield server
    server.close()


def with_url(turns: list[Turn], url: str) -> list[Turn]:
    for turn in turns:
        for part in turn.parts:
            call = part.get("functionCall")
            if call and call["args"].get("url") == "PAGE_B":
                call["args"]["url"] = url
    return turns


class Run:
    """One ``cua run`` against its own stand-in, started now, finished by ``result()``."""

    def __init__(self, site: Site, tmp: Path, name: str, turns: list[Any], *args: str,
                 model: str = "gemini-3.5-flash", env: dict[str, str] | None = None, faults: tuple[str, ...] = ()):
        self.token, self.out = name, tmp / name
        self.server = StandIn(turns, api_key=KEY).start()
        for fault in faults:
            self.server.inject(fault, retry_delay=0.1) if fault == "429" else self.server.inject(fault)
        argv = ["run", "--model", model, "--task", "work the Gemini page", "--display", "800x600",
                "--start-url", site.url(f"gemini.html?report={name}"), "--base-url", self.server.base_url,
                "--out", str(self.out), "--json", *args]
        self.proc = start_cua(argv, env if env is not None else no_key_env(GEMINI_API_KEY=KEY), REPO)

    def result(self) -> tuple[int, dict[str, Any], str]:
        done = finish(self.proc, timeout=120)
        self.server.stop()
        self.server.check()
        assert "Traceback" not in done.stderr, done.stderr
        assert KEY not in done.stdout + done.stderr
        self.stderr = done.stderr
        return done.code, (done.json() if done.stdout.strip() else {}), done.stderr


@pytest.fixture(scope="module")
def runs(site: Site, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("gemini")
    page_b = site.url("history_b.html")

    def accepted_then(turn: Turn, server_box: list[StandIn]) -> Any:
        def play(request: dict[str, Any], state: Any) -> Turn:
            server_box[0].inject("503")  # the next request meets an overloaded model once
            return turn
        return play

    legacy_box: list[StandIn] = []
    legacy_turns: list[Any] = with_url(list(LEGACY_TURNS), page_b)
    legacy_turns[2] = accepted_then(legacy_turns[2], legacy_box)
    started = {
        "current": Run(site, tmp, "current", with_url(list(CURRENT_TURNS), page_b), "--stream",
                       faults=("429", "cut_stream")),
        "legacy": Run(site, tmp, "legacy", legacy_turns, "--no-stream", "--allow-domain", "127.0.0.1",
                      model="gemini-2.5-computer-use-preview-10-2025", faults=("500", "reset")),
        "confirm_denied": Run(site, tmp, "confirm_denied", [_confirm_turn(), Turn.text("done")]),
        "confirm_allowed": Run(site, tmp, "confirm_allowed", [_confirm_turn(), Turn.text("clicked")],
                               "--safety-allow", "require_confirmation"),
        "malformed": Run(site, tmp, "malformed", [Turn.finish("MALFORMED_FUNCTION_CALL")]),
        "no_key": Run(site, tmp, "no_key", [], env=no_key_env()),
    }
    legacy_box.append(started["legacy"].server)
    return {name: (run, run.result()) for name, run in started.items()}


def _confirm_turn() -> Turn:
    decision = {"decision": "require_confirmation", "explanation": "This clicks a purchase button."}
    return Turn.calls(("click", g(PRESS, safety_decision=decision)))


def last_report(site: Site, token: str) -> dict[str, Any]:
    """The page's fullest account: going back may reload it fresh (no back/forward cache), and
    the fresh page reports an empty state."""
    reports = site.reports(token)
    assert reports, f"the page of run {token} never reported"
    return max(reports, key=lambda r: len(json.dumps(r)))


def test_every_current_action_drives_the_page(runs: dict[str, Any], site: Site) -> None:
    run, (code, result, _) = runs["current"]
    assert code == 0 and result["status"] == "completed", result
    assert result["final_text"] == "Every action done."
    state = last_report(site, "current")
    assert state["clicks"] == [0, 2, 1]  # left, right, middle
    assert state["doubles"] == 1 and state["triples"] == 3 and state["hovered"] is True
    assert state["entry"] == "gemini"  # select-all then typed over, Enter pressed after
    assert "Enter" in state["keys"] and "Shift-up" in state["keys"] and "Tab" in state["keys"]
    assert state["paneTop"] == 300 and state["paneLeft"] == 200  # 500/1000 of 600 px, 250/1000 of 800 px
    assert state["drag"]["from"] == [80, 250] and state["drag"]["to"] == [300, 349]
    assert result["final_url"].endswith("gemini.html?report=current")  # navigate, back, forward, back
    assert [r.fault for r in run.server.records][:3] == ["429", "cut_stream", None]  # faults survived


def test_every_legacy_action_drives_the_page(runs: dict[str, Any], site: Site) -> None:
    run, (code, result, _) = runs["legacy"]
    assert code == 0 and result["status"] == "completed", result
    state = last_report(site, "legacy")
    assert state["clicks"][:1] == [0] and state["hovered"] is True
    assert state["entry"] == "second"  # clear_before_typing replaced "first"
    assert "Enter" in state["keys"] and "Tab" in state["keys"]
    assert state["paneTop"] == 300 and state["windowTop"] > 0  # scroll_at, then a page-sized scroll_document
    assert state["drag"]["to"] == [300, 349]
    faults = [r.fault for r in run.server.records]
    assert faults.count("500") == faults.count("reset") == faults.count("503") == 1
    # search went to Google's page, which the domain policy refused; the model was told so.
    search_answer = run.server.requests[-1]["contents"][-1]["parts"][0]["functionResponse"]
    assert search_answer["name"] == "search" and "google.com" in search_answer["response"]["error"]


def test_every_call_is_answered_with_url_and_screenshot(runs: dict[str, Any]) -> None:
    run, _ = runs["current"]
    answer = run.server.requests[-1]["contents"][-1]["parts"][0]["functionResponse"]
    assert answer["name"] == "go_back" and answer["response"]["url"].endswith("gemini.html?report=current")
    assert answer["parts"][0]["inlineData"]["mimeType"] == "image/png"
    tools = run.server.requests[0]["tools"]
    assert tools[0] == {"computerUse": {"environment": "ENVIRONMENT_BROWSER"}}
    # Only the newest screenshots travel in full (keep_screenshots 3; the newest turn's all kept).
    last = run.server.requests[-1]["contents"]
    images = sum(1 for c in last for p in c["parts"] if "inlineData" in p or "parts" in p.get("functionResponse", {}))
    assert images == 3


def test_require_confirmation_denied_unattended_stops_with_exit_5(runs: dict[str, Any], site: Site) -> None:
    run, (code, result, _) = runs["confirm_denied"]
    assert code == 5 and result["status"] == "safety_denied"
    assert "require_confirmation" in result["error"] and "purchase" in result["error"]
    assert site.reports("confirm_denied") == [] or last_report(site, "confirm_denied")["clicks"] == []
    assert len(run.server.requests) == 1  # nothing was answered


def test_require_confirmation_allowed_is_acknowledged(runs: dict[str, Any], site: Site) -> None:
    run, (code, result, _) = runs["confirm_allowed"]
    assert code == 0, result
    assert last_report(site, "confirm_allowed")["clicks"] == [0]
    answer = run.server.requests[-1]["contents"][-1]["parts"][0]["functionResponse"]
    assert answer["response"]["safety_acknowledgement"] == "true"


def test_malformed_function_call_ends_the_run_clearly(runs: dict[str, Any]) -> None:
    _, (code, result, stderr) = runs["malformed"]
    assert code == 1 and result["status"] == "failed"
    assert "MALFORMED_FUNCTION_CALL" in result["reason"] and "malformed function call" in result["reason"]


def test_missing_key_is_exit_2_naming_gemini_api_key(runs: dict[str, Any]) -> None:
    _, (code, result, stderr) = runs["no_key"]
    assert code == 2 and "GEMINI_API_KEY" in stderr + json.dumps(result)


def test_key_never_reaches_the_run_folder(runs: dict[str, Any]) -> None:
    for name in ("current", "legacy"):
        run, (_, result, _) = runs[name]
        assert grep_folder(Path(result["run_dir"]), KEY) == []
        meta, steps = run_folder(result["run_dir"])
        assert meta["provider"] == "google" and steps


def test_a_gemini_run_replays_with_no_model_and_no_key(runs: dict[str, Any], site: Site) -> None:
    _, (_, result, _) = runs["current"]
    done = finish(start_cua(["replay", result["run_dir"], "--json", "--out", str(Path(result["run_dir"]).parent)],
                            no_key_env(), REPO), timeout=120)
    assert done.code == 0, done.stderr
    assert done.json()["status"] == "completed"


# Scenarios whose scripts use different actions (drag, scroll, right click): the suite's share of
# the bundled ones; the rest pass the same way (`cua run scenarios/X --model scripted --provider google`).
SCENARIOS = ["board.cua.yaml", "list.cua.yaml", "menu.cua.yaml"]


def test_bundled_scenarios_pass_over_the_gemini_wire(tmp_path: Path) -> None:
    procs = {name: start_cua(["run", f"scenarios/{name}", "--model", "scripted", "--provider", "google",
                              "--out", str(tmp_path), "--json"], no_key_env(), REPO) for name in SCENARIOS}
    for name, proc in procs.items():
        done = finish(proc, timeout=150)
        assert done.code == 0, f"{name}: {done.stdout[-500:]} {done.stderr[-1500:]}"
