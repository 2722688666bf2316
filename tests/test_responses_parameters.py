"""The Responses API parameters a user already sets elsewhere reach the wire: from flags, from a
scenario's ``model:`` block and from Python; a parameter a model does not take is refused with the
service's own 400 (the stand-in knows it), and one that only OpenAI takes is a usage error with
another vendor's model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_helpers import clean_env, finish, start_cua  # noqa: E402

from cua.runner import run_scenario  # noqa: E402
from cua.testing.standin import StandIn, Turn  # noqa: E402

KEY = "sk-params-test"
PAGE = "data:text/html,<h1>parameters</h1>"
FLAGS = ["--reasoning-effort", "high", "--reasoning-summary", "detailed", "--verbosity", "low",
         "--max-output-tokens", "2048", "--no-parallel-tool-calls", "--metadata", "suite=nightly",
         "--metadata", "build=42", "--service-tier", "flex", "--prompt-id", "pmpt_abc", "--prompt-version", "3",
         "--prompt-var", "customer=Ada"]
ON_THE_WIRE = {
    "reasoning": {"effort": "high", "summary": "detailed"},
    "text": {"verbosity": "low"},
    "max_output_tokens": 2048,
    "parallel_tool_calls": False,
    "metadata": {"suite": "nightly", "build": "42"},
    "service_tier": "flex",
    "prompt": {"id": "pmpt_abc", "version": "3", "variables": {"customer": "Ada"}},
}


def sent(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body.get(k) for k in ON_THE_WIRE}


def test_every_flag_reaches_the_wire_on_every_turn(tmp_path: Path) -> None:
    turns = [Turn.call({"type": "wait"}), Turn.message("Looked.")]
    with StandIn(turns, api_key=KEY) as server:
        env = clean_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=server.base_url)
        done = finish(start_cua(["run", "--task", "look", "--start-url", PAGE, "--model", "gpt-5.4",
                                 "--out", "runs", "--json", *FLAGS], env, tmp_path), 120)
        assert done.code == 0, done.stderr
        assert server.rejections == []
        assert len(server.requests) == 2 and all(sent(b) == ON_THE_WIRE for b in server.requests)
    assert done.json()["status"] == "completed"


def test_a_scenarios_model_block_reaches_the_wire(tmp_path: Path) -> None:
    path = tmp_path / "params.cua.yaml"
    path.write_text(yaml.safe_dump({
        "name": "params", "task": "look", "start_url": PAGE,
        "model": {"name": "gpt-5.4", "reasoning": "detailed", "effort": "high", "verbosity": "low",
                  "max_output_tokens": 2048, "parallel_tool_calls": False,
                  "metadata": {"suite": "nightly", "build": "42"}, "service_tier": "flex",
                  "prompt": {"id": "pmpt_abc", "version": "3", "variables": {"customer": "Ada"}}},
    }), encoding="utf-8")
    import asyncio

    with StandIn([Turn.message("Looked.")], api_key=KEY) as server:
        result = asyncio.run(run_scenario(path, api_key=KEY, base_url=server.base_url,
                                          flags={"out": str(tmp_path / "runs")}))
        assert server.rejections == []
        assert sent(server.requests[0]) == ON_THE_WIRE
    assert result.status == "completed", result.error


def test_a_parameter_the_model_does_not_take_is_the_services_400(tmp_path: Path) -> None:
    with StandIn([Turn.message("never")], api_key=KEY) as server:
        env = clean_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=server.base_url)
        done = finish(start_cua(["run", "--task", "look", "--start-url", PAGE, "--model", "computer-use-preview",
                                 "--verbosity", "low", "--out", "runs"], env, tmp_path), 120)
    assert done.code == 3, done.stderr
    assert "'verbosity' does not support 'low' with this model" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_a_responses_parameter_with_another_vendors_model_is_a_usage_error(tmp_path: Path) -> None:
    env = clean_env(ANTHROPIC_API_KEY="sk-ant-test")
    done = finish(start_cua(["run", "--task", "look", "--model", "claude-sonnet-5-5", "--verbosity", "low",
                             "--metadata", "a=b"], env, tmp_path), 60)
    assert done.code == 2, done.stderr
    assert "metadata, text: Responses API parameters" in done.stderr and done.stderr.count("\n") == 1
