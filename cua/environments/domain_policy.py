"""Allow and block lists of domains for the browser, as rules and as Chromium's own patterns; and
the schemes a model's ``goto`` may open.

Pure rules, no Playwright: browser_policy.py enforces them through Playwright's routing and
hands ``chromium_patterns()`` to Chromium for what routing cannot see. Hosts are compared the way
Chromium's URL parser writes them (lower case, punycode, IPv4 and IPv6 in their one canonical
form), so a rule holds for every spelling of its host a page or a model can use.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterable
from urllib.parse import unquote, urlsplit

import idna

from ..errors import ConfigError

# Characters the URL standard forbids in a domain; a host holding one is no host Chromium opens.
_FORBIDDEN_IN_HOST = frozenset(" #%/:<>?@[\\]^|\x7f") | frozenset(map(chr, range(0x20)))
_NUMBER = {10: re.compile(r"[0-9]+"), 16: re.compile(r"[0-9a-fA-F]*"), 8: re.compile(r"[0-7]*")}
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
_C0_AND_SPACE = "".join(map(chr, range(0x21)))


def canonical_host(text: str) -> str | None:
    """``text`` as Chromium resolves it, or None when Chromium would refuse it as a host.

    Percent-escapes decoded, IDN mapped (UTS #46, non-transitional) and written in punycode, an
    IPv4 address in any form Chromium takes (``127.1``, ``0x7f.0.0.1``, ``2130706433``) dotted, an
    IPv6 address without brackets and compressed; then trailing dots dropped (``localhost.`` is
    looked up as ``localhost``) and an IPv4-mapped IPv6 address written as the IPv4 it reaches.
    """
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        return _ipv6(text)
    try:
        mapped = idna.uts46_remap(unquote(text, errors="strict"), std3_rules=False, transitional=False)
    except (UnicodeDecodeError, idna.IDNAError):
        return None
    host = ".".join(label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
                    for label in mapped.split("."))
    if not host or _FORBIDDEN_IN_HOST.intersection(host):
        return None
    if _ends_in_number(host):
        return _ipv4(host)
    return host.rstrip(".") or None


def _ipv6(text: str) -> str | None:
    if "%" in text:  # a zone id: URLs have none
        return None
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    return str(address.ipv4_mapped) if address.ipv4_mapped else address.compressed


def _ipv4_number(part: str) -> int | None:
    base = 10
    if part[:2].lower() == "0x":
        part, base = part[2:], 16
    elif len(part) > 1 and part.startswith("0"):
        part, base = part[1:], 8
    if not _NUMBER[base].fullmatch(part):
        return None
    return int(part, base) if part else 0


def _ends_in_number(host: str) -> bool:
    """The URL standard's test for a host to be parsed as an IPv4 address."""
    labels = host.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()
    last = labels[-1]
    return bool(last) and (last.isdigit() or _ipv4_number(last) is not None)


def _ipv4(host: str) -> str | None:
    """The URL standard's IPv4 parser: one to four numbers, decimal, octal or hex, the last one
    filling the bytes left; anything else is no address (and no host)."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    numbers = [_ipv4_number(part) if part else None for part in parts]
    if len(numbers) > 4 or None in numbers:
        return None
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):  # type: ignore[operator]
        return None
    value = last + sum(n << (8 * (3 - i)) for i, n in enumerate(leading))  # type: ignore[operator]
    return str(ipaddress.IPv4Address(value))


def _cleaned(url: str) -> str:
    """``url`` as Chromium's parser takes it in: no tabs or newlines, no controls or spaces around."""
    return re.sub(r"[\t\n\r]", "", url).strip(_C0_AND_SPACE)


def _scheme(url: str) -> str:
    return _cleaned(url).split(":", 1)[0].lower()


def _url_host(url: str) -> str:
    """The canonical host of ``url``; in web URLs a backslash is a slash there, as in Chromium
    (``http://a.com\\@b.com/`` is on a.com)."""
    url = _cleaned(url)
    if _scheme(url) in _SPECIAL_SCHEMES:
        url = url.replace("\\", "/")
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # an unclosed IPv6 bracket: no URL Chromium opens
        return ""
    return canonical_host(host) or host


def _rule(entry: str, list_name: str) -> str:
    """``https://Example.com:8080/x`` / ``*.example.com`` / ``.example.com`` → ``example.com``."""
    text = entry.strip()
    try:
        if "://" in text:
            text = urlsplit(text).hostname or ""
        else:
            text = text.split("/", 1)[0].rsplit("@", 1)[-1]
            if text.startswith("[") and "]" in text:
                text = text[: text.index("]") + 1]
            elif text.count(":") == 1:  # a port; more colons make an IPv6 address
                text = text.split(":", 1)[0]
    except ValueError:
        text = ""
    if text.startswith("*."):
        text = text[2:]
    elif text.startswith("."):
        text = text[1:]
    if "*" in text:
        raise ConfigError(f"{list_name} entry {entry!r}: a * may only stand for all subdomains, "
                          "in front (*.example.com)")
    host = canonical_host(text) if text else None
    if host is None:
        raise ConfigError(f"{list_name} entry {entry!r} is not a domain or an IP address")
    return host


class DomainPolicy:
    """Allow and block lists of domains; a domain covers its subdomains; blocking wins."""

    ALWAYS_ALLOWED_SCHEMES = frozenset({"data", "blob", "about"})

    def __init__(self, allow: Iterable[str] = (), block: Iterable[str] = ()) -> None:
        self.allow = tuple(_rule(entry, "allow list") for entry in allow)
        self.block = tuple(_rule(entry, "block list") for entry in block)

    def __bool__(self) -> bool:
        return bool(self.allow or self.block)

    @staticmethod
    def _covers(domains: tuple[str, ...], host: str) -> bool:
        return any(host == d or (not _is_ip(d) and host.endswith("." + d)) for d in domains)

    def blocked_reason(self, url: str) -> str | None:
        """Why ``url`` may not be requested, or None when it may."""
        if _scheme(url) in self.ALWAYS_ALLOWED_SCHEMES:
            return None
        host = _url_host(url)
        if self._covers(self.block, host):
            return "block list"
        if self.allow and not self._covers(self.allow, host):
            return "not in allow list"
        return None

    def chromium_patterns(self) -> list[dict[str, Any]]:
        """The policy as CDP ``Network.setBlockedURLs`` patterns (URLPattern syntax, first match
        wins): Chromium then refuses a blocked host at every hop, redirects of subresources too,
        which Playwright's routing cannot see. Chromium matches its canonical URL, which keeps a
        trailing dot and writes an IPv4-mapped address in hex: those get patterns of their own.
        data:, blob: and about: never match."""
        def rules(domains: tuple[str, ...], block: bool) -> list[dict[str, Any]]:
            out = []
            for domain in domains:
                host = _url_pattern_escape(domain)
                if ":" in domain:
                    hosts = [f"[{host}]"]  # IPv6
                elif _is_ip(domain):  # an address has no subdomains
                    hosts = [host, _url_pattern_escape(f"[{_ipv4_mapped(domain)}]")]
                else:
                    hosts = [host, "*." + host, host + ".", "*." + host + "."]
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


def _ipv4_mapped(address: str) -> str:
    """``127.0.0.1`` → ``::ffff:7f00:1``, the way Chromium writes ``[::ffff:127.0.0.1]``."""
    a, b, c, d = ipaddress.IPv4Address(address).packed
    return f"::ffff:{a << 8 | b:x}:{c << 8 | d:x}"


def _url_pattern_escape(text: str) -> str:
    return "".join("\\" + c if c in "*:{}()+?\\" else c for c in text)


# --- schemes a model's goto may open --------------------------------------------------------------

WEB_SCHEMES = frozenset({"http", "https"})
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):(.*)", re.DOTALL)
_PORT_AFTER_HOST = re.compile(r"[0-9]+(?:[/?#]|$)")


def with_scheme(url: str) -> str:
    """``url`` cleaned as Chromium would read it; a bare host (``example.com``,
    ``localhost:8080/x``) gets ``https://``."""
    url = _cleaned(url)
    match = _SCHEME.fullmatch(url)
    if match is None or _PORT_AFTER_HOST.match(match.group(2)):
        return "https://" + url
    return url


def refused_scheme(url: str, allowed: Iterable[str] = ()) -> str | None:
    """The scheme of ``url`` (as given by ``with_scheme``) when a model may not open it: anything
    but http, https and about:blank, unless the user allowed that scheme."""
    scheme = url.split(":", 1)[0].lower()
    if scheme in WEB_SCHEMES or url.lower() == "about:blank" or scheme in set(allowed):
        return None
    return scheme
