"""Secure by default, from the outside: safety checks nobody allowed are never acknowledged, a model
asked for is never replaced by a script, secrets and URL credentials reach no output and no child
process, and cancelling or timing out a run is honest about what happened.

Real Chromium, a real stand-in Responses server on 127.0.0.1, the installed ``cua`` in a subprocess
(with no terminal, as in CI, or on a real pseudo-terminal where a person's y/n is the point).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_helpers import CUA, Finished, clean_env, finish, start_cua  # noqa: E402
from helpers_loop import API_KEY, ProbedBrowser, Site, alive, descendants, grep_folder, run_folder  # noqa: E402

from cua.config import RunSettings  # noqa: E402
from cua.environments.browser import BrowserEnvironment  # noqa: E402
from cua.environments.browser_pool import current_pool, own_browsers  # noqa: E402
from cua.functions import FunctionRegistry  # noqa: E402
from cua.lifecycle import RunCancelled  # noqa: E402
from cua.runner import run_task  # noqa: E402
from cua.testing.standin import StandIn, Turn  # noqa: E402

PRESS = {"type": "click", "x": 100, "y": 45}
ENTRY = {"type": "click", "x": 550, "y": 120}
GA = "gpt-5.4"


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    server = Site()
    yield server
    server.close()


def two_calls(second_checks: list[str]) -> Turn:
    """One response, two computer calls; only the second carries safety checks."""
    return Turn(output=[
        {"type": "computer_call", "actions": [PRESS], "pending_safety_checks": []},
        {"type": "computer_call", "actions": [ENTRY, {"type": "type", "text": "typed"}],
         "pending_safety_checks": second_checks},
    ])


def settings(site: Site, tmp_path: Path, **extra: Any) -> RunSettings:
    return RunSettings(task="work the loop page", display="800x600", start_url=site.url(),
                       out=tmp_path / "runs", wait_ms=100, model=GA, **extra)


async def play(site: Site, tmp_path: Path, turns: list[Any], *, env: BrowserEnvironment | None = None,
               **extra: Any) -> tuple[Any, ProbedBrowser, StandIn]:
    """An in-process run with no terminal on stdin (as under CI)."""
    run_settings = settings(site, tmp_path, **extra)
    env = env or ProbedBrowser(display=run_settings.size, start_url=run_settings.start_url, wait_ms=100)
    with StandIn(turns, api_key=API_KEY) as server, mock.patch.object(sys, "stdin", io.StringIO()):
        result = await run_task(run_settings, api_key=API_KEY, base_url=server.base_url, env=env)
    return result, env, server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_clean(finished: Finished, *secrets: str) -> None:
    assert "Traceback" not in finished.stderr, finished.stderr
    for secret in (API_KEY, *secrets):
        assert secret not in finished.stdout and secret not in finished.stderr, secret


# --- 1. safety: decided by the user, secure by default -----------------------------------------------


async def test_an_unattended_run_denies_a_check_nobody_allowed_before_any_action_of_the_response(
        site: Site, tmp_path: Path) -> None:
    """Default policy, no terminal: the check of the SECOND call stops the run before the FIRST
    call's click runs, and the message says how to allow it."""
    result, env, server = await play(site, tmp_path, [two_calls(["malicious_instructions"])])
    assert (result.status, result.exit_code) == ("safety_denied", 5)
    assert "--safety auto" in result.error and "--safety-allow malicious_instructions" in result.error
    assert env.state["clicks"] == [] and env.state["entry"] == "", "no action of that response ran"
    assert len(server.requests) == 1, "nothing was acknowledged to the service"
    _, steps = run_folder(result.run_dir)
    assert [c["decision"] for c in steps[-1]["safety_checks"]] == ["denied"]


async def test_safety_allow_acknowledges_only_the_codes_it_names(site: Site, tmp_path: Path) -> None:
    allowed, env, server = await play(site, tmp_path / "a", [two_calls(["irrelevant_domain"]), Turn.message("done")],
                                      safety_allow=["irrelevant_domain"])
    assert allowed.status == "completed", allowed.error
    assert len(env.state["clicks"]) == 1 and env.state["entry"] == "typed"
    answers = [i for i in server.requests[1]["input"] if i["type"] == "computer_call_output"]
    assert [len(a.get("acknowledged_safety_checks") or []) for a in answers] == [0, 1]

    mixed, env, _ = await play(site, tmp_path / "b", [two_calls(["irrelevant_domain", "sensitive_domain"])],
                               safety_allow=["irrelevant_domain"])
    assert mixed.status == "safety_denied" and "sensitive_domain" in mixed.error
    assert "irrelevant_domain (" not in mixed.error, "only the check nobody allowed is named"
    assert env.state["clicks"] == []


SCENARIO = """\
name: guarded
task: Press the button.
start_url: "{url}"
display: 800x600
model: gpt-5.4
{safety}
script:
  - actions: [{{type: click, x: 100, y: 45}}]
    safety_checks: [{{id: cu_sc_1, code: irrelevant_domain, message: off the task's domain}}]
  - message: Pressed.
"""


@pytest.mark.parametrize("safety, code", [("", 5), ("safety: {allow: [irrelevant_domain]}", 0), ("safety: auto", 0)])
def test_a_scenario_says_which_checks_it_accepts(site: Site, tmp_path: Path, safety: str, code: int) -> None:
    path = tmp_path / "guarded.cua.yaml"
    path.write_text(SCENARIO.format(url=site.url(), safety=safety), encoding="utf-8")
    finished = finish(start_cua(["run", str(path), "--model", "scripted", "--json", "--out", str(tmp_path / "runs")],
                                clean_env(), tmp_path))
    assert finished.code == code, finished.stderr
    if code == 5:
        assert "safety: {allow: [CODE]}" in finished.json()["error"]
    assert_clean(finished)


class Terminal:
    """``cua`` with a real pseudo-terminal on stdin and stderr, as a person at a shell has."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([str(CUA), *args], env=env, cwd=cwd, stdin=slave, stderr=slave,
                                     stdout=subprocess.PIPE, text=True)
        os.close(slave)
        self.screen = ""

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            assert time.monotonic() < deadline and self.proc.poll() is None, self.screen[-2000:]
            if select.select([self.master], [], [], 0.1)[0]:
                try:
                    self.screen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:
                    break

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self, timeout: float = 30) -> tuple[int, dict[str, Any], float]:
        t0 = time.monotonic()
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            os.close(self.master)
        return self.proc.returncode, json.loads(out), time.monotonic() - t0


@pytest.mark.parametrize("answer", ["y", "ctrl-c", "timeout"])
def test_the_prompt_on_a_terminal_asks_and_can_be_interrupted(site: Site, tmp_path: Path, answer: str) -> None:
    turns = [Turn.call(PRESS, safety_checks=["malicious_instructions"]), Turn.message("pressed")]
    with StandIn(turns, api_key=API_KEY) as server:
        args = ["run", "--task", "press", "--start-url", site.url(), "--display", "800x600", "--model", GA,
                "--base-url", server.base_url, "--json", "--out", str(tmp_path / "runs")]
        if answer == "timeout":
            args += ["--timeout", "5"]
        term = Terminal(args, clean_env(OPENAI_API_KEY=API_KEY), tmp_path)
        term.wait_for("Acknowledge and continue? [y/N]")
        assert "malicious_instructions" in term.screen
        if answer == "y":
            term.type("y\n")
        elif answer == "ctrl-c":
            term.proc.send_signal(signal.SIGINT)
        code, data, seconds = term.finish()
    if answer == "y":
        assert (code, data["status"]) == (0, "completed")
        acknowledged = [i for i in server.requests[1]["input"] if i["type"] == "computer_call_output"]
        assert len(acknowledged[0]["acknowledged_safety_checks"]) == 1
    elif answer == "ctrl-c":
        assert (code, data["status"]) == (130, "interrupted") and seconds < 10
        assert len(server.requests) == 1
    else:
        assert (code, data["status"]) == (1, "timeout") and seconds < 12
        assert len(server.requests) == 1


# --- 2. no silent substitution ------------------------------------------------------------------------


def test_a_scenario_naming_a_model_without_its_key_fails_instead_of_playing_its_script(
        site: Site, tmp_path: Path) -> None:
    path = tmp_path / "guarded.cua.yaml"
    path.write_text(SCENARIO.format(url=site.url(), safety="safety: auto"), encoding="utf-8")
    finished = finish(start_cua(["run", str(path), "--json", "--out", str(tmp_path / "runs")], clean_env(), tmp_path))
    assert finished.code == 2, finished.stderr
    assert "OPENAI_API_KEY" in finished.json()["error"] and "OPENAI_API_KEY" in finished.stderr
    assert not (tmp_path / "runs").exists(), "nothing ran"


# --- 3. one redaction point ---------------------------------------------------------------------------


SECRET_SCENARIO = """\
name: secretive
task: Type the code {{{{code}}}} into the entry.
start_url: "{url}"
display: 800x600
variables:
  code: {{secret: true, env: CUA_TEST_TRUST_CODE}}
checks:
  - answer_contains: "{{{{code}}}}"
  - name: "the entry holds {{{{code}}}}"
    selector: {{selector: "#status", has_text: "{{{{code}}}}-not-there"}}
script:
  - actions:
      - {{type: click, x: 550, y: 120}}
      - {{type: type, text: "{{{{code}}}}"}}
  - message: I typed {{{{code}}}}.
"""


def test_a_secret_in_checks_reaches_no_output_no_report_and_no_junit(site: Site, tmp_path: Path) -> None:
    secret = "zq-7731-secret"
    path = tmp_path / "secretive.cua.yaml"
    path.write_text(SECRET_SCENARIO.format(url=site.url()), encoding="utf-8")
    out = tmp_path / "runs"
    env = clean_env(CUA_TEST_TRUST_CODE=secret)
    finished = finish(start_cua(["run", str(path), "--model", "scripted", "--json", "--out", str(out)], env, tmp_path))
    assert finished.code == 1, finished.stderr  # the second check fails, and says what it saw
    data = finished.json()
    assert [c["ok"] for c in data["checks"]] == [True, False]
    assert "{{code}}" in data["checks"][1]["name"] and "{{code}}" in data["final_text"]
    assert_clean(finished, secret)
    report = finish(start_cua(["report", data["run_dir"], "--gif", "--junit", str(out / "junit.xml"),
                               "--index", str(out / "index.html")], env, tmp_path))
    assert report.code == 0, report.stderr
    assert_clean(report, secret)
    assert (out / "junit.xml").exists() and (Path(data["run_dir"]) / "summary.gif").exists()
    assert grep_folder(out, secret) == []


def test_credentials_in_urls_are_masked_in_messages_and_run_folders(site: Site, tmp_path: Path) -> None:
    port = closed_port()
    cases = {
        "cdp": (["--cdp-url", f"http://ops:cdp-pw-4471@127.0.0.1:{port}/"], "cdp-pw-4471", 4),
        "vm": (["--env", "linux", "--vm-url", f"http://127.0.0.1:{port}/?token=vm-tok-9182"], "vm-tok-9182", 4),
        "base": (["--base-url", f"http://u:base-pw-5531@127.0.0.1:{port}/v1"], "base-pw-5531", 3),
    }
    procs = {name: start_cua(["run", "--task", "x", "--start-url", site.url(), "--json", "--model", GA,
                              "--out", str(tmp_path / name), *flags], clean_env(OPENAI_API_KEY=API_KEY), tmp_path)
             for name, (flags, _, _) in cases.items()}
    for name, proc in procs.items():
        finished = finish(proc)
        _, secret, code = cases[name]
        assert finished.code == code, (name, finished.stderr)
        assert_clean(finished, secret)
        assert grep_folder(tmp_path, secret) == [], name


async def test_the_browser_cua_starts_gets_no_api_key_and_no_secret(
        site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("CUA_TEST_TRUST_CODE", "zq-env-secret-0042")
    seen: dict[str, bool] = {}

    def inspect_children() -> str:
        for pid in descendants(os.getpid()):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if b"chrom" in cmdline.split(b"\0")[0]:
                seen[str(pid)] = API_KEY.encode() in environ or b"zq-env-secret-0042" in environ
        return "looked"

    functions = FunctionRegistry()
    functions.register(inspect_children, name="inspect_children", description="look")
    run_settings = settings(site, tmp_path)
    with StandIn([Turn.function_call("inspect_children"), Turn.message("ok")], api_key=API_KEY) as server:
        result = await run_task(run_settings, api_key=API_KEY, base_url=server.base_url, functions=functions,
                                secrets={"code": "zq-env-secret-0042"})
    assert result.status == "completed", result.error
    assert seen and not any(seen.values()), seen


# --- 6. cancellation and timeouts ---------------------------------------------------------------------


def stalled_second_turn(server_box: list[StandIn]) -> list[Any]:
    def stall(body: dict[str, Any], state: Any) -> Turn:
        server_box[0].inject("slow", delay=60)
        return Turn.call(PRESS)
    return [stall, Turn.message("never")]


def chromium_below_us() -> list[int]:
    def is_chromium(pid: int) -> bool:
        try:
            return b"chrom" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:  # gone meanwhile
            return False
    return [p for p in descendants(os.getpid()) if alive(p) and is_chromium(p)]


@pytest.mark.parametrize("how", ["cancel", "wait_for"])
async def test_cancelling_a_run_raises_and_keeps_an_interrupted_run_folder(
        site: Site, tmp_path: Path, how: str) -> None:
    """Cancelled in a browser of its own, the run stops that browser; cancelled in the worker's
    shared browser, it closes its context and leaves the browser to the next run."""
    pool = current_pool()
    assert pool is not None, "the suite runs async tests with a shared browser (conftest.py)"
    before = set(chromium_below_us())  # the shared one, if it is running already
    box: list[StandIn] = []
    server = StandIn(stalled_second_turn(box), api_key=API_KEY)
    box.append(server)
    with server, own_browsers() if how == "wait_for" else contextlib.nullcontext():
        run = run_task(settings(site, tmp_path, safety="auto"), api_key=API_KEY, base_url=server.base_url)
        if how == "cancel":
            task = asyncio.ensure_future(run)
            while len(server.requests) < 2:
                await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError) as caught:
                await task
            assert isinstance(caught.value, RunCancelled)
        else:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(run, 8)
    (run_dir,) = (tmp_path / "runs").iterdir()
    meta, steps = run_folder(run_dir)
    assert (meta["status"], meta["exit_code"]) == ("interrupted", 130)
    if how == "cancel":  # it came while the model thought about step 2: step 1 is recorded
        assert len(steps) == 1
    else:  # wait_for's deadline may come before the second request on a slow machine
        assert len(steps) <= 1
    assert (run_dir / "report.html").exists()
    if how == "wait_for":
        assert set(chromium_below_us()) - before == set(), "the run's own browser was stopped"
    else:
        assert pool.browsers and [b.contexts for b in pool.browsers] == [[]] * len(pool.browsers), \
            "the run's context was closed"


class TimingOutBrowser(ProbedBrowser):
    """A browser whose ``wait`` times out on its own, as a stuck inner operation would."""

    async def wait(self, ms: int | None = None) -> None:
        raise TimeoutError("the inner operation gave up")


@pytest.mark.parametrize("timeout", [None, 60])
async def test_a_timeout_inside_the_run_is_an_error_not_the_runs_timeout(
        site: Site, tmp_path: Path, timeout: float | None) -> None:
    env = TimingOutBrowser(display=settings(site, tmp_path).size, start_url=site.url(), wait_ms=100)
    result, _, _ = await play(site, tmp_path, [Turn.call({"type": "wait"})], env=env, timeout=timeout)
    assert (result.status, result.exit_code) == ("error", 4), result.reason
    assert "timed out" in result.error and "gave up" in result.error
    meta, _ = run_folder(result.run_dir)
    assert meta["status"] == "error"


class FailingMidDragServer:
    """A loopback computer-server (same /status and /cmd protocol as the real one) that fails the
    first cursor move of a drag and records every command, to see what is released after."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.commands: list[tuple[str, dict[str, Any]]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, body: dict[str, Any], stream: bool = True) -> None:
                data = (f"data: {json.dumps(body)}\n\n" if stream else json.dumps(body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream" if stream else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer({"status": "ok", "os_type": "linux"}, stream=False)

            def do_POST(self) -> None:
                cmd = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.commands.append((cmd["command"], cmd.get("params") or {}))
                if cmd["command"] == "get_screen_size":
                    self._answer({"success": True, "size": {"width": 800, "height": 600}})
                elif cmd["command"] == "move_cursor" and any(c == "mouse_down" for c, _ in outer.commands):
                    self._answer({"success": False, "error": "the pointer device went away"})
                else:
                    self._answer({"success": True})

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_a_drag_that_fails_on_a_vm_releases_its_button_and_keys() -> None:
    from cua.actions import Size
    from cua.environments.remote import RemoteEnvironment
    from cua.errors import EnvironmentError_

    server = FailingMidDragServer()
    try:
        async with RemoteEnvironment(vm_url=server.url, kind="linux", display=Size(800, 600)) as vm:
            with pytest.raises(EnvironmentError_, match="pointer device went away"):
                await vm.drag([(10, 10), (200, 200)], keys=["shift"])
    finally:
        server.close()
    names = [c for c, _ in server.commands]
    down = names.index("mouse_down")
    assert names[down:] == ["mouse_down", "move_cursor", "mouse_up", "key_up"], names
    assert server.commands[-2][1].get("button") == "left" and server.commands[-1][1] == {"key": "shift"}


@pytest.mark.parametrize("name", ["page.read", "", "x" * 65, "naïve"])
def test_a_function_name_the_service_would_refuse_is_refused_when_registered(name: str) -> None:
    from cua.errors import ConfigError

    with pytest.raises(ConfigError, match="1-64 letters"):
        FunctionRegistry().register(lambda: None, name=name)
    FunctionRegistry().register(lambda: None, name="read_page-2")
