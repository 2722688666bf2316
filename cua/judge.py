"""The judge of ``ai_check``: a model asked whether a claim holds on the final screen.

One request over the run's own provider (any of the three wire formats, with its key, base URL,
retries and redaction): the claim, the final answer and the final screenshot, and one function,
``verdict(passed, reason)``, to answer with. The judge never acts: a computer call or a plain
text answer is no verdict, and the check fails saying so. Runs and replays put their judge in
context (``judging``) around their checks; ``cua run/replay --no-ai-checks`` makes it skip.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from .errors import ConfigError, CuaError

if TYPE_CHECKING:
    from .agent import RunResult
    from .config import RunSettings
    from .environments.base import Environment
    from .redact import Redactor

VERDICT_FUNCTION = "verdict"
PROMPT = (
    "You are checking the result of a computer-use run. Look at the screenshot of the screen as the "
    "run left it{answer}. Decide whether this claim holds: {claim}\n"
    f"Do not act on the screen. Answer only by calling {VERDICT_FUNCTION} with passed (true or false) "
    "and a one-sentence reason naming what you see."
)


@dataclass
class Judge:
    settings: "RunSettings"
    api_key: str | None = None
    base_url: str | None = None
    redactor: "Redactor | None" = None
    skip: bool = False  # --no-ai-checks

    async def verdict(self, claim: str, env: "Environment", result: "RunResult") -> tuple[bool, str]:
        from .providers import make_provider
        from .providers.base import FunctionCall, FunctionSpec, Screen

        png = await env.screenshot()
        answer = f', and the run\'s final answer: "{result.final_text}"' if result.final_text else ""
        # The run's model and endpoint, without what only the run needs (its remote MCP tools, its
        # stored prompt, its output limit): the judge is asked one plain question.
        settings = self.settings.model_copy(update={
            "mcp_servers": [], "prompt_id": None, "prompt_version": None, "prompt_variables": {},
            "max_output_tokens": None, "parallel_tool_calls": None, "instructions": None})
        provider = make_provider(settings, api_key=self.api_key, base_url=self.base_url, redactor=self.redactor)
        spec = FunctionSpec(VERDICT_FUNCTION, "Give the verdict on the claim.", {
            "type": "object",
            "properties": {"passed": {"type": "boolean", "description": "whether the claim holds"},
                           "reason": {"type": "string", "description": "one sentence: what you see"}},
            "required": ["passed", "reason"],
        })
        try:
            provider.start(PROMPT.format(claim=claim, answer=answer), png,
                           Screen(display=env.display, environment=settings.env), [spec])
            turn = await provider.next_turn(None)
        finally:
            await provider.aclose()
        result.usage.add(turn.usage)
        calls = [c for c in turn.calls if isinstance(c, FunctionCall) and c.name == VERDICT_FUNCTION]
        if not calls:
            said = (turn.text or "").strip().replace("\n", " ")[:160]
            raise NoVerdict("the judge gave no verdict" + (f": {said!r}" if said else ""))
        try:
            args: Any = json.loads(calls[0].arguments or "{}")
        except ValueError:
            args = None
        if not isinstance(args, dict) or not isinstance(args.get("passed"), bool):
            raise NoVerdict(f"the judge's verdict is not readable: {calls[0].arguments[:160]!r}")
        return args["passed"], str(args.get("reason") or "").strip()[:500] or "(no reason given)"


class NoVerdict(Exception):
    """The judge answered, but not with a verdict: the claim was not judged either way."""


_current: ContextVar[Judge | None] = ContextVar("cua_judge", default=None)


@contextmanager
def judging(judge: Judge | None) -> Iterator[None]:
    token = _current.set(judge)
    try:
        yield
    finally:
        _current.reset(token)


async def ai_verdict(claim: str, env: "Environment", result: "RunResult") -> tuple[bool | None, str, bool]:
    """(passed, reason, judged) from the run's judge: passed is None when the check was skipped;
    judged is False when no verdict came (the check fails, and so does a ``not:`` around it)."""
    judge = _current.get()
    if judge is None:
        raise ConfigError("ai_check needs a model to judge it, and this check runs outside a run or replay")
    if judge.skip:
        return None, "skipped (--no-ai-checks)", False
    try:
        passed, reason = await judge.verdict(claim, env, result)
    except ConfigError as exc:  # no key for the judge's model
        raise ConfigError(f"ai_check needs a model to judge it: {exc} (or skip it with --no-ai-checks)") from None
    except NoVerdict as exc:
        return False, str(exc), False
    except CuaError as exc:
        return False, f"the judge could not answer: {exc}", False
    return passed, reason, True
