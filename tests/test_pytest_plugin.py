"""The pytest plugin from a user's project: scenario files collected as tests, run by replay,
scripted, live (which with no API key fails, never playing the script instead) or auto (which says
when it played the script), also under pytest-xdist; failures that point at the step, the reason
and the report; and the ``cua_run`` fixture in a Python test."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

# In-process pytester runs forget the modules they imported; numpy (behind replay healing) and
# PyYAML's C loader cannot be imported twice in one process, so everything a run imports (each
# provider and its stand-in included) is imported here once.
import cua.providers.anthropic  # noqa: F401
import cua.providers.google  # noqa: F401
import cua.providers.openai  # noqa: F401
import cua.replay.replayer  # noqa: F401
import cua.runner  # noqa: F401
import cua.scenario  # noqa: F401
import cua.testing.anthropic  # noqa: F401
import cua.testing.google  # noqa: F401
import cua.testing.standin  # noqa: F401

from cli_helpers import clean_env, finish, start_cua  # noqa: E402
from test_browser_env import browser_server  # noqa: E402,F401 - a fixture: a Playwright browser server

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"
DEMO_APP = REPO / "demo_app"


@pytest.fixture(autouse=True)
def no_model_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_BASE_URL",
                 "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def project_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def add_scenario(pytester: pytest.Pytester, name: str, *, recording: bool = True,
                 edit: tuple[str, str] | None = None) -> Path:
    """Copy a bundled scenario (and its recording) into the project's scenarios/ folder; its
    ``serve:`` path is relative to the file, so it is pointed at the demo app here."""
    folder = pytester.path / "scenarios"
    folder.mkdir(exist_ok=True)
    text = (SCENARIOS / f"{name}.cua.yaml").read_text(encoding="utf-8")
    text = text.replace("serve: ../demo_app", f"serve: {DEMO_APP}")
    if edit:
        assert edit[0] in text
        text = text.replace(*edit)
    path = folder / f"{name}.cua.yaml"
    path.write_text(text, encoding="utf-8")
    if recording:
        shutil.copytree(SCENARIOS / "recordings" / name, folder / "recordings" / name)
    return path


def run_kinds(pytester: pytest.Pytester) -> dict[str, str]:
    """Scenario name → kind ("run" or "replay") of every run folder the session wrote."""
    kinds = {}
    for meta_path in (pytester.path / "runs").glob("*/run.json"):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        kinds[meta["scenario"]["name"]] = meta["kind"]
    return kinds


@pytest.mark.parametrize("mode, kind", [("replay", "replay"), ("scripted", "run")])
def test_a_scenario_file_is_a_test_in_each_mode(pytester: pytest.Pytester, mode: str, kind: str) -> None:
    add_scenario(pytester, "login")
    result = pytester.runpytest(f"--cua-mode={mode}", "--cua-out=runs", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*scenarios/login.cua.yaml::login PASSED*"])
    assert run_kinds(pytester) == {"login": kind}


def test_auto_mode_replays_what_has_a_recording_and_says_when_it_played_a_script(pytester: pytest.Pytester) -> None:
    add_scenario(pytester, "login")
    add_scenario(pytester, "menu", recording=False)
    result = pytester.runpytest("--cua-out=runs", "-v")
    result.assert_outcomes(passed=2)
    assert run_kinds(pytester) == {"login": "replay", "context-menu": "run"}
    # No key, no recording: the script ran, and both the outcome line and the report say so.
    result.stdout.fnmatch_lines(["*menu.cua.yaml::context-menu PASSED (scripted: no OPENAI_API_KEY)*"])
    result.stdout.fnmatch_lines(["*login.cua.yaml::login PASSED*"])
    assert "login PASSED (scripted" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*cua: scenarios that played their script instead of a model*",
                                 "*menu.cua.yaml::context-menu: scripted: no OPENAI_API_KEY"])
    (report,) = [p.parent / "report.html" for p in (pytester.path / "runs").glob("*/run.json")
                 if json.loads(p.read_text())["kind"] == "run"]
    assert "No model ran." in report.read_text(encoding="utf-8")


def test_auto_mode_asks_for_the_key_of_the_scenarios_own_provider(pytester: pytest.Pytester,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A Claude scenario with no ANTHROPIC_API_KEY plays its script (over Claude's wire format)
    and says which key was missing, although OpenAI's key is there."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-claude")
    add_scenario(pytester, "menu", recording=False,
                 edit=("name: context-menu\n", "name: context-menu\nmodel: claude-sonnet-5-5\n"))
    result = pytester.runpytest("--cua-out=runs", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*menu.cua.yaml::context-menu PASSED (scripted: no ANTHROPIC_API_KEY)*"])
    (meta,) = [json.loads(p.read_text()) for p in (pytester.path / "runs").glob("*/run.json")]
    assert meta["settings"]["provider"] == "anthropic"


def test_replay_mode_without_a_recording_fails_saying_how_to_make_one(pytester: pytest.Pytester) -> None:
    add_scenario(pytester, "menu", recording=False)
    result = pytester.runpytest("--cua-mode=replay", "--cua-out=runs")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no recording at*record it with 'cua run *menu.cua.yaml --record'*"])
    assert "Traceback" not in result.stdout.str()


def test_a_failing_check_shows_the_step_the_reason_and_the_report(pytester: pytest.Pytester) -> None:
    add_scenario(pytester, "login", recording=False, edit=('text_visible: "Welcome, demo"', 'text_visible: "Welcome, Ada"'))
    (pytester.path / "scenarios" / "broken.cua.yaml").write_text("name: broken\ntask: x\nlimits: {max_steps: 0}\n")
    result = pytester.runpytest("--cua-mode=scripted", "--cua-out=runs")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*scenario 'login' (scripted): failed",
        "*after step 3",
        "*reason: check failed: text visible 'Welcome, Ada': text 'Welcome, Ada' is not visible",
        "*✗ text visible 'Welcome, Ada': text 'Welcome, Ada' is not visible",
        "*report: *report.html",
    ])
    report = pytester.path / re.search(r"report: (\S+report\.html)", out).group(1)  # relative to the cwd
    assert report.is_file() and report.parent.parent.resolve() == (pytester.path / "runs").resolve()
    assert "✗ url matches" not in out  # only the failing check is listed
    result.stdout.fnmatch_lines(["*broken.cua.yaml: field limits.max_steps: *greater than or equal to 1*"])
    assert "Traceback" not in out


def test_a_scenario_that_cannot_run_says_why_in_one_line(pytester: pytest.Pytester) -> None:
    folder = pytester.path / "scenarios"
    folder.mkdir()
    (folder / "unscripted.cua.yaml").write_text("name: unscripted\ntask: Say hello.\n")  # no script, no key
    (folder / "elsewhere.cua.yaml").write_text(
        "name: elsewhere\ntask: x\nserve: ./no-such-app\nscript:\n  - message: done\n")
    add_scenario(pytester, "login", recording=False)  # a script, but live never plays it instead
    result = pytester.runpytest("--cua-mode=live", "--cua-out=runs")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines([
        "*scenario 'elsewhere' (live) could not run: *no-such-app*",
        "*scenario 'login' (live) could not run: *OPENAI_API_KEY*",
        "*scenario 'unscripted' (live) could not run: *OPENAI_API_KEY*",
    ])
    assert not (pytester.path / "runs").exists(), "no run was made"
    assert "Traceback" not in result.stdout.str() and "raise " not in result.stdout.str()


def test_scenarios_run_in_parallel_under_xdist(pytester: pytest.Pytester) -> None:
    add_scenario(pytester, "login")
    add_scenario(pytester, "board", recording=False)
    result = pytester.runpytest_subprocess("-n", "2", "--cua-out=runs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*2 workers*"])
    assert run_kinds(pytester) == {"login": "replay", "board": "run"}


def test_every_scenario_runs_in_a_remote_browser_server_under_two_workers(
        pytester: pytest.Pytester, browser_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """--cua-ws-endpoint: both workers' scenarios run in the one Playwright browser server. No
    Chromium can be launched here (CUA_CHROMIUM names none), so a scenario that tried fails."""
    add_scenario(pytester, "login")
    add_scenario(pytester, "form", recording=False)
    monkeypatch.setenv("CUA_CHROMIUM", str(pytester.path / "no-chromium-here"))
    result = pytester.runpytest_subprocess("-n", "2", "--cua-out=runs", "-p", "no:cacheprovider",
                                           f"--cua-ws-endpoint={browser_server}")
    result.assert_outcomes(passed=2)
    assert run_kinds(pytester) == {"login": "replay", "contact-form": "run"}
    monkeypatch.setenv("CUA_WS_ENDPOINT", browser_server)  # the variable does the same; with no
    result = pytester.runpytest_subprocess("--cua-out=runs2", "-p", "no:cacheprovider", "-k", "login")
    result.assert_outcomes(passed=1)
    monkeypatch.delenv("CUA_WS_ENDPOINT")  # server, the launch is tried and fails, saying why
    result = pytester.runpytest_subprocess("--cua-out=runs3", "-p", "no:cacheprovider", "-k", "login")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*CUA_CHROMIUM*does not exist*"])
    both = pytester.runpytest(f"--cua-ws-endpoint={browser_server}", "--cua-cdp-url=http://127.0.0.1:9")
    assert both.ret == pytest.ExitCode.USAGE_ERROR
    both.stderr.fnmatch_lines(["*give --cua-ws-endpoint or --cua-cdp-url*, not both*"])


def test_shards_split_the_scenarios_evenly_by_recorded_duration_and_the_same_everywhere(
        pytester: pytest.Pytester) -> None:
    names = ["board", "form", "links", "list", "login", "menu", "todo"]
    seconds = {}
    for name in names:
        add_scenario(pytester, name)
        meta = json.loads((SCENARIOS / "recordings" / name / "run.json").read_text(encoding="utf-8"))
        seconds[name] = meta["duration_s"]
    parts = []
    for index in (1, 2, 3):
        result = pytester.runpytest("--collect-only", "-q", f"--cua-shard={index}/3")
        parts.append({line.split("/")[1].split(".")[0] for line in result.outlines if ".cua.yaml::" in line})
    assert sorted(n for part in parts for n in part) == names, parts  # each scenario in one shard
    totals = [sum(seconds[n] for n in part) for part in parts]
    assert max(totals) - min(totals) <= max(seconds.values()), (parts, totals)
    again = pytester.runpytest("--collect-only", "-q", "--cua-shard=3/3")
    assert {line.split("/")[1].split(".")[0] for line in again.outlines if ".cua.yaml::" in line} == parts[2]
    for index in (1, 3):  # two machines' parts, then their run folders in one index and JUnit file
        ran = pytester.runpytest("--cua-mode=replay", f"--cua-out=runs-{index}", f"--cua-shard={index}/3")
        ran.assert_outcomes(passed=len(parts[index - 1]), deselected=len(names) - len(parts[index - 1]))
    run_dirs = sorted(str(p.parent) for p in pytester.path.glob("runs-*/*/run.json"))
    merged = finish(start_cua(["report", *run_dirs, "--index", "index.html", "--junit", "junit.xml"],
                              clean_env(), pytester.path))
    assert merged.code == 0, merged.stderr
    junit = (pytester.path / "junit.xml").read_text(encoding="utf-8")
    assert junit.count("<testcase ") == len(parts[0]) + len(parts[2]) == len(run_dirs)
    for stem in parts[0] | parts[2]:
        assert f'name="{json_name(pytester, stem)} (replay)"' in junit
    bad = pytester.runpytest("--cua-shard=4/3")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--cua-shard '4/3': give I/N with 1 <= I <= N*"])


def json_name(pytester: pytest.Pytester, file_stem: str) -> str:
    """The scenario name inside scenarios/<file_stem>.cua.yaml."""
    import yaml

    path = pytester.path / "scenarios" / f"{file_stem}.cua.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))["name"]


def test_the_cua_run_fixture_runs_a_scripted_flow_from_a_python_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_flow="""
        def test_sign_in(cua_run, cua_demo_url, tmp_path):
            result = cua_run(
                task="Sign in as demo.",
                start_url=cua_demo_url + "/login.html",
                script=[
                    {"actions": [{"type": "click", "x": 232, "y": 181}, {"type": "type", "text": "demo"},
                                 {"type": "click", "x": 232, "y": 259}, {"type": "type", "text": "s3cret"},
                                 {"type": "keypress", "keys": ["ENTER"]}]},
                    {"message": "Signed in."},
                ],
                checks=[{"text_visible": "Welcome, demo"}, {"url_matches": "dashboard"}],
            )
            assert result.status == "completed", result.reason
            assert [c["ok"] for c in result.checks] == [True, True]
            assert result.run_dir.startswith(str(tmp_path))

        def test_a_failing_flow_is_reported_in_the_result(cua_run, cua_demo_url):
            result = cua_run(task="Look.", start_url=cua_demo_url + "/login.html",
                             script=[{"message": "Nothing to do."}], checks=[{"text_visible": "Welcome, demo"}])
            assert result.status == "failed" and result.exit_code == 1
            assert "Welcome, demo" in result.reason
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
