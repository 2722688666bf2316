"""The HTTP client of the Messages API: ``POST {base}/v1/messages``, JSON or SSE, with retries.

Keys and endpoint as the anthropic SDK reads them: ``ANTHROPIC_API_KEY`` in ``x-api-key``,
``ANTHROPIC_BASE_URL`` (default https://api.anthropic.com), ``anthropic-version: 2023-06-01``. A
LiteLLM proxy's Anthropic-format endpoint is the same API at its own base URL.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from ...errors import ConfigError
from ..errors import APIError, APIStatusError, AuthenticationError, RateLimitError, StreamError
from ..http import APIClient, EventHandler, checked_base_url, transport_reason
from ..retry import RetryPolicy
from ..sse import ServerSentEvent
from .models import API_VERSION, Message

DEFAULT_BASE_URL = "https://api.anthropic.com"
MISSING_KEY = "No API key for Claude: set ANTHROPIC_API_KEY (or pass api_key)."
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
        object.__setattr__(self, "base_url", checked_base_url(self.base_url, MessagesClient.api_name))

    @classmethod
    def from_env(cls, api_key: str | None = None, base_url: str | None = None,
                 env: Mapping[str, str] | None = None) -> "ClientConfig":
        env = os.environ if env is None else env
        key = (api_key or env.get("ANTHROPIC_API_KEY", "")).strip()
        if not key:
            raise ConfigError(MISSING_KEY)
        return cls(api_key=key, base_url=base_url or env.get("ANTHROPIC_BASE_URL", "").strip() or DEFAULT_BASE_URL)


class MessagesClient(APIClient):
    """An async client of ``/v1/messages``; ``retry`` and ``transport`` are for tests."""

    api_name = "Claude API"
    base_url_settings = "ANTHROPIC_BASE_URL or --base-url"

    def __init__(self, config: ClientConfig, *, retry: RetryPolicy | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        headers = {"x-api-key": config.api_key, "anthropic-version": config.version, "Accept": "application/json"}
        super().__init__(config, headers, retry=retry, transport=transport)

    async def create(self, body: dict[str, Any], *, betas: tuple[str, ...] = (),
                     on_event: EventHandler | None = None) -> Message:
        """Send one request (streamed when ``body["stream"]``), retried as the SDK retries."""
        headers = {"anthropic-beta": ",".join(betas)} if betas else {}
        if body.get("stream"):
            return await self.retry.run(lambda: self._stream(body, headers, on_event))
        return await self.retry.run(lambda: self._json(body, headers))

    async def _json(self, body: dict[str, Any], headers: dict[str, str]) -> Message:
        answer = await self.send("POST", "v1/messages", body, headers)
        try:
            data = answer.json()
        except ValueError:
            raise APIError("The Claude API answered with a body that is not JSON", status=answer.status_code,
                           request_id=answer.headers.get("request-id")) from None
        return self._message(data, answer)

    async def _stream(self, body: dict[str, Any], headers: dict[str, str],
                      on_event: EventHandler | None) -> Message:
        async with self.open_stream("v1/messages", body, headers) as answer:
            if answer.headers.get("content-type", "").startswith("application/json"):
                await answer.aread()  # a proxy that ignores "stream"
                return self._message(answer.json(), answer)
            assembly = StreamAssembly(answer.headers.get("request-id"), on_event)

            def take(sse: ServerSentEvent) -> None:
                assembly.take(sse.json() if not sse.is_done else {"type": "[DONE]"})

            try:
                await self.read_events(answer, take, lambda exc: assembly.broken(
                    f"the connection failed ({transport_reason(exc)})"))
            except ValueError:
                raise assembly.broken("an event's data is not JSON") from None
            return self._message(assembly.message(), answer)

    def _message(self, data: Any, answer: httpx.Response) -> Message:
        try:
            return Message.model_validate(data)
        except ValidationError as exc:
            where = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors()[:3])
            raise APIError(f"The Claude API answered with something that is not a message ({where})",
                           status=answer.status_code, request_id=answer.headers.get("request-id")) from None

    def status_error(self, answer: httpx.Response) -> APIError:
        text = self.redact(answer.text)
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

