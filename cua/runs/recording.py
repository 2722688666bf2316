"""Recordings: a run folder saved beside its scenario, with nothing of the machine that made it."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from .writer import write_atomic

SERVED_URL = "{{served_url}}"
# Made for one run on one machine; a recording is rebuilt from run.json and steps.jsonl.
NOT_IN_RECORDINGS = ("report.html", "playwright-trace.zip")


def make_portable(folder: Path, home: Path, served_url: str | None = None) -> None:
    """Rewrite the run folder ``folder``, about to be saved as the recording ``home``, so that it
    holds nothing of this machine: ``served_url`` (the scenario's served app, on a port of this
    run) becomes ``{{served_url}}``, which a replay fills with the app it serves again; the
    scenario file and the replayed run are named relative to ``home``; the run's output folder
    is dropped."""
    meta_path, steps_path = folder / "run.json", folder / "steps.jsonl"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    scenario = meta.get("scenario")
    if isinstance(scenario, dict) and scenario.get("path"):
        scenario["path"] = _relative(scenario["path"], home)
    if meta.get("source_run"):
        meta["source_run"] = _relative(meta["source_run"], home)
    if isinstance(meta.get("settings"), dict):
        meta["settings"]["out"] = None
    meta_text = json.dumps(meta, indent=2, ensure_ascii=False)
    steps_text = steps_path.read_text(encoding="utf-8") if steps_path.exists() else ""
    if served_url:
        address = re.compile(re.escape(served_url) + r"(?![0-9])")  # :8000 is not :80001
        meta_text = address.sub(lambda _: SERVED_URL, meta_text)
        steps_text = address.sub(lambda _: SERVED_URL, steps_text)
    write_atomic(meta_path, meta_text.encode())
    if steps_path.exists():
        write_atomic(steps_path, steps_text.encode())
    for name in NOT_IN_RECORDINGS:
        (folder / name).unlink(missing_ok=True)


def _relative(path: str, home: Path) -> str:
    try:
        return Path(os.path.relpath(Path(path).resolve(), home.resolve())).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        return path


def save_recording(run_dir: Path, target: Path, served_url: str | None = None) -> None:
    """Copy a run folder to ``target`` with nothing of this machine in it (see ``make_portable``),
    replacing what was there only once the copy is complete."""
    staging = target.with_name(f".{target.name}.new")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(run_dir, staging)
    make_portable(staging, target, served_url)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
