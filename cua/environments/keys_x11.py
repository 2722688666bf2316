"""The one table from canonical key names (see ``cua.actions.normalize_key``) to X keysym names.

xdotool resolves keysym names (``Return``, ``BackSpace``, ``Control_L``, ``slash``); DOM-style
names such as ``Enter`` or a bare ``/`` are not keysyms, so every key goes through ``x_keysym``.
"""

from __future__ import annotations

from ..actions import MODIFIERS, normalize_key
from ..errors import ModelOutputError

# Canonical named keys → keysyms. Left-hand modifiers: what a user's keyboard sends by default.
NAMED_KEYSYMS: dict[str, str] = {
    "Control": "Control_L",
    "Shift": "Shift_L",
    "Alt": "Alt_L",
    "Meta": "Super_L",
    "Enter": "Return",
    "Escape": "Escape",
    "Tab": "Tab",
    "Space": "space",
    "Backspace": "BackSpace",
    "Delete": "Delete",
    "Insert": "Insert",
    "CapsLock": "Caps_Lock",
    "PageUp": "Page_Up",
    "PageDown": "Page_Down",
    "Home": "Home",
    "End": "End",
    "ArrowLeft": "Left",
    "ArrowRight": "Right",
    "ArrowUp": "Up",
    "ArrowDown": "Down",
    "PrintScreen": "Print",
    "NumLock": "Num_Lock",
    "ScrollLock": "Scroll_Lock",
    "Pause": "Pause",
    "ContextMenu": "Menu",
    **{f"F{n}": f"F{n}" for n in range(1, 13)},
}

# Printable ASCII characters whose keysym name differs from the character itself.
CHAR_KEYSYMS: dict[str, str] = {
    " ": "space", "!": "exclam", '"': "quotedbl", "#": "numbersign", "$": "dollar",
    "%": "percent", "&": "ampersand", "'": "apostrophe", "(": "parenleft", ")": "parenright",
    "*": "asterisk", "+": "plus", ",": "comma", "-": "minus", ".": "period", "/": "slash",
    ":": "colon", ";": "semicolon", "<": "less", "=": "equal", ">": "greater", "?": "question",
    "@": "at", "[": "bracketleft", "\\": "backslash", "]": "bracketright", "^": "asciicircum",
    "_": "underscore", "`": "grave", "{": "braceleft", "|": "bar", "}": "braceright",
    "~": "asciitilde", "\n": "Return", "\r": "Return", "\t": "Tab",
}


def x_keysym(canonical: str) -> str:
    """The keysym name xdotool understands for one canonical key name."""
    if canonical in NAMED_KEYSYMS:
        return NAMED_KEYSYMS[canonical]
    if len(canonical) == 1:
        if canonical in CHAR_KEYSYMS:
            return CHAR_KEYSYMS[canonical]
        if canonical.isascii() and canonical.isalnum():
            return canonical
        if canonical.isprintable():
            # Any other character: X's Unicode keysym form; xdotool maps a spare keycode to it.
            return f"U{ord(canonical):04X}"
    raise ModelOutputError(f"keypress: key {canonical!r} has no X keysym")


def chord_keysyms(keys: list[str], *, where: str = "keypress") -> list[str]:
    """Keysyms for a chord, in the order given.

    A letter pressed together with a modifier is the letter's key, not its shifted character:
    models write ``["CTRL", "A"]`` for select-all, and ``Control_L+A`` would add a Shift.
    """
    canonical = [normalize_key(k, where=where) for k in keys]
    with_modifier = any(k in MODIFIERS for k in canonical)
    return [
        x_keysym(k.lower() if with_modifier and len(k) == 1 and k.isalpha() else k)
        for k in canonical
    ]
