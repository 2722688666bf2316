"""The Gemini API with its ``computerUse`` tool: wire models, the HTTP client (JSON, SSE,
retries), the predefined functions → typed actions, and the provider adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .adapter import GoogleProvider
from .client import GeminiClient, GeminiConfig

if TYPE_CHECKING:
    from ...config import RunSettings
    from ...redact import Redactor

__all__ = ["GeminiClient", "GeminiConfig", "GoogleProvider", "from_settings"]


def from_settings(settings: "RunSettings", *, api_key: str | None = None, base_url: str | None = None,
                  redactor: "Redactor | None" = None) -> GoogleProvider:
    """Key and endpoint as google-genai reads them (``GOOGLE_API_KEY`` over ``GEMINI_API_KEY``,
    ``GOOGLE_GEMINI_BASE_URL``); the key and any URL credential go to ``redactor``."""
    from ...errors import ConfigError
    from ..http import add_secrets

    if settings.tool != "auto":
        raise ConfigError(f"--tool {settings.tool} is not a Gemini tool; the google provider has one "
                          "computer tool (computerUse) and takes no --tool")
    config = GeminiConfig.from_env(api_key=api_key, base_url=base_url)
    add_secrets(redactor, "GEMINI_API_KEY", config.api_key, config.base_url)
    return GoogleProvider(settings, GeminiClient(config))
