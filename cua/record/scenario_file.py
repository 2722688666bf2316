"""The scenario file a recording writes: the task, the start, the secrets, the checks and the script.

Everything here is a pure function of what was recorded, so it is tested without a browser.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

# How many actions the generated task spells out; a longer flow is summed up after them.
TASK_ACTIONS = 30


def env_name(scenario: str, variable: str) -> str:
    """The environment variable a recorded secret is read from: ``CUA_<SCENARIO>_<VARIABLE>``."""
    return "CUA_" + re.sub(r"[^A-Z0-9]+", "_", f"{scenario}_{variable}".upper()).strip("_")


def url_check(start_url: str | None, final_url: str | None) -> str | None:
    """A ``url_matches`` pattern for where the flow ended, relative to where it started: the part
    of the final URL's path beyond the folder the two share, its query and fragment. None when the
    flow ended where it began (or off the web). It matches wherever the app is served, so the check
    holds when a replay starts from another address (``cua replay --start-url``)."""
    if not final_url or not final_url.startswith(("http://", "https://", "file://")):
        return None
    start, end = urlsplit(start_url or ""), urlsplit(final_url)
    if (start.netloc, start.path, start.query, start.fragment) == (end.netloc, end.path, end.query, end.fragment):
        return None
    if start.netloc == end.netloc:
        folder, parts = start.path.split("/")[:-1], end.path.split("/")
        shared = 0
        while shared < len(folder) and shared < len(parts) - 1 and folder[shared] == parts[shared]:
            shared += 1
        rest = "/" + "/".join(parts[shared:]) if shared else end.path
    else:  # another site: its address is part of what changed
        rest = end.netloc + end.path
    pattern = re.escape(rest or "/")
    if end.query:
        pattern += r"\?(?:.*&)?" + re.escape(end.query)
    if end.fragment:
        pattern += ".*#" + re.escape(end.fragment)
    # Nothing of the path may follow (a ?query a replay adds, or a #fragment, may).
    return pattern + r"(?:[?#]|$)" if not end.fragment else pattern + "$"


def _label(entry: dict[str, Any]) -> str:
    element = (entry.get("anchor") or {}).get("element") or {}
    name = element.get("name") or element.get("text") or element.get("testid") or element.get("id")
    return f'"{name[:40]}"' if name else ""


def describe_action(entry: dict[str, Any]) -> str:
    """One recorded action in words, for the task a model is given and for progress lines."""
    action = entry["action"]
    kind = action.get("type")
    label = _label(entry)
    where = label or (f"at ({action.get('x')}, {action.get('y')})" if "x" in action else "")
    if kind == "click":
        button = action.get("button", "left")
        verb = {"left": "click", "right": "right-click", "wheel": "middle-click"}.get(button, f"{button}-click")
        held = "+".join(k.title() for k in action.get("keys") or [])
        return f"{held + '+' if held else ''}{verb} {where}".strip()
    if kind in ("double_click", "triple_click"):
        return f"{kind.replace('_', '-')} {where}".strip()
    if kind == "type":
        text = action.get("text", "")
        return f"type {text}" if re.fullmatch(r"\{\{\w+\}\}", text) else f"type {text!r}"
    if kind == "keypress":
        return "press " + "+".join(k if len(k) == 1 else k.title() for k in action.get("keys") or [])
    if kind == "drag":
        end = (action.get("path") or [{}])[-1]
        return f"drag {label or 'from ' + str(tuple(action['path'][0].values()))} to ({end.get('x')}, {end.get('y')})"
    if kind == "scroll":
        dy, dx = action.get("scroll_y", 0), action.get("scroll_x", 0)
        parts = [f"{'down' if dy > 0 else 'up'} {abs(dy)} px"] if dy else []
        parts += [f"{'right' if dx > 0 else 'left'} {abs(dx)} px"] if dx else []
        return f"scroll {' and '.join(parts)} at ({action.get('x')}, {action.get('y')})"
    if kind == "navigate":
        return f"go to {action.get('url')}"
    if kind in ("back", "forward"):
        return f"go {kind}"
    return kind or "act"


def generated_task(steps: list[dict[str, Any]]) -> str:
    """What the flow does, in the order it was done: the task a model is given by ``cua run``."""
    words = [describe_action(e) for step in steps for e in step.get("actions") or []]
    if not words:
        return "Look at the page; nothing else needs doing."
    shown = words[:TASK_ACTIONS]
    more = f", and {len(words) - len(shown)} more actions of the same flow" if len(words) > len(shown) else ""
    return "Do this on the page, in order: " + "; ".join(shown) + more + "."


def scenario_document(*, name: str, task: str, start_url: str | None, display: str, env: Any,
                      secrets: dict[str, dict[str, Any]], checks: list[dict[str, Any]],
                      steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The scenario as a mapping, in the order a person reads it."""
    script: list[dict[str, Any]] = [{"actions": [entry["action"] for entry in step["actions"]]}
                                    for step in steps if step.get("actions")]
    script.append({"message": "Done: the recorded flow was played."})
    document: dict[str, Any] = {"name": name, "task": task}
    if env != "browser":
        document["env"] = env
    document["display"] = display
    if start_url:
        document["start_url"] = start_url
    if secrets:
        document["variables"] = {
            variable: {"secret": True, "env": env_name(name, variable),
                       **({"description": info["description"]} if info.get("description") else {})}
            for variable, info in secrets.items()
        }
    document["checks"] = checks
    document["script"] = script
    return document


class _Dumper(yaml.SafeDumper):
    pass


def _mapping(dumper: yaml.SafeDumper, data: dict[str, Any]) -> Any:
    # An action (a mapping of plain values, or a drag's path) on one line; the rest in blocks.
    flow = "type" in data and all(not isinstance(v, dict) for v in data.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow or None)


_Dumper.add_representer(dict, _mapping)


def write_scenario(path: Path, document: dict[str, Any], *, recorded_from: str | None,
                   made_with: str = "by demonstration with `cua record`") -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = (f"# Recorded {made_with} on {stamp}"
              + (f" from {recorded_from}" if recorded_from else "") + ".\n"
              f"# Replay it with no model: cua replay {path.name}   Run it with a model: cua run {path.name}\n")
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110,
                     default_flow_style=False)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(header + body, encoding="utf-8")
    tmp.replace(path)
