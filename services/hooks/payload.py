"""What a hook receives: the event as JSON, its ids as environment variables, the signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hivewire.core.convert import event_to_dict
from hivewire.core.event_names import event_name
from hivewire.v1 import event_pb2

SIGNATURE_HEADER = "X-Hivewire-Signature"
TIMESTAMP_HEADER = "X-Hivewire-Timestamp"
SIGNATURE_PREFIX = "sha256="
# What receivers should accept between the signing time and their clock (docs/hooks.md).
REPLAY_WINDOW_S = 300
# The only variables of the runner's environment a command hook inherits: never its secrets
# (webhook secrets, the Redis URL with its password, tokens). A hook's own `env:` adds more.
INHERITED_VARIABLES = frozenset({"PATH", "HOME", "LANG", "TZ", "TMPDIR"})
INHERITED_PREFIXES = ("LC_",)


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


def inherited(env: Mapping[str, str]) -> dict[str, str]:
    """The part of the runner's environment a command hook gets: locale, paths, time zone."""
    return {
        k: v for k, v in env.items() if k in INHERITED_VARIABLES or k.startswith(INHERITED_PREFIXES)
    }


def environment(delivery: Delivery) -> dict[str, str]:
    """Variables a command hook gets on top of the inherited ones and its own `env`."""
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


def sign(secret: bytes, timestamp: str, payload: bytes) -> str:
    """The signature header value: `sha256=` + hex HMAC-SHA256 of `timestamp.body`.

    The timestamp (Unix seconds, sent as X-Hivewire-Timestamp) is signed with the body, so a
    captured delivery cannot be replayed later than the receiver's window.
    """
    signed = timestamp.encode() + b"." + payload
    return SIGNATURE_PREFIX + hmac.new(secret, signed, hashlib.sha256).hexdigest()


def signature_headers(secret: bytes, payload: bytes, now: float | None = None) -> dict[str, str]:
    """X-Hivewire-Timestamp (now) and X-Hivewire-Signature for one POST of `payload`."""
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, payload)}


def verify(
    secret: bytes,
    payload: bytes,
    timestamp: str,
    signature: str,
    now: float | None = None,
    window: float = REPLAY_WINDOW_S,
) -> bool:
    """What a receiver does: a fresh timestamp, then the HMAC compared in constant time."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > window:
        return False
    return hmac.compare_digest(sign(secret, timestamp, payload), signature)
