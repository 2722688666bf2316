"""``ai_check``: a claim a model judges from the final screen and answer, over any provider.

Offline the judge is a scripted turn: the scenario's script ends with the judge's ``verdict``
call (scripted runs, each vendor's wire format), or a stand-in answers it (replays, where it is
the one model call). ``--no-ai-checks`` skips it, visibly.
"""

from __future__ import annotations

import base64
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_helpers import REPO, clean_env, finish, start_cua  # noqa: E402

from cua.testing.standin import StandIn  # noqa: E402

CLAIM = "the dashboard welcomes the user demo"
KEY = "sk-judge-test"


def verdict(passed: bool, reason: str) -> dict[str, Any]:
    return {"function": {"name": "verdict", "arguments": {"passed": passed, "reason": reason}}}


def login_scenario(folder: Path, *, provider: str | None = None, judged: dict[str, Any] | None = None,
                   recording: bool = False) -> Path:
    """The bundled login scenario with an ai_check (and the judge's scripted verdict)."""
    scenario = yaml.safe_load((REPO / "scenarios" / "login.cua.yaml").read_text(encoding="utf-8"))
    scenario["serve"] = str(REPO / "demo_app")
    scenario["checks"] = [{"url_matches": "/dashboard\\.html"}, {"ai_check": CLAIM}]
    if judged is not None:
        scenario["script"].append(judged)
    if provider:
        scenario["model"] = {"name": "scripted", "provider": provider}
    path = folder / "login.cua.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    if recording:
        shutil.copytree(REPO / "scenarios" / "recordings" / "login", folder / "recordings" / "login")
    return path


def run_json(folder: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    done = finish(start_cua([*args, "--json"], env or clean_env(), folder), 120)
    return done.code, done.json(), done.stderr


@pytest.mark.parametrize("provider", ["openai", "anthropic", "google"])
def test_the_judge_passes_a_claim_over_each_providers_wire(provider: str, tmp_path: Path) -> None:
    login_scenario(tmp_path, provider=provider, judged=verdict(True, "The page says Welcome, demo."))
    code, result, stderr = run_json(tmp_path, "run", "login.cua.yaml", "--model", "scripted")
    assert code == 0, stderr
    judged = result["checks"][1]
    assert (judged["name"], judged["ok"], judged["detail"]) == (
        f"ai check {CLAIM!r}", True, "The page says Welcome, demo.")


def test_a_claim_the_judge_rejects_fails_the_run_with_its_reason(tmp_path: Path) -> None:
    login_scenario(tmp_path, judged=verdict(False, "The page shows the sign-in form."))
    code, result, _ = run_json(tmp_path, "run", "login.cua.yaml", "--model", "scripted")
    assert code == 1 and result["status"] == "failed"
    assert result["checks"][1]["ok"] is False
    assert result["reason"].endswith(f"ai check {CLAIM!r}: The page shows the sign-in form.")


def test_no_ai_checks_skips_the_judge_visibly(tmp_path: Path) -> None:
    login_scenario(tmp_path)  # no verdict scripted: a judge asked would exhaust the script
    code, result, stderr = run_json(tmp_path, "run", "login.cua.yaml", "--model", "scripted", "--no-ai-checks")
    assert code == 0, stderr
    skipped = result["checks"][1]
    assert (skipped["ok"], skipped["skipped"], skipped["detail"]) == (True, True, "skipped (--no-ai-checks)")
    report = (tmp_path / result["run_dir"] / "report.html").read_text(encoding="utf-8")
    assert "1 of 1 passed, 1 skipped" in report


def test_in_a_replay_the_judge_is_the_one_model_call(tmp_path: Path) -> None:
    login_scenario(tmp_path, recording=True)
    with StandIn([judge_turn("Welcome, demo is shown.")], api_key=KEY) as server:
        env = clean_env(OPENAI_API_KEY=KEY)
        code, result, stderr = run_json(tmp_path, "replay", "login.cua.yaml", "--model", "gpt-5.4",
                                        "--base-url", server.base_url, env=env)
        assert server.rejections == []
        assert len(server.requests) == 1, "the replay asked the model nothing but the verdict"
        request = server.requests[0]
    assert code == 0, stderr
    assert result["checks"][1]["ok"] is True and result["checks"][1]["detail"] == "Welcome, demo is shown."
    content = request["input"][0]["content"]
    assert CLAIM in content[0]["text"] and content[1]["image_url"].startswith("data:image/png;base64,")
    assert base64.b64decode(content[1]["image_url"].split(",", 1)[1]).startswith(b"\x89PNG")
    assert [t["name"] for t in request["tools"] if t["type"] == "function"] == ["verdict"]


def test_in_a_replay_with_no_key_the_check_says_how_to_go_on(tmp_path: Path) -> None:
    login_scenario(tmp_path, recording=True)
    code, result, _ = run_json(tmp_path, "replay", "login.cua.yaml")
    assert code == 1
    detail = result["checks"][1]["detail"]
    assert "ai_check needs a model to judge it" in detail and "OPENAI_API_KEY" in detail and "--no-ai-checks" in detail
    code, result, _ = run_json(tmp_path, "replay", "login.cua.yaml", "--no-ai-checks")
    assert code == 0 and result["checks"][1]["skipped"] is True


def judge_turn(reason: str) -> Any:
    """The stand-in's turn answering with the verdict function call."""
    return [{"type": "function_call", "name": "verdict",
             "arguments": '{"passed": true, "reason": "%s"}' % reason}]
