"""Model providers: one package per wire format, behind one interface (``base.Provider``).

``openai`` speaks the Responses API (OpenAI, Azure OpenAI, a LiteLLM proxy), ``anthropic`` the
Messages API with Claude's computer toolset, ``google`` the Gemini API with ``computerUse``. Which
one a run uses comes from the model name, or ``--provider``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import PROVIDERS, Provider, provider_for

if TYPE_CHECKING:
    from ..config import RunSettings
    from ..redact import Redactor

__all__ = ["PROVIDERS", "Provider", "make_provider", "provider_for"]


def make_provider(settings: "RunSettings", *, api_key: str | None = None, base_url: str | None = None,
                  redactor: "Redactor | None" = None) -> Provider:
    """The provider of ``settings`` with its HTTP client, keys read the way each vendor's SDK reads
    them; every key and URL credential is added to ``redactor``. A missing key is a
    ``ConfigError`` (exit 2) naming the variable to set."""
    name = settings.provider_name
    openai_only = sorted(settings.responses_parameters()) + (["mcp_servers"] if settings.mcp_servers else [])
    if name != "openai" and openai_only:
        from ..errors import ConfigError

        raise ConfigError(f"{', '.join(openai_only)}: Responses API parameters, which the {name} "
                          f"model {settings.model} does not take")
    if name == "anthropic":
        from .anthropic import from_settings
    elif name == "google":
        from .google import from_settings
    else:
        from .openai import from_settings
    return from_settings(settings, api_key=api_key, base_url=base_url, redactor=redactor)
