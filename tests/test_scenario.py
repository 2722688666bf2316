"""Scenario files as a user meets them: one clear message per mistake, a schema for editors,
variables from --var, the environment or a default, and secrets that never reach a file or log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from cua.errors import ConfigError
from cua.scenario import load_scenario, prepared

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "scenarios_fixtures"
CUA = [str(REPO / ".venv" / "bin" / "cua")] if (REPO / ".venv" / "bin" / "cua").exists() else [
    sys.executable, "-m", "cua"]

VALID = "name: demo\ntask: Say hello.\n"


def cua(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("OPENAI_", "AZURE_OPENAI_", "CUA_TEST_"))}
    return subprocess.run([*CUA, *args], capture_output=True, text=True, timeout=timeout,
                          env={**base, **(env or {})}, cwd=REPO)


# --- one message per mistake --------------------------------------------------------------------

# (file text, words the one message must contain besides the file's path)
BAD_FILES = {
    "unknown field": (VALID + "colour: blue\n", ["colour", "not permitted"]),
    "wrong type": (VALID + "limits: {max_steps: many}\n", ["limits.max_steps", "integer"]),
    "check with two kinds": (VALID + "checks:\n  - {url_equals: 'http://x/', text_visible: Hi}\n",
                             ["checks.0", "exactly one", "url_equals", "text_visible"]),
    "script turn with none": (VALID + "script:\n  - reasoning: thinking only\n",
                              ["script.0", "exactly one of actions, function, message"]),
    "bad YAML": (VALID + "checks:\n  - text_visible: [unclosed\n", ["line 5", "not valid YAML"]),
    "not a mapping": ("- name: demo\n", ["mapping"]),
    "missing task": ("name: demo\n", ["task", "required"]),
    "undeclared placeholder": (VALID.replace("Say hello.", "Say hello to {{who}}."), ["{{who}}", "not declared"]),
    "variable with no value": (VALID + "variables:\n  token: {env: CUA_TEST_UNSET_TOKEN}\n",
                               ["'token'", "no value", "--var token=", "$CUA_TEST_UNSET_TOKEN"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_scenario_is_one_message_naming_file_and_field(case: str, tmp_path: Path) -> None:
    text, words = BAD_FILES[case]
    path = tmp_path / "bad.cua.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        with prepared(load_scenario(path)):
            pass
    message = str(caught.value)
    assert "\n" not in message
    assert str(path.resolve() if case in {"undeclared placeholder", "variable with no value"} else path) in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("case", ["unknown field", "bad YAML", "undeclared placeholder", "variable with no value"])
def test_cua_run_of_a_bad_scenario_exits_2_with_one_line_and_no_traceback(case: str, tmp_path: Path) -> None:
    text, words = BAD_FILES[case]
    path = tmp_path / "bad.cua.yaml"
    path.write_text(text, encoding="utf-8")
    proc = cua("run", str(path), "--out", str(tmp_path / "runs"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("cua: ") and "bad.cua.yaml" in lines[0], proc.stderr
    assert all(word in lines[0] for word in words), lines[0]
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_a_missing_scenario_file_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.cua.yaml"
    proc = cua("run", str(missing))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"cua: {missing}: no such scenario file"


def test_an_unknown_var_is_refused_naming_the_scenarios_variables(tmp_path: Path) -> None:
    proc = cua("run", str(REPO / "scenarios" / "login.cua.yaml"), "--var", "pasword=x", "--out", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "pasword" in proc.stderr and "username, password, query" in proc.stderr


# --- the schema ---------------------------------------------------------------------------------


def _json_types(schema: dict[str, Any], prop: dict[str, Any]) -> set[str]:
    """The JSON types a (sub)schema admits, following $ref and anyOf."""
    if "$ref" in prop:
        name = prop["$ref"].removeprefix("#/$defs/")
        assert name in schema["$defs"], f"dangling $ref {prop['$ref']}"
        return _json_types(schema, schema["$defs"][name])
    if "anyOf" in prop:
        return set().union(*(_json_types(schema, p) for p in prop["anyOf"]))
    if "type" in prop:
        return {prop["type"]} if isinstance(prop["type"], str) else set(prop["type"])
    return {"object"} if "properties" in prop else set()


def _problems(schema: dict[str, Any], data: dict[str, Any]) -> list[str]:
    return sorted(error.message for error in jsonschema.Draft202012Validator(schema).iter_errors(data))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    proc = cua("schema")
    assert proc.returncode == 0 and proc.stderr == ""
    return json.loads(proc.stdout)


def test_cua_schema_prints_a_json_schema_of_scenario_files(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "task"}
    assert "path" not in schema["properties"]  # set by the loader, not part of a file
    for key in ("variables", "checks", "script", "serve", "recording", "limits"):
        assert schema["properties"][key].get("description") or key in schema["properties"]
    assert all(_json_types(schema, prop) for prop in schema["properties"].values())
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("path", sorted((REPO / "scenarios").glob("*.cua.yaml")), ids=lambda p: p.name)
def test_the_schema_admits_every_bundled_scenario(schema: dict[str, Any], path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert _problems(schema, data) == []


def test_the_schema_rejects_what_the_loader_rejects(schema: dict[str, Any], tmp_path: Path) -> None:
    data = yaml.safe_load(VALID)
    assert _problems(schema, data) == []
    for bad, says in (({**data, "colour": "blue"}, "'colour' was unexpected"),
                      ({**data, "checks": "none"}, "'none' is not of type 'array'"),
                      ({"name": "x"}, "'task' is a required property")):
        assert any(says in problem for problem in _problems(schema, bad)), (bad, _problems(schema, bad))
        path = tmp_path / "bad.cua.yaml"
        path.write_text(yaml.safe_dump(bad), encoding="utf-8")
        with pytest.raises(ConfigError):
            load_scenario(path)


# --- variables and secrets ----------------------------------------------------------------------


def test_variables_come_from_var_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = load_scenario(FIXTURES / "login_secret.yaml")
    monkeypatch.delenv("CUA_TEST_LOGIN_PASSWORD", raising=False)
    assert scenario.resolve_variables()[0] == {"password": "not-the-password"}
    monkeypatch.setenv("CUA_TEST_LOGIN_PASSWORD", "from-env")
    assert scenario.resolve_variables()[0] == {"password": "from-env"}
    values, secrets = scenario.resolve_variables({"password": "from-var"})
    assert values == secrets == {"password": "from-var"}


def _files_holding(folder: Path, secret: bytes) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and secret in p.read_bytes()]


@pytest.mark.parametrize("source", ["environment", "var"])
def test_a_secret_signs_in_but_is_in_no_file_and_no_output(source: str, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    args = ["run", str(FIXTURES / "login_secret.yaml"), "--out", str(out), "--json", "--model", "scripted"]
    if source == "var":  # --var wins over a wrong value in the environment
        proc = cua(*args, "--var", "password=s3cret", env={"CUA_TEST_LOGIN_PASSWORD": "wrong-from-env"})
    else:  # the environment wins over the (wrong) default
        proc = cua(*args, env={"CUA_TEST_LOGIN_PASSWORD": "s3cret"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "completed" and result["final_url"].endswith("/dashboard.html")
    assert [c["ok"] for c in result["checks"]] == [True]  # "Welcome, demo": the page got the password
    run_dir = Path(result["run_dir"])
    assert {p.name for p in run_dir.iterdir()} >= {"run.json", "steps.jsonl", "screens"}
    assert "s3cret" not in proc.stdout and "s3cret" not in proc.stderr
    assert _files_holding(out, b"s3cret") == []
    assert "{{password}}" in (run_dir / "steps.jsonl").read_text(encoding="utf-8")
    assert "{{password}}" in json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["task"]


async def test_negative_checks_pass_on_what_is_gone_and_fail_on_what_is_there(tmp_path: Path) -> None:
    """text_absent and not: judged on the page the run ended on (the demo app's dashboard)."""
    import yaml

    from cua.runner import run_scenario

    repo = Path(__file__).resolve().parent.parent
    scenario = yaml.safe_load((repo / "scenarios" / "login.cua.yaml").read_text(encoding="utf-8"))
    scenario["serve"] = str(repo / "demo_app")
    scenario["checks"] = [
        {"text_absent": "Sign in"},                          # the form is gone: passes
        {"not": {"url_matches": "login\\.html"}},            # passes
        {"text_absent": "Welcome, demo"},                    # it is there: fails
        {"not": {"selector": {"selector": "#welcome", "has_text": "demo"}}},  # fails
        {"name": "no error shown", "not": {"text_visible": "Wrong password"}},  # passes
    ]
    path = tmp_path / "negative.cua.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    result = await run_scenario(path, flags={"model": "scripted", "out": str(tmp_path / "runs")})
    assert [c["ok"] for c in result.checks] == [True, True, False, False, True], result.checks
    assert (result.status, result.exit_code) == ("failed", 1)
    names = [c["name"] for c in result.checks]
    assert names[1] == "not (url matches 'login\\\\.html')" and names[4] == "no error shown"
    assert result.checks[2]["detail"] == "text 'Welcome, demo' is visible"
    assert result.checks[3]["detail"].startswith("passed: #welcome is visible")
    report = (Path(result.run_dir) / "report.html").read_text(encoding="utf-8")
    assert "text 'Welcome, demo' is visible" in report.replace("&#x27;", "'")
