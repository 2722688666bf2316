"""Allow and block lists of domains for the browser, as rules and as Chromium's own patterns.

Pure rules, no Playwright: ``BrowserEnvironment`` enforces them through Playwright's routing and
hands ``chromium_patterns()`` to Chromium for what routing cannot see.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable
from urllib.parse import urlsplit


def _domain(entry: str) -> str:
    """``https://Example.com:8080/x`` / ``*.example.com`` / ``.example.com`` → ``example.com``."""
    entry = entry.strip().lower()
    if "://" in entry:
        entry = urlsplit(entry).hostname or ""
    else:
        entry = entry.split("/", 1)[0]
        if entry.startswith("["):
            entry = entry[1:].split("]", 1)[0]
        elif entry.count(":") == 1:
            entry = entry.split(":", 1)[0]
    return entry.lstrip("*").lstrip(".")


class DomainPolicy:
    """Allow and block lists of domains; a domain covers its subdomains; blocking wins."""

    ALWAYS_ALLOWED_SCHEMES = frozenset({"data", "blob", "about"})

    def __init__(self, allow: Iterable[str] = (), block: Iterable[str] = ()) -> None:
        self.allow = tuple(d for d in map(_domain, allow) if d)
        self.block = tuple(d for d in map(_domain, block) if d)

    def __bool__(self) -> bool:
        return bool(self.allow or self.block)

    @staticmethod
    def _covers(domains: tuple[str, ...], host: str) -> bool:
        return any(host == d or host.endswith("." + d) for d in domains)

    def blocked_reason(self, url: str) -> str | None:
        """Why ``url`` may not be requested, or None when it may."""
        parts = urlsplit(url)
        if parts.scheme in self.ALWAYS_ALLOWED_SCHEMES:
            return None
        host = (parts.hostname or "").lower()
        if self._covers(self.block, host):
            return "block list"
        if self.allow and not self._covers(self.allow, host):
            return "not in allow list"
        return None

    def chromium_patterns(self) -> list[dict[str, Any]]:
        """The policy as CDP ``Network.setBlockedURLs`` patterns (URLPattern syntax, first match
        wins): Chromium then refuses a blocked host at every hop, redirects of subresources too,
        which Playwright's routing cannot see. data:, blob: and about: never match."""
        def rules(domains: tuple[str, ...], block: bool) -> list[dict[str, Any]]:
            out = []
            for domain in domains:
                host = _url_pattern_escape(domain)
                if ":" in domain:
                    hosts = [f"[{host}]"]  # IPv6
                elif _is_ip(domain):
                    hosts = [host]  # an address has no subdomains
                else:
                    hosts = [host, "*." + host]
                out += [{"urlPattern": f"*://{host}:*/*", "block": block} for host in hosts]
            return out

        patterns = rules(self.block, True) + rules(self.allow, False)
        if self.allow:
            patterns.append({"urlPattern": "*://*:*/*", "block": True})
        return patterns


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _url_pattern_escape(text: str) -> str:
    return "".join("\\" + c if c in "*:{}()+?\\" else c for c in text)
