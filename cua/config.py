"""Run settings: one validated object built from flags, scenario files or Python."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .actions import Size
from .providers.openai.models import ToolFormat, tool_format_for

SafetyMode = Literal["auto", "ask", "deny"]
# OpenAI: preview | computer. Anthropic: the GA toolset, or a beta tool for platforms still on one.
ToolChoice = Literal[
    "auto", "preview", "computer", "computer_toolset_20260801", "computer_20251124", "computer_20250124",
]
ProviderChoice = Literal["openai", "anthropic", "google"]


class RunSettings(BaseModel):
    """Everything one run needs besides the API key (which never lives here)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    task: str = ""
    model: str = "computer-use-preview"
    # The wire format: None picks it from the model name (claude-* anthropic, gemini-* google).
    provider: ProviderChoice | None = None
    tool: ToolChoice = "auto"
    env: Literal["browser", "mac", "windows", "ubuntu", "linux"] = "browser"
    display: str = "1024x768"
    start_url: str | None = None
    instructions: str | None = None
    max_steps: int = Field(50, ge=1)
    timeout: float | None = Field(None, gt=0)
    # Secure by default: a check nobody allowed is asked about on a terminal, denied without one.
    safety: SafetyMode = "ask"
    safety_allow: list[str] = Field(default_factory=list, description="check codes acknowledged without asking")
    stream: bool = True
    stateless: bool = False
    keep_screenshots: int = Field(3, ge=1)
    reasoning_summary: str | None = "auto"
    reasoning_effort: str | None = None
    wait_ms: int = Field(1000, ge=0)
    # OpenAI's Responses API only: each goes to the request as the API names it.
    verbosity: Literal["low", "medium", "high"] | None = None  # text.verbosity
    max_output_tokens: int | None = Field(None, ge=16)  # the service's floor
    parallel_tool_calls: bool | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    service_tier: str | None = None  # auto, default, flex, priority, …: the service says which it takes
    prompt_id: str | None = None  # a stored prompt (prompt.id), with its version and variables
    prompt_version: str | None = None
    prompt_variables: dict[str, str] = Field(default_factory=dict)
    # Remote MCP servers the service calls for the model: {server_label, server_url, allowed_tools?,
    # require_approval?}; their approval requests are decided by mcp_approval, like safety checks.
    mcp_servers: list[dict[str, Any]] = Field(default_factory=list)
    mcp_approval: SafetyMode = "ask"
    # Anthropic and Gemini: the reply's token limit (Anthropic requires one), and Claude's thinking.
    max_tokens: int = Field(4096, ge=1)
    thinking_budget: int | None = Field(None, ge=1024)
    zoom: bool = True  # Claude's zoom member of the toolset (configs.zoom.enabled)
    # Gemini: predefined computer-use functions the model must not call (excludedPredefinedFunctions).
    excluded_functions: list[str] = Field(default_factory=list)
    token_budget: int | None = Field(None, ge=1)
    navigation_tools: bool = False
    playwright_trace: bool = False
    # Browser
    headed: bool = False
    device_scale_factor: float = 1.0
    allow_domains: list[str] = Field(default_factory=list)
    block_domains: list[str] = Field(default_factory=list)
    allow_schemes: list[str] = Field(default_factory=list)  # goto's, besides http(s) and about:blank
    cdp_url: str | None = None
    ws_endpoint: str | None = None
    # Desktop and VMs
    x_display: str | None = None
    launch: str | None = None
    vm_url: str | None = None
    vm_name: str | None = None
    wheel_step: int | None = Field(None, ge=1, le=2000)  # screen px per wheel notch; None: the env's
    # Output
    out: Path | None = None

    @field_validator("display")
    @classmethod
    def _display(cls, value: str) -> str:
        return str(Size.parse(value))

    @field_validator("allow_schemes")
    @classmethod
    def _schemes(cls, value: list[str]) -> list[str]:
        schemes = [scheme.strip().lower().removesuffix(":") for scheme in value]
        for scheme in schemes:
            if not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
                raise ValueError(f"{scheme!r} is not a URL scheme (such as file or data)")
        return schemes

    @property
    def size(self) -> Size:
        return Size.parse(self.display)

    @property
    def provider_name(self) -> str:
        """openai | anthropic | google: ``provider``, else what the model name says."""
        from .providers.base import provider_for

        return provider_for(self.model, self.provider)

    @property
    def tool_format(self) -> ToolFormat:
        """OpenAI's tool format (preview | computer); only meaningful for the openai provider."""
        if self.tool in ("preview", "computer"):
            return self.tool  # type: ignore[return-value]
        return tool_format_for(self.model)

    def reasoning(self) -> dict[str, Any] | None:
        reasoning: dict[str, Any] = {}
        if self.reasoning_summary:
            # The preview model only knows "concise"; GA models take auto/concise/detailed.
            summary = self.reasoning_summary
            if self.tool_format == "preview" and summary == "auto":
                summary = "concise"
            reasoning["summary"] = summary
        if self.reasoning_effort:
            reasoning["effort"] = self.reasoning_effort
        return reasoning or None

    def responses_parameters(self) -> dict[str, Any]:
        """The Responses API parameters the settings give (none when left at their defaults)."""
        given: dict[str, Any] = {
            "text": {"verbosity": self.verbosity} if self.verbosity else None,
            "max_output_tokens": self.max_output_tokens,
            "parallel_tool_calls": self.parallel_tool_calls,
            "metadata": dict(self.metadata) or None,
            "service_tier": self.service_tier,
        }
        if self.prompt_id:
            prompt: dict[str, Any] = {"id": self.prompt_id}
            if self.prompt_version:
                prompt["version"] = self.prompt_version
            if self.prompt_variables:
                prompt["variables"] = dict(self.prompt_variables)
            given["prompt"] = prompt
        return {k: v for k, v in given.items() if v is not None}

    def mcp_tools(self) -> list[dict[str, Any]]:
        """The remote MCP servers as Responses API tools (tool_param.py ``Mcp``)."""
        tools = []
        for server in self.mcp_servers:
            tool = {"type": "mcp", "server_label": server["server_label"], "server_url": server["server_url"]}
            for key in ("allowed_tools", "require_approval", "server_description"):
                if server.get(key) is not None:
                    tool[key] = server[key]
            tools.append(tool)
        return tools

    @field_validator("mcp_servers")
    @classmethod
    def _mcp_servers(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for server in value:
            if not isinstance(server.get("server_label"), str) or not server["server_label"]:
                raise ValueError("an MCP server needs a server_label (LABEL=URL)")
            if not str(server.get("server_url") or "").startswith(("http://", "https://")):
                raise ValueError(f"MCP server {server['server_label']!r} needs an http(s) server_url")
            unknown = set(server) - {"server_label", "server_url", "allowed_tools", "require_approval",
                                     "server_description"}
            if unknown:
                raise ValueError(f"MCP server {server['server_label']!r}: unknown field(s) {sorted(unknown)}")
        return value

    def public(self) -> dict[str, Any]:
        """The settings as written to run.json."""
        data = self.model_dump(mode="json")
        data["provider"] = self.provider_name
        if data["provider"] == "openai":
            data["tool_format"] = self.tool_format
        return data
