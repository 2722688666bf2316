"""Find a recorded image crop in a new screenshot (replay healing in every environment)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

COARSE = 4  # search at 1/4 scale first, then refine at full scale
MAX_DIFF = 0.06
CANDIDATES = 8  # mean absolute difference (0..1) below which a crop counts as found


@dataclass(frozen=True)
class Match:
    x: int  # model-space centre of the match
    y: int
    diff: float


def _gray(png: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def _diffs(screen: np.ndarray, tmpl: np.ndarray) -> np.ndarray:
    th, tw = tmpl.shape
    if screen.shape[0] < th or screen.shape[1] < tw:
        return np.ones((1, 1), dtype=np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(screen, (th, tw))
    return np.abs(windows - tmpl).mean(axis=(2, 3))


def _best(screen: np.ndarray, tmpl: np.ndarray) -> tuple[int, int, float]:
    diff = _diffs(screen, tmpl)
    iy, ix = np.unravel_index(int(diff.argmin()), diff.shape)
    return int(ix), int(iy), float(diff[iy, ix])


def find_crop(crop_png: bytes, screen_png: bytes, *, max_diff: float = MAX_DIFF) -> Match | None:
    """Where the crop sits in the screen now (its centre), or None when nothing matches well."""
    crop, screen = _gray(crop_png), _gray(screen_png)
    th, tw = crop.shape
    if th < COARSE * 2 or tw < COARSE * 2:
        return None
    small = screen[: screen.shape[0] // COARSE * COARSE, : screen.shape[1] // COARSE * COARSE]
    small = small.reshape(small.shape[0] // COARSE, COARSE, small.shape[1] // COARSE, COARSE).mean(axis=(1, 3))
    tsmall = crop[: th // COARSE * COARSE, : tw // COARSE * COARSE]
    tsmall = tsmall.reshape(tsmall.shape[0] // COARSE, COARSE, tsmall.shape[1] // COARSE, COARSE).mean(axis=(1, 3))
    coarse = _diffs(small, tsmall)
    best: Match | None = None
    # Refine the few best distinct coarse hits at full resolution: the coarse scale can confuse
    # look-alikes, and the neighbours of one hit are no second opinion.
    for cx, cy in _distinct_minima(coarse, spacing=max(2, tsmall.shape[0] // 2)):
        x0, y0 = max(0, cx * COARSE - COARSE * 2), max(0, cy * COARSE - COARSE * 2)
        region = screen[y0 : y0 + th + COARSE * 4, x0 : x0 + tw + COARSE * 4]
        fx, fy, diff = _best(region, crop)
        if best is None or diff < best.diff:
            best = Match(x0 + fx + tw // 2, y0 + fy + th // 2, diff)
    if best is None or best.diff > max_diff:
        return None
    return best


def _distinct_minima(diff: np.ndarray, spacing: int) -> list[tuple[int, int]]:
    picked: list[tuple[int, int]] = []
    for flat in np.argsort(diff, axis=None)[: CANDIDATES * 64]:
        y, x = divmod(int(flat), diff.shape[1])
        if all(abs(x - px) > spacing or abs(y - py) > spacing for px, py in picked):
            picked.append((x, y))
            if len(picked) == CANDIDATES:
                break
    return picked
