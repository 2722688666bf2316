"""Token prices per model, to turn usage into cost. Override with ``CUA_PRICES`` (a JSON file)."""

from __future__ import annotations

import json
import os
from typing import Any

# USD per million tokens (input, output). Published list prices; edit or override as they change.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "computer-use-preview": (3.00, 12.00),
    "gpt-5.4": (2.50, 15.00),
    "scripted": (0.0, 0.0),
}


def prices() -> dict[str, tuple[float, float]]:
    table = dict(DEFAULT_PRICES)
    path = os.environ.get("CUA_PRICES")
    if path:
        with open(path, encoding="utf-8") as fh:
            table.update({k: (float(v[0]), float(v[1])) for k, v in json.load(fh).items()})
    return table


def cost_of(model: str, usage: Any) -> float | None:
    """Cost in USD, or None for a model not in the table (longest matching prefix wins)."""
    table = prices()
    match = max((name for name in table if model.startswith(name)), key=len, default=None)
    if match is None:
        return None
    per_in, per_out = table[match]
    return round((usage.input_tokens * per_in + usage.output_tokens * per_out) / 1_000_000, 6)
