"""Faults the stand-in Responses server injects on request (429, 5xx, resets, cut streams, slow
answers), and that they never consume a scripted turn."""

from __future__ import annotations

import time

import httpx
import pytest
from standin_helpers import (
    client,
    ga_request,
    png,
    standin,  # noqa: F401 - a fixture, used by name
)

from cua.testing.standin import (
    Turn,
    png_size,
)

# --- faults --------------------------------------------------------------------------------------


def test_429_with_retry_after_does_not_consume_a_turn(standin):
    server = standin([Turn.message("first")])
    server.inject("429", retry_after=0.05)
    with client(server) as c:
        limited = c.post("/responses", json=ga_request())
        assert limited.status_code == 429 and limited.headers["retry-after"] == "0.05"
        assert limited.json()["error"]["code"] == "rate_limit_exceeded"
        ok = c.post("/responses", json=ga_request())
    assert ok.json()["output"][0]["content"][0]["text"] == "first"
    assert len(server.requests) == 2 and server.records[0].fault == "429"
    assert server.records[0].rule == "rate_limit_exceeded" and server.rejections == []


def test_429_with_retry_after_ms_and_extra_headers(standin):
    server = standin([Turn.message("x")])
    server.inject("429", retry_after_ms=20, headers={"x-should-retry": "true"})
    with client(server) as c:
        limited = c.post("/responses", json=ga_request())
    assert limited.headers["retry-after-ms"] == "20" and limited.headers["x-should-retry"] == "true"
    assert "retry-after" not in limited.headers


@pytest.mark.parametrize(("kind", "status", "code"), [
    ("insufficient_quota", 429, "insufficient_quota"), ("500", 500, None), ("503", 503, None)])
def test_status_faults(standin, kind, status, code):
    server = standin([Turn.message("x")])
    server.inject(kind, times=2)
    with client(server) as c:
        answers = [c.post("/responses", json=ga_request()) for _ in range(3)]
    assert [a.status_code for a in answers] == [status, status, 200]
    assert answers[0].json()["error"]["code"] == code and answers[0].headers["x-request-id"]
    assert server.turn_index == 1


def test_reset_closes_without_an_answer(standin):
    server = standin([Turn.message("x")])
    server.inject("reset")
    with client(server) as c:
        with pytest.raises(httpx.TransportError):
            c.post("/responses", json=ga_request())
        assert c.post("/responses", json=ga_request()).status_code == 200
    assert server.records[0].status is None and server.records[0].fault == "reset"


def test_cut_stream_stops_before_completed(standin):
    server = standin([Turn.message("x")])
    server.inject("cut_stream")
    lines = []
    with client(server) as c:
        with pytest.raises(httpx.TransportError):
            with c.stream("POST", "/responses", json=ga_request(stream=True)) as answer:
                for line in answer.iter_lines():
                    lines.append(line)
        assert any("response.created" in line for line in lines)
        assert not any("response.completed" in line for line in lines)
        assert c.post("/responses", json=ga_request()).status_code == 200
    assert server.turn_index == 1


def test_cut_stream_on_a_json_request_truncates_the_body(standin):
    server = standin([Turn.message("x")])
    server.inject("cut_stream")
    with client(server) as c:
        with pytest.raises(httpx.TransportError):
            c.post("/responses", json=ga_request())


def test_slow_answers_after_the_delay(standin):
    server = standin([Turn.message("late")])
    server.inject("slow", delay=0.3)
    with client(server) as c:
        started = time.monotonic()
        answer = c.post("/responses", json=ga_request())
    assert time.monotonic() - started >= 0.3 and answer.status_code == 200
    assert server.turn_index == 1


def test_slow_request_the_client_gave_up_on_consumes_no_turn(standin):
    server = standin([Turn.message("first"), Turn.message("second")])
    server.inject("slow", delay=0.4)
    with client(server, timeout=0.1) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.post("/responses", json=ga_request())
    time.sleep(0.5)
    with client(server) as c:
        answer = c.post("/responses", json=ga_request())
    assert answer.json()["output"][0]["content"][0]["text"] == "first"


def test_inject_rejects_unknown_faults_and_options(standin):
    server = standin()
    with pytest.raises(ValueError, match="unknown fault"):
        server.inject("418")
    with pytest.raises(ValueError, match="takes no option"):
        server.inject("500", retry_after=1)


def test_png_size_reads_real_pngs_only():
    assert png_size(png(30, 20)) == (30, 20)
    assert png_size(png()[:-1]) is None
    broken = bytearray(png())
    broken[20] ^= 0xFF  # IHDR no longer matches its CRC
    assert png_size(bytes(broken)) is None
