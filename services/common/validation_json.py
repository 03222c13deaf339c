"""JSON the services parse (step payloads and outputs, command parameters), bounded in size
and nesting depth before and while it is parsed, so no document can exhaust the stack or memory.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hivewire_services.common.errors import InvalidArgument

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects in a JSON document a service parses."""

_OPENERS = (b"[", b"{")
# A JSON string (escapes included); they may hold brackets that are not nesting.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")


class JsonRejected(ValueError):
    """A document over a limit, or not JSON; the message says which, for people."""

    def __init__(self, message: str, *, not_json: bool = False) -> None:
        super().__init__(message)
        self.not_json = not_json


def nesting_depth(raw: bytes, limit: int) -> int:
    """How deep the arrays and objects of valid JSON nest: exact up to `limit + 1`, past which
    it stops counting (and at most the number of its brackets below the limit).

    All in C: strings are cut out, the brackets kept (as `[` and `]`: in valid JSON they
    match), then the innermost pairs removed, one level per pass, at most `limit + 1` passes.
    """
    openers = sum(raw.count(b) for b in _OPENERS)
    if openers <= limit:
        return openers  # cannot nest deeper than it has brackets
    brackets = _STRING.sub(b"", raw).translate(_AS_SQUARE, _NOT_BRACKETS)
    depth = 0
    while brackets and depth <= limit:
        brackets = brackets.replace(b"[]", b"")
        depth += 1
    return depth


def loads_bounded(raw: bytes | str, max_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON document of at most `max_bytes` bytes nested at most `max_depth` deep.

    JsonRejected says why not (`not_json` set when it simply is not JSON).
    """
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise JsonRejected(f"is {len(data)} bytes, over the limit of {max_bytes}")
    try:
        # UTF-8 only (json.loads would also guess UTF-16 or 32 from bytes, whose code units
        # may hold bracket and quote bytes the depth count below must not see).
        value = json.loads(data.decode() if isinstance(raw, bytes) else raw)
    except RecursionError:
        raise JsonRejected(f"is nested deeper than {max_depth} levels") from None
    except ValueError:
        raise JsonRejected("is not JSON", not_json=True) from None
    if nesting_depth(data, max_depth) > max_depth:
        raise JsonRejected(f"is nested deeper than {max_depth} levels")
    return value


def parse_json_field(raw: bytes | str, field: str, max_bytes: int) -> Any:
    """A request field holding JSON; InvalidArgument naming `field` when it breaks a limit."""
    try:
        return loads_bounded(raw, max_bytes)
    except JsonRejected as exc:
        raise InvalidArgument(f"{field} {exc}", field=field) from None
