"""``cua mcp`` through the official MCP SDK's own client: over stdio and over streamable HTTP.

What an MCP client relies on: the tools are listed with schemas; a scenario runs and reports
progress; a computer session drives the real demo app in Chromium, and saved as a scenario it is
a recording that ``cua replay`` passes with no model; bad arguments are tool errors with a
sentence and the server goes on; over HTTP a bearer token is required when one is set.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

pytest.importorskip("mcp")  # the optional extra; `make setup` installs it with the dev extras

import httpx  # noqa: E402
from mcp import ClientSession, StdioServerParameters, stdio_client  # noqa: E402
from mcp.shared.exceptions import MCPError  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_helpers import CUA, REPO, clean_env, finish, start_cua  # noqa: E402

from cua.testing.demo_server import serve_demo  # noqa: E402

SCENARIOS = REPO / "scenarios"
USERNAME, PASSWORD, SIGN_IN = (232, 181), (232, 259), (109, 343)  # the login page (scenarios/login.cua.yaml)


@pytest.fixture(scope="module")
def demo() -> Any:
    with serve_demo() as server:
        yield server


@asynccontextmanager
async def stdio_session(cwd: Path) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=str(CUA), args=["mcp", "--out", "runs"], cwd=str(cwd), env=clean_env())
    with open(cwd / "server-stderr.txt", "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def text_of(result: Any) -> str:
    return " ".join(c.text for c in result.content if c.type == "text")


def png_of(result: Any) -> bytes:
    images = [c for c in result.content if c.type == "image"]
    assert len(images) == 1 and images[0].mime_type == "image/png", result.content
    png = base64.b64decode(images[0].data)
    assert png.startswith(b"\x89PNG"), "a real PNG"
    return png


async def call(client: ClientSession, tool: str, **arguments: Any) -> Any:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool}: {text_of(result)}"
    return result


def scenario_copy(tmp_path: Path, name: str) -> Path:
    text = (SCENARIOS / f"{name}.cua.yaml").read_text(encoding="utf-8").replace(
        "serve: ../demo_app", f"serve: {REPO / 'demo_app'}")
    path = tmp_path / f"{name}.cua.yaml"
    path.write_text(text, encoding="utf-8")
    shutil.copytree(SCENARIOS / "recordings" / name, tmp_path / "recordings" / name)
    return path


async def test_an_mcp_client_runs_a_scenario_and_drives_a_computer_that_becomes_a_recording(
        demo: Any, tmp_path: Path) -> None:
    login = scenario_copy(tmp_path, "login")
    async with stdio_session(tmp_path) as session:
        listed = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert {"run_task", "run_scenario", "replay", "list_runs", "open_computer", "screenshot", "click",
                "double_click", "drag", "scroll", "type_text", "press_keys", "move", "wait", "navigate",
                "close_computer"} <= set(listed)
        assert set(listed["click"].input_schema["required"]) == {"session", "x", "y"}
        assert listed["run_scenario"].output_schema is not None, "structured results have a schema"

        # A scenario, its script played over the model's wire format, with a progress line per step.
        progress: list[tuple[float, str | None]] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append((done, message))

        ran = await session.call_tool("run_scenario", {"path": str(login), "mode": "scripted"},
                                      progress_callback=on_progress)
        assert not ran.is_error, text_of(ran)
        outcome = ran.structured_content
        assert (outcome["status"], outcome["exit_code"]) == ("completed", 0), outcome
        assert all(check["ok"] for check in outcome["checks"]) and len(outcome["checks"]) == 4
        assert Path(outcome["report"]).is_file()
        assert [round(done) for done, _ in progress] == [1, 2, 3], progress
        assert "click" in (progress[0][1] or "")

        # A computer for the client's own model: the real login page, driven action by action.
        opened = await call(session, "open_computer", start_url=demo.url("login.html"))
        computer = opened.structured_content
        assert computer["display"] == {"width": 1024, "height": 768}
        assert computer["url"].endswith("/login.html")
        png_of(opened)
        sid = computer["session"]

        bad = await session.call_tool("click", {"session": sid, "x": 5000, "y": 10})
        assert bad.is_error and "outside the 1024x768 display" in text_of(bad), text_of(bad)
        unknown = await session.call_tool("type_text", {"session": "nope", "text": "x"})
        assert unknown.is_error and "no open computer 'nope'" in text_of(unknown)
        missing = await session.call_tool("click", {"session": sid, "x": 10})
        assert missing.is_error, "a missing argument is a tool error"

        await call(session, "click", session=sid, x=USERNAME[0], y=USERNAME[1])
        await call(session, "type_text", session=sid, text="demo")
        await call(session, "click", session=sid, x=PASSWORD[0], y=PASSWORD[1])
        await call(session, "type_text", session=sid, text="s3cret")
        signed_in = await call(session, "click", session=sid, x=SIGN_IN[0], y=SIGN_IN[1])
        assert signed_in.structured_content["url"].endswith("/dashboard.html"), signed_in.structured_content
        assert signed_in.structured_content["step"] == 5, "the refused click is no step"
        looked = await call(session, "screenshot", session=sid)
        assert png_of(looked) == png_of(signed_in), "the screen after the last action is the screen now"

        closed = (await call(session, "close_computer", session=sid,
                             save_as=str(tmp_path / "mcp-login.cua.yaml"))).structured_content
        assert closed["steps"] == 5 and Path(closed["report"]).is_file()
        assert Path(closed["scenario"]).is_file() and (Path(closed["recording"]) / "steps.jsonl").is_file()
        gone = await session.call_tool("screenshot", {"session": sid})
        assert gone.is_error, "a closed computer is gone"

        runs = (await call(session, "list_runs")).structured_content["result"]
        mine = next(r for r in runs if r["name"] == Path(closed["run_dir"]).name)
        assert (mine["status"], mine["made_by"], mine["steps"]) == ("completed", "mcp", 5)
        report = await session.read_resource(f"cua://runs/{mine['name']}/report")
        html = report.contents[0].text
        assert "<html" in html and "dashboard.html" in html and "the MCP client" in html
        with pytest.raises(MCPError, match="not the name of a run folder"):
            await session.read_resource("cua://runs/..secret/report")

    # The session, saved as a scenario, replays with no model and passes its own check.
    saved = (tmp_path / "mcp-login.cua.yaml").read_text(encoding="utf-8")
    assert "Recorded from an MCP client's computer session" in saved and "dashboard" in saved
    replay = finish(start_cua(["replay", "mcp-login.cua.yaml", "--json"], clean_env(), tmp_path), 120)
    assert replay.code == 0, replay.stderr
    data = replay.json()
    assert data["status"] == "completed" and data["final_url"].endswith("/dashboard.html"), data
    assert data["checks"] and all(c["ok"] for c in data["checks"]), data["checks"]
    assert "Traceback" not in (tmp_path / "server-stderr.txt").read_text()


def test_http_needs_the_token_and_serves_the_tools(tmp_path: Path) -> None:
    token = "mcp-test-token-9f3a"
    proc = start_cua(["mcp", "--http", "--port", "0", "--out", "runs"], clean_env(CUA_MCP_TOKEN=token), tmp_path)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("cua mcp: serving http://127.0.0.1:"), line
        url = line.split()[3]
        refused = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=10)
        assert refused.status_code == 401
        wrong = httpx.post(url, json={}, headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401

        import anyio
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        async def talk() -> dict[str, Any]:
            async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
                async with streamable_http_client(url, http_client=client) as (read, write):
                    async with ClientSession(read, write) as session:
                        await session.initialize()
                        names = {t.name for t in (await session.list_tools()).tools}
                        opened = await call(session, "open_computer", start_url="data:text/html,<h1>hello</h1>")
                        shot = await call(session, "screenshot", session=opened.structured_content["session"])
                        closed = await call(session, "close_computer", session=opened.structured_content["session"])
                        return {"names": names, "png": png_of(shot), "closed": closed.structured_content}

        got = anyio.run(talk)
        assert "run_task" in got["names"] and got["closed"]["steps"] == 0
        assert (Path(got["closed"]["run_dir"]) / "run.json").is_file()
    finally:
        proc.terminate()
        done = finish(proc, 30)
    assert token not in done.stderr + done.stdout, "the token is never printed"
    assert "Traceback" not in done.stderr, done.stderr


def test_serving_other_machines_without_a_token_is_a_usage_error(tmp_path: Path) -> None:
    done = finish(start_cua(["mcp", "--http", "--host", "0.0.0.0"], clean_env(), tmp_path), 30)
    assert done.code == 2 and "CUA_MCP_TOKEN" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_without_the_mcp_extra_cua_mcp_says_how_to_install_it(tmp_path: Path) -> None:
    # A Python that cannot import mcp: the package shadowed by an empty folder that is no package.
    blocker = tmp_path / "no_mcp"
    (blocker / "mcp").mkdir(parents=True)
    (blocker / "mcp" / "__init__.py").write_text("raise ImportError('no mcp here')\n")
    env = clean_env(PYTHONPATH=str(blocker) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "cua", "mcp"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stderr
    assert "pip install 'cua[mcp]'" in done.stderr and "Traceback" not in done.stderr


def test_a_port_in_use_is_one_message(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = finish(start_cua(["mcp", "--http", "--port", str(port)], clean_env(), tmp_path), 30)
    assert done.code == 4, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and done.stderr.count("\n") == 1, done.stderr
