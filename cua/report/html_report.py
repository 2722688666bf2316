"""The HTML report of a run folder (the index page of several is ``cua.report.index``).

A report is ONE file that opens from disk with nothing else: styles and script are inline and
every screenshot is embedded. Each distinct screenshot is embedded once (a CSS class carries its
thumbnail, which the timeline, the filmstrip and the checks all reuse; a JSON map carries the full
image the lightbox shows), so a run that keeps seeing the same screen stays small.

Everything that comes from the run — task, model text, page titles, URLs — is HTML-escaped, and a
Content-Security-Policy forbids any network load and any script but the report's own: a web page
or a model cannot make the report run code or call home. URLs are shown as text, never as links.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from .page import (
    BASE_CSS,
    CSP,
    Screens as _Screens,
    count as _count,
    cost as _cost,
    duration as _duration,
    escape as _e,
    final_screen as _final_screen,
    model_name as _model,
    num as _num,
    resource as _resource,
    status_badge as _status_badge,
    usage_of as _usage,
)
from .marks import COLORS, action_of, describe_action, healed_shift, shapes_to_svg, step_shapes
from ..runs.reader import read_run




# --- Embedded screenshots -----------------------------------------------------------------------


def _shot(screens: _Screens, rel: Any, caption: str, actions: Any = None) -> str:
    """A clickable screenshot with the action marks drawn over it (or a placeholder)."""
    screen = screens.get(rel)
    if screen is None:
        label = "screenshot missing" if rel else "no screenshot"
        return f'<div class="shot missing"><span>{label}</span></div>'
    svg = shapes_to_svg(step_shapes(actions, screen.width, screen.height), screen.width, screen.height)
    return (
        f'<button type="button" class="shot {screen.key}" data-img="{screen.key}" '
        f'data-caption="{_e(caption)}" style="aspect-ratio:{screen.width}/{screen.height}" '
        f'aria-label="{_e(caption)} (open full size)">{svg}</button>'
    )


def _figure(screens: _Screens, rel: Any, label: str, caption: str | None = None, actions: Any = None,
            cls: str = "") -> str:
    """A screenshot with a short label under it; ``caption`` titles it in the lightbox."""
    shot = _shot(screens, rel, caption or label, actions)
    return f'<figure class="{cls}">{shot}<figcaption>{_e(label)}</figcaption></figure>'


# --- Formatting ---------------------------------------------------------------------------------


def _ms(value: Any) -> str:
    ms = _num(value)
    if ms is None:
        return "—"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def _when(value: Any) -> str:
    """``2026-11-26 17:14:44 UTC`` from the recorder's ISO timestamps."""
    if not isinstance(value, str):
        return "—"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _code(value: Any) -> str:
    """A URL or path as text (never a link: it may come from a web page)."""
    return f'<code class="url">{_e(value)}</code>' if value else "—"


def _tokens_html(usage: Any) -> str:
    u = _usage(usage)
    if not u:
        return "—"
    parts = [f"in {_count(u.get('input_tokens'))}", f"out {_count(u.get('output_tokens'))}"]
    if u.get("reasoning_tokens"):
        parts.append(f"reasoning {_count(u.get('reasoning_tokens'))}")
    return f'<b>{_count(u.get("total_tokens"))}</b> <span class="muted">({" · ".join(parts)})</span>'


def _element_text(element: Any) -> str:
    """``button "Save"`` from an anchor's element description."""
    if not isinstance(element, dict):
        return ""
    kind = element.get("role") or element.get("tag") or "element"
    name = element.get("name") or element.get("text") or element.get("testid") or element.get("id")
    name = " ".join(str(name).split()) if name else ""
    if len(name) > 60:
        name = name[:59] + "…"
    return f"{kind} “{name}”" if name else str(kind)


# --- The report ---------------------------------------------------------------------------------


def write_report(run_dir: Path | str) -> Path:
    """Write ``report.html`` into the run folder (also a folder left by a killed run)."""
    run_dir = Path(run_dir)
    meta, steps = read_run(run_dir)
    page = _Report(run_dir, meta, steps).render()
    out = run_dir / "report.html"
    tmp = out.with_name(f".report.html.{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    return out


class _Report:
    def __init__(self, run_dir: Path, meta: dict[str, Any], steps: list[dict[str, Any]]) -> None:
        self.run_dir = run_dir
        self.meta = meta
        self.steps = [s for s in steps if isinstance(s, dict)]
        self.settings = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
        self.screens = _Screens(run_dir)

    def render(self) -> str:
        # The body first: it decides which screenshots get embedded.
        body = "".join([self._header(), self._answer(), self._checks(), self._timeline()])
        nonce = secrets.token_urlsafe(16)
        task = " ".join(str(self.meta.get("task") or "").split())
        title = f"cua · {self.meta.get('status') or 'run'} · {task[:80]}"
        return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}; script-src 'nonce-{nonce}'">
<title>{_e(title)}</title>
<style>{BASE_CSS}{REPORT_CSS}
{self.screens.css()}</style>
</head>
<body>
{body}
<div id="lightbox" class="lightbox" hidden role="dialog" aria-modal="true" aria-label="Screenshot">
  <div class="lb-bar"><span class="lb-caption"></span><span class="lb-count"></span>
  <button type="button" class="lb-prev" aria-label="Previous screenshot">‹</button>
  <button type="button" class="lb-next" aria-label="Next screenshot">›</button>
  <button type="button" class="lb-close" aria-label="Close">×</button></div>
  <div class="lb-stage"><div class="lb-frame"><img alt=""><div class="lb-marks"></div></div></div>
</div>
<script type="application/json" id="cua-full">{self.screens.full_json()}</script>
<script nonce="{nonce}">{REPORT_JS}</script>
</body>
</html>
"""

    # -- header ----------------------------------------------------------------------------------
    def _header(self) -> str:
        m, s = self.meta, self.settings
        status = m.get("status")
        kind = "Replay" if m.get("kind") == "replay" else "Run"
        scenario = m.get("scenario") if isinstance(m.get("scenario"), dict) else {}
        tool = m.get("tool") or m.get("tool_format") or s.get("tool_format") or s.get("tool") or "—"
        model = f'{_e(_model(s))} <span class="muted">· {_e(tool)} tool</span>'
        if m.get("made_by") == "demonstration":  # cua record: a person's input, no model
            model = 'none <span class="muted">· recorded by demonstration</span>'
        elif m.get("made_by") == "mcp":  # cua mcp: an MCP client's own model chose each action
            model = 'the MCP client\'s <span class="muted">· a computer session of cua mcp</span>'
        facts = [
            ("Model", model),
            ("Environment", f'{_e(s.get("env") or "—")} <span class="muted">· {_e(m.get("display") or s.get("display") or "—")}</span>'),
            ("Started", _e(_when(m.get("started_at")))),
            ("Duration", _e(_duration(m.get("duration_s"))) if status != "running" else "—"),
            ("Steps", _e(_count(m.get("steps", len(self.steps))))),
            ("Tokens", _tokens_html(m.get("usage"))),
            ("Cost", _e(_cost(m.get("cost")))),
            ("Start URL", _code(s.get("start_url"))),
            ("Final URL", _code(m.get("final_url"))),
        ]
        if scenario.get("name"):
            facts.insert(0, ("Scenario", _e(scenario["name"])))
        if m.get("kind") == "replay":
            diverged = m.get("diverged_at")
            facts.append(("Healed", _e(_count(m.get("healed") or 0))))
            link = f'at step <a href="#step-{_e(diverged)}">{_e(diverged)}</a>' if diverged else "no"
            facts.append(("Diverged", link))
            facts.append(("Replay of", _code(m.get("source_run"))))
        grid = "".join(
            f'<div class="fact{" wide" if dd.startswith("<code") or dt == "Model" else ""}"><dt>{dt}</dt><dd>{dd}</dd></div>'
            for dt, dd in facts
        )

        notes = []
        if status == "running":
            notes.append(
                '<div class="callout info"><b>This run did not finish.</b> Its process stopped (killed '
                f"or still running) before writing a result; the {len(self.steps)} recorded "
                f"step{'s' if len(self.steps) != 1 else ''} are shown below.</div>"
            )
        if m.get("fallback"):
            notes.append('<div class="callout info"><b>No model ran.</b> This run played the '
                         f'scenario\'s script ({_e(m["fallback"])}).</div>')
        if m.get("reason"):
            notes.append(f'<div class="callout bad"><b>Reason</b> <span class="pre">{_e(m["reason"])}</span></div>')
        if m.get("error"):
            notes.append(f'<div class="callout bad"><b>Error</b> <span class="pre">{_e(m["error"])}</span></div>')

        earlier = [a for a in m.get("earlier_attempts") or [] if isinstance(a, dict)]
        if earlier:
            tone, head = ("warn", f"Flaky: passed on attempt {m.get('attempt')}") if m.get("flaky") else (
                "bad", f"Failed all {m.get('attempt')} attempts")
            items = "".join(
                f'<li>attempt {_e(a.get("attempt"))}: {_e(a.get("status"))} — {_e(a.get("why"))} '
                f'(<a href="{_e(_relative_link(a.get("run_dir"), self.run_dir))}">its report</a>)</li>'
                for a in earlier)
            notes.append(f'<div class="callout {tone} attempts"><b>{_e(head)}</b><ul>{items}</ul></div>')
        if m.get("superseded_by"):
            notes.append(f'<div class="callout warn attempts"><b>Attempt {_e(m.get("attempt"))}, retried</b> '
                         f'<a href="{_e(_relative_link(m["superseded_by"], self.run_dir))}">the next attempt</a></div>')

        final_rel = _final_screen(m, self.steps)
        final = _figure(self.screens, final_rel, "Final screen", cls="final-shot") if self.screens.get(final_rel) else ""
        exit_code = m.get("exit_code")
        exit_code = f'<span class="exit">exit code <b>{_e(exit_code)}</b></span>' if exit_code is not None else ""
        return f"""<header class="card run-head">
<div class="run-main">
  <div class="eyebrow">cua · {kind} report</div>
  <h1 class="task pre">{_e(m.get("task") or "(no task)")}</h1>
  <div class="status-line">{_status_badge(status, big=True)}{exit_code}</div>
  <dl class="facts">{grid}</dl>
</div>
{final}
</header>
{"".join(notes)}"""

    # -- answer and checks -----------------------------------------------------------------------
    def _answer(self) -> str:
        text = self.meta.get("final_text")
        if not text:
            return ""
        return f'<section class="card"><h2>Final answer</h2><div class="answer pre">{_e(text)}</div></section>'

    def _checks(self) -> str:
        checks = [c for c in self.meta.get("checks") or [] if isinstance(c, dict)]
        if not checks:
            return ""
        rows = []
        for check in checks:
            ok = bool(check.get("ok"))
            pair = ""
            if check.get("expected_screen") or check.get("actual_screen"):
                name = check.get("name") or "check"
                pair = '<div class="pair">' + "".join(
                    _figure(self.screens, check.get(key), label, f"{name}: {label}")
                    for key, label in (("expected_screen", "expected"), ("actual_screen", "actual"))
                ) + "</div>"
            tone, mark = ("skipped", "–") if check.get("skipped") else ("ok", "✓") if ok else ("bad", "✗")
            rows.append(
                f'<li class="check {tone}"><span class="mark">{mark}</span>'
                f'<div><b>{_e(check.get("name") or "check")}</b> <span class="detail pre">'
                f'{_e(check.get("detail") or "")}</span>{pair}</div></li>'
            )
        passed = sum(1 for c in checks if c.get("ok") and not c.get("skipped"))
        skipped = sum(1 for c in checks if c.get("skipped"))
        judged = len(checks) - skipped
        counts = f"{passed} of {judged} passed" + (f", {skipped} skipped" if skipped else "")
        return (f'<section class="card"><h2>Checks <span class="muted">{counts}'
                f'</span></h2><ul class="checks">{"".join(rows)}</ul></section>')

    # -- timeline --------------------------------------------------------------------------------
    def _timeline(self) -> str:
        if not self.steps:
            initial = self.meta.get("initial_screen")
            shot = _figure(self.screens, initial, "Initial screen", cls="solo") if self.screens.get(initial) else ""
            return f'<section class="card"><h2>Steps</h2><p class="empty">No steps were recorded.</p>{shot}</section>'
        cards = "".join(self._step(step) for step in self.steps)
        return f"""<section class="timeline">
<div class="timeline-head"><h2>Steps <span class="muted">{len(self.steps)}</span></h2>
<label class="toggle"><input type="checkbox" id="show-marks" checked> show action marks</label></div>
{self._filmstrip()}
{cards}
</section>"""

    def _filmstrip(self) -> str:
        items = []
        for step in self.steps:
            screen = self.screens.get(step.get("screen_before"))
            n = _e(step.get("step"))
            flags = " diverged" if step.get("diverged") else " final" if step.get("final") else ""
            style = f' style="aspect-ratio:{screen.width}/{screen.height}"' if screen else ""
            key = screen.key if screen else "missing"
            items.append(
                f'<a class="film {key}{flags}" href="#step-{n}"{style} title="Step {n}"><span>{n}</span></a>'
            )
        return f'<nav class="filmstrip" aria-label="Steps">{"".join(items)}</nav>'

    def _step(self, step: dict[str, Any]) -> str:
        n = step.get("step")
        actions = step.get("actions") if isinstance(step.get("actions"), list) else []
        badges = []
        if step.get("final"):
            badges.append('<span class="badge ok">final</span>')
        if step.get("replay"):
            source = step.get("source_step")
            badges.append(f'<span class="badge muted">{f"replays step {_e(source)}" if source else "replay"}</span>')
        healed = sum(1 for a in actions if healed_shift(a))
        if healed:
            badges.append(f'<span class="badge healed">healed ×{healed}</span>')
        if step.get("diverged"):
            badges.append('<span class="badge bad">diverged</span>')
        checks = step.get("safety_checks") if isinstance(step.get("safety_checks"), list) else []
        if any(isinstance(c, dict) and c.get("decision") == "denied" for c in checks):
            badges.append('<span class="badge bad">safety denied</span>')
        elif checks:
            badges.append('<span class="badge warn">safety check</span>')

        chips = []
        if _num(step.get("elapsed_s")) is not None:
            chips.append(f'<span title="time since the run started">at {_duration(step["elapsed_s"])}</span>')
        if _num(step.get("model_ms")) is not None:
            chips.append(f"model {_ms(step['model_ms'])}")
        if _num(step.get("settle_ms")) is not None:
            chips.append(f'<span title="from the last action to the screenshot answering it">'
                         f'settle {_ms(step["settle_ms"])}</span>')
        usage = _usage(step.get("usage"))
        if usage:
            chips.append(f"{_count(usage.get('total_tokens'))} tokens")

        seen_by = {"demonstration": "the person", "mcp": "the MCP client"}.get(self.meta.get("made_by"), "the model")
        caption = f"Step {n} — the screen {seen_by} saw"
        detail = "".join([
            self._block("Reasoning", step.get("reasoning"), "reasoning"),
            self._block("Assistant", step.get("text"), "assistant"),
            self._safety(checks),
            self._approvals(step.get("mcp_approvals")),
            self._actions(actions),
            self._functions(step.get("functions")),
            self._after(step, usage),
        ]) or '<p class="empty">Nothing recorded for this step.</p>'
        classes = "card step" + (" is-final" if step.get("final") else "")
        head = (f'<div class="step-head"><h3>Step {_e(n)}</h3>{"".join(badges)}'
                f'<span class="chips">{" · ".join(chips)}</span></div>')
        if isinstance(step.get("diverged"), dict):
            # What the recording expected next to what the replay found says it all.
            classes += " is-diverged"
            body = f'{self._diverged(step)}<div class="step-detail">{detail}</div>'
        else:
            label = f"what {seen_by} saw" + (" — marks show the actions" if actions else "")
            shot = _figure(self.screens, step.get("screen_before"), label, caption, actions, cls="step-shot")
            body = f'<div class="step-body">{shot}<div class="step-detail">{detail}</div></div>'
        return f"""<article class="{classes}" id="step-{_e(n)}" data-step="{_e(n)}">
{head}
{body}
</article>"""

    @staticmethod
    def _block(title: str, text: Any, cls: str) -> str:
        if not text:
            return ""
        return f'<div class="block {cls}"><h4>{title}</h4><div class="pre">{_e(text)}</div></div>'

    @staticmethod
    def _safety(checks: list[Any]) -> str:
        return _decisions("Safety checks", checks, {"acknowledged": "warn", "denied": "bad"},
                          lambda c: (_e(c.get("code") or "check"), _e(c.get("message") or "")))

    @staticmethod
    def _approvals(approvals: Any) -> str:
        """Remote MCP tool calls the service asked to make, and what the approval policy said."""
        return _decisions("MCP tool approvals", approvals, {"approved": "warn", "refused": "bad"},
                          lambda a: (f'{_e(a.get("server"))} · {_e(a.get("name"))}',
                                     f'{_e(str(a.get("arguments") or "")[:300])} '
                                     f'<span class="muted">{_e(a.get("how") or "")}</span>'))

    @staticmethod
    def _actions(actions: list[Any]) -> str:
        if not actions:
            return ""
        rows = []
        for n, record in enumerate(actions, start=1):
            kind = str(action_of(record).get("type") or "?")
            color = COLORS.get(kind, "#60646c")
            extra = []
            anchor = record.get("anchor") if isinstance(record, dict) else None
            element = anchor.get("element") if isinstance(anchor, dict) else None
            if element:
                extra.append(f'<span class="on">on {_e(_element_text(element))}</span>')
            shift = healed_shift(record)
            if shift:
                (fx, fy), (tx, ty) = shift
                by = record["healed"].get("by") or "?"
                extra.append(f'<span class="badge healed" title="the replay found the target elsewhere">'
                             f'healed by {_e(by)}</span>'
                             f' <span class="muted">({fx:.0f}, {fy:.0f}) → ({tx:.0f}, {ty:.0f})</span>')
            ms = record.get("ms") if isinstance(record, dict) else None
            rows.append(
                f'<li class="act" data-kind="{_e(kind)}"><span class="num" style="background:{color}">{n}</span>'
                f'<span class="what">{_e(describe_action(record, limit=400))}</span>{"".join(extra)}'
                f'<span class="ms">{_e(_ms(ms)) if ms is not None else ""}</span></li>'
            )
        return f'<div class="block"><h4>Actions</h4><ol class="actions">{"".join(rows)}</ol></div>'

    @staticmethod
    def _functions(functions: Any) -> str:
        if not isinstance(functions, list) or not functions:
            return ""
        rows = []
        for call in functions:
            if not isinstance(call, dict):
                continue
            rows.append(
                f'<li><code>{_e(call.get("name"))}({_e(call.get("arguments") or "")})</code>'
                f'<span class="ms">{_e(_ms(call.get("ms")))}</span>'
                f'<div class="output pre">{_e(call.get("output") or "")}</div></li>'
            )
        return f'<div class="block"><h4>Function calls</h4><ul class="plain fns">{"".join(rows)}</ul></div>'

    @staticmethod
    def _after(step: dict[str, Any], usage: dict[str, Any]) -> str:
        rows = []
        if step.get("url"):
            rows.append(f'<div><span class="muted">URL after</span> <code class="url">{_e(step["url"])}</code></div>')
        if usage:
            rows.append(f'<div><span class="muted">Tokens</span> {_tokens_html(usage)}</div>')
        if step.get("response_id"):
            rows.append(f'<div><span class="muted">Response</span> <code>{_e(step["response_id"])}</code></div>')
        items = step.get("items")
        raw = ""
        if items:
            dump = json.dumps(items, indent=2, ensure_ascii=False, default=str)
            raw = f'<details class="raw"><summary>Output items as received</summary><pre>{_e(dump)}</pre></details>'
        return f'<div class="block after">{"".join(rows)}{raw}</div>' if rows or raw else ""

    def _diverged(self, step: dict[str, Any]) -> str:
        diverged = step.get("diverged")
        if not isinstance(diverged, dict):
            return ""
        n = step.get("step")
        pair = "".join(
            _figure(self.screens, diverged.get(key), label, f"Step {n}: {label}")
            for key, label in (("expected_screen", "expected (recording)"), ("actual_screen", "actual (this replay)"))
        )
        reason = _e(diverged.get("reason") or "")
        return f'<div class="diverged-box"><h4>Diverged: <span class="pre">{reason}</span></h4><div class="pair">{pair}</div></div>'


# --- The index ----------------------------------------------------------------------------------


# --- Styles and script: resource files beside this module ----------------------------------------


REPORT_CSS = _resource("report.css")
REPORT_JS = _resource("report.js")


def _relative_link(run_dir: Any, here: Path) -> str:
    """The report of another run folder, as a link that works where both folders are copied."""
    import os

    if not run_dir:
        return ""
    target = Path(str(run_dir)) / "report.html"
    try:
        return Path(os.path.relpath(target.resolve(), here.resolve())).as_posix()
    except ValueError:
        return target.as_posix()


def _decisions(title: str, entries: Any, tones: dict[str, str], label: Callable[[dict[str, Any]], tuple[str, str]]) -> str:
    """A step's list of decided things (safety checks, MCP approvals): a badge with the decision,
    then what was decided (``label`` gives both parts as HTML)."""
    rows = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        decision = str(entry.get("decision") or "pending")
        what, detail = label(entry)
        rows.append(f'<li><span class="badge {tones.get(decision, "muted")}">{_e(decision)}</span> '
                    f'<b>{what}</b> <span class="pre">{detail}</span></li>')
    if not rows:
        return ""
    return f'<div class="block safety"><h4>{title}</h4><ul class="plain">{"".join(rows)}</ul></div>'
