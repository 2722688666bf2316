"""Choosing a provider: from the model name or --provider, each with its own key variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import clean_env, finish, start_cua
from cua.config import RunSettings
from cua.errors import ConfigError
from cua.providers import provider_for


@pytest.mark.parametrize("model, provider", [
    ("claude-sonnet-5-5", "anthropic"),
    ("Claude-Opus-4-5", "anthropic"),
    ("anthropic/claude-haiku-4-5", "anthropic"),  # a proxy's vendor-prefixed name
    ("gemini-3.5-flash", "google"),
    ("gemini-2.5-computer-use-preview-10-2025", "google"),
    ("computer-use-preview", "openai"),
    ("gpt-5.4", "openai"),
    ("my-proxy-alias", "openai"),
])
def test_the_model_name_picks_the_wire_format(model: str, provider: str) -> None:
    assert provider_for(model) == provider
    assert RunSettings(model=model).public()["provider"] == provider


def test_provider_overrides_the_model_name() -> None:
    assert provider_for("my-proxy-alias", "anthropic") == "anthropic"
    assert RunSettings(model="claude-sonnet-5-5", provider="google").provider_name == "google"
    with pytest.raises(ConfigError, match="unknown provider 'azure'"):
        provider_for("gpt-5.4", "azure")


@pytest.mark.parametrize("flags, variable", [
    (["--model", "gpt-5.4"], "OPENAI_API_KEY"),
    (["--model", "claude-sonnet-5-5"], "ANTHROPIC_API_KEY"),
    (["--model", "gemini-3.5-flash"], "GEMINI_API_KEY"),
    (["--model", "my-alias", "--provider", "anthropic"], "ANTHROPIC_API_KEY"),
    (["--model", "my-alias", "--provider", "google"], "GEMINI_API_KEY"),
])
def test_a_missing_key_exits_2_naming_the_providers_variable(flags: list[str], variable: str,
                                                            tmp_path: Path) -> None:
    # Another vendor's key does not count.
    others = {"OPENAI_API_KEY": "sk-other", "ANTHROPIC_API_KEY": "sk-ant-other", "GEMINI_API_KEY": "g-other"}
    others.pop(variable)
    done = finish(start_cua(["run", "--task", "t", *flags, "--out", str(tmp_path / "runs")],
                            clean_env(**others), tmp_path))
    assert done.code == 2, done.stderr
    assert variable in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists(), "no run started"


def test_an_anthropic_tool_on_an_openai_model_is_a_usage_error(tmp_path: Path) -> None:
    done = finish(start_cua(["run", "--task", "t", "--model", "gpt-5.4", "--tool", "computer_20251124"],
                            clean_env(OPENAI_API_KEY="sk-test"), tmp_path))
    assert done.code == 2 and "computer_20251124" in done.stderr, done.stderr


@pytest.mark.parametrize("provider, item_type", [("anthropic", "tool_use"), ("google", "functionCall")])
async def test_a_scenario_names_the_provider_its_script_plays_over(provider: str, item_type: str,
                                                                    tmp_path: Path) -> None:
    """``model: {name: scripted, provider: …}`` plays the script over that vendor's wire format."""
    import json

    from cua.bundled import scenarios_folder
    from cua.runner import run_scenario
    from cua.scenario import ModelSpec, load_scenario

    scenario = load_scenario(scenarios_folder() / "login.cua.yaml")
    scenario = scenario.model_copy(update={"model": ModelSpec(name="scripted", provider=provider)})
    result = await run_scenario(scenario, flags={"out": tmp_path})
    assert result.status == "completed", (result.error, result.reason)
    run_dir = Path(result.run_dir or "")
    assert json.loads((run_dir / "run.json").read_text())["settings"]["provider"] == provider
    steps = (run_dir / "steps.jsonl").read_text()
    assert f'"{item_type}"' in steps or f"'{item_type}'" in steps, "the steps hold the vendor's own items"
