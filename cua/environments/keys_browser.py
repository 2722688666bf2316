"""The one table from canonical key names (``cua.actions.normalize_key``) to Playwright key names.

Playwright resolves a key name through its US keyboard layout: it accepts a DOM ``KeyboardEvent.key``
value (``Enter``, ``ArrowLeft``, ``a``, ``/``) or a ``KeyboardEvent.code`` value (``Space``,
``Slash``, ``KeyA``). Numpad keys are only reachable through their code, so the plain character
``/`` is always the Slash key, never NumpadDivide. A character outside the US layout (``é``, ``€``)
has no key at all: it can only be inserted as text.
"""

from __future__ import annotations

import string

from ..actions import MODIFIERS, normalize_key
from ..errors import ModelOutputError

# Canonical name → Playwright name. Written out in full (even where the two are equal) so that
# what the browser backend supports is visible in one place and a new canonical name is a
# deliberate decision here, not a silent pass-through.
PLAYWRIGHT_KEYS: dict[str, str] = {
    "Control": "Control",
    "Meta": "Meta",
    "Alt": "Alt",
    "Shift": "Shift",
    "Escape": "Escape",
    "Enter": "Enter",
    "Tab": "Tab",
    "Space": "Space",  # the code name: key " " with the Space code
    "Backspace": "Backspace",
    "Delete": "Delete",
    "Insert": "Insert",
    "CapsLock": "CapsLock",
    "PageUp": "PageUp",
    "PageDown": "PageDown",
    "Home": "Home",
    "End": "End",
    "ArrowLeft": "ArrowLeft",
    "ArrowRight": "ArrowRight",
    "ArrowUp": "ArrowUp",
    "ArrowDown": "ArrowDown",
    "PrintScreen": "PrintScreen",
    "NumLock": "NumLock",
    "ScrollLock": "ScrollLock",
    "Pause": "Pause",
    "ContextMenu": "ContextMenu",
    **{f"F{n}": f"F{n}" for n in range(1, 13)},
    # Single characters that are keys themselves but are spelled differently by Playwright.
    " ": "Space",
    "\n": "Enter",
    "\r": "Enter",
    "\t": "Tab",
}

# Every printable ASCII character is a key (possibly shifted) of Playwright's US layout.
LAYOUT_CHARACTERS = frozenset(string.ascii_letters + string.digits + string.punctuation)


def playwright_key(name: str, *, where: str = "keypress") -> str:
    """The Playwright name of a model key name, or ``ModelOutputError`` naming the key.

    A lone character outside the US layout is returned unchanged: the caller inserts it as text
    (see ``is_text_only``); it cannot be part of a chord.
    """
    canonical = normalize_key(name, where=where)
    if canonical in PLAYWRIGHT_KEYS:
        return PLAYWRIGHT_KEYS[canonical]
    if len(canonical) == 1:
        return canonical
    raise ModelOutputError(f"{where}: key {name!r} has no browser key")


def is_text_only(key: str) -> bool:
    """True for a single character that no key of the layout produces (insert it as text)."""
    return len(key) == 1 and key not in LAYOUT_CHARACTERS


def chord_keys(names: list[str], *, where: str = "keypress") -> list[str]:
    """Map a whole chord before anything is pressed, so a bad name never leaves keys held down.

    With Control, Alt or Meta in the chord an upper-case letter is sent as its lower-case key:
    the model means Ctrl+A (select all), not Ctrl+Shift+A.
    """
    keys = [playwright_key(n, where=where) for n in names]
    if len(keys) > 1:
        for name, key in zip(names, keys):
            if is_text_only(key):
                raise ModelOutputError(
                    f"{where}: {name!r} is not a key of the keyboard and cannot be part of a chord"
                )
    if any(k in MODIFIERS and k != "Shift" for k in keys):
        keys = [k.lower() if len(k) == 1 and k.isalpha() else k for k in keys]
    return keys
