"""What a person did, as it reaches the recorder: one ``Gesture`` per input, already a typed action.

A capture (the browser's page script, X's RECORD extension) turns raw input into gestures; the
``Demonstration`` merges them (typed characters into one ``type``, a second click into a double
click) and groups them into steps. Gestures are in model space: the screenshot's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..actions import Action, Keypress, Type

# Key names as the recording writes them: the spelling OpenAI's computer tool uses, which every
# parser of cua reads (cua.actions.normalize_key). Single characters stay themselves.
_WRITTEN_KEYS = {
    "Control": "CTRL", "Alt": "ALT", "Shift": "SHIFT", "Meta": "META", "Escape": "ESC",
    "Enter": "ENTER", "Tab": "TAB", "Backspace": "BACKSPACE", "Delete": "DELETE", "Space": "SPACE",
    "ArrowLeft": "ARROWLEFT", "ArrowRight": "ARROWRIGHT", "ArrowUp": "ARROWUP", "ArrowDown": "ARROWDOWN",
    "Home": "HOME", "End": "END", "PageUp": "PAGEUP", "PageDown": "PAGEDOWN", "Insert": "INSERT",
    **{f"F{n}": f"F{n}" for n in range(1, 13)},
}
MODIFIER_ORDER = ("CTRL", "ALT", "SHIFT", "META")


def written_key(name: str) -> str | None:
    """A canonical (DOM) key name as a recording writes it; None for keys cua cannot replay."""
    if len(name) == 1:
        return name.lower() if name.isalpha() else name
    return _WRITTEN_KEYS.get(name)


def chord(modifiers: list[str], key: str | None = None) -> list[str]:
    """Written modifier names in a fixed order, then the key: ``["CTRL", "SHIFT", "k"]``."""
    held = [m for m in MODIFIER_ORDER if m in modifiers]
    return held + ([key] if key and key not in held else [])


@dataclass
class Gesture:
    """One thing the person did.

    ``element`` is the element under the point just before the action (browser captures only;
    the shape ``describe.js`` gives, with its box in model space); ``secret`` names the variable a
    ``type`` into a secret field becomes; ``count`` is the click count the platform saw (2 for the
    second click of a double click), which turns the click before it into a double click.
    """

    action: Action
    element: dict[str, Any] | None = None
    secret: str | None = None
    count: int = 1

    @property
    def commits(self) -> bool:
        """Whether the page may change because of it (a new step starts if it did): everything
        but typing text (and taking a character back)."""
        return not isinstance(self.action, Type) and not (
            isinstance(self.action, Keypress) and self.action.keys == ["BACKSPACE"])


@dataclass
class Mark:
    """A check the person asked for while recording (toolbar or hotkey), as a ``CheckSpec`` dict;
    a screenshot-region check's baseline is cut from the screen when the recorder takes it."""

    check: dict[str, Any]


Push = Callable[[Gesture | Mark], None]


def thin_path(path: list[tuple[int, int]], most: int = 16) -> list[tuple[int, int]]:
    """At most ``most`` points of a drag's path, evenly taken, first and last kept."""
    if len(path) <= most:
        return path
    step = (len(path) - 1) / (most - 1)
    return [path[round(i * step)] for i in range(most)]
