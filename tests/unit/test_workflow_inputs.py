"""Step inputs built within limits: sizes checked before the work, unusable outputs named."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from hivewire_services.common.workflow_spec import StepDef
from hivewire_services.coordinator.workflows.inputs import InputError, InputLimits, step_inputs

LIMITS = InputLimits(max_map=100, max_payload=1000, max_map_bytes=10_000)
MAP = StepDef("m", "x", {"k": 1}, ("items", "cfg"), map_over="items")
JOIN = StepDef("j", "x", {}, ("a", "b"))


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def test_map_inputs_are_the_shared_part_with_each_item_spliced_in() -> None:
    got = step_inputs(MAP, {"items": b'[1, "two", {"x": []}]', "cfg": b"plain text"}, LIMITS)
    assert [json.loads(raw) for raw in got] == [
        {"k": 1, "item": item, "index": i, "parents": {"cfg": "plain text"}}
        for i, item in enumerate([1, "two", {"x": []}])
    ]
    assert step_inputs(JOIN, {"a": b"", "b": b"[2]"}, LIMITS) == [b'{"parents":{"a":null,"b":[2]}}']


def test_an_output_nested_too_deep_fails_the_receiving_step_naming_it() -> None:
    with pytest.raises(InputError, match="output of step 'b' is nested deeper than 64 levels"):
        step_inputs(JOIN, {"a": b"1", "b": deep(65)}, LIMITS)
    with pytest.raises(InputError, match="output of step 'items' is nested deeper"):
        step_inputs(MAP, {"items": deep(2000), "cfg": b""}, LIMITS)


def test_parent_outputs_are_sized_together() -> None:
    with pytest.raises(InputError, match="outputs of its dependencies hold 1001 bytes"):
        step_inputs(JOIN, {"a": b"1" * 500, "b": b"2" * 501}, LIMITS)


def test_map_inputs_over_a_limit_are_refused() -> None:
    items = json.dumps(["y" * 90] * 100).encode()  # 100 inputs of ~130 bytes: over 10,000
    with pytest.raises(InputError, match=r"the inputs of 100 elements hold \d+ bytes, over"):
        step_inputs(MAP, {"items": items, "cfg": b""}, LIMITS)
    one_big = json.dumps(["z" * 2000]).encode()
    with pytest.raises(
        InputError, match=r"an element's input is \d+ bytes, over the payload limit of 1000"
    ):
        step_inputs(MAP, {"items": one_big, "cfg": b""}, LIMITS)
    with pytest.raises(InputError, match="map over 101 elements, over the limit of 100"):
        step_inputs(MAP, {"items": json.dumps(list(range(101))).encode(), "cfg": b""}, LIMITS)


def test_a_wide_map_over_a_large_parent_is_refused_before_its_inputs_exist() -> None:
    """1,000 elements sharing a 900 KB parent would be 900 MB of inputs: refused having
    allocated a small multiple of the parent, not the inputs."""
    limits = InputLimits(max_map=1000, max_payload=1 << 20, max_map_bytes=16 << 20)
    parent = json.dumps("p" * 900_000).encode()
    outputs = {"items": json.dumps(list(range(1000))).encode(), "cfg": parent}
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="the inputs of 1000 elements hold"):
            step_inputs(MAP, outputs, limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * len(parent)
