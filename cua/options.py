"""Option values the CLI and the pytest plugin parse the same way (both are argparse)."""

from __future__ import annotations

import argparse

MAX_RETRIES = 10


def retry_count(value: str) -> int:
    """``--retries`` / ``--cua-retries``: a whole number of retries, 0 to 10."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if not 0 <= n <= MAX_RETRIES:
        raise argparse.ArgumentTypeError(f"takes 0 to {MAX_RETRIES} retries, got {n}")
    return n
