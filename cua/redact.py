"""Secret masking: the one place that decides what a secret looks like once written down.

Secret values (API keys, scenario variables marked ``secret``) are replaced by ``{{name}}`` — the
variable's placeholder — so a trace stays replayable (the value is supplied again at replay time)
while the value itself never reaches a log, a trace or a report.
"""

from __future__ import annotations

from typing import Any


class Redactor:
    def __init__(self, secrets: dict[str, str] | None = None) -> None:
        # Longest first, so a secret containing another is masked whole.
        self._pairs = sorted(
            ((value, "{{" + name + "}}") for name, value in (secrets or {}).items() if value),
            key=lambda pair: -len(pair[0]),
        )

    def add(self, name: str, value: str) -> None:
        if value:
            self._pairs.append((value, "{{" + name + "}}"))
            self._pairs.sort(key=lambda pair: -len(pair[0]))

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def text(self, value: str) -> str:
        for secret, mask in self._pairs:
            if secret in value:
                value = value.replace(secret, mask)
        return value

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
        for secret, mask in self._pairs:
            value = value.replace(mask, secret)
        return value
