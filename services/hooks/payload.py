"""What a hook receives: the event as JSON, its ids as environment variables, the signature."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from hivewire.core.convert import event_to_dict
from hivewire.core.event_names import event_name
from hivewire.v1 import event_pb2

SIGNATURE_HEADER = "X-Hivewire-Signature"
SIGNATURE_PREFIX = "sha256="


@dataclass(frozen=True)
class Delivery:
    """One run of one hook for one event (read back from Redis by the runner)."""

    delivery_id: str
    hook: str
    entry_id: str
    event: event_pb2.Event
    attempt: int


def body(delivery: Delivery) -> bytes:
    """The JSON document sent on stdin or as the webhook body.

    {"delivery_id", "hook", "attempt", "event_type" (dotted), "event": {...}}; `delivery_id`
    is the same on every retry, so receivers can drop duplicates (delivery is at-least-once).
    """
    event: dict[str, Any] = event_to_dict(delivery.event)
    event["type"] = event_name(delivery.event.type)
    event["step_id"] = delivery.event.step_id
    doc = {
        "delivery_id": delivery.delivery_id,
        "hook": delivery.hook,
        "attempt": delivery.attempt,
        "event_type": event["type"],
        "event": event,
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def environment(delivery: Delivery) -> dict[str, str]:
    """Variables a command hook gets on top of the runner's environment."""
    ev = delivery.event
    return {
        "HIVEWIRE_EVENT_TYPE": event_name(ev.type),
        "HIVEWIRE_EVENT_CURSOR": ev.cursor,
        "HIVEWIRE_TASK_ID": ev.task_id,
        "HIVEWIRE_WORKFLOW_ID": ev.workflow_id,
        "HIVEWIRE_STEP_ID": ev.step_id,
        "HIVEWIRE_AGENT_ID": ev.agent_id,
        "HIVEWIRE_CAPABILITY": ev.capability,
        "HIVEWIRE_HOOK_NAME": delivery.hook,
        "HIVEWIRE_DELIVERY_ID": delivery.delivery_id,
        "HIVEWIRE_HOOK_ATTEMPT": str(delivery.attempt),
    }


def sign(secret: bytes, payload: bytes) -> str:
    """The signature header value: `sha256=` + hex HMAC-SHA256 of the exact body bytes."""
    return SIGNATURE_PREFIX + hmac.new(secret, payload, hashlib.sha256).hexdigest()


def verify(secret: bytes, payload: bytes, header: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(sign(secret, payload), header)
