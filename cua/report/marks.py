"""How a recorded action is shown: the one place that decides what a click, drag or scroll mark
looks like, and how an action reads as text.

A steps.jsonl action record becomes a few plain shapes in screenshot pixels (the screenshot the
model saw is in model space, so its coordinates are the image's). Two small back-ends turn the
shapes into an SVG overlay (the HTML report: crisp at any zoom) or draw them with Pillow (the
GIF). Sizes are relative to the screenshot, so marks read the same on a small or a large screen.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from html import escape
from typing import Any, Iterable, Literal

Point = tuple[float, float]

# One colour per kind of mark; the report colours each action's number with it too.
COLORS: dict[str, str] = {
    "click": "#e5484d",
    "double_click": "#e5484d",
    "drag": "#f76b15",
    "scroll": "#0090ff",
    "move": "#30a46c",
    "healed": "#8b8d98",
}
MARKED = frozenset({"click", "double_click", "drag", "scroll", "move"})


@dataclass(frozen=True)
class Shape:
    """A drawing primitive: a ring or dot, a line, a filled polygon, or a numbered badge."""

    kind: Literal["circle", "line", "polygon", "badge"]
    points: tuple[Point, ...]
    color: str
    radius: float = 0.0
    width: float = 0.0  # stroke width; 0 means filled
    dashed: bool = False
    text: str = ""
    mark: str = ""  # the action kind this shape belongs to ("healed" for where a replay moved from)
    halo: bool = True  # drawn on a white halo so it reads on any page; faint secondary marks are not


# --- Reading action records ---------------------------------------------------------------------


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _xy(data: Any) -> Point | None:
    if isinstance(data, dict):
        x, y = _num(data.get("x")), _num(data.get("y"))
    elif isinstance(data, (list, tuple)) and len(data) >= 2:
        x, y = _num(data[0]), _num(data[1])
    else:
        return None
    return (x, y) if x is not None and y is not None else None


def action_of(record: Any) -> dict[str, Any]:
    """The action dict of a steps.jsonl action record (tolerates odd or partial records)."""
    if isinstance(record, dict) and isinstance(record.get("action"), dict):
        return record["action"]
    return {}


def healed_shift(record: Any) -> tuple[Point, Point] | None:
    """``(from, to)`` when a replay moved this action, else None."""
    healed = record.get("healed") if isinstance(record, dict) else None
    if not isinstance(healed, dict):
        return None
    start, end = _xy(healed.get("from")), _xy(healed.get("to"))
    return (start, end) if start and end else None


def action_points(record: Any) -> list[Point]:
    """Where the action acted, in screenshot pixels — after healing, when a replay moved it.

    A replay records the action as it ran, at the healed place; replays written before that
    kept the recorded place, so a first point still at ``from`` is moved by the healing."""
    action = action_of(record)
    if action.get("type") == "drag":
        path = action.get("path")
        points = [p for p in (_xy(item) for item in path) if p] if isinstance(path, list) else []
    else:
        point = _xy(action)
        points = [point] if point else []
    shift = healed_shift(record)
    if shift and points and points[0] == shift[0] != shift[1]:
        (fx, fy), (tx, ty) = shift
        points = [(x + tx - fx, y + ty - fy) for x, y in points]
    return points


# --- Text ---------------------------------------------------------------------------------------


def _int_text(value: float) -> str:
    return str(int(round(value)))


def _at(point: Point) -> str:
    return f"({_int_text(point[0])}, {_int_text(point[1])})"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_action(record: Any, limit: int = 80) -> str:
    """One line a reader understands: ``click (120, 40)``, ``type "hello"``, ``scroll down 300``."""
    action = action_of(record)
    kind = str(action.get("type") or "?")
    points = action_points(record)
    keys = action.get("keys") if isinstance(action.get("keys"), list) else None
    held = f" holding {'+'.join(str(k) for k in keys)}" if keys and kind != "keypress" else ""
    if kind == "click":
        button = action.get("button") or "left"
        what = "click" if button == "left" else f"{button}-click"
        text = f"{what} {_at(points[0])}" if points else what
    elif kind == "double_click":
        text = f"double-click {_at(points[0])}" if points else "double-click"
    elif kind == "move":
        text = f"move to {_at(points[0])}" if points else "move"
    elif kind == "drag":
        text = f"drag {_at(points[0])} → {_at(points[-1])}" if len(points) >= 2 else "drag"
        if len(points) > 2:
            text += f" via {len(points) - 2} point{'s' if len(points) > 3 else ''}"
    elif kind == "scroll":
        parts = []
        for amount, negative, positive in (
            (_num(action.get("scroll_y")), "up", "down"),
            (_num(action.get("scroll_x")), "left", "right"),
        ):
            if amount:
                parts.append(f"{positive if amount > 0 else negative} {_int_text(abs(amount))}")
        text = "scroll " + (" and ".join(parts) or "by 0")
        if points:
            text += f" at {_at(points[0])}"
    elif kind == "type":
        text = "type " + json.dumps(str(action.get("text", "")), ensure_ascii=False)
    elif kind == "keypress":
        text = "press " + "+".join(str(k) for k in (keys or [])) if keys else "press"
    elif kind == "wait":
        ms = _num(action.get("ms"))
        text = f"wait {_int_text(ms)} ms" if ms is not None else "wait"
    elif kind == "screenshot":
        text = "take a screenshot"
    else:
        text = kind
    return _clip(text + held, limit)


# --- Shapes -------------------------------------------------------------------------------------


def mark_unit(width: int, height: int) -> float:
    """The size every mark is measured in: 1 % of the screenshot's longer side."""
    return max(width, height, 200) / 100


def _arrow(points: list[Point], head: float, width: float, color: str) -> list[Shape]:
    """A polyline ending in an arrowhead; the line stops inside the head so its cap cannot show."""
    tail, tip = points[-2], points[-1]
    dx, dy = tip[0] - tail[0], tip[1] - tail[1]
    length = math.hypot(dx, dy)
    if length < 1e-6:
        return [Shape("line", tuple(points), color, width=width)]
    ux, uy = dx / length, dy / length
    back = (tip[0] - ux * head, tip[1] - uy * head)
    left = (back[0] - uy * head * 0.6, back[1] + ux * head * 0.6)
    right = (back[0] + uy * head * 0.6, back[1] - ux * head * 0.6)
    inside = (tip[0] - ux * head * 0.7, tip[1] - uy * head * 0.7)
    return [Shape("line", (*points[:-1], inside), color, width=width), Shape("polygon", (tip, left, right), color)]


def action_shapes(record: Any, unit: float, number: int | None = None) -> list[Shape]:
    """The shapes of one action record; ``number`` adds a numbered badge (several actions)."""
    kind = action_of(record).get("type")
    if kind not in MARKED:
        return []
    points = action_points(record)
    if not points:
        return []
    color = COLORS[kind]
    stroke = unit * 0.55
    shapes: list[Shape] = []
    shift = healed_shift(record)
    if shift:
        # Where the recording acted (a grey ring) and the way the replay moved it (dashed).
        start, end = shift
        ghost = COLORS["healed"]
        shapes.append(Shape("circle", (start,), ghost, radius=unit * 2.0, width=stroke * 0.8, mark="healed",
                            halo=False))
        shapes.append(Shape("line", (start, end), ghost, width=stroke * 0.8, dashed=True, mark="healed",
                            halo=False))
    x, y = points[0]
    if kind == "click":
        shapes.append(Shape("circle", (points[0],), color, radius=unit * 2.2, width=stroke))
        shapes.append(Shape("circle", (points[0],), color, radius=unit * 0.45))
    elif kind == "double_click":
        shapes.append(Shape("circle", (points[0],), color, radius=unit * 2.4, width=stroke))
        shapes.append(Shape("circle", (points[0],), color, radius=unit * 1.3, width=stroke))
        shapes.append(Shape("circle", (points[0],), color, radius=unit * 0.4))
    elif kind == "move":
        arm = unit * 1.4
        shapes.append(Shape("circle", (points[0],), color, radius=unit * 1.1, width=stroke * 0.8))
        shapes.append(Shape("line", ((x - arm, y), (x + arm, y)), color, width=stroke * 0.8))
        shapes.append(Shape("line", ((x, y - arm), (x, y + arm)), color, width=stroke * 0.8))
    elif kind == "drag":
        shapes.append(Shape("circle", (points[0],), color, radius=unit * 0.7))
        if len(points) >= 2:
            shapes.extend(_arrow(points, unit * 2.2, stroke, color))
    elif kind == "scroll":
        action = action_of(record)
        sx, sy = _num(action.get("scroll_x")) or 0.0, _num(action.get("scroll_y")) or 0.0
        shapes.append(Shape("circle", (points[0],), color, radius=unit * 0.7))
        length = math.hypot(sx, sy)
        if length:
            # Points the way the view moves: scroll_y > 0 reveals what is below.
            reach = unit * 7
            tip = (x + sx / length * reach, y + sy / length * reach)
            shapes.extend(_arrow([points[0], tip], unit * 2.4, stroke * 1.2, color))
    if number is not None:
        badge = (x + unit * 2.6, y - unit * 2.6)
        shapes.append(Shape("badge", (badge,), color, radius=unit * 1.7, text=str(number)))
    return [s if s.mark else replace(s, mark=kind) for s in shapes]


def step_shapes(actions: Any, width: int, height: int) -> list[Shape]:
    """Every mark of a step's actions, numbered by position when the step has several actions."""
    if not isinstance(actions, list):
        return []
    unit = mark_unit(width, height)
    several = len(actions) > 1
    shapes: list[Shape] = []
    for n, record in enumerate(actions, start=1):
        shapes.extend(action_shapes(record, unit, n if several else None))
    return shapes


def count_marks(actions: Any) -> int:
    """How many actions of a step leave a mark on the screenshot."""
    if not isinstance(actions, list):
        return 0
    return sum(1 for r in actions if action_of(r).get("type") in MARKED and action_points(r))


# --- Back-ends ----------------------------------------------------------------------------------


def _f(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg_one(shape: Shape, halo: bool, unit: float) -> str:
    # The white halo goes under every mark; the coloured shape names its action kind in a class.
    color = "#ffffff" if halo else shape.color
    extra = ' stroke-opacity="0.85"' if halo else f' class="m-{shape.mark}"' if shape.mark else ""
    if shape.dashed and not halo:
        extra += f' stroke-dasharray="{_f(unit)} {_f(unit * 0.7)}"'
    grow = 2.2 if halo else 1.0
    if shape.kind == "circle":
        (cx, cy), r = shape.points[0], shape.radius
        if shape.width:
            return (f'<circle cx="{_f(cx)}" cy="{_f(cy)}" r="{_f(r)}" fill="none" stroke="{color}" '
                    f'stroke-width="{_f(shape.width * grow)}"{extra}/>')
        r += unit * 0.25 if halo else 0
        return f'<circle cx="{_f(cx)}" cy="{_f(cy)}" r="{_f(r)}" fill="{color}"{extra}/>'
    if shape.kind == "line":
        pts = " ".join(f"{_f(x)},{_f(y)}" for x, y in shape.points)
        return (f'<polyline points="{pts}" fill="none" stroke="{color}" '
                f'stroke-width="{_f(shape.width * grow)}" stroke-linecap="round" '
                f'stroke-linejoin="round"{extra}/>')
    if shape.kind == "polygon":
        pts = " ".join(f"{_f(x)},{_f(y)}" for x, y in shape.points)
        outline = f' stroke="#ffffff" stroke-width="{_f(unit * 0.5)}" stroke-linejoin="round"' if halo else ""
        return f'<polygon points="{pts}" fill="{color}"{outline}{extra}/>'
    (cx, cy), r = shape.points[0], shape.radius
    if halo:
        return f'<circle cx="{_f(cx)}" cy="{_f(cy)}" r="{_f(r + unit * 0.25)}" fill="#ffffff"/>'
    return (f'<g class="badge"><circle cx="{_f(cx)}" cy="{_f(cy)}" r="{_f(r)}" fill="{color}"/>'
            f'<text x="{_f(cx)}" y="{_f(cy)}" fill="#ffffff" font-size="{_f(r * 1.3)}" '
            f'font-weight="700" text-anchor="middle" dominant-baseline="central" '
            f'font-family="system-ui,sans-serif">{escape(shape.text)}</text></g>')


def shapes_to_svg(shapes: Iterable[Shape], width: int, height: int, css_class: str = "marks") -> str:
    """An SVG overlay in the screenshot's pixel space; stretch it over the image to use it.

    Every mark is drawn on a white halo first so it reads on a dark or a light page alike.
    """
    shapes = list(shapes)
    if not shapes:
        return ""
    unit = mark_unit(width, height)
    marks = [s for s in shapes if s.kind != "badge"]
    badges = [s for s in shapes if s.kind == "badge"]
    body = "".join(_svg_one(s, True, unit) for s in marks if s.halo)
    body += "".join(_svg_one(s, False, unit) for s in marks)
    body += "".join(_svg_one(s, True, unit) + _svg_one(s, False, unit) for s in badges)
    return (f'<svg class="{escape(css_class)}" viewBox="0 0 {width} {height}" '
            f'preserveAspectRatio="none" aria-hidden="true">{body}</svg>')


def draw_shapes(image: Any, shapes: Iterable[Shape], scale: float = 1.0) -> None:
    """Draw shapes on a Pillow RGB image whose pixels are ``scale`` times the screenshot's."""
    from PIL import ImageDraw, ImageFont

    draw = ImageDraw.Draw(image)
    shapes = list(shapes)

    def pt(p: Point) -> tuple[float, float]:
        return p[0] * scale, p[1] * scale

    def stroke(shape: Shape, color: str, width: int) -> None:
        if shape.kind == "circle":
            cx, cy = pt(shape.points[0])
            r = shape.radius * scale
            box = (cx - r, cy - r, cx + r, cy + r)
            if shape.dashed:
                for start in range(0, 360, 30):
                    draw.arc(box, start, start + 18, fill=color, width=width)
            else:
                draw.ellipse(box, outline=color, width=width)
        elif shape.kind == "line":
            points = [pt(p) for p in shape.points]
            if shape.dashed:
                for a, b in zip(points, points[1:]):
                    _dashed_segment(draw, a, b, color, width, dash=max(4.0, width * 2.5))
            else:
                draw.line(points, fill=color, width=width, joint="curve")
                for x, y in (points[0], points[-1]):  # round caps
                    draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=color)

    for halo in (True, False):
        for shape in shapes:
            if shape.kind == "badge" or (halo and not shape.halo):
                continue
            color = "#ffffff" if halo else shape.color
            if shape.kind in ("circle", "line") and shape.width:
                width = max(1, round(shape.width * scale * (2.2 if halo else 1)))
                stroke(shape, color, width)
            elif shape.kind == "circle":
                cx, cy = pt(shape.points[0])
                r = shape.radius * scale + (1.5 if halo else 0)
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)
            elif shape.kind == "polygon":
                points = [pt(p) for p in shape.points]
                if halo:
                    draw.polygon(points, fill=color, outline=color, width=2)
                else:
                    draw.polygon(points, fill=color)
    for shape in shapes:
        if shape.kind != "badge":
            continue
        cx, cy = pt(shape.points[0])
        r = max(7.0, shape.radius * scale)
        draw.ellipse((cx - r - 1.5, cy - r - 1.5, cx + r + 1.5, cy + r + 1.5), fill="#ffffff")
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=shape.color)
        font = ImageFont.load_default(size=max(9, round(r * 1.3)))
        draw.text((cx, cy), shape.text, fill="#ffffff", font=font, anchor="mm")


def _dashed_segment(draw: Any, a: tuple[float, float], b: tuple[float, float], color: str,
                    width: int, dash: float) -> None:
    length = math.hypot(b[0] - a[0], b[1] - a[1])
    if length < 1e-6:
        return
    ux, uy = (b[0] - a[0]) / length, (b[1] - a[1]) / length
    pos = 0.0
    while pos < length:
        end = min(pos + dash, length)
        draw.line([(a[0] + ux * pos, a[1] + uy * pos), (a[0] + ux * end, a[1] + uy * end)],
                  fill=color, width=width)
        pos += dash * 1.7
