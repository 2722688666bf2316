"""The HTTP plumbing the model API clients share: one httpx client, retried requests, SSE streams,
transport errors and key redaction. Each vendor's client subclasses ``APIClient`` and keeps only
its wire format: the endpoints, the headers, the error body and how a stream's events add up.
"""

from __future__ import annotations

import platform
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx

from .. import __version__
from ..errors import ConfigError
from .errors import APIConnectionError, APIError, APITimeoutError, StreamError
from .retry import RetryPolicy
from .sse import ServerSentEvent, SSEParser

if TYPE_CHECKING:
    from ..redact import Redactor

USER_AGENT = f"cua/{__version__} (python {platform.python_version()}; httpx {httpx.__version__})"

EventHandler = Callable[[dict[str, Any]], None]


class APIConfig(Protocol):
    """What every client's config holds (each is a frozen dataclass with the vendor's defaults)."""

    @property
    def api_key(self) -> str: ...
    @property
    def base_url(self) -> str: ...
    @property
    def timeout(self) -> float: ...
    @property
    def connect_timeout(self) -> float: ...
    @property
    def max_retries(self) -> int: ...


class APIClient:
    """One vendor's API over one ``httpx.AsyncClient``; every request goes through ``retry``
    (default: ``RetryPolicy(max_retries=config.max_retries)``). ``transport`` is for tests.

    Subclasses name the API (``api_name``, for messages), the settings that move its base URL
    (``base_url_settings``) and turn an error answer into an ``APIError`` (``status_error``).
    """

    api_name: ClassVar[str]
    base_url_settings: ClassVar[str]

    def __init__(self, config: APIConfig, headers: dict[str, str], *, retry: RetryPolicy | None,
                 transport: httpx.AsyncBaseTransport | None) -> None:
        self.retry = retry if retry is not None else RetryPolicy(max_retries=config.max_retries)
        self._base_url = config.base_url
        self._api_key = config.api_key
        self._http = httpx.AsyncClient(
            base_url=config.base_url + "/",
            headers={"User-Agent": USER_AGENT, **headers},
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, method: str, path: str, body: Any = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        """One attempt, read whole; an error status or a failed connection is raised as an ``APIError``."""
        try:
            answer = await self._http.request(method, path, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise self.transport_error(exc) from None
        if answer.status_code >= 400:
            raise self.status_error(answer)
        return answer

    @asynccontextmanager
    async def open_stream(self, path: str, body: Any,
                          headers: dict[str, str] | None = None) -> AsyncIterator[httpx.Response]:
        """``POST`` asking for an event stream; yields the answer once its status is a success."""
        request = self._http.build_request("POST", path, json=body,
                                           headers={**(headers or {}), "Accept": "text/event-stream"})
        try:
            answer = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise self.transport_error(exc) from None
        try:
            if answer.status_code >= 400:
                await read_quietly(answer)
                raise self.status_error(answer)
            yield answer
        finally:
            await answer.aclose()

    async def read_events(self, answer: httpx.Response, take: Callable[[ServerSentEvent], bool | None],
                          cut: Callable[[httpx.TransportError], StreamError]) -> None:
        """Hand each event of ``answer`` to ``take`` until it returns true or the stream ends. A
        connection that breaks mid-stream becomes ``cut(exc)``: a ``StreamError`` that is retried."""
        parser = SSEParser()
        try:
            async for chunk in answer.aiter_bytes():
                for sse in parser.feed(chunk):
                    if take(sse):
                        return
            for sse in parser.close():
                if take(sse):
                    return
        except httpx.TimeoutException as exc:
            raise self.transport_error(exc) from None
        except httpx.TransportError as exc:
            raise cut(exc) from None

    def status_error(self, answer: httpx.Response) -> APIError:
        raise NotImplementedError

    def transport_error(self, exc: httpx.TransportError) -> APIConnectionError:
        if isinstance(exc, httpx.TimeoutException):
            return self.timeout_error(exc)
        return APIConnectionError(f"The {self.api_name} at {display_url(self._base_url)} is unreachable "
                                  f"({transport_reason(exc)}); check the base URL ({self.base_url_settings}) "
                                  "and the network")

    def timeout_error(self, exc: httpx.TimeoutException) -> APITimeoutError:
        return APITimeoutError(f"Timed out waiting for the {self.api_name} at {display_url(self._base_url)}")

    def redact(self, text: str) -> str:
        """``text`` without the key: some servers echo the key they rejected."""
        return text.replace(self._api_key, "***") if self._api_key else text


async def read_quietly(answer: httpx.Response) -> None:
    try:
        await answer.aread()
    except httpx.TransportError:
        pass  # the status alone is still worth reporting


def checked_base_url(url: str, api_name: str) -> str:
    """``url`` without surrounding space or a trailing slash; a ``ConfigError`` unless it is http(s)."""
    base = url.strip().rstrip("/")
    if urlsplit(base).scheme not in ("http", "https"):
        raise ConfigError(f"The {api_name} base URL must start with http:// or https://, got {display_url(base)!r}.")
    return base


def add_secrets(redactor: "Redactor | None", key_name: str, api_key: str, base_url: str) -> None:
    """Hand a client's key and any credential in its base URL to the run's redactor."""
    if redactor is not None:
        redactor.add(key_name, api_key)
        redactor.add_url("BASE_URL_CREDENTIAL", base_url)


def transport_reason(exc: Exception) -> str:
    return str(exc).strip() or type(exc).__name__


def display_url(url: str) -> str:
    """The URL without any user:password part, for messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
