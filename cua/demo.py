"""``make demo``: the bundled scenarios on the bundled demo app, offline and with no API key.

Runs every bundled scenario (``scenarios/`` of the repository, ``cua.scenarios`` once installed)
by playing its script through the stand-in server (model ``scripted``: no key, no network, no
cost), replays one recording against a drifted page to show healing, then writes an index of all
the reports and JUnit XML, and prints where they are.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Callable

from .agent import RunResult
from .bundled import scenarios_folder
from .errors import ConfigError

HEAL_SCENARIO = "login.cua.yaml"
PARALLEL = 2  # browsers at once: the work is mostly waiting on Chromium, and machines have 2+ cores


def bundled_scenarios(folder: Path | None = None) -> list[Path]:
    folder = folder or scenarios_folder()
    found = sorted(folder.glob("*.cua.yaml"))
    if not found:
        raise ConfigError(f"no scenarios found in {folder}: this cua was installed without its package "
                          "data; reinstall it")
    return found


def _line(name: str, result: RunResult, seconds: float) -> str:
    mark = "✓" if result.status == "completed" else "✗"
    extra = ""
    if result.healed is not None:
        extra = f"  healed {result.healed}" + (f", diverged at {result.diverged_at}" if result.diverged_at else "")
    checks = sum(1 for c in result.checks if c["ok"])
    return f"  {mark} {name:<34} {result.status:<10} {result.steps:>2} steps  {checks}/{len(result.checks)} checks  {seconds:5.1f}s{extra}"


async def run_demo(out: str | Path = "runs/demo", log: Callable[[str], None] = print, *,
                   remote: dict[str, str] | None = None) -> int:
    """``remote``: ``{"ws_endpoint": ...}`` or ``{"cdp_url": ...}``, a browser to run in instead
    of the one Chromium launched here."""
    from .environments.browser_pool import shared_browsers
    from .runner import run_scenario
    from .replay.replayer import replay_target

    out = Path(out)
    started = time.monotonic()
    run_dirs: list[str] = []
    failures = 0
    scenarios = bundled_scenarios()
    log(f"cua demo: {len(scenarios)} scenarios on the demo app, scripted (no API key, no network),"
        f" {PARALLEL} at a time")
    slots = asyncio.Semaphore(PARALLEL)

    async def one(path: Path) -> RunResult:
        async with slots:
            t0 = time.monotonic()
            result = await run_scenario(path, flags={"model": "scripted", "out": out, **(remote or {})})
            log(_line(path.name, result, time.monotonic() - t0))
            return result

    async with shared_browsers():  # one Chromium, a fresh context for every scenario
        for result in await asyncio.gather(*(one(path) for path in scenarios)):
            failures += result.status != "completed"
            run_dirs.append(result.run_dir)

        heal = scenarios_folder() / HEAL_SCENARIO
        log(f"cua demo: replaying the recording of {heal.name} on a page that moved (?shift=1)")
        t0 = time.monotonic()
        result = await replay_target(heal, out=out, variables={"query": "?shift=1"}, overrides=remote)
    log(_line(f"replay {heal.name} (drifted)", result, time.monotonic() - t0))
    failures += result.status != "completed"
    run_dirs.append(result.run_dir)

    from .report.junit import write_junit
    from .report.index import write_index

    index = write_index(run_dirs, out / "index.html")
    junit = write_junit(run_dirs, out / "junit.xml")
    total = len(run_dirs)
    log(f"cua demo: {total - failures} of {total} passed in {time.monotonic() - started:.1f}s")
    log(f"JUnit XML: {junit}")
    print(f"report: {index}")
    return 0 if failures == 0 else 1
