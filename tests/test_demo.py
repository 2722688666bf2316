"""``cua demo`` (what ``make demo`` runs) as a new user meets it: no API key, no network, one
command, and a report path at the end that leads to every run's report."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CUA = [str(REPO / ".venv" / "bin" / "cua")] if (REPO / ".venv" / "bin" / "cua").exists() else [
    sys.executable, "-m", "cua"]
SCENARIOS = sorted((REPO / "scenarios").glob("*.cua.yaml"))


def _offline(command: list[str]) -> list[str]:
    """The command in a network namespace of its own with only loopback up, where the system
    allows one (root on Linux): then "offline" is proven, not assumed."""
    if shutil.which("unshare") and shutil.which("ip"):
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        if probe.returncode == 0:
            return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "offline", *command]
    return command


def test_cua_demo_runs_offline_with_no_key_and_prints_the_report_path(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "AZURE_OPENAI_")) and k != "CUA_DEMO_PASSWORD"}
    out = tmp_path / "demo"
    proc = subprocess.run(_offline([*CUA, "demo", "--out", str(out)]), capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr

    report_lines = [line for line in proc.stdout.splitlines() if line.startswith("report: ")]
    assert len(report_lines) == 1, proc.stdout
    index = Path(report_lines[0].removeprefix("report: "))
    assert index == out / "index.html" and index.is_file()
    assert f"{len(SCENARIOS) + 1} of {len(SCENARIOS) + 1} passed" in proc.stderr

    # One run folder per bundled scenario plus the drifted replay, each with its report, and the
    # index links every one of them.
    runs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(runs) == len(SCENARIOS) + 1
    html = index.read_text(encoding="utf-8")
    links = set(re.findall(r'href="([^"]+/report\.html)"', html))
    assert links == {f"{run.name}/report.html" for run in runs}
    for run in runs:
        assert (run / "report.html").is_file()

    junit = out / "junit.xml"
    suites = ET.parse(junit).getroot()
    cases = suites.findall(".//testcase")
    assert len(cases) == len(runs)
    assert int(suites.get("tests")) == len(runs) and suites.get("failures") == "0" and suites.get("errors") == "0"
    assert not [c for c in cases if c.find("failure") is not None or c.find("error") is not None]
    names = {c.get("name") for c in cases}
    assert {"login", "board", "context-menu"} <= names
