"""A strict stand-in for the Gemini API's ``generateContent`` (computer use), on loopback.

    from cua.testing.google import StandIn, Turn

    with StandIn(turns=[Turn.calls(("click", {"x": 500, "y": 500})), Turn.text("done")]) as server:
        ...  # GEMINI_API_KEY=gm-test, base URL server.base_url

It plays scripted turns and refuses what the service refuses, in Google's error shape
``{"error": {"code", "message", "status"}}``: a bad or missing key, unknown fields (either
spelling), a call not answered by a ``functionResponse`` of its name in the next user content, a
replayed model turn that lost its ``thoughtSignature`` (Gemini 3+) or was altered, and — rules of
ours, marked so in ``REASONS`` — an answer to a computer-use call without its screenshot or url, a
call that required confirmation answered unacknowledged, an acknowledgement nobody asked for.

Choices where the wire contract is silent: the script runs out → 400 ``FAILED_PRECONDITION``;
a script asking for a function the model is not offered (the other action set, an excluded one)
or a coordinate outside 0–999 is a ``ScriptError`` raised when the ``with`` block ends. Model
names: any ``gemini-*``, and ``scripted`` (the newest action set, thought signatures on).
"""

from __future__ import annotations

from ..loopback import Rejection, RequestRecord
from .rules import REASONS, Reason
from .script import ScriptError, Turn, TurnState, gemini_calls, script_turns
from .server import FAULT_KINDS, StandIn

__all__ = ["FAULT_KINDS", "REASONS", "Reason", "Rejection", "RequestRecord", "ScriptError", "StandIn", "Turn",
           "TurnState", "gemini_calls", "script_turns"]
