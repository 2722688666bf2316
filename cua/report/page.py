"""What the run report and the index page are both made of: escaping, the embedded screenshots,
the formatting of run facts, the status badge, and the resource files beside this module."""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THUMB_WIDTH = 640  # timeline thumbnails: sharp at the ~440 CSS px they are shown at, on a 1.5× screen
INDEX_THUMB_WIDTH = 240
THUMB_QUALITY = 72
# No network at all; inline styles; images only from data URLs. Scripts: only the report's own.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def escape(value: Any) -> str:
    """Escaped text for HTML content and attribute values; None is empty."""
    return "" if value is None else html.escape(str(value), quote=True)

@dataclass
class Screen:
    key: str  # CSS class and JSON key
    width: int
    height: int
    thumb: str  # data URL
    full: str | None  # data URL, None when the thumbnail already is the full image


def _jpeg(img: Any, quality: int) -> bytes:
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=quality, optimize=True, subsampling=0 if quality >= 85 else 2)
    return out.getvalue()


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


class Screens:
    """The run's distinct screenshots, each loaded and encoded once."""

    def __init__(self, run_dir: Path, thumb_width: int = THUMB_WIDTH, with_full: bool = True) -> None:
        self.run_dir = run_dir.resolve()
        self.thumb_width = thumb_width
        self.with_full = with_full
        self._by_path: dict[str, Screen | None] = {}
        self.screens: list[Screen] = []

    def get(self, rel: Any) -> Screen | None:
        if not isinstance(rel, str) or not rel:
            return None
        if rel not in self._by_path:
            self._by_path[rel] = self._load(rel)
        return self._by_path[rel]

    def _load(self, rel: str) -> Screen | None:
        from PIL import Image, UnidentifiedImageError

        path = (self.run_dir / rel).resolve()
        if not path.is_relative_to(self.run_dir) or not path.is_file():
            return None  # only the run's own files are embedded
        raw = path.read_bytes()
        try:
            with Image.open(io.BytesIO(raw)) as img:
                rgb = img.convert("RGB")
        except (UnidentifiedImageError, OSError):
            return None
        width, height = rgb.size
        png = _data_url("image/png", raw) if raw[:8] == b"\x89PNG\r\n\x1a\n" else None
        if width <= self.thumb_width and png and len(raw) < 60_000:
            thumb, full = png, None  # a small image is its own thumbnail
        else:
            small = rgb.copy()
            small.thumbnail((self.thumb_width, self.thumb_width * 4), Image.LANCZOS)
            thumb = _data_url("image/jpeg", _jpeg(small, THUMB_QUALITY))
            full = None
            if self.with_full:
                # Lossless unless a high-quality JPEG is much smaller (photos, gradients).
                jpeg = _jpeg(rgb, 90)
                full = png if png and len(raw) <= len(jpeg) * 1.5 else _data_url("image/jpeg", jpeg)
        screen = Screen(f"i{len(self.screens)}", width, height, thumb, full)
        self.screens.append(screen)
        return screen

    def css(self) -> str:
        return "\n".join(f".{s.key}{{background-image:url({s.thumb})}}" for s in self.screens)

    def full_json(self) -> str:
        data = {s.key: s.full for s in self.screens if s.full}
        return json.dumps(data).replace("</", "<\\/")

def num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

def duration(value: Any) -> str:
    seconds = num(value)
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"

def count(value: Any) -> str:
    n = num(value)
    return "—" if n is None else f"{int(n):,}"


def cost(value: Any) -> str:
    cost = num(value)
    if cost is None:
        return "—"
    return f"${cost:.4f}" if 0 < cost < 0.01 else f"${cost:.2f}"


def usage_of(usage: Any) -> dict[str, Any]:
    return usage if isinstance(usage, dict) else {}


def model_name(settings: Any) -> str:
    """``provider · model``, as the run recorded them; an older run folder names the model only."""
    settings = settings if isinstance(settings, dict) else {}
    model, provider = settings.get("model") or "—", settings.get("provider")
    return f"{provider} · {model}" if provider else str(model)

STATUS_LABELS = {"running": "did not finish", "max_steps": "max steps", "safety_denied": "safety denied"}
STATUS_TONES = {
    "completed": "ok", "failed": "bad", "error": "bad", "diverged": "bad",
    "max_steps": "warn", "timeout": "warn", "safety_denied": "warn",
    "interrupted": "muted", "running": "info",
}


def status_badge(status: Any, big: bool = False) -> str:
    status = str(status or "unknown")
    label = STATUS_LABELS.get(status, status)
    tone = STATUS_TONES.get(status, "muted")
    size = " big" if big else ""
    return f'<span class="status {tone}{size}" data-status="{escape(status)}">{escape(label)}</span>'

def final_screen(meta: dict[str, Any], steps: list[dict[str, Any]]) -> Any:
    """The last screen of the run, also of one that was killed before writing ``final_screen``."""
    if meta.get("final_screen"):
        return meta["final_screen"]
    for step in reversed(steps):
        for key in ("screen_after", "screen_before"):
            if isinstance(step, dict) and step.get(key):
                return step[key]
    return meta.get("initial_screen")

def resource(name: str) -> str:
    return "\n" + (Path(__file__).parent / name).read_text(encoding="utf-8")


BASE_CSS = resource("base.css")
