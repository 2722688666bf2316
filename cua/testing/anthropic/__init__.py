"""A strict stand-in for Anthropic's Messages API (Claude's computer use), on loopback.

    from cua.testing.anthropic import StandIn, Turn, member

    with StandIn(turns=[Turn.calls(member("left_click", coordinate=[10, 20])), Turn.text("done")]) as server:
        ...  # POST {server.base_url}/v1/messages with x-api-key and anthropic-version
        assert server.rejections == []

One idea a module: ``contract`` (what a request must look like, rule by rule), ``reasons`` (each
refusal's status, error type and message, with where the message comes from), ``script`` (scripted
turns, the messages and SSE events built from them, the prompt cache, scenario scripts),
``server`` (HTTP, records, injected faults).

Choices made where the wire contract is silent (each rule's source is in ``REASONS``):

* Two messages of one role in a row are merged, as the service does (REFERENCE §10), not refused.
* Images are refused only past the service's own limits (8000 px a side, 2000 with more than 20
  images, 5 MB): an image above 1568 px is downscaled by the service, not refused.
* Thinking signatures are the stand-in's own HMAC: an unknown signature is refused anywhere, a
  changed thinking text only in the latest assistant message (the service's wording).
* A scripted ``thinking`` block is sent as thinking only when the request enables thinking; without
  it, the script's reasoning becomes a text block (Claude says what it does before tool calls).
* Usage counts cache reads and writes from a simulated prompt cache: a prefix ending at a
  ``cache_control`` breakpoint is written; a later request whose breakpoint (or a block up to 20
  before it) ends the same prefix reads it. Token counts are rough (4 characters a token).
* An exhausted script is a 400 (``script_exhausted``) unless ``final_text`` is given; a broken
  script answers 500 with ``x-should-retry: false`` and is raised when the ``with`` block ends.
* Faults come before any validation, like a gateway's, and never consume a scripted turn.
  ``error_event`` is a stream that starts and then carries an ``overloaded_error`` event.
"""

from __future__ import annotations

from ..loopback import Rejection, RequestRecord
from .contract import BETA_TOOLS, MEMBERS, TOOLSET, refuses_beta_tools
from .reasons import REASONS, Reason
from .script import ScriptError, Turn, TurnState, function, member, script_turns
from .server import FAULT_KINDS, StandIn

__all__ = [
    "BETA_TOOLS", "FAULT_KINDS", "MEMBERS", "REASONS", "Reason", "Rejection", "RequestRecord",
    "ScriptError", "StandIn", "TOOLSET", "Turn", "TurnState", "function", "member", "refuses_beta_tools",
    "script_turns",
]
