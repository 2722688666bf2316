"""Build the environment a run's settings ask for. Heavy imports stay lazy."""

from __future__ import annotations

from typing import Any, Callable

from ..config import RunSettings
from ..errors import EnvironmentError_
from .base import Environment


def make_environment(
    settings: RunSettings,
    *,
    vm_api_key: str | None = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None
) -> Environment:
    size = settings.size
    if settings.env == "browser":
        from .browser import BrowserEnvironment

        return BrowserEnvironment(
            display=size,
            start_url=settings.start_url,
            headless=not settings.headed,
            device_scale_factor=settings.device_scale_factor,
            cdp_url=settings.cdp_url,
            ws_endpoint=settings.ws_endpoint,
            allow_domains=list(settings.allow_domains),
            block_domains=list(settings.block_domains),
            wait_ms=settings.wait_ms,
            on_event=on_event,
        )
    if settings.vm_url:
        from .remote import RemoteEnvironment

        return RemoteEnvironment(
            vm_url=settings.vm_url,
            kind=settings.env,
            display=size,
            api_key=vm_api_key,
            vm_name=settings.vm_name,
            wait_ms=settings.wait_ms,
        )
    if settings.env in ("ubuntu", "linux"):
        from .xvfb import XDisplayEnvironment

        return XDisplayEnvironment(
            display=size,
            x_display=settings.x_display,
            launch=settings.launch,
            kind=settings.env,
            wait_ms=settings.wait_ms,
        )
    raise EnvironmentError_(
        f"--env {settings.env} drives a remote VM: give its computer-server URL with --vm-url "
        "(see the README section on VMs)"
    )
