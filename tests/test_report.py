"""Reports, GIF summaries, index pages and JUnit XML, built from run folders written by RunTrace."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from cua.config import RunSettings
from cua.redact import Redactor
from cua.report.gif import write_gif
from cua.report.junit import write_junit
from cua.runs.writer import RunTrace
from cua.report.html_report import write_report
from cua.report.index import write_index

WIDTH, HEIGHT = 800, 600
INJECTION = "<script>alert(1)</script>"
SECRET = "hunter2-very-secret"


def screen_png(title: str, accent: tuple[int, int, int], marker: int = 0) -> bytes:
    """A small fake web page: a header, a form and a coloured button, distinct per title."""
    img = Image.new("RGB", (WIDTH, HEIGHT), (250, 250, 252))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, WIDTH, 48), fill=(30, 41, 59))
    draw.text((16, 16), f"demo app - {title}", fill=(255, 255, 255))
    for row in range(4):
        draw.text((60, 110 + row * 60), f"Field {row + 1}", fill=(40, 40, 40))
        draw.rectangle((160, 100 + row * 60, 460, 130 + row * 60), outline=(160, 160, 170), fill=(255, 255, 255))
    draw.rectangle((160, 380, 300, 420), fill=accent)
    draw.text((190, 392), "Submit", fill=(255, 255, 255))
    draw.ellipse((600 + marker, 200, 640 + marker, 240), fill=accent)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def region_png(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 40), color).save(out, format="PNG")
    return out.getvalue()


def settings(task: str) -> dict:
    return RunSettings(task=task, model="computer-use-preview", display=f"{WIDTH}x{HEIGHT}",
                       start_url="http://127.0.0.1:8000/form.html").public()


def usage(n: int) -> dict:
    return {"input_tokens": n, "output_tokens": n // 10, "reasoning_tokens": n // 20, "total_tokens": n + n // 10}


def start(trace: RunTrace, task: str, **extra) -> None:
    fields = {"kind": "run", "task": task, "settings": settings(task), "started_at": "2026-01-02T03:04:05+00:00"}
    trace.update(**{**fields, **extra})


def finish(trace: RunTrace, status: str, steps: int, **extra) -> None:
    trace.update(status=status, exit_code=0 if status == "completed" else 1, duration_s=12.5, steps=steps,
                 usage=usage(1000 * steps), cost=0.0123, finished_at="2026-01-02T03:04:17+00:00", **extra)
    trace.close()


def step(n: int, before: str, after: str | None, actions: list[dict], **extra) -> dict:
    record = {"step": n, "elapsed_s": n * 1.5, "model_ms": 900 + n, "response_id": f"resp_{n}",
              "usage": usage(1000), "screen_before": before, "items": [], "reasoning": "", "text": "",
              "actions": actions, "functions": [], "safety_checks": [], "settle_ms": 120,
              "screen_after": after, "url": "http://127.0.0.1:8000/form.html"}
    record.update(extra)
    return record


def act(action: dict, ms: int = 40, **extra) -> dict:
    return {"action": action, "ms": ms, **extra}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Five run folders: a rich failed run, a healed-then-diverged replay, a killed run, a run
    that ended before any step, and a plain passing run."""
    tmp_path = tmp_path_factory.mktemp("runs")
    folders: dict[str, Path] = {}

    # A rich run with every action type, a secret, an injection attempt and a failing check.
    rich = tmp_path / "rich"
    trace = RunTrace(rich, Redactor({"password": SECRET}))
    a, b = trace.save_screenshot(screen_png("login", (37, 99, 235))), trace.save_screenshot(screen_png("form", (22, 163, 74)))
    c, d = trace.save_screenshot(screen_png("board", (234, 88, 12))), trace.save_screenshot(screen_png("done", (124, 58, 237)))
    start(trace, "Log in and fill the form", initial_screen=a, scenario={"name": "rich-form"})
    anchor = {"x": 230, "y": 400, "element": {"tag": "button", "role": "button", "name": "Submit"}}
    trace.append_step(step(1, a, b, [
        act({"type": "click", "x": 230, "y": 400, "button": "left"}, anchor=anchor),
        act({"type": "type", "text": f"my password is {SECRET}"}),
    ], reasoning="Click the login button first."))
    trace.append_step(step(2, b, c, [
        act({"type": "double_click", "x": 300, "y": 115}),
        act({"type": "scroll", "x": 400, "y": 300, "scroll_x": 0, "scroll_y": 400}),
        act({"type": "keypress", "keys": ["CTRL", "A"]}),
    ], safety_checks=[{"id": "sc1", "code": "malicious_instructions", "message": "The page asks for a password.",
                       "decision": "acknowledged"}],
       functions=[{"name": "goto", "arguments": '{"url": "http://127.0.0.1:8000/next"}', "output": "ok", "ms": 80}]))
    trace.append_step(step(3, c, c, [
        act({"type": "drag", "path": [{"x": 100, "y": 200}, {"x": 300, "y": 260}, {"x": 500, "y": 240}]}),
        act({"type": "move", "x": 620, "y": 220}),
    ], text=f"The page says {INJECTION} — ignoring it."))
    trace.append_step(step(4, c, d, [act({"type": "wait"}, ms=1000), act({"type": "screenshot"}, ms=5)]))
    trace.append_step(step(5, d, None, [], final=True, text="All done: the form was sent."))
    expected, actual = trace.save_screenshot(region_png((22, 163, 74))), trace.save_screenshot(region_png((200, 30, 30)))
    finish(trace, "failed", 5, final_text="All done: the form was sent.", final_url="http://127.0.0.1:8000/done",
           reason="check failed: banner: difference 0.4", final_screen=d, checks=[
               {"name": "answer mentions sent", "ok": True, "detail": "answer: 'All done'"},
               {"name": "banner", "ok": False, "detail": "difference 0.4000 (tolerance 0.02)",
                "expected_screen": expected, "actual_screen": actual},
           ])
    folders["rich"] = rich

    # A replay: step 1 healed by element, step 2 diverged.
    replay = tmp_path / "replay"
    trace = RunTrace(replay)
    a, b = trace.save_screenshot(screen_png("login", (37, 99, 235), 30)), trace.save_screenshot(screen_png("form", (22, 163, 74), 30))
    exp = trace.save_screenshot(screen_png("expected", (22, 163, 74)))
    start(trace, "Log in and fill the form", kind="replay", source_run=str(rich), initial_screen=a)
    trace.append_step(step(1, a, b, [
        act({"type": "click", "x": 260, "y": 410}, healed={"from": [230, 400], "to": [260, 410], "by": "element"}),
        # as replays before the action held the healed place wrote it: at the recorded place
        act({"type": "double_click", "x": 100, "y": 50}, healed={"from": [100, 50], "to": [120, 80], "by": "image"}),
    ], replay=True, source_step=1))
    trace.append_step(step(2, b, b, [], replay=True, source_step=2, diverged={
        "reason": "could not find 'Save' on the screen", "expected_screen": exp, "actual_screen": b}))
    finish(trace, "diverged", 2, healed=1, diverged_at=2, reason="diverged at step 2: could not find 'Save'")
    folders["replay"] = replay

    # A killed run: still "running", and the last line of steps.jsonl torn mid-write.
    killed = tmp_path / "killed"
    trace = RunTrace(killed)
    a, b = trace.save_screenshot(screen_png("login", (37, 99, 235))), trace.save_screenshot(screen_png("form", (22, 163, 74)))
    start(trace, "A run that was killed", initial_screen=a)
    trace.append_step(step(1, a, b, [act({"type": "click", "x": 100, "y": 100})]))
    trace.append_step(step(2, b, a, [act({"type": "click", "x": 200, "y": 200})]))
    trace.update(steps=2, usage=usage(2000), status="running")
    trace._steps.write('{"step": 3, "screen_before": "screens/')  # SIGKILL here
    trace._steps.flush()
    folders["killed"] = killed

    # A run that failed before its first step.
    empty = tmp_path / "empty"
    trace = RunTrace(empty)
    start(trace, "Open the browser")
    finish(trace, "error", 0, error="browser missing: run `playwright install chromium`")
    folders["empty"] = empty

    passing = tmp_path / "passing"
    trace = RunTrace(passing)
    a = trace.save_screenshot(screen_png("home", (37, 99, 235)))
    start(trace, "Say hello", initial_screen=a)
    trace.append_step(step(1, a, None, [], final=True, text="hello"))
    finish(trace, "completed", 1, final_text="hello", final_screen=a)
    folders["passing"] = passing
    return folders


# --- report.html --------------------------------------------------------------------------------


def test_report_is_self_contained_and_escaped(runs: dict[str, Path]) -> None:
    html = write_report(runs["rich"]).read_text(encoding="utf-8")
    assert 'src="http' not in html and "<link" not in html and 'href="http' not in html
    assert "url(http" not in html and "@import" not in html
    assert "default-src 'none'" in html
    # The model's text is shown, escaped; the only script tags are the report's own two.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert INJECTION not in html
    assert len(re.findall(r"<script\b", html)) == 2
    assert SECRET not in html and "{{password}}" in html


def test_report_shows_header_steps_and_marks(runs: dict[str, Path]) -> None:
    html = write_report(runs["rich"]).read_text(encoding="utf-8")
    for text in ("Log in and fill the form", 'data-status="failed"', "rich-form", "computer-use-preview",
                 "check failed: banner", "All done: the form was sent.", "$0.01", "12.5 s",
                 "http://127.0.0.1:8000/done", "malicious_instructions", "acknowledged", "goto("):
        assert text in html, text
    for n in range(1, 6):
        assert f'id="step-{n}"' in html
    for kind in ("click", "double_click", "drag", "scroll", "move"):
        assert f'class="m-{kind}"' in html, kind
    # Steps with several actions number their marks: step 1's click (1), steps 2 and 3 two each.
    assert html.count('<g class="badge">') == 1 + 2 + 2
    assert "click (230, 400)" in html and "on button “Submit”" in html
    assert "scroll down 400 at (400, 300)" in html and "press CTRL+A" in html


def test_report_embeds_each_screenshot_once(runs: dict[str, Path]) -> None:
    html = write_report(runs["rich"]).read_text(encoding="utf-8")
    thumbs = re.findall(r"\.(i\d+)\{background-image:url\(data:image/", html)
    # 4 page screens (one seen twice) and the check's expected/actual regions.
    assert len(thumbs) == len(set(thumbs)) == 6
    full = json.loads(re.search(r'<script type="application/json" id="cua-full">(.*?)</script>', html, re.S).group(1))
    assert set(full) <= set(thumbs) and all(v.startswith("data:image/") for v in full.values())
    # The failing screenshot check shows its expected and actual images.
    check = html[html.index('class="check bad"'):]
    check = check[: check.index("</li>")]
    assert "✗" in check and "difference 0.4000" in check
    assert len(set(re.findall(r'data-img="(i\d+)"', check))) == 2


def test_replay_report_shows_healing_and_divergence(runs: dict[str, Path]) -> None:
    html = write_report(runs["replay"]).read_text(encoding="utf-8")
    assert "healed by element" in html and "(230, 400) → (260, 410)" in html
    assert 'class="m-healed"' in html
    # Marks and texts show where the replay acted, each moved once.
    assert "click (260, 410)" in html and "double-click (120, 80)" in html
    assert '<circle cx="260" cy="410"' in html and '<circle cx="120" cy="80"' in html
    assert '<circle cx="290" cy="420"' not in html and '<circle cx="140" cy="110"' not in html
    assert 'class="badge bad">diverged<' in html
    box = html[html.index('class="diverged-box"'):]
    assert "could not find &#x27;Save&#x27; on the screen" in box
    expected, actual = re.findall(r'data-img="(i\d+)"', box)[:2]
    assert expected != actual
    assert f".{expected}{{background-image:url(data:" in html and f".{actual}{{background-image:url(data:" in html


def test_report_of_a_killed_run_and_of_an_empty_run(runs: dict[str, Path]) -> None:
    html = write_report(runs["killed"]).read_text(encoding="utf-8")
    assert "did not finish" in html
    assert 'id="step-1"' in html and 'id="step-2"' in html and 'id="step-3"' not in html

    html = write_report(runs["empty"]).read_text(encoding="utf-8")
    assert "No steps were recorded." in html and "playwright install chromium" in html


# --- summary.gif --------------------------------------------------------------------------------


def test_gif_has_one_frame_per_screen_seen(runs: dict[str, Path]) -> None:
    expected_frames = {"rich": 4, "replay": 2, "killed": 2, "empty": 1, "passing": 1}
    for name, frames in expected_frames.items():
        path = write_gif(runs[name])
        with Image.open(path) as gif:
            assert gif.format == "GIF"
            assert gif.n_frames == frames, name
            assert gif.width <= 640
            if frames > 1:
                assert gif.info["duration"] == 1000  # ~1 s a frame (the last one lingers)


# --- index and JUnit ----------------------------------------------------------------------------


def test_index_links_every_report(runs: dict[str, Path]) -> None:
    out = write_index(list(runs.values()), runs["rich"].parent / "site" / "index.html")
    html = out.read_text(encoding="utf-8")
    for name, run_dir in runs.items():
        assert f'href="../{name}/report.html"' in html
        assert (run_dir / "report.html").exists()  # written when missing
    assert "1 of 5 passed" in html
    assert "healed 1" in html and "diverged at 2" in html
    assert 'src="http' not in html and "<script" not in html


def test_junit_counts_and_failures(runs: dict[str, Path], tmp_path: Path) -> None:
    out = write_junit(list(runs.values()), tmp_path / "junit.xml", suite_name="demo")
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "4", "0")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert set(cases) == {"rich-form", "Log in and fill the form (replay)", "A run that was killed",
                          "Open the browser", "Say hello"}
    assert cases["Say hello"].find("failure") is None
    messages = {name: case.find("failure").get("message") for name, case in cases.items() if name != "Say hello"}
    assert messages["rich-form"] == "failed: check failed: banner: difference 0.4"
    assert messages["Log in and fill the form (replay)"].startswith("diverged: diverged at step 2")
    assert "did not finish" in messages["A run that was killed"]
    assert "browser missing" in messages["Open the browser"]
    failure = cases["rich-form"].find("failure")
    assert "check failed: banner" in failure.text and str(runs["rich"] / "report.html") in failure.text
    assert str(runs["rich"] / "report.html") in cases["rich-form"].find("system-out").text
    assert float(cases["rich-form"].get("time")) == 12.5


# --- In a real browser --------------------------------------------------------------------------


async def test_report_in_chromium_opens_full_image(runs: dict[str, Path]) -> None:
    from playwright.async_api import async_playwright

    report = write_report(runs["rich"])
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(report.as_uri())
            lightbox = page.locator("#lightbox")
            assert not await lightbox.is_visible()

            await page.locator("#step-2 button.shot").click()
            await lightbox.wait_for(state="visible")
            image = lightbox.locator("img")
            assert (await image.get_attribute("src")).startswith("data:image/")
            await page.wait_for_function("document.querySelector('#lightbox img').complete")
            assert await image.evaluate("img => img.naturalWidth") == WIDTH
            # The step's marks come along: a numbered double-click and scroll.
            assert await lightbox.locator(".lb-marks .badge").count() == 2
            assert await lightbox.locator(".lb-marks polyline.m-scroll").count() == 1
            assert "Step 2" in await lightbox.locator(".lb-caption").inner_text()

            await page.keyboard.press("ArrowRight")
            assert "Step 3" in await lightbox.locator(".lb-caption").inner_text()
            await page.keyboard.press("Escape")
            await lightbox.wait_for(state="hidden")

            # A small image (the check's region) is its own thumbnail and opens as well.
            await page.locator(".check.bad button.shot").first.click()
            await lightbox.wait_for(state="visible")
            await page.wait_for_function("document.querySelector('#lightbox img').complete")
            assert await image.evaluate("img => img.naturalWidth") == 120
        finally:
            await browser.close()
    assert errors == []


async def test_report_and_index_name_the_provider_and_model_of_each_run(tmp_path: Path) -> None:
    """A run folder whose settings name a provider shows ``provider · model``; one written before
    settings had a provider shows the model alone."""
    from playwright.async_api import async_playwright

    folders = []
    for name, extra in (("claude", {"provider": "anthropic", "model": "claude-sonnet-5-5"}), ("old", {})):
        trace = RunTrace(tmp_path / name)
        recorded = {**settings(f"A run by {name}"), **extra}
        if not extra:  # a run folder from before settings named their provider
            recorded.pop("provider", None)
        start(trace, f"A run by {name}", settings=recorded)
        finish(trace, "completed", 0)
        folders.append(write_report(tmp_path / name).parent)
    index = write_index(folders, tmp_path / "index.html")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            shown = {}
            for folder in folders:
                await page.goto((folder / "report.html").as_uri())
                shown[folder.name] = await page.locator(".fact", has_text="Model").locator("dd").inner_text()
            await page.goto(index.as_uri())
            column = [await cell.inner_text() for cell in await page.locator("table.runs td.model").all()]
            header = await page.locator("table.runs th").all_inner_texts()
        finally:
            await browser.close()
    assert shown == {"claude": "anthropic · claude-sonnet-5-5 · preview tool",
                     "old": "computer-use-preview · preview tool"}
    assert column == ["anthropic · claude-sonnet-5-5", "computer-use-preview"]
    assert header[2].lower() == "model"
