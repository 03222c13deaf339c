"""A workflow step's input(s): its own payload plus its dependencies' outputs, within limits.

Sizes are checked before the work they bound: the outputs a step would embed before they are
decoded, and a map step's inputs together before any is built. Outputs are decoded with the
JSON limits of every document the services parse (services/common/validation_json.py). A step
whose input cannot be built gets the reason as its error instead of a task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hivewire_services.common.config import SubmissionSettings
from hivewire_services.common.validation_json import JsonRejected, loads_bounded
from hivewire_services.common.workflow_spec import INDEX_KEY, ITEM_KEY, PARENTS_KEY, StepDef

# The bytes a map element's input adds around its item: `{"item":` `,"index":` <i> `,`.
_ITEM_OVERHEAD = len(f'{{"{ITEM_KEY}":,"{INDEX_KEY}":,')


@dataclass(frozen=True)
class InputLimits:
    """How large the inputs of one step may be."""

    max_map: int  # elements one map step fans out to
    max_payload: int  # bytes of one input (it becomes a task payload)
    max_map_bytes: int  # bytes of all inputs of one map step together

    @staticmethod
    def of(settings: SubmissionSettings, max_map: int, max_map_bytes: int) -> InputLimits:
        return InputLimits(max_map, settings.max_payload_bytes, max_map_bytes)


class InputError(Exception):
    """Why a step's input cannot be built; its message becomes the step's error."""


def decode_output(raw: bytes, step_id: str, max_bytes: int) -> Any:
    """A step output as a value: JSON when it parses, else text; empty is None.

    InputError when it is JSON over the size or nesting limits.
    """
    if not raw:
        return None
    try:
        return loads_bounded(raw, max_bytes)
    except JsonRejected as exc:
        if exc.not_json:
            return raw.decode(errors="replace")
        raise InputError(f"output of step {step_id!r} {exc}") from None


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _parents(step: StepDef, outputs: dict[str, bytes], limits: InputLimits) -> dict[str, Any]:
    """The outputs a step embeds under "parents", decoded once their total size fits."""
    names = [d for d in step.depends_on if d != step.map_over]
    total = sum(len(outputs[d]) for d in names)
    if total > limits.max_payload:
        raise InputError(
            f"outputs of its dependencies hold {total} bytes, over the payload limit of"
            f" {limits.max_payload}"
        )
    return {d: decode_output(outputs[d], d, limits.max_payload) for d in names}


def _check_size(raw: bytes, limits: InputLimits) -> bytes:
    if len(raw) > limits.max_payload:
        raise InputError(
            f"input is {len(raw)} bytes, over the payload limit of {limits.max_payload}"
        )
    return raw


def _map_inputs(
    step: StepDef, base: bytes, outputs: dict[str, bytes], limits: InputLimits
) -> list[bytes]:
    items = decode_output(outputs[step.map_over], step.map_over, limits.max_map_bytes)
    if not isinstance(items, list):
        raise InputError(
            f"output of step {step.map_over!r} is not a JSON array, so it cannot be mapped"
        )
    if len(items) > limits.max_map:
        raise InputError(f"map over {len(items)} elements, over the limit of {limits.max_map}")
    encoded = [_encode(item) for item in items]
    # Every input is `base` with the item and its index spliced in: sized before any is built.
    fixed = len(base) - 1 + _ITEM_OVERHEAD
    sizes = [fixed + len(str(i)) + len(e) for i, e in enumerate(encoded)]
    biggest = max(sizes, default=0)
    if biggest > limits.max_payload:
        raise InputError(
            f"an element's input is {biggest} bytes, over the payload limit of {limits.max_payload}"
        )
    if sum(sizes) > limits.max_map_bytes:
        raise InputError(
            f"the inputs of {len(items)} elements hold {sum(sizes)} bytes, over the limit of"
            f" {limits.max_map_bytes} for one map step"
        )
    head, tail = f'{{"{ITEM_KEY}":'.encode(), b"," + base[1:]
    return [
        b"".join((head, e, f',"{INDEX_KEY}":{i}'.encode(), tail)) for i, e in enumerate(encoded)
    ]


def step_inputs(step: StepDef, outputs: dict[str, bytes], limits: InputLimits) -> list[bytes]:
    """The task payload(s) of a step whose dependencies all succeeded (`outputs`: each step's
    output by id); InputError says why they cannot be built."""
    base = _encode({**step.payload, PARENTS_KEY: _parents(step, outputs, limits)})
    if not step.map_over:
        return [_check_size(base, limits)]
    return _map_inputs(step, base, outputs, limits)
