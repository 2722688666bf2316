"""Remote MCP servers as Responses API tools (``--mcp-server LABEL=URL``): the service calls them
for the model, and asks first with ``mcp_approval_request``, which cua's approval policy answers
(``--mcp-approval auto|ask|deny``; ask refuses when there is no terminal) — logged on stderr, in
the run folder and in the report, and answered on the wire with ``mcp_approval_response``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_helpers import clean_env, finish, start_cua  # noqa: E402

from cua.testing.standin import StandIn, Turn  # noqa: E402

KEY = "sk-mcp-tools-test"
DOCS = "https://mcp.docs.example/sse"


def script(seen: list[dict[str, Any]]) -> list[Any]:
    ask = [{"type": "mcp_list_tools", "server_label": "docs", "tools": [{"name": "search", "input_schema": {}}]},
           {"type": "mcp_approval_request", "server_label": "docs", "name": "search",
            "arguments": {"q": "refund policy"}}]

    def after(body: dict[str, Any], state: Any) -> Any:
        answer = [i for i in body["input"] if i.get("type") == "mcp_approval_response"]
        seen.extend(answer)
        approved = bool(answer and answer[0]["approve"])
        call = [{"type": "mcp_call", "server_label": "docs", "name": "search", "arguments": {"q": "refund policy"},
                 "output": "Refunds within 30 days."}] if approved else []
        return Turn(output=[*call, {"type": "message", "content": "approved" if approved else "refused"}])

    return [Turn(output=ask), after]


@pytest.mark.parametrize(("flags", "approved", "how"), [
    (["--mcp-approval", "auto"], True, "approved (--mcp-approval auto)"),
    ([], False, "refused (no terminal to ask on)"),
    (["--mcp-approval", "deny"], False, "refused (--mcp-approval deny)"),
    (["--mcp-approval", "auto", "--stateless"], True, "approved (--mcp-approval auto)"),  # items replayed by id
])
def test_an_approval_request_is_decided_by_the_policy_and_answered(flags: list[str], approved: bool, how: str,
                                                                   tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    with StandIn(script(seen), api_key=KEY) as server:
        env = clean_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=server.base_url)
        done = finish(start_cua(["run", "--task", "find the refund policy", "--start-url", "data:text/html,<p>x</p>",
                                 "--model", "gpt-5.4", "--mcp-server", f"docs={DOCS}", "--out", "runs", "--json",
                                 *flags], env, tmp_path), 120)
        assert server.rejections == []
        tools = server.requests[0]["tools"]
    assert done.code == 0, done.stderr
    assert {"type": "mcp", "server_label": "docs", "server_url": DOCS} in tools
    request_id = json.loads(done.stdout)  # the run's result
    assert request_id["final_text"] == ("approved" if approved else "refused")
    assert len(seen) == 1 and seen[0]["approve"] is approved
    assert f"⚙ MCP docs.search: {how}" in done.stderr

    run_dir = tmp_path / request_id["run_dir"]
    steps = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    assert steps[0]["mcp_approvals"] == [{"server": "docs", "name": "search", "arguments": '{"q": "refund policy"}',
                                          "decision": "approved" if approved else "refused", "how": how}]
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "MCP tool approvals" in report and "docs · search" in report


def test_an_mcp_server_needs_a_label_and_a_web_url(tmp_path: Path) -> None:
    done = finish(start_cua(["run", "--task", "x", "--mcp-server", "docs=ftp://x"], clean_env(OPENAI_API_KEY=KEY),
                            tmp_path), 60)
    assert done.code == 2 and "needs an http(s) server_url" in done.stderr, done.stderr
