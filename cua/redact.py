"""Secret masking: the one place that decides what a secret looks like once written down.

Secret values (API keys, scenario variables marked ``secret``, credentials inside URLs) are
replaced by ``{{name}}`` — the variable's placeholder — so a trace stays replayable (the value is
supplied again at replay time) while the value itself never reaches a log, a trace or a report.
Every run has one ``Redactor``: the run folder, the result a caller gets (and ``--json`` prints)
and the progress callbacks all pass through it. ``child_environment`` keeps the same secrets out of
the programs cua starts.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

# Variables that hold credentials cua (or a provider SDK) reads; never handed to a child process.
SECRET_ENV_VARS = (
    "OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN",
    "GEMINI_API_KEY", "GOOGLE_API_KEY", "CUA_VM_API_KEY", "CUA_API_KEY",
)

# Query parameters that carry a credential in a URL (?token=…, ?apiKey=…, ?key=… as Gemini does).
_SECRET_QUERY = re.compile(
    r"^(?:token|access[_-]?token|auth|auth[_-]?token|api[_-]?key|key|secret|password|passwd|pwd|"
    r"sig|signature|x-api-key|session|sessionid|jwt)$",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"(\{\{[A-Za-z_][A-Za-z0-9_]*\}\})")
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def url_secrets(url: str | None) -> list[str]:
    """The credentials a URL carries: its user-info password (or user, without one) and the
    values of token-like query parameters, raw and percent-decoded."""
    if not url or "://" not in url:
        return []
    try:
        parts = urlsplit(url)
        found = []
        if parts.password:
            found.append(parts.password)
        elif parts.username:
            found.append(parts.username)
        found += [value for name, value in parse_qsl(parts.query, keep_blank_values=False)
                  if _SECRET_QUERY.match(name)]
    except ValueError:  # not a URL after all
        return []
    return [v for s in found for v in {s, unquote(s)} if v]


def mask_url(url: str) -> str:
    """``url`` with its credentials replaced by ``***`` (for settings shown to a person)."""
    for secret in sorted(url_secrets(url), key=len, reverse=True):
        url = url.replace(secret, "***")
    return url


class Redactor:
    def __init__(self, secrets: dict[str, str] | None = None) -> None:
        self._pairs: list[tuple[str, str]] = []
        self._pattern: re.Pattern[str] | None = None
        self._masks: dict[str, str] = {}
        self._originals: dict[str, str] = {}  # mask -> the value a replay puts back
        for name, value in (secrets or {}).items():
            self.add(name, value)

    def add(self, name: str, value: str | None) -> None:
        """Mask ``value`` as ``{{name}}``, also as it appears in a URL (percent-encoded)."""
        if not value:
            return
        from urllib.parse import quote, quote_plus

        mask = "{{" + name + "}}"
        self._originals.setdefault(mask, value)
        for form in dict.fromkeys((value, quote(value, safe=""), quote_plus(value))):
            if all(form != v for v, _ in self._pairs):
                self._pairs.append((form, mask))
        # Longest first, so a secret containing another is masked whole.
        self._pairs.sort(key=lambda pair: -len(pair[0]))
        self._pattern = None

    def add_url(self, name: str, url: str | None) -> None:
        """Mask the credentials inside ``url`` (user-info, ``token=`` query values)."""
        for secret in url_secrets(url):
            self.add(name, secret)

    def add_environment(self, env: Mapping[str, str] | None = None) -> "Redactor":
        """Mask the API keys found in the environment (``SECRET_ENV_VARS``)."""
        env = os.environ if env is None else env
        for name in SECRET_ENV_VARS:
            self.add(name, env.get(name, "").strip())
        return self

    def values(self) -> frozenset[str]:
        return frozenset(value for value, _ in self._pairs)

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def text(self, value: str) -> str:
        if "{{" in value and self._pairs:  # a placeholder already there stays whole: a short secret
            parts = _PLACEHOLDER.split(value)  # ("d") must not be masked inside {{password}}
            return "".join(part if n % 2 else self._mask(part) for n, part in enumerate(parts))
        return self._mask(value)

    def _mask(self, value: str) -> str:
        # One pass over the text, longest secret first: a mask written is never masked again.
        if not self._pairs:
            return value
        if self._pattern is None:
            self._pattern = re.compile("|".join(re.escape(secret) for secret, _ in self._pairs))
            self._masks = dict(self._pairs)
        return self._pattern.sub(lambda m: self._masks[m.group(0)], value)

    def encoded_text(self, value: str) -> str:
        """Mask secrets also as they appear JSON-escaped or URL-encoded (in recorded requests)."""
        import json
        from urllib.parse import quote, quote_plus

        for secret, mask in self._pairs:
            for form in {json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret), secret}:
                if form in value:
                    value = value.replace(form, mask)
        return value

    def obj(self, value: Any) -> Any:
        """A deep copy of ``value`` (JSON-like) with every secret masked in every string."""
        if not self._pairs:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.obj(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.obj(v) for v in value]
        return value

    def unmask(self, value: str) -> str:
        """Put the secret values back into a recorded string (for replay)."""
        for mask, secret in self._originals.items():
            value = value.replace(mask, secret)
        return value


def mask_urls_in(text: str) -> str:
    """Credentials of every URL in a free text (an error message) replaced by ``***``."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: mask_url(m.group(0)), text)


def child_environment(secrets: Iterable[str] = (), base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a program cua starts: ours without the API keys, and without any
    variable whose value is one of ``secrets`` (a scenario secret supplied through ``env:``)."""
    hidden = {s for s in secrets if s}
    base = os.environ if base is None else base
    return {k: v for k, v in base.items() if k not in SECRET_ENV_VARS and v not in hidden}
