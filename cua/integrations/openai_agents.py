"""A computer for the OpenAI Agents SDK, over any cua environment.

    from agents import Agent, ComputerTool, Runner
    from cua.integrations.openai_agents import CuaComputer

    async with CuaComputer(start_url="https://example.com", allow_domains=["example.com"]) as computer:
        agent = Agent(name="shopper", model="gpt-5.4",
                      tools=[ComputerTool(computer=computer, on_safety_check=computer.safety_check)])
        await Runner.run(agent, "Put the blue mug in the cart")
    print(computer.closed.report)   # the cua run folder and report of what the agent did

The agent's actions run in a cua environment (a Playwright Chromium, an X display, a VM) under its
domain policy, and each one is a step of a cua run folder, exactly as ``cua mcp``'s computer
sessions are (``cua.mcp.computer``): ``close(save_as=...)`` saves them as a scenario and its
recording that ``cua replay`` plays with no model. Safety checks the model raises are decided by
cua's policy: nothing is acknowledged that nobody allowed (``safety="deny"`` by default; pass the
codes to acknowledge in ``safety_allow``, or ``safety="auto"``). Needs ``pip install 'cua[agents]'``.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any, Literal

try:
    from agents import AsyncComputer
except ImportError as exc:  # the optional extra is not installed
    raise ImportError("CuaComputer needs the OpenAI Agents SDK: pip install 'cua[agents]'") from exc

from ..agent import SafetyPolicy, Status
from ..config import RunSettings
from ..environments.base import Environment
from ..errors import SafetyDenied
from ..mcp.computer import Closed, Computers, ComputerSession
from ..providers.base import SafetyCheck


class CuaComputer(AsyncComputer):
    """An ``agents.AsyncComputer`` whose actions are a cua environment's and a cua run folder's."""

    def __init__(self, settings: RunSettings | None = None, *, out: str | Path = "runs",
                 safety: Literal["deny", "auto"] = "deny", safety_allow: list[str] | tuple[str, ...] = (),
                 vm_api_key: str | None = None, env: Environment | None = None, **fields: Any) -> None:
        """``settings`` (or RunSettings ``fields``: ``env``, ``start_url``, ``display``,
        ``allow_domains``, ``x_display``, ``vm_url``, ``task`` …) say which environment to open;
        or give your own ``env`` (any ``cua.environments.Environment``, not started)."""
        self.settings = settings or RunSettings(**fields)
        self._env = env
        self._computers = Computers(Path(out))
        self._vm_api_key = vm_api_key
        self._policy = SafetyPolicy(safety, safety_allow)
        self.session: ComputerSession | None = None
        self.closed: Closed | None = None
        self._fresh = False  # the last screenshot is the screen right after the last action

    async def open(self) -> "CuaComputer":
        label = f"agents-{self.settings.task or self.settings.env}"  # (a URL may hold a credential)
        self.session = await self._computers.open(self.settings, label=label, vm_api_key=self._vm_api_key,
                                                  env=self._env)
        self._fresh = True
        return self

    async def close(self, *, save_as: str | Path | None = None, status: Status = "completed",
                    error: str | None = None) -> Closed:
        """Stop the environment, finish the run folder and its report; with ``save_as`` (a
        .cua.yaml path) also write the scenario and recording of what the agent did. ``status``
        is how the agent's run ended (``error``, ``interrupted``: then nothing is saved)."""
        if self.session is None:
            raise RuntimeError("the computer is not open")
        session, self.session = self.session, None
        self.closed = await self._computers.close(session.id, save_as=Path(save_as) if save_as else None,
                                                  status=status, error=error)
        return self.closed

    async def __aenter__(self) -> "CuaComputer":
        return await self.open()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self.session is None:
            return
        if exc is None:
            await self.close()
        elif isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)):
            await self.close(status="interrupted", error="interrupted")
        else:  # the agent's run raised: the run folder says so, not "completed"
            await self.close(status="error", error=f"{type(exc).__name__}: {exc}")

    # -- what the Agents SDK calls ------------------------------------------------------------------
    # environment and dimensions stay None: the SDK then sends the GA `computer` tool, whose
    # screenshots may have any size.

    async def screenshot(self) -> str:
        session = self._open()
        if self._fresh and session.last is not None:  # the SDK asks right after the actions: already taken
            png = session.last.png
        else:
            async with session.lock:
                png = (await session.look()).png
        self._fresh = False
        return base64.b64encode(png).decode()

    async def click(self, x: int, y: int, button: str | None, *, keys: list[str] | None = None) -> None:
        # (the SDK passes None when the call named no button: the GA tool's default, left)
        await self._act({"type": "click", "x": x, "y": y, **({"button": button} if button else {}),
                         **({"keys": keys} if keys else {})})

    async def double_click(self, x: int, y: int, *, keys: list[str] | None = None) -> None:
        await self._act({"type": "double_click", "x": x, "y": y, **({"keys": keys} if keys else {})})

    async def scroll(self, x: int, y: int, scroll_x: int, scroll_y: int, *, keys: list[str] | None = None) -> None:
        await self._act({"type": "scroll", "x": x, "y": y, "scroll_x": scroll_x, "scroll_y": scroll_y,
                         **({"keys": keys} if keys else {})})

    async def type(self, text: str) -> None:
        await self._act({"type": "type", "text": text})

    async def wait(self) -> None:
        await self._act({"type": "wait"})

    async def move(self, x: int, y: int, *, keys: list[str] | None = None) -> None:
        await self._act({"type": "move", "x": x, "y": y, **({"keys": keys} if keys else {})})

    async def keypress(self, keys: list[str]) -> None:
        await self._act({"type": "keypress", "keys": keys})

    async def drag(self, path: list[tuple[int, int]], *, keys: list[str] | None = None) -> None:
        await self._act({"type": "drag", "path": [{"x": x, "y": y} for x, y in path],
                         **({"keys": keys} if keys else {})})

    async def safety_check(self, data: Any) -> bool:
        """For ``ComputerTool(on_safety_check=...)``: cua's safety policy decides each pending
        check (False makes the SDK stop before the actions run)."""
        check = data.safety_check
        pending = SafetyCheck(id=check.id, code=check.code or "", message=check.message or "")
        try:
            await self._policy.decide([pending])
        except SafetyDenied:
            return False
        return True

    def _open(self) -> ComputerSession:
        if self.session is None:
            raise RuntimeError("open the CuaComputer first (async with CuaComputer(...) as computer)")
        return self.session

    async def _act(self, action: dict[str, Any]) -> None:
        await self._open().act(action)
        self._fresh = True
