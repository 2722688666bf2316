"""The HTTP client of the Gemini API: ``generateContent`` and ``streamGenerateContent?alt=sse``,
Google's error shape, and retries through the one ``RetryPolicy``.

Keys and endpoint are read as google-genai reads them: ``GOOGLE_API_KEY`` wins over
``GEMINI_API_KEY`` when both are set (the SDK logs a warning and takes GOOGLE_API_KEY), the base URL
is ``GOOGLE_GEMINI_BASE_URL`` or Google's. The key travels in ``x-goog-api-key``, never in the URL.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from ...errors import ConfigError
from ..errors import APIError, AuthenticationError, StreamError, status_error_class
from ..http import APIClient, EventHandler, checked_base_url, transport_reason
from ..retry import RetryPolicy
from ..sse import ServerSentEvent

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API_VERSION = "v1beta"
MISSING_KEY = "No Gemini API key: set GEMINI_API_KEY (or GOOGLE_API_KEY), or pass api_key."


class GeminiAuthenticationError(AuthenticationError):
    """The key was refused (Google answers a bad key with 400 ``API_KEY_INVALID``, a missing or
    unauthorised one with 403 ``PERMISSION_DENIED``)."""

    hint = "check GEMINI_API_KEY (or GOOGLE_API_KEY) and that the key may use the Gemini API"


@dataclass(frozen=True)
class GeminiConfig:
    """Where and how to reach the Gemini API. The key never shows in ``repr()``."""

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 120.0
    connect_timeout: float = 10.0
    max_retries: int = 2

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ConfigError(MISSING_KEY)
        object.__setattr__(self, "base_url", checked_base_url(self.base_url, GeminiClient.api_name))

    @classmethod
    def from_env(cls, api_key: str | None = None, base_url: str | None = None,
                 env: Mapping[str, str] | None = None) -> "GeminiConfig":
        env = os.environ if env is None else env
        key = (api_key or env.get("GOOGLE_API_KEY", "").strip() or env.get("GEMINI_API_KEY", "").strip())
        if not key:
            raise ConfigError(MISSING_KEY)
        return cls(api_key=key, base_url=base_url or env.get("GOOGLE_GEMINI_BASE_URL", "").strip() or DEFAULT_BASE_URL)


class GeminiClient(APIClient):
    """An async client of ``models/{model}:generateContent``; ``aclose()`` when done."""

    api_name = "Gemini API"
    base_url_settings = "GOOGLE_GEMINI_BASE_URL or --base-url"

    def __init__(self, config: GeminiConfig, *, retry: RetryPolicy | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        headers = {"x-goog-api-key": config.api_key, "Content-Type": "application/json"}
        super().__init__(config, headers, retry=retry, transport=transport)

    async def generate(self, model: str, body: dict[str, Any], *, stream: bool,
                       on_event: EventHandler | None = None) -> dict[str, Any]:
        """One reply (a ``GenerateContentResponse`` dict). Streamed, its chunks are merged into
        one; a stream cut off before its last chunk is sent again whole."""
        name = quote(model.removeprefix("models/"), safe="-._")
        if stream:
            path = f"{API_VERSION}/models/{name}:streamGenerateContent?alt=sse"
            return await self.retry.run(lambda: self._stream(path, body, on_event))
        path = f"{API_VERSION}/models/{name}:generateContent"
        return await self.retry.run(lambda: self._json(path, body))

    async def _json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.send("POST", path, body)
        try:
            data = answer.json()
        except ValueError:
            raise StreamError("The Gemini API answer broke off or is not JSON", interrupted=True,
                              status=answer.status_code) from None
        return _checked(data, answer)

    async def _stream(self, path: str, body: dict[str, Any], on_event: EventHandler | None) -> dict[str, Any]:
        async with self.open_stream(path, body) as answer:
            merged = StreamMerge()

            def take(sse: ServerSentEvent) -> None:
                merged.add(_event_json(sse.data, answer), on_event)

            def cut(exc: httpx.TransportError) -> StreamError:
                return StreamError(f"The Gemini response stream broke off ({transport_reason(exc)})",
                                   interrupted=True, status=answer.status_code)

            await self.read_events(answer, take, cut)
            return merged.result(answer)

    def status_error(self, answer: httpx.Response) -> APIError:
        text = self.redact(answer.text)
        message, status_name, headers, details = _parse_error(text, answer)
        cls: type[APIError] = status_error_class(answer.status_code)
        if answer.status_code in (401, 403) or "API_KEY_INVALID" in details:
            cls = GeminiAuthenticationError
        return cls(message, status=answer.status_code, code=status_name, headers=headers, body=text)


class StreamMerge:
    """Merges the chunks of a streamed reply into one reply: consecutive text parts of one kind
    (thought or answer) join into one part, other parts are kept whole, in order; the last chunk's
    finish reason and usage win."""

    def __init__(self) -> None:
        self.parts: list[dict[str, Any]] = []
        self.last: dict[str, Any] | None = None
        self.role = "model"
        self.finished = False

    def add(self, chunk: dict[str, Any], on_event: EventHandler | None) -> None:
        self.last = chunk
        for candidate in (chunk.get("candidates") or [])[:1]:
            content = candidate.get("content") or {}
            self.role = content.get("role") or self.role
            for part in content.get("parts") or []:
                self._take(part, on_event)
            if candidate.get("finishReason") or candidate.get("finish_reason"):
                self.finished = True
        if chunk.get("promptFeedback", {}).get("blockReason"):
            self.finished = True

    def _take(self, part: dict[str, Any], on_event: EventHandler | None) -> None:
        text = part.get("text")
        if isinstance(text, str) and on_event is not None and text:
            on_event({"type": "model.thinking" if part.get("thought") else "model.text", "delta": text})
        previous = self.parts[-1] if self.parts else None
        joinable = (isinstance(text, str) and previous is not None and isinstance(previous.get("text"), str)
                    and bool(previous.get("thought")) == bool(part.get("thought"))
                    and set(part) <= {"text", "thought", "thoughtSignature"}
                    and "thoughtSignature" not in previous)
        if joinable:
            assert previous is not None
            previous["text"] += text
            if "thoughtSignature" in part:
                previous["thoughtSignature"] = part["thoughtSignature"]
        else:
            self.parts.append(dict(part))

    def result(self, answer: httpx.Response) -> dict[str, Any]:
        if not self.finished or self.last is None:
            raise StreamError("The Gemini response stream ended before its last chunk", interrupted=True,
                              status=answer.status_code)
        reply = dict(self.last)
        candidates = [dict(c) for c in reply.get("candidates") or [{}]]
        candidates[0]["content"] = {"role": self.role, "parts": self.parts}
        reply["candidates"] = candidates
        return reply


def _event_json(data: str, answer: httpx.Response) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except ValueError:
        raise StreamError(f"A Gemini stream event is not JSON: {data[:80]!r}", interrupted=True,
                          status=answer.status_code) from None
    if not isinstance(event, dict):
        raise StreamError(f"A Gemini stream event is not an object: {data[:80]!r}", status=answer.status_code)
    if isinstance(event.get("error"), dict):
        error = event["error"]
        raise StreamError(f"The Gemini response stream reported an error: {error.get('message') or 'no message'}",
                          code=str(error.get("status") or error.get("code") or "") or None, body=event)
    return event


def _checked(data: Any, answer: httpx.Response) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise APIError("The Gemini API answered with something that is not a reply", status=answer.status_code)
    return data


def _parse_error(text: str, answer: httpx.Response) -> tuple[str, str | None, dict[str, str], str]:
    """Message, status name (``RESOURCE_EXHAUSTED``), headers for the retry policy, and the details
    as text. Google sends no ``retry-after`` header: its wait is a ``RetryInfo.retryDelay`` in the
    body, handed to the policy as one."""
    headers = dict(answer.headers)
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if body is not None and isinstance(body, list) and body and isinstance(body[0], dict):
        error = body[0].get("error")  # the streaming endpoint wraps its error in a list
    if not isinstance(error, dict):
        snippet = " ".join(text.split())[:200]
        return f"The Gemini API answered with an error: {snippet or answer.reason_phrase}", None, headers, ""
    details = error.get("details") if isinstance(error.get("details"), list) else []
    for detail in details:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s") and "retry-after" not in headers:
            headers["retry-after"] = delay[:-1]
    status = error.get("status")
    return (str(error.get("message") or "The Gemini API request failed"),
            str(status) if status else None, headers, json.dumps(details))


__all__ = ["API_VERSION", "DEFAULT_BASE_URL", "GeminiAuthenticationError", "GeminiClient", "GeminiConfig",
           "MISSING_KEY", "StreamMerge"]
