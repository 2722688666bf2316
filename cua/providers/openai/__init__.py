"""OpenAI's Responses API (OpenAI, Azure OpenAI, a LiteLLM proxy): wire models, the HTTP client
(JSON, SSE, retries) and the provider adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .adapter import OpenAIProvider
from .client import ClientConfig, ResponsesClient

if TYPE_CHECKING:
    from ...config import RunSettings
    from ...redact import Redactor

__all__ = ["ClientConfig", "OpenAIProvider", "ResponsesClient", "from_settings"]


def from_settings(settings: "RunSettings", *, api_key: str | None = None, base_url: str | None = None,
                  redactor: "Redactor | None" = None) -> OpenAIProvider:
    """Keys and endpoint as the openai SDK reads them (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``,
    Azure's pair); the key and any URL credential go to ``redactor``."""
    from ...errors import ConfigError
    from ..http import add_secrets

    if settings.tool not in ("auto", "preview", "computer"):
        raise ConfigError(f"--tool {settings.tool} is an Anthropic tool; the openai provider takes "
                          "auto, preview or computer")
    config = ClientConfig.from_env(api_key=api_key, base_url=base_url)
    add_secrets(redactor, "OPENAI_API_KEY", config.api_key, config.base_url)
    return OpenAIProvider(settings, ResponsesClient(config))
