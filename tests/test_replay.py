"""Replay of recorded runs on real headless Chromium and the demo app over loopback HTTP.

What a user relies on: a replay makes the same page effects as the run it came from without
asking any model; it heals targets that moved, stops as ``diverged`` (with evidence) when a target
is gone, can hand over to a model or update the recording, and a run killed half-way still leaves
a folder that reports and replays.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from cua.environments.browser import BrowserEnvironment
from cua.errors import CuaError
from cua.runner import run_scenario
from cua.testing.demo_server import serve_demo
from cua.testing.standin import StandIn
from cua.runs.reader import read_run
from cua.replay.replayer import replay_run, replay_target

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"
DEMO_APP = REPO / "demo_app"
FIXTURES = Path(__file__).parent / "scenarios_fixtures"
CUA = [str(REPO / ".venv" / "bin" / "cua")] if (REPO / ".venv" / "bin" / "cua").exists() else [
    sys.executable, "-m", "cua"]
SHIFT = {"query": "?shift=1"}


# --- helpers ------------------------------------------------------------------------------------


class StateKeepingBrowser(BrowserEnvironment):
    """A browser that reads the page's own ``window.demoState`` just before it closes, so a test
    can compare what a run and its replay did to the page."""

    final_state: dict[str, Any] | None = None

    async def stop(self) -> None:
        try:
            self.final_state = await self.page.evaluate("window.demoState")
        except CuaError:
            pass  # never started, or every tab closed: there is no state to read
        await super().stop()


@pytest.fixture(scope="module")
def demo() -> Iterator[Any]:
    with serve_demo() as server:
        yield server


@pytest.fixture(autouse=True)
def no_model_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may reach a real model: scripted runs use the stand-in, replays nothing."""
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def scenario_copy(tmp_path: Path, name: str, *, app: Path = DEMO_APP) -> Path:
    """A scenario file and its recording copied into tmp_path, serving ``app``."""
    text = (SCENARIOS / f"{name}.cua.yaml").read_text(encoding="utf-8")
    text = text.replace("serve: ../demo_app", f"serve: {app}")
    assert f"serve: {app}" in text
    path = tmp_path / f"{name}.cua.yaml"
    path.write_text(text, encoding="utf-8")
    shutil.copytree(SCENARIOS / "recordings" / name, tmp_path / "recordings" / name)
    return path


def cua(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_"))}
    return subprocess.run([*CUA, *args], capture_output=True, text=True, timeout=timeout,
                          env={**base, **(env or {})}, cwd=REPO)


def steps_of(run_dir: str | Path) -> list[dict[str, Any]]:
    return read_run(run_dir)[1]


def healed_records(run_dir: str | Path) -> list[dict[str, Any]]:
    return [a["healed"] for s in steps_of(run_dir) for a in s.get("actions") or [] if a.get("healed")]


class CountingServer:
    """A loopback HTTP server that only counts requests: where a model request would land."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                hits.append(self.path)
                self.send_response(500)
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- the same page effects, and no model --------------------------------------------------------

EFFECTS = {
    "form": ("form.html", lambda s: s["submitted"] == {"name": "Ada", "email": "ada@example.com", "age": 36,
                                                       "topic": "support", "agree": True}),
    "board": ("board.html", lambda s: s["columns"]["done"][-1] == "Write spec" and s["moves"] == 1),
    "todo": ("todo.html", lambda s: [(i["text"], i["done"]) for i in s["items"]]
             == [("Buy milk", True), ("Write report", False)]),
}


@pytest.mark.parametrize("name", sorted(EFFECTS))
async def test_replay_makes_the_same_page_effects_as_the_live_run_and_asks_no_model(
    name: str, demo: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page, effect = EFFECTS[name]
    live_env = StateKeepingBrowser(start_url=demo.url(page))
    live = await run_scenario(SCENARIOS / f"{name}.cua.yaml", flags={"model": "scripted", "out": tmp_path},
                              env=live_env, record=False)
    assert live.status == "completed", live.reason
    assert effect(live_env.final_state), live_env.final_state

    # During the replay any model client or stand-in would show up: a client built from the
    # environment would post to the counting server, and both constructors are watched.
    sentinel = CountingServer()
    built: list[str] = []
    import cua.providers.openai.client as client_module

    real_client_init, real_standin_start = client_module.ResponsesClient.__init__, StandIn.start
    monkeypatch.setattr(client_module.ResponsesClient, "__init__",
                        lambda self, *a, **k: (built.append("ResponsesClient"), real_client_init(self, *a, **k))[1])
    monkeypatch.setattr(StandIn, "start", lambda self: (built.append("StandIn"), real_standin_start(self))[1])
    monkeypatch.setenv("OPENAI_BASE_URL", sentinel.url)
    assert "OPENAI_API_KEY" not in os.environ
    replay_env = StateKeepingBrowser(start_url=demo.url(page))
    try:
        replayed = await replay_run(Path(live.run_dir), out=tmp_path, env=replay_env)
    finally:
        sentinel.close()
    assert replayed.status == "completed", replayed.reason
    assert replay_env.final_state == live_env.final_state
    assert built == [] and sentinel.hits == []
    assert replayed.usage.total_tokens == 0
    meta, steps = read_run(replayed.run_dir)
    assert meta["kind"] == "replay" and meta["source_run"] == live.run_dir
    assert [c["ok"] for c in meta["checks"]] == [True] * len(meta["checks"]) and meta["checks"]
    assert all(s.get("replay") for s in steps) and all(not s.get("response_id") for s in steps)


# --- healing drift ------------------------------------------------------------------------------

DRIFT = {
    "login": ("login.html", lambda s: s == {"page": "dashboard", "shifted": True, "user": "demo"}),
    "board": ("board.html", lambda s: s["shifted"] and s["lastMove"] == {"card": "Write spec", "from": "todo",
                                                                          "to": "done"}),
    "menu": ("menu.html", lambda s: s["shifted"] and "report.pdf" not in s["files"]
             and s["status"] == "Deleted report.pdf"),
    "list": ("list.html", lambda s: s["shifted"] and s["selectedRow"] == 150),
}


@pytest.mark.parametrize("name", sorted(DRIFT))
async def test_a_recording_heals_on_a_page_whose_targets_moved(name: str, demo: Any, tmp_path: Path) -> None:
    page, effect = DRIFT[name]
    env = StateKeepingBrowser(start_url=demo.url(f"{page}?shift=1"))
    result = await replay_target(SCENARIOS / f"{name}.cua.yaml", variables=SHIFT, out=tmp_path, env=env)
    assert result.status == "completed", result.reason
    assert result.healed and result.healed > 0 and result.diverged_at is None
    assert result.checks and all(c["ok"] for c in result.checks), result.checks
    assert effect(env.final_state), env.final_state
    healed = healed_records(result.run_dir)
    assert len(healed) == result.healed
    # The demo app moves the body by 40 px right and 60 px down (give or take a scrolled pixel).
    for record in healed:
        (fx, fy), (tx, ty) = record["from"], record["to"]
        assert record["by"] == "element" and abs(tx - fx - 40) <= 2 and abs(ty - fy - 60) <= 2, record


# --- a target that is gone ----------------------------------------------------------------------

CONTINUE_AT = (700, 590)  # centre of the link that replaces the Sign in button in the variant


@pytest.fixture
def login_without_button(tmp_path: Path) -> Path:
    """The login scenario on a copy of the demo app whose Sign in button is gone, replaced by a
    'Continue' link somewhere else that submits the form."""
    app = tmp_path / "app"
    shutil.copytree(DEMO_APP, app)
    page = app / "login.html"
    html = page.read_text(encoding="utf-8")
    button = '<button type="submit" id="sign-in" data-testid="sign-in">Sign in</button>'
    assert button in html
    link = (f'<a href="#" id="continue" style="position:fixed; left:{CONTINUE_AT[0] - 100}px; '
            f'top:{CONTINUE_AT[1] - 30}px; width:200px; height:60px; line-height:60px; display:block; '
            'text-align:center" onclick="document.getElementById(\'login-form\').requestSubmit(); '
            'return false">Continue</a>')
    page.write_text(html.replace(button, "").replace("</main>", link + "\n</main>"), encoding="utf-8")
    return scenario_copy(tmp_path, "login", app=app)


def test_a_gone_target_stops_the_replay_as_diverged_with_both_screens(login_without_button: Path,
                                                                        tmp_path: Path) -> None:
    proc = cua("replay", str(login_without_button), "--out", str(tmp_path / "runs"), "--json")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "diverged" and out["diverged_at"] == 2
    meta, steps = read_run(out["run_dir"])
    assert meta["status"] == "diverged" and meta["diverged_at"] == 2 and meta["exit_code"] == 1
    diverged = [s for s in steps if s.get("diverged")]
    assert [s["step"] for s in diverged] == [2]
    record = diverged[0]["diverged"]
    assert "Sign in" in record["reason"]
    expected, actual = Path(out["run_dir"]) / record["expected_screen"], Path(out["run_dir"]) / record["actual_screen"]
    assert expected.is_file() and actual.is_file()
    assert expected.read_bytes() != actual.read_bytes()
    assert meta["checks"] == []  # a replay that did not get through is not judged as passing


@pytest.mark.parametrize("damage, says", [
    ("{broken", "run.json cannot be read"),
    ("[1, 2]", "holds no JSON object"),
    ('{"settings": 5}', "settings is not an object"),
])
def test_a_damaged_run_folder_is_one_message_for_replay_and_report(damage: str, says: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "damaged"
    shutil.copytree(SCENARIOS / "recordings" / "login", run_dir)
    (run_dir / "run.json").write_text(damage, encoding="utf-8")
    for command in (["replay", str(run_dir), "--out", str(tmp_path / "runs")], ["report", str(run_dir)]):
        proc = cua(*command)
        if command[0] == "report" and "settings" in damage:
            assert proc.returncode == 0, proc.stderr  # a report shows what there is
            continue
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("cua: ") and says in proc.stderr and proc.stderr.count("\n") == 1


def test_a_browser_recording_refuses_a_vm_or_display_to_replay_on(tmp_path: Path) -> None:
    for flag, value in (("--vm-url", "http://127.0.0.1:9"), ("--x-display", ":3")):
        proc = cua("replay", str(SCENARIOS / "login.cua.yaml"), flag, value, "--out", str(tmp_path / "runs"))
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr == f"cua: {flag} is for " + proc.stderr.split(" is for ", 1)[1]
        assert "this run's environment is the browser" in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "runs").exists()


async def test_heal_model_hands_a_divergence_to_the_model_which_finishes_the_task(
    login_without_button: Path, tmp_path: Path
) -> None:
    turns = [
        [{"type": "computer_call", "actions": [{"type": "click", "x": CONTINUE_AT[0], "y": CONTINUE_AT[1]}]}],
        [{"type": "message", "role": "assistant",
          "content": [{"type": "output_text", "text": "I signed in with the Continue link."}]}],
    ]
    with StandIn(turns=turns, api_key="sk-heal-test") as model:
        result = await replay_target(login_without_button, heal="model", out=tmp_path / "runs",
                                     base_url=model.base_url, api_key="sk-heal-test")
    assert result.status == "completed", result.reason
    assert all(c["ok"] for c in result.checks) and len(result.checks) == 4, result.checks
    assert len(model.requests) == 2
    first = json.dumps(model.requests[0])
    assert "Sign in to the demo app as demo with the password s3cret." in first
    assert model.requests[0]["model"] != "scripted"  # the recording's stand-in is no model to ask
    meta, steps = read_run(result.run_dir)
    assert meta["status"] == "completed"
    assert any(s.get("diverged") for s in steps)
    assert any(s.get("response_id") for s in steps)  # the model's turns are in the same trace
    for file in Path(result.run_dir).rglob("*"):
        assert not file.is_file() or b"s3cret" not in file.read_bytes(), file


# --- updating a recording -----------------------------------------------------------------------


def test_update_saves_the_healed_replay_so_the_next_replay_needs_no_healing(tmp_path: Path) -> None:
    scenario = scenario_copy(tmp_path, "login")
    recording = tmp_path / "recordings" / "login"
    before = json.loads((recording / "run.json").read_text(encoding="utf-8"))
    first = cua("replay", str(scenario), "--var", "query=?shift=1", "--update", "--out", str(tmp_path / "runs"),
                "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    healed = json.loads(first.stdout)
    assert healed["status"] == "completed" and healed["healed"] > 0
    after = json.loads((recording / "run.json").read_text(encoding="utf-8"))
    assert before["kind"] == "run" and after["kind"] == "replay"
    assert (recording / after["source_run"]).resolve() == recording.resolve()  # named from the recording
    assert not (tmp_path / "recordings" / ".login.new").exists()

    second = cua("replay", str(scenario), "--var", "query=?shift=1", "--out", str(tmp_path / "runs"), "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    again = json.loads(second.stdout)
    assert again["status"] == "completed" and again["healed"] == 0
    assert all(c["ok"] for c in again["checks"]) and again["checks"]


# --- image-only healing -------------------------------------------------------------------------


def strip_elements(run_dir: Path) -> int:
    """Remove the element part of every anchor, as a desktop run would record it; returns how many."""
    lines, stripped = [], 0
    for line in (run_dir / "steps.jsonl").read_text(encoding="utf-8").splitlines():
        step = json.loads(line)
        for entry in step.get("actions") or []:
            if entry.get("anchor", {}).pop("element", None) is not None:
                stripped += 1
        lines.append(json.dumps(step))
    (run_dir / "steps.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return stripped


async def test_image_crops_heal_a_recording_that_has_no_element_anchors(demo: Any, tmp_path: Path) -> None:
    scenario = scenario_copy(tmp_path, "todo")
    assert strip_elements(tmp_path / "recordings" / "todo") == 3
    env = StateKeepingBrowser(start_url=demo.url("todo.html?shift=1"))
    result = await replay_target(scenario, variables=SHIFT, out=tmp_path / "runs", env=env)
    assert result.status == "completed", result.reason
    healed = healed_records(result.run_dir)
    assert len(healed) == result.healed == 3
    assert {h["by"] for h in healed} == {"image"}
    assert [(i["text"], i["done"]) for i in env.final_state["items"]] == [("Buy milk", True), ("Write report", False)]


async def test_an_unreadable_recorded_screenshot_diverges_saying_so(demo: Any, tmp_path: Path) -> None:
    scenario = scenario_copy(tmp_path, "login")
    strip_elements(tmp_path / "recordings" / "login")  # only the image can heal it
    first = json.loads((tmp_path / "recordings" / "login" / "steps.jsonl").read_text().splitlines()[0])
    (tmp_path / "recordings" / "login" / first["screen_before"]).write_bytes(b"\x89PNG damaged")
    result = await replay_target(scenario, variables=SHIFT, out=tmp_path / "runs")
    assert (result.status, result.diverged_at) == ("diverged", 1)
    assert f"the recorded screenshot {first['screen_before']} cannot be read" in result.reason


async def test_image_crops_heal_the_login_form_with_look_alike_fields(demo: Any, tmp_path: Path) -> None:
    scenario = scenario_copy(tmp_path, "login")
    strip_elements(tmp_path / "recordings" / "login")
    result = await replay_target(scenario, variables=SHIFT, out=tmp_path / "runs")
    assert result.status == "completed", result.reason


# --- waits --------------------------------------------------------------------------------------


async def test_recorded_waits_are_replayed_as_readiness_waits_not_as_delays(demo: Any, tmp_path: Path) -> None:
    scenario = scenario_copy(tmp_path, "login")
    recording = tmp_path / "recordings" / "login"
    # Two waits between the typing and the click on Sign in, and a run whose raw wait is 30 s:
    # replayed as delays they would take a minute.
    meta = json.loads((recording / "run.json").read_text(encoding="utf-8"))
    meta["settings"]["wait_ms"] = 30_000
    (recording / "run.json").write_text(json.dumps(meta), encoding="utf-8")
    steps = [json.loads(line) for line in (recording / "steps.jsonl").read_text(encoding="utf-8").splitlines()]
    steps[1]["actions"][:0] = [{"action": {"type": "wait"}, "ms": 30_000}, {"action": {"type": "wait"}, "ms": 30_000}]
    (recording / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps), encoding="utf-8")

    env = StateKeepingBrowser(start_url=demo.url("login.html"))
    started = time.monotonic()
    result = await replay_target(scenario, out=tmp_path / "runs", env=env)
    took = time.monotonic() - started
    assert result.status == "completed", result.reason
    assert env.final_state["user"] == "demo"
    assert took < 25, f"the replay took {took:.1f}s: a recorded wait was slept"
    step2 = steps_of(result.run_dir)[1]
    waits = [a for a in step2["actions"] if a["action"]["type"] == "wait"]
    assert len(waits) == 2 and all(w.get("settled") and w["ms"] < 5_000 for w in waits)


# --- a run killed half-way ----------------------------------------------------------------------


def test_a_run_killed_mid_way_still_reports_and_replays(tmp_path: Path) -> None:
    scenario = FIXTURES / "slow_todo.yaml"
    out = tmp_path / "runs"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_"))}
    proc = subprocess.Popen([*CUA, "run", str(scenario), "--out", str(out), "--model", "scripted"], cwd=REPO, env=base,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        steps_file = None
        while time.monotonic() < deadline:
            found = list(out.glob("*/steps.jsonl"))
            if found and len(found[0].read_text(encoding="utf-8").splitlines()) >= 2:
                steps_file = found[0]
                break
            assert proc.poll() is None, f"cua run ended before it was killed: {proc.stderr.read()}"
            time.sleep(0.05)
        assert steps_file is not None, "the run wrote no two steps in 60 s"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    run_dir = steps_file.parent
    meta, steps = read_run(run_dir)
    assert meta["status"] == "running" and len(steps) >= 2
    assert not (run_dir / "report.html").exists()

    report = cua("report", str(run_dir))
    assert report.returncode == 0, report.stderr
    assert "Traceback" not in report.stderr
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    for step in steps:
        assert f'id="step-{step["step"]}"' in html
    assert f'id="step-{len(steps) + 1}"' not in html
    assert "Write report" in html  # the typed text of the first step

    replay = cua("replay", str(run_dir), "--out", str(tmp_path / "replays"), "--json")
    assert "Traceback" not in replay.stderr, replay.stderr
    replayed = json.loads(replay.stdout)
    # Every step the killed run finished is replayed; the scenario's check (eight items) then fails.
    assert replayed["steps"] == len(steps) and replayed["diverged_at"] is None
    assert (replay.returncode, replayed["status"]) == (1, "failed"), replayed
