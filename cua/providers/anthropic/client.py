"""The HTTP client of the Messages API: ``POST {base}/v1/messages``, JSON or SSE, with retries.

Keys and endpoint as the anthropic SDK reads them: ``ANTHROPIC_API_KEY`` in ``x-api-key``,
``ANTHROPIC_BASE_URL`` (default https://api.anthropic.com), ``anthropic-version: 2023-06-01``. A
LiteLLM proxy's Anthropic-format endpoint is the same API at its own base URL.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import ValidationError

from ... import __version__
from ...errors import ConfigError
from ..errors import APIConnectionError, APIError, APIStatusError, APITimeoutError, AuthenticationError, StreamError
from ..errors import RateLimitError
from ..retry import RetryPolicy
from ..sse import SSEParser
from .models import API_VERSION, Message

DEFAULT_BASE_URL = "https://api.anthropic.com"
USER_AGENT = f"cua/{__version__} (python {platform.python_version()}; httpx {httpx.__version__})"
MISSING_KEY = "No API key for Claude: set ANTHROPIC_API_KEY (or pass api_key)."
EventHandler = Callable[[dict[str, Any]], None]
# A stream's error event of these types is the service being busy, not an answer: sent again.
_TRANSIENT_STREAM_ERRORS = frozenset({"overloaded_error", "api_error"})


class ClaudeAuthenticationError(AuthenticationError):
    hint = "check ANTHROPIC_API_KEY (or the proxy's key) and the key's access to this model"


@dataclass(frozen=True)
class ClientConfig:
    """Where and how to reach the Messages API. The key never shows in ``repr()``."""

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    version: str = API_VERSION
    timeout: float = 600.0  # the SDK's default read timeout: a long reply may think for minutes
    connect_timeout: float = 10.0
    max_retries: int = 2

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ConfigError(MISSING_KEY)
        base = self.base_url.strip().rstrip("/")
        object.__setattr__(self, "base_url", base)
        if urlsplit(base).scheme not in ("http", "https"):
            raise ConfigError(f"The Claude API base URL must start with http:// or https://, got {display_url(base)!r}.")

    @classmethod
    def from_env(cls, api_key: str | None = None, base_url: str | None = None,
                 env: Mapping[str, str] | None = None) -> "ClientConfig":
        env = os.environ if env is None else env
        key = (api_key or env.get("ANTHROPIC_API_KEY", "")).strip()
        if not key:
            raise ConfigError(MISSING_KEY)
        return cls(api_key=key, base_url=base_url or env.get("ANTHROPIC_BASE_URL", "").strip() or DEFAULT_BASE_URL)


class MessagesClient:
    """An async client of ``/v1/messages``; ``retry`` and ``transport`` are for tests."""

    def __init__(self, config: ClientConfig, *, retry: RetryPolicy | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.retry = retry if retry is not None else RetryPolicy(max_retries=config.max_retries)
        self._http = httpx.AsyncClient(
            base_url=config.base_url + "/",
            headers={"User-Agent": USER_AGENT, "x-api-key": config.api_key, "anthropic-version": config.version,
                     "Accept": "application/json"},
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create(self, body: dict[str, Any], *, betas: tuple[str, ...] = (),
                     on_event: EventHandler | None = None) -> Message:
        """Send one request (streamed when ``body["stream"]``), retried as the SDK retries."""
        headers = {"anthropic-beta": ",".join(betas)} if betas else {}
        if body.get("stream"):
            return await self.retry.run(lambda: self._stream(body, headers, on_event))
        return await self.retry.run(lambda: self._json(body, headers))

    async def _json(self, body: dict[str, Any], headers: dict[str, str]) -> Message:
        try:
            answer = await self._http.post("v1/messages", json=body, headers=headers)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from None
        if answer.status_code >= 400:
            raise self._status_error(answer)
        try:
            data = answer.json()
        except ValueError:
            raise APIError("The Claude API answered with a body that is not JSON", status=answer.status_code,
                           request_id=answer.headers.get("request-id")) from None
        return self._message(data, answer)

    async def _stream(self, body: dict[str, Any], headers: dict[str, str],
                      on_event: EventHandler | None) -> Message:
        request = self._http.build_request("POST", "v1/messages", json=body,
                                           headers={**headers, "Accept": "text/event-stream"})
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
            if answer.headers.get("content-type", "").startswith("application/json"):
                await answer.aread()  # a proxy that ignores "stream"
                return self._message(answer.json(), answer)
            assembly = StreamAssembly(answer.headers.get("request-id"), on_event)
            parser = SSEParser()
            try:
                async for chunk in answer.aiter_bytes():
                    for sse in parser.feed(chunk):
                        assembly.take(sse.json() if not sse.is_done else {"type": "[DONE]"})
                for sse in parser.close():
                    assembly.take(sse.json())
            except httpx.TimeoutException as exc:
                raise self._transport_error(exc) from None
            except httpx.TransportError as exc:
                raise assembly.broken(f"the connection failed ({_reason(exc)})") from None
            except ValueError:
                raise assembly.broken("an event's data is not JSON") from None
            return self._message(assembly.message(), answer)
        finally:
            await answer.aclose()

    def _message(self, data: Any, answer: httpx.Response) -> Message:
        try:
            return Message.model_validate(data)
        except ValidationError as exc:
            where = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors()[:3])
            raise APIError(f"The Claude API answered with something that is not a message ({where})",
                           status=answer.status_code, request_id=answer.headers.get("request-id")) from None

    def _status_error(self, answer: httpx.Response) -> APIError:
        text = self._redact(answer.text)
        kind, message = None, f"The Claude API answered with an error: {answer.reason_phrase or 'no reason'}"
        try:
            body = json.loads(text)
        except ValueError:
            body = text
            snippet = " ".join(text.split())[:200]
            if snippet and not snippet.lower().startswith(("<!doctype", "<html")):
                message = f"The Claude API answered with an error: {snippet}"
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):  # {"type": "error", "error": {"type", "message"}, "request_id"}
            kind = error.get("type")
            message = str(error.get("message") or message)
        elif isinstance(body, dict) and isinstance(error, str):  # proxies: {"error": "…"}
            message = error
        status = answer.status_code
        cls: type[APIStatusError] = (ClaudeAuthenticationError if status in (401, 403)
                                     else RateLimitError if status == 429 else APIStatusError)
        request_id = answer.headers.get("request-id") or (body.get("request_id") if isinstance(body, dict) else None)
        return cls(message, status=status, type=kind, code=kind, request_id=request_id,
                   headers=answer.headers, body=body)

    def _transport_error(self, exc: httpx.TransportError) -> APIConnectionError:
        where = display_url(self.config.base_url)
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"Timed out waiting for the Claude API at {where}")
        return APIConnectionError(f"The Claude API at {where} is unreachable ({_reason(exc)}); check the base URL "
                                  "(ANTHROPIC_BASE_URL or --base-url) and the network")

    def _redact(self, text: str) -> str:
        return text.replace(self.config.api_key, "***") if self.config.api_key else text


class StreamAssembly:
    """Builds the message of one stream from its events: ``message_start`` gives the message,
    ``content_block_*`` its blocks piece by piece, ``message_delta`` the stop reason and usage."""

    def __init__(self, request_id: str | None, on_event: EventHandler | None) -> None:
        self.request_id = request_id
        self.on_event = on_event
        self.start: dict[str, Any] | None = None
        self.blocks: dict[int, dict[str, Any]] = {}
        self.partial_json: dict[int, str] = {}
        self.delta: dict[str, Any] = {}
        self.usage: dict[str, Any] = {}
        self.stopped = False

    def take(self, event: Any) -> None:
        if not isinstance(event, dict):
            raise self.broken("an event's data is not an object")
        kind = event.get("type")
        if self.on_event is not None:
            self.on_event(event)
        if kind == "error":
            error = event.get("error") if isinstance(event.get("error"), dict) else {}
            raise StreamError(f"The Claude API stream reported an error: {error.get('message') or 'no message'}",
                              interrupted=error.get("type") in _TRANSIENT_STREAM_ERRORS, type=error.get("type"),
                              code=error.get("type"), request_id=self.request_id, body=event)
        if kind == "message_start" and isinstance(event.get("message"), dict):
            self.start = event["message"]
            self.usage = dict(self.start.get("usage") or {})
        elif kind == "content_block_start":
            self.blocks[int(event["index"])] = dict(event["content_block"])
        elif kind == "content_block_delta":
            index, delta = int(event["index"]), event.get("delta") or {}
            block = self.blocks.setdefault(index, {})
            if delta.get("type") == "text_delta":
                block["text"] = block.get("text", "") + delta.get("text", "")
            elif delta.get("type") == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
            elif delta.get("type") == "signature_delta":
                block["signature"] = block.get("signature", "") + delta.get("signature", "")
            elif delta.get("type") == "input_json_delta":
                self.partial_json[index] = self.partial_json.get(index, "") + delta.get("partial_json", "")
        elif kind == "content_block_stop":
            index = int(event["index"])
            if index in self.partial_json:
                text = self.partial_json.pop(index)
                self.blocks[index]["input"] = json.loads(text) if text.strip() else {}
        elif kind == "message_delta":
            self.delta.update(event.get("delta") or {})
            self.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            self.stopped = True

    def message(self) -> dict[str, Any]:
        if self.start is None or not self.stopped:
            raise self.broken("the stream ended before message_stop")
        return {**self.start, **self.delta, "content": [self.blocks[i] for i in sorted(self.blocks)],
                "usage": self.usage}

    def broken(self, what: str) -> StreamError:
        """The stream broke off before its end: nothing was executed, so it is sent again."""
        return StreamError(f"The Claude API stream broke off: {what}", interrupted=True, request_id=self.request_id)


def _reason(exc: Exception) -> str:
    return str(exc).strip() or type(exc).__name__


def display_url(url: str) -> str:
    """The URL without any user:password part, for messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
