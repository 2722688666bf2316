"""A strict stand-in for the Responses API, served over real HTTP on loopback.

No model API is reachable from tests, so every test of a computer-use flow talks to this server.
It plays scripted model turns and answers as the service would: it accepts what the service
accepts and rejects what the service rejects, in the service's error shape. A flow that passes
only because the stand-in is lax is a false test, and so is one that fails because it is stricter
than the service.

    from cua.testing.standin import StandIn, Turn

    with StandIn(turns=[Turn.call({"type": "click", "x": 10, "y": 20}), Turn.message("done")]) as server:
        client = httpx.Client(base_url=server.base_url, headers={"Authorization": "Bearer sk-test"})
        ...
        assert server.last_screenshot() is not None

The package, one idea a module: ``contract`` (what one request must look like, rule by rule with
its source), ``conversation`` (what ties a request to the earlier ones), ``reasons`` (each
rejection's status, code, message and where the message comes from), ``images`` (screenshots),
``script`` (scripted turns and the responses built from them), ``events`` (SSE), ``server``
(HTTP, records, injected faults).

Choices made where the wire contract is silent (each marked "ours" in ``REASONS``):

* An exhausted script is an error by default (400, code ``script_exhausted``): a loop that asks for
  more turns than the test scripted is usually the bug under test. Pass ``final_message="..."`` to
  answer every extra request with that final assistant message instead.
* A broken script (a preview turn with two actions, a callable that raises) answers 500 with
  ``x-should-retry: false`` and is raised again when the ``with`` block ends (or by ``check()``).
* Stateless requests (no ``previous_response_id``) that replay earlier output items must replay
  EVERY output item of the conversation, in the order it was issued. The real service tolerates
  some omissions; the stand-in does not, because a client that drops items loses context.
* A preview screenshot must have the size the tool declares, and a data URL must hold a whole
  image of the type it names: the service takes both, but either is a client bug.
* Screenshots given as an http(s) URL or a ``file_id`` are taken on trust (the stand-in cannot
  fetch them); ``last_screenshot()`` only holds images sent as data URLs.
* Input items the SDK knows but the stand-in does not play (``item_reference``, ``mcp_call``, …)
  are refused with code ``standin_unsupported``, never silently dropped.
* Documented parameters the stand-in does not act on (``background``, ``service_tier``,
  ``prompt_cache_key``, ``metadata``, ``conversation``, …) are checked and echoed, nothing more: a
  ``background`` response is answered at once, already finished, and ``cancel`` then returns it.
* Faults are applied before the body is even validated, like a gateway would, and never consume
  a scripted turn. ``slow`` answers normally after its delay (consuming the turn) unless the
  client hung up meanwhile.
* ``cancel`` of a response not created with ``background`` answers 400.
* SSE styles ``completed_only`` and ``done_marker`` imitate proxies: ``data:`` lines only, no
  ``event:`` lines, so a client must read the event type from the payload. In ``full`` style the
  ``output_item.added`` copy of an item is incomplete (reasoning without summary or
  encrypted_content, messages without content, calls ``in_progress``): only ``.done`` counts.
* ``requests`` holds the bodies of ``POST …/responses`` only; ``records`` holds every request.
  ``rejections`` holds requests the stand-in refused, not injected faults (see ``record.fault``).
* Replayed items are checked by id against what was issued: a changed field, an added field or an
  unknown id is rejected; the first problem found per item wins over sequence problems.
"""

from __future__ import annotations

from ..loopback import Rejection, RequestRecord
from .contract import INCLUDABLE, KNOWN_PARAMETERS, TOOL_TYPES
from .images import png_size
from .reasons import REASONS, Reason
from .script import ScriptError, Turn, TurnState
from .server import FAULT_KINDS, StandIn

__all__ = [
    "FAULT_KINDS",
    "INCLUDABLE",
    "KNOWN_PARAMETERS",
    "REASONS",
    "TOOL_TYPES",
    "Reason",
    "Rejection",
    "RequestRecord",
    "ScriptError",
    "StandIn",
    "Turn",
    "TurnState",
    "png_size",
]
