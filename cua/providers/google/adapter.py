"""The Gemini API as a provider: the request, the conversation, and replies ↔ typed turns.

The conversation is stateless: every request carries the whole history. The model's contents go
back verbatim (``thoughtSignature`` parts included, which Gemini 3+ requires); each call is answered
in the next ``user`` content by a ``functionResponse`` of the same name, in order, carrying the
page's ``url`` (browser) and the screenshot as an inline PNG part of the response. Only the
``keep_screenshots`` newest screenshots are sent; older responses lose their image part, as
Google's reference agent drops them.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from ...errors import ModelOutputError
from ..base import (
    CallAnswer,
    ComputerCall,
    EventHandler,
    FunctionCall,
    FunctionSpec,
    Provider,
    SafetyCheck,
    Screen,
    Turn,
    Usage,
)
from .calls import call_actions, safety_decision
from .models import (
    FINISH_EXPLAINED,
    NORMAL_FINISH,
    PREDEFINED_FUNCTIONS,
    GenerateContentResponse,
    action_set_for,
    computer_use_tool,
    environment_for,
    excluded_functions,
)

if TYPE_CHECKING:
    from ...config import RunSettings

NOT_EXECUTED = "Not executed: an earlier call of this turn failed."


def image_part(png: bytes) -> dict[str, Any]:
    return {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode("ascii")}}


class GoogleProvider(Provider):
    name = "google"
    answers_errors = True

    def __init__(self, settings: "RunSettings", client: Any) -> None:
        self.settings = settings
        self.client = client  # a GeminiClient, or anything with its ``generate``
        self.contents: list[dict[str, Any]] = []
        self.screen: Screen | None = None
        self.tools: list[dict[str, Any]] = []
        self._functions: set[str] = set()
        self._calls: dict[str, dict[str, Any]] = {}  # our call id → its functionCall, for the answer
        self._turns = 0
        self._last_screenshot: bytes | None = None

    @property
    def action_set(self) -> str:
        return action_set_for(self.settings.model)

    def start(self, task: str, screenshot: bytes, screen: Screen, functions: list[FunctionSpec]) -> None:
        s = self.settings
        self.screen = screen
        excluded = excluded_functions(s.env, s.excluded_functions, action_set_for(s.model))
        self.tools = [computer_use_tool(s.env, excluded)]
        if functions:
            self.tools.append({"functionDeclarations": [
                {"name": f.name, "description": f.description, "parameters": f.parameters} for f in functions
            ]})
        self._functions = {f.name for f in functions}
        self._last_screenshot = screenshot
        self.contents = [{"role": "user", "parts": [{"text": task}, image_part(screenshot)]}]

    def request(self) -> dict[str, Any]:
        s = self.settings
        config: dict[str, Any] = {"maxOutputTokens": s.max_tokens}
        thinking: dict[str, Any] = {"includeThoughts": True}
        if s.thinking_budget:
            thinking["thinkingBudget"] = s.thinking_budget
        config["thinkingConfig"] = thinking
        body: dict[str, Any] = {"contents": self.contents, "tools": self.tools, "generationConfig": config}
        if s.instructions:
            body["systemInstruction"] = {"parts": [{"text": s.instructions}]}
        return body

    async def next_turn(self, on_event: EventHandler | None = None) -> Turn:
        assert self.screen is not None, "start() first"
        if on_event is not None:
            on_event({"type": "model.waiting"})
        data = await self.client.generate(self.settings.model, self.request(), stream=self.settings.stream,
                                          on_event=on_event)
        self._turns += 1
        return self._turn(data)

    def answer(self, answers: list[CallAnswer]) -> None:
        parts = [self._response(answer) for answer in answers]
        self.contents.append({"role": "user", "parts": parts})
        self._calls.clear()
        self._trim_screenshots()

    def public(self) -> dict[str, Any]:
        s = self.settings
        return {"provider": self.name, "tool": "computerUse", "action_set": self.action_set,
                "computer_use_environment": environment_for(s.env)}

    async def aclose(self) -> None:
        if hasattr(self.client, "aclose"):
            await self.client.aclose()

    # --- answers ---------------------------------------------------------------------------------

    def _response(self, answer: CallAnswer) -> dict[str, Any]:
        call = answer.call
        wire = self._calls.get(call.id, {})
        response: dict[str, Any] = {"name": wire.get("name", call.name)}
        if wire.get("id"):
            response["id"] = wire["id"]
        if isinstance(call, FunctionCall):
            if not answer.executed:
                response["response"] = {"error": NOT_EXECUTED}
            elif answer.error is not None:
                response["response"] = {"error": answer.error}
            else:
                response["response"] = {"output": answer.output or ""}
            return {"functionResponse": response}
        body: dict[str, Any] = {}
        if self.settings.env == "browser":
            body["url"] = answer.url or ""
        if not answer.executed:
            body["error"] = NOT_EXECUTED
        elif answer.error is not None:
            body["error"] = answer.error
        if any(check.id == call.id for check in answer.acknowledged):
            body["safety_acknowledgement"] = "true"
        response["response"] = body
        screenshot = answer.screenshot or self._last_screenshot
        if answer.screenshot is not None:
            self._last_screenshot = answer.screenshot
        if screenshot is not None:
            response["parts"] = [image_part(screenshot)]
        return {"functionResponse": response}

    def _trim_screenshots(self) -> None:
        """Keep the images of the ``keep_screenshots`` newest screenshots (and every one of the
        answers just given, each call's own); drop older ones."""
        slots: list[tuple[dict[str, Any], str]] = []  # (holder, key) of each image, oldest first
        newest = sum(1 for p in self.contents[-1].get("parts", []) if "parts" in p.get("functionResponse", {}))
        keep = max(self.settings.keep_screenshots, newest)
        for content in self.contents:
            if content.get("role") != "user":
                continue
            for part in content.get("parts", []):
                if "inlineData" in part:
                    slots.append((content, "initial"))
                elif "parts" in part.get("functionResponse", {}):
                    slots.append((part["functionResponse"], "parts"))
        for holder, key in slots[:-keep]:
            if key == "parts":
                del holder["parts"]
            else:
                holder["parts"] = [p for p in holder["parts"] if "inlineData" not in p]

    # --- reply → Turn ----------------------------------------------------------------------------

    def _turn(self, data: dict[str, Any]) -> Turn:
        try:
            reply = GenerateContentResponse.model_validate(data)
        except ValueError as exc:
            raise ModelOutputError(f"the Gemini reply is not a GenerateContentResponse ({exc.errors()[0]['msg']})"
                                   if hasattr(exc, "errors") else "the Gemini reply cannot be read") from None
        usage = _usage(reply)
        turn_id = reply.response_id or f"turn-{self._turns}"
        feedback = reply.prompt_feedback
        if not reply.candidates:
            why = "the reply has no candidates"
            if feedback is not None and feedback.block_reason:
                why = f"the prompt was blocked ({feedback.block_reason}"
                why += f": {feedback.block_reason_message})" if feedback.block_reason_message else ")"
            return Turn(id=turn_id, failure=why, usage=usage, items=[_strip(data)])
        candidate = reply.candidates[0]
        raw_content = (data.get("candidates") or [{}])[0].get("content") or {"role": "model", "parts": []}
        raw_content.setdefault("role", "model")
        if raw_content.get("parts"):
            self.contents.append(raw_content)  # verbatim: thought signatures go back unchanged
        parts = candidate.content.parts if candidate.content else []
        calls: list[ComputerCall | FunctionCall] = []
        for n, part in enumerate(parts):
            if part.function_call is None:
                continue
            call_id = part.function_call.id or f"{turn_id}-{n}"
            self._calls[call_id] = part.function_call.model_dump(exclude_none=True)
            calls.append(self._call(call_id, part.function_call.name, part.function_call.args))
        failure = None
        reason = candidate.finish_reason or "STOP"
        if reason not in NORMAL_FINISH:
            explained = FINISH_EXPLAINED.get(reason, "the reply ended abnormally")
            failure = f"Gemini stopped with finishReason {reason}: {explained}"
            if candidate.finish_message:
                failure += f" ({candidate.finish_message})"
        return Turn(
            id=turn_id,
            calls=calls,
            text="".join(p.text for p in parts if p.text and not p.thought),
            reasoning="".join(p.text for p in parts if p.text and p.thought),
            failure=failure,
            usage=usage,
            items=[_strip(data)],
        )

    def _call(self, call_id: str, name: str, args: dict[str, Any]) -> ComputerCall | FunctionCall:
        if name in self._functions or name not in PREDEFINED_FUNCTIONS:
            # An unknown name goes to the function registry, which answers it with an error.
            return FunctionCall(id=call_id, name=name, arguments=json.dumps(args))
        assert self.screen is not None
        checks = []
        decision = safety_decision(args)
        if decision is not None:
            checks.append(SafetyCheck(id=call_id, code="require_confirmation",
                                      message=str(decision.get("explanation") or "")))
        call = ComputerCall(id=call_id, actions=[], safety_checks=checks, screenshot=True, name=name)
        try:
            call.actions = call_actions(name, args, self.screen.display, self.settings.env)
        except ModelOutputError as exc:
            call.problem = str(exc)
        return call


def _usage(reply: GenerateContentResponse) -> Usage | None:
    meta = reply.usage_metadata
    if meta is None:
        return None
    prompt = meta.prompt_token_count + meta.tool_use_prompt_token_count
    output = meta.candidates_token_count + meta.thoughts_token_count
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        reasoning_tokens=meta.thoughts_token_count,
        cache_read_tokens=meta.cached_content_token_count,
        total_tokens=meta.total_token_count or prompt + output,
    )


def _strip(data: dict[str, Any]) -> dict[str, Any]:
    """The reply as recorded: thought signatures shortened (opaque, long, useless to a reader)."""
    text = json.dumps(data)
    if "thoughtSignature" not in text and "thought_signature" not in text:
        return data
    copy = json.loads(text)
    for candidate in copy.get("candidates") or []:
        for part in (candidate.get("content") or {}).get("parts") or []:
            for key in ("thoughtSignature", "thought_signature"):
                if key in part:
                    part[key] = "…"
    return copy


__all__ = ["GoogleProvider", "NOT_EXECUTED", "image_part"]
