"""Token prices per model, to turn usage into cost. Override with ``CUA_PRICES`` (a JSON file)."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from .errors import ConfigError

Price = tuple[float, float, float, float]  # USD per million tokens: input, output, cache read, cache write

# Published list prices (late 2026; the longest matching prefix of the model name wins). Input
# tokens read from a prompt cache, and (Claude) written to one, have prices of their own; a model
# listed with two numbers pays its input price for both. Edit, or override with CUA_PRICES.
DEFAULT_PRICES: dict[str, Price] = {
    # OpenAI
    "computer-use-preview": (3.00, 12.00, 3.00, 3.00),
    "gpt-5.4": (2.50, 15.00, 0.25, 2.50),
    # Anthropic: a cache read costs 0.1× input, a (5-minute) cache write 1.25×.
    "claude-opus": (5.00, 25.00, 0.50, 6.25),
    "claude-sonnet": (3.00, 15.00, 0.30, 3.75),
    "claude-haiku": (1.00, 5.00, 0.10, 1.25),
    # Google (prompts up to 200k tokens); cached input 0.1× input.
    "gemini-2.5-computer-use-preview": (1.25, 10.00, 0.125, 1.25),
    "gemini-3-pro": (2.00, 12.00, 0.20, 2.00),
    "gemini-3-flash": (0.50, 3.00, 0.05, 0.50),
    "gemini-3.5-flash": (0.50, 3.00, 0.05, 0.50),
    "scripted": (0.0, 0.0, 0.0, 0.0),
}

_SHAPE = ('an object of model name → [input, output] or [input, output, cache read, cache write] USD '
          'per million tokens, e.g. {"gpt-5.4": [2.5, 15]}')
_MAX_PRICES_BYTES = 1 << 20


def prices() -> dict[str, Price]:
    """The price table; a ``CUA_PRICES`` file that cannot be used is a ``ConfigError`` naming it."""
    table = dict(DEFAULT_PRICES)
    path = os.environ.get("CUA_PRICES")
    if path:
        table.update(_read_prices(path))
    return table


def _read_prices(path: str) -> dict[str, Price]:
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
    table: dict[str, Price] = {}
    for model, given in data.items():
        if not (isinstance(given, list) and len(given) in (2, 4) and all(_is_price(p) for p in given)):
            raise ConfigError(f"{where}: the price of {model!r} must be [input, output] or [input, output, "
                              f"cache read, cache write], numbers of 0 or more, got {json.dumps(given)[:80]}")
        numbers = [float(p) for p in given]
        table[model] = (numbers[0], numbers[1], *(numbers[2:] or (numbers[0], numbers[0])))  # type: ignore[assignment]
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
    per_in, per_out, per_read, per_write = table[match]
    read = getattr(usage, "cache_read_tokens", 0) or 0
    written = getattr(usage, "cache_write_tokens", 0) or 0
    fresh = max(0, usage.input_tokens - read - written)  # input_tokens counts cached tokens too
    total = fresh * per_in + read * per_read + written * per_write + usage.output_tokens * per_out
    return round(total / 1_000_000, 6)
