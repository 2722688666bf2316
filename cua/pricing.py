"""Token prices per model, to turn usage into cost. Override with ``CUA_PRICES`` (a JSON file)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from .errors import ConfigError

# USD per million tokens (input, output). Published list prices; edit or override as they change.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "computer-use-preview": (3.00, 12.00),
    "gpt-5.4": (2.50, 15.00),
    "scripted": (0.0, 0.0),
}

_SHAPE = 'an object of model name → [input, output] USD per million tokens, e.g. {"gpt-5.4": [2.5, 15]}'
_MAX_PRICES_BYTES = 1 << 20


def prices() -> dict[str, tuple[float, float]]:
    """The price table; a ``CUA_PRICES`` file that cannot be used is a ``ConfigError`` naming it."""
    table = dict(DEFAULT_PRICES)
    path = os.environ.get("CUA_PRICES")
    if path:
        table.update(_read_prices(path))
    return table


def _read_prices(path: str) -> dict[str, tuple[float, float]]:
    where = f"CUA_PRICES file {path}"
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_MAX_PRICES_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read ({exc.strerror or exc})") from None
    if len(raw) > _MAX_PRICES_BYTES:
        raise ConfigError(f"{where} is larger than 1 MiB; it should hold {_SHAPE}")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where} is not UTF-8 text; it should hold {_SHAPE}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where} is not JSON (line {exc.lineno}: {exc.msg}); it should hold {_SHAPE}") from None
    except RecursionError:
        raise ConfigError(f"{where} is nested too deeply; it should hold {_SHAPE}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where} holds a JSON {type(data).__name__}; it should hold {_SHAPE}")
    table: dict[str, tuple[float, float]] = {}
    for model, pair in data.items():
        if not (isinstance(pair, list) and len(pair) == 2 and all(_is_price(p) for p in pair)):
            raise ConfigError(f"{where}: the price of {model!r} must be [input, output], two numbers "
                              f"of 0 or more, got {json.dumps(pair)[:80]}")
        table[model] = (float(pair[0]), float(pair[1]))
    return table


def _is_price(value: Any) -> bool:
    # bool is an int in Python, and `true` is no price
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def cost_of(model: str, usage: Any) -> float | None:
    """Cost in USD, or None for a model not in the table (longest matching prefix wins)."""
    table = prices()
    match = max((name for name in table if model.startswith(name)), key=len, default=None)
    if match is None:
        return None
    per_in, per_out = table[match]
    return round((usage.input_tokens * per_in + usage.output_tokens * per_out) / 1_000_000, 6)
