"""--playwright-trace: a Playwright trace in the run folder, one group per model turn."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CUA = Path(sys.executable).parent / "cua"


def test_playwright_trace_has_one_group_per_turn(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [str(CUA), "run", str(ROOT / "scenarios" / "login.cua.yaml"), "--model", "scripted",
         "--playwright-trace", "--json", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert done.returncode == 0, done.stderr
    run_dir = Path(json.loads(done.stdout)["run_dir"])
    with zipfile.ZipFile(run_dir / "playwright-trace.zip") as archive:
        trace = next(n for n in archive.namelist() if n.endswith(".trace"))
        events = [json.loads(line) for line in archive.read(trace).decode().splitlines()]
        assert any(n.endswith(".jpeg") for n in archive.namelist()), "the trace has screencast frames"
    groups = [e for e in events if e.get("type") == "before" and e.get("method") == "tracingGroup"]
    # The login script: two computer calls and a final answer.
    assert len(groups) == 3
    # The password was typed (the run signed in), yet the trace — which records typed text and
    # form values — holds only its mask.
    with zipfile.ZipFile(run_dir / "playwright-trace.zip") as archive:
        for name in archive.namelist():
            assert b"s3cret" not in archive.read(name), name
        assert b"{{password}}" in archive.read(trace)
