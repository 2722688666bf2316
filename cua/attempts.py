"""Retries of a failed run or replay, reported honestly: a pass after a failure is *flaky*.

Each attempt is a whole run with a run folder of its own. When a later attempt is the last, the
earlier ones are marked ``superseded_by`` it (readers that count results, such as the JUnit
writer, skip them) and the last one lists them in ``earlier_attempts``; when it passed, it is
``flaky``. A denied safety check, an interrupt or a bad configuration is never retried: trying
again cannot change those.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Awaitable, Callable

from .agent import RunResult
from .errors import ConfigError
from .lifecycle import render_report
from .runs.writer import write_atomic

RETRYABLE = frozenset({"failed", "max_steps", "timeout", "error", "diverged"})


def retryable(result: RunResult) -> bool:
    """Whether another attempt could end otherwise: not a configuration error (exit 2), nor a
    check that could not run as configured (an ai_check with no key for its judge)."""
    if result.status not in RETRYABLE or result.exit_code == ConfigError.exit_code:
        return False
    return not any(c.get("config_error") for c in result.checks)


def why(result: RunResult) -> str:
    """One line on why an attempt did not pass."""
    failed = [c["name"] for c in result.checks if not c.get("ok")]
    if failed:
        return f"check failed: {failed[0]}" + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "")
    return result.reason or result.error or result.status


async def with_retries(attempt: Callable[[int], Awaitable[RunResult]], retries: int, *,
                       notice: Callable[[str], None] | None = None) -> RunResult:
    """``attempt(n)`` for n = 1, 2, … until one passes, one fails in a way a retry cannot
    change, or ``retries`` retries are used up; returns the last result."""
    earlier: list[RunResult] = []
    total = retries + 1
    result = await attempt(1)
    for n in range(2, total + 1):
        if not retryable(result):
            break
        if notice:
            notice(f"attempt {n - 1} of {total}: {result.status} ({why(result)}); trying again")
        earlier.append(result)
        result = await attempt(n)
    if earlier:
        _mark(earlier, result)
    return result


def _mark(earlier: list[RunResult], last: RunResult) -> None:
    last.attempts = len(earlier) + 1
    last.flaky = last.status == "completed"
    last.earlier_attempts = [{"attempt": n, "run_dir": r.run_dir, "status": r.status, "why": why(r)}
                             for n, r in enumerate(earlier, 1)]
    for n, result in enumerate(earlier, 1):
        _update(result.run_dir, attempt=n, superseded_by=last.run_dir)
    _update(last.run_dir, attempt=last.attempts, earlier_attempts=last.earlier_attempts, flaky=last.flaky)
    for result in [*earlier, last]:  # each report says which attempt it is
        if result.run_dir and (Path(result.run_dir) / "report.html").exists():
            render_report(Path(result.run_dir))


def _update(run_dir: str | None, **fields: object) -> None:
    if not run_dir:
        return
    path = Path(run_dir) / "run.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # a folder that cannot be read is reported as it is
    meta.update(fields)
    write_atomic(path, json.dumps(meta, indent=2, ensure_ascii=False, default=str).encode())
