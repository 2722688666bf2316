"""What the stand-in tests share: constants, request builders, a client, the ``standin`` fixture."""

from __future__ import annotations

import base64
import io
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from cua.testing.standin import REASONS, StandIn

KEY = "sk-test"
GA = "gpt-5.4"
PREVIEW = "computer-use-preview"
GA_TOOLS = [{"type": "computer"}]
PREVIEW_TOOL = {"type": "computer_use_preview", "display_width": 64, "display_height": 48,
                "environment": "browser"}
CLICK = {"type": "click", "x": 10, "y": 20, "button": "left"}


# --- helpers -------------------------------------------------------------------------------------


def png(width: int = 64, height: int = 48, color: str = "white") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def encoded(fmt: str, width: int = 64, height: int = 48, color: str = "white") -> bytes:
    """A real image file in ``fmt`` (JPEG, WEBP, GIF, PNG), made by Pillow."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format=fmt)
    return out.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def shot(call_id: str, image: bytes | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "computer_call_output", "call_id": call_id,
            "output": {"type": "computer_screenshot", "image_url": data_url(image or png())}, **extra}


def error(answer: httpx.Response) -> str:
    body = answer.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]["message"]


def calls(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in response["output"] if i["type"] in ("computer_call", "function_call")]


def parse_sse(text: str) -> list[tuple[str | None, str]]:
    events, name, data = [], None, []
    for line in text.split("\n"):
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            events.append((name, "\n".join(data)))
            name, data = None, []
    return events


@pytest.fixture
def standin() -> Iterator[Any]:
    """Start stand-ins on demand; stop them all at the end of the test."""
    servers: list[StandIn] = []

    def start(turns: Any = (), **options: Any) -> StandIn:
        server = StandIn(turns, api_key=KEY, **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


TLS = ssl.create_default_context()  # built once: httpx would load the CA bundle per client


def client(server: StandIn, **options: Any) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {KEY}"},
                        timeout=options.pop("timeout", 10), verify=TLS, **options)


def ga_request(**body: Any) -> dict[str, Any]:
    return {"model": GA, "tools": GA_TOOLS, "input": "Open the page.", **body}


def preview_request(**body: Any) -> dict[str, Any]:
    return {"model": PREVIEW, "tools": [PREVIEW_TOOL], "truncation": "auto", "input": "Open it.", **body}


def reject(server: StandIn, body: Any, rule: str, message: str, status: int = 400) -> dict[str, Any]:
    """POST ``body`` and assert it is rejected by ``rule`` with exactly ``message``."""
    with client(server) as c:
        answer = c.post("/responses", json=body)
    assert answer.status_code == status, answer.text
    assert error(answer) == message
    assert answer.json()["error"]["type"] == REASONS[rule].type
    assert server.rejections[-1].rule == rule and server.rejections[-1].message == message
    return answer.json()["error"]
