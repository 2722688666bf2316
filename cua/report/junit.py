"""JUnit XML for CI: one test case per run folder, failing unless the run completed.

The shape is the one CI systems read (Jenkins, GitLab, GitHub test reporters, Azure DevOps):
``testsuites > testsuite > testcase`` with ``tests``/``failures``/``errors``/``skipped``/``time``
counts, a ``failure`` element carrying the reason, and the report's path in ``system-out`` so a
failed build links straight to what the run saw.
"""

from __future__ import annotations

import os
import re
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from ..runs.reader import read_run

# Characters XML 1.0 cannot carry at all; web pages and models do produce them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: Any, limit: int | None = None) -> str:
    text = _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", "" if value is None else str(value))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _seconds(value: Any) -> str:
    return f"{float(value):.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "0.000"


def _case_name(meta: dict[str, Any], run_dir: Path) -> str:
    scenario = meta.get("scenario") if isinstance(meta.get("scenario"), dict) else {}
    name = scenario.get("name") or " ".join(str(meta.get("task") or "").split()) or run_dir.name
    if meta.get("kind") == "replay":
        name = f"{name} (replay)"
    return _text(name, 200)


def _failure_message(meta: dict[str, Any]) -> str:
    status = meta.get("status") or "unknown"
    if status == "running":
        return "the run did not finish (its process stopped before writing a result)"
    detail = meta.get("reason") or meta.get("error")
    return f"{status}: {detail}" if detail else str(status)


def _timestamp(value: Any) -> str | None:
    """ISO 8601 in UTC without an offset, the form the JUnit schema's ``timestamp`` accepts."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")


def write_junit(run_dirs: Iterable[Path | str], out_path: Path | str, suite_name: str = "cua") -> Path:
    """Write JUnit XML for ``run_dirs`` to ``out_path`` and return it."""
    out_path = Path(out_path)
    cases: list[ET.Element] = []
    failures = 0
    total_time = 0.0
    starts: list[str] = []
    for run_dir in (Path(d) for d in run_dirs):
        meta, _steps = read_run(run_dir)
        if meta.get("superseded_by"):  # an attempt retried later: it is told in that attempt's case
            continue
        report = run_dir / "report.html"
        duration = _seconds(meta.get("duration_s"))
        total_time += float(duration)
        if stamp := _timestamp(meta.get("started_at")):
            starts.append(stamp)
        kind = "replay" if meta.get("kind") == "replay" else "run"
        case = ET.Element("testcase", {"name": _case_name(meta, run_dir),
                                        "classname": f"{suite_name}.{kind}", "time": duration})
        if meta.get("status") != "completed":
            failures += 1
            message = _failure_message(meta)
            failure = ET.SubElement(case, "failure", {"message": _text(message, 1000),
                                                      "type": _text(meta.get("status") or "unknown")})
            lines = [_text(message)]
            if meta.get("error") and meta.get("reason"):
                lines.append(f"error: {_text(meta['error'])}")
            for check in meta.get("checks") or []:
                if isinstance(check, dict) and not check.get("ok"):
                    lines.append(f"check failed: {_text(check.get('name'))}: {_text(check.get('detail'))}")
            lines.append(f"report: {report}")
            failure.text = "\n".join(lines)
        # Earlier attempts (cua run --retries): Surefire's elements, which CI systems show as flaky
        # (passed on a rerun) or as reruns of a failure.
        rerun = "flakyFailure" if meta.get("status") == "completed" else "rerunFailure"
        for earlier in meta.get("earlier_attempts") or []:
            if isinstance(earlier, dict):
                element = ET.SubElement(case, rerun, {"message": _text(earlier.get("why"), 1000),
                                                      "type": _text(earlier.get("status") or "unknown")})
                element.text = f"attempt {earlier.get('attempt')}: {_text(earlier.get('run_dir'))}"
        ET.SubElement(case, "system-out").text = f"report: {report}\nrun folder: {run_dir}"
        cases.append(case)

    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0", "skipped": "0",
              "time": f"{total_time:.3f}"}
    root = ET.Element("testsuites", {"name": _text(suite_name), **counts})
    suite = ET.SubElement(root, "testsuite", {
        "name": _text(suite_name), **counts,
        "timestamp": min(starts) if starts else _timestamp(datetime.now(timezone.utc).isoformat()),
        "hostname": _text(socket.gethostname() or "localhost"),
    })
    suite.extend(cases)
    ET.indent(root)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, out_path)
    return out_path
