"""JSON parsed within size and nesting limits: the depth is exact, strings do not count."""

from __future__ import annotations

import json

import pytest

from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.validation_json import (
    MAX_JSON_DEPTH,
    JsonRejected,
    loads_bounded,
    nesting_depth,
    parse_json_field,
)


def nested(depth: int, inner: str = "1") -> bytes:
    """Arrays and objects alternating, `depth` levels deep."""
    opens = ['{"k": ' if level % 2 == 0 else "[" for level in range(depth)]
    closes = ["}" if level % 2 == 0 else "]" for level in range(depth)]
    return ("".join(reversed(opens)) + inner + "".join(closes)).encode()


@pytest.mark.parametrize("depth", [0, 1, 2, 10, MAX_JSON_DEPTH])
def test_documents_up_to_the_limit_parse(depth: int) -> None:
    raw = nested(depth)
    assert nesting_depth(raw, MAX_JSON_DEPTH) == depth
    assert loads_bounded(raw, 1 << 20) == json.loads(raw)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 200, 5000, 200_000])
def test_deeper_documents_are_refused(depth: int) -> None:
    with pytest.raises(JsonRejected) as info:
        loads_bounded(nested(depth), 1 << 30)
    assert str(info.value) == f"is nested deeper than {MAX_JSON_DEPTH} levels"
    assert not info.value.not_json


def test_brackets_in_strings_and_wide_documents_do_not_count() -> None:
    raw = json.dumps({"s": "[[[[{{{{" * 100, "wide": [[1], [2], {"a": []}] * 10_000}).encode()
    assert nesting_depth(raw, MAX_JSON_DEPTH) == 4  # {"wide": [{"a": []}]}
    assert loads_bounded(raw, 1 << 20)["s"].startswith("[[[[")
    escaped = json.dumps(['"]' * 80 + "\\"] * 80).encode()
    assert loads_bounded(escaped, 1 << 20)[0].endswith("\\")


def test_size_is_checked_before_parsing_and_not_json_is_told_apart() -> None:
    with pytest.raises(JsonRejected, match="is 11 bytes, over the limit of 10"):
        loads_bounded(b"[" * 11, 10)
    for not_json in (b"{nope", '["\u5b5b"]'.encode("utf-16"), b"\xff[]"):
        with pytest.raises(JsonRejected) as info:
            loads_bounded(not_json, 100)
        assert info.value.not_json


def test_a_request_field_names_itself() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_json_field(nested(100), "steps[2].payload", 1 << 20)
    assert [v.field for v in info.value.violations] == ["steps[2].payload"]
    assert "steps[2].payload is nested deeper than 64 levels" in info.value.message
