"""The Gemini stand-in's HTTP server: routes, the key, the conversation's rules, faults, SSE."""

from __future__ import annotations

import base64
import copy
import json
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ...providers.google.models import (
    CURRENT_FUNCTIONS,
    LEGACY_FUNCTIONS,
    PREDEFINED_FUNCTIONS,
    action_set_for,
    signs_thoughts,
)
from ..loopback import LoopbackHandler, LoopbackServer, reset_connection
from .rules import REASONS, Rejected, camelized, check_schema, png_size
from .script import ScriptedTurn, ScriptError, Turn, TurnState

FAULT_KINDS = ("429", "500", "503", "reset", "cut_stream")
ENVIRONMENTS = ("ENVIRONMENT_BROWSER", "ENVIRONMENT_DESKTOP", "ENVIRONMENT_MOBILE", "ENVIRONMENT_UNSPECIFIED")
_GRID_ARGS = ("x", "y", "destination_x", "destination_y", "magnitude")


@dataclass
class RequestRecord:
    method: str
    path: str
    headers: dict[str, str]  # the key redacted
    body: Any
    status: int | None = None
    fault: str | None = None
    rule: str | None = None


@dataclass(frozen=True)
class Rejection:
    rule: str
    status: int
    message: str
    record: RequestRecord


class StandIn:
    """A strict stand-in of the Gemini API's ``generateContent`` on loopback; a context manager.

    :param turns: the script: ``Turn``s or callables ``(request, TurnState) -> Turn``.
    :param api_key: the key clients must send (``x-goog-api-key`` or ``?key=``); None takes any.
    """

    def __init__(self, turns: Iterable[ScriptedTurn] = (), *, api_key: str | None = "gm-test",
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.turns = list(turns)
        self.api_key = api_key
        self.host, self.port = host, port
        self.requests: list[Any] = []  # bodies of every generateContent request, faulted ones too
        self.records: list[RequestRecord] = []
        self.rejections: list[Rejection] = []
        self.replies: list[dict[str, Any]] = []
        self.screenshots: list[bytes] = []  # the newest image of each accepted request
        self.script_errors: list[BaseException] = []
        self.memory: dict[str, Any] = {}
        self.issued: list[dict[str, Any]] = []  # model contents sent, in order (camelCase)
        self.turn_index = 0  # scripted turns played so far
        self._faults: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.RLock()
        self._httpd: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> "StandIn":
        self._httpd = LoopbackServer((self.host, self.port), self._handle)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"cua-gemini-standin-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.drop_connections()
            self._httpd = None

    def check(self) -> None:
        if self.script_errors:
            raise self.script_errors[0]

    def __enter__(self) -> "StandIn":
        return self.start()

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.stop()
        if exc_type is None:
            self.check()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def inject(self, kind: str, *, times: int = 1, **opts: Any) -> None:
        """The next ``times`` generateContent requests fail with ``kind`` (``FAULT_KINDS``);
        ``retry_delay`` (seconds) rides on a 429's RetryInfo."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._faults += [(kind, opts)] * times

    # -- HTTP ---------------------------------------------------------------------------------------

    def _handle(self, handler: LoopbackHandler, method: str) -> None:
        url = urlsplit(handler.path)
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k.lower(): ("<redacted>" if k.lower() == "x-goog-api-key" else v) for k, v in handler.headers.items()}
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = RequestRecord(method, url.path, headers, body)
        path = unquote(url.path).removeprefix("/v1beta/").removeprefix("/v1/")
        model, _, verb = path.removeprefix("models/").partition(":")
        creating = method == "POST" and path.startswith("models/") and verb in ("generateContent", "streamGenerateContent")
        stream = verb == "streamGenerateContent"
        with self._lock:
            self.records.append(record)
            if creating:
                self.requests.append(body)
        try:
            self._authenticate(handler, parse_qs(url.query))
            if not creating:
                raise Rejected("not_found")
            fault = self._take_fault()
            if fault is not None:
                record.fault = fault[0]
                self._play_fault(handler, record, fault, stream)
                return
            if not (model.startswith("gemini-") or model == "scripted"):
                raise Rejected("unknown_model", model=model)
            if not isinstance(body, dict):
                raise Rejected("invalid_json", detail="The body must be a JSON object.")
            with self._lock:
                reply = self._generate(model, body)
            if stream:
                self._send_stream(handler, record, _chunks(reply))
            else:
                self._send_json(handler, record, 200, reply)
        except Rejected as rejected:
            self._send_error(handler, record, rejected)
        except ScriptError as exc:
            with self._lock:
                self.script_errors.append(exc)
            self._send_error(handler, record, Rejected("script_error", error=str(exc)))
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True
        except Exception as exc:  # a bug of the stand-in: surface it to the test
            with self._lock:
                self.script_errors.append(exc)
            self._send_error(handler, record, Rejected("script_error", error=repr(exc)))

    def _authenticate(self, handler: LoopbackHandler, query: dict[str, list[str]]) -> None:
        key = handler.headers.get("x-goog-api-key", "").strip() or (query.get("key") or [""])[0]
        if not key:
            raise Rejected("missing_api_key")
        if self.api_key is not None and key != self.api_key:
            raise Rejected("invalid_api_key", details=[{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}])

    def _take_fault(self) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _play_fault(self, handler: LoopbackHandler, record: RequestRecord, fault: tuple[str, dict[str, Any]],
                    stream: bool) -> None:
        kind, opts = fault
        if kind == "429":
            delay = opts.get("retry_delay", 1)
            self._send_error(handler, record, Rejected("rate_limited", wait=delay, details=[
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                 "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_requests"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay}s"}]))
        elif kind == "500":
            self._send_error(handler, record, Rejected("internal"))
        elif kind == "503":
            self._send_error(handler, record, Rejected("unavailable"))
        elif kind == "reset":
            reset_connection(handler)
        elif stream:  # cut_stream: a first chunk, then the connection drops
            self._send_stream(handler, record, [{"candidates": [{"content": {
                "role": "model", "parts": [{"text": "Looking at the", "thought": True}]}}]}], cut=True)
        else:
            record.status = 200
            handler.send_response(200)
            handler.send_header("content-type", "application/json; charset=UTF-8")
            handler.send_header("content-length", "400")
            handler.end_headers()
            handler.wfile.write(b'{"candidates": [{"content": {"role": "model", "parts": [')
            reset_connection(handler)

    # -- one request --------------------------------------------------------------------------------

    def _generate(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        check_schema(body)
        request = camelized(body)
        contents = request.get("contents") or []
        if not contents:
            raise Rejected("no_contents")
        tools = request.get("tools") or []
        computer = [t["computerUse"] for t in tools if "computerUse" in t]
        if not computer:
            raise Rejected("no_computer_use")
        for n, tool in enumerate(tools):
            if "computerUse" in tool and tool["computerUse"].get("environment") not in ENVIRONMENTS:
                raise Rejected("bad_environment", index=n, value=tool["computerUse"].get("environment"))
        excluded = computer[0].get("excludedPredefinedFunctions") or []
        for name in excluded:
            if name not in PREDEFINED_FUNCTIONS:
                raise Rejected("unknown_excluded", name=name)
        declared = {d.get("name") for t in tools for d in t.get("functionDeclarations") or []}
        screen = self._check_contents(contents, computer[0].get("environment"))
        index = self.turn_index
        if index >= len(self.turns):
            raise Rejected("script_exhausted", index=index, count=len(self.turns))
        turn = self.turns[index]
        if not isinstance(turn, Turn):
            try:
                turn = turn(request, TurnState(index, request, screen, self.memory))
            except ScriptError:
                raise
            except Exception as exc:
                raise ScriptError(f"turn {index} raised {exc!r}") from exc
        offered = set(LEGACY_FUNCTIONS if action_set_for(model) == "legacy" else CURRENT_FUNCTIONS) - set(excluded)
        reply = self._reply(model, turn, offered, declared)
        self.turn_index += 1
        return reply

    def _check_contents(self, contents: list[dict[str, Any]], environment: str | None) -> tuple[int, int] | None:
        """The conversation's rules; returns the size of the newest screenshot."""
        screen = None
        model_turns = 0
        pending: list[dict[str, Any]] | None = None  # the calls the previous model content made
        for i, content in enumerate(contents):
            role = content.get("role") or "user"
            parts = content.get("parts") or []
            if role not in ("user", "model"):
                raise Rejected("bad_role")
            if not parts:
                raise Rejected("empty_parts", index=i)
            for part in parts:
                for blob in [part.get("inlineData")] + [p.get("inlineData") for p in
                                                        (part.get("functionResponse") or {}).get("parts") or []]:
                    if blob and blob.get("mimeType") == "image/png":
                        screen = png_size(blob.get("data") or "")
            if role == "model":
                if pending:
                    raise Rejected("response_count")
                self._check_replayed(i, content, model_turns)
                pending = [p["functionCall"] for p in parts if "functionCall" in p] or None
                model_turns += 1
                continue
            responses = [(n, p["functionResponse"]) for n, p in enumerate(parts) if "functionResponse" in p]
            if responses and not pending:
                raise Rejected("response_not_after_call")
            if pending:
                if len(responses) != len(pending):
                    raise Rejected("response_count")
                newest = i == len(contents) - 1
                for (n, response), call in zip(responses, pending):
                    self._check_response(i, n, response, call, environment, newest)
            pending = None
        if pending:
            raise Rejected("response_count")
        if model_turns != len(self.issued):
            raise Rejected("missing_model_turn", got=model_turns, want=len(self.issued))
        newest_image = self._newest_image(contents)
        if newest_image is not None:
            self.screenshots.append(newest_image)
        return screen

    def _check_replayed(self, i: int, content: dict[str, Any], k: int) -> None:
        if k >= len(self.issued):
            raise Rejected("altered_model_turn", index=i, detail="the stand-in sent no such turn")
        sent = self.issued[k]
        parts, sent_parts = content.get("parts") or [], sent["parts"]
        for n, part in enumerate(sent_parts):
            if "functionCall" in part and "thoughtSignature" in part and n < len(parts) \
                    and "thoughtSignature" not in parts[n]:
                raise Rejected("missing_thought_signature", name=part["functionCall"].get("name"), position=i + 1)
        if len(parts) != len(sent_parts):
            raise Rejected("altered_model_turn", index=i, detail=f"{len(parts)} parts instead of {len(sent_parts)}")
        for n, (part, want) in enumerate(zip(parts, sent_parts)):
            if part != want:
                keys = sorted(k for k in set(part) | set(want) if part.get(k) != want.get(k))
                raise Rejected("altered_model_turn", index=i, detail=f"part {n}: {', '.join(keys)} changed")

    def _check_response(self, i: int, n: int, response: dict[str, Any], call: dict[str, Any],
                        environment: str | None, newest: bool) -> None:
        name = call.get("name")
        if response.get("name") != name:
            raise Rejected("response_name", index=i, part=n, got=response.get("name"), want=name)
        if name not in PREDEFINED_FUNCTIONS:
            return
        body = response.get("response") or {}
        confirm = isinstance(call.get("args", {}).get("safety_decision"), dict)
        acknowledged = body.get("safety_acknowledgement") in ("true", True)
        if confirm and not acknowledged and "error" not in body:
            raise Rejected("unconfirmed_call", index=i, part=n, name=name)
        if acknowledged and not confirm:
            raise Rejected("needless_acknowledgement", index=i, part=n, name=name)
        if environment == "ENVIRONMENT_BROWSER" and "url" not in body:
            raise Rejected("missing_url", index=i, part=n, name=name)
        images = [p for p in response.get("parts") or [] if (p.get("inlineData") or {}).get("mimeType") == "image/png"]
        if newest and not images:
            raise Rejected("missing_screenshot", index=i, part=n, name=name)

    @staticmethod
    def _newest_image(contents: list[dict[str, Any]]) -> bytes | None:
        for content in reversed(contents):
            for part in reversed(content.get("parts") or []):
                blobs = [part.get("inlineData")] + [p.get("inlineData") for p in
                                                    (part.get("functionResponse") or {}).get("parts") or []]
                for blob in reversed([b for b in blobs if b]):
                    return base64.b64decode(blob["data"])
        return None

    def _reply(self, model: str, turn: Turn, offered: set[str], declared: set[Any]) -> dict[str, Any]:
        if turn.block_reason:
            reply: dict[str, Any] = {"promptFeedback": {"blockReason": turn.block_reason},
                                     "usageMetadata": {"promptTokenCount": 100, "totalTokenCount": 100}}
            self.replies.append(reply)
            return reply
        parts = copy.deepcopy(turn.parts)
        signed = False
        for part in parts:
            call = part.get("functionCall")
            if call is None:
                continue
            name, args = call.get("name"), call.setdefault("args", {})
            if name not in offered and name not in declared:
                raise ScriptError(f"the model cannot call {name!r}: not offered to {model} "
                                  f"(offered: {', '.join(sorted(offered | declared))})")
            for key in _GRID_ARGS:
                if key in args and not (isinstance(args[key], int) and 0 <= args[key] <= 999):
                    raise ScriptError(f"{name}: {key}={args[key]!r} is not a 0-999 grid value")
            if signs_thoughts(model) and not signed:
                part["thoughtSignature"] = base64.b64encode(secrets.token_bytes(48)).decode()
                signed = True
        content = {"role": "model", "parts": parts}
        if parts:
            self.issued.append(copy.deepcopy(content))
        usage = turn.usage or {"promptTokenCount": 1200, "candidatesTokenCount": 40, "thoughtsTokenCount": 25,
                               "cachedContentTokenCount": 800}
        usage.setdefault("totalTokenCount", usage.get("promptTokenCount", 0) + usage.get("candidatesTokenCount", 0)
                         + usage.get("thoughtsTokenCount", 0))
        candidate: dict[str, Any] = {"content": content, "finishReason": turn.finish_reason, "index": 0}
        reply = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
                 "responseId": secrets.token_urlsafe(12)}
        self.replies.append(reply)
        return reply

    # -- answers ------------------------------------------------------------------------------------

    def _send_json(self, handler: LoopbackHandler, record: RequestRecord, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        record.status = status
        handler.send_response(status)
        handler.send_header("content-type", "application/json; charset=UTF-8")
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()

    def _send_error(self, handler: LoopbackHandler, record: RequestRecord, rejected: Rejected) -> None:
        record.rule = rejected.rule
        if record.fault is None:
            with self._lock:
                self.rejections.append(Rejection(rejected.rule, rejected.reason.status, rejected.message, record))
        error: dict[str, Any] = {"code": rejected.reason.status, "message": rejected.message,
                                 "status": rejected.reason.status_name}
        if rejected.details:
            error["details"] = rejected.details
        self._send_json(handler, record, rejected.reason.status, {"error": error})

    def _send_stream(self, handler: LoopbackHandler, record: RequestRecord, chunks: list[dict[str, Any]],
                     cut: bool = False) -> None:
        record.status = 200
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        for chunk in chunks:
            frame = f"data: {json.dumps(chunk)}\r\n\r\n".encode()
            handler.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
            handler.wfile.flush()
        if cut:
            reset_connection(handler)
            return
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()


def _chunks(reply: dict[str, Any]) -> list[dict[str, Any]]:
    """A reply as the streaming endpoint sends it: text parts in two pieces, other parts whole,
    the finish reason and usage on the last chunk."""
    if not reply.get("candidates"):
        return [reply]
    candidate = reply["candidates"][0]
    pieces: list[dict[str, Any]] = []
    for part in candidate["content"]["parts"]:
        text = part.get("text")
        if isinstance(text, str) and len(text) > 1 and set(part) <= {"text", "thought"}:
            half = len(text) // 2
            pieces += [{**part, "text": text[:half]}, {**part, "text": text[half:]}]
        else:
            pieces.append(part)
    chunks = [{"candidates": [{"content": {"role": "model", "parts": [p]}, "index": 0}],
               "modelVersion": reply["modelVersion"], "responseId": reply["responseId"]} for p in pieces]
    if not chunks:
        chunks = [{"candidates": [{"content": {"role": "model", "parts": []}, "index": 0}]}]
    last = chunks[-1]
    last["candidates"][0]["finishReason"] = candidate["finishReason"]
    last["usageMetadata"] = reply["usageMetadata"]
    return chunks


__all__ = ["FAULT_KINDS", "REASONS", "Rejection", "RequestRecord", "StandIn"]
