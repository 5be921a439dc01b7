"""Email redaction for log lines and exception messages: personal data stays out of logs by default."""

from __future__ import annotations

import re

# Any characters an address may hold, in any script (``用户@例子.广告``, ``ürsula@example.de``): what
# separates an address from the text around it is white space, quotes, brackets and punctuation.
_LOCAL = r"[^\s@<>()\[\],;:\"`|]"
_DOMAIN = r"[^\s@<>()\[\],;:\"'`|/?#]"
_EMAIL = re.compile(rf"({_LOCAL}){_LOCAL}*@({_DOMAIN}+)")
# The same address URL-encoded, as it appears in request paths.
_ENCODED_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*%40([A-Za-z0-9.\-]+)")


def redact_email(address: str) -> str:
    """``jane.doe@example.com`` -> ``j***@example.com``; a value without ``@`` becomes ``***``."""
    local, sep, domain = address.partition("@")
    if not sep or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def redact_text(text: str) -> str:
    """Redact every email address (plain or URL-encoded) found in free text."""
    text = _EMAIL.sub(r"\1***@\2", text)
    return _ENCODED_EMAIL.sub(r"\1***%40\2", text)


def sample_addresses(addresses: list[str], redact: bool, size: int = 5) -> list[str]:
    """A few addresses for a message, redacted unless redaction is off."""
    return [redact_email(a) if redact else a for a in addresses[:size]]
