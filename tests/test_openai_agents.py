"""``CuaComputer`` under the real OpenAI Agents SDK runner, against cua's strict Responses stand-in
(the GA ``computer`` tool), on the demo app in real Chromium.

What an Agents SDK user relies on: the agent's actions land on the page; what it did is a cua run
folder with a report, and saved as a scenario it replays with no model; a safety check nobody
allowed stops the agent before the actions of that call run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

agents = pytest.importorskip("agents")  # the optional extra; `make setup` installs it with the dev extras

from openai import AsyncOpenAI  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_helpers import clean_env, finish, start_cua  # noqa: E402

from cua.actions import Size  # noqa: E402
from cua.integrations.openai_agents import CuaComputer  # noqa: E402
from cua.testing.demo_server import serve_demo  # noqa: E402
from cua.testing.standin import StandIn, Turn  # noqa: E402

KEY = "sk-agents-test"
USERNAME, PASSWORD, SIGN_IN = (232, 181), (232, 259), (109, 343)  # the login page (scenarios/login.cua.yaml)
SIGN_IN_TURNS = [
    Turn.call({"type": "click", "x": USERNAME[0], "y": USERNAME[1], "button": "left"},
              {"type": "type", "text": "demo"},
              {"type": "click", "x": PASSWORD[0], "y": PASSWORD[1], "button": "left"},
              {"type": "type", "text": "s3cret"}),
    Turn.call({"type": "click", "x": SIGN_IN[0], "y": SIGN_IN[1], "button": "left"}),
    Turn.message("Signed in: the dashboard says Welcome, demo."),
]


@pytest.fixture(scope="module")
def demo() -> Any:
    with serve_demo() as server:
        yield server


def agent_on(server: StandIn, computer: CuaComputer) -> Any:
    agents.set_tracing_disabled(True)
    model = agents.OpenAIResponsesModel("gpt-5.4", AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0))
    tool = agents.ComputerTool(computer=computer, on_safety_check=computer.safety_check)
    return agents.Agent(name="signer", instructions="Sign in.", model=model, tools=[tool])


async def test_an_agents_sdk_agent_signs_in_through_cua_and_its_run_replays(demo: Any, tmp_path: Path) -> None:
    with StandIn(api_key=KEY, turns=list(SIGN_IN_TURNS)) as server:
        async with CuaComputer(start_url=demo.url("login.html"), out=tmp_path / "runs") as computer:
            result = await agents.Runner.run(agent_on(server, computer), "Sign in as demo with the password s3cret")
            page = computer.session.env.page  # type: ignore[union-attr]
            welcome = await page.inner_text("#welcome")
            url = page.url
            closed = await computer.close(save_as=tmp_path / "signin.cua.yaml")
        assert server.rejections == [], server.rejections
        tools = [r["tools"] for r in server.requests]
    assert result.final_output.startswith("Signed in")
    assert "demo" in welcome and url.endswith("/dashboard.html"), "the page's own state: signed in"
    assert all(t == [{"type": "computer"}] for t in tools), "the GA computer tool"
    assert closed.steps == 5 and Path(closed.report or "").is_file()

    replay = finish(start_cua(["replay", "signin.cua.yaml", "--json"], clean_env(), tmp_path), 120)
    assert replay.code == 0, replay.stderr
    data = replay.json()
    assert data["status"] == "completed" and data["final_url"].endswith("/dashboard.html"), data


async def test_a_safety_check_nobody_allowed_stops_the_agent_before_its_actions(demo: Any, tmp_path: Path) -> None:
    turns = [Turn.call({"type": "click", "x": USERNAME[0], "y": USERNAME[1], "button": "left"},
                       {"type": "type", "text": "never typed"}, safety_checks=["malicious_instructions"])]
    with StandIn(api_key=KEY, turns=turns) as server:
        async with CuaComputer(start_url=demo.url("login.html"), out=tmp_path / "runs") as computer:
            with pytest.raises(agents.exceptions.UserError, match="safety"):
                await agents.Runner.run(agent_on(server, computer), "Sign in")
            typed = await computer.session.env.page.input_value("#username")  # type: ignore[union-attr]
        assert server.rejections == []
    assert typed == "", "the actions under the unacknowledged check never ran"
    assert computer.closed is not None and computer.closed.steps == 0


async def test_every_action_of_the_ga_tool_lands_on_the_contract_page(tmp_path: Path) -> None:
    """The loop tests' contract page (tests/test_loop_e2e.py): every GA action, in batches, through
    the Agents SDK's own dispatch of them to CuaComputer, checked by the page's own account."""
    from helpers_loop import ProbedBrowser, Site
    from test_loop_e2e import BUTTONS, KEYBOARD, POINTER, REST, assert_every_action_landed

    site = Site()
    try:
        page = ProbedBrowser(display=Size(800, 600), start_url=site.url("loop.html"), wait_ms=200)
        turns = [Turn.call(*BUTTONS), Turn.call(*POINTER), Turn.call(*KEYBOARD), Turn.call(*REST),
                 Turn.message("Every action done.")]
        with StandIn(turns, api_key=KEY) as server:
            async with CuaComputer(env=page, display="800x600", out=tmp_path / "runs") as computer:
                result = await agents.Runner.run(agent_on(server, computer), "Work the page")
            assert server.rejections == []
    finally:
        site.close()
    assert result.final_output == "Every action done."
    assert_every_action_landed(page)  # read from the page just before the computer closed
    steps = computer.closed.steps if computer.closed else 0
    assert steps == len(BUTTONS + POINTER + KEYBOARD + REST) - 1, "one step per action (a screenshot is none)"
