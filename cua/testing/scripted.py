"""Scripted runs (``--model scripted``): a scenario's script played by the stand-in of the
provider whose wire format the run speaks, so a script tests the same adapter a model would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..scenario import ScriptTurn


@contextmanager
def serve_script(provider: str, script: "list[ScriptTurn]", api_key: str) -> Iterator[str]:
    """Serve ``script`` on loopback over ``provider``'s wire format; yields the base URL to use."""
    if provider == "anthropic":
        from .anthropic import StandIn, script_turns
    elif provider == "google":
        from .google import StandIn, script_turns  # type: ignore[no-redef]
    else:
        from ..scenario import script_to_turns as script_turns  # type: ignore[no-redef]
        from .standin import StandIn  # type: ignore[no-redef]
    with StandIn(turns=script_turns(script), api_key=api_key) as server:
        yield server.base_url
