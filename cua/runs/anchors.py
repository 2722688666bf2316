"""Anchors: what was under the point of a coordinate action, so a replay can find it again.

Two kinds, tried in this order on replay: the element (browser only: selector, test id, role and
name, text, box) and, in every environment, a small image crop around the point matched against
the new screenshot. The crop is not stored: it is cut at replay time from the screenshot the model
saw (the step's ``screen_before``), which the run folder already holds — so recording an anchor
costs one element lookup and no image work on the loop's hot path.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..environments.base import Environment

CROP_HALF = 24  # a 48×48 crop: big enough to be distinctive, small enough to search fast


def crop_around(png: bytes, x: int, y: int, half: int = CROP_HALF) -> tuple[bytes, dict[str, int]]:
    """A PNG crop centred on (x, y), clipped to the image, and its box in model space."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        left, top = max(0, x - half), max(0, y - half)
        right, bottom = min(img.width, x + half), min(img.height, y + half)
        crop = img.convert("RGB").crop((left, top, right, bottom))
    out = io.BytesIO()
    crop.save(out, format="PNG")
    return out.getvalue(), {"x": left, "y": top, "width": right - left, "height": bottom - top}


async def capture_anchor(env: "Environment", x: int, y: int) -> dict[str, Any]:
    anchor: dict[str, Any] = {"x": x, "y": y}
    element = await env.anchor(x, y)
    if element:
        anchor["element"] = element
    return anchor
