"""pytest plugin: scenario files are tests, and fixtures run flows from Python tests.

``*.cua.yaml`` files (and YAML files under a ``scenarios/`` folder) are collected as test items.
``--cua-mode`` picks how each runs: ``replay`` (the committed recording, no model), ``scripted``
(the scenario's script through the stand-in, no model), ``live`` (the model the scenario names;
no API key fails the test, the script never stands in for it) or ``auto`` (replay when a recording
exists, else live, else — no API key — the script, which the outcome line and the report say).
A failure shows the step, the reason and the report's path. Works under pytest-xdist. Every item
gets its own run folder, servers and browser context; the browser itself is shared by the items
of one process (one Chromium per worker), which run on one event loop for that.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

from .agent import RunResult
from .options import retry_count

if TYPE_CHECKING:  # the pool (and Playwright) is imported when a run first needs it
    from .environments.browser_pool import BrowserPool


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cua", "computer-use scenarios")
    group.addoption("--cua-mode", choices=["auto", "replay", "scripted", "live"], default="auto",
                    help="replay recordings, play scripts, run the model, or auto (default): replay "
                         "what is recorded, else the model, else (no API key) the script, said so")
    group.addoption("--cua-out", default="runs", help="folder for run folders (default ./runs)")
    group.addoption("--cua-var", action="append", default=[], metavar="K=V",
                    help="scenario variable for every scenario (repeatable)")
    group.addoption("--cua-shard", default=None, metavar="I/N",
                    help="run shard I of N (1-based): the tests split into N parts of about equal "
                         "time by each scenario's recorded duration, the same way on every machine")
    group.addoption("--cua-retries", type=retry_count, default=0, metavar="N",
                    help="run a failed scenario again up to N times (a diverged replay is replayed "
                         "again); a pass after a failure is reported as flaky, never as a plain pass")
    group.addoption("--cua-ws-endpoint", default=None, metavar="URL",
                    help="run every browser scenario in the Playwright browser server at this ws:// "
                         "URL (default $CUA_WS_ENDPOINT, else $PW_TEST_CONNECT_WS_ENDPOINT)")
    group.addoption("--cua-cdp-url", default=None, metavar="URL",
                    help="run every browser scenario in the Chromium at this CDP URL, e.g. a "
                         "Selenium Grid 4 node's (default $CUA_CDP_URL)")


def pytest_configure(config: pytest.Config) -> None:
    remote_browser(config)  # two remote browsers at once: a usage error before anything runs


def _is_scenario(path: Path) -> bool:
    if path.name.endswith(".cua.yaml") or path.name.endswith(".cua.yml"):
        return True
    return path.suffix in {".yaml", ".yml"} and path.parent.name == "scenarios"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _is_scenario(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self):
        from .errors import ConfigError
        from .scenario import load_scenario

        try:
            scenario = load_scenario(self.path)
        except ConfigError as exc:
            yield BadScenarioItem.from_parent(self, name=self.path.name, message=str(exc))
            return
        yield ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)


class ScenarioFailure(Exception):
    def __init__(self, result: RunResult, mode: str) -> None:
        super().__init__(result.reason or result.error or result.status)
        self.result = result
        self.mode = mode


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def _mode(self) -> str:
        """replay, scripted or live; ``self.fallback`` says why auto chose the script."""
        mode = self.config.getoption("cua_mode")
        if mode != "auto":
            return mode
        if (self.scenario.recording_dir() / "run.json").exists():
            return "replay"
        from .providers.base import provider_for

        spec = self.scenario.model_spec
        missing = missing_api_key(provider_for(spec.name or "computer-use-preview", spec.provider))
        if missing and self.scenario.script:
            self.fallback = f"scripted: no {missing}"
            return "scripted"
        return "live"

    fallback: str | None = None

    def runtest(self) -> None:
        from .attempts import with_retries
        from .runner import run_scenario
        from .scenario import parse_vars
        from .replay.replayer import replay_run

        mode = self._mode()
        variables = parse_vars(self.config.getoption("cua_var"))
        variables = {k: v for k, v in variables.items() if k in self.scenario.variables}
        out = Path(self.config.getoption("cua_out"))
        remote = remote_browser(self.config) if self.scenario.env == "browser" else {}
        recording = self.scenario.recording_dir()
        if mode == "replay" and not (recording / "run.json").exists():
            pytest.fail(f"no recording at {recording}: record it with 'cua run {self.path} --record'", pytrace=False)

        def attempt(n: int) -> Any:
            if mode == "replay":
                return replay_run(recording, scenario_path=self.path, out=out, variables=variables,
                                  overrides=remote or None)
            flags: dict[str, Any] = {"out": out, **remote}
            if mode == "scripted":
                flags["model"] = "scripted"
            return run_scenario(self.scenario, variables=variables, flags=flags,
                                extra_meta={"fallback": self.fallback} if self.fallback else None)

        if self.fallback:
            self.user_properties.append(("cua_fallback", self.fallback))
        retries = self.config.getoption("cua_retries")
        result = session_loop(self.config).run(with_retries(attempt, retries))
        self.user_properties.append(("run_dir", result.run_dir))
        if result.flaky:
            self.user_properties.append(("cua_flaky", "; ".join(
                f"attempt {a['attempt']} {a['status']}: {a['why']}" for a in result.earlier_attempts)))
        if result.status != "completed":
            raise ScenarioFailure(result, mode)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:
        from .errors import CuaError

        if isinstance(excinfo.value, CuaError):  # the run could not start: what to do, no traceback
            return f"scenario {self.scenario.name!r} ({self._mode()}) could not run: {excinfo.value}"
        if isinstance(excinfo.value, ScenarioFailure):
            r, lines = excinfo.value.result, []
            lines.append(f"scenario {self.scenario.name!r} ({excinfo.value.mode}): {r.status}")
            if r.diverged_at is not None:
                lines.append(f"  diverged at step {r.diverged_at}")
            else:
                lines.append(f"  after step {r.steps}")
            if r.reason:
                lines.append(f"  reason: {r.reason}")
            if r.error:
                lines.append(f"  error: {r.error}")
            for check in r.checks:
                if not check["ok"]:
                    lines.append(f"  ✗ {check['name']}: {check.get('detail', '')}")
            if r.run_dir:
                lines.append(f"  report: {(Path(r.run_dir) / 'report.html').resolve()}")
            return "\n".join(lines)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"scenario: {self.scenario.name}"


class BadScenarioItem(pytest.Item):
    def __init__(self, *, message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message

    def runtest(self) -> None:
        pytest.fail(self.message, pytrace=False)

    def reportinfo(self):
        return self.path, None, self.name


# What a test without a recorded duration counts for when shards are cut: a scenario without a
# recording (a scripted or live run), and a Python test.
UNRECORDED_SCENARIO_S = 10.0
PYTHON_TEST_S = 1.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    spec = config.getoption("cua_shard")
    if not spec:
        return
    index, count = parse_shard(spec)
    kept = set(map(id, shards(items, count)[index - 1]))
    deselected = [item for item in items if id(item) not in kept]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if id(item) in kept]


def parse_shard(spec: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in spec.split("/"))
    except ValueError:
        index = count = 0
    if not 1 <= index <= count:
        raise pytest.UsageError(f"--cua-shard {spec!r}: give I/N with 1 <= I <= N, e.g. 1/4")
    return index, count


def shards(items: list[pytest.Item], count: int) -> list[list[pytest.Item]]:
    """``items`` cut into ``count`` shards of about equal time: longest first, each to the shard
    with the least so far. Only names and recorded durations decide, so every machine agrees."""
    cost = {id(item): expected_seconds(item) for item in items}
    bins: list[list[pytest.Item]] = [[] for _ in range(count)]
    totals = [0.0] * count
    for item in sorted(items, key=lambda i: (-cost[id(i)], i.nodeid)):
        lightest = totals.index(min(totals))
        bins[lightest].append(item)
        totals[lightest] += cost[id(item)]
    order = {id(item): n for n, item in enumerate(items)}
    return [sorted(part, key=lambda i: order[id(i)]) for part in bins]


def expected_seconds(item: pytest.Item) -> float:
    if not isinstance(item, ScenarioItem):
        return PYTHON_TEST_S
    import json

    try:
        meta = json.loads((item.scenario.recording_dir() / "run.json").read_text(encoding="utf-8"))
        return max(0.1, float(meta["duration_s"]))
    except (OSError, ValueError, KeyError, TypeError):
        return UNRECORDED_SCENARIO_S


def remote_browser(config: pytest.Config) -> dict[str, str]:
    """The remote browser every browser scenario runs in, as run settings: the option, else the
    variables a CI system or Playwright's own tooling sets; {} to launch Chromium here."""
    import os

    ws = config.getoption("cua_ws_endpoint") or os.environ.get("CUA_WS_ENDPOINT") \
        or os.environ.get("PW_TEST_CONNECT_WS_ENDPOINT")
    cdp = config.getoption("cua_cdp_url") or os.environ.get("CUA_CDP_URL")
    if ws and cdp:
        raise pytest.UsageError("give --cua-ws-endpoint or --cua-cdp-url (or their variables), not both")
    return {"ws_endpoint": ws} if ws else {"cdp_url": cdp} if cdp else {}


# The variables each provider reads its key from (any one will do); the first is the one to name.
KEY_VARIABLES = {
    "openai": ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY"),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "google": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}


def missing_api_key(provider: str = "openai") -> str | None:
    """The variable a live run of ``provider`` would need and does not have, or None."""
    import os

    names = KEY_VARIABLES.get(provider, KEY_VARIABLES["openai"])
    return None if any(os.environ.get(name) for name in names) else names[0]


class SessionLoop:
    """The event loop this process's runs share, with the pool of browsers that lives in it.

    Playwright's objects belong to the loop that made them, so sharing a browser between scenarios
    means running them all on one loop: each ``run`` is one scenario, in a context of its own that
    sees the pool. Closed (browsers first) when pytest ends.
    """

    def __init__(self) -> None:
        self._runner = asyncio.Runner()
        self._pool: BrowserPool | None = None

    def run(self, coro: Any) -> Any:
        return self._runner.run(self._with_pool(coro))

    async def _with_pool(self, coro: Any) -> Any:
        from .environments.browser_pool import BrowserPool

        if self._pool is None:
            self._pool = BrowserPool()
        with self._pool.in_use():
            return await coro

    def close(self) -> None:
        try:
            if self._pool is not None:
                self._runner.run(self._pool.aclose())
        finally:
            self._runner.close()


_SESSION_LOOP = pytest.StashKey[SessionLoop]()


def session_loop(config: pytest.Config) -> SessionLoop:
    if _SESSION_LOOP not in config.stash:
        config.stash[_SESSION_LOOP] = SessionLoop()
    return config.stash[_SESSION_LOOP]


def _close_session_loop(config: pytest.Config) -> None:
    loop = config.stash.get(_SESSION_LOOP, None)
    if loop is not None:
        del config.stash[_SESSION_LOOP]
        loop.close()


def pytest_sessionfinish(session: pytest.Session) -> None:
    _close_session_loop(session.config)  # the tests are done: their browsers go


def pytest_unconfigure(config: pytest.Config) -> None:
    _close_session_loop(config)  # a session that ended before finishing


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    """A scenario that played its script because there was no key says so on its outcome line."""
    # A collection report (a test file that failed to import) has no user_properties.
    properties = dict(getattr(report, "user_properties", ()))
    if properties.get("cua_flaky") and report.when == "call" and report.passed:
        return "flaky", "f", ("FLAKY", {"yellow": True})  # counted apart: "1 flaky" on the last line
    fallback = properties.get("cua_fallback")
    if fallback and report.when == "call":
        word = "PASSED" if report.passed else "FAILED" if report.failed else None
        if word:
            return report.outcome, "." if report.passed else "F", (f"{word} ({fallback})", {"yellow": True})
    return None


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    fell_back = [(r.nodeid, dict(r.user_properties)["cua_fallback"])
                 for r in terminalreporter.getreports("passed") + terminalreporter.getreports("failed")
                 if r.when == "call" and "cua_fallback" in dict(getattr(r, "user_properties", ()))]
    if fell_back:
        terminalreporter.section("cua: scenarios that played their script instead of a model")
        for nodeid, why in fell_back:
            terminalreporter.line(f"{nodeid}: {why}")
    flaky = [(r.nodeid, dict(r.user_properties)["cua_flaky"]) for r in terminalreporter.stats.get("flaky", [])]
    if flaky:
        terminalreporter.section("cua: flaky scenarios (passed only after failing)")
        for nodeid, what in flaky:
            terminalreporter.line(f"{nodeid}: {what}")


# --- Fixtures for Python tests ------------------------------------------------------------------


@pytest.fixture
def cua_run(tmp_path: Path, pytestconfig: pytest.Config) -> Callable[..., RunResult]:
    """Run a task from a sync test: ``cua_run(task=..., start_url=..., script=[...])``.

    With ``script`` (a list of scenario script turns) the run plays it through the stand-in server;
    without, it calls the model configured by the environment (``OPENAI_API_KEY`` ...).
    Settings are ``RunSettings`` fields; the run folder lands in the test's tmp_path.
    """
    loop = session_loop(pytestconfig)

    def run(*, script: list[dict[str, Any]] | None = None, checks: list[dict[str, Any]] | None = None,
            **settings: Any) -> RunResult:
        from .config import RunSettings
        from .runner import SCRIPTED_KEY, run_task
        from .scenario import CheckSpec, ScenarioCheck, ScriptTurn

        settings.setdefault("out", tmp_path / "runs")
        built = [ScenarioCheck(CheckSpec.model_validate(c), Path.cwd()) for c in checks or []]
        if script is None:
            return loop.run(run_task(RunSettings(**settings), checks=built))
        from .testing.scripted import serve_script

        settings.setdefault("model", "scripted")
        run_settings = RunSettings(**settings)
        turns = [ScriptTurn.model_validate(t) for t in script]
        with serve_script(run_settings.provider_name, turns, SCRIPTED_KEY) as base_url:
            return loop.run(run_task(run_settings, checks=built, api_key=SCRIPTED_KEY, base_url=base_url))

    return run


@pytest.fixture
def cua_replay(tmp_path: Path, pytestconfig: pytest.Config) -> Callable[..., RunResult]:
    """Replay a run folder from a sync test: ``cua_replay(run_dir, start_url=...)``."""
    loop = session_loop(pytestconfig)

    def replay(run_dir: str | Path, **kwargs: Any) -> RunResult:
        from .replay.replayer import replay_run

        kwargs.setdefault("out", tmp_path / "runs")
        return loop.run(replay_run(run_dir, **kwargs))

    return replay


@pytest.fixture
def cua_demo_url() -> Any:
    """The bundled demo app served on 127.0.0.1 for the test; yields its base URL."""
    from .testing.demo_server import serve_demo

    with serve_demo() as server:
        yield server.base_url
