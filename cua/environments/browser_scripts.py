"""The JavaScript cua runs in browser pages, read from the .js files beside this module."""

from __future__ import annotations

from pathlib import Path


def page_script(name: str) -> str:
    """A script that runs in the page, from the file beside this module (comment lines dropped)."""
    text = (Path(__file__).parent / name).read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.startswith("//")) + "\n"


# What is under a point, and a description of an element, computed in the page. ``describe`` is
# shared by the anchor of an action and by locating it again, which checks every element it finds
# against the recording.
DESCRIBE_JS = page_script("describe.js")
ANCHOR_JS = (
    "([x, y]) => {"
    + DESCRIBE_JS
    + """
  let el = document.elementFromPoint(x, y);
  while (el && el.shadowRoot) {
    const inner = el.shadowRoot.elementFromPoint(x, y);
    if (!inner || inner === el) break;
    el = inner;
  }
  if (!el) return null;
  return describe(el.closest(INTERACTIVE) || el);
}"""
)
DESCRIBE_ELEMENT_JS = "(el) => {" + DESCRIBE_JS + " return describe(el); }"
# Waits one rendered frame and says whether the page changed during it. The DOM is watched by a
# MutationObserver (installed on first use); running animations, canvases and videos change
# pixels without mutations, so for those settle falls back to comparing captured frames.
PAGE_STATE_JS = page_script("page_state.js").rstrip()
FRAME_PROBE_JS = (
    "async () => { const state = " + PAGE_STATE_JS + "; const before = state().mutations;"
    " await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));"
    " const after = state(); return {...after, changed: after.mutations !== before}; }"
)
