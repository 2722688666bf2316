"""Prices of all three vendors' models, cached input priced on its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cua.pricing import cost_of
from cua.providers.base import Usage


@pytest.mark.parametrize("model, expected", [
    ("gpt-5.4", 2.50 + 15.00),
    ("claude-sonnet-5-5", 3.00 + 15.00),
    ("claude-opus-4-5-20251101", 5.00 + 25.00),
    ("gemini-3.5-flash", 0.50 + 3.00),
    ("gemini-2.5-computer-use-preview-10-2025", 1.25 + 10.00),
])
def test_every_vendor_has_list_prices(model: str, expected: float) -> None:
    assert cost_of(model, Usage(input_tokens=1_000_000, output_tokens=1_000_000)) == pytest.approx(expected)


def test_cache_reads_and_writes_are_priced_apart_from_fresh_input() -> None:
    # 1M input of which 600k read from the cache and 200k written to it: Sonnet's 0.1× and 1.25×.
    usage = Usage(input_tokens=1_000_000, cache_read_tokens=600_000, cache_write_tokens=200_000)
    assert cost_of("claude-sonnet-5-5", usage) == pytest.approx(0.2 * 3.00 + 0.6 * 0.30 + 0.2 * 3.75)


def test_a_prices_file_may_give_two_or_four_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"my-proxy-alias": [1, 2], "claude-sonnet": [10, 20, 1, 12]}))
    monkeypatch.setenv("CUA_PRICES", str(path))
    cached = Usage(input_tokens=1_000_000, cache_read_tokens=1_000_000)
    assert cost_of("my-proxy-alias", cached) == pytest.approx(1.0)  # two numbers: cached pays input
    assert cost_of("claude-sonnet-5-5", cached) == pytest.approx(1.0)
    assert cost_of("unknown-model", cached) is None
