"""``summary.gif``: a run at a glance — one frame per screen the model saw, with its actions drawn.

Consecutive steps that saw the same screenshot share one frame (their marks drawn together), so
a model that waits or thinks twice does not stretch the animation. Pillow only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .marks import describe_action, draw_shapes, healed_shift, step_shapes
from ..runs.reader import read_run

MAX_WIDTH = 640
FRAME_MS = 1000
LAST_FRAME_MS = 2500  # linger on the end state before looping
CAPTION_FONT = 13
BAR_BG = (24, 26, 31)
BAR_FG = (236, 237, 240)
BAR_MUTED = (160, 163, 171)
STATUS_FG = {"completed": (70, 200, 120), "running": (90, 170, 240)}
FAILED_FG = (240, 100, 100)


def write_gif(run_dir: Path | str) -> Path:
    """Write ``summary.gif`` into the run folder and return its path (also for zero steps)."""
    from PIL import Image

    run_dir = Path(run_dir)
    meta, steps = read_run(run_dir)
    frames = [_frame(run_dir, screen, group, meta) for screen, group in _groups(steps)]
    if not frames:
        frames = [_frame(run_dir, meta.get("initial_screen"), [], meta)]
    palette_frames = [f.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
                      for f in frames]
    durations = [FRAME_MS] * (len(frames) - 1) + [LAST_FRAME_MS]
    out = run_dir / "summary.gif"
    tmp = out.with_name(f".summary.gif.{os.getpid()}.tmp")
    palette_frames[0].save(
        tmp, format="GIF", save_all=True, append_images=palette_frames[1:], duration=durations,
        loop=0, optimize=False, disposal=1,
    )
    os.replace(tmp, out)
    return out


def _groups(steps: list[dict[str, Any]]) -> list[tuple[str | None, list[dict[str, Any]]]]:
    """Steps grouped by the screenshot they saw; a new group starts when the screen changes."""
    groups: list[tuple[str | None, list[dict[str, Any]]]] = []
    for step in steps:
        screen = step.get("screen_before")
        if groups and groups[-1][0] == screen:
            groups[-1][1].append(step)
        else:
            groups.append((screen, [step]))
    return groups


def _load(run_dir: Path, rel: Any) -> Any:
    from PIL import Image, UnidentifiedImageError

    if not isinstance(rel, str) or not rel:
        return None
    root = run_dir.resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError):
        return None


def _caption(group: list[dict[str, Any]], meta: dict[str, Any]) -> tuple[str, str, tuple[int, int, int]]:
    """Title line, detail line and the title's colour for one frame."""
    if not group:
        status = str(meta.get("status") or "")
        return "No steps recorded", status, BAR_MUTED
    numbers = [str(s.get("step")) for s in group]
    title = f"Step {numbers[0]}" if len(numbers) == 1 else f"Steps {numbers[0]}–{numbers[-1]}"
    parts: list[str] = []
    color = BAR_FG
    # Numbered across the whole frame, like the marks drawn on it.
    actions = _actions(group)
    n = 0
    for step in group:
        for record in _actions([step]):
            n += 1
            text = describe_action(record, 48 if len(actions) > 1 else 60)
            text += " (healed)" if healed_shift(record) else ""
            parts.append(f"{n}. {text}" if len(actions) > 1 else text)
        for call in step.get("functions") or []:
            if isinstance(call, dict):
                parts.append(f"{call.get('name')}()")
        diverged = step.get("diverged")
        if isinstance(diverged, dict):
            parts.append(f"diverged: {diverged.get('reason') or ''}")
            color = FAILED_FG
        if step.get("final"):
            status = str(meta.get("status") or "done")
            text = " ".join(str(step.get("text") or "").split())
            parts.append(f"{status}: {text}" if text else status)
            color = STATUS_FG.get(status, FAILED_FG)
    return title, " · ".join(parts) or "(no action)", color


def _actions(group: list[dict[str, Any]]) -> list[Any]:
    return [a for step in group for a in (step.get("actions") if isinstance(step.get("actions"), list) else [])]


def _font(size: int, bold: bool) -> Any:
    """DejaVu Sans when the system has it (it has arrows and most scripts), else Pillow's own."""
    from PIL import ImageFont

    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def _fit(draw: Any, text: str, font: Any, width: float) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _frame(run_dir: Path, rel: Any, group: list[dict[str, Any]], meta: dict[str, Any]) -> Any:
    from PIL import Image, ImageDraw

    shot = _load(run_dir, rel)
    if shot is None:
        shot = Image.new("RGB", (MAX_WIDTH, MAX_WIDTH * 9 // 16), (233, 234, 238))
        ImageDraw.Draw(shot).text((20, 20), "no screenshot", fill=(110, 112, 120), font=_font(16, False))
    width, height = shot.size
    scale = min(1.0, MAX_WIDTH / width)
    if scale < 1.0:
        shot = shot.resize((round(width * scale), round(height * scale)), Image.LANCZOS)
    draw_shapes(shot, step_shapes(_actions(group), width, height), scale)

    font, bold = _font(CAPTION_FONT, False), _font(CAPTION_FONT + 1, True)
    pad, line = 10, CAPTION_FONT + 6
    bar = pad * 2 + line * 2
    frame = Image.new("RGB", (shot.width, shot.height + bar), BAR_BG)
    frame.paste(shot, (0, 0))
    draw = ImageDraw.Draw(frame)
    title, detail, color = _caption(group, meta)
    y = shot.height + pad
    draw.text((pad, y), title, fill=color, font=bold)
    task = " ".join(str(meta.get("task") or "").split())
    offset = pad + draw.textlength(title, font=bold) + 12
    draw.text((offset, y + 1), _fit(draw, task, font, frame.width - offset - pad), fill=BAR_MUTED, font=font)
    draw.text((pad, y + line), _fit(draw, detail, font, frame.width - 2 * pad), fill=BAR_FG, font=font)
    return frame
