"""A demonstration becomes steps: the same steps.jsonl a model run writes.

Gestures arrive in order. Typed characters join the ``type`` before them, a Backspace takes back
the last of them, and a click the platform counted as the second (third) of a series turns the
click before it into a double (triple) click. After a gesture that may change the page (anything
but typing) the ``Demonstration`` waits for the screen to settle and compares it with the screen
the current step began with: a navigation, or more than a few pixels changed, starts a new step,
whose ``screen_before`` is that screenshot. A step is written to the run folder as soon as the next
one has an action (nothing can change it any more), so a recording killed mid-way keeps its steps.

Text typed into a secret field is written as ``{{name}}``; its value goes to the run's
``Redactor`` and nowhere else.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from ..actions import Click, DoubleClick, Keypress, Navigate, TripleClick, Type, action_to_wire
from ..environments.base import Environment
from ..redact import Redactor
from ..runs.writer import RunTrace
from .gestures import Gesture

# Pixels that must differ (by more than CHANGED_LEVEL of 255) for the screen to count as changed:
# more than a text caret's blink, fewer than a focus ring or a ticked checkbox.
CHANGED_PIXELS = 24
CHANGED_LEVEL = 24
# Two clicks this close (model pixels) are one double click when the platform counted them so.
SAME_PLACE = 6


@dataclass
class _Step:
    screen_before: str
    png: bytes
    url: str | None
    started: float
    entries: list[dict[str, Any]] = field(default_factory=list)
    # Typed text still growing: (index in entries, the secret field's name as the capture sent it,
    # the variable it became; both None for plain text).
    typing: tuple[int, str | None, str | None] | None = None


def screen_changed(before: bytes, after: bytes) -> bool:
    """Whether two screenshots differ by more than a caret's blink."""
    if before == after:
        return False
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(before)).convert("L"), dtype=np.int16)
    b = np.asarray(Image.open(io.BytesIO(after)).convert("L"), dtype=np.int16)
    if a.shape != b.shape:
        return True
    return int((np.abs(a - b) > CHANGED_LEVEL).sum()) > CHANGED_PIXELS


class Demonstration:
    """Builds the steps of one recording in ``trace`` from the gestures given to ``add``."""

    def __init__(self, env: Environment, trace: RunTrace, redactor: Redactor, *,
                 screenshot: Callable[[], Awaitable[bytes]] | None = None) -> None:
        self.env = env
        self.trace = trace
        self.redactor = redactor
        self._shoot = screenshot or env.screenshot
        self.written_steps: list[dict[str, Any]] = []  # as written: secrets masked
        self.last_url: str | None = None
        self.steps_written = 0
        self.actions = 0
        self.secrets: dict[str, dict[str, Any]] = {}  # variable name -> {"description": ...}
        self._secret_values: dict[str, str] = {}
        self._step: _Step | None = None
        self._last_png = b""
        self._entries: list[dict[str, Any]] = []  # every action, in order (for progress lines)
        self._announced = 0
        # The step closed last, whose record waits in _pending until the next step has an action.
        self._previous: _Step | None = None
        self._pending: dict[str, Any] | None = None

    # -- the screen --------------------------------------------------------------------------------
    async def _capture(self) -> tuple[bytes, str, str | None]:
        await self.env.settle()
        png = await self._shoot()
        self._last_png = png
        self.last_url = await self.env.current_url()
        return png, self.trace.save_screenshot(png), self.last_url

    async def capture_now(self) -> bytes:
        """The screen as it is now, settled (for a region check's baseline)."""
        png, _, _ = await self._capture()
        return png

    async def begin(self) -> str:
        """Capture the screen the demonstration starts from; returns its path in the run folder."""
        png, rel, url = await self._capture()
        self._step = _Step(rel, png, url, self.trace.elapsed())
        self.trace.update(initial_screen=rel)
        return rel

    @property
    def last_screenshot(self) -> bytes:
        return self._last_png

    async def settled(self, *, typed: bool = False) -> None:
        """After a gesture that may have changed the page: start a new step if it did. After
        typing (``typed``) a step that has no action yet starts from the screen with the text."""
        step = self._step
        assert step is not None, "begin() first"
        if typed and step.entries:
            return
        png, rel, url = await self._capture()
        if url == step.url and not screen_changed(step.png, png):
            return
        if not step.entries:  # nothing done on the old screen yet: the step just starts from this one
            step.screen_before, step.png, step.url = rel, png, url
            return
        self._close(step, rel, url)
        self._step = _Step(rel, png, url, self.trace.elapsed())

    # -- gestures ----------------------------------------------------------------------------------
    def add(self, gesture: Gesture) -> None:
        step = self._step
        assert step is not None, "begin() first"
        action = gesture.action
        if isinstance(action, Type):
            growing = self._typing_step()
            if growing is not None and growing.typing is not None and growing.typing[1] == gesture.secret:
                self._type(growing, action.text, gesture.secret)
                return
            # Text typed right after the click that began a new step belongs with that click.
            previous = self._previous
            after_click = previous is not None and not step.entries and previous.url == step.url and \
                previous.entries[-1]["action"].get("type") in ("click", "double_click", "triple_click")
            typing_step = previous if after_click and previous is not None else step
            self._type(typing_step, action.text, gesture.secret)
            return
        if isinstance(action, Keypress) and gesture.secret and len(action.keys[-1]) == 1:
            # A character typed with AltGr or Option held into a secret field is part of the secret.
            self.add(Gesture(Type(text=action.keys[-1]), secret=gesture.secret))
            return
        if isinstance(action, Keypress) and action.keys == ["BACKSPACE"] and any(
                self._take_back(s) for s in (step, self._previous) if s is not None and s is self._typing_step()):
            return
        if isinstance(action, Click) and gesture.count > 1 and self._upgrade(gesture):
            return
        step.typing = None
        entry: dict[str, Any] = {"action": action_to_wire(action), "ms": 0}
        points = action.points()
        if points and not isinstance(action, Navigate):
            x, y = points[0]
            entry["anchor"] = {"x": x, "y": y, **({"element": gesture.element} if gesture.element else {})}
        self._append(step, entry)

    def _typing_step(self) -> _Step | None:
        """The step whose last action is text still being typed."""
        for step in (self._step, self._previous):
            if step is not None and step.entries:
                return step if step.typing is not None and step.typing[0] == len(step.entries) - 1 else None
        return None

    def _append(self, step: _Step, entry: dict[str, Any]) -> None:
        if step is self._step and not step.entries:
            self._flush_previous()
        for other in (self._step, self._previous):
            if other is not None and other is not step:
                other.typing = None
        step.entries.append(entry)
        self._entries.append(entry)
        self.actions += 1

    def finished_actions(self) -> list[tuple[int, dict[str, Any]]]:
        """The actions complete since the last call, numbered (text still being typed is not),
        each as it will be written: a secret's text as its ``{{name}}``."""
        growing = self._typing_step()
        last = growing.entries[-1] if growing is not None else None
        done = [e for e in self._entries[self._announced:] if e is not last]
        first = self._announced + 1
        self._announced += len(done)
        return [(first + n, {**e, "action": {**e["action"], "text": "{{" + e["secret"] + "}}"}} if e.get("secret") else e)
                for n, e in enumerate(done)]

    def _type(self, step: _Step, text: str, field: str | None) -> None:
        if step.typing is not None and step.typing[1] == field and step.typing[0] == len(step.entries) - 1:
            index, _, variable = step.typing
            step.entries[index]["action"]["text"] += text
            if variable:
                self._secret_values[variable] += text
            return
        variable = self._new_secret(field) if field else None
        if variable:
            self._secret_values[variable] = text
        self._append(step, {"action": {"type": "type", "text": text}, "ms": 0,
                            **({"secret": variable} if variable else {})})
        step.typing = (len(step.entries) - 1, field, variable)

    def _take_back(self, step: _Step) -> bool:
        """Backspace right after typing deletes the last typed character (the caret is after it)."""
        if step.typing is None or step.typing[0] != len(step.entries) - 1:
            return False
        index, _, secret = step.typing
        text = step.entries[index]["action"]["text"]
        if not text:
            return False
        step.entries[index]["action"]["text"] = text[:-1]
        if secret:
            self._secret_values[secret] = self._secret_values[secret][:-1]
        return True

    def _upgrade(self, gesture: Gesture) -> bool:
        """Turn the last click into a double (triple) click; False when it is not that click."""
        action = gesture.action
        assert isinstance(action, Click)
        for step in (self._step, self._previous):
            if step is None or not step.entries:
                continue
            last = step.entries[-1]["action"]
            wanted = "click" if gesture.count == 2 else "double_click"
            if last.get("type") != wanted or last.get("button", "left") != "left" or action.button != "left" \
                    or abs(last["x"] - action.x) > SAME_PLACE or abs(last["y"] - action.y) > SAME_PLACE:
                return False
            upgraded = (DoubleClick if gesture.count == 2 else TripleClick)(
                x=last["x"], y=last["y"], keys=last.get("keys"))
            step.entries[-1]["action"] = action_to_wire(upgraded)
            return True
        return False

    # -- steps -------------------------------------------------------------------------------------
    def _close(self, step: _Step, screen_after: str, url: str | None) -> None:
        step.entries = [e for e in step.entries if not (e["action"].get("type") == "type" and not e["action"]["text"])]
        record = {
            "step": 0,  # numbered when written
            "screen_before": step.screen_before,
            "elapsed_s": round(step.started, 3),
            "items": [],
            "reasoning": "",
            "text": "",
            "actions": step.entries,
            "functions": [],
            "safety_checks": [],
            "screen_after": screen_after,
            "url": url,
        }
        self._previous = step
        self._pending = record

    def _flush_previous(self) -> None:
        """Write the closed step before the current one: nothing can change it any more."""
        record, self._pending, self._previous = self._pending, None, None
        if record is None or not record["actions"]:
            return
        for entry in record["actions"]:
            secret = entry.pop("secret", None)
            if secret:
                self.redactor.add(secret, self._secret_values.get(secret))
                entry["action"]["text"] = "{{" + secret + "}}"
        self.steps_written += 1
        record["step"] = self.steps_written
        self.written_steps.append(self.redactor.obj(record))
        self.trace.append_step(record)
        self.trace.update(steps=self.steps_written)

    def _new_secret(self, name: str) -> str:
        base, n = name, 1
        while name in self.secrets:
            n += 1
            name = f"{base}_{n}"
        self.secrets[name] = {"description": "typed into a secret field while recording"}
        return name

    @property
    def secret_values(self) -> dict[str, str]:
        return dict(self._secret_values)

    async def finish(self, *, capture: bool = True) -> None:
        """Close the last step on the screen as it is now (or, with the window gone, as it was
        last seen) and write everything still held."""
        step = self._step
        if step is None:
            return
        self._step = None
        if step.entries:
            rel, url = (self.trace.save_screenshot(self._last_png) if self._last_png else None), self.last_url
            if capture:
                try:
                    _, rel, url = await self._capture()
                except Exception:  # the browser went away as it was read: keep what was seen last
                    pass
            self._close(step, rel, url)  # type: ignore[arg-type]
        self._flush_previous()

    def final_screen(self) -> str | None:
        return self.trace.save_screenshot(self._last_png) if self._last_png else None
