"""Build the environment a run's settings ask for. Heavy imports stay lazy."""

from __future__ import annotations

from typing import Any, Callable

from ..config import RunSettings
from ..errors import ConfigError, EnvironmentError_
from .base import Environment


def make_environment(
    settings: RunSettings,
    *,
    vm_api_key: str | None = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None
) -> Environment:
    _refuse_options_of_other_environments(settings)
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
            allow_schemes=list(settings.allow_schemes),
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
            wheel_step=settings.wheel_step,
        )
    if settings.env in ("ubuntu", "linux"):
        from .xvfb import XDisplayEnvironment

        return XDisplayEnvironment(
            display=size,
            x_display=settings.x_display,
            launch=settings.launch,
            kind=settings.env,
            wait_ms=settings.wait_ms,
            wheel_step=settings.wheel_step,
        )
    raise EnvironmentError_(
        f"--env {settings.env} drives a remote VM: give its computer-server URL with --vm-url "
        "(see the README section on VMs)"
    )


_X = "a local X display (--env ubuntu or linux)"
_VM = "a VM (--env mac, windows, linux or ubuntu with --vm-url)"
_BROWSER = "the browser (--env browser)"
_DESKTOP = "a desktop (a local X display or a VM)"
_PLACES = {_DESKTOP: (_X, _VM)}  # purposes that more than one environment serves


def _refuse_options_of_other_environments(settings: RunSettings) -> None:
    """An option the chosen environment would ignore is a mistake worth saying: a domain policy
    that silently does nothing, or a replay meant for a VM that would run in a browser."""
    options = {  # flag: (its value, what it is for)
        "--x-display": (settings.x_display, _X), "--launch": (settings.launch, _X),
        "--vm-url": (settings.vm_url, _VM), "--vm-name": (settings.vm_name, _VM),
        "--cdp-url": (settings.cdp_url, _BROWSER), "--ws-endpoint": (settings.ws_endpoint, _BROWSER),
        "--headed": (settings.headed, _BROWSER), "--allow-domain": (settings.allow_domains, _BROWSER),
        "--block-domain": (settings.block_domains, _BROWSER), "--allow-scheme": (settings.allow_schemes, _BROWSER),
        # The browser scrolls by pixels itself; only the desktops turn pixels into wheel notches.
        "--wheel-step": (settings.wheel_step, _DESKTOP),
    }
    here = _BROWSER if settings.env == "browser" else _VM if settings.vm_url else _X
    misplaced = [f"{flag} is for {purpose}" for flag, (value, purpose) in options.items()
                 if value and here not in _PLACES.get(purpose, (purpose,))]
    if misplaced:
        raise ConfigError(f"{'; '.join(misplaced)}; this run's environment is {_describe(settings)}")


def _describe(settings: RunSettings) -> str:
    if settings.env == "browser":
        return "the browser"
    return f"{settings.env} at {settings.vm_url}" if settings.vm_url else f"{settings.env} on a local X display"
