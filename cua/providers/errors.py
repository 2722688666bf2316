"""Errors of the model API clients (OpenAI Responses, Anthropic Messages, Gemini).

Every one is an ``APIError`` (exit code 3). The hierarchy says what went wrong, so callers can
catch the kind they can act on:

    APIError
      APIStatusError          the service answered with an HTTP error status
        AuthenticationError   401 / 403: the key is wrong or lacks access
        RateLimitError        429 (``insufficient_quota`` included; it is not retried)
      APIConnectionError      the service could not be reached, or the connection broke
        APITimeoutError       no answer within the configured timeout
      StreamError             a stream broke off before its final event, or carried an ``error``
      ResponseFailedError     the request went through but the response has status ``failed``

``str(err)`` is one sentence with the HTTP status, error code and request id when known. None of
these messages ever contains the API key: the client redacts it before building them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import CuaError


class APIError(CuaError):
    """Base of every error talking to a model API."""

    exit_code = 3
    hint: str | None = None  # what the user can do about it, appended to the sentence
    show_status = True  # false where the HTTP status was a success and would only confuse

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        self.body = body
        # How many requests were made before giving up; set by the retry policy.
        self.attempts = 1
        super().__init__(message)

    def _details(self) -> list[str]:
        details = []
        if self.status is not None and self.show_status:
            details.append(f"HTTP {self.status}")
        if self.code:
            details.append(f"code {self.code}")
        if self.param:
            details.append(f"param {self.param}")
        if self.request_id:
            details.append(f"request id {self.request_id}")
        return details

    def __str__(self) -> str:
        text = self.message.strip().rstrip(".") or "The Responses API request failed"
        details = self._details()
        if details:
            text += f" ({', '.join(details)})"
        if self.hint:
            text += f"; {self.hint}"
        return text + "."

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class APIStatusError(APIError):
    """The service answered with an HTTP error status (4xx / 5xx)."""


class AuthenticationError(APIStatusError):
    """401 or 403: the API key is missing, wrong, or has no access to this model or project."""

    hint = "check OPENAI_API_KEY (or AZURE_OPENAI_API_KEY for Azure) and the key's project access"


class RateLimitError(APIStatusError):
    """429: too many requests (retried), or no quota left (code ``insufficient_quota``, not retried)."""


class APIConnectionError(APIError):
    """The service could not be reached, or the connection broke before an answer arrived."""


class APITimeoutError(APIConnectionError):
    """No answer within the configured timeout."""


class StreamError(APIError):
    """A streamed response went wrong.

    ``interrupted`` is true when the stream broke off before its final event (the request is
    safe to send again: nothing has been executed yet); false when the service sent an ``error``
    event, which is its answer and is not retried.
    """

    show_status = False

    def __init__(self, message: str, *, interrupted: bool = False, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.interrupted = interrupted


class ResponseFailedError(APIError):
    """The response came back with status ``failed``; ``code`` and ``message`` are its error.

    ``response`` is the whole failed response (a ``cua.providers.openai.models.Response``), ``status``
    stays the HTTP status of the exchange, which succeeded.
    """

    def __init__(self, message: str, *, response: Any = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.response = response
        self.response_id: str | None = getattr(response, "id", None)

    show_status = False

    def _details(self) -> list[str]:
        response = [f"response {self.response_id}"] if self.response_id else []
        return response + super()._details()


def status_error_class(status: int) -> type[APIStatusError]:
    """The most specific error class for an HTTP error status."""
    if status in (401, 403):
        return AuthenticationError
    if status == 429:
        return RateLimitError
    return APIStatusError
