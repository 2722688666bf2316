"""The HTTP client of the Gemini API: ``generateContent`` and ``streamGenerateContent?alt=sse``,
Google's error shape, and retries through the one ``RetryPolicy``.

Keys and endpoint are read as google-genai reads them: ``GOOGLE_API_KEY`` wins over
``GEMINI_API_KEY`` when both are set (the SDK logs a warning and takes GOOGLE_API_KEY), the base URL
is ``GOOGLE_GEMINI_BASE_URL`` or Google's. The key travels in ``x-goog-api-key``, never in the URL.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from ... import __version__
from ...errors import ConfigError
from ..errors import APIConnectionError, APIError, APITimeoutError, AuthenticationError, StreamError, status_error_class
from ..retry import RetryPolicy
from ..sse import SSEParser

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API_VERSION = "v1beta"
USER_AGENT = f"cua/{__version__} (python {platform.python_version()}; httpx {httpx.__version__})"
MISSING_KEY = "No Gemini API key: set GEMINI_API_KEY (or GOOGLE_API_KEY), or pass api_key."

EventHandler = Callable[[dict[str, Any]], None]


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
        object.__setattr__(self, "base_url", self.base_url.strip().rstrip("/"))
        if urlsplit(self.base_url).scheme not in ("http", "https"):
            raise ConfigError(f"The Gemini API base URL must start with http:// or https://, "
                              f"got {display_url(self.base_url)!r}.")

    @classmethod
    def from_env(cls, api_key: str | None = None, base_url: str | None = None,
                 env: Mapping[str, str] | None = None) -> "GeminiConfig":
        env = os.environ if env is None else env
        key = (api_key or env.get("GOOGLE_API_KEY", "").strip() or env.get("GEMINI_API_KEY", "").strip())
        if not key:
            raise ConfigError(MISSING_KEY)
        return cls(api_key=key, base_url=base_url or env.get("GOOGLE_GEMINI_BASE_URL", "").strip() or DEFAULT_BASE_URL)


class GeminiClient:
    """An async client of ``models/{model}:generateContent``; ``aclose()`` when done."""

    def __init__(self, config: GeminiConfig, *, retry: RetryPolicy | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.retry = retry if retry is not None else RetryPolicy(max_retries=config.max_retries)
        self._http = httpx.AsyncClient(
            base_url=config.base_url + "/",
            headers={"User-Agent": USER_AGENT, "x-goog-api-key": config.api_key,
                     "Content-Type": "application/json"},
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

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
        try:
            answer = await self._http.post(path, json=body)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from None
        if answer.status_code >= 400:
            raise self._status_error(answer)
        try:
            data = answer.json()
        except ValueError:
            raise StreamError("The Gemini API answer broke off or is not JSON", interrupted=True,
                              status=answer.status_code) from None
        return _checked(data, answer)

    async def _stream(self, path: str, body: dict[str, Any], on_event: EventHandler | None) -> dict[str, Any]:
        request = self._http.build_request("POST", path, json=body, headers={"Accept": "text/event-stream"})
        try:
            answer = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from None
        try:
            if answer.status_code >= 400:
                try:
                    await answer.aread()
                except httpx.TransportError:
                    pass
                raise self._status_error(answer)
            merged = StreamMerge()
            parser = SSEParser()
            try:
                async for chunk in answer.aiter_bytes():
                    for sse in parser.feed(chunk):
                        merged.add(_event_json(sse.data, answer), on_event)
                for sse in parser.close():
                    merged.add(_event_json(sse.data, answer), on_event)
            except httpx.TimeoutException as exc:
                raise self._transport_error(exc) from None
            except httpx.TransportError as exc:
                raise StreamError(f"The Gemini response stream broke off ({_reason(exc)})", interrupted=True,
                                  status=answer.status_code) from None
            return merged.result(answer)
        finally:
            await answer.aclose()

    def _status_error(self, answer: httpx.Response) -> APIError:
        text = answer.text.replace(self.config.api_key, "***")
        message, status_name, headers, details = _parse_error(text, answer)
        cls: type[APIError] = status_error_class(answer.status_code)
        if answer.status_code in (401, 403) or "API_KEY_INVALID" in details:
            cls = GeminiAuthenticationError
        return cls(message, status=answer.status_code, code=status_name, headers=headers, body=text)

    def _transport_error(self, exc: httpx.TransportError) -> APIConnectionError:
        where = display_url(self.config.base_url)
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"Timed out waiting for the Gemini API at {where}")
        return APIConnectionError(f"The Gemini API at {where} is unreachable ({_reason(exc)}); check the base "
                                  "URL (GOOGLE_GEMINI_BASE_URL or --base-url) and the network")


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


def _reason(exc: Exception) -> str:
    return str(exc).strip() or type(exc).__name__


def display_url(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


__all__ = ["API_VERSION", "DEFAULT_BASE_URL", "GeminiAuthenticationError", "GeminiClient", "GeminiConfig",
           "MISSING_KEY", "StreamMerge"]
