"""An incremental parser of server-sent events: feed it bytes as they arrive, get whole events out.

It follows the WHATWG event-stream rules: ``field: value`` lines (one space after the colon is
dropped), ``data`` lines joined with newlines, ``:`` comments ignored, lines ended by ``\\n``,
``\\r\\n`` or ``\\r`` (even when a chunk splits the pair), a blank line ends an event. Chunks may
split UTF-8 characters anywhere.

Unlike a browser it also flushes an event left unterminated when the stream ends, because some
proxies close the stream right after a last ``data: [DONE]`` line.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from typing import Any

DONE = "[DONE]"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class ServerSentEvent:
    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    @property
    def is_done(self) -> bool:
        """The ``data: [DONE]`` terminator some servers send after the last event."""
        return self.data.strip() == DONE

    def json(self) -> Any:
        return json.loads(self.data)


class SSEParser:
    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""  # text not yet ended by a line break
        self._started = False
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes | str) -> list[ServerSentEvent]:
        """Parse one chunk; return the events it completed."""
        text = self._decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        self._pending += text
        events: list[ServerSentEvent] = []
        start = 0
        for brk in _LINE_BREAK.finditer(self._pending):
            if brk.group() == "\r" and brk.end() == len(self._pending):
                break  # may be the first half of a "\r\n" split across chunks: wait for more
            event = self.feed_line(self._pending[start : brk.start()])
            if event is not None:
                events.append(event)
            start = brk.end()
        self._pending = self._pending[start:]
        return events

    def close(self) -> list[ServerSentEvent]:
        """The stream ended: parse what is left and flush an unterminated event."""
        events = self.feed(self._decoder.decode(b"", final=True))
        if self._pending:
            line, self._pending = self._pending.removesuffix("\r"), ""
            event = self.feed_line(line)
            if event is not None:
                events.append(event)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    def feed_line(self, line: str) -> ServerSentEvent | None:
        """Parse one line (without its line break); return the event a blank line completes."""
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():  # "²".isdigit() is true too
                self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], None
        if not data:
            return None
        return ServerSentEvent(data="\n".join(data), event=event, id=self._id, retry=self._retry)
