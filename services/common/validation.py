"""Checks applied at the service edge before anything reaches Redis or a key name."""

from __future__ import annotations

import re
from collections.abc import Mapping

from hivewire_services.common.errors import FieldViolation, InvalidArgument

_ID = re.compile(r"[0-9a-f]{32}")
_CAPABILITY = re.compile(r"[a-z0-9][a-z0-9._:-]{0,63}")
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,62}")
_SCHEDULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_LABELS = 32
MAX_LABEL_VALUE = 256
MAX_REQUEST_ID = 256
MAX_STREAM_ID_PART = 2**64 - 1
_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
StreamId = tuple[int, int]


def check_id(value: str, field: str) -> str:
    """An id is 32 lowercase hex characters."""
    if not _ID.fullmatch(value):
        raise InvalidArgument(f"{field} must be 32 lowercase hex characters", field=field)
    return value


def check_tenant(value: str, field: str = "tenant") -> str:
    """Tenant names: 1-64 of letters, digits, '.', '_', '@', '-', starting with a letter or digit
    (they name per-tenant index keys)."""
    if not _TENANT.fullmatch(value):
        raise InvalidArgument(
            f"{field} {value[:70]!r} must be 1-64 of A-Z a-z 0-9 . _ @ -", field=field
        )
    return value


def check_schedule_name(value: str, field: str = "name") -> str:
    """Schedule names: letters, digits, '.', '_', '-'; 1-128 characters."""
    if not _SCHEDULE_NAME.fullmatch(value):
        raise InvalidArgument(
            f"{field} must be 1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit",
            field=field,
        )
    return value


def check_capability(value: str, field: str = "capability") -> str:
    """Capability names: lowercase letters, digits, '.', '_', ':', '-'; 1-64 characters."""
    if not value:
        raise InvalidArgument(f"{field} is required", field=field)
    if not _CAPABILITY.fullmatch(value):
        raise InvalidArgument(
            f"{field} {value[:70]!r} must be 1-64 of a-z 0-9 . _ : -, starting with a-z or 0-9",
            field=field,
        )
    return value


def check_labels(labels: Mapping[str, str], field: str) -> None:
    """Labels: at most 32, keys like `zone` or `gpu/model`, values up to 256 characters."""
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"{field} has more than {MAX_LABELS} entries", field=field)
    for key, value in labels.items():
        if not _LABEL_KEY.fullmatch(key):
            raise InvalidArgument(f"{field} key {key[:70]!r} is not a valid label key", field=field)
        if len(value) > MAX_LABEL_VALUE:
            raise InvalidArgument(f"{field}[{key}] is longer than {MAX_LABEL_VALUE}", field=field)


def parse_stream_id(value: str, field: str) -> StreamId:
    """A Redis stream id `<ms>-<seq>` (each part 0..2^64-1) as a comparable tuple.

    Every id or cursor a request carries goes through here, so Redis never sees one it would
    refuse (it answers an error, not an empty range, for a part past 2^64-1).
    """
    match = _STREAM_ID.fullmatch(value)
    if match is not None:
        ms, seq = int(match.group(1)), int(match.group(2))
        if ms <= MAX_STREAM_ID_PART and seq <= MAX_STREAM_ID_PART:
            return ms, seq
    raise InvalidArgument(
        f"{field} must look like <ms>-<seq>, each part at most {MAX_STREAM_ID_PART}", field=field
    )


def parse_sequence_token(token: str, field: str = "page_token") -> int | None:
    """A page token that is a positive sequence number (at most 18 ASCII digits, so Redis
    reads it as an exact score); None for the first page (an empty token)."""
    if not token:
        return None
    if not (token.isascii() and token.isdigit() and len(token) <= 18 and int(token) > 0):
        raise InvalidArgument(f"{field} is not a token this server issued", field=field)
    return int(token)


def check_page_size(value: int, field: str = "page_size", default: int = 100) -> int:
    """0 means the default; otherwise 1..1000."""
    if value == 0:
        return default
    if not 1 <= value <= 1000:
        raise InvalidArgument(f"{field} must be between 1 and 1000", field=field)
    return value


__all__ = [
    "FieldViolation",
    "check_capability",
    "check_id",
    "check_labels",
    "check_page_size",
    "parse_sequence_token",
    "parse_stream_id",
]
