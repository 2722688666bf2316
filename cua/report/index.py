"""The index page: one page rolling up several run folders, linking each one's report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable
from urllib.parse import quote

from ..runs.reader import read_run
from .html_report import write_report
from .page import (
    BASE_CSS,
    CSP,
    INDEX_THUMB_WIDTH,
    Screens,
    cost,
    count,
    duration,
    escape,
    final_screen,
    model_name,
    num,
    resource,
    status_badge,
    usage_of,
)

INDEX_CSS = resource("index.css")


def write_index(run_dirs: Iterable[Path | str], out_path: Path | str) -> Path:
    """One page rolling up several runs, linking each run's report (written when missing)."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    rows, css = [], []
    passed = failed = 0
    total_tokens, total_cost, total_time = 0, 0.0, 0.0
    any_cost = False
    seen_thumbs: dict[str, str] = {}
    for run_dir in (Path(d) for d in run_dirs):
        meta, steps = read_run(run_dir)
        if meta.get("superseded_by"):  # an attempt retried later (--retries): counted by that attempt
            continue
        report = run_dir / "report.html"
        if not report.exists():
            write_report(run_dir)
        href = quote(Path(os.path.relpath(report.resolve(), out_path.parent.resolve())).as_posix())
        status = meta.get("status")
        ok = status == "completed"
        passed += ok
        failed += not ok
        usage = usage_of(meta.get("usage"))
        total_tokens += int(num(usage.get("total_tokens")) or 0)
        if num(meta.get("cost")) is not None:
            total_cost += float(meta["cost"])
            any_cost = True
        total_time += num(meta.get("duration_s")) or 0.0

        thumb = ""
        final_rel = final_screen(meta, steps)
        if isinstance(final_rel, str):
            key = Path(final_rel).stem  # screens are named by content hash: same name, same image
            if key not in seen_thumbs:
                screen = Screens(run_dir, INDEX_THUMB_WIDTH, with_full=False).get(final_rel)
                seen_thumbs[key] = f"t{len(seen_thumbs)}" if screen else ""
                if screen:
                    css.append(f".{seen_thumbs[key]}{{background-image:url({screen.thumb});"
                               f"aspect-ratio:{screen.width}/{screen.height}}}")
            if seen_thumbs[key]:
                thumb = f'<a class="thumb {seen_thumbs[key]}" href="{escape(href)}" aria-label="final screen"></a>'

        scenario = meta.get("scenario") if isinstance(meta.get("scenario"), dict) else {}
        kind = "replay" if meta.get("kind") == "replay" else "run"
        replay = "—"
        if kind == "replay":
            diverged = meta.get("diverged_at")
            replay = f'healed {escape(count(meta.get("healed") or 0))}'
            if diverged:
                replay += f' · <span class="bad-text">diverged at {escape(diverged)}</span>'
        label = scenario.get("name") or meta.get("task") or run_dir.name
        task = meta.get("task") if scenario.get("name") else ""
        rows.append(f"""<tr class="{'ok' if ok else 'bad'}">
<td>{status_badge(status)}</td>
<td class="what"><a href="{escape(href)}">{escape(label)}</a> <span class="badge muted">{kind}</span>
<div class="sub pre">{escape(task)}</div><div class="sub">{escape(meta.get("reason") or meta.get("error") or "")}</div></td>
<td class="model">{escape(model_name(meta.get("settings")))}</td>
<td class="n">{escape(count(meta.get("steps", len(steps))))}</td>
<td class="n">{escape(duration(meta.get("duration_s")))}</td>
<td class="n">{escape(count(usage.get("total_tokens")))}</td>
<td class="n">{escape(cost(meta.get("cost")))}</td>
<td class="replay">{replay}</td>
<td>{thumb}</td>
</tr>""")
    total = passed + failed
    summary_tone = "ok" if failed == 0 else "bad"
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>cua · {passed} of {total} passed</title>
<style>{BASE_CSS}{INDEX_CSS}
{chr(10).join(css)}</style>
</head>
<body>
<header class="card index-head">
  <div class="eyebrow">cua · runs</div>
  <h1><span class="status big {summary_tone}">{passed} of {total} passed</span></h1>
  <dl class="facts">
    <div class="fact"><dt>Passed</dt><dd class="ok-text">{passed}</dd></div>
    <div class="fact"><dt>Failed</dt><dd class="{'bad-text' if failed else ''}">{failed}</dd></div>
    <div class="fact"><dt>Duration</dt><dd>{escape(duration(total_time))}</dd></div>
    <div class="fact"><dt>Tokens</dt><dd>{escape(count(total_tokens))}</dd></div>
    <div class="fact"><dt>Cost</dt><dd>{escape(cost(total_cost) if any_cost else "—")}</dd></div>
  </dl>
</header>
<section class="card">
<table class="runs">
<thead><tr><th>Status</th><th>Run</th><th>Model</th><th class="n">Steps</th><th class="n">Duration</th><th class="n">Tokens</th>
<th class="n">Cost</th><th>Replay</th><th>Final screen</th></tr></thead>
<tbody>{"".join(rows) or '<tr><td colspan="9" class="empty">No runs.</td></tr>'}</tbody>
</table>
</section>
</body>
</html>
"""
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out_path)
    return out_path
