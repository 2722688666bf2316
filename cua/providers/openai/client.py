"""The HTTP client of the Responses API: JSON and streamed (SSE) requests, errors, retries.

Works against the OpenAI API, Azure OpenAI's v1 endpoint (``api-key`` header) and any proxy that
speaks the same protocol (a LiteLLM proxy is just a base URL and a key). Response ids are opaque
strings and are only ever passed back, never parsed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from ...errors import ConfigError
from ..errors import APIError, APITimeoutError, ResponseFailedError, StreamError, status_error_class
from ..http import APIClient, EventHandler, checked_base_url, display_url, read_quietly, transport_reason
from ..retry import RetryPolicy
from ..sse import ServerSentEvent
from .models import CreateRequest, Response

DEFAULT_BASE_URL = "https://api.openai.com/v1"
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})

AuthHeader = Literal["authorization", "api-key"]

_MISSING_KEY = (
    "No API key for the Responses API: set OPENAI_API_KEY (or, for Azure OpenAI, both "
    "AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY), or pass api_key."
)


@dataclass(frozen=True)
class ClientConfig:
    """Where and how to reach the Responses API. The key never shows in ``repr()``."""

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    organization: str | None = None
    project: str | None = None
    auth_header: AuthHeader = "authorization"
    timeout: float = 120.0  # seconds to wait for each read (a response may think for a while)
    connect_timeout: float = 10.0
    max_retries: int = 2

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ConfigError(_MISSING_KEY)
        if self.auth_header not in ("authorization", "api-key"):
            raise ConfigError(
                f"auth_header must be 'authorization' or 'api-key', got {self.auth_header!r}."
            )
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be 0 or more, got {self.max_retries}.")
        object.__setattr__(self, "base_url", checked_base_url(self.base_url, ResponsesClient.api_name))

    @classmethod
    def from_env(
        cls,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        organization: str | None = None,
        project: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ClientConfig:
        """Build a config from arguments, falling back to the environment.

        ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID`` are
        read as the official SDK reads them. When ``AZURE_OPENAI_ENDPOINT`` and
        ``AZURE_OPENAI_API_KEY`` are both set and neither a key nor a base URL was given (as an
        argument or as ``OPENAI_BASE_URL``), Azure's v1 endpoint is used with the ``api-key``
        header; the deployment name then goes in the request's ``model``.
        """
        env = os.environ if env is None else env
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = timeout
        if max_retries is not None:
            extra["max_retries"] = max_retries
        organization = organization or env.get("OPENAI_ORG_ID") or None
        project = project or env.get("OPENAI_PROJECT_ID") or None

        azure_endpoint = env.get("AZURE_OPENAI_ENDPOINT", "").strip()
        azure_key = env.get("AZURE_OPENAI_API_KEY", "").strip()
        explicit = api_key or base_url or env.get("OPENAI_BASE_URL", "").strip()
        if azure_endpoint and azure_key and not explicit:
            return cls(
                api_key=azure_key,
                base_url=azure_base_url(azure_endpoint),
                organization=organization,
                project=project,
                auth_header="api-key",
                **extra,
            )

        key = api_key or env.get("OPENAI_API_KEY", "").strip()
        if not key:
            raise ConfigError(_MISSING_KEY)
        return cls(
            api_key=key,
            base_url=base_url or env.get("OPENAI_BASE_URL", "").strip() or DEFAULT_BASE_URL,
            organization=organization,
            project=project,
            **extra,
        )


def azure_base_url(endpoint: str) -> str:
    """``https://name.openai.azure.com/`` → ``https://name.openai.azure.com/openai/v1``."""
    base = endpoint.strip().rstrip("/")
    if base.endswith("/openai/v1"):
        return base
    if base.endswith("/openai"):
        return base + "/v1"
    return base + "/openai/v1"


class ResponsesClient(APIClient):
    """An async client of ``/responses``. Use it as ``async with ResponsesClient(config) as c:``.

    ``retry`` replaces the default policy (``RetryPolicy(max_retries=config.max_retries)``);
    ``transport`` is handed to httpx (tests and unusual networks).
    """

    api_name = "Responses API"
    base_url_settings = "OPENAI_BASE_URL or AZURE_OPENAI_ENDPOINT"

    def __init__(
        self,
        config: ClientConfig,
        *,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        super().__init__(config, self._headers(), retry=retry, transport=transport)

    async def __aenter__(self) -> ResponsesClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- the API --------------------------------------------------------------------------------

    async def create(
        self, request: CreateRequest, on_event: EventHandler | None = None
    ) -> Response:
        """``POST /responses``. Streams when ``request.stream`` is true.

        A streamed response is assembled from its final event; ``on_event`` sees every event as
        it arrives (for live progress). A stream that breaks off before its final event is sent
        again as a whole new request, so ``on_event`` may then see the early events twice.
        Raises ``ResponseFailedError`` when the response's status is ``failed``.
        """
        body = request.wire()
        if request.stream:
            response = await self.retry.run(lambda: self._stream("responses", body, on_event))
        else:
            response = await self.retry.run(
                lambda: self._json("POST", "responses", body, raise_failed=True)
            )
        return response

    async def retrieve(self, response_id: str) -> Response:
        """``GET /responses/{id}``; a failed response is returned as it is, not raised."""
        return await self.retry.run(lambda: self._json("GET", _response_path(response_id)))

    async def delete(self, response_id: str) -> None:
        """``DELETE /responses/{id}``."""
        await self.retry.run(lambda: self.send("DELETE", _response_path(response_id)))

    async def cancel(self, response_id: str) -> Response:
        """``POST /responses/{id}/cancel`` (only background responses can be cancelled)."""
        path = _response_path(response_id) + "/cancel"
        return await self.retry.run(lambda: self._json("POST", path))

    # --- one attempt each -------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        cfg = self.config
        headers = {"Accept": "application/json"}
        if cfg.auth_header == "api-key":
            headers["api-key"] = cfg.api_key
        else:
            headers["Authorization"] = f"Bearer {cfg.api_key}"
        if cfg.organization:
            headers["OpenAI-Organization"] = cfg.organization
        if cfg.project:
            headers["OpenAI-Project"] = cfg.project
        return headers

    async def _json(
        self, method: str, path: str, body: Any = None, *, raise_failed: bool = False
    ) -> Response:
        answer = await self.send(method, path, body)
        return self._finish(_decode_json(answer), answer, raise_failed=raise_failed)

    async def _stream(
        self, path: str, body: dict[str, Any], on_event: EventHandler | None
    ) -> Response:
        async with self.open_stream(path, body) as answer:
            content_type = answer.headers.get("content-type", "")
            if content_type.startswith("application/json"):
                # A proxy that ignores "stream": a plain JSON response is still an answer.
                await answer.aread()
                return self._finish(_decode_json(answer), answer, raise_failed=True)
            if content_type.startswith("text/html"):  # a login page or a proxy's error page
                await read_quietly(answer)
                raise _not_json(answer, "an HTML page instead of an event stream")
            assembly = _StreamAssembly(answer, on_event)
            await self.read_events(answer, assembly.take, lambda exc: assembly.broken(
                f"the connection failed ({transport_reason(exc)})"))
            return self._finish(assembly.final_response(), answer, raise_failed=True)

    # --- turning answers into responses or errors -------------------------------------------------

    def _finish(self, data: Any, answer: httpx.Response, *, raise_failed: bool) -> Response:
        request_id, status = answer.headers.get("x-request-id"), answer.status_code
        try:
            response = Response.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'response'}: {e['msg']}"
                for e in exc.errors()[:3]
            )
            raise APIError(
                f"The Responses API answered with something that is not a response ({problems})",
                status=status,
                request_id=request_id,
            ) from None
        if raise_failed and response.status == "failed":
            error = response.error or {}
            raise ResponseFailedError(
                self.redact(str(error.get("message") or "The response failed")),
                response=response,
                status=status,
                code=_text(error.get("code")),
                type=_text(error.get("type")),
                request_id=request_id,
            )
        return response

    def status_error(self, answer: httpx.Response) -> APIError:
        message, fields = _parse_error_body(answer, self.redact(answer.text))
        cls = status_error_class(answer.status_code)
        return cls(
            message,
            status=answer.status_code,
            type=_text(fields.get("type")),
            code=_text(fields.get("code")),
            param=_text(fields.get("param")),
            request_id=answer.headers.get("x-request-id"),
            headers=answer.headers,
            body=fields.get("body"),
        )

    def timeout_error(self, exc: httpx.TimeoutException) -> APITimeoutError:
        phase = "connect to" if isinstance(exc, httpx.ConnectTimeout) else "get an answer from"
        return APITimeoutError(
            f"Timed out trying to {phase} the Responses API at {display_url(self.config.base_url)}; "
            f"raise the timeout or check the network"
        )


class _StreamAssembly:
    """Collects one streamed response: the final event's response, and items seen on the way."""

    def __init__(self, answer: httpx.Response, on_event: EventHandler | None) -> None:
        self.answer = answer
        self.on_event = on_event
        self.items: dict[int, dict[str, Any]] = {}
        self.final: dict[str, Any] | None = None

    def take(self, sse: ServerSentEvent) -> bool:
        """Handle one event; true when the stream is over."""
        if sse.is_done:
            return True
        try:
            event = sse.json()
        except (ValueError, RecursionError):
            raise self.broken(f"an event's data is not JSON: {sse.data[:80]!r}") from None
        if not isinstance(event, dict):
            raise self.broken(f"an event's data is not an object: {sse.data[:80]!r}")
        if "type" not in event and sse.event:
            event["type"] = sse.event
        if self.on_event is not None:
            self.on_event(event)
        kind = event.get("type")
        if kind == "error" or (kind is None and "error" in event):
            raise self._error_event(event)
        if kind == "response.output_item.done" and isinstance(event.get("item"), dict):
            index = event.get("output_index")
            self.items[index if isinstance(index, int) else len(self.items)] = event["item"]
        elif kind in TERMINAL_EVENTS and isinstance(event.get("response"), dict):
            self.final = event["response"]
            return True
        return False

    def final_response(self) -> dict[str, Any]:
        if self.final is None:
            raise self.broken("the stream ended before response.completed")
        response = dict(self.final)
        if not response.get("output") and self.items:
            response["output"] = [self.items[i] for i in sorted(self.items)]
        return response

    def broken(self, what: str) -> StreamError:
        """The stream broke off before its final event: safe to send the request again."""
        return StreamError(
            f"The response stream broke off: {what}",
            interrupted=True,
            status=self.answer.status_code,
            request_id=self.answer.headers.get("x-request-id"),
        )

    def _error_event(self, event: dict[str, Any]) -> StreamError:
        detail = event.get("error") if isinstance(event.get("error"), dict) else event
        return StreamError(
            f"The response stream reported an error: {detail.get('message') or 'no message'}",
            status=self.answer.status_code,
            code=_text(detail.get("code")),
            type=_text(detail.get("type")),
            param=_text(detail.get("param")),
            request_id=self.answer.headers.get("x-request-id"),
            body=event,
        )


def _decode_json(answer: httpx.Response) -> Any:
    try:
        return answer.json()  # undecodable bytes are a UnicodeDecodeError, a ValueError too
    except (ValueError, RecursionError):
        raise _not_json(answer, "a body that is not JSON") from None


def _not_json(answer: httpx.Response, what: str) -> APIError:
    try:
        head = answer.content[:120]
    except httpx.ResponseNotRead:  # the connection broke while reading it
        head = b""
    snippet = " ".join(head.decode("utf-8", errors="replace").split())
    return APIError(
        f"The Responses API answered with {what} "
        f"(content-type {answer.headers.get('content-type') or 'none'}: {snippet!r})",
        status=answer.status_code,
        request_id=answer.headers.get("x-request-id"),
        headers=answer.headers,
    )


def _parse_error_body(answer: httpx.Response, text: str) -> tuple[str, dict[str, Any]]:
    """The message and ``{type, code, param, body}`` of an error answer, whatever its shape."""
    fallback = f"The Responses API answered with an error: {answer.reason_phrase or 'no reason given'}"
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        snippet = " ".join(text.split())[:200]
        if snippet and not snippet.lower().startswith(("<!doctype", "<html")):
            return f"The Responses API answered with an error: {snippet}", {"body": text}
        return fallback, {"body": text}
    fields: dict[str, Any] = {"body": body}
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        fields.update({k: error.get(k) for k in ("type", "code", "param")})
        message = error.get("message")
    elif isinstance(body, dict):
        # Proxies answer {"error": "…"}, {"detail": "…"} or {"message": "…"}.
        message = error or body.get("detail") or body.get("message")
    else:
        message = None
    return (str(message) if message else fallback), fields


def _response_path(response_id: str) -> str:
    if not response_id:
        raise ValueError("response_id must not be empty")
    # Opaque ids (LiteLLM's are long base64) are quoted whole, never interpreted.
    return "responses/" + quote(response_id, safe="")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)

