"""What ``cua demo`` (what ``make demo`` runs) must show a new user: no API key, no network, one
command, and a report path at the end that leads to every run's report. The demo itself runs once,
from a wheel in a fresh venv (tests/test_package.py), and is checked by ``assert_demo_output``."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((REPO / "scenarios").glob("*.cua.yaml"))


def offline(command: list[str]) -> list[str]:
    """The command in a network namespace of its own with only loopback up, where the system
    allows one (root on Linux): then "offline" is proven, not assumed."""
    if shutil.which("unshare") and shutil.which("ip"):
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        if probe.returncode == 0:
            return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "offline", *command]
    return command


def assert_demo_output(proc: subprocess.CompletedProcess[str], out: Path, cwd: Path) -> None:
    """What a user sees of a finished ``cua demo --out OUT``: exit 0, no traceback, one report line
    leading to an index of every run's report, every scenario passed, and a JUnit file of them.
    (tests/test_package.py runs the demo this way from a wheel installed in a fresh venv.)"""
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr

    report_lines = [line for line in proc.stdout.splitlines() if line.startswith("report: ")]
    assert len(report_lines) == 1, proc.stdout
    index = Path(report_lines[0].removeprefix("report: "))
    assert (cwd / index).resolve() == (out / "index.html").resolve() and (out / "index.html").is_file()
    index = out / "index.html"
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
