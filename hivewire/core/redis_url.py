"""Redis URLs as people see them: the one helper that hides a password wherever a URL is shown."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"
# Query parameters redis-py accepts that carry a secret.
_SECRET_PARAMS = frozenset({"password", "ssl_password"})


def redact_url(url: str) -> str:
    """`url` with its password (in the userinfo or a `password=` query value) replaced by ***.

    The scheme, user name, host, port, database and other query values stay, so the result
    still says which Redis and which user. A URL that does not parse is not shown at all.
    """
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        netloc = host
        if "@" in parts.netloc:
            user, colon, _password = parts.netloc.rpartition("@")[0].partition(":")
            netloc = f"{user}:{REDACTED}@{host}" if colon else f"{user}@{host}"
        query = urlencode(
            [
                (name, REDACTED if name in _SECRET_PARAMS else value)
                for name, value in parse_qsl(parts.query, keep_blank_values=True)
            ],
            safe="/*",
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<redis url>"


def redact_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` (a child's output line, an error) with each of `secrets` replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text
