"""Reading a run folder back: the one way reports, replay and tests read what a run wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def read_run(run_dir: Path | str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read a run folder, also one left by a killed run (a torn last line is ignored)."""
    run_dir = Path(run_dir)
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
