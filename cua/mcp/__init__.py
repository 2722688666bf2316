"""cua for MCP clients: ``cua mcp`` serves runs, replays and a computer session as tools
(``server``); a session is written as a run folder a replay plays (``computer``). Needs the
optional extra: ``pip install 'cua[mcp]'``."""
