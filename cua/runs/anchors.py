"""Anchors: what was under the point of a coordinate action, so a replay can find it again.

Two kinds, tried in this order on replay: the element (browser only: selector, test id, role and
name, text, box) and, in every environment, a small image crop around the point matched against
the new screenshot. The crop is not stored: ``cua.replay.matching`` cuts it at replay time from the
screenshot the model saw (the step's ``screen_before``), which the run folder already holds — so
recording an anchor costs one element lookup and no image work on the loop's hot path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..environments.base import Environment


async def capture_anchor(env: "Environment", x: int, y: int) -> dict[str, Any]:
    anchor: dict[str, Any] = {"x": x, "y": y}
    element = await env.anchor(x, y)
    if element:
        anchor["element"] = element
    return anchor
