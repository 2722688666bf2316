"""Find a recorded image crop in a new screenshot (replay healing in every environment).

The search is exact and at full resolution: the mean squared difference of the crop against
every position of the screen, computed with FFT correlation and an integral image, so a crop that
is on the screen pixel for pixel is always found, at any offset. Look-alikes (two empty text
fields, rows of a list) are the real difficulty: ``locate`` grows the crop around the point until
one match stands out, and when none does, takes the look-alike nearest to where the target was.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

MAX_DIFF = 0.01  # mean squared difference (0..1) below which a crop counts as found
CROP_HALVES = (24, 48, 96)  # crop sizes tried, smallest first: small crops survive layout changes
# A second match this close to the best makes the best ambiguous.
AMBIGUOUS_RATIO, AMBIGUOUS_MARGIN = 2.0, 1e-4


@dataclass(frozen=True)
class Match:
    x: int  # model-space centre of the match
    y: int
    diff: float


def gray(png: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        return np.asarray(img.convert("L"), dtype=np.float64) / 255.0


def _diff_map(screen: np.ndarray, tmpl: np.ndarray) -> np.ndarray:
    """Mean squared difference of ``tmpl`` at every top-left position of ``screen``."""
    (H, W), (h, w) = screen.shape, tmpl.shape
    shape = (H + h - 1, W + w - 1)
    corr = np.fft.irfft2(np.fft.rfft2(screen, shape) * np.fft.rfft2(tmpl[::-1, ::-1], shape), shape)
    corr = corr[h - 1 : H, w - 1 : W]
    ii = np.pad(np.cumsum(np.cumsum(screen * screen, axis=0), axis=1), ((1, 0), (1, 0)))
    window = ii[h:, w:] - ii[:-h, w:] - ii[h:, :-w] + ii[:-h, :-w]
    return np.maximum(window - 2 * corr + float((tmpl * tmpl).sum()), 0.0) / (h * w)


def candidates(tmpl: np.ndarray, screen: np.ndarray, count: int = 3) -> list[Match]:
    """The best ``count`` distinct positions (centres), best first; no two overlap by over half."""
    h, w = tmpl.shape
    if screen.shape[0] < h or screen.shape[1] < w:
        return []
    diff = _diff_map(screen, tmpl)
    found: list[Match] = []
    for _ in range(count):
        iy, ix = np.unravel_index(int(diff.argmin()), diff.shape)
        value = float(diff[iy, ix])
        if not np.isfinite(value):
            break
        found.append(Match(int(ix) + w // 2, int(iy) + h // 2, value))
        diff[max(0, iy - h // 2) : iy + h // 2 + 1, max(0, ix - w // 2) : ix + w // 2 + 1] = np.inf
    return found


def find_crop(crop_png: bytes, screen_png: bytes, *, max_diff: float = MAX_DIFF) -> Match | None:
    """Where the crop sits in the screen now (its centre), or None when nothing matches well."""
    best = candidates(gray(crop_png), gray(screen_png), count=1)
    return best[0] if best and best[0].diff <= max_diff else None


def _crop(image: np.ndarray, x: int, y: int, half: int) -> tuple[np.ndarray, int, int]:
    top, left = max(0, y - half), max(0, x - half)
    crop = image[top : y + half, left : x + half]
    return crop, x - left, y - top  # the point's offset inside the crop


def locate(seen_png: bytes, live_png: bytes, x: int, y: int) -> tuple[int, int, float] | None:
    """Where the point (x, y) of the recorded screen is on the live screen, or None.

    Returns the new point and the match's difference. The crop around the point grows until its
    best match is clearly better than the second best; failing that, the nearest look-alike wins.
    """
    seen, live = gray(seen_png), gray(live_png)
    ambiguous: list[Match] = []
    offset = (0, 0)
    for half in CROP_HALVES:
        crop, ox, oy = _crop(seen, x, y, half)
        found = [m for m in candidates(crop, live) if m.diff <= MAX_DIFF]
        if not found:
            if half == CROP_HALVES[0]:
                return None  # not even the close-up is anywhere on the screen
            break  # a larger crop took in surroundings that changed: keep what the smaller found
        h, w = crop.shape
        offset = (ox - w // 2, oy - h // 2)
        best = found[0]
        close = best.diff * AMBIGUOUS_RATIO + AMBIGUOUS_MARGIN
        if len(found) == 1 or found[1].diff > close:
            return best.x + offset[0], best.y + offset[1], best.diff
        ambiguous = [m for m in found if m.diff <= close]
        ambiguous = [Match(m.x + offset[0], m.y + offset[1], m.diff) for m in ambiguous]
    if not ambiguous:
        return None
    nearest = min(ambiguous, key=lambda m: (m.x - x) ** 2 + (m.y - y) ** 2)
    return nearest.x, nearest.y, nearest.diff
