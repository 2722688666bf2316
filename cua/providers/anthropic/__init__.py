"""Anthropic's Messages API with Claude's computer use: wire models, the HTTP client (JSON, SSE,
retries), the members ↔ typed actions mapping and the provider adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .adapter import AnthropicProvider
from .client import ClientConfig, MessagesClient
from .models import TOOLSET

if TYPE_CHECKING:
    from ...config import RunSettings
    from ...redact import Redactor

__all__ = ["AnthropicProvider", "ClientConfig", "MessagesClient", "from_settings", "MAX_LONG_EDGE", "MAX_PIXELS"]

# Claude downscales a larger image before it looks at it, and its clicks then land in the
# downscaled space (REFERENCE §10): screenshots must already fit.
MAX_LONG_EDGE = 1568
MAX_PIXELS = 1_150_000


def from_settings(settings: "RunSettings", *, api_key: str | None = None, base_url: str | None = None,
                  redactor: "Redactor | None" = None) -> AnthropicProvider:
    """Key and endpoint as the anthropic SDK reads them (``ANTHROPIC_API_KEY``,
    ``ANTHROPIC_BASE_URL``); the key and any URL credential go to ``redactor``."""
    from ...errors import ConfigError
    from ..http import add_secrets

    tool = TOOLSET if settings.tool == "auto" else settings.tool
    if tool in ("preview", "computer"):
        raise ConfigError(f"--tool {tool} is an OpenAI tool; Claude takes computer_toolset_20260801 (the "
                          "default), computer_20251124 or computer_20250124")
    size = settings.size
    if max(size.width, size.height) > MAX_LONG_EDGE or size.width * size.height > MAX_PIXELS:
        raise ConfigError(
            f"--display {size} is larger than Claude looks at (at most {MAX_LONG_EDGE} px on the long edge "
            f"and {MAX_PIXELS / 1e6:.2f} MP): Claude would downscale every screenshot and its clicks would "
            "miss. Use 1024x768 (the default), 1280x800 or 1366x768")
    if settings.thinking_budget and settings.thinking_budget >= settings.max_tokens:
        raise ConfigError(f"the thinking budget ({settings.thinking_budget}) must be below max_tokens "
                          f"({settings.max_tokens}): Claude's thinking counts against max_tokens")
    config = ClientConfig.from_env(api_key=api_key, base_url=base_url)
    add_secrets(redactor, "ANTHROPIC_API_KEY", config.api_key, config.base_url)
    return AnthropicProvider(settings, MessagesClient(config), tool)
