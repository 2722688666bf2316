"""The ``cua run`` contract, from the outside: the installed ``cua`` executable in a subprocess,
talking to a stand-in Responses server started in the test process, driving real Chromium.

What is checked is what a script calling ``cua`` relies on: the exit code, exactly one JSON object
on stdout with ``--json``, progress on stderr, a run folder with run.json, and the API key nowhere
in any of them. Runs that only differ in how they end are started together and checked one each.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_helpers import Finished, clean_env, finish, start_cua  # noqa: E402
from helpers_loop import API_KEY, Site, alive, descendants, grep_folder, run_folder, wait_for  # noqa: E402

from cua.environments.browser_launch import find_chromium  # noqa: E402
from cua.testing.standin import StandIn, Turn  # noqa: E402

JSON_KEYS = {"status", "steps", "final_text", "final_url", "run_dir", "usage", "error"}
USAGE_KEYS = {"input_tokens", "output_tokens", "total_tokens"}
PRESS, ENTRY = {"type": "click", "x": 100, "y": 45}, {"type": "click", "x": 550, "y": 120}

needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="no Chromium installed (make setup)")


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    server = Site()
    yield server
    server.close()


def run_args(site: Site, out: Path, *extra: str) -> list[str]:
    return ["run", "--task", "work the loop page", "--start-url", site.url(), "--display", "800x600",
            "--out", str(out), *extra]


def assert_clean(finished: Finished) -> None:
    assert "Traceback" not in finished.stderr, finished.stderr
    assert API_KEY not in finished.stderr and API_KEY not in finished.stdout


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# --- exit 0 ----------------------------------------------------------------------------------------


@needs_chromium
def test_completed_run_json_contract_and_no_secret_anywhere(site: Site, tmp_path: Path) -> None:
    """Exit 0: one JSON object on stdout, progress on stderr, a run folder. The scripted model types
    the API key into the page and repeats it in its answer: it must be masked everywhere cua writes."""
    turns = [Turn.call(ENTRY, {"type": "type", "text": API_KEY}), Turn.message(f"I typed {API_KEY} for you.")]
    with StandIn(turns, api_key=API_KEY, sse_style="completed_only") as server:
        env = clean_env(OPENAI_API_KEY=API_KEY, OPENAI_BASE_URL=server.base_url)
        args = run_args(site, tmp_path / "runs", "--model", "gpt-5.4", "--json")
        finished = finish(start_cua(args, env, tmp_path))
    assert finished.code == 0, finished.stderr
    data = finished.json()
    assert JSON_KEYS <= set(data) and USAGE_KEYS <= set(data["usage"])
    assert data["status"] == "completed" and data["error"] is None and data["steps"] == 2
    assert data["final_url"] == site.url()
    assert data["usage"]["total_tokens"] == sum(r["usage"]["total_tokens"] for r in server.responses) > 0
    # The model did get the key typed (that is the task), but cua's own output masks it.
    assert data["final_text"].startswith("I typed ") and API_KEY not in data["final_text"]
    assert "step   1" in finished.stderr and "type(" in finished.stderr, "progress goes to stderr"
    assert_clean(finished)

    run_dir = Path(data["run_dir"])
    assert run_dir.parent == tmp_path / "runs"
    meta, steps = run_folder(run_dir)
    assert meta["status"] == "completed" and meta["exit_code"] == 0 and meta["final_url"] == site.url()
    typed = steps[0]["actions"][1]["action"]
    assert typed["type"] == "type" and typed["text"] != API_KEY, "the typed secret is masked in the trace"
    assert grep_folder(run_dir, API_KEY) == [], "the API key is written in the run folder"
    assert server.rejections == []


# --- exits of runs that went through --------------------------------------------------------------


ENDINGS: dict[str, dict[str, Any]] = {
    # name: turns, faults, extra flags, base url ("standin" / "unreachable" / None: $OPENAI_BASE_URL)
    "max_steps": dict(turns=[Turn.call(PRESS)] * 2, flags=["--max-steps", "1"], base_url="flag", json=False),
    "api_error": dict(turns=[Turn.call(PRESS)], faults=["insufficient_quota"]),
    "unreachable": dict(turns=[], base_url="unreachable"),
    "safety_deny": dict(turns=[Turn.call(PRESS, safety_checks=["malicious_instructions"])], flags=["--safety", "deny"]),
    "safety_ask_no_tty": dict(turns=[Turn.call(PRESS, safety_checks=["irrelevant_domain"])], flags=["--safety", "ask"]),
}


@pytest.fixture(scope="module")
def endings(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Finished, StandIn, str]]]:
    """Every ending's ``cua run``, started together (each with its own stand-in)."""
    out = tmp_path_factory.mktemp("cli-endings")
    servers: dict[str, StandIn] = {}
    procs: dict[str, tuple[subprocess.Popen[str], str]] = {}
    try:
        for name, case in ENDINGS.items():
            server = servers[name] = StandIn(case["turns"], api_key=API_KEY).start()
            for fault in case.get("faults", []):
                server.inject(fault)
            base_url = {"unreachable": closed_port_url(), "flag": server.base_url}.get(case.get("base_url"), "")
            env = clean_env(OPENAI_API_KEY=API_KEY)
            flags = [*case.get("flags", []), *(["--json"] if case.get("json", True) else [])]
            if base_url:
                flags += ["--base-url", base_url]
            else:
                env["OPENAI_BASE_URL"] = server.base_url
            args = run_args(site, out / name, "--model", "gpt-5.4", *flags)
            procs[name] = (start_cua(args, env, out), base_url)
        yield {name: (finish(proc), servers[name], base_url) for name, (proc, base_url) in procs.items()}
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
        for server in servers.values():
            server.stop()


@needs_chromium
def test_max_steps_exits_1(endings: dict[str, Any]) -> None:
    finished, server, _ = endings["max_steps"]
    assert finished.code == 1, finished.stderr
    assert finished.stdout.startswith("max_steps: 1 steps"), finished.stdout
    assert "reason: stopped after 1 steps" in finished.stdout
    assert len(server.requests) == 1
    assert_clean(finished)


@needs_chromium
def test_api_error_exits_3(endings: dict[str, Any]) -> None:
    finished, server, _ = endings["api_error"]
    assert finished.code == 3, finished.stderr
    data = finished.json()
    assert data["status"] == "error" and "insufficient_quota" in data["error"]
    assert [r.fault for r in server.records] == ["insufficient_quota"], "a quota error is not retried"
    meta, _ = run_folder(data["run_dir"])
    assert meta["status"] == "error" and meta["exit_code"] == 3
    assert_clean(finished)


@needs_chromium
def test_unreachable_endpoint_exits_3_naming_it(endings: dict[str, Any]) -> None:
    finished, _, base_url = endings["unreachable"]
    assert finished.code == 3, finished.stderr
    data = finished.json()
    assert data["status"] == "error" and base_url.removesuffix("/v1") in data["error"], data["error"]
    assert data["steps"] == 0, "no model turn happened"
    assert_clean(finished)


@needs_chromium
@pytest.mark.parametrize("name", ["safety_deny", "safety_ask_no_tty"])
def test_refused_safety_check_exits_5(endings: dict[str, Any], name: str) -> None:
    finished, server, _ = endings[name]
    assert finished.code == 5, finished.stderr
    data = finished.json()
    assert data["status"] == "safety_denied" and "safety check" in data["error"]
    assert len(server.requests) == 1, "the refused call was never answered"
    _, steps = run_folder(data["run_dir"])
    assert steps[-1]["safety_checks"][0]["decision"] == "denied" and steps[-1]["actions"] == []
    assert "denied" in finished.stderr, "the progress log shows the decision"
    assert_clean(finished)


# --- exits before any browser starts ----------------------------------------------------------------


PRE_BROWSER = {
    "bad_flag": (["--bogus"], {"OPENAI_API_KEY": API_KEY}, 2, "--bogus"),
    "missing_key": (["--json"], {}, 2, "OPENAI_API_KEY"),
    "bad_display": (["--display", "12x"], {"OPENAI_API_KEY": API_KEY}, 2, "12x"),
    "scripted_without_scenario": (["--model", "scripted"], {}, 2, "scenario file"),
    "x_display_in_the_browser": (["--x-display", ":3"], {"OPENAI_API_KEY": API_KEY}, 2, "--x-display is for"),
    "domains_on_a_desktop": (["--env", "ubuntu", "--allow-domain", "example.com", "--json"],
                             {"OPENAI_API_KEY": API_KEY}, 2, "--allow-domain is for the browser"),
    "mac_without_vm_url": (["--env", "mac", "--json"], {"OPENAI_API_KEY": API_KEY}, 4, "--vm-url"),
}


@pytest.fixture(scope="module")
def pre_browser(site: Site, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Finished, Path]]:
    out = tmp_path_factory.mktemp("cli-usage")
    procs = {}
    for name, (flags, extra_env, _, _) in PRE_BROWSER.items():
        env = clean_env(OPENAI_BASE_URL=closed_port_url(), **extra_env)
        procs[name] = start_cua(run_args(site, out / name, *flags), env, out)
    return {name: (finish(proc), out / name) for name, proc in procs.items()}


@pytest.mark.parametrize("name", PRE_BROWSER)
def test_usage_and_environment_errors(pre_browser: dict[str, Any], name: str) -> None:
    finished, out = pre_browser[name]
    flags, _, code, named = PRE_BROWSER[name]
    assert finished.code == code, finished.stderr
    assert named in finished.stderr, finished.stderr
    assert finished.stderr.startswith("cua: ") and finished.stderr.count("\n") == 1, "one readable line"
    if "--json" in flags:
        data = finished.json()
        assert data["status"] == "error" and named in data["error"]
        assert JSON_KEYS <= set(data) and USAGE_KEYS <= set(data["usage"])
    else:
        assert finished.stdout == ""
    assert not out.exists(), "no run folder for a run that never started"
    assert_clean(finished)


# --- exit 130 ---------------------------------------------------------------------------------------


@needs_chromium
@pytest.mark.parametrize("target", ["process", "group"])
def test_interrupt_leaves_a_finished_run_folder_and_no_browser(site: Site, tmp_path: Path, target: str) -> None:
    """Ctrl-C while the model thinks: exit 130, run.json says interrupted, the screenshots sent so
    far are in the run folder, and no browser process outlives cua. SIGINT goes to cua alone, or
    to its whole process group as a terminal's Ctrl-C does (Playwright's driver gets it too)."""

    def click_then_stall(body: dict[str, Any], state: Any) -> Turn:
        server.inject("slow", delay=120)
        return Turn.call(PRESS)

    with StandIn([click_then_stall], api_key=API_KEY) as server:
        env = clean_env(OPENAI_API_KEY=API_KEY, OPENAI_BASE_URL=server.base_url)
        proc = start_cua(run_args(site, tmp_path / "runs", "--json"), env, tmp_path, start_new_session=True)
        try:
            wait_for(lambda: len(server.requests) >= 2 or proc.poll() is not None, "the second model request")
            assert proc.poll() is None, proc.communicate()[1]
            children = descendants(proc.pid)
            browsers = [p for p in children if "chrom" in _cmdline(p)]
            assert browsers, "a browser is running under cua"
            if target == "group":
                os.killpg(proc.pid, signal.SIGINT)
            else:
                proc.send_signal(signal.SIGINT)
            finished = finish(proc, timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert finished.code == 130, finished.stderr
    data = finished.json()
    assert data["status"] == "interrupted"
    meta, _ = run_folder(data["run_dir"])
    assert meta["status"] == "interrupted" and meta["exit_code"] == 130
    # Every screenshot the model was sent is in the run folder.
    sent = []
    for body in server.requests:
        for item in body["input"]:
            url = item.get("output", {}).get("image_url") if item.get("type") == "computer_call_output" else next(
                (p["image_url"] for p in item.get("content") or [] if p.get("type") == "input_image"), None)
            if url:
                sent.append(base64.b64decode(url.split(",", 1)[1]))
    saved = {p.read_bytes() for p in (Path(data["run_dir"]) / "screens").glob("*.png")}
    assert len(sent) == 2 and set(sent) <= saved
    wait_for(lambda: not any(alive(p) for p in children), "cua's child processes to be gone", timeout=10)
    assert_clean(finished)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
