"""The SSE parser every provider's client reads streams with (cua/providers/sse.py): events and
multi-line data, comments and unknown fields, line endings, chunks split anywhere, and the last
event of a stream that ends without a blank line."""

from __future__ import annotations

import pytest

from cua.providers.sse import ServerSentEvent, SSEParser


def parse(*chunks: bytes | str) -> list[ServerSentEvent]:
    parser = SSEParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events + parser.close()


def test_sse_event_and_data() -> None:
    assert parse(b"event: response.created\ndata: {\"a\": 1}\n\n") == [
        ServerSentEvent(data='{"a": 1}', event="response.created")
    ]


def test_sse_multi_line_data_is_joined_with_newlines() -> None:
    (event,) = parse("data: first\ndata:second\ndata:  third\n\n")
    assert event.data == "first\nsecond\n third"


def test_sse_comments_unknown_fields_and_empty_events_are_ignored() -> None:
    events = parse(": ping\n\nevent: lonely\n\nfoo: bar\ndata: x\n\n")
    assert events == [ServerSentEvent(data="x")]


def test_sse_id_and_retry_fields() -> None:
    (event,) = parse("id: 7\nretry: 1500\ndata: x\n\n")
    assert (event.id, event.retry) == ("7", 1500)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_sse_line_endings(newline: str) -> None:
    text = f"event: a{newline}data: 1{newline}{newline}data: 2{newline}{newline}"
    assert [(e.event, e.data) for e in parse(text)] == [("a", "1"), (None, "2")]


def test_sse_chunks_split_anywhere() -> None:
    text = "\ufeffevent: delta\r\ndata: {\"delta\": \"héllo ✓\"}\r\n\r\ndata: [DONE]\r\n\r\n".encode()
    one_byte_at_a_time = parse(*(text[i : i + 1] for i in range(len(text))))
    assert one_byte_at_a_time == parse(text)
    first, done = one_byte_at_a_time
    assert first.event == "delta" and first.json() == {"delta": "héllo ✓"}
    assert done.is_done and not first.is_done


def test_sse_crlf_split_between_chunks_is_one_line_break() -> None:
    assert [e.data for e in parse("data: a\r", "\n\r", "\ndata: b\r\n\r\n")] == ["a", "b"]


def test_sse_unterminated_last_event_is_flushed_at_the_end() -> None:
    assert [e.data for e in parse("data: 1\n\ndata: [DONE]")] == ["1", "[DONE]"]
    assert [e.data for e in parse("data: [DONE]\n")] == ["[DONE]"]
