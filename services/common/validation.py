"""Checks applied at the service edge before anything reaches Redis or a key name."""

from __future__ import annotations

import re
from collections.abc import Mapping

from hivewire_services.common.errors import FieldViolation, InvalidArgument

_ID = re.compile(r"[0-9a-f]{32}")
_CAPABILITY = re.compile(r"[a-z0-9][a-z0-9._:-]{0,63}")
_LABEL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,62}")
MAX_LABELS = 32
MAX_LABEL_VALUE = 256
MAX_REQUEST_ID = 256


def check_id(value: str, field: str) -> str:
    """An id is 32 lowercase hex characters."""
    if not _ID.fullmatch(value):
        raise InvalidArgument(f"{field} must be 32 lowercase hex characters", field=field)
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
]
