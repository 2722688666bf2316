"""What ``cua record`` writes, from what was recorded: the URL check, the task, the scenario file
(which cua must load back as it is), and secrets that stay masked however short they are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cua.record.scenario_file import generated_task, scenario_document, url_check, write_scenario
from cua.redact import Redactor
from cua.scenario import load_scenario


@pytest.mark.parametrize(("start", "final", "matches", "misses"), [
    ("http://h:1/login.html", "http://h:1/dashboard.html",
     ["http://staging/dashboard.html", "http://h:2/dashboard.html?shift=1"], ["http://h:1/dashboard.html.bak"]),
    ("http://h/app/login.html", "http://h/app/home/x?tab=2",
     ["http://other/app/home/x?tab=2", "http://h/app/home/x?shift=1&tab=2"], ["http://h/app/home/x"]),
    ("http://h/links.html", "http://h/newtab.html#done", ["http://h/newtab.html?shift=1#done"], ["http://h/newtab.html"]),
    ("http://h/a.html", "http://other.example/b.html", ["https://other.example/b.html"], ["http://h/b.html"]),
])
def test_the_url_check_holds_wherever_the_app_is_served(start: str, final: str, matches: list[str],
                                                        misses: list[str]) -> None:
    pattern = url_check(start, final)
    assert pattern is not None and re.search(pattern, final)
    assert [url for url in matches if not re.search(pattern, url)] == []
    assert [url for url in misses if re.search(pattern, url)] == []


def test_no_url_check_when_the_flow_ends_where_it_began() -> None:
    assert url_check("http://h/list.html", "http://h/list.html") is None
    assert url_check("http://h/list.html", "about:blank") is None


STEPS = [
    {"actions": [{"action": {"type": "click", "x": 232, "y": 181, "button": "left"},
                  "anchor": {"x": 232, "y": 181, "element": {"name": "Username"}}},
                 {"action": {"type": "type", "text": "demo"}}]},
    {"actions": [{"action": {"type": "type", "text": "{{password}}"}},
                 {"action": {"type": "keypress", "keys": ["ENTER"]}},
                 {"action": {"type": "drag", "path": [{"x": 1, "y": 2}, {"x": 30, "y": 40}]}},
                 {"action": {"type": "scroll", "x": 5, "y": 6, "scroll_x": 0, "scroll_y": 480}}]},
]


def test_the_task_says_what_was_done_in_order() -> None:
    task = generated_task(STEPS)
    assert task == ("Do this on the page, in order: click \"Username\"; type 'demo'; type {{password}}; "
                    "press Enter; drag from (1, 2) to (30, 40); scroll down 480 px at (5, 6).")


def test_the_written_scenario_loads_back_as_it_was_recorded(tmp_path: Path) -> None:
    document = scenario_document(
        name="login", task=generated_task(STEPS), start_url="http://127.0.0.1:8000/login.html", display="1024x768",
        env="browser", secrets={"password": {}}, checks=[{"text_visible": "Welcome, demo"}], steps=STEPS)
    path = tmp_path / "login.cua.yaml"
    write_scenario(path, document, recorded_from="http://127.0.0.1:8000/login.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Recorded by demonstration") and "  - {type: click, x: 232, y: 181, button: left}" in text
    scenario = load_scenario(path)
    assert scenario.variables["password"].secret and scenario.variables["password"].env == "CUA_LOGIN_PASSWORD"
    assert [a for turn in scenario.script or [] for a in turn.actions or []] == \
        [e["action"] for step in STEPS for e in step["actions"]]
    assert scenario.recording_dir() == tmp_path / "recordings" / "login"


def test_a_short_secret_never_breaks_a_placeholder_or_a_mask() -> None:
    redactor = Redactor({"pin": "d", "password": "pass"})
    assert redactor.text("{{password}} and d, pass") == "{{password}} an{{pin}} {{pin}}, {{password}}"
    assert redactor.obj({"text": "{{pin}}"}) == {"text": "{{pin}}"}
    # A form sent by GET puts the secret in the address, percent-encoded: masked there too; a
    # replay still types the value itself.
    encoded = Redactor({"password": "s3cr.t!"})
    assert encoded.text("http://h/welcome.html?password=s3cr.t%21") == "http://h/welcome.html?password={{password}}"
    assert encoded.unmask("{{password}}") == "s3cr.t!"


class _Screen:
    """A stand-in environment for the Demonstration: a screen that changes when told."""

    def __init__(self) -> None:
        self.shade, self.url = 0, "http://h/login.html"

    async def settle(self) -> None:
        pass

    async def screenshot(self) -> bytes:
        import io

        from PIL import Image

        out = io.BytesIO()
        Image.new("RGB", (64, 48), (self.shade, self.shade, self.shade)).save(out, format="PNG")
        return out.getvalue()

    async def current_url(self) -> str:
        return self.url


def test_typing_a_secret_again_makes_a_second_variable_not_one_per_character(tmp_path: Path) -> None:
    import asyncio

    from cua.actions import Click, Keypress, Type
    from cua.record.demonstration import Demonstration
    from cua.record.gestures import Gesture
    from cua.runs.writer import RunTrace

    async def demonstrate() -> Demonstration:
        screen, redactor = _Screen(), Redactor()
        demo = Demonstration(screen, RunTrace(tmp_path / "run", redactor), redactor)  # type: ignore[arg-type]
        await demo.begin()
        for attempt in ("bad", "hunt€r2"):  # a wrong password, then the right one
            demo.add(Gesture(Click(x=10, y=10)))
            for char in attempt:
                # AltGr+E, as a browser that does not say AltGraph reports it: a chord with the "€" key.
                demo.add(Gesture(Keypress(keys=["CTRL", "ALT", "€"]), secret="password") if char == "€"
                         else Gesture(Type(text=char), secret="password"))
            demo.add(Gesture(Keypress(keys=["ENTER"])))
            screen.shade += 80  # the page answered
            await demo.settled()
        await demo.finish()
        return demo

    demo = asyncio.run(demonstrate())
    assert demo.secret_values == {"password": "bad", "password_2": "hunt€r2"}
    typed = [a["action"] for s in demo.written_steps for a in s["actions"] if a["action"]["type"] == "type"]
    assert typed == [{"type": "type", "text": "{{password}}"}, {"type": "type", "text": "{{password_2}}"}]
    written = (tmp_path / "run" / "steps.jsonl").read_text(encoding="utf-8")
    assert "bad" not in written and "hunt" not in written and "€" not in written and "{{password_2}}" in written
