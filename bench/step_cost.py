"""Per-step cost of cua's loop next to a bare Playwright loop doing the same work.

Both loops click a button, take a screenshot and make one HTTP round trip to the stand-in
Responses server with that screenshot, N times, in the same Chromium. cua's step also does what
a user relies on (settle, anchor capture, trace written and fsynced per step); the ratio says what
that costs. Target: ratio <= 1.10.

The same click script is then played over each provider's wire format (Claude's Messages API,
Gemini's generateContent, through their stand-ins): the per-step time of each adapter, against the
same bare loop.

    make bench            # or: .venv/bin/python bench/step_cost.py --steps 40 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import os
from playwright.async_api import async_playwright

from cua.config import RunSettings
from cua.environments.browser_launch import DEFAULT_ARGS, find_chromium
from cua.runner import run_task
from cua.scenario import ScriptTurn
from cua.testing.demo_server import serve_demo
from cua.testing.scripted import serve_script
from cua.testing.standin import StandIn, Turn

HERE = Path(__file__).resolve().parent


def click_turns(steps: int) -> list:
    return [Turn.call({"type": "click", "x": 200, "y": 130}) for _ in range(steps)] + [Turn.message("done")]


# The model each provider's loop names (the stand-ins accept them as their newest models).
MODELS = {"openai": "gpt-5.4", "anthropic": "claude-sonnet-5-5", "google": "gemini-3.5-flash"}


def click_script(steps: int) -> list[ScriptTurn]:
    click = ScriptTurn(actions=[{"type": "click", "x": 200, "y": 130}])
    return [click] * steps + [ScriptTurn(message="done")]


async def cua_loop(url: str, steps: int, provider: str = "openai") -> float:
    with serve_script(provider, click_script(steps), "sk-bench") as base_url, \
            tempfile.TemporaryDirectory() as out:
        settings = RunSettings(task="click the button", model=MODELS[provider], start_url=url,
                               max_steps=steps + 1, stream=False, out=Path(out), reasoning_summary=None)
        result = await run_task(settings, api_key="sk-bench", base_url=base_url, write_report=False)
        assert result.status == "completed", result
        rows = [json.loads(line) for line in open(Path(result.run_dir) / "steps.jsonl")]
    # Steady state: from the start of step 2 to the start of the final turn.
    return (rows[-1]["elapsed_s"] - rows[1]["elapsed_s"]) / (len(rows) - 2) * 1000


async def bare_loop(url: str, steps: int) -> float:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=find_chromium(None), args=[*DEFAULT_ARGS, *(["--no-sandbox"] if os.geteuid() == 0 else [])])
        page = await browser.new_page(viewport={"width": 1024, "height": 768})
        await page.goto(url)
        with StandIn(turns=click_turns(steps), api_key="sk-bench") as server:
            async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": "Bearer sk-bench"}) as http:
                shot = await page.screenshot()
                body = {"model": "gpt-5.4", "tools": [{"type": "computer"}],
                        "input": [{"role": "user", "content": [{"type": "input_text", "text": "click"}]}]}
                resp = (await http.post("/responses", json=body)).json()
                t0 = None
                for n in range(steps):
                    if n == 1:
                        t0 = time.perf_counter()
                    call = next(i for i in resp["output"] if i["type"] == "computer_call")
                    await page.mouse.click(200, 130)
                    shot = await page.screenshot()
                    body = {"model": "gpt-5.4", "tools": [{"type": "computer"}], "previous_response_id": resp["id"],
                            "input": [{"type": "computer_call_output", "call_id": call["call_id"],
                                       "output": {"type": "computer_screenshot",
                                                  "image_url": "data:image/png;base64," + base64.b64encode(shot).decode()}}]}
                    resp = (await http.post("/responses", json=body)).json()
                elapsed = time.perf_counter() - t0
        await browser.close()
    return elapsed / (steps - 1) * 1000


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--provider", action="append", choices=sorted(MODELS),
                        help="only these providers (repeatable; default: all three)")
    args = parser.parse_args()
    providers = args.provider or list(MODELS)
    with serve_demo(root=HERE) as site:
        url = site.url("index.html")
        bare_ms: list[float] = []
        cua_ms: dict[str, list[float]] = {p: [] for p in providers}
        for n in range(args.rounds):
            bare_ms.append(await bare_loop(url, args.steps))
            line = f"round {n + 1}: bare {bare_ms[-1]:.1f} ms/step"
            for provider in providers:
                cua_ms[provider].append(await cua_loop(url, args.steps, provider))
                line += f", {provider} {cua_ms[provider][-1]:.1f}"
            print(line, file=sys.stderr)
    bare = statistics.median(bare_ms)
    print(f"bare Playwright loop:      {bare:.1f} ms/step")
    for provider in providers:
        cua = statistics.median(cua_ms[provider])
        ratio = cua / bare
        verdict = f" (target <= 1.10) {'OK' if ratio <= 1.10 else 'OVER'}" if provider == "openai" else ""
        print(f"cua loop, {provider + ':':<10}      {cua:.1f} ms/step, ratio {ratio:.2f}{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
