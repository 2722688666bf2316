"""The one place that writes run folders.

A run folder is safe against a crash of the process at any moment (SIGKILL included):
``run.json`` is replaced atomically, ``steps.jsonl`` is appended and flushed once per step, and
screenshots are written before the step that names them. (No fsync per step: it would cost
milliseconds on every step to guard against a power cut, which is not what traces are for;
``close()`` syncs once at the end.) A folder left by a killed run therefore holds every completed
step, and every reader (report, replay) accepts a ``run.json`` still marked ``running``.

Layout::

    run.json        settings (no secrets), status, usage, timings, checks, result
    steps.jsonl     one JSON object per model turn (see ``StepRecord``)
    screens/        PNG screenshots, stored once each, named by content hash
    report.html     written at the end of every run and replay

A recording (``cua run --record``, ``cua replay --update``) is a copy of a run folder with nothing
of the machine that made it (see ``make_portable``): the scenario's served app is
``{{served_url}}``, paths are relative to the recording, and there is no report.

run.json fields: ``schema``, ``kind`` ("run" | "replay"), ``status`` ("running" until the end, then
completed | failed | max_steps | timeout | safety_denied | error | interrupted | diverged),
``exit_code``, ``task``, ``settings`` (RunSettings, no secrets), ``started_at``, ``finished_at``,
``duration_s``, ``steps``, ``usage`` {input_tokens, output_tokens, reasoning_tokens, total_tokens},
``cost`` (USD or null), ``final_text``, ``final_url``, ``error``, ``reason``, ``checks``
[{name, ok, detail, expected_screen?, actual_screen?}], ``healed``, ``diverged_at``,
``initial_screen``, ``final_screen``, ``display`` (the size the model saw: for a screen of another
shape than ``settings.display``, the part of it that shape fills); a replay adds ``source_run``; a
scenario run ``scenario``.

A steps.jsonl line (one model turn; replays write the same shape with ``replay`` fields)::

    step            1-based turn number
    elapsed_s       seconds since the run started, when the turn began
    model_ms        time the model took to answer
    response_id     opaque id of the response
    usage           {input_tokens, output_tokens, reasoning_tokens, total_tokens}
    screen_before   screenshot the model saw when it decided (run-relative path)
    items           the response's output items as received (encrypted reasoning elided)
    reasoning       the reasoning summary text
    text            assistant message text
    safety_checks   [{id, code, message, decision: acknowledged | denied}]
    actions         [{action: {type, x, y, ...as the model sent it}, ms, anchor?: {x, y,
                      element?: {tag, role, name, text, id, testid, selector, box}},
                      healed?: {from: [x, y], to: [x, y], by: "element" | "image"}}]
    functions       [{name, arguments, output, ms}]
    settle_ms       time from the last action to the screenshot answering it
    screen_after    that screenshot
    url             page URL after the actions (browser)
    final           true on the turn that ended the run
    diverged        (replay) {reason, expected_screen, actual_screen}
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..redact import Redactor

SCHEMA_VERSION = 1


def slugify(text: str, limit: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "run"


def new_run_dir(base: Path | str, label: str) -> Path:
    """``base/<UTC timestamp>-<slug>``, unique even when two runs start in the same second."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = Path(base)
    candidate = base / f"{stamp}-{slugify(label)}"
    n = 1
    while True:
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            n += 1
            candidate = base / f"{stamp}-{slugify(label)}-{n}"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


class RunTrace:
    """Writes one run folder. Everything written passes through the run's ``Redactor``."""

    def __init__(self, run_dir: Path | str, redactor: Redactor | None = None) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "screens").mkdir(exist_ok=True)
        self.redactor = redactor or Redactor()
        self.meta: dict[str, Any] = {"schema": SCHEMA_VERSION, "status": "running"}
        self._steps = open(self.dir / "steps.jsonl", "a", encoding="utf-8")
        self._known_screens: set[str] = {p.stem for p in (self.dir / "screens").glob("*.png")}
        self._started = time.monotonic()

    # -- run.json --------------------------------------------------------------------------------
    def update(self, **fields: Any) -> None:
        """Merge ``fields`` into run.json and rewrite it atomically."""
        self.meta.update(self.redactor.obj(fields))
        self.meta["updated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        payload = json.dumps(self.meta, indent=2, ensure_ascii=False, default=str)
        _write_atomic(self.dir / "run.json", payload.encode())

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    # -- screenshots -----------------------------------------------------------------------------
    def save_screenshot(self, png: bytes) -> str:
        """Store a PNG once; returns its path relative to the run folder."""
        digest = hashlib.sha256(png).hexdigest()[:16]
        rel = f"screens/{digest}.png"
        if digest not in self._known_screens:
            _write_atomic(self.dir / rel, png)
            self._known_screens.add(digest)
        return rel

    # -- steps -----------------------------------------------------------------------------------
    def append_step(self, record: dict[str, Any]) -> None:
        line = json.dumps(self.redactor.obj(record), ensure_ascii=False, default=str)
        self._steps.write(line + "\n")
        self._steps.flush()

    def close(self) -> None:
        if not self._steps.closed:
            self._steps.flush()
            os.fsync(self._steps.fileno())
            self._steps.close()


def read_run(run_dir: Path | str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read a run folder, also one left by a killed run (a torn last line is ignored)."""
    run_dir = Path(run_dir)
    from ..errors import ConfigError

    meta_path = run_dir / "run.json"
    if not meta_path.exists():
        raise ConfigError(f"{run_dir} is not a cua run folder (no run.json)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{meta_path} cannot be read ({exc}); cua writes it whole, so it was "
                          "changed or damaged after the run") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"{meta_path} holds no JSON object; it is not a cua run.json")
    steps: list[dict[str, Any]] = []
    steps_path = run_dir / "steps.jsonl"
    if steps_path.exists():
        for line in steps_path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                steps.append(json.loads(line))
            except json.JSONDecodeError:
                break  # the run was killed while writing this line
    return meta, steps


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
    _write_atomic(meta_path, meta_text.encode())
    if steps_path.exists():
        _write_atomic(steps_path, steps_text.encode())
    for name in NOT_IN_RECORDINGS:
        (folder / name).unlink(missing_ok=True)


def _relative(path: str, home: Path) -> str:
    try:
        return Path(os.path.relpath(Path(path).resolve(), home.resolve())).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        return path


def mask_archive(path: Path, redactor: Redactor) -> None:
    """Mask secrets in every text member of a zip (a Playwright trace records typed text and
    form values); binary members (screencast frames) are copied as they are."""
    import zipfile

    if not redactor or not path.exists():
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                dst.writestr(info, data)
                continue
            dst.writestr(info, redactor.encoded_text(text).encode("utf-8"))
    os.replace(tmp, path)
