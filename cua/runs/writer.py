"""The one place that writes run folders (their layout: ``cua.runs``). Everything written passes
through the run's ``Redactor``; ``StepRecorder`` is all the loop knows of it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

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


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


class StepRecorder(Protocol):
    """What the loop writes into a run folder; ``RunTrace`` is the one implementation."""

    def save_screenshot(self, png: bytes) -> str:
        """Store a PNG; returns the path the step records name it by."""
        ...

    def update(self, **fields: Any) -> None:
        """Merge ``fields`` into run.json."""
        ...

    def append_step(self, record: dict[str, Any]) -> None:
        """Add one model turn to steps.jsonl, flushed before the next one begins."""
        ...

    def elapsed(self) -> float:
        """Seconds since the run started."""
        ...


class RunTrace:
    """Writes one run folder (a ``StepRecorder``), everything through the run's ``Redactor``."""

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
        write_atomic(self.dir / "run.json", payload.encode())

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    # -- screenshots -----------------------------------------------------------------------------
    def save_screenshot(self, png: bytes) -> str:
        """Store a PNG once; returns its path relative to the run folder."""
        digest = hashlib.sha256(png).hexdigest()[:16]
        rel = f"screens/{digest}.png"
        if digest not in self._known_screens:
            write_atomic(self.dir / rel, png)
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
