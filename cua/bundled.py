"""Where the data that ships with cua lives: the demo app, and the scenarios with their recordings.

Both are packages of data, ``cua.demo_app`` and ``cua.scenarios``, mapped from the repository's
top-level ``demo_app/`` and ``scenarios/`` folders (see pyproject.toml). Finding them through the
import system gives the same folders from an editable checkout and from an installed wheel.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

__all__ = ["demo_app_folder", "scenarios_folder"]


def demo_app_folder() -> Path:
    """The bundled demo web app (the folder holding its index.html)."""
    return _data_folder("cua.demo_app", "demo_app")


def scenarios_folder() -> Path:
    """The bundled ``*.cua.yaml`` scenarios; their recordings are in ``recordings/`` below."""
    return _data_folder("cua.scenarios", "scenarios")


def _data_folder(package: str, checkout_folder: str) -> Path:
    try:
        return Path(str(importlib.resources.files(package)))
    except ModuleNotFoundError:  # cua imported straight from a checkout that was never installed
        return Path(__file__).resolve().parent.parent / checkout_folder
