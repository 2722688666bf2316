"""Custom (free-form) tools: a Python function taking the model's text, declared as a Responses API
``custom`` tool, called with ``custom_tool_call`` and answered with ``custom_tool_call_output`` —
chained and stateless, on real HTTP against the strict stand-in."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from cua.config import RunSettings
from cua.functions import FunctionRegistry
from cua.runner import run_task
from cua.testing.standin import StandIn, Turn

KEY = "sk-custom-test"
SQL = "SELECT name\nFROM users\nWHERE id = 7;"  # free-form text: no JSON around it


@pytest.mark.parametrize("stateless", [False, True])
def test_a_custom_tool_gets_the_models_text_and_answers_it(stateless: bool, tmp_path: Path) -> None:
    got: list[str] = []

    def run_sql(query: str) -> str:
        got.append(query)
        return "name\nAda"

    functions = FunctionRegistry()
    functions.register_custom(run_sql, description="Run one SQL query; answers the rows as text.")
    turns = [Turn(output=[{"type": "custom_tool_call", "name": "run_sql", "input": SQL}]), Turn.message("Ada.")]
    with StandIn(turns, api_key=KEY) as server:
        settings = RunSettings(task="Who is user 7?", model="gpt-5.4", start_url="data:text/html,<p>db</p>",
                               out=tmp_path / "runs", stateless=stateless)
        result = asyncio.run(run_task(settings, api_key=KEY, base_url=server.base_url, functions=functions))
        assert server.rejections == []
        tools = server.requests[0]["tools"]
        answer = [i for i in server.requests[1]["input"] if i.get("type") == "custom_tool_call_output"]
    assert result.status == "completed" and result.final_text == "Ada."
    assert got == [SQL], "the function got the model's text as it was"
    assert {"type": "custom", "name": "run_sql",
            "description": "Run one SQL query; answers the rows as text."} in tools
    assert len(answer) == 1 and answer[0]["output"] == "name\nAda"


def test_the_standin_refuses_a_custom_tool_call_left_unanswered() -> None:
    turns = [Turn(output=[{"type": "custom_tool_call", "name": "run_sql", "input": SQL}]), Turn.message("x")]
    with StandIn(turns, api_key=KEY) as server, httpx.Client(base_url=server.base_url,
                                                            headers={"Authorization": f"Bearer {KEY}"}) as c:
        body = {"model": "gpt-5.4", "tools": [{"type": "custom", "name": "run_sql"}], "input": "go"}
        first = c.post("/responses", json=body).json()
        again = c.post("/responses", json={**body, "previous_response_id": first["id"], "input": "and?"})
    assert again.status_code == 400
    call_id = first["output"][0]["call_id"]
    assert again.json()["error"]["message"] == f"No tool output found for custom tool call {call_id}."
