"""A load-time syntax check of Playwright selectors, so a typo fails before a run, not after it.

Only the CSS parts are checked, and only for syntax (cssselect parses them; no page is needed).
The rest of Playwright's grammar is followed as its own selector parser splits a selector: parts
joined by ``>>`` outside quotes; ``name=body`` parts (``text=``, ``xpath=``, ``role=``, ``nth=``,
``internal:…``), quoted text and ``//`` XPath are another engine's and are left to Playwright.
Functional pseudo-classes (Playwright's ``:has-text("…")``, ``:near(.a, 120)``, CSS4 ``:not(a, b)``)
are checked as a whole only for balanced parentheses: their arguments follow grammars cssselect
does not know, and a valid selector must never be refused. What slips through fails at first use,
as Playwright's own error. Known difference: a type selector that starts with ``--`` (no HTML
element has such a name) is refused.
"""

from __future__ import annotations

import re

import cssselect

_ENGINE = re.compile(r"^[a-zA-Z_0-9+:*-]+$")  # what Playwright takes for an engine name before "="
_PSEUDO_NAME = re.compile(r"::?-?[a-zA-Z_\u00a0-\U0010ffff][-\w\u00a0-\U0010ffff]*\(")
_QUOTES = "\"'`"
_CSS_SPACE = " \t\n\r\f"
# What JavaScript's String.prototype.trim() removes: Playwright trims each part of a selector so
# before its CSS parser sees it (a part ending in a vertical tab is fine there, not in CSS).
_JS_TRIM = " \t\n\v\f\r\u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff" + "".join(map(chr, range(0x2000, 0x200B)))
# Playwright's own CSS parser takes a type selector anywhere in a compound (``:not(b)div``,
# ``*a``), where standard CSS and cssselect want it first: such a complaint is not a refusal.
_LENIENT = re.compile(r"^Expected selector, got <(IDENT |DELIM '\*')")


def check_selector(selector: str) -> None:
    """Raise ``ValueError`` with a readable reason when ``selector`` cannot be a valid selector."""
    if not selector.strip(_CSS_SPACE):
        raise ValueError("the selector is empty")
    for part in _chain_parts(selector):
        name, body = _engine_of(part)
        if name == "css":
            _check_css(body)


def _chain_parts(selector: str) -> list[str]:
    """The ``>>``-separated parts, with quotes (and a backslash's next character) kept whole."""
    parts, start, quote, i = [], 0, None, 0
    while i < len(selector):
        c = selector[i]
        if c == "\\":
            i += 2
            continue
        if quote:
            quote = None if c == quote else quote
        elif c in _QUOTES and not re.match(r"\s*text\s*=.", selector[start:i]):
            quote = c
        elif selector.startswith(">>", i):
            parts.append(selector[start:i])
            start, i = i + 2, i + 2
            continue
        i += 1
    parts.append(selector[start:])
    return [p.strip(_JS_TRIM) for p in parts]


def _engine_of(part: str) -> tuple[str, str]:
    name, eq, body = part.partition("=")
    if eq and _ENGINE.match(name.strip()):
        name = name.strip().lstrip("*")  # "*css=…" captures that part
        return name, body
    if len(part) > 1 and part[0] == part[-1] and part[0] in "\"'":
        return "text", part
    if re.match(r"^\(*//", part) or part.startswith(".."):
        return "xpath", part
    return "css", part


def _check_css(part: str) -> None:
    if not part.strip(_CSS_SPACE):
        raise ValueError("a part of the selector is empty (around '>>')")
    css = _as_plain_css(part.strip(_CSS_SPACE))
    if (len(css) - len(css.rstrip("\\"))) % 2:  # a final lone backslash stands for U+FFFD in CSS
        css += "\ufffd"
    try:
        cssselect.parse(css)
    except cssselect.SelectorSyntaxError as exc:
        if _LENIENT.search(str(exc)):
            return
        raise ValueError(f"{part!r} is not a valid CSS selector ({exc})") from None


def _as_plain_css(css: str) -> str:
    """``css`` as cssselect can parse it: each functional pseudo-class ``:name(…)`` becomes
    ``:is(*)``, and a selector of the list that starts with a combinator (``> a``, which
    Playwright reads relative to the scope) gets ``:scope`` before it. An unclosed parenthesis
    is left as it is, for cssselect to report."""
    out: list[str] = []
    i, bracket, list_start = 0, False, True
    while i < len(css):
        c = css[i]
        if list_start and not c.isspace():
            list_start = False
            if c in ">+~":
                out.append(":scope ")
        if c == "\\":
            out.append(css[i:i + 2])
            i += 2
            continue
        if c in "\"'":
            end = _string_end(css, i)
            out.append(css[i:end])
            i = end
            continue
        if c in "[]":
            bracket = c == "["
        elif c == "," and not bracket:
            list_start = True
        elif c == ":" and not bracket:
            match = _PSEUDO_NAME.match(css, i)
            close = _closing_paren(css, match.end()) if match else None
            if close is not None:
                out.append(":is(*)")
                i = close + 1
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """The index after the string that opens at ``start`` (the end of ``text`` if unclosed)."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == text[start]:
            return i + 1
        i += 1
    return len(text)


def _closing_paren(text: str, start: int) -> int | None:
    """The index of the ``)`` that closes the parenthesis opened just before ``start``."""
    depth, i = 1, start
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c in "\"'":
            i = _string_end(text, i)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None
